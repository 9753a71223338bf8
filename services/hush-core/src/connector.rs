//! The connector interface: the only thing the suppressor knows about a downstream vendor.
//!
//! A connector receives batches of [`SuppressionWork`] (one request each, already judged
//! applicable to this recipient) and answers, item by item, with a [`Completion`] or a
//! [`ConnectorError`]. Retries, rate limiting, dead-lettering and confirmations are the
//! suppressor's job; a connector only speaks the vendor's API, classifies its answers and reads
//! results back where the vendor allows it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::events::{
    Category, ConfirmationAction, EpochMillis, IdentifierType, RequestKind, VerificationStatus,
};

/// A raw identifier value, decrypted only inside the suppressor for the connectors that need it.
/// Its `Debug` output is redacted so it never reaches a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct RawValue(String);

impl RawValue {
    /// Wraps a normalised raw value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself; use only to build a vendor request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RawValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawValue(<redacted>)")
    }
}

/// One identifier of the subject as a connector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkIdentifier {
    /// Kind of identifier.
    pub kind: IdentifierType,
    /// Lowercase hex SHA-256 of the normalised value.
    pub sha256: String,
    /// The normalised raw value, when intake kept it encrypted and the suppressor could
    /// decrypt it.
    pub raw: Option<RawValue>,
}

/// One request for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressionWork {
    /// Request id (UUID); connectors use it as the vendor-side idempotency key.
    pub request_id: String,
    /// Subject key of the request.
    pub subject_key: String,
    /// Right exercised.
    pub kind: RequestKind,
    /// Identifiers of the subject.
    pub identifiers: Vec<WorkIdentifier>,
    /// Categories the request covers.
    pub categories: Vec<Category>,
    /// ISO 3166-2 jurisdiction.
    pub jurisdiction: String,
    /// Receipt of the request.
    pub received_at: EpochMillis,
}

impl SuppressionWork {
    /// Identifiers of one kind.
    pub fn identifiers_of(&self, kind: IdentifierType) -> impl Iterator<Item = &WorkIdentifier> {
        self.identifiers.iter().filter(move |i| i.kind == kind)
    }
}

/// Evidence a regulator can check (vendor job id, HTTP status, counts, error text).
/// Never raw personal data.
pub type Evidence = BTreeMap<String, String>;

/// A terminal outcome for one work item at the recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// What happened.
    pub action: ConfirmationAction,
    /// Read-back status known at completion (the suppressor may refine it with `verify`).
    pub verification: VerificationStatus,
    /// Statutory basis when `action` is `RETAINED_UNDER_EXCEPTION`.
    pub exception_basis: Option<String>,
    /// Evidence.
    pub evidence: Evidence,
}

impl Completion {
    /// A completion with no verification yet and the given evidence.
    pub fn new(action: ConfirmationAction, evidence: Evidence) -> Self {
        Self {
            action,
            verification: VerificationStatus::Unverifiable,
            exception_basis: None,
            evidence,
        }
    }

    /// Sets the verification status.
    pub fn with_verification(mut self, verification: VerificationStatus) -> Self {
        self.verification = verification;
        self
    }
}

/// Why a vendor call did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// The vendor asked us to slow down (429) and said when to come back.
    #[error("rate limited by vendor, retry after {after:?}: {detail}")]
    RetryAfter {
        /// Wait the vendor asked for.
        after: Duration,
        /// Vendor's text.
        detail: String,
    },
    /// A transient failure (5xx, timeout, connection refused); retry with backoff.
    #[error("transient vendor failure: {0}")]
    Transient(String),
    /// The vendor refused the call in a way retrying cannot fix (4xx other than 408/429).
    #[error("vendor refused the request: {0}")]
    Permanent(String),
}

impl ConnectorError {
    /// Whether retrying may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ConnectorError::Permanent(_))
    }
}

/// The result for each item of a batch, in batch order.
pub type ItemResults = Vec<Result<Completion, ConnectorError>>;

/// A downstream recipient's API. Implementations must be idempotent per request id: the
/// suppressor may call again after a failure or a crash.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Most work items one vendor call can carry (the vendor's batch limit).
    fn max_batch(&self) -> usize {
        1
    }

    /// Applies an opt-out of sale/share or a limit on sensitive PI (and, where the vendor
    /// supports it, an opt-in reversal). An `Err` fails the whole batch; item errors fail items.
    async fn suppress(&self, batch: &[SuppressionWork]) -> Result<ItemResults, ConnectorError>;

    /// Applies a verified deletion.
    async fn delete(&self, batch: &[SuppressionWork]) -> Result<ItemResults, ConnectorError>;

    /// Sends a "comply and forward" notice to a third party, where the vendor has a channel for
    /// it. `None` means the connector has none.
    async fn notify(
        &self,
        _batch: &[SuppressionWork],
    ) -> Option<Result<ItemResults, ConnectorError>> {
        None
    }

    /// Reads the outcome back from the vendor, where the vendor allows it.
    async fn verify(&self, _work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        completion.verification
    }
}

/// Classifies an HTTP answer from a vendor: 2xx is `None` (success), 429 honours `Retry-After`
/// (seconds or HTTP date), 408 and 5xx are transient, any other 4xx is permanent. `body` is the
/// vendor's error text, kept as evidence.
pub fn classify_http_status(
    status: u16,
    retry_after: Option<&str>,
    body: &str,
) -> Option<ConnectorError> {
    let detail = format!("HTTP {status}: {}", truncate(body, 500));
    match status {
        200..=299 => None,
        429 => Some(ConnectorError::RetryAfter {
            after: retry_after
                .and_then(parse_retry_after)
                .unwrap_or(Duration::from_secs(1)),
            detail,
        }),
        408 | 500..=599 => Some(ConnectorError::Transient(detail)),
        _ => Some(ConnectorError::Permanent(detail)),
    }
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Classifies a transport failure (timeout, refused connection) as transient.
pub fn classify_transport_error(error: &reqwest::Error) -> ConnectorError {
    ConnectorError::Transient(if error.is_timeout() {
        "vendor did not answer before the timeout".to_owned()
    } else {
        format!("could not reach vendor: {error}")
    })
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify_http_status(204, None, ""), None);
        assert_eq!(
            classify_http_status(429, Some("7"), "slow down"),
            Some(ConnectorError::RetryAfter {
                after: Duration::from_secs(7),
                detail: "HTTP 429: slow down".into()
            })
        );
        assert!(matches!(
            classify_http_status(503, None, ""),
            Some(ConnectorError::Transient(_))
        ));
        assert!(matches!(
            classify_http_status(400, None, "bad email"),
            Some(ConnectorError::Permanent(d)) if d.contains("bad email")
        ));
    }

    #[test]
    fn retry_after_accepts_http_dates() {
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let wait = parse_retry_after(&later).unwrap();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn raw_values_are_redacted_in_debug_output() {
        let raw = RawValue::new("jane@example.com");
        assert!(!format!("{raw:?}").contains("jane"));
        assert_eq!(raw.expose(), "jane@example.com");
    }
}
