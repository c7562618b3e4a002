pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a job or a disk check failed. Messages are one line and name the object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request cannot be carried out as asked (a disk outside the allowed roots, a
    /// droplet with no power driver, an image of another droplet): the API answers 422.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Catalog(#[from] drydock_catalog::Error),
    #[error(transparent)]
    Engine(#[from] drydock_engine::Error),
    #[error(transparent)]
    Power(#[from] drydock_power::PowerError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// What was being done, and where, before why it failed: a storage error names a bucket and
    /// an object, but the user knows the region by its slug.
    #[error("{context}: {source}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context { context: context.into(), source: Box::new(self) }
    }
}
