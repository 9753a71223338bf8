//! Measures the memory and lookup speed of a `SuppressionIndex` holding N random identifiers,
//! each with a distinct random request id (the worst case: nothing is shared).
//!
//! ```text
//! cargo run --release -p hush-suppression-index --example bytes_per_identifier -- 10000000
//! ```
//!
//! Memory is what a counting global allocator sees: the live heap after the inserts, and the
//! peak during them (a merge briefly needs more). A `realloc` counts as holding the old and the
//! new block at once, as it does when the allocator has to copy, so the peak is an upper bound.
//! Lookups are timed over 1,000,000 random keys, half of them present, in random order.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hush_suppression_index::{IdentifierKey, Suppression, SuppressionIndex};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const LOOKUPS: usize = 1_000_000;

/// `System`, counting the bytes currently allocated and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn allocated(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; the counters do not affect it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are `System`'s.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            allocated(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            allocated(layout.size());
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
            // Both blocks are held while the allocator copies.
            allocated(new_size);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The SHA-256-like digest of identifier number `i`: distinct for distinct `i` (the first 8
/// bytes are a bijection of `i`), uniformly spread.
fn digest(seed: u64, i: u64) -> [u8; 32] {
    let mut state = seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut digest = [0u8; 32];
    for chunk in digest.chunks_exact_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut state).to_be_bytes());
    }
    digest
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn main() -> ExitCode {
    let n: usize = match std::env::args().nth(1).map(|arg| arg.parse()) {
        None => 1_000_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: bytes_per_identifier [N > 0, default 1000000]");
            return ExitCode::from(2);
        }
    };
    let mut rng = StdRng::seed_from_u64(0x4855_5348);
    let (present_seed, absent_seed): (u64, u64) = (rng.gen(), rng.gen());

    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let mut index = SuppressionIndex::new();
    let mut longest_upsert = Duration::ZERO;
    let started = Instant::now();
    for i in 0..n {
        let suppression = Suppression {
            deleted: rng.gen_bool(0.1),
            sale_share_opted_out: true,
            sensitive_limited: rng.gen_bool(0.3),
            effective_at_ms: 1_700_000_000_000 + i as i64,
            request_id: rng.gen(),
        };
        let key = IdentifierKey::from_digest(&digest(present_seed, i as u64));
        let upsert_started = Instant::now();
        index.upsert(key, suppression);
        longest_upsert = longest_upsert.max(upsert_started.elapsed());
    }
    let insert_time = started.elapsed();
    assert_eq!(index.len(), n, "every identifier is distinct");
    let live = LIVE.load(Ordering::Relaxed) - before;
    let peak = PEAK.load(Ordering::Relaxed) - before;

    let mut lookups: Vec<IdentifierKey> = (0..LOOKUPS)
        .map(|j| {
            let (seed, i) = if j % 2 == 0 {
                (present_seed, rng.gen_range(0..n as u64))
            } else {
                (absent_seed, j as u64)
            };
            IdentifierKey::from_digest(&digest(seed, i))
        })
        .collect();
    lookups.shuffle(&mut rng);
    let started = Instant::now();
    let hits = lookups
        .iter()
        .filter(|key| black_box(&index).get(key).is_some())
        .count();
    let lookup_time = started.elapsed();
    assert_eq!(hits, LOOKUPS / 2, "present keys are found, absent ones not");

    println!(
        "identifiers={n} live_heap_bytes={live} bytes_per_identifier={:.2} lookups_per_sec={:.0} \
         peak_live_heap_bytes={peak} peak_bytes_per_identifier={:.2} heap_bytes_estimate={} \
         insert_secs={:.2} longest_upsert_ms={:.1}",
        live as f64 / n as f64,
        LOOKUPS as f64 / lookup_time.as_secs_f64(),
        peak as f64 / n as f64,
        index.heap_bytes(),
        insert_time.as_secs_f64(),
        longest_upsert.as_secs_f64() * 1e3,
    );
    ExitCode::SUCCESS
}
