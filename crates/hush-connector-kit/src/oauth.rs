//! OAuth 2.0 access tokens from a refresh token (RFC 6749 §6), as Google's APIs use them: the
//! client credentials a recipient names, one token exchanged at the token endpoint, cached,
//! refreshed shortly before it expires, and dropped and exchanged once more when the vendor
//! refuses it.

use std::future::Future;
use std::time::{Duration, Instant};

use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;
use hush_contracts::recipients::RecipientConfig;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::http::{classify_http_status, send, VendorAnswer};
use crate::secret::Secret;
use crate::settings::Fields;

/// Google's OAuth 2.0 token endpoint, where every Google API's refresh token is exchanged.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// [`GOOGLE_TOKEN_URL`] as an owned default for a `token_url` setting.
pub fn google_token_url() -> String {
    GOOGLE_TOKEN_URL.to_owned()
}

/// Longest safety margin before a token's expiry at which it is refreshed.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Lifetime assumed when the token endpoint does not say (`expires_in`).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3_600);

/// The client credentials and refresh token exchanged for access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenGrant {
    /// The token endpoint, e.g. `https://oauth2.googleapis.com/token`.
    pub token_url: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: Secret,
    /// Long-lived refresh token.
    pub refresh_token: Secret,
}

/// An OAuth client's id and secret and the refresh token of the user who authorised it, as a
/// recipient's `credentials.client_id`, `client_secret` and `refresh_token` name them. `Debug`
/// never prints the secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: Secret,
    /// Long-lived refresh token.
    pub refresh_token: Secret,
}

impl ClientCredentials {
    /// Reads `credentials.client_id`, `client_secret` and `refresh_token` from the environment
    /// variables the recipient names.
    pub fn from_recipient(recipient: &RecipientConfig) -> Result<Self, ConfigError> {
        let fields = Fields::of(recipient);
        Ok(Self {
            client_id: recipient.credential("client_id")?,
            client_secret: fields.credential("client_secret")?,
            refresh_token: fields.credential("refresh_token")?,
        })
    }

    /// `Ok` when each of the three holds more than white space; the error names the first
    /// blank one (`recipients.<id>.credentials.<name> is empty`).
    pub fn check_not_blank(&self, fields: &Fields<'_>) -> Result<(), ConfigError> {
        if self.client_id.trim().is_empty() {
            return Err(fields.invalid("credentials.client_id", "is empty"));
        }
        fields.not_blank("credentials.client_secret", &self.client_secret)?;
        fields.not_blank("credentials.refresh_token", &self.refresh_token)
    }

    /// The grant that exchanges these credentials at `token_url`.
    pub fn grant(&self, token_url: &str) -> RefreshTokenGrant {
        RefreshTokenGrant {
            token_url: token_url.to_owned(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            refresh_token: self.refresh_token.clone(),
        }
    }
}

/// What a vendor made of one call carrying an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorized<T> {
    /// The vendor accepted the token; the call's outcome.
    Accepted(T),
    /// The vendor refused the token (expired or revoked), saying why.
    Refused(String),
}

/// An access token and the instant after which it is no longer used.
struct AccessToken {
    value: String,
    refresh_at: Instant,
}

/// Access tokens of one grant: at most one exchange at a time, the token reused until 60 s
/// before it expires (or half its lifetime, if shorter).
pub struct AccessTokens {
    grant: RefreshTokenGrant,
    cached: Mutex<Option<AccessToken>>,
}

impl AccessTokens {
    /// Tokens for `grant`; none is exchanged before the first [`AccessTokens::get`].
    pub fn new(grant: RefreshTokenGrant) -> Self {
        Self {
            grant,
            cached: Mutex::new(None),
        }
    }

