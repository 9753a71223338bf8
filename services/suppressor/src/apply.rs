//! Third stage: vendor calls for planned work, paced by the recipient's rate limit and retried in
//! place for a bounded time; what is still failing moves to the retry topic, what has had every
//! attempt it may have is confirmed `FAILED_PERMANENT` and dead-lettered. A vendor's Retry-After
//! longer than the in-place wait schedules the work for then and spends no attempt.
//!
//! An outcome whose read-back stays `PENDING` (a vendor error, a 429, an asynchronous job still
//! running) is confirmed as such and read back again through the retry topic with backoff, never
//! applied again: once the read-back resolves, the same outcome is confirmed again with it; once
//! `reverify_max_attempts` read-backs or `reverify_max_age_ms` pass, it is confirmed given up
//! (evidence [`READ_BACK_GAVE_UP_EVIDENCE_KEY`], the auditor's `ACTION_REQUIRED`) and
//! dead-lettered so it can be re-driven.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backoff::backoff::Backoff;
use hush_contracts::connector::{
    Completion, Connector, ConnectorError, ItemResults, Operation, SuppressionWork,
};
use hush_contracts::events::{
    Confirmation, ConfirmationAction, EpochMillis, IdentifierType, VerificationStatus,
    READ_BACKS_EVIDENCE_KEY, READ_BACK_GAVE_UP_EVIDENCE_KEY,
};
use hush_contracts::recipients::RecipientConfig;
use hush_contracts::redact::REDACTED;
use hush_runtime::kafka::{HandlerError, IncomingMessage};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::SuppressorSection;
use crate::metrics;
use crate::pace::Pacer;
use crate::plan::{due, Due, InFlight};
use crate::record::Record;
use crate::retry::{self, RetryState, Reverify};

/// Applies work at one recipient through its connector and records every outcome.
pub struct Applier<R, C> {
    /// The recipient served.
    pub recipient: RecipientConfig,
    /// Its connector.
    pub connector: Arc<dyn Connector>,
    /// Most items one call to the connector may carry (the vendor's batch limit).
    pub max_batch: usize,
    /// Retry settings.
    pub section: SuppressorSection,
    /// Where outcomes go.
    pub record: R,
    /// Time.
    pub clock: C,
    /// Cancelled at shutdown; in-place waits end early and the batch is handled again later.
    pub shutdown: CancellationToken,
    pacer: Arc<Pacer>,
}

