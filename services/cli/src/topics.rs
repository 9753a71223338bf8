//! `hush topics`: create the topics of the design and of the gate's configured streams.

use clap::Subcommand;
use hush_contracts::canary::CanarySection;
use hush_contracts::gate::GateSection;
use hush_contracts::recipients::RecipientConfig;
use hush_runtime::config::CommonConfig;
use hush_runtime::topics::{design_topics, ensure_topics, TopicOutcome, TopicSpec};
use serde::{Deserialize, Serialize};

/// The sections of the configuration file the command line reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CliConfig {
    /// Kafka, registry, topics.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// The gate's streams, whose topics `hush topics create` creates too.
    #[serde(default)]
    pub gate: GateSection,
    /// The canary's synthetic subjects and settings (`hush canary run`).
    #[serde(default)]
    pub canary: CanarySection,
    /// The recipients, which the canary's subjects name.
    #[serde(default)]
    pub recipients: Vec<RecipientConfig>,
}

/// Topic commands.
#[derive(Subcommand)]
pub enum TopicsCommand {
    /// Create every topic Hush uses, and the gate's configured sources, destinations and
    /// watched egress topics (existing topics are left untouched).
    Create,
}

/// Runs a topic command.
pub async fn run(command: TopicsCommand, config: &CliConfig) -> anyhow::Result<()> {
    let (common, gate) = (&config.common, &config.gate);
    match command {
        TopicsCommand::Create => {
            let mut specs = design_topics(&common.topics);
            let gate_topics = gate
                .streams
                .iter()
                .flat_map(|s| [s.source.clone(), s.destination.clone()])
                .chain(gate.watch.iter().map(|w| w.topic.clone()));
            for name in gate_topics {
                if !specs.iter().any(|s| s.name == name) {
                    specs.push(TopicSpec {
                        name,
                        config: vec![],
                    });
                }
            }
            for outcome in ensure_topics(&common.kafka, &common.topics, &specs).await? {
                match outcome {
                    TopicOutcome::Created(name) => println!("created  {name}"),
                    TopicOutcome::Existed(name) => println!("exists   {name}"),
                }
            }
            Ok(())
        }
    }
}
