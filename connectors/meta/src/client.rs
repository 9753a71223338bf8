//! The HTTP call to Meta's Graph API.

use hush_connector_kit::http::send;
use hush_contracts::connector::ConnectorError;

use crate::config::MetaConfig;
use crate::request::RemovalCall;
use crate::retry::{classify, UsersResponse};

/// Sends removal calls to one Custom Audience.
#[derive(Debug, Clone)]
pub struct MetaClient {
    http: reqwest::Client,
    config: MetaConfig,
}

impl MetaClient {
    /// A client with the configured timeout.
    pub fn new(config: MetaConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("hush-connector-meta/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &MetaConfig {
        &self.config
    }

    /// `DELETE {base_url}/{api_version}/{audience_id}/users` with the form parameters
    /// `access_token`, `payload` and, for a split batch, `session`.
    pub async fn remove_users(&self, call: &RemovalCall) -> Result<UsersResponse, ConnectorError> {
        let url = format!(
            "{}/{}/{}/users",
            self.config.base_url, self.config.api_version, self.config.audience_id
        );
        let mut form = call.form();
        form.push(("access_token", self.config.access_token.clone()));
        let answer = send(self.http.delete(&url).form(&form)).await?;
        tracing::debug!(
            status = answer.status,
            rows = call.payload.data.len(),
            batch_seq = call.session.map(|s| s.batch_seq),
            "meta custom audience removal call answered"
        );
        classify(
            answer.status,
            answer.retry_after.as_deref(),
            &answer.body,
            self.config.default_retry_after,
        )
    }
}
