//! Intake metrics. Labels are request kinds, channels and error codes only.

use std::sync::LazyLock;

use prometheus::{register_int_counter_vec, IntCounterVec};

/// Requests accepted and published, by kind and channel.
pub static ACCEPTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_requests_received_total",
        "Privacy requests accepted and published, by kind and channel",
        &["kind", "channel"]
    )
    .expect("metric registers once")
});

/// Requests refused, by error code.
pub static REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_requests_rejected_total",
        "Requests refused by intake, by error code",
        &["error"]
    )
    .expect("metric registers once")
});
