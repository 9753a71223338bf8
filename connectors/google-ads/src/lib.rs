//! Hush connector for Google Ads Customer Match.
//!
//! An opt-out, a limit on sensitive PI or a deletion removes the person (hashed emails and
//! E.164 phone numbers) from one Customer Match user list through an offline user data job:
//! `offlineUserDataJobs:create` → `:addOperations` (`remove`, partial failure enabled) →
//! `:run` → job status read through `googleAds:search` until `SUCCESS` or `FAILED`. Google
//! offers no restricted-data-processing mode for Customer Match, so removal is the only
//! suppression there is. Since April 2026 Google accepts this path only from developer tokens
//! allowlisted for Customer Match; everyone else uses `google_data_manager` (the Data Manager
//! API). See the crate README for configuration and evidence.

pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;
pub mod verify;

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use hush_connector_kit::google::customer_match::{self, HashedIdentifier, Member};
use hush_connector_kit::poll;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    BatchResult, Completion, Connector, ConnectorError, Evidence, ItemSlot, Operation,
    SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, VerificationStatus};

pub use client::{GoogleAdsClient, JobStatus};
pub use config::{GoogleAdsConfig, GoogleAdsCredentials, GoogleAdsSettings};

use verify::JobOutcome;

/// The recipient `kind` this connector serves.
pub const KIND: &str = "google_ads";

/// Evidence key of the offline user data job's resource name (what `verify` reads back).
pub const EVIDENCE_JOB: &str = "job_resource_name";
/// Evidence key of the job's last known status.
pub const EVIDENCE_JOB_STATUS: &str = "job_status";

/// The Google Ads Customer Match connector (role `THIRD_PARTY`).
pub struct GoogleAdsConnector {
    client: GoogleAdsClient,
}

impl GoogleAdsConnector {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: GoogleAdsConfig) -> Result<Self, ConfigError> {
        let client = GoogleAdsClient::new(config)?;
        Ok(Self { client })
    }

    /// Creates, fills, runs and waits for one job; fills the slots of the items it carried.
    async fn run_job(
        &self,
        operations: &[Member],
        action: ConfirmationAction,
        results: &mut [ItemSlot],
    ) -> Result<(), ConnectorError> {
        let job = self.client.create_job().await?;
        let refusals = self.add_operations(&job, operations).await?;
        let refused_operations = operations
            .iter()
            .filter(|op| refusals.contains_key(&op.item))
            .count();
        for (item, reasons) in &refusals {
            results[*item] = Some(Err(ConnectorError::Permanent(format!(
                "Google Ads refused {} (job {job})",
                reasons.join("; ")
            ))));
        }
        let accepted: BTreeSet<usize> = operations
            .iter()
            .map(|op| op.item)
            .filter(|item| !refusals.contains_key(item))
            .collect();
        if accepted.is_empty() {
            return Ok(());
        }
        let long_running = self.client.run_job(&job).await?;
        let config = self.client.config();
        let outcome = verify::wait_for_job(&self.client, &job, config.waits).await;
        tracing::info!(
            recipient = %config.recipient_id,
            job = %job,
            operations = operations.len(),
            refused_operations,
            outcome = ?outcome,
            "Google Ads Customer Match removal job"
        );

        let mut shared = Evidence::new();
        shared.insert(EVIDENCE_JOB.into(), job.clone());
        shared.insert("job_operation".into(), long_running);
        shared.insert(
            "user_list".into(),
            request::user_list_resource(&config.customer_id, &config.user_list_id),
        );
        shared.insert("batch_operations".into(), operations.len().to_string());
        shared.insert(
            "batch_refused_operations".into(),
            refused_operations.to_string(),
        );
        let verification = match &outcome {
            JobOutcome::Finished(status) if status.status == "SUCCESS" => {
                shared.insert(EVIDENCE_JOB_STATUS.into(), status.status.clone());
                VerificationStatus::Verified
            }
            JobOutcome::Finished(status) => {
                let reason = status
                    .failure_reason
                    .as_deref()
                    .unwrap_or("no reason given");
                for item in &accepted {
                    results[*item] = Some(Err(ConnectorError::Permanent(format!(
                        "Google Ads job {job} FAILED ({reason}); some of its operations may still have been applied"
                    ))));
                }
                return Ok(());
            }
            JobOutcome::StillRunning {
                last_status,
                last_error,
            } => {
                shared.insert(
                    EVIDENCE_JOB_STATUS.into(),
                    last_status.clone().unwrap_or_else(|| "UNKNOWN".into()),
                );
                if let Some(error) = last_error {
                    shared.insert("last_read_error".into(), error.clone());
                }
                VerificationStatus::Pending
            }
        };
        for item in accepted {
            let mine: Vec<&Member> = operations.iter().filter(|op| op.item == item).collect();
            let mut evidence = shared.clone();
            evidence.insert("item_operations".into(), mine.len().to_string());
            evidence.insert(
                "identifier_sha256".into(),
                customer_match::identifier_digests(mine),
            );
            results[item] = Some(Ok(
                Completion::new(action, evidence).with_verification(verification)
            ));
        }
        Ok(())
    }

    /// Sends the operations; returns, per refused item, what Google refused (by hash) and why.
    async fn add_operations(
        &self,
        job: &str,
        operations: &[Member],
    ) -> Result<BTreeMap<usize, Vec<String>>, ConnectorError> {
        let mut refusals: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (range, body) in
            request::add_operations_bodies(operations, request::MAX_IDENTIFIERS_PER_REQUEST)
        {
            let answer = self.client.add_operations(job, &body).await?;
            for failure in response::partial_failures(&answer) {
                match range.clone().nth(failure.operation) {
                    Some(index) => {
                        let op = &operations[index];
                        let who = match failure.identifier.and_then(|j| op.identifiers.get(j)) {
                            Some(identifier) => identifier.label(),
                            None => op
                                .identifiers
                                .iter()
                                .map(HashedIdentifier::label)
                                .collect::<Vec<_>>()
                                .join(", "),
                        };
                        refusals
                            .entry(op.item)
                            .or_default()
                            .push(format!("{who}: {}", failure.reason));
                    }
                    None => {
                        for op in &operations[range.clone()] {
                            refusals
                                .entry(op.item)
                                .or_default()
                                .push(failure.reason.clone());
                        }
                    }
                }
            }
        }
        Ok(refusals)
    }
}

/// Why a subject with neither email nor phone is `NOT_FOUND`, not a failure: a contact list
/// cannot hold them, so the request completes here (identity resolution may add an email
/// first).
const UNMATCHABLE: &str = "no email or phone: a Customer Match contact list matches people only by hashed email or phone number, so no member can be this subject";

#[async_trait]
impl Connector for GoogleAdsConnector {
    /// Removes every person from the Customer Match list; the outcome is `SUPPRESSED` or
    /// `DELETED` after the operation.
    async fn apply(&self, operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        let send = async |operations: &[Member], action, results: &mut [ItemSlot]| {
            self.run_job(operations, action, results).await
        };
        customer_match::remove(batch, operation, request::plan_removals, UNMATCHABLE, send).await
    }

    /// A completion left `PENDING` (job still running when the wait ran out) is read back from
    /// the job it names; anything else is already final.
    async fn verify(&self, _work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        let read = |job: String| async move { verify::read_back(&self.client, &job).await };
        poll::read_back_pending(completion, EVIDENCE_JOB, read).await
    }
}

hush_contracts::connector_factory!(
    GoogleAdsConnector,
    GoogleAdsConfig,
    &[KIND],
    request::MAX_BATCH
);
