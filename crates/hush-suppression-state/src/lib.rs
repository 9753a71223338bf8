//! The suppression state as a service holds it in memory: per SHA-256 identifier hash, whether
//! the person is deleted, opted out of sale/share or limited, since when and by which request.
//!
//! [`SuppressionLookup`] is the index ([`hush_suppression_index::SuppressionIndex`] behind a
//! lock); [`follow::start`] rebuilds it from the compacted `hush.suppressions.v1` up to the end
//! offsets seen at start, reports when it is rebuilt, then follows the topic. The gate enforces
//! with it; intake answers a browser's own consent state from it.

pub mod follow;
mod lookup;

pub use lookup::{request_id_of, SuppressionLookup};
