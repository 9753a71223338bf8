//! What every simulated Google API serves besides its own routes: Google's token endpoint at
//! `/token` and the access tokens it issued, which contract tests expire and count
//! ([`SimulatedTokens`]). Test and demo infrastructure, never a real Google service.

use std::net::SocketAddr;

use axum::Router;
use hush_connector_kit::testing::google::SimulatedTokens;

use crate::google_oauth::GoogleTokens;
use crate::{serve, RunningSim};

/// Where a simulated Google API serves its token endpoint.
pub const TOKEN_PATH: &str = "/token";

/// A simulated Google API serving on loopback with its token endpoint; stops when dropped.
/// Dereferences to the [`RunningSim`] (base URL, faults and call records).
pub struct GoogleApiSim {
    running: RunningSim,
    tokens: GoogleTokens,
}

impl GoogleApiSim {
    /// Serves `api` on `addr` (port 0 for any free port), with the token endpoint of `tokens`
    /// at [`TOKEN_PATH`].
    pub async fn serve(
        api: Router,
        tokens: GoogleTokens,
        addr: SocketAddr,
    ) -> std::io::Result<Self> {
        let router = api.route(TOKEN_PATH, tokens.endpoint());
        let running = serve(router, addr).await?;
        Ok(Self { running, tokens })
    }

    /// The token endpoint (`settings.token_url` of the recipient).
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.running.base_url())
    }

    /// Makes every access token issued so far expire now.
    pub fn expire_tokens(&self) {
        self.tokens.expire_all();
    }

    /// Access tokens issued so far.
    pub fn tokens_issued(&self) -> u64 {
        self.tokens.issued()
    }

    /// Calls to paths starting with `api_prefix` answered `401`: the access tokens the API
    /// rejected.
    pub fn rejected_calls_to(&self, api_prefix: &str) -> usize {
        self.running
            .control()
            .calls_to(api_prefix)
            .iter()
            .filter(|call| call.status == 401)
            .count()
    }
}

impl SimulatedTokens for GoogleApiSim {
    fn expire_tokens(&self) {
        GoogleApiSim::expire_tokens(self);
    }

    fn tokens_issued(&self) -> u64 {
        GoogleApiSim::tokens_issued(self)
    }

    fn rejected_calls_to(&self, api_prefix: &str) -> usize {
        GoogleApiSim::rejected_calls_to(self, api_prefix)
    }
}

impl std::ops::Deref for GoogleApiSim {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.running
    }
}
