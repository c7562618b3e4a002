//! Garbage collection: forgotten data comes back as space, and no chunk a committed snapshot
//! references is ever deleted, even while backups and restores run (docs/concurrency.md).

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use drydock_engine::forget::forget;
use drydock_engine::gc::{GcReport, gc};
use drydock_engine::id::{ChunkId, PackId, SnapshotId};
use drydock_engine::lease::Lease;
use drydock_engine::snapshot::Manifest;
use drydock_engine::{CancelToken, InitOptions, NoProgress, Repository};
use drydock_storage::{Fault, FaultPlan, Faulty, MemoryStorage, ObjectInfo, ObjectKey, Op, Storage};

fn run_gc(repo: &Repository) -> GcReport {
    gc(repo, &NoProgress, &CancelToken::new()).unwrap_or_else(|e| panic!("gc failed: {e}"))
}

fn assert_gc_did_nothing(report: &GcReport) {
    assert_eq!(format!("{report:?}"), format!("{:?}", GcReport::default()), "gc had nothing to do");
}

/// What a backup in flight holds: gc must not delete anything it may still reference.
fn writer_lease(repo: &Repository) -> Lease {
    Lease::acquire(repo.storage().clone(), "backup", repo.config().lease_ttl_secs).unwrap()
}

fn stored_packs(repo: &Repository) -> HashSet<PackId> {
    repo.list_packs().unwrap().into_iter().map(|(id, _)| id).collect()
}

/// The packs a snapshot's chunks are read from.
fn packs_of(repo: &Repository, id: &SnapshotId) -> HashSet<PackId> {
    let manifest = repo.load_snapshot(id).unwrap();
    let index = repo.load_index().unwrap();
    let locate = |chunk: &ChunkId| index.pack_id(index.get(chunk).expect("every chunk is indexed"));
    manifest.chunks.iter().filter(|c| !c.is_zero()).map(locate).collect()
}

/// Two unrelated images backed up as `a` and `b`: they share no chunk, so no pack.
struct TwoSnapshots {
    dir: tempfile::TempDir,
    storage: Arc<dyn Storage>,
    repo: Repository,
    image_a: PathBuf,
    image_b: PathBuf,
    a: SnapshotId,
    b: SnapshotId,
}

fn two_snapshots(storage: Arc<dyn Storage>, options: InitOptions) -> TwoSnapshots {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(storage.clone(), options).unwrap();
    let image_a = write_image(dir.path(), "a.img", 1);
    let image_b = write_image(dir.path(), "b.img", 100);
    let a = backup_path(&repo, &image_a, "a").id;
    let b = backup_path(&repo, &image_b, "b").id;
    assert!(packs_of(&repo, &a).is_disjoint(&packs_of(&repo, &b)), "fixture: a and b must not share packs");
    TwoSnapshots { dir, storage, repo, image_a, image_b, a, b }
}

fn memory() -> Arc<dyn Storage> {
    Arc::new(MemoryStorage::new())
}

#[test]
fn forget_then_gc_frees_the_space_and_keeps_the_other_snapshot_intact() {
    let t = two_snapshots(memory(), options());
    let a_packs = packs_of(&t.repo, &t.a);
    let bytes_before = pack_bytes(t.storage.as_ref());

    forget(&t.repo, &[t.a]).unwrap();
    let report = run_gc(&t.repo);

    assert_eq!((report.plans_swept, report.plans_waiting), (1, 0), "{report:?}");
    assert_eq!(report.packs_deleted, a_packs.len(), "{report:?}");
    assert_eq!(report.packs_repacked, 0, "b's packs are full of live data: {report:?}");
    assert!(stored_packs(&t.repo).is_disjoint(&a_packs));
    let bytes_after = pack_bytes(t.storage.as_ref());
    assert!(bytes_after < bytes_before);
    assert_eq!(bytes_before - bytes_after, report.bytes_freed);
    assert_eq!(restore_bytes(&t.repo, &t.b), std::fs::read(&t.image_b).unwrap());
    assert_verify_clean(&t.repo);
    assert_eq!(count_under(t.storage.as_ref(), "plans/"), 0);
    assert_eq!(count_under(t.storage.as_ref(), "leases/"), 0);
}

