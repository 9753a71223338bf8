//! Simulator of the Braze REST API's user data endpoints: test and demo infrastructure, never a
//! real Braze service. Written from Braze's documentation as it stood in December 2026:
//! - <https://www.braze.com/docs/api/endpoints/user_data/post_user_delete/>
//! - <https://www.braze.com/docs/api/endpoints/user_data/post_user_track/> and
//!   <https://www.braze.com/docs/api/objects_filters/user_attributes_object/>
//! - <https://www.braze.com/docs/api/endpoints/export/user_data/post_users_identifier/>
//! - <https://www.braze.com/docs/api/api_limits/> and <https://www.braze.com/docs/api/errors/>
//!
//! It keeps its own copy of that contract (the [`contract`] module) and checks what Braze
//! checks: the `Authorization: Bearer` REST API key, a JSON body, one identifier kind and at
//! most 50 identifiers per `/users/delete`, at most 75 objects per `/users/track` with one
//! identifier each (refused objects are non-fatal `errors` with their `index`),
//! `_update_existing_only`, the `email_subscribe` values, and `/users/export/ids`'s 50
//! `external_ids` or single `email_address`, with `fields_to_export` required. It answers in
//! Braze's envelopes (`{"message": "success", ...}`, fatal `{"message", "errors"}`). Writes and
//! deletions can be made to lag behind a number of exports, as Braze's queue does; a request
//! quota answers 429 with `X-RateLimit-Reset` (a UTC epoch second) and no `Retry-After`.
//! Faults and call records come from [`hush_sim_kit`].

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hush_sim_kit::stateful::{SharedState, StatefulSim};
use hush_sim_kit::{any_loopback_port, RunningSim};
use serde_json::{json, Map, Value};

/// Braze's documented contract, copied here so that the simulator never depends on the
/// connector's own constants.
pub mod contract {
    /// Identifiers one `/users/delete` request may carry, of one kind only.
    pub const DELETE_MAX_IDS: usize = 50;
    /// The identifier arrays of `/users/delete`.
    pub const DELETE_IDENTIFIERS: [&str; 5] = [
        "external_ids",
        "user_aliases",
        "braze_ids",
        "email_addresses",
        "phone_numbers",
    ];
    /// Values of `prioritization` for a deletion by email or phone.
    pub const PRIORITIZATION: [&str; 3] = ["identified", "unidentified", "most_recently_updated"];
    /// Objects (attributes, events and purchases combined) one `/users/track` request may carry.
    pub const TRACK_MAX_OBJECTS: usize = 75;
    /// The identifiers of a user attributes object; one is required.
    pub const TRACK_IDENTIFIERS: [&str; 5] =
        ["external_id", "user_alias", "braze_id", "email", "phone"];
    /// Values of `email_subscribe`.
    pub const EMAIL_SUBSCRIBE: [&str; 3] = ["opted_in", "subscribed", "unsubscribed"];
    /// External ids one `/users/export/ids` request may carry.
    pub const EXPORT_MAX_EXTERNAL_IDS: usize = 50;
    /// The single-value identifiers of `/users/export/ids`; only one per request.
    pub const EXPORT_SINGLE_IDENTIFIERS: [&str; 4] =
        ["device_id", "braze_id", "email_address", "phone"];
    /// Valid `fields_to_export` (a subset of the documented list; the rest are refused here).
    pub const EXPORT_FIELDS: [&str; 12] = [
        "braze_id",
        "external_id",
        "email",
        "phone",
        "email_subscribe",
        "push_subscribe",
        "custom_attributes",
        "first_name",
        "last_name",
        "country",
        "created_at",
        "user_aliases",
    ];
}

/// What the simulated workspace accepts.
#[derive(Debug, Clone)]
pub struct BrazeSimConfig {
    /// The REST API key every call must carry.
    pub api_key: String,
    /// Exports that still show the old state after a write or deletion (Braze's queue).
    pub lag_exports: u32,
}

