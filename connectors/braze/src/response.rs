//! Classification of Braze REST answers: success, retry after a wait (429), retry (408, 5xx),
//! or a permanent refusal (any other 4xx, or a 2xx whose `message` is a fatal error) carrying
//! Braze's own text from its `{"message", "errors": [..]}` envelope.
//!
//! Braze documents no `Retry-After`; a 429 carries `X-RateLimit-Reset`, the UTC epoch second
//! at which the window refills. The wait honours, in order, `Retry-After`, `X-RateLimit-Reset`,
//! then [`DEFAULT_RATE_LIMIT_WAIT`].

use std::time::Duration;

use hush_connector_kit::http::{AuthHints, VendorAnswer};
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

/// Wait after a 429 that says nothing about when the window refills: the `/users/delete` and
/// `/users/export/ids` limits are counted per minute.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// What Braze's 401 and 403 point at.
const AUTH_HINTS: AuthHints = AuthHints {
    unauthorized: "Braze refused the REST API key named by credentials.api_key",
    forbidden: "the REST API key needs the users.track, users.delete and users.export.ids \
                permissions",
};

/// Reads a Braze answer: a 2xx carrying `"message": "success"` (or `"queued"`, Braze's answer
/// while maintenance pauses processing) yields the JSON document; anything else the error,
/// with Braze's text, every value of `redact` replaced by `[redacted]` (Braze may echo the
/// identifiers it was sent).
pub fn read(answer: &VendorAnswer, redact: &[&str]) -> Result<Value, ConnectorError> {
    let text = || redacted(&format!("Braze: {}", error_text(&answer.body)), redact);
    if answer.status == 429 {
        return Err(ConnectorError::RetryAfter {
            after: rate_limit_wait(answer),
            detail: format!("HTTP 429: {}", text()),
        });
    }
    if let Some(error) = answer.failure(&text()) {
        return Err(AUTH_HINTS.apply(answer.status, error));
    }
    let body: Value = serde_json::from_str(&answer.body).map_err(|e| {
        ConnectorError::Transient(format!("Braze answered with unreadable JSON: {e}"))
    })?;
    match body["message"].as_str() {
        Some("success" | "queued") => Ok(body),
        Some(_) => Err(ConnectorError::Permanent(format!(
            "HTTP {}: {}",
            answer.status,
            text()
        ))),
        None => Err(ConnectorError::Transient(format!(
            "HTTP {}: Braze answered without a message",
            answer.status
        ))),
    }
}

/// How long to wait after a 429.
fn rate_limit_wait(answer: &VendorAnswer) -> Duration {
    answer
        .retry_after_wait()
        .or_else(|| answer.rate_limit_reset.as_deref().and_then(reset_wait))
        .unwrap_or(DEFAULT_RATE_LIMIT_WAIT)
}

/// The wait until `X-RateLimit-Reset`, a UTC epoch second.
fn reset_wait(value: &str) -> Option<Duration> {
    let reset: i64 = value.trim().parse().ok()?;
    let now = chrono::Utc::now().timestamp();
    Some(Duration::from_secs(reset.saturating_sub(now).max(0) as u64))
}

/// Braze's `message` and the entries of its `errors` array (strings, or objects whose `type`
/// says what is wrong), or the body itself when it is not Braze's envelope.
pub fn error_text(body: &str) -> String {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut parts: Vec<String> = Vec::new();
    if let Some(message) = parsed["message"].as_str() {
        parts.push(message.to_owned());
    }
    for error in parsed["errors"].as_array().into_iter().flatten() {
        if let Some(text) = error.as_str().or(error["type"].as_str()) {
            parts.push(text.to_owned());
        }
    }
    if parts.is_empty() {
        body.chars().take(500).collect()
    } else {
        parts.join("; ")
    }
}

/// `text` with every value of `redact`, in any form it takes through HTTP and JSON (see
/// [`hush_contracts::redact::redact`]), replaced by `[redacted]`.
pub fn redacted(text: &str, redact: &[&str]) -> String {
    hush_contracts::redact::redact(text, redact, "[redacted]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> VendorAnswer {
        hush_connector_kit::testing::vendor_answer(status, None, body)
    }

    fn wait_of(result: Result<Value, ConnectorError>) -> Duration {
        match result {
            Err(ConnectorError::RetryAfter { after, .. }) => after,
            other => panic!("not a wait: {other:?}"),
        }
    }

    #[test]
    fn a_429_waits_until_the_documented_reset_epoch() {
        let mut limited = answer(429, r#"{"message":"Rate limit exceeded"}"#);
        limited.rate_limit_reset = Some((chrono::Utc::now().timestamp() + 40).to_string());
        let wait = wait_of(read(&limited, &[]));
        assert!(
            wait > Duration::from_secs(35) && wait <= Duration::from_secs(40),
            "{wait:?}"
        );
        limited.retry_after = Some("7".into());
        assert_eq!(wait_of(read(&limited, &[])), Duration::from_secs(7));
        assert_eq!(
            wait_of(read(&answer(429, "{}"), &[])),
            DEFAULT_RATE_LIMIT_WAIT
        );
    }

    #[test]
    fn a_refusal_is_permanent_with_brazes_text_and_no_identifier() {
        let body = r#"{"message":"Invalid email address jane@example.com","errors":["'email_address' is invalid"]}"#;
        let error = read(&answer(400, body), &["jane@example.com"]).unwrap_err();
        assert_eq!(
            error,
            ConnectorError::Permanent(
                "HTTP 400: Braze: Invalid email address [redacted]; 'email_address' is invalid"
                    .into()
            )
        );
    }

    #[test]
    fn an_unknown_key_is_permanent_with_a_hint() {
        let error = read(&answer(401, r#"{"message":"Invalid API key"}"#), &[]).unwrap_err();
        assert!(
            matches!(&error, ConnectorError::Permanent(t) if t.contains("Invalid API key") && t.contains("credentials.api_key")),
            "{error:?}"
        );
    }

    #[test]
    fn success_and_queued_are_read_and_a_fatal_message_is_refused() {
        assert_eq!(
            read(&answer(201, r#"{"message":"success","deleted":2}"#), &[]).unwrap()["deleted"],
            2
        );
        assert!(read(&answer(202, r#"{"message":"queued"}"#), &[]).is_ok());
        assert!(matches!(
            read(&answer(200, r#"{"message":"Bad syntax"}"#), &[]),
            Err(ConnectorError::Permanent(t)) if t.contains("Bad syntax")
        ));
        assert!(matches!(
            read(&answer(503, "down"), &[]),
            Err(ConnectorError::Transient(_))
        ));
    }
}
