//! Crash safety: `drydock` processes killed with SIGKILL at random points, many times over.
//! After every kill, what was committed before is intact, nothing half-done is visible, and
//! `repo verify --read-data` passes; a later `repo gc` cleans up what the killed process left.

mod common;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::{Image, Invocation, Rng, Sandbox, os, partial_files, wait_for};

const BACKUP_KILLS: u64 = 18;
const FORGET_KILLS: u64 = 12;
const GC_KILLS: u64 = 12;
/// Long enough for any process here to reach a given point on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A snapshot that must exist, and the bytes it was taken from.
struct Committed {
    id: String,
    image: Image,
}

/// When to send SIGKILL.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// This long after the process starts (often before it has done anything).
    AfterStart(Duration),
    /// This long after a new object appears under the repository's `kind` directory (a lease:
    /// the operation has begun; a plan: gc has decided what to delete).
    AfterNew { kind: &'static str, delay: Duration },
}

/// How a killed run ended.
struct Killed {
    /// False if the process finished before the signal.
    by_signal: bool,
    /// Whether the trigger object of [`KillAt::AfterNew`] appeared before the kill.
    triggered: bool,
    /// From the start to the trigger object appearing (for `AfterNew`).
    start_to_trigger: Option<Duration>,
    /// From the trigger (the start, for `AfterStart`) to the process's own exit, if it exited
    /// before the signal.
    trigger_to_exit: Option<Duration>,
}

