//! Classification of Segment Public API answers: success, retry after a wait (429), retry
//! (408, 5xx), or a permanent refusal (any other 4xx) carrying Segment's own error text from its
//! `{"errors":[{"type","message","field"}]}` envelope.
//!
//! Segment's rate limits are point quotas per workspace; a 429 carries no `Retry-After` but the
//! documented `X-RateLimit-Reset` (an RFC 5322 date when the quota refills) and a body whose
//! `data.msBeforeNext` says the same in milliseconds. The wait honours, in order, `Retry-After`,
//! `X-RateLimit-Reset`, `msBeforeNext`, then [`DEFAULT_QUOTA_WAIT`], so a quota that refills days
//! later is not hit again every second until the work runs out of attempts.

use std::time::Duration;

use hush_connector_kit::http::{classify_http_status, parse_retry_after, VendorAnswer};
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

/// Wait after a 429 that says nothing about when the quota refills: the Public API's limits
/// are counted per minute.
pub const DEFAULT_QUOTA_WAIT: Duration = Duration::from_secs(60);

/// Reads a Segment Public API answer: a 2xx carries a JSON document; otherwise the error, with
/// Segment's text.
pub fn read(answer: &VendorAnswer) -> Result<Value, ConnectorError> {
    if let Some(error) = classify(answer) {
        return Err(error);
    }
    serde_json::from_str(&answer.body).map_err(|e| {
        ConnectorError::Transient(format!("Segment answered with unreadable JSON: {e}"))
    })
}

/// `None` for a 2xx answer, otherwise the error to report, with Segment's text; a 429 waits
/// until the quota refills.
pub fn classify(answer: &VendorAnswer) -> Option<ConnectorError> {
    let text = format!("Segment: {}", error_text(&answer.body));
    if answer.status == 429 {
        return Some(ConnectorError::RetryAfter {
            after: quota_wait(answer),
            detail: format!("HTTP 429: {text}"),
        });
    }
    classify_http_status(answer.status, answer.retry_after.as_deref(), &text)
}

/// How long to wait after a 429 before the quota has points again.
fn quota_wait(answer: &VendorAnswer) -> Duration {
    let from_header = |header: &Option<String>| header.as_deref().and_then(parse_retry_after);
    let from_body = || {
        let body: Value = serde_json::from_str(&answer.body).ok()?;
        body["errors"]
            .as_array()?
            .iter()
            .find_map(|e| e["data"]["msBeforeNext"].as_u64())
            .map(Duration::from_millis)
    };
    from_header(&answer.retry_after)
        .or_else(|| from_header(&answer.rate_limit_reset))
        .or_else(from_body)
        .unwrap_or(DEFAULT_QUOTA_WAIT)
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

    fn answer(status: u16, body: &str) -> VendorAnswer {
        hush_connector_kit::testing::vendor_answer(status, None, body)
    }

    /// Segment's documented 429 body.
    const TOO_MANY: &str = r#"{"errors":[{"type":"RequestError","message":"Too many requests","data":{"remainingPoints":0,"msBeforeNext":57647,"consumedPoints":21}}]}"#;

    fn wait_of(error: Option<ConnectorError>) -> Duration {
        match error {
            Some(ConnectorError::RetryAfter { after, .. }) => after,
            other => panic!("not a wait: {other:?}"),
        }
    }

    #[test]
    fn validation_failure_is_permanent_with_segments_text() {
        let body = r#"{"errors":[{"type":"input-validation","message":"\"subjectIds\" is required","field":"subjectIds"}]}"#;
        let err = classify(&answer(422, body)).unwrap();
        assert!(
            matches!(&err, ConnectorError::Permanent(t)
                if t == "HTTP 422: Segment: input-validation (subjectIds): \"subjectIds\" is required"),
            "{err:?}"
        );
    }

    #[test]
    fn a_429_waits_until_the_quota_resets() {
        let reset = chrono::Utc::now() + chrono::Duration::days(2);
        let mut limited = answer(429, TOO_MANY);
        limited.rate_limit_reset = Some(reset.to_rfc2822());
        let wait = wait_of(classify(&limited));
        assert!(
            wait > Duration::from_secs(47 * 3600) && wait <= Duration::from_secs(48 * 3600),
            "{wait:?}"
        );
    }

    #[test]
    fn a_429_without_headers_waits_the_bodys_ms_before_next() {
        assert_eq!(
            wait_of(classify(&answer(429, TOO_MANY))),
            Duration::from_millis(57_647)
        );
        assert_eq!(wait_of(classify(&answer(429, "{}"))), DEFAULT_QUOTA_WAIT);
    }

    #[test]
    fn retry_after_wins_over_the_quota_headers() {
        let mut limited = answer(429, TOO_MANY);
        limited.retry_after = Some("9".into());
        limited.rate_limit_reset =
            Some((chrono::Utc::now() + chrono::Duration::days(2)).to_rfc2822());
        assert_eq!(wait_of(classify(&limited)), Duration::from_secs(9));
    }

    #[test]
    fn server_errors_are_retryable_and_success_is_none() {
        assert!(matches!(
            classify(&answer(503, "down")),
            Some(ConnectorError::Transient(_))
        ));
        assert_eq!(classify(&answer(200, "{}")), None);
    }
}
