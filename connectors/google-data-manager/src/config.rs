//! The `[[recipients]]` block of a Google Data Manager recipient, validated at start-up.

use std::time::Duration;

use hush_connector_kit::oauth::{google_token_url, ClientCredentials};
use hush_connector_kit::poll::{DefaultWaits, JobWaits, Waits};
use hush_connector_kit::settings::Fields;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

/// Account type of the operating account when `settings.operating_account_type` is not set.
pub const DEFAULT_ACCOUNT_TYPE: &str = "GOOGLE_ADS";
/// Wait between two reads of a request's status, in milliseconds.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 5_000;
/// Longest wait for a request to be processed inside one call, in milliseconds.
pub const DEFAULT_MAX_WAIT_MS: u64 = 600_000;

/// The `accountType` values of a Data Manager `ProductAccount` that own Customer Match
/// audiences people can be removed from.
pub const ACCOUNT_TYPES: &[&str] = &[
    "GOOGLE_ADS",
    "DISPLAY_VIDEO_PARTNER",
    "DISPLAY_VIDEO_ADVERTISER",
    "DATA_PARTNER",
];

/// Connector-specific `[recipients.settings]` of a Google Data Manager recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleDataManagerSettings {
    /// Account that owns the audience (a Google Ads customer id, `123-456-7890` or
    /// `1234567890`): the destination's `operatingAccount.accountId`.
    pub operating_account_id: String,
    /// `operatingAccount.accountType`, `GOOGLE_ADS` unless set.
    #[serde(default = "default_account_type")]
    pub operating_account_type: String,
    /// Id of the Customer Match audience (user list): the destination's `productDestinationId`.
    pub audience_id: String,
    /// Account the credential logs in through (a manager account), when it is not the
    /// operating account: the destination's `loginAccount.accountId`.
    #[serde(default)]
    pub login_account_id: Option<String>,
    /// `loginAccount.accountType`, `GOOGLE_ADS` unless set.
    #[serde(default = "default_account_type")]
    pub login_account_type: String,
    /// OAuth 2.0 token endpoint where the refresh token is exchanged.
    #[serde(default = "google_token_url")]
    pub token_url: String,
    /// `poll_interval_ms`, the wait between two reads of a request's status, and
    /// `max_wait_ms`, the longest wait for a request inside one call; a request still
    /// processing then is confirmed with verification `PENDING` and read back later.
    #[serde(flatten)]
    pub waits: JobWaits,
}

fn default_account_type() -> String {
    DEFAULT_ACCOUNT_TYPE.to_owned()
}

/// The waits of a recipient that sets none.
const DEFAULT_WAITS: DefaultWaits = DefaultWaits {
    poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
    max_wait_ms: DEFAULT_MAX_WAIT_MS,
};

/// One Data Manager account: its type and numeric id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductAccount {
    /// `GOOGLE_ADS`, `DISPLAY_VIDEO_PARTNER`, …
    pub account_type: String,
    /// Digits only.
    pub account_id: String,
}

/// A validated Google Data Manager recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleDataManagerConfig {
    /// Recipient id (for logs and errors).
    pub recipient_id: String,
    /// API root without a trailing slash, e.g. `https://datamanager.googleapis.com`.
    pub base_url: String,
    /// The account that owns the audience.
    pub operating_account: ProductAccount,
    /// The account the credential logs in through, when set.
    pub login_account: Option<ProductAccount>,
    /// The audience's id, digits only.
    pub audience_id: String,
    /// OAuth token endpoint.
    pub token_url: String,
    /// OAuth client credentials and the refresh token of a user who can manage the audience,
    /// issued with the `https://www.googleapis.com/auth/datamanager` scope (the Data Manager
    /// API needs no developer token).
    pub credentials: ClientCredentials,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
    /// How long to wait for a request, between status reads and inside one call.
    pub waits: Waits,
}

