//! Simulator of the Google Data Manager API and Google's OAuth 2.0 token endpoint: test and
//! demo infrastructure, never a real Google service.
//!
//! It checks what Google checks, from its own copy of the contract ([`contract`]): the
//! refresh-token grant, expiring bearer tokens, the REST paths, the body of
//! `audienceMembers:remove` field by field (unknown fields refused, `operatingAccount`,
//! `productDestinationId`, `encoding`, at most 10 destinations, 10,000 members and 10
//! identifiers a member, every identifier a hex SHA-256 digest), with Google's fast-fail model:
//! one bad record fails the whole request with `INVALID_ARGUMENT` and nothing is removed. A
//! request stays `PROCESSING` for a configurable number of `requestStatus:retrieve` reads, then
//! ends `SUCCESS` (removals applied to the audience), `FAILED` or `PARTIAL_SUCCESS`
//! ([`DataManagerSim::fail_next_request`]). No developer token is needed, as at Google. Faults
//! (429, 5xx, latency) and call records come from [`hush_sim_kit`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hush_sim_kit::any_loopback_port;
use hush_sim_kit::google_api::GoogleApiSim;
use hush_sim_kit::google_oauth::GoogleTokens;
use serde_json::{json, Map, Value};

use self::contract::*;

/// Google's side of the contract, copied from Google's documentation rather than from the
/// connector, so that a shape bug in the connector cannot pass here too.
///
/// Sources (read 2026-12-01): developers.google.com/data-manager/api/reference/rest/v1
/// (`audienceMembers.remove`, `requestStatus.retrieve`, `ErrorReason`), the discovery document
/// `datamanager.v1.json` (revision 20260828), `devguides/limits` and
/// `devguides/concepts/formatting`.
pub mod contract {
    /// The one API version served, in every path.
    pub const API_VERSION: &str = "v1";
    /// OAuth scope of the Data Manager API.
    pub const SCOPE: &str = "https://www.googleapis.com/auth/datamanager";
    /// Most audience members in one request (`TOO_MANY_AUDIENCE_MEMBERS`).
    pub const MAX_AUDIENCE_MEMBERS: usize = 10_000;
    /// Most user identifiers in one audience member (`TOO_MANY_USER_IDENTIFIERS`).
    pub const MAX_USER_IDENTIFIERS: usize = 10;
    /// Most destinations in one request (`TOO_MANY_DESTINATIONS`).
    pub const MAX_DESTINATIONS: usize = 10;
    /// `ProductAccount.accountType` values.
    pub const ACCOUNT_TYPES: &[&str] = &[
        "GOOGLE_ADS",
        "DISPLAY_VIDEO_PARTNER",
        "DISPLAY_VIDEO_ADVERTISER",
        "DATA_PARTNER",
        "GOOGLE_ANALYTICS_PROPERTY",
        "GOOGLE_AD_MANAGER_AUDIENCE_LINK",
        "FLOODLIGHT_CONFIG",
    ];
    /// `Encoding` values for hashed identifiers.
    pub const ENCODINGS: &[&str] = &["HEX", "BASE64"];
    /// Fields of `RemoveAudienceMembersRequest`.
    pub const REMOVE_FIELDS: &[&str] = &[
        "destinations",
        "audienceMembers",
        "validateOnly",
        "encoding",
        "encryptionInfo",
    ];
    /// Fields of `Destination`.
    pub const DESTINATION_FIELDS: &[&str] = &[
        "reference",
        "loginAccount",
        "linkedAccount",
        "operatingAccount",
        "productDestinationId",
    ];
    /// Fields of `ProductAccount` (`product` is the deprecated older name of `accountType`).
    pub const ACCOUNT_FIELDS: &[&str] = &["accountType", "accountId", "product"];
    /// Fields of `AudienceMember`.
    pub const MEMBER_FIELDS: &[&str] = &[
        "userData",
        "mobileData",
        "userIdData",
        "pairData",
        "ppidData",
        "partnerProvidedIdData",
        "googleUserIdData",
        "compositeData",
        "consent",
        "destinationReferences",
    ];
    /// Fields of `UserIdentifier`: exactly one is set.
    pub const IDENTIFIER_FIELDS: &[&str] = &["emailAddress", "phoneNumber", "address"];
    /// `requestStatus` values of `RequestStatusPerDestination`.
    pub const REQUEST_STATUSES: &[&str] = &[
        "REQUEST_STATUS_UNKNOWN",
        "SUCCESS",
        "PROCESSING",
        "FAILED",
        "PARTIAL_SUCCESS",
    ];
    /// `ErrorInfo.domain` of the simulator's errors. The exact `details` Google attaches to each
    /// error are not documented per error; the simulator uses the standard `google.rpc`
    /// `ErrorInfo` (reason: an `ErrorReason` value) and `BadRequest` payloads the
    /// "Understand API errors" guide names.
    pub const ERROR_DOMAIN: &str = "datamanager.googleapis.com";
}

