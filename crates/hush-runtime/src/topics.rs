//! Topic bootstrap: creates the topics of the design with their configurations, leaving
//! existing topics untouched. Topics are created with `min.insync.replicas` 2 when the
//! replication factor allows it (see [`TopicsConfig::effective_min_insync_replicas`]).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, KafkaConfig, TopicsConfig};
use crate::kafka::startup::{transient, transient_code, wait_for_broker_async, StartupError};
use crate::kafka::BrokerErrorContext;

/// 25 months in milliseconds: request records are kept 24 months (11 CCR 7101), plus margin.
const RECORD_RETENTION_MS: &str = "65700000000";

/// A topic Hush needs, with its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Topic-level configuration (e.g. `cleanup.policy`).
    pub config: Vec<(&'static str, &'static str)>,
}

/// The topics of the design: upstream signals, requests, compacted suppression state and the state
/// service's repartition topic (kept as long as the requests it carries), confirmations, the
/// auditor's commands, compacted audit records, leaks, compacted leak-watch progress, canary results (kept as long as the
/// request records they test), and the dead-letter topic (kept indefinitely).
pub fn design_topics(topics: &TopicsConfig) -> Vec<TopicSpec> {
    let kept = vec![("retention.ms", RECORD_RETENTION_MS)];
    let compacted = vec![
        ("cleanup.policy", "compact"),
        ("min.compaction.lag.ms", "60000"),
    ];
    vec![
        TopicSpec {
            name: topics.requests.clone(),
            config: kept.clone(),
        },
        TopicSpec {
            name: topics.signals.clone(),
            config: kept.clone(),
        },
        TopicSpec {
            name: topics.suppressions.clone(),
            config: compacted.clone(),
        },
        TopicSpec {
            name: topics.state_repartition.clone(),
            config: kept.clone(),
        },
        TopicSpec {
            name: topics.confirmations.clone(),
            config: kept.clone(),
        },
        TopicSpec {
            name: topics.auditor_commands.clone(),
            config: kept.clone(),
        },
        TopicSpec {
            name: topics.audit.clone(),
            config: compacted.clone(),
        },
        TopicSpec {
            name: topics.watch.clone(),
            config: compacted,
        },
        TopicSpec {
            name: topics.leaks.clone(),
            config: kept.clone(),
        },
        TopicSpec {
            name: topics.canaries.clone(),
            config: kept,
        },
        TopicSpec {
            name: topics.dlq.clone(),
            config: vec![("retention.ms", "-1")],
        },
    ]
}

/// What [`ensure_topics`] did with each topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    /// Created now.
    Created(String),
    /// Already there; left as it was.
    Existed(String),
}

/// The configuration `spec` is created with: its own, plus `min.insync.replicas` when
/// [`TopicsConfig::effective_min_insync_replicas`] gives one.
fn creation_config(
    topics: &TopicsConfig,
    spec: &TopicSpec,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut config: Vec<(String, String)> = spec
        .config
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    if let Some(min) = topics.effective_min_insync_replicas()? {
        config.retain(|(key, _)| key != "min.insync.replicas");
        config.push(("min.insync.replicas".to_owned(), min.to_string()));
    }
    Ok(config)
}

/// Creates every topic in `specs` that does not exist yet, with its configuration and
/// `min.insync.replicas` where the replication factor allows, in one attempt: a broker that
/// cannot be reached is an error (for `hush topics create` and `hush doctor`, which an operator
/// or a job runs again). The error then ends with librdkafka's last client-wide error (e.g.
/// credentials refused).
pub async fn ensure_topics(
    kafka: &KafkaConfig,
    topics: &TopicsConfig,
    specs: &[TopicSpec],
) -> Result<Vec<TopicOutcome>, ConfigError> {
    let creation = Creation::new(kafka, topics, specs)?;
    let created = Mutex::new(BTreeSet::new());
    Ok(creation.attempt(&created).await?)
}

