//! The catalog's contract. `suite` holds one function per property, each taking a fresh, empty
//! `&Catalog` and using only the public API, so that every backend runs the same suite: the
//! `backend_tests!` list below runs it on SQLite and on PostgreSQL.
//! A few properties of the SQLite files themselves are tested after the suite.

use drydock_catalog::Catalog;

mod support;

/// Runs every suite function on a fresh catalog made by `$open` (which returns the catalog and
/// whatever must live as long as it).
macro_rules! backend_tests {
    ($open:path) => {
        backend_tests!($open =>
    teams_are_created_once,
    tokens_authenticate_by_secret_until_revoked,
    teams_see_only_their_own_droplets,
    teams_see_only_their_own_images_and_actions,
    teams_see_only_their_own_volumes,
    listings_page_in_order_with_totals,
    one_action_at_a_time_per_resource,
    an_action_ends_once,
    progress_is_recorded_while_the_action_runs,
    pending_images_are_unlisted_until_finished,
    discarded_pending_images_are_gone,
    image_copies_make_its_regions,
    recovered_images_come_back_under_their_ids,
    resources_in_use_are_not_deleted,
    running_actions_of_every_team,
    images_are_renamed_described_and_converted,
    droplet_settings_are_stored,
    volume_names_are_unique_per_team_and_region,
    images_are_listed_by_tag,
    backups_are_owed_from_when_they_are_turned_on,
    backup_targets_are_the_resources_with_backups_on,
    a_window_is_claimed_once,
    a_missed_window_is_recorded_once,
    a_failed_attempt_is_retried_until_the_backup_is_taken,
    a_retry_is_started_by_one_daemon,
    a_run_fails_for_good_out_of_attempts_or_time,
    finished_runs_are_pruned_but_each_resource_keeps_its_latest,
    backup_statistics_outlive_their_resource,
    backups_of_a_deleted_resource_expire,
    retention_applies_to_every_resource_with_backups,
    backups_of_a_resource_are_listed_oldest_first,
    image_tags_are_replaced,
        );
    };
    ($open:path => $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                let (_guard, catalog) = $open();
                crate::suite::$name(&catalog);
            }
        )+
    };
}

fn sqlite() -> (tempfile::TempDir, Catalog) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let catalog = Catalog::open(&dir.path().join("catalog.sqlite")).expect("opening a new catalog");
    (dir, catalog)
}

fn postgres() -> (support::TestDatabase, Catalog) {
    let database = support::TestDatabase::new();
    let catalog = database.connect();
    (database, catalog)
}

mod on_sqlite {
    backend_tests!(super::sqlite);
}

mod on_postgres {
    backend_tests!(super::postgres);
}

mod suite {
    use drydock_catalog::{
        ActionStatus, Catalog, Disk, DiskFormat, DropletFilter, DropletId, DropletStatus, Error, ImageCopy,
        ImageFilter, ImageId, ImageStatus, ImageType, NewAction, NewDroplet, NewImage, NewVolume, Page, RecoveredImage,
        ResourceType, StartError, TeamId,
    };
    use serde_json::json;

    // Scheduled backups: runs, statistics, retention (tests/suite/backups.rs).
    mod backups;
    pub use backups::*;

    // ---- fixtures ----

    fn new_droplet(name: &str, tags: &[&str]) -> NewDroplet {
        NewDroplet {
            name: name.to_string(),
            region: "local-1".into(),
            disk: Disk { path: format!("/srv/disks/{name}.img"), format: DiskFormat::Raw, size_bytes: 1 << 30 },
            power: json!({"driver": "none"}),
            status: DropletStatus::Active,
            size_slug: "registered".into(),
            memory_mb: 0,
            vcpus: 0,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            backups_enabled: false,
            backup_policy: None,
            backups_since: None,
            image_id: None,
        }
    }

    fn droplet(catalog: &Catalog, team: TeamId, name: &str) -> DropletId {
        catalog.insert_droplet(team, &new_droplet(name, &[])).expect("registering a droplet").id
    }

    fn new_volume(name: &str, region: &str) -> NewVolume {
        NewVolume {
            name: name.to_string(),
            region: region.to_string(),
            description: String::new(),
            disk: Disk { path: format!("/srv/volumes/{name}.img"), format: DiskFormat::Raw, size_bytes: 1 << 30 },
            filesystem_type: "ext4".into(),
            filesystem_label: String::new(),
            tags: Vec::new(),
            backups_enabled: false,
            backup_policy: None,
            backups_since: None,
        }
    }

    fn action_on(kind: &str, resource_type: ResourceType, resource_id: impl ToString) -> NewAction {
        NewAction {
            kind: kind.to_string(),
            resource_type,
            resource_id: resource_id.to_string(),
            region: "local-1".into(),
            params: json!({}),
        }
    }

