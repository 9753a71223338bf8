//! The gate and the leak watch on the real broker and registry: each policy observed on the
//! destination topic, exactly once across a killed gate, a malformed record dead-lettered while
//! the stream flows, a leak in observed egress turning a request LEAKING, and a clean window
//! turning one PROVEN.

use std::collections::HashSet;
use std::time::Duration;

use hush_contracts::events::{
    now_millis, Category, Channel, Identifier, IdentifierType, MinorStatus, PrivacyRequest,
    RequestKind, SuppressionState,
};
use hush_contracts::gate::{
    GatePolicy, GateSection, GateStream, IdentifierPath, RecordFormat, WatchedEgress,
};
use hush_contracts::identifiers::sha256_hex;
use hush_gate::service::{Config, Mode};
use hush_runtime::config::{CommonConfig, RegistryConfig, TopicsConfig};
use hush_runtime::kafka::{EventProducer, DLQ_REASON_HEADER};
use hush_runtime::ops::Readiness;
use hush_tests::pipeline::free_addr;
use hush_tests::{RawRecord, Stack};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const OPTED_OUT: &str = "jane.doe@example.com";
const SOMEONE_ELSE: &str = "john.roe@example.com";

fn common(stack: &Stack, topics: &TopicsConfig) -> CommonConfig {
    CommonConfig {
        kafka: stack.kafka.clone(),
        schema_registry: RegistryConfig {
            url: stack.registry_url.clone(),
            ..Default::default()
        },
        topics: topics.clone(),
    }
}

fn stream(topics: &TopicsConfig, name: &str, policy: GatePolicy) -> GateStream {
    GateStream {
        source: format!("{}.{name}", topics.requests),
        destination: format!("{}.{name}.cleared", topics.requests),
        format: RecordFormat::Json,
        categories: vec![Category::Advertising],
        sensitive: false,
        identifiers: vec![
            IdentifierPath {
                path: "user.email".into(),
                kind: IdentifierType::Email,
                hashed: false,
            },
            IdentifierPath {
                path: "user_data.em".into(),
                kind: IdentifierType::Email,
                hashed: true,
            },
        ],
        policy,
        destination_path: None,
        annotate_field: Some("regs.gpp".into()),
    }
}

fn gate_section(streams: Vec<GateStream>, watch: Vec<WatchedEgress>) -> GateSection {
    GateSection {
        listen: free_addr(),
        group_id: format!("it-gate-{}", uuid::Uuid::new_v4().simple()),
        instance_id: Some("it-instance".into()),
        transaction_timeout_ms: 10_000,
        max_batch: 50,
        streams,
        watch,
    }
}

/// Publishes the suppression state of `email` as hush-state would.
async fn suppress(stack: &Stack, topics: &TopicsConfig, email: &str, request_id: &str, at: i64) {
    let hash = sha256_hex(email);
    let state = SuppressionState {
        identifier_hash: hash.clone(),
        identifier_type: IdentifierType::Email,
        subject_key: hash.clone(),
        sale_share_opted_out: true,
        sensitive_limited: false,
        deleted: false,
        effective_at: at,
        resolicit_after: None,
        minor_status: MinorStatus::NotMinor,
        last_request_id: request_id.to_owned(),
        updated_at: at,
        synthetic: false,
    };
    stack
        .producer()
        .send(&topics.suppressions, &hash, &state)
        .await
        .expect("state published");
}

async fn produce_json(producer: &EventProducer, topic: &str, key: &str, value: &Value) {
    producer
        .send_bytes(
            topic,
            Some(key.as_bytes()),
            &serde_json::to_vec(value).unwrap(),
            rdkafka::message::OwnedHeaders::new(),
        )
        .await
        .expect("event produced");
}

fn event(id: usize, email: &str) -> Value {
    json!({"event_id": id, "event_name": "Purchase", "user": {"email": email}, "value": 10})
}

