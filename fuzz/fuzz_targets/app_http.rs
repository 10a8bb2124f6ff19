//! HTTP request parsing (the hand-written request line, httparse headers) and per-flow state
//! (request line, head and body progress): arbitrary client bytes, split where the input says.
#![no_main]

use dataplane::app::AppEvents;
use dataplane::app::http::{parser, state::HttpState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parser::parse_request(data);
    if let Ok(Some(l)) = parser::parse_request_line(data) {
        assert!(l.len <= data.len() && !l.method.is_empty() && !l.target.contains(&b'\n'));
    }
    let _ = parser::normalize_uri(data);
    let _ = parser::normalize_host(data);
    // First byte: segment size for the stateful parser.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut s = HttpState::default();
    let mut out = Vec::new();
    let mut ev = AppEvents::default();
    for chunk in rest.chunks(usize::from(split).max(1)) {
        s.feed(chunk, &mut out, &mut ev);
    }
});
