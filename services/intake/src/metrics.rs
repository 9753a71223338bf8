//! Intake metrics. Labels are request kinds and channels only (refusals are counted by
//! `hush_runtime::metrics::HTTP_ERRORS`).

use std::sync::LazyLock;

use prometheus::{register_int_counter_vec, register_int_gauge, IntCounterVec, IntGauge};

/// Requests accepted and published, by kind and channel; the canary's are left out (see
/// [`CANARY_ACCEPTED`]).
pub static ACCEPTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_requests_received_total",
        "Privacy requests accepted and published, by kind and channel",
        &["kind", "channel"]
    )
    .expect("metric registers once")
});

/// The canary's requests (every identifier synthetic) accepted and published, by kind and
/// channel: counted here and never in `hush_requests_received_total`, so real counts stay
/// real.
pub static CANARY_ACCEPTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_canary_requests_received_total",
        "Canary (synthetic) requests accepted and published, by kind and channel; not in \
         hush_requests_received_total",
        &["kind", "channel"]
    )
    .expect("metric registers once")
});

/// The counter an accepted request counts in: [`CANARY_ACCEPTED`] for the canary's,
/// [`ACCEPTED`] for everyone else's.
pub fn accepted_counter(synthetic: bool) -> &'static IntCounterVec {
    if synthetic {
        &CANARY_ACCEPTED
    } else {
        &ACCEPTED
    }
}

/// Identifiers in intake's copy of the suppression state, the canary's left out.
pub static SUPPRESSED_IDENTIFIERS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "hush_intake_suppressed_identifiers",
        "Identifiers held in intake's suppression state (answers GET /v1/consent), the \
         canary's left out"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canary_request_is_counted_apart_from_real_ones() {
        let labels = ["DELETE", "METRICS_TEST"];
        let real = ACCEPTED.with_label_values(&labels).get();
        let canary = CANARY_ACCEPTED.with_label_values(&labels).get();
        accepted_counter(true).with_label_values(&labels).inc();
        assert_eq!(ACCEPTED.with_label_values(&labels).get(), real);
        assert_eq!(CANARY_ACCEPTED.with_label_values(&labels).get(), canary + 1);
        accepted_counter(false).with_label_values(&labels).inc();
        assert_eq!(ACCEPTED.with_label_values(&labels).get(), real + 1);
        assert_eq!(CANARY_ACCEPTED.with_label_values(&labels).get(), canary + 1);
    }
}
