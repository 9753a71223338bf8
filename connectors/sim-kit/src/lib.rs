//! Test and demo infrastructure shared by the vendor API simulators: every simulator records the
//! calls it receives, can be told to answer with errors or to hang, and serves on loopback.
//! Nothing here talks to a real vendor.

pub mod google_api;
pub mod google_oauth;
pub mod jwt;
pub mod request;
pub mod stateful;
pub mod table;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hush_connector_kit::testing::{InjectFaults, VendorFault};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// An answer the simulator gives instead of the vendor's normal one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and body; `retry_after` sets the `Retry-After` header (seconds).
    Status {
        /// HTTP status.
        status: u16,
        /// `Retry-After` seconds, if any.
        retry_after: Option<u64>,
        /// Body text.
        body: String,
    },
    /// Wait this long before answering normally (or never answer, for a hang longer than the
    /// client's timeout).
    Delay(Duration),
}

impl Fault {
    /// `429 Too Many Requests` with `Retry-After: seconds`.
    pub fn too_many_requests(seconds: u64) -> Self {
        Fault::Status {
            status: 429,
            retry_after: Some(seconds),
            body: r#"{"message":"rate limit exceeded"}"#.into(),
        }
    }

    /// An answer with `status` and `body` and no `Retry-After`.
    pub fn answer(status: u16, body: &str) -> Self {
        Fault::Status {
            status,
            retry_after: None,
            body: body.into(),
        }
    }

    /// `500 Internal Server Error`.
    pub fn server_error() -> Self {
        Fault::Status {
            status: 500,
            retry_after: None,
            body: r#"{"message":"internal error"}"#.into(),
        }
    }
}

impl From<VendorFault> for Fault {
    fn from(fault: VendorFault) -> Self {
        match fault {
            VendorFault::TooManyRequests(seconds) => Fault::too_many_requests(seconds),
            VendorFault::ServerError => Fault::server_error(),
            VendorFault::Hang(duration) => Fault::Delay(duration),
        }
    }
}

/// One call the simulator received.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// HTTP method.
    pub method: Method,
    /// Path and query, e.g. `/crm/objects/2026-09/contacts/123?idProperty=email`.
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Body parsed as JSON (`Null` when empty or not JSON).
    pub json: serde_json::Value,
    /// Raw body bytes.
    pub body: Vec<u8>,
    /// Status the simulator answered with.
    pub status: u16,
}

impl RecordedCall {
    /// A header value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct Faults {
    /// Faults for the next calls whose path contains the given text, served before `queued`.
    for_path: VecDeque<(String, Fault)>,
    queued: VecDeque<Fault>,
    always: Option<Fault>,
}

impl InjectFaults for SimControl {
    fn fail_next(&self, fault: VendorFault) {
        self.inject(fault.into());
    }
}

/// Shared fault plan and call log of one simulator; cheap to clone.
#[derive(Clone, Default)]
pub struct SimControl {
    faults: Arc<Mutex<Faults>>,
    calls: Arc<Mutex<Vec<RecordedCall>>>,
}

impl SimControl {
    /// Answers the next call with `fault` (faults queue up in order).
    pub fn inject(&self, fault: Fault) {
        self.faults.lock().unwrap().queued.push_back(fault);
    }

    /// Answers the next call whose path contains `path_part` with `fault`, whatever other
    /// calls come first (such faults queue up in order, and come before [`SimControl::inject`]'s).
    pub fn inject_for(&self, path_part: &str, fault: Fault) {
        self.faults
            .lock()
            .unwrap()
            .for_path
            .push_back((path_part.to_owned(), fault));
    }

    /// Answers every call with `fault` until [`SimControl::heal`].
    pub fn fail_always(&self, fault: Fault) {
        self.faults.lock().unwrap().always = Some(fault);
    }

    /// Clears every fault.
    pub fn heal(&self) {
        let mut faults = self.faults.lock().unwrap();
        faults.for_path.clear();
        faults.queued.clear();
        faults.always = None;
    }

    /// Every call received so far, in order (faulted ones included).
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.calls.lock().unwrap().clone()
    }

    /// Calls whose path starts with `prefix`.
    pub fn calls_to(&self, prefix: &str) -> Vec<RecordedCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.path.starts_with(prefix))
            .collect()
    }

    fn next_fault(&self, path: &str) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap();
        if let Some(index) = faults
            .for_path
            .iter()
            .position(|(part, _)| path.contains(part.as_str()))
        {
            return faults.for_path.remove(index).map(|(_, fault)| fault);
        }
        faults.queued.pop_front().or_else(|| faults.always.clone())
    }
}

/// Maximum request body a simulator accepts (bigger than any vendor's limit).
const MAX_SIM_BODY: usize = 64 * 1024 * 1024;

async fn record_and_inject(
    State(control): State<SimControl>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_SIM_BODY).await.unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut call = RecordedCall {
        method: parts.method.clone(),
        path,
        headers: parts.headers.clone(),
        json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        body: bytes.to_vec(),
        status: 0,
    };
    let response = match control.next_fault(&call.path) {
        Some(Fault::Status {
            status,
            retry_after,
            body,
        }) => {
            let mut response = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body,
            )
                .into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from(seconds));
            }
            response
        }
        Some(Fault::Delay(wait)) => {
            tokio::time::sleep(wait).await;
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        None => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    };
    call.status = response.status().as_u16();
    control.calls.lock().unwrap().push(call);
    response
}

