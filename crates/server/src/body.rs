//! Request bodies are read to their end before the API answers.
//!
//! The API may answer before it reads a body: a missing token, an unknown route, a method not
//! allowed. Over HTTP/2 the server must then reset the stream (RST_STREAM with NO_ERROR, RFC
//! 9113 section 8.1), and curl 7.88 (Debian 12's, the curl of the tutorials) reports that as
//! "Stream error in the HTTP/2 framing layer" and drops the answer: the client never sees its
//! 401. Reading the body first means the stream is closed by the client's own END_STREAM, and
//! every client gets its answer.

use std::pin::Pin;

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// Bytes kept for the API: one more than it accepts, so that it still sees (and answers 413
/// to) a body that is too large.
const KEPT_BYTES_MAX: usize = drydock_api::BODY_BYTES_MAX + 1;
/// Bytes read, and dropped past [`KEPT_BYTES_MAX`], before giving up on reaching the end: a
/// client sending more than this gets its 413 with a reset stream.
const READ_BYTES_MAX: usize = 4 * drydock_api::BODY_BYTES_MAX;

/// Middleware: reads the body (up to [`READ_BYTES_MAX`]), then passes the request on with the
/// bytes kept.
pub async fn read_to_end(request: Request, next: Next) -> Response {
    let (parts, mut body) = request.into_parts();
    let mut kept = Vec::new();
    let mut read = 0usize;
    while read <= READ_BYTES_MAX {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let Some(Ok(frame)) = frame else {
            // The end, or the client went away: the API gets what arrived.
            break;
        };
        if let Ok(data) = frame.into_data() {
            read += data.len();
            let room = KEPT_BYTES_MAX.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    next.run(Request::from_parts(parts, Body::from(kept))).await
}
