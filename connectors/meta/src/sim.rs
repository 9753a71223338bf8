//! Simulator of Meta's Custom Audience `users` edge: test and demo infrastructure, not Meta.
//!
//! It serves `DELETE /{api_version}/{audience_id}/users` on loopback and checks what Meta
//! checks: the version path segment (only the Marketing API versions Meta serves, see
//! [`contract`]), the audience id, the access token (form `access_token` or
//! `Authorization: Bearer`), the `payload` JSON and its schema names, at most 10,000 rows a call,
//! and the consistency of `session` fields across a split batch. Each row value must be a
//! lowercase 64-character SHA-256 hex digest (a mobile advertiser id may be raw, in lowercase);
//! an unhashed or upper-case value is counted among
//! `num_invalid_entries` with a sample, as Meta does, and the rest of the call is applied.
//! Membership is kept in memory and removal is immediate (Meta takes up to 24 hours). The
//! audience can be flagged (`operation_status` 471), after which updates are refused with
//! Meta's "Audience Upload Blocked" error. Faults and call records come from `hush-sim-kit`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::delete;
use axum::{Json, Router};
use hush_contracts::identifiers::is_sha256_hex;
use hush_sim_kit::{any_loopback_port, serve, RecordedCall, RunningSim};
use serde_json::{json, Value};

use self::contract::{
    served_on, AUDIENCE_BLOCKED_SUBCODE, DEPRECATED_VERSION_CODE, MAX_ROWS_PER_CALL,
};

/// Meta's side of the contract, copied from Meta's documentation rather than from the
/// connector, so that a wrong version or limit in the connector cannot pass here too.
pub mod contract {
    /// Marketing API versions with their expiry day (`None`: not announced), as Meta's
    /// "Marketing API version history" gave them on 2026-12-01 (Custom Audience `users` is a
    /// Marketing API edge). A version is served until its expiry day; older ones are gone.
    pub const VERSIONS: &[(&str, Option<&str>)] = &[
        ("v24.0", Some("2026-11-10")),
        ("v25.0", Some("2027-02-23")),
        ("v26.0", None),
        ("v27.0", None),
    ];

    /// The versions Meta serves on `today` (`YYYY-MM-DD`), oldest first.
    pub fn served_on(today: &str) -> Vec<&'static str> {
        VERSIONS
            .iter()
            .filter(|(_, expires)| expires.is_none_or(|day| today < day))
            .map(|(version, _)| *version)
            .collect()
    }
    /// Graph error code for a call to a version Meta no longer serves: "(#2635) You are calling
    /// a deprecated version of the Ads API". Source: Meta developer blog, 2024-04-16.
    pub const DEPRECATED_VERSION_CODE: i64 = 2635;
    /// Most rows one call may carry: "only a maximum of 10000 at a time". Source: Custom
    /// Audience Users reference.
    pub const MAX_ROWS_PER_CALL: usize = 10_000;
    /// `error_subcode` of "Audience Upload Blocked", answered while the audience is flagged
    /// with `operation_status` 471. Source: Custom Audience Users reference.
    pub const AUDIENCE_BLOCKED_SUBCODE: i64 = 1_713_230;
}