/// A cancelled gc stops before deleting anything, holds nothing afterwards, and the next gc
/// does the work.
#[test]
fn cancelled_gc_deletes_nothing_and_the_next_one_finishes() {
    let t = two_snapshots(memory(), options());
    forget(&t.repo, &[t.a]).unwrap();
    let packs_before = stored_packs(&t.repo);
    let cancelled = CancelToken::new();
    cancelled.cancel();
    let error = gc(&t.repo, &NoProgress, &cancelled).unwrap_err();
    assert!(matches!(error, drydock_engine::Error::Cancelled), "{error}");
    assert_eq!(stored_packs(&t.repo), packs_before);
    assert!(t.storage.list("leases/").unwrap().is_empty(), "the cancelled gc left its lease");
    let report = run_gc(&t.repo);
    assert!(report.packs_deleted > 0, "{report:?}");
}

#[test]
fn gc_with_nothing_to_collect_changes_nothing() {
    let t = two_snapshots(memory(), options());
    // A second snapshot of a changed image shares most chunks with the first: still no garbage.
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new().write(true).open(&t.image_a).unwrap().write_all_at(&[7u8; 5000], 10_000).unwrap();
    backup_path(&t.repo, &t.image_a, "a");
    let before = objects(t.storage.as_ref());

    assert_gc_did_nothing(&run_gc(&t.repo));
    assert_eq!(objects(t.storage.as_ref()), before);
    assert_gc_did_nothing(&run_gc(&t.repo));
    assert_eq!(objects(t.storage.as_ref()), before);
}

/// Chunks that compress to a few bytes (runs of 0xff, repeated filler: common in disk images)
/// make a pack that is mostly pack header. All of it is live, so gc must leave it alone; a
/// "repacked" copy would be just as small, and every later gc would rewrite it again.
#[test]
fn gc_leaves_a_pack_of_tiny_live_blobs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, repo) = memory_repo();
    let image: Vec<u8> = (1..=4u8).flat_map(|fill| vec![fill; CHUNK_BYTES]).collect();
    let snapshot = backup_bytes(&repo, dir.path(), "filler", &image);
    let before = objects(storage.as_ref());

    let report = run_gc(&repo);
    assert_gc_did_nothing(&report);
    assert_eq!(objects(storage.as_ref()), before);
    assert_eq!(restore_bytes(&repo, &snapshot.id), image);
}

#[test]
fn sparse_pack_is_repacked_and_its_live_chunk_survives() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, repo) = memory_repo();
    // 16 incompressible chunks fill one pack (the target is 1 MiB); a one-chunk image that
    // repeats the first of them shares that pack and keeps one sixteenth of it alive.
    let big = pattern(16 * CHUNK_BYTES, 7, false);
    let big_snapshot = backup_bytes(&repo, dir.path(), "big", &big);
    let small = big[..CHUNK_BYTES].to_vec();
    let small_snapshot = backup_bytes(&repo, dir.path(), "small", &small);
    assert_eq!(small_snapshot.meta.chunks_new, 0, "the small image deduplicates against the big one");
    let shared_pack = packs_of(&repo, &small_snapshot.id);
    assert_eq!(shared_pack.len(), 1);

    forget(&repo, &[big_snapshot.id]).unwrap();
    let report = run_gc(&repo);

    assert!(report.packs_repacked >= 1, "{report:?}");
    assert!(stored_packs(&repo).is_disjoint(&shared_pack), "the sparse pack itself is deleted: {report:?}");
    assert!(pack_bytes(storage.as_ref()) < 2 * CHUNK_BYTES as u64, "only the live chunk is left");
    assert_eq!(restore_bytes(&repo, &small_snapshot.id), small);
    assert_verify_clean(&repo);
    // The new pack is all live data: the next gc has nothing to do.
    let before = objects(storage.as_ref());
    assert_gc_did_nothing(&run_gc(&repo));
    assert_eq!(objects(storage.as_ref()), before);
}

