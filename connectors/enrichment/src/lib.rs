//! The enrichment connector, for Clearbit (`kind = "clearbit"`) and ZoomInfo
//! (`kind = "zoominfo"`). Neither vendor has a per-person suppression API, so Hush enforces the
//! suppression itself through its deny-list (`hush-denylist`): a suppressed person is never sent
//! to the vendor and results about them are dropped. This connector calls no vendor: it reads
//! the deny-list until it shows the request's suppression in force, and confirms with that
//! read-back as proof. See `README.md` for the configuration block.

pub mod client;
pub mod config;
pub mod verify;

use std::collections::BTreeMap;
use std::time::Instant;

use async_trait::async_trait;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    BatchResult, Completion, Connector, ConnectorError, Evidence, ItemResults, Operation,
    SuppressionWork, WorkIdentifier,
};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};
use hush_contracts::identifiers::is_sha256_hex;

pub use client::{CheckAnswer, DeniedEntry, DenyListClient};
pub use config::{EnrichmentConfig, EnrichmentSettings, KINDS, KIND_CLEARBIT, KIND_ZOOMINFO};
use verify::Enforcement;

/// Work items per call: one deny-list read serves a whole batch.
pub const BATCH_LIMIT: usize = 100;

/// Evidence value of `enforced_by`.
pub const ENFORCED_BY: &str = "hush-denylist";

/// Start of the retryable error returned while the deny-list does not show a suppression.
pub const NOT_SHOWN_YET: &str = "deny-list does not show the suppression yet";

/// Confirms suppressions at an enrichment vendor by reading Hush's own deny-list.
#[derive(Debug, Clone)]
pub struct EnrichmentConnector {
    client: DenyListClient,
}

