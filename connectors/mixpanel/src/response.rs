//! Classification of GDPR/CCPA API answers: success, retry after a wait (429), retry (408,
//! 5xx), or a permanent refusal (any other 4xx) carrying Mixpanel's own error text from its
//! `{"status":"error","error":…}` envelope.
//!
//! Mixpanel allows one GDPR API request a second and documents no `Retry-After`; without one the
//! wait is [`DEFAULT_RETRY_AFTER`].

use std::time::Duration;

use hush_connector_kit::http::VendorAnswer;
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

/// Wait after a 429 that does not say how long.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Reads an answer: a 2xx carries a JSON document whose `status` is `ok`; otherwise the error,
/// with Mixpanel's text.
pub fn read(answer: &VendorAnswer) -> Result<Value, ConnectorError> {
    let text = format!("Mixpanel: {}", error_text(&answer.body));
    if let Some(error) = answer.failure_waiting(DEFAULT_RETRY_AFTER, &text) {
        return Err(error);
    }
    let value: Value = serde_json::from_str(&answer.body).map_err(|e| {
        ConnectorError::Transient(format!("Mixpanel answered with unreadable JSON: {e}"))
    })?;
    match value["status"].as_str() {
        Some("ok") => Ok(value),
        _ => Err(ConnectorError::Permanent(format!(
            "HTTP {}: {text}",
            answer.status
        ))),
    }
}

/// The `error` of Mixpanel's error envelope, or the body (at most 500 characters).
pub fn error_text(body: &str) -> String {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    match &parsed["error"] {
        Value::String(text) => text.clone(),
        Value::Null => body.chars().take(500).collect(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::vendor_answer as answer;

    #[test]
    fn a_refusal_is_permanent_with_mixpanels_text() {
        assert_eq!(
            read(&answer(
                403,
                None,
                r#"{"status":"error","error":"Permission denied"}"#
            )),
            Err(ConnectorError::Permanent(
                "HTTP 403: Mixpanel: Permission denied".into()
            ))
        );
        assert!(matches!(
            read(&answer(200, None, r#"{"status":"error","error":"odd"}"#)),
            Err(ConnectorError::Permanent(t)) if t.contains("odd")
        ));
    }

    #[test]
    fn a_429_waits_for_retry_after_or_the_default() {
        let waited = |a: &VendorAnswer| match read(a) {
            Err(ConnectorError::RetryAfter { after, .. }) => after,
            other => panic!("{other:?}"),
        };
        assert_eq!(waited(&answer(429, Some("2"), "")), Duration::from_secs(2));
        assert_eq!(waited(&answer(429, None, "")), DEFAULT_RETRY_AFTER);
    }

    #[test]
    fn server_errors_are_transient_and_ok_is_success() {
        assert!(matches!(
            read(&answer(502, None, "bad gateway")),
            Err(ConnectorError::Transient(_))
        ));
        assert_eq!(
            read(&answer(
                201,
                None,
                r#"{"status":"ok","results":{"task_id":"t"}}"#
            ))
            .unwrap()["results"]["task_id"],
            "t"
        );
    }
}
