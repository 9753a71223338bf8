//! The browser side of an opt-out. `GET /v1/consent` answers the calling browser's own
//! suppression state, found by the first-party visitor cookie it sends (never by a parameter,
//! so no page can ask about anyone else), as `opted_out`/`limited`/`gpc` and the IAB GPP and US
//! Privacy strings; `GET /v1/consent.js` serves the snippet that applies it in the page (Google
//! Consent Mode v2, the IAB GPP `__gpp` API, and the tags it holds back). The state comes from
//! `hush.suppressions.v1`, rebuilt into memory by [`crate::service::follow_suppressions`]; until
//! it is rebuilt only a GPC browser gets an answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hush_contracts::events::IdentifierType;
use hush_contracts::identifiers::hash_identifier;
use hush_iab::{gpp_string, us_privacy_string, PrivacySignals, Section, UsCa, UsNat};
use hush_runtime::api_error::ApiError;
use hush_suppression_state::SuppressionLookup;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The snippet a site includes first in its `<head>` (see the README): plain JavaScript, no
/// build step.
pub const SCRIPT: &str = include_str!("../static/consent.js");

/// The GPP sections every answer carries: MSPA US National and California.
const SECTIONS: [Section; 2] = [Section::UsNat, Section::UsCa];

/// The answer depends on the visitor cookie and the GPC header, and must never be cached.
const NO_STORE: [(header::HeaderName, &str); 2] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::VARY, "Cookie, Sec-GPC"),
];

/// What the consent endpoint reads: the name of the visitor cookie and the suppression state.
pub struct Consent {
    /// Name of the first-party cookie holding the visitor's id, hashed as a `COOKIE_ID`.
    pub cookie: String,
    /// The suppression state, kept current from `hush.suppressions.v1`.
    pub lookup: Arc<SuppressionLookup>,
    /// Set once the state holds every suppression written before intake started.
    pub rebuilt: Arc<AtomicBool>,
}

impl Consent {
    /// An empty, not yet rebuilt state read through the cookie named `cookie`.
    pub fn new(cookie: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            cookie: cookie.into(),
            lookup: Arc::default(),
            rebuilt: Arc::default(),
        })
    }
}

/// The answer of `GET /v1/consent`: about the calling browser only, with no identifier, hash
/// or request id in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentAnswer {
    /// No sale, sharing or targeted advertising for this browser (it opted out, asked for
    /// deletion, or sends Global Privacy Control): advertising and analytics tags stay off.
    pub opted_out: bool,
    /// The use of the visitor's sensitive personal information is limited.
    pub limited: bool,
    /// The browser sent Global Privacy Control with this request.
    pub gpc: bool,
    /// The request carried the visitor cookie, so the answer is about a known visitor.
    pub identified: bool,
    /// Why the answer is what it is, in words.
    pub message: String,
    /// The visitor's IAB GPP string (header, `usnat`, `usca`).
    pub gpp: String,
    /// Ids of the GPP sections in `gpp`.
    pub gpp_sid: Vec<u8>,
    /// The visitor's IAB US Privacy (CCPA) string.
    pub us_privacy: String,
    /// Field values of each GPP section by its API prefix, as the `__gpp` API's `getSection`
    /// returns them.
    pub sections: Value,
}

/// Query of `GET /v1/consent`.
#[derive(Debug, Default, Deserialize)]
struct ConsentQuery {
    /// `1` when the page saw `navigator.globalPrivacyControl === true`: a browser that exposes
    /// the signal without sending the header. It can only make the answer stricter.
    gpc: Option<String>,
}

/// The consent routes: `GET /v1/consent` and `GET /v1/consent.js`.
pub fn router(consent: Arc<Consent>) -> Router {
    Router::new()
        .route("/v1/consent", get(answer))
        .route("/v1/consent.js", get(script))
        .with_state(consent)
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        SCRIPT,
    )
}

