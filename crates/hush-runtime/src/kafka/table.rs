//! Reading a whole topic as a table: every partition from the beginning, first up to the
//! high watermarks (a rebuild at start-up), then following new records. Used for the compacted
//! state topics and for rebuilding in-memory views; it joins no consumer group and commits
//! nothing.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};

use super::BrokerErrorContext;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::consumer::IncomingMessage;
use super::startup::{topic_partitions, transient, wait_for_broker, StartupError};
use crate::config::{ConfigError, KafkaConfig};

/// How long catching up may go without a record before it gives up.
const CATCH_UP_STALL: Duration = Duration::from_secs(30);

/// A reader of every partition of one topic.
pub struct TopicTable {
    consumer: StreamConsumer<BrokerErrorContext>,
    topic: String,
    /// Ends a wait for the broker while catching up.
    stop: CancellationToken,
}

impl TopicTable {
    /// Assigns every partition of `topic` from the beginning, waiting for the broker as long
    /// as it does not answer ([`TopicTable::open`] without a stop).
    pub fn new(kafka: &KafkaConfig, topic: &str, client_id: &str) -> Result<Self, ConfigError> {
        Self::open(kafka, topic, client_id, &CancellationToken::new())
    }

    /// Assigns every partition of `topic` from the beginning; a broker that does not answer
    /// is waited for ([`wait_for_broker`]) until `stop` is cancelled.
    pub fn open(
        kafka: &KafkaConfig,
        topic: &str,
        client_id: &str,
        stop: &CancellationToken,
    ) -> Result<Self, ConfigError> {
        let context = BrokerErrorContext::default();
        let consumer: StreamConsumer<BrokerErrorContext> = super::client_config(kafka)?
            .set(
                "group.id",
                format!("{client_id}-table-{}", uuid::Uuid::new_v4()),
            )
            .set("client.id", client_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set(
                "statistics.interval.ms",
                super::restore::STATISTICS_INTERVAL_MS,
            )
            .create_with_context(context.clone())
            .map_err(|e| ConfigError::Invalid(format!("kafka table reader: {e}")))?;
        context.attach(consumer.client(), &kafka.bootstrap_servers);
        let partitions = wait_for_broker(&format!("metadata of {topic}"), stop, || {
            topic_partitions(consumer.client(), topic)
        })?;
        let mut assignment = TopicPartitionList::new();
        for partition in partitions {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        consumer
            .assign(&assignment)
            .map_err(|e| ConfigError::Invalid(format!("assign {topic}: {e}")))?;
        Ok(Self {
            consumer,
            topic: topic.to_owned(),
            stop: stop.clone(),
        })
    }

    /// Applies every record up to the high watermarks as they were at the call; returns how
    /// many records were applied. A broker that is away is waited for (until the stop given to
    /// [`TopicTable::open`]); 30 s without a record or a transport error is a stall, an error.
    pub async fn catch_up<F, Fut>(&self, mut apply: F) -> Result<u64, ConfigError>
    where
        F: FnMut(IncomingMessage) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut remaining = self.high_watermarks()?;
        remaining.retain(|_, (low, high)| high > low);
        let mut applied = 0;
        let mut progress = tokio::time::Instant::now();
        let mut broker_away = false;
        while !remaining.is_empty() {
            let stalled = |why: String| {
                ConfigError::Invalid(format!(
                    "no progress reading {} for {} s: {why}",
                    self.topic,
                    CATCH_UP_STALL.as_secs()
                ))
            };
            let received = tokio::time::timeout_at(progress + CATCH_UP_STALL, self.consumer.recv())
                .await
                .map_err(|_| stalled("no record arrived".into()))?;
            // librdkafka reports a lost broker connection as an error and reconnects by itself
            // (a broker restart during the rebuild): wait for it like `follow` does. While the
            // broker is away (a transport error or timeout) the wait is not a stall, however long
            // the broker takes to come back (a restarted KRaft node waits out its killed
            // incarnation's session first); it is said once per outage and ends at `stop`.
            let message = match received {
                Ok(message) => message,
                Err(error) if transient(&error) => {
                    if !broker_away {
                        tracing::warn!(%error, topic = %self.topic, "broker away while catching up; waiting for it");
                        broker_away = true;
                    }
                    if self.stop.is_cancelled() {
                        return Err(ConfigError::Invalid(format!(
                            "stopped while catching up {} ({error})",
                            self.topic
                        )));
                    }
                    progress = tokio::time::Instant::now();
                    tokio::time::sleep(super::ERROR_EVENT_PAUSE).await;
                    continue;
                }
                Err(error) if progress.elapsed() < CATCH_UP_STALL => {
                    tracing::warn!(%error, topic = %self.topic, "table read error while catching up; retrying");
                    tokio::time::sleep(super::ERROR_EVENT_PAUSE).await;
                    continue;
                }
                Err(error) => return Err(stalled(error.to_string())),
            };
            progress = tokio::time::Instant::now();
            broker_away = false;
            let incoming = IncomingMessage::from_borrowed(&message);
            if let Some((_, high)) = remaining.get(&incoming.partition) {
                if incoming.offset + 1 >= *high {
                    remaining.remove(&incoming.partition);
                }
            }
            apply(incoming).await;
            applied += 1;
        }
        Ok(applied)
    }

    /// Applies new records until `shutdown` is cancelled.
    pub async fn follow<F, Fut>(&self, shutdown: CancellationToken, mut apply: F)
    where
        F: FnMut(IncomingMessage) -> Fut,
        Fut: Future<Output = ()>,
    {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                received = self.consumer.recv() => match received {
                    Ok(message) => apply(IncomingMessage::from_borrowed(&message)).await,
                    Err(error) => {
                        tracing::warn!(%error, topic = %self.topic, "table read error");
                        tokio::time::sleep(super::ERROR_EVENT_PAUSE).await;
                    }
                },
            }
        }
    }

    fn high_watermarks(&self) -> Result<HashMap<i32, (i64, i64)>, ConfigError> {
        let assignment = self
            .consumer
            .assignment()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        assignment
            .elements()
            .iter()
            .map(|element| {
                self.watermarks(element.partition())
                    .map(|marks| (element.partition(), marks))
            })
            .collect()
    }

    /// A partition's watermarks, waited for while the broker is down ([`wait_for_broker`]) and
    /// retried a few times on any other error (a new topic's leader being elected).
    fn watermarks(&self, partition: i32) -> Result<(i64, i64), ConfigError> {
        let mut attempts = 0;
        let what = format!("watermarks of {} partition {partition}", self.topic);
        loop {
            let read = wait_for_broker(&what, &self.stop, || {
                self.consumer
                    .fetch_watermarks(&self.topic, partition, Duration::from_secs(10))
                    .map_err(|e| StartupError::from_kafka(&what, &e))
            });
            match read {
                Ok(marks) => return Ok(marks),
                Err(error) if attempts < 20 => {
                    attempts += 1;
                    tracing::debug!(%error, topic = %self.topic, partition, "watermarks not yet available");
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(error) => return Err(error),
            }
        }
    }
}
