//! Contract tests: the PostgreSQL connector against a real PostgreSQL server — the throwaway
//! cluster `deploy/local/postgres up` starts on 127.0.0.1:55432 (never a fake). Each test works
//! in a schema of its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use hush_connector_kit::testing::{
    assert_names_field, assert_refused, completed, hashed, with_raw, work, ComplianceSuite, WorkExt,
};
use hush_connector_postgres::{
    PostgresConnector, EVIDENCE_ROWS_AFFECTED, EVIDENCE_STATEMENT, EVIDENCE_STATEMENT_SHA256,
};
use hush_contracts::connector::{
    BatchResult, Completion, Connector, ConnectorError, FromRecipient, Operation, RawValue,
    SuppressionWork, WorkIdentifier,
};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};
use hush_contracts::identifiers::{hash_identifier, sha256_hex};
use hush_contracts::recipients::RecipientConfig;
use tokio_postgres::NoTls;

/// Environment variables holding connection strings, set once before any test reads them.
const PLAIN: &str = "HUSH_TEST_POSTGRES_URL";
const TLS: &str = "HUSH_TEST_POSTGRES_TLS_URL";
const WRONG_PASSWORD: &str = "HUSH_TEST_POSTGRES_WRONG_PASSWORD_URL";
const CLOSED_PORT: &str = "HUSH_TEST_POSTGRES_CLOSED_PORT_URL";
const MALFORMED: &str = "HUSH_TEST_POSTGRES_MALFORMED_URL";

/// The test cluster, started by `deploy/local/postgres up` once per test binary.
struct Cluster {
    url: String,
    ca: PathBuf,
}

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/postgres");
        let run = |command: &str| {
            let output = Command::new(&script)
                .arg(command)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                output.status.success(),
                "`deploy/local/postgres {command}` failed; the PostgreSQL server is needed: run \
                 deploy/local/prerequisites (Debian's postgresql package).\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap().trim().to_owned()
        };
        let url = run("up");
        let ca = PathBuf::from(run("ca"));
        let port = url
            .split("@127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .expect("the URL names 127.0.0.1:<port>")
            .to_owned();
        std::env::set_var(PLAIN, &url);
        std::env::set_var(
            TLS,
            format!("postgres://hush:hush-local@localhost:{port}/postgres?sslmode=require"),
        );
        std::env::set_var(
            WRONG_PASSWORD,
            url.replace("hush-local", "not-the-password"),
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        std::env::set_var(
            CLOSED_PORT,
            format!("postgres://hush:hush-local@127.0.0.1:{closed_port}/postgres?sslmode=disable"),
        );
        std::env::set_var(
            MALFORMED,
            "postgres://hush:topsecret-pw@127.0.0.1:5432/postgres?sslmode=sometimes",
        );
        Cluster { url, ca }
    })
}

/// A schema of this test's own, with a `customers` table and an `orders` table referencing it.
struct Db {
    admin: tokio_postgres::Client,
    schema: String,
}

impl Db {
    async fn new() -> Self {
        let (admin, connection) = tokio_postgres::connect(&cluster().url, NoTls)
            .await
            .expect("connect to the test cluster");
        tokio::spawn(connection);
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        admin
            .batch_execute(&format!(
                "CREATE SCHEMA {schema};
                 CREATE TABLE {schema}.customers (
                     id bigint PRIMARY KEY, email text, email_sha256 text,
                     do_not_sell boolean NOT NULL DEFAULT false,
                     limit_sensitive boolean NOT NULL DEFAULT false,
                     opted_out_by text);
                 CREATE TABLE {schema}.orders (
                     id bigint PRIMARY KEY, customer_id bigint REFERENCES {schema}.customers (id));"
            ))
            .await
            .unwrap();
        Self { admin, schema }
    }

    /// Adds a customer with `email` (stored raw and hashed as intake hashes it).
    async fn customer(&self, id: i64, email: &str) {
        let hash =
            hash_identifier(IdentifierType::Email, email).unwrap_or_else(|_| sha256_hex(email));
        self.admin
            .execute(
                &format!(
                    "INSERT INTO {}.customers (id, email, email_sha256) VALUES ($1, $2, $3)",
                    self.schema
                ),
                &[&id, &email, &hash],
            )
            .await
            .unwrap();
    }

