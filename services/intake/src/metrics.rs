//! Intake metrics. Labels are request kinds and channels only (refusals are counted by
//! `hush_runtime::metrics::HTTP_ERRORS`).

use std::sync::LazyLock;

use prometheus::{register_int_counter_vec, register_int_gauge, IntCounterVec, IntGauge};

/// Requests accepted and published, by kind and channel.
pub static ACCEPTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_requests_received_total",
        "Privacy requests accepted and published, by kind and channel",
        &["kind", "channel"]
    )
    .expect("metric registers once")
});

/// Identifiers in intake's copy of the suppression state.
pub static SUPPRESSED_IDENTIFIERS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "hush_intake_suppressed_identifiers",
        "Identifiers held in intake's suppression state (answers GET /v1/consent)"
    )
    .expect("metric registers once")
});

/// Answers of `GET /v1/consent`: `opted_out`, `not_opted_out`, `gpc`, `unavailable`.
pub static CONSENT_ANSWERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_consent_answers_total",
        "Answers of GET /v1/consent, by answer (opted_out, not_opted_out, gpc, unavailable)",
        &["answer"]
    )
    .expect("metric registers once")
});
