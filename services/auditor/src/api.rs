//! The auditor's HTTP API and dashboard:
//!
//! - `GET /v1/requests/{id}`: one request's record, its status computed now, and which
//!   connectors have not answered;
//! - `GET /v1/report?from=YYYY-MM-DD&to=YYYY-MM-DD[&format=csv]`: the 11 CCR 7102 metrics over
//!   the requests received in the period (days local to the business's time zone);
//! - `POST /v1/requests/{id}/extension` `{"reason": ...}`: takes the one 45-day extension;
//! - `POST /v1/requests/{id}/denial` `{"reason": ...}`: records the compliance lead's denial;
//! - `POST /v1/callbacks/{connector_id}`: a webhook recipient's signed confirmation;
//! - `GET /`: the dashboard (see the `dashboard` module);
//! - `GET /openapi.json`: the OpenAPI 3.1 document of all of these (`services/auditor/openapi.json`).
//!
//! Errors answer `{"error", "message", "field"}`. A change (extension, denial, resolution,
//! retry, callback) is checked against this replica's view of the record (a refusal is answered
//! at once), then published as a command on `hush.auditor-commands.v1` and applied by the
//! replica that owns the request's partition, in order with its confirmations (see
//! [`crate::commands`]). The call answers `200` with the changed record once this replica sees
//! the change applied, or `202 Accepted` with the command's id when it was not applied within
//! `[auditor] command_wait_ms` (the command is durable then, and will be applied). Nothing is
//! answered as done before the broker acknowledged the command.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use hush_auth::{guard, Authenticator, Caller, Scope};
use hush_contracts::events::{
    now_millis, AdminChange, AuditRecord, AuditStatus, Channel, ConfirmationAction, EpochMillis,
    IdentifierType, LeakEvidence, LeakFreeWindow, RecipientRole, RequestKind, ResolutionOutcome,
    VerificationStatus,
};
use hush_runtime::api_error::ApiError;
use serde::{Deserialize, Serialize};

use crate::fold::{instant, rfc3339};
use crate::report::build_report;
use crate::service::{Auditor, ChangeError, Submitted};
use crate::status::status_at;
use crate::store::FetchError;
use hush_contracts::commands::{AuditorCommand, AuditorCommandAction, OutOfBandResolution};
use hush_contracts::deadline::DeadlinePolicy;

/// Longest reason accepted for an extension or a denial, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// One connector's outcome as answered by the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeView {
    /// Recipient id.
    pub connector_id: String,
    /// Recipient role.
    pub role: RecipientRole,
    /// Outcome.
    pub action: ConfirmationAction,
    /// Read-back status.
    pub verification: VerificationStatus,
    /// Calls made.
    pub attempts: i32,
    /// When the outcome became final (RFC 3339).
    pub completed_at: String,
    /// Evidence, sorted by key.
    pub evidence: BTreeMap<String, String>,
}

/// One identity resolver's step for a request, as answered by `GET /v1/requests/{id}`: which
/// resolver, how it ended and the types of the identifiers it added, never their values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolutionStepView {
    /// Id of the resolver in `[[resolvers]]`.
    pub resolver: String,
    /// How its look-up ended.
    pub outcome: ResolutionOutcome,
    /// Types of the identifiers it added.
    pub identifier_types: Vec<IdentifierType>,
    /// When its look-up ended (RFC 3339).
    pub resolved_at: String,
    /// Calls made to its system.
    pub attempts: i32,
    /// Why it was skipped or not applicable.
    pub reason: Option<String>,
}

/// A request's record as answered by `GET /v1/requests/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestView {
    /// Request id.
    pub request_id: String,
    /// Right exercised.
    pub kind: RequestKind,
    /// Channel.
    pub channel: Channel,
    /// Jurisdiction.
    pub jurisdiction: String,
    /// Status computed at the time of the answer.
    pub status: AuditStatus,
    /// Receipt (RFC 3339).
    pub received_at: String,
    /// Legal deadline (RFC 3339), extension included.
    pub deadline: String,
    /// The rule the deadline follows.
    pub deadline_rule: String,
    /// Whether the extension was taken.
    pub extended: bool,
    /// When the last required connector answered (RFC 3339).
    pub completed_at: Option<String>,
    /// Why the request was denied.
    pub denial_reason: Option<String>,
    /// Outbound events seen after the suppression took effect.
    pub leaks: i32,
    /// Each leak: the watched topic, partition and offset of the event, so it can be re-read.
    pub leak_evidence: Vec<LeakEvidence>,
    /// Once PROVEN: the observation window and how far each watched stream was examined.
    pub proof: Option<LeakFreeWindow>,
    /// Connectors that must answer.
    pub required_connectors: Vec<String>,
    /// Answers so far.
    pub connectors: Vec<OutcomeView>,
    /// Required connectors that have not answered.
    pub missing_connectors: Vec<String>,
    /// Operator changes (extension, denial, resolution, retry), each with its authenticated
    /// actor.
    pub changes: Vec<AdminChange>,
    /// Identity resolution before fan-out, one step per configured resolver.
    pub resolution: Vec<ResolutionStepView>,
}

