//! The JSON error every deny-list endpoint answers with: a stable code, a human message and,
//! when one is at fault, the path of the field (`{"error","message","field"}`, as intake does).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::denylist::CheckError;

/// An error answer: `{"error": code, "message": text, "field": path}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{error}: {message}")]
pub struct ApiError {
    #[serde(skip)]
    status: u16,
    /// Stable machine-readable code, e.g. `invalid_identifier`.
    pub error: &'static str,
    /// What is wrong and how to fix it (never a raw identifier).
    pub message: String,
    /// Path of the field at fault, e.g. `identifiers[0].value` or `vendor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// An error with `status` and `code`.
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: status.as_u16(),
            error,
            message: message.into(),
            field: None,
        }
    }

    /// Names the field at fault.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<CheckError> for ApiError {
    fn from(error: CheckError) -> Self {
        let message = error.to_string();
        match error {
            CheckError::NotRebuilt => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", message)
            }
            CheckError::InvalidVendor => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_vendor", message).at("vendor")
            }
            CheckError::Invalid { field, message } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_identifier",
                message,
            )
            .at(field),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        crate::metrics::REJECTED
            .with_label_values(&[self.error])
            .inc();
        (self.status(), Json(self)).into_response()
    }
}
