//! Changes to a record, as commands on `hush.auditor-commands.v1`.
//!
//! The replica that answers an HTTP call checks the change against its view of the record
//! (so a refusal is answered at once), then publishes an [`AuditorCommand`] keyed by the
//! request's subject key. So do the leak consumer, for each leak (whichever replica reads it),
//! and the prover, for each request whose observation window it finds closed clean. The replica
//! whose confirmations consumer owns that partition number applies it with [`apply_command`],
//! in the same batches as the request's confirmations, so no two replicas ever
//! read-modify-write one record at once and no change is lost. Applying is idempotent: a
//! re-delivered command finds its change already on the record.

use async_trait::async_trait;
use hush_contracts::commands::{AuditorCommand, AuditorCommandAction};
use hush_contracts::events::{AdminChange, AuditRecord, RecipientRole};
use hush_contracts::recipients::RecipientConfig;
use hush_runtime::kafka::EventProducer;

use crate::fold::{self, Refusal};
use crate::proof::WatchCoverage;
use crate::service::ProofSettings;
use crate::store::WriteError;
use hush_contracts::deadline::DeadlinePolicy;

/// Why a command cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The change is not allowed on the record as it stands.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The command lacks what its action needs (a reason, a connector, a resolution, a leak).
    #[error("{action} command {command_id} has no {field}")]
    Incomplete {
        /// The action.
        action: &'static str,
        /// The command.
        command_id: String,
        /// The missing field.
        field: &'static str,
    },
}

/// What applying a command judges it against besides the record: the deadline rules, the
/// recipients, and (for `PROVE`) the observation window and how far the leak watch has
/// examined each watched topic, as the applying replica has read it.
#[derive(Clone, Copy)]
pub struct Rules<'a> {
    /// Deadline rules.
    pub policy: &'a DeadlinePolicy,
    /// Downstream recipients.
    pub recipients: &'a [RecipientConfig],
    /// Watched topics and the observation window.
    pub proof: &'a ProofSettings,
    /// The leak watch's progress per watched topic.
    pub coverage: &'a WatchCoverage,
}

/// The record after `command`, or `None` when it changes nothing: the same change is already on
/// record (a re-delivered command), the request is already denied with the same reason, the
/// callback's outcome is already the connector's, the leak is already on record, or the request
/// cannot be proven (already proven, leaking, its window not examined in full). The change is
/// recorded at the command's `issued_at`, with its actor; legality (e.g. an extension before
/// the original deadline) is judged at that instant too. A `LEAK`, a `PROVE` and a `CALLBACK`
/// change the record's evidence, not its list of administrative changes.
pub fn apply_command(
    record: &AuditRecord,
    command: &AuditorCommand,
    rules: Rules<'_>,
) -> Result<Option<AuditRecord>, CommandError> {
    let at = command.issued_at;
    let at_risk_days = rules.policy.at_risk_days();
    let action = command.action.as_str();
    let missing = |field| CommandError::Incomplete {
        action,
        command_id: command.command_id.clone(),
        field,
    };
    match command.action {
        AuditorCommandAction::Callback => {
            let mut confirmation = command
                .callback
                .clone()
                .ok_or_else(|| missing("callback"))?;
            confirmation.request_id = record.request_id.clone(); // same UUID, maybe other case
            Ok(fold::on_confirmation(
                record,
                &confirmation,
                at_risk_days,
                at,
            ))
        }
        AuditorCommandAction::Leak => {
            let leak = command.leak.as_ref().ok_or_else(|| missing("leak"))?;
            Ok(fold::on_leak(record, leak, at_risk_days, at))
        }
        AuditorCommandAction::Prove => Ok(fold::prove(
            record,
            rules.proof.window_ms,
            &rules.proof.watched_topics,
            &|topic| rules.coverage.get(topic),
            at_risk_days,
            at,
        )),
        AuditorCommandAction::Extension => {
            let reason = command.reason.as_deref().ok_or_else(|| missing("reason"))?;
            administer(record, command, reason, || {
                Ok(Some(fold::extend(record, rules.policy, at)?))
            })
        }
        AuditorCommandAction::Denial => {
            let reason = command.reason.as_deref().ok_or_else(|| missing("reason"))?;
            administer(record, command, reason, || {
                Ok(fold::deny(record, reason, at_risk_days, at)?)
            })
        }
        AuditorCommandAction::Resolution => {
            let connector = command
                .connector_id
                .as_deref()
                .ok_or_else(|| missing("connector_id"))?;
            administer(record, command, connector, || {
                let given = command
                    .resolution
                    .as_ref()
                    .ok_or_else(|| missing("resolution"))?;
                let role = rules
                    .recipients
                    .iter()
                    .find(|r| r.id == connector)
                    .map_or(RecipientRole::ThirdParty, |r| r.role);
                let resolution = fold::Resolution {
                    resolved_by: given.resolved_by.clone(),
                    note: given.note.clone(),
                    attachment_sha256: given.attachment_sha256.clone(),
                };
                Ok(Some(fold::resolve(
                    record,
                    connector,
                    role,
                    &resolution,
                    at_risk_days,
                    at,
                )?))
            })
        }
        AuditorCommandAction::Retry => {
            let connector = command
                .connector_id
                .as_deref()
                .ok_or_else(|| missing("connector_id"))?;
            // The re-drive itself is the change.
            administer(record, command, connector, || Ok(Some(record.clone())))
        }
    }
}

