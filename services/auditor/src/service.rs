//! Wiring: rebuild the audit records from their compacted topic, then fold requests, and
//! confirmations with the commands (the HTTP API's changes, leaks, proofs), into them (one
//! consumer group each, so a confirmation waiting for its request never blocks requests) and
//! serve the HTTP API.

use hush_auth::{guard, AuthConfig, Authenticator, HttpConfig};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono_tz::Tz;
use futures::future::join_all;
use hush_contracts::events::{
    now_millis, AuditRecord, AuditStatus, AvroEvent, Confirmation, EpochMillis, LeakDetected,
    PrivacyRequest,
};
use hush_contracts::gate::GateSection;
use hush_contracts::recipients::{self, RecipientConfig};
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::{CommonConfig, ConfigError};
use hush_runtime::kafka::{
    BatchHandler, ConsumerSettings, DeadLetterQueue, EventConsumer, EventProducer, HandlerError,
    IncomingMessage, TopicTable,
};
use hush_runtime::ops::{self, Readiness};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backlog::RequestsBacklog;
use crate::canary::CanaryBoard;
use crate::commands::{apply_command, CommandError, CommandSink, KafkaCommandSink, Rules};
use crate::fold::{self, Refusal};
use crate::proof::{self, LeakHandler, WatchCoverage};
use crate::store::{
    request_key, AuditStore, AuditWriter, FetchError, KafkaAuditWriter, KafkaRecordFetch,
    WriteError,
};
use crate::{api, metrics};
use hush_contracts::commands::{AuditorCommand, AuditorCommandAction};
use hush_contracts::deadline::{DeadlineConfig, DeadlinePolicy};

/// Client id of the auditor in broker logs.
const CLIENT_ID: &str = "hush-auditor";
/// Lock stripes serialising the writes of one request id.
const STRIPES: usize = 64;
/// How often the status gauges are recomputed.
const METRICS_REFRESH: Duration = Duration::from_secs(15);

/// Configuration of the auditor: the common sections, `[auditor]`, `[deadlines]` and the
/// `[[recipients]]` the suppressors read too.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    /// Kafka, registry, topics.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// This service's section.
    #[serde(default)]
    pub auditor: AuditorSection,
    /// Deadline rules (shared with intake).
    #[serde(default)]
    pub deadlines: DeadlineConfig,
    /// Downstream recipients; each request must be confirmed by those whose scope covers it.
    #[serde(default)]
    pub recipients: Vec<RecipientConfig>,
    /// The gate's streams (shared with `hush-gate`): a request is proven clean on their
    /// destinations and on every watched egress topic.
    #[serde(default)]
    pub gate: GateSection,
    /// Who may read and change records.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Time and rate limits of the HTTP server.
    #[serde(default)]
    pub http: HttpConfig,
}

impl Config {
    /// Checks the recipients and the auditor section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        recipients::validate(&self.recipients)?;
        self.gate.validate()?;
        self.auth.validate()?;
        self.http.validate()?;
        if self.auditor.group_id.trim().is_empty() {
            return Err(ConfigError::Invalid("auditor.group_id is empty".into()));
        }
        Ok(())
    }
}

/// `[auditor]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditorSection {
    /// Address of the API, the dashboard and `/healthz`, `/readyz`, `/metrics`.
    pub listen: String,
    /// Consumer group family: `<group_id>-requests`, `<group_id>-confirmations` (which reads
    /// the commands topic too: the replica holding a confirmations partition applies that
    /// partition's commands) and `<group_id>-leaks`.
    pub group_id: String,
    /// Longest a confirmation waits for its request while the requests group still has a
    /// backlog, in seconds (once the group has consumed everything, an unknown request is
    /// dead-lettered at once).
    pub unseen_request_grace_secs: u64,
    /// How long after the last confirmation the watched streams must stay clean before a
    /// request is `PROVEN`, in seconds.
    pub observation_window_secs: u64,
    /// How often closed observation windows are looked for, in seconds.
    pub prove_interval_secs: u64,
    /// How long an HTTP change waits for the replica that owns the request to apply its
    /// command, in milliseconds, before answering `202 Accepted` (the command is durable by
    /// then and will be applied).
    pub command_wait_ms: u64,
    /// Longest a replica waits for the audit topic when it reads back a record it does not
    /// hold (another replica owns the request), in milliseconds, before answering `503`.
    pub record_fetch_timeout_ms: u64,
}

impl Default for AuditorSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8071".into(),
            group_id: "hush-auditor".into(),
            unseen_request_grace_secs: 3600,
            observation_window_secs: 86_400,
            prove_interval_secs: 30,
            command_wait_ms: 5_000,
            record_fetch_timeout_ms: 5_000,
        }
    }
}

/// Why a change asked for over HTTP was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// No record of the request.
    #[error("no request with this id is on record")]
    NotFound,
    /// The change is not allowed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The command could not be published (or the record not written).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The record is not held here and could not be read back from the audit topic.
    #[error(transparent)]
    Unavailable(#[from] FetchError),
}

/// Where a change asked over HTTP stands when the call answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// The change is on the record.
    Applied(Box<AuditRecord>),
    /// The record already was as asked (the same denial, the same callback): nothing was
    /// published.
    Unchanged(Box<AuditRecord>),
    /// The command is durable on the commands topic but was not applied within the wait; the
    /// replica that owns the request applies it.
    Accepted {
        /// Id of the command.
        command_id: String,
    },
}

/// A change to fold into a record by the replica that owns its partition.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A recipient's outcome from the confirmations topic.
    Confirmation(Confirmation),
    /// A change asked over HTTP, from the commands topic.
    Command(Box<AuditorCommand>),
}

impl Change {
    fn request_id(&self) -> &str {
        match self {
            Change::Confirmation(c) => &c.request_id,
            Change::Command(c) => &c.request_id,
        }
    }
}

/// What one [`Change`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// The record changed (the version written holds it).
    Applied,
    /// Nothing changed (a re-delivery, an older outcome, the same denial).
    Unchanged,
    /// No record of the request yet.
    RequestNotSeen,
    /// The command can never apply (refused on the record as it stands, or incomplete).
    Refused(String),
}

/// The auditor's state and write path, shared by the consumers and the HTTP API. Every
/// read-modify-write of one request id holds that id's lock stripe until the broker has
/// acknowledged the new version and the store holds it, so two writes never reorder.
pub struct Auditor {
    store: Arc<AuditStore>,
    writer: Arc<dyn AuditWriter>,
    policy: DeadlinePolicy,
    time_zone: Tz,
    recipients: Vec<RecipientConfig>,
    proof: ProofSettings,
    coverage: WatchCoverage,
    redrive: Option<RedriveTarget>,
    canaries: Arc<CanaryBoard>,
    stripes: Vec<Mutex<()>>,
    commands: Option<Arc<dyn CommandSink>>,
    command_wait: Duration,
    /// When this replica last sent a `PROVE` command for each request still due.
    proving: std::sync::Mutex<HashMap<String, EpochMillis>>,
}

/// How long the prover waits for a `PROVE` it sent to show on the record before it sends
/// another (the owner's own prover normally sends one as soon as it sees the window closed).
const PROVE_AGAIN_MS: EpochMillis = 10 * 60 * 1000;

/// What re-driving a failed recipient needs: the broker, the topic names, the codec and a
/// producer.
#[derive(Clone)]
pub struct RedriveTarget {
    /// Kafka connection.
    pub kafka: hush_runtime::config::KafkaConfig,
    /// Topic names (dead letters, retry topics).
    pub topics: hush_runtime::config::TopicsConfig,
    /// Registry codec.
    pub codec: AvroCodec,
    /// Producer to the retry topics.
    pub producer: EventProducer,
}

/// What a request must show to be `PROVEN`: the watched topics and the observation window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProofSettings {
    /// Topics that must have been examined over the window.
    pub watched_topics: Vec<String>,
    /// Length of the window after the last confirmation, in milliseconds.
    pub window_ms: i64,
}

/// Why a recipient could not be re-driven.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// No such request.
    #[error("no request with this id is on record")]
    NotFound,
    /// The recipient is not required, did not fail permanently and its read-back was not
    /// given up.
    #[error(
        "recipient {connector} has no permanent failure or given-up read-back to retry on this request"
    )]
    NotFailed {
        /// Recipient id.
        connector: String,
    },
    /// This auditor was started without Kafka access for re-driving.
    #[error("re-driving is not available on this auditor")]
    Unavailable,
    /// Finding or re-publishing the dead letter failed.
    #[error(transparent)]
    Redrive(hush_runtime::kafka::RedriveError),
    /// The record is not held here and could not be read back from the audit topic.
    #[error(transparent)]
    Record(#[from] FetchError),
}

/// What became of a leak read from the leaks topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leaked {
    /// Sent as a `LEAK` command to the replica that owns the request (or, on an auditor
    /// without a commands topic, recorded).
    Sent,
    /// The leak was already on record.
    Unchanged,
    /// No record for the leak's request.
    RequestNotSeen,
}

