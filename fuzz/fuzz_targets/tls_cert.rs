//! The certificate parser (x509-parser behind `tls.cert_*`) on arbitrary chains: the input is
//! cut into certificates where the first byte says. Properties: no panic, every certificate's
//! DER kept as given (up to the cap), the leaf's fingerprint always present.
#![no_main]

use dataplane::app::tls::cert::{MAX_CERTS, certificates};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let chain: Vec<&[u8]> = rest.chunks(usize::from(split).max(1) * 16).collect();
    let c = certificates(chain.iter().copied());
    assert_eq!(c.certs.len(), chain.len().min(MAX_CERTS));
    for (kept, given) in c.certs.iter().zip(&chain) {
        assert_eq!(kept.as_slice(), *given);
    }
    assert_eq!(c.fingerprint().is_some(), !chain.is_empty());
});
