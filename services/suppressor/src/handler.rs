//! The suppressor's handler: decides applicability, batches, calls the connector with retries
//! honouring Retry-After, moves still-failing work to the retry topic, dead-letters after the
//! configured attempts, and emits exactly one confirmation per request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backoff::backoff::Backoff;
use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hush_contracts::connector::{
    Completion, Connector, ConnectorError, ItemResults, SuppressionWork,
};
use hush_contracts::crypto::FieldCipher;
use hush_contracts::events::{
    now_millis, Confirmation, ConfirmationAction, EpochMillis, PrivacyRequest, RequestKind,
    VerificationStatus,
};
use hush_contracts::recipients::RecipientConfig;
use hush_runtime::codec::AvroCodec;
use hush_runtime::kafka::{
    BatchHandler, DeadLetterQueue, EventProducer, HandlerError, IncomingMessage,
};
use rdkafka::message::{Header, OwnedHeaders};
use tokio_util::sync::CancellationToken;

use crate::config::SuppressorSection;
use crate::done::DoneSet;
use crate::metrics;
use crate::retry::{self, RetryState};
use crate::work::work_for;

/// Which connector call a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Suppress,
    Delete,
}

impl Operation {
    fn of(kind: RequestKind) -> Self {
        match kind {
            RequestKind::Delete => Operation::Delete,
            RequestKind::OptOutSaleShare
            | RequestKind::LimitSensitive
            | RequestKind::OptInSaleShare => Operation::Suppress,
        }
    }
}

/// A request in flight, with its retry bookkeeping.
struct InFlight {
    message: IncomingMessage,
    work: SuppressionWork,
    attempts: u32,
    first_attempt_at: Option<EpochMillis>,
    last_attempt_at: Option<EpochMillis>,
    last_error: Option<ConnectorError>,
}

/// Everything one connector's suppressor needs; shared by its two consumers.
pub struct Suppressor {
    /// The recipient served.
    pub recipient: RecipientConfig,
    /// Its connector.
    pub connector: Arc<dyn Connector>,
    /// Codec for requests and confirmations.
    pub codec: AvroCodec,
    /// Producer for confirmations and retries.
    pub producer: EventProducer,
    /// Dead letters.
    pub dlq: DeadLetterQueue,
    /// Confirmations topic.
    pub confirmations_topic: String,
    /// This connector's retry topic.
    pub retry_topic: String,
    /// Settings.
    pub section: SuppressorSection,
    /// Decrypts raw values, when a key is configured.
    pub cipher: Option<FieldCipher>,
    /// Requests already confirmed.
    pub done: Arc<DoneSet>,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
    limiter: DefaultDirectRateLimiter,
}

