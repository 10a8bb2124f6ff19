//! DNS message parsing (UDP) and TCP framing.
#![no_main]

use dataplane::app::AppEvents;
use dataplane::app::dns::{parser, state::DnsState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parser::parse_message(data);
    let mut s = DnsState::default();
    let mut out = Vec::new();
    let mut ev = AppEvents::default();
    s.on_udp(true, data, &mut out, &mut ev);
    for chunk in data.chunks(7) {
        s.on_tcp(true, chunk, &mut out, &mut ev);
    }
});
