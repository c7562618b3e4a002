//! The daemon's configuration: a TOML file, then `DRYDOCK_*` environment variables, then
//! flags, each overriding the one before. With nothing configured, everything lives in the data
//! directory: the catalog, a self-signed certificate, the repository passphrase, and one region
//! `local-1`.
//!
//! ```toml
//! data_dir = "/var/lib/drydock"
//! database_url = "postgres://drydock:PASSWORD@db.internal:5432/drydock"   # default: SQLite in data_dir
//! worker_lease_secs = 30        # with PostgreSQL: a dead daemon's actions are taken over after this
//! listen = "0.0.0.0:8443"
//! workers = 2
//! disk_roots = ["/var/lib/libvirt/images", "/dev"]
//! plain_http = false            # only behind a TLS-terminating proxy
//!
//! [tls]
//! cert = "/etc/drydock/cert.pem"
//! key = "/etc/drydock/key.pem"
//!
//! [[regions]]                  # a local directory; an S3 bucket is `[regions.s3]` (region_config.rs)
//! slug = "local-1"
//! name = "Local disk"
//! path = "/srv/drydock/local-1"
//! passphrase_file = "/etc/drydock/local-1.passphrase"
//!
//! [scheduler]
//! tick_secs = 30                # how often every policy is looked at
//! max_concurrent_backups = 2    # scheduled backups at once (default: workers)
//! gc_interval_hours = 24
//! prune_interval_minutes = 10   # retention is also applied after every backup
//!
//! [prices]                      # per GiB-month of stored data; DigitalOcean's by default
//! snapshot_gib_month = 0.06
//! backup_daily_gib_month = 0.03
//!
//! [[webhooks]]
//! url = "https://alerts.example.com/drydock"
//! secret_file = "/etc/drydock/webhook.secret"
//! events = ["backup.failed", "backup.missed"]
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::region_config::{self, RegionConfig, RegionFile};
use crate::webhooks::WebhookConfig;

const LISTEN_DEFAULT: &str = "127.0.0.1:8443";
const DATA_DIR_DEFAULT: &str = "drydock-data";
const SHUTDOWN_GRACE_DEFAULT: Duration = Duration::from_secs(30);
const WORKER_LEASE_SECS_DEFAULT: u64 = 30;
const PASSPHRASE_BYTES: usize = 32;

/// What the file may say. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    worker_lease_secs: Option<u64>,
    listen: Option<String>,
    workers: Option<usize>,
    disk_roots: Option<Vec<PathBuf>>,
    plain_http: Option<bool>,
    shutdown_grace_secs: Option<u64>,
    rate_limit_per_hour: Option<u32>,
    tls: Option<TlsFile>,
    regions: Option<Vec<RegionFile>>,
    scheduler: Option<SchedulerFile>,
    prices: Option<drydock_schedule::cost::Prices>,
    webhooks: Option<Vec<WebhookConfig>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchedulerFile {
    enabled: Option<bool>,
    tick_secs: Option<f64>,
    max_concurrent_backups: Option<usize>,
    gc_interval_hours: Option<f64>,
    prune_interval_minutes: Option<f64>,
    /// For tests only: scheduler seconds per real second, from `clock_epoch` (RFC 3339; by
    /// default when the configuration was read).
    clock_speed: Option<f64>,
    clock_epoch: Option<String>,
}

/// The scheduler's settings, resolved.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    pub enabled: bool,
    pub tick: Duration,
    pub max_concurrent_backups: usize,
    pub gc_interval: Duration,
    pub prune_interval: Duration,
    pub clock_speed: f64,
    pub clock_epoch: jiff::Timestamp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: PathBuf,
    key: PathBuf,
}

/// Values from flags (and the environment, which clap reads for them).
#[derive(Clone, Debug, Default)]
pub struct ConfigOverrides {
    pub config_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub plain_http: bool,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    /// The catalog's database: a PostgreSQL URL, or `None` for SQLite in the data directory.
    pub database_url: Option<String>,
    /// How long an action stays with a daemon sharing the catalog without the daemon renewing
    /// its lease: after that, another daemon takes it over.
    pub worker_lease: Duration,
    pub listen: SocketAddr,
    pub workers: usize,
    pub disk_roots: Vec<PathBuf>,
    pub plain_http: bool,
    /// A configured certificate and key; `None` means the self-signed pair in the data directory.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub shutdown_grace: Duration,
    pub rate_limit_per_hour: u32,
    pub regions: Vec<RegionConfig>,
    pub scheduler: SchedulerConfig,
    pub prices: drydock_schedule::cost::Prices,
    pub webhooks: Vec<WebhookConfig>,
}