/// [`ensure_topics`] for a service starting up: while the broker cannot be reached (down,
/// restarting, a topic's leader being elected) the creation is retried with backoff and logged
/// ([`wait_for_broker_async`]), until `stop` is cancelled; a refusal (an invalid configuration,
/// an authorization or credentials error) is an error at once, with its message. A topic
/// created by an attempt that then failed is reported as created.
pub async fn ensure_topics_waiting(
    kafka: &KafkaConfig,
    topics: &TopicsConfig,
    specs: &[TopicSpec],
    stop: &CancellationToken,
) -> Result<Vec<TopicOutcome>, ConfigError> {
    let creation = Creation::new(kafka, topics, specs)?;
    let created = Mutex::new(BTreeSet::new());
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let outcomes = wait_for_broker_async(&format!("create topics {names:?}"), stop, || {
        creation.attempt(&created)
    })
    .await?;
    let created = created.into_inner().expect("created topics lock");
    Ok(outcomes
        .into_iter()
        .map(|outcome| match outcome {
            TopicOutcome::Existed(name) if created.contains(&name) => TopicOutcome::Created(name),
            other => other,
        })
        .collect())
}

/// The topics to create, with the admin client that creates them.
struct Creation<'a> {
    admin: Arc<AdminClient<AdminContext>>,
    specs: &'a [TopicSpec],
    configs: Vec<Vec<(String, String)>>,
    partitions: i32,
    replication_factor: i32,
}

impl<'a> Creation<'a> {
    fn new(
        kafka: &KafkaConfig,
        topics: &TopicsConfig,
        specs: &'a [TopicSpec],
    ) -> Result<Self, ConfigError> {
        let configs = specs
            .iter()
            .map(|spec| creation_config(topics, spec))
            .collect::<Result<Vec<_>, _>>()?;
        let admin: AdminClient<AdminContext> = crate::kafka::client_config(kafka)?
            .create_with_context(AdminContext::default())
            .map_err(|e| ConfigError::Invalid(format!("kafka admin client: {e}")))?;
        Ok(Self {
            admin: Arc::new(admin),
            specs,
            configs,
            partitions: topics.partitions,
            replication_factor: topics.replication_factor,
        })
    }

