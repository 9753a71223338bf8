//! `hush-simulators`: demo infrastructure. Starts a simulator of every vendor API Hush talks to
//! (never a real vendor) on loopback, prepares the demo schema on the local PostgreSQL server
//! named by `HUSH_DEMO_POSTGRES_URL`, writes the Hush configuration that points at them, and
//! logs every call the simulators receive until SIGTERM or SIGINT.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use hush_runtime::{ops, telemetry};
use hush_simulators::{start_all, write_atomically, DemoPostgres, DEMO_SCHEMA, POSTGRES_URL_VAR};

/// DEMO INFRASTRUCTURE, not a vendor: runs simulators of the webhook recipient, HubSpot,
/// Salesforce, Meta Custom Audiences, LinkedIn DMP segments, Google Customer Match (the Data
/// Manager API, and the Google Ads API for allowlisted accounts), Segment, Google Analytics,
/// Amplitude, Mixpanel, Braze, Klaviyo, Mailchimp, Snowflake, BigQuery, TikTok audiences and
/// The Trade Desk on 127.0.0.1 for
/// `make demo`, and seeds a demo schema on the real local PostgreSQL server.
#[derive(Parser)]
#[command(
    name = "hush-simulators",
    version,
    about = "Demo infrastructure: starts SIMULATORS of every vendor API Hush talks to (never real \
             vendors) on 127.0.0.1 and writes the Hush configuration that points at them.",
    long_about = "Demo infrastructure: starts SIMULATORS of every vendor API Hush talks to \
                  (webhook recipient, HubSpot, Salesforce, Meta Custom Audiences, LinkedIn DMP \
                  segments, Google Customer Match through the Data Manager API and \
                  the Google Ads API, Segment, Google Analytics, Amplitude, Mixpanel, Braze, \
                  Klaviyo, Mailchimp, Snowflake, BigQuery, TikTok audiences, The Trade Desk) on \
                  127.0.0.1 with ephemeral ports, \
                  seeds them with the demo consumers, creates a `customers` table in a demo schema (dropped first) \
                  on the REAL PostgreSQL server whose connection string is in \
                  HUSH_DEMO_POSTGRES_URL (deploy/local/postgres up prints it), and writes a \
                  complete Hush configuration whose [[recipients]] point at them. No real \
                  vendor is ever called. The configuration file appears (atomically) only once \
                  every simulator listens. Runs until SIGTERM or SIGINT, logging one line per call received \
                  (method, path with emails redacted, status; never bodies)."
)]
struct Args {
    /// Where to write the Hush configuration (the base configuration plus one
    /// `[[recipients]]` block per simulator).
    #[arg(long, value_name = "PATH")]
    write_config: PathBuf,
    /// Where to write `export VAR=value` lines with the simulators' fake credentials.
    #[arg(long, value_name = "PATH")]
    env_file: Option<PathBuf>,
    /// A Hush configuration (kafka, registry, topics, service sections) to copy in front of the
    /// generated recipients.
    #[arg(long, value_name = "PATH")]
    base_config: Option<PathBuf>,
    /// Schema of the demo `customers` table on the PostgreSQL server; dropped and re-created.
    #[arg(long, value_name = "NAME", default_value = DEMO_SCHEMA)]
    postgres_schema: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = telemetry::init("hush-simulators")?;
    let base = args
        .base_config
        .as_ref()
        .map(|path| {
            std::fs::read_to_string(path)
                .with_context(|| format!("reading --base-config {}", path.display()))
        })
        .transpose()?;
    let url = std::env::var(POSTGRES_URL_VAR).with_context(|| {
        format!(
            "{POSTGRES_URL_VAR} must hold the connection string of the demo's PostgreSQL server: \
             export {POSTGRES_URL_VAR}=\"$(deploy/local/postgres up)\" (deploy/local/demo does)"
        )
    })?;
    let postgres = DemoPostgres {
        url,
        schema: args.postgres_schema,
    };
    let shutdown = ops::shutdown_on_signal();
    let running = start_all(base.as_deref(), &postgres).await?;
    if let Some(path) = &args.env_file {
        write_atomically(path, &running.env_file())
            .with_context(|| format!("writing --env-file {}", path.display()))?;
    }
    write_atomically(&args.write_config, &running.config_toml)
        .with_context(|| format!("writing --write-config {}", args.write_config.display()))?;
    tracing::info!(
        config = %args.write_config.display(),
        "every simulator is listening; configuration written"
    );
    running.log_calls_until(shutdown).await;
    Ok(())
}
