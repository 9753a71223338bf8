//! Signing of webhook bodies, both ways: Hush signs its notices and the recipient signs its
//! callback the same way. The signature is `sha256=<hex HMAC-SHA256 over "{timestamp}.{body}">`
//! with the shared secret, and the timestamp (unix seconds) travels in its own header, so a
//! captured message cannot be replayed once the tolerance has passed.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the signing time, unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Hush-Timestamp";
/// Header carrying `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Hush-Signature";
/// Header carrying the request id, so the recipient can deduplicate retries.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// How far a signature's timestamp may be from the verifier's clock by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

const SCHEME: &str = "sha256=";

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The timestamp header is not a whole number of unix seconds.
    #[error("{TIMESTAMP_HEADER} is not unix seconds")]
    MalformedTimestamp,
    /// The signature header is not `sha256=<64 hex digits>`.
    #[error("{SIGNATURE_HEADER} is not of the form sha256=<hex>")]
    MalformedSignature,
    /// The timestamp is further from now than the tolerance (a replay or a skewed clock).
    #[error("signature timestamp is {skew_seconds} s away from now, more than the {tolerance_seconds} s allowed")]
    Stale {
        /// Distance between the timestamp and now, in seconds.
        skew_seconds: u64,
        /// The tolerance in force, in seconds.
        tolerance_seconds: u64,
    },
    /// The signature does not match the body and timestamp under this secret.
    #[error("signature does not match the body")]
    Mismatch,
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Hush-Signature` value for `body` signed at `timestamp` (unix seconds):
/// `sha256=<lowercase hex HMAC-SHA256(secret, "{timestamp}.{body}")>`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, &timestamp.to_string(), body).finalize();
    format!("{SCHEME}{}", hex::encode(digest.into_bytes()))
}

/// Checks a received signature: `timestamp` and `header` are the raw `X-Hush-Timestamp` and
/// `X-Hush-Signature` values, `now` is the verifier's clock in unix seconds. Succeeds only when
/// the timestamp is within `tolerance` of `now` (either side) and the HMAC matches; the
/// comparison takes the same time whichever byte differs.
pub fn verify_signature(
    secret: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let timestamp = timestamp.trim();
    let signed_at: i64 = if !timestamp.is_empty() && timestamp.bytes().all(|b| b.is_ascii_digit()) {
        timestamp
            .parse()
            .map_err(|_| SignatureError::MalformedTimestamp)?
    } else {
        return Err(SignatureError::MalformedTimestamp);
    };
    let claimed = header
        .trim()
        .strip_prefix(SCHEME)
        .and_then(|hex_digest| hex::decode(hex_digest).ok())
        .filter(|bytes| bytes.len() == 32)
        .ok_or(SignatureError::MalformedSignature)?;
    let skew = now.abs_diff(signed_at);
    if skew > tolerance.as_secs() {
        return Err(SignatureError::Stale {
            skew_seconds: skew,
            tolerance_seconds: tolerance.as_secs(),
        });
    }
    mac(secret, timestamp, body)
        .verify_slice(&claimed)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_0123456789abcdef";
    const BODY: &[u8] = br#"{"request_id":"r-1"}"#;
    // printf '1700000000.{"request_id":"r-1"}' | openssl dgst -sha256 -hmac 'whsec_test_0123456789abcdef'
    const EXPECTED: &str =
        "sha256=9eb0f7128db7429e7cda373ead662e81ab761e9f2c12f2a6388b9c10ab74eb63";

    #[test]
    fn signature_matches_an_independently_computed_hmac() {
        assert_eq!(sign(SECRET, 1_700_000_000, BODY), EXPECTED);
    }

    #[test]
    fn a_fresh_good_signature_verifies() {
        let now = 1_700_000_000 + 30;
        assert_eq!(
            verify_signature(SECRET, "1700000000", BODY, EXPECTED, now, DEFAULT_TOLERANCE),
            Ok(())
        );
    }

    #[test]
    fn a_tampered_body_is_a_mismatch() {
        let tampered = br#"{"request_id":"r-2"}"#;
        assert_eq!(
            verify_signature(
                SECRET,
                "1700000000",
                tampered,
                EXPECTED,
                1_700_000_000,
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_moved_timestamp_is_a_mismatch() {
        assert_eq!(
            verify_signature(
                SECRET,
                "1700000001",
                BODY,
                EXPECTED,
                1_700_000_000,
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn another_secret_is_a_mismatch() {
        assert_eq!(
            verify_signature(
                "another-secret-of-16b",
                "1700000000",
                BODY,
                EXPECTED,
                1_700_000_000,
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_stale_timestamp_is_refused_even_with_a_good_signature() {
        let now = 1_700_000_000 + 301;
        assert_eq!(
            verify_signature(SECRET, "1700000000", BODY, EXPECTED, now, DEFAULT_TOLERANCE),
            Err(SignatureError::Stale {
                skew_seconds: 301,
                tolerance_seconds: 300
            })
        );
    }

    #[test]
    fn a_timestamp_from_the_future_is_refused() {
        let now = 1_700_000_000 - 301;
        assert!(matches!(
            verify_signature(SECRET, "1700000000", BODY, EXPECTED, now, DEFAULT_TOLERANCE),
            Err(SignatureError::Stale { .. })
        ));
    }

    #[test]
    fn malformed_headers_are_named() {
        let now = 1_700_000_000;
        assert_eq!(
            verify_signature(
                SECRET,
                "-1700000000",
                BODY,
                EXPECTED,
                now,
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::MalformedTimestamp)
        );
        assert_eq!(
            verify_signature(
                SECRET,
                "1700000000",
                BODY,
                &EXPECTED.replace("sha256=", "sha1="),
                now,
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::MalformedSignature)
        );
        assert_eq!(
            verify_signature(
                SECRET,
                "1700000000",
                BODY,
                "sha256=abcd",
                now,
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::MalformedSignature)
        );
    }
}
