//! Simulator of Amplitude's User Privacy API (v1): test and demo infrastructure, never a real
//! Amplitude service.
//!
//! Written from Amplitude's documentation (read 2026-12-03):
//! https://amplitude.com/docs/apis/analytics/user-privacy (endpoints, basic auth with the API
//! key and secret key, the JSON body, at most 100 ids a request, one request a second, jobs
//! scheduled 10 to 13 days after the batch's first request, `staging` → `submitted` → `done`,
//! the job listing by `start_day`/`end_day` of at most six months).
//!
//! It checks what Amplitude checks, from its own copy of the contract ([`contract`]): basic
//! auth, the JSON content type, the body's fields and types, 1 to 100 ids, user ids only for an
//! organisation-wide deletion, unknown user ids (refused unless `ignore_invalid_id`), one
//! request a second (429), and the listing's day range. Requests of one day join that day's
//! staging job (one per project for an organisation-wide deletion). Each listing read advances
//! a job: `staging` → `submitted` (for a configurable number of reads) → `done`. Faults (429,
//! 5xx, latency) and call records come from [`hush_sim_kit`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{Days, NaiveDate};
use hush_sim_kit::request::{json_object, too_soon};
use hush_sim_kit::stateful::{SharedState, StatefulSim};
use hush_sim_kit::{any_loopback_port, RunningSim};
use serde_json::{json, Map, Value};

use self::contract::*;

/// Amplitude's side of the contract, copied from its documentation rather than from the
/// connector.
pub mod contract {
    /// Path of the deletion endpoint.
    pub const PATH: &str = "/api/2/deletions/users";
    /// Fields of the deletion body.
    pub const FIELDS: &[&str] = &[
        "amplitude_ids",
        "user_ids",
        "requester",
        "ignore_invalid_id",
        "delete_from_org",
    ];
    /// Most ids one request may carry.
    pub const MAX_IDS: usize = 100;
    /// Shortest time between two deletion requests.
    pub const MIN_SPACING_MS: u64 = 1_000;
    /// Days from a batch's first request to its job.
    pub const SCHEDULE_AFTER_DAYS: u64 = 10;
    /// Longest listing range, in days (six months).
    pub const MAX_LISTING_DAYS: i64 = 184;
}

/// What the simulated project accepts.
#[derive(Debug, Clone)]
pub struct AmplitudeSimConfig {
    /// Project API key (basic-auth user).
    pub api_key: String,
    /// Project secret key (basic-auth password).
    pub secret_key: String,
    /// User ids that exist in the project.
    pub users: Vec<String>,
    /// Projects of the organisation (for `delete_from_org`).
    pub org_projects: Vec<u64>,
    /// Listing reads that still answer `submitted` after the first (`staging`) one.
    pub submitted_reads: u32,
    /// Shortest time between two deletion requests (Amplitude: one second).
    pub min_spacing: Duration,
}

impl Default for AmplitudeSimConfig {
    fn default() -> Self {
        Self {
            api_key: "sim-amplitude-api-key".into(),
            secret_key: "sim-amplitude-secret-key".into(),
            users: vec![],
            org_projects: vec![187_520, 187_521],
            submitted_reads: 1,
            min_spacing: Duration::from_millis(MIN_SPACING_MS),
        }
    }
}

/// One id scheduled into a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimScheduled {
    /// The Amplitude id.
    pub amplitude_id: u64,
    /// The user id it was requested by, if any.
    pub user_id: Option<String>,
    /// `requester` as sent.
    pub requester: String,
    /// Day it was requested.
    pub requested_on_day: String,
}

/// A deletion job the simulator holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimJob {
    /// `day` it runs.
    pub day: String,
    /// `app`, for an organisation-wide deletion.
    pub app: Option<u64>,
    /// `status`.
    pub status: String,
    /// Ids scheduled.
    pub scheduled: Vec<SimScheduled>,
    reads: u32,
}

struct SimState {
    config: AmplitudeSimConfig,
    jobs: Vec<SimJob>,
    last_request: Option<Instant>,
    today: NaiveDate,
}

type Shared = SharedState<SimState>;

/// A running User Privacy API simulator.
pub struct AmplitudeSim(StatefulSim<SimState>);

