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
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::ClientContext;
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
    fn from_borrowed(message: &BorrowedMessage<'_>) -> Self {
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

/// Commits stored offsets before partitions are taken away and tracks whether any are assigned.
struct RebalanceContext {
    assigned: Arc<AtomicBool>,
}

impl ClientContext for RebalanceContext {}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(%error, "nothing to commit before revoke");
            }
            self.assigned.store(false, Ordering::SeqCst);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            tracing::info!(partitions = partitions.count(), "partitions assigned");
            self.assigned.store(true, Ordering::SeqCst);
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
    group_id: String,
}

impl EventConsumer {
    /// Creates the consumer and subscribes it.
    pub fn new(
        kafka: &KafkaConfig,
        settings: ConsumerSettings,
        dlq: DeadLetterQueue,
    ) -> Result<Self, ConfigError> {
        let assigned = Arc::new(AtomicBool::new(false));
        let consumer: StreamConsumer<RebalanceContext> = super::client_config(kafka)?
            .set("group.id", &settings.group_id)
            .set("client.id", &settings.client_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .create_with_context(RebalanceContext {
                assigned: assigned.clone(),
            })
            .map_err(|e| ConfigError::Invalid(format!("kafka consumer: {e}")))?;
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| ConfigError::Invalid(format!("subscribe to {topics:?}: {e}")))?;
        Ok(Self {
            consumer,
            dlq,
            assigned,
            group_id: settings.group_id,
        })
    }

    /// True while the consumer holds at least one partition; a readiness signal.
    pub fn assigned_flag(&self) -> Arc<AtomicBool> {
        self.assigned.clone()
    }

    /// Consumes until `shutdown` is cancelled, then commits stored offsets synchronously.
    pub async fn run<H: MessageHandler>(self, shutdown: CancellationToken, handler: H) {
        loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => break,
                received = self.consumer.recv() => match received {
                    Ok(message) => message,
                    Err(error) => {
                        tracing::warn!(%error, group = %self.group_id, "kafka receive error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                },
            };
            let incoming = IncomingMessage::from_borrowed(&message);
            let span = tracing::info_span!(
                "consume",
                topic = %incoming.topic,
                partition = incoming.partition,
                offset = incoming.offset,
            );
            telemetry::set_parent_from_headers(&span, &incoming.headers);
            let done = self
                .process(&incoming, &handler, &shutdown)
                .instrument(span)
                .await;
            if !done {
                break;
            }
            if let Err(error) = self.consumer.store_offset_from_message(&message) {
                tracing::warn!(%error, "could not store offset; the message may be re-delivered");
            }
        }
        if let Err(error) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(%error, "final commit");
        }
        tracing::info!(group = %self.group_id, "consumer stopped");
    }

    /// Handles one message until it succeeded or was dead-lettered (true), or shutdown came
    /// first (false: the offset is not stored and the message will be re-delivered).
    async fn process<H: MessageHandler>(
        &self,
        message: &IncomingMessage,
        handler: &H,
        shutdown: &CancellationToken,
    ) -> bool {
        let mut backoff = retry_backoff();
        loop {
            let outcome = handler.handle(message).await;
            let wait = match outcome {
                Ok(()) => {
                    crate::metrics::MESSAGES_HANDLED
                        .with_label_values(&[message.topic.as_str(), "ok"])
                        .inc();
                    return true;
                }
                Err(HandlerError::Permanent(reason)) => {
                    tracing::warn!(%reason, "dead-lettering message");
                    crate::metrics::MESSAGES_HANDLED
                        .with_label_values(&[message.topic.as_str(), "dead_lettered"])
                        .inc();
                    return self.dead_letter(message, &reason, shutdown).await;
                }
                Err(HandlerError::Retryable(reason)) => {
                    crate::metrics::HANDLER_RETRIES
                        .with_label_values(&[message.topic.as_str()])
                        .inc();
                    let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(30));
                    tracing::warn!(%reason, wait_ms = wait.as_millis() as u64, "retrying message");
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

/// Exponential backoff with jitter for in-place retries; never gives up by itself.
fn retry_backoff() -> backoff::ExponentialBackoff {
    ExponentialBackoffBuilder::new()
        .with_initial_interval(Duration::from_millis(100))
        .with_max_interval(Duration::from_secs(30))
        .with_randomization_factor(0.5)
        .with_max_elapsed_time(None)
        .build()
}
