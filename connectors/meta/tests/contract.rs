//! Contract tests: the Meta connector against the Meta Custom Audiences simulator on loopback.

use std::time::Duration;

use hush_connector_kit::testing::audience::AudienceSuite;
use hush_connector_kit::testing::versions::VersionChecks;
use hush_connector_kit::testing::{
    assert_names_field, assert_refused, assert_retry_after, email, hashed, opt_out, with_raw, work,
    ComplianceSuite, WorkExt,
};
use hush_connector_meta::config::{MetaConfig, DEFAULT_API_VERSION, MARKETING_API_VERSIONS};
use hush_connector_meta::sim::{form_of, MetaSim};
use hush_connector_meta::MetaCustomAudiences;
use hush_contracts::connector::{
    BatchResult, Completion, Connector, ConnectorError, FromRecipient, Operation, SuppressionWork,
};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind};
use hush_contracts::identifiers::sha256_hex;
use hush_contracts::recipients::RecipientConfig;
use hush_sim_kit::Fault;
use serde_json::{json, Value};

const AUDIENCE: &str = "23850000000000001";
const TOKEN: &str = "sim-system-user-token";

fn config(sim: &MetaSim) -> MetaConfig {
    MetaConfig {
        base_url: sim.base_url(),
        api_version: "v27.0".into(),
        audience_id: AUDIENCE.into(),
        access_token: TOKEN.into(),
        timeout: Duration::from_secs(5),
        default_retry_after: Duration::from_secs(60),
    }
}

fn connector(config: MetaConfig) -> MetaCustomAudiences {
    MetaCustomAudiences::new(config).unwrap()
}

/// Asks the connector built from `config` to opt `a@example.com` out.
async fn opt_out_of_a(config: &MetaConfig) -> BatchResult {
    connector(config.clone())
        .apply(Operation::Suppress, &[opt_out("a@example.com")])
        .await
}

/// Opts `a@example.com` out through a connector to a fresh simulator, with the configuration
/// `change` made to it.
async fn opt_out_of_a_configured(change: impl FnOnce(&mut MetaConfig)) -> BatchResult {
    let sim = sim().await;
    let mut config = config(&sim);
    change(&mut config);
    opt_out_of_a(&config).await
}

/// One opt-out more than one call carries (10,000 rows).
fn opt_outs_beyond_one_call() -> Vec<SuppressionWork> {
    (0..10_001)
        .map(|i| opt_out(&format!("p{i}@example.com")))
        .collect()
}

async fn sim() -> MetaSim {
    MetaSim::start(AUDIENCE, TOKEN).await.unwrap()
}

fn completed(result: &Result<Completion, ConnectorError>) -> &Completion {
    result.as_ref().expect("item completed")
}

fn payload_of(call: &hush_sim_kit::RecordedCall) -> Value {
    serde_json::from_str(&form_of(call)["payload"]).unwrap()
}

#[tokio::test]
async fn the_connector_passes_the_audience_suite() {
    let sim = sim().await;
    let connector = connector(config(&sim));
    AudienceSuite {
        connector: &connector,
        rows_per_call: 10_000,
        add_members: Box::new(|hashes| sim.add_members(hashes)),
        members: Box::new(|| sim.members()),
        rows_sent: Box::new(|| {
            let calls = sim.control().calls();
            let rows = |call| payload_of(call)["data"].as_array().map_or(0, Vec::len);
            calls.iter().map(rows).collect()
        }),
        unmatchable: hashed(IdentifierType::CookieId, "cookie-1"),
        unmatched_reason: "nothing Meta customer-list audiences match on",
        evidence: vec![
            ("audience_id", AUDIENCE.into()),
            ("num_received", "1".into()),
            ("num_invalid_entries", "0".into()),
            ("removal", "asynchronous (up to 24 h)".into()),
        ],
    }
    .run()
    .await;
}

