//! Wiring: rebuild the suppression index, then enforce every configured stream and run the
//! leak watch over the destinations and the observed egress.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use hush_contracts::gate::GateSection;
use hush_runtime::codec::AvroCodec;
use hush_runtime::config::{CommonConfig, ConfigError};
use hush_runtime::kafka::EventProducer;
use hush_runtime::ops::Readiness;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::stream::{self, StreamRuntime, SERVICE};
use crate::watch::{self, WatchRuntime, WatchedTopic};
use hush_suppression_state::follow::{self, Follower};
use hush_suppression_state::SuppressionLookup;

/// Configuration of the gate: the common sections plus `[gate]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    /// Kafka, registry, topics.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// Streams and watched egress.
    #[serde(default)]
    pub gate: GateSection,
}

impl Config {
    /// Checks the gate section; a gate with nothing to enforce or watch is a mistake.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.gate.validate()?;
        if self.gate.streams.is_empty() && self.gate.watch.is_empty() {
            return Err(ConfigError::Invalid(
                "gate: configure at least one [[gate.streams]] or [[gate.watch]]".into(),
            ));
        }
        Ok(())
    }
}

/// Which parts of the gate this process runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Enforcement and the leak watch.
    #[default]
    All,
    /// Enforcement only (scale it by replicas).
    Enforce,
    /// The leak watch only (one replica).
    Watch,
}

/// Runs the gate until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    mode: Mode,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.validate()?;
    let common = &config.common;
    let section = &config.gate;
    let codec = AvroCodec::from_config(&common.schema_registry)?;
    let lookup = Arc::new(SuppressionLookup::default());
    let rebuilt = Arc::new(AtomicBool::new(false));
    readiness.require("suppression index rebuilt", rebuilt.clone());
    readiness.started();
    // Owned by this future: when it is dropped (a killed gate), every task stops with it.
    let mut tasks = tokio::task::JoinSet::new();
    let (mut ready, index) = follow::start(
        common,
        &codec,
        Follower {
            client_id: SERVICE,
            identifiers: crate::metrics::SUPPRESSED_IDENTIFIERS.clone(),
        },
        lookup.clone(),
        rebuilt,
        shutdown.clone(),
    );
    tasks.spawn(async move {
        if let Err(error) = index.await {
            tracing::error!(%error, "the suppression index stopped following its topic");
        }
    });
    // Never decide a record before the index holds every suppression written before the start.
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        changed = ready.wait_for(|rebuilt| *rebuilt) => {
            if changed.is_err() {
                anyhow::bail!("the suppression index could not be rebuilt (see the log)");
            }
        }
    }
    if mode != Mode::Watch {
        let runtime = StreamRuntime {
            kafka: common.kafka.clone(),
            codec: codec.clone(),
            lookup: lookup.clone(),
            dlq_topic: common.topics.dlq.clone(),
            group_id: section.group_id.clone(),
            instance_id: section.instance_id.clone().unwrap_or_else(host_name),
            transaction_timeout: Duration::from_millis(section.transaction_timeout_ms),
            max_batch: section.max_batch,
        };
        for configured in &section.streams {
            tasks.spawn(stream::run(
                runtime.clone(),
                configured.clone(),
                shutdown.clone(),
            ));
        }
    }
    if mode != Mode::Enforce {
        let producer = EventProducer::new(&common.kafka, codec.clone(), SERVICE)?;
        let mut last = watch::last_progress(common, &codec).await?;
        let runtime = WatchRuntime {
            common: common.clone(),
            codec: codec.clone(),
            producer,
            lookup: lookup.clone(),
        };
        let watched = section
            .streams
            .iter()
            .map(WatchedTopic::destination_of)
            .chain(section.watch.iter().map(WatchedTopic::egress));
        for topic in watched {
            let (runtime, stop) = (runtime.clone(), shutdown.clone());
            let resume = last.remove(&topic.topic);
            tasks.spawn(async move {
                let name = topic.topic.clone();
                while !stop.is_cancelled() {
                    match watch::run(runtime.clone(), topic.clone(), resume.clone(), stop.clone())
                        .await
                    {
                        Ok(()) => return,
                        Err(error) => {
                            tracing::warn!(%error, topic = %name, "leak watch failed; restarting");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            });
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// The host name, the default replica id (stable across restarts of a pod or a machine).
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|name| name.trim().to_owned())
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "hush-gate".into())
}
