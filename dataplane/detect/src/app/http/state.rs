//! Per-flow HTTP request state: buffering of a request head split across segments, body
//! collection (Content-Length, chunked) up to a limit, pipelined requests, caps and gap resync.
//!
//! A transaction's progress is reported as it happens, as libhtp does ([`HttpOut`]): its request
//! line as soon as that line is complete (`http.uri`, `http.method` can match before the headers
//! end), then its complete head, then its body.

use super::body::{Framing, Step};
use super::parser::{self, Body, ParseError, Request};
use crate::app::{AppEvent, AppEvents, looks_like_http_request};

/// Body bytes collected per request (Suricata's `libhtp.default-config.request-body-limit`
/// default, 100 KiB); the rest of the body is skipped, not inspected.
pub const REQUEST_BODY_LIMIT: usize = 100 << 10;

/// The progress of the flow's latest request, reported by [`HttpState::feed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpOut {
    /// A request line: a new transaction, its headers still to come.
    Line(Request),
    /// A complete head. `replaces_line`: it completes the transaction of the preceding
    /// [`HttpOut::Line`]; else it is a new transaction.
    Head {
        /// The request (headers included).
        request: Request,
        /// Whether it completes the latest transaction.
        replaces_line: bool,
    },
    /// Body bytes of the latest transaction (de-chunked, within [`REQUEST_BODY_LIMIT`]).
    Body(Vec<u8>),
    /// The latest transaction's body ended.
    BodyEnd,
}

/// Bytes of one request head (request line + headers) held while incomplete. libhtp's default
/// `request-line` plus header limits are of this order; a head that does not end within 64 KiB
/// is abuse or not HTTP: [`AppEvent::HttpHeaderTooLong`], and the flow's requests are no longer
/// parsed.
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// Gaps one request line is joined across ([`HttpState::on_gap`]); at the next the line is
/// dropped and the parser resynchronises on the next request line.
pub const MAX_HEAD_GAPS: usize = 8;

/// The head `head` (which started at `buf[0]` when `gaps` holds offsets into `buf`) cut at
/// the gaps: its contiguous pieces of stream data.
fn frame_pieces(head: &[u8], gaps: &[usize]) -> Vec<Vec<u8>> {
    let mut pieces = Vec::with_capacity(gaps.len() + 1);
    let mut from = 0;
    for &at in gaps {
        let at = at.min(head.len());
        if at > from {
            pieces.extend(head.get(from..at).map(<[u8]>::to_vec));
        }
        from = from.max(at);
    }
    pieces.extend(
        head.get(from..)
            .filter(|r| !r.is_empty())
            .map(<[u8]>::to_vec),
    );
    pieces
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Headers,
    /// A body (Content-Length or chunked), framed by [`Framing`].
    Body(Framing),
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
    /// The request line at the start of `buf` was reported ([`HttpOut::Line`]).
    line_sent: bool,
    /// Body bytes of the current request reported so far.
    body_sent: usize,
    /// Offsets in `buf` where bytes were lost while the head there was incomplete: the head
    /// is parsed joined across them (as libhtp, which skips a gap in a request head), its
    /// stream frame is cut there ([`super::parser::Request::frame`]).
    head_gaps: Vec<usize>,
}

