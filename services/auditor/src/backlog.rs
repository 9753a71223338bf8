//! Whether the requests consumer group still has work: a confirmation whose request is not on
//! record waits while the group's committed offsets are behind the requests topic's end (the
//! request is on its way), and is dead-lettered once they are not (the request does not exist).
//! Committed offsets are group-wide, so this holds whichever replica owns the partition.

use std::sync::Arc;
use std::time::Duration;

use hush_runtime::config::{ConfigError, KafkaConfig};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// Reads the requests group's committed offsets and the topic's high watermarks.
#[derive(Clone)]
pub struct RequestsBacklog {
    client: Arc<BaseConsumer>,
    topic: String,
}

impl RequestsBacklog {
    /// A probe of consumer group `group_id` on `topic` (it joins nothing and commits nothing).
    pub fn new(kafka: &KafkaConfig, group_id: &str, topic: &str) -> Result<Self, ConfigError> {
        let client: BaseConsumer = hush_runtime::kafka::client_config(kafka)?
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| ConfigError::Invalid(format!("backlog probe: {e}")))?;
        Ok(Self {
            client: Arc::new(client),
            topic: topic.to_owned(),
        })
    }

    /// True when every partition's committed offset has reached its high watermark; false
    /// when some are behind, or when the broker could not tell (so the caller keeps waiting).
    pub async fn caught_up(&self) -> bool {
        let (client, topic) = (self.client.clone(), self.topic.clone());
        tokio::task::spawn_blocking(move || caught_up(&client, &topic).unwrap_or(false))
            .await
            .unwrap_or(false)
    }
}

fn caught_up(client: &BaseConsumer, topic: &str) -> rdkafka::error::KafkaResult<bool> {
    let timeout = Duration::from_secs(5);
    let metadata = client.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut wanted = TopicPartitionList::new();
    for partition in &partitions {
        wanted.add_partition(topic, *partition);
    }
    let committed = client.committed_offsets(wanted, timeout)?;
    for partition in partitions {
        let (low, high) = client.fetch_watermarks(topic, partition, timeout)?;
        let position = match committed
            .find_partition(topic, partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(offset)) => offset,
            _ => low,
        };
        if position < high {
            return Ok(false);
        }
    }
    Ok(true)
}
