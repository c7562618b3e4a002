use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{Context, Result};
use crate::migrate;

/// Reader connections: at most this many reads run at once; more wait for one to be free.
const READERS_MAX: usize = 4;
/// How long a statement waits for another process's write (the CLI's `token create` while the
/// daemon runs) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Catalog {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Readers>,
    reader_freed: Condvar,
}

struct Readers {
    idle: Vec<Connection>,
    opened: usize,
}

impl Catalog {
    /// Opens (creating if needed) the catalog at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Catalog> {
        let mut writer = connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
        writer.pragma_update(None, "journal_mode", "WAL").context("enabling WAL")?;
        // WAL with synchronous=FULL: a committed action or image survives a power cut.
        writer.pragma_update(None, "synchronous", "FULL").context("setting synchronous")?;
        migrate::run(&mut writer)?;
        Ok(Catalog {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Readers { idle: Vec::new(), opened: 0 }),
            reader_freed: Condvar::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a reader connection (a consistent snapshot for its duration).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let pooled = {
            let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(conn) = readers.idle.pop() {
                    break Some(conn);
                }
                if readers.opened < READERS_MAX {
                    readers.opened += 1;
                    break None;
                }
                readers = self.reader_freed.wait(readers).unwrap_or_else(|e| e.into_inner());
            }
        };
        let mut conn = match pooled {
            Some(conn) => conn,
            None => match connect(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
                Ok(conn) => conn,
                Err(e) => {
                    self.readers.lock().unwrap_or_else(|e| e.into_inner()).opened -= 1;
                    self.reader_freed.notify_one();
                    return Err(e);
                }
            },
        };
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred).context("starting a read")?;
            let value = f(&tx)?;
            tx.finish().context("ending a read")?;
            Ok(value)
        })();
        self.readers.lock().unwrap_or_else(|e| e.into_inner()).idle.push(conn);
        self.reader_freed.notify_one();
        result
    }

    /// Runs `f` in a write transaction, committed if `f` succeeds.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a write")?;
        let value = f(&tx)?;
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
