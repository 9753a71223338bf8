//! `make faults`: a soak of the shipped runtime image under faults.
//!
//! Runs intake, the state service, the auditor and the partner-webhook and HubSpot suppressors
//! as containers of `hush-test/runtime` (see `RuntimePipeline`), on a broker and a registry of
//! their own started by testcontainers. While N opt-outs go in through intake, a scheduler
//! driven by a seeded random generator kills a random service container with SIGKILL, or the
//! broker, at random intervals, and starts it again after a random pause. A client retries a
//! refused or unanswered submission with the same idempotency key, as intake's 503 tells it to.
//! Once the last submission is acknowledged and the last fault repaired, it waits for every
//! acknowledged request to complete, then prints what was lost, what was duplicated, what was
//! left UNVERIFIED or PENDING, and how long the pipeline took to drain after the last fault.
//!
//! Faults may overlap (a target is not waited for before the next fault); after the last one
//! the harness waits until the broker answers and every service is ready again, and measures
//! the drain from there. Whatever is still down 180 s after the last fault is printed (each
//! service's `/readyz` answer, the broker's, and each container's state) every minute, and the
//! wait goes on until the drain timeout.
//!
//! A service container that stops on its own (not killed) is started again, as the kubelet
//! would, and counted; so is the broker's, whose whole log is kept at that moment.
//!
//! The summary is printed however the run ends, with the reason (drained, drain timeout, or
//! what made the harness give up), and the log of the broker's and each service's container
//! (every start of it) is written to `target/faults/<epoch seconds>/<name>.log`.
//!
//! Usage: `faults [--requests N] [--seed S] [--rate PER_SECOND] [--drain-timeout SECONDS]`
//! (defaults 10000, 1, 8, 600: 10,000 requests over at least 1,250 s of faults; the shipped
//! partner webhook is paced at 10 calls a second, so a faster arrival only builds a backlog).
//! Exits with 1 when a request was lost, or confirmed twice without the auditor absorbing it
//! (its record holding two outcomes of one recipient).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hush_contracts::events::{AuditRecord, Confirmation};
use hush_tests::containers::{
    container_state, exit_code_if_stopped, kill_container, read_to_end, run_bounded, runtime_image,
    save_container_log, start_container, RuntimePipeline,
};
use hush_tests::Stack;
use serde_json::{json, Value};
use tokio::sync::Mutex;

/// The soak's settings.
#[derive(Debug, Clone)]
struct Settings {
    requests: usize,
    seed: u64,
    rate: f64,
    drain_timeout: Duration,
}

