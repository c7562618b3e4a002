use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
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
