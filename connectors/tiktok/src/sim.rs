//! Simulator of TikTok's Audience Segment API: test and demo infrastructure, not TikTok.
//!
//! It serves `POST /open_api/v1.3/segment/mapping/` on loopback and checks what TikTok checks:
//! the `Access-Token` header, the advertiser, `action` (`add` or `delete`), `id_schema` (known
//! column names, no repeats), `batch_data` (at most [`contract::MAX_BATCH_DATA`] rows, each with
//! one cell per column, each cell `{}` or an `id` of the column's hash form with `audience_ids`
//! the advertiser owns, and at least one filled cell). Like TikTok it answers HTTP 200 with a
//! `code` in the body (`0` on success, see [`contract`] for the others). The audiences' members
//! are kept in memory. Faults and call records come from `hush-sim-kit`. Sources (read
//! 2026-12-01) are listed in the crate README.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hush_sim_kit::{any_loopback_port, serve, RunningSim};
use serde_json::{json, Value};

/// TikTok's side of the contract, kept apart from the connector's types so that a wrong limit
/// or column name in the connector cannot pass here too.
pub mod contract {
    /// The API version in the path (`/open_api/v1.3/…`), the one TikTok serves and documents.
    pub const MAPPING_PATH: &str = "/open_api/v1.3/segment/mapping/";
    /// Column names of `id_schema` with the length of their hex digest.
    pub const ID_SCHEMAS: &[(&str, usize)] = &[
        ("EMAIL_SHA256", 64),
        ("PHONE_SHA256", 64),
        ("IDFA_SHA256", 64),
        ("AAID_SHA256", 64),
        ("IDFA_MD5", 32),
        ("AAID_MD5", 32),
    ];
    /// Rows per call the simulator accepts (the batch size TikTok-certified integrations send;
    /// TikTok's own page could not be read, see the crate README).
    pub const MAX_BATCH_DATA: usize = 1_000;
    /// Success.
    pub const OK: i64 = 0;
    /// The token has no permission on the advertiser.
    pub const NO_PERMISSION: i64 = 40001;
    /// A parameter is missing or wrong.
    pub const PARAM_ERROR: i64 = 40002;
    /// Too many requests.
    pub const RATE_LIMITED: i64 = 40100;
    /// The access token is missing.
    pub const TOKEN_MISSING: i64 = 40104;
    /// The access token is wrong or revoked.
    pub const TOKEN_INVALID: i64 = 40105;
}

/// What the simulated ad account holds.
#[derive(Debug, Clone)]
pub struct TikTokSimConfig {
    /// The advertiser (ad account) id.
    pub advertiser_id: String,
    /// The access token it accepts.
    pub access_token: String,
    /// Audiences the advertiser owns.
    pub audience_ids: Vec<String>,
}

impl Default for TikTokSimConfig {
    fn default() -> Self {
        Self {
            advertiser_id: "7000000000000000001".into(),
            access_token: "sim-tiktok-access-token".into(),
            audience_ids: vec!["1800000000000001".into(), "1800000000000002".into()],
        }
    }
}

struct Account {
    config: TikTokSimConfig,
    /// Members of each audience: `(column, digest)`.
    members: BTreeMap<String, BTreeSet<(String, String)>>,
    /// Calls that reached the rate limiter and were refused with 40100, still to come.
    throttle_next: usize,
}

type Shared = Arc<Mutex<Account>>;

/// A running simulator of one TikTok ad account's audiences.
pub struct TikTokSim {
    running: RunningSim,
    account: Shared,
}

impl TikTokSim {
    /// Serves the simulated ad account on a free loopback port.
    pub async fn start(config: TikTokSimConfig) -> io::Result<Self> {
        let members = config
            .audience_ids
            .iter()
            .map(|id| (id.clone(), BTreeSet::new()))
            .collect();
        let account = Arc::new(Mutex::new(Account {
            config,
            members,
            throttle_next: 0,
        }));
        let router = Router::new()
            .route(contract::MAPPING_PATH, post(mapping))
            .with_state(account.clone());
        let running = serve(router, any_loopback_port()).await?;
        Ok(Self { running, account })
    }

    /// Adds the digests of `column` (e.g. `EMAIL_SHA256`) to every audience.
    pub fn add_members<I, S>(&self, column: &str, digests: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut account = self.account.lock().unwrap();
        let digests: Vec<String> = digests.into_iter().map(Into::into).collect();
        for members in account.members.values_mut() {
            for digest in &digests {
                members.insert((column.to_owned(), digest.clone()));
            }
        }
    }

    /// The digests in `audience_id`, whatever their column.
    pub fn members(&self, audience_id: &str) -> BTreeSet<String> {
        let account = self.account.lock().unwrap();
        account
            .members
            .get(audience_id)
            .map(|m| m.iter().map(|(_, digest)| digest.clone()).collect())
            .unwrap_or_default()
    }

    /// Answers the next `calls` calls with TikTok's rate-limit code (40100, HTTP 200, no
    /// `Retry-After`).
    pub fn throttle_next(&self, calls: usize) {
        self.account.lock().unwrap().throttle_next = calls;
    }
}

static NEXT_REQUEST_ID: AtomicU64 = AtomicU64::new(1);

