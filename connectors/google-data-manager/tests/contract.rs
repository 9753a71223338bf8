//! Contract tests: the Google Data Manager connector against the Data Manager API simulator
//! over loopback.

use std::time::Duration;

use hush_connector_google_data_manager::sim::{
    DataManagerSim, DataManagerSimConfig, GoogleOAuthClient, RequestEnd,
};
use hush_connector_google_data_manager::{
    GoogleDataManagerConfig, GoogleDataManagerConnector, EVIDENCE_REQUEST,
};
use hush_connector_kit::testing::audience::assert_unmatchable_not_found_and_opt_ins_not_applicable;
use hush_connector_kit::testing::google::assert_rejected_token_renewed_once;
use hush_connector_kit::testing::read_back::assert_pending_then_verified;
use hush_connector_kit::testing::{
    apply_one, assert_refused, assert_retry_after, completed, email_sha256, hashed, opt_out,
    recipient_with, with_raw, work, ComplianceSuite, WorkExt,
};
use hush_contracts::connector::{Connector, Operation};
use hush_contracts::events::{ConfirmationAction, IdentifierType, RequestKind, VerificationStatus};
use hush_contracts::identifiers::{hash_identifier, sha256_hex};
use hush_contracts::recipients::RecipientConfig;
use hush_sim_kit::Fault;
use serde_json::{json, Value};

fn recipient(sim: &DataManagerSim, config: &DataManagerSimConfig, extra: &str) -> RecipientConfig {
    let text = format!(
        r#"
id = "google-customer-match"
kind = "google_data_manager"
role = "THIRD_PARTY"
base_url = "{base}"
timeout_ms = 2000
[settings]
operating_account_id = "{account}"
audience_id = "{audience}"
token_url = "{token}"
poll_interval_ms = 10
max_wait_ms = 5000
"#,
        base = sim.base_url(),
        token = sim.token_url(),
        account = config.operating_account_id,
        audience = config.audience_id,
    );
    recipient_with(&text, extra)
}

fn connector_for(
    sim: &DataManagerSim,
    config: &DataManagerSimConfig,
    extra: &str,
) -> GoogleDataManagerConnector {
    let r = recipient(sim, config, extra);
    let resolved = GoogleDataManagerConfig::with_credentials(
        &r,
        r.settings().unwrap(),
        config.oauth.client_credentials(),
    )
    .unwrap();
    GoogleDataManagerConnector::new(resolved).unwrap()
}

/// A simulator honouring `config`, and the connector pointed at it with the settings `extra`.
async fn start(
    config: DataManagerSimConfig,
    extra: &str,
) -> (DataManagerSim, GoogleDataManagerConnector) {
    let sim = DataManagerSim::start(config.clone()).await.unwrap();
    let connector = connector_for(&sim, &config, extra);
    (sim, connector)
}

