//! The enrichment deny-list. Enrichment vendors (Clearbit, ZoomInfo) have no per-person
//! suppression API, so Hush enforces the suppression itself: a suppressed person is never sent
//! to an enrichment API, and enrichment results about them are dropped.
//!
//! The deny-list is the compacted `hush.suppressions.v1` (written by `hush-state`) held in
//! memory: [`DenyList::follow_topic`] for enrichment jobs written in Rust (in-process), and the
//! `hush-denylist` service ([`api::router`]) for everything else. See `README.md`.

pub mod api;
pub mod denylist;
pub mod error;
pub mod metrics;
pub mod service;

pub use denylist::{
    CheckError, Decision, DeniedIdentifier, DenyList, DroppedRecord, EnrichmentRecord, Filtered,
    IdentifierValue, Lookup, Reason, Stats, VendorStats,
};
pub use service::{Config, DenyListSection};
