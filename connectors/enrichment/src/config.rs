//! The enrichment recipient's configuration: the `[[recipients]]` fields this connector reads
//! and its `settings` block, validated at start-up.

use std::time::Duration;

use hush_connector_kit::secret::Secret;
use hush_contracts::config::ConfigError;
use hush_contracts::recipients::RecipientConfig;
use reqwest::Url;
use serde::Deserialize;

/// Connector kind for Clearbit (`kind = "clearbit"`).
pub const KIND_CLEARBIT: &str = "clearbit";

/// Connector kind for ZoomInfo (`kind = "zoominfo"`).
pub const KIND_ZOOMINFO: &str = "zoominfo";

/// The kinds this crate implements.
pub const KINDS: [&str; 2] = [KIND_CLEARBIT, KIND_ZOOMINFO];

/// The `[recipients.settings]` block of an enrichment recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichmentSettings {
    /// Wait between two reads of the deny-list while the suppression is not shown yet, in
    /// milliseconds. Default 500.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How long to wait for the deny-list to show the suppression before handing the work back
    /// for a retry, in milliseconds. Default 30000.
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
}

fn default_poll_interval_ms() -> u64 {
    500
}

fn default_max_wait_ms() -> u64 {
    30_000
}

impl Default for EnrichmentSettings {
    fn default() -> Self {
        Self {
            poll_interval_ms: default_poll_interval_ms(),
            max_wait_ms: default_max_wait_ms(),
        }
    }
}

/// Everything the enrichment connector needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct EnrichmentConfig {
    /// Recipient id (`connector_id` in confirmations).
    pub recipient_id: String,
    /// The vendor: [`KIND_CLEARBIT`] or [`KIND_ZOOMINFO`]; the `vendor` the deny-list is asked
    /// about.
    pub vendor: &'static str,
    /// Root of the `hush-denylist` service, e.g. `http://hush-denylist:8074`.
    pub base_url: Url,
    /// Timeout of one call to the deny-list (`timeout_ms`).
    pub timeout: Duration,
    /// Wait between reads (`settings.poll_interval_ms`).
    pub poll_interval: Duration,
    /// Longest wait for the suppression to show (`settings.max_wait_ms`).
    pub max_wait: Duration,
    /// API key with the deny-list's `denylist:check` scope (`credentials.api_key`, the name of
    /// the environment variable holding it).
    pub api_key: Option<Secret>,
}

impl EnrichmentConfig {
    /// Reads and validates a `kind = "clearbit"` or `kind = "zoominfo"` recipient; errors name
    /// the offending field (`recipients.<id>.<field>`).
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let at = |field: &str| format!("recipients.{}.{field}", recipient.id);
        let vendor = KINDS
            .into_iter()
            .find(|kind| *kind == recipient.kind)
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "{} is `{}`, but the enrichment connector serves `{KIND_CLEARBIT}` and \
                     `{KIND_ZOOMINFO}`",
                    at("kind"),
                    recipient.kind
                ))
            })?;
        let settings: EnrichmentSettings = recipient.settings()?;
        if settings.poll_interval_ms == 0 {
            return Err(ConfigError::Invalid(format!(
                "{} must be at least 1",
                at("settings.poll_interval_ms")
            )));
        }
        if settings.max_wait_ms < settings.poll_interval_ms {
            return Err(ConfigError::Invalid(format!(
                "{} must be at least settings.poll_interval_ms ({})",
                at("settings.max_wait_ms"),
                settings.poll_interval_ms
            )));
        }
        let base_url = Url::parse(&recipient.base_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "{} must be the http(s) URL of the hush-denylist service",
                    at("base_url")
                ))
            })?;
        if recipient.timeout_ms == 0 {
            return Err(ConfigError::Invalid(format!(
                "{} must be at least 1",
                at("timeout_ms")
            )));
        }
        let api_key = if recipient.credentials.contains_key("api_key") {
            Some(Secret::new(recipient.credential("api_key")?))
        } else {
            None
        };
        Ok(Self {
            api_key,
            recipient_id: recipient.id.clone(),
            vendor,
            base_url,
            timeout: Duration::from_millis(recipient.timeout_ms),
            poll_interval: Duration::from_millis(settings.poll_interval_ms),
            max_wait: Duration::from_millis(settings.max_wait_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::assert_names_field;

    fn recipient(kind: &str, settings: &str) -> RecipientConfig {
        toml::from_str(&format!(
            "id = \"enrich\"\nkind = \"{kind}\"\nrole = \"THIRD_PARTY\"\nbase_url = \"http://127.0.0.1:8074\"\n[settings]\n{settings}"
        ))
        .unwrap()
    }

    #[test]
    fn defaults_poll_every_half_second_for_thirty_seconds() {
        let config = EnrichmentConfig::from_recipient(&recipient("clearbit", "")).unwrap();
        assert_eq!(config.vendor, KIND_CLEARBIT);
        assert_eq!(config.poll_interval, Duration::from_millis(500));
        assert_eq!(config.max_wait, Duration::from_secs(30));
        assert_eq!(config.timeout, Duration::from_secs(10));
    }

    #[test]
    fn zoominfo_is_served_by_the_same_connector() {
        let config = EnrichmentConfig::from_recipient(&recipient(
            "zoominfo",
            "poll_interval_ms = 100\nmax_wait_ms = 1000\n",
        ))
        .unwrap();
        assert_eq!(config.vendor, KIND_ZOOMINFO);
        assert_eq!(config.max_wait, Duration::from_secs(1));
    }

    #[test]
    fn a_max_wait_shorter_than_the_poll_interval_is_refused_naming_the_field() {
        assert_names_field(
            EnrichmentConfig::from_recipient(&recipient(
                "clearbit",
                "poll_interval_ms = 500\nmax_wait_ms = 100\n",
            )),
            "recipients.enrich.settings.max_wait_ms",
        );
    }

    #[test]
    fn a_zero_poll_interval_and_unknown_settings_are_refused() {
        assert_names_field(
            EnrichmentConfig::from_recipient(&recipient("clearbit", "poll_interval_ms = 0\n")),
            "settings.poll_interval_ms",
        );
        assert_names_field(
            EnrichmentConfig::from_recipient(&recipient("clearbit", "api_key = \"x\"\n")),
            "recipients.enrich.settings",
        );
    }

    #[test]
    fn another_kind_is_refused() {
        assert_names_field(
            EnrichmentConfig::from_recipient(&recipient("hubspot", "")),
            "recipients.enrich.kind",
        );
    }
}
