//! Reading one version of an audit record back from the compacted audit topic, where it sits:
//! the topic is the store of the records a replica keeps only as summaries.

use std::time::Duration;

use async_trait::async_trait;
use hush_contracts::events::AuditRecord;
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::{ConfigError, KafkaConfig};
use hush_runtime::kafka::ERROR_EVENT_PAUSE;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Mutex;

use super::Position;

/// Why a version could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The broker did not answer in time, or refused.
    #[error(
        "the audit topic could not be read at partition {partition} offset {offset}: {reason}"
    )]
    Unavailable {
        /// Partition asked for.
        partition: i32,
        /// Offset asked for.
        offset: i64,
        /// What failed.
        reason: String,
    },
    /// The version is no longer in the topic (compaction kept a newer one).
    #[error("the version at partition {partition} offset {offset} was compacted away")]
    Moved {
        /// Partition asked for.
        partition: i32,
        /// Offset asked for.
        offset: i64,
    },
    /// The version read cannot be decoded.
    #[error("the audit record at partition {partition} offset {offset} does not decode: {reason}")]
    Undecodable {
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
        /// Decoder's reason.
        reason: String,
    },
    /// This replica has no way to read the topic back.
    #[error("this auditor cannot read records it does not hold")]
    NoFetcher,
}

/// Reads the version of an audit record at a position: `Ok(None)` for a tombstone.
#[async_trait]
pub trait RecordFetch: Send + Sync {
    /// The record written at `at`.
    async fn fetch(&self, at: Position) -> Result<Option<AuditRecord>, FetchError>;
}

/// Reads versions from the audit topic with a consumer of its own (no group, nothing
/// committed), one position at a time, each within a bounded wait. A read that could not be
/// answered replaces the consumer with a new one: `make faults` left this reader reporting
/// every broker down for minutes after a broker restart while the broker served every other
/// client, and a fresh client connects at once.
pub struct KafkaRecordFetch {
    consumer: Mutex<StreamConsumer>,
    kafka: KafkaConfig,
    topic: String,
    codec: AvroCodec,
    timeout: Duration,
}

impl KafkaRecordFetch {
    /// A reader of `topic` that gives up on a position after `timeout`.
    pub fn new(
        kafka: &KafkaConfig,
        topic: &str,
        codec: AvroCodec,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            consumer: Mutex::new(Self::reader(kafka)?),
            kafka: kafka.clone(),
            topic: topic.to_owned(),
            codec,
            timeout,
        })
    }

    /// The consumer positions are read with.
    fn reader(kafka: &KafkaConfig) -> Result<StreamConsumer, ConfigError> {
        hush_runtime::kafka::client_config(kafka)?
            .set(
                "group.id",
                format!("hush-auditor-fetch-{}", uuid::Uuid::new_v4()),
            )
            .set("client.id", "hush-auditor-fetch")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // An offset compaction removed reads from the first one left, which then says so.
            .set("auto.offset.reset", "earliest")
            // The version asked for is in the topic: the broker need not wait for more. (Each
            // read waited out this long on the local broker: 50 ms gave 51 ms a GET, 1 ms 3 ms.)
            .set("fetch.wait.max.ms", "1")
            .create()
            .map_err(|e| ConfigError::Invalid(format!("kafka audit record reader: {e}")))
    }

    async fn read_at(
        &self,
        consumer: &StreamConsumer,
        at: Position,
    ) -> Result<Option<AuditRecord>, FetchError> {
        let unavailable = |reason: String| FetchError::Unavailable {
            partition: at.partition,
            offset: at.offset,
            reason,
        };
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&self.topic, at.partition, Offset::Offset(at.offset))
            .map_err(|e| unavailable(e.to_string()))?;
        consumer
            .assign(&assignment)
            .map_err(|e| unavailable(e.to_string()))?;
        let until = tokio::time::Instant::now() + self.timeout;
        // librdkafka reports a broker it lost (all brokers down, a transport failure) through
        // the same queue and keeps reconnecting: such an error is not the answer, the wait goes
        // on, and it is the reason given if nothing came within the timeout.
        let mut last_error = None;
        let payload = loop {
            let message = match tokio::time::timeout_at(until, consumer.recv()).await {
                Ok(Ok(message)) => message,
                Ok(Err(error)) => {
                    last_error = Some(error.to_string());
                    let pause = tokio::time::Instant::now() + ERROR_EVENT_PAUSE;
                    tokio::time::sleep_until(pause.min(until)).await;
                    continue;
                }
                Err(_) => {
                    return Err(unavailable(
                        last_error
                            .unwrap_or_else(|| format!("no answer within {:?}", self.timeout)),
                    ))
                }
            };
            if message.partition() != at.partition || message.offset() < at.offset {
                continue;
            }
            if message.offset() > at.offset {
                return Err(FetchError::Moved {
                    partition: at.partition,
                    offset: at.offset,
                });
            }
            break message.payload().map(<[u8]>::to_vec);
        };
        let Some(payload) = payload else {
            return Ok(None);
        };
        self.codec
            .decode::<AuditRecord>(&payload)
            .await
            .map(Some)
            .map_err(|e| FetchError::Undecodable {
                partition: at.partition,
                offset: at.offset,
                reason: e.to_string(),
            })
    }
}

#[async_trait]
impl RecordFetch for KafkaRecordFetch {
    async fn fetch(&self, at: Position) -> Result<Option<AuditRecord>, FetchError> {
        let mut consumer = self.consumer.lock().await;
        let read = self.read_at(&consumer, at).await;
        // Drops what was fetched ahead, so the next position starts from a clean queue.
        let _ = consumer.unassign();
        if matches!(read, Err(FetchError::Unavailable { .. })) {
            match Self::reader(&self.kafka) {
                Ok(fresh) => *consumer = fresh,
                Err(error) => tracing::warn!(%error, "audit record reader not replaced"),
            }
        }
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_broker_error_is_waited_out_until_the_timeout_and_then_named() {
        let kafka = KafkaConfig {
            bootstrap_servers: "127.0.0.1:1".into(),
            ..KafkaConfig::default()
        };
        let timeout = Duration::from_millis(1_500);
        let codec = AvroCodec::new("http://127.0.0.1:1");
        let fetch = KafkaRecordFetch::new(&kafka, "hush.audit.v1", codec, timeout).unwrap();
        // Twice: the second read goes through the reader that replaced the first.
        for _ in 0..2 {
            let started = std::time::Instant::now();
            let at = Position {
                partition: 0,
                offset: 0,
            };
            let error = fetch.fetch(at).await.unwrap_err();
            assert!(
                started.elapsed() >= timeout,
                "gave up on the first error after {:?}",
                started.elapsed()
            );
            let FetchError::Unavailable { reason, .. } = error else {
                panic!("expected unavailable, got {error:?}");
            };
            assert!(
                reason.contains("Broker") || reason.contains("broker"),
                "{reason}"
            );
        }
    }
}
