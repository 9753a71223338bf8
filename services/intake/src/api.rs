//! Intake's HTTP API: `POST /v1/requests`, `POST /v1/gpc`, `GET /.well-known/gpc.json`, and the
//! consent routes of [`crate::consent`] (`GET /v1/consent`, `GET /v1/consent.js`).
//! A request is acknowledged (202) only after the broker acknowledged it.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use hush_auth::attestation::AttestationVerifier;
use hush_auth::{guard, Authenticator, Caller, Scope};
use hush_contracts::canary::SyntheticIdentities;
use hush_contracts::crypto::FieldCipher;
use hush_contracts::deadline::DeadlinePolicy;
use hush_contracts::events::{Category, Channel, IdentifierType, PrivacyRequest, RequestKind};
use hush_contracts::identifiers::sha256_hex;
use hush_resolution::Resolvers;
use hush_runtime::api_error::ApiError;
use hush_runtime::kafka::EventProducer;
use lru::LruCache;
use serde::{Deserialize, Serialize};

use crate::consent::{self, Consent};
use crate::resolution;
use crate::service::IntakeSection;
use crate::submission::{self, Receipt, Submission, SubmittedIdentifier};

/// Idempotency keys remembered in memory; beyond this the request id still derives from the
/// key, so a late duplicate republishes the same request id and downstream deduplicates.
const REMEMBERED_KEYS: usize = 100_000;

/// Namespace of request ids derived from idempotency keys (UUID v5).
const REQUEST_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6875_7368_2d72_6571_7565_7374_2d69_6473);

/// Everything the handlers share.
pub struct Intake {
    /// Settings.
    pub section: IntakeSection,
    /// Topic requests are published to.
    pub topic: String,
    /// Producer (idempotent, acknowledged sends).
    pub producer: EventProducer,
    /// How received identifiers become published ones: sealed, and expanded by the resolvers.
    pub identities: Identities,
    /// Deadline rules.
    pub policy: DeadlinePolicy,
    /// The suppression state `GET /v1/consent` answers from.
    pub consent: Arc<Consent>,
    /// Who may submit what, and how a deletion's verification is checked.
    pub guards: Guards,
    accepted: Mutex<LruCache<String, (String, Accepted)>>,
}

impl Intake {
    /// Shared state for the router.
    pub fn new(
        section: IntakeSection,
        topic: String,
        producer: EventProducer,
        identities: Identities,
        policy: DeadlinePolicy,
        consent: Arc<Consent>,
        guards: Guards,
    ) -> Arc<Self> {
        Arc::new(Self {
            section,
            topic,
            producer,
            identities,
            policy,
            consent,
            guards,
            accepted: Mutex::new(LruCache::new(
                NonZeroUsize::new(REMEMBERED_KEYS).expect("non-zero"),
            )),
        })
    }
}

/// How intake turns the identifiers it receives into those it publishes.
pub struct Identities {
    /// Cipher for the raw values of the kinds kept raw.
    pub cipher: FieldCipher,
    /// Identity resolvers (`[[resolvers]]`), run in order before publish.
    pub resolvers: Resolvers,
}

/// Authentication of callers, verification of attestations, and which requests are the
/// canary's.
#[derive(Debug, Clone)]
pub struct Guards {
    /// Turns credentials into a caller with scopes.
    pub auth: Arc<Authenticator>,
    /// Checks the identity system's attestations; `None` refuses every deletion and opt-in.
    pub attestation: Option<AttestationVerifier>,
    /// The canary's synthetic identities: a request naming only these is the canary's, and is
    /// left out of the 7102 report.
    pub synthetic: SyntheticIdentities,
}

/// The scope a request of `kind` needs.
pub fn scope_for(kind: RequestKind) -> Scope {
    match kind {
        RequestKind::OptOutSaleShare | RequestKind::LimitSensitive => Scope::RequestsOptOut,
        RequestKind::Delete => Scope::RequestsDelete,
        RequestKind::OptInSaleShare => Scope::RequestsOptIn,
    }
}

/// The 202 answer of an accepted request.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    /// Request id.
    pub request_id: String,
    /// Receipt (RFC 3339).
    pub received_at: String,
    /// Legal deadline (RFC 3339).
    pub deadline: String,
    /// The rule the deadline follows.
    pub deadline_rule: String,
    /// Always `ACCEPTED`.
    pub status: &'static str,
}

/// The routes of intake (the operations routes are merged by the caller). Submissions need a
/// caller holding the request kind's scope (anonymous callers hold `[auth]
/// anonymous_scopes`); `/.well-known/gpc.json`, the consent routes and `/openapi.json` are
/// public.
pub fn router(intake: Arc<Intake>) -> Router {
    let submissions = Router::new()
        .route("/v1/requests", post(submit))
        .route("/v1/gpc", post(gpc));
    guard::identify(submissions, intake.guards.auth.clone())
        .route("/.well-known/gpc.json", get(gpc_support))
        .with_state(intake.clone())
        .merge(consent::router(intake.consent.clone()))
        .merge(hush_auth::openapi::router(OPENAPI))
}

