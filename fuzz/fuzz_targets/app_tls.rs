//! TLS record and ClientHello reassembly, and the record-header walk of both directions
//! (encryption detection): arbitrary bytes, split where the input says, alternating directions
//! by chunk.
#![no_main]

use dataplane::app::AppEvents;
use dataplane::app::tls::{parser, state::TlsState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parser::record(data);
    let _ = parser::client_hello(data);
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut s = TlsState::default();
    let mut out = Vec::new();
    let mut ev = AppEvents::default();
    for (i, chunk) in rest.chunks(usize::from(split).max(1)).enumerate() {
        s.feed(chunk, &mut out, &mut ev);
        s.on_records(i % 3 != 2, chunk);
    }
    let _ = s.is_encrypted();
});
