//! `hush-auditor`: reconciles requests against confirmations, serves the request API, the
//! 11 CCR 7102 report and the dashboard (default 127.0.0.1:8071).

use std::path::PathBuf;

use clap::Parser;
use hush_auditor::service::{self, Config};
use hush_runtime::ops::{self, Readiness};
use hush_runtime::{config, telemetry};

/// Audits every privacy request against its connectors' confirmations and legal deadline.
#[derive(Parser)]
#[command(name = "hush-auditor", version, about)]
struct Args {
    /// Configuration file (TOML); environment variables override it.
    #[arg(long, env = "HUSH_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = telemetry::init("hush-auditor")?;
    let config: Config = config::load(args.config.as_deref())?;
    service::run(config, Readiness::default(), ops::shutdown_on_signal()).await
}
