//! The in-memory view of the compacted audit topic (request id → [`AuditRecord`]), rebuilt at
//! start-up and kept current by following the topic, so every replica can answer for every
//! request; and the write path to that topic.
//!
//! Every stored record remembers where it sits in the topic. One request id always lands on the
//! same partition, so of two versions the one at the higher offset is the newer: a version read
//! back from the topic never replaces a newer one this replica already wrote.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use hush_contracts::events::AuditRecord;
use hush_runtime::codec::AvroCodec;
use hush_runtime::kafka::{EventProducer, IncomingMessage};
use tokio::sync::watch;

/// Where a version of a record sits in the audit topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

struct Entry {
    record: AuditRecord,
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
        updated_at >= stored.record.updated_at
    }
}

/// Audit records by request id, behind a lock.
pub struct AuditStore {
    entries: RwLock<HashMap<String, Entry>>,
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

    /// The record of one request.
    pub fn get(&self, request_id: &str) -> Option<AuditRecord> {
        self.entries
            .read()
            .expect("audit store lock")
            .get(&request_key(request_id))
            .map(|e| e.record.clone())
    }

    /// Stores the version of a record found at `at`, unless a newer one is stored; returns
    /// whether it was stored.
    pub fn put(&self, record: AuditRecord, at: Position) -> bool {
        let key = request_key(&record.request_id);
        let mut entries = self.entries.write().expect("audit store lock");
        match entries.get(&key) {
            Some(stored) if !is_newer(stored, at, record.updated_at) => false,
            _ => {
                entries.insert(key, Entry { record, at });
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

    /// Runs `f` over every record under the read lock (for reports and the dashboard).
    pub fn read<T>(&self, f: impl FnOnce(&mut dyn Iterator<Item = &AuditRecord>) -> T) -> T {
        let entries = self.entries.read().expect("audit store lock");
        f(&mut entries.values().map(|e| &e.record))
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
    use hush_contracts::events::{AuditStatus, Channel, RequestKind};

    const ID: &str = "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10";

    fn record(updated_at: i64) -> AuditRecord {
        AuditRecord {
            request_id: ID.into(),
            subject_key: "s".into(),
            kind: RequestKind::Delete,
            channel: Channel::Api,
            jurisdiction: "US-CA".into(),
            received_at: 0,
            deadline: 1,
            extended: false,
            status: AuditStatus::Open,
            completed_at: None,
            denial_reason: None,
            required_connectors: vec![],
            connectors: vec![],
            leaks: 0,
            leak_evidence: Vec::new(),
            proof: None,
            changes: Vec::new(),
            synthetic: false,
            resolution: Vec::new(),
            updated_at,
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
}
