//! The retry topic's bookkeeping: how many calls a request has had, since when, and when it may
//! be tried again; and for a re-verification, the outcome whose read-back is still `PENDING`
//! and how often it was read back since. Carried in headers on the original request bytes.

use std::time::Duration;

use hush_contracts::events::{Confirmation, EpochMillis, VerificationStatus};
use hush_runtime::kafka::IncomingMessage;
use rand::Rng;

/// Header: vendor calls made so far for this request and connector.
pub const ATTEMPTS_HEADER: &str = "hush.retry.attempts";
/// Header: first call, epoch milliseconds.
pub const FIRST_ATTEMPT_HEADER: &str = "hush.retry.first_attempt_at";
/// Header: not to be tried before, epoch milliseconds.
pub const NOT_BEFORE_HEADER: &str = "hush.retry.not_before";
/// Header: the last error (no personal data).
pub const LAST_ERROR_HEADER: &str = "hush.retry.last_error";

/// Header: the confirmation whose read-back is still `PENDING` (JSON; its evidence carries no
/// personal data). Its presence makes the message a re-verification: the outcome is read back
/// again and never applied again. A re-drive keeps it (its prefix is not `hush.retry.`).
pub const REVERIFY_HEADER: &str = "hush.reverify.confirmation";
/// Header: read-backs made since the outcome was confirmed `PENDING` (reset by a re-drive).
pub const READ_BACKS_HEADER: &str = "hush.retry.read_backs";
/// Header: when the outcome was first confirmed `PENDING`, epoch milliseconds (reset by a
/// re-drive).
pub const PENDING_SINCE_HEADER: &str = "hush.retry.pending_since";

/// A re-verification: an outcome confirmed with a `PENDING` read-back, to be read back again.
#[derive(Debug, Clone, PartialEq)]
pub struct Reverify {
    /// The confirmation as last published (verification `PENDING`).
    pub pending: Confirmation,
    /// Read-backs made since it was confirmed.
    pub read_backs: u32,
    /// When it was first confirmed `PENDING`.
    pub pending_since: EpochMillis,
}

impl Reverify {
    /// The re-verification `message` carries: `None` for a request to apply, an `Err` naming
    /// the header when the header is not a pending confirmation. A re-driven message without
    /// its counting headers starts counting again at `now`.
    pub fn of(message: &IncomingMessage, now: EpochMillis) -> Option<Result<Self, String>> {
        let header = message.header(REVERIFY_HEADER)?;
        let pending = match serde_json::from_str::<Confirmation>(header) {
            Ok(pending) if pending.verification == VerificationStatus::Pending => pending,
            Ok(other) => {
                return Some(Err(format!(
                    "header {REVERIFY_HEADER} holds a confirmation whose verification is {:?}, not PENDING",
                    other.verification
                )))
            }
            Err(error) => {
                return Some(Err(format!(
                    "header {REVERIFY_HEADER} is not a confirmation: {error}"
                )))
            }
        };
        let number = |name| message.header(name).and_then(|v| v.parse::<i64>().ok());
        Some(Ok(Self {
            pending,
            read_backs: number(READ_BACKS_HEADER).unwrap_or(0).max(0) as u32,
            pending_since: number(PENDING_SINCE_HEADER).unwrap_or(now),
        }))
    }
}

/// Retry bookkeeping read from a message (zero for a fresh request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryState {
    /// Calls made so far.
    pub attempts: u32,
    /// First call.
    pub first_attempt_at: Option<EpochMillis>,
    /// Earliest next try.
    pub not_before: Option<EpochMillis>,
}

impl RetryState {
    /// Reads the state from `message`'s headers.
    pub fn of(message: &IncomingMessage) -> Self {
        let number = |name| message.header(name).and_then(|v| v.parse::<i64>().ok());
        Self {
            attempts: number(ATTEMPTS_HEADER).unwrap_or(0).max(0) as u32,
            first_attempt_at: number(FIRST_ATTEMPT_HEADER),
            not_before: number(NOT_BEFORE_HEADER),
        }
    }
}

