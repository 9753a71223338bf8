//! Kafka plumbing: client settings, the idempotent producer, the at-least-once consumer and the
//! dead-letter path.

mod client;
mod consumer;
mod dead_letter;
mod producer;
mod redrive;
pub mod startup;
mod table;

pub(crate) use client::BrokerErrorContext;
pub use client::{client_config, group_client_config};
pub use consumer::{
    exit_if_fatal, is_fatal, BatchHandler, ConsumerSettings, EventConsumer, HandlerError,
    IncomingMessage, MessageHandler, PartitionCounts,
};
pub use dead_letter::{
    dead_letter_headers, DeadLetterQueue, DLQ_REASON_HEADER, DLQ_SOURCE_OFFSET_HEADER,
    DLQ_SOURCE_PARTITION_HEADER, DLQ_SOURCE_TOPIC_HEADER,
};
pub use producer::{Delivered, EventProducer, ProduceError};
pub use redrive::{redrive, RedriveError, Redriven, SUPPRESSOR_CLIENT_PREFIX};
pub use table::TopicTable;
