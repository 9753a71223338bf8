//! Two auditor replicas in one consumer group, on the real broker and registry: changes made
//! through both replicas' HTTP APIs at once, while confirmations for the same requests arrive,
//! are all kept (each becomes a command applied by the replica that owns the request's
//! partition), in order, with their actors; and once one replica stops, the other takes its
//! partitions over without losing what it wrote.

use std::time::Duration;

use hush_auth::config::ApiKeyConfig;
use hush_auth::keys::new_api_key;
use hush_auth::{AuthConfig, Scope};
use hush_contracts::events::{
    Category, Channel, Confirmation, ConfirmationAction, Identifier, IdentifierType,
    PrivacyRequest, RecipientRole, RequestKind, VerificationStatus,
};
use hush_contracts::recipients::RecipientConfig;
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::{CommonConfig, RegistryConfig};
use hush_runtime::kafka::EventProducer;
use hush_runtime::ops::Readiness;
use hush_tests::pipeline::free_addr;
use hush_tests::Stack;
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
