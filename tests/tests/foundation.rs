//! The foundation against the real broker and registry: every contract round-trips in the
//! Confluent wire format, the registry refuses incompatible schema changes, the consumer is
//! at-least-once, and undecodable bytes are dead-lettered without stopping the consumer.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hush_contracts::events::*;
use hush_contracts::identifiers::{hash_identifier, sha256_hex};
use hush_runtime::codec::{AvroCodec, CodecError};
use hush_runtime::kafka::{
    ConsumerSettings, EventConsumer, HandlerError, IncomingMessage, MessageHandler,
    DLQ_REASON_HEADER, DLQ_SOURCE_OFFSET_HEADER, DLQ_SOURCE_TOPIC_HEADER,
};
use hush_tests::Stack;
use rdkafka::message::OwnedHeaders;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

fn sample_request(n: u32) -> PrivacyRequest {
    let email = hash_identifier(IdentifierType::Email, &format!("person{n}@example.com")).unwrap();
    PrivacyRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        subject_key: email.clone(),
        kind: RequestKind::OptOutSaleShare,
        channel: Channel::WebForm,
        jurisdiction: "US-CA".into(),
        received_at: now_millis(),
        identifiers: vec![Identifier {
            kind: IdentifierType::Email,
            sha256: email,
            encrypted_value: None,
        }],
        categories: vec![Category::All],
        verification: None,
        age_band: None,
        source_system: "hush-tests".into(),
        consumer_initiated: true,
        idempotency_key: Some(format!("it-{n}")),
        resolution: Vec::new(),
    }
}

#[tokio::test]
async fn every_schema_round_trips_through_broker_and_registry() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("roundtrip");
    stack.create_topics(&topics).await;
    let producer = stack.producer();
    let codec = stack.codec();

    let request = sample_request(1);
    let state = SuppressionState {
        identifier_hash: request.subject_key.clone(),
        identifier_type: IdentifierType::Email,
        subject_key: request.subject_key.clone(),
        sale_share_opted_out: true,
        sensitive_limited: false,
        deleted: false,
        effective_at: request.received_at,
        resolicit_after: Some(request.received_at + 1),
        minor_status: MinorStatus::Unknown,
        last_request_id: request.request_id.clone(),
        updated_at: now_millis(),
        synthetic: false,
    };
    let confirmation = Confirmation {
        request_id: request.request_id.clone(),
        subject_key: request.subject_key.clone(),
        connector_id: "webhook".into(),
        role: RecipientRole::ThirdParty,
        action: ConfirmationAction::Notified,
        exception_basis: None,
        attempts: 1,
        first_attempt_at: Some(1),
        last_attempt_at: Some(2),
        completed_at: 3,
        verification: VerificationStatus::Pending,
        evidence: HashMap::from([("http_status".into(), "200".into())]),
    };
    let audit = AuditRecord {
        request_id: request.request_id.clone(),
        subject_key: request.subject_key.clone(),
        kind: request.kind,
        channel: request.channel,
        jurisdiction: request.jurisdiction.clone(),
        received_at: request.received_at,
        deadline: request.received_at + 10,
        extended: false,
        status: AuditStatus::Open,
        completed_at: None,
        denial_reason: None,
        required_connectors: vec!["webhook".into()],
        connectors: vec![],
        leaks: 0,
        leak_evidence: Vec::new(),
        proof: None,
        changes: Vec::new(),
        synthetic: false,
        resolution: Vec::new(),
        updated_at: 1,
    };
    let leak = LeakDetected {
        leak_id: uuid::Uuid::new_v4().to_string(),
        identifier_hash: request.subject_key.clone(),
        identifier_type: IdentifierType::Email,
        subject_key: request.subject_key.clone(),
        last_request_id: request.request_id.clone(),
        source_topic: "marketing.events".into(),
        source_partition: 0,
        source_offset: 7,
        destination: "meta".into(),
        suppression_effective_at: 1,
        event_time: 2,
        detected_at: 3,
        action_taken: GateAction::Blocked,
    };

    producer
        .send(&topics.requests, &request.subject_key, &request)
        .await
        .unwrap();
    producer
        .send(&topics.suppressions, &state.identifier_hash, &state)
        .await
        .unwrap();
    producer
        .send(
            &topics.confirmations,
            &confirmation.subject_key,
            &confirmation,
        )
        .await
        .unwrap();
    producer
        .send(&topics.audit, &audit.request_id, &audit)
        .await
        .unwrap();
    producer
        .send(&topics.leaks, &leak.identifier_hash, &leak)
        .await
        .unwrap();

    let wait = Duration::from_secs(20);
    let read = |topic: &str| {
        let records = stack.read_all(topic, 1, wait);
        assert_eq!(records.len(), 1, "one record on {topic}");
        let payload = records[0].payload.clone().unwrap();
        assert_eq!(payload[0], 0, "Confluent magic byte");
        payload
    };
    assert_eq!(
        codec
            .decode::<PrivacyRequest>(&read(&topics.requests))
            .await
            .unwrap(),
        request
    );
    assert_eq!(
        codec
            .decode::<SuppressionState>(&read(&topics.suppressions))
            .await
            .unwrap(),
        state
    );
    assert_eq!(
        codec
            .decode::<Confirmation>(&read(&topics.confirmations))
            .await
            .unwrap(),
        confirmation
    );
    assert_eq!(
        codec
            .decode::<AuditRecord>(&read(&topics.audit))
            .await
            .unwrap(),
        audit
    );
    assert_eq!(
        codec
            .decode::<LeakDetected>(&read(&topics.leaks))
            .await
            .unwrap(),
        leak
    );

    // The subject is registered under TopicNameStrategy.
    let subjects: Vec<String> = reqwest::get(format!("{}/subjects", stack.registry_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(subjects.contains(&format!("{}-value", topics.requests)));

    // Bytes of one type are not accepted as another.
    let err = codec
        .decode::<Confirmation>(&read(&topics.requests))
        .await
        .unwrap_err();
    assert!(matches!(err, CodecError::Malformed { .. }), "{err}");
}

/// A test-only record that reuses PrivacyRequest's name with an incompatible shape: a required
/// field the old data lacks.
#[derive(Debug, Serialize, Deserialize)]
struct IncompatibleRequest {
    mandatory_new: i32,
}

impl AvroEvent for IncompatibleRequest {
    const FULL_NAME: &'static str = "dev.hush.v1.PrivacyRequest";
    const SCHEMA: &'static str = r#"{"type": "record", "name": "PrivacyRequest", "namespace": "dev.hush.v1",
        "fields": [{"name": "mandatory_new", "type": "int"}]}"#;
}

