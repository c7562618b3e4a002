use drydock_storage as storage;

pub type Result<T> = std::result::Result<T, Error>;

/// Everything the engine reports. Messages name the object and say what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] storage::Error),

    #[error("{0} is not a drydock repository (no config object)")]
    NotARepository(String),

    #[error("{0} already holds a drydock repository")]
    AlreadyARepository(String),

    #[error("wrong passphrase: no key slot of this repository opens with it")]
    WrongPassphrase,

    #[error("{object} is damaged: {reason}")]
    Corrupt { object: String, reason: String },

    #[error("{object} uses format version {found}, this drydock reads up to {supported}")]
    UnsupportedVersion { object: String, found: u16, supported: u16 },

    #[error("{0}")]
    NotFound(String),

    #[error("{0}")]
    InvalidInput(String),

    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },

    #[error("cancelled")]
    Cancelled,
}

impl Error {
    pub fn corrupt(object: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt { object: object.into(), reason: reason.into() }
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { what: what.into(), source }
    }
}
