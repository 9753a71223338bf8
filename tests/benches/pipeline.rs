//! Pipeline benchmark on the real local stack, in two modes.
//!
//! Closed loop (the default): N opt-out requests submitted over HTTP to intake with C in
//! flight, timed from intake's receipt to the moment the auditor's complete record appears on
//! the audit topic; beside it, a raw Kafka produce→consume baseline with the same message size
//! and producer settings, on the same broker, in the same process.
//! `cargo bench -p hush-tests --bench pipeline -- [--requests N] [--concurrency C]`
//!
//! Open loop: requests arrive at fixed intended times, R a second for S seconds, each sent on its
//! own task whatever became of the earlier ones, and every latency counts from the intended send
//! time or intake's receipt, never from a send the system itself delayed (no coordinated
//! omission). The recipients are zero-latency simulators of a webhook, Salesforce and Meta, plus
//! HubSpot's (which enforces HubSpot's 100 requests per 10 s) with `--with-hubspot`. Beside it:
//! raw Kafka produce→consume at the same rate and at its own maximum, and CPU seconds per 1,000
//! requests from `/proc` (every service runs in this one process: the split is by thread).
//! `cargo bench -p hush-tests --bench pipeline -- --rate R --duration S [--with-hubspot]`
//!
//! Both need `KAFKA_BOOTSTRAP_SERVERS` and `SCHEMA_REGISTRY_URL` exported. Each prints a table.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use hush_connector_hubspot::sim::HubSpotSimulator;
use hush_connector_meta::sim::MetaSim;
use hush_connector_salesforce::sim::SalesforceSim;
use hush_connector_webhook::sim::WebhookSimulator;
use hush_contracts::crypto::FieldCipher;
use hush_contracts::events::{AuditRecord, EpochMillis, IdentifierType, PrivacyRequest};
use hush_contracts::identifiers::hash_identifier;
use hush_contracts::recipients::RecipientConfig;
use hush_intake::service::IntakeSection;
use hush_intake::submission::{into_request, parse, Receipt};
use hush_runtime::kafka::client_config;
use hush_sim_kit::{RunningSim, SimControl};
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

/// Closed-loop settings.
struct ClosedArgs {
    requests: usize,
    concurrency: usize,
}

/// Open-loop settings.
struct OpenArgs {
    /// Requests per second.
    rate: u32,
    /// Seconds of sending.
    duration: u64,
    /// Include the HubSpot recipient (its simulator enforces HubSpot's rate limit).
    hubspot: bool,
}

enum Mode {
    Closed(ClosedArgs),
    Open(OpenArgs),
}

const USAGE: &str =
    "usage: -- [--requests N] [--concurrency C] | --rate R --duration S [--with-hubspot]";

