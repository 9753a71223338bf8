//! The HTTP calls to Salesforce: the OAuth 2.0 client-credentials flow, SOQL queries, sObject
//! Collections and `Individual` reads. Every call goes through one function that attaches the
//! token, fetches a new one once on `INVALID_SESSION_ID` and classifies the answer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hush_connector_kit::http::VendorAnswer;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::ConnectorError;
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::SalesforceConfig;
use crate::request::{
    collection_body, delete_query, email_chunks, escape_soql_literal, individual_read_fields,
    people_query, IndividualState, PersonRecord, QueryResponse, SObjectType, SaveResult,
    MAX_COLLECTION,
};
use crate::response::{classify_response, is_invalid_session};

/// An access token and the instance it is valid for.
#[derive(Clone)]
struct Session {
    access_token: String,
    instance_url: String,
    obtained: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    instance_url: Option<String>,
}

/// A Salesforce REST client for one recipient.
pub struct SalesforceClient {
    http: reqwest::Client,
    config: SalesforceConfig,
    session: Mutex<Option<Session>>,
}

impl SalesforceClient {
    /// A client with the configured timeout; no call is made until the first request.
    pub fn new(config: SalesforceConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            http: hush_connector_kit::http::client("salesforce", config.timeout)?,
            config,
            session: Mutex::new(None),
        })
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &SalesforceConfig {
        &self.config
    }

    fn default_wait(&self) -> Duration {
        Duration::from_secs(self.config.settings.retry_after_default_secs)
    }

    fn data_path(&self, rest: &str) -> String {
        format!("/services/data/{}/{rest}", self.config.settings.api_version)
    }

    /// The current session, fetching a token when there is none or it is older than
    /// `token_ttl_secs`.
    async fn session(&self) -> Result<Session, ConnectorError> {
        let mut current = self.session.lock().await;
        let ttl = Duration::from_secs(self.config.settings.token_ttl_secs);
        match current.as_ref() {
            Some(session) if session.obtained.elapsed() < ttl => Ok(session.clone()),
            _ => {
                let fresh = self.fetch_token().await?;
                *current = Some(fresh.clone());
                Ok(fresh)
            }
        }
    }

    /// Drops `rejected` so the next call fetches a new token (unless another call already did).
    async fn forget(&self, rejected: &Session) {
        let mut current = self.session.lock().await;
        if current
            .as_ref()
            .is_some_and(|s| s.access_token == rejected.access_token)
        {
            *current = None;
        }
    }

    async fn fetch_token(&self) -> Result<Session, ConnectorError> {
        let credentials = &self.config.credentials;
        let answer = hush_connector_kit::http::send(
            self.http
                .post(format!("{}/services/oauth2/token", self.config.base_url))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", credentials.client_id.as_str()),
                    ("client_secret", credentials.client_secret.expose()),
                ]),
        )
        .await?;
        if let Some(error) = self.classify(&answer) {
            return Err(match error {
                ConnectorError::Permanent(text) => {
                    ConnectorError::Permanent(format!("token request refused: {text}"))
                }
                other => other,
            });
        }
        let token: TokenResponse = parse(&answer.body)?;
        let instance_url = token
            .instance_url
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| self.config.base_url.clone());
        Ok(Session {
            access_token: token.access_token,
            instance_url: instance_url.trim_end_matches('/').to_owned(),
            obtained: Instant::now(),
        })
    }

    /// Sends one data call built by `build` (given the instance URL) with the bearer token; on
    /// a 401 `INVALID_SESSION_ID` fetches a new token once and sends again. Answers with the
    /// vendor's answer, unclassified.
    async fn send(
        &self,
        build: impl Fn(&str) -> RequestBuilder,
    ) -> Result<VendorAnswer, ConnectorError> {
        let mut refreshed = false;
        loop {
            let session = self.session().await?;
            let answer = hush_connector_kit::http::send(
                build(&session.instance_url).bearer_auth(&session.access_token),
            )
            .await?;
            if !refreshed && is_invalid_session(answer.status, &answer.body) {
                tracing::info!(
                    recipient = %self.config.recipient_id,
                    "Salesforce rejected the session; fetching a new access token"
                );
                self.forget(&session).await;
                refreshed = true;
                continue;
            }
            return Ok(answer);
        }
    }

    /// [`Self::send`], then classifies the answer and parses a successful body.
    async fn call<T: DeserializeOwned>(
        &self,
        build: impl Fn(&str) -> RequestBuilder,
    ) -> Result<T, ConnectorError> {
        let answer = self.send(build).await?;
        if let Some(error) = self.classify(&answer) {
            return Err(error);
        }
        parse(&answer.body)
    }

    /// Salesforce's classification of an answer, with the configured wait after a 429 that
    /// names none.
    fn classify(&self, answer: &VendorAnswer) -> Option<ConnectorError> {
        classify_response(
            answer.status,
            answer.retry_after.as_deref(),
            &answer.body,
            self.default_wait(),
        )
    }

    /// The Contacts or Leads holding each of `emails` (already normalised), keyed by email: one
    /// SOQL query per chunk of emails (see [`email_chunks`]), every email present in the answer
    /// (with no records when none matched). Salesforce compares emails without regard to case;
    /// a record is mapped back through its `Email` in lowercase, and a record that maps to none
    /// is a permanent error (never silently left out). Salesforce's error text may echo the
    /// query, so the emails are redacted from any error.
    pub async fn people_by_email(
        &self,
        object: SObjectType,
        emails: &[String],
    ) -> Result<HashMap<String, Vec<PersonRecord>>, ConnectorError> {
        let mut found: HashMap<String, Vec<PersonRecord>> =
            emails.iter().map(|e| (e.clone(), Vec::new())).collect();
        for chunk in email_chunks(object, emails) {
            for record in self.query_people(object, chunk).await? {
                let key = record.email.as_deref().map(|e| e.trim().to_lowercase());
                match key.and_then(|key| found.get_mut(&key)) {
                    Some(records) => records.push(record),
                    None => {
                        return Err(ConnectorError::Permanent(format!(
                            "Salesforce answered {} {} for the query, whose Email is none of \
                             the queried emails in lowercase, so it cannot be attributed to a \
                             request",
                            object.as_str(),
                            record.id
                        )))
                    }
                }
            }
        }
        Ok(found)
    }

    /// One SOQL query for the records of `object` holding any of `emails`.
    async fn query_people(
        &self,
        object: SObjectType,
        emails: &[String],
    ) -> Result<Vec<PersonRecord>, ConnectorError> {
        let soql = people_query(object, emails);
        let path = self.data_path("query");
        let mut answer: QueryResponse = self
            .call(|instance| {
                self.http
                    .get(format!("{instance}{path}"))
                    .query(&[("q", soql.as_str())])
            })
            .await
            .map_err(|e| redact(e, emails))?;
        let mut records = std::mem::take(&mut answer.records);
        // A large answer comes in pages: follow `nextRecordsUrl` until `done`.
        while !answer.done {
            let Some(next) = answer.next_records_url.take() else {
                return Err(ConnectorError::Transient(
                    "Salesforce answered a query page with done = false and no nextRecordsUrl"
                        .into(),
                ));
            };
            answer = self
                .call(|instance| self.http.get(format!("{instance}{next}")))
                .await
                .map_err(|e| redact(e, emails))?;
            records.append(&mut answer.records);
        }
        Ok(records)
    }

    /// Creates records through sObject Collections (at most 200); one result per record, in
    /// order.
    pub async fn create(&self, records: &[Value]) -> Result<Vec<SaveResult>, ConnectorError> {
        self.collection(Method::POST, records).await
    }

    /// Updates records through sObject Collections (at most 200); one result per record, in
    /// order.
    pub async fn update(&self, records: &[Value]) -> Result<Vec<SaveResult>, ConnectorError> {
        self.collection(Method::PATCH, records).await
    }

    async fn collection(
        &self,
        method: Method,
        records: &[Value],
    ) -> Result<Vec<SaveResult>, ConnectorError> {
        assert!(
            records.len() <= MAX_COLLECTION,
            "caller chunks to the vendor limit"
        );
        let path = self.data_path("composite/sobjects");
        let body = collection_body(records);
        let results: Vec<SaveResult> = self
            .call(|instance| {
                self.http
                    .request(method.clone(), format!("{instance}{path}"))
                    .json(&body)
            })
            .await?;
        expect_one_per_record(results, records.len())
    }

    /// Deletes records through sObject Collections (at most 200 ids); one result per id, in
    /// order.
    pub async fn delete(&self, ids: &[String]) -> Result<Vec<SaveResult>, ConnectorError> {
        assert!(
            ids.len() <= MAX_COLLECTION,
            "caller chunks to the vendor limit"
        );
        let path = self.data_path("composite/sobjects");
        let query = delete_query(ids);
        let results: Vec<SaveResult> = self
            .call(|instance| self.http.delete(format!("{instance}{path}")).query(&query))
            .await?;
        expect_one_per_record(results, ids.len())
    }

    /// Reads an `Individual`'s privacy flags; `None` when Salesforce answers 404 (deleted or
    /// never existed).
    pub async fn read_individual(
        &self,
        id: &str,
    ) -> Result<Option<IndividualState>, ConnectorError> {
        let path = self.data_path(&format!("sobjects/Individual/{id}"));
        let fields = individual_read_fields();
        let answer = self
            .send(|instance| {
                self.http
                    .get(format!("{instance}{path}"))
                    .query(&[("fields", fields.as_str())])
            })
            .await?;
        if answer.status == 404 {
            return Ok(None);
        }
        if let Some(error) = self.classify(&answer) {
            return Err(error);
        }
        parse(&answer.body).map(Some)
    }
}

