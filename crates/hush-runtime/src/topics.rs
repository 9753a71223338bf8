//! Topic bootstrap: creates the topics of the design with their configurations, leaving
//! existing topics untouched. Topics are created with `min.insync.replicas` 2 when the
//! replication factor allows it (see [`TopicsConfig::effective_min_insync_replicas`]).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::{ConfigError, KafkaConfig, TopicsConfig};
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
/// `min.insync.replicas` where the replication factor allows. When the
/// broker cannot be reached, the error ends with librdkafka's last client-wide error (e.g.
/// credentials refused).
pub async fn ensure_topics(
    kafka: &KafkaConfig,
    topics: &TopicsConfig,
    specs: &[TopicSpec],
) -> Result<Vec<TopicOutcome>, ConfigError> {
    let configs = specs
        .iter()
        .map(|spec| creation_config(topics, spec))
        .collect::<Result<Vec<_>, _>>()?;
    let admin: AdminClient<BrokerErrorContext> = crate::kafka::client_config(kafka)?
        .create_with_context(BrokerErrorContext::default())
        .map_err(|e| ConfigError::Invalid(format!("kafka admin client: {e}")))?;
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .zip(&configs)
        .map(|(spec, config)| {
            config.iter().fold(
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
        .map_err(|e| {
            ConfigError::Invalid(format!(
                "create topics: {}",
                admin.inner().context().explain(&e.to_string())
            ))
        })?;
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
}
