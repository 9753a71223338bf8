//! Auditor metrics. Labels are connector ids, confirmation actions and statuses only, never
//! request ids or personal data.

use std::sync::LazyLock;

use hush_contracts::events::{AuditRecord, AuditStatus, EpochMillis, RequestKind};
use prometheus::{
    register_gauge_vec, register_histogram_vec, register_int_counter_vec, register_int_gauge_vec,
    GaugeVec, HistogramVec, IntCounterVec, IntGaugeVec,
};

use crate::status::{status_symbol, ALL_STATUSES};
use crate::store::{AuditStore, RecordSummary};

/// Confirmations that changed an audit record, by connector and action.
pub static CONFIRMATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_confirmations_total",
        "Confirmations that changed an audit record, by connector and action",
        &["connector", "action"]
    )
    .expect("metric registers once")
});

/// Leaks folded into audit records, by watched topic (a topic name from the configuration,
/// never a subject).
pub static LEAKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_audit_leaks_total",
        "Leaks folded into audit records, by watched topic",
        &["topic"]
    )
    .expect("metric registers once")
});

/// Requests on record by current status.
pub static REQUESTS_BY_STATUS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "hush_audit_requests",
        "Requests on record, by status computed now",
        &["status"]
    )
    .expect("metric registers once")
});

/// Smallest time left before a deadline among requests still waiting for confirmations
/// (negative when one is overdue); absent when none is waiting.
pub static DEADLINE_HEADROOM: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        "hush_deadline_headroom_seconds",
        "Smallest seconds left before the deadline among requests waiting for confirmations \
         (negative when overdue)",
        &[]
    )
    .expect("metric registers once")
});

/// Age of the oldest consumer request not yet PROVEN, per request kind: the receipt→PROVEN
/// objective's alert reads it. Absent while nothing can be proven (no watched stream).
pub static UNPROVEN_AGE: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        "hush_unproven_oldest_receipt_age_seconds",
        "Seconds since the receipt of the oldest request not yet PROVEN (nor denied), by kind; \
         absent when no watched stream makes proof possible",
        &["kind"]
    )
    .expect("metric registers once")
});

/// Time from receipt to PROVEN of the consumers' requests, per request kind.
pub static RECEIPT_TO_PROVEN: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "hush_receipt_to_proven_seconds",
        "Seconds from a request's receipt to its PROVEN status, by kind",
        &["kind"],
        vec![
            3_600.0,
            21_600.0,
            86_400.0,
            172_800.0,
            259_200.0,
            604_800.0,
            1_296_000.0,
            2_592_000.0,
            3_888_000.0,
            7_776_000.0,
        ]
    )
    .expect("metric registers once")
});

/// Records a request that became PROVEN (a canary's synthetic one is not counted).
pub fn observe_proven(record: &AuditRecord, now: EpochMillis) {
    if !record.synthetic {
        RECEIPT_TO_PROVEN
            .with_label_values(&[record.kind.as_str()])
            .observe(now.saturating_sub(record.received_at).max(0) as f64 / 1000.0);
    }
}

/// Counts of the records by status at one instant, the smallest deadline headroom, and the
/// oldest receipt not yet proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    counts: [u64; ALL_STATUSES.len()],
    /// Smallest `deadline - now` in milliseconds among OPEN, AT_RISK and OVERDUE records.
    pub min_headroom_ms: Option<i64>,
    /// Per request kind (in [`RequestKind::ALL`] order), the earliest receipt among records
    /// neither PROVEN nor DENIED.
    pub oldest_unproven: [Option<EpochMillis>; RequestKind::ALL.len()],
}

impl Tally {
    /// Records with `status`.
    pub fn count(&self, status: AuditStatus) -> u64 {
        ALL_STATUSES
            .iter()
            .position(|s| *s == status)
            .map(|i| self.counts[i])
            .unwrap_or(0)
    }
}

/// Tallies `records` with their status computed at `now`; a canary's synthetic record is not
/// counted.
pub fn tally<'a>(
    records: impl IntoIterator<Item = &'a RecordSummary>,
    now: EpochMillis,
    at_risk_days: u32,
) -> Tally {
    let mut tally = Tally {
        counts: [0; ALL_STATUSES.len()],
        min_headroom_ms: None,
        oldest_unproven: [None; RequestKind::ALL.len()],
    };
    for record in records.into_iter().filter(|r| !r.synthetic) {
        let status = record.status_at(now, at_risk_days);
        if let Some(i) = ALL_STATUSES.iter().position(|s| *s == status) {
            tally.counts[i] += 1;
        }
        if !matches!(status, AuditStatus::Proven | AuditStatus::Denied) {
            if let Some(kind) = RequestKind::ALL.iter().position(|k| *k == record.kind) {
                let oldest = &mut tally.oldest_unproven[kind];
                *oldest = Some(oldest.map_or(record.received_at, |o| o.min(record.received_at)));
            }
        }
        if matches!(
            status,
            AuditStatus::Open | AuditStatus::AtRisk | AuditStatus::Overdue
        ) {
            let headroom = record.deadline.saturating_sub(now);
            tally.min_headroom_ms =
                Some(tally.min_headroom_ms.map_or(headroom, |m| m.min(headroom)));
        }
    }
    tally
}

