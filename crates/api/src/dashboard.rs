//! The web dashboard: static files built into the binary, served at `/` and `/ui/…`. They are
//! plain HTML, CSS and JavaScript modules with no build step, so building drydock needs only
//! cargo, and they load nothing from outside this server. The dashboard is a client of the public
//! API like any other: it holds the token the user signs in with and sends it as a bearer token.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::error::ApiError;

/// One file of the dashboard, as it is served.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset { path: $path, content_type: $content_type, body: include_bytes!(concat!("../dashboard/", $path)) }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file under `crates/api/dashboard` (a test checks that none is missing).
const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("style.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("js/app.js", JS),
    asset!("js/api.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/format.js", JS),
    asset!("js/live.js", JS),
    asset!("js/views/signin.js", JS),
    asset!("js/views/resources.js", JS),
    asset!("js/views/droplet.js", JS),
    asset!("js/views/volume.js", JS),
    asset!("js/views/snapshots.js", JS),
    asset!("js/views/enable_backups.js", JS),
    asset!("js/views/register.js", JS),
    asset!("js/views/actions.js", JS),
    asset!("js/views/regions.js", JS),
    asset!("js/views/usage.js", JS),
    asset!("js/views/tokens.js", JS),
];

/// Scripts, styles and requests only from this server; no inline script, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(index)).route("/ui/{*path}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    serve(find("index.html").expect("index.html is an asset"), &headers)
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match find(&path) {
        Some(asset) => serve(asset, &headers),
        None => ApiError::not_found(format!("dashboard file {path:?} not found")).into_response(),
    }
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The file with an ETag, so a browser revalidates instead of downloading it again; `no-cache`
/// so that a new daemon's dashboard is picked up at once.
fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    // Weak: the same file is sent plain or zstd-compressed (compress.rs).
    let etag = format!("W/\"{:016x}\"", fnv1a(asset.body));
    let cached = headers.get(header::IF_NONE_MATCH).is_some_and(|given| given.as_bytes() == etag.as_bytes());
    let mut response = if cached { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex is a valid header"));
    out.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    out.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if asset.content_type == HTML {
        out.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
        out.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

/// A content hash for ETags: not cryptographic, only different when a file changes.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn files_under(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files_under(&path, base, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }

    #[test]
    fn every_dashboard_file_is_served_with_its_type() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
        let mut files = Vec::new();
        files_under(&base, &base, &mut files);
        files.sort();
        let mut served: Vec<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
        served.sort();
        assert_eq!(files, served, "crates/api/dashboard and ASSETS differ");
        for asset in ASSETS {
            let extension = asset.path.rsplit('.').next().unwrap();
            let expected = match extension {
                "html" => HTML,
                "js" => JS,
                "css" => CSS,
                "svg" => SVG,
                other => panic!("no content type for .{other}"),
            };
            assert_eq!(asset.content_type, expected, "{}", asset.path);
        }
    }

    #[test]
    fn index_preloads_the_shared_modules_and_the_first_screen() {
        let index = std::str::from_utf8(find("index.html").unwrap().body).unwrap();
        let first_screen = "js/views/resources.js";
        let shared = ASSETS.iter().map(|a| a.path).filter(|p| p.starts_with("js/") && !p.starts_with("js/views/"));
        for path in shared.filter(|&p| p != "js/app.js").chain([first_screen]) {
            let link = format!("<link rel=\"modulepreload\" href=\"/ui/{path}\">");
            assert!(index.contains(&link), "index.html does not preload {path}");
        }
    }

    #[test]
    fn etags_differ_when_content_differs() {
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
