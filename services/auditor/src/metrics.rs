//! Auditor metrics. Labels are connector ids, confirmation actions and statuses only, never
//! request ids or personal data.

use std::sync::LazyLock;

use hush_contracts::events::{AuditRecord, AuditStatus, EpochMillis};
use prometheus::{
    register_gauge_vec, register_int_counter_vec, register_int_gauge_vec, GaugeVec, IntCounterVec,
    IntGaugeVec,
};

use crate::status::{status_at, status_symbol, ALL_STATUSES};
use crate::store::AuditStore;

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

/// Counts of the records by status at one instant, and the smallest deadline headroom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    counts: [u64; ALL_STATUSES.len()],
    /// Smallest `deadline - now` in milliseconds among OPEN, AT_RISK and OVERDUE records.
    pub min_headroom_ms: Option<i64>,
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

/// Tallies `records` with their status computed at `now`.
pub fn tally<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
    now: EpochMillis,
    at_risk_days: u32,
) -> Tally {
    let mut tally = Tally {
        counts: [0; ALL_STATUSES.len()],
        min_headroom_ms: None,
    };
    for record in records {
        let status = status_at(record, now, at_risk_days);
        if let Some(i) = ALL_STATUSES.iter().position(|s| *s == status) {
            tally.counts[i] += 1;
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

/// Recomputes the status gauges and the headroom gauge from the store.
pub fn refresh(store: &AuditStore, now: EpochMillis, at_risk_days: u32) {
    let tally = store.read(|records| tally(records, now, at_risk_days));
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
    fn no_waiting_request_means_no_headroom() {
        let tally = tally(&[record(0, true)], DAY, 3);
        assert_eq!(tally.min_headroom_ms, None);
    }
}
