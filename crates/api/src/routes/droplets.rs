//! Droplets: registering machines, creating new ones from images, listing and deleting them,
//! and their snapshots, backups and backup policies.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use drydock_catalog::{
    DiskFormat, DropletFilter, DropletStatus, ImageFilter, ImageStatus, ImageType, NewAction, NewDroplet, Page,
    ResourceType,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Path, QueryMap, int_id};
use crate::page::{Listing, origin};
use crate::{policy, views};

/// The size slug of registered machines: drydock does not size them, it protects them.
pub const SIZE_SLUG_DEFAULT: &str = "registered";
const NAME_BYTES_MAX: usize = 255;

#[derive(Deserialize)]
pub struct DiskSpec {
    pub path: String,
    #[serde(default)]
    pub format: Option<String>,
}

#[derive(Deserialize)]
pub struct CreateDroplet {
    name: Option<String>,
    names: Option<Vec<String>>,
    region: Option<String>,
    size: Option<String>,
    image: Option<Value>,
    disk: Option<DiskSpec>,
    power: Option<Value>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    backups: Option<bool>,
    backup_policy: Option<Value>,
}

pub async fn list(State(state): State<AppState>, caller: Caller, listing: Listing) -> ApiResult<Response> {
    caller.require(&["droplet:read"])?;
    let filter = DropletFilter {
        tag: listing.query.get("tag_name").map(str::to_string),
        name: listing.query.get("name").map(str::to_string),
    };
    if filter.tag.is_some() && filter.name.is_some() {
        return Err(ApiError::bad_request("tag_name cannot be combined with name"));
    }
    let page = listing.paging.catalog_page();
    let (items, total) = state
        .blocking(move |state| {
            let (droplets, total) = state.catalog.droplets(caller.team.id, &filter, page)?;
            let items = droplets.iter().map(|d| droplet_view(state, d)).collect::<ApiResult<Vec<_>>>()?;
            Ok((items, total))
        })
        .await?;
    Ok(Json(listing.paging.envelope("droplets", items, total)).into_response())
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    caller.require(&["droplet:read"])?;
    let id = int_id("droplet", &id)?;
    let view = state
        .blocking(move |state| {
            let droplet = state.catalog.droplet(caller.team.id, id)?;
            droplet_view(state, &droplet)
        })
        .await?;
    Ok(Json(json!({ "droplet": view })))
}

pub(crate) fn droplet_view(state: &AppState, droplet: &drydock_catalog::Droplet) -> ApiResult<Value> {
    let source = droplet.image_id.and_then(|id| state.catalog.image(droplet.team_id, id).ok());
    Ok(views::droplet(state.jobs.regions(), droplet, source.as_ref(), backup_state(state, droplet)?))
}

