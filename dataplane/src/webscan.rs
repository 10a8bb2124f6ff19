//! Web address scan, the pure part: where a flow's web address comes from (the first HTTP/1
//! request head, the TLS or QUIC ClientHello's server name, DNS query names), read once per
//! flow from the client's first bytes. The worker's hook (`worker/web.rs`) looks the address up
//! in the loaded [`webaddr::AddressSet`] and acts; the block page ([`crate::blockpage`]) and the
//! DNS answer ([`crate::app::dns::answer`]) are built there.
//!
//! # Per flow
//! A TCP flow's [`WebFlow`] reads the client's data from its first payload segment on, in
//! sequence order: the first segment says what the flow is (a TLS handshake record, an HTTP
//! method token, or DNS over TCP on port 53) or that there is nothing to read, and the flow is
//! done. A head or a ClientHello split over segments is collected up to [`MAX_COLLECT`] bytes;
//! a gap in the sequence (a segment lost or reordered before the head completed), a malformed
//! head, or the cap ends reading for that flow (fail open: the flow is forwarded, the reason is
//! counted). A TLS flow is done once its server name is read. HTTP and DNS over TCP carry one
//! request after another: after a request head the flow passes its `Content-Length` body
//! unread and reads the next head (a pipelined head in the same segment comes from
//! [`WebFlow::more`]); after a DNS message, the next message. A chunked request body, a
//! `CONNECT`, an `Upgrade`, or a bad `Content-Length` end reading (what follows is no request
//! the scan can frame); so do bytes where the next head should start that are no request
//! (`NotWeb`, not counted).
//!
//! DNS over UDP has no flow state: each query datagram is read on its own. A QUIC flow's client
//! datagrams go through [`crate::app::quic::InitialStream`] until the ClientHello's server name
//! is read ([`WebFlow::on_quic_datagram`]).

pub mod head;
pub use svm_detect::webscan::hello;
pub mod question;

use std::borrow::Cow;

use crate::app::dns::parser::DnsError;
use crate::app::http::parser as http;
use crate::app::quic::crypto::MaterialCache;
use crate::app::quic::{InitialStream, Progress};
use crate::app::tls::parser as tls;

/// Most client bytes collected while a request head or a ClientHello is incomplete (a
/// ClientHello with post-quantum key shares is about 1.8 KB; an HTTP head is rarely over 8 KB).
/// At the cap the flow is not read further (counted, forwarded).
pub const MAX_COLLECT: usize = 16 << 10;

/// DNS's port.
pub const DNS_PORT: u16 = 53;

/// What the client asked for: borrowed from the segment it was read from (the common case: a
/// head, hello or message in one segment), owned when it was gathered from several.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed<'a> {
    /// An HTTP/1 request: method, request target as sent, and the `Host` header (or the
    /// absolute-form target's authority).
    Http {
        /// Method token.
        method: Cow<'a, [u8]>,
        /// Request target.
        target: Cow<'a, [u8]>,
        /// Host header value.
        host: Option<Cow<'a, [u8]>>,
    },
    /// A TLS ClientHello's server name.
    Tls {
        /// `server_name` host name, as sent.
        sni: Cow<'a, [u8]>,
    },
    /// A QUIC v1 Initial's ClientHello server name.
    Quic {
        /// `server_name` host name.
        sni: Cow<'a, [u8]>,
    },
    /// A DNS query whose questions [`question::questions`] checked (its names are read again
    /// from it, not checked again: [`Observed::dns_questions`]).
    Dns {
        /// The query message; over TCP with its two-byte length in front (what a block answer
        /// answers).
        message: Cow<'a, [u8]>,
        /// Over TCP.
        tcp: bool,
        /// How many questions the check found ([`question::Questions::len`]).
        questions: usize,
    },
}

