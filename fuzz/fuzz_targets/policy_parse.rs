//! Policy documents from the management server are untrusted: parse arbitrary bytes as JSON and
//! as YAML; a valid document must survive the canonical round trip and compile.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    policy::fuzz_parse(data);
});
