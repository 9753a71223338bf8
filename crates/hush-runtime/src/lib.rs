//! The runtime of the Hush services: configuration loading, Kafka plumbing (idempotent
//! producer, at-least-once consumer, dead letters, topic bootstrap, table rebuilds), the
//! schema-registry codec, telemetry, the operations endpoints and the JSON error of the HTTP
//! APIs. The event contracts themselves live in `hush-contracts`.

pub mod api_error;
pub mod codec;
pub mod config;
pub mod kafka;
pub mod metrics;
pub mod ops;
pub mod telemetry;
pub mod topics;
