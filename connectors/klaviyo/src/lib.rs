//! Hush connector for Klaviyo (marketing automation, role `SERVICE_PROVIDER`).
//!
//! An opt-out (and, unless configured otherwise, a limit on sensitive PI) suppresses the
//! person's email address through a bulk suppression job, polled until Klaviyo completes it; a
//! deletion asks the Data Privacy API to delete every profile holding each of the person's
//! emails and phone numbers, read back from the profiles API until none is left. See the crate
//! README for configuration and evidence.

#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;
pub mod verify;

use async_trait::async_trait;
use hush_connector_kit::outcome::Halt;
use hush_connector_kit::poll::{self, NamedStatus, PollOutcome, PolledStatus};
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    fill_results, BatchResult, Completion, Connector, ConnectorError, Evidence, ItemSlot,
    Operation, SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};
use tokio::time::Instant;

pub use client::{KlaviyoClient, SuppressionJob};
pub use config::{KlaviyoConfig, KlaviyoSettings, KIND};

use request::ProfileKey;

/// Most work items one call to the connector carries: a suppression job holds 100 emails.
pub const MAX_BATCH: usize = request::MAX_SUPPRESSION_EMAILS;

/// Evidence key of the suppression job id (what `verify` reads back).
pub const EVIDENCE_JOB_ID: &str = "job_id";

/// Applies privacy requests to the profiles of one Klaviyo account.
pub struct KlaviyoConnector {
    client: KlaviyoClient,
}

/// One suppression job to create: its emails and the items they came from.
#[derive(Default)]
struct PlannedJob {
    emails: Vec<String>,
    items: Vec<usize>,
}

impl KlaviyoConnector {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: KlaviyoConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: KlaviyoClient::new(config)?,
        })
    }

    async fn suppress(&self, batch: &[SuppressionWork]) -> BatchResult {
        let settings = &self.client.config().settings;
        let mut results: Vec<ItemSlot> = vec![None; batch.len()];
        let mut jobs = vec![PlannedJob::default()];
        for (item, work) in batch.iter().enumerate() {
            let answer = match work.kind {
                RequestKind::Delete => Some(Err(ConnectorError::Permanent(format!(
                    "request {} is a DELETE, which Klaviyo applies through delete, not suppress",
                    work.request_id
                )))),
                RequestKind::OptInSaleShare => Some(Ok(Completion::not_applicable(
                    "opt-ins are not propagated to Klaviyo: lifting a suppression is the \
                     business's own decision",
                ))),
                RequestKind::LimitSensitive if !settings.suppress_on_limit => {
                    Some(Ok(Completion::not_applicable(
                        "limits on sensitive PI are not applied in Klaviyo (suppress_on_limit = false)",
                    )))
                }
                _ => None,
            };
            if answer.is_some() {
                results[item] = answer;
                continue;
            }
            let emails = match request::keys_of(work, &[IdentifierType::Email]) {
                Err(reason) => {
                    results[item] = Some(Err(ConnectorError::Permanent(reason)));
                    continue;
                }
                Ok(keys) if keys.is_empty() => {
                    results[item] = Some(Ok(Completion::not_found(
                        "no EMAIL identifier: Klaviyo suppresses profiles by email address",
                    )));
                    continue;
                }
                Ok(keys) if keys.len() > request::MAX_SUPPRESSION_EMAILS => {
                    results[item] = Some(Err(ConnectorError::Permanent(format!(
                        "request {} names {} email addresses, more than the {} a Klaviyo \
                         suppression job takes",
                        work.request_id,
                        keys.len(),
                        request::MAX_SUPPRESSION_EMAILS
                    ))));
                    continue;
                }
                Ok(keys) => keys,
            };
            let job = jobs.last_mut().expect("one job at least");
            let new: Vec<String> = emails
                .iter()
                .map(|key| key.value().to_owned())
                .filter(|email| !job.emails.contains(email))
                .collect();
            if job.emails.len() + new.len() > request::MAX_SUPPRESSION_EMAILS {
                jobs.push(PlannedJob::default());
            }
            let job = jobs.last_mut().expect("one job at least");
            for email in emails.iter().map(|key| key.value()) {
                if !job.emails.iter().any(|e| e == email) {
                    job.emails.push(email.to_owned());
                }
            }
            job.items.push(item);
        }

        let mut created: Vec<(PlannedJob, SuppressionJob)> = Vec::new();
        let mut halt = Halt::default();
        for job in jobs.into_iter().filter(|job| !job.items.is_empty()) {
            let outcome = match halt.halted() {
                Some(error) => Err(error.clone()),
                None => {
                    let emails: Vec<&str> = job.emails.iter().map(String::as_str).collect();
                    self.client.create_suppression_job(&emails).await
                }
            };
            match outcome {
                Ok(status) => created.push((job, status)),
                Err(error) => {
                    halt.note(&error);
                    for item in job.items {
                        results[item] = Some(Err(error.clone()));
                    }
                }
            }
        }

        let config = self.client.config();
        let deadline = Instant::now() + config.waits.max_wait;
        for (job, status) in created {
            let outcome = if status.is_final() {
                PollOutcome::Finished(status.clone())
            } else {
                verify::wait_for_job(
                    &self.client,
                    &status.id,
                    config.waits.poll_interval,
                    deadline.saturating_duration_since(Instant::now()),
                )
                .await
            };
            tracing::info!(recipient = %config.recipient_id, job_id = %status.id, outcome = ?outcome, "Klaviyo suppression job");
            let answer = suppression_outcome(&job, &status.id, outcome);
            for item in &job.items {
                results[*item] = Some(answer.clone());
            }
        }
        Ok(fill_results(results))
    }

    async fn delete(&self, batch: &[SuppressionWork]) -> BatchResult {
        let mut results: Vec<ItemSlot> = vec![None; batch.len()];
        let mut requested: Vec<(usize, Vec<ProfileKey>, u16)> = Vec::new();
        let mut halt = Halt::default();
        for (item, work) in batch.iter().enumerate() {
            if work.kind != RequestKind::Delete {
                results[item] = Some(Err(ConnectorError::Permanent(format!(
                    "request {} is a {}, not a deletion; Klaviyo profiles are deleted only for DELETE",
                    work.request_id,
                    work.kind.as_str()
                ))));
                continue;
            }
            let keys = match request::keys_of(work, &[IdentifierType::Email, IdentifierType::Phone])
            {
                Err(reason) => {
                    results[item] = Some(Err(ConnectorError::Permanent(reason)));
                    continue;
                }
                Ok(keys) if keys.is_empty() => {
                    results[item] = Some(Ok(Completion::not_found(
                        "no EMAIL or PHONE identifier: Klaviyo deletes profiles by email address \
                         or phone number",
                    )));
                    continue;
                }
                Ok(keys) => keys,
            };
            let mut status = 0;
            let mut failure: Option<ConnectorError> = None;
            for key in &keys {
                let outcome = match halt.halted() {
                    Some(error) => Err(error.clone()),
                    None => self.client.request_deletion(key).await,
                };
                match outcome {
                    Ok(answered) => status = answered,
                    Err(error) => {
                        halt.note(&error);
                        if !matches!(failure, Some(ConnectorError::Permanent(_))) {
                            failure = Some(error);
                        }
                    }
                }
            }
            match failure {
                Some(error) => results[item] = Some(Err(error)),
                None => requested.push((item, keys, status)),
            }
        }
        let config = self.client.config();
        let keys: Vec<Vec<ProfileKey>> = requested.iter().map(|(_, k, _)| k.clone()).collect();
        let statuses = verify::wait_until_deleted(&self.client, &keys, config.waits).await;
        for ((item, keys, status), verification) in requested.into_iter().zip(statuses) {
            let mut evidence = Evidence::new();
            evidence.insert("http_status".into(), status.to_string());
            evidence.insert("deletion_jobs".into(), keys.len().to_string());
            evidence.insert(
                "identifiers".into(),
                keys.iter()
                    .map(ProfileKey::attribute)
                    .collect::<Vec<_>>()
                    .join(","),
            );
            results[item] = Some(Ok(Completion::new(ConfirmationAction::Deleted, evidence)
                .with_verification(verification)));
        }
        Ok(fill_results(results))
    }
}

