//! App layer: protocol detection and the buffers rules inspect, decoded once per transaction.
//!
//! - HTTP/1.x requests (client-to-server stream; request line by hand, headers by `httparse`):
//!   method, raw and normalized URI, protocol, host, user agent, header block, cookie,
//!   Connection, request body. Pipelined requests are separate transactions. A transaction
//!   exists from its request line on and progresses (head, body) as libhtp's do: the request-line
//!   buffers are there once the line is complete, the header buffers once the head is, the body
//!   once it ended or [`HTTP_BODY_MIN_INSPECT`] bytes of it arrived.
//! - HTTP/1.x responses (server-to-client stream, `httparse`), matched to requests in order:
//!   status line, code, message, headers, Server, Location, Set-Cookie, and the body de-chunked
//!   and gzip/deflate-decoded (`flate2`) within [`http::response::RESPONSE_BODY_LIMIT`].
//! - TLS handshake (`tls-parser`), across records and segments: the ClientHello's SNI, JA3 and
//!   JA4; the ServerHello's JA3S; the server's certificate chain (`x509-parser`): subject,
//!   issuer, serial, SHA-1 fingerprint and each certificate's DER. One transaction per flow,
//!   created by the ClientHello and progressed by the server's messages.
//! - DNS queries (UDP payloads, or TCP with the 2-byte length prefix): the question names.
//!
//! Each engine has `parser.rs` (pure functions over byte slices) and `state.rs` (per-flow state,
//! caps, resync). [`AppState`] is the per-flow object the flow table owns.
//!
//! # Feeding
//! TCP: after [`crate::stream::TcpStream::insert`], call [`AppState::on_stream`] for each
//! direction with new in-order data; it remembers how far it has read each direction and notices
//! gaps (the stream restarted past what it had read). UDP: [`AppState::on_udp`] per datagram.
//! Both return an [`AppUpdate`] naming the transactions the call created or progressed; their
//! buffers are available at once ([`AppState::tx`]), so rules fire on the packet that makes a
//! buffer available, as in Suricata. A transaction may be reported by several feeds (request
//! line, then head, then body): the caller inspects each rule at most once per transaction.
//!
//! # Caps and anomalies
//! Every buffer traffic can grow has a cap ([`http::state::MAX_HEADER_BYTES`],
//! [`tls::state::MAX_HANDSHAKE_BYTES`], [`dns::parser::MAX_QUESTIONS`], [`MAX_TXS`] ...). Hitting
//! a cap or meeting a malformed message raises an [`AppEvent`] (counted by the caller, one counter
//! per variant). Unrecoverable events stop parsing that direction of the flow (fail open: the raw
//! stream is still inspected); recoverable ones are flagged and parsing goes on.

pub mod dns;
pub mod http;
pub mod quic;
pub mod tls;

use std::collections::VecDeque;

use crate::stream::StreamDirection;
use http::state::HttpOut;

/// Transactions kept per flow. Pipelining can complete many requests in one packet; the caller
/// inspects the new ones right after each feed, so only a short history is needed. Older
/// transactions are dropped first (counted as [`AppEvent::TxCapReached`]).
pub const MAX_TXS: usize = 32;

/// Bytes of a TCP stream looked at before giving up on detection.
pub const DETECT_MAX_BYTES: usize = 16;

/// Request body bytes collected before the body is offered to rules while it is still arriving
/// (Suricata's `request-body-minimal-inspect-size` default, 32 KiB); a body that ended is
/// offered whatever its size.
pub const HTTP_BODY_MIN_INSPECT: usize = 32 << 10;

/// Response body bytes collected before the body is offered to rules while it is still arriving
/// (Suricata's `response-body-minimal-inspect-size` default, 40 KiB).
pub const HTTP_RESPONSE_BODY_MIN_INSPECT: usize = 40 << 10;

/// DNS's well-known port.
pub const DNS_PORT: u16 = 53;

/// The ports of one app-layer detection setting (Suricata's
/// `app-layer.protocols.PROTO.detection-ports.dp`): at most [`PortRanges::CAP`] ports or ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRanges {
    list: [(u16, u16); PortRanges::CAP],
    len: u8,
}

impl PortRanges {
    /// Entries a setting may list (Suricata's defaults name one port).
    pub const CAP: usize = 8;

    /// One port.
    pub const fn one(port: u16) -> Self {
        PortRanges {
            list: [(port, port); PortRanges::CAP],
            len: 1,
        }
    }

    /// Whether `port` is listed.
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        self.list
            .get(..usize::from(self.len))
            .unwrap_or_default()
            .iter()
            .any(|&(lo, hi)| lo <= port && port <= hi)
    }

    /// Suricata's port syntax without negation: `53`, `[53, 1053]`, `1024:65535`, `1024:`
    /// (to 65535), `any`, and lists of those.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let t = t
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(t);
        let mut out = PortRanges {
            list: [(0, 0); PortRanges::CAP],
            len: 0,
        };
        for p in t.split(',') {
            let p = p.trim();
            let range = if p.eq_ignore_ascii_case("any") {
                (0, u16::MAX)
            } else if let Some((a, b)) = p.split_once(':') {
                let lo: u16 = a.trim().parse().ok()?;
                let hi: u16 = match b.trim() {
                    "" => u16::MAX,
                    b => b.parse().ok()?,
                };
                (lo <= hi).then_some((lo, hi))?
            } else {
                let n: u16 = p.parse().ok()?;
                (n, n)
            };
            let slot = out.list.get_mut(usize::from(out.len))?;
            *slot = range;
            out.len += 1;
        }
        (out.len > 0).then_some(out)
    }
}

/// The ports app-layer detection reads by port (Suricata's `detection-ports`): DNS is
/// recognised on these (the client's or the server's port), over TCP when the client's first
/// bytes are neither HTTP nor TLS, over UDP always. Default: 53 for both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectionPorts {
    /// `app-layer.protocols.dns.tcp.detection-ports.dp`.
    pub dns_tcp: PortRanges,
    /// `app-layer.protocols.dns.udp.detection-ports.dp`.
    pub dns_udp: PortRanges,
}

impl Default for DetectionPorts {
    fn default() -> Self {
        DetectionPorts {
            dns_tcp: PortRanges::one(DNS_PORT),
            dns_udp: PortRanges::one(DNS_PORT),
        }
    }
}

/// The app-layer protocol of a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AppProto {
    /// HTTP/1.x.
    Http,
    /// HTTP/2, after an HTTP/1.1 upgrade (`101 Switching Protocols` to `h2c`); its frames are
    /// not parsed.
    Http2,
    /// TLS.
    Tls,
    /// DNS.
    Dns,
    /// Not (yet) recognised.
    #[default]
    Unknown,
}

impl AppProto {
    /// Name as in EVE `app_proto`.
    pub const fn name(self) -> &'static str {
        match self {
            AppProto::Http => "http",
            AppProto::Http2 => "http2",
            AppProto::Tls => "tls",
            AppProto::Dns => "dns",
            AppProto::Unknown => "failed",
        }
    }
}

