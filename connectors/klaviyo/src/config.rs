//! The `[[recipients]]` block of a Klaviyo recipient, validated at start-up.

use std::time::Duration;

use chrono::{Months, NaiveDate};
use hush_connector_kit::poll::{DefaultWaits, JobWaits, Waits};
use hush_connector_kit::secret::Secret;
use hush_connector_kit::settings::Fields;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

/// The connector kind this crate implements (`kind = "klaviyo"`).
pub const KIND: &str = "klaviyo";

/// Klaviyo's API root.
pub const DEFAULT_BASE_URL: &str = "https://a.klaviyo.com";
/// The newest stable revision on 2026-12-01 (released 2026-10-15, supported until 2028-10-15).
/// Source: developers.klaviyo.com changelog and "API versioning and deprecation policy".
pub const DEFAULT_REVISION: &str = "2026-10-15";
/// Months Klaviyo supports a revision after its release (one year stable, one deprecated).
pub const REVISION_SUPPORT_MONTHS: u32 = 24;
/// Wait between two reads of a job or profile, in milliseconds.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 2_000;
/// Longest wait inside one call for Klaviyo to finish, in milliseconds.
pub const DEFAULT_MAX_WAIT_MS: u64 = 60_000;

/// Connector-specific `[recipients.settings]` of a Klaviyo recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KlaviyoSettings {
    /// The `revision` header sent with every call (`YYYY-MM-DD`). Default
    /// [`DEFAULT_REVISION`].
    #[serde(default = "default_revision")]
    pub revision: String,
    /// Whether a limit on sensitive PI suppresses the profile too (Klaviyo has no narrower
    /// switch). Default `true`; `false` answers `NOT_APPLICABLE`.
    #[serde(default = "default_true")]
    pub suppress_on_limit: bool,
    /// `poll_interval_ms`, the wait between two reads, and `max_wait_ms`, the longest wait
    /// inside one call; a job or deletion not finished then is confirmed with verification
    /// `PENDING` and read back later.
    #[serde(flatten)]
    pub waits: JobWaits,
}

fn default_revision() -> String {
    DEFAULT_REVISION.to_owned()
}

fn default_true() -> bool {
    true
}

/// The waits of a recipient that sets none.
const DEFAULT_WAITS: DefaultWaits = DefaultWaits {
    poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
    max_wait_ms: DEFAULT_MAX_WAIT_MS,
};

impl Default for KlaviyoSettings {
    fn default() -> Self {
        Self {
            revision: default_revision(),
            suppress_on_limit: true,
            waits: JobWaits::default(),
        }
    }
}

/// Everything the Klaviyo connector needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct KlaviyoConfig {
    /// Recipient id (`connector_id` in confirmations).
    pub recipient_id: String,
    /// API root without a trailing slash.
    pub base_url: String,
    /// Private API key with the `data-privacy:write`, `profiles:read`, `profiles:write`,
    /// `subscriptions:read` and `subscriptions:write` scopes.
    pub api_key: Secret,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
    /// How long to wait for a job or profile, between reads and inside one call.
    pub waits: Waits,
    /// Revision and what a limit does.
    pub settings: KlaviyoSettings,
}

impl KlaviyoConfig {
    /// Reads and validates a `kind = "klaviyo"` recipient; the key comes from the environment
    /// variable named by `credentials.api_key`. Errors name the field at fault.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let api_key = Fields::of(recipient).credential("api_key")?;
        Self::with_api_key(recipient, api_key, chrono::Utc::now().date_naive())
    }

    /// Validates the recipient with a key obtained by the caller, judging the revision's
    /// support on `today`.
    pub fn with_api_key(
        recipient: &RecipientConfig,
        api_key: Secret,
        today: NaiveDate,
    ) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        fields.kind_is(&[KIND], "Klaviyo")?;
        let settings: KlaviyoSettings = recipient.settings()?;
        check_revision(&fields, &settings.revision, today)?;
        fields.http_url("base_url", &recipient.base_url)?;
        fields.at_least_one("timeout_ms", recipient.timeout_ms)?;
        let waits = settings.waits.configure(&fields, DEFAULT_WAITS)?;
        fields.not_blank("credentials.api_key", &api_key)?;
        Ok(Self {
            recipient_id: recipient.id.clone(),
            base_url: fields.base_url(),
            api_key,
            timeout: fields.timeout(),
            waits,
            settings,
        })
    }
}

/// A revision is a release date, `YYYY-MM-DD` (a `.pre` beta suffix is refused: this
/// connector uses stable endpoints only), released by `today` and less than two years old.
fn check_revision(
    fields: &Fields<'_>,
    revision: &str,
    today: NaiveDate,
) -> Result<(), ConfigError> {
    let field = "settings.revision";
    let Ok(released) = NaiveDate::parse_from_str(revision, "%Y-%m-%d") else {
        return Err(fields.invalid(
            field,
            format_args!(
                "`{revision}` is not a Klaviyo revision date (YYYY-MM-DD, e.g. {DEFAULT_REVISION})"
            ),
        ));
    };
    if released > today {
        return Err(fields.invalid(
            field,
            format_args!("`{revision}` is in the future; Klaviyo has not released it"),
        ));
    }
    let retired = released
        .checked_add_months(Months::new(REVISION_SUPPORT_MONTHS))
        .unwrap_or(released);
    if retired <= today {
        return Err(fields.invalid(
            field,
            format_args!(
                "`{revision}` was retired on {retired} (Klaviyo supports a revision for two \
                 years); set a current one, e.g. {DEFAULT_REVISION}"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::assert_names_field;

    const TODAY: NaiveDate = match NaiveDate::from_ymd_opt(2026, 12, 1) {
        Some(date) => date,
        None => panic!("date"),
    };

    fn recipient(extra: &str) -> RecipientConfig {
        toml::from_str(&format!(
            "id = \"kl\"\nkind = \"klaviyo\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"https://a.klaviyo.com/\"\n{extra}"
        ))
        .unwrap()
    }

    fn build(extra: &str) -> Result<KlaviyoConfig, ConfigError> {
        KlaviyoConfig::with_api_key(&recipient(extra), Secret::new("pk_x"), TODAY)
    }

    #[test]
    fn defaults_apply_without_a_settings_table() {
        let config = build("").unwrap();
        assert_eq!(config.base_url, DEFAULT_BASE_URL);
        assert_eq!(config.settings, KlaviyoSettings::default());
        assert!(!format!("{config:?}").contains("pk_x"));
    }

    #[test]
    fn retired_future_and_malformed_revisions_are_refused() {
        for (revision, says) in [
            ("2024-10-15", "retired on 2026-10-15"),
            ("2027-01-15", "in the future"),
            ("2026-10-15.pre", "not a Klaviyo revision"),
        ] {
            let error = build(&format!("[settings]\nrevision = \"{revision}\""))
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("recipients.kl.settings.revision") && error.contains(says),
                "{error}"
            );
        }
        assert!(build("[settings]\nrevision = \"2025-01-15\"").is_ok());
    }

    #[test]
    fn other_errors_name_the_field() {
        assert_names_field(
            build("[settings]\npoll_interval_ms = 0"),
            "recipients.kl.settings.poll_interval_ms",
        );
        assert_names_field(
            build("[settings]\nlist_id = \"x\""),
            "recipients.kl.settings",
        );
        assert_names_field(
            KlaviyoConfig::from_recipient(&recipient("")),
            "credentials.api_key",
        );
    }
}
