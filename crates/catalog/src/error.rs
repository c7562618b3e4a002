use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The named object does not exist (or belongs to another team).
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the catalog's state (a name taken, a resource locked).
    #[error("{0}")]
    Conflict(String),
    #[error("catalog {context}: {source}")]
    Sqlite {
        context: String,
        #[source]
        source: rusqlite::Error,
    },
    /// A stored value could not be read back (a bug or a hand-edited database).
    #[error("catalog holds an unreadable {0}")]
    Corrupt(String),
}

impl Error {
    pub fn not_found(what: impl fmt::Display) -> Self {
        Error::NotFound(what.to_string())
    }
}

/// Adds what the catalog was doing to a SQLite error.
pub(crate) trait Context<T> {
    fn context(self, what: &str) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, rusqlite::Error> {
    fn context(self, what: &str) -> Result<T> {
        self.map_err(|source| Error::Sqlite { context: what.to_string(), source })
    }
}
