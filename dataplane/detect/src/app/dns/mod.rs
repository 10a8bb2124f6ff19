//! DNS query engine: `parser` (pure functions over bytes) and `state` (per-flow state, caps).

pub mod answer;
pub mod parser;
pub mod state;