fn parse<T: DeserializeOwned>(body: &str) -> Result<T, ConnectorError> {
    serde_json::from_str(body).map_err(|e| {
        ConnectorError::Transient(format!("Salesforce answered with an unexpected body: {e}"))
    })
}

fn expect_one_per_record(
    results: Vec<SaveResult>,
    expected: usize,
) -> Result<Vec<SaveResult>, ConnectorError> {
    if results.len() == expected {
        Ok(results)
    } else {
        Err(ConnectorError::Transient(format!(
            "Salesforce answered {} results for {expected} records",
            results.len()
        )))
    }
}

/// Removes emails from an error's text: plain and SOQL-escaped, in any letter case and in the
/// encoded forms [`hush_contracts::redact`] knows (the query URL's `%40`, say).
fn redact(error: ConnectorError, emails: &[String]) -> ConnectorError {
    let escaped: Vec<String> = emails.iter().map(|e| escape_soql_literal(e)).collect();
    let values: Vec<&str> = emails.iter().chain(&escaped).map(String::as_str).collect();
    let scrub = |text: String| hush_contracts::redact::redact(&text, &values, "<email>");
    match error {
        ConnectorError::RetryAfter { after, detail } => ConnectorError::RetryAfter {
            after,
            detail: scrub(detail),
        },
        ConnectorError::Transient(text) => ConnectorError::Transient(scrub(text)),
        ConnectorError::Permanent(text) => ConnectorError::Permanent(scrub(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_echoing_the_query_do_not_carry_the_email() {
        let error = ConnectorError::Permanent(
            "HTTP 400: MALFORMED_QUERY: Email = 'o\\'brien@example.com' ^ ERROR".into(),
        );
        let redacted = redact(
            error,
            &["jane@example.com".into(), "o'brien@example.com".into()],
        );
        assert_eq!(
            redacted,
            ConnectorError::Permanent(
                "HTTP 400: MALFORMED_QUERY: Email = '<email>' ^ ERROR".into()
            )
        );
    }

    #[test]
    fn errors_echoing_the_encoded_query_do_not_carry_the_email() {
        let error = ConnectorError::Transient(
            "HTTP 503: cannot run q=SELECT+Id+FROM+Contact+WHERE+Email+%3D+%27O%5C%27Brien%2Btag%40Example.com%27"
                .into(),
        );
        let redacted = redact(error, &["o'brien+tag@example.com".into()]);
        assert_eq!(
            redacted,
            ConnectorError::Transient(
                "HTTP 503: cannot run q=SELECT+Id+FROM+Contact+WHERE+Email+%3D+%27<email>%27"
                    .into()
            )
        );
    }

    #[test]
    fn a_short_answer_is_transient() {
        assert!(matches!(
            expect_one_per_record(vec![], 2),
            Err(ConnectorError::Transient(m)) if m.contains("0 results for 2 records")
        ));
    }
}
