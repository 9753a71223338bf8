//! The Hush auditor: reconciles privacy requests against connector confirmations on the
//! compacted audit topic and proves, request by request, where each one stands.
//!
//! The pure logic: the status of each audited request ([`status`], against the deadline rules of
//! `hush_contracts::deadline`), the transitions of an audit record ([`fold`]) and the 11 CCR 7102 metrics report ([`report`]). The service: the
//! view of the audit topic ([`store`]: the full records of the requests this replica owns, a summary of every other, read back from the topic when asked for), the consumers of requests and confirmations
//! ([`service`]), the HTTP API's changes as commands applied by the replica owning the request ([`commands`]), leaks and the leak-free observation window that makes a request PROVEN
//! ([`proof`]), the HTTP API and dashboard ([`api`]), its [`metrics`], and the canaries' latest
//! results ([`canary`]).

pub mod api;
pub mod backlog;
pub mod callback;
pub mod canary;
mod charts;
pub mod commands;
mod dashboard;
pub mod fold;
pub mod metrics;
pub mod proof;
pub mod report;
pub mod service;
pub mod status;
pub mod store;
