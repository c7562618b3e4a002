//! The retention simulator: what a policy leaves after N days, why each backup is kept, and
//! what it would cost (`POST /drydock/v1/retention/simulate`); and the plan as it applies now to
//! a droplet's or volume's backups.

use axum::Json;
use axum::extract::State;
use drydock_catalog::ResourceType;
use drydock_schedule::{Policy, cost, retention, simulate};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Path};
use crate::policy;

/// Without a size, estimates are for 10 GiB of data changing 2% between backups.
const DATA_BYTES_DEFAULT: u64 = 10 << 30;
const CHANGE_DEFAULT: f64 = 0.02;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    policy: Option<Value>,
    /// RFC 3339; now by default.
    start: Option<String>,
    days: Option<u32>,
    data_bytes: Option<u64>,
    change_per_backup: Option<f64>,
}

pub async fn simulate(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<SimulateRequest>,
) -> ApiResult<Json<Value>> {
    caller.require(&["droplet:read"])?;
    let policy = policy::parse_request(body.policy.as_ref())?;
    let start = match &body.start {
        None => state.clock.now(),
        Some(text) => text
            .parse::<Timestamp>()
            .map_err(|_| ApiError::unprocessable(format!("start must be an RFC 3339 time, not {text:?}")))?,
    };
    let days = body.days.unwrap_or(30);
    if days == 0 || days > simulate::DAYS_MAX {
        return Err(ApiError::unprocessable(format!("days must be 1 to {}, not {days}", simulate::DAYS_MAX)));
    }
    let change = body.change_per_backup.unwrap_or(CHANGE_DEFAULT);
    if !(0.0..=1.0).contains(&change) {
        return Err(ApiError::unprocessable(format!("change_per_backup must be a fraction from 0 to 1, not {change}")));
    }
    let data_bytes = body.data_bytes.unwrap_or(DATA_BYTES_DEFAULT);
    let prices = state.settings.prices.clone();
    let result = tokio::task::spawn_blocking(move || {
        let simulation = simulate::simulate(&policy, "simulation", start, days)?;
        let estimate = cost::estimate(&policy, &simulation, data_bytes, change, &prices);
        Ok(json!({
            "policy": policy.to_json(),
            "simulation": simulation.to_json(),
            "estimate": {
                "data_bytes": data_bytes,
                "change_per_backup": change,
                "stored_bytes": estimate.stored_bytes,
                "monthly_cost": estimate.monthly_cost,
                "currency": prices.currency,
            },
        }))
    })
    .await
    .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}")))?
    .map_err(|e: simulate::TooManyBackups| ApiError::unprocessable(e.to_string()))?;
    Ok(Json(result))
}

/// `GET /drydock/v1/droplets/{id}/retention` and the volume equivalent: the retention plan
/// applied now to the resource's backups — which are kept and why, which expire at the next
/// pruning — without changing anything.
pub async fn droplet_plan(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(&["droplet:read"])?;
    let id = crate::extract::int_id("droplet", &id)?;
    let plan = state
        .blocking(move |state| {
            let droplet = state.catalog.droplet(caller.team.id, id)?;
            current_plan(state, caller.team.id, ResourceType::Droplet, &id.to_string(), droplet.backup_policy.as_ref())
        })
        .await?;
    Ok(Json(plan))
}

pub async fn volume_plan(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(&["block_storage:read"])?;
    let plan = state
        .blocking(move |state| {
            let volume = state.catalog.volume(caller.team.id, &id)?;
            current_plan(state, caller.team.id, ResourceType::Volume, &volume.id, volume.backup_policy.as_ref())
        })
        .await?;
    Ok(Json(plan))
}

fn current_plan(
    state: &AppState,
    team: i64,
    resource_type: ResourceType,
    resource_id: &str,
    stored: Option<&Value>,
) -> ApiResult<Value> {
    let policy = Policy::from_json(stored.unwrap_or(&Value::Null)).ok();
    let backups = state.catalog.backup_images(team, resource_type, resource_id)?;
    let refs = drydock_jobs::retention_refs(&backups);
    let decisions = match &policy {
        Some(policy) => retention::plan(&policy.retention, &refs, state.clock.now()),
        None => Vec::new(),
    };
    let items: Vec<Value> = backups
        .iter()
        .map(|image| {
            let decision = decisions.iter().find(|d| d.id == image.id);
            json!({
                "id": image.id,
                "name": image.name,
                "created_at": image.created_at,
                "tags": image.tags,
                "keep": decision.is_none_or(|d| d.keep()),
                "reasons": decision.map_or_else(Vec::new, |d| d.reasons.iter().map(|r| r.to_string()).collect()),
                "expires_at": image.expires_at.map(crate::policy::rfc3339),
            })
        })
        .collect();
    Ok(json!({"policy": policy.map(|p| p.to_json()), "backups": items}))
}
