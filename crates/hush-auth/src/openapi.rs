//! `GET /openapi.json`: each service's OpenAPI 3.1 document, completed with what every Hush
//! API shares.
//!
//! A service writes its own document (`services/<name>/openapi.json`: paths, bodies, answers)
//! and lists the error codes of each error answer as `"x-hush-errors": [...]`. [`complete`]
//! turns every such list into the shared error schema (`{"error","message","field"}`) with the
//! codes as an `enum`, adds the security schemes, and adds to every operation the answers of
//! the guards, taken from the guards' own code: `401` and `403` where the operation names a
//! scope, `429 rate_limited` and `503 request_timeout` everywhere ([`crate::guard::harden`]).
//! It also describes the routes every service shares: `GET /openapi.json` itself (behind the
//! guards), and `/healthz`, `/readyz`, `/metrics` ([`hush_runtime::ops::router`], served
//! outside them).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hush_runtime::api_error::ApiError;
use serde_json::{json, Map, Value};

use crate::authenticator::AuthError;
use crate::guard;
use crate::jwks::TokenError;
use crate::scope::Scope;

/// Where every service serves its document.
pub const PATH: &str = "/openapi.json";

/// The extension naming the error codes of an answer in a service's document.
const ERRORS: &str = "x-hush-errors";

/// Why a service's document cannot be completed.
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    /// The document is not JSON.
    #[error("the OpenAPI document is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The document is JSON but not shaped as Hush expects.
    #[error("the OpenAPI document is invalid at {at}: {problem}")]
    Shape {
        /// JSON path of the fault, e.g. `paths./v1/check.post.responses.400`.
        at: String,
        /// What is wrong.
        problem: String,
    },
}

fn shape(at: impl Into<String>, problem: impl Into<String>) -> OpenApiError {
    OpenApiError::Shape {
        at: at.into(),
        problem: problem.into(),
    }
}

/// The completed document of a service whose own document is `service` (see the module
/// documentation).
pub fn complete(service: &str) -> Result<Value, OpenApiError> {
    let mut document: Value = serde_json::from_str(service)?;
    let root = document
        .as_object_mut()
        .ok_or_else(|| shape("$", "not an object"))?;
    root.insert("openapi".into(), json!("3.1.0"));
    let components = root
        .entry("components")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| shape("components", "not an object"))?;
    let schemas = components
        .entry("schemas")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| shape("components.schemas", "not an object"))?;
    schemas.insert("Error".into(), error_schema());
    components.insert("securitySchemes".into(), security_schemes());
    let paths = root
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| shape("paths", "missing or not an object"))?;
    for (path, operation) in shared_paths() {
        if paths.insert(path.into(), operation).is_some() {
            return Err(shape(
                format!("paths.{path}"),
                "every service serves it: hush-auth describes it, leave it out",
            ));
        }
    }
    for (path, item) in paths.iter_mut() {
        let item = item
            .as_object_mut()
            .ok_or_else(|| shape(format!("paths.{path}"), "not an object"))?;
        for (method, operation) in item.iter_mut() {
            let at = format!("paths.{path}.{method}");
            complete_operation(operation, &at)?;
        }
    }
    if let Some(tags) = root.get_mut("tags").and_then(Value::as_array_mut) {
        tags.push(json!({
            "name": OPERATIONS_TAG,
            "description": "This document, health, readiness and metrics: every Hush service serves them."
        }));
    }
    Ok(document)
}

/// Tag of the routes every service shares.
const OPERATIONS_TAG: &str = "operations";

/// Marks an operation served outside [`crate::guard::harden`]: no 429 or 503 from the guards.
const UNGUARDED: &str = "x-hush-unguarded";

