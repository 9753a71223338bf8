//! Simulator of the Google Analytics User Deletion API and Google's OAuth 2.0 token endpoint:
//! test and demo infrastructure, never a real Google service.
//!
//! Written from Google's documentation (read 2026-12-03):
//! - https://developers.google.com/analytics/devguides/config/userdeletion/v3 (id types and
//!   which property field each needs; one identifier per request; deletion timeline)
//! - https://developers.google.com/analytics/devguides/config/userdeletion/v3/reference/userDeletion/userDeletionRequest
//!   (the resource: `kind`, `id.type`, `id.userId`, `webPropertyId`, `firebaseProjectId`,
//!   `propertyId`, `deletionRequestTime`)
//! - https://developers.google.com/analytics/devguides/config/userdeletion/v3/limits-quotas
//!   (500 requests a day per property, quota errors as 403 or 429)
//!
//! It checks what Google checks, from its own copy of the contract ([`contract`]): the
//! refresh-token grant, expiring bearer tokens, the JSON body (unknown fields refused, the
//! resource `kind`, `id.type` from the documented enum with the property field it needs,
//! a non-empty `id.userId`, exactly one property field), that the credential may act on the
//! property (`403 insufficientPermissions` otherwise), and the daily quota per property
//! (`403 dailyLimitExceeded`). Errors use Google's JSON envelope. Accepted requests are kept
//! with their `deletionRequestTime`; nothing can be read back, as at Google. Faults (429, 5xx,
//! latency) and call records come from [`hush_sim_kit`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hush_sim_kit::any_loopback_port;
use hush_sim_kit::google_api::GoogleApiSim;
use hush_sim_kit::google_oauth::GoogleTokens;
use serde_json::{json, Value};

use self::contract::*;

/// Google's side of the contract, copied from Google's documentation rather than from the
/// connector, so that a shape bug in the connector cannot pass here too.
pub mod contract {
    /// Path of the upsert method.
    pub const UPSERT_PATH: &str = "/analytics/v3/userDeletion/userDeletionRequests:upsert";
    /// `kind` of the resource.
    pub const KIND: &str = "analytics#userDeletionRequest";
    /// Fields of `UserDeletion.userDeletionRequest`.
    pub const FIELDS: &[&str] = &[
        "kind",
        "id",
        "webPropertyId",
        "firebaseProjectId",
        "propertyId",
        "deletionRequestTime",
    ];
    /// Fields of `id`.
    pub const ID_FIELDS: &[&str] = &["type", "userId"];
    /// `id.type` values, each with the property fields it may be used with.
    pub const ID_TYPES: &[(&str, &[&str])] = &[
        ("CLIENT_ID", &["webPropertyId", "propertyId"]),
        ("USER_ID", &["webPropertyId", "propertyId"]),
        ("APP_INSTANCE_ID", &["firebaseProjectId", "propertyId"]),
    ];
    /// Property fields, exactly one of which names where data is deleted.
    pub const PROPERTY_FIELDS: &[&str] = &["webPropertyId", "firebaseProjectId", "propertyId"];
    /// Requests a day one property accepts.
    pub const DAILY_REQUESTS_PER_PROPERTY: u32 = 500;
}

/// The OAuth client a simulated account honours (from the sim kit).
pub use hush_sim_kit::google_oauth::GoogleOAuthClient;

/// What the simulated Google account accepts.
#[derive(Debug, Clone)]
pub struct GoogleAnalyticsSimConfig {
    /// The OAuth client and refresh token the token endpoint honours, and the lifetime of the
    /// access tokens it issues.
    pub oauth: GoogleOAuthClient,
    /// The GA4 property the credential may delete data from.
    pub property_id: String,
    /// Deletion requests the property accepts a day.
    pub daily_requests: u32,
}

impl Default for GoogleAnalyticsSimConfig {
    fn default() -> Self {
        Self {
            oauth: GoogleOAuthClient::default(),
            property_id: "345678901".into(),
            daily_requests: DAILY_REQUESTS_PER_PROPERTY,
        }
    }
}

/// A deletion request the simulator accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDeletionRequest {
    /// `id.type`.
    pub id_type: String,
    /// `id.userId`.
    pub user_id: String,
    /// The property field used, and its value.
    pub property: (String, String),
    /// `deletionRequestTime` answered.
    pub deletion_request_time: String,
}

struct SimState {
    config: GoogleAnalyticsSimConfig,
    tokens: GoogleTokens,
    accepted: Vec<SimDeletionRequest>,
    requests_today: u32,
}

type Shared = Arc<Mutex<SimState>>;

/// A running User Deletion API simulator.
pub struct GoogleAnalyticsSim {
    google: GoogleApiSim,
    state: Shared,
}

impl GoogleAnalyticsSim {
    /// Starts the simulator on any free loopback port.
    pub async fn start(config: GoogleAnalyticsSimConfig) -> std::io::Result<Self> {
        Self::start_on(config, any_loopback_port()).await
    }

