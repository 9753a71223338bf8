use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::*;

fn random_key(rng: &mut StdRng) -> IdentifierKey {
    IdentifierKey::from_digest(&rng.gen())
}

fn suppression(flag_bits: u8, effective_at_ms: i64, request_byte: u8) -> Suppression {
    Suppression::from_parts(flag_bits, effective_at_ms, [request_byte; 16])
}

fn random_suppression(rng: &mut StdRng) -> Suppression {
    Suppression::from_parts(rng.gen_range(1..8), rng.gen(), rng.gen())
}

/// Checks everything the index's correctness rests on.
fn check_invariants(index: &SuppressionIndex) {
    let base = &index.base;
    let len = base.len();
    assert_eq!(base.request_ids.len(), len);
    assert_eq!(base.effective_at_ms.len(), len);
    assert_eq!(base.flag_bits.len(), len);
    assert!(
        base.keys.windows(2).all(|pair| pair[0] < pair[1]),
        "base keys strictly ascending"
    );
    let live = base.flag_bits.iter().filter(|&&bits| bits != 0).count();
    assert_eq!(index.live_in_base, live);
    for key in index.buffer.keys() {
        assert!(
            base.keys.binary_search(&base_key(key)).is_err(),
            "{key:?} is both buffered and in the base"
        );
    }
    if !base.bucket_starts.is_empty() {
        assert_eq!(base.bucket_starts.len(), (1 << base.radix_bits) + 1);
        assert_eq!(*base.bucket_starts.last().unwrap() as usize, len);
        for (bucket, range) in base.bucket_starts.windows(2).enumerate() {
            for &key in &base.keys[range[0] as usize..range[1] as usize] {
                assert_eq!(base.bucket(key), bucket);
            }
        }
    }
}

#[test]
fn many_inserts_in_random_order_are_all_found() {
    let mut rng = StdRng::seed_from_u64(1);
    let entries: Vec<(IdentifierKey, Suppression)> = (0..40_000)
        .map(|_| (random_key(&mut rng), random_suppression(&mut rng)))
        .collect();
    let mut index = SuppressionIndex::new();
    for &(key, value) in &entries {
        assert_eq!(index.upsert(key, value), None);
    }
    assert_eq!(index.len(), entries.len());
    assert!(index.base.len() > 30_000, "merges moved keys to the base");
    assert!(!index.buffer.is_empty(), "and some are still buffered");
    check_invariants(&index);
    let mut shuffled = entries.clone();
    shuffled.shuffle(&mut rng);
    for (key, value) in shuffled {
        assert_eq!(index.get(&key), Some(value), "{key:?}");
    }
    for _ in 0..1_000 {
        assert_eq!(index.get(&random_key(&mut rng)), None);
    }
}

#[test]
fn an_absent_key_gives_none() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut index = SuppressionIndex::new();
    let absent = random_key(&mut rng);
    assert_eq!(index.get(&absent), None);
    assert!(index.is_empty());
    index.upsert(random_key(&mut rng), suppression(1, 0, 1));
    index.merge();
    index.upsert(random_key(&mut rng), suppression(1, 0, 2));
    assert_eq!(index.get(&absent), None);
    assert_eq!(index.remove(&absent), None);
    assert_eq!(index.len(), 2);
}

#[test]
fn an_update_replaces_in_the_buffer_and_in_the_base() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut index = SuppressionIndex::new();
    let in_base = random_key(&mut rng);
    let first = suppression(0b010, 1_000, 1);
    index.upsert(in_base, first);
    index.merge();
    assert_eq!(index.base.len(), 1);

    let second = suppression(0b011, 2_000, 2);
    assert_eq!(index.upsert(in_base, second), Some(first));
    assert_eq!(index.get(&in_base), Some(second));
    assert_eq!(
        index.buffer.len(),
        0,
        "a key in the base is updated in place"
    );

    let buffered = random_key(&mut rng);
    index.upsert(buffered, first);
    assert_eq!(index.upsert(buffered, second), Some(first));
    assert_eq!(index.get(&buffered), Some(second));
    assert_eq!(index.len(), 2);

    index.merge();
    assert_eq!(index.get(&in_base), Some(second));
    assert_eq!(index.get(&buffered), Some(second));
    check_invariants(&index);
}

