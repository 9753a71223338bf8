//! Wiring, the way Kafka Streams runs a repartitioned, changelogged table. One group consumer
//! (group `[state] group_id`) reads two topics:
//!
//! - `hush.requests.v1` (keyed by subject): each request is split into one
//!   [`IdentifierRequest`] per identifier, produced to `hush.state-repartition.v1` keyed by the
//!   identifier hash, so that it lands on the partition of `hush.suppressions.v1` (the
//!   changelog, co-partitioned) that holds that identifier's state;
//! - `hush.state-repartition.v1`: when partition p is assigned, partition p of the changelog is
//!   read into the table (its latest state per identifier: the topic is compacted, so no request
//!   history is read), then p's records are folded and each new state is written to the
//!   changelog before the record's offset is stored. When p is revoked, its states are dropped.
//!
//! A replica therefore holds only the identifiers of its own partitions. A request split again
//! after a restart, or a record delivered again, is recognised by the position of its request
//! (kept per partition, and on each changelog record in the `hush-folded-from` header) and
//! folded once.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use hush_contracts::events::{now_millis, AvroEvent, PrivacyRequest, SuppressionState};
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::{CommonConfig, KafkaConfig, TopicsConfig};
use hush_runtime::kafka::startup::{topic_partitions, wait_for_broker};
use hush_runtime::kafka::{
    client_config, group_client_config, DeadLetterQueue, EventProducer, IncomingMessage,
};
use hush_runtime::ops::Readiness;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::fold::fold;
use crate::repartition::IdentifierRequest;
use crate::table::{HeldState, IdentifierKey, PartitionTable, Position, StateTable};

/// Configuration of the state service: the common sections plus `[state]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    /// Kafka, registry, topics.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// This service's section.
    #[serde(default)]
    pub state: StateSection,
}

/// `[state]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateSection {
    /// Address of `/healthz`, `/readyz`, `/metrics`.
    pub listen: String,
    /// Consumer group of the replicas.
    pub group_id: String,
}

impl Default for StateSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8072".into(),
            group_id: "hush-state".into(),
        }
    }
}

/// Header on each changelog record: `<requests partition>:<offset>:<identifier index>` of the
/// identifier record folded.
pub const FOLDED_FROM_HEADER: &str = "hush-folded-from";

/// Records handled together: their writes are awaited once, then their offsets stored.
const MAX_BATCH: usize = 256;
/// How long a batch waits to fill after its first record.
const LINGER: Duration = Duration::from_millis(5);
/// How long a restore may wait for the next changelog record.
const RESTORE_STALL: Duration = Duration::from_secs(30);

