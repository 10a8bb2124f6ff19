//! A parsed, validated rule: the header and options in the form the engine evaluates.

use std::sync::Arc;

use super::threshold::ThresholdSpec;
use super::vars::{AddrSet, PortSet};

/// What a rule does when it matches. Declared in Suricata's default action order: a `pass`
/// rule is evaluated before `drop`, `drop` before `reject`, `reject` before `alert`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum RuleAction {
    /// Stop inspecting this packet (and the flow, when the action applies to it: see
    /// [`Rule::flow_scoped`]); no alert unless the rule says `alert`.
    Pass,
    /// Alert and drop (inline).
    Drop,
    /// Alert, drop and reset / ICMP-unreachable.
    Reject,
    /// Alert only.
    Alert,
}

impl RuleAction {
    /// The keyword.
    pub const fn name(self) -> &'static str {
        match self {
            RuleAction::Pass => "pass",
            RuleAction::Drop => "drop",
            RuleAction::Reject => "reject",
            RuleAction::Alert => "alert",
        }
    }
}

/// The header protocol.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RuleProto {
    /// Any IP packet.
    Ip,
    /// IPv4 packets (`ipv4`, `ip4`).
    Ipv4,
    /// IPv6 packets (`ipv6`, `ip6`).
    Ipv6,
    /// TCP; payload contents match the stream buffer when the caller has one, else the packet.
    Tcp,
    /// TCP, payload contents match packet payloads only (`tcp-pkt`).
    TcpPkt,
    /// TCP, payload contents match the reassembled stream only (`tcp-stream`).
    TcpStream,
    /// UDP.
    Udp,
    /// ICMPv4.
    Icmp,
    /// ICMPv6.
    Icmpv6,
    /// HTTP (app-layer, any transport).
    Http,
    /// TLS.
    Tls,
    /// DNS over UDP or TCP.
    Dns,
}

/// Application protocol of a flow, as detected by the caller.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AppProto {
    /// HTTP/1.x.
    Http,
    /// TLS.
    Tls,
    /// DNS.
    Dns,
    /// Something else or not yet known.
    Other,
}

/// `->`, `<>` or `=>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Direction {
    /// `->`: source matches the packet's source.
    To,
    /// `<>`: either way round.
    Both,
    /// `=>` (Suricata 8's transactional rule, `SIG_FLAG_TXBOTHDIR`): the source is the
    /// transaction's client, as with `->`, and the rule reads buffers of both sides of one
    /// transaction (`ja3.hash` and `ja3s.hash`, `http.uri` and `http.stat_code`). It matches
    /// when the response side is inspected, on a packet towards the client, whose header it
    /// checks the other way round; the request's buffers are those of the same transaction
    /// ([`super::Buffers::get_request`]).
    Tx,
}

