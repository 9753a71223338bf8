//! Hush connector for Amplitude (product analytics, role `SERVICE_PROVIDER`).
//!
//! A deletion schedules the person's `user_id` (the request's raw `CUSTOMER_ID`) for deletion
//! through the User Privacy API (`POST /api/2/deletions/users`, up to 100 ids a request).
//! Amplitude batches deletions into a job that runs 10 to 13 days later, so the confirmation is
//! `DELETED` with verification `PENDING` and the job as evidence; `verify` lists the jobs
//! (`GET /api/2/deletions/users?start_day=&end_day=`) until the job is `done`. Amplitude has no
//! opt-out call (its SDKs' `setOptOut` works on the device), so opt-outs and limits are
//! `NOT_APPLICABLE` here. See the crate README for configuration and evidence.

pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;
pub mod verify;

use std::time::Duration;

use async_trait::async_trait;
use hush_connector_kit::poll::PollOutcome;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    fill_results, BatchResult, Completion, Connector, ConnectorError, Evidence, ItemResults,
    ItemSlot, Operation, SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};

pub use client::{AmplitudeClient, DeletionJob};
pub use config::{AmplitudeConfig, AmplitudeCredentials, AmplitudeSettings, KIND};

use request::DeletionRequest;
use verify::JobStatuses;

/// Evidence key of the deletion jobs (`day` or `app:day`, comma-separated) `verify` reads back.
pub const EVIDENCE_JOBS: &str = "deletion_jobs";
/// Evidence key of the day the deletion was requested (`YYYY-MM-DD`), where the job listing
/// starts.
pub const EVIDENCE_REQUESTED_ON: &str = "requested_on_day";
/// Evidence key of the jobs' last known statuses (`job=status`, comma-separated).
pub const EVIDENCE_JOB_STATUS: &str = "job_status";

/// Amplitude allows one deletion request a second; consecutive requests of one batch wait this
/// long.
const REQUEST_SPACING: Duration = Duration::from_secs(1);

/// The Amplitude connector.
pub struct AmplitudeConnector {
    client: AmplitudeClient,
}

