//! The one interface the catalog's queries are written against, served by SQLite and by
//! PostgreSQL. Each query is written once, in the SQL both understand: `?N` placeholders
//! (rewritten to `$N` for PostgreSQL), `ON CONFLICT`, `RETURNING`, `CAST`. What SQLite offers
//! and PostgreSQL lacks (`group_concat`, `json_extract`, `json_each` over a text column) the
//! PostgreSQL schema defines as functions, so no query needs a second spelling.
//!
//! Values cross the interface as [`Value`]s, SQLite's loose types: PostgreSQL's strict ones are
//! met by converting each value to the type the server asks for (an integer bound to a boolean
//! column becomes a boolean; a boolean read back becomes 0 or 1).

mod pool;
mod postgres;
mod sqlite;

pub(crate) use postgres::Postgres;
pub(crate) use sqlite::Sqlite;

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// A value bound to a statement or read from a row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Anything that can be bound as a parameter.
pub(crate) trait ToValue {
    fn to_value(&self) -> Value;
}

/// Anything that can be read from a column; `None` when the stored value does not fit.
pub(crate) trait FromValue: Sized {
    fn from_value(value: &Value) -> Option<Self>;
}

/// Parameters as the catalog's statements take them: `params![team, name]`.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$(&$value as &dyn $crate::sql::ToValue),*] as &[&dyn $crate::sql::ToValue]
    };
}
pub(crate) use params;

/// Parameters from values gathered at run time (a listing's filters).
pub(crate) fn dynamic(values: &[Value]) -> Vec<&dyn ToValue> {
    values.iter().map(|v| v as &dyn ToValue).collect()
}

/// A database failure, from either backend.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", postgres::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// A value that the column's type cannot hold.
    #[error("{0}")]
    Type(String),
}

/// One row, read whole.
pub(crate) struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

/// How a column is named in [`Row::get`]: by position or by name.
pub(crate) trait Column: fmt::Display + Copy {
    fn index(self, columns: &[String]) -> Option<usize>;
}

impl Column for usize {
    fn index(self, columns: &[String]) -> Option<usize> {
        (self < columns.len()).then_some(self)
    }
}

impl Column for &str {
    fn index(self, columns: &[String]) -> Option<usize> {
        columns.iter().position(|c| c == self)
    }
}

impl Row {
    pub(crate) fn new(columns: Arc<[String]>, values: Vec<Value>) -> Row {
        Row { columns, values }
    }

    pub(crate) fn get<T: FromValue>(&self, column: impl Column) -> Result<T> {
        let index =
            column.index(&self.columns).ok_or_else(|| Error::Corrupt(format!("row without column {column}")))?;
        let value = &self.values[index];
        T::from_value(value).ok_or_else(|| {
            Error::Corrupt(format!("value {value:?} in column {} of type {}", self.columns[index], type_name::<T>()))
        })
    }
}

fn type_name<T>() -> &'static str {
    std::any::type_name::<T>().rsplit("::").next().unwrap_or("?")
}

/// The transaction a catalog function runs in: a read (a consistent snapshot) or a write
/// (alone: writers are serialized, see `Catalog`).
pub(crate) enum Tx<'a> {
    Sqlite(&'a rusqlite::Transaction<'a>),
    Postgres(postgres::PgTx<'a>),
}

impl Tx<'_> {
    /// Runs a statement; returns the number of rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: &[&dyn ToValue]) -> Result<u64, DbError> {
        match self {
            Tx::Sqlite(tx) => sqlite::execute(tx, sql, params),
            Tx::Postgres(tx) => tx.execute(sql, params),
        }
    }

    pub(crate) fn query(&self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>, DbError> {
        match self {
            Tx::Sqlite(tx) => sqlite::query(tx, sql, params),
            Tx::Postgres(tx) => tx.query(sql, params),
        }
    }

    /// Runs statements separated by semicolons, without parameters (migrations).
    pub(crate) fn batch(&self, sql: &str) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(tx) => Ok(tx.execute_batch(sql)?),
            Tx::Postgres(tx) => tx.batch(sql),
        }
    }

    pub(crate) fn query_opt(&self, sql: &str, params: &[&dyn ToValue]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    pub(crate) fn query_one(&self, sql: &str, params: &[&dyn ToValue]) -> Result<Row, DbError> {
        self.query_opt(sql, params)?.ok_or(DbError::Type("a query that returns one row returned none".into()))
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Tx::Postgres(_))
    }
}

/// `?N` placeholders as PostgreSQL writes them (`$N`); a bare `?` takes the number after the
/// highest one so far, as in SQLite. Quoted text is left alone.
pub(crate) fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let (mut quoted, mut highest) = (false, 0u32);
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let number = digits.parse().unwrap_or(highest + 1);
                highest = highest.max(number);
                out.push('$');
                out.push_str(&number.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl ToValue for i64 {
    fn to_value(&self) -> Value {
        Value::Int(*self)
    }
}

impl ToValue for u32 {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl FromValue for u64 {
    fn from_value(value: &Value) -> Option<Self> {
        i64::from_value(value).and_then(|i| u64::try_from(i).ok())
    }
}

impl FromValue for u32 {
    fn from_value(value: &Value) -> Option<Self> {
        i64::from_value(value).and_then(|i| u32::try_from(i).ok())
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Real(r) => Some(*r),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Option<Self> {
        i64::from_value(value).map(|i| i != 0)
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_as_sqlite_numbers_them() {
        assert_eq!(numbered_placeholders("a = ?1 AND b = ?12 OR c = ?1"), "a = $1 AND b = $12 OR c = $1");
        assert_eq!(numbered_placeholders("a = ? AND b = ? LIMIT 3 OFFSET ?"), "a = $1 AND b = $2 LIMIT 3 OFFSET $3");
        assert_eq!(numbered_placeholders("x = ?2 AND y = ?"), "x = $2 AND y = $3");
        assert_eq!(numbered_placeholders("x = '?' AND y = ?"), "x = '?' AND y = $1");
    }

    #[test]
    fn columns_are_read_by_name_or_position_and_misfits_are_named() {
        let row = Row::new(vec!["id".to_string(), "name".to_string()].into(), vec![Value::Int(7), Value::Null]);
        assert_eq!(row.get::<i64>("id").unwrap(), 7);
        assert_eq!(row.get::<Option<String>>(1).unwrap(), None);
        let error = row.get::<String>("name").unwrap_err().to_string();
        assert!(error.contains("column name"), "{error}");
        assert!(row.get::<i64>("missing").is_err());
        assert!(row.get::<i64>(2).is_err());
    }
}
