//! Volume actions drydock serves: backup settings, as droplets have them (a drydock extension;
//! DigitalOcean backs up droplets only). Attaching and resizing belong to the machine, not to
//! its backups, and are refused with a reason.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use drydock_catalog::{NewAction, ResourceType};
use serde::Deserialize;
use serde_json::{Value, json};

use super::droplet_actions::immediate;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Path};
use crate::{policy, views};

#[derive(Deserialize)]
pub struct VolumeActionRequest {
    #[serde(rename = "type")]
    kind: String,
    backup_policy: Option<Value>,
}

pub async fn post(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<VolumeActionRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(&["block_storage_action:create"])?;
    let given = match body.kind.as_str() {
        "enable_backups" | "disable_backups" => {
            body.backup_policy.as_ref().map(|p| policy::normalize(Some(p), state.jobs.regions())).transpose()?
        }
        "change_backup_policy" => {
            let given = body
                .backup_policy
                .as_ref()
                .ok_or_else(|| ApiError::unprocessable("change_backup_policy needs backup_policy"))?;
            Some(policy::normalize(Some(given), state.jobs.regions())?)
        }
        "attach" | "detach" | "resize" => {
            return Err(ApiError::unprocessable(format!(
                "drydock does not {} volumes: it backs up the disk where it is",
                body.kind
            )));
        }
        other => {
            return Err(ApiError::unprocessable(format!(
                "unknown volume action type {other:?}: drydock serves enable_backups, disable_backups and change_backup_policy"
            )));
        }
    };
    let kind = body.kind.clone();
    let action = state
        .blocking(move |state| {
            let team = caller.team.id;
            let volume = state.catalog.volume(team, &id)?;
            let now = state.clock.unix();
            let (enabled, policy) = match kind.as_str() {
                "disable_backups" => (false, None),
                // Enabling again without a policy resumes the one set before.
                "enable_backups" => (
                    true,
                    Some(
                        given
                            .or(volume.backup_policy.clone())
                            .map_or_else(|| policy::normalize(None, state.jobs.regions()), Ok)?,
                    ),
                ),
                _ => (volume.backups_enabled, given),
            };
            let new = NewAction {
                kind,
                resource_type: ResourceType::Volume,
                resource_id: volume.id.clone(),
                region: volume.region.clone(),
                params: json!({"backup_policy": policy}),
            };
            immediate(state, team, new, |state| {
                Ok(state.catalog.set_volume_backups(team, &volume.id, enabled, policy.as_ref(), now)?)
            })
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"action": views::action(state.jobs.regions(), &action)}))))
}