/// An administrative change: `None` when the same change (action, actor, instant, `note`) is
/// already on the record, else the record `change` makes with the change appended to its list.
fn administer(
    record: &AuditRecord,
    command: &AuditorCommand,
    note: &str,
    change: impl FnOnce() -> Result<Option<AuditRecord>, CommandError>,
) -> Result<Option<AuditRecord>, CommandError> {
    let entry = AdminChange {
        action: command.action.as_str().to_owned(),
        actor: command.actor.clone(),
        at: command.issued_at,
        note: Some(note.to_owned()),
    };
    if record.changes.contains(&entry) {
        return Ok(None);
    }
    Ok(change()?.map(|mut next| {
        next.changes.push(entry);
        next.updated_at = command.issued_at;
        next
    }))
}

/// Publishes commands; returns once the command is durable.
#[async_trait]
pub trait CommandSink: Send + Sync {
    /// Publishes `command` keyed by its subject key.
    async fn publish(&self, command: &AuditorCommand) -> Result<(), WriteError>;
}

/// Publishes commands to the commands topic through the idempotent producer (`acks=all`).
pub struct KafkaCommandSink {
    producer: EventProducer,
    topic: String,
}

impl KafkaCommandSink {
    /// A sink to `topic` (normally `hush.auditor-commands.v1`).
    pub fn new(producer: EventProducer, topic: impl Into<String>) -> Self {
        Self {
            producer,
            topic: topic.into(),
        }
    }
}