/// What a suppression job's outcome means for each of its items.
fn suppression_outcome(
    job: &PlannedJob,
    job_id: &str,
    outcome: PollOutcome<SuppressionJob>,
) -> Result<Completion, ConnectorError> {
    let mut evidence = Evidence::new();
    evidence.insert(EVIDENCE_JOB_ID.into(), job_id.to_owned());
    evidence.insert("job_emails".into(), job.emails.len().to_string());
    let verification = match outcome {
        PollOutcome::Finished(status) => {
            evidence.insert("job_status".into(), status.status.clone());
            evidence.insert("total_count".into(), status.total_count.to_string());
            evidence.insert("completed_count".into(), status.completed_count.to_string());
            evidence.insert("skipped_count".into(), status.skipped_count.to_string());
            if status.status == "cancelled" {
                return Err(ConnectorError::Permanent(format!(
                    "Klaviyo cancelled suppression job {job_id}"
                )));
            }
            status.verification()
        }
        PollOutcome::StillRunning {
            last_status,
            last_error,
        } => {
            evidence.insert(
                "job_status".into(),
                last_status.unwrap_or_else(|| "unknown".into()),
            );
            if let Some(error) = last_error {
                evidence.insert("last_read_error".into(), error);
            }
            VerificationStatus::Pending
        }
    };
    Ok(Completion::new(ConfirmationAction::Suppressed, evidence).with_verification(verification))
}

#[async_trait]
impl Connector for KlaviyoConnector {
    /// Suppress creates bulk suppression jobs (100 emails each) and waits for them →
    /// `SUPPRESSED`; Delete requests one Data Privacy deletion per email and phone number and
    /// reads the profiles back → `DELETED`. Opt-ins are `NOT_APPLICABLE`; a request with no
    /// email (for a deletion: no email or phone) is `NOT_FOUND` with the reason, without a call.
    async fn apply(&self, operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        match operation {
            Operation::Suppress => self.suppress(batch).await,
            Operation::Delete => self.delete(batch).await,
        }
    }

    /// A `PENDING` suppression reads its job again; a `PENDING` deletion reads the profiles
    /// again. Anything else keeps its status.
    async fn verify(&self, work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        if completion.verification != VerificationStatus::Pending {
            return completion.verification;
        }
        match completion.action {
            ConfirmationAction::Suppressed => {
                let read = |id: String| async move { verify::read_job(&self.client, &id).await };
                poll::read_back_pending(completion, EVIDENCE_JOB_ID, read).await
            }
            ConfirmationAction::Deleted => {
                match request::keys_of(work, &[IdentifierType::Email, IdentifierType::Phone]) {
                    Ok(keys) if !keys.is_empty() => {
                        verify::read_deletion(&self.client, &keys).await
                    }
                    _ => completion.verification,
                }
            }
            _ => completion.verification,
        }
    }
}

hush_contracts::connector_factory!(KlaviyoConnector, KlaviyoConfig, &[KIND], MAX_BATCH);
