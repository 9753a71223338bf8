//! A simulator of HubSpot's date-versioned CRM contacts API: test and demo infrastructure, never
//! the real HubSpot.
//!
//! It keeps contacts in memory (seed them with [`HubSpotSimulator::add_contact`]) and answers the
//! calls Hush makes the way HubSpot documents them, under `/crm/objects/{version}/contacts` for
//! the date versions HubSpot serves (see [`contract`]; any other is a 404): bearer-token auth (401
//! `INVALID_AUTHENTICATION`), `PATCH`/`GET .../{id}` with `idProperty=email` or an object id,
//! `POST .../batch/update` and `POST .../batch/read` (1 to 100 inputs, 207 with
//! `OBJECT_NOT_FOUND` for unknown contacts), `POST .../contacts` (create: 201, 409 `CONFLICT` for
//! an email already held), `POST .../gdpr-delete` (204; an unknown email is blocklisted, as
//! HubSpot documents), custom properties that must exist and take `"true"`/`"false"`, and
//! emails that must be trimmed and lowercase, all refused with HubSpot's error shape. More than
//! 100 requests within 10 seconds get a 429 with `Retry-After` and HubSpot's rate-limit body.
//! Fault injection and call recording come from `hush-sim-kit`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use hush_sim_kit::{any_loopback_port, serve, RunningSim};
use serde_json::{json, Value};

use self::contract::{
    BatchReadBody, BatchUpdateBody, GdprDeleteBody, PropertiesBody, BATCH_LIMIT, ID_PROPERTY,
    SERVED_VERSIONS,
};

/// HubSpot's side of the contract, copied from HubSpot's documentation rather than from the
/// connector, so that a wrong field name or limit in the connector cannot pass here too.
/// Source: developers.hubspot.com, CRM objects reference of the 2026-03 date version (batch
/// read, batch update), versioning guide, and the 2026-03 GDPR delete in HubSpot's SDKs.
pub mod contract {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    /// Date versions HubSpot serves on 2026-12-01: 2026-03 (first GA, 2026-03-30) and 2026-09
    /// (current, 2026-09-08); 2025-09 was a beta. Source: HubSpot "Versioning" and changelog.
    pub const SERVED_VERSIONS: &[&str] = &["2026-03", "2026-09"];
    /// Inputs one `batch/update` or `batch/read` accepts (HubSpot's batch limit of 100 ids).
    pub const BATCH_LIMIT: usize = 100;
    /// The `idProperty` that looks a contact up by email; on GDPR delete, an unknown email is
    /// blocklisted.
    pub const ID_PROPERTY: &str = "email";

    /// Body of `PATCH /crm/objects/{version}/contacts/{contactId}` and of `POST .../contacts`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PropertiesBody {
        /// Property internal name → new value.
        pub properties: BTreeMap<String, String>,
    }

    /// Body of `POST /crm/objects/{version}/contacts/batch/read`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct BatchReadBody {
        /// One input per contact.
        pub inputs: Vec<BatchReadInput>,
        /// Property the inputs' ids are values of; absent means record ids.
        #[serde(rename = "idProperty", default)]
        pub id_property: Option<String>,
        /// Properties to return.
        #[serde(default)]
        pub properties: Vec<String>,
        /// Properties to return with their history.
        #[serde(rename = "propertiesWithHistory", default)]
        pub properties_with_history: Vec<String>,
    }

    /// One input of a batch read.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct BatchReadInput {
        /// The contact's id, or its value of `idProperty`.
        pub id: String,
    }

    /// Body of `POST /crm/objects/{version}/contacts/batch/update`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct BatchUpdateBody {
        /// One input per contact.
        pub inputs: Vec<BatchInput>,
    }

    /// One input of a batch update.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct BatchInput {
        /// The contact's id, or its value of `idProperty`.
        pub id: String,
        /// Property the `id` is a value of; absent means a record id.
        #[serde(rename = "idProperty", default)]
        pub id_property: Option<String>,
        /// Property internal name → new value.
        pub properties: BTreeMap<String, String>,
        /// Optional trace id HubSpot echoes in errors.
        #[serde(rename = "objectWriteTraceId", default)]
        pub object_write_trace_id: Option<String>,
    }

    /// Body of `POST /crm/objects/{version}/contacts/gdpr-delete`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct GdprDeleteBody {
        /// The contact's id, or its value of `idProperty`.
        #[serde(rename = "objectId")]
        pub object_id: String,
        /// Property `objectId` is a value of; absent means a record id.
        #[serde(rename = "idProperty", default)]
        pub id_property: Option<String>,
    }
}

