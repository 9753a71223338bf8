//! HTTP calls to the User Deletion API: OAuth 2.0 access tokens (the kit's refresh-token
//! grant, refreshed once more when Google answers `401`) and `userDeletionRequests:upsert`.

use hush_connector_kit::google::api::GoogleApi;
use hush_connector_kit::http::VendorAnswer;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;
use serde_json::Value;

use crate::config::GoogleAnalyticsConfig;
use crate::request::{self, Deletion};
use crate::response;

/// What Google answered to one deletion request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionReceipt {
    /// `deletionRequestTime`: when Google Analytics received the request; data collected
    /// before it is deleted.
    pub deletion_request_time: String,
}

/// A User Deletion API client for one GA4 property.
pub struct GoogleAnalyticsClient {
    api: GoogleApi,
    config: GoogleAnalyticsConfig,
}

impl GoogleAnalyticsClient {
    /// Builds the client; the timeout applies to every call, token exchange included.
    pub fn new(config: GoogleAnalyticsConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            api: GoogleApi::new(
                "google-analytics",
                "Google Analytics",
                &config.recipient_id,
                config.credentials.grant(&config.token_url),
                config.timeout,
            )?,
            config,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &GoogleAnalyticsConfig {
        &self.config
    }

    /// `POST /analytics/v3/userDeletion/userDeletionRequests:upsert` for one identifier. The
    /// identifier never appears in the error, even if Google's message quotes it.
    pub async fn upsert(&self, deletion: &Deletion) -> Result<DeletionReceipt, ConnectorError> {
        let url = format!("{}{}", self.config.base_url, request::UPSERT_PATH);
        let body = request::upsert_body(&self.config.property_id, deletion);
        let answer = self
            .call(
                |token| self.api.http().post(&url).bearer_auth(token).json(&body),
                &deletion.user_id,
            )
            .await?;
        answer["deletionRequestTime"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(|t| DeletionReceipt {
                deletion_request_time: t.to_owned(),
            })
            .ok_or_else(|| {
                ConnectorError::Transient(
                    "Google Analytics accepted the deletion request but sent no deletionRequestTime"
                        .into(),
                )
            })
    }

    /// Sends the request `build` makes with an access token. A `401` drops the cached token
    /// and the call is made once more with a fresh one. Google's error text has every
    /// occurrence of `identifier` replaced before it is classified.
    async fn call(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
        identifier: &str,
    ) -> Result<Value, ConnectorError> {
        let read = |mut answer: VendorAnswer| {
            if !(200..300).contains(&answer.status) {
                answer.body = redact(&answer.body, identifier);
            }
            response::classify(&answer, chrono::Utc::now())
        };
        self.api.call(build, read).await
    }
}

/// `text` with every occurrence of `identifier` replaced, so that a vendor message quoting it
/// cannot carry it into a confirmation or a log line.
fn redact(text: &str, identifier: &str) -> String {
    if identifier.is_empty() {
        return text.to_owned();
    }
    text.replace(identifier, "<identifier>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_replaces_every_occurrence_of_the_identifier() {
        assert_eq!(
            redact("bad userId 555.777 (555.777)", "555.777"),
            "bad userId <identifier> (<identifier>)"
        );
        assert_eq!(redact("no id here", ""), "no id here");
    }
}
