//! PostgreSQL, for several drydock daemons sharing one catalog.
//!
//! The catalog's functions are synchronous and are called from anywhere, async tasks included,
//! so the connections live on a small runtime of their own and each statement is handed to it
//! and waited for on a plain channel (never `block_on`, which must not run inside a runtime).
//!
//! Writes are serialized across every daemon by a transaction-level advisory lock, the same
//! guarantee SQLite's single writer gives: a write sees every write committed before it, so
//! compare-and-set updates and "check, then insert" need no retry loop. Catalog writes are
//! small and few (an action's start, progress once a second, its end), so one at a time is
//! not a bottleneck. Reads run in REPEATABLE READ, READ ONLY transactions: a consistent
//! snapshot that never waits for a writer.

use std::collections::HashMap;
use std::error::Error as _;
use std::future::Future;
use std::sync::{Arc, Mutex};

use postgres_types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, Statement};

use super::pool::Pool;
use super::{DbError, Row, ToValue, Tx, Value, numbered_placeholders};
use crate::error::{Context, Error, Result};

/// Reader connections: at most this many reads run at once; more wait for one to be free.
const READERS_MAX: usize = 4;
/// The advisory lock every write holds (any constant: it only has to be the same everywhere).
const WRITE_LOCK_KEY: i64 = 0x0064_7279_646f_636b; // "drydock"
/// Prepared statements kept per connection; the catalog has far fewer distinct statements.
const STATEMENTS_MAX: usize = 512;

pub(crate) struct Postgres {
    /// Where the catalog is, without its password, for messages.
    display: String,
    config: tokio_postgres::Config,
    /// `None` only while dropping (see `Drop`).
    runtime: Option<tokio::runtime::Runtime>,
    writer: Mutex<Option<Session>>,
    readers: Pool<Session>,
}

/// One connection and the statements prepared on it.
struct Session {
    client: Arc<Client>,
    statements: HashMap<String, Statement>,
}

/// A transaction in progress on one session.
pub(crate) struct PgTx<'a> {
    db: &'a Postgres,
    session: std::cell::RefCell<&'a mut Session>,
}

