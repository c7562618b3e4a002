//! The usage report: what one team's images take up in the region repositories, what deleting
//! them would free, and what that costs a month.
//!
//! Sizes come from [`drydock_engine::usage`]: stored bytes are chunk bytes as kept in packs
//! (compressed, sealed, each distinct chunk once); *frees* bytes are the chunks no other snapshot
//! in the region's repository references, other teams' included, since a region's repository is
//! shared. Measuring reads every manifest of each region the team uses: run it on a blocking
//! thread.
//!
//! Cost, a simple rule: in each region, a droplet or volume pays for its own stored bytes there
//! (the union of its images' chunks). Those bytes are split between its backups and its
//! snapshots in proportion to their logical sizes; the backups' share is priced at the backup
//! price of the plan in the resource's policy (the daily price when it has none, or is deleted),
//! the snapshots' share at the snapshot price. Region and total costs add up the resources':
//! chunks that two droplets share are paid by both, so deduplication across resources shows in
//! the regions' stored bytes but is not credited in the cost.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use drydock_catalog::{DropletId, Image, ImageFilter, ImageId, ImageType, Page, ResourceType, TeamId};
use drydock_engine::id::SnapshotId;
use drydock_engine::usage::{GroupUsage, usage};
use drydock_schedule::Policy;
use drydock_schedule::cost::{Prices, monthly_cost};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::runner::Jobs;

#[derive(Clone, Debug, Serialize)]
pub struct UsageReport {
    /// The currency of every `monthly_cost`.
    pub currency: String,
    /// One entry per copy: an image stored in two regions appears twice.
    pub images: Vec<ImageUsage>,
    /// Every droplet and volume with images, deleted ones included.
    pub resources: Vec<ResourceUsage>,
    pub regions: Vec<RegionUsage>,
    pub totals: UsageTotals,
}