    /// `(do_not_sell, limit_sensitive, opted_out_by)` of customer `id`, if it exists.
    async fn flags(&self, id: i64) -> Option<(bool, bool, Option<String>)> {
        self.admin
            .query_opt(
                &format!(
                    "SELECT do_not_sell, limit_sensitive, opted_out_by FROM {}.customers WHERE id = $1",
                    self.schema
                ),
                &[&id],
            )
            .await
            .unwrap()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
    }

    async fn customers(&self) -> i64 {
        self.admin
            .query_one(
                &format!("SELECT count(*) FROM {}.customers", self.schema),
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// The settings block flagging, limiting, deleting and opting back in by hashed email, each
    /// with its check.
    fn settings(&self) -> String {
        let s = &self.schema;
        format!(
            r#"
[settings.opt_out]
statement = "UPDATE {s}.customers SET do_not_sell = true, opted_out_by = :request_id WHERE email_sha256 = :email_sha256"
check = "SELECT count(*) FROM {s}.customers WHERE email_sha256 = :email_sha256 AND NOT do_not_sell"
[settings.limit]
statement = "UPDATE {s}.customers SET limit_sensitive = true WHERE email_sha256 = :email_sha256"
check = "SELECT count(*) FROM {s}.customers WHERE email_sha256 = :email_sha256 AND NOT limit_sensitive"
[settings.delete]
statement = "DELETE FROM {s}.customers WHERE email_sha256 = :email_sha256"
check = "SELECT count(*) FROM {s}.customers WHERE email_sha256 = :email_sha256"
[settings.opt_in]
statement = "UPDATE {s}.customers SET do_not_sell = false WHERE email_sha256 = :email_sha256"
check = "SELECT count(*)::int4 FROM {s}.customers WHERE email_sha256 = :email_sha256 AND do_not_sell"
"#
        )
    }

    fn connector(&self) -> PostgresConnector {
        connector(PLAIN, "", &self.settings())
    }

    /// The server process of the connector's session, found by the last query it ran (the
    /// check queries name this test's schema).
    async fn connector_backend(&self) -> i32 {
        self.admin
            .query_one(
                "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE $1",
                &[&format!("%{}.customers%", self.schema)],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// What `query` (one boolean column, `$1` the connector's backend pid) answers about the
    /// connector's session.
    async fn about_connector_session(&self, query: &str) -> bool {
        let backend = self.connector_backend().await;
        let row = self.admin.query_one(query, &[&backend]).await.unwrap();
        row.get(0)
    }
}

/// Opts `jane@example.com` out through `connector` and checks the read-back verifies it.
async fn opt_out_jane_verified(connector: &PostgresConnector) {
    let jane = person(RequestKind::OptOutSaleShare, "jane@example.com");
    let completion = completed(connector, Operation::Suppress, &jane).await;
    assert_eq!(
        connector.verify(&jane, &completion).await,
        VerificationStatus::Verified
    );
}

fn recipient(url_var: &str, extra: &str, settings: &str) -> RecipientConfig {
    cluster();
    let mut recipient: RecipientConfig = toml::from_str(&format!(
        "id = \"db\"\nkind = \"postgres\"\nrole = \"SERVICE_PROVIDER\"\nbase_url = \"http://127.0.0.1\"\n\
         credentials = {{ url = \"{url_var}\" }}\n{extra}\n{settings}"
    ))
    .unwrap();
    if !extra.contains("timeout_ms") {
        recipient.timeout_ms = 2000;
    }
    recipient
}

fn connector(url_var: &str, extra: &str, settings: &str) -> PostgresConnector {
    PostgresConnector::from_recipient(&recipient(url_var, extra, settings)).unwrap()
}

fn person(kind: RequestKind, address: &str) -> SuppressionWork {
    work(kind).with(hashed(IdentifierType::Email, address))
}

/// An email identifier carrying exactly `value`, valid address or not.
fn literal_email(value: &str) -> WorkIdentifier {
    WorkIdentifier {
        kind: IdentifierType::Email,
        sha256: sha256_hex(value),
        raw: Some(RawValue::new(value)),
    }
}

/// What `connector` answers to opting out `jane@example.com`.
async fn opt_out_jane(connector: &PostgresConnector) -> BatchResult {
    let jane = person(RequestKind::OptOutSaleShare, "jane@example.com");
    connector.apply(Operation::Suppress, &[jane]).await
}

fn done(result: &Result<Completion, ConnectorError>) -> &Completion {
    result.as_ref().expect("the item completed")
}

#[tokio::test]
async fn opt_out_and_limit_flag_only_the_subjects_rows_and_are_read_back() {
    let db = Db::new().await;
    db.customer(1, "jane@example.com").await;
    db.customer(2, "jane@example.com").await; // a duplicate record of the same person
    db.customer(3, "john@example.com").await;
    db.customer(4, "else@example.com").await;
    let connector = db.connector();
    let batch = [
        person(RequestKind::OptOutSaleShare, "Jane@Example.com "),
        person(RequestKind::LimitSensitive, "john@example.com"),
        person(RequestKind::OptOutSaleShare, "nobody@example.com"),
    ];
    let results = connector.apply(Operation::Suppress, &batch).await.unwrap();

    let jane = done(&results[0]);
    assert_eq!(jane.action, ConfirmationAction::Flagged);
    assert_eq!(jane.verification, VerificationStatus::Pending);
    assert_eq!(jane.evidence[EVIDENCE_ROWS_AFFECTED], "2");
    assert_eq!(
        jane.evidence[EVIDENCE_STATEMENT],
        "settings.opt_out.statement"
    );
    assert_eq!(jane.evidence[EVIDENCE_STATEMENT_SHA256].len(), 64);
    assert_eq!(jane.evidence["database"], "postgres");
    let john = done(&results[1]);
    assert_eq!(john.action, ConfirmationAction::Flagged);
    assert_eq!(
        john.evidence[EVIDENCE_STATEMENT],
        "settings.limit.statement"
    );
    let nobody = done(&results[2]);
    assert_eq!(nobody.action, ConfirmationAction::NotFound);
    assert_eq!(nobody.evidence[EVIDENCE_ROWS_AFFECTED], "0");

    let by = Some(batch[0].request_id.clone());
    assert_eq!(db.flags(1).await, Some((true, false, by.clone())));
    assert_eq!(db.flags(2).await, Some((true, false, by)));
    assert_eq!(db.flags(3).await, Some((false, true, None)));
    assert_eq!(db.flags(4).await, Some((false, false, None)));

    for (work, result) in batch.iter().zip(&results) {
        assert_eq!(
            connector.verify(work, done(result)).await,
            VerificationStatus::Verified
        );
    }
}

#[tokio::test]
async fn delete_removes_the_subjects_rows_and_the_read_back_finds_none() {
    let db = Db::new().await;
    db.customer(1, "jane@example.com").await;
    db.customer(2, "john@example.com").await;
    let connector = db.connector();
    let jane = person(RequestKind::Delete, "jane@example.com");
    let completion = &completed(&connector, Operation::Delete, &jane).await;
    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.evidence[EVIDENCE_ROWS_AFFECTED], "1");
    assert_eq!(
        completion.evidence[EVIDENCE_STATEMENT],
        "settings.delete.statement"
    );
    assert_eq!(db.flags(1).await, None);
    assert!(db.flags(2).await.is_some());
    assert_eq!(
        connector.verify(&jane, completion).await,
        VerificationStatus::Verified
    );

    // Applied again (a retry after a crash): nothing left to delete, and still verified.
    let completion = completed(&connector, Operation::Delete, &jane).await;
    assert_eq!(completion.action, ConfirmationAction::NotFound);
    assert_eq!(
        connector.verify(&jane, &completion).await,
        VerificationStatus::Verified
    );
}

#[tokio::test]
async fn the_read_back_fails_when_the_flag_no_longer_holds() {
    let db = Db::new().await;
    db.customer(1, "jane@example.com").await;
    let connector = db.connector();
    let jane = person(RequestKind::OptOutSaleShare, "jane@example.com");
    let completion = completed(&connector, Operation::Suppress, &jane).await;
    db.admin
        .execute(
            &format!("UPDATE {}.customers SET do_not_sell = false", db.schema),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        connector.verify(&jane, &completion).await,
        VerificationStatus::Failed
    );
}

#[tokio::test]
async fn without_a_check_the_outcome_is_unverifiable() {
    let db = Db::new().await;
    db.customer(1, "jane@example.com").await;
    let s = &db.schema;
    let connector = connector(
        PLAIN,
        "request_kinds = [\"DELETE\"]",
        &format!("[settings.delete]\nstatement = \"DELETE FROM {s}.customers WHERE email_sha256 = :email_sha256\"\n"),
    );
    let jane = person(RequestKind::Delete, "jane@example.com");
    let completion = &completed(&connector, Operation::Delete, &jane).await;
    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.verification, VerificationStatus::Unverifiable);
    assert_eq!(
        connector.verify(&jane, completion).await,
        VerificationStatus::Unverifiable
    );
    let opt_out = opt_out_jane(&connector).await.unwrap();
    assert_eq!(done(&opt_out[0]).action, ConfirmationAction::NotApplicable);
}

#[tokio::test]
async fn a_template_with_a_missing_column_fails_permanently_at_first_use_naming_the_setting() {
    let db = Db::new().await;
    db.customer(1, "jane@example.com").await;
    let settings = db
        .settings()
        .replace("SET limit_sensitive", "SET limit_sensitiv");
    let connector = connector(PLAIN, "", &settings);
    // Every template is prepared when the connection opens: a deletion fails too, until the
    // limit statement is fixed.
    let error = connector
        .apply(
            Operation::Delete,
            &[person(RequestKind::Delete, "jane@example.com")],
        )
        .await
        .unwrap_err();
    assert_refused::<()>(
        Err(error),
        "recipients.db.settings.limit.statement does not prepare: SQLSTATE 42703: column \"limit_sensitiv\" of relation \"customers\" does not exist",
    );
    assert!(db.flags(1).await.is_some(), "nothing was deleted");
}

#[tokio::test]
async fn a_check_that_does_not_count_is_refused_at_first_use() {
    let db = Db::new().await;
    let settings = db
        .settings()
        .replace("SELECT count(*) FROM", "SELECT email FROM");
    let connector = connector(PLAIN, "", &settings);
    let error = opt_out_jane(&connector).await.unwrap_err();
    assert_refused::<()>(
        Err(error),
        "recipients.db.settings.opt_out.check must return one integer column",
    );
}

#[tokio::test]
async fn an_injection_attempt_in_an_identifier_value_is_only_a_value() {
    let db = Db::new().await;
    let injections = ["x' OR '1'='1", "'; DROP TABLE customers; --"];
    db.customer(1, "jane@example.com").await;
    db.customer(2, injections[0]).await;
    let s = &db.schema;
    let connector = connector(
        PLAIN,
        "request_kinds = [\"OPT_OUT_SALE_SHARE\"]",
        &format!("[settings.opt_out]\nstatement = \"UPDATE {s}.customers SET do_not_sell = true WHERE email = :email\"\n"),
    );
    let attempt = work(RequestKind::OptOutSaleShare)
        .with(literal_email(injections[0]))
        .with(literal_email(injections[1]));
    let completion = &completed(&connector, Operation::Suppress, &attempt).await;
    assert_eq!(completion.evidence[EVIDENCE_ROWS_AFFECTED], "1");
    assert_eq!(completion.evidence["executions"], "2");
    assert_eq!(
        db.flags(2).await.map(|f| f.0),
        Some(true),
        "the literal row"
    );
    assert_eq!(db.flags(1).await.map(|f| f.0), Some(false), "no other row");
    assert_eq!(db.customers().await, 2, "the table is still there");
}

#[tokio::test]
async fn postgres_errors_are_permanent_with_its_text_and_never_a_raw_identifier() {
    let db = Db::new().await;
    db.customer(1, "jane@example.com").await;
    db.customer(2, "john@example.com").await;
    db.admin
        .execute(
            &format!("INSERT INTO {}.orders VALUES (10, 1)", db.schema),
            &[],
        )
        .await
        .unwrap();
    let s = &db.schema;
    let settings = format!(
        "[settings.opt_out]\nstatement = \"UPDATE {s}.customers SET do_not_sell = true WHERE id = :customer_id::bigint\"\n\
         [settings.delete]\nstatement = \"DELETE FROM {s}.customers WHERE email_sha256 = :email_sha256\"\n"
    );
    let connector = connector(
        PLAIN,
        "request_kinds = [\"OPT_OUT_SALE_SHARE\", \"DELETE\"]",
        &settings,
    );

    let not_a_number = work(RequestKind::OptOutSaleShare)
        .with(with_raw(IdentifierType::CustomerId, "cust-jane-1"));
    let result = connector
        .apply(Operation::Suppress, &[not_a_number])
        .await
        .unwrap()
        .remove(0);
    assert_refused(
        result.clone(),
        "SQLSTATE 22P02: invalid input syntax for type bigint: \"<identifier>\"",
    );
    assert!(!format!("{result:?}").contains("cust-jane-1"));

    // A deletion the schema forbids is permanent; the next item of the batch still runs.
    let results = connector
        .apply(
            Operation::Delete,
            &[
                person(RequestKind::Delete, "jane@example.com"),
                person(RequestKind::Delete, "john@example.com"),
            ],
        )
        .await
        .unwrap();
    assert_refused(
        results[0].clone(),
        "SQLSTATE 23503: update or delete on table \"customers\" violates foreign key constraint",
    );
    assert_eq!(done(&results[1]).action, ConfirmationAction::Deleted);
    assert!(
        db.flags(1).await.is_some(),
        "the refused deletion rolled back"
    );
}

#[tokio::test]
async fn a_raw_placeholder_without_the_raw_value_is_permanent_and_no_identifier_is_not_found() {
    let db = Db::new().await;
    let s = &db.schema;
    let connector = connector(
        PLAIN,
        "request_kinds = [\"OPT_OUT_SALE_SHARE\"]",
        &format!("[settings.opt_out]\nstatement = \"UPDATE {s}.customers SET do_not_sell = true WHERE email = :email\"\ncheck = \"SELECT count(*) FROM {s}.customers WHERE email = :email AND NOT do_not_sell\"\n"),
    );
    let cookie_only =
        work(RequestKind::OptOutSaleShare).with(hashed(IdentifierType::CookieId, "c-1"));
    let results = connector
        .apply(
            Operation::Suppress,
            &[
                person(RequestKind::OptOutSaleShare, "jane@example.com"),
                cookie_only.clone(),
            ],
        )
        .await
        .unwrap();
    assert_refused(results[0].clone(), "intake must keep raw EMAIL values");
    let unmatched = done(&results[1]);
    assert_eq!(unmatched.action, ConfirmationAction::NotFound);
    assert!(unmatched.evidence["reason"].contains("no EMAIL identifier"));
    assert_eq!(
        connector.verify(&cookie_only, unmatched).await,
        VerificationStatus::Unverifiable,
        "nothing ran, so the check is not run either"
    );
}

#[tokio::test]
async fn a_locked_row_times_out_as_transient_and_the_rest_of_the_batch_waits() {
    let db = Db::new().await;
    db.customer(1, "jane@example.com").await;
    db.customer(2, "john@example.com").await;
    let connector = connector(PLAIN, "timeout_ms = 300", &db.settings());
    // Another session holds Jane's row.
    let (mut holder, connection) = tokio_postgres::connect(&cluster().url, NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let lock = holder.transaction().await.unwrap();
    lock.execute(
        &format!(
            "SELECT 1 FROM {}.customers WHERE id = 1 FOR UPDATE",
            db.schema
        ),
        &[],
    )
    .await
    .unwrap();

    let results = connector
        .apply(
            Operation::Suppress,
            &[
                person(RequestKind::OptOutSaleShare, "jane@example.com"),
                person(RequestKind::OptOutSaleShare, "john@example.com"),
            ],
        )
        .await
        .unwrap();
    for result in &results {
        assert!(
            matches!(result, Err(ConnectorError::Transient(text)) if text.contains("SQLSTATE 57014")),
            "{result:?}"
        );
    }
    assert_eq!(
        db.flags(2).await.map(|f| f.0),
        Some(false),
        "John was not tried"
    );

    lock.rollback().await.unwrap();
    let retried = opt_out_jane(&connector).await.unwrap();
    assert_eq!(done(&retried[0]).action, ConfirmationAction::Flagged);
}

#[tokio::test]
async fn a_connection_the_server_ended_is_replaced_on_the_next_call() {
    let db = Db::new().await;
    db.customer(1, "jane@example.com").await;
    let connector = db.connector();
    opt_out_jane_verified(&connector).await;
    let ended = db
        .about_connector_session("SELECT pg_terminate_backend($1)")
        .await;
    assert!(ended);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let limit = person(RequestKind::LimitSensitive, "jane@example.com");
    let completion = completed(&connector, Operation::Suppress, &limit).await;
    assert_eq!(completion.action, ConfirmationAction::Flagged);
    assert_eq!(db.flags(1).await.map(|f| f.1), Some(true));
}

#[tokio::test]
async fn an_unreachable_database_is_transient() {
    let db = Db::new().await;
    let connector = connector(CLOSED_PORT, "", &db.settings());
    let error = opt_out_jane(&connector).await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Transient(text) if text.contains("error connecting to server")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_refused_login_is_permanent_with_postgres_text() {
    let db = Db::new().await;
    let connector = connector(WRONG_PASSWORD, "", &db.settings());
    let error = opt_out_jane(&connector).await.unwrap_err();
    assert_refused::<()>(
        Err(error.clone()),
        "SQLSTATE 28P01: password authentication failed for user \"hush\"",
    );
    assert!(!error.to_string().contains("not-the-password"));
}

#[tokio::test]
async fn tls_with_the_clusters_ca_verifies_the_server_and_encrypts() {
    let db = Db::new().await;
    db.customer(1, "jane@example.com").await;
    let ca = format!("tls_ca_file = \"{}\"\n", cluster().ca.display());
    let settings = db.settings().replacen(
        "[settings.opt_out]",
        &format!("[settings]\n{ca}[settings.opt_out]"),
        1,
    );
    let connector = connector(TLS, "", &settings);
    opt_out_jane_verified(&connector).await;
    let encrypted = db
        .about_connector_session("SELECT ssl FROM pg_stat_ssl WHERE pid = $1")
        .await;
    assert!(encrypted, "the connector's session is TLS");
}

#[tokio::test]
async fn tls_with_a_certificate_nobody_trusts_is_permanent() {
    let db = Db::new().await;
    // The system roots do not include the cluster's own CA.
    let connector = connector(TLS, "", &db.settings());
    let error = opt_out_jane(&connector).await.unwrap_err();
    assert_refused::<()>(Err(error), "invalid peer certificate: UnknownIssuer");
}

#[test]
fn a_malformed_connection_string_is_refused_without_showing_it() {
    let error = PostgresConnector::from_recipient(&recipient(
        MALFORMED,
        "request_kinds = [\"DELETE\"]",
        "[settings.delete]\nstatement = \"DELETE FROM c WHERE e = :email_sha256\"\n",
    ))
    .err()
    .expect("refused");
    let text = error.to_string();
    assert!(text.contains("recipients.db.credentials.url"), "{text}");
    assert!(text.contains("sslmode"), "{text}");
    assert!(!text.contains("topsecret-pw"), "{text}");
    assert_names_field(
        PostgresConnector::from_recipient(&recipient("HUSH_TEST_POSTGRES_UNSET_URL", "", ""))
            .map(drop),
        "HUSH_TEST_POSTGRES_UNSET_URL",
    );
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let db = Db::new().await;
    db.customer(1, "suite@example.com").await;
    let connector = db.connector();
    ComplianceSuite {
        hang: Duration::from_secs(3),
        ..ComplianceSuite::new(&connector, &hush_connector_postgres::FACTORY, &|kind| {
            work(kind).with(with_raw(IdentifierType::Email, "suite@example.com"))
        })
        .applying_opt_ins()
    }
    .run()
    .await;
    assert_eq!(
        db.customers().await,
        0,
        "the suite's deletion reached the table"
    );
}
