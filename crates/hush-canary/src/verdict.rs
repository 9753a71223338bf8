//! What a stage concludes from what it sees: the auditor's record of the canary's request, and
//! what the gate let through. Pure functions; the runner polls until one is not
//! [`Verdict::Waiting`].

use std::collections::BTreeMap;

use hush_contracts::events::{ConfirmationAction, VerificationStatus};
use hush_contracts::gate::{GatePolicy, GateStream};
use serde::Deserialize;
use serde_json::Value;

use crate::subject::get_path;

/// What a stage concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not yet: what it is still waiting for.
    Waiting(String),
    /// Done, with what was seen.
    Passed(String),
    /// Failed, with what was seen.
    Failed(String),
}

/// One recipient's outcome in the auditor's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OutcomeView {
    /// Recipient id.
    pub connector_id: String,
    /// Outcome.
    pub action: ConfirmationAction,
    /// Read-back status.
    pub verification: VerificationStatus,
    /// Evidence (a permanent failure's `error`).
    #[serde(default)]
    pub evidence: BTreeMap<String, String>,
}

/// One leak in the auditor's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LeakView {
    /// Watched topic.
    pub source_topic: String,
    /// Partition.
    pub source_partition: i32,
    /// Offset.
    pub source_offset: i64,
    /// How long after the suppression the event was sent.
    pub ms_after_suppression: i64,
}

/// The parts of `GET /v1/requests/{id}` a run reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RecordView {
    /// Status computed now.
    pub status: String,
    /// Why the request was denied.
    #[serde(default)]
    pub denial_reason: Option<String>,
    /// Recipients that must answer.
    #[serde(default)]
    pub required_connectors: Vec<String>,
    /// Answers so far.
    #[serde(default)]
    pub connectors: Vec<OutcomeView>,
    /// Required recipients that have not answered.
    #[serde(default)]
    pub missing_connectors: Vec<String>,
    /// Leaks attributed to the request.
    #[serde(default)]
    pub leak_evidence: Vec<LeakView>,
}

/// CONFIRM: every required recipient answered and none failed permanently.
pub fn confirmed(record: &RecordView) -> Verdict {
    if let Some(reason) = &record.denial_reason {
        return Verdict::Failed(format!("the request was denied: {reason}"));
    }
    let failed: Vec<String> = record
        .connectors
        .iter()
        .filter(|o| o.action == ConfirmationAction::FailedPermanent)
        .map(|o| {
            let error = o.evidence.get("error").or_else(|| o.evidence.get("reason"));
            match error {
                Some(error) => format!("recipient {} failed permanently: {error}", o.connector_id),
                None => format!("recipient {} failed permanently", o.connector_id),
            }
        })
        .collect();
    if !failed.is_empty() {
        return Verdict::Failed(failed.join("; "));
    }
    if !record.missing_connectors.is_empty() {
        return Verdict::Waiting(format!(
            "no confirmation from {}",
            record.missing_connectors.join(", ")
        ));
    }
    let applied: Vec<String> = record
        .connectors
        .iter()
        .filter(|o| o.action != ConfirmationAction::NotApplicable)
        .map(|o| format!("{} {}", o.connector_id, o.action.as_str()))
        .collect();
    Verdict::Passed(if applied.is_empty() {
        format!(
            "{} recipients required, none applies to this subject",
            record.required_connectors.len()
        )
    } else {
        applied.join(", ")
    })
}

