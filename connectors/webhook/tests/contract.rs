//! Contract tests: the webhook connector against the webhook recipient simulator over loopback
//! HTTP.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hush_connector_kit::testing::profiles::credentials_in_env;
use hush_connector_kit::testing::{completed, email, hashed, one, work, ComplianceSuite, WorkExt};
use hush_connector_webhook::request::instruction;
use hush_connector_webhook::sim::WebhookSimulator;
use hush_connector_webhook::WebhookConnector;
use hush_contracts::callback::{verify_callback, CallbackStatus, RecipientCallback};
use hush_contracts::connector::{
    Connector, ConnectorError, FromRecipient, Operation, SuppressionWork,
};
use hush_contracts::events::{
    Category, ConfirmationAction, IdentifierType, RequestKind, VerificationStatus,
};
use hush_contracts::identifiers::sha256_hex;
use hush_contracts::recipients::RecipientConfig;
use hush_contracts::signature::{sign, verify_signature};
use hush_contracts::signature::{
    DEFAULT_TOLERANCE, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use hush_sim_kit::Fault;
use serde_json::json;

const SECRET: &str = "whsec_contract_0123456789abcdef";
const SECRET_VAR: &str = "HUSH_TEST_WEBHOOK_SECRET";
const OTHER_SECRET_VAR: &str = "HUSH_TEST_WEBHOOK_OTHER_SECRET";
const PATH: &str = "/privacy/notices";

fn recipient(base_url: &str, settings: &str, extra: &str) -> RecipientConfig {
    credentials_in_env(&[
        (SECRET_VAR, SECRET),
        (OTHER_SECRET_VAR, "an-entirely-different-secret"),
    ]);
    toml::from_str(&format!(
        "id = \"data-partner\"\nkind = \"webhook\"\nrole = \"THIRD_PARTY\"\nbase_url = \"{base_url}\"\n\
         credentials = {{ signing_secret = \"{SECRET_VAR}\" }}\n{extra}\n[settings]\npath = \"{PATH}\"\n{settings}"
    ))
    .unwrap()
}

fn connector(sim: &WebhookSimulator, callback_url: Option<&str>) -> WebhookConnector {
    let settings = callback_url
        .map(|url| format!("callback_url = \"{url}\"\n"))
        .unwrap_or_default();
    WebhookConnector::from_recipient(&recipient(&sim.base_url(), &settings, "")).unwrap()
}

/// Jane's request `request_id`, received on 1 January 2025: her email and phone, hashed, for
/// advertising and marketing partners.
fn jane(request_id: &str, kind: RequestKind) -> SuppressionWork {
    let work = work(kind)
        .id(request_id)
        .with(email("jane.doe@example.com"))
        .with(hashed(IdentifierType::Phone, "+14155550100"))
        .categories(vec![Category::Advertising, Category::MarketingPartners]);
    SuppressionWork {
        received_at: 1_735_689_600_000,
        ..work
    }
}

async fn sim() -> WebhookSimulator {
    WebhookSimulator::start(SECRET, PATH).await.unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn opt_out_posts_a_signed_notice_with_the_documented_body() {
    let sim = sim().await;
    let connector = connector(
        &sim,
        Some("https://privacy.example.com/v1/callbacks/data-partner"),
    );
    let completion = completed(
        &connector,
        Operation::Suppress,
        &jane("req-1", RequestKind::OptOutSaleShare),
    )
    .await;

    let calls = sim.control().calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, PATH);
    assert_eq!(call.header("content-type"), Some("application/json"));
    assert_eq!(call.header(IDEMPOTENCY_HEADER), Some("req-1"));
    let timestamp = call.header(TIMESTAMP_HEADER).unwrap();
    assert!((timestamp.parse::<i64>().unwrap() - now()).abs() <= 5);
    verify_signature(
        SECRET,
        timestamp,
        &call.body,
        call.header(SIGNATURE_HEADER).unwrap(),
        now(),
        DEFAULT_TOLERANCE,
    )
    .unwrap();
    assert_eq!(
        call.json,
        json!({
            "notice_id": completion.evidence["notice_id"],
            "request_id": "req-1",
            "connector_id": "data-partner",
            "kind": "OPT_OUT_SALE_SHARE",
            "jurisdiction": "US-CA",
            "received_at": "2025-01-01T00:00:00.000Z",
            "identifiers": [
                {"type": "EMAIL", "sha256": sha256_hex("jane.doe@example.com")},
                {"type": "PHONE", "sha256": sha256_hex("+14155550100")},
            ],
            "categories": ["ADVERTISING", "MARKETING_PARTNERS"],
            "instruction": instruction(RequestKind::OptOutSaleShare),
            "callback_url": "https://privacy.example.com/v1/callbacks/data-partner",
        })
    );
    assert!(call.json["instruction"]
        .as_str()
        .unwrap()
        .contains("§ 7026(f)"));
}

#[tokio::test]
async fn a_delivered_notice_is_notified_and_pending_its_callback() {
    let sim = sim().await;
    let connector = connector(&sim, Some("https://privacy.example.com/cb"));
    let completion = completed(
        &connector,
        Operation::Suppress,
        &jane("req-2", RequestKind::OptOutSaleShare),
    )
    .await;
    assert_eq!(completion.action, ConfirmationAction::Notified);
    assert_eq!(completion.verification, VerificationStatus::Pending);
    assert_eq!(completion.evidence["http_status"], "200");
    assert_eq!(
        completion.evidence["signature_timestamp"],
        sim.control().calls()[0].header(TIMESTAMP_HEADER).unwrap()
    );
    let digest = &completion.evidence["response_body_sha256"];
    assert!(
        hush_contracts::identifiers::is_sha256_hex(digest),
        "{digest}"
    );
    assert!(!format!("{:?}", completion.evidence).contains("jane"));
}

#[tokio::test]
async fn without_a_callback_url_the_notice_is_unverifiable() {
    let sim = sim().await;
    let completion = completed(
        &connector(&sim, None),
        Operation::Suppress,
        &jane("req-3", RequestKind::LimitSensitive),
    )
    .await;
    assert_eq!(completion.action, ConfirmationAction::Notified);
    assert_eq!(completion.verification, VerificationStatus::Unverifiable);
    assert!(sim.control().calls()[0].json.get("callback_url").is_none());
}

#[tokio::test]
async fn delete_and_suppress_send_one_notice_each_with_their_kind() {
    let sim = sim().await;
    let connector = connector(&sim, None);
    completed(
        &connector,
        Operation::Delete,
        &jane("req-4", RequestKind::Delete),
    )
    .await;
    completed(
        &connector,
        Operation::Suppress,
        &jane("req-5", RequestKind::OptOutSaleShare),
    )
    .await;
    let notices = sim.notices();
    assert_eq!(notices.len(), 2);
    assert_eq!(notices[0].kind, RequestKind::Delete);
    assert!(notices[0].instruction.contains("§ 1798.105(c)"));
    assert_eq!(notices[1].kind, RequestKind::OptOutSaleShare);
}

#[tokio::test]
async fn a_repeated_notice_gets_the_same_answer_and_counts_once() {
    let sim = sim().await;
    let connector = connector(&sim, None);
    let first = completed(
        &connector,
        Operation::Suppress,
        &jane("req-6", RequestKind::OptOutSaleShare),
    )
    .await;
    let second = completed(
        &connector,
        Operation::Suppress,
        &jane("req-6", RequestKind::OptOutSaleShare),
    )
    .await;
    assert_eq!(sim.control().calls().len(), 2);
    assert_eq!(sim.notices().len(), 1);
    assert_eq!(second.action, ConfirmationAction::Notified);
    assert_eq!(first.evidence["notice_id"], second.evidence["notice_id"]);
    assert_eq!(
        first.evidence["response_body_sha256"],
        second.evidence["response_body_sha256"]
    );
}

#[tokio::test]
async fn a_notice_signed_with_another_secret_is_refused_and_permanent() {
    let sim = sim().await;
    let mut wrong = recipient(&sim.base_url(), "", "");
    wrong.credentials.insert(
        "signing_secret".into(),
        hush_contracts::config::SecretRef(OTHER_SECRET_VAR.into()),
    );
    let connector = WebhookConnector::from_recipient(&wrong).unwrap();
    let error = one(connector
        .apply(
            Operation::Suppress,
            &[jane("req-7", RequestKind::OptOutSaleShare)],
        )
        .await)
    .unwrap_err();
    assert_eq!(sim.control().calls()[0].status, 401);
    match error {
        ConnectorError::Permanent(detail) => {
            assert!(detail.contains("HTTP 401"), "{detail}");
            assert!(detail.contains("credentials.signing_secret"), "{detail}");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert!(sim.notices().is_empty());
}

/// Posts `body` to the simulator with the given signing headers, as a recipient's peer would.
async fn post_raw(
    sim: &WebhookSimulator,
    body: &[u8],
    timestamp: i64,
    signature: &str,
    idempotency_key: Option<&str>,
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{PATH}", sim.base_url()))
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, signature)
        .body(body.to_vec());
    if let Some(key) = idempotency_key {
        request = request.header(IDEMPOTENCY_HEADER, key);
    }
    let response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

fn notice_body(request_id: &str, sha256: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "notice_id": "ntc_test",
        "request_id": request_id,
        "connector_id": "data-partner",
        "kind": "DELETE",
        "jurisdiction": "US-CA",
        "received_at": "2025-01-01T00:00:00.000Z",
        "identifiers": [{"type": "EMAIL", "sha256": sha256}],
        "categories": ["ALL"],
        "instruction": instruction(RequestKind::Delete),
    }))
    .unwrap()
}

