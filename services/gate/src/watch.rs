//! The leak watch: reads every watched topic (the gate's destinations and the configured
//! observed egress) and publishes a `LeakDetected` for each event about an identifier that was
//! suppressed before the event's own timestamp (plus the topic's grace). Its progress per topic
//! (`WatchProgress`: records examined, offsets, and the instant up to which every record has
//! been examined) is what lets the auditor prove a clean observation window.
//!
//! The watch reads every partition itself (no consumer group) and resumes from the offsets of
//! its last published progress; a re-read after a crash publishes the same leak ids again, which
//! the auditor absorbs. Run it in one replica.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hush_contracts::events::{now_millis, GateAction, LeakDetected, WatchProgress};
use hush_contracts::gate::{GateStream, IdentifierPath, RecordFormat, WatchedEgress};
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::{CommonConfig, ConfigError};
use hush_runtime::kafka::{client_config, EventProducer, IncomingMessage, TopicTable};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::decide::suppressed_identifiers;
use crate::metrics;
use crate::record::text_at;
use crate::stream::{decode_record, Refused, SERVICE};
use hush_suppression_state::{request_id_of, SuppressionLookup};

/// How often progress is published.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// One topic the watch reads, with how to find identifiers in it.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchedTopic {
    /// The topic.
    pub topic: String,
    /// Encoding.
    pub format: RecordFormat,
    /// Categories: which suppressions apply.
    pub categories: Vec<hush_contracts::events::Category>,
    /// Whether it carries sensitive data.
    pub sensitive: bool,
    /// Identifier paths.
    pub identifiers: Vec<IdentifierPath>,
    /// Grace after a suppression, in milliseconds.
    pub grace_ms: i64,
    /// Path of the recipient's name, for the evidence.
    pub destination_path: Option<String>,
}

impl WatchedTopic {
    /// A gate stream's destination, watched with no grace: the gate itself decided what went
    /// there, so anything about a suppressed subject is a leak at once.
    pub fn destination_of(stream: &GateStream) -> Self {
        Self {
            topic: stream.destination.clone(),
            format: stream.format,
            categories: stream.categories.clone(),
            sensitive: stream.sensitive,
            identifiers: stream.identifiers.clone(),
            grace_ms: 0,
            destination_path: stream.destination_path.clone(),
        }
    }

    /// A configured observed egress topic.
    pub fn egress(watch: &WatchedEgress) -> Self {
        Self {
            topic: watch.topic.clone(),
            format: watch.format,
            categories: watch.categories.clone(),
            sensitive: watch.sensitive,
            identifiers: watch.identifiers.clone(),
            grace_ms: watch.grace_ms,
            destination_path: watch.destination_path.clone(),
        }
    }
}

/// What the watch needs besides the topic.
#[derive(Clone)]
pub struct WatchRuntime {
    /// Kafka, registry and topic names.
    pub common: CommonConfig,
    /// Registry codec.
    pub codec: AvroCodec,
    /// Producer of leaks and progress.
    pub producer: EventProducer,
    /// The suppression index.
    pub lookup: Arc<SuppressionLookup>,
}

/// The leaks in one record: each suppressed identifier whose suppression took effect, plus the
/// grace, before the record's timestamp.
pub fn leaks_in(
    watched: &WatchedTopic,
    message: &IncomingMessage,
    record: &serde_json::Value,
    lookup: &SuppressionLookup,
    detected_at: i64,
) -> Result<Vec<LeakDetected>, crate::record::RecordError> {
    let event_time = message.timestamp_ms.unwrap_or(detected_at);
    let destination = watched
        .destination_path
        .as_deref()
        .and_then(|path| text_at(record, path))
        .unwrap_or_else(|| watched.topic.clone());
    Ok(suppressed_identifiers(
        record,
        &watched.identifiers,
        &watched.categories,
        watched.sensitive,
        lookup,
    )?
    .into_iter()
    .filter(|hit| {
        event_time
            > hit
                .suppression
                .effective_at_ms
                .saturating_add(watched.grace_ms)
    })
    .map(|hit| LeakDetected {
        leak_id: leak_id(message, &hit.identifier.sha256),
        identifier_hash: hit.identifier.sha256.clone(),
        identifier_type: hit.identifier.kind,
        subject_key: String::new(),
        last_request_id: request_id_of(&hit.suppression),
        source_topic: message.topic.clone(),
        source_partition: message.partition,
        source_offset: message.offset,
        destination: destination.clone(),
        suppression_effective_at: hit.suppression.effective_at_ms,
        event_time,
        detected_at,
        action_taken: GateAction::Passed,
    })
    .collect())
}

/// The same event and identifier always get the same leak id, so a re-read changes nothing.
fn leak_id(message: &IncomingMessage, identifier_hash: &str) -> String {
    let name = format!(
        "{}/{}/{}/{identifier_hash}",
        message.topic, message.partition, message.offset
    );
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
}

