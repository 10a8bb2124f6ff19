//! TLS ClientHello engine: `parser` (pure functions over bytes) and `state` (per-flow state, caps).

pub mod parser;
pub mod state;
