//! A simulator of the Salesforce REST API — test and demo infrastructure, never a real org.
//!
//! It serves, on loopback and through `hush-sim-kit` (call recording, injected 429/5xx/delays):
//!
//! - `POST /services/oauth2/token`: the client-credentials flow; checks the form fields and
//!   the client credentials; [`SalesforceSim::invalidate_session`] revokes every token so the
//!   next data call gets 401 `INVALID_SESSION_ID`.
//! - `GET /services/data/vXX.X/query?q=`: only a person lookup,
//!   `SELECT Id, IndividualId, Email FROM Contact|Lead WHERE Email = '<literal>'` or
//!   `... WHERE Email IN ('<literal>', ...)`, with SOQL escape sequences decoded; anything else
//!   (an empty or unclosed `IN` list, say) is 400 `MALFORMED_QUERY`. As a simulator check, an
//!   email literal that is not normalised (trimmed, lowercase) is refused the same way.
//!   Matching is case-insensitive, as in Salesforce; each record carries its stored `Email`.
//! - `GET /services/data/vXX.X/query/{locator}`: the next page of a query answered in pages
//!   (2,000 records a page, or [`SalesforceSim::set_query_page_size`]), as `nextRecordsUrl`
//!   names it; an unknown locator is 400 `INVALID_QUERY_LOCATOR`.
//! - `PATCH|POST|DELETE /services/data/vXX.X/composite/sobjects`: sObject Collections with the
//!   200-record limit (400 `EXCEEDED_ID_LIMIT`), `allOrNone=false`, and one result per record.
//! - `GET /services/data/vXX.X/sobjects/Individual/{id}?fields=`.
//!
//! Every data call needs `Authorization: Bearer <token>` with a token it issued.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use hush_sim_kit::{any_loopback_port, serve, RunningSim};
use serde_json::{json, Map, Value};

use self::contract::{COLLECTION_LIMIT, MAX_TYPE_CHUNKS, NEWEST_MAJOR_VERSION};

/// Salesforce's side of the contract, copied from Salesforce's documentation rather than from
/// the connector, so that a wrong limit or version in the connector cannot pass here too.
pub mod contract {
    /// Most records (or ids) one sObject Collections call accepts: "The list can contain up to
    /// 200 objects." Source: REST API guide, sObject Collections.
    pub const COLLECTION_LIMIT: usize = 200;
    /// Most runs of one object type a mixed-type collection may hold: records of several types
    /// are processed as chunks, and "a single request can process up to 10 chunks". Source:
    /// REST API guide, sObject Collections (update). The REST error body for more is not
    /// documented; the simulator answers 400 with Salesforce's Apex text ("Cannot have more
    /// than 10 chunks in a single operation") under an assumed `errorCode`.
    pub const MAX_TYPE_CHUNKS: usize = 10;
    /// The newest REST API version on 2026-12-01: Winter '27 is v68.0; a later one does not
    /// exist yet. Source: SOQL and SOSL guide, PDF archive of versions.
    pub const NEWEST_MAJOR_VERSION: u32 = 68;
    /// Records one query answer holds before the rest goes behind `nextRecordsUrl`: beyond
    /// "the 2,000 record limit, the response contains the first set of 2,000 results, a false
    /// value for done, and a query locator". Source: REST API guide (v55.0), Query More Results.
    pub const QUERY_PAGE_SIZE: usize = 2_000;
}

/// The privacy fields of a simulated `Individual`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndividualFlags {
    /// `HasOptedOutTracking`.
    pub has_opted_out_tracking: bool,
    /// `HasOptedOutProfiling`.
    pub has_opted_out_profiling: bool,
    /// `HasOptedOutProcessing`.
    pub has_opted_out_processing: bool,
    /// `HasOptedOutSolicit`.
    pub has_opted_out_solicit: bool,
    /// `ShouldForget`.
    pub should_forget: bool,
}