/// The last published progress of every watched topic, read from the progress topic.
pub async fn last_progress(
    common: &CommonConfig,
    codec: &AvroCodec,
) -> Result<HashMap<String, WatchProgress>, ConfigError> {
    let (kafka, topic) = (common.kafka.clone(), common.topics.watch.clone());
    let table = tokio::task::spawn_blocking(move || TopicTable::new(&kafka, &topic, SERVICE))
        .await
        .map_err(|e| ConfigError::Invalid(e.to_string()))??;
    let found = std::sync::Mutex::new(HashMap::new());
    table
        .catch_up(|message| {
            let found = &found;
            async move {
                let Some(payload) = message.payload.as_deref() else {
                    return;
                };
                if let Ok(progress) = codec.decode::<WatchProgress>(payload).await {
                    found
                        .lock()
                        .expect("progress lock")
                        .insert(progress.topic.clone(), progress);
                }
            }
        })
        .await?;
    Ok(found.into_inner().expect("progress lock"))
}

/// Watches one topic until `stop` is cancelled, resuming from `resume`.
pub async fn run(
    runtime: WatchRuntime,
    watched: WatchedTopic,
    resume: Option<WatchProgress>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let consumer: Arc<StreamConsumer> = Arc::new(
        client_config(&runtime.common.kafka)?
            .set(
                "group.id",
                format!("{SERVICE}-watch-{}", uuid::Uuid::new_v4()),
            )
            .set("client.id", SERVICE)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .create()?,
    );
    let partitions = {
        let (consumer, topic) = (consumer.clone(), watched.topic.clone());
        tokio::task::spawn_blocking(move || partitions_of(&consumer, &topic)).await??
    };
    let mut offsets: HashMap<String, i64> = resume
        .as_ref()
        .map(|p| p.offsets.clone())
        .unwrap_or_default();
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        let offset = offsets
            .get(&partition.to_string())
            .map_or(Offset::Beginning, |o| Offset::Offset(*o));
        assignment.add_partition_offset(&watched.topic, *partition, offset)?;
    }
    consumer.assign(&assignment)?;
    let mut progress = resume.unwrap_or(WatchProgress {
        topic: watched.topic.clone(),
        records_examined: 0,
        covered_until: 0,
        offsets: HashMap::new(),
        leaks_found: 0,
        updated_at: 0,
    });
    let mut ticks = tokio::time::interval(PROGRESS_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = ticks.tick() => {
                let tick_at = now_millis();
                let caught_up = {
                    let (consumer, topic) = (consumer.clone(), watched.topic.clone());
                    let partitions = partitions.clone();
                    tokio::task::spawn_blocking(move || caught_up(&consumer, &topic, &partitions)).await??
                };
                if let Some(positions) = caught_up.positions {
                    offsets.extend(positions);
                }
                if caught_up.at_end {
                    progress.covered_until = tick_at;
                }
                progress.offsets = offsets.clone();
                progress.updated_at = now_millis();
                runtime
                    .producer
                    .send(&runtime.common.topics.watch, &watched.topic, &progress)
                    .await?;
            }
            received = consumer.recv() => {
                let message = IncomingMessage::from_borrowed(&received?);
                let leaks = examine(&runtime, &watched, &message, &stop).await;
                for leak in &leaks {
                    runtime.producer.send(&runtime.common.topics.leaks, &leak.identifier_hash, leak).await?;
                    tracing::warn!(topic = %leak.source_topic, partition = leak.source_partition, offset = leak.source_offset, request_id = %leak.last_request_id, "leak: an event about a suppressed subject left after the suppression took effect");
                }
                progress.records_examined += 1;
                progress.leaks_found += leaks.len() as i64;
                offsets.insert(message.partition.to_string(), message.offset + 1);
            }
        }
    }
}

/// The leaks of one record; an undecodable record is counted and passed (the watch observes,
/// it cannot stop anything), and an unreachable registry is waited for.
async fn examine(
    runtime: &WatchRuntime,
    watched: &WatchedTopic,
    message: &IncomingMessage,
    stop: &CancellationToken,
) -> Vec<LeakDetected> {
    let payload = message.payload.as_deref().unwrap_or_default();
    loop {
        let outcome = match decode_record(&runtime.codec, watched.format, payload).await {
            Ok(record) => leaks_in(watched, message, &record, &runtime.lookup, now_millis())
                .map_err(Refused::Record),
            Err(refused) => Err(refused),
        };
        let result = match outcome {
            Ok(leaks) if leaks.is_empty() => ("clean", leaks),
            Ok(leaks) => ("leak", leaks),
            Err(Refused::Retry(reason)) => {
                tracing::warn!(%reason, topic = %watched.topic, "leak watch waiting for the schema registry");
                tokio::select! {
                    _ = stop.cancelled() => return Vec::new(),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
            Err(refused) => {
                tracing::warn!(reason = %refused, topic = %watched.topic, partition = message.partition, offset = message.offset, "leak watch could not read a record");
                ("undecodable", Vec::new())
            }
        };
        metrics::WATCHED
            .with_label_values(&[watched.topic.as_str(), result.0])
            .inc();
        return result.1;
    }
}

fn partitions_of(consumer: &StreamConsumer, topic: &str) -> anyhow::Result<Vec<i32>> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(30))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .first()
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    anyhow::ensure!(
        !partitions.is_empty(),
        "watched topic {topic} does not exist"
    );
    Ok(partitions)
}

