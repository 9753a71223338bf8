//! The state table of one replica: for each partition it owns, what the fold needs of each
//! identifier's state, packed in sorted columns (58 bytes an identifier) with a small write
//! buffer merged into them as it grows.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use hush_contracts::events::{
    EpochMillis, IdentifierType, MinorStatus, PrivacyRequest, SuppressionState,
};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

/// The binary SHA-256 of an identifier (the key of its state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdentifierKey(pub [u8; 32]);

impl IdentifierKey {
    /// Parses 64 lowercase hex digits; `None` for anything else (upper case included, since
    /// the key on the topics is the lowercase form).
    pub fn from_hex(hex: &str) -> Option<Self> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut key = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            key[i] = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(Self(key))
    }
}

/// The first 8 bytes of a request id's SHA-256: enough to tell whether the request that last
/// changed a state is the one being folded again (two different requests collide with
/// probability 2⁻⁶⁴).
fn request_fingerprint(request_id: &str) -> u64 {
    let digest = Sha256::digest(request_id.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

const TYPES: [IdentifierType; 6] = [
    IdentifierType::Email,
    IdentifierType::Phone,
    IdentifierType::DeviceId,
    IdentifierType::CookieId,
    IdentifierType::CustomerId,
    IdentifierType::Maid,
];
const MINOR: [MinorStatus; 4] = [
    MinorStatus::NotMinor,
    MinorStatus::Unknown,
    MinorStatus::MinorNoOptIn,
    MinorStatus::MinorOptedIn,
];
const OPTED_OUT: u16 = 1 << 3;
const LIMITED: u16 = 1 << 4;
const DELETED: u16 = 1 << 5;
const SYNTHETIC: u16 = 1 << 6;
const HAS_RESOLICIT: u16 = 1 << 7;
const MINOR_SHIFT: u16 = 8;

/// What the table keeps of one identifier's state: every field the fold reads, and a
/// fingerprint of the request that produced it. The subject key and `updated_at` are not
/// kept (the fold overwrites both); they stay on the topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldState {
    /// Kind of identifier.
    pub identifier_type: IdentifierType,
    /// Sale and sharing must not happen.
    pub sale_share_opted_out: bool,
    /// Use of sensitive personal information is limited.
    pub sensitive_limited: bool,
    /// A verified deletion was requested.
    pub deleted: bool,
    /// When the current suppression took effect.
    pub effective_at: EpochMillis,
    /// Before this instant the consumer must not be asked to opt back in.
    pub resolicit_after: Option<EpochMillis>,
    /// Whether the minors rule applies.
    pub minor_status: MinorStatus,
    /// Produced by the canary's request.
    pub synthetic: bool,
    request: u64,
}

/// [`HeldState`] as stored: 26 bytes in four columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed {
    request: u64,
    effective_at: i64,
    resolicit_after: i64,
    bits: u16,
}

impl HeldState {
    /// What the table keeps of `state`.
    pub fn from_state(state: &SuppressionState) -> Self {
        Self {
            identifier_type: state.identifier_type,
            sale_share_opted_out: state.sale_share_opted_out,
            sensitive_limited: state.sensitive_limited,
            deleted: state.deleted,
            effective_at: state.effective_at,
            resolicit_after: state.resolicit_after,
            minor_status: state.minor_status,
            synthetic: state.synthetic,
            request: request_fingerprint(&state.last_request_id),
        }
    }

    /// Whether the state was produced by the request `request_id`.
    pub fn produced_by(&self, request_id: &str) -> bool {
        self.request == request_fingerprint(request_id)
    }