/// The routes every service serves besides its own.
fn shared_paths() -> [(&'static str, Value); 4] {
    let text = |description: &str| json!({"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}});
    let operation = |id: &str, summary: &str, responses: Value| {
        json!({"get": {
            "tags": [OPERATIONS_TAG], "operationId": id, "summary": summary, "security": [],
            UNGUARDED: true, "responses": responses
        }})
    };
    let document = json!({"get": {
        "tags": [OPERATIONS_TAG], "operationId": "openapi", "summary": "This document",
        "security": [],
        "responses": {"200": {
            "description": "The OpenAPI 3.1 document.",
            "content": {"application/json": {"schema": {"type": "object"}}}
        }}
    }});
    [
        (PATH, document),
        (
            "/healthz",
            operation("healthz", "Alive", json!({"200": text("`ok`.")})),
        ),
        (
            "/readyz",
            operation(
                "readyz",
                "Ready: every condition of the service holds (its consumers assigned, its \
                 state rebuilt)",
                json!({
                    "200": text("`ready`."),
                    "503": text("`not ready: ` and the unmet conditions.")
                }),
            ),
        ),
        (
            "/metrics",
            operation(
                "metrics",
                "Prometheus metrics",
                json!({"200": text("Prometheus text format.")}),
            ),
        ),
    ]
}

/// `GET /openapi.json` answering the completed document of `service` (public: it describes
/// the API, never its data).
///
/// # Panics
///
/// When `service` cannot be completed: services embed their document at build time and their
/// tests complete it, so a panic here is a build that was never tested.
pub fn router<S: Clone + Send + Sync + 'static>(service: &str) -> Router<S> {
    let document = Arc::new(complete(service).unwrap_or_else(|error| {
        panic!("the service's embedded OpenAPI document is broken: {error}")
    }));
    Router::new().route(
        PATH,
        get(move || {
            let document = document.clone();
            async move { Json(document.as_ref().clone()) }
        }),
    )
}

/// `{"error","message","field"}`: [`ApiError`] on the wire.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "Every error answer of Hush: a stable code, a message saying what to fix \
                        (never a raw identifier) and, when one is at fault, the path of the \
                        field or parameter.",
        "required": ["error", "message"],
        "additionalProperties": false,
        "properties": {
            "error": {"type": "string", "description": "Stable machine-readable code."},
            "message": {"type": "string", "description": "What is wrong and how to fix it."},
            "field": {
                "type": "string",
                "description": "Path of the field or parameter at fault, e.g. \
                                `identifiers[0].value`."
            }
        }
    })
}

fn security_schemes() -> Value {
    let scopes = Scope::ALL
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ");
    json!({
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": format!(
                "`Authorization: Bearer <API key>`: a key configured by its SHA-256 in \
                 `[[auth.api_keys]]`, holding the scopes listed there ({scopes})."
            )
        },
        "jwt": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "`Authorization: Bearer <JWT>` from the OIDC issuer of `[auth.jwt]`, \
                            checked against its JWKS (issuer, audience, expiry); scopes in the \
                            `scope` claim (or the one `scope_claim` names)."
        },
        "basic": {
            "type": "http",
            "scheme": "basic",
            "description": "For a browser's login prompt (the auditor's dashboard): any user \
                            name, an API key as the password."
        }
    })
}

/// Whether an operation requires credentials with a scope (its `security` names a scheme).
fn requires_scope(operation: &Map<String, Value>) -> bool {
    operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|alternatives| {
            alternatives
                .iter()
                .any(|a| a.as_object().is_some_and(|a| !a.is_empty()))
        })
}

/// The refusals of [`crate::Authenticator`] and [`crate::Caller::require`], each as answered.
fn authentication_refusals() -> Vec<ApiError> {
    [
        AuthError::Missing {
            needed: Scope::AuditorRead,
        },
        AuthError::Scheme,
        AuthError::UnknownKey,
        AuthError::NoIssuer,
        AuthError::Token(TokenError::Malformed),
        AuthError::Token(TokenError::Expired),
        AuthError::Scope {
            client: "client".into(),
            needed: Scope::AuditorRead,
        },
    ]
    .iter()
    .map(AuthError::to_api_error)
    .collect()
}

