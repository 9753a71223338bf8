//! Enforcement of one outbound stream, exactly once: records are consumed, decided and the
//! cleared ones produced in one Kafka transaction together with the consumed offsets
//! (`send_offsets_to_transaction`), so a record is never both forwarded and dropped, never
//! forwarded twice, and a crash loses nothing: an aborted transaction is re-read from the last
//! committed offsets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hush_contracts::gate::{GateStream, RecordFormat};
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::KafkaConfig;
use hush_runtime::kafka::{
    client_config, dead_letter_headers, group_client_config, IncomingMessage,
};
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::decide::{decide, Decision};
use crate::metrics;
use crate::record::{parse_json, RecordError};
use hush_suppression_state::SuppressionLookup;

/// Client id of the gate in broker logs and dead letters.
pub const SERVICE: &str = "hush-gate";

/// What one stream's enforcement needs besides its configuration.
#[derive(Clone)]
pub struct StreamRuntime {
    /// Kafka connection.
    pub kafka: KafkaConfig,
    /// Registry codec, for Avro streams.
    pub codec: AvroCodec,
    /// The suppression index.
    pub lookup: Arc<SuppressionLookup>,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Consumer group prefix.
    pub group_id: String,
    /// This replica's id in transactional ids.
    pub instance_id: String,
    /// Broker-side transaction timeout.
    pub transaction_timeout: Duration,
    /// Most records per transaction.
    pub max_batch: usize,
}