impl AmplitudeSim {
    /// Starts the simulator on any free loopback port.
    pub async fn start(config: AmplitudeSimConfig) -> std::io::Result<Self> {
        Self::start_on(config, any_loopback_port()).await
    }

    /// Starts the simulator on `addr`.
    pub async fn start_on(config: AmplitudeSimConfig, addr: SocketAddr) -> std::io::Result<Self> {
        let state = SimState {
            config,
            jobs: Vec::new(),
            last_request: None,
            today: chrono::Utc::now().date_naive(),
        };
        let router = Router::new().route(PATH, post(delete_users).get(list_jobs));
        StatefulSim::serve(state, router, addr).await.map(Self)
    }

    /// Every job so far, oldest first.
    pub fn jobs(&self) -> Vec<SimJob> {
        self.0.lock().jobs.clone()
    }

    /// Revokes every request of the staging jobs (as Amplitude's `DELETE` on a job does): the
    /// jobs disappear from the listing.
    pub fn revoke_staging_jobs(&self) {
        self.0.lock().jobs.retain(|job| job.status != "staging");
    }
}

/// The Amplitude id of a known user (stable, numeric).
fn amplitude_id(users: &[String], user_id: &str) -> Option<u64> {
    users
        .iter()
        .position(|u| u == user_id)
        .map(|i| 356_896_327_700 + i as u64)
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn authorised(state: &SimState, headers: &HeaderMap) -> bool {
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        state.config.api_key, state.config.secret_key
    ));
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        == Some(expected.as_str())
}

/// A documented boolean: JSON `true`/`false`, or the strings `"true"`/`"false"` (any case) as
/// Amplitude's examples send them; `Err` for anything else.
fn flag(body: &Map<String, Value>, name: &str) -> Result<bool, String> {
    match body.get(name) {
        None => Ok(false),
        Some(Value::Bool(value)) => Ok(*value),
        Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(format!("{name} must be True or False")),
    }
}

async fn delete_users(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = state.lock().unwrap();
    if !authorised(&state, &headers) {
        return refuse(StatusCode::UNAUTHORIZED, "Invalid API key or secret key");
    }
    let min_spacing = state.config.min_spacing;
    if too_soon(&mut state.last_request, min_spacing) {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests: the deletion endpoint allows 1 request per second",
        );
    }
    let unknown = |field: &str| format!("Unknown parameter {field}");
    let body = match json_object(&headers, &body, FIELDS, unknown) {
        Ok(body) => body,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, &message),
    };
    let (ignore_invalid, from_org) = match (
        flag(&body, "ignore_invalid_id"),
        flag(&body, "delete_from_org"),
    ) {
        (Ok(ignore), Ok(org)) => (ignore, org),
        (Err(e), _) | (_, Err(e)) => return refuse(StatusCode::BAD_REQUEST, &e),
    };
    let list = |name: &str| body.get(name).cloned().unwrap_or(Value::Array(vec![]));
    let (Value::Array(amplitude_ids), Value::Array(user_ids)) =
        (list("amplitude_ids"), list("user_ids"))
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "amplitude_ids and user_ids must be arrays",
        );
    };
    let Some(amplitude_ids) = amplitude_ids
        .iter()
        .map(Value::as_u64)
        .collect::<Option<Vec<u64>>>()
    else {
        return refuse(StatusCode::BAD_REQUEST, "amplitude_ids must be integers");
    };
    let Some(user_ids) = user_ids
        .iter()
        .map(|u| u.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
        .collect::<Option<Vec<String>>>()
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "user_ids must be non-empty strings",
        );
    };
    let total = amplitude_ids.len() + user_ids.len();
    if total == 0 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Either amplitude_ids or user_ids is required",
        );
    }
    if total > MAX_IDS {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("A request may contain at most {MAX_IDS} amplitude_ids and user_ids"),
        );
    }
    if from_org && !amplitude_ids.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "delete_from_org requests must be by user_ids only",
        );
    }
    let requester = body
        .get("requester")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let users = state.config.users.clone();
    let unknown: Vec<&String> = user_ids
        .iter()
        .filter(|u| amplitude_id(&users, u).is_none())
        .collect();
    if !unknown.is_empty() && !ignore_invalid && !from_org {
        let names: Vec<&str> = unknown.iter().map(|u| u.as_str()).collect();
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("Invalid user_ids: {}", names.join(", ")),
        );
    }
    let today = state.today.to_string();
    let mut scheduled: Vec<SimScheduled> = amplitude_ids
        .iter()
        .map(|id| SimScheduled {
            amplitude_id: *id,
            user_id: None,
            requester: requester.clone(),
            requested_on_day: today.clone(),
        })
        .collect();
    scheduled.extend(user_ids.iter().filter_map(|u| {
        amplitude_id(&users, u).map(|id| SimScheduled {
            amplitude_id: id,
            user_id: Some(u.clone()),
            requester: requester.clone(),
            requested_on_day: today.clone(),
        })
    }));
    let apps: Vec<Option<u64>> = if from_org {
        state
            .config
            .org_projects
            .iter()
            .copied()
            .map(Some)
            .collect()
    } else {
        vec![None]
    };
    let mut answered = Vec::new();
    for app in apps {
        let job = staging_job(&mut state, app);
        job.scheduled.extend(scheduled.iter().cloned());
        let mut shown = job_json(job);
        shown["amplitude_ids"] = Value::Array(scheduled.iter().map(scheduled_json).collect());
        answered.push(shown);
    }
    if from_org {
        Json(Value::Array(answered)).into_response()
    } else {
        Json(answered.remove(0)).into_response()
    }
}