#[async_trait]
impl CommandSink for KafkaCommandSink {
    async fn publish(&self, command: &AuditorCommand) -> Result<(), WriteError> {
        self.producer
            .send(&self.topic, &command.subject_key, command)
            .await
            .map(|_| ())
            .map_err(|e| WriteError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::commands::OutOfBandResolution;
    use hush_contracts::deadline::DeadlineConfig;
    use hush_contracts::events::{
        AuditStatus, Channel, Confirmation, ConfirmationAction, RequestKind, VerificationStatus,
    };

    const DAY: i64 = 86_400_000;

    fn record() -> AuditRecord {
        AuditRecord {
            request_id: "5a0e2c56-1f1c-4a55-9a43-3b0e63c2a0d1".into(),
            subject_key: "s".into(),
            kind: RequestKind::Delete,
            channel: Channel::Api,
            jurisdiction: "US-CA".into(),
            received_at: 1_790_000_000_000,
            deadline: 1_790_000_000_000 + 45 * DAY,
            extended: false,
            status: AuditStatus::Open,
            completed_at: None,
            denial_reason: None,
            required_connectors: vec!["crm".into()],
            connectors: vec![],
            leaks: 0,
            leak_evidence: Vec::new(),
            proof: None,
            changes: Vec::new(),
            synthetic: false,
            resolution: Vec::new(),
            updated_at: 1_790_000_000_000,
        }
    }

    fn command(action: AuditorCommandAction, actor: &str, at: i64) -> AuditorCommand {
        AuditorCommand {
            command_id: uuid::Uuid::new_v4().to_string(),
            request_id: record().request_id,
            subject_key: "s".into(),
            action,
            actor: actor.into(),
            issued_at: at,
            reason: None,
            connector_id: None,
            resolution: None,
            callback: None,
            leak: None,
        }
    }

    fn policy() -> DeadlinePolicy {
        DeadlinePolicy::new(DeadlineConfig::default())
    }

    fn apply(
        record: &AuditRecord,
        command: &AuditorCommand,
    ) -> Result<Option<AuditRecord>, CommandError> {
        apply_with(record, command, &WatchCoverage::default())
    }

    /// A window of one day over one watched topic, judged on `coverage`.
    fn apply_with(
        record: &AuditRecord,
        command: &AuditorCommand,
        coverage: &WatchCoverage,
    ) -> Result<Option<AuditRecord>, CommandError> {
        let proof = ProofSettings {
            watched_topics: vec!["web.events".into()],
            window_ms: DAY,
        };
        apply_command(
            record,
            command,
            Rules {
                policy: &policy(),
                recipients: &[],
                proof: &proof,
                coverage,
            },
        )
    }

    #[test]
    fn a_change_is_recorded_with_its_actor_at_its_issue_time_and_a_redelivery_changes_nothing() {
        let mut extension = command(AuditorCommandAction::Extension, "lead", 1_790_000_100_000);
        extension.reason = Some("complex request".into());
        let next = apply(&record(), &extension).unwrap().expect("extended");
        assert!(next.extended);
        assert_eq!(next.updated_at, 1_790_000_100_000);
        assert_eq!(
            next.changes,
            vec![AdminChange {
                action: "EXTENSION".into(),
                actor: "lead".into(),
                at: 1_790_000_100_000,
                note: Some("complex request".into()),
            }]
        );
        assert_eq!(apply(&next, &extension).unwrap(), None);
    }

    #[test]
    fn commands_from_two_actors_both_land_in_the_order_applied() {
        let mut denial = command(AuditorCommandAction::Denial, "lead", 1_790_000_200_000);
        denial.reason = Some("could not verify".into());
        let mut retry = command(AuditorCommandAction::Retry, "ops", 1_790_000_100_000);
        retry.connector_id = Some("crm".into());
        let first = apply(&record(), &retry).unwrap().unwrap();
        let both = apply(&first, &denial).unwrap().unwrap();
        let actors: Vec<_> = both.changes.iter().map(|c| c.actor.as_str()).collect();
        assert_eq!(actors, ["ops", "lead"]);
        assert_eq!(both.denial_reason.as_deref(), Some("could not verify"));
    }

    #[test]
    fn a_refused_or_incomplete_command_says_why() {
        let mut extended = record();
        extended.extended = true;
        let mut extension = command(AuditorCommandAction::Extension, "lead", 1_790_000_100_000);
        assert!(matches!(
            apply(&extended, &extension),
            Err(CommandError::Incomplete {
                field: "reason",
                ..
            })
        ));
        extension.reason = Some("again".into());
        assert_eq!(
            apply(&extended, &extension),
            Err(CommandError::Refused(Refusal::AlreadyExtended))
        );
        let mut resolution = command(AuditorCommandAction::Resolution, "ops", 1_790_000_100_000);
        resolution.connector_id = Some("crm".into());
        let error = apply(&record(), &resolution).unwrap_err().to_string();
        assert!(error.contains("RESOLUTION command") && error.contains("resolution"));
    }

    #[test]
    fn a_resolution_and_a_callback_become_the_recipients_outcome() {
        let mut resolution = command(AuditorCommandAction::Resolution, "ops", 1_790_000_100_000);
        resolution.connector_id = Some("crm".into());
        resolution.resolution = Some(OutOfBandResolution {
            resolved_by: "vendor support".into(),
            note: "deleted by hand".into(),
            attachment_sha256: None,
        });
        let resolved = apply(&record(), &resolution).unwrap().unwrap();
        assert_eq!(resolved.connectors[0].action, ConfirmationAction::Deleted);
        assert_eq!(resolved.changes[0].action, "RESOLUTION");

        let mut callback = command(AuditorCommandAction::Callback, "crm", 1_790_000_300_000);
        callback.connector_id = Some("crm".into());
        callback.callback = Some(Confirmation {
            request_id: record().request_id.to_uppercase(),
            subject_key: "s".into(),
            connector_id: "crm".into(),
            role: RecipientRole::ThirdParty,
            action: ConfirmationAction::Deleted,
            exception_basis: None,
            attempts: 1,
            first_attempt_at: None,
            last_attempt_at: None,
            completed_at: 1_790_000_300_000,
            verification: VerificationStatus::Verified,
            evidence: Default::default(),
        });
        let confirmed = apply(&record(), &callback).unwrap().unwrap();
        assert_eq!(
            confirmed.connectors[0].verification,
            VerificationStatus::Verified
        );
        assert!(confirmed.changes.is_empty(), "a callback is an outcome");
        assert_eq!(apply(&confirmed, &callback).unwrap(), None);
    }

    fn leak(id: &str) -> hush_contracts::events::LeakDetected {
        hush_contracts::events::LeakDetected {
            leak_id: id.into(),
            identifier_hash: "e".repeat(64),
            identifier_type: hush_contracts::events::IdentifierType::Email,
            subject_key: String::new(),
            last_request_id: record().request_id,
            source_topic: "web.events".into(),
            source_partition: 0,
            source_offset: 7,
            destination: "ads".into(),
            suppression_effective_at: 1_790_000_050_000,
            event_time: 1_790_000_060_000,
            detected_at: 1_790_000_061_000,
            action_taken: hush_contracts::events::GateAction::Blocked,
        }
    }

    /// The record with its one recipient's confirmation: CONFIRMED, completed at `completed`.
    fn confirmed_at(completed: i64) -> AuditRecord {
        let confirmation = Confirmation {
            request_id: record().request_id,
            subject_key: "s".into(),
            connector_id: "crm".into(),
            role: RecipientRole::ThirdParty,
            action: ConfirmationAction::Deleted,
            exception_basis: None,
            attempts: 1,
            first_attempt_at: None,
            last_attempt_at: None,
            completed_at: completed,
            verification: VerificationStatus::Unverifiable,
            evidence: Default::default(),
        };
        let confirmed = fold::on_confirmation(&record(), &confirmation, 3, completed).unwrap();
        assert_eq!(confirmed.status, AuditStatus::Confirmed);
        confirmed
    }

    #[test]
    fn a_leak_command_keeps_the_leak_once_and_needs_its_leak() {
        let mut command = command(
            AuditorCommandAction::Leak,
            "hush-auditor",
            1_790_000_100_000,
        );
        assert!(matches!(
            apply(&record(), &command),
            Err(CommandError::Incomplete { field: "leak", .. })
        ));
        command.leak = Some(leak("7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"));
        let leaking = apply(&confirmed_at(1_790_000_000_000), &command)
            .unwrap()
            .expect("the leak is recorded");
        assert_eq!(leaking.leaks, 1);
        assert_eq!(leaking.status, AuditStatus::Leaking);
        assert!(
            leaking.changes.is_empty(),
            "a leak is evidence, not an admin change"
        );
        assert_eq!(apply(&leaking, &command).unwrap(), None, "a re-delivery");
    }

    #[test]
    fn a_prove_command_proves_once_on_the_owners_coverage_and_never_a_leaking_request() {
        let completed = 1_790_000_000_000;
        let confirmed = confirmed_at(completed);
        let prove = command(
            AuditorCommandAction::Prove,
            "hush-auditor",
            completed + 2 * DAY,
        );
        let coverage = WatchCoverage::default();
        assert_eq!(
            apply_with(&confirmed, &prove, &coverage).unwrap(),
            None,
            "the watch has not examined the window yet"
        );
        coverage.put(hush_contracts::events::WatchProgress {
            topic: "web.events".into(),
            records_examined: 10,
            covered_until: completed + DAY,
            offsets: [("0".to_owned(), 10)].into(),
            leaks_found: 0,
            updated_at: completed + DAY,
        });
        let proven = apply_with(&confirmed, &prove, &coverage)
            .unwrap()
            .expect("proven");
        assert_eq!(proven.status, AuditStatus::Proven);
        assert_eq!(
            proven.proof.as_ref().map(|p| p.window_end),
            Some(completed + DAY)
        );
        assert_eq!(
            apply_with(&proven, &prove, &coverage).unwrap(),
            None,
            "proven once"
        );
        let mut leak_command = command(AuditorCommandAction::Leak, "hush-auditor", completed + 1);
        leak_command.leak = Some(leak("7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"));
        let leaking = apply(&confirmed, &leak_command).unwrap().unwrap();
        assert_eq!(
            apply_with(&leaking, &prove, &coverage).unwrap(),
            None,
            "a leak applied first keeps the request from being proven"
        );
    }
}
