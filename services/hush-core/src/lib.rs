//! Shared library of the Hush services: the event contracts, identifier hashing, configuration,
//! Kafka plumbing (idempotent producer, at-least-once consumer, dead letters, topic bootstrap),
//! the schema-registry codec, telemetry, the operations endpoints and the JSON error of the HTTP
//! APIs.

pub mod api_error;
pub mod codec;
pub mod config;
pub mod connector;
pub mod crypto;
pub mod events;
pub mod identifiers;
pub mod kafka;
pub mod metrics;
pub mod ops;
pub mod recipients;
pub mod telemetry;
pub mod topics;