/// The guards' answers to any request: over the rate, and over the time limit.
fn guard_refusals() -> Vec<ApiError> {
    vec![
        guard::too_many_requests(1),
        guard::timed_out(Duration::from_secs(1)),
    ]
}

fn complete_operation(operation: &mut Value, at: &str) -> Result<(), OpenApiError> {
    let operation = operation
        .as_object_mut()
        .ok_or_else(|| shape(at, "not an object"))?;
    let unguarded = operation.remove(UNGUARDED).is_some();
    let mut shared = if unguarded {
        Vec::new()
    } else {
        guard_refusals()
    };
    if requires_scope(operation) {
        shared.extend(authentication_refusals());
    }
    let responses = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| shape(at, "no responses"))?;
    let mut by_status: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for refusal in &shared {
        by_status
            .entry(refusal.status().as_u16().to_string())
            .or_default()
            .push(refusal.error);
    }
    for (status, codes) in by_status {
        let response = responses
            .entry(status.clone())
            .or_insert_with(|| json!({"description": shared_description(&status), ERRORS: []}));
        let listed = response
            .get_mut(ERRORS)
            .and_then(Value::as_array_mut)
            .ok_or_else(|| {
                shape(
                    format!("{at}.responses.{status}"),
                    format!("the guards answer {status} here: list its codes in {ERRORS}"),
                )
            })?;
        for code in codes {
            if !listed.iter().any(|c| c == code) {
                listed.push(json!(code));
            }
        }
    }
    for (status, response) in responses.iter_mut() {
        expand_errors(response, &format!("{at}.responses.{status}"))?;
    }
    Ok(())
}

fn shared_description(status: &str) -> String {
    let reason = status
        .parse::<u16>()
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    format!("{reason} (answered by every Hush API; see the codes)")
}

/// Replaces a response's `x-hush-errors` by its JSON content: the error schema, `error` one of
/// the codes.
fn expand_errors(response: &mut Value, at: &str) -> Result<(), OpenApiError> {
    let Some(response) = response.as_object_mut() else {
        return Err(shape(at, "not an object"));
    };
    let Some(codes) = response.remove(ERRORS) else {
        return Ok(());
    };
    let codes: Vec<String> = serde_json::from_value(codes)
        .map_err(|_| shape(at, format!("{ERRORS} must list code strings")))?;
    if codes.is_empty() {
        return Err(shape(at, format!("{ERRORS} is empty")));
    }
    if response.contains_key("content") {
        return Err(shape(at, format!("both {ERRORS} and content")));
    }
    response.insert(
        "content".into(),
        json!({"application/json": {"schema": {"allOf": [
            {"$ref": "#/components/schemas/Error"},
            {"properties": {"error": {"enum": codes}}}
        ]}}}),
    );
    Ok(())
}