impl IndividualFlags {
    fn get(&self, field: &str) -> Option<bool> {
        Some(match field {
            "HasOptedOutTracking" => self.has_opted_out_tracking,
            "HasOptedOutProfiling" => self.has_opted_out_profiling,
            "HasOptedOutProcessing" => self.has_opted_out_processing,
            "HasOptedOutSolicit" => self.has_opted_out_solicit,
            "ShouldForget" => self.should_forget,
            _ => return None,
        })
    }

    fn slot(&mut self, field: &str) -> Option<&mut bool> {
        Some(match field {
            "HasOptedOutTracking" => &mut self.has_opted_out_tracking,
            "HasOptedOutProfiling" => &mut self.has_opted_out_profiling,
            "HasOptedOutProcessing" => &mut self.has_opted_out_processing,
            "HasOptedOutSolicit" => &mut self.has_opted_out_solicit,
            "ShouldForget" => &mut self.should_forget,
            _ => return None,
        })
    }
}

const FLAG_FIELDS: [&str; 5] = [
    "HasOptedOutTracking",
    "HasOptedOutProfiling",
    "HasOptedOutProcessing",
    "HasOptedOutSolicit",
    "ShouldForget",
];

struct Person {
    object: &'static str,
    email: String,
    individual_id: Option<String>,
}

struct Individual {
    last_name: String,
    flags: IndividualFlags,
}

#[derive(Default)]
struct Org {
    client_id: String,
    client_secret: String,
    tokens: HashSet<String>,
    next_id: u64,
    people: BTreeMap<String, Person>,
    individuals: BTreeMap<String, Individual>,
    deleted: HashSet<String>,
    locked_once: HashSet<String>,
    /// Records a query answers per page; `None` is Salesforce's default of 2,000.
    query_page_size: Option<usize>,
    /// Records not yet answered, by query locator.
    cursors: HashMap<String, Vec<Value>>,
}

impl Org {
    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:015}", self.next_id)
    }

    fn person_by_email(&self, email: &str) -> Option<&Person> {
        let mut people: Vec<&Person> = self
            .people
            .values()
            .filter(|p| p.email.eq_ignore_ascii_case(email) && p.individual_id.is_some())
            .collect();
        people.sort_by_key(|p| p.object != "Contact");
        people.into_iter().next()
    }
}

/// The simulated org; cheap to clone (clones share the org).
#[derive(Clone)]
pub struct SalesforceSim {
    org: Arc<Mutex<Org>>,
}

impl SalesforceSim {
    /// An empty org that issues tokens for these client credentials.
    pub fn new(client_id: &str, client_secret: &str) -> Self {
        Self {
            org: Arc::new(Mutex::new(Org {
                client_id: client_id.into(),
                client_secret: client_secret.into(),
                ..Org::default()
            })),
        }
    }