    fn snapshot_of(droplet: DropletId, name: &str) -> NewImage {
        NewImage {
            name: name.to_string(),
            kind: ImageType::Snapshot,
            resource_type: ResourceType::Droplet,
            resource_id: droplet.to_string(),
            size_bytes: 1 << 30,
            tags: Vec::new(),
            created_at: None,
        }
    }

    fn copy(region: &str, fill: char) -> ImageCopy {
        ImageCopy { region: region.to_string(), snapshot_id: fill.to_string().repeat(64) }
    }

    /// A snapshot of `droplet` taken by a completed action: (image id, action id).
    fn available_snapshot(catalog: &Catalog, team: TeamId, droplet: DropletId, name: &str) -> (ImageId, i64) {
        let (action, image) = catalog
            .start_action(
                team,
                &action_on("snapshot", ResourceType::Droplet, droplet),
                Some(&snapshot_of(droplet, name)),
            )
            .expect("starting a snapshot");
        let image = image.expect("the pending image");
        catalog.finish_image(image.id, &copy("local-1", 'a'), 1 << 30, 1 << 20).expect("finishing the image");
        catalog.finish_action(action.id, Ok(())).expect("finishing the snapshot");
        (image.id, action.id)
    }

    fn assert_not_found<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) {
        match result {
            Err(Error::NotFound(_)) => {}
            other => panic!("{what}: expected NotFound, got {other:?}"),
        }
    }

    fn assert_conflict<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) {
        match result {
            Err(Error::Conflict(_)) => {}
            other => panic!("{what}: expected Conflict, got {other:?}"),
        }
    }

    fn two_teams(catalog: &Catalog) -> (TeamId, TeamId) {
        let a = catalog.ensure_team("team-a").expect("team a").id;
        let b = catalog.ensure_team("team-b").expect("team b").id;
        assert_ne!(a, b);
        (a, b)
    }

    // ---- the suite ----

    pub fn teams_are_created_once(catalog: &Catalog) {
        let first = catalog.ensure_team("ops").expect("creating a team");
        let again = catalog.ensure_team("ops").expect("ensuring it again");
        assert_eq!(first, again);
        assert_eq!(catalog.team(first.id).expect("reading the team"), first);
        let other = catalog.ensure_team("dev").expect("another team");
        assert_ne!((other.id, &other.uuid), (first.id, &first.uuid));
        assert_not_found(catalog.team(first.id.max(other.id) + 1000), "an unknown team");
    }

    pub fn tokens_authenticate_by_secret_until_revoked(catalog: &Catalog) {
        let (a, b) = two_teams(catalog);
        let scopes = vec!["droplet:read".to_string(), "image:create".to_string()];
        let ci = catalog.create_token(a, "ci", &scopes).expect("creating a token");
        assert!(ci.secret.starts_with("dop_v1_") && ci.secret.len() == 7 + 64, "{}", ci.secret);
        assert_eq!((ci.token.team_id, ci.token.scopes.clone(), ci.token.revoked_at.clone()), (a, scopes.clone(), None));
        let other = catalog.create_token(a, "other", &["*".to_string()]).expect("a second token");
        assert_ne!(ci.secret, other.secret);

        let (team, token) = catalog.authenticate(&ci.secret).expect("authenticating").expect("a valid secret");
        assert_eq!((team.id, token.id, token.scopes), (a, ci.token.id, scopes));
        for wrong in [format!("{}0", ci.secret), ci.secret[..ci.secret.len() - 1].to_string(), String::new()] {
            assert!(catalog.authenticate(&wrong).expect("authenticating").is_none(), "{wrong:?} was accepted");
        }
        let listed: Vec<i64> = catalog.tokens(a).expect("listing tokens").iter().map(|t| t.id).collect();
        assert_eq!(listed, [ci.token.id, other.token.id]);
        assert!(catalog.tokens(b).expect("listing tokens").is_empty());

        assert_not_found(catalog.revoke_token(b, ci.token.id), "revoking another team's token");
        catalog.revoke_token(a, ci.token.id).expect("revoking");
        assert!(catalog.authenticate(&ci.secret).expect("authenticating").is_none(), "a revoked token still works");
        assert_not_found(catalog.revoke_token(a, ci.token.id), "revoking twice");
        let listed: Vec<i64> = catalog.tokens(a).expect("listing tokens").iter().map(|t| t.id).collect();
        assert_eq!(listed, [other.token.id]);
        assert!(catalog.authenticate(&other.secret).expect("authenticating").is_some());
    }

    pub fn teams_see_only_their_own_droplets(catalog: &Catalog) {
        let (a, b) = two_teams(catalog);
        let id = droplet(catalog, a, "web-1");
        assert_not_found(catalog.droplet(b, id), "another team's droplet");
        assert_eq!(catalog.droplets(b, &DropletFilter::default(), Page::ALL).expect("listing").1, 0);
        assert_not_found(catalog.delete_droplet(b, id), "deleting another team's droplet");
        assert_not_found(catalog.rename_droplet(b, id, "mine"), "renaming another team's droplet");
        assert_not_found(catalog.set_droplet_status(b, id, DropletStatus::Off), "switching another team's droplet");
        assert_not_found(catalog.set_droplet_backups(b, id, true, None, 1), "another team's backups");
        assert_not_found(catalog.set_droplet_disk_bytes(b, id, 1), "another team's disk");
        let kept = catalog.droplet(a, id).expect("the owner still sees it");
        assert_eq!((kept.name.as_str(), kept.status, kept.backups_enabled), ("web-1", DropletStatus::Active, false));
    }

    pub fn teams_see_only_their_own_images_and_actions(catalog: &Catalog) {
        let (a, b) = two_teams(catalog);
        let id = droplet(catalog, a, "web-1");
        let (image, action) = available_snapshot(catalog, a, id, "nightly");
        let uuid = catalog.image(a, image).expect("the owner sees it").uuid;

        assert_not_found(catalog.image(b, image), "another team's image");
        assert_not_found(catalog.image_by_uuid(b, &uuid), "another team's image by uuid");
        assert_eq!(catalog.images(b, &ImageFilter::default(), Page::ALL).expect("listing").1, 0);
        assert_not_found(catalog.update_image(b, image, Some("mine"), None), "renaming another team's image");
        assert_not_found(catalog.convert_image(b, image), "converting another team's image");
        assert_not_found(catalog.delete_image(b, image), "deleting another team's image");
        assert_not_found(catalog.action(b, action), "another team's action");
        assert_eq!(catalog.actions(b, None, Page::ALL).expect("listing").1, 0);
        assert_eq!(
            catalog.actions(b, Some((ResourceType::Droplet, &id.to_string())), Page::ALL).expect("listing").1,
            0
        );

        assert_eq!(catalog.image(a, image).expect("still there").name, "nightly");
        assert_eq!(catalog.actions(a, None, Page::ALL).expect("listing").1, 1);
    }

    pub fn teams_see_only_their_own_volumes(catalog: &Catalog) {
        let (a, b) = two_teams(catalog);
        let volume = catalog.insert_volume(a, &new_volume("data", "local-1")).expect("registering a volume");
        assert_not_found(catalog.volume(b, &volume.id), "another team's volume");
        assert_eq!(catalog.volumes(b, None, None, Page::ALL).expect("listing").1, 0);
        assert_eq!(catalog.volumes(b, Some("data"), Some("local-1"), Page::ALL).expect("listing").1, 0);
        assert_not_found(catalog.delete_volume(b, &volume.id), "deleting another team's volume");
        // Names are per team: team B may use the same one.
        let theirs = catalog.insert_volume(b, &new_volume("data", "local-1")).expect("the same name in team B");
        assert_ne!(theirs.id, volume.id);
        assert_eq!(catalog.volume(a, &volume.id).expect("still there").name, "data");
    }

    pub fn listings_page_in_order_with_totals(catalog: &Catalog) {
        let team = catalog.ensure_team("t").expect("a team").id;
        let ids: Vec<DropletId> = (0..7)
            .map(|n| {
                let tags: &[&str] = if n % 2 == 0 { &["even"] } else { &[] };
                catalog.insert_droplet(team, &new_droplet(&format!("web-{n}"), tags)).expect("registering").id
            })
            .collect();
        let page = |offset, limit| {
            let (items, total) =
                catalog.droplets(team, &DropletFilter::default(), Page { offset, limit }).expect("listing");
            (items.iter().map(|d| d.id).collect::<Vec<_>>(), total)
        };
        assert_eq!(page(0, 3), (ids[0..3].to_vec(), 7));
        assert_eq!(page(3, 3), (ids[3..6].to_vec(), 7));
        assert_eq!(page(6, 3), (ids[6..].to_vec(), 7));
        assert_eq!(page(9, 3), (vec![], 7));

        let tagged = DropletFilter { tag: Some("even".into()), name: None };
        let (items, total) = catalog.droplets(team, &tagged, Page { offset: 1, limit: 2 }).expect("listing by tag");
        assert_eq!(total, 4);
        assert_eq!(items.iter().map(|d| d.id).collect::<Vec<_>>(), [ids[2], ids[4]]);
        let named = DropletFilter { tag: None, name: Some("WEB-3".into()) };
        let (items, total) = catalog.droplets(team, &named, Page::ALL).expect("listing by name");
        assert_eq!((items.len(), total, items[0].id), (1, 1, ids[3]));

        // Actions: newest first.
        let mut actions = Vec::new();
        for &id in &ids[..5] {
            let (action, _) =
                catalog.start_action(team, &action_on("rename", ResourceType::Droplet, id), None).expect("starting");
            actions.push(action.id);
        }
        let (listed, total) = catalog.actions(team, None, Page { offset: 1, limit: 2 }).expect("listing actions");
        assert_eq!(total, 5);
        assert_eq!(listed.iter().map(|a| a.id).collect::<Vec<_>>(), [actions[3], actions[2]]);
        let (listed, total) =
            catalog.actions(team, Some((ResourceType::Droplet, &ids[1].to_string())), Page::ALL).expect("by resource");
        assert_eq!((total, listed[0].id), (1, actions[1]));
        for id in actions {
            catalog.finish_action(id, Ok(())).expect("finishing");
        }

        // Images: oldest first, filtered by kind and resource.
        let images: Vec<ImageId> =
            (0..3).map(|n| available_snapshot(catalog, team, ids[0], &format!("snap-{n}")).0).collect();
        let (listed, total) =
            catalog.images(team, &ImageFilter::default(), Page { offset: 1, limit: 5 }).expect("listing images");
        assert_eq!((listed.iter().map(|i| i.id).collect::<Vec<_>>(), total), (images[1..].to_vec(), 3));
        let backups = ImageFilter { kind: Some(ImageType::Backup), ..ImageFilter::default() };
        assert_eq!(catalog.images(team, &backups, Page::ALL).expect("listing backups").1, 0);
        let of_other = ImageFilter { resource_id: Some(ids[1].to_string()), ..ImageFilter::default() };
        assert_eq!(catalog.images(team, &of_other, Page::ALL).expect("listing by resource").1, 0);

        // Volumes: in the order they were registered.
        let volumes: Vec<String> = ["c", "a", "b"]
            .iter()
            .map(|name| catalog.insert_volume(team, &new_volume(name, "local-1")).expect("a volume").id)
            .collect();
        let (listed, total) = catalog.volumes(team, None, None, Page { offset: 0, limit: 2 }).expect("listing");
        assert_eq!((listed.iter().map(|v| v.id.clone()).collect::<Vec<_>>(), total), (volumes[..2].to_vec(), 3));
        let (listed, total) = catalog.volumes(team, Some("b"), None, Page::ALL).expect("listing by name");
        assert_eq!((listed[0].id.clone(), total), (volumes[2].clone(), 1));
    }

    pub fn one_action_at_a_time_per_resource(catalog: &Catalog) {
        let team = catalog.ensure_team("t").expect("a team").id;
        let id = droplet(catalog, team, "web-1");
        let other = droplet(catalog, team, "web-2");
        let images_before = catalog.all_images().expect("all images").len();
        let (first, image) = catalog
            .start_action(team, &action_on("snapshot", ResourceType::Droplet, id), Some(&snapshot_of(id, "s")))
            .expect("starting a snapshot");
        assert_eq!((first.status, first.completed_at.clone()), (ActionStatus::InProgress, None));
        assert!(image.is_some());
        assert!(catalog.droplet(team, id).expect("the droplet").locked);

        for kind in ["snapshot", "power_off", "rename"] {
            let refused =
                catalog.start_action(team, &action_on(kind, ResourceType::Droplet, id), Some(&snapshot_of(id, "t")));
            match refused {
                Err(StartError::Locked { resource_type, resource_id, action_id, kind: running }) => {
                    assert_eq!(resource_type, ResourceType::Droplet);
                    assert_eq!((resource_id, action_id, running.as_str()), (id.to_string(), first.id, "snapshot"));
                }
                other => panic!("a second {kind} on a locked droplet: {other:?}"),
            }
        }
        assert_eq!(catalog.all_images().expect("all images").len(), images_before + 1, "a refused start made an image");
        assert_conflict(catalog.delete_droplet(team, id), "deleting a locked droplet");

        // The lock is per resource: another droplet, or a volume with the same id text, is free.
        let (beside, _) = catalog
            .start_action(team, &action_on("power_off", ResourceType::Droplet, other), None)
            .expect("another droplet");
        let (volume_action, _) =
            catalog.start_action(team, &action_on("snapshot", ResourceType::Volume, id), None).expect("another kind");

        let finished = catalog.finish_action(first.id, Ok(())).expect("finishing");
        assert_eq!((finished.status, finished.error.clone()), (ActionStatus::Completed, None));
        assert!(finished.completed_at.is_some());
        assert!(!catalog.droplet(team, id).expect("the droplet").locked);
        let (again, _) =
            catalog.start_action(team, &action_on("rename", ResourceType::Droplet, id), None).expect("starting again");
        for action in [again.id, beside.id, volume_action.id] {
            catalog.finish_action(action, Ok(())).expect("finishing");
        }
        catalog.delete_droplet(team, id).expect("deleting an unlocked droplet");
        assert_not_found(catalog.droplet(team, id), "a deleted droplet");
    }

    pub fn an_action_ends_once(catalog: &Catalog) {
        let team = catalog.ensure_team("t").expect("a team").id;
        let id = droplet(catalog, team, "web-1");
        let (action, _) =
            catalog.start_action(team, &action_on("power_off", ResourceType::Droplet, id), None).expect("starting");
        let errored = catalog.finish_action(action.id, Err("power command failed".into())).expect("ending errored");
        assert_eq!((errored.status, errored.error.as_deref()), (ActionStatus::Errored, Some("power command failed")));
        assert!(errored.completed_at.is_some());
        assert_conflict(catalog.finish_action(action.id, Ok(())), "completing an errored action");
        assert_conflict(catalog.finish_action(action.id, Err("again".into())), "ending an action twice");
        assert_eq!(catalog.action(team, action.id).expect("the action"), errored);
        assert!(catalog.finish_action(action.id + 1000, Ok(())).is_err(), "ending an action that does not exist");
    }

    pub fn progress_is_recorded_while_the_action_runs(catalog: &Catalog) {
        let team = catalog.ensure_team("t").expect("a team").id;
        let id = droplet(catalog, team, "web-1");
        let (action, _) =
            catalog.start_action(team, &action_on("snapshot", ResourceType::Droplet, id), None).expect("starting");
        assert_eq!((action.bytes_done, action.bytes_total), (0, 0));
        catalog.set_action_progress(action.id, 10 << 20, 100 << 20).expect("recording progress");
        let seen = catalog.action(team, action.id).expect("the action");
        assert_eq!((seen.bytes_done, seen.bytes_total), (10 << 20, 100 << 20));
        let done = catalog.finish_action(action.id, Ok(())).expect("finishing");
        assert_eq!((done.bytes_done, done.bytes_total), (100 << 20, 100 << 20), "a completed action did all its bytes");
        catalog.set_action_progress(action.id, 1, 2).expect("late progress is ignored, not an error");
        assert_eq!(catalog.action(team, action.id).expect("the action").bytes_done, 100 << 20);
    }

    pub fn pending_images_are_unlisted_until_finished(catalog: &Catalog) {
        let team = catalog.ensure_team("t").expect("a team").id;
        let id = droplet(catalog, team, "web-1");
        let (action, image) = catalog
            .start_action(team, &action_on("snapshot", ResourceType::Droplet, id), Some(&snapshot_of(id, "pending")))
            .expect("starting a snapshot");
        let image = image.expect("the pending image");
        assert_eq!(image.status, ImageStatus::Pending);
        assert_eq!((image.name.as_str(), image.kind, image.copies.len()), ("pending", ImageType::Snapshot, 0));
        assert_eq!(action.params["image_id"], image.id, "the action names its image");

        assert_eq!(catalog.images(team, &ImageFilter::default(), Page::ALL).expect("listing").1, 0);
        assert!(catalog.droplet(team, id).expect("the droplet").snapshot_ids.is_empty());
        assert_not_found(catalog.image_by_uuid(team, &image.uuid), "a pending image by uuid");
        assert_eq!(catalog.image(team, image.id).expect("workers find it").status, ImageStatus::Pending);
        assert!(catalog.all_images().expect("all images").iter().any(|i| i.id == image.id));

        let kept = copy("local-1", 'b');
        catalog.finish_image(image.id, &kept, 3 << 30, 5 << 20).expect("finishing the image");
        catalog.finish_action(action.id, Ok(())).expect("finishing the action");
        let (listed, total) = catalog.images(team, &ImageFilter::default(), Page::ALL).expect("listing");
        assert_eq!(total, 1);
        let listed = &listed[0];
        assert_eq!((listed.id, listed.status, listed.copies.clone()), (image.id, ImageStatus::Available, vec![kept]));
        assert_eq!((listed.size_bytes, listed.stored_bytes), (3 << 30, 5 << 20));
        assert_eq!(listed.regions(), ["local-1"]);
        assert_eq!(catalog.droplet(team, id).expect("the droplet").snapshot_ids, [image.id]);
        assert_eq!(catalog.image_by_uuid(team, &image.uuid).expect("by uuid").id, image.id);
    }

    pub fn discarded_pending_images_are_gone(catalog: &Catalog) {
        let team = catalog.ensure_team("t").expect("a team").id;
        let id = droplet(catalog, team, "web-1");
        let (action, image) = catalog
            .start_action(team, &action_on("snapshot", ResourceType::Droplet, id), Some(&snapshot_of(id, "doomed")))
            .expect("starting a snapshot");
        let image = image.expect("the pending image");
        catalog.discard_pending_image(image.id).expect("discarding");
        catalog.finish_action(action.id, Err("disk unreadable".into())).expect("ending errored");
        assert_not_found(catalog.image(team, image.id), "a discarded image");
        assert!(!catalog.all_images().expect("all images").iter().any(|i| i.id == image.id));

        // Only pending images are discarded: an available one stays.
        let (kept, _) = available_snapshot(catalog, team, id, "kept");
        catalog.discard_pending_image(kept).expect("discarding an available image is a no-op");
        assert_eq!(catalog.image(team, kept).expect("still there").status, ImageStatus::Available);
    }

    pub fn image_copies_make_its_regions(catalog: &Catalog) {
        let team = catalog.ensure_team("t").expect("a team").id;
        let id = droplet(catalog, team, "web-1");
        let (image, _) = available_snapshot(catalog, team, id, "travelling");
        catalog.add_image_copy(image, &copy("nyc-1", 'c')).expect("a second copy");
        let seen = catalog.image(team, image).expect("the image");
        assert_eq!(seen.regions(), ["local-1", "nyc-1"]);
        assert_eq!(seen.copies, [copy("local-1", 'a'), copy("nyc-1", 'c')]);

        // One copy per region: a new one replaces it.
        catalog.add_image_copy(image, &copy("local-1", 'd')).expect("replacing a copy");
        assert_eq!(catalog.image(team, image).expect("the image").copies, [copy("local-1", 'd'), copy("nyc-1", 'c')]);

        catalog.remove_image_copy(image, "local-1").expect("removing a copy");
        assert_eq!(catalog.image(team, image).expect("the image").copies, [copy("nyc-1", 'c')]);
        catalog.remove_image_copy(image, "nowhere").expect("removing a copy that is not there");
        catalog.remove_image_copy(image, "nyc-1").expect("removing the last copy");
        assert_not_found(catalog.image(team, image), "an image left without copies");
    }

    pub fn recovered_images_come_back_under_their_ids(catalog: &Catalog) {
        let team = catalog.ensure_team("t").expect("a team");
        let recovered = |team_uuid: &str, image_id: ImageId| RecoveredImage {
            team_uuid: team_uuid.to_string(),
            image_id,
            image_uuid: format!("00000000-0000-4000-8000-{image_id:012}"),
            name: format!("recovered-{image_id}"),
            kind: ImageType::Backup,
            resource_type: ResourceType::Droplet,
            resource_id: "17".into(),
            size_bytes: 1 << 30,
            stored_bytes: 1 << 20,
            created_at: "2026-01-02T03:04:05Z".into(),
        };
        catalog.recover_image(&recovered(&team.uuid, 42), &copy("local-1", 'e')).expect("recovering");
        let image = catalog.image(team.id, 42).expect("the image under its old id");
        assert_eq!(
            (image.status, image.kind, image.name.as_str()),
            (ImageStatus::Available, ImageType::Backup, "recovered-42")
        );
        assert_eq!((image.resource_id.as_str(), image.created_at.as_str()), ("17", "2026-01-02T03:04:05Z"));
        assert_eq!(image.copies, [copy("local-1", 'e')]);

        // Found again in another region: one image, two copies.
        catalog.recover_image(&recovered(&team.uuid, 42), &copy("nyc-1", 'f')).expect("recovering a second copy");
        let image = catalog.image(team.id, 42).expect("the image");
        assert_eq!(image.copies, [copy("local-1", 'e'), copy("nyc-1", 'f')]);
        assert_eq!(catalog.images(team.id, &ImageFilter::default(), Page::ALL).expect("listing").1, 1);

        // A team that is gone comes back, named after its uuid.
        let lost = "6f1c0000-0000-4000-8000-00000000dead";
        catalog.recover_image(&recovered(lost, 43), &copy("local-1", '1')).expect("recovering a lost team's image");
        let revived = catalog.ensure_team(lost).expect("the team named after its uuid");
        assert_eq!(revived.uuid, lost);
        assert_eq!(catalog.image(revived.id, 43).expect("its image").name, "recovered-43");
        assert_not_found(catalog.image(team.id, 43), "another team's recovered image");

        // New images never reuse a recovered id.
        let id = droplet(catalog, team.id, "web-1");
        let (fresh, _) = available_snapshot(catalog, team.id, id, "fresh");
        assert!(fresh > 43, "image id {fresh} collides with recovered ones");
    }

    pub fn resources_in_use_are_not_deleted(catalog: &Catalog) {
        let team = catalog.ensure_team("t").expect("a team").id;
        let id = droplet(catalog, team, "web-1");
        let (image, _) = available_snapshot(catalog, team, id, "moving");
        let (transfer, _) =
            catalog.start_action(team, &action_on("transfer", ResourceType::Image, image), None).expect("a transfer");
        assert_conflict(catalog.delete_image(team, image), "deleting an image being transferred");
        catalog.finish_action(transfer.id, Ok(())).expect("finishing");
        let deleted = catalog.delete_image(team, image).expect("deleting");
        assert_eq!(
            (deleted.id, deleted.copies.clone()),
            (image, vec![copy("local-1", 'a')]),
            "the caller gets the copies"
        );
        assert_not_found(catalog.image(team, image), "a deleted image");
        assert!(catalog.droplet(team, id).expect("the droplet stays").snapshot_ids.is_empty());

        // An image being read by a restore (or a new droplet made from it) is in use too.
        let (source, _) = available_snapshot(catalog, team, id, "source");
        let mut restore = action_on("restore", ResourceType::Droplet, id);
        restore.params = json!({"image_id": source});
        let (restore, _) = catalog.start_action(team, &restore, None).expect("a restore");
        assert_conflict(catalog.delete_image(team, source), "deleting an image being restored");
        catalog.finish_action(restore.id, Ok(())).expect("finishing");
        catalog.delete_image(team, source).expect("deleting once the restore ended");

        let volume = catalog.insert_volume(team, &new_volume("data", "local-1")).expect("a volume");
        let (snapshot, _) = catalog
            .start_action(team, &action_on("snapshot", ResourceType::Volume, &volume.id), None)
            .expect("starting");
        assert!(catalog.volume(team, &volume.id).expect("the volume").locked);
        assert_conflict(catalog.delete_volume(team, &volume.id), "deleting a locked volume");
        catalog.finish_action(snapshot.id, Ok(())).expect("finishing");
        assert!(!catalog.volume(team, &volume.id).expect("the volume").locked);
        catalog.delete_volume(team, &volume.id).expect("deleting");
        assert_not_found(catalog.volume(team, &volume.id), "a deleted volume");
    }

    pub fn running_actions_of_every_team(catalog: &Catalog) {
        let (a, b) = two_teams(catalog);
        let (da, db) = (droplet(catalog, a, "a-1"), droplet(catalog, b, "b-1"));
        let (first, _) = catalog.start_action(a, &action_on("snapshot", ResourceType::Droplet, da), None).expect("a");
        let (done, _) = catalog.start_action(b, &action_on("power_off", ResourceType::Droplet, db), None).expect("b");
        catalog.finish_action(done.id, Ok(())).expect("finishing");
        let (second, _) = catalog.start_action(b, &action_on("snapshot", ResourceType::Droplet, db), None).expect("b");
        let running = catalog.running_actions().expect("running actions");
        let seen: Vec<_> = running.iter().map(|r| (r.id, r.team_id, r.status)).collect();
        assert_eq!(seen, [(first.id, a, ActionStatus::InProgress), (second.id, b, ActionStatus::InProgress)]);
        assert_eq!(catalog.action_for_worker(second.id).expect("a worker reads any team's action").team_id, b);
        for id in [first.id, second.id] {
            catalog.finish_action(id, Err("interrupted".into())).expect("ending");
        }
        assert!(catalog.running_actions().expect("running actions").is_empty());
    }

    pub fn images_are_renamed_described_and_converted(catalog: &Catalog) {
        let team = catalog.ensure_team("t").expect("a team").id;
        let id = droplet(catalog, team, "web-1");
        let (image, _) = available_snapshot(catalog, team, id, "old name");
        let updated = catalog.update_image(team, image, Some("new name"), None).expect("renaming");
        assert_eq!((updated.name.as_str(), updated.description.as_str()), ("new name", ""));
        let updated = catalog.update_image(team, image, None, Some("before the upgrade")).expect("describing");
        assert_eq!((updated.name.as_str(), updated.description.as_str()), ("new name", "before the upgrade"));

        let backup = NewImage { kind: ImageType::Backup, ..snapshot_of(id, "weekly") };
        let (action, pending) = catalog
            .start_action(team, &action_on("backup", ResourceType::Droplet, id), Some(&backup))
            .expect("a backup");
        let pending = pending.expect("the pending backup");
        catalog.finish_image(pending.id, &copy("local-1", '2'), 1, 1).expect("finishing");
        catalog.finish_action(action.id, Ok(())).expect("finishing");
        assert_eq!(catalog.droplet(team, id).expect("the droplet").backup_ids, [pending.id]);
        catalog.convert_image(team, pending.id).expect("converting");
        assert_eq!(catalog.image(team, pending.id).expect("the image").kind, ImageType::Snapshot);
        let droplet = catalog.droplet(team, id).expect("the droplet");
        assert!(droplet.backup_ids.is_empty());
        assert_eq!(droplet.snapshot_ids, [image, pending.id]);
    }

    pub fn droplet_settings_are_stored(catalog: &Catalog) {
        let team = catalog.ensure_team("t").expect("a team").id;
        let new = new_droplet("web-1", &["prod", "web"]);
        let registered = catalog.insert_droplet(team, &new).expect("registering");
        assert_eq!(
            (registered.tags.clone(), registered.disk.clone(), registered.power.clone()),
            (new.tags, new.disk, new.power)
        );
        assert!(!registered.locked && registered.snapshot_ids.is_empty() && registered.volume_ids.is_empty());
        let id = registered.id;

        catalog.rename_droplet(team, id, "web-2").expect("renaming");
        catalog.set_droplet_status(team, id, DropletStatus::Off).expect("switching off");
        catalog.set_droplet_disk_bytes(team, id, 5 << 30).expect("resizing");
        let policy = json!({"plan": "weekly", "weekday": "SUN", "hour": 20});
        catalog.set_droplet_backups(team, id, true, Some(&policy), 1_700_000_000).expect("enabling backups");
        let seen = catalog.droplet(team, id).expect("the droplet");
        assert_eq!((seen.name.as_str(), seen.status, seen.disk.size_bytes), ("web-2", DropletStatus::Off, 5 << 30));
        assert_eq!((seen.backups_enabled, seen.backup_policy.clone()), (true, Some(policy.clone())));
        catalog.set_droplet_backups(team, id, false, None, 1_700_000_100).expect("disabling backups");
        let seen = catalog.droplet(team, id).expect("the droplet");
        assert_eq!((seen.backups_enabled, seen.backup_policy), (false, Some(policy)), "the policy is kept");
        assert_not_found(catalog.rename_droplet(team, id + 1000, "x"), "renaming a droplet that does not exist");
    }

    pub fn volume_names_are_unique_per_team_and_region(catalog: &Catalog) {
        let team = catalog.ensure_team("t").expect("a team").id;
        let first = catalog.insert_volume(team, &new_volume("data", "local-1")).expect("a volume");
        assert_conflict(catalog.insert_volume(team, &new_volume("data", "local-1")), "the same name twice");
        let elsewhere = catalog.insert_volume(team, &new_volume("data", "nyc-1")).expect("the name in another region");
        assert_ne!(first.id, elsewhere.id);
        let seen = catalog.volume(team, &first.id).expect("the volume");
        assert_eq!(
            (seen.name.as_str(), seen.region.as_str(), seen.filesystem_type.as_str()),
            ("data", "local-1", "ext4")
        );
        assert!(!seen.locked && seen.droplet_id.is_none());
    }

    pub fn images_are_listed_by_tag(catalog: &Catalog) {
        let team = catalog.ensure_team("t").expect("a team").id;
        let volume = catalog.insert_volume(team, &new_volume("data", "local-1")).expect("a volume");
        for (name, tags) in [("a", vec!["keep", "db"]), ("b", vec!["db"]), ("c", vec![])] {
            let image = NewImage {
                name: name.into(),
                kind: ImageType::Snapshot,
                resource_type: ResourceType::Volume,
                resource_id: volume.id.clone(),
                size_bytes: 1 << 30,
                tags: tags.into_iter().map(String::from).collect(),
                created_at: None,
            };
            let (action, image) = catalog
                .start_action(team, &action_on("snapshot", ResourceType::Volume, &volume.id), Some(&image))
                .expect("starting a snapshot");
            catalog.finish_image(image.expect("pending").id, &copy("local-1", 'b'), 1 << 30, 1).expect("finishing");
            catalog.finish_action(action.id, Ok(())).expect("finishing");
        }
        let names = |tag: &str| {
            let filter = ImageFilter { tag: Some(tag.into()), ..ImageFilter::default() };
            let (images, total) = catalog.images(team, &filter, Page::ALL).expect("listing");
            assert_eq!(total as usize, images.len());
            images.into_iter().map(|i| i.name).collect::<Vec<_>>()
        };
        assert_eq!(names("db"), ["a", "b"]);
        assert_eq!(names("keep"), ["a"]);
        assert!(names("nothing").is_empty());
    }
}

