//! Reading a topic from its end: a run opens a tail before it writes, then waits for what its
//! write causes (intake's request, the gate's forwarded record). It joins no consumer group and
//! commits nothing.

use std::time::Duration;

use hush_runtime::config::KafkaConfig;
use hush_runtime::kafka::{client_config, IncomingMessage};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

use crate::run::CanaryError;

/// Every record written to one topic after [`Tail::open`].
pub struct Tail {
    consumer: StreamConsumer,
}

impl Tail {
    /// Assigns every partition of `topic` at its current end; with `committed_only`, records of
    /// transactions not (yet) committed are never seen, as a consumer of a gate's destination
    /// reads them.
    pub async fn open(
        kafka: &KafkaConfig,
        topic: &str,
        committed_only: bool,
    ) -> Result<Self, CanaryError> {
        let config = client_config(kafka)
            .map_err(|e| CanaryError::Kafka(e.to_string()))?
            .set(
                "group.id",
                format!("hush-canary-tail-{}", uuid::Uuid::new_v4()),
            )
            .set("client.id", "hush-canary")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set(
                "isolation.level",
                if committed_only {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            )
            .clone();
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let consumer: StreamConsumer = config
                .create()
                .map_err(|e| CanaryError::Kafka(format!("reader of {topic}: {e}")))?;
            let metadata = consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .map_err(|e| CanaryError::Kafka(format!("metadata of {topic}: {e}")))?;
            let partitions: Vec<i32> = metadata
                .topics()
                .first()
                .map(|t| t.partitions().iter().map(|p| p.id()).collect())
                .unwrap_or_default();
            if partitions.is_empty() {
                return Err(CanaryError::Kafka(format!(
                    "topic {topic} does not exist (create it with `hush topics create`)"
                )));
            }
            let mut assignment = TopicPartitionList::new();
            for partition in partitions {
                let (_, high) = consumer
                    .fetch_watermarks(&topic, partition, Duration::from_secs(10))
                    .map_err(|e| CanaryError::Kafka(format!("end of {topic}: {e}")))?;
                assignment
                    .add_partition_offset(&topic, partition, Offset::Offset(high))
                    .map_err(|e| CanaryError::Kafka(e.to_string()))?;
            }
            consumer
                .assign(&assignment)
                .map_err(|e| CanaryError::Kafka(format!("assign {topic}: {e}")))?;
            Ok(Self { consumer })
        })
        .await
        .map_err(|e| CanaryError::Kafka(e.to_string()))?
    }

    /// The next record, or `None` once `deadline` passed. Read errors are logged and reading
    /// goes on.
    pub async fn next(&self, deadline: Instant) -> Option<IncomingMessage> {
        loop {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Err(_) => return None,
                Ok(Ok(message)) => return Some(IncomingMessage::from_borrowed(&message)),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "canary tail read error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}
