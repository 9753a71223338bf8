//! The status of an audited request, and how a confirmation folds into its record.
//!
//! Rules, applied in this order (DESIGN.md, "What proven means"):
//!
//! 1. `DENIED` when the record carries a denial reason.
//! 2. `LEAKING` when the gate saw outbound data after the suppression took effect (`leaks > 0`),
//!    whatever the confirmations say: point (3) of "proven" failed.
//! 3. When the request is *fully complied*, i.e. every required connector has an outcome and
//!    none of them is `FAILED_PERMANENT`, the read-back decides:
//!    - `ACTION_REQUIRED` if any required outcome's read-back stayed `PENDING` until the
//!      suppressor's re-verification limit passed (see [`read_back_gave_up`]): nothing will read
//!      it again until an operator retries that recipient or records a resolution;
//!    - `UNVERIFIED` if any required outcome's verification is `PENDING` or `FAILED`;
//!    - `VERIFIED` if none is, and at least one is `VERIFIED` (every connector that can be read
//!      back was, and the others are `UNVERIFIABLE`): the request is proven;
//!    - `CONFIRMED` if every required outcome is `UNVERIFIABLE` (or none is required): every
//!      recipient confirmed, but nothing could be read back, so the claim rests on their word;
//!    - `PROVEN` instead of `VERIFIED` or `CONFIRMED` once the record carries a leak-free window
//!      (`proof`): no watched outbound stream carried an event about the subject over the
//!      observation window after the last confirmation.
//! 4. Otherwise the deadline decides: `OVERDUE` after the deadline; before it,
//!    `ACTION_REQUIRED` when a required recipient failed permanently (that recipient did not
//!    comply and nothing will change until an operator retries it or records an out-of-band
//!    resolution); else `AT_RISK` within `at_risk_days` calendar days of the deadline
//!    (inclusive), else `OPEN`. A request with a failed recipient stays on the deadline clock
//!    until a later outcome from that connector replaces the failure; the report counts it,
//!    once every required connector has answered, as complied with in part.
//!
//! Only connectors in `required_connectors` count. Confirmations from other connectors (for
//! example a `NOT_APPLICABLE` from a recipient outside the request's scope) are recorded in the
//! record's outcomes but never block or change the status.

use hush_contracts::events::{
    AuditRecord, AuditStatus, Confirmation, ConfirmationAction, ConnectorOutcome, EpochMillis,
    VerificationStatus, READ_BACK_GAVE_UP_EVIDENCE_KEY,
};

const DAY_MS: i64 = 86_400_000;

/// Evidence key under which a confirmation's statutory retention basis is kept.
pub const EXCEPTION_BASIS_EVIDENCE_KEY: &str = "exception_basis";

/// Every status, in schema order.
pub const ALL_STATUSES: [AuditStatus; 10] = [
    AuditStatus::Open,
    AuditStatus::AtRisk,
    AuditStatus::Confirmed,
    AuditStatus::Unverified,
    AuditStatus::Verified,
    AuditStatus::Overdue,
    AuditStatus::Denied,
    AuditStatus::Leaking,
    AuditStatus::Proven,
    AuditStatus::ActionRequired,
];

/// The schema symbol of a status, e.g. `AT_RISK`.
pub fn status_symbol(status: AuditStatus) -> &'static str {
    match status {
        AuditStatus::Open => "OPEN",
        AuditStatus::AtRisk => "AT_RISK",
        AuditStatus::Confirmed => "CONFIRMED",
        AuditStatus::Unverified => "UNVERIFIED",
        AuditStatus::Verified => "VERIFIED",
        AuditStatus::Overdue => "OVERDUE",
        AuditStatus::Denied => "DENIED",
        AuditStatus::Leaking => "LEAKING",
        AuditStatus::Proven => "PROVEN",
        AuditStatus::ActionRequired => "ACTION_REQUIRED",
    }
}

/// How far a request with every required outcome in was complied with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compliance {
    /// Every required connector complied.
    Whole,
    /// Some required connectors complied, at least one failed permanently.
    Part,
    /// Every required connector failed permanently.
    None,
}

/// The outcome recorded for `connector_id`, if any.
fn outcome<'a>(record: &'a AuditRecord, connector_id: &str) -> Option<&'a ConnectorOutcome> {
    record
        .connectors
        .iter()
        .find(|o| o.connector_id == connector_id)
}

