//! Re-driving one request at one recipient once its cause is fixed: the dead letter the
//! recipient's suppressor wrote for it is found by request id and re-published to that
//! recipient's retry topic with fresh retry bookkeeping, so only that recipient tries again.

use std::sync::Mutex;

use hush_contracts::events::PrivacyRequest;
use rdkafka::message::{Header, OwnedHeaders};

use super::{EventProducer, IncomingMessage, TopicTable};
use crate::codec::AvroCodec;
use crate::config::{KafkaConfig, TopicsConfig};

/// Prefix of the client id (and so of the dead-letter service header) of a suppressor.
pub const SUPPRESSOR_CLIENT_PREFIX: &str = "hush-suppressor-";

/// Why a request could not be re-driven.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    /// No dead letter of that recipient's suppressor holds the request.
    #[error("no dead letter of recipient {connector} holds request {request_id}")]
    NotFound {
        /// Request id.
        request_id: String,
        /// Recipient id.
        connector: String,
    },
    /// Reading the dead letters or publishing failed; retry.
    #[error("kafka: {0}")]
    Kafka(String),
}

/// Where the re-driven request was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redriven {
    /// The recipient's retry topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// Finds the latest dead letter of `connector`'s suppressor for `request_id` and re-publishes
/// its bytes to `connector`'s retry topic, dead-letter and retry headers dropped.
pub async fn redrive(
    kafka: &KafkaConfig,
    topics: &TopicsConfig,
    codec: &AvroCodec,
    producer: &EventProducer,
    request_id: &str,
    connector: &str,
) -> Result<Redriven, RedriveError> {
    let service = format!("{SUPPRESSOR_CLIENT_PREFIX}{connector}");
    let (reader_kafka, dlq) = (kafka.clone(), topics.dlq.clone());
    let table =
        tokio::task::spawn_blocking(move || TopicTable::new(&reader_kafka, &dlq, "hush-redrive"))
            .await
            .map_err(|e| RedriveError::Kafka(e.to_string()))?
            .map_err(|e| RedriveError::Kafka(e.to_string()))?;
    let found: Mutex<Option<IncomingMessage>> = Mutex::new(None);
    table
        .catch_up(|message| {
            let (found, service) = (&found, service.as_str());
            async move {
                if message.header("hush.dlq.service") != Some(service) {
                    return;
                }
                let payload = message.payload.as_deref().unwrap_or_default();
                let matches = codec
                    .decode_patiently::<PrivacyRequest>(payload)
                    .await
                    .is_ok_and(|request| request.request_id == request_id);
                if matches {
                    *found.lock().expect("redrive lock") = Some(message);
                }
            }
        })
        .await
        .map_err(|e| RedriveError::Kafka(e.to_string()))?;
    let letter =
        found
            .into_inner()
            .expect("redrive lock")
            .ok_or_else(|| RedriveError::NotFound {
                request_id: request_id.to_owned(),
                connector: connector.to_owned(),
            })?;
    let mut headers = OwnedHeaders::new();
    for (name, value) in &letter.headers {
        if name.starts_with("hush.dlq.") || name.starts_with("hush.retry.") {
            continue;
        }
        headers = headers.insert(Header {
            key: name,
            value: Some(value.as_slice()),
        });
    }
    let topic = topics.retry_topic(connector);
    let delivered = producer
        .send_bytes(
            &topic,
            letter.key.as_deref(),
            letter.payload.as_deref().unwrap_or_default(),
            headers,
        )
        .await
        .map_err(|e| RedriveError::Kafka(e.to_string()))?;
    Ok(Redriven {
        topic,
        partition: delivered.partition,
        offset: delivered.offset,
    })
}