fn backup_state(state: &AppState, droplet: &drydock_catalog::Droplet) -> ApiResult<Value> {
    // Backups ever set up (the policy stays when they are turned off): what they did stays
    // shown, also once their backups are converted or deleted.
    let stats = if droplet.backup_policy.is_some() {
        state.catalog.backup_stats_of(ResourceType::Droplet, &droplet.id.to_string())?
    } else {
        None
    };
    Ok(policy::state(
        droplet.backups_enabled,
        droplet.backup_policy.as_ref(),
        droplet.backups_since,
        stats.as_ref(),
        state.clock.now(),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    JsonBody(body): JsonBody<CreateDroplet>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(&["droplet:create"])?;
    if body.names.is_some() {
        return Err(ApiError::unprocessable("drydock registers one droplet per request: use name, not names"));
    }
    let name = body.name.clone().ok_or_else(|| ApiError::unprocessable("name is required"))?;
    validate_name(&name)?;
    let region = region_of(&state, body.region.as_deref())?;
    let disk = body.disk.as_ref().ok_or_else(|| {
        ApiError::unprocessable("disk is required: {\"path\": \"/path/to/disk.img\", \"format\": \"raw\"}")
    })?;
    let format = disk_format(disk.format.as_deref())?;
    let power = drydock_jobs::parse_power(body.power.as_ref())?;
    // A command driver runs shell commands as the daemon's user: only full-access tokens may
    // configure one.
    if power.get("driver").and_then(Value::as_str) == Some("command") && !caller.has_full_access() {
        return Err(ApiError::forbidden(
            "a command power driver runs commands on this server: it needs a full-access token (scope *)",
        ));
    }
    let tags = body.tags.clone().unwrap_or_default();
    validate_tags(&tags)?;
    let backups = body.backups.unwrap_or(false);
    let backup_policy = if backups || body.backup_policy.is_some() {
        Some(policy::normalize(body.backup_policy.as_ref(), state.jobs.regions())?)
    } else {
        None
    };
    let image_id = match &body.image {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_i64().filter(|&n| n >= 1).ok_or_else(|| image_id_error(&body.image))?),
        Some(Value::String(s)) => {
            Some(s.parse::<i64>().ok().filter(|&n| n >= 1).ok_or_else(|| image_id_error(&body.image))?)
        }
        Some(_) => return Err(image_id_error(&body.image)),
    };
    let path = disk.path.clone();
    let size_slug = body.size.clone().unwrap_or_else(|| SIZE_SLUG_DEFAULT.to_string());
    let (droplet, action) = state
        .blocking(move |state| {
            let team = caller.team.id;
            let mut new = NewDroplet {
                name,
                region: region.clone(),
                disk: drydock_catalog::Disk { path: String::new(), format, size_bytes: 0 },
                power,
                status: DropletStatus::New,
                size_slug,
                memory_mb: 0,
                vcpus: 0,
                tags,
                backups_enabled: backups,
                backup_policy,
                backups_since: backups.then(|| state.clock.unix()),
                image_id,
            };
            match image_id {
                Some(image_id) => {
                    let image = state.catalog.image(team, image_id)?;
                    if image.status != ImageStatus::Available {
                        return Err(ApiError::unprocessable(format!("image {image_id} is not available yet")));
                    }
                    if image.resource_type != ResourceType::Droplet {
                        return Err(ApiError::unprocessable(format!(
                            "image {image_id} is a volume snapshot: create a volume from it instead"
                        )));
                    }
                    let resolved = state.jobs.disks().new_disk(&path)?;
                    new.disk.path = resolved.display().to_string();
                    new.disk.size_bytes = image.size_bytes;
                    let droplet = state.catalog.insert_droplet(team, &new)?;
                    let start = NewAction {
                        kind: "create".into(),
                        resource_type: ResourceType::Droplet,
                        resource_id: droplet.id.to_string(),
                        region,
                        params: json!({"image_id": image_id}),
                    };
                    let (action, _) = state.catalog.start_action(team, &start, None)?;
                    state.jobs.spawn(action.clone());
                    Ok((state.catalog.droplet(team, droplet.id)?, action))
                }
                None => {
                    let resolved = state.jobs.disks().existing(&path)?;
                    new.disk.size_bytes = drydock_jobs::inspect_disk(&resolved, format)?;
                    new.disk.path = resolved.display().to_string();
                    new.status = drydock_jobs::current_status(&new.power, &new.name);
                    let droplet = state.catalog.insert_droplet(team, &new)?;
                    // Registration is immediate, but clients wait on the create action: record
                    // one, already completed.
                    let start = NewAction {
                        kind: "create".into(),
                        resource_type: ResourceType::Droplet,
                        resource_id: droplet.id.to_string(),
                        region,
                        params: json!({}),
                    };
                    let (action, _) = state.catalog.start_action(team, &start, None)?;
                    let action = state.catalog.finish_action(action.id, Ok(()))?;
                    Ok((droplet, action))
                }
            }
        })
        .await?;
    let view = state.blocking(move |state| droplet_view(state, &droplet)).await?;
    let href = format!("{}/v2/actions/{}", origin(&headers, &uri, state.settings.scheme), action.id);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"droplet": view, "links": {"actions": [{"id": action.id, "rel": "create", "href": href}]}})),
    ))
}

