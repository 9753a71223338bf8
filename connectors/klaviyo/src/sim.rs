//! Simulator of the Klaviyo API endpoints the connector uses: test and demo infrastructure,
//! never a real Klaviyo service. Written from Klaviyo's documentation and OpenAPI documents as
//! they stood in December 2026 (revision 2026-10-15):
//! - <https://developers.klaviyo.com/en/reference/request_profile_deletion>
//! - <https://developers.klaviyo.com/en/reference/bulk_suppress_profiles> and
//!   `get_bulk_suppress_profiles_job`
//! - <https://developers.klaviyo.com/en/reference/get_profiles> (the `filter` parameter)
//! - <https://developers.klaviyo.com/en/docs/api_versioning_and_deprecation_policy>
//!
//! It keeps its own copy of that contract (the [`contract`] module) and checks what Klaviyo
//! checks: `Authorization: Klaviyo-API-Key`, a `revision` header of the `YYYY-MM-DD` form, the
//! JSON:API media type on writes, the resource `type`s, at most 100 emails per suppression job,
//! exactly one of `email`, `phone_number` or `id` per deletion, and answers in Klaviyo's
//! envelopes (`{"data": ...}`, `{"errors": [{"id","status","code","title","detail","source"}]}`).
//! Suppression jobs are `queued` until read `job_reads` times, then `complete`; deletions take
//! effect after `deletion_reads` profile reads. Faults and call records come from
//! [`hush_sim_kit`].

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hush_sim_kit::stateful::{SharedState, StatefulSim};
use hush_sim_kit::{any_loopback_port, RunningSim};
use serde_json::{json, Value};

/// Klaviyo's documented contract, copied here so that the simulator never depends on the
/// connector's own constants.
pub mod contract {
    /// Authorization scheme of private API keys.
    pub const AUTH_SCHEME: &str = "Klaviyo-API-Key ";
    /// Media type of JSON:API bodies.
    pub const JSON_API: &str = "application/vnd.api+json";
    /// Emails one bulk suppression job may carry.
    pub const SUPPRESSION_MAX_EMAILS: usize = 100;
    /// Resource type of a bulk suppression job.
    pub const SUPPRESSION_JOB_TYPE: &str = "profile-suppression-bulk-create-job";
    /// Resource type of a deletion job.
    pub const DELETION_JOB_TYPE: &str = "data-privacy-deletion-job";
    /// Identifiers a deletion may name; exactly one.
    pub const DELETION_IDENTIFIERS: [&str; 3] = ["email", "phone_number", "id"];
    /// Profile attributes `equals` may filter on here.
    pub const FILTER_ATTRIBUTES: [&str; 3] = ["email", "phone_number", "id"];
}

/// What the simulated account accepts.
#[derive(Debug, Clone)]
pub struct KlaviyoSimConfig {
    /// The private API key every call must carry.
    pub api_key: String,
    /// Reads of a suppression job that still answer `queued`.
    pub job_reads: u32,
    /// Profile reads that still show a profile after its deletion was requested.
    pub deletion_reads: u32,
}

impl Default for KlaviyoSimConfig {
    fn default() -> Self {
        Self {
            api_key: "pk_sim_klaviyo_private_key".into(),
            job_reads: 0,
            deletion_reads: 0,
        }
    }
}

/// A profile the simulator holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimProfile {
    /// Klaviyo's profile id.
    pub id: String,
    /// Email address.
    pub email: Option<String>,
    /// Phone number (E.164).
    pub phone_number: Option<String>,
    /// Whether email marketing is suppressed (`USER_SUPPRESSED`).
    pub suppressed: bool,
}

/// A bulk suppression job the simulator holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimJob {
    /// Job id.
    pub id: String,
    /// Emails it suppresses.
    pub emails: Vec<String>,
    /// Reads left before it completes.
    reads_left: u32,
}

