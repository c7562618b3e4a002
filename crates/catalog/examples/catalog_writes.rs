//! How many catalog writes per second a daemon (or several) can make: each thread plays a
//! worker running actions, each action being the writes a real one makes (start, ten progress
//! updates, finish), on SQLite or on PostgreSQL shared by several handles.
//!
//! ```sh
//! cargo run --release -p drydock-catalog --example catalog_writes -- sqlite 4
//! cargo run --release -p drydock-catalog --example catalog_writes -- postgres://postgres@127.0.0.1:55432/bench 4
//! ```

use std::time::{Duration, Instant};

use drydock_catalog::{Catalog, NewAction, ResourceType};

const ACTIONS_PER_THREAD: usize = 200;
const PROGRESS_PER_ACTION: u64 = 10;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = args.first().map_or("sqlite", String::as_str);
    let threads: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(4);
    let dir = tempfile::tempdir().expect("a temporary directory");
    // One handle per thread on PostgreSQL (one daemon each); one shared handle on SQLite.
    let open = || match target {
        "sqlite" => Catalog::open(&dir.path().join("catalog.sqlite")).expect("opening SQLite"),
        url => Catalog::connect(url).expect("connecting to PostgreSQL"),
    };
    let shared = open();
    let team = shared.ensure_team("bench").expect("a team").id;
    let handles: Vec<Catalog> = if target == "sqlite" { Vec::new() } else { (0..threads).map(|_| open()).collect() };
    let started = Instant::now();
    std::thread::scope(|scope| {
        for n in 0..threads {
            let catalog = handles.get(n).unwrap_or(&shared);
            scope.spawn(move || {
                for a in 0..ACTIONS_PER_THREAD {
                    let new = NewAction {
                        kind: "power_on".into(),
                        resource_type: ResourceType::Droplet,
                        resource_id: format!("{n}-{a}"),
                        region: "local-1".into(),
                        params: serde_json::json!({}),
                    };
                    let (action, _) = catalog.start_action(team, &new, None).expect("starting");
                    for p in 1..=PROGRESS_PER_ACTION {
                        catalog.set_action_progress(action.id, p, PROGRESS_PER_ACTION).expect("progress");
                    }
                    catalog.finish_action(action.id, Ok(())).expect("finishing");
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let writes = threads * ACTIONS_PER_THREAD * (PROGRESS_PER_ACTION as usize + 2);
    println!(
        "{target}: {threads} threads, {writes} writes in {:.2} s: {:.0} writes/s, {:.2} ms each",
        elapsed.as_secs_f64(),
        writes as f64 / elapsed.as_secs_f64(),
        per(elapsed, writes)
    );
}

fn per(elapsed: Duration, writes: usize) -> f64 {
    elapsed.as_secs_f64() * 1000.0 / writes as f64
}
