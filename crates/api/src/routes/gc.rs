//! Garbage collection on request (`POST /drydock/v1/gc`, full access) and its status
//! (`GET /drydock/v1/gc`). The scheduler also runs it on its own interval.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

pub async fn status(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(&["droplet:read", "block_storage:read"])?;
    Ok(Json(json!({"gc": state.jobs.gc_status()})))
}

pub async fn start(State(state): State<AppState>, caller: Caller) -> ApiResult<(StatusCode, Json<Value>)> {
    if !caller.has_full_access() {
        return Err(ApiError::forbidden(
            "garbage collection affects every team: it needs a full-access token (scope *)",
        ));
    }
    let started = state.jobs.start_gc();
    Ok((StatusCode::ACCEPTED, Json(json!({"started": started, "gc": state.jobs.gc_status()}))))
}
