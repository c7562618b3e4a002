//! Every decoder meets hostile bytes *after* authentication: a writer holding the key (or a bug
//! in one) could seal anything. Whatever the body, decoding returns an error, never panics and
//! never allocates without bound. Bodies here are random, or valid encodings with bytes flipped,
//! truncated or extended, sealed with the real key so the parsers behind the seal are reached.

use crate::crypto::{MasterKey, RepoKeys};
use crate::format::{self, MAGIC_INDEX, MAGIC_PACK, MAGIC_SNAPSHOT};
use crate::id::{ChunkId, IndexId, PackId, SnapshotId};
use crate::index::{INDEX_VERSION, IndexFile, PackEntry};
use crate::pack::{self, BlobEntry, PACK_VERSION, PackWriter};
use crate::snapshot::{Manifest, SNAPSHOT_VERSION, SnapshotMeta};

const CASES: usize = 3000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A valid body damaged in one of several ways, or pure noise.
    fn mangle(&mut self, valid: &[u8]) -> Vec<u8> {
        let mut body = valid.to_vec();
        match self.below(5) {
            0 => {
                let len = self.below(400);
                body = self.bytes(len);
            }
            1 => body.truncate(self.below(valid.len() + 1)),
            2 => {
                let len = 1 + self.below(64);
                body.extend(self.bytes(len));
            }
            _ => {
                for _ in 0..1 + self.below(4) {
                    if !body.is_empty() {
                        let at = self.below(body.len());
                        body[at] = self.next() as u8;
                    }
                }
            }
        }
        body
    }
}

fn keys() -> RepoKeys {
    RepoKeys::derive(&MasterKey([7; 32]), true)
}

fn meta() -> SnapshotMeta {
    SnapshotMeta {
        name: "disk".into(),
        source: "/dev/vda".into(),
        size_bytes: 3 * 65536 + 10,
        chunk_size_bytes: 65536,
        created_at: "2026-11-22T00:00:00Z".into(),
        duration_ms: 1,
        tags: vec!["t".into()],
        parent: None,
        hostname: "h".into(),
        stored_bytes: 1,
        chunks_new: 1,
        chunks_zero: 1,
    }
}

/// The chunk table `Manifest::encode` seals, rebuilt here so it can be damaged before sealing.
fn chunk_table() -> Vec<u8> {
    let mut table = 4u64.to_le_bytes().to_vec();
    for i in 0..4u8 {
        table.extend_from_slice(&[i; 32]);
    }
    table
}

