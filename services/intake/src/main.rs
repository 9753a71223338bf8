//! `hush-intake`: the HTTP edge of Hush (default 127.0.0.1:8070).

use std::path::PathBuf;

use clap::Parser;
use hush_intake::service::{self, Config};
use hush_runtime::{config, ops, telemetry};

/// Accepts opt-outs, GPC signals, limit requests and verified deletions.
#[derive(Parser)]
#[command(name = "hush-intake", version, about)]
struct Args {
    /// Configuration file (TOML); environment variables override it.
    #[arg(long, env = "HUSH_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = telemetry::init("hush-intake")?;
    let config: Config = config::load(args.config.as_deref())?;
    service::run(config, ops::shutdown_on_signal()).await
}
