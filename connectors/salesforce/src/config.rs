//! The Salesforce recipient's configuration: the `[recipients.settings]` block and the
//! credentials, validated at start-up with errors that name the field at fault.

use std::time::Duration;

use hush_connector_kit::secret::Secret;
use hush_connector_kit::settings::Fields;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::{Deserialize, Serialize};

/// A consent flag of the Salesforce `Individual` object that Hush may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IndividualFlag {
    /// "Don't Track": no tracking of the person's web activity.
    HasOptedOutTracking,
    /// "Don't Profile": no processing to predict personal attributes.
    HasOptedOutProfiling,
    /// "Don't Process": no processing of the person's data at all.
    HasOptedOutProcessing,
    /// "Don't Market": no solicitation.
    HasOptedOutSolicit,
}

impl IndividualFlag {
    /// The API name of the field on `Individual`.
    pub fn field(self) -> &'static str {
        match self {
            IndividualFlag::HasOptedOutTracking => "HasOptedOutTracking",
            IndividualFlag::HasOptedOutProfiling => "HasOptedOutProfiling",
            IndividualFlag::HasOptedOutProcessing => "HasOptedOutProcessing",
            IndividualFlag::HasOptedOutSolicit => "HasOptedOutSolicit",
        }
    }
}

/// The connector-specific `[recipients.settings]` block. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SalesforceSettings {
    /// REST API version used in every data path, e.g. `v67.0`. Default [`DEFAULT_API_VERSION`].
    pub api_version: String,
    /// Seconds after which the access token is fetched again. Salesforce does not say when a
    /// client-credentials token expires, so the connector also refreshes once on a 401
    /// `INVALID_SESSION_ID`.
    pub token_ttl_secs: u64,
    /// Flags set to `true` for an opt-out of sale/share (and back to `false` for a
    /// consumer-initiated opt-in). Add `HasOptedOutProcessing` here to stop all processing.
    pub opt_out_flags: Vec<IndividualFlag>,
    /// Flags set to `true` for a limit on the use of sensitive personal information.
    pub limit_sensitive_flags: Vec<IndividualFlag>,
    /// Create (and link) an `Individual` for a Contact or Lead that has none. When `false`,
    /// a person whose records have no `Individual` is reported NOT_FOUND with the reason.
    pub create_individuals: bool,
    /// For a deletion, delete the Contact and Lead records after setting `ShouldForget`.
    /// When `false`, only `ShouldForget` is set and the outcome is FLAGGED.
    pub delete_records: bool,
    /// Wait, in seconds, when Salesforce refuses with 429 or `REQUEST_LIMIT_EXCEEDED`
    /// without a `Retry-After` header.
    pub retry_after_default_secs: u64,
}

/// Summer '26 (v67.0), the newest REST API version every org serves on 2026-12-01: Winter '27
/// (v68.0) is listed in Salesforce's version archive, but its general availability date was not
/// confirmed. Source: Salesforce SOQL and SOSL guide, PDF archive of versions.
pub const DEFAULT_API_VERSION: &str = "v67.0";

impl Default for SalesforceSettings {
    fn default() -> Self {
        Self {
            api_version: DEFAULT_API_VERSION.into(),
            token_ttl_secs: 3600,
            opt_out_flags: vec![
                IndividualFlag::HasOptedOutTracking,
                IndividualFlag::HasOptedOutProfiling,
            ],
            limit_sensitive_flags: vec![IndividualFlag::HasOptedOutProcessing],
            create_individuals: true,
            delete_records: true,
            retry_after_default_secs: 60,
        }
    }
}

impl SalesforceSettings {
    /// Checks every field; the error names `recipients.<id>.settings.<field>`.
    pub fn validate(&self, recipient_id: &str) -> Result<(), ConfigError> {
        let at = |field: &str| format!("recipients.{recipient_id}.settings.{field}");
        if !is_api_version(&self.api_version) {
            return Err(ConfigError::Invalid(format!(
                "{} must look like `v67.0`, got `{}`",
                at("api_version"),
                self.api_version
            )));
        }
        if self.token_ttl_secs == 0 {
            return Err(ConfigError::Invalid(format!(
                "{} must be at least 1",
                at("token_ttl_secs")
            )));
        }
        if self.retry_after_default_secs == 0 {
            return Err(ConfigError::Invalid(format!(
                "{} must be at least 1",
                at("retry_after_default_secs")
            )));
        }
        for (name, flags) in [
            ("opt_out_flags", &self.opt_out_flags),
            ("limit_sensitive_flags", &self.limit_sensitive_flags),
        ] {
            if flags.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "{} must name at least one Individual flag",
                    at(name)
                )));
            }
            let mut sorted = flags.clone();
            sorted.sort();
            sorted.dedup();
            if sorted.len() != flags.len() {
                return Err(ConfigError::Invalid(format!(
                    "{} names a flag twice",
                    at(name)
                )));
            }
        }
        Ok(())
    }
}

