//! Garbage collection without stopping backups: plan, then sweep (docs/concurrency.md).
//!
//! Mark: compute the chunks every snapshot references, choose one copy of each to keep, and
//! find packs holding no kept copy (or, after repacking their kept blobs elsewhere, no longer
//! needed). Write those packs to a plan, *then* list the live leases and re-write the plan
//! with them ("armed"). Sweep a plan once every lease it names has ended: re-check references
//! against the snapshots that exist now, keep any pack that became needed, rewrite the index
//! files without the rest, delete those packs, and finally delete the plan.

use std::collections::{HashMap, HashSet};

use drydock_storage::Storage;
use serde::{Deserialize, Serialize};

use crate::control::{CancelToken, Progress};
use crate::error::{Error, Result};
use crate::format::{self, HEADER_BYTES, MAGIC_PLAN};
use crate::id::{ChunkId, IndexId, PackId};
use crate::index::{IndexFile, PackEntry};
use crate::layout;
use crate::lease::{self, Lease};
use crate::pack::PackWriter;
use crate::repo::Repository;

pub const PLAN_VERSION: u16 = 1;
/// A pack whose kept blobs fill less than this fraction of it is repacked.
const REPACK_USED_FRACTION_MIN: f64 = 0.5;
const GC_OPERATION: &str = "gc";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcPlan {
    pub created_at: String,
    pub packs: Vec<String>,
    /// Leases live when the plan was armed; `None` until then.
    pub leases: Option<Vec<String>>,
}

impl GcPlan {
    fn encode(&self) -> Vec<u8> {
        let mut out = format::header(MAGIC_PLAN, PLAN_VERSION).to_vec();
        out.extend_from_slice(&serde_json::to_vec(self).expect("plan serializes"));
        out
    }

    fn decode(bytes: &[u8], object: &str) -> Result<GcPlan> {
        format::check_header(bytes, MAGIC_PLAN, PLAN_VERSION, object)?;
        serde_json::from_slice(&bytes[HEADER_BYTES..]).map_err(|e| Error::corrupt(object, format!("unreadable: {e}")))
    }