#[tokio::test]
async fn the_call_is_a_form_encoded_delete_on_the_users_edge() {
    let sim = sim().await;
    opt_out_of_a(&config(&sim)).await.unwrap();
    let calls = sim.control().calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "DELETE");
    assert_eq!(calls[0].path, format!("/v27.0/{AUDIENCE}/users"));
    let form = form_of(&calls[0]);
    assert_eq!(form["access_token"], TOKEN);
    assert!(!form.contains_key("session"));
    assert_eq!(
        payload_of(&calls[0]),
        json!({"schema": "EMAIL_SHA256", "data": [sha256_hex("a@example.com")]})
    );
}

#[tokio::test]
async fn a_delete_request_is_also_removed_and_recorded_suppressed() {
    let sim = sim().await;
    sim.add_members([sha256_hex("a@example.com")]);
    let results = connector(config(&sim))
        .apply(
            Operation::Delete,
            &[work(RequestKind::Delete).with(email("a@example.com"))],
        )
        .await
        .unwrap();
    assert_eq!(
        completed(&results[0]).action,
        ConfirmationAction::Suppressed
    );
    assert!(sim.members().is_empty());
}

#[tokio::test]
async fn a_phone_with_its_raw_value_goes_out_as_a_multi_key_row_hashed_without_plus() {
    let sim = sim().await;
    let meta_phone_hash = sha256_hex("14155550100");
    sim.add_members([meta_phone_hash.clone()]);
    let phone = with_raw(IdentifierType::Phone, "+14155550100");
    let results = connector(config(&sim))
        .apply(
            Operation::Suppress,
            &[work(RequestKind::OptOutSaleShare)
                .with(email("a@example.com"))
                .with(phone)],
        )
        .await
        .unwrap();
    assert_eq!(
        completed(&results[0]).evidence["schema"],
        "EMAIL,PHONE,MADID"
    );
    assert_eq!(
        payload_of(&sim.control().calls()[0]),
        json!({
            "schema": ["EMAIL", "PHONE", "MADID"],
            "data": [[sha256_hex("a@example.com"), meta_phone_hash, ""]],
        })
    );
    assert!(sim.members().is_empty());
}

#[tokio::test]
async fn a_maid_goes_out_unhashed_and_meta_accepts_it() {
    let sim = sim().await;
    let idfa = "aece52e7-03ee-455a-b3c4-e57283966239";
    sim.add_members([idfa.to_owned()]);
    let maid = with_raw(IdentifierType::Maid, &idfa.to_uppercase());
    let results = connector(config(&sim))
        .apply(
            Operation::Suppress,
            &[work(RequestKind::OptOutSaleShare).with(maid)],
        )
        .await
        .unwrap();
    assert_eq!(completed(&results[0]).evidence["num_invalid_entries"], "0");
    assert_eq!(
        payload_of(&sim.control().calls()[0])["data"],
        json!([["", "", idfa]])
    );
    assert!(sim.members().is_empty());
}

#[tokio::test]
async fn more_than_ten_thousand_rows_go_out_as_one_session_of_two_calls() {
    let sim = sim().await;
    let batch = opt_outs_beyond_one_call();
    let results = connector(config(&sim))
        .apply(Operation::Suppress, &batch)
        .await
        .unwrap();
    let calls = sim.control().calls();
    assert_eq!(calls.len(), 2);
    let sessions: Vec<Value> = calls
        .iter()
        .map(|c| serde_json::from_str(&form_of(c)["session"]).unwrap())
        .collect();
    assert_eq!(sessions[0]["session_id"], sessions[1]["session_id"]);
    assert_eq!(sessions[0]["batch_seq"], 1);
    assert_eq!(sessions[1]["batch_seq"], 2);
    assert_eq!(sessions[0]["last_batch_flag"], false);
    assert_eq!(sessions[1]["last_batch_flag"], true);
    assert_eq!(sessions[1]["estimated_num_total"], 10_001);
    let last = completed(&results[10_000]);
    assert_eq!(last.evidence["batch_seq"], "2");
    assert!(!last.evidence["session_id"].is_empty());
}

