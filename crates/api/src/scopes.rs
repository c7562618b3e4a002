//! Token scopes, as DigitalOcean names them: `<resource>:<verb>` (`droplet:read`,
//! `image:delete`, …). A granted scope may use `*` for either part; `*` alone is full access,
//! and DigitalOcean's legacy `read` and `write` mean every read, and everything.

/// Whether `granted` allows `wanted` (an exact `<resource>:<verb>`).
pub fn allows(granted: &[String], wanted: &str) -> bool {
    let Some((resource, verb)) = wanted.split_once(':') else { return false };
    granted.iter().any(|scope| match scope.as_str() {
        "*" | "*:*" | "write" => true,
        "read" => verb == "read",
        other => match other.split_once(':') {
            Some((r, v)) => (r == "*" || r == resource) && (v == "*" || v == verb),
            None => false,
        },
    })
}

/// Rejects scopes that can never match anything, so a typo is caught when the token is made.
pub fn validate(scope: &str) -> Result<(), String> {
    let valid = match scope {
        "*" | "*:*" | "read" | "write" => true,
        other => other.split_once(':').is_some_and(|(r, v)| {
            let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            (r == "*" || word(r)) && (v == "*" || word(v))
        }),
    };
    if valid {
        Ok(())
    } else {
        Err(format!("scope {scope:?} is not of the form <resource>:<verb> (e.g. droplet:read) or *"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(scopes: &[&str]) -> Vec<String> {
        scopes.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scopes_match_exactly_or_by_wildcard() {
        let reader = granted(&["droplet:read", "image:*"]);
        assert!(allows(&reader, "droplet:read"));
        assert!(!allows(&reader, "droplet:update"));
        assert!(allows(&reader, "image:delete"));
        assert!(!allows(&reader, "snapshot:read"));
        assert!(allows(&granted(&["*"]), "block_storage:delete"));
        assert!(allows(&granted(&["read"]), "actions:read"));
        assert!(!allows(&granted(&["read"]), "droplet:delete"));
        assert!(allows(&granted(&["*:read"]), "regions:read"));
        assert!(!allows(&granted(&[]), "account:read"));
    }

    #[test]
    fn malformed_scopes_are_refused() {
        assert!(validate("droplet:read").is_ok());
        assert!(validate("*").is_ok());
        assert!(validate("droplet").is_err());
        assert!(validate("Droplet:Read").is_err());
        assert!(validate("droplet:").is_err());
    }
}
