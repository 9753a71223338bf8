//! Simulator of the Google Ads API and Google's OAuth 2.0 token endpoint: test and demo
//! infrastructure, never a real Google service.
//!
//! It checks what Google checks: the refresh-token grant (client id, secret, refresh token),
//! expiring bearer tokens, the `developer-token` and `login-customer-id` headers, the REST
//! paths and bodies of `offlineUserDataJobs:create`, `:addOperations`, `:run` and
//! `googleAds:search`, the identifier limits (100,000 a request, 20 an operation) and that
//! every hash is a lowercase SHA-256 hex digest: an unhashed or upper-case value fails its
//! operation with `INVALID_SHA256_FORMAT` in `partialFailureError`, as Google does. Jobs go
//! `PENDING` → `RUNNING` (for a configurable number of status reads) → `SUCCESS` (removals
//! applied to the list's members) or `FAILED`. Faults and call records come from
//! [`hush_sim_kit`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hush_sim_kit::any_loopback_port;
use hush_sim_kit::google_api::GoogleApiSim;
use hush_sim_kit::google_oauth::GoogleTokens;
use serde_json::{json, Value};

use self::contract::SERVED_VERSIONS;

/// Google's side of the contract, copied from Google's documentation rather than from the
/// connector, so that a sunset version in the connector cannot pass here too.
pub mod contract {
    /// Google Ads API versions Google serves on 2026-12-01: v22 was sunset on 2026-10-07, v26
    /// (v26.1) is the latest. Source: developers.google.com, Google Ads API sunset dates and
    /// release notes.
    pub const SERVED_VERSIONS: &[&str] = &["v23", "v24", "v25", "v26"];

    /// What `OfflineUserDataJobService` answers, since 1 April 2026, to a developer token that
    /// had not uploaded Customer Match data between October 2025 and March 2026. Source:
    /// developers.google.com/ads/blog, "Changes to Customer Match support in the Google Ads
    /// API" (2026-03-04). The enum carrying it (`notAllowlistedError`) is the Google Ads API's
    /// `NotAllowlistedError`; the exact error body for this case is not documented.
    pub const NOT_ALLOWLISTED: &str = "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE";
}

/// The OAuth client a simulated account honours (from the sim kit).
pub use hush_sim_kit::google_oauth::GoogleOAuthClient;

/// What the simulated account accepts.
#[derive(Debug, Clone)]
pub struct GoogleAdsSimConfig {
    /// The OAuth client and refresh token the token endpoint honours, and the lifetime of the
    /// access tokens it issues.
    pub oauth: GoogleOAuthClient,
    /// The developer token every API call must carry.
    pub developer_token: String,
    /// The customer the token may act on.
    pub customer_id: String,
    /// The Customer Match user list that exists under the customer.
    pub user_list_id: String,
    /// When set, every call must carry this `login-customer-id`.
    pub login_customer_id: Option<String>,
    /// Status reads that still answer `RUNNING` after `:run`.
    pub running_polls: u32,
    /// Most identifiers one `addOperations` request may carry.
    pub max_identifiers_per_request: usize,
    /// Whether the developer token is on Google's Customer Match allowlist; since April 2026
    /// Google refuses the others with `CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE`.
    pub customer_match_allowlisted: bool,
}