fn schema_with_field(field: &str) -> &'static str {
    let base = PrivacyRequest::SCHEMA;
    let at = base.rfind(']').expect("fields array");
    Box::leak(
        format!("{},\n    {field}\n  {}", base[..at].trim_end(), &base[at..]).into_boxed_str(),
    )
}

#[tokio::test]
async fn registry_accepts_compatible_and_refuses_incompatible_schema_changes() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("evolution");
    stack.create_topics(&topics).await;
    let subject = format!("{}-value", topics.requests);
    let client = reqwest::Client::new();
    let set = client
        .put(format!("{}/config/{subject}", stack.registry_url))
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .body(r#"{"compatibility":"BACKWARD"}"#)
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success(), "set BACKWARD on {subject}");

    let producer = stack.producer();
    let codec = stack.codec();
    let original = sample_request(2);
    producer
        .send(&topics.requests, "k", &original)
        .await
        .unwrap();

    // Adding an optional field with a default is BACKWARD compatible; a required new field
    // is not.
    let compatible =
        schema_with_field(r#"{"name": "note", "type": ["null", "string"], "default": null}"#);
    let incompatible = schema_with_field(r#"{"name": "mandatory_new", "type": "string"}"#);
    let register = |schema: &'static str| {
        let client = client.clone();
        let url = format!("{}/subjects/{subject}/versions", stack.registry_url);
        async move {
            client
                .post(url)
                .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                .json(&serde_json::json!({ "schema": schema }))
                .send()
                .await
                .unwrap()
        }
    };
    let accepted = register(compatible).await;
    assert!(
        accepted.status().is_success(),
        "compatible change accepted: {}",
        accepted.status()
    );
    let refused = register(incompatible).await;
    assert_eq!(
        refused.status().as_u16(),
        409,
        "incompatible change refused"
    );

    // The producer path reports the refusal as such.
    let err = producer
        .send(
            &topics.requests,
            "k",
            &IncompatibleRequest { mandatory_new: 1 },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            hush_runtime::kafka::ProduceError::Codec(CodecError::SchemaRefused { .. })
        ),
        "{err}"
    );

    // Data written with the original schema still decodes into the current type.
    let records = stack.read_all(&topics.requests, 1, Duration::from_secs(20));
    let decoded: PrivacyRequest = codec
        .decode(records[0].payload.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(decoded, original);
}

/// Produces `count` requests to `topic` and returns their ids in order (one partition, so the
/// order is the offset order).
async fn produce_requests(stack: &Stack, topic: &str, count: u32) -> Vec<String> {
    let producer = stack.producer();
    let mut ids = Vec::new();
    for n in 0..count {
        let request = sample_request(n);
        producer
            .send(topic, "same-subject", &request)
            .await
            .unwrap();
        ids.push(request.request_id);
    }
    ids
}

