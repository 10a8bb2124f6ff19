//! HTTP response parsing with de-chunking and gzip/deflate decompression: arbitrary server
//! bytes, split where the input says. Properties: no panic, each decoded body within
//! RESPONSE_BODY_LIMIT, a body's end only after its head.
#![no_main]

use dataplane::app::AppEvents;
use dataplane::app::http::response::{RESPONSE_BODY_LIMIT, ResponseOut, ResponseState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut s = ResponseState::default();
    let mut out = Vec::new();
    let mut ev = AppEvents::default();
    let head = split & 1 == 1;
    for chunk in rest.chunks(usize::from(split >> 1).max(1)) {
        s.feed(chunk, &mut || head, &mut out, &mut ev);
    }
    let (mut heads, mut body) = (0usize, 0usize);
    for o in &out {
        match o {
            ResponseOut::Head(_) => {
                heads += 1;
                body = 0;
            }
            ResponseOut::Body(b) => {
                assert!(heads > 0, "body before any head");
                body += b.len();
                assert!(body <= RESPONSE_BODY_LIMIT);
            }
            ResponseOut::BodyEnd => assert!(heads > 0, "end before any head"),
        }
    }
});
