//! Which requests this connector confirmed recently, so a re-delivered request is not sent to
//! the recipient again once it was confirmed.
//!
//! # Why a window of the confirmations topic, and not a compacted done topic
//!
//! A request comes back to a suppressor after it was confirmed only through at-least-once
//! delivery: a crash or a rebalance between the confirmation and the offset commit, a retry-topic
//! message read twice, a re-verification round. All of these happen within days of the
//! confirmation, so the set keeps each request for [`WINDOW`] (7 days, the longest a
//! re-verification round runs) after its confirmation and forgets it then. A request re-delivered
//! later than that (an operator resetting a consumer group to the beginning) is sent once more:
//! connectors are idempotent by request id, so that costs one vendor call, not a wrong outcome.
//!
//! The window bounds both costs that grew with the history before: memory (one entry per request
//! confirmed in the window, not per request ever confirmed) and start-up ([`rebuild`] seeks each
//! partition of the confirmations topic to the window's start by timestamp and reads from there,
//! instead of replaying 25 months of confirmations). A compacted per-(request, recipient) done
//! topic would have bounded neither without a retention of its own, and would have needed a
//! second produce after every confirmation, whose loss between the two writes the window does
//! not have.
//!
//! Each entry is 20 bytes (a 128-bit prefix of the SHA-256 of the request id and the minute of
//! the confirmation) in a hash table: 24 to 48 bytes an entry with the table's empty slots and
//! control bytes, against about 100 for the request id strings held before.

use std::collections::HashMap;
use std::mem::size_of;
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use hush_contracts::events::{Confirmation, ConfirmationAction};
use hush_contracts::identifiers::sha256_hex;
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::KafkaConfig;
use hush_runtime::kafka::startup::{topic_partitions, transient, wait_for_broker, StartupError};
use hush_runtime::kafka::{client_config, IncomingMessage};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// How long after its confirmation a request is still known to be done.
pub const WINDOW: Duration = Duration::from_secs(7 * 86_400);

/// Longest wait for the next confirmation while the rebuild has not reached the end offsets.
const NO_PROGRESS_TIMEOUT: Duration = Duration::from_secs(30);

/// A request id's key: the first 16 bytes of its SHA-256.
type RequestKey = [u8; 16];

/// Requests confirmed by one connector within the last [`WINDOW`] (or the window given to
/// [`DoneSet::with_window`]): [`contains`](Self::contains) is true for every request inserted
/// with a confirmation time within the window of the newest confirmation seen, and entries older
/// than that are dropped as later ones arrive.
pub struct DoneSet {
    entries: RwLock<Entries>,
    window_minutes: u32,
}

struct Entries {
    /// Request key → minute (since the Unix epoch) of its latest confirmation.
    confirmed: HashMap<RequestKey, u32>,
    /// The newest confirmation minute seen.
    newest: u32,
    /// The minute of the last eviction of entries older than the window.
    evicted_at: u32,
}

impl Default for DoneSet {
    /// An empty set with the [`WINDOW`] of 7 days.
    fn default() -> Self {
        Self::with_window(WINDOW)
    }
}

impl DoneSet {
    /// An empty set keeping each request for `window` (rounded down to whole minutes, at least
    /// one) after its confirmation.
    pub fn with_window(window: Duration) -> Self {
        let minutes = u32::try_from(window.as_secs() / 60).unwrap_or(u32::MAX);
        Self {
            entries: RwLock::new(Entries {
                confirmed: HashMap::new(),
                newest: 0,
                evicted_at: 0,
            }),
            window_minutes: minutes.max(1),
        }
    }

    /// Whether `request_id` was confirmed within the window.
    pub fn contains(&self, request_id: &str) -> bool {
        let entries = self.entries.read().expect("done lock");
        let cutoff = entries.newest.saturating_sub(self.window_minutes);
        entries
            .confirmed
            .get(&key_of(request_id))
            .is_some_and(|&minute| minute >= cutoff)
    }

    /// Records a confirmation made now.
    pub fn insert(&self, request_id: String) {
        self.insert_at(&request_id, now_millis());
    }

