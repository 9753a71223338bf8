//! The `[[recipients]]` block of a Google Ads Customer Match recipient, validated at start-up.

use std::time::Duration;

use hush_connector_kit::oauth::{google_token_url, ClientCredentials};
use hush_connector_kit::poll::{DefaultWaits, JobWaits, Waits};
use hush_connector_kit::secret::Secret;
use hush_connector_kit::settings::Fields;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

/// Google Ads API version used when `settings.api_version` is not set.
pub const DEFAULT_API_VERSION: &str = "v25";
/// Wait between two reads of a running job's status, in milliseconds.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 2_000;
/// Longest wait for a job to finish inside one call, in milliseconds.
pub const DEFAULT_MAX_WAIT_MS: u64 = 600_000;

/// Connector-specific `[recipients.settings]` of a Google Ads recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleAdsSettings {
    /// Google Ads customer id that owns the user list (`123-456-7890` or `1234567890`).
    pub customer_id: String,
    /// Id of the Customer Match user list people are removed from.
    pub user_list_id: String,
    /// Manager account id sent as `login-customer-id`, when access goes through a manager.
    #[serde(default)]
    pub login_customer_id: Option<String>,
    /// Google Ads API version, e.g. `v25`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// OAuth 2.0 token endpoint where the refresh token is exchanged.
    #[serde(default = "google_token_url")]
    pub token_url: String,
    /// `poll_interval_ms`, the wait between two reads of a running job's status, and
    /// `max_wait_ms`, the longest wait for a job inside one call; a job still running then is
    /// confirmed with verification `PENDING` and read back later.
    #[serde(flatten)]
    pub waits: JobWaits,
}

fn default_api_version() -> String {
    DEFAULT_API_VERSION.to_owned()
}

/// The waits of a recipient that sets none.
const DEFAULT_WAITS: DefaultWaits = DefaultWaits {
    poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
    max_wait_ms: DEFAULT_MAX_WAIT_MS,
};

/// OAuth 2.0 client credentials and the Google Ads developer token. `Debug` never prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleAdsCredentials {
    /// OAuth client credentials and the refresh token of the user who can manage the user
    /// list.
    pub oauth: ClientCredentials,
    /// Google Ads developer token (`developer-token` header).
    pub developer_token: Secret,
}

impl GoogleAdsCredentials {
    /// Reads `credentials.client_id`, `client_secret`, `refresh_token` and `developer_token`
    /// from the environment variables the recipient names.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            oauth: ClientCredentials::from_recipient(recipient)?,
            developer_token: Fields::of(recipient).credential("developer_token")?,
        })
    }
}

/// Everything the connector needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct GoogleAdsConfig {
    /// Recipient id (for error messages).
    pub recipient_id: String,
    /// API root without a trailing slash, e.g. `https://googleads.googleapis.com`.
    pub base_url: String,
    /// API version path segment.
    pub api_version: String,
    /// Customer id, digits only.
    pub customer_id: String,
    /// User list id, digits only.
    pub user_list_id: String,
    /// Manager customer id, digits only.
    pub login_customer_id: Option<String>,
    /// OAuth token endpoint.
    pub token_url: String,
    /// Credentials.
    pub credentials: GoogleAdsCredentials,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
    /// How long to wait for a job, between status reads and inside one call.
    pub waits: Waits,
}

