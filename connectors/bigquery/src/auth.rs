//! OAuth 2.0 access tokens for the BigQuery API, from one of two sources:
//!
//! - a refresh token (the kit's [`AccessTokens`]), for an OAuth client the business authorised;
//! - a service-account key (the JSON key file Google issues): the connector signs a JWT
//!   (RS256, `iss` the service account's `client_email`, `scope` BigQuery's, `aud` the token
//!   endpoint, one hour) and exchanges it at the token endpoint with the
//!   `urn:ietf:params:oauth:grant-type:jwt-bearer` grant (RFC 7523), as Google documents for
//!   server-to-server applications.
//!
//! Either token is cached until shortly before it expires and dropped when BigQuery refuses it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rsa::KeyPair;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hush_connector_kit::http::send;
use hush_connector_kit::jwt;
use hush_connector_kit::oauth::{classify_token_answer, AccessTokens};
use hush_contracts::connector::ConnectorError;
use serde_json::Value;
use tokio::sync::Mutex;

/// The OAuth scope the connector asks for: read and write BigQuery data and run jobs.
pub const BIGQUERY_SCOPE: &str = "https://www.googleapis.com/auth/bigquery";
/// The grant type of a signed JWT assertion (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of the assertion (Google accepts at most one hour).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(3_600);
/// Longest safety margin before a token's expiry at which it is exchanged anew.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Why a service-account key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not the JSON of a key file.
    #[error("does not hold a service-account key file (JSON with type \"service_account\", client_email and private_key)")]
    NotAKeyFile,
    /// The `private_key` is not an RSA PKCS#8 PEM key.
    #[error("holds a private_key that is not an RSA PKCS#8 PEM key: {0}")]
    BadPrivateKey(String),
}

/// The parts of a service-account key file the connector uses.
pub struct ServiceAccountKey {
    /// `client_email`: the assertion's issuer.
    pub client_email: String,
    /// `private_key_id`: the assertion's `kid`.
    pub private_key_id: Option<String>,
    /// `token_uri`: where the assertion is exchanged.
    pub token_uri: String,
    key_pair: KeyPair,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    /// Reads a key file's JSON.
    pub fn from_json(text: &str) -> Result<Self, KeyError> {
        let file: Value = serde_json::from_str(text).map_err(|_| KeyError::NotAKeyFile)?;
        let field = |name: &str| file[name].as_str().filter(|v| !v.is_empty());
        if field("type") != Some("service_account") {
            return Err(KeyError::NotAKeyFile);
        }
        let (Some(client_email), Some(pem)) = (field("client_email"), field("private_key")) else {
            return Err(KeyError::NotAKeyFile);
        };
        let der = pem_body(pem, "PRIVATE KEY").ok_or_else(|| {
            KeyError::BadPrivateKey("no -----BEGIN PRIVATE KEY----- block".into())
        })?;
        let key_pair =
            KeyPair::from_pkcs8(&der).map_err(|e| KeyError::BadPrivateKey(e.to_string()))?;
        Ok(Self {
            client_email: client_email.to_owned(),
            private_key_id: field("private_key_id").map(str::to_owned),
            token_uri: field("token_uri")
                .unwrap_or("https://oauth2.googleapis.com/token")
                .to_owned(),
            key_pair,
        })
    }

    /// The signed assertion for `token_url`, issued at `issued_at` (seconds since the epoch).
    pub fn assertion(&self, token_url: &str, issued_at: u64) -> Result<String, ConnectorError> {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.private_key_id {
            header["kid"] = Value::String(kid.clone());
        }
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": BIGQUERY_SCOPE,
            "aud": token_url,
            "iat": issued_at,
            "exp": issued_at + ASSERTION_LIFETIME.as_secs(),
        });
        jwt::rs256(&self.key_pair, &header, &claims, "the service-account JWT")
    }
}

/// The base64 body of the PEM block labelled `label` in `text`, decoded (a one-line value with
/// `\n` escapes is accepted too).
fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let text = text.replace("\\n", "\n");
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok()
}

/// Access tokens from a service-account key.
pub struct ServiceAccountTokens {
    key: ServiceAccountKey,
    token_url: String,
    cached: Mutex<Option<(String, Instant)>>,
}

impl ServiceAccountTokens {
    /// Tokens for `key`, exchanged at `token_url`.
    pub fn new(key: ServiceAccountKey, token_url: String) -> Self {
        Self {
            key,
            token_url,
            cached: Mutex::new(None),
        }
    }

