//! Classification of User Privacy API answers: success, retry after a wait (429), retry (408,
//! 5xx), or a permanent refusal (any other 4xx) carrying Amplitude's own error text.
//!
//! The endpoint allows one request a second; Amplitude does not document a `Retry-After` on its
//! 429, so without one the wait is [`DEFAULT_RETRY_AFTER`].

use std::time::Duration;

use hush_connector_kit::http::VendorAnswer;
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

/// Wait after a 429 that does not say how long: a few times the one-second limit, so that
/// concurrent Hush workers sharing the key spread out.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Reads an answer: a 2xx carries a JSON document; otherwise the error, with Amplitude's text.
pub fn read(answer: &VendorAnswer) -> Result<Value, ConnectorError> {
    let text = format!("Amplitude: {}", error_text(&answer.body));
    if let Some(error) = answer.failure_waiting(DEFAULT_RETRY_AFTER, &text) {
        return Err(error);
    }
    serde_json::from_str(&answer.body).map_err(|e| {
        ConnectorError::Transient(format!("Amplitude answered with unreadable JSON: {e}"))
    })
}

/// The `error` (or `message`) of a JSON error body, or the body itself (at most 500
/// characters).
pub fn error_text(body: &str) -> String {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    ["error", "message"]
        .iter()
        .find_map(|key| match &parsed[*key] {
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
        .unwrap_or_else(|| body.chars().take(500).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::vendor_answer as answer;

    #[test]
    fn a_refusal_is_permanent_with_amplitudes_text() {
        assert_eq!(
            read(&answer(400, None, r#"{"error":"Invalid requester"}"#)),
            Err(ConnectorError::Permanent(
                "HTTP 400: Amplitude: Invalid requester".into()
            ))
        );
        assert_eq!(
            read(&answer(401, None, "Invalid api key")),
            Err(ConnectorError::Permanent(
                "HTTP 401: Amplitude: Invalid api key".into()
            ))
        );
    }

    #[test]
    fn a_429_waits_for_retry_after_or_the_default() {
        let waited = |a: &VendorAnswer| match read(a) {
            Err(ConnectorError::RetryAfter { after, .. }) => after,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            waited(&answer(429, Some("3"), "{}")),
            Duration::from_secs(3)
        );
        assert_eq!(waited(&answer(429, None, "{}")), DEFAULT_RETRY_AFTER);
    }

    #[test]
    fn server_errors_are_transient_and_success_is_json() {
        assert!(matches!(
            read(&answer(503, None, "busy")),
            Err(ConnectorError::Transient(_))
        ));
        assert!(matches!(
            read(&answer(200, None, "<html>")),
            Err(ConnectorError::Transient(_))
        ));
        assert_eq!(
            read(&answer(200, None, r#"{"day":"2026-12-14"}"#)).unwrap()["day"],
            "2026-12-14"
        );
    }
}