    fn org(&self) -> MutexGuard<'_, Org> {
        self.org.lock().expect("simulator state lock poisoned")
    }

    /// The simulator's routes, to serve with `hush_sim_kit::serve` on an address of choice.
    pub fn router(&self) -> Router {
        let data_api = Router::new()
            .route("/services/data/{version}/query", get(query))
            .route("/services/data/{version}/query/{locator}", get(query_more))
            .route(
                "/services/data/{version}/composite/sobjects",
                patch(write_collection)
                    .post(write_collection)
                    .delete(delete_collection),
            )
            .route(
                "/services/data/{version}/sobjects/Individual/{id}",
                get(read_individual),
            )
            .route_layer(middleware::from_fn_with_state(self.clone(), authorized));
        Router::new()
            .route("/services/oauth2/token", post(token))
            .merge(data_api)
            .with_state(self.clone())
    }

    /// Serves the simulator on a free loopback port.
    pub async fn start(&self) -> std::io::Result<RunningSim> {
        serve(self.router(), any_loopback_port()).await
    }

    fn add_person(
        &self,
        object: &'static str,
        prefix: &str,
        email: &str,
        with_individual: bool,
    ) -> String {
        let mut org = self.org();
        let individual_id = with_individual.then(|| {
            let id = org.new_id("0PK");
            org.individuals.insert(
                id.clone(),
                Individual {
                    last_name: "Seeded".into(),
                    flags: IndividualFlags::default(),
                },
            );
            id
        });
        let id = org.new_id(prefix);
        org.people.insert(
            id.clone(),
            Person {
                object,
                email: email.into(),
                individual_id,
            },
        );
        id
    }

    /// Seeds a Contact (with a linked `Individual`, all flags clear, when asked); returns its id.
    pub fn add_contact(&self, email: &str, with_individual: bool) -> String {
        self.add_person("Contact", "003", email, with_individual)
    }

    /// Seeds a Lead (with a linked `Individual`, all flags clear, when asked); returns its id.
    pub fn add_lead(&self, email: &str, with_individual: bool) -> String {
        self.add_person("Lead", "00Q", email, with_individual)
    }

    /// The flags of the `Individual` linked to the Contact (else Lead) with this email.
    pub fn individual_flags(&self, email: &str) -> Option<IndividualFlags> {
        let org = self.org();
        let id = org.person_by_email(email)?.individual_id.clone()?;
        org.individuals.get(&id).map(|i| i.flags)
    }

    /// Overwrites those flags, as a Salesforce user or flow would behind Hush's back.
    pub fn set_individual_flags(&self, email: &str, flags: IndividualFlags) {
        let mut org = self.org();
        let id = org
            .person_by_email(email)
            .and_then(|p| p.individual_id.clone())
            .expect("no Contact or Lead with an Individual has this email");
        org.individuals
            .get_mut(&id)
            .expect("linked Individual")
            .flags = flags;
    }

    /// Makes the next update of that `Individual` fail with `UNABLE_TO_LOCK_ROW`.
    pub fn lock_individual_once(&self, email: &str) {
        let mut org = self.org();
        let id = org
            .person_by_email(email)
            .and_then(|p| p.individual_id.clone())
            .expect("no Contact or Lead with an Individual has this email");
        org.locked_once.insert(id);
    }

    /// Whether a Contact with this email exists (not deleted).
    pub fn contact_exists(&self, email: &str) -> bool {
        self.exists("Contact", email)
    }

    /// Whether a Lead with this email exists (not deleted).
    pub fn lead_exists(&self, email: &str) -> bool {
        self.exists("Lead", email)
    }

    fn exists(&self, object: &str, email: &str) -> bool {
        self.org()
            .people
            .values()
            .any(|p| p.object == object && p.email.eq_ignore_ascii_case(email))
    }

    /// How many `Individual` records exist.
    pub fn individual_count(&self) -> usize {
        self.org().individuals.len()
    }

    /// Answers queries `size` records a page (Salesforce's default is 2,000), the rest through
    /// `nextRecordsUrl`.
    pub fn set_query_page_size(&self, size: usize) {
        assert!(size > 0, "a page holds at least one record");
        self.org().query_page_size = Some(size);
    }

    /// Revokes every issued token: the next data call answers 401 `INVALID_SESSION_ID`.
    pub fn invalidate_session(&self) {
        self.org().tokens.clear();
    }
}

/// A whole-request refusal in Salesforce's error shape `[{"message", "errorCode", "fields"}]`.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!([{"message": self.message, "errorCode": self.code, "fields": []}])),
        )
            .into_response()
    }
}

fn api_error(status: StatusCode, code: &'static str, message: &str) -> Refusal {
    Refusal {
        status,
        code,
        message: message.to_owned(),
    }
}

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn record_error(code: &str, message: &str, fields: &[&str]) -> Value {
    json!({"success": false, "errors": [{"statusCode": code, "message": message, "fields": fields}]})
}

fn record_ok(id: &str) -> Value {
    json!({"id": id, "success": true, "errors": []})
}

/// Lets a call to the data API (`/services/data/{version}/…`) through only when its version
/// segment and bearer token check out ([`authorize`]), before any of its route's own checks.
async fn authorized(
    State(sim): State<SalesforceSim>,
    request: Request,
    next: Next,
) -> Result<Response, Refusal> {
    let version = request
        .uri()
        .path()
        .trim_start_matches("/services/data/")
        .split('/')
        .next()
        .unwrap_or_default();
    authorize(&sim.org(), version, request.headers())?;
    Ok(next.run(request).await)
}

