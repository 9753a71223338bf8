//! The OpenAPI 3.1 documents of intake, the auditor and the deny-list stay true to the code:
//!
//! - each service serves its document at `GET /openapi.json` without credentials, and every
//!   `$ref` in it resolves;
//! - the routes the source registers (every `.route("<path>", <method>(` in the service's
//!   source folder and in the operations router, plus `/openapi.json`) are exactly the
//!   documented operations; each documented operation is answered by the real router (neither
//!   its 404 nor a 405), and every other method on a documented path is a 405;
//! - every error code a document lists is an `ApiError` code in the code, and every code the
//!   service's own modules answer with is documented.
//!
//! These need no broker. [`schemathesis`] then checks the running services' answers against
//! the documents (on the broker and registry, like every integration test).

mod schemathesis;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use hush_auditor::service::{Auditor, ProofSettings};
use hush_auditor::store::{AuditStore, AuditWriter, Position, WriteError};
use hush_auth::Authenticator;
use hush_contracts::events::AuditRecord;
use hush_runtime::ops::Readiness;
use hush_tests::auth::test_auth;
use hush_tests::pipeline::set_test_secrets;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// A file of the workspace.
fn source(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    // Unit tests build routes and errors of their own.
    match text.find("#[cfg(test)]") {
        Some(tests) => text[..tests].to_owned(),
        None => text,
    }
}

struct NoWrites;

#[async_trait]
impl AuditWriter for NoWrites {
    async fn write(&self, _: &AuditRecord) -> Result<Position, WriteError> {
        Err(WriteError("this test writes nothing".into()))
    }
}

/// One service: its router as served (API and operations routes) and its source folder: every
/// route registered there, and every code answered there, is the service's own.
struct Service {
    name: &'static str,
    router: Router,
    source_folder: &'static str,
    /// What a probe adds to every path (query parameters a route requires).
    query: &'static str,
}

/// The modules every authenticated service shares: the authenticator and the guards.
const AUTH_MODULES: [&str; 2] = [
    "crates/hush-auth/src/authenticator.rs",
    "crates/hush-auth/src/guard.rs",
];

async fn services() -> Vec<Service> {
    set_test_secrets();
    let shutdown = CancellationToken::new();
    let config = test_auth().config();
    let auth = Arc::new(Authenticator::new(&config, shutdown.clone()).await.unwrap());
    let ops = || hush_runtime::ops::router(Readiness::default());
    let intake = hush_intake::service::build(
        &hush_intake::service::Config {
            auth: config.clone(),
            ..Default::default()
        },
        shutdown.clone(),
    )
    .await
    .expect("intake builds without a broker");
    let store = Arc::new(AuditStore::default());
    store.mark_rebuilt();
    let recipients = vec![toml::from_str(
        "id = \"partner-webhook\"\nkind = \"webhook\"\nrole = \"THIRD_PARTY\"\n\
         base_url = \"http://127.0.0.1:9\"\n",
    )
    .unwrap()];
    let auditor = Arc::new(Auditor::new(
        store,
        Arc::new(NoWrites),
        Default::default(),
        recipients,
        ProofSettings::default(),
    ));
    let deny_list = Arc::new(hush_denylist::DenyList::new());
    deny_list.mark_rebuilt();
    vec![
        Service {
            name: "intake",
            router: hush_intake::api::router(intake).merge(ops()),
            source_folder: "services/intake/src",
            query: "",
        },
        Service {
            name: "auditor",
            router: hush_auditor::api::router(auditor, auth.clone()).merge(ops()),
            source_folder: "services/auditor/src",
            query: "",
        },
        Service {
            name: "deny-list",
            router: hush_denylist::api::router(
                deny_list,
                hush_denylist::api::ApiSettings {
                    max_body_bytes: 1 << 16,
                    vendors: ["clearbit".to_owned()].into(),
                },
                auth,
            )
            .merge(ops()),
            source_folder: "services/denylist/src",
            query: "?vendor=clearbit",
        },
    ]
}

async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    authorization: Option<&str>,
) -> (StatusCode, Vec<u8>) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from("{}")).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    (status, body.to_vec())
}

