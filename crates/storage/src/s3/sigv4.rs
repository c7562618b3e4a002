//! AWS Signature Version 4 for S3 requests: the canonical request, the string to sign and the
//! `Authorization` header, as the AWS documentation defines them. Every request carries the
//! SHA-256 of its body (`x-amz-content-sha256`), so a body damaged on the way is refused by
//! the server.

use jiff::Timestamp;
use ring::{digest, hmac};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "s3";

/// Who signs: an access key, its secret and, for temporary credentials, a session token.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    /// The access key id is not secret and tells which key was used; the rest is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// A request to sign: `path` already URI-encoded, `query` as decoded pairs.
pub struct Unsigned<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// The headers that make the request signed: name and value pairs to send as they are.
pub fn sign(request: &Unsigned, credentials: &Credentials, region: &str, now: Timestamp) -> Vec<(String, String)> {
    let amz_date = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let date = &amz_date[..8];
    let payload_hash = hex(digest::digest(&digest::SHA256, request.body).as_ref());

    let mut headers = vec![
        ("host".to_string(), request.host.to_string()),
        ("x-amz-content-sha256".to_string(), payload_hash.clone()),
        ("x-amz-date".to_string(), amz_date.clone()),
    ];
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token".to_string(), token.clone()));
    }
    let signed_headers = headers.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(";");
    let canonical_headers: String = headers.iter().map(|(name, value)| format!("{name}:{}\n", value.trim())).collect();
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        request.method,
        request.path,
        canonical_query(request.query)
    );

    let scope = format!("{date}/{region}/{SERVICE}/aws4_request");
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
    );
    let key = [date, region, SERVICE, "aws4_request"]
        .iter()
        .fold(format!("AWS4{}", credentials.secret_access_key).into_bytes(), |key, part| {
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes()).as_ref().to_vec()
        });
    let signature = hex(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), string_to_sign.as_bytes()).as_ref());

    headers.retain(|(name, _)| name != "host");
    headers.push((
        "authorization".to_string(),
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key_id
        ),
    ));
    headers
}

/// The query string, sorted and encoded as both the URL and the signature need it.
pub fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query.iter().map(|(k, v)| (uri_encode(k), uri_encode(v))).collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// RFC 3986 percent-encoding of everything but the unreserved characters (and `/` when
/// encoding a path).
pub fn uri_encode(text: &str) -> String {
    encode(text, false)
}

pub fn uri_encode_path(text: &str) -> String {
    encode(text, true)
}

fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) || (keep_slash && byte == b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_sorted_and_encoded() {
        assert_eq!(canonical_query(&[("uploadId", "a b/c"), ("partNumber", "2")]), "partNumber=2&uploadId=a%20b%2Fc");
        assert_eq!(canonical_query(&[("uploads", "")]), "uploads=");
        assert_eq!(uri_encode_path("/bucket/packs/ab/x.y_z-~"), "/bucket/packs/ab/x.y_z-~");
        assert_eq!(uri_encode("a+b=c"), "a%2Bb%3Dc");
    }

    #[test]
    fn the_signature_matches_botocore() {
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let request = Unsigned {
            method: "GET",
            host: "127.0.0.1:8333",
            path: "/bucket/config",
            query: &[("list-type", "2"), ("prefix", "packs/")],
            body: b"",
        };
        let now: Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
        let headers = sign(&request, &credentials, "us-east-1", now);
        let authorization = &headers.iter().find(|(name, _)| name == "authorization").unwrap().1;
        assert_eq!(authorization, EXPECTED_AUTHORIZATION, "{headers:?}");
    }

    /// Computed with botocore 1.43 (`S3SigV4Auth.add_auth`, its clock set to the same instant).
    const EXPECTED_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/s3/aws4_request, \
        SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
        Signature=cf90d9bacf1163b03f74583ac9325853a581e1e847ed181f169e3ddbbab6df03";
}
