//! Per-flow HTTP request state: buffering of a request head split across segments, body skipping
//! (Content-Length, chunked) to find pipelined requests, caps and gap resync.

use super::parser::{self, Body, ParseError};
use crate::app::{AppEvent, AppEvents, TxData, looks_like_http_request};

/// Bytes of one request head (request line + headers) held while incomplete. libhtp's default
/// `request-line` plus header limits are of this order; a head that does not end within 64 KiB
/// is abuse or not HTTP: [`AppEvent::HttpHeaderTooLong`], and the flow's requests are no longer
/// parsed.
pub const MAX_HEADER_BYTES: usize = 64 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Headers,
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkCrlf,
    Trailers,
    /// After a gap: discard until a line starting with a request method.
    Resync,
    /// Unrecoverable: nothing more is parsed.
    Stopped,
}

/// HTTP request parsing state of one flow (client-to-server direction).
#[derive(Debug)]
pub struct HttpState {
    phase: Phase,
    /// Unconsumed bytes: an incomplete head or chunk-size line.
    buf: Vec<u8>,
    /// Bytes at the start of `buf` already searched for the end of the head.
    searched: usize,
}

impl Default for HttpState {
    fn default() -> Self {
        HttpState {
            phase: Phase::Headers,
            buf: Vec::new(),
            searched: 0,
        }
    }
}

/// Whether `data` (searched from `from`) holds the empty line ending a head.
fn has_head_end(data: &[u8], from: usize) -> bool {
    let tail = data.get(from..).unwrap_or_default();
    tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n")
}

