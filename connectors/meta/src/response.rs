//! Classifies an answer of Meta's `DELETE /{audience_id}/users`: success, retry after a wait,
//! retry, or a permanent refusal with Meta's own text.

use std::collections::BTreeSet;
use std::time::Duration;

use hush_connector_kit::http::VendorAnswer;
use hush_contracts::connector::ConnectorError;
use serde::{Deserialize, Deserializer};

/// Graph API error codes that mean "slow down": application, user, business-use-case, API-call
/// and Custom Audience (80003) throttling.
pub const RATE_LIMIT_CODES: [i64; 5] = [4, 17, 32, 613, 80_003];

/// Error code of an invalid or expired access token (OAuthException).
pub const INVALID_TOKEN_CODE: i64 = 190;
/// Graph error code for a call to a Marketing API version Meta no longer serves.
const DEPRECATED_VERSION_CODE: i64 = 2635;

/// Error subcode of "Audience Upload Blocked": the audience is flagged (`operation_status`
/// 471) and refuses membership updates until its restrictions are resolved.
pub const AUDIENCE_BLOCKED_SUBCODE: i64 = 1_713_230;

/// Prefix of the error text when the audience is flagged; the text also carries
/// `audience_blocked=true` so the flag survives into the confirmation's evidence.
pub const AUDIENCE_BLOCKED: &str = "audience blocked";

/// Meta's answer to a successful removal call.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UsersResponse {
    /// Audience the rows were applied to.
    #[serde(deserialize_with = "string_or_number")]
    pub audience_id: String,
    /// Session Meta filed the rows under.
    #[serde(default, deserialize_with = "string_or_number")]
    pub session_id: String,
    /// Rows Meta received.
    pub num_received: u64,
    /// Rows Meta could not use.
    #[serde(default)]
    pub num_invalid_entries: u64,
    /// Samples of the invalid rows (an object keyed by value, or a list).
    #[serde(default)]
    pub invalid_entry_samples: serde_json::Value,
}

