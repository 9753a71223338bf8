//! The deny-list's HTTP API, for enrichment jobs that are not written in Rust:
//! `POST /v1/check?vendor=<name>`, `POST /v1/filter?vendor=<name>`, `GET /v1/stats`, and
//! `GET /openapi.json` (public) describing them.
//! Every route needs the `denylist:check` scope; `vendor` must be a configured enrichment
//! vendor. Raw identifier values are hashed on arrival and never logged or answered, and an
//! answer says only whether each identifier is denied and why, never which request did it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use hush_auth::{guard, Authenticator, Scope};
use hush_contracts::events::IdentifierType;
use hush_runtime::api_error::ApiError;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::denylist::{
    validate_vendor, CheckError, Decision, DenyList, EnrichmentRecord, Filtered, IdentifierValue,
    Lookup, Stats,
};

/// Default largest request body, in bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most identifiers one `check` may carry.
pub const MAX_CHECK_IDENTIFIERS: usize = 1_000;
/// Most records one `filter` may carry.
pub const MAX_FILTER_RECORDS: usize = 1_000;

/// What the API accepts.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Vendor names a caller may name (they become metric labels).
    pub vendors: BTreeSet<String>,
}

struct Api {
    deny_list: Arc<DenyList>,
    settings: ApiSettings,
}

/// The routes of the deny-list API over `deny_list` (the operations routes are merged by the
/// caller), for callers holding `denylist:check`; `/openapi.json` is public.
pub fn router(deny_list: Arc<DenyList>, settings: ApiSettings, auth: Arc<Authenticator>) -> Router {
    let routes = Router::new()
        .route("/v1/check", post(check))
        .route("/v1/filter", post(filter))
        .route("/v1/stats", get(stats));
    guard::require(routes, auth, Scope::DenylistCheck)
        .with_state(Arc::new(Api {
            deny_list,
            settings,
        }))
        .merge(hush_auth::openapi::router(OPENAPI))
}

/// The deny-list's OpenAPI 3.1 document as written; served completed at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// One identifier on the wire: `{"type":"EMAIL","value":"Jane@X.com"}` or
/// `{"type":"EMAIL","sha256":"<64 hex>"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIdentifier {
    #[serde(rename = "type")]
    kind: IdentifierType,
    value: Option<String>,
    sha256: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckBody {
    #[serde(default)]
    identifiers: Vec<WireIdentifier>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRecord {
    id: String,
    #[serde(default)]
    identifiers: Vec<WireIdentifier>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterBody {
    #[serde(default)]
    records: Vec<WireRecord>,
}

/// Why the caller asks: a lookup about to be made at the vendor (counted), or a verification
/// that a suppression is in force (not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Lookup,
    Verification,
}

async fn check(
    State(api): State<Arc<Api>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Decision>, ApiError> {
    let vendor = vendor_of(&api, &query)?;
    let purpose = purpose_of(&query)?;
    let body: CheckBody = read_json(&api, &headers, body).await?;
    at_most(body.identifiers.len(), MAX_CHECK_IDENTIFIERS, "identifiers")?;
    let identifiers = lookups(body.identifiers, "identifiers")?;
    let decision = match purpose {
        Purpose::Lookup => api.deny_list.screen(vendor, &identifiers)?,
        Purpose::Verification => api.deny_list.check(&identifiers)?,
    };
    tracing::debug!(
        vendor,
        ?purpose,
        identifiers = identifiers.len(),
        denied = decision.denied.len(),
        "deny-list check"
    );
    Ok(Json(decision))
}

async fn filter(
    State(api): State<Arc<Api>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Filtered>, ApiError> {
    let vendor = vendor_of(&api, &query)?;
    let body: FilterBody = read_json(&api, &headers, body).await?;
    at_most(body.records.len(), MAX_FILTER_RECORDS, "records")?;
    for (index, record) in body.records.iter().enumerate() {
        at_most(
            record.identifiers.len(),
            MAX_CHECK_IDENTIFIERS,
            &format!("records[{index}].identifiers"),
        )?;
    }
    let records = body
        .records
        .into_iter()
        .enumerate()
        .map(|(index, record)| {
            Ok(EnrichmentRecord {
                id: record.id,
                identifiers: lookups(record.identifiers, &format!("records[{index}].identifiers"))?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let filtered = api.deny_list.filter(vendor, &records)?;
    tracing::debug!(
        vendor,
        records = records.len(),
        dropped = filtered.dropped.len(),
        "deny-list filter"
    );
    Ok(Json(filtered))
}

async fn stats(State(api): State<Arc<Api>>) -> Json<Stats> {
    Json(api.deny_list.stats())
}

fn vendor_of<'q>(api: &Api, query: &'q HashMap<String, String>) -> Result<&'q str, ApiError> {
    let vendor = query.get("vendor").ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_vendor",
            "name the enrichment vendor in the query, e.g. ?vendor=clearbit",
        )
        .at("vendor")
    })?;
    validate_vendor(vendor)?;
    if !api.settings.vendors.contains(vendor.as_str()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_vendor",
            format!(
                "`{vendor}` is not a configured enrichment vendor (configured: {}); add it to \
                 [denylist] vendors or as a recipient",
                api.settings
                    .vendors
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .at("vendor"));
    }
    Ok(vendor)
}

fn at_most(count: usize, max: usize, field: &str) -> Result<(), ApiError> {
    if count > max {
        return Err(ApiError::invalid(
            "too_many_items",
            field,
            format!("at most {max} per call; split the call"),
        ));
    }
    Ok(())
}

fn purpose_of(query: &HashMap<String, String>) -> Result<Purpose, ApiError> {
    match query.get("purpose").map(String::as_str) {
        None | Some("lookup") => Ok(Purpose::Lookup),
        Some("verification") => Ok(Purpose::Verification),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_purpose",
            "purpose is `lookup` (the default: counted as a lookup at the vendor) or \
             `verification` (not counted)",
        )
        .at("purpose")),
    }
}