/// Whether `segment` has the Graph API version form `v<major>.<minor>`.
fn looks_like_version(segment: &str) -> bool {
    segment
        .strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(major, minor)| {
            [major, minor]
                .iter()
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Single-key schema names the simulator accepts.
const SINGLE_KEY_SCHEMAS: [&str; 3] = ["EMAIL_SHA256", "PHONE_SHA256", "MOBILE_ADVERTISER_ID"];

/// Multi-key schema names the simulator accepts.
const MULTI_KEY_NAMES: [&str; 16] = [
    "EXTERN_ID",
    "EMAIL",
    "PHONE",
    "GEN",
    "DOBY",
    "DOBM",
    "DOBD",
    "LN",
    "FN",
    "FI",
    "CT",
    "ST",
    "ZIP",
    "MADID",
    "COUNTRY",
    "APPUID",
];

/// Invalid-entry samples returned at most per call.
const MAX_SAMPLES: usize = 10;

#[derive(Default)]
struct SessionProgress {
    next_seq: u64,
    closed: bool,
}

struct Audience {
    audience_id: String,
    access_token: String,
    members: BTreeSet<String>,
    flagged: bool,
    sessions: HashMap<u64, SessionProgress>,
    answers: u64,
}

type Shared = Arc<Mutex<Audience>>;

/// A running simulator of one Custom Audience.
pub struct MetaSim {
    running: RunningSim,
    audience: Shared,
}

impl MetaSim {
    /// Serves a simulated audience `audience_id` that accepts `access_token`, on a free
    /// loopback port.
    pub async fn start(audience_id: &str, access_token: &str) -> io::Result<Self> {
        let audience = Arc::new(Mutex::new(Audience {
            audience_id: audience_id.to_owned(),
            access_token: access_token.to_owned(),
            members: BTreeSet::new(),
            flagged: false,
            sessions: HashMap::new(),
            answers: 0,
        }));
        let router = Router::new()
            .route("/{version}/{audience_id}/users", delete(remove_users))
            .with_state(audience.clone());
        let running = serve(router, any_loopback_port()).await?;
        Ok(Self { running, audience })
    }

    /// Seeds the audience with members (lowercase SHA-256 hex values).
    pub fn add_members<I, S>(&self, hashes: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut audience = self.audience.lock().unwrap();
        audience.members.extend(hashes.into_iter().map(Into::into));
    }

    /// Current members.
    pub fn members(&self) -> BTreeSet<String> {
        self.audience.lock().unwrap().members.clone()
    }

    /// Flags (or clears) the audience as `operation_status` 471: membership updates are
    /// refused while flagged.
    pub fn flag_audience(&self, flagged: bool) {
        self.audience.lock().unwrap().flagged = flagged;
    }
}

/// The form parameters of a recorded call (its body is `application/x-www-form-urlencoded`).
pub fn form_of(call: &RecordedCall) -> BTreeMap<String, String> {
    serde_urlencoded::from_bytes(&call.body).unwrap_or_default()
}

fn graph_error(
    audience: &mut Audience,
    code: i64,
    subcode: Option<i64>,
    message: &str,
) -> Response {
    audience.answers += 1;
    let mut error = json!({
        "message": message,
        "type": if matches!(code, 104 | 190) { "OAuthException" } else { "GraphMethodException" },
        "code": code,
        "fbtrace_id": format!("SimTrace{:06}", audience.answers),
    });
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    if subcode == Some(AUDIENCE_BLOCKED_SUBCODE) {
        error["type"] = json!("OAuthException");
        error["error_user_title"] = json!("Audience Upload Blocked");
        error["error_user_msg"] = json!(
            "Resolve the integrity restrictions on this customer-list audience in Audience \
             Manager before updating its members."
        );
    }
    (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response()
}

fn invalid_parameter(audience: &mut Audience, message: &str) -> Response {
    graph_error(audience, 100, None, &format!("(#100) {message}"))
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("OAuth "))
        .map(str::to_owned)
}

struct SessionFields {
    id: u64,
    seq: u64,
    last: bool,
}

fn parse_session(text: &str) -> Result<SessionFields, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|_| "param session must be a JSON object".to_owned())?;
    let id = value["session_id"]
        .as_u64()
        .filter(|id| *id > 0)
        .ok_or("session.session_id must be a positive integer")?;
    let seq = value["batch_seq"]
        .as_u64()
        .filter(|seq| *seq > 0)
        .ok_or("session.batch_seq must be a positive integer")?;
    let last = value["last_batch_flag"]
        .as_bool()
        .ok_or("session.last_batch_flag must be a boolean")?;
    if !value["estimated_num_total"].is_null() && !value["estimated_num_total"].is_u64() {
        return Err("session.estimated_num_total must be an integer".to_owned());
    }
    Ok(SessionFields { id, seq, last })
}

enum ParsedSchema {
    Single(String),
    Multi(Vec<String>),
}

