//! How the deny-list's lookup errors answer over HTTP, as the shared
//! [`ApiError`](hush_runtime::api_error::ApiError) (`{"error","message","field"}`).

use axum::http::StatusCode;
use hush_runtime::api_error::ApiError;

use crate::denylist::CheckError;

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