/// Declares [`BufferKind`] once: each kind with its Suricata keyword, in index order. It
/// generates the enum, [`BufferKind::ALL`] (declaration order, so `ALL[k.index()] == k`) and
/// [`BufferKind::name`], which three hand-kept lists used to say and could disagree on.
macro_rules! buffer_kinds {
    ($($(#[$doc:meta])* $kind:ident => $name:literal,)+) => {
        /// The buffers content, pcre and friends inspect. `Payload` is the default (no sticky
        /// buffer): the stream buffer of this direction when the caller supplies one, else the
        /// packet payload.
        #[allow(missing_docs)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
        pub enum BufferKind {
            $($(#[$doc])* $kind,)+
        }

        impl BufferKind {
            /// Every kind in declaration order: `ALL[k.index()] == k`.
            pub const ALL: [BufferKind; [$(stringify!($kind)),+].len()] = [$(BufferKind::$kind),+];

            /// The buffer's Suricata keyword (`pkt_data` for the packet and the default buffer).
            pub const fn name(self) -> &'static str {
                match self {
                    $(BufferKind::$kind => $name,)+
                }
            }
        }
    };
}

buffer_kinds! {
    /// The default buffer (no sticky buffer): this direction's stream when the caller has one,
    /// else the packet's payload.
    Payload => "pkt_data",
    /// The packet's L4 payload only (`pkt_data`, `tcp-pkt` rules).
    Packet => "pkt_data",
    /// The reassembled stream of this direction (`tcp-stream` rules).
    Stream => "stream",
    HttpUri => "http.uri",
    HttpUriRaw => "http.uri.raw",
    HttpMethod => "http.method",
    HttpHost => "http.host",
    HttpHostRaw => "http.host.raw",
    HttpUserAgent => "http.user_agent",
    HttpHeader => "http.header",
    HttpHeaderRaw => "http.header.raw",
    HttpHeaderNames => "http.header_names",
    HttpCookie => "http.cookie",
    HttpReferer => "http.referer",
    HttpContentType => "http.content_type",
    HttpContentLen => "http.content_len",
    HttpRequestLine => "http.request_line",
    HttpRequestBody => "http.request_body",
    HttpResponseLine => "http.response_line",
    HttpStatCode => "http.stat_code",
    HttpStatMsg => "http.stat_msg",
    HttpServer => "http.server",
    HttpLocation => "http.location",
    HttpAccept => "http.accept",
    HttpAcceptEnc => "http.accept_enc",
    HttpAcceptLang => "http.accept_lang",
    HttpConnection => "http.connection",
    HttpProtocol => "http.protocol",
    HttpStart => "http.start",
    /// `file.data` / `file_data`: HTTP response body (and, later, other file-carrying protocols).
    FileData => "file.data",
    TlsSni => "tls.sni",
    TlsCertSubject => "tls.cert_subject",
    TlsCertIssuer => "tls.cert_issuer",
    TlsCertSerial => "tls.cert_serial",
    /// Each certificate of the chain, DER; the caller may concatenate them.
    TlsCerts => "tls.certs",
    DnsQuery => "dns.query",
    Ja3Hash => "ja3.hash",
    Ja3sHash => "ja3s.hash",
    /// `ja3.string`: the JA3 fields before hashing.
    Ja3String => "ja3.string",
    /// `ja3s.string`.
    Ja3sString => "ja3s.string",
    /// `ja4.hash`: the full JA4 fingerprint.
    Ja4Hash => "ja4.hash",
    /// `tls.cert_fingerprint`: SHA-1 of the leaf certificate, `aa:bb:...`.
    TlsCertFingerprint => "tls.cert_fingerprint",
    /// `tls.random`: the 32 random bytes of the ClientHello (to the server) or the
    /// ServerHello (to the client).
    TlsRandom => "tls.random",
    /// `tls.random_time`: the first 4 of them.
    TlsRandomTime => "tls.random_time",
    /// `tls.random_bytes`: the other 28.
    TlsRandomBytes => "tls.random_bytes",
    /// `tls.alpn`: each ALPN name of the ClientHello or the ServerHello (a multi-buffer).
    TlsAlpn => "tls.alpn",
    /// `tls.subjectaltname`: each subject alternative name of the server's leaf certificate.
    TlsSubjectAltName => "tls.subjectaltname",
    /// `http.request_header`: each request header as `Name: value` (a multi-buffer).
    HttpRequestHeader => "http.request_header",
    /// `frame:http1.request`: the HTTP/1 request frame, the request head as it was in the
    /// stream, each contiguous piece alone (a multi-buffer; the body is not part of it).
    Http1RequestFrame => "frame:http1.request",
    /// `http.response_header`: each response header as `Name: value` (a multi-buffer).
    HttpResponseHeader => "http.response_header",
    /// `dns.queries.rrname`: each question name of the message (a multi-buffer).
    DnsQueriesRrname => "dns.queries.rrname",
    /// `dns.answers.rrname`: each answer record's name.
    DnsAnswersRrname => "dns.answers.rrname",
    /// `dns.authorities.rrname`: each authority record's name.
    DnsAuthoritiesRrname => "dns.authorities.rrname",
    /// `dns.additionals.rrname`: each additional record's name.
    DnsAdditionalsRrname => "dns.additionals.rrname",
    /// `dns.response.rrname`: each name of a response: questions, answers, authorities,
    /// additionals.
    DnsResponseRrname => "dns.response.rrname",
    /// `dns.opcode`: the opcode as one byte, read by [`Step::Uint`].
    DnsOpcode => "dns.opcode",
    /// `dns.rcode`: the rcode as one byte, read by [`Step::Uint`].
    DnsRcode => "dns.rcode",
    /// `dns.rrtype`: each question type (to the server) or answer type (to the client), two
    /// bytes big-endian, read by [`Step::Uint`].
    DnsRrtype => "dns.rrtype",
    /// `ipv4.hdr`: the IPv4 header with its options.
    Ipv4Hdr => "ipv4.hdr",
    /// `ipv6.hdr`: the IPv6 header with its extension headers.
    Ipv6Hdr => "ipv6.hdr",
    /// `tcp.hdr`: the TCP header with its options.
    TcpHdr => "tcp.hdr",
    /// `udp.hdr`: the 8-byte UDP header.
    UdpHdr => "udp.hdr",
    /// `icmpv4.hdr`: the ICMPv4 header (8 bytes, more for timestamps and router adverts).
    Icmpv4Hdr => "icmpv4.hdr",
    /// `icmpv6.hdr`: the 8-byte ICMPv6 header.
    Icmpv6Hdr => "icmpv6.hdr",
    /// `app-layer-event`: the name of each event of the transaction (`dns.z_flag_set`, ...),
    /// a multi-buffer matched whole by the keyword, not a sticky buffer.
    AppLayerEvent => "app-layer-event",
    /// `ssl_version`: the TLS version name (`tls1.2`) of this direction's hello, read whole
    /// by the keyword.
    SslVersion => "ssl_version",
    /// `base64_data`: what the rule's `base64_decode` decoded. Its steps run inside that
    /// [`Step::Base64Decode`]; no chain reads it, no packet offers it.
    Base64Data => "base64_data",
}

impl BufferKind {
    /// The packet's header buffers (`ipv4.hdr`, `tcp.hdr`, ...): read from the packet itself.
    pub const HEADERS: KindSet = KindSet::EMPTY
        .with(BufferKind::Ipv4Hdr)
        .with(BufferKind::Ipv6Hdr)
        .with(BufferKind::TcpHdr)
        .with(BufferKind::UdpHdr)
        .with(BufferKind::Icmpv4Hdr)
        .with(BufferKind::Icmpv6Hdr);

    /// The packet's own payload and stream: what a packet offers without an app layer.
    pub const PACKET: KindSet = KindSet::EMPTY
        .with(BufferKind::Payload)
        .with(BufferKind::Packet)
        .with(BufferKind::Stream);

    /// A header buffer of the packet ([`Self::HEADERS`]).
    pub const fn is_header(self) -> bool {
        Self::HEADERS.contains(self)
    }

    /// Every kind, for tables indexed by kind.
    pub const COUNT: usize = Self::ALL.len();

    /// Index into per-kind tables.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The kinds a packet going towards the server (`to_server`) or the client may offer:
    /// those of its [`Side`] and the packet's own payload and stream (the header kinds,
    /// [`Self::HEADERS`], the engine reads from the packet itself).
    pub const fn side_mask(to_server: bool) -> KindSet {
        let mut m = Self::PACKET;
        let mut rest: &[BufferKind] = &Self::ALL;
        while let [k, tail @ ..] = rest {
            let on = match k.side() {
                // The packet's headers come from the packet, not from `Buffers`.
                Side::Both if k.is_header() || matches!(k, BufferKind::Base64Data) => false,
                Side::Both => true,
                Side::ToServer => to_server,
                Side::ToClient => !to_server,
            };
            if on {
                m = m.with(*k);
            }
            rest = tail;
        }
        m
    }

    /// Which side of a transaction the buffer reads (Suricata's inspection engines register
    /// each buffer for one direction or both). A buffer is offered on packets of its side only;
    /// on packets towards the client, the shared buffers read the response.
    pub const fn side(self) -> Side {
        use BufferKind::*;
        match self {
            FileData | HttpHeader | HttpHeaderRaw | HttpHeaderNames | HttpCookie
            | HttpContentType | HttpContentLen | HttpProtocol | HttpStart | TlsRandom
            | TlsRandomTime | TlsRandomBytes | TlsAlpn | SslVersion | DnsQueriesRrname
            | DnsAnswersRrname | DnsAuthoritiesRrname | DnsAdditionalsRrname | DnsOpcode
            | DnsRcode | DnsRrtype => Side::Both,
            // Towards the server: the client's certificate (client authentication).
            TlsCertSubject | TlsCertIssuer | TlsCertSerial | TlsCertFingerprint | TlsCerts => {
                Side::Both
            }
            Ipv4Hdr | Ipv6Hdr | TcpHdr | UdpHdr | Icmpv4Hdr | Icmpv6Hdr | AppLayerEvent
            | Base64Data => Side::Both,
            HttpResponseLine | HttpStatCode | HttpStatMsg | HttpServer | HttpLocation
            | Ja3sHash | Ja3sString | TlsSubjectAltName | HttpResponseHeader
            | DnsResponseRrname => Side::ToClient,
            _ => Side::ToServer,
        }
    }

    /// Whether the buffer is a multi-buffer (Suricata 8): one instance per certificate or
    /// query name, each inspected alone; a rule matches when one instance matches its chain.
    pub fn is_multi(self) -> bool {
        matches!(
            self,
            BufferKind::TlsCerts
                | BufferKind::DnsQuery
                | BufferKind::TlsAlpn
                | BufferKind::TlsSubjectAltName
                | BufferKind::HttpRequestHeader
                | BufferKind::Http1RequestFrame
                | BufferKind::HttpResponseHeader
                | BufferKind::DnsQueriesRrname
                | BufferKind::DnsAnswersRrname
                | BufferKind::DnsAuthoritiesRrname
                | BufferKind::DnsAdditionalsRrname
                | BufferKind::DnsResponseRrname
                | BufferKind::DnsRrtype
                | BufferKind::AppLayerEvent
        )
    }

    /// The app-layer protocol this buffer implies (for header proto `tcp` rules on app buffers).
    pub fn app_proto(self) -> Option<AppProto> {
        use BufferKind::*;
        match self {
            // The event names say their protocol; the rule's header names it too.
            Payload | Packet | Stream | AppLayerEvent | Base64Data => None,
            Ipv4Hdr | Ipv6Hdr | TcpHdr | UdpHdr | Icmpv4Hdr | Icmpv6Hdr => None,
            TlsSni | TlsCertSubject | TlsCertIssuer | TlsCertSerial | TlsCerts | Ja3Hash
            | Ja3sHash | Ja3String | Ja3sString | Ja4Hash | TlsCertFingerprint | TlsRandom
            | TlsRandomTime | TlsRandomBytes | TlsAlpn | TlsSubjectAltName | SslVersion => {
                Some(AppProto::Tls)
            }
            DnsQuery | DnsQueriesRrname | DnsAnswersRrname | DnsAuthoritiesRrname
            | DnsAdditionalsRrname | DnsResponseRrname | DnsOpcode | DnsRcode | DnsRrtype => {
                Some(AppProto::Dns)
            }
            _ => Some(AppProto::Http),
        }
    }
}

/// The side of a transaction a buffer reads ([`BufferKind::side`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    /// The request (client to server).
    ToServer,
    /// The response (server to client).
    ToClient,
    /// Either: the request on packets towards the server, the response on the others.
    Both,
}

/// A set of [`BufferKind`]s, a bit at each [`BufferKind::index`]: what a packet may offer,
/// what a signature group has a prefilter for. 128 bits hold every kind; the assertion below
/// stops the build when a new kind would not fit (widen the word then).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct KindSet(u128);

const _: () = assert!(
    BufferKind::COUNT <= u128::BITS as usize,
    "a KindSet holds 128 kinds"
);

impl KindSet {
    /// No kind.
    pub const EMPTY: KindSet = KindSet(0);
    /// Every kind (and the unused bits above them: a superset is always right where a
    /// `KindSet` says what may be offered).
    pub const FULL: KindSet = KindSet(u128::MAX);

    /// This set and `kind`.
    #[must_use]
    pub const fn with(self, kind: BufferKind) -> KindSet {
        KindSet(self.0 | 1 << kind.index())
    }

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: BufferKind) -> bool {
        self.0 & 1 << kind.index() != 0
    }

    /// Kinds in both sets.
    #[must_use]
    pub const fn and(self, other: KindSet) -> KindSet {
        KindSet(self.0 & other.0)
    }

    /// Kinds in either set.
    #[must_use]
    pub const fn or(self, other: KindSet) -> KindSet {
        KindSet(self.0 | other.0)
    }

    /// Whether the set has no kind.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Removes and returns the kind of the lowest index, `None` when empty.
    pub fn pop_first(&mut self) -> Option<BufferKind> {
        if self.0 == 0 {
            return None;
        }
        let k = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        BufferKind::ALL.get(k).copied()
    }
}

impl FromIterator<BufferKind> for KindSet {
    fn from_iter<I: IntoIterator<Item = BufferKind>>(iter: I) -> Self {
        iter.into_iter().fold(KindSet::EMPTY, KindSet::with)
    }
}

/// Numeric comparison of `dsize`, `ttl`, `itype`, `bsize`, `urilen`... (Suricata's `DetectU*`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NumCmp {
    /// `N` or `=N`.
    Eq(u64),
    /// `!N`.
    Ne(u64),
    /// `<N`.
    Lt(u64),
    /// `<=N`.
    Le(u64),
    /// `>N`.
    Gt(u64),
    /// `>=N`.
    Ge(u64),
    /// `A<>B` or `A-B`: strictly between (exclusive, as Suricata).
    Between(u64, u64),
}

