//! The Snowflake connector: the business's own warehouse (role `SERVICE_PROVIDER` typically,
//! since the business directs it). Each right runs a configured statement template through the
//! SQL API v2 with the subject's identifiers as bind variables — flag the rows, or delete them —
//! waits for it by statement handle, and a configured check query reads the result back. See
//! `README.md` for the configuration block, [`request`] for Snowflake's dialect of the
//! placeholder scheme (the kit's [`hush_connector_kit::sql`], shared with the `postgres` and
//! `bigquery` connectors).

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

pub use client::SnowflakeClient;
pub use config::{SnowflakeConfig, SnowflakeSettings, KIND, MAX_BATCH};
pub use jobs::{EVIDENCE_ROWS_AFFECTED, EVIDENCE_STATEMENT, EVIDENCE_STATEMENT_SHA256};

/// Evidence key: Snowflake's statement handles of the runs, comma-separated.
pub const EVIDENCE_HANDLES: &str = "statement_handles";
/// Evidence key: the handles still running when the call's wait ended, read back by `verify`.
pub const EVIDENCE_RUNNING: &str = "running_statements";

/// Applies privacy requests to one Snowflake account.
pub struct SnowflakeConnector {
    client: SnowflakeClient,
}

impl SnowflakeConnector {
    /// Builds the connector from a resolved configuration.
    pub fn new(config: SnowflakeConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            client: SnowflakeClient::new(config)?,
        })
    }
}

#[async_trait]
impl Connector for SnowflakeConnector {
    /// Submits each item's statement (by its request kind), one SQL API request per run, then
    /// waits for all of them within `max_wait_ms` (outcomes: [`jobs`]). A statement still
    /// running when the wait ends leaves its item `PENDING` with the handle as evidence.
    async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
        jobs::apply(&self.client, batch).await
    }

    /// Reads back statements a completion left running, then runs the right's check query
    /// (see [`jobs`]).
    async fn verify(&self, work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        jobs::verify(&self.client, work, completion).await
    }
}

hush_contracts::connector_factory!(SnowflakeConnector, SnowflakeConfig, &[KIND], MAX_BATCH);
