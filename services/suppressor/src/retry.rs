//! The retry topic's bookkeeping: how many calls a request has had, since when, and when it may
//! be tried again. Carried in headers on the original request bytes.

use std::time::Duration;

use hush_contracts::events::EpochMillis;
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
