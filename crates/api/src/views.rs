//! Catalog rows as DigitalOcean's JSON objects, plus drydock's extension fields (`disk`,
//! `power`, `progress`, `error`), which DigitalOcean clients ignore.

use drydock_catalog::{Action, ActionStatus, Droplet, Image, ResourceType, Team, Volume};
use drydock_jobs::Regions;
use serde::Serialize;
use serde_json::{Value, json};

const GIB: f64 = (1u64 << 30) as f64;

/// Whole GiB, rounded up: DigitalOcean's `disk` and `min_disk_size`.
fn gib_ceil(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 30)
}

/// GiB with two decimals: DigitalOcean's `size_gigabytes`.
fn gib_float(bytes: u64) -> f64 {
    (bytes as f64 / GIB * 100.0).ceil() / 100.0
}

pub fn region(regions: &Regions, slug: &str) -> Value {
    let spec = regions.spec(slug);
    json!({
        "name": spec.map_or(slug, |s| s.name.as_str()),
        "slug": slug,
        "features": ["backups", "image_transfer", "storage"],
        "available": spec.is_some(),
        "sizes": [],
    })
}

pub fn account(team: &Team, droplet_limit: u32) -> Value {
    json!({
        "droplet_limit": droplet_limit,
        "floating_ip_limit": 0,
        "volume_limit": droplet_limit,
        "email": team.email,
        "uuid": team.uuid,
        "email_verified": false,
        "status": "active",
        "status_message": "",
        "team": {"uuid": team.uuid, "name": team.name},
    })
}

/// `backups` is the droplet's backup state (`policy::state`): its `next_window` is also
/// DigitalOcean's `next_backup_window`.
pub fn droplet(regions: &Regions, d: &Droplet, source_image: Option<&Image>, backups: Value) -> Value {
    let disk_gb = gib_ceil(d.disk.size_bytes);
    let mut features = Vec::new();
    if d.backups_enabled {
        features.push("backups");
    }
    let image = match source_image {
        Some(image) => self::image(image),
        None => json!({
            "id": null, "name": "registered disk", "distribution": "Unknown", "slug": null, "public": false,
            "regions": [d.region], "created_at": d.created_at, "min_disk_size": disk_gb,
            "type": "custom", "size_gigabytes": null, "description": "", "tags": [], "status": "available",
            "error_message": "",
        }),
    };
    json!({
        "id": d.id,
        "name": d.name,
        "memory": d.memory_mb,
        "vcpus": d.vcpus,
        "disk": disk_gb,
        "disk_info": [{"type": "local", "size": {"amount": disk_gb, "unit": "gib"}}],
        "locked": d.locked,
        "status": d.status.as_str(),
        "kernel": null,
        "created_at": d.created_at,
        "features": features,
        "backup_ids": d.backup_ids,
        "next_backup_window": backups["next_window"].clone(),
        "snapshot_ids": d.snapshot_ids,
        "image": image,
        "volume_ids": d.volume_ids,
        "size": size(regions, d),
        "size_slug": d.size_slug,
        "networks": {"v4": [], "v6": []},
        "region": region(regions, &d.region),
        "tags": d.tags,
        "drydock": {
            "disk": {"path": d.disk.path, "format": d.disk.format.as_str(), "size_bytes": d.disk.size_bytes},
            "power": d.power,
            "backup_policy": d.backup_policy,
            "backups": backups,
        },
    })
}

fn size(regions: &Regions, d: &Droplet) -> Value {
    let _ = regions;
    json!({
        "slug": d.size_slug,
        "memory": d.memory_mb,
        "vcpus": d.vcpus,
        "disk": gib_ceil(d.disk.size_bytes),
        "transfer": 0.0,
        "price_monthly": 0.0,
        "price_hourly": 0.0,
        "regions": [d.region],
        "available": true,
        "description": "Registered machine",
    })
}

