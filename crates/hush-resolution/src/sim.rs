//! Simulators of the systems the resolvers ask: test and demo infrastructure, never a real
//! Segment or customer service. They keep their own copy of each contract and never use the
//! resolvers' types. Faults and call records come from [`hush_sim_kit`].
//!
//! - [`SegmentProfilesSim`]: Segment's Profile API, `GET /v1/spaces/{space_id}/collections/
//!   users/profiles/{type}:{value}/external_ids` as Segment documents it: the access token as
//!   the Basic-auth user name with an empty password (`401 authentication_error` otherwise,
//!   and for another space), the value percent-decoded with a literal `+` read as a space (so
//!   a phone's `+` must be sent as `%2B`), `limit` between 1 and 100 (`400 validation_error`
//!   otherwise, default 10), `include` filtering by type, `next` paging, the documented
//!   `{"data": [{source_id, collection, id, type, created_at, encoding}], "cursor": {url,
//!   has_more, next, limit}}` answer and `404 {"error": {"code": "not_found", "message":
//!   "Profile was not found."}}`.
//! - [`CustomerServiceSim`]: a business's customer service as the `http` resolver expects it,
//!   `GET /lookup?<name>=<sha256>` with a bearer token, answering `{"identifiers": [...]}` or
//!   404.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hush_sim_kit::{any_loopback_port, serve, RunningSim, SimControl};
use serde_json::{json, Value};

/// What the simulated Unify space accepts.
#[derive(Debug, Clone)]
pub struct SegmentProfilesSimConfig {
    /// The space's access token.
    pub token: String,
    /// The space id in every URL.
    pub space_id: String,
}

impl Default for SegmentProfilesSimConfig {
    fn default() -> Self {
        Self {
            token: "sim-profile-api-access-token".into(),
            space_id: "spa_sim7Hq2Lw9".into(),
        }
    }
}

/// Documented default and largest `limit`.
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;
/// Source id reported on every external id.
const SOURCE_ID: &str = "simSource4x2";

struct ProfilesState {
    config: SegmentProfilesSimConfig,
    /// Each profile's external ids, `(type, id)`, in the order added.
    profiles: Vec<Vec<(String, String)>>,
}

type SharedProfiles = Arc<Mutex<ProfilesState>>;

/// A running Segment Profile API simulator.
pub struct SegmentProfilesSim {
    running: RunningSim,
    state: SharedProfiles,
}

impl SegmentProfilesSim {
    /// Starts the simulator on any free loopback port.
    pub async fn start(config: SegmentProfilesSimConfig) -> std::io::Result<Self> {
        Self::start_on(config, any_loopback_port()).await
    }

    /// Starts the simulator on `addr`.
    pub async fn start_on(
        config: SegmentProfilesSimConfig,
        addr: SocketAddr,
    ) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(ProfilesState {
            config,
            profiles: Vec::new(),
        }));
        // The external id is read from the raw path: Segment reads a literal `+` as a space.
        let router = Router::new()
            .fallback(get(external_ids))
            .with_state(state.clone());
        let running = serve(router, addr).await?;
        Ok(Self { running, state })
    }

    /// `http://127.0.0.1:<port>`: the `base_url` of a resolver pointed at the simulator.
    pub fn base_url(&self) -> String {
        self.running.base_url()
    }

    /// Fault injection and the record of every call received.
    pub fn control(&self) -> &SimControl {
        self.running.control()
    }

    /// Adds a profile with these external ids, `(type, id)`, e.g. `("email",
    /// "jane@example.com"), ("user_id", "cust-1001")`.
    pub fn add_profile(&self, external_ids: &[(&str, &str)]) {
        self.lock().profiles.push(
            external_ids
                .iter()
                .map(|(kind, id)| ((*kind).to_owned(), (*id).to_owned()))
                .collect(),
        );
    }

    fn lock(&self) -> MutexGuard<'_, ProfilesState> {
        self.state.lock().unwrap()
    }
}

fn profile_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// Whether `headers` carry `Basic base64(token:)`.
fn basic_auth_is(headers: &HeaderMap, token: &str) -> bool {
    use base64::Engine;
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .is_some_and(|decoded| decoded == format!("{token}:").as_bytes())
}

