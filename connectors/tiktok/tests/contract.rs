//! Contract tests: the TikTok connector against the Audience Segment API simulator over
//! loopback.

use std::time::Duration;

use hush_connector_kit::secret::Secret;
use hush_connector_kit::testing::{
    assert_every_item, assert_refused, assert_retry_after, completed, email, hashed, opting_out,
    recipient_with, work, ComplianceSuite, WorkExt,
};
use hush_connector_tiktok::sim::{TikTokSim, TikTokSimConfig};
use hush_connector_tiktok::{TikTokAudiences, TikTokConfig, FACTORY};
use hush_contracts::connector::{Connector, ConnectorError, Operation, SuppressionWork};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};
use hush_contracts::identifiers::sha256_hex;
use hush_sim_kit::{Fault, RecordedCall};
use serde_json::{json, Value};

const MAID: &str = "38400000-8cf0-11bd-b23e-10b96e40000d";

/// A connector for the simulator, with `token` and the settings `overrides` (TOML lines).
fn connector_for(sim: &TikTokSim, token: &str, overrides: &str) -> TikTokAudiences {
    let sim_config = TikTokSimConfig::default();
    let block = format!(
        r#"
id = "tiktok"
kind = "tiktok"
role = "THIRD_PARTY"
base_url = "{}"
timeout_ms = 1000
[settings]
advertiser_id = "{}"
audience_ids = {:?}
"#,
        sim.base_url(),
        sim_config.advertiser_id,
        sim_config.audience_ids,
    );
    let recipient = recipient_with(&block, overrides);
    TikTokAudiences::new(TikTokConfig::with_access_token(&recipient, Secret::new(token)).unwrap())
        .unwrap()
}

async fn start() -> (TikTokSim, TikTokAudiences) {
    let sim = TikTokSim::start(TikTokSimConfig::default()).await.unwrap();
    let connector = connector_for(&sim, &TikTokSimConfig::default().access_token, "");
    (sim, connector)
}

fn audiences() -> Vec<String> {
    TikTokSimConfig::default().audience_ids
}

fn person(kind: RequestKind, address: &str) -> SuppressionWork {
    work(kind).with(email(address))
}

#[tokio::test]
async fn an_opt_out_removes_every_identifier_from_every_audience() {
    let (sim, connector) = start().await;
    let (jane, sam) = (
        sha256_hex("jane@example.com"),
        sha256_hex("sam@example.com"),
    );
    sim.add_members("EMAIL_SHA256", [jane.clone(), sam.clone()]);
    sim.add_members("IDFA_SHA256", [sha256_hex(MAID)]);
    let request = person(RequestKind::OptOutSaleShare, "Jane@Example.com")
        .with(hashed(IdentifierType::Maid, MAID));

    let completion = completed(&connector, Operation::Suppress, &request).await;

    assert_eq!(completion.action, ConfirmationAction::Suppressed);
    assert_eq!(completion.verification, VerificationStatus::Unverifiable);
    assert_eq!(completion.evidence["ids_sent"], "3");
    assert!(completion.evidence["verification_note"].contains("never whether a given person"));
    assert_eq!(completion.evidence["action"], "delete");
    assert_eq!(
        completion.evidence["advertiser_id"],
        TikTokSimConfig::default().advertiser_id
    );
    assert!(completion.evidence["tiktok_request_ids"].starts_with("20261201"));
    for audience in audiences() {
        let members = sim.members(&audience);
        assert!(!members.contains(&jane) && !members.contains(&sha256_hex(MAID)));
        assert!(members.contains(&sam), "others stay in {audience}");
    }
    let calls = sim.control().calls_to("/open_api/v1.3/segment/mapping/");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].header("access-token"),
        Some(TikTokSimConfig::default().access_token.as_str())
    );
    let body = &calls[0].json;
    assert_eq!(body["action"], "delete");
    assert_eq!(
        body["id_schema"],
        json!(["EMAIL_SHA256", "IDFA_SHA256", "AAID_SHA256"])
    );
    assert_eq!(body["batch_data"][0][0]["id"], json!(jane));
    assert_eq!(body["batch_data"][0][1], json!({}));
    assert_eq!(body["batch_data"][0][0]["audience_ids"], json!(audiences()));
}

