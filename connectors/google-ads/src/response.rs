//! Classification of Google's answers: success, an access token to refresh, retry after a
//! delay, retry, or a permanent refusal with Google's own message; and the per-operation
//! failures of a partial-failure response.

use std::time::Duration;

use hush_connector_kit::google::{self, parse_proto_duration};
use hush_connector_kit::http::parse_retry_after;
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

/// Wait used when Google reports `RESOURCE_EXHAUSTED` without saying how long to wait.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The error code Google answers, since April 2026, to a developer token that is not on the
/// Customer Match allowlist of the Google Ads API.
pub const NOT_ALLOWLISTED: &str = "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE";

/// What one Google Ads API answer means; the caller reads a success's body.
pub type Verdict = google::Verdict<()>;

/// Classifies a Google Ads API answer: `RESOURCE_EXHAUSTED`/429 waits for `Retry-After` (or the
/// quota error's `retryDelay`, or [`DEFAULT_RETRY_AFTER`]), `UNAVAILABLE`/`INTERNAL`/
/// `DEADLINE_EXCEEDED`/5xx are transient, `UNAUTHENTICATED`/401 asks for a new token, and every
/// other error (`INVALID_ARGUMENT`, `PERMISSION_DENIED`, …) is permanent with Google's message.
/// `CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE` is permanent and says to use the Data Manager
/// API connector instead.
pub fn classify(status: u16, retry_after: Option<&str>, body: &str) -> Verdict {
    if (200..300).contains(&status) {
        return Verdict::Success(());
    }
    let error = GoogleError::parse(body);
    let detail = format!("HTTP {status} {}", error.describe());
    if error.failures.iter().any(|f| f.contains(NOT_ALLOWLISTED)) {
        return Verdict::Failed(ConnectorError::Permanent(format!(
            "{detail}: Google no longer accepts Customer Match through the Google Ads API from \
             developer tokens that were not allowlisted before April 2026; use a recipient of \
             kind = \"google_data_manager\" (the Data Manager API) instead"
        )));
    }
    let wait = retry_after
        .and_then(parse_retry_after)
        .or(error.retry_delay)
        .unwrap_or(DEFAULT_RETRY_AFTER);
    google::error_verdict(status, &error.status, wait, detail, &error.describe())
}

/// The fields of Google's error envelope `{"error":{"code","message","status","details"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct GoogleError {
    status: String,
    message: String,
    failures: Vec<String>,
    retry_delay: Option<Duration>,
}

impl GoogleError {
    fn parse(body: &str) -> Self {
        let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let error = &parsed["error"];
        if error.is_null() {
            return Self {
                message: body.chars().take(500).collect(),
                ..Self::default()
            };
        }
        let mut failures = Vec::new();
        let mut retry_delay = None;
        for failure in google_ads_failures(error) {
            let code = error_code(&failure["errorCode"]);
            let message = failure["message"].as_str().unwrap_or_default();
            failures.push(format!("{code}: {message}"));
            if let Some(delay) = failure["details"]["quotaErrorDetails"]["retryDelay"].as_str() {
                retry_delay = retry_delay.or_else(|| parse_proto_duration(delay));
            }
        }
        Self {
            status: error["status"].as_str().unwrap_or_default().to_owned(),
            message: error["message"].as_str().unwrap_or_default().to_owned(),
            failures,
            retry_delay,
        }
    }

    fn describe(&self) -> String {
        let mut text = if self.status.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.status, self.message)
        };
        if !self.failures.is_empty() {
            text.push_str(&format!(" [{}]", self.failures.join("; ")));
        }
        text
    }
}

