//! HTTP/1.x responses (server-to-client stream): the status line and headers (httparse), the
//! body de-chunked and, for `Content-Encoding: gzip` or `deflate`, decompressed (flate2), within
//! [`RESPONSE_BODY_LIMIT`] decoded bytes. Responses are matched to requests in order (HTTP/1.x
//! pipelining): the caller attaches each to the oldest request without one.
//!
//! Buffers: `http.response_line`, `http.stat_code`, `http.stat_msg`, `http.server`,
//! `http.location`, and on the client-bound side of the shared buffers `http.header` (every
//! header but Set-Cookie, `Name: value\r\n`), `http.cookie` (Set-Cookie), `http.protocol`,
//! `file.data` (the decoded body).

use std::io::Write;

use super::body::{Framing, Step};
use super::parser::MAX_HEADERS;
use crate::app::{AppEvent, AppEvents};

/// Decoded body bytes kept per response (Suricata's `response-body-limit` default, 100 KiB);
/// the rest is neither decoded nor inspected.
pub const RESPONSE_BODY_LIMIT: usize = 100 << 10;

/// Bytes of one response head held while incomplete (as for requests).
pub const MAX_RESPONSE_HEAD: usize = 64 << 10;

/// A parsed response: owned buffers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The status line without its line end.
    pub line: Vec<u8>,
    /// `HTTP/1.1`.
    pub protocol: Vec<u8>,
    /// The three status digits.
    pub stat_code: Vec<u8>,
    /// The reason phrase.
    pub stat_msg: Vec<u8>,
    /// Every header but Set-Cookie as `Name: value\r\n`.
    pub header: Vec<u8>,
    /// Server value.
    pub server: Option<Vec<u8>>,
    /// Location value.
    pub location: Option<Vec<u8>>,
    /// Set-Cookie value(s), joined by "; ".
    pub set_cookie: Option<Vec<u8>>,
    /// The decoded body so far (at most [`RESPONSE_BODY_LIMIT`] bytes).
    pub body: Vec<u8>,
    /// The body ended (or there is none).
    pub body_done: bool,
    /// `http.header_names`, `http.start`, `http.content_type`, `http.content_len`.
    pub fields: super::parser::HeadFields,
    /// The Upgrade header's value (the first one), trimmed.
    pub upgrade: Option<Vec<u8>>,
}

/// The progress of the flow's responses, reported by [`ResponseState::feed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseOut {
    /// A complete head: a response for the oldest request without one.
    Head(Box<Response>),
    /// Decoded body bytes of the latest response.
    Body(Vec<u8>),
    /// The latest response's body ended.
    BodyEnd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Head,
    /// A body, framed by [`Framing`] (Content-Length, chunked, or until the connection closes).
    Body(Framing),
    /// Lost track (a gap, or bytes before detection were skipped): look for `HTTP/` at a
    /// line start.
    Resync,
    Stopped,
    /// A `101 Switching Protocols` ended HTTP/1 on the connection: what follows its head is
    /// another protocol's, kept for the caller ([`ResponseState::take_switched`]).
    Switched,
}

/// A writer that keeps at most `room` bytes and swallows the rest, so a decompression bomb
/// costs no memory beyond the cap.
struct Capped {
    out: Vec<u8>,
    room: usize,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.room.min(buf.len());
        self.out.extend_from_slice(buf.get(..n).unwrap_or_default());
        self.room -= n;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Decoder {
    Identity,
    Gzip(Box<flate2::write::GzDecoder<Capped>>),
    Zlib(Box<flate2::write::ZlibDecoder<Capped>>),
    Deflate(Box<flate2::write::DeflateDecoder<Capped>>),
    /// `deflate` whose first bytes are not seen yet (zlib-wrapped or raw, as libhtp guesses).
    DeflateUndecided,
    /// Decoding failed: the body so far stays, nothing more is decoded.
    Failed,
}

impl core::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Decoder::Identity => "identity",
            Decoder::Gzip(_) => "gzip",
            Decoder::Zlib(_) => "zlib",
            Decoder::Deflate(_) => "deflate",
            Decoder::DeflateUndecided => "deflate?",
            Decoder::Failed => "failed",
        })
    }
}

fn capped(room: usize) -> Capped {
    Capped {
        out: Vec::new(),
        room,
    }
}

/// HTTP response parsing state of one flow.
#[derive(Debug)]
pub struct ResponseState {
    phase: Phase,
    buf: Vec<u8>,
    decoder: Decoder,
    /// Decoded body bytes reported for the current response.
    body_sent: usize,
}