/// Starts the service: checks that the repartition topic and the changelog are
/// co-partitioned, joins the group and returns the table, which fills as partitions are
/// assigned and restored ([`StateTable::restored`] says when). Runs until `shutdown`.
pub async fn run(
    config: &CommonConfig,
    section: &StateSection,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<Arc<StateTable>> {
    let partitions = {
        let (kafka, topics, stop) = (
            config.kafka.clone(),
            config.topics.clone(),
            shutdown.clone(),
        );
        tokio::task::spawn_blocking(move || check_co_partitioned(&kafka, &topics, &stop)).await??
    };
    let codec = AvroCodec::from_config(&config.schema_registry)?;
    let dlq_producer = EventProducer::new(&config.kafka, codec.clone(), "hush-state")?;
    let dlq = DeadLetterQueue::new(dlq_producer, config.topics.dlq.clone(), "hush-state");
    let producer = ordered_producer(&config.kafka)?;
    let table = Arc::new(StateTable::default());
    let restored = Arc::new(AtomicBool::new(false));
    let flowing = Arc::new(AtomicBool::new(true));
    let ownership = Arc::new(Ownership::default());
    let consumer = group_consumer(config, section, ownership.clone())?;
    let restorer = Restorer::new(&config.kafka, &config.topics.suppressions, codec.clone())?;
    readiness.require("consumer assigned", ownership.assigned.clone());
    readiness.require("owned partitions restored", restored.clone());
    readiness.require("consumer flowing", flowing.clone());
    readiness.started();
    tracing::info!(
        partitions,
        group = %section.group_id,
        "state service joining its group"
    );
    let worker = Worker {
        consumer,
        producer,
        codec,
        dlq,
        restorer,
        table: table.clone(),
        ownership,
        restored,
        flowing,
        topics: config.topics.clone(),
    };
    tokio::spawn(worker.run(shutdown));
    Ok(table)
}

/// The partition count of the repartition topic and the changelog, refused unless both exist
/// with the same count: a record keyed by an identifier hash must land on the partition of the
/// changelog holding that identifier. A broker that does not answer is waited for
/// ([`wait_for_broker`]); the service is not ready meanwhile.
fn check_co_partitioned(
    kafka: &KafkaConfig,
    topics: &TopicsConfig,
    stop: &CancellationToken,
) -> anyhow::Result<i32> {
    let client: BaseConsumer = client_config(kafka)?
        .create()
        .context("kafka metadata client")?;
    let count = |topic: &str| topic_partitions(client.client(), topic).map(|p| p.len());
    let (repartition, changelog) = wait_for_broker("the co-partitioning check", stop, || {
        Ok((
            count(&topics.state_repartition)?,
            count(&topics.suppressions)?,
        ))
    })?;
    anyhow::ensure!(
        repartition == changelog,
        "{} has {repartition} partitions but {} has {changelog}: the state service needs them \
         co-partitioned (the same count), so that an identifier's records and its state are on \
         the same partition number; recreate {} with {changelog} partitions",
        topics.state_repartition,
        topics.suppressions,
        topics.state_repartition,
    );
    i32::try_from(changelog).context("partition count")
}

/// The producer of repartition records and states: idempotent, `acks=all`, and the same
/// partitioner as every Hush producer (`murmur2_random`, Kafka's default for keyed records), so
/// a key lands on the same partition number of both topics. Records are queued in the order
/// they are sent, so two records of one key keep their order.
fn ordered_producer(kafka: &KafkaConfig) -> anyhow::Result<FutureProducer> {
    client_config(kafka)?
        .set("client.id", "hush-state")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("compression.type", "lz4")
        .set("linger.ms", "2")
        .set("message.timeout.ms", kafka.message_timeout_ms.to_string())
        .create()
        .context("kafka producer")
}

/// The partitions this replica's group consumer holds, per topic, as the rebalance callbacks
/// report them.
#[derive(Default)]
struct Ownership {
    partitions: Mutex<HashMap<String, BTreeSet<i32>>>,
    assigned: Arc<AtomicBool>,
    changed: Notify,
}

impl Ownership {
    fn owns(&self, topic: &str, partition: i32) -> bool {
        let partitions = self.partitions.lock().expect("ownership lock");
        partitions
            .get(topic)
            .is_some_and(|owned| owned.contains(&partition))
    }

    fn of(&self, topic: &str) -> BTreeSet<i32> {
        let partitions = self.partitions.lock().expect("ownership lock");
        partitions.get(topic).cloned().unwrap_or_default()
    }

    fn update(&self, list: &TopicPartitionList, assign: bool) {
        let mut partitions = self.partitions.lock().expect("ownership lock");
        for element in list.elements() {
            let owned = partitions.entry(element.topic().to_owned()).or_default();
            if assign {
                owned.insert(element.partition());
            } else {
                owned.remove(&element.partition());
            }
        }
        let any = partitions.values().any(|owned| !owned.is_empty());
        self.assigned.store(any, Ordering::SeqCst);
        self.changed.notify_one();
    }
}

/// Commits stored offsets before partitions are taken away and tells the worker what it owns.
struct StateContext {
    ownership: Arc<Ownership>,
    group_id: String,
}

impl ClientContext for StateContext {}

impl ConsumerContext for StateContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(%error, "nothing to commit before revoke");
            }
            self.ownership.update(partitions, false);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(group = %self.group_id, partitions = partitions.count(), "partitions assigned");
                self.ownership.update(partitions, true);
            }
            Rebalance::Revoke(partitions) => {
                tracing::info!(group = %self.group_id, partitions = partitions.count(), "partitions revoked");
            }
            Rebalance::Error(error) => {
                tracing::warn!(group = %self.group_id, %error, "rebalance error");
            }
        }
    }
}

