//! The HTTP side every Google API connector shares: one HTTP client and the OAuth access
//! tokens of the recipient, so that each call carries a bearer token and a token Google
//! refuses is renewed once, the call repeated.

use std::time::Duration;

use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;

use crate::google::Verdict;
use crate::http::{send, VendorAnswer};
use crate::oauth::{AccessTokens, RefreshTokenGrant};

/// One recipient's calls to a Google API with OAuth 2.0 access tokens from its refresh token.
pub struct GoogleApi {
    http: reqwest::Client,
    tokens: AccessTokens,
    name: &'static str,
    recipient_id: String,
}

impl GoogleApi {
    /// A client for recipient `recipient_id` of the API called `name` in errors and log lines
    /// (`Google Analytics`), with user agent `hush-connector-<connector>` and `timeout` on
    /// every call, the token exchange of `grant` included.
    pub fn new(
        connector: &str,
        name: &'static str,
        recipient_id: &str,
        grant: RefreshTokenGrant,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            http: crate::http::client(connector, timeout)?,
            tokens: AccessTokens::new(grant),
            name,
            recipient_id: recipient_id.to_owned(),
        })
    }

    /// The HTTP client calls are built with.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends the request `build` makes with an access token and answers what `read` makes of
    /// Google's answer. When `read` says the token was refused, the cached token is dropped
    /// and the call is made once more with a fresh one.
    pub async fn call<T>(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
        read: impl Fn(VendorAnswer) -> Verdict<T>,
    ) -> Result<T, ConnectorError> {
        let read = &read;
        self.tokens
            .call(&self.http, self.name, &self.recipient_id, |token| {
                let request = build(&token);
                async move { read(send(request).await?).into_authorized() }
            })
            .await
    }
}