#[test]
fn removal_from_the_buffer() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut index = SuppressionIndex::new();
    let (kept, removed) = (random_key(&mut rng), random_key(&mut rng));
    index.upsert(kept, suppression(1, 1, 1));
    index.upsert(removed, suppression(4, 2, 2));
    assert_eq!(index.remove(&removed), Some(suppression(4, 2, 2)));
    assert_eq!(index.get(&removed), None);
    assert_eq!(
        index.remove(&removed),
        None,
        "removing twice changes nothing"
    );
    assert_eq!(index.len(), 1);
    assert_eq!(index.get(&kept), Some(suppression(1, 1, 1)));
    index.merge();
    assert_eq!(
        index.base.len(),
        1,
        "the removed key never reaches the base"
    );
    check_invariants(&index);
}

#[test]
fn removal_from_the_base_and_suppressing_again() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut index = SuppressionIndex::new();
    let keys: Vec<IdentifierKey> = (0..100).map(|_| random_key(&mut rng)).collect();
    for (i, &key) in keys.iter().enumerate() {
        index.upsert(key, suppression(2, i as i64, i as u8));
    }
    index.merge();
    assert_eq!(index.buffer.len(), 0);

    assert_eq!(index.remove(&keys[7]), Some(suppression(2, 7, 7)));
    assert_eq!(index.get(&keys[7]), None);
    assert_eq!(
        index.remove(&keys[7]),
        None,
        "a tombstone is not removed twice"
    );
    assert_eq!(index.len(), 99);
    check_invariants(&index);

    // Suppressed again before the tombstone was merged away: the slot is reused.
    assert_eq!(index.upsert(keys[7], suppression(1, 70, 70)), None);
    assert_eq!(index.get(&keys[7]), Some(suppression(1, 70, 70)));
    assert_eq!(index.len(), 100);

    assert_eq!(index.remove(&keys[8]), Some(suppression(2, 8, 8)));
    index.merge();
    assert_eq!(index.base.len(), 99, "the merge dropped the tombstone");
    assert_eq!(index.get(&keys[8]), None);
    assert_eq!(index.get(&keys[7]), Some(suppression(1, 70, 70)));
    for (i, key) in keys.iter().enumerate().filter(|&(i, _)| i != 7 && i != 8) {
        assert_eq!(index.get(key), Some(suppression(2, i as i64, i as u8)));
    }
    check_invariants(&index);
}

#[test]
fn a_flagless_upsert_removes_the_key() {
    let mut rng = StdRng::seed_from_u64(6);
    let mut index = SuppressionIndex::new();
    let lifted = suppression(0, 5_000, 9);
    let (in_base, buffered, absent) = (
        random_key(&mut rng),
        random_key(&mut rng),
        random_key(&mut rng),
    );
    index.upsert(in_base, suppression(1, 1, 1));
    index.merge();
    index.upsert(buffered, suppression(2, 2, 2));

    assert_eq!(index.upsert(in_base, lifted), Some(suppression(1, 1, 1)));
    assert_eq!(index.upsert(buffered, lifted), Some(suppression(2, 2, 2)));
    assert_eq!(index.upsert(absent, lifted), None);
    for key in [in_base, buffered, absent] {
        assert_eq!(index.get(&key), None);
    }
    assert!(index.is_empty());
    assert!(index.buffer.is_empty(), "nothing flagless is buffered");
    check_invariants(&index);
}

