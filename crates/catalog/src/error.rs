use std::fmt;

use crate::sql::DbError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The named object does not exist (or belongs to another team).
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the catalog's state (a name taken, a resource locked).
    #[error("{0}")]
    Conflict(String),
    /// The database failed (or could not be reached) while the catalog was doing `context`.
    /// The cause is part of the message and not a `source`: error chains would repeat it.
    #[error("catalog {context}: {cause}")]
    Database { context: String, cause: DbError },
    /// A stored value could not be read back (a bug or a hand-edited database).
    #[error("catalog holds an unreadable {0}")]
    Corrupt(String),
    /// The database URL cannot be used.
    #[error("catalog configuration: {0}")]
    Config(String),
}

impl Error {
    pub fn not_found(what: impl fmt::Display) -> Self {
        Error::NotFound(what.to_string())
    }
}

/// Adds what the catalog was doing to a database error.
pub(crate) trait Context<T> {
    fn context(self, what: &str) -> Result<T>;
}

impl<T, E: Into<DbError>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: &str) -> Result<T> {
        self.map_err(|e| Error::Database { context: what.to_string(), cause: e.into() })
    }
}
