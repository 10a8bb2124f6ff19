//! Public suffixes (the Public Suffix List compiled into the `psl` crate).
//!
//! Only the list's ICANN section (and the implicit `*` rule for unknown top-level names) stops
//! the parent walk and refuses entries. Private-section suffixes (`duckdns.org`, `github.io`,
//! `blogspot.com`) are names one operator holds: a list that names one of them means every site
//! below it, as its authors intended (see ../shared/urls/README.md, "Whole shared platforms").

/// Length in bytes of the public suffix of `host` (ICANN section or unknown top-level name).
/// 0 when there is none (an empty name).
pub fn public_suffix_len(host: &str) -> usize {
    let mut name = host.as_bytes();
    // Each round drops at least one label, so the loop ends; a name has at most 127 labels.
    loop {
        let Some(s) = psl::suffix(name) else {
            return 0;
        };
        let bytes = s.as_bytes();
        if s.typ() != Some(psl::Type::Private) {
            return bytes.len();
        }
        // A private rule: the ICANN suffix is within it; look again at the rule's parent.
        match bytes.iter().position(|&b| b == b'.') {
            Some(i) => name = bytes.get(i + 1..).unwrap_or_default(),
            None => return bytes.len(),
        }
    }
}

/// Whether `host` is itself a public suffix (`com`, `co.uk`, `foo.ck` under `*.ck`), so that
/// blocking it would block a whole top-level or second-level space.
pub fn is_public_suffix(host: &str) -> bool {
    public_suffix_len(host) >= host.len()
}

/// The registrable domain of `host` (its public suffix and one more label), if it has one.
pub fn registrable_domain(host: &str) -> Option<&str> {
    let suffix = public_suffix_len(host);
    if suffix == 0 || suffix >= host.len() {
        return None;
    }
    let head = host.get(..host.len() - suffix - 1)?;
    let start = head.rfind('.').map_or(0, |i| i + 1);
    host.get(start..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icann_suffixes_and_private_names() {
        for s in ["com", "co.uk", "uk", "foo.ck", "internal", "xn--p1ai"] {
            assert!(is_public_suffix(s), "{s}");
        }
        for s in [
            "example.com",
            "duckdns.org",
            "github.io",
            "bbc.co.uk",
            "www.ck",
        ] {
            assert!(!is_public_suffix(s), "{s}");
        }
        assert_eq!(
            registrable_domain("a.b.example.co.uk"),
            Some("example.co.uk")
        );
        assert_eq!(registrable_domain("x.duckdns.org"), Some("duckdns.org"));
        assert_eq!(registrable_domain("co.uk"), None);
        assert_eq!(registrable_domain("host.internal"), Some("host.internal"));
    }
}
