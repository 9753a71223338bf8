//! `hush.signals.v1`: upstream systems (a consent platform, the web back end, a call-centre
//! tool) publish requests to Kafka instead of calling HTTP. Each `PrivacySignal` becomes the same
//! [`Submission`] an HTTP body would and takes the same path ([`crate::api::admit`]); one that
//! fails validation is dead-lettered with a reason naming the field.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hush_contracts::events::{Channel, EpochMillis, PrivacySignal};
use hush_runtime::codec::AvroCodec;
use hush_runtime::kafka::{HandlerError, IncomingMessage, MessageHandler};

use crate::api::{admit, Intake};
use crate::submission::{Submission, SubmittedIdentifier, SubmittedVerification};

/// Namespace of request ids derived from a signal's source and idempotency key (UUID v5).
const SIGNAL_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6875_7368_2d73_6967_6e61_6c2d_6964_7331);

/// The request id of a signal: the same source and key always give the same id, and two
/// sources' keys never collide.
pub fn request_id_for(source: &str, idempotency_key: &str) -> String {
    let name = format!("{}\u{0}{idempotency_key}", source.trim());
    uuid::Uuid::new_v5(&SIGNAL_ID_NAMESPACE, name.as_bytes()).to_string()
}

/// When the legal clock starts: the upstream receipt for a trusted source (never later than
/// `now`), otherwise `now`.
pub fn receipt_time(signal: &PrivacySignal, trusted: &[String], now: EpochMillis) -> EpochMillis {
    if trusted.iter().any(|t| t == signal.source.trim()) {
        signal.received_at.min(now)
    } else {
        now
    }
}

/// The submission a signal stands for.
pub fn submission_of(signal: PrivacySignal) -> Submission {
    Submission {
        kind: signal.kind,
        jurisdiction: signal.jurisdiction,
        channel: Some(signal.channel.unwrap_or(Channel::Upstream)),
        identifiers: signal
            .identifiers
            .into_iter()
            .map(|identifier| SubmittedIdentifier {
                kind: identifier.kind,
                value: identifier.value,
                sha256: identifier.sha256,
            })
            .collect(),
        categories: (!signal.categories.is_empty()).then_some(signal.categories),
        verification: signal.verification.map(|v| SubmittedVerification {
            attestation: v.attestation,
            method: Some(v.method),
            verified_at: Some(
                DateTime::<Utc>::from_timestamp_millis(v.verified_at)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
            ),
        }),
        age_band: signal.age_band,
        consumer_initiated: Some(signal.consumer_initiated),
        idempotency_key: Some(format!("{}:{}", signal.source, signal.idempotency_key)),
    }
}

/// Turns every signal into a request.
pub struct SignalHandler {
    /// Intake's shared state.
    pub intake: Arc<Intake>,
    /// Registry codec.
    pub codec: AvroCodec,
    /// Sources whose `received_at` starts the legal clock.
    pub trusted_sources: Vec<String>,
}

#[async_trait]
impl MessageHandler for SignalHandler {
    async fn handle(&self, message: &IncomingMessage) -> Result<(), HandlerError> {
        let payload = message.payload.as_deref().unwrap_or_default();
        let signal: PrivacySignal = self.codec.decode(payload).await.map_err(|e| {
            if e.is_retryable() {
                HandlerError::Retryable(e.to_string())
            } else {
                HandlerError::Permanent(e.to_string())
            }
        })?;
        if signal.source.trim().is_empty() || signal.idempotency_key.trim().is_empty() {
            return Err(HandlerError::Permanent(
                "invalid_field at source/idempotency_key: a signal needs both, to be deduplicated"
                    .into(),
            ));
        }
        let request_id = request_id_for(&signal.source, &signal.idempotency_key);
        let now = Utc::now().timestamp_millis();
        let received = receipt_time(&signal, &self.trusted_sources, now);
        let received = DateTime::<Utc>::from_timestamp_millis(received).unwrap_or_else(Utc::now);
        match admit(&self.intake, submission_of(signal), request_id, received).await {
            Ok(accepted) => {
                tracing::info!(request_id = %accepted.request_id, "signal accepted");
                Ok(())
            }
            Err(error) if error.error == "broker_unavailable" => {
                Err(HandlerError::Retryable(error.to_string()))
            }
            Err(error) => Err(HandlerError::Permanent(format!(
                "{} at {}: {}",
                error.error,
                error.field.as_deref().unwrap_or("signal"),
                error.message
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::events::{IdentifierType, RequestKind, SignalIdentifier};

    fn signal(source: &str, received_at: EpochMillis) -> PrivacySignal {
        PrivacySignal {
            kind: RequestKind::OptOutSaleShare,
            identifiers: vec![SignalIdentifier {
                kind: IdentifierType::Email,
                value: Some("jane@example.com".into()),
                sha256: None,
            }],
            channel: None,
            jurisdiction: None,
            categories: vec![],
            verification: None,
            age_band: None,
            consumer_initiated: false,
            received_at,
            source: source.into(),
            idempotency_key: "k-1".into(),
        }
    }

    #[test]
    fn the_same_key_from_two_sources_gives_two_requests() {
        assert_eq!(request_id_for("crm", "k-1"), request_id_for("crm", "k-1"));
        assert_ne!(request_id_for("crm", "k-1"), request_id_for("cmp", "k-1"));
        assert_ne!(request_id_for("crm", "k-1"), request_id_for("crm", "k-2"));
    }

    #[test]
    fn the_clock_starts_upstream_only_for_a_trusted_source() {
        let trusted = vec!["consent-platform".to_owned()];
        assert_eq!(
            receipt_time(&signal("consent-platform", 1_000), &trusted, 5_000),
            1_000
        );
        assert_eq!(
            receipt_time(&signal("unknown", 1_000), &trusted, 5_000),
            5_000
        );
        assert_eq!(
            receipt_time(&signal("consent-platform", 9_000), &trusted, 5_000),
            5_000,
            "a receipt in the future is not believed"
        );
    }

    #[test]
    fn a_signal_becomes_the_submission_an_http_body_would() {
        let submission = submission_of(signal("crm", 1));
        assert_eq!(submission.channel, Some(Channel::Upstream));
        assert_eq!(submission.categories, None, "empty means ALL");
        assert_eq!(
            submission.identifiers[0].value.as_deref(),
            Some("jane@example.com")
        );
        assert_eq!(submission.idempotency_key.as_deref(), Some("crm:k-1"));
    }
}