    async fn get(&self, http: &reqwest::Client) -> Result<String, ConnectorError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, _)) = cached.as_ref().filter(|(_, at)| Instant::now() < *at) {
            return Ok(token.clone());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let assertion = self.key.assertion(&self.token_url, now)?;
        let form = serde_urlencoded::to_string([
            ("grant_type", JWT_BEARER_GRANT),
            ("assertion", assertion.as_str()),
        ])
        .map_err(|e| ConnectorError::Permanent(format!("cannot encode the token request: {e}")))?;
        let answer = send(
            http.post(&self.token_url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form),
        )
        .await?;
        if let Some(error) = classify_token_answer(&answer) {
            return Err(error);
        }
        let parsed: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let token = parsed["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ConnectorError::Transient(
                    "OAuth token endpoint answered without access_token".into(),
                )
            })?
            .to_owned();
        let lifetime = parsed["expires_in"]
            .as_u64()
            .map_or(ASSERTION_LIFETIME, Duration::from_secs);
        let refresh_at = Instant::now() + lifetime - REFRESH_MARGIN.min(lifetime / 2);
        *cached = Some((token.clone(), refresh_at));
        Ok(token)
    }
}

/// Where access tokens come from.
pub enum TokenSource {
    /// An OAuth client's refresh token.
    RefreshToken(AccessTokens),
    /// A service-account key.
    ServiceAccount(ServiceAccountTokens),
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::RefreshToken(_) => f.write_str("RefreshToken(<redacted>)"),
            TokenSource::ServiceAccount(tokens) => f
                .debug_tuple("ServiceAccount")
                .field(&tokens.key.client_email)
                .finish(),
        }
    }
}

impl TokenSource {
    /// A valid access token.
    pub async fn get(&self, http: &reqwest::Client) -> Result<String, ConnectorError> {
        match self {
            TokenSource::RefreshToken(tokens) => tokens.get(http).await,
            TokenSource::ServiceAccount(tokens) => tokens.get(http).await,
        }
    }

    /// Drops the cached token (BigQuery refused it).
    pub async fn invalidate(&self) {
        match self {
            TokenSource::RefreshToken(tokens) => tokens.invalidate().await,
            TokenSource::ServiceAccount(tokens) => {
                tokens.cached.lock().await.take();
            }
        }
    }

    /// The grant, for evidence: `refresh_token` or `service_account`.
    pub fn name(&self) -> &'static str {
        match self {
            TokenSource::RefreshToken(_) => "refresh_token",
            TokenSource::ServiceAccount(_) => "service_account",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair as _, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn key_file(pair: &KeyPair) -> String {
        let der: Pkcs8V1Der<'static> = pair.as_der().unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(der.as_ref())
        );
        serde_json::json!({
            "type": "service_account", "project_id": "acme-prod", "private_key_id": "k1",
            "private_key": pem, "client_email": "hush@acme-prod.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token"
        })
        .to_string()
    }

    #[test]
    fn the_assertion_names_the_service_account_scope_and_audience_and_verifies() {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let key = ServiceAccountKey::from_json(&key_file(&pair)).unwrap();
        assert_eq!(key.token_uri, "https://oauth2.googleapis.com/token");
        let jwt = key
            .assertion("https://oauth2.googleapis.com/token", 1_800_000_000)
            .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["kid"], "k1");
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "hush@acme-prod.iam.gserviceaccount.com");
        assert_eq!(claims["scope"], BIGQUERY_SCOPE);
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(claims["exp"], 1_800_000_000u64 + 3_600);
        let public = pair.public_key().as_der().unwrap();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public.as_ref())
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            )
            .expect("the signature verifies");
    }

    #[test]
    fn files_that_are_not_service_account_keys_are_refused() {
        assert_eq!(
            ServiceAccountKey::from_json("{}").unwrap_err(),
            KeyError::NotAKeyFile
        );
        assert_eq!(
            ServiceAccountKey::from_json(r#"{"type": "authorized_user", "client_id": "x"}"#)
                .unwrap_err(),
            KeyError::NotAKeyFile
        );
        assert!(matches!(
            ServiceAccountKey::from_json(
                r#"{"type": "service_account", "client_email": "a@b", "private_key": "nope"}"#
            ),
            Err(KeyError::BadPrivateKey(_))
        ));
    }
}