    /// The state the fold starts from when it folds `request` into `identifier_hash`: the held
    /// fields as they are, `last_request_id` equal to the request's own id when this state came
    /// from it (so the fold sees the re-delivery) and a different value otherwise, and the
    /// fields the fold overwrites (subject key, `updated_at`) from the request.
    pub fn fold_input(&self, identifier_hash: &str, request: &PrivacyRequest) -> SuppressionState {
        let last_request_id = if self.produced_by(&request.request_id) {
            request.request_id.clone()
        } else {
            format!("request-fingerprint-{:016x}", self.request)
        };
        SuppressionState {
            identifier_hash: identifier_hash.to_owned(),
            identifier_type: self.identifier_type,
            subject_key: request.subject_key.clone(),
            sale_share_opted_out: self.sale_share_opted_out,
            sensitive_limited: self.sensitive_limited,
            deleted: self.deleted,
            effective_at: self.effective_at,
            resolicit_after: self.resolicit_after,
            minor_status: self.minor_status,
            last_request_id,
            updated_at: 0,
            synthetic: self.synthetic,
        }
    }

    fn pack(&self) -> Packed {
        let kind = TYPES
            .iter()
            .position(|t| *t == self.identifier_type)
            .expect("every identifier type is listed") as u16;
        let minor = MINOR
            .iter()
            .position(|m| *m == self.minor_status)
            .expect("every minor status is listed") as u16;
        let flag = |set: bool, bit: u16| if set { bit } else { 0 };
        Packed {
            request: self.request,
            effective_at: self.effective_at,
            resolicit_after: self.resolicit_after.unwrap_or(0),
            bits: kind
                | flag(self.sale_share_opted_out, OPTED_OUT)
                | flag(self.sensitive_limited, LIMITED)
                | flag(self.deleted, DELETED)
                | flag(self.synthetic, SYNTHETIC)
                | flag(self.resolicit_after.is_some(), HAS_RESOLICIT)
                | minor << MINOR_SHIFT,
        }
    }

    fn unpack(packed: Packed) -> Self {
        let bits = packed.bits;
        Self {
            identifier_type: TYPES[usize::from(bits & 0b111)],
            sale_share_opted_out: bits & OPTED_OUT != 0,
            sensitive_limited: bits & LIMITED != 0,
            deleted: bits & DELETED != 0,
            effective_at: packed.effective_at,
            resolicit_after: (bits & HAS_RESOLICIT != 0).then_some(packed.resolicit_after),
            minor_status: MINOR[usize::from(bits >> MINOR_SHIFT & 0b11)],
            synthetic: bits & SYNTHETIC != 0,
            request: packed.request,
        }
    }
}

/// The write buffer is merged into the sorted columns once it holds more than this many
/// identifiers and more than an eighth of the columns' count.
const MIN_BUFFER: usize = 4096;

/// The states of one partition's identifiers: sorted columns, plus a buffer of recent changes
/// (`None`: removed) merged into them as it grows. Also remembers, per requests partition, the
/// furthest position (request offset, identifier index) folded here.
#[derive(Debug, Default)]
pub struct PartitionTable {
    keys: Vec<IdentifierKey>,
    requests: Vec<u64>,
    effective: Vec<i64>,
    resolicit: Vec<i64>,
    bits: Vec<u16>,
    buffer: HashMap<IdentifierKey, Option<Packed>>,
    len: usize,
    folded: HashMap<i32, Position>,
}

/// Where an identifier record came from in its requests partition: the request's offset and the
/// identifier's index in it, ordered as they were split.
pub type Position = (i64, i32);

impl PartitionTable {
    /// A table of `entries`, applied in order (a later entry for a key replaces an earlier one;
    /// `None` removes it), e.g. a changelog partition read from its start.
    pub fn from_changelog(entries: Vec<(IdentifierKey, Option<HeldState>)>) -> Self {
        let mut entries = entries;
        // Stable: entries of one key stay in changelog order, so the last one is kept.
        entries.sort_by_key(|(key, _)| *key);
        let mut table = Self::default();
        let mut rest = entries.into_iter().peekable();
        while let Some((key, state)) = rest.next() {
            if rest.peek().is_some_and(|(next, _)| *next == key) {
                continue;
            }
            if let Some(state) = state {
                table.push_sorted(key, state.pack());
            }
        }
        table.len = table.keys.len();
        table.shrink();
        table
    }

