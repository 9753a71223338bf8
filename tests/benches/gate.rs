//! Gate benchmark on the real local stack: records per second through `hush-gate` (JSON
//! records, identifiers hashed and looked up, one Kafka transaction per batch with the consumed
//! offsets) beside a raw transactional consume→produce passthrough of the same records on the
//! same broker in the same process, and the suppression index's bytes per identifier at 1M and
//! 10M identifiers.
//!
//! `cargo bench -p hush-tests --bench gate -- [--records N] [--suppressed S]`
//! (with `KAFKA_BOOTSTRAP_SERVERS` and `SCHEMA_REGISTRY_URL` exported). Prints a table.

use std::time::{Duration, Instant};

use hush_contracts::events::{Category, IdentifierType, MinorStatus, SuppressionState};
use hush_contracts::gate::{GatePolicy, GateSection, GateStream, IdentifierPath, RecordFormat};
use hush_contracts::identifiers::sha256_hex;
use hush_gate::service::{Config, Mode};
use hush_runtime::config::{CommonConfig, RegistryConfig, TopicsConfig};
use hush_runtime::kafka::{client_config, IncomingMessage};
use hush_runtime::ops::Readiness;
use hush_suppression_index::{IdentifierKey, Suppression, SuppressionIndex};
use hush_tests::Stack;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

/// Records per transaction, for the gate and the baseline alike.
const BATCH: usize = 500;
/// Bound on one phase.
const PHASE: Duration = Duration::from_secs(600);

struct Args {
    records: usize,
    suppressed: usize,
}

fn args() -> Args {
    let mut parsed = Args {
        records: 100_000,
        suppressed: 100_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or_else(|| fail(&format!("{name} needs a positive number")))
        };
        match arg.as_str() {
            "--records" => parsed.records = number("--records"),
            "--suppressed" => parsed.suppressed = number("--suppressed"),
            "--bench" => {}
            other => fail(&format!(
                "unknown argument {other}; usage: -- [--records N] [--suppressed S]"
            )),
        }
    }
    parsed
}

fn fail(message: &str) -> ! {
    eprintln!("hush gate benchmark: {message}");
    std::process::exit(1)
}

fn email(n: usize) -> String {
    format!("person.{n}@example.com")
}

/// A conversion event; every tenth is about a suppressed person.
fn event(n: usize, suppressed: usize) -> Vec<u8> {
    let person = if n.is_multiple_of(10) {
        n % suppressed
    } else {
        suppressed + n
    };
    serde_json::to_vec(&serde_json::json!({
        "event_id": n,
        "event_name": "Purchase",
        "event_time": 1_796_000_000 + n,
        "user": {"email": email(person), "country": "US"},
        "custom_data": {"currency": "USD", "value": 42.5, "content_ids": ["sku-1", "sku-2"]},
    }))
    .expect("event serialises")
}

async fn fill_source(stack: &Stack, topic: &str, records: usize, suppressed: usize) {
    let producer: FutureProducer = client_config(&stack.kafka)
        .unwrap()
        .set("linger.ms", "20")
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let mut pending = Vec::new();
    for n in 0..records {
        let key = format!("k{}", n % 64);
        let payload = event(n, suppressed);
        let record = FutureRecord::to(topic).key(&key).payload(&payload);
        pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
        if pending.len() >= 10_000 {
            for delivery in pending.drain(..) {
                delivery.await.unwrap().unwrap();
            }
        }
    }
    for delivery in pending {
        delivery.await.unwrap().unwrap();
    }
}

async fn publish_states(stack: &Stack, topics: &TopicsConfig, suppressed: usize) {
    let producer = stack.producer();
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..suppressed {
        let (producer, topic) = (producer.clone(), topics.suppressions.clone());
        let hash = sha256_hex(&email(n));
        sends.spawn(async move {
            let state = SuppressionState {
                identifier_hash: hash.clone(),
                identifier_type: IdentifierType::Email,
                subject_key: hash.clone(),
                sale_share_opted_out: true,
                sensitive_limited: false,
                deleted: false,
                effective_at: 1,
                resolicit_after: None,
                minor_status: MinorStatus::NotMinor,
                last_request_id: uuid::Uuid::new_v4().to_string(),
                updated_at: 1,
                synthetic: false,
            };
            producer.send(&topic, &hash, &state).await.unwrap();
        });
        if sends.len() >= 256 {
            sends.join_next().await;
        }
    }
    while sends.join_next().await.is_some() {}
}

