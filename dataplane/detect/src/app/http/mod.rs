//! HTTP/1.x engine: `parser` (requests, pure functions over bytes), `state` (per-flow request
//! state, caps), `response` (responses: head, de-chunked and decompressed body, caps) and
//! `body` (the body framing both directions share: Content-Length, chunked, until close).

pub mod body;
pub mod parser;
pub mod response;
pub mod state;