impl Default for BrazeSimConfig {
    fn default() -> Self {
        Self {
            api_key: "sim-braze-rest-api-key".into(),
            lag_exports: 0,
        }
    }
}

/// A user profile the simulator holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SimProfile {
    /// Braze's id.
    pub braze_id: String,
    /// The business's id, if the profile is identified.
    pub external_id: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// `email_subscribe`.
    pub email_subscribe: String,
    /// Custom attributes.
    pub custom_attributes: Map<String, Value>,
}

/// A write or deletion Braze accepted but has not processed yet.
enum Queued {
    Attributes {
        braze_id: String,
        fields: Map<String, Value>,
    },
    Delete {
        braze_id: String,
    },
}

struct SimState {
    config: BrazeSimConfig,
    next_id: u64,
    profiles: Vec<SimProfile>,
    queue: Vec<(u32, Queued)>,
    quota: Option<u32>,
}

impl SimState {
    /// Processes queued work whose lag has run out.
    fn tick(&mut self) {
        let mut due = Vec::new();
        self.queue.retain_mut(|(left, work)| {
            if *left == 0 {
                due.push(std::mem::replace(
                    work,
                    Queued::Delete {
                        braze_id: String::new(),
                    },
                ));
                false
            } else {
                *left -= 1;
                true
            }
        });
        for work in due {
            self.process(work);
        }
    }

    fn enqueue(&mut self, work: Queued) {
        if self.config.lag_exports == 0 {
            self.process(work);
        } else {
            self.queue.push((self.config.lag_exports, work));
        }
    }

    fn process(&mut self, work: Queued) {
        match work {
            Queued::Delete { braze_id } => self.profiles.retain(|p| p.braze_id != braze_id),
            Queued::Attributes { braze_id, fields } => {
                let Some(profile) = self.profiles.iter_mut().find(|p| p.braze_id == braze_id)
                else {
                    return;
                };
                for (name, value) in fields {
                    match name.as_str() {
                        "email_subscribe" => {
                            profile.email_subscribe = value.as_str().unwrap_or_default().to_owned()
                        }
                        "email" => profile.email = value.as_str().map(str::to_owned),
                        _ => {
                            profile.custom_attributes.insert(name, value);
                        }
                    }
                }
            }
        }
    }
}

type Shared = SharedState<SimState>;

/// A running Braze REST API simulator.
pub struct BrazeSim(StatefulSim<SimState>);

impl BrazeSim {
    /// Starts the simulator on any free loopback port.
    pub async fn start(config: BrazeSimConfig) -> std::io::Result<Self> {
        let state = SimState {
            config,
            next_id: 1,
            profiles: Vec::new(),
            queue: Vec::new(),
            quota: None,
        };
        let router = Router::new()
            .route("/users/track", post(track))
            .route("/users/delete", post(delete))
            .route("/users/export/ids", post(export));
        StatefulSim::serve(state, router, any_loopback_port())
            .await
            .map(Self)
    }

    /// Adds a profile with these identifiers (`email_subscribe` `subscribed`); returns its
    /// `braze_id`.
    pub fn add_profile(&self, external_id: Option<&str>, email: Option<&str>) -> String {
        let mut state = self.0.lock();
        let braze_id = format!("5f{:022x}", state.next_id);
        state.next_id += 1;
        state.profiles.push(SimProfile {
            braze_id: braze_id.clone(),
            external_id: external_id.map(str::to_owned),
            email: email.map(str::to_owned),
            email_subscribe: "subscribed".into(),
            custom_attributes: Map::new(),
        });
        braze_id
    }

    /// The profile with `braze_id`, if it exists (queued work not yet processed is not shown).
    pub fn profile(&self, braze_id: &str) -> Option<SimProfile> {
        self.0
            .lock()
            .profiles
            .iter()
            .find(|p| p.braze_id == braze_id)
            .cloned()
    }

