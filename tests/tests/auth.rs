//! Authentication of every HTTP endpoint: intake, the auditor and the deny-list, each with API
//! keys and OIDC bearer tokens validated against a JWKS served over HTTP. Each endpoint refuses
//! a missing, malformed, forged, expired or wrong-audience token and a credential without its
//! scope; an anonymous GPC signal passes where the configuration allows it, an anonymous
//! deletion never does; and a server under `[http]` limits answers 429 with `Retry-After`.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use hush_auditor::service::{Auditor, ProofSettings};
use hush_auditor::store::{AuditStore, AuditWriter, Position, WriteError};
use hush_auth::config::{ApiKeyConfig, JwtConfig, KeySourceConfig};
use hush_auth::keys::{new_api_key, SigningKey};
use hush_auth::{AuthConfig, Authenticator, HttpConfig, Scope};
use hush_contracts::events::AuditRecord;
use hush_tests::pipeline::{free_addr, set_test_secrets};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const ISSUER: &str = "https://login.hush-tests.example/";
const AUDIENCE: &str = "hush-api";

struct NoWrites;

#[async_trait]
impl AuditWriter for NoWrites {
    async fn write(&self, _: &AuditRecord) -> Result<Position, WriteError> {
        Err(WriteError("this test writes nothing".into()))
    }
}

/// The identity provider: its signing key, and its JWKS served over HTTP.
async fn identity_provider(shutdown: &CancellationToken) -> (SigningKey, String) {
    let key = SigningKey::generate("idp-key-1");
    let jwks = key.jwks();
    let addr = free_addr();
    let app = Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    tokio::spawn(hush_runtime::ops::serve(
        addr.clone(),
        app,
        shutdown.clone(),
    ));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    (key, format!("http://{addr}/.well-known/jwks.json"))
}

fn token(key: &SigningKey, audience: &str, expires_in: i64, scope: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    key.sign(&json!({
        "iss": ISSUER, "aud": audience, "sub": "privacy-portal",
        "iat": now, "exp": now + expires_in, "scope": scope,
    }))
}