/// The view of `record` at `now`.
pub fn view(record: &AuditRecord, policy: &DeadlinePolicy, now: EpochMillis) -> RequestView {
    let rule = policy
        .deadline_for(
            record.kind,
            &record.jurisdiction,
            instant(record.received_at),
            record.extended,
        )
        .rule;
    let answered = |id: &String| record.connectors.iter().any(|o| &o.connector_id == id);
    RequestView {
        request_id: record.request_id.clone(),
        kind: record.kind,
        channel: record.channel,
        jurisdiction: record.jurisdiction.clone(),
        status: status_at(record, now, policy.at_risk_days()),
        received_at: rfc3339(record.received_at),
        deadline: rfc3339(record.deadline),
        deadline_rule: rule,
        extended: record.extended,
        completed_at: record.completed_at.map(rfc3339),
        denial_reason: record.denial_reason.clone(),
        leaks: record.leaks,
        leak_evidence: record.leak_evidence.clone(),
        proof: record.proof.clone(),
        required_connectors: record.required_connectors.clone(),
        connectors: record
            .connectors
            .iter()
            .map(|o| OutcomeView {
                connector_id: o.connector_id.clone(),
                role: o.role,
                action: o.action,
                verification: o.verification,
                attempts: o.attempts,
                completed_at: rfc3339(o.completed_at),
                evidence: o.evidence.clone().into_iter().collect(),
            })
            .collect(),
        missing_connectors: record
            .required_connectors
            .iter()
            .filter(|id| !answered(id))
            .cloned()
            .collect(),
        changes: record.changes.clone(),
        resolution: record
            .resolution
            .iter()
            .map(|step| ResolutionStepView {
                resolver: step.resolver.clone(),
                outcome: step.outcome,
                identifier_types: step.identifiers.iter().map(|i| i.kind).collect(),
                resolved_at: rfc3339(step.resolved_at),
                attempts: step.attempts,
                reason: step.reason.clone(),
            })
            .collect(),
    }
}

/// The answer to an extension or a denial: the record after the change, and the reason given.
#[derive(Debug, Clone, Serialize)]
struct Changed {
    #[serde(flatten)]
    request: RequestView,
    reason: String,
}

/// The routes of the auditor (the operations routes are merged by the caller). Reads need
/// `auditor:read`; changes need `auditor:admin`, a JSON body and a same-origin caller, and
/// record the caller as their actor. Recipients' callbacks carry their own HMAC signature;
/// `/openapi.json` is public.
pub fn router(auditor: Arc<Auditor>, auth: Arc<Authenticator>) -> Router {
    let read = Router::new()
        .route("/", get(crate::dashboard::dashboard))
        .route("/v1/requests/{id}", get(request))
        .route("/v1/report", get(report));
    let admin = Router::new()
        .route("/v1/requests/{id}/extension", post(extension))
        .route("/v1/requests/{id}/denial", post(denial))
        .route(
            "/v1/requests/{id}/recipients/{connector}/resolution",
            post(resolution),
        )
        .route(
            "/v1/requests/{id}/recipients/{connector}/retry",
            post(retry_recipient),
        );
    let admin = guard::require(
        guard::same_origin_json(admin),
        auth.clone(),
        Scope::AuditorAdmin,
    );
    guard::require(read, auth, Scope::AuditorRead)
        .merge(admin)
        .route(
            "/v1/callbacks/{connector_id}",
            post(crate::callback::recipient_callback),
        )
        .with_state(auditor)
        .merge(hush_auth::openapi::router(OPENAPI))
}

/// The auditor's OpenAPI 3.1 document as written; served completed at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

fn ensure_rebuilt(auditor: &Auditor) -> Result<(), ApiError> {
    if auditor.store().is_rebuilt() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the audit records are still being rebuilt; retry shortly",
        ))
    }
}

fn parse_id(id: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(id)
        .map(|id| id.to_string())
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_id",
                "the request id must be a UUID",
            )
            .at("id")
        })
}

/// `503` for a record this replica does not hold and could not read back from the audit topic.
pub(crate) fn unavailable(error: FetchError) -> ApiError {
    tracing::warn!(%error, "a record not held here could not be read back");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "record_unavailable",
        format!("the request's record is held by another replica and {error}; retry shortly"),
    )
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "request_not_found",
        "no request with this id is on record",
    )
}

/// Header of `GET /v1/requests/{id}` saying where the record came from: `held` (this replica
/// owns the request and holds its record) or `audit-topic` (read back from the topic).
pub const RECORD_SOURCE_HEADER: &str = "x-hush-record-source";

async fn request(
    State(auditor): State<Arc<Auditor>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    ensure_rebuilt(&auditor)?;
    let id = parse_id(&id)?;
    let (record, source) = match auditor.store().get(&id) {
        Some(record) => (record, "held"),
        None => (
            auditor
                .store()
                .record(&id)
                .await
                .map_err(unavailable)?
                .ok_or_else(not_found)?,
            "audit-topic",
        ),
    };
    Ok((
        [(RECORD_SOURCE_HEADER, source)],
        Json(view(&record, auditor.policy(), now_millis())),
    )
        .into_response())
}

/// Reads `{"reason": "..."}`.
fn parse_reason(body: &[u8]) -> Result<String, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not JSON ({e}); send {{\"reason\": \"...\"}}"),
        )
    })?;
    let reason = value
        .get("reason")
        .and_then(serde_json::Value::as_str)
        .map(str::trim)
        .unwrap_or_default();
    if reason.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_reason",
            "give the reason as a non-empty string",
        )
        .at("reason"));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason_too_long",
            format!("the reason is longer than {MAX_REASON_CHARS} characters"),
        )
        .at("reason"));
    }
    Ok(reason.to_string())
}

fn change_error(error: ChangeError, request_id: &str) -> ApiError {
    match error {
        ChangeError::NotFound => not_found(),
        ChangeError::Unavailable(error) => unavailable(error),
        ChangeError::Refused(refusal) => {
            ApiError::new(StatusCode::CONFLICT, refusal.code(), refusal.to_string())
        }
        ChangeError::Write(error) => {
            tracing::error!(%error, request_id, "command not published");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "broker_unavailable",
                "the change could not be recorded right now and was not made; retry",
            )
        }
    }
}

