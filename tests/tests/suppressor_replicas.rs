//! A recipient's rate limit holds for the whole consumer group of its suppressor: consumers of
//! one group learn the share of the partitions they hold, and two HubSpot suppressor replicas
//! working through a backlog together stay within the HubSpot simulator's enforced limit
//! (100 requests per rolling 10 s), with no 429.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hush_connector_hubspot::sim::{HubSpotSimulator, RATE_LIMIT, RATE_WINDOW};
use hush_contracts::events::{Confirmation, ConfirmationAction, VerificationStatus};
use hush_contracts::recipients::RecipientConfig;
use hush_runtime::config::{CommonConfig, RegistryConfig};
use hush_runtime::kafka::{
    ConsumerSettings, EventConsumer, HandlerError, IncomingMessage, PartitionCounts,
};
use hush_runtime::ops::Readiness;
use hush_tests::pipeline::{set_test_secrets, Pipeline, HUBSPOT_TOKEN, HUBSPOT_TOKEN_VAR};
use hush_tests::Stack;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Polls `done` every 50 ms until it holds or `timeout` passes.
async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumers_of_one_group_each_learn_their_share_of_the_partitions() {
    let stack = Stack::from_env();
    let topics = stack.unique_topics("partition-counts");
    stack.create_topics(&topics).await;
    let settings = ConsumerSettings {
        group_id: format!("it-counts-{}", uuid::Uuid::new_v4()),
        topics: vec![topics.requests.clone()],
        client_id: "it".into(),
    };
    let ignore = |_: IncomingMessage| async { Ok::<(), HandlerError>(()) };
    let shutdown = CancellationToken::new();
    let start = |name: &str| {
        let consumer =
            EventConsumer::new(&stack.kafka, settings.clone(), stack.dlq(&topics)).expect(name);
        let counts = consumer.partition_counts();
        tokio::spawn(consumer.run(shutdown.clone(), ignore));
        counts
    };
    let first = start("first consumer");
    let read = |counts: &watch::Receiver<PartitionCounts>| *counts.borrow();
    wait_until(
        "the first consumer holds every partition",
        Duration::from_secs(60),
        || {
            read(&first)
                == PartitionCounts {
                    assigned: 3,
                    total: 3,
                }
        },
    )
    .await;

    let second = start("second consumer");
    wait_until(
        "the two consumers split the partitions",
        Duration::from_secs(60),
        || {
            let (a, b) = (read(&first), read(&second));
            a.total == 3
                && b.total == 3
                && a.assigned + b.assigned == 3
                && a.assigned.min(b.assigned) >= 1
        },
    )
    .await;
    shutdown.cancel();
}

/// The test HubSpot recipient: 8 calls per second for the whole group, two contacts per call.
/// HubSpot allows 100 requests per rolling 10 s; 8/s (80 per window plus a burst of 8) leaves
/// room for calls that a busy test machine sends late and then close together.
fn hubspot_recipient(base_url: &str) -> RecipientConfig {
    toml::from_str(&format!(
        r#"
        id = "hubspot"
        kind = "hubspot"
        role = "SERVICE_PROVIDER"
        base_url = "{base_url}"
        credentials = {{ token = "{HUBSPOT_TOKEN_VAR}" }}
        batch_size = 2
        rate_limit_per_second = 8
        max_attempts = 4
        timeout_ms = 5000
        "#
    ))
    .expect("recipient")
}