impl Auditor {
    /// An auditor over `store` that writes through `writer`.
    pub fn new(
        store: Arc<AuditStore>,
        writer: Arc<dyn AuditWriter>,
        deadlines: DeadlineConfig,
        recipients: Vec<RecipientConfig>,
        proof: ProofSettings,
    ) -> Self {
        Self {
            store,
            writer,
            time_zone: deadlines.time_zone,
            policy: DeadlinePolicy::new(deadlines),
            recipients,
            proof,
            coverage: WatchCoverage::default(),
            redrive: None,
            canaries: Arc::default(),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            commands: None,
            command_wait: Duration::ZERO,
            proving: std::sync::Mutex::default(),
        }
    }

    /// Lets the HTTP API change records: each change is published to `sink` as a command and
    /// answered once applied, or as accepted after `wait`.
    pub fn with_commands(mut self, sink: Arc<dyn CommandSink>, wait: Duration) -> Self {
        self.commands = Some(sink);
        self.command_wait = wait;
        self
    }

    /// Lets `POST .../retry` re-drive failed recipients through `target`.
    pub fn with_redrive(mut self, target: RedriveTarget) -> Self {
        self.redrive = Some(target);
        self
    }

    /// Re-drives `connector` for `request_id`: its dead letter goes back to the recipient's
    /// retry topic. Refused unless that required recipient's outcome is `FAILED_PERMANENT`, or
    /// its read-back was given up (the dead letter is then a read-back-only item, read again
    /// with a fresh count; the vendor is not written to again). The re-drive is recorded on the
    /// request as a `RETRY` change by `actor`.
    pub async fn retry_recipient(
        &self,
        request_id: &str,
        connector: &str,
        actor: &str,
    ) -> Result<hush_runtime::kafka::Redriven, RetryError> {
        let record = self
            .store
            .record(request_id)
            .await?
            .ok_or(RetryError::NotFound)?;
        let failed = record.required_connectors.iter().any(|id| id == connector)
            && record.connectors.iter().any(|o| {
                o.connector_id == connector
                    && (o.action == hush_contracts::events::ConfirmationAction::FailedPermanent
                        || crate::status::read_back_gave_up(o).is_some())
            });
        if !failed {
            return Err(RetryError::NotFailed {
                connector: connector.to_owned(),
            });
        }
        let target = self.redrive.as_ref().ok_or(RetryError::Unavailable)?;
        let redriven = hush_runtime::kafka::redrive(
            &target.kafka,
            &target.topics,
            &target.codec,
            &target.producer,
            &record.request_id,
            connector,
        )
        .await
        .map_err(RetryError::Redrive);
        let redriven = redriven?;
        let command = AuditorCommand {
            command_id: uuid::Uuid::new_v4().to_string(),
            request_id: record.request_id.clone(),
            subject_key: record.subject_key.clone(),
            action: AuditorCommandAction::Retry,
            actor: actor.to_owned(),
            issued_at: now_millis(),
            reason: None,
            connector_id: Some(connector.to_owned()),
            resolution: None,
            callback: None,
            leak: None,
        };
        if let Err(error) = self.submit(command).await {
            tracing::warn!(%error, request_id, actor, "re-drive done but its record not written");
        }
        Ok(redriven)
    }

    /// How far the leak watch has examined each watched topic.
    pub fn coverage(&self) -> &WatchCoverage {
        &self.coverage
    }

    /// The watched topics and the observation window.
    pub fn proof_settings(&self) -> &ProofSettings {
        &self.proof
    }

    /// The latest canary result of each channel.
    pub fn canaries(&self) -> &Arc<CanaryBoard> {
        &self.canaries
    }

    /// Sends a leak to the replica that owns the record of the request whose suppression it
    /// violated, as a `LEAK` command keyed by the record's subject key; that replica records it
    /// in order with the request's confirmations. Returns once the command is durable.
    pub async fn record_leak(
        &self,
        leak: &LeakDetected,
        now: EpochMillis,
    ) -> Result<Leaked, WriteError> {
        let record = self
            .store
            .record(&leak.last_request_id)
            .await
            .map_err(|e| WriteError(e.to_string()))?;
        let Some(record) = record else {
            return Ok(Leaked::RequestNotSeen);
        };
        if fold::on_leak(&record, leak, self.policy.at_risk_days(), now).is_none() {
            return Ok(Leaked::Unchanged);
        }
        let mut command = self.own_command(&record, AuditorCommandAction::Leak, now);
        command.leak = Some(leak.clone());
        self.dispatch(command).await?;
        Ok(Leaked::Sent)
    }

    /// Sends a `PROVE` command, to the replica that owns the record, for every request this
    /// replica sees closed clean over its observation window (see [`fold::prove`]), unless it
    /// sent one for it within the last ten minutes; the owner proves it once, on the leak
    /// watch's progress it has read. Returns how many were sent.
    pub async fn prove_due(&self, now: EpochMillis) -> Result<usize, WriteError> {
        let window = self.proof.window_ms;
        let at_risk_days = self.policy.at_risk_days();
        let progress = |topic: &str| self.coverage.get(topic);
        let watched = &self.proof.watched_topics;
        // The summaries say which windows closed clean (fold::prove's conditions); only those
        // not sent lately have their full record (held, or read back) checked and sent.
        let due: Vec<String> = self.store.read(|records| {
            records
                .filter(|(_, r)| {
                    !watched.is_empty()
                        && !r.proven
                        && matches!(
                            r.recorded_status,
                            AuditStatus::Verified | AuditStatus::Confirmed
                        )
                        && r.completed_at.is_some_and(|at| {
                            let end = at.saturating_add(window);
                            end <= now
                                && watched.iter().all(|topic| {
                                    progress(topic).is_some_and(|p| p.covered_until >= end)
                                })
                        })
                })
                .map(|(key, _)| key.to_owned())
                .collect()
        });
        let unsent: Vec<String> = {
            let mut proving = self.proving.lock().expect("proving lock");
            proving.retain(|id, _| due.contains(id));
            due.into_iter()
                .filter(|key| {
                    proving
                        .get(key)
                        .is_none_or(|&sent| now.saturating_sub(sent) >= PROVE_AGAIN_MS)
                })
                .collect()
        };
        let mut sent = 0;
        for key in unsent {
            let record = self
                .store
                .record(&key)
                .await
                .map_err(|e| WriteError(e.to_string()))?;
            let Some(record) = record.filter(|r| {
                fold::prove(r, window, watched, &progress, at_risk_days, now).is_some()
            }) else {
                continue;
            };
            self.dispatch(self.own_command(&record, AuditorCommandAction::Prove, now))
                .await?;
            self.proving.lock().expect("proving lock").insert(key, now);
            sent += 1;
        }
        Ok(sent)
    }

    /// A command of the auditor itself (a leak, a proof) on `record`, issued at `at`.
    fn own_command(
        &self,
        record: &AuditRecord,
        action: AuditorCommandAction,
        at: EpochMillis,
    ) -> AuditorCommand {
        AuditorCommand {
            command_id: uuid::Uuid::new_v4().to_string(),
            request_id: record.request_id.clone(),
            subject_key: record.subject_key.clone(),
            action,
            actor: CLIENT_ID.to_owned(),
            issued_at: at,
            reason: None,
            connector_id: None,
            resolution: None,
            callback: None,
            leak: None,
        }
    }

    /// Hands `command` to the replica that owns its request: publishes it (returning once it
    /// is durable) or, on an auditor without a commands topic, applies it here.
    async fn dispatch(&self, command: AuditorCommand) -> Result<(), WriteError> {
        if let Some(sink) = &self.commands {
            return sink.publish(&command).await;
        }
        let change = Change::Command(Box::new(command));
        let outcomes = self
            .apply_changes(std::slice::from_ref(&change), now_millis())
            .await?;
        if outcomes.first() == Some(&ChangeOutcome::Applied) {
            note_applied(self, &change);
        }
        Ok(())
    }