#[test]
fn gc_waits_for_a_live_writer_before_deleting() {
    let t = two_snapshots(memory(), options());
    let a_packs = packs_of(&t.repo, &t.a);
    forget(&t.repo, &[t.a]).unwrap();

    let writer = writer_lease(&t.repo);
    let first = run_gc(&t.repo);
    assert_eq!((first.plans_waiting, first.plans_swept, first.packs_deleted), (1, 0, 0), "{first:?}");
    let plans = t.storage.list("plans/").unwrap();
    assert_eq!(plans.len(), 1);
    // The plan is armed with exactly our writer's lease (the only lease left: gc's own is gone).
    let leases: Vec<String> =
        t.storage.list("leases/").unwrap().iter().map(|info| info.key.file_name().to_string()).collect();
    assert_eq!(leases.len(), 1);
    let plan: serde_json::Value = serde_json::from_slice(&t.storage.get(&plans[0].key).unwrap()[16..]).unwrap();
    assert_eq!(plan["leases"], serde_json::json!(leases), "{plan}");
    assert_eq!(plan["packs"].as_array().map(Vec::len), Some(a_packs.len()), "{plan}");
    assert!(a_packs.is_subset(&stored_packs(&t.repo)), "doomed packs stay while the writer may use them");
    // Another run while the writer lives neither sweeps nor plans the same packs twice.
    let again = run_gc(&t.repo);
    assert_eq!((again.plans_waiting, again.plans_swept, again.packs_deleted), (1, 0, 0), "{again:?}");
    assert_eq!(count_under(t.storage.as_ref(), "plans/"), 1);

    writer.release().unwrap();
    let second = run_gc(&t.repo);
    assert_eq!((second.plans_waiting, second.plans_swept), (0, 1), "{second:?}");
    assert_eq!(second.packs_deleted, a_packs.len());
    assert!(stored_packs(&t.repo).is_disjoint(&a_packs));
    assert_eq!(count_under(t.storage.as_ref(), "plans/"), 0);
    assert_eq!(restore_bytes(&t.repo, &t.b), std::fs::read(&t.image_b).unwrap());
    assert_verify_clean(&t.repo);
}

/// The race gc must win: a writer loaded the index before the plan existed, deduplicated
/// against chunks that were garbage then, and commits after the plan was armed. Its manifest
/// is written by hand here, as that writer would have written it.
#[test]
fn snapshot_committed_by_a_writer_gc_waited_for_keeps_its_packs_alive() {
    // Small packs, so a's chunks spread over several and the writer can need just one of them.
    let t = two_snapshots(memory(), InitOptions { pack_size_bytes_target: 256 << 10, ..options() });
    let manifest_a = t.repo.load_snapshot(&t.a).unwrap();
    let a_packs = packs_of(&t.repo, &t.a);
    assert!(a_packs.len() >= 3, "fixture: a spans several packs");
    let index = t.repo.load_index().unwrap();
    let needed_pack = *a_packs.iter().min().unwrap();
    forget(&t.repo, &[t.a]).unwrap();

    let writer = writer_lease(&t.repo);
    assert_eq!(run_gc(&t.repo).plans_waiting, 1);

    // The writer's image: a's chunks that live in `needed_pack`, zeros elsewhere.
    let in_needed_pack = |c: &ChunkId| !c.is_zero() && index.pack_id(index.get(c).unwrap()) == needed_pack;
    let mut manifest = Manifest { chunks: manifest_a.chunks.clone(), meta: manifest_a.meta.clone() };
    manifest.meta.name = "late".into();
    let mut expected = std::fs::read(&t.image_a).unwrap();
    let ranges: Vec<(u64, u64)> = (0..manifest.chunks.len()).map(|position| manifest.chunk_range(position)).collect();
    for (chunk, (start, len)) in manifest.chunks.iter_mut().zip(ranges) {
        if !in_needed_pack(chunk) {
            *chunk = ChunkId::ZERO;
            expected[start as usize..(start + len) as usize].fill(0);
        }
    }
    let (late, bytes) = manifest.encode(t.repo.keys());
    t.storage.put(&ObjectKey::new(format!("snapshots/{late}")).unwrap(), &bytes).unwrap();
    writer.release().unwrap();

    let report = run_gc(&t.repo);
    assert_eq!(report.plans_swept, 1, "{report:?}");
    assert_eq!(report.packs_kept_alive, 1, "{report:?}");
    assert_eq!(report.packs_deleted, a_packs.len() - 1, "{report:?}");
    assert!(stored_packs(&t.repo).contains(&needed_pack));
    assert_eq!(restore_bytes(&t.repo, &late), expected);
    assert_eq!(restore_bytes(&t.repo, &t.b), std::fs::read(&t.image_b).unwrap());
    assert_verify_clean(&t.repo);
}