fn args() -> Mode {
    let mut closed = ClosedArgs {
        requests: 500,
        concurrency: 16,
    };
    let (mut rate, mut duration, mut hubspot, mut closed_given) = (None, None, false, false);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or_else(|| fail(&format!("{name} needs a positive number")))
        };
        match arg.as_str() {
            "--requests" => {
                closed.requests = number("--requests");
                closed_given = true;
            }
            "--concurrency" => {
                closed.concurrency = number("--concurrency");
                closed_given = true;
            }
            "--rate" => {
                let r = number("--rate");
                rate = Some(u32::try_from(r).unwrap_or_else(|_| fail("--rate is too large")));
            }
            "--duration" => duration = Some(number("--duration") as u64),
            "--with-hubspot" => hubspot = true,
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            other => fail(&format!("unknown argument {other}; {USAGE}")),
        }
    }
    match (rate, duration) {
        (None, None) if !hubspot => Mode::Closed(closed),
        (Some(rate), Some(duration)) if !closed_given => Mode::Open(OpenArgs {
            rate,
            duration,
            hubspot,
        }),
        (Some(_), Some(_)) => fail(&format!(
            "--requests and --concurrency are for the closed loop, --rate and --duration for \
             the open loop; {USAGE}"
        )),
        _ => fail(&format!(
            "the open loop needs both --rate and --duration; {USAGE}"
        )),
    }
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

    /// Prints the row under the open loop's wider label column.
    fn print_wide(&self, label: &str) {
        let throughput = self
            .throughput
            .map_or_else(|| "-".to_owned(), |t| format!("{t:.1}"));
        println!(
            "{label:<40}{throughput:>12}{:>9.1}{:>9.1}{:>9.1}{:>9.1}",
            self.pct(0.50),
            self.pct(0.90),
            self.pct(0.99),
            self.pct(1.0)
        );
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

/// A raw Kafka path on its own topic: a producer with Hush's producer settings and a consumer
/// reporting when each message (keyed by its index) arrived.
struct RawPath {
    producer: FutureProducer,
    topic: String,
    arrivals: tokio::sync::mpsc::UnboundedReceiver<(usize, Instant)>,
    received: HashMap<usize, Instant>,
    reader: tokio::task::JoinHandle<()>,
}

impl RawPath {
    async fn new(stack: &Stack) -> RawPath {
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
        let (tx, arrivals) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
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
        RawPath {
            producer,
            topic,
            arrivals,
            received: HashMap::new(),
            reader,
        }
    }

    /// Produces message `index` and waits for the broker's acknowledgement.
    fn send(&self, index: usize, payload: Arc<[u8]>) -> impl std::future::Future<Output = ()> {
        let (producer, topic) = (self.producer.clone(), self.topic.clone());
        async move {
            let key = format!("{index:064x}");
            let record = FutureRecord::to(&topic).key(&key).payload(&payload[..]);
            producer
                .send(record, Duration::from_secs(10))
                .await
                .map_err(|(e, _)| e)
                .unwrap_or_else(|e| fail(&format!("raw produce failed: {e}")));
        }
    }

    /// Waits until every message below `upto` arrived.
    async fn collect(&mut self, upto: usize) {
        collect(&mut self.received, upto, &mut self.arrivals).await;
    }
}

impl Drop for RawPath {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Raw baseline: `n` messages of `payload` produced with Hush's producer settings and `c` in
/// flight, consumed by a StreamConsumer; latency from send to receipt of each message.
async fn raw_baseline(stack: &Stack, payload: &[u8], n: usize, c: usize) -> Row {
    let mut raw = RawPath::new(stack).await;
    let payload: Arc<[u8]> = payload.into();
    let run = |raw: &RawPath, range: std::ops::Range<usize>| {
        let semaphore = Arc::new(Semaphore::new(c));
        let mut sends = JoinSet::new();
        for index in range {
            let (send, semaphore) = (raw.send(index, payload.clone()), semaphore.clone());
            sends.spawn(async move {
                let _permit = semaphore.acquire_owned().await.expect("semaphore");
                let start = Instant::now();
                send.await;
                (index, start)
            });
        }
        sends
    };
    // Warm-up, not measured.
    run(&raw, 0..WARMUP).join_all().await;
    raw.collect(WARMUP).await;
    let starts = run(&raw, WARMUP..WARMUP + n).join_all().await;
    raw.collect(WARMUP + n).await;

    let first = starts.iter().map(|(_, s)| *s).min().expect("sent");
    let last = (WARMUP..WARMUP + n)
        .map(|i| raw.received[&i])
        .max()
        .expect("received");
    let latencies = starts
        .iter()
        .map(|(index, start)| ms_between(*start, raw.received[index]))
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
    /// When the auditor wrote it (its `updated_at`).
    written_at: EpochMillis,
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
                        written_at: record.updated_at,
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

/// Confirms through the auditor's API that every request is complete (not timed). The auditor
/// limits each caller's rate: a 429 is retried after its `Retry-After`.
async fn check_api(pipeline: &Pipeline, ids: &[String], c: usize) -> usize {
    let http = hush_tests::auth::operator_client();
    let semaphore = Arc::new(Semaphore::new(c));
    let mut gets = JoinSet::new();
    for id in ids {
        let url = format!("{}/v1/requests/{id}", pipeline.auditor_url);
        let (http, semaphore) = (http.clone(), semaphore.clone());
        gets.spawn(async move {
            let _permit = semaphore.acquire_owned().await.expect("semaphore");
            let response = loop {
                let Ok(response) = http.get(&url).send().await else {
                    return false;
                };
                if response.status() != reqwest::StatusCode::TOO_MANY_REQUESTS {
                    break response;
                }
                let wait = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait)).await;
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

async fn bench_closed(args: ClosedArgs) {
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

// ---------------------------------------------------------------------------------------------
// Open loop
// ---------------------------------------------------------------------------------------------

/// Calls per second the zero-latency recipients are paced at: far above what the run needs, so
/// the suppressors' pacing is not what is measured.
const UNPACED: u32 = 100_000;
/// HubSpot's limit as `deploy/k8s/hush.toml` sets it (HubSpot allows 100 requests per 10 s).
const HUBSPOT_RATE: u32 = 9;
/// Longest a submission may take before it counts as unanswered.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after the last send the run waits for requests to complete.
const DRAIN: Duration = Duration::from_secs(180);
/// Requests whose auditor record is also read through the API at the end (not timed).
const API_SAMPLE: usize = 200;
// Fake credentials of the open-loop simulators: (environment variable, value).
const BENCH_WEBHOOK_SECRET: (&str, &str) = (
    "HUSH_BENCH_WEBHOOK_SECRET",
    "bench-webhook-secret-0123456789",
);
const BENCH_SALESFORCE_ID: (&str, &str) = ("HUSH_BENCH_SALESFORCE_CLIENT_ID", "3MVG9bench.client");
const BENCH_SALESFORCE_SECRET: (&str, &str) = (
    "HUSH_BENCH_SALESFORCE_CLIENT_SECRET",
    "bench-salesforce-secret",
);
const BENCH_META_TOKEN: (&str, &str) = ("HUSH_BENCH_META_TOKEN", "EAAbench-token");
const BENCH_HUBSPOT_TOKEN: (&str, &str) = ("HUSH_BENCH_HUBSPOT_TOKEN", "pat-bench-token");
/// Custom Audience of the simulated Meta audience.
const BENCH_AUDIENCE_ID: &str = "23850000000000777";

/// The simulator that started, or the end of the run saying which did not.
fn started<T>(what: &str, result: std::io::Result<T>) -> T {
    result.unwrap_or_else(|e| fail(&format!("the {what} simulator did not start: {e}")))
}

/// The vendor simulators of the open-loop run and the recipients that point at them: a
/// webhook, Salesforce and Meta with no latency and no limit of their own, and with
/// `--with-hubspot` HubSpot's, which enforces HubSpot's 100 requests per 10 s.
struct BenchSims {
    webhook: WebhookSimulator,
    salesforce: RunningSim,
    meta: MetaSim,
    hubspot: Option<HubSpotSimulator>,
    recipients: Vec<RecipientConfig>,
}

impl BenchSims {
    /// Starts the simulators (on the current runtime) and sets their fake credentials in the
    /// environment, where the recipients' `credentials` name them.
    async fn start(hubspot: bool) -> BenchSims {
        for (name, value) in [
            BENCH_WEBHOOK_SECRET,
            BENCH_SALESFORCE_ID,
            BENCH_SALESFORCE_SECRET,
            BENCH_META_TOKEN,
            BENCH_HUBSPOT_TOKEN,
        ] {
            std::env::set_var(name, value);
        }
        let webhook = started(
            "webhook",
            WebhookSimulator::start(BENCH_WEBHOOK_SECRET.1, "/notices").await,
        );
        let salesforce = started(
            "Salesforce",
            SalesforceSim::new(BENCH_SALESFORCE_ID.1, BENCH_SALESFORCE_SECRET.1)
                .start()
                .await,
        );
        let meta = started(
            "Meta",
            MetaSim::start(BENCH_AUDIENCE_ID, BENCH_META_TOKEN.1).await,
        );
        let hubspot = match hubspot {
            true => Some(started(
                "HubSpot",
                HubSpotSimulator::start(BENCH_HUBSPOT_TOKEN.1).await,
            )),
            false => None,
        };
        // Each within its vendor's own batch limit (the webhook takes one request a call).
        let mut blocks = format!(
            r#"
            [[recipients]]
            id = "partner-webhook"
            kind = "webhook"
            role = "THIRD_PARTY"
            base_url = "{webhook}"
            credentials = {{ signing_secret = "{webhook_secret}" }}
            rate_limit_per_second = {UNPACED}
            timeout_ms = 10000
            [recipients.settings]
            path = "/notices"

            [[recipients]]
            id = "salesforce"
            kind = "salesforce"
            role = "SERVICE_PROVIDER"
            base_url = "{salesforce}"
            credentials = {{ client_id = "{sf_id}", client_secret = "{sf_secret}" }}
            batch_size = 200
            rate_limit_per_second = {UNPACED}
            timeout_ms = 10000

            [[recipients]]
            id = "meta-audiences"
            kind = "meta_custom_audiences"
            role = "THIRD_PARTY"
            base_url = "{meta}"
            credentials = {{ access_token = "{meta_token}" }}
            batch_size = 500
            rate_limit_per_second = {UNPACED}
            timeout_ms = 10000
            [recipients.settings]
            audience_id = "{BENCH_AUDIENCE_ID}"
            api_version = "v27.0"
            "#,
            webhook = webhook.base_url(),
            webhook_secret = BENCH_WEBHOOK_SECRET.0,
            salesforce = salesforce.base_url(),
            sf_id = BENCH_SALESFORCE_ID.0,
            sf_secret = BENCH_SALESFORCE_SECRET.0,
            meta = meta.base_url(),
            meta_token = BENCH_META_TOKEN.0,
        );
        if let Some(hubspot) = &hubspot {
            blocks.push_str(&format!(
                r#"
                [[recipients]]
                id = "hubspot"
                kind = "hubspot"
                role = "SERVICE_PROVIDER"
                base_url = "{}"
                credentials = {{ token = "{}" }}
                batch_size = 100
                rate_limit_per_second = {HUBSPOT_RATE}
                timeout_ms = 10000
                "#,
                hubspot.base_url(),
                BENCH_HUBSPOT_TOKEN.0
            ));
        }
        let recipients = toml::from_str::<toml::Table>(&blocks).expect("recipients toml")
            ["recipients"]
            .clone()
            .try_into()
            .expect("recipients");
        BenchSims {
            webhook,
            salesforce,
            meta,
            hubspot,
            recipients,
        }
    }

    /// Each simulator's recipient id and call log.
    fn controls(&self) -> Vec<(&'static str, &SimControl)> {
        let mut controls = vec![
            ("partner-webhook", self.webhook.control()),
            ("salesforce", self.salesforce.control()),
            ("meta-audiences", self.meta.control()),
        ];
        if let Some(hubspot) = &self.hubspot {
            controls.push(("hubspot", hubspot.control()));
        }
        controls
    }
}

/// Thread-name prefixes the open-loop run reports CPU time for, with what runs there.
const THREAD_CLASSES: [(&[&str], &str); 4] = [
    (
        &["hush-svc"],
        "Hush services' tokio threads (intake, state, suppressors, auditor)",
    ),
    (
        &["rdk:", "producer poll"],
        "librdkafka threads (services' clients, bench's audit reader)",
    ),
    (&["hush-sims"], "vendor simulators"),
    (&["hush-bench"], "load generator and audit reader"),
];
/// USER_HZ, the unit of the CPU times in `/proc` on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time used so far by this process and by each of its live threads (name, ticks).
struct CpuSample {
    process: u64,
    threads: HashMap<String, (String, u64)>,
}

/// User plus system time, in ticks, from a `/proc/.../stat` line.
fn stat_ticks(stat: &str) -> Option<u64> {
    // Fields after the command name (which may hold spaces), 1-based from field 3 (state):
    // utime is field 14 and stime field 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn cpu_sample() -> CpuSample {
    let process = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| stat_ticks(&stat))
        .unwrap_or_else(|| fail("/proc/self/stat is unreadable: CPU time needs Linux's /proc"));
    let mut threads = HashMap::new();
    for entry in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = entry.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let ticks = std::fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|stat| stat_ticks(&stat));
        if let Some(ticks) = ticks {
            let tid = entry.file_name().to_string_lossy().into_owned();
            threads.insert(tid, (name.trim().to_owned(), ticks));
        }
    }
    CpuSample { process, threads }
}

/// CPU seconds between two samples: the whole process, each thread class, and the rest (the
/// main thread, threads of other names, and threads that ended in between).
struct CpuUse {
    process: f64,
    classes: Vec<(&'static str, f64)>,
    rest: f64,
    /// Live threads of no class, by name, most CPU first.
    unclassified: Vec<(String, f64)>,
}

fn cpu_between(before: &CpuSample, after: &CpuSample) -> CpuUse {
    let seconds = |ticks: u64| ticks as f64 / TICKS_PER_SECOND;
    let process = seconds(after.process.saturating_sub(before.process));
    let mut classes: Vec<(&'static str, f64)> = THREAD_CLASSES
        .iter()
        .map(|(_, what)| (*what, 0.0))
        .collect();
    let mut classified = 0.0;
    let mut unclassified: HashMap<String, f64> = HashMap::new();
    for (tid, (name, ticks)) in &after.threads {
        let earlier = before.threads.get(tid).map_or(0, |(_, t)| *t);
        let used = seconds(ticks.saturating_sub(earlier));
        match THREAD_CLASSES
            .iter()
            .position(|(prefixes, _)| prefixes.iter().any(|p| name.starts_with(p)))
        {
            Some(index) => {
                classes[index].1 += used;
                classified += used;
            }
            None => *unclassified.entry(name.clone()).or_default() += used,
        }
    }
    let mut unclassified: Vec<(String, f64)> = unclassified.into_iter().collect();
    unclassified.sort_by(|a, b| b.1.total_cmp(&a.1));
    CpuUse {
        process,
        classes,
        rest: (process - classified).max(0.0),
        unclassified,
    }
}

/// The 1-minute load average, as `/proc/loadavg` tells it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn now_ms() -> f64 {
    Utc::now().timestamp_micros() as f64 / 1000.0
}

/// A multi-thread runtime whose threads carry `name` (so `/proc` can tell them apart).
fn runtime(name: &str, workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Raw Kafka at `rate` messages a second for `n` messages, each produced at its intended time
/// on its own task; latency from the intended send time to consumption.
async fn raw_open_loop(stack: &Stack, payload: &[u8], rate: u32, n: usize) -> (Row, CpuUse) {
    let mut raw = RawPath::new(stack).await;
    let payload: Arc<[u8]> = payload.into();
    // Warm-up, not measured.
    let warmup: Vec<_> = (0..WARMUP).map(|i| raw.send(i, payload.clone())).collect();
    futures_join(warmup).await;
    raw.collect(WARMUP).await;
    let cpu_before = cpu_sample();
    let start = tokio::time::Instant::now();
    let mut sends = JoinSet::new();
    let mut intended = Vec::with_capacity(n);
    for k in 0..n {
        let at = start + Duration::from_secs_f64(k as f64 / f64::from(rate));
        tokio::time::sleep_until(at).await;
        intended.push(at.into_std());
        sends.spawn(raw.send(WARMUP + k, payload.clone()));
    }
    sends.join_all().await;
    raw.collect(WARMUP + n).await;
    let cpu = cpu_between(&cpu_before, &cpu_sample());
    let arrivals: Vec<Instant> = (0..n).map(|k| raw.received[&(WARMUP + k)]).collect();
    let last = *arrivals.iter().max().expect("received");
    let latencies = intended
        .iter()
        .zip(&arrivals)
        .map(|(at, arrived)| ms_between(*at, *arrived))
        .collect();
    let span = last.duration_since(intended[0]).as_secs_f64();
    (Row::new(Some(n as f64 / span), latencies), cpu)
}

/// Awaits every future (they run concurrently).
async fn futures_join<F: std::future::Future<Output = ()> + Send + 'static>(futures: Vec<F>) {
    let mut set = JoinSet::new();
    for future in futures {
        set.spawn(future);
    }
    set.join_all().await;
}

/// One request of the open-loop run.
struct Sent {
    /// When it was meant to be sent (epoch ms).
    intended_ms: f64,
    /// When intake's answer came (epoch ms), or the submission gave up.
    answered_ms: f64,
    /// Intake's status; 0 when it did not answer within [`SUBMIT_TIMEOUT`].
    status: u16,
    /// Request id and intake's receipt (epoch ms), when accepted.
    accepted: Option<(String, EpochMillis)>,
}

fn email(run: &str, index: usize) -> String {
    format!("bench.{run}.{index}@example.com")
}

/// Sends requests `range` at `rate` a second from now, each at its intended time on its own task,
/// whatever the earlier ones are doing.
async fn send_open_loop(
    http: &reqwest::Client,
    intake_url: &str,
    run: &str,
    range: std::ops::Range<usize>,
    rate: u32,
) -> Vec<Sent> {
    let start = tokio::time::Instant::now();
    let start_ms = now_ms();
    let url = format!("{intake_url}/v1/requests");
    let mut sends = JoinSet::new();
    for (k, index) in range.enumerate() {
        let offset = Duration::from_secs_f64(k as f64 / f64::from(rate));
        tokio::time::sleep_until(start + offset).await;
        let intended_ms = start_ms + offset.as_secs_f64() * 1000.0;
        let body = opt_out(&email(run, index), &format!("bench-{run}-{index}"));
        let request = http.post(&url).json(&body);
        sends.spawn(async move {
            let answer = tokio::time::timeout(SUBMIT_TIMEOUT, async {
                let response = request.send().await.ok()?;
                let status = response.status().as_u16();
                Some((
                    status,
                    response.json::<Value>().await.unwrap_or(Value::Null),
                ))
            })
            .await;
            let answered_ms = now_ms();
            let (status, body) = answer.ok().flatten().unwrap_or((0, Value::Null));
            let accepted = (status == 202)
                .then(|| {
                    let id = body["request_id"].as_str()?.to_owned();
                    let received = body["received_at"]
                        .as_str()
                        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())?;
                    Some((id, received.timestamp_millis()))
                })
                .flatten();
            Sent {
                intended_ms,
                answered_ms,
                status,
                accepted,
            }
        });
    }
    sends.join_all().await
}

/// Waits until every id in `ids` is complete on the audit topic, or `until`; what completed.
/// It looks only for the ids still pending and copies the records once, at the end, so the
/// wait takes next to no CPU from the system it measures.
async fn wait_until_done(
    done: &Mutex<HashMap<String, Done>>,
    ids: &[&str],
    until: Instant,
) -> HashMap<String, Done> {
    let mut pending: Vec<&str> = ids.to_vec();
    while !pending.is_empty() && Instant::now() <= until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let done = done.lock().expect("done map");
        pending.retain(|id| !done.contains_key(*id));
    }
    let done = done.lock().expect("done map");
    ids.iter()
        .filter_map(|id| done.get(*id).map(|d| ((*id).to_owned(), d.clone())))
        .collect()
}

async fn bench_open(args: OpenArgs, pipeline: Arc<Pipeline>, sims: Arc<BenchSims>) {
    let (rate, n) = (args.rate, args.rate as usize * args.duration as usize);
    let warmup = (rate as usize).max(WARMUP);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let load_at_start = load_average();
    // Half the subjects exist at HubSpot (flagged and read back) and in the Meta audience; the
    // others are NOT_FOUND there. Salesforce holds none of them: its simulator finds people by
    // scanning every record, which would make it, not Hush, the bottleneck.
    for index in (0..warmup + n).step_by(2) {
        let address = email(&run, index);
        if let Some(hubspot) = &sims.hubspot {
            hubspot.add_contact(&address);
        }
        sims.meta
            .add_members([hash_identifier(IdentifierType::Email, &address).expect("email")]);
    }

    let payload = pipeline
        .stack
        .codec()
        .encode(&pipeline.topics.requests, &sample_request())
        .await
        .expect("sample encodes");
    let (raw_at_rate, raw_cpu) = raw_open_loop(&pipeline.stack, &payload, rate, n).await;
    let raw_concurrency = 1_000;
    let raw_max = raw_baseline(&pipeline.stack, &payload, n.min(50_000), raw_concurrency).await;

    let http = hush_tests::auth::operator_client();
    let done = follow_audit(&pipeline);
    let warm = send_open_loop(&http, &pipeline.intake_url, &run, 0..warmup, rate).await;
    let warm_ids: Vec<&str> = warm
        .iter()
        .filter_map(|s| s.accepted.as_ref().map(|(id, _)| id.as_str()))
        .collect();
    if warm_ids.len() != warmup {
        fail(&format!(
            "intake accepted {} of {warmup} warm-up requests",
            warm_ids.len()
        ));
    }
    let warmed = wait_until_done(&done, &warm_ids, Instant::now() + DRAIN).await;
    if warmed.len() != warmup {
        fail(&format!(
            "only {} of {warmup} warm-up requests completed within {DRAIN:?}",
            warmed.len()
        ));
    }

    let cpu_before = cpu_sample();
    let sent = send_open_loop(&http, &pipeline.intake_url, &run, warmup..warmup + n, rate).await;
    let sent_by = Instant::now();
    let ids: Vec<&str> = sent
        .iter()
        .filter_map(|s| s.accepted.as_ref().map(|(id, _)| id.as_str()))
        .collect();
    let finished = wait_until_done(&done, &ids, sent_by + DRAIN).await;
    let cpu = cpu_between(&cpu_before, &cpu_sample());
    let load_at_end = load_average();

    let first_intended = sent.iter().map(|s| s.intended_ms).fold(f64::MAX, f64::min);
    let accepted: Vec<(&Sent, &str, EpochMillis)> = sent
        .iter()
        .filter_map(|s| s.accepted.as_ref().map(|(id, at)| (s, id.as_str(), *at)))
        .collect();
    let refused: HashMap<u16, usize> =
        sent.iter()
            .filter(|s| s.accepted.is_none())
            .fold(HashMap::new(), |mut by, s| {
                *by.entry(s.status).or_default() += 1;
                by
            });
    let last_answer = sent.iter().map(|s| s.answered_ms).fold(0.0, f64::max);
    let intake_row = Row::new(
        Some(accepted.len() as f64 / ((last_answer - first_intended) / 1000.0)),
        sent.iter().map(|s| s.answered_ms - s.intended_ms).collect(),
    );
    // An incomplete request has no completion time: it counts as infinitely late.
    let latency = |from: &dyn Fn(&Sent, EpochMillis) -> f64, to: &dyn Fn(&Done) -> Option<f64>| {
        let mut last = first_intended;
        let latencies: Vec<f64> = accepted
            .iter()
            .map(|(s, id, received)| match finished.get(*id).and_then(to) {
                Some(at) => {
                    last = last.max(at);
                    at - from(s, *received)
                }
                None => f64::INFINITY,
            })
            .collect();
        let completed = latencies.iter().filter(|l| l.is_finite()).count();
        Row::new(
            Some(completed as f64 / ((last - first_intended).max(1.0) / 1000.0)),
            latencies,
        )
    };
    let from_receipt = |_: &Sent, received: EpochMillis| received as f64;
    let from_intended = |s: &Sent, _: EpochMillis| s.intended_ms;
    let complete_row = latency(&from_receipt, &|d| Some(d.written_at as f64));
    let complete_from_intended = latency(&from_intended, &|d| Some(d.written_at as f64));
    let recipients: Vec<String> = pipeline.recipients.iter().map(|r| r.id.clone()).collect();
    let outcome_rows: Vec<(String, Row)> = recipients
        .iter()
        .map(|id| {
            let row = latency(&from_receipt, &|d| {
                d.confirmed_at.get(id.as_str()).map(|at| *at as f64)
            });
            (id.clone(), row)
        })
        .collect();
    let sample: Vec<String> = ids
        .iter()
        .take(API_SAMPLE)
        .map(|id| (*id).to_owned())
        .collect();
    let api_complete = check_api(&pipeline, &sample, 16).await;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "hush pipeline benchmark, open loop: {rate} requests/s for {} s = {n} requests \
         (after {warmup} warm-up), {cores} cores shared with other work (load average {load_at_start} \
         at start, {load_at_end} at end), single-node Kafka at {}, payload {} B",
        args.duration,
        pipeline.stack.kafka.bootstrap_servers,
        payload.len()
    );
    println!(
        "recipients: {} (zero-latency simulators{})",
        recipients.join(", "),
        if args.hubspot {
            format!(
                "; hubspot's enforces {} requests / {:?}, paced at {HUBSPOT_RATE}/s",
                hush_connector_hubspot::sim::RATE_LIMIT,
                hush_connector_hubspot::sim::RATE_WINDOW
            )
        } else {
            String::new()
        }
    );
    println!(
        "{:<40}{:>12}{:>9}{:>9}{:>9}{:>9}",
        "", "achieved/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    intake_row.print_wide("intake 202 (from intended send)");
    for (id, row) in &outcome_rows {
        row.print_wide(&format!("receipt→{id} outcome"));
    }
    complete_row.print_wide("receipt→auditor complete");
    complete_from_intended.print_wide("intended send→auditor complete");
    raw_at_rate.print_wide(&format!("raw produce→consume @{rate}/s"));
    raw_max.print_wide(&format!("raw produce→consume max (c={raw_concurrency})"));
    let incomplete = accepted.len() - finished.len();
    println!(
        "accepted {} of {n}{}; incomplete after {DRAIN:?}: {incomplete}; auditor API: {api_complete}/{} \
         sampled complete",
        accepted.len(),
        if refused.is_empty() {
            String::new()
        } else {
            format!(" (not accepted, by status, 0 = no answer: {refused:?})")
        },
        sample.len()
    );
    let per_thousand = |seconds: f64| seconds * 1000.0 / n as f64;
    println!(
        "CPU seconds per 1,000 requests (from /proc/self; every service runs in this one \
         process, so the split is by thread, not by service):"
    );
    println!(
        "  {:<72}{:>7.2}",
        "whole process",
        per_thousand(cpu.process)
    );
    for (what, seconds) in &cpu.classes {
        println!("  {what:<72}{:>7.2}", per_thousand(*seconds));
    }
    let others: Vec<String> = cpu
        .unclassified
        .iter()
        .take(3)
        .map(|(name, seconds)| format!("{name} {:.2}", per_thousand(*seconds)))
        .collect();
    println!(
        "  {:<72}{:>7.2}",
        format!(
            "other threads ({}), ended threads, tick rounding",
            others.join(", ")
        ),
        per_thousand(cpu.rest)
    );
    println!(
        "  {:<72}{:>7.2}",
        format!("raw Kafka at {rate}/s, whole process, per 1,000 messages"),
        per_thousand(raw_cpu.process)
    );
    let calls: Vec<String> = sims
        .controls()
        .into_iter()
        .map(|(id, control)| {
            let calls = control.calls();
            let limited = calls.iter().filter(|c| c.status == 429).count();
            format!("{id} {} calls ({limited} answered 429)", calls.len())
        })
        .collect();
    println!("vendor simulators (warm-up included): {}", calls.join(", "));
    let sustained = rate >= 1_000 && args.duration >= 60;
    let met = sustained
        && incomplete == 0
        && refused.is_empty()
        && complete_row.pct(0.99) <= 1_000.0
        && complete_row.throughput.unwrap_or(0.0) >= 0.99 * f64::from(rate);
    println!(
        "target 1,000 requests/s for 60 s, receipt→auditor complete p99 ≤ 1 s: {} \
         (this run: {rate}/s for {} s, completions {:.0}/s, p99 {:.0} ms)",
        if met {
            "met"
        } else if sustained {
            "NOT met"
        } else {
            "not tested at this rate and duration"
        },
        args.duration,
        complete_row.throughput.unwrap_or(0.0),
        complete_row.pct(0.99)
    );
    if args.hubspot {
        // HubSpot: 10 calls/s, 100 contacts a call, a write and a read-back per batch.
        let capacity = 10.0 * 100.0 / 2.0;
        println!(
            "target with HubSpot, completion ≥ 0.5 × what HubSpot's limit allows when batched \
             (10 calls/s × 100 contacts / 2 calls per batch = {capacity:.0} subjects/s, so ≥ {:.0}/s): \
             completions {:.0}/s at an arrival rate of {rate}/s",
            capacity / 2.0,
            complete_row.throughput.unwrap_or(0.0)
        );
    }
    if api_complete != sample.len() {
        fail("the auditor API does not show every sampled request complete");
    }
}

fn main() {
    match args() {
        Mode::Closed(args) => {
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            runtime.block_on(async {
                if tokio::time::timeout(OVERALL, bench_closed(args))
                    .await
                    .is_err()
                {
                    fail(&format!("the benchmark did not finish within {OVERALL:?}"));
                }
            });
        }
        Mode::Open(args) => {
            // Hush's services, the vendor simulators and the load generator each run on their
            // own threads, so /proc tells their CPU time apart.
            let services = runtime("hush-svc", 2);
            let sims = runtime("hush-sims", 1);
            let bench = runtime("hush-bench", 1);
            set_test_secrets();
            let bench_sims = Arc::new(sims.block_on(BenchSims::start(args.hubspot)));
            let pipeline = Arc::new(services.block_on(Pipeline::start(
                "bench-open",
                Options {
                    builtin_recipients: false,
                    extra_recipients: bench_sims.recipients.clone(),
                    timeout_ms: 10_000,
                    ..Options::default()
                },
            )));
            let overall = Duration::from_secs(args.duration * 3) + Duration::from_secs(600);
            // The generator's loop runs on a thread of the bench's name too.
            let driver = std::thread::Builder::new()
                .name("hush-bench-main".into())
                .spawn(move || {
                    bench.block_on(async {
                        if tokio::time::timeout(overall, bench_open(args, pipeline, bench_sims))
                            .await
                            .is_err()
                        {
                            fail(&format!("the benchmark did not finish within {overall:?}"));
                        }
                    })
                })
                .expect("bench thread");
            if driver.join().is_err() {
                fail("the benchmark panicked");
            }
        }
    }
    // Exit without waiting for the in-process services' background tasks.
    std::process::exit(0);
}
