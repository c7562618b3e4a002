//! LocalStorage on real filesystems that fail: a full tmpfs and a read-only one. Mounting needs
//! root, which CI and the development machines have; without it these tests fail loudly rather
//! than skip, so a lost privilege cannot silently drop the coverage.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use drydock_storage::{ErrorKind, LocalStorage, ObjectKey, Storage};

/// A tmpfs mounted on a temporary directory, unmounted on drop (also when the test panics).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir.path()));
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount_read_only(&self) {
        run(Command::new("mount").args(["-o", "remount,ro"]).arg(self.path()));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy, so a file still open somewhere cannot keep the mount (and the test dir) alive.
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn run(command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed; this test needs root to mount a tmpfs: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new(name).unwrap()
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(temp_files(&path));
        } else if path.file_name().unwrap().to_string_lossy().starts_with(".tmp") {
            found.push(path);
        }
    }
    found
}

#[test]
fn full_disk_is_no_space_and_keeps_earlier_objects() {
    let tmpfs = Tmpfs::mount("1m");
    let storage = LocalStorage::open(tmpfs.path()).unwrap();
    let object = |index: u8| vec![index; 100 << 10];
    // 1 MiB holds about ten 100 KiB objects; thirty are sure to overflow it.
    let mut stored = Vec::new();
    let mut failure = None;
    for index in 0..30 {
        let name = format!("packs/{index:02}");
        match storage.put(&key(&name), &object(index)) {
            Ok(()) => stored.push(index),
            Err(error) => {
                failure = Some((name, error));
                break;
            }
        }
    }
    let (name, error) = failure.expect("a 1 MiB tmpfs accepted 3 MB");
    assert_eq!(error.kind, ErrorKind::NoSpace, "{error}");
    assert!(error.to_string().contains(&name), "the error names the object: {error}");
    assert!(!stored.is_empty(), "some objects fit before the disk filled");
    assert_eq!(temp_files(tmpfs.path()), Vec::<PathBuf>::new(), "a failed put leaves no temp file");
    for index in stored {
        let data = storage.get(&key(&format!("packs/{index:02}"))).unwrap();
        assert!(data == object(index), "object {index} changed after the disk filled");
    }
    assert!(storage.stat(&key(&name)).unwrap_err().is_not_found(), "the failed object does not exist");
}

#[test]
fn read_only_filesystem_fails_clearly_and_leaves_no_temp_file() {
    let tmpfs = Tmpfs::mount("1m");
    let storage = LocalStorage::open(tmpfs.path()).unwrap();
    storage.put(&key("packs/old"), b"before").unwrap();
    tmpfs.remount_read_only();

    for name in ["packs/new", "index/new"] {
        let error = storage.put(&key(name), b"after").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Permanent, "{error}");
        let message = error.to_string();
        assert!(message.starts_with(&format!("put {name} in local ")), "{message}");
        assert!(message.contains("Read-only file system"), "{message}");
    }
    assert_eq!(temp_files(tmpfs.path()), Vec::<PathBuf>::new());
    assert_eq!(storage.get(&key("packs/old")).unwrap(), b"before");
}
