//! TLS handshake reassembly and parsing of both directions (ClientHello with JA3/JA4, in TLS
//! records or the SSL 2.0 format, ServerHello with JA3S, the certificate chains of both
//! sides), and the record-header walk (encryption detection): arbitrary bytes, split where the
//! input says, alternating directions by chunk.
#![no_main]

use dataplane::app::AppEvents;
use dataplane::app::tls::{
    parser,
    state::{self, TlsState},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parser::record(data);
    // JA4 is computed when asked for: ask, so the fuzzer runs it.
    if let Ok(c) = parser::client_hello(data) {
        let _ = c.ja4();
    }
    let _ = parser::server_hello(data);
    let _ = parser::certificate(data);
    if let Ok(parser::Record::Complete { payload, .. }) = parser::sslv2_record(data) {
        let _ = parser::sslv2_client_hello(payload);
    }
    let _ = parser::sslv2_client_hello(data);
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut s = TlsState::default();
    let mut out = Vec::new();
    let mut ev = AppEvents::default();
    for (i, chunk) in rest.chunks(usize::from(split).max(1)).enumerate() {
        let to_server = i % 3 != 2;
        s.feed(to_server, chunk, &mut out, &mut ev);
        s.on_records(to_server, chunk);
    }
    let _ = s.is_encrypted();
    for o in &out {
        if let state::TlsOut::Client(c) = o {
            let _ = c.ja4();
        }
    }
});
