//! The HTTP call to The Trade Desk's Data API.

use hush_connector_kit::http::{self, send};
use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;

use crate::config::TradeDeskConfig;
use crate::request::DsrBody;
use crate::response::{classify, DsrResponse};

/// Path of the advertiser deletion/opt-out call, appended to `base_url`.
pub const DSR_PATH: &str = "/data/deletion-optout/advertiser";

/// Sends deletion/opt-out calls for one advertiser.
#[derive(Debug, Clone)]
pub struct TradeDeskClient {
    http: reqwest::Client,
    config: TradeDeskConfig,
}

impl TradeDeskClient {
    /// A client with the configured timeout.
    pub fn new(config: TradeDeskConfig) -> Result<Self, ConfigError> {
        let http = http::client("the-trade-desk", config.timeout)?;
        Ok(Self { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &TradeDeskConfig {
        &self.config
    }

    /// `POST {base_url}/data/deletion-optout/advertiser` with the `TTD-Auth` header; the HTTP
    /// status and TTD's answer on acceptance.
    pub async fn submit(&self, body: &DsrBody) -> Result<(u16, DsrResponse), ConnectorError> {
        let url = format!("{}{DSR_PATH}", self.config.base_url);
        let answer = send(
            self.http
                .post(&url)
                .header("TTD-Auth", self.config.auth_token.expose())
                .json(body),
        )
        .await?;
        tracing::debug!(
            status = answer.status,
            items = body.items.len(),
            "the trade desk deletion-optout call answered"
        );
        classify(&answer, self.config.default_retry_after).map(|response| (answer.status, response))
    }
}
