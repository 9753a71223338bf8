//! Simulator of The Trade Desk's advertiser deletion/opt-out call: test and demo
//! infrastructure, not The Trade Desk.
//!
//! It serves `POST /v3/data/deletion-optout/advertiser` on loopback (the path under the
//! `https://api.thetradedesk.com/v3` base) and checks what TTD checks: the `TTD-Auth` header
//! (403 otherwise), a JSON `AdvertiserDsrRequest` with no unknown field, the advertiser it was set
//! up for (400 "advertiser not configured" otherwise), `RequestType` (`OptOut` or `Deletion`),
//! `Items` (non-empty, at most [`contract::MAX_ITEMS`], each naming at least one id field of
//! [`contract::ID_FIELDS`]); a body over [`contract::MAX_BODY_BYTES`] is a 413. An id not in the
//! form TTD stores (a TDID or DAID that is not a GUID) comes back as a `FailedLines` entry with
//! `ErrorCode: InvalidUserId` and its 1-based `ItemNumber`, the rest being accepted. It records
//! each accepted request; `limit_requests` answers 429 without `Retry-After` once spent. Faults
//! and call records come from `hush-sim-kit`. Sources are listed in the crate README.

use std::io;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hush_sim_kit::{any_loopback_port, serve, RunningSim};
use serde_json::{json, Value};

/// TTD's side of the contract, kept apart from the connector's types.
pub mod contract {
    /// The call's path under the simulator's root (base URL `http://<sim>/v3`).
    pub const DSR_PATH: &str = "/v3/data/deletion-optout/advertiser";
    /// Fields of an `AdvertiserDsrRequest`.
    pub const REQUEST_FIELDS: &[&str] = &[
        "AdvertiserId",
        "DataProviderId",
        "Items",
        "DataLoadTraceId",
        "RequestType",
    ];
    /// Id fields of a `PartnerDsrDataItem`.
    pub const ID_FIELDS: &[&str] = &[
        "TDID",
        "DAID",
        "UID2",
        "UID2Token",
        "RampID",
        "CoreID",
        "EUID",
        "EUIDToken",
        "ID5",
        "NetID",
        "FirstID",
        "UtiqID",
        "MerkuryID",
        "IqviaPPID",
    ];
    /// Items per call the simulator accepts.
    pub const MAX_ITEMS: usize = 10_000;
    /// Largest body the simulator accepts (413 beyond).
    pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
}

/// What the simulated TTD account accepts.
#[derive(Debug, Clone)]
pub struct TradeDeskSimConfig {
    /// The advertiser id configured for data subject requests.
    pub advertiser_id: String,
    /// The API token it accepts in `TTD-Auth`.
    pub auth_token: String,
}

impl Default for TradeDeskSimConfig {
    fn default() -> Self {
        Self {
            advertiser_id: "hushdemo1".into(),
            auth_token: "sim-ttd-auth-token".into(),
        }
    }
}

/// One request the simulator accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedDsr {
    /// `OptOut` or `Deletion`.
    pub request_type: String,
    /// `DataLoadTraceId`, when sent.
    pub trace_id: Option<String>,
    /// The ids it took, as `(field, value)`.
    pub ids: Vec<(String, String)>,
}

struct Account {
    config: TradeDeskSimConfig,
    accepted: Vec<AcceptedDsr>,
    requests_left: Option<usize>,
}

type Shared = Arc<Mutex<Account>>;

/// A running simulator of one TTD advertiser's deletion/opt-out endpoint.
pub struct TradeDeskSim {
    running: RunningSim,
    account: Shared,
}

impl TradeDeskSim {
    /// Serves the simulated endpoint on a free loopback port.
    pub async fn start(config: TradeDeskSimConfig) -> io::Result<Self> {
        let account = Arc::new(Mutex::new(Account {
            config,
            accepted: Vec::new(),
            requests_left: None,
        }));
        let router = Router::new()
            .route(contract::DSR_PATH, post(deletion_optout))
            .with_state(account.clone());
        let running = serve(router, any_loopback_port()).await?;
        Ok(Self { running, account })
    }

