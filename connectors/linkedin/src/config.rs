//! The `[[recipients]]` block of a LinkedIn DMP segment recipient, validated at start-up.

use std::fmt;
use std::time::Duration;

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
#[derive(Clone)]
pub struct LinkedInConfig {
    /// API base URL without a trailing slash (`https://api.linkedin.com` in production).
    pub base_url: String,
    /// DMP segment id.
    pub segment_id: String,
    /// `LinkedIn-Version` header value.
    pub linkedin_version: String,
    /// OAuth 2.0 member access token with `rw_dmp_segments`.
    pub access_token: String,
    /// Timeout of one call.
    pub timeout: Duration,
    /// Wait after a 429 without `Retry-After`.
    pub default_retry_after: Duration,
}

impl fmt::Debug for LinkedInConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkedInConfig")
            .field("base_url", &self.base_url)
            .field("segment_id", &self.segment_id)
            .field("linkedin_version", &self.linkedin_version)
            .field("access_token", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("default_retry_after", &self.default_retry_after)
            .finish()
    }
}

impl LinkedInConfig {
    /// Reads and validates a recipient's settings and its `access_token` credential; errors
    /// name the offending field.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let settings: LinkedInSettings = recipient.settings()?;
        let at = |field: &str| format!("recipients.{}.settings.{field}", recipient.id);
        if settings.segment_id.is_empty()
            || !settings.segment_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ConfigError::Invalid(format!(
                "{} must be the numeric id of a DMP segment",
                at("segment_id")
            )));
        }
        if !is_linkedin_version(&settings.linkedin_version) {
            return Err(ConfigError::Invalid(format!(
                "{} must be a Marketing API version of the form YYYYMM, e.g. 202410",
                at("linkedin_version")
            )));
        }
        if settings.rate_limit_retry_after_secs == 0 {
            return Err(ConfigError::Invalid(format!(
                "{} must be at least 1",
                at("rate_limit_retry_after_secs")
            )));
        }
        Ok(Self {
            base_url: recipient.base_url.trim_end_matches('/').to_owned(),
            segment_id: settings.segment_id,
            linkedin_version: settings.linkedin_version,
            access_token: recipient.credential("access_token")?,
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
            access_token: "AQV-secret".into(),
            timeout: Duration::from_secs(1),
            default_retry_after: Duration::from_secs(60),
        };
        assert!(!format!("{config:?}").contains("AQV-secret"));
    }
}