    /// One attempt: creates the topics that do not exist (adding each one created to
    /// `created`), then waits for every partition's leader.
    async fn attempt(
        &self,
        created: &Mutex<BTreeSet<String>>,
    ) -> Result<Vec<TopicOutcome>, StartupError> {
        let started = Instant::now();
        let new_topics: Vec<NewTopic<'_>> = self
            .specs
            .iter()
            .zip(&self.configs)
            .map(|(spec, config)| {
                config.iter().fold(
                    NewTopic::new(
                        &spec.name,
                        self.partitions,
                        TopicReplication::Fixed(self.replication_factor),
                    ),
                    |topic, (key, value)| topic.set(key, value),
                )
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let context = self.admin.inner().context();
        let results = self
            .admin
            .create_topics(&new_topics, &options)
            .await
            .map_err(|e| {
                classify_failure(
                    &e,
                    format!("create topics: {}", context.broker.explain(&e.to_string())),
                    context.refused_since(started),
                )
            })?;
        let mut outcomes = Vec::new();
        let mut failure: Option<StartupError> = None;
        for result in results {
            let outcome = match result {
                Ok(name) => {
                    let mut created = created.lock().expect("created topics lock");
                    created.insert(name.clone());
                    Ok(TopicOutcome::Created(name))
                }
                Err((name, code)) => topic_outcome(name, code),
            };
            match outcome {
                Ok(outcome) => outcomes.push(outcome),
                // A refusal is reported rather than a topic worth waiting for.
                Err(error) => match failure {
                    Some(StartupError::Refused(_)) => {}
                    _ => failure = Some(error),
                },
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        let admin = self.admin.clone();
        let names: Vec<String> = self.specs.iter().map(|s| s.name.clone()).collect();
        tokio::task::spawn_blocking(move || wait_for_leaders(admin.inner(), &names))
            .await
            .map_err(|e| StartupError::refused(format!("waiting for topic leaders: {e}")))??;
        Ok(outcomes)
    }
}

/// A failed creation request, explained by `message`: worth waiting out when `error` is
/// ([`transient`]), unless the client reported its credentials or TLS handshake refused
/// (`credentials_refused`), which then only surface as a timeout.
fn classify_failure(
    error: &KafkaError,
    message: String,
    credentials_refused: bool,
) -> StartupError {
    if transient(error) && !credentials_refused {
        StartupError::Unreachable(message)
    } else {
        StartupError::refused(message)
    }
}

/// What the broker answered for topic `name`: an existing topic is left as it is, a broker or
/// controller not answering in time is worth waiting out, anything else is refused.
fn topic_outcome(name: String, code: RDKafkaErrorCode) -> Result<TopicOutcome, StartupError> {
    match code {
        RDKafkaErrorCode::TopicAlreadyExists => Ok(TopicOutcome::Existed(name)),
        code if transient_code(code) => Err(StartupError::Unreachable(format!(
            "create topic {name}: {code}"
        ))),
        code => Err(StartupError::refused(format!(
            "create topic {name}: {code}"
        ))),
    }
}

/// Whether a client-wide error says the broker refuses this client (credentials, TLS), not
/// that it is away.
fn refuses_client(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::SSL
    )
}

/// The admin client's context: [`BrokerErrorContext`], and when librdkafka last reported the
/// broker refusing this client ([`refuses_client`]).
#[derive(Clone, Default)]
struct AdminContext {
    broker: BrokerErrorContext,
    refused_at: Arc<Mutex<Option<Instant>>>,
}

impl ClientContext for AdminContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code().is_some_and(refuses_client) {
            *self.refused_at.lock().expect("refusal record poisoned") = Some(Instant::now());
        }
        self.broker.error(error, reason);
    }
}

impl AdminContext {
    /// Whether the broker refused this client at or after `since`.
    fn refused_since(&self, since: Instant) -> bool {
        self.refused_at
            .lock()
            .expect("refusal record poisoned")
            .is_some_and(|at| at >= since)
    }
}

/// How long a new topic may take to get a leader for every partition.
const LEADER_WAIT: Duration = Duration::from_secs(30);

/// Waits until every partition of `names` has a leader, so the first reads and writes after
/// creation do not meet `NotLeaderForPartition`; still without after [`LEADER_WAIT`], the broker
/// counts as unreachable (a leader being elected, a broker restarting).
fn wait_for_leaders<C: ClientContext>(
    client: &Client<C>,
    names: &[String],
) -> Result<(), StartupError> {
    let deadline = Instant::now() + LEADER_WAIT;
    loop {
        let led = names.iter().all(|name| {
            client
                .fetch_metadata(Some(name), Duration::from_secs(5))
                .ok()
                .and_then(|metadata| {
                    metadata.topics().first().map(|topic| {
                        topic.error().is_none()
                            && !topic.partitions().is_empty()
                            && topic
                                .partitions()
                                .iter()
                                .all(|p| p.error().is_none() && p.leader() >= 0)
                    })
                })
                .unwrap_or(false)
        });
        if led {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StartupError::Unreachable(format!(
                "topics {names:?} have no leader for every partition after {LEADER_WAIT:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TopicSpec {
        TopicSpec {
            name: "hush.requests.v1".into(),
            config: vec![("retention.ms", RECORD_RETENTION_MS)],
        }
    }

    fn min_insync(config: &[(String, String)]) -> Option<&str> {
        config
            .iter()
            .find(|(key, _)| key == "min.insync.replicas")
            .map(|(_, value)| value.as_str())
    }

    #[test]
    fn a_single_replica_topic_keeps_the_broker_default() {
        let topics = TopicsConfig::default();
        let config = creation_config(&topics, &spec()).unwrap();
        assert_eq!(min_insync(&config), None);
        assert!(config.contains(&("retention.ms".into(), RECORD_RETENTION_MS.into())));
    }

    #[test]
    fn replicated_topics_need_two_in_sync_replicas() {
        for replication_factor in [2, 3, 5] {
            let topics = TopicsConfig {
                replication_factor,
                ..TopicsConfig::default()
            };
            let config = creation_config(&topics, &spec()).unwrap();
            assert_eq!(min_insync(&config), Some("2"), "rf {replication_factor}");
        }
    }

    #[test]
    fn the_override_is_used_within_the_replication_factor() {
        let topics = TopicsConfig {
            replication_factor: 5,
            min_insync_replicas: Some(3),
            ..TopicsConfig::default()
        };
        let config = creation_config(&topics, &spec()).unwrap();
        assert_eq!(min_insync(&config), Some("3"));
    }

    #[test]
    fn an_override_above_the_replication_factor_is_refused_by_name() {
        let topics = TopicsConfig {
            replication_factor: 3,
            min_insync_replicas: Some(4),
            ..TopicsConfig::default()
        };
        let error = creation_config(&topics, &spec()).unwrap_err().to_string();
        assert!(error.contains("topics.min_insync_replicas = 4"), "{error}");
        assert!(error.contains("topics.replication_factor (3)"), "{error}");
    }

    #[test]
    fn a_broker_not_answering_is_worth_waiting_for() {
        let error = KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut);
        match classify_failure(&error, "create topics: timed out".into(), false) {
            StartupError::Unreachable(message) => assert_eq!(message, "create topics: timed out"),
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }

    #[test]
    fn a_timeout_after_credentials_were_refused_is_a_refusal_with_its_message() {
        let error = KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut);
        let message =
            "create topics: timed out; last broker error 0.1 s ago: SASL authentication error";
        match classify_failure(&error, message.into(), true) {
            StartupError::Refused(error) => assert!(error.to_string().contains(message), "{error}"),
            other => panic!("expected Refused, got {other:?}"),
        }
        let invalid = KafkaError::AdminOp(RDKafkaErrorCode::InvalidConfig);
        assert!(matches!(
            classify_failure(&invalid, "create topics: invalid".into(), false),
            StartupError::Refused(_)
        ));
    }

    #[test]
    fn each_topic_answer_is_kept_waited_for_or_refused() {
        assert_eq!(
            topic_outcome("t".into(), RDKafkaErrorCode::TopicAlreadyExists).unwrap(),
            TopicOutcome::Existed("t".into())
        );
        for code in [
            RDKafkaErrorCode::RequestTimedOut,
            RDKafkaErrorCode::NotController,
            RDKafkaErrorCode::BrokerNotAvailable,
        ] {
            assert!(
                matches!(
                    topic_outcome("t".into(), code),
                    Err(StartupError::Unreachable(ref m)) if m.starts_with("create topic t: ")
                ),
                "{code:?}"
            );
        }
        for code in [
            RDKafkaErrorCode::InvalidReplicationFactor,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::PolicyViolation,
        ] {
            match topic_outcome("t".into(), code) {
                Err(StartupError::Refused(error)) => {
                    assert!(error.to_string().contains("create topic t: "), "{error}")
                }
                other => panic!("{code:?}: expected Refused, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_context_remembers_a_refusal_of_this_client_but_not_a_transport_error() {
        let context = AdminContext::default();
        let before = Instant::now();
        context.error(
            KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure),
            "connect to 127.0.0.1:9092 failed: Connection refused",
        );
        assert!(!context.refused_since(before));
        context.error(
            KafkaError::Global(RDKafkaErrorCode::Authentication),
            "SASL authentication error: invalid credentials",
        );
        assert!(context.refused_since(before));
        std::thread::sleep(Duration::from_millis(2));
        assert!(
            !context.refused_since(Instant::now()),
            "a refusal before an attempt does not count for it"
        );
        let explained = context.broker.explain("create topics: timed out");
        assert!(
            explained.contains("SASL authentication error"),
            "{explained}"
        );
    }

    /// A port nothing listens on, with requests that time out after 1 s.
    fn no_broker() -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: "127.0.0.1:1".into(),
            properties: [("socket.timeout.ms".to_owned(), "1000".to_owned())].into(),
            ..KafkaConfig::default()
        }
    }

    #[tokio::test]
    async fn creation_waits_for_a_broker_that_is_not_there_until_the_stop() {
        let stop = CancellationToken::new();
        let canceller = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(4)).await;
            canceller.cancel();
        });
        let started = Instant::now();
        let error = ensure_topics_waiting(&no_broker(), &TopicsConfig::default(), &[spec()], &stop)
            .await
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() >= Duration::from_secs(4), "{error}");
        // Attempts of 1 s each failed with the broker's timeout and were retried.
        assert!(
            error.contains(
                "stopped while waiting for the broker (create topics [\"hush.requests.v1\"]: \
                 create topics: "
            ) && error.contains("Timed out"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_single_creation_fails_when_there_is_no_broker() {
        let error = ensure_topics(&no_broker(), &TopicsConfig::default(), &[spec()])
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("create topics: "), "{error}");
    }
}
