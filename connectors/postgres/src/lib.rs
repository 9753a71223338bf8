//! The PostgreSQL connector: the business's own database (role `SERVICE_PROVIDER` typically,
//! since the business directs it). Each right runs a configured statement template with the
//! subject's identifiers bound as parameters — flag the rows, or delete them — and a configured
//! check query reads the result back. See `README.md` for the configuration block and
//! [`request`] for PostgreSQL's dialect of the placeholder scheme (the kit's
//! [`hush_connector_kit::sql`]).

#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod request;
pub mod response;
pub mod verify;

use async_trait::async_trait;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{
    BatchResult, Completion, Connector, ConnectorError, Evidence, Operation, SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};

pub use client::PostgresClient;
pub use config::{PostgresConfig, PostgresSettings, KIND, MAX_BATCH};
use hush_connector_kit::sql::rights::{not_configured, statement_ran, unbindable, RightSql};

pub use hush_connector_kit::sql::rights::EVIDENCE_STATEMENT;
/// Evidence key: SHA-256 of the statement's configured text.
pub const EVIDENCE_STATEMENT_SHA256: &str = "statement_sha256";
/// Evidence key: rows the statement affected, summed over its executions.
pub const EVIDENCE_ROWS_AFFECTED: &str = "rows_affected";

/// Applies privacy requests to one PostgreSQL database.
pub struct PostgresConnector {
    client: PostgresClient,
}

impl PostgresConnector {
    /// Builds the connector from a resolved configuration; nothing is opened until the first
    /// call.
    pub fn new(config: PostgresConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: PostgresClient::new(config),
        })
    }

    /// Runs the right's statement for one work item.
    async fn apply_one(
        &self,
        work: &SuppressionWork,
        right: &RightSql,
    ) -> Result<Completion, ConnectorError> {
        let statement = &right.statement;
        let executions = match statement.template.bind(work) {
            Ok(executions) => executions,
            Err(why) => return unbindable(work, statement, why),
        };
        let affected = self.client.execute(statement, &executions).await?;
        let config = self.client.config();
        let mut evidence = Evidence::new();
        evidence.insert(EVIDENCE_STATEMENT.into(), statement.field.clone());
        evidence.insert(EVIDENCE_STATEMENT_SHA256.into(), statement.sha256.clone());
        evidence.insert(EVIDENCE_ROWS_AFFECTED.into(), affected.to_string());
        evidence.insert("executions".into(), executions.len().to_string());
        evidence.insert("database".into(), config.database().to_owned());
        let action = match (affected, work.kind) {
            (0, _) => {
                evidence.insert(
                    "reason".into(),
                    "the statement matched no row of the subject".into(),
                );
                ConfirmationAction::NotFound
            }
            (_, RequestKind::Delete) => ConfirmationAction::Deleted,
            _ => ConfirmationAction::Flagged,
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
impl Connector for PostgresConnector {
    /// Runs each item's statement (by its request kind) in its own transaction: `FLAGGED` for
    /// an opt-out, limit or opt-in that changed rows, `DELETED` for a deletion that removed
    /// some, `NOT_FOUND` with the reason when no row matched or the person has no identifier
    /// the statement matches on, `NOT_APPLICABLE` when the kind has no statement. The
    /// connection is opened (and every template prepared) first; a failure there fails the
    /// whole batch. After a retryable failure the rest of the batch is not tried and carries
    /// that error.
    async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        let config = self.client.config();
        if batch
            .iter()
            .any(|work| config.rights.right(work.kind).is_some())
        {
            self.client.ensure_connected().await?;
        }
        let mut halted: Option<ConnectorError> = None;
        let mut results = Vec::with_capacity(batch.len());
        for work in batch {
            let result = match (config.rights.right(work.kind), &halted) {
                (None, _) => Ok(not_configured(work.kind)),
                (Some(_), Some(error)) => Err(error.clone()),
                (Some(right), None) => self.apply_one(work, right).await,
            };
            if let Err(error) = &result {
                if error.is_retryable() && halted.is_none() {
                    halted = Some(error.clone());
                }
            }
            results.push(result);
        }
        Ok(results)
    }

    /// Runs the right's check query for an item whose statement ran (`FLAGGED`, `DELETED` or
    /// `NOT_FOUND` naming its statement); see [`verify::read_back`]. Without a check, or for a
    /// person the statement could not be bound to, the status stays as it was.
    async fn verify(&self, work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        let check = self
            .client
            .config()
            .rights
            .right(work.kind)
            .and_then(|right| right.check.as_ref());
        match check {
            Some(check) if statement_ran(completion) => {
                verify::read_back(&self.client, check, work).await
            }
            _ => completion.verification,
        }
    }
}

hush_contracts::connector_factory!(PostgresConnector, PostgresConfig, &[KIND], MAX_BATCH);
