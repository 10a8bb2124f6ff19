//! The shared public lists (`../shared/urls`, read in place; `$SVM_SHARED` overrides the
//! folder): every line reads, and none of the 99,953 popular names of `benign-top-domains.txt`
//! is matched. Its README names the overlaps: the listed names and the names below them were
//! removed from the benign list, and the hosts that carry listed URLs (`github.com`,
//! `drive.google.com`, ...) stayed, so URL entries must not make those hosts match.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use webaddr::{AddressSet, AddressSetBuilder, Category, EntryKind, Format, ListInfo, parse_list};

fn urls_dir() -> PathBuf {
    let shared = std::env::var_os("SVM_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let dir = shared.join("urls");
    assert!(
        dir.join("README.md").is_file(),
        "{} is missing: the shared lists must sit beside the clone (or set SVM_SHARED)",
        dir.display()
    );
    dir
}

/// The lists, their categories, and the entries the README says each holds.
const LISTS: &[(&str, &str, usize)] = &[
    ("malware-urls.txt", "malware", 6_054),
    ("malware-domains.txt", "malware", 4_593),
    ("malware-ip-hosts.txt", "malware", 23_079),
    ("phishing-domains.txt", "phishing", 324_668),
    ("phishing-ip-hosts.txt", "phishing", 5_498),
    ("phishing-urls.txt", "phishing", 43_249),
    ("scam-domains.txt", "scam", 8_527),
];

fn all_lists() -> AddressSet {
    let dir = urls_dir();
    let mut b = AddressSetBuilder::new();
    for (file, category, lines) in LISTS {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let parsed = parse_list(&bytes, Format::Auto);
        let errors: Vec<String> = parsed
            .errors
            .iter()
            .map(|e| format!("{file}: {e}"))
            .collect();
        assert!(errors.is_empty(), "{}", errors.join("\n"));
        assert_eq!(parsed.lines, *lines, "{file}");
        assert_eq!(parsed.entries.len(), *lines, "{file}");
        let info = ListInfo {
            id: file.to_string(),
            category: category.parse::<Category>().unwrap(),
            version: "shared".to_string(),
        };
        b.add_list(info, &parsed).unwrap();
    }
    b.build()
}

#[test]
fn popular_names_match_nothing() {
    let set = all_lists();
    let benign = std::fs::read_to_string(urls_dir().join("benign-top-domains.txt")).unwrap();
    let mut hits = Vec::new();
    let mut names = 0;
    for name in benign.lines() {
        names += 1;
        for verdict in [
            set.lookup_host(name.as_bytes()),
            set.lookup_url(format!("https://{name}/").as_bytes()),
        ] {
            if let webaddr::Verdict::Listed(m) = verdict {
                hits.push(format!("{name}: {} {:?} {}", m.list.id, m.kind, m.entry));
            }
        }
    }
    assert_eq!(names, 99_953);
    assert!(hits.is_empty(), "{} hits:\n{}", hits.len(), hits.join("\n"));
}

#[test]
fn listed_addresses_match_in_their_observed_forms() {
    let set = all_lists();
    let dir = urls_dir();
    // Every URL entry of malware-urls.txt matches as a browser would send it, and its
    // popular host alone does not.
    let urls = std::fs::read_to_string(dir.join("malware-urls.txt")).unwrap();
    let mut checked = 0;
    for line in urls.lines() {
        let v = set.lookup_url(format!("http://{line}").as_bytes());
        assert!(v.is_listed(), "{line}: {v:?}");
        checked += 1;
    }
    assert_eq!(checked, 6_054);
    for host in [
        "github.com",
        "raw.githubusercontent.com",
        "img1.wsimg.com",
        "paste.ee",
    ] {
        assert!(!set.lookup_host(host.as_bytes()).is_listed(), "{host}");
        assert!(
            !set.lookup_url(format!("https://{host}/").as_bytes())
                .is_listed(),
            "{host}"
        );
    }
    // Domain entries cover the names below them; IP hosts match in any IPv4 notation.
    let v = set.lookup_dns_name(b"login.ai1358.duckdns.org.");
    assert!(
        matches!(&v, webaddr::Verdict::Listed(m) if m.kind == EntryKind::Domain && m.entry == "ai1358.duckdns.org"),
        "{v:?}"
    );
    assert!(set.lookup_url(b"http://0x01.70.22.187/x").is_listed());
    assert!(
        set.lookup_server_name(b"2025TKQT.xn--r8s8qq73m.cc")
            .is_listed()
    );
}
