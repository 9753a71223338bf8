//! Google's error envelope, as every Google API answers a failed call: a `google.rpc.Status`
//! (`{"error": {"code", "message", "status", "details"}}`) whose details carry the reason
//! (`ErrorInfo`), the fields at fault (`BadRequest`) and how long to wait (`RetryInfo`). Each
//! Google connector words its own error text from it.

use std::time::Duration;

use serde_json::Value;

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
