//! The `[[recipients]]` block of an Amplitude recipient, validated at start-up.

use std::time::Duration;

use hush_connector_kit::poll::{DefaultWaits, JobWaits, Waits};
use hush_connector_kit::secret::Secret;
use hush_connector_kit::settings::Fields;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

/// The recipient `kind` this connector serves.
pub const KIND: &str = "amplitude";
/// Amplitude's REST host for projects in the default (US) data center; EU projects use
/// `https://analytics.eu.amplitude.com`.
pub const DEFAULT_BASE_URL: &str = "https://amplitude.com";
/// Wait between two reads of a deletion job's status, in milliseconds.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 2_000;
/// Longest wait for a deletion job inside one call, in milliseconds: none by default, because
/// Amplitude runs a job 10 to 13 days after its first request; `verify` reads it back later.
pub const DEFAULT_MAX_WAIT_MS: u64 = 0;

/// Connector-specific `[recipients.settings]` of an Amplitude recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmplitudeSettings {
    /// Who asks for the deletions, recorded by Amplitude for its audit (`requester`): a team
    /// mailbox or a service name, never a consumer's address.
    pub requester: String,
    /// Delete the people from every project of the organisation (`delete_from_org`, needs
    /// Amplitude's Portfolio feature) instead of only the project the API key belongs to.
    #[serde(default)]
    pub delete_from_org: bool,
    /// `poll_interval_ms`, the wait between two reads of a deletion job's status, and
    /// `max_wait_ms`, the longest wait for a deletion job inside one call; a job not `done` then
    /// is confirmed with verification `PENDING` and read back later. 0 (the default) does not
    /// wait.
    #[serde(flatten)]
    pub waits: JobWaits,
}

/// The waits of a recipient that sets none.
const DEFAULT_WAITS: DefaultWaits = DefaultWaits {
    poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
    max_wait_ms: DEFAULT_MAX_WAIT_MS,
};

/// The project's API key and secret key (HTTP basic auth). `Debug` never prints the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmplitudeCredentials {
    /// Project API key (the basic-auth user name).
    pub api_key: String,
    /// Project secret key (the basic-auth password).
    pub secret_key: Secret,
}

impl AmplitudeCredentials {
    /// Reads `credentials.api_key` and `credentials.secret_key` from the environment variables
    /// the recipient names.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            api_key: recipient.credential("api_key")?,
            secret_key: Fields::of(recipient).credential("secret_key")?,
        })
    }
}

/// A validated Amplitude recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmplitudeConfig {
    /// Recipient id (for logs and errors).
    pub recipient_id: String,
    /// REST host without a trailing slash.
    pub base_url: String,
    /// `requester` sent with every deletion.
    pub requester: String,
    /// Whether deletions cover the whole organisation.
    pub delete_from_org: bool,
    /// Credentials.
    pub credentials: AmplitudeCredentials,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
    /// How long to wait for a deletion job, between reads and inside one call.
    pub waits: Waits,
}

impl AmplitudeConfig {
    /// Validates the recipient's settings, reading credentials from the environment.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        Fields::of(recipient).kind_is(&[KIND], "Amplitude")?;
        let settings: AmplitudeSettings = recipient.settings()?;
        let credentials = AmplitudeCredentials::from_recipient(recipient)?;
        Self::with_credentials(recipient, settings, credentials)
    }

    /// Validates the recipient's settings with credentials obtained by the caller.
    pub fn with_credentials(
        recipient: &RecipientConfig,
        settings: AmplitudeSettings,
        credentials: AmplitudeCredentials,
    ) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        fields.http_url("base_url", &recipient.base_url)?;
        let requester = settings.requester.trim().to_owned();
        if requester.is_empty() {
            return Err(fields.invalid(
                "settings.requester",
                "is empty; name the team or service that asks for deletions",
            ));
        }
        let waits = settings.waits.configure(&fields, DEFAULT_WAITS)?;
        if credentials.api_key.trim().is_empty() {
            return Err(fields.invalid("credentials.api_key", "is empty"));
        }
        fields.not_blank("credentials.secret_key", &credentials.secret_key)?;
        Ok(Self {
            recipient_id: recipient.id.clone(),
            base_url: fields.base_url(),
            requester,
            delete_from_org: settings.delete_from_org,
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
            "id = \"amp\"\nkind = \"amplitude\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"https://amplitude.com/\"\n[settings]\n{settings}"
        ))
        .unwrap()
    }

    fn credentials() -> AmplitudeCredentials {
        AmplitudeCredentials {
            api_key: "key".into(),
            secret_key: "amplitude-secret-value".into(),
        }
    }

    fn config(settings: &str) -> Result<AmplitudeConfig, ConfigError> {
        let r = recipient(settings);
        AmplitudeConfig::with_credentials(&r, r.settings()?, credentials())
    }

    #[test]
    fn defaults_delete_from_the_project_without_waiting() {
        let c = config("requester = \"privacy-bot\"").unwrap();
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert_eq!(c.requester, "privacy-bot");
        assert!(!c.delete_from_org);
        assert_eq!(c.waits.poll_interval, Duration::from_secs(2));
        assert_eq!(c.waits.max_wait, Duration::ZERO);
        assert!(!format!("{c:?}").contains("amplitude-secret-value"));
    }

    #[test]
    fn errors_name_the_field() {
        assert_names_field(config(""), "recipients.amp.settings");
        assert_names_field(
            config("requester = \"  \""),
            "recipients.amp.settings.requester",
        );
        assert_names_field(
            config("requester = \"x\"\npoll_interval_ms = 0"),
            "recipients.amp.settings.poll_interval_ms",
        );
        assert_names_field(
            config("requester = \"x\"\nignore_invalid_id = false"),
            "ignore_invalid_id",
        );
        let r = recipient("requester = \"x\"");
        let empty = AmplitudeCredentials {
            api_key: "key".into(),
            secret_key: " ".into(),
        };
        assert_names_field(
            AmplitudeConfig::with_credentials(&r, r.settings().unwrap(), empty),
            "recipients.amp.credentials.secret_key",
        );
    }
}
