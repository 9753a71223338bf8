//! Contract tests: The Trade Desk connector against the deletion/opt-out API simulator over
//! loopback.

use std::time::Duration;

use hush_connector_kit::secret::Secret;
use hush_connector_kit::testing::{
    apply_one, assert_every_item, assert_refused, assert_retry_after, completed, email, hashed,
    recipient_with, with_raw, work, ComplianceSuite, WorkExt,
};
use hush_connector_the_trade_desk::sim::{TradeDeskSim, TradeDeskSimConfig};
use hush_connector_the_trade_desk::{TradeDesk, TradeDeskConfig, FACTORY};
use hush_contracts::connector::{Connector, ConnectorError, Operation, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};
use hush_sim_kit::{Fault, RecordedCall};
use serde_json::{json, Value};

const DAID: &str = "38400000-8cf0-11bd-b23e-10b96e40000d";
const UID2: &str = "CCIHCkZzAvP5sKS1Gxu3Y7zgP3JbSfNnwMQ5wlWrQ8M=";

/// A connector for the simulator with `token` and the settings `overrides` (TOML lines).
fn connector_for(sim: &TradeDeskSim, token: &str, overrides: &str) -> TradeDesk {
    let mut recipient = recipient_with(include_str!("fixtures/simulator.toml"), overrides);
    recipient.base_url = sim.api_base_url();
    TradeDesk::new(TradeDeskConfig::with_auth_token(&recipient, Secret::new(token)).unwrap())
        .unwrap()
}

/// The simulator with its default account.
async fn sim() -> TradeDeskSim {
    TradeDeskSim::start(TradeDeskSimConfig::default())
        .await
        .unwrap()
}

async fn start(extra: &str) -> (TradeDeskSim, TradeDesk) {
    let sim = sim().await;
    let connector = connector_for(&sim, &TradeDeskSimConfig::default().auth_token, extra);
    (sim, connector)
}

fn with_daid(kind: RequestKind, daid: &str) -> SuppressionWork {
    work(kind).with(with_raw(IdentifierType::Maid, daid))
}

#[tokio::test]
async fn an_opt_out_sends_the_raw_maid_as_a_daid_and_is_suppressed() {
    let (sim, connector) = start("").await;
    let request = with_daid(RequestKind::OptOutSaleShare, DAID).with(email("jane@example.com"));
    let request_id = request.request_id.clone();

    let completion = completed(&connector, Operation::Suppress, &request).await;

    assert_eq!(completion.action, ConfirmationAction::Suppressed);
    assert_eq!(completion.verification, VerificationStatus::Unverifiable);
    for (key, value) in [
        ("request_type", "OptOut"),
        ("id_types", "DAID"),
        ("http_status", "200"),
        ("advertiser_id", "hushdemo1"),
    ] {
        assert_eq!(completion.evidence[key], value, "evidence {key}");
    }
    assert!(completion.evidence["verification_note"].contains("no read-back"));
    assert!(completion.evidence["ids_left_out"].contains("1 email/phone"));
    assert!(!completion.evidence.values().any(|v| v.contains(DAID)));
    let calls = sim.control().calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, "/v3/data/deletion-optout/advertiser");
    assert_eq!(calls[0].header("ttd-auth"), Some("sim-ttd-auth-token"));
    assert_eq!(
        calls[0].json,
        json!({
            "AdvertiserId": "hushdemo1",
            "Items": [{"DAID": DAID}],
            "DataLoadTraceId": format!("hush-{request_id}"),
            "RequestType": "OptOut",
        })
    );
    let accepted = sim.accepted();
    assert_eq!(accepted[0].ids, [("DAID".to_owned(), DAID.to_owned())]);
}