impl HttpState {
    /// Whether parsing stopped for good on this flow.
    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    /// New in-order client bytes.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<TxData>, ev: &mut AppEvents) {
        if self.phase == Phase::Stopped {
            return;
        }
        if self.buf.is_empty() {
            let n = self.process(data, out, ev);
            if self.phase != Phase::Stopped {
                self.buf
                    .extend_from_slice(data.get(n..).unwrap_or_default());
            }
        } else {
            let mut buf = core::mem::take(&mut self.buf);
            buf.extend_from_slice(data);
            let n = self.process(&buf, out, ev).min(buf.len());
            buf.drain(..n);
            self.buf = buf;
        }
        if self.phase == Phase::Stopped {
            self.buf = Vec::new();
        } else if self.buf.len() > MAX_HEADER_BYTES {
            ev.push(AppEvent::HttpHeaderTooLong);
            self.phase = Phase::Stopped;
            self.buf = Vec::new();
        }
    }

    /// Bytes were lost: drop what was buffered and look for the next request line.
    pub fn on_gap(&mut self) {
        if self.phase != Phase::Stopped {
            self.phase = Phase::Resync;
            self.buf.clear();
            self.searched = 0;
        }
    }

    fn stop(&mut self, ev: &mut AppEvents, e: AppEvent) -> usize {
        ev.push(e);
        self.phase = Phase::Stopped;
        usize::MAX
    }

    /// Consume what can be consumed; returns the bytes consumed (the rest is kept for later).
    fn process(&mut self, data: &[u8], out: &mut Vec<TxData>, ev: &mut AppEvents) -> usize {
        let mut pos = 0usize;
        loop {
            let rest = data.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                return pos;
            }
            match self.phase {
                Phase::Stopped => return data.len(),
                Phase::Headers => {
                    let skip = rest
                        .iter()
                        .take_while(|b| **b == b'\r' || **b == b'\n')
                        .count();
                    if skip > 0 {
                        pos = pos.saturating_add(skip);
                        self.searched = 0;
                        continue;
                    }
                    // Parse only once the head's end is there; search only new bytes, so a head
                    // trickled in byte by byte costs linear time.
                    let from = if pos == 0 {
                        self.searched.saturating_sub(3)
                    } else {
                        0
                    };
                    if !has_head_end(rest, from) {
                        self.searched = rest.len();
                        return pos;
                    }
                    self.searched = 0;
                    match parser::parse_request(rest) {
                        Ok(Some(p)) => {
                            pos = pos.saturating_add(p.len);
                            if p.bad_content_length {
                                ev.push(AppEvent::HttpBadContentLength);
                            }
                            self.phase = match p.body {
                                Body::None => Phase::Headers,
                                Body::Length(n) => Phase::Length(n),
                                Body::Chunked => Phase::ChunkSize,
                            };
                            out.push(TxData::Http(p.request));
                        }
                        // The end is there but httparse wants more: malformed.
                        Ok(None) | Err(ParseError::Malformed) => {
                            return self.stop(ev, AppEvent::HttpMalformedRequest);
                        }
                        Err(ParseError::TooManyHeaders) => {
                            return self.stop(ev, AppEvent::HttpTooManyHeaders);
                        }
                    }
                }
                Phase::Length(rem) | Phase::ChunkData(rem) => {
                    let avail = u64::try_from(rest.len()).unwrap_or(u64::MAX);
                    let n = rem.min(avail);
                    pos = pos.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
                    let left = rem - n;
                    self.phase = match (self.phase, left) {
                        (Phase::Length(_), 0) => Phase::Headers,
                        (Phase::Length(_), l) => Phase::Length(l),
                        (_, 0) => Phase::ChunkCrlf,
                        (_, l) => Phase::ChunkData(l),
                    };
                }
                Phase::ChunkSize => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((n, size))) => {
                        pos = pos.saturating_add(n);
                        self.phase = if size == 0 {
                            Phase::Trailers
                        } else {
                            Phase::ChunkData(size)
                        };
                    }
                    Ok(httparse::Status::Partial) => return pos,
                    Err(_) => return self.stop(ev, AppEvent::HttpBadChunk),
                },
                Phase::ChunkCrlf => {
                    if rest.starts_with(b"\r\n") {
                        pos = pos.saturating_add(2);
                    } else if rest.starts_with(b"\n") {
                        pos = pos.saturating_add(1);
                    } else if rest == b"\r" {
                        return pos;
                    } else {
                        return self.stop(ev, AppEvent::HttpBadChunk);
                    }
                    self.phase = Phase::ChunkSize;
                }
                Phase::Trailers => {
                    let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
                        return pos;
                    };
                    let empty = nl == 0 || (nl == 1 && rest.first() == Some(&b'\r'));
                    pos = pos.saturating_add(nl.saturating_add(1));
                    if empty {
                        self.phase = Phase::Headers;
                    }
                }
                Phase::Resync => {
                    let found = (0..rest.len()).find(|&i| {
                        (i == 0 || rest.get(i.saturating_sub(1)) == Some(&b'\n'))
                            && looks_like_http_request(rest.get(i..).unwrap_or_default())
                                == Some(true)
                    });
                    match found {
                        Some(i) => {
                            pos = pos.saturating_add(i);
                            self.phase = Phase::Headers;
                        }
                        None => return data.len(),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::AppBuffers;

    fn feed_all(parts: &[&[u8]]) -> (HttpState, Vec<TxData>, AppEvents) {
        let mut s = HttpState::default();
        let mut out = Vec::new();
        let mut ev = AppEvents::default();
        for p in parts {
            s.feed(p, &mut out, &mut ev);
        }
        (s, out, ev)
    }

    // One request split across three segments: complete only on the third.
    #[test]
    fn split_across_three_segments() {
        let mut s = HttpState::default();
        let mut out = Vec::new();
        let mut ev = AppEvents::default();
        s.feed(b"GET /adm", &mut out, &mut ev);
        s.feed(b"in.php HTTP/1.1\r\nHo", &mut out, &mut ev);
        assert!(out.is_empty());
        s.feed(b"st: a.example\r\n\r\n", &mut out, &mut ev);
        assert_eq!(out.len(), 1);
        let b = AppBuffers::of(&out[0]);
        assert_eq!(b.http_uri, Some(&b"/admin.php"[..]));
        assert_eq!(b.http_host, Some(&b"a.example"[..]));
        assert!(ev.is_empty());
    }

    // Three pipelined requests in one segment, with a Content-Length body and a chunked body.
    #[test]
    fn pipelined() {
        let (_, out, ev) = feed_all(&[
            b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\nGET /c HTTP/1.1\r\n\r\n",
        ]);
        assert!(ev.is_empty(), "{ev:?}");
        let uris: Vec<_> = out
            .iter()
            .map(|t| AppBuffers::of(t).http_uri.unwrap().to_vec())
            .collect();
        assert_eq!(uris, vec![b"/a".to_vec(), b"/b".to_vec(), b"/c".to_vec()]);
    }

    // A bad request stops parsing the flow with an anomaly.
    #[test]
    fn bad_request() {
        let (s, out, ev) = feed_all(&[
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
        ]);
        assert!(out.is_empty());
        assert!(s.is_stopped());
        assert_eq!(
            ev.iter().collect::<Vec<_>>(),
            vec![AppEvent::HttpMalformedRequest]
        );
    }

    // A head that never ends hits the cap.
    #[test]
    fn header_cap() {
        let mut s = HttpState::default();
        let mut out = Vec::new();
        let mut ev = AppEvents::default();
        s.feed(b"GET / HTTP/1.1\r\n", &mut out, &mut ev);
        let filler = vec![b'a'; 1024];
        for _ in 0..70 {
            s.feed(&filler, &mut out, &mut ev);
        }
        assert!(s.is_stopped());
        assert_eq!(
            ev.iter().collect::<Vec<_>>(),
            vec![AppEvent::HttpHeaderTooLong]
        );
    }

    // After a gap the parser skips to the next request line.
    #[test]
    fn gap_resync() {
        let mut s = HttpState::default();
        let mut out = Vec::new();
        let mut ev = AppEvents::default();
        s.feed(b"GET /one HTTP/1.1\r\nHos", &mut out, &mut ev);
        s.on_gap();
        s.feed(
            b"tail of something\r\nGET /two HTTP/1.1\r\n\r\n",
            &mut out,
            &mut ev,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(AppBuffers::of(&out[0]).http_uri, Some(&b"/two"[..]));
    }
}
