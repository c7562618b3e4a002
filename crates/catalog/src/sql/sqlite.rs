//! SQLite in WAL mode: one writer connection behind a mutex, a pool of reader connections beside
//! it, so reads never wait for a write.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use super::pool::Pool;
use super::{DbError, Row, ToValue, Tx, Value};
use crate::error::{Context, Result};

/// Reader connections: at most this many reads run at once; more wait for one to be free.
const READERS_MAX: usize = 4;
/// How long a statement waits for another process's write (the CLI's `token create` while the
/// daemon runs) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Sqlite {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Pool<Connection>,
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path`.
    pub(crate) fn open(path: &Path) -> Result<Sqlite> {
        let writer = connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
        writer.pragma_update(None, "journal_mode", "WAL").context("enabling WAL")?;
        // WAL with synchronous=FULL: a committed action or image survives a power cut.
        writer.pragma_update(None, "synchronous", "FULL").context("setting synchronous")?;
        Ok(Sqlite { path: path.to_path_buf(), writer: Mutex::new(writer), readers: Pool::new(READERS_MAX) })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a reader connection (a consistent snapshot for its duration).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        let open = || connect(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY);
        self.readers.with(
            open,
            |_| true,
            |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred).context("starting a read")?;
                let value = f(&Tx::Sqlite(&tx))?;
                tx.finish().context("ending a read")?;
                Ok(value)
            },
        )
    }

    /// Runs `f` in a write transaction, committed if `f` succeeds.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a write")?;
        let value = f(&Tx::Sqlite(&tx))?;
        tx.commit().context("committing")?;
        Ok(value)
    }
}

fn connect(path: &Path, flags: OpenFlags) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .context(&format!("opening {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT).context("setting the busy timeout")?;
    conn.pragma_update(None, "foreign_keys", "ON").context("enabling foreign keys")?;
    Ok(conn)
}

pub(super) fn execute(tx: &Transaction, sql: &str, params: &[&dyn ToValue]) -> Result<u64, DbError> {
    let mut statement = tx.prepare_cached(sql)?;
    Ok(statement.execute(rusqlite::params_from_iter(params.iter().map(|p| p.to_value())))? as u64)
}

pub(super) fn query(tx: &Transaction, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>, DbError> {
    let mut statement = tx.prepare_cached(sql)?;
    let columns: Arc<[String]> = statement.column_names().into_iter().map(str::to_string).collect();
    let mut rows = statement.query(rusqlite::params_from_iter(params.iter().map(|p| p.to_value())))?;
    let mut read = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..columns.len()).map(|i| row.get_ref(i).map(value)).collect::<rusqlite::Result<Vec<_>>>()?;
        read.push(Row::new(columns.clone(), values));
    }
    Ok(read)
}

fn value(stored: ValueRef) -> Value {
    match stored {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ToSqlOutput::Borrowed;
        Ok(match self {
            Value::Null => Borrowed(ValueRef::Null),
            Value::Int(i) => Borrowed(ValueRef::Integer(*i)),
            Value::Real(r) => Borrowed(ValueRef::Real(*r)),
            Value::Text(t) => Borrowed(ValueRef::Text(t.as_bytes())),
            Value::Blob(b) => Borrowed(ValueRef::Blob(b)),
        })
    }
}
