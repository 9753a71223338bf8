//! Google's OAuth 2.0 token endpoint as the Google API simulators serve it: the refresh-token
//! grant checked the way Google checks it (grant type, client id and secret, refresh token),
//! access tokens that expire, and the bearer check every simulated Google API makes. One copy
//! for every Google simulator, because it is one Google endpoint; test and demo
//! infrastructure, never a real Google service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::Form;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Json;
use hush_connector_kit::oauth::{AccessTokens, ClientCredentials};
use serde_json::json;

/// The OAuth client a simulated Google account honours.
#[derive(Debug, Clone)]
pub struct GoogleOAuthClient {
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// The one refresh token the endpoint honours.
    pub refresh_token: String,
    /// Lifetime of issued access tokens (`expires_in`, whole seconds, at least 1).
    pub token_lifetime: Duration,
}

impl GoogleOAuthClient {
    /// The credentials a connector must hold to be honoured by this client's endpoint.
    pub fn client_credentials(&self) -> ClientCredentials {
        ClientCredentials {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.as_str().into(),
            refresh_token: self.refresh_token.as_str().into(),
        }
    }

    /// An access token the simulated endpoint at `token_url` issues to this client, exchanged
    /// over HTTP as a connector exchanges it (the kit's refresh-token grant), for raw calls to
    /// a simulator; panics when the endpoint refuses.
    pub async fn access_token(&self, token_url: &str) -> String {
        AccessTokens::new(self.client_credentials().grant(token_url))
            .get(&reqwest::Client::new())
            .await
            .expect("the simulated token endpoint issues a token")
    }
}

/// The client every Google simulator honours unless told otherwise.
impl Default for GoogleOAuthClient {
    fn default() -> Self {
        Self {
            client_id: "sim-client-id.apps.googleusercontent.com".into(),
            client_secret: "sim-client-secret".into(),
            refresh_token: "1//sim-refresh-token".into(),
            token_lifetime: Duration::from_secs(3_599),
        }
    }
}

/// The access tokens one simulated token endpoint issued, with their expiry; cheap to clone.
#[derive(Clone)]
pub struct GoogleTokens {
    state: Arc<Mutex<Issued>>,
}

struct Issued {
    client: GoogleOAuthClient,
    scope: &'static str,
    prefix: &'static str,
    count: u64,
    expiry: HashMap<String, Instant>,
}

impl GoogleTokens {
    /// An endpoint honouring `client`, granting `scope`; tokens are `<prefix><n>`, n counting
    /// from 1.
    pub fn new(client: GoogleOAuthClient, scope: &'static str, prefix: &'static str) -> Self {
        Self {
            state: Arc::new(Mutex::new(Issued {
                client,
                scope,
                prefix,
                count: 0,
                expiry: HashMap::new(),
            })),
        }
    }

    /// The token endpoint (`POST`, form-encoded refresh-token grant), to mount on a router.
    pub fn endpoint<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        let tokens = self.clone();
        post(move |Form(form): Form<HashMap<String, String>>| {
            let tokens = tokens.clone();
            async move { tokens.grant(&form) }
        })
    }

    /// Makes every access token issued so far expire now.
    pub fn expire_all(&self) {
        let now = Instant::now();
        for expiry in self.lock().expiry.values_mut() {
            *expiry = now;
        }
    }

    /// Access tokens issued so far.
    pub fn issued(&self) -> u64 {
        self.lock().count
    }

    /// Whether `headers` carry `Authorization: Bearer <token>` with a token this endpoint issued
    /// and that has not expired.
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        bearer
            .and_then(|token| self.lock().expiry.get(token).copied())
            .is_some_and(|expiry| Instant::now() < expiry)
    }

    fn grant(&self, form: &HashMap<String, String>) -> Response {
        let mut state = self.lock();
        let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
        if field("grant_type") != "refresh_token" {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("Invalid grant_type: {}", field("grant_type")),
            );
        }
        if field("client_id") != state.client.client_id
            || field("client_secret") != state.client.client_secret
        {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The OAuth client was not found.",
            );
        }
        if field("refresh_token") != state.client.refresh_token {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Token has been expired or revoked.",
            );
        }
        state.count += 1;
        let value = format!("{}{}", state.prefix, state.count);
        let lifetime = state.client.token_lifetime.max(Duration::from_secs(1));
        state
            .expiry
            .insert(value.clone(), Instant::now() + lifetime);
        Json(json!({
            "access_token": value,
            "expires_in": lifetime.as_secs(),
            "scope": state.scope,
            "token_type": "Bearer"
        }))
        .into_response()
    }

    fn lock(&self) -> MutexGuard<'_, Issued> {
        self.state.lock().unwrap()
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(lifetime: Duration) -> GoogleTokens {
        GoogleTokens::new(
            GoogleOAuthClient {
                client_id: "id".into(),
                client_secret: "secret".into(),
                refresh_token: "refresh".into(),
                token_lifetime: lifetime,
            },
            "https://www.googleapis.com/auth/example",
            "ya29.test-",
        )
    }

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        headers
    }

    const GRANT: &[(&str, &str)] = &[
        ("grant_type", "refresh_token"),
        ("client_id", "id"),
        ("client_secret", "secret"),
        ("refresh_token", "refresh"),
    ];

    #[test]
    fn a_valid_grant_issues_a_numbered_token_that_expires_on_demand() {
        let tokens = tokens(Duration::from_secs(60));
        assert_eq!(tokens.grant(&form(GRANT)).status(), StatusCode::OK);
        assert_eq!(tokens.issued(), 1);
        assert!(tokens.accepts(&bearer("ya29.test-1")));
        assert!(!tokens.accepts(&bearer("ya29.test-2")));
        assert!(!tokens.accepts(&HeaderMap::new()));
        tokens.expire_all();
        assert!(!tokens.accepts(&bearer("ya29.test-1")));
    }

    #[test]
    fn a_wrong_grant_client_or_refresh_token_is_refused_as_google_does() {
        let tokens = tokens(Duration::from_secs(60));
        let with = |key: &str, value: &'static str| {
            let mut pairs = form(GRANT);
            pairs.insert(key.into(), value.into());
            tokens.grant(&pairs).status()
        };
        assert_eq!(with("grant_type", "password"), StatusCode::BAD_REQUEST);
        assert_eq!(with("client_secret", "other"), StatusCode::UNAUTHORIZED);
        assert_eq!(with("refresh_token", "revoked"), StatusCode::BAD_REQUEST);
        assert_eq!(tokens.issued(), 0);
    }
}