    /// Sets a custom attribute on a profile directly, as a dashboard user or the SDK would.
    pub fn set_attribute(&self, braze_id: &str, name: &str, value: Value) {
        if let Some(profile) = self
            .0
            .lock()
            .profiles
            .iter_mut()
            .find(|p| p.braze_id == braze_id)
        {
            profile.custom_attributes.insert(name.to_owned(), value);
        }
    }

    /// Every profile, in creation order.
    pub fn profiles(&self) -> Vec<SimProfile> {
        self.0.lock().profiles.clone()
    }

    /// Exports that show the old state after a write or deletion made from now on.
    pub fn set_lag_exports(&self, exports: u32) {
        self.0.lock().config.lag_exports = exports;
    }

    /// From now on, `requests` more requests are served; then every request is answered 429
    /// with `X-RateLimit-Reset` a minute ahead and no `Retry-After`.
    pub fn limit_requests(&self, requests: u32) {
        self.0.lock().quota = Some(requests);
    }
}

/// The simulator's address (`base_url()`) and its fault injection and call log (`control()`).
impl std::ops::Deref for BrazeSim {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.0
    }
}

fn fatal(status: StatusCode, message: &str, errors: &[&str]) -> Response {
    let mut body = json!({ "message": message });
    if !errors.is_empty() {
        body["errors"] = json!(errors);
    }
    (status, Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    fatal(StatusCode::BAD_REQUEST, message, &[])
}

/// Checks the key, the quota and the body; the parsed body, or the refusal.
fn admit(state: &mut SimState, headers: &HeaderMap, body: &Bytes) -> Result<Value, Box<Response>> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(state.config.api_key.as_str()) {
        return Err(Box::new(fatal(
            StatusCode::UNAUTHORIZED,
            "Unknown or missing REST API key",
            &[],
        )));
    }
    if let Some(left) = state.quota.as_mut() {
        if *left == 0 {
            let reset = chrono::Utc::now().timestamp() + 60;
            let mut headers = HeaderMap::new();
            headers.insert("x-ratelimit-limit", "0".parse().expect("header"));
            headers.insert("x-ratelimit-remaining", "0".parse().expect("header"));
            headers.insert(
                "x-ratelimit-reset",
                reset.to_string().parse().expect("header"),
            );
            let body = Json(json!({"message": "Rate limit exceeded"}));
            return Err(Box::new(
                (StatusCode::TOO_MANY_REQUESTS, headers, body).into_response(),
            ));
        }
        *left -= 1;
    }
    let json_media = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !json_media {
        return Err(Box::new(bad_request(
            "Content-Type must be application/json",
        )));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(Value::Object(object)),
        _ => Err(Box::new(bad_request(
            "Bad syntax: the body is not a JSON object",
        ))),
    }
}

