//! Wall-clock helpers. Only used for metadata shown to people and for lease expiry.

/// Now, to the microsecond: two backups of one image may finish within the same second, and
/// "the newest snapshot of a name" must still be well defined.
pub fn now_rfc3339_precise() -> String {
    jiff::Timestamp::now().round(jiff::Unit::Microsecond).unwrap_or_else(|_| jiff::Timestamp::now()).to_string()
}

/// Orders RFC 3339 times by the instant they name (strings with different numbers of fraction
/// digits do not sort as text); unparsable ones sort first.
pub fn instant(text: &str) -> Option<jiff::Timestamp> {
    text.parse().ok()
}

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or_else(|_| jiff::Timestamp::now()).to_string()
}

pub fn now_unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}
