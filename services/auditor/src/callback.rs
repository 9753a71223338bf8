//! `POST /v1/callbacks/{connector_id}`: a webhook recipient confirms, in its own signed words,
//! that it complied (or holds nothing, or keeps data under a statutory exception). The
//! signature is checked with the recipient's signing secret; the answer becomes that
//! connector's outcome, VERIFIED, on the request's record, through a `CALLBACK` command applied
//! by the replica that owns the request (`202 Accepted` when not applied within the wait).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hush_contracts::callback::{verify_callback, CallbackError, WEBHOOK_KIND};
use hush_contracts::events::{now_millis, Confirmation};
use hush_contracts::signature::{DEFAULT_TOLERANCE, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use hush_runtime::api_error::ApiError;
use serde_json::json;

use crate::service::{Auditor, Submitted};
use axum::response::{IntoResponse, Response};
use hush_contracts::commands::AuditorCommandAction;

/// Applies a signed recipient callback.
pub async fn recipient_callback(
    State(auditor): State<Arc<Auditor>>,
    Path(connector_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let recipient = auditor
        .recipients()
        .iter()
        .find(|r| r.id == connector_id && r.kind == WEBHOOK_KIND)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_connector",
                format!("no webhook recipient `{connector_id}` is configured"),
            )
            .at("connector_id")
        })?;
    let secret = recipient.credential("signing_secret").map_err(|e| {
        tracing::error!(error = %e, connector = %connector_id, "callback secret unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "callback_not_configured",
            "this auditor cannot check the recipient's signature (signing secret not set)",
        )
    })?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let callback = verify_callback(
        &secret,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        chrono::Utc::now().timestamp(),
        DEFAULT_TOLERANCE,
    )
    .map_err(|error| match error {
        CallbackError::Signature(e) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            format!("callback signature refused: {e}"),
        ),
        CallbackError::Malformed(reason) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_callback",
            format!("callback body refused: {reason}"),
        ),
    })?;
    let record = auditor
        .store()
        .record(&callback.request_id)
        .await
        .map_err(crate::api::unavailable)?;
    let record = record.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "request_not_found",
            "no request with this id is on record",
        )
        .at("request_id")
    })?;
    let completion = callback.completion(record.kind);
    let previous_attempts = record
        .connectors
        .iter()
        .find(|c| c.connector_id == connector_id)
        .map_or(1, |c| c.attempts);
    let mut evidence: std::collections::HashMap<String, String> =
        completion.evidence.into_iter().collect();
    evidence.insert("confirmed_by".into(), "recipient callback (signed)".into());
    let now = now_millis();
    let confirmation = Confirmation {
        request_id: record.request_id.clone(),
        subject_key: record.subject_key.clone(),
        connector_id: connector_id.clone(),
        role: recipient.role,
        action: completion.action,
        exception_basis: completion.exception_basis,
        attempts: previous_attempts,
        first_attempt_at: None,
        last_attempt_at: None,
        completed_at: now,
        verification: completion.verification,
        evidence,
    };
    let mut command = crate::api::command(
        &record.request_id,
        AuditorCommandAction::Callback,
        &connector_id,
    );
    command.issued_at = now;
    command.connector_id = Some(connector_id.clone());
    command.callback = Some(confirmation.clone());
    let recorded = match auditor.submit(command).await {
        Ok(Submitted::Applied(_)) => true,
        Ok(Submitted::Unchanged(_)) => false,
        Ok(Submitted::Accepted { command_id }) => {
            tracing::info!(request_id = %record.request_id, connector = %connector_id, %command_id, "recipient callback accepted");
            return Ok(crate::api::accepted(&record.request_id, &command_id));
        }
        Err(error) => {
            tracing::error!(%error, request_id = %record.request_id, "callback command not published");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "broker_unavailable",
                "the callback could not be recorded right now; retry",
            ));
        }
    };
    tracing::info!(request_id = %record.request_id, connector = %connector_id, action = confirmation.action.as_str(), "recipient callback recorded");
    Ok(Json(json!({
        "request_id": record.request_id,
        "connector_id": connector_id,
        "action": confirmation.action,
        "verification": confirmation.verification,
        "recorded": recorded,
    }))
    .into_response())
}
