//! The suppressor's outputs: a confirmation, a request moved to the retry topic (to be applied
//! or read back again), a dead letter.
//! Behind a trait so the decisions that lead to them can be tested without Kafka.

use std::sync::Arc;

use async_trait::async_trait;
use hush_contracts::events::{Confirmation, ConfirmationAction, EpochMillis};
use hush_runtime::kafka::{DeadLetterQueue, EventProducer, HandlerError, IncomingMessage};
use rdkafka::message::{Header, OwnedHeaders};

use crate::done::DoneSet;
use crate::metrics;
use crate::retry::{self, RetryState, Reverify};

/// Where the suppressor's outcomes go. Each method succeeds only once the output is durable;
/// an `Err` makes the consumer handle the batch again (outputs are idempotent downstream).
#[async_trait]
pub trait Record: Send + Sync {
    /// Publishes the one confirmation of a request at this recipient.
    async fn confirm(&self, confirmation: Confirmation) -> Result<(), HandlerError>;

    /// Moves `message` to the retry topic, to be tried again no sooner than `state.not_before`;
    /// its other headers (a re-verification's among them) go with it. `last_error` must carry
    /// no personal data.
    async fn retry_later(
        &self,
        message: &IncomingMessage,
        state: &RetryState,
        last_error: &str,
    ) -> Result<(), HandlerError>;

    /// Moves `message` to the retry topic as a re-verification of `reverify.pending`, to be
    /// read back no sooner than `not_before` (it is never applied again).
    async fn reverify_later(
        &self,
        message: &IncomingMessage,
        reverify: &Reverify,
        not_before: EpochMillis,
    ) -> Result<(), HandlerError>;

    /// Dead-letters `message` with `reason` (no personal data).
    async fn dead_letter(
        &self,
        message: &IncomingMessage,
        reason: &str,
    ) -> Result<(), HandlerError>;
}

/// The Kafka outputs of one recipient's suppressor.
pub struct KafkaRecord {
    /// Id of the recipient, for metrics.
    pub recipient_id: String,
    /// Producer for confirmations and retries.
    pub producer: EventProducer,
    /// Dead letters.
    pub dlq: DeadLetterQueue,
    /// Confirmations topic.
    pub confirmations_topic: String,
    /// This recipient's retry topic.
    pub retry_topic: String,
    /// Requests already confirmed; each confirmation sent is added.
    pub done: Arc<DoneSet>,
}

#[async_trait]
impl Record for KafkaRecord {
    async fn confirm(&self, confirmation: Confirmation) -> Result<(), HandlerError> {
        self.producer
            .send(
                &self.confirmations_topic,
                &confirmation.subject_key,
                &confirmation,
            )
            .await
            .map_err(|e| HandlerError::Retryable(e.to_string()))?;
        metrics::CONFIRMATIONS
            .with_label_values(&[self.recipient_id.as_str(), confirmation.action.as_str()])
            .inc();
        tracing::info!(
            request_id = %confirmation.request_id,
            connector = %self.recipient_id,
            action = confirmation.action.as_str(),
            attempts = confirmation.attempts,
            "confirmed"
        );
        // Only a success closes the request here: a permanent failure can be re-driven.
        if confirmation.action != ConfirmationAction::FailedPermanent {
            self.done.insert(confirmation.request_id);
        }
        Ok(())
    }

    async fn retry_later(
        &self,
        message: &IncomingMessage,
        state: &RetryState,
        last_error: &str,
    ) -> Result<(), HandlerError> {
        let attempts = state.attempts.to_string();
        let first = state
            .first_attempt_at
            .map(|at| at.to_string())
            .unwrap_or_default();
        let not_before = state
            .not_before
            .map(|at| at.to_string())
            .unwrap_or_default();
        self.requeue(
            message,
            &[
                (retry::ATTEMPTS_HEADER, attempts.as_str()),
                (retry::FIRST_ATTEMPT_HEADER, first.as_str()),
                (retry::NOT_BEFORE_HEADER, not_before.as_str()),
                (retry::LAST_ERROR_HEADER, last_error),
            ],
        )
        .await?;
        metrics::RETRIES_SCHEDULED
            .with_label_values(&[self.recipient_id.as_str()])
            .inc();
        Ok(())
    }

