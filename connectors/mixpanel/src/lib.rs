//! Hush connector for Mixpanel (product analytics, role `SERVICE_PROVIDER`).
//!
//! A deletion becomes a CCPA deletion task of the GDPR/CCPA API
//! (`POST /api/app/data-deletions/v3.0/`, up to 2,000 distinct ids) on the person's
//! `distinct_id` (the request's raw `CUSTOMER_ID`). Mixpanel says deletions can take weeks, so the
//! confirmation is `DELETED` with verification `PENDING` and the task id as evidence; `verify`
//! reads the task (`GET /api/app/data-deletions/v3.0/{task_id}`) until `SUCCESS`. Mixpanel has
//! no server-side opt-out call (its SDKs' opt-out works on the device), so opt-outs and limits
//! are `NOT_APPLICABLE` here. See the crate README for configuration and evidence.

pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;
pub mod verify;

use std::time::Duration;

use async_trait::async_trait;
use hush_connector_kit::poll::{self, PollOutcome};
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    fill_results, BatchResult, Completion, Connector, ConnectorError, Evidence, ItemResults,
    ItemSlot, Operation, SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};

pub use client::{MixpanelClient, TaskStatus};
pub use config::{MixpanelConfig, MixpanelCredentials, MixpanelSettings, KIND};

use request::DeletionTask;

/// Evidence key of the deletion task id (what `verify` reads back).
pub const EVIDENCE_TASK: &str = "task_id";
/// Evidence key of the task's last known status.
pub const EVIDENCE_TASK_STATUS: &str = "task_status";

/// Mixpanel allows one GDPR API request a second; consecutive tasks of one batch wait this
/// long.
const REQUEST_SPACING: Duration = Duration::from_secs(1);

/// The Mixpanel connector.
pub struct MixpanelConnector {
    client: MixpanelClient,
}

impl MixpanelConnector {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: MixpanelConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: MixpanelClient::new(config)?,
        })
    }

    async fn delete(&self, batch: &[SuppressionWork]) -> Result<ItemResults, ConnectorError> {
        let mut results: Vec<ItemSlot> = vec![None; batch.len()];
        for (slot, work) in results.iter_mut().zip(batch) {
            if let Some(answer) = not_a_deletion(work.kind) {
                *slot = Some(Ok(answer));
            }
        }
        let plan = request::plan_tasks(
            batch
                .iter()
                .enumerate()
                .filter(|(_, w)| w.kind == RequestKind::Delete),
            request::MAX_DISTINCT_IDS,
        );
        for (item, reason) in plan.unmatched {
            results[item] = Some(Ok(Completion::not_found(reason)));
        }
        for (item, reason) in plan.refused {
            results[item] = Some(Err(ConnectorError::Permanent(reason)));
        }
        let mut created = Vec::with_capacity(plan.tasks.len());
        for (number, task) in plan.tasks.into_iter().enumerate() {
            if number > 0 {
                tokio::time::sleep(REQUEST_SPACING).await;
            }
            let task_id = self.client.create_deletion(&task.distinct_ids).await?;
            created.push((task, task_id));
        }
        let config = self.client.config();
        for (task, task_id) in created {
            let outcome = if config.waits.max_wait.is_zero() {
                PollOutcome::StillRunning {
                    last_status: Some("PENDING".into()),
                    last_error: None,
                }
            } else {
                verify::wait_for_task(
                    &self.client,
                    &task_id,
                    config.waits.poll_interval,
                    config.waits.max_wait,
                )
                .await
            };
            tracing::info!(
                recipient = %config.recipient_id,
                task_id = %task_id,
                distinct_ids = task.distinct_ids.len(),
                outcome = ?outcome,
                "Mixpanel deletion task"
            );
            record(&task, &task_id, &outcome, &mut results);
        }
        Ok(fill_results(results))
    }
}

/// Fills the slots of the items a task carried.
fn record(
    task: &DeletionTask,
    task_id: &str,
    outcome: &PollOutcome<TaskStatus>,
    results: &mut [ItemSlot],
) {
    let mut shared = Evidence::from([
        (EVIDENCE_TASK.to_owned(), task_id.to_owned()),
        (
            "compliance_type".to_owned(),
            request::COMPLIANCE_TYPE.to_owned(),
        ),
        (
            "distinct_id_count".to_owned(),
            task.distinct_ids.len().to_string(),
        ),
    ]);
    let verification = match outcome {
        PollOutcome::Finished(status) => {
            shared.insert(EVIDENCE_TASK_STATUS.into(), status.status.clone());
            if status.status != "SUCCESS" {
                for (item, _) in &task.items {
                    results[*item] = Some(Err(ConnectorError::Permanent(format!(
                        "Mixpanel deletion task {task_id} ended {}",
                        status.status
                    ))));
                }
                return;
            }
            VerificationStatus::Verified
        }
        PollOutcome::StillRunning {
            last_status,
            last_error,
        } => {
            shared.insert(
                EVIDENCE_TASK_STATUS.into(),
                last_status.clone().unwrap_or_else(|| "UNKNOWN".into()),
            );
            if let Some(error) = last_error {
                shared.insert("last_read_error".into(), error.clone());
            }
            VerificationStatus::Pending
        }
    };
    for (item, hashes) in &task.items {
        let mut evidence = shared.clone();
        evidence.insert("customer_id_sha256".into(), hashes.join(","));
        results[*item] =
            Some(Ok(Completion::new(ConfirmationAction::Deleted, evidence)
                .with_verification(verification)));
    }
}

/// The answer for a request kind Mixpanel has no call for; `None` for a deletion.
fn not_a_deletion(kind: RequestKind) -> Option<Completion> {
    match kind {
        RequestKind::Delete => None,
        RequestKind::OptOutSaleShare | RequestKind::LimitSensitive => {
            Some(Completion::not_applicable(
                "Mixpanel has no server-side opt-out call (its SDKs' opt-out works on the \
                 device): stop sending this person's events (Hush's gate) to honour the opt-out",
            ))
        }
        RequestKind::OptInSaleShare => Some(Completion::not_applicable(
            "Mixpanel has no opt-in call; collection resumes when the business sends the \
             person's events again",
        )),
    }
}

#[async_trait]
impl Connector for MixpanelConnector {
    /// Creates a deletion task for the batch's deletions; other request kinds are
    /// `NOT_APPLICABLE`.
    async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        self.delete(batch).await
    }

    /// A completion left `PENDING` is read back from the task its evidence names.
    async fn verify(&self, _work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        let read = |task_id: String| async move { verify::read_back(&self.client, &task_id).await };
        poll::read_back_pending(completion, EVIDENCE_TASK, read).await
    }
}

hush_contracts::connector_factory!(
    MixpanelConnector,
    MixpanelConfig,
    &[KIND],
    request::MAX_DISTINCT_IDS
);
