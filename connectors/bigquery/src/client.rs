//! The calls to the BigQuery API v2: run one query (`POST /bigquery/v2/projects/{project}/queries`,
//! `jobs.query`) and read a job's results (`GET …/queries/{jobId}`, `jobs.getQueryResults`),
//! each with an OAuth access token from [`crate::auth`].
//!
//! Each run carries a `requestId` derived from the Hush request, the setting and the run, so a
//! resubmission after a lost answer is recognised by BigQuery instead of running the DML twice.

use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;

use crate::config::{BigQueryConfig, ConfiguredSql};
use crate::request::{self, Execution};
use crate::response::{self, Job};

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

    /// Runs run `run` of `sql` with `execution`'s values; `request_key` makes its `requestId`.
    pub async fn query(
        &self,
        sql: &ConfiguredSql,
        request_key: &str,
        run: usize,
        execution: &Execution,
    ) -> Result<Job, ConnectorError> {
        let request_id = request::request_uuid(request_key, &sql.field, run);
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

    /// Where the job `job_id` stands.
    pub async fn results(
        &self,
        job_id: &str,
        execution: &Execution,
    ) -> Result<Job, ConnectorError> {
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
                encode_segment(job_id)
            ))
            .query(&query);
        self.send(call, execution).await
    }

    async fn send(
        &self,
        call: reqwest::RequestBuilder,
        execution: &Execution,
    ) -> Result<Job, ConnectorError> {
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
        let bound: Vec<&str> = execution.iter().flatten().map(String::as_str).collect();
        response::read(&answer, &bound)
    }
}

/// A job id as one URL path segment (BigQuery's are letters, digits, `_` and `-`).
fn encode_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_kept_to_one_path_segment() {
        assert_eq!(encode_segment("job_AbC-1"), "job_AbC-1");
        assert_eq!(encode_segment("../x"), "%2E%2E%2Fx");
    }
}
