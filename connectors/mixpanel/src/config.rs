//! The `[[recipients]]` block of a Mixpanel recipient, validated at start-up.

use std::time::Duration;

use hush_connector_kit::poll::{DefaultWaits, JobWaits, Waits};
use hush_connector_kit::secret::Secret;
use hush_connector_kit::settings::Fields;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

/// The recipient `kind` this connector serves.
pub const KIND: &str = "mixpanel";
/// Mixpanel's host for projects in the US data center (EU: `https://eu.mixpanel.com`, India:
/// `https://in.mixpanel.com`).
pub const DEFAULT_BASE_URL: &str = "https://mixpanel.com";
/// Wait between two reads of a deletion task's status, in milliseconds.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 5_000;
/// Longest wait for a deletion task inside one call, in milliseconds: none by default, because
/// Mixpanel says deletions can take weeks; `verify` reads the task back later.
pub const DEFAULT_MAX_WAIT_MS: u64 = 0;

/// Connector-specific `[recipients.settings]` of a Mixpanel recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixpanelSettings {
    /// `poll_interval_ms`, the wait between two reads of a deletion task's status, and
    /// `max_wait_ms`, the longest wait for a task inside one call; a task not finished then is
    /// confirmed with verification `PENDING` and read back later. 0 (the default) does not wait.
    #[serde(flatten)]
    pub waits: JobWaits,
}

/// The waits of a recipient that sets none.
const DEFAULT_WAITS: DefaultWaits = DefaultWaits {
    poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
    max_wait_ms: DEFAULT_MAX_WAIT_MS,
};

/// The project token (sent as the `token` query parameter) and a GDPR OAuth token of a project
/// owner or admin (sent as a bearer token; Mixpanel issues it for one year). `Debug` never
/// prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixpanelCredentials {
    /// Project token.
    pub project_token: Secret,
    /// GDPR API OAuth token.
    pub oauth_token: Secret,
}

impl MixpanelCredentials {
    /// Reads `credentials.project_token` and `credentials.oauth_token` from the environment
    /// variables the recipient names.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        Ok(Self {
            project_token: fields.credential("project_token")?,
            oauth_token: fields.credential("oauth_token")?,
        })
    }
}

/// A validated Mixpanel recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixpanelConfig {
    /// Recipient id (for logs and errors).
    pub recipient_id: String,
    /// Host without a trailing slash.
    pub base_url: String,
    /// Credentials.
    pub credentials: MixpanelCredentials,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
    /// How long to wait for a task, between reads and inside one call.
    pub waits: Waits,
}

impl MixpanelConfig {
    /// Validates the recipient's settings, reading credentials from the environment.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        Fields::of(recipient).kind_is(&[KIND], "Mixpanel")?;
        let settings: MixpanelSettings = recipient.settings()?;
        let credentials = MixpanelCredentials::from_recipient(recipient)?;
        Self::with_credentials(recipient, settings, credentials)
    }

    /// Validates the recipient's settings with credentials obtained by the caller.
    pub fn with_credentials(
        recipient: &RecipientConfig,
        settings: MixpanelSettings,
        credentials: MixpanelCredentials,
    ) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        fields.http_url("base_url", &recipient.base_url)?;
        let waits = settings.waits.configure(&fields, DEFAULT_WAITS)?;
        for (name, value) in [
            ("project_token", &credentials.project_token),
            ("oauth_token", &credentials.oauth_token),
        ] {
            fields.not_blank(&format!("credentials.{name}"), value)?;
        }
        Ok(Self {
            recipient_id: recipient.id.clone(),
            base_url: fields.base_url(),
            credentials,
            timeout: fields.timeout(),
            waits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::assert_names_field;

    fn recipient(settings: &str) -> RecipientConfig {
        toml::from_str(&format!(
            "id = \"mp\"\nkind = \"mixpanel\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"https://mixpanel.com/\"\n[settings]\n{settings}"
        ))
        .unwrap()
    }

    fn credentials() -> MixpanelCredentials {
        MixpanelCredentials {
            project_token: "project-token-value".into(),
            oauth_token: "oauth-token-value".into(),
        }
    }

    fn config(settings: &str) -> Result<MixpanelConfig, ConfigError> {
        let r = recipient(settings);
        MixpanelConfig::with_credentials(&r, r.settings()?, credentials())
    }

    #[test]
    fn defaults_apply_and_secrets_stay_out_of_debug_output() {
        let c = config("").unwrap();
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert_eq!(c.waits.poll_interval, Duration::from_secs(5));
        assert_eq!(c.waits.max_wait, Duration::ZERO);
        assert!(!format!("{c:?}").contains("-value"));
    }

    #[test]
    fn errors_name_the_field() {
        assert_names_field(
            config("poll_interval_ms = 0"),
            "recipients.mp.settings.poll_interval_ms",
        );
        assert_names_field(
            config("compliance_type = \"GDPR\""),
            "recipients.mp.settings",
        );
        let r = recipient("");
        let empty = MixpanelCredentials {
            project_token: "t".into(),
            oauth_token: " ".into(),
        };
        assert_names_field(
            MixpanelConfig::with_credentials(&r, MixpanelSettings::default(), empty),
            "recipients.mp.credentials.oauth_token",
        );
    }
}