/// The outcomes of the required connectors, or `None` while any is missing.
fn required_outcomes(record: &AuditRecord) -> Option<Vec<&ConnectorOutcome>> {
    record
        .required_connectors
        .iter()
        .map(|id| outcome(record, id))
        .collect()
}

/// Whether a required connector's outcome is `FAILED_PERMANENT`.
pub fn has_failed_recipient(record: &AuditRecord) -> bool {
    record.required_connectors.iter().any(|id| {
        outcome(record, id).is_some_and(|o| o.action == ConfirmationAction::FailedPermanent)
    })
}

/// Why `outcome`'s read-back was given up (it stayed `PENDING` past the suppressor's
/// re-verification limit), or `None` when it was not.
pub fn read_back_gave_up(outcome: &ConnectorOutcome) -> Option<&str> {
    if outcome.verification != VerificationStatus::Pending {
        return None;
    }
    outcome
        .evidence
        .get(READ_BACK_GAVE_UP_EVIDENCE_KEY)
        .map(String::as_str)
}

/// How settled a read-back is: a `PENDING` one still awaited, one given up, a final one.
fn read_back_rank(outcome: &ConnectorOutcome) -> u8 {
    match outcome.verification {
        VerificationStatus::Pending if read_back_gave_up(outcome).is_some() => 1,
        VerificationStatus::Pending => 0,
        _ => 2,
    }
}

/// Whether every required connector has a terminal outcome (`FAILED_PERMANENT` included).
pub fn is_complete(record: &AuditRecord) -> bool {
    required_outcomes(record).is_some()
}

/// When the request became complete: the latest `completed_at` of the required outcomes, or the
/// receipt time when no connector is required; `None` while an outcome is missing.
pub fn completion_time(record: &AuditRecord) -> Option<EpochMillis> {
    let outcomes = required_outcomes(record)?;
    Some(
        outcomes
            .iter()
            .map(|o| o.completed_at)
            .max()
            .unwrap_or(record.received_at),
    )
}

/// How far a complete, undenied request was complied with; `None` while it is incomplete or
/// when it was denied.
pub fn compliance(record: &AuditRecord) -> Option<Compliance> {
    if record.denial_reason.is_some() {
        return None;
    }
    let outcomes = required_outcomes(record)?;
    let complied = outcomes.iter().filter(|o| o.action.complied()).count();
    Some(if complied == outcomes.len() {
        Compliance::Whole
    } else if complied > 0 {
        Compliance::Part
    } else {
        Compliance::None
    })
}

/// The status of `record` at `now_ms` (see the module documentation for the rules).
pub fn status_at(record: &AuditRecord, now_ms: EpochMillis, at_risk_days: u32) -> AuditStatus {
    settled_status(record).unwrap_or_else(|| {
        clock_status(
            record.deadline,
            has_failed_recipient(record),
            now_ms,
            at_risk_days,
        )
    })
}

/// The status of `record` that no longer depends on the time (rules 1 to 3: denied, leaking,
/// fully complied), or `None` while the deadline decides it (see [`clock_status`]).
pub fn settled_status(record: &AuditRecord) -> Option<AuditStatus> {
    if record.denial_reason.is_some() {
        return Some(AuditStatus::Denied);
    }
    if record.leaks > 0 {
        return Some(AuditStatus::Leaking);
    }
    let outcomes = required_outcomes(record)?;
    if !outcomes.iter().all(|o| o.action.complied()) {
        return None;
    }
    let has = |status| outcomes.iter().any(|o| o.verification == status);
    let gave_up = outcomes.iter().any(|o| read_back_gave_up(o).is_some());
    Some(if gave_up {
        AuditStatus::ActionRequired
    } else if has(VerificationStatus::Pending) || has(VerificationStatus::Failed) {
        AuditStatus::Unverified
    } else if record.proof.is_some() {
        AuditStatus::Proven
    } else if has(VerificationStatus::Verified) {
        AuditStatus::Verified
    } else {
        AuditStatus::Confirmed
    })
}

