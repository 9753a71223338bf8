//! `hush topics`: create the topics of the design.

use clap::Subcommand;
use hush_runtime::config::CommonConfig;
use hush_runtime::topics::{design_topics, ensure_topics, TopicOutcome};

/// Topic commands.
#[derive(Subcommand)]
pub enum TopicsCommand {
    /// Create every topic Hush uses (existing topics are left untouched).
    Create,
}

/// Runs a topic command.
pub async fn run(command: TopicsCommand, config: &CommonConfig) -> anyhow::Result<()> {
    match command {
        TopicsCommand::Create => {
            let specs = design_topics(&config.topics);
            for outcome in ensure_topics(&config.kafka, &config.topics, &specs).await? {
                match outcome {
                    TopicOutcome::Created(name) => println!("created  {name}"),
                    TopicOutcome::Existed(name) => println!("exists   {name}"),
                }
            }
            Ok(())
        }
    }
}
