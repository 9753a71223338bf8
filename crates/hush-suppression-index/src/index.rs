//! The index: a sorted columnar base with a radix table over it, and a hash-map write buffer.

use std::collections::HashMap;
use std::fmt;
use std::mem::size_of;

use crate::{IdentifierKey, Suppression};

/// The buffer is merged into the base once the buffered keys plus the base's tombstones exceed
/// `max(MIN_PENDING, base entries / PENDING_DIVISOR)`. 32 keeps the buffer (the costliest bytes
/// per entry) to about 3 bytes per identifier at worst, while each insert pays on average for
/// moving 32 base entries.
const PENDING_DIVISOR: usize = 32;
/// Below this many pending changes a merge is not worth it, however small the base.
const MIN_PENDING: usize = 1024;
/// The radix table has one bucket per 8 to 16 base entries (about 0.25 to 0.5 bytes per entry),
/// so a lookup binary-searches a range of about a dozen keys, in one or two cache lines.
const KEYS_PER_BUCKET_LOG2: u32 = 3;

/// Which people are suppressed, keyed by [`IdentifierKey`].
///
/// Guarantees:
/// - It behaves as a map from key to [`Suppression`]: a later [`upsert`](Self::upsert) of a key
///   replaces the earlier one, a flagless one (or [`remove`](Self::remove)) takes the key out.
///   Only [`record`](Self::record) keeps a flagless suppression (a holder that must remember
///   when a suppression was lifted, such as the deny-list); an index written only by `upsert`
///   holds only suppressions with a flag set.
/// - Memory: about 41 bytes per identifier in the base (16 key + 16 request id + 8 timestamp +
///   1 flag byte, in exactly sized columns), under 0.5 for the radix table and at most about 3
///   for the write buffer, so under 48 bytes per identifier all overhead included once the index
///   holds more than about 100,000 identifiers (below that, the fixed minimum of the write buffer
///   dominates). A merge briefly needs up to about 17 more bytes per identifier (measured peak:
///   57 bytes per identifier).
/// - Time: [`get`](Self::get) binary-searches one radix bucket of the base (about a dozen keys;
///   never worse than O(log n), even for keys that are not uniformly distributed) and, only if
///   the key is not there, looks it up in the buffer's hash map.
///   [`upsert`](Self::upsert) and [`remove`](Self::remove) are O(log n) amortised: keys already
///   in the base are changed in place; new keys go to the buffer, and when the buffer and the
///   tombstones of removed keys exceed 1/32 of the base, a merge rewrites the base in O(n)
///   (a pause of about 0.1 s at 10 million identifiers; see the README).
/// - Holds at most `u32::MAX` (about 4.29 billion) keys: an upsert panics if the merge it
///   triggers would exceed that.
#[derive(Default)]
pub struct SuppressionIndex {
    base: Base,
    /// How many base entries are live, i.e. not tombstones.
    live_in_base: usize,
    /// Keys that are not in the base at all, not even as tombstones.
    buffer: HashMap<IdentifierKey, Buffered>,
}

impl SuppressionIndex {
    /// An empty index; it allocates nothing until the first upsert.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `key` is suppressed as `suppression` says, replacing whatever was recorded
    /// for it, and returns what was recorded before (if anything). If no flag of `suppression`
    /// is set (an opt-in lifted the suppression), this removes the key instead, exactly as
    /// [`remove`](Self::remove).
    ///
    /// # Panics
    /// If the merge this triggers would leave the base with more than `u32::MAX` keys.
    pub fn upsert(&mut self, key: IdentifierKey, suppression: Suppression) -> Option<Suppression> {
        if !suppression.is_suppressed() {
            return self.remove(&key);
        }
        self.record(key, suppression)
    }

