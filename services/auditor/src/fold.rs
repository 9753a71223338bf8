//! The auditor's pure transitions: how a request opens its audit record, and how a confirmation,
//! an extension and a denial change it. No I/O; the caller passes `now` and writes the result.
//!
//! After every change the record's `status` is recomputed with [`status_at`] and `updated_at`
//! is set to `now`; a transition that changes nothing returns `None` so nothing is written.

use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashMap;

use hush_contracts::canary::CANARY_SOURCE_SYSTEM;
use hush_contracts::events::{
    AuditRecord, AuditStatus, Confirmation, ConfirmationAction, EpochMillis, LeakDetected,
    LeakEvidence, LeakFreeWindow, PrivacyRequest, RecipientRole, RequestKind, VerificationStatus,
    WatchProgress, WatchedStreamCoverage,
};
use hush_contracts::recipients::RecipientConfig;

use crate::status::{apply_confirmation, completion_time, status_at};
use hush_contracts::deadline::DeadlinePolicy;

/// Denial reason of an opt-in the consumer did not initiate.
pub const OPT_IN_NOT_INITIATED: &str =
    "opt-in not initiated by the consumer (Civ. Code 1798.135(c)(5))";

/// Why an extension or a denial was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The one extension was already taken.
    #[error("the request was already extended once")]
    AlreadyExtended,
    /// The request's rule allows no extension.
    #[error("no extension is available under this request's rule ({rule})")]
    NoExtension {
        /// The rule text of the deadline.
        rule: String,
    },
    /// Notice of an extension must be given within the original period (Civ. Code 1798.130(a)(2)).
    #[error(
        "an extension must be taken before the original deadline ({deadline}), which has passed"
    )]
    DeadlinePassed {
        /// The deadline, RFC 3339.
        deadline: String,
    },
    /// A denied request has no deadline left to extend.
    #[error("the request was denied; there is nothing to extend")]
    Denied,
    /// The request was already denied with another reason.
    #[error("the request was already denied: {reason}")]
    AlreadyDenied {
        /// The recorded reason.
        reason: String,
    },
    /// An out-of-band resolution names a recipient the request does not require.
    #[error("recipient {connector} is not required for this request")]
    NotRequired {
        /// The recipient named.
        connector: String,
    },
}

impl Refusal {
    /// Stable machine-readable code, e.g. `already_extended`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::AlreadyExtended => "already_extended",
            Refusal::NoExtension { .. } => "no_extension_available",
            Refusal::DeadlinePassed { .. } => "deadline_passed",
            Refusal::Denied => "request_denied",
            Refusal::AlreadyDenied { .. } => "already_denied",
            Refusal::NotRequired { .. } => "recipient_not_required",
        }
    }
}

