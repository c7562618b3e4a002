//! An open repository: storage, config and keys, and the reads every command shares.

use std::collections::HashSet;
use std::sync::Arc;

use drydock_storage::{ErrorKind, ObjectInfo, Storage};
use serde::Serialize;

use crate::config::{self, Encryption, RepoConfig};
use crate::crypto::{MasterKey, RepoKeys};
use crate::error::{Error, Result};
use crate::id::{self, IndexId, SnapshotId};
use crate::index::{ChunkIndex, IndexFile};
use crate::keys::{KdfParams, KeySlot, KeySlotInfo};
use crate::layout;
use crate::parallel;
use crate::snapshot::{self, Manifest, SnapshotMeta};

/// How to create a repository.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// `None` creates an unencrypted repository (only when asked for explicitly).
    pub passphrase: Option<Vec<u8>>,
    pub chunk_size_bytes: u32,
    pub compression_level: i32,
    pub pack_size_bytes_target: u32,
    pub lease_ttl_secs: u64,
    pub kdf: KdfParams,
}

impl InitOptions {
    pub fn encrypted(passphrase: impl Into<Vec<u8>>) -> Self {
        InitOptions {
            passphrase: Some(passphrase.into()),
            chunk_size_bytes: config::CHUNK_SIZE_BYTES_DEFAULT,
            compression_level: config::COMPRESSION_LEVEL_DEFAULT,
            pack_size_bytes_target: config::PACK_SIZE_BYTES_TARGET_DEFAULT,
            lease_ttl_secs: config::LEASE_TTL_SECS_DEFAULT,
            kdf: KdfParams::default(),
        }
    }

    pub fn unencrypted() -> Self {
        InitOptions { passphrase: None, ..InitOptions::encrypted(Vec::new()) }
    }
}

pub struct Repository {
    storage: Arc<dyn Storage>,
    config: RepoConfig,
    keys: RepoKeys,
    master: MasterKey,
    /// The key slot the passphrase opened (none for unencrypted repositories).
    slot: Option<String>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository").field("storage", &self.storage.describe()).finish_non_exhaustive()
    }
}

/// Summary numbers for `repo info`.
#[derive(Clone, Debug, Serialize)]
pub struct RepoStats {
    pub snapshots: usize,
    pub packs: usize,
    pub pack_bytes: u64,
    pub index_files: usize,
    pub chunks: usize,
    pub key_slots: usize,
}

/// Objects read leniently: the readable ones, and the damaged ones with what is wrong.
pub type Loaded<Id, T> = (Vec<(Id, T)>, Vec<(Id, Error)>);

/// How often index files are listed again when gc replaced some while they were being read.
const INDEX_LISTINGS_MAX: usize = 8;

/// Reads the config without a key: tells whether a passphrase is needed.
pub fn probe(storage: &dyn Storage) -> Result<RepoConfig> {
    let bytes = match storage.get(&layout::config()) {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return Err(Error::NotARepository(storage.describe())),
        Err(e) => return Err(e.into()),
    };
    RepoConfig::decode_unverified(&bytes)
}

