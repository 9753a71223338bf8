//! Simulator of the Mailchimp Marketing API 3.0 endpoints the connector uses: test and demo
//! infrastructure, never a real Mailchimp service. Written from Mailchimp's documentation as it
//! stood in December 2026:
//! - <https://mailchimp.com/developer/marketing/api/list-members/> (get and update a member,
//!   `actions/delete-permanent`)
//! - <https://mailchimp.com/developer/marketing/api/list-member-tags/> (add or remove tags)
//! - <https://mailchimp.com/developer/marketing/docs/errors/> (problem documents, glossary)
//! - <https://mailchimp.com/developer/marketing/docs/fundamentals/> and the "Organize contacts
//!   with tags" guide (Basic auth with the key as password, the `<dc>` of the key, the MD5
//!   subscriber hash and its worked example)
//!
//! It keeps its own copy of that contract (the [`contract`] module) and checks what Mailchimp
//! checks: HTTP Basic auth whose password is the account's key (401 "API Key Missing" / "API
//! Key Invalid", 403 "Wrong Datacenter" for the same key of another data center), an existing
//! list (404), a member named by the MD5 of its lowercase address, its address or its
//! contact id (404 otherwise), a JSON body (400 "JSON Parse Error"; Mailchimp's own guide
//! sends none with a content type, so the content type is not checked), a status among the
//! accepted values and tags with a `name` and an `active`/`inactive` status (400 "Invalid
//! Resource" with an `errors` array). It answers in Mailchimp's shapes: the member document,
//! 204 with no body for tags and permanent deletion, and `application/problem+json` errors
//! (`type`, `title`, `status`, `detail`, `instance`). A permanently deleted member is gone
//! (404) and its hash remembered. Faults and call records come from [`hush_sim_kit`].

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use hush_sim_kit::stateful::{SharedState, StatefulSim};
use hush_sim_kit::{any_loopback_port, RunningSim};
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

/// Mailchimp's documented contract, copied here so that the simulator never depends on the
/// connector's own constants.
pub mod contract {
    /// Every Marketing API path starts with the API version.
    pub const API_ROOT: &str = "/3.0";
    /// Statuses an update may set.
    pub const MEMBER_STATUSES: [&str; 4] = ["subscribed", "unsubscribed", "cleaned", "pending"];
    /// Statuses of a tag in the tags call.
    pub const TAG_STATUSES: [&str; 2] = ["active", "inactive"];
    /// `type` of every error document.
    pub const ERROR_TYPE: &str = "https://mailchimp.com/developer/marketing/docs/errors/";
    /// Media type of error documents.
    pub const PROBLEM_JSON: &str = "application/problem+json; charset=utf-8";
}

/// What the simulated account holds.
#[derive(Debug, Clone)]
pub struct MailchimpSimConfig {
    /// The account's API key, `<32 hex>-<dc>`.
    pub api_key: String,
    /// The one audience's list id.
    pub list_id: String,
}

impl Default for MailchimpSimConfig {
    fn default() -> Self {
        Self {
            api_key: "0123456789abcdef0123456789abcdef-us21".into(),
            list_id: "9e67587f52".into(),
        }
    }
}

/// An audience member the simulator holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMember {
    /// Mailchimp's contact id.
    pub contact_id: String,
    /// Email address as added.
    pub email: String,
    /// `subscribed`, `unsubscribed`, `cleaned` or `pending`.
    pub status: String,
    /// Tag names.
    pub tags: Vec<String>,
}

struct SimState {
    config: MailchimpSimConfig,
    next_id: u64,
    members: Vec<SimMember>,
    forgotten: Vec<String>,
    failing_reads: u32,
}

type Shared = SharedState<SimState>;

/// A running Mailchimp Marketing API simulator.
pub struct MailchimpSim(StatefulSim<SimState>);

impl MailchimpSim {
    /// Starts the simulator on any free loopback port.
    pub async fn start(config: MailchimpSimConfig) -> std::io::Result<Self> {
        let state = SimState {
            config,
            next_id: 1,
            members: Vec::new(),
            forgotten: Vec::new(),
            failing_reads: 0,
        };
        let router = Router::new()
            .route("/3.0/lists/{list_id}", get(read_list))
            .route(
                "/3.0/lists/{list_id}/members/{subscriber_hash}",
                get(read_member).patch(update_member),
            )
            .route(
                "/3.0/lists/{list_id}/members/{subscriber_hash}/tags",
                post(update_tags),
            )
            .route(
                "/3.0/lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent",
                post(delete_permanent),
            );
        StatefulSim::serve(state, router, any_loopback_port())
            .await
            .map(Self)
    }

