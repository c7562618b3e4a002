//! Health, the OpenAPI document, and the catalog check.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

/// The OpenAPI document of everything this server serves, DigitalOcean's subset and drydock's
/// extensions.
const OPENAPI: &str = include_str!("../../openapi.json");

pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

pub async fn catalog_check(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    if !caller.has_full_access() {
        return Err(ApiError::forbidden("the catalog check needs a token with full access (scope *)"));
    }
    let check = state.blocking(|state| Ok(drydock_jobs::check_catalog(&state.catalog, state.jobs.regions())?)).await?;
    Ok(Json(json!({
        "images_checked": check.images_checked,
        "snapshots_checked": check.snapshots_checked,
        "consistent": check.mismatches.is_empty(),
        "mismatches": check.mismatches.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
    })))
}
