//! TLS handshake engine: `parser` (pure functions over bytes: records, ClientHello,
//! ServerHello, Certificate), `fingerprint` (JA3, JA3S, JA4), `cert` (X.509 fields),
//! `records` (record headers of both directions, to see encryption start) and `state`
//! (per-flow state, caps).

pub mod cert;
pub mod fingerprint;
pub mod parser;
pub mod records;
pub mod state;