/// The OAuth client a simulated account honours (from the sim kit).
pub use hush_sim_kit::google_oauth::GoogleOAuthClient;

/// What the simulated account accepts.
#[derive(Debug, Clone)]
pub struct DataManagerSimConfig {
    /// The OAuth client and refresh token the token endpoint honours, and the lifetime of the
    /// access tokens it issues.
    pub oauth: GoogleOAuthClient,
    /// The Google Ads account the credential may operate.
    pub operating_account_id: String,
    /// The Customer Match audience (user list) under that account.
    pub audience_id: String,
    /// When set, every destination must name this `loginAccount` (a manager account).
    pub login_account_id: Option<String>,
    /// Status reads that still answer `PROCESSING` after a removal request.
    pub processing_polls: u32,
}

impl Default for DataManagerSimConfig {
    fn default() -> Self {
        Self {
            oauth: GoogleOAuthClient::default(),
            operating_account_id: "1234567890".into(),
            audience_id: "555".into(),
            login_account_id: None,
            processing_polls: 2,
        }
    }
}

/// How the next removal request ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestEnd {
    /// `FAILED`: nothing removed; every record counted under this `ProcessingErrorReason`.
    Failed(String),
    /// `PARTIAL_SUCCESS`: removals applied; one record counted under this reason.
    PartialSuccess(String),
}

#[derive(Debug)]
struct SimRequest {
    status: &'static str,
    polls_left: u32,
    destination: Value,
    hashes: Vec<String>,
    records: usize,
    ends: Option<RequestEnd>,
}

struct SimState {
    config: DataManagerSimConfig,
    tokens: GoogleTokens,
    next_id: u64,
    requests: BTreeMap<String, SimRequest>,
    members: BTreeSet<String>,
    next_end: Option<RequestEnd>,
}

type Shared = Arc<Mutex<SimState>>;

/// A running Data Manager API simulator.
pub struct DataManagerSim {
    google: GoogleApiSim,
    state: Shared,
}

impl DataManagerSim {
    /// Starts the simulator on any free loopback port.
    pub async fn start(config: DataManagerSimConfig) -> std::io::Result<Self> {
        Self::start_on(config, any_loopback_port()).await
    }

    /// Starts the simulator on `addr`.
    pub async fn start_on(config: DataManagerSimConfig, addr: SocketAddr) -> std::io::Result<Self> {
        let tokens = GoogleTokens::new(config.oauth.clone(), SCOPE, "ya29.sim-access-token-");
        let state: Shared = Arc::new(Mutex::new(SimState {
            config,
            tokens: tokens.clone(),
            next_id: 1,
            requests: BTreeMap::new(),
            members: BTreeSet::new(),
            next_end: None,
        }));
        let router = Router::new().fallback(api).with_state(state.clone());
        let google = GoogleApiSim::serve(router, tokens, addr).await?;
        Ok(Self { google, state })
    }

    /// The next removal request ends as `end` instead of `SUCCESS`.
    pub fn fail_next_request(&self, end: RequestEnd) {
        self.lock().next_end = Some(end);
    }

    /// Puts hashed identifiers in the audience, as an earlier upload would have.
    pub fn add_members<I, S>(&self, hashes: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.lock()
            .members
            .extend(hashes.into_iter().map(Into::into));
    }

    /// The audience's current members (hashes).
    pub fn members(&self) -> BTreeSet<String> {
        self.lock().members.clone()
    }

    /// A request's current status, by request id.
    pub fn request_status(&self, request_id: &str) -> Option<String> {
        self.lock()
            .requests
            .get(request_id)
            .map(|r| r.status.to_owned())
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap()
    }
}

/// The simulator's token endpoint and tokens (`token_url()`, `expire_tokens()`,
/// `tokens_issued()`), its address (`base_url()`) and its fault injection and call log
/// (`control()`).
impl std::ops::Deref for DataManagerSim {
    type Target = GoogleApiSim;

    fn deref(&self) -> &GoogleApiSim {
        &self.google
    }
}