    async fn reverify_later(
        &self,
        message: &IncomingMessage,
        reverify: &Reverify,
        not_before: EpochMillis,
    ) -> Result<(), HandlerError> {
        let pending = serde_json::to_string(&reverify.pending)
            .map_err(|e| HandlerError::Retryable(format!("confirmation not encoded: {e}")))?;
        let (read_backs, since, not_before) = (
            reverify.read_backs.to_string(),
            reverify.pending_since.to_string(),
            not_before.to_string(),
        );
        self.requeue(
            message,
            &[
                (retry::REVERIFY_HEADER, pending.as_str()),
                (retry::READ_BACKS_HEADER, read_backs.as_str()),
                (retry::PENDING_SINCE_HEADER, since.as_str()),
                (retry::NOT_BEFORE_HEADER, not_before.as_str()),
                (retry::LAST_ERROR_HEADER, "read-back PENDING"),
            ],
        )
        .await?;
        metrics::REVERIFICATIONS
            .with_label_values(&[self.recipient_id.as_str(), "scheduled"])
            .inc();
        Ok(())
    }

    async fn dead_letter(
        &self,
        message: &IncomingMessage,
        reason: &str,
    ) -> Result<(), HandlerError> {
        self.dlq
            .send(message, reason)
            .await
            .map_err(|e| HandlerError::Retryable(e.to_string()))
    }
}

impl KafkaRecord {
    /// Re-publishes `message`'s bytes to the retry topic with `set` headers, and every other
    /// header it had.
    async fn requeue(
        &self,
        message: &IncomingMessage,
        set: &[(&str, &str)],
    ) -> Result<(), HandlerError> {
        let mut headers = OwnedHeaders::new();
        for (name, value) in requeued_headers(message, set) {
            headers = headers.insert(Header {
                key: name,
                value: Some(value),
            });
        }
        self.producer
            .send_bytes(
                &self.retry_topic,
                message.key.as_deref(),
                message.payload.as_deref().unwrap_or_default(),
                headers,
            )
            .await
            .map_err(|e| HandlerError::Retryable(e.to_string()))?;
        Ok(())
    }
}

/// The headers of `message` re-published with `set`: every header the message had that `set`
/// does not replace (a re-verification's among them), then each of `set`.
fn requeued_headers<'a>(
    message: &'a IncomingMessage,
    set: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a [u8])> {
    let kept = message
        .headers
        .iter()
        .filter(|(name, _)| set.iter().all(|(replaced, _)| replaced != name))
        .map(|(name, value)| (name.as_str(), value.as_slice()));
    kept.chain(set.iter().map(|(name, value)| (*name, value.as_bytes())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requeued_message_keeps_its_other_headers_and_replaces_the_ones_set() {
        let mut message = crate::fakes::message();
        message.headers = vec![
            (retry::REVERIFY_HEADER.into(), b"{...}".to_vec()),
            (retry::NOT_BEFORE_HEADER.into(), b"100".to_vec()),
            ("traceparent".into(), b"00-abc-def-01".to_vec()),
        ];
        let headers = requeued_headers(
            &message,
            &[
                (retry::NOT_BEFORE_HEADER, "200"),
                (retry::LAST_ERROR_HEADER, "HTTP 503"),
            ],
        );
        assert_eq!(
            headers,
            vec![
                (retry::REVERIFY_HEADER, &b"{...}"[..]),
                ("traceparent", &b"00-abc-def-01"[..]),
                (retry::NOT_BEFORE_HEADER, &b"200"[..]),
                (retry::LAST_ERROR_HEADER, &b"HTTP 503"[..]),
            ]
        );
    }
}
