//! The checks shared by connectors of deletion-only vendors that find people by a raw customer
//! id (Amplitude, Mixpanel): they have no call for opt-outs, limits or opt-ins, and cannot
//! delete a person they cannot name. [`deletion_only_suites!`](crate::deletion_only_suites)
//! declares the two suite tests such a connector runs; the functions below hold what their own
//! contract tests set up and check alike.

use std::time::Duration;

use hush_contracts::connector::{
    Completion, Connector, ConnectorError, ItemResults, Operation, SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};
use hush_contracts::identifiers::sha256_hex;
use hush_contracts::recipients::RecipientConfig;

use super::{
    assert_every_item, assert_refused, assert_refused_without, assert_retry_after,
    assert_retry_after_saying, completed, email, hashed, work, InjectFaults, VendorFault, WorkExt,
};

/// Declares the two suite tests of a deletion-only connector: `$start` (an expression awaiting
/// to `(simulator, connector)`, the simulator offering `control()` with `calls()` and fault
/// injection) passes the [`DeletionOnlySuite`] as `$vendor` with the known customer id
/// `$customer_id`, and the [`ComplianceSuite`](crate::testing::ComplianceSuite) of `$factory`
/// for a person with the customer id `suite-user`. The compliance suite runs without fault
/// injection: every fault it injects rides on an opt-out, which a deletion-only connector
/// answers `NOT_APPLICABLE` without calling the vendor; the deletion-only suite checks the same
/// faults on deletions.
#[macro_export]
macro_rules! deletion_only_suites {
    (
        start: $start:expr,
        vendor: $vendor:literal,
        customer_id: $customer_id:literal,
        factory: $factory:path $(,)?
    ) => {
        #[tokio::test]
        async fn the_connector_passes_the_deletion_only_suite() {
            let (sim, connector) = $start.await;
            $crate::testing::deletion_only::DeletionOnlySuite {
                connector: &connector,
                vendor: $vendor,
                customer_id: $customer_id,
                calls: Box::new(|| sim.control().calls().len()),
                faults: Some(sim.control()),
                hang: std::time::Duration::from_secs(2),
            }
            .run()
            .await;
        }

        #[tokio::test]
        async fn the_connector_passes_the_compliance_suite() {
            let (_sim, connector) = $start.await;
            $crate::testing::ComplianceSuite::new(&connector, &$factory, &|kind| {
                $crate::testing::deletion_only::person(kind, Some("suite-user"))
            })
            .run()
            .await;
        }
    };
}

/// A deletion-only connector against its simulator. Each check panics with what went wrong.
pub struct DeletionOnlySuite<'a> {
    /// The connector under test.
    pub connector: &'a dyn Connector,
    /// The vendor as the connector's `NOT_APPLICABLE` reasons name it, e.g. `Amplitude`.
    pub vendor: &'a str,
    /// A customer id the simulated vendor knows.
    pub customer_id: &'a str,
    /// How many calls the simulator has received so far.
    pub calls: Box<dyn Fn() -> usize + 'a>,
    /// The simulator's fault injection, where the vendor is simulated.
    pub faults: Option<&'a dyn InjectFaults>,
    /// How long a hang lasts: longer than the connector's timeout.
    pub hang: Duration,
}

/// A request of `kind` for a person with an email and, when given, a raw customer id.
pub fn person(kind: RequestKind, customer_id: Option<&str>) -> SuppressionWork {
    work(kind)
        .with(email("person@example.com"))
        .with_raw_if(IdentifierType::CustomerId, customer_id)
}

/// A deletion of the person with the raw customer id `customer_id` (and an email).
pub fn deletion(customer_id: &str) -> SuppressionWork {
    person(RequestKind::Delete, Some(customer_id))
}

/// The `[[recipients]]` block of a deletion-only connector of `kind` (also its id) at
/// `base_url`: a 500 ms timeout, the vendor's job read every 5 ms, then the TOML lines
/// `settings`.
pub fn recipient(kind: &str, base_url: &str, settings: &str) -> RecipientConfig {
    let text = format!(
        "id = \"{kind}\"\nkind = \"{kind}\"\nrole = \"SERVICE_PROVIDER\"\n\
         base_url = \"{base_url}\"\ntimeout_ms = 500\n[settings]\npoll_interval_ms = 5\n{settings}\n"
    );
    toml::from_str(&text).unwrap_or_else(|error| panic!("the recipient block: {error}\n{text}"))
}

