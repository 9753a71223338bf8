//! Simulator of Snowflake's SQL API v2: test and demo infrastructure, never a real Snowflake
//! account.
//!
//! Written from Snowflake's documentation (read 2026-12):
//! - <https://docs.snowflake.com/en/developer-guide/sql-api/reference> (`POST /api/v2/statements`
//!   with `requestId`, `async`, `retry`; `GET /api/v2/statements/{statementHandle}`; the
//!   `ResultSet`, `QueryStatus` and `QueryFailureStatus` bodies; 200, 202, 408, 422, 429)
//! - <https://docs.snowflake.com/en/developer-guide/sql-api/submitting-requests> (the body:
//!   `statement`, `timeout`, `database`, `schema`, `warehouse`, `role`, `bindings`; the
//!   required `Authorization`, `Content-Type`, `Accept` and `User-Agent` headers)
//! - <https://docs.snowflake.com/en/developer-guide/sql-api/authenticating> (Bearer tokens and
//!   `X-Snowflake-Authorization-Token-Type`: `KEYPAIR_JWT`, `OAUTH` — assumed when absent —, or
//!   `PROGRAMMATIC_ACCESS_TOKEN`; the key-pair JWT's `iss`/`sub` and fingerprint)
//! - <https://docs.snowflake.com/en/developer-guide/sql-api/submitting-multiple-statements>
//!   (more than one statement needs `MULTI_STATEMENT_COUNT`)
//!
//! It keeps its own copy of that contract ([`contract`]) and checks what Snowflake checks: the
//! bearer token (a key-pair JWT is verified against the user's public key: RS256 signature,
//! issuer with the key's fingerprint, subject, expiry at most an hour after issue), the JSON
//! content type, a `User-Agent`, a UUID `requestId`, a `statement`, the `bindings` (keys `"1"`…
//! `"n"`, one per `?`, each with a known `type`), and one statement per request. It does not
//! parse SQL: a test registers each statement text it should run ([`SimStatement`]) with what
//! it does to an in-memory table; any other text is a 422 compilation error. A statement runs
//! when submitted; it answers `202` (running) for a configurable number of status reads
//! before its result. `retry=true` with a known `requestId` answers the earlier statement
//! instead of running it again. Faults (429, 5xx, latency) and call records come from
//! [`hush_sim_kit`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hush_sim_kit::jwt::{self, JwtFault};
use hush_sim_kit::stateful::{SharedState, StatefulSim};
use hush_sim_kit::{any_loopback_port, table, RunningSim};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Snowflake's side of the contract, copied from its documentation rather than from the
/// connector.
pub mod contract {
    /// Path of the statements resource.
    pub const STATEMENTS: &str = "/api/v2/statements";
    /// Header naming the token type.
    pub const TOKEN_TYPE: &str = "x-snowflake-authorization-token-type";
    /// Token types the API knows.
    pub const TOKEN_TYPES: [&str; 3] = ["KEYPAIR_JWT", "OAUTH", "PROGRAMMATIC_ACCESS_TOKEN"];
    /// Snowflake data types a binding may name.
    pub const BIND_TYPES: [&str; 10] = [
        "FIXED",
        "REAL",
        "TEXT",
        "DATE",
        "TIME",
        "TIMESTAMP_LTZ",
        "TIMESTAMP_NTZ",
        "TIMESTAMP_TZ",
        "BINARY",
        "BOOLEAN",
    ];
    /// Longest key-pair JWT lifetime, in seconds.
    pub const MAX_JWT_LIFETIME_S: u64 = 3_600;
    /// Largest statement `timeout`, in seconds (seven days).
    pub const MAX_TIMEOUT_S: u64 = 604_800;
    /// `code` of a 202 answer.
    pub const RUNNING_CODE: &str = "333334";
    /// `code` of a successful statement.
    pub const SUCCESS_CODE: &str = "090001";
}

/// One row of the simulated table: column name → value as text.
pub use hush_sim_kit::table::SimRow;