/// A refusal: HTTP status, canonical status, `ErrorReason`, the field at fault and why.
struct Refusal {
    http: StatusCode,
    status: &'static str,
    reason: &'static str,
    field: String,
    description: String,
}

impl Refusal {
    fn invalid(
        reason: &'static str,
        field: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            http: StatusCode::BAD_REQUEST,
            status: "INVALID_ARGUMENT",
            reason,
            field: field.into(),
            description: description.into(),
        }
    }

    fn denied(field: impl Into<String>) -> Self {
        Self {
            http: StatusCode::FORBIDDEN,
            status: "PERMISSION_DENIED",
            reason: "PERMISSION_DENIED",
            field: field.into(),
            description: "The caller does not have permission on this account.".into(),
        }
    }

    /// Google's error envelope with `ErrorInfo` and, for `INVALID_ARGUMENT`, `BadRequest`.
    fn into_response(self) -> Response {
        let message = match self.status {
            "INVALID_ARGUMENT" => "There was a problem with the request.",
            "PERMISSION_DENIED" => "The caller does not have permission",
            "NOT_FOUND" => "Requested entity was not found.",
            _ => "Request had invalid authentication credentials.",
        };
        let mut details = vec![json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": self.reason,
            "domain": ERROR_DOMAIN,
        })];
        if self.status == "INVALID_ARGUMENT" {
            details.push(json!({
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": self.field, "description": self.description}],
            }));
        }
        (
            self.http,
            Json(json!({"error": {
                "code": self.http.as_u16(),
                "message": message,
                "status": self.status,
                "details": details,
            }})),
        )
            .into_response()
    }
}

async fn api(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    let route = (method.clone(), uri.path().to_owned());
    let remove = format!("/{API_VERSION}/audienceMembers:remove");
    let retrieve = format!("/{API_VERSION}/requestStatus:retrieve");
    let known = (route.0 == Method::POST && route.1 == remove)
        || (route.0 == Method::GET && route.1 == retrieve);
    if !known {
        return Refusal {
            http: StatusCode::NOT_FOUND,
            status: "NOT_FOUND",
            reason: "NOT_FOUND",
            field: String::new(),
            description: format!("{method} {} is not a Data Manager API method", uri.path()),
        }
        .into_response();
    }
    let authenticated = state.tokens.accepts(&headers);
    if !authenticated {
        return Refusal {
            http: StatusCode::UNAUTHORIZED,
            status: "UNAUTHENTICATED",
            reason: "ACCESS_TOKEN_EXPIRED",
            field: String::new(),
            description: String::new(),
        }
        .into_response();
    }
    let answer = if route.1 == remove {
        let json_body = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/json"));
        match serde_json::from_slice::<Value>(&body) {
            Ok(body) if json_body => remove_members(&mut state, &body),
            _ => Err(Refusal::invalid(
                "INVALID_FORMAT",
                "",
                "Invalid JSON payload received.",
            )),
        }
    } else {
        retrieve_status(&mut state, query.get("requestId").map(String::as_str))
    };
    answer.unwrap_or_else(Refusal::into_response)
}

/// Refuses any field of `object` (at `path`) that `allowed` does not name, as Google's JSON
/// parser does ("Unknown name").
fn known_fields(object: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), Refusal> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(Refusal::invalid(
            "INVALID_ARGUMENT",
            format!("{path}{unknown}"),
            format!(
                "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
            ),
        )),
        None => Ok(()),
    }
}

fn object<'a>(value: &'a Value, field: &str) -> Result<&'a Map<String, Value>, Refusal> {
    value.as_object().ok_or_else(|| {
        Refusal::invalid(
            "INVALID_FORMAT",
            field,
            "Invalid JSON payload received. Expected an object.",
        )
    })
}

/// The array `body[key]`, refused as Google refuses it, naming `field`, when missing or empty
/// (`REQUIRED_FIELD_MISSING`) or longer than `max` (`too_many`).
fn bounded_list(
    body: &Value,
    key: &str,
    field: &str,
    max: usize,
    too_many: &'static str,
) -> Result<Vec<Value>, Refusal> {
    let list = body[key].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return Err(Refusal::invalid(
            "REQUIRED_FIELD_MISSING",
            field,
            "Required field is missing.",
        ));
    }
    if list.len() > max {
        let what = field.replace('_', " ");
        return Err(Refusal::invalid(
            too_many,
            field,
            format!("The maximum number of {what} allowed per request is {max}."),
        ));
    }
    Ok(list)
}

