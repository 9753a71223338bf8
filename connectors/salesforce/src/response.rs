//! Classification of Salesforce answers: success, retry after a wait, retry with backoff, or a
//! permanent refusal carrying Salesforce's own error text.

use std::time::Duration;

use hush_connector_kit::http::{classify_http_status, parse_retry_after};
use hush_contracts::connector::ConnectorError;
use serde::Deserialize;

use crate::request::RecordError;

/// Salesforce's error code for an exhausted API request allowance.
pub const REQUEST_LIMIT_EXCEEDED: &str = "REQUEST_LIMIT_EXCEEDED";
/// Salesforce's error code for an expired or revoked access token.
pub const INVALID_SESSION_ID: &str = "INVALID_SESSION_ID";
/// Salesforce's per-record code for a record locked by another transaction.
pub const UNABLE_TO_LOCK_ROW: &str = "UNABLE_TO_LOCK_ROW";
/// Salesforce's per-record code for a record already in the recycle bin.
pub const ENTITY_IS_DELETED: &str = "ENTITY_IS_DELETED";

/// One entry of Salesforce's REST error body `[{"message", "errorCode", "fields"}]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiError {
    #[serde(default)]
    message: String,
    error_code: String,
}

/// The OAuth token endpoint's error body `{"error", "error_description"}`.
#[derive(Debug, Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

fn api_errors(body: &str) -> Vec<ApiError> {
    serde_json::from_str(body).unwrap_or_default()
}

/// Salesforce's error text (`CODE: message; ...`), or the body itself when it is not the
/// documented error array.
pub fn vendor_text(body: &str) -> String {
    let errors = api_errors(body);
    if !errors.is_empty() {
        return errors
            .iter()
            .map(|e| format!("{}: {}", e.error_code, e.message))
            .collect::<Vec<_>>()
            .join("; ");
    }
    if let Ok(oauth) = serde_json::from_str::<OAuthError>(body) {
        return format!("{}: {}", oauth.error, oauth.error_description);
    }
    body.to_owned()
}

/// Whether a 401 answer says the access token is no longer valid (fetch a new one and retry).
pub fn is_invalid_session(status: u16, body: &str) -> bool {
    status == 401
        && api_errors(body)
            .iter()
            .any(|e| e.error_code == INVALID_SESSION_ID)
}

/// Classifies an HTTP answer: `None` for 2xx; 429 and `REQUEST_LIMIT_EXCEEDED` (Salesforce
/// sends it with 403) wait for `Retry-After` or `default_wait`; 408 and 5xx are transient; any
/// other 4xx is permanent, with Salesforce's `errorCode: message` text.
pub fn classify_response(
    status: u16,
    retry_after: Option<&str>,
    body: &str,
    default_wait: Duration,
) -> Option<ConnectorError> {
    if (200..300).contains(&status) {
        return None;
    }
    let text = vendor_text(body);
    let limit_exceeded = api_errors(body)
        .iter()
        .any(|e| e.error_code == REQUEST_LIMIT_EXCEEDED);
    if status == 429 || limit_exceeded {
        return Some(ConnectorError::RetryAfter {
            after: retry_after
                .and_then(parse_retry_after)
                .unwrap_or(default_wait),
            detail: format!("HTTP {status}: {text}"),
        });
    }
    classify_http_status(status, retry_after, &text)
}

