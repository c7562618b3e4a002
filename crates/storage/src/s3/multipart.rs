//! Multipart uploads: objects above the threshold go up in parts, a few at once, and are
//! aborted if any part fails, so a failed put leaves no object.

use super::request::{header, text};
use super::{S3Storage, xml};
use crate::{Error, ErrorKind, ObjectKey, Result};

/// Parts of one upload sent at once.
pub(super) const PART_UPLOADS_PARALLEL: usize = 4;

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
            // Best effort: parts of an upload never completed are invisible, but they take space
            // until aborted (or until a lifecycle rule removes them).
            let _ = self.send("put", key.as_str(), "DELETE", Some(name), &[("uploadId", &upload_id)], &[], b"");
        }
        outcome
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
