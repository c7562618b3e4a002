//! Where the daemon is, the token and the certificate to trust: from flags, then the
//! environment (clap reads both), then the configuration file
//! `$XDG_CONFIG_HOME/drydock/client.toml` (or `~/.config/drydock/client.toml`):
//!
//! ```toml
//! api_url = "https://backup.example:8443"
//! token = "dop_v1_…"
//! cacert = "/etc/drydock/cert.pem"   # relative paths are relative to this file
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::client_args::ApiArgs;

pub const API_URL_DEFAULT: &str = "https://127.0.0.1:8443";
/// Where `drydock serve` keeps its certificate, relative to its data directory.
const CERT_IN_DATA_DIR: &str = "tls/cert.pem";
const DATA_DIR_DEFAULT: &str = "drydock-data";

pub struct Settings {
    /// Without a trailing slash.
    pub api_url: String,
    pub token: Option<String>,
    pub cacert: Option<PathBuf>,
}

pub fn resolve(args: &ApiArgs) -> Result<Settings> {
    let file = match config_path() {
        Some(path) if path.exists() => read_file(&path)?,
        _ => FileSettings::default(),
    };
    let api_url = args.api_url.clone().or(file.api_url).unwrap_or_else(|| API_URL_DEFAULT.to_string());
    let api_url = api_url.trim_end_matches('/').to_string();
    if !api_url.starts_with("https://") && !api_url.starts_with("http://") {
        bail!("the API URL {api_url:?} must start with https:// or http://");
    }
    // doctl's variable, so that scripts written for DigitalOcean work unchanged.
    let token = args
        .token
        .clone()
        .or_else(|| std::env::var("DIGITALOCEAN_ACCESS_TOKEN").ok())
        .or(file.token)
        .filter(|t| !t.trim().is_empty());
    let cacert = args.cacert.clone().or(file.cacert).or_else(|| local_daemon_cert(&api_url));
    Ok(Settings { api_url, token, cacert })
}

fn config_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("drydock").join("client.toml"))
}

/// A daemon on this machine with its self-signed certificate: trust that certificate when it
/// is where `drydock serve` puts it (in DRYDOCK_DATA_DIR, or ./drydock-data).
fn local_daemon_cert(api_url: &str) -> Option<PathBuf> {
    let host_and_port = api_url.strip_prefix("https://")?.split('/').next()?;
    let local = ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|host| host_and_port == *host || host_and_port.starts_with(&format!("{host}:")));
    if !local {
        return None;
    }
    let data_dir = std::env::var_os("DRYDOCK_DATA_DIR").map_or_else(|| PathBuf::from(DATA_DIR_DEFAULT), PathBuf::from);
    Some(data_dir.join(CERT_IN_DATA_DIR)).filter(|cert| cert.is_file())
}

#[derive(Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    api_url: Option<String>,
    token: Option<String>,
    cacert: Option<PathBuf>,
}

fn read_file(path: &Path) -> Result<FileSettings> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut settings = parse(&text).with_context(|| format!("in {}", path.display()))?;
    if let (Some(cacert), Some(dir)) = (&settings.cacert, path.parent()) {
        settings.cacert = Some(dir.join(cacert));
    }
    Ok(settings)
}

fn parse(text: &str) -> Result<FileSettings> {
    toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().lines().collect::<Vec<_>>().join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_strings_and_comments() {
        let text = "# drydock client\napi_url = \"https://h:8443\"  # the daemon\n\ntoken='dop_v1_x'\ncacert = \"a\\\\b.pem\"\n";
        let settings = parse(text).unwrap();
        assert_eq!(settings.api_url.as_deref(), Some("https://h:8443"));
        assert_eq!(settings.token.as_deref(), Some("dop_v1_x"));
        assert_eq!(settings.cacert, Some(PathBuf::from("a\\b.pem")));
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        assert!(parse("api_url = https://h").is_err());
        assert!(parse("tokn = \"x\"").is_err());
        assert!(parse("token = \"x").is_err());
        assert!(parse("token = \"x\" y").is_err());
    }
}
