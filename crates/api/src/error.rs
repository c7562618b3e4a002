//! The one place errors become HTTP responses: DigitalOcean's body `{id, message, request_id}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

tokio::task_local! {
    /// The id of the request being served, set by the request-id middleware.
    pub static REQUEST_ID: String;
}

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unable to authenticate you.")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// DigitalOcean's short code for a status.
    fn id(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "request_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable_entity",
            StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
            StatusCode::SERVICE_UNAVAILABLE => "service_unavailable",
            _ => "server_error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = REQUEST_ID.try_with(|id| id.clone()).unwrap_or_default();
        if self.status.is_server_error() {
            tracing::error!(request_id, "{}", self.message);
        }
        let body = json!({"id": self.id(), "message": self.message, "request_id": request_id});
        (self.status, Json(body)).into_response()
    }
}

impl From<drydock_catalog::Error> for ApiError {
    fn from(e: drydock_catalog::Error) -> Self {
        match e {
            drydock_catalog::Error::NotFound(_) => ApiError::not_found(e.to_string()),
            drydock_catalog::Error::Conflict(_) => ApiError::unprocessable(e.to_string()),
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

impl From<drydock_catalog::StartError> for ApiError {
    fn from(e: drydock_catalog::StartError) -> Self {
        match e {
            drydock_catalog::StartError::Locked { .. } => ApiError::unprocessable(e.to_string()),
            drydock_catalog::StartError::Catalog(e) => e.into(),
        }
    }
}

impl From<drydock_jobs::Error> for ApiError {
    fn from(e: drydock_jobs::Error) -> Self {
        match e {
            drydock_jobs::Error::Invalid(message) => ApiError::unprocessable(message),
            drydock_jobs::Error::Catalog(e) => e.into(),
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}
