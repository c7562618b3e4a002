mod common;
use common::*;
use drydock_engine::gc::gc;
use drydock_engine::NoProgress;
use std::time::Instant;

#[test]
fn probe_timing() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, repo) = local_repo(&dir.path().join("repo"), options());
    let image = write_image(dir.path(), "a.img", 1);
    let t = Instant::now();
    let a = backup_path(&repo, &image, "a");
    eprintln!("backup {:?}", t.elapsed());
    let t = Instant::now();
    for _ in 0..10 { verify_all(&repo); }
    eprintln!("verify x10 {:?}", t.elapsed());
    let t = Instant::now();
    for _ in 0..10 { restore_bytes(&repo, &a.id); }
    eprintln!("restore x10 {:?}", t.elapsed());
    eprintln!("{:#?}", objects(storage.as_ref()));
}

#[test]
fn probe_churn() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, repo) = memory_repo();
    let mut img = Vec::new();
    for i in 0..4u8 { img.extend(std::iter::repeat(i + 1).take(CHUNK_BYTES)); }
    backup_bytes(&repo, dir.path(), "c", &img);
    eprintln!("{:#?}", objects(storage.as_ref()));
    for _ in 0..3 { eprintln!("{:?}", gc(&repo, &NoProgress).unwrap()); }
    eprintln!("{:#?}", objects(storage.as_ref()));
}
