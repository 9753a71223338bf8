//! HTTP calls to Mixpanel's GDPR/CCPA API: create a deletion task and read its status, with the
//! project token as the `token` query parameter and the GDPR OAuth token as a bearer token.

use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

use crate::config::MixpanelConfig;
use crate::request::{self, DELETIONS_PATH};
use crate::response;

/// A deletion task's status as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStatus {
    /// `PENDING`, `STAGING`, `STARTED`, `SUCCESS`, `FAILURE`, `REVOKED`, `NOT_FOUND` or
    /// `UNKNOWN`.
    pub status: String,
}

/// A GDPR/CCPA API client for one project.
pub struct MixpanelClient {
    http: reqwest::Client,
    config: MixpanelConfig,
}

impl MixpanelClient {
    /// Builds the client; the timeout applies to every call.
    pub fn new(config: MixpanelConfig) -> Result<Self, ConfigError> {
        let http = hush_connector_kit::http::client("mixpanel", config.timeout)?;
        Ok(Self { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &MixpanelConfig {
        &self.config
    }

    /// `POST /api/app/data-deletions/v3.0/?token=…`; returns the `task_id`. A message of
    /// Mixpanel's quoting a distinct id has it replaced by `<distinct_id>`.
    pub async fn create_deletion(&self, distinct_ids: &[String]) -> Result<String, ConnectorError> {
        let call = self
            .http
            .post(format!("{}{DELETIONS_PATH}/", self.config.base_url))
            .json(&request::deletion_body(distinct_ids));
        let answer = self.send(call, distinct_ids).await?;
        answer["results"]["task_id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                ConnectorError::Transient(
                    "Mixpanel created a deletion task but sent no task_id".into(),
                )
            })
    }

    /// `GET /api/app/data-deletions/v3.0/{task_id}?token=…`.
    pub async fn task(&self, task_id: &str) -> Result<TaskStatus, ConnectorError> {
        let call = self.http.get(format!(
            "{}{DELETIONS_PATH}/{task_id}",
            self.config.base_url
        ));
        let answer = self.send(call, &[]).await?;
        Ok(TaskStatus {
            status: answer["results"]["status"]
                .as_str()
                .unwrap_or("UNKNOWN")
                .to_owned(),
        })
    }

    async fn send(
        &self,
        call: reqwest::RequestBuilder,
        distinct_ids: &[String],
    ) -> Result<Value, ConnectorError> {
        let call = call
            .query(&[("token", self.config.credentials.project_token.expose())])
            .bearer_auth(self.config.credentials.oauth_token.expose())
            .header("accept", "application/json");
        let answer =
            hush_connector_kit::http::send_hiding(call, distinct_ids, "<distinct_id>").await?;
        response::read(&answer)
    }
}