impl UsersResponse {
    /// The values Meta reported among the invalid samples.
    pub fn invalid_samples(&self) -> BTreeSet<String> {
        match &self.invalid_entry_samples {
            serde_json::Value::Object(map) => map.keys().cloned().collect(),
            serde_json::Value::Array(values) => values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => BTreeSet::new(),
        }
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// The Graph API error object; Meta may leave out any field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct GraphError {
    /// Human-readable text.
    pub message: String,
    /// Exception type, e.g. `OAuthException`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Error code.
    pub code: i64,
    /// Error subcode.
    pub error_subcode: Option<i64>,
    /// Title meant for the advertiser.
    pub error_user_title: Option<String>,
    /// Message meant for the advertiser.
    pub error_user_msg: Option<String>,
    /// Whether Meta says a retry may succeed.
    pub is_transient: Option<bool>,
    /// Meta's trace id, for support tickets.
    pub fbtrace_id: Option<String>,
}

impl GraphError {
    fn describe(&self) -> String {
        let mut text = format!("{} (code {}", self.message, self.code);
        if let Some(subcode) = self.error_subcode {
            text.push_str(&format!(", subcode {subcode}"));
        }
        text.push(')');
        if let Some(user_msg) = &self.error_user_msg {
            text.push_str(&format!(": {user_msg}"));
        }
        if let Some(trace) = &self.fbtrace_id {
            text.push_str(&format!(" [fbtrace_id {trace}]"));
        }
        text
    }
}

#[derive(Deserialize)]
struct GraphErrorEnvelope {
    error: GraphError,
}

/// Classifies one answer. `default_wait` is used when Meta throttles without `Retry-After`.
pub fn classify(
    answer: &VendorAnswer,
    default_wait: Duration,
) -> Result<UsersResponse, ConnectorError> {
    let (status, body) = (answer.status, answer.body.as_str());
    let graph_error = serde_json::from_str::<GraphErrorEnvelope>(body)
        .ok()
        .map(|e| e.error);
    if (200..300).contains(&status) && graph_error.is_none() {
        return serde_json::from_str(body).map_err(|e| {
            ConnectorError::Transient(format!(
                "HTTP {status} from Meta with an unreadable body ({e}); the call is safe to repeat"
            ))
        });
    }
    let wait = || answer.wait_or(default_wait);
    let Some(error) = graph_error else {
        if status == 429 {
            return Err(ConnectorError::RetryAfter {
                after: wait(),
                detail: format!("HTTP 429 from Meta: {body}"),
            });
        }
        return Err(answer.failure(body).unwrap_or_else(|| {
            ConnectorError::Transient(format!("HTTP {status} from Meta without a result"))
        }));
    };
    let detail = format!("HTTP {status}: {}", error.describe());
    if error.code == INVALID_TOKEN_CODE {
        return Err(ConnectorError::Permanent(format!(
            "Meta access token is invalid or expired; issue a new system-user token and update \
             credentials.access_token ({detail})"
        )));
    }
    if error.code == DEPRECATED_VERSION_CODE {
        return Err(ConnectorError::Permanent(format!(
            "Meta no longer serves the configured Marketing API version; set \
             settings.api_version to a version Meta serves today (the connector README lists \
             them) and restart ({detail})"
        )));
    }
    if error.error_subcode == Some(AUDIENCE_BLOCKED_SUBCODE) {
        return Err(ConnectorError::Permanent(format!(
            "{AUDIENCE_BLOCKED}: audience_blocked=true; the audience is flagged (operation_status \
             471) and refuses updates until its restrictions are resolved in Audience Manager \
             ({detail})"
        )));
    }
    if status == 429 || RATE_LIMIT_CODES.contains(&error.code) {
        return Err(ConnectorError::RetryAfter {
            after: wait(),
            detail,
        });
    }
    if status >= 500 || status == 408 || error.is_transient == Some(true) || error.code == 2 {
        return Err(ConnectorError::Transient(detail));
    }
    Err(ConnectorError::Permanent(detail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_connector_kit::testing::vendor_answer;

    const MINUTE: Duration = Duration::from_secs(60);

    /// How an HTTP 400 whose body is the Graph API error `code` (and `subcode`) is classified.
    fn classify_graph_error(
        code: i64,
        subcode: Option<i64>,
    ) -> Result<UsersResponse, ConnectorError> {
        let body = serde_json::json!({"error": {
            "message": "msg", "type": "OAuthException", "code": code,
            "error_subcode": subcode, "fbtrace_id": "Abc"
        }});
        classify(&vendor_answer(400, None, &body.to_string()), MINUTE)
    }

    #[test]
    fn a_deprecated_version_says_which_setting_to_change() {
        let err = classify_graph_error(2635, None).unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Permanent(d) if d.contains("settings.api_version") && d.contains("code 2635")),
            "{err:?}"
        );
    }

    #[test]
    fn success_body_is_parsed() {
        let body = r#"{"audience_id":"123","session_id":"9","num_received":2,"num_invalid_entries":1,"invalid_entry_samples":{"bad":"invalid"}}"#;
        let response = classify(&vendor_answer(200, None, body), MINUTE).unwrap();
        assert_eq!(response.audience_id, "123");
        assert_eq!(response.num_received, 2);
        assert_eq!(
            response.invalid_samples(),
            BTreeSet::from(["bad".to_owned()])
        );
    }

    #[test]
    fn throttling_codes_wait_the_default_without_retry_after() {
        for code in RATE_LIMIT_CODES {
            assert_eq!(
                classify_graph_error(code, None),
                Err(ConnectorError::RetryAfter {
                    after: MINUTE,
                    detail: "HTTP 400: msg (code ".to_owned()
                        + &code.to_string()
                        + ") [fbtrace_id Abc]"
                })
            );
        }
    }

    #[test]
    fn http_429_honours_retry_after() {
        let err = classify(&vendor_answer(429, Some("7"), "slow down"), MINUTE).unwrap_err();
        assert!(
            matches!(err, ConnectorError::RetryAfter { after, .. } if after == Duration::from_secs(7))
        );
    }

    #[test]
    fn expired_token_is_permanent_and_says_what_to_do() {
        let err = classify_graph_error(190, Some(463)).unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Permanent(d) if d.contains("credentials.access_token") && d.contains("subcode 463")),
            "{err:?}"
        );
    }

    #[test]
    fn flagged_audience_is_permanent_with_the_blocked_flag() {
        let err = classify_graph_error(100, Some(1_713_230)).unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Permanent(d) if d.starts_with("audience blocked: audience_blocked=true")),
            "{err:?}"
        );
    }

    #[test]
    fn server_errors_and_transient_flags_are_retried() {
        assert!(matches!(
            classify(&vendor_answer(500, None, "oops"), MINUTE),
            Err(ConnectorError::Transient(_))
        ));
        let transient = r#"{"error":{"message":"try later","code":1,"is_transient":true}}"#;
        assert!(matches!(
            classify(&vendor_answer(400, None, transient), MINUTE),
            Err(ConnectorError::Transient(_))
        ));
    }

    #[test]
    fn other_graph_errors_are_permanent_with_meta_text() {
        let err = classify_graph_error(100, Some(33)).unwrap_err();
        assert_eq!(
            err,
            ConnectorError::Permanent(
                "HTTP 400: msg (code 100, subcode 33) [fbtrace_id Abc]".into()
            )
        );
    }
}
