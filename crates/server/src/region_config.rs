//! `[[regions]]`: where each region's repository lives — a local directory (`path`) or an
//! S3-compatible bucket (`[regions.s3]`) — and its passphrase file.
//!
//! ```toml
//! [[regions]]
//! slug = "fra1"
//! name = "Spaces, Frankfurt"
//! passphrase_file = "/etc/drydock/fra1.passphrase"
//! [regions.s3]
//! endpoint = "https://fra1.digitaloceanspaces.com"
//! bucket = "acme-backups"
//! prefix = "drydock"                       # optional
//! region = "us-east-1"                     # the signing region; optional
//! access_key_id = "DO00…"                  # or AWS_ACCESS_KEY_ID
//! secret_access_key_file = "/etc/drydock/fra1.secret"   # or AWS_SECRET_ACCESS_KEY
//! path_style = true                        # default; false for bucket.endpoint addressing
//! ca_certificate = "/etc/drydock/s3-ca.pem"   # optional: trust only this CA
//! ```

use std::path::{Path, PathBuf};

use drydock_jobs::{RegionLocation, S3Config, S3Credentials};
use serde::Deserialize;

use crate::error::{Error, Result};

const REGION_SLUG_BYTES_MAX: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegionFile {
    slug: String,
    name: Option<String>,
    path: Option<PathBuf>,
    s3: Option<S3File>,
    passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct S3File {
    endpoint: String,
    bucket: String,
    prefix: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key_file: Option<PathBuf>,
    path_style: Option<bool>,
    ca_certificate: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct RegionConfig {
    pub slug: String,
    pub name: String,
    pub location: RegionLocation,
    pub passphrase_file: PathBuf,
}

/// The configured regions, or the one default region `local-1` in the data directory.
pub(crate) fn regions(files: Option<Vec<RegionFile>>, data_dir: &Path) -> Result<Vec<RegionConfig>> {
    let default_passphrase = data_dir.join("secrets").join("repository.passphrase");
    let Some(files) = files else {
        return Ok(vec![RegionConfig {
            slug: "local-1".into(),
            name: "Local disk".into(),
            location: RegionLocation::Local(data_dir.join("regions").join("local-1")),
            passphrase_file: default_passphrase,
        }]);
    };
    let regions = files
        .into_iter()
        .map(|file| {
            validate_slug(&file.slug)?;
            let location = match (file.path, file.s3) {
                (Some(path), None) => RegionLocation::Local(path),
                (None, Some(s3)) => RegionLocation::S3(s3_config(&file.slug, s3)?),
                _ => {
                    return Err(Error::Config(format!(
                        "region {}: give either path (a local directory) or [regions.s3] (a bucket), not both or neither",
                        file.slug
                    )));
                }
            };
            Ok(RegionConfig {
                name: file.name.unwrap_or_else(|| file.slug.clone()),
                passphrase_file: file.passphrase_file.unwrap_or_else(|| default_passphrase.clone()),
                slug: file.slug,
                location,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if regions.is_empty() {
        return Err(Error::Config("at least one region is needed".into()));
    }
    for (i, region) in regions.iter().enumerate() {
        if regions[..i].iter().any(|r| r.slug == region.slug) {
            return Err(Error::Config(format!("region {} is configured twice", region.slug)));
        }
    }
    Ok(regions)
}

/// Credentials from the file's key id and secret file, else from the AWS environment variables.
fn s3_config(slug: &str, file: S3File) -> Result<S3Config> {
    let credentials = match (file.access_key_id, file.secret_access_key_file) {
        (Some(access_key_id), Some(secret_file)) => {
            let secret = std::fs::read_to_string(&secret_file)
                .map_err(|e| Error::io(format!("region {slug}: reading {}", secret_file.display()), e))?;
            S3Credentials { access_key_id, secret_access_key: secret.trim().to_string(), session_token: None }
        }
        (None, None) => S3Credentials::from_env().ok_or_else(|| {
            Error::Config(format!(
                "region {slug}: no S3 credentials: set access_key_id and secret_access_key_file, \
                 or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ))
        })?,
        _ => {
            return Err(Error::Config(format!("region {slug}: access_key_id and secret_access_key_file go together")));
        }
    };
    let mut config = S3Config::new(&file.endpoint, &file.bucket, credentials);
    if let Some(prefix) = file.prefix {
        config.prefix = prefix.trim_matches('/').to_string();
    }
    if let Some(region) = file.region {
        config.region = region;
    }
    if let Some(path_style) = file.path_style {
        config.path_style = path_style;
    }
    config.ca_certificate = file.ca_certificate;
    // Checked now, so that a typo in the endpoint or bucket stops the daemon at start.
    drydock_jobs::check_s3_config(&config).map_err(|e| Error::Config(format!("region {slug}: {e}")))?;
    Ok(config)
}

fn validate_slug(slug: &str) -> Result<()> {
    let valid = !slug.is_empty()
        && slug.len() <= REGION_SLUG_BYTES_MAX
        && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "region slug {slug:?} must be 1 to {REGION_SLUG_BYTES_MAX} lowercase letters, digits and '-'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Vec<RegionConfig>> {
        #[derive(Deserialize)]
        struct File {
            regions: Vec<RegionFile>,
        }
        let file: File = toml::from_str(toml_text).map_err(|e| Error::Config(e.to_string()))?;
        regions(Some(file.regions), Path::new("/data"))
    }

    #[test]
    fn an_s3_region_reads_its_secret_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let text = format!(
            "[[regions]]\nslug = \"local-1\"\npath = \"/srv/local\"\n\
             [[regions]]\nslug = \"fra1\"\n[regions.s3]\nendpoint = \"http://127.0.0.1:8333/\"\nbucket = \"backups\"\n\
             prefix = \"/drydock/\"\naccess_key_id = \"key\"\nsecret_access_key_file = \"{}\"\n",
            secret.display()
        );
        let regions = parse(&text).unwrap();
        assert!(matches!(&regions[0].location, RegionLocation::Local(path) if path == Path::new("/srv/local")));
        let RegionLocation::S3(config) = &regions[1].location else { panic!("fra1 is not S3: {regions:?}") };
        assert_eq!(
            (config.endpoint.as_str(), config.bucket.as_str(), config.prefix.as_str(), config.path_style),
            ("http://127.0.0.1:8333", "backups", "drydock", true)
        );
        assert_eq!(config.credentials.secret_access_key, "s3cret");
    }

    #[test]
    fn bad_regions_are_refused_with_the_reason() {
        let cases = [
            ("slug = \"a\"", "either path"),
            ("slug = \"a\"\npath = \"/x\"\n[regions.s3]\nendpoint = \"http://h\"\nbucket = \"bbb\"", "either path"),
            (
                "slug = \"a\"\n[regions.s3]\nendpoint = \"ftp://h\"\nbucket = \"bbb\"\naccess_key_id = \"k\"\nsecret_access_key_file = \"/dev/null\"",
                "http://",
            ),
            (
                "slug = \"a\"\n[regions.s3]\nendpoint = \"http://h\"\nbucket = \"bbb\"\naccess_key_id = \"k\"",
                "go together",
            ),
            ("slug = \"NYC 1\"\npath = \"/x\"", "lowercase"),
        ];
        for (region, needle) in cases {
            let error = parse(&format!("[[regions]]\n{region}\n")).unwrap_err().to_string();
            assert!(error.contains(needle), "{region}: {error}");
        }
    }
}