/// Recomputes the status gauges, the headroom gauge and, when requests can be proven at all
/// (`provable`: the gate's streams are watched), the age of the oldest one not yet proven.
pub fn refresh(store: &AuditStore, now: EpochMillis, at_risk_days: u32, provable: bool) {
    let tally = store.read(|records| tally(records.map(|(_, s)| s), now, at_risk_days));
    for (kind, oldest) in RequestKind::ALL.iter().zip(tally.oldest_unproven) {
        match oldest.filter(|_| provable) {
            Some(received) => UNPROVEN_AGE
                .with_label_values(&[kind.as_str()])
                .set(now.saturating_sub(received).max(0) as f64 / 1000.0),
            None => {
                // Absent rather than 0: nothing waits, or nothing can be proven.
                let _ = UNPROVEN_AGE.remove_label_values(&[kind.as_str()]);
            }
        }
    }
    for status in ALL_STATUSES {
        REQUESTS_BY_STATUS
            .with_label_values(&[status_symbol(status)])
            .set(tally.count(status) as i64);
    }
    match tally.min_headroom_ms {
        Some(ms) => DEADLINE_HEADROOM
            .with_label_values(&[] as &[&str])
            .set(ms as f64 / 1000.0),
        None => DEADLINE_HEADROOM.reset(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::events::{Channel, RequestKind};

    const DAY: i64 = 86_400_000;

    /// The tally of `records`, through their summaries as the store gives them.
    fn tally(records: &[AuditRecord], now: EpochMillis, at_risk_days: u32) -> Tally {
        let summaries: Vec<RecordSummary> = records.iter().map(RecordSummary::of).collect();
        super::tally(&summaries, now, at_risk_days)
    }

    fn record(deadline: i64, denied: bool) -> AuditRecord {
        AuditRecord {
            request_id: "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10".into(),
            subject_key: "s".into(),
            kind: RequestKind::Delete,
            channel: Channel::Api,
            jurisdiction: "US-CA".into(),
            received_at: 0,
            deadline,
            extended: false,
            status: AuditStatus::Open,
            completed_at: None,
            denial_reason: denied.then(|| "no".to_string()),
            required_connectors: vec!["crm".into()],
            connectors: vec![],
            leaks: 0,
            leak_evidence: Vec::new(),
            proof: None,
            changes: Vec::new(),
            synthetic: false,
            resolution: Vec::new(),
            updated_at: 0,
        }
    }

    #[test]
    fn the_tally_counts_statuses_now_and_the_tightest_open_deadline() {
        let now = 100 * DAY;
        let records = [
            record(now + 30 * DAY, false),
            record(now + DAY, false),
            record(now - 2 * DAY, false),
            record(now - 50 * DAY, true),
        ];
        let tally = tally(&records, now, 3);
        assert_eq!(tally.count(AuditStatus::Open), 1);
        assert_eq!(tally.count(AuditStatus::AtRisk), 1);
        assert_eq!(tally.count(AuditStatus::Overdue), 1);
        assert_eq!(tally.count(AuditStatus::Denied), 1);
        assert_eq!(tally.count(AuditStatus::Verified), 0);
        assert_eq!(
            tally.min_headroom_ms,
            Some(-2 * DAY),
            "the denied one is not waiting"
        );
    }

    #[test]
    fn a_canarys_synthetic_request_is_not_counted() {
        let now = 100 * DAY;
        let mut canary = record(now - 2 * DAY, false);
        canary.synthetic = true;
        let tally = tally(&[canary], now, 3);
        assert_eq!(tally.count(AuditStatus::Overdue), 0);
        assert_eq!(tally.min_headroom_ms, None);
    }

    #[test]
    fn the_oldest_receipt_not_yet_proven_is_kept_per_kind() {
        let now = 100 * DAY;
        let mut waiting = record(now + DAY, false);
        waiting.received_at = 5 * DAY;
        let mut newer = record(now + DAY, false);
        newer.received_at = 9 * DAY;
        let mut proven = record(now + DAY, false);
        proven.received_at = DAY;
        proven.required_connectors.clear();
        proven.proof = Some(hush_contracts::events::LeakFreeWindow {
            window_start: 0,
            window_end: 0,
            streams: Vec::new(),
        });
        let mut denied = record(now + DAY, true);
        denied.received_at = 2 * DAY;
        let tally = tally(&[waiting, newer, proven, denied], now, 3);
        let delete = RequestKind::ALL
            .iter()
            .position(|k| *k == RequestKind::Delete)
            .unwrap();
        assert_eq!(tally.oldest_unproven[delete], Some(5 * DAY));
        assert_eq!(tally.oldest_unproven[0], None, "no opt-out on record");
    }

    #[test]
    fn no_waiting_request_means_no_headroom() {
        let tally = tally(&[record(0, true)], DAY, 3);
        assert_eq!(tally.min_headroom_ms, None);
    }
}