    /// Records `suppression` for `key` as [`upsert`](Self::upsert) does, except that a
    /// suppression with no flag set is kept (and returned by [`get`](Self::get)) instead of
    /// removing the key: the record that the person's suppression was lifted, and when.
    ///
    /// # Panics
    /// As [`upsert`](Self::upsert).
    pub fn record(&mut self, key: IdentifierKey, suppression: Suppression) -> Option<Suppression> {
        if let Some(i) = self.base.position(base_key(&key)) {
            let previous = self.base.get(i);
            if previous.is_none() {
                self.live_in_base += 1;
            }
            self.base.set(i, &suppression);
            return previous;
        }
        let previous = self.buffer.insert(key, Buffered::from(&suppression));
        if previous.is_none() {
            self.merge_if_due();
        }
        previous.map(Suppression::from)
    }

    /// Takes `key` out of the index and returns what was recorded for it, or `None` (changing
    /// nothing) if it was not suppressed.
    pub fn remove(&mut self, key: &IdentifierKey) -> Option<Suppression> {
        if let Some(buffered) = self.buffer.remove(key) {
            return Some(buffered.into());
        }
        let i = self.base.position(base_key(key))?;
        let previous = self.base.get(i)?;
        self.base.flag_bits[i] = 0;
        self.live_in_base -= 1;
        self.merge_if_due();
        Some(previous)
    }

    /// What is recorded for `key`, with the values of the latest upsert or record: in an index
    /// written only by [`upsert`](Self::upsert), `Some` exactly when the person is suppressed.
    pub fn get(&self, key: &IdentifierKey) -> Option<Suppression> {
        // A key is either in the base or in the buffer, never both.
        if let Some(i) = self.base.position(base_key(key)) {
            return self.base.get(i);
        }
        if self.buffer.is_empty() {
            return None;
        }
        self.buffer.get(key).copied().map(Suppression::from)
    }

    /// How many keys are suppressed.
    pub fn len(&self) -> usize {
        self.live_in_base + self.buffer.len()
    }

    /// True when no key is suppressed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An estimate of the heap memory the index holds, from the capacities (not lengths) of its
    /// vectors and hash map, including the hash map's control bytes. It matches the bytes a
    /// counting allocator sees requested, exactly on x86-64 (see `tests/heap_accounting.rs`);
    /// what it leaves out is the allocator's own overhead, a few bytes for each of the six
    /// allocations.
    pub fn heap_bytes(&self) -> usize {
        self.base.heap_bytes() + hash_map_heap_bytes(&self.buffer)
    }

    /// Merges when the pending changes (buffered keys and tombstones) exceed their bound.
    fn merge_if_due(&mut self) {
        let tombstones = self.base.len() - self.live_in_base;
        let bound = (self.base.len() / PENDING_DIVISOR).max(MIN_PENDING);
        if self.buffer.len() + tombstones > bound {
            self.merge();
        }
    }

    /// Moves every buffered key into the base and drops the base's tombstones.
    fn merge(&mut self) {
        let mut incoming: Vec<(u128, Buffered)> = std::mem::take(&mut self.buffer)
            .into_iter()
            .map(|(key, value)| (base_key(&key), value))
            .collect();
        incoming.sort_unstable_by_key(|&(key, _)| key);
        if self.live_in_base < self.base.len() {
            self.base.drop_tombstones();
        }
        self.base.merge(incoming);
        self.live_in_base = self.base.len();
    }
}

impl fmt::Debug for SuppressionIndex {
    /// A summary, not the entries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SuppressionIndex")
            .field("len", &self.len())
            .field("base_entries", &self.base.len())
            .field("buffered", &self.buffer.len())
            .field("heap_bytes", &self.heap_bytes())
            .finish()
    }
}

/// The key as the base stores it: its 16 bytes read big-endian, so integer order is byte order.
fn base_key(key: &IdentifierKey) -> u128 {
    u128::from_be_bytes(*key.as_bytes())
}

/// The bit of a stored flag byte that marks a live entry, so that a recorded flagless
/// suppression is told apart from a tombstone (a stored byte of 0).
const LIVE: u8 = 1 << 7;

/// The flag byte a suppression is stored with: its flags and [`LIVE`].
fn stored_bits(suppression: &Suppression) -> u8 {
    suppression.flag_bits() | LIVE
}

