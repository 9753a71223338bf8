//! A simulator whose route handlers share one state behind a mutex: the server and the state
//! that every vendor simulator's public type holds, started together.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;

use crate::{serve, RunningSim};

/// The state a simulator's handlers share, as axum hands it to them (`State<SharedState<S>>`).
pub type SharedState<S> = Arc<Mutex<S>>;

/// A simulator serving on loopback with the state `S` its handlers share; stops when dropped.
/// Derefs to [`RunningSim`] for its `base_url` and `control`.
pub struct StatefulSim<S> {
    running: RunningSim,
    state: SharedState<S>,
}

impl<S: Send + 'static> StatefulSim<S> {
    /// Serves `routes` on `addr` (port 0 for any free port), their handlers sharing `state`.
    pub async fn serve(
        state: S,
        routes: Router<SharedState<S>>,
        addr: SocketAddr,
    ) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(state));
        let running = serve(routes.with_state(state.clone()), addr).await?;
        Ok(Self { running, state })
    }

    /// The shared state, locked for the caller.
    ///
    /// # Panics
    /// If a handler panicked while holding the lock.
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap()
    }
}

impl<S> std::ops::Deref for StatefulSim<S> {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.running
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::any_loopback_port;
    use axum::extract::State;
    use axum::routing::post;

    #[tokio::test]
    async fn handlers_and_the_owner_share_one_state() {
        let routes = Router::new().route(
            "/count",
            post(|State(count): State<SharedState<u32>>| async move {
                *count.lock().unwrap() += 1;
                "counted"
            }),
        );
        let sim = StatefulSim::serve(0_u32, routes, any_loopback_port())
            .await
            .unwrap();
        let url = format!("{}/count", sim.base_url());
        for _ in 0..2 {
            reqwest::Client::new().post(&url).send().await.unwrap();
        }
        assert_eq!(*sim.lock(), 2);
        assert_eq!(sim.control().calls().len(), 2);
    }
}