struct SimState {
    config: KlaviyoSimConfig,
    next_id: u64,
    profiles: Vec<SimProfile>,
    jobs: Vec<SimJob>,
    deletions: Vec<(u32, String, String)>,
}

type Shared = SharedState<SimState>;

/// A running Klaviyo API simulator.
pub struct KlaviyoSim(StatefulSim<SimState>);

impl KlaviyoSim {
    /// Starts the simulator on any free loopback port.
    pub async fn start(config: KlaviyoSimConfig) -> std::io::Result<Self> {
        let state = SimState {
            config,
            next_id: 1,
            profiles: Vec::new(),
            jobs: Vec::new(),
            deletions: Vec::new(),
        };
        let router = Router::new()
            .route(
                "/api/profile-suppression-bulk-create-jobs",
                post(create_job),
            )
            .route(
                "/api/profile-suppression-bulk-create-jobs/{job_id}",
                get(read_job),
            )
            .route("/api/data-privacy-deletion-jobs", post(request_deletion))
            .route("/api/profiles", get(profiles));
        StatefulSim::serve(state, router, any_loopback_port())
            .await
            .map(Self)
    }

    /// Adds a profile; returns its id.
    pub fn add_profile(&self, email: Option<&str>, phone_number: Option<&str>) -> String {
        let mut state = self.0.lock();
        let id = new_id(&mut state);
        state.profiles.push(SimProfile {
            id: id.clone(),
            email: email.map(str::to_owned),
            phone_number: phone_number.map(str::to_owned),
            suppressed: false,
        });
        id
    }

    /// Every profile, in creation order.
    pub fn profiles(&self) -> Vec<SimProfile> {
        self.0.lock().profiles.clone()
    }

    /// Every suppression job created so far.
    pub fn jobs(&self) -> Vec<SimJob> {
        self.0.lock().jobs.clone()
    }

    /// Reads of jobs created from now on that still answer `queued`.
    pub fn set_job_reads(&self, reads: u32) {
        self.0.lock().config.job_reads = reads;
    }

    /// Profile reads that still show a profile after deletions requested from now on.
    pub fn set_deletion_reads(&self, reads: u32) {
        self.0.lock().config.deletion_reads = reads;
    }
}

/// The simulator's address (`base_url()`) and its fault injection and call log (`control()`).
impl std::ops::Deref for KlaviyoSim {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.0
    }
}

fn new_id(state: &mut SimState) -> String {
    let id = format!("01SIM{:021}", state.next_id);
    state.next_id += 1;
    id
}

fn error(
    status: StatusCode,
    code: &str,
    title: &str,
    detail: &str,
    pointer: Option<&str>,
) -> Response {
    let mut error = json!({
        "id": format!("sim-{code}"), "status": status.as_u16(), "code": code,
        "title": title, "detail": detail, "links": {}, "meta": {}
    });
    if let Some(pointer) = pointer {
        error["source"] = json!({ "pointer": pointer });
    }
    (status, Json(json!({ "errors": [error] }))).into_response()
}

fn invalid(detail: &str, pointer: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid",
        "Invalid input.",
        detail,
        Some(pointer),
    )
}

/// Checks the key and the revision (and, for a write, the media type and JSON body).
fn admit(
    state: &SimState,
    headers: &HeaderMap,
    body: Option<&Bytes>,
) -> Result<Value, Box<Response>> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let key = header("authorization").and_then(|v| v.strip_prefix(contract::AUTH_SCHEME));
    if key != Some(state.config.api_key.as_str()) {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "not_authenticated",
            "Authentication credentials were not provided.",
            "Missing or invalid private key.",
            None,
        )));
    }
    let revision_ok = header("revision").is_some_and(|revision| {
        revision.len() == 10 && chrono::NaiveDate::parse_from_str(revision, "%Y-%m-%d").is_ok()
    });
    if !revision_ok {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Invalid input.",
            "A valid revision header (YYYY-MM-DD) is required.",
            None,
        )));
    }
    let Some(body) = body else {
        return Ok(Value::Null);
    };
    if !header("content-type").is_some_and(|c| c.starts_with(contract::JSON_API)) {
        return Err(Box::new(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type.",
            "Content-Type must be application/vnd.api+json.",
            None,
        )));
    }
    serde_json::from_slice(body).map_err(|_| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "parse_error",
            "Malformed request.",
            "The body is not valid JSON.",
            None,
        ))
    })
}