fn group_consumer(
    config: &CommonConfig,
    section: &StateSection,
    ownership: Arc<Ownership>,
) -> anyhow::Result<StreamConsumer<StateContext>> {
    // Static membership when `kafka.instance_id` is set: a replica restarted in its pod takes
    // its partitions back at once, without a rebalance and a second restore.
    let consumer: StreamConsumer<StateContext> =
        group_client_config(&config.kafka, &section.group_id)?
            .set("client.id", "hush-state")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            // A restore holds the consumer between polls; give it 10 minutes.
            .set("max.poll.interval.ms", "600000")
            .create_with_context(StateContext {
                ownership,
                group_id: section.group_id.clone(),
            })
            .context("kafka consumer")?;
    let topics = [
        config.topics.requests.as_str(),
        config.topics.state_repartition.as_str(),
    ];
    consumer
        .subscribe(&topics)
        .with_context(|| format!("subscribe to {topics:?}"))?;
    Ok(consumer)
}

/// Reads one partition of the changelog from its start to its end as it was when asked.
struct Restorer {
    consumer: StreamConsumer,
    topic: String,
    codec: AvroCodec,
}

impl Restorer {
    fn new(kafka: &KafkaConfig, topic: &str, codec: AvroCodec) -> anyhow::Result<Self> {
        let consumer: StreamConsumer = client_config(kafka)?
            .set(
                "group.id",
                format!("hush-state-restore-{}", uuid::Uuid::new_v4()),
            )
            .set("client.id", "hush-state-restore")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .create()
            .context("kafka changelog reader")?;
        Ok(Self {
            consumer,
            topic: topic.to_owned(),
            codec,
        })
    }

    /// The table of `partition`: its latest state per identifier and the request positions
    /// already folded into it.
    async fn restore(&self, partition: i32) -> anyhow::Result<(PartitionTable, u64)> {
        let (low, high) = self
            .consumer
            .fetch_watermarks(&self.topic, partition, Duration::from_secs(10))
            .with_context(|| format!("watermarks of {} partition {partition}", self.topic))?;
        if high <= low {
            return Ok((PartitionTable::default(), 0));
        }
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&self.topic, partition, Offset::Beginning)?;
        self.consumer.assign(&assignment)?;
        let mut entries = Vec::new();
        let mut folded: HashMap<i32, Position> = HashMap::new();
        let mut records = 0u64;
        loop {
            let message = tokio::time::timeout(RESTORE_STALL, self.consumer.recv())
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "no progress restoring {} partition {partition} for {RESTORE_STALL:?}",
                        self.topic
                    )
                })?
                .with_context(|| format!("reading {} partition {partition}", self.topic))?;
            let message = IncomingMessage::from_borrowed(&message);
            records += 1;
            if let Some((source, offset)) =
                message.header(FOLDED_FROM_HEADER).and_then(parse_position)
            {
                let done = folded.entry(source).or_insert(offset);
                *done = (*done).max(offset);
            }
            if let Some(entry) = self.entry(&message).await {
                entries.push(entry);
            }
            if message.offset + 1 >= high {
                break;
            }
        }
        self.consumer.unassign()?;
        let mut table = PartitionTable::from_changelog(entries);
        for (source, position) in folded {
            table.mark_folded(source, position);
        }
        Ok((table, records))
    }

    /// One changelog record as a table entry (`None` state: a tombstone); a record that can
    /// never decode is logged by position and skipped, an unreachable registry waited out.
    async fn entry(&self, message: &IncomingMessage) -> Option<(IdentifierKey, Option<HeldState>)> {
        let Some(payload) = message.payload.as_deref() else {
            let key = message.key_str().and_then(IdentifierKey::from_hex);
            if key.is_none() {
                tracing::error!(
                    partition = message.partition,
                    offset = message.offset,
                    "skipping a changelog tombstone whose key is not an identifier hash"
                );
            }
            return key.map(|key| (key, None));
        };
        match self
            .codec
            .decode_patiently::<SuppressionState>(payload)
            .await
        {
            Ok(state) => match IdentifierKey::from_hex(&state.identifier_hash) {
                Some(key) => Some((key, Some(HeldState::from_state(&state)))),
                None => {
                    tracing::error!(
                        partition = message.partition,
                        offset = message.offset,
                        "skipping a changelog state whose identifier_hash is not a SHA-256"
                    );
                    None
                }
            },
            Err(error) => {
                tracing::error!(%error, partition = message.partition, offset = message.offset, "skipping a changelog record that can never decode");
                None
            }
        }
    }
}

