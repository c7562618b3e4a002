//! Regions: where images are stored. Each region is one repository, in a local directory or
//! in an S3-compatible bucket; it is created on first use and opened once (opening derives the
//! key with Argon2, which takes a moment).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use drydock_engine::{InitOptions, Repository};
use drydock_storage::{LocalStorage, Retry, RetryPolicy, S3Config, S3Storage, Storage};

use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct RegionSpec {
    /// Short name used in the API, e.g. `local-1`.
    pub slug: String,
    /// Human name, e.g. "Local disk 1".
    pub name: String,
    pub location: RegionLocation,
    pub passphrase: Vec<u8>,
}

/// Where a region's repository lives.
#[derive(Clone, Debug)]
pub enum RegionLocation {
    /// A directory on this machine, created if missing.
    Local(PathBuf),
    /// A bucket, or a prefix of one, on an S3-compatible server. The bucket must exist.
    S3(S3Config),
}

/// Checks an S3 region's configuration (endpoint, bucket and prefix names, CA file) without
/// contacting the server.
pub fn check_s3_config(config: &S3Config) -> std::result::Result<(), String> {
    S3Storage::new(config.clone()).map(drop).map_err(|e| e.message)
}

pub struct Regions {
    specs: Vec<RegionSpec>,
    open: Mutex<HashMap<String, Arc<Repository>>>,
}

impl Regions {
    pub fn new(specs: Vec<RegionSpec>) -> Regions {
        Regions { specs, open: Mutex::new(HashMap::new()) }
    }

    pub fn specs(&self) -> &[RegionSpec] {
        &self.specs
    }

    pub fn spec(&self, slug: &str) -> Option<&RegionSpec> {
        self.specs.iter().find(|s| s.slug == slug)
    }

    /// The first configured region: where droplets go when they name none.
    pub fn default_slug(&self) -> &str {
        &self.specs[0].slug
    }

    /// Whether the region's repository can be opened now.
    pub fn available(&self, slug: &str) -> bool {
        self.repository(slug).is_ok()
    }

    /// The region's repository, initialised on first use.
    pub fn repository(&self, slug: &str) -> Result<Arc<Repository>> {
        let spec = self.spec(slug).ok_or_else(|| Error::Invalid(format!("region {slug} is not configured")))?;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(repo) = open.get(slug) {
            return Ok(repo.clone());
        }
        let storage: Arc<dyn Storage> = match &spec.location {
            RegionLocation::Local(path) => Arc::new(LocalStorage::create(path).map_err(|e| Error::Engine(e.into()))?),
            // Throttling and dropped connections are part of life on an object store: ridden out
            // with backoff rather than failing the action.
            RegionLocation::S3(config) => Arc::new(Retry::new(
                S3Storage::new(config.clone()).map_err(|e| Error::Engine(e.into()))?,
                RetryPolicy::default(),
            )),
        };
        let repo = match drydock_engine::probe(storage.as_ref()) {
            Ok(_) => Repository::open(storage, Some(&spec.passphrase))?,
            Err(drydock_engine::Error::NotARepository(_)) => {
                if let RegionLocation::S3(config) = &spec.location {
                    create_bucket(slug, config);
                }
                Repository::init(storage, InitOptions::encrypted(spec.passphrase.clone()))?
            }
            Err(e) => return Err(e.into()),
        };
        let repo = Arc::new(repo);
        open.insert(slug.to_string(), repo.clone());
        Ok(repo)
    }
}

/// A new S3 region's bucket is created if missing, as `restic init` does. Only a warning if
/// that fails: the key may lack the right to create buckets while the bucket exists, and if it
/// does not, initialising the repository fails next with S3's own reason.
fn create_bucket(slug: &str, config: &S3Config) {
    if let Err(e) = S3Storage::new(config.clone()).and_then(|s3| s3.create_bucket()) {
        tracing::warn!("region {slug}: creating bucket {}: {e}", config.bucket);
    }
}