impl Repository {
    pub fn init(storage: Arc<dyn Storage>, options: InitOptions) -> Result<Repository> {
        match storage.stat(&layout::config()) {
            Ok(_) => return Err(Error::AlreadyARepository(storage.describe())),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        let master = MasterKey::generate();
        let encryption = if options.passphrase.is_some() { Encryption::Aes256Gcm } else { Encryption::None };
        let config = RepoConfig {
            repository_id: id::hex(&crate::crypto::random_bytes::<16>()),
            created_at: crate::time::now_rfc3339(),
            encryption,
            chunk_size_bytes: options.chunk_size_bytes,
            pack_size_bytes_target: options.pack_size_bytes_target,
            compression_level: options.compression_level,
            lease_ttl_secs: options.lease_ttl_secs,
            plain_master_key: options.passphrase.is_none().then(|| id::hex(&master.0)),
        };
        config.validate()?;
        let keys = RepoKeys::derive(&master, encryption == Encryption::Aes256Gcm);
        let mut slot = None;
        if let Some(passphrase) = &options.passphrase {
            let name = layout::random_name();
            let key_slot = KeySlot::seal(&master, passphrase, &name, options.kdf)?;
            storage.put(&layout::key_slot(&name), &key_slot.encode())?;
            slot = Some(name);
        }
        // The config goes last: a repository exists once its config does.
        storage.put(&layout::config(), &config.encode(&keys))?;
        Ok(Repository { storage, config, keys, master, slot })
    }

    /// Opens with `passphrase` (ignored for unencrypted repositories).
    pub fn open(storage: Arc<dyn Storage>, passphrase: Option<&[u8]>) -> Result<Repository> {
        let config_bytes = match storage.get(&layout::config()) {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return Err(Error::NotARepository(storage.describe())),
            Err(e) => return Err(e.into()),
        };
        let config = RepoConfig::decode_unverified(&config_bytes)?;
        let (master, slot) = match config.encryption {
            Encryption::None => {
                let hex = config.plain_master_key.as_deref().unwrap_or_default();
                let bytes = id::parse_hex(hex)
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| Error::corrupt("config", "plain master key is missing or malformed"))?;
                (MasterKey(bytes), None)
            }
            Encryption::Aes256Gcm => {
                let passphrase = passphrase.ok_or_else(|| {
                    Error::InvalidInput("the repository is encrypted: a passphrase is needed".to_string())
                })?;
                let (master, name) = unlock(storage.as_ref(), passphrase)?;
                (master, Some(name))
            }
        };
        let keys = RepoKeys::derive(&master, config.encryption == Encryption::Aes256Gcm);
        RepoConfig::verify_mac(&config_bytes, &keys)?;
        Ok(Repository { storage, config, keys, master, slot })
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    pub fn keys(&self) -> &RepoKeys {
        &self.keys
    }

    // ---- key slots ----

    pub fn add_key(&self, passphrase: &[u8], kdf: KdfParams) -> Result<String> {
        self.require_encrypted()?;
        let name = layout::random_name();
        let slot = KeySlot::seal(&self.master, passphrase, &name, kdf)?;
        self.storage.put(&layout::key_slot(&name), &slot.encode())?;
        Ok(name)
    }

    pub fn list_keys(&self) -> Result<Vec<KeySlotInfo>> {
        self.require_encrypted()?;
        let mut infos = Vec::new();
        for object in self.storage.list(layout::KEYS)? {
            let name = object.key.file_name().to_string();
            let slot = KeySlot::decode(&self.storage.get(&object.key)?, &name)?;
            infos.push(KeySlotInfo {
                current: self.slot.as_deref() == Some(name.as_str()),
                id: name,
                created_at: slot.created_at,
                hostname: slot.hostname,
                username: slot.username,
            });
        }
        infos.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(infos)
    }

    /// Removes a key slot by id (or unique id prefix). The last slot cannot be removed: that
    /// would make the repository unreadable for ever.
    pub fn remove_key(&self, id_prefix: &str) -> Result<String> {
        let slots = self.list_keys()?;
        let matching: Vec<_> = slots.iter().filter(|s| s.id.starts_with(id_prefix)).collect();
        let slot = match matching.as_slice() {
            [one] => *one,
            [] => return Err(Error::NotFound(format!("no key slot {id_prefix}"))),
            _ => return Err(Error::InvalidInput(format!("key slot prefix {id_prefix} is ambiguous"))),
        };
        if slots.len() == 1 {
            return Err(Error::InvalidInput(format!(
                "key slot {} is the last one; removing it would lock the repository for ever",
                slot.id
            )));
        }
        self.storage.delete(&layout::key_slot(&slot.id))?;
        Ok(slot.id.clone())
    }

    /// Replaces the passphrase of the current slot: the new slot is written before the old one
    /// is removed, so a crash in between leaves both working.
    pub fn change_passphrase(&mut self, new_passphrase: &[u8], kdf: KdfParams) -> Result<String> {
        let old = self.slot.clone().ok_or_else(|| Error::InvalidInput("the repository is not encrypted".into()))?;
        let new = self.add_key(new_passphrase, kdf)?;
        self.storage.delete(&layout::key_slot(&old))?;
        self.slot = Some(new.clone());
        Ok(new)
    }

    fn require_encrypted(&self) -> Result<()> {
        match self.config.encryption {
            Encryption::Aes256Gcm => Ok(()),
            Encryption::None => Err(Error::InvalidInput("the repository is not encrypted: it has no key slots".into())),
        }
    }

    // ---- snapshots ----

    pub fn snapshot_ids(&self) -> Result<Vec<SnapshotId>> {
        ids_under(self.storage.as_ref(), layout::SNAPSHOTS, SnapshotId::from_hex)
    }

    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Manifest> {
        let bytes = self.storage.get(&layout::snapshot(id)).map_err(|e| {
            if e.is_not_found() { Error::NotFound(format!("snapshot {} does not exist", id.short())) } else { e.into() }
        })?;
        Manifest::decode(&self.keys, id, &bytes)
    }

    /// Every snapshot, read whole and oldest first; damaged manifests come back as errors beside
    /// the readable ones.
    pub fn load_snapshots_lenient(&self) -> Result<Loaded<SnapshotId, Manifest>> {
        let ids = self.snapshot_ids()?;
        let results =
            parallel::try_map(&ids, parallel::worker_count() * 2, |id| Ok::<_, Error>(self.load_snapshot(id)))?;
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (id, result) in ids.into_iter().zip(results) {
            match result {
                Ok(manifest) => good.push((id, manifest)),
                // A manifest deleted between list and get was forgotten concurrently: skip it.
                Err(Error::NotFound(_)) => {}
                Err(e) => bad.push((id, e)),
            }
        }
        sort_oldest_first(&mut good, |m| &m.meta);
        Ok((good, bad))
    }

    /// Reads a snapshot's metadata from the start of its manifest (`size_bytes` from the
    /// listing), without its chunk list.
    pub fn load_snapshot_meta(&self, id: &SnapshotId, size_bytes: u64) -> Result<SnapshotMeta> {
        let key = layout::snapshot(id);
        let read = |length: u64| {
            self.storage.get_range(&key, 0, length).map_err(|e| match e.kind {
                ErrorKind::NotFound => Error::NotFound(format!("snapshot {} does not exist", id.short())),
                ErrorKind::OutOfRange => Error::corrupt(format!("snapshot {}", id.short()), "truncated"),
                _ => e.into(),
            })
        };
        let prefix = read(size_bytes.min(snapshot::META_PREFETCH_BYTES))?;
        let needed = snapshot::meta_bytes_needed(&prefix, id)?;
        let bytes = if needed <= prefix.len() { prefix } else { read(needed as u64)? };
        snapshot::decode_meta(&self.keys, id, &bytes)
    }

    /// Metadata of every snapshot, oldest first, with the unreadable ones apart; reads only the
    /// start of each manifest.
    pub fn load_snapshot_metas_lenient(&self) -> Result<Loaded<SnapshotId, SnapshotMeta>> {
        let listed: Vec<(SnapshotId, u64)> = self
            .storage
            .list(layout::SNAPSHOTS)?
            .into_iter()
            .filter_map(|info| SnapshotId::from_hex(info.key.file_name()).map(|id| (id, info.size_bytes)))
            .collect();
        let results = parallel::try_map(&listed, parallel::worker_count() * 2, |(id, size)| {
            Ok::<_, Error>(self.load_snapshot_meta(id, *size))
        })?;
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for ((id, _), result) in listed.into_iter().zip(results) {
            match result {
                Ok(meta) => good.push((id, meta)),
                // Forgotten between list and read.
                Err(Error::NotFound(_)) => {}
                Err(e) => bad.push((id, e)),
            }
        }
        sort_oldest_first(&mut good, |meta| meta);
        Ok((good, bad))
    }

    /// Like [`Repository::load_snapshot_metas_lenient`], but an unreadable snapshot is an error:
    /// it could be the one a caller looks for.
    pub fn load_snapshot_metas(&self) -> Result<Vec<(SnapshotId, SnapshotMeta)>> {
        let (good, bad) = self.load_snapshot_metas_lenient()?;
        match bad.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(good),
        }
    }

