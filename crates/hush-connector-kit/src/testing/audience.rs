//! What every connector of an ad audience (a list of hashed people the vendor removes people
//! from, with no read-back of a given person: LinkedIn DMP segments, Meta Custom Audiences)
//! must do, checked against its simulator. The simulator stays the vendor's own: the suite sees
//! it only through three things (add people, who the list holds, how many rows each call
//! carried) and the evidence the vendor's answer leaves. Audiences that can be read back
//! (Google's Customer Match) share [`assert_unmatchable_not_found_and_opt_ins_not_applicable`].

use std::collections::BTreeSet;

use hush_contracts::connector::{Completion, Connector, ConnectorError, Operation, WorkIdentifier};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};

use super::{assert_not_applicable, assert_not_found, completed, email, opt_out, work, WorkExt};

/// An audience connector and its simulator. [`AudienceSuite::run`] panics with what went wrong.
pub struct AudienceSuite<'a> {
    /// The connector under test.
    pub connector: &'a dyn Connector,
    /// Most rows (people with one email each) one call to the vendor carries.
    pub rows_per_call: usize,
    /// Puts people, by hashed email, in the simulated audience.
    pub add_members: Box<dyn Fn(Vec<String>) + 'a>,
    /// Who the simulated audience holds now, by hashed email.
    pub members: Box<dyn Fn() -> BTreeSet<String> + 'a>,
    /// How many rows each call the simulator received carried, in order.
    pub rows_sent: Box<dyn Fn() -> Vec<usize> + 'a>,
    /// An identifier the vendor matches no one on.
    pub unmatchable: WorkIdentifier,
    /// What the `NOT_FOUND` reason of a person with only [`AudienceSuite::unmatchable`] says.
    pub unmatched_reason: &'a str,
    /// Evidence (key, value) the completion of a person removed alone in a call carries.
    pub evidence: Vec<(&'a str, String)>,
}

impl AudienceSuite<'_> {
    /// Runs every check, in an order that leaves the audience as the next one expects.
    pub async fn run(&self) {
        self.the_unmatchable_are_not_found_and_opt_ins_not_applicable_without_a_call()
            .await;
        self.an_unhashed_email_is_refused_and_never_sent().await;
        self.removing_an_absent_person_again_is_idempotent().await;
        self.one_row_beyond_the_limit_takes_a_second_call().await;
        self.an_opt_out_removes_only_that_person().await;
    }

    fn add(&self, addresses: &[&str]) {
        (self.add_members)(addresses.iter().map(|a| email(a).sha256).collect());
    }

    fn assert_evidence(&self, completion: &Completion, what: &str) {
        assert_eq!(completion.action, ConfirmationAction::Suppressed, "{what}");
        assert_eq!(
            completion.verification,
            VerificationStatus::Unverifiable,
            "{what}: an audience cannot be read back person by person"
        );
        for (key, value) in &self.evidence {
            assert_eq!(
                completion.evidence.get(*key),
                Some(value),
                "{what}: evidence {key}"
            );
        }
    }

    async fn suppressed(&self, address: &str) -> Completion {
        let completion = completed(self.connector, Operation::Suppress, &opt_out(address)).await;
        self.assert_evidence(&completion, "an opt-out");
        completion
    }

    /// An opt-out (of an email written with capitals and spaces) takes that person, and only
    /// them, out of the audience.
    async fn an_opt_out_removes_only_that_person(&self) {
        self.add(&["a@example.com", "b@example.com"]);
        self.suppressed(" A@Example.com ").await;
        assert_eq!(
            (self.members)(),
            BTreeSet::from([email("b@example.com").sha256]),
            "only the person opting out left the audience"
        );
    }

    /// Removing someone twice is `SUPPRESSED` both times, each with its own call.
    async fn removing_an_absent_person_again_is_idempotent(&self) {
        self.add(&["a@example.com"]);
        let calls = (self.rows_sent)().len();
        self.suppressed("a@example.com").await;
        self.suppressed("a@example.com").await;
        assert!((self.members)().is_empty());
        assert_eq!((self.rows_sent)().len(), calls + 2, "one call each time");
    }

    /// One row more than a call carries goes out as two calls, full and one, and every person
    /// leaves the audience.
    async fn one_row_beyond_the_limit_takes_a_second_call(&self) {
        let addresses: Vec<String> = (0..=self.rows_per_call)
            .map(|i| format!("p{i}@example.com"))
            .collect();
        (self.add_members)(addresses.iter().map(|a| email(a).sha256).collect());
        let batch: Vec<_> = addresses.iter().map(|a| opt_out(a)).collect();
        let calls = (self.rows_sent)().len();
        let results = self
            .connector
            .apply(Operation::Suppress, &batch)
            .await
            .expect("the batch itself does not fail");
        assert_eq!(results.len(), batch.len(), "one result per person");
        for (i, result) in results.iter().enumerate() {
            let completion = result
                .as_ref()
                .unwrap_or_else(|e| panic!("person {i} failed: {e}"));
            assert_eq!(completion.action, ConfirmationAction::Suppressed);
        }
        if let Some(Ok(last)) = results.last() {
            self.assert_evidence(last, "the person alone in the second call");
        }
        assert_eq!((self.rows_sent)()[calls..], [self.rows_per_call, 1]);
        assert!((self.members)().is_empty());
    }

    /// An email that is not a lowercase SHA-256 digest is refused permanently, saying so,
    /// without a call; beside a valid one, only the valid row is sent.
    async fn an_unhashed_email_is_refused_and_never_sent(&self) {
        let unhashed =
            || work(RequestKind::OptOutSaleShare).with(unhashed_email("Jane@Example.com"));
        let refused = |result: &Result<Completion, ConnectorError>| {
            assert!(
                matches!(result, Err(ConnectorError::Permanent(d)) if d.contains("SHA-256")),
                "an unhashed email is refused as not SHA-256, got {result:?}"
            );
        };
        let calls = (self.rows_sent)().len();
        let alone = self
            .connector
            .apply(Operation::Suppress, &[unhashed()])
            .await
            .expect("the batch itself does not fail");
        assert_eq!(alone.len(), 1);
        refused(&alone[0]);
        assert_eq!((self.rows_sent)().len(), calls, "nothing was sent");

        let beside = self
            .connector
            .apply(Operation::Suppress, &[unhashed(), opt_out("a@example.com")])
            .await
            .expect("the batch itself does not fail");
        assert_eq!(beside.len(), 2);
        refused(&beside[0]);
        assert_eq!(
            beside[1].as_ref().map(|c| c.action),
            Ok(ConfirmationAction::Suppressed)
        );
        assert_eq!(
            (self.rows_sent)()[calls..],
            [1],
            "only the valid row went out"
        );
    }

    async fn the_unmatchable_are_not_found_and_opt_ins_not_applicable_without_a_call(&self) {
        assert_unmatchable_not_found_and_opt_ins_not_applicable(
            self.connector,
            &self.unmatchable,
            self.unmatched_reason,
            &|| (self.rows_sent)().len(),
        )
        .await;
    }
}