#[tokio::test]
async fn a_deletion_and_a_limit_remove_too_and_an_opt_in_is_not_applied() {
    let (sim, connector) = start().await;
    let hash = sha256_hex("jane@example.com");
    sim.add_members("EMAIL_SHA256", [hash.clone()]);
    let deleted = completed(
        &connector,
        Operation::Delete,
        &person(RequestKind::Delete, "jane@example.com"),
    )
    .await;
    assert_eq!(deleted.action, ConfirmationAction::Suppressed);
    assert!(!sim.members(&audiences()[0]).contains(&hash));

    let limit_and_opt_in = [
        person(RequestKind::LimitSensitive, "a@example.com"),
        person(RequestKind::OptInSaleShare, "a@example.com"),
    ];
    let results = connector
        .apply(Operation::Suppress, &limit_and_opt_in)
        .await;
    let actions: Vec<_> = results
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().action)
        .collect();
    assert_eq!(
        actions,
        [
            ConfirmationAction::Suppressed,
            ConfirmationAction::NotApplicable
        ]
    );
    let calls = sim.control().calls();
    assert_eq!(calls.len(), 2, "the opt-in made no call");
    assert_eq!(calls[1].json["batch_data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn people_tiktok_cannot_match_are_answered_without_a_call() {
    let (sim, connector) = start().await;
    let customer_only =
        work(RequestKind::OptOutSaleShare).with(hashed(IdentifierType::CustomerId, "c-1"));
    let results = connector
        .apply(Operation::Suppress, &[customer_only])
        .await
        .unwrap();
    let completion = results[0].as_ref().unwrap();
    assert_eq!(completion.action, ConfirmationAction::NotFound);
    assert!(completion.evidence["reason"].contains("nothing TikTok audiences match on"));
    assert!(sim.control().calls().is_empty());
}

#[tokio::test]
async fn rows_are_cut_to_the_limit_and_every_person_is_answered() {
    let (sim, connector) = start().await;
    let batch: Vec<SuppressionWork> = (0..FACTORY.max_batch)
        .map(|n| {
            person(RequestKind::OptOutSaleShare, &format!("p{n}@example.com"))
                .with(hashed(IdentifierType::Phone, "+1 415 555 0100"))
        })
        .collect();
    assert_eq!(FACTORY.max_batch, 1_000);
    let results = connector.apply(Operation::Suppress, &batch).await.unwrap();
    assert_every_item(&results, batch.len(), ConfirmationAction::Suppressed);
    // Each person sends an email row and a phone row: 2,000 rows, two calls of 1,000.
    assert_eq!(rows_per_call(&sim), [1_000, 1_000]);
}

/// How many rows (`batch_data` entries) each call the simulator received carried, in order.
fn rows_per_call(sim: &TikTokSim) -> Vec<usize> {
    let rows = |call: &RecordedCall| call.json["batch_data"].as_array().map_or(0, Vec::len);
    sim.control().calls().iter().map(rows).collect()
}

#[tokio::test]
async fn a_rate_limit_in_tiktoks_body_waits_and_stops_the_batch() {
    let (sim, connector) = start().await;
    sim.throttle_next(1);
    let batch: Vec<SuppressionWork> = (0..FACTORY.max_batch + 1)
        .map(|n| person(RequestKind::OptOutSaleShare, &format!("p{n}@example.com")))
        .collect();
    let results = connector.apply(Operation::Suppress, &batch).await.unwrap();
    assert_retry_after(results[0].clone(), Duration::from_secs(60));
    assert_retry_after(results[FACTORY.max_batch].clone(), Duration::from_secs(60));
    assert_eq!(
        sim.control().calls().len(),
        1,
        "nothing more is sent after a rate limit"
    );

    let fast = connector_for(
        &sim,
        &TikTokSimConfig::default().access_token,
        "rate_limit_retry_after_secs = 2",
    );
    sim.throttle_next(1);
    assert_retry_after(
        opting_out(&fast, "a@example.com").await,
        Duration::from_secs(2),
    );
}

#[tokio::test]
async fn a_refused_token_and_an_unknown_audience_are_permanent_with_tiktoks_text() {
    let sim = TikTokSim::start(TikTokSimConfig::default()).await.unwrap();
    let wrong = connector_for(&sim, "not-the-token", "");
    let error = opting_out(&wrong, "a@example.com").await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Permanent(t)
            if t.contains("40105") && t.contains("revoked") && t.contains("credentials.access_token")),
        "{error:?}"
    );

    let unknown = connector_for(
        &sim,
        &TikTokSimConfig::default().access_token,
        "audience_ids = [\"999\"]",
    );
    assert_refused(
        opting_out(&unknown, "a@example.com").await,
        "audience \"999\" does not exist",
    );
}

