//! Wiring: rebuild the audit records from their compacted topic, then fold requests and
//! confirmations into them (one consumer each, so a confirmation waiting for its request never
//! blocks requests) and serve the HTTP API.

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
    IncomingMessage, MessageHandler, TopicTable,
};
use hush_runtime::ops::{self, Readiness};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backlog::RequestsBacklog;
use crate::fold::{self, Refusal};
use crate::proof::{self, LeakHandler, WatchCoverage};
use crate::store::{request_key, AuditStore, AuditWriter, KafkaAuditWriter, WriteError};
use crate::{api, metrics};
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
    /// Consumer group family: `<group_id>-requests` and `<group_id>-confirmations`.
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
}

impl Default for AuditorSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8071".into(),
            group_id: "hush-auditor".into(),
            unseen_request_grace_secs: 3600,
            observation_window_secs: 86_400,
            prove_interval_secs: 30,
        }
    }
}

/// What a confirmation did to its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// The record changed and the new version was written.
    Applied(Box<AuditRecord>),
    /// Nothing changed (a re-delivery, or an older outcome).
    Unchanged,
    /// No record of the request yet.
    RequestNotSeen,
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
    /// The new version could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
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
    stripes: Vec<Mutex<()>>,
}

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
    /// The recipient is not required or did not fail permanently.
    #[error("recipient {connector} has no permanent failure to retry on this request")]
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
}