async fn track(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = state.lock().unwrap();
    let body = match admit(&mut state, &headers, &body) {
        Ok(body) => body,
        Err(refusal) => return *refusal,
    };
    let count = |key: &str| body[key].as_array().map_or(0, Vec::len);
    let objects = count("attributes") + count("events") + count("purchases");
    if objects > contract::TRACK_MAX_OBJECTS {
        return bad_request(&format!(
            "Too many objects: at most {} attributes, events and purchases combined per request",
            contract::TRACK_MAX_OBJECTS
        ));
    }
    let mut errors = Vec::new();
    let mut processed = 0;
    for (index, object) in body["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let mut refuse = |message: &str| {
            errors.push(json!({"type": message, "input_array": "attributes", "index": index}));
        };
        let Some(fields) = object.as_object() else {
            refuse("attributes must be objects");
            continue;
        };
        let identifiers: Vec<&str> = contract::TRACK_IDENTIFIERS
            .into_iter()
            .filter(|key| fields.contains_key(*key))
            .collect();
        if identifiers.is_empty() {
            refuse("'external_id', 'user_alias', 'braze_id', 'email' or 'phone' is required");
            continue;
        }
        if let Some(value) = fields.get("email_subscribe") {
            if !value
                .as_str()
                .is_some_and(|v| contract::EMAIL_SUBSCRIBE.contains(&v))
            {
                refuse("email_subscribe must be one of opted_in, subscribed or unsubscribed");
                continue;
            }
        }
        if fields.keys().any(|name| name.starts_with('$')) {
            refuse("custom attribute names may not start with $");
            continue;
        }
        let update_only = fields
            .get("_update_existing_only")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let existing = state.profiles.iter().find(|p| match identifiers[0] {
            "braze_id" => fields["braze_id"].as_str() == Some(&p.braze_id),
            "external_id" => fields["external_id"].as_str() == p.external_id.as_deref(),
            "email" => fields["email"].as_str() == p.email.as_deref(),
            _ => false,
        });
        let braze_id = match existing {
            Some(profile) => profile.braze_id.clone(),
            None if update_only => {
                processed += 1;
                continue;
            }
            None => {
                let braze_id = format!("5f{:022x}", state.next_id);
                state.next_id += 1;
                state.profiles.push(SimProfile {
                    braze_id: braze_id.clone(),
                    external_id: fields["external_id"].as_str().map(str::to_owned),
                    email: fields["email"].as_str().map(str::to_owned),
                    email_subscribe: "subscribed".into(),
                    custom_attributes: Map::new(),
                });
                braze_id
            }
        };
        let written: Map<String, Value> = fields
            .iter()
            .filter(|(name, _)| {
                !contract::TRACK_IDENTIFIERS.contains(&name.as_str()) || name.as_str() == "email"
            })
            .filter(|(name, _)| !name.starts_with('_'))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        state.enqueue(Queued::Attributes {
            braze_id,
            fields: written,
        });
        processed += 1;
    }
    let mut answer = json!({"message": "success", "attributes_processed": processed});
    if !errors.is_empty() {
        answer["errors"] = json!(errors);
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn delete(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = state.lock().unwrap();
    let body = match admit(&mut state, &headers, &body) {
        Ok(body) => body,
        Err(refusal) => return *refusal,
    };
    let given: Vec<&str> = contract::DELETE_IDENTIFIERS
        .into_iter()
        .filter(|key| !body[*key].is_null())
        .collect();
    let key = match given.as_slice() {
        [key] => *key,
        [] => {
            return bad_request(&format!(
                "One of {} is required",
                contract::DELETE_IDENTIFIERS.join(", ")
            ))
        }
        _ => {
            return bad_request(&format!(
                "Only one of {} can be included in a single request",
                contract::DELETE_IDENTIFIERS.join(", ")
            ))
        }
    };
    let Some(entries) = body[key].as_array() else {
        return bad_request(&format!("{key} must be an array"));
    };
    if entries.is_empty() || entries.len() > contract::DELETE_MAX_IDS {
        return bad_request(&format!(
            "{key} must hold between 1 and {} identifiers",
            contract::DELETE_MAX_IDS
        ));
    }
    let mut doomed = Vec::new();
    for entry in entries {
        let matched: Vec<String> = match key {
            "braze_ids" | "external_ids" => {
                let Some(id) = entry.as_str() else {
                    return bad_request(&format!("{key} must be strings"));
                };
                state
                    .profiles
                    .iter()
                    .filter(|p| match key {
                        "braze_ids" => p.braze_id == id,
                        _ => p.external_id.as_deref() == Some(id),
                    })
                    .map(|p| p.braze_id.clone())
                    .collect()
            }
            "email_addresses" => {
                let (Some(email), Some(order)) =
                    (entry["email"].as_str(), entry["prioritization"].as_array())
                else {
                    return bad_request(
                        "email_addresses entries need an email and a prioritization array",
                    );
                };
                if order.is_empty()
                    || !order.iter().all(|p| {
                        p.as_str()
                            .is_some_and(|p| contract::PRIORITIZATION.contains(&p))
                    })
                {
                    return bad_request(&format!(
                        "prioritization must be an ordered array of {}",
                        contract::PRIORITIZATION.join(", ")
                    ));
                }
                let holders: Vec<String> = state
                    .profiles
                    .iter()
                    .filter(|p| p.email.as_deref() == Some(email))
                    .map(|p| p.braze_id.clone())
                    .collect();
                // Braze deletes nothing when more than one profile matches the prioritization.
                if holders.len() == 1 {
                    holders
                } else {
                    Vec::new()
                }
            }
            _ => return bad_request(&format!("{key} is not supported by this simulator")),
        };
        for braze_id in matched {
            if !doomed.contains(&braze_id) {
                doomed.push(braze_id);
            }
        }
    }
    let deleted = doomed.len();
    for braze_id in doomed {
        state.enqueue(Queued::Delete { braze_id });
    }
    (
        StatusCode::CREATED,
        Json(json!({"deleted": deleted, "message": "success"})),
    )
        .into_response()
}

async fn export(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = state.lock().unwrap();
    let body = match admit(&mut state, &headers, &body) {
        Ok(body) => body,
        Err(refusal) => return *refusal,
    };
    let Some(fields) = body["fields_to_export"].as_array() else {
        return bad_request("fields_to_export is required");
    };
    let fields: Vec<&str> = fields.iter().filter_map(Value::as_str).collect();
    if let Some(unknown) = fields.iter().find(|f| !contract::EXPORT_FIELDS.contains(f)) {
        return bad_request(&format!("Invalid field in fields_to_export: {unknown}"));
    }
    let singles: Vec<&str> = contract::EXPORT_SINGLE_IDENTIFIERS
        .into_iter()
        .filter(|key| !body[*key].is_null())
        .collect();
    let external_ids = body["external_ids"].as_array();
    if singles.len() > 1 || (!singles.is_empty() && external_ids.is_some()) {
        return bad_request(
            "Only one of device_id, braze_id, email_address or phone can be included per request",
        );
    }
    state.tick();
    let mut users = Vec::new();
    let mut invalid = Vec::new();
    if let Some(ids) = external_ids {
        if ids.len() > contract::EXPORT_MAX_EXTERNAL_IDS {
            return bad_request(&format!(
                "At most {} external_ids per request",
                contract::EXPORT_MAX_EXTERNAL_IDS
            ));
        }
        for id in ids {
            let Some(id) = id.as_str() else {
                return bad_request("external_ids must be strings");
            };
            match state
                .profiles
                .iter()
                .find(|p| p.external_id.as_deref() == Some(id))
            {
                Some(profile) => users.push(exported(profile, &fields)),
                None => invalid.push(id.to_owned()),
            }
        }
    } else if let [key] = singles.as_slice() {
        let Some(value) = body[*key].as_str() else {
            return bad_request(&format!("{key} must be a string"));
        };
        let holders: Vec<&SimProfile> = state
            .profiles
            .iter()
            .filter(|p| match *key {
                "email_address" => p.email.as_deref() == Some(value),
                "braze_id" => p.braze_id == value,
                _ => false,
            })
            .collect();
        if holders.is_empty() {
            invalid.push(value.to_owned());
        }
        users.extend(holders.into_iter().map(|p| exported(p, &fields)));
    } else {
        return bad_request("An identifier is required");
    }
    let mut answer = json!({"users": users, "message": "success"});
    if !invalid.is_empty() {
        answer["invalid_user_ids"] = json!(invalid);
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// The requested fields of a profile, as an export object (missing values are left out).
fn exported(profile: &SimProfile, fields: &[&str]) -> Value {
    let mut user = Map::new();
    for field in fields {
        let value = match *field {
            "braze_id" => json!(profile.braze_id),
            "external_id" => json!(profile.external_id),
            "email" => json!(profile.email),
            "email_subscribe" => json!(profile.email_subscribe),
            "custom_attributes" => Value::Object(profile.custom_attributes.clone()),
            _ => Value::Null,
        };
        if !value.is_null() {
            user.insert((*field).to_owned(), value);
        }
    }
    Value::Object(user)
}
