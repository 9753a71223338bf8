//! The `postgres` resolver against a real PostgreSQL server: the throwaway cluster that
//! `deploy/local/postgres up` starts on 127.0.0.1 (never a fake). Each test works in a schema
//! of its own and names its connection string by an environment variable of its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use hush_contracts::connector::RawValue;
use hush_contracts::events::{IdentifierType, ResolutionOutcome};
use hush_contracts::identifiers::sha256_hex;
use hush_resolution::{Resolution, ResolverConfig, Resolvers, SubjectIdentifier};
use tokio_postgres::NoTls;

/// The test cluster: its plaintext URL and the CA that signed its TLS certificate.
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
                "`deploy/local/postgres {command}` failed (run deploy/local/prerequisites for \
                 Debian's postgresql package):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap().trim().to_owned()
        };
        Cluster {
            url: run("up"),
            ca: PathBuf::from(run("ca")),
        }
    })
}

/// A schema of the test's own with a `customers` table.
struct Db {
    schema: String,
    admin: tokio_postgres::Client,
}

impl Db {
    async fn new() -> Db {
        let (admin, connection) = tokio_postgres::connect(&cluster().url, NoTls)
            .await
            .expect("the test cluster accepts connections");
        tokio::spawn(connection);
        let schema = format!("resolution_{}", uuid::Uuid::new_v4().simple());
        admin
            .batch_execute(&format!(
                "CREATE SCHEMA {schema};
                 CREATE TABLE {schema}.customers (
                     customer_id text PRIMARY KEY, email text, email_sha256 text,
                     account_no bigint, device_id text);
                 INSERT INTO {schema}.customers VALUES
                     ('cust-1001', 'jane.doe@example.com', '{jane}', 4711, 'dev-a'),
                     ('cust-1002', 'o''brien@example.com', NULL, NULL, NULL),
                     ('cust-1003', 'sam.lee@example.com', NULL, 4712, 'dev-b'),
                     ('cust-1004', 'sam.lee@example.com', NULL, NULL, NULL);",
                jane = sha256_hex("jane.doe@example.com"),
            ))
            .await
            .expect("schema created");
        Db { schema, admin }
    }

    /// Resolvers from one `[[resolvers]]` entry whose connection string is `url`.
    fn resolvers(&self, url: &str, entry: &str) -> Resolvers {
        let var = format!("HUSH_TEST_RESOLVER_DB_{}", uuid::Uuid::new_v4().simple());
        std::env::set_var(&var, url);
        let text = format!(
            "[[resolvers]]\nid = \"customer-db\"\nkind = \"postgres\"\nurl_env = \"{var}\"\n\
             backoff_ms = 10\nmax_backoff_ms = 20\n{}",
            entry.replace("{schema}", &self.schema)
        );
        #[derive(serde::Deserialize)]
        struct File {
            resolvers: Vec<ResolverConfig>,
        }
        let file: File = toml::from_str(&text).expect("resolver configuration");
        Resolvers::build(&file.resolvers).expect("resolvers build")
    }
}

fn email(value: &str) -> SubjectIdentifier {
    SubjectIdentifier {
        kind: IdentifierType::Email,
        sha256: sha256_hex(value),
        value: Some(RawValue::new(value)),
    }
}