impl Default for GoogleAdsSimConfig {
    fn default() -> Self {
        Self {
            oauth: GoogleOAuthClient::default(),
            developer_token: "sim-developer-token".into(),
            customer_id: "1234567890".into(),
            user_list_id: "555".into(),
            login_customer_id: None,
            running_polls: 2,
            max_identifiers_per_request: 100_000,
            customer_match_allowlisted: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OperationKind {
    Create,
    Remove,
}

#[derive(Debug)]
struct Job {
    status: &'static str,
    failure_reason: Option<String>,
    kind: Option<OperationKind>,
    hashes: Vec<String>,
    polls_left: u32,
    fails_with: Option<String>,
}

struct SimState {
    config: GoogleAdsSimConfig,
    tokens: GoogleTokens,
    next_id: u64,
    jobs: BTreeMap<String, Job>,
    members: BTreeSet<String>,
    fail_next_job: Option<String>,
}

type Shared = Arc<Mutex<SimState>>;

/// A running Google Ads API simulator.
pub struct GoogleAdsSim {
    google: GoogleApiSim,
    state: Shared,
}

impl GoogleAdsSim {
    /// Starts the simulator on any free loopback port.
    pub async fn start(config: GoogleAdsSimConfig) -> std::io::Result<Self> {
        Self::start_on(config, any_loopback_port()).await
    }

    /// Starts the simulator on `addr`.
    pub async fn start_on(config: GoogleAdsSimConfig, addr: SocketAddr) -> std::io::Result<Self> {
        let tokens = GoogleTokens::new(
            config.oauth.clone(),
            "https://www.googleapis.com/auth/adwords",
            "ya29.sim-access-token-",
        );
        let state: Shared = Arc::new(Mutex::new(SimState {
            config,
            tokens: tokens.clone(),
            next_id: 1,
            jobs: BTreeMap::new(),
            members: BTreeSet::new(),
            fail_next_job: None,
        }));
        let router = Router::new().fallback(api).with_state(state.clone());
        let google = GoogleApiSim::serve(router, tokens, addr).await?;
        Ok(Self { google, state })
    }

    /// Status reads that answer `RUNNING` for jobs run from now on.
    pub fn set_running_polls(&self, polls: u32) {
        self.lock().config.running_polls = polls;
    }

    /// The next job run ends `FAILED` with this `failureReason`.
    pub fn fail_next_job(&self, reason: &str) {
        self.lock().fail_next_job = Some(reason.to_owned());
    }

    /// Puts hashed identifiers on the user list, as an earlier upload would have.
    pub fn add_members<I, S>(&self, hashes: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.lock()
            .members
            .extend(hashes.into_iter().map(Into::into));
    }

    /// The user list's current members (hashes).
    pub fn members(&self) -> BTreeSet<String> {
        self.lock().members.clone()
    }

    /// A job's status, by resource name.
    pub fn job_status(&self, job: &str) -> Option<String> {
        self.lock().jobs.get(job).map(|j| j.status.to_owned())
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap()
    }
}

/// A Google API error: `{"error":{"code","message","status","details":[GoogleAdsFailure]}}`.
fn google_error(
    http: StatusCode,
    status: &str,
    message: &str,
    version: &str,
    errors: Vec<Value>,
) -> Response {
    let mut error = json!({"code": http.as_u16(), "message": message, "status": status});
    if !errors.is_empty() {
        error["details"] = json!([failure_detail(version, errors)]);
    }
    (http, Json(json!({ "error": error }))).into_response()
}

/// `400 INVALID_ARGUMENT` with one Google Ads error.
fn invalid_argument(version: &str, kind: &str, code: &str, message: &str) -> Response {
    google_error(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        "Request contains an invalid argument.",
        version,
        vec![ads_error(kind, code, message)],
    )
}

/// `403 PERMISSION_DENIED` with one Google Ads error.
fn permission_denied(version: &str, kind: &str, code: &str, message: &str) -> Response {
    google_error(
        StatusCode::FORBIDDEN,
        "PERMISSION_DENIED",
        "The caller does not have permission",
        version,
        vec![ads_error(kind, code, message)],
    )
}

/// An error without Google Ads details.
fn bare_error(http: StatusCode, status: &str, message: &str, version: &str) -> Response {
    google_error(http, status, message, version, vec![])
}

fn failure_detail(version: &str, errors: Vec<Value>) -> Value {
    json!({
        "@type": format!("type.googleapis.com/google.ads.googleads.{version}.errors.GoogleAdsFailure"),
        "errors": errors,
        "requestId": "sim-request"
    })
}

fn ads_error(kind: &str, code: &str, message: &str) -> Value {
    json!({"errorCode": {kind: code}, "message": message})
}

async fn api(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    let path = uri.path().trim_start_matches('/').to_owned();
    let (version, rest) = path.split_once('/').unwrap_or((path.as_str(), ""));
    let latest = SERVED_VERSIONS[SERVED_VERSIONS.len() - 1];
    if !SERVED_VERSIONS.contains(&version) || method != Method::POST {
        return bare_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!(
                "{method} /{path} is not a method of a Google Ads API version Google serves \
                 ({})",
                SERVED_VERSIONS.join(", ")
            ),
            latest,
        );
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let authenticated = state.tokens.accepts(&headers);
    if !authenticated {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            version,
            vec![ads_error("authenticationError", "OAUTH_TOKEN_INVALID", "Oauth token is invalid.")],
        );
    }
    if header("developer-token") != Some(state.config.developer_token.as_str()) {
        return permission_denied(
            version,
            "authorizationError",
            "DEVELOPER_TOKEN_NOT_APPROVED",
            "The developer token is not approved for this account.",
        );
    }
    let customer = format!("customers/{}/", state.config.customer_id);
    let login_ok = match &state.config.login_customer_id {
        Some(login) => header("login-customer-id") == Some(login.as_str()),
        None => true,
    };
    if !rest.starts_with(&customer) || !login_ok {
        return permission_denied(
            version,
            "authorizationError",
            "USER_PERMISSION_DENIED",
            "User doesn't have permission to access customer. Note: If you're accessing a client customer, the manager's customer id must be set in the 'login-customer-id' header.",
        );
    }
    if !header("content-type").is_some_and(|c| c.starts_with("application/json")) {
        return bare_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Invalid JSON payload: the body must be application/json.",
            version,
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bare_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Invalid JSON payload received.",
            version,
        );
    };
    let action = &rest[customer.len()..];
    match action {
        "offlineUserDataJobs:create" => create_job(&mut state, version, &body),
        "googleAds:search" => search(&mut state, version, &body),
        _ => {
            let job_action = action
                .strip_prefix("offlineUserDataJobs/")
                .and_then(|a| a.split_once(':'))
                .filter(|(id, _)| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
            let Some((id, verb)) = job_action else {
                return bare_error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    &format!("/{path} is not a Google Ads API method"),
                    version,
                );
            };
            let job = format!("{customer}offlineUserDataJobs/{id}");
            match verb {
                "addOperations" => add_operations(&mut state, version, &job, &body),
                "run" => run_job(&mut state, version, &job),
                _ => bare_error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    &format!("/{path} is not a Google Ads API method"),
                    version,
                ),
            }
        }
    }
}

