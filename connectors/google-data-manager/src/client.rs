//! HTTP calls to the Data Manager API: OAuth 2.0 access tokens (exchanged from the refresh
//! token, cached, refreshed before they expire and once more when Google says
//! `UNAUTHENTICATED`), `audienceMembers:remove` and `requestStatus:retrieve`. No developer
//! token: the Data Manager API does not use one.

use std::time::{Duration, Instant};

use hush_connector_kit::http::send;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::GoogleDataManagerConfig;
use crate::response::{self, Verdict};

/// API version in every path.
pub const API_VERSION: &str = "v1";
/// Longest safety margin before a token's expiry at which it is refreshed.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// An access token and the instant after which it is no longer used.
struct AccessToken {
    value: String,
    refresh_at: Instant,
}

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

impl RequestStatus {
    /// Whether Google will not change the status any more.
    pub fn is_final(&self) -> bool {
        matches!(
            self.status.as_str(),
            "SUCCESS" | "FAILED" | "PARTIAL_SUCCESS"
        )
    }
}

/// A Data Manager API client for one destination.
pub struct DataManagerClient {
    http: reqwest::Client,
    config: GoogleDataManagerConfig,
    token: Mutex<Option<AccessToken>>,
}

impl DataManagerClient {
    /// Builds the client; the timeout applies to every call, token exchange included.
    pub fn new(config: GoogleDataManagerConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            http: hush_connector_kit::http::client("google-data-manager", config.timeout)?,
            config,
            token: Mutex::new(None),
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
            .call(|token| self.http.post(&url).bearer_auth(token).json(body))
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
                self.http
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
    async fn call<F>(&self, build: F) -> Result<Value, ConnectorError>
    where
        F: Fn(&str) -> reqwest::RequestBuilder,
    {
        let mut refreshed = false;
        loop {
            let token = self.access_token().await?;
            match response::classify(&send(build(&token)).await?) {
                Verdict::Success(value) => return Ok(value),
                Verdict::Unauthenticated(detail) if !refreshed => {
                    tracing::info!(
                        recipient = %self.config.recipient_id,
                        "Google Data Manager refused the access token; refreshing it: {detail}"
                    );
                    self.token.lock().await.take();
                    refreshed = true;
                }
                Verdict::Unauthenticated(detail) => {
                    return Err(ConnectorError::Permanent(format!(
                        "Google Data Manager refused a freshly issued access token: {detail}"
                    )))
                }
                Verdict::Failed(error) => return Err(error),
            }
        }
    }

    /// A valid access token, exchanging the refresh token when none is cached or the cached
    /// one is within its refresh margin of expiry.
    async fn access_token(&self) -> Result<String, ConnectorError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.value.clone());
        }
        let fresh = self.exchange_refresh_token().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    async fn exchange_refresh_token(&self) -> Result<AccessToken, ConnectorError> {
        let credentials = &self.config.credentials;
        let form = serde_urlencoded::to_string([
            ("grant_type", "refresh_token"),
            ("client_id", credentials.client_id.as_str()),
            ("client_secret", credentials.client_secret.expose()),
            ("refresh_token", credentials.refresh_token.expose()),
        ])
        .map_err(|e| ConnectorError::Permanent(format!("cannot encode the token request: {e}")))?;
        let token_answer = send(
            self.http
                .post(&self.config.token_url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form),
        )
        .await?;
        if let Some(error) = response::classify_token_answer(&token_answer) {
            return Err(error);
        }
        let answer: Value = serde_json::from_str(&token_answer.body).unwrap_or(Value::Null);
        let value = answer["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ConnectorError::Transient(
                    "OAuth token endpoint answered without access_token".into(),
                )
            })?
            .to_owned();
        let lifetime = Duration::from_secs(answer["expires_in"].as_u64().unwrap_or(3_600));
        let margin = MAX_REFRESH_MARGIN.min(lifetime / 2);
        Ok(AccessToken {
            value,
            refresh_at: Instant::now() + lifetime - margin,
        })
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
