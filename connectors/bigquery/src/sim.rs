//! Simulator of the BigQuery API v2 (`jobs.query`, `jobs.getQueryResults`) and of Google's OAuth
//! token endpoint: test and demo infrastructure, never a real Google service.
//!
//! Written from Google's documentation (read 2026-12):
//! - <https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/query> (`QueryRequest`:
//!   `query`, `useLegacySql` — true unless set —, `parameterMode`, `queryParameters`,
//!   `requestId`, `timeoutMs`, `location`, `defaultDataset`; `QueryResponse`: `jobReference`,
//!   `jobComplete`, `schema`, `rows`, `numDmlAffectedRows`, `dmlStats`)
//! - <https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/getQueryResults>
//! - <https://cloud.google.com/bigquery/docs/parameterized-queries> (named `@name` parameters)
//! - <https://cloud.google.com/bigquery/docs/error-messages> and
//!   <https://cloud.google.com/bigquery/docs/troubleshoot-quotas> (the `error` envelope with
//!   `errors[].reason`: `invalidQuery`, `notFound`, `rateLimitExceeded`, …)
//! - <https://developers.google.com/identity/protocols/oauth2/service-account> (the
//!   `urn:ietf:params:oauth:grant-type:jwt-bearer` grant: RS256 assertion with `iss`, `scope`,
//!   `aud`, `iat`, `exp` at most an hour later) and the refresh-token grant
//!
//! It keeps its own copy of that contract ([`contract`]) and checks what Google checks: the
//! token endpoint's grants (a service account's assertion is verified against its public key),
//! the Bearer access token it issued, the project in the path, the JSON content type, a `query`,
//! standard SQL for parameters, `NAMED` mode, each parameter's name and type, every `@name` of
//! the query declared, and a `requestId` of at most 36 characters. It does not parse SQL: a
//! test registers each query text it runs ([`SimStatement`]) with what it does to an in-memory
//! table; any other text is a 400 `invalidQuery`. A job runs when submitted and answers
//! `jobComplete: false` for a configurable number of reads. A repeated `requestId` answers the
//! earlier job instead of running the query again. Faults (429, 5xx, latency) and call records
//! come from [`hush_sim_kit`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hush_sim_kit::jwt::{self, JwtFault};
use hush_sim_kit::stateful::{SharedState, StatefulSim};
use hush_sim_kit::{any_loopback_port, table, RunningSim};
use serde_json::{json, Value};

/// Google's side of the contract, copied from its documentation rather than from the
/// connector.
pub mod contract {
    /// The token endpoint's path on the simulator.
    pub const TOKEN_PATH: &str = "/token";
    /// The JWT-bearer grant type.
    pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    /// A scope that allows running BigQuery jobs.
    pub const BIGQUERY_SCOPES: [&str; 2] = [
        "https://www.googleapis.com/auth/bigquery",
        "https://www.googleapis.com/auth/cloud-platform",
    ];
    /// Longest assertion lifetime, in seconds.
    pub const MAX_ASSERTION_S: u64 = 3_600;
    /// Standard SQL parameter types.
    pub const PARAMETER_TYPES: [&str; 12] = [
        "STRING",
        "INT64",
        "FLOAT64",
        "NUMERIC",
        "BIGNUMERIC",
        "BOOL",
        "BYTES",
        "DATE",
        "DATETIME",
        "TIME",
        "TIMESTAMP",
        "JSON",
    ];
    /// Longest `requestId`.
    pub const MAX_REQUEST_ID: usize = 36;
}

/// One row of the simulated table: column name → value as text.
pub use hush_sim_kit::table::SimRow;

/// What a query did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimOutcome {
    /// DML that changed (updated or deleted) this many rows.
    Dml(u64),
    /// A query returning one count (a check).
    Count(u64),
    /// A query returning these STRING columns (to test checks of the wrong shape).
    Rows(Vec<String>, Vec<Vec<String>>),
    /// The query failed: HTTP status, `reason`, `message`.
    Failed(u16, String, String),
}

impl From<table::Effect> for SimOutcome {
    fn from(effect: table::Effect) -> Self {
        match effect {
            table::Effect::Updated(rows) | table::Effect::Deleted(rows) => Self::Dml(rows),
            table::Effect::Counted(rows) => Self::Count(rows),
        }
    }
}

/// A query the simulated project can run: its exact text (with `@name` parameters) and what it
/// does with the parameters' values to the table.
pub type SimStatement = table::Statement<BTreeMap<String, Option<String>>, SimOutcome>;

