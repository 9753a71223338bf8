//! Pipeline benchmark on the real local stack: N opt-out requests submitted over HTTP to intake
//! with bounded concurrency, timed from intake's receipt to the moment the auditor's complete
//! record appears on the audit topic; beside it, a raw Kafka produce→consume baseline with the
//! same message size and producer settings, on the same broker, in the same process.
//!
//! `cargo bench -p hush-tests --bench pipeline -- [--requests N] [--concurrency C]`
//! (with `KAFKA_BOOTSTRAP_SERVERS` and `SCHEMA_REGISTRY_URL` exported). Prints a table.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use hush_contracts::crypto::FieldCipher;
use hush_contracts::events::{AuditRecord, EpochMillis, PrivacyRequest};
use hush_intake::service::IntakeSection;
use hush_intake::submission::{into_request, parse, Receipt};
use hush_runtime::kafka::client_config;
use hush_tests::pipeline::{set_test_secrets, Options, Pipeline};
use hush_tests::Stack;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Whole-run bound.
const OVERALL: Duration = Duration::from_secs(300);
/// Bound on one phase waiting for its last completion.
const PHASE: Duration = Duration::from_secs(240);
/// Requests (or raw messages) sent before measuring, to warm caches and connections.
const WARMUP: usize = 10;
/// Kafka hops of the pipeline: request → suppressor → confirmation → auditor → audit topic.
const HOPS: f64 = 4.0;

struct Args {
    requests: usize,
    concurrency: usize,
}

fn args() -> Args {
    let mut parsed = Args {
        requests: 500,
        concurrency: 16,
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
            "--requests" => parsed.requests = number("--requests"),
            "--concurrency" => parsed.concurrency = number("--concurrency"),
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            other => fail(&format!(
                "unknown argument {other}; usage: -- [--requests N] [--concurrency C]"
            )),
        }
    }
    parsed
}

fn fail(message: &str) -> ! {
    eprintln!("hush pipeline benchmark: {message}");
    std::process::exit(1)
}

/// Latency figures of one row, in milliseconds.
struct Row {
    throughput: Option<f64>,
    latencies_ms: Vec<f64>,
}

impl Row {
    fn new(throughput: Option<f64>, mut latencies_ms: Vec<f64>) -> Row {
        latencies_ms.sort_by(f64::total_cmp);
        Row {
            throughput,
            latencies_ms,
        }
    }

    /// Nearest-rank percentile.
    fn pct(&self, q: f64) -> f64 {
        let n = self.latencies_ms.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.latencies_ms[rank - 1]
    }

    fn print(&self, label: &str) {
        let throughput = self
            .throughput
            .map_or_else(|| "-".to_owned(), |t| format!("{t:.1}"));
        println!(
            "{label:<26}{throughput:>13}{:>9.1}{:>9.1}{:>9.1}{:>9.1}",
            self.pct(0.50),
            self.pct(0.90),
            self.pct(0.99),
            self.pct(1.0)
        );
    }
}

fn ms_between(from: Instant, to: Instant) -> f64 {
    to.duration_since(from).as_secs_f64() * 1000.0
}

/// A request built exactly as intake builds one, to learn the encoded size.
fn sample_request() -> PrivacyRequest {
    let body = opt_out("sample.person@example.com", "sample").to_string();
    let section = IntakeSection::default();
    let cipher =
        FieldCipher::from_base64_key(&base64::engine::general_purpose::STANDARD.encode([42u8; 32]))
            .expect("cipher");
    into_request(
        parse(body.as_bytes()).expect("sample parses"),
        Receipt {
            request_id: uuid::Uuid::new_v4().to_string(),
            received_at: Utc::now().timestamp_millis(),
            default_jurisdiction: &section.default_jurisdiction,
            keep_raw: &section.keep_raw,
            cipher: &cipher,
            source_system: &section.source_system,
            attestation: None,
        },
    )
    .expect("sample request")
}

fn opt_out(email: &str, key: &str) -> Value {
    json!({
        "kind": "OPT_OUT_SALE_SHARE", "jurisdiction": "US-CA", "channel": "WEB_FORM",
        "identifiers": [{"type": "EMAIL", "value": email}],
        "categories": ["ALL"], "idempotency_key": key
    })
}

