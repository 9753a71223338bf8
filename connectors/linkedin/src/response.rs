//! Classifies an answer of LinkedIn's DMP segment users endpoint: success with per-element
//! statuses, retry after a wait, retry, or a permanent refusal with LinkedIn's own text.

use std::time::Duration;

use hush_connector_kit::http::{classify_http_status, VendorAnswer};
use hush_contracts::connector::ConnectorError;
use serde::Deserialize;

/// Status of one element of a `BATCH_CREATE`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ElementStatus {
    /// HTTP-like status of the element (201 when applied).
    pub status: u16,
    /// LinkedIn's text when the element failed.
    #[serde(default)]
    pub message: Option<String>,
}

/// LinkedIn's answer to a successful `BATCH_CREATE`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BatchResponse {
    /// One status per element, in request order.
    pub elements: Vec<ElementStatus>,
}

/// LinkedIn's error body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LinkedInError {
    /// Human-readable text.
    #[serde(default)]
    pub message: String,
    /// Symbolic code, e.g. `INVALID_ACCESS_TOKEN`.
    #[serde(default)]
    pub code: Option<String>,
    /// Numeric service error code.
    #[serde(default, rename = "serviceErrorCode")]
    pub service_error_code: Option<i64>,
}

impl LinkedInError {
    fn describe(&self) -> String {
        let mut text = self.message.clone();
        if let Some(code) = &self.code {
            text.push_str(&format!(" (code {code})"));
        }
        if let Some(code) = self.service_error_code {
            text.push_str(&format!(" (serviceErrorCode {code})"));
        }
        text
    }
}

/// Classifies one answer. `default_wait` is used after a 429 without `Retry-After`.
pub fn classify(
    answer: &VendorAnswer,
    default_wait: Duration,
) -> Result<BatchResponse, ConnectorError> {
    let (status, body) = (answer.status, answer.body.as_str());
    if (200..300).contains(&status) {
        return serde_json::from_str(body).map_err(|e| {
            ConnectorError::Transient(format!(
                "HTTP {status} from LinkedIn with an unreadable body ({e}); the call is safe to \
                 repeat"
            ))
        });
    }
    let text = serde_json::from_str::<LinkedInError>(body)
        .ok()
        .filter(|e| !e.message.is_empty())
        .map_or_else(|| body.to_owned(), |e| e.describe());
    match status {
        429 => Err(ConnectorError::RetryAfter {
            after: answer.wait_or(default_wait),
            detail: format!("HTTP 429: {text}"),
        }),
        426 => Err(ConnectorError::Permanent(format!(
            "LinkedIn no longer serves the configured LinkedIn-Version; set \
             settings.linkedin_version to a version LinkedIn serves today (the connector README \
             lists them; versions are sunset about a year after release) and restart (HTTP 426: \
             {text})"
        ))),
        401 => Err(ConnectorError::Permanent(format!(
            "LinkedIn rejected the access token; refresh the OAuth token and update \
             credentials.access_token (HTTP 401: {text})"
        ))),
        _ => Err(answer.failure(&text).unwrap_or_else(|| {
            ConnectorError::Transient(format!("HTTP {status} from LinkedIn without a result"))
        })),
    }
}

/// Classifies one element's status: `None` when applied.
pub fn classify_element(element: &ElementStatus) -> Option<ConnectorError> {
    classify_http_status(
        element.status,
        None,
        element.message.as_deref().unwrap_or("element refused"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::vendor_answer;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn success_carries_per_element_statuses() {
        let response = classify(
            &vendor_answer(200, None, r#"{"elements":[{"status":201},{"status":201}]}"#),
            MINUTE,
        )
        .unwrap();
        assert_eq!(response.elements.len(), 2);
        assert_eq!(classify_element(&response.elements[0]), None);
    }

    #[test]
    fn a_429_without_retry_after_waits_the_default() {
        let body = r#"{"status":429,"code":"TOO_MANY_REQUESTS","message":"throttled"}"#;
        assert_eq!(
            classify(&vendor_answer(429, None, body), MINUTE),
            Err(ConnectorError::RetryAfter {
                after: MINUTE,
                detail: "HTTP 429: throttled (code TOO_MANY_REQUESTS)".into()
            })
        );
        assert!(matches!(
            classify(&vendor_answer(429, Some("3"), body), MINUTE),
            Err(ConnectorError::RetryAfter { after, .. }) if after == Duration::from_secs(3)
        ));
    }

    #[test]
    fn a_sunset_version_says_which_setting_to_change() {
        let body = r#"{"status":426,"code":"NONEXISTENT_VERSION","message":"Requested version 202410 is not active"}"#;
        let err = classify(&vendor_answer(426, None, body), MINUTE).unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Permanent(d) if d.contains("settings.linkedin_version") && d.contains("Requested version 202410")),
            "{err:?}"
        );
    }

    #[test]
    fn a_rejected_token_says_what_to_do() {
        let err = classify(
            &vendor_answer(
                401,
                None,
                r#"{"status":401,"message":"Invalid access token"}"#,
            ),
            MINUTE,
        )
        .unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Permanent(d) if d.contains("credentials.access_token") && d.contains("Invalid access token"))
        );
    }

    #[test]
    fn validation_errors_are_permanent_with_linkedin_text() {
        let body = r#"{"status":400,"code":"ILLEGAL_ARGUMENT","message":"bad idValue"}"#;
        assert_eq!(
            classify(&vendor_answer(400, None, body), MINUTE),
            Err(ConnectorError::Permanent(
                "HTTP 400: bad idValue (code ILLEGAL_ARGUMENT)".into()
            ))
        );
        assert!(matches!(
            classify(&vendor_answer(503, None, "down"), MINUTE),
            Err(ConnectorError::Transient(_))
        ));
    }

    #[test]
    fn a_failed_element_is_classified_by_its_status() {
        let element = ElementStatus {
            status: 400,
            message: Some("bad".into()),
        };
        assert!(
            matches!(classify_element(&element), Some(ConnectorError::Permanent(d)) if d.contains("bad"))
        );
    }
}
