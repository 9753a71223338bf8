//! Suppressor metrics, labelled by connector id and outcome only.

use std::sync::LazyLock;

use prometheus::{
    register_gauge_vec, register_histogram_vec, register_int_counter_vec, GaugeVec, HistogramVec,
    IntCounterVec,
};

/// Vendor calls by connector and outcome (`ok`, `retryable`, `permanent`).
pub static CALLS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_connector_calls_total",
        "Vendor calls by connector and outcome",
        &["connector", "outcome"]
    )
    .expect("metric registers once")
});

/// Duration of vendor calls.
pub static CALL_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "hush_connector_call_seconds",
        "Duration of vendor calls by connector",
        &["connector"]
    )
    .expect("metric registers once")
});

/// Confirmations emitted by connector and action.
pub static CONFIRMATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_confirmations_emitted_total",
        "Confirmations emitted by connector and action",
        &["connector", "action"]
    )
    .expect("metric registers once")
});

/// Requests moved to the retry topic.
pub static RETRIES_SCHEDULED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_retries_scheduled_total",
        "Requests moved to the connector's retry topic",
        &["connector"]
    )
    .expect("metric registers once")
});

/// Re-verifications of `PENDING` read-backs by connector and outcome (`scheduled`, `verified`,
/// `failed`, `unverifiable`, `gave_up`).
pub static REVERIFICATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_reverifications_total",
        "Re-verifications of PENDING read-backs by connector and outcome",
        &["connector", "outcome"]
    )
    .expect("metric registers once")
});

/// Re-delivered requests skipped because they were already confirmed.
pub static SKIPPED_DONE: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_redeliveries_skipped_total",
        "Re-delivered requests skipped because this connector already confirmed them",
        &["connector"]
    )
    .expect("metric registers once")
});

/// Confirmations that did not decode while the done-set was rebuilt at start-up.
pub static UNDECODABLE_CONFIRMATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_confirmations_undecodable_total",
        "Confirmations that did not decode while rebuilding the done-set",
        &["connector"]
    )
    .expect("metric registers once")
});

/// Vendor calls per second this replica may make: its share of the recipient's rate limit.
pub static ALLOWED_CALLS_PER_SECOND: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        "hush_connector_allowed_calls_per_second",
        "Vendor calls per second this replica may make (its share of the recipient's rate limit)",
        &["connector"]
    )
    .expect("metric registers once")
});
