//! The `[[recipients]]` block of a Google Analytics recipient, validated at start-up.

use std::time::Duration;

use hush_connector_kit::oauth::{google_token_url, ClientCredentials};
use hush_connector_kit::settings::Fields;
use hush_contracts::config::ConfigError;
use hush_contracts::events::IdentifierType;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

/// The recipient `kind` this connector serves.
pub const KIND: &str = "google_analytics";
/// Root of Google's APIs, where the User Deletion API lives (`/analytics/v3/userDeletion/…`).
pub const DEFAULT_BASE_URL: &str = "https://www.googleapis.com";
/// Hush identifier types sent when `settings.identifier_types` is not set: the business's own
/// user id (GA `USER_ID`) and the GA client id from the `_ga` cookie (GA `CLIENT_ID`).
pub const DEFAULT_IDENTIFIER_TYPES: [IdentifierType; 2] =
    [IdentifierType::CustomerId, IdentifierType::CookieId];

/// Connector-specific `[recipients.settings]` of a Google Analytics recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleAnalyticsSettings {
    /// Numeric id of the GA4 property whose data is deleted (Admin → Property settings).
    pub property_id: String,
    /// Which of the request's identifiers are sent, by Hush identifier type: `CUSTOMER_ID`
    /// (sent as GA `USER_ID`), `COOKIE_ID` (the GA client id, sent as `CLIENT_ID`) and
    /// `DEVICE_ID` (only when it holds the Firebase app instance id, sent as
    /// `APP_INSTANCE_ID`). `CUSTOMER_ID` and `COOKIE_ID` unless set.
    #[serde(default = "default_identifier_types")]
    pub identifier_types: Vec<String>,
    /// OAuth 2.0 token endpoint where the refresh token is exchanged.
    #[serde(default = "google_token_url")]
    pub token_url: String,
}

fn default_identifier_types() -> Vec<String> {
    DEFAULT_IDENTIFIER_TYPES
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect()
}

/// A validated Google Analytics recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleAnalyticsConfig {
    /// Recipient id (for logs and errors).
    pub recipient_id: String,
    /// API root without a trailing slash, e.g. `https://www.googleapis.com`.
    pub base_url: String,
    /// The GA4 property id, digits only.
    pub property_id: String,
    /// Hush identifier types sent to Google, in the configured order, without repeats.
    pub identifier_types: Vec<IdentifierType>,
    /// OAuth token endpoint.
    pub token_url: String,
    /// OAuth client credentials and the refresh token of a user with the
    /// `https://www.googleapis.com/auth/analytics.user.deletion` scope on the property.
    pub credentials: ClientCredentials,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
}

impl GoogleAnalyticsConfig {
    /// Validates the recipient's settings, reading credentials from the environment.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        Fields::of(recipient).kind_is(&[KIND], "Google Analytics")?;
        let settings: GoogleAnalyticsSettings = recipient.settings()?;
        let credentials = ClientCredentials::from_recipient(recipient)?;
        Self::with_credentials(recipient, settings, credentials)
    }

    /// Validates the recipient's settings with credentials obtained by the caller.
    pub fn with_credentials(
        recipient: &RecipientConfig,
        settings: GoogleAnalyticsSettings,
        credentials: ClientCredentials,
    ) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        fields.http_url("base_url", &recipient.base_url)?;
        let property_id = settings.property_id.trim().to_owned();
        fields.numeric_id("settings.property_id", &property_id, "a GA4 property")?;
        let identifier_types = identifier_types(&fields, &settings.identifier_types)?;
        fields.http_url("settings.token_url", &settings.token_url)?;
        credentials.check_not_blank(&fields)?;
        Ok(Self {
            recipient_id: recipient.id.clone(),
            base_url: fields.base_url(),
            property_id,
            identifier_types,
            token_url: settings.token_url,
            credentials,
            timeout: fields.timeout(),
        })
    }
}