#[tokio::test]
async fn a_deletion_is_a_deletion_request_and_a_resolved_uid2_goes_with_it() {
    let (sim, connector) = start(
        "data_provider_id = \"hushprov\"\nid_map = { MAID = \"DAID\", DEVICE_ID = \"UID2\" }",
    )
    .await;
    let request =
        with_daid(RequestKind::Delete, DAID).with(with_raw(IdentifierType::DeviceId, UID2));
    let completion = completed(&connector, Operation::Delete, &request).await;
    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.evidence["request_type"], "Deletion");
    assert_eq!(completion.evidence["id_types"], "DAID,UID2");
    let body = &sim.control().calls()[0].json;
    assert_eq!(body["RequestType"], "Deletion");
    assert_eq!(body["DataProviderId"], "hushprov");
    assert_eq!(body["Items"], json!([{"DAID": DAID}, {"UID2": UID2}]));
}

#[tokio::test]
async fn a_person_with_no_id_ttd_accepts_is_not_found_with_the_reason_and_no_call() {
    let (sim, connector) = start("").await;
    let email_only = work(RequestKind::OptOutSaleShare)
        .with(email("jane@example.com"))
        .with(hashed(IdentifierType::Phone, "+1 415 555 0100"));
    let hashed_maid = work(RequestKind::Delete).with(hashed(IdentifierType::Maid, DAID));
    let suppress = completed(&connector, Operation::Suppress, &email_only).await;
    assert_eq!(suppress.action, ConfirmationAction::NotFound);
    assert!(
        suppress.evidence["reason"].contains("2 email/phone"),
        "{:?}",
        suppress.evidence
    );
    assert!(suppress.evidence["reason"].contains("UID2 service"));
    let delete = completed(&connector, Operation::Delete, &hashed_maid).await;
    assert_eq!(delete.action, ConfirmationAction::NotFound);
    assert!(delete.evidence["reason"].contains("MAID without its raw value"));
    assert!(sim.control().calls().is_empty());
}

#[tokio::test]
async fn an_opt_in_is_not_applied_and_a_kind_through_the_wrong_operation_is_refused() {
    let (sim, connector) = start("").await;
    let opt_in_and_deletion = [
        with_daid(RequestKind::OptInSaleShare, DAID),
        with_daid(RequestKind::Delete, DAID),
    ];
    let results = connector
        .apply(Operation::Suppress, &opt_in_and_deletion)
        .await
        .unwrap();
    let opt_in = results[0].as_ref().map(|done| done.action);
    assert_eq!(opt_in, Ok(ConfirmationAction::NotApplicable));
    assert_refused(results[1].clone(), "applies through delete");
    let wrong = with_daid(RequestKind::OptOutSaleShare, DAID);
    assert_refused(
        apply_one(&connector, Operation::Delete, &wrong).await,
        "not a deletion",
    );
    assert!(sim.control().calls().is_empty());
}

#[tokio::test]
async fn an_id_ttd_refuses_fails_its_person_only_with_ttds_text_and_no_raw_id() {
    let (sim, connector) = start("id_map = { MAID = \"DAID\", COOKIE_ID = \"TDID\" }").await;
    // A cookie id that is a GUID passes the connector's check; TTD then refuses the line.
    sim.control().inject(Fault::answer(
        200,
        &format!(
            r#"{{"FailedLines":[{{"ErrorCode":"InvalidUserId","Message":"TDID {DAID} is not a known user","ItemNumber":"2"}}]}}"#
        ),
    ));
    let batch = [
        with_daid(
            RequestKind::OptOutSaleShare,
            "11111111-2222-3333-4444-555555555555",
        ),
        work(RequestKind::OptOutSaleShare).with(with_raw(IdentifierType::CookieId, DAID)),
    ];
    let results = connector.apply(Operation::Suppress, &batch).await.unwrap();
    assert_eq!(
        results[0].as_ref().unwrap().action,
        ConfirmationAction::Suppressed
    );
    let error = results[1].clone().unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Permanent(t)
            if t.contains("InvalidUserId") && t.contains("<redacted>") && !t.contains(DAID)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_failed_line_that_names_no_item_fails_the_whole_call() {
    let (sim, connector) = start("").await;
    sim.control().inject(Fault::answer(
        200,
        r#"{"FailedLines":[{"ErrorCode":"Unknown","Message":"something failed"}]}"#,
    ));
    let opt_out = with_daid(RequestKind::OptOutSaleShare, DAID);
    assert_refused(
        apply_one(&connector, Operation::Suppress, &opt_out).await,
        "names no item",
    );
}

#[tokio::test]
async fn the_simulator_reports_a_malformed_daid_as_a_failed_line() {
    let sim = sim().await;
    let url = format!("{}/data/deletion-optout/advertiser", sim.api_base_url());
    let body = json!({"AdvertiserId": "hushdemo1", "RequestType": "OptOut",
        "Items": [{"DAID": DAID}, {"DAID": "not-a-guid"}]});
    let http = reqwest::Client::new();
    let request = http.post(url).header("TTD-Auth", "sim-ttd-auth-token");
    let response = request.json(&body).send().await.unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["FailedLines"][0]["ItemNumber"], "2");
    assert_eq!(answer["FailedLines"][0]["ErrorCode"], "InvalidUserId");
    assert_eq!(sim.accepted()[0].ids.len(), 1);
}

