//! Contract tests: the Snowflake connector against the SQL API simulator over loopback.

use std::time::Duration;

use hush_connector_kit::testing::warehouse::{
    self, assert_batch_retried_after, assert_deletion_read_back_pending,
    assert_opt_out_flags_one_row, assert_read_back, assert_refused_without_the_bound_value,
    deleting_only, deletion_read_back, request, Templates, JANE, JOHN,
};
use hush_connector_kit::testing::{
    assert_refused, completed, email_sha256, one, opt_out, opting_out, ComplianceSuite,
};
use hush_connector_snowflake::auth::{Authorization, SigningKey};
use hush_connector_snowflake::config::{key_pair, token_authorization};
use hush_connector_snowflake::sim::{
    SimAuth, SimOutcome, SimStatement, SnowflakeSim, SnowflakeSimConfig,
};
use hush_connector_snowflake::{
    SnowflakeConfig, SnowflakeConnector, SnowflakeSettings, EVIDENCE_HANDLES,
    EVIDENCE_ROWS_AFFECTED, EVIDENCE_RUNNING,
};
use hush_contracts::connector::{Connector, ConnectorError, Operation};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};
use hush_contracts::recipients::RecipientConfig;
use hush_sim_kit::jwt::RsaTestKey;
use hush_sim_kit::table::suite_row;
use hush_sim_kit::Fault;
use serde_json::json;

/// The statement templates the recipient is configured with.
fn templates() -> Templates {
    Templates::over("customers")
}

/// The same statements as Snowflake receives them: positional `?` bind variables.
fn sent() -> Templates {
    templates().sent_as("?")
}

fn keypair_sim() -> SnowflakeSimConfig {
    SnowflakeSimConfig {
        auth: SimAuth::KeyPair {
            account: "myorg-myaccount".into(),
            user: "hush_svc".into(),
            public_key_der: RsaTestKey::shared().public_der.clone(),
        },
        statements: SimStatement::for_templates(&sent()),
        rows: vec![suite_row(JANE), suite_row(JOHN)],
        running_reads: 0,
    }
}

/// The recipient block, with each setting of the TOML `overrides` in place of its own.
fn recipient(sim: &SnowflakeSim, overrides: &str) -> RecipientConfig {
    let settings = "account = \"myorg-myaccount\"\nuser = \"hush_svc\"\nwarehouse = \"PRIVACY_WH\"";
    warehouse::recipient(
        "warehouse",
        "snowflake",
        &sim.base_url(),
        settings,
        &templates(),
        overrides,
    )
}

/// A connector for the recipient block `r`, authenticating with the test key pair.
fn keypair_connector_for(r: &RecipientConfig) -> SnowflakeConnector {
    let parsed: SnowflakeSettings = r.settings().unwrap();
    let authorization = key_pair(
        r,
        &parsed,
        SigningKey::from_pem(&RsaTestKey::shared().pem).unwrap(),
    )
    .unwrap();
    SnowflakeConnector::new(SnowflakeConfig::with_authorization(r, parsed, authorization).unwrap())
        .unwrap()
}

/// A connector authenticating with the test key pair, with the TOML `settings` overrides.
fn keypair_connector(sim: &SnowflakeSim, settings: &str) -> SnowflakeConnector {
    keypair_connector_for(&recipient(sim, settings))
}

async fn start(config: SnowflakeSimConfig) -> (SnowflakeSim, SnowflakeConnector) {
    let sim = SnowflakeSim::start(config).await.unwrap();
    let connector = keypair_connector(&sim, "");
    (sim, connector)
}

#[tokio::test]
async fn an_opt_out_flags_the_row_through_the_sql_api_and_reads_it_back() {
    let (sim, connector) = start(keypair_sim()).await;
    let item = opt_out(JANE);
    let completion = assert_opt_out_flags_one_row(&connector, &item).await;
    assert_eq!(completion.evidence["authentication"], "KEYPAIR_JWT");
    let executions = sim.executions();
    assert_eq!(executions.len(), 1);
    assert_eq!(completion.evidence[EVIDENCE_HANDLES], executions[0].handle);
    assert_eq!(executions[0].bound, vec![Some(email_sha256(JANE))]);

    let calls = sim.control().calls();
    let submitted = &calls[0];
    assert_eq!(submitted.method, "POST");
    assert!(submitted.path.starts_with("/api/v2/statements?requestId="));
    assert!(submitted.path.contains("&retry=true&async=true"));
    assert_eq!(submitted.status, 202);
    assert_eq!(
        submitted.header("x-snowflake-authorization-token-type"),
        Some("KEYPAIR_JWT")
    );
    assert!(submitted
        .header("authorization")
        .is_some_and(|a| a.starts_with("Bearer ey")));
    assert_eq!(submitted.header("accept"), Some("application/json"));
    assert!(submitted
        .header("user-agent")
        .is_some_and(|u| u.starts_with("hush-connector-snowflake/")));
    assert_eq!(
        submitted.json,
        json!({"statement": sent().opt_out, "timeout": 300, "warehouse": "PRIVACY_WH",
               "bindings": {"1": {"type": "TEXT", "value": email_sha256(JANE)}}})
    );
    assert_eq!(calls[1].method, "GET");
    assert_eq!(
        calls[1].path,
        format!("/api/v2/statements/{}", executions[0].handle)
    );
    assert_eq!(sim.rows()[0]["do_not_sell"], "true");

    assert_read_back(&connector, &item, &completion, VerificationStatus::Verified).await;
    // Someone clears the flag afterwards: the read-back sees it.
    sim.set_rows(vec![suite_row(JANE)]);
    assert_read_back(&connector, &item, &completion, VerificationStatus::Failed).await;
}