    /// A valid access token, exchanging the refresh token (with `http`) when none is cached or
    /// the cached one is within its refresh margin of expiry. A refused grant
    /// (`invalid_grant`, `invalid_client`) is permanent: someone must issue new credentials.
    pub async fn get(&self, http: &reqwest::Client) -> Result<String, ConnectorError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.value.clone());
        }
        let fresh = self.exchange(http).await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Drops the cached token (the vendor refused it); the next [`AccessTokens::get`]
    /// exchanges the refresh token again.
    pub async fn invalidate(&self) {
        self.cached.lock().await.take();
    }

    /// Makes the call `attempt` makes with a valid access token. When the vendor refuses the
    /// token, the cached one is dropped and the call is made once more with a fresh one; a
    /// fresh token refused as well is permanent. `vendor` names the vendor in that error and
    /// in the log line of the refresh, `recipient` the recipient in the log line.
    pub async fn call<T, F, Fut>(
        &self,
        http: &reqwest::Client,
        vendor: &str,
        recipient: &str,
        attempt: F,
    ) -> Result<T, ConnectorError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<Authorized<T>, ConnectorError>>,
    {
        let mut refreshed = false;
        loop {
            let token = self.get(http).await?;
            match attempt(token).await? {
                Authorized::Accepted(outcome) => return Ok(outcome),
                Authorized::Refused(detail) if !refreshed => {
                    tracing::info!(
                        recipient = %recipient,
                        "{vendor} refused the access token; refreshing it: {detail}"
                    );
                    self.invalidate().await;
                    refreshed = true;
                }
                Authorized::Refused(detail) => {
                    return Err(ConnectorError::Permanent(format!(
                        "{vendor} refused a freshly issued access token: {detail}"
                    )))
                }
            }
        }
    }

    async fn exchange(&self, http: &reqwest::Client) -> Result<AccessToken, ConnectorError> {
        let grant = &self.grant;
        let form = serde_urlencoded::to_string([
            ("grant_type", "refresh_token"),
            ("client_id", grant.client_id.as_str()),
            ("client_secret", grant.client_secret.expose()),
            ("refresh_token", grant.refresh_token.expose()),
        ])
        .map_err(|e| ConnectorError::Permanent(format!("cannot encode the token request: {e}")))?;
        let answer = send(
            http.post(&grant.token_url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form),
        )
        .await?;
        if let Some(error) = classify_token_answer(&answer) {
            return Err(error);
        }
        let parsed: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let value = parsed["access_token"]
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
            .map_or(DEFAULT_LIFETIME, Duration::from_secs);
        let margin = MAX_REFRESH_MARGIN.min(lifetime / 2);
        Ok(AccessToken {
            value,
            refresh_at: Instant::now() + lifetime - margin,
        })
    }
}