/// A command for `request_id` by `actor`, issued now; the subject key is filled in by
/// [`Auditor::submit`].
pub(crate) fn command(
    request_id: &str,
    action: AuditorCommandAction,
    actor: &str,
) -> AuditorCommand {
    AuditorCommand {
        command_id: uuid::Uuid::new_v4().to_string(),
        request_id: request_id.to_owned(),
        subject_key: String::new(),
        action,
        actor: actor.to_owned(),
        issued_at: now_millis(),
        reason: None,
        connector_id: None,
        resolution: None,
        callback: None,
        leak: None,
    }
}

/// `202 Accepted` for a command not yet applied when the wait ran out.
pub(crate) fn accepted(request_id: &str, command_id: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "request_id": request_id,
            "command_id": command_id,
            "status": "accepted",
            "message": "the change is recorded as a command and will be applied by the replica that owns the request; GET /v1/requests/{id} shows it",
        })),
    )
        .into_response()
}

async fn extension(
    State(auditor): State<Arc<Auditor>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    ensure_rebuilt(&auditor)?;
    let id = parse_id(&id)?;
    let reason = parse_reason(&body)?;
    let mut extension = command(&id, AuditorCommandAction::Extension, &caller.client);
    extension.reason = Some(reason.clone());
    let record = match auditor
        .submit(extension)
        .await
        .map_err(|e| change_error(e, &id))?
    {
        Submitted::Applied(record) | Submitted::Unchanged(record) => record,
        Submitted::Accepted { command_id } => return Ok(accepted(&id, &command_id)),
    };
    tracing::info!(
        request_id = %id,
        deadline = %rfc3339(record.deadline),
        actor = %caller.client,
        "deadline extended"
    );
    Ok(Json(Changed {
        request: view(&record, auditor.policy(), now_millis()),
        reason,
    })
    .into_response())
}

async fn denial(
    State(auditor): State<Arc<Auditor>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    ensure_rebuilt(&auditor)?;
    let id = parse_id(&id)?;
    let reason = parse_reason(&body)?;
    let mut denial = command(&id, AuditorCommandAction::Denial, &caller.client);
    denial.reason = Some(reason.clone());
    let record = match auditor
        .submit(denial)
        .await
        .map_err(|e| change_error(e, &id))?
    {
        Submitted::Applied(record) | Submitted::Unchanged(record) => record,
        Submitted::Accepted { command_id } => return Ok(accepted(&id, &command_id)),
    };
    tracing::info!(request_id = %id, actor = %caller.client, "request denied");
    Ok(Json(Changed {
        request: view(&record, auditor.policy(), now_millis()),
        reason,
    })
    .into_response())
}

/// Body of `POST /v1/requests/{id}/recipients/{connector}/resolution`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolutionBody {
    resolved_by: String,
    note: String,
    #[serde(default)]
    attachment_sha256: Option<String>,
}

/// Longest `resolved_by` accepted, in characters.
const MAX_RESOLVED_BY_CHARS: usize = 200;

fn parse_resolution(body: &[u8]) -> Result<crate::fold::Resolution, ApiError> {
    let given: ResolutionBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!(
                "the body is not a resolution ({e}); send {{\"resolved_by\": \"...\", \
                 \"note\": \"...\", \"attachment_sha256\": \"<optional hex digest>\"}}"
            ),
        )
    })?;
    let text = |value: &str, field: &'static str, max: usize| {
        let value = value.trim();
        if value.is_empty() {
            Err(ApiError::invalid(
                "missing_field",
                field,
                format!("give {field}"),
            ))
        } else if value.chars().count() > max {
            Err(ApiError::invalid(
                "field_too_long",
                field,
                format!("{field} is longer than {max} characters"),
            ))
        } else {
            Ok(value.to_owned())
        }
    };
    let attachment_sha256 = match given.attachment_sha256 {
        Some(digest) => {
            let digest = digest.trim().to_ascii_lowercase();
            if !hush_contracts::identifiers::is_sha256_hex(&digest) {
                return Err(ApiError::invalid(
                    "invalid_field",
                    "attachment_sha256",
                    "give the SHA-256 of the attachment as 64 hex digits",
                ));
            }
            Some(digest)
        }
        None => None,
    };
    Ok(crate::fold::Resolution {
        resolved_by: text(&given.resolved_by, "resolved_by", MAX_RESOLVED_BY_CHARS)?,
        note: text(&given.note, "note", MAX_REASON_CHARS)?,
        attachment_sha256,
    })
}

async fn resolution(
    State(auditor): State<Arc<Auditor>>,
    Extension(caller): Extension<Caller>,
    Path((id, connector)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    ensure_rebuilt(&auditor)?;
    let id = parse_id(&id)?;
    let resolution = parse_resolution(&body)?;
    let mut resolve = command(&id, AuditorCommandAction::Resolution, &caller.client);
    resolve.connector_id = Some(connector.clone());
    resolve.resolution = Some(OutOfBandResolution {
        resolved_by: resolution.resolved_by,
        note: resolution.note,
        attachment_sha256: resolution.attachment_sha256,
    });
    let record = match auditor
        .submit(resolve)
        .await
        .map_err(|e| change_error(e, &id))?
    {
        Submitted::Applied(record) | Submitted::Unchanged(record) => record,
        Submitted::Accepted { command_id } => return Ok(accepted(&id, &command_id)),
    };
    tracing::info!(request_id = %id, %connector, actor = %caller.client, "recipient resolved out of band");
    Ok(Json(view(&record, auditor.policy(), now_millis())).into_response())
}

async fn retry_recipient(
    State(auditor): State<Arc<Auditor>>,
    Extension(caller): Extension<Caller>,
    Path((id, connector)): Path<(String, String)>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    use crate::service::RetryError;
    use hush_runtime::kafka::RedriveError;
    ensure_rebuilt(&auditor)?;
    let id = parse_id(&id)?;
    let redriven = auditor
        .retry_recipient(&id, &connector, &caller.client)
        .await
        .map_err(|error| match error {
            RetryError::NotFound => not_found(),
            RetryError::Record(error) => unavailable(error),
            RetryError::NotFailed { .. } => {
                ApiError::new(StatusCode::CONFLICT, "not_failed", error.to_string()).at("connector")
            }
            RetryError::Redrive(RedriveError::NotFound { .. }) => ApiError::new(
                StatusCode::NOT_FOUND,
                "dead_letter_not_found",
                format!("{error}; it may have expired from the dead-letter topic"),
            ),
            RetryError::Unavailable | RetryError::Redrive(RedriveError::Kafka(_)) => {
                tracing::warn!(%error, request_id = %id, %connector, "retry failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "retry_unavailable",
                    "the recipient could not be re-driven right now; retry",
                )
            }
        })?;
    tracing::info!(request_id = %id, %connector, topic = %redriven.topic, "recipient re-driven");
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "request_id": id,
            "connector": connector,
            "retry_topic": redriven.topic,
            "partition": redriven.partition,
            "offset": redriven.offset,
        })),
    ))
}

