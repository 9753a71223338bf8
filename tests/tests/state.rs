//! The suppression-state service on the real broker: requests fold into per-identifier state
//! on the compacted topic, and a restarted service restores that state from the topic before
//! folding anything new.

use std::time::Duration;

use hush_contracts::events::{
    now_millis, Category, Channel, Identifier, IdentifierType, PrivacyRequest, RequestKind,
};
use hush_contracts::identifiers::sha256_hex;
use hush_runtime::config::{CommonConfig, RegistryConfig};
use hush_runtime::ops::Readiness;
use hush_state::service::StateSection;
use hush_state::table::{HeldState, StateTable};
use hush_tests::Stack;
use tokio_util::sync::CancellationToken;

fn request(kind: RequestKind, email_hash: &str, consumer_initiated: bool) -> PrivacyRequest {
    PrivacyRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        subject_key: email_hash.to_owned(),
        kind,
        channel: Channel::Api,
        jurisdiction: "US-CA".into(),
        received_at: now_millis(),
        identifiers: vec![Identifier {
            kind: IdentifierType::Email,
            sha256: email_hash.to_owned(),
            encrypted_value: None,
        }],
        categories: vec![Category::All],
        verification: None,
        age_band: None,
        source_system: "hush-tests".into(),
        consumer_initiated,
        idempotency_key: None,
        resolution: Vec::new(),
    }
}

async fn wait_for(table: &StateTable, hash: &str, done: impl Fn(&HeldState) -> bool) -> HeldState {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(state) = table.get(hash).filter(|s| done(s)) {
            return state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "state of {hash} not reached"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_state_service_rebuilds_from_its_topic_and_a_deletion_stays_suppressed() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("state");
    stack.create_topics(&topics).await;
    let common = CommonConfig {
        kafka: stack.kafka.clone(),
        schema_registry: RegistryConfig {
            url: stack.registry_url.clone(),
            ..Default::default()
        },
        topics: topics.clone(),
    };
    let section = StateSection {
        listen: "127.0.0.1:0".into(),
        group_id: format!("it-state-{}", uuid::Uuid::new_v4().simple()),
    };
    let producer = stack.producer();
    let hash = sha256_hex("deleted.person@example.com");

    let first_run = CancellationToken::new();
    let table =
        hush_state::service::run(&common, &section, Readiness::default(), first_run.clone())
            .await
            .unwrap();
    producer
        .send(
            &topics.requests,
            &hash,
            &request(RequestKind::Delete, &hash, true),
        )
        .await
        .unwrap();
    let deleted = wait_for(&table, &hash, |s| s.deleted).await;
    assert!(deleted.sale_share_opted_out && deleted.resolicit_after.is_some());
    first_run.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A new instance (same group) knows the state before it folds anything new.
    let second_run = CancellationToken::new();
    let rebuilt =
        hush_state::service::run(&common, &section, Readiness::default(), second_run.clone())
            .await
            .unwrap();
    tokio::time::timeout(
        Duration::from_secs(60),
        rebuilt.restored().wait_for(|restored| *restored),
    )
    .await
    .expect("partitions restored in time")
    .unwrap();
    assert_eq!(
        rebuilt.get(&hash),
        Some(deleted),
        "restored from the compacted topic"
    );

    // A consumer-initiated opt-in does not lift a deletion's suppression.
    let opt_in = request(RequestKind::OptInSaleShare, &hash, true);
    producer
        .send(&topics.requests, &hash, &opt_in)
        .await
        .unwrap();
    let marker = sha256_hex("marker@example.com");
    producer
        .send(
            &topics.requests,
            &hash,
            &request(RequestKind::OptOutSaleShare, &marker, true),
        )
        .await
        .unwrap();
    // The marker was published after the opt-in on the same partition: once it is folded,
    // the opt-in has been too.
    wait_for(&rebuilt, &marker, |s| s.sale_share_opted_out).await;
    let after = rebuilt.get(&hash).unwrap();
    assert!(after.deleted && after.sale_share_opted_out, "{after:?}");
    second_run.cancel();

    let on_topic = stack.read_all(&topics.suppressions, 3, Duration::from_secs(10));
    assert_eq!(
        on_topic.len(),
        2,
        "one state for the deletion, one for the marker; none for the refused opt-in"
    );
    assert!(on_topic
        .iter()
        .all(|r| r.key.as_deref() == Some(hash.as_bytes())
            || r.key.as_deref() == Some(marker.as_bytes())));
}
