//! The operations endpoints every service serves: `/healthz`, `/readyz`, `/metrics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, TextEncoder};

type Conditions = Arc<std::sync::Mutex<Vec<(&'static str, Arc<AtomicBool>)>>>;

/// Readiness conditions; the service is ready when every one is true. A fresh `Readiness`
/// holds one condition, "started", which the service sets with [`Readiness::started`] once it
/// has registered all its other conditions, so it never looks ready half-wired.
#[derive(Clone)]
pub struct Readiness {
    conditions: Conditions,
    started: Arc<AtomicBool>,
}

impl Default for Readiness {
    fn default() -> Self {
        let started = Arc::new(AtomicBool::new(false));
        Self {
            conditions: Arc::new(std::sync::Mutex::new(vec![("started", started.clone())])),
            started,
        }
    }
}

impl Readiness {
    /// Marks the service wired: every condition it needs is registered.
    pub fn started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    /// Adds a named condition (e.g. `consumer assigned`, `state rebuilt`).
    pub fn require(&self, name: &'static str, flag: Arc<AtomicBool>) {
        self.conditions
            .lock()
            .expect("readiness lock")
            .push((name, flag));
    }

    /// Names of the conditions not yet met.
    pub fn unmet(&self) -> Vec<&'static str> {
        self.conditions
            .lock()
            .expect("readiness lock")
            .iter()
            .filter(|(_, flag)| !flag.load(Ordering::SeqCst))
            .map(|(name, _)| *name)
            .collect()
    }
}

/// Routes for `/healthz` (alive), `/readyz` (503 with the unmet conditions until ready) and
/// `/metrics` (Prometheus text format).
pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let unmet = readiness.unmet();
                async move {
                    if unmet.is_empty() {
                        (StatusCode::OK, "ready".to_string())
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {}", unmet.join(", ")),
                        )
                    }
                }
            }),
        )
        .route("/metrics", get(metrics))
}

async fn metrics() -> impl IntoResponse {
    let mut body = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(error) = encoder.encode(&prometheus::gather(), &mut body) {
        return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response();
    }
    (
        [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
        body,
    )
        .into_response()
}

/// A token cancelled on SIGTERM or SIGINT.
pub fn shutdown_on_signal() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler installs");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown signal received");
        trigger.cancel();
    });
    token
}

/// Serves `router` on `listen` until `shutdown` is cancelled, with each request's peer address
/// available as `ConnectInfo<SocketAddr>` (per-IP rate limits read it).
pub async fn serve(
    listen: String,
    router: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    tracing::info!(%listen, "http listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_until_started_and_every_condition_holds() {
        let readiness = Readiness::default();
        assert_eq!(readiness.unmet(), vec!["started"]);
        let assigned = Arc::new(AtomicBool::new(false));
        readiness.require("consumer assigned", assigned.clone());
        readiness.started();
        assert_eq!(readiness.unmet(), vec!["consumer assigned"]);
        assigned.store(true, Ordering::SeqCst);
        assert!(readiness.unmet().is_empty());
    }
}
