//! `hush gate`: publish a record to an outbound stream and read what the gate let through, to
//! try a stream's configuration (and for the demo).

use std::time::Duration;

use clap::Subcommand;
use hush_runtime::config::CommonConfig;
use hush_runtime::kafka::{client_config, EventProducer};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedHeaders};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

/// Gate commands.
#[derive(Subcommand)]
pub enum GateCommand {
    /// Publish one JSON record to a topic (an outbound stream or an observed egress topic).
    Publish {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Record key.
        #[arg(long, default_value = "hush-cli")]
        key: String,
        /// The record, a JSON object.
        json: String,
    },
    /// Print the committed records of a topic (what a `read_committed` consumer of a gate's
    /// destination sees), one JSON line each with its partition, offset and headers.
    Read {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Stop after this many records.
        #[arg(long, default_value_t = 100)]
        max: usize,
        /// Stop when nothing new arrived for this long, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        idle_ms: u64,
        /// Only records written at or after this time (Unix epoch milliseconds); from the
        /// beginning of the topic when absent.
        #[arg(long)]
        since_ms: Option<i64>,
    },
}

/// Runs a gate command.
pub async fn run(command: GateCommand, config: &CommonConfig) -> anyhow::Result<()> {
    match command {
        GateCommand::Publish { topic, key, json } => {
            let record: Value = serde_json::from_str(&json)
                .map_err(|e| anyhow::anyhow!("the record is not valid JSON: {e}"))?;
            anyhow::ensure!(record.is_object(), "the record must be a JSON object");
            let producer = EventProducer::new(
                &config.kafka,
                hush_runtime::codec::AvroCodec::from_config(&config.schema_registry)?,
                "hush-cli",
            )?;
            let delivered = producer
                .send_bytes(
                    &topic,
                    Some(key.as_bytes()),
                    &serde_json::to_vec(&record)?,
                    OwnedHeaders::new(),
                )
                .await?;
            println!(
                "published to {topic} partition {} offset {}",
                delivered.partition, delivered.offset
            );
            Ok(())
        }
        GateCommand::Read {
            topic,
            max,
            idle_ms,
            since_ms,
        } => {
            let config = config.clone();
            tokio::task::spawn_blocking(move || read(&config, &topic, max, idle_ms, since_ms))
                .await?
        }
    }
}

fn read(
    config: &CommonConfig,
    topic: &str,
    max: usize,
    idle_ms: u64,
    since_ms: Option<i64>,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = client_config(&config.kafka)?
        .set(
            "group.id",
            format!("hush-cli-read-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let start = match since_ms {
        // Looked up below: the first offset of each partition at or after that time.
        Some(since) => Offset::Offset(since),
        None => Offset::Beginning,
    };
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        assignment.add_partition_offset(topic, partition.id(), start)?;
    }
    anyhow::ensure!(assignment.count() > 0, "topic {topic} does not exist");
    if since_ms.is_some() {
        assignment = consumer.offsets_for_times(assignment, Duration::from_secs(10))?;
    }
    consumer.assign(&assignment)?;
    let mut printed = 0;
    while printed < max {
        let Some(message) = consumer.poll(Duration::from_millis(idle_ms)) else {
            break;
        };
        let message = message?;
        let payload = message.payload().unwrap_or_default();
        let record: Value = serde_json::from_slice(payload)
            .unwrap_or_else(|_| Value::String(format!("<{} bytes, not JSON>", payload.len())));
        let headers: serde_json::Map<String, Value> = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            Value::String(
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            ),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "{}",
            serde_json::json!({
                "partition": message.partition(),
                "offset": message.offset(),
                "headers": headers,
                "record": record,
            })
        );
        printed += 1;
    }
    Ok(())
}
