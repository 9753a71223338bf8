//! Intake: the HTTP edge where "Do Not Sell or Share" clicks, Global Privacy Control signals,
//! limit requests and verified deletions enter Hush. Identifiers are normalised and hashed here;
//! a request is acknowledged only once the broker has it. It also answers a browser's own
//! consent state ([`consent`]) and serves the snippet that applies it in the page. Before a
//! request is published, the configured identity resolvers expand its identifiers
//! ([`resolution`]).

pub mod api;
pub mod canary;
pub mod consent;
mod metrics;
pub mod resolution;
pub mod service;
pub mod signals;
pub mod submission;
