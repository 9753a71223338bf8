//! The at-least-once consumer: an offset is stored only after its message was handled (or
//! dead-lettered), stored offsets are committed before partitions are revoked and synchronously
//! at shutdown, so a crash re-delivers and nothing is skipped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backoff::backoff::Backoff;
use backoff::ExponentialBackoffBuilder;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::ClientContext;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::dead_letter::DeadLetterQueue;
use crate::config::{ConfigError, KafkaConfig};
use crate::telemetry;

/// A message read from Kafka, owned so handlers can hold it across awaits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMessage {
    /// Topic read from.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Payload bytes; `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Broker or producer timestamp, in epoch milliseconds.
    pub timestamp_ms: Option<i64>,
}

impl IncomingMessage {
    /// Copies a message borrowed from a consumer.
    pub fn from_borrowed(message: &BorrowedMessage<'_>) -> Self {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
            timestamp_ms: message.timestamp().to_millis(),
        }
    }

    /// The key as UTF-8, when it is.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
    }

    /// The value of the last header named `name`, as UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }
}

/// How a handler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// A transient failure (broker or registry unavailable): the message is retried in place
    /// with exponential backoff until it succeeds or the service stops.
    #[error("retryable: {0}")]
    Retryable(String),
    /// The message can never be processed (malformed, invalid): it goes to the dead-letter topic
    /// with this reason and the consumer moves on.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Turns one message into its effects. Must be idempotent: a message may be delivered again.
#[async_trait]
pub trait MessageHandler: Send + Sync {
    /// Handles one message.
    async fn handle(&self, message: &IncomingMessage) -> Result<(), HandlerError>;
}

#[async_trait]
impl<F, Fut> MessageHandler for F
where
    F: Fn(IncomingMessage) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<(), HandlerError>> + Send,
{
    async fn handle(&self, message: &IncomingMessage) -> Result<(), HandlerError> {
        self(message.clone()).await
    }
}

/// Turns a batch of messages into their effects (e.g. one vendor call for many requests).
/// `Ok` stores every offset; `Permanent` dead-letters every message of the batch; `Retryable`
/// retries the whole batch in place. Must be idempotent.
#[async_trait]
pub trait BatchHandler: Send + Sync {
    /// Handles a batch of one or more messages, in partition order.
    async fn handle_batch(&self, batch: &[IncomingMessage]) -> Result<(), HandlerError>;
}

/// Adapts a [`MessageHandler`] to batches of one.
struct OneByOne<H>(H);

#[async_trait]
impl<H: MessageHandler> BatchHandler for OneByOne<H> {
    async fn handle_batch(&self, batch: &[IncomingMessage]) -> Result<(), HandlerError> {
        for message in batch {
            self.0.handle(message).await?;
        }
        Ok(())
    }
}

/// Consumer group settings.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Consumer group id; replicas of one service share it.
    pub group_id: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// Client id for broker logs.
    pub client_id: String,
}

/// How many partitions of its subscribed topics one group consumer holds, and how many those
/// topics have in all; updated after every rebalance. Replicas of a group that share a budget
/// (a vendor's rate limit) each take `assigned / total` of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionCounts {
    /// Partitions assigned to this consumer.
    pub assigned: usize,
    /// Partitions of the subscribed topics in all; 0 until the first rebalance told them.
    pub total: usize,
}

/// How long a rebalance callback waits for the broker to say how many partitions the
/// subscribed topics have; on a timeout the previous count is kept.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// Commits stored offsets before partitions are taken away, tracks whether any are assigned and
/// how many, and publishes the consumer lag librdkafka reports.
struct RebalanceContext {
    assigned: Arc<AtomicBool>,
    restorer: super::restore::BootstrapRestorer,
    counts: watch::Sender<PartitionCounts>,
    topics: Vec<String>,
    group_id: String,
}

