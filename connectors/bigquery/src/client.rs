//! The calls to the BigQuery API v2: run one query (`POST /bigquery/v2/projects/{project}/queries`,
//! `jobs.query`) and read a job's results (`GET …/queries/{jobId}`, `jobs.getQueryResults`),
//! each with an OAuth access token from [`crate::auth`].
//!
//! Each run carries a `requestId` derived from the Hush request, the setting and the run, so a
//! resubmission after a lost answer is recognised by BigQuery instead of running the DML twice.

use async_trait::async_trait;
use hush_connector_kit::http::path_segment;
use hush_connector_kit::sql::jobs::{
    bound_values, request_uuid, RunSettings, RunState, StatementApi, Vocabulary,
};
use hush_connector_kit::sql::rights::ConfiguredSql;
use hush_connector_kit::sql::template::Execution;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{ConnectorError, Evidence};

use crate::config::BigQueryConfig;
use crate::request;
use crate::response;
use crate::{EVIDENCE_JOBS, EVIDENCE_RUNNING};

/// The words of BigQuery's evidence and logs.
const VOCABULARY: Vocabulary = Vocabulary {
    vendor: "BigQuery",
    run: "job",
    handles_key: EVIDENCE_JOBS,
    running_key: EVIDENCE_RUNNING,
};

/// A BigQuery API client for one project.
pub struct BigQueryClient {
    http: reqwest::Client,
    config: BigQueryConfig,
}

impl BigQueryClient {
    /// Builds the client; the recipient's timeout bounds every call.
    pub fn new(config: BigQueryConfig) -> Result<Self, ConfigError> {
        let http = hush_connector_kit::http::client("bigquery", config.timeout)?;
        Ok(Self { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &BigQueryConfig {
        &self.config
    }

    async fn send(
        &self,
        call: reqwest::RequestBuilder,
        execution: &Execution,
    ) -> Result<RunState, ConnectorError> {
        let token = self.config.tokens.get(&self.http).await?;
        let answer = hush_connector_kit::http::send(call.bearer_auth(token)).await?;
        if answer.status == 401 {
            // An access token revoked or expired early: the next try exchanges a new one, and a
            // grant that no longer works fails there, permanently.
            self.config.tokens.invalidate().await;
            return Err(ConnectorError::Transient(
                "BigQuery refused the access token (HTTP 401); a new one is exchanged on the next try"
                    .into(),
            ));
        }
        response::read(&answer, &bound_values(execution))
    }
}

#[async_trait]
impl StatementApi for BigQueryClient {
    fn vocabulary(&self) -> &Vocabulary {
        &VOCABULARY
    }

    fn runs(&self) -> &RunSettings {
        &self.config.runs
    }

    fn describe(&self, evidence: &mut Evidence) {
        evidence.insert("project".into(), self.config.project_id.clone());
        if let Some(location) = &self.config.context.location {
            evidence.insert("location".into(), location.clone());
        }
        evidence.insert("credentials".into(), self.config.tokens.name().to_owned());
    }

    fn is_integer_type(&self, name: &str) -> bool {
        response::is_integer_type(name)
    }

    async fn submit(
        &self,
        sql: &ConfiguredSql,
        request_key: &str,
        run: usize,
        execution: &Execution,
    ) -> Result<RunState, ConnectorError> {
        let request_id = request_uuid(request_key, &sql.field, run);
        let body = request::query_body(&sql.template, execution, &self.config.context, &request_id);
        let call = self
            .http
            .post(format!(
                "{}{}",
                self.config.base_url,
                request::queries_path(&self.config.project_id)
            ))
            .json(&body);
        self.send(call, execution).await
    }

    async fn read(&self, job_id: &str, execution: &Execution) -> Result<RunState, ConnectorError> {
        let mut query = vec![
            ("timeoutMs", self.config.context.wait_ms.to_string()),
            ("maxResults", "10".to_owned()),
        ];
        if let Some(location) = &self.config.context.location {
            query.push(("location", location.clone()));
        }
        let call = self
            .http
            .get(format!(
                "{}{}/{}",
                self.config.base_url,
                request::queries_path(&self.config.project_id),
                path_segment(job_id)
            ))
            .query(&query);
        self.send(call, execution).await
    }
}
