//! Schema migrations: numbered SQL files applied in order, each once, recorded in
//! `schema_migrations`. A database newer than this binary is refused rather than guessed at.

use rusqlite::Connection;

use crate::error::{Context, Error, Result};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_images_listing.sql")),
    (3, include_str!("migrations/0003_backups.sql")),
];

pub fn run(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    .context("creating schema_migrations")?;
    let tx =
        conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).context("locking for migrations")?;
    let current: i64 = tx
        .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))
        .context("reading the schema version")?;
    let newest = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > newest {
        return Err(Error::Corrupt(format!(
            "schema version {current} (this drydock knows versions up to {newest}: upgrade drydock)"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql).context(&format!("applying migration {version}"))?;
        tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)", (version, crate::now()))
            .context("recording a migration")?;
    }
    tx.commit().context("committing migrations")
}