/// An email identifier whose `sha256` holds the `address` itself rather than its digest: what
/// an audience connector refuses as not SHA-256, without sending it.
pub fn unhashed_email(address: &str) -> WorkIdentifier {
    WorkIdentifier {
        kind: IdentifierType::Email,
        sha256: address.into(),
        raw: None,
    }
}

/// Panics unless, through an audience `connector`, a person with only the `unmatchable`
/// identifier is `NOT_FOUND` with a reason containing `reason`, an opt-in is `NOT_APPLICABLE`
/// (an audience cannot add anyone back), and neither changes how many `calls` the simulator
/// received.
pub async fn assert_unmatchable_not_found_and_opt_ins_not_applicable(
    connector: &dyn Connector,
    unmatchable: &WorkIdentifier,
    reason: &str,
    calls: &dyn Fn() -> usize,
) {
    let before = calls();
    let unmatchable = [work(RequestKind::OptOutSaleShare).with(unmatchable.clone())];
    assert_not_found(connector, &unmatchable, reason).await;
    let opt_in = [work(RequestKind::OptInSaleShare).with(email("a@example.com"))];
    assert_not_applicable(connector, &opt_in).await;
    assert_eq!(calls(), before, "no call was made");
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use hush_contracts::connector::{BatchResult, SuppressionWork};

    /// Answers every item `SUPPRESSED` and removes no one, sending each batch as one call.
    struct Forgetful(Mutex<Vec<usize>>);

    #[async_trait::async_trait]
    impl Connector for Forgetful {
        async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
            self.0.lock().unwrap().push(batch.len());
            let removed = Completion::new(ConfirmationAction::Suppressed, Default::default())
                .with_verification(VerificationStatus::Unverifiable);
            Ok(vec![Ok(removed); batch.len()])
        }
    }

    /// Answers as the check expects, but calls the vendor for every batch.
    struct Chatty(Mutex<usize>);

    #[async_trait::async_trait]
    impl Connector for Chatty {
        async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
            *self.0.lock().unwrap() += 1;
            Ok(batch
                .iter()
                .map(|item| {
                    Ok(match item.kind {
                        RequestKind::OptInSaleShare => Completion::not_applicable("opt-in"),
                        _ => Completion::not_found("nothing to match on"),
                    })
                })
                .collect())
        }
    }

    #[tokio::test]
    #[should_panic(expected = "no call was made")]
    async fn a_connector_that_calls_for_the_unmatchable_fails_the_check() {
        let connector = Chatty(Mutex::new(0));
        assert_unmatchable_not_found_and_opt_ins_not_applicable(
            &connector,
            &email("x@example.com"),
            "nothing to match on",
            &|| *connector.0.lock().unwrap(),
        )
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "only the person opting out left the audience")]
    async fn a_connector_that_removes_no_one_fails_the_suite() {
        let connector = Forgetful(Mutex::new(vec![]));
        let members = Mutex::new(BTreeSet::new());
        let suite = AudienceSuite {
            connector: &connector,
            rows_per_call: 2,
            add_members: Box::new(|hashes| members.lock().unwrap().extend(hashes)),
            members: Box::new(|| members.lock().unwrap().clone()),
            rows_sent: Box::new(|| connector.0.lock().unwrap().clone()),
            unmatchable: email("x@example.com"),
            unmatched_reason: "nothing",
            evidence: vec![],
        };
        suite.an_opt_out_removes_only_that_person().await;
        assert_eq!(*connector.0.lock().unwrap(), [1], "the opt-out was sent");
    }
}
