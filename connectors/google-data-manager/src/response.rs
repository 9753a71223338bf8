//! Classification of the Data Manager API's answers: success, an access token to refresh,
//! retry after a delay, retry, or a permanent refusal with Google's own status, reason and
//! field violations.

use std::time::Duration;

use hush_connector_kit::google::{self, RpcStatus};
use hush_connector_kit::http::VendorAnswer;
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

/// Wait used when Google reports `RESOURCE_EXHAUSTED` without saying how long to wait.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

/// What one Data Manager API answer means: a success carries the body parsed as JSON.
pub type Verdict = google::Verdict<Value>;

/// Classifies a Data Manager API answer. `RESOURCE_EXHAUSTED`/429 waits for `Retry-After` (or
/// the error's `RetryInfo.retryDelay`, or [`DEFAULT_RETRY_AFTER`]); `UNAVAILABLE`, `INTERNAL`,
/// `DEADLINE_EXCEEDED`, `ABORTED` and other 5xx are transient; `UNAUTHENTICATED`/401 asks for a
/// new token; every other error (`INVALID_ARGUMENT`, `PERMISSION_DENIED`, `NOT_FOUND`, …) is
/// permanent with Google's status, `ErrorInfo` reason, message and field violations. A 2xx
/// whose body is not JSON is transient.
pub fn classify(answer: &VendorAnswer) -> Verdict {
    let VendorAnswer { status, body, .. } = answer;
    if (200..300).contains(status) {
        return match serde_json::from_str(body) {
            Ok(value) => Verdict::Success(value),
            Err(error) => Verdict::Failed(ConnectorError::Transient(format!(
                "Google Data Manager answered HTTP {status} with unreadable JSON: {error}"
            ))),
        };
    }
    let error = RpcStatus::parse(body);
    let detail = format!("HTTP {status} {}", describe(&error));
    let wait = answer
        .retry_after_wait()
        .or(error.retry_delay)
        .unwrap_or(DEFAULT_RETRY_AFTER);
    google::error_verdict(*status, &error.status, wait, detail, &describe(&error))
}

/// Google's status, its `ErrorInfo` reasons and message, and its field violations.
fn describe(error: &RpcStatus) -> String {
    let mut text = match (error.status.is_empty(), error.reasons.is_empty()) {
        (true, _) => error.message.clone(),
        (false, true) => format!("{}: {}", error.status, error.message),
        (false, false) => format!(
            "{} ({}): {}",
            error.status,
            error.reasons.join(", "),
            error.message
        ),
    };
    if !error.violations.is_empty() {
        text.push_str(&format!(" [{}]", error.violations.join("; ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::vendor_answer as answer;
    use serde_json::json;

    #[test]
    fn invalid_argument_is_permanent_with_reason_and_field_violations() {
        let body = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
        "message": "There was a problem with the request.",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "INVALID_SHA256_FORMAT",
             "domain": "datamanager.googleapis.com"},
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [
                {"field": "audience_members[0].user_data.user_identifiers[0]",
                 "description": "The SHA256 encoded value is malformed."}]}
        ]}})
        .to_string();
        let Verdict::Failed(ConnectorError::Permanent(text)) = classify(&answer(400, None, &body))
        else {
            panic!("not permanent")
        };
        assert_eq!(
            text,
            "HTTP 400: INVALID_ARGUMENT (INVALID_SHA256_FORMAT): There was a problem with the request. \
             [audience_members[0].user_data.user_identifiers[0]: The SHA256 encoded value is malformed.]"
        );
    }

    #[test]
    fn resource_exhausted_honours_retry_after_then_retry_delay_then_default() {
        let body = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}]}})
        .to_string();
        let after = |v: Verdict| match v {
            Verdict::Failed(ConnectorError::RetryAfter { after, .. }) => after,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            after(classify(&answer(429, Some("7"), &body))),
            Duration::from_secs(7)
        );
        assert_eq!(
            after(classify(&answer(429, None, &body))),
            Duration::from_secs(12)
        );
        assert_eq!(
            after(classify(&answer(429, None, "{}"))),
            DEFAULT_RETRY_AFTER
        );
    }

    #[test]
    fn server_errors_are_transient_and_unauthenticated_asks_for_a_token() {
        let unavailable =
            json!({"error": {"code": 503, "status": "UNAVAILABLE", "message": "later"}})
                .to_string();
        assert!(matches!(
            classify(&answer(503, None, &unavailable)),
            Verdict::Failed(ConnectorError::Transient(_))
        ));
        assert!(matches!(
            classify(&answer(500, None, "oops")),
            Verdict::Failed(ConnectorError::Transient(_))
        ));
        assert!(matches!(
            classify(&answer(401, None, "{}")),
            Verdict::Unauthenticated(_)
        ));
        assert_eq!(
            classify(&answer(200, None, r#"{"requestId":"r"}"#)),
            Verdict::Success(json!({"requestId": "r"}))
        );
        assert!(matches!(
            classify(&answer(200, None, "<html>")),
            Verdict::Failed(ConnectorError::Transient(_))
        ));
    }

    #[test]
    fn permission_denied_is_permanent() {
        let body = json!({"error": {"code": 403, "status": "PERMISSION_DENIED",
            "message": "The caller does not have permission"}})
        .to_string();
        assert!(matches!(
            classify(&answer(403, None, &body)),
            Verdict::Failed(ConnectorError::Permanent(t)) if t.contains("PERMISSION_DENIED")
        ));
    }
}
