//! The HTTP calls to HubSpot's date-versioned CRM contacts API
//! (`/crm/objects/{api_version}/contacts/…`), authenticated with a service key or private app
//! token. Rate limiting (100 to 190 requests per 10 s, by plan) is the suppressor's job, from the
//! recipient's `rate_limit_per_second`.

use std::collections::{BTreeMap, BTreeSet};

use hush_connector_kit::http::VendorAnswer;
use hush_connector_kit::secret::Secret;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;
use reqwest::header::AUTHORIZATION;
use reqwest::{Method, Url};
use serde::Deserialize;

use crate::config::HubSpotConfig;
use crate::request::{
    batch_read_body, gdpr_delete_body, single_update_body, BatchUpdateBody, PropertyChange,
    BATCH_LIMIT, ID_PROPERTY,
};
use crate::response::{self, redact_emails};

/// The result of writing one contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactWrite {
    /// HubSpot applied the write (the HTTP status it answered with).
    Applied(u16),
    /// HubSpot has no such contact (the HTTP status it answered with).
    NotFound(u16),
}

/// The result of reading one contact back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactRead {
    /// The contact exists, with the requested properties (a value is `None` when unset).
    Found(BTreeMap<String, Option<String>>),
    /// No contact with this email.
    Missing,
    /// HubSpot could not be read for this contact; try again later.
    Unknown,
}

/// HubSpot's API for one portal.
#[derive(Debug, Clone)]
pub struct HubSpotClient {
    http: reqwest::Client,
    base_url: Url,
    api_version: String,
    token: Secret,
}

#[derive(Deserialize)]
struct BatchResponse {
    #[serde(default)]
    errors: Vec<BatchError>,
}

#[derive(Deserialize)]
struct BatchError {
    #[serde(default)]
    category: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    context: BatchErrorContext,
}

#[derive(Deserialize, Default)]
struct BatchErrorContext {
    #[serde(default)]
    ids: Vec<String>,
}

#[derive(Deserialize)]
struct BatchReadResponse {
    #[serde(default)]
    results: Vec<ContactObject>,
    #[serde(default)]
    errors: Vec<BatchError>,
}

#[derive(Deserialize)]
struct ContactObject {
    #[serde(default)]
    properties: BTreeMap<String, Option<String>>,
}