struct Services {
    routes: Vec<(&'static str, &'static str, Router, Scope, &'static str)>,
}

async fn services(config: &AuthConfig, shutdown: &CancellationToken) -> Services {
    set_test_secrets();
    let auth = Arc::new(Authenticator::new(config, shutdown.clone()).await.unwrap());
    let intake_config = hush_intake::service::Config {
        auth: config.clone(),
        ..Default::default()
    };
    let intake = hush_intake::service::build(&intake_config, shutdown.clone())
        .await
        .unwrap();
    let intake = hush_intake::api::router(intake);
    let store = Arc::new(AuditStore::default());
    store.mark_rebuilt();
    let auditor = Arc::new(Auditor::new(
        store,
        Arc::new(NoWrites),
        Default::default(),
        vec![],
        ProofSettings::default(),
    ));
    let auditor = hush_auditor::api::router(auditor, auth.clone());
    let deny_list = hush_denylist::api::router(
        Arc::new(hush_denylist::DenyList::new()),
        hush_denylist::api::ApiSettings {
            max_body_bytes: 1 << 16,
            vendors: ["clearbit".to_owned()].into(),
        },
        auth,
    );
    let id = "5a0e2c56-1f1c-4a55-9a43-3b0e63c2a0d1";
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    Services {
        routes: vec![
            (
                "POST",
                "/v1/requests",
                intake.clone(),
                Scope::RequestsDelete,
                r#"{"kind":"DELETE","identifiers":[]}"#,
            ),
            (
                "POST",
                "/v1/requests",
                intake.clone(),
                Scope::RequestsOptIn,
                r#"{"kind":"OPT_IN_SALE_SHARE","identifiers":[]}"#,
            ),
            ("GET", "/", auditor.clone(), Scope::AuditorRead, ""),
            ("GET", "/v1/report", auditor.clone(), Scope::AuditorRead, ""),
            (
                "GET",
                leak(format!("/v1/requests/{id}")),
                auditor.clone(),
                Scope::AuditorRead,
                "",
            ),
            (
                "POST",
                leak(format!("/v1/requests/{id}/denial")),
                auditor.clone(),
                Scope::AuditorAdmin,
                r#"{"reason":"x"}"#,
            ),
            (
                "POST",
                leak(format!("/v1/requests/{id}/extension")),
                auditor.clone(),
                Scope::AuditorAdmin,
                r#"{"reason":"x"}"#,
            ),
            (
                "POST",
                leak(format!("/v1/requests/{id}/recipients/crm/resolution")),
                auditor.clone(),
                Scope::AuditorAdmin,
                "{}",
            ),
            (
                "POST",
                leak(format!("/v1/requests/{id}/recipients/crm/retry")),
                auditor,
                Scope::AuditorAdmin,
                "{}",
            ),
            (
                "POST",
                "/v1/check?vendor=clearbit",
                deny_list.clone(),
                Scope::DenylistCheck,
                r#"{"identifiers":[]}"#,
            ),
            (
                "POST",
                "/v1/filter?vendor=clearbit",
                deny_list.clone(),
                Scope::DenylistCheck,
                r#"{"records":[]}"#,
            ),
            ("GET", "/v1/stats", deny_list, Scope::DenylistCheck, ""),
        ],
    }
}

async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    body: &str,
    authorization: Option<&str>,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn config(jwks_url: &str, reader_key_hash: &str) -> AuthConfig {
    AuthConfig {
        anonymous_scopes: vec![Scope::RequestsOptOut],
        api_keys: vec![ApiKeyConfig {
            client: "read-only".into(),
            sha256: reader_key_hash.into(),
            scopes: vec![Scope::AuditorRead],
        }],
        jwt: Some(JwtConfig {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            keys: KeySourceConfig {
                jwks_url: Some(jwks_url.into()),
                jwks_file: None,
                jwks_refresh_secs: 300,
            },
            leeway_secs: 5,
            scope_claim: "scope".into(),
            client_claim: "sub".into(),
            algorithms: vec![jsonwebtoken::Algorithm::EdDSA],
        }),
        attestation: None,
    }
}

#[tokio::test]
async fn every_endpoint_refuses_bad_tokens_and_missing_scopes() {
    let shutdown = CancellationToken::new();
    let (idp, jwks_url) = identity_provider(&shutdown).await;
    let reader = new_api_key();
    let services = services(&config(&jwks_url, &reader.sha256), &shutdown).await;
    let forger = SigningKey::generate("idp-key-1");
    for (method, uri, router, scope, body) in &services.routes {
        let what = format!("{method} {uri} ({scope})");
        let cases = [
            ("no credentials", None, "unauthenticated"),
            (
                "malformed token",
                Some("Bearer a.b.c".to_owned()),
                "invalid_credentials",
            ),
            (
                "forged token",
                Some(format!(
                    "Bearer {}",
                    token(&forger, AUDIENCE, 300, scope.as_str())
                )),
                "invalid_credentials",
            ),
            (
                "expired token",
                Some(format!(
                    "Bearer {}",
                    token(&idp, AUDIENCE, -600, scope.as_str())
                )),
                "token_expired",
            ),
            (
                "wrong audience",
                Some(format!(
                    "Bearer {}",
                    token(&idp, "another-api", 300, scope.as_str())
                )),
                "invalid_credentials",
            ),
            (
                "unknown key",
                Some("Bearer hush_sk_unknown".to_owned()),
                "invalid_credentials",
            ),
            (
                "wrong scheme",
                Some("Token abc".to_owned()),
                "invalid_credentials",
            ),
        ];
        for (case, authorization, code) in cases {
            // An anonymous caller may post an opt-out, so intake answers its deletion 401
            // only after reading the kind.
            let (status, answer) =
                call(router, method, uri, body, authorization.as_deref(), &[]).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}, {case}: {answer}");
            assert_eq!(answer["error"], code, "{what}, {case}: {answer}");
        }
        let wrong_scope = if *scope == Scope::RequestsOptOut {
            Scope::AuditorRead
        } else {
            Scope::RequestsOptOut
        };
        let (status, answer) = call(
            router,
            method,
            uri,
            body,
            Some(&format!(
                "Bearer {}",
                token(&idp, AUDIENCE, 300, wrong_scope.as_str())
            )),
            &[],
        )
        .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{what}, other scope: {answer}"
        );
        assert_eq!(answer["error"], "insufficient_scope", "{what}: {answer}");
        let (status, answer) = call(
            router,
            method,
            uri,
            body,
            Some(&format!(
                "Bearer {}",
                token(&idp, AUDIENCE, 300, scope.as_str())
            )),
            &[],
        )
        .await;
        assert!(
            status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            "{what}, right scope: {status} {answer}"
        );
    }
    // An API key is scoped the same way.
    let auditor = &services.routes[3].2;
    let bearer = format!("Bearer {}", reader.key);
    let (status, _) = call(auditor, "GET", "/v1/report", "", Some(&bearer), &[]).await;
    assert_eq!(status, StatusCode::OK);
    let id = "5a0e2c56-1f1c-4a55-9a43-3b0e63c2a0d1";
    let (status, answer) = call(
        auditor,
        "POST",
        &format!("/v1/requests/{id}/denial"),
        r#"{"reason":"x"}"#,
        Some(&bearer),
        &[],
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    shutdown.cancel();
}