/// The `errors` of every `GoogleAdsFailure` in a `google.rpc.Status`'s `details`.
fn google_ads_failures(status: &Value) -> Vec<Value> {
    status["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| {
            d["@type"]
                .as_str()
                .is_none_or(|t| t.ends_with("errors.GoogleAdsFailure"))
        })
        .flat_map(|d| d["errors"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// `{"offlineUserDataJobError":"INVALID_SHA256_FORMAT"}` → `offlineUserDataJobError.INVALID_SHA256_FORMAT`.
fn error_code(code: &Value) -> String {
    code.as_object()
        .and_then(|o| o.iter().next())
        .map(|(kind, value)| format!("{kind}.{}", value.as_str().unwrap_or_default()))
        .unwrap_or_else(|| "UNKNOWN".to_owned())
}

/// One operation Google refused inside an otherwise accepted `addOperations` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationFailure {
    /// Index of the operation in the request.
    pub operation: usize,
    /// Index of the offending identifier in the operation's `userIdentifiers`, when Google
    /// says which one.
    pub identifier: Option<usize>,
    /// `offlineUserDataJobError.INVALID_SHA256_FORMAT` and Google's message.
    pub reason: String,
}

/// Reads `partialFailureError` of an `addOperations` response: one entry per refused
/// operation error, located by `location.fieldPathElements` (`operations[i]`,
/// `user_identifiers[j]`). Errors without an operation index are not per-operation and are
/// returned with `usize::MAX` so the caller fails everything.
pub fn partial_failures(response: &Value) -> Vec<OperationFailure> {
    let status = &response["partialFailureError"];
    if status.is_null() {
        return Vec::new();
    }
    let failures = google_ads_failures(status);
    if failures.is_empty() {
        return vec![OperationFailure {
            operation: usize::MAX,
            identifier: None,
            reason: status["message"]
                .as_str()
                .unwrap_or("partial failure without details")
                .to_owned(),
        }];
    }
    failures
        .iter()
        .map(|failure| {
            let path = failure["location"]["fieldPathElements"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let index_of = |name: &str| {
                path.iter()
                    .find(|e| e["fieldName"] == name)
                    .and_then(|e| e["index"].as_u64())
                    .map(|i| i as usize)
            };
            OperationFailure {
                operation: index_of("operations").unwrap_or(usize::MAX),
                identifier: index_of("user_identifiers"),
                reason: format!(
                    "{}: {}",
                    error_code(&failure["errorCode"]),
                    failure["message"].as_str().unwrap_or_default()
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn google_error(code: u16, status: &str, message: &str) -> String {
        json!({"error": {"code": code, "message": message, "status": status, "details": [{
            "@type": "type.googleapis.com/google.ads.googleads.v18.errors.GoogleAdsFailure",
            "errors": [{"errorCode": {"offlineUserDataJobError": "INVALID_USER_LIST_ID"},
                        "message": "The user list ID provided for the job is invalid."}]
        }]}})
        .to_string()
    }

    #[test]
    fn invalid_argument_is_permanent_with_googles_message() {
        let verdict = classify(
            400,
            None,
            &google_error(
                400,
                "INVALID_ARGUMENT",
                "Request contains an invalid argument.",
            ),
        );
        let Verdict::Failed(ConnectorError::Permanent(text)) = verdict else {
            panic!("{verdict:?}")
        };
        assert!(text.contains("INVALID_ARGUMENT"), "{text}");
        assert!(
            text.contains("offlineUserDataJobError.INVALID_USER_LIST_ID"),
            "{text}"
        );
        assert!(
            text.contains("The user list ID provided for the job is invalid."),
            "{text}"
        );
    }

    #[test]
    fn resource_exhausted_honours_retry_after_then_retry_delay_then_default() {
        let body = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
            "details": [{"@type": "type.googleapis.com/google.ads.googleads.v18.errors.GoogleAdsFailure",
                "errors": [{"errorCode": {"quotaError": "RESOURCE_EXHAUSTED"}, "message": "Too many requests.",
                    "details": {"quotaErrorDetails": {"retryDelay": "12s"}}}]}]}})
        .to_string();
        let after = |v: Verdict| match v {
            Verdict::Failed(ConnectorError::RetryAfter { after, .. }) => after,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            after(classify(429, Some("7"), &body)),
            Duration::from_secs(7)
        );
        assert_eq!(after(classify(429, None, &body)), Duration::from_secs(12));
        assert_eq!(after(classify(429, None, "{}")), DEFAULT_RETRY_AFTER);
    }

    #[test]
    fn unavailable_and_5xx_are_transient_and_unauthenticated_asks_for_a_token() {
        assert!(matches!(
            classify(503, None, &google_error(503, "UNAVAILABLE", "try later")),
            Verdict::Failed(ConnectorError::Transient(_))
        ));
        assert!(matches!(
            classify(500, None, "oops"),
            Verdict::Failed(ConnectorError::Transient(_))
        ));
        assert!(matches!(
            classify(401, None, &google_error(401, "UNAUTHENTICATED", "expired")),
            Verdict::Unauthenticated(_)
        ));
        assert_eq!(classify(200, None, "{}"), Verdict::Success(()));
    }

    #[test]
    fn a_token_not_allowlisted_for_customer_match_is_permanent_and_names_the_data_manager() {
        let body = json!({"error": {"code": 403, "status": "PERMISSION_DENIED",
            "message": "The caller does not have permission", "details": [{
            "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
            "errors": [{"errorCode": {"notAllowlistedError": NOT_ALLOWLISTED},
                        "message": "Customer is not allowlisted for accessing this feature."}]
        }]}})
        .to_string();
        let Verdict::Failed(ConnectorError::Permanent(text)) = classify(403, None, &body) else {
            panic!("not permanent")
        };
        assert!(text.contains(NOT_ALLOWLISTED), "{text}");
        assert!(text.contains("kind = \"google_data_manager\""), "{text}");
    }

    #[test]
    fn partial_failures_locate_operation_and_identifier() {
        let response = json!({"partialFailureError": {"code": 3, "message": "Invalid.", "details": [{
            "@type": "type.googleapis.com/google.ads.googleads.v18.errors.GoogleAdsFailure",
            "errors": [{
                "errorCode": {"offlineUserDataJobError": "INVALID_SHA256_FORMAT"},
                "message": "The SHA256 encoded value is malformed.",
                "location": {"fieldPathElements": [
                    {"fieldName": "operations", "index": 2},
                    {"fieldName": "remove"},
                    {"fieldName": "user_identifiers", "index": 1},
                    {"fieldName": "hashed_email"}
                ]}
            }]
        }]}});
        assert_eq!(
            partial_failures(&response),
            vec![OperationFailure {
                operation: 2,
                identifier: Some(1),
                reason: "offlineUserDataJobError.INVALID_SHA256_FORMAT: The SHA256 encoded value is malformed.".into()
            }]
        );
        assert!(partial_failures(&json!({})).is_empty());
    }
}
