//! What every warehouse connector running statement templates through an asynchronous SQL API
//! must do (Snowflake, BigQuery), checked against its simulator. The simulator stays the
//! vendor's own: the suite sees it only through two questions (which runs it executed, how many
//! rows its table holds). The suite's [`Templates`] and the helpers below hold what the
//! warehouse connectors' own contract tests set up and check alike.

use hush_contracts::connector::{Completion, Connector, Operation, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};
use hush_contracts::recipients::RecipientConfig;

use super::{
    assert_refused_without, assert_retry_after, completed, email, hashed, one, service_provider,
    with_raw, work, WorkExt,
};
use crate::sql::jobs::EVIDENCE_ROWS_AFFECTED;

/// The first of the two people (by email) the warehouse tests' simulated tables hold a row for.
pub const JANE: &str = "jane@example.com";
/// The second of the two people the warehouse tests' simulated tables hold a row for.
pub const JOHN: &str = "john@example.com";

/// Declares `#[tokio::test] fn the_connector_passes_the_warehouse_suite()`: `$start` (an
/// expression awaiting to `(simulator, connector)`, the simulated table holding rows for
/// [`JANE`] and [`JOHN`] and offering `rows()`) passes the [`WarehouseSuite`], its runs'
/// handles named by the evidence key `$handles_key` and listed by `$runs` (a closure taking the
/// simulator).
#[macro_export]
macro_rules! warehouse_suite_test {
    (start: $start:expr, handles_key: $handles_key:expr, runs: $runs:expr $(,)?) => {
        #[tokio::test]
        async fn the_connector_passes_the_warehouse_suite() {
            let (sim, connector) = $start.await;
            let runs = $runs;
            $crate::testing::warehouse::WarehouseSuite {
                connector: &connector,
                people: [
                    $crate::testing::warehouse::JANE,
                    $crate::testing::warehouse::JOHN,
                ],
                handles_key: $handles_key,
                runs: &|| runs(&sim),
                rows: &|| sim.rows().len(),
            }
            .run()
            .await;
        }
    };
}

/// A request of `kind` for the person with email `address`.
pub fn request(kind: RequestKind, address: &str) -> SuppressionWork {
    work(kind).with(email(address))
}

/// Applies `item`, an opt-out of a person the table holds one row for, through `connector` and
/// panics unless it is `FLAGGED` on one row, left `PENDING` for its read-back; answers the
/// completion.
pub async fn assert_opt_out_flags_one_row(
    connector: &dyn Connector,
    item: &SuppressionWork,
) -> Completion {
    let completion = completed(connector, Operation::Suppress, item).await;
    assert_eq!(completion.action, ConfirmationAction::Flagged);
    assert_eq!(completion.verification, VerificationStatus::Pending);
    assert_eq!(completion.evidence[EVIDENCE_ROWS_AFFECTED], "1");
    completion
}

/// Panics unless reading `item`'s `completion` back through `connector` says `expected`.
pub async fn assert_read_back(
    connector: &dyn Connector,
    item: &SuppressionWork,
    completion: &Completion,
    expected: VerificationStatus,
) {
    assert_eq!(connector.verify(item, completion).await, expected);
}

/// Applies `batch` (the first call of which the vendor refuses with a rate limit) through
/// `connector` and panics unless every item is to be retried after `after`.
pub async fn assert_batch_retried_after(
    connector: &dyn Connector,
    batch: &[SuppressionWork],
    after: std::time::Duration,
) {
    let results = connector
        .apply(Operation::Suppress, batch)
        .await
        .expect("the batch itself does not fail");
    assert_eq!(results.len(), batch.len(), "one result per item");
    for result in results {
        assert_retry_after(result, after);
    }
}

