//! The HTTP calls to the `hush-denylist` service: hashes only, never raw values.

use hush_connector_kit::http::{classify_http_status, send};
use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;
use hush_contracts::connector::WorkIdentifier;
use hush_contracts::events::IdentifierType;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::EnrichmentConfig;

/// One denied identifier as the deny-list answers it (the fields this connector reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeniedEntry {
    /// SHA-256 of the identifier.
    pub sha256: String,
    /// `DELETED`, `SALE_SHARE_OPT_OUT` or `SENSITIVE_LIMITED`.
    pub reason: String,
}

/// The answer of `POST /v1/check`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckAnswer {
    /// Whether none of the identifiers is denied.
    pub allowed: bool,
    /// The denied identifiers.
    pub denied: Vec<DeniedEntry>,
}

#[derive(Deserialize)]
struct VendorStats {
    blocked_lookups: u64,
}

#[derive(Deserialize)]
struct StatsAnswer {
    #[serde(default)]
    vendors: std::collections::BTreeMap<String, VendorStats>,
}

#[derive(Serialize)]
struct HashedIdentifier<'a> {
    #[serde(rename = "type")]
    kind: IdentifierType,
    sha256: &'a str,
}

#[derive(Serialize)]
struct CheckBody<'a> {
    identifiers: Vec<HashedIdentifier<'a>>,
}

/// Reads the deny-list for one vendor.
#[derive(Debug, Clone)]
pub struct DenyListClient {
    http: reqwest::Client,
    config: EnrichmentConfig,
}

impl DenyListClient {
    /// A client with the configured timeout.
    pub fn new(config: EnrichmentConfig) -> Result<Self, ConfigError> {
        let http = hush_connector_kit::http::client("enrichment", config.timeout)?;
        Ok(Self { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &EnrichmentConfig {
        &self.config
    }

    /// `POST {base_url}/v1/check?vendor=<kind>&purpose=verification` with the identifiers'
    /// hashes. A verification is not counted as a lookup at the vendor, so the connector's
    /// polling does not inflate `blocked_lookups`.
    pub async fn check(
        &self,
        identifiers: &[&WorkIdentifier],
    ) -> Result<CheckAnswer, ConnectorError> {
        let body = CheckBody {
            identifiers: identifiers
                .iter()
                .map(|i| HashedIdentifier {
                    kind: i.kind,
                    sha256: &i.sha256,
                })
                .collect(),
        };
        let request = self
            .http
            .post(self.url("v1/check"))
            .query(&[("vendor", self.config.vendor), ("purpose", "verification")])
            .json(&body);
        self.send(request).await
    }

    /// Lookups at this vendor the deny-list has blocked since it started, from
    /// `GET {base_url}/v1/stats` (0 when it has screened none for the vendor yet).
    pub async fn blocked_lookups(&self) -> Result<u64, ConnectorError> {
        let stats: StatsAnswer = self.send(self.http.get(self.url("v1/stats"))).await?;
        Ok(stats
            .vendors
            .get(self.config.vendor)
            .map_or(0, |v| v.blocked_lookups))
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{path}",
            self.config.base_url.as_str().trim_end_matches('/')
        )
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ConnectorError> {
        let request = match &self.config.api_key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        };
        let answer = send(request).await?;
        if let Some(error) =
            classify_http_status(answer.status, answer.retry_after.as_deref(), &answer.body)
        {
            return Err(error);
        }
        serde_json::from_str(&answer.body).map_err(|e| {
            ConnectorError::Transient(format!(
                "HTTP {} from hush-denylist with an unreadable body ({e})",
                answer.status
            ))
        })
    }
}
