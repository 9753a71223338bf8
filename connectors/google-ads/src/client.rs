//! HTTP calls to the Google Ads API: OAuth 2.0 access tokens (the kit's refresh-token grant,
//! refreshed once more when Google says `UNAUTHENTICATED`), the `developer-token` and
//! `login-customer-id` headers, and the offline user data job calls.

use hush_connector_kit::google::api::GoogleApi;
use hush_connector_kit::http::VendorAnswer;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

use crate::config::GoogleAdsConfig;
use crate::request;
use crate::response;

/// Status of an offline user data job as read back from Google.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// `PENDING`, `RUNNING`, `SUCCESS` or `FAILED`.
    pub status: String,
    /// Why the job failed, when `status` is `FAILED`.
    pub failure_reason: Option<String>,
}

/// A Google Ads API client for one customer and user list.
pub struct GoogleAdsClient {
    api: GoogleApi,
    config: GoogleAdsConfig,
}

impl GoogleAdsClient {
    /// Builds the client; the timeout applies to every call, token exchange included.
    pub fn new(config: GoogleAdsConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            api: GoogleApi::new(
                "google-ads",
                "Google Ads",
                &config.recipient_id,
                config.credentials.oauth.grant(&config.token_url),
                config.timeout,
            )?,
            config,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &GoogleAdsConfig {
        &self.config
    }

    /// `POST offlineUserDataJobs:create`; returns the job's resource name.
    pub async fn create_job(&self) -> Result<String, ConnectorError> {
        let path = format!(
            "customers/{}/offlineUserDataJobs:create",
            self.config.customer_id
        );
        let body = request::create_job_body(&self.config.customer_id, &self.config.user_list_id);
        let answer = self.post(&path, &body).await?;
        string_field(&answer, "resourceName", "offlineUserDataJobs:create")
    }

    /// `POST {job}:addOperations`; returns the response (which may hold `partialFailureError`).
    pub async fn add_operations(&self, job: &str, body: &Value) -> Result<Value, ConnectorError> {
        self.post(&format!("{job}:addOperations"), body).await
    }

    /// `POST {job}:run`; returns the long-running operation's name.
    pub async fn run_job(&self, job: &str) -> Result<String, ConnectorError> {
        let answer = self
            .post(&format!("{job}:run"), &serde_json::json!({}))
            .await?;
        string_field(&answer, "name", "offlineUserDataJobs:run")
    }

    /// Reads the job's status through `googleAds:search`.
    pub async fn job_status(&self, job: &str) -> Result<JobStatus, ConnectorError> {
        let path = format!("customers/{}/googleAds:search", self.config.customer_id);
        let answer = self.post(&path, &request::job_status_query(job)).await?;
        let row = answer["results"]
            .as_array()
            .and_then(|rows| rows.first())
            .ok_or_else(|| {
                ConnectorError::Permanent(format!("Google Ads search found no job {job}"))
            })?;
        let job_row = &row["offlineUserDataJob"];
        Ok(JobStatus {
            status: job_row["status"].as_str().unwrap_or("UNKNOWN").to_owned(),
            failure_reason: job_row["failureReason"]
                .as_str()
                .filter(|r| !matches!(*r, "UNSPECIFIED" | "UNKNOWN"))
                .map(str::to_owned),
        })
    }

    /// POSTs JSON to `{base_url}/{version}/{path}`. An `UNAUTHENTICATED` answer drops the
    /// cached token and the call is made once more with a fresh one.
    async fn post(&self, path: &str, body: &Value) -> Result<Value, ConnectorError> {
        let url = format!(
            "{}/{}/{path}",
            self.config.base_url, self.config.api_version
        );
        let config = &self.config;
        let build = |token: &str| {
            let call = self
                .api
                .http()
                .post(&url)
                .bearer_auth(token)
                .header(
                    "developer-token",
                    config.credentials.developer_token.expose(),
                )
                .json(body);
            match &config.login_customer_id {
                Some(login) => call.header("login-customer-id", login),
                None => call,
            }
        };
        let read = |answer: VendorAnswer| {
            let verdict =
                response::classify(answer.status, answer.retry_after.as_deref(), &answer.body);
            verdict.and_then(|()| {
                serde_json::from_str(&answer.body).map_err(|e| {
                    ConnectorError::Transient(format!(
                        "Google Ads answered {path} with unreadable JSON: {e}"
                    ))
                })
            })
        };
        self.api.call(build, read).await
    }
}

fn string_field(answer: &Value, field: &str, call: &str) -> Result<String, ConnectorError> {
    answer[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            ConnectorError::Transient(format!("Google Ads {call} answered without {field}"))
        })
}
