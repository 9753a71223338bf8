//! Hush connector for Segment (customer data platform, role `SERVICE_PROVIDER`).
//!
//! Every request becomes a workspace-scoped regulation of the Segment Public API on the
//! person's `userId` (the business's customer id): `SUPPRESS_ONLY` for an opt-out or a limit
//! on sensitive PI, `SUPPRESS_WITH_DELETE` for a deletion. The regulation is then read back
//! until Segment reports it `FINISHED`. See the crate README for configuration and evidence.

pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;
pub mod verify;

use std::time::Instant;

use async_trait::async_trait;
use hush_connector_kit::poll;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    fill_results, BatchResult, Completion, Connector, ConnectorError, Evidence, ItemResults,
    ItemSlot, Operation, SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};

pub use client::{RegulationStatus, SegmentClient};
pub use config::{SegmentConfig, SegmentSettings};

use request::Regulation;
use verify::RegulationOutcome;

/// The recipient `kind` this connector serves.
pub const KIND: &str = "segment";

/// Evidence key of the regulation id (what `verify` reads back).
pub const EVIDENCE_REGULATE_ID: &str = "regulate_id";
/// Evidence key of the regulation's last known overall status.
pub const EVIDENCE_STATUS: &str = "overall_status";

/// The Segment connector.
pub struct SegmentConnector {
    client: SegmentClient,
}

impl SegmentConnector {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: SegmentConfig) -> Result<Self, ConfigError> {
        let client = SegmentClient::new(config)?;
        Ok(Self { client })
    }

    /// Regulates every item: one regulation per regulation type (and per 5,000 subjects),
    /// then waits for all of them within one `max_wait`.
    async fn regulate(&self, batch: &[SuppressionWork]) -> Result<ItemResults, ConnectorError> {
        let mut results: Vec<ItemSlot> = vec![None; batch.len()];
        let mut created: Vec<(&'static str, Regulation, String)> = Vec::new();
        for regulation_type in ["SUPPRESS_ONLY", "SUPPRESS_WITH_DELETE"] {
            let plan = request::plan_regulations(
                batch
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| request::regulation_type(w.kind) == Some(regulation_type)),
                request::MAX_SUBJECT_IDS,
            );
            for (item, reason) in plan.refused {
                results[item] = Some(Err(ConnectorError::Permanent(reason)));
            }
            for (item, reason) in plan.unmatched {
                results[item] = Some(Ok(Completion::not_found(reason)));
            }
            for regulation in plan.regulations {
                let body = request::regulation_body(regulation_type, &regulation.subject_ids);
                let regulate_id = self.client.create_regulation(&body).await?;
                created.push((regulation_type, regulation, regulate_id));
            }
        }
        for (slot, work) in results.iter_mut().zip(batch) {
            if work.kind == RequestKind::OptInSaleShare {
                *slot = Some(Ok(opt_in_not_applicable()));
            }
        }

        let config = self.client.config();
        let deadline = Instant::now() + config.waits.max_wait;
        for (regulation_type, regulation, regulate_id) in created {
            let outcome = verify::wait_for_regulation(
                &self.client,
                &regulate_id,
                config.waits.poll_interval,
                deadline.saturating_duration_since(Instant::now()),
            )
            .await;
            tracing::info!(
                recipient = %config.recipient_id,
                regulate_id = %regulate_id,
                regulation_type,
                subjects = regulation.subject_ids.len(),
                outcome = ?outcome,
                "Segment regulation"
            );
            record_outcome(
                &mut results,
                regulation_type,
                &regulation,
                &regulate_id,
                &outcome,
            );
        }
        Ok(fill_results(results))
    }
}

/// Fills the slots of the items a regulation carried.
fn record_outcome(
    results: &mut [ItemSlot],
    regulation_type: &str,
    regulation: &Regulation,
    regulate_id: &str,
    outcome: &RegulationOutcome,
) {
    let action = if regulation_type == "SUPPRESS_WITH_DELETE" {
        ConfirmationAction::Deleted
    } else {
        ConfirmationAction::Suppressed
    };
    let mut shared = Evidence::new();
    shared.insert(EVIDENCE_REGULATE_ID.into(), regulate_id.to_owned());
    shared.insert("regulation_type".into(), regulation_type.to_owned());
    shared.insert(
        "subject_count".into(),
        regulation.subject_ids.len().to_string(),
    );
    let verification = match outcome {
        RegulationOutcome::Finished(status) => {
            shared.insert(EVIDENCE_STATUS.into(), status.overall_status.clone());
            if !status.unfinished_destinations.is_empty() {
                shared.insert(
                    "unfinished_destinations".into(),
                    status.unfinished_destinations.join("; "),
                );
            }
            match status.overall_status.as_str() {
                "FINISHED" => VerificationStatus::Verified,
                // Segment itself complied, some destination did not: recorded, and flagged
                // as a failed read-back for a person to look at.
                "PARTIAL_SUCCESS" => VerificationStatus::Failed,
                other => {
                    for (item, _) in &regulation.items {
                        results[*item] = Some(Err(ConnectorError::Permanent(format!(
                            "Segment regulation {regulate_id} ({regulation_type}) ended {other}"
                        ))));
                    }
                    return;
                }
            }
        }
        RegulationOutcome::StillRunning {
            last_status,
            last_error,
        } => {
            shared.insert(
                EVIDENCE_STATUS.into(),
                last_status.clone().unwrap_or_else(|| "UNKNOWN".into()),
            );
            if let Some(error) = last_error {
                shared.insert("last_read_error".into(), error.clone());
            }
            VerificationStatus::Pending
        }
    };
    for (item, hashes) in &regulation.items {
        let mut evidence = shared.clone();
        evidence.insert("customer_id_sha256".into(), hashes.join(","));
        results[*item] = Some(Ok(
            Completion::new(action, evidence).with_verification(verification)
        ));
    }
}

/// Hush does not lift a Segment suppression on an opt-in: resuming collection is the
/// business's decision in Segment, so the connector records that there was nothing to do.
fn opt_in_not_applicable() -> Completion {
    Completion::not_applicable(
        "opt-ins are not propagated to Segment; an UNSUPPRESS regulation is the business's own decision",
    )
}

#[async_trait]
impl Connector for SegmentConnector {
    /// Creates one regulation for the batch; its type follows each request's kind.
    async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        self.regulate(batch).await
    }

    /// A completion left `PENDING` (regulation still running when the wait ran out) is read
    /// back from the regulation it names; anything else is already final.
    async fn verify(&self, _work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        let read = |id: String| async move { verify::read_back(&self.client, &id).await };
        poll::read_back_pending(completion, EVIDENCE_REGULATE_ID, read).await
    }
}

hush_contracts::connector_factory!(
    SegmentConnector,
    SegmentConfig,
    &[KIND],
    request::MAX_SUBJECT_IDS
);