#[tokio::test]
async fn consumer_killed_mid_batch_redelivers_everything_not_handled() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("atleastonce");
    stack.create_topics(&topics).await;
    let ids = produce_requests(&stack, &topics.requests, 20).await;
    let group = format!("it-group-{}", uuid::Uuid::new_v4());
    let settings = ConsumerSettings {
        group_id: group.clone(),
        topics: vec![topics.requests.clone()],
        client_id: "it".into(),
    };

    // First run: handles 10 messages, then hangs on the 11th as a crashed process would,
    // and is killed (the task aborted) without a clean shutdown.
    let handled_first = Arc::new(Mutex::new(Vec::<String>::new()));
    let codec = stack.codec();
    let consumer = EventConsumer::new(&stack.kafka, settings.clone(), stack.dlq(&topics)).unwrap();
    let task = tokio::spawn(consumer.run(
        CancellationToken::new(),
        RecordIds::new(&codec, &handled_first).hanging_after(10),
    ));
    wait_until(Duration::from_secs(30), || {
        handled_first.lock().unwrap().len() >= 10
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // let an auto-commit happen
    task.abort();
    let _ = task.await;
    let first: Vec<String> = handled_first.lock().unwrap().clone();
    assert_eq!(
        first,
        ids[..10].to_vec(),
        "first run handled the first half in order"
    );

    // Second run of the same group: everything not handled comes again; nothing is skipped.
    let handled_second = Arc::new(Mutex::new(Vec::<String>::new()));
    let consumer = EventConsumer::new(&stack.kafka, settings, stack.dlq(&topics)).unwrap();
    let shutdown = CancellationToken::new();
    let task =
        tokio::spawn(consumer.run(shutdown.clone(), RecordIds::new(&codec, &handled_second)));
    let last = ids.last().unwrap().clone();
    wait_until(Duration::from_secs(30), || {
        handled_second.lock().unwrap().contains(&last)
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    let second: Vec<String> = handled_second.lock().unwrap().clone();
    let all: BTreeSet<&String> = first.iter().chain(second.iter()).collect();
    assert_eq!(all.len(), 20, "every message handled at least once");
    assert_eq!(
        &second[second.len() - 10..],
        &ids[10..],
        "the unhandled half was re-delivered in order"
    );
}

#[tokio::test]
async fn garbage_goes_to_the_dead_letter_topic_and_later_events_still_flow() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("dlq");
    stack.create_topics(&topics).await;
    let producer = stack.producer();
    producer
        .send_bytes(
            &topics.requests,
            Some(b"k"),
            b"\xde\xad not avro",
            OwnedHeaders::new(),
        )
        .await
        .unwrap();
    let valid = sample_request(7);
    producer.send(&topics.requests, "k", &valid).await.unwrap();

    let handled = Arc::new(Mutex::new(Vec::<String>::new()));
    let consumer = EventConsumer::new(
        &stack.kafka,
        ConsumerSettings {
            group_id: format!("it-dlq-{}", uuid::Uuid::new_v4()),
            topics: vec![topics.requests.clone()],
            client_id: "it".into(),
        },
        stack.dlq(&topics),
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    let task =
        tokio::spawn(consumer.run(shutdown.clone(), RecordIds::new(&stack.codec(), &handled)));
    wait_until(Duration::from_secs(30), || {
        !handled.lock().unwrap().is_empty()
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(*handled.lock().unwrap(), vec![valid.request_id]);

    let dead = stack.read_all(&topics.dlq, 1, Duration::from_secs(20));
    assert_eq!(dead.len(), 1, "exactly the garbage was dead-lettered");
    let letter = &dead[0];
    assert_eq!(
        letter.payload.as_deref(),
        Some(&b"\xde\xad not avro"[..]),
        "bytes kept as they were"
    );
    assert_eq!(letter.key.as_deref(), Some(&b"k"[..]));
    assert!(
        letter
            .header(DLQ_REASON_HEADER)
            .unwrap()
            .contains("Confluent wire format"),
        "reason: {:?}",
        letter.header(DLQ_REASON_HEADER)
    );
    assert_eq!(
        letter.header(DLQ_SOURCE_TOPIC_HEADER),
        Some(topics.requests.as_str())
    );
    assert_eq!(letter.header(DLQ_SOURCE_OFFSET_HEADER), Some("0"));
    assert!(!letter
        .header(DLQ_REASON_HEADER)
        .unwrap()
        .contains(&sha256_hex("x")));
}

/// Decodes each request and records its id; with `hanging_after(n)` it stops making progress
/// once `n` were recorded, as a crashed process would.
struct RecordIds {
    codec: AvroCodec,
    seen: Arc<Mutex<Vec<String>>>,
    hang_after: Option<usize>,
}

impl RecordIds {
    fn new(codec: &AvroCodec, seen: &Arc<Mutex<Vec<String>>>) -> Self {
        Self {
            codec: codec.clone(),
            seen: seen.clone(),
            hang_after: None,
        }
    }

    fn hanging_after(mut self, n: usize) -> Self {
        self.hang_after = Some(n);
        self
    }
}

#[async_trait::async_trait]
impl MessageHandler for RecordIds {
    async fn handle(&self, message: &IncomingMessage) -> Result<(), HandlerError> {
        if self
            .hang_after
            .is_some_and(|n| self.seen.lock().unwrap().len() >= n)
        {
            std::future::pending::<()>().await;
        }
        let request: PrivacyRequest = self
            .codec
            .decode(message.payload.as_deref().unwrap_or_default())
            .await
            .map_err(|e| HandlerError::Permanent(e.to_string()))?;
        self.seen.lock().unwrap().push(request.request_id);
        Ok(())
    }
}

async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
