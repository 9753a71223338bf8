//! The BigQuery connector: the business's own warehouse (role `SERVICE_PROVIDER` typically,
//! since the business directs it). Each right runs a configured DML template through `jobs.query`
//! with the subject's identifiers as named query parameters — flag the rows, or delete them —
//! waits for the job, and a configured check query reads the result back. See `README.md` for
//! the configuration block and [`request`] for the placeholder scheme (the same as the `postgres`
//! and `snowflake` connectors').

#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;
pub mod verify;

use async_trait::async_trait;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    BatchResult, Completion, Connector, ConnectorError, Evidence, Operation, SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};

pub use client::BigQueryClient;
pub use config::{BigQueryConfig, BigQuerySettings, KIND, MAX_BATCH};
use request::Unbindable;
use response::Job;
use verify::Run;

/// Evidence key: the setting whose statement ran, e.g. `settings.opt_out.statement`.
pub const EVIDENCE_STATEMENT: &str = "statement";
/// Evidence key: SHA-256 of the statement's configured text.
pub const EVIDENCE_STATEMENT_SHA256: &str = "statement_sha256";
/// Evidence key: rows the statement affected, summed over its runs.
pub const EVIDENCE_ROWS_AFFECTED: &str = "rows_affected";
/// Evidence key: BigQuery's job ids of the runs, comma-separated.
pub const EVIDENCE_JOBS: &str = "job_ids";
/// Evidence key: the jobs still running when the call's wait ended, read back by `verify`.
pub const EVIDENCE_RUNNING: &str = "running_jobs";

/// Applies privacy requests to one BigQuery project.
pub struct BigQueryConnector {
    client: BigQueryClient,
}

/// One work item on its way through a batch.
enum Item {
    /// Settled without waiting for BigQuery.
    Settled(Result<Completion, ConnectorError>),
    /// Its runs were submitted.
    Submitted {
        /// Index of its first run in the batch's run list.
        first: usize,
        /// How many runs.
        count: usize,
    },
}

impl BigQueryConnector {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: BigQueryConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: BigQueryClient::new(config)?,
        })
    }

    /// Submits every run of one item's statement; `Err` settles the item.
    async fn submit(
        &self,
        work: &SuppressionWork,
        runs: &mut Vec<Run>,
    ) -> Result<usize, Result<Completion, ConnectorError>> {
        let config = self.client.config();
        let Some(right) = config.right(work.kind) else {
            return Err(Ok(Completion::not_applicable(format!(
                "no statement is configured for {} (settings.{})",
                work.kind.as_str(),
                setting_of(work.kind)
            ))));
        };
        let statement = &right.statement;
        let executions = match statement.template.bind(work) {
            Ok(executions) => executions,
            Err(Unbindable::NoIdentifier(types)) => {
                let types: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
                return Err(Ok(Completion::not_applicable(format!(
                    "no {} identifier: {} matches on {}",
                    types.join(" or "),
                    statement.field,
                    types.join(", ")
                ))));
            }
            Err(Unbindable::RawMissing(kind)) => {
                return Err(Err(ConnectorError::Permanent(format!(
                    "request {} carries its {} hashed only, but {} binds the raw value \
                     (:{}): intake must keep raw {} values ([intake] keep_raw)",
                    work.request_id,
                    kind.as_str(),
                    statement.field,
                    kind.as_str().to_ascii_lowercase(),
                    kind.as_str()
                ))));
            }
        };
        let count = executions.len();
        for (number, execution) in executions.into_iter().enumerate() {
            match self
                .client
                .query(statement, &work.request_id, number, &execution)
                .await
            {
                Ok(Job::Failed(error)) | Err(error) => return Err(Err(error)),
                Ok(state) => runs.push(Run { execution, state }),
            }
        }
        Ok(count)
    }

    /// The completion of an item whose runs were all submitted and waited for.
    fn settle(
        &self,
        work: &SuppressionWork,
        runs: &[Run],
        poll_error: Option<&String>,
    ) -> Result<Completion, ConnectorError> {
        let config = self.client.config();
        let Some(right) = config.right(work.kind) else {
            return Err(ConnectorError::Permanent(
                "internal error: a submitted item has no statement".into(),
            ));
        };
        let mut jobs = Vec::new();
        let mut running = Vec::new();
        let mut affected = 0;
        for run in runs {
            match &run.state {
                Job::Failed(error) => return Err(error.clone()),
                Job::Running(job) => {
                    jobs.push(job.clone());
                    running.push(job.clone());
                }
                Job::Done(result) => {
                    jobs.push(result.job_id.clone());
                    affected += result.rows_affected.unwrap_or(0);
                }
            }
        }
        let mut evidence = Evidence::new();
        evidence.insert(EVIDENCE_STATEMENT.into(), right.statement.field.clone());
        evidence.insert(
            EVIDENCE_STATEMENT_SHA256.into(),
            right.statement.sha256.clone(),
        );
        evidence.insert(EVIDENCE_JOBS.into(), jobs.join(","));
        evidence.insert("executions".into(), runs.len().to_string());
        evidence.insert("project".into(), config.project_id.clone());
        if let Some(location) = &config.context.location {
            evidence.insert("location".into(), location.clone());
        }
        evidence.insert("credentials".into(), config.tokens.name().to_owned());
        let applied = match work.kind {
            RequestKind::Delete => ConfirmationAction::Deleted,
            _ => ConfirmationAction::Flagged,
        };
        if !running.is_empty() {
            evidence.insert(EVIDENCE_RUNNING.into(), running.join(","));
            evidence.insert(
                EVIDENCE_ROWS_AFFECTED.into(),
                "unknown: jobs still running".into(),
            );
            if let Some(error) = poll_error {
                evidence.insert("last_read_error".into(), error.clone());
            }
            return Ok(
                Completion::new(applied, evidence).with_verification(VerificationStatus::Pending)
            );
        }
        evidence.insert(EVIDENCE_ROWS_AFFECTED.into(), affected.to_string());
        let action = if affected == 0 {
            evidence.insert(
                "reason".into(),
                "the statement matched no row of the subject".into(),
            );
            ConfirmationAction::NotFound
        } else {
            applied
        };
        let verification = if right.check.is_some() {
            VerificationStatus::Pending
        } else {
            VerificationStatus::Unverifiable
        };
        Ok(Completion::new(action, evidence).with_verification(verification))
    }
}