/// Delay before retry number `attempts` from the retry topic: exponential from `initial`, capped
/// at `max`, with ±50 % jitter, and never shorter than what the vendor asked for.
pub fn retry_delay(
    attempts: u32,
    initial: Duration,
    max: Duration,
    vendor_asked: Option<Duration>,
) -> Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    let base = initial.saturating_mul(1u32 << exponent).min(max);
    let jitter = rand::thread_rng().gen_range(0.5..1.5);
    let delay = base.mul_f64(jitter).min(max);
    vendor_asked.map_or(delay, |asked| delay.max(asked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_the_cap_and_honour_the_vendor() {
        let initial = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        let first = retry_delay(1, initial, max, None);
        assert!(first >= Duration::from_millis(500) && first <= Duration::from_millis(1500));
        let fourth = retry_delay(4, initial, max, None);
        assert!(fourth >= Duration::from_secs(4) && fourth <= Duration::from_secs(12));
        assert!(retry_delay(30, initial, max, None) <= max);
        assert!(
            retry_delay(1, initial, max, Some(Duration::from_secs(90))) >= Duration::from_secs(90)
        );
    }

    fn pending() -> Confirmation {
        serde_json::from_value(serde_json::json!({
            "request_id": "r1", "subject_key": "s1", "connector_id": "crm",
            "role": "SERVICE_PROVIDER", "action": "FLAGGED", "exception_basis": null,
            "attempts": 1, "first_attempt_at": 10, "last_attempt_at": 10, "completed_at": 20,
            "verification": "PENDING", "evidence": {"http_status": "200"}
        }))
        .unwrap()
    }

    fn message_with(headers: Vec<(&str, String)>) -> IncomingMessage {
        IncomingMessage {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            key: None,
            payload: None,
            headers: headers
                .into_iter()
                .map(|(name, value)| (name.to_string(), value.into_bytes()))
                .collect(),
            timestamp_ms: None,
        }
    }

    #[test]
    fn a_reverification_is_read_from_its_headers() {
        let json = serde_json::to_string(&pending()).unwrap();
        let message = message_with(vec![
            (REVERIFY_HEADER, json.clone()),
            (READ_BACKS_HEADER, "3".into()),
            (PENDING_SINCE_HEADER, "500".into()),
        ]);
        let reverify = Reverify::of(&message, 9_000).unwrap().unwrap();
        assert_eq!(reverify.pending, pending());
        assert_eq!((reverify.read_backs, reverify.pending_since), (3, 500));
        // Re-driven: the counting headers were dropped, so counting starts again now.
        let redriven = message_with(vec![(REVERIFY_HEADER, json)]);
        let reverify = Reverify::of(&redriven, 9_000).unwrap().unwrap();
        assert_eq!((reverify.read_backs, reverify.pending_since), (0, 9_000));
        assert!(Reverify::of(&message_with(vec![]), 0).is_none());
    }

    #[test]
    fn a_reverify_header_that_is_no_pending_confirmation_is_named() {
        let garbled = message_with(vec![(REVERIFY_HEADER, "{".into())]);
        let error = Reverify::of(&garbled, 0).unwrap().unwrap_err();
        assert!(error.contains(REVERIFY_HEADER), "{error}");
        let mut verified = pending();
        verified.verification = VerificationStatus::Verified;
        let settled = message_with(vec![(
            REVERIFY_HEADER,
            serde_json::to_string(&verified).unwrap(),
        )]);
        let error = Reverify::of(&settled, 0).unwrap().unwrap_err();
        assert!(error.contains("not PENDING"), "{error}");
    }

    #[test]
    fn state_is_read_from_headers() {
        let message = IncomingMessage {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            key: None,
            payload: None,
            headers: vec![
                (ATTEMPTS_HEADER.into(), b"3".to_vec()),
                (FIRST_ATTEMPT_HEADER.into(), b"100".to_vec()),
                (NOT_BEFORE_HEADER.into(), b"200".to_vec()),
            ],
            timestamp_ms: None,
        };
        assert_eq!(
            RetryState::of(&message),
            RetryState {
                attempts: 3,
                first_attempt_at: Some(100),
                not_before: Some(200)
            }
        );
    }
}