impl NumCmp {
    /// Does `v` satisfy the comparison?
    pub fn test(self, v: u64) -> bool {
        match self {
            NumCmp::Eq(n) => v == n,
            NumCmp::Ne(n) => v != n,
            NumCmp::Lt(n) => v < n,
            NumCmp::Le(n) => v <= n,
            NumCmp::Gt(n) => v > n,
            NumCmp::Ge(n) => v >= n,
            NumCmp::Between(a, b) => a < v && v < b,
        }
    }
}

/// `flags` / `fragbits` modifier.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BitsMode {
    /// No modifier: exactly these bits (after the ignore mask).
    Exact,
    /// `+`: these bits and maybe others.
    All,
    /// `*`: any of these bits.
    Any,
    /// `!`: none of these bits.
    Not,
}

/// A test on the packet itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PacketCheck {
    /// `flags`.
    Flags {
        /// Modifier.
        mode: BitsMode,
        /// The flags named.
        bits: u16,
        /// Flags to ignore (the mask after the comma).
        ignore: u16,
    },
    /// `fragbits` (bit 0 reserved, 1 DF, 2 MF).
    Fragbits {
        /// Modifier.
        mode: BitsMode,
        /// The bits named.
        bits: u8,
    },
    /// `dsize`: L4 payload length of this packet.
    Dsize(NumCmp),
    /// `ttl` (hop limit on IPv6).
    Ttl(NumCmp),
    /// `itype`.
    Itype(NumCmp),
    /// `icode`.
    Icode(NumCmp),
    /// `icmp_id`.
    IcmpId(u16),
    /// `icmp_seq`.
    IcmpSeq(u16),
    /// `ip_proto`.
    IpProto(NumCmp),
    /// `ipopts`: any of these IPv4 option flags ([`ipopt`]) is set on the packet.
    IpOpts(u16),
    /// `stream_size`: the sequence space a side of the TCP session used so far.
    StreamSize(StreamSizeSide, NumCmp),
    /// `icmpv6.mtu`: the MTU of an ICMPv6 Packet Too Big message (type 2, code 0); no other
    /// packet has one.
    Icmpv6Mtu(NumCmp),
    /// `vlan.id`: the VLAN id of a layer of the frame's tag stack; never on an untagged frame.
    VlanId(NumCmp, VlanLayer),
    /// `vlan.layers`: the number of VLAN tags of the frame.
    VlanLayers(NumCmp),
    /// `flow.age`: whole seconds since the flow's first packet; never without a flow.
    FlowAge(NumCmp),
    /// `decode-event`: the decoder raised this event on the packet
    /// ([`PacketView::events`](super::engine::PacketView::events)).
    DecodeEvent(crate::decode::DecodeEvent),
    /// `flow.pkts`: the flow's packets in a direction so far, this one included.
    FlowPkts(FlowDir, NumCmp),
    /// `flow.bytes`: the flow's bytes in a direction so far, this packet's included.
    FlowBytes(FlowDir, NumCmp),
    /// `tcp.seq`: the TCP header's sequence number.
    TcpSeq(NumCmp),
    /// `tcp.ack`: the TCP header's acknowledgment number.
    TcpAck(NumCmp),
    /// `stream-event`: the TCP tracking raised this event ([`stream_event`]) on the packet.
    StreamEvent(u16),
}