/// An image as `/v2/images` shows it.
pub fn image(i: &Image) -> Value {
    json!({
        "id": i.id,
        "name": i.name,
        "type": i.kind.as_str(),
        "distribution": i.distribution,
        "slug": null,
        "public": false,
        "regions": i.regions(),
        "created_at": i.created_at,
        "min_disk_size": gib_ceil(i.size_bytes),
        "size_gigabytes": gib_float(i.stored_bytes),
        "description": i.description,
        "tags": i.tags,
        "status": "available",
        "error_message": "",
        "drydock": {"resource_type": i.resource_type.as_str(), "resource_id": i.resource_id, "size_bytes": i.size_bytes, "stored_bytes": i.stored_bytes},
    })
}

/// A snapshot as `/v2/snapshots` and volume snapshots show it: string ids. Typed, because
/// listings of 200 are the API's hottest path.
#[derive(Serialize)]
pub struct Snapshot<'a> {
    id: String,
    name: &'a str,
    created_at: &'a str,
    regions: Vec<&'a str>,
    min_disk_size: u64,
    size_gigabytes: f64,
    resource_id: &'a str,
    resource_type: &'static str,
    tags: &'a [String],
}

pub fn snapshot(i: &Image) -> Snapshot<'_> {
    Snapshot {
        id: i.public_id(),
        name: &i.name,
        created_at: &i.created_at,
        regions: i.copies.iter().map(|c| c.region.as_str()).collect(),
        min_disk_size: gib_ceil(i.size_bytes),
        size_gigabytes: gib_float(i.stored_bytes),
        resource_id: &i.resource_id,
        resource_type: i.resource_type.as_str(),
        tags: &i.tags,
    }
}

/// A snapshot or backup as `/v2/droplets/{id}/snapshots|backups` show it: integer ids.
pub fn droplet_snapshot(i: &Image) -> Value {
    json!({
        "id": i.id,
        "name": i.name,
        "distribution": i.distribution,
        "slug": null,
        "public": false,
        "created_at": i.created_at,
        "regions": i.regions(),
        "min_disk_size": gib_ceil(i.size_bytes),
        "size_gigabytes": gib_float(i.stored_bytes),
        "type": i.kind.as_str(),
        "drydock": {"tags": i.tags, "size_bytes": i.size_bytes, "stored_bytes": i.stored_bytes},
    })
}

/// `backups` is the volume's backup state (`policy::state`).
pub fn volume(regions: &Regions, v: &Volume, backups: Value) -> Value {
    json!({
        "id": v.id,
        "name": v.name,
        "description": v.description,
        "size_gigabytes": gib_ceil(v.disk.size_bytes),
        "created_at": v.created_at,
        "droplet_ids": v.droplet_id.map_or_else(Vec::new, |d| vec![d]),
        "region": region(regions, &v.region),
        "tags": v.tags,
        "filesystem_type": v.filesystem_type,
        "filesystem_label": v.filesystem_label,
        "drydock": {
            "disk": {"path": v.disk.path, "format": v.disk.format.as_str(), "size_bytes": v.disk.size_bytes},
            "locked": v.locked,
            "backups_enabled": v.backups_enabled,
            "backup_policy": v.backup_policy,
            "backup_ids": v.backup_ids,
            "backups": backups,
        },
    })
}

pub fn action(regions: &Regions, a: &Action) -> Value {
    let resource_id: Value = match a.resource_type {
        ResourceType::Volume => Value::Null,
        _ => a.resource_id.parse::<i64>().map_or(Value::Null, Value::from),
    };
    let percent = match (a.status, a.bytes_total) {
        (ActionStatus::Completed, _) => 100,
        (_, 0) => 0,
        (_, total) => (a.bytes_done.saturating_mul(100) / total).min(99),
    };
    json!({
        "id": a.id,
        "status": a.status.as_str(),
        "type": a.kind,
        "started_at": a.started_at,
        "completed_at": a.completed_at,
        "resource_id": resource_id,
        "resource_type": a.resource_type.as_str(),
        "region": region(regions, &a.region),
        "region_slug": a.region,
        "drydock": {
            "resource_id": a.resource_id,
            "progress": {"percent": percent, "bytes_done": a.bytes_done, "bytes_total": a.bytes_total},
            "error": a.error,
            // The image a snapshot action makes, or a restore or create reads.
            "image_id": a.params.get("image_id").cloned().unwrap_or(Value::Null),
            // The daemon running it, when several share the catalog.
            "worker": a.worker,
        },
    })
}