/// What a statement's run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimOutcome {
    /// An UPDATE that changed this many rows.
    Updated(u64),
    /// A DELETE that removed this many rows.
    Deleted(u64),
    /// A query returning one count (a check).
    Count(u64),
    /// A query returning these text columns (to test checks of the wrong shape).
    Rows(Vec<String>, Vec<Vec<String>>),
    /// A failure: `code`, `sqlState`, `message`.
    Failed(String, String, String),
}

impl From<table::Effect> for SimOutcome {
    fn from(effect: table::Effect) -> Self {
        match effect {
            table::Effect::Updated(rows) => Self::Updated(rows),
            table::Effect::Deleted(rows) => Self::Deleted(rows),
            table::Effect::Counted(rows) => Self::Count(rows),
        }
    }
}

/// A statement the simulated account can run: its exact text (with `?` bind variables) and
/// what it does with its bound values to the table (the first binding is the key's value).
pub type SimStatement = table::Statement<[Option<String>], SimOutcome>;

/// How the simulated account authenticates callers.
#[derive(Debug, Clone)]
pub enum SimAuth {
    /// Key-pair JWTs of `user` in `account`, signed by the key whose public half is
    /// `public_key_der` (DER `SubjectPublicKeyInfo`, as `ALTER USER … SET RSA_PUBLIC_KEY`
    /// stores it).
    KeyPair {
        /// Account identifier (any case).
        account: String,
        /// User name (any case).
        user: String,
        /// The user's RSA public key.
        public_key_der: Vec<u8>,
    },
    /// A bearer token of the given type.
    Token {
        /// The token.
        token: String,
        /// `OAUTH` or `PROGRAMMATIC_ACCESS_TOKEN`.
        token_type: String,
    },
}

/// What the simulated account holds and accepts.
#[derive(Clone)]
pub struct SnowflakeSimConfig {
    /// How callers authenticate.
    pub auth: SimAuth,
    /// Statements it can run.
    pub statements: Vec<SimStatement>,
    /// The table's rows.
    pub rows: Vec<SimRow>,
    /// Status reads of a statement that still answer 202 before its result.
    pub running_reads: u32,
}

/// A statement the simulator ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimExecution {
    /// `statementHandle`.
    pub handle: String,
    /// `requestId` it was submitted with.
    pub request_id: Option<String>,
    /// The statement text.
    pub statement: String,
    /// Bound values, in `?` order.
    pub bound: Vec<Option<String>>,
    /// What it did.
    pub outcome: SimOutcome,
    reads_left: u32,
}

struct SimState {
    config: SnowflakeSimConfig,
    executions: Vec<SimExecution>,
    next_handle: u64,
}

type Shared = SharedState<SimState>;

/// A running SQL API simulator.
pub struct SnowflakeSim(StatefulSim<SimState>);

impl SnowflakeSim {
    /// Starts the simulator on any free loopback port.
    pub async fn start(config: SnowflakeSimConfig) -> std::io::Result<Self> {
        Self::start_on(config, any_loopback_port()).await
    }

    /// Starts the simulator on `addr`.
    pub async fn start_on(config: SnowflakeSimConfig, addr: SocketAddr) -> std::io::Result<Self> {
        let state = SimState {
            config,
            executions: Vec::new(),
            next_handle: 1,
        };
        let router = Router::new()
            .route(contract::STATEMENTS, post(submit))
            .route(&format!("{}/{{handle}}", contract::STATEMENTS), get(status));
        StatefulSim::serve(state, router, addr).await.map(Self)
    }

    /// Every statement run so far, oldest first.
    pub fn executions(&self) -> Vec<SimExecution> {
        self.0.lock().executions.clone()
    }

    /// The table's rows now.
    pub fn rows(&self) -> Vec<SimRow> {
        self.0.lock().config.rows.clone()
    }

    /// Replaces the table's rows (e.g. someone cleared a flag).
    pub fn set_rows(&self, rows: Vec<SimRow>) {
        self.0.lock().config.rows = rows;
    }

