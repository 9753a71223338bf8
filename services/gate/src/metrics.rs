//! Gate metrics. Labels are configured topic names and outcomes only, never identifiers.

use std::sync::LazyLock;

use prometheus::{
    register_int_counter_vec, register_int_gauge, register_int_gauge_vec, IntCounterVec, IntGauge,
    IntGaugeVec,
};

/// Records decided per stream and outcome (`forwarded`, `dropped`, `stripped`, `rewritten`,
/// `annotated`, `dead_lettered`).
pub static RECORDS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_gate_records_total",
        "Records decided by the gate, by source stream and outcome",
        &["stream", "outcome"]
    )
    .expect("metric registers once")
});

/// Records behind the end of each source partition, per stream.
pub static LAG: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "hush_gate_lag_records",
        "Records on the source stream not yet decided, by stream and partition",
        &["stream", "partition"]
    )
    .expect("metric registers once")
});

/// Records the leak watch examined, per watched topic.
pub static WATCHED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_gate_watch_records_total",
        "Records the leak watch examined, by watched topic and result (clean, leak, undecodable)",
        &["topic", "result"]
    )
    .expect("metric registers once")
});

/// Identifiers in the suppression index.
pub static SUPPRESSED_IDENTIFIERS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "hush_gate_suppressed_identifiers",
        "Identifiers held in the gate's suppression index"
    )
    .expect("metric registers once")
});
