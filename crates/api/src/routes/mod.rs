//! The routes, one module per resource.

mod account;
mod actions;
mod backup_runs;
mod droplet_actions;
mod droplets;
mod gc;
mod images;
mod metrics;
mod retention;
mod snapshots;
mod system;
mod tokens;
mod usage;
mod volume_actions;
mod volumes;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;
use crate::error::ApiError;

/// DigitalOcean's API v2 subset.
pub fn v2() -> Router<AppState> {
    Router::new()
        .route("/v2/account", get(account::get))
        .route("/v2/regions", get(account::regions))
        .route("/v2/sizes", get(account::sizes))
        .route("/v2/droplets", get(droplets::list).post(droplets::create).delete(droplets::delete_by_tag))
        .route("/v2/droplets/backups/policies", get(droplets::backup_policies))
        .route("/v2/droplets/backups/supported_policies", get(droplets::supported_policies))
        .route("/v2/droplets/actions", post(droplet_actions::post_by_tag))
        .route("/v2/droplets/{droplet_id}", get(droplets::get).delete(droplets::delete))
        .route("/v2/droplets/{droplet_id}/backups", get(droplets::backups))
        .route("/v2/droplets/{droplet_id}/backups/policy", get(droplets::backup_policy))
        .route("/v2/droplets/{droplet_id}/snapshots", get(droplets::snapshots))
        .route("/v2/droplets/{droplet_id}/actions", get(droplet_actions::list).post(droplet_actions::post))
        .route("/v2/droplets/{droplet_id}/actions/{action_id}", get(droplet_actions::get))
        .route("/v2/actions", get(actions::list))
        .route("/v2/actions/{action_id}", get(actions::get))
        .route("/v2/snapshots", get(snapshots::list))
        .route("/v2/snapshots/{snapshot_id}", get(snapshots::get).delete(snapshots::delete))
        .route("/v2/images", get(images::list))
        .route("/v2/images/{image_id}", get(images::get).put(images::update).delete(images::delete))
        .route("/v2/images/{image_id}/actions", get(images::actions).post(images::post_action))
        .route("/v2/images/{image_id}/actions/{action_id}", get(images::action))
        .route("/v2/volumes", get(volumes::list).post(volumes::create).delete(volumes::delete_by_name))
        .route("/v2/volumes/snapshots/{snapshot_id}", get(volumes::get_snapshot).delete(volumes::delete_snapshot))
        .route("/v2/volumes/{volume_id}", get(volumes::get).delete(volumes::delete))
        .route("/v2/volumes/{volume_id}/snapshots", get(volumes::snapshots).post(volumes::create_snapshot))
        .route("/v2/volumes/{volume_id}/actions", get(volumes::actions).post(volume_actions::post))
        .route("/v2/volumes/{volume_id}/actions/{action_id}", get(volumes::action))
}

/// What drydock adds, under its own prefix.
pub fn extensions() -> Router<AppState> {
    Router::new()
        .route("/drydock/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/drydock/v1/tokens/{token_id}", axum::routing::delete(tokens::revoke))
        .route("/drydock/v1/catalog/check", get(system::catalog_check))
        .route("/drydock/v1/retention/simulate", post(retention::simulate))
        .route("/drydock/v1/droplets/{droplet_id}/retention", get(retention::droplet_plan))
        .route("/drydock/v1/volumes/{volume_id}/retention", get(retention::volume_plan))
        .route("/drydock/v1/usage", get(usage::get))
        .route("/drydock/v1/gc", get(gc::status).post(gc::start))
        .route("/metrics", get(metrics::get))
        .route("/drydock/v1/droplets/{droplet_id}/backup_runs", get(backup_runs::droplet))
        .route("/drydock/v1/volumes/{volume_id}/backup_runs", get(backup_runs::volume))
}

/// Routes that need no token.
pub fn public() -> Router<AppState> {
    Router::new()
        .route("/drydock/v1/health", get(system::health))
        .route("/drydock/v1/openapi.json", get(system::openapi))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("The resource you requested could not be found.")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "This method is not allowed on this resource.")
}
