//! HTTP/1.x engine: `parser` (requests, pure functions over bytes), `state` (per-flow request
//! state, caps) and `response` (responses: head, de-chunked and decompressed body, caps).

pub mod parser;
pub mod response;
pub mod state;