/// A buffered suppression, packed to 25 bytes with alignment 1 (a `Suppression` takes 32).
#[derive(Clone, Copy)]
struct Buffered {
    flag_bits: u8,
    effective_at_ms: [u8; 8],
    request_id: [u8; 16],
}

impl From<&Suppression> for Buffered {
    fn from(suppression: &Suppression) -> Self {
        Self {
            flag_bits: stored_bits(suppression),
            effective_at_ms: suppression.effective_at_ms.to_ne_bytes(),
            request_id: suppression.request_id,
        }
    }
}

impl From<Buffered> for Suppression {
    fn from(buffered: Buffered) -> Self {
        Suppression::from_parts(
            buffered.flag_bits,
            i64::from_ne_bytes(buffered.effective_at_ms),
            buffered.request_id,
        )
    }
}

/// The heap a `HashMap` holds: one slot per bucket (rounded up to a group), one control byte per
/// bucket and a group of trailing control bytes (the layout of the SwissTable behind `std`'s
/// `HashMap` with 16-byte SSE2 groups), where the bucket count is a power of two of which
/// `capacity()` is 7/8 (or one less, below 8 buckets).
fn hash_map_heap_bytes<K, V>(map: &HashMap<K, V>) -> usize {
    const GROUP_WIDTH: usize = 16;
    let capacity = map.capacity();
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        capacity + 1
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    (buckets * size_of::<(K, V)>()).next_multiple_of(GROUP_WIDTH) + buckets + GROUP_WIDTH
}

/// The sorted columnar base: entry `i` is (`keys[i]`, `request_ids[i]`, `effective_at_ms[i]`,
/// `flag_bits[i]`), keys strictly ascending; a live entry's flag byte has [`LIVE`] set, and
/// `flag_bits[i] == 0` marks a tombstone, a removed key that keeps its slot until the next merge.
#[derive(Default)]
struct Base {
    keys: Vec<u128>,
    request_ids: Vec<[u8; 16]>,
    effective_at_ms: Vec<i64>,
    flag_bits: Vec<u8>,
    /// Radix table: the entries whose key starts with the `radix_bits`-bit prefix `p` are
    /// `bucket_starts[p]..bucket_starts[p + 1]`; empty until the first merge.
    bucket_starts: Vec<u32>,
    radix_bits: u32,
}

impl Base {
    fn len(&self) -> usize {
        self.keys.len()
    }

    /// The slot of `key` (live or tombstone), if the base has one.
    fn position(&self, key: u128) -> Option<usize> {
        let bucket = self.bucket(key);
        let start = *self.bucket_starts.get(bucket)? as usize;
        let end = *self.bucket_starts.get(bucket + 1)? as usize;
        let offset = self.keys[start..end].binary_search(&key).ok()?;
        Some(start + offset)
    }

    /// The radix bucket of `key`: its top `radix_bits` bits.
    fn bucket(&self, key: u128) -> usize {
        key.checked_shr(128 - self.radix_bits).unwrap_or(0) as usize
    }

    /// The suppression in slot `i`, `None` for a tombstone.
    fn get(&self, i: usize) -> Option<Suppression> {
        let flag_bits = self.flag_bits[i];
        (flag_bits != 0).then(|| {
            Suppression::from_parts(flag_bits, self.effective_at_ms[i], self.request_ids[i])
        })
    }

    fn set(&mut self, i: usize, suppression: &Suppression) {
        self.flag_bits[i] = stored_bits(suppression);
        self.effective_at_ms[i] = suppression.effective_at_ms;
        self.request_ids[i] = suppression.request_id;
    }

    fn write(&mut self, i: usize, key: u128, value: Buffered) {
        self.keys[i] = key;
        self.flag_bits[i] = value.flag_bits;
        self.effective_at_ms[i] = i64::from_ne_bytes(value.effective_at_ms);
        self.request_ids[i] = value.request_id;
    }

    fn copy_entry(&mut self, from: usize, to: usize) {
        self.keys[to] = self.keys[from];
        self.request_ids[to] = self.request_ids[from];
        self.effective_at_ms[to] = self.effective_at_ms[from];
        self.flag_bits[to] = self.flag_bits[from];
    }

