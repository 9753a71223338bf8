//! The auditor's view of the compacted audit topic (request id → record), rebuilt at start-up
//! and kept current by following the topic, and the write path to that topic.
//!
//! Every replica follows the whole topic and keeps a compact [`RecordSummary`] of every
//! request, so the report, the dashboard and the metrics see everything; it keeps the full
//! [`AuditRecord`] only of the requests it owns ([`Holding`]: those whose confirmations
//! partition its owner consumer holds). Any other record is read back, when one is asked for,
//! from the version the summary points at in the topic ([`RecordFetch`]).
//!
//! Every stored version remembers where it sits in the topic. One request id always lands on
//! the same partition, so of two versions the one at the higher offset is the newer: a version
//! read back from the topic never replaces a newer one this replica already wrote.

pub mod fetch;
pub mod owner;
pub mod summary;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use hush_contracts::events::AuditRecord;
use hush_runtime::codec::AvroCodec;
use hush_runtime::kafka::{EventProducer, IncomingMessage};
use tokio::sync::watch;

pub use fetch::{FetchError, KafkaRecordFetch, RecordFetch};
pub use owner::Holding;
pub use summary::RecordSummary;

/// Where a version of a record sits in the audit topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

struct Entry {
    summary: RecordSummary,
    /// The full record, when this replica holds it.
    full: Option<Box<AuditRecord>>,
    at: Position,
}

/// The store key of a request id: the lowercase hyphenated UUID, or the id as given when it is
/// not a UUID.
pub fn request_key(request_id: &str) -> String {
    uuid::Uuid::parse_str(request_id.trim())
        .map(|id| id.to_string())
        .unwrap_or_else(|_| request_id.to_string())
}

/// Whether the version at `incoming` is newer than the stored one.
fn is_newer(stored: &Entry, incoming: Position, updated_at: i64) -> bool {
    if stored.at.partition == incoming.partition {
        incoming.offset > stored.at.offset
    } else {
        // The topic was repartitioned: fall back to the write time.
        updated_at >= stored.summary.updated_at
    }
}

/// How often a read-back is retried when compaction moved the version it looked for.
const FETCH_ATTEMPTS: usize = 3;

/// Audit records by request id, behind a lock: a summary of each, and the full record of those
/// held.
pub struct AuditStore {
    entries: RwLock<HashMap<String, Entry>>,
    holding: RwLock<Holding>,
    fetcher: Option<Arc<dyn RecordFetch>>,
    rebuilt: Arc<AtomicBool>,
    /// Bumped on every stored change, so a caller can wait for one.
    versions: watch::Sender<u64>,
    /// Highest offset read from the topic per partition (not this replica's own writes).
    followed: Mutex<HashMap<i32, i64>>,
}

impl Default for AuditStore {
    fn default() -> Self {
        Self {
            entries: RwLock::default(),
            holding: RwLock::new(Holding::Everything),
            fetcher: None,
            rebuilt: Arc::default(),
            versions: watch::channel(0).0,
            followed: Mutex::default(),
        }
    }
}

