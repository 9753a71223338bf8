//! Classification of Mailchimp answers: success, a member (or list) that does not exist (404),
//! retry after the vendor's delay (429: Mailchimp allows 10 simultaneous connections per
//! account), retry (408, 5xx), or a permanent refusal (any other 4xx) carrying Mailchimp's
//! problem document (`title`, `detail`, and the field `errors` of a 400 "Invalid Resource").

use hush_connector_kit::http::{AuthHints, VendorAnswer};
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

/// What a successful or not-found Mailchimp answer says.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 2xx with its JSON document (`Null` for the empty body of a 204).
    Done(Value),
    /// 404 "Resource Not Found": the member (or the list) does not exist.
    NotFound,
}

/// What Mailchimp's 401 and 403 point at.
const AUTH_HINTS: AuthHints = AuthHints {
    unauthorized: "Mailchimp refused the API key named by credentials.api_key",
    forbidden: "the API key's data center must match base_url, and its user must be allowed \
                to manage the audience",
};

/// Reads a Mailchimp answer. Every value of `redact` (the address and its subscriber hash,
/// which Mailchimp may echo) is replaced by `[redacted]` before any text becomes an error.
pub fn read(answer: &VendorAnswer, redact: &[&str]) -> Result<Answer, ConnectorError> {
    if answer.status == 404 {
        return Ok(Answer::NotFound);
    }
    let text = redacted(&format!("Mailchimp: {}", error_text(&answer.body)), redact);
    if let Some(error) = answer.failure(&text) {
        return Err(AUTH_HINTS.apply(answer.status, error));
    }
    if answer.body.trim().is_empty() {
        return Ok(Answer::Done(Value::Null));
    }
    serde_json::from_str(&answer.body)
        .map(Answer::Done)
        .map_err(|e| ConnectorError::Transient(format!("Mailchimp answered unreadable JSON: {e}")))
}

/// Mailchimp's problem document as `title: detail (field: message; …)`, or the body itself.
pub fn error_text(body: &str) -> String {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let (Some(title), detail) = (parsed["title"].as_str(), parsed["detail"].as_str()) else {
        return body.chars().take(500).collect();
    };
    let mut text = match detail {
        Some(detail) if !detail.is_empty() => format!("{title}: {detail}"),
        _ => title.to_owned(),
    };
    let fields: Vec<String> = parsed["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|error| {
            let message = error["message"].as_str()?;
            Some(match error["field"].as_str().filter(|f| !f.is_empty()) {
                Some(field) => format!("{field}: {message}"),
                None => message.to_owned(),
            })
        })
        .collect();
    if !fields.is_empty() {
        text.push_str(&format!(" ({})", fields.join("; ")));
    }
    text
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
    fn an_invalid_resource_is_permanent_with_the_field_errors_and_no_identifier() {
        let body = r#"{"type":"https://mailchimp.com/developer/marketing/docs/errors/","title":"Invalid Resource","status":400,"detail":"jane@example.com looks fake or invalid, please enter a real email address.","instance":"f1","errors":[{"field":"status","message":"Data presented is not one of the accepted values."}]}"#;
        let error = read(&answer(400, None, body), &["jane@example.com"]).unwrap_err();
        assert_eq!(
            error,
            ConnectorError::Permanent(
                "HTTP 400: Mailchimp: Invalid Resource: [redacted] looks fake or invalid, please enter a real email address. (status: Data presented is not one of the accepted values.)".into()
            )
        );
    }

    #[test]
    fn a_404_is_not_found_and_a_204_is_done() {
        let body = r#"{"title":"Resource Not Found","status":404,"detail":"The requested resource could not be found."}"#;
        assert_eq!(read(&answer(404, None, body), &[]), Ok(Answer::NotFound));
        assert_eq!(
            read(&answer(204, None, ""), &[]),
            Ok(Answer::Done(Value::Null))
        );
        assert_eq!(
            read(&answer(200, None, r#"{"status":"unsubscribed"}"#), &[]),
            Ok(Answer::Done(serde_json::json!({"status": "unsubscribed"})))
        );
    }

    #[test]
    fn too_many_connections_wait_and_server_errors_are_transient() {
        let body = r#"{"title":"Too Many Requests","status":429,"detail":"You have exceeded the limit of 10 simultaneous connections."}"#;
        let error = read(&answer(429, Some("5"), body), &[]).unwrap_err();
        assert!(
            matches!(&error, ConnectorError::RetryAfter { after, detail }
                if *after == Duration::from_secs(5) && detail.contains("10 simultaneous connections")),
            "{error:?}"
        );
        assert!(matches!(
            read(&answer(503, None, "busy"), &[]),
            Err(ConnectorError::Transient(_))
        ));
    }

    #[test]
    fn key_refusals_say_what_to_check() {
        let invalid = r#"{"title":"API Key Invalid","status":401,"detail":"Your API key may be invalid, or you've attempted to access the wrong datacenter."}"#;
        let error = read(&answer(401, None, invalid), &[]).unwrap_err();
        assert!(
            matches!(&error, ConnectorError::Permanent(t) if t.contains("API Key Invalid") && t.contains("credentials.api_key")),
            "{error:?}"
        );
        let wrong = r#"{"title":"Wrong Datacenter","status":403,"detail":"The API key provided is linked to a different data center."}"#;
        let error = read(&answer(403, None, wrong), &[]).unwrap_err();
        assert!(
            matches!(&error, ConnectorError::Permanent(t) if t.contains("Wrong Datacenter") && t.contains("base_url")),
            "{error:?}"
        );
    }
}