    fn pack_ids(&self) -> HashSet<PackId> {
        self.packs.iter().filter_map(|p| PackId::from_hex(p)).collect()
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    pub plans_swept: usize,
    pub plans_waiting: usize,
    pub packs_deleted: usize,
    pub bytes_freed: u64,
    pub packs_repacked: usize,
    pub packs_kept_alive: usize,
    pub index_files_rewritten: usize,
}

fn load_plans(storage: &dyn Storage) -> Result<Vec<(String, GcPlan)>> {
    let mut plans = Vec::new();
    for info in storage.list(layout::PLANS)? {
        let name = info.key.file_name().to_string();
        match storage.get(&info.key) {
            Ok(bytes) => plans.push((name.clone(), GcPlan::decode(&bytes, &format!("gc plan {name}"))?)),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(plans)
}

/// Packs some plan will delete: backups must not deduplicate against them.
pub fn packs_planned_for_deletion(storage: &dyn Storage) -> Result<HashSet<PackId>> {
    Ok(load_plans(storage)?.iter().flat_map(|(_, plan)| plan.pack_ids()).collect())
}

/// Runs one gc: sweeps plans whose writers have finished, then marks new garbage.
/// Cancellation is honoured between plans and before marking: every step left undone is one the
/// next gc finishes (docs/concurrency.md, "Crashes").
pub fn gc(repo: &Repository, progress: &dyn Progress, cancel: &CancelToken) -> Result<GcReport> {
    let storage = repo.storage().as_ref();
    let ttl = repo.config().lease_ttl_secs;
    let gc_lease = Lease::acquire(repo.storage().clone(), GC_OPERATION, ttl)?;
    refuse_if_another_gc_runs(storage, &gc_lease, ttl)?;
    let mut report = GcReport::default();

    for (name, mut plan) in load_plans(storage)? {
        cancel.check()?;
        if plan.leases.is_none() {
            // A gc died between writing the plan and arming it: arm it now. The plan has been
            // visible all along, so rule G1 holds for the leases listed here.
            arm(storage, &name, &mut plan)?;
        }
        if writers_finished(storage, &plan, ttl)? {
            sweep(repo, &name, &plan, &mut report)?;
        } else {
            report.plans_waiting += 1;
        }
    }
    cancel.check()?;
    if let Some((name, plan)) = mark(repo, progress, &mut report)? {
        cancel.check()?;
        if writers_finished(storage, &plan, ttl)? {
            sweep(repo, &name, &plan, &mut report)?;
        } else {
            report.plans_waiting += 1;
        }
    }
    gc_lease.release()?;
    Ok(report)
}

/// Two gc runs at once could each keep the copy the other deletes (rule G4). A gc proceeds only
/// if its own lease is the only live gc lease; two starting together may both stop, which is
/// safe, whereas any tie-break would let one that listed early run beside one that listed late.
fn refuse_if_another_gc_runs(storage: &dyn Storage, own: &Lease, ttl: u64) -> Result<()> {
    let now = crate::time::now_unix_secs();
    let other = lease::list_leases(storage)?.into_iter().any(|(name, record)| {
        name != own.name() && record.is_some_and(|r| r.operation == GC_OPERATION && r.is_live(now, ttl))
    });
    if other {
        return Err(Error::InvalidInput("another gc is running on this repository; try again when it ends".into()));
    }
    Ok(())
}

/// True once no writer named in the plan's lease set can still commit.
fn writers_finished(storage: &dyn Storage, plan: &GcPlan, ttl: u64) -> Result<bool> {
    let Some(names) = &plan.leases else { return Ok(false) };
    let now = crate::time::now_unix_secs();
    let live: HashSet<String> = lease::list_leases(storage)?
        .into_iter()
        // An unreadable lease is treated as live: the safe side.
        .filter(|(_, record)| record.as_ref().is_none_or(|r| r.is_live(now, ttl)))
        .map(|(name, _)| name)
        .collect();
    Ok(names.iter().all(|name| !live.contains(name)))
}

/// Every chunk the snapshots reference. A damaged manifest stops gc: without it we cannot know
/// what is garbage.
fn referenced_chunks(repo: &Repository) -> Result<HashSet<ChunkId>> {
    let (snapshots, damaged) = repo.load_snapshots_lenient()?;
    if let Some((id, e)) = damaged.into_iter().next() {
        return Err(Error::InvalidInput(format!(
            "gc stopped: snapshot {} is unreadable ({e}); run verify",
            id.short()
        )));
    }
    Ok(snapshots.into_iter().flat_map(|(_, m)| m.chunks).filter(|c| !c.is_zero()).collect())
}

fn mark(repo: &Repository, progress: &dyn Progress, report: &mut GcReport) -> Result<Option<(String, GcPlan)>> {
    let storage = repo.storage().as_ref();
    let already_planned = packs_planned_for_deletion(storage)?;
    let referenced = referenced_chunks(repo)?;
    let stored: HashMap<PackId, u64> = repo.list_packs()?.into_iter().map(|(id, info)| (id, info.size_bytes)).collect();
    let index_files = repo.load_index_files()?;

    // Keep one copy of each referenced chunk, in a pack that exists and is not already doomed.
    let mut keeper: HashMap<ChunkId, PackId> = HashMap::new();
    let mut packs: HashMap<PackId, &PackEntry> = HashMap::new();
    for (_, file) in &index_files {
        for pack in &file.packs {
            if already_planned.contains(&pack.id) || !stored.contains_key(&pack.id) {
                continue;
            }
            packs.insert(pack.id, pack);
            for blob in &pack.blobs {
                if referenced.contains(&blob.id) {
                    keeper.entry(blob.id).or_insert(pack.id);
                }
            }
        }
    }
    progress.start(packs.len() as u64);
    let mut doomed: Vec<PackId> = Vec::new();
    let mut to_repack: Vec<&PackEntry> = Vec::new();
    for (id, pack) in &packs {
        let kept_bytes: u64 =
            pack.blobs.iter().filter(|b| keeper.get(&b.id) == Some(id)).map(|b| b.stored_len as u64).sum();
        // Measured against the blobs, not the file: headers of a pack of tiny live blobs are
        // not garbage, and repacking it would only rewrite it on every run.
        let blob_bytes: u64 = pack.blobs.iter().map(|b| b.stored_len as u64).sum();
        if kept_bytes == 0 {
            doomed.push(*id);
        } else if (kept_bytes as f64) < REPACK_USED_FRACTION_MIN * blob_bytes as f64 {
            to_repack.push(pack);
        }
        progress.advance(1);
    }
    // Orphans: packs no index lists (a backup killed before writing its index), unless a
    // running writer is about to index them, which the lease rule covers.
    let indexed: HashSet<PackId> = index_files.iter().flat_map(|(_, f)| f.packs.iter().map(|p| p.id)).collect();
    doomed.extend(stored.keys().filter(|id| !indexed.contains(id) && !already_planned.contains(id)));
    if !to_repack.is_empty() {
        repack(repo, &to_repack, &keeper)?;
        report.packs_repacked += to_repack.len();
        doomed.extend(to_repack.iter().map(|p| p.id));
    }
    if doomed.is_empty() {
        return Ok(None);
    }
    doomed.sort();
    let name = format!("{}-{}", crate::time::now_unix_secs(), layout::random_name());
    let mut plan = GcPlan {
        created_at: crate::time::now_rfc3339(),
        packs: doomed.iter().map(|id| id.to_hex()).collect(),
        leases: None,
    };
    // Order matters (rule G1): the plan is visible before the leases are listed.
    storage.put(&layout::plan(&name), &plan.encode())?;
    arm(storage, &name, &mut plan)?;
    Ok(Some((name, plan)))
}

/// Records the leases live now in a plan that is already stored (rule G1).
fn arm(storage: &dyn Storage, name: &str, plan: &mut GcPlan) -> Result<()> {
    let writers = lease::list_leases(storage)?
        .into_iter()
        .filter(|(_, record)| record.as_ref().is_none_or(|r| r.operation != GC_OPERATION))
        .map(|(name, _)| name)
        .collect();
    plan.leases = Some(writers);
    storage.put(&layout::plan(name), &plan.encode())?;
    Ok(())
}

/// Copies the kept blobs of sparse packs into new packs (sealed bytes move unchanged: a blob's
/// associated data is its chunk id, not its position) and indexes them.
fn repack(repo: &Repository, packs: &[&PackEntry], keeper: &HashMap<ChunkId, PackId>) -> Result<()> {
    let config = repo.config();
    let capacity = (config.pack_size_bytes_target + config.chunk_size_bytes) as usize + 65536;
    let mut writer = PackWriter::new(capacity);
    let mut new_packs = Vec::new();
    let flush = |writer: PackWriter, new_packs: &mut Vec<PackEntry>| -> Result<()> {
        let sealed = writer.finish(repo.keys());
        repo.storage().put(&layout::pack(&sealed.id), &sealed.bytes)?;
        new_packs.push(PackEntry { id: sealed.id, size_bytes: sealed.bytes.len() as u64, blobs: sealed.entries });
        Ok(())
    };
    for pack in packs {
        let bytes = repo.storage().get(&layout::pack(&pack.id))?;
        let object = format!("pack {}", pack.id.short());
        crate::pack::parse(repo.keys(), &pack.id, &bytes, &object)?;
        for blob in pack.blobs.iter().filter(|b| keeper.get(&b.id) == Some(&pack.id)) {
            let sealed = &bytes[blob.offset as usize..][..blob.stored_len as usize];
            // Checked before it is copied: repacking must never spread damage.
            crate::blob::decode(repo.keys(), &blob.id, blob.flags, blob.raw_len, sealed, &object)?;
            writer.add(blob.id, blob.flags, blob.raw_len, sealed);
            if writer.len_bytes() >= config.pack_size_bytes_target as usize {
                flush(std::mem::replace(&mut writer, PackWriter::new(capacity)), &mut new_packs)?;
            }
        }
    }
    if !writer.is_empty() {
        flush(writer, &mut new_packs)?;
    }
    let (id, bytes) = IndexFile { packs: new_packs }.encode(repo.keys());
    repo.storage().put(&layout::index(&id), &bytes)?;
    Ok(())
}

fn sweep(repo: &Repository, name: &str, plan: &GcPlan, report: &mut GcReport) -> Result<()> {
    let storage = repo.storage().as_ref();
    let planned = plan.pack_ids();
    let referenced = referenced_chunks(repo)?;
    let index_files = repo.load_index_files()?;
    let stored: HashSet<PackId> = repo.list_packs()?.into_iter().map(|(id, _)| id).collect();

    // Chunks with a copy outside this plan are safe wherever else they are.
    let mut safe: HashSet<ChunkId> = HashSet::new();
    for (_, file) in &index_files {
        for pack in file.packs.iter().filter(|p| !planned.contains(&p.id) && stored.contains(&p.id)) {
            safe.extend(pack.blobs.iter().map(|b| b.id));
        }
    }
    // A pack in the plan that now holds the only copy of a referenced chunk lives on (rule G3).
    let mut resurrected: HashSet<PackId> = HashSet::new();
    for (_, file) in &index_files {
        for pack in file.packs.iter().filter(|p| planned.contains(&p.id)) {
            if pack.blobs.iter().any(|b| referenced.contains(&b.id) && !safe.contains(&b.id)) {
                resurrected.insert(pack.id);
                safe.extend(pack.blobs.iter().map(|b| b.id));
            }
        }
    }
    let deleting: HashSet<PackId> = planned.difference(&resurrected).copied().collect();
    report.packs_kept_alive += resurrected.len();

    // Index first, packs second, plan last: a crash anywhere leaves a state the next gc finishes.
    for (index_id, file) in &index_files {
        if file.packs.iter().any(|p| deleting.contains(&p.id)) {
            rewrite_index(repo, index_id, file, &deleting)?;
            report.index_files_rewritten += 1;
        }
    }
    let sizes: HashMap<PackId, u64> = repo.list_packs()?.into_iter().map(|(id, info)| (id, info.size_bytes)).collect();
    for id in &deleting {
        storage.delete(&layout::pack(id))?;
        report.packs_deleted += 1;
        report.bytes_freed += sizes.get(id).copied().unwrap_or(0);
    }
    storage.delete(&layout::plan(name))?;
    report.plans_swept += 1;
    Ok(())
}

fn rewrite_index(repo: &Repository, id: &IndexId, file: &IndexFile, deleting: &HashSet<PackId>) -> Result<()> {
    let kept = IndexFile { packs: file.packs.iter().filter(|p| !deleting.contains(&p.id)).cloned().collect() };
    if !kept.packs.is_empty() {
        let (new_id, bytes) = kept.encode(repo.keys());
        repo.storage().put(&layout::index(&new_id), &bytes)?;
    }
    repo.storage().delete(&layout::index(id))?;
    Ok(())
}
