//! The auditor's commands (value of `hush.auditor-commands.v1`): every change asked of the
//! auditor over HTTP, every leak from the leak watch and every closed observation window becomes
//! one, keyed by the request's subject key like its requests and confirmations, so the one
//! auditor replica that owns that partition applies it, in order with the request's
//! confirmations, and no two replicas ever write the same record at once.

use serde::{Deserialize, Serialize};

use crate::events::{AvroEvent, Confirmation, EpochMillis, LeakDetected};

/// The change a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditorCommandAction {
    /// Take the one extension the request's rule allows (`reason` set).
    Extension,
    /// Deny the request (`reason` set).
    Denial,
    /// Record an out-of-band resolution of one recipient (`connector_id`, `resolution` set).
    Resolution,
    /// Record that one failed recipient was re-driven (`connector_id` set).
    Retry,
    /// Apply a recipient's signed callback (`connector_id`, `callback` set).
    Callback,
    /// Record a leak the leak watch detected (`leak` set).
    Leak,
    /// Prove the request if its observation window closed clean (nothing else set: the owner
    /// judges the window against the leak watch's progress it has read).
    Prove,
}

impl AuditorCommandAction {
    /// The Avro symbol, also the action recorded on the audit record's change list.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditorCommandAction::Extension => "EXTENSION",
            AuditorCommandAction::Denial => "DENIAL",
            AuditorCommandAction::Resolution => "RESOLUTION",
            AuditorCommandAction::Retry => "RETRY",
            AuditorCommandAction::Callback => "CALLBACK",
            AuditorCommandAction::Leak => "LEAK",
            AuditorCommandAction::Prove => "PROVE",
        }
    }
}

/// An operator's account of how a recipient complied outside Hush.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutOfBandResolution {
    /// Who resolved it at the recipient.
    pub resolved_by: String,
    /// What was done.
    pub note: String,
    /// SHA-256 hex of the evidence kept outside Hush.
    pub attachment_sha256: Option<String>,
}

/// One change asked of the auditor, published by the replica that answered the HTTP call, read
/// the leak or found the window closed, and applied by the replica that owns the request's
/// partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditorCommand {
    /// Id of this command.
    pub command_id: String,
    /// Request changed.
    pub request_id: String,
    /// Subject key of the request: the partition key.
    pub subject_key: String,
    /// The change.
    pub action: AuditorCommandAction,
    /// The authenticated client that asked, or the recipient whose callback signature was
    /// checked.
    pub actor: String,
    /// When the HTTP call asked; the change is recorded at this instant.
    pub issued_at: EpochMillis,
    /// Reason of an extension or a denial.
    pub reason: Option<String>,
    /// Recipient of a resolution, a retry or a callback.
    pub connector_id: Option<String>,
    /// The resolution of a [`AuditorCommandAction::Resolution`].
    pub resolution: Option<OutOfBandResolution>,
    /// The confirmation of a [`AuditorCommandAction::Callback`].
    pub callback: Option<Confirmation>,
    /// The detection of a [`AuditorCommandAction::Leak`].
    #[serde(default)]
    pub leak: Option<LeakDetected>,
}

impl AvroEvent for AuditorCommand {
    const FULL_NAME: &'static str = "dev.hush.v1.AuditorCommand";
    const SCHEMA: &'static str = include_str!("../../../schemas/auditor_command.avsc");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ConfirmationAction, RecipientRole, VerificationStatus};
    use apache_avro::{from_value, to_value, Reader, Schema, Writer};

    fn round_trip(command: &AuditorCommand) {
        let schema = Schema::parse_str(AuditorCommand::SCHEMA).expect("schema parses");
        let value = to_value(command)
            .unwrap()
            .resolve(&schema)
            .expect("command fits its schema");
        let mut writer = Writer::new(&schema, Vec::new()).unwrap();
        writer.append_value(value).unwrap();
        let bytes = writer.into_inner().unwrap();
        let decoded = Reader::new(bytes.as_slice())
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let back: AuditorCommand = from_value(&decoded).unwrap();
        assert_eq!(&back, command);
    }