fn found_values(resolution: &Resolution) -> Vec<(IdentifierType, String)> {
    resolution
        .found
        .iter()
        .map(|f| {
            (
                f.kind,
                f.value
                    .as_ref()
                    .map(|v| v.expose().to_owned())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

const BY_EMAIL: &str = r#"
query = "SELECT customer_id, device_id FROM {schema}.customers WHERE email = :email"
columns = { customer_id = "CUSTOMER_ID", device_id = "DEVICE_ID" }
"#;

#[tokio::test]
async fn an_email_resolves_to_the_customer_id_and_device_it_maps_to() {
    let db = Db::new().await;
    let resolvers = db.resolvers(&cluster().url, BY_EMAIL);
    let resolution = resolvers.resolve(&[email("jane.doe@example.com")]).await;
    assert_eq!(
        found_values(&resolution),
        [
            (IdentifierType::CustomerId, "cust-1001".to_owned()),
            (IdentifierType::DeviceId, "dev-a".to_owned())
        ]
    );
    let step = &resolution.steps[0];
    assert_eq!(step.outcome, ResolutionOutcome::Resolved);
    assert_eq!(step.attempts, 1);
    assert_eq!(step.identifiers[0].sha256, sha256_hex("cust-1001"));
    assert_eq!(step.reason, None);
}

#[tokio::test]
async fn parameters_are_bound_so_a_quote_matches_and_an_injection_matches_nothing() {
    let db = Db::new().await;
    let resolvers = db.resolvers(&cluster().url, BY_EMAIL);
    let quoted = resolvers.resolve(&[email("o'brien@example.com")]).await;
    assert_eq!(
        found_values(&quoted),
        [(IdentifierType::CustomerId, "cust-1002".to_owned())],
        "a NULL device id is not an identifier"
    );
    let injection = resolvers.resolve(&[email("x'or'1'='1@example.com")]).await;
    assert_eq!(
        injection.steps[0].outcome,
        ResolutionOutcome::UnknownSubject
    );
    assert!(injection.found.is_empty());
}

#[tokio::test]
async fn every_row_is_taken_and_integers_become_identifiers() {
    let db = Db::new().await;
    let resolvers = db.resolvers(
        &cluster().url,
        r#"
        query = "SELECT customer_id, account_no FROM {schema}.customers WHERE email = :email ORDER BY customer_id"
        columns = { customer_id = "CUSTOMER_ID", account_no = "CUSTOMER_ID" }
        "#,
    );
    let resolution = resolvers.resolve(&[email("sam.lee@example.com")]).await;
    assert_eq!(
        found_values(&resolution),
        [
            (IdentifierType::CustomerId, "cust-1003".to_owned()),
            (IdentifierType::CustomerId, "4712".to_owned()),
            (IdentifierType::CustomerId, "cust-1004".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_hash_parameter_looks_up_by_the_hash_and_an_integer_one_skips_what_is_not_a_number() {
    let db = Db::new().await;
    let by_hash = db.resolvers(
        &cluster().url,
        r#"
        query = "SELECT customer_id FROM {schema}.customers WHERE email_sha256 = :email_sha256"
        columns = { customer_id = "CUSTOMER_ID" }
        "#,
    );
    let hashed_only = SubjectIdentifier {
        value: None,
        ..email("jane.doe@example.com")
    };
    let resolution = by_hash.resolve(&[hashed_only]).await;
    assert_eq!(resolution.steps[0].outcome, ResolutionOutcome::Resolved);
    assert_eq!(resolution.found[0].sha256, sha256_hex("cust-1001"));

    let by_account = db.resolvers(
        &cluster().url,
        r#"
        query = "SELECT email FROM {schema}.customers WHERE account_no = :customer_id"
        columns = { email = "EMAIL" }
        "#,
    );
    let customer = |value: &str| SubjectIdentifier {
        kind: IdentifierType::CustomerId,
        sha256: sha256_hex(value),
        value: Some(RawValue::new(value)),
    };
    let resolution = by_account
        .resolve(&[customer("cust-1001"), customer("4711")])
        .await;
    assert_eq!(
        found_values(&resolution),
        [(IdentifierType::Email, "jane.doe@example.com".to_owned())]
    );
}

#[tokio::test]
async fn a_request_without_the_parameter_is_not_applicable() {
    let db = Db::new().await;
    let resolvers = db.resolvers(&cluster().url, BY_EMAIL);
    let cookie = SubjectIdentifier {
        kind: IdentifierType::CookieId,
        sha256: sha256_hex("c-1"),
        value: Some(RawValue::new("c-1")),
    };
    let resolution = resolvers.resolve(&[cookie]).await;
    let step = &resolution.steps[0];
    assert_eq!(step.outcome, ResolutionOutcome::NotApplicable);
    assert_eq!(
        step.reason.as_deref(),
        Some("the query needs :email, and the request carries no raw EMAIL")
    );
}

#[tokio::test]
async fn the_transaction_is_read_only_so_a_writing_query_is_refused_and_writes_nothing() {
    let db = Db::new().await;
    let resolvers = db.resolvers(
        &cluster().url,
        r#"
        query = "WITH gone AS (DELETE FROM {schema}.customers WHERE email = :email RETURNING customer_id) SELECT customer_id FROM gone"
        columns = { customer_id = "CUSTOMER_ID" }
        "#,
    );
    let resolution = resolvers.resolve(&[email("jane.doe@example.com")]).await;
    let step = &resolution.steps[0];
    assert_eq!(step.outcome, ResolutionOutcome::Skipped);
    assert_eq!(step.attempts, 1, "a refusal is not retried");
    let reason = step.reason.as_deref().unwrap();
    assert!(reason.starts_with("refused: SQLSTATE 25006"), "{reason}");
    let left: i64 = db
        .admin
        .query_one(
            &format!("SELECT count(*) FROM {}.customers", db.schema),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 4);
}

#[tokio::test]
async fn a_column_the_configuration_does_not_map_is_named() {
    let db = Db::new().await;
    let resolvers = db.resolvers(
        &cluster().url,
        r#"
        query = "SELECT customer_id, email FROM {schema}.customers WHERE email = :email"
        columns = { customer_id = "CUSTOMER_ID" }
        "#,
    );
    let resolution = resolvers.resolve(&[email("jane.doe@example.com")]).await;
    assert_eq!(
        resolution.steps[0].reason.as_deref(),
        Some(
            "refused: the query returns column `email`, which columns does not map to an \
             identifier type"
        )
    );
}

#[tokio::test]
async fn a_database_that_is_down_is_retried_then_skipped_and_a_wrong_password_is_refused() {
    let db = Db::new().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = db.resolvers(
        &format!("postgres://hush:hush-local@127.0.0.1:{port}/postgres?sslmode=disable"),
        BY_EMAIL,
    );
    let resolution = down.resolve(&[email("jane.doe@example.com")]).await;
    let step = &resolution.steps[0];
    assert_eq!(step.outcome, ResolutionOutcome::Skipped);
    assert_eq!(step.attempts, 3);
    let reason = step.reason.as_deref().unwrap();
    assert!(
        reason.starts_with("unavailable after 3 attempts: database unreachable"),
        "{reason}"
    );
    assert!(!reason.contains("hush-local"), "{reason}");

    let wrong = db.resolvers(&cluster().url.replace("hush-local", "not-it"), BY_EMAIL);
    let resolution = wrong.resolve(&[email("jane.doe@example.com")]).await;
    let step = &resolution.steps[0];
    assert_eq!(
        (step.outcome, step.attempts),
        (ResolutionOutcome::Skipped, 1)
    );
    let reason = step.reason.as_deref().unwrap();
    assert!(reason.contains("SQLSTATE 28P01"), "{reason}");
    assert!(!reason.contains("not-it"), "{reason}");
}

#[tokio::test]
async fn a_look_up_abandoned_at_its_timeout_leaves_no_broken_connection_behind() {
    let db = Db::new().await;
    let resolvers = db.resolvers(
        &cluster().url,
        r#"
        timeout_ms = 1500
        max_attempts = 1
        query = "SELECT customer_id FROM {schema}.customers, pg_sleep(CASE WHEN :email = 'slow@example.com' THEN 5 ELSE 0 END) WHERE email = :email"
        columns = { customer_id = "CUSTOMER_ID" }
        "#,
    );
    let slow = resolvers.resolve(&[email("slow@example.com")]).await;
    assert_eq!(
        slow.steps[0].reason.as_deref(),
        Some("unavailable after 1 attempts: no answer within 1500 ms")
    );
    let next = resolvers.resolve(&[email("jane.doe@example.com")]).await;
    assert_eq!(
        found_values(&next),
        [(IdentifierType::CustomerId, "cust-1001".to_owned())]
    );
}

#[tokio::test]
async fn tls_is_used_when_the_connection_string_requires_it() {
    let db = Db::new().await;
    let port = cluster()
        .url
        .split("@127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the URL names 127.0.0.1:<port>");
    let url = format!("postgres://hush:hush-local@localhost:{port}/postgres?sslmode=require");
    let entry = format!("tls_ca_file = \"{}\"\n{BY_EMAIL}", cluster().ca.display());
    let resolution = db
        .resolvers(&url, &entry)
        .resolve(&[email("jane.doe@example.com")])
        .await;
    assert_eq!(resolution.steps[0].outcome, ResolutionOutcome::Resolved);
    let untrusted = db
        .resolvers(&url, BY_EMAIL)
        .resolve(&[email("jane.doe@example.com")])
        .await;
    assert_eq!(
        untrusted.steps[0].outcome,
        ResolutionOutcome::Skipped,
        "a server certificate no trusted CA signed is refused"
    );
}
