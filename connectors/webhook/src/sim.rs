//! A simulated webhook recipient: test and demo infrastructure, never a real third party.
//!
//! It behaves the way the notice contract asks a recipient to: it refuses a notice whose
//! signature or timestamp does not check out with the configured secret (401), requires the
//! `Idempotency-Key` header (400), refuses a body that is not a notice or carries an unhashed
//! identifier (400), and deduplicates by idempotency key: a repeat gets the first answer again
//! and is not counted as a new notice. On request it posts a signed callback to the notice's
//! `callback_url`. Fault injection and call recording come from `hush-sim-kit`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use hush_contracts::identifiers::is_sha256_hex;
use hush_sim_kit::{any_loopback_port, serve, RunningSim};
use serde_json::json;

pub use self::contract::{Notice, NoticeIdentifier};

/// The notice as the crate README documents it to recipients, kept here rather than taken from
/// the connector, so that a field the connector renames or drops fails here.
pub mod contract {
    use hush_contracts::events::{Category, IdentifierType, RequestKind};
    use serde::Deserialize;

    /// The JSON body of a notice, as documented in "The notice".
    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Notice {
        /// Stable id of the notice for one request to one recipient.
        pub notice_id: String,
        /// The request id; equals the `Idempotency-Key` header.
        pub request_id: String,
        /// The recipient's id, echoed in its callback.
        pub connector_id: String,
        /// Right exercised.
        pub kind: RequestKind,
        /// ISO 3166-2 jurisdiction.
        pub jurisdiction: String,
        /// Receipt of the request, RFC 3339.
        pub received_at: String,
        /// Hashed identifiers.
        pub identifiers: Vec<NoticeIdentifier>,
        /// Categories the request covers.
        pub categories: Vec<Category>,
        /// What the recipient must do.
        pub instruction: String,
        /// Where to post the signed callback, when there is one.
        #[serde(default)]
        pub callback_url: Option<String>,
    }

    /// One identifier of a notice: `{"type": ..., "sha256": ...}`.
    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct NoticeIdentifier {
        /// Kind of identifier.
        #[serde(rename = "type")]
        pub kind: IdentifierType,
        /// Lowercase hex SHA-256 of the normalised value.
        pub sha256: String,
    }
}
use hush_contracts::callback::RecipientCallback;
use hush_contracts::signature::{
    sign, verify_signature, DEFAULT_TOLERANCE, IDEMPOTENCY_HEADER, SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
};

/// Why the simulator could not send a callback.
#[derive(Debug, thiserror::Error)]
pub enum SimCallbackError {
    /// No notice with this request id was received.
    #[error("the simulator received no notice for request {0}")]
    UnknownRequest(String),
    /// The notice for this request carried no `callback_url`.
    #[error("the notice for request {0} has no callback_url")]
    NoCallbackUrl(String),
    /// The callback could not be delivered.
    #[error("callback could not be delivered: {0}")]
    Http(#[from] reqwest::Error),
}

struct SimState {
    secret: String,
    tolerance: Duration,
    received: Mutex<Received>,
}

#[derive(Default)]
struct Received {
    notices: Vec<Notice>,
    answers: HashMap<String, serde_json::Value>,
}

/// A simulated webhook recipient serving on loopback; stops when dropped.
pub struct WebhookSimulator {
    running: RunningSim,
    state: Arc<SimState>,
    http: reqwest::Client,
}

impl WebhookSimulator {
    /// Starts a recipient on any free loopback port, accepting notices at `path` signed with
    /// `secret`.
    pub async fn start(secret: &str, path: &str) -> std::io::Result<Self> {
        Self::start_on(any_loopback_port(), secret, path).await
    }

    /// Starts a recipient on `addr` (for the demo stack).
    pub async fn start_on(addr: SocketAddr, secret: &str, path: &str) -> std::io::Result<Self> {
        let state = Arc::new(SimState {
            secret: secret.to_owned(),
            tolerance: DEFAULT_TOLERANCE,
            received: Mutex::new(Received::default()),
        });
        let router = Router::new()
            .route(path, post(receive_notice))
            .with_state(state.clone());
        let running = serve(router, addr).await?;
        Ok(Self {
            running,
            state,
            http: reqwest::Client::new(),
        })
    }

    /// Distinct notices accepted, in arrival order (a repeated idempotency key is not counted).
    pub fn notices(&self) -> Vec<Notice> {
        self.state.received.lock().unwrap().notices.clone()
    }

    /// Posts `callback`, signed now with the simulator's secret, to the `callback_url` of the
    /// notice received for `callback.request_id`; returns the HTTP status the callback got.
    pub async fn send_callback(
        &self,
        callback: &RecipientCallback,
    ) -> Result<u16, SimCallbackError> {
        let url = {
            let received = self.state.received.lock().unwrap();
            let notice = received
                .notices
                .iter()
                .find(|n| n.request_id == callback.request_id)
                .ok_or_else(|| SimCallbackError::UnknownRequest(callback.request_id.clone()))?;
            notice
                .callback_url
                .clone()
                .ok_or_else(|| SimCallbackError::NoCallbackUrl(callback.request_id.clone()))?
        };
        let body = serde_json::to_vec(callback).expect("a callback always encodes");
        let timestamp = Utc::now().timestamp();
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, sign(&self.state.secret, timestamp, &body))
            .body(body)
            .send()
            .await?;
        Ok(response.status().as_u16())
    }
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn receive_notice(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (Some(timestamp), Some(signature)) = (
        header(&headers, TIMESTAMP_HEADER),
        header(&headers, SIGNATURE_HEADER),
    ) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            format!("{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required"),
        );
    };
    if let Err(error) = verify_signature(
        &state.secret,
        timestamp,
        &body,
        signature,
        Utc::now().timestamp(),
        state.tolerance,
    ) {
        return refuse(StatusCode::UNAUTHORIZED, error.to_string());
    }
    let Some(key) = header(&headers, IDEMPOTENCY_HEADER).filter(|k| !k.trim().is_empty()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("{IDEMPOTENCY_HEADER} is required"),
        );
    };
    if !header(&headers, "content-type").is_some_and(|t| t.starts_with("application/json")) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "notices must be application/json",
        );
    }
    let mut received = state.received.lock().unwrap();
    if let Some(answer) = received.answers.get(key) {
        return (StatusCode::OK, axum::Json(answer.clone())).into_response();
    }
    let notice: Notice = match serde_json::from_slice(&body) {
        Ok(notice) => notice,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, format!("not a notice: {error}")),
    };
    if notice.request_id != key {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("{IDEMPOTENCY_HEADER} must be the notice's request_id"),
        );
    }
    if let Some(bad) = notice
        .identifiers
        .iter()
        .find(|i| !is_sha256_hex(&i.sha256))
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "identifier of type {:?} is not a lowercase SHA-256 hex digest",
                bad.kind
            ),
        );
    }
    let answer = json!({ "received": true, "notice_id": notice.notice_id });
    received.answers.insert(key.to_owned(), answer.clone());
    received.notices.push(notice);
    (StatusCode::OK, axum::Json(answer)).into_response()
}

/// The simulator's address (`base_url()`) and its fault injection and call log
/// (`control()`).
impl std::ops::Deref for WebhookSimulator {
    type Target = RunningSim;

    fn deref(&self) -> &RunningSim {
        &self.running
    }
}
