//! Fuzz the Safe Browsing canonicaliser and the lookups of observed addresses: no panic on any
//! bytes; canonicalisation is idempotent (a canonical URL or host reads back as itself); the
//! HTTP request forms, server names and DNS names look up without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webaddr::{AddressSetBuilder, Category, Format, ListInfo, canonical_host, canonicalize, parse_list};

fuzz_target!(|data: &[u8]| {
    let once = canonicalize(data).to_url();
    assert_eq!(canonicalize(once.as_bytes()).to_url(), once);
    let host = canonical_host(data);
    assert_eq!(canonical_host(host.as_bytes()), host);
    assert!(host.bytes().all(|b| b > 0x20 && b < 0x7f && b != b'#'));

    let list = parse_list(
        b"evil.example\n0.0.0.0 exact.example\nhost.example/dir/\nhost.example/a?b\n1.2.3.4\n",
        Format::Auto,
    );
    let mut b = AddressSetBuilder::new();
    let info = ListInfo {
        id: "fuzz".into(),
        category: Category::Malware,
        version: "0".into(),
    };
    if b.add_list(info, &list).is_ok() {
        let set = b.build();
        let split = data.iter().position(|&c| c == 0).unwrap_or(data.len());
        let (target, host_header) = data.split_at(split);
        let _ = set.lookup_url(data);
        let _ = set.lookup_host(data);
        let _ = set.lookup_dns_name(data);
        let _ = set.lookup_http_request(b"GET", target, Some(host_header));
        let _ = set.lookup_http_request(b"CONNECT", target, None);
    }
});