    /// Sets how many status reads still answer 202 for statements submitted from now on.
    pub fn set_running_reads(&self, reads: u32) {
        self.0.lock().config.running_reads = reads;
    }
}

impl std::ops::Deref for SnowflakeSim {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.0
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks the bearer token; `Err` is the 401 answer.
fn authenticate(auth: &SimAuth, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let refused = |message: &str| Box::new(error(StatusCode::UNAUTHORIZED, "390303", message));
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| refused("Authorization header is missing or is not a Bearer token."))?;
    let token_type = headers
        .get(contract::TOKEN_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("OAUTH");
    if !contract::TOKEN_TYPES.contains(&token_type) {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "390142",
            &format!("Invalid token type: {token_type}"),
        )));
    }
    match auth {
        SimAuth::Token {
            token: expected,
            token_type: expected_type,
        } => {
            if token_type != expected_type || token != expected {
                return Err(refused("Invalid OAuth access token."));
            }
            Ok(())
        }
        SimAuth::KeyPair {
            account,
            user,
            public_key_der,
        } => {
            if token_type != "KEYPAIR_JWT" {
                return Err(refused("Invalid OAuth access token."));
            }
            verify_jwt(token, account, user, public_key_der)
                .map_err(|why| Box::new(error(StatusCode::UNAUTHORIZED, "390144", &why)))
        }
    }
}

/// Checks a key-pair JWT as Snowflake documents it.
fn verify_jwt(token: &str, account: &str, user: &str, public_key_der: &[u8]) -> Result<(), String> {
    let invalid = |why: &str| format!("JWT token is invalid. {why}");
    let claims = jwt::rs256_claims(token, public_key_der).map_err(|fault| {
        invalid(match fault {
            JwtFault::NotThreeParts => "It does not have three parts.",
            JwtFault::Base64 => "Bad base64url.",
            JwtFault::Header => "Bad header.",
            JwtFault::Algorithm => "The algorithm must be RS256.",
            JwtFault::Signature => "The signature does not verify with the user's public key.",
            JwtFault::Payload => "Bad payload.",
        })
    })?;
    let subject = format!(
        "{}.{}",
        account.to_ascii_uppercase(),
        user.to_ascii_uppercase()
    );
    let fingerprint = format!("SHA256:{}", STANDARD.encode(Sha256::digest(public_key_der)));
    if claims["sub"] != subject.as_str() {
        return Err(invalid("The subject does not name this account and user."));
    }
    if claims["iss"] != format!("{subject}.{fingerprint}").as_str() {
        return Err(invalid(
            "The issuer does not carry the public key's fingerprint.",
        ));
    }
    let (Some(iat), Some(exp)) = (claims["iat"].as_u64(), claims["exp"].as_u64()) else {
        return Err(invalid("iat and exp are required."));
    };
    if exp <= now() {
        return Err("JWT token has expired.".into());
    }
    if exp.saturating_sub(iat) > contract::MAX_JWT_LIFETIME_S {
        return Err(invalid("Its lifetime exceeds one hour."));
    }
    Ok(())
}

/// Checks the headers every call needs; `Err` is the answer.
fn common_headers(state: &SimState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    if headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim().is_empty())
    {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "391903",
            "User-Agent header is required.",
        )));
    }
    authenticate(&state.config.auth, headers)
}

/// The number of `?` bind variables outside string literals, quoted names and comments.
fn bind_variables(statement: &str) -> usize {
    let mut count = 0;
    let mut chars = statement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                while let Some(d) = chars.next() {
                    if d == '\\' && c == '\'' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '?' => count += 1,
            _ => {}
        }
    }
    count
}

