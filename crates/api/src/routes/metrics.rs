//! `GET /metrics`: the caller's team's backups in Prometheus' text format — per droplet and
//! volume the time of the last successful backup, its duration and size, counts of successes,
//! failures and missed windows, and whether backups are stale. Prometheus sends the token as
//! `authorization: Bearer …` (`authorization.credentials` in a scrape config).

use std::collections::HashMap;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use drydock_catalog::{BackupStats, Page, ResourceType};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::metrics::{self, MetricsInput, ResourceMetrics};
use crate::policy;

pub async fn get(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(&["droplet:read", "block_storage:read"])?;
    let input = state.blocking(move |state| collect(state, caller.team.id)).await?;
    Ok(([(CONTENT_TYPE, metrics::CONTENT_TYPE)], metrics::render(&input)).into_response())
}

fn collect(state: &AppState, team: i64) -> ApiResult<MetricsInput> {
    let now = state.clock.now();
    let mut stats: HashMap<(ResourceType, String), BackupStats> = state
        .catalog
        .backup_stats(Some(team))?
        .into_iter()
        .map(|s| ((s.resource_type, s.resource_id.clone()), s))
        .collect();
    let mut resources = Vec::new();
    let mut add = |resource_type: ResourceType, id: String, name: &str, enabled: bool, policy, since| {
        let stats = stats.remove(&(resource_type, id.clone()));
        if !enabled && stats.is_none() {
            return;
        }
        let state = policy::state(enabled, policy, since, stats.as_ref(), now);
        resources.push(ResourceMetrics {
            resource_type: resource_type.to_string(),
            resource_id: id,
            name: name.to_string(),
            last_success_at: stats.as_ref().and_then(|s| s.last_success_at),
            last_duration_secs: stats.as_ref().and_then(|s| s.last_duration_secs),
            last_size_bytes: stats.as_ref().and_then(|s| s.last_size_bytes),
            successes: stats.as_ref().map_or(0, |s| s.successes),
            failures: stats.as_ref().map_or(0, |s| s.failures),
            missed: stats.as_ref().map_or(0, |s| s.missed),
            stale: state["status"] == "stale",
            backups_enabled: enabled,
        });
    };
    let (droplets, _) = state.catalog.droplets(team, &Default::default(), Page::ALL)?;
    for d in &droplets {
        add(
            ResourceType::Droplet,
            d.id.to_string(),
            &d.name,
            d.backups_enabled,
            d.backup_policy.as_ref(),
            d.backups_since,
        );
    }
    let (volumes, _) = state.catalog.volumes(team, None, None, Page::ALL)?;
    for v in &volumes {
        add(ResourceType::Volume, v.id.clone(), &v.name, v.backups_enabled, v.backup_policy.as_ref(), v.backups_since);
    }
    // Resources deleted since: their counters still count.
    for (_, s) in stats {
        resources.push(ResourceMetrics {
            resource_type: s.resource_type.to_string(),
            resource_id: s.resource_id.clone(),
            name: s.name.clone(),
            last_success_at: s.last_success_at,
            last_duration_secs: s.last_duration_secs,
            last_size_bytes: s.last_size_bytes,
            successes: s.successes,
            failures: s.failures,
            missed: s.missed,
            stale: false,
            backups_enabled: false,
        });
    }
    Ok(MetricsInput {
        version: env!("CARGO_PKG_VERSION").to_string(),
        actions_running: state.jobs.running_count() as u64,
        resources,
    })
}