/// The TCP stream events `stream-event` can name and [`PacketView`](super::engine::PacketView)
/// `::stream_events` carries: the subset of Suricata's that svm raises. Any other name is
/// refused when the rule loads.
pub mod stream_event {
    /// `suspected_rst_inject`: a RST's sender went on sending, so the RST was not its own
    /// (Suricata's `StreamTcpPacketCheckPostRst`); the session goes on.
    pub const SUSPECTED_RST_INJECT: u16 = 1 << 0;
    /// `reassembly_overlap_different_data`: a segment overlapped data already received with
    /// different bytes.
    pub const REASSEMBLY_OVERLAP_DIFFERENT_DATA: u16 = 1 << 1;
    /// `pkt_invalid_timestamp`: the segment's TCP timestamp failed validation (PAWS,
    /// [`crate::stream::timestamps`]); it was not reassembled.
    pub const PKT_INVALID_TIMESTAMP: u16 = 1 << 2;

    /// The event a `stream-event` value names (with or without the `stream.` prefix).
    pub fn by_name(name: &str) -> Option<u16> {
        match name.trim().trim_start_matches("stream.") {
            "suspected_rst_inject" => Some(SUSPECTED_RST_INJECT),
            "reassembly_overlap_different_data" => Some(REASSEMBLY_OVERLAP_DIFFERENT_DATA),
            "pkt_invalid_timestamp" => Some(PKT_INVALID_TIMESTAMP),
            _ => None,
        }
    }
}

