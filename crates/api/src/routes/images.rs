//! `/v2/images`: every snapshot and backup of droplets, and the `transfer` and `convert`
//! image actions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use drydock_catalog::{ImageFilter, ImageType, NewAction, ResourceType};
use serde::Deserialize;
use serde_json::{Value, json};

use super::droplets::region_of;
use super::snapshots::delete_image;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Path, int_id};
use crate::page::Listing;
use crate::views;

const DESCRIPTION_BYTES_MAX: usize = 1024;

pub async fn list(State(state): State<AppState>, caller: Caller, listing: Listing) -> ApiResult<Response> {
    caller.require(&["image:read"])?;
    // `type` filters public images (distribution, application): drydock has none.
    if listing.query.get("type").is_some_and(|t| t != "distribution" && t != "application") {
        return Err(ApiError::bad_request("type must be distribution or application"));
    }
    // `private` is checked even when `type` already decides: a bad value is a 400 either way.
    let private = listing.query.flag("private")?;
    let public_only = listing.query.get("type").is_some() || private == Some(false);
    let page = listing.paging.catalog_page();
    let filter = ImageFilter {
        resource_type: Some(ResourceType::Droplet),
        tag: listing.query.get("tag_name").map(str::to_string),
        ..ImageFilter::default()
    };
    let (images, total) = if public_only {
        (Vec::new(), 0)
    } else {
        state.blocking(move |state| Ok(state.catalog.images(caller.team.id, &filter, page)?)).await?
    };
    Ok(Json(listing.paging.envelope("images", images.iter().map(views::image).collect::<Vec<_>>(), total))
        .into_response())
}

fn find(state: &AppState, team: i64, id: &str) -> ApiResult<drydock_catalog::Image> {
    let id = id
        .parse::<i64>()
        .map_err(|_| ApiError::not_found(format!("image {id:?} not found: drydock has no public images with slugs")))?;
    let image = state.catalog.image(team, id)?;
    // Volume snapshots are not images (they are addressed by UUID under /v2/volumes).
    if image.status != drydock_catalog::ImageStatus::Available || image.resource_type != ResourceType::Droplet {
        return Err(ApiError::not_found(format!("image {id} not found")));
    }
    Ok(image)
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    caller.require(&["image:read"])?;
    let image = state.blocking(move |state| find(state, caller.team.id, &id)).await?;
    Ok(Json(json!({"image": views::image(&image)})))
}

#[derive(Deserialize)]
pub struct UpdateImage {
    name: Option<String>,
    description: Option<String>,
    distribution: Option<String>,
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateImage>,
) -> ApiResult<Json<Value>> {
    caller.require(&["image:update"])?;
    let id = int_id("image", &id)?;
    if let Some(name) = &body.name
        && (name.is_empty() || name.len() > 255 || name.chars().any(char::is_control))
    {
        return Err(ApiError::unprocessable("name must be 1 to 255 bytes without control characters"));
    }
    if body.description.as_ref().is_some_and(|d| d.len() > DESCRIPTION_BYTES_MAX) {
        return Err(ApiError::unprocessable(format!("description must be at most {DESCRIPTION_BYTES_MAX} bytes")));
    }
    if body.distribution.is_some() {
        return Err(ApiError::unprocessable("distribution can only be set on custom images, and drydock has none"));
    }
    let image = state
        .blocking(move |state| {
            find(state, caller.team.id, &id.to_string())?;
            Ok(state.catalog.update_image(caller.team.id, id, body.name.as_deref(), body.description.as_deref())?)
        })
        .await?;
    Ok(Json(json!({"image": views::image(&image)})))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    caller.require(&["image:delete"])?;
    let id = int_id("image", &id)?;
    state
        .blocking(move |state| {
            find(state, caller.team.id, &id.to_string())?;
            delete_image(state, caller.team.id, id)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct ImageAction {
    #[serde(rename = "type")]
    kind: String,
    region: Option<String>,
}

pub async fn post_action(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ImageAction>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(&["image:update"])?;
    let id = int_id("image", &id)?;
    let view = state
        .blocking(move |state| {
            let team = caller.team.id;
            let image = find(state, team, &id.to_string())?;
            let first_region = image.copies.first().map(|c| c.region.clone()).unwrap_or_default();
            let action = match body.kind.as_str() {
                "transfer" => {
                    let wanted =
                        body.region.as_deref().ok_or_else(|| ApiError::unprocessable("transfer needs region"))?;
                    let region = region_of(state, Some(wanted))?;
                    let new = NewAction {
                        kind: "transfer".into(),
                        resource_type: ResourceType::Image,
                        resource_id: id.to_string(),
                        region,
                        params: json!({}),
                    };
                    let (action, _) = state.catalog.start_action(team, &new, None)?;
                    state.jobs.spawn(action.clone());
                    action
                }
                "convert" => {
                    if image.kind != ImageType::Backup {
                        return Err(ApiError::unprocessable(format!("image {id} is already a snapshot")));
                    }
                    let new = NewAction {
                        kind: "convert".into(),
                        resource_type: ResourceType::Image,
                        resource_id: id.to_string(),
                        region: first_region,
                        params: json!({}),
                    };
                    let (action, _) = state.catalog.start_action(team, &new, None)?;
                    let outcome = state.catalog.convert_image(team, id).map_err(|e| e.to_string());
                    state.catalog.finish_action(action.id, outcome)?
                }
                other => {
                    return Err(ApiError::unprocessable(format!(
                        "unknown image action type {other:?} (transfer, convert)"
                    )));
                }
            };
            Ok(views::action(state.jobs.regions(), &action))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "action": view }))))
}

pub async fn actions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    listing: Listing,
) -> ApiResult<Response> {
    caller.require(&["image:read"])?;
    let id = int_id("image", &id)?;
    let page = listing.paging.catalog_page();
    let (items, total) = state
        .blocking(move |state| {
            state.catalog.image(caller.team.id, id)?;
            super::actions::page_of_resource(state, caller.team.id, ResourceType::Image, &id.to_string(), page)
        })
        .await?;
    Ok(Json(listing.paging.envelope("actions", items, total)).into_response())
}

pub async fn action(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require(&["image:read"])?;
    let id = int_id("image", &id)?;
    let action_id = int_id("action", &action_id)?;
    let view = state
        .blocking(move |state| {
            super::actions::of_resource(state, caller.team.id, ResourceType::Image, &id.to_string(), action_id)
        })
        .await?;
    Ok(Json(json!({ "action": view })))
}
