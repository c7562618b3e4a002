//! Scheduled backups on SQLite itself: upgrading a catalog made before them, two daemons on
//! one file, and how long the scheduler's read of every target takes.

use std::path::Path;
use std::time::Instant;

use drydock_catalog::Catalog;
use rusqlite::{Connection, params};
use serde_json::json;

mod support;

/// 2026-01-01T00:00:00Z on the scheduler's clock.
const T0: i64 = 1_767_225_600;
const DAY: i64 = 86_400;

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A catalog as drydock left it at schema version 2, with a droplet whose backups are on, one
/// whose backups are off, a volume and a backup.
fn catalog_at_version_2(path: &Path) {
    let conn = Connection::open(path).expect("creating the old catalog");
    conn.execute_batch(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
         INSERT INTO schema_migrations VALUES (1, '2026-01-01T00:00:00Z'), (2, '2026-02-01T00:00:00Z');",
    )
    .expect("recording the old versions");
    conn.execute_batch(include_str!("../src/migrations/sqlite/0001_initial.sql")).expect("schema version 1");
    conn.execute_batch(include_str!("../src/migrations/sqlite/0002_images_listing.sql")).expect("schema version 2");
    conn.execute_batch(
        r#"INSERT INTO teams (id, uuid, name, created_at)
             VALUES (1, 'b0c5e7a2-0000-4000-8000-000000000001', 'ops', '2026-01-01T00:00:00Z');
         INSERT INTO droplets (id, team_id, name, region, disk_path, disk_format, disk_bytes, power, status, size_slug,
                memory_mb, vcpus, backups_enabled, backup_policy, created_at)
             VALUES (1, 1, 'web-1', 'local-1', '/srv/web-1.img', 'raw', 1073741824, '{"driver":"none"}', 'active',
                'registered', 0, 0, 1, '{"plan":"weekly","weekday":"SUN","hour":20}', '2026-01-01T00:00:00Z'),
                    (2, 1, 'web-2', 'local-1', '/srv/web-2.img', 'raw', 1073741824, '{"driver":"none"}', 'active',
                'registered', 0, 0, 0, NULL, '2026-01-01T00:00:00Z');
         INSERT INTO volumes (id, seq, team_id, name, region, disk_path, disk_format, disk_bytes, created_at)
             VALUES ('6d3b0000-0000-4000-8000-000000000001', 1, 1, 'data', 'local-1', '/srv/data.img', 'raw',
                1073741824,
                '2026-01-01T00:00:00Z');
         INSERT INTO images (id, uuid, team_id, name, type, resource_type, resource_id, status, created_at)
             VALUES (7, '1e9a0000-0000-4000-8000-000000000007', 1, 'web-1 weekly', 'backup', 'droplet', '1',
                'available',
                '2026-01-04T20:00:00Z');
         INSERT INTO image_copies VALUES (7, 'local-1', 'a' || hex(zeroblob(31)) || 'a');"#,
    )
    .expect("rows of the old catalog");
}

#[test]
fn a_catalog_at_version_2_is_upgraded() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("catalog.sqlite");
    catalog_at_version_2(&path);
    let before = unix_now();
    let catalog = Catalog::open(&path).expect("upgrading the catalog");
    let after = unix_now();

    let on = catalog.droplet(1, 1).expect("the droplet with backups");
    assert_eq!(
        (on.backups_enabled, on.backup_policy),
        (true, Some(json!({"plan": "weekly", "weekday": "SUN", "hour": 20})))
    );
    // Backups already on are owed from the upgrade, not from before drydock scheduled them.
    let since = on.backups_since.expect("a start for backups that were on");
    assert!((before..=after).contains(&since), "{since} not in {before}..={after}");
    assert_eq!(on.backup_ids, [7]);
    let off = catalog.droplet(1, 2).expect("the droplet without backups");
    assert_eq!((off.backups_enabled, off.backups_since), (false, None));
    let volume = catalog.volume(1, "6d3b0000-0000-4000-8000-000000000001").expect("the volume");
    assert_eq!((volume.backups_enabled, volume.backup_policy, volume.backups_since), (false, None, None));
    assert!(volume.backup_ids.is_empty());
    let image = catalog.image(1, 7).expect("the backup");
    assert_eq!((image.expires_at, image.copies.len()), (None, 1));

    let targets = catalog.backup_targets().expect("targets");
    assert_eq!(targets.len(), 1);
    assert_eq!(
        (targets[0].resource_id.as_str(), targets[0].backups_since, targets[0].last_run.clone()),
        ("1", Some(since), None)
    );
    assert!(catalog.backup_stats(None).expect("stats").is_empty());
    assert_eq!(catalog.retention_subjects().expect("subjects").len(), 1);
    drop(catalog);

    let reopened = Catalog::open(&path).expect("reopening");
    assert_eq!(reopened.droplet(1, 1).expect("the droplet").backups_since, Some(since), "migrated once");
    let version: i64 = Connection::open(&path)
        .expect("opening")
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| r.get(0))
        .expect("the version");
    assert_eq!(version, 4);
}

