//! The scheduler against a real catalog and a real repository, on a manual clock: backups are
//! taken once per window, tagged when taken, pruned by retention, restorable bit for bit after
//! gc; a window missed while the daemon was down is recorded and the open one runs once; a
//! restart in the middle of a backup neither skips nor doubles it; two daemons sharing a
//! catalog take each window once; a deleted droplet's backups are kept four weeks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drydock_catalog::{
    Catalog, Disk, DiskFormat, DropletStatus, ImageFilter, ImageType, NewDroplet, Page, ResourceType, RunStatus, TeamId,
};
use drydock_engine::id::SnapshotId;
use drydock_engine::{CancelToken, NoProgress};
use drydock_jobs::{
    BackupEvent, BackupEventKind, Clock, DiskPolicy, EventSink, JobSettings, Jobs, RegionLocation, RegionSpec, Regions,
    Scheduler, SchedulerSettings, TickReport,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const DISK_BYTES: usize = 4 << 20;

#[derive(Default)]
struct Recorder(Mutex<Vec<BackupEvent>>);

impl EventSink for Recorder {
    fn send(&self, event: BackupEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    fn kinds(&self) -> Vec<BackupEventKind> {
        self.0.lock().unwrap().iter().map(|e| e.kind).collect()
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    catalog: Arc<Catalog>,
    regions: Arc<Regions>,
    clock: Clock,
    team: TeamId,
}

impl Fixture {
    fn new(start: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::open(&dir.path().join("catalog.sqlite")).unwrap());
        // local-2 is where policies with replication copy their backups.
        let regions = Arc::new(Regions::new(
            ["local-1", "local-2"]
                .map(|slug| RegionSpec {
                    slug: slug.into(),
                    name: slug.into(),
                    location: RegionLocation::Local(dir.path().join(slug)),
                    passphrase: b"test passphrase".to_vec(),
                })
                .to_vec(),
        ));
        let team = catalog.ensure_team("default").unwrap().id;
        let clock = Clock::manual(start.parse().unwrap());
        Fixture { dir, catalog, regions, clock, team }
    }

    /// A daemon: its own worker pool and scheduler on the shared catalog and repository.
    fn daemon(&self, node: &str, events: Arc<Recorder>) -> (Arc<Jobs>, Arc<Scheduler>) {
        let settings = JobSettings {
            workers: 2,
            disks: DiskPolicy { allowed_roots: vec![self.dir.path().to_path_buf()] },
            scratch_dir: self.dir.path().join("scratch"),
        };
        let jobs = Jobs::new(self.catalog.clone(), self.regions.clone(), settings);
        let scheduler = Scheduler::new(
            jobs.clone(),
            self.clock.clone(),
            events,
            SchedulerSettings {
                tick: Duration::from_secs(3600),
                max_concurrent_backups: 4,
                node: node.into(),
                gc_interval: SignedDuration::from_hours(10_000),
                prune_interval: SignedDuration::from_hours(10_000),
            },
        );
        (jobs, scheduler)
    }

    fn disk(&self, name: &str, stamp: u64) -> PathBuf {
        let path = self.dir.path().join(name);
        write_disk(&path, stamp);
        path
    }

    fn droplet(&self, name: &str, disk: &Path, policy: Value) -> i64 {
        let new = NewDroplet {
            name: name.into(),
            region: "local-1".into(),
            disk: Disk { path: disk.display().to_string(), format: DiskFormat::Raw, size_bytes: DISK_BYTES as u64 },
            power: json!({"driver": "none"}),
            status: DropletStatus::Active,
            size_slug: "registered".into(),
            memory_mb: 0,
            vcpus: 0,
            tags: Vec::new(),
            backups_enabled: true,
            backup_policy: Some(drydock_schedule::Policy::from_json(&policy).unwrap().to_json()),
            backups_since: Some(self.clock.unix()),
            image_id: None,
        };
        self.catalog.insert_droplet(self.team, &new).unwrap().id
    }

    fn at(&self, time: &str) {
        self.clock.set(time.parse().unwrap());
    }

    fn backups(&self, droplet: i64) -> Vec<drydock_catalog::Image> {
        self.catalog.backup_images(self.team, ResourceType::Droplet, &droplet.to_string()).unwrap()
    }

    /// The bytes a backup restores to.
    fn restore(&self, image: &drydock_catalog::Image) -> Vec<u8> {
        self.restore_from(image, "local-1")
    }

    /// The bytes a backup's copy in `region` restores to.
    fn restore_from(&self, image: &drydock_catalog::Image, region: &str) -> Vec<u8> {
        let repo = self.regions.repository(region).unwrap();
        let copy = image.copies.iter().find(|c| c.region == region).unwrap_or_else(|| panic!("no copy in {region}"));
        let id = SnapshotId::from_hex(&copy.snapshot_id).unwrap();
        let manifest = repo.load_snapshot(&id).unwrap();
        let path = self.dir.path().join(format!("restored-{}", image.id));
        let target = drydock_sources::open_target(&path, manifest.meta.size_bytes, false).unwrap();
        drydock_engine::restore::restore(&repo, &id, &manifest, target, &NoProgress, &CancelToken::new()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        bytes
    }
}

/// A disk whose content says which `stamp` it is, in a few places, over a shared background:
/// successive stamps share most chunks.
fn disk_bytes(stamp: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; DISK_BYTES];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for (i, byte) in bytes[..DISK_BYTES / 2].iter_mut().enumerate() {
        if i % 8 == 0 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
        }
        *byte = (state >> ((i % 8) * 8)) as u8;
    }
    for region in 0..4 {
        let at = DISK_BYTES / 2 + region * (DISK_BYTES / 8);
        for (i, byte) in bytes[at..at + (64 << 10)].iter_mut().enumerate() {
            *byte = (stamp as usize * 31 + i * 7 + region) as u8;
        }
    }
    bytes
}

fn write_disk(path: &Path, stamp: u64) {
    std::fs::write(path, disk_bytes(stamp)).unwrap();
}

/// Runs ticks until nothing is running and the last tick did nothing new.
async fn settle(jobs: &Arc<Jobs>, scheduler: &Arc<Scheduler>) -> TickReport {
    let mut total = TickReport::default();
    for _ in 0..200 {
        let report = {
            let scheduler = scheduler.clone();
            tokio::task::spawn_blocking(move || scheduler.tick().unwrap()).await.unwrap()
        };
        total.started += report.started;
        total.completed += report.completed;
        total.failed_attempts += report.failed_attempts;
        total.given_up += report.given_up;
        total.missed += report.missed;
        while jobs.running_count() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if report.started == 0 && report.completed == 0 && report.failed_attempts == 0 && report.missed == 0 {
            return total;
        }
    }
    panic!("the scheduler did not settle");
}

fn tags(image: &drydock_catalog::Image) -> Vec<&str> {
    image.tags.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_backups_are_taken_once_tagged_pruned_and_restore_exactly_after_gc() {
    // 1 March 2026 is a Sunday: the first Monday starts a new ISO week.
    let f = Fixture::new("2026-03-01T00:00:00Z");
    let events = Arc::new(Recorder::default());
    let (jobs, scheduler) = f.daemon("node-a", events.clone());
    let disk = f.disk("web.img", 0);
    let droplet =
        f.droplet("web", &disk, json!({"plan": "hourly", "time_zone": "UTC", "keep_hourly": 3, "keep_daily": 2}));

    // 30 hours, each tick 40 minutes into the hour: past every due moment (the first half of
    // the window), and each hour's disk says which hour it is.
    let mut content_of_hour = HashMap::new();
    for hour in 0..30u64 {
        write_disk(&disk, hour);
        content_of_hour.insert(hour, disk_bytes(hour));
        let at: Timestamp = "2026-03-01T00:40:00Z".parse().unwrap();
        f.clock.set(at.saturating_add(SignedDuration::from_hours(hour as i64)).unwrap());
        let report = settle(&jobs, &scheduler).await;
        assert_eq!((report.started, report.completed), (1, 1), "hour {hour}: {report:?}");
        // Ticking again in the same window takes nothing more.
        assert_eq!(settle(&jobs, &scheduler).await, TickReport::default());
    }

    let kept = f.backups(droplet);
    let described: Vec<(String, Vec<&str>)> = kept.iter().map(|i| (i.created_at[..13].to_string(), tags(i))).collect();
    assert_eq!(
        described,
        [
            ("2026-03-01T00".to_string(), vec!["hourly", "daily", "weekly", "monthly", "yearly"]),
            ("2026-03-02T00".to_string(), vec!["hourly", "daily", "weekly"]),
            ("2026-03-02T03".to_string(), vec!["hourly"]),
            ("2026-03-02T04".to_string(), vec!["hourly"]),
            ("2026-03-02T05".to_string(), vec!["hourly"]),
        ]
    );
    assert_eq!(events.kinds().iter().filter(|k| **k == BackupEventKind::Succeeded).count(), 30);
    let runs = f.catalog.backup_runs(f.team, ResourceType::Droplet, &droplet.to_string(), 100).unwrap();
    assert_eq!(runs.len(), 30);
    assert!(runs.iter().all(|r| r.status == RunStatus::Succeeded && r.attempts == 1));

    // The pruned backups' data goes at gc; every kept backup still restores bit for bit.
    assert!(jobs.start_gc());
    while jobs.gc_status().running {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let gc = jobs.gc_status();
    assert!(gc.last_errors.is_empty() && gc.runs == 1, "{gc:?}");
    assert!(gc.last_bytes_freed > 0, "pruned backups held unique data: {gc:?}");
    for image in &kept {
        let hour = hours_since_start(&image.created_at);
        assert!(f.restore(image) == content_of_hour[&hour], "backup {} restores exactly", image.created_at);
    }
}

fn hours_since_start(created_at: &str) -> u64 {
    let t: Timestamp = created_at.parse().unwrap();
    (t.duration_since("2026-03-01T00:00:00Z".parse().unwrap()).as_secs() / 3600) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_are_replicated_to_the_policys_regions_and_pruned_there_too() {
    let f = Fixture::new("2026-03-01T00:00:00Z");
    let (jobs, scheduler) = f.daemon("node-a", Arc::new(Recorder::default()));
    let disk = f.disk("web.img", 0);
    let policy = json!({"plan": "hourly", "keep_hourly": 2, "replication_regions": ["local-2"]});
    let droplet = f.droplet("web", &disk, policy);
    for hour in 0..4u64 {
        write_disk(&disk, hour);
        let at: Timestamp = "2026-03-01T00:40:00Z".parse().unwrap();
        f.clock.set(at.saturating_add(SignedDuration::from_hours(hour as i64)).unwrap());
        settle(&jobs, &scheduler).await;
    }
    let kept = f.backups(droplet);
    assert_eq!(kept.len(), 2, "keep_hourly 2: {kept:?}");
    for (image, hour) in kept.iter().zip([2, 3]) {
        let mut regions: Vec<&str> = image.copies.iter().map(|c| c.region.as_str()).collect();
        regions.sort();
        assert_eq!(regions, ["local-1", "local-2"], "backup of hour {hour}");
        assert!(f.restore_from(image, "local-2") == disk_bytes(hour), "the copy of hour {hour} differs");
    }
    // The pruned backups were forgotten in both regions: each holds the two kept snapshots only.
    for region in ["local-1", "local-2"] {
        assert_eq!(f.regions.repository(region).unwrap().snapshot_ids().unwrap().len(), 2, "{region}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_windows_are_recorded_and_the_open_one_runs_once_after_a_restart() {
    let f = Fixture::new("2026-05-10T00:00:00Z");
    let events = Arc::new(Recorder::default());
    let disk = f.disk("db.img", 1);
    let droplet = f.droplet("db", &disk, json!({"plan": "daily", "hour": 0}));
    {
        let (jobs, scheduler) = f.daemon("node-a", events.clone());
        f.at("2026-05-10T02:30:00Z");
        assert_eq!(settle(&jobs, &scheduler).await.completed, 1);
    }
    // Down from the 10th to the 13th at 02:30: the windows of the 11th and the 12th closed
    // unattended; the 13th's is still open and runs once.
    let (jobs, scheduler) = f.daemon("node-b", events.clone());
    jobs.recover().unwrap();
    f.at("2026-05-13T02:30:00Z");
    let report = settle(&jobs, &scheduler).await;
    assert_eq!((report.missed, report.started, report.completed), (2, 1, 1), "{report:?}");
    assert_eq!(
        events.kinds(),
        [BackupEventKind::Succeeded, BackupEventKind::Missed, BackupEventKind::Missed, BackupEventKind::Succeeded]
    );
    let missed: Vec<String> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.kind == BackupEventKind::Missed)
        .map(|e| e.window_start.clone())
        .collect();
    assert_eq!(missed, ["2026-05-11T00:00:00Z", "2026-05-12T00:00:00Z"]);
    // Another restart later in the same window: nothing is taken again.
    let (jobs, scheduler) = f.daemon("node-c", events.clone());
    f.at("2026-05-13T03:30:00Z");
    assert_eq!(settle(&jobs, &scheduler).await, TickReport::default());
    assert_eq!(f.backups(droplet).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_interrupted_by_a_crash_is_retried_in_its_window_once() {
    let f = Fixture::new("2026-05-10T00:00:00Z");
    let events = Arc::new(Recorder::default());
    let disk = f.disk("app.img", 2);
    let droplet = f.droplet("app", &disk, json!({"plan": "daily", "hour": 0}));
    // A daemon claimed the window and recorded the backup action, then died before running it.
    f.at("2026-05-10T02:00:00Z");
    let run = f
        .catalog
        .claim_run(&drydock_catalog::NewRun {
            team_id: f.team,
            resource_type: ResourceType::Droplet,
            resource_id: droplet.to_string(),
            window_start: "2026-05-10T00:00:00Z".parse::<Timestamp>().unwrap().as_second(),
            window_end: "2026-05-10T04:00:00Z".parse::<Timestamp>().unwrap().as_second(),
            claimed_by: "dead-node".into(),
            now: f.clock.unix(),
        })
        .unwrap()
        .unwrap();
    let action = drydock_catalog::NewAction {
        kind: "backup".into(),
        resource_type: ResourceType::Droplet,
        resource_id: droplet.to_string(),
        region: "local-1".into(),
        params: json!({"run_id": run.id}),
    };
    let image = drydock_catalog::NewImage {
        name: "app backup".into(),
        kind: ImageType::Backup,
        resource_type: ResourceType::Droplet,
        resource_id: droplet.to_string(),
        size_bytes: 0,
        tags: vec!["daily".into()],
        created_at: Some("2026-05-10T02:00:00Z".into()),
    };
    let (action, image) = f.catalog.start_action(f.team, &action, Some(&image)).unwrap();
    f.catalog.run_action_started(run.id, action.id, image.map(|i| i.id)).unwrap();

    // The next start: recovery ends the action errored; the scheduler sees a failed attempt
    // and retries after its backoff, inside the window.
    let (jobs, scheduler) = f.daemon("node-b", events.clone());
    assert_eq!(jobs.recover().unwrap().errored, [action.id]);
    f.at("2026-05-10T02:01:00Z");
    let report = settle(&jobs, &scheduler).await;
    assert_eq!((report.failed_attempts, report.started), (1, 0), "{report:?}");
    f.at("2026-05-10T02:03:00Z");
    let report = settle(&jobs, &scheduler).await;
    assert_eq!((report.started, report.completed), (1, 1), "{report:?}");
    let backups = f.backups(droplet);
    assert_eq!(backups.len(), 1, "one backup for the window");
    assert_eq!(f.restore(&backups[0]), disk_bytes(2));
    let runs = f.catalog.backup_runs(f.team, ResourceType::Droplet, &droplet.to_string(), 10).unwrap();
    assert_eq!((runs.len(), runs[0].status, runs[0].attempts), (1, RunStatus::Succeeded, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_one_catalog_take_each_window_once() {
    let f = Fixture::new("2026-05-10T00:00:00Z");
    let events = Arc::new(Recorder::default());
    let mut droplets = Vec::new();
    for n in 0..6 {
        let disk = f.disk(&format!("d{n}.img"), n);
        droplets.push(f.droplet(&format!("d{n}"), &disk, json!({"plan": "intra_daily_4h"})));
    }
    let (jobs_a, scheduler_a) = f.daemon("node-a", events.clone());
    let (jobs_b, scheduler_b) = f.daemon("node-b", events.clone());
    for hour in ["2026-05-10T02:00:00Z", "2026-05-10T06:00:00Z", "2026-05-10T10:00:00Z"] {
        f.at(hour);
        // Both tick at the same moment, again and again, until both are idle.
        for _ in 0..20 {
            let (a, b) = (scheduler_a.clone(), scheduler_b.clone());
            let ta = tokio::task::spawn_blocking(move || a.tick().unwrap());
            let tb = tokio::task::spawn_blocking(move || b.tick().unwrap());
            let (_, _) = (ta.await.unwrap(), tb.await.unwrap());
            while jobs_a.running_count() + jobs_b.running_count() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    for droplet in droplets {
        let backups = f.backups(droplet);
        let windows: Vec<&str> = backups.iter().map(|b| &b.created_at[..13]).collect();
        assert_eq!(windows, ["2026-05-10T02", "2026-05-10T06", "2026-05-10T10"], "droplet {droplet}");
    }
    assert_eq!(events.kinds().len(), 18);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_backups_are_retried_with_backoff_then_reported() {
    let f = Fixture::new("2026-05-10T00:00:00Z");
    let events = Arc::new(Recorder::default());
    let disk = f.disk("gone.img", 3);
    let droplet = f.droplet("gone", &disk, json!({"plan": "daily", "hour": 0}));
    std::fs::remove_file(&disk).unwrap();
    let (jobs, scheduler) = f.daemon("node-a", events.clone());
    f.at("2026-05-10T02:00:00Z");
    // Attempts at 02:00, then 1, 2, 4 and 8 minutes after each failure; the fifth is the last.
    let mut attempts = Vec::new();
    for minute in 0..60 {
        f.clock.set(
            "2026-05-10T02:00:00Z"
                .parse::<Timestamp>()
                .unwrap()
                .saturating_add(SignedDuration::from_mins(minute))
                .unwrap(),
        );
        let report = settle(&jobs, &scheduler).await;
        if report.started > 0 {
            attempts.push(minute);
        }
    }
    assert_eq!(attempts, [0, 1, 3, 7, 15]);
    assert_eq!(events.kinds(), [BackupEventKind::Failed]);
    let event = events.0.lock().unwrap()[0].clone();
    assert!(event.error.as_deref().unwrap_or("").contains("gone.img"), "{event:?}");
    let stats = f.catalog.backup_stats_of(ResourceType::Droplet, &droplet.to_string()).unwrap().unwrap();
    assert_eq!((stats.failures, stats.successes), (5, 0));
    assert!(f.backups(droplet).is_empty());
    assert!(f.catalog.images(f.team, &ImageFilter::default(), Page::ALL).unwrap().0.is_empty(), "no half-made image");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_backups_expire_by_age_and_a_deleted_droplets_after_four_weeks() {
    let f = Fixture::new("2026-05-10T00:00:00Z");
    let events = Arc::new(Recorder::default());
    let (jobs, scheduler) = f.daemon("node-a", events.clone());
    let kept_disk = f.disk("kept.img", 4);
    let gone_disk = f.disk("gone.img", 5);
    // DigitalOcean's daily plan: backups kept 7 days.
    let kept = f.droplet("kept", &kept_disk, json!({"plan": "daily", "hour": 0}));
    let gone = f.droplet("gone", &gone_disk, json!({"plan": "daily", "hour": 0}));
    for day in ["2026-05-10T03:00:00Z", "2026-05-11T03:00:00Z"] {
        f.at(day);
        assert_eq!(settle(&jobs, &scheduler).await.completed, 2);
    }
    f.catalog.set_droplet_backups(f.team, kept, false, None, f.clock.unix()).unwrap();
    f.catalog.delete_droplet(f.team, gone).unwrap();
    let expires: Timestamp = "2026-06-08T03:00:00Z".parse().unwrap();
    f.catalog.expire_backups(f.team, ResourceType::Droplet, &gone.to_string(), expires.as_second()).unwrap();

    let pruner = scheduler.pruner();
    f.at("2026-05-16T00:00:00Z");
    assert_eq!(pruner.prune_all().unwrap(), 0);
    assert_eq!((f.backups(kept).len(), f.backups(gone).len()), (2, 2));
    // Seven days after each backup, the disabled droplet's expire one by one.
    f.at("2026-05-17T03:30:00Z");
    assert_eq!(pruner.prune_all().unwrap(), 1);
    f.at("2026-05-18T03:30:00Z");
    assert_eq!(pruner.prune_all().unwrap(), 1);
    assert!(f.backups(kept).is_empty());
    // The deleted droplet's stay four weeks from its deletion, then go.
    assert_eq!(f.backups(gone).len(), 2);
    f.at("2026-06-08T02:59:00Z");
    assert_eq!(pruner.prune_all().unwrap(), 0);
    f.at("2026-06-08T03:00:00Z");
    assert_eq!(pruner.prune_all().unwrap(), 2);
    assert!(f.backups(gone).is_empty());
    assert!(
        f.catalog
            .images(f.team, &ImageFilter { kind: Some(ImageType::Backup), ..Default::default() }, Page::ALL)
            .unwrap()
            .0
            .is_empty()
    );
}
