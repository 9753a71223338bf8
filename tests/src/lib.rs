//! Fixture for the integration tests: a real Kafka broker and schema registry, with topics
//! unique to each test. Which broker, in this order:
//! 1. `KAFKA_BOOTSTRAP_SERVERS` (and `SCHEMA_REGISTRY_URL`) set: those;
//! 2. a Docker engine answers: containers started by the `testcontainers` crate, one set per
//!    test binary, removed when it exits (see [`containers`]);
//! 3. otherwise the JVM stack of `deploy/local/stack up` on its default ports.
//!
//! The Kafka security test always starts a broker of its own, reachable only over `SASL_SSL`
//! (see [`secure_kafka`]); it needs a Docker engine.

pub mod auth;
pub mod containers;
pub mod pipeline;
pub mod postgres;
pub mod secure_kafka;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hush_runtime::codec::AvroCodec;
use hush_runtime::config::{KafkaConfig, TopicsConfig};
use hush_runtime::kafka::{DeadLetterQueue, EventProducer};
use hush_runtime::topics::{design_topics, ensure_topics, TopicSpec};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// The real stack the tests run against.
#[derive(Clone)]
pub struct Stack {
    /// Kafka settings pointing at the broker.
    pub kafka: KafkaConfig,
    /// Confluent-compatible registry base URL.
    pub registry_url: String,
    /// The containers behind it, when testcontainers started them.
    pub containers: Option<Arc<containers::Containers>>,
}

const HOW_TO_START: &str = "integration tests need a real Kafka broker and schema registry: \
run `make test` (it builds the test images and starts Docker), or start a Docker engine after \
`deploy/testcontainers/images up`, or export KAFKA_BOOTSTRAP_SERVERS and SCHEMA_REGISTRY_URL";

impl Stack {
    /// The stack for this test binary (see the module documentation for the order); panics
    /// with instructions when none can be had. The first call may take a while (containers
    /// start); every later call in the same process returns the same stack.
    pub fn from_env() -> Stack {
        static SHARED: OnceLock<Result<Stack, String>> = OnceLock::new();
        SHARED
            .get_or_init(Self::select)
            .clone()
            .unwrap_or_else(|error| panic!("{error}\n{HOW_TO_START}"))
    }