/// Which direction `flow.pkts` and `flow.bytes` count.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FlowDir {
    /// `toserver`.
    ToServer,
    /// `toclient`.
    ToClient,
    /// `either`: one of the two.
    Either,
}

/// Which tags of the stack `vlan.id` compares (Suricata's `layer` argument).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VlanLayer {
    /// Any tag (the default, `any`).
    Any,
    /// Every tag (`all`).
    All,
    /// One tag: 0 is the outermost; negative counts from the innermost (-1).
    Index(i8),
}

/// Which side `stream_size` measures.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StreamSizeSide {
    /// What the client sent.
    Client,
    /// What the server sent.
    Server,
    /// Both sides must satisfy the comparison.
    Both,
    /// Either side may.
    Either,
}

/// IPv4 option flags for `ipopts` and [`PacketView`](super::engine::PacketView)`::ipopts`
/// (Suricata's `IPV4_OPT_FLAG_*`).
pub mod ipopt {
    /// End of list (0).
    pub const EOL: u16 = 1 << 0;
    /// No operation (1).
    pub const NOP: u16 = 1 << 1;
    /// Record route (7).
    pub const RR: u16 = 1 << 2;
    /// Timestamp (68).
    pub const TS: u16 = 1 << 3;
    /// Quick start (25).
    pub const QS: u16 = 1 << 4;
    /// Security (130).
    pub const SEC: u16 = 1 << 5;
    /// Loose source route (131).
    pub const LSRR: u16 = 1 << 6;
    /// Commercial security (134).
    pub const CIPSO: u16 = 1 << 7;
    /// Stream identifier (136).
    pub const SID: u16 = 1 << 8;
    /// Strict source route (137).
    pub const SSRR: u16 = 1 << 9;
    /// Router alert (148).
    pub const RTRALT: u16 = 1 << 10;
    /// Extended security (133).
    pub const ESEC: u16 = 1 << 11;
}

