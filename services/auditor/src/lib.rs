//! The Hush auditor's pure logic: legal deadlines ([`deadline`], on the business-day arithmetic
//! of [`calendar`]), the status of each audited request ([`status`]) and the 11 CCR 7102
//! metrics report ([`report`]). No Kafka and no HTTP here: the service binary wires these to
//! `hush.confirmations.v1`, `hush.audit.v1` and the auditor's HTTP API.

pub mod calendar;
pub mod deadline;
pub mod report;
pub mod status;