/// `<partition>:<offset>:<index>` as written in [`FOLDED_FROM_HEADER`].
fn parse_position(value: &str) -> Option<(i32, Position)> {
    let mut parts = value.split(':');
    let partition = parts.next()?.parse().ok()?;
    let offset = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then_some((partition, (offset, index)))
}

/// Why a batch did not go through.
enum BatchError {
    /// Try the batch again later (registry or broker unavailable).
    Retry(String),
    /// Shutdown was requested.
    Stopped,
}

/// A change to the table made while handling a batch, undone if the batch's writes fail.
struct Undo {
    partition: i32,
    key: IdentifierKey,
    previous: Option<HeldState>,
}

struct Worker {
    consumer: StreamConsumer<StateContext>,
    producer: FutureProducer,
    codec: AvroCodec,
    dlq: DeadLetterQueue,
    restorer: Restorer,
    table: Arc<StateTable>,
    ownership: Arc<Ownership>,
    restored: Arc<AtomicBool>,
    flowing: Arc<AtomicBool>,
    topics: TopicsConfig,
}

impl Worker {
    async fn run(self, shutdown: CancellationToken) {
        let mut wait = Duration::from_millis(100);
        loop {
            if let Err(error) = self.sync_partitions(&shutdown).await {
                if shutdown.is_cancelled() {
                    break;
                }
                tracing::error!(error = %format!("{error:#}"), wait_ms = wait.as_millis() as u64, "restoring owned partitions failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(30));
                continue;
            }
            wait = Duration::from_millis(100);
            let Some(batch) = self.next_batch(&shutdown).await else {
                break;
            };
            if batch.is_empty() {
                continue; // the assignment changed: restore or drop first
            }
            // A rebalance while the batch filled may have taken partitions away.
            if let Err(error) = self.sync_partitions(&shutdown).await {
                tracing::warn!(error = %format!("{error:#}"), "restore before a batch failed; the batch will be read again");
                continue;
            }
            if !self.handle_until_done(&batch, &shutdown).await {
                break;
            }
        }
        if let Err(error) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(%error, "final commit");
        }
        tracing::info!("state service stopped");
    }

    /// Drops the tables of partitions no longer owned and restores those newly owned.
    async fn sync_partitions(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let owned = self.ownership.of(&self.topics.state_repartition);
        let held: BTreeSet<i32> = self.table.partitions().into_iter().collect();
        for partition in held.difference(&owned) {
            self.table.drop_partition(*partition);
            tracing::info!(partition, "partition revoked: its states dropped");
        }
        let missing: Vec<i32> = owned.difference(&held).copied().collect();
        if !missing.is_empty() {
            self.restored.store(false, Ordering::SeqCst);
            self.table.set_restored(false);
        }
        for partition in missing {
            if shutdown.is_cancelled() {
                anyhow::bail!("shutdown");
            }
            let started = std::time::Instant::now();
            let (table, records) = self.restorer.restore(partition).await?;
            tracing::info!(
                partition,
                records,
                identifiers = table.len(),
                millis = started.elapsed().as_millis() as u64,
                "partition restored from the changelog"
            );
            // Still owned? A rebalance during the restore may have taken it away again.
            if self
                .ownership
                .owns(&self.topics.state_repartition, partition)
            {
                self.table.insert_partition(partition, table);
            }
        }
        let ready = self.ownership.assigned.load(Ordering::SeqCst)
            && self
                .ownership
                .of(&self.topics.state_repartition)
                .iter()
                .all(|p| self.table.partitions().contains(p));
        self.restored.store(ready, Ordering::SeqCst);
        self.table.set_restored(ready);
        Ok(())
    }

