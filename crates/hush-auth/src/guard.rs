//! axum layers guarding Hush's HTTP servers: scopes, CSRF on admin writes, per-request time
//! limits and per-IP / per-client rate limits. Every refusal is Hush's JSON error.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hush_runtime::api_error::ApiError;
use sha2::{Digest, Sha256};
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};

use crate::authenticator::{AuthError, Authenticator};
use crate::config::HttpConfig;
use crate::scope::Scope;

/// The authentication refusal as a response, with `WWW-Authenticate` on a 401.
pub fn refusal(error: &AuthError) -> Response {
    let api_error = error.to_api_error();
    let unauthorized = api_error.status() == StatusCode::UNAUTHORIZED;
    let mut response = api_error.into_response();
    if unauthorized {
        response.headers_mut().append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"hush\""),
        );
        response.headers_mut().append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"hush\", charset=\"UTF-8\""),
        );
    }
    response
}

/// Every route of `router` requires `scope`; the [`crate::Caller`] is put in the request's
/// extensions for the handler (e.g. to record the actor).
pub fn require<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    auth: Arc<Authenticator>,
    scope: Scope,
) -> Router<S> {
    router.route_layer(middleware::from_fn_with_state(
        (auth, Some(scope)),
        authenticate,
    ))
}

/// Every route of `router` identifies its caller (anonymous without credentials) and puts the
/// [`crate::Caller`] in the request's extensions; the handler decides which scope it needs.
/// Invalid credentials are refused here.
pub fn identify<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    auth: Arc<Authenticator>,
) -> Router<S> {
    router.route_layer(middleware::from_fn_with_state((auth, None), authenticate))
}

async fn authenticate(
    State((auth, scope)): State<(Arc<Authenticator>, Option<Scope>)>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match auth.authenticate(request.headers()) {
        Ok(caller) => caller,
        Err(error) => return refusal(&error),
    };
    if let Some(scope) = scope {
        if let Err(error) = caller.require(scope) {
            return refusal(&error);
        }
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// Refuses a write from another site: the body must be `application/json` (a cross-site form
/// can only send `text/plain`, urlencoded or multipart without a preflight), `Sec-Fetch-Site`
/// must not be `cross-site`, and an `Origin` must match the `Host` the request was sent to.
pub fn same_origin_json<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.route_layer(middleware::from_fn(refuse_cross_site))
}

async fn refuse_cross_site(request: Request, next: Next) -> Response {
    if let Err(error) = check_same_origin_json(request.headers()) {
        return error.into_response();
    }
    next.run(request).await
}

fn check_same_origin_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let content_type = text(header::CONTENT_TYPE).unwrap_or_default();
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media_type != "application/json" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ));
    }
    if text(axum::http::HeaderName::from_static("sec-fetch-site")) == Some("cross-site") {
        return Err(cross_origin());
    }
    if let Some(origin) = text(header::ORIGIN) {
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(origin);
        if Some(origin_host) != text(header::HOST) {
            return Err(cross_origin());
        }
    }
    Ok(())
}

fn cross_origin() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "cross_origin_refused",
        "this change must come from the auditor's own origin, not another site",
    )
}

/// Applies `[http]` to a whole server: each request is bounded by `request_timeout_ms`
/// (503 `request_timeout`), each IP and each credential by its rate (429 `rate_limited` with
/// `Retry-After`). Serve the router with `into_make_service_with_connect_info::<SocketAddr>()`
/// for per-IP limits ([`hush_runtime::ops::serve`] does).
pub fn harden(router: Router, http: &HttpConfig) -> Router {
    let timeout = Duration::from_millis(http.request_timeout_ms);
    let per_ip = GovernorConfigBuilder::default()
        .period(per_request(http.per_ip_per_second))
        .burst_size(http.per_ip_burst)
        .key_extractor(ClientIp {
            trust_forwarded_for: http.trust_forwarded_for,
        })
        .finish()
        .expect("validated rates are positive");
    let per_client = GovernorConfigBuilder::default()
        .period(per_request(http.per_client_per_second))
        .burst_size(http.per_client_burst)
        .key_extractor(ClientCredential)
        .finish()
        .expect("validated rates are positive");
    let (ip_buckets, client_buckets) = (per_ip.limiter().clone(), per_client.limiter().clone());
    forget_idle(move || {
        ip_buckets.retain_recent();
        client_buckets.retain_recent();
    });
    router
        .layer(GovernorLayer::new(per_client).error_handler(rate_limited))
        .layer(GovernorLayer::new(per_ip).error_handler(rate_limited))
        .layer(middleware::from_fn_with_state(timeout, bounded))
}

fn per_request(per_second: u32) -> Duration {
    Duration::from_nanos(1_000_000_000 / u64::from(per_second.max(1)))
}

/// Drops, every minute, the buckets of keys not seen lately, so many distinct callers cannot
/// grow memory.
fn forget_idle(sweep: impl Fn() + Send + 'static) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            sweep();
        }
    });
}

fn rate_limited(error: GovernorError) -> Response<Body> {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests; retry in {} s", wait_time.max(1)),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait_time.max(1)));
            response
        }
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "rate_limit_error",
            other.to_string(),
        )
        .into_response(),
    }
}

async fn bounded(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            format!("the request took longer than {} ms", timeout.as_millis()),
        )
        .into_response(),
    }
}

/// Keys a request by its client IP: the peer address, or the first `X-Forwarded-For` hop
/// behind a trusted ingress.
#[derive(Debug, Clone, Copy)]
struct ClientIp {
    trust_forwarded_for: bool,
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<T>(&self, request: &axum::http::Request<T>) -> Result<IpAddr, GovernorError> {
        let forwarded = self
            .trust_forwarded_for
            .then(|| {
                request
                    .headers()
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(',').next())
                    .and_then(|v| v.trim().parse().ok())
            })
            .flatten();
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(forwarded
            .or(peer)
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
    }
}

/// Keys a request by a digest of its credential; callers without one share one bucket.
#[derive(Debug, Clone, Copy)]
struct ClientCredential;

impl KeyExtractor for ClientCredential {
    type Key = [u8; 16];

    fn extract<T>(&self, request: &axum::http::Request<T>) -> Result<[u8; 16], GovernorError> {
        let credential = request
            .headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        let digest = Sha256::digest(credential);
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    axum::http::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn a_cross_site_form_post_is_refused() {
        let form = headers(&[("content-type", "text/plain"), ("host", "auditor:8072")]);
        assert_eq!(
            check_same_origin_json(&form).unwrap_err().error,
            "unsupported_media_type"
        );
        let fetch = headers(&[
            ("content-type", "application/json"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert_eq!(
            check_same_origin_json(&fetch).unwrap_err().error,
            "cross_origin_refused"
        );
        let other_origin = headers(&[
            ("content-type", "application/json"),
            ("host", "auditor:8072"),
            ("origin", "https://evil.example"),
        ]);
        assert_eq!(
            check_same_origin_json(&other_origin).unwrap_err().error,
            "cross_origin_refused"
        );
    }

    #[test]
    fn a_same_origin_or_non_browser_json_post_passes() {
        let same = headers(&[
            ("content-type", "application/json; charset=utf-8"),
            ("host", "auditor:8072"),
            ("origin", "http://auditor:8072"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(check_same_origin_json(&same).is_ok());
        let curl = headers(&[("content-type", "application/json")]);
        assert!(check_same_origin_json(&curl).is_ok());
    }
}