async fn document(service: &Service) -> Value {
    let (status, body) = call(&service.router, "GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK, "{}: /openapi.json", service.name);
    serde_json::from_slice(&body).expect("the document is JSON")
}

/// Every `"$ref"` value in `node`.
fn refs(node: &Value, found: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => found.push(target.clone()),
                    _ => refs(value, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
        _ => {}
    }
}

#[tokio::test]
async fn each_service_serves_its_openapi_3_1_document_without_credentials() {
    for service in services().await {
        let document = document(&service).await;
        assert_eq!(document["openapi"], "3.1.0", "{}", service.name);
        assert!(document["info"]["title"].is_string(), "{}", service.name);
        let mut targets = Vec::new();
        refs(&document, &mut targets);
        assert!(!targets.is_empty(), "{}", service.name);
        for target in targets {
            let pointer = target
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{}: external $ref {target}", service.name));
            assert!(
                document.pointer(pointer).is_some(),
                "{}: $ref {target} does not resolve",
                service.name
            );
        }
        for scheme in ["apiKey", "jwt", "basic"] {
            assert!(
                document["components"]["securitySchemes"][scheme].is_object(),
                "{}: security scheme {scheme}",
                service.name
            );
        }
    }
}

/// Every `(METHOD, path)` registered by `.route("<path>", <method>(` in `text`.
fn registered_routes(text: &str) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (at, _) in text.match_indices(".route(") {
        let rest = text[at + ".route(".len()..].trim_start();
        let Some(rest) = rest.strip_prefix('"') else {
            continue;
        };
        let (path, rest) = rest.split_once('"').expect("a closed path literal");
        let rest = rest
            .trim_start()
            .strip_prefix(',')
            .expect("a method router");
        let method: String = rest
            .trim_start()
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        routes.insert((method.to_ascii_uppercase(), path.to_owned()));
    }
    routes
}

#[tokio::test]
async fn the_routes_the_code_registers_are_exactly_the_documented_operations() {
    for service in services().await {
        let document = document(&service).await;
        let documented: BTreeSet<(String, String)> = hush_auth::openapi::operations(&document)
            .into_iter()
            .collect();
        let mut registered = BTreeSet::new();
        let mut serves_openapi = false;
        let mut route_modules = modules(service.source_folder);
        // The operations routes every service merges.
        route_modules.push("crates/hush-runtime/src/ops.rs".into());
        for module in &route_modules {
            let text = source(module);
            serves_openapi |= text.contains("hush_auth::openapi::router(OPENAPI)");
            registered.extend(registered_routes(&text));
        }
        assert!(serves_openapi, "{} merges the OpenAPI route", service.name);
        registered.insert(("GET".into(), hush_auth::openapi::PATH.into()));
        assert_eq!(
            registered, documented,
            "{}: routes in the code (left) and in the document (right) differ",
            service.name
        );
    }
}

/// `path` with each `{parameter}` replaced by a value the services accept the shape of.
fn concrete(path: &str) -> String {
    path.replace("{id}", "5a0e2c56-1f1c-4a55-9a43-3b0e63c2a0d1")
        .replace("{connector}", "partner-webhook")
        .replace("{connector_id}", "partner-webhook")
}

#[tokio::test]
async fn every_documented_operation_is_served_and_other_methods_are_refused() {
    let bearer = test_auth().bearer();
    for service in services().await {
        let document = document(&service).await;
        let operations = hush_auth::openapi::operations(&document);
        let paths: BTreeSet<&String> = operations.iter().map(|(_, path)| path).collect();
        for path in paths {
            let uri = format!("{}{}", concrete(path), service.query);
            for method in METHODS {
                let (status, body) = call(&service.router, method, &uri, Some(&bearer)).await;
                let documented = operations.contains(&(method.to_owned(), path.clone()));
                if documented {
                    // A handler's own 404 (e.g. request_not_found) is a JSON error; the
                    // router's is empty.
                    let routed_404 = status == StatusCode::NOT_FOUND
                        && serde_json::from_slice::<Value>(&body)
                            .is_ok_and(|v| v["error"].is_string());
                    assert!(
                        status != StatusCode::METHOD_NOT_ALLOWED
                            && (status != StatusCode::NOT_FOUND || routed_404),
                        "{}: documented {method} {path} answered {status}",
                        service.name
                    );
                } else {
                    assert_eq!(
                        status,
                        StatusCode::METHOD_NOT_ALLOWED,
                        "{}: undocumented {method} {path}",
                        service.name
                    );
                }
            }
        }
    }
}

/// The `.rs` files of `folder` (relative to the workspace).
fn modules(folder: &str) -> Vec<String> {
    let full = format!("{}/../{folder}", env!("CARGO_MANIFEST_DIR"));
    let mut found: Vec<String> = std::fs::read_dir(&full)
        .unwrap_or_else(|e| panic!("{full}: {e}"))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".rs"))
        .map(|name| format!("{folder}/{name}"))
        .collect();
    found.sort();
    found
}