impl Suppressor {
    /// A suppressor for `recipient`; `rate_limit_per_second` bounds the vendor calls.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        recipient: RecipientConfig,
        retry_topic: String,
        connector: Arc<dyn Connector>,
        codec: AvroCodec,
        producer: EventProducer,
        dlq: DeadLetterQueue,
        confirmations_topic: String,
        section: SuppressorSection,
        cipher: Option<FieldCipher>,
        done: Arc<DoneSet>,
        shutdown: CancellationToken,
    ) -> Self {
        let per_second =
            std::num::NonZeroU32::new(recipient.rate_limit_per_second.max(1)).expect("non-zero");
        Self {
            retry_topic,
            limiter: RateLimiter::direct(Quota::per_second(per_second)),
            recipient,
            connector,
            codec,
            producer,
            dlq,
            confirmations_topic,
            section,
            cipher,
            done,
            shutdown,
        }
    }

    /// Most requests per vendor call: the configured batch size within the vendor's limit.
    pub fn batch_limit(&self) -> usize {
        self.recipient
            .batch_size
            .min(self.connector.max_batch())
            .max(1)
    }

    async fn decode(
        &self,
        message: &IncomingMessage,
    ) -> Result<Option<PrivacyRequest>, HandlerError> {
        match self
            .codec
            .decode::<PrivacyRequest>(message.payload.as_deref().unwrap_or_default())
            .await
        {
            Ok(request) => Ok(Some(request)),
            Err(error) if error.is_retryable() => Err(HandlerError::Retryable(error.to_string())),
            Err(error) => {
                self.dead_letter(message, &error.to_string()).await?;
                Ok(None)
            }
        }
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

    /// Waits until a retried message is due; false when shutdown came first.
    async fn wait_until_due(&self, state: &RetryState) -> bool {
        let Some(not_before) = state.not_before else {
            return true;
        };
        let wait = not_before - now_millis();
        if wait <= 0 {
            return true;
        }
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => true,
        }
    }

    async fn call(
        &self,
        operation: Operation,
        works: &[SuppressionWork],
    ) -> Result<ItemResults, ConnectorError> {
        self.limiter.until_ready().await;
        let timer = metrics::CALL_SECONDS
            .with_label_values(&[self.recipient.id.as_str()])
            .start_timer();
        let mut result = match operation {
            Operation::Suppress => self.connector.suppress(works).await,
            Operation::Delete => self.connector.delete(works).await,
        };
        if result.is_ok()
            && self.recipient.role == hush_contracts::events::RecipientRole::ThirdParty
        {
            if let Some(notice) = self.connector.notify(works).await {
                result = merge_notice(result, notice);
            }
        }
        timer.observe_duration();
        if let Ok(items) = &result {
            if items.len() != works.len() {
                return Err(ConnectorError::Transient(format!(
                    "connector answered {} results for {} requests",
                    items.len(),
                    works.len()
                )));
            }
        }
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) if e.is_retryable() => "retryable",
            Err(_) => "permanent",
        };
        metrics::CALLS
            .with_label_values(&[self.recipient.id.as_str(), outcome])
            .inc();
        result
    }

    /// Applies one chunk of requests needing the same operation.
    async fn apply(
        &self,
        operation: Operation,
        mut remaining: Vec<InFlight>,
    ) -> Result<(), HandlerError> {
        let mut backoff = backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(Duration::from_millis(200))
            .with_max_interval(Duration::from_millis(self.section.max_in_place_wait_ms))
            .with_max_elapsed_time(None)
            .build();
        for call in 1..=self.section.in_place_attempts.max(1) {
            // Work that already had every attempt it may have is not called again.
            let (exhausted, callable): (Vec<_>, Vec<_>) = remaining
                .into_iter()
                .partition(|item| item.attempts >= self.recipient.max_attempts);
            remaining = callable;
            for item in exhausted {
                let error = item
                    .last_error
                    .clone()
                    .unwrap_or_else(|| ConnectorError::Transient("no answer".into()));
                self.fail(item, &error).await?;
            }
            if remaining.is_empty() {
                return Ok(());
            }
            let now = now_millis();
            for item in &mut remaining {
                item.attempts += 1;
                item.first_attempt_at.get_or_insert(now);
                item.last_attempt_at = Some(now);
            }
            let works: Vec<SuppressionWork> = remaining.iter().map(|i| i.work.clone()).collect();
            let mut still_failing = Vec::new();
            match self.call(operation, &works).await {
                Ok(results) => {
                    for (mut item, result) in remaining.into_iter().zip(results) {
                        match result {
                            Ok(completion) => self.complete(item, completion).await?,
                            Err(error) if error.is_retryable() => {
                                item.last_error = Some(error);
                                still_failing.push(item);
                            }
                            Err(error) => self.fail(item, &error).await?,
                        }
                    }
                }
                Err(error) if !error.is_retryable() => {
                    for item in remaining {
                        self.fail(item, &error).await?;
                    }
                }
                Err(error) => {
                    for item in &mut remaining {
                        item.last_error = Some(error.clone());
                    }
                    still_failing = remaining;
                }
            }
            remaining = still_failing;
            if remaining.is_empty() || call == self.section.in_place_attempts {
                break;
            }
            let wait = match remaining
                .iter()
                .find_map(|i| vendor_wait(i.last_error.as_ref()))
            {
                Some(asked) => asked,
                None => backoff.next_backoff().unwrap_or(Duration::from_secs(1)),
            };
            if wait > Duration::from_millis(self.section.max_in_place_wait_ms) {
                break;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return Err(HandlerError::Retryable("shutting down".into())),
                _ = tokio::time::sleep(wait) => {}
            }
        }
        for item in remaining {
            if item.attempts >= self.recipient.max_attempts {
                let error = item
                    .last_error
                    .clone()
                    .unwrap_or_else(|| ConnectorError::Transient("no answer".into()));
                self.fail(item, &error).await?;
            } else {
                self.schedule_retry(item).await?;
            }
        }
        Ok(())
    }

    async fn complete(&self, item: InFlight, completion: Completion) -> Result<(), HandlerError> {
        // A read-back is a vendor call too: it counts against the recipient's rate limit.
        self.limiter.until_ready().await;
        let verification = self.connector.verify(&item.work, &completion).await;
        let mut evidence: HashMap<String, String> = completion.evidence.into_iter().collect();
        evidence.insert("connector_kind".into(), self.recipient.kind.clone());
        let confirmation = self.confirmation(&item, completion.action, verification, evidence);
        let confirmation = Confirmation {
            exception_basis: completion.exception_basis,
            ..confirmation
        };
        self.confirm(confirmation).await
    }

    async fn fail(&self, item: InFlight, error: &ConnectorError) -> Result<(), HandlerError> {
        let reason = redact(&error.to_string(), &item.work);
        let mut evidence = HashMap::from([
            ("error".to_string(), reason.clone()),
            ("connector_kind".to_string(), self.recipient.kind.clone()),
        ]);
        evidence.insert(
            "max_attempts".into(),
            self.recipient.max_attempts.to_string(),
        );
        let confirmation = self.confirmation(
            &item,
            ConfirmationAction::FailedPermanent,
            VerificationStatus::Failed,
            evidence,
        );
        self.confirm(confirmation).await?;
        self.dead_letter(
            &item.message,
            &format!(
                "connector {} failed permanently after {} attempt(s): {reason}",
                self.recipient.id, item.attempts
            ),
        )
        .await
    }

    fn confirmation(
        &self,
        item: &InFlight,
        action: ConfirmationAction,
        verification: VerificationStatus,
        evidence: HashMap<String, String>,
    ) -> Confirmation {
        Confirmation {
            request_id: item.work.request_id.clone(),
            subject_key: item.work.subject_key.clone(),
            connector_id: self.recipient.id.clone(),
            role: self.recipient.role,
            action,
            exception_basis: None,
            attempts: item.attempts as i32,
            first_attempt_at: item.first_attempt_at,
            last_attempt_at: item.last_attempt_at,
            completed_at: now_millis(),
            verification,
            evidence,
        }
    }

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
            .with_label_values(&[self.recipient.id.as_str(), confirmation.action.as_str()])
            .inc();
        tracing::info!(
            request_id = %confirmation.request_id,
            connector = %self.recipient.id,
            action = confirmation.action.as_str(),
            attempts = confirmation.attempts,
            "confirmed"
        );
        self.done.insert(confirmation.request_id);
        Ok(())
    }

    async fn schedule_retry(&self, item: InFlight) -> Result<(), HandlerError> {
        let delay = retry::retry_delay(
            item.attempts,
            Duration::from_millis(self.section.retry_initial_delay_ms),
            Duration::from_millis(self.section.retry_max_delay_ms),
            vendor_wait(item.last_error.as_ref()),
        );
        let not_before = now_millis() + delay.as_millis() as i64;
        let last_error = item
            .last_error
            .as_ref()
            .map(|e| redact(&e.to_string(), &item.work))
            .unwrap_or_default();
        let mut headers = OwnedHeaders::new();
        let attempts = item.attempts.to_string();
        let first = item.first_attempt_at.unwrap_or_else(now_millis).to_string();
        let not_before_text = not_before.to_string();
        for (name, value) in [
            (retry::ATTEMPTS_HEADER, attempts.as_str()),
            (retry::FIRST_ATTEMPT_HEADER, first.as_str()),
            (retry::NOT_BEFORE_HEADER, not_before_text.as_str()),
            (retry::LAST_ERROR_HEADER, last_error.as_str()),
        ] {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        self.producer
            .send_bytes(
                &self.retry_topic,
                item.message.key.as_deref(),
                item.message.payload.as_deref().unwrap_or_default(),
                headers,
            )
            .await
            .map_err(|e| HandlerError::Retryable(e.to_string()))?;
        metrics::RETRIES_SCHEDULED
            .with_label_values(&[self.recipient.id.as_str()])
            .inc();
        tracing::warn!(
            request_id = %item.work.request_id,
            connector = %self.recipient.id,
            attempts = item.attempts,
            delay_ms = delay.as_millis() as u64,
            error = %last_error,
            "moved to the retry topic"
        );
        Ok(())
    }
}