impl Observed<'_> {
    /// The same, owning its bytes.
    pub fn into_owned(self) -> Observed<'static> {
        let own = |b: Cow<'_, [u8]>| Cow::Owned(b.into_owned());
        match self {
            Observed::Http {
                method,
                target,
                host,
            } => Observed::Http {
                method: own(method),
                target: own(target),
                host: host.map(own),
            },
            Observed::Tls { sni } => Observed::Tls { sni: own(sni) },
            Observed::Quic { sni } => Observed::Quic { sni: own(sni) },
            Observed::Dns {
                message,
                tcp,
                questions,
            } => Observed::Dns {
                message: own(message),
                tcp,
                questions,
            },
        }
    }

    /// A DNS query's question section (`None` for anything else): the message without the
    /// length in front over TCP, its questions as checked when it was read (not checked again).
    pub fn dns_questions(&self) -> Option<question::Questions<'_>> {
        let Observed::Dns {
            message,
            tcp,
            questions,
        } = self
        else {
            return None;
        };
        let msg = if *tcp {
            message.get(2..).unwrap_or_default()
        } else {
            message
        };
        (*questions > 0).then(|| question::Questions::checked(msg, *questions))
    }
}

/// Why reading a flow stopped without an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// The first bytes are none of HTTP, TLS or DNS: nothing to read (not an anomaly).
    NotWeb,
    /// The head or record is malformed.
    Malformed,
    /// More than [`MAX_COLLECT`] bytes without a complete head.
    TooLong,
    /// A gap in the client's sequence before the head completed.
    Gap,
}

/// What one client segment gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// Nothing yet (more bytes needed), or the flow was done already.
    Wait,
    /// The address is read; the flow is done.
    Found(Observed<'a>),
    /// The flow is done without an address (a ClientHello without a server name is `NotWeb`).
    GaveUp(GiveUp),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Start,
    Http,
    Tls,
    DnsTcp,
    Done,
    /// A QUIC flow whose Initial `quic: block` dropped and reported (not done: its later
    /// Initials are dropped too).
    QuicDropped,
}

/// Bytes kept between segments: a head collected so far, or what follows a request.
#[derive(Debug, Default)]
struct Pending {
    /// Bytes of a head not complete yet (or of the next heads, after a pipelined request).
    bytes: Vec<u8>,
    /// Body bytes of the last request still to pass unread.
    skip: u64,
}

/// What follows a request the scan has read.
enum After {
    /// This many body bytes, then the next request.
    Body(u64),
    /// Nothing the scan can frame: reading ends.
    Stop,
}

/// The client side of one TCP flow, as the web address scan reads it.
#[derive(Debug, Default)]
pub struct WebFlow {
    phase: Phase,
    /// The next client sequence number expected.
    next_seq: u32,
    /// Bytes kept between segments (none on the common path: a head in one segment and no body
    /// or a body that ended; boxed so a flow carries 24 bytes of this state).
    buf: Option<Box<Pending>>,
    /// A QUIC flow's client Initials until the ClientHello is read (a ClientHello with
    /// post-quantum key shares spans two datagrams).
    quic: Option<Box<InitialStream>>,
}

impl WebFlow {
    /// Whether this flow has nothing more to read.
    #[inline]
    pub fn done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Under `quic: block`: whether this is the flow's first dropped Initial (to report), after
    /// which it is not.
    pub fn quic_dropped(&mut self) -> bool {
        let first = self.phase != Phase::QuicDropped;
        self.phase = Phase::QuicDropped;
        first
    }

    /// Stop reading this flow (its address was acted on elsewhere, or it is not wanted).
    pub fn finish(&mut self) {
        self.phase = Phase::Done;
        self.buf = None;
        self.quic = None;
    }