/// Query of `GET /v1/report`.
#[derive(Debug, Default, Deserialize)]
pub struct ReportQuery {
    /// First day of receipt included, `YYYY-MM-DD`; default January 1 of the current year.
    pub from: Option<String>,
    /// Last day of receipt included, `YYYY-MM-DD`; default today.
    pub to: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// The first instant of `date` in `tz` (the first existing local time when midnight is skipped).
fn start_of_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    (0..24)
        .find_map(|hour| {
            date.and_hms_opt(hour, 0, 0)
                .and_then(|t| tz.from_local_datetime(&t).earliest())
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| date.and_time(chrono::NaiveTime::MIN).and_utc())
}

fn parse_date(value: &str, parameter: &'static str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_date",
            format!("{parameter} must be a date as YYYY-MM-DD"),
        )
        .at(parameter)
    })
}

/// The instants `[from, to]` of a report over whole local days; `today` is in `tz`.
pub fn period(
    query: &ReportQuery,
    tz: Tz,
    today: NaiveDate,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let from = match &query.from {
        Some(value) => parse_date(value, "from")?,
        None => NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today),
    };
    let to = match &query.to {
        Some(value) => parse_date(value, "to")?,
        None => today,
    };
    if from > to {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_period",
            "from must not be after to",
        )
        .at("from"));
    }
    let end = to
        .checked_add_days(Days::new(1))
        .map(|next| start_of_day(next, tz) - chrono::Duration::milliseconds(1))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    Ok((start_of_day(from, tz), end))
}

