//! The state service partitioned by identifier hash, on the real broker: two replicas split the
//! partitions and each holds only the identifiers of its own; a request whose identifiers fall
//! on different partitions is folded into each; when one replica stops, the other restores its
//! partitions from the changelog and folds new requests for them; a request split or delivered
//! again is folded once.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use hush_contracts::events::{
    now_millis, Category, Channel, Identifier, IdentifierType, PrivacyRequest, RequestKind,
};
use hush_contracts::identifiers::sha256_hex;
use hush_runtime::config::{CommonConfig, RegistryConfig, TopicsConfig};
use hush_runtime::ops::Readiness;
use hush_runtime::topics::{design_topics, ensure_topics};
use hush_state::repartition::IdentifierRequest;
use hush_state::service::StateSection;
use hush_state::table::{HeldState, StateTable};
use hush_tests::Stack;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

fn request(kind: RequestKind, hashes: &[String]) -> PrivacyRequest {
    PrivacyRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        subject_key: hashes[0].clone(),
        kind,
        channel: Channel::Api,
        jurisdiction: "US-CA".into(),
        received_at: now_millis(),
        identifiers: hashes
            .iter()
            .map(|hash| Identifier {
                kind: IdentifierType::Email,
                sha256: hash.clone(),
                encrypted_value: None,
            })
            .collect(),
        categories: vec![Category::All],
        verification: None,
        age_band: None,
        source_system: "hush-tests".into(),
        consumer_initiated: true,
        idempotency_key: None,
        resolution: Vec::new(),
    }
}

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

fn section() -> StateSection {
    StateSection {
        listen: "127.0.0.1:0".into(),
        group_id: format!("it-state-{}", uuid::Uuid::new_v4().simple()),
    }
}

/// Waits until `check` holds, failing with `what` after [`WAIT`].
async fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reached: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The state of `hash`, held by whichever replica holds it.
fn held(replicas: &[&Arc<StateTable>], hash: &str) -> Option<HeldState> {
    replicas.iter().find_map(|table| table.get(hash))
}