/// A simulator serving on loopback; stops when dropped.
pub struct RunningSim {
    /// Address it listens on.
    pub addr: SocketAddr,
    /// Fault plan and call log.
    pub control: SimControl,
    task: JoinHandle<()>,
}

impl RunningSim {
    /// `http://127.0.0.1:<port>`: the `base_url` of a recipient pointed at the simulator.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Fault injection and the record of every call received.
    pub fn control(&self) -> &SimControl {
        &self.control
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on `addr` (use port 0 for any free port) with call recording and fault
/// injection in front of it.
pub async fn serve(router: Router, addr: SocketAddr) -> std::io::Result<RunningSim> {
    let control = SimControl::default();
    let app = router.layer(middleware::from_fn_with_state(
        control.clone(),
        record_and_inject,
    ));
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(RunningSim {
        addr,
        control,
        task,
    })
}

/// Sends each case's JSON body with `request` (the simulator's URL and credentials, no body
/// yet) and panics unless every answer has `status` and a JSON error that `check` accepts for
/// the case's expectation: how a contract test shows that a simulator refuses malformed
/// requests the way its vendor documents.
pub async fn assert_each_refused(
    request: impl Fn() -> reqwest::RequestBuilder,
    status: u16,
    cases: &[(serde_json::Value, &str)],
    check: impl Fn(&serde_json::Value, &str) -> bool,
) {
    for (body, expected) in cases {
        let answer = request()
            .json(body)
            .send()
            .await
            .expect("the simulator answers");
        assert_eq!(answer.status().as_u16(), status, "{body}");
        let error: serde_json::Value = answer.json().await.expect("a JSON error");
        assert!(
            check(&error, expected),
            "{body} is refused with {expected:?}, got {error}"
        );
    }
}

/// `127.0.0.1:0`: any free loopback port.
pub fn any_loopback_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;

    #[tokio::test]
    async fn faults_are_served_in_order_then_normal_answers_resume() {
        let router = Router::new().route("/x", post(|| async { "ok" }));
        let sim = serve(router, any_loopback_port()).await.unwrap();
        sim.control.inject(Fault::too_many_requests(3));
        let client = reqwest_like_post(&sim.base_url()).await;
        assert_eq!(client, (429, Some("3".into())));
        assert_eq!(reqwest_like_post(&sim.base_url()).await, (200, None));
        let calls = sim.control.calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].status, 429);
        assert_eq!(calls[1].json, serde_json::json!({"a": 1}));
    }

    #[tokio::test]
    async fn a_fault_for_a_path_waits_for_a_call_to_that_path() {
        let router = Router::new()
            .route("/x", post(|| async { "ok" }))
            .route("/batch/read", post(|| async { "ok" }));
        let sim = serve(router, any_loopback_port()).await.unwrap();
        sim.control.inject_for("/batch/read", Fault::server_error());
        assert_eq!(reqwest_like_post(&sim.base_url()).await.0, 200);
        assert_eq!(post_to(&sim.base_url(), "/batch/read").await.0, 500);
        assert_eq!(post_to(&sim.base_url(), "/batch/read").await.0, 200);
    }

    #[tokio::test]
    async fn each_refusal_is_checked_against_its_own_expectation() {
        let router = Router::new().route(
            "/x",
            post(|body: String| async move {
                (
                    axum::http::StatusCode::BAD_REQUEST,
                    serde_json::json!({"error": format!("bad {body}")}).to_string(),
                )
            }),
        );
        let sim = serve(router, any_loopback_port()).await.unwrap();
        let url = format!("{}/x", sim.base_url());
        let http = reqwest::Client::new();
        let says = |error: &serde_json::Value, text: &str| {
            error["error"].as_str().is_some_and(|e| e.contains(text))
        };
        let cases = [
            (serde_json::json!({"a": 1}), "bad {\"a\":1}"),
            (serde_json::json!([2]), "bad [2]"),
        ];
        assert_each_refused(|| http.post(&url), 400, &cases, says).await;
        let wrong = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let cases = [(serde_json::json!(1), "bad 2")];
            assert_each_refused(|| http.post(&url), 400, &cases, says).await;
        });
        assert!(wrong.await.is_err(), "an unexpected error text fails");
    }

    /// Minimal HTTP/1.1 POST over a raw socket, so the kit needs no HTTP client dependency.
    async fn reqwest_like_post(base: &str) -> (u16, Option<String>) {
        post_to(base, "/x").await
    }

    /// [`reqwest_like_post`] to `path`.
    async fn post_to(base: &str, path: &str) -> (u16, Option<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let body = r#"{"a":1}"#;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response[9..12].parse().unwrap();
        let retry_after = response
            .lines()
            .find_map(|l| l.strip_prefix("retry-after: "))
            .map(|v| v.trim().to_owned());
        (status, retry_after)
    }
}
