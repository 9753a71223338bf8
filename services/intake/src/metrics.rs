//! Intake metrics. Labels are request kinds and channels only (refusals are counted by
//! `hush_runtime::metrics::HTTP_ERRORS`).

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
