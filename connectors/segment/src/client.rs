//! HTTP calls to the Segment Public API: create a workspace regulation and read it back, with
//! the workspace token as a bearer token.

use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

use crate::config::SegmentConfig;
use crate::response;

/// Media type of Segment Public API v1 bodies.
const SEGMENT_V1_JSON: &str = "application/vnd.segment.v1+json";

/// A regulation's status as read back from Segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegulationStatus {
    /// `INITIALIZED`, `RUNNING`, `FINISHED`, `FAILED`, `PARTIAL_SUCCESS`, `INVALID` or
    /// `NOT_SUPPORTED`.
    pub overall_status: String,
    /// Destinations that did not finish, as `name: STATUS` (configuration names, no personal
    /// data).
    pub unfinished_destinations: Vec<String>,
}

impl RegulationStatus {
    /// Whether Segment will not change the status any more.
    pub fn is_final(&self) -> bool {
        !matches!(self.overall_status.as_str(), "INITIALIZED" | "RUNNING")
    }
}

/// A Segment Public API client for one workspace.
pub struct SegmentClient {
    http: reqwest::Client,
    config: SegmentConfig,
}

impl SegmentClient {
    /// Builds the client; the timeout applies to every call.
    pub fn new(config: SegmentConfig) -> Result<Self, ConfigError> {
        let http = hush_connector_kit::http::client("segment", config.timeout)?;
        Ok(Self { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &SegmentConfig {
        &self.config
    }

    /// `POST /regulations`; returns the `regulateId`.
    pub async fn create_regulation(&self, body: &Value) -> Result<String, ConnectorError> {
        let payload = serde_json::to_vec(body)
            .map_err(|e| ConnectorError::Permanent(format!("cannot encode the regulation: {e}")))?;
        let call = self
            .http
            .post(format!("{}/regulations", self.config.base_url))
            .header("content-type", SEGMENT_V1_JSON)
            .body(payload);
        let answer = self.send(call).await?;
        answer["data"]["regulateId"]
            .as_str()
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                ConnectorError::Transient(
                    "Segment created a regulation but sent no regulateId".into(),
                )
            })
    }

    /// `GET /regulations/{regulateId}`.
    pub async fn regulation(&self, regulate_id: &str) -> Result<RegulationStatus, ConnectorError> {
        let call = self.http.get(format!(
            "{}/regulations/{regulate_id}",
            self.config.base_url
        ));
        let answer = self.send(call).await?;
        let regulation = &answer["data"]["regulation"];
        let unfinished_destinations = regulation["streamStatus"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| {
                s["destinationStatus"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|d| d["status"] != "FINISHED")
            .map(|d| {
                format!(
                    "{}: {}",
                    d["name"]
                        .as_str()
                        .or(d["id"].as_str())
                        .unwrap_or("destination"),
                    d["status"].as_str().unwrap_or("UNKNOWN")
                )
            })
            .collect();
        Ok(RegulationStatus {
            overall_status: regulation["overallStatus"]
                .as_str()
                .unwrap_or("UNKNOWN")
                .to_owned(),
            unfinished_destinations,
        })
    }

    async fn send(&self, call: reqwest::RequestBuilder) -> Result<Value, ConnectorError> {
        let call = call
            .bearer_auth(self.config.token.expose())
            .header("accept", SEGMENT_V1_JSON);
        hush_connector_kit::response::call(call, &response::read).await
    }
}
