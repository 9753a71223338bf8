//! A set of signing keys (JWKS) from a file or an HTTPS URL, refreshed in the background, and
//! JWT validation against it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::config::KeySourceConfig;

/// Why a key set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    /// The file could not be read.
    #[error("cannot read the JWKS file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The URL could not be fetched.
    #[error("cannot fetch the JWKS from {url}: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The document is not a JWKS.
    #[error("{origin} is not a JWKS document: {reason}")]
    Parse {
        /// File or URL.
        origin: String,
        /// Why.
        reason: String,
    },
}

/// Why a token was not accepted; each message is safe to return to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or its header cannot be read.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// Signed with an algorithm not accepted here.
    #[error("the token's algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    /// No key of the set has the token's `kid` (or the set is empty).
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// Issued for someone else.
    #[error("the token's audience is not this service")]
    Audience,
    /// Issued by someone else.
    #[error("the token's issuer is not the configured one")]
    Issuer,
    /// Signature does not verify.
    #[error("the token's signature does not verify")]
    Signature,
    /// Any other validation failure (missing claim, `nbf` in the future…).
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

/// A JWKS and the rules a token signed by it must meet.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<RwLock<JwkSet>>,
    validation: Validation,
    algorithms: Vec<Algorithm>,
}

impl TokenVerifier {
    /// Loads the keys (fetching a URL once now) and, for a URL, refreshes them every
    /// `jwks_refresh_secs` until `shutdown`.
    pub async fn load(
        source: &KeySourceConfig,
        issuer: &str,
        audience: Option<&str>,
        leeway_secs: u64,
        algorithms: &[Algorithm],
        shutdown: CancellationToken,
    ) -> Result<Self, KeySetError> {
        let keys = Arc::new(RwLock::new(fetch(source).await?));
        if let Some(url) = source.jwks_url.clone() {
            let keys = keys.clone();
            let every = Duration::from_secs(source.jwks_refresh_secs.max(10));
            let source = source.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(every) => {}
                    }
                    match fetch(&source).await {
                        Ok(fresh) => *keys.write().expect("jwks lock") = fresh,
                        Err(error) => {
                            tracing::warn!(%url, %error, "JWKS refresh failed; keeping the keys held")
                        }
                    }
                }
            });
        }
        let mut validation = Validation::new(algorithms.first().copied().unwrap_or_default());
        validation.algorithms = algorithms.to_vec();
        validation.leeway = leeway_secs;
        validation.set_issuer(&[issuer]);
        match audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            }
            None => {
                validation.validate_aud = false;
                validation.set_required_spec_claims(&["exp", "iss"]);
            }
        }
        Ok(Self {
            keys,
            validation,
            algorithms: algorithms.to_vec(),
        })
    }

    /// Verifies `token`'s signature and standard claims, and returns its claims.
    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<C, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if !self.algorithms.contains(&header.alg) {
            return Err(TokenError::Algorithm(header.alg));
        }
        let key = {
            let keys = self.keys.read().expect("jwks lock");
            let jwk = match &header.kid {
                Some(kid) => keys.find(kid),
                None if keys.keys.len() == 1 => keys.keys.first(),
                None => None,
            };
            let jwk = jwk.ok_or(TokenError::UnknownKey)?;
            DecodingKey::from_jwk(jwk).map_err(|_| TokenError::UnknownKey)?
        };
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        jsonwebtoken::decode::<C>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|error| {
                use jsonwebtoken::errors::ErrorKind;
                match error.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::InvalidAudience => TokenError::Audience,
                    ErrorKind::InvalidIssuer => TokenError::Issuer,
                    ErrorKind::InvalidSignature => TokenError::Signature,
                    ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) => {
                        TokenError::Malformed
                    }
                    other => TokenError::Invalid(format!("{other:?}")),
                }
            })
    }
}

async fn fetch(source: &KeySourceConfig) -> Result<JwkSet, KeySetError> {
    let (origin, text) = match (&source.jwks_file, &source.jwks_url) {
        (Some(path), _) => (
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|source| KeySetError::File {
                path: path.display().to_string(),
                source,
            })?,
        ),
        (None, Some(url)) => {
            let fetch_error = |reason: String| KeySetError::Fetch {
                url: url.clone(),
                reason,
            };
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| fetch_error(e.without_url().to_string()))?;
            let response = client
                .get(url)
                .send()
                .await
                .map_err(|e| fetch_error(e.without_url().to_string()))?;
            if !response.status().is_success() {
                return Err(fetch_error(format!("HTTP {}", response.status())));
            }
            let text = response
                .text()
                .await
                .map_err(|e| fetch_error(e.without_url().to_string()))?;
            (url.clone(), text)
        }
        (None, None) => {
            return Err(KeySetError::Parse {
                origin: "the configuration".into(),
                reason: "no jwks_url or jwks_file".into(),
            })
        }
    };
    serde_json::from_str(&text).map_err(|e| KeySetError::Parse {
        origin,
        reason: e.to_string(),
    })
}
