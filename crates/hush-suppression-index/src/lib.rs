//! The in-memory lookup table of an enforcement gate: given the SHA-256 of a normalised personal
//! identifier (email, phone, device id...), is that person suppressed (opted out of sale/share,
//! limited the use of sensitive data, or deleted), since when, and by which request?
//!
//! [`SuppressionIndex`] holds each identifier in about 43 bytes, all overhead included (10 million
//! identifiers in about 430 MB): a sorted columnar base searched through a radix table, plus a
//! small hash-map write buffer merged into the base when it outgrows 1/32 of it. See `README.md`
//! for the layout and the measured figures.

mod index;
mod key;
mod suppression;

pub use index::SuppressionIndex;
pub use key::{IdentifierKey, KeyError};
pub use suppression::Suppression;