impl Postgres {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`).
    pub(crate) fn connect(url: &str) -> Result<Postgres> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| Error::Config(format!("database URL {url:?}: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("catalog-postgres")
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("starting the PostgreSQL client: {e}")))?;
        let db = Postgres {
            display: describe_target(&config),
            config,
            runtime: Some(runtime),
            writer: Mutex::new(None),
            readers: Pool::new(READERS_MAX),
        };
        // Connect now, so that a wrong URL or a server that is down is reported at start.
        *db.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(db.session()?);
        Ok(db)
    }

    pub(crate) fn describe(&self) -> &str {
        &self.display
    }

    /// Runs `f` in a read-only snapshot on a reader connection.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        let begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
        self.readers.with(|| self.session(), |s| !s.client.is_closed(), |session| self.transaction(session, begin, f))
    }

    /// Runs `f` in a write transaction, alone among every daemon's writes, committed if `f`
    /// succeeds.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut session = match writer.take().filter(|s| !s.client.is_closed()) {
            Some(session) => session,
            None => self.session()?,
        };
        let begin = format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})");
        let result = self.transaction(&mut session, &begin, f);
        if !session.client.is_closed() {
            *writer = Some(session);
        }
        result
    }

    fn transaction<T>(&self, session: &mut Session, begin: &str, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        self.batch(session, begin).context("starting a transaction")?;
        let result = f(&Tx::Postgres(PgTx { db: self, session: std::cell::RefCell::new(session) }));
        match result {
            Ok(value) => {
                self.batch(session, "COMMIT").context("committing")?;
                Ok(value)
            }
            Err(e) => {
                // A failed rollback means the connection is gone: the server drops the
                // transaction with it.
                let _ = self.batch(session, "ROLLBACK");
                Err(e)
            }
        }
    }

    fn batch(&self, session: &Session, sql: &str) -> Result<(), DbError> {
        let (client, sql) = (session.client.clone(), sql.to_string());
        self.wait(async move { client.batch_execute(&sql).await })?;
        Ok(())
    }

    fn session(&self) -> Result<Session> {
        let config = self.config.clone();
        let client = self
            .wait(async move {
                let (client, connection) = config.connect(NoTls).await?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::warn!("catalog connection to PostgreSQL ended: {}", describe(&e));
                    }
                });
                Ok::<_, tokio_postgres::Error>(client)
            })
            .map_err(DbError::from)
            .context(&format!("connecting to {}", self.display))?;
        Ok(Session { client: Arc::new(client), statements: HashMap::new() })
    }

    /// Runs `future` on the catalog's runtime and waits for it.
    fn wait<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let runtime = self.runtime.as_ref().expect("the runtime lives as long as the catalog");
        runtime.spawn(async move {
            let _ = sender.send(future.await);
        });
        receiver.recv().expect("the catalog's runtime runs every statement to its end")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which is refused inside another runtime
        // (where the last catalog handle may well be dropped).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl PgTx<'_> {
    pub(super) fn execute(&self, sql: &str, params: &[&dyn ToValue]) -> Result<u64, DbError> {
        let (client, statement) = self.prepare(sql)?;
        let values: Vec<Value> = params.iter().map(|p| p.to_value()).collect();
        self.db
            .wait(async move {
                let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                client.execute(&statement, &refs).await
            })
            .map_err(DbError::from)
    }

    pub(super) fn query(&self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>, DbError> {
        let (client, statement) = self.prepare(sql)?;
        let columns: Arc<[String]> = statement.columns().iter().map(|c| c.name().to_string()).collect();
        let values: Vec<Value> = params.iter().map(|p| p.to_value()).collect();
        let rows = self.db.wait(async move {
            let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            client.query(&statement, &refs).await
        })?;
        rows.iter()
            .map(|row| {
                let values = (0..row.len()).map(|i| column_value(row, i)).collect::<Result<Vec<_>, DbError>>()?;
                Ok(Row::new(columns.clone(), values))
            })
            .collect()
    }

    /// Runs statements separated by semicolons, without parameters (migrations).
    pub(super) fn batch(&self, sql: &str) -> Result<(), DbError> {
        self.db.batch(&self.session.borrow(), sql)
    }

    fn prepare(&self, sql: &str) -> Result<(Arc<Client>, Statement), DbError> {
        let mut session = self.session.borrow_mut();
        let client = session.client.clone();
        if let Some(statement) = session.statements.get(sql) {
            return Ok((client, statement.clone()));
        }
        let text = numbered_placeholders(sql);
        let preparing = client.clone();
        let statement = self.db.wait(async move { preparing.prepare(&text).await })?;
        if session.statements.len() >= STATEMENTS_MAX {
            session.statements.clear();
        }
        session.statements.insert(sql.to_string(), statement.clone());
        Ok((client, statement))
    }
}

/// A column as a [`Value`]: SQLite's types, booleans as 0 and 1.
fn column_value(row: &tokio_postgres::Row, i: usize) -> Result<Value, DbError> {
    let ty = row.columns()[i].type_();
    let value = match *ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::Int),
        Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(|v| Value::Int(v.into())),
        Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(|v| Value::Int(v.into())),
        Type::BOOL => row.try_get::<_, Option<bool>>(i)?.map(|v| Value::Int(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(Value::Real),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(i)?.map(|v| Value::Real(v.into())),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => row.try_get::<_, Option<String>>(i)?.map(Value::Text),
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob),
        _ => return Err(DbError::Type(format!("column {} has type {ty}, which the catalog does not read", i + 1))),
    };
    Ok(value.unwrap_or(Value::Null))
}

impl ToSql for Value {
    /// Converts to whatever type the server inferred for the parameter.
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let mismatch = || format!("{self:?} cannot be sent as {ty}");
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => i32::try_from(*i).map_err(|_| mismatch())?.to_sql(ty, out),
            (Value::Int(i), &Type::INT2) => i16::try_from(*i).map_err(|_| mismatch())?.to_sql(ty, out),
            (Value::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Int(i), &Type::TEXT | &Type::VARCHAR) => i.to_string().to_sql(ty, out),
            (Value::Real(r), &Type::FLOAT8) => r.to_sql(ty, out),
            (Value::Real(r), &Type::FLOAT4) => (*r as f32).to_sql(ty, out),
            (Value::Text(t), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME) => t.to_sql(ty, out),
            (Value::Text(t), &Type::INT8) => t.parse::<i64>().map_err(|_| mismatch())?.to_sql(ty, out),
            (Value::Blob(b), &Type::BYTEA) => b.to_sql(ty, out),
            _ => Err(mismatch().into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// The server's own words (message, detail) rather than tokio-postgres' "db error".
pub(super) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        };
    }
    // Its own text is only the kind of failure ("error connecting to server"): add the cause.
    match error.source() {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

/// `postgres://user@host:port/database`, never the password.
fn describe_target(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let database = config.get_dbname().unwrap_or(user);
    format!("PostgreSQL catalog postgres://{user}@{host}:{port}/{database}")
}
