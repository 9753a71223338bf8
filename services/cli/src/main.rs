//! `hush`: the operator's command line.

mod dlq;
mod doctor;
mod gate;
mod http;
mod keys;
mod requests;
mod topics;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use hush_runtime::config;

/// Hush: carry privacy opt-outs and deletions to every downstream system, and prove it.
#[derive(Parser)]
#[command(name = "hush", version, about)]
struct Cli {
    /// Configuration file (TOML); environment variables override it.
    #[arg(long, global = true, env = "HUSH_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    endpoints: requests::Endpoints,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Submit a privacy request to intake.
    Submit(requests::Submit),
    /// Show where a request stands, connector by connector.
    Status {
        /// Request id.
        id: String,
        /// Print the auditor's JSON record instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Print the evidence bundle of a request (JSON, with a digest of the record).
    Evidence {
        /// Request id.
        id: String,
    },
    /// Re-drive one recipient of one request once the cause of its permanent failure is fixed.
    Retry {
        /// Request id.
        id: String,
        /// Recipient (connector) id.
        connector: String,
    },
    /// Print the 11 CCR 7102 metrics report.
    Report(requests::Report),
    /// Manage Hush's Kafka topics.
    Topics {
        #[command(subcommand)]
        command: topics::TopicsCommand,
    },
    /// List or replay dead letters.
    Dlq {
        #[command(subcommand)]
        command: dlq::DlqCommand,
    },
    /// Check the broker and the schema registry by round-tripping one synthetic event.
    Doctor,
    /// Try an outbound stream: publish a record, read what the gate let through.
    Gate {
        #[command(subcommand)]
        command: gate::GateCommand,
    },
    /// Make API keys and identity-system signing keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Sign an attestation that a consumer was verified (with a key from `hush keys identity`).
    Attest(keys::Attest),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Keys { command } => return keys::run(command),
        Command::Attest(args) => return keys::attest(args),
        _ => {}
    }
    let config: topics::CliConfig = config::load(cli.config.as_deref())?;
    let endpoints = &cli.endpoints;
    match cli.command {
        Command::Submit(args) => requests::submit(args, endpoints).await,
        Command::Status { id, json } => {
            let record = requests::record(endpoints, &id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else {
                requests::print_status(&record);
            }
            Ok(())
        }
        Command::Evidence { id } => {
            let bundle = requests::evidence(endpoints, &id).await?;
            println!("{}", serde_json::to_string_pretty(&bundle)?);
            Ok(())
        }
        Command::Retry { id, connector } => {
            let answer = requests::retry(endpoints, &id, &connector).await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(())
        }
        Command::Report(args) => requests::report(args, endpoints).await,
        Command::Topics { command } => topics::run(command, &config).await,
        Command::Dlq { command } => dlq::run(command, &config.common).await,
        Command::Doctor => doctor::run(&config.common).await,
        Command::Gate { command } => gate::run(command, &config.common).await,
        Command::Keys { .. } | Command::Attest(_) => unreachable!("handled before the config"),
    }
}