    /// Finds a snapshot by full id, unique id prefix, or name (the newest of that name).
    pub fn find_snapshot(&self, wanted: &str) -> Result<(SnapshotId, Manifest)> {
        let ids = self.snapshot_ids()?;
        if let Some(id) = SnapshotId::from_hex(wanted).filter(|id| ids.contains(id)) {
            return Ok((id, self.load_snapshot(&id)?));
        }
        let by_prefix: Vec<_> = ids.iter().filter(|id| wanted.len() >= 4 && id.to_hex().starts_with(wanted)).collect();
        if let [id] = by_prefix.as_slice() {
            return Ok((**id, self.load_snapshot(id)?));
        }
        let by_name = self.load_snapshot_metas()?.into_iter().rfind(|(_, meta)| meta.name == wanted);
        match (by_name, by_prefix.len()) {
            (Some((id, _)), _) => Ok((id, self.load_snapshot(&id)?)),
            (None, 0) => Err(Error::NotFound(format!("no snapshot with id or name {wanted:?}"))),
            (None, _) => Err(Error::InvalidInput(format!("snapshot id prefix {wanted:?} is ambiguous"))),
        }
    }

    // ---- index ----

    pub fn index_ids(&self) -> Result<Vec<IndexId>> {
        ids_under(self.storage.as_ref(), layout::INDEX, IndexId::from_hex)
    }

