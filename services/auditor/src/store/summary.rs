//! The compact summary of an audit record: what the report, the dashboard, the metrics and
//! the prover read of every request, kept for the requests this replica does not own (and
//! beside the full record of those it does), so aggregates see every request without every
//! replica holding every record.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use hush_contracts::events::{
    AuditRecord, AuditStatus, ConfirmationAction, ConnectorOutcome, EpochMillis, RequestKind,
    VerificationStatus,
};

use super::owner::key_hash;
use crate::fold::OUT_OF_BAND;
use crate::status::{
    clock_status, completion_time, compliance, has_failed_recipient, read_back_gave_up,
    settled_status, Compliance,
};

/// Where a required recipient stands on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientState {
    /// No outcome yet.
    Waiting,
    /// An outcome that did not comply (`FAILED_PERMANENT`).
    Failed,
    /// Complied and read back as expected.
    Verified,
    /// Complied; read-back unavailable, pending or failed.
    Complied,
}

/// One required recipient of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientSummary {
    /// Recipient id (shared between summaries).
    pub connector_id: Arc<str>,
    /// Its outcome.
    pub state: RecipientState,
    /// When its outcome became final (0 while waiting).
    pub completed_at: EpochMillis,
}

/// A required recipient that failed permanently or whose read-back was given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecipient {
    /// Recipient id.
    pub connector_id: Arc<str>,
    /// Calls made.
    pub attempts: i32,
    /// When its outcome became final.
    pub completed_at: EpochMillis,
    /// What it said: why the read-back was given up, else its evidence's `error`, else `reason`.
    pub error: Option<Box<str>>,
}

/// What aggregates need of one audit record; [`RecordSummary::of`] derives it, so every field
/// says what the record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSummary {
    /// Right exercised.
    pub kind: RequestKind,
    /// A canary's request (left out of counts).
    pub synthetic: bool,
    /// Whether the record carries a denial reason.
    pub denied: bool,
    /// Whether the record carries a leak-free window.
    pub proven: bool,
    /// The status written on the record.
    pub recorded_status: AuditStatus,
    /// The status that no longer depends on the time, if any (see `status::settled_status`).
    settled: Option<AuditStatus>,
    /// Whether a required recipient failed permanently.
    failed_recipient: bool,
    /// How far a complete, undenied request was complied with.
    pub compliance: Option<Compliance>,
    /// Whether a required recipient's outcome was recorded out of band.
    pub resolved_out_of_band: bool,
    /// Receipt.
    pub received_at: EpochMillis,
    /// Legal deadline, extension included.
    pub deadline: EpochMillis,
    /// The record's completion time.
    pub completed_at: Option<EpochMillis>,
    /// Completion time computed from the required outcomes (see `status::completion_time`).
    pub completion_time: Option<EpochMillis>,
    /// Outbound events seen after suppression.
    pub leaks: i32,
    /// Latest leak detection.
    pub last_leak_at: Option<EpochMillis>,
    /// The required recipients, in the record's order.
    pub recipients: Box<[RecipientSummary]>,
    /// Failed required recipients, when the request is not denied and has any (else `None`).
    pub failures: Option<Box<[FailedRecipient]>>,
    /// Hash of the subject key: which partition of the confirmations topic owns the request.
    pub owner_hash: u32,
    /// When the record was written.
    pub updated_at: EpochMillis,
}

