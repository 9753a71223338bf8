//! Classification of Klaviyo answers: success, retry after the `Retry-After` Klaviyo sends with
//! a 429, retry (408, 5xx), or a permanent refusal (any other 4xx) carrying Klaviyo's JSON:API
//! `errors` (`code`, `title`, `detail`, `source.pointer`).

use hush_connector_kit::http::{AuthHints, VendorAnswer};
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

/// What Klaviyo's 401 and 403 point at.
const AUTH_HINTS: AuthHints = AuthHints {
    unauthorized: "Klaviyo refused the private API key named by credentials.api_key",
    forbidden: "the private API key needs the data-privacy:write, profiles:read, \
                profiles:write, subscriptions:read and subscriptions:write scopes",
};

/// Reads a Klaviyo answer: a 2xx yields its JSON document (`Null` for an empty body, as the
/// deletion job's 202 has); anything else the error, with Klaviyo's text, every value of
/// `redact` replaced by `[redacted]` (Klaviyo may echo the identifiers it was sent).
pub fn read(answer: &VendorAnswer, redact: &[&str]) -> Result<Value, ConnectorError> {
    let text = redacted(&format!("Klaviyo: {}", error_text(&answer.body)), redact);
    if let Some(error) = answer.failure(&text) {
        return Err(AUTH_HINTS.apply(answer.status, error));
    }
    if answer.body.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&answer.body).map_err(|e| {
        ConnectorError::Transient(format!("Klaviyo answered with unreadable JSON: {e}"))
    })
}

/// The entries of Klaviyo's `errors` array as `code: detail (pointer)`, or the body itself.
pub fn error_text(body: &str) -> String {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let errors: Vec<String> = parsed["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|error| {
            let detail = error["detail"].as_str().or(error["title"].as_str())?;
            let mut text = match error["code"].as_str() {
                Some(code) => format!("{code}: {detail}"),
                None => detail.to_owned(),
            };
            if let Some(pointer) = error["source"]["pointer"].as_str() {
                text.push_str(&format!(" ({pointer})"));
            }
            Some(text)
        })
        .collect();
    if errors.is_empty() {
        body.chars().take(500).collect()
    } else {
        errors.join("; ")
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
    use hush_connector_kit::testing::vendor_answer as answer;
    use std::time::Duration;

    #[test]
    fn a_refusal_is_permanent_with_klaviyos_error_and_no_identifier() {
        let body = r#"{"errors":[{"id":"e1","status":400,"code":"invalid","title":"Invalid input.","detail":"'jane@example' is not a valid email address.","source":{"pointer":"/data/attributes/profiles/data/0/attributes/email"}}]}"#;
        let error = read(&answer(400, None, body), &["jane@example"]).unwrap_err();
        assert_eq!(
            error,
            ConnectorError::Permanent(
                "HTTP 400: Klaviyo: invalid: '[redacted]' is not a valid email address. (/data/attributes/profiles/data/0/attributes/email)".into()
            )
        );
    }

    #[test]
    fn a_429_waits_for_klaviyos_retry_after() {
        let error = read(&answer(429, Some("12"), r#"{"errors":[{"code":"throttled","title":"Request was throttled.","detail":"Request was throttled. Expected available in 12 seconds."}]}"#), &[]).unwrap_err();
        assert!(
            matches!(&error, ConnectorError::RetryAfter { after, detail } if *after == Duration::from_secs(12) && detail.contains("throttled")),
            "{error:?}"
        );
    }

    #[test]
    fn an_empty_202_is_success_and_a_key_refusal_says_which_credential() {
        assert_eq!(read(&answer(202, None, ""), &[]), Ok(Value::Null));
        let error = read(&answer(403, None, r#"{"errors":[{"code":"permission_denied","detail":"You do not have permission to perform this action."}]}"#), &[]).unwrap_err();
        assert!(
            matches!(&error, ConnectorError::Permanent(t) if t.contains("permission_denied") && t.contains("data-privacy:write")),
            "{error:?}"
        );
        assert!(matches!(
            read(&answer(502, None, "bad gateway"), &[]),
            Err(ConnectorError::Transient(_))
        ));
    }
}