#[async_trait]
impl Connector for BigQueryConnector {
    /// Runs each item's statement (by its request kind), one `jobs.query` per run, then waits
    /// for the jobs still running within `max_wait_ms`: `FLAGGED` for an opt-out, limit or opt-in
    /// that changed rows, `DELETED` for a deletion that removed some, `NOT_FOUND` when no row
    /// matched, `NOT_APPLICABLE` when the person has no identifier the statement matches on or
    /// the kind has no statement. A job still running when the wait ends leaves its item
    /// `PENDING` with the job id as evidence. After a retryable failure the rest of the batch is
    /// not submitted and carries that error.
    async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        let mut items = Vec::with_capacity(batch.len());
        let mut runs: Vec<Run> = Vec::new();
        let mut halted: Option<ConnectorError> = None;
        for work in batch {
            if let Some(error) = &halted {
                let item = match self.client.config().right(work.kind) {
                    Some(_) => Item::Settled(Err(error.clone())),
                    None => Item::Settled(Ok(Completion::not_applicable(format!(
                        "no statement is configured for {} (settings.{})",
                        work.kind.as_str(),
                        setting_of(work.kind)
                    )))),
                };
                items.push(item);
                continue;
            }
            let first = runs.len();
            match self.submit(work, &mut runs).await {
                Ok(count) => items.push(Item::Submitted { first, count }),
                Err(settled) => {
                    runs.truncate(first);
                    if let Err(error) = &settled {
                        if error.is_retryable() {
                            halted = Some(error.clone());
                        }
                    }
                    items.push(Item::Settled(settled));
                }
            }
        }
        let (runs, poll_error) = verify::wait_for(&self.client, runs).await;
        Ok(items
            .into_iter()
            .zip(batch)
            .map(|(item, work)| match item {
                Item::Settled(result) => result,
                Item::Submitted { first, count } => {
                    self.settle(work, &runs[first..first + count], poll_error.as_ref())
                }
            })
            .collect())
    }

    /// A completion whose jobs were left running reads them back first (failed →
    /// `FAILED`, still running → `PENDING`); then, for an item whose statement ran (`FLAGGED`,
    /// `DELETED` or `NOT_FOUND`), the right's check query decides. Without a check the status
    /// stays as it was, or `UNVERIFIABLE` once the jobs have finished.
    async fn verify(&self, work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        if let Some(running) = completion.evidence.get(EVIDENCE_RUNNING) {
            let handles: Vec<&str> = running.split(',').filter(|h| !h.is_empty()).collect();
            if let Some(status) = verify::read_jobs(&self.client, &handles).await {
                return status;
            }
        }
        let ran = matches!(
            completion.action,
            ConfirmationAction::Flagged
                | ConfirmationAction::Deleted
                | ConfirmationAction::NotFound
        );
        let check = self
            .client
            .config()
            .right(work.kind)
            .and_then(|right| right.check.as_ref());
        match check {
            Some(check) if ran => verify::read_back(&self.client, check, work).await,
            None if completion.evidence.contains_key(EVIDENCE_RUNNING) => {
                VerificationStatus::Unverifiable
            }
            _ => completion.verification,
        }
    }
}

/// The settings table holding the SQL for a request kind.
fn setting_of(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::OptOutSaleShare => "opt_out",
        RequestKind::LimitSensitive => "limit",
        RequestKind::Delete => "delete",
        RequestKind::OptInSaleShare => "opt_in",
    }
}

hush_contracts::connector_factory!(BigQueryConnector, BigQueryConfig, &[KIND], MAX_BATCH);
