//! How to reach a bucket: [`S3Config`], credentials from the environment, and TLS that trusts a
//! given certificate authority.

use std::path::PathBuf;

use super::sigv4::Credentials;

/// Objects up to this size go up in one PUT; larger ones as multipart uploads.
pub const MULTIPART_THRESHOLD_DEFAULT: usize = 16 << 20;
/// S3 wants parts of at least 5 MiB (but the last).
pub const PART_SIZE_MIN: usize = 5 << 20;
const PART_SIZE_DEFAULT: usize = 8 << 20;

/// Where the bucket is and how to reach it.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// `http://127.0.0.1:8333`, `https://fra1.digitaloceanspaces.com`…
    pub endpoint: String,
    pub bucket: String,
    /// Key prefix inside the bucket, without slashes at either end; empty for the whole bucket.
    pub prefix: String,
    /// The signing region (`us-east-1` for most self-hosted servers).
    pub region: String,
    pub credentials: Credentials,
    /// `endpoint/bucket/key` rather than `bucket.endpoint/key`: what self-hosted servers expect.
    pub path_style: bool,
    /// A PEM file of the certificate authorities to trust instead of the usual roots.
    pub ca_certificate: Option<PathBuf>,
    pub multipart_threshold: usize,
    pub part_size: usize,
}

impl S3Config {
    /// A configuration with drydock's defaults: path-style, 16 MiB threshold, 8 MiB parts.
    pub fn new(endpoint: &str, bucket: &str, credentials: Credentials) -> S3Config {
        S3Config {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            bucket: bucket.to_string(),
            prefix: String::new(),
            region: "us-east-1".to_string(),
            credentials,
            path_style: true,
            ca_certificate: None,
            multipart_threshold: MULTIPART_THRESHOLD_DEFAULT,
            part_size: PART_SIZE_DEFAULT,
        }
    }
}

impl Credentials {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, as every AWS tool
    /// reads them; `None` without the first two.
    pub fn from_env() -> Option<Credentials> {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Some(Credentials {
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
        })
    }
}

/// TLS that trusts the certificate authorities in a PEM file, and only those.
pub(super) fn tls_trusting(path: &std::path::Path) -> std::result::Result<ureq::tls::TlsConfig, String> {
    let pem = std::fs::read(path).map_err(|e| format!("reading the CA certificate {}: {e}", path.display()))?;
    let certificates: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(Ok(cert)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| format!("reading the CA certificate {}: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("the CA certificate file {} holds no certificate", path.display()));
    }
    Ok(ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&certificates)).build())
}