/// The bound values of a body, in `?` order; `Err` is the answer.
fn bindings(
    body: &Value,
    expected: usize,
    handle: &str,
) -> Result<Vec<Option<String>>, Box<Response>> {
    let bad = |message: String| {
        Box::new(
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(
                    json!({"code": "002049", "sqlState": "07002", "message": message,
                        "statementHandle": handle}),
                ),
            )
                .into_response(),
        )
    };
    let given = match &body["bindings"] {
        Value::Null => serde_json::Map::new(),
        Value::Object(map) => map.clone(),
        _ => return Err(bad("bindings must be an object".into())),
    };
    let mut values = Vec::with_capacity(expected);
    for position in 1..=expected {
        let Some(binding) = given.get(&position.to_string()) else {
            return Err(bad(format!("Bind variable {position} not set.")));
        };
        let kind = binding["type"].as_str().unwrap_or_default();
        if !contract::BIND_TYPES.contains(&kind) {
            return Err(bad(format!(
                "Unsupported bind type `{kind}` for variable {position}."
            )));
        }
        values.push(match &binding["value"] {
            Value::Null => None,
            Value::String(text) => Some(text.clone()),
            other => {
                return Err(bad(format!(
                    "Bind value of variable {position} must be a string: {other}"
                )))
            }
        });
    }
    if given.len() != expected {
        return Err(bad(format!(
            "{} bindings given for {expected} bind variables.",
            given.len()
        )));
    }
    Ok(values)
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

async fn submit(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Err(answer) = common_headers(&state, &headers) {
        return *answer;
    }
    if !headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
    {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "391902",
            "Unsupported media type; the request body must be application/json.",
        );
    }
    let request_id = query.get("requestId").cloned();
    if request_id.as_deref().is_some_and(|r| !is_uuid(r)) {
        return error(
            StatusCode::BAD_REQUEST,
            "391905",
            "requestId must be a UUID.",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "391900",
            "Unable to parse the request body.",
        );
    };
    let Some(statement) = body["statement"].as_str().filter(|s| !s.trim().is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "391901", "statement is required.");
    };
    if let Some(timeout) = body.get("timeout") {
        if timeout.as_u64().is_none_or(|t| t > contract::MAX_TIMEOUT_S) {
            return error(
                StatusCode::BAD_REQUEST,
                "391904",
                "timeout must be an integer between 0 and 604800.",
            );
        }
    }
    for field in ["database", "schema", "warehouse", "role"] {
        if body.get(field).is_some_and(|v| !v.is_string()) {
            return error(
                StatusCode::BAD_REQUEST,
                "391900",
                &format!("{field} must be a string."),
            );
        }
    }
    let retry = query.get("retry").is_some_and(|r| r == "true");
    if let (true, Some(id)) = (retry, &request_id) {
        let earlier = state
            .executions
            .iter()
            .rposition(|e| e.request_id.as_deref() == Some(id.as_str()));
        if let Some(index) = earlier {
            if !matches!(state.executions[index].outcome, SimOutcome::Failed(..)) {
                let asynchronous = query.get("async").is_some_and(|a| a == "true");
                return answer_for(&mut state.executions[index], asynchronous);
            }
        }
    }
    let handle = format!(
        "01bc{:04x}-0000-7a1e-0000-{:012x}",
        state.next_handle, state.next_handle
    );
    state.next_handle += 1;
    let statement_text = statement.trim().trim_end_matches(';').to_owned();
    if statement_text.contains(';') {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"code": "000008", "sqlState": "0A000", "statementHandle": handle,
                        "message": "Actual statement count 2 did not match the desired statement count 1."})),
        )
            .into_response();
    }
    let bound = match bindings(&body, bind_variables(&statement_text), &handle) {
        Ok(bound) => bound,
        Err(answer) => return *answer,
    };
    let known = state
        .config
        .statements
        .iter()
        .find(|s| s.text == statement_text)
        .cloned();
    let outcome = match known {
        Some(known) => known.run(&mut state.config.rows, &bound),
        None => SimOutcome::Failed(
            "001003".into(),
            "42000".into(),
            "SQL compilation error: syntax error or object does not exist (the simulator knows no such statement)".into(),
        ),
    };
    let reads_left = state.config.running_reads;
    state.executions.push(SimExecution {
        handle,
        request_id,
        statement: statement_text,
        bound,
        outcome,
        reads_left,
    });
    let asynchronous = query.get("async").is_some_and(|a| a == "true");
    let execution = state.executions.last_mut().expect("just pushed");
    answer_for(execution, asynchronous)
}