    /// Feed one client-to-server UDP datagram of a QUIC flow: the Initial's server name once
    /// the ClientHello is complete. A datagram that is not a readable QUIC v1 client Initial
    /// (another version, a short header, altered bytes) ends reading for the flow.
    /// `keys`: the worker's cache of Initial key material (deriving it costs more than the
    /// rest of the read).
    pub fn on_quic_datagram(&mut self, payload: &[u8], keys: &mut MaterialCache) -> Step<'static> {
        if self.phase == Phase::Done {
            return Step::Wait;
        }
        let stream = self.quic.get_or_insert_with(Box::default);
        let step = match stream.push_cached(payload, Some(keys)) {
            Ok(Progress::NeedMore) => return Step::Wait,
            Ok(Progress::Done(Some(name))) => Step::Found(Observed::Quic {
                sni: Cow::Owned(name.into_bytes()),
            }),
            Ok(Progress::Done(None)) => Step::GaveUp(GiveUp::NotWeb),
            Err(_) => Step::GaveUp(GiveUp::Malformed),
        };
        self.finish();
        step
    }

    /// Feed one client-to-server segment with payload: its sequence number, its payload and the
    /// server's port. After a `Found`, call [`WebFlow::more`] for requests pipelined behind it.
    pub fn on_client_segment<'p>(
        &mut self,
        seq: u32,
        payload: &'p [u8],
        dst_port: u16,
    ) -> Step<'p> {
        if payload.is_empty() {
            return Step::Wait;
        }
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let new = match self.phase {
            Phase::Done | Phase::QuicDropped => return Step::Wait,
            Phase::Start => {
                self.phase = match classify(payload, dst_port) {
                    Some(p) => p,
                    None => return self.give_up(GiveUp::NotWeb),
                };
                self.next_seq = seq.wrapping_add(len);
                payload
            }
            Phase::Http | Phase::Tls | Phase::DnsTcp => {
                let ahead = seq.wrapping_sub(self.next_seq);
                let new = if ahead == 0 {
                    payload
                } else if i32::from_ne_bytes(ahead.to_ne_bytes()) < 0 {
                    // A retransmission, perhaps with new bytes at its end.
                    let behind = usize::try_from(self.next_seq.wrapping_sub(seq)).unwrap_or(0);
                    match payload.get(behind..) {
                        Some(rest) if !rest.is_empty() => rest,
                        _ => return Step::Wait,
                    }
                } else {
                    return self.give_up(GiveUp::Gap);
                };
                self.next_seq = self
                    .next_seq
                    .wrapping_add(u32::try_from(new.len()).unwrap_or(0));
                new
            }
        };
        self.take(new)
    }

    /// Whether bytes of a next request were received behind the last one found: without them
    /// [`WebFlow::more`] gives `Wait`.
    #[inline]
    pub fn has_more(&self) -> bool {
        self.buf
            .as_ref()
            .is_some_and(|p| p.skip == 0 && !p.bytes.is_empty())
    }

    /// The next request already received behind the last one found (HTTP pipelining, DNS
    /// messages back to back): `Wait` when there is none complete.
    pub fn more(&mut self) -> Step<'static> {
        match self.buf.take() {
            Some(p) if p.skip == 0 && !p.bytes.is_empty() => self.read_pending(p),
            other => {
                self.buf = other;
                Step::Wait
            }
        }
    }

    /// New in-order client bytes.
    fn take<'p>(&mut self, new: &'p [u8]) -> Step<'p> {
        let mut new = new;
        if let Some(pending) = self.buf.as_mut() {
            // Body bytes of the last request pass unread.
            let n = usize::try_from(pending.skip)
                .unwrap_or(usize::MAX)
                .min(new.len());
            pending.skip -= u64::try_from(n).unwrap_or(0);
            new = new.get(n..).unwrap_or_default();
            if new.is_empty() {
                if pending.skip == 0 && pending.bytes.is_empty() {
                    self.buf = None;
                }
                return Step::Wait;
            }
            if !pending.bytes.is_empty() {
                if pending.bytes.len().saturating_add(new.len()) > MAX_COLLECT {
                    return self.give_up(GiveUp::TooLong);
                }
                pending.bytes.extend_from_slice(new);
                return match self.buf.take() {
                    Some(p) => self.read_pending(p),
                    None => Step::Wait,
                };
            }
        }
        // The common case: the head starts this segment; nothing is copied (or allocated)
        // unless it is cut or a body or another head follows it in part.
        match head(self.phase, new) {
            Head::Wait => {
                self.buf
                    .get_or_insert_with(Box::default)
                    .bytes
                    .extend_from_slice(new);
                self.wait_or_cap()
            }
            Head::GaveUp(why) => self.give_up(why),
            Head::Found(obs, used, After::Body(body)) => {
                let rest = new.get(used..).unwrap_or_default();
                let in_rest = usize::try_from(body).unwrap_or(usize::MAX).min(rest.len());
                let skip = body - u64::try_from(in_rest).unwrap_or(0);
                let next = rest.get(in_rest..).unwrap_or_default();
                if skip > 0 || !next.is_empty() {
                    let pending = self.buf.get_or_insert_with(Box::default);
                    pending.skip = skip;
                    pending.bytes.extend_from_slice(next);
                } else {
                    self.buf = None;
                }
                Step::Found(obs)
            }
            Head::Found(obs, _, After::Stop) => {
                self.finish();
                Step::Found(obs)
            }
        }
    }

    /// Read the head at the start of the kept bytes.
    fn read_pending(&mut self, mut pending: Box<Pending>) -> Step<'static> {
        // What is found is copied out of the kept bytes, which are drained or dropped next.
        let found = match head(self.phase, &pending.bytes) {
            Head::Found(obs, used, after) => Head::Found(obs.into_owned(), used, after),
            Head::Wait => Head::Wait,
            Head::GaveUp(why) => Head::GaveUp(why),
        };
        match found {
            Head::Wait => {
                self.keep(pending);
                self.wait_or_cap()
            }
            Head::GaveUp(why) => self.give_up(why),
            Head::Found(obs, used, After::Body(body)) => {
                let rest = pending.bytes.len().saturating_sub(used);
                let in_rest = usize::try_from(body).unwrap_or(usize::MAX).min(rest);
                pending.skip = body - u64::try_from(in_rest).unwrap_or(0);
                let start = used.saturating_add(in_rest).min(pending.bytes.len());
                pending.bytes.drain(..start);
                self.keep(pending);
                Step::Found(obs)
            }
            Head::Found(obs, _, After::Stop) => {
                self.finish();
                Step::Found(obs)
            }
        }
    }

    /// Keep what is pending (nothing kept when nothing is).
    fn keep(&mut self, pending: Box<Pending>) {
        self.buf = (pending.skip > 0 || !pending.bytes.is_empty()).then_some(pending);
    }

    /// An incomplete head: wait for more, unless the cap is reached.
    fn wait_or_cap(&mut self) -> Step<'static> {
        if self.collected() >= MAX_COLLECT {
            return self.give_up(GiveUp::TooLong);
        }
        Step::Wait
    }

    fn collected(&self) -> usize {
        self.buf.as_ref().map_or(0, |b| b.bytes.len())
    }

    fn give_up(&mut self, why: GiveUp) -> Step<'static> {
        self.finish();
        Step::GaveUp(why)
    }
}

