//! The few values drydock reads from S3's XML answers (keys and sizes of a listing, an upload
//! id, an error code). The answers are flat and machine-written, so finding `<Tag>text</Tag>`
//! pairs is enough; a full XML parser would be one more dependency for nothing.

/// The text of every `<tag>…</tag>` element, in order, unescaped.
pub fn all<'a>(xml: &'a str, tag: &str) -> impl Iterator<Item = String> + 'a {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut rest = xml;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let end = start + rest[start..].find(&close)?;
        let text = unescape(&rest[start..end]);
        rest = &rest[end + close.len()..];
        Some(text)
    })
}

/// The text of the first `<tag>…</tag>`.
pub fn first(xml: &str, tag: &str) -> Option<String> {
    all(xml, tag).next()
}

/// The five predefined entities; S3 escapes nothing else in the values we read.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

/// `text` made safe inside an element.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_found_in_order_and_unescaped() {
        let xml = "<ListBucketResult><Contents><Key>a/b</Key><Size>3</Size></Contents>\
                   <Contents><Key>a&amp;c</Key><Size>10</Size></Contents><IsTruncated>false</IsTruncated></ListBucketResult>";
        assert_eq!(all(xml, "Key").collect::<Vec<_>>(), ["a/b", "a&c"]);
        assert_eq!(all(xml, "Size").collect::<Vec<_>>(), ["3", "10"]);
        assert_eq!(first(xml, "IsTruncated").as_deref(), Some("false"));
        assert_eq!(first(xml, "NextContinuationToken"), None);
        assert_eq!(escape("\"a&b\""), "&quot;a&amp;b&quot;");
    }
}