fn parse_schema(schema: &Value) -> Result<ParsedSchema, String> {
    match schema {
        Value::String(name) if SINGLE_KEY_SCHEMAS.contains(&name.as_str()) => {
            Ok(ParsedSchema::Single(name.clone()))
        }
        Value::Array(names) if !names.is_empty() => names
            .iter()
            .map(|n| {
                n.as_str()
                    .filter(|n| MULTI_KEY_NAMES.contains(n))
                    .map(str::to_owned)
                    .ok_or_else(|| format!("Invalid schema key {n}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(ParsedSchema::Multi),
        other => Err(format!("Invalid schema {other}")),
    }
}

/// The values of one row, or `None` when the row has the wrong shape.
fn row_values(schema: &ParsedSchema, row: &Value) -> Option<Vec<(String, String)>> {
    match (schema, row) {
        (ParsedSchema::Single(name), Value::String(value)) => {
            Some(vec![(name.clone(), value.clone())])
        }
        (ParsedSchema::Multi(names), Value::Array(values)) if values.len() == names.len() => names
            .iter()
            .zip(values)
            .map(|(name, value)| value.as_str().map(|v| (name.clone(), v.to_owned())))
            .collect(),
        _ => None,
    }
}

/// Whether Meta could use this row: at least one key present, mobile advertiser ids in
/// lowercase, every other key a lowercase SHA-256 digest. Meta's Business SDK sends
/// `MOBILE_ADVERTISER_ID` unhashed but hashes a multi-key `MADID`, and Meta's hashing table for
/// MAIDs was not found, so a lowercase MAID is accepted raw or hashed.
fn row_is_valid(values: &[(String, String)]) -> bool {
    values.iter().any(|(_, v)| !v.is_empty())
        && values.iter().all(|(key, value)| {
            value.is_empty()
                || match key.as_str() {
                    "EXTERN_ID" => true,
                    "MOBILE_ADVERTISER_ID" | "MADID" => *value == value.to_lowercase(),
                    _ => is_sha256_hex(value),
                }
        })
}

async fn remove_users(
    State(audience): State<Shared>,
    Path((version, audience_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut audience = audience.lock().unwrap();
    let audience = &mut *audience;
    let form: BTreeMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();

    if !looks_like_version(&version) {
        return graph_error(
            audience,
            2500,
            None,
            &format!("Unknown path components: /{version}"),
        );
    }
    let served = served_on(&chrono::Utc::now().format("%Y-%m-%d").to_string());
    if !served.contains(&version.as_str()) {
        let latest = served.last().copied().unwrap_or("none");
        return graph_error(
            audience,
            DEPRECATED_VERSION_CODE,
            None,
            &format!(
                "(#2635) You are calling a deprecated version of the Ads API. Please update to \
                 the latest version: {latest}."
            ),
        );
    }
    let Some(token) = form
        .get("access_token")
        .cloned()
        .or_else(|| bearer_token(&headers))
    else {
        return graph_error(
            audience,
            104,
            None,
            "An access token is required to request this resource.",
        );
    };
    if token != audience.access_token {
        return graph_error(
            audience,
            190,
            None,
            "Invalid OAuth access token - Cannot parse access token",
        );
    }
    if audience_id != audience.audience_id {
        let message = format!(
            "Unsupported delete request. Object with ID '{audience_id}' does not exist, cannot be \
             loaded due to missing permissions, or does not support this operation"
        );
        return graph_error(audience, 100, Some(33), &message);
    }
    if audience.flagged {
        return graph_error(
            audience,
            100,
            Some(AUDIENCE_BLOCKED_SUBCODE),
            "Invalid parameter",
        );
    }
    let Some(payload_text) = form.get("payload") else {
        return invalid_parameter(audience, "The parameter payload is required");
    };
    let Ok(payload) = serde_json::from_str::<Value>(payload_text) else {
        return invalid_parameter(audience, "param payload must be a JSON object");
    };
    let schema = match parse_schema(&payload["schema"]) {
        Ok(schema) => schema,
        Err(message) => return invalid_parameter(audience, &message),
    };
    let Some(rows) = payload["data"].as_array().filter(|rows| !rows.is_empty()) else {
        return invalid_parameter(audience, "payload.data must be a non-empty array");
    };
    if rows.len() > MAX_ROWS_PER_CALL {
        let message = format!(
            "payload.data holds {} rows; at most {MAX_ROWS_PER_CALL} are accepted in one call",
            rows.len()
        );
        return invalid_parameter(audience, &message);
    }
    let Some(rows) = rows
        .iter()
        .map(|row| row_values(&schema, row))
        .collect::<Option<Vec<_>>>()
    else {
        return invalid_parameter(audience, "every row of payload.data must match the schema");
    };
    let session = match form.get("session").map(|s| parse_session(s)).transpose() {
        Ok(session) => session,
        Err(message) => return invalid_parameter(audience, &message),
    };
    if let Some(session) = &session {
        let progress = audience.sessions.entry(session.id).or_default();
        let expected = progress.next_seq.max(1);
        if progress.closed || session.seq != expected {
            let message = format!(
                "session {} expects batch_seq {expected}{}, got {}",
                session.id,
                if progress.closed {
                    " but is already closed"
                } else {
                    ""
                },
                session.seq
            );
            return invalid_parameter(audience, &message);
        }
        progress.next_seq = expected + 1;
        progress.closed = session.last;
    }

    let mut invalid = 0;
    let mut samples = serde_json::Map::new();
    for row in &rows {
        if row_is_valid(row) {
            for (_, value) in row {
                audience.members.remove(value);
            }
        } else {
            invalid += 1;
            if samples.len() < MAX_SAMPLES {
                let value = row.iter().map(|(_, v)| v.as_str()).find(|v| !v.is_empty());
                samples.insert(value.unwrap_or("").to_owned(), json!("invalid hash"));
            }
        }
    }
    audience.answers += 1;
    let session_id = session.map_or(audience.answers, |s| s.id);
    Json(json!({
        "audience_id": audience.audience_id,
        "session_id": session_id.to_string(),
        "num_received": rows.len(),
        "num_invalid_entries": invalid,
        "invalid_entry_samples": samples,
    }))
    .into_response()
}

/// The simulator's address (`base_url()`) and its fault injection and call log
/// (`control()`).
impl std::ops::Deref for MetaSim {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.running
    }
}