#[tokio::test]
async fn a_failure_on_the_second_call_fails_only_the_rows_not_yet_accepted() {
    let sim = sim().await;
    let batch = opt_outs_beyond_one_call();
    sim.control().inject(Fault::Delay(Duration::ZERO));
    sim.control().inject(Fault::server_error());

    let results = connector(config(&sim))
        .apply(Operation::Suppress, &batch)
        .await
        .unwrap();

    let first_call = &results[..10_000];
    assert!(
        first_call.iter().all(|result| result
            .as_ref()
            .is_ok_and(|done| done.action == ConfirmationAction::Suppressed)),
        "every row of the accepted first call is suppressed"
    );
    assert!(matches!(results[10_000], Err(ConnectorError::Transient(_))));
}

#[tokio::test]
async fn rows_meta_reports_invalid_fail_their_item_permanently() {
    let sim = sim().await;
    let bad = sha256_hex("b@example.com");
    sim.control().inject(Fault::Status {
        status: 200,
        retry_after: None,
        body: json!({
            "audience_id": AUDIENCE, "session_id": "5", "num_received": 2,
            "num_invalid_entries": 1, "invalid_entry_samples": { bad.clone(): "invalid" }
        })
        .to_string(),
    });
    let results = connector(config(&sim))
        .apply(
            Operation::Suppress,
            &[opt_out("a@example.com"), opt_out("b@example.com")],
        )
        .await
        .unwrap();
    let valid = results[0].as_ref().map(|done| done.action);
    assert_eq!(valid, Ok(ConfirmationAction::Suppressed));
    assert_refused(results[1].clone(), "invalid entries");
}