impl EnrichmentConnector {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: EnrichmentConfig) -> Result<Self, ConfigError> {
        let client = DenyListClient::new(config)?;
        Ok(Self { client })
    }

    /// Reads the deny-list, every `poll_interval`, until it shows each item's suppression in
    /// force or `max_wait` has passed.
    async fn enforce(&self, batch: &[SuppressionWork]) -> ItemResults {
        let config = self.client.config();
        let mut results: Vec<Option<Result<Completion, ConnectorError>>> =
            batch.iter().map(without_a_read).collect();
        let started = Instant::now();
        let mut reads = 0_u32;
        loop {
            let pending: Vec<usize> = (0..batch.len()).filter(|i| results[*i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            let mut unique: BTreeMap<&str, &WorkIdentifier> = BTreeMap::new();
            for i in &pending {
                for identifier in &batch[*i].identifiers {
                    unique.insert(identifier.sha256.as_str(), identifier);
                }
            }
            let identifiers: Vec<&WorkIdentifier> = unique.into_values().collect();
            reads += 1;
            let answer = match self.client.check(&identifiers).await {
                Ok(answer) => answer,
                Err(error) => {
                    for i in pending {
                        results[i] = Some(Err(error.clone()));
                    }
                    break;
                }
            };
            let mut still_pending = 0;
            for i in pending {
                match verify::enforced(&batch[i], &answer) {
                    Some(shown) => results[i] = Some(Ok(self.completion(shown, reads))),
                    None => still_pending += 1,
                }
            }
            if still_pending == 0 {
                break;
            }
            let waited = started.elapsed();
            if waited >= config.max_wait {
                let error = ConnectorError::Transient(format!(
                    "{NOT_SHOWN_YET} ({reads} reads over {} ms; check that hush-state folds the \
                     requests and hush-denylist follows the suppressions topic)",
                    waited.as_millis()
                ));
                for result in results.iter_mut().filter(|r| r.is_none()) {
                    *result = Some(Err(error.clone()));
                }
                break;
            }
            tokio::time::sleep(config.poll_interval.min(config.max_wait - waited)).await;
        }
        let mut results: ItemResults = results
            .into_iter()
            .map(|r| r.expect("every item decided"))
            .collect();
        self.add_blocked_lookups(&mut results).await;
        results
    }

    fn completion(&self, shown: Enforcement, reads: u32) -> Completion {
        let mut evidence = Evidence::new();
        evidence.insert("enforced_by".into(), ENFORCED_BY.into());
        evidence.insert("vendor".into(), self.client.config().vendor.into());
        evidence.insert(
            "denied_identifiers".into(),
            shown.denied_identifiers.to_string(),
        );
        evidence.insert(
            "deny_reasons".into(),
            shown.reasons.into_iter().collect::<Vec<_>>().join(","),
        );
        evidence.insert("deny_list_reads".into(), reads.to_string());
        Completion::new(ConfirmationAction::Suppressed, evidence)
            .with_verification(VerificationStatus::Verified)
    }

    /// Adds the vendor's blocked lookups (from `/v1/stats`) to every suppression confirmed.
    /// The suppression is already proven by the read; a failed stats call is noted, not fatal.
    async fn add_blocked_lookups(&self, results: &mut ItemResults) {
        let confirmed = |r: &Result<Completion, ConnectorError>| {
            r.as_ref()
                .is_ok_and(|c| c.action == ConfirmationAction::Suppressed)
        };
        if !results.iter().any(confirmed) {
            return;
        }
        let blocked = match self.client.blocked_lookups().await {
            Ok(count) => count.to_string(),
            Err(error) => {
                tracing::warn!(
                    %error,
                    recipient = %self.client.config().recipient_id,
                    "deny-list statistics unavailable"
                );
                "unavailable".to_owned()
            }
        };
        for completion in results.iter_mut().flatten() {
            if completion.action == ConfirmationAction::Suppressed {
                completion
                    .evidence
                    .insert("blocked_lookups".into(), blocked.clone());
            }
        }
    }
}

/// The outcome of an item that needs no deny-list read, or `None` when it needs one.
fn without_a_read(work: &SuppressionWork) -> Option<Result<Completion, ConnectorError>> {
    let enforced_by = |mut completion: Completion| {
        completion
            .evidence
            .insert("enforced_by".to_owned(), ENFORCED_BY.to_owned());
        Some(Ok(completion))
    };
    if work.kind == RequestKind::OptInSaleShare {
        return enforced_by(Completion::not_applicable(
            "an opt-in lifts the deny-list entry through hush-state; nothing to enforce",
        ));
    }
    if work.identifiers.is_empty() {
        return enforced_by(Completion::not_found(
            "the request carries no identifier to deny",
        ));
    }
    if let Some(bad) = work
        .identifiers
        .iter()
        .position(|i| !is_sha256_hex(&i.sha256))
    {
        return Some(Err(ConnectorError::Permanent(format!(
            "request {}: identifier {bad} is not a lowercase hex SHA-256",
            work.request_id
        ))));
    }
    None
}

#[async_trait]
impl Connector for EnrichmentConnector {
    /// Nothing is read back from the vendor (the default `verify`), so no read-back slot of
    /// the rate limit is held.
    fn reads_back(&self) -> bool {
        false
    }

    /// Confirms an opt-out or a limit once the deny-list denies every identifier of the
    /// request: `SUPPRESSED`, `VERIFIED`; an opt-in is `NOT_APPLICABLE`, a request with no
    /// identifier `NOT_FOUND` with the reason (no one to deny). A deletion is
    /// confirmed once the deny-list denies every identifier as `DELETED`: the vendor holds
    /// nothing Hush could delete through an API, so the outcome is `SUPPRESSED` (enforced by
    /// the deny-list), `VERIFIED`. While the deny-list does not show it after `max_wait_ms`,
    /// the item fails with a retryable error.
    async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        Ok(self.enforce(batch).await)
    }
}

hush_contracts::connector_factory!(
    EnrichmentConnector,
    EnrichmentConfig,
    &config::KINDS,
    BATCH_LIMIT
);