/// Checks the API version segment and the bearer token.
fn authorize(org: &Org, version: &str, headers: &HeaderMap) -> Result<(), Refusal> {
    let valid_version = version
        .strip_prefix('v')
        .and_then(|n| n.split_once('.'))
        .is_some_and(|(major, minor)| {
            minor == "0"
                && major
                    .parse::<u32>()
                    .is_ok_and(|m| m <= NEWEST_MAJOR_VERSION)
        });
    if !valid_version {
        return Err(api_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        ));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(token) if org.tokens.contains(token) => Ok(()),
        _ => Err(api_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )),
    }
}

async fn token(
    State(sim): State<SalesforceSim>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut org = sim.org();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error("unsupported_grant_type", "grant type not supported");
    }
    if form.get("client_id") != Some(&org.client_id)
        || form.get("client_secret") != Some(&org.client_secret)
    {
        return oauth_error("invalid_client", "invalid client credentials");
    }
    org.next_id += 1;
    let access_token = format!("00D000000000001!SIM.{:08}", org.next_id);
    org.tokens.insert(access_token.clone());
    let instance_url = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(|host| format!("http://{host}"))
        .unwrap_or_default();
    let issued_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    Json(json!({
        "access_token": access_token,
        "instance_url": instance_url,
        "id": format!("{instance_url}/id/00D000000000001AAA/005000000000001AAA"),
        "token_type": "Bearer",
        "issued_at": issued_at.to_string(),
        "signature": "simulated"
    }))
    .into_response()
}

/// Parses the SOQL forms a person lookup may take,
/// `SELECT Id, IndividualId, Email FROM Contact|Lead WHERE Email = '<literal>'` and
/// `... WHERE Email IN ('<literal>', ...)`; answers the object and the email literals. `Err` is
/// the MALFORMED_QUERY text. Per the SOQL reference (comparison operators), the values of `IN`
/// are a parenthesised, comma-separated list of single-quoted strings; an empty list, a
/// missing or doubled comma, or an unclosed list is malformed.
fn parse_person_query(soql: &str) -> Result<(&'static str, Vec<String>), String> {
    let rest = soql
        .strip_prefix("SELECT Id, IndividualId, Email FROM ")
        .ok_or("unexpected token: the simulator accepts SELECT Id, IndividualId, Email FROM ...")?;
    let (object, condition) = if let Some(c) = rest.strip_prefix("Contact WHERE Email ") {
        ("Contact", c)
    } else if let Some(c) = rest.strip_prefix("Lead WHERE Email ") {
        ("Lead", c)
    } else {
        return Err("unexpected token: expected Contact or Lead WHERE Email".into());
    };
    if let Some(literal) = condition.strip_prefix("= ") {
        let (value, trailing) = parse_string_literal(literal)?;
        return match trailing {
            "" => Ok((object, vec![value])),
            other => Err(format!(
                "unexpected token after the string literal: {other}"
            )),
        };
    }
    let mut list = condition
        .strip_prefix("IN (")
        .ok_or("unexpected token: expected = '...' or IN ('...', ...)")?;
    let mut values = Vec::new();
    loop {
        let (value, trailing) = parse_string_literal(list.trim_start())?;
        values.push(value);
        let trailing = trailing.trim_start();
        if let Some(next) = trailing.strip_prefix(',') {
            list = next;
        } else if trailing == ")" {
            return Ok((object, values));
        } else if trailing.is_empty() {
            return Err("unexpected end of query: the IN list is not closed".into());
        } else {
            return Err(format!("unexpected token in the IN list: {trailing}"));
        }
    }
}