/// How callers obtain access tokens from the simulated token endpoint.
#[derive(Debug, Clone)]
pub enum SimGrant {
    /// A service account: its email and its public key (DER, PKCS#1 or SubjectPublicKeyInfo).
    ServiceAccount {
        /// `client_email`.
        client_email: String,
        /// The public half of the key file's private key.
        public_key_der: Vec<u8>,
    },
    /// An OAuth client and its refresh token.
    RefreshToken {
        /// `client_id`.
        client_id: String,
        /// `client_secret`.
        client_secret: String,
        /// `refresh_token`.
        refresh_token: String,
    },
}

/// What the simulated project holds and accepts.
#[derive(Clone)]
pub struct BigQuerySimConfig {
    /// The project id.
    pub project_id: String,
    /// How access tokens are granted.
    pub grant: SimGrant,
    /// Queries it can run.
    pub statements: Vec<SimStatement>,
    /// The table's rows.
    pub rows: Vec<SimRow>,
    /// Reads of a job that still answer `jobComplete: false` (the submission counts as one).
    pub running_reads: u32,
}

/// A query job the simulator ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimJob {
    /// `jobReference.jobId`.
    pub job_id: String,
    /// `requestId` it was submitted with.
    pub request_id: Option<String>,
    /// The query text.
    pub query: String,
    /// The named parameters' values.
    pub params: BTreeMap<String, Option<String>>,
    /// `location`, if sent.
    pub location: Option<String>,
    /// What it did.
    pub outcome: SimOutcome,
    reads_left: u32,
}

struct SimState {
    config: BigQuerySimConfig,
    jobs: Vec<SimJob>,
    tokens: Vec<String>,
}

type Shared = SharedState<SimState>;

/// A running BigQuery API simulator.
pub struct BigQuerySim(StatefulSim<SimState>);

impl BigQuerySim {
    /// Starts the simulator on any free loopback port.
    pub async fn start(config: BigQuerySimConfig) -> std::io::Result<Self> {
        Self::start_on(config, any_loopback_port()).await
    }

    /// Starts the simulator on `addr`.
    pub async fn start_on(config: BigQuerySimConfig, addr: SocketAddr) -> std::io::Result<Self> {
        let state = SimState {
            config,
            jobs: Vec::new(),
            tokens: Vec::new(),
        };
        let router = Router::new()
            .route(contract::TOKEN_PATH, post(token))
            .route("/bigquery/v2/projects/{project}/queries", post(query))
            .route(
                "/bigquery/v2/projects/{project}/queries/{job}",
                get(results),
            );
        StatefulSim::serve(state, router, addr).await.map(Self)
    }

    /// `<base_url>/token`: the token endpoint to configure.
    pub fn token_url(&self) -> String {
        format!("{}{}", self.base_url(), contract::TOKEN_PATH)
    }

    /// Every job so far, oldest first.
    pub fn jobs(&self) -> Vec<SimJob> {
        self.0.lock().jobs.clone()
    }

    /// The table's rows now.
    pub fn rows(&self) -> Vec<SimRow> {
        self.0.lock().config.rows.clone()
    }

    /// Replaces the table's rows (e.g. someone cleared a flag).
    pub fn set_rows(&self, rows: Vec<SimRow>) {
        self.0.lock().config.rows = rows;
    }

    /// Sets how many reads still answer `jobComplete: false` for jobs submitted from now on.
    pub fn set_running_reads(&self, reads: u32) {
        self.0.lock().config.running_reads = reads;
    }

    /// Forgets every access token issued (as if they expired).
    pub fn revoke_tokens(&self) {
        self.0.lock().tokens.clear();
    }
}

impl std::ops::Deref for BigQuerySim {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.0
    }
}

/// Google's error envelope.
fn google_error(status: u16, reason: &str, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        code,
        Json(json!({"error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": match status { 400 => "INVALID_ARGUMENT", 401 => "UNAUTHENTICATED",
                                     403 => "PERMISSION_DENIED", 404 => "NOT_FOUND", _ => "UNKNOWN" },
        }})),
    )
        .into_response()
}

