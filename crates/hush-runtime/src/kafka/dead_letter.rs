//! The dead-letter path: an event that cannot be processed is copied, byte for byte, to the
//! dead-letter topic with its reason and origin in headers, so it is never silently dropped.

use rdkafka::message::{Header, OwnedHeaders};

use super::consumer::IncomingMessage;
use super::producer::{EventProducer, ProduceError};
use hush_contracts::events::now_millis;

/// Header carrying the human-readable reason an event was dead-lettered.
pub const DLQ_REASON_HEADER: &str = "hush.dlq.reason";
/// Header carrying the topic the event was read from.
pub const DLQ_SOURCE_TOPIC_HEADER: &str = "hush.dlq.source.topic";
/// Header carrying the partition the event was read from.
pub const DLQ_SOURCE_PARTITION_HEADER: &str = "hush.dlq.source.partition";
/// Header carrying the offset the event was read from.
pub const DLQ_SOURCE_OFFSET_HEADER: &str = "hush.dlq.source.offset";
const DLQ_SERVICE_HEADER: &str = "hush.dlq.service";
const DLQ_FAILED_AT_HEADER: &str = "hush.dlq.failed_at";

/// Writes dead letters to the configured topic.
#[derive(Clone)]
pub struct DeadLetterQueue {
    producer: EventProducer,
    topic: String,
    service: String,
}

impl DeadLetterQueue {
    /// A dead-letter writer for `service` on `topic` (normally `hush.dlq.v1`).
    pub fn new(
        producer: EventProducer,
        topic: impl Into<String>,
        service: impl Into<String>,
    ) -> Self {
        Self {
            producer,
            topic: topic.into(),
            service: service.into(),
        }
    }

    /// The dead-letter topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Copies `message` to the dead-letter topic with `reason`; returns once acknowledged.
    /// `reason` must not contain raw personal data.
    pub async fn send(&self, message: &IncomingMessage, reason: &str) -> Result<(), ProduceError> {
        let headers = dead_letter_headers(message, reason, &self.service);
        self.producer
            .send_bytes(
                &self.topic,
                message.key.as_deref(),
                message.payload.as_deref().unwrap_or_default(),
                headers,
            )
            .await?;
        crate::metrics::DEAD_LETTERS
            .with_label_values(&[message.topic.as_str()])
            .inc();
        Ok(())
    }
}

/// The headers of `message` as a dead letter: its own headers (trace context and earlier
/// dead-letter headers left out), then the reason, origin, service and time. For writers that
/// dead-letter inside their own transaction; `reason` must not contain raw personal data.
pub fn dead_letter_headers(message: &IncomingMessage, reason: &str, service: &str) -> OwnedHeaders {
    let partition = message.partition.to_string();
    let offset = message.offset.to_string();
    let failed_at = now_millis().to_string();
    let mut headers = OwnedHeaders::new_with_capacity(message.headers.len() + 6);
    for (name, value) in &message.headers {
        if name.starts_with("hush.dlq.") || name == "traceparent" || name == "tracestate" {
            continue;
        }
        headers = headers.insert(Header {
            key: name,
            value: Some(value.as_slice()),
        });
    }
    for (name, value) in [
        (DLQ_REASON_HEADER, reason),
        (DLQ_SOURCE_TOPIC_HEADER, message.topic.as_str()),
        (DLQ_SOURCE_PARTITION_HEADER, partition.as_str()),
        (DLQ_SOURCE_OFFSET_HEADER, offset.as_str()),
        (DLQ_SERVICE_HEADER, service),
        (DLQ_FAILED_AT_HEADER, failed_at.as_str()),
    ] {
        headers = headers.insert(Header {
            key: name,
            value: Some(value.as_bytes()),
        });
    }
    headers
}
