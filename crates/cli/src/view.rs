//! How results are shown: JSON shapes and text lines.

use drydock_engine::id::SnapshotId;
use drydock_engine::snapshot::SnapshotMeta;
use serde::Serialize;

/// A snapshot as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct SnapshotView<'a> {
    pub id: String,
    pub name: &'a str,
    pub size_bytes: u64,
    pub stored_bytes: u64,
    pub created_at: &'a str,
    pub tags: &'a [String],
    pub source: &'a str,
    pub hostname: &'a str,
    pub duration_ms: u64,
    pub parent: Option<&'a str>,
}

impl<'a> SnapshotView<'a> {
    pub fn new(id: &SnapshotId, meta: &'a SnapshotMeta) -> Self {
        SnapshotView {
            id: id.to_hex(),
            name: &meta.name,
            size_bytes: meta.size_bytes,
            stored_bytes: meta.stored_bytes,
            created_at: &meta.created_at,
            tags: &meta.tags,
            source: &meta.source,
            hostname: &meta.hostname,
            duration_ms: meta.duration_ms,
            parent: meta.parent.as_deref(),
        }
    }
}

pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value).expect("views serialize"));
    Ok(())
}

/// 1536 → "1.5 KiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

pub fn snapshot_line(id: &SnapshotId, meta: &SnapshotMeta) -> String {
    format!(
        "{}  {:<24} {:<19} {:>10} {:>10}  {}",
        id.short(),
        meta.name,
        to_the_second(&meta.created_at),
        bytes(meta.size_bytes),
        bytes(meta.stored_bytes),
        meta.tags.join(",")
    )
}

pub const SNAPSHOT_HEADER: &str = "id        name                     created (UTC)             size     stored  tags";

/// "2026-11-22T03:52:32.011749Z" → "2026-11-22 03:52:32": people read seconds; JSON keeps it all.
fn to_the_second(rfc3339: &str) -> String {
    rfc3339.split(['.', 'Z']).next().unwrap_or(rfc3339).replacen('T', " ", 1)
}