/// Panics unless each of `results` is the deletion of the same-placed one of `customer_ids`,
/// left `PENDING`, with evidence naming the id by its sha256 (`customer_id_sha256`) and never
/// raw; answers each completion beside its id.
pub fn assert_deleted_pending<'a>(
    results: &'a ItemResults,
    customer_ids: &[&'a str],
) -> Vec<(&'a Completion, &'a str)> {
    assert_eq!(results.len(), customer_ids.len(), "one result per item");
    let mut completions = Vec::new();
    for (result, &customer_id) in results.iter().zip(customer_ids) {
        let completion = result
            .as_ref()
            .unwrap_or_else(|error| panic!("the deletion of {customer_id} failed: {error}"));
        assert_eq!(completion.action, ConfirmationAction::Deleted);
        assert_eq!(completion.verification, VerificationStatus::Pending);
        assert_eq!(
            completion.evidence["customer_id_sha256"],
            sha256_hex(customer_id)
        );
        assert!(
            !completion
                .evidence
                .values()
                .any(|v| v.contains(customer_id)),
            "the raw id reached the evidence: {:?}",
            completion.evidence
        );
        completions.push((completion, customer_id));
    }
    completions
}

/// Deletes every one of `customer_ids` in one batch through `connector` and panics unless each
/// is `DELETED`; answers the results.
pub async fn deleting_all(
    connector: &dyn Connector,
    customer_ids: &[impl AsRef<str>],
) -> ItemResults {
    let batch: Vec<_> = customer_ids
        .iter()
        .map(|id| deletion(id.as_ref()))
        .collect();
    let results = connector
        .apply(Operation::Delete, &batch)
        .await
        .expect("the batch itself does not fail");
    assert_every_item(&results, batch.len(), ConfirmationAction::Deleted);
    results
}

/// Panics unless `sent`, the status and the list of ids of each call the vendor received,
/// holds two calls answered `status`: the first with `limit` ids, the second with `last` alone.
/// A batch one over the vendor's limit is split so, the simulator enforcing its one request a
/// second.
pub fn assert_sent_in_two_calls(
    sent: &[(u16, serde_json::Value)],
    status: u16,
    limit: usize,
    last: &str,
) {
    assert_eq!(sent.len(), 2, "the simulator enforces one request a second");
    assert!(
        sent.iter().all(|(answered, _)| *answered == status),
        "{sent:?}"
    );
    assert_eq!(sent[0].1.as_array().map(Vec::len), Some(limit));
    assert_eq!(sent[1].1, serde_json::json!([last]));
}

/// Panics unless deleting `second` right after `first` completed is told to wait the
/// connector's default 5 s (the batch, or the item), with a reason naming the vendor's limit of one request a second:
/// the vendor answers 429 without `Retry-After`.
pub async fn assert_second_deletion_waits_five_seconds(
    connector: &dyn Connector,
    first: &str,
    second: &str,
) {
    completed(connector, Operation::Delete, &deletion(first)).await;
    let limited = connector
        .apply(Operation::Delete, &[deletion(second)])
        .await;
    assert_retry_after_saying(limited, Duration::from_secs(5), "1 request per second");
}

/// Panics unless deleting `customer_id`, which the vendor refuses quoting it back, is refused
/// (the batch, or the item) permanently with a reason containing `reason` and never the id.
pub async fn assert_deletion_refused_without_the_id(
    connector: &dyn Connector,
    customer_id: &str,
    reason: &str,
) {
    let refused = connector
        .apply(Operation::Delete, &[deletion(customer_id)])
        .await;
    assert_refused_without(refused, customer_id, reason);
}

/// Panics unless deleting `customer_id` is refused (the batch, or the item) permanently with a reason containing
/// `reason`: what a connector whose credentials the vendor refuses answers.
pub async fn assert_deletion_refused(connector: &dyn Connector, customer_id: &str, reason: &str) {
    let refused = connector
        .apply(Operation::Delete, &[deletion(customer_id)])
        .await;
    assert_refused(refused, reason);
}