fn image_id_error(given: &Option<Value>) -> ApiError {
    ApiError::unprocessable(format!(
        "image must be the id of a snapshot or backup to create the droplet from, not {}",
        given.as_ref().map_or("null".to_string(), Value::to_string)
    ))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    caller.require(&["droplet:delete"])?;
    let id = int_id("droplet", &id)?;
    state.blocking(move |state| forget_droplet(state, caller.team.id, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_by_tag(State(state): State<AppState>, caller: Caller, query: QueryMap) -> ApiResult<StatusCode> {
    caller.require(&["droplet:delete"])?;
    let tag = query.get("tag_name").ok_or_else(|| ApiError::bad_request("tag_name is required"))?.to_string();
    state
        .blocking(move |state| {
            let filter = DropletFilter { tag: Some(tag), name: None };
            let (droplets, _) = state.catalog.droplets(caller.team.id, &filter, Page::ALL)?;
            for droplet in droplets {
                forget_droplet(state, caller.team.id, droplet.id)?;
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a droplet; its backups stay for four weeks, as DigitalOcean keeps them.
fn forget_droplet(state: &AppState, team: i64, id: i64) -> ApiResult<()> {
    state.catalog.delete_droplet(team, id)?;
    let now = state.clock.now();
    let expires = now.saturating_add(drydock_jobs::DELETED_RESOURCE_RETENTION).unwrap_or(now);
    state.catalog.expire_backups(team, ResourceType::Droplet, &id.to_string(), expires.as_second())?;
    Ok(())
}

pub async fn snapshots(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
    listing: Listing,
) -> ApiResult<Response> {
    images_of(state, caller, id, listing, ImageType::Snapshot).await
}

pub async fn backups(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
    listing: Listing,
) -> ApiResult<Response> {
    images_of(state, caller, id, listing, ImageType::Backup).await
}

async fn images_of(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    listing: Listing,
    kind: ImageType,
) -> ApiResult<Response> {
    caller.require(&["droplet:read"])?;
    let id = int_id("droplet", &id)?;
    let page = listing.paging.catalog_page();
    let (images, total) = state
        .blocking(move |state| {
            state.catalog.droplet(caller.team.id, id)?;
            let filter = ImageFilter {
                kind: Some(kind),
                resource_type: Some(ResourceType::Droplet),
                resource_id: Some(id.to_string()),
                tag: None,
            };
            Ok(state.catalog.images(caller.team.id, &filter, page)?)
        })
        .await?;
    let key = if kind == ImageType::Backup { "backups" } else { "snapshots" };
    Ok(Json(listing.paging.envelope(key, images.iter().map(views::droplet_snapshot).collect::<Vec<_>>(), total))
        .into_response())
}

fn policy_record(droplet: &drydock_catalog::Droplet, now: jiff::Timestamp) -> Value {
    if droplet.backups_enabled {
        let next = policy::next_window(true, droplet.backup_policy.as_ref(), now);
        json!({"droplet_id": droplet.id, "backup_enabled": true, "backup_policy": droplet.backup_policy,
               "next_backup_window": next})
    } else {
        json!({"droplet_id": droplet.id, "backup_enabled": false})
    }
}

pub async fn backup_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(&["droplet:read"])?;
    let id = int_id("droplet", &id)?;
    let droplet = state.blocking(move |state| Ok(state.catalog.droplet(caller.team.id, id)?)).await?;
    Ok(Json(json!({"policy": policy_record(&droplet, state.clock.now())})))
}

pub async fn backup_policies(State(state): State<AppState>, caller: Caller, listing: Listing) -> ApiResult<Response> {
    caller.require(&["droplet:read"])?;
    let page = listing.paging.catalog_page();
    let (droplets, total) = state
        .blocking(move |state| Ok(state.catalog.droplets(caller.team.id, &DropletFilter::default(), page)?))
        .await?;
    // A map keyed by droplet id, not a list, as DigitalOcean has it.
    let now = state.clock.now();
    let policies: serde_json::Map<_, _> = droplets.iter().map(|d| (d.id.to_string(), policy_record(d, now))).collect();
    Ok(Json(listing.paging.envelope("policies", policies, total)).into_response())
}

pub async fn supported_policies(caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(&["droplet:read"])?;
    Ok(Json(json!({"supported_policies": policy::supported()})))
}

pub(crate) fn validate_name(name: &str) -> ApiResult<()> {
    let valid = !name.is_empty()
        && name.len() <= NAME_BYTES_MAX
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(ApiError::unprocessable(format!(
            "name {name:?} must be 1 to {NAME_BYTES_MAX} letters, digits, '.' and '-', starting and ending with a letter or digit"
        )))
    }
}

pub(crate) fn validate_tags(tags: &[String]) -> ApiResult<()> {
    for tag in tags {
        let valid = !tag.is_empty()
            && tag.len() <= 255
            && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':');
        if !valid {
            return Err(ApiError::unprocessable(format!(
                "tag {tag:?} must be 1 to 255 letters, digits, '_', '-' or ':'"
            )));
        }
    }
    Ok(())
}

pub(crate) fn region_of(state: &AppState, given: Option<&str>) -> ApiResult<String> {
    let regions = state.jobs.regions();
    match given {
        None | Some("") => Ok(regions.default_slug().to_string()),
        Some(slug) => match regions.spec(slug) {
            Some(spec) => Ok(spec.slug.clone()),
            None => {
                let known: Vec<&str> = regions.specs().iter().map(|s| s.slug.as_str()).collect();
                Err(ApiError::unprocessable(format!(
                    "region {slug:?} is not configured (regions: {})",
                    known.join(", ")
                )))
            }
        },
    }
}

pub(crate) fn disk_format(given: Option<&str>) -> ApiResult<DiskFormat> {
    match given {
        None => Ok(DiskFormat::Raw),
        Some(text) => DiskFormat::parse(text)
            .ok_or_else(|| ApiError::unprocessable(format!("disk.format must be raw or qcow2, not {text:?}"))),
    }
}
