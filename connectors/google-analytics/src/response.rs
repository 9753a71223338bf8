//! Classification of User Deletion API answers: success, an access token to refresh, retry
//! after a delay, retry, or a permanent refusal with Google's own reason and message.
//!
//! The API answers errors in Google's JSON envelope
//! `{"error":{"code","message","status","errors":[{"domain","reason","message"}]}}`. Google
//! Analytics reports quota exhaustion as `403` (reasons `rateLimitExceeded`,
//! `userRateLimitExceeded`, `quotaExceeded`, `dailyLimitExceeded`) or as `429
//! RESOURCE_EXHAUSTED`; those are waits, not refusals.

use std::time::Duration;

use chrono::{DateTime, Days, NaiveTime, Utc};
use hush_connector_kit::google::{self, RpcStatus};
use hush_connector_kit::http::{classify_http_status, VendorAnswer};
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

/// Wait after a rate-limit answer that says nothing about when to come back: the User
/// Deletion API allows 1.5 requests a second per property, but its daily quota is shared by
/// everything the cloud project calls.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Hour (UTC) at which Google's daily quotas reset: midnight Pacific Standard Time (an hour
/// after midnight during daylight saving time, so the wait is never too short).
const DAILY_RESET_HOUR_UTC: u32 = 8;

/// Reasons of a `403` that mean "slow down", not "forbidden".
const RATE_REASONS: [&str; 3] = [
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "quotaExceeded",
];
/// Reason of a `403` that means the day's quota is spent.
const DAILY_REASON: &str = "dailyLimitExceeded";

/// What one User Deletion API answer means: a success carries the body parsed as JSON; only a
/// `401` asks for a new token.
pub type Verdict = google::Verdict<Value>;

/// Classifies an answer received at `now`: quota answers wait for `Retry-After`, else
/// `RetryInfo.retryDelay`, else [`DEFAULT_RETRY_AFTER`] (a spent daily quota waits until it
/// resets); 408 and 5xx are transient; 401 asks for a new token; every other 4xx
/// (`badRequest`, `insufficientPermissions`, `notFound`, …) is permanent with Google's reason
/// and message. A 2xx whose body is not JSON is transient.
pub fn classify(answer: &VendorAnswer, now: DateTime<Utc>) -> Verdict {
    let status = answer.status;
    if (200..300).contains(&status) {
        return match serde_json::from_str(&answer.body) {
            Ok(value) => Verdict::Success(value),
            Err(error) => Verdict::Failed(ConnectorError::Transient(format!(
                "Google Analytics answered HTTP {status} with unreadable JSON: {error}"
            ))),
        };
    }
    let error = RpcStatus::parse(&answer.body);
    let text = format!("Google Analytics: {}", describe(&error));
    let detail = format!("HTTP {status}: {text}");
    let header_wait = answer.retry_after_wait();
    if has_reason(&error, DAILY_REASON) {
        return Verdict::Failed(ConnectorError::RetryAfter {
            after: header_wait.unwrap_or_else(|| until_daily_reset(now)),
            detail,
        });
    }
    let rate_limited = status == 429
        || error.status == "RESOURCE_EXHAUSTED"
        || RATE_REASONS.iter().any(|r| has_reason(&error, r));
    if rate_limited {
        return Verdict::Failed(ConnectorError::RetryAfter {
            after: header_wait
                .or(error.retry_delay)
                .unwrap_or(DEFAULT_RETRY_AFTER),
            detail,
        });
    }
    if status == 401 {
        return Verdict::Unauthenticated(detail);
    }
    Verdict::Failed(
        classify_http_status(status, answer.retry_after.as_deref(), &text)
            .unwrap_or(ConnectorError::Permanent(detail)),
    )
}

/// Time from `now` to the next reset of Google's daily quotas.
fn until_daily_reset(now: DateTime<Utc>) -> Duration {
    let reset_time = NaiveTime::from_hms_opt(DAILY_RESET_HOUR_UTC, 0, 0).expect("a valid hour");
    let today = now.date_naive().and_time(reset_time).and_utc();
    let next = if today > now {
        today
    } else {
        today + Days::new(1)
    };
    (next - now).to_std().unwrap_or(DEFAULT_RETRY_AFTER)
}