fn job_document(job: &SimJob) -> Value {
    let complete = job.reads_left == 0;
    json!({"data": {
        "type": contract::SUPPRESSION_JOB_TYPE,
        "id": job.id,
        "attributes": {
            "status": if complete { "complete" } else { "queued" },
            "created_at": "2026-12-01T00:00:00+00:00",
            "total_count": job.emails.len(),
            "completed_count": if complete { job.emails.len() } else { 0 },
            "skipped_count": 0,
            "completed_at": if complete { json!("2026-12-01T00:00:01+00:00") } else { Value::Null },
        },
        "links": {"self": format!("https://a.klaviyo.com/api/profile-suppression-bulk-create-jobs/{}", job.id)}
    }})
}

async fn create_job(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = state.lock().unwrap();
    let body = match admit(&state, &headers, Some(&body)) {
        Ok(body) => body,
        Err(refusal) => return *refusal,
    };
    if body["data"]["type"] != contract::SUPPRESSION_JOB_TYPE {
        return invalid(
            &format!("data.type must be {}", contract::SUPPRESSION_JOB_TYPE),
            "/data/type",
        );
    }
    let Some(profiles) = body["data"]["attributes"]["profiles"]["data"].as_array() else {
        return invalid(
            "profiles.data is required",
            "/data/attributes/profiles/data",
        );
    };
    if profiles.is_empty() || profiles.len() > contract::SUPPRESSION_MAX_EMAILS {
        return invalid(
            &format!(
                "profiles.data must hold between 1 and {} profiles",
                contract::SUPPRESSION_MAX_EMAILS
            ),
            "/data/attributes/profiles/data",
        );
    }
    let mut emails = Vec::new();
    for (index, profile) in profiles.iter().enumerate() {
        let pointer = format!("/data/attributes/profiles/data/{index}");
        if profile["type"] != "profile" {
            return invalid("type must be profile", &format!("{pointer}/type"));
        }
        let email = profile["attributes"]["email"].as_str().unwrap_or_default();
        if !email.contains('@') || email.trim() != email {
            return invalid(
                &format!("'{email}' is not a valid email address."),
                &format!("{pointer}/attributes/email"),
            );
        }
        emails.push(email.to_owned());
    }
    // Documented: a profile not found is created and immediately suppressed.
    for email in &emails {
        if !state
            .profiles
            .iter()
            .any(|p| p.email.as_deref() == Some(email))
        {
            let id = new_id(&mut state);
            state.profiles.push(SimProfile {
                id,
                email: Some(email.clone()),
                phone_number: None,
                suppressed: false,
            });
        }
        for profile in state
            .profiles
            .iter_mut()
            .filter(|p| p.email.as_deref() == Some(email))
        {
            profile.suppressed = true;
        }
    }
    let job = SimJob {
        id: new_id(&mut state),
        emails,
        reads_left: state.config.job_reads,
    };
    let document = job_document(&job);
    state.jobs.push(job);
    (StatusCode::ACCEPTED, Json(document)).into_response()
}

async fn read_job(
    State(state): State<Shared>,
    Path(job_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Err(refusal) = admit(&state, &headers, None) {
        return *refusal;
    }
    let Some(job) = state.jobs.iter_mut().find(|job| job.id == job_id) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found.",
            &format!("A job with id {job_id} was not found."),
            None,
        );
    };
    let document = job_document(job);
    job.reads_left = job.reads_left.saturating_sub(1);
    Json(document).into_response()
}

