//! What every warehouse connector running statement templates through an asynchronous SQL API
//! must do (Snowflake, BigQuery), checked against its simulator. The simulator stays the
//! vendor's own: the suite sees it only through two questions (which runs it executed, how many
//! rows its table holds).

use hush_contracts::connector::{Completion, Connector, Operation, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};

use super::{email, hashed, one, work, WorkExt};
use crate::sql::jobs::EVIDENCE_ROWS_AFFECTED;

/// A warehouse connector and its simulator, set up with the suite's templates: `opt_out` and
/// `delete` with a check query, `limit` without one, no `opt_in`, each matching on
/// `:email_sha256`, over a table that holds one row for each of `people`.
pub struct WarehouseSuite<'a> {
    /// The connector under test.
    pub connector: &'a dyn Connector,
    /// Two people (by email) the simulated table holds a row for.
    pub people: [&'a str; 2],
    /// The evidence key of the runs' handles (statement handles, job ids).
    pub handles_key: &'a str,
    /// The handles of every run the simulator executed so far, in order.
    pub runs: &'a dyn Fn() -> Vec<String>,
    /// How many rows the simulated table holds now.
    pub rows: &'a dyn Fn() -> usize,
}

impl WarehouseSuite<'_> {
    /// Runs every check, in an order that leaves each one's rows as the next expects.
    pub async fn run(&self) {
        self.rights_without_sql_are_not_applicable_and_people_without_an_identifier_not_found()
            .await;
        self.each_email_is_its_own_run().await;
        self.a_resubmission_runs_nothing_new().await;
        self.a_deletion_removes_the_rows_and_a_later_one_finds_none()
            .await;
    }

    fn request(&self, kind: RequestKind, person: usize) -> SuppressionWork {
        work(kind).with(email(self.people[person]))
    }

    async fn apply_one(&self, operation: Operation, item: &SuppressionWork) -> Completion {
        one(self
            .connector
            .apply(operation, std::slice::from_ref(item))
            .await)
        .unwrap_or_else(|error| panic!("{:?} failed: {error}", item.kind))
    }

    async fn rights_without_sql_are_not_applicable_and_people_without_an_identifier_not_found(
        &self,
    ) {
        let batch = [
            self.request(RequestKind::LimitSensitive, 0),
            self.request(RequestKind::OptInSaleShare, 0),
            work(RequestKind::OptOutSaleShare).with(hashed(IdentifierType::Phone, "+14155550100")),
        ];
        let results = self
            .connector
            .apply(Operation::Suppress, &batch)
            .await
            .expect("the batch itself does not fail");
        assert_eq!(results.len(), batch.len(), "one result per item");
        let completion = |i: usize| {
            results[i]
                .as_ref()
                .unwrap_or_else(|error| panic!("item {i} failed: {error}"))
        };
        assert_eq!(completion(0).action, ConfirmationAction::Flagged);
        assert_eq!(
            completion(0).verification,
            VerificationStatus::Unverifiable,
            "a right without a check cannot be read back"
        );
        assert_eq!(completion(1).action, ConfirmationAction::NotApplicable);
        assert!(
            completion(1).evidence["reason"].contains("settings.opt_in"),
            "{:?}",
            completion(1).evidence
        );
        assert_eq!(completion(2).action, ConfirmationAction::NotFound);
        assert!(
            completion(2).evidence["reason"].contains("no EMAIL identifier"),
            "{:?}",
            completion(2).evidence
        );
    }

    async fn each_email_is_its_own_run(&self) {
        let item = self
            .request(RequestKind::OptOutSaleShare, 0)
            .with(email(self.people[1]));
        let completion = self.apply_one(Operation::Suppress, &item).await;
        assert_eq!(completion.action, ConfirmationAction::Flagged);
        assert_eq!(completion.evidence[EVIDENCE_ROWS_AFFECTED], "2");
        assert_eq!(completion.evidence["executions"], "2");
        let runs = (self.runs)();
        assert!(runs.len() >= 2, "two runs executed, saw {runs:?}");
        assert_eq!(
            completion.evidence[self.handles_key],
            runs[runs.len() - 2..].join(","),
            "the evidence names the runs the vendor executed"
        );
    }

    async fn a_resubmission_runs_nothing_new(&self) {
        let item = self.request(RequestKind::OptOutSaleShare, 0);
        let before = (self.runs)().len();
        let first = self.apply_one(Operation::Suppress, &item).await;
        // The suppressor calls again with the same request (it lost the confirmation, say).
        let second = self.apply_one(Operation::Suppress, &item).await;
        assert_eq!(
            (self.runs)().len(),
            before + 1,
            "the vendor recognised the request id and ran the statement once"
        );
        assert_eq!(
            second.evidence[self.handles_key],
            first.evidence[self.handles_key]
        );
    }

    async fn a_deletion_removes_the_rows_and_a_later_one_finds_none(&self) {
        let before = (self.rows)();
        let item = self.request(RequestKind::Delete, 1);
        let completion = self.apply_one(Operation::Delete, &item).await;
        assert_eq!(completion.action, ConfirmationAction::Deleted);
        assert_eq!((self.rows)(), before - 1, "the person's row is gone");
        assert_eq!(
            self.connector.verify(&item, &completion).await,
            VerificationStatus::Verified
        );
        let again = self
            .apply_one(Operation::Delete, &self.request(RequestKind::Delete, 1))
            .await;
        assert_eq!(again.action, ConfirmationAction::NotFound);
        assert_eq!(again.evidence[EVIDENCE_ROWS_AFFECTED], "0");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_contracts::connector::BatchResult;

    /// Answers every item `NOT_APPLICABLE` without running anything.
    struct Idle;

    #[async_trait::async_trait]
    impl Connector for Idle {
        async fn apply(&self, _operation: Operation, batch: &[SuppressionWork]) -> BatchResult {
            Ok(vec![Ok(Completion::not_applicable("idle")); batch.len()])
        }
    }

    #[tokio::test]
    #[should_panic(expected = "left: NotApplicable")]
    async fn a_connector_that_runs_nothing_fails_the_suite() {
        WarehouseSuite {
            connector: &Idle,
            people: ["a@example.com", "b@example.com"],
            handles_key: "handles",
            runs: &Vec::new,
            rows: &|| 2,
        }
        .run()
        .await;
    }
}