/// The statement templates the suite expects a warehouse recipient to be configured with, over
/// one customers table: `opt_out` sets `do_not_sell` and `limit` sets `limit_sensitive` on the
/// rows whose `email_sha256` matches, `delete` removes them; `opt_out` and `delete` have a check
/// query counting the rows still not suppressed, `limit` has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    /// The opt-out statement.
    pub opt_out: String,
    /// The opt-out's check: how many matching rows still lack the flag.
    pub opt_out_check: String,
    /// The limit-sensitive statement.
    pub limit: String,
    /// The deletion statement.
    pub delete: String,
    /// The deletion's check: how many matching rows remain.
    pub delete_check: String,
}

impl Templates {
    /// The templates over `table`, as a recipient configures them (`:email_sha256`).
    pub fn over(table: &str) -> Self {
        Self {
            opt_out: format!(
                "UPDATE {table} SET do_not_sell = TRUE WHERE email_sha256 = :email_sha256"
            ),
            opt_out_check: format!(
                "SELECT COUNT(*) FROM {table} WHERE email_sha256 = :email_sha256 AND NOT do_not_sell"
            ),
            limit: format!(
                "UPDATE {table} SET limit_sensitive = TRUE WHERE email_sha256 = :email_sha256"
            ),
            delete: format!("DELETE FROM {table} WHERE email_sha256 = :email_sha256"),
            delete_check: format!("SELECT COUNT(*) FROM {table} WHERE email_sha256 = :email_sha256"),
        }
    }

    /// The same statements as the vendor receives them: `:email_sha256` written as the
    /// dialect's `parameter` (`?`, `@email_sha256`), spelled out by the test rather than taken
    /// from the connector.
    pub fn sent_as(&self, parameter: &str) -> Self {
        let sent = |text: &String| text.replace(":email_sha256", parameter);
        Self {
            opt_out: sent(&self.opt_out),
            opt_out_check: sent(&self.opt_out_check),
            limit: sent(&self.limit),
            delete: sent(&self.delete),
            delete_check: sent(&self.delete_check),
        }
    }

    /// The `[settings.opt_out]`, `[settings.limit]` and `[settings.delete]` tables of a
    /// `[[recipients]]` block, to follow its other settings.
    pub fn settings(&self) -> String {
        format!(
            "[settings.opt_out]\nstatement = \"{}\"\ncheck = \"{}\"\n\
             [settings.limit]\nstatement = \"{}\"\n\
             [settings.delete]\nstatement = \"{}\"\ncheck = \"{}\"\n",
            self.opt_out, self.opt_out_check, self.limit, self.delete, self.delete_check
        )
    }
}

/// The `[[recipients]]` block `id` of `kind` at `base_url` the warehouse contract tests start
/// from: a 500 ms timeout, statements polled every 5 ms for up to 2 s, the vendor's own TOML
/// `settings` lines, then `templates`; each setting of the TOML `overrides` replaces its own.
pub fn recipient(
    id: &str,
    kind: &str,
    base_url: &str,
    settings: &str,
    templates: &Templates,
    overrides: &str,
) -> RecipientConfig {
    let settings = format!(
        "{settings}\npoll_interval_ms = 5\nmax_wait_ms = 2000\n{}",
        templates.settings()
    );
    service_provider(id, kind, base_url, 500, &settings, overrides)
}

/// Deletes the person with email `address` through `connector` and panics unless reading the
/// deletion back says `PENDING`: what a check query answering rows of the wrong shape, or a
/// run still going, must leave.
pub async fn assert_deletion_read_back_pending(connector: &dyn Connector, address: &str) {
    let (_, _, read_back) = deletion_read_back(connector, address).await;
    assert_eq!(read_back, VerificationStatus::Pending);
}

/// Narrows `recipient` to deletions run by the one template `statement` (no check): the other
/// rights' templates are removed and only `DELETE` requests apply.
pub fn deleting_only(recipient: &mut RecipientConfig, statement: &str) {
    recipient.request_kinds = vec![RequestKind::Delete];
    recipient.settings.remove("opt_out");
    recipient.settings.remove("limit");
    let mut delete = toml::Table::new();
    delete.insert("statement".into(), statement.into());
    recipient
        .settings
        .insert("delete".into(), toml::Value::Table(delete));
}

