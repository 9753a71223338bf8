//! Simulator of the Segment Public API's workspace regulations: test and demo infrastructure,
//! never a real Segment service.
//!
//! It checks what Segment checks: the bearer token, the JSON media type, the request body
//! (`regulationType` and `subjectType` from the documented enums, `subjectIds` present,
//! non-empty and at most 5,000), and answers in Segment's envelopes (`{"data":…}` or
//! `{"errors":[{"type","message","field"}]}`, 401/404/422). A regulation's `overallStatus`
//! advances on each read: `INITIALIZED` → `RUNNING` (for a configurable number of reads) →
//! `FINISHED`, or whatever final status it was told to end with. Regulations can be put under a
//! quota ([`SegmentSim::limit_regulations`]): each creation spends a point and reports the
//! documented `X-RateLimit-Consumed`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (an RFC 5322
//! date) headers; with no point left it answers 429 with Segment's documented body
//! (`remainingPoints`, `msBeforeNext`, `consumedPoints`) and no `Retry-After`, as Segment's
//! "Rate Limits" page describes. Faults and call records come from [`hush_sim_kit`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hush_sim_kit::{any_loopback_port, serve, RunningSim};
use serde_json::{json, Value};

/// Regulation types of the Public API's `CreateWorkspaceRegulationV1Input`.
const REGULATION_TYPES: [&str; 6] = [
    "DELETE_INTERNAL",
    "DELETE_ONLY",
    "SUPPRESS_ONLY",
    "SUPPRESS_WITH_DELETE",
    "SUPPRESS_WITH_DELETE_INTERNAL",
    "UNSUPPRESS",
];
/// Final overall statuses a regulation can be told to end with.
const FINAL_STATUSES: [&str; 5] = [
    "FINISHED",
    "FAILED",
    "PARTIAL_SUCCESS",
    "INVALID",
    "NOT_SUPPORTED",
];

/// What the simulated workspace accepts.
#[derive(Debug, Clone)]
pub struct SegmentSimConfig {
    /// The workspace token every call must carry.
    pub token: String,
    /// Workspace id reported in regulations.
    pub workspace_id: String,
    /// Reads that still answer `RUNNING` after the first (`INITIALIZED`) one.
    pub running_polls: u32,
    /// Most `subjectIds` one regulation may carry.
    pub max_subject_ids: usize,
}

impl Default for SegmentSimConfig {
    fn default() -> Self {
        Self {
            token: "sgp_sim_workspace_token".into(),
            workspace_id: "simWorkspace9aQ1Lj62S4bo".into(),
            running_polls: 1,
            max_subject_ids: 5_000,
        }
    }
}

/// A regulation the simulator holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRegulation {
    /// `regulateId`.
    pub id: String,
    /// `regulationType` as sent.
    pub regulation_type: String,
    /// `subjectIds` as sent.
    pub subject_ids: Vec<String>,
    /// Current `overallStatus`.
    pub overall_status: String,
    reads: u32,
    ends_with: String,
}

struct SimState {
    config: SegmentSimConfig,
    next_id: u64,
    regulations: BTreeMap<String, SimRegulation>,
    end_next_with: Option<String>,
    quota: Option<Quota>,
}

/// A point quota on regulation creation.
struct Quota {
    consumed: u32,
    remaining: u32,
    resets_at: chrono::DateTime<chrono::Utc>,
}

type Shared = Arc<Mutex<SimState>>;

/// A running Segment Public API simulator.
pub struct SegmentSim {
    running: RunningSim,
    state: Shared,
}

impl SegmentSim {
    /// Starts the simulator on any free loopback port.
    pub async fn start(config: SegmentSimConfig) -> std::io::Result<Self> {
        Self::start_on(config, any_loopback_port()).await
    }

