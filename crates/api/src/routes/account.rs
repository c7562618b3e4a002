use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::QueryMap;
use crate::page::Paging;
use crate::views;

pub async fn get(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(&["account:read"])?;
    Ok(Json(json!({"account": views::account(&caller.team, state.settings.droplet_limit)})))
}

pub async fn regions(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryMap,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    caller.require(&["regions:read"])?;
    let paging = Paging::from_request(&query, &headers, &uri, state.settings.scheme)?;
    let regions = state.jobs.regions().clone();
    let all: Vec<Value> = state
        .blocking(move |_| {
            Ok(regions
                .specs()
                .iter()
                .map(|spec| {
                    let mut view = views::region(&regions, &spec.slug);
                    view["available"] = regions.available(&spec.slug).into();
                    view
                })
                .collect())
        })
        .await?;
    let total = all.len() as u64;
    let page = paging.catalog_page();
    let items: Vec<Value> = all.into_iter().skip(page.offset as usize).take(page.limit as usize).collect();
    Ok(Json(paging.envelope("regions", items, total)).into_response())
}

/// drydock registers machines rather than selling sizes: the one size it reports is the
/// placeholder registered droplets carry.
pub async fn sizes(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryMap,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    caller.require(&["sizes:read", "regions:read"])?;
    let paging = Paging::from_request(&query, &headers, &uri, state.settings.scheme)?;
    let slugs: Vec<String> = state.jobs.regions().specs().iter().map(|s| s.slug.clone()).collect();
    let size = json!({
        "slug": crate::routes::droplets::SIZE_SLUG_DEFAULT, "memory": 0, "vcpus": 0, "disk": 0, "transfer": 0.0,
        "price_monthly": 0.0, "price_hourly": 0.0, "regions": slugs, "available": true,
        "description": "Registered machine",
    });
    Ok(Json(paging.envelope("sizes", vec![size], 1)).into_response())
}