/// Decodes the SOQL single-quoted literal `text` starts with; answers it and the text after it.
fn parse_string_literal(text: &str) -> Result<(String, &str), String> {
    let mut chars = text.chars();
    if chars.next() != Some('\'') {
        return Err("expected a quoted string".into());
    }
    let mut value = String::new();
    loop {
        match chars.next() {
            None => return Err("unterminated string literal".into()),
            Some('\'') => break,
            Some('\\') => {
                let decoded = match chars.next() {
                    Some('n' | 'N') => '\n',
                    Some('r' | 'R') => '\r',
                    Some('t' | 'T') => '\t',
                    Some('b' | 'B') => '\u{8}',
                    Some('f' | 'F') => '\u{c}',
                    Some('"') => '"',
                    Some('\'') => '\'',
                    Some('\\') => '\\',
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).collect();
                        u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == 4)
                            .and_then(char::from_u32)
                            .ok_or("invalid unicode escape")?
                    }
                    _ => return Err("invalid escape sequence in string literal".into()),
                };
                value.push(decoded);
            }
            Some(other) => value.push(other),
        }
    }
    Ok((value, chars.as_str()))
}

async fn query(
    State(sim): State<SalesforceSim>,
    Path(version): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    let mut org = sim.org();
    let Some(soql) = params.get("q") else {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "q is required",
        ));
    };
    let (object, emails) = parse_person_query(soql)
        .map_err(|reason| api_error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", &reason))?;
    if emails.iter().any(|e| *e != e.trim().to_lowercase()) {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "simulator check: every Email literal must be normalised (trimmed, lowercase)",
        ));
    }
    let records: Vec<Value> = org
        .people
        .iter()
        .filter(|(_, p)| {
            p.object == object && emails.iter().any(|e| p.email.eq_ignore_ascii_case(e))
        })
        .map(|(id, p)| {
            json!({
                "attributes": {"type": object, "url": format!("/services/data/{version}/sobjects/{object}/{id}")},
                "Id": id,
                "IndividualId": p.individual_id,
                "Email": p.email
            })
        })
        .collect();
    let total = records.len();
    Ok(Json(page(&mut org, &version, records, total)).into_response())
}

/// The answer carrying the first page of `records` (Salesforce's 2,000 per page, or the size
/// set by [`SalesforceSim::set_query_page_size`]); the rest is kept under a query locator named
/// in `nextRecordsUrl`. `total` is every record the query matched.
fn page(org: &mut Org, version: &str, mut records: Vec<Value>, total: usize) -> Value {
    let size = org.query_page_size.unwrap_or(contract::QUERY_PAGE_SIZE);
    let rest = records.split_off(size.min(records.len()));
    if rest.is_empty() {
        return json!({"totalSize": total, "done": true, "records": records});
    }
    let answered = total - rest.len();
    org.next_id += 1;
    let locator = format!("01gSIM{:012}-{answered}", org.next_id);
    org.cursors.insert(locator.clone(), rest);
    json!({
        "totalSize": total,
        "done": false,
        "nextRecordsUrl": format!("/services/data/{version}/query/{locator}"),
        "records": records
    })
}

async fn query_more(
    State(sim): State<SalesforceSim>,
    Path((version, locator)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let mut org = sim.org();
    let Some(records) = org.cursors.remove(&locator) else {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        ));
    };
    let answered: usize = locator
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or_default();
    let total = answered + records.len();
    Ok(Json(page(&mut org, &version, records, total)).into_response())
}

/// Parses an sObject Collections body, applying the documented limits.
fn collection_records(body: &[u8]) -> Result<Vec<Map<String, Value>>, Refusal> {
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|e| api_error(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", &e.to_string()))?;
    if parsed.get("allOrNone").and_then(Value::as_bool) == Some(true) {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_OPERATION",
            "simulator: only allOrNone=false is simulated",
        ));
    }
    let records = parsed
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            api_error(
                StatusCode::BAD_REQUEST,
                "JSON_PARSER_ERROR",
                "records is required",
            )
        })?;
    if records.len() > COLLECTION_LIMIT {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    let types = records
        .iter()
        .map(|r| r.pointer("/attributes/type").and_then(Value::as_str));
    let chunks = types
        .clone()
        .zip(types.skip(1))
        .filter(|(a, b)| a != b)
        .count()
        + 1;
    if chunks > MAX_TYPE_CHUNKS {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_BATCH_REQUEST",
            "Cannot have more than 10 chunks in a single operation. Please rearrange the data to \
             reduce chunking.",
        ));
    }
    records
        .iter()
        .map(|record| {
            let object = record.as_object().filter(|r| {
                r.get("attributes")
                    .and_then(|a| a.get("type"))
                    .and_then(Value::as_str)
                    .is_some()
            });
            object.cloned().ok_or_else(|| {
                api_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_TYPE",
                    "Must send a concrete entity type.",
                )
            })
        })
        .collect()
}

