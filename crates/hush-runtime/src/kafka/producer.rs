//! The idempotent producer every service writes events with.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::BrokerErrorContext;
use crate::codec::{AvroCodec, CodecError};
use crate::config::{ConfigError, KafkaConfig};
use crate::telemetry;
use hush_contracts::events::AvroEvent;

/// Why an event was not acknowledged by the broker.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// Encoding through the schema registry failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The broker did not acknowledge the event in time, or refused it; the reason ends with the
    /// last client-wide error (e.g. credentials refused) when there was one.
    #[error("kafka did not acknowledge the event on {topic}: {reason}")]
    NotAcknowledged {
        /// Target topic.
        topic: String,
        /// librdkafka's reason.
        reason: String,
    },
}

impl ProduceError {
    /// Whether the same send may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProduceError::Codec(e) => e.is_retryable(),
            ProduceError::NotAcknowledged { .. } => true,
        }
    }
}

/// Where an acknowledged event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// An idempotent producer (`enable.idempotence=true`, `acks=all`) that encodes events through the
/// schema registry and carries the current trace context in W3C headers. Cheap to clone.
#[derive(Clone)]
pub struct EventProducer {
    producer: FutureProducer<BrokerErrorContext>,
    broker_errors: BrokerErrorContext,
    codec: AvroCodec,
    timeout: Duration,
}

impl EventProducer {
    /// Builds the producer; `client_id` names the service in broker logs.
    pub fn new(
        kafka: &KafkaConfig,
        codec: AvroCodec,
        client_id: &str,
    ) -> Result<Self, ConfigError> {
        let broker_errors = BrokerErrorContext::default();
        let producer: FutureProducer<BrokerErrorContext> = super::client_config(kafka)?
            .set("client.id", client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("compression.type", "lz4")
            .set("linger.ms", "2")
            .set("message.timeout.ms", kafka.message_timeout_ms.to_string())
            .set(
                "statistics.interval.ms",
                super::restore::STATISTICS_INTERVAL_MS,
            )
            .create_with_context(broker_errors.clone())
            .map_err(|e| ConfigError::Invalid(format!("kafka producer: {e}")))?;
        broker_errors.attach(producer.client(), &kafka.bootstrap_servers);
        Ok(Self {
            producer,
            broker_errors,
            codec,
            timeout: Duration::from_millis(kafka.message_timeout_ms),
        })
    }

    /// The codec this producer encodes with.
    pub fn codec(&self) -> &AvroCodec {
        &self.codec
    }

    /// Encodes `event` and returns once the broker has acknowledged it.
    pub async fn send<T: AvroEvent>(
        &self,
        topic: &str,
        key: &str,
        event: &T,
    ) -> Result<Delivered, ProduceError> {
        let payload = self.codec.encode(topic, event).await?;
        self.send_bytes(topic, Some(key.as_bytes()), &payload, OwnedHeaders::new())
            .await
    }

    /// Sends raw bytes (a dead letter, a gate pass-through) and returns once acknowledged.
    /// The current trace context is added to `headers`.
    pub async fn send_bytes(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: OwnedHeaders,
    ) -> Result<Delivered, ProduceError> {
        let mut headers = headers;
        for (name, value) in telemetry::current_trace_headers() {
            headers = headers.insert(Header {
                key: &name,
                value: Some(value.as_bytes()),
            });
        }
        let record = FutureRecord {
            topic,
            partition: None,
            payload: Some(payload),
            key,
            timestamp: None,
            headers: Some(headers),
        };
        match self.producer.send(record, self.timeout).await {
            Ok(delivery) => Ok(Delivered {
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Err((error, _)) => Err(ProduceError::NotAcknowledged {
                topic: topic.to_owned(),
                reason: self.broker_errors.explain(&error.to_string()),
            }),
        }
    }

    /// Waits for every in-flight event to be acknowledged (used at shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Err(error) = self.producer.flush(timeout) {
            tracing::warn!(%error, "producer flush incomplete at shutdown");
        }
    }
}
