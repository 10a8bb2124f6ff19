//! Fuzz `svm events tail`'s two parsers: the API's event filter (`type`, `severity`, `vlan`
//! query values, from authenticated but untrusted clients) and the CLI's server-sent event
//! reader, fed the rest of the input in chunks. Whatever comes in, a filter or a refusal, items
//! or an error, and every event read is matched against the filter without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use svm::api::events::{EventQuery, Filter};
use svm::events::{Record, Severity};
use svm::events_cmd::{SseItem, SseReader};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |&b| b == 0);
    let mut field = || {
        parts
            .next()
            .map(|p| String::from_utf8_lossy(p).into_owned())
    };
    let q = EventQuery {
        kind: field(),
        severity: field(),
        vlan: field(),
        ..EventQuery::default()
    };
    let filter = Filter::parse(&q).ok();
    let rest = parts.next().unwrap_or_default();
    let mut reader = SseReader::default();
    for chunk in rest.chunks(7) {
        let Ok(items) = reader.feed(chunk) else {
            return;
        };
        for item in items {
            if let (SseItem::Event(v), Some(f)) = (item, &filter)
                && let Some(map) = v.as_object()
            {
                let rec = Record::new(Default::default(), "fuzz", Severity::Info, map.clone());
                let _ = f.matches(&rec);
            }
        }
    }
});