/// The staging job of `app` that today's requests join, created on the first one.
fn staging_job(state: &mut SimState, app: Option<u64>) -> &mut SimJob {
    let position = state
        .jobs
        .iter()
        .position(|job| job.app == app && job.status == "staging");
    match position {
        Some(index) => &mut state.jobs[index],
        None => {
            // A batch no longer staging is closed: later requests start a job of their own,
            // on a later day.
            let earlier = state.jobs.iter().filter(|job| job.app == app).count() as u64;
            let day = state.today + Days::new(SCHEDULE_AFTER_DAYS + earlier);
            state.jobs.push(SimJob {
                day: day.to_string(),
                app,
                status: "staging".into(),
                scheduled: Vec::new(),
                reads: 0,
            });
            state.jobs.last_mut().expect("just pushed")
        }
    }
}

fn scheduled_json(entry: &SimScheduled) -> Value {
    json!({"amplitude_id": entry.amplitude_id, "requested_on_day": entry.requested_on_day,
           "requester": entry.requester})
}

fn job_json(job: &SimJob) -> Value {
    let mut shown = json!({
        "day": job.day,
        "status": job.status,
        "amplitude_ids": job.scheduled.iter().map(scheduled_json).collect::<Vec<_>>(),
    });
    if let Some(app) = job.app {
        shown["app"] = json!(app);
    }
    shown
}

async fn list_jobs(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut state = state.lock().unwrap();
    if !authorised(&state, &headers) {
        return refuse(StatusCode::UNAUTHORIZED, "Invalid API key or secret key");
    }
    let day = |name: &str| {
        query
            .get(name)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    };
    let (Some(start), Some(end)) = (day("start_day"), day("end_day")) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "start_day and end_day are required, formatted YYYY-MM-DD",
        );
    };
    if end < start || (end - start).num_days() > MAX_LISTING_DAYS {
        return refuse(
            StatusCode::BAD_REQUEST,
            "end_day must follow start_day by at most six months",
        );
    }
    let submitted_reads = state.config.submitted_reads;
    let mut listed = Vec::new();
    for job in state.jobs.iter_mut() {
        let Ok(job_day) = NaiveDate::parse_from_str(&job.day, "%Y-%m-%d") else {
            continue;
        };
        if job_day < start || job_day > end {
            continue;
        }
        job.reads += 1;
        job.status = match job.reads {
            1 => "staging".into(),
            n if n <= 1 + submitted_reads => "submitted".into(),
            _ => "done".into(),
        };
        listed.push(job_json(job));
    }
    Json(Value::Array(listed)).into_response()
}

/// The simulator's address (`base_url()`) and its fault injection and call log
/// (`control()`).
impl std::ops::Deref for AmplitudeSim {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.0
    }
}
