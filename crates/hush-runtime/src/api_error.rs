//! The JSON error every Hush HTTP endpoint answers with: a stable code, a human message and,
//! when one is at fault, the path of the field or parameter.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// An error answer: `{"error": code, "message": text, "field": path}`. Answering with one
/// counts it in [`crate::metrics::HTTP_ERRORS`] under its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{error}: {message}")]
pub struct ApiError {
    #[serde(skip)]
    status: u16,
    /// Stable machine-readable code, e.g. `verification_required`.
    pub error: &'static str,
    /// What is wrong and how to fix it (never a raw identifier).
    pub message: String,
    /// Path of the field or parameter at fault, e.g. `identifiers[0].value` or `vendor`.
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

    /// Names the field or parameter at fault.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// A 422 about one field.
    pub fn invalid(
        error: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, error, message).at(field)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        crate::metrics::HTTP_ERRORS
            .with_label_values(&[self.error])
            .inc();
        (self.status(), Json(self)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .expect("body is readable");
        (status, serde_json::from_slice(&body).expect("body is JSON"))
    }

    #[tokio::test]
    async fn a_field_error_answers_422_with_code_message_and_field() {
        let (status, body) = answer(ApiError::invalid(
            "invalid_identifier",
            "identifiers[0].value",
            "not an email address",
        ))
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            body,
            serde_json::json!({
                "error": "invalid_identifier",
                "message": "not an email address",
                "field": "identifiers[0].value",
            })
        );
    }

    #[tokio::test]
    async fn an_error_without_a_field_leaves_it_out() {
        let (status, body) = answer(ApiError::new(
            StatusCode::NOT_FOUND,
            "request_not_found",
            "no such request",
        ))
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            serde_json::json!({"error": "request_not_found", "message": "no such request"})
        );
    }

    #[tokio::test]
    async fn answering_counts_the_error_by_code() {
        let counter = crate::metrics::HTTP_ERRORS.with_label_values(&["api_error_test_code"]);
        let before = counter.get();
        answer(ApiError::new(
            StatusCode::BAD_REQUEST,
            "api_error_test_code",
            "counted",
        ))
        .await;
        assert_eq!(counter.get(), before + 1);
    }
}
