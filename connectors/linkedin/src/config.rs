//! The `[[recipients]]` block of a LinkedIn DMP segment recipient, validated at start-up.

use std::time::Duration;

use hush_connector_kit::secret::Secret;
use hush_connector_kit::settings::Fields;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

/// Connector-specific `settings` of a LinkedIn DMP segment recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkedInSettings {
    /// Id of the streaming user DMP segment (digits only).
    pub segment_id: String,
    /// Marketing API version sent as `LinkedIn-Version`, `YYYYMM`.
    #[serde(default = "default_linkedin_version")]
    pub linkedin_version: String,
    /// Wait, in seconds, after a 429 that carries no `Retry-After` (LinkedIn's per-member limit
    /// on this endpoint is 500 requests a minute).
    #[serde(default = "default_retry_after_secs")]
    pub rate_limit_retry_after_secs: u64,
}

fn default_linkedin_version() -> String {
    "202410".to_owned()
}

fn default_retry_after_secs() -> u64 {
    60
}

/// Everything the client needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct LinkedInConfig {
    /// API base URL without a trailing slash (`https://api.linkedin.com` in production).
    pub base_url: String,
    /// DMP segment id.
    pub segment_id: String,
    /// `LinkedIn-Version` header value.
    pub linkedin_version: String,
    /// OAuth 2.0 member access token with `rw_dmp_segments`.
    pub access_token: Secret,
    /// Timeout of one call.
    pub timeout: Duration,
    /// Wait after a 429 without `Retry-After`.
    pub default_retry_after: Duration,
}

impl LinkedInConfig {
    /// Reads and validates a recipient's settings and its `access_token` credential; errors
    /// name the offending field.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let settings: LinkedInSettings = recipient.settings()?;
        let fields = Fields::of(recipient);
        fields.numeric_id("settings.segment_id", &settings.segment_id, "a DMP segment")?;
        if !is_linkedin_version(&settings.linkedin_version) {
            return Err(fields.invalid(
                "settings.linkedin_version",
                "must be a Marketing API version of the form YYYYMM, e.g. 202410",
            ));
        }
        fields.at_least_one(
            "settings.rate_limit_retry_after_secs",
            settings.rate_limit_retry_after_secs,
        )?;
        Ok(Self {
            base_url: recipient.base_url.trim_end_matches('/').to_owned(),
            segment_id: settings.segment_id,
            linkedin_version: settings.linkedin_version,
            access_token: fields.credential("access_token")?,
            timeout: Duration::from_millis(recipient.timeout_ms),
            default_retry_after: Duration::from_secs(settings.rate_limit_retry_after_secs),
        })
    }
}

/// Whether `version` has LinkedIn's `YYYYMM` form (a month from 01 to 12).
pub fn is_linkedin_version(version: &str) -> bool {
    version.len() == 6
        && version.bytes().all(|b| b.is_ascii_digit())
        && matches!(version[4..].parse::<u8>(), Ok(1..=12))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_year_and_month() {
        assert!(is_linkedin_version("202410"));
        assert!(!is_linkedin_version("202413"));
        assert!(!is_linkedin_version("2024-10"));
        assert!(!is_linkedin_version("v2"));
    }

    #[test]
    fn debug_output_hides_the_token() {
        let config = LinkedInConfig {
            base_url: "http://x".into(),
            segment_id: "1".into(),
            linkedin_version: "202410".into(),
            access_token: Secret::new("AQV-secret"),
            timeout: Duration::from_secs(1),
            default_retry_after: Duration::from_secs(60),
        };
        assert!(!format!("{config:?}").contains("AQV-secret"));
    }
}
