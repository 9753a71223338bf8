//! The `[[recipients]]` block of a TikTok audience recipient, validated at start-up.

use std::time::Duration;

use hush_connector_kit::secret::Secret;
use hush_connector_kit::settings::Fields;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

/// The connector kind this crate implements (`kind = "tiktok"`).
pub const KIND: &str = "tiktok";

/// TikTok API for Business host; the connector appends `/open_api/v1.3/…`.
pub const DEFAULT_BASE_URL: &str = "https://business-api.tiktok.com";

/// Wait after a rate-limit answer that names no delay (TikTok's code 40100 comes in an HTTP 200
/// body without `Retry-After`), in seconds.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 60;

/// Connector-specific `[recipients.settings]` of a TikTok recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TikTokSettings {
    /// The ad account (advertiser id, digits) that owns the audiences.
    pub advertiser_id: String,
    /// The audiences to remove people from (audience ids, digits): partner audiences created
    /// through the Audience Segment API (`segment/audience`).
    pub audience_ids: Vec<String>,
    /// Wait, in seconds, after a rate-limit answer that names no delay.
    #[serde(default = "default_retry_after_secs")]
    pub rate_limit_retry_after_secs: u64,
}

fn default_retry_after_secs() -> u64 {
    DEFAULT_RETRY_AFTER_SECS
}

/// Everything the TikTok connector needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct TikTokConfig {
    /// Recipient id (`connector_id` in confirmations).
    pub recipient_id: String,
    /// API host without a trailing slash.
    pub base_url: String,
    /// Advertiser id.
    pub advertiser_id: String,
    /// Audience ids, in configuration order, without duplicates.
    pub audience_ids: Vec<String>,
    /// Long-term access token of the advertiser, sent as `Access-Token`.
    pub access_token: Secret,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
    /// Wait after a rate-limit answer that names no delay.
    pub default_retry_after: Duration,
}

impl TikTokConfig {
    /// Reads and validates a `kind = "tiktok"` recipient; the access token comes from the
    /// environment variable named by `credentials.access_token`. Errors name the field at fault.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let token = Fields::of(recipient).credential("access_token")?;
        Self::with_access_token(recipient, token)
    }

    /// Validates the recipient with an access token obtained by the caller.
    pub fn with_access_token(
        recipient: &RecipientConfig,
        access_token: Secret,
    ) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        fields.kind_is(&[KIND], "TikTok")?;
        let settings: TikTokSettings = recipient.settings()?;
        fields.numeric_id(
            "settings.advertiser_id",
            &settings.advertiser_id,
            "a TikTok ad account",
        )?;
        if settings.audience_ids.is_empty() {
            return Err(fields.invalid(
                "settings.audience_ids",
                "must name at least one TikTok audience id",
            ));
        }
        let mut audience_ids: Vec<String> = Vec::new();
        for id in &settings.audience_ids {
            fields.numeric_id("settings.audience_ids", id, "a TikTok audience")?;
            if !audience_ids.contains(id) {
                audience_ids.push(id.clone());
            }
        }
        fields.http_url("base_url", &recipient.base_url)?;
        fields.at_least_one("timeout_ms", recipient.timeout_ms)?;
        let default_retry_after = fields.at_least_one_second(
            "settings.rate_limit_retry_after_secs",
            settings.rate_limit_retry_after_secs,
        )?;
        fields.not_blank("credentials.access_token", &access_token)?;
        Ok(Self {
            recipient_id: recipient.id.clone(),
            base_url: fields.base_url(),
            advertiser_id: settings.advertiser_id,
            audience_ids,
            access_token,
            timeout: fields.timeout(),
            default_retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::{assert_names_field, recipient_with};

    /// The block each test starts from; `build` adds or replaces keys of its `[settings]`.
    const BLOCK: &str = "id = \"tt\"\nkind = \"tiktok\"\nrole = \"THIRD_PARTY\"\nbase_url = \"https://business-api.tiktok.com/\"\n[settings]\n";

    fn build(settings: &str) -> Result<TikTokConfig, ConfigError> {
        TikTokConfig::with_access_token(&recipient_with(BLOCK, settings), Secret::new("tok-secret"))
    }

    #[test]
    fn a_valid_block_resolves_with_defaults_and_hides_the_token() {
        let config =
            build("advertiser_id = \"7000001\"\naudience_ids = [\"123\", \"456\", \"123\"]")
                .unwrap();
        assert_eq!(config.base_url, DEFAULT_BASE_URL);
        assert_eq!(config.audience_ids, ["123", "456"], "duplicates dropped");
        assert_eq!(config.default_retry_after, Duration::from_secs(60));
        assert!(!format!("{config:?}").contains("tok-secret"));
    }

    #[test]
    fn errors_name_the_field_at_fault() {
        let valid = "advertiser_id = \"1\"\naudience_ids = [\"1\"]";
        for (settings, field) in [
            (
                "advertiser_id = \"adv\"\naudience_ids = [\"1\"]",
                "settings.advertiser_id",
            ),
            (
                "advertiser_id = \"1\"\naudience_ids = []",
                "settings.audience_ids",
            ),
            (
                "advertiser_id = \"1\"\naudience_ids = [\"x1\"]",
                "settings.audience_ids",
            ),
            (
                "advertiser_id = \"1\"\naudience_ids = [\"1\"]\nrate_limit_retry_after_secs = 0",
                "settings.rate_limit_retry_after_secs",
            ),
            (
                "advertiser_id = \"1\"\naudience_ids = [\"1\"]\naudience_id = \"2\"",
                "settings",
            ),
        ] {
            assert_names_field(build(settings), &format!("recipients.tt.{field}"));
        }
        assert_names_field(
            TikTokConfig::with_access_token(&recipient_with(BLOCK, valid), Secret::new(" ")),
            "recipients.tt.credentials.access_token",
        );
        assert_names_field(
            TikTokConfig::from_recipient(&recipient_with(BLOCK, valid)),
            "credentials.access_token",
        );
    }
}