#[tokio::test]
async fn ids_are_cut_to_ttds_limit() {
    let (sim, connector) = start("").await;
    let batch = people_with_a_daid(RequestKind::Delete, FACTORY.max_batch + 5);
    assert_eq!(FACTORY.max_batch, 10_000);
    let results = connector.apply(Operation::Delete, &batch).await.unwrap();
    assert_every_item(&results, batch.len(), ConfirmationAction::Deleted);
    assert_eq!(ids_per_call(&sim), [10_000, 5]);
}

/// `count` requests of `kind`, each for a person with a DAID of their own.
fn people_with_a_daid(kind: RequestKind, count: usize) -> Vec<SuppressionWork> {
    let daid = |n| format!("38400000-8cf0-11bd-b23e-{n:012}");
    (0..count).map(|n| with_daid(kind, &daid(n))).collect()
}

/// How many ids (`Items` entries) each call the simulator received carried, in order.
fn ids_per_call(sim: &TradeDeskSim) -> Vec<usize> {
    let ids = |call: &RecordedCall| call.json["Items"].as_array().map_or(0, Vec::len);
    sim.control().calls().iter().map(ids).collect()
}

#[tokio::test]
async fn a_spent_rate_limit_waits_the_default_and_stops_the_batch() {
    let (sim, connector) = start("rate_limit_retry_after_secs = 30").await;
    sim.limit_requests(0);
    let batch = people_with_a_daid(RequestKind::OptOutSaleShare, FACTORY.max_batch + 5);
    let results = connector.apply(Operation::Suppress, &batch).await.unwrap();
    assert_retry_after(results[0].clone(), Duration::from_secs(30));
    assert_retry_after(
        results[FACTORY.max_batch + 4].clone(),
        Duration::from_secs(30),
    );
    assert_eq!(
        sim.control().calls().len(),
        1,
        "the second call is not sent after a rate limit"
    );
}

#[tokio::test]
async fn refusals_are_permanent_with_what_to_fix() {
    let sim = sim().await;
    let opt_out = with_daid(RequestKind::OptOutSaleShare, DAID);
    let wrong_token = connector_for(&sim, "not-the-token", "");
    assert_refused(
        apply_one(&wrong_token, Operation::Suppress, &opt_out).await,
        "credentials.auth_token",
    );

    let other = connector_for(&sim, "sim-ttd-auth-token", "advertiser_id = \"other\"");
    assert_refused(
        apply_one(&other, Operation::Suppress, &opt_out).await,
        "Advertiser not configured",
    );
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let (sim, connector) = start("").await;
    ComplianceSuite::new(&connector, &FACTORY, &|kind| {
        with_daid(kind, DAID).with(with_raw(IdentifierType::Email, "suite@example.com"))
    })
    .with_faults(sim.control())
    .run()
    .await;
}