/// Shares one [`Suppressor`] between the requests consumer and the retry consumer.
#[derive(Clone)]
pub struct SharedSuppressor(pub Arc<Suppressor>);

#[async_trait]
impl BatchHandler for SharedSuppressor {
    async fn handle_batch(&self, batch: &[IncomingMessage]) -> Result<(), HandlerError> {
        let suppressor = &self.0;
        let mut in_flight: Vec<(Operation, InFlight)> = Vec::new();
        for message in batch {
            let state = RetryState::of(message);
            if !suppressor.wait_until_due(&state).await {
                return Err(HandlerError::Retryable("shutting down".into()));
            }
            let Some(request) = suppressor.decode(message).await? else {
                continue;
            };
            if suppressor.done.contains(&request.request_id) {
                metrics::SKIPPED_DONE
                    .with_label_values(&[suppressor.recipient.id.as_str()])
                    .inc();
                continue;
            }
            let work = work_for(&request, suppressor.cipher.as_ref());
            let item = InFlight {
                message: message.clone(),
                work,
                attempts: state.attempts,
                first_attempt_at: state.first_attempt_at,
                last_attempt_at: None,
                last_error: None,
            };
            if !suppressor.recipient.applies_to(&request) {
                let evidence = HashMap::from([(
                    "reason".to_string(),
                    format!(
                        "{} is outside this recipient's scope (request kinds {:?}, categories {:?})",
                        request.kind.as_str(),
                        suppressor.recipient.request_kinds,
                        suppressor.recipient.categories
                    ),
                )]);
                let confirmation = suppressor.confirmation(
                    &item,
                    ConfirmationAction::NotApplicable,
                    VerificationStatus::Unverifiable,
                    evidence,
                );
                suppressor.confirm(confirmation).await?;
                continue;
            }
            in_flight.push((Operation::of(request.kind), item));
        }
        let limit = suppressor.batch_limit();
        for operation in [Operation::Suppress, Operation::Delete] {
            let mut items: Vec<InFlight> = Vec::new();
            for (op, item) in std::mem::take(&mut in_flight) {
                if op == operation {
                    items.push(item);
                } else {
                    in_flight.push((op, item));
                }
            }
            let mut chunks = Vec::new();
            while !items.is_empty() {
                let rest = items.split_off(items.len().min(limit));
                chunks.push(items);
                items = rest;
            }
            // Vendor calls for different chunks overlap (the rate limiter still paces them);
            // any transient failure retries the batch, and what was confirmed is skipped then.
            let results: Vec<Result<(), HandlerError>> = futures::stream::iter(chunks)
                .map(|chunk| suppressor.apply(operation, chunk))
                .buffer_unordered(suppressor.section.concurrency.max(1))
                .collect()
                .await;
            results.into_iter().collect::<Result<(), _>>()?;
        }
        Ok(())
    }
}

