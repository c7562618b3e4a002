//! Recovery after a crash between committing a snapshot to the repository and recording it in
//! the catalog: the snapshot is kept and its action finished ("resumed"), not lost.

use std::sync::Arc;

use drydock_catalog::{
    ActionStatus, Catalog, Disk, DiskFormat, DropletStatus, ImageStatus, ImageType, NewAction, NewDroplet, NewImage,
    ResourceType,
};
use drydock_engine::backup::{BackupOptions, backup};
use drydock_engine::{CancelToken, NoProgress};
use drydock_jobs::{DiskPolicy, JobSettings, Jobs, RegionLocation, RegionSpec, Regions, RepoTags, check_catalog};
use drydock_sources::ImageFile;
use serde_json::json;

#[test]
fn a_snapshot_committed_but_unrecorded_is_resumed_and_one_never_committed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("web.img");
    let mut bytes = vec![0u8; 4 << 20];
    bytes[1 << 20..(1 << 20) + 4096].fill(7);
    std::fs::write(&disk, &bytes).unwrap();

    let catalog = Arc::new(Catalog::open(&dir.path().join("catalog.sqlite")).unwrap());
    let regions = Arc::new(Regions::new(vec![RegionSpec {
        slug: "local-1".into(),
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

    let team = catalog.ensure_team("default").unwrap();
    let new_droplet = NewDroplet {
        name: "web".into(),
        region: "local-1".into(),
        disk: Disk { path: disk.display().to_string(), format: DiskFormat::Raw, size_bytes: bytes.len() as u64 },
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
    let start_snapshot = |droplet: i64| {
        let action = NewAction {
            kind: "snapshot".into(),
            resource_type: ResourceType::Droplet,
            resource_id: droplet.to_string(),
            region: "local-1".into(),
            params: json!({"power_off": false}),
        };
        let image = NewImage {
            name: "nightly".into(),
            kind: ImageType::Snapshot,
            resource_type: ResourceType::Droplet,
            resource_id: droplet.to_string(),
            size_bytes: bytes.len() as u64,
            tags: Vec::new(),
            created_at: None,
        };
        let (action, image) = catalog.start_action(team.id, &action, Some(&image)).unwrap();
        (action, image.unwrap())
    };
    let committed_droplet = catalog.insert_droplet(team.id, &new_droplet).unwrap().id;
    let lost_droplet = catalog.insert_droplet(team.id, &new_droplet).unwrap().id;
    let (committed, committed_image) = start_snapshot(committed_droplet);
    let (lost, lost_image) = start_snapshot(lost_droplet);

    // The worker of the first committed its snapshot, then the daemon died before recording it.
    let repo = regions.repository("local-1").unwrap();
    let options = BackupOptions { name: "droplet-1".into(), tags: RepoTags::of(&team, &committed_image).encode() };
    let source = ImageFile::open(&disk).unwrap();
    let report = backup(&repo, &source, &options, &NoProgress, &CancelToken::new()).unwrap();

    let recovery = jobs.recover().unwrap();
    assert_eq!(recovery.resumed, [committed.id]);
    assert_eq!(recovery.errored, [lost.id]);

    let image = catalog.image(team.id, committed_image.id).unwrap();
    assert_eq!(image.status, ImageStatus::Available);
    assert_eq!(image.copies.len(), 1);
    assert_eq!(image.copies[0].snapshot_id, report.id.to_hex());
    assert_eq!(catalog.action(team.id, committed.id).unwrap().status, ActionStatus::Completed);

    let errored = catalog.action(team.id, lost.id).unwrap();
    assert_eq!(errored.status, ActionStatus::Errored);
    assert!(errored.error.as_deref().unwrap_or("").contains("interrupted"), "{errored:?}");
    assert!(catalog.image(team.id, lost_image.id).is_err(), "the pending image of the lost snapshot is discarded");
    assert!(!catalog.droplet(team.id, committed_droplet).unwrap().locked);
    assert!(!catalog.droplet(team.id, lost_droplet).unwrap().locked);
    assert!(catalog.running_actions().unwrap().is_empty());
    assert!(check_catalog(&catalog, &regions).unwrap().mismatches.is_empty());
}