/// App-layer anomalies. Each variant is a named counter (`app_layer.<name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppEvent {
    /// HTTP request line or headers unparseable (unrecoverable for the flow's requests).
    HttpMalformedRequest,
    /// HTTP request headers longer than the cap (unrecoverable).
    HttpHeaderTooLong,
    /// More headers than the parser's cap (unrecoverable).
    HttpTooManyHeaders,
    /// Chunked body with a bad chunk size (unrecoverable).
    HttpBadChunk,
    /// Content-Length unparseable or present twice with different values (recoverable: body
    /// taken as empty).
    HttpBadContentLength,
    /// TLS record malformed or oversize (unrecoverable).
    TlsMalformedRecord,
    /// TLS handshake message unparseable (unrecoverable).
    TlsMalformedHandshake,
    /// Handshake bytes beyond the cap before the ClientHello completed (unrecoverable).
    TlsHandshakeTooLong,
    /// DNS message malformed (that message is skipped; recoverable).
    DnsMalformed,
    /// More questions than the cap (recoverable: the first ones are kept).
    DnsTooManyQuestions,
    /// A compression pointer chain longer than the cap: a loop (that message is skipped).
    DnsPointerLoop,
    /// A name longer than Suricata's 1025 bytes (cut, the message kept) or with more than 255
    /// labels and no pointer (that message is skipped).
    DnsNameTooLong,
    /// DNS over TCP length prefix with a zero length or framing lost (unrecoverable).
    DnsBadTcpFraming,
    /// HTTP response status line or headers unparseable (recoverable: the parser looks for the
    /// next status line).
    HttpMalformedResponse,
    /// A gzip or deflate response body does not decode (recoverable: what decoded is kept).
    HttpBadEncoding,
    /// The stream had a gap; the parser of that direction resynchronised or stopped.
    StreamGap,
    /// Transactions dropped because more than [`MAX_TXS`] were kept.
    TxCapReached,
}

impl AppEvent {
    /// Every variant, for counters and docs.
    pub const ALL: [AppEvent; 17] = [
        AppEvent::HttpMalformedRequest,
        AppEvent::HttpHeaderTooLong,
        AppEvent::HttpTooManyHeaders,
        AppEvent::HttpBadChunk,
        AppEvent::HttpBadContentLength,
        AppEvent::TlsMalformedRecord,
        AppEvent::TlsMalformedHandshake,
        AppEvent::TlsHandshakeTooLong,
        AppEvent::DnsMalformed,
        AppEvent::DnsTooManyQuestions,
        AppEvent::DnsPointerLoop,
        AppEvent::DnsNameTooLong,
        AppEvent::DnsBadTcpFraming,
        AppEvent::HttpMalformedResponse,
        AppEvent::HttpBadEncoding,
        AppEvent::StreamGap,
        AppEvent::TxCapReached,
    ];

    /// Stable snake_case counter name.
    pub const fn name(self) -> &'static str {
        match self {
            AppEvent::HttpMalformedRequest => "http_malformed_request",
            AppEvent::HttpHeaderTooLong => "http_header_too_long",
            AppEvent::HttpTooManyHeaders => "http_too_many_headers",
            AppEvent::HttpBadChunk => "http_bad_chunk",
            AppEvent::HttpBadContentLength => "http_bad_content_length",
            AppEvent::TlsMalformedRecord => "tls_malformed_record",
            AppEvent::TlsMalformedHandshake => "tls_malformed_handshake",
            AppEvent::TlsHandshakeTooLong => "tls_handshake_too_long",
            AppEvent::DnsMalformed => "dns_malformed",
            AppEvent::DnsTooManyQuestions => "dns_too_many_questions",
            AppEvent::DnsPointerLoop => "dns_pointer_loop",
            AppEvent::DnsNameTooLong => "dns_name_too_long",
            AppEvent::DnsBadTcpFraming => "dns_bad_tcp_framing",
            AppEvent::HttpMalformedResponse => "http_malformed_response",
            AppEvent::HttpBadEncoding => "http_bad_encoding",
            AppEvent::StreamGap => "stream_gap",
            AppEvent::TxCapReached => "tx_cap_reached",
        }
    }

    /// Index into a counter array of length `ALL.len()`.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Anomalies raised by one feed (a few at most; they are also counted in [`AppState::events`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppEvents(Vec<AppEvent>);

impl AppEvents {
    /// Record one.
    pub fn push(&mut self, e: AppEvent) {
        // One feed raises at most one of each kind: keeps the list tiny whatever the input.
        if !self.0.contains(&e) {
            self.0.push(e);
        }
    }

    /// The events.
    pub fn iter(&self) -> impl Iterator<Item = AppEvent> + '_ {
        self.0.iter().copied()
    }

    /// Whether none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What one feed produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppUpdate {
    /// Id of the first transaction created or progressed by this feed (ids increase by one per
    /// transaction).
    pub first_tx: u64,
    /// Transactions created or progressed by this feed: ids `first_tx .. first_tx + new_txs`.
    pub new_txs: u64,
    /// Anomalies raised.
    pub events: AppEvents,
    /// Protocol detection found this feed's direction to be the other one (a server's response
    /// where the flow's client was thought to be, or a client's request the other way): the
    /// app layer now counts the data as the other direction's, and the caller swaps its own
    /// per-direction state and the flow's (Suricata's `FLOW_DIR_REVERSED`). Only a flow picked
    /// up midstream is reversed ([`AppState::set_reversible`]).
    pub reversed: bool,
}

impl AppUpdate {
    /// Ids of the transactions created or progressed by this feed.
    pub fn tx_ids(&self) -> core::ops::Range<u64> {
        self.first_tx..self.first_tx.saturating_add(self.new_txs)
    }
}

/// One transaction's decoded content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxData {
    /// An HTTP request.
    Http(Box<http::parser::Request>),
    /// A TLS handshake (client and server side).
    Tls(Box<tls::state::TlsTx>),
    /// A DNS message (query or response).
    Dns(dns::parser::Message),
}

/// The detection buffers of one transaction, as rules see them: its protocol's buffers
/// (`app/<proto>/buffers.rs`), each borrowing the transaction's decoded content.
#[derive(Clone, Copy, Debug)]
pub enum AppBuffers<'a> {
    /// An HTTP transaction (request and response).
    Http(http::buffers::HttpBuffers<'a>),
    /// A TLS handshake.
    Tls(tls::buffers::TlsBuffers<'a>),
    /// A DNS message.
    Dns(dns::buffers::DnsBuffers<'a>),
}

/// The transaction of a response whose request was not seen: no request line, no head (an
/// empty method, which a parsed request never has: [`http::buffers::request_seen`]).
fn request_not_seen(resp: Box<http::response::Response>) -> http::parser::Request {
    http::parser::Request {
        method: Vec::new(),
        uri_raw: Vec::new(),
        uri: Vec::new(),
        protocol: Vec::new(),
        host: None,
        host_raw: None,
        user_agent: None,
        header: Vec::new(),
        cookie: None,
        connection: None,
        headers_done: true,
        has_body: false,
        body: Vec::new(),
        body_done: true,
        response: Some(resp),
        line: Vec::new(),
        fields: http::parser::HeadFields::default(),
        frame: Vec::new(),
    }
}

impl<'a> AppBuffers<'a> {
    /// The buffers of one transaction.
    pub fn of(tx: &'a TxData) -> Self {
        match tx {
            TxData::Http(r) => AppBuffers::Http(http::buffers::HttpBuffers::new(r)),
            TxData::Tls(t) => AppBuffers::Tls(tls::buffers::TlsBuffers::new(t)),
            TxData::Dns(m) => AppBuffers::Dns(dns::buffers::DnsBuffers::new(m)),
        }
    }

    /// Protocol of the transaction.
    pub fn proto(&self) -> AppProto {
        match self {
            AppBuffers::Http(_) => AppProto::Http,
            AppBuffers::Tls(_) => AppProto::Tls,
            AppBuffers::Dns(_) => AppProto::Dns,
        }
    }

    /// Instance `n` of buffer `kind` of the side of a packet going towards the server
    /// (`to_server`) or the client; `None`: absent in this transaction. The caller checks
    /// that `kind` belongs to that side ([`crate::rules::BufferKind::side`]).
    pub fn get_nth(
        &self,
        kind: crate::rules::BufferKind,
        n: usize,
        to_server: bool,
    ) -> Option<&'a [u8]> {
        match self {
            AppBuffers::Http(h) => h.get_nth(kind, n, to_server),
            AppBuffers::Tls(t) => t.get_nth(kind, n, to_server),
            AppBuffers::Dns(d) => d.get_nth(kind, n, to_server),
        }
    }

    /// The first instance of buffer `kind` ([`Self::get_nth`]).
    pub fn get(&self, kind: crate::rules::BufferKind, to_server: bool) -> Option<&'a [u8]> {
        self.get_nth(kind, 0, to_server)
    }
}

