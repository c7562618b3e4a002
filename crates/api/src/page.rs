//! Pagination as DigitalOcean does it: `page` and `per_page` in, `links.pages` and
//! `meta.total` out, with absolute links that carry `page=`.

use axum::http::{HeaderMap, Uri};
use drydock_catalog::Page;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

use crate::extract::QueryMap;

pub const PER_PAGE_DEFAULT: u64 = 20;
pub const PER_PAGE_MAX: u64 = 200;

/// The page asked for, and what is needed to write links to its neighbours.
pub struct Paging {
    pub page: u64,
    pub per_page: u64,
    base: String,
    extra: Vec<(String, String)>,
}

impl Paging {
    /// Reads `page` and `per_page`; other query parameters are kept in the links. `per_page`
    /// above the maximum is lowered to it, as DigitalOcean does.
    pub fn from_request(query: &QueryMap, headers: &HeaderMap, uri: &Uri, scheme: &str) -> Result<Paging, ApiError> {
        let number = |key: &str, default: u64| -> Result<u64, ApiError> {
            match query.get(key) {
                None => Ok(default),
                Some(text) => match text.parse::<u64>() {
                    Ok(n) if n >= 1 => Ok(n),
                    _ => Err(ApiError::bad_request(format!("{key} must be a positive integer, not {text:?}"))),
                },
            }
        };
        let page = number("page", 1)?;
        let per_page = number("per_page", PER_PAGE_DEFAULT)?.min(PER_PAGE_MAX);
        if page.checked_mul(per_page).is_none_or(|n| n > i64::MAX as u64) {
            return Err(ApiError::bad_request(format!("page {page} is out of range")));
        }
        let mut extra: Vec<(String, String)> = query
            .0
            .iter()
            .filter(|(k, _)| *k != "page" && *k != "per_page")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        extra.sort();
        Ok(Paging { page, per_page, base: format!("{}{}", origin(headers, uri, scheme), uri.path()), extra })
    }

    pub fn catalog_page(&self) -> Page {
        Page { offset: (self.page - 1) * self.per_page, limit: self.per_page }
    }

    fn link(&self, page: u64) -> String {
        let mut query = form_urlencoded(&self.extra);
        if !query.is_empty() {
            query.push('&');
        }
        format!("{}?{query}page={page}&per_page={}", self.base, self.per_page)
    }

    /// `{"<key>": items, "links": {...}, "meta": {"total": n}}`, serialized straight from the
    /// items (a listing of 200 snapshots builds no intermediate JSON tree).
    pub fn envelope<T: Serialize>(&self, key: &'static str, items: T, total: u64) -> Envelope<T> {
        let last = total.div_ceil(self.per_page).max(1);
        let mut pages = Map::new();
        if self.page > 1 {
            pages.insert("first".into(), self.link(1).into());
            pages.insert("prev".into(), self.link((self.page - 1).min(last)).into());
        }
        if self.page < last {
            pages.insert("next".into(), self.link(self.page + 1).into());
            pages.insert("last".into(), self.link(last).into());
        }
        Envelope { key, items, links: json!({"pages": pages}), total }
    }
}

/// One page of a listing, as DigitalOcean shapes it.
pub struct Envelope<T> {
    key: &'static str,
    items: T,
    links: Value,
    total: u64,
}

impl<T: Serialize> Serialize for Envelope<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry(self.key, &self.items)?;
        map.serialize_entry("links", &self.links)?;
        map.serialize_entry("meta", &json!({"total": self.total}))?;
        map.end()
    }
}

/// `scheme://host[:port]` as the client addressed this server: the `Host` header (HTTP/1.1) or
/// the URI's authority (HTTP/2).
pub fn origin(headers: &HeaderMap, uri: &Uri, scheme: &str) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_string());
    format!("{scheme}://{host}")
}

fn form_urlencoded(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A list request: its query and the page it asks for.
pub struct Listing {
    pub query: QueryMap,
    pub paging: Paging,
}

impl axum::extract::FromRequestParts<crate::AppState> for Listing {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::AppState,
    ) -> Result<Self, ApiError> {
        let query = QueryMap::from_request_parts(parts, state).await?;
        let paging = Paging::from_request(&query, &parts.headers, &parts.uri, state.settings.scheme)?;
        Ok(Listing { query, paging })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paging(query: &str) -> Result<Paging, ApiError> {
        let uri: Uri = format!("/v2/droplets?{query}").parse().unwrap();
        let pairs = url_pairs(uri.query().unwrap_or(""));
        let mut headers = HeaderMap::new();
        headers.insert("host", "drydock.example:8443".parse().unwrap());
        Paging::from_request(&QueryMap(pairs.into_iter().collect()), &headers, &uri, "https")
    }

    fn url_pairs(query: &str) -> Vec<(String, String)> {
        query.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn links_name_the_neighbouring_pages_and_keep_filters() {
        let middle = paging("page=2&per_page=10&tag_name=web").unwrap();
        assert_eq!(middle.catalog_page(), Page { offset: 10, limit: 10 });
        let envelope = serde_json::to_value(middle.envelope("droplets", Vec::<Value>::new(), 35)).unwrap();
        let pages = &envelope["links"]["pages"];
        assert_eq!(pages["next"], "https://drydock.example:8443/v2/droplets?tag_name=web&page=3&per_page=10");
        assert_eq!(pages["prev"], "https://drydock.example:8443/v2/droplets?tag_name=web&page=1&per_page=10");
        assert_eq!(pages["last"], "https://drydock.example:8443/v2/droplets?tag_name=web&page=4&per_page=10");
        assert_eq!(envelope["meta"]["total"], 35);

        let only = serde_json::to_value(paging("").unwrap().envelope("droplets", Vec::<Value>::new(), 20)).unwrap();
        assert_eq!(only["links"]["pages"], serde_json::json!({}));
        let last =
            serde_json::to_value(paging("page=4&per_page=10").unwrap().envelope("droplets", Vec::<Value>::new(), 35))
                .unwrap();
        assert!(last["links"]["pages"].get("next").is_none());
    }

    #[test]
    fn page_sizes_are_bounded_and_bad_values_refused() {
        assert_eq!(paging("per_page=1000").unwrap().per_page, PER_PAGE_MAX);
        assert_eq!(paging("").unwrap().per_page, PER_PAGE_DEFAULT);
        for bad in ["per_page=0", "page=0", "page=abc", "per_page=-1", "page=99999999999999999999"] {
            assert!(paging(bad).is_err(), "{bad} accepted");
        }
    }
}