async fn status(
    State(state): State<Shared>,
    Path(handle): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Err(answer) = common_headers(&state, &headers) {
        return *answer;
    }
    match state
        .executions
        .iter_mut()
        .rev()
        .find(|e| e.handle == handle)
    {
        Some(execution) => answer_for(execution, false),
        None => error(
            StatusCode::NOT_FOUND,
            "333333",
            &format!("Statement {handle} not found."),
        ),
    }
}

/// The answer for `execution` now: 202 while it has reads left (or on an asynchronous
/// submission), then its result.
fn answer_for(execution: &mut SimExecution, asynchronous: bool) -> Response {
    let handle = execution.handle.clone();
    let status_url = format!("{}/{handle}", contract::STATEMENTS);
    if asynchronous || execution.reads_left > 0 {
        if !asynchronous {
            execution.reads_left -= 1;
        }
        return (
            StatusCode::ACCEPTED,
            Json(json!({
                "code": contract::RUNNING_CODE,
                "message": "Asynchronous execution in progress. Use provided query id to perform query monitoring and management.",
                "statementHandle": handle,
                "statementStatusUrl": status_url,
            })),
        )
            .into_response();
    }
    let fixed = |name: &str| json!({"name": name, "type": "fixed", "nullable": false, "scale": 0, "precision": 19});
    let (row_type, data, stats) = match &execution.outcome {
        SimOutcome::Failed(code, sql_state, message) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(
                    json!({"code": code, "sqlState": sql_state, "message": message,
                            "statementHandle": handle, "statementStatusUrl": status_url}),
                ),
            )
                .into_response()
        }
        SimOutcome::Updated(n) => (
            json!([
                fixed("number of rows updated"),
                fixed("number of multi-joined rows updated")
            ]),
            json!([[n.to_string(), "0"]]),
            json!({"numRowsUpdated": n, "numDmlDuplicates": 0}),
        ),
        SimOutcome::Deleted(n) => (
            json!([fixed("number of rows deleted")]),
            json!([[n.to_string()]]),
            json!({"numRowsDeleted": n}),
        ),
        SimOutcome::Count(n) => (
            json!([fixed("COUNT(*)")]),
            json!([[n.to_string()]]),
            Value::Null,
        ),
        SimOutcome::Rows(columns, rows) => (
            Value::Array(
                columns
                    .iter()
                    .map(|c| json!({"name": c, "type": "text", "nullable": true}))
                    .collect(),
            ),
            json!(rows),
            Value::Null,
        ),
    };
    let rows = data.as_array().map_or(0, Vec::len);
    let mut body = json!({
        "resultSetMetaData": {"numRows": rows, "format": "jsonv2",
                              "partitionInfo": [{"rowCount": rows}], "rowType": row_type},
        "data": data,
        "code": contract::SUCCESS_CODE,
        "sqlState": "00000",
        "statementHandle": handle,
        "message": "Statement executed successfully.",
        "statementStatusUrl": status_url,
    });
    if !stats.is_null() {
        body["stats"] = stats;
    }
    (StatusCode::OK, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_variables_outside_literals_and_comments_are_counted() {
        assert_eq!(bind_variables("SELECT ? , '?', \"a?\" -- ?\n, ?"), 2);
        assert_eq!(bind_variables("SELECT 'it\\'s ?' , ?"), 1);
    }

    #[test]
    fn request_ids_must_be_uuids() {
        assert!(is_uuid("6f1c1c3e-8c1d-4c38-9a8b-3a4c9e7d5b21"));
        assert!(!is_uuid("req-1"));
    }
}