#[derive(Debug)]
enum Parser {
    /// Not decided yet.
    Detecting,
    Http(http::state::HttpState, http::response::ResponseState),
    Tls(tls::state::TlsState),
    Dns(dns::state::DnsState),
    /// After a `101 Switching Protocols` to `h2c`: the first bytes of each side (at most
    /// [`H2C_PREFACE`]'s length), until one of them shows HTTP/2 ([`looks_like_http2`]).
    H2cUpgrade([Vec<u8>; 2]),
    /// Decided: nothing we parse.
    None,
}

/// The client's HTTP/2 connection preface (RFC 9113 section 3.4).
pub const H2C_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// HTTP/2's default SETTINGS_MAX_FRAME_SIZE (RFC 9113 section 6.5.2): a first frame larger is
/// not HTTP/2's.
const H2_MAX_FRAME: u32 = 16_384;

/// Whether the first bytes of one side of a connection are HTTP/2's (`None`: too few to tell):
/// the client's connection preface, or the server's first frame, a SETTINGS frame (type 4,
/// flags ACK or none, stream 0 with the reserved bit clear, at most [`H2_MAX_FRAME`] bytes), as
/// Suricata's HTTP/2 detection reads them.
pub fn looks_like_http2(to_server: bool, data: &[u8]) -> Option<bool> {
    if to_server {
        let n = data.len().min(H2C_PREFACE.len());
        return match (data.get(..n), H2C_PREFACE.get(..n)) {
            (Some(a), Some(b)) if a != b => Some(false),
            _ if n == H2C_PREFACE.len() => Some(true),
            _ => None,
        };
    }
    match data.get(..9) {
        Some([l0, l1, l2, ftype, flags, s0, s1, s2, s3]) => {
            let len = u32::from_be_bytes([0, *l0, *l1, *l2]);
            let stream = u32::from_be_bytes([*s0, *s1, *s2, *s3]);
            Some(*ftype == 4 && flags & 0xfe == 0 && stream == 0 && len <= H2_MAX_FRAME)
        }
        _ => None,
    }
}

/// Per-flow app-layer state (owned by the flow table next to the [`crate::stream::TcpStream`]).
#[derive(Debug)]
pub struct AppState {
    proto: AppProto,
    /// The protocol before a protocol change (an HTTP/1.1 upgrade to HTTP/2), EVE's
    /// `app_proto_orig`; `Unknown` while the protocol never changed.
    proto_orig: AppProto,
    parser: Parser,
    /// How far each direction has been read (absolute stream offsets): `[to_server, to_client]`.
    cursor: [u64; 2],
    txs: VecDeque<(u64, TxData)>,
    next_tx: u64,
    events: [u64; AppEvent::ALL.len()],
    /// Server bytes went by unread while the protocol was being detected.
    server_unread: bool,
    /// The flow was picked up midstream (`stream.midstream`): detection may find the flow's
    /// direction the wrong way round and reverse it ([`AppUpdate::reversed`]).
    reversible: bool,
}

impl Default for AppState {
    fn default() -> Self {
        AppState::new()
    }
}

/// Whether `data` starts like an HTTP/1.x request: a known method token and a space.
pub fn looks_like_http_request(data: &[u8]) -> Option<bool> {
    const METHODS: [&[u8]; 14] = [
        b"GET ",
        b"POST ",
        b"HEAD ",
        b"PUT ",
        b"DELETE ",
        b"OPTIONS ",
        b"CONNECT ",
        b"TRACE ",
        b"PATCH ",
        b"PROPFIND ",
        b"PROPPATCH ",
        b"MKCOL ",
        b"COPY ",
        b"MOVE ",
    ];
    let mut undecided = false;
    for m in METHODS {
        let n = m.len().min(data.len());
        if data.get(..n) == m.get(..n) {
            if n == m.len() {
                return Some(true);
            }
            undecided = true;
        }
    }
    if undecided { None } else { Some(false) }
}

/// Whether `data` starts like an HTTP/1.x response: `HTTP/0.9`, `HTTP/1.0` or `HTTP/1.1`, any
/// case (Suricata's to-client detection patterns for HTTP). `None`: too short to tell.
pub fn looks_like_http_response(data: &[u8]) -> Option<bool> {
    const VERSIONS: [&[u8]; 3] = [b"HTTP/0.9", b"HTTP/1.0", b"HTTP/1.1"];
    let n = data.len().min(8);
    let head = data.get(..n).unwrap_or_default();
    let prefix_of = |v: &[u8]| v.get(..n).is_some_and(|p| p.eq_ignore_ascii_case(head));
    match VERSIONS.iter().any(|v| prefix_of(v)) {
        false => Some(false),
        true if n == 8 => Some(true),
        true => None,
    }
}

/// Whether `data` starts like a TLS handshake record (type 22, version 3.x with x <= 4), or
/// like a ClientHello in the SSL 2.0 record format that old clients send to reach SSL 3.0/TLS
/// servers ([`tls::parser::sslv2_client_hello`] reads it).
pub fn looks_like_tls(data: &[u8]) -> Option<bool> {
    match data {
        [] => None,
        [0x16] | [0x16, 0x03] => None,
        [0x16, 0x03, minor, ..] => Some(*minor <= 4),
        [h, ..] if h & 0x80 != 0 => looks_like_sslv2_hello(data),
        _ => Some(false),
    }
}

/// An SSL 2.0 record with a 2-byte header (high bit set), message type 1 (CLIENT-HELLO) and
/// version 2.0 or 3.0-3.3 (RFC 6101 appendix E.1, RFC 5246 appendix E.2).
fn looks_like_sslv2_hello(data: &[u8]) -> Option<bool> {
    match data.get(2..5) {
        Some([1, 0, 2] | [1, 3, 0..=3]) => Some(true),
        Some(_) => Some(false),
        None => {
            let seen = data.get(2..).unwrap_or_default();
            let whole: [&[u8]; 5] = [&[1, 0, 2], &[1, 3, 0], &[1, 3, 1], &[1, 3, 2], &[1, 3, 3]];
            Some(false).filter(|_| !whole.iter().any(|w| w.starts_with(seen)))
        }
    }
}

impl AppState {
    /// Nothing seen yet.
    pub fn new() -> Self {
        AppState {
            proto: AppProto::Unknown,
            proto_orig: AppProto::Unknown,
            parser: Parser::Detecting,
            cursor: [0; 2],
            txs: VecDeque::new(),
            next_tx: 0,
            events: [0; AppEvent::ALL.len()],
            server_unread: false,
            reversible: false,
        }
    }

