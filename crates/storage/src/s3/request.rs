//! One signed request and its answer, and what an unexpected answer means as a storage error.

use ureq::http::{self, HeaderMap};

use super::{S3Storage, sigv4, xml};
use crate::{Error, ErrorKind, Result};

/// An answer, read whole.
pub(super) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl S3Storage {
    /// Sends one signed request: `object` is the object's key in the bucket, `None` for the
    /// bucket itself.
    #[allow(clippy::too_many_arguments, reason = "one value per part of an HTTP request")]
    pub(super) fn send(
        &self,
        op: &'static str,
        key: &str,
        method: &str,
        object: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply> {
        let object_path = object.map(|o| format!("/{o}")).unwrap_or_default();
        let (host, path) = if self.config.path_style {
            (self.authority.clone(), format!("/{}{object_path}", self.config.bucket))
        } else {
            (
                format!("{}.{}", self.config.bucket, self.authority),
                if object_path.is_empty() { "/".into() } else { object_path },
            )
        };
        let path = sigv4::uri_encode_path(&path);
        let unsigned = sigv4::Unsigned { method, host: &host, path: &path, query, body };
        let signed = sigv4::sign(&unsigned, &self.config.credentials, &self.config.region, jiff::Timestamp::now());
        let query_string = sigv4::canonical_query(query);
        let separator = if query_string.is_empty() { "" } else { "?" };
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}://{host}{path}{separator}{query_string}", self.scheme));
        for (name, value) in
            signed.iter().map(|(n, v)| (n.as_str(), v.as_str())).chain(headers.iter().map(|(n, v)| (*n, v.as_str())))
        {
            request = request.header(name, value);
        }
        let request = request.body(body).map_err(|e| {
            Error::new(ErrorKind::Permanent, op, key, &self.description, format!("building the request: {e}"))
        })?;
        let mut response = self.agent.run(request).map_err(|e| self.transport_error(op, key, e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            response
                .body_mut()
                .with_config()
                .limit(u64::MAX)
                .read_to_vec()
                .map_err(|e| self.transport_error(op, key, e))?
        };
        Ok(Reply { status, headers, body })
    }

    fn transport_error(&self, op: &'static str, key: &str, error: ureq::Error) -> Error {
        let kind = match error {
            ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled => ErrorKind::Transient,
            _ => ErrorKind::Permanent,
        };
        Error::new(kind, op, key, &self.description, error.to_string())
    }

    /// The error an unexpected answer means, with S3's own code and message.
    pub(super) fn failure(&self, op: &'static str, key: &str, reply: &Reply) -> Error {
        let body = text(&reply.body);
        let code = xml::first(&body, "Code").unwrap_or_default();
        let kind = match (reply.status, code.as_str()) {
            (_, "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable") => ErrorKind::Transient,
            (404, _) => ErrorKind::NotFound,
            (416, _) => ErrorKind::OutOfRange,
            (429 | 500..=599, _) => ErrorKind::Transient,
            _ => ErrorKind::Permanent,
        };
        let mut message = format!("HTTP {}", reply.status);
        if !code.is_empty() {
            message.push_str(&format!(" {code}"));
        }
        if let Some(detail) = xml::first(&body, "Message").filter(|m| !m.is_empty()) {
            message.push_str(&format!(": {detail}"));
        }
        if reply.status == 403 {
            message.push_str(" (check the access key, its secret and the bucket's permissions)");
        }
        Error::new(kind, op, key, &self.description, message)
    }
}

pub(super) fn header(reply: &Reply, name: &str) -> Option<String> {
    reply.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

pub(super) fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}