#[tokio::test]
async fn removal_polled_to_success_is_verified_and_removes_exactly_the_subjects() {
    let config = DataManagerSimConfig {
        login_account_id: Some("9998887777".into()),
        ..DataManagerSimConfig::default()
    };
    let (sim, connector) = start(config, "login_account_id = \"999-888-7777\"").await;
    let phone = hash_identifier(IdentifierType::Phone, "(800) 555-0100").unwrap();
    sim.add_members([
        email_sha256("jane@example.com"),
        phone.clone(),
        email_sha256("joe@example.com"),
        email_sha256("bystander@example.com"),
    ]);
    let batch = [
        work(RequestKind::OptOutSaleShare)
            .with(hashed(IdentifierType::Email, "Jane@Example.com"))
            .with(hashed(IdentifierType::Phone, "(800) 555-0100")),
        opt_out("joe@example.com"),
    ];
    let results = connector.apply(Operation::Suppress, &batch).await.unwrap();

    for result in &results {
        let completion = result.as_ref().unwrap();
        assert_eq!(completion.action, ConfirmationAction::Suppressed);
        assert_eq!(completion.verification, VerificationStatus::Verified);
        assert_eq!(completion.evidence["request_status"], "SUCCESS");
        assert_eq!(completion.evidence["batch_members"], "2");
        assert_eq!(
            completion.evidence["destination"],
            "GOOGLE_ADS 1234567890 audience 555"
        );
    }
    assert_eq!(
        results[0].as_ref().unwrap().evidence["identifier_sha256"],
        format!("{},{phone}", email_sha256("jane@example.com"))
    );
    assert_eq!(
        sim.members().into_iter().collect::<Vec<_>>(),
        vec![email_sha256("bystander@example.com")]
    );

    let remove = &sim.control().calls_to("/v1/audienceMembers:remove")[0];
    assert!(remove
        .header("authorization")
        .unwrap()
        .starts_with("Bearer ya29."));
    assert_eq!(remove.header("developer-token"), None, "none is needed");
    assert_eq!(
        remove.json,
        json!({
            "destinations": [{
                "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
                "loginAccount": {"accountType": "GOOGLE_ADS", "accountId": "9998887777"},
                "productDestinationId": "555"
            }],
            "audienceMembers": [
                {"userData": {"userIdentifiers": [
                    {"emailAddress": email_sha256("jane@example.com")}, {"phoneNumber": phone}]}},
                {"userData": {"userIdentifiers": [{"emailAddress": email_sha256("joe@example.com")}]}}
            ],
            "encoding": "HEX"
        })
    );
    // PROCESSING for two status reads, SUCCESS on the third, each naming the request.
    let reads = sim.control().calls_to("/v1/requestStatus:retrieve");
    assert_eq!(reads.len(), 3);
    let id = &results[0].as_ref().unwrap().evidence[EVIDENCE_REQUEST];
    assert!(reads
        .iter()
        .all(|c| c.path == format!("/v1/requestStatus:retrieve?requestId={id}")));
}

#[tokio::test]
async fn delete_is_reported_as_deleted() {
    let (sim, connector) = start(DataManagerSimConfig::default(), "").await;
    sim.add_members([email_sha256("gone@example.com")]);
    let item = work(RequestKind::Delete).with(hashed(IdentifierType::Email, "gone@example.com"));
    let completion = completed(&connector, Operation::Delete, &item).await;
    assert_eq!(completion.action, ConfirmationAction::Deleted);
    assert_eq!(completion.verification, VerificationStatus::Verified);
    assert!(sim.members().is_empty());
}

#[tokio::test]
async fn a_gmail_member_uploaded_in_googles_form_is_removed() {
    let (sim, connector) = start(DataManagerSimConfig::default(), "").await;
    // The business uploaded the address as Google asks: no dots, no +tag.
    sim.add_members([sha256_hex("janedoe@gmail.com")]);
    let item = work(RequestKind::OptOutSaleShare)
        .with(with_raw(IdentifierType::Email, "Jane.Doe+shop@gmail.com"));
    let completion = completed(&connector, Operation::Suppress, &item).await;
    assert_eq!(completion.verification, VerificationStatus::Verified);
    assert!(sim.members().is_empty());
    assert!(!completion.evidence.values().any(|v| v.contains("gmail")));
}

#[tokio::test]
async fn people_without_email_or_phone_are_not_found_with_the_reason_and_make_no_call() {
    let (sim, connector) = start(DataManagerSimConfig::default(), "").await;
    assert_unmatchable_not_found_and_opt_ins_not_applicable(
        &connector,
        &hashed(IdentifierType::CustomerId, "cust-1"),
        "no email or phone",
        &|| sim.control().calls().len(),
    )
    .await;
}

#[tokio::test]
async fn failed_request_is_permanent_with_googles_error_counts() {
    let (sim, connector) = start(DataManagerSimConfig::default(), "").await;
    sim.add_members([email_sha256("a@example.com")]);
    sim.fail_next_request(RequestEnd::Failed(
        "PROCESSING_ERROR_REASON_INVALID_CUSTOMER_ID".into(),
    ));
    assert_refused(
        apply_one(&connector, Operation::Suppress, &opt_out("a@example.com")).await,
        "FAILED (PROCESSING_ERROR_REASON_INVALID_CUSTOMER_ID×1); nothing of it was removed",
    );
    assert_eq!(sim.members().len(), 1);
}