impl Default for ResponseState {
    fn default() -> Self {
        ResponseState {
            phase: Phase::Head,
            buf: Vec::new(),
            decoder: Decoder::Identity,
            body_sent: 0,
        }
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let s = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let e = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(s, |i| i + 1);
    v.get(s..e.max(s)).unwrap_or_default()
}

/// A parsed head: its length, the response, the framing and the content coding.
type Head = (usize, Response, Phase, Decoder);

/// Parse one response head at the start of `buf`. `Ok(None)`: incomplete. `no_body`: the
/// request was HEAD (the response has no body whatever its headers say).
fn parse_head(buf: &[u8], no_body: bool) -> Result<Option<Head>, AppEvent> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(AppEvent::HttpTooManyHeaders),
        Err(_) => return Err(AppEvent::HttpMalformedResponse),
    };
    let line_end = memchr::memchr(b'\n', buf).unwrap_or(0);
    let line = buf.get(..line_end).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let code = r.code.unwrap_or(0);
    let mut resp = Response {
        line: line.to_vec(),
        protocol: format!("HTTP/1.{}", r.version.unwrap_or(1)).into_bytes(),
        stat_code: format!("{code:03}").into_bytes(),
        stat_msg: r.reason.unwrap_or_default().as_bytes().to_vec(),
        ..Response::default()
    };
    let raw = buf.get(line_end.saturating_add(1)..len).unwrap_or_default();
    resp.fields = super::parser::HeadFields::new(line, r.headers, raw);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut decoder = Decoder::Identity;
    for h in r.headers.iter() {
        let value = trim(h.value);
        let name = h.name;
        if name.eq_ignore_ascii_case("set-cookie") {
            let c = resp.set_cookie.get_or_insert_with(Vec::new);
            if !c.is_empty() {
                c.extend_from_slice(b"; ");
            }
            c.extend_from_slice(value);
            continue;
        }
        resp.header.extend_from_slice(name.as_bytes());
        resp.header.extend_from_slice(b": ");
        resp.header.extend_from_slice(value);
        resp.header.extend_from_slice(b"\r\n");
        if name.eq_ignore_ascii_case("server") {
            resp.server.get_or_insert_with(|| value.to_vec());
        } else if name.eq_ignore_ascii_case("location") {
            resp.location.get_or_insert_with(|| value.to_vec());
        } else if name.eq_ignore_ascii_case("upgrade") {
            resp.upgrade.get_or_insert_with(|| value.to_vec());
        } else if name.eq_ignore_ascii_case("content-length") {
            length = core::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse().ok());
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| trim(last).eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("content-encoding") {
            let coding = trim(value.rsplit(|b| *b == b',').next().unwrap_or_default());
            decoder =
                if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
                    Decoder::Gzip(Box::new(flate2::write::GzDecoder::new(capped(
                        RESPONSE_BODY_LIMIT,
                    ))))
                } else if coding.eq_ignore_ascii_case(b"deflate") {
                    Decoder::DeflateUndecided
                } else {
                    Decoder::Identity
                };
        }
    }
    // RFC 9110 section 15.2.2: after a 101 the connection speaks the protocol the response
    // names; nothing more of it is HTTP/1.
    let phase = if code == 101 {
        Phase::Switched
    // RFC 9112 section 6.3: 1xx, 204, 304 and responses to HEAD have no body.
    } else if no_body || (100..200).contains(&code) || code == 204 || code == 304 {
        Phase::Head
    } else if chunked {
        Phase::Body(Framing::ChunkSize)
    } else {
        match length {
            Some(0) => Phase::Head,
            Some(n) => Phase::Body(Framing::Length(n)),
            None => Phase::Body(Framing::UntilClose),
        }
    };
    resp.body_done = matches!(phase, Phase::Head | Phase::Switched);
    Ok(Some((len, resp, phase, decoder)))
}

impl ResponseState {
    /// After a `101 Switching Protocols` ([`Response::upgrade`] names the new protocol): the
    /// bytes that followed its head in the feed that carried it, once; HTTP/1 parsing of the
    /// responses is over. `None` otherwise.
    pub fn take_switched(&mut self) -> Option<Vec<u8>> {
        if self.phase != Phase::Switched {
            return None;
        }
        self.phase = Phase::Stopped;
        Some(core::mem::take(&mut self.buf))
    }

