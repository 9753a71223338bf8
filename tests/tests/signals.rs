//! Upstream systems publish to Kafka: a `PrivacySignal` on the signals topic, from the Python
//! example (confluent-kafka) and from Rust, becomes the same request as the HTTP submission of the
//! same request; a trusted source's receipt starts the clock; an invalid signal is dead-lettered
//! with a reason naming the field.

use std::process::Command;
use std::time::Duration;

use hush_contracts::events::{
    now_millis, Channel, IdentifierType, PrivacyRequest, PrivacySignal, RequestKind,
    SignalIdentifier,
};
use hush_intake::signals::request_id_for;
use hush_runtime::config::{CommonConfig, RegistryConfig};
use hush_runtime::kafka::DLQ_REASON_HEADER;
use hush_tests::pipeline::{free_addr, set_test_secrets};
use hush_tests::Stack;
use serde_json::json;
use tokio_util::sync::CancellationToken;

const EMAIL: &str = "  Jane.Roe@Example.com ";
const DAY_MS: i64 = 86_400_000;

fn rust_signal(source: &str, key: &str, kind: RequestKind) -> PrivacySignal {
    PrivacySignal {
        kind,
        identifiers: vec![SignalIdentifier {
            kind: IdentifierType::Email,
            value: Some(EMAIL.into()),
            sha256: None,
        }],
        channel: Some(Channel::WebForm),
        jurisdiction: Some("US-CA".into()),
        categories: vec![],
        verification: None,
        age_band: None,
        consumer_initiated: false,
        received_at: now_millis() - 3 * DAY_MS,
        source: source.into(),
        idempotency_key: key.into(),
    }
}

/// What must be equal whichever way a request came in.
fn essence(request: &PrivacyRequest) -> serde_json::Value {
    let identifiers: Vec<_> = request
        .identifiers
        .iter()
        .map(|i| {
            (
                i.kind.as_str(),
                i.sha256.clone(),
                i.encrypted_value.is_some(),
            )
        })
        .collect();
    json!({
        "subject_key": request.subject_key,
        "kind": request.kind.as_str(),
        "channel": request.channel.as_str(),
        "jurisdiction": request.jurisdiction,
        "identifiers": identifiers,
        "categories": format!("{:?}", request.categories),
        "verification": format!("{:?}", request.verification),
        "consumer_initiated": request.consumer_initiated,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_from_python_and_rust_become_the_same_request_as_http() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("signals");
    stack.create_topics(&topics).await;
    set_test_secrets();
    let listen = free_addr();
    let mut config = hush_intake::service::Config {
        common: CommonConfig {
            kafka: stack.kafka.clone(),
            schema_registry: RegistryConfig {
                url: stack.registry_url.clone(),
                ..Default::default()
            },
            topics: topics.clone(),
        },
        auth: hush_tests::auth::test_auth().config(),
        ..Default::default()
    };
    config.intake.listen = listen.clone();
    config.intake.signals_group_id = format!("it-signals-{}", uuid::Uuid::new_v4().simple());
    config.intake.trusted_signal_sources = vec!["web-backend".into()];
    let stop = CancellationToken::new();
    tokio::spawn(hush_intake::service::run(config, stop.clone()));
    let http = hush_tests::auth::operator_client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ready = http
            .get(format!("http://{listen}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "intake not ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 1. Over HTTP.
    let answer = http
        .post(format!("http://{listen}/v1/requests"))
        .json(&json!({"kind": "OPT_OUT_SALE_SHARE", "channel": "WEB_FORM", "jurisdiction": "US-CA",
                      "identifiers": [{"type": "EMAIL", "value": EMAIL}], "idempotency_key": "http-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 202);
    let http_id = answer.json::<serde_json::Value>().await.unwrap()["request_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // 2. From the Python example, a trusted source whose receipt was three days ago.
    let upstream_receipt = now_millis() - 3 * DAY_MS;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/publishers/publish_signal.py"
    );
    let mut publisher = Command::new("python3")
        .args([
            script,
            "--bootstrap",
            &stack.kafka.bootstrap_servers,
            "--registry",
            &stack.registry_url,
            "--topic",
            &topics.signals,
            "--email",
            EMAIL,
            "--channel",
            "WEB_FORM",
            "--jurisdiction",
            "US-CA",
            "--received-at",
            &upstream_receipt.to_string(),
            "--source",
            "web-backend",
            "--idempotency-key",
            "py-1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let started = std::time::Instant::now();
    while publisher.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(90) {
            publisher.kill().unwrap();
            panic!("the Python publisher did not finish within 90 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = publisher.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Python publisher failed (deploy/local/prerequisites installs confluent-kafka): {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // 3. From Rust, an untrusted source: the clock starts at intake.
    let producer = stack.producer();
    let before_rust = now_millis();
    producer
        .send(
            &topics.signals,
            "rs-1",
            &rust_signal("crm-sync", "rs-1", RequestKind::OptOutSaleShare),
        )
        .await
        .unwrap();

    // 4. An invalid one: a deletion without verification.
    producer
        .send(
            &topics.signals,
            "bad",
            &rust_signal("crm-sync", "bad-1", RequestKind::Delete),
        )
        .await
        .unwrap();

    let records = stack.read_all(&topics.requests, 3, Duration::from_secs(30));
    assert_eq!(
        records.len(),
        3,
        "HTTP, Python and Rust; the invalid one is not published"
    );
    let codec = stack.codec();
    let mut requests = Vec::new();
    for record in &records {
        let request: PrivacyRequest = codec
            .decode(record.payload.as_deref().unwrap())
            .await
            .unwrap();
        requests.push(request);
    }
    let by_id = |id: &str| {
        requests
            .iter()
            .find(|r| r.request_id == id)
            .unwrap_or_else(|| panic!("no request {id}"))
    };
    let from_http = by_id(&http_id);
    let from_python = by_id(&request_id_for("web-backend", "py-1"));
    let from_rust = by_id(&request_id_for("crm-sync", "rs-1"));
    assert_eq!(essence(from_python), essence(from_http));
    assert_eq!(essence(from_rust), essence(from_http));
    assert_eq!(
        from_python.received_at, upstream_receipt,
        "a trusted source's receipt starts the clock"
    );
    assert!(
        from_rust.received_at >= before_rust,
        "an untrusted source's clock starts at intake"
    );

    let dead = stack.read_all(&topics.dlq, 1, Duration::from_secs(20));
    assert_eq!(dead.len(), 1);
    let reason = dead[0].header(DLQ_REASON_HEADER).unwrap();
    assert!(
        reason.contains("verification_required") && reason.contains("verification"),
        "{reason}"
    );
    stop.cancel();
}