#[test]
fn backup_started_after_a_plan_stores_its_own_copy_of_doomed_chunks() {
    let t = two_snapshots(memory(), options());
    let chunks_new_a = t.repo.load_snapshot(&t.a).unwrap().meta.chunks_new;
    let a_packs = packs_of(&t.repo, &t.a);
    forget(&t.repo, &[t.a]).unwrap();
    let writer = writer_lease(&t.repo);
    assert_eq!(run_gc(&t.repo).plans_waiting, 1);

    // Deduplicating against a pack the plan will delete would lose data once the sweep runs.
    let again = backup_path(&t.repo, &t.image_a, "a");
    assert_eq!(again.meta.chunks_new, chunks_new_a, "no chunk of a doomed pack is reused");
    let outside_the_plan: HashSet<ChunkId> = t
        .repo
        .load_index_files()
        .unwrap()
        .into_iter()
        .flat_map(|(_, file)| file.packs)
        .filter(|pack| !a_packs.contains(&pack.id))
        .flat_map(|pack| pack.blobs.into_iter().map(|blob| blob.id))
        .collect();
    let chunks = t.repo.load_snapshot(&again.id).unwrap().chunks;
    assert!(chunks.iter().all(|c| c.is_zero() || outside_the_plan.contains(c)), "every chunk has a copy of its own");

    writer.release().unwrap();
    let report = run_gc(&t.repo);
    assert_eq!((report.plans_swept, report.packs_deleted, report.packs_kept_alive), (1, a_packs.len(), 0));
    assert_eq!(restore_bytes(&t.repo, &again.id), std::fs::read(&t.image_a).unwrap());
    assert_verify_clean(&t.repo);
}

/// A backup that dies before its manifest is stored leaves packs nobody references: torn ones
/// (no index), indexed-but-unreferenced ones (no manifest). gc removes them all.
#[test]
fn packs_of_a_backup_that_died_before_committing_are_collected() {
    let cases = [("packs/", Fault::TornWrite), ("index/", Fault::Permanent), ("snapshots/", Fault::Permanent)];
    for (prefix, fault) in cases {
        let inner = memory();
        let t = two_snapshots(inner.clone(), options());
        forget(&t.repo, &[t.a]).unwrap();
        run_gc(&t.repo);
        let packs_before = stored_packs(&t.repo);

        let plan = Arc::new(FaultPlan::new().fail(Op::Put, fault).on_prefix(prefix));
        let faulty: Arc<dyn Storage> = Arc::new(Faulty::new(inner.clone(), plan.clone()));
        let dying = Repository::open(faulty, Some(PASSPHRASE)).unwrap();
        let error = try_backup_path(&dying, &t.image_a, "a").expect_err(prefix);
        assert!(plan.injected_count() >= 1);
        assert!(error.to_string().contains(prefix), "{prefix}: {error}");
        assert_eq!(t.repo.snapshot_ids().unwrap(), [t.b], "{prefix}: no snapshot appears");
        assert_eq!(count_under(inner.as_ref(), "leases/"), 0, "{prefix}: the failed backup's lease is gone");
        let leftovers: HashSet<PackId> = stored_packs(&t.repo).difference(&packs_before).copied().collect();
        assert!(!leftovers.is_empty(), "{prefix}: the dead backup stored packs");

        let report = run_gc(&t.repo);
        assert_eq!(report.packs_deleted, leftovers.len(), "{prefix}: {report:?}");
        assert_eq!(stored_packs(&t.repo), packs_before, "{prefix}");
        assert_eq!(restore_bytes(&t.repo, &t.b), std::fs::read(&t.image_b).unwrap());
        assert_verify_clean(&t.repo);
        drop(t.dir);
    }
}