/// The end offsets of `topic`, per partition.
fn end_offsets(stack: &Stack, topic: &str) -> Vec<(i32, i64)> {
    let consumer: BaseConsumer = client_config(&stack.kafka).unwrap().create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .unwrap();
            (p.id(), high)
        })
        .collect()
}

/// Waits until `group` has committed the end of every partition of `topic`.
async fn wait_committed(stack: &Stack, group: &str, topic: &str, ends: &[(i32, i64)]) {
    let consumer: BaseConsumer = client_config(&stack.kafka)
        .unwrap()
        .set("group.id", group)
        .create()
        .unwrap();
    let mut wanted = TopicPartitionList::new();
    for (partition, _) in ends {
        wanted.add_partition(topic, *partition);
    }
    let deadline = Instant::now() + PHASE;
    loop {
        if let Ok(committed) = consumer.committed_offsets(wanted.clone(), Duration::from_secs(5)) {
            let done = ends.iter().all(|(partition, end)| {
                matches!(
                    committed.find_partition(topic, *partition).map(|e| e.offset()),
                    Some(Offset::Offset(o)) if o >= *end
                )
            });
            if done {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{group} did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A raw transactional passthrough: consume a batch, produce each record unchanged, commit the
/// offsets in the transaction. The same loop as the gate's, without decoding or deciding.
async fn passthrough(
    stack: Stack,
    source: String,
    destination: String,
    group: String,
    stop: CancellationToken,
) {
    let consumer: StreamConsumer = client_config(&stack.kafka)
        .unwrap()
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    consumer.subscribe(&[source.as_str()]).unwrap();
    let producer: FutureProducer = client_config(&stack.kafka)
        .unwrap()
        .set("transactional.id", format!("{group}.raw"))
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    while !stop.is_cancelled() {
        let mut batch = Vec::new();
        if let Ok(first) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            batch.push(IncomingMessage::from_borrowed(&first.unwrap()));
            let until = tokio::time::Instant::now() + Duration::from_millis(20);
            while batch.len() < BATCH {
                match tokio::time::timeout_at(until, consumer.recv()).await {
                    Ok(message) => batch.push(IncomingMessage::from_borrowed(&message.unwrap())),
                    Err(_) => break,
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        producer.begin_transaction().unwrap();
        let mut deliveries = Vec::new();
        let mut offsets = TopicPartitionList::new();
        for message in &batch {
            let mut record = FutureRecord::to(&destination)
                .payload(message.payload.as_deref().unwrap_or_default());
            if let Some(key) = message.key.as_deref() {
                record = record.key(key);
            }
            deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
            offsets
                .add_partition_offset(
                    &source,
                    message.partition,
                    Offset::Offset(message.offset + 1),
                )
                .unwrap();
        }
        for delivery in deliveries {
            delivery.await.unwrap().unwrap();
        }
        let metadata = consumer.group_metadata().unwrap();
        let committer = producer.clone();
        tokio::task::spawn_blocking(move || {
            committer
                .send_offsets_to_transaction(&offsets, &metadata, Duration::from_secs(30))
                .unwrap();
            committer
                .commit_transaction(Duration::from_secs(30))
                .unwrap();
        })
        .await
        .unwrap();
    }
}

fn bytes_per_identifier(n: usize) -> f64 {
    let mut index = SuppressionIndex::new();
    for i in 0..n {
        let digest = sha2_digest(i);
        index.upsert(
            IdentifierKey::from_digest(&digest),
            Suppression {
                deleted: false,
                sale_share_opted_out: true,
                sensitive_limited: false,
                effective_at_ms: i as i64,
                request_id: *uuid::Uuid::new_v4().as_bytes(),
            },
        );
    }
    index.heap_bytes() as f64 / index.len() as f64
}

fn sha2_digest(i: usize) -> [u8; 32] {
    let hex = sha256_hex(&i.to_string());
    let mut digest = [0u8; 32];
    for (n, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * n..2 * n + 2], 16).unwrap();
    }
    digest
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = args();
    let stack = Stack::from_env();
    let topics = stack.unique_topics("bench-gate");
    stack.create_topics(&topics).await;
    let source = format!("{}.source", topics.requests);
    let gated = format!("{}.gated", topics.requests);
    let raw = format!("{}.raw", topics.requests);
    stack
        .create_extra_topics(&topics, &[source.clone(), gated.clone(), raw.clone()])
        .await;
    eprintln!(
        "filling {source} with {} records and the suppression state with {} identifiers",
        args.records, args.suppressed
    );
    publish_states(&stack, &topics, args.suppressed).await;
    fill_source(&stack, &source, args.records, args.suppressed).await;
    let ends = end_offsets(&stack, &source);

    // Raw transactional passthrough.
    let stop = CancellationToken::new();
    let raw_group = format!("bench-raw-{}", uuid::Uuid::new_v4().simple());
    let started = Instant::now();
    let task = tokio::spawn(passthrough(
        stack.clone(),
        source.clone(),
        raw.clone(),
        raw_group.clone(),
        stop.clone(),
    ));
    wait_committed(&stack, &raw_group, &source, &ends).await;
    let raw_secs = started.elapsed().as_secs_f64();
    stop.cancel();
    task.await.unwrap();

    // The gate, once its index is rebuilt (readiness), on the same records.
    let stop = CancellationToken::new();
    let section = GateSection {
        listen: hush_tests::pipeline::free_addr(),
        group_id: format!("bench-gate-{}", uuid::Uuid::new_v4().simple()),
        instance_id: Some("bench".into()),
        max_batch: BATCH,
        streams: vec![GateStream {
            source: source.clone(),
            destination: gated.clone(),
            format: RecordFormat::Json,
            categories: vec![Category::Advertising],
            sensitive: false,
            identifiers: vec![IdentifierPath {
                path: "user.email".into(),
                kind: IdentifierType::Email,
                hashed: false,
            }],
            policy: GatePolicy::Drop,
            destination_path: None,
            annotate_field: None,
        }],
        ..GateSection::default()
    };
    let gate_group = format!("{}.{source}", section.group_id);
    let readiness = Readiness::default();
    let config = Config {
        common: CommonConfig {
            kafka: stack.kafka.clone(),
            schema_registry: RegistryConfig {
                url: stack.registry_url.clone(),
                ..Default::default()
            },
            topics: topics.clone(),
        },
        gate: section,
    };
    let rebuild_started = Instant::now();
    let task = tokio::spawn(hush_gate::service::run(
        config,
        Mode::Enforce,
        readiness.clone(),
        stop.clone(),
    ));
    while !readiness.unmet().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rebuild_secs = rebuild_started.elapsed().as_secs_f64();
    let started = Instant::now();
    wait_committed(&stack, &gate_group, &source, &ends).await;
    let gate_secs = started.elapsed().as_secs_f64();
    stop.cancel();
    task.await.unwrap().unwrap();
    let forwarded = stack
        .read_committed(&gated, args.records, Duration::from_secs(5))
        .len();

    let raw_rate = args.records as f64 / raw_secs;
    let gate_rate = args.records as f64 / gate_secs;
    println!();
    println!(
        "gate benchmark: {} JSON records ({} bytes each), {} suppressed identifiers, {} records per transaction",
        args.records,
        event(1, args.suppressed).len(),
        args.suppressed,
        BATCH
    );
    println!("| run | records/s | seconds |");
    println!("|---|---|---|");
    println!("| raw transactional consume→produce passthrough | {raw_rate:.0} | {raw_secs:.1} |");
    println!("| hush-gate (drop policy, transactions on) | {gate_rate:.0} | {gate_secs:.1} |");
    println!(
        "ratio gate / raw: {:.2} (target ≥ 0.8)",
        gate_rate / raw_rate
    );
    println!(
        "forwarded {forwarded} of {} (every tenth is about a suppressed person); index rebuilt from {} states in {rebuild_secs:.1} s",
        args.records, args.suppressed
    );
    for n in [1_000_000, 10_000_000] {
        println!(
            "suppression index: {:.1} bytes per identifier at {n} identifiers (target ≤ 48)",
            bytes_per_identifier(n)
        );
    }
}
