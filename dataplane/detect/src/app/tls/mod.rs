//! TLS handshake engine: `parser` (pure functions over bytes: records, ClientHello,
//! ServerHello, Certificate), `fingerprint` (JA3, JA3S, JA4), `cert` (X.509 fields),
//! `records` (record headers of both directions, to see encryption start), `state`
//! (per-flow state, caps), `buffers` (the detection buffers of a handshake) and `eve` (an
//! alert's EVE `tls`).

pub mod buffers;
pub mod cert;
pub mod eve;
pub mod fingerprint;
pub mod parser;
pub mod records;
pub mod state;
