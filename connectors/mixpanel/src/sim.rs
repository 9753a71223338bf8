//! Simulator of Mixpanel's GDPR/CCPA API (v3) deletion tasks: test and demo infrastructure,
//! never a real Mixpanel service.
//!
//! Written from Mixpanel's documentation (read 2026-12-03):
//! https://docs.mixpanel.com/reference/gdpr-api (endpoints, `token` query parameter, bearer
//! OAuth token, up to 2,000 distinct ids, `compliance_type` CCPA or GDPR, one request a second)
//! and its OpenAPI description https://docs.mixpanel.com/openapi/gdpr.openapi.yaml (`JobCreated`
//! `{"status":"ok","results":{"task_id"}}`, `CheckDeletionResponse` and the status enum
//! `PENDING`, `STAGING`, `STARTED`, `SUCCESS`, `FAILURE`, `REVOKED`, `NOT_FOUND`, `UNKNOWN`).
//!
//! It checks what Mixpanel checks, from its own copy of the contract ([`contract`]): the
//! project token, the OAuth token, the JSON content type, the body's fields, 1 to 2,000
//! non-empty distinct ids, the compliance type, and one request a second (429). A task advances
//! on each status read: `PENDING` → `STAGING` → `STARTED` (for a configurable number of reads) →
//! `SUCCESS`, or the final status it was told to end with; an unknown task reads `NOT_FOUND`.
//! Faults (429, 5xx, latency) and call records come from [`hush_sim_kit`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hush_sim_kit::request::{json_object, too_soon};
use hush_sim_kit::stateful::{SharedState, StatefulSim};
use hush_sim_kit::{any_loopback_port, RunningSim};
use serde_json::{json, Value};

use self::contract::*;

/// Mixpanel's side of the contract, copied from its documentation rather than from the
/// connector.
pub mod contract {
    /// Path of the deletion endpoint (Mixpanel documents it with a trailing slash).
    pub const PATH: &str = "/api/app/data-deletions/v3.0/";
    /// Fields of the deletion body.
    pub const FIELDS: &[&str] = &["distinct_ids", "compliance_type"];
    /// `compliance_type` values.
    pub const COMPLIANCE_TYPES: &[&str] = &["GDPR", "CCPA"];
    /// Most distinct ids one request may carry.
    pub const MAX_DISTINCT_IDS: usize = 2_000;
    /// Shortest time between two GDPR API requests.
    pub const MIN_SPACING_MS: u64 = 1_000;
    /// Final task statuses a task can be told to end with.
    pub const FINAL_STATUSES: &[&str] = &["SUCCESS", "FAILURE", "REVOKED"];
}

/// What the simulated project accepts.
#[derive(Debug, Clone)]
pub struct MixpanelSimConfig {
    /// Project token (`token` query parameter).
    pub project_token: String,
    /// GDPR OAuth token (bearer).
    pub oauth_token: String,
    /// Project id reported in tasks.
    pub project_id: u64,
    /// Status reads that still answer `STARTED` after `PENDING` and `STAGING`.
    pub started_reads: u32,
    /// Shortest time between two requests of any kind (Mixpanel: one second).
    pub min_spacing: Duration,
}

impl Default for MixpanelSimConfig {
    fn default() -> Self {
        Self {
            project_token: "simprojecttoken591b3354bb2bdd96".into(),
            oauth_token: "simoauthvZcErNw8JCq42BZUJyWoZmD".into(),
            project_id: 2_195_193,
            started_reads: 1,
            min_spacing: Duration::from_millis(MIN_SPACING_MS),
        }
    }
}

/// A deletion task the simulator holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTask {
    /// `task_id` / `tracking_id`.
    pub id: String,
    /// `distinct_ids` as sent.
    pub distinct_ids: Vec<String>,
    /// `compliance_type` as sent (GDPR when left out).
    pub compliance_type: String,
    /// Current status.
    pub status: String,
    reads: u32,
    ends_with: String,
}

struct SimState {
    config: MixpanelSimConfig,
    next_id: u64,
    tasks: BTreeMap<String, SimTask>,
    end_next_with: Option<String>,
    last_request: Option<Instant>,
}

type Shared = SharedState<SimState>;

/// A running GDPR/CCPA API simulator.
pub struct MixpanelSim(StatefulSim<SimState>);

impl MixpanelSim {
    /// Starts the simulator on any free loopback port.
    pub async fn start(config: MixpanelSimConfig) -> std::io::Result<Self> {
        Self::start_on(config, any_loopback_port()).await
    }

