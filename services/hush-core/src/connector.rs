//! The connector interface: the only thing the suppressor knows about a downstream vendor.
//!
//! A connector receives batches of [`SuppressionWork`] (one request each, already judged
//! applicable to this recipient) and answers, item by item, with a [`Completion`] or a
//! [`ConnectorError`]. Retries, rate limiting, dead-lettering and confirmations are the
//! suppressor's job; a connector only speaks the vendor's API, classifies its answers and reads
//! results back where the vendor allows it.

pub mod poll;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
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

    /// Nothing to do at this recipient: `NOT_APPLICABLE`, with `reason` as the evidence's
    /// `reason`.
    pub fn not_applicable(reason: impl Into<String>) -> Self {
        Self::new(
            ConfirmationAction::NotApplicable,
            Evidence::from([("reason".to_owned(), reason.into())]),
        )
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

/// The result of one item while a batch is being worked through: `None` until it is known.
pub type ItemSlot = Option<Result<Completion, ConnectorError>>;

/// The results of a worked-through batch; a slot left empty is a permanent internal error
/// rather than a silent success.
pub fn fill_results(slots: Vec<ItemSlot>) -> ItemResults {
    slots
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| {
                Err(ConnectorError::Permanent(
                    "internal error: item left without an outcome".into(),
                ))
            })
        })
        .collect()
}

/// For a vendor with nothing to do on an opt-in: answers each `OPT_IN_SALE_SHARE` item of
/// `batch` with `opt_in`, and the others with what `apply` answers for them (it is given them
/// in batch order and answers in the same order).
pub async fn apply_except_opt_ins<F, Fut>(
    batch: &[SuppressionWork],
    opt_in: Completion,
    apply: F,
) -> Result<ItemResults, ConnectorError>
where
    F: FnOnce(Vec<SuppressionWork>) -> Fut,
    Fut: Future<Output = Result<ItemResults, ConnectorError>>,
{
    let (indices, works): (Vec<usize>, Vec<SuppressionWork>) = batch
        .iter()
        .enumerate()
        .filter(|(_, work)| work.kind != RequestKind::OptInSaleShare)
        .map(|(index, work)| (index, work.clone()))
        .unzip();
    let applied = apply(works).await?;
    let mut results: ItemResults = vec![Ok(opt_in); batch.len()];
    for (result, index) in applied.into_iter().zip(indices) {
        results[index] = result;
    }
    Ok(results)
}

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

/// A vendor's HTTP answer, read whole and not yet classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorAnswer {
    /// HTTP status code.
    pub status: u16,
    /// The `Retry-After` header, when the vendor sent one that is valid text.
    pub retry_after: Option<String>,
    /// The body as text.
    pub body: String,
}

/// Sends `request` and reads the vendor's answer: status, `Retry-After` and body. A failure to
/// reach the vendor or to read the body is classified with [`classify_transport_error`]; any
/// status is an `Ok`, left to the connector's own classification.
pub async fn send(request: reqwest::RequestBuilder) -> Result<VendorAnswer, ConnectorError> {
    let response = request
        .send()
        .await
        .map_err(|e| classify_transport_error(&e))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .text()
        .await
        .map_err(|e| classify_transport_error(&e))?;
    Ok(VendorAnswer {
        status,
        retry_after,
        body,
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

    /// Serves one connection on loopback with `answer` written verbatim, then closes it.
    async fn answer_once(answer: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            stream.write_all(answer.as_bytes()).await.unwrap();
            stream.shutdown().await.unwrap();
        });
        url
    }

    #[tokio::test]
    async fn send_reads_status_retry_after_and_body() {
        let url = answer_once(
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 9\r\n\
             Connection: close\r\n\r\nslow down",
        )
        .await;
        let answer = send(reqwest::Client::new().get(url)).await.unwrap();
        assert_eq!(
            answer,
            VendorAnswer {
                status: 429,
                retry_after: Some("7".into()),
                body: "slow down".into(),
            }
        );
    }

    #[tokio::test]
    async fn send_without_retry_after_leaves_it_out() {
        let url =
            answer_once("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                .await;
        let answer = send(reqwest::Client::new().get(url)).await.unwrap();
        assert_eq!((answer.status, answer.retry_after), (200, None));
        assert_eq!(answer.body, "{}");
    }

    #[tokio::test]
    async fn a_body_cut_short_is_transient() {
        let url = answer_once(
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\npartial",
        )
        .await;
        let error = send(reqwest::Client::new().get(url)).await.unwrap_err();
        assert!(
            matches!(&error, ConnectorError::Transient(d) if d.starts_with("could not reach vendor")),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_vendor_is_transient() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let error = send(reqwest::Client::new().get(url)).await.unwrap_err();
        assert!(
            matches!(&error, ConnectorError::Transient(d) if d.starts_with("could not reach vendor")),
            "{error:?}"
        );
    }

    fn work(kind: RequestKind) -> SuppressionWork {
        SuppressionWork {
            request_id: "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10".into(),
            subject_key: "s".into(),
            kind,
            identifiers: vec![],
            categories: vec![Category::All],
            jurisdiction: "US-CA".into(),
            received_at: 0,
        }
    }

    #[tokio::test]
    async fn opt_ins_are_answered_apart_and_the_rest_keep_their_places() {
        let batch = [
            work(RequestKind::OptOutSaleShare),
            work(RequestKind::OptInSaleShare),
            work(RequestKind::Delete),
        ];
        let results = apply_except_opt_ins(
            &batch,
            Completion::not_applicable("opt-in"),
            |works| async move {
                assert_eq!(works.len(), 2, "opt-ins are not applied");
                Ok(works
                    .iter()
                    .map(|w| Err(ConnectorError::Permanent(format!("{:?}", w.kind))))
                    .collect())
            },
        )
        .await
        .unwrap();
        assert_eq!(
            results,
            vec![
                Err(ConnectorError::Permanent("OptOutSaleShare".into())),
                Ok(Completion::not_applicable("opt-in")),
                Err(ConnectorError::Permanent("Delete".into())),
            ]
        );
    }

    #[test]
    fn not_applicable_carries_its_reason() {
        let completion = Completion::not_applicable("no email");
        assert_eq!(completion.action, ConfirmationAction::NotApplicable);
        assert_eq!(completion.verification, VerificationStatus::Unverifiable);
        assert_eq!(completion.evidence["reason"], "no email");
    }

    #[test]
    fn an_empty_slot_is_an_internal_error() {
        let done = Completion::not_applicable("done");
        let results = fill_results(vec![Some(Ok(done.clone())), None]);
        assert_eq!(results[0], Ok(done));
        assert!(
            matches!(&results[1], Err(ConnectorError::Permanent(m)) if m.contains("internal error"))
        );
    }

    #[test]
    fn raw_values_are_redacted_in_debug_output() {
        let raw = RawValue::new("jane@example.com");
        assert!(!format!("{raw:?}").contains("jane"));
        assert_eq!(raw.expose(), "jane@example.com");
    }
}