#[tokio::test]
async fn the_simulator_accepts_a_good_signature_and_refuses_tampered_and_stale_ones() {
    let sim = sim().await;
    let body = notice_body("req-8", &sha256_hex("jane.doe@example.com"));
    let ts = now();
    let good = sign(SECRET, ts, &body);

    let tampered = notice_body("req-8", &sha256_hex("john.roe@example.com"));
    let (status, text) = post_raw(&sim, &tampered, ts, &good, Some("req-8")).await;
    assert_eq!(status, 401);
    assert!(text.contains("does not match"), "{text}");

    let stale = ts - 600;
    let (status, text) = post_raw(
        &sim,
        &body,
        stale,
        &sign(SECRET, stale, &body),
        Some("req-8"),
    )
    .await;
    assert_eq!(status, 401);
    assert!(text.contains("away from now"), "{text}");

    assert!(sim.notices().is_empty());
    let (status, _) = post_raw(&sim, &body, ts, &good, Some("req-8")).await;
    assert_eq!(status, 200);
    assert_eq!(sim.notices().len(), 1);
}

#[tokio::test]
async fn the_simulator_requires_the_idempotency_key() {
    let sim = sim().await;
    let body = notice_body("req-9", &sha256_hex("jane.doe@example.com"));
    let ts = now();
    let (status, text) = post_raw(&sim, &body, ts, &sign(SECRET, ts, &body), None).await;
    assert_eq!(status, 400);
    assert!(text.contains(IDEMPOTENCY_HEADER), "{text}");
    assert!(sim.notices().is_empty());
}

