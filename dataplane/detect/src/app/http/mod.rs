//! HTTP/1.x engine: `parser` (requests, pure functions over bytes), `state` (per-flow request
//! state, caps), `response` (responses: head, de-chunked and decompressed body, caps),
//! `body` (the body framing both directions share: Content-Length, chunked, until close) and
//! `buffers` (the detection buffers of a transaction).

pub mod body;
pub mod buffers;
pub mod parser;
pub mod response;
pub mod state;