    /// Bytes were lost or skipped: look for the next status line.
    pub fn on_gap(&mut self) {
        if !matches!(self.phase, Phase::Stopped | Phase::Switched) {
            self.phase = Phase::Resync;
            self.buf.clear();
        }
    }

    /// New in-order server bytes. `head_request(n)`: whether the `n`-th response of this call
    /// answers a HEAD request (the caller knows the requests).
    pub fn feed(
        &mut self,
        data: &[u8],
        head_request: &mut dyn FnMut() -> bool,
        out: &mut Vec<ResponseOut>,
        ev: &mut AppEvents,
    ) {
        if matches!(self.phase, Phase::Stopped | Phase::Switched) {
            return;
        }
        // Nothing held: parse the segment where it is and keep only what is left (an incomplete
        // head or chunk-size line), so body bytes are not copied into the buffer first.
        let mut buf = core::mem::take(&mut self.buf);
        if buf.is_empty() {
            let n = self.process(data, head_request, out, ev).min(data.len());
            buf.extend_from_slice(data.get(n..).unwrap_or_default());
        } else {
            buf.extend_from_slice(data);
            let n = self.process(&buf, head_request, out, ev).min(buf.len());
            buf.drain(..n);
        }
        if self.phase == Phase::Stopped {
            buf = Vec::new();
        } else if self.phase == Phase::Switched {
            // The other protocol's first bytes, at most one segment's worth (taken by the
            // caller right after this call).
        } else if buf.len() > MAX_RESPONSE_HEAD {
            ev.push(AppEvent::HttpHeaderTooLong);
            self.phase = Phase::Stopped;
            buf = Vec::new();
        }
        self.buf = buf;
    }

    /// Decode body bytes and report what fits in the limit.
    fn body(&mut self, raw: &[u8], out: &mut Vec<ResponseOut>, ev: &mut AppEvents) {
        let room = RESPONSE_BODY_LIMIT.saturating_sub(self.body_sent);
        if room == 0 || raw.is_empty() {
            return;
        }
        if let Decoder::DeflateUndecided = self.decoder {
            // RFC 1950 header: CM 8 and the check bits; otherwise raw deflate (RFC 1951).
            let zlib = matches!(raw, [a, b, ..] if a & 0x0f == 8 && (u16::from(*a) << 8 | u16::from(*b)) % 31 == 0);
            self.decoder = if zlib {
                Decoder::Zlib(Box::new(flate2::write::ZlibDecoder::new(capped(room))))
            } else {
                Decoder::Deflate(Box::new(flate2::write::DeflateDecoder::new(capped(room))))
            };
        }
        // One vector per step, handed over as it is: the identity coding copies the raw bytes
        // once, a decoder's output is taken from its writer.
        let mut decoded = match &mut self.decoder {
            Decoder::Identity => raw.get(..room.min(raw.len())).unwrap_or_default().to_vec(),
            Decoder::Failed | Decoder::DeflateUndecided => return,
            d => {
                let r = match d {
                    Decoder::Gzip(g) => g
                        .write_all(raw)
                        .and_then(|()| g.flush())
                        .map(|()| core::mem::take(&mut g.get_mut().out)),
                    Decoder::Zlib(g) => g
                        .write_all(raw)
                        .and_then(|()| g.flush())
                        .map(|()| core::mem::take(&mut g.get_mut().out)),
                    Decoder::Deflate(g) => g
                        .write_all(raw)
                        .and_then(|()| g.flush())
                        .map(|()| core::mem::take(&mut g.get_mut().out)),
                    _ => Ok(Vec::new()),
                };
                match r {
                    Ok(v) => v,
                    Err(_) => {
                        ev.push(AppEvent::HttpBadEncoding);
                        self.decoder = Decoder::Failed;
                        return;
                    }
                }
            }
        };
        decoded.truncate(room);
        if !decoded.is_empty() {
            self.body_sent = self.body_sent.saturating_add(decoded.len());
            out.push(ResponseOut::Body(decoded));
        }
    }

    fn end_body(&mut self, out: &mut Vec<ResponseOut>) {
        out.push(ResponseOut::BodyEnd);
        self.phase = Phase::Head;
        self.decoder = Decoder::Identity;
    }

