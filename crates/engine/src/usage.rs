//! Usage: how much room groups of snapshots take in a repository, and how much forgetting each
//! group would give back.
//!
//! Sizes are *blob bytes*: a chunk's length as stored in its pack (compressed, then sealed), as
//! the index records it. Pack headers (45 bytes per blob plus a few dozen per pack) belong to no
//! snapshot and are not counted. Zero chunks are never stored and count only as logical bytes.
//!
//! One pass over the manifests, a few at a time, then one look-up per chunk in the index. Each
//! chunk remembers two sets of groups: the groups that reference it, and the groups that hold
//! every snapshot referencing it (the chunk is exclusive to those). Sets are interned, so a
//! chunk costs two numbers however many groups there are, and memory grows with the chunk
//! count, not with the number or size of the manifests.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::{ChunkId, SnapshotId};
use crate::parallel;
use crate::repo::Repository;

/// What one group of snapshots takes up in one repository.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GroupUsage {
    /// The sum of the snapshots' image sizes, zeros and repeated chunks included.
    pub logical_bytes: u64,
    /// Blob bytes of the distinct chunks the group references.
    pub stored_bytes: u64,
    /// Blob bytes of the chunks that no snapshot outside the group references: what becomes
    /// garbage when the whole group is forgotten. gc deletes it, except dead blobs left in a
    /// pack that stays more than half live (see `gc`), which later runs free as the pack empties.
    pub exclusive_bytes: u64,
}

/// Usage of each group, in the order given. Groups may overlap (an image, the resource it
/// belongs to, the team). A snapshot id that is not in the repository is an error naming it;
/// so is a damaged manifest anywhere, since its chunks could be any group's.
///
/// Chunks that the index no longer lists count zero: they belonged to a snapshot forgotten and
/// collected while this ran (manifests are read before the index, and a committed snapshot's
/// chunks are indexed before its manifest exists). Damage of that kind is verify's to report.
pub fn usage(repo: &Repository, groups: &[Vec<SnapshotId>]) -> Result<Vec<GroupUsage>> {
    let snapshot_ids = repo.snapshot_ids()?;
    let mut sets = GroupSets::new();
    let memberships = memberships(groups, &snapshot_ids, &mut sets)?;
    let mut report = vec![GroupUsage::default(); groups.len()];
    let mut chunks: HashMap<ChunkId, ChunkGroups> = HashMap::new();

    for batch in snapshot_ids.chunks(manifests_in_flight()) {
        let manifests = parallel::try_map(batch, parallel::worker_count(), |id| match repo.load_snapshot(id) {
            Ok(manifest) => Ok(Some(manifest)),
            // Forgotten since the listing: it no longer holds anything, unless it was asked for.
            Err(Error::NotFound(_)) if !memberships.contains_key(id) => Ok(None),
            Err(e) => Err(e),
        })?;
        for (id, manifest) in batch.iter().zip(manifests) {
            let Some(manifest) = manifest else { continue };
            let member_of = memberships.get(id).copied().unwrap_or(GroupSets::EMPTY);
            for &group in sets.members(member_of) {
                report[group as usize].logical_bytes += manifest.meta.size_bytes;
            }
            for chunk in manifest.chunks.iter().filter(|c| !c.is_zero()) {
                let entry =
                    chunks.entry(*chunk).or_insert(ChunkGroups { referenced_by: member_of, held_by: member_of });
                entry.referenced_by = sets.union(entry.referenced_by, member_of);
                entry.held_by = sets.intersection(entry.held_by, member_of);
            }
        }
    }

    let index = repo.load_index()?;
    for (chunk, groups) in &chunks {
        let Some(location) = index.get(chunk) else { continue };
        let bytes = location.stored_len as u64;
        for &group in sets.members(groups.referenced_by) {
            report[group as usize].stored_bytes += bytes;
        }
        for &group in sets.members(groups.held_by) {
            report[group as usize].exclusive_bytes += bytes;
        }
    }
    Ok(report)
}

/// Blob bytes of every pack the index lists, each pack once. A chunk stored twice (two backups
/// racing, or a pack gc is about to delete) counts twice: both copies take room. This is the
/// unit of [`GroupUsage`]: forgetting a group and running gc to the end lowers it by the group's
/// exclusive bytes. The packs themselves are slightly larger (their headers); `Repository::stats`
/// gives their total.
pub fn repository_stored_bytes(repo: &Repository) -> Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0;
    for (_, file) in repo.load_index_files()? {
        for pack in file.packs.iter().filter(|p| seen.insert(p.id)) {
            total += pack.blobs.iter().map(|b| b.stored_len as u64).sum::<u64>();
        }
    }
    Ok(total)
}