impl RebalanceContext {
    /// Partitions the subscribed topics have in all, from the broker; `None` when it did not
    /// answer for every topic.
    fn total_partitions(&self, consumer: &BaseConsumer<Self>) -> Option<usize> {
        let mut total = 0;
        for topic in &self.topics {
            let metadata = match consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT) {
                Ok(metadata) => metadata,
                Err(error) => {
                    tracing::warn!(%error, %topic, group = %self.group_id, "partition count unknown after a rebalance; keeping the previous one");
                    return None;
                }
            };
            total += metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic && t.error().is_none())
                .map(|t| t.partitions().len())
                .sum::<usize>();
        }
        Some(total)
    }

    /// Publishes what this consumer holds now; asks the broker for the topics' partition
    /// counts again when `refresh_total` (a new assignment), keeps the previous ones otherwise.
    fn count_partitions(&self, consumer: &BaseConsumer<Self>, refresh_total: bool) {
        let assigned = match consumer.assignment() {
            Ok(assignment) => assignment.count(),
            Err(error) => {
                tracing::warn!(%error, group = %self.group_id, "assignment unknown after a rebalance");
                return;
            }
        };
        let previous = self.counts.borrow().total;
        let total = if refresh_total {
            self.total_partitions(consumer).unwrap_or(previous)
        } else {
            previous
        };
        // Never fewer in all than held: a topic the metadata did not list yet still counts.
        let counts = PartitionCounts {
            assigned,
            total: total.max(assigned),
        };
        tracing::info!(group = %self.group_id, assigned, total = counts.total, "partitions held");
        self.counts.send_replace(counts);
    }
}

impl ClientContext for RebalanceContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let _ = self.restorer.check(&statistics);
        for (topic, stats) in &statistics.topics {
            for (partition, partition_stats) in &stats.partitions {
                // librdkafka reports -1 for partitions this consumer does not fetch.
                if *partition >= 0 && partition_stats.consumer_lag >= 0 {
                    crate::metrics::CONSUMER_LAG
                        .with_label_values(&[
                            self.group_id.as_str(),
                            topic.as_str(),
                            &partition.to_string(),
                        ])
                        .set(partition_stats.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(%error, "nothing to commit before revoke");
            }
            self.assigned.store(false, Ordering::SeqCst);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(partitions = partitions.count(), "partitions assigned");
                self.assigned.store(true, Ordering::SeqCst);
                self.count_partitions(consumer, true);
            }
            Rebalance::Revoke(_) => self.count_partitions(consumer, false),
            Rebalance::Error(_) => {}
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _: &rdkafka::TopicPartitionList) {
        if let Err(error) = result {
            tracing::debug!(%error, "offset commit");
        }
    }
}

/// A group consumer that hands each message to a [`MessageHandler`] in partition order.
pub struct EventConsumer {
    consumer: StreamConsumer<RebalanceContext>,
    dlq: DeadLetterQueue,
    assigned: Arc<AtomicBool>,
    flowing: Arc<AtomicBool>,
    counts: watch::Receiver<PartitionCounts>,
    group_id: String,
}

impl EventConsumer {
    /// Creates the consumer and subscribes it. A handler must return within librdkafka's
    /// default `max.poll.interval.ms` (5 minutes) or the consumer leaves its group.
    pub fn new(
        kafka: &KafkaConfig,
        settings: ConsumerSettings,
        dlq: DeadLetterQueue,
    ) -> Result<Self, ConfigError> {
        Self::with_max_poll_interval(kafka, settings, dlq, Duration::from_secs(300))
    }