async fn report(
    State(auditor): State<Arc<Auditor>>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let csv = match query.format.as_deref().map(str::trim) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_format",
                "format must be json or csv",
            )
            .at("format"))
        }
    };
    let tz = auditor.time_zone();
    let today = Utc::now().with_timezone(&tz).date_naive();
    let (from, to) = period(&query, tz, today)?;
    ensure_rebuilt(&auditor)?;
    let report = auditor
        .store()
        .read(|records| build_report(records.map(|(_, summary)| summary), from, to));
    Ok(if csv {
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"hush-7102-report.csv\"",
                ),
            ],
            report.to_csv(),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/json")],
            report.to_json(),
        )
            .into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::most_recent;
    use crate::fold::record_for_request;
    use crate::service::ProofSettings;
    use crate::status::apply_confirmation;
    use crate::store::{AuditStore, AuditWriter, Position, RecordSummary, WriteError};
    use async_trait::async_trait;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use hush_contracts::deadline::DeadlineConfig;
    use hush_contracts::events::{
        Category, Confirmation, Identifier, IdentifierType, PrivacyRequest,
    };
    use hush_contracts::recipients::RecipientConfig;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    use tower::ServiceExt;

    const DAY: EpochMillis = 86_400_000;
    const DELETE_ID: &str = "0b6f4f7e-8d7c-4c1a-9e55-2d9c1f3b7a10";
    const OPT_OUT_ID: &str = "5a0e2c56-1f1c-4a55-9a43-3b0e63c2a0d1";
    const OLD_ID: &str = "9d3c8a52-0f5e-4a53-8f4f-7c1b2b8e6d01";

    /// Test double of the audit-topic writer, for the HTTP tests only: records what the
    /// handlers write and can refuse like an unavailable broker.
    #[derive(Default)]
    struct RecordingWriter {
        written: Mutex<Vec<AuditRecord>>,
        unavailable: AtomicBool,
    }

    #[async_trait]
    impl AuditWriter for RecordingWriter {
        async fn write(&self, record: &AuditRecord) -> Result<Position, WriteError> {
            if self.unavailable.load(Ordering::SeqCst) {
                return Err(WriteError("broker down".into()));
            }
            let mut written = self.written.lock().unwrap();
            written.push(record.clone());
            Ok(Position {
                partition: 0,
                offset: 1000 + written.len() as i64,
            })
        }
    }

    fn recipients() -> Vec<RecipientConfig> {
        ["crm", "ads"]
            .iter()
            .map(|id| {
                toml::from_str(&format!(
                    "id = \"{id}\"\nkind = \"webhook\"\nrole = \"THIRD_PARTY\"\nbase_url = \"http://x\"\n"
                ))
                .unwrap()
            })
            .collect()
    }

    fn request(id: &str, kind: RequestKind, received_at: EpochMillis) -> PrivacyRequest {
        PrivacyRequest {
            request_id: id.into(),
            subject_key: "ab".repeat(32),
            kind,
            channel: Channel::WebForm,
            jurisdiction: "US-CA".into(),
            received_at,
            identifiers: vec![Identifier {
                kind: IdentifierType::Email,
                sha256: "e".repeat(64),
                encrypted_value: None,
            }],
            categories: vec![Category::All],
            verification: None,
            age_band: None,
            source_system: "test".into(),
            consumer_initiated: true,
            idempotency_key: None,
            resolution: Vec::new(),
        }
    }

    #[test]
    fn the_view_names_each_resolution_step_by_identifier_type_never_by_value() {
        use hush_contracts::events::{ResolutionStep, ResolvedIdentifier};
        let now = now_millis();
        let mut email_only = request(OPT_OUT_ID, RequestKind::OptOutSaleShare, now);
        let customer_hash = "c".repeat(64);
        email_only.resolution = vec![ResolutionStep {
            resolver: "customer-db".into(),
            outcome: ResolutionOutcome::Resolved,
            identifiers: vec![ResolvedIdentifier {
                kind: IdentifierType::CustomerId,
                sha256: customer_hash.clone(),
            }],
            resolved_at: now,
            attempts: 1,
            reason: None,
        }];
        let policy = DeadlinePolicy::default();
        let record = record_for_request(&email_only, &recipients(), &policy, now);
        let shown = serde_json::to_value(view(&record, &policy, now)).unwrap();
        assert_eq!(
            shown["resolution"],
            serde_json::json!([{
                "resolver": "customer-db", "outcome": "RESOLVED",
                "identifier_types": ["CUSTOMER_ID"], "resolved_at": rfc3339(now),
                "attempts": 1, "reason": null
            }])
        );
        assert!(!shown.to_string().contains(&customer_hash));
    }

    struct App {
        router: Router,
        writer: Arc<RecordingWriter>,
        auditor: Arc<Auditor>,
    }

    /// A delete received a day ago (crm answered), an opt-out received an hour ago, and an
    /// opt-out received 100 days ago that nobody answered.
    async fn app() -> App {
        let now = now_millis();
        let policy = DeadlinePolicy::default();
        let store = Arc::new(AuditStore::default());
        let mut delete = record_for_request(
            &request(DELETE_ID, RequestKind::Delete, now - DAY),
            &recipients(),
            &policy,
            now - DAY,
        );
        let confirmation = Confirmation {
            request_id: DELETE_ID.into(),
            subject_key: "ab".repeat(32),
            connector_id: "crm".into(),
            role: RecipientRole::ThirdParty,
            action: ConfirmationAction::Deleted,
            exception_basis: None,
            attempts: 2,
            first_attempt_at: None,
            last_attempt_at: None,
            completed_at: now - DAY / 2,
            verification: VerificationStatus::Verified,
            evidence: HashMap::from([("http_status".into(), "204".into())]),
        };
        apply_confirmation(&mut delete, &confirmation);
        let mut opt_out = record_for_request(
            &request(OPT_OUT_ID, RequestKind::OptOutSaleShare, now - DAY / 24),
            &recipients(),
            &policy,
            now,
        );
        opt_out.jurisdiction = "<script>alert(1)</script>".into();
        let old = record_for_request(
            &request(OLD_ID, RequestKind::OptOutSaleShare, now - 100 * DAY),
            &recipients(),
            &policy,
            now - 100 * DAY,
        );
        for (offset, record) in [delete, opt_out, old].into_iter().enumerate() {
            store.put(
                record,
                Position {
                    partition: 0,
                    offset: offset as i64,
                },
            );
        }
        store.mark_rebuilt();
        let writer = Arc::new(RecordingWriter::default());
        let auditor = Arc::new(Auditor::new(
            store,
            writer.clone(),
            DeadlineConfig::default(),
            recipients(),
            ProofSettings::default(),
        ));
        App {
            router: router(auditor.clone(), test_auth().await),
            writer,
            auditor,
        }
    }

    /// An admin key and a read-only key.
    const ADMIN_KEY: &str = "hush_sk_test-admin";
    const READER_KEY: &str = "hush_sk_test-reader";

    async fn test_auth() -> Arc<Authenticator> {
        let key = |client: &str, key: &str, scope: Scope| hush_auth::config::ApiKeyConfig {
            client: client.into(),
            sha256: hush_auth::keys::api_key_sha256(key),
            scopes: vec![scope],
        };
        let config = hush_auth::AuthConfig {
            api_keys: vec![
                key("compliance-lead", ADMIN_KEY, Scope::AuditorAdmin),
                key("dashboard", READER_KEY, Scope::AuditorRead),
            ],
            ..Default::default()
        };
        Arc::new(
            Authenticator::new(&config, Default::default())
                .await
                .unwrap(),
        )
    }

    async fn call(
        router: &Router,
        method: &str,
        uri: &str,
        body: &str,
    ) -> (StatusCode, String, String) {
        call_with(
            router,
            method,
            uri,
            body,
            &[
                ("authorization", &format!("Bearer {ADMIN_KEY}")),
                ("content-type", "application/json"),
            ],
        )
        .await
    }

    async fn call_with(
        router: &Router,
        method: &str,
        uri: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, String, String) {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body.to_string())).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    fn json(body: &str) -> serde_json::Value {
        serde_json::from_str(body).unwrap()
    }

    /// The audit topic as a replica that holds nothing reads it back: each record at its
    /// position, or an unavailable broker.
    #[derive(Default)]
    struct AuditTopic {
        versions: Mutex<HashMap<i64, AuditRecord>>,
        down: AtomicBool,
    }

    #[async_trait]
    impl crate::store::RecordFetch for AuditTopic {
        async fn fetch(&self, at: Position) -> Result<Option<AuditRecord>, FetchError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(FetchError::Unavailable {
                    partition: at.partition,
                    offset: at.offset,
                    reason: "no answer within 5s".into(),
                });
            }
            Ok(self.versions.lock().unwrap().get(&at.offset).cloned())
        }
    }

    /// `GET /v1/requests/{id}` on `router`: status, the record source header, the body.
    async fn get_request(router: &Router, id: &str) -> (StatusCode, Option<String>, String) {
        let request = Request::builder()
            .uri(format!("/v1/requests/{id}"))
            .header("authorization", format!("Bearer {READER_KEY}"))
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let source = response
            .headers()
            .get(RECORD_SOURCE_HEADER)
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, source, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_record_another_replica_owns_is_read_back_from_the_audit_topic() {
        let held = app().await;
        let record = held.auditor.store().get(DELETE_ID).unwrap();
        let (summary, at) = held.auditor.store().summary(DELETE_ID).unwrap();
        let topic = Arc::new(AuditTopic::default());
        topic
            .versions
            .lock()
            .unwrap()
            .insert(at.offset, record.clone());
        // A replica that owns no partition: every record is a summary.
        let store = Arc::new(AuditStore::partitioned(3, topic.clone()));
        store.put(record, at);
        store.mark_rebuilt();
        assert!(store.get(DELETE_ID).is_none());
        assert_eq!(store.summary(DELETE_ID), Some((summary, at)));
        let replica = router(
            Arc::new(Auditor::new(
                store,
                held.writer.clone(),
                DeadlineConfig::default(),
                recipients(),
                ProofSettings::default(),
            )),
            test_auth().await,
        );
        let (status, source, from_topic) = get_request(&replica, DELETE_ID).await;
        assert_eq!(status, StatusCode::OK, "{from_topic}");
        assert_eq!(source.as_deref(), Some("audit-topic"));
        let (_, source, from_memory) = get_request(&held.router, DELETE_ID).await;
        assert_eq!(source.as_deref(), Some("held"));
        let (mut a, mut b) = (json(&from_topic), json(&from_memory));
        // The status is computed at each answer; everything else is the same record.
        a["status"] = serde_json::Value::Null;
        b["status"] = serde_json::Value::Null;
        assert_eq!(a, b);

        topic.down.store(true, Ordering::SeqCst);
        let (status, _, body) = get_request(&replica, DELETE_ID).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(json(&body)["error"], "record_unavailable", "{body}");
        let (status, _, _) = get_request(&replica, OLD_ID).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "not on record at all");
    }

    #[tokio::test]
    async fn a_request_answers_its_record_with_the_status_computed_now() {
        let app = app().await;
        let (status, content_type, body) =
            call(&app.router, "GET", &format!("/v1/requests/{DELETE_ID}"), "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("application/json"));
        let body = json(&body);
        assert_eq!(body["request_id"], DELETE_ID);
        assert_eq!(body["kind"], "DELETE");
        assert_eq!(body["status"], "OPEN");
        assert_eq!(
            body["deadline_rule"],
            "Civ. Code 1798.130(a)(2): 45 calendar days"
        );
        assert_eq!(
            body["required_connectors"],
            serde_json::json!(["crm", "ads"])
        );
        assert_eq!(body["missing_connectors"], serde_json::json!(["ads"]));
        assert_eq!(body["connectors"][0]["action"], "DELETED");
        assert_eq!(body["connectors"][0]["evidence"]["http_status"], "204");
        assert_eq!(body["completed_at"], serde_json::Value::Null);
        let received = body["received_at"].as_str().unwrap();
        assert!(DateTime::parse_from_rfc3339(received).is_ok(), "{received}");
        assert!(body.get("subject_key").is_none());
        // Stored as OPEN 100 days ago; answered as it stands now.
        let (_, _, old) = call(&app.router, "GET", &format!("/v1/requests/{OLD_ID}"), "").await;
        assert_eq!(json(&old)["status"], "OVERDUE");
        // Upper-case UUIDs name the same request.
        let (status, _, _) = call(
            &app.router,
            "GET",
            &format!("/v1/requests/{}", DELETE_ID.to_uppercase()),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_and_malformed_ids_are_refused_in_json() {
        let app = app().await;
        let (status, _, body) = call(
            &app.router,
            "GET",
            "/v1/requests/11111111-2222-4333-8444-555555555555",
            "",
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json(&body)["error"], "request_not_found");
        let (status, _, body) = call(&app.router, "GET", "/v1/requests/not-a-uuid", "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let body = json(&body);
        assert_eq!(body["error"], "invalid_request_id");
        assert_eq!(body["field"], "id");
    }

    #[tokio::test]
    async fn every_route_refuses_a_caller_without_credentials_or_the_scope() {
        let app = app().await;
        let read = ["/", "/v1/report", &format!("/v1/requests/{DELETE_ID}")];
        let admin = [
            format!("/v1/requests/{DELETE_ID}/extension"),
            format!("/v1/requests/{DELETE_ID}/denial"),
            format!("/v1/requests/{DELETE_ID}/recipients/ads/resolution"),
            format!("/v1/requests/{DELETE_ID}/recipients/ads/retry"),
        ];
        let json_only = [("content-type", "application/json")];
        for uri in read.iter().map(|u| u.to_string()).chain(admin.clone()) {
            let method = if admin.contains(&uri) { "POST" } else { "GET" };
            let (status, _, body) = call_with(&app.router, method, &uri, "{}", &json_only).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {body}");
            assert_eq!(json(&body)["error"], "unauthenticated");
            let wrong = [("authorization", "Bearer hush_sk_not-a-key"), json_only[0]];
            let (status, _, body) = call_with(&app.router, method, &uri, "{}", &wrong).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {body}");
            assert_eq!(json(&body)["error"], "invalid_credentials");
        }
        let reader = format!("Bearer {READER_KEY}");
        for uri in &admin {
            let headers = [("authorization", reader.as_str()), json_only[0]];
            let (status, _, body) =
                call_with(&app.router, "POST", uri, r#"{"reason": "x"}"#, &headers).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: {body}");
            assert_eq!(json(&body)["error"], "insufficient_scope");
        }
        let headers = [("authorization", reader.as_str())];
        let (status, _, _) = call_with(&app.router, "GET", "/v1/report", "", &headers).await;
        assert_eq!(status, StatusCode::OK, "a read key reads");
        assert!(
            app.writer.written.lock().unwrap().is_empty(),
            "nothing changed"
        );
    }

    #[tokio::test]
    async fn a_forged_cross_site_denial_is_refused_even_with_the_browsers_credentials() {
        let app = app().await;
        let uri = format!("/v1/requests/{DELETE_ID}/denial");
        let basic = format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("lead:{ADMIN_KEY}")
            )
        );
        let form = [
            ("authorization", basic.as_str()),
            ("content-type", "text/plain"),
        ];
        let (status, _, body) =
            call_with(&app.router, "POST", &uri, r#"{"reason": "forged"}"#, &form).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
        let cross_site = [
            ("authorization", basic.as_str()),
            ("content-type", "application/json"),
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ];
        let (status, _, body) = call_with(
            &app.router,
            "POST",
            &uri,
            r#"{"reason": "forged"}"#,
            &cross_site,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(json(&body)["error"], "cross_origin_refused");
        assert!(
            app.writer.written.lock().unwrap().is_empty(),
            "nothing denied"
        );
    }

    #[tokio::test]
    async fn a_denial_records_the_authenticated_actor() {
        let app = app().await;
        let uri = format!("/v1/requests/{DELETE_ID}/denial");
        let (status, _, body) = call(
            &app.router,
            "POST",
            &uri,
            r#"{"reason": "fraudulent request"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let written = app.writer.written.lock().unwrap().last().cloned().unwrap();
        let change = written.changes.last().expect("the change is recorded");
        assert_eq!(
            (change.action.as_str(), change.actor.as_str()),
            ("DENIAL", "compliance-lead")
        );
        assert_eq!(change.note.as_deref(), Some("fraudulent request"));
        assert_eq!(json(&body)["changes"][0]["actor"], "compliance-lead");
    }

    #[tokio::test]
    async fn nothing_is_answered_before_the_rebuild() {
        let store = Arc::new(AuditStore::default());
        let auditor = Arc::new(Auditor::new(
            store,
            Arc::new(RecordingWriter::default()),
            DeadlineConfig::default(),
            vec![],
            ProofSettings::default(),
        ));
        let router = router(auditor, test_auth().await);
        let (status, _, body) =
            call(&router, "GET", &format!("/v1/requests/{DELETE_ID}"), "").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(json(&body)["error"], "not_ready");
        let (status, _, _) = call(&router, "GET", "/v1/report", "").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let (status, _, html) = call(&router, "GET", "/", "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("still being rebuilt"));
    }

    #[tokio::test]
    async fn a_deletion_is_extended_once_and_the_new_record_is_written() {
        let app = app().await;
        let uri = format!("/v1/requests/{DELETE_ID}/extension");
        let before = app.auditor.store().get(DELETE_ID).unwrap();
        let (status, _, body) =
            call(&app.router, "POST", &uri, r#"{"reason": "vendor backlog"}"#).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let body = json(&body);
        assert_eq!(body["extended"], true);
        assert_eq!(body["reason"], "vendor backlog");
        assert!(body["deadline_rule"]
            .as_str()
            .unwrap()
            .ends_with("+ 45-day extension"));
        let written = app.writer.written.lock().unwrap().clone();
        assert_eq!(written.len(), 1);
        assert!(written[0].extended);
        assert!(written[0].deadline > before.deadline);
        assert_eq!(app.auditor.store().get(DELETE_ID).unwrap(), written[0]);

        let (status, _, body) = call(&app.router, "POST", &uri, r#"{"reason": "again"}"#).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(json(&body)["error"], "already_extended");
        assert_eq!(app.writer.written.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_extension_is_refused_for_an_opt_out_an_unknown_request_or_no_reason() {
        let app = app().await;
        let (status, _, body) = call(
            &app.router,
            "POST",
            &format!("/v1/requests/{OPT_OUT_ID}/extension"),
            r#"{"reason": "busy"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(json(&body)["error"], "no_extension_available");
        let (status, _, _) = call(
            &app.router,
            "POST",
            "/v1/requests/11111111-2222-4333-8444-555555555555/extension",
            r#"{"reason": "busy"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let uri = format!("/v1/requests/{DELETE_ID}/extension");
        let (status, _, body) = call(&app.router, "POST", &uri, r#"{"reason": "  "}"#).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json(&body)["field"], "reason");
        let (status, _, body) = call(&app.router, "POST", &uri, "not json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json(&body)["error"], "invalid_json");
        assert!(app.writer.written.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_out_of_band_resolution_is_recorded_as_the_recipients_outcome() {
        let app = app().await;
        let uri = format!("/v1/requests/{DELETE_ID}/recipients/ads/resolution");
        let body = r#"{"resolved_by": "ops@example.com", "note": "deleted by the vendor, ticket 7",
                       "attachment_sha256": "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"}"#;
        let (status, _, answer) = call(&app.router, "POST", &uri, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let answer = json(&answer);
        let ads = answer["connectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["connector_id"] == "ads")
            .unwrap()
            .clone();
        assert_eq!(ads["action"], "DELETED");
        assert_eq!(ads["evidence"]["resolution"], "out_of_band");
        assert_eq!(ads["evidence"]["resolved_by"], "ops@example.com");
        assert_eq!(ads["evidence"]["attachment_sha256"], "ab".repeat(32));
        assert_eq!(app.writer.written.lock().unwrap().len(), 1);

        let (status, _, answer) = call(
            &app.router,
            "POST",
            &format!("/v1/requests/{DELETE_ID}/recipients/nobody/resolution"),
            r#"{"resolved_by": "ops", "note": "n"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(json(&answer)["error"], "recipient_not_required");
        let (status, _, answer) = call(
            &app.router,
            "POST",
            &uri,
            r#"{"resolved_by": "ops", "note": " "}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json(&answer)["field"], "note");
        assert_eq!(
            app.writer.written.lock().unwrap().len(),
            1,
            "refusals write nothing"
        );
    }

    #[tokio::test]
    async fn a_denial_is_written_and_answered_as_denied() {
        let app = app().await;
        let uri = format!("/v1/requests/{DELETE_ID}/denial");
        let reason = r#"{"reason": "identity could not be verified"}"#;
        let (status, _, body) = call(&app.router, "POST", &uri, reason).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let body = json(&body);
        assert_eq!(body["status"], "DENIED");
        assert_eq!(body["denial_reason"], "identity could not be verified");
        let written = app.writer.written.lock().unwrap().clone();
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].status, AuditStatus::Denied);
        // The same denial again changes nothing; another reason conflicts.
        let (status, _, _) = call(&app.router, "POST", &uri, reason).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(app.writer.written.lock().unwrap().len(), 1);
        let (status, _, body) = call(&app.router, "POST", &uri, r#"{"reason": "fraud"}"#).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(json(&body)["error"], "already_denied");
    }

    #[tokio::test]
    async fn nothing_changes_when_the_broker_does_not_acknowledge() {
        let app = app().await;
        app.writer.unavailable.store(true, Ordering::SeqCst);
        let before = app.auditor.store().get(OPT_OUT_ID).unwrap();
        let (status, _, body) = call(
            &app.router,
            "POST",
            &format!("/v1/requests/{OPT_OUT_ID}/denial"),
            r#"{"reason": "fraud"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(json(&body)["error"], "broker_unavailable");
        assert_eq!(app.auditor.store().get(OPT_OUT_ID).unwrap(), before);
    }

    #[tokio::test]
    async fn the_report_defaults_to_this_year_and_speaks_json_or_csv() {
        let app = app().await;
        let (status, content_type, body) = call(&app.router, "GET", "/v1/report", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "application/json");
        let body = json(&body);
        assert_eq!(body["kinds"][0]["kind"], "OPT_OUT_SALE_SHARE");
        assert_eq!(body["kinds"][2]["kind"], "DELETE");
        // The delete was received a day ago: in this year's report unless today is January 1.
        let tz = app.auditor.time_zone();
        let this_year = |ms: EpochMillis| instant(ms).with_timezone(&tz).year();
        let now = now_millis();
        let deletes = u64::from(this_year(now - DAY) == this_year(now));
        assert_eq!(body["kinds"][2]["received"], deletes);
        let (status, content_type, csv) =
            call(&app.router, "GET", "/v1/report?format=csv", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "text/csv; charset=utf-8");
        assert!(csv.starts_with("kind,received,complied_whole,"), "{csv}");
        assert!(
            csv.contains(&format!("\nDELETE,{deletes},0,0,0,,,0\n")),
            "{csv}"
        );
    }

    #[tokio::test]
    async fn report_parameters_are_checked_and_named() {
        let app = app().await;
        for (query, field) in [
            ("from=2026-13-01", "from"),
            ("to=yesterday", "to"),
            ("from=", "from"),
            ("from=2026-05-02&to=2026-05-01", "from"),
            ("format=xml", "format"),
        ] {
            let (status, _, body) =
                call(&app.router, "GET", &format!("/v1/report?{query}"), "").await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(json(&body)["field"], field, "{query}");
        }
    }

    #[test]
    fn a_period_covers_whole_local_days() {
        let query = ReportQuery {
            from: Some("2026-01-01".into()),
            to: Some("2026-03-31".into()),
            format: None,
        };
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let (from, to) = period(&query, Tz::America__Los_Angeles, today).unwrap();
        assert_eq!(from.to_rfc3339(), "2026-01-01T08:00:00+00:00");
        // March 31 is daylight time (UTC-7).
        assert_eq!(to.to_rfc3339(), "2026-04-01T06:59:59.999+00:00");
        let (from, to) = period(&ReportQuery::default(), Tz::UTC, today).unwrap();
        assert_eq!(from.to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-06-01T23:59:59.999+00:00");
    }

    #[tokio::test]
    async fn the_dashboard_counts_lists_and_escapes() {
        let app = app().await;
        let (status, content_type, html) = call(&app.router, "GET", "/", "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("text/html"));
        assert!(html.contains("<th>OVERDUE</th>"));
        assert!(html.contains("3 requests on record"));
        assert!(html.contains("href=\"/v1/report\""));
        assert!(html.contains(&format!("href=\"/v1/requests/{DELETE_ID}\"")));
        assert!(html.contains("crm: DELETED · VERIFIED"));
        assert!(html.contains("ads: <em>waiting</em>"));
        assert!(!html.contains("<script>"), "values are escaped");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        // Newest first: the opt-out (an hour old) before the delete (a day old).
        let opt_out = html.find(OPT_OUT_ID).unwrap();
        let delete = html.find(DELETE_ID).unwrap();
        let old = html.find(OLD_ID).unwrap();
        assert!(opt_out < delete && delete < old);
    }

    #[test]
    fn most_recent_keeps_the_newest_n() {
        let policy = DeadlinePolicy::default();
        let records: Vec<AuditRecord> = (0..10)
            .map(|i| {
                let id = format!("00000000-0000-4000-8000-00000000000{i}");
                record_for_request(&request(&id, RequestKind::Delete, i * DAY), &[], &policy, 0)
            })
            .collect();
        let summaries: Vec<(String, RecordSummary)> = records
            .iter()
            .map(|r| (r.request_id.clone(), RecordSummary::of(r)))
            .collect();
        let recent = most_recent(summaries.iter().map(|(k, s)| (k.as_str(), s)).collect(), 3);
        let expected: Vec<String> = [9, 8, 7]
            .iter()
            .map(|i| format!("00000000-0000-4000-8000-00000000000{i}"))
            .collect();
        assert_eq!(recent, expected);
    }
}