    /// Whether the flow was picked up midstream with `stream.midstream` on: as Suricata's
    /// protocol detection does for such a flow, the first bytes of either direction are also
    /// matched against the other direction's patterns (an HTTP response where the client's
    /// request was expected, a request the other way), and a match reverses the flow
    /// ([`AppUpdate::reversed`]). A flow whose handshake was seen is never reversed.
    pub fn set_reversible(&mut self, on: bool) {
        self.reversible = on;
    }

    /// Whether the flow turned to encrypted TLS application data (see
    /// [`tls::state::TlsState::is_encrypted`]): Suricata's default `encryption-handling` stops
    /// inspecting the payload and raw stream of such a flow; app-layer buffers (`tls.sni`) and
    /// rules without payload keywords still run.
    pub fn is_encrypted(&self) -> bool {
        matches!(&self.parser, Parser::Tls(t) if t.is_encrypted())
    }

    /// The detected protocol.
    pub fn proto(&self) -> AppProto {
        self.proto
    }

    /// The protocol the flow had before it changed protocol (EVE `app_proto_orig`): `http`
    /// for a flow upgraded to HTTP/2. `None` when it never changed (or the change is still
    /// waiting for the new protocol's first bytes).
    pub fn proto_orig(&self) -> Option<AppProto> {
        (self.proto_orig != AppProto::Unknown && self.proto_orig != self.proto)
            .then_some(self.proto_orig)
    }

    /// Count of each [`AppEvent`] raised on this flow, indexed by [`AppEvent::index`].
    pub fn events(&self) -> &[u64; AppEvent::ALL.len()] {
        &self.events
    }

