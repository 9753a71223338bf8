//! The suppression-state service: folds every privacy request into the per-identifier state on
//! the compacted `hush.suppressions.v1`, which the gate and the enrichment deny-list read.

pub mod fold;
pub mod service;
