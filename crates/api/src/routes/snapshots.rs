//! `/v2/snapshots`: droplet and volume snapshots together (backups are not snapshots).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use drydock_catalog::{Image, ImageFilter, ImageType, ResourceType};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;
use crate::page::Listing;
use crate::views;

pub async fn list(State(state): State<AppState>, caller: Caller, listing: Listing) -> ApiResult<Response> {
    caller.require(&["snapshot:read"])?;
    let resource_type = match listing.query.get("resource_type") {
        None => None,
        Some("droplet") => Some(ResourceType::Droplet),
        Some("volume") => Some(ResourceType::Volume),
        Some(other) => {
            return Err(ApiError::bad_request(format!("resource_type must be droplet or volume, not {other:?}")));
        }
    };
    let page = listing.paging.catalog_page();
    let filter = ImageFilter { kind: Some(ImageType::Snapshot), resource_type, ..ImageFilter::default() };
    let (images, total) = state.blocking(move |state| Ok(state.catalog.images(caller.team.id, &filter, page)?)).await?;
    Ok(Json(listing.paging.envelope("snapshots", images.iter().map(views::snapshot).collect::<Vec<_>>(), total))
        .into_response())
}

/// A snapshot by its API id: an integer for droplet snapshots, a UUID for volume snapshots.
/// Backups are images but not snapshots: 400, as DigitalOcean answers.
pub(crate) fn find(state: &AppState, team: i64, id: &str) -> ApiResult<Image> {
    let image = match id.parse::<i64>() {
        Ok(n) if n >= 1 => state.catalog.image(team, n)?,
        Ok(_) => return Err(ApiError::not_found(format!("snapshot {id} not found"))),
        Err(_) => {
            let image = state.catalog.image_by_uuid(team, id)?;
            if image.resource_type != ResourceType::Volume {
                return Err(ApiError::not_found(format!("snapshot {id} not found")));
            }
            image
        }
    };
    if image.status != drydock_catalog::ImageStatus::Available {
        return Err(ApiError::not_found(format!("snapshot {id} not found")));
    }
    if image.kind != ImageType::Snapshot {
        return Err(ApiError::bad_request("the resource is not a snapshot"));
    }
    Ok(image)
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    caller.require(&["snapshot:read", "block_storage_snapshot:read"])?;
    let image = state.blocking(move |state| find(state, caller.team.id, &id)).await?;
    Ok(Json(json!({"snapshot": views::snapshot(&image)})))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    caller.require(&["snapshot:delete", "image:delete"])?;
    state
        .blocking(move |state| {
            let image = find(state, caller.team.id, &id)?;
            delete_image(state, caller.team.id, image.id)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes an image from the catalog, then its copies from the repositories (their data is
/// reclaimed by the next gc). A copy that cannot be removed now is reported by the catalog
/// check as a snapshot missing from the catalog.
pub(crate) fn delete_image(state: &AppState, team: i64, id: i64) -> ApiResult<()> {
    let image = state.catalog.delete_image(team, id)?;
    if let Err(e) = state.jobs.forget_copies(&image) {
        tracing::warn!(image = id, "image deleted from the catalog, but its repository copies remain: {e}");
    }
    Ok(())
}
