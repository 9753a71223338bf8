//! The checks shared by connectors of deletion-only vendors that find people by a raw customer
//! id (Amplitude, Mixpanel): they have no call for opt-outs, limits or opt-ins, and cannot
//! delete a person they cannot name.

use std::time::Duration;

use hush_contracts::connector::{Connector, ConnectorError, Operation, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind};

use super::{
    assert_refused, assert_retry_after, email, hashed, work, InjectFaults, VendorFault, WorkExt,
};

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