    /// Records a confirmation made at `confirmed_at_ms` (milliseconds since the Unix epoch).
    /// One older than the window of the newest confirmation seen is not recorded.
    pub fn insert_at(&self, request_id: &str, confirmed_at_ms: i64) {
        let minute = u32::try_from(confirmed_at_ms.max(0) / 60_000).unwrap_or(u32::MAX);
        let mut entries = self.entries.write().expect("done lock");
        entries.newest = entries.newest.max(minute);
        let cutoff = entries.newest.saturating_sub(self.window_minutes);
        if minute < cutoff {
            return;
        }
        let slot = entries
            .confirmed
            .entry(key_of(request_id))
            .or_insert(minute);
        *slot = (*slot).max(minute);
        // Evict at most every eighth of the window: each eviction walks the whole table.
        if entries.newest >= entries.evicted_at + self.window_minutes / 8 {
            entries.confirmed.retain(|_, &mut at| at >= cutoff);
            entries.evicted_at = entries.newest;
        }
    }

    /// Number of requests held (confirmed within the window, and some not yet evicted).
    pub fn len(&self) -> usize {
        self.entries.read().expect("done lock").confirmed.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap held by the set, in bytes: its hash table's slots, control bytes and trailing group
    /// (the layout of the SwissTable behind `std`'s `HashMap`), from its capacity.
    pub fn heap_bytes(&self) -> usize {
        const GROUP_WIDTH: usize = 16;
        let capacity = self.entries.read().expect("done lock").confirmed.capacity();
        if capacity == 0 {
            return 0;
        }
        let buckets = if capacity < 8 {
            capacity + 1
        } else {
            (capacity * 8 / 7).next_power_of_two()
        };
        (buckets * size_of::<(RequestKey, u32)>()).next_multiple_of(GROUP_WIDTH)
            + buckets
            + GROUP_WIDTH
    }
}

/// What [`rebuild`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    /// Confirmations read (of every recipient), from the window's start to the end offsets.
    pub records: u64,
    /// Partitions of the confirmations topic with nothing in the window.
    pub partitions_without_records: usize,
}

/// Rebuilds the done-set of recipient `recipient_id` from the confirmations written in the last
/// `window`: [`rebuild_until`] with a wait for the broker that only its answer ends.
pub async fn rebuild(
    kafka: &KafkaConfig,
    topic: &str,
    client_id: &str,
    codec: &AvroCodec,
    recipient_id: &str,
    window: Duration,
) -> anyhow::Result<(DoneSet, Rebuilt)> {
    let reader = Reader {
        kafka,
        topic,
        client_id,
        codec,
    };
    rebuild_until(&reader, recipient_id, window, &CancellationToken::new()).await
}

/// Where [`rebuild_until`] reads the confirmations from.
pub struct Reader<'a> {
    /// The broker.
    pub kafka: &'a KafkaConfig,
    /// The confirmations topic.
    pub topic: &'a str,
    /// The Kafka client id of the reader.
    pub client_id: &'a str,
    /// The decoder of the confirmations.
    pub codec: &'a AvroCodec,
}