    fn process(
        &mut self,
        data: &[u8],
        head_request: &mut dyn FnMut() -> bool,
        out: &mut Vec<ResponseOut>,
        ev: &mut AppEvents,
    ) -> usize {
        let mut pos = 0usize;
        loop {
            let rest = data.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                return pos;
            }
            match self.phase {
                Phase::Stopped => return data.len(),
                Phase::Switched => return pos,
                Phase::Head => {
                    let skip = rest
                        .iter()
                        .take_while(|b| **b == b'\r' || **b == b'\n')
                        .count();
                    if skip > 0 {
                        pos = pos.saturating_add(skip);
                        continue;
                    }
                    if !rest.starts_with(b"HTTP/") && rest.len() >= 5 {
                        ev.push(AppEvent::HttpMalformedResponse);
                        self.phase = Phase::Resync;
                        continue;
                    }
                    // Complete first: only then is the request it answers taken.
                    if let Ok(None) = parse_head(rest, false) {
                        return pos;
                    }
                    let no_body = head_request();
                    match parse_head(rest, no_body) {
                        Ok(Some((len, resp, phase, decoder))) => {
                            pos = pos.saturating_add(len);
                            self.phase = phase;
                            self.decoder = decoder;
                            self.body_sent = 0;
                            out.push(ResponseOut::Head(Box::new(resp)));
                        }
                        Ok(None) => return pos,
                        Err(e) => {
                            ev.push(e);
                            self.phase = Phase::Resync;
                            pos = pos.saturating_add(1);
                        }
                    }
                }
                Phase::Body(mut framing) => match framing.step(rest) {
                    Step::Took {
                        consumed,
                        data,
                        end,
                    } => {
                        self.body(data, out, ev);
                        pos = pos.saturating_add(consumed);
                        if end {
                            self.end_body(out);
                        } else {
                            self.phase = Phase::Body(framing);
                        }
                    }
                    Step::More => return pos,
                    Step::BadChunk => {
                        ev.push(AppEvent::HttpBadChunk);
                        self.end_body(out);
                        self.phase = Phase::Resync;
                    }
                },
                Phase::Resync => {
                    let found = (0..rest.len()).find(|&i| {
                        (i == 0 || rest.get(i.saturating_sub(1)) == Some(&b'\n'))
                            && rest.get(i..).is_some_and(|t| t.starts_with(b"HTTP/"))
                    });
                    match found {
                        Some(i) => {
                            pos = pos.saturating_add(i);
                            self.phase = Phase::Head;
                        }
                        // Keep a possible `HTTP/` prefix cut at the end.
                        None => return data.len().saturating_sub(4).max(pos),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    pub(crate) fn chunked(data: &[u8], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for c in data.chunks(size) {
            out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    /// The probe response: a 302 with Server, Location, Set-Cookie and a gzip, chunked body.
    pub(crate) fn probe_response(body: &[u8]) -> Vec<u8> {
        let mut r = b"HTTP/1.1 302 Probe Found\r\nServer: probe-server\r\n\
            Location: /probe-location\r\nSet-Cookie: probe=set\r\nContent-Encoding: gzip\r\n\
            Transfer-Encoding: chunked\r\n\r\n"
            .to_vec();
        r.extend(chunked(&gzip(body), 7));
        r
    }

    /// Feed `parts`; the heads and the decoded body of each response, and the events.
    fn run(parts: &[&[u8]], head: bool) -> (Vec<(Response, Vec<u8>, bool)>, AppEvents) {
        let mut s = ResponseState::default();
        let mut out = Vec::new();
        let mut ev = AppEvents::default();
        for p in parts {
            s.feed(p, &mut || head, &mut out, &mut ev);
        }
        let mut got: Vec<(Response, Vec<u8>, bool)> = Vec::new();
        for o in out {
            match o {
                ResponseOut::Head(r) => {
                    let done = r.body_done;
                    got.push((*r, Vec::new(), done));
                }
                ResponseOut::Body(b) => got.last_mut().unwrap().1.extend(b),
                ResponseOut::BodyEnd => got.last_mut().unwrap().2 = true,
            }
        }
        (got, ev)
    }

    #[test]
    fn gzip_chunked_split_everywhere() {
        let wire = probe_response(b"MZ probe file body");
        for cut in 0..wire.len() {
            let (got, ev) = run(&[&wire[..cut], &wire[cut..]], false);
            assert!(ev.is_empty(), "cut {cut}: {ev:?}");
            assert_eq!(got.len(), 1, "cut {cut}");
            let (r, body, done) = &got[0];
            assert_eq!(r.stat_code, b"302");
            assert_eq!(r.stat_msg, b"Probe Found");
            assert_eq!(r.line, b"HTTP/1.1 302 Probe Found");
            assert_eq!(r.server.as_deref(), Some(&b"probe-server"[..]));
            assert_eq!(r.location.as_deref(), Some(&b"/probe-location"[..]));
            assert_eq!(r.set_cookie.as_deref(), Some(&b"probe=set"[..]));
            assert!(!r.header.windows(10).any(|w| w == b"Set-Cookie"));
            let head_end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert_eq!(r.fields.raw, &wire[26..head_end]);
            assert_eq!(r.fields.header(2), Some(&b"Set-Cookie: probe=set"[..]));
            assert!(r.fields.header(4).is_some() && r.fields.header(5).is_none());
            assert_eq!(body, b"MZ probe file body", "cut {cut}");
            assert!(done);
        }
    }

    #[test]
    fn deflate_zlib_and_raw_and_framing() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"zlib body").unwrap();
        let z = z.finish().unwrap();
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(b"raw body").unwrap();
        let d = d.finish().unwrap();
        for (enc, want) in [(z, &b"zlib body"[..]), (d, &b"raw body"[..])] {
            let mut wire = format!(
                "HTTP/1.0 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: {}\r\n\r\n",
                enc.len()
            )
            .into_bytes();
            wire.extend(&enc);
            // A second, pipelined response with no body.
            wire.extend_from_slice(b"HTTP/1.1 304 Not Modified\r\n\r\n");
            let (got, ev) = run(&[&wire], false);
            assert!(ev.is_empty(), "{ev:?}");
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].1, want);
            assert!(got[0].2 && got[1].2);
            assert_eq!(got[1].0.stat_code, b"304");
        }
        // HEAD: Content-Length without a body; the next response follows at once.
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nHTTP/1.1 404 Nope\r\n\r\n";
        let (got, _) = run(&[wire], true);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].0.stat_code, b"404");
        // No length: the body lasts until the close and is reported as it comes.
        let (got, _) = run(&[b"HTTP/1.0 200 OK\r\n\r\nab", b"cd"], false);
        assert_eq!(got[0].1, b"abcd");
        assert!(!got[0].2);
    }