#[test]
fn a_recorded_flagless_suppression_is_kept_in_the_buffer_and_the_base() {
    let mut rng = StdRng::seed_from_u64(16);
    let mut index = SuppressionIndex::new();
    let lifted = suppression(0, 5_000, 9);
    let (in_base, buffered) = (random_key(&mut rng), random_key(&mut rng));
    index.upsert(in_base, suppression(1, 1, 1));
    index.merge();

    assert_eq!(index.record(in_base, lifted), Some(suppression(1, 1, 1)));
    assert_eq!(index.record(buffered, lifted), None);
    assert_eq!(index.get(&in_base), Some(lifted));
    assert_eq!(index.get(&buffered), Some(lifted));
    assert_eq!(index.len(), 2);
    index.merge();
    assert_eq!(index.get(&buffered), Some(lifted), "survives a merge");
    assert_eq!(index.len(), 2);
    check_invariants(&index);
    assert_eq!(index.remove(&in_base), Some(lifted));
    assert_eq!(index.get(&in_base), None);
    assert_eq!(index.len(), 1);
    check_invariants(&index);
}

#[test]
fn removals_give_the_memory_back() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut index = SuppressionIndex::new();
    let keys: Vec<IdentifierKey> = (0..100_000).map(|_| random_key(&mut rng)).collect();
    for &key in &keys {
        index.upsert(key, random_suppression(&mut rng));
    }
    let full = index.heap_bytes();
    for key in &keys[..90_000] {
        assert!(index.remove(key).is_some());
    }
    assert_eq!(index.len(), 10_000);
    assert!(
        index.base.len() <= 10_000 + MIN_PENDING,
        "merges dropped the tombstones: {} base entries",
        index.base.len()
    );
    assert!(index.heap_bytes() < full / 4, "{index:?} was {full}");
    for key in &keys[90_000..] {
        assert!(index.get(key).is_some());
    }
    check_invariants(&index);
}

#[test]
fn at_most_48_bytes_per_identifier_from_100_000_on() {
    let mut rng = StdRng::seed_from_u64(8);
    let mut index = SuppressionIndex::new();
    let mut worst: f64 = 0.0;
    for i in 1..=400_000usize {
        index.upsert(random_key(&mut rng), random_suppression(&mut rng));
        if i >= 100_000 {
            worst = worst.max(index.heap_bytes() as f64 / i as f64);
        }
    }
    assert!(worst <= 48.0, "{worst} bytes per identifier");
    assert!(worst > 41.0, "{worst}: the estimate counts every column");
}

/// Keys from a small pool (so that updates, removals and re-suppressions of the same key are
/// frequent), part of them sharing all but their last byte (so that radix buckets are crowded).
#[test]
fn behaves_as_a_hash_map_over_50_000_random_operations() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut pool: Vec<IdentifierKey> = (0..6_000).map(|_| random_key(&mut rng)).collect();
    let crowded_prefix: [u8; 32] = rng.gen();
    pool.extend((0..=255u8).map(|last| {
        let mut digest = crowded_prefix;
        digest[15] = last;
        IdentifierKey::from_digest(&digest)
    }));

    let mut index = SuppressionIndex::new();
    let mut model: HashMap<IdentifierKey, Suppression> = HashMap::new();
    let (mut merges_seen, mut tombstones_seen) = (0, false);
    for op in 0..50_000 {
        let key = *pool.choose(&mut rng).unwrap();
        match rng.gen_range(0..10) {
            0..=4 => {
                let value = random_suppression(&mut rng);
                assert_eq!(index.upsert(key, value), model.insert(key, value));
            }
            5 => {
                let mut value = random_suppression(&mut rng);
                value.deleted = false;
                value.sale_share_opted_out = false;
                value.sensitive_limited = false;
                assert_eq!(index.upsert(key, value), model.remove(&key));
            }
            6 | 7 => assert_eq!(index.remove(&key), model.remove(&key)),
            _ => assert_eq!(index.get(&key), model.get(&key).copied()),
        }
        assert_eq!(index.len(), model.len());
        if index.buffer.is_empty() && !index.base.keys.is_empty() {
            merges_seen += 1;
        }
        tombstones_seen |= index.live_in_base < index.base.len();
        if op % 2_500 == 0 {
            check_invariants(&index);
            for key in &pool {
                assert_eq!(index.get(key), model.get(key).copied());
            }
        }
    }
    check_invariants(&index);
    for key in &pool {
        assert_eq!(index.get(key), model.get(key).copied());
    }
    assert!(merges_seen > 0 && tombstones_seen, "both code paths ran");
}
