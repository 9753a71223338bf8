//! The HTTP call to LinkedIn's Marketing API.

use hush_core::connector::{classify_transport_error, ConnectorError};
use reqwest::header::RETRY_AFTER;

use crate::config::LinkedInConfig;
use crate::request::RemovalCall;
use crate::retry::{classify, BatchResponse};

/// Sends removal calls to one DMP segment.
#[derive(Debug, Clone)]
pub struct LinkedInClient {
    http: reqwest::Client,
    config: LinkedInConfig,
}

impl LinkedInClient {
    /// A client with the configured timeout.
    pub fn new(config: LinkedInConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!(
                "hush-connector-linkedin/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
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
        let response = self
            .http
            .post(&url)
            .bearer_auth(&self.config.access_token)
            .header("X-RestLi-Method", "BATCH_CREATE")
            .header("X-Restli-Protocol-Version", "2.0.0")
            .header("LinkedIn-Version", &self.config.linkedin_version)
            .json(&call.body)
            .send()
            .await
            .map_err(|e| classify_transport_error(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .text()
            .await
            .map_err(|e| classify_transport_error(&e))?;
        tracing::debug!(
            status,
            elements = call.body.elements.len(),
            "linkedin dmp segment removal call answered"
        );
        classify(
            status,
            retry_after.as_deref(),
            &body,
            self.config.default_retry_after,
        )
        .map(|response| (status, response))
    }
}
