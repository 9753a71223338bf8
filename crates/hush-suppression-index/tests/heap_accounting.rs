//! `SuppressionIndex::heap_bytes` against what a counting allocator sees. The only test in this
//! binary, so no other test allocates while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use hush_suppression_index::{IdentifierKey, Suppression, SuppressionIndex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `System`, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; the counter does not affect it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are `System`'s.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` with `layout`; the caller checks `new_size`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn heap_bytes_matches_the_allocator() {
    let mut rng = StdRng::seed_from_u64(10);
    // Precomputed, so that the index is the only thing allocating while it is measured.
    let entries: Vec<([u8; 32], [u8; 16], i64)> = (0..300_000)
        .map(|_| (rng.gen(), rng.gen(), rng.gen()))
        .collect();
    let before = LIVE.load(Ordering::Relaxed);
    let mut index = SuppressionIndex::new();
    let mut checked = 0;
    for (i, &(digest, request_id, effective_at_ms)) in entries.iter().enumerate() {
        let suppression = Suppression {
            deleted: i % 3 == 0,
            sale_share_opted_out: true,
            sensitive_limited: false,
            effective_at_ms,
            request_id,
        };
        index.upsert(IdentifierKey::from_digest(&digest), suppression);
        if i % 25_000 == 0 {
            let measured = LIVE.load(Ordering::Relaxed) - before;
            let estimated = index.heap_bytes();
            let difference = measured.abs_diff(estimated);
            assert!(
                difference <= measured / 1000 + 16,
                "after {} upserts: allocator {measured}, heap_bytes {estimated}",
                i + 1
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
    drop(index);
    assert_eq!(LIVE.load(Ordering::Relaxed), before, "nothing leaks");
}