/// Percent-decodes a path segment, reading a literal `+` as a space.
fn decode_segment(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'%' => {
                let hex = raw.get(at + 1..at + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                at += 3;
            }
            b'+' => {
                out.push(b' ');
                at += 1;
            }
            byte => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

async fn external_ids(
    State(state): State<SharedProfiles>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let state = state.lock().unwrap();
    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let ["v1", "spaces", space, "collections", "users", "profiles", external_id, "external_ids"] =
        segments.as_slice()
    else {
        return profile_error(StatusCode::NOT_FOUND, "not_found", "Route was not found.");
    };
    if !basic_auth_is(&headers, &state.config.token) || *space != state.config.space_id {
        return profile_error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "Failure to properly authenticate yourself in the request.",
        );
    }
    let Some((kind, id)) = decode_segment(external_id)
        .as_deref()
        .and_then(|e| e.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    else {
        return profile_error(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "The external id must be given as <type>:<value>.",
        );
    };
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => limit,
        Some(_) => {
            return profile_error(
                StatusCode::BAD_REQUEST,
                "validation_error",
                "The parameter `limit` must be between 1 and 100.",
            )
        }
    };
    let Some(profile) = state
        .profiles
        .iter()
        .find(|p| p.iter().any(|(k, v)| *k == kind && *v == id))
    else {
        return profile_error(StatusCode::NOT_FOUND, "not_found", "Profile was not found.");
    };
    let include: Option<Vec<&str>> = query.get("include").map(|i| i.split(',').collect());
    let selected: Vec<&(String, String)> = profile
        .iter()
        .filter(|(k, _)| include.as_ref().is_none_or(|i| i.contains(&k.as_str())))
        .collect();
    let offset = match query.get("next") {
        None => 0,
        Some(cursor) => match cursor
            .strip_prefix("map_")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(offset) => offset,
            None => {
                return profile_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "The cursor `next` is not valid.",
                )
            }
        },
    };
    let page: Vec<Value> = selected
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(kind, id)| {
            json!({
                "source_id": SOURCE_ID,
                "collection": "users",
                "id": id,
                "type": kind,
                "created_at": "2026-03-02T10:15:04.40468Z",
                "encoding": "none",
                "first_message_id": "ajs-sim-first-message",
            })
        })
        .collect();
    let has_more = offset + limit < selected.len();
    Json(json!({
        "data": page,
        "cursor": {
            "url": uri.path(),
            "has_more": has_more,
            "next": if has_more { format!("map_{}", offset + limit) } else { String::new() },
            "limit": limit,
        }
    }))
    .into_response()
}

struct CustomerState {
    token: String,
    /// Answers by identifier hash.
    subjects: HashMap<String, Value>,
}

type SharedCustomers = Arc<Mutex<CustomerState>>;

/// A running customer service simulator.
pub struct CustomerServiceSim {
    running: RunningSim,
    state: SharedCustomers,
}

impl CustomerServiceSim {
    /// Starts the simulator on any free loopback port; calls must carry `Bearer <token>`.
    pub async fn start(token: &str) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(CustomerState {
            token: token.to_owned(),
            subjects: HashMap::new(),
        }));
        let router = Router::new()
            .route("/lookup", get(lookup))
            .with_state(state.clone());
        let running = serve(router, any_loopback_port()).await?;
        Ok(Self { running, state })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.running.base_url()
    }

    /// Fault injection and the record of every call received.
    pub fn control(&self) -> &SimControl {
        self.running.control()
    }

    /// Answers a look-up by `sha256` with `identifiers` (a JSON array of `{"type", "value"}` or
    /// `{"type", "sha256"}`).
    pub fn add_subject(&self, sha256: &str, identifiers: Value) {
        self.state
            .lock()
            .unwrap()
            .subjects
            .insert(sha256.to_owned(), identifiers);
    }
}

async fn lookup(
    State(state): State<SharedCustomers>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let state = state.lock().unwrap();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(state.token.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized"})),
        )
            .into_response();
    }
    let values: Vec<&String> = query.values().collect();
    let [sha256] = values.as_slice() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "give exactly one query parameter"})),
        )
            .into_response();
    };
    match state.subjects.get(sha256.as_str()) {
        Some(identifiers) => Json(json!({ "identifiers": identifiers })).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_plus_is_a_space_and_escapes_are_decoded() {
        assert_eq!(
            decode_segment("phone:+14155550100").as_deref(),
            Some("phone: 14155550100")
        );
        assert_eq!(
            decode_segment("email:jane%2Bnews%40example.com").as_deref(),
            Some("email:jane+news@example.com")
        );
        assert_eq!(decode_segment("bad%zz"), None);
    }

    #[tokio::test]
    async fn profiles_are_paged_with_the_documented_cursor() {
        let config = SegmentProfilesSimConfig::default();
        let sim = SegmentProfilesSim::start(config.clone()).await.unwrap();
        let ids: Vec<(String, String)> = (0..12)
            .map(|n| ("anonymous_id".to_owned(), format!("a-{n}")))
            .collect();
        let mut seeded: Vec<(&str, &str)> = vec![("user_id", "u-1")];
        seeded.extend(ids.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        sim.add_profile(&seeded);
        let http = reqwest::Client::new();
        let url = format!(
            "{}/v1/spaces/{}/collections/users/profiles/user_id:u-1/external_ids",
            sim.base_url(),
            config.space_id
        );
        let first: Value = http
            .get(&url)
            .basic_auth(&config.token, Some(""))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(first["data"].as_array().unwrap().len(), DEFAULT_LIMIT);
        assert_eq!(first["cursor"]["has_more"], true);
        let next = first["cursor"]["next"].as_str().unwrap();
        let second: Value = http
            .get(format!("{url}?next={next}&include=anonymous_id"))
            .basic_auth(&config.token, Some(""))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(second["data"].as_array().unwrap().len(), 2);
        assert_eq!(second["cursor"]["has_more"], false);
        let unauthorised = http
            .get(&url)
            .basic_auth(&config.token, Some("a-password"))
            .send()
            .await
            .unwrap();
        assert_eq!(unauthorised.status(), 401);
        let too_many = http
            .get(format!("{url}?limit=101"))
            .basic_auth(&config.token, Some(""))
            .send()
            .await
            .unwrap();
        assert_eq!(too_many.status(), 400);
    }
}
