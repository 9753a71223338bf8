//! `hush-suppressor --connector <id>`: applies privacy requests at one recipient.

use std::path::PathBuf;

use clap::Parser;
use hush_runtime::ops::{self, Readiness};
use hush_runtime::{config, telemetry};
use hush_suppressor::config::Config;
use hush_suppressor::service;

/// Applies privacy requests at one downstream recipient and confirms each.
#[derive(Parser)]
#[command(name = "hush-suppressor", version, about)]
struct Args {
    /// Configuration file (TOML) with the `[[recipients]]`; environment variables override it.
    #[arg(long, env = "HUSH_CONFIG")]
    config: Option<PathBuf>,
    /// Id of the recipient this instance serves.
    #[arg(long, env = "HUSH_CONNECTOR")]
    connector: String,
    /// Address of `/healthz`, `/readyz`, `/metrics` (overrides `[suppressor] listen`).
    #[arg(long, env = "HUSH_SUPPRESSOR_LISTEN")]
    listen: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = telemetry::init("hush-suppressor")?;
    let mut config: Config = config::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.suppressor.listen = listen;
    }
    let shutdown = ops::shutdown_on_signal();
    let readiness = Readiness::default();
    let http = tokio::spawn(ops::serve(
        config.suppressor.listen.clone(),
        ops::router(readiness.clone()),
        shutdown.clone(),
    ));
    let result = service::run(&config, &args.connector, readiness, shutdown.clone()).await;
    shutdown.cancel();
    http.await??;
    result
}
