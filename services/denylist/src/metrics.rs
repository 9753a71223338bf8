//! Deny-list metrics. Labels are vendor names and decisions only, never identifiers.

use std::sync::LazyLock;

use prometheus::{
    register_int_counter, register_int_counter_vec, register_int_gauge, IntCounter, IntCounterVec,
    IntGauge,
};

/// Lookups screened before an enrichment call (and enrichment records screened), by vendor and
/// decision (`allowed`, `denied`).
pub static CHECKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hush_denylist_checks_total",
        "Enrichment lookups and results screened against the deny-list, by vendor and decision",
        &["vendor", "decision"]
    )
    .expect("metric registers once")
});

/// Identifiers currently denied.
pub static SIZE: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "hush_denylist_size",
        "Identifier hashes currently on the enrichment deny-list"
    )
    .expect("metric registers once")
});

/// Suppression states skipped because their identifier hash is not a hex SHA-256 (such a state
/// could never match a lookup).
pub static MALFORMED_STATES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "hush_denylist_malformed_states_total",
        "Suppression states skipped because their identifier hash is not a hex SHA-256"
    )
    .expect("metric registers once")
});
