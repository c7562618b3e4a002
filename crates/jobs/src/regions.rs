//! Regions: where images are stored. Each region is one repository; it is created on first
//! use and opened once (opening derives the key with Argon2, which takes a moment).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use drydock_engine::{InitOptions, Repository};
use drydock_storage::{LocalStorage, Storage};

use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct RegionSpec {
    /// Short name used in the API, e.g. `local-1`.
    pub slug: String,
    /// Human name, e.g. "Local disk 1".
    pub name: String,
    /// The repository's directory.
    pub path: PathBuf,
    pub passphrase: Vec<u8>,
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
        let storage: Arc<dyn Storage> =
            Arc::new(LocalStorage::create(&spec.path).map_err(|e| Error::Engine(e.into()))?);
        let repo = match drydock_engine::probe(storage.as_ref()) {
            Ok(_) => Repository::open(storage, Some(&spec.passphrase))?,
            Err(drydock_engine::Error::NotARepository(_)) => {
                Repository::init(storage, InitOptions::encrypted(spec.passphrase.clone()))?
            }
            Err(e) => return Err(e.into()),
        };
        let repo = Arc::new(repo);
        open.insert(slug.to_string(), repo.clone());
        Ok(repo)
    }
}