fn create_job(state: &mut SimState, version: &str, body: &Value) -> Response {
    if !state.config.customer_match_allowlisted {
        return permission_denied(
            version,
            "notAllowlistedError",
            contract::NOT_ALLOWLISTED,
            "Customer is not allowlisted for accessing this feature.",
        );
    }
    let job = &body["job"];
    if job["type"] != "CUSTOMER_MATCH_USER_LIST" {
        return invalid_argument(
            version,
            "offlineUserDataJobError",
            "INVALID_USER_LIST_TYPE",
            "Type of the user list is not applicable for the job.",
        );
    }
    let expected = format!(
        "customers/{}/userLists/{}",
        state.config.customer_id, state.config.user_list_id
    );
    if job["customerMatchUserListMetadata"]["userList"] != expected.as_str() {
        return invalid_argument(
            version,
            "offlineUserDataJobError",
            "INVALID_USER_LIST_ID",
            "The user list ID provided for the job is invalid.",
        );
    }
    let id = state.next_id;
    state.next_id += 1;
    let name = format!(
        "customers/{}/offlineUserDataJobs/{id}",
        state.config.customer_id
    );
    state.jobs.insert(
        name.clone(),
        Job {
            status: "PENDING",
            failure_reason: None,
            kind: None,
            hashes: Vec::new(),
            polls_left: 0,
            fails_with: None,
        },
    );
    Json(json!({ "resourceName": name })).into_response()
}

/// Google's answer to a call naming a job that does not exist.
fn job_not_found(job_name: &str, version: &str) -> Response {
    bare_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &format!("Resource {job_name} was not found."),
        version,
    )
}

