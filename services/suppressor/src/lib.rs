//! The suppressor: one binary, one consumer group per configured recipient (`--connector`).
//! It applies each request at that recipient through its connector, retries with backoff,
//! dead-letters what keeps failing, and emits one confirmation per request.

pub mod apply;
pub mod clock;
pub mod config;
pub mod decode;
pub mod done;
#[cfg(test)]
mod fakes;
pub mod handler;
mod metrics;
pub mod pace;
pub mod plan;
pub mod record;
pub mod retry;
pub mod service;
pub mod share;
pub mod work;