/// Records how many calls the simulator had received, every 50 ms, until stopped.
fn sample_calls(
    hubspot: &HubSpotSimulator,
    stop: CancellationToken,
) -> Arc<Mutex<Vec<(Instant, usize)>>> {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let (control, sink) = (hubspot.control().clone(), samples.clone());
    tokio::spawn(async move {
        while !stop.is_cancelled() {
            let calls = control.calls().len();
            sink.lock().unwrap().push((Instant::now(), calls));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    samples
}

/// Most calls the samples show within any `window`.
fn most_within(samples: &[(Instant, usize)], window: Duration) -> usize {
    samples
        .iter()
        .map(|(start, before)| {
            let after = samples
                .iter()
                .filter(|(at, _)| at.duration_since(*start) <= window)
                .map(|(_, calls)| *calls)
                .max()
                .unwrap_or(*before);
            after - before
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hubspot_replicas_stay_within_hubspots_limit_together() {
    set_test_secrets();
    let stack = Stack::from_env();
    let topics = stack.unique_topics("replicas");
    stack.create_topics(&topics).await;
    let hubspot = HubSpotSimulator::start(HUBSPOT_TOKEN)
        .await
        .expect("hubspot simulator");
    let mut config = hush_suppressor::config::Config {
        common: CommonConfig {
            kafka: stack.kafka.clone(),
            schema_registry: RegistryConfig {
                url: stack.registry_url.clone(),
                ..Default::default()
            },
            topics: topics.clone(),
        },
        recipients: vec![hubspot_recipient(&hubspot.base_url())],
        ..Default::default()
    };
    config.suppressor.group_prefix = format!("it-replicas-{}", uuid::Uuid::new_v4().simple());
    config.suppressor.linger_ms = 20;

    // Two replicas of the HubSpot suppressor: one consumer group, one simulator.
    let shutdown = CancellationToken::new();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let readiness = Readiness::default();
        let (config, ready, stop) = (config.clone(), readiness.clone(), shutdown.clone());
        tokio::spawn(async move {
            hush_suppressor::service::run(&config, "hubspot", ready, stop).await
        });
        wait_until("a replica is ready", Duration::from_secs(60), || {
            readiness.unmet().is_empty()
        })
        .await;
        replicas.push(readiness);
    }
    // The second replica's arrival moved partitions away from the first: let both settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    wait_until(
        "both replicas hold partitions again",
        Duration::from_secs(60),
        || replicas.iter().all(|r| r.unmet().is_empty()),
    )
    .await;

    // A backlog of 200 opt-outs: at least 200 calls (a write and a read-back per 2 contacts),
    // twice what HubSpot allows in 10 s. Two replicas each pacing at the full 8/s would send
    // 16 calls/s and be refused within about 6 s.
    let requests = 200;
    let intake = Pipeline::intake_only(&stack, &topics).await;
    let stop_sampling = CancellationToken::new();
    let samples = sample_calls(&hubspot, stop_sampling.clone());
    let started = Instant::now();
    let mut submitted = HashMap::new();
    for n in 0..requests {
        let email = format!("replica.{n}@example.com");
        hubspot.add_contact(&email);
        let (status, body) = intake
            .submit(json!({
                "kind": "OPT_OUT_SALE_SHARE", "jurisdiction": "US-CA", "channel": "WEB_FORM",
                "identifiers": [{"type": "EMAIL", "value": email}],
                "idempotency_key": format!("replicas-{n}")
            }))
            .await;
        assert_eq!(status, 202, "{body}");
        submitted.insert(body["request_id"].as_str().unwrap().to_owned(), n);
    }

    let records = stack.read_all(&topics.confirmations, requests, Duration::from_secs(180));
    let elapsed = started.elapsed();
    stop_sampling.cancel();
    let codec = stack.codec();
    let mut confirmed = HashMap::new();
    for record in &records {
        let confirmation: Confirmation = codec
            .decode(record.payload.as_deref().unwrap_or_default())
            .await
            .expect("confirmation decodes");
        assert_eq!(
            (confirmation.action, confirmation.verification),
            (ConfirmationAction::Flagged, VerificationStatus::Verified),
            "{confirmation:?}"
        );
        *confirmed.entry(confirmation.request_id).or_insert(0) += 1;
    }
    assert_eq!(
        confirmed.len(),
        requests,
        "every request confirmed within 180 s (got {} confirmations)",
        records.len()
    );
    assert!(confirmed.keys().all(|id| submitted.contains_key(id)));

    let calls = hubspot.control().calls();
    let refused = calls.iter().filter(|c| c.status == 429).count();
    let samples = samples.lock().unwrap().clone();
    let busiest = most_within(&samples, RATE_WINDOW);
    let rate = calls.len() as f64 / elapsed.as_secs_f64();
    eprintln!(
        "two replicas: {} calls in {elapsed:.1?} ({rate:.1}/s), busiest {RATE_WINDOW:?}: \
         {busiest} calls, {refused} answered 429",
        calls.len()
    );
    assert_eq!(
        refused, 0,
        "HubSpot refused calls: the replicas together exceeded its limit"
    );
    assert!(
        busiest <= RATE_LIMIT,
        "{busiest} calls within {RATE_WINDOW:?}, more than HubSpot's {RATE_LIMIT}"
    );
    assert!(
        calls.len() > RATE_LIMIT,
        "the backlog needed more calls ({}) than one window allows",
        calls.len()
    );
    // The replicas used their shares rather than idling: the busiest window carried most of
    // what the limit of 8 calls per second allows.
    assert!(busiest >= 55, "busiest window carried only {busiest} calls");
    shutdown.cancel();
}
