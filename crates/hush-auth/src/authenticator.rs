//! Turns a request's `Authorization` header into a [`Caller`] with scopes.

use std::collections::{BTreeSet, HashMap};

use axum::http::{header, HeaderMap, StatusCode};
use hush_runtime::api_error::ApiError;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::AuthConfig;
use crate::jwks::{KeySetError, TokenError, TokenVerifier};
use crate::keys::api_key_sha256;
use crate::scope::Scope;

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// No credentials: the configured anonymous scopes.
    Anonymous,
    /// A configured API key.
    ApiKey,
    /// A JWT from the configured issuer.
    Jwt,
}

/// An authenticated (or anonymous) caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Client name (`anonymous` without credentials), recorded as the actor.
    pub client: String,
    /// What it may do.
    pub scopes: BTreeSet<Scope>,
    /// How it proved it.
    pub credential: Credential,
}

impl Caller {
    /// Whether the caller holds `scope` (directly or through `auditor:admin`).
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|held| held.grants(scope))
    }

    /// `Ok` when the caller holds `scope`; otherwise 401 for an anonymous caller (credentials
    /// would help) and 403 `insufficient_scope` for an authenticated one.
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        match (self.has(scope), self.credential) {
            (true, _) => Ok(()),
            (false, Credential::Anonymous) => Err(AuthError::Missing { needed: scope }),
            (false, _) => Err(AuthError::Scope {
                client: self.client.clone(),
                needed: scope,
            }),
        }
    }
}

/// Why a caller was refused. Converts into Hush's JSON error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials, and anonymous callers lack the scope.
    #[error("authentication required (scope {needed})")]
    Missing {
        /// The scope the endpoint needs.
        needed: Scope,
    },
    /// The `Authorization` header is neither `Bearer <API key or JWT>` nor `Basic` with an API
    /// key as the password.
    #[error("the Authorization header is not `Bearer <API key or JWT>` (or Basic with the API key as password)")]
    Scheme,
    /// The API key is not configured.
    #[error("unknown API key")]
    UnknownKey,
    /// The JWT was refused.
    #[error("{0}")]
    Token(TokenError),
    /// A JWT was presented but no issuer is configured.
    #[error("bearer tokens are not accepted here (no [auth.jwt] issuer configured)")]
    NoIssuer,
    /// Authenticated, but without the scope.
    #[error("client `{client}` lacks the scope {needed}")]
    Scope {
        /// The caller.
        client: String,
        /// The scope the endpoint needs.
        needed: Scope,
    },
}

impl AuthError {
    /// The JSON error answer (401 or 403).
    pub fn to_api_error(&self) -> ApiError {
        match self {
            AuthError::Missing { needed } => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                format!("send `Authorization: Bearer <API key or JWT>` with the scope {needed}"),
            ),
            AuthError::Scope { .. } => ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                self.to_string(),
            ),
            AuthError::Token(TokenError::Expired) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "token_expired", self.to_string())
            }
            _ => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                self.to_string(),
            ),
        }
    }
}

/// The password of a `Basic` credential (a browser's login prompt for the dashboard: any user
/// name, the API key as password).
fn basic_password(credential: &str) -> Result<String, AuthError> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credential)
        .map_err(|_| AuthError::Scheme)?;
    let text = String::from_utf8(decoded).map_err(|_| AuthError::Scheme)?;
    let (_, password) = text.split_once(':').ok_or(AuthError::Scheme)?;
    Ok(password.to_owned())
}

#[derive(Debug, Clone)]
struct KeyHolder {
    client: String,
    scopes: BTreeSet<Scope>,
}

/// Verifies API keys and JWTs against `[auth]`.
#[derive(Clone)]
pub struct Authenticator {
    keys: HashMap<String, KeyHolder>,
    jwt: Option<(TokenVerifier, String, String)>,
    anonymous: BTreeSet<Scope>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("api_keys", &self.keys.len())
            .field("jwt", &self.jwt.is_some())
            .field("anonymous", &self.anonymous)
            .finish()
    }
}

impl Authenticator {
    /// Builds the authenticator (fetching the JWKS once if configured by URL; refreshed until
    /// `shutdown`). `config` must have passed [`AuthConfig::validate`].
    pub async fn new(
        config: &AuthConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, KeySetError> {
        let keys = config
            .api_keys
            .iter()
            .map(|key| {
                (
                    key.sha256.to_ascii_lowercase(),
                    KeyHolder {
                        client: key.client.clone(),
                        scopes: key.scopes.iter().copied().collect(),
                    },
                )
            })
            .collect();
        let jwt = match &config.jwt {
            Some(jwt) => Some((
                TokenVerifier::load(
                    &jwt.keys,
                    &jwt.issuer,
                    Some(&jwt.audience),
                    jwt.leeway_secs,
                    &jwt.algorithms,
                    shutdown,
                )
                .await?,
                jwt.scope_claim.clone(),
                jwt.client_claim.clone(),
            )),
            None => None,
        };
        if config.api_keys.is_empty() && config.jwt.is_none() {
            tracing::warn!(
                "no [[auth.api_keys]] and no [auth.jwt] configured: only anonymous scopes are \
                 served, every other endpoint answers 401"
            );
        }
        Ok(Self {
            keys,
            jwt,
            anonymous: config.anonymous_scopes.iter().copied().collect(),
        })
    }

    /// The caller `headers` prove, or why they prove nothing. No `Authorization` header gives
    /// the anonymous caller.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(Caller {
                client: "anonymous".into(),
                scopes: self.anonymous.clone(),
                credential: Credential::Anonymous,
            });
        };
        let value = value.to_str().map_err(|_| AuthError::Scheme)?;
        let (scheme, credential) = value.split_once(' ').ok_or(AuthError::Scheme)?;
        let credential = credential.trim();
        if credential.is_empty() {
            return Err(AuthError::Scheme);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            return self.caller_of_key(&basic_password(credential)?);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Scheme);
        }
        if credential.split('.').count() == 3 {
            self.caller_of_token(credential)
        } else {
            self.caller_of_key(credential)
        }
    }

    fn caller_of_key(&self, key: &str) -> Result<Caller, AuthError> {
        let holder = self
            .keys
            .get(&api_key_sha256(key))
            .ok_or(AuthError::UnknownKey)?;
        Ok(Caller {
            client: holder.client.clone(),
            scopes: holder.scopes.clone(),
            credential: Credential::ApiKey,
        })
    }

    fn caller_of_token(&self, token: &str) -> Result<Caller, AuthError> {
        let (verifier, scope_claim, client_claim) = self.jwt.as_ref().ok_or(AuthError::NoIssuer)?;
        let claims: serde_json::Map<String, Value> =
            verifier.verify(token).map_err(AuthError::Token)?;
        let scopes = match claims.get(scope_claim) {
            Some(Value::String(text)) => text.split_whitespace().filter_map(Scope::parse).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .filter_map(Scope::parse)
                .collect(),
            _ => BTreeSet::new(),
        };
        let client = claims
            .get(client_claim)
            .and_then(Value::as_str)
            .unwrap_or("jwt")
            .to_owned();
        Ok(Caller {
            client,
            scopes,
            credential: Credential::Jwt,
        })
    }
}
