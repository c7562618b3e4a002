//! Usage and cost: logical and stored sizes per image, droplet, volume and region, the bytes
//! deleting each would free, and what it costs a month (`GET /drydock/v1/usage`).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;

pub async fn get(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(&["droplet:read", "block_storage:read"])?;
    let report = state
        .blocking(move |state| Ok(drydock_jobs::usage_report(&state.jobs, caller.team.id, &state.settings.prices)?))
        .await?;
    Ok(Json(json!({ "usage": report })))
}