    /// Starts the simulator on `addr`.
    pub async fn start_on(config: SegmentSimConfig, addr: SocketAddr) -> std::io::Result<Self> {
        let state: Shared = Arc::new(Mutex::new(SimState {
            config,
            next_id: 1,
            regulations: BTreeMap::new(),
            end_next_with: None,
            quota: None,
        }));
        let router = Router::new()
            .route("/regulations", post(create))
            .route("/regulations/{regulate_id}", get(read))
            .with_state(state.clone());
        let running = serve(router, addr).await?;
        Ok(Self { running, state })
    }

    /// Reads that answer `RUNNING` for regulations created from now on.
    pub fn set_running_polls(&self, polls: u32) {
        self.lock().config.running_polls = polls;
    }

    /// The next regulation created ends with this overall status (`FAILED`,
    /// `PARTIAL_SUCCESS`, `INVALID`, `NOT_SUPPORTED`) instead of `FINISHED`, with one
    /// destination in that status.
    ///
    /// # Panics
    /// If `status` is not a final overall status.
    pub fn end_next_regulation_with(&self, status: &str) {
        assert!(
            FINAL_STATUSES.contains(&status),
            "not a final status: {status}"
        );
        self.lock().end_next_with = Some(status.to_owned());
    }

    /// From now on, at most `points` regulations may be created before the quota refills in
    /// `resets_in`; the quota never refills while the simulator runs.
    pub fn limit_regulations(&self, points: u32, resets_in: std::time::Duration) {
        self.lock().quota = Some(Quota {
            consumed: 0,
            remaining: points,
            resets_at: chrono::Utc::now()
                + chrono::Duration::from_std(resets_in).expect("a reasonable reset delay"),
        });
    }

    /// Every regulation created so far, oldest first.
    pub fn regulations(&self) -> Vec<SimRegulation> {
        self.lock().regulations.values().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap()
    }
}

fn errors(status: StatusCode, kind: &str, message: &str, field: Option<&str>) -> Response {
    let mut error = json!({"type": kind, "message": message});
    if let Some(field) = field {
        error["field"] = json!(field);
    }
    (status, Json(json!({ "errors": [error] }))).into_response()
}

fn unauthorized(state: &SimState, headers: &HeaderMap) -> Option<Response> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    (bearer != Some(state.config.token.as_str())).then(|| {
        errors(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "The provided API token is missing, invalid or does not have access to this resource.",
            None,
        )
    })
}

fn invalid(message: &str, field: &str) -> Response {
    errors(
        StatusCode::UNPROCESSABLE_ENTITY,
        "input-validation",
        message,
        Some(field),
    )
}

async fn create(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refusal) = unauthorized(&state, &headers) {
        return refusal;
    }
    let Some(quota) = state.quota.as_mut() else {
        return create_regulation(&mut state, &headers, &body);
    };
    if quota.remaining == 0 {
        let wait = (quota.resets_at - chrono::Utc::now())
            .num_milliseconds()
            .max(0);
        let body = json!({"errors": [{
            "type": "RequestError",
            "message": "Too many requests",
            "data": {"remainingPoints": 0, "msBeforeNext": wait, "consumedPoints": quota.consumed},
        }]});
        let headers = quota_headers(quota);
        return (StatusCode::TOO_MANY_REQUESTS, headers, Json(body)).into_response();
    }
    quota.remaining -= 1;
    quota.consumed += 1;
    let quota_headers = quota_headers(quota);
    let mut answer = create_regulation(&mut state, &headers, &body);
    if answer.status().is_success() {
        answer.headers_mut().extend(quota_headers);
    }
    answer
}

/// The documented rate-limit headers of an answer under `quota`.
fn quota_headers(quota: &Quota) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let values = [
        ("x-ratelimit-consumed", quota.consumed.to_string()),
        ("x-ratelimit-remaining", quota.remaining.to_string()),
        ("x-ratelimit-reset", quota.resets_at.to_rfc2822()),
    ];
    for (name, value) in values {
        headers.insert(name, value.parse().expect("ASCII header value"));
    }
    headers
}