#[tokio::test]
async fn the_simulator_refuses_an_unhashed_identifier() {
    let sim = sim().await;
    let body = notice_body("req-10", "jane.doe@example.com");
    let ts = now();
    let (status, text) = post_raw(&sim, &body, ts, &sign(SECRET, ts, &body), Some("req-10")).await;
    assert_eq!(status, 400);
    assert!(text.contains("SHA-256"), "{text}");
    assert!(sim.notices().is_empty());
}

#[tokio::test]
async fn a_client_error_is_permanent_with_the_recipients_text() {
    let sim = sim().await;
    sim.control().inject(Fault::answer(
        400,
        r#"{"error":"jurisdiction US-CA is not handled by this endpoint"}"#,
    ));
    let error = one(connector(&sim, None)
        .apply(
            Operation::Suppress,
            &[jane("req-13", RequestKind::OptOutSaleShare)],
        )
        .await)
    .unwrap_err();
    match error {
        ConnectorError::Permanent(detail) => {
            assert!(detail.contains("not handled by this endpoint"), "{detail}")
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test]
async fn after_a_transient_failure_the_rest_of_the_batch_is_not_attempted() {
    let sim = sim().await;
    sim.control().inject(Fault::server_error());
    let results = connector(&sim, None)
        .apply(
            Operation::Suppress,
            &[
                jane("req-15", RequestKind::OptOutSaleShare),
                jane("req-16", RequestKind::OptOutSaleShare),
            ],
        )
        .await
        .unwrap();
    assert_eq!(sim.control().calls().len(), 1);
    assert_eq!(results.len(), 2);
    assert!(results
        .iter()
        .all(|r| matches!(r, Err(ConnectorError::Transient(_)))));
}

type Received = Arc<Mutex<Vec<RecipientCallback>>>;

async fn intake_callback(
    State(received): State<Received>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    match verify_callback(
        SECRET,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        chrono::Utc::now().timestamp(),
        DEFAULT_TOLERANCE,
    ) {
        Ok(callback) => {
            received.lock().unwrap().push(callback);
            StatusCode::NO_CONTENT
        }
        Err(_) => StatusCode::UNAUTHORIZED,
    }
}

#[tokio::test]
async fn the_recipients_signed_callback_reaches_intake_and_verifies() {
    let received: Received = Arc::default();
    let intake = hush_sim_kit::serve(
        Router::new()
            .route("/v1/callbacks/data-partner", post(intake_callback))
            .with_state(received.clone()),
        hush_sim_kit::any_loopback_port(),
    )
    .await
    .unwrap();
    let sim = sim().await;
    let callback_url = format!("{}/v1/callbacks/data-partner", intake.base_url());
    completed(
        &connector(&sim, Some(&callback_url)),
        Operation::Delete,
        &jane("req-17", RequestKind::Delete),
    )
    .await;

    let status = sim
        .send_callback(&RecipientCallback {
            request_id: "req-17".into(),
            connector_id: Some("data-partner".into()),
            status: CallbackStatus::RetainedUnderException,
            exception_basis: Some("Cal. Civ. Code § 1798.105(d)(8)".into()),
            detail: Some("invoices kept for 7 years".into()),
        })
        .await
        .unwrap();
    assert_eq!(status, 204);
    let callbacks = received.lock().unwrap().clone();
    assert_eq!(callbacks.len(), 1);
    assert_eq!(callbacks[0].request_id, "req-17");
    let completion = callbacks[0].completion(RequestKind::Delete);
    assert_eq!(
        completion.action,
        ConfirmationAction::RetainedUnderException
    );
    assert_eq!(
        completion.exception_basis.as_deref(),
        Some("Cal. Civ. Code § 1798.105(d)(8)")
    );
    assert_eq!(completion.verification, VerificationStatus::Verified);
}

#[tokio::test]
async fn a_callback_for_an_unknown_request_is_not_sent() {
    let sim = sim().await;
    let error = sim
        .send_callback(&RecipientCallback {
            request_id: "never-notified".into(),
            connector_id: None,
            status: CallbackStatus::Completed,
            exception_basis: None,
            detail: None,
        })
        .await
        .unwrap_err();
    assert!(error.to_string().contains("never-notified"), "{error}");
    assert!(sim.control().calls().is_empty());
}

#[tokio::test]
async fn the_connector_passes_the_compliance_suite() {
    let sim = sim().await;
    let connector =
        WebhookConnector::from_recipient(&recipient(&sim.base_url(), "", "timeout_ms = 300"))
            .unwrap();
    ComplianceSuite::new(&connector, &hush_connector_webhook::FACTORY, &|kind| {
        jane("req-suite", kind)
    })
    .applying_opt_ins()
    .with_faults(sim.control())
    .run()
    .await;
}
