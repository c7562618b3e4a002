//! Schema migrations: numbered SQL files applied in order, each once, recorded in
//! `schema_migrations`. A database newer than this binary is refused rather than guessed at.
//!
//! Each database has its own files, with the same version numbers. PostgreSQL catalogs began
//! at version 3, whose one file holds the whole schema of SQLite's versions 1 to 3; a later
//! version adds a file to both lists.

use crate::Catalog;
use crate::error::{Context, Error, Result};

const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("migrations/sqlite/0001_initial.sql")),
    (2, include_str!("migrations/sqlite/0002_images_listing.sql")),
    (3, include_str!("migrations/sqlite/0003_backups.sql")),
    (4, include_str!("migrations/sqlite/0004_worker_leases.sql")),
];

const POSTGRES: &[(i64, &str)] = &[
    (3, include_str!("migrations/postgres/0003_initial.sql")),
    (4, include_str!("migrations/postgres/0004_worker_leases.sql")),
];

pub fn run(catalog: &Catalog) -> Result<()> {
    // One write transaction: two daemons starting together migrate once.
    catalog.write(|tx| {
        let migrations = if tx.is_postgres() { POSTGRES } else { SQLITE };
        tx.batch("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)")
            .context("creating schema_migrations")?;
        let current: i64 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations", &[])
            .context("reading the schema version")?
            .get(0)?;
        let newest = migrations.last().map_or(0, |m| m.0);
        if current > newest {
            return Err(Error::Corrupt(format!(
                "schema version {current} (this drydock knows versions up to {newest}: upgrade drydock)"
            )));
        }
        for (version, sql) in migrations.iter().filter(|(v, _)| *v > current) {
            tx.batch(sql).context(&format!("applying migration {version}"))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                crate::sql::params![version, crate::now()],
            )
            .context("recording a migration")?;
        }
        Ok(())
    })
}