/// One copy of one image.
#[derive(Clone, Debug, Serialize)]
pub struct ImageUsage {
    pub image_id: ImageId,
    pub kind: ImageType,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub region: String,
    pub logical_bytes: u64,
    /// Its chunks, each counted once.
    pub stored_bytes: u64,
    /// What deleting this copy frees at the next gc: its chunks no other snapshot references.
    pub frees_bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResourceUsage {
    pub resource_type: ResourceType,
    pub resource_id: String,
    /// `None` once the droplet or volume is deleted.
    pub name: Option<String>,
    pub logical_bytes: u64,
    /// In each region, the union of its images' chunks; summed over regions.
    pub stored_bytes: u64,
    /// What deleting all its images frees.
    pub frees_bytes: u64,
    pub backups: u32,
    pub snapshots: u32,
    pub monthly_cost: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RegionUsage {
    pub region: String,
    pub logical_bytes: u64,
    /// The union of the team's images' chunks in this region.
    pub stored_bytes: u64,
    /// What deleting all the team's images in this region frees.
    pub frees_bytes: u64,
    pub monthly_cost: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct UsageTotals {
    pub images: u32,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
    pub frees_bytes: u64,
    pub monthly_cost: f64,
}

/// Measures every available image of `team` (see the module's documentation for the cost rule).
pub fn usage_report(jobs: &Jobs, team: TeamId, prices: &Prices) -> Result<UsageReport> {
    let (images, _) = jobs.catalog().images(team, &ImageFilter::default(), Page::ALL)?;
    let mut resources = resources_of(jobs, team, &images, prices)?;
    let mut report = UsageReport {
        currency: prices.currency.clone(),
        images: Vec::new(),
        resources: Vec::new(),
        regions: Vec::new(),
        totals: UsageTotals { images: images.len() as u32, ..UsageTotals::default() },
    };

    for (region, copies) in copies_by_region(&images)? {
        let repo = jobs.regions().repository(&region)?;
        let measured = measure_region(&repo, &copies)?;
        let mut region_usage = RegionUsage {
            region: region.clone(),
            logical_bytes: measured.team.logical_bytes,
            stored_bytes: measured.team.stored_bytes,
            frees_bytes: measured.team.exclusive_bytes,
            monthly_cost: 0.0,
        };
        for (copy, usage) in copies.iter().zip(&measured.copies) {
            report.images.push(ImageUsage {
                image_id: copy.image.id,
                kind: copy.image.kind,
                resource_type: copy.image.resource_type,
                resource_id: copy.image.resource_id.clone(),
                region: region.clone(),
                logical_bytes: usage.logical_bytes,
                stored_bytes: usage.stored_bytes,
                frees_bytes: usage.exclusive_bytes,
            });
        }
        for (key, share) in &measured.resources {
            let Some(resource) = resources.get_mut(key) else { continue };
            let cost = split_cost(share, resource.backup_price, prices.snapshot_gib_month);
            resource.usage.logical_bytes += share.usage.logical_bytes;
            resource.usage.stored_bytes += share.usage.stored_bytes;
            resource.usage.frees_bytes += share.usage.exclusive_bytes;
            resource.usage.monthly_cost += cost;
            region_usage.monthly_cost += cost;
        }
        report.totals.logical_bytes += region_usage.logical_bytes;
        report.totals.stored_bytes += region_usage.stored_bytes;
        report.totals.frees_bytes += region_usage.frees_bytes;
        report.totals.monthly_cost += region_usage.monthly_cost;
        report.regions.push(region_usage);
    }
    report.resources = resources.into_values().map(|r| r.usage).collect();
    Ok(report)
}

/// A droplet or volume, ordered by type then id.
type ResourceKey = (&'static str, String);

fn key_of(image: &Image) -> ResourceKey {
    (image.resource_type.as_str(), image.resource_id.clone())
}

/// A resource's row as it fills up, and the price its backups pay.
struct ResourceTally {
    usage: ResourceUsage,
    backup_price: f64,
}

/// Every resource the images belong to, counted and named, with its backup price.
fn resources_of(
    jobs: &Jobs,
    team: TeamId,
    images: &[Image],
    prices: &Prices,
) -> Result<BTreeMap<ResourceKey, ResourceTally>> {
    let mut resources: BTreeMap<ResourceKey, ResourceTally> = BTreeMap::new();
    for image in images {
        let tally = match resources.entry(key_of(image)) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(new_tally(jobs, team, image, prices)?),
        };
        match image.kind {
            ImageType::Backup => tally.usage.backups += 1,
            ImageType::Snapshot => tally.usage.snapshots += 1,
        }
    }
    Ok(resources)
}

/// The empty row of the resource `image` belongs to, named and priced.
fn new_tally(jobs: &Jobs, team: TeamId, image: &Image, prices: &Prices) -> Result<ResourceTally> {
    let (name, policy) = describe(jobs, team, image.resource_type, &image.resource_id)?;
    let backup_price = match policy {
        Some(policy) => prices.backup_price(&policy.plan),
        None => prices.backup_daily_gib_month,
    };
    let usage = ResourceUsage {
        resource_type: image.resource_type,
        resource_id: image.resource_id.clone(),
        name,
        logical_bytes: 0,
        stored_bytes: 0,
        frees_bytes: 0,
        backups: 0,
        snapshots: 0,
        monthly_cost: 0.0,
    };
    Ok(ResourceTally { usage, backup_price })
}

/// The resource's name and backup policy; neither once it is deleted.
fn describe(
    jobs: &Jobs,
    team: TeamId,
    resource_type: ResourceType,
    id: &str,
) -> Result<(Option<String>, Option<Policy>)> {
    let catalog = jobs.catalog();
    let found = match resource_type {
        ResourceType::Droplet => match id.parse::<DropletId>() {
            Ok(droplet) => catalog.droplet(team, droplet).map(|d| (d.name, d.backup_policy)),
            Err(_) => return Ok((None, None)),
        },
        ResourceType::Volume => catalog.volume(team, id).map(|v| (v.name, v.backup_policy)),
        ResourceType::Image => return Ok((None, None)),
    };
    let (name, policy) = match found {
        Ok(found) => found,
        Err(drydock_catalog::Error::NotFound(_)) => return Ok((None, None)),
        Err(e) => return Err(e.into()),
    };
    let policy = match policy {
        Some(json) => Some(Policy::from_json(&json).map_err(|e| {
            Error::Invalid(format!("{resource_type} {id} has an unreadable backup policy in the catalog: {e}"))
        })?),
        None => None,
    };
    Ok((Some(name), policy))
}

/// One image's copy in one region.
struct StoredCopy<'a> {
    image: &'a Image,
    snapshot: SnapshotId,
}

/// The images' copies, by region (in region order, each region's copies in image order).
fn copies_by_region(images: &[Image]) -> Result<BTreeMap<String, Vec<StoredCopy<'_>>>> {
    let mut regions: BTreeMap<String, Vec<StoredCopy>> = BTreeMap::new();
    for image in images {
        for copy in &image.copies {
            let snapshot = SnapshotId::from_hex(&copy.snapshot_id).ok_or_else(|| {
                Error::Invalid(format!(
                    "image {} names no valid snapshot in region {} ({:?})",
                    image.id, copy.region, copy.snapshot_id
                ))
            })?;
            regions.entry(copy.region.clone()).or_default().push(StoredCopy { image, snapshot });
        }
    }
    Ok(regions)
}

/// What one resource holds in one region, and how much of it is backups.
struct ResourceShare {
    usage: GroupUsage,
    backup_logical_bytes: u64,
    snapshot_logical_bytes: u64,
}

/// One region measured: each copy, each resource's copies together, and the team's.
struct RegionMeasure {
    copies: Vec<GroupUsage>,
    resources: BTreeMap<ResourceKey, ResourceShare>,
    team: GroupUsage,
}

/// Asks the engine about every copy, every resource and the whole team in one pass.
fn measure_region(repo: &drydock_engine::Repository, copies: &[StoredCopy]) -> Result<RegionMeasure> {
    let mut by_resource: BTreeMap<ResourceKey, Vec<usize>> = BTreeMap::new();
    for (position, copy) in copies.iter().enumerate() {
        by_resource.entry(key_of(copy.image)).or_default().push(position);
    }
    let snapshots = |positions: &[usize]| positions.iter().map(|&p| copies[p].snapshot).collect::<Vec<_>>();
    let mut groups: Vec<Vec<SnapshotId>> = copies.iter().map(|c| vec![c.snapshot]).collect();
    groups.extend(by_resource.values().map(|positions| snapshots(positions)));
    groups.push(copies.iter().map(|c| c.snapshot).collect());

    let mut measured = usage(repo, &groups)?;
    let team = measured.pop().expect("the team's group was asked for");
    let resource_usages = measured.split_off(copies.len());
    let resources = by_resource
        .into_iter()
        .zip(resource_usages)
        .map(|((key, positions), usage)| {
            let logical_of = |kind: ImageType| -> u64 {
                positions.iter().filter(|&&p| copies[p].image.kind == kind).map(|&p| measured[p].logical_bytes).sum()
            };
            let share = ResourceShare {
                usage,
                backup_logical_bytes: logical_of(ImageType::Backup),
                snapshot_logical_bytes: logical_of(ImageType::Snapshot),
            };
            (key, share)
        })
        .collect();
    Ok(RegionMeasure { copies: measured, resources, team })
}

/// The monthly cost of a resource's stored bytes in one region, split between backups and
/// snapshots in proportion to their logical sizes.
fn split_cost(share: &ResourceShare, backup_price: f64, snapshot_price: f64) -> f64 {
    let stored = share.usage.stored_bytes;
    let logical = share.backup_logical_bytes as u128 + share.snapshot_logical_bytes as u128;
    let backup_bytes = match logical {
        0 => 0,
        _ => (stored as u128 * share.backup_logical_bytes as u128 / logical) as u64,
    };
    monthly_cost(backup_bytes, backup_price) + monthly_cost(stored - backup_bytes, snapshot_price)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn share(stored_bytes: u64, backup_logical_bytes: u64, snapshot_logical_bytes: u64) -> ResourceShare {
        ResourceShare {
            usage: GroupUsage { logical_bytes: 0, stored_bytes, exclusive_bytes: 0 },
            backup_logical_bytes,
            snapshot_logical_bytes,
        }
    }

    #[test]
    fn stored_bytes_are_split_by_logical_size() {
        // 4 GiB stored; backups are three quarters of the logical bytes.
        let cost = split_cost(&share(4 * GIB, 30 * GIB, 10 * GIB), 0.03, 0.06);
        assert!((cost - (3.0 * 0.03 + 1.0 * 0.06)).abs() < 1e-9, "{cost}");
    }

    #[test]
    fn only_backups_or_only_snapshots_pay_one_price() {
        let backups = split_cost(&share(2 * GIB, 5 * GIB, 0), 0.03, 0.06);
        assert!((backups - 0.06).abs() < 1e-9, "{backups}");
        let snapshots = split_cost(&share(2 * GIB, 0, 5 * GIB), 0.03, 0.06);
        assert!((snapshots - 0.12).abs() < 1e-9, "{snapshots}");
        assert_eq!(split_cost(&share(0, 0, 0), 0.03, 0.06), 0.0);
    }
}