    /// Adds a member with `status` to the audience; returns its subscriber hash.
    pub fn add_member(&self, email: &str, status: &str) -> String {
        let mut state = self.0.lock();
        let contact_id = format!("sim{:08}", state.next_id);
        state.next_id += 1;
        state.members.push(SimMember {
            contact_id,
            email: email.to_owned(),
            status: status.to_owned(),
            tags: Vec::new(),
        });
        md5_hex(email)
    }

    /// The member holding `email` (any case), if any.
    pub fn member(&self, email: &str) -> Option<SimMember> {
        let hash = md5_hex(email);
        self.0
            .lock()
            .members
            .iter()
            .find(|m| md5_hex(&m.email) == hash)
            .cloned()
    }

    /// Every member, in creation order.
    pub fn members(&self) -> Vec<SimMember> {
        self.0.lock().members.clone()
    }

    /// Subscriber hashes of the members deleted permanently.
    pub fn forgotten(&self) -> Vec<String> {
        self.0.lock().forgotten.clone()
    }

    /// Changes a member's status, as the account's own users or a sign-up form could.
    pub fn set_status(&self, email: &str, status: &str) {
        let hash = md5_hex(email);
        let mut state = self.0.lock();
        if let Some(member) = state.members.iter_mut().find(|m| md5_hex(&m.email) == hash) {
            member.status = status.to_owned();
        }
    }

    /// Fault for tests: the next `reads` member reads (`GET …/members/{hash}`) answer 500.
    pub fn fail_member_reads(&self, reads: u32) {
        self.0.lock().failing_reads = reads;
    }
}

/// The simulator's address (`base_url()`) and its fault injection and call log (`control()`).
impl std::ops::Deref for MailchimpSim {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.0
    }
}

/// Mailchimp's subscriber hash of `email`, computed here from the documented rule.
fn md5_hex(email: &str) -> String {
    hex::encode(Md5::digest(email.to_lowercase().as_bytes()))
}

fn problem(status: StatusCode, title: &str, detail: &str, errors: Option<Value>) -> Response {
    let mut document = json!({
        "type": contract::ERROR_TYPE,
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
        "instance": "00000000-0000-4000-8000-000000000000",
    });
    if let Some(errors) = errors {
        document["errors"] = errors;
    }
    (
        status,
        [(header::CONTENT_TYPE, contract::PROBLEM_JSON)],
        document.to_string(),
    )
        .into_response()
}

fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "Resource Not Found",
        "The requested resource could not be found.",
        None,
    )
}

fn invalid_resource(field: &str, message: &str) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "Invalid Resource",
        "The resource submitted could not be validated. For field-specific details, see the \
         'errors' array.",
        Some(json!([{ "field": field, "message": message }])),
    )
}

/// The simulator's state, handed to a route only once the call's API key and list are admitted
/// ([`admit`]), before anything else about the call is looked at.
struct Admitted(Shared);

impl FromRequestParts<Shared> for Admitted {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        let list_id = parts
            .uri
            .path()
            .trim_start_matches("/3.0/lists/")
            .split('/')
            .next()
            .unwrap_or_default();
        match admit(&state.lock().unwrap(), &parts.headers, list_id) {
            Ok(()) => Ok(Self(state.clone())),
            Err(refusal) => Err(*refusal),
        }
    }
}

/// A call's body as the JSON object it must be, or Mailchimp's `JSON Parse Error`.
struct JsonObject(Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        json_body(&body).map(Self).map_err(|refusal| *refusal)
    }
}

/// Checks the Basic credentials and the list.
fn admit(state: &SimState, headers: &HeaderMap, list_id: &str) -> Result<(), Box<Response>> {
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    let Some(key) = credentials
        .as_deref()
        .and_then(|c| c.split_once(':'))
        .map(|(_, key)| key.to_owned())
    else {
        return Err(Box::new(problem(
            StatusCode::UNAUTHORIZED,
            "API Key Missing",
            "Your request did not include an API key.",
            None,
        )));
    };
    if key != state.config.api_key {
        let secret = |k: &str| k.rsplit_once('-').map(|(s, _)| s.to_owned());
        if secret(&key).is_some() && secret(&key) == secret(&state.config.api_key) {
            return Err(Box::new(problem(
                StatusCode::FORBIDDEN,
                "Wrong Datacenter",
                "The API key provided is linked to a different data center.",
                None,
            )));
        }
        return Err(Box::new(problem(
            StatusCode::UNAUTHORIZED,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            None,
        )));
    }
    if list_id != state.config.list_id {
        return Err(Box::new(not_found()));
    }
    Ok(())
}

fn json_body(body: &Bytes) -> Result<Map<String, Value>, Box<Response>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Box::new(problem(
            StatusCode::BAD_REQUEST,
            "JSON Parse Error",
            "We encountered an unspecified JSON parsing error.",
            None,
        ))),
    }
}

