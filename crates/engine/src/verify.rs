//! Checking a repository: structure always, and with `read_data` every selected pack's bytes.
//! Problems are reported one by one (to the caller's sink and in the report) with the
//! snapshots they affect, by name; verify itself keeps going.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde::Serialize;

use crate::blob;
use crate::control::{CancelToken, Progress};
use crate::error::{Error, Result};
use crate::id::{ChunkId, PackId, SnapshotId};
use crate::index::PackEntry;
use crate::layout;
use crate::lease::Lease;
use crate::pack;
use crate::parallel;
use crate::repo::Repository;
use crate::snapshot::Manifest;

/// Which packs `read_data` reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Subset {
    All,
    /// Part `n` of `t` (1-based): run 1/7 … 7/7 on successive days to read everything weekly.
    Part {
        n: u32,
        t: u32,
    },
    /// About this percentage of packs, chosen by id (the same packs every time).
    Percent(f64),
}

impl Subset {
    pub fn parse(text: &str) -> Result<Subset> {
        let invalid = || Error::InvalidInput(format!("read-data subset {text:?} is not N/T or P%"));
        if let Some(percent) = text.strip_suffix('%') {
            let p: f64 = percent.parse().map_err(|_| invalid())?;
            return if (0.0..=100.0).contains(&p) { Ok(Subset::Percent(p)) } else { Err(invalid()) };
        }
        let (n, t) = text.split_once('/').ok_or_else(invalid)?;
        let (n, t): (u32, u32) = (n.parse().map_err(|_| invalid())?, t.parse().map_err(|_| invalid())?);
        if t == 0 || n == 0 || n > t {
            return Err(invalid());
        }
        Ok(Subset::Part { n, t })
    }

    fn includes(&self, id: &PackId) -> bool {
        let x = u32::from_le_bytes(id.0[..4].try_into().expect("4 bytes"));
        match *self {
            Subset::All => true,
            Subset::Part { n, t } => x % t == n - 1,
            Subset::Percent(p) => (x as f64) < p / 100.0 * (u32::MAX as f64 + 1.0),
        }
    }
}

#[derive(Clone, Debug)]
pub struct VerifyOptions {
    pub read_data: Option<Subset>,
}

/// One thing found wrong, and which snapshots it damages.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub object: String,
    pub message: String,
    /// `name (id)` of every snapshot that can no longer be restored intact because of it.
    pub snapshots: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub snapshots_checked: usize,
    pub index_files_checked: usize,
    pub packs_checked: usize,
    pub packs_read: usize,
    pub chunks_read: u64,
    pub bytes_read: u64,
    pub problems: Vec<Problem>,
}

struct Findings {
    problems: Vec<Problem>,
    /// Problems still to be attributed to snapshots, with the chunks they lost.
    damaged_chunks: Vec<(usize, HashSet<ChunkId>)>,
}