/// `flow` keyword.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct FlowCheck {
    /// `established` (true) / `not_established` (false).
    pub established: Option<bool>,
    /// `to_server`/`from_client` (true) / `to_client`/`from_server` (false).
    pub to_server: Option<bool>,
    /// `stateless`: match with or without a flow.
    pub stateless: bool,
    /// `only_stream` (true) / `no_stream` (false): which buffer payload contents use.
    pub stream: Option<bool>,
}

/// `fast_pattern` flavours.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum FastPattern {
    /// Not named.
    #[default]
    No,
    /// `fast_pattern`.
    Yes,
    /// `fast_pattern:only` (accepted; verified like any content, which is equivalent).
    Only,
    /// `fast_pattern:offset,length`: only this slice goes to the prefilter.
    Slice(u16, u16),
}

/// Slots for `byte_extract` variables in one rule.
pub const MAX_BYTE_VARS: usize = 16;

/// A number a keyword takes: written in the rule, or the value a `byte_extract` earlier in the
/// rule stored (Suricata: "can be used in any modifier that takes a number").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Val<T> {
    /// As written.
    Lit(T),
    /// The variable in this slot (below [`MAX_BYTE_VARS`]).
    Var(u8),
}

impl<T> Val<T> {
    /// The variable slot, if a variable.
    pub fn var(&self) -> Option<u8> {
        match self {
            Val::Var(v) => Some(*v),
            Val::Lit(_) => None,
        }
    }

    /// The literal, if one.
    pub fn lit(&self) -> Option<&T> {
        match self {
            Val::Lit(n) => Some(n),
            Val::Var(_) => None,
        }
    }
}

/// `content`.
#[derive(Clone, Debug)]
pub struct Content {
    /// The bytes (escapes and `|hex|` resolved).
    pub pattern: Vec<u8>,
    /// `nocase`.
    pub nocase: bool,
    /// `!`.
    pub negated: bool,
    /// `offset`.
    pub offset: Option<Val<u32>>,
    /// `depth` (counted from `offset`, as written; the window end is `offset + depth`).
    pub depth: Option<Val<u32>>,
    /// `distance`.
    pub distance: Option<Val<i32>>,
    /// `within`.
    pub within: Option<Val<u32>>,
    /// `startswith`.
    pub startswith: bool,
    /// `endswith`.
    pub endswith: bool,
    /// `fast_pattern`.
    pub fast_pattern: FastPattern,
    /// Case-sensitive searcher; `None` when `nocase`.
    pub(crate) finder: Option<memchr::memmem::Finder<'static>>,
}

impl Content {
    /// Relative to the previous match in the same buffer (`distance` or `within`).
    pub fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }
}

/// `pcre`.
#[derive(Clone, Debug)]
pub struct Pcre {
    /// The expression (translated from PCRE), compiled on first use.
    pub regex: super::pcre::LazyRegex,
    /// `R`.
    pub relative: bool,
    /// `!` before the slashes.
    pub negated: bool,
}

/// Endianness / encoding for `byte_test` and `byte_jump`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ByteEncoding {
    /// Big-endian binary (default).
    Big,
    /// Little-endian binary.
    Little,
    /// ASCII number in this base (`string,dec|hex|oct`).
    String(u32),
}

/// `byte_test` operator.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ByteOp {
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `=`
    Eq,
    /// `<=`
    Le,
    /// `>=`
    Ge,
    /// `&`: `(v & value) != 0`.
    And,
    /// `^`: `(v ^ value) != 0`.
    Xor,
}

/// `byte_test`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ByteTest {
    /// Bytes to read (1..=8 binary, 1..=20 string).
    pub nbytes: Val<u8>,
    /// Operator.
    pub op: ByteOp,
    /// `!` before the operator.
    pub negated: bool,
    /// Value to compare with.
    pub value: Val<u64>,
    /// Offset (from the buffer start, or from the previous match with `relative`).
    pub offset: Val<i32>,
    /// `relative`.
    pub relative: bool,
    /// Encoding.
    pub encoding: ByteEncoding,
    /// `bitmask`: applied (and right-shifted by its trailing zeros) before comparing.
    pub bitmask: Option<u64>,
}

