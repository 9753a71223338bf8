//! Two auditor replicas in one consumer group, on the real broker and registry: changes made
//! through both replicas' HTTP APIs at once, while confirmations for the same requests arrive,
//! are all kept (each becomes a command applied by the replica that owns the request's
//! partition), in order, with their actors; and once one replica stops, the other takes its
//! partitions over without losing what it wrote. Leaks and closed observation windows read by
//! either replica are applied by the owner too: a leak racing a confirmation keeps both, and a
//! request is proven exactly once; a request delivered again resets nothing. Each replica holds
//! in full only the records of the requests it owns, and reads any other back from the audit
//! topic: both answer the same record for every request, and the same report and counts.

use std::time::Duration;

use hush_auth::config::ApiKeyConfig;
use hush_auth::keys::new_api_key;
use hush_auth::{AuthConfig, Scope};
use hush_contracts::events::{
    AuditRecord, Category, Channel, Confirmation, ConfirmationAction, GateAction, Identifier,
    IdentifierType, LeakDetected, PrivacyRequest, RecipientRole, RequestKind, VerificationStatus,
    WatchProgress,
};
use hush_contracts::gate::GateSection;
use hush_contracts::recipients::RecipientConfig;
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::{CommonConfig, RegistryConfig};
use hush_runtime::kafka::EventProducer;
use hush_runtime::ops::Readiness;
use hush_tests::pipeline::free_addr;
use hush_tests::Stack;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// Requests raced on; with 3 partitions both replicas own some of them.
const REQUESTS: usize = 8;

fn recipients() -> Vec<RecipientConfig> {
    ["crm", "ads", "partner"]
        .iter()
        .map(|id| {
            toml::from_str(&format!(
                "id = \"{id}\"\nkind = \"webhook\"\nrole = \"THIRD_PARTY\"\nbase_url = \"http://127.0.0.1:9\"\n"
            ))
            .expect("recipient")
        })
        .collect()
}

fn request(index: usize) -> PrivacyRequest {
    PrivacyRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        subject_key: format!("{:064x}", index + 1),
        kind: RequestKind::Delete,
        channel: Channel::Api,
        jurisdiction: "US-CA".into(),
        received_at: chrono::Utc::now().timestamp_millis(),
        identifiers: vec![Identifier {
            kind: IdentifierType::Email,
            sha256: format!("{:064x}", 1000 + index),
            encrypted_value: None,
        }],
        categories: vec![Category::All],
        verification: None,
        age_band: None,
        source_system: "auditor-replicas-test".into(),
        consumer_initiated: true,
        idempotency_key: None,
        resolution: Vec::new(),
    }
}

