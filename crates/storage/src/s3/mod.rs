//! [`S3Storage`]: repository objects in an S3-compatible bucket (AWS S3, DigitalOcean Spaces,
//! SeaweedFS, Garage, MinIO, B2, Wasabi…), one object per repository object — packs are whole
//! objects, never one per chunk.
//!
//! Requests are plain HTTP/1.1 through the workspace's `ureq` agent, signed with Signature
//! Version 4 ([`sigv4`]); `docs/s3.md` says why this beats the big S3 SDKs for drydock. Large
//! objects go up as multipart uploads (aborted on failure, so a failed put leaves nothing);
//! reads of part of an object are ranged GETs. Errors are classified for the [`crate::Retry`]
//! decorator: 5xx, 429, `SlowDown` and connection failures are transient.

mod config;
mod multipart;
mod request;
mod sigv4;
mod xml;

use std::time::Duration;

pub use config::{MULTIPART_THRESHOLD_DEFAULT, PART_SIZE_MIN, S3Config};
pub use multipart::PendingUpload;
pub use sigv4::Credentials;
use ureq::Agent;

use crate::{Error, ErrorKind, ObjectInfo, ObjectKey, Result, Storage};
use request::{header, text};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Per request, body included: a 16 MiB part at 1 MiB/s still fits.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// An S3 bucket (or a prefix of one) as a [`Storage`].
#[derive(Debug)]
pub struct S3Storage {
    config: S3Config,
    agent: Agent,
    /// `http` or `https`.
    scheme: String,
    /// `host[:port]` of the endpoint, the port only when it is not the scheme's default.
    authority: String,
    description: String,
}

impl S3Storage {
    /// Checks the configuration; does not contact the server (see [`S3Storage::create_bucket`]
    /// and the first request for that).
    pub fn new(config: S3Config) -> Result<S3Storage> {
        let invalid = |message: String| Error::new(ErrorKind::Permanent, "configure", &config.bucket, "s3", message);
        let (scheme, rest) = config
            .endpoint
            .split_once("://")
            .filter(|(scheme, _)| *scheme == "http" || *scheme == "https")
            .ok_or_else(|| invalid(format!("endpoint {:?} must start with http:// or https://", config.endpoint)))?;
        let authority = rest.split('/').next().unwrap_or_default();
        let default_port = if scheme == "https" { ":443" } else { ":80" };
        let authority = authority.strip_suffix(default_port).unwrap_or(authority).to_string();
        if authority.is_empty() {
            return Err(invalid(format!("endpoint {:?} has no host", config.endpoint)));
        }
        let bucket_ok = (3..=63).contains(&config.bucket.len())
            && config.bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
        if !bucket_ok {
            return Err(invalid(format!("bucket name {:?} must be 3 to 63 of a-z, 0-9, '-' and '.'", config.bucket)));
        }
        if !config.prefix.is_empty() && ObjectKey::new(config.prefix.clone()).is_err() {
            return Err(invalid(format!(
                "prefix {:?} must be '/'-separated segments of a-z, 0-9, '.', '_' and '-'",
                config.prefix
            )));
        }
        if config.part_size < PART_SIZE_MIN || config.multipart_threshold < config.part_size {
            return Err(invalid(format!(
                "part size must be at least {PART_SIZE_MIN} bytes and at most the multipart threshold"
            )));
        }
        let mut agent_config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .max_idle_connections_per_host(2 * multipart::PART_UPLOADS_PARALLEL);
        if let Some(path) = &config.ca_certificate {
            agent_config = agent_config.tls_config(config::tls_trusting(path).map_err(invalid)?);
        }
        let slash = if config.prefix.is_empty() { "" } else { "/" };
        let description = format!("s3 {}/{}{slash}{}", config.endpoint, config.bucket, config.prefix);
        Ok(S3Storage { agent: agent_config.build().into(), scheme: scheme.to_string(), authority, description, config })
    }

    /// Creates the bucket; `Ok` if it exists already and is ours.
    pub fn create_bucket(&self) -> Result<()> {
        let reply = self.send("create bucket", &self.config.bucket, "PUT", None, &[], &[], b"")?;
        match reply.status {
            200 => Ok(()),
            409 if xml::first(&text(&reply.body), "Code").as_deref() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            _ => Err(self.failure("create bucket", &self.config.bucket, &reply)),
        }
    }

    /// The object's key in the bucket.
    fn object_name(&self, key: &str) -> String {
        if self.config.prefix.is_empty() { key.to_string() } else { format!("{}/{key}", self.config.prefix) }
    }

    fn head(&self, key: &ObjectKey) -> Result<u64> {
        let reply = self.send("stat", key.as_str(), "HEAD", Some(&self.object_name(key.as_str())), &[], &[], b"")?;
        match reply.status {
            200 => header(&reply, "content-length").and_then(|l| l.parse().ok()).ok_or_else(|| {
                Error::new(ErrorKind::Transient, "stat", key, &self.description, "no Content-Length in the answer")
            }),
            404 => Err(Error::not_found("stat", key, &self.description)),
            _ => Err(self.failure("stat", key.as_str(), &reply)),
        }
    }
}