/// An epoch-millisecond instant as a UTC date-time (the epoch when out of range).
pub fn instant(ms: EpochMillis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// An epoch-millisecond instant in RFC 3339 with milliseconds, e.g. `2026-11-20T18:00:00.000Z`.
pub fn rfc3339(ms: EpochMillis) -> String {
    instant(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn restamp(record: &mut AuditRecord, at_risk_days: u32, now: EpochMillis) {
    record.status = status_at(record, now, at_risk_days);
    record.updated_at = now;
}

/// The audit record a request opens: the recipients whose scope covers it must confirm, the
/// deadline follows `policy`, and an opt-in the consumer did not initiate is denied at once
/// with [`OPT_IN_NOT_INITIATED`] (nothing is then required of any recipient).
pub fn record_for_request(
    request: &PrivacyRequest,
    recipients: &[RecipientConfig],
    policy: &DeadlinePolicy,
    now: EpochMillis,
) -> AuditRecord {
    let deadline = policy.deadline_for(
        request.kind,
        &request.jurisdiction,
        instant(request.received_at),
        false,
    );
    let denied = request.kind == RequestKind::OptInSaleShare && !request.consumer_initiated;
    let required_connectors = if denied {
        Vec::new()
    } else {
        recipients
            .iter()
            .filter(|r| r.applies_to(request))
            .map(|r| r.id.clone())
            .collect()
    };
    let mut record = AuditRecord {
        request_id: request.request_id.clone(),
        subject_key: request.subject_key.clone(),
        kind: request.kind,
        channel: request.channel,
        jurisdiction: request.jurisdiction.clone(),
        received_at: request.received_at,
        deadline: deadline.due.timestamp_millis(),
        extended: false,
        status: AuditStatus::Open,
        completed_at: None,
        denial_reason: denied.then(|| OPT_IN_NOT_INITIATED.to_string()),
        required_connectors,
        connectors: Vec::new(),
        leaks: 0,
        leak_evidence: Vec::new(),
        proof: None,
        changes: Vec::new(),
        synthetic: request.source_system == CANARY_SOURCE_SYSTEM,
        resolution: request.resolution.clone(),
        updated_at: now,
    };
    record.completed_at = completion_time(&record);
    restamp(&mut record, policy.at_risk_days(), now);
    record
}

/// The record to write for a request: a new one, or `None` when the request is already on
/// record (a re-delivery changes nothing, the first `received_at` stays).
pub fn on_request(
    existing: Option<&AuditRecord>,
    request: &PrivacyRequest,
    recipients: &[RecipientConfig],
    policy: &DeadlinePolicy,
    now: EpochMillis,
) -> Option<AuditRecord> {
    match existing {
        Some(_) => None,
        None => Some(record_for_request(request, recipients, policy, now)),
    }
}

/// The record after `confirmation` (see [`apply_confirmation`]), or `None` when it changes
/// nothing (a re-delivery, an older outcome, another request's confirmation).
pub fn on_confirmation(
    record: &AuditRecord,
    confirmation: &Confirmation,
    at_risk_days: u32,
    now: EpochMillis,
) -> Option<AuditRecord> {
    let mut next = record.clone();
    if !apply_confirmation(&mut next, confirmation) {
        return None;
    }
    restamp(&mut next, at_risk_days, now);
    Some(next)
}

/// The record after taking the one extension its rule allows: `extended` is set and the
/// deadline recomputed with the extension. Refused when already extended, denied, when the rule
/// has no extension, or once the original deadline has passed.
pub fn extend(
    record: &AuditRecord,
    policy: &DeadlinePolicy,
    now: EpochMillis,
) -> Result<AuditRecord, Refusal> {
    if record.extended {
        return Err(Refusal::AlreadyExtended);
    }
    if record.denial_reason.is_some() {
        return Err(Refusal::Denied);
    }
    let received = instant(record.received_at);
    let normal = policy.deadline_for(record.kind, &record.jurisdiction, received, false);
    let extended = policy.deadline_for(record.kind, &record.jurisdiction, received, true);
    if extended.due <= normal.due {
        return Err(Refusal::NoExtension { rule: normal.rule });
    }
    if now > record.deadline {
        return Err(Refusal::DeadlinePassed {
            deadline: rfc3339(record.deadline),
        });
    }
    let mut next = record.clone();
    next.extended = true;
    next.deadline = extended.due.timestamp_millis();
    restamp(&mut next, policy.at_risk_days(), now);
    Ok(next)
}

/// The record after the compliance lead denied the request with `reason`; `None` when it was
/// already denied with the same reason. Refused when it was denied with another reason.
pub fn deny(
    record: &AuditRecord,
    reason: &str,
    at_risk_days: u32,
    now: EpochMillis,
) -> Result<Option<AuditRecord>, Refusal> {
    match &record.denial_reason {
        Some(existing) if existing == reason => Ok(None),
        Some(existing) => Err(Refusal::AlreadyDenied {
            reason: existing.clone(),
        }),
        None => {
            let mut next = record.clone();
            next.denial_reason = Some(reason.to_string());
            restamp(&mut next, at_risk_days, now);
            Ok(Some(next))
        }
    }
}

/// Evidence value of `resolution` on an outcome recorded out of band.
pub const OUT_OF_BAND: &str = "out_of_band";

/// An operator's record that a recipient complied outside Hush (a vendor's support ticket, a
/// manual deletion in its console), with what proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Who records it (a person or a ticket system).
    pub resolved_by: String,
    /// What was done and where the proof is.
    pub note: String,
    /// SHA-256 hex of the attached proof (a screenshot, the vendor's e-mail), when there is one.
    pub attachment_sha256: Option<String>,
}

/// The record after an out-of-band resolution of `connector_id`: that recipient's outcome
/// becomes what the request asked of it (`DELETED`, `SUPPRESSED` or `NOTIFIED`), `UNVERIFIABLE`
/// (Hush could not read it back), with the resolution as evidence (`resolution=out_of_band`,
/// who, when, the note and the attachment's digest). Refused for a recipient the request does
/// not require, and for a denied request.
pub fn resolve(
    record: &AuditRecord,
    connector_id: &str,
    role: RecipientRole,
    resolution: &Resolution,
    at_risk_days: u32,
    now: EpochMillis,
) -> Result<AuditRecord, Refusal> {
    if record.denial_reason.is_some() {
        return Err(Refusal::Denied);
    }
    if !record
        .required_connectors
        .iter()
        .any(|id| id == connector_id)
    {
        return Err(Refusal::NotRequired {
            connector: connector_id.to_owned(),
        });
    }
    let action = match record.kind {
        RequestKind::Delete => ConfirmationAction::Deleted,
        RequestKind::OptInSaleShare => ConfirmationAction::Notified,
        RequestKind::OptOutSaleShare | RequestKind::LimitSensitive => {
            ConfirmationAction::Suppressed
        }
    };
    let mut evidence = HashMap::from([
        ("resolution".to_owned(), OUT_OF_BAND.to_owned()),
        ("resolved_by".to_owned(), resolution.resolved_by.clone()),
        ("resolved_at".to_owned(), rfc3339(now)),
        ("note".to_owned(), resolution.note.clone()),
    ]);
    if let Some(digest) = &resolution.attachment_sha256 {
        evidence.insert("attachment_sha256".to_owned(), digest.clone());
    }
    let attempts = record
        .connectors
        .iter()
        .find(|o| o.connector_id == connector_id)
        .map_or(0, |o| o.attempts);
    let confirmation = Confirmation {
        request_id: record.request_id.clone(),
        subject_key: record.subject_key.clone(),
        connector_id: connector_id.to_owned(),
        role,
        action,
        exception_basis: None,
        attempts,
        first_attempt_at: None,
        last_attempt_at: None,
        completed_at: now,
        verification: VerificationStatus::Unverifiable,
        evidence,
    };
    let mut next = record.clone();
    apply_confirmation(&mut next, &confirmation);
    restamp(&mut next, at_risk_days, now);
    Ok(next)
}

/// The record after the leak watch saw an outbound event about the subject after the
/// suppression took effect: the leak is kept as evidence and the request becomes `LEAKING`.
/// `None` when this leak is already on record (a re-delivery).
pub fn on_leak(
    record: &AuditRecord,
    leak: &LeakDetected,
    at_risk_days: u32,
    now: EpochMillis,
) -> Option<AuditRecord> {
    if record
        .leak_evidence
        .iter()
        .any(|l| l.leak_id == leak.leak_id)
    {
        return None;
    }
    let mut next = record.clone();
    next.leak_evidence.push(LeakEvidence {
        leak_id: leak.leak_id.clone(),
        source_topic: leak.source_topic.clone(),
        source_partition: leak.source_partition,
        source_offset: leak.source_offset,
        identifier_type: leak.identifier_type.as_str().to_owned(),
        identifier_hash: leak.identifier_hash.clone(),
        event_time: leak.event_time,
        ms_after_suppression: leak.event_time - leak.suppression_effective_at,
        action_taken: leak.action_taken.as_str().to_owned(),
        detected_at: leak.detected_at,
    });
    next.leaks = next.leaks.saturating_add(1);
    restamp(&mut next, at_risk_days, now);
    Some(next)
}

/// The record once its observation window closed clean: `PROVEN`, with the coverage of every
/// watched stream as evidence. `None` while it cannot be proven: not `VERIFIED` or `CONFIRMED`
/// (so never while leaking, denied or incomplete), already proven, no watched stream, the window
/// `[completed_at, completed_at + window_ms]` not over at `now`, or a watched stream whose leak
/// watch has not yet examined every record written up to the window's end.
pub fn prove(
    record: &AuditRecord,
    window_ms: i64,
    watched: &[String],
    progress: &dyn Fn(&str) -> Option<WatchProgress>,
    at_risk_days: u32,
    now: EpochMillis,
) -> Option<AuditRecord> {
    if record.proof.is_some()
        || !matches!(
            record.status,
            AuditStatus::Verified | AuditStatus::Confirmed
        )
        || watched.is_empty()
    {
        return None;
    }
    let window_start = record.completed_at?;
    let window_end = window_start.saturating_add(window_ms);
    if now < window_end {
        return None;
    }
    let streams = watched
        .iter()
        .map(|topic| {
            let seen = progress(topic).filter(|p| p.covered_until >= window_end)?;
            Some(WatchedStreamCoverage {
                topic: topic.clone(),
                records_examined: seen.records_examined,
                covered_until: seen.covered_until,
                offsets: seen.offsets,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let mut next = record.clone();
    next.proof = Some(LeakFreeWindow {
        window_start,
        window_end,
        streams,
    });
    restamp(&mut next, at_risk_days, now);
    (next.status == AuditStatus::Proven).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::events::{
        Category, Channel, ConfirmationAction, Identifier, IdentifierType, RecipientRole,
        VerificationStatus,
    };

    const DAY: EpochMillis = 86_400_000;
    /// Friday before Thanksgiving 2026, 10:00 PST (see deadline.rs for the hand counts).
    const RECEIVED: EpochMillis = 1_795_197_600_000;
    const ID: &str = "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10";

    fn utc(s: &str) -> EpochMillis {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn request(kind: RequestKind, categories: &[Category]) -> PrivacyRequest {
        PrivacyRequest {
            request_id: ID.into(),
            subject_key: "ab".repeat(32),
            kind,
            channel: Channel::WebForm,
            jurisdiction: "US-CA".into(),
            received_at: RECEIVED,
            identifiers: vec![Identifier {
                kind: IdentifierType::Email,
                sha256: "e".repeat(64),
                encrypted_value: None,
            }],
            categories: categories.to_vec(),
            verification: None,
            age_band: None,
            source_system: "test".into(),
            consumer_initiated: false,
            idempotency_key: None,
            resolution: Vec::new(),
        }
    }

    fn recipients() -> Vec<RecipientConfig> {
        toml::from_str::<toml::Table>(
            r#"
            [[r]]
            id = "hubspot"
            kind = "hubspot"
            role = "SERVICE_PROVIDER"
            base_url = "http://x"
            [[r]]
            id = "clearbit"
            kind = "webhook"
            role = "THIRD_PARTY"
            base_url = "http://x"
            categories = ["ENRICHMENT"]
            [[r]]
            id = "optin"
            kind = "webhook"
            role = "THIRD_PARTY"
            base_url = "http://x"
            request_kinds = ["OPT_IN_SALE_SHARE"]
            "#,
        )
        .unwrap()["r"]
            .clone()
            .try_into()
            .unwrap()
    }

    fn confirmation(
        connector: &str,
        verification: VerificationStatus,
        at: EpochMillis,
    ) -> Confirmation {
        Confirmation {
            request_id: ID.into(),
            subject_key: "ab".repeat(32),
            connector_id: connector.into(),
            role: RecipientRole::ServiceProvider,
            action: ConfirmationAction::Flagged,
            exception_basis: None,
            attempts: 1,
            first_attempt_at: Some(at),
            last_attempt_at: Some(at),
            completed_at: at,
            verification,
            evidence: HashMap::new(),
        }
    }

    #[test]
    fn required_connectors_are_the_recipients_in_scope() {
        let policy = DeadlinePolicy::default();
        let advertising = request(RequestKind::OptOutSaleShare, &[Category::Advertising]);
        let record = record_for_request(&advertising, &recipients(), &policy, 7);
        assert_eq!(record.required_connectors, vec!["hubspot"]);
        let delete = request(RequestKind::Delete, &[Category::Advertising]);
        let record = record_for_request(&delete, &recipients(), &policy, 7);
        assert_eq!(record.required_connectors, vec!["hubspot", "clearbit"]);
        assert_eq!(record.status, AuditStatus::Open);
        assert_eq!(record.updated_at, 7);
        assert_eq!(record.completed_at, None);
    }

    #[test]
    fn the_deadline_follows_the_policy() {
        let policy = DeadlinePolicy::default();
        let record = record_for_request(
            &request(RequestKind::OptOutSaleShare, &[Category::All]),
            &recipients(),
            &policy,
            RECEIVED,
        );
        assert_eq!(record.deadline, utc("2026-12-16T07:59:59.999Z"));
        assert!(!record.extended);
        let delete = record_for_request(
            &request(RequestKind::Delete, &[Category::All]),
            &recipients(),
            &policy,
            RECEIVED,
        );
        assert_eq!(delete.deadline, utc("2027-01-05T07:59:59.999Z"));
    }

    #[test]
    fn only_a_request_the_canary_captured_opens_a_synthetic_record() {
        let policy = DeadlinePolicy::default();
        let mut opt_out = request(RequestKind::OptOutSaleShare, &[Category::All]);
        assert!(!record_for_request(&opt_out, &recipients(), &policy, 7).synthetic);
        opt_out.source_system = CANARY_SOURCE_SYSTEM.into();
        assert!(record_for_request(&opt_out, &recipients(), &policy, 7).synthetic);
    }

    #[test]
    fn an_opt_in_the_consumer_did_not_initiate_is_denied() {
        let policy = DeadlinePolicy::default();
        let mut opt_in = request(RequestKind::OptInSaleShare, &[Category::All]);
        let record = record_for_request(&opt_in, &recipients(), &policy, RECEIVED);
        assert_eq!(record.status, AuditStatus::Denied);
        assert_eq!(record.denial_reason.as_deref(), Some(OPT_IN_NOT_INITIATED));
        assert!(record.required_connectors.is_empty());
        opt_in.consumer_initiated = true;
        let record = record_for_request(&opt_in, &recipients(), &policy, RECEIVED);
        assert_eq!(record.denial_reason, None);
        assert_eq!(record.required_connectors, vec!["optin"]);
        assert_eq!(record.status, AuditStatus::Open);
    }

    #[test]
    fn a_redelivered_request_changes_nothing() {
        let policy = DeadlinePolicy::default();
        let first = request(RequestKind::OptOutSaleShare, &[Category::All]);
        let record = on_request(None, &first, &recipients(), &policy, 1).unwrap();
        let mut again = first.clone();
        again.received_at = RECEIVED + DAY;
        assert_eq!(
            on_request(Some(&record), &again, &recipients(), &policy, 2),
            None
        );
        assert_eq!(record.received_at, RECEIVED);
    }

    #[test]
    fn a_confirmation_restamps_status_and_time_and_a_redelivery_changes_nothing() {
        let policy = DeadlinePolicy::default();
        let record = record_for_request(
            &request(RequestKind::OptOutSaleShare, &[Category::Advertising]),
            &recipients(),
            &policy,
            RECEIVED,
        );
        let c = confirmation("hubspot", VerificationStatus::Verified, RECEIVED + DAY);
        let next = on_confirmation(&record, &c, 3, RECEIVED + 2 * DAY).unwrap();
        assert_eq!(next.status, AuditStatus::Verified);
        assert_eq!(next.updated_at, RECEIVED + 2 * DAY);
        assert_eq!(next.completed_at, Some(RECEIVED + DAY));
        assert_eq!(on_confirmation(&next, &c, 3, RECEIVED + 3 * DAY), None);
    }

    #[test]
    fn the_status_is_computed_at_the_time_of_the_change() {
        let policy = DeadlinePolicy::default();
        let record = record_for_request(
            &request(RequestKind::OptOutSaleShare, &[Category::Advertising]),
            &recipients(),
            &policy,
            RECEIVED,
        );
        // An unrequired connector's answer after the deadline: still waiting for hubspot.
        let c = confirmation("clearbit", VerificationStatus::Verified, RECEIVED + DAY);
        let late = record.deadline + 1;
        let next = on_confirmation(&record, &c, 3, late).unwrap();
        assert_eq!(next.status, AuditStatus::Overdue);
    }

    #[test]
    fn a_california_deletion_can_be_extended_once_to_ninety_days() {
        let policy = DeadlinePolicy::default();
        let record = record_for_request(
            &request(RequestKind::Delete, &[Category::All]),
            &recipients(),
            &policy,
            RECEIVED,
        );
        let extended = extend(&record, &policy, RECEIVED + DAY).unwrap();
        assert!(extended.extended);
        assert_eq!(extended.deadline, utc("2027-02-19T07:59:59.999Z"));
        assert_eq!(extended.updated_at, RECEIVED + DAY);
        assert_eq!(
            extend(&extended, &policy, RECEIVED + DAY),
            Err(Refusal::AlreadyExtended)
        );
    }

    #[test]
    fn an_extension_is_refused_where_the_rule_has_none_or_too_late() {
        let policy = DeadlinePolicy::default();
        let opt_out = record_for_request(
            &request(RequestKind::OptOutSaleShare, &[Category::All]),
            &recipients(),
            &policy,
            RECEIVED,
        );
        let refusal = extend(&opt_out, &policy, RECEIVED).unwrap_err();
        assert_eq!(refusal.code(), "no_extension_available");
        assert!(refusal.to_string().contains("11 CCR 7026(f)"), "{refusal}");
        let delete = record_for_request(
            &request(RequestKind::Delete, &[Category::All]),
            &recipients(),
            &policy,
            RECEIVED,
        );
        let refusal = extend(&delete, &policy, delete.deadline + 1).unwrap_err();
        assert_eq!(refusal.code(), "deadline_passed");
        let denied = deny(&delete, "identity not verified", 3, RECEIVED)
            .unwrap()
            .unwrap();
        assert_eq!(extend(&denied, &policy, RECEIVED), Err(Refusal::Denied));
    }

    #[test]
    fn a_denial_records_its_reason_once() {
        let policy = DeadlinePolicy::default();
        let record = record_for_request(
            &request(RequestKind::Delete, &[Category::All]),
            &recipients(),
            &policy,
            RECEIVED,
        );
        let denied = deny(&record, "identity not verified", 3, RECEIVED + DAY)
            .unwrap()
            .unwrap();
        assert_eq!(denied.status, AuditStatus::Denied);
        assert_eq!(
            denied.denial_reason.as_deref(),
            Some("identity not verified")
        );
        assert_eq!(denied.updated_at, RECEIVED + DAY);
        assert_eq!(
            deny(&denied, "identity not verified", 3, RECEIVED),
            Ok(None)
        );
        assert_eq!(
            deny(&denied, "fraud", 3, RECEIVED).unwrap_err().code(),
            "already_denied"
        );
    }

    /// A request whose two required connectors confirmed at `done`: hubspot verified and
    /// clearbit unverifiable, so the record is VERIFIED.
    fn verified_at(done: EpochMillis) -> AuditRecord {
        let policy = DeadlinePolicy::new(hush_contracts::deadline::DeadlineConfig::default());
        let mut record = record_for_request(
            &request(RequestKind::OptOutSaleShare, &[Category::All]),
            &recipients(),
            &policy,
            RECEIVED,
        );
        for (connector, verification) in [
            ("hubspot", VerificationStatus::Verified),
            ("clearbit", VerificationStatus::Unverifiable),
        ] {
            record = on_confirmation(
                &record,
                &confirmation(connector, verification, done),
                2,
                done,
            )
            .unwrap();
        }
        assert_eq!(record.status, AuditStatus::Verified);
        record
    }

    fn leak(id: &str, event_time: EpochMillis) -> LeakDetected {
        LeakDetected {
            leak_id: id.into(),
            identifier_hash: "e".repeat(64),
            identifier_type: IdentifierType::Email,
            subject_key: String::new(),
            last_request_id: ID.into(),
            source_topic: "egress.tags.v1".into(),
            source_partition: 2,
            source_offset: 41,
            destination: "meta".into(),
            suppression_effective_at: RECEIVED,
            event_time,
            detected_at: event_time + 5,
            action_taken: hush_contracts::events::GateAction::Passed,
        }
    }

    fn progress(topic: &str, covered_until: EpochMillis) -> WatchProgress {
        WatchProgress {
            topic: topic.into(),
            records_examined: 1234,
            covered_until,
            offsets: HashMap::from([("0".to_owned(), 617), ("1".to_owned(), 617)]),
            leaks_found: 0,
            updated_at: covered_until,
        }
    }

    const WINDOW: EpochMillis = DAY;

    #[test]
    fn a_leak_turns_the_request_leaking_with_the_event_located() {
        let done = RECEIVED + DAY;
        let record = verified_at(done);
        let leaking =
            on_leak(&record, &leak("l-1", RECEIVED + 2 * DAY), 2, done + 2 * DAY).unwrap();
        assert_eq!(leaking.status, AuditStatus::Leaking);
        assert_eq!(leaking.leaks, 1);
        let evidence = &leaking.leak_evidence[0];
        assert_eq!(
            (
                evidence.source_topic.as_str(),
                evidence.source_partition,
                evidence.source_offset
            ),
            ("egress.tags.v1", 2, 41)
        );
        assert_eq!(evidence.ms_after_suppression, 2 * DAY);
        assert_eq!(evidence.action_taken, "PASSED");
        assert_eq!(
            on_leak(&leaking, &leak("l-1", RECEIVED + 2 * DAY), 2, done),
            None
        );
    }

    #[test]
    fn a_clean_window_on_every_watched_stream_proves_the_request() {
        let done = RECEIVED + DAY;
        let record = verified_at(done);
        let watched = ["a.cleared.v1".to_owned(), "egress.tags.v1".to_owned()];
        let covered = |topic: &str| Some(progress(topic, done + WINDOW + 1));
        let proven = prove(&record, WINDOW, &watched, &covered, 2, done + WINDOW).unwrap();
        assert_eq!(proven.status, AuditStatus::Proven);
        let proof = proven.proof.unwrap();
        assert_eq!(
            (proof.window_start, proof.window_end),
            (done, done + WINDOW)
        );
        assert_eq!(proof.streams.len(), 2);
        assert_eq!(proof.streams[1].topic, "egress.tags.v1");
        assert_eq!(proof.streams[1].records_examined, 1234);
        assert_eq!(proof.streams[1].offsets["1"], 617);
    }

    #[test]
    fn no_proof_before_the_window_closes() {
        let done = RECEIVED + DAY;
        let record = verified_at(done);
        let watched = ["egress.tags.v1".to_owned()];
        let covered = |topic: &str| Some(progress(topic, done + 2 * WINDOW));
        assert_eq!(
            prove(&record, WINDOW, &watched, &covered, 2, done + WINDOW - 1),
            None
        );
    }

    #[test]
    fn no_proof_while_a_watched_stream_is_not_examined_to_the_window_end() {
        let done = RECEIVED + DAY;
        let record = verified_at(done);
        let watched = ["a.cleared.v1".to_owned(), "egress.tags.v1".to_owned()];
        let lagging = |topic: &str| {
            Some(progress(
                topic,
                if topic == "egress.tags.v1" {
                    done + WINDOW - 1
                } else {
                    done + WINDOW
                },
            ))
        };
        assert_eq!(
            prove(&record, WINDOW, &watched, &lagging, 2, done + 2 * WINDOW),
            None
        );
        let unreported =
            |topic: &str| (topic == "a.cleared.v1").then(|| progress(topic, done + WINDOW));
        assert_eq!(
            prove(&record, WINDOW, &watched, &unreported, 2, done + 2 * WINDOW),
            None
        );
    }

    #[test]
    fn no_proof_without_a_watched_stream_or_with_a_leak() {
        let done = RECEIVED + DAY;
        let record = verified_at(done);
        let covered = |topic: &str| Some(progress(topic, done + 2 * WINDOW));
        assert_eq!(
            prove(&record, WINDOW, &[], &covered, 2, done + 2 * WINDOW),
            None
        );
        let leaking = on_leak(&record, &leak("l-1", done + 1), 2, done + 1).unwrap();
        let watched = ["egress.tags.v1".to_owned()];
        assert_eq!(
            prove(&leaking, WINDOW, &watched, &covered, 2, done + 2 * WINDOW),
            None
        );
    }

    #[test]
    fn a_leak_after_the_proof_still_turns_the_request_leaking() {
        let done = RECEIVED + DAY;
        let watched = ["egress.tags.v1".to_owned()];
        let covered = |topic: &str| Some(progress(topic, done + 2 * WINDOW));
        let proven = prove(
            &verified_at(done),
            WINDOW,
            &watched,
            &covered,
            2,
            done + WINDOW,
        )
        .unwrap();
        let leaking = on_leak(
            &proven,
            &leak("late", done + 3 * WINDOW),
            2,
            done + 3 * WINDOW,
        )
        .unwrap();
        assert_eq!(leaking.status, AuditStatus::Leaking);
    }

    fn resolution() -> Resolution {
        Resolution {
            resolved_by: "privacy-ops@example.com".into(),
            note: "deleted in the vendor console, ticket 4412".into(),
            attachment_sha256: Some("ab".repeat(32)),
        }
    }

    #[test]
    fn an_out_of_band_resolution_completes_a_failed_recipient_as_evidence() {
        let policy = DeadlinePolicy::new(hush_contracts::deadline::DeadlineConfig::default());
        let mut record = record_for_request(
            &request(RequestKind::OptOutSaleShare, &[Category::All]),
            &recipients(),
            &policy,
            RECEIVED,
        );
        let mut failed = confirmation("hubspot", VerificationStatus::Unverifiable, RECEIVED + 5);
        failed.action = ConfirmationAction::FailedPermanent;
        record = on_confirmation(&record, &failed, 2, RECEIVED + 5).unwrap();
        record = on_confirmation(
            &record,
            &confirmation("clearbit", VerificationStatus::Unverifiable, RECEIVED + 5),
            2,
            RECEIVED + 5,
        )
        .unwrap();
        assert_eq!(record.status, AuditStatus::ActionRequired);
        let resolved = resolve(
            &record,
            "hubspot",
            RecipientRole::ServiceProvider,
            &resolution(),
            2,
            RECEIVED + DAY,
        )
        .unwrap();
        let outcome = resolved
            .connectors
            .iter()
            .find(|o| o.connector_id == "hubspot")
            .unwrap();
        assert_eq!(outcome.action, ConfirmationAction::Suppressed);
        assert_eq!(outcome.verification, VerificationStatus::Unverifiable);
        assert_eq!(outcome.evidence["resolution"], OUT_OF_BAND);
        assert_eq!(outcome.evidence["resolved_by"], "privacy-ops@example.com");
        assert_eq!(outcome.evidence["attachment_sha256"], "ab".repeat(32));
        assert_eq!(resolved.status, AuditStatus::Confirmed);
        assert_eq!(resolved.completed_at, Some(RECEIVED + DAY));
    }

    #[test]
    fn a_resolution_of_a_recipient_not_required_is_refused() {
        let policy = DeadlinePolicy::new(hush_contracts::deadline::DeadlineConfig::default());
        let record = record_for_request(
            &request(RequestKind::OptOutSaleShare, &[Category::All]),
            &recipients(),
            &policy,
            RECEIVED,
        );
        let refused = resolve(
            &record,
            "optin",
            RecipientRole::ThirdParty,
            &resolution(),
            2,
            RECEIVED,
        )
        .unwrap_err();
        assert_eq!(refused.code(), "recipient_not_required");
    }
}
