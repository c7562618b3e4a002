//! The scheduler's record of a droplet's or volume's backup windows: each window once, with how
//! it went (succeeded, failed, missed; attempts, errors, the backup it made). Newest first.

use axum::Json;
use axum::extract::State;
use drydock_catalog::{BackupRun, ResourceType};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, QueryMap, int_id};
use crate::policy::rfc3339;

/// Runs returned without `?limit=`, and at most.
const LIMIT_DEFAULT: u32 = 100;
const LIMIT_MAX: u32 = 1000;

pub async fn droplet(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: QueryMap,
) -> ApiResult<Json<Value>> {
    caller.require(&["droplet:read"])?;
    let id = int_id("droplet", &id)?;
    let limit = limit(&query)?;
    let runs = state
        .blocking(move |state| {
            state.catalog.droplet(caller.team.id, id)?;
            Ok(state.catalog.backup_runs(caller.team.id, ResourceType::Droplet, &id.to_string(), limit)?)
        })
        .await?;
    Ok(Json(json!({"backup_runs": runs.iter().map(view).collect::<Vec<_>>()})))
}

pub async fn volume(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: QueryMap,
) -> ApiResult<Json<Value>> {
    caller.require(&["block_storage:read"])?;
    let limit = limit(&query)?;
    let runs = state
        .blocking(move |state| {
            let volume = state.catalog.volume(caller.team.id, &id)?;
            Ok(state.catalog.backup_runs(caller.team.id, ResourceType::Volume, &volume.id, limit)?)
        })
        .await?;
    Ok(Json(json!({"backup_runs": runs.iter().map(view).collect::<Vec<_>>()})))
}

/// `?limit=`: a positive integer, lowered to the maximum as `per_page` is; anything else is a 400.
fn limit(query: &QueryMap) -> ApiResult<u32> {
    match query.get("limit") {
        None => Ok(LIMIT_DEFAULT),
        Some(text) => match text.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n.min(u64::from(LIMIT_MAX)) as u32),
            _ => Err(ApiError::bad_request(format!("limit must be a positive integer, not {text:?}"))),
        },
    }
}

fn view(run: &BackupRun) -> Value {
    json!({
        "id": run.id,
        "window": {"start": rfc3339(run.window_start), "end": rfc3339(run.window_end)},
        "status": run.status.as_str(),
        "attempts": run.attempts,
        "failed_attempts": run.failed_attempts,
        // The daemon that started the current attempt (`host:pid`); null for a missed window.
        "claimed_by": run.claimed_by,
        "action_id": run.action_id,
        "image_id": run.image_id,
        "error": run.error,
        "taken_at": run.taken_at.map(rfc3339),
        "finished_at": run.finished_at.map(rfc3339),
        "duration_secs": run.duration_secs,
        "size_bytes": run.size_bytes,
    })
}
