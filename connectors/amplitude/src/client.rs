//! HTTP calls to Amplitude's User Privacy API with the project's API key and secret key as
//! basic auth: schedule deletions, and list the deletion jobs of a range of days.

use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

use crate::config::AmplitudeConfig;
use crate::request::{self, DELETIONS_PATH};
use crate::response;

/// One deletion job as Amplitude reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionJob {
    /// `day`: when the job is scheduled to run (`YYYY-MM-DD`).
    pub day: String,
    /// `status`: `staging`, `submitted` or `done`.
    pub status: String,
    /// `app`: the project, when the deletion covers several projects.
    pub app: Option<String>,
    /// How many Amplitude ids the job lists.
    pub amplitude_ids: usize,
    /// The latest `requested_on_day` among the job's entries, when given.
    pub requested_on_day: Option<String>,
}

impl DeletionJob {
    /// The job's key in evidence: `day`, or `app:day` for a job of one project among several.
    pub fn key(&self) -> String {
        match &self.app {
            Some(app) => format!("{app}:{}", self.day),
            None => self.day.clone(),
        }
    }

    /// Whether Amplitude has finished the job.
    pub fn is_done(&self) -> bool {
        self.status.eq_ignore_ascii_case("done")
    }
}

/// An Amplitude User Privacy API client for one project.
pub struct AmplitudeClient {
    http: reqwest::Client,
    config: AmplitudeConfig,
}

impl AmplitudeClient {
    /// Builds the client; the timeout applies to every call.
    pub fn new(config: AmplitudeConfig) -> Result<Self, ConfigError> {
        let http = hush_connector_kit::http::client("amplitude", config.timeout)?;
        Ok(Self { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &AmplitudeConfig {
        &self.config
    }

    /// `POST /api/2/deletions/users` for `user_ids`; the jobs they were scheduled into. A
    /// message of Amplitude's quoting a user id has it replaced by `<user_id>`.
    pub async fn delete_users(
        &self,
        user_ids: &[String],
    ) -> Result<Vec<DeletionJob>, ConnectorError> {
        let body = request::deletion_body(
            user_ids,
            &self.config.requester,
            self.config.delete_from_org,
        );
        let call = self
            .http
            .post(format!("{}{DELETIONS_PATH}", self.config.base_url))
            .json(&body);
        let answer = self.send(call, user_ids).await?;
        parse_jobs(&answer)
    }

    /// `GET /api/2/deletions/users?start_day=…&end_day=…`: the jobs scheduled in that range.
    pub async fn jobs(
        &self,
        start_day: &str,
        end_day: &str,
    ) -> Result<Vec<DeletionJob>, ConnectorError> {
        let call = self
            .http
            .get(format!("{}{DELETIONS_PATH}", self.config.base_url))
            .query(&[("start_day", start_day), ("end_day", end_day)]);
        let answer = self.send(call, &[]).await?;
        parse_jobs(&answer)
    }

    async fn send(
        &self,
        call: reqwest::RequestBuilder,
        user_ids: &[String],
    ) -> Result<Value, ConnectorError> {
        let call = call
            .basic_auth(
                &self.config.credentials.api_key,
                Some(self.config.credentials.secret_key.expose()),
            )
            .header("accept", "application/json");
        let answer = hush_connector_kit::http::send_hiding(call, user_ids, "<user_id>").await?;
        response::read(&answer)
    }
}

/// The jobs of an answer: one job object, or an array of them (one per project).
fn parse_jobs(answer: &Value) -> Result<Vec<DeletionJob>, ConnectorError> {
    let jobs: Vec<&Value> = match answer {
        Value::Array(jobs) => jobs.iter().collect(),
        Value::Object(_) => vec![answer],
        _ => {
            return Err(ConnectorError::Transient(
                "Amplitude answered without a deletion job".into(),
            ))
        }
    };
    jobs.into_iter()
        .map(|job| {
            let day = job["day"]
                .as_str()
                .filter(|d| !d.is_empty())
                .ok_or_else(|| {
                    ConnectorError::Transient(
                        "Amplitude answered a deletion job without its day".into(),
                    )
                })?;
            let entries = job["amplitude_ids"].as_array();
            Ok(DeletionJob {
                day: day.to_owned(),
                status: job["status"].as_str().unwrap_or("unknown").to_owned(),
                app: match &job["app"] {
                    Value::String(app) => Some(app.clone()),
                    Value::Number(app) => Some(app.to_string()),
                    _ => None,
                },
                amplitude_ids: entries.map_or(0, Vec::len),
                requested_on_day: entries
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["requested_on_day"].as_str())
                    .max()
                    .map(str::to_owned),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_single_job_and_a_list_of_jobs_are_both_read() {
        let one = json!({"day": "2026-12-14", "status": "staging", "amplitude_ids": [
            {"amplitude_id": 356896327775u64, "requested_on_day": "2026-12-03", "requester": "privacy-bot"}]});
        assert_eq!(
            parse_jobs(&one).unwrap(),
            vec![DeletionJob {
                day: "2026-12-14".into(),
                status: "staging".into(),
                app: None,
                amplitude_ids: 1,
                requested_on_day: Some("2026-12-03".into()),
            }]
        );
        let many =
            json!([{"day": "2026-12-14", "status": "done", "app": 187520, "amplitude_ids": []}]);
        let jobs = parse_jobs(&many).unwrap();
        assert_eq!(jobs[0].key(), "187520:2026-12-14");
        assert!(jobs[0].is_done());
        assert_eq!(jobs[0].amplitude_ids, 0);
        assert!(parse_jobs(&json!({"status": "staging"})).is_err());
    }
}