impl RecordSummary {
    /// The summary of `record`.
    pub fn of(record: &AuditRecord) -> Self {
        let outcome = |id: &str| record.connectors.iter().find(|o| o.connector_id == id);
        let recipients = record
            .required_connectors
            .iter()
            .map(|id| {
                let (state, completed_at) = match outcome(id) {
                    None => (RecipientState::Waiting, 0),
                    Some(o) if !o.action.complied() => (RecipientState::Failed, o.completed_at),
                    Some(o) if o.verification == VerificationStatus::Verified => {
                        (RecipientState::Verified, o.completed_at)
                    }
                    Some(o) => (RecipientState::Complied, o.completed_at),
                };
                RecipientSummary {
                    connector_id: intern(id),
                    state,
                    completed_at,
                }
            })
            .collect();
        let failures: Vec<FailedRecipient> = record
            .connectors
            .iter()
            .filter(|o| {
                record.denial_reason.is_none()
                    && (o.action == ConfirmationAction::FailedPermanent
                        || read_back_gave_up(o).is_some())
                    && record.required_connectors.contains(&o.connector_id)
            })
            .map(|o| FailedRecipient {
                connector_id: intern(&o.connector_id),
                attempts: o.attempts,
                completed_at: o.completed_at,
                error: failure_error(o).map(Box::from),
            })
            .collect();
        Self {
            kind: record.kind,
            synthetic: record.synthetic,
            denied: record.denial_reason.is_some(),
            proven: record.proof.is_some(),
            recorded_status: record.status,
            settled: settled_status(record),
            failed_recipient: has_failed_recipient(record),
            compliance: compliance(record),
            resolved_out_of_band: record.connectors.iter().any(|o| {
                record.required_connectors.contains(&o.connector_id)
                    && o.evidence.get("resolution").map(String::as_str) == Some(OUT_OF_BAND)
            }),
            received_at: record.received_at,
            deadline: record.deadline,
            completed_at: record.completed_at,
            completion_time: completion_time(record),
            leaks: record.leaks,
            last_leak_at: record.leak_evidence.iter().map(|e| e.detected_at).max(),
            recipients,
            failures: (!failures.is_empty()).then(|| failures.into_boxed_slice()),
            owner_hash: key_hash(record.subject_key.as_bytes()),
            updated_at: record.updated_at,
        }
    }

    /// The request's status at `now` (the same as `status::status_at` on the record).
    pub fn status_at(&self, now: EpochMillis, at_risk_days: u32) -> AuditStatus {
        self.settled.unwrap_or_else(|| {
            clock_status(self.deadline, self.failed_recipient, now, at_risk_days)
        })
    }

    /// Whether the request has a failed recipient to list (not denied, and a required
    /// recipient failed permanently or its read-back was given up).
    pub fn needs_action(&self) -> bool {
        self.failures.is_some()
    }
}

/// What a failed recipient said: why its read-back was given up, else its evidence's `error`,
/// else its `reason`.
pub fn failure_error(outcome: &ConnectorOutcome) -> Option<&str> {
    read_back_gave_up(outcome).or_else(|| {
        outcome
            .evidence
            .get("error")
            .or_else(|| outcome.evidence.get("reason"))
            .map(String::as_str)
    })
}

