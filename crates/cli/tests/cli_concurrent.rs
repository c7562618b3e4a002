//! Backups, gc, forget and restore as separate processes at the same time, many times over.
//! The backups deduplicate against exactly the snapshots being forgotten while gc runs, which
//! is the race the lease protocol exists for (docs/concurrency.md).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Image, Rng, Running, Sandbox, assert_same_bytes, os};

const ROUNDS: u64 = 10;
const IMAGE_BYTES: usize = 6 << 20;
/// Upper bounds of the random delays before each process starts, so they overlap differently
/// every round: gc sometimes marks before the backups lease, sometimes while they write.
const BACKUP_DELAY_MS_MAX: u64 = 60;
const FORGET_DELAY_MS_MAX: u64 = 150;
const GC_DELAY_MS_MAX: u64 = 300;
const RESTORE_DELAY_MS_MAX: u64 = 300;

/// One process to start after a delay.
struct Start {
    delay: Duration,
    what: Process,
}

enum Process {
    Backup { line: &'static str, path: std::path::PathBuf },
    Forget(Vec<String>),
    Gc,
    Restore(String),
}

#[test]
fn backups_run_safely_beside_gc_forget_and_restore() {
    let sandbox = Sandbox::new();
    let anchor = Image::random(1, IMAGE_BYTES);
    let anchor_id = sandbox.backup(&anchor, "anchor");
    // Two lines of images: `a` changes a little each round (mostly deduplicated), `b` keeps
    // half of its chunks. Each round forgets the previous generation of both.
    let mut current: BTreeMap<&str, (String, Image)> = BTreeMap::new();
    let a0 = anchor.mutated(2, 20);
    current.insert("a", (sandbox.backup(&a0, "a"), a0));
    let b0 = Image::random(3, IMAGE_BYTES);
    current.insert("b", (sandbox.backup(&b0, "b"), b0));
    let mut rng = Rng::new(0xC0C0_0004);
    let mut waiting = 0;

    for round in 0..ROUNDS {
        let next_a = current["a"].1.mutated(100 + round, 20);
        let next_b = current["b"].1.rewrite_chunks(200 + round, 2);
        let mut starts = Vec::new();
        for (line, image) in [("a", &next_a), ("b", &next_b)] {
            let path = sandbox.path(&format!("{line}-{round}.img"));
            image.write(&path);
            starts.push(Start { delay: delay(&mut rng, BACKUP_DELAY_MS_MAX), what: Process::Backup { line, path } });
        }
        let old: Vec<String> = current.values().map(|(id, _)| id.clone()).collect();
        starts.push(Start { delay: delay(&mut rng, FORGET_DELAY_MS_MAX), what: Process::Forget(old.clone()) });
        starts.push(Start { delay: delay(&mut rng, GC_DELAY_MS_MAX), what: Process::Gc });
        starts.push(Start { delay: delay(&mut rng, RESTORE_DELAY_MS_MAX), what: Process::Restore(anchor_id.clone()) });
        starts.sort_by_key(|s| s.delay);

        let began = std::time::Instant::now();
        let mut running: Vec<(Process, Running)> = Vec::new();
        for start in starts {
            std::thread::sleep(start.delay.saturating_sub(began.elapsed()));
            let invocation = match &start.what {
                Process::Backup { line, path } => {
                    sandbox.cmd([os("--json"), os("image"), os("backup"), path.as_os_str(), os("--name"), os(line)])
                }
                Process::Forget(ids) => {
                    sandbox.cmd(["image", "forget"].into_iter().chain(ids.iter().map(String::as_str)))
                }
                Process::Gc => sandbox.cmd(["--json", "repo", "gc"]),
                Process::Restore(id) => sandbox.cmd(["image", "restore", id, "-"]),
            };
            running.push((start.what, invocation.spawn()));
        }

        let mut new_ids: BTreeMap<&str, String> = BTreeMap::new();
        for (what, process) in running {
            let outcome = process.finish().assert_ok();
            match what {
                Process::Backup { line, .. } => {
                    new_ids.insert(line, outcome.json()["id"].as_str().expect("backup prints its id").to_string());
                }
                Process::Gc => waiting += outcome.json()["plans_waiting"].as_u64().unwrap_or(0),
                Process::Restore(_) => assert_same_bytes(&outcome.stdout, &anchor.bytes, "anchor restored beside gc"),
                Process::Forget(_) => {}
            }
        }
        current.insert("a", (new_ids["a"].clone(), next_a));
        current.insert("b", (new_ids["b"].clone(), next_b));

        let expected: BTreeSet<String> =
            current.values().map(|(id, _)| id.clone()).chain([anchor_id.clone()]).collect();
        assert_eq!(sandbox.list_ids(), expected, "round {round}: forgot {old:?}");
        sandbox.assert_restores(&anchor_id, &anchor.bytes);
        for (id, image) in current.values() {
            sandbox.assert_restores(id, &image.bytes);
        }
        sandbox.assert_verifies();
    }
    eprintln!("in {ROUNDS} rounds, a gc plan waited for a running writer {waiting} times");

    // With nothing else running, gc finishes every plan, and everything still restores.
    sandbox.gc();
    assert!(sandbox.objects("plans").is_empty(), "plans left after a gc with nothing running");
    sandbox.assert_verifies();
    sandbox.assert_restores(&anchor_id, &anchor.bytes);
    for (id, image) in current.values() {
        sandbox.assert_restores(id, &image.bytes);
    }
}

fn delay(rng: &mut Rng, max_ms: u64) -> Duration {
    Duration::from_millis(rng.below(max_ms + 1))
}