/// What a flow's first client bytes are: a TLS handshake record, an HTTP request line (a
/// method token of capitals then a space), or DNS over TCP (server port 53).
fn classify(first: &[u8], dst_port: u16) -> Option<Phase> {
    if dst_port == DNS_PORT {
        return Some(Phase::DnsTcp);
    }
    match first.first()? {
        0x16 => Some(Phase::Tls),
        b'A'..=b'Z' => {
            // A method token (at most 16 capitals, digits or '-') and a space, or the first
            // segment ends inside it.
            let head = first.get(..first.len().min(17)).unwrap_or_default();
            match head.iter().position(|b| *b == b' ') {
                Some(i) if i > 0 => head
                    .get(..i)?
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'-')
                    .then_some(Phase::Http),
                None if head.len() < 17 => head
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'-')
                    .then_some(Phase::Http),
                _ => None,
            }
        }
        _ => None,
    }
}

/// What the bytes at the start of a head gave.
enum Head<'a> {
    /// Incomplete.
    Wait,
    /// Reading ends without an address.
    GaveUp(GiveUp),
    /// The address, the bytes the head took and what follows it.
    Found(Observed<'a>, usize, After),
}

fn head(phase: Phase, data: &[u8]) -> Head<'_> {
    // A later head on a connection starts with a request, or what follows is no request.
    if phase == Phase::Http && classify(data, 0) != Some(Phase::Http) {
        return Head::GaveUp(GiveUp::NotWeb);
    }
    let (step, used, after) = match phase {
        Phase::Http => parse_http(data),
        Phase::Tls => (parse_tls(data), 0, After::Stop),
        Phase::DnsTcp => parse_dns_tcp(data),
        Phase::Start | Phase::Done | Phase::QuicDropped => (Step::Wait, 0, After::Stop),
    };
    match step {
        Step::Wait => Head::Wait,
        Step::GaveUp(why) => Head::GaveUp(why),
        Step::Found(obs) => Head::Found(obs, used, after),
    }
}

