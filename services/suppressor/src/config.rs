//! The suppressor's configuration: the common sections, `[suppressor]` and the recipients.

use std::time::Duration;

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

/// HTTP requests one connector call may make (a job created, filled, started, read back), each
/// bounded by the recipient's `timeout_ms`; used only to size the consumer's poll interval.
const REQUESTS_PER_CALL: u64 = 4;

impl SuppressorSection {
    /// librdkafka's `max.poll.interval.ms` for a consumer handing `batch` requests at a time to
    /// `recipient`: twice the longest a batch can take (holding a retry that is not yet due,
    /// every in-place attempt with its wait, every call and read-back paced by the rate limit),
    /// and never less than librdkafka's default of 5 minutes. A batch that takes longer makes
    /// the broker move the partitions and deliver the batch again.
    pub fn max_poll_interval(&self, recipient: &RecipientConfig, batch: usize) -> Duration {
        let wait = self.max_in_place_wait_ms;
        let attempts = u64::from(self.in_place_attempts.max(1));
        let calls = attempts * (REQUESTS_PER_CALL * recipient.timeout_ms + wait);
        let paced = 2 * batch as u64 * 1_000 / u64::from(recipient.rate_limit_per_second.max(1));
        Duration::from_millis((2 * (wait + calls + paced)).max(300_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_interval_outlasts_the_slowest_batch() {
        let section = SuppressorSection::default();
        let mut recipient = crate::fakes::recipient();
        recipient.timeout_ms = 10_000;
        recipient.rate_limit_per_second = 10;
        // 30 s hold + 3 × (4 × 10 s + 30 s) + 800 × 2 calls at 10/s = 400 s, doubled.
        assert_eq!(
            section.max_poll_interval(&recipient, 800),
            Duration::from_secs(800)
        );
        recipient.rate_limit_per_second = 10_000;
        recipient.timeout_ms = 1;
        assert_eq!(
            section.max_poll_interval(&recipient, 1),
            Duration::from_secs(300),
            "never below librdkafka's default"
        );
    }
}