/// Two daemons sharing one catalog file, each with its own connections.
#[test]
fn two_daemons_on_one_file_take_a_window_once() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("catalog.sqlite");
    let daemons = [Catalog::open(&path).expect("daemon a"), Catalog::open(&path).expect("daemon b")];
    support::daemons_take_a_window_and_its_retry_once(&daemons, 8);
}

/// The scheduler reads every target each tick. Run with
/// `cargo test -p drydock-catalog --release --test sqlite_backups -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: prints how long reading 10 000 targets takes"]
fn backup_targets_of_10_000_droplets() {
    const DROPLETS: i64 = 10_000;
    const RUNS_EACH: i64 = 30;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("catalog.sqlite");
    let team = {
        let catalog = Catalog::open(&path).expect("creating the catalog");
        catalog.ensure_team("ops").expect("a team").id
    };
    // Written in one transaction: through the API each row would be its own durable commit.
    let setup = Instant::now();
    let mut conn = Connection::open(&path).expect("opening for the setup");
    let tx = conn.transaction().expect("a transaction");
    {
        let mut droplet = tx
            .prepare(
                "INSERT INTO droplets (id, team_id, name, region, disk_path, disk_format, disk_bytes, power, status,
                    size_slug, memory_mb, vcpus, backups_enabled, backup_policy, backups_since, created_at)
                 VALUES (?1, ?2, 'web-' || ?1, 'local-1', '/srv/web.img', 'raw', 1073741824, '{\"driver\":\"none\"}',
                    'active', 'registered', 0, 0, 1, '{\"plan\":\"daily\",\"hour\":4}', ?3, '2026-01-01T00:00:00Z')",
            )
            .expect("preparing");
        let mut action = tx
            .prepare(
                "INSERT INTO actions (team_id, type, status, resource_type, resource_id, region, started_at,
                    completed_at)
                 VALUES (?1, 'backup', 'completed', 'droplet', ?2, 'local-1', '2026-01-31T04:00:00Z',
                    '2026-01-31T04:01:00Z')",
            )
            .expect("preparing");
        let mut run = tx
            .prepare(
                "INSERT INTO backup_runs (team_id, resource_type, resource_id, window_start, window_end, status,
                    attempts,
                    action_id, claimed_by, claimed_at, taken_at, finished_at)
                 VALUES (?1, 'droplet', ?2, ?3, ?3 + 14400, ?4, 1, ?5, 'bench', ?3, ?3, ?3 + 60)",
            )
            .expect("preparing");
        for id in 1..=DROPLETS {
            droplet.execute(params![id, team, T0]).expect("a droplet");
            for n in 0..RUNS_EACH {
                let latest = n == RUNS_EACH - 1;
                let action_id = if latest {
                    action.execute(params![team, id.to_string()]).expect("an action");
                    Some(tx.last_insert_rowid())
                } else {
                    None
                };
                let status = if latest { "running" } else { "succeeded" };
                run.execute(params![team, id.to_string(), T0 + n * DAY, status, action_id]).expect("a run");
            }
        }
    }
    tx.commit().expect("committing the setup");
    drop(conn);
    let setup = setup.elapsed();

    let catalog = Catalog::open(&path).expect("opening the catalog");
    let mut timings = Vec::new();
    for _ in 0..11 {
        let started = Instant::now();
        let targets = catalog.backup_targets().expect("reading the targets");
        timings.push(started.elapsed());
        assert_eq!(targets.len(), DROPLETS as usize);
        let last = targets[0].last_run.as_ref().expect("a latest run");
        assert_eq!((last.window_start, last.action_status.is_some()), (T0 + (RUNS_EACH - 1) * DAY, true));
    }
    timings.sort();
    println!(
        "backup_targets: {DROPLETS} droplets with {RUNS_EACH} runs each read in {:?} \
         (median of 11; min {:?}, max {:?}); setup {setup:?}",
        timings[5], timings[0], timings[10]
    );
}