#[tokio::test]
async fn a_statement_still_running_is_pending_with_its_handle_and_read_back_later() {
    let (sim, connector) = start(SnowflakeSimConfig {
        running_reads: 3,
        ..keypair_sim()
    })
    .await;
    let connector_no_wait = keypair_connector(&sim, "max_wait_ms = 0");
    drop(connector);
    let (item, completion, read_back) = deletion_read_back(&connector_no_wait, JANE).await;
    let handle = sim.executions()[0].handle.clone();
    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.verification, VerificationStatus::Pending);
    assert_eq!(completion.evidence[EVIDENCE_RUNNING], handle);
    assert!(completion.evidence[EVIDENCE_ROWS_AFFECTED].starts_with("unknown"));
    // One read happened in apply; two more still answer 202.
    assert_eq!(read_back, VerificationStatus::Pending);
    assert_eq!(
        connector_no_wait.verify(&item, &completion).await,
        VerificationStatus::Pending
    );
    sim.set_running_reads(0);
    assert_eq!(
        connector_no_wait.verify(&item, &completion).await,
        VerificationStatus::Verified
    );
}

#[tokio::test]
async fn a_statement_snowflake_cannot_compile_is_permanent_with_its_text() {
    let mut config = keypair_sim();
    config.statements.retain(|s| s.text != sent().delete);
    let (_sim, connector) = start(config).await;
    assert_refused(
        one(connector
            .apply(Operation::Delete, &[request(RequestKind::Delete, JANE)])
            .await),
        "SQLSTATE 42000 (code 001003): SQL compilation error",
    );
}

#[tokio::test]
async fn snowflakes_messages_never_carry_a_bound_value() {
    let mut config = keypair_sim();
    config.statements = vec![SimStatement::new(
        "DELETE FROM customers WHERE id = ?::NUMBER",
        |_, bound| {
            SimOutcome::Failed(
                "100038".into(),
                "22018".into(),
                format!(
                    "Numeric value '{}' is not recognized",
                    bound[0].clone().unwrap()
                ),
            )
        },
    )];
    let sim = SnowflakeSim::start(config).await.unwrap();
    let mut r = recipient(&sim, "");
    deleting_only(
        &mut r,
        "DELETE FROM customers WHERE id = :customer_id::NUMBER",
    );
    let connector = keypair_connector_for(&r);
    assert_refused_without_the_bound_value(&connector, "Numeric value '<identifier>'").await;
}

#[tokio::test]
async fn a_check_of_the_wrong_shape_leaves_the_item_pending() {
    let mut config = keypair_sim();
    SimStatement::replace(
        &mut config.statements,
        SimStatement::new(&sent().delete_check, |_, _| {
            SimOutcome::Rows(vec!["EMAIL".into()], vec![vec!["x".into()]])
        }),
    );
    let (_sim, connector) = start(config).await;
    assert_deletion_read_back_pending(&connector, JANE).await;
}

#[tokio::test]
async fn a_programmatic_access_token_is_sent_with_its_type_and_a_wrong_one_refused() {
    let config = SnowflakeSimConfig {
        auth: SimAuth::Token {
            token: "pat-secret-value".into(),
            token_type: "PROGRAMMATIC_ACCESS_TOKEN".into(),
        },
        ..keypair_sim()
    };
    let sim = SnowflakeSim::start(config).await.unwrap();
    let build = |token: &str| {
        let mut r = recipient(&sim, "");
        r.settings.remove("account");
        r.settings.remove("user");
        let parsed: SnowflakeSettings = r.settings().unwrap();
        let auth: Authorization = token_authorization(&r, &parsed, token.into()).unwrap();
        SnowflakeConnector::new(SnowflakeConfig::with_authorization(&r, parsed, auth).unwrap())
            .unwrap()
    };
    let completion = completed(
        &build("pat-secret-value"),
        Operation::Suppress,
        &opt_out(JANE),
    )
    .await;
    assert_eq!(completion.action, ConfirmationAction::Flagged);
    assert_eq!(
        completion.evidence["authentication"],
        "PROGRAMMATIC_ACCESS_TOKEN"
    );
    assert_eq!(
        sim.control().calls()[0].header("x-snowflake-authorization-token-type"),
        Some("PROGRAMMATIC_ACCESS_TOKEN")
    );
    assert_refused(
        opting_out(&build("stale"), JANE).await,
        "HTTP 401: Snowflake: 390303: Invalid OAuth access token.",
    );
}