#[tokio::test]
async fn simulator_refuses_what_tiktok_refuses() {
    let sim = TikTokSim::start(TikTokSimConfig::default()).await.unwrap();
    let config = TikTokSimConfig::default();
    let token = Some(config.access_token.as_str());
    let hash = sha256_hex("a@example.com");
    let cell = json!({"id": hash, "audience_ids": [config.audience_ids[0]]});
    let body = |overrides: Value| {
        let mut body = json!({
            "advertiser_ids": [config.advertiser_id],
            "action": "delete",
            "id_schema": ["EMAIL_SHA256"],
            "batch_data": [[cell.clone()]],
        });
        body.as_object_mut()
            .unwrap()
            .extend(overrides.as_object().unwrap().clone());
        body
    };
    let too_many: Vec<Value> = (0..1_001).map(|_| json!([cell.clone()])).collect();
    let refused = [
        (json!({"action": "remove"}), 40002, "action"),
        (json!({"advertiser_ids": ["1"]}), 40001, "No permission"),
        (
            json!({"id_schema": ["EMAIL"]}),
            40002,
            "not a valid id type",
        ),
        (
            json!({"batch_data": [[cell.clone(), {}]]}),
            40002,
            "one object per id_schema",
        ),
        (
            json!({"batch_data": [[{"id": "Jane@Example.com", "audience_ids": ["1"]}]]}),
            40002,
            "not a valid EMAIL_SHA256",
        ),
        (json!({"batch_data": [[{}]]}), 40002, "every cell is empty"),
        (json!({"batch_data": too_many}), 40002, "at most 1000 rows"),
    ];
    for (overrides, code, says) in refused {
        let answer = post_mapping(&sim, "v1.3", token, &body(overrides.clone()))
            .await
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(answer["code"], code, "{overrides}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{answer}"
        );
    }
    let no_token = post_mapping(&sim, "v1.3", None, &body(json!({}))).await;
    assert_eq!(no_token.json::<Value>().await.unwrap()["code"], 40104);
    let old_version = post_mapping(&sim, "v1.2", token, &body(json!({}))).await;
    assert_eq!(old_version.status(), 404);
}

/// Posts `body` to the simulator's segment mapping endpoint of API `version` (e.g. `v1.3`),
/// with the `Access-Token` header when a `token` is given.
async fn post_mapping(
    sim: &TikTokSim,
    version: &str,
    token: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let url = format!("{}/open_api/{version}/segment/mapping/", sim.base_url());
    let mut request = reqwest::Client::new().post(url).json(body);
    if let Some(token) = token {
        request = request.header("Access-Token", token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_tiktok_system_error_is_transient() {
    let (sim, connector) = start().await;
    sim.control().inject(Fault::answer(
        200,
        r#"{"code":50000,"message":"System error","request_id":"x"}"#,
    ));
    let error = opting_out(&connector, "a@example.com").await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Transient(t) if t.contains("50000")),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let (sim, connector) = start().await;
    sim.add_members("EMAIL_SHA256", [sha256_hex("suite@example.com")]);
    ComplianceSuite::new(&connector, &FACTORY, &|kind| {
        person(kind, "suite@example.com").with(hashed(IdentifierType::Maid, MAID))
    })
    .with_faults(sim.control())
    .run()
    .await;
}
