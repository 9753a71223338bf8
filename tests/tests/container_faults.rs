//! Faults that need the broker or the registry to be a container: each test starts its own
//! Kafka and Apicurio with testcontainers, then stops, restarts or pauses one of them mid-run.
//! The tests run one at a time (a lock), each bounded in time.
//!
//! - the broker stopped and restarted on the same port: intake answers 503 while it is down,
//!   nothing acknowledged is lost, every suppressor and the auditor resume, and every request
//!   ends with exactly one confirmation per recipient;
//! - the registry stopped: the services skip nothing (no dead letter, no confirmation for what
//!   they could not decode), report not-ready, and resume when it returns;
//! - the broker paused for longer than intake's producer timeout: intake refuses, and nothing
//!   it refused is on the topic; a retry with the same idempotency key is acknowledged once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use hush_contracts::events::PrivacyRequest;
use hush_tests::containers::{Action, Which};
use hush_tests::pipeline::{Options, Pipeline};
use hush_tests::Stack;
use serde_json::{json, Value};

/// One container set at a time on two cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The longest any of these tests may take, start to end.
const TEST_BUDGET: Duration = Duration::from_secs(600);

/// Runs one test on a runtime of its own, bounded by [`TEST_BUDGET`], and shuts the runtime
/// down with a bound too: a client blocked on a broker that is gone must not hang the binary.
fn bounded<F>(test: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    hush_tests::containers::run_bounded(TEST_BUDGET, test);
}

fn opt_out(n: &str, key: &str) -> Value {
    json!({
        "kind": "OPT_OUT_SALE_SHARE", "jurisdiction": "US-CA", "channel": "WEB_FORM",
        "identifiers": [{"type": "EMAIL", "value": format!("{n}@example.com")}],
        "categories": ["ALL"], "idempotency_key": key
    })
}

/// Every confirmation counted per (request, recipient).
async fn confirmation_counts(
    pipeline: &Pipeline,
    expected: usize,
) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for c in pipeline.confirmations(expected).await {
        *counts.entry((c.request_id, c.connector_id)).or_default() += 1;
    }
    counts
}

fn assert_one_confirmation_each(
    counts: &BTreeMap<(String, String), usize>,
    ids: &BTreeSet<String>,
    recipients: &[&str],
) {
    for id in ids {
        for recipient in recipients {
            assert_eq!(
                counts.get(&(id.clone(), (*recipient).to_owned())),
                Some(&1),
                "exactly one confirmation of {id} from {recipient}"
            );
        }
    }
    let unknown: Vec<_> = counts.keys().filter(|(id, _)| !ids.contains(id)).collect();
    assert!(
        unknown.is_empty(),
        "confirmations of requests never acknowledged: {unknown:?}"
    );
}

/// Request ids of every record on the requests topic.
async fn published_request_ids(stack: &Stack, topic: &str, at_least: usize) -> Vec<String> {
    let codec = stack.codec();
    let mut ids = Vec::new();
    for record in stack.read_all(topic, at_least, Duration::from_secs(10)) {
        let request: PrivacyRequest = codec
            .decode(record.payload.as_deref().unwrap_or_default())
            .await
            .expect("request decodes");
        ids.push(request.request_id);
    }
    ids
}

#[test]
fn broker_stopped_and_restarted_mid_run_loses_nothing_acknowledged() {
    bounded(broker_stopped_and_restarted_mid_run_loses_nothing_acknowledged_body());
}