    /// Starts the simulator on `addr`.
    pub async fn start_on(config: MixpanelSimConfig, addr: SocketAddr) -> std::io::Result<Self> {
        let state = SimState {
            config,
            next_id: 1,
            tasks: BTreeMap::new(),
            end_next_with: None,
            last_request: None,
        };
        let router = Router::new()
            .route(PATH, post(create))
            .route("/api/app/data-deletions/v3.0/{task_id}", get(read));
        StatefulSim::serve(state, router, addr).await.map(Self)
    }

    /// The next task created ends with `status` (`FAILURE` or `REVOKED`) instead of `SUCCESS`.
    ///
    /// # Panics
    /// If `status` is not a final status.
    pub fn end_next_task_with(&self, status: &str) {
        assert!(
            FINAL_STATUSES.contains(&status),
            "not a final status: {status}"
        );
        self.0.lock().end_next_with = Some(status.to_owned());
    }

    /// Every task created so far, oldest first.
    pub fn tasks(&self) -> Vec<SimTask> {
        self.0.lock().tasks.values().cloned().collect()
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"status": "error", "error": message}))).into_response()
}

/// The refusal for a call without the project token and OAuth token, or sent too soon after
/// the previous one.
fn gate(
    state: &mut SimState,
    headers: &HeaderMap,
    query: &BTreeMap<String, String>,
) -> Option<Response> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(state.config.oauth_token.as_str()) {
        return Some(refuse(
            StatusCode::UNAUTHORIZED,
            "Invalid or expired GDPR OAuth token",
        ));
    }
    if query.get("token") != Some(&state.config.project_token) {
        return Some(refuse(
            StatusCode::FORBIDDEN,
            "The token does not name a project this OAuth token may manage",
        ));
    }
    if too_soon(&mut state.last_request, state.config.min_spacing) {
        return Some(refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit exceeded: 1 request per second for GDPR APIs",
        ));
    }
    None
}

async fn create(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refusal) = gate(&mut state, &headers, &query) {
        return refusal;
    }
    let unknown = |field: &str| format!("Unexpected parameter: {field}");
    let body = match json_object(&headers, &body, FIELDS, unknown) {
        Ok(body) => body,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, &message),
    };
    let Some(ids) = body.get("distinct_ids").and_then(Value::as_array) else {
        return refuse(StatusCode::BAD_REQUEST, "distinct_ids is required");
    };
    if ids.is_empty() || ids.len() > MAX_DISTINCT_IDS {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("distinct_ids must hold 1 to {MAX_DISTINCT_IDS} ids"),
        );
    }
    let Some(distinct_ids) = ids
        .iter()
        .map(|i| i.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
        .collect::<Option<Vec<String>>>()
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "distinct_ids must be non-empty strings",
        );
    };
    let compliance_type = match body.get("compliance_type") {
        None => "GDPR".to_owned(),
        Some(Value::String(kind)) if COMPLIANCE_TYPES.contains(&kind.as_str()) => kind.clone(),
        Some(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "compliance_type must be CCPA or GDPR",
            )
        }
    };
    let id = format!("sim-task-{:06}", state.next_id);
    state.next_id += 1;
    let ends_with = state
        .end_next_with
        .take()
        .unwrap_or_else(|| "SUCCESS".into());
    state.tasks.insert(
        id.clone(),
        SimTask {
            id: id.clone(),
            distinct_ids,
            compliance_type,
            status: "PENDING".into(),
            reads: 0,
            ends_with,
        },
    );
    (
        StatusCode::CREATED,
        Json(json!({"status": "ok", "results": {"task_id": id}})),
    )
        .into_response()
}

async fn read(
    State(state): State<Shared>,
    Path(task_id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refusal) = gate(&mut state, &headers, &query) {
        return refusal;
    }
    let started_reads = state.config.started_reads;
    let project_id = state.config.project_id;
    let Some(task) = state.tasks.get_mut(&task_id) else {
        return Json(json!({"status": "ok", "results": {
            "tracking_id": task_id, "status": "NOT_FOUND", "requesting_user": "",
            "compliance_type": "", "project_id": project_id, "date_requested": "",
            "distinct_ids": []}}))
        .into_response();
    };
    task.reads += 1;
    task.status = match task.reads {
        1 => "PENDING".into(),
        2 => "STAGING".into(),
        n if n <= 2 + started_reads => "STARTED".into(),
        _ => task.ends_with.clone(),
    };
    Json(json!({"status": "ok", "results": {
        "tracking_id": task.id,
        "status": task.status,
        "requesting_user": "privacy-owner@example.com",
        "compliance_type": task.compliance_type,
        "project_id": project_id,
        "date_requested": "2026-12-03T10:00:00",
        "distinct_ids": task.distinct_ids,
    }}))
    .into_response()
}

/// The simulator's address (`base_url()`) and its fault injection and call log
/// (`control()`).
impl std::ops::Deref for MixpanelSim {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.0
    }
}
