//! `make scale`: loads N suppression states (`SCALE_N`, default 10 million) onto a fresh
//! `hush.suppressions.v1`-shaped compacted topic of the real broker, then rebuilds from it, each
//! in a process of its own: the state service's table (`hush_state::service::run`) once as the
//! only replica (every partition) and once sharing the group with another member (half the
//! partitions), the deny-list (`DenyList::follow_topic`) and the gate's index
//! (`hush_suppression_state::follow`). For each it prints the rebuild time, the resident memory
//! after the rebuild (`VmRSS` of `/proc/self/status`, and its growth during the rebuild per
//! identifier held), the heap of the lookup set per identifier held, and single-thread lookups
//! per second (1 million, half of them loaded). The topics are deleted at the end.
//!
//! `cargo run --release -p hush-tests --bin scale` with `KAFKA_BOOTSTRAP_SERVERS` and
//! `SCHEMA_REGISTRY_URL` exported (`make scale` does both). Not part of `make test`.

use std::process::{Command, ExitCode};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hush_contracts::events::{IdentifierType, MinorStatus, SuppressionState};
use hush_contracts::identifiers::sha256_hex;
use hush_denylist::denylist::{DenyList, IdentifierValue};
use hush_runtime::config::{CommonConfig, RegistryConfig, TopicsConfig};
use hush_runtime::kafka::client_config;
use hush_runtime::ops::Readiness;
use hush_runtime::topics::{ensure_topics, TopicSpec};
use hush_state::service::StateSection;
use hush_state::table::StateTable;
use hush_suppression_state::follow::{self, Follower};
use hush_suppression_state::SuppressionLookup;
use hush_tests::Stack;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

/// Whether a service holds an identifier hash.
type Contains = Box<dyn Fn(&str) -> bool>;

/// What a rebuilt service holds: its lookup set's heap, a lookup, and how many identifiers.
type Rebuilt = (Option<usize>, Contains, usize);

/// Lookups timed per service.
const LOOKUPS: usize = 1_000_000;
/// Partitions of the scale topic.
const PARTITIONS: i32 = 6;

/// The hash of identifier number `i`; numbers from `n` on are never loaded.
fn hash_of(i: usize) -> String {
    sha256_hex(&format!("scale-{i}@example.com"))
}

/// The state loaded for identifier number `i`: every one opted out, every tenth deleted.
fn state_of(i: usize, hash: String) -> SuppressionState {
    SuppressionState {
        identifier_hash: hash.clone(),
        identifier_type: IdentifierType::Email,
        subject_key: hash,
        sale_share_opted_out: true,
        sensitive_limited: i.is_multiple_of(3),
        deleted: i.is_multiple_of(10),
        effective_at: 1_767_225_600_000 + i as i64,
        resolicit_after: Some(1_798_761_600_000),
        minor_status: MinorStatus::NotMinor,
        last_request_id: uuid::Uuid::from_u128(i as u128).to_string(),
        updated_at: 1_767_225_600_000 + i as i64,
        synthetic: false,
    }
}

/// The hashes looked up: every second one loaded, the others not.
fn lookups(n: usize) -> Vec<String> {
    (0..LOOKUPS)
        .map(|j| {
            if j.is_multiple_of(2) {
                hash_of((j.wrapping_mul(2_654_435_761)) % n)
            } else {
                hash_of(n + j)
            }
        })
        .collect()
}

/// `VmRSS` and `VmHWM` of this process, in bytes.
fn resident() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn common(stack: &Stack, suppressions: &str) -> CommonConfig {
    CommonConfig {
        kafka: stack.kafka.clone(),
        schema_registry: RegistryConfig {
            url: stack.registry_url.clone(),
            ..Default::default()
        },
        topics: TopicsConfig {
            suppressions: suppressions.to_owned(),
            requests: format!("{suppressions}.requests"),
            state_repartition: format!("{suppressions}.repartition"),
            partitions: PARTITIONS,
            replication_factor: 1,
            ..TopicsConfig::default()
        },
    }
}

