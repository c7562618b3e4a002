//! Usage: stored and exclusive bytes of groups of snapshots, checked against images whose chunks
//! are known, and against what gc actually frees.

mod common;

use common::*;
use drydock_engine::forget::forget;
use drydock_engine::gc::gc;
use drydock_engine::id::SnapshotId;
use drydock_engine::usage::{GroupUsage, repository_stored_bytes, usage};
use drydock_engine::{CancelToken, Error, NoProgress, Repository};

/// One chunk of an image: random (incompressible) data from a seed, or zeros.
#[derive(Clone, Copy)]
enum Block {
    Random(u64),
    Zero,
}

fn image(blocks: &[Block]) -> Vec<u8> {
    blocks
        .iter()
        .flat_map(|block| match *block {
            Block::Random(seed) => pattern(CHUNK_BYTES, seed, false),
            Block::Zero => vec![0; CHUNK_BYTES],
        })
        .collect()
}

/// How an incompressible chunk is stored: as it is, sealed.
fn blob_bytes(repo: &Repository) -> u64 {
    (CHUNK_BYTES + repo.keys().cipher.overhead()) as u64
}

fn group_usage(logical_chunks: u64, stored_blobs: u64, exclusive_blobs: u64, blob: u64) -> GroupUsage {
    GroupUsage {
        logical_bytes: logical_chunks * CHUNK_BYTES as u64,
        stored_bytes: stored_blobs * blob,
        exclusive_bytes: exclusive_blobs * blob,
    }
}

/// `a` and `b` are two days of one disk: `b` changed chunks 2 and 6. Both repeat chunk 0 at the
/// end and have a chunk of zeros. `c` is another disk that happens to hold `a`'s chunk 2.
struct Fixture {
    _dir: tempfile::TempDir,
    repo: Repository,
    a: SnapshotId,
    b: SnapshotId,
    c: SnapshotId,
}

fn fixture() -> Fixture {
    use Block::*;
    let dir = tempfile::tempdir().unwrap();
    let (_, repo) = local_repo(&dir.path().join("repo"), options());
    let a = [Random(1), Random(2), Random(3), Random(4), Zero, Random(5), Random(6), Random(1)];
    let mut b = a;
    (b[2], b[6]) = (Random(30), Random(60));
    let a = backup_bytes(&repo, dir.path(), "a", &image(&a)).id;
    let b = backup_bytes(&repo, dir.path(), "b", &image(&b)).id;
    let c = backup_bytes(&repo, dir.path(), "c", &image(&[Random(3)])).id;
    Fixture { _dir: dir, repo, a, b, c }
}

#[test]
fn shared_chunks_are_stored_once_and_belong_to_no_single_snapshot() {
    let t = fixture();
    let blob = blob_bytes(&t.repo);
    let groups = vec![vec![t.a], vec![t.b], vec![t.a, t.b], vec![t.c], vec![t.a, t.b, t.c], vec![]];

    let report = usage(&t.repo, &groups).unwrap();

    // a: chunks 1..6 (1 twice, zeros free); only 6 is a's alone, 3 is c's too.
    assert_eq!(report[0], group_usage(8, 6, 1, blob), "a");
    // b: 1, 2, 30, 4, 5, 60; its two changed chunks are its own.
    assert_eq!(report[1], group_usage(8, 6, 2, blob), "b");
    // a and b: eight distinct chunks, all theirs but 3.
    assert_eq!(report[2], group_usage(16, 8, 7, blob), "a and b");
    assert!(report[2].stored_bytes < report[0].stored_bytes + report[1].stored_bytes);
    assert_eq!(report[3], group_usage(1, 1, 0, blob), "c");
    assert_eq!(report[4], group_usage(17, 8, 8, blob), "everything");
    assert_eq!(report[5], GroupUsage::default(), "the empty group");
    assert_eq!(repository_stored_bytes(&t.repo).unwrap(), 8 * blob);
}

#[test]
fn a_snapshot_named_twice_in_a_group_counts_once() {
    let t = fixture();
    let twice = usage(&t.repo, &[vec![t.a, t.a]]).unwrap();
    let once = usage(&t.repo, &[vec![t.a]]).unwrap();
    assert_eq!(twice, once);
}

#[test]
fn forgetting_a_group_and_collecting_frees_exactly_its_exclusive_bytes() {
    let t = fixture();
    let exclusive = |ids: &[SnapshotId]| usage(&t.repo, &[ids.to_vec()]).unwrap()[0].exclusive_bytes;
    let collect = || {
        let report = gc(&t.repo, &NoProgress, &CancelToken::new()).unwrap();
        assert_eq!(report.plans_waiting, 0, "nothing holds a lease: {report:?}");
        report
    };

    // b's changed chunks sit in a pack of their own, which gc deletes.
    let predicted = exclusive(&[t.b]);
    let before = repository_stored_bytes(&t.repo).unwrap();
    forget(&t.repo, &[t.b]).unwrap();
    let report = collect();
    assert_eq!((report.packs_deleted, report.packs_repacked), (1, 0), "{report:?}");
    assert_eq!(before - repository_stored_bytes(&t.repo).unwrap(), predicted);

    // a's pack keeps one live chunk (c's): gc repacks it, and a's exclusive bytes go.
    let predicted = exclusive(&[t.a]);
    assert_eq!(predicted, 5 * blob_bytes(&t.repo), "with b gone, a owns all but chunk 3");
    let before = repository_stored_bytes(&t.repo).unwrap();
    forget(&t.repo, &[t.a]).unwrap();
    let report = collect();
    assert_eq!((report.packs_deleted, report.packs_repacked), (1, 1), "{report:?}");
    assert_eq!(before - repository_stored_bytes(&t.repo).unwrap(), predicted);
    assert_eq!(restore_bytes(&t.repo, &t.c), image(&[Block::Random(3)]));
}

#[test]
fn stored_bytes_are_compressed_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let (_, repo) = memory_repo();
    let text = pattern(4 * CHUNK_BYTES, 9, true);
    let snapshot = backup_bytes(&repo, dir.path(), "text", &text).id;

    let [report] = usage(&repo, &[vec![snapshot]]).unwrap()[..] else { panic!("one group, one answer") };

    assert_eq!(report.logical_bytes, text.len() as u64);
    assert!(report.stored_bytes < report.logical_bytes / 2, "{report:?}");
    assert_eq!(report.stored_bytes, repository_stored_bytes(&repo).unwrap());
    assert_eq!(report.exclusive_bytes, report.stored_bytes);
}

#[test]
fn a_snapshot_the_repository_lacks_is_an_error_naming_it() {
    let t = fixture();
    let unknown = SnapshotId([7; 32]);
    let error = usage(&t.repo, &[vec![t.a], vec![t.b, unknown]]).unwrap_err();
    assert!(matches!(error, Error::NotFound(_)), "{error}");
    assert!(error.to_string().contains(&unknown.short()), "{error}");

    forget(&t.repo, &[t.a]).unwrap();
    let error = usage(&t.repo, &[vec![t.a]]).unwrap_err();
    assert!(error.to_string().contains(&t.a.short()), "a forgotten snapshot is missing too: {error}");
}

#[test]
fn an_empty_repository_uses_nothing() {
    let (_, repo) = memory_repo();
    assert_eq!(usage(&repo, &[vec![]]).unwrap(), vec![GroupUsage::default()]);
    assert_eq!(repository_stored_bytes(&repo).unwrap(), 0);
}