/// Deletes by the raw customer id `cust-4711` through `connector`, whose deletion template
/// binds `:customer_id` and which the vendor refuses quoting the bound value, and panics unless
/// the item is refused permanently with `reason` in the text and the value replaced.
pub async fn assert_refused_without_the_bound_value(connector: &dyn Connector, reason: &str) {
    let item = work(RequestKind::Delete).with(with_raw(IdentifierType::CustomerId, "cust-4711"));
    let result = one(connector.apply(Operation::Delete, &[item]).await);
    assert_refused_without(result, "cust-4711", reason);
}

/// Deletes the person with email `address` through `connector` and answers the item, its
/// completion and what reading it back says.
pub async fn deletion_read_back(
    connector: &dyn Connector,
    address: &str,
) -> (SuppressionWork, Completion, VerificationStatus) {
    let item = request(RequestKind::Delete, address);
    let completion = one(connector
        .apply(Operation::Delete, std::slice::from_ref(&item))
        .await)
    .unwrap_or_else(|error| panic!("the deletion failed: {error}"));
    let status = connector.verify(&item, &completion).await;
    (item, completion, status)
}

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
        request(kind, self.people[person])
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

    #[test]
    fn the_templates_are_sent_with_the_dialects_parameter_and_configured_as_toml() {
        let templates = Templates::over("crm.customers");
        assert_eq!(
            templates.sent_as("?").delete,
            "DELETE FROM crm.customers WHERE email_sha256 = ?"
        );
        assert_eq!(
            templates.sent_as("@email_sha256").opt_out_check,
            "SELECT COUNT(*) FROM crm.customers WHERE email_sha256 = @email_sha256 AND NOT do_not_sell"
        );
        let block: toml::Table = toml::from_str(&templates.settings()).unwrap();
        let settings = &block["settings"];
        assert_eq!(
            settings["opt_out"]["statement"].as_str(),
            Some(&*templates.opt_out)
        );
        assert_eq!(
            settings["opt_out"]["check"].as_str(),
            Some(&*templates.opt_out_check)
        );
        assert_eq!(
            settings["limit"]["statement"].as_str(),
            Some(&*templates.limit)
        );
        assert!(
            settings["limit"].get("check").is_none(),
            "limit has no check"
        );
        assert_eq!(
            settings["delete"]["statement"].as_str(),
            Some(&*templates.delete)
        );
        assert_eq!(
            settings["delete"]["check"].as_str(),
            Some(&*templates.delete_check)
        );
    }

    #[test]
    fn deleting_only_keeps_one_deletion_template_and_deletions_alone() {
        let mut recipient: RecipientConfig = toml::from_str(&format!(
            "id = \"w\"\nkind = \"snowflake\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"http://127.0.0.1:1\"\n[settings]\naccount = \"a\"\n{}",
            Templates::over("t").settings()
        ))
        .unwrap();
        deleting_only(&mut recipient, "DELETE FROM t WHERE id = :customer_id");
        assert_eq!(recipient.request_kinds, vec![RequestKind::Delete]);
        assert!(recipient.settings.get("opt_out").is_none());
        assert!(recipient.settings.get("limit").is_none());
        assert_eq!(recipient.settings["account"].as_str(), Some("a"));
        let delete = recipient.settings["delete"].as_table().unwrap();
        assert_eq!(delete.len(), 1, "no check: {delete:?}");
        assert_eq!(
            delete["statement"].as_str(),
            Some("DELETE FROM t WHERE id = :customer_id")
        );
    }

    #[tokio::test]
    #[should_panic(expected = "expected a permanent refusal")]
    async fn a_connector_that_refuses_nothing_fails_the_bound_value_check() {
        assert_refused_without_the_bound_value(&Idle, "Bad value").await;
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
