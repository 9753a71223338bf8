//! What a replica spends per request, held as a full audit record and as a summary: 100,000
//! records of requests each confirmed by 8 recipients are stored, and a counting allocator (this
//! test binary's global allocator) gives the heap bytes the store holds afterwards, divided by
//! the number of requests. Run with `--nocapture` to see the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use hush_auditor::store::{AuditStore, FetchError, Position, RecordFetch};
use hush_contracts::events::{
    AuditRecord, AuditStatus, Channel, ConfirmationAction, ConnectorOutcome, RecipientRole,
    RequestKind, VerificationStatus,
};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const REQUESTS: usize = 100_000;
const RECIPIENTS: [&str; 8] = [
    "hubspot",
    "salesforce",
    "meta-audiences",
    "google-ads",
    "braze",
    "segment",
    "snowflake",
    "partner-webhook",
];

/// A completed opt-out confirmed and read back by 8 recipients, each outcome with the evidence
/// a connector typically leaves (status, the vendor's id for the call, the read-back).
fn record(index: usize) -> AuditRecord {
    let received_at = 1_795_000_000_000 + index as i64;
    AuditRecord {
        request_id: uuid::Uuid::from_u128(index as u128 + 1).to_string(),
        subject_key: format!("{:064x}", index as u128 * 0x9e37_79b9_7f4a_7c15),
        kind: RequestKind::OptOutSaleShare,
        channel: Channel::WebForm,
        jurisdiction: "US-CA".into(),
        received_at,
        deadline: received_at + 21 * 86_400_000,
        extended: false,
        status: AuditStatus::Verified,
        completed_at: Some(received_at + 60_000),
        denial_reason: None,
        required_connectors: RECIPIENTS.iter().map(|r| r.to_string()).collect(),
        connectors: RECIPIENTS
            .iter()
            .map(|r| ConnectorOutcome {
                connector_id: r.to_string(),
                role: RecipientRole::ThirdParty,
                action: ConfirmationAction::Suppressed,
                verification: VerificationStatus::Verified,
                attempts: 1,
                completed_at: received_at + 60_000,
                evidence: HashMap::from([
                    ("http_status".to_string(), "200".to_string()),
                    (
                        "vendor_request_id".to_string(),
                        uuid::Uuid::from_u128(index as u128 * 8 + 7).to_string(),
                    ),
                    ("read_back".to_string(), "opted out".to_string()),
                ]),
            })
            .collect(),
        leaks: 0,
        leak_evidence: Vec::new(),
        proof: None,
        changes: Vec::new(),
        synthetic: false,
        resolution: Vec::new(),
        updated_at: received_at + 60_000,
    }
}

/// A read-back that is never called: the figures measure what is held, not what is fetched.
struct Unreachable;

#[async_trait]
impl RecordFetch for Unreachable {
    async fn fetch(&self, at: Position) -> Result<Option<AuditRecord>, FetchError> {
        Err(FetchError::Unavailable {
            partition: at.partition,
            offset: at.offset,
            reason: "not used by this test".into(),
        })
    }
}

/// Heap bytes per request that `store` holds once every record was put into it.
fn bytes_per_request(store: AuditStore) -> f64 {
    let before = LIVE.load(Ordering::SeqCst);
    for index in 0..REQUESTS {
        store.put(
            record(index),
            Position {
                partition: (index % 12) as i32,
                offset: index as i64,
            },
        );
    }
    let held = LIVE.load(Ordering::SeqCst) - before;
    assert_eq!(store.len(), REQUESTS);
    drop(store);
    held as f64 / REQUESTS as f64
}

#[test]
fn a_summary_costs_a_fraction_of_a_full_record() {
    let full = bytes_per_request(AuditStore::default());
    // Owns no partition: every request is kept as a summary.
    let summary = bytes_per_request(AuditStore::partitioned(12, Arc::new(Unreachable)));
    println!(
        "{REQUESTS} requests, {} recipients each: full record {full:.0} bytes per request, \
         summary {summary:.0} bytes per request ({:.1}x less)",
        RECIPIENTS.len(),
        full / summary
    );
    assert!(summary > 0.0);
    assert!(
        summary * 4.0 < full,
        "a summary ({summary:.0} B) should cost under a quarter of a full record ({full:.0} B)"
    );
}