async fn request_deletion(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    let body = match admit(&state, &headers, Some(&body)) {
        Ok(body) => body,
        Err(refusal) => return *refusal,
    };
    if body["data"]["type"] != contract::DELETION_JOB_TYPE {
        return invalid(
            &format!("data.type must be {}", contract::DELETION_JOB_TYPE),
            "/data/type",
        );
    }
    let profile = &body["data"]["attributes"]["profile"]["data"];
    if profile["type"] != "profile" {
        return invalid("type must be profile", "/data/attributes/profile/data/type");
    }
    let mut given: Vec<(&str, String)> = contract::DELETION_IDENTIFIERS
        .into_iter()
        .filter_map(|name| {
            let value = if name == "id" {
                &profile["id"]
            } else {
                &profile["attributes"][name]
            };
            value.as_str().map(|v| (name, v.to_owned()))
        })
        .collect();
    if given.len() != 1 {
        return invalid(
            "Exactly one of email, phone_number or id must be provided.",
            "/data/attributes/profile/data",
        );
    }
    let (name, value) = given.remove(0);
    let reads = state.config.deletion_reads;
    state.deletions.push((reads, name.to_owned(), value));
    if reads == 0 {
        apply_deletions(&mut state);
    }
    StatusCode::ACCEPTED.into_response()
}

/// Deletes the profiles of every deletion whose delay has run out.
fn apply_deletions(state: &mut SimState) {
    let due: Vec<(String, String)> = state
        .deletions
        .iter()
        .filter(|(reads, _, _)| *reads == 0)
        .map(|(_, name, value)| (name.clone(), value.clone()))
        .collect();
    state.deletions.retain(|(reads, _, _)| *reads > 0);
    for (name, value) in due {
        state.profiles.retain(|p| !matches(p, &name, &value));
    }
}

fn matches(profile: &SimProfile, attribute: &str, value: &str) -> bool {
    match attribute {
        "email" => profile.email.as_deref() == Some(value),
        "phone_number" => profile.phone_number.as_deref() == Some(value),
        "id" => profile.id == value,
        _ => false,
    }
}

async fn profiles(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let mut state = state.lock().unwrap();
    if let Err(refusal) = admit(&state, &headers, None) {
        return *refusal;
    }
    for deletion in &mut state.deletions {
        deletion.0 = deletion.0.saturating_sub(1);
    }
    let found: Vec<Value> = {
        let filter = query
            .iter()
            .find(|(name, _)| name == "filter")
            .map(|(_, value)| value.as_str());
        let Some((attribute, value)) = filter.and_then(parse_equals) else {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "Invalid input.",
                "filter must be equals(<email|phone_number|id>,\"<value>\")",
                None,
            );
        };
        state
            .profiles
            .iter()
            .filter(|p| matches(p, &attribute, &value))
            .map(|p| {
                json!({"type": "profile", "id": p.id, "attributes": {
                    "email": p.email, "phone_number": p.phone_number
                }})
            })
            .collect()
    };
    apply_deletions(&mut state);
    Json(json!({"data": found, "links": {"self": "https://a.klaviyo.com/api/profiles", "next": null, "prev": null}}))
        .into_response()
}

/// `equals(attribute,"value")` → the attribute and the unescaped value.
fn parse_equals(filter: &str) -> Option<(String, String)> {
    let inner = filter.strip_prefix("equals(")?.strip_suffix(')')?;
    let (attribute, quoted) = inner.split_once(',')?;
    if !contract::FILTER_ATTRIBUTES.contains(&attribute) {
        return None;
    }
    let value = quoted.strip_prefix('"')?.strip_suffix('"')?;
    Some((
        attribute.to_owned(),
        value.replace("\\\"", "\"").replace("\\\\", "\\"),
    ))
}
