//! HTTP calls to the Klaviyo API: bulk suppression jobs and their status, Data Privacy deletion
//! jobs, and the profile filter that reads a deletion back. Every call carries
//! `Authorization: Klaviyo-API-Key <key>` and the configured `revision` header.

use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

use crate::config::KlaviyoConfig;
use crate::request::{self, ProfileKey};
use crate::response;

/// JSON:API media type of Klaviyo's bodies.
const JSON_API: &str = "application/vnd.api+json";

/// A bulk suppression job as Klaviyo reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressionJob {
    /// Klaviyo's job id.
    pub id: String,
    /// `queued`, `processing`, `complete` or `cancelled`.
    pub status: String,
    /// Operations the job holds.
    pub total_count: u64,
    /// Operations completed so far.
    pub completed_count: u64,
    /// Profiles skipped.
    pub skipped_count: u64,
}

/// A Klaviyo API client for one account.
pub struct KlaviyoClient {
    http: reqwest::Client,
    config: KlaviyoConfig,
}

impl KlaviyoClient {
    /// Builds the client; the recipient's timeout bounds every call.
    pub fn new(config: KlaviyoConfig) -> Result<Self, ConfigError> {
        let http = hush_connector_kit::http::client("klaviyo", config.timeout)?;
        Ok(Self { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &KlaviyoConfig {
        &self.config
    }

    /// `POST /api/profile-suppression-bulk-create-jobs` for up to 100 emails.
    pub async fn create_suppression_job(
        &self,
        emails: &[&str],
    ) -> Result<SuppressionJob, ConnectorError> {
        let call = self
            .http
            .post(self.url("/api/profile-suppression-bulk-create-jobs"))
            .header("content-type", JSON_API)
            .body(request::suppression_job_body(emails).to_string());
        job(&self.send(call, emails).await?)
    }

    /// `GET /api/profile-suppression-bulk-create-jobs/{job_id}`.
    pub async fn suppression_job(&self, job_id: &str) -> Result<SuppressionJob, ConnectorError> {
        let call = self.http.get(self.url(&format!(
            "/api/profile-suppression-bulk-create-jobs/{job_id}"
        )));
        job(&self.send(call, &[]).await?)
    }

    /// `POST /api/data-privacy-deletion-jobs` for one identifier; Klaviyo answers 202 and
    /// deletes every matching profile asynchronously.
    pub async fn request_deletion(&self, key: &ProfileKey) -> Result<u16, ConnectorError> {
        let call = self
            .http
            .post(self.url("/api/data-privacy-deletion-jobs"))
            .header("content-type", JSON_API)
            .body(request::deletion_job_body(key).to_string());
        let call = self.authorised(call);
        let answer = hush_connector_kit::http::send(call).await?;
        response::read(&answer, &[key.value()])?;
        Ok(answer.status)
    }

    /// How many profiles `GET /api/profiles?filter=equals(...)` finds for `key`.
    pub async fn count_profiles(&self, key: &ProfileKey) -> Result<usize, ConnectorError> {
        let call = self.http.get(self.url("/api/profiles")).query(&[
            ("filter", request::profile_filter(key)),
            ("fields[profile]", key.attribute().to_owned()),
        ]);
        let answer = self.send(call, &[key.value()]).await?;
        answer["data"]
            .as_array()
            .map(Vec::len)
            .ok_or_else(|| ConnectorError::Transient("Klaviyo answered without data".into()))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url)
    }

    fn authorised(&self, call: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        call.header(
            "authorization",
            format!("Klaviyo-API-Key {}", self.config.api_key.expose()),
        )
        .header("revision", &self.config.settings.revision)
        .header("accept", JSON_API)
    }

    async fn send(
        &self,
        call: reqwest::RequestBuilder,
        redact: &[&str],
    ) -> Result<Value, ConnectorError> {
        let answer = hush_connector_kit::http::send(self.authorised(call)).await?;
        response::read(&answer, redact)
    }
}

fn job(answer: &Value) -> Result<SuppressionJob, ConnectorError> {
    let data = &answer["data"];
    let id = data["id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ConnectorError::Transient("Klaviyo answered a suppression job without its id".into())
        })?;
    let attributes = &data["attributes"];
    Ok(SuppressionJob {
        id: id.to_owned(),
        status: attributes["status"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned(),
        total_count: attributes["total_count"].as_u64().unwrap_or(0),
        completed_count: attributes["completed_count"].as_u64().unwrap_or(0),
        skipped_count: attributes["skipped_count"].as_u64().unwrap_or(0),
    })
}
