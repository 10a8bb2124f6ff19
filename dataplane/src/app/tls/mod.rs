//! TLS ClientHello engine: `parser` (pure functions over bytes), `records` (record headers of
//! both directions, to see encryption start) and `state` (per-flow state, caps).

pub mod parser;
pub mod records;
pub mod state;