    /// The recipient's `base_url`: the simulator's root with `/v3`.
    pub fn api_base_url(&self) -> String {
        format!("{}/v3", self.running.base_url())
    }

    /// Every request accepted so far, in order.
    pub fn accepted(&self) -> Vec<AcceptedDsr> {
        self.account.lock().unwrap().accepted.clone()
    }

    /// Accepts `calls` more calls, then answers 429 (no `Retry-After`) to every other.
    pub fn limit_requests(&self, calls: usize) {
        self.account.lock().unwrap().requests_left = Some(calls);
    }
}

fn bad_request(message: &str) -> Response {
    let body = json!({"FailedLines": [{"ErrorCode": "Unknown", "Message": message}]});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn is_guid(value: &str) -> bool {
    value.len() == 36
        && value.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

async fn deletion_optout(
    State(account): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut account = account.lock().unwrap();
    let token = headers.get("ttd-auth").and_then(|v| v.to_str().ok());
    if token != Some(account.config.auth_token.as_str()) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!(
                "Authentication failed: the TTD-Auth token is missing or not valid"
            )),
        )
            .into_response();
    }
    if let Some(left) = account.requests_left.as_mut() {
        if *left == 0 {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({"FailedLines": [{"ErrorCode": "Unknown", "Message": "Rate limit exceeded"}]})),
            )
                .into_response();
        }
        *left -= 1;
    }
    if body.len() > contract::MAX_BODY_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!("Request size exceeds the allowed limit")),
        )
            .into_response();
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("Invalid JSON");
    };
    if let Some(unknown) = request
        .keys()
        .find(|k| !contract::REQUEST_FIELDS.contains(&k.as_str()))
    {
        return bad_request(&format!("Unknown field {unknown}"));
    }
    if request.get("AdvertiserId").and_then(Value::as_str)
        != Some(account.config.advertiser_id.as_str())
    {
        return bad_request("Advertiser not configured for data subject requests");
    }
    let request_type = match request.get("RequestType").and_then(Value::as_str) {
        Some(t @ ("OptOut" | "Deletion")) => t.to_owned(),
        _ => return bad_request("RequestType must be OptOut or Deletion"),
    };
    let Some(items) = request
        .get("Items")
        .and_then(Value::as_array)
        .filter(|i| !i.is_empty())
    else {
        return bad_request("Missing items");
    };
    if items.len() > contract::MAX_ITEMS {
        return bad_request(&format!(
            "Too many items: {} (at most {})",
            items.len(),
            contract::MAX_ITEMS
        ));
    }
    let mut ids = Vec::new();
    let mut failed = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(fields) = item.as_object().filter(|f| !f.is_empty()) else {
            return bad_request(&format!("Item {} names no id", index + 1));
        };
        for (field, value) in fields {
            if !contract::ID_FIELDS.contains(&field.as_str()) {
                return bad_request(&format!("Item {}: unknown id type {field}", index + 1));
            }
            let value = value.as_str().unwrap_or_default();
            let valid = match field.as_str() {
                "TDID" | "DAID" => is_guid(value),
                _ => !value.is_empty(),
            };
            if valid {
                ids.push((field.clone(), value.to_owned()));
            } else {
                failed.push(json!({
                    "AdvertiserId": account.config.advertiser_id,
                    "ErrorCode": "InvalidUserId",
                    "Message": format!("{field} is not a valid user id"),
                    "ItemNumber": (index + 1).to_string(),
                }));
            }
        }
    }
    let trace_id = request
        .get("DataLoadTraceId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    account.accepted.push(AcceptedDsr {
        request_type,
        trace_id,
        ids,
    });
    let failed = if failed.is_empty() {
        Value::Null
    } else {
        Value::Array(failed)
    };
    Json(json!({ "FailedLines": failed })).into_response()
}

/// The simulator's address (`base_url()`) and its fault injection and call log
/// (`control()`).
impl std::ops::Deref for TradeDeskSim {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.running
    }
}