#[tokio::test]
async fn a_key_the_user_does_not_hold_is_refused() {
    let config = SnowflakeSimConfig {
        auth: SimAuth::KeyPair {
            account: "myorg-myaccount".into(),
            user: "hush_svc".into(),
            public_key_der: RsaTestKey::generate().public_der,
        },
        ..keypair_sim()
    };
    let (_sim, connector) = start(config).await;
    assert_refused(
        opting_out(&connector, JANE).await,
        "390144: JWT token is invalid. The signature does not verify",
    );
}

#[tokio::test]
async fn vendor_failures_are_classified_and_halt_the_rest_of_the_batch() {
    let (sim, connector) = start(keypair_sim()).await;
    sim.control().inject(Fault::too_many_requests(7));
    let batch = [opt_out(JANE), opt_out(JOHN)];
    assert_batch_retried_after(&connector, &batch, Duration::from_secs(7)).await;
    assert_eq!(
        sim.control().calls().len(),
        1,
        "the second item was not submitted"
    );
    sim.control().inject(Fault::server_error());
    assert!(matches!(
        opting_out(&connector, JANE).await,
        Err(ConnectorError::Transient(_))
    ));
    sim.control().inject(Fault::Delay(Duration::from_secs(2)));
    assert!(matches!(
        opting_out(&connector, JANE).await,
        Err(ConnectorError::Transient(t)) if t.contains("before the timeout")
    ));
}

#[tokio::test]
async fn the_simulator_checks_requests_like_snowflake() {
    let (sim, _connector) = start(SnowflakeSimConfig {
        auth: SimAuth::Token {
            token: "t".into(),
            token_type: "OAUTH".into(),
        },
        ..keypair_sim()
    })
    .await;
    let opt_out = sent().opt_out;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v2/statements", sim.base_url());
    let post = |body: serde_json::Value| {
        http.post(&url)
            .bearer_auth("t")
            .header("user-agent", "contract-test/1.0")
            .json(&body)
    };
    let answer = http
        .post(&url)
        .bearer_auth("t")
        .json(&json!({"statement": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400, "User-Agent is required");
    let answer = http
        .post(&url)
        .bearer_auth("t")
        .header("user-agent", "contract-test/1.0")
        .header("content-type", "text/plain")
        .body(json!({"statement": opt_out}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 415);
    let answer = post(json!({})).send().await.unwrap();
    assert_eq!(answer.status(), 400, "statement is required");
    let answer = post(json!({"statement": opt_out}))
        .query(&[("requestId", "not-a-uuid")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let answer = post(json!({"statement": opt_out})).send().await.unwrap();
    assert_eq!(answer.status(), 422);
    let failure: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(failure["sqlState"], "07002");
    assert!(failure["statementHandle"].is_string());
    let answer = post(
        json!({"statement": format!("{opt_out}; DROP TABLE customers"),
                             "bindings": {"1": {"type": "TEXT", "value": "x"}}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(answer.status(), 422, "one statement per request");
    let answer = post(json!({"statement": opt_out,
                             "bindings": {"1": {"type": "VARCHAR", "value": "x"}}}))
    .send()
    .await
    .unwrap();
    assert_eq!(answer.status(), 422, "TEXT, not VARCHAR");
    let answer = http
        .post(&url)
        .header("user-agent", "contract-test/1.0")
        .json(&json!({"statement": opt_out}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let answer = post(json!({"statement": opt_out,
                             "bindings": {"1": {"type": "TEXT", "value": email_sha256(JANE)}}}))
    .send()
    .await
    .unwrap();
    assert_eq!(answer.status(), 200, "synchronous by default");
    let result: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(result["stats"]["numRowsUpdated"], 1);
    assert_eq!(sim.executions().len(), 1, "no refused request ran");
}

hush_connector_kit::warehouse_suite_test! {
    start: start(keypair_sim()),
    handles_key: EVIDENCE_HANDLES,
    runs: |sim: &SnowflakeSim| sim.executions().into_iter().map(|e| e.handle).collect(),
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let (sim, connector) = start(keypair_sim()).await;
    ComplianceSuite::new(&connector, &hush_connector_snowflake::FACTORY, &|kind| {
        request(kind, JANE)
    })
    .with_faults(sim.control())
    .run()
    .await;
}
