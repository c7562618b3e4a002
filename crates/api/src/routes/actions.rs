use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use drydock_catalog::{Page, ResourceType};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, int_id};
use crate::page::Listing;
use crate::views;

pub async fn list(State(state): State<AppState>, caller: Caller, listing: Listing) -> ApiResult<Response> {
    caller.require(&["actions:read"])?;
    let page = listing.paging.catalog_page();
    let (items, total) = state
        .blocking(move |state| {
            let (actions, total) = state.catalog.actions(caller.team.id, None, page)?;
            Ok((actions.iter().map(|a| views::action(state.jobs.regions(), a)).collect::<Vec<_>>(), total))
        })
        .await?;
    Ok(Json(listing.paging.envelope("actions", items, total)).into_response())
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    caller.require(&["actions:read"])?;
    let id = int_id("action", &id)?;
    let view = state
        .blocking(move |state| Ok(views::action(state.jobs.regions(), &state.catalog.action(caller.team.id, id)?)))
        .await?;
    Ok(Json(json!({ "action": view })))
}

/// One action of one resource (`/v2/{droplets,images,volumes}/{id}/actions/{action_id}`): an
/// action of another resource is not found here.
pub(crate) fn of_resource(
    state: &AppState,
    team: i64,
    resource_type: ResourceType,
    resource_id: &str,
    action_id: i64,
) -> ApiResult<Value> {
    let action = state.catalog.action(team, action_id)?;
    if action.resource_type != resource_type || action.resource_id != resource_id {
        return Err(ApiError::not_found(format!("action {action_id} not found on {resource_type} {resource_id}")));
    }
    Ok(views::action(state.jobs.regions(), &action))
}

/// A page of one resource's actions, newest first.
pub(crate) fn page_of_resource(
    state: &AppState,
    team: i64,
    resource_type: ResourceType,
    resource_id: &str,
    page: Page,
) -> ApiResult<(Vec<Value>, u64)> {
    let (actions, total) = state.catalog.actions(team, Some((resource_type, resource_id)), page)?;
    Ok((actions.iter().map(|a| views::action(state.jobs.regions(), a)).collect(), total))
}
