//! The drydock daemon: reads the configuration, opens the catalog and the regions, recovers
//! what a previous run left unfinished, and serves the API over HTTPS until SIGTERM.

mod body;
mod config;
mod error;
mod lock;
mod region_config;
mod serve;
mod tls;
mod webhooks;

pub use config::{Config, ConfigOverrides};
pub use error::{Error, Result};
pub use region_config::RegionConfig;
pub use serve::run;
pub use webhooks::{DeliverySettings, WebhookConfig, Webhooks, verify_signature};

use std::sync::Arc;

use drydock_catalog::Catalog;
use drydock_jobs::{RegionSpec, Regions};

/// The configured catalog (PostgreSQL, or SQLite in the data directory), created and migrated
/// if needed.
pub fn open_catalog(config: &Config) -> Result<Catalog> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| Error::io(format!("creating data directory {}", config.data_dir.display()), e))?;
    match &config.database_url {
        Some(url) => Ok(Catalog::connect(url)?),
        None => Ok(Catalog::open(&config.catalog_path())?),
    }
}

/// The configured regions with their passphrases read.
pub fn open_regions(config: &Config) -> Result<Arc<Regions>> {
    let mut specs = Vec::new();
    for region in &config.regions {
        let passphrase = config::read_or_create_passphrase(&region.passphrase_file)?;
        specs.push(RegionSpec {
            slug: region.slug.clone(),
            name: region.name.clone(),
            location: region.location.clone(),
            passphrase,
        });
    }
    Ok(Arc::new(Regions::new(specs)))
}
