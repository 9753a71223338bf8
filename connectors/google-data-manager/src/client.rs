//! HTTP calls to the Data Manager API: OAuth 2.0 access tokens (the kit's refresh-token
//! grant, refreshed once more when Google says `UNAUTHENTICATED`), `audienceMembers:remove`
//! and `requestStatus:retrieve`. No developer token: the Data Manager API does not use one.

use hush_connector_kit::google::api::GoogleApi;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

use crate::config::GoogleDataManagerConfig;
use crate::response;

/// API version in every path.
pub const API_VERSION: &str = "v1";

/// What `requestStatus:retrieve` says about a request at the one destination Hush sends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestStatus {
    /// `REQUEST_STATUS_UNKNOWN`, `PROCESSING`, `SUCCESS`, `FAILED` or `PARTIAL_SUCCESS`.
    pub status: String,
    /// `errorInfo.errorCounts` as `REASON×count`, when Google gave any.
    pub errors: Vec<String>,
    /// `audienceMembersRemovalStatus.userDataRemovalStatus.recordCount`, when given.
    pub removed_records: Option<String>,
}

/// A Data Manager API client for one destination.
pub struct DataManagerClient {
    api: GoogleApi,
    config: GoogleDataManagerConfig,
}

impl DataManagerClient {
    /// Builds the client; the timeout applies to every call, token exchange included.
    pub fn new(config: GoogleDataManagerConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            api: GoogleApi::new(
                "google-data-manager",
                "Google Data Manager",
                &config.recipient_id,
                config.credentials.grant(&config.token_url),
                config.timeout,
            )?,
            config,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &GoogleDataManagerConfig {
        &self.config
    }

    /// `POST /v1/audienceMembers:remove`; returns Google's `requestId`.
    pub async fn remove(&self, body: &Value) -> Result<String, ConnectorError> {
        let url = format!(
            "{}/{API_VERSION}/audienceMembers:remove",
            self.config.base_url
        );
        let answer = self
            .call(|token| self.api.http().post(&url).bearer_auth(token).json(body))
            .await?;
        answer["requestId"]
            .as_str()
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                ConnectorError::Transient(
                    "Google Data Manager audienceMembers:remove answered without requestId".into(),
                )
            })
    }

    /// `GET /v1/requestStatus:retrieve?requestId=…`: the status at the first (only)
    /// destination.
    pub async fn request_status(&self, request_id: &str) -> Result<RequestStatus, ConnectorError> {
        let url = format!(
            "{}/{API_VERSION}/requestStatus:retrieve",
            self.config.base_url
        );
        let answer = self
            .call(|token| {
                self.api
                    .http()
                    .get(&url)
                    .query(&[("requestId", request_id)])
                    .bearer_auth(token)
            })
            .await?;
        let destination = answer["requestStatusPerDestination"]
            .as_array()
            .and_then(|all| all.first())
            .ok_or_else(|| {
                ConnectorError::Transient(format!(
                    "Google Data Manager has no status for request {request_id} yet"
                ))
            })?;
        let errors = destination["errorInfo"]["errorCounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|count| {
                format!(
                    "{}×{}",
                    count["reason"].as_str().unwrap_or("UNKNOWN"),
                    int64(&count["recordCount"]).unwrap_or_else(|| "?".into())
                )
            })
            .collect();
        Ok(RequestStatus {
            status: destination["requestStatus"]
                .as_str()
                .unwrap_or("REQUEST_STATUS_UNKNOWN")
                .to_owned(),
            errors,
            removed_records: int64(
                &destination["audienceMembersRemovalStatus"]["userDataRemovalStatus"]
                    ["recordCount"],
            ),
        })
    }

    /// Sends the request `build` makes with an access token. An `UNAUTHENTICATED` answer
    /// drops the cached token and the call is made once more with a fresh one.
    async fn call(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<Value, ConnectorError> {
        self.api
            .call(build, |answer| response::classify(&answer))
            .await
    }
}

/// A protobuf JSON int64 (a string, or a number from a lenient server) as text.
fn int64(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}