/// Classifies an answer of the token endpoint: `None` on success, else the endpoint's
/// `error: error_description` as a permanent (4xx), transient (5xx) or retry-after (429)
/// failure.
pub fn classify_token_answer(answer: &VendorAnswer) -> Option<ConnectorError> {
    let parsed: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    let text = match (
        parsed["error"].as_str(),
        parsed["error_description"].as_str(),
    ) {
        (Some(code), Some(description)) => format!("{code}: {description}"),
        (Some(code), None) => code.to_owned(),
        _ => answer.body.clone(),
    };
    classify_http_status(
        answer.status,
        answer.retry_after.as_deref(),
        &format!("OAuth token endpoint: {text}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> VendorAnswer {
        VendorAnswer {
            status,
            retry_after: None,
            rate_limit_reset: None,
            body: body.into(),
        }
    }

    #[test]
    fn a_refused_refresh_token_is_permanent_with_the_endpoints_reason() {
        let refused = classify_token_answer(&answer(
            400,
            r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        ));
        assert_eq!(
            refused,
            Some(ConnectorError::Permanent(
                "HTTP 400: OAuth token endpoint: invalid_grant: Token has been expired or revoked."
                    .into()
            ))
        );
        assert!(matches!(
            classify_token_answer(&answer(503, "busy")),
            Some(ConnectorError::Transient(_))
        ));
        assert_eq!(classify_token_answer(&answer(200, "{}")), None);
    }

    /// Serves `answers` in order, one per connection, on loopback; returns the token URL.
    async fn token_endpoint(answers: Vec<&'static str>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move {
            for body in answers {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(response.as_bytes()).await.unwrap();
                stream.shutdown().await.unwrap();
            }
        });
        url
    }

    fn tokens(token_url: String) -> AccessTokens {
        AccessTokens::new(RefreshTokenGrant {
            token_url,
            client_id: "id".into(),
            client_secret: "secret".into(),
            refresh_token: "refresh".into(),
        })
    }

    #[tokio::test]
    async fn a_token_is_reused_until_invalidated() {
        let url = token_endpoint(vec![
            r#"{"access_token":"first","expires_in":3600}"#,
            r#"{"access_token":"second","expires_in":3600}"#,
        ])
        .await;
        let tokens = tokens(url);
        let http = reqwest::Client::new();
        assert_eq!(tokens.get(&http).await.unwrap(), "first");
        assert_eq!(tokens.get(&http).await.unwrap(), "first");
        tokens.invalidate().await;
        assert_eq!(tokens.get(&http).await.unwrap(), "second");
    }

    #[tokio::test]
    async fn a_token_about_to_expire_is_exchanged_again() {
        // A 1 s lifetime is refreshed at half of it, so it is never reused after 0.5 s.
        let url = token_endpoint(vec![
            r#"{"access_token":"short","expires_in":1}"#,
            r#"{"access_token":"next","expires_in":3600}"#,
        ])
        .await;
        let tokens = tokens(url);
        let http = reqwest::Client::new();
        assert_eq!(tokens.get(&http).await.unwrap(), "short");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(tokens.get(&http).await.unwrap(), "next");
    }

    #[tokio::test]
    async fn a_refused_token_is_exchanged_once_and_the_call_made_again() {
        let url = token_endpoint(vec![
            r#"{"access_token":"stale","expires_in":3600}"#,
            r#"{"access_token":"fresh","expires_in":3600}"#,
        ])
        .await;
        let tokens = tokens(url);
        let http = reqwest::Client::new();
        let sent = std::sync::Mutex::new(Vec::new());
        let outcome = tokens
            .call(&http, "Vendor", "r", |token| {
                sent.lock().unwrap().push(token.clone());
                async move {
                    Ok(match token.as_str() {
                        "fresh" => Authorized::Accepted(7),
                        _ => Authorized::Refused("expired".into()),
                    })
                }
            })
            .await;
        assert_eq!(outcome, Ok(7));
        assert_eq!(*sent.lock().unwrap(), ["stale", "fresh"]);
    }

    #[tokio::test]
    async fn a_fresh_token_refused_too_is_permanent_and_other_errors_pass_through() {
        let url = token_endpoint(vec![
            r#"{"access_token":"one","expires_in":3600}"#,
            r#"{"access_token":"two","expires_in":3600}"#,
        ])
        .await;
        let tokens = tokens(url);
        let http = reqwest::Client::new();
        let refused = tokens
            .call(&http, "Vendor", "r", |_| async {
                Ok(Authorized::<()>::Refused("revoked".into()))
            })
            .await;
        assert_eq!(
            refused,
            Err(ConnectorError::Permanent(
                "Vendor refused a freshly issued access token: revoked".into()
            ))
        );
        let failed = tokens
            .call(&http, "Vendor", "r", |_| async {
                Err::<Authorized<()>, _>(ConnectorError::Transient("HTTP 503".into()))
            })
            .await;
        assert_eq!(failed, Err(ConnectorError::Transient("HTTP 503".into())));
    }

    #[test]
    fn client_credentials_name_the_blank_one_and_make_the_grant() {
        let recipient: RecipientConfig = toml::from_str(
            "id = \"g\"\nkind = \"google_ads\"\nrole = \"THIRD_PARTY\"\nbase_url = \"http://h\"\n",
        )
        .unwrap();
        let fields = Fields::of(&recipient);
        let credentials = ClientCredentials {
            client_id: "id".into(),
            client_secret: "secret".into(),
            refresh_token: " ".into(),
        };
        let blank = credentials
            .check_not_blank(&fields)
            .unwrap_err()
            .to_string();
        assert!(
            blank.contains("recipients.g.credentials.refresh_token is empty"),
            "{blank}"
        );
        let grant = credentials.grant(GOOGLE_TOKEN_URL);
        assert_eq!(grant.token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(grant.refresh_token, credentials.refresh_token);
        assert!(!format!("{credentials:?}").contains("\"secret\""));
    }

    #[tokio::test]
    async fn an_answer_without_a_token_is_transient() {
        let url = token_endpoint(vec![r#"{"token_type":"Bearer"}"#]).await;
        let error = tokens(url).get(&reqwest::Client::new()).await.unwrap_err();
        assert!(matches!(error, ConnectorError::Transient(_)), "{error:?}");
    }
}