    fn push_sorted(&mut self, key: IdentifierKey, packed: Packed) {
        self.keys.push(key);
        self.requests.push(packed.request);
        self.effective.push(packed.effective_at);
        self.resolicit.push(packed.resolicit_after);
        self.bits.push(packed.bits);
    }

    fn shrink(&mut self) {
        self.keys.shrink_to_fit();
        self.requests.shrink_to_fit();
        self.effective.shrink_to_fit();
        self.resolicit.shrink_to_fit();
        self.bits.shrink_to_fit();
    }

    fn sorted(&self, key: &IdentifierKey) -> Option<Packed> {
        let i = self.keys.binary_search(key).ok()?;
        Some(Packed {
            request: self.requests[i],
            effective_at: self.effective[i],
            resolicit_after: self.resolicit[i],
            bits: self.bits[i],
        })
    }

    fn packed(&self, key: &IdentifierKey) -> Option<Packed> {
        match self.buffer.get(key) {
            Some(buffered) => *buffered,
            None => self.sorted(key),
        }
    }

    /// The state of one identifier.
    pub fn get(&self, key: &IdentifierKey) -> Option<HeldState> {
        self.packed(key).map(HeldState::unpack)
    }

    /// Records `state` for `key` (`None`: removes it); returns what was there.
    pub fn set(&mut self, key: IdentifierKey, state: Option<HeldState>) -> Option<HeldState> {
        let previous = self.get(&key);
        match (&previous, &state) {
            (None, Some(_)) => self.len += 1,
            (Some(_), None) => self.len -= 1,
            _ => {}
        }
        self.buffer.insert(key, state.map(|s| s.pack()));
        if self.buffer.len() > MIN_BUFFER.max(self.keys.len() / 8) {
            self.merge();
        }
        previous
    }

    /// Merges the buffer into the sorted columns.
    fn merge(&mut self) {
        let mut changes: Vec<(IdentifierKey, Option<Packed>)> = self.buffer.drain().collect();
        changes.sort_unstable_by_key(|(key, _)| *key);
        let old = std::mem::take(self);
        let Self {
            keys,
            requests,
            effective,
            resolicit,
            bits,
            len,
            folded,
            ..
        } = old;
        self.len = len;
        self.folded = folded;
        self.keys.reserve_exact(len);
        self.requests.reserve_exact(len);
        self.effective.reserve_exact(len);
        self.resolicit.reserve_exact(len);
        self.bits.reserve_exact(len);
        let mut changes = changes.into_iter().peekable();
        for i in 0..keys.len() {
            while let Some((key, change)) = changes.next_if(|(key, _)| *key < keys[i]) {
                if let Some(packed) = change {
                    self.push_sorted(key, packed);
                }
            }
            if let Some((_, change)) = changes.next_if(|(key, _)| *key == keys[i]) {
                if let Some(packed) = change {
                    self.push_sorted(keys[i], packed);
                }
                continue;
            }
            self.push_sorted(
                keys[i],
                Packed {
                    request: requests[i],
                    effective_at: effective[i],
                    resolicit_after: resolicit[i],
                    bits: bits[i],
                },
            );
        }
        for (key, change) in changes {
            if let Some(packed) = change {
                self.push_sorted(key, packed);
            }
        }
    }

    /// Identifiers with a state.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no identifier has a state.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Identifiers whose state the canary's request produced.
    pub fn synthetic_len(&self) -> usize {
        let buffered_synthetic = self
            .buffer
            .values()
            .filter(|p| p.is_some_and(|p| p.bits & SYNTHETIC != 0))
            .count();
        let sorted_synthetic = self
            .keys
            .iter()
            .zip(&self.bits)
            .filter(|(key, bits)| *bits & SYNTHETIC != 0 && !self.buffer.contains_key(key))
            .count();
        buffered_synthetic + sorted_synthetic
    }

