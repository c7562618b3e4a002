//! Droplet actions: snapshots, restores, power, rename and backup settings, one droplet at a
//! time or every droplet with a tag.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use drydock_catalog::{Action, Droplet, DropletFilter, ImageType, NewAction, NewImage, Page, ResourceType};
use drydock_jobs::Regions;
use serde::Deserialize;
use serde_json::{Value, json};

use super::droplets::validate_name;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Path, QueryMap, int_id};
use crate::page::Listing;
use crate::{policy, views};

const SNAPSHOT_NAME_BYTES_MAX: usize = 255;
const POWER_TYPES: [&str; 5] = ["power_off", "power_on", "shutdown", "reboot", "power_cycle"];
/// DigitalOcean's action types drydock has no equivalent for.
const UNSUPPORTED_TYPES: [&str; 6] =
    ["rebuild", "resize", "password_reset", "enable_ipv6", "change_kernel", "enable_private_networking"];
const BY_TAG_TYPES: [&str; 8] = [
    "power_cycle",
    "power_on",
    "power_off",
    "shutdown",
    "enable_ipv6",
    "enable_backups",
    "disable_backups",
    "snapshot",
];

#[derive(Deserialize, Clone)]
pub struct ActionRequest {
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    image: Option<Value>,
    backup_policy: Option<Value>,
    /// drydock: power the droplet off for the snapshot and on again afterwards.
    #[serde(default)]
    power_off: bool,
}

pub async fn post(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ActionRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = int_id("droplet", &id)?;
    check_scopes(&caller, &body.kind)?;
    check(&body, state.jobs.regions())?;
    let view = state
        .blocking(move |state| {
            let droplet = state.catalog.droplet(caller.team.id, id)?;
            let action = start(state, &droplet, &body)?;
            Ok(views::action(state.jobs.regions(), &action))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "action": view }))))
}

pub async fn post_by_tag(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryMap,
    JsonBody(body): JsonBody<ActionRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let tag = query.get("tag_name").ok_or_else(|| ApiError::bad_request("tag_name is required"))?.to_string();
    if !BY_TAG_TYPES.contains(&body.kind.as_str()) {
        return Err(ApiError::unprocessable(format!(
            "{:?} actions cannot be run by tag (allowed: {})",
            body.kind,
            BY_TAG_TYPES.join(", ")
        )));
    }
    check_scopes(&caller, &body.kind)?;
    check(&body, state.jobs.regions())?;
    let views = state
        .blocking(move |state| {
            let filter = DropletFilter { tag: Some(tag), name: None };
            let (droplets, _) = state.catalog.droplets(caller.team.id, &filter, Page::ALL)?;
            // All or nothing: refuse before starting anything if one droplet is busy.
            if let Some(busy) = droplets.iter().find(|d| d.locked) {
                return Err(ApiError::unprocessable(format!("droplet {} is locked by an action in progress", busy.id)));
            }
            let mut views = Vec::new();
            for droplet in &droplets {
                views.push(views::action(state.jobs.regions(), &start(state, droplet, &body)?));
            }
            Ok(views)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "actions": views }))))
}

fn check_scopes(caller: &Caller, kind: &str) -> ApiResult<()> {
    caller.require(&["droplet:update"])?;
    match kind {
        "snapshot" => caller.require(&["image:create"]),
        "restore" => caller.require(&["droplet:admin"]),
        _ => Ok(()),
    }
}

/// Checks what can be checked without the droplet, so a bad request is refused the same way
/// whether it names one droplet or a tag with none.
fn check(body: &ActionRequest, regions: &Regions) -> ApiResult<()> {
    let kind = body.kind.as_str();
    match kind {
        "snapshot" => snapshot_name(body).map(drop),
        "restore" => restore_image(body).map(drop),
        "rename" => new_name(body).map(drop),
        "enable_backups" | "change_backup_policy" => backup_policy(body, regions).map(drop),
        "disable_backups" => Ok(()),
        _ if POWER_TYPES.contains(&kind) => Ok(()),
        _ if UNSUPPORTED_TYPES.contains(&kind) => Err(ApiError::unprocessable(format!(
            "drydock does not support {kind} actions: it protects machines it does not host"
        ))),
        _ => Err(ApiError::unprocessable(format!("unknown droplet action type {kind:?}"))),
    }
}

fn snapshot_name(body: &ActionRequest) -> ApiResult<Option<String>> {
    match &body.name {
        Some(name) if name.is_empty() || name.len() > SNAPSHOT_NAME_BYTES_MAX || name.chars().any(char::is_control) => {
            Err(ApiError::unprocessable(format!(
                "snapshot name must be 1 to {SNAPSHOT_NAME_BYTES_MAX} bytes without control characters"
            )))
        }
        name => Ok(name.clone()),
    }
}

fn restore_image(body: &ActionRequest) -> ApiResult<i64> {
    match &body.image {
        Some(Value::Number(n)) => n.as_i64().filter(|&n| n >= 1),
        Some(Value::String(s)) => s.parse().ok().filter(|&n: &i64| n >= 1),
        _ => None,
    }
    .ok_or_else(|| ApiError::unprocessable("restore needs image: the id of a snapshot or backup of this droplet"))
}

fn new_name(body: &ActionRequest) -> ApiResult<String> {
    let name = body.name.clone().ok_or_else(|| ApiError::unprocessable("rename needs name"))?;
    validate_name(&name)?;
    Ok(name)
}

