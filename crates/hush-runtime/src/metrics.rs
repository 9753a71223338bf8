//! Prometheus metrics shared by every service (default registry, served at `/metrics`).
//! Labels carry topic, connector and kind names and error codes only, never personal data.

use std::sync::LazyLock;

use prometheus::{
    register_int_counter, register_int_counter_vec, register_int_gauge_vec, IntCounter,
    IntCounterVec, IntGaugeVec,
};

/// Messages handled by consumers, by topic and outcome (`ok`, `dead_lettered`).
pub static MESSAGES_HANDLED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_messages_handled_total",
        "Messages handled by consumers, by topic and outcome",
        &["topic", "outcome"]
    )
    .expect("metric registers once")
});

/// In-place handler retries, by topic.
pub static HANDLER_RETRIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_handler_retries_total",
        "Transient handler failures retried in place, by topic",
        &["topic"]
    )
    .expect("metric registers once")
});

/// Dead letters written, by source topic.
pub static DEAD_LETTERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_dead_letters_total",
        "Events written to the dead-letter topic, by source topic",
        &["source_topic"]
    )
    .expect("metric registers once")
});

/// Messages behind the end of each partition, per consumer group (from librdkafka statistics).
pub static CONSUMER_LAG: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "hush_consumer_lag",
        "Messages between a consumer group's position and the partition's end",
        &["group", "topic", "partition"]
    )
    .expect("metric registers once")
});

/// Kafka clients given their bootstrap servers back after forgetting every broker (see
/// `kafka::restore`); each is a metadata answer that listed no broker.
pub static KAFKA_BOOTSTRAP_RESTORED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "hush_kafka_bootstrap_restored_total",
        "Kafka clients given their bootstrap servers back after forgetting every broker"
    )
    .expect("metric registers once")
});

/// Error answers of the HTTP APIs (intake, auditor, deny-list), by error code.
pub static HTTP_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_http_errors_total",
        "Error answers of the Hush HTTP APIs, by error code",
        &["error"]
    )
    .expect("metric registers once")
});