/// `byte_jump`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ByteJump {
    /// Bytes to read.
    pub nbytes: Val<u8>,
    /// Offset.
    pub offset: Val<i32>,
    /// `relative`.
    pub relative: bool,
    /// Encoding.
    pub encoding: ByteEncoding,
    /// `multiplier`.
    pub multiplier: u64,
    /// `align`: round the jump up to a multiple of 4.
    pub align: bool,
    /// `from_beginning`: jump from the buffer start instead of the end of the read.
    pub from_beginning: bool,
    /// `from_end`: jump from the buffer end.
    pub from_end: bool,
    /// `post_offset`.
    pub post_offset: i32,
    /// `bitmask`.
    pub bitmask: Option<u64>,
}

/// `byte_extract`: read a number into a variable and move the position past it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ByteExtract {
    /// Bytes to read (1..=8 binary; string: up to 20 decimal, 14 hex, 23 octal digits).
    pub nbytes: u8,
    /// Offset (from the buffer start, or from the previous match with `relative`).
    pub offset: i32,
    /// `relative`.
    pub relative: bool,
    /// Encoding.
    pub encoding: ByteEncoding,
    /// `multiplier`.
    pub multiplier: u64,
    /// `align` 2 or 4 (0: none): round the value up to a multiple.
    pub align: u8,
    /// The variable's slot.
    pub slot: u8,
}

/// One inspection step of a buffer chain, in rule order.
#[derive(Clone, Debug)]
pub enum Step {
    /// `content` and its modifiers.
    Content(Box<Content>),
    /// `pcre`.
    Pcre(Box<Pcre>),
    /// `isdataat`.
    IsDataAt {
        /// Position.
        n: Val<u32>,
        /// `relative`.
        relative: bool,
        /// `!`.
        negated: bool,
    },
    /// `byte_test`.
    ByteTest(ByteTest),
    /// `byte_jump`.
    ByteJump(ByteJump),
    /// `byte_extract`.
    ByteExtract(ByteExtract),
    /// `bsize` (and `urilen` on the URI buffer).
    Bsize(NumCmp),
    /// An integer keyword (`dns.opcode`, `dns.rcode`, `dns.rrtype`): the buffer, 1 to 8 bytes,
    /// read as a big-endian number and compared.
    Uint(NumCmp),
    /// `base64_decode`, with the `base64_data` steps that read what it decoded.
    Base64Decode(Box<Base64Decode>),
}

/// `base64_decode:[bytes N][, offset M][, relative]` and the steps after `base64_data`.
#[derive(Clone, Debug)]
pub struct Base64Decode {
    /// At most this many encoded bytes are read (`bytes`; the rest of the buffer if `None`).
    pub bytes: Option<u32>,
    /// Start this far past the buffer start, or past the previous match when `relative`.
    pub offset: u32,
    /// `relative`.
    pub relative: bool,
    /// The `base64_data` steps, run on the decoded bytes from their start.
    pub steps: Vec<Step>,
}

impl Step {
    /// Whether this step depends on where the previous one matched.
    pub fn is_relative(&self) -> bool {
        match self {
            Step::Content(c) => c.is_relative(),
            Step::Pcre(p) => p.relative,
            Step::IsDataAt { relative, .. } => *relative,
            Step::ByteTest(b) => b.relative,
            Step::ByteJump(b) => b.relative,
            Step::ByteExtract(b) => b.relative,
            Step::Base64Decode(b) => b.relative,
            Step::Bsize(_) | Step::Uint(_) => false,
        }
    }
}

/// All steps on one buffer.
#[derive(Clone, Debug)]
pub struct Chain {
    /// The buffer.
    pub buffer: BufferKind,
    /// `dotprefix` transform: inspect `"." + buffer`.
    pub dotprefix: bool,
    /// `url_decode` transform: inspect the buffer with `%HH` decoded and `+` as a space
    /// (it commutes with `dotprefix`).
    pub url_decode: bool,
    /// Steps in rule order.
    pub steps: Vec<Step>,
}

/// `flowbits` command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowbitCmd {
    /// `set`.
    Set(u32),
    /// `unset`.
    Unset(u32),
    /// `toggle`.
    Toggle(u32),
    /// `isset` of all these (`a&b`) .
    IsSetAll(Vec<u32>),
    /// `isset` of any of these (`a|b`).
    IsSetAny(Vec<u32>),
    /// `isnotset` of all these.
    IsNotSet(Vec<u32>),
}

/// Which address of the packet a hostbit is kept on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HostSide {
    /// The source (the default).
    Src,
    /// The destination.
    Dst,
}

/// What a `hostbits` option does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HostbitOp {
    /// `set`.
    Set,
    /// `unset`.
    Unset,
    /// `toggle`.
    Toggle,
    /// `isset`.
    IsSet,
    /// `isnotset`.
    IsNotSet,
}

/// A `hostbits` option.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HostbitCmd {
    /// The command.
    pub op: HostbitOp,
    /// The bit (an id of the flowbit name table: names are interned together).
    pub bit: u32,
    /// Which host.
    pub side: HostSide,
}