fn record_type(record: &Map<String, Value>) -> &str {
    record["attributes"]["type"].as_str().unwrap_or_default()
}

/// Field assignments of a record (everything but `attributes` and `id`).
fn assignments(record: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    record
        .iter()
        .filter(|(k, _)| k.as_str() != "attributes" && k.as_str() != "id")
}

/// Validates and applies Individual fields; `Err` is a per-record error.
fn apply_individual_fields(
    individual: &mut Individual,
    record: &Map<String, Value>,
) -> Result<(), Value> {
    let mut updated = individual.flags;
    let mut last_name = individual.last_name.clone();
    for (field, value) in assignments(record) {
        if field == "LastName" {
            last_name = value.as_str().unwrap_or_default().to_owned();
            continue;
        }
        let Some(slot) = updated.slot(field) else {
            return Err(record_error(
                "INVALID_FIELD",
                &format!("No such column '{field}' on sobject of type Individual"),
                &[field],
            ));
        };
        *slot = value.as_bool().ok_or_else(|| {
            record_error(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                &format!("{field}: value not of required type: {value}"),
                &[field],
            )
        })?;
    }
    if last_name.trim().is_empty() {
        return Err(record_error(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [LastName]",
            &["LastName"],
        ));
    }
    individual.flags = updated;
    individual.last_name = last_name;
    Ok(())
}

fn missing_record(org: &Org, id: &str) -> Value {
    if org.deleted.contains(id) {
        record_error("ENTITY_IS_DELETED", "entity is deleted", &[])
    } else {
        record_error(
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id",
            &[],
        )
    }
}

fn update_one(org: &mut Org, record: &Map<String, Value>) -> Value {
    let Some(id) = record.get("id").and_then(Value::as_str).map(str::to_owned) else {
        return record_error(
            "MISSING_ARGUMENT",
            "Id not specified in an update call",
            &[],
        );
    };
    match record_type(record) {
        "Individual" => {
            if org.locked_once.remove(&id) {
                return record_error(
                    "UNABLE_TO_LOCK_ROW",
                    "unable to obtain exclusive access to this record",
                    &[],
                );
            }
            if !org.individuals.contains_key(&id) {
                return missing_record(org, &id);
            }
            let individual = org.individuals.get_mut(&id).expect("checked above");
            match apply_individual_fields(individual, record) {
                Ok(()) => record_ok(&id),
                Err(error) => error,
            }
        }
        object @ ("Contact" | "Lead") => {
            if org.people.get(&id).is_none_or(|p| p.object != object) {
                return missing_record(org, &id);
            }
            let mut individual_id = None;
            for (field, value) in assignments(record) {
                if field != "IndividualId" {
                    return record_error(
                        "INVALID_FIELD",
                        &format!(
                            "simulator: only IndividualId is updatable on {object}, not '{field}'"
                        ),
                        &[field],
                    );
                }
                match value.as_str() {
                    Some(target) if org.individuals.contains_key(target) => {
                        individual_id = Some(target.to_owned())
                    }
                    _ => {
                        return record_error(
                            "FIELD_INTEGRITY_EXCEPTION",
                            "Individual ID: id value of incorrect type or not found",
                            &["IndividualId"],
                        )
                    }
                }
            }
            if let Some(target) = individual_id {
                org.people
                    .get_mut(&id)
                    .expect("checked above")
                    .individual_id = Some(target);
            }
            record_ok(&id)
        }
        other => record_error(
            "INVALID_TYPE",
            &format!("simulator: sObject type '{other}' is not simulated"),
            &[],
        ),
    }
}