#[tokio::test]
async fn an_anonymous_gpc_signal_passes_where_allowed_but_never_a_deletion() {
    let shutdown = CancellationToken::new();
    let (_, jwks_url) = identity_provider(&shutdown).await;
    let services = services(&config(&jwks_url, &"0".repeat(64)), &shutdown).await;
    let intake = &services.routes[0].2;
    // A browser without credentials: its GPC signal is read (422: it names no device).
    let (status, answer) = call(intake, "POST", "/v1/gpc", "{}", None, &[("sec-gpc", "1")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"], "missing_identifier");
    let (status, answer) = call(
        intake,
        "POST",
        "/v1/requests",
        r#"{"kind":"DELETE","identifiers":[{"type":"EMAIL","value":"a@b.co"}]}"#,
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");

    // Without anonymous scopes the same GPC signal needs a credential.
    let mut closed = config(&jwks_url, &"0".repeat(64));
    closed.anonymous_scopes.clear();
    let services = services_with(&closed, &shutdown).await;
    let (status, answer) = call(
        &services,
        "POST",
        "/v1/gpc",
        "{}",
        None,
        &[("sec-gpc", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    shutdown.cancel();
}

async fn services_with(config: &AuthConfig, shutdown: &CancellationToken) -> Router {
    services(config, shutdown).await.routes[0].2.clone()
}

#[tokio::test]
async fn a_server_over_its_rate_answers_429_with_retry_after() {
    let shutdown = CancellationToken::new();
    let limits = HttpConfig {
        per_ip_per_second: 1,
        per_ip_burst: 2,
        ..Default::default()
    };
    let app = hush_auth::guard::harden(
        Router::new().route("/ping", axum::routing::get(|| async { "pong" })),
        &limits,
    );
    let addr = free_addr();
    tokio::spawn(hush_runtime::ops::serve(
        addr.clone(),
        app,
        shutdown.clone(),
    ));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..4 {
        let response = http
            .get(format!("http://{addr}/ping"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        last = Some(response);
    }
    assert_eq!(statuses, vec![200, 200, 429, 429]);
    let last = last.unwrap();
    assert!(last.headers().get("retry-after").is_some());
    let answer: Value = last.json().await.unwrap();
    assert_eq!(answer["error"], "rate_limited");
    shutdown.cancel();
}