    #[test]
    fn caps_and_malformed() {
        // 10 MiB of zeros gzip to ~10 KiB: only RESPONSE_BODY_LIMIT bytes are kept.
        let big = vec![0u8; 10 << 20];
        let wire = probe_response(&big);
        let (got, _) = run(&[&wire], false);
        assert_eq!(got[0].1.len(), RESPONSE_BODY_LIMIT);
        // Not gzip at all: counted, the response is still there.
        let mut wire =
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 25\r\n\r\n".to_vec();
        wire.extend_from_slice(b"this is not gzip at all!!");
        let (got, ev) = run(&[&wire], false);
        assert_eq!(
            ev.iter().collect::<Vec<_>>(),
            vec![AppEvent::HttpBadEncoding]
        );
        assert!(got[0].2);
        // Garbage before a status line: counted, then the response is found.
        let (got, ev) = run(
            &[b"garbage\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"],
            false,
        );
        assert_eq!(
            ev.iter().collect::<Vec<_>>(),
            vec![AppEvent::HttpMalformedResponse]
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, b"x");
        // A head that never ends.
        let mut s = ResponseState::default();
        let mut ev = AppEvents::default();
        let mut out = Vec::new();
        s.feed(b"HTTP/1.1 200 OK\r\n", &mut || false, &mut out, &mut ev);
        s.feed(
            &vec![b'a'; MAX_RESPONSE_HEAD + 1],
            &mut || false,
            &mut out,
            &mut ev,
        );
        assert_eq!(
            ev.iter().collect::<Vec<_>>(),
            vec![AppEvent::HttpHeaderTooLong]
        );
    }

    proptest! {
        // Any bytes in any split: no panic, and the decoded body of a well-formed gzip
        // response does not depend on where the stream was cut.
        #[test]
        fn any_split(body in proptest::collection::vec(any::<u8>(), 0..3000),
                     cuts in proptest::collection::vec(0usize..4000, 0..6),
                     junk in proptest::collection::vec(any::<u8>(), 0..400)) {
            let wire = probe_response(&body);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (wire.len() + 1)).collect();
            cuts.sort_unstable();
            let mut parts = Vec::new();
            let mut last = 0;
            for c in cuts {
                parts.push(&wire[last..c]);
                last = c;
            }
            parts.push(&wire[last..]);
            let (got, _) = run(&parts, false);
            prop_assert_eq!(&got[0].1, &body);
            let _ = run(&[&junk, &wire, &junk], false);
        }
    }
}