async fn broker_stopped_and_restarted_mid_run_loses_nothing_acknowledged_body() {
    let started = Instant::now();
    let stack = Stack::own_containers("broker-restart");
    let containers = stack.containers.clone().expect("containers");
    let pipeline = Pipeline::start_on(
        stack,
        "broker-restart",
        Options {
            intake_publish_timeout_ms: Some(3_000),
            ..Options::default()
        },
    )
    .await;
    let recipients = ["partner-webhook", "hubspot"];

    let mut acknowledged = BTreeSet::new();
    for n in 0..10 {
        let (status, answer) = pipeline
            .submit(opt_out(&format!("before{n}"), &format!("before-{n}")))
            .await;
        assert_eq!(status, 202, "{answer}");
        acknowledged.insert(answer["request_id"].as_str().unwrap().to_owned());
    }

    // Down mid-run: the first requests are still being worked on.
    containers
        .act(Which::Kafka, Action::Stop)
        .await
        .expect("stop");
    let mut refused = 0;
    for n in 0..3 {
        let (status, answer) = pipeline
            .submit(opt_out(&format!("down{n}"), &format!("down-{n}")))
            .await;
        assert_eq!(
            status, 503,
            "intake acknowledges nothing while the broker is down: {answer}"
        );
        assert_eq!(answer["error"], "broker_unavailable");
        assert!(answer.get("request_id").is_none());
        refused += 1;
    }

    containers
        .act(Which::Kafka, Action::Start)
        .await
        .expect("start");
    // Back on the same port: intake acknowledges again once the broker answers.
    let deadline = Instant::now() + Duration::from_secs(90);
    for n in 0..10 {
        loop {
            let (status, answer) = pipeline
                .submit(opt_out(&format!("after{n}"), &format!("after-{n}")))
                .await;
            if status == 202 {
                acknowledged.insert(answer["request_id"].as_str().unwrap().to_owned());
                break;
            }
            assert_eq!(status, 503, "{answer}");
            assert!(
                Instant::now() < deadline,
                "intake never recovered: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    // The refused ones, retried with their idempotency keys, are acknowledged now.
    for n in 0..refused {
        let (status, answer) = pipeline
            .submit(opt_out(&format!("down{n}"), &format!("down-{n}")))
            .await;
        assert_eq!(status, 202, "{answer}");
        acknowledged.insert(answer["request_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(acknowledged.len(), 23);

    for id in &acknowledged {
        pipeline
            .wait_record(id, Duration::from_secs(240), |r| {
                r["missing_connectors"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
                    && r["connectors"].as_array().is_some_and(|c| !c.is_empty())
            })
            .await;
    }
    let counts = confirmation_counts(&pipeline, acknowledged.len() * recipients.len()).await;
    assert_one_confirmation_each(&counts, &acknowledged, &recipients);
    assert!(
        pipeline
            .stack
            .read_all(&pipeline.topics.dlq, 1, Duration::from_secs(2))
            .is_empty(),
        "nothing dead-lettered"
    );
    assert!(
        started.elapsed() < TEST_BUDGET,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn registry_stopped_services_wait_report_not_ready_and_resume() {
    bounded(registry_stopped_services_wait_report_not_ready_and_resume_body());
}

async fn registry_stopped_services_wait_report_not_ready_and_resume_body() {
    let started = Instant::now();
    let stack = Stack::own_containers("registry-stop");
    let containers = stack.containers.clone().expect("containers");
    let topics = stack.unique_topics("registry-stop");
    stack.create_topics(&topics).await;

    // Requests acknowledged while the registry was up, not yet seen by any service.
    let mut acknowledged = BTreeSet::new();
    {
        let intake = Pipeline::intake_only(&stack, &topics).await;
        for n in 0..8 {
            let (status, answer) = intake
                .submit(opt_out(&format!("reg{n}"), &format!("reg-{n}")))
                .await;
            assert_eq!(status, 202, "{answer}");
            acknowledged.insert(answer["request_id"].as_str().unwrap().to_owned());
        }
    }

    containers
        .act(Which::Registry, Action::Stop)
        .await
        .expect("stop registry");
    // Fresh services: none has the writer schema cached, so each needs the registry.
    let pipeline = Pipeline::start_on(
        stack.clone(),
        "registry-stop",
        Options {
            topics: Some(topics.clone()),
            wait_ready: false,
            ..Options::default()
        },
    )
    .await;

    // They wait: not ready, nothing confirmed, nothing dead-lettered, no audit record.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let unmet = pipeline.unmet();
        let stalled: Vec<_> = unmet
            .iter()
            .filter(|(_, conditions)| conditions.iter().any(|c| c.contains("flowing")))
            .map(|(service, _)| service.clone())
            .collect();
        if ["auditor", "partner-webhook", "hubspot"]
            .iter()
            .all(|s| stalled.iter().any(|t| t == s))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "services did not report not-ready while the registry was down: {unmet:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        stack
            .read_all(&topics.confirmations, 1, Duration::from_secs(2))
            .is_empty(),
        "nothing confirmed without the registry"
    );
    assert!(
        stack
            .read_all(&topics.dlq, 1, Duration::from_secs(1))
            .is_empty(),
        "nothing skipped to the dead-letter topic"
    );

    containers
        .act(Which::Registry, Action::Start)
        .await
        .expect("start registry");
    containers
        .registry_ready(Duration::from_secs(120))
        .await
        .expect("registry back");

    for id in &acknowledged {
        pipeline.wait_complete(id).await;
    }
    let counts = confirmation_counts(&pipeline, acknowledged.len() * 2).await;
    assert_one_confirmation_each(&counts, &acknowledged, &["partner-webhook", "hubspot"]);
    assert!(
        stack
            .read_all(&topics.dlq, 1, Duration::from_secs(2))
            .is_empty(),
        "nothing dead-lettered"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pipeline.unmet().is_empty() {
        assert!(
            Instant::now() < deadline,
            "ready again: {:?}",
            pipeline.unmet()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        started.elapsed() < TEST_BUDGET,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn broker_paused_past_the_producer_timeout_intake_refuses_and_writes_nothing_half() {
    bounded(broker_paused_past_the_producer_timeout_intake_refuses_and_writes_nothing_half_body());
}

async fn broker_paused_past_the_producer_timeout_intake_refuses_and_writes_nothing_half_body() {
    let started = Instant::now();
    let stack = Stack::own_containers("broker-pause");
    let containers = stack.containers.clone().expect("containers");
    let publish_timeout = Duration::from_millis(2_000);
    let pipeline = Pipeline::start_on(
        stack.clone(),
        "broker-pause",
        Options {
            intake_publish_timeout_ms: Some(publish_timeout.as_millis() as u64),
            ..Options::default()
        },
    )
    .await;

    let mut acknowledged = BTreeSet::new();
    for n in 0..3 {
        let (status, answer) = pipeline
            .submit(opt_out(&format!("pre{n}"), &format!("pre-{n}")))
            .await;
        assert_eq!(status, 202, "{answer}");
        acknowledged.insert(answer["request_id"].as_str().unwrap().to_owned());
    }
    for id in &acknowledged {
        pipeline.wait_complete(id).await;
    }

    containers
        .act(Which::Kafka, Action::Pause)
        .await
        .expect("pause");
    let paused_at = Instant::now();
    let mut refused_keys = Vec::new();
    for n in 0..4 {
        let key = format!("paused-{n}");
        let asked = Instant::now();
        let (status, answer) = pipeline.submit(opt_out(&format!("paused{n}"), &key)).await;
        assert_eq!(
            status, 503,
            "a frozen broker acknowledges nothing: {answer}"
        );
        assert_eq!(answer["error"], "broker_unavailable");
        assert!(
            asked.elapsed() < publish_timeout + Duration::from_secs(5),
            "intake answered within its timeout, took {:?}",
            asked.elapsed()
        );
        refused_keys.push(key);
    }
    // Paused longer than the producer timeout, then thawed.
    let pause = publish_timeout * 3;
    if let Some(rest) = pause.checked_sub(paused_at.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    containers
        .act(Which::Kafka, Action::Unpause)
        .await
        .expect("unpause");

    // What intake refused may still reach the topic: a record already sent to the frozen
    // broker is appended when it thaws, after intake answered 503 (Kafka cannot take back
    // an in-flight record; intake's producer is not transactional). What must hold is that
    // such a record is no orphan: it carries the id that a retry with the same idempotency
    // key (what the 503 tells the client to do) is acknowledged with, and it completes once.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let published: BTreeSet<String> =
        published_request_ids(&pipeline.stack, &pipeline.topics.requests, 100)
            .await
            .into_iter()
            .collect();
    assert!(
        acknowledged.is_subset(&published),
        "every acknowledged request is on the topic"
    );
    let early = published.difference(&acknowledged).count();
    hush_tests::containers::announce(&format!(
        "broker pause: {early} of {} refused requests reached the topic after the broker thawed \
         (in flight when it froze)",
        refused_keys.len()
    ));

    // A retry with the same key is acknowledged, once, and completes once.
    for (n, key) in refused_keys.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, answer) = pipeline.submit(opt_out(&format!("paused{n}"), key)).await;
            if status == 202 {
                acknowledged.insert(answer["request_id"].as_str().unwrap().to_owned());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "intake never recovered: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    // A suppressor whose batch was caught by the freeze is in backoff (up to 30 s) then.
    for id in &acknowledged {
        pipeline
            .wait_record(id, Duration::from_secs(240), |r| {
                r["missing_connectors"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
                    && r["connectors"].as_array().is_some_and(|c| !c.is_empty())
            })
            .await;
    }
    let counts = confirmation_counts(&pipeline, acknowledged.len() * 2).await;
    assert_one_confirmation_each(&counts, &acknowledged, &["partner-webhook", "hubspot"]);
    let records = published_request_ids(&pipeline.stack, &pipeline.topics.requests, 100).await;
    let ids: BTreeSet<String> = records.iter().cloned().collect();
    assert_eq!(
        ids, acknowledged,
        "no record on the topic of a request that was never acknowledged"
    );
    assert!(
        records.len() <= acknowledged.len() + early,
        "at most one extra record per refused-then-retried request: {records:?}"
    );
    assert!(
        started.elapsed() < TEST_BUDGET,
        "took {:?}",
        started.elapsed()
    );
}