/// The token endpoint's OAuth error.
fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn token(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = state.lock().unwrap();
    if !headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
    {
        return oauth_error(
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let form: BTreeMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let granted = match (&state.config.grant, field("grant_type")) {
        (
            SimGrant::ServiceAccount {
                client_email,
                public_key_der,
            },
            contract::JWT_BEARER,
        ) => verify_assertion(field("assertion"), client_email, public_key_der),
        (
            SimGrant::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
            },
            "refresh_token",
        ) => {
            if field("client_id") != client_id || field("client_secret") != client_secret {
                Err((
                    "invalid_client",
                    "The OAuth client was not found.".to_owned(),
                ))
            } else if field("refresh_token") != refresh_token {
                Err((
                    "invalid_grant",
                    "Token has been expired or revoked.".to_owned(),
                ))
            } else {
                Ok(())
            }
        }
        (_, other) => Err((
            "unsupported_grant_type",
            format!("Invalid grant_type: {other}"),
        )),
    };
    if let Err((error, description)) = granted {
        return oauth_error(error, &description);
    }
    let access_token = format!("ya29.sim-{}", state.tokens.len() + 1);
    state.tokens.push(access_token.clone());
    Json(json!({"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

/// Checks a service account's JWT assertion.
fn verify_assertion(
    assertion: &str,
    client_email: &str,
    public_key_der: &[u8],
) -> Result<(), (&'static str, String)> {
    let invalid = |why: &str| ("invalid_grant", format!("Invalid JWT: {why}"));
    let claims = jwt::rs256_claims(assertion, public_key_der).map_err(|fault| {
        invalid(match fault {
            JwtFault::NotThreeParts => "it does not have three parts",
            JwtFault::Base64 => "bad base64url",
            JwtFault::Header => "bad header",
            JwtFault::Algorithm => "the algorithm must be RS256",
            JwtFault::Signature => "Invalid JWT Signature.",
            JwtFault::Payload => "bad payload",
        })
    })?;
    if claims["iss"] != client_email {
        return Err(invalid("the issuer is not the service account"));
    }
    if !claims["aud"]
        .as_str()
        .is_some_and(|aud| aud.ends_with(contract::TOKEN_PATH))
    {
        return Err(invalid("the audience is not the token endpoint"));
    }
    let scopes = claims["scope"].as_str().unwrap_or_default();
    if !scopes
        .split(' ')
        .any(|s| contract::BIGQUERY_SCOPES.contains(&s))
    {
        return Err(("invalid_scope", "No BigQuery scope was requested.".into()));
    }
    let (Some(iat), Some(exp)) = (claims["iat"].as_u64(), claims["exp"].as_u64()) else {
        return Err(invalid("iat and exp are required"));
    };
    if exp <= now() || exp.saturating_sub(iat) > contract::MAX_ASSERTION_S {
        return Err(invalid(
            "Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        ));
    }
    Ok(())
}

/// Checks the access token and the project; `Err` is the answer.
fn authorise(state: &SimState, headers: &HeaderMap, project: &str) -> Result<(), Box<Response>> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !token.is_some_and(|t| state.tokens.iter().any(|issued| issued == t)) {
        return Err(Box::new(google_error(
            401,
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        )));
    }
    if project != state.config.project_id {
        return Err(Box::new(google_error(
            404,
            "notFound",
            &format!("Not found: Project {project}"),
        )));
    }
    Ok(())
}

/// The `@name`s of a query outside literals, quoted names and comments.
fn parameter_names(query: &str) -> Vec<String> {
    let chars: Vec<char> = query.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            quote @ ('\'' | '"' | '`') => {
                i += 1;
                while i < chars.len() && chars[i] != quote {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '@' if chars.get(i + 1) == Some(&'@') => i += 1,
            '@' => {
                let name: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_alphanumeric() || **c == '_')
                    .collect();
                i += name.len();
                if !name.is_empty() {
                    names.push(name);
                }
            }
            _ => {}
        }
        i += 1;
    }
    names
}

/// The named parameters' values; `Err` is the 400 answer.
fn parameters(
    body: &Value,
    query: &str,
) -> Result<BTreeMap<String, Option<String>>, Box<Response>> {
    let invalid = |message: String| Box::new(google_error(400, "invalidQuery", &message));
    let declared = body["queryParameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let used = parameter_names(query);
    if !declared.is_empty() || !used.is_empty() {
        if body["useLegacySql"] != Value::Bool(false) {
            return Err(invalid(
                "Query parameters cannot be used in legacy SQL queries.".into(),
            ));
        }
        if body["parameterMode"] != "NAMED" {
            return Err(Box::new(google_error(
                400,
                "invalid",
                "Named query parameters need parameterMode NAMED.",
            )));
        }
    }
    let mut values = BTreeMap::new();
    for parameter in &declared {
        let name = parameter["name"].as_str().unwrap_or_default();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Box::new(google_error(
                400,
                "invalid",
                &format!("Invalid query parameter name: {name}"),
            )));
        }
        let kind = parameter["parameterType"]["type"]
            .as_str()
            .unwrap_or_default();
        if !contract::PARAMETER_TYPES.contains(&kind) {
            return Err(Box::new(google_error(
                400,
                "invalid",
                &format!("Invalid query parameter type: {kind}"),
            )));
        }
        let value = match &parameter["parameterValue"]["value"] {
            Value::Null => None,
            Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        };
        values.insert(name.to_owned(), value);
    }
    for name in used {
        if !values.contains_key(&name) {
            return Err(invalid(format!("Query parameter '{name}' not found")));
        }
    }
    Ok(values)
}

async fn query(
    State(state): State<Shared>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Err(answer) = authorise(&state, &headers, &project) {
        return *answer;
    }
    if !headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
    {
        return google_error(
            400,
            "badRequest",
            "Invalid JSON payload: Content-Type must be application/json.",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return google_error(400, "parseError", "Invalid JSON payload received.");
    };
    let Some(text) = body["query"].as_str().filter(|q| !q.trim().is_empty()) else {
        return google_error(400, "required", "Required parameter is missing: query");
    };
    let request_id = body["requestId"].as_str().map(str::to_owned);
    if request_id
        .as_ref()
        .is_some_and(|r| r.len() > contract::MAX_REQUEST_ID || !r.is_ascii())
    {
        return google_error(
            400,
            "invalid",
            "requestId must be at most 36 ASCII characters.",
        );
    }
    if let Some(id) = &request_id {
        let project_id = state.config.project_id.clone();
        if let Some(earlier) = state
            .jobs
            .iter_mut()
            .rev()
            .find(|j| j.request_id.as_deref() == Some(id.as_str()))
        {
            return answer_for(earlier, &project_id, "bigquery#queryResponse");
        }
    }
    let params = match parameters(&body, text) {
        Ok(params) => params,
        Err(answer) => return *answer,
    };
    let known = state
        .config
        .statements
        .iter()
        .find(|s| s.text == text)
        .cloned();
    let outcome = match known {
        Some(known) => known.run(&mut state.config.rows, &params),
        None => SimOutcome::Failed(
            400,
            "invalidQuery".into(),
            "Syntax error or unknown table (the simulator knows no such query)".into(),
        ),
    };
    if let SimOutcome::Failed(status, reason, message) = &outcome {
        return google_error(*status, reason, message);
    }
    let job_id = format!("job_sim{:06}", state.jobs.len() + 1);
    let reads_left = state.config.running_reads;
    let project_id = state.config.project_id.clone();
    state.jobs.push(SimJob {
        job_id,
        request_id,
        query: text.to_owned(),
        params,
        location: body["location"].as_str().map(str::to_owned),
        outcome,
        reads_left,
    });
    let job = state.jobs.last_mut().expect("just pushed");
    answer_for(job, &project_id, "bigquery#queryResponse")
}

async fn results(
    State(state): State<Shared>,
    Path((project, job_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Err(answer) = authorise(&state, &headers, &project) {
        return *answer;
    }
    let project_id = state.config.project_id.clone();
    match state.jobs.iter_mut().find(|j| j.job_id == job_id) {
        Some(job) => answer_for(job, &project_id, "bigquery#getQueryResultsResponse"),
        None => google_error(
            404,
            "notFound",
            &format!("Not found: Job {project}:{job_id}"),
        ),
    }
}

/// The answer for `job` now: `jobComplete: false` while it has reads left, then its result.
fn answer_for(job: &mut SimJob, project: &str, kind: &str) -> Response {
    let reference = json!({"projectId": project, "jobId": job.job_id,
                           "location": job.location.clone().unwrap_or_else(|| "US".into())});
    let body = if job.reads_left > 0 {
        job.reads_left -= 1;
        json!({"kind": kind, "jobReference": reference, "jobComplete": false})
    } else {
        let integer = |name: &str| json!({"name": name, "type": "INTEGER", "mode": "NULLABLE"});
        match &job.outcome {
            SimOutcome::Failed(status, reason, message) => {
                return google_error(*status, reason, message)
            }
            SimOutcome::Dml(n) => json!({
                "kind": kind, "jobReference": reference, "jobComplete": true,
                "totalRows": "0", "numDmlAffectedRows": n.to_string(),
                "dmlStats": {"updatedRowCount": n.to_string()},
            }),
            SimOutcome::Count(n) => json!({
                "kind": kind, "jobReference": reference, "jobComplete": true,
                "schema": {"fields": [integer("f0_")]},
                "rows": [{"f": [{"v": n.to_string()}]}], "totalRows": "1",
            }),
            SimOutcome::Rows(columns, rows) => json!({
                "kind": kind, "jobReference": reference, "jobComplete": true,
                "schema": {"fields": columns.iter()
                    .map(|c| json!({"name": c, "type": "STRING", "mode": "NULLABLE"}))
                    .collect::<Vec<_>>()},
                "rows": rows.iter()
                    .map(|r| json!({"f": r.iter().map(|v| json!({"v": v})).collect::<Vec<_>>()}))
                    .collect::<Vec<_>>(),
                "totalRows": rows.len().to_string(),
            }),
        }
    };
    (StatusCode::OK, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_outside_literals_and_comments_are_found() {
        assert_eq!(
            parameter_names("SELECT @a, '@b', `@c` # @d\n, @@x, @e_1"),
            vec!["a".to_owned(), "e_1".to_owned()]
        );
    }
}
