//! The HTTP call: posts one signed notice and reports what the recipient answered.

use chrono::Utc;
use hush_connector_kit::http::{self, classify_transport_error};
use hush_connector_kit::secret::Secret;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;
use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};

use sha2::{Digest, Sha256};

use crate::config::WebhookConfig;
use crate::request::Notice;
use crate::response;
use hush_contracts::signature::{sign, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// What a recipient answered to a delivered notice (2xx).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// HTTP status of the answer.
    pub status: u16,
    /// `X-Hush-Timestamp` the notice was signed with, unix seconds.
    pub signed_at: i64,
    /// SHA-256 of the answer's body (the body itself is not kept).
    pub response_sha256: String,
}

/// Posts notices to one recipient.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    endpoint: String,
    secret: Secret,
}

impl WebhookClient {
    /// A client with the recipient's timeout; redirects are never followed.
    pub fn new(config: &WebhookConfig) -> Result<Self, ConfigError> {
        let builder = http::client_builder("webhook", config.timeout)
            .redirect(reqwest::redirect::Policy::none());
        let http = http::build_client("webhook", builder)?;
        Ok(Self {
            http,
            endpoint: config.endpoint.clone(),
            secret: config.signing_secret.clone(),
        })
    }

    /// Signs and posts `notice` with `Idempotency-Key: <request_id>`. A 2xx answer is a
    /// [`Delivery`]; anything else is classified by [`response::classify`].
    pub async fn post_notice(&self, notice: &Notice) -> Result<Delivery, ConnectorError> {
        let body = serde_json::to_vec(notice).map_err(|e| {
            ConnectorError::Permanent(format!("could not encode the notice as JSON: {e}"))
        })?;
        let signed_at = Utc::now().timestamp();
        let response = self
            .http
            .post(&self.endpoint)
            .header(CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, signed_at.to_string())
            .header(
                SIGNATURE_HEADER,
                sign(self.secret.expose(), signed_at, &body),
            )
            .header(IDEMPOTENCY_HEADER, &notice.request_id)
            .body(body)
            .send()
            .await
            .map_err(classify_transport_error)?;
        let status = response.status().as_u16();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header(RETRY_AFTER);
        let location = header(LOCATION);
        let bytes = response.bytes().await.map_err(classify_transport_error)?;
        let text = String::from_utf8_lossy(&bytes);
        if let Some(error) =
            response::classify(status, retry_after.as_deref(), location.as_deref(), &text)
        {
            return Err(error);
        }
        Ok(Delivery {
            status,
            signed_at,
            response_sha256: hex::encode(Sha256::digest(&bytes)),
        })
    }
}