    /// Bytes of heap the table holds (columns and buffer, by capacity).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.keys.capacity() * size_of::<IdentifierKey>()
            + self.requests.capacity() * size_of::<u64>()
            + self.effective.capacity() * size_of::<i64>()
            + self.resolicit.capacity() * size_of::<i64>()
            + self.bits.capacity() * size_of::<u16>()
            + self.buffer.capacity() * (size_of::<(IdentifierKey, Option<Packed>)>() + 1)
    }

    /// Whether the identifier record at `position` of requests partition `source_partition`
    /// was folded here already (a request split again after a restart, or its record
    /// delivered again).
    pub fn already_folded(&self, source_partition: i32, position: Position) -> bool {
        self.folded
            .get(&source_partition)
            .is_some_and(|done| position <= *done)
    }

    /// Records that the identifier record at `position` of `source_partition` was folded here.
    pub fn mark_folded(&mut self, source_partition: i32, position: Position) {
        let done = self.folded.entry(source_partition).or_insert(position);
        *done = (*done).max(position);
    }

    /// The positions folded so far, per requests partition (to undo a failed batch).
    pub fn folded_positions(&self) -> HashMap<i32, Position> {
        self.folded.clone()
    }

    /// Puts back positions saved with [`PartitionTable::folded_positions`].
    pub fn restore_folded_positions(&mut self, positions: HashMap<i32, Position>) {
        self.folded = positions;
    }
}

/// The states of the identifiers of the partitions this replica owns, one
/// [`PartitionTable`] each; shared between the fold and readers.
#[derive(Debug)]
pub struct StateTable {
    partitions: RwLock<BTreeMap<i32, PartitionTable>>,
    restored: watch::Sender<bool>,
}

impl Default for StateTable {
    fn default() -> Self {
        Self {
            partitions: RwLock::default(),
            restored: watch::Sender::new(false),
        }
    }
}

impl StateTable {
    /// The state of one identifier (lowercase hex SHA-256), if a partition this replica owns
    /// holds it.
    pub fn get(&self, identifier_hash: &str) -> Option<HeldState> {
        let key = IdentifierKey::from_hex(identifier_hash)?;
        let partitions = self.partitions.read().expect("state lock");
        partitions.values().find_map(|table| table.get(&key))
    }

    /// The owned partition that holds `identifier_hash`.
    pub fn partition_of(&self, identifier_hash: &str) -> Option<i32> {
        let key = IdentifierKey::from_hex(identifier_hash)?;
        let partitions = self.partitions.read().expect("state lock");
        partitions
            .iter()
            .find(|(_, table)| table.get(&key).is_some())
            .map(|(partition, _)| *partition)
    }

    /// The partitions whose states this replica holds, ascending.
    pub fn partitions(&self) -> Vec<i32> {
        let partitions = self.partitions.read().expect("state lock");
        partitions.keys().copied().collect()
    }

    /// Identifiers held for one partition (the canary's included).
    pub fn len_of(&self, partition: i32) -> usize {
        let partitions = self.partitions.read().expect("state lock");
        partitions.get(&partition).map_or(0, PartitionTable::len)
    }

    /// Number of identifiers with a state, the canary's (`synthetic`) left out: what the
    /// business reports holds real people only.
    pub fn len(&self) -> usize {
        let partitions = self.partitions.read().expect("state lock");
        partitions
            .values()
            .map(|t| t.len() - t.synthetic_len())
            .sum()
    }

    /// Whether no real person's identifier has a state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of the canary's identifiers with a state (still suppressed, counted apart).
    pub fn canary_len(&self) -> usize {
        let partitions = self.partitions.read().expect("state lock");
        partitions.values().map(PartitionTable::synthetic_len).sum()
    }

    /// Bytes of heap the held states take.
    pub fn heap_bytes(&self) -> usize {
        let partitions = self.partitions.read().expect("state lock");
        partitions.values().map(PartitionTable::heap_bytes).sum()
    }

    /// True once every partition assigned to this replica has been restored from the
    /// changelog (and at least one is assigned); false again while a new assignment restores.
    pub fn restored(&self) -> watch::Receiver<bool> {
        self.restored.subscribe()
    }

