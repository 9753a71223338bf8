//! `hush-state`: keeps `hush.suppressions.v1` (compacted, per identifier hash) up to date.

use std::path::PathBuf;

use clap::Parser;
use hush_runtime::ops::{self, Readiness};
use hush_runtime::{config, telemetry};
use hush_state::service::{self, Config};

/// Folds privacy requests into the per-identifier suppression state.
#[derive(Parser)]
#[command(name = "hush-state", version, about)]
struct Args {
    /// Configuration file (TOML); environment variables override it.
    #[arg(long, env = "HUSH_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = telemetry::init("hush-state")?;
    let config: Config = config::load(args.config.as_deref())?;
    let shutdown = ops::shutdown_on_signal();
    let readiness = Readiness::default();
    let http = tokio::spawn(ops::serve(
        config.state.listen.clone(),
        ops::router(readiness.clone()),
        shutdown.clone(),
    ));
    service::run(&config.common, &config.state, readiness, shutdown.clone()).await?;
    shutdown.cancelled().await;
    http.await??;
    Ok(())
}