pub fn verify(
    repo: &Repository,
    options: &VerifyOptions,
    on_problem: &(dyn Fn(&Problem) + Sync),
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<VerifyReport> {
    let lease = Lease::acquire(repo.storage().clone(), "verify", repo.config().lease_ttl_secs)?;
    let mut report = VerifyReport::default();
    let mut findings = Findings { problems: Vec::new(), damaged_chunks: Vec::new() };
    let note = |findings: &mut Findings, object: String, message: String, chunks: HashSet<ChunkId>| {
        findings.problems.push(Problem { object, message, snapshots: Vec::new() });
        findings.damaged_chunks.push((findings.problems.len() - 1, chunks));
    };

    let (snapshots, bad_snapshots) = repo.load_snapshots_lenient()?;
    report.snapshots_checked = snapshots.len() + bad_snapshots.len();
    for (id, error) in bad_snapshots {
        findings.problems.push(Problem {
            object: format!("snapshot {}", id.short()),
            message: error.to_string(),
            snapshots: vec![format!("(unreadable) ({})", id.short())],
        });
    }

    // Index files: each must open; its packs must exist with the size it records. Packs a gc
    // plan is deleting may vanish at any moment and are not checked (their live chunks have
    // copies elsewhere, or the plan keeps them).
    let doomed = crate::gc::packs_planned_for_deletion(repo.storage().as_ref())?;
    let (index_files, damaged_index_files) = repo.load_index_files_lenient()?;
    report.index_files_checked = index_files.len() + damaged_index_files.len();
    for (id, error) in damaged_index_files {
        note(&mut findings, format!("index {}", id.short()), error.to_string(), HashSet::new());
    }
    let stored: HashMap<PackId, u64> = repo.list_packs()?.into_iter().map(|(id, info)| (id, info.size_bytes)).collect();
    let mut packs: HashMap<PackId, PackEntry> = HashMap::new();
    let mut located: HashSet<ChunkId> = HashSet::new();
    for pack in index_files.into_iter().flat_map(|(_, file)| file.packs) {
        if doomed.contains(&pack.id) {
            if stored.contains_key(&pack.id) {
                located.extend(pack.blobs.iter().map(|b| b.id));
            }
            continue;
        }
        packs.entry(pack.id).or_insert(pack);
    }
    for pack in packs.values() {
        report.packs_checked += 1;
        match stored.get(&pack.id) {
            None => note(&mut findings, format!("pack {}", pack.id.short()), "is missing".into(), blob_ids(pack)),
            Some(&size) if size != pack.size_bytes => note(
                &mut findings,
                format!("pack {}", pack.id.short()),
                format!("has {size} bytes, the index says {}", pack.size_bytes),
                blob_ids(pack),
            ),
            Some(_) => located.extend(pack.blobs.iter().map(|b| b.id)),
        }
    }
    // Every chunk of every snapshot must be somewhere.
    for (id, manifest) in &snapshots {
        let missing: HashSet<ChunkId> =
            manifest.chunks.iter().filter(|c| !c.is_zero() && !located.contains(c)).copied().collect();
        if !missing.is_empty() {
            note(
                &mut findings,
                format!("snapshot {}", id.short()),
                format!("{} chunks are in no index or in a missing pack", missing.len()),
                missing,
            );
        }
    }

    if let Some(subset) = options.read_data {
        let selected: Vec<&PackEntry> =
            packs.values().filter(|p| stored.contains_key(&p.id) && subset.includes(&p.id)).collect();
        progress.start(selected.iter().map(|p| p.size_bytes).sum());
        let found = Mutex::new(Vec::new());
        let counters = Mutex::new((0usize, 0u64, 0u64));
        parallel::try_map(&selected, parallel::worker_count(), |pack| {
            cancel.check()?;
            let PackDamage { problems, lost: chunks } = read_pack(repo, pack)?;
            let mut c = counters.lock().unwrap_or_else(|e| e.into_inner());
            *c = (c.0 + 1, c.1 + pack.blobs.len() as u64, c.2 + pack.size_bytes);
            found.lock().unwrap_or_else(|e| e.into_inner()).extend(problems.into_iter().map(|p| (p, chunks.clone())));
            progress.advance(pack.size_bytes);
            Ok::<_, Error>(())
        })?;
        let (packs_read, chunks_read, bytes_read) = counters.into_inner().unwrap_or_else(|e| e.into_inner());
        (report.packs_read, report.chunks_read, report.bytes_read) = (packs_read, chunks_read, bytes_read);
        for ((object, message), chunks) in found.into_inner().unwrap_or_else(|e| e.into_inner()) {
            note(&mut findings, object, message, chunks);
        }
    }

    attribute(&mut findings, &snapshots);
    for problem in &findings.problems {
        on_problem(problem);
    }
    report.problems = findings.problems;
    lease.release()?;
    Ok(report)
}

fn blob_ids(pack: &PackEntry) -> HashSet<ChunkId> {
    pack.blobs.iter().map(|b| b.id).collect()
}

/// Reads one pack whole and checks its name, header and every blob. Returns the problems as
/// (object, message) and the chunks that cannot be read from it.
/// What reading one pack found: (object, message) problems, and the chunks it cannot give back.
struct PackDamage {
    problems: Vec<(String, String)>,
    lost: HashSet<ChunkId>,
}

fn read_pack(repo: &Repository, pack: &PackEntry) -> Result<PackDamage> {
    let object = format!("pack {}", pack.id.short());
    let bytes = match repo.storage().get(&layout::pack(&pack.id)) {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => {
            return Ok(PackDamage { problems: vec![(object, "is missing".into())], lost: blob_ids(pack) });
        }
        Err(e) => return Err(e.into()),
    };
    let mut problems = Vec::new();
    match pack::parse(repo.keys(), &pack.id, &bytes, &object) {
        Ok(entries) if entries != pack.blobs => {
            problems.push((object.clone(), "header disagrees with the index".into()))
        }
        Ok(_) => {}
        Err(e) => problems.push((object.clone(), e.to_string())),
    }
    // Blobs are checked through the index's view, so a damaged header does not hide which
    // chunks are still intact.
    let mut lost = HashSet::new();
    for blob in &pack.blobs {
        let range = blob.offset as usize..blob.offset as usize + blob.stored_len as usize;
        let result = match bytes.get(range) {
            Some(sealed) => blob::decode(repo.keys(), &blob.id, blob.flags, blob.raw_len, sealed, &object).map(|_| ()),
            None => Err(Error::corrupt(&object, format!("chunk {} lies past the end", blob.id.short()))),
        };
        if let Err(e) = result {
            problems.push((object.clone(), e.to_string()));
            lost.insert(blob.id);
        }
    }
    Ok(PackDamage { problems, lost })
}

/// Fills in each problem's affected snapshots.
fn attribute(findings: &mut Findings, snapshots: &[(SnapshotId, Manifest)]) {
    for (problem_index, chunks) in &findings.damaged_chunks {
        if chunks.is_empty() {
            continue;
        }
        let affected = snapshots
            .iter()
            .filter(|(_, m)| m.chunks.iter().any(|c| chunks.contains(c)))
            .map(|(id, m)| format!("{} ({})", m.meta.name, id.short()));
        findings.problems[*problem_index].snapshots.extend(affected);
    }
}