/// The error codes `text` answers with: the code argument of every `ApiError::new(status,
/// "<code>", ...)` and `ApiError::invalid("<code>", ...)`, and the codes a `fn code(&self)`
/// maps to.
fn answered_codes(text: &str) -> BTreeSet<String> {
    let literal_at = |rest: &str| -> Option<String> {
        let rest = rest.trim_start().strip_prefix('"')?;
        let (code, _) = rest.split_once('"')?;
        Some(code.to_owned())
    };
    let mut codes = BTreeSet::new();
    for (at, _) in text.match_indices("ApiError::new(") {
        let rest = &text[at + "ApiError::new(".len()..];
        let (_status, rest) = rest.split_once(',').expect("ApiError::new has arguments");
        codes.extend(literal_at(rest));
    }
    for (at, _) in text.match_indices("ApiError::invalid(") {
        codes.extend(literal_at(&text[at + "ApiError::invalid(".len()..]));
    }
    for (at, _) in text.match_indices("fn code(&self) -> &'static str {") {
        let body = &text[at..];
        let body = &body[..body.find("\n    }\n").expect("the function ends")];
        for (arrow, _) in body.match_indices("=> ") {
            codes.extend(literal_at(&body[arrow + 3..]));
        }
    }
    codes
}

#[test]
fn the_code_reader_finds_literal_codes_and_skips_computed_ones() {
    let text = r#"
        ApiError::new(StatusCode::CONFLICT, refusal.code(), "x")
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("{inner}"),
        )
        ApiError::invalid("invalid_field", path, "m")
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::AlreadyExtended => "already_extended",
        }
    }
"#;
    assert_eq!(
        answered_codes(text),
        ["already_extended", "invalid_field", "malformed_json"]
            .map(String::from)
            .into()
    );
}

#[tokio::test]
async fn documented_error_codes_exist_in_the_code_and_the_codes_a_service_answers_are_documented() {
    let shared: BTreeSet<String> = AUTH_MODULES
        .iter()
        .flat_map(|module| answered_codes(&source(module)))
        .collect();
    for service in services().await {
        let document = document(&service).await;
        let own: BTreeSet<String> = modules(service.source_folder)
            .iter()
            .flat_map(|module| answered_codes(&source(module)))
            .collect();
        assert!(!own.is_empty(), "{}: no codes found", service.name);
        let mut documented = BTreeSet::new();
        for ((method, path), by_status) in hush_auth::openapi::error_codes(&document) {
            for (status, codes) in by_status {
                assert!(
                    (400..600).contains(&status),
                    "{}: {method} {path}: error schema on {status}",
                    service.name
                );
                for code in codes {
                    assert!(
                        own.contains(&code) || shared.contains(&code),
                        "{}: {method} {path} documents {status} `{code}`, which no code answers",
                        service.name
                    );
                    documented.insert(code);
                }
            }
        }
        let undocumented: Vec<&String> = own.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "{}: answered but not documented: {undocumented:?}",
            service.name
        );
    }
}

#[tokio::test]
async fn error_answers_are_documented_per_status() {
    // The answers schemathesis relies on: an authenticated route documents the refusals of the
    // authenticator, every route the guards' 429 and 503.
    let services = services().await;
    let auditor = services.iter().find(|s| s.name == "auditor").unwrap();
    let codes = hush_auth::openapi::error_codes(&document(auditor).await);
    let report = &codes[&("GET".to_owned(), "/v1/report".to_owned())];
    let expected: BTreeMap<u16, Vec<&str>> = [
        (
            400,
            vec![
                "invalid_query",
                "invalid_format",
                "invalid_date",
                "invalid_period",
            ],
        ),
        (
            401,
            vec!["unauthenticated", "invalid_credentials", "token_expired"],
        ),
        (403, vec!["insufficient_scope"]),
        (429, vec!["rate_limited"]),
        (503, vec!["not_ready", "request_timeout"]),
    ]
    .into();
    assert_eq!(
        report
            .iter()
            .map(|(s, c)| (*s, c.iter().map(String::as_str).collect::<Vec<_>>()))
            .collect::<BTreeMap<_, _>>(),
        expected
    );
    let callback = &codes[&("POST".to_owned(), "/v1/callbacks/{connector_id}".to_owned())];
    assert_eq!(
        callback[&401],
        ["invalid_signature"],
        "a public route answers only its own 401"
    );
}
