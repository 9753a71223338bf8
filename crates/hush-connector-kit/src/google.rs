//! Google's error envelope, as every Google API answers a failed call: a `google.rpc.Status`
//! (`{"error": {"code", "message", "status", "details"}}`) whose details carry the reason
//! (`ErrorInfo`), the fields at fault (`BadRequest`) and how long to wait (`RetryInfo`). Each
//! Google connector words its own error text from it, and reads an answer into a [`Verdict`].
//! [`api`] holds the HTTP client and access tokens of every Google connector,
//! [`customer_match`] what both Customer Match connectors share.

pub mod api;
pub mod customer_match;

use std::time::Duration;

use hush_contracts::connector::ConnectorError;
use serde_json::Value;

use crate::http::classify_http_status;
use crate::oauth::Authorized;

/// What one answer of a Google API, called with an OAuth access token, means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<T> {
    /// A 2xx, with what was read from it.
    Success(T),
    /// The access token was refused (expired or revoked): refresh it and call again.
    Unauthenticated(String),
    /// Anything else.
    Failed(ConnectorError),
}

impl<T> Verdict<T> {
    /// The verdict as [`crate::oauth::AccessTokens::call`] takes it: a refused token asks for
    /// a fresh one, a failure is the call's error.
    pub fn into_authorized(self) -> Result<Authorized<T>, ConnectorError> {
        match self {
            Verdict::Success(value) => Ok(Authorized::Accepted(value)),
            Verdict::Unauthenticated(detail) => Ok(Authorized::Refused(detail)),
            Verdict::Failed(error) => Err(error),
        }
    }

    /// A success read on with `read` (a failure of `read` is the verdict's failure); a
    /// refused token or a failure as it was.
    pub fn and_then<U>(self, read: impl FnOnce(T) -> Result<U, ConnectorError>) -> Verdict<U> {
        match self {
            Verdict::Success(value) => match read(value) {
                Ok(read) => Verdict::Success(read),
                Err(error) => Verdict::Failed(error),
            },
            Verdict::Unauthenticated(detail) => Verdict::Unauthenticated(detail),
            Verdict::Failed(error) => Verdict::Failed(error),
        }
    }
}

/// The verdict on a Google error answer by its HTTP `status` and the envelope's canonical
/// status name `canonical`: a 401 or `UNAUTHENTICATED` asks for a new token, a 429 or
/// `RESOURCE_EXHAUSTED` waits `wait`, `UNAVAILABLE`, `INTERNAL`, `DEADLINE_EXCEEDED` and
/// `ABORTED` are transient (each with `detail`); anything else goes by the HTTP status with
/// Google's `text` ([`classify_http_status`]), and is permanent with `detail` should that
/// status be a success.
pub fn error_verdict<T>(
    status: u16,
    canonical: &str,
    wait: Duration,
    detail: String,
    text: &str,
) -> Verdict<T> {
    match (status, canonical) {
        (401, _) | (_, "UNAUTHENTICATED") => Verdict::Unauthenticated(detail),
        (429, _) | (_, "RESOURCE_EXHAUSTED") => Verdict::Failed(ConnectorError::RetryAfter {
            after: wait,
            detail,
        }),
        (_, "UNAVAILABLE" | "INTERNAL" | "DEADLINE_EXCEEDED" | "ABORTED") => {
            Verdict::Failed(ConnectorError::Transient(detail))
        }
        _ => Verdict::Failed(
            classify_http_status(status, None, text).unwrap_or(ConnectorError::Permanent(detail)),
        ),
    }
}

/// The parts of a `google.rpc.Status` that say what went wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RpcStatus {
    /// The canonical code's name (`INVALID_ARGUMENT`, `RESOURCE_EXHAUSTED`, …); empty when the
    /// body is not Google's envelope.
    pub status: String,
    /// Google's message; the body's first 500 characters when it is not Google's envelope.
    pub message: String,
    /// The `reason` of each entry of the older `errors` list some APIs still send (Analytics).
    pub error_reasons: Vec<String>,
    /// The `reason` of each `google.rpc.ErrorInfo` detail.
    pub reasons: Vec<String>,
    /// Each `google.rpc.BadRequest` field violation, as `field: description`.
    pub violations: Vec<String>,
    /// A `google.rpc.RetryInfo` detail's `retryDelay`.
    pub retry_delay: Option<Duration>,
}