impl Default for HttpState {
    fn default() -> Self {
        HttpState {
            phase: Phase::Headers,
            buf: Vec::new(),
            searched: 0,
            line_sent: false,
            body_sent: 0,
            head_gaps: Vec::new(),
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
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<HttpOut>, ev: &mut AppEvents) {
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

    /// Bytes were lost. Inside an incomplete request line (bytes held, no line end yet), the
    /// line goes on after the gap, joined, as Suricata's libhtp reads it (`GET /malic` <gap>
    /// `ious HTTP/1.1` is `/malicious` to `http.uri`: the `tcp-urgp-02-drop-ips` case); the
    /// head's frame is cut there. Anywhere else, drop what was buffered and look for the next
    /// request line.
    pub fn on_gap(&mut self) {
        if self.phase == Phase::Headers
            && !self.buf.is_empty()
            && !self.line_sent
            && memchr::memchr(b'\n', &self.buf).is_none()
            // Past that many holes in one line: not a request worth joining.
            && self.head_gaps.len() < MAX_HEAD_GAPS
        {
            self.head_gaps.push(self.buf.len());
            return;
        }
        self.head_gaps.clear();
        if self.phase != Phase::Stopped {
            self.phase = Phase::Resync;
            self.buf.clear();
            self.searched = 0;
            self.line_sent = false;
        }
    }

    fn stop(&mut self, ev: &mut AppEvents, e: AppEvent) -> usize {
        ev.push(e);
        self.phase = Phase::Stopped;
        usize::MAX
    }

    /// Report body bytes within the limit.
    fn collect(&mut self, bytes: &[u8], out: &mut Vec<HttpOut>) {
        let room = REQUEST_BODY_LIMIT.saturating_sub(self.body_sent);
        let take = bytes.get(..room.min(bytes.len())).unwrap_or_default();
        if !take.is_empty() {
            self.body_sent = self.body_sent.saturating_add(take.len());
            out.push(HttpOut::Body(take.to_vec()));
        }
    }

    /// Consume what can be consumed; returns the bytes consumed (the rest is kept for later).
    fn process(&mut self, data: &[u8], out: &mut Vec<HttpOut>, ev: &mut AppEvents) -> usize {
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
                        // A line end in the bytes searched before would have been handled then:
                        // look for one in the new bytes only (linear in a trickled line too).
                        let new_line_end = rest
                            .get(from..)
                            .is_some_and(|t| memchr::memchr(b'\n', t).is_some());
                        if !self.line_sent && new_line_end {
                            match parser::parse_request_line(rest) {
                                Ok(None) => {}
                                // HTTP/0.9: the line is the whole request. Without a
                                // protocol but with more than whitespace after it, the
                                // protocol is missing and headers follow (the arm below).
                                Ok(Some(l))
                                    if l.protocol.is_none()
                                        && parser::is_http09(
                                            rest.get(l.len..).unwrap_or_default(),
                                        ) =>
                                {
                                    let mut r = Request::from_line(&l);
                                    r.headers_done = true;
                                    r.body_done = true;
                                    let gaps = if pos == 0 {
                                        core::mem::take(&mut self.head_gaps)
                                    } else {
                                        Vec::new()
                                    };
                                    r.frame =
                                        frame_pieces(rest.get(..l.len).unwrap_or(rest), &gaps);
                                    self.head_gaps.clear();
                                    pos = pos.saturating_add(l.len);
                                    self.searched = 0;
                                    out.push(HttpOut::Head {
                                        request: r,
                                        replaces_line: false,
                                    });
                                    continue;
                                }
                                Ok(Some(l)) => {
                                    self.line_sent = true;
                                    out.push(HttpOut::Line(Request::from_line(&l)));
                                }
                                Err(_) => {
                                    return self.stop(ev, AppEvent::HttpMalformedRequest);
                                }
                            }
                        }
                        return pos;
                    }
                    self.searched = 0;
                    let replaces_line = core::mem::take(&mut self.line_sent);
                    match parser::parse_request(rest) {
                        Ok(Some(mut p)) => {
                            let head = rest.get(..p.len).unwrap_or(rest);
                            // Gaps are offsets into the buffer the head started at: only for
                            // the first head of this call.
                            let gaps = if pos == 0 {
                                core::mem::take(&mut self.head_gaps)
                            } else {
                                Vec::new()
                            };
                            p.request.frame = frame_pieces(head, &gaps);
                            self.head_gaps.clear();
                            pos = pos.saturating_add(p.len);
                            if p.bad_content_length {
                                ev.push(AppEvent::HttpBadContentLength);
                            }
                            self.body_sent = 0;
                            self.phase = match p.body {
                                Body::None => Phase::Headers,
                                Body::Length(n) => Phase::Body(Framing::Length(n)),
                                Body::Chunked => Phase::Body(Framing::ChunkSize),
                            };
                            out.push(HttpOut::Head {
                                request: p.request,
                                replaces_line,
                            });
                        }
                        // The end is there but the head is incomplete: malformed.
                        Ok(None) | Err(ParseError::Malformed) => {
                            return self.stop(ev, AppEvent::HttpMalformedRequest);
                        }
                        Err(ParseError::TooManyHeaders) => {
                            return self.stop(ev, AppEvent::HttpTooManyHeaders);
                        }
                    }
                }
                Phase::Body(mut framing) => match framing.step(rest) {
                    Step::Took {
                        consumed,
                        data,
                        end,
                    } => {
                        self.collect(data, out);
                        pos = pos.saturating_add(consumed);
                        self.phase = if end {
                            out.push(HttpOut::BodyEnd);
                            Phase::Headers
                        } else {
                            Phase::Body(framing)
                        };
                    }
                    Step::More => return pos,
                    Step::BadChunk => return self.stop(ev, AppEvent::HttpBadChunk),
                },
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
    use crate::app::{AppBuffers, TxData};
    use crate::rules::BufferKind;

    /// The complete heads reported, as transactions.
    fn heads(out: &[HttpOut]) -> Vec<TxData> {
        out.iter()
            .filter_map(|o| match o {
                HttpOut::Head { request, .. } => Some(TxData::Http(Box::new(request.clone()))),
                _ => None,
            })
            .collect()
    }

    fn feed_all(parts: &[&[u8]]) -> (HttpState, Vec<HttpOut>, AppEvents) {
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
        assert!(out.is_empty());
        s.feed(b"in.php HTTP/1.1\r\nHo", &mut out, &mut ev);
        // The request line is complete: reported on its own, without header buffers.
        assert_eq!(out.len(), 1);
        let HttpOut::Line(line) = &out[0] else {
            panic!("{out:?}")
        };
        let line_tx = TxData::Http(Box::new(line.clone()));
        let lb = AppBuffers::of(&line_tx);
        assert_eq!(lb.get(BufferKind::HttpUri, true), Some(&b"/admin.php"[..]));
        assert_eq!(lb.get(BufferKind::HttpHost, true), None);
        assert_eq!(lb.get(BufferKind::HttpHeader, true), None);
        s.feed(b"st: a.example\r\n\r\n", &mut out, &mut ev);
        assert_eq!(out.len(), 2);
        assert!(matches!(
            out[1],
            HttpOut::Head {
                replaces_line: true,
                ..
            }
        ));
        let h = heads(&out);
        let b = AppBuffers::of(&h[0]);
        assert_eq!(b.get(BufferKind::HttpUri, true), Some(&b"/admin.php"[..]));
        assert_eq!(b.get(BufferKind::HttpHost, true), Some(&b"a.example"[..]));
        assert!(ev.is_empty());
    }

    // Three pipelined requests in one segment, with a Content-Length body and a chunked body.
    #[test]
    fn pipelined() {
        let (_, out, ev) = feed_all(&[
            b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\nGET /c HTTP/1.1\r\n\r\n",
        ]);
        assert!(ev.is_empty(), "{ev:?}");
        let uris: Vec<_> = heads(&out)
            .iter()
            .map(|t| {
                AppBuffers::of(t)
                    .get(BufferKind::HttpUri, true)
                    .unwrap()
                    .to_vec()
            })
            .collect();
        assert_eq!(uris, vec![b"/a".to_vec(), b"/b".to_vec(), b"/c".to_vec()]);
        // The bodies, de-chunked, each followed by its end.
        let bodies: Vec<&HttpOut> = out
            .iter()
            .filter(|o| matches!(o, HttpOut::Body(_) | HttpOut::BodyEnd))
            .collect();
        assert_eq!(
            bodies,
            vec![
                &HttpOut::Body(b"hello".to_vec()),
                &HttpOut::BodyEnd,
                &HttpOut::Body(b"abc".to_vec()),
                &HttpOut::BodyEnd
            ]
        );
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

    // A gap inside the request line: the line is read joined across it (`http.uri`), the
    // request frame is cut there; past the line, a gap resynchronises (`gap_resync`).
    #[test]
    fn gap_in_request_line_joins() {
        let mut s = HttpState::default();
        let mut out = Vec::new();
        let mut ev = AppEvents::default();
        s.feed(b"GET /malic", &mut out, &mut ev);
        s.on_gap();
        s.feed(b"ious HTTP/1.1\r\nHost: h\r\n\r\n", &mut out, &mut ev);
        let h = heads(&out);
        assert_eq!(h.len(), 1);
        let b = AppBuffers::of(&h[0]);
        assert_eq!(b.get(BufferKind::HttpUri, true), Some(&b"/malicious"[..]));
        let frame = |b: AppBuffers<'_>| {
            (0..)
                .map_while(|n| b.get_nth(BufferKind::Http1RequestFrame, n, true))
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            frame(b),
            [
                b"GET /malic".to_vec(),
                b"ious HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()
            ]
        );
        // Without a gap the frame is the head in one piece, the body not in it.
        let (_, out, _) = feed_all(&[b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"]);
        let h = heads(&out);
        assert_eq!(
            frame(AppBuffers::of(&h[0])),
            [b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n".to_vec()]
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
        let h = heads(&out);
        assert_eq!(h.len(), 1);
        assert_eq!(
            AppBuffers::of(&h[0]).get(BufferKind::HttpUri, true),
            Some(&b"/two"[..])
        );
    }

    // A head trickled byte by byte: the request line is reported once, when its LF arrives,
    // then the head once, completing it.
    #[test]
    fn trickled_head() {
        let req = b"GET /t HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut s = HttpState::default();
        let mut out = Vec::new();
        let mut ev = AppEvents::default();
        let mut line_at = None;
        for (i, b) in req.iter().enumerate() {
            s.feed(std::slice::from_ref(b), &mut out, &mut ev);
            if line_at.is_none() && !out.is_empty() {
                line_at = Some(i);
            }
        }
        assert_eq!(line_at, Some(16));
        assert_eq!(out.len(), 2);
        assert!(matches!(&out[0], HttpOut::Line(r) if r.uri == b"/t"));
        assert!(matches!(
            &out[1],
            HttpOut::Head {
                replaces_line: true,
                request
            } if request.host.as_deref() == Some(&b"h"[..])
        ));
        assert!(ev.is_empty());
    }

    // A space inside the target is part of the URI (libhtp), not an error (httparse).
    #[test]
    fn space_in_uri() {
        let (s, out, ev) = feed_all(&[b"GET /uri afterspace HTTP/1.1\r\nHost: h\r\n\r\n"]);
        assert!(ev.is_empty() && !s.is_stopped());
        let h = heads(&out);
        let b = AppBuffers::of(&h[0]);
        assert_eq!(
            b.get(BufferKind::HttpUri, true),
            Some(&b"/uri afterspace"[..])
        );
        assert_eq!(
            b.get(BufferKind::HttpProtocol, true),
            Some(&b"HTTP/1.1"[..])
        );
        assert_eq!(b.get(BufferKind::HttpHost, true), Some(&b"h"[..]));
    }

    // An HTTP/0.9 request line that ends its segment is a whole request; the next request is
    // parsed after it.
    #[test]
    fn http09() {
        let (_, out, _) = feed_all(&[b"GET /old\r\n", b"GET /new HTTP/1.0\r\n\r\n"]);
        let h = heads(&out);
        assert_eq!(h.len(), 2);
        assert_eq!(
            AppBuffers::of(&h[0]).get(BufferKind::HttpProtocol, true),
            Some(&b""[..])
        );
        assert_eq!(
            AppBuffers::of(&h[1]).get(BufferKind::HttpUri, true),
            Some(&b"/new"[..])
        );
    }

    // A request line without a protocol followed by header lines in the same segment: the
    // protocol is missing and the headers are the request's (libhtp), whether the head ends in
    // that segment or a later one.
    #[test]
    fn missing_protocol() {
        let (s, out, ev) = feed_all(&[b"GET /\r\nHeader1: Value1\r\nUser-Agent: test\r\n\r\n"]);
        assert!(ev.is_empty() && !s.is_stopped());
        let h = heads(&out);
        assert_eq!(h.len(), 1);
        let b = AppBuffers::of(&h[0]);
        assert_eq!(b.get(BufferKind::HttpUri, true), Some(&b"/"[..]));
        assert_eq!(b.get(BufferKind::HttpUserAgent, true), Some(&b"test"[..]));
        assert_eq!(
            b.get(BufferKind::HttpHeaderNames, true),
            Some(&b"\r\nHeader1\r\nUser-Agent\r\n\r\n"[..])
        );
        let (s, out, ev) = feed_all(&[b"GET /x\r\nHo", b"st: h\r\n\r\n"]);
        assert!(ev.is_empty() && !s.is_stopped());
        assert!(matches!(&out[0], HttpOut::Line(r) if r.uri == b"/x"));
        assert!(matches!(
            &out[1],
            HttpOut::Head {
                replaces_line: true,
                request
            } if request.host.as_deref() == Some(&b"h"[..])
        ));
        assert_eq!(out.len(), 2);
    }

    // The body is collected up to the limit; the rest is skipped and the next request parsed.
    #[test]
    fn body_limit() {
        let n = REQUEST_BODY_LIMIT + 10;
        let mut req = format!("POST /up HTTP/1.1\r\nContent-Length: {n}\r\n\r\n").into_bytes();
        req.extend(std::iter::repeat_n(b'x', n));
        req.extend_from_slice(b"GET /after HTTP/1.1\r\n\r\n");
        let parts: Vec<&[u8]> = req.chunks(1000).collect();
        let (_, out, ev) = feed_all(&parts);
        assert!(ev.is_empty());
        let body: usize = out
            .iter()
            .map(|o| match o {
                HttpOut::Body(b) => b.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(body, REQUEST_BODY_LIMIT);
        assert_eq!(out.iter().filter(|o| **o == HttpOut::BodyEnd).count(), 1);
        let h = heads(&out);
        assert_eq!(
            AppBuffers::of(&h[1]).get(BufferKind::HttpUri, true),
            Some(&b"/after"[..])
        );
    }

    // A request line that is not one stops parsing at once, before the head's end.
    #[test]
    fn bad_line_stops_early() {
        let (s, out, ev) = feed_all(&[b"GET\x01 / HTTP/1.1\r\nHost: a\r\n"]);
        assert!(out.is_empty());
        assert!(s.is_stopped());
        assert_eq!(
            ev.iter().collect::<Vec<_>>(),
            vec![AppEvent::HttpMalformedRequest]
        );
    }

    proptest::proptest! {
        // Pipelined requests (targets with spaces, Content-Length or chunked bodies) give the same
        // transactions, URIs and bodies however the bytes are split into segments.
        #[test]
        fn split_invariance(
            reqs in proptest::collection::vec(
                ("/[a-z ]{0,12}[a-z]", proptest::collection::vec(b'a'..=b'z', 0..40), proptest::prelude::any::<bool>()),
                1..4,
            ),
            cuts in proptest::collection::vec(1usize..50, 1..20),
        ) {
            let mut wire = Vec::new();
            for (target, body, chunked) in &reqs {
                wire.extend_from_slice(format!("POST {target} HTTP/1.1\r\nHost: h\r\n").as_bytes());
                if *chunked {
                    wire.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                    for c in body.chunks(7) {
                        wire.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                        wire.extend_from_slice(c);
                        wire.extend_from_slice(b"\r\n");
                    }
                    wire.extend_from_slice(b"0\r\n\r\n");
                } else {
                    wire.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                    wire.extend_from_slice(body);
                }
            }
            let parts = super::super::body::tests::cut(&wire, &cuts);
            let (s, out, ev) = feed_all(&parts);
            proptest::prop_assert!(ev.is_empty() && !s.is_stopped(), "{ev:?}");
            let h = heads(&out);
            proptest::prop_assert_eq!(h.len(), reqs.len());
            // Bodies between heads, in order.
            let mut bodies: Vec<Vec<u8>> = Vec::new();
            for o in &out {
                match o {
                    HttpOut::Head { .. } => bodies.push(Vec::new()),
                    HttpOut::Body(b) => {
                        if let Some(last) = bodies.last_mut() {
                            last.extend_from_slice(b);
                        }
                    }
                    _ => {}
                }
            }
            for (i, (target, body, _)) in reqs.iter().enumerate() {
                let b = AppBuffers::of(&h[i]);
                proptest::prop_assert_eq!(b.get(BufferKind::HttpUriRaw, true), Some(target.as_bytes()));
                proptest::prop_assert_eq!(&bodies[i], body);
            }
        }
    }
}
