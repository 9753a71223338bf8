//! The `[[recipients]]` block of a Meta Custom Audiences recipient, validated at start-up.

use std::time::Duration;

use hush_connector_kit::secret::Secret;
use hush_connector_kit::settings::Fields;
use hush_connector_kit::versions::{date, DatedVersion, VersionTable};
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use serde::Deserialize;

/// Connector-specific `settings` of a Meta Custom Audiences recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaSettings {
    /// Id of the customer-list Custom Audience the business uploads people to (digits only).
    pub audience_id: String,
    /// Marketing API version in the path, e.g. `v27.0`; checked at start-up against
    /// [`MARKETING_API_VERSIONS`].
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Wait, in seconds, when Meta throttles without a `Retry-After` header (error codes
    /// 4, 17, 32, 613, 80003 or HTTP 429).
    #[serde(default = "default_retry_after_secs")]
    pub rate_limit_retry_after_secs: u64,
}

/// The newest Marketing API version Meta serves on 2026-12-01 (released 2026-11-04).
pub const DEFAULT_API_VERSION: &str = "v27.0";

fn default_api_version() -> String {
    DEFAULT_API_VERSION.to_owned()
}

/// Marketing API versions with Meta's release and expiry dates. Custom Audience `users` is a
/// Marketing API edge, so this table and not the (longer) Graph API one applies. Source:
/// developers.facebook.com, "Marketing API version history" (read 2026-12-01); an older snapshot
/// gave v24.0 2026-10-06, either way gone by 2026-12-01.
pub const MARKETING_API_VERSIONS: VersionTable = VersionTable {
    api: "Meta Marketing API",
    rank: version_rank,
    form: "must look like `v27.0`",
    as_of: date(2026, 12, 1),
    versions: &[
        DatedVersion::with_sunset("v22.0", date(2025, 1, 21), date(2026, 2, 19)),
        DatedVersion::with_sunset("v23.0", date(2025, 5, 29), date(2026, 6, 9)),
        DatedVersion::with_sunset("v24.0", date(2025, 10, 8), date(2026, 11, 10)),
        DatedVersion::with_sunset("v25.0", date(2026, 2, 18), date(2027, 2, 23)),
        DatedVersion::without_sunset("v26.0", date(2026, 7, 29)),
        DatedVersion::without_sunset("v27.0", date(2026, 11, 4)),
    ],
};

fn default_retry_after_secs() -> u64 {
    60
}

/// Everything the client needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct MetaConfig {
    /// Graph API base URL without a trailing slash (`https://graph.facebook.com` in production).
    pub base_url: String,
    /// Marketing API version, e.g. `v27.0`.
    pub api_version: String,
    /// Custom Audience id.
    pub audience_id: String,
    /// System-user access token with `ads_management` permission.
    pub access_token: Secret,
    /// Timeout of one call.
    pub timeout: Duration,
    /// Wait when Meta throttles without saying how long.
    pub default_retry_after: Duration,
}

impl MetaConfig {
    /// Reads and validates a recipient's settings and its `access_token` credential; errors
    /// name the offending field. A version Meta no longer serves is refused, one within 90 days
    /// of its expiry is warned about (see [`MARKETING_API_VERSIONS`]).
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        Self::from_recipient_on(recipient, chrono::Utc::now().date_naive())
    }

    /// [`MetaConfig::from_recipient`] as it would judge the configured version on `today`.
    pub fn from_recipient_on(
        recipient: &RecipientConfig,
        today: chrono::NaiveDate,
    ) -> Result<Self, ConfigError> {
        let settings: MetaSettings = recipient.settings()?;
        let fields = Fields::of(recipient);
        fields.numeric_id(
            "settings.audience_id",
            &settings.audience_id,
            "a Custom Audience",
        )?;
        MARKETING_API_VERSIONS.check_configured(
            &fields,
            "settings.api_version",
            &settings.api_version,
            today,
        )?;
        Ok(Self {
            base_url: fields.base_url(),
            api_version: settings.api_version,
            audience_id: settings.audience_id,
            access_token: fields.credential("access_token")?,
            timeout: fields.timeout(),
            default_retry_after: fields.at_least_one_second(
                "settings.rate_limit_retry_after_secs",
                settings.rate_limit_retry_after_secs,
            )?,
        })
    }
}

/// Orders Graph API versions: `v<major>.<minor>` as `major * 1000 + minor`.
fn version_rank(version: &str) -> Option<u64> {
    if !is_graph_version(version) {
        return None;
    }
    let (major, minor) = version[1..].split_once('.')?;
    Some(major.parse::<u64>().ok()? * 1000 + minor.parse::<u64>().ok()?)
}

/// Whether `version` has the Graph API form `v<major>.<minor>`.
pub fn is_graph_version(version: &str) -> bool {
    version
        .strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_versions_are_recognised() {
        assert!(is_graph_version("v21.0"));
        assert!(!is_graph_version("21.0"));
        assert!(!is_graph_version("v21"));
        assert!(!is_graph_version("vX.0"));
    }

    #[test]
    fn debug_output_hides_the_token() {
        let config = MetaConfig {
            base_url: "http://x".into(),
            api_version: "v27.0".into(),
            audience_id: "1".into(),
            access_token: Secret::new("EAAB-secret"),
            timeout: Duration::from_secs(1),
            default_retry_after: Duration::from_secs(60),
        };
        assert!(!format!("{config:?}").contains("EAAB-secret"));
    }
}
