//! Contract tests: the BigQuery connector against the BigQuery API simulator over loopback.

use std::time::Duration;

use hush_connector_bigquery::auth::{ServiceAccountKey, ServiceAccountTokens, TokenSource};
use hush_connector_bigquery::sim::{
    BigQuerySim, BigQuerySimConfig, SimGrant, SimOutcome, SimStatement,
};
use hush_connector_bigquery::{
    BigQueryConfig, BigQueryConnector, BigQuerySettings, EVIDENCE_JOBS, EVIDENCE_RUNNING,
};
use hush_connector_kit::oauth::{AccessTokens, RefreshTokenGrant};
use hush_connector_kit::testing::warehouse::{
    self, assert_batch_retried_after, assert_deletion_read_back_pending,
    assert_opt_out_flags_one_row, assert_read_back, assert_refused_without_the_bound_value,
    deleting_only, deletion_read_back, request, Templates, JANE, JOHN,
};
use hush_connector_kit::testing::{
    assert_refused, assert_retry_after, completed, email_sha256, opt_out, opting_out,
    ComplianceSuite,
};
use hush_contracts::connector::{Connector, ConnectorError, Operation};
use hush_contracts::events::{ConfirmationAction, RequestKind, VerificationStatus};
use hush_contracts::recipients::RecipientConfig;
use hush_sim_kit::jwt::RsaTestKey;
use hush_sim_kit::table::suite_row;
use hush_sim_kit::{assert_each_refused, Fault};
use serde_json::json;

/// The statement templates the recipient is configured with.
fn templates() -> Templates {
    Templates::over("crm.customers")
}

/// The same statements as BigQuery receives them: named `@` parameters.
fn sent() -> Templates {
    templates().sent_as("@email_sha256")
}

const SERVICE_ACCOUNT: &str = "hush@acme-prod.iam.gserviceaccount.com";

/// The service-account key file's JSON, holding the test binary's shared key.
fn key_file() -> String {
    json!({"type": "service_account", "project_id": "acme-prod",
           "private_key_id": "k1", "private_key": RsaTestKey::shared().pem,
           "client_email": SERVICE_ACCOUNT,
           "token_uri": "https://oauth2.googleapis.com/token"})
    .to_string()
}

fn sim_config() -> BigQuerySimConfig {
    BigQuerySimConfig {
        project_id: "acme-prod".into(),
        grant: SimGrant::ServiceAccount {
            client_email: SERVICE_ACCOUNT.into(),
            public_key_der: RsaTestKey::shared().public_der.clone(),
        },
        statements: SimStatement::for_templates(&sent()),
        rows: vec![suite_row(JANE), suite_row(JOHN)],
        running_reads: 0,
    }
}

/// The recipient block, with each setting of the TOML `overrides` in place of its own.
fn recipient(sim: &BigQuerySim, overrides: &str) -> RecipientConfig {
    let settings = "project_id = \"acme-prod\"\nlocation = \"EU\"";
    warehouse::recipient(
        "bq",
        "bigquery",
        &sim.base_url(),
        settings,
        &templates(),
        overrides,
    )
}

/// A connector for the recipient block `r`, exchanging `tokens`.
fn connector_for(r: &RecipientConfig, tokens: TokenSource) -> BigQueryConnector {
    let parsed: BigQuerySettings = r.settings().unwrap();
    BigQueryConnector::new(BigQueryConfig::with_tokens(r, parsed, tokens).unwrap()).unwrap()
}

fn connector_with(sim: &BigQuerySim, settings: &str, tokens: TokenSource) -> BigQueryConnector {
    connector_for(&recipient(sim, settings), tokens)
}

fn service_account(sim: &BigQuerySim) -> TokenSource {
    TokenSource::ServiceAccount(ServiceAccountTokens::new(
        ServiceAccountKey::from_json(&key_file()).unwrap(),
        sim.token_url(),
    ))
}

async fn start(config: BigQuerySimConfig) -> (BigQuerySim, BigQueryConnector) {
    let sim = BigQuerySim::start(config).await.unwrap();
    let connector = connector_with(&sim, "", service_account(&sim));
    (sim, connector)
}