/// Google's labels for an error (its status, then every reason it gives) before its message.
fn describe(error: &RpcStatus) -> String {
    let mut labels: Vec<&str> = Vec::new();
    if !error.status.is_empty() {
        labels.push(&error.status);
    }
    labels.extend(error.error_reasons.iter().map(String::as_str));
    labels.extend(error.reasons.iter().map(String::as_str));
    if labels.is_empty() {
        error.message.clone()
    } else {
        format!("{}: {}", labels.join(" "), error.message)
    }
}

/// Whether either list of reasons names `reason`.
fn has_reason(error: &RpcStatus, reason: &str) -> bool {
    error
        .error_reasons
        .iter()
        .chain(&error.reasons)
        .any(|r| r == reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use hush_connector_kit::testing::vendor_answer as answer;
    use serde_json::json;

    fn error_body(code: u16, reason: &str, message: &str) -> String {
        json!({"error": {"code": code, "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}]}})
        .to_string()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 20, 30, 0).unwrap()
    }

    fn wait(verdict: Verdict) -> Duration {
        match verdict {
            Verdict::Failed(ConnectorError::RetryAfter { after, .. }) => after,
            other => panic!("not a wait: {other:?}"),
        }
    }

    #[test]
    fn a_bad_request_is_permanent_with_googles_reason_and_message() {
        let body = error_body(400, "badRequest", "Field id.type is invalid.");
        let Verdict::Failed(ConnectorError::Permanent(text)) =
            classify(&answer(400, None, &body), now())
        else {
            panic!("not permanent");
        };
        assert_eq!(
            text,
            "HTTP 400: Google Analytics: badRequest: Field id.type is invalid."
        );
    }

    #[test]
    fn missing_permission_is_permanent_but_a_rate_limit_403_waits() {
        let denied = error_body(
            403,
            "insufficientPermissions",
            "User does not have permission",
        );
        assert!(matches!(
            classify(&answer(403, None, &denied), now()),
            Verdict::Failed(ConnectorError::Permanent(t)) if t.contains("insufficientPermissions")
        ));
        let limited = error_body(403, "userRateLimitExceeded", "User Rate Limit Exceeded");
        assert_eq!(
            wait(classify(&answer(403, None, &limited), now())),
            DEFAULT_RETRY_AFTER
        );
        assert_eq!(
            wait(classify(&answer(403, Some("3"), &limited), now())),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn a_spent_daily_quota_waits_until_it_resets() {
        let spent = error_body(
            403,
            "dailyLimitExceeded",
            "Quota Error: profileId has exceeded the daily request limit.",
        );
        // 20:30 UTC → 08:00 UTC the next day.
        assert_eq!(
            wait(classify(&answer(403, None, &spent), now())),
            Duration::from_secs(11 * 3600 + 30 * 60)
        );
        let early = Utc.with_ymd_and_hms(2026, 12, 3, 7, 0, 0).unwrap();
        assert_eq!(
            wait(classify(&answer(403, None, &spent), early)),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn resource_exhausted_honours_retry_after_then_retry_delay_then_default() {
        let body = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}]}})
        .to_string();
        assert_eq!(
            wait(classify(&answer(429, Some("7"), &body), now())),
            Duration::from_secs(7)
        );
        assert_eq!(
            wait(classify(&answer(429, None, &body), now())),
            Duration::from_secs(12)
        );
        assert_eq!(
            wait(classify(&answer(429, None, "{}"), now())),
            DEFAULT_RETRY_AFTER
        );
    }

    #[test]
    fn server_errors_are_transient_and_401_asks_for_a_token() {
        let backend = error_body(503, "backendError", "Backend Error");
        assert!(matches!(
            classify(&answer(503, None, &backend), now()),
            Verdict::Failed(ConnectorError::Transient(t)) if t.contains("backendError")
        ));
        assert!(matches!(
            classify(&answer(401, None, &error_body(401, "authError", "Invalid Credentials")), now()),
            Verdict::Unauthenticated(t) if t.contains("Invalid Credentials")
        ));
        assert_eq!(
            classify(
                &answer(200, None, r#"{"kind":"analytics#userDeletionRequest"}"#),
                now()
            ),
            Verdict::Success(json!({"kind": "analytics#userDeletionRequest"}))
        );
        assert!(matches!(
            classify(&answer(200, None, "<html>"), now()),
            Verdict::Failed(ConnectorError::Transient(_))
        ));
    }
}