#[tokio::test]
async fn partial_success_is_confirmed_with_verification_failed() {
    let (sim, connector) = start(DataManagerSimConfig::default(), "").await;
    sim.fail_next_request(RequestEnd::PartialSuccess(
        "PROCESSING_ERROR_REASON_INVALID_FORMAT".into(),
    ));
    let completion = completed(&connector, Operation::Suppress, &opt_out("a@example.com")).await;
    assert_eq!(completion.action, ConfirmationAction::Suppressed);
    assert_eq!(completion.verification, VerificationStatus::Failed);
    assert_eq!(
        completion.evidence["error_counts"],
        "PROCESSING_ERROR_REASON_INVALID_FORMAT×1"
    );
}

#[tokio::test]
async fn request_still_processing_at_max_wait_is_pending_and_verify_reads_it_back() {
    let config = DataManagerSimConfig {
        processing_polls: 12,
        ..DataManagerSimConfig::default()
    };
    let (sim, connector) = start(config, "max_wait_ms = 40\npoll_interval_ms = 20").await;
    let item = opt_out("slow@example.com");
    let completion = completed(&connector, Operation::Suppress, &item).await;
    assert_eq!(completion.evidence["request_status"], "PROCESSING");
    let id = completion.evidence[EVIDENCE_REQUEST].clone();
    assert_pending_then_verified(&connector, &item, &completion, 19).await;
    assert_eq!(sim.request_status(&id).as_deref(), Some("SUCCESS"));
}

#[tokio::test]
async fn token_rejected_with_401_is_refreshed_once_and_the_call_repeated() {
    let (sim, connector) = start(DataManagerSimConfig::default(), "").await;
    let sample = || opt_out("a@example.com");
    assert_rejected_token_renewed_once(&connector, Operation::Suppress, &sample, &*sim, "/").await;
    let form = String::from_utf8(sim.control().calls_to("/token")[0].body.clone()).unwrap();
    assert!(form.contains("grant_type=refresh_token"), "{form}");
}

#[tokio::test]
async fn revoked_refresh_token_is_permanent() {
    let config = DataManagerSimConfig::default();
    let sim = DataManagerSim::start(DataManagerSimConfig {
        oauth: GoogleOAuthClient {
            refresh_token: "another".into(),
            ..config.oauth.clone()
        },
        ..config.clone()
    })
    .await
    .unwrap();
    let connector = connector_for(&sim, &config, "");
    assert_refused(
        connector
            .apply(Operation::Suppress, &[opt_out("a@example.com")])
            .await,
        "invalid_grant",
    );
}

#[tokio::test]
async fn a_wrong_audience_is_permanent_with_googles_reason() {
    let (_sim, connector) = start(DataManagerSimConfig::default(), "audience_id = \"404\"").await;
    assert_refused(
        connector
            .apply(Operation::Suppress, &[opt_out("a@example.com")])
            .await,
        "INVALID_ARGUMENT (INVALID_USER_LIST_ID)",
    );
}

#[tokio::test]
async fn a_quota_429_in_googles_shape_waits_for_retry_after() {
    let (sim, connector) = start(DataManagerSimConfig::default(), "").await;
    sim.control().inject(Fault::Status {
        status: 429,
        retry_after: Some(11),
        body: json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
            "message": "Quota exceeded for quota metric 'IngestionMutateRequestsPerMinutePerProject'."}})
        .to_string(),
    });
    assert_retry_after(
        connector
            .apply(Operation::Suppress, &[opt_out("a@example.com")])
            .await,
        Duration::from_secs(11),
    );
}

/// An access token from the simulator, for raw calls.
async fn raw_token(sim: &DataManagerSim, config: &DataManagerSimConfig) -> String {
    config.oauth.access_token(&sim.token_url()).await
}

/// A `audienceMembers:remove` body for the simulator's audience with `members`.
fn body(members: Vec<Value>) -> Value {
    json!({
        "destinations": [{"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
                          "productDestinationId": "555"}],
        "audienceMembers": members,
        "encoding": "HEX"
    })
}

fn member(hashes: &[String]) -> Value {
    let ids: Vec<Value> = hashes.iter().map(|h| json!({"emailAddress": h})).collect();
    json!({"userData": {"userIdentifiers": ids}})
}

/// Sends `body` as Google would receive it; returns the status and the `ErrorInfo` reason.
async fn raw_remove(sim: &DataManagerSim, token: &str, body: &Value) -> (u16, String) {
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/audienceMembers:remove", sim.base_url()))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let json: Value = answer.json().await.unwrap();
    let reason = json["error"]["details"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, reason)
}