impl DeletionOnlySuite<'_> {
    /// Runs every check.
    pub async fn run(&self) {
        self.opt_outs_limits_and_opt_ins_are_not_applicable_and_call_nothing()
            .await;
        self.no_customer_id_is_not_found_and_a_hashed_only_one_is_refused_without_a_call()
            .await;
        if let Some(faults) = self.faults {
            self.failures_on_a_deletion_are_classified(faults).await;
        }
    }

    /// A deletion the vendor answers with a 429 is retried after its `Retry-After`, one it
    /// answers with a 5xx or not before the timeout is transient: the whole batch, since a
    /// deletion-only vendor takes the batch in one call.
    async fn failures_on_a_deletion_are_classified(&self, faults: &dyn InjectFaults) {
        let delete = || async {
            let batch = [person(RequestKind::Delete, Some(self.customer_id))];
            self.connector.apply(Operation::Delete, &batch).await
        };
        faults.fail_next(VendorFault::TooManyRequests(7));
        assert_retry_after(delete().await, Duration::from_secs(7));
        faults.fail_next(VendorFault::ServerError);
        let failed = delete().await;
        assert!(
            matches!(failed, Err(ConnectorError::Transient(_))),
            "a 5xx is transient, got {failed:?}"
        );
        faults.fail_next(VendorFault::Hang(self.hang));
        let hung = delete().await;
        assert!(
            matches!(&hung, Err(ConnectorError::Transient(t)) if t.contains("before the timeout")),
            "a time-out is transient, got {hung:?}"
        );
    }

    /// Opt-outs, limits and opt-ins each come back `NOT_APPLICABLE` with a reason saying the
    /// vendor has no such call, and the vendor is not called.
    pub async fn opt_outs_limits_and_opt_ins_are_not_applicable_and_call_nothing(&self) {
        let kinds = [
            RequestKind::OptOutSaleShare,
            RequestKind::LimitSensitive,
            RequestKind::OptInSaleShare,
        ];
        let batch: Vec<SuppressionWork> = kinds
            .iter()
            .map(|kind| person(*kind, Some(self.customer_id)))
            .collect();
        let before = (self.calls)();
        let results = self.connector.apply(Operation::Suppress, &batch).await;
        let results = results.expect("the batch itself does not fail");
        assert_eq!(results.len(), kinds.len(), "one result per item");
        let has_no = format!("{} has no", self.vendor);
        for result in results {
            let completion = result.expect("the item completed");
            assert_eq!(completion.action, ConfirmationAction::NotApplicable);
            assert!(
                completion.evidence["reason"].contains(&has_no),
                "the reason says `{has_no}`: {:?}",
                completion.evidence
            );
        }
        assert_eq!((self.calls)(), before, "nothing was sent to the vendor");
    }

    /// A deletion without a customer id is `NOT_FOUND`; one whose customer id intake kept
    /// hashed only is refused for want of the raw value; neither calls the vendor.
    pub async fn no_customer_id_is_not_found_and_a_hashed_only_one_is_refused_without_a_call(
        &self,
    ) {
        let hashed_only =
            work(RequestKind::Delete).with(hashed(IdentifierType::CustomerId, self.customer_id));
        let batch = [person(RequestKind::Delete, None), hashed_only];
        let before = (self.calls)();
        let results = self.connector.apply(Operation::Delete, &batch).await;
        let results = results.expect("the batch itself does not fail");
        assert_eq!(results.len(), 2, "one result per item");
        let unnamed = results[0].as_ref().expect("the item completed");
        assert_eq!(unnamed.action, ConfirmationAction::NotFound);
        assert_refused(results[1].clone(), "no raw value");
        assert_eq!((self.calls)(), before, "nothing was sent to the vendor");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::connector::{BatchResult, Completion, ConnectorError};

    /// Answers as a deletion-only vendor's connector should, or (`sloppy`) NOT_APPLICABLE to
    /// everything.
    struct DeletionOnly {
        sloppy: bool,
    }

    #[async_trait::async_trait]
    impl Connector for DeletionOnly {
        async fn apply(&self, operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
            Ok(batch
                .iter()
                .map(|item| {
                    let customer = item
                        .identifiers
                        .iter()
                        .find(|i| i.kind == IdentifierType::CustomerId);
                    match (self.sloppy, operation, customer) {
                        (true, ..) => Ok(Completion::not_applicable("nothing to do")),
                        (_, Operation::Suppress, _) => {
                            Ok(Completion::not_applicable("Example has no opt-out call"))
                        }
                        (_, _, None) => Ok(Completion::new(
                            ConfirmationAction::NotFound,
                            Default::default(),
                        )),
                        (_, _, Some(id)) if id.raw.is_none() => Err(ConnectorError::Permanent(
                            "the CUSTOMER_ID identifier has no raw value".into(),
                        )),
                        _ => Ok(Completion::new(
                            ConfirmationAction::Deleted,
                            Default::default(),
                        )),
                    }
                })
                .collect())
        }
    }

    fn suite(connector: &dyn Connector) -> DeletionOnlySuite<'_> {
        DeletionOnlySuite {
            connector,
            vendor: "Example",
            customer_id: "user-1",
            calls: Box::new(|| 0),
            faults: None,
            hang: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_recipient_block_carries_the_kind_the_address_and_the_settings() {
        let recipient = recipient("example", "http://127.0.0.1:1", "max_wait_ms = 0");
        assert_eq!(recipient.id, "example");
        assert_eq!(recipient.settings["poll_interval_ms"].as_integer(), Some(5));
        assert_eq!(recipient.settings["max_wait_ms"].as_integer(), Some(0));
    }

    #[test]
    #[should_panic(expected = "one request a second")]
    fn a_batch_sent_in_one_call_fails_the_split_check() {
        assert_sent_in_two_calls(&[(200, serde_json::json!(["a", "b"]))], 200, 1, "b");
    }

    #[tokio::test]
    async fn a_deletion_only_connector_passes() {
        suite(&DeletionOnly { sloppy: false }).run().await;
    }

    /// Answers each injected fault as the HTTP layer classifies it, or (`lenient`) a 5xx as a
    /// permanent refusal; without a fault, deletes.
    struct Faulty {
        next: std::sync::Mutex<Option<VendorFault>>,
        lenient: bool,
    }

    impl InjectFaults for Faulty {
        fn fail_next(&self, fault: VendorFault) {
            *self.next.lock().unwrap() = Some(fault);
        }
    }

    #[async_trait::async_trait]
    impl Connector for Faulty {
        async fn apply(&self, operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
            let next = self.next.lock().unwrap().take();
            match next {
                Some(VendorFault::TooManyRequests(secs)) => Err(ConnectorError::RetryAfter {
                    after: Duration::from_secs(secs),
                    detail: "HTTP 429".into(),
                }),
                Some(VendorFault::ServerError) if self.lenient => {
                    Err(ConnectorError::Permanent("HTTP 500".into()))
                }
                Some(VendorFault::ServerError) => Err(ConnectorError::Transient("HTTP 500".into())),
                Some(VendorFault::Hang(_)) => Err(ConnectorError::Transient(
                    "no answer before the timeout".into(),
                )),
                None => DeletionOnly { sloppy: false }.apply(operation, batch).await,
            }
        }
    }

    async fn run_with_faults(lenient: bool) {
        let connector = Faulty {
            next: Default::default(),
            lenient,
        };
        DeletionOnlySuite {
            faults: Some(&connector),
            ..suite(&connector)
        }
        .run()
        .await;
    }

    #[tokio::test]
    async fn failures_classified_like_the_http_layer_pass() {
        run_with_faults(false).await;
    }

    #[tokio::test]
    #[should_panic(expected = "a 5xx is transient")]
    async fn a_5xx_refused_permanently_fails() {
        run_with_faults(true).await;
    }

    #[tokio::test]
    #[should_panic(expected = "has no")]
    async fn a_reason_not_naming_the_missing_call_fails() {
        suite(&DeletionOnly { sloppy: true })
            .opt_outs_limits_and_opt_ins_are_not_applicable_and_call_nothing()
            .await;
    }

    #[tokio::test]
    #[should_panic(expected = "NotFound")]
    async fn a_deletion_without_a_customer_id_answered_otherwise_fails() {
        suite(&DeletionOnly { sloppy: true })
            .no_customer_id_is_not_found_and_a_hashed_only_one_is_refused_without_a_call()
            .await;
    }
}