/// Rebuilds the done-set of recipient `recipient_id` from the confirmations written in the last
/// `window`: each partition of the reader's topic is read from the first offset whose timestamp
/// is within the window (found by the broker's time index) up to its end offset at the call. A
/// success or a confirmation awaiting read-back closes a request; a permanent failure does not
/// (it can be re-driven once its cause is fixed). A confirmation that cannot be decoded is
/// counted and logged, not fatal: its request may be sent again, which the connectors tolerate.
///
/// A broker that does not answer (down, restarting) is waited for, with backoff while finding
/// the window's start ([`wait_for_broker`]) and while reading; a missing topic is an error at
/// once. The wait ends with an error when `stop` is cancelled.
pub async fn rebuild_until(
    reader: &Reader<'_>,
    recipient_id: &str,
    window: Duration,
    stop: &CancellationToken,
) -> anyhow::Result<(DoneSet, Rebuilt)> {
    let topic = reader.topic;
    let done = DoneSet::with_window(window);
    let consumer: StreamConsumer = client_config(reader.kafka)?
        .set(
            "group.id",
            format!(
                "{}-done-{}-{}",
                reader.client_id,
                std::process::id(),
                now_millis()
            ),
        )
        .set("client.id", reader.client_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create()
        .context("kafka reader of the confirmations")?;
    let since = now_millis() - i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    let (consumer, starts) = {
        let (topic, stop) = (topic.to_owned(), stop.clone());
        tokio::task::spawn_blocking(move || {
            let what = format!("the done-set window of {topic}");
            let starts = wait_for_broker(&what, &stop, || window_starts(&consumer, &topic, since));
            (consumer, starts)
        })
        .await
        .context("finding the done-set window")?
    };
    let starts = starts?;
    let partitions_without_records = starts.iter().filter(|s| s.1 >= s.2).count();
    let mut assignment = TopicPartitionList::new();
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    for &(partition, start, end) in &starts {
        if start < end {
            assignment.add_partition_offset(topic, partition, Offset::Offset(start))?;
            remaining.insert(partition, end);
        }
    }
    let mut records = 0;
    if !remaining.is_empty() {
        consumer
            .assign(&assignment)
            .with_context(|| format!("assign {topic}"))?;
    }
    let mut broker_away = false;
    while !remaining.is_empty() {
        let received = tokio::select! {
            _ = stop.cancelled() => anyhow::bail!("stopped while rebuilding the done-set from {topic}"),
            received = tokio::time::timeout(NO_PROGRESS_TIMEOUT, consumer.recv()) => received,
        };
        let message = match received {
            // Silence while the broker is known to be away is waiting, not a stall.
            Err(_) if broker_away => {
                tracing::warn!(
                    topic,
                    "broker still away while rebuilding the done-set; waiting"
                );
                continue;
            }
            Err(_) => anyhow::bail!("no progress reading {topic} for 30 s"),
            Ok(Ok(message)) => message,
            // librdkafka reports a lost broker connection and reconnects by itself (a broker
            // restart during the rebuild): wait for it, however long it takes, until `stop`.
            Ok(Err(error)) if transient(&error) => {
                if !broker_away {
                    tracing::warn!(%error, topic, "broker away while rebuilding the done-set; not ready, waiting for it");
                    broker_away = true;
                }
                tokio::time::sleep(BROKER_AWAY_POLL).await;
                continue;
            }
            Ok(Err(error)) => return Err(error).with_context(|| format!("reading {topic}")),
        };
        broker_away = false;
        let incoming = IncomingMessage::from_borrowed(&message);
        if remaining
            .get(&incoming.partition)
            .is_some_and(|&end| incoming.offset + 1 >= end)
        {
            remaining.remove(&incoming.partition);
        }
        records += 1;
        remember(&done, reader.codec, recipient_id, incoming).await;
    }
    let rebuilt = Rebuilt {
        records,
        partitions_without_records,
    };
    tracing::info!(
        records,
        confirmed = done.len(),
        heap_bytes = done.heap_bytes(),
        window_hours = window.as_secs() / 3600,
        connector = recipient_id,
        "done-set rebuilt from the confirmations of the window"
    );
    Ok((done, rebuilt))
}

/// How long the rebuild pauses after a transport error before reading again.
const BROKER_AWAY_POLL: Duration = Duration::from_millis(200);

/// Longest a start-up read of the broker waits for its answer.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Per partition of `topic`: (partition, first offset at or after `since_ms`, end offset).
/// A partition with nothing that recent starts at its end. A broker that does not answer, or a
/// partition whose leader is being elected, is [`StartupError::Unreachable`]; a missing topic is
/// refused.
fn window_starts(
    consumer: &StreamConsumer,
    topic: &str,
    since_ms: i64,
) -> Result<Vec<(i32, i64, i64)>, StartupError> {
    let partitions = topic_partitions(consumer.client(), topic)?;
    let mut times = TopicPartitionList::new();
    for &partition in &partitions {
        times
            .add_partition_offset(topic, partition, Offset::Offset(since_ms))
            .map_err(|e| StartupError::refused(format!("offsets of {topic} by time: {e}")))?;
    }
    let found = consumer
        .offsets_for_times(times, READ_TIMEOUT)
        .map_err(|e| StartupError::from_kafka(&format!("offsets of {topic} by time"), &e))?;
    partitions
        .into_iter()
        .map(|partition| {
            let by_time = found.find_partition(topic, partition);
            if let Some(Err(error)) = by_time.as_ref().map(|e| e.error()) {
                return Err(StartupError::from_kafka(
                    &format!("offset of {topic} partition {partition} by time"),
                    &error,
                ));
            }
            let what = format!("watermarks of {topic} partition {partition}");
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, READ_TIMEOUT)
                .map_err(|e| StartupError::from_kafka(&what, &e))?;
            let start = match by_time.map(|e| e.offset()) {
                Some(Offset::Offset(offset)) => offset.max(low),
                // No record at or after the window's start.
                _ => high,
            };
            Ok((partition, start, high))
        })
        .collect()
}