fn lookups(identifiers: Vec<WireIdentifier>, field: &str) -> Result<Vec<Lookup>, ApiError> {
    identifiers
        .into_iter()
        .enumerate()
        .map(|(index, identifier)| {
            let value = match (identifier.value, identifier.sha256) {
                (Some(raw), None) => IdentifierValue::Raw(raw),
                (None, Some(hash)) => IdentifierValue::Sha256(hash),
                _ => {
                    return Err(ApiError::from(CheckError::Invalid {
                        field: format!("{field}[{index}]"),
                        message: "give exactly one of `value` (the raw identifier) or `sha256` \
                                  (its hash)"
                            .into(),
                    }))
                }
            };
            Ok((identifier.kind, value))
        })
        .collect()
}

async fn read_json<T: DeserializeOwned>(
    api: &Api,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let json = content_type
            .to_str()
            .map(|v| v.starts_with("application/json"))
            .unwrap_or(false);
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
    }
    let limit = api.settings.max_body_bytes;
    let bytes = to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes; split the call"),
        )
    })?;
    let mut json = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut json).map_err(|error| {
        let field = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_data() {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                inner.to_string(),
            )
            .at(field)
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {inner}"),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::denylist::tests::state;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use hush_contracts::identifiers::sha256_hex;
    use serde_json::{json, Value};
    use tower::ServiceExt;

    const KEY: &str = "hush_sk_test-enrichment-job";

    async fn app(deny_list: DenyList) -> (Router, Arc<DenyList>) {
        app_with(deny_list, 4096).await
    }

    async fn app_with(deny_list: DenyList, max_body_bytes: usize) -> (Router, Arc<DenyList>) {
        let deny_list = Arc::new(deny_list);
        let auth = hush_auth::Authenticator::new(
            &hush_auth::AuthConfig {
                api_keys: vec![hush_auth::config::ApiKeyConfig {
                    client: "enrichment-job".into(),
                    sha256: hush_auth::keys::api_key_sha256(KEY),
                    scopes: vec![Scope::DenylistCheck],
                }],
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap();
        let settings = ApiSettings {
            max_body_bytes,
            vendors: ["clearbit".to_owned(), "zoominfo".to_owned()].into(),
        };
        (
            router(deny_list.clone(), settings, Arc::new(auth)),
            deny_list,
        )
    }

    fn filled() -> DenyList {
        DenyList::from_states([
            state("out@example.com", true, false, false),
            state("gone@example.com", true, true, true),
        ])
    }

    async fn call(app: &Router, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn check_denies_an_opted_out_email_given_raw_and_answers_its_hash() {
        let (app, _) = app(filled()).await;
        let (status, body) = call(
            &app,
            "POST",
            "/v1/check?vendor=clearbit",
            r#"{"identifiers":[{"type":"EMAIL","value":"Out@Example.com"}]}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["allowed"], false);
        assert_eq!(
            body["denied"][0],
            json!({
                "type": "EMAIL",
                "sha256": sha256_hex("out@example.com"),
                "reason": "SALE_SHARE_OPT_OUT"
            })
        );
        assert!(!body.to_string().contains("Out@Example.com"));
    }

    #[tokio::test]
    async fn check_accepts_hashes_and_allows_unknown_people() {
        let (app, _) = app(filled()).await;
        let body = json!({"identifiers": [
            {"type": "EMAIL", "sha256": sha256_hex("someone@example.com")},
            {"type": "PHONE", "value": "+1 415 555 0100"}
        ]});
        let (status, body) =
            call(&app, "POST", "/v1/check?vendor=zoominfo", &body.to_string()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"allowed": true, "denied": []}));
    }

    #[tokio::test]
    async fn lookups_are_counted_per_vendor_but_verifications_are_not() {
        let (app, deny_list) = app(filled()).await;
        let gone = r#"{"identifiers":[{"type":"EMAIL","value":"gone@example.com"}]}"#;
        call(&app, "POST", "/v1/check?vendor=clearbit", gone).await;
        let (status, body) = call(
            &app,
            "POST",
            "/v1/check?vendor=clearbit&purpose=verification",
            gone,
        )
        .await;
        assert_eq!(
            (status, &body["denied"][0]["reason"]),
            (StatusCode::OK, &json!("DELETED"))
        );
        let (status, stats) = call(&app, "GET", "/v1/stats", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            stats,
            json!({
                "rebuilt": true,
                "denied_identifiers": 2,
                "known_identifiers": 2,
                "canary_identifiers": 0,
                "vendors": {"clearbit": {"lookups": 1, "blocked_lookups": 1}}
            })
        );
        assert_eq!(deny_list.stats().vendors["clearbit"].blocked_lookups, 1);
    }

    #[tokio::test]
    async fn filter_keeps_and_drops_records_by_the_callers_ids() {
        let (app, _) = app(filled()).await;
        let body = json!({"records": [
            {"id": "lead-1", "identifiers": [{"type": "EMAIL", "value": "new@example.com"}]},
            {"id": "lead-2", "identifiers": [{"type": "EMAIL", "sha256": sha256_hex("gone@example.com")}]}
        ]});
        let (status, body) = call(
            &app,
            "POST",
            "/v1/filter?vendor=zoominfo",
            &body.to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"kept": ["lead-1"], "dropped": [{"id": "lead-2", "reason": "DELETED"}]})
        );
    }

    #[tokio::test]
    async fn a_malformed_identifier_is_refused_with_422_naming_the_field() {
        let (app, _) = app(filled()).await;
        let (status, body) = call(
            &app,
            "POST",
            "/v1/filter?vendor=clearbit",
            r#"{"records":[{"id":"a","identifiers":[{"type":"EMAIL","value":"nobody"}]}]}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"], "invalid_identifier");
        assert_eq!(body["field"], "records[0].identifiers[0].value");
        assert!(!body["message"].as_str().unwrap().contains("nobody"));
    }

    #[tokio::test]
    async fn value_and_sha256_together_are_refused() {
        let (app, _) = app(filled()).await;
        let body = json!({"identifiers": [
            {"type": "EMAIL", "value": "a@example.com", "sha256": sha256_hex("a@example.com")}
        ]});
        let (status, body) =
            call(&app, "POST", "/v1/check?vendor=clearbit", &body.to_string()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["field"], "identifiers[0]");
    }

    #[tokio::test]
    async fn an_unknown_identifier_type_is_refused_naming_its_path() {
        let (app, _) = app(filled()).await;
        let (status, body) = call(
            &app,
            "POST",
            "/v1/check?vendor=clearbit",
            r#"{"identifiers":[{"type":"FAX","value":"1"}]}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"], "invalid_field");
        assert_eq!(body["field"], "identifiers[0].type");
    }

    #[tokio::test]
    async fn an_empty_check_is_refused() {
        let (app, _) = app(filled()).await;
        let (status, body) = call(&app, "POST", "/v1/check?vendor=clearbit", "{}").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["field"], "identifiers");
    }

    #[tokio::test]
    async fn a_missing_or_invalid_vendor_is_refused_with_400() {
        let (app, _) = app(filled()).await;
        let one = r#"{"identifiers":[{"type":"EMAIL","value":"a@example.com"}]}"#;
        let (status, body) = call(&app, "POST", "/v1/check", one).await;
        assert_eq!(
            (status, body["error"].clone()),
            (StatusCode::BAD_REQUEST, json!("missing_vendor"))
        );
        let (status, body) = call(&app, "POST", "/v1/check?vendor=Clear%20Bit", one).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["field"], "vendor");
        let (status, body) = call(&app, "POST", "/v1/check?vendor=unconfigured", one).await;
        assert_eq!(
            (status, body["error"].clone(), body["field"].clone()),
            (
                StatusCode::BAD_REQUEST,
                json!("unknown_vendor"),
                json!("vendor")
            )
        );
        let (status, body) = call(&app, "POST", "/v1/check?vendor=clearbit&purpose=x", one).await;
        assert_eq!(
            (status, body["field"].clone()),
            (StatusCode::BAD_REQUEST, json!("purpose"))
        );
    }

    #[tokio::test]
    async fn malformed_json_is_a_400_and_a_large_body_a_413() {
        let (app, _) = app(filled()).await;
        let (status, body) = call(&app, "POST", "/v1/check?vendor=clearbit", "{").await;
        assert_eq!(
            (status, body["error"].clone()),
            (StatusCode::BAD_REQUEST, json!("malformed_json"))
        );
        let big = format!(
            r#"{{"identifiers":[{{"type":"EMAIL","value":"{}"}}]}}"#,
            "a".repeat(5000)
        );
        let (status, body) = call(&app, "POST", "/v1/check?vendor=clearbit", &big).await;
        assert_eq!(
            (status, body["error"].clone()),
            (StatusCode::PAYLOAD_TOO_LARGE, json!("payload_too_large"))
        );
    }

    #[tokio::test]
    async fn the_api_answers_503_until_the_deny_list_is_rebuilt() {
        let deny_list = DenyList::new();
        deny_list.apply(state("out@example.com", true, false, false));
        let (app, deny_list) = app(deny_list).await;
        let one = r#"{"identifiers":[{"type":"EMAIL","value":"new@example.com"}]}"#;
        let (status, body) = call(&app, "POST", "/v1/check?vendor=clearbit", one).await;
        assert_eq!(
            (status, body["error"].clone()),
            (StatusCode::SERVICE_UNAVAILABLE, json!("not_ready"))
        );
        deny_list.mark_rebuilt();
        let (status, body) = call(&app, "POST", "/v1/check?vendor=clearbit", one).await;
        assert_eq!(
            (status, body["allowed"].clone()),
            (StatusCode::OK, json!(true))
        );
    }

    #[tokio::test]
    async fn a_caller_without_the_scope_learns_nothing() {
        let (app, _) = app(filled()).await;
        let one = r#"{"identifiers":[{"type":"EMAIL","value":"out@example.com"}]}"#;
        for (uri, method) in [
            ("/v1/check?vendor=clearbit", "POST"),
            ("/v1/filter?vendor=clearbit", "POST"),
            ("/v1/stats", "GET"),
        ] {
            let request = Request::builder()
                .method(method)
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(one))
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{uri}");
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("denied") && !text.contains("allowed"),
                "{text}"
            );
        }
    }

    #[tokio::test]
    async fn an_oversized_batch_is_refused_naming_the_field() {
        let (app, deny_list) = app_with(filled(), DEFAULT_MAX_BODY_BYTES).await;
        let identifiers = vec![r#"{"type":"EMAIL","sha256":"aa"}"#; MAX_CHECK_IDENTIFIERS + 1];
        let body = format!(r#"{{"identifiers":[{}]}}"#, identifiers.join(","));
        let (status, answer) = call(&app, "POST", "/v1/check?vendor=clearbit", &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(
            (answer["error"].clone(), answer["field"].clone()),
            (json!("too_many_items"), json!("identifiers"))
        );
        assert!(deny_list.stats().vendors.is_empty(), "nothing was screened");
    }
}