fn envelope(code: i64, message: &str) -> Response {
    let request_id = format!(
        "20261201000000{:010}",
        NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed)
    );
    Json(json!({"code": code, "message": message, "request_id": request_id, "data": {}}))
        .into_response()
}

/// The mapping's `(delete, id_schema, rows)`, each row a list of `(column, digest, audiences)`,
/// or TikTok's complaint.
type Mapping = (bool, Vec<String>, Vec<Vec<(String, String, Vec<String>)>>);

fn parse(body: &Value, account: &Account) -> Result<Mapping, (i64, String)> {
    let param = |message: String| (contract::PARAM_ERROR, message);
    let advertisers = body["advertiser_ids"]
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| param("advertiser_ids: Field required.".into()))?;
    for advertiser in advertisers {
        if advertiser.as_str() != Some(account.config.advertiser_id.as_str()) {
            return Err((
                contract::NO_PERMISSION,
                format!("No permission to operate advertiser {advertiser}."),
            ));
        }
    }
    let delete = match body["action"].as_str() {
        Some("delete") => true,
        Some("add") => false,
        _ => return Err(param("action: must be one of add, delete.".into())),
    };
    let schema: Vec<String> = body["id_schema"]
        .as_array()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| param("id_schema: Field required.".into()))?
        .iter()
        .map(|c| c.as_str().unwrap_or_default().to_owned())
        .collect();
    let mut lengths = Vec::with_capacity(schema.len());
    for (i, column) in schema.iter().enumerate() {
        let Some((_, length)) = contract::ID_SCHEMAS.iter().find(|(c, _)| c == column) else {
            return Err(param(format!(
                "id_schema[{i}]: {column:?} is not a valid id type."
            )));
        };
        if schema[..i].contains(column) {
            return Err(param(format!("id_schema[{i}]: {column} appears twice.")));
        }
        lengths.push(*length);
    }
    let batch = body["batch_data"]
        .as_array()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| param("batch_data: Field required.".into()))?;
    if batch.len() > contract::MAX_BATCH_DATA {
        return Err(param(format!(
            "batch_data: at most {} rows per request, got {}.",
            contract::MAX_BATCH_DATA,
            batch.len()
        )));
    }
    let mut rows = Vec::with_capacity(batch.len());
    for (r, row) in batch.iter().enumerate() {
        let cells = row
            .as_array()
            .filter(|c| c.len() == schema.len())
            .ok_or_else(|| {
                param(format!(
                    "batch_data[{r}]: must hold one object per id_schema entry ({}).",
                    schema.len()
                ))
            })?;
        let mut filled = Vec::new();
        for (c, cell) in cells.iter().enumerate() {
            let Some(object) = cell.as_object() else {
                return Err(param(format!("batch_data[{r}][{c}]: must be an object.")));
            };
            if object.is_empty() {
                continue;
            }
            let id = cell["id"].as_str().unwrap_or_default();
            let hex = id.len() == lengths[c]
                && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !hex {
                return Err(param(format!(
                    "batch_data[{r}][{c}].id: not a valid {} value.",
                    schema[c]
                )));
            }
            let audiences: Vec<String> = cell["audience_ids"]
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| {
                    param(format!(
                        "batch_data[{r}][{c}].audience_ids: Field required."
                    ))
                })?
                .iter()
                .map(|a| a.as_str().unwrap_or_default().to_owned())
                .collect();
            if let Some(unknown) = audiences.iter().find(|a| !account.members.contains_key(*a)) {
                return Err(param(format!(
                    "batch_data[{r}][{c}].audience_ids: audience {unknown:?} does not exist under this advertiser."
                )));
            }
            filled.push((schema[c].clone(), id.to_owned(), audiences));
        }
        if filled.is_empty() {
            return Err(param(format!("batch_data[{r}]: every cell is empty.")));
        }
        rows.push(filled);
    }
    Ok((delete, schema, rows))
}

async fn mapping(State(account): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut account = account.lock().unwrap();
    match headers.get("access-token").and_then(|v| v.to_str().ok()) {
        None => return envelope(contract::TOKEN_MISSING, "Access token is null."),
        Some(token) if token != account.config.access_token => {
            return envelope(
                contract::TOKEN_INVALID,
                "Access token is incorrect or has been revoked.",
            )
        }
        Some(_) => {}
    }
    if account.throttle_next > 0 {
        account.throttle_next -= 1;
        return envelope(
            contract::RATE_LIMITED,
            "Too many requests. Please retry in some time.",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return envelope(contract::PARAM_ERROR, "The request body is not valid JSON.");
    };
    let (delete, _, rows) = match parse(&body, &account) {
        Ok(parsed) => parsed,
        Err((code, message)) => return envelope(code, &message),
    };
    for (column, digest, audiences) in rows.into_iter().flatten() {
        for audience in audiences {
            let members = account.members.entry(audience).or_default();
            let member = (column.clone(), digest.clone());
            if delete {
                members.remove(&member);
            } else {
                members.insert(member);
            }
        }
    }
    envelope(contract::OK, "OK")
}

/// The simulator's address (`base_url()`) and its fault injection and call log
/// (`control()`).
impl std::ops::Deref for TikTokSim {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.running
    }
}
