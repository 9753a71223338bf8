//! The calls to Snowflake's SQL API v2: submit one run of a statement
//! (`POST /api/v2/statements?requestId=…&retry=true&async=true`) and read where it stands
//! (`GET /api/v2/statements/{handle}`), each with the authorization of [`crate::auth`] and the
//! headers the API requires (`Accept`, `Content-Type`, `User-Agent`).
//!
//! Statements are submitted asynchronously so that no call blocks longer than the recipient's
//! `timeout_ms`; the request id is derived from the Hush request, the setting and the run, and
//! sent with `retry=true`, so a resubmission after a lost answer is recognised by Snowflake
//! instead of being executed twice.

use async_trait::async_trait;
use hush_connector_kit::http::path_segment;
use hush_connector_kit::sql::jobs::{
    bound_values, request_uuid, RunSettings, RunState, StatementApi, Vocabulary,
};
use hush_connector_kit::sql::rights::ConfiguredSql;
use hush_connector_kit::sql::template::Execution;
use hush_contracts::config::ConfigError;
use hush_contracts::connector::{ConnectorError, Evidence};

use crate::auth::{Authorization, KEYPAIR_JWT};
use crate::config::SnowflakeConfig;
use crate::request::{self, STATEMENTS_PATH};
use crate::response;
use crate::{EVIDENCE_HANDLES, EVIDENCE_RUNNING};

/// Header naming the kind of bearer token.
pub const TOKEN_TYPE_HEADER: &str = "X-Snowflake-Authorization-Token-Type";

/// The words of Snowflake's evidence and logs.
const VOCABULARY: Vocabulary = Vocabulary {
    vendor: "Snowflake",
    run: "statement",
    handles_key: EVIDENCE_HANDLES,
    running_key: EVIDENCE_RUNNING,
};

/// A SQL API client for one account.
pub struct SnowflakeClient {
    http: reqwest::Client,
    config: SnowflakeConfig,
}

impl SnowflakeClient {
    /// Builds the client; the recipient's timeout bounds every call.
    pub fn new(config: SnowflakeConfig) -> Result<Self, ConfigError> {
        let http = hush_connector_kit::http::client("snowflake", config.timeout)?;
        Ok(Self { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &SnowflakeConfig {
        &self.config
    }

    async fn send(
        &self,
        call: reqwest::RequestBuilder,
        execution: &Execution,
    ) -> Result<RunState, ConnectorError> {
        let (token, token_type) = self.config.authorization.bearer()?;
        let call = call
            .bearer_auth(token)
            .header(TOKEN_TYPE_HEADER, token_type)
            .header("accept", "application/json");
        let answer = hush_connector_kit::http::send(call).await?;
        if answer.status == 401 && token_type == KEYPAIR_JWT {
            // A JWT refused (expired by a skewed clock, say) is signed anew next time.
            self.config.authorization.forget();
        }
        response::read(&answer, &bound_values(execution))
    }
}

#[async_trait]
impl StatementApi for SnowflakeClient {
    fn vocabulary(&self) -> &Vocabulary {
        &VOCABULARY
    }

    fn runs(&self) -> &RunSettings {
        &self.config.runs
    }

    fn describe(&self, evidence: &mut Evidence) {
        evidence.insert("account".into(), self.config.host().to_owned());
        evidence.insert(
            "authentication".into(),
            authentication_name(&self.config.authorization).to_owned(),
        );
    }

    fn is_integer_type(&self, name: &str) -> bool {
        response::is_integer_type(name)
    }

    async fn submit(
        &self,
        sql: &ConfiguredSql,
        request_key: &str,
        run: usize,
        execution: &Execution,
    ) -> Result<RunState, ConnectorError> {
        let body = request::statement_body(&sql.template, execution, &self.config.context);
        let request_id = request_uuid(request_key, &sql.field, run);
        let call = self
            .http
            .post(format!("{}{STATEMENTS_PATH}", self.config.base_url))
            .query(&[
                ("requestId", request_id.as_str()),
                ("retry", "true"),
                ("async", "true"),
            ])
            .json(&body);
        self.send(call, execution).await
    }

    async fn read(&self, handle: &str, execution: &Execution) -> Result<RunState, ConnectorError> {
        let call = self.http.get(format!(
            "{}{STATEMENTS_PATH}/{}",
            self.config.base_url,
            path_segment(handle)
        ));
        self.send(call, execution).await
    }
}

/// Whether `authorization` signs its own tokens (for evidence).
pub fn authentication_name(authorization: &Authorization) -> &'static str {
    match authorization {
        Authorization::KeyPair { .. } => KEYPAIR_JWT,
        Authorization::Token { token_type, .. } => token_type,
    }
}
