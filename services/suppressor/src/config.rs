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
    /// Read-backs of an outcome confirmed with a `PENDING` verification (a vendor error, a 429,
    /// an asynchronous job still running) made again through the retry topic before it is given
    /// up; at least 1.
    pub reverify_max_attempts: u32,
    /// Longest an outcome's read-back is retried after it was first confirmed `PENDING`, in
    /// milliseconds; past it the read-back is given up (the auditor shows `ACTION_REQUIRED`).
    pub reverify_max_age_ms: u64,
    /// First delay before a `PENDING` read-back is read again, in milliseconds; it doubles
    /// with each read-back.
    pub reverify_initial_delay_ms: u64,
    /// Longest delay between two read-backs of a `PENDING` outcome, in milliseconds.
    pub reverify_max_delay_ms: u64,
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
            // 1 min doubling to 6 h: about 8.5 h for the first nine read-backs, then every
            // 6 h; a week (an asynchronous deletion job's usual bound) passes first.
            reverify_max_attempts: 48,
            reverify_max_age_ms: 7 * 86_400_000,
            reverify_initial_delay_ms: 60_000,
            reverify_max_delay_ms: 6 * 3_600_000,
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
    /// librdkafka's `max.poll.interval.ms` for a consumer whose batches need up to `paced_calls`
    /// vendor calls (applies and read-backs) per in-place attempt, paced at `calls_per_second`
    /// (the slowest pace this replica can be given): twice the longest a batch can take
    /// (holding a retry that is not yet due, every in-place attempt with its wait, every call
    /// at that pace), and never less than librdkafka's default of 5 minutes. A batch that takes
    /// longer makes the broker move the partitions and deliver the batch again.
    pub fn max_poll_interval(
        &self,
        recipient: &RecipientConfig,
        paced_calls: usize,
        calls_per_second: f64,
    ) -> Duration {
        let wait = self.max_in_place_wait_ms;
        let attempts = u64::from(self.in_place_attempts.max(1));
        let calls = attempts * (REQUESTS_PER_CALL * recipient.timeout_ms + wait);
        // A float-to-integer cast saturates: a pace of zero makes the longest interval there is.
        let paced =
            (attempts as f64 * paced_calls as f64 * 1_000.0 / calls_per_second).ceil() as u64;
        let longest = wait.saturating_add(calls).saturating_add(paced);
        Duration::from_millis(longest.saturating_mul(2).max(300_000))
    }
}

/// Vendor calls one consumed batch of `batch` requests needs at most per in-place attempt:
/// one apply per `batch_limit` requests and, for a connector that reads back, one read-back per
/// `verify_limit` of them (`None`: it reads nothing back).
pub fn paced_calls(batch: usize, batch_limit: usize, verify_limit: Option<usize>) -> usize {
    batch.div_ceil(batch_limit.max(1))
        + verify_limit.map_or(0, |limit| batch.div_ceil(limit.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_interval_outlasts_the_slowest_batch() {
        let section = SuppressorSection::default();
        let mut recipient = crate::fakes::recipient();
        recipient.timeout_ms = 10_000;
        // HubSpot-like: 800 requests, 100 per write and per read-back, at 9 calls per second
        // shared by 24 input partitions (the pace of a replica holding one).
        let calls = paced_calls(800, 100, Some(100));
        assert_eq!(calls, 16);
        // 30 s hold + 3 × (4 × 10 s + 30 s) + 3 × 16 calls at 0.375/s = 368 s, doubled.
        assert_eq!(
            section.max_poll_interval(&recipient, calls, 9.0 / 24.0),
            Duration::from_secs(736)
        );
        recipient.timeout_ms = 1;
        assert_eq!(
            section.max_poll_interval(&recipient, 1, 10_000.0),
            Duration::from_secs(300),
            "never below librdkafka's default"
        );
    }

    #[test]
    fn without_a_batch_read_every_request_is_read_back_on_its_own() {
        assert_eq!(paced_calls(800, 100, Some(1)), 808);
        assert_eq!(paced_calls(7, 1, Some(1)), 14);
    }

    #[test]
    fn a_connector_that_reads_nothing_back_needs_only_its_applies() {
        assert_eq!(paced_calls(800, 100, None), 8);
        assert_eq!(paced_calls(7, 1, None), 7);
    }
}