/// What a leak did to its request's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leaked {
    /// The record now carries the leak.
    Applied(Box<AuditRecord>),
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
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Lets `POST .../retry` re-drive failed recipients through `target`.
    pub fn with_redrive(mut self, target: RedriveTarget) -> Self {
        self.redrive = Some(target);
        self
    }

    /// Re-drives `connector` for `request_id`: its dead letter goes back to the recipient's
    /// retry topic. Refused unless that required recipient's outcome is `FAILED_PERMANENT`.
    /// The re-drive is recorded on the request as a `RETRY` change by `actor`.
    pub async fn retry_recipient(
        &self,
        request_id: &str,
        connector: &str,
        actor: &str,
    ) -> Result<hush_runtime::kafka::Redriven, RetryError> {
        let record = self.store.get(request_id).ok_or(RetryError::NotFound)?;
        let failed = record.required_connectors.iter().any(|id| id == connector)
            && record.connectors.iter().any(|o| {
                o.connector_id == connector
                    && o.action == hush_contracts::events::ConfirmationAction::FailedPermanent
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
        let _guard = self.stripe(request_id).lock().await;
        if let Some(current) = self.store.get(request_id) {
            let now = now_millis();
            let next = with_change(&current, "RETRY", actor, Some(connector), now);
            if let Err(error) = self.commit(next).await {
                tracing::warn!(%error, request_id, actor, "re-drive done but its record not written");
            }
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

    /// Folds a leak into the record of the request whose suppression it violated.
    pub async fn record_leak(
        &self,
        leak: &LeakDetected,
        now: EpochMillis,
    ) -> Result<Leaked, WriteError> {
        let _guard = self.stripe(&leak.last_request_id).lock().await;
        let Some(record) = self.store.get(&leak.last_request_id) else {
            return Ok(Leaked::RequestNotSeen);
        };
        match fold::on_leak(&record, leak, self.policy.at_risk_days(), now) {
            Some(next) => self
                .commit(next)
                .await
                .map(|r| Leaked::Applied(Box::new(r))),
            None => Ok(Leaked::Unchanged),
        }
    }

    /// Proves every request whose observation window has closed clean on every watched topic
    /// (see [`fold::prove`]); returns the records that became `PROVEN`.
    pub async fn prove_due(&self, now: EpochMillis) -> Result<Vec<AuditRecord>, WriteError> {
        let window = self.proof.window_ms;
        let due: Vec<String> = self.store.read(|records| {
            records
                .filter(|r| {
                    r.proof.is_none()
                        && matches!(r.status, AuditStatus::Verified | AuditStatus::Confirmed)
                        && r.completed_at
                            .is_some_and(|at| at.saturating_add(window) <= now)
                })
                .map(|r| r.request_id.clone())
                .collect()
        });
        let mut proven = Vec::new();
        for request_id in due {
            let _guard = self.stripe(&request_id).lock().await;
            let Some(record) = self.store.get(&request_id) else {
                continue;
            };
            let progress = |topic: &str| self.coverage.get(topic);
            if let Some(next) = fold::prove(
                &record,
                window,
                &self.proof.watched_topics,
                &progress,
                self.policy.at_risk_days(),
                now,
            ) {
                proven.push(self.commit(next).await?);
            }
        }
        Ok(proven)
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

    fn stripe(&self, request_id: &str) -> &Mutex<()> {
        let mut hasher = DefaultHasher::new();
        request_key(request_id).hash(&mut hasher);
        &self.stripes[(hasher.finish() % STRIPES as u64) as usize]
    }

    /// Writes `record` and, once acknowledged, stores it.
    async fn commit(&self, record: AuditRecord) -> Result<AuditRecord, WriteError> {
        let at = self.writer.write(&record).await?;
        self.store.put(record.clone(), at);
        Ok(record)
    }

    /// Opens the record of `request`; `None` when it is already on record.
    pub async fn record_request(
        &self,
        request: &PrivacyRequest,
        now: EpochMillis,
    ) -> Result<Option<AuditRecord>, WriteError> {
        let _guard = self.stripe(&request.request_id).lock().await;
        let existing = self.store.get(&request.request_id);
        match fold::on_request(
            existing.as_ref(),
            request,
            &self.recipients,
            &self.policy,
            now,
        ) {
            Some(record) => self.commit(record).await.map(Some),
            None => Ok(None),
        }
    }

    /// Folds a confirmation into its request's record.
    pub async fn record_confirmation(
        &self,
        confirmation: &Confirmation,
        now: EpochMillis,
    ) -> Result<Confirmed, WriteError> {
        let _guard = self.stripe(&confirmation.request_id).lock().await;
        let Some(record) = self.store.get(&confirmation.request_id) else {
            return Ok(Confirmed::RequestNotSeen);
        };
        let mut confirmation = confirmation.clone();
        confirmation.request_id = record.request_id.clone(); // same UUID, maybe other case
        match fold::on_confirmation(&record, &confirmation, self.policy.at_risk_days(), now) {
            Some(next) => self
                .commit(next)
                .await
                .map(|r| Confirmed::Applied(Box::new(r))),
            None => Ok(Confirmed::Unchanged),
        }
    }

    /// Takes the one extension the request's rule allows.
    pub async fn extend(
        &self,
        request_id: &str,
        reason: &str,
        actor: &str,
        now: EpochMillis,
    ) -> Result<AuditRecord, ChangeError> {
        let _guard = self.stripe(request_id).lock().await;
        let record = self.store.get(request_id).ok_or(ChangeError::NotFound)?;
        let next = fold::extend(&record, &self.policy, now)?;
        Ok(self
            .commit(with_change(&next, "EXTENSION", actor, Some(reason), now))
            .await?)
    }

    /// Records an out-of-band resolution of one recipient (see [`fold::resolve`]).
    pub async fn resolve(
        &self,
        request_id: &str,
        connector_id: &str,
        resolution: &fold::Resolution,
        actor: &str,
        now: EpochMillis,
    ) -> Result<AuditRecord, ChangeError> {
        let _guard = self.stripe(request_id).lock().await;
        let record = self.store.get(request_id).ok_or(ChangeError::NotFound)?;
        let role = self
            .recipients
            .iter()
            .find(|r| r.id == connector_id)
            .map_or(hush_contracts::events::RecipientRole::ThirdParty, |r| {
                r.role
            });
        let next = fold::resolve(
            &record,
            connector_id,
            role,
            resolution,
            self.policy.at_risk_days(),
            now,
        )?;
        Ok(self
            .commit(with_change(
                &next,
                "RESOLUTION",
                actor,
                Some(connector_id),
                now,
            ))
            .await?)
    }

    /// Denies the request with `reason`; answers the record unchanged when it was already
    /// denied with the same reason.
    pub async fn deny(
        &self,
        request_id: &str,
        reason: &str,
        actor: &str,
        now: EpochMillis,
    ) -> Result<AuditRecord, ChangeError> {
        let _guard = self.stripe(request_id).lock().await;
        let record = self.store.get(request_id).ok_or(ChangeError::NotFound)?;
        match fold::deny(&record, reason, self.policy.at_risk_days(), now)? {
            Some(next) => Ok(self
                .commit(with_change(&next, "DENIAL", actor, Some(reason), now))
                .await?),
            None => Ok(record),
        }
    }
}

/// `record` with one more operator change.
fn with_change(
    record: &AuditRecord,
    action: &str,
    actor: &str,
    note: Option<&str>,
    now: EpochMillis,
) -> AuditRecord {
    let mut next = record.clone();
    next.changes.push(hush_contracts::events::AdminChange {
        action: action.to_owned(),
        actor: actor.to_owned(),
        at: now,
        note: note.map(str::to_owned),
    });
    next.updated_at = now;
    next
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

/// Opens an audit record for every request.
struct RequestHandler {
    auditor: Arc<Auditor>,
    codec: AvroCodec,
}

#[async_trait]
impl MessageHandler for RequestHandler {
    async fn handle(&self, message: &IncomingMessage) -> Result<(), HandlerError> {
        let request: PrivacyRequest = decode(&self.codec, message).await?;
        match self
            .auditor
            .record_request(&request, now_millis())
            .await
            .map_err(retryable)?
        {
            Some(record) => tracing::info!(
                request_id = %record.request_id,
                kind = record.kind.as_str(),
                required = record.required_connectors.len(),
                status = crate::status::status_symbol(record.status),
                "audit record opened"
            ),
            None => tracing::debug!(request_id = %request.request_id, "request already on record"),
        }
        Ok(())
    }
}

/// Confirmations applied concurrently per consumed batch.
const CONFIRMATION_BATCH: usize = 64;

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

/// Folds confirmations a batch at a time: confirmations of different requests are applied
/// concurrently (one request's writes are serialised by the stripes, and applying is
/// order-independent: the latest completion wins). A confirmation that can never apply is
/// dead-lettered on its own, once no other message of the batch needs a retry; a transient
/// failure retries the batch, where what was already applied changes nothing.
struct ConfirmationBatches {
    handler: ConfirmationHandler,
    dlq: DeadLetterQueue,
}

#[async_trait]
impl BatchHandler for ConfirmationBatches {
    async fn handle_batch(&self, batch: &[IncomingMessage]) -> Result<(), HandlerError> {
        let outcomes = join_all(batch.iter().map(|m| self.handler.handle(m))).await;
        let mut unusable = Vec::new();
        let mut retry = None;
        for (message, outcome) in batch.iter().zip(outcomes) {
            match outcome {
                Ok(()) => {}
                Err(HandlerError::Permanent(reason)) => unusable.push((message, reason)),
                Err(error) => retry = Some(error),
            }
        }
        if let Some(error) = retry {
            return Err(error);
        }
        for (message, reason) in unusable {
            tracing::warn!(%reason, "dead-lettering confirmation");
            self.dlq
                .send(message, &reason)
                .await
                .map_err(|e| HandlerError::Retryable(e.to_string()))?;
        }
        Ok(())
    }
}

/// Folds every confirmation into its request's record.
struct ConfirmationHandler {
    auditor: Arc<Auditor>,
    codec: AvroCodec,
    waiting: Waiting,
    backlog: RequestsBacklog,
}

#[async_trait]
impl MessageHandler for ConfirmationHandler {
    async fn handle(&self, message: &IncomingMessage) -> Result<(), HandlerError> {
        let confirmation: Confirmation = decode(&self.codec, message).await?;
        let outcome = self
            .auditor
            .record_confirmation(&confirmation, now_millis())
            .await
            .map_err(retryable)?;
        match outcome {
            Confirmed::Applied(record) => {
                metrics::CONFIRMATIONS
                    .with_label_values(&[
                        confirmation.connector_id.as_str(),
                        confirmation.action.as_str(),
                    ])
                    .inc();
                tracing::info!(
                    request_id = %record.request_id,
                    connector = %confirmation.connector_id,
                    action = confirmation.action.as_str(),
                    status = crate::status::status_symbol(record.status),
                    "confirmation recorded"
                );
            }
            Confirmed::Unchanged => tracing::debug!(
                request_id = %confirmation.request_id,
                connector = %confirmation.connector_id,
                "confirmation changes nothing"
            ),
            Confirmed::RequestNotSeen => {
                // The request may still be in the requests group's backlog: wait for it then.
                // Once the group has consumed everything, it does not exist: dead-letter now.
                let caught_up = self.backlog.caught_up().await;
                if caught_up || self.waiting.expired(message, Instant::now()) {
                    self.waiting.forget(message);
                    return Err(HandlerError::Permanent(format!(
                        "confirmation from {} for request {} that is not on record ({})",
                        confirmation.connector_id,
                        confirmation.request_id,
                        if caught_up {
                            "every request has been consumed"
                        } else {
                            "not seen within the grace period"
                        }
                    )));
                }
                return Err(HandlerError::Retryable(format!(
                    "request {} not seen yet",
                    confirmation.request_id
                )));
            }
        }
        self.waiting.forget(message);
        Ok(())
    }
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
    let store = Arc::new(AuditStore::default());
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
        }),
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
    let consumer = |suffix: &str, topic: &str| {
        EventConsumer::new(
            &common.kafka,
            ConsumerSettings {
                group_id: format!("{}-{suffix}", section.group_id),
                topics: vec![topic.to_owned()],
                client_id: format!("{CLIENT_ID}-{suffix}"),
            },
            dlq.clone(),
        )
    };
    let requests = consumer("requests", &common.topics.requests)?;
    readiness.require("requests consumer assigned", requests.assigned_flag());
    let confirmations = consumer("confirmations", &common.topics.confirmations)?;
    readiness.require(
        "confirmations consumer assigned",
        confirmations.assigned_flag(),
    );
    let leaks = consumer("leaks", &common.topics.leaks)?;
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
    let (kafka, topic) = (common.kafka.clone(), common.topics.audit.clone());
    let reader =
        tokio::task::spawn_blocking(move || TopicTable::new(&kafka, &topic, CLIENT_ID)).await??;
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
    metrics::refresh(&store, now_millis(), at_risk_days);

    let mut tasks = Vec::new();
    {
        let (store, codec, stop) = (store.clone(), codec.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            reader
                .follow(stop, |message| store.apply(&codec, message))
                .await
        }));
    }
    tasks.push(tokio::spawn(requests.run(
        stop.clone(),
        RequestHandler {
            auditor: auditor.clone(),
            codec: codec.clone(),
        },
    )));
    tasks.push(tokio::spawn(confirmations.run_batches(
        stop.clone(),
        CONFIRMATION_BATCH,
        Duration::from_millis(5),
        ConfirmationBatches {
            handler: ConfirmationHandler {
                auditor: auditor.clone(),
                codec: codec.clone(),
                waiting: Waiting::new(Duration::from_secs(section.unseen_request_grace_secs)),
                backlog: RequestsBacklog::new(
                    &common.kafka,
                    &format!("{}-requests", section.group_id),
                    &common.topics.requests,
                )?,
            },
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
    tasks.push(tokio::spawn(refresh_metrics(
        store,
        at_risk_days,
        stop.clone(),
    )));
    Ok(tasks)
}

async fn refresh_metrics(store: Arc<AuditStore>, at_risk_days: u32, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(METRICS_REFRESH) => {
                metrics::refresh(&store, now_millis(), at_risk_days);
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