/// Intake's OpenAPI 3.1 document as written; served completed at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn submit(
    State(intake): State<Arc<Intake>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Accepted>), Response> {
    let bytes = read_json_body(&intake, &headers, body)
        .await
        .map_err(IntoResponse::into_response)?;
    let submission = submission::parse(&bytes).map_err(IntoResponse::into_response)?;
    caller
        .require(scope_for(submission.kind))
        .map_err(|e| guard::refusal(&e))?;
    accept(&intake, &caller.client, submission)
        .await
        .map_err(IntoResponse::into_response)
}

/// Validates, publishes and answers; the same idempotency key from the same client answers the
/// same request. Keys are scoped by client, so two clients' keys never collide (nor reveal each
/// other's requests).
async fn accept(
    intake: &Intake,
    client: &str,
    submission: Submission,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let key = submission
        .idempotency_key
        .as_ref()
        .map(|key| format!("{client}\u{0}{key}"));
    let body = sha256_hex(&format!("{submission:?}"));
    if let Some((known_body, previous)) = key.as_ref().and_then(|k| remembered(intake, k)) {
        if known_body != body {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "this idempotency_key was used for a different request; use a new key for a new \
                 request, or resend the same body to get the first answer",
            )
            .at("idempotency_key"));
        }
        return Ok((StatusCode::ACCEPTED, Json(previous)));
    }
    let request_id = match &key {
        Some(key) => uuid::Uuid::new_v5(&REQUEST_ID_NAMESPACE, key.as_bytes()),
        None => uuid::Uuid::new_v4(),
    }
    .to_string();
    let accepted = admit(intake, submission, request_id, Utc::now()).await?;
    if let Some(key) = key {
        intake
            .accepted
            .lock()
            .expect("idempotency cache")
            .put(key, (body, accepted.clone()));
    }
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// The one path every request takes, from HTTP or from `hush.signals.v1`: validated into a
/// [`PrivacyRequest`] received at `received` (marked as the canary's when it names only
/// synthetic identities), published, counted (the canary's apart from real requests) and
/// logged.
pub async fn admit(
    intake: &Intake,
    submission: Submission,
    request_id: String,
    received: DateTime<Utc>,
) -> Result<Accepted, ApiError> {
    let synthetic = crate::canary::is_synthetic(&submission, &intake.guards.synthetic);
    let given = resolution::given_values(&submission);
    let mut request = submission::into_request(
        submission,
        Receipt {
            request_id,
            received_at: received.timestamp_millis(),
            default_jurisdiction: &intake.section.default_jurisdiction,
            keep_raw: &intake.section.keep_raw,
            cipher: &intake.identities.cipher,
            attestation: intake.guards.attestation.as_ref(),
            source_system: &intake.section.source_system,
        },
    )?;
    if synthetic {
        crate::canary::mark(&mut request);
    }
    resolution::expand(
        &intake.identities.resolvers,
        &intake.section.keep_raw,
        &intake.identities.cipher,
        &mut request,
        given,
    )
    .await;
    let deadline = intake
        .policy
        .deadline_for(request.kind, &request.jurisdiction, received, false);
    publish(intake, &request).await?;
    crate::metrics::accepted_counter(synthetic)
        .with_label_values(&[request.kind.as_str(), request.channel.as_str()])
        .inc();
    tracing::info!(
        request_id = %request.request_id,
        kind = request.kind.as_str(),
        channel = request.channel.as_str(),
        synthetic,
        "request accepted"
    );
    Ok(Accepted {
        request_id: request.request_id.clone(),
        received_at: received.to_rfc3339_opts(SecondsFormat::Millis, true),
        deadline: deadline.due.to_rfc3339_opts(SecondsFormat::Millis, true),
        deadline_rule: deadline.rule,
        status: "ACCEPTED",
    })
}

/// The digest of the submission first accepted under `key`, and the answer it got.
fn remembered(intake: &Intake, key: &str) -> Option<(String, Accepted)> {
    intake
        .accepted
        .lock()
        .expect("idempotency cache")
        .get(key)
        .cloned()
}

async fn publish(intake: &Intake, request: &PrivacyRequest) -> Result<(), ApiError> {
    intake
        .producer
        .send(&intake.topic, &request.subject_key, request)
        .await
        .map(|_| ())
        .map_err(|error| {
            tracing::error!(%error, request_id = %request.request_id, "publish failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "broker_unavailable",
                "the request could not be recorded right now and was not accepted; \
                 retry with the same idempotency_key",
            )
        })
}

async fn read_json_body(
    intake: &Intake,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, ApiError> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let json = content_type
            .to_str()
            .map(|v| v.starts_with("application/json"))
            .unwrap_or(false);
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the request as application/json",
            ));
        }
    }
    let limit = intake.section.max_body_bytes;
    to_bytes(body, limit)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body is larger than {limit} bytes"),
            )
        })
}