/// Adds one confirmation record to `done` when it closes a request of `recipient_id`.
async fn remember(done: &DoneSet, codec: &AvroCodec, recipient_id: &str, message: IncomingMessage) {
    let payload = message.payload.unwrap_or_default();
    match codec.decode_patiently::<Confirmation>(&payload).await {
        Ok(confirmation)
            if confirmation.connector_id == recipient_id
                && confirmation.action != ConfirmationAction::FailedPermanent =>
        {
            done.insert_at(&confirmation.request_id, confirmation.completed_at);
        }
        Ok(_) => {}
        Err(error) => {
            metrics::UNDECODABLE_CONFIRMATIONS
                .with_label_values(&[recipient_id])
                .inc();
            tracing::warn!(%error, partition = message.partition, offset = message.offset, "confirmation not decoded while rebuilding");
        }
    }
}

/// The key of a request id: the first 16 bytes of its SHA-256 (a collision between two of a
/// billion request ids has a chance of about 1e-21).
fn key_of(request_id: &str) -> RequestKey {
    let hex = sha256_hex(request_id);
    let mut key = [0u8; 16];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("sha256_hex is hex");
    }
    key
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_runtime::config::RegistryConfig;

    const DAY_MS: i64 = 86_400_000;
    const T0: i64 = 1_767_225_600_000;

    #[test]
    fn a_confirmed_request_is_done_until_the_window_has_passed() {
        let done = DoneSet::with_window(Duration::from_secs(7 * 86_400));
        done.insert_at("a", T0);
        assert!(done.contains("a"));
        assert!(!done.contains("b"));
        done.insert_at("b", T0 + 6 * DAY_MS);
        assert!(done.contains("a"), "6 days later it is still done");
        done.insert_at("c", T0 + 8 * DAY_MS);
        assert!(!done.contains("a"), "8 days later it is forgotten");
        assert!(done.contains("b") && done.contains("c"));
        assert_eq!(done.len(), 2, "the forgotten entry was evicted");
    }

    #[test]
    fn a_confirmation_older_than_the_window_is_not_recorded() {
        let done = DoneSet::with_window(Duration::from_secs(86_400));
        done.insert_at("new", T0);
        done.insert_at("old", T0 - 2 * DAY_MS);
        assert!(!done.contains("old"));
        assert_eq!(done.len(), 1);
    }

    #[test]
    fn an_entry_takes_at_most_48_bytes() {
        let done = DoneSet::default();
        let n = 100_000;
        for i in 0..n {
            done.insert_at(
                &format!("0b6f4f7e-8d7c-4c1a-9e55-{i:012}"),
                T0 + i64::from(i),
            );
        }
        assert_eq!(done.len(), n as usize);
        let per_entry = done.heap_bytes() as f64 / f64::from(n);
        assert!(per_entry <= 48.0, "{per_entry:.1} bytes an entry");
    }

    #[tokio::test]
    async fn the_rebuild_waits_for_a_broker_that_is_not_there_until_the_stop() {
        let kafka = KafkaConfig {
            bootstrap_servers: "127.0.0.1:1".into(),
            properties: [("socket.timeout.ms".to_owned(), "1000".to_owned())].into(),
            ..KafkaConfig::default()
        };
        let codec = AvroCodec::from_config(&RegistryConfig::default()).unwrap();
        let reader = Reader {
            kafka: &kafka,
            topic: "hush.confirmations.v1",
            client_id: "hush-test",
            codec: &codec,
        };
        let stop = CancellationToken::new();
        let canceller = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            canceller.cancel();
        });
        let started = std::time::Instant::now();
        let error = rebuild_until(&reader, "crm", WINDOW, &stop)
            .await
            .err()
            .expect("no broker, no done-set")
            .to_string();
        assert!(started.elapsed() >= Duration::from_secs(2), "{error}");
        // The metadata read failed as a broker not answering, and was retried until the stop.
        assert!(
            error.contains(
                "stopped while waiting for the broker (the done-set window of \
                 hush.confirmations.v1: metadata of hush.confirmations.v1: "
            ),
            "{error}"
        );
    }
}