/// The status of a request the deadline decides (rule 4), at `now_ms`: `failed_recipient` says
/// whether a required recipient failed permanently.
pub fn clock_status(
    deadline: EpochMillis,
    failed_recipient: bool,
    now_ms: EpochMillis,
    at_risk_days: u32,
) -> AuditStatus {
    let at_risk_window = i64::from(at_risk_days).saturating_mul(DAY_MS);
    if now_ms > deadline {
        AuditStatus::Overdue
    } else if failed_recipient {
        AuditStatus::ActionRequired
    } else if deadline.saturating_sub(now_ms) <= at_risk_window {
        AuditStatus::AtRisk
    } else {
        AuditStatus::Open
    }
}

/// Folds a confirmation into the record: it becomes the connector's outcome unless the stored
/// outcome completed later (the latest `completed_at` wins; on a tie the newer arrival wins), and
/// `completed_at` is recomputed with [`completion_time`]. A re-verification is a confirmation
/// with the same outcome and `completed_at` and a newer read-back: it updates the outcome's
/// verification and evidence, so the connector keeps exactly one outcome and the request its
/// completion time; on such a tie a read-back never goes back (a final status is not replaced
/// by `PENDING`, nor a given-up read-back by one still awaited), whatever the arrival order. A retention exception's basis is kept
/// in the outcome's evidence under [`EXCEPTION_BASIS_EVIDENCE_KEY`]. A confirmation for another
/// request changes nothing. `status` and `updated_at` are left to the caller (see [`status_at`]).
/// Returns whether the record changed.
pub fn apply_confirmation(record: &mut AuditRecord, confirmation: &Confirmation) -> bool {
    if confirmation.request_id != record.request_id {
        return false;
    }
    let mut evidence = confirmation.evidence.clone();
    if let Some(basis) = &confirmation.exception_basis {
        evidence.insert(EXCEPTION_BASIS_EVIDENCE_KEY.to_string(), basis.clone());
    }
    let incoming = ConnectorOutcome {
        connector_id: confirmation.connector_id.clone(),
        role: confirmation.role,
        action: confirmation.action,
        verification: confirmation.verification,
        attempts: confirmation.attempts,
        completed_at: confirmation.completed_at,
        evidence,
    };
    let slot = record
        .connectors
        .iter_mut()
        .find(|o| o.connector_id == incoming.connector_id);
    let changed = match slot {
        Some(stored) if stored.completed_at > incoming.completed_at || *stored == incoming => false,
        Some(stored)
            if stored.completed_at == incoming.completed_at
                && stored.action == incoming.action
                && read_back_rank(stored) > read_back_rank(&incoming) =>
        {
            false
        }
        Some(stored) => {
            *stored = incoming;
            true
        }
        None => {
            record.connectors.push(incoming);
            true
        }
    };
    let completed_at = completion_time(record);
    let completion_changed = record.completed_at != completed_at;
    record.completed_at = completed_at;
    changed || completion_changed
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hush_contracts::events::{Channel, ConfirmationAction, RecipientRole, RequestKind};
    use std::collections::HashMap;

    pub(crate) const RECEIVED: EpochMillis = 1_795_000_000_000;
    const DEADLINE: EpochMillis = RECEIVED + 21 * DAY_MS;

    pub(crate) fn record(required: &[&str]) -> AuditRecord {
        AuditRecord {
            request_id: "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10".into(),
            subject_key: "ab".repeat(32),
            kind: RequestKind::OptOutSaleShare,
            channel: Channel::Gpc,
            jurisdiction: "US-CA".into(),
            received_at: RECEIVED,
            deadline: DEADLINE,
            extended: false,
            status: AuditStatus::Open,
            completed_at: None,
            denial_reason: None,
            required_connectors: required.iter().map(|s| s.to_string()).collect(),
            connectors: Vec::new(),
            leaks: 0,
            leak_evidence: Vec::new(),
            proof: None,
            changes: Vec::new(),
            synthetic: false,
            resolution: Vec::new(),
            updated_at: RECEIVED,
        }
    }

    pub(crate) fn confirmation(
        connector: &str,
        action: ConfirmationAction,
        verification: VerificationStatus,
        completed_at: EpochMillis,
    ) -> Confirmation {
        Confirmation {
            request_id: "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10".into(),
            subject_key: "ab".repeat(32),
            connector_id: connector.into(),
            role: RecipientRole::ThirdParty,
            action,
            exception_basis: None,
            attempts: 1,
            first_attempt_at: Some(completed_at),
            last_attempt_at: Some(completed_at),
            completed_at,
            verification,
            evidence: HashMap::from([("http_status".into(), "204".into())]),
        }
    }

    fn status(record: &AuditRecord) -> AuditStatus {
        status_at(record, RECEIVED + DAY_MS, 3)
    }

    use ConfirmationAction::*;
    use VerificationStatus::*;

    #[test]
    fn status_symbols_are_the_serde_names() {
        for status in ALL_STATUSES {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::String(status_symbol(status).into())
            );
        }
    }

    #[test]
    fn an_incomplete_request_goes_open_then_at_risk_then_overdue() {
        let record = record(&["hubspot"]);
        assert_eq!(status_at(&record, RECEIVED, 3), AuditStatus::Open);
        assert_eq!(
            status_at(&record, DEADLINE - 3 * DAY_MS - 1, 3),
            AuditStatus::Open
        );
        assert_eq!(
            status_at(&record, DEADLINE - 3 * DAY_MS, 3),
            AuditStatus::AtRisk
        );
        assert_eq!(status_at(&record, DEADLINE, 3), AuditStatus::AtRisk);
        assert_eq!(status_at(&record, DEADLINE + 1, 3), AuditStatus::Overdue);
    }

    #[test]
    fn at_risk_days_zero_goes_straight_from_open_to_overdue() {
        let record = record(&["hubspot"]);
        assert_eq!(status_at(&record, DEADLINE - 1, 0), AuditStatus::Open);
        assert_eq!(status_at(&record, DEADLINE + 1, 0), AuditStatus::Overdue);
    }

    #[test]
    fn a_missing_confirmation_keeps_the_request_on_the_clock() {
        let mut record = record(&["hubspot", "meta"]);
        apply_confirmation(
            &mut record,
            &confirmation("hubspot", Flagged, Verified, RECEIVED + 10),
        );
        assert!(!is_complete(&record));
        assert_eq!(record.completed_at, None);
        assert_eq!(status(&record), AuditStatus::Open);
        assert_eq!(status_at(&record, DEADLINE + 1, 3), AuditStatus::Overdue);
    }

    #[test]
    fn every_readable_connector_verified_is_verified() {
        let mut record = record(&["hubspot", "webhook"]);
        apply_confirmation(
            &mut record,
            &confirmation("hubspot", Flagged, Verified, RECEIVED + 10),
        );
        apply_confirmation(
            &mut record,
            &confirmation("webhook", Notified, Unverifiable, RECEIVED + 20),
        );
        assert!(is_complete(&record));
        assert_eq!(record.completed_at, Some(RECEIVED + 20));
        assert_eq!(status(&record), AuditStatus::Verified);
        // Completion is final: the deadline no longer matters.
        assert_eq!(status_at(&record, DEADLINE + 1, 3), AuditStatus::Verified);
    }

    #[test]
    fn nothing_readable_is_confirmed() {
        let mut record = record(&["webhook", "clearbit"]);
        apply_confirmation(
            &mut record,
            &confirmation("webhook", Notified, Unverifiable, RECEIVED + 10),
        );
        apply_confirmation(
            &mut record,
            &confirmation("clearbit", Suppressed, Unverifiable, RECEIVED + 20),
        );
        assert_eq!(status(&record), AuditStatus::Confirmed);
    }

    #[test]
    fn a_pending_or_failed_read_back_is_unverified() {
        for verification in [Pending, Failed] {
            let mut record = record(&["hubspot", "google"]);
            apply_confirmation(
                &mut record,
                &confirmation("hubspot", Flagged, Verified, RECEIVED + 10),
            );
            apply_confirmation(
                &mut record,
                &confirmation("google", Suppressed, verification, RECEIVED + 20),
            );
            assert_eq!(status(&record), AuditStatus::Unverified, "{verification:?}");
        }
    }

    #[test]
    fn a_later_verified_confirmation_turns_unverified_into_verified() {
        let mut record = record(&["google"]);
        apply_confirmation(
            &mut record,
            &confirmation("google", Suppressed, Pending, RECEIVED + 10),
        );
        assert_eq!(status(&record), AuditStatus::Unverified);
        assert!(apply_confirmation(
            &mut record,
            &confirmation("google", Suppressed, Verified, RECEIVED + 50),
        ));
        assert_eq!(status(&record), AuditStatus::Verified);
        assert_eq!(record.completed_at, Some(RECEIVED + 50));
    }

    /// A re-verification of `pending`: the same outcome and completion, read back `status`.
    fn reverified(pending: &Confirmation, status: VerificationStatus) -> Confirmation {
        let mut next = pending.clone();
        next.verification = status;
        next.evidence.insert(
            hush_contracts::events::READ_BACKS_EVIDENCE_KEY.into(),
            "2".into(),
        );
        next
    }

    /// `pending` after the suppressor gave its read-back up.
    fn given_up(pending: &Confirmation) -> Confirmation {
        let mut next = pending.clone();
        next.evidence.insert(
            READ_BACK_GAVE_UP_EVIDENCE_KEY.into(),
            "read-back still PENDING after 5 read-backs".into(),
        );
        next
    }

    #[test]
    fn a_reverification_updates_the_read_back_and_keeps_the_completion_time() {
        let mut record = record(&["hubspot"]);
        let pending = confirmation("hubspot", Flagged, Pending, RECEIVED + 10);
        apply_confirmation(&mut record, &pending);
        assert_eq!(status(&record), AuditStatus::Unverified);
        assert!(apply_confirmation(
            &mut record,
            &reverified(&pending, Verified)
        ));
        assert_eq!(record.connectors.len(), 1, "one outcome per connector");
        assert_eq!(record.connectors[0].verification, Verified);
        assert_eq!(record.connectors[0].evidence["read_backs"], "2");
        assert_eq!(record.completed_at, Some(RECEIVED + 10));
        assert_eq!(status(&record), AuditStatus::Verified);
    }

    #[test]
    fn a_stale_pending_never_undoes_a_reverification() {
        let pending = confirmation("hubspot", Flagged, Pending, RECEIVED + 10);
        for settled in [reverified(&pending, Verified), given_up(&pending)] {
            let mut record = record(&["hubspot"]);
            apply_confirmation(&mut record, &settled);
            let before = record.clone();
            assert!(!apply_confirmation(&mut record, &pending));
            assert_eq!(record, before);
        }
        // A final read-back still replaces a given-up one (an operator's retry read it).
        let mut record = record(&["hubspot"]);
        apply_confirmation(&mut record, &given_up(&pending));
        assert!(apply_confirmation(
            &mut record,
            &reverified(&pending, Verified)
        ));
        assert_eq!(status(&record), AuditStatus::Verified);
    }

    #[test]
    fn a_given_up_read_back_requires_action_with_its_reason() {
        let mut record = record(&["hubspot", "webhook"]);
        apply_confirmation(
            &mut record,
            &confirmation("webhook", Notified, Unverifiable, RECEIVED + 5),
        );
        let pending = confirmation("hubspot", Flagged, Pending, RECEIVED + 10);
        apply_confirmation(&mut record, &pending);
        assert_eq!(status(&record), AuditStatus::Unverified);
        assert!(apply_confirmation(&mut record, &given_up(&pending)));
        assert_eq!(status(&record), AuditStatus::ActionRequired);
        // The request complied: the deadline passing does not make it overdue.
        assert_eq!(
            status_at(&record, DEADLINE + 1, 3),
            AuditStatus::ActionRequired
        );
        let outcome = outcome(&record, "hubspot").unwrap();
        assert_eq!(
            read_back_gave_up(outcome),
            Some("read-back still PENDING after 5 read-backs")
        );
        assert_eq!(record.completed_at, Some(RECEIVED + 10));
    }

    #[test]
    fn an_older_confirmation_does_not_replace_a_newer_one() {
        let mut record = record(&["google"]);
        apply_confirmation(
            &mut record,
            &confirmation("google", Suppressed, Verified, RECEIVED + 50),
        );
        let before = record.clone();
        assert!(!apply_confirmation(
            &mut record,
            &confirmation("google", Suppressed, Pending, RECEIVED + 10),
        ));
        assert_eq!(record, before);
    }

    #[test]
    fn a_redelivered_confirmation_changes_nothing() {
        let mut record = record(&["google"]);
        let c = confirmation("google", Suppressed, Verified, RECEIVED + 50);
        assert!(apply_confirmation(&mut record, &c));
        assert!(!apply_confirmation(&mut record, &c));
        assert_eq!(record.connectors.len(), 1);
    }

    #[test]
    fn a_confirmation_for_another_request_is_ignored() {
        let mut record = record(&["google"]);
        let mut c = confirmation("google", Suppressed, Verified, RECEIVED + 50);
        c.request_id = "5a0e2c56-1f1c-4a55-9a43-3b0e63c2a0d1".into();
        assert!(!apply_confirmation(&mut record, &c));
        assert!(record.connectors.is_empty());
    }

    #[test]
    fn a_permanent_failure_keeps_the_request_on_the_clock_until_replaced() {
        let mut record = record(&["hubspot", "meta"]);
        apply_confirmation(
            &mut record,
            &confirmation("hubspot", Flagged, Verified, RECEIVED + 10),
        );
        apply_confirmation(
            &mut record,
            &confirmation("meta", FailedPermanent, Unverifiable, RECEIVED + 20),
        );
        assert!(is_complete(&record));
        assert_eq!(compliance(&record), Some(Compliance::Part));
        assert_eq!(status(&record), AuditStatus::ActionRequired);
        assert_eq!(status_at(&record, DEADLINE + 1, 3), AuditStatus::Overdue);
        apply_confirmation(
            &mut record,
            &confirmation("meta", Suppressed, Pending, RECEIVED + 30),
        );
        assert_eq!(compliance(&record), Some(Compliance::Whole));
        assert_eq!(status(&record), AuditStatus::Unverified);
        assert_eq!(record.completed_at, Some(RECEIVED + 30));
    }

    #[test]
    fn every_connector_failing_is_complied_with_not_at_all() {
        let mut record = record(&["meta"]);
        apply_confirmation(
            &mut record,
            &confirmation("meta", FailedPermanent, Unverifiable, RECEIVED + 20),
        );
        assert_eq!(compliance(&record), Some(Compliance::None));
        assert_eq!(status(&record), AuditStatus::ActionRequired);
    }

    #[test]
    fn an_unrequired_connector_is_recorded_but_not_awaited() {
        let mut record = record(&["hubspot"]);
        apply_confirmation(
            &mut record,
            &confirmation("linkedin", NotApplicable, Unverifiable, RECEIVED + 5),
        );
        assert_eq!(record.connectors.len(), 1);
        assert!(!is_complete(&record));
        assert_eq!(status(&record), AuditStatus::Open);
        apply_confirmation(
            &mut record,
            &confirmation("hubspot", Flagged, Verified, RECEIVED + 10),
        );
        assert_eq!(status(&record), AuditStatus::Verified);
        assert_eq!(record.completed_at, Some(RECEIVED + 10));
        // A later failure from the unrequired connector does not affect the request.
        apply_confirmation(
            &mut record,
            &confirmation("linkedin", FailedPermanent, Unverifiable, RECEIVED + 99),
        );
        assert_eq!(status(&record), AuditStatus::Verified);
        assert_eq!(record.completed_at, Some(RECEIVED + 10));
    }

    #[test]
    fn a_request_with_no_required_connector_is_confirmed_at_receipt() {
        let record = record(&[]);
        assert_eq!(completion_time(&record), Some(RECEIVED));
        assert_eq!(status(&record), AuditStatus::Confirmed);
    }

    #[test]
    fn a_denied_request_is_denied_whatever_else_holds() {
        let mut record = record(&["hubspot"]);
        record.denial_reason = Some("identity not verified".into());
        record.leaks = 2;
        assert_eq!(status_at(&record, DEADLINE + 1, 3), AuditStatus::Denied);
        assert_eq!(compliance(&record), None);
    }

    #[test]
    fn a_leak_overrides_verification() {
        let mut record = record(&["hubspot"]);
        apply_confirmation(
            &mut record,
            &confirmation("hubspot", Flagged, Verified, RECEIVED + 10),
        );
        assert_eq!(status(&record), AuditStatus::Verified);
        record.leaks = 1;
        assert_eq!(status(&record), AuditStatus::Leaking);
    }

    #[test]
    fn a_retention_exception_keeps_its_basis_as_evidence() {
        let mut record = record(&["crm"]);
        let mut c = confirmation("crm", RetainedUnderException, Unverifiable, RECEIVED + 10);
        c.exception_basis = Some("1798.105(d)(8)".into());
        apply_confirmation(&mut record, &c);
        let evidence = &record.connectors[0].evidence;
        assert_eq!(evidence[EXCEPTION_BASIS_EVIDENCE_KEY], "1798.105(d)(8)");
        assert_eq!(evidence["http_status"], "204");
        assert_eq!(compliance(&record), Some(Compliance::Whole));
    }
}
