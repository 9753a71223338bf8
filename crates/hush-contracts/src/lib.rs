//! The contracts every Hush part shares and nothing more: the events on the topics (Avro types),
//! identifier normalisation and hashing, field encryption, the recipients configuration, the
//! [`connector::Connector`] interface, the legal deadline rules with their holiday calendar, the
//! signature scheme of webhook notices and callbacks, the redaction of raw identifier values
//! from text, and the canaries' synthetic subjects and results.
//!
//! No Kafka client and no HTTP server live here: connectors depend on this crate and the
//! connector kit only.

pub mod calendar;
pub mod callback;
pub mod canary;
pub mod commands;
pub mod config;
pub mod connector;
pub mod crypto;
pub mod deadline;
pub mod events;
pub mod gate;
pub mod identifiers;
pub mod recipients;
pub mod redact;
pub mod signature;