/// Manifests read at once: enough to keep storage busy, few enough that memory stays bounded
/// (a manifest is 32 bytes per chunk of its image).
fn manifests_in_flight() -> usize {
    parallel::worker_count() * 2
}

/// Which groups each snapshot is in (snapshots in none are absent). Fails on an id the
/// repository does not have.
fn memberships(
    groups: &[Vec<SnapshotId>],
    existing: &[SnapshotId],
    sets: &mut GroupSets,
) -> Result<HashMap<SnapshotId, SetId>> {
    let existing: HashSet<&SnapshotId> = existing.iter().collect();
    let mut member_of: HashMap<SnapshotId, Vec<u32>> = HashMap::new();
    for (group, ids) in groups.iter().enumerate() {
        for id in ids {
            if !existing.contains(id) {
                return Err(Error::NotFound(format!("snapshot {} does not exist", id.short())));
            }
            let list = member_of.entry(*id).or_default();
            // Groups are visited in order, so a repeated id shows up as the last entry.
            if list.last() != Some(&(group as u32)) {
                list.push(group as u32);
            }
        }
    }
    Ok(member_of.into_iter().map(|(id, list)| (id, sets.intern(list))).collect())
}

/// A set of group numbers, by its position in [`GroupSets`].
type SetId = u32;

/// For one chunk: the groups with a snapshot referencing it, and the groups holding every
/// snapshot that references it.
struct ChunkGroups {
    referenced_by: SetId,
    held_by: SetId,
}

/// Sets of group numbers (sorted), each kept once; unions and intersections are remembered,
/// since the same few pairs come up for millions of chunks.
struct GroupSets {
    sets: Vec<Vec<u32>>,
    ids: HashMap<Vec<u32>, SetId>,
    unions: HashMap<(SetId, SetId), SetId>,
    intersections: HashMap<(SetId, SetId), SetId>,
}

impl GroupSets {
    const EMPTY: SetId = 0;

    fn new() -> GroupSets {
        let mut sets =
            GroupSets { sets: Vec::new(), ids: HashMap::new(), unions: HashMap::new(), intersections: HashMap::new() };
        sets.intern(Vec::new());
        sets
    }

    /// `members` must be sorted and free of repeats.
    fn intern(&mut self, members: Vec<u32>) -> SetId {
        if let Some(&id) = self.ids.get(&members) {
            return id;
        }
        let id = self.sets.len() as SetId;
        self.sets.push(members.clone());
        self.ids.insert(members, id);
        id
    }

    fn members(&self, set: SetId) -> &[u32] {
        &self.sets[set as usize]
    }

    fn union(&mut self, a: SetId, b: SetId) -> SetId {
        if a == b || b == Self::EMPTY {
            return a;
        }
        if a == Self::EMPTY {
            return b;
        }
        if let Some(&known) = self.unions.get(&(a, b)) {
            return known;
        }
        let mut merged: Vec<u32> = self.members(a).iter().chain(self.members(b)).copied().collect();
        merged.sort_unstable();
        merged.dedup();
        let id = self.intern(merged);
        self.unions.insert((a, b), id);
        id
    }

    fn intersection(&mut self, a: SetId, b: SetId) -> SetId {
        if a == b {
            return a;
        }
        if a == Self::EMPTY || b == Self::EMPTY {
            return Self::EMPTY;
        }
        if let Some(&known) = self.intersections.get(&(a, b)) {
            return known;
        }
        let in_b: HashSet<u32> = self.members(b).iter().copied().collect();
        let common = self.members(a).iter().copied().filter(|g| in_b.contains(g)).collect();
        let id = self.intern(common);
        self.intersections.insert((a, b), id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_interned_and_combined() {
        let mut sets = GroupSets::new();
        let a = sets.intern(vec![0, 2]);
        let b = sets.intern(vec![1, 2]);
        assert_eq!(sets.intern(vec![0, 2]), a);
        let union = sets.union(a, b);
        assert_eq!(sets.members(union), &[0, 1, 2]);
        assert_eq!(sets.union(a, b), union, "remembered");
        let common = sets.intersection(a, b);
        assert_eq!(sets.members(common), &[2]);
        assert_eq!(sets.intersection(a, GroupSets::EMPTY), GroupSets::EMPTY);
        assert_eq!(sets.union(GroupSets::EMPTY, b), b);
        let disjoint = sets.intern(vec![3]);
        assert_eq!(sets.intersection(a, disjoint), GroupSets::EMPTY, "the empty set is interned once");
    }
}