impl Storage for S3Storage {
    fn put(&self, key: &ObjectKey, data: &[u8]) -> Result<()> {
        let name = self.object_name(key.as_str());
        if data.len() > self.config.multipart_threshold {
            return self.put_multipart(key, &name, data);
        }
        let reply = self.send("put", key.as_str(), "PUT", Some(&name), &[], &[], data)?;
        if reply.status != 200 {
            return Err(self.failure("put", key.as_str(), &reply));
        }
        Ok(())
    }

    fn get(&self, key: &ObjectKey) -> Result<Vec<u8>> {
        let reply = self.send("get", key.as_str(), "GET", Some(&self.object_name(key.as_str())), &[], &[], b"")?;
        match reply.status {
            200 => Ok(reply.body),
            404 => Err(Error::not_found("get", key, &self.description)),
            _ => Err(self.failure("get", key.as_str(), &reply)),
        }
    }

    fn get_range(&self, key: &ObjectKey, offset: u64, length: u64) -> Result<Vec<u8>> {
        let out_of_range = |size: Option<u64>| {
            let size = size.map_or_else(String::new, |s| format!(" of {s} bytes"));
            Error::new(
                ErrorKind::OutOfRange,
                "get_range",
                key,
                &self.description,
                format!("bytes {offset}..{} are past the end of the object{size}", offset.saturating_add(length)),
            )
        };
        if length == 0 {
            // A zero-length range cannot be asked for in HTTP: check the offset against the size.
            let size = self.head(key)?;
            return if offset <= size { Ok(Vec::new()) } else { Err(out_of_range(Some(size))) };
        }
        let last = offset.checked_add(length - 1).ok_or_else(|| out_of_range(None))?;
        let range = [("range", format!("bytes={offset}-{last}"))];
        let reply =
            self.send("get_range", key.as_str(), "GET", Some(&self.object_name(key.as_str())), &[], &range, b"")?;
        match reply.status {
            206 if reply.body.len() as u64 == length => Ok(reply.body),
            // Fewer bytes than asked: the range ran past the end.
            206 => Err(out_of_range(None)),
            // A server that ignores Range sends the whole object.
            200 => reply
                .body
                .get(offset as usize..(offset + length) as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| out_of_range(Some(reply.body.len() as u64))),
            404 => Err(Error::not_found("get_range", key, &self.description)),
            416 => Err(out_of_range(None)),
            _ => Err(self.failure("get_range", key.as_str(), &reply)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let full_prefix = self.object_name(prefix);
        let strip = if self.config.prefix.is_empty() { 0 } else { self.config.prefix.len() + 1 };
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", full_prefix.as_str())];
            if let Some(token) = &token {
                query.push(("continuation-token", token.as_str()));
            }
            let reply = self.send("list", prefix, "GET", None, &query, &[], b"")?;
            if reply.status != 200 {
                return Err(self.failure("list", prefix, &reply));
            }
            let body = text(&reply.body);
            for contents in xml::all(&body, "Contents") {
                let (Some(name), Some(size)) = (xml::first(&contents, "Key"), xml::first(&contents, "Size")) else {
                    continue;
                };
                // Objects that are not drydock's (another tool's files beside the repository) are
                // not part of it.
                let Some(key) = name.get(strip..).and_then(|k| ObjectKey::new(k).ok()) else { continue };
                // Some servers (SeaweedFS) read `packs//` as `packs/`: the prefix is matched here
                // too, exactly.
                if !key.as_str().starts_with(prefix) {
                    continue;
                }
                let size_bytes = size.parse().map_err(|_| {
                    Error::new(
                        ErrorKind::Permanent,
                        "list",
                        prefix,
                        &self.description,
                        format!("size {size:?} of {name}"),
                    )
                })?;
                objects.push(ObjectInfo { key, size_bytes });
            }
            token = xml::first(&body, "NextContinuationToken")
                .filter(|_| xml::first(&body, "IsTruncated").as_deref() == Some("true"));
            if token.is_none() {
                return Ok(objects);
            }
        }
    }

    fn delete(&self, key: &ObjectKey) -> Result<()> {
        let reply =
            self.send("delete", key.as_str(), "DELETE", Some(&self.object_name(key.as_str())), &[], &[], b"")?;
        match reply.status {
            200 | 204 | 404 => Ok(()),
            _ => Err(self.failure("delete", key.as_str(), &reply)),
        }
    }

    fn stat(&self, key: &ObjectKey) -> Result<ObjectInfo> {
        Ok(ObjectInfo { key: key.clone(), size_bytes: self.head(key)? })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