fn vendor_wait(error: Option<&ConnectorError>) -> Option<Duration> {
    match error {
        Some(ConnectorError::RetryAfter { after, .. }) => Some(*after),
        _ => None,
    }
}

/// Merges the result of a third-party notice into the main call's result: a failed notice
/// fails the item (so it is retried), a sent one adds its evidence.
fn merge_notice(
    main: Result<ItemResults, ConnectorError>,
    notice: Result<ItemResults, ConnectorError>,
) -> Result<ItemResults, ConnectorError> {
    let main = main?;
    let notice = notice?;
    Ok(main
        .into_iter()
        .zip(notice)
        .map(|(main, notice)| match (main, notice) {
            (Ok(mut completion), Ok(sent)) => {
                for (key, value) in sent.evidence {
                    completion.evidence.insert(format!("notice.{key}"), value);
                }
                Ok(completion)
            }
            (Ok(_), Err(error)) => Err(error),
            (Err(error), _) => Err(error),
        })
        .collect())
}

/// Removes any raw identifier value of `work` from a vendor's text before it is stored.
fn redact(text: &str, work: &SuppressionWork) -> String {
    let mut text = text.to_owned();
    for identifier in &work.identifiers {
        if let Some(raw) = &identifier.raw {
            if !raw.expose().is_empty() {
                text = text.replace(raw.expose(), "<redacted>");
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::connector::{RawValue, WorkIdentifier};
    use hush_contracts::events::{Category, IdentifierType};

    #[test]
    fn vendor_text_never_keeps_a_raw_identifier() {
        let work = SuppressionWork {
            request_id: "r".into(),
            subject_key: "s".into(),
            kind: RequestKind::Delete,
            identifiers: vec![WorkIdentifier {
                kind: IdentifierType::Email,
                sha256: "h".into(),
                raw: Some(RawValue::new("jane@example.com")),
            }],
            categories: vec![Category::All],
            jurisdiction: "US-CA".into(),
            received_at: 0,
        };
        let text = redact("HTTP 404: contact jane@example.com not found", &work);
        assert_eq!(text, "HTTP 404: contact <redacted> not found");
    }

    #[test]
    fn a_failed_notice_fails_the_item_and_a_sent_one_adds_evidence() {
        let ok = || Completion::new(ConfirmationAction::Suppressed, Default::default());
        let mut sent = ok();
        sent.evidence.insert("http_status".into(), "200".into());
        let merged = merge_notice(
            Ok(vec![Ok(ok()), Ok(ok())]),
            Ok(vec![
                Ok(sent),
                Err(ConnectorError::Transient("down".into())),
            ]),
        )
        .unwrap();
        assert_eq!(
            merged[0]
                .as_ref()
                .unwrap()
                .evidence
                .get("notice.http_status")
                .map(String::as_str),
            Some("200")
        );
        assert!(matches!(merged[1], Err(ConnectorError::Transient(_))));
    }
}