// ---- SQLite itself ----

#[test]
fn migrations_are_idempotent() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("catalog.sqlite");
    let secret = {
        let catalog = Catalog::open(&path).expect("creating the catalog");
        let team = catalog.ensure_team("ops").expect("a team");
        catalog.create_token(team.id, "ci", &["*".to_string()]).expect("a token").secret
    };
    for _ in 0..2 {
        let catalog = Catalog::open(&path).expect("reopening the catalog");
        let (team, _) = catalog.authenticate(&secret).expect("authenticating").expect("the token survived");
        assert_eq!(team.name, "ops");
    }
    // Two open at once (the daemon and `drydock token create`) are fine too.
    let (one, two) = (Catalog::open(&path).expect("opening"), Catalog::open(&path).expect("opening again"));
    let team = one.ensure_team("dev").expect("a team through one");
    assert_eq!(two.ensure_team("dev").expect("the same team through the other").id, team.id);
}

#[test]
fn token_secrets_are_not_stored_in_plain_text() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let catalog = Catalog::open(&dir.path().join("catalog.sqlite")).expect("creating the catalog");
    let team = catalog.ensure_team("ops").expect("a team");
    let secrets: Vec<String> = (0..3)
        .map(|n| catalog.create_token(team.id, &format!("token-name-{n}"), &["*".to_string()]).expect("a token").secret)
        .collect();
    // The catalog's files (the database and its WAL), while it is open and after it is closed.
    assert_no_secret_in(dir.path(), &secrets);
    drop(catalog);
    assert_no_secret_in(dir.path(), &secrets);
}

fn assert_no_secret_in(dir: &std::path::Path, secrets: &[String]) {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).expect("listing the directory") {
        all.extend(std::fs::read(entry.expect("an entry").path()).expect("reading a catalog file"));
    }
    assert!(contains(&all, b"token-name-2"), "the check does not read the catalog's files");
    for secret in secrets {
        let hex_part = &secret["dop_v1_".len()..];
        assert!(!contains(&all, secret.as_bytes()) && !contains(&all, hex_part.as_bytes()), "a secret is stored");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