/// A gc killed between writing its plan and arming it (listing the leases into it) leaves an
/// unarmed plan. No process is left to arm it, so a later gc must finish that work, or those
/// packs are neither deleted nor deduplicated against, for ever.
#[test]
fn plan_left_unarmed_by_a_killed_gc_is_finished_by_a_later_gc() {
    let inner = memory();
    let t = two_snapshots(inner.clone(), options());
    let a_packs = packs_of(&t.repo, &t.a);
    forget(&t.repo, &[t.a]).unwrap();

    // The first put of the plan succeeds, the second (arming it) fails: the gc stops there.
    let plan = Arc::new(FaultPlan::new().fail(Op::Put, Fault::Permanent).on_prefix("plans/").after(1));
    let dying = Repository::open(Arc::new(Faulty::new(inner.clone(), plan.clone())), Some(PASSPHRASE)).unwrap();
    gc(&dying, &NoProgress, &CancelToken::new()).expect_err("the gc dies before arming its plan");
    assert_eq!(plan.injected_count(), 1);
    assert_eq!(count_under(inner.as_ref(), "plans/"), 1);

    // No writer runs at all now.
    run_gc(&t.repo);
    run_gc(&t.repo);
    assert_eq!(count_under(inner.as_ref(), "plans/"), 0, "the unarmed plan is still waiting");
    assert!(stored_packs(&t.repo).is_disjoint(&a_packs));
    assert_eq!(restore_bytes(&t.repo, &t.b), std::fs::read(&t.image_b).unwrap());
}

/// Runs `hook` once, on the first `op` (`Get` or `GetRange`) under `prefix` and before that
/// read reaches storage, while every other such read waits for it: puts another operation
/// exactly between what a reader has learned and what it reads next.
struct Interleave {
    inner: Arc<dyn Storage>,
    op: Op,
    prefix: &'static str,
    hook: Mutex<Option<Hook>>,
}

type Hook = Box<dyn FnOnce() + Send>;
/// Where the sweep run by a hook leaves its report.
type SweepSlot = Arc<Mutex<Option<GcReport>>>;

impl Interleave {
    fn before(&self, op: Op, key: &ObjectKey) {
        if op == self.op && key.as_str().starts_with(self.prefix) {
            let mut hook = self.hook.lock().unwrap();
            if let Some(hook) = hook.take() {
                hook();
            }
        }
    }
}

