//! What the tests of Google connectors share: the OAuth client their configuration tests hold,
//! and the check that a connector renews an access token Google rejected
//! ([`assert_rejected_token_renewed_once`]) against any simulated Google API
//! ([`SimulatedTokens`]).

use hush_contracts::connector::{Completion, Connector, Operation, SuppressionWork};

use crate::oauth::ClientCredentials;
use crate::testing::RejectedToken;

/// OAuth client credentials for configuration tests: each secret ends in `-value`, so a test
/// can check that none reaches `Debug` output.
pub fn oauth_client_credentials() -> ClientCredentials {
    ClientCredentials {
        client_id: "id".into(),
        client_secret: "oauth-client-secret-value".into(),
        refresh_token: "oauth-refresh-token-value".into(),
    }
}

/// A simulated Google token endpoint and the API behind it, as a contract test drives them.
pub trait SimulatedTokens {
    /// Makes every access token issued so far expire now.
    fn expire_tokens(&self);
    /// Access tokens issued so far.
    fn tokens_issued(&self) -> u64;
    /// Calls to paths starting with `api_prefix` answered `401`: the tokens the API rejected.
    fn rejected_calls_to(&self, api_prefix: &str) -> usize;
}

/// [`RejectedToken`] against simulator `sim`: panics unless `connector` applies `sample` under
/// `operation` with one token and, once every token has expired, with exactly one new token,
/// its call to `api_prefix` rejected and repeated once. Answers the second completion.
pub async fn assert_rejected_token_renewed_once(
    connector: &dyn Connector,
    operation: Operation,
    sample: &dyn Fn() -> SuppressionWork,
    sim: &dyn SimulatedTokens,
    api_prefix: &str,
) -> Completion {
    RejectedToken {
        connector,
        operation,
        sample,
        expire: &|| sim.expire_tokens(),
        issued: &|| sim.tokens_issued(),
        rejected: &|| sim.rejected_calls_to(api_prefix),
    }
    .run()
    .await
}
