//! HTTPS: the configured certificate, or a self-signed one made on first start and kept in the
//! data directory (clients trust it with e.g. `curl --cacert` or pydo's `connection_verify`).

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;
use crate::error::{Error, Result};

pub fn acceptor(config: &Config) -> Result<tokio_rustls::TlsAcceptor> {
    let (cert, key) = match &config.tls {
        Some((cert, key)) => (cert.clone(), key.clone()),
        None => {
            let dir = config.tls_dir();
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !cert.exists() || !key.exists() {
                self_signed(&dir)?;
            }
            (cert, key)
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::Tls(format!("reading certificate {}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(Error::Tls(format!("{} holds no certificate", cert.display())));
    }
    let key =
        PrivateKeyDer::from_pem_file(&key).map_err(|e| Error::Tls(format!("reading key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| Error::Tls(format!("certificate {}: {e}", cert.display())))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}

/// A certificate for this machine's names and loopback addresses.
fn self_signed(dir: &Path) -> Result<()> {
    let hostname =
        std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if !hostname.is_empty() {
        names.push(hostname);
    }
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| Error::Tls(format!("making a certificate: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    write_new(&dir.join("key.pem"), certified.signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_new(&dir.join("cert.pem"), certified.cert.pem().as_bytes(), 0o644)?;
    tracing::info!("created a self-signed certificate {}", dir.join("cert.pem").display());
    Ok(())
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    let partial = path.with_extension("partial");
    let mut file = std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&partial)
        .map_err(|e| Error::io(format!("creating {}", partial.display()), e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(format!("writing {}", partial.display()), e))?;
    std::fs::rename(&partial, path).map_err(|e| Error::io(format!("renaming {}", partial.display()), e))
}
