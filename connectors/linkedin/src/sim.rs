//! Simulator of LinkedIn's DMP segment users endpoint: test and demo infrastructure, not
//! LinkedIn.
//!
//! It serves `POST /rest/dmpSegments/{segment_id}/users` on loopback and checks what LinkedIn
//! checks: the bearer token, the `X-Restli-Protocol-Version: 2.0.0`, `LinkedIn-Version` (an
//! active version, see [`contract`]; any other is a 426 `NONEXISTENT_VERSION`) and
//! `X-RestLi-Method: BATCH_CREATE` headers, the segment id, the body shape
//! (`elements[].action` and `elements[].userIds[].{idType,idValue}`), the id types, and that
//! every `SHA256_EMAIL` is a lowercase 64-character hex digest; a bad value refuses the whole
//! call with a 400 in LinkedIn's error shape naming the element. It limits each token to
//! 600 calls a minute (429 beyond), at most 5,000 elements a call, keeps the segment's members
//! in memory and answers 200 with a 201 per element (removing an absent user included). Faults
//! and call records come from `hush-sim-kit`.

use std::collections::{BTreeSet, VecDeque};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hush_contracts::identifiers::is_sha256_hex;
use hush_sim_kit::{any_loopback_port, serve, RunningSim};
use serde_json::{json, Value};

use self::contract::{is_active, MAX_ELEMENTS_PER_CALL, RATE_LIMIT_PER_MINUTE};

/// LinkedIn's side of the contract, copied from LinkedIn's documentation rather than from the
/// connector, so that a sunset version or a wrong limit in the connector cannot pass here too.
pub mod contract {
    /// `LinkedIn-Version` values with their sunset day, as LinkedIn's "Migrations" page gave
    /// them on 2026-12-01 (no 202512 is listed; 202603 is the newest LinkedIn's pages name). A
    /// version is active until its sunset day. Source: learn.microsoft.com, LinkedIn Marketing
    /// "Migrations" and "Versioning".
    pub const VERSIONS: &[(&str, &str)] = &[
        ("202511", "2026-11-16"),
        ("202601", "2027-01-15"),
        ("202602", "2027-02-15"),
        ("202603", "2027-03-16"),
    ];

    /// Whether LinkedIn serves `version` on `today` (`YYYY-MM-DD`).
    pub fn is_active(version: &str, today: &str) -> bool {
        VERSIONS
            .iter()
            .any(|(name, sunset)| *name == version && today < *sunset)
    }
    /// Calls per member token and minute on the `/users` endpoint ("an application will have a
    /// 1 minute limit of 600 requests per user"). Source: "Create and manage segment users".
    pub const RATE_LIMIT_PER_MINUTE: usize = 600;
    /// Elements per `BATCH_CREATE` call. LinkedIn's pages do not state a batch limit; this is
    /// the figure the simulator enforces until one is documented.
    pub const MAX_ELEMENTS_PER_CALL: usize = 5_000;
}

const WINDOW: Duration = Duration::from_secs(60);

struct Segment {
    segment_id: String,
    access_token: String,
    members: BTreeSet<String>,
    rate_limit_per_minute: usize,
    recent_calls: VecDeque<Instant>,
}

type Shared = Arc<Mutex<Segment>>;

/// A running simulator of one DMP user segment.
pub struct LinkedInSim {
    running: RunningSim,
    segment: Shared,
}

impl LinkedInSim {
    /// Serves a simulated segment `segment_id` that accepts `access_token`, on a free loopback
    /// port.
    pub async fn start(segment_id: &str, access_token: &str) -> io::Result<Self> {
        let segment = Arc::new(Mutex::new(Segment {
            segment_id: segment_id.to_owned(),
            access_token: access_token.to_owned(),
            members: BTreeSet::new(),
            rate_limit_per_minute: RATE_LIMIT_PER_MINUTE,
            recent_calls: VecDeque::new(),
        }));
        let router = Router::new()
            .route("/rest/dmpSegments/{segment_id}/users", post(batch_users))
            .with_state(segment.clone());
        let running = serve(router, any_loopback_port()).await?;
        Ok(Self { running, segment })
    }

    /// Seeds the segment with members (id values: email hashes or advertising ids).
    pub fn add_members<I, S>(&self, ids: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut segment = self.segment.lock().unwrap();
        segment.members.extend(ids.into_iter().map(Into::into));
    }

    /// Current members.
    pub fn members(&self) -> BTreeSet<String> {
        self.segment.lock().unwrap().members.clone()
    }

    /// Changes the per-token limit of calls a minute (500 by default, as LinkedIn documents).
    pub fn set_rate_limit_per_minute(&self, calls: usize) {
        self.segment.lock().unwrap().rate_limit_per_minute = calls;
    }
}

