//! `hush-denylist`: serves the enrichment deny-list rebuilt from `hush.suppressions.v1`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use hush_auth::{guard, Authenticator};
use hush_denylist::{api, Config, DenyList};
use hush_runtime::ops::{self, Readiness};
use hush_runtime::{config, telemetry};

/// Serves the enrichment deny-list: who must never be sent to, or enriched by, an enrichment
/// vendor.
#[derive(Parser)]
#[command(name = "hush-denylist", version, about)]
struct Args {
    /// Configuration file (TOML); environment variables override it.
    #[arg(long, env = "HUSH_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = telemetry::init("hush-denylist")?;
    let config: Config = config::load(args.config.as_deref())?;
    config.auth.validate()?;
    config.http.validate()?;
    let shutdown = ops::shutdown_on_signal();
    let auth = Arc::new(Authenticator::new(&config.auth, shutdown.clone()).await?);
    let readiness = Readiness::default();
    let deny_list = Arc::new(DenyList::new());
    readiness.require("deny-list rebuilt", deny_list.rebuilt_flag());
    readiness.started();
    let api = api::router(deny_list.clone(), config.api_settings(), auth);
    let app = ops::router(readiness).merge(guard::harden(api, &config.http));
    let http = tokio::spawn(ops::serve(
        config.denylist.listen.clone(),
        app,
        shutdown.clone(),
    ));
    deny_list
        .rebuild_and_follow(&config.common, shutdown.clone())
        .await?;
    shutdown.cancelled().await;
    http.await??;
    Ok(())
}