/// A request head: what it asks for, the bytes the head took, and what follows it (read by
/// [`head::read_head`], which borrows: only the fields the scan reports are copied).
fn parse_http(data: &[u8]) -> (Step<'_>, usize, After) {
    match head::read_head(data) {
        Ok(Some(h)) => {
            let after = match h.body {
                _ if h.upgrade || h.bad_content_length => After::Stop,
                _ if h.method.eq_ignore_ascii_case(b"CONNECT") => After::Stop,
                http::Body::None => After::Body(0),
                http::Body::Length(n) => After::Body(n),
                http::Body::Chunked => After::Stop,
            };
            let obs = Observed::Http {
                method: Cow::Borrowed(h.method),
                target: Cow::Borrowed(h.target),
                host: h.host.map(Cow::Borrowed),
            };
            (Step::Found(obs), h.len, after)
        }
        Ok(None) => (Step::Wait, 0, After::Stop),
        Err(_) => (Step::GaveUp(GiveUp::Malformed), 0, After::Stop),
    }
}

/// The ClientHello's server name ([`hello::server_name`]: no fingerprints). A hello in one
/// record, the common case, is read where it lies; one spread over records is joined first.
fn parse_tls(data: &[u8]) -> Step<'_> {
    let mut joined: Vec<u8> = Vec::new();
    let mut rest = data;
    loop {
        let (payload, len) = match tls::record(rest) {
            Ok(tls::Record::Complete {
                content_type,
                payload,
                len,
            }) if tls::is_handshake(content_type) => (payload, len),
            Ok(tls::Record::Complete { .. }) | Err(_) => {
                return Step::GaveUp(GiveUp::Malformed);
            }
            Ok(tls::Record::Incomplete) => return Step::Wait,
        };
        let first = rest.len() == data.len();
        rest = rest.get(len..).unwrap_or_default();
        let hs: &[u8] = if first {
            payload
        } else {
            if joined.is_empty() {
                joined.extend_from_slice(first_payload(data));
            }
            joined.extend_from_slice(payload);
            &joined
        };
        let Some((kind, msg_len)) = tls::handshake_len(hs) else {
            continue;
        };
        if kind != tls::CLIENT_HELLO {
            return Step::GaveUp(GiveUp::Malformed);
        }
        if msg_len > MAX_COLLECT {
            return Step::GaveUp(GiveUp::TooLong);
        }
        if hs.len() < msg_len {
            if rest.is_empty() {
                return Step::Wait;
            }
            continue;
        }
        // A hello in the first record is borrowed from the segment; a joined one is copied.
        let name = if first {
            let msg = payload.get(..msg_len).unwrap_or_default();
            hello::server_name(msg).map(|n| n.map(Cow::Borrowed))
        } else {
            let msg = joined.get(..msg_len).unwrap_or_default();
            hello::server_name(msg).map(|n| n.map(|n| Cow::Owned(n.to_vec())))
        };
        return match name {
            Ok(Some(sni)) => Step::Found(Observed::Tls { sni }),
            Ok(None) => Step::GaveUp(GiveUp::NotWeb),
            Err(_) => Step::GaveUp(GiveUp::Malformed),
        };
    }
}

/// The payload of the handshake record at the start of `data` (read already).
fn first_payload(data: &[u8]) -> &[u8] {
    match tls::record(data) {
        Ok(tls::Record::Complete { payload, .. }) => payload,
        _ => &[],
    }
}

/// A DNS message over TCP (two-byte length, then the message); the next one follows it.
fn parse_dns_tcp(data: &[u8]) -> (Step<'_>, usize, After) {
    let Some((len, msg)) = data.split_first_chunk::<2>() else {
        return (Step::Wait, 0, After::Stop);
    };
    let len = usize::from(u16::from_be_bytes(*len));
    if len == 0 {
        return (Step::GaveUp(GiveUp::Malformed), 0, After::Stop);
    }
    let Some(msg) = msg.get(..len) else {
        return (Step::Wait, 0, After::Stop);
    };
    let step = match dns_query(msg) {
        Ok(Some(q)) => Step::Found(Observed::Dns {
            message: Cow::Borrowed(data.get(..len + 2).unwrap_or_default()),
            tcp: true,
            questions: q.len(),
        }),
        Ok(None) => Step::GaveUp(GiveUp::NotWeb),
        Err(_) => Step::GaveUp(GiveUp::Malformed),
    };
    (step, len + 2, After::Body(0))
}