/// Every `(method, path)` a completed document describes, methods in upper case.
pub fn operations(document: &Value) -> Vec<(String, String)> {
    let mut operations = Vec::new();
    if let Some(paths) = document.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            if let Some(item) = item.as_object() {
                for method in item.keys() {
                    operations.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
    }
    operations.sort();
    operations
}

/// Every error code a completed document says `(method, path)` may answer with, by status.
pub fn error_codes(document: &Value) -> BTreeMap<(String, String), BTreeMap<u16, Vec<String>>> {
    let mut found = BTreeMap::new();
    for (method, path) in operations(document) {
        let responses = &document["paths"][&path][method.to_ascii_lowercase()]["responses"];
        let mut by_status = BTreeMap::new();
        for (status, response) in responses.as_object().into_iter().flatten() {
            let codes = &response["content"]["application/json"]["schema"]["allOf"][1]
                ["properties"]["error"]["enum"];
            if let (Ok(status), Some(codes)) = (status.parse::<u16>(), codes.as_array()) {
                by_status.insert(
                    status,
                    codes
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                );
            }
        }
        found.insert((method, path), by_status);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = r#"{
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/v1/things": {"post": {
                "security": [{"apiKey": ["denylist:check"]}],
                "responses": {
                    "200": {"description": "ok"},
                    "401": {"description": "its own", "x-hush-errors": ["bad_signature"]},
                    "422": {"description": "bad", "x-hush-errors": ["invalid_field"]}
                }
            }},
            "/public": {"get": {"responses": {"200": {"description": "ok"}}}}
        }
    }"#;

    #[test]
    fn an_operation_with_a_scope_documents_the_authentication_refusals() {
        let document = complete(SERVICE).unwrap();
        let codes = error_codes(&document);
        let things = &codes[&("POST".to_owned(), "/v1/things".to_owned())];
        assert_eq!(
            things[&401],
            [
                "bad_signature",
                "unauthenticated",
                "invalid_credentials",
                "token_expired"
            ]
        );
        assert_eq!(things[&403], ["insufficient_scope"]);
        assert_eq!(things[&422], ["invalid_field"]);
        assert_eq!(things[&429], ["rate_limited"]);
        assert_eq!(things[&503], ["request_timeout"]);
        let public = &codes[&("GET".to_owned(), "/public".to_owned())];
        assert!(
            !public.contains_key(&401),
            "a public route never answers 401"
        );
        assert_eq!(public[&429], ["rate_limited"]);
    }

    #[test]
    fn the_shared_routes_are_described_and_only_openapi_json_is_behind_the_guards() {
        let document = complete(SERVICE).unwrap();
        let codes = error_codes(&document);
        let get = |path: &str| codes[&("GET".to_owned(), path.to_owned())].clone();
        assert_eq!(get(PATH)[&429], ["rate_limited"]);
        for path in ["/healthz", "/readyz", "/metrics"] {
            assert!(get(path).is_empty(), "{path} is served outside the guards");
        }
        let readyz = &document["paths"]["/readyz"]["get"];
        assert!(readyz["responses"]["503"]["content"]["text/plain"].is_object());
        assert!(readyz.get(UNGUARDED).is_none(), "the marker is removed");
        let taken = SERVICE.replace("/public", "/healthz");
        assert!(matches!(
            complete(&taken),
            Err(OpenApiError::Shape { ref at, .. }) if at == "paths./healthz"
        ));
    }

    #[test]
    fn error_answers_use_the_shared_error_schema_and_the_schemes_are_declared() {
        let document = complete(SERVICE).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        let schema = &document["paths"]["/v1/things"]["post"]["responses"]["422"]["content"]
            ["application/json"]["schema"];
        assert_eq!(schema["allOf"][0]["$ref"], "#/components/schemas/Error");
        assert_eq!(
            document["components"]["schemas"]["Error"]["required"],
            json!(["error", "message"])
        );
        for scheme in ["apiKey", "jwt", "basic"] {
            assert!(
                document["components"]["securitySchemes"][scheme].is_object(),
                "{scheme}"
            );
        }
        assert!(
            !document.to_string().contains(ERRORS),
            "the extension is expanded away"
        );
    }

    #[test]
    fn an_error_answer_with_no_codes_or_a_broken_document_is_refused() {
        let empty = SERVICE.replace(r#"["invalid_field"]"#, "[]");
        assert!(matches!(
            complete(&empty),
            Err(OpenApiError::Shape { ref at, .. }) if at.ends_with("responses.422")
        ));
        assert!(matches!(complete("{"), Err(OpenApiError::Json(_))));
        assert!(complete(r#"{"info": {}}"#).is_err(), "no paths");
    }

    #[tokio::test]
    async fn the_document_is_served_at_openapi_json() {
        use tower::ServiceExt;
        let router: Router = router(SERVICE);
        let response = router
            .oneshot(
                axum::http::Request::get(PATH)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let served: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(served, complete(SERVICE).unwrap());
    }
}