/// The Hush identifier types GA can delete by, parsed from their schema symbols.
fn identifier_types(
    fields: &Fields<'_>,
    configured: &[String],
) -> Result<Vec<IdentifierType>, ConfigError> {
    const FIELD: &str = "settings.identifier_types";
    const ALLOWED: [IdentifierType; 3] = [
        IdentifierType::CustomerId,
        IdentifierType::CookieId,
        IdentifierType::DeviceId,
    ];
    if configured.is_empty() {
        return Err(fields.invalid(FIELD, "must name at least one identifier type"));
    }
    let mut types = Vec::new();
    for name in configured {
        let Some(kind) = ALLOWED.into_iter().find(|t| t.as_str() == name.trim()) else {
            return Err(fields.invalid(
                FIELD,
                format!(
                    "holds `{name}`; Google Analytics deletes only by CUSTOMER_ID (USER_ID), \
                     COOKIE_ID (CLIENT_ID) or DEVICE_ID (APP_INSTANCE_ID)"
                ),
            ));
        };
        if !types.contains(&kind) {
            types.push(kind);
        }
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::oauth::GOOGLE_TOKEN_URL;
    use hush_connector_kit::testing::assert_names_field;
    use hush_connector_kit::testing::google::oauth_client_credentials;

    fn recipient(settings: &str) -> RecipientConfig {
        toml::from_str(&format!(
            "id = \"ga\"\nkind = \"google_analytics\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"https://www.googleapis.com/\"\n[settings]\n{settings}"
        ))
        .unwrap()
    }

    fn config(settings: &str) -> Result<GoogleAnalyticsConfig, ConfigError> {
        let r = recipient(settings);
        GoogleAnalyticsConfig::with_credentials(&r, r.settings()?, oauth_client_credentials())
    }

    #[test]
    fn defaults_send_user_and_client_ids_through_googles_token_endpoint() {
        let c = config("property_id = \" 123456789 \"").unwrap();
        assert_eq!(c.property_id, "123456789");
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert_eq!(c.token_url, GOOGLE_TOKEN_URL);
        assert_eq!(
            c.identifier_types,
            vec![IdentifierType::CustomerId, IdentifierType::CookieId]
        );
    }

    #[test]
    fn identifier_types_are_parsed_and_deduplicated() {
        let c = config(
            "property_id = \"1\"\nidentifier_types = [\"DEVICE_ID\", \"CUSTOMER_ID\", \"DEVICE_ID\"]",
        )
        .unwrap();
        assert_eq!(
            c.identifier_types,
            vec![IdentifierType::DeviceId, IdentifierType::CustomerId]
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert_names_field(
            config("property_id = \"G-ABC123\""),
            "recipients.ga.settings.property_id",
        );
        assert_names_field(
            config("property_id = \"1\"\nidentifier_types = [\"EMAIL\"]"),
            "recipients.ga.settings.identifier_types",
        );
        assert_names_field(
            config("property_id = \"1\"\nidentifier_types = []"),
            "recipients.ga.settings.identifier_types",
        );
        assert_names_field(
            config("property_id = \"1\"\ntoken_url = \"oauth2\""),
            "recipients.ga.settings.token_url",
        );
        assert_names_field(config(""), "recipients.ga.settings");
        assert_names_field(
            config("property_id = \"1\"\nweb_property_id = \"UA-1-1\""),
            "web_property_id",
        );
    }

    #[test]
    fn an_empty_credential_is_refused_by_name() {
        let r = recipient("property_id = \"1\"");
        let mut empty = oauth_client_credentials();
        empty.refresh_token = "  ".into();
        assert_names_field(
            GoogleAnalyticsConfig::with_credentials(&r, r.settings().unwrap(), empty),
            "recipients.ga.credentials.refresh_token",
        );
    }

    #[test]
    fn credentials_never_reach_debug_output() {
        let shown = format!("{:?}", config("property_id = \"1\"").unwrap());
        assert!(!shown.contains("-value"), "{shown}");
    }
}
