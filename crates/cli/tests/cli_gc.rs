//! `repo gc` also removes temporary files that writers killed mid-put left behind.

mod common;

use std::time::{Duration, SystemTime};

use common::{Image, Sandbox};

#[test]
fn gc_removes_temporary_files_of_dead_writers_and_spares_fresh_ones() {
    let sandbox = Sandbox::new();
    sandbox.backup(&Image::mixed(31, 1 << 20), "disk");
    let pack_dir = sandbox.objects("packs")[0].parent().unwrap().to_path_buf();
    let stale = pack_dir.join(".tmp~4242-0-1");
    let fresh = pack_dir.join(".tmp~4243-0-2");
    for path in [&stale, &fresh] {
        std::fs::write(path, b"half a pack").unwrap();
    }
    let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    std::fs::File::options().write(true).open(&stale).unwrap().set_modified(two_hours_ago).unwrap();

    let report = sandbox.gc();
    assert_eq!(report["temp_files_removed"], 1, "{report}");
    assert!(!stale.exists(), "the dead writer's file is still there");
    assert!(fresh.exists(), "a possibly live writer's file was removed");
    sandbox.assert_verifies();
}
