//! DNS query engine: `parser` (pure functions over bytes), `state` (per-flow state, caps),
//! `buffers` (the `dns.*` detection buffers), `eve` (an alert's EVE `dns`) and `answer` (the
//! blocking answers).

pub mod answer;
pub mod buffers;
pub mod eve;
pub mod parser;
pub mod state;