/// A loaded rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Action.
    pub action: RuleAction,
    /// Generator id (default 1).
    pub gid: u32,
    /// Signature id.
    pub sid: u32,
    /// Revision (default 0).
    pub rev: u32,
    /// `msg`.
    pub msg: Arc<str>,
    /// `classtype` short name.
    pub classtype: Option<Arc<str>>,
    /// Priority (rule `priority`, else the classtype's, else 3).
    pub priority: u8,
    /// Header protocol.
    pub proto: RuleProto,
    /// Source addresses.
    pub src: AddrSet,
    /// Source ports.
    pub sport: PortSet,
    /// Direction.
    pub direction: Direction,
    /// Destination addresses.
    pub dst: AddrSet,
    /// Destination ports.
    pub dport: PortSet,
    /// `flow`.
    pub flow: FlowCheck,
    /// Packet keywords.
    pub packet: Vec<PacketCheck>,
    /// A TCP segment's own payload is inspected as well when it went into the reassembled
    /// stream (Suricata's `SIG_FLAG_REQUIRE_PACKET` beside `SIG_FLAG_REQUIRE_STREAM`): the rule
    /// has packet keywords, or a payload `content` with `offset`, `depth` or `startswith`
    /// (Suricata's `SigValidate`), so a match may come from the packet and again from the
    /// stream.
    pub packet_too: bool,
    /// Buffer chains.
    pub chains: Vec<Chain>,
    /// `flowbits` commands other than `noalert`.
    pub flowbits: Vec<FlowbitCmd>,
    /// `hostbits` commands other than `noalert`.
    pub hostbits: Vec<HostbitCmd>,
    /// `flowbits:noalert` (or `noalert`).
    pub noalert: bool,
    /// `alert`: a `pass` rule alerts too ("alert then pass").
    pub alert: bool,
    /// `threshold` / `detection_filter` from the rule (threshold.config may override).
    pub threshold: Option<ThresholdSpec>,
    /// Line in its file (first line of a continued rule).
    pub line: usize,
}

impl Rule {
    /// `gid:sid:rev`, the form exclusions use.
    pub fn id(&self) -> String {
        format!("{}:{}:{}", self.gid, self.sid, self.rev)
    }

    /// Replace flowbit ids by `map[id]` (ids from another name table).
    pub(crate) fn remap_flowbits(&mut self, map: &[u32]) {
        let m = |id: &mut u32| {
            if let Some(&n) = map.get(*id as usize) {
                *id = n;
            }
        };
        for f in &mut self.flowbits {
            match f {
                FlowbitCmd::Set(b) | FlowbitCmd::Unset(b) | FlowbitCmd::Toggle(b) => m(b),
                FlowbitCmd::IsSetAll(v) | FlowbitCmd::IsSetAny(v) | FlowbitCmd::IsNotSet(v) => {
                    v.iter_mut().for_each(m)
                }
            }
        }
        for h in &mut self.hostbits {
            m(&mut h.bit);
        }
    }

    /// IP-only: only addresses, protocol `ip`-ish and no per-packet or payload keywords.
    /// Suricata evaluates these once per flow direction.
    pub fn is_ip_only(&self) -> bool {
        matches!(
            self.proto,
            RuleProto::Ip
                | RuleProto::Ipv4
                | RuleProto::Ipv6
                | RuleProto::Tcp
                | RuleProto::Udp
                | RuleProto::Icmp
                | RuleProto::Icmpv6
        ) && self.sport.is_any()
            && self.dport.is_any()
            && self.flow == FlowCheck::default()
            && self
                .packet
                .iter()
                .all(|p| matches!(p, PacketCheck::IpProto(_)))
            && self.chains.is_empty()
            && self.flowbits.is_empty()
            && self.hostbits.is_empty()
            && !self.noalert
    }

    /// Does a `pass` or `drop` of this rule apply to its whole flow? Suricata applies the
    /// action to the flow for IP-only, like-IP-only and protocol-detection-only rules (a
    /// header, app-layer protocols included, and at most `ip_proto`, `noalert` and setting
    /// flowbits), for rules reading an app-layer buffer, and for matches in the reassembled
    /// stream (decided per match by the engine); any other match drops or passes its packet.
    pub fn flow_scoped(&self) -> bool {
        let header_only = self.flow == FlowCheck::default()
            && self
                .packet
                .iter()
                .all(|p| matches!(p, PacketCheck::IpProto(_)))
            && self.chains.is_empty()
            && self.hostbits.is_empty()
            && self
                .flowbits
                .iter()
                .all(|f| matches!(f, FlowbitCmd::Set(_)));
        header_only
            || self.chains.iter().any(|c| {
                !matches!(
                    c.buffer,
                    BufferKind::Payload | BufferKind::Packet | BufferKind::Stream
                ) && !c.buffer.is_header()
            })
    }
}