    /// The next batch; empty when the assignment changed; `None` at shutdown.
    async fn next_batch(&self, shutdown: &CancellationToken) -> Option<Vec<IncomingMessage>> {
        let first = loop {
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = self.ownership.changed.notified() => return Some(Vec::new()),
                received = self.consumer.recv() => match received {
                    Ok(message) => break IncomingMessage::from_borrowed(&message),
                    Err(error) => {
                        hush_runtime::kafka::exit_if_fatal(&error, "the state service's group");
                        tracing::warn!(%error, "kafka receive error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
            }
        };
        let mut batch = vec![first];
        let until = tokio::time::Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(until, self.consumer.recv()).await {
                Ok(Ok(message)) => batch.push(IncomingMessage::from_borrowed(&message)),
                _ => break,
            }
        }
        Some(batch)
    }

    /// Handles `batch` until it went through (offsets stored), retrying in place; false at
    /// shutdown.
    async fn handle_until_done(
        &self,
        batch: &[IncomingMessage],
        shutdown: &CancellationToken,
    ) -> bool {
        let mut wait = Duration::from_millis(100);
        loop {
            match self.handle(batch, shutdown).await {
                Ok(()) => {
                    self.flowing.store(true, Ordering::SeqCst);
                    for message in batch {
                        if !self.ownership.owns(&message.topic, message.partition) {
                            continue;
                        }
                        if let Err(error) = self.consumer.store_offset(
                            &message.topic,
                            message.partition,
                            message.offset,
                        ) {
                            tracing::warn!(%error, "could not store offset; the record may be handled again");
                        }
                    }
                    return true;
                }
                Err(BatchError::Stopped) => return false,
                Err(BatchError::Retry(reason)) => {
                    self.flowing.store(false, Ordering::SeqCst);
                    tracing::warn!(%reason, wait_ms = wait.as_millis() as u64, "retrying a batch");
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Splits the batch's requests and folds its identifier records, then waits for every
    /// write. On failure the table is put back as it was, so the retry folds the same way.
    async fn handle(
        &self,
        batch: &[IncomingMessage],
        shutdown: &CancellationToken,
    ) -> Result<(), BatchError> {
        let mut writes: Vec<DeliveryFuture> = Vec::new();
        let mut undo: Vec<Undo> = Vec::new();
        let mut positions: HashMap<i32, HashMap<i32, Position>> = HashMap::new();
        let mut dead: Vec<(&IncomingMessage, String)> = Vec::new();
        let outcome = async {
            for message in batch {
                if !self.ownership.owns(&message.topic, message.partition) {
                    continue; // revoked: its new owner reads it again
                }
                if message.topic == self.topics.requests {
                    match self.split(message).await? {
                        Ok(records) => {
                            for record in records {
                                writes.push(
                                    self.send(
                                        &self.topics.state_repartition,
                                        &record.identifier_hash,
                                        &record,
                                        OwnedHeaders::new(),
                                    )
                                    .await?,
                                );
                            }
                        }
                        Err(reason) => dead.push((message, reason)),
                    }
                } else {
                    let record: IdentifierRequest = match self.decode(message).await? {
                        Ok(record) => record,
                        Err(reason) => {
                            dead.push((message, reason));
                            continue;
                        }
                    };
                    let Some(key) = IdentifierKey::from_hex(&record.identifier_hash) else {
                        dead.push((
                            message,
                            format!(
                                "request {}: identifier_hash is not a lowercase hex SHA-256",
                                record.request_id
                            ),
                        ));
                        continue;
                    };
                    let folded = self.table.with_partition(message.partition, |table| {
                        if table.already_folded(record.source_partition, record.position()) {
                            return None;
                        }
                        positions
                            .entry(message.partition)
                            .or_insert_with(|| table.folded_positions());
                        table.mark_folded(record.source_partition, record.position());
                        let request = record.request();
                        let current = table
                            .get(&key)
                            .map(|held| held.fold_input(&record.identifier_hash, &request));
                        let next = fold(
                            current.as_ref(),
                            &request,
                            &record.identifier(),
                            now_millis(),
                        )?;
                        let previous = table.set(key, Some(HeldState::from_state(&next)));
                        undo.push(Undo {
                            partition: message.partition,
                            key,
                            previous,
                        });
                        Some(next)
                    });
                    if let Some(Some(state)) = folded {
                        let headers = OwnedHeaders::new().insert(Header {
                            key: FOLDED_FROM_HEADER,
                            value: Some(
                                format!(
                                    "{}:{}:{}",
                                    record.source_partition,
                                    record.source_offset,
                                    record.source_index
                                )
                                .as_bytes(),
                            ),
                        });
                        writes.push(
                            self.send(
                                &self.topics.suppressions,
                                &state.identifier_hash,
                                &state,
                                headers,
                            )
                            .await?,
                        );
                    }
                }
            }
            for write in writes.drain(..) {
                match write.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((error, _))) => {
                        return Err(BatchError::Retry(format!(
                            "kafka did not acknowledge a write: {error}"
                        )))
                    }
                    Err(_) => return Err(BatchError::Retry("a write was cancelled".into())),
                }
            }
            Ok(())
        }
        .await;
        if outcome.is_err() {
            for change in undo.into_iter().rev() {
                self.table.with_partition(change.partition, |table| {
                    table.set(change.key, change.previous)
                });
            }
            for (partition, saved) in positions {
                self.table
                    .with_partition(partition, |table| table.restore_folded_positions(saved));
            }
            return outcome;
        }
        for (message, reason) in dead {
            tracing::warn!(%reason, topic = %message.topic, partition = message.partition, offset = message.offset, "dead-lettering");
            let mut wait = Duration::from_millis(100);
            while let Err(error) = self.dlq.send(message, &reason).await {
                tracing::error!(%error, "dead-letter topic unavailable; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(BatchError::Stopped),
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
        Ok(())
    }

    /// A request's identifier records; `Ok(Err(reason))` when it can never be split.
    async fn split(
        &self,
        message: &IncomingMessage,
    ) -> Result<Result<Vec<IdentifierRequest>, String>, BatchError> {
        Ok(match self.decode::<PrivacyRequest>(message).await? {
            Ok(request) => IdentifierRequest::split(&request, message.partition, message.offset)
                .map_err(|e| e.to_string()),
            Err(reason) => Err(reason),
        })
    }

    /// Decodes a record; `Ok(Err(reason))` when it can never decode.
    async fn decode<T: AvroEvent>(
        &self,
        message: &IncomingMessage,
    ) -> Result<Result<T, String>, BatchError> {
        let payload = message.payload.as_deref().unwrap_or_default();
        match self.codec.decode(payload).await {
            Ok(value) => Ok(Ok(value)),
            Err(error) if error.is_retryable() => Err(BatchError::Retry(error.to_string())),
            Err(error) => Ok(Err(error.to_string())),
        }
    }

    /// Encodes `event` and queues it; the returned future says whether the broker took it.
    async fn send<T: AvroEvent>(
        &self,
        topic: &str,
        key: &str,
        event: &T,
        headers: OwnedHeaders,
    ) -> Result<DeliveryFuture, BatchError> {
        let payload = self
            .codec
            .encode(topic, event)
            .await
            .map_err(|e| BatchError::Retry(e.to_string()))?;
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(&payload)
            .headers(headers);
        self.producer.send_result(record).map_err(|(error, _)| {
            BatchError::Retry(format!("queueing a write to {topic}: {error}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_positions_read_back_from_the_header() {
        assert_eq!(parse_position("2:41:3"), Some((2, (41, 3))));
        assert_eq!(parse_position("2:41"), None);
        assert_eq!(parse_position("2:41:3:1"), None);
        assert_eq!(parse_position("x:1:0"), None);
    }
}