    fn select() -> Result<Stack, String> {
        if let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP_SERVERS") {
            let registry = std::env::var("SCHEMA_REGISTRY_URL")
                .map_err(|_| "KAFKA_BOOTSTRAP_SERVERS is set but SCHEMA_REGISTRY_URL is not")?;
            containers::announce(&format!(
                "using the broker named by KAFKA_BOOTSTRAP_SERVERS={bootstrap}, registry {registry}"
            ));
            return Ok(Stack::at(&bootstrap, &registry, None));
        }
        if containers::engine().is_some() {
            let set = containers::Containers::start(&binary_label())
                .map_err(|e| format!("testcontainers could not start the stack: {e:#}"))?;
            let set = Arc::new(set);
            return Ok(Stack::at(
                &set.bootstrap.clone(),
                &set.registry_url.clone(),
                Some(set),
            ));
        }
        containers::announce(
            "no Docker engine answers: starting the JVM stack (deploy/local/stack up)",
        );
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/local/stack");
        let status = std::process::Command::new(script)
            .arg("up")
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("{script}: {e}"))?;
        if !status.success() {
            return Err(format!("{script} up failed: {status}"));
        }
        Ok(Stack::at(
            "127.0.0.1:9092",
            "http://127.0.0.1:8081/apis/ccompat/v7",
            None,
        ))
    }

    /// A stack of its own: a broker and a registry started by testcontainers for the caller
    /// alone (fault tests stop and pause them), removed when the last clone is dropped.
    pub fn own_containers(label: &str) -> Stack {
        let set = containers::Containers::start(label).unwrap_or_else(|e| {
            panic!("testcontainers could not start the stack: {e:#}\n{HOW_TO_START}")
        });
        let set = Arc::new(set);
        Stack::at(&set.bootstrap.clone(), &set.registry_url.clone(), Some(set))
    }

    fn at(
        bootstrap: &str,
        registry: &str,
        containers: Option<Arc<containers::Containers>>,
    ) -> Stack {
        Stack {
            kafka: KafkaConfig {
                bootstrap_servers: bootstrap.to_owned(),
                ..KafkaConfig::default()
            },
            registry_url: registry.trim_end_matches('/').to_owned(),
            containers,
        }
    }

    /// Topic names unique to one test run, so tests never see each other's events.
    pub fn unique_topics(&self, test: &str) -> TopicsConfig {
        let suffix = format!("{test}.{}", uuid::Uuid::new_v4().simple());
        TopicsConfig {
            requests: format!("it.requests.{suffix}"),
            signals: format!("it.signals.{suffix}"),
            suppressions: format!("it.suppressions.{suffix}"),
            state_repartition: format!("it.state-repartition.{suffix}"),
            confirmations: format!("it.confirmations.{suffix}"),
            auditor_commands: format!("it.auditor-commands.{suffix}"),
            audit: format!("it.audit.{suffix}"),
            leaks: format!("it.leaks.{suffix}"),
            watch: format!("it.watch.{suffix}"),
            dlq: format!("it.dlq.{suffix}"),
            canaries: format!("it.canaries.{suffix}"),
            retry_prefix: format!("it.retry.{suffix}"),
            partitions: 3,
            replication_factor: 1,
            min_insync_replicas: None,
        }
    }

    /// Creates the design's topics under `topics`' names.
    pub async fn create_topics(&self, topics: &TopicsConfig) {
        ensure_topics(&self.kafka, topics, &design_topics(topics))
            .await
            .expect("topics created");
    }

    /// Creates extra topics with `topics`' partition settings.
    pub async fn create_extra_topics(&self, topics: &TopicsConfig, names: &[String]) {
        let specs: Vec<TopicSpec> = names
            .iter()
            .map(|name| TopicSpec {
                name: name.clone(),
                config: vec![],
            })
            .collect();
        ensure_topics(&self.kafka, topics, &specs)
            .await
            .expect("topics created");
    }

    /// A codec on the registry.
    pub fn codec(&self) -> AvroCodec {
        AvroCodec::new(&self.registry_url)
    }

    /// An idempotent producer.
    pub fn producer(&self) -> EventProducer {
        EventProducer::new(&self.kafka, self.codec(), "hush-tests").expect("producer")
    }

    /// A dead-letter writer to `topics.dlq`.
    pub fn dlq(&self, topics: &TopicsConfig) -> DeadLetterQueue {
        DeadLetterQueue::new(self.producer(), topics.dlq.clone(), "hush-tests")
    }

    /// Reads every record of `topic` from the beginning until `expected` were read or
    /// `timeout` passed.
    pub fn read_all(&self, topic: &str, expected: usize, timeout: Duration) -> Vec<RawRecord> {
        self.read(topic, expected, timeout, "read_uncommitted")
    }

    /// Like [`Stack::read_all`], but sees only committed transactions (what a consumer of a
    /// gate's destination sees).
    pub fn read_committed(
        &self,
        topic: &str,
        expected: usize,
        timeout: Duration,
    ) -> Vec<RawRecord> {
        self.read(topic, expected, timeout, "read_committed")
    }

    fn read(
        &self,
        topic: &str,
        expected: usize,
        timeout: Duration,
        isolation: &str,
    ) -> Vec<RawRecord> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka.bootstrap_servers)
            .set("group.id", format!("it-reader-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("isolation.level", isolation)
            .create()
            .expect("reader");
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let mut assignment = TopicPartitionList::new();
        for partition in metadata.topics()[0].partitions() {
            assignment
                .add_partition_offset(topic, partition.id(), Offset::Beginning)
                .expect("assign");
        }
        consumer.assign(&assignment).expect("assign");
        let deadline = std::time::Instant::now() + timeout;
        let mut records = Vec::new();
        while records.len() < expected && std::time::Instant::now() < deadline {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
                records.push(RawRecord {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().map(<[u8]>::to_vec),
                    headers: message
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    (
                                        h.key.to_owned(),
                                        String::from_utf8_lossy(h.value.unwrap_or_default())
                                            .into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
        }
        records
    }
}

/// The test binary's name without cargo's hash (`pipeline-0123abcd` → `pipeline`).
fn binary_label() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let stem = exe
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("tests")
        .to_owned();
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
        _ => stem,
    }
    .replace('_', "-")
}

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Payload.
    pub payload: Option<Vec<u8>>,
    /// Headers as text.
    pub headers: Vec<(String, String)>,
}

impl RawRecord {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}
