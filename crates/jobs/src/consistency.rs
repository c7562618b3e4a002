//! The catalog against the repositories. The repositories are the truth about what is stored;
//! the catalog is derived from them and can be checked and rebuilt.

use std::collections::{HashMap, HashSet};

use drydock_catalog::{Catalog, ImageCopy, ImageStatus};

use crate::error::Result;
use crate::regions::Regions;
use crate::tags::RepoTags;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The catalog lists a copy the region's repository does not hold.
    MissingFromRepository { image_id: i64, region: String, snapshot_id: String },
    /// A repository holds a daemon-made snapshot the catalog does not know.
    MissingFromCatalog { region: String, snapshot_id: String, image_id: i64, name: String },
    /// A region could not be read: nothing about it is known.
    RegionUnreadable { region: String, reason: String },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::MissingFromRepository { image_id, region, snapshot_id } => write!(
                f,
                "image {image_id} is in the catalog but its snapshot {} is missing from region {region}",
                &snapshot_id[..snapshot_id.len().min(8)]
            ),
            Mismatch::MissingFromCatalog { region, snapshot_id, image_id, name } => write!(
                f,
                "snapshot {} ({name:?}, image {image_id}) in region {region} is missing from the catalog",
                &snapshot_id[..snapshot_id.len().min(8)]
            ),
            Mismatch::RegionUnreadable { region, reason } => write!(f, "region {region} could not be read: {reason}"),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct CatalogCheck {
    pub images_checked: usize,
    pub snapshots_checked: usize,
    pub mismatches: Vec<Mismatch>,
}

/// Compares every available image's copies with every region's daemon-made snapshots.
/// Pending images (actions still running) are left out.
pub fn check_catalog(catalog: &Catalog, regions: &Regions) -> Result<CatalogCheck> {
    let (images, pending): (Vec<_>, Vec<_>) =
        catalog.all_images()?.into_iter().partition(|i| i.status == ImageStatus::Available);
    let pending: HashSet<i64> = pending.into_iter().map(|i| i.id).collect();
    let mut check = CatalogCheck { images_checked: images.len(), ..CatalogCheck::default() };
    let mut in_catalog: HashMap<(String, String), i64> = HashMap::new();
    for image in &images {
        for copy in &image.copies {
            in_catalog.insert((copy.region.clone(), copy.snapshot_id.clone()), image.id);
        }
    }
    let mut in_repositories: HashSet<(String, String)> = HashSet::new();
    for spec in regions.specs() {
        let snapshots = regions.repository(&spec.slug).and_then(|repo| Ok(repo.load_snapshot_metas_lenient()?));
        let (metas, damaged) = match snapshots {
            Ok(loaded) => loaded,
            Err(e) => {
                check.mismatches.push(Mismatch::RegionUnreadable { region: spec.slug.clone(), reason: e.to_string() });
                continue;
            }
        };
        // A damaged manifest is still present: counted as held, reported by `repo verify`.
        for (id, _) in damaged {
            in_repositories.insert((spec.slug.clone(), id.to_hex()));
        }
        for (id, meta) in metas {
            check.snapshots_checked += 1;
            let key = (spec.slug.clone(), id.to_hex());
            in_repositories.insert(key.clone());
            let Some(tags) = RepoTags::decode(&meta.tags) else { continue };
            if !in_catalog.contains_key(&key) && !pending.contains(&tags.image_id) {
                check.mismatches.push(Mismatch::MissingFromCatalog {
                    region: spec.slug.clone(),
                    snapshot_id: key.1,
                    image_id: tags.image_id,
                    name: tags.name,
                });
            }
        }
    }
    let readable: HashSet<&str> = regions
        .specs()
        .iter()
        .map(|s| s.slug.as_str())
        .filter(|slug| {
            !check.mismatches.iter().any(|m| matches!(m, Mismatch::RegionUnreadable { region, .. } if region == slug))
        })
        .collect();
    let mut missing: Vec<_> = in_catalog
        .iter()
        .filter(|(key, _)| readable.contains(key.0.as_str()) && !in_repositories.contains(*key))
        .map(|((region, snapshot_id), image_id)| Mismatch::MissingFromRepository {
            image_id: *image_id,
            region: region.clone(),
            snapshot_id: snapshot_id.clone(),
        })
        .collect();
    missing.sort_by_key(|m| m.to_string());
    check.mismatches.extend(missing);
    Ok(check)
}

/// Makes the catalog agree with the repositories: images found only in a repository are added
/// back (to their team, created if needed) and copies missing from their repository are
/// dropped, with images left without any copy. Returns what was wrong before.
pub fn rebuild_catalog(catalog: &Catalog, regions: &Regions) -> Result<CatalogCheck> {
    let check = check_catalog(catalog, regions)?;
    for mismatch in &check.mismatches {
        match mismatch {
            Mismatch::MissingFromRepository { image_id, region, .. } => catalog.remove_image_copy(*image_id, region)?,
            Mismatch::MissingFromCatalog { region, snapshot_id, .. } => {
                let repo = regions.repository(region)?;
                let Some(id) = drydock_engine::id::SnapshotId::from_hex(snapshot_id) else { continue };
                let meta = repo.load_snapshot(&id)?.meta;
                let Some(tags) = RepoTags::decode(&meta.tags) else { continue };
                let copy = ImageCopy { region: region.clone(), snapshot_id: snapshot_id.clone() };
                catalog.recover_image(
                    &drydock_catalog::RecoveredImage {
                        team_uuid: tags.team_uuid,
                        image_id: tags.image_id,
                        image_uuid: tags.image_uuid,
                        name: tags.name,
                        kind: tags.kind,
                        resource_type: tags.resource_type,
                        resource_id: tags.resource_id,
                        size_bytes: meta.size_bytes,
                        stored_bytes: meta.stored_bytes,
                        created_at: meta.created_at,
                    },
                    &copy,
                )?;
            }
            Mismatch::RegionUnreadable { .. } => {}
        }
    }
    Ok(check)
}
