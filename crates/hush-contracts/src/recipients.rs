//! The recipients configuration: every downstream system that holds or receives personal data,
//! with its connector kind, legal role and scope. The suppressors and the auditor read the same
//! file, so the auditor knows which confirmations each request must collect.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, SecretRef};
use crate::events::{Category, PrivacyRequest, RecipientRole, RequestKind};

/// One downstream recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientConfig {
    /// Unique id, used as `connector_id` in confirmations and in `--connector`.
    pub id: String,
    /// Connector kind, e.g. `webhook`, `hubspot`.
    pub kind: String,
    /// Legal role of the recipient.
    pub role: RecipientRole,
    /// Base URL of the vendor API (or of its simulator).
    pub base_url: String,
    /// Request kinds this recipient must act on.
    #[serde(default = "all_request_kinds")]
    pub request_kinds: Vec<RequestKind>,
    /// Data categories this recipient receives; a request applies when it covers any of them.
    #[serde(default = "all_categories")]
    pub categories: Vec<Category>,
    /// Credentials by environment-variable name, e.g. `{ token = "HUBSPOT_TOKEN" }`.
    #[serde(default)]
    pub credentials: BTreeMap<String, SecretRef>,
    /// Work items per vendor call (capped at the vendor's own limit).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Vendor calls per second this recipient allows, for all replicas of its suppressor
    /// together (each paces at the share of the input partitions it holds).
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_second: u32,
    /// Attempts before a request is dead-lettered with FAILED_PERMANENT.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Timeout of one vendor call, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Connector-specific settings (see each connector's documentation).
    #[serde(default)]
    pub settings: toml::Table,
}

fn all_request_kinds() -> Vec<RequestKind> {
    vec![
        RequestKind::OptOutSaleShare,
        RequestKind::LimitSensitive,
        RequestKind::Delete,
    ]
}

fn all_categories() -> Vec<Category> {
    vec![Category::All]
}

fn default_batch_size() -> usize {
    100
}

fn default_rate_limit() -> u32 {
    10
}

fn default_max_attempts() -> u32 {
    8
}

fn default_timeout_ms() -> u64 {
    10_000
}

impl RecipientConfig {
    /// Whether `request` is in this recipient's scope (request kind and categories).
    pub fn applies_to(&self, request: &PrivacyRequest) -> bool {
        self.request_kinds.contains(&request.kind) && self.covers_any(request)
    }

    fn covers_any(&self, request: &PrivacyRequest) -> bool {
        // A deletion removes the person everywhere, whatever the categories.
        request.kind == RequestKind::Delete
            || self.categories.contains(&Category::All)
            || self.categories.iter().any(|c| request.covers(*c))
    }

    /// Reads a required credential from the environment.
    pub fn credential(&self, name: &str) -> Result<String, ConfigError> {
        self.credentials
            .get(name)
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "recipient `{}` needs credentials.{name} (the name of an environment variable)",
                    self.id
                ))
            })?
            .resolve(&format!("recipients.{}.credentials.{name}", self.id))
    }

    /// Deserialises the connector-specific `settings` table into `T`, naming the recipient on
    /// error.
    pub fn settings<T: for<'de> Deserialize<'de>>(&self) -> Result<T, ConfigError> {
        self.settings
            .clone()
            .try_into()
            .map_err(|e| ConfigError::Invalid(format!("recipients.{}.settings: {e}", self.id)))
    }
}

/// Validates a recipient list: unique ids, non-empty kinds, sane limits.
pub fn validate(recipients: &[RecipientConfig]) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for recipient in recipients {
        let at = |field: &str| format!("recipients.{}.{field}", recipient.id);
        if recipient.id.is_empty()
            || !recipient
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ConfigError::Invalid(format!(
                "recipient id `{}` must be non-empty ASCII letters, digits, - or _",
                recipient.id
            )));
        }
        if !seen.insert(recipient.id.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "recipient id `{}` appears twice",
                recipient.id
            )));
        }
        if recipient.request_kinds.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "{} is empty",
                at("request_kinds")
            )));
        }
        if recipient.batch_size == 0 {
            return Err(ConfigError::Invalid(format!(
                "{} must be at least 1",
                at("batch_size")
            )));
        }
        if recipient.rate_limit_per_second == 0 {
            return Err(ConfigError::Invalid(format!(
                "{} must be at least 1",
                at("rate_limit_per_second")
            )));
        }
        if recipient.max_attempts == 0 {
            return Err(ConfigError::Invalid(format!(
                "{} must be at least 1",
                at("max_attempts")
            )));
        }
        if !recipient.base_url.starts_with("http://") && !recipient.base_url.starts_with("https://")
        {
            return Err(ConfigError::Invalid(format!(
                "{} must be an http(s) URL",
                at("base_url")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::samples;

    fn recipient(toml_text: &str) -> RecipientConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn defaults_cover_opt_out_limit_and_delete_in_every_category() {
        let r = recipient(
            "id = \"w\"\nkind = \"webhook\"\nrole = \"THIRD_PARTY\"\nbase_url = \"http://x\"\n",
        );
        assert_eq!(r.request_kinds.len(), 3);
        let mut request = samples::privacy_request();
        request.kind = RequestKind::OptOutSaleShare;
        assert!(r.applies_to(&request));
        request.kind = RequestKind::OptInSaleShare;
        assert!(!r.applies_to(&request));
    }

    #[test]
    fn category_scope_limits_opt_outs_but_not_deletes() {
        let r = recipient(
            "id = \"crm\"\nkind = \"hubspot\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"http://x\"\ncategories = [\"ENRICHMENT\"]\n",
        );
        let mut request = samples::privacy_request();
        request.categories = vec![Category::Advertising];
        request.kind = RequestKind::OptOutSaleShare;
        assert!(!r.applies_to(&request));
        request.kind = RequestKind::Delete;
        assert!(r.applies_to(&request));
        request.kind = RequestKind::OptOutSaleShare;
        request.categories = vec![Category::All];
        assert!(r.applies_to(&request));
    }

    #[test]
    fn duplicate_ids_and_bad_urls_are_refused() {
        let a = recipient(
            "id = \"a\"\nkind = \"webhook\"\nrole = \"THIRD_PARTY\"\nbase_url = \"http://x\"\n",
        );
        let err = validate(&[a.clone(), a.clone()]).unwrap_err();
        assert!(err.to_string().contains("appears twice"));
        let mut bad = a;
        bad.base_url = "ftp://x".into();
        assert!(validate(&[bad])
            .unwrap_err()
            .to_string()
            .contains("recipients.a.base_url"));
    }

    #[test]
    fn settings_errors_name_the_recipient() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Needs {
            property: String,
        }
        let r = recipient("id = \"h\"\nkind = \"hubspot\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"http://x\"\n");
        let err = r.settings::<Needs>().unwrap_err();
        assert!(err.to_string().contains("recipients.h.settings"), "{err}");
    }
}