impl Config {
    pub fn load(overrides: &ConfigOverrides) -> Result<Config> {
        let file = match &overrides.config_file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
                toml::from_str::<FileConfig>(&text).map_err(|e| {
                    Error::Config(format!(
                        "{}: {}",
                        path.display(),
                        e.to_string().lines().collect::<Vec<_>>().join(" ")
                    ))
                })?
            }
            None => FileConfig::default(),
        };
        let data_dir = overrides.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT));
        let data_dir = std::path::absolute(&data_dir).map_err(|e| Error::io("resolving the data directory", e))?;
        let listen_text = overrides.listen.clone().or(file.listen).unwrap_or_else(|| LISTEN_DEFAULT.to_string());
        let listen = listen_text
            .parse::<SocketAddr>()
            .map_err(|_| Error::Config(format!("listen address {listen_text:?} is not of the form 127.0.0.1:8443")))?;
        let workers = file.workers.unwrap_or(2);
        if !(1..=64).contains(&workers) {
            return Err(Error::Config(format!("workers must be 1 to 64, not {workers}")));
        }
        let mut disk_roots = file.disk_roots.unwrap_or_default();
        disk_roots.push(data_dir.join("disks"));
        let regions = region_config::regions(file.regions, &data_dir)?;
        let scheduler = scheduler_config(file.scheduler.unwrap_or_default(), workers)?;
        let webhooks = file.webhooks.unwrap_or_default();
        for webhook in &webhooks {
            webhook.validate().map_err(Error::Config)?;
        }
        let database_url = overrides.database_url.clone().or(file.database_url).filter(|url| !url.is_empty());
        if let Some(url) = &database_url
            && !url.starts_with("postgres://")
            && !url.starts_with("postgresql://")
        {
            return Err(Error::Config(format!(
                "database_url must be a postgres:// URL (the default catalog is SQLite in the data directory), not {:?}",
                url.split_once("://").map_or(url.as_str(), |(scheme, _)| scheme)
            )));
        }
        let worker_lease_secs = file.worker_lease_secs.unwrap_or(WORKER_LEASE_SECS_DEFAULT);
        if !(3..=3600).contains(&worker_lease_secs) {
            return Err(Error::Config(format!("worker_lease_secs must be 3 to 3600, not {worker_lease_secs}")));
        }
        Ok(Config {
            database_url,
            worker_lease: Duration::from_secs(worker_lease_secs),
            scheduler,
            prices: file.prices.unwrap_or_default(),
            webhooks,
            listen,
            workers,
            disk_roots,
            plain_http: overrides.plain_http || file.plain_http.unwrap_or(false),
            tls: file.tls.map(|t| (t.cert, t.key)),
            shutdown_grace: file.shutdown_grace_secs.map_or(SHUTDOWN_GRACE_DEFAULT, Duration::from_secs),
            rate_limit_per_hour: file.rate_limit_per_hour.unwrap_or(5000),
            regions,
            data_dir,
        })
    }

    pub fn catalog_path(&self) -> PathBuf {
        self.data_dir.join("catalog.sqlite")
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }

    pub fn scratch_dir(&self) -> PathBuf {
        self.data_dir.join("scratch")
    }

    /// The certificate clients should trust: the configured one or the self-signed one.
    pub fn cert_path(&self) -> PathBuf {
        self.tls.as_ref().map_or_else(|| self.tls_dir().join("cert.pem"), |(cert, _)| cert.clone())
    }
}

fn scheduler_config(file: SchedulerFile, workers: usize) -> Result<SchedulerConfig> {
    let positive = |name: &str, value: Option<f64>, default: f64| -> Result<f64> {
        match value {
            None => Ok(default),
            Some(v) if v.is_finite() && v > 0.0 => Ok(v),
            Some(v) => Err(Error::Config(format!("scheduler.{name} must be a positive number, not {v}"))),
        }
    };
    let max_concurrent_backups = file.max_concurrent_backups.unwrap_or(workers);
    if max_concurrent_backups == 0 {
        return Err(Error::Config("scheduler.max_concurrent_backups must be at least 1".into()));
    }
    Ok(SchedulerConfig {
        enabled: file.enabled.unwrap_or(true),
        tick: Duration::from_secs_f64(positive("tick_secs", file.tick_secs, 30.0)?),
        max_concurrent_backups,
        gc_interval: Duration::from_secs_f64(positive("gc_interval_hours", file.gc_interval_hours, 24.0)? * 3600.0),
        prune_interval: Duration::from_secs_f64(
            positive("prune_interval_minutes", file.prune_interval_minutes, 10.0)? * 60.0,
        ),
        clock_speed: positive("clock_speed", file.clock_speed, 1.0)?,
        clock_epoch: match &file.clock_epoch {
            None => jiff::Timestamp::now(),
            Some(text) => text
                .parse()
                .map_err(|_| Error::Config(format!("scheduler.clock_epoch must be an RFC 3339 time, not {text:?}")))?,
        },
    })
}