fn backup_policy(body: &ActionRequest, regions: &Regions) -> ApiResult<Value> {
    if body.kind == "change_backup_policy" && body.backup_policy.is_none() {
        return Err(ApiError::unprocessable("change_backup_policy needs backup_policy"));
    }
    policy::normalize(body.backup_policy.as_ref(), regions)
}

/// Records the action and starts (or, for catalog-only changes, completes) it. The request
/// passed [`check`].
fn start(state: &AppState, droplet: &Droplet, body: &ActionRequest) -> ApiResult<Action> {
    let team = droplet.team_id;
    let new = |params: Value| NewAction {
        kind: body.kind.clone(),
        resource_type: ResourceType::Droplet,
        resource_id: droplet.id.to_string(),
        region: droplet.region.clone(),
        params,
    };
    let kind = body.kind.as_str();
    match kind {
        "snapshot" => {
            let name = snapshot_name(body)?.unwrap_or_else(|| default_snapshot_name(&droplet.name));
            if body.power_off {
                state.jobs.power_check(&droplet.power, &droplet.name)?;
            }
            let image = NewImage {
                name,
                kind: ImageType::Snapshot,
                resource_type: ResourceType::Droplet,
                resource_id: droplet.id.to_string(),
                size_bytes: droplet.disk.size_bytes,
                // Taken on request: retention never prunes it.
                tags: vec!["manual".into()],
                created_at: None,
            };
            let (action, _) =
                state.catalog.start_action(team, &new(json!({"power_off": body.power_off})), Some(&image))?;
            state.jobs.spawn(action.clone());
            Ok(action)
        }
        "restore" => {
            let image_id = restore_image(body)?;
            let image = state.catalog.image(team, image_id)?;
            if image.resource_type != ResourceType::Droplet || image.resource_id != droplet.id.to_string() {
                return Err(ApiError::unprocessable(format!(
                    "image {image_id} is not a snapshot or backup of droplet {}: create a new droplet from it instead",
                    droplet.id
                )));
            }
            let (action, _) = state.catalog.start_action(team, &new(json!({"image_id": image_id})), None)?;
            state.jobs.spawn(action.clone());
            Ok(action)
        }
        "rename" => {
            let name = new_name(body)?;
            immediate(state, team, new(json!({"name": name})), |state| {
                Ok(state.catalog.rename_droplet(team, droplet.id, &name)?)
            })
        }
        "enable_backups" | "change_backup_policy" => {
            // Enabling again without a policy resumes the one set before.
            let policy = match (&body.backup_policy, &droplet.backup_policy) {
                (None, Some(stored)) if kind == "enable_backups" => {
                    policy::normalize(Some(stored), state.jobs.regions())?
                }
                _ => backup_policy(body, state.jobs.regions())?,
            };
            let enabled = kind == "enable_backups" || droplet.backups_enabled;
            let now = state.clock.unix();
            immediate(state, team, new(json!({"backup_policy": policy})), |state| {
                Ok(state.catalog.set_droplet_backups(team, droplet.id, enabled, Some(&policy), now)?)
            })
        }
        "disable_backups" => {
            let now = state.clock.unix();
            immediate(state, team, new(json!({})), |state| {
                Ok(state.catalog.set_droplet_backups(team, droplet.id, false, None, now)?)
            })
        }
        _ => {
            // Power actions: `check` refused every other type.
            state.jobs.power_check(&droplet.power, &droplet.name)?;
            let (action, _) = state.catalog.start_action(team, &new(json!({})), None)?;
            state.jobs.spawn(action.clone());
            Ok(action)
        }
    }
}

/// An action that only changes the catalog: recorded, done, completed, all at once. The lock
/// still applies: it fails if another action is running.
pub(crate) fn immediate(
    state: &AppState,
    team: i64,
    new: NewAction,
    change: impl FnOnce(&AppState) -> ApiResult<()>,
) -> ApiResult<Action> {
    let (action, _) = state.catalog.start_action(team, &new, None)?;
    let outcome = change(state);
    let finished =
        state.catalog.finish_action(action.id, outcome.as_ref().map(|_| ()).map_err(|e| e.message.clone()))?;
    outcome.map(|()| finished)
}

/// DigitalOcean names unnamed snapshots after the droplet and the time in milliseconds.
fn default_snapshot_name(droplet: &str) -> String {
    format!("{droplet}-{}", jiff::Timestamp::now().as_millisecond())
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    listing: Listing,
) -> ApiResult<Response> {
    caller.require(&["droplet:read"])?;
    let id = int_id("droplet", &id)?;
    let page = listing.paging.catalog_page();
    let (items, total) = state
        .blocking(move |state| {
            state.catalog.droplet(caller.team.id, id)?;
            super::actions::page_of_resource(state, caller.team.id, ResourceType::Droplet, &id.to_string(), page)
        })
        .await?;
    Ok(Json(listing.paging.envelope("actions", items, total)).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require(&["droplet:read"])?;
    let id = int_id("droplet", &id)?;
    let action_id = int_id("action", &action_id)?;
    let view = state
        .blocking(move |state| {
            super::actions::of_resource(state, caller.team.id, ResourceType::Droplet, &id.to_string(), action_id)
        })
        .await?;
    Ok(Json(json!({ "action": view })))
}