/// `PATCH` (update) or `POST` (create) of an sObject collection: one result per record, in
/// order, each written on its own (`allOrNone` false).
async fn write_collection(
    State(sim): State<SalesforceSim>,
    method: Method,
    body: Bytes,
) -> Result<Response, Refusal> {
    let write = if method == Method::POST {
        create_one
    } else {
        update_one
    };
    let mut org = sim.org();
    let records = collection_records(&body)?;
    let results: Vec<Value> = records.iter().map(|r| write(&mut org, r)).collect();
    Ok(Json(results).into_response())
}

fn create_one(org: &mut Org, record: &Map<String, Value>) -> Value {
    if record.contains_key("id") {
        return record_error(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            "cannot specify Id in an insert call",
            &["Id"],
        );
    }
    if record_type(record) != "Individual" {
        return record_error(
            "INVALID_TYPE",
            "simulator: only Individual records can be created",
            &[],
        );
    }
    let mut individual = Individual {
        last_name: String::new(),
        flags: IndividualFlags::default(),
    };
    if let Err(error) = apply_individual_fields(&mut individual, record) {
        return error;
    }
    let id = org.new_id("0PK");
    org.individuals.insert(id.clone(), individual);
    record_ok(&id)
}

async fn delete_collection(
    State(sim): State<SalesforceSim>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    let mut org = sim.org();
    if params.get("allOrNone").map(String::as_str) == Some("true") {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_OPERATION",
            "simulator: only allOrNone=false is simulated",
        ));
    }
    let Some(ids) = params.get("ids").filter(|ids| !ids.is_empty()) else {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "MISSING_ARGUMENT",
            "ids is required",
        ));
    };
    let ids: Vec<&str> = ids.split(',').collect();
    if ids.len() > COLLECTION_LIMIT {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    let results: Vec<Value> = ids
        .into_iter()
        .map(|id| {
            if org.people.remove(id).is_some() {
                org.deleted.insert(id.to_owned());
                record_ok(id)
            } else if org.individuals.remove(id).is_some() {
                for person in org.people.values_mut() {
                    if person.individual_id.as_deref() == Some(id) {
                        person.individual_id = None;
                    }
                }
                org.deleted.insert(id.to_owned());
                record_ok(id)
            } else {
                missing_record(&org, id)
            }
        })
        .collect();
    Ok(Json(results).into_response())
}

