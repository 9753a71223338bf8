//! The Hush gate: proof point (3), that the data flow stopped.
//!
//! It enforces suppression on the business's outbound streams, exactly once ([`stream`]): each
//! record's identifiers ([`record`]) are looked up in the suppression index
//! ([`hush_suppression_state::SuppressionLookup`], rebuilt and kept current by
//! [`hush_suppression_state::follow`]) and the stream's policy decides ([`decide`]) whether the record
//! is dropped, stripped, rewritten for Meta Limited Data Use or annotated with IAB signals. Its
//! leak watch ([`watch`]) reads what actually left and reports every event about a suppressed
//! subject. [`service`] wires it; [`metrics`] counts it.

pub mod decide;
pub mod metrics;
pub mod record;
pub mod service;
pub mod stream;
pub mod watch;