/// READ_BACK: every recipient that can be read back was, and found the change applied;
/// recipients in `optional` may still be pending.
pub fn read_back(record: &RecordView, optional: &[String]) -> Verdict {
    let not_applied: Vec<&str> = record
        .connectors
        .iter()
        .filter(|o| o.verification == VerificationStatus::Failed)
        .map(|o| o.connector_id.as_str())
        .collect();
    if !not_applied.is_empty() {
        return Verdict::Failed(format!(
            "read-back found the opt-out not applied at {} (verification FAILED although the \
             recipient confirmed)",
            not_applied.join(", ")
        ));
    }
    let pending = |o: &&OutcomeView| {
        o.verification == VerificationStatus::Pending
            && o.action != ConfirmationAction::NotApplicable
    };
    let waiting: Vec<&str> = record
        .connectors
        .iter()
        .filter(pending)
        .filter(|o| !optional.contains(&o.connector_id))
        .map(|o| o.connector_id.as_str())
        .collect();
    if !waiting.is_empty() {
        return Verdict::Waiting(format!("read-back still pending at {}", waiting.join(", ")));
    }
    let listed = |status: VerificationStatus| {
        record
            .connectors
            .iter()
            .filter(|o| o.verification == status && o.action != ConfirmationAction::NotApplicable)
            .map(|o| o.connector_id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut seen = Vec::new();
    for (status, label) in [
        (VerificationStatus::Verified, "verified"),
        (VerificationStatus::Unverifiable, "cannot be read back"),
        (VerificationStatus::Pending, "pending (optional)"),
    ] {
        let names = listed(status);
        if !names.is_empty() {
            seen.push(format!("{label}: {names}"));
        }
    }
    Verdict::Passed(if seen.is_empty() {
        "no recipient to read back".into()
    } else {
        seen.join("; ")
    })
}

/// READ_BACK of the `DELETE` channel: every recipient in `created` (where the run created the
/// record) deleted it and read it back as gone; the other recipients are judged as
/// [`read_back`] judges them. A recipient that found nothing to delete fails: the record was
/// just created there.
pub fn records_gone(record: &RecordView, created: &[String], optional: &[String]) -> Verdict {
    let still_there: Vec<&str> = record
        .connectors
        .iter()
        .filter(|o| o.verification == VerificationStatus::Failed)
        .map(|o| o.connector_id.as_str())
        .collect();
    if !still_there.is_empty() {
        return Verdict::Failed(format!(
            "read-back found the record still there at {} (verification FAILED although the \
             recipient confirmed the deletion)",
            still_there.join(", ")
        ));
    }
    for recipient in created {
        let Some(outcome) = record
            .connectors
            .iter()
            .find(|o| &o.connector_id == recipient)
        else {
            return Verdict::Waiting(format!("no confirmation from {recipient}"));
        };
        if outcome.action != ConfirmationAction::Deleted {
            return Verdict::Failed(format!(
                "{recipient} answered {} for the record the canary had just created there, \
                 not DELETED",
                outcome.action.as_str()
            ));
        }
        match outcome.verification {
            VerificationStatus::Verified => {}
            VerificationStatus::Pending if !optional.contains(recipient) => {
                return Verdict::Waiting(format!("read-back still pending at {recipient}"));
            }
            VerificationStatus::Pending => {}
            other => {
                return Verdict::Failed(format!(
                    "{recipient} deleted the record but its read-back is {}: nothing shows it \
                     gone",
                    format!("{other:?}").to_uppercase()
                ));
            }
        }
    }
    match read_back(record, optional) {
        Verdict::Passed(detail) => {
            Verdict::Passed(format!("gone at {}; {detail}", created.join(", ")))
        }
        other => other,
    }
}

/// LEAK: the event injected at `topic`/`partition`/`offset` is among the request's leaks.
pub fn leak_reported(record: &RecordView, topic: &str, partition: i32, offset: i64) -> Verdict {
    match record.leak_evidence.iter().find(|l| {
        l.source_topic == topic && l.source_partition == partition && l.source_offset == offset
    }) {
        Some(leak) => Verdict::Passed(format!(
            "{topic} [{partition}] @{offset} reported as a leak of this request, {} ms after \
             the suppression",
            leak.ms_after_suppression
        )),
        None => Verdict::Waiting(format!(
            "the event at {topic} [{partition}] @{offset} is not among this request's leaks"
        )),
    }
}

/// A record the gate wrote to its destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Forwarded {
    /// The record's JSON.
    pub value: Value,
    /// Its headers, as text.
    pub headers: Vec<(String, String)>,
}

/// GATE, once the control event was forwarded: what the gate did with the subject's event
/// (`None`: not forwarded) must be what `stream`'s policy does with an event about a
/// suppressed subject.
pub fn gate_enforced(stream: &GateStream, subject: Option<&Forwarded>) -> Verdict {
    let destination = &stream.destination;
    let policy = stream.policy.as_str();
    let Some(forwarded) = subject else {
        return match stream.policy {
            GatePolicy::Drop => Verdict::Passed(format!(
                "dropped the subject's event and forwarded the control event to {destination}"
            )),
            _ => Verdict::Failed(format!(
                "the subject's event never reached {destination}, but policy {policy} forwards \
                 it altered"
            )),
        };
    };
    let carries_identifier = stream
        .identifiers
        .iter()
        .filter(|p| stream.policy != GatePolicy::MetaLdu || !p.hashed)
        .any(|p| get_path(&forwarded.value, &p.path).is_some_and(|v| !v.is_null()));
    let verdict = match stream.policy {
        GatePolicy::Drop => Err("forwarded it unchanged"),
        GatePolicy::Strip if carries_identifier => Err("forwarded it with its identifiers"),
        GatePolicy::Strip => Ok("forwarded it without its identifiers"),
        GatePolicy::MetaLdu if carries_identifier => Err("forwarded it with raw identifiers"),
        GatePolicy::MetaLdu
            if forwarded.value.get("data_processing_options")
                != Some(&serde_json::json!(["LDU"])) =>
        {
            Err("forwarded it without Limited Data Use")
        }
        GatePolicy::MetaLdu => Ok("forwarded it as a Limited Data Use event"),
        GatePolicy::Annotate
            if !forwarded
                .headers
                .iter()
                .any(|(name, _)| name == "hush-us-privacy") =>
        {
            Err("forwarded it without the hush-us-privacy header")
        }
        GatePolicy::Annotate => Ok("forwarded it annotated with the opt-out"),
    };
    match verdict {
        Ok(done) => Verdict::Passed(format!(
            "{done} to {destination} and forwarded the control event"
        )),
        Err(wrong) => Verdict::Failed(format!(
            "the gate {wrong} to {destination} although the subject opted out (policy {policy})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(value: Value) -> RecordView {
        serde_json::from_value(value).expect("record view")
    }

    fn outcome(id: &str, action: &str, verification: &str) -> Value {
        json!({"connector_id": id, "action": action, "verification": verification,
               "role": "SERVICE_PROVIDER", "evidence": {}})
    }

    #[test]
    fn confirm_waits_for_missing_recipients_and_names_a_permanent_failure() {
        let waiting = record(
            json!({"status": "OPEN", "required_connectors": ["crm", "ads"],
            "connectors": [outcome("crm", "FLAGGED", "VERIFIED")], "missing_connectors": ["ads"]}),
        );
        assert_eq!(
            confirmed(&waiting),
            Verdict::Waiting("no confirmation from ads".into())
        );
        let mut failed = outcome("crm", "FAILED_PERMANENT", "UNVERIFIABLE");
        failed["evidence"] = json!({"error": "HTTP 401: authentication credentials not valid"});
        let failed = record(
            json!({"status": "ACTION_REQUIRED", "required_connectors": ["crm", "ads"],
            "connectors": [failed], "missing_connectors": ["ads"]}),
        );
        assert_eq!(
            confirmed(&failed),
            Verdict::Failed(
                "recipient crm failed permanently: HTTP 401: authentication credentials not valid"
                    .into()
            )
        );
        let done = record(
            json!({"status": "VERIFIED", "required_connectors": ["crm", "ads"],
            "connectors": [outcome("crm", "FLAGGED", "VERIFIED"), outcome("ads", "NOT_APPLICABLE", "UNVERIFIABLE")],
            "missing_connectors": []}),
        );
        assert_eq!(confirmed(&done), Verdict::Passed("crm FLAGGED".into()));
        let denied = record(json!({"status": "DENIED", "denial_reason": "fraud"}));
        assert!(matches!(confirmed(&denied), Verdict::Failed(r) if r.contains("fraud")));
    }

    #[test]
    fn read_back_fails_on_a_change_not_applied_and_waits_for_pending_unless_optional() {
        let not_applied = record(json!({"status": "UNVERIFIED",
            "connectors": [outcome("hubspot", "FLAGGED", "FAILED"), outcome("partner", "NOTIFIED", "PENDING")]}));
        assert!(
            matches!(read_back(&not_applied, &[]), Verdict::Failed(r) if r.contains("hubspot"))
        );
        let pending = record(json!({"status": "UNVERIFIED",
            "connectors": [outcome("hubspot", "FLAGGED", "VERIFIED"), outcome("partner", "NOTIFIED", "PENDING")]}));
        assert_eq!(
            read_back(&pending, &[]),
            Verdict::Waiting("read-back still pending at partner".into())
        );
        assert_eq!(
            read_back(&pending, &["partner".to_owned()]),
            Verdict::Passed("verified: hubspot; pending (optional): partner".into())
        );
    }

    #[test]
    fn a_deletion_passes_read_back_only_when_each_created_record_is_read_back_as_gone() {
        let created = ["hubspot".to_owned()];
        let gone = record(json!({"status": "VERIFIED", "connectors": [
            outcome("hubspot", "DELETED", "VERIFIED"), outcome("partner", "NOTIFIED", "PENDING")]}));
        let optional = ["partner".to_owned()];
        assert_eq!(
            records_gone(&gone, &created, &optional),
            Verdict::Passed(
                "gone at hubspot; verified: hubspot; pending (optional): partner".into()
            )
        );
        let still_there = record(json!({"status": "UNVERIFIED", "connectors": [
            outcome("hubspot", "DELETED", "FAILED")]}));
        assert!(
            matches!(records_gone(&still_there, &created, &[]), Verdict::Failed(r)
                if r.contains("record still there at hubspot")),
        );
        let not_found = record(json!({"status": "VERIFIED", "connectors": [
            outcome("hubspot", "NOT_FOUND", "VERIFIED")]}));
        assert!(
            matches!(records_gone(&not_found, &created, &[]), Verdict::Failed(r)
                if r.contains("NOT_FOUND")),
        );
        let unchecked = record(json!({"status": "CONFIRMED", "connectors": [
            outcome("hubspot", "DELETED", "UNVERIFIABLE")]}));
        assert!(matches!(
            records_gone(&unchecked, &created, &[]),
            Verdict::Failed(_)
        ));
        let pending = record(json!({"status": "CONFIRMED", "connectors": [
            outcome("hubspot", "DELETED", "PENDING")]}));
        assert!(matches!(
            records_gone(&pending, &created, &[]),
            Verdict::Waiting(_)
        ));
    }

    #[test]
    fn a_leak_counts_only_at_the_injected_offset() {
        let view = record(json!({"status": "LEAKING", "leak_evidence": [
            {"source_topic": "egress", "source_partition": 1, "source_offset": 41, "ms_after_suppression": 900}]}));
        assert!(matches!(
            leak_reported(&view, "egress", 1, 41),
            Verdict::Passed(_)
        ));
        assert!(matches!(
            leak_reported(&view, "egress", 1, 42),
            Verdict::Waiting(_)
        ));
        assert!(matches!(
            leak_reported(&view, "other", 1, 41),
            Verdict::Waiting(_)
        ));
    }

    fn stream(policy: &str) -> GateStream {
        toml::from_str(&format!(
            r#"
            source = "conversions"
            destination = "conversions.cleared"
            categories = ["ADVERTISING"]
            policy = "{policy}"
            identifiers = [{{ path = "user.email", type = "EMAIL" }},
                           {{ path = "user_data.em", type = "EMAIL", hashed = true }}]
            "#
        ))
        .unwrap()
    }

    fn forwarded(value: Value, headers: &[(&str, &str)]) -> Forwarded {
        Forwarded {
            value,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_gate_is_judged_by_its_streams_policy() {
        let raw = forwarded(json!({"user": {"email": "c@x.example"}}), &[]);
        assert!(matches!(
            gate_enforced(&stream("drop"), None),
            Verdict::Passed(_)
        ));
        assert!(
            matches!(gate_enforced(&stream("drop"), Some(&raw)), Verdict::Failed(r) if r.contains("unchanged"))
        );
        assert!(matches!(
            gate_enforced(&stream("strip"), Some(&raw)),
            Verdict::Failed(_)
        ));
        assert!(matches!(
            gate_enforced(&stream("strip"), None),
            Verdict::Failed(_)
        ));
        let stripped = forwarded(json!({"user": {}}), &[]);
        assert!(matches!(
            gate_enforced(&stream("strip"), Some(&stripped)),
            Verdict::Passed(_)
        ));
        let ldu = forwarded(
            json!({"user_data": {"em": "ab"}, "data_processing_options": ["LDU"]}),
            &[],
        );
        assert!(matches!(
            gate_enforced(&stream("meta_ldu"), Some(&ldu)),
            Verdict::Passed(_)
        ));
        assert!(matches!(
            gate_enforced(&stream("meta_ldu"), Some(&stripped)),
            Verdict::Failed(_)
        ));
        let annotated = forwarded(
            json!({"user": {"email": "c@x.example"}}),
            &[("hush-us-privacy", "1YYN")],
        );
        assert!(matches!(
            gate_enforced(&stream("annotate"), Some(&annotated)),
            Verdict::Passed(_)
        ));
        assert!(matches!(
            gate_enforced(&stream("annotate"), Some(&raw)),
            Verdict::Failed(_)
        ));
    }
}