fn client(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse().expect("header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let answer = client.post(url).json(&body).send().await.expect("answer");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn wait_ready(readiness: &Readiness, which: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !readiness.unmet().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "auditor {which} not ready: {:?}",
            readiness.unmet()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `GET /v1/requests/{id}` on `base` until `done` holds.
async fn wait_record(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut last = Value::Null;
    while tokio::time::Instant::now() < deadline {
        if let Ok(answer) = client.get(format!("{base}/v1/requests/{id}")).send().await {
            if answer.status().is_success() {
                last = answer.json().await.unwrap_or(Value::Null);
                if done(&last) {
                    return last;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("record {id} on {base} never got there; last seen {last}");
}

/// Partitions of the test topics (`Stack::create_topics`).
const PARTITIONS: u32 = 3;

/// `GET {base}{path}`: the status, the record source header and the body.
async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, Option<String>, String) {
    let answer = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("answer");
    let status = answer.status().as_u16();
    let source = answer
        .headers()
        .get("x-hush-record-source")
        .map(|v| v.to_str().expect("header").to_owned());
    (status, source, answer.text().await.expect("body"))
}

/// Every request's record is held by exactly one replica, the same one for every request of a
/// confirmations partition, and read back from the audit topic by the other; both answer the
/// same record. The report and the dashboard count every request on both. Returns the ids of
/// the requests the second replica holds.
async fn assert_each_replica_holds_only_its_own(
    clients: [&reqwest::Client; 2],
    bases: &[String],
    requests: &[PrivacyRequest],
) -> std::collections::HashSet<String> {
    let mut holder_of_partition = std::collections::HashMap::new();
    let mut held_by_second = std::collections::HashSet::new();
    let mut read_back = Vec::new();
    for request in requests {
        let id = &request.request_id;
        let path = format!("/v1/requests/{id}");
        let mut answers = Vec::new();
        for (client, base) in clients.iter().zip(bases) {
            let started = std::time::Instant::now();
            let (status, source, body) = get(client, base, &path).await;
            if source.as_deref() == Some("audit-topic") {
                read_back.push(started.elapsed());
            }
            assert_eq!(status, 200, "{id} on {base}: {body}");
            let mut record: Value = serde_json::from_str(&body).expect("json");
            record["status"] = Value::Null; // computed at each answer
            answers.push((source.expect("record source header"), record));
        }
        assert_eq!(
            answers[0].1, answers[1].1,
            "both replicas answer the same record"
        );
        let held: Vec<usize> = (0..2).filter(|&i| answers[i].0 == "held").collect();
        assert_eq!(
            held.len(),
            1,
            "{id} held by exactly one replica: {answers:?}"
        );
        let other = 1 - held[0];
        assert_eq!(answers[other].0, "audit-topic", "{id}: {answers:?}");
        let partition =
            hush_auditor::store::owner::key_hash(request.subject_key.as_bytes()) % PARTITIONS;
        let holder = *holder_of_partition.entry(partition).or_insert(held[0]);
        if held[0] == 1 {
            held_by_second.insert(id.clone());
        }
        assert_eq!(
            holder, held[0],
            "{id}: every request of partition {partition} is held by one replica"
        );
    }
    // Receipt days are local to the business's time zone: a range around today's UTC date.
    read_back.sort_unstable();
    eprintln!(
        "GET of a record read back from the audit topic: median {:?}, max {:?} over {}",
        read_back[read_back.len() / 2],
        read_back[read_back.len() - 1],
        read_back.len()
    );
    let holders: std::collections::HashSet<usize> = holder_of_partition.values().copied().collect();
    assert_eq!(
        holders.len(),
        2,
        "both replicas hold some requests: {holder_of_partition:?}"
    );
    let today = chrono::Utc::now().date_naive();
    let (from, to) = (today - chrono::Days::new(1), today + chrono::Days::new(1));
    let report_path = format!("/v1/report?from={from}&to={to}");
    let mut reports = Vec::new();
    let mut totals = Vec::new();
    for (client, base) in clients.iter().zip(bases) {
        let (status, _, report) = get(client, base, &report_path).await;
        assert_eq!(status, 200, "{report}");
        let report: Value = serde_json::from_str(&report).expect("report");
        let delete = report["kinds"]
            .as_array()
            .expect("kinds")
            .iter()
            .find(|k| k["kind"] == "DELETE")
            .expect("a DELETE row")
            .clone();
        assert_eq!(delete["received"], requests.len(), "{base}: {delete}");
        reports.push(report["kinds"].clone());
        let (status, _, page) = get(client, base, "/").await;
        assert_eq!(status, 200, "dashboard on {base}");
        totals.push(page.contains(&format!("{} requests on record", requests.len())));
    }
    assert_eq!(reports[0], reports[1], "the same report on both replicas");
    assert_eq!(totals, [true, true], "both dashboards count every request");
    held_by_second
}

#[tokio::test]
async fn changes_raced_through_two_replicas_are_all_kept_in_order_with_their_actors() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("auditor-replicas");
    stack.create_topics(&topics).await;
    let common = CommonConfig {
        kafka: stack.kafka.clone(),
        schema_registry: RegistryConfig {
            url: stack.registry_url.clone(),
            ..Default::default()
        },
        topics: topics.clone(),
    };
    let (key_a, key_b) = (new_api_key(), new_api_key());
    let auth = AuthConfig {
        anonymous_scopes: Vec::new(),
        api_keys: vec![
            ApiKeyConfig {
                client: "lead-a".into(),
                sha256: key_a.sha256.clone(),
                scopes: vec![Scope::AuditorRead, Scope::AuditorAdmin],
            },
            ApiKeyConfig {
                client: "lead-b".into(),
                sha256: key_b.sha256.clone(),
                scopes: vec![Scope::AuditorRead, Scope::AuditorAdmin],
            },
        ],
        jwt: None,
        attestation: None,
    };
    let group = format!("it-auditor-replicas-{}", uuid::Uuid::new_v4().simple());
    let shutdown = CancellationToken::new();
    let mut bases = Vec::new();
    let mut replicas = Vec::new();
    for which in ["a", "b"] {
        let stop = shutdown.child_token();
        let mut config = hush_auditor::service::Config {
            common: common.clone(),
            recipients: recipients(),
            auth: auth.clone(),
            ..Default::default()
        };
        config.auditor.listen = free_addr();
        config.auditor.group_id = group.clone();
        config.auditor.command_wait_ms = 10_000;
        bases.push(format!("http://{}", config.auditor.listen));
        let readiness = Readiness::default();
        replicas.push((
            stop.clone(),
            tokio::spawn(hush_auditor::service::run(config, readiness.clone(), stop)),
        ));
        wait_ready(&readiness, which).await;
    }
    // Both replicas must hold partitions of the group before the race starts.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let codec = AvroCodec::from_config(&common.schema_registry).expect("codec");
    let producer =
        EventProducer::new(&common.kafka, codec, "it-auditor-replicas").expect("producer");
    let requests: Vec<PrivacyRequest> = (0..REQUESTS).map(request).collect();
    for request in &requests {
        producer
            .send(&topics.requests, &request.subject_key, request)
            .await
            .expect("request produced");
    }
    let (a, b) = (client(&key_a.key), client(&key_b.key));
    for request in &requests {
        for (client, base) in [(&a, &bases[0]), (&b, &bases[1])] {
            wait_record(client, base, &request.request_id, |_| true).await;
        }
    }

    // The race: per request, lead-a extends the deadline then resolves "ads" through replica a
    // while lead-b resolves "crm" through replica b, and "partner" confirms on the topic.
    let mut races = Vec::new();
    for request in requests.clone() {
        let (a, b, producer, topics) = (a.clone(), b.clone(), producer.clone(), topics.clone());
        let (base_a, base_b) = (bases[0].clone(), bases[1].clone());
        races.push(tokio::spawn(async move {
            let id = &request.request_id;
            let (a, b) = (&a, &b);
            let through_a = async {
                let extension = post(
                    a,
                    format!("{base_a}/v1/requests/{id}/extension"),
                    json!({"reason": "complex request"}),
                )
                .await;
                let resolution = post(
                    a,
                    format!("{base_a}/v1/requests/{id}/recipients/ads/resolution"),
                    json!({"resolved_by": "ads support", "note": "ticket 1"}),
                )
                .await;
                (extension, resolution)
            };
            let through_b = post(
                b,
                format!("{base_b}/v1/requests/{id}/recipients/crm/resolution"),
                json!({"resolved_by": "crm support", "note": "ticket 2"}),
            );
            let confirmation = Confirmation {
                request_id: id.clone(),
                subject_key: request.subject_key.clone(),
                connector_id: "partner".into(),
                role: RecipientRole::ThirdParty,
                action: ConfirmationAction::Deleted,
                exception_basis: None,
                attempts: 1,
                first_attempt_at: None,
                last_attempt_at: None,
                completed_at: chrono::Utc::now().timestamp_millis(),
                verification: VerificationStatus::Unverifiable,
                evidence: Default::default(),
            };
            let confirmed =
                producer.send(&topics.confirmations, &request.subject_key, &confirmation);
            let ((extension, resolution_a), resolution_b, confirmed) =
                tokio::join!(through_a, through_b, confirmed);
            confirmed.expect("confirmation produced");
            for (what, (status, body)) in [
                ("extension", extension),
                ("resolution through a", resolution_a),
                ("resolution through b", resolution_b),
            ] {
                assert!(
                    status == 200 || status == 202,
                    "{what} of {id}: {status} {body}"
                );
            }
        }));
    }
    for race in races {
        race.await.expect("race task");
    }

    for request in &requests {
        let id = &request.request_id;
        for (client, base) in [(&a, &bases[0]), (&b, &bases[1])] {
            let record = wait_record(client, base, id, |r| {
                r["changes"].as_array().map_or(0, Vec::len) >= 3
                    && r["connectors"].as_array().map_or(0, Vec::len) == 3
            })
            .await;
            let changes: Vec<(String, String, String)> = record["changes"]
                .as_array()
                .expect("changes")
                .iter()
                .map(|c| {
                    (
                        c["action"].as_str().unwrap_or_default().to_owned(),
                        c["actor"].as_str().unwrap_or_default().to_owned(),
                        c["note"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            assert_eq!(
                changes.len(),
                3,
                "exactly the three changes on {base}: {changes:?}"
            );
            let position = |action: &str, actor: &str, note: &str| {
                changes
                    .iter()
                    .position(|c| c == &(action.into(), actor.into(), note.into()))
                    .unwrap_or_else(|| panic!("{action} by {actor} lost on {base}: {changes:?}"))
            };
            let extension = position("EXTENSION", "lead-a", "complex request");
            let ads = position("RESOLUTION", "lead-a", "ads");
            position("RESOLUTION", "lead-b", "crm");
            assert!(
                extension < ads,
                "lead-a's changes out of order: {changes:?}"
            );
            assert_eq!(record["extended"], true, "{record}");
            let mut outcomes: Vec<&str> = record["connectors"]
                .as_array()
                .expect("connectors")
                .iter()
                .map(|c| c["connector_id"].as_str().unwrap_or_default())
                .collect();
            outcomes.sort_unstable();
            assert_eq!(outcomes, ["ads", "crm", "partner"], "{record}");
        }
    }

    let held_by_b = assert_each_replica_holds_only_its_own([&a, &b], &bases, &requests).await;
    assert!(!held_by_b.is_empty(), "b holds some requests");

    // Replica b stops; a takes its partitions over and builds on b's last versions.
    let (stop_b, b_task) = replicas.pop().expect("replica b");
    stop_b.cancel();
    b_task
        .await
        .expect("replica b task")
        .expect("replica b stopped cleanly");
    for request in &requests {
        let id = &request.request_id;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let (status, body) = post(
                &b,
                format!("{}/v1/requests/{id}/denial", bases[0]),
                json!({"reason": "identity could not be verified"}),
            )
            .await;
            if status == 200 {
                break;
            }
            // 202 while the group rebalances: the command waits for its new owner.
            assert_eq!(status, 202, "denial of {id}: {body}");
            assert!(
                tokio::time::Instant::now() < deadline,
                "denial of {id} never applied"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let record = wait_record(&a, &bases[0], id, |r| !r["denial_reason"].is_null()).await;
        // A request a owned all along may have been denied before a's consumer learnt of the
        // rebalance, which then released it (until its partition's next batch): it may be read
        // back. One taken over from b can only be denied once a holds its partition.
        if held_by_b.contains(id) {
            let (_, source, _) = get(&a, &bases[0], &format!("/v1/requests/{id}")).await;
            assert_eq!(
                source.as_deref(),
                Some("held"),
                "{id}: the partitions taken over are held once their records are read back"
            );
        }
        let actions: Vec<(&str, &str)> = record["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .map(|c| {
                (
                    c["action"].as_str().unwrap_or_default(),
                    c["actor"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            actions.len(),
            4,
            "b's and a's changes all kept: {actions:?}"
        );
        assert_eq!(actions[3], ("DENIAL", "lead-b"), "{actions:?}");
        assert_eq!(
            record["connectors"].as_array().map(Vec::len),
            Some(3),
            "{record}"
        );
    }
    shutdown.cancel();
}

/// Topic the leak watch of the leak test watches.
fn watched_gate(topic: &str) -> GateSection {
    toml::from_str(&format!(
        r#"
        [[watch]]
        topic = "{topic}"
        categories = ["ALL"]
        identifiers = [{{ path = "email", type = "EMAIL", hashed = true }}]
        "#
    ))
    .expect("gate section")
}

/// Every version of every record on the audit topic.
async fn audit_versions(stack: &Stack, topic: &str) -> Vec<AuditRecord> {
    let codec = stack.codec();
    let mut versions = Vec::new();
    for raw in stack.read_all(topic, usize::MAX, Duration::from_secs(5)) {
        if let Some(payload) = raw.payload {
            versions.push(codec.decode(&payload).await.expect("audit record decodes"));
        }
    }
    versions
}

/// Moves `group`'s committed offsets on `topic` back to the beginning (the group is empty).
fn rewind(stack: &Stack, group: &str, topic: &str) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka.bootstrap_servers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("rewinding consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut offsets = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        offsets
            .add_partition_offset(topic, partition.id(), Offset::Offset(0))
            .expect("offset");
    }
    consumer
        .commit(&offsets, CommitMode::Sync)
        .expect("offsets rewound");
}

/// Waits until `group` has committed every partition of `topic` up to its end.
async fn wait_consumed(stack: &Stack, group: &str, topic: &str) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka.bootstrap_servers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("offsets reader");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut asked = TopicPartitionList::new();
        for &partition in &partitions {
            asked.add_partition(topic, partition);
        }
        let committed = consumer
            .committed_offsets(asked, Duration::from_secs(10))
            .expect("committed offsets");
        let behind: Vec<i32> = partitions
            .iter()
            .copied()
            .filter(|&partition| {
                let (_, high) = consumer
                    .fetch_watermarks(topic, partition, Duration::from_secs(10))
                    .expect("watermarks");
                let at = committed
                    .find_partition(topic, partition)
                    .and_then(|p| match p.offset() {
                        Offset::Offset(at) => Some(at),
                        _ => None,
                    })
                    .unwrap_or(0);
                at < high
            })
            .collect();
        if behind.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{group} never consumed partitions {behind:?} of {topic}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn leaks_and_proofs_go_through_the_owner_and_a_redelivered_request_resets_nothing() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("auditor-leaks");
    stack.create_topics(&topics).await;
    let watched = format!("it.egress.{}", uuid::Uuid::new_v4().simple());
    let common = CommonConfig {
        kafka: stack.kafka.clone(),
        schema_registry: RegistryConfig {
            url: stack.registry_url.clone(),
            ..Default::default()
        },
        topics: topics.clone(),
    };
    let key = new_api_key();
    let auth = AuthConfig {
        anonymous_scopes: Vec::new(),
        api_keys: vec![ApiKeyConfig {
            client: "reader".into(),
            sha256: key.sha256.clone(),
            scopes: vec![Scope::AuditorRead],
        }],
        jwt: None,
        attestation: None,
    };
    let group = format!("it-auditor-leaks-{}", uuid::Uuid::new_v4().simple());
    let start = |which: &'static str| {
        let mut config = hush_auditor::service::Config {
            common: common.clone(),
            recipients: recipients(),
            auth: auth.clone(),
            gate: watched_gate(&watched),
            ..Default::default()
        };
        config.auditor.listen = free_addr();
        config.auditor.group_id = group.clone();
        config.auditor.observation_window_secs = 2;
        config.auditor.prove_interval_secs = 1;
        let base = format!("http://{}", config.auditor.listen);
        let readiness = Readiness::default();
        let stop = CancellationToken::new();
        let task = tokio::spawn(hush_auditor::service::run(
            config,
            readiness.clone(),
            stop.clone(),
        ));
        async move {
            wait_ready(&readiness, which).await;
            (base, stop, task)
        }
    };
    let replicas = vec![start("a").await, start("b").await];
    // Both replicas must hold partitions of the groups before the race starts.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let codec = AvroCodec::from_config(&common.schema_registry).expect("codec");
    let producer = EventProducer::new(&common.kafka, codec, "it-auditor-leaks").expect("producer");
    let requests: Vec<PrivacyRequest> = (0..REQUESTS).map(request).collect();
    for request in &requests {
        producer
            .send(&topics.requests, &request.subject_key, request)
            .await
            .expect("request produced");
    }
    let reader = client(&key.key);
    for request in &requests {
        for (base, _, _) in &replicas {
            wait_record(&reader, base, &request.request_id, |_| true).await;
        }
    }

    // The race: every recipient confirms each request while, for every other request, the
    // leak watch reports an event about the subject; the leaks group and the confirmations'
    // owner are spread over both replicas, so most leaks are read by the replica that does not
    // own the request.
    let leaky = |index: usize| index.is_multiple_of(2);
    let mut leaks = Vec::new();
    let mut races = Vec::new();
    for (index, request) in requests.iter().enumerate() {
        let now = chrono::Utc::now().timestamp_millis();
        let leak = leaky(index).then(|| LeakDetected {
            leak_id: uuid::Uuid::new_v4().to_string(),
            identifier_hash: request.identifiers[0].sha256.clone(),
            identifier_type: IdentifierType::Email,
            subject_key: String::new(),
            last_request_id: request.request_id.clone(),
            source_topic: watched.clone(),
            source_partition: 0,
            source_offset: index as i64,
            destination: "ads".into(),
            suppression_effective_at: now - 1_000,
            event_time: now,
            detected_at: now,
            action_taken: GateAction::Passed,
        });
        leaks.push(leak.clone());
        let (producer, topics, request) = (producer.clone(), topics.clone(), request.clone());
        races.push(tokio::spawn(async move {
            let confirmations = ["crm", "ads", "partner"].map(|connector| Confirmation {
                request_id: request.request_id.clone(),
                subject_key: request.subject_key.clone(),
                connector_id: connector.into(),
                role: RecipientRole::ThirdParty,
                action: ConfirmationAction::Deleted,
                exception_basis: None,
                attempts: 1,
                first_attempt_at: None,
                last_attempt_at: None,
                completed_at: now,
                verification: VerificationStatus::Unverifiable,
                evidence: Default::default(),
            });
            let send = |c| producer.send(&topics.confirmations, &request.subject_key, c);
            let leaked = async {
                match &leak {
                    Some(leak) => producer
                        .send(&topics.leaks, &leak.identifier_hash, leak)
                        .await
                        .map(|_| ()),
                    None => Ok(()),
                }
            };
            let (crm, ads, partner, leaked) = tokio::join!(
                send(&confirmations[0]),
                send(&confirmations[1]),
                send(&confirmations[2]),
                leaked
            );
            for sent in [crm, ads, partner] {
                sent.expect("confirmation produced");
            }
            leaked.expect("leak produced");
        }));
    }
    for race in races {
        race.await.expect("race task");
    }
    // The leak watch has examined the watched topic up to a minute from now.
    let now = chrono::Utc::now().timestamp_millis();
    producer
        .send(
            &topics.watch,
            &watched,
            &WatchProgress {
                topic: watched.clone(),
                records_examined: 100,
                covered_until: now + 60_000,
                offsets: [("0".to_owned(), 100)].into(),
                leaks_found: (REQUESTS / 2) as i64,
                updated_at: now,
            },
        )
        .await
        .expect("watch progress produced");

    for (index, request) in requests.iter().enumerate() {
        let id = &request.request_id;
        for (base, _, _) in &replicas {
            let record = if leaky(index) {
                wait_record(&reader, base, id, |r| {
                    r["leaks"] == 1 && r["connectors"].as_array().map_or(0, Vec::len) == 3
                })
                .await
            } else {
                wait_record(&reader, base, id, |r| r["status"] == "PROVEN").await
            };
            assert_eq!(
                record["connectors"].as_array().map(Vec::len),
                Some(3),
                "every confirmation kept on {base}: {record}"
            );
            if let Some(leak) = &leaks[index] {
                assert_eq!(record["status"], "LEAKING", "{record}");
                assert_eq!(
                    record["leak_evidence"][0]["leak_id"].as_str(),
                    Some(leak.leak_id.as_str()),
                    "the leak kept on {base}: {record}"
                );
                assert!(
                    record["proof"].is_null(),
                    "a leaking request is never proven"
                );
            } else {
                assert_eq!(record["leaks"], 0, "{record}");
                assert!(record["proof"]["window_end"].is_i64(), "{record}");
            }
        }
    }
    // Both replicas saw every clean window closed; the owner proved each once.
    let versions = audit_versions(&stack, &topics.audit).await;
    for (index, request) in requests.iter().enumerate() {
        let proven = versions
            .iter()
            .filter(|v| v.request_id == request.request_id && v.proof.is_some())
            .count();
        assert_eq!(
            proven,
            usize::from(!leaky(index)),
            "versions with a proof of request {index}"
        );
    }

    // Both replicas stop; the requests group's offsets go back to the beginning, as after a
    // crash before they were committed, and a new replica reads every request again.
    for (_, stop, task) in replicas {
        stop.cancel();
        task.await
            .expect("replica task")
            .expect("replica stopped cleanly");
    }
    let written = versions.len();
    let requests_group = format!("{group}-requests");
    rewind(&stack, &requests_group, &topics.requests);
    let (base, stop, task) = start("c").await;
    wait_consumed(&stack, &requests_group, &topics.requests).await;
    for (index, request) in requests.iter().enumerate() {
        let record = wait_record(&reader, &base, &request.request_id, |_| true).await;
        assert_eq!(
            record["status"],
            if leaky(index) { "LEAKING" } else { "PROVEN" },
            "a re-delivered request leaves its record as it was: {record}"
        );
        assert_eq!(record["connectors"].as_array().map(Vec::len), Some(3));
    }
    assert_eq!(
        audit_versions(&stack, &topics.audit).await.len(),
        written,
        "no record was opened again"
    );
    stop.cancel();
    task.await
        .expect("replica c task")
        .expect("replica c stopped");
}
