//! The HTTP call to Meta's Graph API.

use hush_connector_kit::http::{self, VendorAnswer};
use hush_connector_kit::response;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;

use crate::config::MetaConfig;
use crate::request::RemovalCall;
use crate::response::{classify, UsersResponse};

/// Sends removal calls to one Custom Audience.
#[derive(Debug, Clone)]
pub struct MetaClient {
    http: reqwest::Client,
    config: MetaConfig,
}

impl MetaClient {
    /// A client with the configured timeout.
    pub fn new(config: MetaConfig) -> Result<Self, ConfigError> {
        let http = http::client("meta", config.timeout)?;
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
        form.push(("access_token", self.config.access_token.expose().to_owned()));
        tracing::debug!(
            rows = call.payload.data.len(),
            batch_seq = call.session.map(|s| s.batch_seq),
            "meta custom audience removal call"
        );
        let wait = self.config.default_retry_after;
        let answers = |answer: &VendorAnswer| classify(answer, wait);
        response::call(self.http.delete(&url).form(&form), &answers).await
    }
}