impl GoogleAdsConfig {
    /// Validates the recipient's settings, reading credentials from the environment.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let settings: GoogleAdsSettings = recipient.settings()?;
        let credentials = GoogleAdsCredentials::from_recipient(recipient)?;
        Self::with_credentials(recipient, settings, credentials)
    }

    /// Validates the recipient's settings with credentials obtained by the caller.
    pub fn with_credentials(
        recipient: &RecipientConfig,
        settings: GoogleAdsSettings,
        credentials: GoogleAdsCredentials,
    ) -> Result<Self, ConfigError> {
        let field = |name: &str| format!("recipients.{}.settings.{name}", recipient.id);
        let customer_id = account_id(&settings.customer_id, &field("customer_id"))?;
        let user_list_id = digits(&settings.user_list_id, &field("user_list_id"))?;
        let login_customer_id = settings
            .login_customer_id
            .as_deref()
            .map(|id| account_id(id, &field("login_customer_id")))
            .transpose()?;
        let version = settings.api_version.trim();
        if !(version.len() > 1
            && version.starts_with('v')
            && version[1..].bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ConfigError::Invalid(format!(
                "{} must look like `v25`, got `{}`",
                field("api_version"),
                settings.api_version
            )));
        }
        let fields = Fields::of(recipient);
        fields.http_url("settings.token_url", &settings.token_url)?;
        let waits = settings.waits.configure(&fields, DEFAULT_WAITS)?;
        fields.http_url("base_url", &recipient.base_url)?;
        credentials.oauth.check_not_blank(&fields)?;
        fields.not_blank("credentials.developer_token", &credentials.developer_token)?;
        Ok(Self {
            recipient_id: recipient.id.clone(),
            base_url: fields.base_url(),
            api_version: version.to_owned(),
            customer_id,
            user_list_id,
            login_customer_id,
            token_url: settings.token_url,
            credentials,
            timeout: fields.timeout(),
            waits,
        })
    }
}

/// A Google Ads account id: digits, optionally grouped with hyphens as the UI shows them.
fn account_id(value: &str, field: &str) -> Result<String, ConfigError> {
    digits(&value.trim().replace('-', ""), field)
}

fn digits(value: &str, field: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::Invalid(format!(
            "{field} must be a numeric Google Ads id, got `{value}`"
        )));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::oauth::GOOGLE_TOKEN_URL;
    use hush_connector_kit::testing::assert_names_field;
    use hush_connector_kit::testing::google::oauth_client_credentials;

    fn recipient(settings: &str) -> RecipientConfig {
        toml::from_str(&format!(
            "id = \"gads\"\nkind = \"google_ads\"\nrole = \"THIRD_PARTY\"\nbase_url = \"https://googleads.googleapis.com/\"\n[settings]\n{settings}"
        ))
        .unwrap()
    }

    fn credentials() -> GoogleAdsCredentials {
        GoogleAdsCredentials {
            oauth: oauth_client_credentials(),
            developer_token: "developer-token-value".into(),
        }
    }

    fn config(settings: &str) -> Result<GoogleAdsConfig, ConfigError> {
        let r = recipient(settings);
        GoogleAdsConfig::with_credentials(&r, r.settings()?, credentials())
    }

    #[test]
    fn defaults_apply_and_hyphenated_ids_are_accepted() {
        let c = config("customer_id = \"123-456-7890\"\nuser_list_id = \"42\"").unwrap();
        assert_eq!(c.customer_id, "1234567890");
        assert_eq!(c.api_version, "v25");
        assert_eq!(c.token_url, GOOGLE_TOKEN_URL);
        assert_eq!(c.base_url, "https://googleads.googleapis.com");
        assert_eq!(c.waits.poll_interval, Duration::from_millis(2_000));
        assert_eq!(c.waits.max_wait, Duration::from_millis(600_000));
        assert_eq!(c.login_customer_id, None);
    }

    #[test]
    fn errors_name_the_field() {
        assert_names_field(
            config("customer_id = \"12a\"\nuser_list_id = \"42\""),
            "recipients.gads.settings.customer_id",
        );
        assert_names_field(
            config("customer_id = \"1\"\nuser_list_id = \"42\"\napi_version = \"18\""),
            "settings.api_version",
        );
        assert_names_field(config("customer_id = \"1\""), "recipients.gads.settings");
        assert_names_field(
            config("customer_id = \"1\"\nuser_list_id = \"2\"\nlist = \"3\""),
            "list",
        );
    }

    #[test]
    fn credentials_never_reach_debug_output() {
        let c = config("customer_id = \"1\"\nuser_list_id = \"2\"").unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("-value"), "{shown}");
    }
}