fn payloads(records: &[RawRecord]) -> Vec<Value> {
    records
        .iter()
        .map(|r| serde_json::from_slice(r.payload.as_deref().unwrap_or_default()).unwrap())
        .collect()
}

struct RunningGate {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

async fn start_gate(config: Config, mode: Mode) -> RunningGate {
    let stop = CancellationToken::new();
    let readiness = Readiness::default();
    let task = tokio::spawn(hush_gate::service::run(
        config,
        mode,
        readiness.clone(),
        stop.clone(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !readiness.unmet().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gate not ready: {:?}",
            readiness.unmet()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    RunningGate { stop, task }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_policy_is_observed_on_the_destination_topic() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("gate-policies");
    stack.create_topics(&topics).await;
    let streams: Vec<GateStream> = [
        ("drop", GatePolicy::Drop),
        ("strip", GatePolicy::Strip),
        ("ldu", GatePolicy::MetaLdu),
        ("annotate", GatePolicy::Annotate),
    ]
    .into_iter()
    .map(|(name, policy)| stream(&topics, name, policy))
    .collect();
    let names: Vec<String> = streams
        .iter()
        .flat_map(|s| [s.source.clone(), s.destination.clone()])
        .collect();
    stack.create_extra_topics(&topics, &names).await;
    let request_id = uuid::Uuid::new_v4().to_string();
    suppress(
        &stack,
        &topics,
        OPTED_OUT,
        &request_id,
        now_millis() - 1_000,
    )
    .await;
    let gate = start_gate(
        Config {
            common: common(&stack, &topics),
            gate: gate_section(streams.clone(), vec![]),
        },
        Mode::Enforce,
    )
    .await;
    let producer = stack.producer();
    for stream in &streams {
        produce_json(
            &producer,
            &stream.source,
            "a",
            &event(1, "Jane.Doe@Example.com"),
        )
        .await;
        produce_json(&producer, &stream.source, "b", &event(2, SOMEONE_ELSE)).await;
    }

    let dropped =
        payloads(&stack.read_committed(&streams[0].destination, 2, Duration::from_secs(20)));
    assert_eq!(
        dropped,
        vec![event(2, SOMEONE_ELSE)],
        "only the other person passes"
    );

    let stripped =
        payloads(&stack.read_committed(&streams[1].destination, 2, Duration::from_secs(20)));
    assert_eq!(stripped.len(), 2);
    let jane = stripped.iter().find(|e| e["event_id"] == 1).unwrap();
    assert_eq!(jane["user"], json!({}), "identifiers stripped");
    assert_eq!(jane["value"], 10, "the rest forwarded");
    assert!(stripped.contains(&event(2, SOMEONE_ELSE)));

    let ldu = payloads(&stack.read_committed(&streams[2].destination, 2, Duration::from_secs(20)));
    let jane = ldu.iter().find(|e| e["event_id"] == 1).unwrap();
    assert_eq!(jane["data_processing_options"], json!(["LDU"]));
    assert_eq!(jane["data_processing_options_country"], 1);
    assert_eq!(jane["data_processing_options_state"], 1000);
    assert!(jane["user"].get("email").is_none(), "raw email removed");
    let john = ldu.iter().find(|e| e["event_id"] == 2).unwrap();
    assert!(john.get("data_processing_options").is_none());

    let annotated = stack.read_committed(&streams[3].destination, 2, Duration::from_secs(20));
    assert_eq!(annotated.len(), 2);
    let jane = annotated
        .iter()
        .find(|r| r.key.as_deref() == Some(b"a".as_slice()))
        .unwrap();
    let gpp = jane.header("hush-gpp").expect("GPP header");
    assert!(gpp.starts_with("DBA"), "{gpp}");
    assert_eq!(jane.header("hush-us-privacy"), Some("1YYN"));
    let body: Value = serde_json::from_slice(jane.payload.as_deref().unwrap()).unwrap();
    assert_eq!(body["regs"]["gpp"], json!(gpp));
    let john = annotated
        .iter()
        .find(|r| r.key.as_deref() == Some(b"b".as_slice()))
        .unwrap();
    assert_eq!(
        john.header("hush-gpp"),
        None,
        "no signal for someone not opted out"
    );

    gate.stop.cancel();
    gate.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_record_is_dead_lettered_while_the_stream_keeps_flowing() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("gate-dlq");
    stack.create_topics(&topics).await;
    let drop = stream(&topics, "drop", GatePolicy::Drop);
    stack
        .create_extra_topics(&topics, &[drop.source.clone(), drop.destination.clone()])
        .await;
    let gate = start_gate(
        Config {
            common: common(&stack, &topics),
            gate: gate_section(vec![drop.clone()], vec![]),
        },
        Mode::Enforce,
    )
    .await;
    let producer = stack.producer();
    producer
        .send_bytes(
            &drop.source,
            Some(b"k"),
            b"{not json",
            rdkafka::message::OwnedHeaders::new(),
        )
        .await
        .unwrap();
    produce_json(
        &producer,
        &drop.source,
        "k",
        &json!({"user_data": {"em": "not-a-hash"}}),
    )
    .await;
    produce_json(&producer, &drop.source, "k", &event(3, SOMEONE_ELSE)).await;

    let forwarded = payloads(&stack.read_committed(&drop.destination, 1, Duration::from_secs(20)));
    assert_eq!(forwarded, vec![event(3, SOMEONE_ELSE)]);
    let dead = stack.read_committed(&topics.dlq, 2, Duration::from_secs(20));
    assert_eq!(dead.len(), 2, "both undecidable records dead-lettered");
    assert_eq!(dead[0].payload.as_deref(), Some(b"{not json".as_slice()));
    assert!(dead[0]
        .header(DLQ_REASON_HEADER)
        .unwrap()
        .contains("not a JSON object"));
    let reason = dead[1].header(DLQ_REASON_HEADER).unwrap();
    assert!(
        reason.contains("user_data.em") && reason.contains("SHA-256"),
        "{reason}"
    );
    gate.stop.cancel();
    gate.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_across_a_killed_gate() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("gate-eos");
    stack.create_topics(&topics).await;
    let drop = stream(&topics, "drop", GatePolicy::Drop);
    stack
        .create_extra_topics(&topics, &[drop.source.clone(), drop.destination.clone()])
        .await;
    suppress(
        &stack,
        &topics,
        OPTED_OUT,
        &uuid::Uuid::new_v4().to_string(),
        0,
    )
    .await;
    let mut config = Config {
        common: common(&stack, &topics),
        gate: gate_section(vec![drop.clone()], vec![]),
    };
    // A killed member leaves the group only when its session times out: keep that short here.
    config
        .common
        .kafka
        .properties
        .insert("session.timeout.ms".into(), "6000".into());
    let first = start_gate(config.clone(), Mode::Enforce).await;

    const EVENTS: usize = 400;
    let producer = {
        let (producer, source) = (stack.producer(), drop.source.clone());
        tokio::spawn(async move {
            for id in 0..EVENTS {
                let email = if id % 2 == 0 { OPTED_OUT } else { SOMEONE_ELSE };
                produce_json(
                    &producer,
                    &source,
                    &format!("k{}", id % 7),
                    &event(id, email),
                )
                .await;
            }
        })
    };
    // Kill the gate while the events flow: its open transaction is never committed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.task.abort();
    let _ = first.task.await;
    producer.await.unwrap();
    let second = start_gate(config, Mode::Enforce).await;

    // Read one more than expected, so a duplicate would be seen; the wait ends at the timeout.
    let forwarded =
        stack.read_committed(&drop.destination, EVENTS / 2 + 1, Duration::from_secs(15));
    let events = payloads(&forwarded);
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e["event_id"].as_u64().unwrap())
        .collect();
    let unique: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "no event forwarded twice");
    assert!(
        events.iter().all(|e| e["user"]["email"] == SOMEONE_ELSE),
        "no suppressed event forwarded"
    );
    let expected: HashSet<u64> = (0..EVENTS as u64).filter(|id| id % 2 == 1).collect();
    assert_eq!(
        unique, expected,
        "every other event forwarded once, none lost"
    );
    second.stop.cancel();
    second.task.await.unwrap().unwrap();
}

fn request(email: &str) -> PrivacyRequest {
    let hash = sha256_hex(email);
    PrivacyRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        subject_key: hash.clone(),
        kind: RequestKind::OptOutSaleShare,
        channel: Channel::WebForm,
        jurisdiction: "US-CA".into(),
        received_at: now_millis(),
        identifiers: vec![Identifier {
            kind: IdentifierType::Email,
            sha256: hash,
            encrypted_value: None,
        }],
        categories: vec![Category::All],
        verification: None,
        age_band: None,
        source_system: "hush-tests".into(),
        consumer_initiated: false,
        idempotency_key: None,
        resolution: Vec::new(),
    }
}

async fn wait_status(http: &reqwest::Client, auditor: &str, id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut last = Value::Null;
    while tokio::time::Instant::now() < deadline {
        if let Ok(response) = http.get(format!("{auditor}/v1/requests/{id}")).send().await {
            if response.status().is_success() {
                last = response.json().await.unwrap_or(Value::Null);
                if last["status"] == status {
                    return last;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("request {id} did not become {status}; last: {last:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leak_in_observed_egress_turns_its_request_leaking_and_a_clean_window_proven() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("gate-proof");
    stack.create_topics(&topics).await;
    let drop = stream(&topics, "drop", GatePolicy::Drop);
    let egress = WatchedEgress {
        topic: format!("{}.egress", topics.requests),
        format: RecordFormat::Json,
        categories: vec![Category::Advertising],
        sensitive: false,
        identifiers: drop.identifiers.clone(),
        grace_ms: 0,
        destination_path: Some("vendor".into()),
    };
    stack
        .create_extra_topics(
            &topics,
            &[
                drop.source.clone(),
                drop.destination.clone(),
                egress.topic.clone(),
            ],
        )
        .await;
    let section = gate_section(vec![drop.clone()], vec![egress.clone()]);

    // Two opt-outs: the leaking one and the clean one.
    let leaking = request(OPTED_OUT);
    let clean = request(SOMEONE_ELSE);
    let producer = stack.producer();
    for (request, email) in [(&leaking, OPTED_OUT), (&clean, SOMEONE_ELSE)] {
        producer
            .send(&topics.requests, &request.subject_key, request)
            .await
            .unwrap();
        suppress(
            &stack,
            &topics,
            email,
            &request.request_id,
            request.received_at,
        )
        .await;
    }

    let stop = CancellationToken::new();
    let auditor_addr = free_addr();
    let mut auditor = hush_auditor::service::Config {
        common: common(&stack, &topics),
        gate: section.clone(),
        auth: hush_tests::auth::test_auth().config(),
        ..Default::default()
    };
    auditor.auditor.listen = auditor_addr.clone();
    auditor.auditor.group_id = format!("it-auditor-{}", uuid::Uuid::new_v4().simple());
    auditor.auditor.observation_window_secs = 3;
    auditor.auditor.prove_interval_secs = 1;
    tokio::spawn(hush_auditor::service::run(
        auditor,
        Readiness::default(),
        stop.clone(),
    ));
    let gate = start_gate(
        Config {
            common: common(&stack, &topics),
            gate: section,
        },
        Mode::All,
    )
    .await;

    // An event about the opted-out person reaches the egress log, bypassing the gate.
    tokio::time::sleep(Duration::from_millis(50)).await;
    produce_json(
        &producer,
        &egress.topic,
        "x",
        &json!({"vendor": "meta", "user": {"email": OPTED_OUT}}),
    )
    .await;

    let http = hush_tests::auth::operator_client();
    let auditor_url = format!("http://{auditor_addr}");
    let record = wait_status(&http, &auditor_url, &leaking.request_id, "LEAKING").await;
    assert_eq!(record["leaks"], 1);
    let leak = &record["leak_evidence"][0];
    assert_eq!(leak["source_topic"], json!(egress.topic));
    assert_eq!(leak["source_offset"], 0);
    assert_eq!(leak["identifier_hash"], json!(sha256_hex(OPTED_OUT)));
    assert!(leak["ms_after_suppression"].as_i64().unwrap() > 0);

    let proven = wait_status(&http, &auditor_url, &clean.request_id, "PROVEN").await;
    let proof = &proven["proof"];
    let watched: Vec<&str> = proof["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["topic"].as_str().unwrap())
        .collect();
    let mut expected = vec![drop.destination.as_str(), egress.topic.as_str()];
    expected.sort();
    assert_eq!(watched, expected, "every watched stream is named");
    let egress_coverage = proof["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["topic"] == json!(egress.topic))
        .unwrap();
    assert_eq!(egress_coverage["records_examined"], 1);
    assert!(
        egress_coverage["covered_until"].as_i64().unwrap() >= proof["window_end"].as_i64().unwrap()
    );
    assert_eq!(
        proof["window_end"].as_i64().unwrap() - proof["window_start"].as_i64().unwrap(),
        3_000
    );
    // A leak outranks any proof: the leaking request stays LEAKING.
    wait_status(&http, &auditor_url, &leaking.request_id, "LEAKING").await;

    gate.stop.cancel();
    stop.cancel();
    gate.task.await.unwrap().unwrap();
}

/// A business's own Avro conversion event, registered under its topic's subject.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct AvroConversion {
    event_id: i64,
    email: Option<String>,
    value: f64,
}

impl hush_contracts::events::AvroEvent for AvroConversion {
    const FULL_NAME: &'static str = "com.example.marketing.Conversion";
    const SCHEMA: &'static str = r#"{"type":"record","name":"Conversion","namespace":"com.example.marketing",
      "fields":[{"name":"event_id","type":"long"},
                {"name":"email","type":["null","string"],"default":null},
                {"name":"value","type":"double"}]}"#;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_avro_stream_is_decided_through_the_registry() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("gate-avro");
    stack.create_topics(&topics).await;
    let mut avro = stream(&topics, "avro", GatePolicy::Drop);
    avro.format = RecordFormat::Avro;
    avro.identifiers = vec![IdentifierPath {
        path: "email".into(),
        kind: IdentifierType::Email,
        hashed: false,
    }];
    stack
        .create_extra_topics(&topics, &[avro.source.clone(), avro.destination.clone()])
        .await;
    suppress(
        &stack,
        &topics,
        OPTED_OUT,
        &uuid::Uuid::new_v4().to_string(),
        0,
    )
    .await;
    let gate = start_gate(
        Config {
            common: common(&stack, &topics),
            gate: gate_section(vec![avro.clone()], vec![]),
        },
        Mode::Enforce,
    )
    .await;
    let producer = stack.producer();
    for (id, email) in [(1, Some(OPTED_OUT)), (2, Some(SOMEONE_ELSE)), (3, None)] {
        let conversion = AvroConversion {
            event_id: id,
            email: email.map(str::to_owned),
            value: 9.5,
        };
        producer.send(&avro.source, "k", &conversion).await.unwrap();
    }
    let forwarded = stack.read_committed(&avro.destination, 3, Duration::from_secs(20));
    let codec = stack.codec();
    let mut ids = Vec::new();
    for record in &forwarded {
        let conversion: AvroConversion = codec
            .decode(record.payload.as_deref().unwrap())
            .await
            .expect("forwarded unchanged, still Avro");
        ids.push(conversion.event_id);
    }
    assert_eq!(ids, vec![2, 3], "the opted-out person's event was dropped");
    gate.stop.cancel();
    gate.task.await.unwrap().unwrap();
}