/// The member `subscriber_hash` names: the MD5 of its lowercase address, its address, or its
/// contact id.
fn find(state: &SimState, subscriber_hash: &str) -> Option<usize> {
    state.members.iter().position(|member| {
        md5_hex(&member.email) == subscriber_hash
            || member.email.eq_ignore_ascii_case(subscriber_hash)
            || member.contact_id == subscriber_hash
    })
}

fn member_document(state: &SimState, member: &SimMember) -> Value {
    let tags: Vec<Value> = member
        .tags
        .iter()
        .enumerate()
        .map(|(index, name)| json!({ "id": index + 1, "name": name }))
        .collect();
    json!({
        "id": md5_hex(&member.email),
        "email_address": member.email,
        "unique_email_id": format!("u{}", member.contact_id),
        "contact_id": member.contact_id,
        "email_type": "html",
        "status": member.status,
        "list_id": state.config.list_id,
        "last_changed": "2026-12-01T00:00:00+00:00",
        "tags_count": tags.len(),
        "tags": tags,
        "_links": [],
    })
}

/// Keeps only the top-level `fields` (comma-separated) of `document`, as `?fields=` does.
fn only_fields(document: Value, fields: Option<&String>) -> Value {
    let (Some(fields), Value::Object(map)) = (fields, &document) else {
        return document;
    };
    let wanted: Vec<&str> = fields.split(',').map(str::trim).collect();
    Value::Object(
        map.iter()
            .filter(|(key, _)| wanted.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    )
}

type Params = Query<std::collections::HashMap<String, String>>;

async fn read_list(Admitted(state): Admitted, Query(query): Params) -> Response {
    let state = state.lock().unwrap();
    let document = json!({
        "id": state.config.list_id,
        "name": "Simulated audience",
        "stats": { "member_count": state.members.len() },
    });
    Json(only_fields(document, query.get("fields"))).into_response()
}

async fn read_member(
    Admitted(state): Admitted,
    Path((_, subscriber_hash)): Path<(String, String)>,
    Query(query): Params,
) -> Response {
    let mut state = state.lock().unwrap();
    if state.failing_reads > 0 {
        state.failing_reads -= 1;
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "An unexpected internal error has occurred.",
            None,
        );
    }
    let Some(index) = find(&state, &subscriber_hash) else {
        return not_found();
    };
    let document = member_document(&state, &state.members[index]);
    Json(only_fields(document, query.get("fields"))).into_response()
}

async fn update_member(
    Admitted(state): Admitted,
    Path((_, subscriber_hash)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Response {
    let mut state = state.lock().unwrap();
    let status = match body.get("status") {
        None => None,
        Some(Value::String(s)) if contract::MEMBER_STATUSES.contains(&s.as_str()) => Some(s),
        Some(_) => {
            return invalid_resource(
                "status",
                &format!(
                    "Data presented is not one of the accepted values: {}.",
                    contract::MEMBER_STATUSES.join(", ")
                ),
            )
        }
    };
    let Some(index) = find(&state, &subscriber_hash) else {
        return not_found();
    };
    if let Some(status) = status {
        state.members[index].status = status.clone();
    }
    let document = member_document(&state, &state.members[index]);
    Json(document).into_response()
}

async fn update_tags(
    Admitted(state): Admitted,
    Path((_, subscriber_hash)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Response {
    let mut state = state.lock().unwrap();
    if body.get("is_syncing").is_some_and(|v| !v.is_boolean()) {
        return invalid_resource("is_syncing", "Must be a boolean.");
    }
    let Some(tags) = body.get("tags").and_then(Value::as_array) else {
        return invalid_resource("tags", "Required field: an array of tags.");
    };
    let mut changes = Vec::new();
    for tag in tags {
        let name = tag["name"].as_str().map(str::trim).unwrap_or_default();
        let status = tag["status"].as_str().unwrap_or_default();
        if name.is_empty() {
            return invalid_resource("tags.name", "Required field: the name of the tag.");
        }
        if !contract::TAG_STATUSES.contains(&status) {
            return invalid_resource(
                "tags.status",
                "Data presented is not one of the accepted values: active, inactive.",
            );
        }
        changes.push((name.to_owned(), status == "active"));
    }
    let Some(index) = find(&state, &subscriber_hash) else {
        return not_found();
    };
    let member = &mut state.members[index];
    for (name, active) in changes {
        let held = member
            .tags
            .iter()
            .position(|t| t.eq_ignore_ascii_case(&name));
        match (held, active) {
            (None, true) => member.tags.push(name),
            (Some(at), false) => {
                member.tags.remove(at);
            }
            _ => {}
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_permanent(
    Admitted(state): Admitted,
    Path((_, subscriber_hash)): Path<(String, String)>,
) -> Response {
    let mut state = state.lock().unwrap();
    let Some(index) = find(&state, &subscriber_hash) else {
        return not_found();
    };
    let member = state.members.remove(index);
    state.forgotten.push(md5_hex(&member.email));
    StatusCode::NO_CONTENT.into_response()
}
