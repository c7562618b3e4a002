//! The usage report of a team: per image copy, per droplet (deleted ones included), per region,
//! measured in a real region repository whose chunks the test knows.

use std::path::Path;
use std::sync::Arc;

use drydock_catalog::{
    Catalog, Disk, DiskFormat, DropletStatus, ImageCopy, ImageType, NewAction, NewDroplet, NewImage, ResourceType,
    TeamId,
};
use drydock_engine::backup::{BackupOptions, backup};
use drydock_engine::{CancelToken, NoProgress};
use drydock_jobs::{DiskPolicy, JobSettings, Jobs, RegionLocation, RegionSpec, Regions, usage_report};
use drydock_schedule::cost::{Prices, monthly_cost};
use drydock_sources::ImageFile;
use serde_json::json;

const REGION: &str = "local-1";
/// The repository's chunk size (the default: regions are created with default options).
const CHUNK: usize = drydock_engine::config::CHUNK_SIZE_BYTES_DEFAULT as usize;

/// An incompressible chunk from a seed (xorshift).
fn chunk(seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..CHUNK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn disk_of(seeds: &[u64]) -> Vec<u8> {
    seeds.iter().flat_map(|&seed| chunk(seed)).collect()
}

struct World {
    dir: tempfile::TempDir,
    catalog: Arc<Catalog>,
    regions: Arc<Regions>,
    jobs: Arc<Jobs>,
    team: TeamId,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(Catalog::open(&dir.path().join("catalog.sqlite")).unwrap());
    let regions = Arc::new(Regions::new(vec![RegionSpec {
        slug: REGION.into(),
        name: "Local".into(),
        location: RegionLocation::Local(dir.path().join("region")),
        passphrase: b"test passphrase".to_vec(),
    }]));
    let settings = JobSettings {
        workers: 1,
        disks: DiskPolicy { allowed_roots: vec![dir.path().to_path_buf()] },
        scratch_dir: dir.path().join("scratch"),
    };
    let jobs = Jobs::new(catalog.clone(), regions.clone(), settings);
    let team = catalog.ensure_team("default").unwrap().id;
    World { dir, catalog, regions, jobs, team }
}

impl World {
    fn droplet(&self, name: &str) -> i64 {
        let new = NewDroplet {
            name: name.into(),
            region: REGION.into(),
            disk: Disk {
                path: self.dir.path().join(name).display().to_string(),
                format: DiskFormat::Raw,
                size_bytes: 0,
            },
            power: json!({"driver": "none"}),
            status: DropletStatus::Active,
            size_slug: "registered".into(),
            memory_mb: 0,
            vcpus: 0,
            tags: Vec::new(),
            backups_enabled: false,
            backup_policy: None,
            backups_since: None,
            image_id: None,
        };
        self.catalog.insert_droplet(self.team, &new).unwrap().id
    }

    /// Backs `disk` up as an image of `droplet`, the way a snapshot or backup action does.
    fn image(&self, droplet: i64, kind: ImageType, disk: &[u8]) {
        let path = self.dir.path().join("disk.img");
        std::fs::write(&path, disk).unwrap();
        let action = NewAction {
            kind: "snapshot".into(),
            resource_type: ResourceType::Droplet,
            resource_id: droplet.to_string(),
            region: REGION.into(),
            params: json!({}),
        };
        let image = NewImage {
            name: format!("{kind}"),
            kind,
            resource_type: ResourceType::Droplet,
            resource_id: droplet.to_string(),
            size_bytes: disk.len() as u64,
            tags: Vec::new(),
            created_at: None,
        };
        let (action, image) = self.catalog.start_action(self.team, &action, Some(&image)).unwrap();
        let image = image.unwrap();
        let repo = self.regions.repository(REGION).unwrap();
        let source = ImageFile::open(Path::new(&path)).unwrap();
        let options = BackupOptions { name: image.name.clone(), tags: Vec::new() };
        let report = backup(&repo, &source, &options, &NoProgress, &CancelToken::new()).unwrap();
        let copy = ImageCopy { region: REGION.into(), snapshot_id: report.id.to_hex() };
        self.catalog.finish_image(image.id, &copy, disk.len() as u64, report.meta.stored_bytes).unwrap();
        self.catalog.finish_action(action.id, Ok(())).unwrap();
    }
}

#[test]
fn the_report_counts_shared_chunks_once_and_prices_each_droplet() {
    let w = world();
    let web = w.droplet("web");
    let old = w.droplet("old");
    // web's snapshot and its later backup differ in the last chunk; old shares web's first chunk.
    w.image(web, ImageType::Snapshot, &disk_of(&[1, 2, 3, 4]));
    w.image(web, ImageType::Backup, &disk_of(&[1, 2, 3, 40]));
    w.image(old, ImageType::Backup, &disk_of(&[1, 50]));
    w.catalog.delete_droplet(w.team, old).unwrap();
    let prices = Prices::default();

    let report = usage_report(&w.jobs, w.team, &prices).unwrap();

    let repo = w.regions.repository(REGION).unwrap();
    let blob = (CHUNK + repo.keys().cipher.overhead()) as u64;
    let chunks = |n: u64| n * CHUNK as u64;
    let per_image: Vec<_> =
        report.images.iter().map(|i| (i.kind, i.logical_bytes, i.stored_bytes, i.frees_bytes)).collect();
    assert_eq!(
        per_image,
        [
            (ImageType::Snapshot, chunks(4), 4 * blob, blob),
            (ImageType::Backup, chunks(4), 4 * blob, blob),
            (ImageType::Backup, chunks(2), 2 * blob, blob),
        ]
    );
    assert!(report.images.iter().all(|i| i.region == REGION && i.resource_type == ResourceType::Droplet));

    let [web_row, old_row] = &report.resources[..] else { panic!("two droplets: {:#?}", report.resources) };
    assert_eq!(web_row.resource_id, web.to_string());
    assert_eq!(web_row.name.as_deref(), Some("web"));
    assert_eq!((web_row.backups, web_row.snapshots), (1, 1));
    assert_eq!((web_row.logical_bytes, web_row.stored_bytes), (chunks(8), 5 * blob));
    assert_eq!(web_row.frees_bytes, 4 * blob, "chunk 1 is old's too");
    // Half of web's logical bytes are backups: half its stored bytes pay the backup price.
    let web_cost = monthly_cost(5 * blob / 2, prices.backup_daily_gib_month)
        + monthly_cost(5 * blob - 5 * blob / 2, prices.snapshot_gib_month);
    assert!((web_row.monthly_cost - web_cost).abs() < 1e-12, "{} != {web_cost}", web_row.monthly_cost);

    assert_eq!(old_row.name, None, "old is deleted; its backup remains");
    assert_eq!((old_row.backups, old_row.snapshots), (1, 0));
    assert_eq!((old_row.stored_bytes, old_row.frees_bytes), (2 * blob, blob));
    let old_cost = monthly_cost(2 * blob, prices.backup_daily_gib_month);
    assert!((old_row.monthly_cost - old_cost).abs() < 1e-12);

    let [region] = &report.regions[..] else { panic!("one region: {:#?}", report.regions) };
    assert_eq!(region.region, REGION);
    assert_eq!((region.logical_bytes, region.stored_bytes, region.frees_bytes), (chunks(10), 6 * blob, 6 * blob));
    assert!((region.monthly_cost - (web_cost + old_cost)).abs() < 1e-12);
    assert_eq!(report.totals.images, 3);
    assert_eq!(report.totals.stored_bytes, region.stored_bytes);
    assert_eq!(report.currency, prices.currency);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["images"][0]["kind"], "snapshot", "{json}");
}

#[test]
fn a_team_without_images_uses_nothing() {
    let w = world();
    let report = usage_report(&w.jobs, w.team, &Prices::default()).unwrap();
    assert!(report.images.is_empty() && report.resources.is_empty() && report.regions.is_empty());
    assert_eq!((report.totals.stored_bytes, report.totals.monthly_cost), (0, 0.0));
}
