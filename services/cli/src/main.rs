//! `hush`: the operator's command line.

mod doctor;
mod topics;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use hush_core::config::{self, CommonConfig};

/// Hush: carry privacy opt-outs and deletions to every downstream system, and prove it.
#[derive(Parser)]
#[command(name = "hush", version, about)]
struct Cli {
    /// Configuration file (TOML); environment variables override it.
    #[arg(long, global = true, env = "HUSH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage Hush's Kafka topics.
    Topics {
        #[command(subcommand)]
        command: topics::TopicsCommand,
    },
    /// Check the broker and the schema registry by round-tripping one synthetic event.
    Doctor,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config: CommonConfig = config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Topics { command } => topics::run(command, &config).await,
        Command::Doctor => doctor::run(&config).await,
    }
}
