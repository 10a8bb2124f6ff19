//! QUIC v1 Initials: the raw datagram (header parsing and every error path), the same bytes as
//! two datagrams of one stream, and the bytes as the plaintext frames of a correctly protected
//! client Initial, so that the frame walk, the CRYPTO reassembly and the ClientHello parser are
//! reached past the AEAD. A datagram svm sealed itself must always open.
#![no_main]

use dataplane::app::quic::crypto::client_initial;
use dataplane::app::quic::{InitialStream, QuicError, initial_server_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = initial_server_name(data);
    let (a, b) = data.split_at(data.len() / 2);
    let mut s = InitialStream::new();
    let _ = s.push(a);
    let _ = s.push(b);

    // First byte: DCID length (0..=20); then the DCID; the rest split in two packets.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 21).min(rest.len());
    let (dcid, frames) = rest.split_at(n);
    let (f1, f2) = frames.split_at(frames.len() / 2);
    let (Ok(p1), Ok(p2)) = (
        client_initial(dcid, 0, f1, 0),
        client_initial(dcid, 1, f2, 0),
    ) else {
        return;
    };
    let mut dgram = p1;
    dgram.extend_from_slice(&p2);
    match initial_server_name(&dgram) {
        Err(QuicError::Decrypt | QuicError::Truncated | QuicError::Keys) => {
            panic!("a sealed Initial did not open")
        }
        _ => {}
    }
});