/// The questions of a DNS query message (`Ok(None)` for a response or a message without
/// questions; `Err` when malformed): [`question::questions`], which reads them where they lie.
pub fn dns_query(msg: &[u8]) -> Result<Option<question::Questions<'_>>, DnsError> {
    question::questions(msg)
}

/// Whether a UDP payload is a QUIC version 1 Initial packet (RFC 9000 section 17.2.2: long
/// header, fixed bit, type 0, version 1).
pub fn is_quic_v1_initial(payload: &[u8]) -> bool {
    matches!(payload, [first, 0, 0, 0, 1, ..] if first & 0xf0 == 0xc0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed<'p>(f: &mut WebFlow, parts: &[&'p [u8]], port: u16) -> Step<'p> {
        let mut seq = 1000u32;
        let mut last = Step::Wait;
        for p in parts {
            last = f.on_client_segment(seq, p, port);
            seq = seq.wrapping_add(u32::try_from(p.len()).unwrap());
        }
        last
    }

    #[test]
    fn http_head_in_one_and_in_three_segments() {
        let req =
            b"GET /a/B%41d.exe?x=1 HTTP/1.1\r\nHost: Evil.Example:8080\r\nUser-Agent: t\r\n\r\n";
        let want = Step::Found(Observed::Http {
            method: b"GET"[..].into(),
            target: b"/a/B%41d.exe?x=1"[..].into(),
            host: Some(b"Evil.Example:8080"[..].into()),
        });
        let mut f = WebFlow::default();
        assert_eq!(feed(&mut f, &[req], 80), want);
        assert!(!f.done(), "HTTP reads on");
        let mut f = WebFlow::default();
        assert_eq!(
            feed(&mut f, &[&req[..2], &req[2..30], &req[30..]], 80),
            want
        );
        assert!(!f.done(), "a kept-alive connection carries more requests");
    }

    fn http<'a>(method: &'a [u8], target: &'a [u8], host: &'a [u8]) -> Step<'a> {
        Step::Found(Observed::Http {
            method: method.into(),
            target: target.into(),
            host: Some(host.into()),
        })
    }

    #[test]
    fn later_requests_on_a_connection_are_read_past_their_bodies() {
        let mut f = WebFlow::default();
        let post = b"POST /up HTTP/1.1\r\nHost: a.example\r\nContent-Length: 12\r\n\r\nGET /x HTTP";
        assert_eq!(
            f.on_client_segment(1, post, 80),
            http(b"POST", b"/up", b"a.example")
        );
        assert_eq!(f.more(), Step::Wait, "the body is not a request");
        // The body's last 2 bytes, then a head cut in two, then two pipelined heads.
        let mut seq = 1 + u32::try_from(post.len()).unwrap();
        for (part, want) in [
            (&b"/"[..], Step::Wait),
            (b"GET /y HTTP/1.1\r\nHost: b.example\r\n", Step::Wait),
            (b"\r\n", http(b"GET", b"/y", b"b.example")),
            (
                b"GET /1 HTTP/1.1\r\nHost: c.example\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: d.example\r\n\r\n",
                http(b"GET", b"/1", b"c.example"),
            ),
        ] {
            assert_eq!(f.on_client_segment(seq, part, 80), want);
            seq += u32::try_from(part.len()).unwrap();
        }
        assert_eq!(f.more(), http(b"HEAD", b"/2", b"d.example"));
        assert_eq!(f.more(), Step::Wait);
        // A body over several segments passes unread, whatever it holds.
        let head = b"PUT /p HTTP/1.1\r\nHost: e.example\r\nContent-Length: 30\r\n\r\n";
        assert_eq!(
            f.on_client_segment(seq, head, 80),
            http(b"PUT", b"/p", b"e.example")
        );
        seq += u32::try_from(head.len()).unwrap();
        let body = b"GET /no HTTP/1.1\r\nHost: zz\r\n\r\n";
        assert_eq!(body.len(), 30);
        assert_eq!(f.on_client_segment(seq, &body[..12], 80), Step::Wait);
        assert_eq!(f.on_client_segment(seq + 12, &body[12..], 80), Step::Wait);
        seq += 30;
        // What follows a chunked body cannot be framed: reading ends.
        let chunked = b"POST /c HTTP/1.1\r\nHost: f.example\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            f.on_client_segment(seq, chunked, 80),
            http(b"POST", b"/c", b"f.example")
        );
        assert!(f.done());
        // Bytes where a head should start that are no request end reading, uncounted.
        let mut f = WebFlow::default();
        assert!(matches!(
            feed(&mut f, &[b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\x00\x01"], 80),
            Step::Found(_)
        ));
        assert_eq!(f.more(), Step::GaveUp(GiveUp::NotWeb));
        assert!(f.done());
        // An upgraded connection carries no more requests.
        let mut f = WebFlow::default();
        let ws = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n";
        assert!(matches!(feed(&mut f, &[ws], 80), Step::Found(_)));
        assert!(f.done());
    }

    #[test]
    fn absolute_form_and_connect_keep_their_targets() {
        let mut f = WebFlow::default();
        let s = feed(
            &mut f,
            &[b"CONNECT bad.example:443 HTTP/1.1\r\nHost: bad.example:443\r\n\r\n"],
            3128,
        );
        assert!(
            matches!(s, Step::Found(Observed::Http { ref method, ref target, .. })
            if **method == b"CONNECT"[..] && **target == b"bad.example:443"[..])
        );
        let mut f = WebFlow::default();
        let s = feed(
            &mut f,
            &[b"GET http://bad.example/x HTTP/1.1\r\nHost: other.example\r\n\r\n"],
            3128,
        );
        assert!(
            matches!(s, Step::Found(Observed::Http { ref target, ref host, .. })
            if **target == b"http://bad.example/x"[..] && host.as_deref() == Some(&b"bad.example"[..]))
        );
    }

    /// `payload` wrapped in handshake records of at most `max` bytes each (the rule engine's
    /// own helper is test-only code of another crate).
    fn records(payload: &[u8], max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in payload.chunks(max) {
            out.extend_from_slice(&[0x16, 0x03, 0x01]);
            out.extend_from_slice(&u16::try_from(chunk.len()).unwrap().to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn tls_client_hello_over_records_and_segments() {
        // testgen's hello is one record: its handshake message, cut into records of 20 bytes.
        let one = testgen::web::client_hello("Bad.Example");
        let rec = records(&one[5..], 20);
        let mut f = WebFlow::default();
        let parts: Vec<&[u8]> = rec.chunks(7).collect();
        assert_eq!(
            feed(&mut f, &parts, 443),
            Step::Found(Observed::Tls {
                sni: b"Bad.Example"[..].into()
            })
        );
    }

    #[test]
    fn gaps_garbage_and_caps_end_the_flow() {
        let mut f = WebFlow::default();
        assert_eq!(
            f.on_client_segment(1, b"GET / HTTP/1.1\r\n", 80),
            Step::Wait
        );
        assert_eq!(
            f.on_client_segment(100, b"Host: x\r\n\r\n", 80),
            Step::GaveUp(GiveUp::Gap)
        );
        assert!(f.done());
        let mut f = WebFlow::default();
        assert_eq!(
            f.on_client_segment(1, b"\x00\x01binary", 80),
            Step::GaveUp(GiveUp::NotWeb)
        );
        let mut f = WebFlow::default();
        let big = vec![b'a'; 1000];
        let mut seq = 1;
        assert_eq!(f.on_client_segment(seq, b"GET /", 80), Step::Wait);
        seq += 5;
        let mut last = Step::Wait;
        for _ in 0..20 {
            last = f.on_client_segment(seq, &big, 80);
            seq += 1000;
            if last != Step::Wait {
                break;
            }
        }
        assert_eq!(last, Step::GaveUp(GiveUp::TooLong));
        // A retransmission of what was read is ignored.
        let mut f = WebFlow::default();
        assert_eq!(
            f.on_client_segment(1, b"GET / HTTP/1.1\r\n", 80),
            Step::Wait
        );
        assert_eq!(
            f.on_client_segment(1, b"GET / HTTP/1.1\r\n", 80),
            Step::Wait
        );
        assert!(matches!(
            f.on_client_segment(17, b"Host: a.example\r\n\r\n", 80),
            Step::Found(_)
        ));
    }

    #[test]
    fn dns_over_tcp_and_udp() {
        let q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03bad\x07example\x00\x00\x01\x00\x01";
        let mut framed = u16::try_from(q.len()).unwrap().to_be_bytes().to_vec();
        framed.extend_from_slice(q);
        let names = |q: question::Questions<'_>| {
            let mut n = q.names();
            let mut out = Vec::new();
            while let Some(name) = n.next_name() {
                out.push(name.to_vec());
            }
            out
        };
        let mut f = WebFlow::default();
        let step = feed(&mut f, &[&framed[..5], &framed[5..]], 53);
        assert_eq!(
            step,
            Step::Found(Observed::Dns {
                message: framed.clone().into(),
                tcp: true,
                questions: 1,
            })
        );
        let Step::Found(obs) = step else {
            unreachable!()
        };
        assert_eq!(
            obs.dns_questions().map(names),
            Some(vec![b"bad.example".to_vec()])
        );
        // A second query on the connection (A then AAAA, as resolvers send them), and a third
        // right behind it in the same segment.
        let mut two = framed.clone();
        two.extend_from_slice(&framed);
        assert!(matches!(
            f.on_client_segment(1000 + u32::try_from(framed.len()).unwrap(), &two, 53),
            Step::Found(Observed::Dns { .. })
        ));
        assert!(
            matches!(f.more(), Step::Found(Observed::Dns { ref message, .. }) if *message == framed)
        );
        assert_eq!(f.more(), Step::Wait);
        assert_eq!(
            dns_query(q).map(|q| q.map(names)),
            Ok(Some(vec![b"bad.example".to_vec()]))
        );
        let udp = Observed::Dns {
            message: q[..].into(),
            tcp: false,
            questions: 1,
        };
        assert_eq!(
            udp.dns_questions().map(names),
            Some(vec![b"bad.example".to_vec()])
        );
        let mut resp = q.to_vec();
        resp[2] |= 0x80;
        assert!(matches!(dns_query(&resp), Ok(None)));
    }

    #[test]
    fn quic_initial_recognised() {
        assert!(is_quic_v1_initial(&[0xc3, 0, 0, 0, 1, 8]));
        assert!(!is_quic_v1_initial(&[0xe3, 0, 0, 0, 1, 8]), "handshake");
        assert!(!is_quic_v1_initial(&[0xc3, 0xff, 0, 0, 0x1d]), "draft");
        assert!(!is_quic_v1_initial(&[0x43, 0, 0, 0, 1]), "short header");
    }

    proptest! {
        /// Any bytes, cut anywhere: reading never panics, collects at most the cap, a flow that
        /// gave up stays done, and only HTTP and DNS flows read on past an address.
        #[test]
        fn any_client_bytes(data in proptest::collection::vec(any::<u8>(), 0..3000),
                            cuts in proptest::collection::vec(1usize..400, 1..12),
                            port in prop_oneof![Just(53u16), Just(80), Just(443)]) {
            let mut f = WebFlow::default();
            let mut seq = 7u32;
            let mut rest = &data[..];
            for c in cuts {
                let (a, b) = rest.split_at(c.min(rest.len()));
                let mut s = f.on_client_segment(seq, a, port);
                seq = seq.wrapping_add(u32::try_from(a.len()).unwrap());
                loop {
                    prop_assert!(f.collected() <= MAX_COLLECT);
                    match &s {
                        Step::Wait => break,
                        Step::GaveUp(_) | Step::Found(Observed::Tls { .. }) => {
                            prop_assert!(f.done());
                            break;
                        }
                        Step::Found(_) => s = f.more(),
                    }
                }
                rest = b;
            }
        }

        /// A request head cut into segments anywhere reads as it does whole.
        #[test]
        fn cuts_do_not_change_the_request(cut in 1usize..60) {
            let req = b"GET /x/y?z HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n";
            let mut whole = WebFlow::default();
            let want = whole.on_client_segment(1, req, 80);
            let cut = cut.min(req.len() - 1);
            let mut f = WebFlow::default();
            let _ = f.on_client_segment(1, &req[..cut], 80);
            let got = f.on_client_segment(1 + u32::try_from(cut).unwrap(), &req[cut..], 80);
            prop_assert_eq!(got, want);
        }
    }
}
