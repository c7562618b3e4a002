//! How long the scheduler takes to plan one tick for 10 000 droplets, and the memory it uses.
//!
//! `cargo run --release -p drydock-jobs --example scheduler_tick [-- DROPLETS]`
//!
//! Seeds a catalog with droplets whose backups are on, under a mix of policies (hourly, every
//! 4 h, daily, weekly, monthly, cron, in several time zones), each with its current window
//! already taken, so that a tick is pure planning: read every target, ask the planner, decide
//! there is nothing to start. Reports the median and worst of several ticks, the planner alone,
//! and the process's peak resident memory before and after.

use std::sync::Arc;
use std::time::{Duration, Instant};

use drydock_catalog::{Catalog, Disk, DiskFormat, DropletStatus, NewDroplet, NewRun, ResourceType};
use drydock_jobs::{
    Clock, DiskPolicy, JobSettings, Jobs, NoEvents, RegionLocation, RegionSpec, Regions, Scheduler, SchedulerSettings,
};
use drydock_schedule::tick::{self, RunState, RunStatus, Target};
use drydock_schedule::{Policy, window};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

const TICKS: usize = 7;

fn main() {
    let droplets: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let catalog = Arc::new(Catalog::open(&dir.path().join("catalog.sqlite")).expect("a catalog"));
    let team = catalog.ensure_team("bench").expect("a team").id;
    let now: Timestamp = "2026-06-15T10:50:00Z".parse().unwrap();
    let policies = [
        json!({"plan": "hourly", "keep_hourly": 24, "keep_daily": 7}),
        json!({"plan": "intra_daily_4h", "time_zone": "Europe/Paris"}),
        json!({"plan": "daily", "hour": 8, "time_zone": "America/New_York", "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12}),
        json!({"plan": "weekly", "weekday": "MON", "hour": 8}),
        json!({"plan": "monthly", "day_of_month": 15, "hour": 8}),
        json!({"plan": "cron", "cron": "30 3 * * 0,4", "time_zone": "Asia/Tokyo"}),
    ];
    let policies: Vec<Policy> = policies.iter().map(|p| Policy::from_json(p).expect("a valid policy")).collect();

    let seeding = Instant::now();
    let since = now.saturating_sub(SignedDuration::from_hours(24 * 40)).unwrap();
    for n in 0..droplets {
        let policy = &policies[n % policies.len()];
        let droplet = catalog
            .insert_droplet(
                team,
                &NewDroplet {
                    name: format!("bench-{n}"),
                    region: "local-1".into(),
                    disk: Disk { path: format!("/srv/bench-{n}.img"), format: DiskFormat::Raw, size_bytes: 1 << 30 },
                    power: json!({"driver": "none"}),
                    status: DropletStatus::Active,
                    size_slug: "registered".into(),
                    memory_mb: 0,
                    vcpus: 0,
                    tags: Vec::new(),
                    backups_enabled: true,
                    backup_policy: Some(policy.to_json()),
                    backups_since: Some(since.as_second()),
                    image_id: None,
                },
            )
            .expect("a droplet");
        // Its latest window already succeeded: the tick has nothing to start.
        if let Some(window) = policy.window_at(now) {
            let run = catalog
                .claim_run(&NewRun {
                    team_id: team,
                    resource_type: ResourceType::Droplet,
                    resource_id: droplet.id.to_string(),
                    window_start: window.start.as_second(),
                    window_end: window.end.as_second(),
                    claimed_by: "bench".into(),
                    now: window.start.as_second(),
                })
                .expect("a claim")
                .expect("an unclaimed window");
            let taken = window.start.as_second();
            catalog.run_succeeded(run.id, 1, taken, taken + 60, 60.0, 1 << 30, 1 << 20).expect("a success");
        }
    }
    println!("seeded {droplets} droplets in {:.1} s", seeding.elapsed().as_secs_f64());

    let jobs = Jobs::new(
        catalog.clone(),
        Arc::new(Regions::new(vec![RegionSpec {
            slug: "local-1".into(),
            name: "Local".into(),
            location: RegionLocation::Local(dir.path().join("region")),
            passphrase: b"bench".to_vec(),
        }])),
        JobSettings {
            workers: 2,
            disks: DiskPolicy { allowed_roots: vec![dir.path().to_path_buf()] },
            scratch_dir: dir.path().join("scratch"),
        },
    );
    let scheduler = Scheduler::new(
        jobs,
        Clock::manual(now),
        Arc::new(NoEvents),
        SchedulerSettings {
            tick: Duration::from_secs(30),
            max_concurrent_backups: 2,
            node: "bench".into(),
            gc_interval: SignedDuration::from_hours(24),
            prune_interval: SignedDuration::from_mins(10),
        },
    );
    let rss_before = peak_rss_kib();
    let mut times = Vec::new();
    for _ in 0..TICKS {
        let started = Instant::now();
        let report = scheduler.tick().expect("a tick");
        times.push(started.elapsed());
        assert_eq!(report.started, 0, "every window was already taken: {report:?}");
    }
    times.sort();
    println!(
        "scheduler tick, {droplets} droplets: median {:.1} ms, worst {:.1} ms (catalog read + planning)",
        ms(times[TICKS / 2]),
        ms(times[TICKS - 1])
    );

    // The planner alone, on data already in memory.
    let targets = catalog.backup_targets().expect("targets");
    let parsed: Vec<(String, Policy, Option<RunState>)> = targets
        .iter()
        .map(|t| {
            let policy = Policy::from_json(t.policy.as_ref().unwrap()).unwrap();
            let run = t.last_run.as_ref().map(|r| RunState {
                window: drydock_schedule::Window {
                    start: Timestamp::from_second(r.window_start).unwrap(),
                    end: Timestamp::from_second(r.window_end).unwrap(),
                },
                status: RunStatus::Succeeded,
                attempts: r.attempts,
                next_attempt_at: None,
                outcome: None,
            });
            (format!("droplet:{}", t.resource_id), policy, run)
        })
        .collect();
    let started = Instant::now();
    let mut waiting = 0;
    for (key, policy, run) in &parsed {
        let target = Target { key, policy, enabled_since: since, last_run: run.as_ref() };
        if matches!(tick::step(&target, now), tick::Step::Wait { .. }) {
            waiting += 1;
        }
        let _ = window::stale(policy, None, since, now);
    }
    println!(
        "planner alone ({waiting} waiting): {:.1} ms; policies parsed from JSON: {:.1} ms",
        ms(started.elapsed()),
        {
            let started = Instant::now();
            for t in &targets {
                let _ = Policy::from_json(t.policy.as_ref().unwrap());
            }
            ms(started.elapsed())
        }
    );
    println!("peak RSS: {} MiB after seeding, {} MiB after the ticks", rss_before / 1024, peak_rss_kib() / 1024);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