/// Requests HubSpot allows a private app per rolling window.
pub const RATE_LIMIT: usize = 100;
/// The rolling window of [`RATE_LIMIT`].
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// Custom properties a simulated portal starts with (the connector's defaults).
pub const DEFAULT_PROPERTIES: [&str; 2] = ["hush_do_not_sell", "hush_limit_sensitive"];

#[derive(Clone)]
struct Contact {
    id: String,
    created_at: String,
    updated_at: String,
    properties: BTreeMap<String, String>,
}

#[derive(Default)]
struct Portal {
    contacts: BTreeMap<String, Contact>,
    custom_properties: BTreeSet<String>,
    blocklist: BTreeSet<String>,
    next_id: u64,
}

impl Portal {
    fn email_of(&self, object_id: &str) -> Option<String> {
        self.contacts
            .iter()
            .find(|(_, c)| c.id == object_id)
            .map(|(email, _)| email.clone())
    }
}

struct SimState {
    token: String,
    portal: Mutex<Portal>,
    window: Mutex<VecDeque<Instant>>,
    /// Updates answer as applied but change nothing (a portal silently dropping writes).
    drop_writes: AtomicBool,
    /// GDPR deletes answer 204 but delete nothing (a portal silently dropping deletions).
    drop_deletes: AtomicBool,
}

impl SimState {
    /// Records a request in the rolling window, or says how long to wait when it is full.
    fn admit(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut window = self.window.lock().unwrap();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW)
        {
            window.pop_front();
        }
        if window.len() >= RATE_LIMIT {
            let oldest = *window.front().expect("the window is full");
            return Some(RATE_WINDOW - now.duration_since(oldest));
        }
        window.push_back(now);
        None
    }
}

/// A simulated HubSpot portal serving on loopback; stops when dropped.
pub struct HubSpotSimulator {
    running: RunningSim,
    state: Arc<SimState>,
}

fn normalised(email: &str) -> String {
    email.trim().to_lowercase()
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl HubSpotSimulator {
    /// Starts a portal on any free loopback port that accepts `Bearer <token>`.
    pub async fn start(token: &str) -> std::io::Result<Self> {
        Self::start_on(any_loopback_port(), token).await
    }

    /// Starts a portal on `addr` (for the demo stack).
    pub async fn start_on(addr: SocketAddr, token: &str) -> std::io::Result<Self> {
        let portal = Portal {
            custom_properties: DEFAULT_PROPERTIES.iter().map(|p| p.to_string()).collect(),
            next_id: 1001,
            ..Portal::default()
        };
        let state = Arc::new(SimState {
            token: token.to_owned(),
            portal: Mutex::new(portal),
            window: Mutex::new(VecDeque::new()),
            drop_writes: AtomicBool::new(false),
            drop_deletes: AtomicBool::new(false),
        });
        let router = Router::new()
            .route("/crm/objects/{version}/contacts", post(create_contact))
            .route(
                "/crm/objects/{version}/contacts/{id}",
                patch(update_contact).get(read_contact),
            )
            .route(
                "/crm/objects/{version}/contacts/batch/update",
                post(batch_update),
            )
            .route(
                "/crm/objects/{version}/contacts/batch/read",
                post(batch_read),
            )
            .route(
                "/crm/objects/{version}/contacts/gdpr-delete",
                post(gdpr_delete),
            )
            .fallback(unknown_route)
            .layer(middleware::from_fn_with_state(state.clone(), gate))
            .with_state(state.clone());
        let running = serve(router, addr).await?;
        Ok(Self { running, state })
    }

    /// Seeds a contact (email trimmed and lowercased) and returns its object id; an existing
    /// contact keeps its id.
    pub fn add_contact(&self, email: &str) -> String {
        let email = normalised(email);
        let mut portal = self.state.portal.lock().unwrap();
        if let Some(contact) = portal.contacts.get(&email) {
            return contact.id.clone();
        }
        let id = portal.next_id.to_string();
        portal.next_id += 1;
        let now = now_rfc3339();
        portal.contacts.insert(
            email.clone(),
            Contact {
                id: id.clone(),
                created_at: now.clone(),
                updated_at: now,
                properties: BTreeMap::from([("email".to_owned(), email)]),
            },
        );
        id
    }

    /// Creates a custom single-checkbox contact property in the portal.
    pub fn define_property(&self, name: &str) {
        self.state
            .portal
            .lock()
            .unwrap()
            .custom_properties
            .insert(name.to_owned());
    }

    /// Changes a contact's property as a portal user editing the record would.
    pub fn set_property(&self, email: &str, name: &str, value: &str) {
        let mut portal = self.state.portal.lock().unwrap();
        if let Some(contact) = portal.contacts.get_mut(&normalised(email)) {
            contact.properties.insert(name.to_owned(), value.to_owned());
        }
    }

    /// A contact's property value (`None` when the contact or the value is absent).
    pub fn property(&self, email: &str, name: &str) -> Option<String> {
        let portal = self.state.portal.lock().unwrap();
        portal
            .contacts
            .get(&normalised(email))
            .and_then(|c| c.properties.get(name).cloned())
    }

    /// With `true`, property updates answer exactly as if they were applied but change nothing,
    /// as a portal that silently drops writes would; `false` applies them again.
    pub fn drop_writes(&self, drop: bool) {
        self.state.drop_writes.store(drop, Ordering::SeqCst);
    }

    /// With `true`, GDPR deletes answer 204 exactly as if they were applied but delete nothing;
    /// `false` applies them again.
    pub fn drop_deletes(&self, drop: bool) {
        self.state.drop_deletes.store(drop, Ordering::SeqCst);
    }

    /// Whether a contact with this email exists.
    pub fn exists(&self, email: &str) -> bool {
        let portal = self.state.portal.lock().unwrap();
        portal.contacts.contains_key(&normalised(email))
    }

    /// Whether a GDPR delete blocklisted this email (it matched no contact).
    pub fn blocklisted(&self, email: &str) -> bool {
        let portal = self.state.portal.lock().unwrap();
        portal.blocklist.contains(&normalised(email))
    }
}

/// A refusal in HubSpot's error shape
/// (`{"status":"error","message":..,"correlationId":..,"category":..}`).
struct Refusal {
    status: StatusCode,
    category: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, category: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            category,
            message: message.into(),
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({
                "status": "error",
                "message": self.message,
                "correlationId": uuid::Uuid::new_v4().to_string(),
                "category": self.category,
            })),
        )
            .into_response()
    }
}