fn linkedin_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"status": status.as_u16(), "code": code, "message": message});
    (status, Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    linkedin_error(StatusCode::BAD_REQUEST, "ILLEGAL_ARGUMENT", message)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The element's `(action, id values)`, or LinkedIn's complaint naming the field.
fn parse_element(index: usize, element: &Value) -> Result<(bool, Vec<String>), String> {
    let at = format!("/elements/{index}");
    let add = match element["action"].as_str() {
        Some("ADD") => true,
        Some("REMOVE") => false,
        _ => return Err(format!("{at}/action must be ADD or REMOVE")),
    };
    let ids = element["userIds"]
        .as_array()
        .filter(|ids| !ids.is_empty())
        .ok_or_else(|| format!("{at}/userIds must be a non-empty array"))?;
    let mut values = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let value = id["idValue"]
            .as_str()
            .ok_or_else(|| format!("{at}/userIds/{i}/idValue is required"))?;
        let valid = match id["idType"].as_str() {
            Some("SHA256_EMAIL") => is_sha256_hex(value),
            Some("SHA512_EMAIL") => {
                value.len() == 128
                    && value
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            }
            Some("GOOGLE_AID") => !value.trim().is_empty(),
            other => {
                return Err(format!(
                    "{at}/userIds/{i}/idType {other:?} is not a known IdType"
                ))
            }
        };
        if !valid {
            return Err(format!(
                "{at}/userIds/{i}/idValue is not a valid {} value",
                id["idType"].as_str().unwrap_or_default()
            ));
        }
        values.push(value.to_owned());
    }
    Ok((add, values))
}

async fn batch_users(
    State(segment): State<Shared>,
    Path(segment_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut segment = segment.lock().unwrap();
    let segment = &mut *segment;

    let token = header(&headers, "authorization").and_then(|v| v.strip_prefix("Bearer "));
    if token != Some(segment.access_token.as_str()) {
        let body = json!({
            "status": 401, "serviceErrorCode": 65600,
            "code": "INVALID_ACCESS_TOKEN", "message": "Invalid access token",
        });
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let now = Instant::now();
    while segment
        .recent_calls
        .front()
        .is_some_and(|t| now.duration_since(*t) >= WINDOW)
    {
        segment.recent_calls.pop_front();
    }
    if segment.recent_calls.len() >= segment.rate_limit_per_minute {
        return linkedin_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "Resource level throttle 1 MINUTE limit for calls to this resource is reached.",
        );
    }
    segment.recent_calls.push_back(now);

    if header(&headers, "x-restli-protocol-version") != Some("2.0.0") {
        return bad_request("the X-Restli-Protocol-Version header must be 2.0.0");
    }
    match header(&headers, "linkedin-version") {
        None => {
            return linkedin_error(
                StatusCode::BAD_REQUEST,
                "VERSION_MISSING",
                "A version must be present: add the LinkedIn-Version header (YYYYMM).",
            )
        }
        Some(version)
            if !is_active(version, &chrono::Utc::now().format("%Y-%m-%d").to_string()) =>
        {
            return linkedin_error(
                StatusCode::UPGRADE_REQUIRED,
                "NONEXISTENT_VERSION",
                &format!("Requested version {version} is not active"),
            )
        }
        Some(_) => {}
    }
    if header(&headers, "x-restli-method") != Some("BATCH_CREATE") {
        return bad_request("adding or removing several users needs X-RestLi-Method: BATCH_CREATE");
    }
    if segment_id != segment.segment_id {
        return linkedin_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("DMP segment {segment_id} does not exist"),
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("the request body is not JSON");
    };
    let Some(elements) = body["elements"].as_array().filter(|e| !e.is_empty()) else {
        return bad_request("/elements must be a non-empty array");
    };
    if elements.len() > MAX_ELEMENTS_PER_CALL {
        return bad_request(&format!(
            "/elements holds {} entries; at most {MAX_ELEMENTS_PER_CALL} are accepted",
            elements.len()
        ));
    }
    let parsed = match elements
        .iter()
        .enumerate()
        .map(|(i, e)| parse_element(i, e))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(parsed) => parsed,
        Err(message) => return bad_request(&message),
    };
    for (add, values) in parsed {
        for value in values {
            if add {
                segment.members.insert(value);
            } else {
                segment.members.remove(&value);
            }
        }
    }
    let statuses: Vec<Value> = elements.iter().map(|_| json!({"status": 201})).collect();
    Json(json!({ "elements": statuses })).into_response()
}

/// The simulator's address (`base_url()`) and its fault injection and call log
/// (`control()`).
impl std::ops::Deref for LinkedInSim {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.running
    }
}