fn add_operations(state: &mut SimState, version: &str, job_name: &str, body: &Value) -> Response {
    let limit = state.config.max_identifiers_per_request;
    let Some(job) = state.jobs.get_mut(job_name) else {
        return job_not_found(job_name, version);
    };
    if job.status != "PENDING" {
        return bare_error(
            StatusCode::BAD_REQUEST,
            "FAILED_PRECONDITION",
            "Operations can only be added to a job that has not been run.",
            version,
        );
    }
    let operations = body["operations"].as_array().cloned().unwrap_or_default();
    if operations.is_empty() {
        return invalid_argument(
            version,
            "requestError",
            "REQUIRED_FIELD_MISSING",
            "operations is required.",
        );
    }
    let total: usize = operations
        .iter()
        .map(|op| user_identifiers(op).map_or(0, |(_, ids)| ids.len()))
        .sum();
    if total > limit {
        return invalid_argument(version, "offlineUserDataJobError", "TOO_MANY_USER_IDENTIFIERS", &format!("Maximum number of user identifiers allowed per request is {limit} and per operation is 20."));
    }
    let mut errors = Vec::new();
    let mut accepted = Vec::new();
    let mut kind = job.kind;
    for (index, operation) in operations.iter().enumerate() {
        match check_operation(index, operation, kind) {
            Ok((this_kind, hashes)) => {
                kind = Some(this_kind);
                accepted.extend(hashes);
            }
            Err(error) => errors.push(error),
        }
    }
    let partial = body["enablePartialFailure"] == true;
    if !errors.is_empty() && !partial {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.",
            version,
            errors,
        );
    }
    job.kind = kind;
    job.hashes.extend(accepted);
    if errors.is_empty() {
        return Json(json!({})).into_response();
    }
    let message = errors[0]["message"].as_str().unwrap_or_default().to_owned();
    Json(json!({
        "partialFailureError": {
            "code": 3,
            "message": message,
            "details": [failure_detail(version, errors)]
        }
    }))
    .into_response()
}

/// The operation's kind and `userIdentifiers`.
fn user_identifiers(operation: &Value) -> Option<(OperationKind, &Vec<Value>)> {
    let (kind, data) = match (operation.get("create"), operation.get("remove")) {
        (Some(data), None) => (OperationKind::Create, data),
        (None, Some(data)) => (OperationKind::Remove, data),
        _ => return None,
    };
    Some((kind, data["userIdentifiers"].as_array()?))
}

/// Validates one operation as Google does for a CONTACT_INFO Customer Match list.
fn check_operation(
    index: usize,
    operation: &Value,
    job_kind: Option<OperationKind>,
) -> Result<(OperationKind, Vec<String>), Value> {
    let at = |tail: Vec<Value>| {
        let mut path = vec![json!({"fieldName": "operations", "index": index})];
        path.extend(tail);
        json!({ "fieldPathElements": path })
    };
    let fail = |code: &str, message: &str, tail: Vec<Value>| {
        let mut error = ads_error("offlineUserDataJobError", code, message);
        error["location"] = at(tail);
        error
    };
    let Some((kind, identifiers)) = user_identifiers(operation) else {
        return Err(fail(
            "MISSING_USER_IDENTIFIER",
            "The user identifier is missing valid data.",
            vec![],
        ));
    };
    let verb = match kind {
        OperationKind::Create => "create",
        OperationKind::Remove => "remove",
    };
    if job_kind.is_some_and(|k| k != kind) {
        return Err(fail(
            "CONFLICTING_OPERATION",
            "Mixing creation and removal of offline data in the same job is not allowed.",
            vec![json!({"fieldName": verb})],
        ));
    }
    if identifiers.is_empty() {
        return Err(fail(
            "MISSING_USER_IDENTIFIER",
            "The user identifier is missing valid data.",
            vec![json!({"fieldName": verb})],
        ));
    }
    if identifiers.len() > 20 {
        return Err(fail(
            "TOO_MANY_USER_IDENTIFIERS",
            "Maximum number of user identifiers allowed per request is 100,000 and per operation is 20.",
            vec![json!({"fieldName": verb})],
        ));
    }
    // The field path of identifier `position` of the operation.
    let at = |position: usize| {
        vec![
            json!({"fieldName": verb}),
            json!({"fieldName": "user_identifiers", "index": position}),
        ]
    };
    let mut hashes = Vec::new();
    for (position, identifier) in identifiers.iter().enumerate() {
        let object = identifier.as_object().filter(|o| o.len() == 1);
        let Some((field, value)) = object.and_then(|o| o.iter().next()) else {
            return Err(fail(
                "MISSING_USER_IDENTIFIER",
                "The user identifier is missing valid data.",
                at(position),
            ));
        };
        let snake = match field.as_str() {
            "hashedEmail" => "hashed_email",
            "hashedPhoneNumber" => "hashed_phone_number",
            _ => {
                return Err(fail(
                    "INCOMPATIBLE_UPLOAD_KEY_TYPE",
                    "Upload data is not compatible with the upload key type of the associated user list.",
                    at(position),
                ))
            }
        };
        let value = value.as_str().unwrap_or_default();
        if !hush_contracts::identifiers::is_sha256_hex(value) {
            return Err(fail(
                "INVALID_SHA256_FORMAT",
                "The SHA256 encoded value is malformed.",
                [at(position), vec![json!({"fieldName": snake})]].concat(),
            ));
        }
        hashes.push(value.to_owned());
    }
    Ok((kind, hashes))
}