impl HubSpotClient {
    /// A client with the recipient's timeout.
    pub fn new(config: &HubSpotConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            http: hush_connector_kit::http::client("hubspot", config.timeout)?,
            base_url: config.base_url.clone(),
            api_version: config.settings.api_version.clone(),
            token: config.token.clone(),
        })
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .expect("an http(s) base URL has path segments")
            .pop_if_empty()
            .extend(["crm", "objects", &self.api_version, "contacts"])
            .extend(segments);
        url
    }

    fn contact_url(&self, email: &str) -> Url {
        let mut url = self.url(&[email]);
        url.query_pairs_mut().append_pair("idProperty", ID_PROPERTY);
        url
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<VendorAnswer, ConnectorError> {
        let mut request = self
            .http
            .request(method, url)
            .header(AUTHORIZATION, format!("Bearer {}", self.token.expose()));
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        hush_connector_kit::http::send(request).await
    }

    fn fail(answer: &VendorAnswer, emails: &[&str]) -> ConnectorError {
        response::classify(
            answer.status,
            answer.retry_after.as_deref(),
            &answer.body,
            emails,
        )
        .unwrap_or_else(|| {
            ConnectorError::Permanent(format!(
                "HTTP {}: unexpected answer from HubSpot",
                answer.status
            ))
        })
    }

    /// `PATCH /crm/objects/{api_version}/contacts/{email}?idProperty=email` with one property; a
    /// 404 is
    /// [`ContactWrite::NotFound`].
    pub async fn update_contact(
        &self,
        email: &str,
        change: &PropertyChange,
    ) -> Result<ContactWrite, ConnectorError> {
        let body = serde_json::to_vec(&single_update_body(change))
            .expect("a properties body always encodes");
        let answer = self
            .send(Method::PATCH, self.contact_url(email), Some(body))
            .await?;
        match answer.status {
            200..=299 => Ok(ContactWrite::Applied(answer.status)),
            404 => Ok(ContactWrite::NotFound(answer.status)),
            _ => Err(Self::fail(&answer, &[email])),
        }
    }

    /// `POST /crm/objects/{api_version}/contacts/batch/update`. Returns one outcome per input, in
    /// input
    /// order: contacts HubSpot reports as `OBJECT_NOT_FOUND` are [`ContactWrite::NotFound`],
    /// contacts named in another error fail permanently with its message. An error that names no
    /// contact fails the other inputs transiently, so they are written again.
    pub async fn batch_update(
        &self,
        body: &BatchUpdateBody,
    ) -> Result<Vec<Result<ContactWrite, ConnectorError>>, ConnectorError> {
        let emails: Vec<&str> = body.inputs.iter().map(|i| i.id.as_str()).collect();
        let bytes = serde_json::to_vec(body).expect("a batch body always encodes");
        let answer = self
            .send(Method::POST, self.url(&["batch", "update"]), Some(bytes))
            .await?;
        if !(200..=299).contains(&answer.status) {
            return Err(Self::fail(&answer, &emails));
        }
        let parsed: BatchResponse = serde_json::from_str(&answer.body).map_err(|e| {
            ConnectorError::Transient(format!(
                "HTTP {}: HubSpot's batch answer could not be read: {e}",
                answer.status
            ))
        })?;
        let mut outcomes: BTreeMap<String, Result<ContactWrite, ConnectorError>> = BTreeMap::new();
        let mut unattributed = Vec::new();
        for error in &parsed.errors {
            if error.context.ids.is_empty() {
                unattributed.push(format!("{}: {}", error.category, error.message));
            }
            for id in &error.context.ids {
                let outcome = if error.category == "OBJECT_NOT_FOUND" {
                    Ok(ContactWrite::NotFound(answer.status))
                } else {
                    Err(ConnectorError::Permanent(redact_emails(
                        &format!(
                            "HTTP {}: {}: {}",
                            answer.status, error.category, error.message
                        ),
                        &emails,
                    )))
                };
                outcomes.insert(id.to_lowercase(), outcome);
            }
        }
        Ok(emails
            .iter()
            .map(|email| match outcomes.get(*email) {
                Some(outcome) => outcome.clone(),
                None if !unattributed.is_empty() => Err(ConnectorError::Transient(redact_emails(
                    &format!(
                        "HTTP {}: HubSpot reported errors without naming the contacts: {}",
                        answer.status,
                        unattributed.join("; ")
                    ),
                    &emails,
                ))),
                None => Ok(ContactWrite::Applied(answer.status)),
            })
            .collect())
    }

    /// `POST /crm/objects/{api_version}/contacts/gdpr-delete` by email; a 404 is
    /// [`ContactWrite::NotFound`]. HubSpot documents that an unknown email is added to the
    /// portal's blocklist rather than refused.
    pub async fn gdpr_delete(&self, email: &str) -> Result<ContactWrite, ConnectorError> {
        let body =
            serde_json::to_vec(&gdpr_delete_body(email)).expect("a delete body always encodes");
        let answer = self
            .send(Method::POST, self.url(&["gdpr-delete"]), Some(body))
            .await?;
        match answer.status {
            200..=299 => Ok(ContactWrite::Applied(answer.status)),
            404 => Ok(ContactWrite::NotFound(answer.status)),
            _ => Err(Self::fail(&answer, &[email])),
        }
    }

    /// `POST /crm/objects/{api_version}/contacts/batch/read` with `idProperty=email`, in calls
    /// of at most 100 emails: each email's contact with `properties`, `Missing` for one HubSpot
    /// reports as `OBJECT_NOT_FOUND` (or leaves out), `Unknown` for one a call failed for.
    pub async fn batch_read(
        &self,
        emails: &[&str],
        properties: &BTreeSet<&str>,
    ) -> BTreeMap<String, ContactRead> {
        let mut reads = BTreeMap::new();
        for chunk in emails.chunks(BATCH_LIMIT) {
            let read = self.batch_read_call(chunk, properties).await;
            for email in chunk {
                let outcome = match &read {
                    Ok(found) => found.get(*email).cloned().unwrap_or(ContactRead::Missing),
                    Err(_) => ContactRead::Unknown,
                };
                reads.insert((*email).to_owned(), outcome);
            }
        }
        reads
    }

    async fn batch_read_call(
        &self,
        emails: &[&str],
        properties: &BTreeSet<&str>,
    ) -> Result<BTreeMap<String, ContactRead>, ConnectorError> {
        let body = serde_json::to_vec(&batch_read_body(emails, properties))
            .expect("a batch read body always encodes");
        let answer = self
            .send(Method::POST, self.url(&["batch", "read"]), Some(body))
            .await?;
        if !(200..=299).contains(&answer.status) {
            return Err(Self::fail(&answer, emails));
        }
        let parsed: BatchReadResponse = serde_json::from_str(&answer.body).map_err(|e| {
            ConnectorError::Transient(format!("HubSpot's batch read could not be read: {e}"))
        })?;
        let mut reads = BTreeMap::new();
        for error in parsed
            .errors
            .iter()
            .filter(|e| e.category != "OBJECT_NOT_FOUND")
        {
            if error.context.ids.is_empty() {
                return Err(ConnectorError::Transient(redact_emails(
                    &format!("HubSpot's batch read failed: {}", error.message),
                    emails,
                )));
            }
            for id in &error.context.ids {
                reads.insert(id.to_lowercase(), ContactRead::Unknown);
            }
        }
        for contact in parsed.results {
            if let Some(Some(email)) = contact.properties.get(ID_PROPERTY) {
                reads
                    .entry(email.to_lowercase())
                    .or_insert(ContactRead::Found(contact.properties.clone()));
            }
        }
        Ok(reads)
    }
}
