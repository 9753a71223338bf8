//! Intake over HTTP on the real broker and registry: what it accepts, what it refuses and
//! why, that a refusal publishes nothing, that it answers 503 when the broker is gone, and that
//! it is not ready (and answers no consent question) until its suppression state is rebuilt.

use std::time::Duration;

use hush_contracts::events::PrivacyRequest;
use hush_runtime::config::{CommonConfig, KafkaConfig, RegistryConfig};
use hush_tests::auth::{operator_client, test_auth};
use hush_tests::pipeline::{free_addr, set_test_secrets};
use hush_tests::Stack;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// Serves an intake on a free port; returns its base URL.
async fn serve_intake(
    common: CommonConfig,
    publish_timeout_ms: u64,
    shutdown: &CancellationToken,
) -> String {
    set_test_secrets();
    let mut config = hush_intake::service::Config {
        common,
        auth: test_auth().config(),
        ..Default::default()
    };
    config.intake.publish_timeout_ms = publish_timeout_ms;
    let intake = hush_intake::service::build(&config, shutdown.clone())
        .await
        .expect("intake builds");
    let addr = free_addr();
    tokio::spawn(hush_runtime::ops::serve(
        addr.clone(),
        hush_intake::api::router(intake),
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    format!("http://{addr}")
}

fn common(stack: &Stack, topics: hush_runtime::config::TopicsConfig) -> CommonConfig {
    CommonConfig {
        kafka: stack.kafka.clone(),
        schema_registry: RegistryConfig {
            url: stack.registry_url.clone(),
            ..Default::default()
        },
        topics,
    }
}

/// Posts as the test operator (every scope).
async fn post(url: &str, body: reqwest::Body, content_type: &str) -> (u16, Value) {
    let response = operator_client()
        .post(url)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .expect("intake reachable");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_input_gets_its_specific_error_and_publishes_nothing() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("intake-bad");
    stack.create_topics(&topics).await;
    let shutdown = CancellationToken::new();
    let base = serve_intake(common(&stack, topics.clone()), 5_000, &shutdown).await;
    let requests = format!("{base}/v1/requests");
    let json = "application/json";

    // (what, body, content type, status, error code, field at fault)
    type Case<'a> = (&'a str, String, &'a str, u16, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("malformed JSON", r#"{"kind": "#.into(), json, 400, "malformed_json", None),
        ("unknown kind", r#"{"kind":"SELL_EVERYTHING","identifiers":[{"type":"EMAIL","value":"a@b.co"}]}"#.into(), json, 422, "invalid_field", Some("kind")),
        ("no identifier", r#"{"kind":"OPT_OUT_SALE_SHARE","identifiers":[]}"#.into(), json, 422, "missing_identifier", Some("identifiers")),
        ("unverified delete", r#"{"kind":"DELETE","identifiers":[{"type":"EMAIL","value":"a@b.co"}]}"#.into(), json, 422, "verification_required", Some("verification.attestation")),
        ("invalid email", r#"{"kind":"OPT_OUT_SALE_SHARE","identifiers":[{"type":"EMAIL","value":"not-an-email"}]}"#.into(), json, 422, "invalid_identifier", Some("identifiers[0].value")),
        ("oversized body", format!(r#"{{"kind":"OPT_OUT_SALE_SHARE","identifiers":[{{"type":"EMAIL","value":"{}@b.co"}}]}}"#, "a".repeat(70_000)), json, 413, "payload_too_large", None),
        ("not JSON at all", "kind=OPT_OUT".into(), "application/x-www-form-urlencoded", 415, "unsupported_media_type", None),
    ];
    for (what, body, content_type, status, error, field) in cases {
        let (got, answer) = post(&requests, body.into(), content_type).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["error"], error, "{what}: {answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {answer}"
        );
        if let Some(field) = field {
            assert_eq!(answer["field"], field, "{what}: {answer}");
        }
    }

    // GPC: without the header nothing changes and the answer says so; with it, a device is needed.
    let gpc = format!("{base}/v1/gpc");
    let (status, answer) = post(&gpc, json!({"device_id": "d-1"}).to_string().into(), json).await;
    assert_eq!(
        (status, answer["honored"].clone()),
        (200, json!(false)),
        "{answer}"
    );
    let response = reqwest::Client::new()
        .post(&gpc)
        .header("Sec-GPC", "1")
        .json(&json!({"customer_id": "c-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);

    let published = stack.read_all(&topics.requests, 1, Duration::from_secs(3));
    assert!(
        published.is_empty(),
        "refused requests were published: {}",
        published.len()
    );
    shutdown.cancel();
}

#[tokio::test]
async fn the_same_idempotency_key_makes_one_request() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("intake-idem");
    stack.create_topics(&topics).await;
    let shutdown = CancellationToken::new();
    let base = serve_intake(common(&stack, topics.clone()), 5_000, &shutdown).await;
    let body = json!({"kind":"OPT_OUT_SALE_SHARE","identifiers":[{"type":"EMAIL","value":"twice@example.com"}],
                      "idempotency_key":"form-twice"})
    .to_string();
    let (first_status, first) = post(
        &format!("{base}/v1/requests"),
        body.clone().into(),
        "application/json",
    )
    .await;
    let (second_status, second) = post(
        &format!("{base}/v1/requests"),
        body.into(),
        "application/json",
    )
    .await;
    assert_eq!((first_status, second_status), (202, 202));
    assert_eq!(first["request_id"], second["request_id"]);
    assert_eq!(first["received_at"], second["received_at"]);

    let published = stack.read_all(&topics.requests, 2, Duration::from_secs(5));
    assert_eq!(published.len(), 1, "one request on the topic");
    let request: PrivacyRequest = stack
        .codec()
        .decode(published[0].payload.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(json!(request.request_id), first["request_id"]);
    assert!(
        request.identifiers[0].encrypted_value.is_some(),
        "raw email kept only encrypted"
    );
    let bytes = String::from_utf8_lossy(published[0].payload.as_deref().unwrap()).into_owned();
    assert!(
        !bytes.contains("twice@example.com"),
        "no raw email on the topic"
    );
    let other = json!({"kind":"DELETE","identifiers":[{"type":"EMAIL","value":"twice@example.com"}],
                       "verification":{"attestation": test_auth().attest_email("twice@example.com", "EMAIL_LINK")},
                       "idempotency_key":"form-twice"});
    let (status, conflict) = post(
        &format!("{base}/v1/requests"),
        other.to_string().into(),
        "application/json",
    )
    .await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["error"], "idempotency_conflict");
    assert_eq!(conflict["field"], "idempotency_key");

    // Keys are scoped by client: another caller's "form-twice" is another request.
    let anonymous: Value = reqwest::Client::new()
        .post(format!("{base}/v1/requests"))
        .json(&json!({"kind":"OPT_OUT_SALE_SHARE","identifiers":[{"type":"EMAIL","value":"twice@example.com"}],
                      "idempotency_key":"form-twice"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(anonymous["status"], "ACCEPTED", "{anonymous}");
    assert_ne!(anonymous["request_id"], first["request_id"]);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpc_signal_is_answered_by_the_opt_out_in_force_and_makes_a_new_request_after_an_opt_in()
{
    use hush_contracts::events::{IdentifierType, MinorStatus, SuppressionState};
    use hush_contracts::identifiers::hash_identifier;
    let stack = Stack::from_env();
    let topics = stack.unique_topics("intake-gpc");
    stack.create_topics(&topics).await;
    set_test_secrets();
    let config = hush_intake::service::Config {
        common: common(&stack, topics.clone()),
        auth: test_auth().config(),
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    let intake = hush_intake::service::build(&config, shutdown.clone())
        .await
        .expect("intake builds");
    tokio::spawn(hush_intake::service::follow_suppressions(
        config.common.clone(),
        intake.consent.clone(),
        shutdown.clone(),
    ));
    let addr = free_addr();
    tokio::spawn(hush_runtime::ops::serve(
        addr.clone(),
        hush_intake::api::router(intake.clone()),
        shutdown.clone(),
    ));
    let device = hash_identifier(IdentifierType::DeviceId, "browser-42").unwrap();
    let in_force = uuid::Uuid::new_v4().to_string();
    let state = |opted_out: bool| SuppressionState {
        identifier_hash: device.clone(),
        identifier_type: IdentifierType::DeviceId,
        subject_key: device.clone(),
        sale_share_opted_out: opted_out,
        sensitive_limited: false,
        deleted: false,
        effective_at: 1,
        resolicit_after: None,
        minor_status: MinorStatus::NotMinor,
        last_request_id: in_force.clone(),
        updated_at: 1,
        synthetic: false,
    };
    let producer = stack.producer();
    producer
        .send(&topics.suppressions, &device, &state(true))
        .await
        .unwrap();
    let wait_until = |opted_out: bool| {
        let intake = intake.clone();
        let device = device.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let now = intake.consent.lookup.get(&device).is_some();
                if intake
                    .consent
                    .rebuilt
                    .load(std::sync::atomic::Ordering::SeqCst)
                    && now == opted_out
                {
                    return;
                }
                assert!(tokio::time::Instant::now() < deadline, "state not seen");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait_until(true).await;
    let gpc = || async {
        let response = reqwest::Client::new()
            .post(format!("http://{addr}/v1/gpc"))
            .header("Sec-GPC", "1")
            .json(&json!({"device_id": "browser-42"}))
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    };
    let (status, answer) = gpc().await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["request_id"],
        json!(in_force),
        "the opt-out in force answers"
    );
    assert_eq!(answer["honored"], true);

    // The consumer opts back in (the state lifts the suppression); a new GPC signal is a new
    // opt-out.
    producer
        .send(&topics.suppressions, &device, &state(false))
        .await
        .unwrap();
    wait_until(false).await;
    let (status, answer) = gpc().await;
    assert_eq!(status, 202, "{answer}");
    assert_ne!(answer["request_id"], json!(in_force));
    let published = stack.read_all(&topics.requests, 2, Duration::from_secs(5));
    assert_eq!(published.len(), 1, "only the new opt-out was published");
    shutdown.cancel();
}

#[tokio::test]
async fn with_the_broker_unreachable_intake_answers_503_and_acknowledges_nothing() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("intake-down");
    let shutdown = CancellationToken::new();
    let down = CommonConfig {
        kafka: KafkaConfig {
            // Nothing listens here: the broker is gone.
            bootstrap_servers: "127.0.0.1:1".into(),
            ..KafkaConfig::default()
        },
        ..common(&stack, topics)
    };
    let base = serve_intake(down, 1_500, &shutdown).await;
    let (status, answer) = post(
        &format!("{base}/v1/requests"),
        json!({"kind":"OPT_OUT_SALE_SHARE","identifiers":[{"type":"EMAIL","value":"x@example.com"}]})
            .to_string()
            .into(),
        "application/json",
    )
    .await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"], "broker_unavailable");
    assert!(
        answer.get("request_id").is_none(),
        "nothing acknowledged: {answer}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn the_gpc_support_resource_is_served() {
    let stack = Stack::from_env();
    let shutdown = CancellationToken::new();
    let base = serve_intake(
        common(&stack, stack.unique_topics("gpcjson")),
        5_000,
        &shutdown,
    )
    .await;
    let resource: Value = reqwest::get(format!("{base}/.well-known/gpc.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resource["gpc"], true);
    assert!(resource["lastUpdate"].as_str().is_some());
    shutdown.cancel();
}

#[tokio::test]
async fn intake_refuses_to_start_without_its_encryption_key() {
    let mut config = hush_intake::service::Config::default();
    config.intake.encryption_key_env =
        hush_runtime::config::SecretRef("HUSH_IT_KEY_NEVER_SET".into());
    let error = hush_intake::service::build(&config, CancellationToken::new())
        .await
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("HUSH_IT_KEY_NEVER_SET"),
        "{error}"
    );
}

#[tokio::test]
async fn intake_is_not_ready_until_its_suppression_state_is_rebuilt() {
    set_test_secrets();
    let stack = Stack::from_env();
    // The topics do not exist yet, so the suppression state cannot be rebuilt.
    let topics = stack.unique_topics("intake-ready");
    let mut config = hush_intake::service::Config {
        common: common(&stack, topics.clone()),
        ..Default::default()
    };
    config.intake.listen = free_addr();
    let base = format!("http://{}", config.intake.listen);
    let shutdown = CancellationToken::new();
    tokio::spawn(hush_intake::service::run(config, shutdown.clone()));
    let http = reqwest::Client::new();
    let readyz = || async {
        let response = http.get(format!("{base}/readyz")).send().await.ok()?;
        Some((response.status().as_u16(), response.text().await.ok()?))
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let (status, body) = loop {
        if let Some((status, body)) = readyz().await {
            if body.contains("suppression state rebuilt") || status == 200 {
                break (status, body);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "intake serves /readyz"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status, 503, "{body}");
    let consent = http.get(format!("{base}/v1/consent")).send().await.unwrap();
    assert_eq!(
        consent.status().as_u16(),
        503,
        "no consent answer before the rebuild"
    );

    stack.create_topics(&topics).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, _)) = readyz().await {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ready within 30 s of the topics appearing: {:?}",
            readyz().await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let consent: Value = http
        .get(format!("{base}/v1/consent"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(consent["opted_out"], false, "{consent}");
    assert_eq!(consent["identified"], false, "{consent}");
    shutdown.cancel();
}
