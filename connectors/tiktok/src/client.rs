//! The HTTP call to TikTok's API for Business.

use hush_connector_kit::http::{self, send};
use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;

use crate::config::TikTokConfig;
use crate::request::MappingBody;
use crate::response::{classify, Envelope};

/// Path of the Audience Segment API's mapping endpoint, API version 1.3.
pub const MAPPING_PATH: &str = "/open_api/v1.3/segment/mapping/";

/// Sends removal calls for one advertiser.
#[derive(Debug, Clone)]
pub struct TikTokClient {
    http: reqwest::Client,
    config: TikTokConfig,
}

impl TikTokClient {
    /// A client with the configured timeout.
    pub fn new(config: TikTokConfig) -> Result<Self, ConfigError> {
        let http = http::client("tiktok", config.timeout)?;
        Ok(Self { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &TikTokConfig {
        &self.config
    }

    /// `POST {base_url}/open_api/v1.3/segment/mapping/` with the `Access-Token` header; TikTok's
    /// envelope on success.
    pub async fn map(&self, body: &MappingBody) -> Result<Envelope, ConnectorError> {
        let url = format!("{}{MAPPING_PATH}", self.config.base_url);
        let answer = send(
            self.http
                .post(&url)
                .header("Access-Token", self.config.access_token.expose())
                .json(body),
        )
        .await?;
        tracing::debug!(
            status = answer.status,
            rows = body.batch_data.len(),
            "tiktok segment mapping call answered"
        );
        classify(&answer, self.config.default_retry_after)
    }
}