#[tokio::test]
async fn an_opt_out_runs_parameterised_dml_as_the_service_account_and_reads_it_back() {
    let (sim, connector) = start(sim_config()).await;
    let item = opt_out(JANE);
    let completion = assert_opt_out_flags_one_row(&connector, &item).await;
    assert_eq!(completion.evidence["credentials"], "service_account");
    assert_eq!(completion.evidence["location"], "EU");
    let jobs = sim.jobs();
    assert_eq!(completion.evidence[EVIDENCE_JOBS], jobs[0].job_id);
    assert_eq!(jobs[0].location.as_deref(), Some("EU"));

    let calls = sim.control().calls();
    assert_eq!(calls[0].path, "/token");
    assert_eq!(
        calls[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let query = &calls[1];
    assert_eq!(query.path, "/bigquery/v2/projects/acme-prod/queries");
    assert_eq!(query.header("authorization"), Some("Bearer ya29.sim-1"));
    assert_eq!(query.json["query"], sent().opt_out);
    assert_eq!(query.json["useLegacySql"], false);
    assert_eq!(query.json["parameterMode"], "NAMED");
    assert_eq!(
        query.json["queryParameters"],
        json!([{"name": "email_sha256", "parameterType": {"type": "STRING"},
                "parameterValue": {"value": email_sha256(JANE)}}])
    );
    assert_eq!(query.json["requestId"].as_str().unwrap().len(), 36);
    assert_eq!(query.json["timeoutMs"], 250);
    assert_eq!(sim.rows()[0]["do_not_sell"], "true");

    assert_read_back(&connector, &item, &completion, VerificationStatus::Verified).await;
    sim.set_rows(vec![suite_row(JANE)]);
    assert_read_back(&connector, &item, &completion, VerificationStatus::Failed).await;
    assert_eq!(
        sim.control().calls_to("/token").len(),
        1,
        "the access token is reused"
    );
}

#[tokio::test]
async fn a_job_still_running_is_pending_with_its_id_and_read_back_later() {
    let sim = BigQuerySim::start(BigQuerySimConfig {
        running_reads: 3,
        ..sim_config()
    })
    .await
    .unwrap();
    let connector = connector_with(&sim, "max_wait_ms = 0", service_account(&sim));
    let (item, completion, read_back) = deletion_read_back(&connector, JANE).await;
    let job = sim.jobs()[0].job_id.clone();
    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.verification, VerificationStatus::Pending);
    assert_eq!(completion.evidence[EVIDENCE_RUNNING], job);
    // The submission and one read answered jobComplete: false; one more read still does.
    assert_eq!(read_back, VerificationStatus::Pending);
    sim.set_running_reads(0);
    assert_eq!(
        connector.verify(&item, &completion).await,
        VerificationStatus::Verified
    );
    let read = sim
        .control()
        .calls_to(&format!("/bigquery/v2/projects/acme-prod/queries/{job}"));
    assert!(read[0].path.contains("location=EU"), "{}", read[0].path);
}

#[tokio::test]
async fn a_query_bigquery_refuses_is_permanent_without_the_bound_value() {
    let mut config = sim_config();
    config.statements = vec![SimStatement::new(
        "DELETE FROM crm.customers WHERE id = CAST(@customer_id AS INT64)",
        |_, params| {
            SimOutcome::Failed(
                400,
                "invalidQuery".into(),
                format!(
                    "Bad int64 value: {}",
                    params["customer_id"].clone().unwrap()
                ),
            )
        },
    )];
    let sim = BigQuerySim::start(config).await.unwrap();
    let mut r = recipient(&sim, "");
    deleting_only(
        &mut r,
        "DELETE FROM crm.customers WHERE id = CAST(:customer_id AS INT64)",
    );
    let connector = connector_for(&r, service_account(&sim));
    assert_refused_without_the_bound_value(
        &connector,
        "BigQuery (invalidQuery): Bad int64 value: <identifier>",
    )
    .await;
}

#[tokio::test]
async fn a_check_of_the_wrong_shape_leaves_the_item_pending() {
    let mut config = sim_config();
    SimStatement::replace(
        &mut config.statements,
        SimStatement::new(&sent().delete_check, |_, _| {
            SimOutcome::Rows(vec!["email".into()], vec![vec!["x".into()]])
        }),
    );
    let (_sim, connector) = start(config).await;
    assert_deletion_read_back_pending(&connector, JANE).await;
}

#[tokio::test]
async fn a_refresh_token_grant_works_and_a_revoked_one_is_permanent() {
    let sim = BigQuerySim::start(BigQuerySimConfig {
        grant: SimGrant::RefreshToken {
            client_id: "client".into(),
            client_secret: "secret".into(),
            refresh_token: "refresh".into(),
        },
        ..sim_config()
    })
    .await
    .unwrap();
    let refresh = |token: &str| {
        TokenSource::RefreshToken(AccessTokens::new(RefreshTokenGrant {
            token_url: sim.token_url(),
            client_id: "client".into(),
            client_secret: "secret".into(),
            refresh_token: token.into(),
        }))
    };
    let completion = completed(
        &connector_with(&sim, "", refresh("refresh")),
        Operation::Suppress,
        &opt_out(JANE),
    )
    .await;
    assert_eq!(completion.evidence["credentials"], "refresh_token");
    assert_refused(
        opting_out(&connector_with(&sim, "", refresh("revoked")), JANE).await,
        "invalid_grant: Token has been expired or revoked.",
    );
}

#[tokio::test]
async fn an_access_token_refused_later_is_exchanged_again() {
    let (sim, connector) = start(sim_config()).await;
    completed(&connector, Operation::Suppress, &opt_out(JANE)).await;
    sim.revoke_tokens();
    let refused = opting_out(&connector, JOHN).await;
    assert!(
        matches!(&refused, Err(ConnectorError::Transient(t)) if t.contains("HTTP 401")),
        "{refused:?}"
    );
    let retried = completed(&connector, Operation::Suppress, &opt_out(JOHN)).await;
    assert_eq!(retried.action, ConfirmationAction::Flagged);
    assert_eq!(sim.control().calls_to("/token").len(), 2);
}

#[tokio::test]
async fn a_key_the_service_account_does_not_hold_is_refused() {
    let (_sim, connector) = start(BigQuerySimConfig {
        grant: SimGrant::ServiceAccount {
            client_email: SERVICE_ACCOUNT.into(),
            public_key_der: RsaTestKey::generate().public_der,
        },
        ..sim_config()
    })
    .await;
    assert_refused(
        opting_out(&connector, JANE).await,
        "invalid_grant: Invalid JWT: Invalid JWT Signature.",
    );
}

#[tokio::test]
async fn rate_limits_and_failures_are_classified_and_halt_the_rest_of_the_batch() {
    let (sim, connector) = start(sim_config()).await;
    // Warm the token so the faults hit the query calls.
    completed(&connector, Operation::Suppress, &opt_out(JANE)).await;
    let before = sim.control().calls().len();
    sim.control().inject(Fault::answer(
        403,
        r#"{"error": {"code": 403, "message": "Exceeded rate limits: too many table dml insert operations for this table.", "errors": [{"reason": "rateLimitExceeded", "domain": "usageLimits", "message": "Exceeded rate limits"}]}}"#,
    ));
    let batch = [opt_out(JOHN), request(RequestKind::LimitSensitive, JOHN)];
    assert_batch_retried_after(&connector, &batch, Duration::from_secs(2)).await;
    assert_eq!(
        sim.control().calls().len(),
        before + 1,
        "the second item was not sent"
    );
    sim.control().inject(Fault::too_many_requests(7));
    assert_retry_after(opting_out(&connector, JOHN).await, Duration::from_secs(7));
    sim.control().inject(Fault::server_error());
    assert!(matches!(
        opting_out(&connector, JOHN).await,
        Err(ConnectorError::Transient(_))
    ));
}

#[tokio::test]
async fn the_simulator_checks_requests_like_bigquery() {
    let (sim, connector) = start(sim_config()).await;
    // Obtain a token through the connector, then speak to the simulator directly.
    completed(&connector, Operation::Suppress, &opt_out(JOHN)).await;
    let opt_out = sent().opt_out;
    let http = reqwest::Client::new();
    let url = format!("{}/bigquery/v2/projects/acme-prod/queries", sim.base_url());
    let parameter = json!([{"name": "email_sha256", "parameterType": {"type": "STRING"},
                            "parameterValue": {"value": "x"}}]);
    let cases = [
        (json!({}), "required"),
        (
            json!({"query": opt_out, "parameterMode": "NAMED", "queryParameters": parameter}),
            "invalidQuery",
        ),
        (
            json!({"query": opt_out, "useLegacySql": false, "queryParameters": parameter}),
            "invalid",
        ),
        (
            json!({"query": opt_out, "useLegacySql": false, "parameterMode": "NAMED"}),
            "invalidQuery",
        ),
        (
            json!({"query": "DROP TABLE crm.customers", "useLegacySql": false}),
            "invalidQuery",
        ),
    ];
    assert_each_refused(
        || http.post(&url).bearer_auth("ya29.sim-1"),
        400,
        &cases,
        |error, reason| error["error"]["errors"][0]["reason"] == reason,
    )
    .await;
    let anonymous = http
        .post(&url)
        .json(&json!({"query": opt_out}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let other_project = http
        .post(format!(
            "{}/bigquery/v2/projects/someone-else/queries",
            sim.base_url()
        ))
        .bearer_auth("ya29.sim-1")
        .json(&json!({"query": opt_out}))
        .send()
        .await
        .unwrap();
    assert_eq!(other_project.status(), 404);
    assert_eq!(sim.jobs().len(), 1, "no refused query ran");
}

hush_connector_kit::warehouse_suite_test! {
    start: start(sim_config()),
    handles_key: EVIDENCE_JOBS,
    runs: |sim: &BigQuerySim| sim.jobs().into_iter().map(|j| j.job_id).collect(),
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let (sim, connector) = start(sim_config()).await;
    // Warm the token: the suite's faults are meant for the query calls.
    completed(
        &connector,
        Operation::Suppress,
        &request(RequestKind::LimitSensitive, JOHN),
    )
    .await;
    ComplianceSuite::new(&connector, &hush_connector_bigquery::FACTORY, &|kind| {
        request(kind, JANE)
    })
    .with_faults(sim.control())
    .run()
    .await;
}
