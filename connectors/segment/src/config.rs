//! The `[[recipients]]` block of a Segment recipient, validated at start-up.

use std::time::Duration;

use hush_connector_kit::poll::{DefaultWaits, JobWaits, Waits};
use hush_connector_kit::secret::Secret;
use hush_connector_kit::settings::Fields;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

/// Segment Public API root for US workspaces (EU workspaces use `https://eu1.api.segmentapis.com`).
pub const DEFAULT_BASE_URL: &str = "https://api.segmentapis.com";
/// Wait between two reads of a regulation's status, in milliseconds.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 2_000;
/// Longest wait for a regulation to finish inside one call, in milliseconds.
pub const DEFAULT_MAX_WAIT_MS: u64 = 600_000;

/// Connector-specific `[recipients.settings]` of a Segment recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentSettings {
    /// `poll_interval_ms`, the wait between two reads of a regulation's status, and
    /// `max_wait_ms`, the longest wait for a regulation inside one call; one still running then
    /// is confirmed with verification `PENDING` and read back later.
    #[serde(flatten)]
    pub waits: JobWaits,
}

/// The waits of a recipient that sets none.
const DEFAULT_WAITS: DefaultWaits = DefaultWaits {
    poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
    max_wait_ms: DEFAULT_MAX_WAIT_MS,
};

/// Everything the connector needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct SegmentConfig {
    /// Recipient id (for error messages).
    pub recipient_id: String,
    /// Public API root without a trailing slash.
    pub base_url: String,
    /// Workspace token with the permission to create regulations.
    pub token: Secret,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
    /// How long to wait for a regulation, between reads and inside one call.
    pub waits: Waits,
}

impl SegmentConfig {
    /// Validates the recipient's settings, reading `credentials.token` from the environment.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let token = Fields::of(recipient).credential("token")?;
        Self::with_token(recipient, token)
    }

    /// Validates the recipient's settings with a token obtained by the caller.
    pub fn with_token(recipient: &RecipientConfig, token: Secret) -> Result<Self, ConfigError> {
        let settings: SegmentSettings = recipient.settings()?;
        let fields = Fields::of(recipient);
        fields.http_url("base_url", &recipient.base_url)?;
        let waits = settings.waits.configure(&fields, DEFAULT_WAITS)?;
        fields.not_blank("credentials.token", &token)?;
        Ok(Self {
            recipient_id: recipient.id.clone(),
            base_url: fields.base_url(),
            token,
            timeout: fields.timeout(),
            waits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::assert_names_field;

    fn recipient(extra: &str) -> RecipientConfig {
        toml::from_str(&format!(
            "id = \"cdp\"\nkind = \"segment\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"https://api.segmentapis.com/\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn defaults_apply_without_a_settings_table() {
        let c = SegmentConfig::with_token(&recipient(""), Secret::new("t")).unwrap();
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert_eq!(c.waits.poll_interval, Duration::from_secs(2));
        assert_eq!(c.waits.max_wait, Duration::from_secs(600));
        assert!(!format!("{c:?}").contains("\"t\""));
    }

    #[test]
    fn errors_name_the_field() {
        assert_names_field(
            SegmentConfig::with_token(
                &recipient("[settings]\npoll_interval_ms = 0"),
                Secret::new("t"),
            ),
            "recipients.cdp.settings.poll_interval_ms",
        );
        assert_names_field(
            SegmentConfig::with_token(
                &recipient("[settings]\nworkspace = \"w\""),
                Secret::new("t"),
            ),
            "recipients.cdp.settings",
        );
        assert_names_field(
            SegmentConfig::from_recipient(&recipient("")),
            "credentials.token",
        );
    }
}