    /// Creates the consumer and subscribes it, for a handler that may take up to
    /// `max_poll_interval` with one batch: past that, the broker takes the partitions away and
    /// the batch is delivered again elsewhere.
    pub fn with_max_poll_interval(
        kafka: &KafkaConfig,
        settings: ConsumerSettings,
        dlq: DeadLetterQueue,
        max_poll_interval: Duration,
    ) -> Result<Self, ConfigError> {
        let assigned = Arc::new(AtomicBool::new(false));
        let (counts, counts_receiver) = watch::channel(PartitionCounts::default());
        let consumer: StreamConsumer<RebalanceContext> =
            super::group_client_config(kafka, &settings.group_id)?
                .set("client.id", &settings.client_id)
                .set("enable.auto.commit", "true")
                .set("auto.commit.interval.ms", "1000")
                .set("enable.auto.offset.store", "false")
                .set("auto.offset.reset", "earliest")
                .set("enable.partition.eof", "false")
                .set(
                    "statistics.interval.ms",
                    super::restore::STATISTICS_INTERVAL_MS,
                )
                .set(
                    "max.poll.interval.ms",
                    max_poll_interval.as_millis().to_string(),
                )
                .create_with_context(RebalanceContext {
                    assigned: assigned.clone(),
                    restorer: Default::default(),
                    counts,
                    topics: settings.topics.clone(),
                    group_id: settings.group_id.clone(),
                })
                .map_err(|e| ConfigError::Invalid(format!("kafka consumer: {e}")))?;
        consumer
            .context()
            .restorer
            .attach(consumer.client(), &kafka.bootstrap_servers);
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| ConfigError::Invalid(format!("subscribe to {topics:?}: {e}")))?;
        Ok(Self {
            consumer,
            dlq,
            assigned,
            flowing: Arc::new(AtomicBool::new(true)),
            counts: counts_receiver,
            group_id: settings.group_id,
        })
    }

    /// The partitions this consumer holds and the subscribed topics' partitions in all, as of
    /// the latest rebalance; it changes with every rebalance.
    pub fn partition_counts(&self) -> watch::Receiver<PartitionCounts> {
        self.counts.clone()
    }

    /// True while the consumer holds at least one partition; a readiness signal.
    pub fn assigned_flag(&self) -> Arc<AtomicBool> {
        self.assigned.clone()
    }

    /// False while the consumer is holding a batch it cannot handle yet (a retryable error such
    /// as the schema registry or the broker being unreachable): it waits rather than skip, and
    /// says so through readiness. True again once the batch went through.
    pub fn flowing_flag(&self) -> Arc<AtomicBool> {
        self.flowing.clone()
    }

    /// Consumes one message at a time until `shutdown` is cancelled, then commits stored
    /// offsets synchronously.
    pub async fn run<H: MessageHandler>(self, shutdown: CancellationToken, handler: H) {
        self.run_batches(shutdown, 1, Duration::ZERO, OneByOne(handler))
            .await
    }

    /// Consumes batches of up to `max_batch` messages, waiting at most `linger` after the
    /// first one for the batch to fill, until `shutdown` is cancelled; then commits stored
    /// offsets synchronously.
    pub async fn run_batches<H: BatchHandler>(
        self,
        shutdown: CancellationToken,
        max_batch: usize,
        linger: Duration,
        handler: H,
    ) {
        while let Some(batch) = self.next_batch(&shutdown, max_batch.max(1), linger).await {
            let span = tracing::info_span!(
                "consume",
                topic = %batch[0].topic,
                partition = batch[0].partition,
                offset = batch[0].offset,
                batch = batch.len(),
            );
            telemetry::set_parent_from_headers(&span, &batch[0].headers);
            let done = self
                .process(&batch, &handler, &shutdown)
                .instrument(span)
                .await;
            if !done {
                break;
            }
            for message in &batch {
                if let Err(error) =
                    self.consumer
                        .store_offset(&message.topic, message.partition, message.offset)
                {
                    tracing::warn!(%error, "could not store offset; the message may be re-delivered");
                }
            }
        }
        if let Err(error) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(%error, "final commit");
        }
        tracing::info!(group = %self.group_id, "consumer stopped");
    }

    /// Waits for the next message, then gathers more until the batch is full or `linger`
    /// passed. `None` once shutdown was requested.
    async fn next_batch(
        &self,
        shutdown: &CancellationToken,
        max_batch: usize,
        linger: Duration,
    ) -> Option<Vec<IncomingMessage>> {
        let mut batch = Vec::with_capacity(max_batch);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                received = self.consumer.recv() => match received {
                    Ok(message) => {
                        batch.push(IncomingMessage::from_borrowed(&message));
                        break;
                    }
                    Err(error) => {
                        exit_if_fatal(&error, &self.group_id);
                        tracing::warn!(%error, group = %self.group_id, "kafka receive error");
                        tokio::time::sleep(super::ERROR_EVENT_PAUSE).await;
                    }
                },
            }
        }
        let until = tokio::time::Instant::now() + linger;
        while batch.len() < max_batch {
            match tokio::time::timeout_at(until, self.consumer.recv()).await {
                Ok(Ok(message)) => batch.push(IncomingMessage::from_borrowed(&message)),
                Ok(Err(error)) => {
                    exit_if_fatal(&error, &self.group_id);
                    tracing::warn!(%error, group = %self.group_id, "kafka receive error");
                    break;
                }
                Err(_) => break,
            }
        }
        Some(batch)
    }

    /// Handles one batch until it succeeded or was dead-lettered (true), or shutdown came
    /// first (false: offsets are not stored and the messages will be re-delivered).
    async fn process<H: BatchHandler>(
        &self,
        batch: &[IncomingMessage],
        handler: &H,
        shutdown: &CancellationToken,
    ) -> bool {
        let topic = batch[0].topic.as_str();
        let mut backoff = retry_backoff();
        loop {
            let wait = match handler.handle_batch(batch).await {
                Ok(()) => {
                    self.flowing.store(true, Ordering::SeqCst);
                    crate::metrics::MESSAGES_HANDLED
                        .with_label_values(&[topic, "ok"])
                        .inc_by(batch.len() as u64);
                    return true;
                }
                Err(HandlerError::Permanent(reason)) => {
                    self.flowing.store(true, Ordering::SeqCst);
                    tracing::warn!(%reason, "dead-lettering");
                    crate::metrics::MESSAGES_HANDLED
                        .with_label_values(&[topic, "dead_lettered"])
                        .inc_by(batch.len() as u64);
                    for message in batch {
                        if !self.dead_letter(message, &reason, shutdown).await {
                            return false;
                        }
                    }
                    return true;
                }
                Err(HandlerError::Retryable(reason)) => {
                    self.flowing.store(false, Ordering::SeqCst);
                    crate::metrics::HANDLER_RETRIES
                        .with_label_values(&[topic])
                        .inc();
                    let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(30));
                    tracing::warn!(%reason, wait_ms = wait.as_millis() as u64, "retrying");
                    wait
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn dead_letter(
        &self,
        message: &IncomingMessage,
        reason: &str,
        shutdown: &CancellationToken,
    ) -> bool {
        let mut backoff = retry_backoff();
        loop {
            match self.dlq.send(message, reason).await {
                Ok(()) => return true,
                Err(error) => {
                    let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(30));
                    tracing::error!(%error, "dead-letter topic unavailable; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }
}

/// Whether `error` leaves the consumer unusable: librdkafka reports it as fatal (e.g.
/// `FencedInstanceId`, a static member whose `group.instance.id` the coordinator now gives to
/// another member id, which happens when a broker restart loses the group's latest join).
pub fn is_fatal(error: &KafkaError) -> bool {
    matches!(error, KafkaError::MessageConsumptionFatal(_))
}

/// Ends the process with exit code 1 after a fatal consumer error ([`is_fatal`]): such a
/// consumer receives nothing more and cannot be repaired in place, and a service that kept
/// running would stay not ready for good. Started again (by the kubelet), the process joins as
/// the same static member with a new member id, which the coordinator accepts.
pub fn exit_if_fatal(error: &KafkaError, group: &str) {
    if is_fatal(error) {
        tracing::error!(%error, group, "fatal consumer error; exiting so the process is started again");
        std::process::exit(1);
    }
}

/// Exponential backoff with jitter for in-place retries; never gives up by itself.
fn retry_backoff() -> backoff::ExponentialBackoff {
    ExponentialBackoffBuilder::new()
        .with_initial_interval(Duration::from_millis(100))
        .with_max_interval(Duration::from_secs(30))
        .with_randomization_factor(0.5)
        .with_max_elapsed_time(None)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn a_fenced_static_member_is_fatal_and_a_broker_outage_is_not() {
        assert!(is_fatal(&KafkaError::MessageConsumptionFatal(
            RDKafkaErrorCode::FencedInstanceId
        )));
        assert!(!is_fatal(&KafkaError::MessageConsumption(
            RDKafkaErrorCode::AllBrokersDown
        )));
        assert!(!is_fatal(&KafkaError::MessageConsumption(
            RDKafkaErrorCode::BrokerTransportFailure
        )));
    }
}