fn run_job(state: &mut SimState, version: &str, job_name: &str) -> Response {
    let polls = state.config.running_polls;
    let fails_with = state.fail_next_job.take();
    let Some(job) = state.jobs.get_mut(job_name) else {
        return job_not_found(job_name, version);
    };
    if job.status != "PENDING" {
        state.fail_next_job = fails_with;
        return bare_error(
            StatusCode::BAD_REQUEST,
            "FAILED_PRECONDITION",
            "The job has already been run.",
            version,
        );
    }
    job.status = "RUNNING";
    job.polls_left = polls;
    job.fails_with = fails_with;
    let id = job_name.rsplit('/').next().unwrap_or_default();
    Json(json!({
        "name": format!("customers/{}/operations/run-{id}", state.config.customer_id)
    }))
    .into_response()
}

fn search(state: &mut SimState, version: &str, body: &Value) -> Response {
    let query = body["query"].as_str().unwrap_or_default();
    let job_name = query
        .split_once("offline_user_data_job.resource_name = '")
        .and_then(|(_, tail)| tail.split_once('\''))
        .map(|(name, _)| name.to_owned());
    let (Some(job_name), true, true) = (
        job_name,
        query.contains("FROM offline_user_data_job"),
        query.contains("offline_user_data_job.status"),
    ) else {
        return invalid_argument(
            version,
            "queryError",
            "PROHIBITED_RESOURCE_TYPE_IN_SELECT_CLAUSE",
            "The simulator answers only offline_user_data_job status queries by resource name.",
        );
    };
    let SimState { jobs, members, .. } = state;
    let Some(job) = jobs.get_mut(&job_name) else {
        return Json(json!({"fieldMask": "offlineUserDataJob.resourceName,offlineUserDataJob.status,offlineUserDataJob.failureReason"})).into_response();
    };
    if job.status == "RUNNING" {
        if job.polls_left > 0 {
            job.polls_left -= 1;
        } else if let Some(reason) = job.fails_with.take() {
            job.status = "FAILED";
            job.failure_reason = Some(reason);
        } else {
            job.status = "SUCCESS";
            for hash in &job.hashes {
                match job.kind {
                    Some(OperationKind::Create) => {
                        members.insert(hash.clone());
                    }
                    _ => {
                        members.remove(hash);
                    }
                }
            }
        }
    }
    let mut row = json!({"resourceName": job_name, "status": job.status});
    if let Some(reason) = &job.failure_reason {
        row["failureReason"] = json!(reason);
    }
    Json(json!({
        "results": [{ "offlineUserDataJob": row }],
        "fieldMask": "offlineUserDataJob.resourceName,offlineUserDataJob.status,offlineUserDataJob.failureReason",
        "requestId": "sim-request"
    }))
    .into_response()
}

/// The simulator's token endpoint and tokens (`token_url()`, `expire_tokens()`,
/// `tokens_issued()`), its address (`base_url()`) and its fault injection and call log
/// (`control()`).
impl std::ops::Deref for GoogleAdsSim {
    type Target = GoogleApiSim;

    fn deref(&self) -> &GoogleApiSim {
        &self.google
    }
}
