//! The connector interface: the only thing the suppressor knows about a downstream vendor.
//!
//! A connector receives batches of [`SuppressionWork`] (one request each, already judged
//! applicable to this recipient) with the [`Operation`] they need, and answers, item by item, with a [`Completion`] or a
//! [`ConnectorError`]. Retries, rate limiting, dead-lettering and confirmations are the
//! suppressor's job; a connector only speaks the vendor's API, classifies its answers and reads
//! results back where the vendor allows it.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::ConfigError;
use crate::events::{
    Category, ConfirmationAction, EpochMillis, IdentifierType, RequestKind, VerificationStatus,
};
use crate::recipients::RecipientConfig;

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

    /// The recipient holds no one matching the subject's identifiers (nothing to suppress or
    /// delete there): `NOT_FOUND`, with `reason` as the evidence's `reason`. Not a failure: the
    /// request completes at this recipient.
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(
            ConfirmationAction::NotFound,
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

/// What a connector is asked to do with a batch; every item of a batch needs the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Stop selling, sharing or using the person's data as asked: an opt-out of sale/share or
    /// a limit on sensitive PI, or (where the vendor supports it) the reversal an opt-in asks.
    Suppress,
    /// Delete the person's data (the request's identity was verified at intake).
    Delete,
}

impl Operation {
    /// The operation a request of `kind` needs.
    pub fn of(kind: RequestKind) -> Self {
        match kind {
            RequestKind::Delete => Operation::Delete,
            RequestKind::OptOutSaleShare
            | RequestKind::LimitSensitive
            | RequestKind::OptInSaleShare => Operation::Suppress,
        }
    }
}

/// What a connector answers for a batch: one result per item, in batch order, or an error that
/// fails the whole batch.
pub type BatchResult = Result<ItemResults, ConnectorError>;

/// A downstream recipient's API. Implementations must be idempotent per request id: the
/// suppressor may call again after a failure or a crash.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Applies `operation` to every item of `batch` (each item's request kind says which
    /// right; for a recipient with nothing to do, the item's result is `NOT_APPLICABLE`).
    /// Answers one result per item, in batch order. An `Err` fails the whole batch.
    async fn apply(&self, operation: Operation, batch: &[SuppressionWork]) -> BatchResult;

    /// Reads the outcome back from the vendor, where the vendor allows it.
    async fn verify(&self, _work: &SuppressionWork, completion: &Completion) -> VerificationStatus {
        completion.verification
    }

    /// Whether reading a `PENDING` outcome back again later ([`Connector::verify`]) can resolve
    /// it, so the suppressor re-verifies it on a schedule. False for a recipient whose
    /// verification arrives some other way (a webhook recipient's callback to the auditor).
    fn reverifies_pending(&self) -> bool {
        true
    }

    /// Whether [`Connector::verify`] (or [`Connector::verify_batch`]) calls the vendor, so the
    /// suppressor holds a slot of the recipient's rate limit for each read-back. True unless the
    /// connector keeps the default `verify`, which reads nothing back: such a connector says
    /// false, and each of its requests then costs one paced call instead of two.
    fn reads_back(&self) -> bool {
        true
    }

    /// Most items whose outcomes one vendor read-back call can cover: the suppressor hands
    /// [`Connector::verify_batch`] at most this many at a time and counts each such call once
    /// against the recipient's rate limit. 1 unless the vendor offers a batch read.
    fn verify_batch_limit(&self) -> usize {
        1
    }

    /// Reads back the outcomes of several items: one status per item, in order. By default each
    /// item is verified on its own with [`Connector::verify`].
    async fn verify_batch(
        &self,
        items: &[(&SuppressionWork, &Completion)],
    ) -> Vec<VerificationStatus> {
        let mut statuses = Vec::with_capacity(items.len());
        for (work, completion) in items {
            statuses.push(self.verify(work, completion).await);
        }
        statuses
    }
}

/// A connector built from a `[[recipients]]` block.
pub trait FromRecipient: Sized {
    /// Reads and validates the block (settings, and credentials from the environment variables
    /// it names) and builds the connector; the error names the field at fault.
    fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError>;
}