fn remove_members(state: &mut SimState, body: &Value) -> Result<Response, Refusal> {
    let top = object(body, "")?;
    known_fields(top, REMOVE_FIELDS, "")?;
    let destinations = bounded_list(
        body,
        "destinations",
        "destinations",
        MAX_DESTINATIONS,
        "TOO_MANY_DESTINATIONS",
    )?;
    for (index, destination) in destinations.iter().enumerate() {
        check_destination(&state.config, index, destination)?;
    }
    let members = bounded_list(
        body,
        "audienceMembers",
        "audience_members",
        MAX_AUDIENCE_MEMBERS,
        "TOO_MANY_AUDIENCE_MEMBERS",
    )?;
    let encoding = match body.get("encoding") {
        None => {
            return Err(Refusal::invalid(
                "REQUIRED_FIELD_MISSING",
                "encoding",
                "encoding is required for UserData uploads.",
            ))
        }
        Some(value) => value.as_str().unwrap_or_default(),
    };
    if !ENCODINGS.contains(&encoding) {
        return Err(Refusal::invalid(
            "INVALID_ENUM_VALUE",
            "encoding",
            format!("Invalid value \"{encoding}\" for enum Encoding."),
        ));
    }
    let mut hashes = Vec::new();
    for (index, member) in members.iter().enumerate() {
        hashes.extend(check_member(index, member, encoding)?);
    }
    if body["validateOnly"] == true {
        return Ok(Json(json!({})).into_response());
    }
    let id = format!("sim-request-{:08}", state.next_id);
    state.next_id += 1;
    let ends = state.next_end.take();
    state.requests.insert(
        id.clone(),
        SimRequest {
            status: "PROCESSING",
            polls_left: state.config.processing_polls,
            destination: destinations[0].clone(),
            hashes,
            records: members.len(),
            ends,
        },
    );
    Ok(Json(json!({ "requestId": id })).into_response())
}

fn check_destination(
    config: &DataManagerSimConfig,
    index: usize,
    destination: &Value,
) -> Result<(), Refusal> {
    let at = |field: &str| format!("destinations[{index}].{field}");
    known_fields(object(destination, &at(""))?, DESTINATION_FIELDS, &at(""))?;
    let account = |name: &str| -> Result<Option<(String, String)>, Refusal> {
        let Some(value) = destination.get(name) else {
            return Ok(None);
        };
        known_fields(
            object(value, &at(name))?,
            ACCOUNT_FIELDS,
            &format!("{}.", at(name)),
        )?;
        let account_type = value["accountType"].as_str().unwrap_or_default();
        if !ACCOUNT_TYPES.contains(&account_type) {
            return Err(Refusal::invalid(
                "INVALID_ENUM_VALUE",
                format!("{}.account_type", at(name)),
                format!("Invalid value \"{account_type}\" for enum AccountType."),
            ));
        }
        let account_id = value["accountId"].as_str().unwrap_or_default();
        if account_id.is_empty() || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Refusal::invalid(
                "INVALID_ARGUMENT",
                format!("{}.account_id", at(name)),
                "The account id must be the account's digits, without hyphens.",
            ));
        }
        Ok(Some((account_type.to_owned(), account_id.to_owned())))
    };
    let Some(operating) = account("operatingAccount")? else {
        return Err(Refusal::invalid(
            "REQUIRED_FIELD_MISSING",
            at("operating_account"),
            "Required field is missing.",
        ));
    };
    let login = account("loginAccount")?;
    let Some(audience) = destination["productDestinationId"].as_str() else {
        return Err(Refusal::invalid(
            "REQUIRED_FIELD_MISSING",
            at("product_destination_id"),
            "Required field is missing.",
        ));
    };
    if operating != ("GOOGLE_ADS".to_owned(), config.operating_account_id.clone()) {
        return Err(Refusal::denied(at("operating_account")));
    }
    if let Some(required) = &config.login_account_id {
        if login.as_ref().map(|(_, id)| id) != Some(required) {
            return Err(Refusal::denied(at("login_account")));
        }
    }
    if audience != config.audience_id {
        return Err(Refusal::invalid(
            "INVALID_USER_LIST_ID",
            at("product_destination_id"),
            "The user list is invalid.",
        ));
    }
    Ok(())
}

