//! The errors the admin routes share: a KV failure, and a body that is not JSON.

use crate::error::{ApiError, ErrorCode};

pub(super) fn store_error(e: crate::ports::StoreError) -> ApiError {
    ApiError::new(ErrorCode::RulesUnavailable, format!("KV: {}", e.0))
}

pub(super) fn invalid_json(e: serde_json::Error) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidJson,
        format!("the body is not valid JSON: {e}"),
    )
}
