//! The suppressor's configuration: the common sections, `[suppressor]` and the recipients.

use hush_contracts::crypto::DEFAULT_KEY_VAR;
use hush_contracts::recipients::RecipientConfig;
use hush_runtime::config::{CommonConfig, SecretRef};
use serde::{Deserialize, Serialize};

/// Everything a suppressor reads from the configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    /// Kafka, registry, topics.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// This service's section.
    #[serde(default)]
    pub suppressor: SuppressorSection,
    /// Downstream recipients (shared with the auditor).
    #[serde(default)]
    pub recipients: Vec<RecipientConfig>,
}

/// `[suppressor]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SuppressorSection {
    /// Address of `/healthz`, `/readyz`, `/metrics` (`--listen` overrides).
    pub listen: String,
    /// Prefix of the consumer groups; the group is `<prefix>-<connector id>`.
    pub group_prefix: String,
    /// Vendor calls made in place before work moves to the retry topic.
    pub in_place_attempts: u32,
    /// Longest wait (e.g. a vendor's Retry-After) served in place; longer waits go to the
    /// retry topic, in milliseconds.
    pub max_in_place_wait_ms: u64,
    /// First delay of the retry topic's exponential backoff, in milliseconds.
    pub retry_initial_delay_ms: u64,
    /// Longest delay of the retry topic's backoff, in milliseconds.
    pub retry_max_delay_ms: u64,
    /// How long to wait for a batch to fill, in milliseconds.
    pub linger_ms: u64,
    /// Vendor calls in flight at once within one consumed batch (the rate limit still applies).
    pub concurrency: usize,
    /// Environment variable holding the key that decrypts raw identifier values; when unset,
    /// connectors that need raw values fail those items permanently.
    pub encryption_key_env: SecretRef,
}

impl Default for SuppressorSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8073".into(),
            group_prefix: "hush-suppressor".into(),
            in_place_attempts: 3,
            max_in_place_wait_ms: 30_000,
            retry_initial_delay_ms: 1_000,
            retry_max_delay_ms: 300_000,
            linger_ms: 50,
            concurrency: 8,
            encryption_key_env: SecretRef(DEFAULT_KEY_VAR.into()),
        }
    }
}
