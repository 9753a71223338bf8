//! The JSON error every auditor endpoint answers with (the same shape as intake's): a stable
//! code, a human message and, when one is at fault, the parameter or field.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// An error answer: `{"error": code, "message": text, "field": name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{error}: {message}")]
pub struct ApiError {
    #[serde(skip)]
    status: u16,
    /// Stable machine-readable code, e.g. `request_not_found`.
    pub error: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
    /// The parameter or field at fault.
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

    /// Names the parameter or field at fault.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self)).into_response()
    }
}