    /// What commands are judged against on this replica.
    fn rules(&self) -> Rules<'_> {
        Rules {
            policy: &self.policy,
            recipients: &self.recipients,
            proof: &self.proof,
            coverage: &self.coverage,
        }
    }

    /// The records.
    pub fn store(&self) -> &Arc<AuditStore> {
        &self.store
    }

    /// The recipients configuration.
    pub fn recipients(&self) -> &[RecipientConfig] {
        &self.recipients
    }

    /// The deadline rules.
    pub fn policy(&self) -> &DeadlinePolicy {
        &self.policy
    }

    /// The business's time zone (report periods and dashboard times).
    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// Folds `changes`, in order, into their records, as the owner of their partitions: every
    /// record touched is written once, with all its changes, and the writes of the batch are
    /// awaited together (not one after another). The stripes of every request touched are held
    /// until the broker acknowledged and the store holds the new versions. On a write error
    /// nothing of the batch may be taken as done; applying it again is idempotent.
    pub async fn apply_changes(
        &self,
        changes: &[Change],
        now: EpochMillis,
    ) -> Result<Vec<ChangeOutcome>, WriteError> {
        let _guards = self
            .lock_stripes(changes.iter().map(Change::request_id))
            .await;
        let mut working: HashMap<String, AuditRecord> = HashMap::new();
        let mut outcomes = Vec::with_capacity(changes.len());
        for change in changes {
            let key = request_key(change.request_id());
            let held = match working.get(&key) {
                Some(record) => Some(record.clone()),
                None => self
                    .store
                    .record(&key)
                    .await
                    .map_err(|e| WriteError(e.to_string()))?,
            };
            let Some(record) = held else {
                outcomes.push(ChangeOutcome::RequestNotSeen);
                continue;
            };
            let next = match change {
                Change::Confirmation(confirmation) => {
                    let mut confirmation = confirmation.clone();
                    confirmation.request_id = record.request_id.clone(); // same UUID, maybe other case
                    Ok(fold::on_confirmation(
                        &record,
                        &confirmation,
                        self.policy.at_risk_days(),
                        now,
                    ))
                }
                Change::Command(command) => apply_command(&record, command, self.rules()),
            };
            outcomes.push(match next {
                Ok(Some(next)) => {
                    working.insert(key, next);
                    ChangeOutcome::Applied
                }
                Ok(None) => ChangeOutcome::Unchanged,
                Err(error) => ChangeOutcome::Refused(error.to_string()),
            });
        }
        self.commit_all(working.into_values().collect()).await?;
        Ok(outcomes)
    }

    /// Opens the records of `requests` (one write per request not yet on record, awaited
    /// together); answers, for each request in order, the record opened or `None` when it was
    /// already on record.
    pub async fn record_requests(
        &self,
        requests: &[PrivacyRequest],
        now: EpochMillis,
    ) -> Result<Vec<Option<AuditRecord>>, WriteError> {
        let _guards = self
            .lock_stripes(requests.iter().map(|r| r.request_id.as_str()))
            .await;
        let mut opened: HashMap<String, AuditRecord> = HashMap::new();
        let mut outcomes = Vec::with_capacity(requests.len());
        for request in requests {
            let key = request_key(&request.request_id);
            // Whether it is on record is all opening needs: a summary answers it.
            let record = if opened.contains_key(&key) || self.store.contains(&key) {
                None
            } else {
                fold::on_request(None, request, &self.recipients, &self.policy, now)
            };
            if let Some(record) = &record {
                opened.insert(key, record.clone());
            }
            outcomes.push(record);
        }
        self.commit_all(opened.into_values().collect()).await?;
        Ok(outcomes)
    }

    /// Publishes `command` for the replica that owns the request and waits, at most the
    /// configured wait, for the change to be on the record. The change is first checked
    /// against this replica's view, so a refusal is answered without publishing; a refusal
    /// met by the owner (another change came first) is answered too when it shows here within
    /// the wait. The command's subject key is taken from the record.
    ///
    /// An auditor built without [`Auditor::with_commands`] is the only writer of its records
    /// (one process: tests, an embedded auditor): it applies the command in place, through the
    /// same fold as an owner. [`run`] always publishes.
    pub async fn submit(&self, mut command: AuditorCommand) -> Result<Submitted, ChangeError> {
        let mut changes = self.store.changes();
        let record = self
            .store
            .record(&command.request_id)
            .await?
            .ok_or(ChangeError::NotFound)?;
        command.request_id = record.request_id.clone();
        command.subject_key = record.subject_key.clone();
        if self.settled(&record, &command)?.is_some() {
            return Ok(Submitted::Unchanged(Box::new(record)));
        }
        let Some(sink) = &self.commands else {
            let change = Change::Command(Box::new(command.clone()));
            let outcome = self.apply_changes(&[change], now_millis()).await?;
            return match outcome.into_iter().next() {
                Some(ChangeOutcome::Applied) => self
                    .store
                    .get(&command.request_id)
                    .map(|r| Submitted::Applied(Box::new(r)))
                    .ok_or(ChangeError::NotFound),
                _ => {
                    // Another change came first: answer what the record says now.
                    let record = self
                        .store
                        .get(&command.request_id)
                        .ok_or(ChangeError::NotFound)?;
                    self.settled(&record, &command)?
                        .map(|_| Submitted::Unchanged(Box::new(record)))
                        .ok_or_else(|| WriteError("the change was not applied".into()).into())
                }
            };
        };
        sink.publish(&command).await?;
        let until = tokio::time::Instant::now() + self.command_wait;
        let mut seen = None;
        loop {
            // A record not held here is read back only when a newer version is on record.
            let (_, at) = self
                .store
                .summary(&command.request_id)
                .ok_or(ChangeError::NotFound)?;
            if seen != Some(at) {
                seen = Some(at);
                let record = self
                    .store
                    .record(&command.request_id)
                    .await?
                    .ok_or(ChangeError::NotFound)?;
                if let Some(settled) = self.settled(&record, &command)? {
                    return Ok(settled);
                }
            }
            match tokio::time::timeout_at(until, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    return Ok(Submitted::Accepted {
                        command_id: command.command_id,
                    })
                }
            }
        }
    }

    /// `Some` when `record` already shows `command` (or shows that it changes nothing); an
    /// error when the command can never apply to it.
    fn settled(
        &self,
        record: &AuditRecord,
        command: &AuditorCommand,
    ) -> Result<Option<Submitted>, ChangeError> {
        match apply_command(record, command, self.rules()) {
            Ok(None) => Ok(Some(Submitted::Applied(Box::new(record.clone())))),
            Ok(Some(_)) => Ok(None),
            Err(CommandError::Refused(refusal)) => Err(ChangeError::Refused(refusal)),
            Err(error @ CommandError::Incomplete { .. }) => {
                Err(ChangeError::Write(WriteError(error.to_string())))
            }
        }
    }

    /// Locks the stripes of every request id given, in stripe order (so two batches never
    /// wait on each other crosswise).
    async fn lock_stripes<'a>(
        &self,
        request_ids: impl Iterator<Item = &'a str>,
    ) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        let mut indices: Vec<usize> = request_ids.map(stripe_index).collect();
        indices.sort_unstable();
        indices.dedup();
        let mut guards = Vec::with_capacity(indices.len());
        for index in indices {
            guards.push(self.stripes[index].lock().await);
        }
        guards
    }

    /// Writes every record, all at once, and stores those acknowledged; fails when any was not.
    async fn commit_all(&self, records: Vec<AuditRecord>) -> Result<(), WriteError> {
        let written = join_all(records.iter().map(|r| self.writer.write(r))).await;
        let mut failed = None;
        for (record, at) in records.into_iter().zip(written) {
            match at {
                Ok(at) => {
                    self.store.put(record, at);
                }
                Err(error) => failed = Some(error),
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

/// The lock stripe of a request id.
fn stripe_index(request_id: &str) -> usize {
    let mut hasher = DefaultHasher::new();
    request_key(request_id).hash(&mut hasher);
    (hasher.finish() % STRIPES as u64) as usize
}

pub(crate) async fn decode<T: AvroEvent>(
    codec: &AvroCodec,
    message: &IncomingMessage,
) -> Result<T, HandlerError> {
    let payload = message.payload.as_deref().unwrap_or_default();
    codec.decode(payload).await.map_err(|e| {
        if e.is_retryable() {
            HandlerError::Retryable(e.to_string())
        } else {
            HandlerError::Permanent(e.to_string())
        }
    })
}

pub(crate) fn retryable(error: WriteError) -> HandlerError {
    HandlerError::Retryable(error.to_string())
}

/// Opens an audit record for every request, a batch at a time: the batch's new records are
/// produced together and awaited once, before the offsets are stored. An undecodable request
/// is dead-lettered on its own once the rest of the batch went through. After each rebalance
/// it first reads the audit topic up to its end, as the confirmations' owner does: a request
/// re-delivered to this replica (its previous holder opened the record, maybe completed since,
/// but did not commit the offset) then finds its record and leaves it as it is, instead of
/// opening it afresh over the confirmations on record.
struct RequestBatches {
    auditor: Arc<Auditor>,
    codec: AvroCodec,
    dlq: DeadLetterQueue,
    handoff: Handoff,
}

#[async_trait]
impl BatchHandler for RequestBatches {
    async fn handle_batch(&self, batch: &[IncomingMessage]) -> Result<(), HandlerError> {
        self.handoff
            .settle(self.auditor.store())
            .await
            .map_err(HandlerError::Retryable)?;
        let decoded = join_all(
            batch
                .iter()
                .map(|m| decode::<PrivacyRequest>(&self.codec, m)),
        )
        .await;
        let mut requests = Vec::with_capacity(batch.len());
        let mut unusable = Vec::new();
        for (message, decoded) in batch.iter().zip(decoded) {
            match decoded {
                Ok(request) => requests.push(request),
                Err(HandlerError::Permanent(reason)) => unusable.push((message, reason)),
                Err(error) => return Err(error),
            }
        }
        let opened = self
            .auditor
            .record_requests(&requests, now_millis())
            .await
            .map_err(retryable)?;
        for (request, record) in requests.iter().zip(opened) {
            match record {
                Some(record) => tracing::info!(
                    request_id = %record.request_id,
                    kind = record.kind.as_str(),
                    required = record.required_connectors.len(),
                    status = crate::status::status_symbol(record.status),
                    "audit record opened"
                ),
                None => {
                    tracing::debug!(request_id = %request.request_id, "request already on record")
                }
            }
        }
        dead_letter(&self.dlq, unusable, "request").await
    }
}

/// Requests opened per consumed batch.
const REQUEST_BATCH: usize = 256;
/// Confirmations and commands folded per consumed batch.
const CHANGE_BATCH: usize = 256;
/// How long a batch waits to fill after its first message.
const BATCH_LINGER: Duration = Duration::from_millis(5);

/// Dead-letters each message with its reason.
async fn dead_letter(
    dlq: &DeadLetterQueue,
    unusable: Vec<(&IncomingMessage, String)>,
    what: &str,
) -> Result<(), HandlerError> {
    for (message, reason) in unusable {
        tracing::warn!(%reason, what, "dead-lettering");
        dlq.send(message, &reason)
            .await
            .map_err(|e| HandlerError::Retryable(e.to_string()))?;
    }
    Ok(())
}

/// Where a message was read: topic, partition, offset.
type MessageId = (String, i32, i64);

/// The clocks of the confirmations waiting for their requests.
struct Waiting {
    grace: Duration,
    since: std::sync::Mutex<HashMap<MessageId, Instant>>,
}

impl Waiting {
    fn new(grace: Duration) -> Self {
        Self {
            grace,
            since: std::sync::Mutex::default(),
        }
    }

    /// Whether `message` has waited longer than the grace period; starts its clock on the first
    /// call.
    fn expired(&self, message: &IncomingMessage, now: Instant) -> bool {
        let mut since = self.since.lock().expect("waiting lock");
        let started = since.entry(message_id(message)).or_insert(now);
        now.duration_since(*started) > self.grace
    }

    /// Stops the clock of `message` (it was applied or dead-lettered).
    fn forget(&self, message: &IncomingMessage) {
        self.since
            .lock()
            .expect("waiting lock")
            .remove(&message_id(message));
    }
}

fn message_id(message: &IncomingMessage) -> MessageId {
    (message.topic.clone(), message.partition, message.offset)
}

/// The owner's fold: confirmations and commands of the partitions this replica holds, a batch
/// at a time, in the order consumed (see [`Auditor::apply_changes`]). Before the first batch
/// after a rebalance it reads the audit topic up to its end, so a partition taken over from
/// another replica is folded onto that replica's last writes. A message that can never apply
/// (undecodable, a confirmation whose request never came, a refused command) is dead-lettered
/// on its own with its reason, once no other message of the batch needs a retry; a transient
/// failure retries the batch, where what was already applied changes nothing.
struct OwnerBatches {
    auditor: Arc<Auditor>,
    codec: AvroCodec,
    commands_topic: String,
    waiting: Waiting,
    backlog: RequestsBacklog,
    handoff: Handoff,
    dlq: DeadLetterQueue,
}

impl OwnerBatches {
    async fn decode(&self, message: &IncomingMessage) -> Result<Change, HandlerError> {
        if message.topic == self.commands_topic {
            decode(&self.codec, message)
                .await
                .map(|c| Change::Command(Box::new(c)))
        } else {
            decode(&self.codec, message).await.map(Change::Confirmation)
        }
    }

    /// What to do with a change whose request was not on record when it was applied: wait for
    /// it while the requests group has a backlog and the grace period runs, dead-letter it
    /// otherwise.
    async fn not_seen(&self, message: &IncomingMessage, change: &Change) -> HandlerError {
        let caught_up = self.backlog.caught_up().await;
        // The requests group commits a request only once its record is in the store, so a
        // record opened between this batch's apply and the backlog probe is in the store now.
        let opened_since = caught_up && self.auditor.store().contains(change.request_id());
        let expired = self.waiting.expired(message, Instant::now());
        match orphan_verdict(caught_up, opened_since, expired) {
            OrphanVerdict::Retry => {
                HandlerError::Retryable(format!("request {} not seen yet", change.request_id()))
            }
            OrphanVerdict::DeadLetter(why) => {
                self.waiting.forget(message);
                let from = match change {
                    Change::Confirmation(c) => format!("confirmation from {}", c.connector_id),
                    Change::Command(c) => format!("{} command {}", c.action.as_str(), c.command_id),
                };
                HandlerError::Permanent(format!(
                    "{from} for request {} that is not on record ({why})",
                    change.request_id(),
                ))
            }
        }
    }
}

/// What becomes of a change whose request was not on record when it was applied.
#[derive(Debug, PartialEq, Eq)]
enum OrphanVerdict {
    /// Apply it again later: its request may still come (or just came).
    Retry,
    /// Its request will not come: dead-letter it, saying why.
    DeadLetter(&'static str),
}

/// The verdict on an orphan change from what is known after it was applied: whether every
/// request has been consumed (`caught_up`), whether its record was opened since
/// (`opened_since`: the batch raced the request) and whether its grace period ran out.
fn orphan_verdict(caught_up: bool, opened_since: bool, expired: bool) -> OrphanVerdict {
    if opened_since {
        OrphanVerdict::Retry
    } else if caught_up {
        OrphanVerdict::DeadLetter("every request has been consumed")
    } else if expired {
        OrphanVerdict::DeadLetter("not seen within the grace period")
    } else {
        OrphanVerdict::Retry
    }
}

#[async_trait]
impl BatchHandler for OwnerBatches {
    async fn handle_batch(&self, batch: &[IncomingMessage]) -> Result<(), HandlerError> {
        let store = self.auditor.store();
        self.handoff
            .settle(store)
            .await
            .map_err(HandlerError::Retryable)?;
        // What was held before a rebalance is given up here, in the consumer's order, before
        // this batch claims its partitions: `release_on_rebalance` does it too, but as a task
        // of its own it may run only after a first batch claimed them, and undo that claim.
        if let Some(counts) = self.handoff.take_rebalance() {
            store.release_all(owner_partitions(counts));
        }
        // This replica is assigned the partitions it reads from (until the next rebalance,
        // when `release_on_rebalance` gives them all up).
        for message in batch {
            store.own(message.partition);
        }
        let decoded = join_all(batch.iter().map(|m| self.decode(m))).await;
        let mut changes = Vec::with_capacity(batch.len());
        let mut unusable = Vec::new();
        for (message, decoded) in batch.iter().zip(decoded) {
            match decoded {
                Ok(change) => changes.push((message, change)),
                Err(HandlerError::Permanent(reason)) => unusable.push((message, reason)),
                Err(error) => return Err(error),
            }
        }
        let only: Vec<Change> = changes.iter().map(|(_, c)| c.clone()).collect();
        let outcomes = self
            .auditor
            .apply_changes(&only, now_millis())
            .await
            .map_err(retryable)?;
        let mut retry = None;
        for ((message, change), outcome) in changes.iter().zip(outcomes) {
            match outcome {
                ChangeOutcome::Applied => {
                    self.waiting.forget(message);
                    note_applied(&self.auditor, change);
                }
                ChangeOutcome::Unchanged => {
                    self.waiting.forget(message);
                    tracing::debug!(request_id = %change.request_id(), "change alters nothing");
                }
                ChangeOutcome::Refused(reason) => {
                    self.waiting.forget(message);
                    unusable.push((message, reason));
                }
                ChangeOutcome::RequestNotSeen => match self.not_seen(message, change).await {
                    HandlerError::Permanent(reason) => unusable.push((message, reason)),
                    error => retry = Some(error),
                },
            }
        }
        if let Some(error) = retry {
            return Err(error);
        }
        dead_letter(&self.dlq, unusable, "change").await
    }
}

/// At every rebalance of the owner group, gives up the partitions the store holds in full
/// (the owner's next batches say again which it has) and tells it the partition count: the
/// group reads the confirmations and the commands, which have as many partitions (checked at
/// start-up), so each has half of those the rebalance counted.
async fn release_on_rebalance(
    store: Arc<AuditStore>,
    mut rebalances: tokio::sync::watch::Receiver<hush_runtime::kafka::PartitionCounts>,
    stop: CancellationToken,
) {
    let release = |counts| store.release_all(owner_partitions(counts));
    let told = *rebalances.borrow_and_update();
    if told.total > 0 {
        release(told);
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = rebalances.changed() => {
                if changed.is_err() {
                    return;
                }
                let counts = *rebalances.borrow_and_update();
                release(counts);
                tracing::info!(
                    assigned = counts.assigned,
                    partitions = counts.total / 2,
                    "owner group rebalanced: records held in full released until read again"
                );
            }
        }
    }
}

/// The confirmations topic's partition count after a rebalance of the owner group, which
/// reads it and the commands topic, which has as many partitions.
fn owner_partitions(counts: hush_runtime::kafka::PartitionCounts) -> u32 {
    u32::try_from(counts.total / 2).unwrap_or(0)
}

/// Counts and logs one applied change.
fn note_applied(auditor: &Auditor, change: &Change) {
    match change {
        Change::Confirmation(confirmation) => {
            metrics::CONFIRMATIONS
                .with_label_values(&[
                    confirmation.connector_id.as_str(),
                    confirmation.action.as_str(),
                ])
                .inc();
            tracing::info!(
                request_id = %confirmation.request_id,
                connector = %confirmation.connector_id,
                action = confirmation.action.as_str(),
                "confirmation recorded"
            );
        }
        Change::Command(command) => match (&command.action, &command.leak) {
            (AuditorCommandAction::Leak, Some(leak)) => {
                metrics::LEAKS
                    .with_label_values(&[leak.source_topic.as_str()])
                    .inc();
                tracing::warn!(
                    request_id = %command.request_id,
                    topic = %leak.source_topic,
                    partition = leak.source_partition,
                    offset = leak.source_offset,
                    "leak recorded: data flowed after the suppression took effect"
                );
            }
            (AuditorCommandAction::Prove, _) => {
                if let Some(record) = auditor.store().get(&command.request_id) {
                    metrics::observe_proven(&record, now_millis());
                }
                tracing::info!(request_id = %command.request_id, "request proven");
            }
            _ => tracing::info!(
                request_id = %command.request_id,
                command_id = %command.command_id,
                action = command.action.as_str(),
                actor = %command.actor,
                "command applied"
            ),
        },
    }
}

/// Makes a consumer (the owner's, the requests') wait, after each rebalance, until the audit
/// records read from the topic reach the topic's end as it was then: the replica that held a
/// partition before wrote its last versions before giving it up, and they must be folded onto,
/// not overwritten.
struct Handoff {
    rebalances:
        std::sync::Mutex<tokio::sync::watch::Receiver<hush_runtime::kafka::PartitionCounts>>,
    /// A rebalance was seen and the topic not yet read to its end since.
    pending: std::sync::atomic::AtomicBool,
    /// The latest rebalance seen, until [`Handoff::take_rebalance`] takes it.
    unreleased: std::sync::Mutex<Option<hush_runtime::kafka::PartitionCounts>>,
    ends: Arc<AuditEnds>,
    audit_topic: String,
}

/// Asks the broker where the audit topic ends (blocking): `(partition, offset of its last
/// record)` for each non-empty partition.
type AuditEnds = dyn Fn() -> Result<Vec<(i32, i64)>, String> + Send + Sync;

/// Longest a batch waits for the audit topic to be read to its end after a rebalance before
/// it is retried.
const HANDOFF_WAIT: Duration = Duration::from_secs(30);

impl Handoff {
    fn new(
        kafka: &hush_runtime::config::KafkaConfig,
        rebalances: tokio::sync::watch::Receiver<hush_runtime::kafka::PartitionCounts>,
        audit_topic: &str,
    ) -> Result<Self, ConfigError> {
        let watermarks = hush_runtime::kafka::client_config(kafka)?
            .set(
                "group.id",
                format!("{CLIENT_ID}-handoff-{}", uuid::Uuid::new_v4()),
            )
            .set("enable.auto.commit", "false")
            .create::<rdkafka::consumer::BaseConsumer>()
            .map_err(|e| ConfigError::Invalid(format!("kafka watermark reader: {e}")))?;
        let topic = audit_topic.to_owned();
        Ok(Self::with_ends(
            rebalances,
            audit_topic,
            Arc::new(move || audit_ends(&watermarks, &topic)),
        ))
    }

    /// A handoff that learns where the audit topic ends from `ends`.
    fn with_ends(
        rebalances: tokio::sync::watch::Receiver<hush_runtime::kafka::PartitionCounts>,
        audit_topic: &str,
        ends: Arc<AuditEnds>,
    ) -> Self {
        Self {
            rebalances: std::sync::Mutex::new(rebalances),
            pending: std::sync::atomic::AtomicBool::new(false),
            unreleased: std::sync::Mutex::new(None),
            ends,
            audit_topic: audit_topic.to_owned(),
        }
    }

    /// Returns at once unless a rebalance happened since the last call; then waits until the
    /// store has read the audit topic up to the end offsets it has now.
    async fn settle(&self, store: &AuditStore) -> Result<(), String> {
        use std::sync::atomic::Ordering;
        let rebalanced = {
            let mut rebalances = self.rebalances.lock().expect("rebalances lock");
            let changed = rebalances.has_changed().unwrap_or(false);
            if changed {
                let counts = *rebalances.borrow_and_update();
                *self.unreleased.lock().expect("unreleased lock") = Some(counts);
            }
            changed
        };
        if rebalanced {
            self.pending.store(true, Ordering::SeqCst);
        } else if !self.pending.load(Ordering::SeqCst) {
            return Ok(());
        }
        let ends = self.ends.clone();
        let ends = tokio::task::spawn_blocking(move || ends())
            .await
            .map_err(|e| e.to_string())??;
        let until = tokio::time::Instant::now() + HANDOFF_WAIT;
        let mut changes = store.changes();
        while !ends
            .iter()
            .all(|&(partition, last)| store.has_followed(partition, last))
        {
            if tokio::time::timeout_at(until, changes.changed())
                .await
                .is_err()
            {
                return Err(format!(
                    "the audit topic {} was not read to its end within {HANDOFF_WAIT:?} after a rebalance",
                    self.audit_topic
                ));
            }
        }
        self.pending.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// The partition counts of the latest rebalance [`Handoff::settle`] saw, once: the first
    /// batch after a rebalance learns of it here.
    fn take_rebalance(&self) -> Option<hush_runtime::kafka::PartitionCounts> {
        self.unreleased.lock().expect("unreleased lock").take()
    }
}

/// The offset of the last record of each non-empty partition of `topic`.
fn audit_ends(
    consumer: &rdkafka::consumer::BaseConsumer,
    topic: &str,
) -> Result<Vec<(i32, i64)>, String> {
    use rdkafka::consumer::Consumer;
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("metadata of {topic}: {e}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut ends = Vec::new();
    for partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, timeout)
            .map_err(|e| format!("watermarks of {topic}/{partition}: {e}"))?;
        if high > low {
            ends.push((partition, high - 1));
        }
    }
    Ok(ends)
}

/// Rebuilds the audit records, starts both consumers and serves HTTP on
/// `config.auditor.listen` until `shutdown` is cancelled (or the server fails); then stops the
/// consumers, which commit their offsets, and flushes the producer.
pub async fn run(
    config: Config,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.validate()?;
    let common = &config.common;
    let codec = AvroCodec::from_config(&common.schema_registry)?;
    let producer = EventProducer::new(&common.kafka, codec.clone(), CLIENT_ID)?;
    // Each replica holds in full only the records of the confirmations partitions its owner
    // consumer is assigned (told at each rebalance) and reads any other back from the topic.
    let fetcher = KafkaRecordFetch::new(
        &common.kafka,
        &common.topics.audit,
        codec.clone(),
        Duration::from_millis(config.auditor.record_fetch_timeout_ms.max(1)),
    )?;
    let store = Arc::new(AuditStore::partitioned(0, Arc::new(fetcher)));
    readiness.require("audit rebuilt", store.rebuilt_flag());
    let writer = Arc::new(KafkaAuditWriter::new(
        producer.clone(),
        common.topics.audit.clone(),
    ));
    let auditor = Arc::new(
        Auditor::new(
            store,
            writer,
            config.deadlines.clone(),
            config.recipients.clone(),
            ProofSettings {
                watched_topics: config.gate.watched_topics(),
                window_ms: i64::try_from(config.auditor.observation_window_secs)
                    .unwrap_or(i64::MAX / 1000)
                    .saturating_mul(1000),
            },
        )
        .with_redrive(RedriveTarget {
            kafka: common.kafka.clone(),
            topics: common.topics.clone(),
            codec: codec.clone(),
            producer: producer.clone(),
        })
        .with_commands(
            Arc::new(KafkaCommandSink::new(
                producer.clone(),
                common.topics.auditor_commands.clone(),
            )),
            Duration::from_millis(config.auditor.command_wait_ms),
        ),
    );
    let stop = shutdown.child_token();
    let auth = Arc::new(Authenticator::new(&config.auth, shutdown.clone()).await?);
    let router = guard::harden(api::router(auditor.clone(), auth), &config.http)
        .merge(ops::router(readiness.clone()));
    let mut http = tokio::spawn(ops::serve(
        config.auditor.listen.clone(),
        router,
        stop.clone(),
    ));
    let started = tokio::select! {
        served = &mut http => {
            stop.cancel();
            return served?;
        }
        started = start(&config, &codec, &producer, &auditor, &readiness, &stop) => started,
    };
    let tasks = match started {
        Ok(tasks) => tasks,
        Err(error) => {
            stop.cancel();
            let _ = http.await;
            return Err(error);
        }
    };
    let served = http.await;
    stop.cancel();
    for task in tasks {
        let _ = task.await;
    }
    producer.flush(Duration::from_secs(5));
    tracing::info!("auditor stopped");
    served?
}

/// Subscribes the consumers, rebuilds the store, then spawns the follower, the consumers and
/// the metrics refresher.
async fn start(
    config: &Config,
    codec: &AvroCodec,
    producer: &EventProducer,
    auditor: &Arc<Auditor>,
    readiness: &Readiness,
    stop: &CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let (common, section) = (&config.common, &config.auditor);
    let dlq = DeadLetterQueue::new(producer.clone(), common.topics.dlq.clone(), CLIENT_ID);
    let consumer = |suffix: &str, topics: &[&String]| {
        EventConsumer::new(
            &common.kafka,
            ConsumerSettings {
                group_id: format!("{}-{suffix}", section.group_id),
                topics: topics.iter().map(|t| (*t).clone()).collect(),
                client_id: format!("{CLIENT_ID}-{suffix}"),
            },
            dlq.clone(),
        )
    };
    {
        let (kafka, topics, stop) = (common.kafka.clone(), common.topics.clone(), stop.clone());
        tokio::task::spawn_blocking(move || same_partitions(&kafka, &topics, &stop)).await??;
    }
    let requests = consumer("requests", &[&common.topics.requests])?;
    readiness.require("requests consumer assigned", requests.assigned_flag());
    // One group reads both: the replica holding partition p of the confirmations holds
    // partition p of the commands (the range assignor gives each member the same partition
    // numbers of topics with as many partitions), so it alone writes those requests' records.
    let confirmations = consumer(
        "confirmations",
        &[
            &common.topics.confirmations,
            &common.topics.auditor_commands,
        ],
    )?;
    readiness.require(
        "confirmations consumer assigned",
        confirmations.assigned_flag(),
    );
    let leaks = consumer("leaks", &[&common.topics.leaks])?;
    readiness.require("leaks consumer assigned", leaks.assigned_flag());
    readiness.require("requests consumer flowing", requests.flowing_flag());
    readiness.require(
        "confirmations consumer flowing",
        confirmations.flowing_flag(),
    );
    readiness.require("leaks consumer flowing", leaks.flowing_flag());
    readiness.started();

    let store = auditor.store().clone();
    // Reading the topic's metadata blocks; keep it off the runtime's workers.
    let (kafka, topic, until) = (
        common.kafka.clone(),
        common.topics.audit.clone(),
        stop.clone(),
    );
    let reader =
        tokio::task::spawn_blocking(move || TopicTable::open(&kafka, &topic, CLIENT_ID, &until))
            .await??;
    let count = reader
        .catch_up(|message| store.apply(codec, message))
        .await?;
    store.mark_rebuilt();
    tracing::info!(
        records = count,
        requests = store.len(),
        "audit records rebuilt"
    );
    let at_risk_days = auditor.policy().at_risk_days();
    let provable = !auditor.proof_settings().watched_topics.is_empty();
    metrics::refresh(&store, now_millis(), at_risk_days, provable);

    let mut tasks = Vec::new();
    {
        let (store, codec, stop) = (store.clone(), codec.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            reader
                .follow(stop, |message| store.apply(&codec, message))
                .await
        }));
    }
    let requests_handoff = Handoff::new(
        &common.kafka,
        requests.partition_counts(),
        &common.topics.audit,
    )?;
    tasks.push(tokio::spawn(requests.run_batches(
        stop.clone(),
        REQUEST_BATCH,
        BATCH_LINGER,
        RequestBatches {
            auditor: auditor.clone(),
            codec: codec.clone(),
            dlq: dlq.clone(),
            handoff: requests_handoff,
        },
    )));
    let handoff = Handoff::new(
        &common.kafka,
        confirmations.partition_counts(),
        &common.topics.audit,
    )?;
    tasks.push(tokio::spawn(release_on_rebalance(
        store.clone(),
        confirmations.partition_counts(),
        stop.clone(),
    )));
    tasks.push(tokio::spawn(confirmations.run_batches(
        stop.clone(),
        CHANGE_BATCH,
        BATCH_LINGER,
        OwnerBatches {
            auditor: auditor.clone(),
            codec: codec.clone(),
            commands_topic: common.topics.auditor_commands.clone(),
            waiting: Waiting::new(Duration::from_secs(section.unseen_request_grace_secs)),
            backlog: RequestsBacklog::new(
                &common.kafka,
                &format!("{}-requests", section.group_id),
                &common.topics.requests,
            )?,
            handoff,
            dlq: dlq.clone(),
        },
    )));
    tasks.push(tokio::spawn(leaks.run(
        stop.clone(),
        LeakHandler {
            auditor: auditor.clone(),
            codec: codec.clone(),
            backlog: RequestsBacklog::new(
                &common.kafka,
                &format!("{}-requests", section.group_id),
                &common.topics.requests,
            )?,
        },
    )));
    tasks.extend(proof::start(
        auditor,
        common,
        codec,
        Duration::from_secs(section.prove_interval_secs.max(1)),
        stop,
    )?);
    tasks.push(crate::canary::follow(
        auditor.canaries().clone(),
        common,
        codec,
        stop.clone(),
    ));
    tasks.push(tokio::spawn(refresh_metrics(auditor.clone(), stop.clone())));
    Ok(tasks)
}

/// Checks that the commands topic has as many partitions as the confirmations topic: the
/// replica that owns a request's confirmations must own its commands too. A broker that does
/// not answer is waited for ([`hush_runtime::kafka::startup::wait_for_broker`]); the auditor
/// is not ready meanwhile.
fn same_partitions(
    kafka: &hush_runtime::config::KafkaConfig,
    topics: &hush_runtime::config::TopicsConfig,
    stop: &CancellationToken,
) -> Result<(), ConfigError> {
    use hush_runtime::kafka::startup::{topic_partitions, wait_for_broker};
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let client: BaseConsumer = hush_runtime::kafka::client_config(kafka)?
        .create()
        .map_err(|e| ConfigError::Invalid(format!("kafka metadata client: {e}")))?;
    let count = |topic: &str| topic_partitions(client.client(), topic).map(|p| p.len());
    let (confirmations, commands) = wait_for_broker("the auditor's partition check", stop, || {
        Ok((
            count(&topics.confirmations)?,
            count(&topics.auditor_commands)?,
        ))
    })?;
    if confirmations != commands {
        return Err(ConfigError::Invalid(format!(
            "topics.auditor_commands ({}) has {commands} partitions and topics.confirmations ({}) \
             {confirmations}: they must have as many, so one replica owns a request's \
             confirmations and its commands",
            topics.auditor_commands, topics.confirmations
        )));
    }
    Ok(())
}

/// Recomputes the gauges that depend on the time (statuses, headroom, ages) every
/// [`METRICS_REFRESH`].
async fn refresh_metrics(auditor: Arc<Auditor>, stop: CancellationToken) {
    let at_risk_days = auditor.policy().at_risk_days();
    let provable = !auditor.proof_settings().watched_topics.is_empty();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(METRICS_REFRESH) => {
                let now = now_millis();
                metrics::refresh(auditor.store(), now, at_risk_days, provable);
                auditor.canaries().refresh_ages(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(offset: i64) -> IncomingMessage {
        IncomingMessage {
            topic: "hush.confirmations.v1".into(),
            partition: 1,
            offset,
            key: None,
            payload: None,
            headers: vec![],
            timestamp_ms: None,
        }
    }

    /// Counts the writes of the audit topic and answers increasing offsets.
    #[derive(Default)]
    struct CountingWriter {
        written: std::sync::Mutex<Vec<AuditRecord>>,
    }

    #[async_trait]
    impl AuditWriter for CountingWriter {
        async fn write(&self, record: &AuditRecord) -> Result<crate::store::Position, WriteError> {
            let mut written = self.written.lock().unwrap();
            written.push(record.clone());
            Ok(crate::store::Position {
                partition: 0,
                offset: written.len() as i64,
            })
        }
    }

    fn auditor(writer: Arc<CountingWriter>) -> Auditor {
        let recipients: Vec<RecipientConfig> = ["crm", "ads"]
            .iter()
            .map(|id| {
                toml::from_str(&format!(
                    "id = \"{id}\"\nkind = \"webhook\"\nrole = \"THIRD_PARTY\"\nbase_url = \"http://x\"\n"
                ))
                .unwrap()
            })
            .collect();
        Auditor::new(
            Arc::default(),
            writer,
            DeadlineConfig::default(),
            recipients,
            ProofSettings::default(),
        )
    }

    /// A read-back that never answers (the rebalance test reads nothing back).
    struct NoTopic;

    #[async_trait]
    impl crate::store::RecordFetch for NoTopic {
        async fn fetch(
            &self,
            _: crate::store::Position,
        ) -> Result<Option<AuditRecord>, FetchError> {
            Err(FetchError::NoFetcher)
        }
    }

    #[tokio::test]
    async fn a_rebalance_of_the_owner_group_releases_the_held_records_and_tells_the_partition_count(
    ) {
        let store = Arc::new(AuditStore::partitioned(0, Arc::new(NoTopic)));
        let record = fold::record_for_request(&request(1), &[], &DeadlinePolicy::default(), 1);
        let partition = (crate::store::owner::key_hash(record.subject_key.as_bytes()) % 3) as i32;
        let at = |offset| crate::store::Position {
            partition: 0,
            offset,
        };
        store.own(partition);
        store.put(record.clone(), at(1));
        assert_eq!(store.held(), 0, "no partition count yet: nothing is held");
        let (rebalances, receiver) =
            tokio::sync::watch::channel(hush_runtime::kafka::PartitionCounts::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn(release_on_rebalance(store.clone(), receiver, stop.clone()));
        rebalances.send_replace(hush_runtime::kafka::PartitionCounts {
            assigned: 2,
            total: 6,
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        store.own(partition);
        store.put(record.clone(), at(2));
        assert_eq!(store.held(), 1, "3 partitions told: the owned one is held");
        rebalances.send_replace(hush_runtime::kafka::PartitionCounts {
            assigned: 1,
            total: 6,
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.held(), 0, "released at the next rebalance");
        store.put(record, at(3));
        assert_eq!(
            store.held(),
            0,
            "until a batch says the partition is owned again"
        );
        stop.cancel();
        task.await.unwrap();
    }

    fn request(n: u128) -> PrivacyRequest {
        PrivacyRequest {
            request_id: uuid::Uuid::from_u128(n).to_string(),
            subject_key: format!("{n:064x}"),
            kind: hush_contracts::events::RequestKind::Delete,
            channel: hush_contracts::events::Channel::Api,
            jurisdiction: "US-CA".into(),
            received_at: now_millis(),
            identifiers: Vec::new(),
            categories: vec![hush_contracts::events::Category::All],
            verification: None,
            age_band: None,
            source_system: "test".into(),
            consumer_initiated: true,
            idempotency_key: None,
            resolution: Vec::new(),
        }
    }

    fn confirmation(n: u128, connector: &str) -> Change {
        Change::Confirmation(Confirmation {
            request_id: uuid::Uuid::from_u128(n).to_string(),
            subject_key: format!("{n:064x}"),
            connector_id: connector.into(),
            role: hush_contracts::events::RecipientRole::ThirdParty,
            action: hush_contracts::events::ConfirmationAction::Deleted,
            exception_basis: None,
            attempts: 1,
            first_attempt_at: None,
            last_attempt_at: None,
            completed_at: now_millis(),
            verification: hush_contracts::events::VerificationStatus::Unverifiable,
            evidence: HashMap::new(),
        })
    }

    #[tokio::test]
    async fn a_batch_of_requests_writes_each_new_record_once_and_skips_those_on_record() {
        let writer = Arc::new(CountingWriter::default());
        let auditor = auditor(writer.clone());
        let first = auditor
            .record_requests(&[request(1), request(2), request(1)], now_millis())
            .await
            .unwrap();
        assert_eq!(
            first.iter().map(Option::is_some).collect::<Vec<_>>(),
            [true, true, false],
            "a request twice in one batch opens one record"
        );
        assert_eq!(writer.written.lock().unwrap().len(), 2);
        let again = auditor
            .record_requests(&[request(2), request(3)], now_millis())
            .await
            .unwrap();
        assert_eq!(
            again.iter().map(Option::is_some).collect::<Vec<_>>(),
            [false, true]
        );
        assert_eq!(writer.written.lock().unwrap().len(), 3);
        assert_eq!(auditor.store().len(), 3);
    }

    #[tokio::test]
    async fn a_batch_of_changes_folds_in_order_and_writes_each_record_once() {
        let writer = Arc::new(CountingWriter::default());
        let auditor = auditor(writer.clone());
        auditor
            .record_requests(&[request(1), request(2)], now_millis())
            .await
            .unwrap();
        let mut denial = crate::api::command(
            &uuid::Uuid::from_u128(1).to_string(),
            AuditorCommandAction::Denial,
            "lead",
        );
        denial.reason = Some("not verifiable".into());
        let mut resolution = crate::api::command(
            &uuid::Uuid::from_u128(1).to_string(),
            AuditorCommandAction::Resolution,
            "ops",
        );
        resolution.connector_id = Some("ads".into());
        resolution.resolution = Some(hush_contracts::commands::OutOfBandResolution {
            resolved_by: "ads support".into(),
            note: "ticket".into(),
            attachment_sha256: None,
        });
        let batch = [
            confirmation(1, "crm"),
            confirmation(2, "crm"),
            Change::Command(Box::new(resolution)),
            confirmation(2, "ads"),
            Change::Command(Box::new(denial)),
            confirmation(9, "crm"),
            confirmation(1, "crm"),
        ];
        let outcomes = auditor.apply_changes(&batch, now_millis()).await.unwrap();
        assert_eq!(
            outcomes,
            [
                ChangeOutcome::Applied,
                ChangeOutcome::Applied,
                ChangeOutcome::Applied,
                ChangeOutcome::Applied,
                ChangeOutcome::Applied,
                ChangeOutcome::RequestNotSeen,
                ChangeOutcome::Unchanged,
            ]
        );
        assert_eq!(
            writer.written.lock().unwrap().len(),
            2 + 2,
            "two opened, then one write per record touched"
        );
        let one = auditor
            .store()
            .get(&uuid::Uuid::from_u128(1).to_string())
            .unwrap();
        let actors: Vec<_> = one.changes.iter().map(|c| c.actor.as_str()).collect();
        assert_eq!(actors, ["ops", "lead"], "in the order consumed");
        assert_eq!(one.connectors.len(), 2);
        assert!(one.denial_reason.is_some());
        // A resolution of a denied request, consumed after the denial, is refused by name.
        let mut late = crate::api::command(
            &uuid::Uuid::from_u128(1).to_string(),
            AuditorCommandAction::Resolution,
            "ops",
        );
        late.connector_id = Some("crm".into());
        late.resolution = Some(hush_contracts::commands::OutOfBandResolution {
            resolved_by: "crm support".into(),
            note: "ticket".into(),
            attachment_sha256: None,
        });
        let refused = auditor
            .apply_changes(&[Change::Command(Box::new(late))], now_millis())
            .await
            .unwrap();
        assert!(
            matches!(&refused[..], [ChangeOutcome::Refused(reason)] if reason.contains("denied")),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn without_a_commands_topic_a_change_is_applied_in_place_and_a_refusal_named() {
        let writer = Arc::new(CountingWriter::default());
        let auditor = auditor(writer.clone());
        auditor
            .record_requests(&[request(1)], now_millis())
            .await
            .unwrap();
        let id = uuid::Uuid::from_u128(1).to_string();
        let mut extension = crate::api::command(&id, AuditorCommandAction::Extension, "lead");
        extension.reason = Some("complex".into());
        let Submitted::Applied(record) = auditor.submit(extension.clone()).await.unwrap() else {
            panic!("applied in place");
        };
        assert!(record.extended);
        assert!(matches!(
            auditor.submit(extension.clone()).await,
            Ok(Submitted::Unchanged(_))
        ));
        extension.command_id = uuid::Uuid::new_v4().to_string();
        extension.issued_at += 1;
        assert!(matches!(
            auditor.submit(extension).await,
            Err(ChangeError::Refused(Refusal::AlreadyExtended))
        ));
    }

    /// Keeps the commands published.
    #[derive(Default)]
    struct RecordingSink {
        published: std::sync::Mutex<Vec<AuditorCommand>>,
    }

    #[async_trait]
    impl CommandSink for RecordingSink {
        async fn publish(&self, command: &AuditorCommand) -> Result<(), WriteError> {
            self.published.lock().unwrap().push(command.clone());
            Ok(())
        }
    }

    fn leak(n: u128) -> LeakDetected {
        LeakDetected {
            leak_id: uuid::Uuid::from_u128(1000 + n).to_string(),
            identifier_hash: "e".repeat(64),
            identifier_type: hush_contracts::events::IdentifierType::Email,
            subject_key: String::new(),
            last_request_id: uuid::Uuid::from_u128(n).to_string(),
            source_topic: "web.events".into(),
            source_partition: 0,
            source_offset: 3,
            destination: "ads".into(),
            suppression_effective_at: 1,
            event_time: 2,
            detected_at: 3,
            action_taken: hush_contracts::events::GateAction::Blocked,
        }
    }

    /// An auditor with a one-second window over `web.events`, its watch progress covering an
    /// hour from now, and request 1 confirmed by both recipients.
    async fn provable(writer: Arc<CountingWriter>, sink: Option<Arc<RecordingSink>>) -> Auditor {
        let mut auditor = auditor(writer);
        auditor.proof = ProofSettings {
            watched_topics: vec!["web.events".into()],
            window_ms: 1_000,
        };
        if let Some(sink) = sink {
            auditor = auditor.with_commands(sink, Duration::ZERO);
        }
        auditor
            .coverage()
            .put(hush_contracts::events::WatchProgress {
                topic: "web.events".into(),
                records_examined: 1,
                covered_until: now_millis() + 3_600_000,
                offsets: HashMap::new(),
                leaks_found: 0,
                updated_at: now_millis(),
            });
        auditor
            .record_requests(&[request(1)], now_millis())
            .await
            .unwrap();
        auditor
            .apply_changes(
                &[confirmation(1, "crm"), confirmation(1, "ads")],
                now_millis(),
            )
            .await
            .unwrap();
        auditor
    }

    #[tokio::test]
    async fn a_replica_sends_leaks_and_closed_windows_to_the_owner_and_writes_no_record() {
        let (writer, sink) = (
            Arc::new(CountingWriter::default()),
            Arc::new(RecordingSink::default()),
        );
        let auditor = provable(writer.clone(), Some(sink.clone())).await;
        let written = writer.written.lock().unwrap().len();
        let later = now_millis() + 2_000;
        assert_eq!(auditor.prove_due(later).await.unwrap(), 1);
        assert_eq!(
            auditor.prove_due(later + 30_000).await.unwrap(),
            0,
            "one PROVE per request until it shows or ten minutes pass"
        );
        assert_eq!(auditor.prove_due(later + PROVE_AGAIN_MS).await.unwrap(), 1);
        assert_eq!(
            auditor.record_leak(&leak(1), later).await.unwrap(),
            Leaked::Sent
        );
        assert_eq!(
            auditor.record_leak(&leak(9), later).await.unwrap(),
            Leaked::RequestNotSeen
        );
        assert_eq!(
            writer.written.lock().unwrap().len(),
            written,
            "no record written"
        );
        let published = sink.published.lock().unwrap().clone();
        let actions: Vec<_> = published.iter().map(|c| c.action).collect();
        assert_eq!(
            actions,
            [
                AuditorCommandAction::Prove,
                AuditorCommandAction::Prove,
                AuditorCommandAction::Leak
            ]
        );
        for command in &published {
            assert_eq!(
                command.subject_key,
                request(1).subject_key,
                "keyed like the request"
            );
            assert_eq!(command.actor, CLIENT_ID);
        }
        assert_eq!(published[2].leak, Some(leak(1)));
    }

    #[tokio::test]
    async fn without_a_commands_topic_a_leak_and_a_proof_are_applied_in_place_once() {
        let writer = Arc::new(CountingWriter::default());
        let auditor = provable(writer.clone(), None).await;
        let id = uuid::Uuid::from_u128(1).to_string();
        let later = now_millis() + 2_000;
        assert_eq!(auditor.prove_due(later).await.unwrap(), 1);
        let proven = auditor.store().get(&id).unwrap();
        assert_eq!(proven.status, AuditStatus::Proven);
        assert_eq!(auditor.prove_due(later + PROVE_AGAIN_MS).await.unwrap(), 0);
        assert_eq!(
            auditor.record_leak(&leak(1), later).await.unwrap(),
            Leaked::Sent
        );
        assert_eq!(auditor.store().get(&id).unwrap().leaks, 1);
        assert_eq!(
            auditor.record_leak(&leak(1), later).await.unwrap(),
            Leaked::Unchanged
        );
        let proofs = writer
            .written
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.proof.is_some() && r.leaks == 0)
            .count();
        assert_eq!(proofs, 1, "proven once");
    }

    #[tokio::test]
    async fn after_a_rebalance_a_request_delivered_again_waits_for_its_record_and_opens_nothing() {
        let writer = Arc::new(CountingWriter::default());
        let auditor = auditor(writer.clone());
        // The previous holder opened and completed the record; its last version is at offset 5
        // of audit partition 0, which this replica has not read yet.
        let mut completed =
            fold::record_for_request(&request(1), auditor.recipients(), auditor.policy(), 1);
        for change in [confirmation(1, "crm"), confirmation(1, "ads")] {
            let Change::Confirmation(c) = change else {
                panic!("a confirmation")
            };
            completed = fold::on_confirmation(&completed, &c, 3, 2).unwrap();
        }
        let (rebalances, receiver) =
            tokio::sync::watch::channel(hush_runtime::kafka::PartitionCounts::default());
        let handoff = Handoff::with_ends(receiver, "hush.audit.v1", Arc::new(|| Ok(vec![(0, 5)])));
        let store = auditor.store().clone();
        assert_eq!(handoff.settle(&store).await, Ok(()), "no rebalance yet");
        assert_eq!(handoff.take_rebalance(), None);
        rebalances.send_replace(hush_runtime::kafka::PartitionCounts {
            assigned: 1,
            total: 3,
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(200), handoff.settle(&store))
                .await
                .is_err(),
            "the batch waits while the audit topic is not read to its end"
        );
        store.put(
            completed.clone(),
            crate::store::Position {
                partition: 0,
                offset: 5,
            },
        );
        // The follower's read of offset 5 (a tombstone of another request needs no registry).
        let codec = AvroCodec::from_config(&hush_runtime::config::RegistryConfig::default())
            .expect("codec");
        store
            .apply(
                &codec,
                IncomingMessage {
                    topic: "hush.audit.v1".into(),
                    partition: 0,
                    offset: 5,
                    key: Some(uuid::Uuid::from_u128(77).to_string().into_bytes()),
                    payload: None,
                    headers: vec![],
                    timestamp_ms: None,
                },
            )
            .await;
        assert_eq!(handoff.settle(&store).await, Ok(()));
        assert_eq!(
            handoff.take_rebalance(),
            Some(hush_runtime::kafka::PartitionCounts {
                assigned: 1,
                total: 3
            }),
            "the next batch learns of the rebalance, to release what was held before it"
        );
        assert_eq!(handoff.take_rebalance(), None, "once");
        let opened = auditor
            .record_requests(&[request(1)], now_millis())
            .await
            .unwrap();
        assert_eq!(opened, [None], "the request finds its record");
        assert!(writer.written.lock().unwrap().is_empty(), "nothing written");
        assert_eq!(
            auditor.store().get(&request(1).request_id),
            Some(completed),
            "the completed record stands"
        );
    }

    #[test]
    fn an_orphan_whose_record_opened_meanwhile_is_applied_again_not_dead_lettered() {
        // The batch was applied before its request's record was opened; by the backlog probe
        // the request was consumed: the record is there now, so the change is retried.
        assert_eq!(orphan_verdict(true, true, false), OrphanVerdict::Retry);
        assert_eq!(orphan_verdict(true, true, true), OrphanVerdict::Retry);
        assert_eq!(
            orphan_verdict(true, false, false),
            OrphanVerdict::DeadLetter("every request has been consumed")
        );
        assert_eq!(
            orphan_verdict(false, false, true),
            OrphanVerdict::DeadLetter("not seen within the grace period")
        );
        assert_eq!(orphan_verdict(false, false, false), OrphanVerdict::Retry);
    }

    #[test]
    fn a_confirmation_waits_for_its_request_for_the_grace_period_only() {
        let waiting = Waiting::new(Duration::from_secs(60));
        let start = Instant::now();
        assert!(!waiting.expired(&message(7), start));
        assert!(!waiting.expired(&message(7), start + Duration::from_secs(60)));
        assert!(waiting.expired(&message(7), start + Duration::from_secs(61)));
        // Another message keeps its own clock, alongside the first.
        assert!(!waiting.expired(&message(8), start + Duration::from_secs(61)));
        assert!(waiting.expired(&message(7), start + Duration::from_secs(62)));
        // Once forgotten, a message starts afresh.
        waiting.forget(&message(8));
        assert!(!waiting.expired(&message(8), start + Duration::from_secs(500)));
    }

    #[test]
    fn the_config_file_loads_through_the_shared_loader() {
        let path = std::env::temp_dir().join(format!("hush-auditor-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(
            &path,
            r#"
            [auditor]
            group_id = "audit-a"
            [deadlines]
            holidays = ["2026-12-24"]
            [[recipients]]
            id = "crm"
            kind = "hubspot"
            role = "SERVICE_PROVIDER"
            base_url = "http://crm"
            credentials = { token = "HUBSPOT_TOKEN" }
            settings = { opt_out_property = "hush_opted_out" }
            "#,
        )
        .unwrap();
        let config: Config = hush_runtime::config::load(Some(&path)).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(config.auditor.group_id, "audit-a");
        assert_eq!(config.auditor.listen, "127.0.0.1:8071");
        assert_eq!(config.deadlines.holidays.as_ref().map(Vec::len), Some(1));
        assert_eq!(config.recipients.len(), 1);
        assert_eq!(
            config.recipients[0].settings["opt_out_property"].as_str(),
            Some("hush_opted_out")
        );
        assert_eq!(config.common.topics.audit, "hush.audit.v1");
    }

    #[test]
    fn the_config_reads_the_auditor_deadlines_and_recipients_sections() {
        let config: Config = toml::from_str(
            r#"
            [auditor]
            listen = "0.0.0.0:9000"
            [deadlines]
            at_risk_days = 5
            [[recipients]]
            id = "crm"
            kind = "hubspot"
            role = "SERVICE_PROVIDER"
            base_url = "http://crm"
            "#,
        )
        .unwrap();
        assert_eq!(config.auditor.listen, "0.0.0.0:9000");
        assert_eq!(config.auditor.group_id, "hush-auditor");
        assert_eq!(config.deadlines.at_risk_days, 5);
        assert_eq!(config.recipients[0].id, "crm");
        assert!(config.validate().is_ok());
        let mut twice = config.clone();
        twice.recipients.push(config.recipients[0].clone());
        assert!(twice.validate().unwrap_err().to_string().contains("twice"));
    }
}