fn is_api_version(value: &str) -> bool {
    let Some(number) = value.strip_prefix('v') else {
        return false;
    };
    let Some((major, minor)) = number.split_once('.') else {
        return false;
    };
    !major.is_empty()
        && !minor.is_empty()
        && major.bytes().all(|b| b.is_ascii_digit())
        && minor.bytes().all(|b| b.is_ascii_digit())
}

/// The OAuth client credentials of the connected (external client) app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// Consumer key.
    pub client_id: String,
    /// Consumer secret.
    pub client_secret: Secret,
}

/// Everything the connector needs, resolved and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesforceConfig {
    /// Recipient id, for error messages.
    pub recipient_id: String,
    /// My Domain (or login) URL without a trailing slash; the token endpoint lives here and the
    /// data calls go here too when the token response carries no `instance_url`.
    pub base_url: String,
    /// Client credentials.
    pub credentials: ClientCredentials,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
    /// Connector-specific settings.
    pub settings: SalesforceSettings,
}

impl SalesforceConfig {
    /// Reads `credentials.client_id` and `credentials.client_secret` (environment-variable
    /// names) and the `settings` block of a recipient, and validates them.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        Fields::of(recipient).kind_is(&[crate::KIND], "Salesforce")?;
        let settings: SalesforceSettings = recipient.settings()?;
        settings.validate(&recipient.id)?;
        if recipient.timeout_ms == 0 {
            return Err(ConfigError::Invalid(format!(
                "recipients.{}.timeout_ms must be at least 1",
                recipient.id
            )));
        }
        Ok(Self {
            recipient_id: recipient.id.clone(),
            base_url: recipient.base_url.trim_end_matches('/').to_owned(),
            credentials: ClientCredentials {
                client_id: recipient.credential("client_id")?,
                client_secret: Fields::of(recipient).credential("client_secret")?,
            },
            timeout: Duration::from_millis(recipient.timeout_ms),
            settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_text: &str) -> Result<SalesforceSettings, String> {
        toml::from_str::<SalesforceSettings>(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_set_tracking_and_profiling_for_opt_out_and_processing_for_limit() {
        let s = settings("").unwrap();
        assert_eq!(s.api_version, "v67.0");
        assert_eq!(s.token_ttl_secs, 3600);
        assert_eq!(
            s.opt_out_flags,
            [
                IndividualFlag::HasOptedOutTracking,
                IndividualFlag::HasOptedOutProfiling
            ]
        );
        assert_eq!(
            s.limit_sensitive_flags,
            [IndividualFlag::HasOptedOutProcessing]
        );
        assert!(s.create_individuals && s.delete_records);
        s.validate("sf").unwrap();
    }

    #[test]
    fn flags_are_read_by_their_salesforce_field_names() {
        let s =
            settings("limit_sensitive_flags = [\"HasOptedOutProfiling\", \"HasOptedOutSolicit\"]")
                .unwrap();
        assert_eq!(
            s.limit_sensitive_flags
                .iter()
                .map(|f| f.field())
                .collect::<Vec<_>>(),
            ["HasOptedOutProfiling", "HasOptedOutSolicit"]
        );
        let err = settings("opt_out_flags = [\"ShouldForget\"]").unwrap_err();
        assert!(err.contains("ShouldForget"), "{err}");
    }

    #[test]
    fn unknown_setting_is_refused() {
        let err = settings("delete_contacts = true").unwrap_err();
        assert!(err.contains("delete_contacts"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_field() {
        let bad_version = SalesforceSettings {
            api_version: "61".into(),
            ..Default::default()
        };
        let err = bad_version.validate("sf").unwrap_err().to_string();
        assert!(err.contains("recipients.sf.settings.api_version"), "{err}");

        let no_flags = SalesforceSettings {
            limit_sensitive_flags: vec![],
            ..Default::default()
        };
        let err = no_flags.validate("sf").unwrap_err().to_string();
        assert!(err.contains("limit_sensitive_flags"), "{err}");

        let twice = SalesforceSettings {
            opt_out_flags: vec![
                IndividualFlag::HasOptedOutTracking,
                IndividualFlag::HasOptedOutTracking,
            ],
            ..Default::default()
        };
        let err = twice.validate("sf").unwrap_err().to_string();
        assert!(err.contains("opt_out_flags"), "{err}");

        let zero_ttl = SalesforceSettings {
            token_ttl_secs: 0,
            ..Default::default()
        };
        let err = zero_ttl.validate("sf").unwrap_err().to_string();
        assert!(err.contains("token_ttl_secs"), "{err}");
    }

    #[test]
    fn client_secret_is_redacted_in_debug_output() {
        let credentials = ClientCredentials {
            client_id: "id".into(),
            client_secret: "hunter2".into(),
        };
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }
}
