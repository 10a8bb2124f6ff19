//! TLS record and ClientHello reassembly: arbitrary client bytes, split where the input says.
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
    for chunk in rest.chunks(usize::from(split).max(1)) {
        s.feed(chunk, &mut out, &mut ev);
    }
});
