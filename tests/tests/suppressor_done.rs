//! The suppressor's done-set on the real broker: a request confirmed before a restart and
//! re-delivered after it is not sent again, and the rebuild reads only the confirmations of its
//! window, not the topic's whole history.

use std::collections::HashMap;
use std::time::Duration;

use hush_contracts::events::{
    now_millis, Confirmation, ConfirmationAction, RecipientRole, VerificationStatus,
};
use hush_runtime::kafka::client_config;
use hush_suppressor::done;
use hush_tests::pipeline::{Options, Pipeline};
use hush_tests::Stack;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;

const DAY_MS: i64 = 86_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confirmed_request_redelivered_after_a_restart_is_not_sent_again() {
    let mut pipeline = Pipeline::start("done-restart", Options::default()).await;
    let body = |key: &str| {
        json!({
            "kind": "OPT_OUT_SALE_SHARE", "jurisdiction": "US-CA", "channel": "WEB_FORM",
            "identifiers": [{"type": "EMAIL", "value": "again@example.com"}],
            "categories": ["ALL"], "idempotency_key": key
        })
    };
    let (status, accepted) = pipeline.submit(body("done-first")).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["request_id"].as_str().unwrap().to_owned();
    pipeline.wait_complete(&id).await;
    assert_eq!(pipeline.webhook.notices().len(), 1);

    pipeline.stop_suppressor("partner-webhook").await;
    pipeline.start_suppressor("partner-webhook").await;
    // At-least-once delivery hands the same request over again (same key, same partition).
    let original = pipeline
        .stack
        .read_all(&pipeline.topics.requests, 1, Duration::from_secs(10));
    assert_eq!(original.len(), 1);
    let producer: FutureProducer = client_config(&pipeline.stack.kafka)
        .unwrap()
        .create()
        .unwrap();
    let mut record = FutureRecord::to(&pipeline.topics.requests)
        .payload(original[0].payload.as_deref().unwrap())
        .headers(OwnedHeaders::new());
    if let Some(key) = original[0].key.as_deref() {
        record = record.key(key);
    }
    producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    // A later request about the same person lands behind the re-delivery on its partition:
    // once it is confirmed, the re-delivered copy has been handled.
    let (status, marker) = pipeline.submit(body("done-second")).await;
    assert_eq!(status, 202, "{marker}");
    let marker = marker["request_id"].as_str().unwrap().to_owned();
    assert_ne!(marker, id);
    pipeline.wait_complete(&marker).await;

    let notices: Vec<String> = pipeline
        .webhook
        .notices()
        .into_iter()
        .map(|n| n.request_id)
        .collect();
    assert_eq!(
        notices,
        vec![id.clone(), marker.clone()],
        "the re-delivered request was not sent to the recipient again"
    );
    let confirmations = pipeline.confirmations(5).await;
    let from_webhook = confirmations
        .iter()
        .filter(|c| c.connector_id == "partner-webhook" && c.request_id == id)
        .count();
    assert_eq!(from_webhook, 1, "and not confirmed again");
    pipeline.stop();
}

fn confirmation(request_id: &str, connector_id: &str, action: ConfirmationAction) -> Confirmation {
    Confirmation {
        request_id: request_id.to_owned(),
        subject_key: "subject".into(),
        connector_id: connector_id.to_owned(),
        role: RecipientRole::ThirdParty,
        action,
        exception_basis: None,
        attempts: 1,
        first_attempt_at: None,
        last_attempt_at: None,
        completed_at: now_millis(),
        verification: VerificationStatus::Unverifiable,
        evidence: HashMap::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rebuild_reads_only_the_confirmations_of_its_window() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("done-window");
    stack.create_topics(&topics).await;
    let codec = stack.codec();
    let producer: FutureProducer = client_config(&stack.kafka).unwrap().create().unwrap();
    let now = now_millis();
    let ids: Vec<String> = (0..5).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let [old_1, old_2, recent, failed, other] = [0, 1, 2, 3, 4].map(|i| ids[i].as_str());
    // (request, connector, action, record timestamp): the first two are older than the window.
    let written = [
        (
            old_1,
            "crm",
            ConfirmationAction::Suppressed,
            now - 10 * DAY_MS,
        ),
        (
            old_2,
            "crm",
            ConfirmationAction::Suppressed,
            now - 8 * DAY_MS,
        ),
        (recent, "crm", ConfirmationAction::Suppressed, now - DAY_MS),
        (failed, "crm", ConfirmationAction::FailedPermanent, now),
        (other, "ads", ConfirmationAction::Suppressed, now),
    ];
    for (request_id, connector_id, action, timestamp) in written {
        let mut event = confirmation(request_id, connector_id, action);
        event.completed_at = timestamp;
        let payload = codec.encode(&topics.confirmations, &event).await.unwrap();
        producer
            .send(
                FutureRecord::to(&topics.confirmations)
                    .key("subject")
                    .payload(&payload)
                    .timestamp(timestamp),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }

    let (set, rebuilt) = done::rebuild(
        &stack.kafka,
        &topics.confirmations,
        "hush-tests",
        &codec,
        "crm",
        done::WINDOW,
    )
    .await
    .unwrap();
    assert_eq!(
        rebuilt.records, 3,
        "the two records older than the window are not read"
    );
    assert!(set.contains(recent));
    assert!(!set.contains(old_1) && !set.contains(old_2));
    assert!(
        !set.contains(failed),
        "a permanent failure can be re-driven"
    );
    assert!(!set.contains(other), "another recipient's confirmation");
    assert_eq!(set.len(), 1);
}
