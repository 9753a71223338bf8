//! HTTP calls to the Braze REST API of one instance: export profiles by identifier, track
//! attributes and delete profiles, with the REST API key as a bearer token.

use std::collections::BTreeMap;

use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;
use serde_json::{Map, Value};

use crate::config::BrazeConfig;
use crate::request::{self, Lookup};
use crate::response;

/// One Braze user profile as exported: its ids and the fields read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Braze's id of the profile.
    pub braze_id: String,
    /// `email_subscribe` (`opted_in`, `subscribed` or `unsubscribed`), when exported.
    pub email_subscribe: Option<String>,
    /// Custom attributes.
    pub custom_attributes: Map<String, Value>,
}

/// What `/users/track` said about a call of attribute objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackOutcome {
    /// HTTP status.
    pub status: u16,
    /// Non-fatal errors: the index of the refused attribute object and Braze's text.
    pub refused: Vec<(usize, String)>,
}

/// A Braze REST API client for one workspace.
pub struct BrazeClient {
    http: reqwest::Client,
    config: BrazeConfig,
}

impl BrazeClient {
    /// Builds the client; the recipient's timeout bounds every call.
    pub fn new(config: BrazeConfig) -> Result<Self, ConfigError> {
        let http = hush_connector_kit::http::client("braze", config.timeout)?;
        Ok(Self { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &BrazeConfig {
        &self.config
    }

    /// The profiles each lookup finds: external ids 50 per export, emails one per export.
    /// A lookup whose export failed maps to the error; after a rate limit or a transient
    /// failure, the remaining lookups are not attempted and carry the same error.
    pub async fn find(
        &self,
        lookups: &[&Lookup],
    ) -> BTreeMap<Lookup, Result<Vec<Profile>, ConnectorError>> {
        let mut found = BTreeMap::new();
        let mut halted: Option<ConnectorError> = None;
        let external_ids: Vec<&str> = lookups
            .iter()
            .filter_map(|lookup| match lookup {
                Lookup::ExternalId(id) => Some(id.as_str()),
                Lookup::Email(_) => None,
            })
            .collect();
        for chunk in external_ids.chunks(request::MAX_EXPORT_EXTERNAL_IDS) {
            let outcome = match &halted {
                Some(error) => Err(error.clone()),
                None => self.export_external_ids(chunk).await,
            };
            match outcome {
                Ok(mut by_id) => {
                    for id in chunk {
                        let profiles = by_id.remove(*id).unwrap_or_default();
                        found.insert(Lookup::ExternalId((*id).to_owned()), Ok(profiles));
                    }
                }
                Err(error) => {
                    if error.is_retryable() {
                        halted.get_or_insert(error.clone());
                    }
                    for id in chunk {
                        found.insert(Lookup::ExternalId((*id).to_owned()), Err(error.clone()));
                    }
                }
            }
        }
        for lookup in lookups {
            let Lookup::Email(email) = lookup else {
                continue;
            };
            let outcome = match &halted {
                Some(error) => Err(error.clone()),
                None => self.export_email(email).await,
            };
            if let Err(error) = &outcome {
                if error.is_retryable() {
                    halted.get_or_insert(error.clone());
                }
            }
            found.insert((*lookup).clone(), outcome);
        }
        found
    }

    /// `POST /users/export/ids` by external ids: the profiles found, by external id.
    async fn export_external_ids(
        &self,
        external_ids: &[&str],
    ) -> Result<BTreeMap<String, Vec<Profile>>, ConnectorError> {
        let body = request::export_by_external_ids(external_ids);
        let answer = self.post("/users/export/ids", &body, external_ids).await?;
        let mut by_id: BTreeMap<String, Vec<Profile>> = BTreeMap::new();
        for user in users(&answer)? {
            let Some(external_id) = user["external_id"].as_str() else {
                continue;
            };
            by_id
                .entry(external_id.to_owned())
                .or_default()
                .push(profile(user)?);
        }
        Ok(by_id)
    }

    /// `POST /users/export/ids` by one email address: every profile holding it.
    async fn export_email(&self, email: &str) -> Result<Vec<Profile>, ConnectorError> {
        let body = request::export_by_email(email);
        let answer = self.post("/users/export/ids", &body, &[email]).await?;
        users(&answer)?.iter().map(profile).collect()
    }

    /// `POST /users/track` with attribute objects.
    pub async fn track(&self, objects: Vec<Value>) -> Result<TrackOutcome, ConnectorError> {
        let count = objects.len();
        let call = self
            .http
            .post(format!("{}/users/track", self.config.base_url))
            .json(&request::track_body(objects));
        let (status, answer) = self.send(call, &[]).await?;
        let refused: Vec<(usize, String)> = answer["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|error| error["input_array"].as_str().unwrap_or("attributes") == "attributes")
            .map(|error| {
                let index = error["index"].as_u64().map(|i| i as usize);
                let text = error["type"]
                    .as_str()
                    .or(error.as_str())
                    .map(str::to_owned)
                    .unwrap_or_else(|| error.to_string());
                (
                    index,
                    format!("HTTP {status}: Braze refused the attribute: {text}"),
                )
            })
            .flat_map(|(index, text)| match index {
                Some(index) if index < count => vec![(index, text)],
                // An error Braze does not tie to an object refuses them all.
                _ => (0..count).map(|i| (i, text.clone())).collect(),
            })
            .collect();
        Ok(TrackOutcome { status, refused })
    }

    /// `POST /users/delete` by Braze ids; returns the HTTP status and how many profiles Braze
    /// queued for deletion.
    pub async fn delete(&self, braze_ids: &[&str]) -> Result<(u16, u64), ConnectorError> {
        let call = self
            .http
            .post(format!("{}/users/delete", self.config.base_url))
            .json(&request::delete_body(braze_ids));
        let (status, answer) = self.send(call, &[]).await?;
        Ok((status, answer["deleted"].as_u64().unwrap_or(0)))
    }

    async fn post(
        &self,
        path: &str,
        body: &Value,
        redact: &[&str],
    ) -> Result<Value, ConnectorError> {
        let call = self
            .http
            .post(format!("{}{path}", self.config.base_url))
            .json(body);
        self.send(call, redact).await.map(|(_, answer)| answer)
    }

    async fn send(
        &self,
        call: reqwest::RequestBuilder,
        redact: &[&str],
    ) -> Result<(u16, Value), ConnectorError> {
        let call = call.bearer_auth(self.config.api_key.expose());
        let answer = hush_connector_kit::http::send(call).await?;
        let body = response::read(&answer, redact)?;
        Ok((answer.status, body))
    }
}

/// The `users` of an export answer.
fn users(answer: &Value) -> Result<&Vec<Value>, ConnectorError> {
    match &answer["users"] {
        Value::Array(users) => Ok(users),
        // `"queued"` during maintenance: the export was not made.
        _ => Err(ConnectorError::Transient(
            "Braze answered the export without a users array".into(),
        )),
    }
}

fn profile(user: &Value) -> Result<Profile, ConnectorError> {
    let braze_id = user["braze_id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ConnectorError::Transient("Braze exported a profile without its braze_id".into())
        })?;
    Ok(Profile {
        braze_id: braze_id.to_owned(),
        email_subscribe: user["email_subscribe"].as_str().map(str::to_owned),
        custom_attributes: user["custom_attributes"]
            .as_object()
            .cloned()
            .unwrap_or_default(),
    })
}