/// Classifies the errors of one record in an sObject Collections answer: a locked row or an
/// exhausted allowance may clear on retry; anything else (invalid field, bad id, validation
/// rule, missing permission) is permanent.
pub fn classify_record_error(errors: &[RecordError], default_wait: Duration) -> ConnectorError {
    let text = if errors.is_empty() {
        "record not processed and no reason given".to_owned()
    } else {
        errors
            .iter()
            .map(|e| format!("{}: {}", e.status_code, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if errors
        .iter()
        .any(|e| e.status_code == REQUEST_LIMIT_EXCEEDED)
    {
        ConnectorError::RetryAfter {
            after: default_wait,
            detail: text,
        }
    } else if errors
        .iter()
        .any(|e| e.status_code == UNABLE_TO_LOCK_ROW || e.status_code == ENTITY_IS_DELETED)
    {
        // A deleted Individual is cleared from its Contact's lookup: a retry looks the person
        // up again and finds the current state.
        ConnectorError::Transient(text)
    } else {
        ConnectorError::Permanent(text)
    }
}

/// Whether a delete failed only because the record is already deleted.
pub fn already_deleted(errors: &[RecordError]) -> bool {
    !errors.is_empty() && errors.iter().all(|e| e.status_code == ENTITY_IS_DELETED)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(60);

    fn record_error(code: &str) -> RecordError {
        RecordError {
            status_code: code.into(),
            message: format!("{code} happened"),
            fields: vec![],
        }
    }

    #[test]
    fn success_is_none() {
        assert_eq!(classify_response(200, None, "[]", WAIT), None);
        assert_eq!(classify_response(204, None, "", WAIT), None);
    }

    #[test]
    fn too_many_requests_honours_retry_after_or_the_default() {
        assert!(matches!(
            classify_response(429, Some("7"), "", WAIT),
            Some(ConnectorError::RetryAfter { after, .. }) if after == Duration::from_secs(7)
        ));
        assert!(matches!(
            classify_response(429, None, "", WAIT),
            Some(ConnectorError::RetryAfter { after, .. }) if after == WAIT
        ));
    }

    #[test]
    fn request_limit_exceeded_with_403_is_retry_after() {
        let body =
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        assert!(matches!(
            classify_response(403, None, body, WAIT),
            Some(ConnectorError::RetryAfter { after, detail })
                if after == WAIT && detail.contains("TotalRequests Limit exceeded")
        ));
    }

    #[test]
    fn server_errors_are_transient_and_client_errors_permanent_with_vendor_text() {
        assert!(matches!(
            classify_response(503, None, "", WAIT),
            Some(ConnectorError::Transient(_))
        ));
        let body = r#"[{"message":"No such column 'Foo' on entity 'Contact'","errorCode":"INVALID_FIELD"}]"#;
        assert!(matches!(
            classify_response(400, None, body, WAIT),
            Some(ConnectorError::Permanent(m))
                if m.contains("INVALID_FIELD: No such column 'Foo' on entity 'Contact'")
        ));
        let oauth =
            r#"{"error":"invalid_client","error_description":"invalid client credentials"}"#;
        assert!(matches!(
            classify_response(400, None, oauth, WAIT),
            Some(ConnectorError::Permanent(m)) if m.contains("invalid_client: invalid client credentials")
        ));
    }

    #[test]
    fn invalid_session_is_recognised_only_on_401() {
        let body = r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#;
        assert!(is_invalid_session(401, body));
        assert!(!is_invalid_session(403, body));
        assert!(!is_invalid_session(
            401,
            r#"[{"message":"x","errorCode":"OTHER"}]"#
        ));
    }

    #[test]
    fn record_errors_are_classified() {
        assert!(matches!(
            classify_record_error(&[record_error("UNABLE_TO_LOCK_ROW")], WAIT),
            ConnectorError::Transient(m) if m.contains("UNABLE_TO_LOCK_ROW")
        ));
        assert!(matches!(
            classify_record_error(&[record_error("INVALID_FIELD")], WAIT),
            ConnectorError::Permanent(m) if m.contains("INVALID_FIELD happened")
        ));
        assert!(matches!(
            classify_record_error(&[record_error("REQUEST_LIMIT_EXCEEDED")], WAIT),
            ConnectorError::RetryAfter { .. }
        ));
        assert!(already_deleted(&[record_error("ENTITY_IS_DELETED")]));
        assert!(!already_deleted(&[record_error("INVALID_FIELD")]));
        assert!(!already_deleted(&[]));
    }
}