impl<R: Record, C: Clock> Applier<R, C> {
    /// An applier for `recipient`, whose `rate_limit_per_second` paces every vendor call until
    /// [`Applier::pacer`] is given this replica's share of it; `max_batch` is the connector's
    /// batch limit.
    pub fn new(
        recipient: RecipientConfig,
        connector: Arc<dyn Connector>,
        max_batch: usize,
        section: SuppressorSection,
        record: R,
        clock: C,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            pacer: Arc::new(Pacer::new(f64::from(recipient.rate_limit_per_second))),
            recipient,
            connector,
            max_batch,
            section,
            record,
            clock,
            shutdown,
        }
    }

    /// What paces this applier's vendor calls (apply and read-back alike).
    pub fn pacer(&self) -> Arc<Pacer> {
        self.pacer.clone()
    }

    /// Most requests per vendor call: the configured batch size within the vendor's limit.
    pub fn batch_limit(&self) -> usize {
        self.recipient.batch_size.min(self.max_batch).max(1)
    }

    /// The longest this suppressor waits in place, for a retry that is not yet due or between
    /// two calls; anything longer goes through the retry topic.
    pub fn max_in_place_wait(&self) -> Duration {
        Duration::from_millis(self.section.max_in_place_wait_ms)
    }

    /// Holds a consumed message until it is due, waiting no later than `horizon`. True when it
    /// is due; false when it went back to the retry topic unchanged because it is due only
    /// after the horizon (it is then held until the horizon first, so a message is re-queued
    /// at most once per in-place wait).
    pub async fn hold_until_due(
        &self,
        message: &IncomingMessage,
        state: &RetryState,
        horizon: EpochMillis,
    ) -> Result<bool, HandlerError> {
        let (until, is_due) = match due(state, horizon) {
            Due::At(at) => (at, true),
            Due::AfterHorizon => (Some(horizon), false),
        };
        if let Some(until) = until {
            self.wait(self.clock.sleep_until(until)).await?;
        }
        if !is_due {
            let last_error = message.header(retry::LAST_ERROR_HEADER).unwrap_or_default();
            self.record.retry_later(message, state, last_error).await?;
        }
        Ok(is_due)
    }

    /// Runs `sleep` unless shutdown comes first.
    async fn wait(&self, sleep: impl std::future::Future<Output = ()>) -> Result<(), HandlerError> {
        tokio::select! {
            _ = self.shutdown.cancelled() => Err(HandlerError::Retryable("shutting down".into())),
            _ = sleep => Ok(()),
        }
    }

    /// Confirms `item` `NOT_APPLICABLE` with `reason`.
    pub async fn not_applicable(&self, item: InFlight, reason: String) -> Result<(), HandlerError> {
        let confirmation = self.confirmation(
            &item,
            ConfirmationAction::NotApplicable,
            VerificationStatus::Unverifiable,
            HashMap::from([("reason".to_string(), reason)]),
        );
        self.record.confirm(confirmation).await
    }

    async fn call(
        &self,
        operation: Operation,
        works: &[SuppressionWork],
    ) -> Result<ItemResults, ConnectorError> {
        self.pacer.ready().await;
        let timer = metrics::CALL_SECONDS
            .with_label_values(&[self.recipient.id.as_str()])
            .start_timer();
        let mut result = self.connector.apply(operation, works).await;
        timer.observe_duration();
        if let Ok(items) = &result {
            if items.len() != works.len() {
                result = Err(ConnectorError::Transient(format!(
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

    /// Applies one planned call: up to `in_place_attempts` vendor calls, waiting between them
    /// with exponential backoff or the vendor's Retry-After, never longer than the in-place
    /// wait; every item ends confirmed, moved to the retry topic, or dead-lettered.
    pub async fn apply(
        &self,
        operation: Operation,
        mut remaining: Vec<InFlight>,
    ) -> Result<(), HandlerError> {
        let mut backoff = backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(Duration::from_millis(200))
            .with_max_interval(self.max_in_place_wait())
            .with_max_elapsed_time(None)
            .build();
        let calls = self.section.in_place_attempts.max(1);
        for call in 1..=calls {
            // Work that already had every attempt it may have is not called again.
            let (exhausted, callable): (Vec<_>, Vec<_>) = remaining
                .into_iter()
                .partition(|item| item.attempts >= self.recipient.max_attempts);
            remaining = callable;
            for item in exhausted {
                self.fail_exhausted(item).await?;
            }
            if remaining.is_empty() {
                return Ok(());
            }
            let now = self.clock.now_millis();
            for item in &mut remaining {
                item.attempts += 1;
                item.first_attempt_at.get_or_insert(now);
                item.last_attempt_at = Some(now);
            }
            let works: Vec<SuppressionWork> = remaining.iter().map(|i| i.work.clone()).collect();
            let mut still_failing = Vec::new();
            match self.call(operation, &works).await {
                Ok(results) => {
                    let mut completed = Vec::new();
                    for (mut item, result) in remaining.into_iter().zip(results) {
                        match result {
                            Ok(completion) => completed.push((item, completion)),
                            Err(error) if error.is_retryable() => {
                                self.refund_if_deferred(&mut item, &error);
                                item.last_error = Some(error);
                                still_failing.push(item);
                            }
                            Err(error) => self.fail(item, &error).await?,
                        }
                    }
                    self.complete(completed).await?;
                }
                Err(error) if !error.is_retryable() => {
                    for item in remaining {
                        self.fail(item, &error).await?;
                    }
                }
                Err(error) => {
                    for item in &mut remaining {
                        self.refund_if_deferred(item, &error);
                        item.last_error = Some(error.clone());
                    }
                    still_failing = remaining;
                }
            }
            remaining = still_failing;
            let out_of_attempts = remaining
                .iter()
                .all(|item| item.attempts >= self.recipient.max_attempts);
            if out_of_attempts || call == calls {
                break;
            }
            let wait = match remaining
                .iter()
                .find_map(|i| vendor_wait(i.last_error.as_ref()))
            {
                Some(asked) => asked,
                None => backoff.next_backoff().unwrap_or(Duration::from_secs(1)),
            };
            if wait > self.max_in_place_wait() {
                break;
            }
            self.wait(self.clock.sleep(wait)).await?;
        }
        for item in remaining {
            if item.attempts >= self.recipient.max_attempts {
                self.fail_exhausted(item).await?;
            } else {
                self.schedule_retry(item).await?;
            }
        }
        Ok(())
    }

    /// A call the vendor deferred beyond the in-place wait (Retry-After) was not a failed
    /// attempt: the vendor asked to be called then, and the work is scheduled for then.
    fn refund_if_deferred(&self, item: &mut InFlight, error: &ConnectorError) {
        if vendor_wait(Some(error)).is_some_and(|asked| asked > self.max_in_place_wait()) {
            item.attempts = item.attempts.saturating_sub(1);
        }
    }

    /// Reads the outcomes of completed items back, as many per vendor call as the connector's
    /// batch read allows, and confirms each item with its verification; an item read back
    /// `PENDING` is scheduled to be read back again first.
    async fn complete(&self, completed: Vec<(InFlight, Completion)>) -> Result<(), HandlerError> {
        let per_call = self.connector.verify_batch_limit().max(1);
        let mut completed = completed.into_iter().peekable();
        while completed.peek().is_some() {
            let chunk: Vec<(InFlight, Completion)> = completed.by_ref().take(per_call).collect();
            // A read-back is a vendor call too: it counts against the recipient's rate limit
            // (a connector that reads nothing back makes no call here).
            if self.connector.reads_back() {
                self.pacer.ready().await;
            }
            let items: Vec<(&SuppressionWork, &Completion)> = chunk
                .iter()
                .map(|(item, completion)| (&item.work, completion))
                .collect();
            let verifications = self.connector.verify_batch(&items).await;
            for (index, (item, completion)) in chunk.into_iter().enumerate() {
                // A connector that answers too few statuses leaves the rest as they were.
                let verification = verifications
                    .get(index)
                    .copied()
                    .unwrap_or(completion.verification);
                let mut evidence: HashMap<String, String> =
                    completion.evidence.into_iter().collect();
                evidence.insert("connector_kind".into(), self.recipient.kind.clone());
                let confirmation = Confirmation {
                    exception_basis: completion.exception_basis,
                    ..self.confirmation(&item, completion.action, verification, evidence)
                };
                if verification == VerificationStatus::Pending
                    && self.connector.reverifies_pending()
                {
                    // Scheduled before it is confirmed: a crash in between applies the request
                    // again (connectors are idempotent) rather than leave it unread for good.
                    let reverify = Reverify {
                        pending_since: confirmation.completed_at,
                        pending: confirmation.clone(),
                        read_backs: 0,
                    };
                    self.reverify_later(&item.message, reverify).await?;
                }
                self.record.confirm(confirmation).await?;
            }
        }
        Ok(())
    }

    /// Reads back again the outcomes of `items`, whose read-back was `PENDING`, as many per
    /// vendor call as the connector's batch read allows: a resolved read-back confirms the same
    /// outcome again with it; one still `PENDING` is scheduled again with backoff until the
    /// re-verification limits pass, and is then confirmed given up and dead-lettered.
    pub async fn reverify(&self, items: Vec<(InFlight, Reverify)>) -> Result<(), HandlerError> {
        let per_call = self.connector.verify_batch_limit().max(1);
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let chunk: Vec<(InFlight, Reverify, Completion)> = items
                .by_ref()
                .take(per_call)
                .map(|(item, reverify)| {
                    let pending = &reverify.pending;
                    let completion = Completion {
                        action: pending.action,
                        verification: VerificationStatus::Pending,
                        exception_basis: pending.exception_basis.clone(),
                        evidence: pending.evidence.clone().into_iter().collect(),
                    };
                    (item, reverify, completion)
                })
                .collect();
            if self.connector.reads_back() {
                self.pacer.ready().await;
            }
            let reads: Vec<(&SuppressionWork, &Completion)> = chunk
                .iter()
                .map(|(item, _, completion)| (&item.work, completion))
                .collect();
            let verifications = self.connector.verify_batch(&reads).await;
            for (index, (item, mut reverify, _)) in chunk.into_iter().enumerate() {
                let verification = verifications
                    .get(index)
                    .copied()
                    .unwrap_or(VerificationStatus::Pending);
                reverify.read_backs += 1;
                self.reverified(item, reverify, verification).await?;
            }
        }
        Ok(())
    }

    /// Records one re-verification's read-back.
    async fn reverified(
        &self,
        item: InFlight,
        reverify: Reverify,
        verification: VerificationStatus,
    ) -> Result<(), HandlerError> {
        let recipient = self.recipient.id.as_str();
        let mut confirmation = reverify.pending.clone();
        confirmation.evidence.insert(
            READ_BACKS_EVIDENCE_KEY.into(),
            reverify.read_backs.to_string(),
        );
        if verification != VerificationStatus::Pending {
            confirmation.verification = verification;
            metrics::REVERIFICATIONS
                .with_label_values(&[recipient, verification_label(verification)])
                .inc();
            tracing::info!(
                request_id = %confirmation.request_id,
                connector = recipient,
                read_backs = reverify.read_backs,
                verification = verification_label(verification),
                "read back again"
            );
            return self.record.confirm(confirmation).await;
        }
        let now = self.clock.now_millis();
        let section = &self.section;
        let age = now.saturating_sub(reverify.pending_since).max(0) as u64;
        if reverify.read_backs < section.reverify_max_attempts.max(1)
            && age < section.reverify_max_age_ms
        {
            return self.reverify_later(&item.message, reverify).await;
        }
        let reason = format!(
            "read-back still PENDING after {} read-back(s) over {} s (limits: \
             reverify_max_attempts {}, reverify_max_age_ms {}); check the request at {} and \
             retry this recipient or record a resolution",
            reverify.read_backs,
            age / 1_000,
            section.reverify_max_attempts,
            section.reverify_max_age_ms,
            self.recipient.kind
        );
        confirmation
            .evidence
            .insert(READ_BACK_GAVE_UP_EVIDENCE_KEY.into(), reason.clone());
        metrics::REVERIFICATIONS
            .with_label_values(&[recipient, "gave_up"])
            .inc();
        tracing::warn!(
            request_id = %confirmation.request_id,
            connector = recipient,
            read_backs = reverify.read_backs,
            "read-back given up"
        );
        self.record.confirm(confirmation).await?;
        self.record
            .dead_letter(&item.message, &format!("connector {recipient}: {reason}"))
            .await
    }

    /// Schedules the next read-back of `reverify` (backoff by its read-backs so far).
    async fn reverify_later(
        &self,
        message: &IncomingMessage,
        reverify: Reverify,
    ) -> Result<(), HandlerError> {
        let delay = retry::retry_delay(
            reverify.read_backs + 1,
            Duration::from_millis(self.section.reverify_initial_delay_ms),
            Duration::from_millis(self.section.reverify_max_delay_ms),
            None,
        );
        let not_before = self.clock.now_millis() + delay.as_millis() as EpochMillis;
        self.record
            .reverify_later(message, &reverify, not_before)
            .await
    }

    async fn fail_exhausted(&self, item: InFlight) -> Result<(), HandlerError> {
        let error = item
            .last_error
            .clone()
            .unwrap_or_else(|| ConnectorError::Transient("no answer".into()));
        self.fail(item, &error).await
    }

    async fn fail(&self, item: InFlight, error: &ConnectorError) -> Result<(), HandlerError> {
        let reason = redact(&error.to_string(), &item.work);
        let evidence = HashMap::from([
            ("error".to_string(), reason.clone()),
            ("connector_kind".to_string(), self.recipient.kind.clone()),
            (
                "max_attempts".to_string(),
                self.recipient.max_attempts.to_string(),
            ),
        ]);
        let confirmation = self.confirmation(
            &item,
            ConfirmationAction::FailedPermanent,
            VerificationStatus::Failed,
            evidence,
        );
        self.record.confirm(confirmation).await?;
        self.record
            .dead_letter(
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
        // Evidence goes to the confirmations and audit topics: a connector's text never
        // carries a raw identifier there.
        let evidence = evidence
            .into_iter()
            .map(|(key, value)| (key, redact(&value, &item.work)))
            .collect();
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
            completed_at: self.clock.now_millis(),
            verification,
            evidence,
        }
    }

    async fn schedule_retry(&self, item: InFlight) -> Result<(), HandlerError> {
        let delay = retry::retry_delay(
            item.attempts,
            Duration::from_millis(self.section.retry_initial_delay_ms),
            Duration::from_millis(self.section.retry_max_delay_ms),
            vendor_wait(item.last_error.as_ref()),
        );
        let now = self.clock.now_millis();
        let state = RetryState {
            attempts: item.attempts,
            first_attempt_at: Some(item.first_attempt_at.unwrap_or(now)),
            not_before: Some(now + delay.as_millis() as EpochMillis),
        };
        let last_error = item
            .last_error
            .as_ref()
            .map(|e| redact(&e.to_string(), &item.work))
            .unwrap_or_default();
        self.record
            .retry_later(&item.message, &state, &last_error)
            .await?;
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

/// The metric label of a re-verification's resolved read-back.
fn verification_label(verification: VerificationStatus) -> &'static str {
    match verification {
        VerificationStatus::Verified => "verified",
        VerificationStatus::Failed => "failed",
        VerificationStatus::Unverifiable => "unverifiable",
        VerificationStatus::Pending => "pending",
    }
}

fn vendor_wait(error: Option<&ConnectorError>) -> Option<Duration> {
    match error {
        Some(ConnectorError::RetryAfter { after, .. }) => Some(*after),
        _ => None,
    }
}

/// Removes every raw identifier value of `work`, in any letter case and any encoding
/// [`hush_contracts::redact`] knows (percent-encoded, Base64, ...), from a vendor's text before
/// it is stored or logged. A phone is also removed without its leading `+`.
fn redact(text: &str, work: &SuppressionWork) -> String {
    let mut values = Vec::new();
    for identifier in &work.identifiers {
        if let Some(raw) = &identifier.raw {
            values.push(raw.expose());
            if identifier.kind == IdentifierType::Phone {
                values.push(raw.expose().trim_start_matches('+'));
            }
        }
    }
    hush_contracts::redact::redact(text, &values, REDACTED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{self, Answer, FakeClock, MemoryRecord, Output, ScriptedConnector};
    use hush_contracts::connector::{RawValue, WorkIdentifier};
    use hush_contracts::events::{IdentifierType, RequestKind};

    const NOW: EpochMillis = 1_000_000;

    fn section() -> SuppressorSection {
        SuppressorSection {
            in_place_attempts: 3,
            max_in_place_wait_ms: 30_000,
            retry_initial_delay_ms: 1_000,
            retry_max_delay_ms: 300_000,
            ..SuppressorSection::default()
        }
    }

    fn applier(
        connector: Arc<ScriptedConnector>,
        section: SuppressorSection,
    ) -> (Applier<MemoryRecord, FakeClock>, MemoryRecord, FakeClock) {
        let (record, clock) = (MemoryRecord::default(), FakeClock::at(NOW));
        let applier = Applier::new(
            fakes::recipient(),
            connector,
            100,
            section,
            record.clone(),
            clock.clone(),
            CancellationToken::new(),
        );
        (applier, record, clock)
    }

    fn item(id: &str, attempts: u32) -> InFlight {
        let request = fakes::request(id, RequestKind::OptOutSaleShare);
        let state = RetryState {
            attempts,
            first_attempt_at: (attempts > 0).then_some(NOW - 60_000),
            not_before: None,
        };
        InFlight::new(
            fakes::message(),
            crate::work::work_for(&request, None),
            &state,
        )
    }

    fn suppressed() -> Answer {
        Answer::Each(Ok(Completion::new(
            ConfirmationAction::Suppressed,
            Default::default(),
        )))
    }

    fn transient() -> Answer {
        Answer::Call(ConnectorError::Transient("HTTP 503".into()))
    }

    fn rate_limited(after: Duration) -> Answer {
        Answer::Call(ConnectorError::RetryAfter {
            after,
            detail: "HTTP 429".into(),
        })
    }

    fn confirmed(outputs: &[Output]) -> Vec<(ConfirmationAction, i32)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Confirmed(c) => Some((c.action, c.attempts)),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn completed_items_are_read_back_as_many_per_call_as_the_connector_allows() {
        let connector = ScriptedConnector::reading_back(2, [suppressed()]);
        let (applier, record, _) = applier(connector.clone(), section());
        let items = vec![item("a", 0), item("b", 0), item("c", 0)];
        applier.apply(Operation::Suppress, items).await.unwrap();
        assert_eq!(connector.read_backs(), vec![2, 1]);
        assert_eq!(confirmed(&record.outputs()).len(), 3);
    }

    #[tokio::test]
    async fn without_a_batch_read_each_item_is_read_back_on_its_own() {
        let connector = ScriptedConnector::answering([suppressed()]);
        let (applier, _, _) = applier(connector.clone(), section());
        let items = vec![item("a", 0), item("b", 0)];
        applier.apply(Operation::Suppress, items).await.unwrap();
        assert_eq!(connector.read_backs(), vec![1, 1]);
    }

    /// Seconds of (paused) time one apply of three items takes at one call a second.
    async fn paced_seconds(connector: Arc<ScriptedConnector>) -> u64 {
        let (applier, record, _) = applier(connector, section());
        applier.pacer().set_rate(1.0);
        let started = tokio::time::Instant::now();
        let items = vec![item("a", 0), item("b", 0), item("c", 0)];
        applier.apply(Operation::Suppress, items).await.unwrap();
        assert_eq!(confirmed(&record.outputs()).len(), 3);
        started.elapsed().as_secs()
    }

    #[tokio::test(start_paused = true)]
    async fn each_read_back_waits_for_a_slot_of_the_rate_limit() {
        // One apply at once, then three read-backs a second apart.
        let connector = ScriptedConnector::answering([suppressed()]);
        assert_eq!(paced_seconds(connector).await, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connector_that_reads_nothing_back_spends_no_slot_on_read_backs() {
        let connector = ScriptedConnector::answering([suppressed()]).reading_nothing_back();
        assert_eq!(paced_seconds(connector.clone()).await, 0);
        assert_eq!(connector.calls(), vec![3]);
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_in_place_after_a_backoff() {
        let connector = ScriptedConnector::answering([transient(), suppressed()]);
        let (applier, record, clock) = applier(connector.clone(), section());
        applier
            .apply(Operation::Suppress, vec![item("a", 0), item("b", 0)])
            .await
            .unwrap();
        assert_eq!(connector.calls(), vec![2, 2]);
        let sleeps = clock.sleeps();
        assert_eq!(sleeps.len(), 1);
        assert!(
            sleeps[0] >= Duration::from_millis(100) && sleeps[0] <= Duration::from_millis(300),
            "{sleeps:?}"
        );
        assert_eq!(
            confirmed(&record.outputs()),
            vec![
                (ConfirmationAction::Suppressed, 2),
                (ConfirmationAction::Suppressed, 2)
            ]
        );
    }

    #[tokio::test]
    async fn a_retry_after_within_the_in_place_wait_is_served_in_place() {
        let connector =
            ScriptedConnector::answering([rate_limited(Duration::from_secs(20)), suppressed()]);
        let (applier, record, clock) = applier(connector, section());
        applier
            .apply(Operation::Suppress, vec![item("a", 0)])
            .await
            .unwrap();
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(20)]);
        assert_eq!(
            confirmed(&record.outputs()),
            vec![(ConfirmationAction::Suppressed, 2)]
        );
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_in_place_wait_goes_to_the_retry_topic_unslept() {
        let connector = ScriptedConnector::answering([rate_limited(Duration::from_secs(120))]);
        let (applier, record, clock) = applier(connector.clone(), section());
        applier
            .apply(Operation::Suppress, vec![item("a", 0)])
            .await
            .unwrap();
        assert!(clock.sleeps().is_empty());
        assert_eq!(connector.calls(), vec![1]);
        match record.outputs().as_slice() {
            [Output::Retry { state, last_error }] => {
                assert_eq!(state.attempts, 0, "a deferral spends no attempt");
                assert_eq!(state.first_attempt_at, Some(NOW));
                // Exactly when the vendor will accept it (the backoff of a first retry is
                // shorter than 120 s).
                assert_eq!(state.not_before, Some(NOW + 120_000), "{state:?}");
                assert!(last_error.contains("HTTP 429"), "{last_error}");
            }
            other => panic!("expected one retry, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn repeated_long_deferrals_never_exhaust_the_attempts() {
        // max_attempts is 5: an item with four failed calls deferred again is not failed.
        let connector = ScriptedConnector::answering([rate_limited(Duration::from_secs(600))]);
        let (applier, record, _) = applier(connector, section());
        applier
            .apply(Operation::Suppress, vec![item("a", 4)])
            .await
            .unwrap();
        match record.outputs().as_slice() {
            [Output::Retry { state, .. }] => {
                assert_eq!(state.attempts, 4);
                assert_eq!(state.not_before, Some(NOW + 600_000));
            }
            other => panic!("expected one retry, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn work_still_failing_after_the_in_place_attempts_moves_to_the_retry_topic() {
        let connector = ScriptedConnector::answering([transient(), transient(), transient()]);
        let (applier, record, clock) = applier(connector.clone(), section());
        applier
            .apply(Operation::Suppress, vec![item("a", 0)])
            .await
            .unwrap();
        assert_eq!(connector.calls().len(), 3);
        assert_eq!(clock.sleeps().len(), 2, "a wait between calls, none after");
        let slept: Duration = clock.sleeps().iter().sum();
        match record.outputs().as_slice() {
            [Output::Retry { state, .. }] => {
                assert_eq!(state.attempts, 3);
                assert_eq!(state.first_attempt_at, Some(NOW));
                // Third retry-topic delay: 4 s ± 50 %, counted from the last call.
                let delay = state.not_before.unwrap() - (NOW + slept.as_millis() as i64);
                assert!((2_000..=6_000).contains(&delay), "{delay}");
            }
            other => panic!("expected one retry, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_last_allowed_attempt_fails_permanently_and_dead_letters() {
        let connector = ScriptedConnector::answering([transient()]);
        let (applier, record, clock) = applier(connector.clone(), section());
        // max_attempts is 5: this item had four calls already.
        applier
            .apply(Operation::Suppress, vec![item("a", 4)])
            .await
            .unwrap();
        assert_eq!(connector.calls(), vec![1]);
        assert!(clock.sleeps().is_empty());
        let outputs = record.outputs();
        assert_eq!(
            confirmed(&outputs),
            vec![(ConfirmationAction::FailedPermanent, 5)]
        );
        assert!(
            matches!(&outputs[1], Output::DeadLetter(reason) if reason.contains("after 5 attempt(s)")),
            "{outputs:?}"
        );
    }

    #[tokio::test]
    async fn work_out_of_attempts_is_not_called_again() {
        let connector = ScriptedConnector::answering([]);
        let (applier, record, _) = applier(connector.clone(), section());
        applier
            .apply(Operation::Suppress, vec![item("a", 5)])
            .await
            .unwrap();
        assert!(connector.calls().is_empty());
        assert_eq!(
            confirmed(&record.outputs()),
            vec![(ConfirmationAction::FailedPermanent, 5)]
        );
    }

    #[tokio::test]
    async fn a_permanent_refusal_is_not_retried() {
        let connector = ScriptedConnector::answering([Answer::Call(ConnectorError::Permanent(
            "HTTP 400".into(),
        ))]);
        let (applier, record, clock) = applier(connector.clone(), section());
        applier
            .apply(Operation::Delete, vec![item("a", 0)])
            .await
            .unwrap();
        assert_eq!(connector.operations(), vec![(Operation::Delete, 1)]);
        assert!(clock.sleeps().is_empty());
        let outputs = record.outputs();
        assert_eq!(
            confirmed(&outputs),
            vec![(ConfirmationAction::FailedPermanent, 1)]
        );
        assert!(matches!(&outputs[1], Output::DeadLetter(reason) if reason.contains("HTTP 400")));
    }

    #[tokio::test]
    async fn only_the_items_that_failed_are_called_again() {
        let connector = ScriptedConnector::answering([
            Answer::Items(vec![
                Ok(Completion::new(
                    ConfirmationAction::Suppressed,
                    Default::default(),
                )),
                Err(ConnectorError::Transient("HTTP 503".into())),
            ]),
            suppressed(),
        ]);
        let (applier, record, _) = applier(connector.clone(), section());
        applier
            .apply(Operation::Suppress, vec![item("a", 0), item("b", 0)])
            .await
            .unwrap();
        assert_eq!(connector.calls(), vec![2, 1]);
        assert_eq!(
            confirmed(&record.outputs()),
            vec![
                (ConfirmationAction::Suppressed, 1),
                (ConfirmationAction::Suppressed, 2)
            ]
        );
    }

    #[tokio::test]
    async fn a_wrong_number_of_results_is_a_transient_failure() {
        let connector = ScriptedConnector::answering([Answer::Items(vec![]), suppressed()]);
        let (applier, record, _) = applier(connector.clone(), section());
        applier
            .apply(Operation::Suppress, vec![item("a", 0)])
            .await
            .unwrap();
        assert_eq!(connector.calls(), vec![1, 1]);
        assert_eq!(
            confirmed(&record.outputs()),
            vec![(ConfirmationAction::Suppressed, 2)]
        );
    }

    #[tokio::test]
    async fn a_retry_due_within_the_horizon_is_waited_for_in_place() {
        let (applier, record, clock) = applier(ScriptedConnector::answering([]), section());
        let state = RetryState {
            attempts: 2,
            first_attempt_at: Some(NOW - 5_000),
            not_before: Some(NOW + 10_000),
        };
        let due = applier
            .hold_until_due(&fakes::message(), &state, NOW + 30_000)
            .await
            .unwrap();
        assert!(due);
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(10)]);
        assert!(record.outputs().is_empty());
    }

    #[tokio::test]
    async fn a_retry_due_after_the_horizon_goes_back_after_waiting_only_until_the_horizon() {
        let (applier, record, clock) = applier(ScriptedConnector::answering([]), section());
        let state = RetryState {
            attempts: 2,
            first_attempt_at: Some(NOW - 5_000),
            not_before: Some(NOW + 300_000),
        };
        let mut message = fakes::message();
        message
            .headers
            .push((retry::LAST_ERROR_HEADER.into(), b"HTTP 503".to_vec()));
        let due = applier
            .hold_until_due(&message, &state, NOW + 30_000)
            .await
            .unwrap();
        assert!(!due);
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(30)]);
        assert_eq!(
            record.outputs(),
            vec![Output::Retry {
                state,
                last_error: "HTTP 503".into()
            }]
        );
    }

    #[tokio::test]
    async fn shutdown_ends_an_in_place_wait_with_a_retryable_error() {
        let (applier, _, _) = applier(ScriptedConnector::answering([]), section());
        applier.shutdown.cancel();
        let result = applier.wait(std::future::pending::<()>()).await;
        assert_eq!(result, Err(HandlerError::Retryable("shutting down".into())));
    }

    /// Re-verification settings: at most 3 read-backs or 1 hour, 10 s doubling to 60 s.
    fn reverify_section() -> SuppressorSection {
        SuppressorSection {
            reverify_max_attempts: 3,
            reverify_max_age_ms: 3_600_000,
            reverify_initial_delay_ms: 10_000,
            reverify_max_delay_ms: 60_000,
            ..section()
        }
    }

    /// Applies item `a` at a connector whose read-back answers PENDING; returns what was
    /// scheduled to be read back again.
    async fn pending_outcome() -> (Reverify, EpochMillis) {
        let connector = ScriptedConnector::answering([suppressed()])
            .read_back_as([VerificationStatus::Pending]);
        let (applier, record, _) = applier(connector, reverify_section());
        applier
            .apply(Operation::Suppress, vec![item("a", 0)])
            .await
            .unwrap();
        match record.outputs().as_slice() {
            [Output::Reverify {
                reverify,
                not_before,
            }, Output::Confirmed(confirmed)] => {
                assert_eq!(&reverify.pending, confirmed);
                (*reverify.clone(), *not_before)
            }
            other => panic!("expected a re-verification, then the confirmation: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_pending_read_back_is_confirmed_and_scheduled_to_be_read_again() {
        let (reverify, not_before) = pending_outcome().await;
        assert_eq!(reverify.pending.verification, VerificationStatus::Pending);
        assert_eq!(reverify.pending.action, ConfirmationAction::Suppressed);
        assert_eq!((reverify.read_backs, reverify.pending_since), (0, NOW));
        // First delay: 10 s ± 50 %.
        assert!(
            (NOW + 5_000..=NOW + 15_000).contains(&not_before),
            "{not_before}"
        );
    }

    #[tokio::test]
    async fn a_pending_outcome_settled_elsewhere_is_not_re_verified() {
        let connector = ScriptedConnector::answering([suppressed()])
            .read_back_as([VerificationStatus::Pending])
            .settled_elsewhere();
        let (applier, record, _) = applier(connector, reverify_section());
        applier
            .apply(Operation::Suppress, vec![item("a", 0)])
            .await
            .unwrap();
        let outputs = record.outputs();
        assert!(
            matches!(outputs.as_slice(), [Output::Confirmed(c)] if c.verification == VerificationStatus::Pending),
            "{outputs:?}"
        );
    }

    /// Reads `reverify` back once at a connector answering `status`; returns the outputs and
    /// the connector.
    async fn read_again(
        reverify: Reverify,
        status: VerificationStatus,
        now: EpochMillis,
    ) -> (Vec<Output>, Arc<ScriptedConnector>) {
        let connector = ScriptedConnector::answering([]).read_back_as([status]);
        let (applier, record, _) = applier(connector.clone(), reverify_section());
        let clock = FakeClock::at(now);
        let applier = Applier { clock, ..applier };
        applier
            .reverify(vec![(item("a", 1), reverify)])
            .await
            .unwrap();
        (record.outputs(), connector)
    }

    #[tokio::test]
    async fn a_read_back_pending_twice_then_verified_confirms_without_applying_again() {
        let (mut reverify, _) = pending_outcome().await;
        let mut delays = Vec::new();
        for at in [NOW + 20_000, NOW + 60_000] {
            let (outputs, connector) = read_again(reverify, VerificationStatus::Pending, at).await;
            assert!(connector.calls().is_empty(), "never applied again");
            let [Output::Reverify {
                reverify: next,
                not_before,
            }] = outputs.as_slice()
            else {
                panic!("expected another re-verification: {outputs:?}")
            };
            delays.push(not_before - at);
            reverify = *next.clone();
        }
        assert_eq!(reverify.read_backs, 2);
        assert_eq!(
            reverify.pending_since, NOW,
            "the age counts from the first PENDING"
        );
        // 20 s then 40 s, each ± 50 % (within the 60 s cap).
        assert!(
            (10_000..=30_000).contains(&delays[0]),
            "doubling: {delays:?}"
        );
        assert!(
            (20_000..=60_000).contains(&delays[1]),
            "doubling: {delays:?}"
        );
        let (outputs, connector) = read_again(
            reverify.clone(),
            VerificationStatus::Verified,
            NOW + 120_000,
        )
        .await;
        assert!(connector.calls().is_empty());
        assert_eq!(connector.read_backs(), vec![1]);
        let [Output::Confirmed(confirmed)] = outputs.as_slice() else {
            panic!("expected one confirmation: {outputs:?}")
        };
        assert_eq!(confirmed.verification, VerificationStatus::Verified);
        // The same outcome, completed when it was: the auditor updates its read-back.
        assert_eq!(confirmed.completed_at, reverify.pending.completed_at);
        assert_eq!(confirmed.action, reverify.pending.action);
        assert_eq!(confirmed.attempts, reverify.pending.attempts);
        assert_eq!(confirmed.evidence[READ_BACKS_EVIDENCE_KEY], "3");
    }

    #[tokio::test]
    async fn a_read_back_pending_past_the_attempt_limit_is_given_up_and_dead_lettered() {
        let (mut reverify, _) = pending_outcome().await;
        reverify.read_backs = 2;
        let (outputs, _) = read_again(reverify, VerificationStatus::Pending, NOW + 60_000).await;
        let [Output::Confirmed(confirmed), Output::DeadLetter(reason)] = outputs.as_slice() else {
            panic!("expected a given-up confirmation and a dead letter: {outputs:?}")
        };
        assert_eq!(confirmed.verification, VerificationStatus::Pending);
        let gave_up = &confirmed.evidence[READ_BACK_GAVE_UP_EVIDENCE_KEY];
        assert!(gave_up.contains("after 3 read-back(s)"), "{gave_up}");
        assert!(reason.contains(gave_up.as_str()), "{reason}");
    }

    #[tokio::test]
    async fn a_read_back_pending_past_the_age_limit_is_given_up() {
        let (reverify, _) = pending_outcome().await;
        let (outputs, _) = read_again(reverify, VerificationStatus::Pending, NOW + 3_600_000).await;
        let [Output::Confirmed(confirmed), Output::DeadLetter(_)] = outputs.as_slice() else {
            panic!("expected a given-up confirmation and a dead letter: {outputs:?}")
        };
        assert!(
            confirmed.evidence[READ_BACK_GAVE_UP_EVIDENCE_KEY].contains("over 3600 s"),
            "{confirmed:?}"
        );
    }

    #[tokio::test]
    async fn a_read_back_found_wrong_is_confirmed_failed_not_given_up() {
        let (reverify, _) = pending_outcome().await;
        let (outputs, _) = read_again(reverify, VerificationStatus::Failed, NOW + 20_000).await;
        let [Output::Confirmed(confirmed)] = outputs.as_slice() else {
            panic!("{outputs:?}")
        };
        assert_eq!(confirmed.verification, VerificationStatus::Failed);
        assert!(!confirmed
            .evidence
            .contains_key(READ_BACK_GAVE_UP_EVIDENCE_KEY));
    }

    /// An item whose subject has a raw email and phone.
    fn item_with_raw_values(id: &str) -> InFlight {
        let mut item = item(id, 0);
        item.work.identifiers = vec![
            WorkIdentifier {
                kind: IdentifierType::Email,
                sha256: "h1".into(),
                raw: Some(RawValue::new("jane+news@example.com")),
            },
            WorkIdentifier {
                kind: IdentifierType::Phone,
                sha256: "h2".into(),
                raw: Some(RawValue::new("+14155550100")),
            },
        ];
        item
    }

    #[test]
    fn vendor_text_never_keeps_a_raw_identifier() {
        let work = item_with_raw_values("a").work;
        let text = redact("HTTP 404: contact jane+news@example.com not found", &work);
        assert_eq!(text, "HTTP 404: contact <redacted> not found");
    }

    #[test]
    fn encoded_and_recased_identifiers_are_redacted() {
        let work = item_with_raw_values("a").work;
        let text = redact(
            "GET /query?q=Email%3D%27JANE%2Bnews%40example.com%27 phone=%2B14155550100 \
             tel:14155550100",
            &work,
        );
        assert_eq!(
            text,
            "GET /query?q=Email%3D%27<redacted>%27 phone=<redacted> tel:<redacted>"
        );
    }

    #[tokio::test]
    async fn a_permanent_failure_stores_no_raw_identifier() {
        let error = ConnectorError::Permanent(
            "HTTP 400: MALFORMED_QUERY near 'Jane%2BNews%40Example.com'".into(),
        );
        let connector = ScriptedConnector::answering([Answer::Call(error)]);
        let (applier, record, _) = applier(connector, section());
        applier
            .apply(Operation::Suppress, vec![item_with_raw_values("a")])
            .await
            .unwrap();
        let outputs = record.outputs();
        let Some(Output::Confirmed(confirmation)) = outputs.first() else {
            panic!("{outputs:?}")
        };
        assert_eq!(
            confirmation.evidence["error"],
            "vendor refused the request: HTTP 400: MALFORMED_QUERY near '<redacted>'"
        );
        assert!(
            matches!(&outputs[1], Output::DeadLetter(reason) if reason.ends_with("near '<redacted>'")),
            "{outputs:?}"
        );
    }

    #[tokio::test]
    async fn connector_evidence_is_redacted_before_it_is_confirmed() {
        let completion = Completion::new(
            ConfirmationAction::Suppressed,
            [(
                "matched".to_string(),
                "contact JANE+NEWS@example.com".to_string(),
            )]
            .into(),
        );
        let connector = ScriptedConnector::answering([Answer::Each(Ok(completion))]);
        let (applier, record, _) = applier(connector, section());
        applier
            .apply(Operation::Suppress, vec![item_with_raw_values("a")])
            .await
            .unwrap();
        let outputs = record.outputs();
        let Some(Output::Confirmed(confirmation)) = outputs.first() else {
            panic!("{outputs:?}")
        };
        assert_eq!(confirmation.evidence["matched"], "contact <redacted>");
    }
}