async fn gate(State(state): State<Arc<SimState>>, request: Request, next: Next) -> Response {
    if let Some(wait) = state.admit() {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": uuid::Uuid::new_v4().to_string(),
                "policyName": "TEN_SECONDLY_ROLLING",
            })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        return response;
    }
    let expected = format!("Bearer {}", state.token);
    let authorised = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorised {
        return Refusal::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and \
             you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        )
        .into_response();
    }
    next.run(request).await
}

async fn unknown_route() -> Refusal {
    Refusal::not_found("Unable to route the request: no such endpoint")
}

/// `Ok` for a date version HubSpot serves; otherwise the 404 of an unknown route.
fn served(version: &str) -> Result<(), Refusal> {
    if SERVED_VERSIONS.contains(&version) {
        Ok(())
    } else {
        Err(Refusal::not_found(format!(
            "Unable to route the request: no API version {version} (served: {})",
            SERVED_VERSIONS.join(", ")
        )))
    }
}

fn require_json(headers: &HeaderMap) -> Result<(), Refusal> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "VALIDATION_ERROR",
            "Content-Type must be application/json",
        ))
    }
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body)
        .map_err(|e| Refusal::validation(format!("Invalid input JSON: {e}")))
}

/// The JSON body of a call, checked as HubSpot checks it before reading it: the path's
/// `{version}` served, the body sent as `application/json` and of `T`'s shape; HubSpot's
/// refusal otherwise.
struct CheckedJson<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for CheckedJson<T> {
    type Rejection = Refusal;

    async fn from_request(request: Request, state: &S) -> Result<Self, Refusal> {
        let (mut parts, body) = request.into_parts();
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(&mut parts, state)
            .await
            .map_err(|_| Refusal::not_found("resource not found"))?;
        served(params.get("version").map_or("", String::as_str))?;
        require_json(&parts.headers)?;
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(|e| Refusal::validation(format!("Invalid input JSON: {e}")))?;
        parse_body(&body).map(Self)
    }
}

/// `Ok` when a batch holds from 1 to [`BATCH_LIMIT`] inputs.
fn batch_size(inputs: usize) -> Result<(), Refusal> {
    if inputs == 0 || inputs > BATCH_LIMIT {
        return Err(Refusal::validation(format!(
            "inputs: size must be between 1 and {BATCH_LIMIT}, got {inputs}"
        )));
    }
    Ok(())
}

