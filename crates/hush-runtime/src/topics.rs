//! Topic bootstrap: creates the topics of the design with their configurations, leaving
//! existing topics untouched.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::{ConfigError, KafkaConfig, TopicsConfig};

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

/// The topics of the design: upstream signals, requests, compacted suppression state, confirmations, compacted
/// audit records, leaks, compacted leak-watch progress, and the dead-letter topic (kept
/// indefinitely).
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
            name: topics.confirmations.clone(),
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

/// Creates every topic in `specs` that does not exist yet.
pub async fn ensure_topics(
    kafka: &KafkaConfig,
    topics: &TopicsConfig,
    specs: &[TopicSpec],
) -> Result<Vec<TopicOutcome>, ConfigError> {
    let admin: AdminClient<DefaultClientContext> = crate::kafka::client_config(kafka)?
        .create()
        .map_err(|e| ConfigError::Invalid(format!("kafka admin client: {e}")))?;
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .map(|spec| {
            spec.config.iter().fold(
                NewTopic::new(
                    &spec.name,
                    topics.partitions,
                    TopicReplication::Fixed(topics.replication_factor),
                ),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(|e| ConfigError::Invalid(format!("create topics: {e}")))?;
    let outcomes = results
        .into_iter()
        .map(|result| match result {
            Ok(name) => Ok(TopicOutcome::Created(name)),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => Ok(TopicOutcome::Existed(name)),
            Err((name, code)) => Err(ConfigError::Invalid(format!("create topic {name}: {code}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    tokio::task::spawn_blocking(move || wait_for_leaders(admin.inner(), &names))
        .await
        .map_err(|e| ConfigError::Invalid(format!("waiting for topic leaders: {e}")))??;
    Ok(outcomes)
}

/// How long a new topic may take to get a leader for every partition.
const LEADER_WAIT: Duration = Duration::from_secs(30);

/// Waits until every partition of `names` has a leader, so the first reads and writes after
/// creation do not meet `NotLeaderForPartition`.
fn wait_for_leaders<C: rdkafka::client::ClientContext>(
    client: &rdkafka::client::Client<C>,
    names: &[String],
) -> Result<(), ConfigError> {
    let deadline = std::time::Instant::now() + LEADER_WAIT;
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
        if std::time::Instant::now() >= deadline {
            return Err(ConfigError::Invalid(format!(
                "topics {names:?} have no leader for every partition after {LEADER_WAIT:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