/// Checks one `AudienceMember` of a Customer Match contact list; returns its hashes
/// (lowercase hex).
fn check_member(index: usize, member: &Value, encoding: &str) -> Result<Vec<String>, Refusal> {
    let at = format!("audience_members[{index}]");
    known_fields(object(member, &at)?, MEMBER_FIELDS, &format!("{at}."))?;
    let Some(identifiers) = member["userData"]["userIdentifiers"].as_array() else {
        return Err(Refusal::invalid(
            "INVALID_AUDIENCE_MEMBER",
            format!("{at}.user_data"),
            "A Customer Match contact list takes userData.userIdentifiers.",
        ));
    };
    if identifiers.is_empty() {
        return Err(Refusal::invalid(
            "REQUIRED_FIELD_MISSING",
            format!("{at}.user_data.user_identifiers"),
            "Required field is missing.",
        ));
    }
    if identifiers.len() > MAX_USER_IDENTIFIERS {
        return Err(Refusal::invalid(
            "TOO_MANY_USER_IDENTIFIERS",
            format!("{at}.user_data.user_identifiers"),
            format!("The maximum number of user identifiers allowed per audience member is {MAX_USER_IDENTIFIERS}."),
        ));
    }
    let mut hashes = Vec::new();
    for (position, identifier) in identifiers.iter().enumerate() {
        let field = format!("{at}.user_data.user_identifiers[{position}]");
        let set = object(identifier, &field)?;
        known_fields(set, IDENTIFIER_FIELDS, &format!("{field}."))?;
        if set.len() != 1 {
            return Err(Refusal::invalid(
                "INVALID_ARGUMENT",
                field,
                "Exactly one of emailAddress, phoneNumber or address must be set.",
            ));
        }
        let (name, value) = set.iter().next().expect("one field");
        if name == "address" {
            continue;
        }
        let value = value.as_str().unwrap_or_default();
        if encoding == "HEX" {
            if !value.bytes().all(|b| b.is_ascii_hexdigit()) || value.len() % 2 == 1 {
                return Err(Refusal::invalid(
                    "INVALID_HEX_ENCODING",
                    field,
                    "The HEX encoded value is malformed.",
                ));
            }
            if value.len() != 64 {
                return Err(Refusal::invalid(
                    "INVALID_SHA256_FORMAT",
                    field,
                    "The SHA256 encoded value is malformed.",
                ));
            }
            hashes.push(value.to_ascii_lowercase());
        } else if value.len() != 44 {
            return Err(Refusal::invalid(
                "INVALID_SHA256_FORMAT",
                field,
                "The SHA256 encoded value is malformed.",
            ));
        }
    }
    Ok(hashes)
}

fn retrieve_status(state: &mut SimState, request_id: Option<&str>) -> Result<Response, Refusal> {
    let Some(request_id) = request_id.filter(|id| !id.is_empty()) else {
        return Err(Refusal::invalid(
            "REQUIRED_FIELD_MISSING",
            "request_id",
            "Required field is missing.",
        ));
    };
    let SimState {
        requests, members, ..
    } = state;
    let Some(request) = requests.get_mut(request_id) else {
        return Err(Refusal {
            http: StatusCode::NOT_FOUND,
            status: "NOT_FOUND",
            reason: "NOT_FOUND",
            field: "request_id".into(),
            description: String::new(),
        });
    };
    if request.status == "PROCESSING" {
        if request.polls_left > 0 {
            request.polls_left -= 1;
        } else {
            let removes = !matches!(request.ends, Some(RequestEnd::Failed(_)));
            request.status = match &request.ends {
                None => "SUCCESS",
                Some(RequestEnd::Failed(_)) => "FAILED",
                Some(RequestEnd::PartialSuccess(_)) => "PARTIAL_SUCCESS",
            };
            if removes {
                for hash in &request.hashes {
                    members.remove(hash);
                }
            }
        }
    }
    debug_assert!(REQUEST_STATUSES.contains(&request.status));
    let mut per_destination = json!({
        "destination": request.destination,
        "requestStatus": request.status,
    });
    if request.status != "PROCESSING" {
        let (errors, removed) = match &request.ends {
            Some(RequestEnd::Failed(reason)) => (Some((reason, request.records)), 0),
            Some(RequestEnd::PartialSuccess(reason)) => {
                (Some((reason, 1)), request.records.saturating_sub(1))
            }
            None => (None, request.records),
        };
        if let Some((reason, count)) = errors {
            per_destination["errorInfo"] =
                json!({"errorCounts": [{"reason": reason, "recordCount": count.to_string()}]});
        }
        per_destination["audienceMembersRemovalStatus"] = json!({
            "userDataRemovalStatus": {
                "recordCount": removed.to_string(),
                "userIdentifierCount": request.hashes.len().to_string(),
            }
        });
    }
    Ok(Json(json!({ "requestStatusPerDestination": [per_destination] })).into_response())
}