impl std::fmt::Debug for Interleave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interleave").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl Storage for Interleave {
    fn put(&self, key: &ObjectKey, data: &[u8]) -> drydock_storage::Result<()> {
        self.inner.put(key, data)
    }
    fn get(&self, key: &ObjectKey) -> drydock_storage::Result<Vec<u8>> {
        self.before(Op::Get, key);
        self.inner.get(key)
    }
    fn get_range(&self, key: &ObjectKey, offset: u64, length: u64) -> drydock_storage::Result<Vec<u8>> {
        self.before(Op::GetRange, key);
        self.inner.get_range(key, offset, length)
    }
    fn list(&self, prefix: &str) -> drydock_storage::Result<Vec<ObjectInfo>> {
        self.inner.list(prefix)
    }
    fn delete(&self, key: &ObjectKey) -> drydock_storage::Result<()> {
        self.inner.delete(key)
    }
    fn stat(&self, key: &ObjectKey) -> drydock_storage::Result<ObjectInfo> {
        self.inner.stat(key)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// A repository handle on `inner` whose first `op` read under `prefix` is preceded by `writer`
/// ending and a gc sweeping: the sweep runs exactly between what a reader has learned and what
/// it reads next. The sweep's report lands in the returned slot.
fn reader_with_sweep_before(
    inner: &Arc<dyn Storage>,
    writer: Lease,
    op: Op,
    prefix: &'static str,
) -> (Repository, SweepSlot) {
    let sweep = SweepSlot::default();
    let (slot, collector) = (sweep.clone(), Repository::open(inner.clone(), Some(PASSPHRASE)).unwrap());
    let hook: Hook = Box::new(move || {
        writer.release().unwrap();
        *slot.lock().unwrap() = Some(gc(&collector, &NoProgress, &CancelToken::new()).unwrap());
    });
    let interleave = Arc::new(Interleave { inner: inner.clone(), op, prefix, hook: Mutex::new(Some(hook)) });
    (Repository::open(interleave, Some(PASSPHRASE)).unwrap(), sweep)
}

fn swept(slot: &Mutex<Option<GcReport>>) -> GcReport {
    let report = slot.lock().unwrap().take().expect("the sweep ran during the read");
    assert_eq!(report.plans_swept, 1, "{report:?}");
    report
}

/// A reader (restore, verify) that starts while an armed plan waits is not among the plan's
/// writers, so the sweep may run under it. The sweep rewrites index files (the new one first,
/// then the old one deleted), so a reader that listed the old file may find it gone when it
/// reads it; the chunks it lists are still stored, in the new file's packs.
///
/// Sets up one index file listing two packs, the first alive (snapshot `small`), the second
/// garbage, and an armed plan waiting for a writer; runs `reader` with the sweep happening
/// right before its first read of an index file. Returns the reader's result and `small`.
fn across_an_index_rewrite<R>(reader: impl FnOnce(&Repository, &SnapshotId) -> R) -> (R, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let inner = memory();
    let repo = Repository::init(inner.clone(), options()).unwrap();
    let big = pattern(32 * CHUNK_BYTES, 11, false);
    let big_snapshot = backup_bytes(&repo, dir.path(), "big", &big);
    let files = repo.load_index_files().unwrap();
    assert_eq!((files.len(), files[0].1.packs.len()), (1, 2), "fixture: one index file with two packs");
    let live: HashSet<ChunkId> = files[0].1.packs[0].blobs.iter().map(|b| b.id).collect();
    let small: Vec<u8> =
        big.chunks(CHUNK_BYTES).filter(|c| live.contains(&repo.keys().chunk_id(c))).flatten().copied().collect();
    let small_snapshot = backup_bytes(&repo, dir.path(), "small", &small);
    assert_eq!(small_snapshot.meta.chunks_new, 0);
    forget(&repo, &[big_snapshot.id]).unwrap();
    let writer = writer_lease(&repo);
    assert_eq!(run_gc(&repo).plans_waiting, 1);

    let (reader_repo, sweep) = reader_with_sweep_before(&inner, writer, Op::Get, "index/");
    let result = reader(&reader_repo, &small_snapshot.id);
    assert_eq!(swept(&sweep).index_files_rewritten, 1);
    (result, small)
}

#[test]
fn restore_running_across_an_index_rewrite_still_finds_its_chunks() {
    let (restored, small) = across_an_index_rewrite(try_restore_bytes);
    let restored = restored.unwrap_or_else(|e| panic!("restore across the sweep failed: {e}"));
    assert!(restored == small, "restore across the sweep returned wrong bytes");
}

#[test]
fn verify_running_across_an_index_rewrite_reports_no_false_damage() {
    let (report, _) = across_an_index_rewrite(|repo, _| verify_all(repo));
    assert!(report.problems.is_empty(), "verify across the sweep found problems: {:#?}", report.problems);
}

/// Repacking leaves two copies of each moved chunk until the sweep: the new one, and the one in
/// the doomed sparse pack. A reader that starts while the plan waits is not in the plan's lease
/// set, so the sweep may delete the sparse pack under it.
struct RepackPlanWaiting {
    inner: Arc<dyn Storage>,
    repo: Repository,
    writer: Lease,
    small: Vec<u8>,
    small_id: SnapshotId,
    sparse_pack: PackId,
}

fn repack_plan_waiting() -> RepackPlanWaiting {
    let dir = tempfile::tempdir().unwrap();
    let inner = memory();
    let repo = Repository::init(inner.clone(), options()).unwrap();
    let big = pattern(16 * CHUNK_BYTES, 21, false);
    let big_snapshot = backup_bytes(&repo, dir.path(), "big", &big);
    let small = big[..CHUNK_BYTES].to_vec();
    let small_id = backup_bytes(&repo, dir.path(), "small", &small).id;
    let sparse_pack = *packs_of(&repo, &small_id).iter().next().unwrap();
    forget(&repo, &[big_snapshot.id]).unwrap();
    let writer = writer_lease(&repo);
    let first = run_gc(&repo);
    assert_eq!((first.packs_repacked, first.plans_waiting), (1, 1), "{first:?}");
    RepackPlanWaiting { inner, repo, writer, small, small_id, sparse_pack }
}

/// A restore must not read a chunk from a pack a plan will delete when another copy exists.
/// Which copy an index lookup finds depends on the order of index file names, so the test
/// arranges the unlucky order (re-encoding the old index file under a new name, as gc itself
/// does) rather than leave it to chance.
#[test]
fn restore_started_while_a_repack_plan_waits_never_reads_the_doomed_copy() {
    let t = repack_plan_waiting();
    let chunk = t.repo.keys().chunk_id(&t.small);
    for attempt in 0.. {
        let index = t.repo.load_index().unwrap();
        let found = index.pack_id(index.get(&chunk).unwrap());
        if found == t.sparse_pack {
            break;
        }
        assert!(attempt < 64, "could not order the index files");
        // New names for both files, so each try puts them in either order with even odds (a new
        // name for one alone rarely sorts before the other's when that one's is low).
        for (old_id, file) in t.repo.load_index_files().unwrap() {
            if file.packs.iter().any(|p| p.id == t.sparse_pack || p.id == found) {
                let (new_id, bytes) = file.encode(t.repo.keys());
                t.inner.put(&ObjectKey::new(format!("index/{new_id}")).unwrap(), &bytes).unwrap();
                t.inner.delete(&ObjectKey::new(format!("index/{old_id}")).unwrap()).unwrap();
            }
        }
    }

    // The restore has loaded the index when the writer ends and gc sweeps the plan.
    let (reader, sweep) = reader_with_sweep_before(&t.inner, t.writer, Op::GetRange, "packs/");
    let restored = try_restore_bytes(&reader, &t.small_id);
    assert_eq!(swept(&sweep).packs_deleted, 1);
    let restored = restored.unwrap_or_else(|e| panic!("restore across the sweep failed: {e}"));
    assert!(restored == t.small, "restore across the sweep returned wrong bytes");
}

/// Verify reads every indexed pack, the doomed sparse one too: a pack a plan deletes while
/// verify runs is garbage going away as planned, not damage to `small`.
#[test]
fn verify_started_while_a_repack_plan_waits_reports_no_false_damage() {
    let t = repack_plan_waiting();
    let (reader, sweep) = reader_with_sweep_before(&t.inner, t.writer, Op::Get, "packs/");
    let report = verify_all(&reader);
    assert_eq!(swept(&sweep).packs_deleted, 1);
    assert!(report.problems.is_empty(), "verify across the sweep found problems: {:#?}", report.problems);
}

/// The property everything else serves: while backups, forgets and gcs run at once, no chunk
/// of a committed snapshot is ever deleted. Images change a little every round, partly back to
/// contents of forgotten snapshots, so backups keep deduplicating against chunks gc has just
/// found to be garbage.
#[test]
fn concurrent_backups_forgets_and_gcs_never_lose_a_committed_chunk() {
    const ROUNDS: usize = 20;
    const IMAGES: usize = 3;
    /// Snapshots the collector leaves alone, newest first.
    const KEEP: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let (storage, repo) = local_repo(&dir.path().join("repo"), options());
    let images: Vec<PathBuf> =
        (0..IMAGES).map(|i| write_image(dir.path(), &format!("disk{i}.img"), 1000 + 10 * i as u64)).collect();
    // Committed and not forgotten, oldest first, with the hash of the image they were taken from.
    let live: Mutex<Vec<(SnapshotId, blake3::Hash)>> = Mutex::new(Vec::new());
    let writer_done = AtomicBool::new(false);
    let mut totals = GcReport::default();

    std::thread::scope(|scope| {
        scope.spawn(|| {
            use std::os::unix::fs::FileExt;
            // Set even if this thread panics, or the collector would loop for ever.
            let _done = SetOnDrop(&writer_done);
            for round in 0..ROUNDS {
                for (i, path) in images.iter().enumerate() {
                    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                    let chunk = |n: usize| (n * CHUNK_BYTES) as u64;
                    // Recurring content (every third round, shared by all images) and new content.
                    let recurring = pattern(CHUNK_BYTES, 500 + (round % 3) as u64, false);
                    file.write_all_at(&recurring, chunk(2 + (round + i) % 6)).unwrap();
                    let fresh = pattern(CHUNK_BYTES, 9000 + (round * IMAGES + i) as u64, true);
                    file.write_all_at(&fresh, chunk(13 + round % 6)).unwrap();
                    let expected = blake3::hash(&std::fs::read(path).unwrap());
                    let report = backup_path(&repo, path, &format!("disk{i}"));
                    live.lock().unwrap().push((report.id, expected));
                }
            }
        });
        scope.spawn(|| {
            // Its own handle, as another process would have.
            let collector = Repository::open(storage.clone(), Some(PASSPHRASE)).unwrap();
            while !writer_done.load(Ordering::SeqCst) {
                add(&mut totals, &run_gc(&collector));
                let old: Vec<SnapshotId> = {
                    let mut live = live.lock().unwrap();
                    let excess = live.len().saturating_sub(KEEP);
                    live.drain(..excess).map(|(id, _)| id).collect()
                };
                forget(&collector, &old).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        });
    });

    let live: Vec<_> = live.into_inner().unwrap();
    let check = |when: &str| {
        let existing: HashSet<SnapshotId> = repo.snapshot_ids().unwrap().into_iter().collect();
        assert_eq!(existing, live.iter().map(|(id, _)| *id).collect(), "{when}: exactly the kept snapshots exist");
        for (id, expected) in &live {
            let restored = try_restore_bytes(&repo, id).unwrap_or_else(|e| panic!("{when}: {e}"));
            assert_eq!(blake3::hash(&restored), *expected, "{when}: snapshot {} restores wrong bytes", id.short());
        }
        assert_verify_clean(&repo);
    };
    check("after the concurrent rounds");
    // Nothing runs now: the last plans are swept.
    add(&mut totals, &run_gc(&repo));
    add(&mut totals, &run_gc(&repo));
    check("after the final gc");
    assert_eq!(count_under(storage.as_ref(), "plans/"), 0);
    assert!(totals.packs_deleted > 0, "the test must make garbage: {totals:?}");
}

fn add(totals: &mut GcReport, report: &GcReport) {
    totals.plans_swept += report.plans_swept;
    totals.plans_waiting += report.plans_waiting;
    totals.packs_deleted += report.packs_deleted;
    totals.bytes_freed += report.bytes_freed;
    totals.index_files_rewritten += report.index_files_rewritten;
    totals.packs_repacked += report.packs_repacked;
    totals.packs_kept_alive += report.packs_kept_alive;
}

struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