fn parse_args() -> Result<Settings, String> {
    let mut settings = Settings {
        requests: 10_000,
        seed: 1,
        rate: 8.0,
        drain_timeout: Duration::from_secs(600),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--requests" => settings.requests = value.parse().map_err(|e| bad(&e))?,
            "--seed" => settings.seed = value.parse().map_err(|e| bad(&e))?,
            "--rate" => settings.rate = value.parse().map_err(|e| bad(&e))?,
            "--drain-timeout" => {
                settings.drain_timeout = Duration::from_secs(value.parse().map_err(|e| bad(&e))?)
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if settings.requests == 0 || settings.rate <= 0.0 {
        return Err("--requests and --rate must be positive".into());
    }
    Ok(settings)
}

/// SplitMix64: the same seed gives the same faults at the same offsets.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration uniformly between `low` and `high` milliseconds.
    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.next() % (high - low + 1))
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What the submitting client saw.
#[derive(Default)]
struct Submissions {
    acknowledged: BTreeSet<String>,
    refused: usize,
    rate_limited: usize,
    unanswered: usize,
}

fn opt_out(n: usize, run: &str) -> Value {
    json!({
        "kind": "OPT_OUT_SALE_SHARE", "jurisdiction": "US-CA", "channel": "WEB_FORM",
        "identifiers": [{"type": "EMAIL", "value": format!("soak{n}.{run}@example.com")}],
        "categories": ["ALL"], "idempotency_key": format!("soak-{run}-{n}")
    })
}

/// Submits every request at `rate` per second, retrying each until intake acknowledges it.
async fn submit(
    pipeline: Arc<RuntimePipeline>,
    settings: Settings,
    submissions: Arc<Mutex<Submissions>>,
) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let interval = Duration::from_secs_f64(1.0 / settings.rate);
    let started = tokio::time::Instant::now();
    for n in 0..settings.requests {
        tokio::time::sleep_until(started + interval * n as u32).await;
        let body = opt_out(n, &run[..8]);
        loop {
            match pipeline.submit(&body).await {
                Ok((202, answer)) => {
                    let id = answer["request_id"].as_str().unwrap_or_default().to_owned();
                    submissions.lock().await.acknowledged.insert(id);
                    break;
                }
                // 429: the shipped per-IP limit (20/s, burst 100) meets the retries of one
                // client; waited out like a 503.
                Ok((429, _)) => submissions.lock().await.rate_limited += 1,
                Ok((status, answer)) => {
                    if status != 503 {
                        eprintln!("[faults] intake answered {status}: {answer}");
                    }
                    submissions.lock().await.refused += 1;
                }
                Err(_) => submissions.lock().await.unanswered += 1,
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// One fault: what was hit, when, and how long it stayed stopped.
struct Fault {
    target: String,
    at: Duration,
    down: Duration,
}

/// Containers the fault injector has stopped and will start again itself.
type Held = Arc<Mutex<BTreeSet<String>>>;

/// A service container that stopped without being killed, and was started again.
struct Exit {
    service: String,
    at: Duration,
    code: i64,
}

/// Starts again every service container that stopped on its own (not one the injector holds
/// down), as the kubelet restarts a pod's container, and the broker container too (as its
/// StatefulSet would), until `stop`; logs the end of its log the first time each stops, keeps
/// the broker's whole log at each such stop (under `logs`), and returns every such stop.
async fn supervise(
    pipeline: Arc<RuntimePipeline>,
    held: Held,
    stop: Arc<AtomicBool>,
    started: Instant,
    logs: PathBuf,
) -> anyhow::Result<Vec<Exit>> {
    let mut exits: Vec<Exit> = Vec::new();
    let kafka_id = pipeline
        .stack
        .containers
        .as_ref()
        .map(|c| c.kafka_id().to_owned())
        .unwrap_or_default();
    let mut watched: Vec<(String, String)> = pipeline
        .services
        .iter()
        .map(|s| (s.spec.name.clone(), s.id().to_owned()))
        .collect();
    watched.push(("broker".into(), kafka_id));
    while !stop.load(Ordering::SeqCst) {
        for (name, id) in &watched {
            let held = held.lock().await;
            if held.contains(id) {
                continue;
            }
            let Some(code) = exit_code_if_stopped(id).await? else {
                continue;
            };
            let at = started.elapsed();
            eprintln!(
                "[faults] {:>6.1} s  {name} stopped on its own (exit code {code}); starting it again",
                at.as_secs_f64()
            );
            if name == "broker" {
                let path = logs.join(format!("broker-stopped-at-{:.0}s.log", at.as_secs_f64()));
                match save_container_log(id, &path).await {
                    Ok(()) => eprintln!("[faults] the broker's log so far: {}", path.display()),
                    Err(error) => {
                        eprintln!("[faults] the broker's log could not be kept: {error:#}")
                    }
                }
            } else if !exits.iter().any(|e| &e.service == name) {
                let service = pipeline.service(name);
                eprintln!("[faults] its log ends:\n{}", service.log_tail(20).await);
            }
            start_container(id).await?;
            drop(held);
            exits.push(Exit {
                service: name.clone(),
                at,
                code,
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(exits)
}

/// Waits until the broker answers a metadata request again.
async fn broker_answers(bootstrap: String, timeout: Duration) -> bool {
    tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let consumer: Result<BaseConsumer, _> = rdkafka::ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .create();
            if let Ok(consumer) = consumer {
                if consumer
                    .fetch_metadata(None, Duration::from_secs(2))
                    .is_ok()
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        false
    })
    .await
    .unwrap_or(false)
}

/// Kills and restarts a random target every few seconds until `done` (the broker at least
/// once), adding each fault to `faults` once the target has been started again.
async fn inject_faults(
    pipeline: Arc<RuntimePipeline>,
    settings: Settings,
    done: Arc<AtomicBool>,
    started: Instant,
    held: Held,
    faults: Arc<Mutex<Vec<Fault>>>,
) -> anyhow::Result<()> {
    let seed = settings.seed;
    let broker_by = Duration::from_secs_f64(0.6 * settings.requests as f64 / settings.rate);
    let mut random = Random(seed);
    let kafka_id = pipeline
        .stack
        .containers
        .as_ref()
        .map(|c| c.kafka_id().to_owned())
        .ok_or_else(|| anyhow::anyhow!("the broker is not a container"))?;
    let targets: Vec<&str> = RuntimePipeline::SERVICES
        .iter()
        .copied()
        .chain(["broker"])
        .collect();
    let mut broker_hit = false;
    while !done.load(Ordering::SeqCst) {
        tokio::time::sleep(random.millis(2_000, 6_000)).await;
        if done.load(Ordering::SeqCst) {
            break;
        }
        // The broker is among the targets; if chance has spared it past 60 % of the
        // submission window, it is next, so every soak restarts it at least once.
        let mut target = targets[random.below(targets.len())];
        if !broker_hit && started.elapsed() >= broker_by {
            target = "broker";
        }
        let pause = random.millis(500, 4_000);
        let at = started.elapsed();
        let id = match target {
            "broker" => kafka_id.clone(),
            service => pipeline.service(service).id().to_owned(),
        };
        {
            let mut held = held.lock().await;
            // A service that stopped on its own is the supervisor's to restart.
            if exit_code_if_stopped(&id).await?.is_some() {
                continue;
            }
            held.insert(id.clone());
        }
        broker_hit |= target == "broker";
        let code = kill_container(&id).await?;
        eprintln!(
            "[faults] {:>6.1} s  kill -9 {target} (exit code {code}), restart in {:.1} s",
            at.as_secs_f64(),
            pause.as_secs_f64()
        );
        tokio::time::sleep(pause).await;
        start_container(&id).await?;
        held.lock().await.remove(&id);
        faults.lock().await.push(Fault {
            target: target.to_owned(),
            at,
            down: pause,
        });
    }
    Ok(())
}

/// How often [`wait_repaired`] says what is still down once it has waited
/// [`NOT_READY_WARNING`].
const SAY_EVERY: Duration = Duration::from_secs(60);

/// How long the broker and services may stay down after the last fault before the harness
/// says what is down (it keeps waiting until its deadline).
const NOT_READY_WARNING: Duration = Duration::from_secs(180);

/// What is down now: the broker when a new client gets no metadata from it, and every service
/// whose `/readyz` does not answer 200, each with its container's state; empty when all is up.
async fn what_is_down(pipeline: &RuntimePipeline, kafka_id: &str) -> Vec<String> {
    let mut down = Vec::new();
    if !broker_answers(
        pipeline.stack.kafka.bootstrap_servers.clone(),
        Duration::from_secs(3),
    )
    .await
    {
        down.push(format!(
            "broker: no metadata answer; container {}",
            container_state(kafka_id).await
        ));
    }
    for service in &pipeline.services {
        if let Err(why) = service.readiness().await {
            down.push(format!(
                "{}: {why}; container {}",
                service.spec.name,
                container_state(service.id()).await
            ));
        }
    }
    down
}

/// Waits until the broker answers and every service is ready, up to `deadline`; says what is
/// down after [`NOT_READY_WARNING`] and every [`SAY_EVERY`] after that. The error says what was
/// still down at the deadline.
async fn wait_repaired(
    pipeline: &RuntimePipeline,
    kafka_id: &str,
    started: Instant,
    deadline: Instant,
) -> Result<(), String> {
    let since = Instant::now();
    let mut said: Option<Instant> = None;
    loop {
        let down = what_is_down(pipeline, kafka_id).await;
        if down.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "not ready {:.0} s after the last fault: {}",
                since.elapsed().as_secs_f64(),
                down.join("; ")
            ));
        }
        if since.elapsed() >= NOT_READY_WARNING && said.is_none_or(|at| at.elapsed() >= SAY_EVERY) {
            eprintln!(
                "[faults] {:>6.1} s  still down {:.0} s after the last fault (waiting until the drain deadline):",
                started.elapsed().as_secs_f64(),
                since.elapsed().as_secs_f64()
            );
            for what in &down {
                eprintln!("[faults]           {what}");
            }
            said = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The auditor's latest record of every request, read from the audit topic to its end (one
/// read instead of an HTTP call per request: the auditor's API would rate-limit a poll of
/// thousands of requests).
async fn audit_records(
    pipeline: &RuntimePipeline,
) -> anyhow::Result<BTreeMap<String, AuditRecord>> {
    let bootstrap = pipeline.stack.kafka.bootstrap_servers.clone();
    let topic = pipeline.config.topics.audit.clone();
    let values = tokio::task::spawn_blocking(move || read_to_end(&bootstrap, &topic)).await??;
    let codec = pipeline.stack.codec();
    let mut records = BTreeMap::new();
    // A request's records share a partition, so the last one read is its latest.
    for value in values.iter().filter(|v| !v.is_empty()) {
        let record: AuditRecord = codec.decode(value).await?;
        records.insert(record.request_id.clone(), record);
    }
    Ok(records)
}

/// Whether every required recipient of `record` has a terminal outcome.
fn complete(record: &AuditRecord) -> bool {
    record.completed_at.is_some()
        && record
            .required_connectors
            .iter()
            .all(|r| record.connectors.iter().any(|c| &c.connector_id == r))
}

/// Waits until every request of `ids` is complete in the audit topic, or `deadline`, saying
/// how far it got every 30 s (a failed read of the topic is said and retried); returns the
/// records as they were last read and whether all were complete.
async fn wait_complete(
    pipeline: &RuntimePipeline,
    ids: &BTreeSet<String>,
    deadline: Instant,
) -> (BTreeMap<String, AuditRecord>, bool) {
    let started = Instant::now();
    let mut said = Instant::now();
    let mut records = BTreeMap::new();
    loop {
        match audit_records(pipeline).await {
            Ok(read) => records = read,
            Err(error) => {
                eprintln!("[faults] reading the audit topic failed (retrying): {error:#}")
            }
        }
        let done = ids
            .iter()
            .filter(|id| records.get(*id).is_some_and(complete))
            .count();
        if done == ids.len() {
            return (records, true);
        }
        if Instant::now() >= deadline {
            return (records, false);
        }
        if said.elapsed() >= Duration::from_secs(30) {
            eprintln!(
                "[faults] draining: {done} of {} complete after {:.0} s",
                ids.len(),
                started.elapsed().as_secs_f64()
            );
            said = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// How a soak ended.
enum Ending {
    /// Every acknowledged request completed.
    Drained,
    /// The drain timeout passed with requests not complete.
    DrainTimeout,
    /// The harness could not go on (the reason).
    GaveUp(String),
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Drained => write!(f, "drained: every acknowledged request complete"),
            Self::DrainTimeout => {
                write!(f, "drain timeout: not every acknowledged request complete")
            }
            Self::GaveUp(reason) => write!(f, "gave up: {reason}"),
        }
    }
}

/// Where a run's logs are kept: `target/faults/<seconds since the epoch>/`.
fn log_dir() -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // The workspace's target directory: tests/ is one level below the workspace.
            let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            tests.parent().unwrap_or(tests).join("target")
        });
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let dir = target.join("faults").join(stamp.to_string());
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn soak(settings: Settings) -> anyhow::Result<bool> {
    let image = tokio::task::spawn_blocking(runtime_image).await??;
    let logs = log_dir()?;
    let stack = tokio::task::spawn_blocking(|| Stack::own_containers("faults")).await?;
    let pipeline = Arc::new(RuntimePipeline::start(stack, &image, "faults").await?);
    let kafka_id = pipeline
        .stack
        .containers
        .as_ref()
        .map(|c| c.kafka_id().to_owned())
        .ok_or_else(|| anyhow::anyhow!("the broker is not a container"))?;
    eprintln!(
        "[faults] {} requests at {}/s, seed {}, image {image}; logs kept in {}",
        settings.requests,
        settings.rate,
        settings.seed,
        logs.display()
    );

    let started = Instant::now();
    let submissions = Arc::new(Mutex::new(Submissions::default()));
    let done = Arc::new(AtomicBool::new(false));
    let held: Held = Arc::default();
    let faults: Arc<Mutex<Vec<Fault>>> = Arc::default();
    let supervised = Arc::new(AtomicBool::new(false));
    let supervisor = tokio::spawn(supervise(
        pipeline.clone(),
        held.clone(),
        supervised.clone(),
        started,
        logs.clone(),
    ));
    let injector = tokio::spawn(inject_faults(
        pipeline.clone(),
        settings.clone(),
        done.clone(),
        started,
        held,
        faults.clone(),
    ));
    // Submission may take longer than its window (retries while intake refuses), not longer
    // than the window plus the drain timeout.
    let window = Duration::from_secs_f64(settings.requests as f64 / settings.rate);
    let mut ending: Option<Ending> = None;
    if tokio::time::timeout(
        window + settings.drain_timeout,
        submit(pipeline.clone(), settings.clone(), submissions.clone()),
    )
    .await
    .is_err()
    {
        ending = Some(Ending::GaveUp(format!(
            "submission not finished {:.0} s after it began",
            (window + settings.drain_timeout).as_secs_f64()
        )));
    }
    done.store(true, Ordering::SeqCst);
    let submitted_in = started.elapsed();
    match injector.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            ending.get_or_insert(Ending::GaveUp(format!("fault injection failed: {error:#}")));
        }
        Err(error) => {
            ending.get_or_insert(Ending::GaveUp(format!("fault injection failed: {error}")));
        }
    }
    let faults = std::mem::take(&mut *faults.lock().await);
    let last_fault_ended = Instant::now();
    let deadline = last_fault_ended + settings.drain_timeout;

    // Repaired: the broker answers and every service is ready again.
    let repaired = if ending.is_none() {
        wait_repaired(&pipeline, &kafka_id, started, deadline).await
    } else {
        Err("not waited for".into())
    };
    let repaired_at = started.elapsed();
    let last_fault_repaired = Instant::now();
    if let Err(reason) = &repaired {
        ending.get_or_insert(Ending::GaveUp(reason.clone()));
    }

    let submissions = std::mem::take(&mut *submissions.lock().await);
    let acknowledged = submissions.acknowledged;
    let (records, all_complete) = if repaired.is_ok() {
        wait_complete(&pipeline, &acknowledged, deadline).await
    } else {
        // One read for the summary, whatever state the pipeline is in.
        (audit_records(&pipeline).await.unwrap_or_default(), false)
    };
    let ending = ending.unwrap_or(if all_complete {
        Ending::Drained
    } else {
        Ending::DrainTimeout
    });
    let incomplete: BTreeSet<&String> = acknowledged
        .iter()
        .filter(|id| !records.get(*id).is_some_and(complete))
        .collect();
    let drained = last_fault_repaired.elapsed();
    supervised.store(true, Ordering::SeqCst);
    let exits = match supervisor.await {
        Ok(Ok(exits)) => exits,
        Ok(Err(error)) => {
            eprintln!("[faults] the supervisor failed: {error:#}");
            Vec::new()
        }
        Err(error) => {
            eprintln!("[faults] the supervisor failed: {error}");
            Vec::new()
        }
    };
    let drained_at = started.elapsed();
    let last_fault_at = faults.last().map_or(Duration::ZERO, |f| f.at);

    let confirmations = match pipeline.confirmations().await {
        Ok(confirmations) => Some(confirmations),
        Err(error) => {
            eprintln!("[faults] reading the confirmations topic failed: {error:#}");
            None
        }
    };
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for confirmation in confirmations.iter().flatten() {
        *counts
            .entry((
                confirmation.request_id.clone(),
                confirmation.connector_id.clone(),
            ))
            .or_default() += 1;
    }
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut completion: Vec<i64> = Vec::new();
    for id in &acknowledged {
        let record = records.get(id);
        let status = record
            .and_then(|r| serde_json::to_value(r.status).ok())
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "(no record)".into());
        *statuses.entry(status).or_default() += 1;
        if let Some(record) = record.filter(|r| complete(r)) {
            completion.extend(record.completed_at.map(|at| at - record.received_at));
        }
    }
    completion.sort_unstable();
    let percentile = |p: f64| {
        completion
            .get(((completion.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, |ms| *ms as f64 / 1000.0)
    };
    let duplicate_confirmations: usize = counts.values().map(|n| n - 1).sum();
    // A confirmation written again (a suppressor killed after it wrote one and before its
    // offset was committed) is absorbed when the auditor's record still holds one outcome of
    // that recipient; one it did not absorb is a duplicate beyond what idempotency covers.
    let unabsorbed = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .filter(|((request, recipient), _)| {
            outcomes_of(records.get(request.as_str()), recipient) != 1
        })
        .count();
    let missing_confirmations = acknowledged
        .iter()
        .flat_map(|id| RuntimePipeline::RECIPIENTS.map(|r| (id.clone(), r.to_owned())))
        .filter(|key| !counts.contains_key(key))
        .count();
    let unacknowledged: BTreeSet<&String> = counts
        .keys()
        .map(|(id, _)| id)
        .filter(|id| !acknowledged.contains(*id))
        .collect();
    let mut notices: BTreeMap<String, usize> = BTreeMap::new();
    for notice in pipeline.webhook.notices() {
        *notices.entry(notice.request_id).or_default() += 1;
    }
    let duplicate_notices: usize = notices.values().map(|n| n - 1).sum();
    let mut by_target: BTreeMap<&str, usize> = BTreeMap::new();
    for fault in &faults {
        *by_target.entry(fault.target.as_str()).or_default() += 1;
    }
    let longest = faults.iter().map(|f| f.down).max().unwrap_or_default();
    let unverified = statuses.get("UNVERIFIED").copied().unwrap_or(0);

    println!("faults soak (seed {}, image {image})", settings.seed);
    println!("  ended                        {ending}");
    println!(
        "  requests submitted           {}  (acknowledged {}; answers refused 503: {}, rate-limited 429: {}, unanswered: {})",
        settings.requests,
        acknowledged.len(),
        submissions.refused,
        submissions.rate_limited,
        submissions.unanswered
    );
    let mut exits_by_service: BTreeMap<(&str, i64), usize> = BTreeMap::new();
    for exit in &exits {
        *exits_by_service
            .entry((exit.service.as_str(), exit.code))
            .or_default() += 1;
    }
    println!(
        "  stopped on their own         {}{}  (started again like the kubelet does; last at {:.1} s)",
        exits.len(),
        exits_by_service
            .iter()
            .map(|((s, code), n)| format!(", {s} ×{n} (exit code {code})"))
            .collect::<String>(),
        exits.last().map_or(0.0, |e| e.at.as_secs_f64())
    );
    println!(
        "  faults                       {} in {:.0} s: {}; longest stop {:.1} s; all ready again at {:.1} s",
        faults.len(),
        submitted_in.as_secs_f64(),
        by_target
            .iter()
            .map(|(t, n)| format!("{t} ×{n}"))
            .collect::<Vec<_>>()
            .join(", "),
        longest.as_secs_f64(),
        repaired_at.as_secs_f64()
    );
    println!(
        "  requests lost                {}  (acknowledged, not complete {} s after the last fault)",
        incomplete.len(),
        settings.drain_timeout.as_secs()
    );
    if confirmations.is_some() {
        println!(
            "  confirmations                missing {missing_confirmations}, duplicate {duplicate_confirmations} (not absorbed by the auditor: {unabsorbed}), of requests never acknowledged {}",
            unacknowledged.len()
        );
    } else {
        println!("  confirmations                unknown (the topic could not be read)");
    }
    println!("  duplicate webhook notices    {duplicate_notices}  (vendor calls repeated; the recipient dedupes by Idempotency-Key)");
    println!(
        "  left UNVERIFIED / PENDING    {unverified} / {}",
        incomplete.len()
    );
    println!(
        "  auditor statuses             {}",
        statuses
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  time to drain                {:.1} s after the last fault ({:.1} s after every service was ready again)",
        (drained_at - last_fault_at).as_secs_f64(),
        drained.as_secs_f64()
    );
    println!(
        "  completion time              p50 {:.1} s, p99 {:.1} s, max {:.1} s (received → last recipient)",
        percentile(0.50),
        percentile(0.99),
        percentile(1.0)
    );
    describe_duplicates(
        confirmations.as_deref().unwrap_or_default(),
        &counts,
        &records,
    );
    keep_logs(&pipeline, &kafka_id, &logs).await;
    Ok(matches!(ending, Ending::Drained)
        && unabsorbed == 0
        && missing_confirmations == 0
        && confirmations.is_some())
}

/// Says, for each request and recipient confirmed more than once (up to ten), what each
/// confirmation said and how many outcomes of that recipient the auditor's record holds (one:
/// the duplicate was absorbed).
fn describe_duplicates(
    confirmations: &[Confirmation],
    counts: &BTreeMap<(String, String), usize>,
    records: &BTreeMap<String, AuditRecord>,
) {
    for ((request, recipient), _) in counts.iter().filter(|(_, n)| **n > 1).take(10) {
        let sent: Vec<String> = confirmations
            .iter()
            .filter(|c| &c.request_id == request && &c.connector_id == recipient)
            .map(|c| {
                format!(
                    "{:?} {:?} attempts {} completed_at {}",
                    c.action, c.verification, c.attempts, c.completed_at
                )
            })
            .collect();
        let record = records.get(request);
        let outcomes = outcomes_of(record, recipient);
        let status = record.map_or_else(|| "(no record)".to_owned(), |r| format!("{:?}", r.status));
        println!(
            "  duplicate                    {request} at {recipient}: [{}]; auditor: {status}, {outcomes} outcome(s) of {recipient}",
            sent.join("; ")
        );
    }
}

/// How many outcomes of `recipient` the auditor's `record` holds (0 without a record).
fn outcomes_of(record: Option<&AuditRecord>, recipient: &str) -> usize {
    record.map_or(0, |r| {
        r.connectors
            .iter()
            .filter(|c| c.connector_id == recipient)
            .count()
    })
}

/// Writes the whole log of the broker's and each service's container (every start of each) to
/// `dir`, and prints where.
async fn keep_logs(pipeline: &RuntimePipeline, kafka_id: &str, dir: &std::path::Path) {
    let mut containers = vec![("broker".to_owned(), kafka_id.to_owned())];
    containers.extend(
        pipeline
            .services
            .iter()
            .map(|s| (s.spec.name.clone(), s.id().to_owned())),
    );
    for (name, id) in containers {
        let path = dir.join(format!("{name}.log"));
        match save_container_log(&id, &path).await {
            Ok(()) => eprintln!("[faults] {name}'s log: {}", path.display()),
            Err(error) => eprintln!("[faults] {name}'s log could not be kept: {error:#}"),
        }
    }
}

fn main() {
    let settings = match parse_args() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("faults: {error}");
            eprintln!(
                "usage: faults [--requests N] [--seed S] [--rate PER_SECOND] [--drain-timeout SECONDS]"
            );
            std::process::exit(2);
        }
    };
    // Submission may overrun its window by the drain timeout, then the repair and the drain
    // share one more; 900 s for starting the containers and reading the topics.
    let budget = settings.drain_timeout * 2
        + Duration::from_secs_f64(settings.requests as f64 / settings.rate)
        + Duration::from_secs(900);
    let passed = Arc::new(AtomicBool::new(false));
    let outcome = passed.clone();
    run_bounded(budget, async move {
        match soak(settings).await {
            Ok(ok) => outcome.store(ok, Ordering::SeqCst),
            Err(error) => eprintln!("faults: {error:#}"),
        }
    });
    std::process::exit(if passed.load(Ordering::SeqCst) { 0 } else { 1 });
}