async fn read_individual(
    State(sim): State<SalesforceSim>,
    Path((version, id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    let org = sim.org();
    let fields: Vec<&str> = match params.get("fields") {
        Some(list) => list.split(',').collect(),
        None => FLAG_FIELDS.to_vec(),
    };
    let Some(individual) = org.individuals.get(&id) else {
        return Err(api_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        ));
    };
    let mut answer = json!({
        "attributes": {"type": "Individual", "url": format!("/services/data/{version}/sobjects/Individual/{id}")},
        "Id": id
    });
    for field in fields {
        let value = match field {
            "Id" => continue,
            "LastName" => Value::String(individual.last_name.clone()),
            other => match individual.flags.get(other) {
                Some(flag) => Value::Bool(flag),
                None => {
                    return Err(api_error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_FIELD",
                        &format!("No such column '{other}' on entity 'Individual'"),
                    ))
                }
            },
        };
        answer[field] = value;
    }
    Ok(Json(answer).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulator_decodes_soql_escapes_as_salesforce_documents_them() {
        for (literal, email) in [
            (r"'o\'brien@example.com'", "o'brien@example.com"),
            (r"'a\\b@example.com'", "a\\b@example.com"),
            (r#"'x\"y@example.com'"#, "x\"y@example.com"),
        ] {
            let soql = format!("SELECT Id, IndividualId, Email FROM Lead WHERE Email = {literal}");
            assert_eq!(
                parse_person_query(&soql).unwrap(),
                ("Lead", vec![email.to_owned()])
            );
            let soql = format!(
                "SELECT Id, IndividualId, Email FROM Contact WHERE Email IN ('a@b.c',{literal} )"
            );
            assert_eq!(
                parse_person_query(&soql).unwrap(),
                ("Contact", vec!["a@b.c".to_owned(), email.to_owned()])
            );
        }
    }

    #[test]
    fn malformed_in_lists_are_refused() {
        let base = "SELECT Id, IndividualId, Email FROM Contact WHERE Email IN ";
        let refused = |list: &str| parse_person_query(&format!("{base}{list}")).unwrap_err();
        assert_eq!(refused("()"), "expected a quoted string");
        assert_eq!(refused("('a@b.c',)"), "expected a quoted string");
        assert_eq!(refused("('a@b.c',,'d@e.f')"), "expected a quoted string");
        assert_eq!(
            refused("('a@b.c'"),
            "unexpected end of query: the IN list is not closed"
        );
        assert_eq!(
            refused("('a@b.c' 'd@e.f')"),
            "unexpected token in the IN list: 'd@e.f')"
        );
        assert_eq!(
            refused("('a@b.c') AND Id != null"),
            "unexpected token in the IN list: ) AND Id != null"
        );
        assert!(refused("'a@b.c'").starts_with("unexpected token: expected = "));
        assert!(
            parse_person_query("SELECT Id, IndividualId FROM Contact WHERE Email IN ('a@b.c')")
                .unwrap_err()
                .starts_with("unexpected token"),
            "the Email field must be selected"
        );
    }

    #[test]
    fn only_versions_salesforce_has_released_are_served() {
        let mut org = Org::default();
        org.tokens.insert("t".into());
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer t".parse().unwrap());
        let status = |version: &str| match authorize(&org, version, &headers) {
            Ok(()) => StatusCode::OK,
            Err(refusal) => refusal.status,
        };
        assert_eq!(status("v61.0"), StatusCode::OK);
        assert_eq!(status("v68.0"), StatusCode::OK);
        assert_eq!(
            status("v69.0"),
            StatusCode::NOT_FOUND,
            "v68.0 is the newest"
        );
        assert_eq!(status("v61.1"), StatusCode::NOT_FOUND);
        assert_eq!(status("latest"), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn every_data_route_checks_the_version_and_token_first_and_the_token_route_does_not() {
        let running = SalesforceSim::new("id", "secret").start().await.unwrap();
        let http = reqwest::Client::new();
        let url = |path: &str| format!("{}{path}", running.base_url());
        for (method, path) in [
            (reqwest::Method::GET, "/services/data/v62.0/query?q=x"),
            (reqwest::Method::GET, "/services/data/v62.0/query/01g-2000"),
            (
                reqwest::Method::PATCH,
                "/services/data/v62.0/composite/sobjects",
            ),
            (
                reqwest::Method::POST,
                "/services/data/v62.0/composite/sobjects",
            ),
            (
                reqwest::Method::DELETE,
                "/services/data/v62.0/composite/sobjects?ids=1",
            ),
            (
                reqwest::Method::GET,
                "/services/data/v62.0/sobjects/Individual/0PK1",
            ),
        ] {
            let answer = http
                .request(method.clone(), url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 401, "{method} {path} without a token");
            let answer = http
                .request(method.clone(), url(&path.replace("v62.0", "v69.0")))
                .send()
                .await
                .unwrap();
            assert_eq!(
                answer.status(),
                404,
                "{method} {path} at an unserved version"
            );
        }
        let token = http
            .post(url("/services/oauth2/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "id"),
                ("client_secret", "secret"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(token.status(), 200);
    }

    #[test]
    fn unescaped_or_malformed_literals_are_refused() {
        let base = "SELECT Id, IndividualId, Email FROM Contact WHERE Email = ";
        let refused = |soql: &str| parse_person_query(soql).unwrap_err();
        assert!(refused(&format!("{base}'o'brien@example.com'"))
            .starts_with("unexpected token after the string literal"));
        assert_eq!(
            refused(&format!("{base}'x\\q'")),
            "invalid escape sequence in string literal"
        );
        assert_eq!(
            refused(&format!("{base}'unterminated")),
            "unterminated string literal"
        );
        assert!(refused("SELECT Id FROM Contact").starts_with("unexpected token"));
        assert_eq!(parse_string_literal(r"'\u00e9\\'").unwrap().0, "\u{e9}\\");
        assert_eq!(parse_string_literal("'\\u00e9'").unwrap().0, "\u{e9}");
    }
}
