//! The BigQuery connector: the business's own warehouse (role `SERVICE_PROVIDER` typically,
//! since the business directs it). Each right runs a configured DML template through `jobs.query`
//! with the subject's identifiers as named query parameters — flag the rows, or delete them —
//! waits for the job, and a configured check query reads the result back. See `README.md` for
//! the configuration block, [`request`] for BigQuery's dialect of the placeholder scheme (the
//! kit's [`hush_connector_kit::sql`], shared with the `postgres` and `snowflake` connectors).

#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
pub mod request;
pub mod response;
#[cfg(feature = "sim")]
pub mod sim;

use async_trait::async_trait;
use hush_connector_kit::sql::jobs;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{BatchResult, Completion, Connector, Operation, SuppressionWork};
use hush_contracts::events::VerificationStatus;

pub use client::BigQueryClient;
pub use config::{BigQueryConfig, BigQuerySettings, KIND, MAX_BATCH};
pub use jobs::{EVIDENCE_ROWS_AFFECTED, EVIDENCE_STATEMENT, EVIDENCE_STATEMENT_SHA256};

/// Evidence key: BigQuery's job ids of the runs, comma-separated.
pub const EVIDENCE_JOBS: &str = "job_ids";
/// Evidence key: the jobs still running when the call's wait ended, read back by `verify`.
pub const EVIDENCE_RUNNING: &str = "running_jobs";

/// Applies privacy requests to one BigQuery project.
pub struct BigQueryConnector {
    client: BigQueryClient,
}

impl BigQueryConnector {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: BigQueryConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: BigQueryClient::new(config)?,
        })
    }
}

#[async_trait]
impl Connector for BigQueryConnector {
    /// Runs each item's statement (by its request kind), one `jobs.query` per run, then waits
    /// for the jobs still running within `max_wait_ms` (outcomes: [`jobs`]). A job still
    /// running when the wait ends leaves its item `PENDING` with the job id as evidence.
    async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        jobs::apply(&self.client, batch).await
    }

    /// Reads back jobs a completion left running, then runs the right's check query (see
    /// [`jobs`]).
    async fn verify(&self, work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        jobs::verify(&self.client, work, completion).await
    }
}

hush_contracts::connector_factory!(BigQueryConnector, BigQueryConfig, &[KIND], MAX_BATCH);