/// Partition of each key on the changelog, and how many records it has.
fn changelog(stack: &Stack, topic: &str, expected: usize) -> (HashMap<String, i32>, usize) {
    let records = stack.read_all(topic, expected, Duration::from_secs(15));
    let partitions = records
        .iter()
        .map(|r| {
            (
                String::from_utf8(r.key.clone().expect("keyed")).expect("utf-8 key"),
                r.partition,
            )
        })
        .collect();
    (partitions, records.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_hold_only_their_partitions_and_one_takes_over_when_the_other_stops() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("state-partitions");
    stack.create_topics(&topics).await;
    let common = common(&stack, &topics);
    let section = section();

    let stop_a = CancellationToken::new();
    let a = hush_state::service::run(&common, &section, Readiness::default(), stop_a.clone())
        .await
        .unwrap();
    until("replica A owns every partition", || {
        a.partitions() == vec![0, 1, 2]
    })
    .await;
    let stop_b = CancellationToken::new();
    let b = hush_state::service::run(&common, &section, Readiness::default(), stop_b.clone())
        .await
        .unwrap();
    until("the replicas split the partitions", || {
        let (held_a, held_b): (BTreeSet<i32>, BTreeSet<i32>) = (
            a.partitions().into_iter().collect(),
            b.partitions().into_iter().collect(),
        );
        !held_a.is_empty()
            && !held_b.is_empty()
            && held_a.is_disjoint(&held_b)
            && held_a.union(&held_b).count() == 3
            && *a.restored().borrow()
            && *b.restored().borrow()
    })
    .await;

    // One request whose twelve identifiers fall on different partitions.
    let hashes: Vec<String> = (0..12)
        .map(|i| sha256_hex(&format!("split-{i}@example.com")))
        .collect();
    let producer = stack.producer();
    let opt_out = request(RequestKind::OptOutSaleShare, &hashes);
    producer
        .send(&topics.requests, &opt_out.subject_key, &opt_out)
        .await
        .unwrap();
    until("every identifier opted out", || {
        hashes
            .iter()
            .all(|h| held(&[&a, &b], h).is_some_and(|s| s.sale_share_opted_out))
    })
    .await;

    let (partition_of, records) = changelog(&stack, &topics.suppressions, 12);
    assert_eq!(records, 12, "one state per identifier");
    let used: BTreeSet<i32> = partition_of.values().copied().collect();
    assert!(
        used.len() >= 2,
        "the identifiers fall on several partitions: {used:?}"
    );
    for hash in &hashes {
        let partition = partition_of[hash];
        let (owner, other) = if a.partitions().contains(&partition) {
            (&a, &b)
        } else {
            (&b, &a)
        };
        assert_eq!(
            owner.partition_of(hash),
            Some(partition),
            "held under its changelog partition"
        );
        assert_eq!(other.get(hash), None, "not held by the other replica");
    }
    for table in [&a, &b] {
        for partition in table.partitions() {
            let on_topic = partition_of.values().filter(|p| **p == partition).count();
            assert_eq!(table.len_of(partition), on_topic, "partition {partition}");
        }
    }
    assert_eq!(a.len() + b.len(), 12);

    // B stops: A restores B's partitions from the changelog and folds new requests for them.
    let b_partitions = b.partitions();
    stop_b.cancel();
    until("A owns every partition again and restored them", || {
        a.partitions() == vec![0, 1, 2] && *a.restored().borrow()
    })
    .await;
    for hash in hashes
        .iter()
        .filter(|h| b_partitions.contains(&partition_of[*h]))
    {
        assert!(
            a.get(hash).is_some_and(|s| s.sale_share_opted_out),
            "B's identifier restored by A"
        );
    }
    let mut delete = request(RequestKind::Delete, &hashes);
    delete.received_at = opt_out.received_at + 1;
    producer
        .send(&topics.requests, &delete.subject_key, &delete)
        .await
        .unwrap();
    until("every identifier deleted, B's too", || {
        hashes.iter().all(|h| {
            a.get(h)
                .is_some_and(|s| s.deleted && s.sale_share_opted_out)
        })
    })
    .await;
    assert_eq!(a.len(), 12);
    stop_a.cancel();
    let (_, records) = changelog(&stack, &topics.suppressions, 24);
    assert_eq!(
        records, 24,
        "one more state per identifier for the deletion"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_delivered_or_split_again_is_folded_once() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("state-redelivery");
    stack.create_topics(&topics).await;
    let common = common(&stack, &topics);
    let stop = CancellationToken::new();
    let table = hush_state::service::run(&common, &section(), Readiness::default(), stop.clone())
        .await
        .unwrap();
    let producer = stack.producer();

    // The same request published twice (same request id): one state.
    let twice = sha256_hex("twice@example.com");
    let opt_out = request(RequestKind::OptOutSaleShare, std::slice::from_ref(&twice));
    for _ in 0..2 {
        producer
            .send(&topics.requests, &opt_out.subject_key, &opt_out)
            .await
            .unwrap();
    }

    // Records split again after a restart: A, B, then A again at A's position. Without the
    // position check, A's opt-out would be folded again after B's opt-in.
    let again = sha256_hex("again@example.com");
    let record = |kind: RequestKind, offset: i64, received_at: i64| IdentifierRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        subject_key: again.clone(),
        kind,
        received_at,
        identifier_type: IdentifierType::Email,
        identifier_hash: again.clone(),
        age_band: None,
        source_system: "hush-tests".into(),
        consumer_initiated: true,
        source_partition: 0,
        source_offset: offset,
        source_index: 0,
    };
    let now = now_millis();
    let a = record(RequestKind::OptOutSaleShare, 1_000, now);
    let b = record(RequestKind::OptInSaleShare, 1_001, now + 1);
    let marker = record(RequestKind::LimitSensitive, 1_002, now + 2);
    for event in [&a, &b, &a, &marker] {
        producer
            .send(&topics.state_repartition, &again, event)
            .await
            .unwrap();
    }
    until("the marker is folded", || {
        table.get(&again).is_some_and(|s| s.sensitive_limited)
            && table.get(&twice).is_some_and(|s| s.sale_share_opted_out)
    })
    .await;
    let state = table.get(&again).unwrap();
    assert!(
        !state.sale_share_opted_out,
        "the opt-in is not undone by A folded again: {state:?}"
    );
    stop.cancel();

    let records = stack.read_all(&topics.suppressions, 5, Duration::from_secs(10));
    let count = |hash: &str| {
        records
            .iter()
            .filter(|r| r.key.as_deref() == Some(hash.as_bytes()))
            .count()
    };
    assert_eq!(count(&twice), 1, "the request published twice folded once");
    assert_eq!(count(&again), 3, "A, B and the marker; not A twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repartition_topic_not_co_partitioned_with_the_changelog_is_refused() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("state-copartition");
    let specs: Vec<_> = design_topics(&topics)
        .into_iter()
        .filter(|spec| spec.name != topics.state_repartition)
        .collect();
    ensure_topics(&stack.kafka, &topics, &specs).await.unwrap();
    let four = TopicsConfig {
        partitions: 4,
        ..topics.clone()
    };
    stack
        .create_extra_topics(&four, std::slice::from_ref(&topics.state_repartition))
        .await;
    let error = hush_state::service::run(
        &common(&stack, &topics),
        &section(),
        Readiness::default(),
        CancellationToken::new(),
    )
    .await
    .expect_err("refused")
    .to_string();
    assert!(
        error.contains("has 4 partitions") && error.contains("has 3"),
        "{error}"
    );
    assert!(error.contains("co-partitioned"), "{error}");
}
