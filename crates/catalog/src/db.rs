use std::path::Path;
use std::sync::OnceLock;

use crate::error::Result;
use crate::leases::Worker;
use crate::migrate;
use crate::sql::{Postgres, Sqlite, Tx};

/// The catalog, in SQLite (one daemon, the default) or PostgreSQL (several daemons sharing
/// it). Every query is written once against [`Tx`]; see the `sql` module for how the two
/// databases are made to agree.
pub struct Catalog {
    database: Database,
    /// Set by a daemon sharing the catalog (see `leases`).
    pub(crate) worker: OnceLock<Worker>,
}

enum Database {
    Sqlite(Sqlite),
    Postgres(Box<Postgres>),
}

impl Catalog {
    /// Opens (creating if needed) the SQLite catalog at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Catalog> {
        Catalog::migrated(Database::Sqlite(Sqlite::open(path)?))
    }

    /// Connects to the PostgreSQL catalog at `url` (`postgres://user:password@host:port/db`)
    /// and brings its schema up to date; the database must exist.
    pub fn connect(url: &str) -> Result<Catalog> {
        Catalog::migrated(Database::Postgres(Box::new(Postgres::connect(url)?)))
    }

    fn migrated(database: Database) -> Result<Catalog> {
        let catalog = Catalog { database, worker: OnceLock::new() };
        migrate::run(&catalog)?;
        Ok(catalog)
    }

    /// Where the catalog is, for messages: a file path or a PostgreSQL address (no password).
    pub fn describe(&self) -> String {
        match &self.database {
            Database::Sqlite(db) => format!("SQLite catalog {}", db.path().display()),
            Database::Postgres(db) => db.describe().to_string(),
        }
    }

    /// True when several daemons may share this catalog.
    pub fn is_shared(&self) -> bool {
        matches!(self.database, Database::Postgres(_))
    }

    /// Runs `f` in a read transaction: a consistent snapshot for its duration.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        match &self.database {
            Database::Sqlite(db) => db.read(f),
            Database::Postgres(db) => db.read(f),
        }
    }

    /// Runs `f` in a write transaction, alone among writers, committed if `f` succeeds.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        match &self.database {
            Database::Sqlite(db) => db.write(f),
            Database::Postgres(db) => db.write(f),
        }
    }
}