/// Produces `n` states keyed by identifier hash; returns the seconds it took.
async fn load(stack: &Stack, topic: &str, n: usize) -> f64 {
    let codec = stack.codec();
    let producer: FutureProducer = client_config(&stack.kafka)
        .expect("kafka config")
        .set("linger.ms", "50")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let started = Instant::now();
    let mut pending = Vec::with_capacity(50_000);
    for i in 0..n {
        let hash = hash_of(i);
        let payload = codec
            .encode(topic, &state_of(i, hash.clone()))
            .await
            .expect("state encodes");
        let record = FutureRecord::to(topic).key(&hash).payload(&payload);
        pending.push(
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("queued"),
        );
        if pending.len() >= 50_000 {
            for delivery in pending.drain(..) {
                delivery.await.expect("delivered").expect("delivered");
            }
        }
        if i > 0 && i % 1_000_000 == 0 {
            eprintln!(
                "  {i} states loaded ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    for delivery in pending {
        delivery.await.expect("delivered").expect("delivered");
    }
    started.elapsed().as_secs_f64()
}

/// Lookups per second of `get` over `keys`, and how many were found.
fn lookup_rate(keys: &[String], get: impl Fn(&str) -> bool) -> (f64, usize) {
    let started = Instant::now();
    let found = keys.iter().filter(|key| get(key)).count();
    (keys.len() as f64 / started.elapsed().as_secs_f64(), found)
}

/// Starts the state service and waits until its partitions are restored.
async fn state_replica(
    common: &CommonConfig,
    group_id: String,
    stop: &CancellationToken,
) -> Arc<StateTable> {
    let section = StateSection {
        listen: "127.0.0.1:0".into(),
        group_id,
    };
    let table = hush_state::service::run(common, &section, Readiness::default(), stop.clone())
        .await
        .expect("state service started");
    table
        .restored()
        .wait_for(|restored| *restored)
        .await
        .expect("state restored");
    table
}

/// A member of `group_id` that takes its share of the state service's partitions and holds
/// nothing, so the replica measured owns half of them. It is polled on a task of its own until
/// the process ends, so it takes part in every rebalance.
async fn idle_member(common: &CommonConfig, group_id: &str) {
    let member: StreamConsumer = client_config(&common.kafka)
        .expect("kafka config")
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .create()
        .expect("idle member");
    member
        .subscribe(&[&common.topics.requests, &common.topics.state_repartition])
        .expect("subscribed");
    let member = Arc::new(member);
    let polled = member.clone();
    // Polling is what keeps it in the group; nothing is ever produced to these topics.
    tokio::spawn(async move { while polled.recv().await.is_ok() {} });
    let deadline = Instant::now() + Duration::from_secs(60);
    while member.assignment().map_or(0, |a| a.count()) == 0 {
        assert!(Instant::now() < deadline, "idle member never assigned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The state service's table, rebuilt with every partition or (`half`) sharing the group.
async fn state(
    common: &CommonConfig,
    group_id: String,
    stop: &CancellationToken,
    half: bool,
) -> Rebuilt {
    let table = state_replica(common, group_id, stop).await;
    if half {
        assert_eq!(
            table.partitions().len(),
            PARTITIONS as usize / 2,
            "the replica owns half the partitions"
        );
    }
    let held = table.len();
    (
        Some(table.heap_bytes()),
        Box::new(move |hash| table.get(hash).is_some()),
        held,
    )
}

/// One service's rebuild, in this (child) process; prints one `result` line.
async fn child(service: &str, topic: &str, n: usize) {
    let stack = Stack::from_env();
    let common = common(&stack, topic);
    let stop = CancellationToken::new();
    let group_id = format!("scale-state-{}", uuid::Uuid::new_v4().simple());
    if service == "state-half" {
        // In the group before the clock starts: the rebuild timed is the replica's own.
        idle_member(&common, &group_id).await;
    }
    let (rss_before, _) = resident();
    let started = Instant::now();
    let (heap, get, held): Rebuilt = match service {
        "state" => {
            let rebuilt = state(&common, group_id, &stop, false).await;
            assert_eq!(rebuilt.2, n, "state holds every identifier");
            rebuilt
        }
        "state-half" => state(&common, group_id, &stop, true).await,
        "denylist" => {
            let list = DenyList::follow_topic(&common, stop.clone())
                .await
                .expect("deny-list rebuilt");
            assert_eq!(list.len(), n, "the deny-list holds every identifier");
            let heap = list.heap_bytes();
            (
                Some(heap),
                Box::new(move |hash| {
                    let lookup = [(
                        IdentifierType::Email,
                        IdentifierValue::Sha256(hash.to_owned()),
                    )];
                    !list.check(&lookup).expect("decided").allowed
                }),
                n,
            )
        }
        "gate" => {
            let codec = hush_runtime::codec::AvroCodec::from_config(&common.schema_registry)
                .expect("codec");
            let lookup = Arc::new(SuppressionLookup::default());
            let follower = Follower {
                client_id: "hush-scale-gate",
                identifiers: prometheus::IntGauge::new("scale_identifiers", "held").expect("gauge"),
            };
            let (mut ready, task) = follow::start(
                &common,
                &codec,
                follower,
                lookup.clone(),
                Arc::new(AtomicBool::new(false)),
                stop.clone(),
            );
            tokio::spawn(task);
            ready
                .wait_for(|rebuilt| *rebuilt)
                .await
                .expect("gate index rebuilt");
            assert_eq!(lookup.len(), n, "the gate holds every identifier");
            let heap = lookup.heap_bytes();
            (
                Some(heap),
                Box::new(move |hash| lookup.get(hash).is_some()),
                n,
            )
        }
        other => panic!("unknown service {other}"),
    };
    let rebuild_secs = started.elapsed().as_secs_f64();
    let (rss, peak) = resident();
    let keys = lookups(n);
    let (rate, found) = lookup_rate(&keys, get);
    if held == n {
        assert_eq!(found, LOOKUPS / 2, "present keys found, absent ones not");
    } else {
        assert!(
            found > 0 && found < LOOKUPS / 2,
            "only the owned keys found"
        );
    }
    stop.cancel();
    println!(
        "result {service} {rebuild_secs:.2} {rss} {peak} {} {} {rate:.0} {held}",
        rss.saturating_sub(rss_before),
        heap.map_or("-".to_owned(), |h| h.to_string()),
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    if let [_, flag, service, topic, n] = args.as_slice() {
        if flag == "--child" {
            let n = n.parse().expect("n");
            runtime.block_on(child(service, topic, n));
            return ExitCode::SUCCESS;
        }
    }
    let n: usize = match std::env::var("SCALE_N").map(|v| v.parse()) {
        Err(_) => 10_000_000,
        Ok(Ok(n)) if n > 0 => n,
        Ok(_) => {
            eprintln!("SCALE_N must be a positive number of identifiers");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(parent(n))
}

async fn parent(n: usize) -> ExitCode {
    let stack = Stack::from_env();
    let topic = format!("scale.suppressions.{}", uuid::Uuid::new_v4().simple());
    let common = common(&stack, &topic);
    ensure_topics(
        &stack.kafka,
        &common.topics,
        &[
            TopicSpec {
                name: topic.clone(),
                config: vec![("cleanup.policy", "compact")],
            },
            TopicSpec {
                name: common.topics.requests.clone(),
                config: vec![],
            },
            TopicSpec {
                name: common.topics.state_repartition.clone(),
                config: vec![],
            },
        ],
    )
    .await
    .expect("scale topics created");
    eprintln!("loading {n} suppression states onto {topic} ({PARTITIONS} partitions)");
    let load_secs = load(&stack, &topic, n).await;
    eprintln!("loaded in {load_secs:.1} s; rebuilding each service in a process of its own");

    let mut rows = Vec::new();
    let mut failed = false;
    for service in ["state", "state-half", "denylist", "gate"] {
        let output = Command::new(std::env::current_exe().expect("own path"))
            .args(["--child", service, &topic, &n.to_string()])
            .output()
            .expect("child started");
        let stdout = String::from_utf8_lossy(&output.stdout);
        match stdout.lines().find_map(|l| l.strip_prefix("result ")) {
            Some(line) if output.status.success() => rows.push(line.to_owned()),
            _ => {
                failed = true;
                eprintln!(
                    "{service} failed ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
    }
    delete_topics(
        &stack,
        &[
            &topic,
            &common.topics.requests,
            &common.topics.state_repartition,
        ],
    )
    .await;

    println!(
        "\nmake scale: {n} suppression states, loaded through the broker in {load_secs:.1} s ({:.0} states/s)\n",
        n as f64 / load_secs
    );
    println!("| service | identifiers held | rebuild | resident after rebuild (peak) | RSS growth per identifier held | lookup set heap per identifier held | lookups/s (1 thread) |");
    println!("|---|---|---|---|---|---|---|");
    for row in &rows {
        let f: Vec<&str> = row.split_whitespace().collect();
        let mib = |s: &str| s.parse::<f64>().unwrap_or(0.0) / 1_048_576.0;
        let held = f[7].parse::<f64>().unwrap_or(n as f64);
        let per = |s: &str| {
            s.parse::<f64>()
                .map_or("-".to_owned(), |b| format!("{:.1} B", b / held))
        };
        println!(
            "| {} | {} | {} s | {:.0} MiB ({:.0} MiB) | {} | {} | {} |",
            f[0],
            f[7],
            f[1],
            mib(f[2]),
            mib(f[3]),
            per(f[4]),
            per(f[5]),
            f[6]
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Deletes the scale topics, so 10 million states do not stay on the broker's disk.
async fn delete_topics(stack: &Stack, topics: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = client_config(&stack.kafka)
        .expect("kafka config")
        .create()
        .expect("admin client");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    match admin.delete_topics(topics, &options).await {
        Ok(results) => {
            for result in results {
                if let Err((topic, error)) = result {
                    eprintln!("could not delete {topic}: {error}");
                }
            }
        }
        Err(error) => eprintln!("could not delete the scale topics: {error}"),
    }
}