/// How a connector crate plugs into Hush: the `[[recipients]] kind` values it serves, the
/// vendor's batch limit, how to validate such a block, and how to build the connector. Each
/// connector crate exports one; the registry lists them all.
#[derive(Debug, Clone, Copy)]
pub struct ConnectorFactory {
    /// The `kind` values this connector serves, as written in the configuration.
    pub kinds: &'static [&'static str],
    /// Most work items one call to the connector may carry (the vendor's batch limit).
    pub max_batch: usize,
    /// Checks a recipient's settings and credentials; the error names the field at fault.
    pub validate: fn(&RecipientConfig) -> Result<(), ConfigError>,
    /// Builds the connector for a recipient (validating it first).
    pub build: fn(&RecipientConfig) -> Result<Arc<dyn Connector>, ConfigError>,
}

impl ConnectorFactory {
    /// The factory of connector type `C`, serving `kinds`, at most `max_batch` items a call.
    pub const fn of<C: Connector + FromRecipient + 'static>(
        kinds: &'static [&'static str],
        max_batch: usize,
    ) -> Self {
        Self {
            kinds,
            max_batch,
            validate: validate_recipient::<C>,
            build: build_connector::<C>,
        }
    }

    /// Whether this factory serves recipients of `kind`.
    pub fn serves(&self, kind: &str) -> bool {
        self.kinds.contains(&kind)
    }
}

/// Makes a connector crate pluggable in one line: implements [`FromRecipient`] for `$connector`
/// (its resolved `$config` read from the block with `$config::from_recipient`, then
/// `$connector::new`) and declares `pub static FACTORY` serving `$kinds`, at most `$max_batch`
/// items a call.
#[macro_export]
macro_rules! connector_factory {
    ($connector:ident, $config:ident, $kinds:expr, $max_batch:expr) => {
        impl $crate::connector::FromRecipient for $connector {
            fn from_recipient(
                recipient: &$crate::recipients::RecipientConfig,
            ) -> Result<Self, $crate::config::ConfigError> {
                Self::new($config::from_recipient(recipient)?)
            }
        }

        /// How the registry validates and builds this connector.
        pub static FACTORY: $crate::connector::ConnectorFactory =
            $crate::connector::ConnectorFactory::of::<$connector>($kinds, $max_batch);
    };
}

fn validate_recipient<C: FromRecipient>(recipient: &RecipientConfig) -> Result<(), ConfigError> {
    C::from_recipient(recipient).map(drop)
}

fn build_connector<C: Connector + FromRecipient + 'static>(
    recipient: &RecipientConfig,
) -> Result<Arc<dyn Connector>, ConfigError> {
    Ok(Arc::new(C::from_recipient(recipient)?))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Verifies an item by its kind: deletions are verified, everything else fails.
    struct ByKind;

    #[async_trait]
    impl Connector for ByKind {
        async fn apply(&self, _operation: Operation, _batch: &[SuppressionWork]) -> BatchResult {
            Ok(vec![])
        }

        async fn verify(&self, work: &SuppressionWork, _: &Completion) -> VerificationStatus {
            match work.kind {
                RequestKind::Delete => VerificationStatus::Verified,
                _ => VerificationStatus::Failed,
            }
        }
    }

    #[tokio::test]
    async fn batch_verification_defaults_to_verifying_each_item_in_order() {
        let (delete, opt_out) = (
            work(RequestKind::Delete),
            work(RequestKind::OptOutSaleShare),
        );
        let done = Completion::not_applicable("done");
        let statuses = ByKind
            .verify_batch(&[(&opt_out, &done), (&delete, &done), (&opt_out, &done)])
            .await;
        assert_eq!(
            statuses,
            [
                VerificationStatus::Failed,
                VerificationStatus::Verified,
                VerificationStatus::Failed
            ]
        );
        assert_eq!(ByKind.verify_batch_limit(), 1);
    }

    #[test]
    fn deletion_is_its_own_operation_and_every_other_right_suppresses() {
        assert_eq!(Operation::of(RequestKind::Delete), Operation::Delete);
        for kind in [
            RequestKind::OptOutSaleShare,
            RequestKind::LimitSensitive,
            RequestKind::OptInSaleShare,
        ] {
            assert_eq!(Operation::of(kind), Operation::Suppress);
        }
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