/// One shared copy of each recipient id: summaries name only required recipients, which come
/// from the recipients configuration, so the set stays as small as that file.
fn intern(name: &str) -> Arc<str> {
    static NAMES: OnceLock<Mutex<HashSet<Arc<str>>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Mutex::default)
        .lock()
        .expect("names lock");
    if let Some(shared) = names.get(name) {
        return shared.clone();
    }
    let shared: Arc<str> = Arc::from(name);
    names.insert(shared.clone());
    shared
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::tests::{confirmation, record, RECEIVED};
    use crate::status::{apply_confirmation, status_at};
    use hush_contracts::events::{LeakEvidence, LeakFreeWindow};
    use ConfirmationAction::*;
    use VerificationStatus::*;

    const DAY: EpochMillis = 86_400_000;

    /// Records in many states: waiting, failed, given up, verified, unverifiable, denied,
    /// leaking, proven, out of band.
    fn records() -> Vec<AuditRecord> {
        let mut all = Vec::new();
        all.push(record(&["crm", "ads"]));
        let mut failed = record(&["crm", "ads"]);
        let mut c = confirmation("crm", FailedPermanent, Unverifiable, RECEIVED + DAY);
        c.evidence.insert("error".into(), "HTTP 400".into());
        apply_confirmation(&mut failed, &c);
        all.push(failed.clone());
        let mut complete = record(&["crm", "ads"]);
        apply_confirmation(
            &mut complete,
            &confirmation("crm", Suppressed, Verified, RECEIVED + 2 * DAY),
        );
        apply_confirmation(
            &mut complete,
            &confirmation("ads", Deleted, Unverifiable, RECEIVED + 3 * DAY),
        );
        all.push(complete.clone());
        let mut gave_up = complete.clone();
        let mut pending = confirmation("ads", Deleted, Pending, RECEIVED + 4 * DAY);
        pending.evidence.insert(
            hush_contracts::events::READ_BACK_GAVE_UP_EVIDENCE_KEY.into(),
            "read back 12 times".into(),
        );
        apply_confirmation(&mut gave_up, &pending);
        all.push(gave_up);
        let mut proven = complete.clone();
        proven.proof = Some(LeakFreeWindow {
            window_start: 0,
            window_end: 1,
            streams: Vec::new(),
        });
        all.push(proven);
        let mut leaking = complete.clone();
        leaking.leaks = 2;
        for detected_at in [RECEIVED + 5 * DAY, RECEIVED + 9 * DAY] {
            leaking.leak_evidence.push(LeakEvidence {
                leak_id: "l".into(),
                source_topic: "t".into(),
                source_partition: 0,
                source_offset: 1,
                identifier_type: "EMAIL_SHA256".into(),
                identifier_hash: "h".into(),
                event_time: detected_at,
                ms_after_suppression: 1,
                action_taken: "DROPPED".into(),
                detected_at,
            });
        }
        all.push(leaking);
        let mut denied = failed;
        denied.denial_reason = Some("manifestly unfounded".into());
        all.push(denied);
        let mut out_of_band = record(&["crm"]);
        let mut resolved = confirmation("crm", Suppressed, Unverifiable, RECEIVED + DAY);
        resolved
            .evidence
            .insert("resolution".into(), OUT_OF_BAND.into());
        apply_confirmation(&mut out_of_band, &resolved);
        all.push(out_of_band);
        all.push(record(&[]));
        all
    }

    #[test]
    fn a_summary_says_what_its_record_says() {
        for (i, record) in records().iter().enumerate() {
            let summary = RecordSummary::of(record);
            for now in [RECEIVED, RECEIVED + 19 * DAY, RECEIVED + 30 * DAY] {
                assert_eq!(
                    summary.status_at(now, 3),
                    status_at(record, now, 3),
                    "record {i} at {now}"
                );
            }
            assert_eq!(summary.compliance, compliance(record), "record {i}");
            assert_eq!(
                summary.completion_time,
                completion_time(record),
                "record {i}"
            );
            assert_eq!(summary.completed_at, record.completed_at);
            assert_eq!(summary.denied, record.denial_reason.is_some());
            assert_eq!(summary.proven, record.proof.is_some());
            assert_eq!(summary.leaks, record.leaks);
            assert_eq!(
                summary.last_leak_at,
                record.leak_evidence.iter().map(|e| e.detected_at).max()
            );
            assert_eq!(summary.recipients.len(), record.required_connectors.len());
            assert_eq!(summary.received_at, record.received_at);
            assert_eq!(summary.deadline, record.deadline);
            assert_eq!(summary.kind, record.kind);
        }
    }

    #[test]
    fn a_summary_keeps_each_recipients_outcome_and_the_failures_to_list() {
        let all = records();
        let failed = RecordSummary::of(&all[1]);
        assert_eq!(failed.recipients[0].state, RecipientState::Failed);
        assert_eq!(failed.recipients[1].state, RecipientState::Waiting);
        let failures = failed.failures.as_deref().expect("a failure to list");
        assert_eq!(&*failures[0].connector_id, "crm");
        assert_eq!(failures[0].error.as_deref(), Some("HTTP 400"));
        let complete = RecordSummary::of(&all[2]);
        assert_eq!(complete.recipients[0].state, RecipientState::Verified);
        assert_eq!(complete.recipients[1].state, RecipientState::Complied);
        assert_eq!(complete.recipients[1].completed_at, RECEIVED + 3 * DAY);
        assert!(!complete.needs_action());
        let gave_up = RecordSummary::of(&all[3]);
        assert_eq!(
            gave_up.failures.as_deref().unwrap()[0].error.as_deref(),
            Some("read back 12 times")
        );
        assert!(
            !RecordSummary::of(&all[6]).needs_action(),
            "a denied request lists no failure"
        );
        assert!(RecordSummary::of(&all[7]).resolved_out_of_band);
        assert!(!complete.resolved_out_of_band);
        assert!(Arc::ptr_eq(
            &failed.recipients[0].connector_id,
            &complete.recipients[0].connector_id
        ));
    }
}