fn create_regulation(state: &mut SimState, headers: &HeaderMap, body: &Bytes) -> Response {
    let json_media = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| {
            c.starts_with("application/json") || c.starts_with("application/vnd.segment.v1")
        });
    if !json_media {
        return errors(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Content-Type must be application/vnd.segment.v1+json or application/json",
            None,
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return errors(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "The request body is not valid JSON",
            None,
        );
    };
    let regulation_type = body["regulationType"].as_str().unwrap_or_default();
    if !REGULATION_TYPES.contains(&regulation_type) {
        return invalid(
            &format!(
                "\"regulationType\" must be one of [{}]",
                REGULATION_TYPES.join(", ")
            ),
            "regulationType",
        );
    }
    if !matches!(body["subjectType"].as_str(), Some("USER_ID" | "OBJECT_ID")) {
        return invalid(
            "\"subjectType\" must be one of [OBJECT_ID, USER_ID]",
            "subjectType",
        );
    }
    let Some(subject_ids) = body["subjectIds"].as_array() else {
        return invalid("\"subjectIds\" is required", "subjectIds");
    };
    if subject_ids.is_empty() {
        return invalid("\"subjectIds\" must contain at least 1 items", "subjectIds");
    }
    let limit = state.config.max_subject_ids;
    if subject_ids.len() > limit {
        return invalid(
            &format!("\"subjectIds\" must contain less than or equal to {limit} items"),
            "subjectIds",
        );
    }
    let subject_ids: Option<Vec<String>> = subject_ids
        .iter()
        .map(|s| s.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
        .collect();
    let Some(subject_ids) = subject_ids else {
        return invalid(
            "\"subjectIds\" items must be non-empty strings",
            "subjectIds",
        );
    };
    let id = format!("simRegulate{:016}", state.next_id);
    state.next_id += 1;
    let ends_with = state
        .end_next_with
        .take()
        .unwrap_or_else(|| "FINISHED".into());
    state.regulations.insert(
        id.clone(),
        SimRegulation {
            id: id.clone(),
            regulation_type: regulation_type.to_owned(),
            subject_ids,
            overall_status: "INITIALIZED".into(),
            reads: 0,
            ends_with,
        },
    );
    Json(json!({ "data": { "regulateId": id } })).into_response()
}

async fn read(
    State(state): State<Shared>,
    Path(regulate_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Some(refusal) = unauthorized(&state, &headers) {
        return refusal;
    }
    let running_polls = state.config.running_polls;
    let workspace_id = state.config.workspace_id.clone();
    let Some(regulation) = state.regulations.get_mut(&regulate_id) else {
        return errors(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("Regulation {regulate_id} not found"),
            None,
        );
    };
    regulation.reads += 1;
    regulation.overall_status = match regulation.reads {
        1 => "INITIALIZED".into(),
        n if n <= 1 + running_polls => "RUNNING".into(),
        _ => regulation.ends_with.clone(),
    };
    let destinations = if regulation.overall_status == "FINISHED" {
        vec![
            json!({"id": "simDestination1", "name": "Sim Warehouse", "status": "FINISHED",
                    "errString": "", "finishedAt": "2024-01-01T00:00:00Z"}),
        ]
    } else if FINAL_STATUSES.contains(&regulation.overall_status.as_str()) {
        vec![
            json!({"id": "simDestination1", "name": "Sim Warehouse", "status": regulation.overall_status,
                    "errString": "destination refused the deletion", "finishedAt": "2024-01-01T00:00:00Z"}),
        ]
    } else {
        vec![]
    };
    Json(json!({
        "data": {
            "regulation": {
                "id": regulation.id,
                "workspaceId": workspace_id,
                "overallStatus": regulation.overall_status,
                "createdAt": "2024-01-01T00:00:00Z",
                "finishedAt": "2024-01-01T00:00:00Z",
                "streamStatus": [{"id": "simStream1", "destinationStatus": destinations}]
            }
        }
    }))
    .into_response()
}

/// The simulator's address (`base_url()`) and its fault injection and call log
/// (`control()`).
impl std::ops::Deref for SegmentSim {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.running
    }
}
