//! Changes asked over HTTP, as commands on `hush.auditor-commands.v1`.
//!
//! The replica that answers the HTTP call checks the change against its view of the record
//! (so a refusal is answered at once), then publishes an [`AuditorCommand`] keyed by the
//! request's subject key. The replica whose confirmations consumer owns that partition number
//! applies it with [`apply_command`], in the same batches as the request's confirmations, so
//! no two replicas ever read-modify-write one record at once and no change is lost. Applying is
//! idempotent: a re-delivered command finds its change already on the record.

use async_trait::async_trait;
use hush_contracts::commands::{AuditorCommand, AuditorCommandAction};
use hush_contracts::events::{AdminChange, AuditRecord, RecipientRole};
use hush_contracts::recipients::RecipientConfig;
use hush_runtime::kafka::EventProducer;

use crate::fold::{self, Refusal};
use crate::store::WriteError;
use hush_contracts::deadline::DeadlinePolicy;

/// Why a command cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The change is not allowed on the record as it stands.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The command lacks what its action needs (a reason, a connector, a resolution).
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

/// The record after `command`, or `None` when it changes nothing: the same change is already on
/// record (a re-delivered command), the request is already denied with the same reason, or the
/// callback's outcome is already the connector's. The change is recorded at the command's
/// `issued_at`, with its actor; legality (e.g. an extension before the original deadline) is
/// judged at that instant too.
pub fn apply_command(
    record: &AuditRecord,
    command: &AuditorCommand,
    policy: &DeadlinePolicy,
    recipients: &[RecipientConfig],
) -> Result<Option<AuditRecord>, CommandError> {
    let at = command.issued_at;
    let at_risk_days = policy.at_risk_days();
    let action = command.action.as_str();
    let missing = |field| CommandError::Incomplete {
        action,
        command_id: command.command_id.clone(),
        field,
    };
    let note = match command.action {
        AuditorCommandAction::Extension | AuditorCommandAction::Denial => {
            command.reason.clone().ok_or_else(|| missing("reason"))?
        }
        _ => command
            .connector_id
            .clone()
            .ok_or_else(|| missing("connector_id"))?,
    };
    let change = AdminChange {
        action: action.to_owned(),
        actor: command.actor.clone(),
        at,
        note: Some(note.clone()),
    };
    if command.action != AuditorCommandAction::Callback && record.changes.contains(&change) {
        return Ok(None);
    }
    let next = match command.action {
        AuditorCommandAction::Extension => Some(fold::extend(record, policy, at)?),
        AuditorCommandAction::Denial => fold::deny(record, &note, at_risk_days, at)?,
        AuditorCommandAction::Resolution => {
            let given = command
                .resolution
                .as_ref()
                .ok_or_else(|| missing("resolution"))?;
            let role = recipients
                .iter()
                .find(|r| r.id == note)
                .map_or(RecipientRole::ThirdParty, |r| r.role);
            let resolution = fold::Resolution {
                resolved_by: given.resolved_by.clone(),
                note: given.note.clone(),
                attachment_sha256: given.attachment_sha256.clone(),
            };
            Some(fold::resolve(
                record,
                &note,
                role,
                &resolution,
                at_risk_days,
                at,
            )?)
        }
        AuditorCommandAction::Retry => Some(record.clone()),
        AuditorCommandAction::Callback => {
            let mut confirmation = command
                .callback
                .clone()
                .ok_or_else(|| missing("callback"))?;
            confirmation.request_id = record.request_id.clone(); // same UUID, maybe other case
            return Ok(fold::on_confirmation(
                record,
                &confirmation,
                at_risk_days,
                at,
            ));
        }
    };
    Ok(next.map(|mut next| {
        next.changes.push(change);
        next.updated_at = at;
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
        }
    }

    fn policy() -> DeadlinePolicy {
        DeadlinePolicy::new(DeadlineConfig::default())
    }

    fn apply(
        record: &AuditRecord,
        command: &AuditorCommand,
    ) -> Result<Option<AuditRecord>, CommandError> {
        apply_command(record, command, &policy(), &[])
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
}
