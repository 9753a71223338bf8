//! Reading BigQuery's answers: one function ([`read`]) classifies an answer of `jobs.query` or
//! `jobs.getQueryResults` as a finished job (`jobComplete: true`), a running one
//! (`jobComplete: false`, with its `jobReference`), a failed query (a 4xx with BigQuery's
//! `error`, or `errors` in a complete answer), or a call that did not go through: 429 and a
//! 403/400 whose reason is `rateLimitExceeded` are retried after a wait (BigQuery asks for
//! exponential backoff from one second), `quotaExceeded`, `backendError`, `internalError`, 408
//! and 5xx are transient, any other 4xx permanent with BigQuery's message. A bound value
//! BigQuery repeats in a message is replaced by `<identifier>`.

use std::time::Duration;

use hush_connector_kit::http::{classify_http_status, VendorAnswer};
use hush_connector_kit::sql::jobs::{redact, QueryResult, RunState};
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

/// Wait after a rate-limit answer that does not say how long.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(2);

/// Whether a BigQuery column type is an integer (what a check query must return).
pub fn is_integer_type(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("INTEGER") || kind.eq_ignore_ascii_case("INT64")
}

/// Classifies an answer. `Err` means the call itself did not go through (or may be retried);
/// a refusal of the query itself is `Ok(RunState::Failed)`. `bound` are the values bound in it.
pub fn read(answer: &VendorAnswer, bound: &[&str]) -> Result<RunState, ConnectorError> {
    let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    if (200..300).contains(&answer.status) {
        return job(&body, bound);
    }
    let error = &body["error"];
    let reasons: Vec<&str> = error["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    let message = error["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| answer.body.chars().take(500).collect());
    let text = format!(
        "BigQuery{}: {}",
        reasons
            .first()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        redact(&message, bound)
    );
    if answer.status == 429 || reasons.contains(&"rateLimitExceeded") {
        return Err(ConnectorError::RetryAfter {
            after: answer.wait_or(DEFAULT_RETRY_AFTER),
            detail: format!("HTTP {}: {text}", answer.status),
        });
    }
    if reasons
        .iter()
        .any(|r| matches!(*r, "quotaExceeded" | "backendError" | "internalError"))
    {
        return Err(ConnectorError::Transient(format!(
            "HTTP {}: {text}",
            answer.status
        )));
    }
    let classified = classify_http_status(answer.status, answer.retry_after.as_deref(), &text)
        .unwrap_or_else(|| ConnectorError::Transient(format!("HTTP {}: {text}", answer.status)));
    match classified {
        ConnectorError::Permanent(detail) if answer.status != 401 && answer.status != 403 => {
            Ok(RunState::Failed(ConnectorError::Permanent(detail)))
        }
        other => Err(other),
    }
}

fn job(body: &Value, bound: &[&str]) -> Result<RunState, ConnectorError> {
    let job_id = body["jobReference"]["jobId"]
        .as_str()
        .filter(|j| !j.is_empty())
        .ok_or_else(|| {
            ConnectorError::Transient("BigQuery answered without a jobReference".into())
        })?
        .to_owned();
    if body["jobComplete"] != Value::Bool(true) {
        return Ok(RunState::Running(job_id));
    }
    if let Some(first) = body["errors"].as_array().and_then(|e| e.first()) {
        return Ok(RunState::Failed(ConnectorError::Permanent(format!(
            "BigQuery job {job_id} failed ({}): {}",
            first["reason"].as_str().unwrap_or("?"),
            redact(first["message"].as_str().unwrap_or_default(), bound)
        ))));
    }
    let columns = QueryResult::columns_of(&body["schema"]["fields"]);
    let rows = body["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            row["f"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|cell| cell["v"].as_str().map(str::to_owned))
                .collect()
        })
        .collect();
    Ok(RunState::Done(QueryResult {
        handle: job_id,
        rows_affected: body["numDmlAffectedRows"]
            .as_str()
            .and_then(|n| n.parse().ok()),
        columns,
        rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::{json_answer, vendor_answer};
    use serde_json::json;

    fn google_error(status: u16, reason: &str, message: &str) -> VendorAnswer {
        json_answer(
            status,
            json!({"error": {"code": status, "message": message, "status": "X",
                             "errors": [{"message": message, "domain": "global", "reason": reason}]}}),
        )
    }

    #[test]
    fn a_finished_dml_job_reports_its_affected_rows() {
        let done = read(
            &json_answer(
                200,
                json!({"kind": "bigquery#queryResponse", "jobComplete": true,
                       "jobReference": {"projectId": "p", "jobId": "job_1", "location": "EU"},
                       "numDmlAffectedRows": "2", "dmlStats": {"updatedRowCount": "2"}}),
            ),
            &[],
        )
        .unwrap();
        let RunState::Done(result) = done else {
            panic!("{done:?}")
        };
        assert_eq!(result.handle, "job_1");
        assert_eq!(result.rows_affected, Some(2));
    }

    #[test]
    fn a_running_job_and_a_check_count_are_read() {
        assert_eq!(
            read(
                &json_answer(
                    200,
                    json!({"jobComplete": false, "jobReference": {"jobId": "job_2"}})
                ),
                &[]
            ),
            Ok(RunState::Running("job_2".into()))
        );
        let Ok(RunState::Done(result)) = read(
            &json_answer(
                200,
                json!({"jobComplete": true, "jobReference": {"jobId": "job_3"},
                       "schema": {"fields": [{"name": "f0_", "type": "INTEGER"}]},
                       "rows": [{"f": [{"v": "3"}]}], "totalRows": "1"}),
            ),
            &[],
        ) else {
            panic!()
        };
        assert_eq!(result.count(is_integer_type), Ok(3));
        let text = QueryResult {
            columns: vec![("email".into(), "STRING".into())],
            ..result
        };
        assert_eq!(
            text.count(is_integer_type),
            Err("it returns one STRING column".into())
        );
    }

    #[test]
    fn a_refused_query_is_the_jobs_permanent_failure_without_bound_values() {
        assert_eq!(
            read(
                &google_error(400, "invalidQuery", "Could not cast literal \"jane@example.com\" to type INT64"),
                &["jane@example.com"]
            ),
            Ok(RunState::Failed(ConnectorError::Permanent(
                "HTTP 400: BigQuery (invalidQuery): Could not cast literal \"<identifier>\" to type INT64"
                    .into()
            )))
        );
    }

    #[test]
    fn rate_limits_quotas_and_server_errors_are_retried() {
        assert!(matches!(
            read(&google_error(403, "rateLimitExceeded", "Exceeded rate limits"), &[]),
            Err(ConnectorError::RetryAfter { after, .. }) if after == DEFAULT_RETRY_AFTER
        ));
        let limited = vendor_answer(429, Some("7"), "{}");
        assert!(matches!(
            read(&limited, &[]),
            Err(ConnectorError::RetryAfter { after, .. }) if after == Duration::from_secs(7)
        ));
        assert!(matches!(
            read(&google_error(403, "quotaExceeded", "Quota exceeded"), &[]),
            Err(ConnectorError::Transient(_))
        ));
        assert!(matches!(
            read(&google_error(503, "backendError", "try again"), &[]),
            Err(ConnectorError::Transient(_))
        ));
        assert_eq!(
            read(
                &google_error(403, "accessDenied", "Access Denied: Table crm.customers"),
                &[]
            ),
            Err(ConnectorError::Permanent(
                "HTTP 403: BigQuery (accessDenied): Access Denied: Table crm.customers".into()
            ))
        );
    }
}