impl GoogleDataManagerConfig {
    /// Validates the recipient's settings, reading credentials from the environment.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let settings: GoogleDataManagerSettings = recipient.settings()?;
        let credentials = ClientCredentials::from_recipient(recipient)?;
        Self::with_credentials(recipient, settings, credentials)
    }

    /// Validates the recipient's settings with credentials obtained by the caller.
    pub fn with_credentials(
        recipient: &RecipientConfig,
        settings: GoogleDataManagerSettings,
        credentials: ClientCredentials,
    ) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        let operating_account = account(
            &fields,
            "operating_account",
            &settings.operating_account_type,
            &settings.operating_account_id,
        )?;
        let login_account = settings
            .login_account_id
            .as_deref()
            .map(|id| account(&fields, "login_account", &settings.login_account_type, id))
            .transpose()?;
        let audience_id = settings.audience_id.trim().to_owned();
        fields.numeric_id(
            "settings.audience_id",
            &audience_id,
            "a Customer Match audience (user list)",
        )?;
        fields.http_url("settings.token_url", &settings.token_url)?;
        let waits = settings.waits.configure(&fields, DEFAULT_WAITS)?;
        fields.http_url("base_url", &recipient.base_url)?;
        credentials.check_not_blank(&fields)?;
        Ok(Self {
            recipient_id: recipient.id.clone(),
            base_url: fields.base_url(),
            operating_account,
            login_account,
            audience_id,
            token_url: settings.token_url,
            credentials,
            timeout: fields.timeout(),
            waits,
        })
    }
}

/// `{prefix}_type` must be a known account type and `{prefix}_id` digits (hyphens, as the
/// Google Ads UI shows ids, are dropped).
fn account(
    fields: &Fields<'_>,
    prefix: &str,
    account_type: &str,
    id: &str,
) -> Result<ProductAccount, ConfigError> {
    let account_type = account_type.trim();
    if !ACCOUNT_TYPES.contains(&account_type) {
        return Err(fields.invalid(
            &format!("settings.{prefix}_type"),
            format!(
                "must be one of {}, got `{account_type}`",
                ACCOUNT_TYPES.join(", ")
            ),
        ));
    }
    let account_id = id.trim().replace('-', "");
    fields.numeric_id(
        &format!("settings.{prefix}_id"),
        &account_id,
        "a Google account (e.g. 123-456-7890)",
    )?;
    Ok(ProductAccount {
        account_type: account_type.to_owned(),
        account_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::oauth::GOOGLE_TOKEN_URL;
    use hush_connector_kit::testing::assert_names_field;
    use hush_connector_kit::testing::google::oauth_client_credentials;

    fn recipient(settings: &str) -> RecipientConfig {
        toml::from_str(&format!(
            "id = \"gdm\"\nkind = \"google_data_manager\"\nrole = \"THIRD_PARTY\"\nbase_url = \"https://datamanager.googleapis.com/\"\n[settings]\n{settings}"
        ))
        .unwrap()
    }

    fn config(settings: &str) -> Result<GoogleDataManagerConfig, ConfigError> {
        let r = recipient(settings);
        GoogleDataManagerConfig::with_credentials(&r, r.settings()?, oauth_client_credentials())
    }

    #[test]
    fn defaults_apply_and_hyphenated_ids_are_accepted() {
        let c = config("operating_account_id = \"123-456-7890\"\naudience_id = \"42\"").unwrap();
        assert_eq!(
            c.operating_account,
            ProductAccount {
                account_type: "GOOGLE_ADS".into(),
                account_id: "1234567890".into()
            }
        );
        assert_eq!(c.login_account, None);
        assert_eq!(c.token_url, GOOGLE_TOKEN_URL);
        assert_eq!(c.base_url, "https://datamanager.googleapis.com");
        assert_eq!(c.waits.poll_interval, Duration::from_millis(5_000));
        assert_eq!(c.waits.max_wait, Duration::from_millis(600_000));
    }

    #[test]
    fn a_login_account_takes_its_own_type() {
        let c = config(
            "operating_account_id = \"1\"\naudience_id = \"2\"\nlogin_account_id = \"999-888-7777\"\nlogin_account_type = \"DATA_PARTNER\"",
        )
        .unwrap();
        assert_eq!(
            c.login_account,
            Some(ProductAccount {
                account_type: "DATA_PARTNER".into(),
                account_id: "9998887777".into()
            })
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert_names_field(
            config("operating_account_id = \"12a\"\naudience_id = \"42\""),
            "recipients.gdm.settings.operating_account_id",
        );
        assert_names_field(
            config("operating_account_id = \"1\"\naudience_id = \"42\"\noperating_account_type = \"ADS\""),
            "recipients.gdm.settings.operating_account_type",
        );
        assert_names_field(
            config("operating_account_id = \"1\"\naudience_id = \"list\""),
            "recipients.gdm.settings.audience_id",
        );
        assert_names_field(
            config("operating_account_id = \"1\""),
            "recipients.gdm.settings",
        );
        assert_names_field(
            config("operating_account_id = \"1\"\naudience_id = \"2\"\ndeveloper_token = \"x\""),
            "developer_token",
        );
    }

    #[test]
    fn credentials_never_reach_debug_output() {
        let c = config("operating_account_id = \"1\"\naudience_id = \"2\"").unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("-value"), "{shown}");
    }
}