fn run_and_kill(sandbox: &Sandbox, invocation: Invocation, at: KillAt) -> Killed {
    let before = match at {
        KillAt::AfterNew { kind, .. } => sandbox.object_names(kind),
        KillAt::AfterStart(_) => BTreeSet::new(),
    };
    let started = Instant::now();
    let mut running = invocation.spawn();
    let exited = |running: &mut common::Running| running.child.try_wait().ok().flatten().is_some();
    let (trigger, delay, mut triggered) = match at {
        KillAt::AfterStart(delay) => (started, delay, false),
        KillAt::AfterNew { kind, delay } => {
            // Polled without sleeping: a gc plan is armed a few milliseconds after it appears.
            let deadline = started + START_TIMEOUT;
            let mut found = false;
            while Instant::now() < deadline && !exited(&mut running) {
                if sandbox.object_names(kind).difference(&before).next().is_some() {
                    found = true;
                    break;
                }
                std::thread::yield_now();
            }
            (Instant::now(), delay, found)
        }
    };
    let start_to_trigger = triggered.then(|| trigger - started);
    let mut trigger_to_exit = None;
    while trigger.elapsed() < delay {
        if exited(&mut running) {
            trigger_to_exit = Some(trigger.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    running.kill();
    let outcome = running.finish();
    let by_signal = outcome.status.signal() == Some(libc::SIGKILL);
    assert!(
        by_signal || outcome.success(),
        "`{}` failed on its own before the kill: {}\n{}",
        outcome.command,
        outcome.status,
        outcome.stderr
    );
    triggered &= by_signal || trigger_to_exit.is_some();
    Killed { by_signal, triggered, start_to_trigger, trigger_to_exit }
}

/// How long the phases of an operation take, measured on one run that was not killed, so kill
/// delays spread over the whole run however fast or loaded the machine is.
struct Phases {
    /// From the start to the trigger object (opening the repository, mostly key derivation).
    before_trigger: Duration,
    /// From the trigger object to the exit: the work itself.
    after_trigger: Duration,
}

impl Phases {
    /// Runs `invocation` to its end once, watching for a new object under `kind`.
    fn measure(sandbox: &Sandbox, invocation: Invocation, kind: &'static str) -> Phases {
        let run = run_and_kill(sandbox, invocation, KillAt::AfterNew { kind, delay: START_TIMEOUT });
        assert!(!run.by_signal && run.triggered, "the calibration run did not finish or never made a {kind} object");
        Phases { before_trigger: run.start_to_trigger.unwrap(), after_trigger: run.trigger_to_exit.unwrap() }
    }
}

/// Uniform in `0..=max`, to the microsecond.
fn up_to(rng: &mut Rng, max: Duration) -> Duration {
    Duration::from_micros(rng.below(max.as_micros() as u64 + 1))
}

fn assert_all_restore(sandbox: &Sandbox, committed: &[Committed]) {
    for snapshot in committed {
        sandbox.assert_restores(&snapshot.id, &snapshot.image.bytes);
    }
}

fn ids(committed: &[Committed]) -> BTreeSet<String> {
    committed.iter().map(|c| c.id.clone()).collect()
}

/// After a gc with nothing else running, no plan may be left: a plan left over is data that
/// will never be freed.
fn assert_no_plans_left(sandbox: &Sandbox, context: &str) {
    let plans = sandbox.objects("plans");
    // A plan is a 16-byte header and JSON.
    let contents: Vec<String> = plans
        .iter()
        .map(|p| {
            String::from_utf8_lossy(std::fs::read(p).unwrap_or_default().get(16..).unwrap_or_default()).into_owned()
        })
        .collect();
    assert!(plans.is_empty(), "{context}: gc plans are left after a gc with nothing else running: {contents:?}");
}

/// Forgets every snapshot and runs gc: every pack must go, those killed backups left included.
fn assert_everything_collectable(sandbox: &Sandbox) {
    let all: Vec<String> = sandbox.list_ids().into_iter().collect();
    if !all.is_empty() {
        let mut args = vec!["image".to_string(), "forget".to_string()];
        args.extend(all);
        sandbox.drydock(&args).assert_ok();
    }
    sandbox.gc();
    assert_no_plans_left(sandbox, "final gc");
    let packs = sandbox.objects("packs");
    assert!(
        packs.is_empty(),
        "{} packs survive a gc of a repository without snapshots: {:?}",
        packs.len(),
        &packs[..packs.len().min(5)]
    );
    sandbox.assert_verifies();
}

#[test]
fn killed_backups_never_damage_committed_snapshots() {
    let sandbox = Sandbox::new();
    let shared = Image::random(1, 4 << 20);
    let base = Image::random(2, 8 << 20);
    let committed = vec![
        Committed { id: sandbox.backup(&shared, "shared"), image: shared.clone() },
        Committed { id: sandbox.backup(&base, "base"), image: base },
    ];
    // Each victim's first 4 MiB deduplicate against `shared`; the rest is new.
    let victim_of = |round: u64| shared.concat(&Image::random(100 + round, 12 << 20));
    let path = sandbox.path("victim.img");
    victim_of(1_000).write(&path);
    let calibration = sandbox.cmd([os("image"), os("backup"), path.as_os_str(), os("--name"), os("calibration")]);
    let mut phases = Phases::measure(&sandbox, calibration, "leases");
    sandbox.drydock(["image", "forget", "calibration"]).assert_ok();
    sandbox.gc();

    let mut rng = Rng::new(0xB4C4_0001);
    let (mut mid_operation, mut left_packs, mut completed) = (0, 0, 0);
    for round in 0..BACKUP_KILLS {
        let victim = victim_of(round);
        victim.write(&path);
        // Some kills while the repository is being opened, most while data is being written,
        // a few too late.
        let at = match round % 3 {
            0 => KillAt::AfterStart(up_to(&mut rng, phases.before_trigger * 6 / 5)),
            _ => KillAt::AfterNew { kind: "leases", delay: up_to(&mut rng, phases.after_trigger * 23 / 20) },
        };
        let packs_before = sandbox.objects("packs").len();
        let name = format!("victim-{round}");
        let args = [os("image"), os("backup"), path.as_os_str(), os("--name"), os(&name)];
        let killed = run_and_kill(&sandbox, sandbox.cmd(args), at);
        let context = format!("round {round}, kill {at:?}, by signal: {}", killed.by_signal);

        let listed = sandbox.list();
        let old = ids(&committed);
        let listed_ids: BTreeSet<String> = listed.iter().map(|s| s.id.clone()).collect();
        assert!(old.is_subset(&listed_ids), "{context}: a committed snapshot disappeared: {listed:?}");
        let new: Vec<_> = listed.iter().filter(|s| !old.contains(&s.id)).collect();
        assert!(new.len() <= 1, "{context}: more than one new snapshot: {new:?}");
        if !killed.by_signal {
            assert_eq!(new.len(), 1, "{context}: the backup succeeded but its snapshot is not listed");
            completed += 1;
            // It ran faster than measured (the machine is less loaded now): aim the next kills
            // at the pace it runs at now, so that they land while a backup runs.
            if let (KillAt::AfterNew { .. }, Some(took)) = (at, killed.trigger_to_exit) {
                phases.after_trigger = took;
            }
        } else if killed.triggered {
            mid_operation += 1;
            left_packs += (new.is_empty() && sandbox.objects("packs").len() > packs_before) as u32;
        }
        if let Some(snapshot) = new.first() {
            assert_eq!(
                (snapshot.name.as_str(), snapshot.size_bytes),
                (name.as_str(), victim.bytes.len() as u64),
                "{context}"
            );
            sandbox.assert_restores(&snapshot.id, &victim.bytes);
        }
        assert_all_restore(&sandbox, &committed);
        sandbox.assert_verifies();

        // A finished victim is forgotten again, so the repository stays small; gc then has both
        // its data and whatever a killed run left to clean up.
        if let Some(snapshot) = new.first() {
            sandbox.drydock(["image", "forget", &snapshot.id]).assert_ok();
        }
        sandbox.gc();
        assert_no_plans_left(&sandbox, &context);
        sandbox.assert_verifies();
    }
    eprintln!(
        "backup kills: {mid_operation} while a backup ran ({left_packs} left stored packs behind), {completed} completed \
         first (work phase {:?})",
        phases.after_trigger
    );
    assert!(mid_operation >= 5, "only {mid_operation} kills landed while a backup ran: the test is not testing");
    assert!(left_packs >= 1, "no kill landed after a backup had stored a pack: the test is not testing");
    assert_all_restore(&sandbox, &committed);
    assert_everything_collectable(&sandbox);
}

#[test]
fn killed_forget_removes_a_snapshot_wholly_or_not_at_all() {
    let sandbox = Sandbox::new();
    let base = Image::random(3, 4 << 20);
    let committed = vec![Committed { id: sandbox.backup(&base, "base"), image: base }];
    sandbox.backup(&Image::mixed(199, 2 << 20), "calibration");
    let started = Instant::now();
    sandbox.drydock(["image", "forget", "calibration"]).assert_ok();
    let duration = started.elapsed();

    let mut rng = Rng::new(0xF0E6_0002);
    let (mut gone, mut kept) = (0, 0);
    for round in 0..FORGET_KILLS {
        let image = Image::mixed(200 + round, 2 << 20);
        let name = format!("forget-me-{round}");
        let id = sandbox.backup(&image, &name);
        // Forget deletes at its very end, so the delays reach well past a whole run.
        let at = KillAt::AfterStart(up_to(&mut rng, duration * 2));
        let killed = run_and_kill(&sandbox, sandbox.cmd(["image", "forget", &name]), at);
        let context = format!("round {round}, kill {at:?}, by signal: {}", killed.by_signal);

        let listed = sandbox.list_ids();
        assert!(ids(&committed).is_subset(&listed), "{context}: another snapshot disappeared");
        if listed.contains(&id) {
            assert!(killed.by_signal, "{context}: forget succeeded but the snapshot is still listed");
            sandbox.assert_restores(&name, &image.bytes);
            kept += 1;
        } else {
            let restore = sandbox.drydock(["image", "restore", &id, "-"]);
            assert!(!restore.success(), "{context}: a forgotten snapshot still restores");
            gone += 1;
        }
        assert_all_restore(&sandbox, &committed);
        sandbox.assert_verifies();
        if listed.contains(&id) {
            sandbox.drydock(["image", "forget", &id]).assert_ok();
        }
    }
    eprintln!("forget kills: {gone} forgotten, {kept} kept (run: {duration:?})");
    sandbox.gc();
    sandbox.assert_verifies();
    assert_all_restore(&sandbox, &committed);
}

#[test]
fn killed_gc_never_loses_a_live_snapshot() {
    let sandbox = Sandbox::new();
    let mut committed = Vec::new();
    for (seed, name) in [(4, "keep-a"), (5, "keep-b")] {
        let image = Image::random(seed, 4 << 20);
        committed.push(Committed { id: sandbox.backup(&image, name), image });
    }
    // Each round: `whole` is forgotten and `part` keeps one chunk in three of it, so gc both
    // deletes and repacks; the previous round's `part` is forgotten too.
    let make_garbage = |round: u64, previous: Option<String>| -> Committed {
        let whole = Image::random(300 + round, 4 << 20);
        let whole_id = sandbox.backup(&whole, &format!("whole-{round}"));
        let part = whole.rewrite_chunks(400 + round, 3);
        let part_id = sandbox.backup(&part, &format!("part-{round}"));
        let mut forget = vec!["image".to_string(), "forget".to_string(), whole_id];
        forget.extend(previous);
        sandbox.drydock(&forget).assert_ok();
        Committed { id: part_id, image: part }
    };
    let mut previous = make_garbage(1_000, None);
    let phases = Phases::measure(&sandbox, sandbox.cmd(["repo", "gc"]), "leases");

    let mut rng = Rng::new(0x6C_0003);
    let (mut mid_operation, mut at_plan) = (0, 0);
    for round in 0..GC_KILLS {
        let live = make_garbage(round, Some(previous.id.clone()));
        let at = match round % 3 {
            0 => KillAt::AfterStart(up_to(&mut rng, phases.before_trigger * 6 / 5)),
            1 => KillAt::AfterNew { kind: "leases", delay: up_to(&mut rng, phases.after_trigger * 23 / 20) },
            _ => KillAt::AfterNew { kind: "plans", delay: Duration::ZERO },
        };
        let killed = run_and_kill(&sandbox, sandbox.cmd(["repo", "gc"]), at);
        let context = format!("round {round}, kill {at:?}, by signal: {}", killed.by_signal);
        if killed.by_signal && killed.triggered {
            mid_operation += 1;
            at_plan += matches!(at, KillAt::AfterNew { kind: "plans", .. }) as u32;
        }

        let expected: BTreeSet<String> = ids(&committed).into_iter().chain([live.id.clone()]).collect();
        assert_eq!(sandbox.list_ids(), expected, "{context}");
        assert_all_restore(&sandbox, &committed);
        sandbox.assert_restores(&live.id, &live.image.bytes);
        sandbox.assert_verifies();

        // The next gc finishes what the killed one started.
        let report = sandbox.gc();
        assert_no_plans_left(&sandbox, &format!("{context}, follow-up gc {report}"));
        sandbox.assert_verifies();
        sandbox.assert_restores(&live.id, &live.image.bytes);
        previous = live;
    }
    eprintln!(
        "gc kills: {mid_operation} mid-operation, {at_plan} right after a plan appeared (work phase {:?})",
        phases.after_trigger
    );
    assert!(mid_operation >= 3, "only {mid_operation} kills landed while gc ran: the test is not testing");
    assert_all_restore(&sandbox, &committed);
    assert_everything_collectable(&sandbox);
}

/// SIGTERM is not SIGKILL: the command stops at a safe point, says so in one line, and leaves
/// neither a partial file nor its lease behind.
#[test]
fn terminated_restore_and_backup_stop_cleanly() {
    let sandbox = Sandbox::new();
    let image = Image::random(6, 48 << 20);
    let id = sandbox.backup(&image, "big");

    let target = sandbox.path("restored.img");
    let dir = target.parent().unwrap().to_path_buf();
    let mut restore = sandbox.cmd([os("image"), os("restore"), os(&id), target.as_os_str()]).spawn();
    let started = wait_for(START_TIMEOUT, || !partial_files(&dir).is_empty());
    assert!(started, "the restore never created its partial file");
    terminate(&mut restore);
    restore.finish().assert_clean_failure(&["cancelled"]);
    assert!(!target.exists(), "a cancelled restore left its target");
    assert!(partial_files(&dir).is_empty(), "a cancelled restore left its partial file");
    assert!(sandbox.objects("leases").is_empty(), "a cancelled restore left its lease");

    let other = Image::random(7, 48 << 20);
    let path = sandbox.path("other.img");
    other.write(&path);
    let mut backup = sandbox.cmd([os("image"), os("backup"), path.as_os_str()]).spawn();
    assert!(wait_for(START_TIMEOUT, || !sandbox.objects("leases").is_empty()), "the backup never took its lease");
    terminate(&mut backup);
    backup.finish().assert_clean_failure(&["cancelled"]);
    assert_eq!(sandbox.list_ids(), [id.clone()].into(), "a cancelled backup is listed");
    assert!(sandbox.objects("leases").is_empty(), "a cancelled backup left its lease");
    sandbox.assert_verifies();
    sandbox.assert_restores(&id, &image.bytes);
}

fn terminate(running: &mut common::Running) {
    let pid = libc::pid_t::try_from(running.pid()).expect("pid fits");
    // SAFETY: sends a signal to our own child, which has not been reaped yet.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0, "kill(SIGTERM) failed");
}