/// Where the watch stands against the end of the topic.
struct CatchUp {
    /// Whether every partition has been read to its end.
    at_end: bool,
    /// The consumer's positions (next offsets), when known.
    positions: Option<HashMap<String, i64>>,
}

fn caught_up(
    consumer: &StreamConsumer,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<CatchUp> {
    let positions = consumer.position()?;
    let mut next: HashMap<String, i64> = HashMap::new();
    for element in positions.elements_for_topic(topic) {
        if let Offset::Offset(offset) = element.offset() {
            next.insert(element.partition().to_string(), offset);
        }
    }
    let mut at_end = true;
    for partition in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, *partition, Duration::from_secs(5))?;
        let position = next.get(&partition.to_string()).copied().unwrap_or(low);
        if position < high && high > low {
            at_end = false;
        }
    }
    Ok(CatchUp {
        at_end,
        positions: (!next.is_empty()).then_some(next),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::events::{Category, IdentifierType, MinorStatus, SuppressionState};
    use hush_contracts::identifiers::sha256_hex;
    use serde_json::json;

    const EFFECTIVE: i64 = 1_700_000_000_000;

    fn watched(grace_ms: i64) -> WatchedTopic {
        WatchedTopic {
            topic: "egress.tags.v1".into(),
            format: RecordFormat::Json,
            categories: vec![Category::Advertising],
            sensitive: false,
            identifiers: vec![IdentifierPath {
                path: "email".into(),
                kind: IdentifierType::Email,
                hashed: false,
            }],
            grace_ms,
            destination_path: Some("vendor".into()),
        }
    }

    fn lookup() -> SuppressionLookup {
        let lookup = SuppressionLookup::default();
        lookup.apply(&SuppressionState {
            identifier_hash: sha256_hex("jane@example.com"),
            identifier_type: IdentifierType::Email,
            subject_key: sha256_hex("jane@example.com"),
            sale_share_opted_out: true,
            sensitive_limited: false,
            deleted: false,
            effective_at: EFFECTIVE,
            resolicit_after: None,
            minor_status: MinorStatus::NotMinor,
            last_request_id: "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10".into(),
            updated_at: EFFECTIVE,
            synthetic: false,
        });
        lookup
    }

    fn message(timestamp: i64) -> IncomingMessage {
        IncomingMessage {
            topic: "egress.tags.v1".into(),
            partition: 3,
            offset: 77,
            key: None,
            payload: None,
            headers: vec![],
            timestamp_ms: Some(timestamp),
        }
    }

    #[test]
    fn an_event_after_the_suppression_is_a_leak_with_its_location() {
        let record = json!({"email": "jane@example.com", "vendor": "meta"});
        let leaks = leaks_in(&watched(0), &message(EFFECTIVE + 10), &record, &lookup(), 1).unwrap();
        assert_eq!(leaks.len(), 1);
        let leak = &leaks[0];
        assert_eq!((leak.source_partition, leak.source_offset), (3, 77));
        assert_eq!(leak.identifier_hash, sha256_hex("jane@example.com"));
        assert_eq!(leak.last_request_id, "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10");
        assert_eq!(leak.destination, "meta");
        assert_eq!(leak.event_time - leak.suppression_effective_at, 10);
    }

    #[test]
    fn an_event_before_the_suppression_or_within_the_grace_is_no_leak() {
        let record = json!({"email": "jane@example.com"});
        assert!(
            leaks_in(&watched(0), &message(EFFECTIVE - 1), &record, &lookup(), 1)
                .unwrap()
                .is_empty()
        );
        assert!(leaks_in(
            &watched(60_000),
            &message(EFFECTIVE + 59_000),
            &record,
            &lookup(),
            1
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn the_same_event_always_gets_the_same_leak_id() {
        let record = json!({"email": "jane@example.com"});
        let first = leaks_in(&watched(0), &message(EFFECTIVE + 1), &record, &lookup(), 1).unwrap();
        let again = leaks_in(&watched(0), &message(EFFECTIVE + 1), &record, &lookup(), 2).unwrap();
        assert_eq!(first[0].leak_id, again[0].leak_id);
    }

    #[test]
    fn someone_else_is_no_leak() {
        let record = json!({"email": "john@example.com"});
        assert!(
            leaks_in(&watched(0), &message(EFFECTIVE + 1), &record, &lookup(), 1)
                .unwrap()
                .is_empty()
        );
    }
}
