//! `hush-gate`: enforces suppression on outbound streams and watches egress for leaks.

use std::path::PathBuf;

use clap::Parser;
use hush_gate::service::{self, Config, Mode};
use hush_runtime::ops::{self, Readiness};
use hush_runtime::{config, telemetry};

/// Enforces suppression on the business's outbound streams and watches egress for leaks.
#[derive(Parser)]
#[command(name = "hush-gate", version, about)]
struct Args {
    /// Configuration file (TOML); environment variables override it.
    #[arg(long, env = "HUSH_CONFIG")]
    config: Option<PathBuf>,
    /// Which parts to run: enforcement and the leak watch, or one of them.
    #[arg(long, value_enum, default_value_t = Mode::All, env = "HUSH_GATE_MODE")]
    mode: Mode,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = telemetry::init("hush-gate")?;
    let config: Config = config::load(args.config.as_deref())?;
    let shutdown = ops::shutdown_on_signal();
    let readiness = Readiness::default();
    let http = tokio::spawn(ops::serve(
        config.gate.listen.clone(),
        ops::router(readiness.clone()),
        shutdown.clone(),
    ));
    let result = service::run(config, args.mode, readiness, shutdown.clone()).await;
    shutdown.cancel();
    http.await??;
    result
}
