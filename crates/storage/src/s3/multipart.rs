//! Multipart uploads: objects above the threshold go up in parts, a few at once, and are
//! aborted if any part fails, so a failed put leaves no object.
//!
//! An upload that is never completed or aborted stays invisible but keeps its parts' space. The
//! abort is retried briefly for that reason; a server that is down for longer (killed in the
//! middle of an upload) cannot be told, and its pending uploads are listed by
//! [`S3Storage::pending_uploads`] and removed by [`S3Storage::abort_upload`] or by the bucket's
//! lifecycle rule (`AbortIncompleteMultipartUpload`).

use std::time::Duration;

use super::request::{header, text};
use super::{S3Storage, xml};
use crate::{Error, ErrorKind, ObjectKey, Result};

/// Parts of one upload sent at once.
pub(super) const PART_UPLOADS_PARALLEL: usize = 4;
/// Attempts at aborting a failed upload, and the pause before the second (doubling after):
/// rides out a dropped connection without holding a failing backup up for long.
const ABORT_ATTEMPTS_MAX: u32 = 3;
const ABORT_DELAY_INITIAL: Duration = Duration::from_millis(200);

/// A multipart upload started and neither completed nor aborted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingUpload {
    /// The object's name in the bucket, the prefix included.
    pub name: String,
    pub upload_id: String,
}

impl S3Storage {
    pub(super) fn put_multipart(&self, key: &ObjectKey, name: &str, data: &[u8]) -> Result<()> {
        let reply = self.send("put", key.as_str(), "POST", Some(name), &[("uploads", "")], &[], b"")?;
        if reply.status != 200 {
            return Err(self.failure("put", key.as_str(), &reply));
        }
        let upload_id = xml::first(&text(&reply.body), "UploadId").ok_or_else(|| {
            Error::new(
                ErrorKind::Transient,
                "put",
                key,
                &self.description,
                "starting a multipart upload: no UploadId in the answer",
            )
        })?;
        let outcome = self.upload_parts(key, name, &upload_id, data).and_then(|etags| {
            let parts: String = etags
                .iter()
                .enumerate()
                .map(|(i, etag)| {
                    format!("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", i + 1, xml::escape(etag))
                })
                .collect();
            let body = format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>");
            let reply =
                self.send("put", key.as_str(), "POST", Some(name), &[("uploadId", &upload_id)], &[], body.as_bytes())?;
            // S3 may answer 200 and still fail: the error is then in the body.
            if reply.status != 200 || text(&reply.body).contains("<Error>") {
                return Err(self.failure("put", key.as_str(), &reply));
            }
            Ok(())
        });
        if outcome.is_err() {
            // The put fails with its own error whatever happens here: a failed abort costs
            // space, not correctness (see the module's comment).
            let mut delay = ABORT_DELAY_INITIAL;
            for attempt in 1..=ABORT_ATTEMPTS_MAX {
                match self.abort_upload(name, &upload_id) {
                    Err(e) if e.kind == ErrorKind::Transient && attempt < ABORT_ATTEMPTS_MAX => {
                        std::thread::sleep(delay);
                        delay *= 2;
                    }
                    _ => break,
                }
            }
        }
        outcome
    }

    /// Aborts a multipart upload, freeing its parts; `Ok` if it is gone already.
    pub fn abort_upload(&self, name: &str, upload_id: &str) -> Result<()> {
        let reply = self.send("abort upload", name, "DELETE", Some(name), &[("uploadId", upload_id)], &[], b"")?;
        match reply.status {
            200 | 204 | 404 => Ok(()),
            _ => Err(self.failure("abort upload", name, &reply)),
        }
    }

    /// The multipart uploads pending under this storage's prefix (ListMultipartUploads).
    pub fn pending_uploads(&self) -> Result<Vec<PendingUpload>> {
        let prefix = self.object_name("");
        let mut uploads = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut query = vec![("uploads", ""), ("prefix", prefix.as_str())];
            if let Some((key, upload_id)) = &markers {
                query.push(("key-marker", key.as_str()));
                query.push(("upload-id-marker", upload_id.as_str()));
            }
            let reply = self.send("list uploads", &prefix, "GET", None, &query, &[], b"")?;
            if reply.status != 200 {
                return Err(self.failure("list uploads", &prefix, &reply));
            }
            let body = text(&reply.body);
            for upload in xml::all(&body, "Upload") {
                if let (Some(name), Some(upload_id)) = (xml::first(&upload, "Key"), xml::first(&upload, "UploadId")) {
                    uploads.push(PendingUpload { name, upload_id });
                }
            }
            let next = xml::first(&body, "NextKeyMarker").zip(xml::first(&body, "NextUploadIdMarker"));
            match next {
                Some(next) if xml::first(&body, "IsTruncated").as_deref() == Some("true") => markers = Some(next),
                _ => return Ok(uploads),
            }
        }
    }

    /// Sends the parts, a few at once; their ETags in part order.
    fn upload_parts(&self, key: &ObjectKey, name: &str, upload_id: &str, data: &[u8]) -> Result<Vec<String>> {
        let parts: Vec<&[u8]> = data.chunks(self.config.part_size).collect();
        let mut etags = vec![String::new(); parts.len()];
        for (batch_start, batch) in
            parts.chunks(PART_UPLOADS_PARALLEL).enumerate().map(|(i, b)| (i * PART_UPLOADS_PARALLEL, b))
        {
            let results: Vec<Result<String>> = std::thread::scope(|scope| {
                let handles: Vec<_> = batch
                    .iter()
                    .enumerate()
                    .map(|(i, part)| {
                        scope.spawn(move || self.upload_part(key, name, upload_id, batch_start + i + 1, part))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(Error::new(
                                ErrorKind::Permanent,
                                "put",
                                key,
                                &self.description,
                                "a part upload panicked",
                            ))
                        })
                    })
                    .collect()
            });
            for (i, result) in results.into_iter().enumerate() {
                etags[batch_start + i] = result?;
            }
        }
        Ok(etags)
    }

    fn upload_part(&self, key: &ObjectKey, name: &str, upload_id: &str, number: usize, part: &[u8]) -> Result<String> {
        let number = number.to_string();
        let query = [("partNumber", number.as_str()), ("uploadId", upload_id)];
        let reply = self.send("put", key.as_str(), "PUT", Some(name), &query, &[], part)?;
        if reply.status != 200 {
            return Err(self.failure("put", key.as_str(), &reply));
        }
        header(&reply, "etag").ok_or_else(|| {
            Error::new(
                ErrorKind::Transient,
                "put",
                key,
                &self.description,
                format!("part {number}: no ETag in the answer"),
            )
        })
    }
}
