//! Intake: the HTTP edge where "Do Not Sell or Share" clicks, Global Privacy Control signals,
//! limit requests and verified deletions enter Hush. Identifiers are normalised and hashed here;
//! a request is acknowledged only once the broker has it.

pub mod api;
mod metrics;
pub mod service;
pub mod submission;