impl RpcStatus {
    /// Reads Google's envelope from an error answer's `body`.
    pub fn parse(body: &str) -> Self {
        let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let error = &parsed["error"];
        if !error.is_object() {
            return Self {
                message: body.chars().take(500).collect(),
                ..Self::default()
            };
        }
        let mut status = Self {
            status: error["status"].as_str().unwrap_or_default().to_owned(),
            message: error["message"].as_str().unwrap_or_default().to_owned(),
            error_reasons: error["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["reason"].as_str().map(str::to_owned))
                .collect(),
            ..Self::default()
        };
        for detail in error["details"].as_array().into_iter().flatten() {
            let kind = detail["@type"].as_str().unwrap_or_default();
            if kind.ends_with("google.rpc.ErrorInfo") {
                status
                    .reasons
                    .extend(detail["reason"].as_str().map(str::to_owned));
            } else if kind.ends_with("google.rpc.BadRequest") {
                for violation in detail["fieldViolations"].as_array().into_iter().flatten() {
                    status.violations.push(format!(
                        "{}: {}",
                        violation["field"].as_str().unwrap_or("?"),
                        violation["description"].as_str().unwrap_or_default()
                    ));
                }
            } else if kind.ends_with("google.rpc.RetryInfo") {
                status.retry_delay = detail["retryDelay"].as_str().and_then(parse_proto_duration);
            }
        }
        status
    }
}

/// A protobuf JSON duration such as `"30s"` or `"1.5s"`; `None` for anything else, a negative
/// or a non-finite one.
pub fn parse_proto_duration(text: &str) -> Option<Duration> {
    let seconds: f64 = text.strip_suffix('s')?.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_detail_google_sends_is_read() {
        let body = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
            "message": "Request contains an invalid argument.",
            "errors": [{"reason": "badRequest"}],
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "INVALID_SHA256_FORMAT"},
                {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [
                    {"field": "audienceMembers[0]", "description": "not hex"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}});
        assert_eq!(
            RpcStatus::parse(&body.to_string()),
            RpcStatus {
                status: "INVALID_ARGUMENT".into(),
                message: "Request contains an invalid argument.".into(),
                error_reasons: vec!["badRequest".into()],
                reasons: vec!["INVALID_SHA256_FORMAT".into()],
                violations: vec!["audienceMembers[0]: not hex".into()],
                retry_delay: Some(Duration::from_millis(1500)),
            }
        );
    }

    #[test]
    fn a_body_that_is_not_googles_envelope_is_its_own_message() {
        let long = "x".repeat(600);
        for body in ["<html>Bad Gateway</html>", r#"{"error": "text"}"#, &long] {
            let status = RpcStatus::parse(body);
            assert_eq!(status.status, "");
            assert_eq!(status.message, body.chars().take(500).collect::<String>());
        }
    }

    #[test]
    fn an_error_is_judged_by_its_canonical_status_before_its_http_status() {
        let wait = Duration::from_secs(30);
        let judged =
            |status, canonical| error_verdict::<()>(status, canonical, wait, "d".into(), "t");
        assert_eq!(judged(401, ""), Verdict::Unauthenticated("d".into()));
        assert_eq!(
            judged(400, "UNAUTHENTICATED"),
            Verdict::Unauthenticated("d".into())
        );
        let waits = Verdict::Failed(ConnectorError::RetryAfter {
            after: wait,
            detail: "d".into(),
        });
        assert_eq!(judged(429, ""), waits);
        assert_eq!(judged(403, "RESOURCE_EXHAUSTED"), waits);
        for canonical in ["UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "ABORTED"] {
            assert_eq!(
                judged(409, canonical),
                Verdict::Failed(ConnectorError::Transient("d".into()))
            );
        }
        assert_eq!(
            judged(400, "INVALID_ARGUMENT"),
            Verdict::Failed(ConnectorError::Permanent("HTTP 400: t".into()))
        );
        assert_eq!(
            judged(502, ""),
            Verdict::Failed(ConnectorError::Transient("HTTP 502: t".into()))
        );
        assert_eq!(
            judged(200, "ODD"),
            Verdict::Failed(ConnectorError::Permanent("d".into()))
        );
    }

    #[test]
    fn a_verdict_becomes_what_the_token_holder_takes() {
        assert_eq!(
            Verdict::Success(7).into_authorized(),
            Ok(Authorized::Accepted(7))
        );
        assert_eq!(
            Verdict::<u8>::Unauthenticated("expired".into()).into_authorized(),
            Ok(Authorized::Refused("expired".into()))
        );
        assert_eq!(
            Verdict::<u8>::Failed(ConnectorError::Transient("x".into())).into_authorized(),
            Err(ConnectorError::Transient("x".into()))
        );
    }

    #[test]
    fn a_success_is_read_on_and_anything_else_kept() {
        let read = |n: u8| {
            n.checked_add(1)
                .ok_or(ConnectorError::Transient("overflow".into()))
        };
        assert_eq!(Verdict::Success(1).and_then(read), Verdict::Success(2));
        assert_eq!(
            Verdict::Success(255).and_then(read),
            Verdict::Failed(ConnectorError::Transient("overflow".into()))
        );
        assert_eq!(
            Verdict::Unauthenticated("expired".into()).and_then(read),
            Verdict::Unauthenticated("expired".into())
        );
        assert_eq!(
            Verdict::Failed(ConnectorError::Permanent("no".into())).and_then(read),
            Verdict::Failed(ConnectorError::Permanent("no".into()))
        );
    }

    #[test]
    fn proto_durations_are_seconds_with_an_s() {
        assert_eq!(parse_proto_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_proto_duration("0.25s"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_proto_duration("30"), None);
        assert_eq!(parse_proto_duration("-1s"), None);
        assert_eq!(parse_proto_duration("infs"), None);
    }
}