    fn command(action: AuditorCommandAction) -> AuditorCommand {
        AuditorCommand {
            command_id: "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10".into(),
            request_id: "5a0e2c56-1f1c-4a55-9a43-3b0e63c2a0d1".into(),
            subject_key: "ab12".into(),
            action,
            actor: "compliance-lead".into(),
            issued_at: 1_790_000_000_000,
            reason: None,
            connector_id: None,
            resolution: None,
            callback: None,
            leak: None,
        }
    }

    #[test]
    fn every_kind_of_command_round_trips_through_its_schema() {
        let mut denial = command(AuditorCommandAction::Denial);
        denial.reason = Some("not verifiable".into());
        round_trip(&denial);
        let mut resolution = command(AuditorCommandAction::Resolution);
        resolution.connector_id = Some("crm".into());
        resolution.resolution = Some(OutOfBandResolution {
            resolved_by: "ops".into(),
            note: "removed by hand".into(),
            attachment_sha256: Some("a".repeat(64)),
        });
        round_trip(&resolution);
        let mut callback = command(AuditorCommandAction::Callback);
        callback.connector_id = Some("partner".into());
        callback.callback = Some(Confirmation {
            request_id: callback.request_id.clone(),
            subject_key: "ab12".into(),
            connector_id: "partner".into(),
            role: RecipientRole::ThirdParty,
            action: ConfirmationAction::Suppressed,
            exception_basis: None,
            attempts: 1,
            first_attempt_at: None,
            last_attempt_at: Some(1),
            completed_at: 1_790_000_000_000,
            verification: VerificationStatus::Verified,
            evidence: [("confirmed_by".to_owned(), "callback".to_owned())].into(),
        });
        round_trip(&callback);
        let mut leak = command(AuditorCommandAction::Leak);
        leak.actor = "hush-auditor".into();
        leak.leak = Some(LeakDetected {
            leak_id: "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f".into(),
            identifier_hash: "e".repeat(64),
            identifier_type: crate::events::IdentifierType::Email,
            subject_key: String::new(),
            last_request_id: leak.request_id.clone(),
            source_topic: "web.events".into(),
            source_partition: 2,
            source_offset: 41,
            destination: "ads".into(),
            suppression_effective_at: 1_790_000_000_000,
            event_time: 1_790_000_100_000,
            detected_at: 1_790_000_100_500,
            action_taken: crate::events::GateAction::Blocked,
        });
        round_trip(&leak);
        round_trip(&command(AuditorCommandAction::Prove));
    }

    #[test]
    fn the_leak_a_command_carries_has_the_leak_topics_fields() {
        let fields = |schema: &Schema| -> Vec<String> {
            match schema {
                Schema::Record(record) => record
                    .fields
                    .iter()
                    .map(|f| format!("{}:{:?}", f.name, f.schema))
                    .collect(),
                other => panic!("not a record: {other:?}"),
            }
        };
        let leak = Schema::parse_str(LeakDetected::SCHEMA).unwrap();
        let command = Schema::parse_str(AuditorCommand::SCHEMA).unwrap();
        let Schema::Record(record) = &command else {
            panic!("a record")
        };
        let carried = record
            .fields
            .iter()
            .find(|f| f.name == "leak")
            .expect("a leak field");
        let Schema::Union(union) = &carried.schema else {
            panic!("an optional leak")
        };
        assert_eq!(fields(&union.variants()[1]), fields(&leak));
    }

    #[test]
    fn actions_name_their_avro_symbols() {
        for (action, symbol) in [
            (AuditorCommandAction::Extension, "\"EXTENSION\""),
            (AuditorCommandAction::Denial, "\"DENIAL\""),
            (AuditorCommandAction::Resolution, "\"RESOLUTION\""),
            (AuditorCommandAction::Retry, "\"RETRY\""),
            (AuditorCommandAction::Callback, "\"CALLBACK\""),
            (AuditorCommandAction::Leak, "\"LEAK\""),
            (AuditorCommandAction::Prove, "\"PROVE\""),
        ] {
            assert_eq!(serde_json::to_string(&action).unwrap(), symbol);
            assert!(AuditorCommand::SCHEMA.contains(symbol));
            assert_eq!(format!("\"{}\"", action.as_str()), symbol);
        }
    }
}
