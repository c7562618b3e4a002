//! Walking the directory tree: `list` and the removal of stale temporary files.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::atomic_write::TEMP_PREFIX;
use crate::{ObjectInfo, ObjectKey};

/// Every object under `root` whose key starts with `prefix`, sorted by key (cheap, and it makes
/// listings reproducible for people and tests).
pub(super) fn list_objects(root: &Path, prefix: &str) -> io::Result<Vec<ObjectInfo>> {
    // Start in the deepest directory the prefix names in full, so that "packs/ab/" reads one
    // directory rather than the whole tree; the partial last segment is filtered below.
    let start_rel = prefix.rfind('/').map_or("", |slash| &prefix[..=slash]);
    // A directory part that is not a valid key ("../", "a//") matches no key, and joining it
    // could leave the root.
    if !start_rel.is_empty() && ObjectKey::new(&start_rel[..start_rel.len() - 1]).is_err() {
        return Ok(Vec::new());
    }
    // A directory can hold matches only if it and the prefix agree up to the shorter of the two.
    let descend = |dir_rel: &str| dir_rel.starts_with(prefix) || prefix.starts_with(dir_rel);
    let mut objects = Vec::new();
    walk_files(&root.join(start_rel), start_rel, &descend, &mut |entry, name, rel| {
        if name.starts_with(TEMP_PREFIX) || !rel.starts_with(prefix) {
            return Ok(());
        }
        // Anything a key cannot name (uppercase, stray editor files) is not ours to report.
        // Temporary names fail this too, but are skipped by name above so that list does not
        // depend on the key alphabet to hide them.
        let Ok(key) = ObjectKey::new(rel) else { return Ok(()) };
        match entry.metadata() {
            Ok(metadata) => objects.push(ObjectInfo { key, size_bytes: metadata.len() }),
            // Deleted while we walked: list may lag, so leaving it out is fine.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(())
    })?;
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

/// Deletes temporary files at least `older_than` old; returns how many.
pub(super) fn remove_stale_temp_files(root: &Path, older_than: Duration) -> io::Result<usize> {
    let now = SystemTime::now();
    let mut removed = 0;
    walk_files(root, "", &|_| true, &mut |entry, name, _| {
        if !name.starts_with(TEMP_PREFIX) {
            return Ok(());
        }
        let modified = match entry.metadata().and_then(|metadata| metadata.modified()) {
            Ok(modified) => modified,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        // A file from the future (clock stepped back) counts as new: keeping it is the safe side.
        let age = now.duration_since(modified).unwrap_or(Duration::ZERO);
        if age < older_than {
            return Ok(());
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            // Another cleaner, or its writer, got there first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(())
    })?;
    Ok(removed)
}

/// Calls `visit(entry, name, rel)` for every regular file below `dir`, where `rel` is the file's
/// `/`-separated path from the root and `dir_rel` is that of `dir` (empty, or ending in `/`).
/// Enters a subdirectory only if `descend` accepts its `rel` (ending in `/`). Symbolic links are
/// neither followed nor reported: we never create them, and following one could leave the root.
/// Names that are not UTF-8 cannot be keys or ours, so they are skipped.
fn walk_files(
    dir: &Path,
    dir_rel: &str,
    descend: &dyn Fn(&str) -> bool,
    visit: &mut dyn FnMut(&fs::DirEntry, &str, &str) -> io::Result<()>,
) -> io::Result<()> {
    // An explicit stack rather than recursion: depth is bounded by the key length anyway, but
    // this keeps the error handling in one place.
    let mut pending: Vec<(PathBuf, String)> = vec![(dir.to_path_buf(), dir_rel.to_string())];
    while let Some((dir, dir_rel)) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            // Missing (nothing put there yet, or removed while we walked) or a file: nothing below.
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
            let rel = format!("{dir_rel}{name}");
            let file_type = match entry.file_type() {
                Ok(file_type) => file_type,
                // Deleted while we walked.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if file_type.is_dir() {
                let sub_rel = rel + "/";
                if descend(&sub_rel) {
                    pending.push((entry.path(), sub_rel));
                }
            } else if file_type.is_file() {
                visit(&entry, &name, &rel)?;
            }
        }
    }
    Ok(())
}