/// A region's passphrase: read from its file, or, the first time, made up and written there
/// (readable by the owner only). Losing it loses the region's data, so it is printed about.
pub fn read_or_create_passphrase(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes).trim_end_matches(['\n', '\r']).to_string();
            if text.is_empty() {
                return Err(Error::Config(format!("passphrase file {} is empty", path.display())));
            }
            Ok(text.into_bytes())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut random = [0u8; PASSPHRASE_BYTES];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
                .map_err(|_| Error::Config("the system has no randomness".into()))?;
            let text: String = random.iter().map(|b| format!("{b:02x}")).collect();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
                let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
            }
            let mut file = std::fs::File::options()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| Error::io(format!("creating passphrase file {}", path.display()), e))?;
            file.write_all(format!("{text}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io(format!("writing passphrase file {}", path.display()), e))?;
            tracing::warn!(
                "created repository passphrase {}: back it up, without it no backup can be read",
                path.display()
            );
            Ok(text.into_bytes())
        }
        Err(e) => Err(Error::io(format!("reading passphrase file {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_put_everything_in_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let config =
            Config::load(&ConfigOverrides { data_dir: Some(dir.path().into()), ..Default::default() }).unwrap();
        assert_eq!(config.listen.to_string(), LISTEN_DEFAULT);
        assert_eq!(config.regions.len(), 1);
        assert_eq!(config.regions[0].slug, "local-1");
        assert!(
            matches!(&config.regions[0].location, drydock_jobs::RegionLocation::Local(path) if path.starts_with(dir.path()))
        );
        assert!(config.disk_roots.contains(&dir.path().join("disks")));
        assert!(!config.plain_http);
    }

    #[test]
    fn flags_override_the_file_and_typos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("drydock.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nworkers = 3\n[[regions]]\nslug = \"nyc-1\"\npath = \"/srv/nyc\"\n",
        )
        .unwrap();
        let overrides = ConfigOverrides {
            config_file: Some(file.clone()),
            listen: Some("127.0.0.1:9100".into()),
            ..Default::default()
        };
        let config = Config::load(&overrides).unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.workers, 3);
        assert_eq!(config.regions[0].slug, "nyc-1");

        std::fs::write(&file, "listne = \"x\"\n").unwrap();
        let error =
            Config::load(&ConfigOverrides { config_file: Some(file.clone()), ..Default::default() }).unwrap_err();
        assert!(error.to_string().contains("listne"), "{error}");
        std::fs::write(&file, "[[regions]]\nslug = \"NYC 1\"\npath = \"/x\"\n").unwrap();
        assert!(Config::load(&ConfigOverrides { config_file: Some(file), ..Default::default() }).is_err());
    }

    #[test]
    fn the_catalog_is_sqlite_unless_a_postgres_url_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("drydock.toml");
        let load = |database_url: Option<&str>| {
            let overrides = ConfigOverrides {
                config_file: Some(file.clone()),
                database_url: database_url.map(str::to_string),
                ..Default::default()
            };
            Config::load(&overrides)
        };
        std::fs::write(&file, "").unwrap();
        assert_eq!(load(None).unwrap().database_url, None);
        std::fs::write(&file, "database_url = \"postgres://drydock@db:5432/drydock\"\n").unwrap();
        assert_eq!(load(None).unwrap().database_url.as_deref(), Some("postgres://drydock@db:5432/drydock"));
        let flag = load(Some("postgresql://other@db/x")).unwrap();
        assert_eq!(flag.database_url.as_deref(), Some("postgresql://other@db/x"), "the flag wins");
        let error = load(Some("mysql://root:secret@db/x")).unwrap_err().to_string();
        assert!(error.contains("postgres://") && error.contains("\"mysql\"") && !error.contains("secret"), "{error}");
    }

    #[test]
    fn the_passphrase_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets").join("p");
        let first = read_or_create_passphrase(&path).unwrap();
        assert_eq!(read_or_create_passphrase(&path).unwrap(), first);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