/// Raw baseline: `n` messages of `payload` produced with Hush's producer settings and `c` in
/// flight, consumed by a StreamConsumer; latency from send to receipt of each message.
async fn raw_baseline(stack: &Stack, payload: &[u8], n: usize, c: usize) -> Row {
    let topics = stack.unique_topics("bench-raw");
    let topic = format!("bench.raw.{}", uuid::Uuid::new_v4().simple());
    stack
        .create_extra_topics(&topics, std::slice::from_ref(&topic))
        .await;
    let producer: FutureProducer = client_config(&stack.kafka)
        .expect("client config")
        .set("client.id", "hush-bench-raw")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set(
            "message.timeout.ms",
            stack.kafka.message_timeout_ms.to_string(),
        )
        .create()
        .expect("raw producer");
    let consumer: StreamConsumer = client_config(&stack.kafka)
        .expect("client config")
        .set("group.id", format!("bench-raw-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("raw consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..topics.partitions {
        assignment
            .add_partition_offset(&topic, partition, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let reader = tokio::spawn(async move {
        while let Ok(message) = consumer.recv().await {
            let at = Instant::now();
            let index = message
                .key()
                .and_then(|k| std::str::from_utf8(k).ok())
                .and_then(|k| usize::from_str_radix(k, 16).ok());
            if let Some(index) = index {
                if tx.send((index, at)).is_err() {
                    return;
                }
            }
        }
    });

    let payload: Arc<[u8]> = payload.into();
    let run = |range: std::ops::Range<usize>| {
        let semaphore = Arc::new(Semaphore::new(c));
        let mut sends = JoinSet::new();
        for index in range {
            let (producer, payload, topic) = (producer.clone(), payload.clone(), topic.clone());
            let semaphore = semaphore.clone();
            sends.spawn(async move {
                let _permit = semaphore.acquire_owned().await.expect("semaphore");
                let key = format!("{index:064x}");
                let start = Instant::now();
                let record = FutureRecord::to(&topic).key(&key).payload(&payload[..]);
                producer
                    .send(record, Duration::from_secs(10))
                    .await
                    .map_err(|(e, _)| e)
                    .unwrap_or_else(|e| fail(&format!("raw produce failed: {e}")));
                (index, start)
            });
        }
        sends
    };
    let mut received: HashMap<usize, Instant> = HashMap::new();
    // Warm-up, not measured.
    run(0..WARMUP).join_all().await;
    collect(&mut received, WARMUP, &mut rx).await;
    let starts = run(WARMUP..WARMUP + n).join_all().await;
    collect(&mut received, WARMUP + n, &mut rx).await;
    reader.abort();

    let first = starts.iter().map(|(_, s)| *s).min().expect("sent");
    let last = (WARMUP..WARMUP + n)
        .map(|i| received[&i])
        .max()
        .expect("received");
    let latencies = starts
        .iter()
        .map(|(index, start)| ms_between(*start, received[index]))
        .collect();
    Row::new(
        Some(n as f64 / last.duration_since(first).as_secs_f64()),
        latencies,
    )
}

/// Receives consumed messages into `received` until it holds `upto`.
async fn collect(
    received: &mut HashMap<usize, Instant>,
    upto: usize,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, Instant)>,
) {
    let deadline = tokio::time::Instant::now() + PHASE;
    while received.len() < upto {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((index, at))) => {
                received.insert(index, at);
            }
            _ => fail(&format!(
                "raw baseline: only {} of {upto} messages consumed within {PHASE:?}",
                received.len()
            )),
        }
    }
}

/// When a request's record first showed complete on the audit topic.
#[derive(Clone)]
struct Done {
    /// Wall clock at which the bench consumed the complete record.
    observed_at: EpochMillis,
    /// When each connector's outcome became final, by connector id.
    confirmed_at: HashMap<String, EpochMillis>,
}

/// Follows the pipeline's audit topic and notes each request's first complete record.
fn follow_audit(pipeline: &Pipeline) -> Arc<Mutex<HashMap<String, Done>>> {
    let done = Arc::new(Mutex::new(HashMap::new()));
    let consumer: StreamConsumer = client_config(&pipeline.stack.kafka)
        .expect("client config")
        .set("group.id", format!("bench-audit-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("audit consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..pipeline.topics.partitions {
        assignment
            .add_partition_offset(&pipeline.topics.audit, partition, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    let codec = pipeline.stack.codec();
    let sink = done.clone();
    tokio::spawn(async move {
        while let Ok(message) = consumer.recv().await {
            let observed_at = Utc::now().timestamp_millis();
            let Some(payload) = message.payload() else {
                continue;
            };
            let Ok(record) = codec.decode::<AuditRecord>(payload).await else {
                continue;
            };
            let complete = !record.required_connectors.is_empty()
                && record
                    .required_connectors
                    .iter()
                    .all(|id| record.connectors.iter().any(|c| &c.connector_id == id));
            if complete {
                let confirmed_at = record
                    .connectors
                    .iter()
                    .map(|c| (c.connector_id.clone(), c.completed_at))
                    .collect();
                sink.lock()
                    .expect("done map")
                    .entry(record.request_id)
                    .or_insert(Done {
                        observed_at,
                        confirmed_at,
                    });
            }
        }
    });
    done
}

/// One submitted request.
struct Submitted {
    request_id: String,
    received_at: EpochMillis,
    sent_at: EpochMillis,
    accepted_ms: f64,
}

async fn submit_all(
    pipeline: &Arc<Pipeline>,
    run: &str,
    range: std::ops::Range<usize>,
    c: usize,
) -> Vec<Submitted> {
    let semaphore = Arc::new(Semaphore::new(c));
    let mut posts = JoinSet::new();
    for index in range {
        let (pipeline, semaphore) = (pipeline.clone(), semaphore.clone());
        let body = opt_out(
            &format!("bench.{run}.{index}@example.com"),
            &format!("bench-{run}-{index}"),
        );
        posts.spawn(async move {
            let _permit = semaphore.acquire_owned().await.expect("semaphore");
            let sent_at = Utc::now().timestamp_millis();
            let start = Instant::now();
            let (status, accepted) =
                tokio::time::timeout(Duration::from_secs(30), pipeline.submit(body))
                    .await
                    .unwrap_or_else(|_| fail("intake did not answer within 30 s"));
            let accepted_ms = ms_between(start, Instant::now());
            if status != 202 {
                fail(&format!("intake answered {status}: {accepted}"));
            }
            let received_at = accepted["received_at"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .unwrap_or_else(|| fail(&format!("no received_at in {accepted}")))
                .timestamp_millis();
            Submitted {
                request_id: accepted["request_id"].as_str().expect("id").to_owned(),
                received_at,
                sent_at,
                accepted_ms,
            }
        });
    }
    posts.join_all().await
}

/// Waits until every id of `submitted` is complete on the audit topic.
async fn wait_done(
    done: &Mutex<HashMap<String, Done>>,
    submitted: &[Submitted],
) -> HashMap<String, Done> {
    let deadline = Instant::now() + PHASE;
    let wanted: HashSet<&str> = submitted.iter().map(|s| s.request_id.as_str()).collect();
    loop {
        let found: HashMap<String, Done> = {
            let done = done.lock().expect("done map");
            wanted
                .iter()
                .filter_map(|id| done.get(*id).map(|d| ((*id).to_owned(), d.clone())))
                .collect()
        };
        if found.len() == wanted.len() {
            return found;
        }
        if Instant::now() > deadline {
            fail(&format!(
                "only {} of {} requests reached a complete audit record within {PHASE:?}; \
                 is every service up? (RUST_LOG=info shows the services' logs)",
                found.len(),
                wanted.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Confirms through the auditor's API that every request is complete (not timed).
async fn check_api(pipeline: &Pipeline, ids: &[String], c: usize) -> usize {
    let http = hush_tests::auth::operator_client();
    let semaphore = Arc::new(Semaphore::new(c));
    let mut gets = JoinSet::new();
    for id in ids {
        let url = format!("{}/v1/requests/{id}", pipeline.auditor_url);
        let (http, semaphore) = (http.clone(), semaphore.clone());
        gets.spawn(async move {
            let _permit = semaphore.acquire_owned().await.expect("semaphore");
            let Ok(response) = http.get(url).send().await else {
                return false;
            };
            let record: Value = response.json().await.unwrap_or(Value::Null);
            record["missing_connectors"]
                .as_array()
                .is_some_and(Vec::is_empty)
                && record["connectors"]
                    .as_array()
                    .is_some_and(|c| !c.is_empty())
        });
    }
    gets.join_all().await.into_iter().filter(|ok| *ok).count()
}

async fn bench(args: Args) {
    let (n, c) = (args.requests, args.concurrency);
    set_test_secrets();
    let pipeline = Arc::new(
        Pipeline::start(
            "bench",
            Options {
                batch_size: 50,
                timeout_ms: 10_000,
                ..Options::default()
            },
        )
        .await,
    );
    let run = uuid::Uuid::new_v4().simple().to_string();
    // Half the subjects exist in HubSpot (flagged and read back), half answer NOT_FOUND.
    for index in (0..WARMUP + n).step_by(2) {
        pipeline
            .hubspot
            .add_contact(&format!("bench.{run}.{index}@example.com"));
    }

    let payload = pipeline
        .stack
        .codec()
        .encode(&pipeline.topics.requests, &sample_request())
        .await
        .expect("sample encodes");
    let raw = raw_baseline(&pipeline.stack, &payload, n, c).await;

    let done = follow_audit(&pipeline);
    let warmup = submit_all(&pipeline, &run, 0..WARMUP, c).await;
    wait_done(&done, &warmup).await;
    let submitted = submit_all(&pipeline, &run, WARMUP..WARMUP + n, c).await;
    let first_sent = submitted.iter().map(|s| s.sent_at).min().expect("sent");
    let finished = wait_done(&done, &submitted).await;

    let last_observed = finished
        .values()
        .map(|d| d.observed_at)
        .max()
        .expect("done");
    let throughput = n as f64 / ((last_observed - first_sent).max(1) as f64 / 1000.0);
    let latency = |at: &dyn Fn(&Done) -> EpochMillis| {
        submitted
            .iter()
            .map(|s| (at(&finished[&s.request_id]) - s.received_at) as f64)
            .collect::<Vec<_>>()
    };
    let pipeline_row = Row::new(Some(throughput), latency(&|d| d.observed_at));
    let connector_row = |id: &str| {
        Row::new(
            None,
            latency(&|d| d.confirmed_at.get(id).copied().unwrap_or(0)),
        )
    };
    let webhook_row = connector_row("partner-webhook");
    let hubspot_row = connector_row("hubspot");
    let intake_row = Row::new(None, submitted.iter().map(|s| s.accepted_ms).collect());
    let ids: Vec<String> = submitted.iter().map(|s| s.request_id.clone()).collect();
    let api_complete = check_api(&pipeline, &ids, c).await;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "hush pipeline benchmark: N={n} concurrency={c} ({cores} cores, single-node local Kafka \
         at {}, payload {} B, batch_size 50)",
        pipeline.stack.kafka.bootstrap_servers,
        payload.len()
    );
    println!(
        "{:<26}{:>13}{:>9}{:>9}{:>9}{:>9}",
        "", "throughput/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    raw.print("raw produce→consume");
    pipeline_row.print("pipeline receipt→audit");
    webhook_row.print("  receipt→webhook outcome");
    hubspot_row.print("  receipt→hubspot outcome");
    intake_row.print("intake 202");
    let throughput_ratio = raw.throughput.unwrap_or(0.0) / throughput;
    println!(
        "{:<26}{:>13}{:>9.1}{:>9.1}{:>9.1}{:>9.1}",
        "ratio pipeline/raw",
        format!("{throughput_ratio:.1}x"),
        pipeline_row.pct(0.50) / raw.pct(0.50),
        pipeline_row.pct(0.90) / raw.pct(0.90),
        pipeline_row.pct(0.99) / raw.pct(0.99),
        pipeline_row.pct(1.0) / raw.pct(1.0),
    );
    println!(
        "raw hop × {HOPS}: p50 {:.1} ms vs pipeline p50 {:.1} ms ({:.1} ms per hop beyond raw); \
         ratio throughput column = raw/pipeline; auditor API: {api_complete}/{n} complete",
        raw.pct(0.50) * HOPS,
        pipeline_row.pct(0.50),
        (pipeline_row.pct(0.50) - raw.pct(0.50) * HOPS) / HOPS,
    );
    let calls = |control: &hush_sim_kit::SimControl| {
        let calls = control.calls();
        let limited = calls.iter().filter(|c| c.status == 429).count();
        format!("{} calls ({limited} answered 429)", calls.len())
    };
    println!(
        "vendor simulators (warm-up included): webhook {}, hubspot {} \
         [HubSpot sim enforces {} requests / {:?}]",
        calls(pipeline.webhook.control()),
        calls(pipeline.hubspot.control()),
        hush_connector_hubspot::sim::RATE_LIMIT,
        hush_connector_hubspot::sim::RATE_WINDOW,
    );
    if api_complete != n {
        fail("the auditor API does not show every request complete");
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    if tokio::time::timeout(OVERALL, bench(args)).await.is_err() {
        fail(&format!("the benchmark did not finish within {OVERALL:?}"));
    }
    // Exit without waiting for the in-process services' background tasks.
    std::process::exit(0);
}
