//! The `[[recipients]]` block of a LinkedIn DMP segment recipient, validated at start-up.

use std::time::Duration;

use hush_connector_kit::secret::Secret;
use hush_connector_kit::settings::Fields;
use hush_connector_kit::versions::{date, DatedVersion, VersionTable};
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

/// Connector-specific `settings` of a LinkedIn DMP segment recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkedInSettings {
    /// Id of the streaming user DMP segment (digits only).
    pub segment_id: String,
    /// Marketing API version sent as `LinkedIn-Version`, `YYYYMM`; checked at start-up against
    /// [`MARKETING_API_VERSIONS`].
    #[serde(default = "default_linkedin_version")]
    pub linkedin_version: String,
    /// Wait, in seconds, after a 429 that carries no `Retry-After` (LinkedIn's per-member limit
    /// on this endpoint is 600 requests a minute).
    #[serde(default = "default_retry_after_secs")]
    pub rate_limit_retry_after_secs: u64,
}

/// The newest `LinkedIn-Version` LinkedIn's own documentation confirms on 2026-12-01 (the
/// versioning page's "Latest Version: March 2026 | 202603"); newer monthly versions may exist
/// but were seen only in third-party material.
pub const DEFAULT_LINKEDIN_VERSION: &str = "202603";

fn default_linkedin_version() -> String {
    DEFAULT_LINKEDIN_VERSION.to_owned()
}

/// Marketing API versions with their sunset dates from LinkedIn's "Migrations" page (read
/// 2026-12-01; no 202512 is listed). LinkedIn names a version after the month it is released
/// in and gives no day, so `released` is the first of that month.
pub const MARKETING_API_VERSIONS: VersionTable = VersionTable {
    api: "LinkedIn Marketing API",
    rank: version_rank,
    form: "must be a Marketing API version of the form YYYYMM, e.g. 202603",
    as_of: date(2026, 12, 1),
    versions: &[
        DatedVersion::with_sunset("202510", date(2025, 10, 1), date(2026, 10, 15)),
        DatedVersion::with_sunset("202511", date(2025, 11, 1), date(2026, 11, 16)),
        DatedVersion::with_sunset("202601", date(2026, 1, 1), date(2027, 1, 15)),
        DatedVersion::with_sunset("202602", date(2026, 2, 1), date(2027, 2, 15)),
        DatedVersion::with_sunset("202603", date(2026, 3, 1), date(2027, 3, 16)),
    ],
};

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
    /// name the offending field. A version LinkedIn has sunset is refused, one within 90 days
    /// of its sunset is warned about (see [`MARKETING_API_VERSIONS`]).
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        Self::from_recipient_on(recipient, chrono::Utc::now().date_naive())
    }

    /// [`LinkedInConfig::from_recipient`] as it would judge the configured version on `today`.
    pub fn from_recipient_on(
        recipient: &RecipientConfig,
        today: chrono::NaiveDate,
    ) -> Result<Self, ConfigError> {
        let settings: LinkedInSettings = recipient.settings()?;
        let fields = Fields::of(recipient);
        fields.numeric_id("settings.segment_id", &settings.segment_id, "a DMP segment")?;
        MARKETING_API_VERSIONS.check_configured(
            &fields,
            "settings.linkedin_version",
            &settings.linkedin_version,
            today,
        )?;
        Ok(Self {
            base_url: fields.base_url(),
            segment_id: settings.segment_id,
            linkedin_version: settings.linkedin_version,
            access_token: fields.credential("access_token")?,
            timeout: fields.timeout(),
            default_retry_after: fields.at_least_one_second(
                "settings.rate_limit_retry_after_secs",
                settings.rate_limit_retry_after_secs,
            )?,
        })
    }
}

/// Orders `YYYYMM` versions by their number.
fn version_rank(version: &str) -> Option<u64> {
    is_linkedin_version(version)
        .then(|| version.parse().ok())
        .flatten()
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
            linkedin_version: "202603".into(),
            access_token: Secret::new("AQV-secret"),
            timeout: Duration::from_secs(1),
            default_retry_after: Duration::from_secs(60),
        };
        assert!(!format!("{config:?}").contains("AQV-secret"));
    }
}