    /// A kept transaction's buffers.
    pub fn tx(&self, id: u64) -> Option<AppBuffers<'_>> {
        self.txs
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, t)| AppBuffers::of(t))
    }

    /// The latest transaction's buffers, if there is one.
    pub fn buffers(&self) -> Option<AppBuffers<'_>> {
        self.txs.back().map(|(_, t)| AppBuffers::of(t))
    }

    /// Feed the new in-order data of one direction of a TCP flow. `ports` are the packet's
    /// (source, destination) ports, used for DNS detection only.
    pub fn on_stream(
        &mut self,
        to_server: bool,
        dir: &StreamDirection,
        ports: (u16, u16),
    ) -> AppUpdate {
        self.on_stream_until(to_server, dir, ports, u64::MAX, &DetectionPorts::default())
    }

    /// [`Self::on_stream`] for the bytes below absolute stream offset `until` only: IDS mode
    /// parses what the peer acknowledged ([`StreamDirection::acked_offset`]); the rest is read by
    /// a later call. `detect` says on which ports DNS is recognised.
    pub fn on_stream_until(
        &mut self,
        to_server: bool,
        dir: &StreamDirection,
        ports: (u16, u16),
        until: u64,
        detect: &DetectionPorts,
    ) -> AppUpdate {
        let mut up = AppUpdate {
            first_tx: self.next_tx,
            ..AppUpdate::default()
        };
        let idx = usize::from(!to_server);
        let cursor = self.cursor.get(idx).copied().unwrap_or_default();
        // The stream restarted past what was read: bytes were lost in between.
        let gap = dir.data_offset() > cursor;
        let end = dir.end_offset().min(until);
        let (from, data) = dir.data_between(cursor, end);
        if let Some(c) = self.cursor.get_mut(idx) {
            *c = end.max(from);
        }
        if gap {
            up.events.push(AppEvent::StreamGap);
            match &mut self.parser {
                Parser::Http(h, _) if to_server => h.on_gap(),
                Parser::Http(_, r) => r.on_gap(),
                Parser::Tls(t) => {
                    t.on_gap(to_server);
                    t.lost_records(to_server);
                }
                Parser::Dns(d) => d.on_gap(to_server),
                Parser::Detecting => self.parser = Parser::None,
                _ => {}
            }
        }
        if data.is_empty() {
            return self.finish(up, Vec::new());
        }
        if let Parser::Detecting = self.parser {
            let readable = dir.data_between(dir.data_offset(), end).1;
            let head = readable.get(..DETECT_MAX_BYTES).unwrap_or(readable);
            let full = head.len() >= DETECT_MAX_BYTES;
            // A midstream flow whose direction was guessed wrong: the other direction's
            // patterns (Suricata's midstream retry of protocol detection).
            if self.reversible {
                let other = if to_server {
                    looks_like_http_response(head)
                } else {
                    looks_like_http_request(head)
                };
                match other {
                    Some(true) => return self.reverse_to_http(up, to_server, readable),
                    None if !full && to_server => {
                        if let Some(c) = self.cursor.get_mut(idx) {
                            *c = from;
                        }
                        return self.finish(up, Vec::new());
                    }
                    _ => {}
                }
            }
            // Detection looks at the client's first bytes (DNS by port, both directions).
            if !to_server && !detect.dns_tcp.contains(ports.0) {
                self.server_unread = true;
                return self.finish(up, Vec::new());
            }
            let dns_port = detect.dns_tcp.contains(ports.0) || detect.dns_tcp.contains(ports.1);
            match (looks_like_http_request(head), looks_like_tls(head)) {
                (Some(true), _) => self.set(AppProto::Http),
                (_, Some(true)) => self.set(AppProto::Tls),
                (Some(false), Some(false)) if dns_port => self.set(AppProto::Dns),
                (Some(false), Some(false)) => self.set(AppProto::Unknown),
                _ if full => self.set(AppProto::Unknown),
                _ => {
                    // Undecided: read this direction again from where detection began.
                    if let Some(c) = self.cursor.get_mut(idx) {
                        *c = from;
                    }
                    return self.finish(up, Vec::new());
                }
            }
            // Detection looked from the start of the kept data: feed all of it.
            return self.feed(up, to_server, readable);
        }
        self.feed(up, to_server, data)
    }

    /// Feed one UDP datagram payload; `detect` says on which ports DNS is recognised.
    pub fn on_udp(
        &mut self,
        to_server: bool,
        payload: &[u8],
        ports: (u16, u16),
        detect: &DetectionPorts,
    ) -> AppUpdate {
        let up = AppUpdate {
            first_tx: self.next_tx,
            ..AppUpdate::default()
        };
        if let Parser::Detecting = self.parser {
            if detect.dns_udp.contains(ports.0) || detect.dns_udp.contains(ports.1) {
                self.set(AppProto::Dns);
            } else {
                self.set(AppProto::Unknown);
            }
        }
        let mut out = Vec::new();
        let mut up = up;
        if let Parser::Dns(d) = &mut self.parser {
            d.on_udp(to_server, payload, &mut out, &mut up.events);
        }
        self.finish(up, out)
    }

    /// Detection read `data`, sent in direction `to_server`, as HTTP of the other direction:
    /// the flow is HTTP and reversed; the data is parsed as the other direction's.
    fn reverse_to_http(&mut self, mut up: AppUpdate, to_server: bool, data: &[u8]) -> AppUpdate {
        self.cursor.swap(0, 1);
        up.reversed = true;
        // Bytes of the other direction that went by unread are the client's now: the request
        // parser resynchronises. (When `data` is itself the direction that went by unread, it
        // is read again from the start of what is kept.)
        let lost_requests = self.server_unread && to_server;
        self.server_unread = false;
        self.set(AppProto::Http);
        if let (Parser::Http(h, _), true) = (&mut self.parser, lost_requests) {
            h.on_gap();
        }
        self.feed(up, !to_server, data)
    }

    fn set(&mut self, proto: AppProto) {
        self.proto = proto;
        self.parser = match proto {
            AppProto::Http => {
                let mut r = http::response::ResponseState::default();
                if self.server_unread {
                    r.on_gap();
                }
                Parser::Http(http::state::HttpState::default(), r)
            }
            AppProto::Tls => {
                let mut t = tls::state::TlsState::default();
                if self.server_unread {
                    t.lost_records(false);
                }
                Parser::Tls(t)
            }
            AppProto::Dns => Parser::Dns(dns::state::DnsState::default()),
            AppProto::Http2 | AppProto::Unknown => Parser::None,
        };
    }

    fn feed(&mut self, mut up: AppUpdate, to_server: bool, data: &[u8]) -> AppUpdate {
        let mut out = Vec::new();
        match &mut self.parser {
            Parser::Http(h, _) if to_server => {
                let mut ops = Vec::new();
                h.feed(data, &mut ops, &mut up.events);
                for op in ops {
                    self.apply_http(&mut up, op);
                }
            }
            Parser::Http(_, r) => {
                let mut ops = Vec::new();
                let txs = &self.txs;
                let mut k = 0usize;
                // Whether the k-th response of this feed answers a HEAD request.
                let mut head_request = || {
                    let req = txs
                        .iter()
                        .filter_map(|(_, t)| match t {
                            TxData::Http(r) if r.response.is_none() => Some(r),
                            _ => None,
                        })
                        .nth(k);
                    k += 1;
                    req.is_some_and(|r| r.method.eq_ignore_ascii_case(b"HEAD"))
                };
                r.feed(data, &mut head_request, &mut ops, &mut up.events);
                let switched = r.take_switched();
                // The Upgrade of a `101 Switching Protocols` in this feed.
                let mut upgrade = None;
                for op in ops {
                    if let http::response::ResponseOut::Head(resp) = &op
                        && resp.stat_code == b"101"
                    {
                        upgrade.clone_from(&resp.upgrade);
                    }
                    self.apply_response(&mut up, op);
                }
                if let Some(rest) = switched {
                    return self.switch_protocols(up, upgrade.as_deref(), &rest);
                }
            }
            Parser::H2cUpgrade(seen) => {
                let idx = usize::from(!to_server);
                if let Some(v) = seen.get_mut(idx) {
                    let room = H2C_PREFACE.len().saturating_sub(v.len());
                    v.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
                }
                let head = seen.get(idx).map(Vec::as_slice).unwrap_or_default();
                match looks_like_http2(to_server, head) {
                    Some(true) => {
                        self.proto = AppProto::Http2;
                        self.parser = Parser::None;
                    }
                    // Not HTTP/2 after all: the connection is a tunnel nothing parses.
                    Some(false) => self.parser = Parser::None,
                    None => {}
                }
            }
            Parser::Tls(t) => {
                let mut steps = Vec::new();
                t.feed(to_server, data, &mut steps, &mut up.events);
                t.on_records(to_server, data);
                for step in steps {
                    self.apply_tls(&mut up, step);
                }
            }
            Parser::Dns(d) => d.on_tcp(to_server, data, &mut out, &mut up.events),
            _ => {}
        }
        self.finish(up, out)
    }

    /// A `101 Switching Protocols` ended HTTP/1 on the flow (`upgrade`: its Upgrade header;
    /// `rest`: the server's bytes after it). To `h2c`, the flow changes protocol as Suricata's
    /// does (`AppLayerRequestProtocolChange`): it is `http2` once the first bytes of either side
    /// show HTTP/2, and `http` is its original protocol. Any other upgrade (WebSocket, TLS)
    /// leaves a tunnel nothing parses.
    #[cold]
    fn switch_protocols(
        &mut self,
        up: AppUpdate,
        upgrade: Option<&[u8]>,
        rest: &[u8],
    ) -> AppUpdate {
        let h2c = upgrade.is_some_and(|u| u.eq_ignore_ascii_case(b"h2c"));
        if !h2c {
            self.parser = Parser::None;
            return self.finish(up, Vec::new());
        }
        self.proto_orig = self.proto;
        self.parser = Parser::H2cUpgrade([Vec::new(), Vec::new()]);
        if rest.is_empty() {
            return self.finish(up, Vec::new());
        }
        self.feed(up, false, rest)
    }

    /// Record that transaction `id` was created or progressed by this feed.
    fn touch(up: &mut AppUpdate, id: u64) {
        if up.new_txs == 0 {
            up.first_tx = id;
            up.new_txs = 1;
        } else {
            let n = id.saturating_sub(up.first_tx).saturating_add(1);
            up.new_txs = up.new_txs.max(n);
        }
    }

    fn push_tx(&mut self, up: &mut AppUpdate, tx: TxData) {
        // Only the latest transaction is inspected: the previous one's body is never needed
        // again, and 32 kept bodies of 100 KiB each would be a per-flow memory lever.
        if let Some((_, TxData::Http(r))) = self.txs.back_mut() {
            r.body = Vec::new();
        }
        if self.txs.len() >= MAX_TXS {
            self.txs.pop_front();
            up.events.push(AppEvent::TxCapReached);
        }
        let id = self.next_tx;
        self.txs.push_back((id, tx));
        self.next_tx = self.next_tx.saturating_add(1);
        Self::touch(up, id);
    }

    /// Apply one step of the TLS handshake: the ClientHello opens the flow's transaction, the
    /// server's messages progress it (or open one when the client's hello was not seen).
    fn apply_tls(&mut self, up: &mut AppUpdate, step: tls::state::TlsOut) {
        use tls::state::{TlsOut, TlsTx};
        if let TlsOut::Client(c) = step {
            let tx = TlsTx {
                client: Some(c),
                ..TlsTx::default()
            };
            self.push_tx(up, TxData::Tls(Box::new(tx)));
            return;
        }
        let latest = match self.txs.back_mut() {
            Some((id, TxData::Tls(t))) => Some((*id, t)),
            _ => None,
        };
        let (id, t) = match latest {
            Some((id, t)) => (Some(id), t),
            None => {
                self.push_tx(up, TxData::Tls(Box::default()));
                match self.txs.back_mut() {
                    Some((_, TxData::Tls(t))) => (None, t),
                    _ => return,
                }
            }
        };
        match step {
            TlsOut::Server(s) => t.server = Some(s),
            TlsOut::Certs(c) => t.certs = Some(c),
            TlsOut::ClientCerts(c) => t.client_certs = Some(c),
            TlsOut::Client(_) => {}
        }
        if let Some(id) = id {
            Self::touch(up, id);
        }
    }

    /// Apply one step of the responses: a head answers the oldest request without a response
    /// (a response without a request gets a transaction of its own, whose request buffers are
    /// absent); body bytes and the body's end go to the latest response.
    fn apply_response(&mut self, up: &mut AppUpdate, op: http::response::ResponseOut) {
        use http::response::{RESPONSE_BODY_LIMIT, ResponseOut};
        match op {
            ResponseOut::Head(resp) => {
                let slot = self.txs.iter_mut().find_map(|(id, t)| match t {
                    TxData::Http(r) if r.response.is_none() => Some((*id, r)),
                    _ => None,
                });
                match slot {
                    Some((id, r)) => {
                        r.response = Some(resp);
                        Self::touch(up, id);
                    }
                    // A response without a request (the request was not seen: a flow picked
                    // up midstream, a gap): a transaction of its own, as libhtp makes one.
                    None => self.push_tx(up, TxData::Http(Box::new(request_not_seen(resp)))),
                }
            }
            ResponseOut::Body(mut b) => {
                if let Some((id, p)) = self.latest_response() {
                    let before = p.body.len() >= HTTP_RESPONSE_BODY_MIN_INSPECT;
                    let room = RESPONSE_BODY_LIMIT.saturating_sub(p.body.len());
                    b.truncate(room);
                    // The body's first bytes are taken as they are, not copied.
                    if p.body.is_empty() {
                        p.body = b;
                    } else {
                        p.body.extend_from_slice(&b);
                    }
                    if !before && p.body.len() >= HTTP_RESPONSE_BODY_MIN_INSPECT {
                        Self::touch(up, id);
                    }
                }
            }
            ResponseOut::BodyEnd => {
                if let Some((id, p)) = self.latest_response() {
                    p.body_done = true;
                    Self::touch(up, id);
                }
            }
        }
    }

    /// The flow ended (end of the capture or of the engine): a response body still arriving
    /// (no length, or cut short) ends here and is offered to rules, as Suricata inspects what
    /// is pending with its flow-end pseudo packets.
    pub fn on_close(&mut self) -> AppUpdate {
        let mut up = AppUpdate {
            first_tx: self.next_tx,
            ..AppUpdate::default()
        };
        if let Some((id, p)) = self.latest_response() {
            p.body_done = true;
            Self::touch(&mut up, id);
        }
        up
    }

    /// The latest transaction's response whose body is still arriving.
    fn latest_response(&mut self) -> Option<(u64, &mut http::response::Response)> {
        self.txs.iter_mut().rev().find_map(|(id, t)| match t {
            TxData::Http(r) => match r.response.as_deref_mut() {
                Some(p) if !p.body_done => Some((*id, p)),
                _ => None,
            },
            _ => None,
        })
    }

    /// Apply one step of the latest HTTP transaction's progress.
    fn apply_http(&mut self, up: &mut AppUpdate, op: HttpOut) {
        let latest = match self.txs.back_mut() {
            Some((id, TxData::Http(r))) => Some((*id, r)),
            _ => None,
        };
        match (op, latest) {
            (HttpOut::Line(r), _) => self.push_tx(up, TxData::Http(Box::new(r))),
            (
                HttpOut::Head {
                    request,
                    replaces_line: true,
                },
                Some((id, r)),
            ) if !r.headers_done => {
                **r = request;
                Self::touch(up, id);
            }
            (HttpOut::Head { request, .. }, _) => self.push_tx(up, TxData::Http(Box::new(request))),
            (HttpOut::Body(b), Some((id, r))) if r.headers_done && !r.body_done => {
                let before = r.body.len() >= HTTP_BODY_MIN_INSPECT;
                let room = http::state::REQUEST_BODY_LIMIT.saturating_sub(r.body.len());
                r.body
                    .extend_from_slice(b.get(..room.min(b.len())).unwrap_or_default());
                // Offered to rules when it reaches the minimal inspection size, and at its end.
                if !before && r.body.len() >= HTTP_BODY_MIN_INSPECT {
                    Self::touch(up, id);
                }
            }
            (HttpOut::BodyEnd, Some((id, r))) if r.headers_done && !r.body_done => {
                r.body_done = true;
                Self::touch(up, id);
            }
            // Progress of a transaction no longer kept.
            (HttpOut::Body(_) | HttpOut::BodyEnd, _) => {}
        }
    }

    fn finish(&mut self, mut up: AppUpdate, out: Vec<TxData>) -> AppUpdate {
        for tx in out {
            self.push_tx(&mut up, tx);
        }
        for e in up.events.iter() {
            if let Some(c) = self.events.get_mut(e.index()) {
                *c = c.saturating_add(1);
            }
        }
        up
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;
    use crate::rules::BufferKind;
    use crate::stream::{Segment, StreamConfig, StreamMemcap, TcpStream};
    use proptest::prelude::*;

    fn data(seq: u32, payload: &[u8]) -> Segment<'_> {
        Segment {
            seq,
            ack: 0,
            flags: TcpFlags(TcpFlags::ACK | TcpFlags::PSH),
            payload,
            urgent: 0,
        }
    }

    fn handshake() -> TcpStream {
        let mut s = TcpStream::new(StreamConfig::default(), &StreamMemcap::default());
        let syn = Segment {
            seq: 0,
            ack: 0,
            flags: TcpFlags(TcpFlags::SYN),
            payload: &[],
            urgent: 0,
        };
        s.insert(true, syn);
        s.insert(
            false,
            Segment {
                seq: 9000,
                ack: 1,
                flags: TcpFlags(TcpFlags::SYN | TcpFlags::ACK),
                payload: &[],
                urgent: 0,
            },
        );
        s
    }

    // HTTP over the stream, segments out of order: the request completes on the packet that
    // fills the hole, and its buffers are there at once.
    #[test]
    fn http_over_stream() {
        let mut s = handshake();
        let mut app = AppState::new();
        let parts: [(u32, &[u8]); 3] = [
            (1, b"GET /a%2fb HTTP/1.1\r\n"),
            (22, b"Host: WWW.Test:80\r\nUser-Agent: x\r\n\r\n"),
            (57, b"GET /next HTTP/1.1\r\n\r\n"),
        ];
        for (i, (seq, p)) in [parts[1], parts[0], parts[2]].iter().enumerate() {
            s.insert(true, data(*seq, p));
            let up = app.on_stream(true, &s.client, (40000, 80));
            match i {
                0 => assert_eq!(up.new_txs, 0),
                1 => {
                    assert_eq!(up.new_txs, 1);
                    let b = app.tx(up.first_tx).unwrap();
                    assert_eq!(b.get(BufferKind::HttpUri, true), Some(&b"/a/b"[..]));
                    assert_eq!(b.get(BufferKind::HttpUriRaw, true), Some(&b"/a%2fb"[..]));
                    assert_eq!(b.get(BufferKind::HttpHost, true), Some(&b"www.test"[..]));
                    assert_eq!(b.get(BufferKind::HttpUserAgent, true), Some(&b"x"[..]));
                }
                _ => {
                    assert_eq!(up.tx_ids(), 1..2);
                    assert_eq!(
                        app.buffers().and_then(|b| b.get(BufferKind::HttpUri, true)),
                        Some(&b"/next"[..])
                    );
                }
            }
        }
        assert_eq!(app.proto(), AppProto::Http);
    }

    // One request progresses over five packets: request line, head, body part, body end, next
    // request line. The same transaction is reported each time its buffers grow; the body is
    // offered at its end and released when the next transaction starts.
    #[test]
    fn http_tx_progress() {
        let mut s = handshake();
        let mut app = AppState::new();
        let parts: [(u32, &[u8]); 5] = [
            (1, b"POST /up HTTP/1.1\r\n"),
            (20, b"Host: h\r\nContent-Length: 6\r\n\r\n"),
            (50, b"abc"),
            (53, b"def"),
            (56, b"GET /next HTTP/1.1\r\n"),
        ];
        let mut seen = Vec::new();
        for (seq, p) in parts {
            s.insert(true, data(seq, p));
            let up = app.on_stream(true, &s.client, (40000, 80));
            let b = up.tx_ids().last().and_then(|id| app.tx(id));
            seen.push((
                up.tx_ids(),
                b.and_then(|b| b.get(BufferKind::HttpHost, true))
                    .map(<[u8]>::to_vec),
                b.and_then(|b| b.get(BufferKind::HttpRequestBody, true))
                    .map(<[u8]>::to_vec),
            ));
        }
        assert_eq!(seen[0], (0..1, None, None));
        assert_eq!(seen[1], (0..1, Some(b"h".to_vec()), None));
        // Body bytes below the minimal inspection size, not ended: nothing new to inspect.
        assert!(seen[2].0.is_empty());
        assert_eq!(
            seen[3],
            (0..1, Some(b"h".to_vec()), Some(b"abcdef".to_vec()))
        );
        assert_eq!(seen[4].0, 1..2);
        assert_eq!(
            app.tx(0)
                .and_then(|b| b.get(BufferKind::HttpRequestBody, true)),
            Some(&b""[..])
        );
        assert_eq!(
            app.tx(1).and_then(|b| b.get(BufferKind::HttpUri, true)),
            Some(&b"/next"[..])
        );
        assert_eq!(
            app.tx(1).and_then(|b| b.get(BufferKind::HttpHeader, true)),
            None
        );
    }

    // TLS detected by content on a non-standard port.
    #[test]
    fn tls_over_stream() {
        use crate::app::tls::parser::tests::{client_hello_msg, records};
        let wire = records(&client_hello_msg(b"sni.example"), 50);
        let mut s = handshake();
        let mut app = AppState::new();
        let mut seq = 1u32;
        let mut sni = None;
        for chunk in wire.chunks(3) {
            s.insert(true, data(seq, chunk));
            seq += u32::try_from(chunk.len()).unwrap();
            let up = app.on_stream(true, &s.client, (40000, 8443));
            if up.new_txs > 0 {
                sni = app
                    .tx(up.first_tx)
                    .and_then(|b| b.get(BufferKind::TlsSni, true))
                    .map(<[u8]>::to_vec);
            }
        }
        assert_eq!(app.proto(), AppProto::Tls);
        assert_eq!(sni.as_deref(), Some(&b"sni.example"[..]));
    }

    // An SSL 2.0-format ClientHello (as in tls-glupteba: 0x80 0x80, CLIENT-HELLO, version 3.1)
    // makes the flow TLS; its version is read (`ssl_version`, no JA3), without an event, and
    // the server's TLS handshake is.
    #[test]
    fn sslv2_client_hello_then_tls_server() {
        use crate::app::tls::cert::tests::SAN_CERT;
        use crate::app::tls::parser::tests::{records, server_flight};
        assert_eq!(looks_like_tls(&[0x80, 0x80, 1, 3, 1, 0]), Some(true));
        assert_eq!(looks_like_tls(&[0x80, 0x2e, 1, 0, 2]), Some(true));
        assert_eq!(looks_like_tls(&[0x80, 0x80, 1, 3]), None);
        assert_eq!(looks_like_tls(&[0x80, 0x80, 1, 4]), Some(false));
        assert_eq!(looks_like_tls(&[0x80, 0x80, 2, 3, 1]), Some(false));
        assert_eq!(looks_like_tls(&[0x81]), None);
        let mut hello = vec![0x80, 0x1f, 1, 3, 1, 0, 6, 0, 0, 0, 16];
        hello.extend_from_slice(&[0, 0, 0x39, 0, 0, 0x2f]);
        hello.extend_from_slice(&[0x5a; 16]);
        let mut s = handshake();
        let mut app = AppState::new();
        s.insert(true, data(1, &hello));
        let up = app.on_stream(true, &s.client, (40000, 443));
        assert_eq!(app.proto(), AppProto::Tls);
        assert!(up.events.is_empty(), "{:?}", up.events);
        let flight = records(&server_flight(&[SAN_CERT]), 1000);
        s.insert(false, data(9001, &flight));
        let up = app.on_stream(false, &s.server, (40000, 443));
        assert!(up.events.is_empty(), "{:?}", up.events);
        let b = app.tx(up.first_tx).unwrap();
        assert_eq!(
            b.get(BufferKind::TlsSubjectAltName, false),
            Some(&b"san.example"[..])
        );
        assert_eq!(b.get(BufferKind::TlsSni, true), None);
        assert_eq!(b.get(BufferKind::SslVersion, true), Some(&b"tls1.0"[..]));
        assert_eq!(
            (
                b.get(BufferKind::Ja3Hash, true),
                b.get(BufferKind::TlsRandom, true)
            ),
            (None, None)
        );
        assert!(b.get(BufferKind::Ja4Hash, true).is_none());
        // The client's side waits for its next handshake message (a Certificate); its
        // ChangeCipherSpec ends it.
        assert!(matches!(&app.parser, Parser::Tls(t) if !t.is_done()));
        s.insert(
            true,
            data(
                1 + u32::try_from(hello.len()).unwrap(),
                &[20, 3, 1, 0, 1, 1],
            ),
        );
        app.on_stream(true, &s.client, (40000, 443));
        assert!(matches!(&app.parser, Parser::Tls(t) if t.is_done()));
    }

    // `detection-ports`: Suricata's port syntax; DNS over UDP is recognised on the listed
    // ports only (53 by default).
    #[test]
    fn dns_detection_ports() {
        let p = PortRanges::parse("[53, 1053, 5300:5301, 6000:]").unwrap();
        assert!(
            [53, 1053, 5300, 5301, 6000, 65535]
                .iter()
                .all(|&n| p.contains(n))
        );
        assert!([52, 54, 5299, 5302, 5999].iter().all(|&n| !p.contains(n)));
        assert!(PortRanges::parse("any").unwrap().contains(0));
        for bad in ["", "!53", "53,", "x", "9:8", "70000", "[1,2,3,4,5,6,7,8,9]"] {
            assert_eq!(PortRanges::parse(bad), None, "{bad}");
        }
        let q =
            b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04Evil\x03com\x00\x00\x01\x00\x01";
        let on_1053 = DetectionPorts {
            dns_udp: PortRanges::one(1053),
            ..DetectionPorts::default()
        };
        let mut app = AppState::new();
        assert_eq!(app.on_udp(true, q, (5353, 1053), &on_1053).new_txs, 1);
        assert_eq!(app.proto(), AppProto::Dns);
        let mut app = AppState::new();
        assert_eq!(app.on_udp(true, q, (5353, 53), &on_1053).new_txs, 0);
        assert_eq!(app.proto(), AppProto::Unknown);
    }

    #[test]
    fn dns_udp_and_unknown() {
        let q =
            b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04Evil\x03com\x00\x00\x01\x00\x01";
        let mut app = AppState::new();
        let up = app.on_udp(true, q, (5353, 53), &DetectionPorts::default());
        assert_eq!(up.new_txs, 1);
        assert_eq!(
            app.buffers()
                .and_then(|b| b.get(BufferKind::DnsQuery, true)),
            Some(&b"Evil.com"[..])
        );
        assert_eq!(app.proto(), AppProto::Dns);

        let mut app = AppState::new();
        assert_eq!(
            app.on_udp(true, q, (5353, 5354), &DetectionPorts::default())
                .new_txs,
            0
        );
        assert_eq!(app.proto(), AppProto::Unknown);

        // SSH banner on TCP: not ours.
        let mut s = handshake();
        let mut app = AppState::new();
        s.insert(true, data(1, b"SSH-2.0-OpenSSH_9.6\r\n"));
        app.on_stream(true, &s.client, (40000, 22));
        assert_eq!(app.proto(), AppProto::Unknown);
    }

    fn midstream() -> TcpStream {
        let cfg = StreamConfig {
            midstream: true,
            ..StreamConfig::default()
        };
        TcpStream::new(cfg, &StreamMemcap::default())
    }

    // A flow picked up midstream whose first payload is a server's response (detect-pcre-05):
    // detection reverses the flow and parses the bytes as the server's; the response has a
    // transaction of its own, without request buffers. A flow whose handshake was seen is not
    // reversed.
    #[test]
    fn midstream_response_first_reverses_the_flow() {
        let resp = b"HTTP/1.1 200 OK\r\nServer: Apache\r\nContent-Length: 0\r\n\r\n";
        let mut s = midstream();
        s.insert(true, data(1000, &resp[..5]));
        let mut app = AppState::new();
        app.set_reversible(true);
        // "HTTP/" could still be either: wait.
        let up = app.on_stream(true, &s.client, (6666, 65));
        assert!(!up.reversed);
        assert_eq!(app.proto(), AppProto::Unknown);
        s.insert(true, data(1005, &resp[5..]));
        let up = app.on_stream(true, &s.client, (6666, 65));
        assert!(up.reversed);
        assert_eq!(app.proto(), AppProto::Http);
        assert_eq!(up.new_txs, 1);
        let b = app.tx(up.first_tx).unwrap();
        assert_eq!(b.get(BufferKind::HttpServer, false), Some(&b"Apache"[..]));
        assert_eq!(
            b.get(BufferKind::HttpHeader, false),
            Some(&b"Server: Apache\r\nContent-Length: 0\r\n"[..])
        );
        assert_eq!(
            (
                b.get(BufferKind::HttpMethod, true),
                b.get(BufferKind::HttpUri, true),
                b.get(BufferKind::HttpHeader, true)
            ),
            (None, None, None)
        );
        // The bytes are the server's now: the next ones of that stream are read as its.
        let next = 1000 + u32::try_from(resp.len()).unwrap();
        s.insert(true, data(next, b"HTTP/1.1 404 No\r\n\r\n"));
        let up = app.on_stream(false, &s.client, (65, 6666));
        assert_eq!(
            app.tx(up.first_tx)
                .unwrap()
                .get(BufferKind::HttpStatCode, false),
            Some(&b"404"[..])
        );

        let mut s = handshake();
        s.insert(true, data(1, resp));
        let mut app = AppState::new();
        let up = app.on_stream(true, &s.client, (6666, 65));
        assert!(!up.reversed);
        assert_eq!(app.proto(), AppProto::Unknown);
    }

    // The other way round: a request where the server's bytes were expected.
    #[test]
    fn midstream_request_from_the_server_side_reverses_the_flow() {
        let mut s = midstream();
        s.insert(false, data(7000, b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"));
        let mut app = AppState::new();
        app.set_reversible(true);
        let up = app.on_stream(false, &s.server, (80, 40000));
        assert!(up.reversed);
        assert_eq!(
            app.tx(up.first_tx).unwrap().get(BufferKind::HttpUri, true),
            Some(&b"/x"[..])
        );
    }

    // HTTP/1.1 upgraded to HTTP/2 (`101 Switching Protocols`, `Upgrade: h2c`; drop-protocol-
    // change): the flow changes protocol when the server's first frame is a SETTINGS frame, and
    // remembers `http` as its original protocol; a WebSocket upgrade ends HTTP/1 parsing only.
    #[test]
    fn h2c_upgrade_changes_the_protocol() {
        assert_eq!(looks_like_http2(true, &H2C_PREFACE[..10]), None);
        assert_eq!(looks_like_http2(true, H2C_PREFACE), Some(true));
        assert_eq!(looks_like_http2(true, b"PRX"), Some(false));
        assert_eq!(
            looks_like_http2(false, &[0, 0, 0, 4, 1, 0, 0, 0, 0]),
            Some(true)
        );
        assert_eq!(
            looks_like_http2(false, &[0, 0, 0, 1, 4, 0, 0, 0, 1]),
            Some(false)
        );
        assert_eq!(looks_like_http2(false, &[0, 0, 0, 4]), None);
        let run = |upgrade: &[u8], after: &[u8]| {
            let mut s = handshake();
            let mut app = AppState::new();
            s.insert(true, data(1, b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n"));
            app.on_stream(true, &s.client, (40000, 80));
            let mut resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: ".to_vec();
            resp.extend_from_slice(upgrade);
            resp.extend_from_slice(b"\r\n\r\n");
            resp.extend_from_slice(after);
            s.insert(false, data(9001, &resp));
            let up = app.on_stream(false, &s.server, (40000, 80));
            let code = app
                .tx(up.first_tx)
                .and_then(|b| b.get(BufferKind::HttpStatCode, false).map(<[u8]>::to_vec));
            assert_eq!(code.as_deref(), Some(&b"101"[..]));
            (app.proto(), app.proto_orig())
        };
        let settings = [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100];
        assert_eq!(
            run(b"h2c", &settings),
            (AppProto::Http2, Some(AppProto::Http))
        );
        // Until HTTP/2 shows, the flow is still `http`.
        assert_eq!(run(b"h2c", b""), (AppProto::Http, None));
        assert_eq!(run(b"websocket", &settings), (AppProto::Http, None));
        assert_eq!(AppProto::Http2.name(), "http2");
    }

    // Detection waits when the first bytes are ambiguous ("GE").
    #[test]
    fn detection_waits_for_bytes() {
        let mut s = handshake();
        let mut app = AppState::new();
        s.insert(true, data(1, b"GE"));
        app.on_stream(true, &s.client, (40000, 80));
        assert_eq!(app.proto(), AppProto::Unknown);
        s.insert(true, data(3, b"T / HTTP/1.0\r\n\r\n"));
        let up = app.on_stream(true, &s.client, (40000, 80));
        assert_eq!(app.proto(), AppProto::Http);
        assert_eq!(up.new_txs, 1);
        assert_eq!(
            app.buffers()
                .and_then(|b| b.get(BufferKind::HttpProtocol, true)),
            Some(&b"HTTP/1.0"[..])
        );
    }

    // A gap in the client stream is reported to the app layer.
    #[test]
    fn gap_reported() {
        let mut s = handshake();
        let mut app = AppState::new();
        s.insert(true, data(1, b"GET /1 HTTP/1.1\r\n\r\n"));
        app.on_stream(true, &s.client, (40000, 80));
        s.insert(true, data(40, b"GET /2 HTTP/1.1\r\n\r\n"));
        let ack = Segment {
            seq: 9001,
            ack: 59,
            flags: TcpFlags(TcpFlags::ACK),
            payload: &[],
            urgent: 0,
        };
        s.insert(false, ack);
        let up = app.on_stream(true, &s.client, (40000, 80));
        assert!(up.events.iter().any(|e| e == AppEvent::StreamGap));
        assert_eq!(
            app.buffers().and_then(|b| b.get(BufferKind::HttpUri, true)),
            Some(&b"/2"[..])
        );
    }

    proptest! {
        // Arbitrary bytes in any split, either direction, any port: no panic, caps hold.
        #[test]
        fn app_never_panics(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..12),
            port in prop_oneof![Just(53u16), Just(80), Just(443), any::<u16>()],
            prefix in prop_oneof![Just(&b""[..]), Just(&b"GET "[..]), Just(&b"\x16\x03\x01"[..])],
        ) {
            let cfg = StreamConfig { midstream: true, ..StreamConfig::default() };
            let mut s = TcpStream::new(cfg, &StreamMemcap::default());
            let mut app = AppState::new();
            let mut seq = 1000u32;
            let mut first = prefix.to_vec();
            first.extend_from_slice(chunks.first().map(Vec::as_slice).unwrap_or_default());
            for (i, c) in std::iter::once(&first).chain(chunks.iter().skip(1)).enumerate() {
                s.insert(true, data(seq, c));
                seq = seq.wrapping_add(u32::try_from(c.len()).unwrap());
                app.on_stream(true, &s.client, (40000, port));
                let mut udp = AppState::new();
                udp.on_udp(i % 2 == 0, c, (port, 53), &DetectionPorts::default());
                prop_assert!(app.txs.len() <= MAX_TXS);
            }
        }
    }
}
