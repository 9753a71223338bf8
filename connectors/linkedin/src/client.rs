//! The HTTP call to LinkedIn's Marketing API.

use hush_connector_kit::http::{self, send};
use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;

use crate::config::LinkedInConfig;
use crate::request::RemovalCall;
use crate::response::{classify, BatchResponse};

/// Sends removal calls to one DMP segment.
#[derive(Debug, Clone)]
pub struct LinkedInClient {
    http: reqwest::Client,
    config: LinkedInConfig,
}

impl LinkedInClient {
    /// A client with the configured timeout.
    pub fn new(config: LinkedInConfig) -> Result<Self, ConfigError> {
        let http = http::client("linkedin", config.timeout)?;
        Ok(Self { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &LinkedInConfig {
        &self.config
    }

    /// `POST {base_url}/rest/dmpSegments/{segment_id}/users` as a Rest.li `BATCH_CREATE`; returns
    /// the HTTP status with the per-element statuses.
    pub async fn remove_users(
        &self,
        call: &RemovalCall,
    ) -> Result<(u16, BatchResponse), ConnectorError> {
        let url = format!(
            "{}/rest/dmpSegments/{}/users",
            self.config.base_url, self.config.segment_id
        );
        let answer = send(
            self.http
                .post(&url)
                .bearer_auth(self.config.access_token.expose())
                .header("X-RestLi-Method", "BATCH_CREATE")
                .header("X-Restli-Protocol-Version", "2.0.0")
                .header("LinkedIn-Version", &self.config.linkedin_version)
                .json(&call.body),
        )
        .await?;
        tracing::debug!(
            status = answer.status,
            elements = call.body.elements.len(),
            "linkedin dmp segment removal call answered"
        );
        classify(&answer, self.config.default_retry_after).map(|response| (answer.status, response))
    }
}