    pub(crate) fn set_restored(&self, restored: bool) {
        self.restored.send_replace(restored);
    }

    pub(crate) fn insert_partition(&self, partition: i32, table: PartitionTable) {
        let mut partitions = self.partitions.write().expect("state lock");
        partitions.insert(partition, table);
    }

    pub(crate) fn drop_partition(&self, partition: i32) {
        let mut partitions = self.partitions.write().expect("state lock");
        partitions.remove(&partition);
    }

    /// Runs `change` on the table of `partition`; `None` when it is not held.
    pub(crate) fn with_partition<T>(
        &self,
        partition: i32,
        change: impl FnOnce(&mut PartitionTable) -> T,
    ) -> Option<T> {
        let mut partitions = self.partitions.write().expect("state lock");
        partitions.get_mut(&partition).map(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> IdentifierKey {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
        key[28..].copy_from_slice(&i.to_be_bytes());
        IdentifierKey(key)
    }

    fn state(i: u32) -> HeldState {
        HeldState::from_state(&SuppressionState {
            identifier_hash: String::new(),
            identifier_type: TYPES[i as usize % TYPES.len()],
            subject_key: "s".into(),
            sale_share_opted_out: i.is_multiple_of(2),
            sensitive_limited: i.is_multiple_of(3),
            deleted: i.is_multiple_of(5),
            effective_at: 1_767_225_600_000 + i64::from(i),
            resolicit_after: (!i.is_multiple_of(7)).then_some(1_798_761_600_000 + i64::from(i)),
            minor_status: MINOR[i as usize % MINOR.len()],
            last_request_id: format!("r-{i}"),
            updated_at: 9,
            synthetic: i.is_multiple_of(11),
        })
    }

    #[test]
    fn every_field_the_fold_reads_survives_packing() {
        for i in 0..200 {
            let held = state(i);
            assert_eq!(HeldState::unpack(held.pack()), held, "state {i}");
        }
        assert!(state(3).produced_by("r-3") && !state(3).produced_by("r-4"));
    }

    #[test]
    fn the_fold_input_shows_a_redelivery_and_only_a_redelivery() {
        let held = state(4);
        let mut request = crate::repartition::IdentifierRequest {
            request_id: "r-4".into(),
            subject_key: "subject".into(),
            kind: hush_contracts::events::RequestKind::OptOutSaleShare,
            received_at: 1,
            identifier_type: IdentifierType::Email,
            identifier_hash: "ab".repeat(32),
            age_band: None,
            source_system: "t".into(),
            consumer_initiated: false,
            source_partition: 0,
            source_offset: 0,
            source_index: 0,
        }
        .request();
        let input = held.fold_input(&"ab".repeat(32), &request);
        assert_eq!(input.last_request_id, "r-4");
        assert_eq!(HeldState::from_state(&input), held);
        request.request_id = "r-5".into();
        assert_ne!(
            held.fold_input(&"ab".repeat(32), &request).last_request_id,
            "r-5"
        );
    }

    #[test]
    fn hex_keys_parse_only_from_lowercase_sha256() {
        let hex = "0123456789abcdef".repeat(4);
        let key = IdentifierKey::from_hex(&hex).unwrap();
        assert_eq!(key.0[0], 0x01);
        assert_eq!(key.0[31], 0xef);
        assert_eq!(IdentifierKey::from_hex(&hex.to_uppercase()), None);
        assert_eq!(IdentifierKey::from_hex(&hex[1..]), None);
        assert_eq!(IdentifierKey::from_hex("someone@example.com"), None);
    }

    #[test]
    fn writes_removals_and_merges_keep_every_state_findable() {
        let mut table = PartitionTable::default();
        let n = 3 * MIN_BUFFER as u32 + 17; // several merges
        for i in 0..n {
            assert_eq!(table.set(key(i), Some(state(i))), None);
        }
        assert_eq!(table.len(), n as usize);
        // Overwrite every third, remove every seventh.
        for i in (0..n).step_by(3) {
            assert_eq!(table.set(key(i), Some(state(i + 1))), Some(state(i)));
        }
        for i in (0..n).step_by(7) {
            assert!(table.set(key(i), None).is_some());
        }
        table.merge();
        assert!(table.buffer.is_empty());
        let mut expected_len = 0;
        for i in 0..n {
            let expected = match (i % 7 == 0, i % 3 == 0) {
                (true, _) => None,
                (false, true) => Some(state(i + 1)),
                (false, false) => Some(state(i)),
            };
            expected_len += usize::from(expected.is_some());
            assert_eq!(table.get(&key(i)), expected, "key {i}");
        }
        assert_eq!(table.len(), expected_len);
        assert_eq!(table.get(&key(n + 1)), None);
        assert!(table.keys.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
    }

    #[test]
    fn a_changelog_keeps_the_last_state_of_each_key_in_its_order() {
        let entries = vec![
            (key(1), Some(state(1))),
            (key(2), Some(state(2))),
            (key(1), Some(state(10))),
            (key(3), Some(state(3))),
            (key(3), None),
            (key(2), Some(state(20))),
        ];
        let table = PartitionTable::from_changelog(entries);
        assert_eq!(table.len(), 2);
        assert_eq!(table.get(&key(1)), Some(state(10)));
        assert_eq!(table.get(&key(2)), Some(state(20)));
        assert_eq!(table.get(&key(3)), None);
    }

    #[test]
    fn an_identifier_costs_58_bytes_once_merged() {
        let n = 100_000u32;
        let table =
            PartitionTable::from_changelog((0..n).map(|i| (key(i), Some(state(i)))).collect());
        assert_eq!(table.heap_bytes(), 58 * n as usize);
    }

    #[test]
    fn synthetic_states_are_counted_apart_wherever_they_are() {
        let mut table =
            PartitionTable::from_changelog((0..22).map(|i| (key(i), Some(state(i)))).collect());
        assert_eq!(table.synthetic_len(), 2); // 0 and 11
        let mut real = state(1);
        real.synthetic = false;
        table.set(key(0), Some(real)); // a sorted synthetic state replaced in the buffer
        table.set(key(99), Some(state(99))); // a new synthetic one in the buffer
        assert_eq!(table.synthetic_len(), 2); // 11 and 99
    }

    #[test]
    fn folded_positions_are_kept_per_requests_partition() {
        let mut table = PartitionTable::default();
        assert!(!table.already_folded(0, (0, 0)));
        table.mark_folded(0, (5, 1));
        table.mark_folded(0, (3, 4));
        assert!(table.already_folded(0, (5, 1)) && table.already_folded(0, (5, 0)));
        assert!(table.already_folded(0, (4, 9)));
        assert!(
            !table.already_folded(0, (5, 2)),
            "the request's next identifier"
        );
        assert!(!table.already_folded(0, (6, 0)) && !table.already_folded(1, (0, 0)));
        let saved = table.folded_positions();
        table.mark_folded(1, (9, 0));
        table.restore_folded_positions(saved);
        assert!(!table.already_folded(1, (0, 0)));
    }

    #[test]
    fn the_table_finds_an_identifier_in_the_partition_holding_it() {
        let table = StateTable::default();
        let hash = "ab".repeat(32);
        let key = IdentifierKey::from_hex(&hash).unwrap();
        table.insert_partition(0, PartitionTable::default());
        table.insert_partition(
            2,
            PartitionTable::from_changelog(vec![(key, Some(state(1)))]),
        );
        assert_eq!(table.partitions(), vec![0, 2]);
        assert_eq!(table.partition_of(&hash), Some(2));
        assert_eq!(table.get(&hash), Some(state(1)));
        assert_eq!((table.len_of(2), table.len()), (1, 1));
        table.drop_partition(2);
        assert_eq!(table.get(&hash), None);
        assert!(table.is_empty());
    }
}