#[tokio::test]
async fn simulator_enforces_the_documented_limits_and_shape() {
    let config = DataManagerSimConfig::default();
    let sim = DataManagerSim::start(config.clone()).await.unwrap();
    let token = raw_token(&sim, &config).await;
    let hash = email_sha256("a@example.com");

    let eleven: Vec<String> = (0..11).map(|n| sha256_hex(&n.to_string())).collect();
    assert_eq!(
        raw_remove(&sim, &token, &body(vec![member(&eleven)])).await,
        (400, "TOO_MANY_USER_IDENTIFIERS".into())
    );
    let too_many = vec![member(std::slice::from_ref(&hash)); 10_001];
    assert_eq!(
        raw_remove(&sim, &token, &body(too_many)).await,
        (400, "TOO_MANY_AUDIENCE_MEMBERS".into())
    );
    let mut eleven_destinations = body(vec![member(std::slice::from_ref(&hash))]);
    let destination = eleven_destinations["destinations"][0].clone();
    eleven_destinations["destinations"] = json!(vec![destination; 11]);
    assert_eq!(
        raw_remove(&sim, &token, &eleven_destinations).await,
        (400, "TOO_MANY_DESTINATIONS".into())
    );
    let mut no_encoding = body(vec![member(std::slice::from_ref(&hash))]);
    no_encoding.as_object_mut().unwrap().remove("encoding");
    assert_eq!(
        raw_remove(&sim, &token, &no_encoding).await,
        (400, "REQUIRED_FIELD_MISSING".into())
    );
    assert_eq!(
        raw_remove(
            &sim,
            &token,
            &body(vec![member(&["jane@example.com".into()])])
        )
        .await,
        (400, "INVALID_HEX_ENCODING".into())
    );
    assert_eq!(
        raw_remove(&sim, &token, &body(vec![member(&["abcd".into()])])).await,
        (400, "INVALID_SHA256_FORMAT".into())
    );
    let mut other_account = body(vec![member(std::slice::from_ref(&hash))]);
    other_account["destinations"][0]["operatingAccount"]["accountId"] = json!("1111111111");
    assert_eq!(
        raw_remove(&sim, &token, &other_account).await,
        (403, "PERMISSION_DENIED".into())
    );
    let mut unknown = body(vec![member(std::slice::from_ref(&hash))]);
    unknown["destinations"][0]["userListId"] = json!("555");
    assert_eq!(
        raw_remove(&sim, &token, &unknown).await,
        (400, "INVALID_ARGUMENT".into())
    );
    // Fast-fail: one bad member refuses the whole request and creates none.
    let mixed = body(vec![
        member(std::slice::from_ref(&hash)),
        member(&["x".into()]),
    ]);
    assert_eq!(raw_remove(&sim, &token, &mixed).await.0, 400);
    assert_eq!(
        raw_remove(&sim, &token, &body(vec![member(&[hash])])).await,
        (200, String::new())
    );
    assert_eq!(
        sim.request_status("sim-request-00000001").as_deref(),
        Some("PROCESSING")
    );
}

#[tokio::test]
async fn simulator_requires_a_bearer_token_and_a_request_id() {
    let config = DataManagerSimConfig::default();
    let sim = DataManagerSim::start(config.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let anonymous = http
        .post(format!("{}/v1/audienceMembers:remove", sim.base_url()))
        .json(&body(vec![member(&[email_sha256("a@example.com")])]))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let token = raw_token(&sim, &config).await;
    let no_id = http
        .get(format!("{}/v1/requestStatus:retrieve", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(no_id.status(), 400);
    let unknown = http
        .get(format!(
            "{}/v1/requestStatus:retrieve?requestId=nope",
            sim.base_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let (sim, connector) = start(DataManagerSimConfig::default(), "timeout_ms = 300").await;
    ComplianceSuite::new(
        &connector,
        &hush_connector_google_data_manager::FACTORY,
        &|kind| work(kind).with(with_raw(IdentifierType::Email, "jane.doe@gmail.com")),
    )
    .with_faults(sim.control())
    .run()
    .await;
}
