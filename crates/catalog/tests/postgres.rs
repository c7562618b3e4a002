//! PostgreSQL itself: several daemons on one catalog, starting together, losing their
//! connections, and a server that is not there. The catalog's contract runs on PostgreSQL in
//! `catalog.rs`.

use std::process::Command;
use std::sync::Barrier;

use drydock_catalog::{ActionId, ActionStatus, Catalog, NewAction, ResourceType};

mod support;

const DAEMONS: usize = 3;
const RACERS_PER_DAEMON: usize = 4;

#[test]
fn daemons_sharing_a_catalog_take_a_window_and_its_retry_once() {
    let database = support::TestDatabase::new();
    let daemons: Vec<Catalog> = (0..DAEMONS).map(|_| database.connect()).collect();
    support::daemons_take_a_window_and_its_retry_once(&daemons, DAEMONS * RACERS_PER_DAEMON);
}

#[test]
fn daemons_starting_together_migrate_once() {
    let database = support::TestDatabase::new();
    let url = database.url();
    let barrier = Barrier::new(DAEMONS);
    let teams: Vec<i64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..DAEMONS)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let catalog = Catalog::connect(&url).expect("connecting and migrating");
                    catalog.ensure_team("ops").expect("a team").id
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a daemon panicked")).collect()
    });
    assert!(teams.iter().all(|t| *t == teams[0]), "one team, seen by all: {teams:?}");
    let versions = psql_value(&url, "SELECT string_agg(version::text, ',') FROM schema_migrations");
    assert_eq!(versions, "3,4");
}

#[test]
fn the_catalog_reconnects_when_its_connections_are_cut() {
    let database = support::TestDatabase::new();
    let catalog = database.connect();
    let team = catalog.ensure_team("ops").expect("a team").id;
    catalog.create_token(team, "ci", &["*".to_string()]).expect("a token");
    // What a PostgreSQL restart or failover does to every open connection.
    let cut = psql_value(
        &database.url(),
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    assert_ne!(cut, "0", "the catalog's connections were open");
    // The first use of each cut connection fails with the reason; the next one reconnects.
    let reads: Vec<_> = (0..3).map(|_| catalog.tokens(team)).collect();
    let writes: Vec<_> = (0..3).map(|_| catalog.ensure_team("dev")).collect();
    for (what, results) in [
        ("read", reads.iter().map(|r| r.as_ref().err()).collect::<Vec<_>>()),
        ("write", writes.iter().map(|r| r.as_ref().err()).collect()),
    ] {
        let last = results.last().expect("three attempts");
        assert!(last.is_none(), "the {what} after a cut connection reconnects: {results:?}");
        for error in results.into_iter().flatten() {
            assert!(error.to_string().starts_with("catalog "), "{error}");
        }
    }
    assert_eq!(catalog.tokens(team).expect("tokens").len(), 1);
}

#[test]
fn a_server_that_is_not_there_is_reported_without_the_password() {
    // Port 9 (discard) on loopback: nothing listens there.
    let error = Catalog::connect("postgres://drydock:hunter2-secret@127.0.0.1:9/catalog")
        .err()
        .expect("no server, no catalog")
        .to_string();
    assert!(error.contains("postgres://drydock@127.0.0.1:9/catalog"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
    let error = Catalog::connect("postgres://127.0.0.1:notaport/x").err().expect("a bad URL").to_string();
    assert!(error.starts_with("catalog configuration: database URL"), "{error}");
}

fn psql_value(url: &str, sql: &str) -> String {
    let output = Command::new("psql").args([url, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]).output().expect("psql");
    assert!(output.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn an_action_whose_lease_ran_out_is_taken_over_by_one_daemon() {
    let database = support::TestDatabase::new();
    let lease = std::time::Duration::from_secs(1);
    let daemons: Vec<Catalog> = (0..DAEMONS).map(|_| database.connect()).collect();
    for (n, daemon) in daemons.iter().enumerate() {
        daemon.set_worker(&format!("node-{n}"), lease).expect("a worker name");
    }
    let team = daemons[0].ensure_team("ops").expect("a team").id;
    let start = |daemon: &Catalog, resource_id: &str| {
        let new = NewAction {
            kind: "power_on".into(),
            resource_type: ResourceType::Droplet,
            resource_id: resource_id.into(),
            region: "local-1".into(),
            params: serde_json::json!({}),
        };
        daemon.start_action(team, &new, None).expect("starting an action").0
    };
    let dies = start(&daemons[0], "1");
    let lives = start(&daemons[1], "2");
    assert_eq!((dies.worker.as_deref(), lives.worker.as_deref()), (Some("node-0"), Some("node-1")));
    assert!(daemons[2].take_over_actions(10).expect("nothing to take").is_empty(), "leases still hold");

    // node-0 stops renewing (it died); node-1 keeps renewing its own.
    let deadline = std::time::Instant::now() + 3 * lease;
    while std::time::Instant::now() < deadline {
        assert_eq!(daemons[1].renew_leases().expect("renewing"), [lives.id]);
        std::thread::sleep(lease / 4);
    }
    let barrier = Barrier::new(2);
    let taken: Vec<Vec<ActionId>> = std::thread::scope(|scope| {
        let handles: Vec<_> = [&daemons[1], &daemons[2]]
            .into_iter()
            .map(|daemon| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    daemon.take_over_actions(10).expect("taking over").into_iter().map(|a| a.id).collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a daemon panicked")).collect()
    });
    assert_eq!(taken.concat(), [dies.id], "the dead daemon's action, taken once: {taken:?}");
    let new_owner = daemons[0].action_for_worker(dies.id).expect("the action").worker.expect("a worker");
    assert_ne!(new_owner, "node-0");

    // The dead daemon, back from a stall, holds nothing and cannot end the action.
    assert!(daemons[0].renew_leases().expect("renewing").is_empty());
    let refused = daemons[0].finish_action(dies.id, Ok(())).expect_err("no longer its action").to_string();
    assert!(refused.contains(&format!("taken over by {new_owner}")), "{refused}");
    let owner = daemons.iter().find(|d| d.renew_leases().expect("renewing").contains(&dies.id)).expect("an owner");
    assert_eq!(owner.finish_action(dies.id, Ok(())).expect("ending it").status, ActionStatus::Completed);
}

#[test]
fn actions_started_without_a_worker_are_never_taken_over() {
    let database = support::TestDatabase::new();
    let (single, other) = (database.connect(), database.connect());
    other.set_worker("node-b", std::time::Duration::from_secs(1)).expect("a worker name");
    let team = single.ensure_team("ops").expect("a team").id;
    let new = NewAction {
        kind: "power_on".into(),
        resource_type: ResourceType::Droplet,
        resource_id: "1".into(),
        region: "local-1".into(),
        params: serde_json::json!({}),
    };
    let (action, _) = single.start_action(team, &new, None).expect("starting an action");
    assert_eq!(action.worker, None);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert!(other.take_over_actions(10).expect("taking over").is_empty());
}
