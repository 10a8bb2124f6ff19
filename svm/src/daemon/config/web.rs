//! The `web_address_scan:` section: the web address lists the appliance starts with.

use super::reader::Mapping;

use super::reader::Reader;
use crate::weblists::ListSpec;

/// `web_address_scan: { url_lists: ["CATEGORY=FILE", ...] }`. The files are read (every
/// problem with its key) by [`crate::daemon::weblists`] before any socket is opened.
pub(super) fn read(r: &mut Reader, mut s: Mapping) -> Vec<ListSpec> {
    let p = "web_address_scan";
    let mut out = Vec::new();
    for (i, spec) in r
        .strings(&mut s, "url_lists", "web_address_scan.url_lists")
        .into_iter()
        .enumerate()
    {
        let key = format!("web_address_scan.url_lists[{i}]");
        match ListSpec::parse(&spec, key.clone()) {
            Ok(l) => out.push(l),
            Err(e) => r.issue(&key, e.trim_start_matches(&format!("{key}: ")).to_owned()),
        }
    }
    r.unknown(&s, p);
    out
}
