//! Block devices as source and target, using real loop devices (the kernel's, not a mock).
//! Needs root, as CI and scripts/test run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct LoopDevice(PathBuf);

impl LoopDevice {
    fn attach(file: &Path) -> LoopDevice {
        let out = Command::new("losetup").args(["-f", "--show"]).arg(file).output().expect("losetup runs");
        assert!(out.status.success(), "losetup failed (root needed): {}", String::from_utf8_lossy(&out.stderr));
        LoopDevice(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()))
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

fn drydock(repo: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drydock"))
        .arg("--repo")
        .arg(repo)
        .args(args)
        .env("DRYDOCK_PASSWORD", "loop test")
        .output()
        .unwrap()
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn backup_from_and_restore_onto_loop_devices() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    assert!(drydock(&repo, &["repo", "init", "--chunk-size", "64KiB"]).status.success());

    let source_file = dir.path().join("source.img");
    let file = std::fs::File::create(&source_file).unwrap();
    file.set_len(8 << 20).unwrap();
    file.write_all_at(&pattern(1 << 20, 7), 1 << 20).unwrap();
    file.write_all_at(&pattern(300 << 10, 8), 6 << 20).unwrap();
    drop(file);
    let source = LoopDevice::attach(&source_file);

    let out = drydock(&repo, &["--json", "image", "backup", source.0.to_str().unwrap(), "--name", "loop"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let snapshot: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snapshot["size_bytes"], 8 << 20);

    // The target device starts full of other data: zero chunks must be written as zeros there.
    let target_file = dir.path().join("target.img");
    std::fs::write(&target_file, pattern(8 << 20, 99)).unwrap();
    let target = LoopDevice::attach(&target_file);
    let target_path = target.0.to_str().unwrap();

    let refused = drydock(&repo, &["image", "restore", "loop", target_path]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--overwrite"));

    let restored = drydock(&repo, &["image", "restore", "loop", target_path, "--overwrite"]);
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));
    assert_eq!(std::fs::read(&target.0).unwrap(), std::fs::read(&source_file).unwrap());
}
