//! Kafka plumbing: client settings, the idempotent producer, the at-least-once consumer and the
//! dead-letter path.

mod client;
mod consumer;
mod dead_letter;
mod producer;
mod redrive;
mod restore;
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

/// How long a reader pauses after its consumer reported an error before it polls again.
/// librdkafka queues one error event per failed connection attempt (several a second while a
/// broker is away), each returned once, ahead of the rebalances and records behind it: a reader
/// that paused 200 ms per error took minutes to reach them after a broker restart (`make
/// faults`: a consumer reporting all brokers down for 7 minutes after the broker was back).
/// The pause only keeps a burst of errors from monopolising a runtime worker.
pub const ERROR_EVENT_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);
