//! Which disk paths the API may name, and what a disk is.
//!
//! A droplet's disk path arrives over HTTP and drydock reads it (backup) or overwrites it
//! (restore) as the daemon's user, so only paths under configured roots are accepted, checked
//! after resolving symbolic links and `..`.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use drydock_catalog::DiskFormat;
use drydock_sources::{BlockSource, ImageFile};

use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct DiskPolicy {
    pub allowed_roots: Vec<PathBuf>,
}

impl DiskPolicy {
    /// An existing disk to back up: resolved, and inside an allowed root.
    pub fn existing(&self, path: &str) -> Result<PathBuf> {
        let given = absolute(path)?;
        let resolved = given.canonicalize().map_err(|e| Error::Invalid(format!("disk {path}: {e}")))?;
        self.inside_roots(path, &resolved)?;
        Ok(resolved)
    }

    /// A disk to be created by a restore: its directory must exist inside an allowed root, and
    /// nothing may be at the path yet.
    pub fn new_disk(&self, path: &str) -> Result<PathBuf> {
        let given = absolute(path)?;
        let (Some(parent), Some(file_name)) = (given.parent(), given.file_name()) else {
            return Err(Error::Invalid(format!("disk {path} is not a file path")));
        };
        let parent = parent.canonicalize().map_err(|e| Error::Invalid(format!("directory of disk {path}: {e}")))?;
        let resolved = parent.join(file_name);
        self.inside_roots(path, &resolved)?;
        if resolved.symlink_metadata().is_ok() {
            return Err(Error::Invalid(format!("disk {path} already exists: choose a new path")));
        }
        Ok(resolved)
    }

    fn inside_roots(&self, given: &str, resolved: &Path) -> Result<()> {
        let allowed = self
            .allowed_roots
            .iter()
            .filter_map(|root| root.canonicalize().ok())
            .any(|root| resolved.starts_with(&root));
        if allowed {
            Ok(())
        } else {
            let roots: Vec<String> = self.allowed_roots.iter().map(|r| r.display().to_string()).collect();
            Err(Error::Invalid(format!(
                "disk {given} is outside the allowed disk roots ({}); add its directory to disk_roots in the configuration",
                roots.join(", ")
            )))
        }
    }
}

fn absolute(path: &str) -> Result<PathBuf> {
    let path = PathBuf::from(path);
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return Err(Error::Invalid(format!("disk path {} must be absolute and without '..'", path.display())));
    }
    Ok(path)
}

/// The apparent size of a disk in bytes, which also proves it can be read.
pub fn inspect_disk(path: &Path, format: DiskFormat) -> Result<u64> {
    match format {
        DiskFormat::Raw => {
            let image = ImageFile::open(path).map_err(|e| Error::Invalid(format!("disk {}: {e}", path.display())))?;
            Ok(image.size_bytes())
        }
        DiskFormat::Qcow2 => qcow2_virtual_size(path),
    }
}

fn qcow2_virtual_size(path: &Path) -> Result<u64> {
    let output = Command::new("qemu-img")
        .args(["info", "--output=json", "-f", "qcow2"])
        .arg(path)
        .output()
        .map_err(|e| Error::io("running qemu-img (install qemu-utils for qcow2 disks)", e))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Error::Invalid(format!(
            "disk {} is not a readable qcow2 image: {}",
            path.display(),
            stderr.trim()
        )));
    }
    let info: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| Error::Invalid(format!("qemu-img info on {}: {e}", path.display())))?;
    info["virtual-size"]
        .as_u64()
        .ok_or_else(|| Error::Invalid(format!("qemu-img info on {} gave no virtual size", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(root: &Path) -> DiskPolicy {
        DiskPolicy { allowed_roots: vec![root.to_path_buf()] }
    }

    #[test]
    fn paths_outside_the_roots_are_refused_even_through_symlinks() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.img"), b"x").unwrap();
        std::fs::write(root.path().join("ok.img"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.img"), root.path().join("link.img")).unwrap();
        let policy = policy(root.path());

        assert!(policy.existing(root.path().join("ok.img").to_str().unwrap()).is_ok());
        let escaped = policy.existing(root.path().join("link.img").to_str().unwrap()).unwrap_err();
        assert!(escaped.to_string().contains("outside the allowed disk roots"), "{escaped}");
        let dotted = format!("{}/../x.img", root.path().display());
        assert!(policy.existing(&dotted).unwrap_err().to_string().contains("without '..'"));
        assert!(policy.existing("relative.img").is_err());
    }

    #[test]
    fn a_new_disk_must_not_exist_and_its_directory_must_be_allowed() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("taken.img"), b"x").unwrap();
        let policy = policy(root.path());

        assert!(policy.new_disk(root.path().join("fresh.img").to_str().unwrap()).is_ok());
        let taken = policy.new_disk(root.path().join("taken.img").to_str().unwrap()).unwrap_err();
        assert!(taken.to_string().contains("already exists"), "{taken}");
        assert!(policy.new_disk("/tmp-does-not-exist/x.img").is_err());
    }
}