#[tokio::test]
async fn the_simulator_counts_unhashed_and_uppercase_values_invalid_like_meta() {
    let sim = sim().await;
    let good = sha256_hex("a@example.com");
    sim.add_members([good.clone()]);
    let payload = json!({
        "schema": "EMAIL_SHA256",
        "data": ["Jane@Example.com", good.to_uppercase(), good],
    });
    let response = reqwest::Client::new()
        .delete(format!("{}/v27.0/{AUDIENCE}/users", sim.base_url()))
        .form(&[
            ("access_token", TOKEN.to_owned()),
            ("payload", payload.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["num_received"], 3);
    assert_eq!(body["num_invalid_entries"], 2);
    assert!(body["invalid_entry_samples"]["Jane@Example.com"].is_string());
    assert!(sim.members().is_empty());
}

async fn raw_delete(sim: &MetaSim, rows: usize, session: Option<Value>) -> (u16, Value) {
    let payload = json!({"schema": "EMAIL_SHA256", "data": vec![sha256_hex("x"); rows]});
    let mut form = vec![
        ("access_token", TOKEN.to_owned()),
        ("payload", payload.to_string()),
    ];
    if let Some(session) = session {
        form.push(("session", session.to_string()));
    }
    let response = reqwest::Client::new()
        .delete(format!("{}/v27.0/{AUDIENCE}/users", sim.base_url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn the_simulator_refuses_more_than_ten_thousand_rows() {
    let sim = sim().await;
    let (status, body) = raw_delete(&sim, 10_001, None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 100);
}

#[tokio::test]
async fn the_simulator_refuses_inconsistent_session_fields() {
    let sim = sim().await;
    let session = |seq: u64, last: bool| {
        Some(
            json!({"session_id": 77, "batch_seq": seq, "last_batch_flag": last, "estimated_num_total": 2}),
        )
    };
    assert_eq!(raw_delete(&sim, 1, session(2, false)).await.0, 400);
    assert_eq!(raw_delete(&sim, 1, session(1, false)).await.0, 200);
    assert_eq!(raw_delete(&sim, 1, session(2, true)).await.0, 200);
    let (status, body) = raw_delete(&sim, 1, session(3, true)).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("closed"));
}

#[tokio::test]
async fn a_meta_throttle_code_without_retry_after_waits_the_configured_default() {
    let sim = sim().await;
    sim.control().inject(Fault::answer(
        400,
        r#"{"error":{"message":"User request limit reached","type":"OAuthException","code":17}}"#,
    ));
    assert_retry_after(opt_out_of_a(&config(&sim)).await, Duration::from_secs(60));
}

#[tokio::test]
async fn an_unknown_audience_is_permanent_with_meta_text() {
    let result = opt_out_of_a_configured(|config| config.audience_id = "999".into()).await;
    assert_refused(result, "Object with ID '999' does not exist");
}

#[tokio::test]
async fn a_flagged_audience_is_permanent_and_marked_audience_blocked() {
    let sim = sim().await;
    sim.add_members([sha256_hex("a@example.com")]);
    sim.flag_audience(true);
    let err = opt_out_of_a(&config(&sim)).await.unwrap_err();
    assert!(
        matches!(&err, ConnectorError::Permanent(d)
            if d.starts_with("audience blocked:") && d.contains("audience_blocked=true") && d.contains("471")),
        "{err:?}"
    );
    assert_eq!(sim.members().len(), 1);
}

#[tokio::test]
async fn an_invalid_token_is_permanent_with_a_clear_message() {
    let result = opt_out_of_a_configured(|config| config.access_token = "expired".into()).await;
    assert_refused(result, "access token is invalid or expired");
}

fn recipient(settings: &str) -> RecipientConfig {
    toml::from_str(&format!(
        "id = \"meta-ca\"\nkind = \"meta_custom_audiences\"\nrole = \"THIRD_PARTY\"\n\
         base_url = \"https://graph.facebook.com/\"\n\
         credentials = {{ access_token = \"HUSH_TEST_META_ACCESS_TOKEN\" }}\n\
         [settings]\n{settings}"
    ))
    .unwrap()
}

#[test]
fn from_recipient_reads_settings_and_names_the_field_at_fault() {
    std::env::set_var("HUSH_TEST_META_ACCESS_TOKEN", "token-from-env");
    let config = MetaConfig::from_recipient(&recipient("audience_id = \"123\"\n")).unwrap();
    assert_eq!(config.base_url, "https://graph.facebook.com");
    assert_eq!(config.api_version, "v27.0");
    assert_eq!(config.access_token.expose(), "token-from-env");
    assert_eq!(config.default_retry_after, Duration::from_secs(60));
    assert!(MetaCustomAudiences::from_recipient(&recipient("audience_id = \"123\"\n")).is_ok());

    assert_names_field(
        MetaConfig::from_recipient(&recipient("audience_id = \"abc\"\n")),
        "recipients.meta-ca.settings.audience_id",
    );
    assert_names_field(
        MetaConfig::from_recipient(&recipient("audience_id = \"1\"\napi_version = \"21\"\n")),
        "settings.api_version",
    );
    assert_names_field(MetaConfig::from_recipient(&recipient("")), "audience_id");
}

#[test]
fn the_configured_version_is_checked_against_metas_table() {
    std::env::set_var("HUSH_TEST_META_ACCESS_TOKEN", "token-from-env");
    VersionChecks {
        table: &MARKETING_API_VERSIONS,
        recipient: &recipient("audience_id = \"1\"\n"),
        field: "settings.api_version",
        default: DEFAULT_API_VERSION,
        older: "v21.0",
        build: &|version, today| {
            let settings = format!("audience_id = \"1\"\napi_version = \"{version}\"\n");
            MetaConfig::from_recipient_on(&recipient(&settings), today).map(drop)
        },
    }
    .run();
}

#[tokio::test]
async fn a_version_meta_no_longer_serves_is_refused_with_code_2635() {
    let result = opt_out_of_a_configured(|config| config.api_version = "v24.0".into()).await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, ConnectorError::Permanent(d) if d.contains("code 2635") && d.contains("deprecated version")),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let sim = sim().await;
    let mut config = config(&sim);
    config.timeout = Duration::from_millis(300);
    ComplianceSuite::new(&connector(config), &hush_connector_meta::FACTORY, &|kind| {
        work(kind).with(email("jane@example.com"))
    })
    .with_faults(sim.control())
    .run()
    .await;
}

#[test]
fn the_simulator_stops_serving_a_version_on_its_expiry_day() {
    use hush_connector_meta::sim::contract::served_on;
    assert_eq!(served_on("2026-12-01"), ["v25.0", "v26.0", "v27.0"]);
    assert_eq!(served_on("2027-02-23"), ["v26.0", "v27.0"]);
}
