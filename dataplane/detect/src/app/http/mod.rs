//! HTTP/1.x engine: `parser` (requests, pure functions over bytes), `state` (per-flow request
//! state, caps), `response` (responses: head, de-chunked and decompressed body, caps),
//! `body` (the body framing both directions share: Content-Length, chunked, until close),
//! `buffers` (the detection buffers of a transaction) and `eve` (an alert's EVE `http`).

pub mod body;
pub mod buffers;
pub mod eve;
pub mod parser;
pub mod response;
pub mod state;