impl AuditStore {
    /// A receiver that sees a new value after every change to the store.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.versions.subscribe()
    }

    /// Whether the records read from the topic reach `offset` on `partition`.
    pub fn has_followed(&self, partition: i32, offset: i64) -> bool {
        self.followed
            .lock()
            .expect("followed lock")
            .get(&partition)
            .is_some_and(|&at| at >= offset)
    }

    fn changed(&self) {
        self.versions
            .send_modify(|version| *version = version.wrapping_add(1));
    }

    /// A store that holds in full only the requests of the confirmations partitions marked
    /// owned (none at first: see [`AuditStore::own`]) of `partitions`, and reads any other
    /// record back through `fetcher`.
    pub fn partitioned(partitions: u32, fetcher: Arc<dyn RecordFetch>) -> Self {
        Self {
            holding: RwLock::new(Holding::Partitions {
                partitions,
                owned: HashSet::new(),
            }),
            fetcher: Some(fetcher),
            ..Self::default()
        }
    }

    /// Marks `partition` of the confirmations topic as this replica's: the records of its
    /// requests written or read back from now on are held in full. (Records already on record
    /// stay summaries until the owner reads one back to change it.)
    pub fn own(&self, partition: i32) {
        if let Holding::Partitions { owned, .. } = &mut *self.holding.write().expect("holding lock")
        {
            owned.insert(partition);
        }
    }

    /// Gives up every owned partition (a rebalance happened: the owner consumer says again
    /// which it holds), with `partitions` the confirmations topic's partition count as the
    /// rebalance told it, and reduces the records held in full to their summaries.
    pub fn release_all(&self, partitions: u32) {
        let mut holding = self.holding.write().expect("holding lock");
        let Holding::Partitions {
            partitions: count,
            owned,
        } = &mut *holding
        else {
            return;
        };
        *count = partitions;
        owned.clear();
        let mut entries = self.entries.write().expect("audit store lock");
        for entry in entries.values_mut() {
            entry.full = None;
        }
    }

    /// Whether the request whose summary is `summary` is held in full.
    fn holds(&self, summary: &RecordSummary) -> bool {
        self.holding
            .read()
            .expect("holding lock")
            .holds(summary.owner_hash)
    }

    /// The full record of one request, when this replica holds it (see [`AuditStore::record`]
    /// for any request).
    pub fn get(&self, request_id: &str) -> Option<AuditRecord> {
        self.entries
            .read()
            .expect("audit store lock")
            .get(&request_key(request_id))
            .and_then(|e| e.full.as_deref().cloned())
    }

    /// Whether the request is on record (held or summarised).
    pub fn contains(&self, request_id: &str) -> bool {
        self.entries
            .read()
            .expect("audit store lock")
            .contains_key(&request_key(request_id))
    }

    /// The summary of one request, and where its latest version sits.
    pub fn summary(&self, request_id: &str) -> Option<(RecordSummary, Position)> {
        self.entries
            .read()
            .expect("audit store lock")
            .get(&request_key(request_id))
            .map(|e| (e.summary.clone(), e.at))
    }

    /// The full record of one request: the one held, or the latest version read back from the
    /// audit topic (then held from now on when this replica owns the request). `Ok(None)` when
    /// no such request is on record; an error when it is but the topic could not be read.
    pub async fn record(&self, request_id: &str) -> Result<Option<AuditRecord>, FetchError> {
        let key = request_key(request_id);
        let mut moved = None;
        for _ in 0..FETCH_ATTEMPTS {
            let at = {
                let entries = self.entries.read().expect("audit store lock");
                match entries.get(&key) {
                    None => return Ok(None),
                    Some(Entry {
                        full: Some(record), ..
                    }) => return Ok(Some(record.as_ref().clone())),
                    Some(entry) => entry.at,
                }
            };
            let fetcher = self.fetcher.as_ref().ok_or(FetchError::NoFetcher)?;
            match fetcher.fetch(at).await {
                Ok(Some(record)) if request_key(&record.request_id) == key => {
                    self.hold(&key, &record, at);
                    return Ok(Some(record));
                }
                Ok(_) => {
                    // A tombstone, or another key: the summary points at a version that is gone.
                    moved = Some(FetchError::Moved {
                        partition: at.partition,
                        offset: at.offset,
                    });
                }
                Err(error @ FetchError::Moved { .. }) => moved = Some(error),
                Err(error) => return Err(error),
            }
            // A newer version is in the topic; the follower brings its position.
            let mut changes = self.changes();
            let _ = tokio::time::timeout(std::time::Duration::from_millis(500), changes.changed())
                .await;
        }
        Err(moved.unwrap_or(FetchError::NoFetcher))
    }

    /// Keeps `record`, read back from `at`, in full when this replica owns it and `at` is still
    /// the latest version on record.
    fn hold(&self, key: &str, record: &AuditRecord, at: Position) {
        let owned = self
            .holding
            .read()
            .expect("holding lock")
            .holds(owner::key_hash(record.subject_key.as_bytes()));
        let mut entries = self.entries.write().expect("audit store lock");
        if let Some(entry) = entries.get_mut(key) {
            if owned && entry.at == at && entry.full.is_none() {
                entry.full = Some(Box::new(record.clone()));
            }
        }
    }

    /// Stores the version of a record found at `at`, unless a newer one is stored; returns
    /// whether it was stored. The full record is kept only when this replica holds the request.
    pub fn put(&self, record: AuditRecord, at: Position) -> bool {
        let key = request_key(&record.request_id);
        let summary = RecordSummary::of(&record);
        let full = self.holds(&summary).then(|| Box::new(record));
        let mut entries = self.entries.write().expect("audit store lock");
        match entries.get(&key) {
            Some(stored) if !is_newer(stored, at, summary.updated_at) => false,
            _ => {
                entries.insert(key, Entry { summary, full, at });
                drop(entries);
                self.changed();
                true
            }
        }
    }

    /// Removes a record on a tombstone found at `at`, unless a newer version is stored.
    pub fn remove(&self, request_id: &str, at: Position) -> bool {
        let key = request_key(request_id);
        let mut entries = self.entries.write().expect("audit store lock");
        match entries.get(&key) {
            Some(stored) if is_newer(stored, at, i64::MAX) => {
                entries.remove(&key);
                drop(entries);
                self.changed();
                true
            }
            _ => false,
        }
    }

    /// Runs `f` over the summary of every request on record, by request key, under the read
    /// lock (for reports, the dashboard, the metrics and the prover).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = (&str, &RecordSummary)>) -> T,
    ) -> T {
        let entries = self.entries.read().expect("audit store lock");
        f(&mut entries.iter().map(|(key, e)| (key.as_str(), &e.summary)))
    }

    /// Number of requests whose full record this replica holds.
    pub fn held(&self) -> usize {
        self.entries
            .read()
            .expect("audit store lock")
            .values()
            .filter(|e| e.full.is_some())
            .count()
    }

    /// Number of requests on record.
    pub fn len(&self) -> usize {
        self.entries.read().expect("audit store lock").len()
    }

    /// Whether no request is on record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The "audit rebuilt" readiness flag.
    pub fn rebuilt_flag(&self) -> Arc<AtomicBool> {
        self.rebuilt.clone()
    }

    /// Whether the start-up rebuild from the topic finished.
    pub fn is_rebuilt(&self) -> bool {
        self.rebuilt.load(Ordering::SeqCst)
    }

    /// Marks the start-up rebuild as finished.
    pub fn mark_rebuilt(&self) {
        self.rebuilt.store(true, Ordering::SeqCst);
    }

    /// Applies one message of the audit topic: a record, or a tombstone keyed by request id.
    /// An undecodable record is logged (by position only) and skipped.
    pub async fn apply(&self, codec: &AvroCodec, message: IncomingMessage) {
        let at = Position {
            partition: message.partition,
            offset: message.offset,
        };
        match message.payload.as_deref() {
            None => {
                if let Some(key) = message.key_str() {
                    self.remove(key, at);
                }
            }
            Some(payload) => match codec.decode_patiently::<AuditRecord>(payload).await {
                Ok(record) => {
                    self.put(record, at);
                }
                Err(error) => tracing::error!(
                    %error,
                    partition = at.partition,
                    offset = at.offset,
                    "skipping an audit record that can never decode"
                ),
            },
        }
        {
            let mut followed = self.followed.lock().expect("followed lock");
            let reached = followed.entry(at.partition).or_insert(at.offset);
            *reached = (*reached).max(at.offset);
        }
        // Wakes a waiter on the position too: reading back this replica's own write stores
        // nothing new.
        self.changed();
    }
}

