//! The suppression-state service: folds every privacy request into the per-identifier state on
//! the compacted `hush.suppressions.v1`, which the gate and the enrichment deny-list read. Each
//! replica holds only the identifiers of the partitions it owns (see [`service`]).

pub mod fold;
pub mod repartition;
pub mod service;
pub mod table;