async fn answer(
    State(consent): State<Arc<Consent>>,
    Query(query): Query<ConsentQuery>,
    headers: HeaderMap,
) -> Response {
    let gpc = headers
        .get_all("sec-gpc")
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.trim() == "1"))
        || query.gpc.as_deref() == Some("1");
    let visitor = cookie_value(&headers, &consent.cookie);
    if !gpc && !consent.rebuilt.load(Ordering::SeqCst) {
        crate::metrics::CONSENT_ANSWERS
            .with_label_values(&["unavailable"])
            .inc();
        let error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "suppression_state_rebuilding",
            "the suppression state is still being read; treat the visitor as opted out and ask \
             again shortly",
        );
        let mut response = (NO_STORE, error).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        return response;
    }
    let suppression = visitor
        .as_deref()
        .and_then(|id| hash_identifier(IdentifierType::CookieId, id).ok())
        .and_then(|hash| consent.lookup.get(&hash));
    let opted_out_here = suppression.is_some_and(|s| s.sale_share_opted_out || s.deleted);
    let limited = suppression.is_some_and(|s| s.sensitive_limited || s.deleted);
    let answer = consent_answer(gpc, visitor.is_some(), opted_out_here, limited);
    let label = match (answer.gpc, opted_out_here) {
        (true, _) => "gpc",
        (false, true) => "opted_out",
        (false, false) => "not_opted_out",
    };
    crate::metrics::CONSENT_ANSWERS
        .with_label_values(&[label])
        .inc();
    (NO_STORE, Json(answer)).into_response()
}

/// The answer for a browser that sends GPC or not, was identified or not, and whose visitor id
/// is opted out (or deleted) and limited or not.
fn consent_answer(gpc: bool, identified: bool, opted_out: bool, limited: bool) -> ConsentAnswer {
    let opted_out_any = gpc || opted_out;
    let signals = PrivacySignals {
        sale_opted_out: opted_out_any,
        sharing_opted_out: opted_out_any,
        targeted_advertising_opted_out: opted_out_any,
        sensitive_limited: limited,
        gpc: Some(gpc),
        notice_given: true,
        ..PrivacySignals::default()
    };
    let message = match (gpc, identified, opted_out) {
        (true, _, _) => {
            "This browser sends Global Privacy Control, which is honored as an \
                         opt-out of the sale and sharing of personal information."
        }
        (false, _, true) => {
            "This browser opted out of the sale and sharing of personal \
                             information."
        }
        (false, true, false) => {
            "This browser has not opted out of the sale or sharing of \
                                 personal information."
        }
        (false, false, false) => {
            "No visitor cookie came with this request, so no opt-out is \
                                  known for this browser; it has not opted out here."
        }
    };
    ConsentAnswer {
        opted_out: opted_out_any,
        limited,
        gpc,
        identified,
        message: message.into(),
        gpp: gpp_string(&signals, &SECTIONS),
        gpp_sid: SECTIONS.iter().map(|s| s.id()).collect(),
        us_privacy: us_privacy_string(&signals),
        sections: section_fields(&signals),
    }
}

/// The value of cookie `name` among the request's `Cookie` headers, if set and not empty.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

