//! Volumes: registering block devices or image files, their snapshots, and new volumes made
//! from snapshots.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use drydock_catalog::{ActionStatus, ImageFilter, ImageType, NewAction, NewImage, NewVolume, ResourceType};
use serde::Deserialize;
use serde_json::{Value, json};

use super::droplets::{DiskSpec, disk_format, region_of, validate_tags};
use super::snapshots::delete_image;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Path, QueryMap, int_id};
use crate::page::Listing;
use crate::views;

const VOLUME_NAME_BYTES_MAX: usize = 64;
/// DigitalOcean answers a volume snapshot request with the finished snapshot, so drydock waits
/// this long for it before answering with the snapshot still being taken.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(60);
const SNAPSHOT_POLL: Duration = Duration::from_millis(50);

#[derive(Deserialize)]
pub struct CreateVolume {
    name: Option<String>,
    region: Option<String>,
    description: Option<String>,
    tags: Option<Vec<String>>,
    snapshot_id: Option<String>,
    filesystem_type: Option<String>,
    filesystem_label: Option<String>,
    disk: Option<DiskSpec>,
    #[allow(dead_code)]
    size_gigabytes: Option<Value>,
    /// drydock: scheduled backups, as for droplets.
    backups: Option<bool>,
    backup_policy: Option<Value>,
}

fn validate_volume_name(name: &str) -> ApiResult<()> {
    let valid = !name.is_empty()
        && name.len() <= VOLUME_NAME_BYTES_MAX
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::unprocessable(format!(
            "volume name {name:?} must be 1 to {VOLUME_NAME_BYTES_MAX} lowercase letters, digits and '-', starting with a letter"
        )))
    }
}