/// Body of `POST /v1/gpc`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GpcSignal {
    device_id: Option<String>,
    cookie_id: Option<String>,
    customer_id: Option<String>,
    jurisdiction: Option<String>,
}

/// The request id of the opt-out in force for every identifier of a GPC signal, once intake's
/// suppression state is rebuilt and holds one for each.
fn opt_out_in_force(intake: &Intake, identifiers: &[SubmittedIdentifier]) -> Option<String> {
    if !intake
        .consent
        .rebuilt
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        return None;
    }
    let mut in_force = None;
    for identifier in identifiers {
        let hash = hush_contracts::identifiers::hash_identifier(
            identifier.kind,
            identifier.value.as_deref()?,
        )
        .ok()?;
        let suppression = intake.consent.lookup.get(&hash)?;
        if !suppression.sale_share_opted_out {
            return None;
        }
        if matches!(
            identifier.kind,
            IdentifierType::DeviceId | IdentifierType::CookieId
        ) {
            in_force = Some(hush_suppression_state::request_id_of(&suppression));
        }
    }
    in_force
}

/// Answer of `POST /v1/gpc`.
#[derive(Debug, Serialize)]
struct GpcAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    honored: bool,
    message: String,
}

async fn gpc(
    State(intake): State<Arc<Intake>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    caller
        .require(Scope::RequestsOptOut)
        .map_err(|e| guard::refusal(&e))?;
    gpc_signal(&intake, &headers, body)
        .await
        .map_err(IntoResponse::into_response)
}

async fn gpc_signal(
    intake: &Intake,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_json_body(intake, headers, body).await?;
    let signal_sent = headers
        .get("sec-gpc")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim() == "1")
        .unwrap_or(false);
    if !signal_sent {
        return Ok(Json(GpcAnswer {
            request_id: None,
            honored: false,
            message: "No Global Privacy Control signal (Sec-GPC: 1) came with this request, so \
                      nothing changed."
                .into(),
        })
        .into_response());
    }
    let signal: GpcSignal = if bytes.iter().all(u8::is_ascii_whitespace) {
        GpcSignal::default()
    } else {
        submission::parse_json(&bytes)?
    };
    let mut identifiers = Vec::new();
    for (kind, value) in [
        (IdentifierType::DeviceId, &signal.device_id),
        (IdentifierType::CookieId, &signal.cookie_id),
        (IdentifierType::CustomerId, &signal.customer_id),
    ] {
        if let Some(value) = value {
            identifiers.push(SubmittedIdentifier {
                kind,
                value: Some(value.clone()),
                sha256: None,
            });
        }
    }
    if signal.device_id.is_none() && signal.cookie_id.is_none() {
        return Err(ApiError::invalid(
            "missing_identifier",
            "device_id",
            "a GPC signal applies to a browser or device: give device_id or cookie_id",
        ));
    }
    let known_consumer = signal.customer_id.is_some();
    let scope = if known_consumer {
        "this browser or device and your account"
    } else {
        "this browser or device"
    };
    let honored = |request_id: String| GpcAnswer {
        request_id: Some(request_id),
        honored: true,
        message: format!(
            "Your Global Privacy Control signal has been honored: we will not sell or share \
             personal information collected from {scope}. You do not need to do anything else."
        ),
    };
    // One browser sends the signal on every page. Once every identifier is opted out, the
    // opt-out in force answers and nothing is published again.
    if let Some(in_force) = opt_out_in_force(intake, &identifiers) {
        return Ok((StatusCode::OK, Json(honored(in_force))).into_response());
    }
    // Otherwise one request per browser, customer and minute: repeats while the opt-out
    // propagates make one request, and a signal after an opt-in lifted it makes a new one.
    let fingerprint = identifiers
        .iter()
        .map(|i| {
            format!(
                "{:?}={}",
                i.kind,
                i.value.as_deref().unwrap_or_default().trim()
            )
        })
        .collect::<Vec<_>>()
        .join("|");
    let minute = Utc::now().timestamp() / 60;
    let submission = Submission {
        kind: RequestKind::OptOutSaleShare,
        jurisdiction: signal.jurisdiction,
        channel: Some(Channel::Gpc),
        identifiers,
        categories: Some(vec![Category::All]),
        verification: None,
        age_band: None,
        consumer_initiated: Some(true),
        idempotency_key: Some(format!("gpc:{}:{minute}", sha256_hex(&fingerprint))),
    };
    // GPC keys are derived from the browser, whoever relays the signal.
    let (status, Json(accepted)) = accept(intake, "gpc", submission).await?;
    Ok((status, Json(honored(accepted.request_id))).into_response())
}

async fn gpc_support(State(intake): State<Arc<Intake>>) -> impl IntoResponse {
    Json(serde_json::json!({ "gpc": true, "lastUpdate": intake.section.gpc_last_update }))
}