/// A manifest laid out as `Manifest::encode` does, from (possibly damaged) plaintext parts and
/// a length field that may lie.
fn assemble_manifest(keys: &RepoKeys, json: &[u8], table: &[u8], length_lie: Option<u32>) -> Vec<u8> {
    let header = format::header(MAGIC_SNAPSHOT, SNAPSHOT_VERSION);
    let meta_sealed = format::seal_section(keys, &header, json);
    let chunks_sealed = format::seal_section(keys, &crate::snapshot::chunks_aad(&header, &meta_sealed), table);
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(&length_lie.unwrap_or(meta_sealed.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&meta_sealed);
    bytes.extend_from_slice(&chunks_sealed);
    bytes
}

#[test]
fn manifests_with_any_sealed_body_decode_or_fail_cleanly() {
    let keys = keys();
    let json = serde_json::to_vec(&meta()).unwrap();
    let table = chunk_table();
    let valid = assemble_manifest(&keys, &json, &table, None);
    let id = SnapshotId(*blake3::hash(&valid).as_bytes());
    assert!(Manifest::decode(&keys, &id, &valid).is_ok(), "the undamaged manifest must decode");
    let mut rng = Rng(1);
    for _ in 0..CASES {
        let (json, table) = match rng.below(3) {
            0 => (rng.mangle(&json), table.clone()),
            1 => (json.clone(), rng.mangle(&table)),
            _ => (rng.mangle(&json), rng.mangle(&table)),
        };
        let lie = (rng.below(8) == 0).then(|| rng.next() as u32);
        let bytes = assemble_manifest(&keys, &json, &table, lie);
        let id = SnapshotId(*blake3::hash(&bytes).as_bytes());
        let _ = Manifest::decode(&keys, &id, &bytes);
        let _ = crate::snapshot::decode_meta(&keys, &id, &bytes);
        let _ = crate::snapshot::decode_meta(&keys, &id, &rng.mangle(&bytes));
    }
}

#[test]
fn index_files_with_any_sealed_body_decode_or_fail_cleanly() {
    let keys = keys();
    let blob = BlobEntry { id: ChunkId([3; 32]), offset: 16, stored_len: 100, raw_len: 200, flags: 1 };
    let file = IndexFile { packs: vec![PackEntry { id: PackId([9; 32]), size_bytes: 1000, blobs: vec![blob; 3] }] };
    let (_, sealed) = file.encode(&keys);
    let valid = format::open_object(&keys, MAGIC_INDEX, INDEX_VERSION, "index", &sealed).unwrap();
    let mut rng = Rng(2);
    for _ in 0..CASES {
        let sealed = format::seal_object(&keys, MAGIC_INDEX, INDEX_VERSION, &rng.mangle(&valid));
        let id = IndexId(*blake3::hash(&sealed).as_bytes());
        let _ = IndexFile::decode(&keys, &id, &sealed);
    }
}

#[test]
fn pack_headers_with_any_sealed_table_parse_or_fail_cleanly() {
    let keys = keys();
    let mut writer = PackWriter::new(1 << 16);
    writer.add(ChunkId([1; 32]), 0, 5, &keys.cipher.seal(b"x", b"hello"));
    let valid = writer.finish(&keys);
    assert!(pack::parse(&keys, &valid.id, &valid.bytes, "pack").is_ok());
    let header = format::header(MAGIC_PACK, PACK_VERSION);
    let mut rng = Rng(3);
    for _ in 0..CASES {
        // A pack whose header table is noise or a damaged real table, sealed correctly, with a
        // trailer that may also lie about the header's length.
        let mut table = (1u32 + rng.below(3) as u32).to_le_bytes().to_vec();
        let len = rng.below(200);
        table.extend(rng.bytes(len));
        let mut bytes = header.to_vec();
        let len = rng.below(300);
        bytes.extend(rng.bytes(len));
        let sealed_table = keys.cipher.seal(&header, &table);
        bytes.extend_from_slice(&sealed_table);
        let claimed_len = if rng.below(4) == 0 { rng.next() as u32 } else { sealed_table.len() as u32 };
        bytes.extend_from_slice(&claimed_len.to_le_bytes());
        bytes.extend_from_slice(MAGIC_PACK.0);
        let id = PackId(*blake3::hash(&bytes).as_bytes());
        let _ = pack::parse(&keys, &id, &bytes, "pack");
        let _ = pack::parse(&keys, &id, &rng.mangle(&valid.bytes), "pack");
    }
}

#[test]
fn plain_text_objects_with_any_bytes_decode_or_fail_cleanly() {
    let mut rng = Rng(4);
    let valid_slot = crate::keys::KeySlot::seal(
        &MasterKey([1; 32]),
        b"pw",
        "slot",
        crate::keys::KdfParams { memory_kib: 8, iterations: 1, parallelism: 1 },
    )
    .unwrap()
    .encode();
    let valid_config = crate::config::RepoConfig {
        repository_id: "r".into(),
        created_at: "t".into(),
        encryption: crate::config::Encryption::Aes256Gcm,
        chunk_size_bytes: 1 << 20,
        pack_size_bytes_target: 32 << 20,
        compression_level: 1,
        lease_ttl_secs: 60,
        plain_master_key: None,
    }
    .encode(&keys());
    for _ in 0..CASES {
        let _ =
            crate::keys::KeySlot::decode(&rng.mangle(&valid_slot), "slot").and_then(|slot| slot.open(b"pw", "slot"));
        let _ = crate::config::RepoConfig::decode_unverified(&rng.mangle(&valid_config));
        let len = rng.below(100);
        let _ = crate::lease::LeaseRecord::decode(&rng.bytes(len), "lease");
    }
}