impl AmplitudeConnector {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: AmplitudeConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: AmplitudeClient::new(config)?,
        })
    }

    async fn delete(&self, batch: &[SuppressionWork]) -> Result<ItemResults, ConnectorError> {
        let mut results: Vec<ItemSlot> = vec![None; batch.len()];
        for (slot, work) in results.iter_mut().zip(batch) {
            if let Some(answer) = not_a_deletion(work.kind) {
                *slot = Some(Ok(answer));
            }
        }
        let plan = request::plan_deletions(
            batch
                .iter()
                .enumerate()
                .filter(|(_, w)| w.kind == RequestKind::Delete),
            request::MAX_IDS_PER_REQUEST,
        );
        for (item, reason) in plan.unmatched {
            results[item] = Some(Ok(Completion::not_found(reason)));
        }
        for (item, reason) in plan.refused {
            results[item] = Some(Err(ConnectorError::Permanent(reason)));
        }
        for (number, deletion) in plan.requests.iter().enumerate() {
            if number > 0 {
                tokio::time::sleep(REQUEST_SPACING).await;
            }
            let jobs = self.client.delete_users(&deletion.user_ids).await?;
            self.record(deletion, &jobs, &mut results).await;
        }
        Ok(fill_results(results))
    }

    /// Fills the slots of the items `deletion` carried from the jobs Amplitude answered.
    async fn record(
        &self,
        deletion: &DeletionRequest,
        jobs: &[DeletionJob],
        results: &mut [ItemSlot],
    ) {
        let config = self.client.config();
        let scheduled: usize = jobs.iter().map(|j| j.amplitude_ids).sum();
        tracing::info!(
            recipient = %config.recipient_id,
            user_ids = deletion.user_ids.len(),
            scheduled,
            jobs = jobs.len(),
            "Amplitude deletion requested"
        );
        if jobs.is_empty() || scheduled == 0 {
            // Amplitude skips user ids it does not know (`ignore_invalid_id`): when it scheduled
            // nobody at all, none of these people has data in Amplitude.
            for (item, hashes) in &deletion.items {
                let mut completion = Completion::not_found(
                    "Amplitude scheduled no Amplitude id for these user ids: no user with them \
                     exists in the project",
                );
                completion
                    .evidence
                    .insert("customer_id_sha256".into(), hashes.join(","));
                results[*item] = Some(Ok(completion));
            }
            return;
        }
        let keys: Vec<String> = jobs.iter().map(DeletionJob::key).collect();
        let requested_on = jobs
            .iter()
            .filter_map(|j| j.requested_on_day.clone())
            .max()
            .unwrap_or_else(|| chrono::Utc::now().date_naive().to_string());
        let answered = JobStatuses(
            jobs.iter()
                .map(|j| (j.key(), j.status.to_lowercase()))
                .collect(),
        );
        let mut statuses = answered.clone();
        let mut last_error = None;
        if answered.verification() == VerificationStatus::Pending
            && !config.waits.max_wait.is_zero()
        {
            match verify::wait_for_jobs(
                &self.client,
                &keys,
                &requested_on,
                config.waits.poll_interval,
                config.waits.max_wait,
            )
            .await
            {
                PollOutcome::Finished(finished) => statuses = finished,
                PollOutcome::StillRunning { last_error: e, .. } => last_error = e,
            }
        }
        let mut shared = Evidence::from([
            (EVIDENCE_JOBS.to_owned(), keys.join(",")),
            (EVIDENCE_REQUESTED_ON.to_owned(), requested_on),
            (EVIDENCE_JOB_STATUS.to_owned(), statuses.describe()),
            (
                "user_id_count".to_owned(),
                deletion.user_ids.len().to_string(),
            ),
            ("amplitude_ids_scheduled".to_owned(), scheduled.to_string()),
        ]);
        if let Some(error) = last_error {
            shared.insert("last_read_error".into(), error);
        }
        for (item, hashes) in &deletion.items {
            let mut evidence = shared.clone();
            evidence.insert("customer_id_sha256".into(), hashes.join(","));
            results[*item] = Some(Ok(Completion::new(ConfirmationAction::Deleted, evidence)
                .with_verification(statuses.verification())));
        }
    }
}

/// The answer for a request kind Amplitude has no call for; `None` for a deletion.
fn not_a_deletion(kind: RequestKind) -> Option<Completion> {
    match kind {
        RequestKind::Delete => None,
        RequestKind::OptOutSaleShare | RequestKind::LimitSensitive => Some(Completion::not_applicable(
            "Amplitude has no server-side opt-out call (its SDKs' setOptOut works on the device): \
             stop sending this person's events (Hush's gate) to honour the opt-out",
        )),
        RequestKind::OptInSaleShare => Some(Completion::not_applicable(
            "Amplitude has no opt-in call; collection resumes when the business sends the \
             person's events again",
        )),
    }
}

#[async_trait]
impl Connector for AmplitudeConnector {
    /// Schedules each deletion; other request kinds are `NOT_APPLICABLE`.
    async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        self.delete(batch).await
    }

    /// A completion left `PENDING` is read back from the jobs its evidence names; a failed
    /// read leaves it `PENDING`.
    async fn verify(&self, _work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        if completion.verification != VerificationStatus::Pending {
            return completion.verification;
        }
        let (Some(jobs), Some(requested_on)) = (
            completion.evidence.get(EVIDENCE_JOBS),
            completion.evidence.get(EVIDENCE_REQUESTED_ON),
        ) else {
            return VerificationStatus::Pending;
        };
        let keys: Vec<String> = jobs.split(',').map(str::to_owned).collect();
        match verify::read_jobs(&self.client, &keys, requested_on).await {
            Ok(statuses) => statuses.verification(),
            Err(error) => {
                tracing::warn!(jobs = %jobs, "Amplitude deletion job read-back failed: {error}");
                VerificationStatus::Pending
            }
        }
    }
}

hush_contracts::connector_factory!(
    AmplitudeConnector,
    AmplitudeConfig,
    &[KIND],
    request::MAX_IDS_PER_REQUEST
);