pub async fn list(State(state): State<AppState>, caller: Caller, listing: Listing) -> ApiResult<Response> {
    caller.require(&["block_storage:read"])?;
    let name = listing.query.get("name").map(str::to_string);
    let region = listing.query.get("region").map(str::to_string);
    let page = listing.paging.catalog_page();
    let (items, total) = state
        .blocking(move |state| {
            let (volumes, total) = state.catalog.volumes(caller.team.id, name.as_deref(), region.as_deref(), page)?;
            let items = volumes.iter().map(|v| volume_view(state, v)).collect::<ApiResult<Vec<_>>>()?;
            Ok((items, total))
        })
        .await?;
    Ok(Json(listing.paging.envelope("volumes", items, total)).into_response())
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateVolume>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(&["block_storage:create"])?;
    let name = body.name.clone().ok_or_else(|| ApiError::unprocessable("name is required"))?;
    validate_volume_name(&name)?;
    let region = region_of(&state, body.region.as_deref())?;
    let disk = body.disk.as_ref().ok_or_else(|| {
        ApiError::unprocessable("disk is required: {\"path\": \"/path/to/volume.img\", \"format\": \"raw\"}")
    })?;
    let format = disk_format(disk.format.as_deref())?;
    let tags = body.tags.clone().unwrap_or_default();
    validate_tags(&tags)?;
    let filesystem_type = body.filesystem_type.clone().unwrap_or_default();
    if !["", "ext4", "xfs"].contains(&filesystem_type.as_str()) {
        return Err(ApiError::unprocessable("filesystem_type must be ext4 or xfs"));
    }
    let backups = body.backups.unwrap_or(false);
    let backup_policy = if backups || body.backup_policy.is_some() {
        Some(crate::policy::normalize(body.backup_policy.as_ref(), state.jobs.regions())?)
    } else {
        None
    };
    let path = disk.path.clone();
    let view = state
        .blocking(move |state| {
            let team = caller.team.id;
            let mut new = NewVolume {
                backups_enabled: backups,
                backup_policy,
                backups_since: backups.then(|| state.clock.unix()),
                name,
                region: region.clone(),
                description: body.description.clone().unwrap_or_default(),
                disk: drydock_catalog::Disk { path: String::new(), format, size_bytes: 0 },
                filesystem_type,
                filesystem_label: body.filesystem_label.clone().unwrap_or_default(),
                tags,
            };
            let volume = match &body.snapshot_id {
                Some(snapshot_id) => {
                    let image = super::snapshots::find(state, team, snapshot_id)?;
                    if image.resource_type != ResourceType::Volume {
                        return Err(ApiError::unprocessable(format!(
                            "snapshot {snapshot_id} is not a volume snapshot"
                        )));
                    }
                    new.disk.path = state.jobs.disks().new_disk(&path)?.display().to_string();
                    new.disk.size_bytes = image.size_bytes;
                    let volume = state.catalog.insert_volume(team, &new)?;
                    let start = NewAction {
                        kind: "create".into(),
                        resource_type: ResourceType::Volume,
                        resource_id: volume.id.clone(),
                        region,
                        params: json!({"image_id": image.id}),
                    };
                    let (action, _) = state.catalog.start_action(team, &start, None)?;
                    state.jobs.spawn(action);
                    state.catalog.volume(team, &volume.id)?
                }
                None => {
                    let resolved = state.jobs.disks().existing(&path)?;
                    new.disk.size_bytes = drydock_jobs::inspect_disk(&resolved, format)?;
                    new.disk.path = resolved.display().to_string();
                    state.catalog.insert_volume(team, &new)?
                }
            };
            volume_view(state, &volume)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "volume": view }))))
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    caller.require(&["block_storage:read"])?;
    let view = state.blocking(move |state| volume_view(state, &state.catalog.volume(caller.team.id, &id)?)).await?;
    Ok(Json(json!({ "volume": view })))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    caller.require(&["block_storage:delete"])?;
    state.blocking(move |state| forget_volume(state, caller.team.id, &id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_by_name(State(state): State<AppState>, caller: Caller, query: QueryMap) -> ApiResult<StatusCode> {
    caller.require(&["block_storage:delete"])?;
    let name = query.get("name").ok_or_else(|| ApiError::bad_request("name is required"))?.to_string();
    let region = query.get("region").ok_or_else(|| ApiError::bad_request("region is required"))?.to_string();
    state
        .blocking(move |state| {
            let (volumes, _) =
                state.catalog.volumes(caller.team.id, Some(&name), Some(&region), drydock_catalog::Page::ALL)?;
            let volume = volumes
                .first()
                .ok_or_else(|| ApiError::not_found(format!("volume {name} not found in region {region}")))?;
            forget_volume(state, caller.team.id, &volume.id)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Snapshots taken on request carry `manual`: retention never prunes them.
fn with_manual(mut tags: Vec<String>) -> Vec<String> {
    if !tags.iter().any(|t| t == "manual") {
        tags.push("manual".into());
    }
    tags
}

pub(crate) fn volume_view(state: &AppState, volume: &drydock_catalog::Volume) -> ApiResult<Value> {
    // Backups ever set up (the policy stays when they are turned off): what they did stays
    // shown, also once their backups are converted or deleted.
    let stats = if volume.backup_policy.is_some() {
        state.catalog.backup_stats_of(ResourceType::Volume, &volume.id)?
    } else {
        None
    };
    let backups = crate::policy::state(
        volume.backups_enabled,
        volume.backup_policy.as_ref(),
        volume.backups_since,
        stats.as_ref(),
        state.clock.now(),
    );
    Ok(views::volume(state.jobs.regions(), volume, backups))
}

/// Removes a volume; its backups stay for four weeks, as a deleted droplet's do.
fn forget_volume(state: &AppState, team: i64, id: &str) -> ApiResult<()> {
    state.catalog.delete_volume(team, id)?;
    let now = state.clock.now();
    let expires = now.saturating_add(drydock_jobs::DELETED_RESOURCE_RETENTION).unwrap_or(now);
    state.catalog.expire_backups(team, ResourceType::Volume, id, expires.as_second())?;
    Ok(())
}

#[derive(Deserialize)]
pub struct CreateSnapshot {
    name: Option<String>,
    tags: Option<Vec<String>>,
}

pub async fn create_snapshot(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CreateSnapshot>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(&["block_storage_snapshot:create"])?;
    let name = body.name.clone().ok_or_else(|| ApiError::unprocessable("name is required"))?;
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable("name must be 1 to 255 bytes without control characters"));
    }
    let tags = body.tags.clone().unwrap_or_default();
    validate_tags(&tags)?;
    let team = caller.team.id;
    let (action, image) = state
        .blocking(move |state| {
            let volume = state.catalog.volume(team, &id)?;
            let image = NewImage {
                name,
                kind: ImageType::Snapshot,
                resource_type: ResourceType::Volume,
                resource_id: volume.id.clone(),
                size_bytes: volume.disk.size_bytes,
                tags: with_manual(tags),
                created_at: None,
            };
            let new = NewAction {
                kind: "snapshot".into(),
                resource_type: ResourceType::Volume,
                resource_id: volume.id.clone(),
                region: volume.region.clone(),
                params: json!({}),
            };
            let (action, image) = state.catalog.start_action(team, &new, Some(&image))?;
            state.jobs.spawn(action.clone());
            Ok((action, image.expect("an image was asked for")))
        })
        .await?;
    // Wait for the snapshot, as DigitalOcean's answer is the finished snapshot.
    let deadline = tokio::time::Instant::now() + SNAPSHOT_WAIT;
    loop {
        let current = state.blocking(move |state| Ok(state.catalog.action(team, action.id)?)).await?;
        match current.status {
            ActionStatus::Completed => break,
            ActionStatus::Errored => {
                return Err(ApiError::unprocessable(format!(
                    "snapshot of volume failed: {}",
                    current.error.unwrap_or_default()
                )));
            }
            ActionStatus::InProgress if tokio::time::Instant::now() >= deadline => break,
            ActionStatus::InProgress => tokio::time::sleep(SNAPSHOT_POLL).await,
        }
    }
    let image = state.blocking(move |state| Ok(state.catalog.image(team, image.id)?)).await?;
    Ok((StatusCode::CREATED, Json(json!({"snapshot": views::snapshot(&image)}))))
}

pub async fn snapshots(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    listing: Listing,
) -> ApiResult<Response> {
    caller.require(&["block_storage_snapshot:read"])?;
    let page = listing.paging.catalog_page();
    let (images, total) = state
        .blocking(move |state| {
            state.catalog.volume(caller.team.id, &id)?;
            let filter = ImageFilter {
                resource_type: Some(ResourceType::Volume),
                resource_id: Some(id),
                ..ImageFilter::default()
            };
            Ok(state.catalog.images(caller.team.id, &filter, page)?)
        })
        .await?;
    Ok(Json(listing.paging.envelope("snapshots", images.iter().map(views::snapshot).collect::<Vec<_>>(), total))
        .into_response())
}

pub async fn get_snapshot(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(&["block_storage_snapshot:read"])?;
    let image = state.blocking(move |state| volume_snapshot(state, caller.team.id, &id)).await?;
    Ok(Json(json!({"snapshot": views::snapshot(&image)})))
}

pub async fn delete_snapshot(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(&["block_storage_snapshot:delete"])?;
    state
        .blocking(move |state| {
            let image = volume_snapshot(state, caller.team.id, &id)?;
            delete_image(state, caller.team.id, image.id)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn volume_snapshot(state: &AppState, team: i64, id: &str) -> ApiResult<drydock_catalog::Image> {
    let image = state.catalog.image_by_uuid(team, id)?;
    if image.resource_type != ResourceType::Volume {
        return Err(ApiError::not_found(format!("volume snapshot {id} not found")));
    }
    Ok(image)
}

pub async fn actions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    listing: Listing,
) -> ApiResult<Response> {
    caller.require(&["block_storage_action:read"])?;
    let page = listing.paging.catalog_page();
    let (items, total) = state
        .blocking(move |state| {
            state.catalog.volume(caller.team.id, &id)?;
            super::actions::page_of_resource(state, caller.team.id, ResourceType::Volume, &id, page)
        })
        .await?;
    Ok(Json(listing.paging.envelope("actions", items, total)).into_response())
}

pub async fn action(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require(&["block_storage_action:read"])?;
    let action_id = int_id("action", &action_id)?;
    let view = state
        .blocking(move |state| super::actions::of_resource(state, caller.team.id, ResourceType::Volume, &id, action_id))
        .await?;
    Ok(Json(json!({ "action": view })))
}