    /// Removes the tombstones, keeping the order of the live entries.
    fn drop_tombstones(&mut self) {
        let mut kept = 0;
        for i in 0..self.len() {
            if self.flag_bits[i] != 0 {
                self.copy_entry(i, kept);
                kept += 1;
            }
        }
        self.keys.truncate(kept);
        self.request_ids.truncate(kept);
        self.effective_at_ms.truncate(kept);
        self.flag_bits.truncate(kept);
    }

    /// Merges `incoming` (sorted, none of its keys in the base) in place: each column grows by
    /// `incoming.len()` one at a time, then one pass from the back moves every entry to its final
    /// slot. Shrinks the columns to fit and rebuilds the radix table.
    fn merge(&mut self, incoming: Vec<(u128, Buffered)>) {
        let old_len = self.len();
        let new_len = old_len + incoming.len();
        assert!(
            u32::try_from(new_len).is_ok(),
            "a SuppressionIndex holds at most u32::MAX keys"
        );
        grow(&mut self.keys, new_len);
        grow(&mut self.request_ids, new_len);
        grow(&mut self.effective_at_ms, new_len);
        grow(&mut self.flag_bits, new_len);
        // Entries `..read` are still to be moved, slots `write..` are final.
        let mut read = old_len;
        let mut write = new_len;
        for (key, value) in incoming.into_iter().rev() {
            let run_start = first_greater(&self.keys[..read], key);
            let run = run_start..read;
            write -= run.len();
            self.keys.copy_within(run.clone(), write);
            self.request_ids.copy_within(run.clone(), write);
            self.effective_at_ms.copy_within(run.clone(), write);
            self.flag_bits.copy_within(run, write);
            read = run_start;
            write -= 1;
            self.write(write, key, value);
        }
        self.keys.shrink_to_fit();
        self.request_ids.shrink_to_fit();
        self.effective_at_ms.shrink_to_fit();
        self.flag_bits.shrink_to_fit();
        self.rebuild_radix_table();
    }

    fn rebuild_radix_table(&mut self) {
        let len = self.len();
        self.radix_bits = len
            .checked_ilog2()
            .unwrap_or(0)
            .saturating_sub(KEYS_PER_BUCKET_LOG2);
        let buckets = 1usize << self.radix_bits;
        // Release the old table before allocating the new one.
        self.bucket_starts = Vec::new();
        // Count the keys of each bucket one slot to the right, then sum up: `starts[p]` is the
        // number of keys in buckets before `p`.
        let mut starts = vec![0u32; buckets + 1];
        for &key in &self.keys {
            starts[self.bucket(key) + 1] += 1;
        }
        for bucket in 1..=buckets {
            starts[bucket] += starts[bucket - 1];
        }
        self.bucket_starts = starts;
    }

    fn heap_bytes(&self) -> usize {
        self.keys.capacity() * size_of::<u128>()
            + self.request_ids.capacity() * size_of::<[u8; 16]>()
            + self.effective_at_ms.capacity() * size_of::<i64>()
            + self.flag_bits.capacity()
            + self.bucket_starts.capacity() * size_of::<u32>()
    }
}

/// The index of the first key of `sorted` greater than `key` (`sorted.len()` if none), by an
/// exponential search from the end: O(log d) for a result `d` places from the end.
fn first_greater(sorted: &[u128], key: u128) -> usize {
    // Every key of `sorted[end..]` is greater than `key`.
    let mut end = sorted.len();
    let mut step = 1;
    while end >= step && sorted[end - step] > key {
        end -= step;
        step *= 2;
    }
    let start = end.saturating_sub(step);
    start + sorted[start..end].partition_point(|&k| k <= key)
}

/// Extends `column` to `len` entries, reserving exactly what it needs.
fn grow<T: Copy + Default>(column: &mut Vec<T>, len: usize) {
    column.reserve_exact(len - column.len());
    column.resize(len, T::default());
}

#[cfg(test)]
mod tests;