    /// Starts the simulator on `addr`.
    pub async fn start_on(
        config: GoogleAnalyticsSimConfig,
        addr: SocketAddr,
    ) -> std::io::Result<Self> {
        let tokens = GoogleTokens::new(
            config.oauth.clone(),
            "https://www.googleapis.com/auth/analytics.user.deletion",
            "ya29.sim-analytics-token-",
        );
        let state: Shared = Arc::new(Mutex::new(SimState {
            config,
            tokens: tokens.clone(),
            accepted: Vec::new(),
            requests_today: 0,
        }));
        let router = Router::new()
            .route(UPSERT_PATH, post(upsert))
            .with_state(state.clone());
        let google = GoogleApiSim::serve(router, tokens, addr).await?;
        Ok(Self { google, state })
    }

    /// Every deletion request accepted so far, oldest first.
    pub fn deletion_requests(&self) -> Vec<SimDeletionRequest> {
        self.lock().accepted.clone()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap()
    }
}

/// Google's JSON error envelope with one error.
fn error(status: StatusCode, reason: &str, message: &str) -> Response {
    let code = status.as_u16();
    let rpc_status = match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        _ => "UNKNOWN",
    };
    let body = json!({"error": {
        "code": code,
        "message": message,
        "errors": [{"domain": "global", "reason": reason, "message": message}],
        "status": rpc_status,
    }});
    (status, Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "badRequest", message)
}

async fn upsert(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = state.lock().unwrap();
    let valid = state.tokens.accepts(&headers);
    if !valid {
        return error(
            StatusCode::UNAUTHORIZED,
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        );
    }
    let json_body = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !json_body {
        return bad_request("Content-Type must be application/json.");
    }
    let Ok(Value::Object(resource)) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("Invalid JSON payload received.");
    };
    if let Some(unknown) = resource.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return bad_request(&format!(
            "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
        ));
    }
    if resource
        .get("kind")
        .is_some_and(|kind| kind.as_str() != Some(KIND))
    {
        return bad_request(&format!("Field kind must be \"{KIND}\"."));
    }
    let Some(Value::Object(id)) = resource.get("id") else {
        return bad_request("Field id is required.");
    };
    if let Some(unknown) = id.keys().find(|k| !ID_FIELDS.contains(&k.as_str())) {
        return bad_request(&format!(
            "Invalid JSON payload received. Unknown name \"{unknown}\" at 'id': Cannot find field."
        ));
    }
    let id_type = id.get("type").and_then(Value::as_str).unwrap_or_default();
    let Some((_, allowed_properties)) = ID_TYPES.iter().find(|(name, _)| *name == id_type) else {
        return bad_request("Field id.type must be one of APP_INSTANCE_ID, CLIENT_ID or USER_ID.");
    };
    let user_id = id.get("userId").and_then(Value::as_str).unwrap_or_default();
    if user_id.trim().is_empty() {
        return bad_request("Field id.userId is required.");
    }
    let properties: Vec<(&str, &str)> = PROPERTY_FIELDS
        .iter()
        .filter_map(|f| {
            resource
                .get(*f)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(|v| (*f, v))
        })
        .collect();
    let [(property_field, property_value)] = properties.as_slice() else {
        return bad_request(
            "Exactly one of webPropertyId, firebaseProjectId or propertyId must be set.",
        );
    };
    if !allowed_properties.contains(property_field) {
        return bad_request(&format!(
            "id.type {id_type} is not supported with {property_field}."
        ));
    }
    if *property_field != "propertyId" || *property_value != state.config.property_id {
        return error(
            StatusCode::FORBIDDEN,
            "insufficientPermissions",
            "User does not have sufficient permissions for this property.",
        );
    }
    if state.requests_today >= state.config.daily_requests {
        return error(
            StatusCode::FORBIDDEN,
            "dailyLimitExceeded",
            "Quota Error: the property has exceeded its daily user deletion request limit.",
        );
    }
    state.requests_today += 1;
    let deletion_request_time = chrono::Utc::now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .to_string();
    state.accepted.push(SimDeletionRequest {
        id_type: id_type.to_owned(),
        user_id: user_id.to_owned(),
        property: ((*property_field).to_owned(), (*property_value).to_owned()),
        deletion_request_time: deletion_request_time.clone(),
    });
    let mut answer = json!({
        "kind": KIND,
        "id": {"type": id_type, "userId": user_id},
        "deletionRequestTime": deletion_request_time,
    });
    answer[*property_field] = json!(property_value);
    Json(answer).into_response()
}

/// The simulator's token endpoint and tokens (`token_url()`, `expire_tokens()`,
/// `tokens_issued()`), its address (`base_url()`) and its fault injection and call log
/// (`control()`).
impl std::ops::Deref for GoogleAnalyticsSim {
    type Target = GoogleApiSim;

    fn deref(&self) -> &GoogleApiSim {
        &self.google
    }
}