    pub fn load_index_file(&self, id: &IndexId) -> Result<IndexFile> {
        IndexFile::decode(&self.keys, id, &self.storage.get(&layout::index(id))?)
    }

    /// Every readable index file, read in parallel, and the damaged ones beside them.
    ///
    /// gc replaces an index file by putting the new one before deleting the old, so a file that
    /// vanishes between list and get has a replacement that a fresh listing shows: list again
    /// until nothing vanished (a bounded number of times).
    pub fn load_index_files_lenient(&self) -> Result<Loaded<IndexId, IndexFile>> {
        let mut loaded: Vec<(IndexId, IndexFile)> = Vec::new();
        let mut damaged: Vec<(IndexId, Error)> = Vec::new();
        for _ in 0..INDEX_LISTINGS_MAX {
            let seen: HashSet<IndexId> =
                loaded.iter().map(|(id, _)| *id).chain(damaged.iter().map(|(id, _)| *id)).collect();
            let todo: Vec<IndexId> = self.index_ids()?.into_iter().filter(|id| !seen.contains(id)).collect();
            let results =
                parallel::try_map(&todo, parallel::worker_count() * 2, |id| match self.load_index_file(id) {
                    Ok(file) => Ok(Some(Ok(file))),
                    Err(Error::Storage(e)) if e.is_not_found() => Ok(None),
                    Err(e @ (Error::Corrupt { .. } | Error::UnsupportedVersion { .. })) => Ok(Some(Err(e))),
                    Err(e) => Err(e),
                })?;
            let mut vanished = false;
            for (id, result) in todo.into_iter().zip(results) {
                match result {
                    Some(Ok(file)) => loaded.push((id, file)),
                    Some(Err(e)) => damaged.push((id, e)),
                    None => vanished = true,
                }
            }
            if !vanished {
                break;
            }
        }
        Ok((loaded, damaged))
    }