/// Why a record was not written to the audit topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit record not written: {0}")]
pub struct WriteError(pub String);

/// Writes audit records and answers where the acknowledged version landed.
#[async_trait]
pub trait AuditWriter: Send + Sync {
    /// Writes `record` keyed by its request id; returns once acknowledged.
    async fn write(&self, record: &AuditRecord) -> Result<Position, WriteError>;
}

/// Writes audit records to the compacted audit topic through the idempotent producer.
pub struct KafkaAuditWriter {
    producer: EventProducer,
    topic: String,
}

impl KafkaAuditWriter {
    /// A writer to `topic` (normally `hush.audit.v1`).
    pub fn new(producer: EventProducer, topic: impl Into<String>) -> Self {
        Self {
            producer,
            topic: topic.into(),
        }
    }
}

#[async_trait]
impl AuditWriter for KafkaAuditWriter {
    async fn write(&self, record: &AuditRecord) -> Result<Position, WriteError> {
        let key = request_key(&record.request_id);
        let delivered = self
            .producer
            .send(&self.topic, &key, record)
            .await
            .map_err(|e| WriteError(e.to_string()))?;
        Ok(Position {
            partition: delivered.partition,
            offset: delivered.offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10";

    /// The status tests' open record, written at `updated_at`.
    fn record(updated_at: i64) -> AuditRecord {
        AuditRecord {
            updated_at,
            ..crate::status::tests::record(&[])
        }
    }

    fn at(offset: i64) -> Position {
        Position {
            partition: 2,
            offset,
        }
    }

    #[test]
    fn an_older_version_read_back_does_not_replace_a_newer_one() {
        let store = AuditStore::default();
        assert!(store.put(record(2), at(11)));
        assert!(!store.put(record(1), at(10)));
        assert_eq!(store.get(ID).unwrap().updated_at, 2);
        assert!(!store.put(record(2), at(11)), "own write read back");
        assert!(store.put(record(3), at(12)));
        assert_eq!(store.get(ID).unwrap().updated_at, 3);
    }

    #[test]
    fn lookups_ignore_uuid_case() {
        let store = AuditStore::default();
        let mut upper = record(1);
        upper.request_id = ID.to_uppercase();
        store.put(upper, at(1));
        assert!(store.get(ID).is_some());
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_tombstone_removes_only_older_versions() {
        let store = AuditStore::default();
        store.put(record(1), at(5));
        assert!(!store.remove(ID, at(4)));
        assert!(store.remove(ID, at(6)));
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn reading_back_an_own_write_advances_the_followed_position_and_wakes_waiters() {
        let store = AuditStore::default();
        let codec = AvroCodec::from_config(&hush_runtime::config::RegistryConfig::default())
            .expect("codec");
        let mut changes = store.changes();
        changes.borrow_and_update();
        assert!(!store.has_followed(2, 0));
        // A tombstone needs no registry: it is applied by position alone.
        store
            .apply(
                &codec,
                IncomingMessage {
                    topic: "hush.audit.v1".into(),
                    partition: 2,
                    offset: 7,
                    key: Some(ID.as_bytes().to_vec()),
                    payload: None,
                    headers: vec![],
                    timestamp_ms: None,
                },
            )
            .await;
        assert!(store.has_followed(2, 7));
        assert!(!store.has_followed(2, 8));
        assert!(!store.has_followed(1, 0));
        assert!(changes.has_changed().unwrap(), "a waiter is woken");
    }

    #[test]
    fn read_sees_every_record() {
        let store = AuditStore::default();
        store.put(record(1), at(1));
        let mut other = record(1);
        other.request_id = "5a0e2c56-1f1c-4a55-9a43-3b0e63c2a0d1".into();
        store.put(other, at(2));
        assert_eq!(store.read(|records| records.count()), 2);
        assert!(!store.is_rebuilt());
        store.mark_rebuilt();
        assert!(store.rebuilt_flag().load(Ordering::SeqCst));
    }

    /// A fetcher that answers from a map of positions, counting its calls.
    #[derive(Default)]
    struct TopicCopy {
        versions: Mutex<HashMap<(i32, i64), Option<AuditRecord>>>,
        calls: std::sync::atomic::AtomicUsize,
        down: AtomicBool,
    }

    #[async_trait]
    impl RecordFetch for TopicCopy {
        async fn fetch(&self, at: Position) -> Result<Option<AuditRecord>, FetchError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(FetchError::Unavailable {
                    partition: at.partition,
                    offset: at.offset,
                    reason: "broker down".into(),
                });
            }
            self.versions
                .lock()
                .unwrap()
                .get(&(at.partition, at.offset))
                .cloned()
                .ok_or(FetchError::Moved {
                    partition: at.partition,
                    offset: at.offset,
                })
        }
    }

    /// A record whose subject key lands on `partition` of 2.
    fn owned_by(partition: u32, id: &str, updated_at: i64) -> AuditRecord {
        let subject = (0..)
            .map(|i| format!("subject-{i}"))
            .find(|s| owner::key_hash(s.as_bytes()) % 2 == partition)
            .unwrap();
        let mut r = record(updated_at);
        r.request_id = id.into();
        r.subject_key = subject;
        r
    }

    const OTHER: &str = "5a0e2c56-1f1c-4a55-9a43-3b0e63c2a0d1";

    fn partitioned() -> (AuditStore, Arc<TopicCopy>) {
        let topic = Arc::new(TopicCopy::default());
        (AuditStore::partitioned(2, topic.clone()), topic)
    }

    #[test]
    fn only_the_requests_of_owned_partitions_are_held_in_full() {
        let (store, _) = partitioned();
        store.own(0);
        assert!(store.put(owned_by(0, ID, 1), at(1)));
        assert!(store.put(owned_by(1, OTHER, 1), at(2)));
        assert_eq!(store.len(), 2);
        assert_eq!(store.held(), 1);
        assert!(store.get(ID).is_some());
        assert!(store.get(OTHER).is_none(), "not owned: a summary only");
        assert!(store.contains(OTHER));
        let (summary, position) = store.summary(OTHER).unwrap();
        assert_eq!(summary, RecordSummary::of(&owned_by(1, OTHER, 1)));
        assert_eq!(position, at(2));
        assert_eq!(store.read(|all| all.count()), 2, "aggregates see both");
    }

    #[tokio::test]
    async fn a_record_not_held_is_read_back_at_its_position() {
        let (store, topic) = partitioned();
        let other = owned_by(1, OTHER, 4);
        topic
            .versions
            .lock()
            .unwrap()
            .insert((2, 9), Some(other.clone()));
        store.put(other.clone(), at(9));
        assert_eq!(store.record(OTHER).await, Ok(Some(other)));
        assert_eq!(
            store.held(),
            0,
            "read back, not kept: another replica owns it"
        );
        assert_eq!(store.record(ID).await, Ok(None), "not on record");
        topic.down.store(true, Ordering::SeqCst);
        assert!(matches!(
            store.record(OTHER).await,
            Err(FetchError::Unavailable { .. })
        ));
    }

    #[tokio::test]
    async fn a_gained_partitions_record_is_held_once_read_back_and_a_rebalance_releases_it() {
        let (store, topic) = partitioned();
        let mine = owned_by(1, ID, 3);
        topic
            .versions
            .lock()
            .unwrap()
            .insert((2, 5), Some(mine.clone()));
        store.put(mine.clone(), at(5));
        assert_eq!(store.held(), 0);
        store.own(1);
        assert_eq!(store.record(ID).await, Ok(Some(mine.clone())));
        assert_eq!(store.held(), 1, "gained: held from its first read-back on");
        assert_eq!(store.record(ID).await, Ok(Some(mine.clone())));
        assert_eq!(
            topic.calls.load(Ordering::SeqCst),
            1,
            "then served from memory"
        );
        let mut next = mine.clone();
        next.updated_at = 4;
        store.put(next.clone(), at(6));
        assert_eq!(store.get(ID), Some(next));
        store.release_all(2);
        assert_eq!(store.held(), 0, "lost: reduced to its summary");
        assert!(store.contains(ID));
        store.put(owned_by(1, OTHER, 1), at(7));
        assert!(
            store.get(OTHER).is_none(),
            "nothing owned after a rebalance"
        );
    }

    #[tokio::test]
    async fn a_compacted_version_is_read_again_at_the_newer_position() {
        let (store, topic) = partitioned();
        let other = owned_by(1, OTHER, 2);
        store.put(owned_by(1, OTHER, 1), at(3));
        topic
            .versions
            .lock()
            .unwrap()
            .insert((2, 8), Some(other.clone()));
        let reader = store.record(OTHER);
        let follower = async {
            tokio::task::yield_now().await;
            store.put(other.clone(), at(8));
        };
        let (read, ()) = tokio::join!(reader, follower);
        assert_eq!(read, Ok(Some(other)));
    }

    #[tokio::test]
    async fn a_store_without_a_fetcher_holds_everything() {
        let store = AuditStore::default();
        store.release_all(2);
        store.put(owned_by(1, OTHER, 1), at(1));
        assert_eq!(store.held(), 1);
        assert!(store.record(OTHER).await.unwrap().is_some());
    }
}
