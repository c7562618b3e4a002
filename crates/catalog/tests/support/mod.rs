//! What several test files share: a fresh PostgreSQL database per test, on the cluster named by
//! DRYDOCK_TEST_POSTGRES_URL (`scripts/test` starts one; alone,
//! `eval $(scripts/pg-test-server start /tmp/pg)`), and races between daemons sharing a catalog.
// Each test file uses a part of it.
#![allow(dead_code)]

use std::process::Command;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU32, Ordering};

use drydock_catalog::{Catalog, NewRun, ResourceType};

/// 2026-01-01T00:00:00Z on the scheduler's clock.
const T0: i64 = 1_767_225_600;

/// A database made for one test, dropped (with any connection left to it) afterwards.
pub struct TestDatabase {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    pub fn new() -> TestDatabase {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let admin_url = std::env::var("DRYDOCK_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!(
                "DRYDOCK_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts PostgreSQL, \
                 or start one with `eval $(scripts/pg-test-server start /tmp/pg)`"
            )
        });
        let name = format!("catalog_test_{}_{}", std::process::id(), COUNT.fetch_add(1, Ordering::Relaxed));
        psql(&admin_url, &format!("CREATE DATABASE {name}"));
        TestDatabase { admin_url, name }
    }

    /// The URL of this test's database.
    pub fn url(&self) -> String {
        let (server, _) = self.admin_url.rsplit_once('/').expect("a URL ending in /database");
        format!("{server}/{}", self.name)
    }

    pub fn connect(&self) -> Catalog {
        Catalog::connect(&self.url()).expect("connecting to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        psql(&self.admin_url, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

fn psql(url: &str, sql: &str) {
    let output =
        Command::new("psql").args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql]).output().expect("running psql");
    assert!(output.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// `racers` threads spread over `daemons` (handles on one catalog) claim one window at once;
/// the one that claimed it fails its attempt, and all of them race to start the retry. Exactly
/// one claim and one retry must win, and the failure is counted once.
pub fn daemons_take_a_window_and_its_retry_once(daemons: &[Catalog], racers: usize) {
    let team = daemons[0].ensure_team("ops").expect("a team").id;
    let new = NewRun {
        team_id: team,
        resource_type: ResourceType::Droplet,
        resource_id: "1".into(),
        window_start: T0,
        window_end: T0 + 4 * 3600,
        claimed_by: String::new(),
        now: T0,
    };
    let barrier = Barrier::new(racers);
    let (claims, retries) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..racers)
            .map(|n| {
                let (catalog, barrier, new) = (&daemons[n % daemons.len()], &barrier, &new);
                scope.spawn(move || {
                    barrier.wait();
                    let node = format!("node-{n}");
                    let claimed =
                        catalog.claim_run(&NewRun { claimed_by: node.clone(), ..new.clone() }).expect("claiming");
                    if let Some(run) = &claimed {
                        assert!(catalog.run_attempt_failed(run.id, 1, "busy", Some(T0 + 60), T0 + 1).expect("failing"));
                    }
                    barrier.wait();
                    let run = catalog.backup_runs(team, ResourceType::Droplet, "1", 1).expect("runs").remove(0);
                    (claimed.is_some(), catalog.retry_run(run.id, 1, &node, T0 + 60).expect("retrying"))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a daemon panicked")).unzip::<_, _, Vec<_>, Vec<_>>()
    });
    assert_eq!(claims.iter().filter(|c| **c).count(), 1, "{claims:?}");
    assert_eq!(retries.iter().filter(|r| **r).count(), 1, "{retries:?}");
    let last = &daemons[daemons.len() - 1];
    let run = last.backup_runs(team, ResourceType::Droplet, "1", 1).expect("runs").remove(0);
    assert_eq!(run.attempts, 2);
    assert_eq!(last.backup_stats(Some(team)).expect("stats")[0].failures, 1, "one failure, counted once");
}