    /// Every index file; a damaged one is an error (gc must not guess where chunks are).
    pub fn load_index_files(&self) -> Result<Vec<(IndexId, IndexFile)>> {
        let (loaded, damaged) = self.load_index_files_lenient()?;
        match damaged.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(loaded),
        }
    }

    /// The index as readers need it: packs that a gc plan will delete are added last, so a chunk
    /// with a copy elsewhere is read from that copy (docs/concurrency.md, R1). Call after taking a
    /// lease. Damaged index files are skipped and returned: they matter only if a needed chunk is
    /// then missing.
    pub fn load_index_for_reading(&self) -> Result<(ChunkIndex, Vec<(IndexId, Error)>)> {
        let doomed = crate::gc::packs_planned_for_deletion(self.storage.as_ref())?;
        let (files, damaged) = self.load_index_files_lenient()?;
        let mut index = ChunkIndex::default();
        let packs = files.iter().flat_map(|(_, f)| f.packs.iter());
        packs.clone().filter(|p| !doomed.contains(&p.id)).for_each(|p| index.add_pack(p));
        packs.filter(|p| doomed.contains(&p.id)).for_each(|p| index.add_pack(p));
        Ok((index, damaged))
    }

    pub fn load_index(&self) -> Result<ChunkIndex> {
        let mut index = ChunkIndex::default();
        for (_, file) in self.load_index_files()? {
            file.packs.iter().for_each(|pack| index.add_pack(pack));
        }
        Ok(index)
    }

    pub fn stats(&self) -> Result<RepoStats> {
        let packs = self.storage.list(layout::PACKS)?;
        let index = self.load_index()?;
        Ok(RepoStats {
            snapshots: self.snapshot_ids()?.len(),
            packs: packs.len(),
            pack_bytes: packs.iter().map(|p| p.size_bytes).sum(),
            index_files: self.index_ids()?.len(),
            chunks: index.chunk_count(),
            key_slots: self.storage.list(layout::KEYS)?.len(),
        })
    }

    /// Lists pack objects in storage by id.
    pub fn list_packs(&self) -> Result<Vec<(crate::id::PackId, ObjectInfo)>> {
        Ok(self
            .storage
            .list(layout::PACKS)?
            .into_iter()
            .filter_map(|info| crate::id::PackId::from_hex(info.key.file_name()).map(|id| (id, info)))
            .collect())
    }
}

fn sort_oldest_first<T>(snapshots: &mut [(SnapshotId, T)], meta: impl Fn(&T) -> &SnapshotMeta) {
    snapshots.sort_by_cached_key(|(id, t)| (crate::time::instant(&meta(t).created_at), *id));
}

/// Tries every key slot with `passphrase`.
fn unlock(storage: &dyn Storage, passphrase: &[u8]) -> Result<(MasterKey, String)> {
    let slots = storage.list(layout::KEYS)?;
    if slots.is_empty() {
        return Err(Error::corrupt("keys", "the repository is encrypted but has no key slots"));
    }
    let mut damaged = None;
    for object in slots {
        let name = object.key.file_name().to_string();
        let bytes = match storage.get(&object.key) {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        match KeySlot::decode(&bytes, &name).and_then(|slot| slot.open(passphrase, &name)) {
            Ok(Some(master)) => return Ok((master, name)),
            Ok(None) => {}
            Err(e) => damaged = Some(e),
        }
    }
    // A damaged slot may have been the one this passphrase opens: say so rather than blame the
    // passphrase.
    Err(damaged.unwrap_or(Error::WrongPassphrase))
}

fn ids_under<T>(storage: &dyn Storage, prefix: &str, parse: fn(&str) -> Option<T>) -> Result<Vec<T>> {
    Ok(storage.list(prefix)?.iter().filter_map(|info| parse(info.key.file_name())).collect())
}