/// Resolves `id` under `idProperty` to a stored email: `Ok(None)` when no contact matches.
fn resolve(
    portal: &Portal,
    id: &str,
    id_property: Option<&str>,
) -> Result<Option<String>, Refusal> {
    match id_property {
        Some(ID_PROPERTY) => {
            if id != normalised(id) {
                return Err(Refusal::validation(format!(
                    "Email address {id} is not valid: it must be trimmed and lowercase"
                )));
            }
            Ok(portal.contacts.contains_key(id).then(|| id.to_owned()))
        }
        None => Ok(portal.email_of(id)),
        Some(other) => Err(Refusal::validation(format!(
            "Property {other} is not a unique identifier property for contacts"
        ))),
    }
}

fn check_properties(portal: &Portal, properties: &BTreeMap<String, String>) -> Result<(), Refusal> {
    let problems: Vec<Value> = properties
        .iter()
        .filter_map(|(name, value)| {
            if !portal.custom_properties.contains(name) {
                let message = format!("Property \"{name}\" does not exist");
                Some(
                    json!({"isValid": false, "message": message, "error": "PROPERTY_DOESNT_EXIST",
                            "name": name, "localizedErrorMessage": message}),
                )
            } else if value != "true" && value != "false" {
                let message = format!("{value} was not one of the allowed options: [true, false]");
                Some(
                    json!({"isValid": false, "message": message, "error": "INVALID_OPTION",
                            "name": name, "localizedErrorMessage": message}),
                )
            } else {
                None
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Refusal::validation(format!(
            "Property values were not valid: {}",
            Value::Array(problems)
        )))
    }
}

fn contact_json(contact: &Contact, requested: Option<&[&str]>) -> Value {
    let mut properties = serde_json::Map::new();
    match requested {
        Some(names) => {
            for name in names {
                properties.insert(
                    (*name).to_owned(),
                    contact
                        .properties
                        .get(*name)
                        .map_or(Value::Null, |v| Value::String(v.clone())),
                );
            }
        }
        None => {
            for (name, value) in &contact.properties {
                properties.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    properties.insert("hs_object_id".into(), Value::String(contact.id.clone()));
    properties.insert(
        "createdate".into(),
        Value::String(contact.created_at.clone()),
    );
    properties.insert(
        "lastmodifieddate".into(),
        Value::String(contact.updated_at.clone()),
    );
    json!({
        "id": contact.id,
        "properties": properties,
        "createdAt": contact.created_at,
        "updatedAt": contact.updated_at,
        "archived": false,
    })
}

/// `contact` with `properties` written, stored unless the portal drops writes; the contact as
/// the answer shows it.
fn apply(
    state: &SimState,
    contact: &mut Contact,
    properties: &BTreeMap<String, String>,
) -> Contact {
    let mut updated = contact.clone();
    updated.properties.extend(properties.clone());
    updated.updated_at = now_rfc3339();
    if !state.drop_writes.load(Ordering::SeqCst) {
        *contact = updated.clone();
    }
    updated
}

/// A contact that `resolve` found, or HubSpot's 404.
fn found(email: Option<String>) -> Result<String, Refusal> {
    email.ok_or_else(|| Refusal::not_found("resource not found"))
}

async fn read_contact(
    State(state): State<Arc<SimState>>,
    Path((version, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    served(&version)?;
    let portal = state.portal.lock().unwrap();
    let id_property = query.get("idProperty").map(String::as_str);
    let email = found(resolve(&portal, &id, id_property)?)?;
    let requested: Option<Vec<&str>> = query
        .get("properties")
        .map(|list| list.split(',').filter(|p| !p.is_empty()).collect());
    Ok(Json(contact_json(&portal.contacts[&email], requested.as_deref())).into_response())
}

async fn update_contact(
    State(state): State<Arc<SimState>>,
    Path((_, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    CheckedJson(update): CheckedJson<PropertiesBody>,
) -> Result<Response, Refusal> {
    let mut portal = state.portal.lock().unwrap();
    let id_property = query.get("idProperty").map(String::as_str);
    let email = found(resolve(&portal, &id, id_property)?)?;
    check_properties(&portal, &update.properties)?;
    let contact = portal.contacts.get_mut(&email).expect("resolved above");
    let answer = apply(&state, contact, &update.properties);
    Ok(Json(contact_json(&answer, None)).into_response())
}

async fn batch_update(
    State(state): State<Arc<SimState>>,
    CheckedJson(batch): CheckedJson<BatchUpdateBody>,
) -> Result<Response, Refusal> {
    batch_size(batch.inputs.len())?;
    let mut seen = BTreeSet::new();
    let duplicates: Vec<&str> = batch
        .inputs
        .iter()
        .filter(|input| !seen.insert(input.id.as_str()))
        .map(|input| input.id.as_str())
        .collect();
    if !duplicates.is_empty() {
        return Err(Refusal::validation(format!(
            "Duplicate IDs found in batch input: {duplicates:?}. IDs must be unique"
        )));
    }
    let mut portal = state.portal.lock().unwrap();
    let mut targets = Vec::with_capacity(batch.inputs.len());
    for input in &batch.inputs {
        targets.push(resolve(&portal, &input.id, input.id_property.as_deref())?);
        check_properties(&portal, &input.properties)?;
    }
    let started = now_rfc3339();
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for (input, target) in batch.inputs.iter().zip(targets) {
        match target {
            Some(email) => {
                let contact = portal.contacts.get_mut(&email).expect("resolved above");
                let answer = apply(&state, contact, &input.properties);
                let names: Vec<&str> = input.properties.keys().map(String::as_str).collect();
                results.push(contact_json(&answer, Some(&names)));
            }
            None => missing.push(input.id.clone()),
        }
    }
    Ok(batch_answer(started, results, missing))
}

/// A batch's answer: `200 COMPLETE` with the `results`, or `207` with one `OBJECT_NOT_FOUND`
/// error naming the `missing` ids when some were not found.
fn batch_answer(started: String, results: Vec<Value>, missing: Vec<String>) -> Response {
    let mut answer = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": now_rfc3339(),
    });
    if missing.is_empty() {
        return Json(answer).into_response();
    }
    answer["numErrors"] = json!(1);
    answer["errors"] = json!([{
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.",
        "context": {"ids": missing},
    }]);
    (StatusCode::MULTI_STATUS, Json(answer)).into_response()
}

async fn batch_read(
    State(state): State<Arc<SimState>>,
    CheckedJson(batch): CheckedJson<BatchReadBody>,
) -> Result<Response, Refusal> {
    batch_size(batch.inputs.len())?;
    let portal = state.portal.lock().unwrap();
    let names: Vec<&str> = batch
        .properties
        .iter()
        .chain(&batch.properties_with_history)
        .map(String::as_str)
        .collect();
    let started = now_rfc3339();
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for input in &batch.inputs {
        match resolve(&portal, &input.id, batch.id_property.as_deref())? {
            Some(email) => results.push(contact_json(&portal.contacts[&email], Some(&names))),
            None => missing.push(input.id.clone()),
        }
    }
    Ok(batch_answer(started, results, missing))
}

/// `POST .../contacts`: a new contact with `properties`, which must name a trimmed, lowercase
/// `email` not yet held (409 `CONFLICT` otherwise, as HubSpot answers a duplicate email); any
/// other property must be a defined custom one. 201 with the contact.
async fn create_contact(
    State(state): State<Arc<SimState>>,
    CheckedJson(mut create): CheckedJson<PropertiesBody>,
) -> Result<Response, Refusal> {
    let email = create
        .properties
        .remove(ID_PROPERTY)
        .ok_or_else(|| Refusal::validation("Property \"email\" is required to create a contact"))?;
    if email.is_empty() || email != normalised(&email) || !email.contains('@') {
        return Err(Refusal::validation(format!(
            "Email address {email} is not valid: it must be trimmed and lowercase"
        )));
    }
    let mut portal = state.portal.lock().unwrap();
    if let Some(existing) = portal.contacts.get(&email) {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            "CONFLICT",
            format!("Contact already exists. Existing ID: {}", existing.id),
        ));
    }
    check_properties(&portal, &create.properties)?;
    let id = portal.next_id.to_string();
    portal.next_id += 1;
    let now = now_rfc3339();
    let mut properties = create.properties;
    properties.insert(ID_PROPERTY.to_owned(), email.clone());
    let contact = Contact {
        id,
        created_at: now.clone(),
        updated_at: now,
        properties,
    };
    let answer = contact_json(&contact, None);
    portal.contacts.insert(email, contact);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn gdpr_delete(
    State(state): State<Arc<SimState>>,
    CheckedJson(request): CheckedJson<GdprDeleteBody>,
) -> Result<StatusCode, Refusal> {
    let mut portal = state.portal.lock().unwrap();
    let id_property = request.id_property.as_deref();
    match resolve(&portal, &request.object_id, id_property)? {
        Some(_) if state.drop_deletes.load(Ordering::SeqCst) => {}
        Some(email) => {
            portal.contacts.remove(&email);
        }
        None if id_property == Some(ID_PROPERTY) => {
            portal.blocklist.insert(request.object_id);
        }
        None => return Err(Refusal::not_found("resource not found")),
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The simulator's address (`base_url()`) and its fault injection and call log
/// (`control()`).
impl std::ops::Deref for HubSpotSimulator {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.running
    }
}