/// Publishes the consumer lag librdkafka reports, per partition of the stream.
struct LagContext {
    stream: String,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        for stats in statistics.topics.values() {
            for (partition, partition_stats) in &stats.partitions {
                if *partition >= 0 && partition_stats.consumer_lag >= 0 {
                    metrics::LAG
                        .with_label_values(&[self.stream.as_str(), &partition.to_string()])
                        .set(partition_stats.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for LagContext {}

/// Enforces `stream` until `stop` is cancelled. A failed transaction is aborted and the
/// consumer rebuilt from the committed offsets, after a short pause.
pub async fn run(runtime: StreamRuntime, stream: GateStream, stop: CancellationToken) {
    while !stop.is_cancelled() {
        match enforce(&runtime, &stream, &stop).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, stream = %stream.source, "gate transaction failed; resuming from the last committed offsets");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// The transactional id of this replica for `source`.
pub fn transactional_id(runtime: &StreamRuntime, source: &str) -> String {
    format!("{}.{source}.{}", runtime.group_id, runtime.instance_id)
}

async fn enforce(
    runtime: &StreamRuntime,
    stream: &GateStream,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let group = format!("{}.{}", runtime.group_id, stream.source);
    // A static member when kafka.instance_id is set, like every other service's consumers.
    let consumer: StreamConsumer<LagContext> = group_client_config(&runtime.kafka, &group)?
        .set("client.id", SERVICE)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("statistics.interval.ms", "5000")
        .create_with_context(LagContext {
            stream: stream.source.clone(),
        })?;
    consumer.subscribe(&[stream.source.as_str()])?;
    let producer: FutureProducer = client_config(&runtime.kafka)?
        .set("client.id", SERVICE)
        .set(
            "transactional.id",
            transactional_id(runtime, &stream.source),
        )
        .set(
            "transaction.timeout.ms",
            runtime.transaction_timeout.as_millis().to_string(),
        )
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .create()?;
    // Fences an earlier incarnation with the same id and aborts its open transaction.
    let init = producer.clone();
    tokio::task::spawn_blocking(move || init.init_transactions(Duration::from_secs(30))).await??;
    tracing::info!(stream = %stream.source, destination = %stream.destination, "gate enforcing");
    loop {
        let batch = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            batch = next_batch(&consumer, runtime.max_batch) => batch?,
        };
        if batch.is_empty() {
            continue;
        }
        producer.begin_transaction()?;
        match write_batch(runtime, stream, &producer, &batch).await {
            Ok(()) => {
                let offsets = next_offsets(&batch)?;
                let Some(metadata) = consumer.group_metadata() else {
                    abort(&producer).await;
                    anyhow::bail!("the consumer has no group metadata to commit with");
                };
                let committer = producer.clone();
                let committed = tokio::task::spawn_blocking(move || {
                    committer.send_offsets_to_transaction(
                        &offsets,
                        &metadata,
                        Duration::from_secs(30),
                    )?;
                    committer.commit_transaction(Duration::from_secs(30))
                })
                .await?;
                if let Err(error) = committed {
                    abort(&producer).await;
                    return Err(error.into());
                }
            }
            Err(error) => {
                abort(&producer).await;
                return Err(error);
            }
        }
    }
}

async fn abort(producer: &FutureProducer) {
    let producer = producer.clone();
    let aborted =
        tokio::task::spawn_blocking(move || producer.abort_transaction(Duration::from_secs(30)))
            .await;
    if let Ok(Err(error)) = aborted {
        tracing::warn!(%error, "aborting the gate transaction failed; the broker aborts it at its timeout");
    }
}

/// Up to `max` records: waits for the first, then takes what arrives within 20 ms.
async fn next_batch(
    consumer: &StreamConsumer<LagContext>,
    max: usize,
) -> anyhow::Result<Vec<IncomingMessage>> {
    let mut batch = Vec::new();
    let first = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await;
    match first {
        Err(_) => return Ok(batch),
        Ok(message) => batch.push(IncomingMessage::from_borrowed(&message?)),
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(20);
    while batch.len() < max {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => break,
            Ok(message) => batch.push(IncomingMessage::from_borrowed(&message?)),
        }
    }
    Ok(batch)
}

/// The offsets to commit after `batch`: the next offset of each partition it read.
fn next_offsets(batch: &[IncomingMessage]) -> anyhow::Result<TopicPartitionList> {
    let mut next: HashMap<(String, i32), i64> = HashMap::new();
    for message in batch {
        let entry = next
            .entry((message.topic.clone(), message.partition))
            .or_insert(0);
        *entry = (*entry).max(message.offset + 1);
    }
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        offsets.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
    }
    Ok(offsets)
}

/// Decides every record and enqueues its output in the open transaction.
async fn write_batch(
    runtime: &StreamRuntime,
    stream: &GateStream,
    producer: &FutureProducer,
    batch: &[IncomingMessage],
) -> anyhow::Result<()> {
    let mut deliveries = Vec::with_capacity(batch.len());
    for message in batch {
        let payload = message.payload.as_deref().unwrap_or_default();
        let outcome = match decode_record(&runtime.codec, stream.format, payload).await {
            Ok(record) => decide(&record, stream, &runtime.lookup).map_err(Refused::Record),
            Err(refused) => Err(refused),
        };
        let (topic, payload, headers, label) = match outcome {
            Ok(Decision::Drop) => {
                metrics::RECORDS
                    .with_label_values(&[stream.source.as_str(), "dropped"])
                    .inc();
                continue;
            }
            Ok(Decision::Forward) => (
                stream.destination.as_str(),
                message.payload.clone().unwrap_or_default(),
                copy_headers(message, &[]),
                "forwarded",
            ),
            Ok(Decision::Rewrite { payload, policy }) => (
                stream.destination.as_str(),
                serde_json::to_vec(&payload)?,
                copy_headers(message, &[]),
                match policy {
                    hush_contracts::gate::GatePolicy::Strip => "stripped",
                    _ => "rewritten",
                },
            ),
            Ok(Decision::Annotate { payload, headers }) => (
                stream.destination.as_str(),
                match payload {
                    Some(payload) => serde_json::to_vec(&payload)?,
                    None => message.payload.clone().unwrap_or_default(),
                },
                copy_headers(message, &headers),
                "annotated",
            ),
            Err(Refused::Retry(reason)) => anyhow::bail!(reason),
            Err(refused) => {
                let reason = refused.to_string();
                tracing::warn!(stream = %stream.source, partition = message.partition, offset = message.offset, %reason, "dead-lettering an undecidable record");
                (
                    runtime.dlq_topic.as_str(),
                    message.payload.clone().unwrap_or_default(),
                    dead_letter_headers(message, &reason, SERVICE),
                    "dead_lettered",
                )
            }
        };
        let mut record = FutureRecord::to(topic).payload(&payload).headers(headers);
        if let Some(key) = message.key.as_deref() {
            record = record.key(key);
        }
        if let Some(timestamp) = message.timestamp_ms {
            record = record.timestamp(timestamp);
        }
        let delivery = producer
            .send_result(record)
            .map_err(|(error, _)| anyhow::anyhow!("enqueue on {topic}: {error}"))?;
        deliveries.push(delivery);
        metrics::RECORDS
            .with_label_values(&[stream.source.as_str(), label])
            .inc();
    }
    for delivery in deliveries {
        delivery
            .await
            .map_err(|_| anyhow::anyhow!("delivery cancelled"))?
            .map_err(|(error, _)| anyhow::anyhow!("not acknowledged: {error}"))?;
    }
    Ok(())
}

/// Why a record was not decided.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    /// Its content cannot be decided (not a JSON object, a bad identifier): dead-lettered.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Its Avro could not be decoded: dead-lettered.
    #[error("undecodable Avro record: {0}")]
    Avro(String),
    /// The registry is unreachable: retry later, never forward undecided.
    #[error("schema registry unavailable: {0}")]
    Retry(String),
}

/// The record as JSON, whatever its format.
pub(crate) async fn decode_record(
    codec: &AvroCodec,
    format: RecordFormat,
    payload: &[u8],
) -> Result<Value, Refused> {
    match format {
        RecordFormat::Json => Ok(parse_json(payload)?),
        RecordFormat::Avro => codec.decode_json(payload).await.map_err(|e| {
            if e.is_retryable() {
                Refused::Retry(e.to_string())
            } else {
                Refused::Avro(e.to_string())
            }
        }),
    }
}

fn copy_headers(message: &IncomingMessage, extra: &[(&'static str, String)]) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new_with_capacity(message.headers.len() + extra.len());
    for (name, value) in &message.headers {
        headers = headers.insert(Header {
            key: name,
            value: Some(value.as_slice()),
        });
    }
    for (name, value) in extra {
        headers = headers.insert(Header {
            key: name,
            value: Some(value.as_bytes()),
        });
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(partition: i32, offset: i64) -> IncomingMessage {
        IncomingMessage {
            topic: "s".into(),
            partition,
            offset,
            key: None,
            payload: None,
            headers: vec![],
            timestamp_ms: None,
        }
    }

    #[test]
    fn the_committed_offsets_are_one_past_the_last_record_of_each_partition() {
        let offsets = next_offsets(&[message(0, 4), message(1, 9), message(0, 7)]).unwrap();
        let mut found: Vec<(i32, Offset)> = offsets
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset()))
            .collect();
        found.sort_by_key(|(p, _)| *p);
        assert_eq!(found, vec![(0, Offset::Offset(8)), (1, Offset::Offset(10))]);
    }
}
