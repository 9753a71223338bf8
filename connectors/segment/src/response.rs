//! Classification of Segment Public API answers: success, retry after the `Retry-After` delay
//! (429), retry (408, 5xx), or a permanent refusal (any other 4xx) carrying Segment's own error
//! text from its `{"errors":[{"type","message","field"}]}` envelope.

use hush_connector_kit::http::{classify_http_status, VendorAnswer};
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

/// Reads a Segment Public API answer: a 2xx carries a JSON document; otherwise the error, with
/// Segment's text.
pub fn read(answer: &VendorAnswer) -> Result<Value, ConnectorError> {
    if let Some(error) = classify(answer.status, answer.retry_after.as_deref(), &answer.body) {
        return Err(error);
    }
    serde_json::from_str(&answer.body).map_err(|e| {
        ConnectorError::Transient(format!("Segment answered with unreadable JSON: {e}"))
    })
}

/// `None` for a 2xx answer, otherwise the error to report, with Segment's text.
pub fn classify(status: u16, retry_after: Option<&str>, body: &str) -> Option<ConnectorError> {
    classify_http_status(
        status,
        retry_after,
        &format!("Segment: {}", error_text(body)),
    )
}

/// The messages of Segment's `errors` envelope (with their field, when given), or the body.
pub fn error_text(body: &str) -> String {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let messages: Vec<String> = parsed["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let message = e["message"].as_str()?;
            Some(match (e["type"].as_str(), e["field"].as_str()) {
                (Some(kind), Some(field)) => format!("{kind} ({field}): {message}"),
                (Some(kind), None) => format!("{kind}: {message}"),
                _ => message.to_owned(),
            })
        })
        .collect();
    if messages.is_empty() {
        body.chars().take(500).collect()
    } else {
        messages.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn validation_failure_is_permanent_with_segments_text() {
        let body = r#"{"errors":[{"type":"input-validation","message":"\"subjectIds\" is required","field":"subjectIds"}]}"#;
        let err = classify(422, None, body).unwrap();
        assert!(
            matches!(&err, ConnectorError::Permanent(t)
                if t == "HTTP 422: Segment: input-validation (subjectIds): \"subjectIds\" is required"),
            "{err:?}"
        );
    }

    #[test]
    fn rate_limit_and_server_errors_are_retryable() {
        assert_eq!(
            classify(429, Some("9"), "{}"),
            Some(ConnectorError::RetryAfter {
                after: Duration::from_secs(9),
                detail: "HTTP 429: Segment: {}".into()
            })
        );
        assert!(matches!(
            classify(503, None, "down"),
            Some(ConnectorError::Transient(_))
        ));
        assert_eq!(classify(200, None, "{}"), None);
    }
}
