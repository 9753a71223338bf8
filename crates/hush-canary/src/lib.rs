//! Canaries: Hush runs the test a regulator would, continuously. For each channel (the web
//! form API, a GPC signal with `Sec-GPC: 1`, `hush.signals.v1`) a run opts out a synthetic
//! subject from the `[canary]` block and follows it: intake accepts it, the auditor records it,
//! every required recipient confirms it and is read back, the gate drops an outbound event about
//! the subject while forwarding a control event, an event injected into observed egress comes
//! back as a leak of the canary's request, and a re-opt-in lifts the opt-out so the next run
//! starts clean. The `DELETE` channel creates a fresh synthetic record at each recipient that
//! allows it ([`seed`]), deletes it through an attested request and reads it back as gone. Each
//! channel's [`hush_contracts::canary::CanaryResult`] names the first stage
//! that failed and how long every stage took; it is published on `hush.canaries.v1`, where the
//! auditor turns it into metrics.
//!
//! `hush canary run` is the command line around [`run::Canary`].

pub mod run;
pub mod seed;
pub mod subject;
pub mod tail;
pub mod timeline;
pub mod verdict;

pub use run::{Canary, CanaryError, Run, Target};
