//! Forgetting snapshots: deleting their manifests. Their data stays until gc finds it unused,
//! so forget is safe at any time, even during a backup or a restore of that snapshot's data.

use crate::error::Result;
use crate::id::SnapshotId;
use crate::layout;
use crate::repo::Repository;

pub fn forget(repo: &Repository, ids: &[SnapshotId]) -> Result<()> {
    for id in ids {
        repo.storage().delete(&layout::snapshot(id))?;
    }
    Ok(())
}