/// The field values of the `usnat` and `usca` sections, named as the GPP specifications name
/// them.
fn section_fields(signals: &PrivacySignals) -> Value {
    let nat = UsNat::from_signals(signals);
    let ca = UsCa::from_signals(signals);
    json!({
        Section::UsNat.api_prefix(): {
            "Version": UsNat::VERSION,
            "SharingNotice": nat.sharing_notice.value(),
            "SaleOptOutNotice": nat.sale_opt_out_notice.value(),
            "SharingOptOutNotice": nat.sharing_opt_out_notice.value(),
            "TargetedAdvertisingOptOutNotice": nat.targeted_advertising_opt_out_notice.value(),
            "SensitiveDataProcessingOptOutNotice": nat.sensitive_data_processing_opt_out_notice.value(),
            "SensitiveDataLimitUseNotice": nat.sensitive_data_limit_use_notice.value(),
            "SaleOptOut": nat.sale_opt_out.value(),
            "SharingOptOut": nat.sharing_opt_out.value(),
            "TargetedAdvertisingOptOut": nat.targeted_advertising_opt_out.value(),
            "SensitiveDataProcessing": nat.sensitive_data_processing.map(|c| c.value()),
            "KnownChildSensitiveDataConsents": nat.known_child_sensitive_data_consents.map(|c| c.value()),
            "PersonalDataConsents": nat.personal_data_consents.value(),
            "MspaCoveredTransaction": nat.mspa_covered_transaction.value(),
            "MspaOptOutOptionMode": nat.mspa_opt_out_option_mode.value(),
            "MspaServiceProviderMode": nat.mspa_service_provider_mode.value(),
            "GpcSegmentType": 1,
            "GpcSegmentIncluded": nat.gpc.is_some(),
            "Gpc": nat.gpc.unwrap_or(false),
        },
        Section::UsCa.api_prefix(): {
            "Version": UsCa::VERSION,
            "SaleOptOutNotice": ca.sale_opt_out_notice.value(),
            "SharingOptOutNotice": ca.sharing_opt_out_notice.value(),
            "SensitiveDataLimitUseNotice": ca.sensitive_data_limit_use_notice.value(),
            "SaleOptOut": ca.sale_opt_out.value(),
            "SharingOptOut": ca.sharing_opt_out.value(),
            "SensitiveDataProcessing": ca.sensitive_data_processing.map(|o| o.value()),
            "KnownChildSensitiveDataConsents": ca.known_child_sensitive_data_consents.map(|c| c.value()),
            "PersonalDataConsents": ca.personal_data_consents.value(),
            "MspaCoveredTransaction": ca.mspa_covered_transaction.value(),
            "MspaOptOutOptionMode": ca.mspa_opt_out_option_mode.value(),
            "MspaServiceProviderMode": ca.mspa_service_provider_mode.value(),
            "GpcSegmentType": 1,
            "GpcSegmentIncluded": ca.gpc.is_some(),
            "Gpc": ca.gpc.unwrap_or(false),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use hush_contracts::events::{MinorStatus, SuppressionState};
    use hush_contracts::identifiers::sha256_hex;
    use tower::ServiceExt;

    const REQUEST_ID: &str = "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10";

    /// A rebuilt state in which cookie id `opted-out-visitor` opted out and `limited-visitor`
    /// only limited sensitive data use.
    fn consent() -> Arc<Consent> {
        let consent = Consent::new("hush_vid");
        for (id, opted_out, limited) in [
            ("opted-out-visitor", true, false),
            ("limited-visitor", false, true),
        ] {
            consent.lookup.apply(&SuppressionState {
                identifier_hash: sha256_hex(id),
                identifier_type: IdentifierType::CookieId,
                subject_key: sha256_hex(id),
                sale_share_opted_out: opted_out,
                sensitive_limited: limited,
                deleted: false,
                effective_at: 1_700_000_000_000,
                resolicit_after: None,
                minor_status: MinorStatus::NotMinor,
                last_request_id: REQUEST_ID.into(),
                updated_at: 1_700_000_000_000,
                synthetic: false,
            });
        }
        consent.rebuilt.store(true, Ordering::SeqCst);
        consent
    }

    async fn get(consent: Arc<Consent>, uri: &str, headers: &[(&str, &str)]) -> (Response, Value) {
        let mut request = Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = router(consent)
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (Response::from_parts(parts, Body::empty()), json)
    }

    #[tokio::test]
    async fn no_cookie_is_not_opted_out_and_says_so() {
        let (response, answer) = get(consent(), "/v1/consent", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(answer["opted_out"], false, "{answer}");
        assert_eq!(answer["identified"], false, "{answer}");
        assert_eq!(answer["gpc"], false, "{answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("No visitor cookie"),
            "{answer}"
        );
        assert_eq!(answer["us_privacy"], "1YNN", "{answer}");
        assert_eq!(answer["gpp_sid"], json!([7, 8]));
        assert_eq!(
            answer["sections"]["usca"]["SaleOptOut"], 2,
            "did not opt out"
        );
    }

    #[tokio::test]
    async fn the_gpc_header_is_an_opt_out_whoever_the_visitor_is() {
        let (response, answer) = get(
            consent(),
            "/v1/consent",
            &[("Sec-GPC", "1"), ("Cookie", "hush_vid=someone-new")],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            (answer["opted_out"].clone(), answer["gpc"].clone()),
            (json!(true), json!(true))
        );
        assert_eq!(answer["us_privacy"], "1YYN", "{answer}");
        assert_eq!(answer["sections"]["usca"]["Gpc"], true, "{answer}");
        assert_eq!(answer["sections"]["usnat"]["TargetedAdvertisingOptOut"], 1);
        let opted_out = consent_answer(true, true, false, false);
        assert_eq!(answer["gpp"], opted_out.gpp.as_str());
    }

    #[tokio::test]
    async fn gpc_is_answered_even_before_the_state_is_rebuilt_and_nothing_else_is() {
        let consent = Consent::new("hush_vid");
        let (response, answer) = get(consent.clone(), "/v1/consent", &[("Sec-GPC", "1")]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(answer["opted_out"], true, "{answer}");
        let (response, answer) = get(
            consent.clone(),
            "/v1/consent",
            &[("Cookie", "hush_vid=opted-out-visitor")],
        )
        .await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer["error"], "suppression_state_rebuilding", "{answer}");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        // The page's own view of GPC (a browser exposing it without the header) counts too.
        let (response, answer) = get(consent, "/v1/consent?gpc=1", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(answer["gpc"], true, "{answer}");
    }

    #[tokio::test]
    async fn an_opted_out_cookie_is_opted_out_and_the_answer_names_nobody() {
        let (response, answer) = get(
            consent(),
            "/v1/consent",
            &[(
                "Cookie",
                "_ga=GA1.1.5; hush_vid=opted-out-visitor; theme=dark",
            )],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[header::VARY], "Cookie, Sec-GPC");
        assert_eq!(answer["opted_out"], true, "{answer}");
        assert_eq!(answer["gpc"], false, "{answer}");
        assert_eq!(answer["identified"], true, "{answer}");
        assert_eq!(answer["us_privacy"], "1YYN", "{answer}");
        assert_eq!(answer["sections"]["usca"]["Gpc"], false, "{answer}");
        let text = answer.to_string();
        for secret in [sha256_hex("opted-out-visitor"), REQUEST_ID.to_owned()] {
            assert!(!text.contains(&secret), "{secret} leaked in {text}");
        }
        assert!(
            !text.contains("opted-out-visitor"),
            "the id is not echoed: {text}"
        );
        let mut keys: Vec<&String> = answer.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "gpc",
                "gpp",
                "gpp_sid",
                "identified",
                "limited",
                "message",
                "opted_out",
                "sections",
                "us_privacy"
            ]
        );
    }

    #[tokio::test]
    async fn the_id_comes_only_from_the_cookie() {
        let (_, by_query) = get(
            consent(),
            "/v1/consent?hush_vid=opted-out-visitor&cookie_id=opted-out-visitor",
            &[],
        )
        .await;
        assert_eq!(by_query["opted_out"], false, "{by_query}");
        let (_, other_cookie) = get(
            consent(),
            "/v1/consent",
            &[("Cookie", "visitor=opted-out-visitor")],
        )
        .await;
        assert_eq!(other_cookie["opted_out"], false, "{other_cookie}");
        let (_, padded) = get(
            consent(),
            "/v1/consent",
            &[("Cookie", "hush_vid=\" opted-out-visitor \"")],
        )
        .await;
        assert_eq!(
            padded["opted_out"], true,
            "trimmed as intake trims: {padded}"
        );
    }

    #[tokio::test]
    async fn a_limit_alone_keeps_tags_allowed_but_says_limited() {
        let (_, answer) = get(
            consent(),
            "/v1/consent",
            &[("Cookie", "hush_vid=limited-visitor")],
        )
        .await;
        assert_eq!(answer["opted_out"], false, "{answer}");
        assert_eq!(answer["limited"], true, "{answer}");
        assert_eq!(answer["sections"]["usca"]["SensitiveDataProcessing"][0], 1);
    }

    #[tokio::test]
    async fn the_script_is_served_as_javascript_and_denies_by_default() {
        let response = router(consent())
            .oneshot(Request::get("/v1/consent.js").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let script = std::str::from_utf8(&body).unwrap();
        let default = script.find("'default'").expect("a consent default");
        let update = script.find("'update'").expect("a consent update");
        assert!(default < update, "defaults are set before any update");
        for key in [
            "ad_storage",
            "ad_user_data",
            "ad_personalization",
            "analytics_storage",
            "wait_for_update",
            "globalPrivacyControl",
            "__gpp",
        ] {
            assert!(script.contains(key), "{key} in the script");
        }
    }
}
