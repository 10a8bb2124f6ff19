//! Network Activity Scanner glue: per-flow inspection state (TCP stream, app layer, rule state)
//! and the per-packet feed of a [`RuleSet`]. The worker owns the rule set, the threshold state
//! and the stream memcap; the flow table owns one [`FlowScan`] per flow, created lazily on the
//! first packet inspected with a rule set loaded.
//!
//! Per packet: build a [`PacketView`] from the decoded headers and the flow, insert TCP segments
//! into the flow's [`TcpStream`], feed the new in-order data (or the UDP payload) to the
//! [`AppState`], then call [`RuleSet::inspect`] with [`ScanBuffers`]: the stream data new since
//! the last inspection of this direction, and the buffers of the transaction this packet
//! completed (the latest one when a packet completes several).

use crate::app::dns::eve::DnsEve;
use crate::app::http::eve::HttpEve;
use crate::app::quic::eve::QuicEve;
use crate::app::tls::eve::TlsEve;
use crate::app::{AppBuffers, AppProto as App, AppState};
use crate::decode::{Ip, L4, TcpFlags};
use crate::flow::{FlowFacts, TcpState};
use crate::rules::ast::stream_event;
use crate::rules::{
    AppProto, BufferKind, Buffers, FlowCounts, FlowRuleState, FlowView, KindSet, NoBuffers,
    PacketView, RuleMatch, RuleSet, Side, ThresholdState,
};
use crate::stream::{Segment, StreamConfig, StreamEvents, StreamMemcap, TcpStream};
use crate::time::Timestamp;

/// When TCP data is parsed and inspected (see `docs/streams.md`, "Inspection timing").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InspectionMode {
    /// Inline (IPS) semantics: a packet's new in-order data is parsed and inspected as it
    /// arrives, before the packet is forwarded.
    #[default]
    Inline,
    /// IDS (mirror) semantics, as Suricata without `--simulate-ips`: a direction's data is
    /// parsed by the app layer once the peer acknowledged it (on the peer's packet carrying the
    /// ACK, the SYN/ACK excepted), transaction rules run on the next packet of the direction
    /// the transaction belongs to, and the raw stream is inspected on a packet of its own
    /// direction up to the acknowledged offset once there is reason to (see [`RAW_CHUNK`]).
    Ids,
}

/// IDS mode: acknowledged, uninspected bytes of one direction that make the raw stream be
/// inspected without another reason (Suricata's `stream.reassembly.toserver-chunk-size` and
/// `toclient-chunk-size` defaults). The other reasons: the app layer completed a step of a
/// transaction in that direction, the connection closed, or the reassembly depth was reached;
/// what is left at the end of the flow is inspected by [`flush`].
pub const RAW_CHUNK: u64 = 2560;

/// Activity scanner settings of a worker.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScannerConfig {
    /// Inline or IDS timing of stream inspection.
    pub mode: InspectionMode,
    /// TCP reassembly (`stream.midstream`, `stream.reassembly.depth`).
    pub stream: StreamConfig,
    /// The memory every stream of the worker shares (`stream.reassembly.memcap`).
    pub memcap: crate::stream::MemcapBytes,
    /// Suricata's `--simulate-ips`: `drop`/`reject` rules drop the packet (and only it), whatever
    /// the policy's action; used by replay for conformance.
    pub simulate_ips: bool,
    /// Suricata's `stream.async-oneside`: a capture may hold one direction only. A client ACK
    /// after its SYN with no SYN/ACK seen completes the handshake for `flow:established`, as
    /// Suricata's async mode does.
    pub async_oneside: bool,
    /// Suricata's `encryption-handling: full`: keep inspecting the payload of TLS flows after
    /// the session turned to encrypted application data. Off (Suricata's `default`): rules
    /// reading the payload or raw stream no longer run on such flows; `tls.sni` and rules
    /// without payload keywords still do.
    pub tls_inspect_encrypted: bool,
    /// The ports app-layer detection recognises DNS on (Suricata's
    /// `app-layer.protocols.dns.{tcp,udp}.detection-ports.dp`).
    pub detection_ports: crate::app::DetectionPorts,
}

/// Per-flow scanner state.
#[derive(Debug, Default)]
pub struct FlowScan {
    /// Reassembly, TCP flows only.
    pub stream: Option<TcpStream>,
    /// App-layer detection and transactions.
    pub app: AppState,
    /// Flowbits, IP-only and pass bookkeeping, `by_flow` thresholds.
    pub rules: FlowRuleState,
    /// Stream offset inspected so far, per direction (`[to_server, to_client]`).
    inspected: [u64; 2],
    /// The latest transaction inspected and the rules (indexes) that matched its buffers: a
    /// transaction is offered again as it progresses, a rule fires once per transaction.
    tx_matched: (u64, Vec<(u32, bool)>),
    /// Established by a one-sided handshake ([`ScannerConfig::async_oneside`]).
    async_established: bool,
    /// IDS mode, per direction: the latest transaction the app layer created or progressed
    /// from that direction's acknowledged data, inspected with that direction's next packet.
    pending_tx: [Option<u64>; 2],
    /// IDS mode, per direction: the app layer progressed a transaction since the last raw
    /// stream inspection (Suricata's "trigger raw reassembly").
    raw_trigger: [bool; 2],
    /// App-layer detection reversed the flow ([`crate::app::AppUpdate::reversed`]) and this
    /// state followed; the flow's owner has yet to swap its direction ([`FlowScan::take_reversed`]).
    reversed: bool,
}

impl FlowScan {
    /// Whether the flow was reversed since the last call: its client is the other endpoint,
    /// every later packet's direction is the other one. The owner of the flow swaps its own
    /// direction ([`crate::flow::Flow::reverse`]) when this says so.
    pub fn take_reversed(&mut self) -> bool {
        core::mem::take(&mut self.reversed)
    }

    /// Follow a reversal of the flow by the app layer: each per-direction piece of state goes
    /// to the other direction.
    #[cold]
    fn reverse(&mut self) {
        if let Some(st) = self.stream.as_mut() {
            st.reverse();
        }
        self.inspected.swap(0, 1);
        self.pending_tx.swap(0, 1);
        self.raw_trigger.swap(0, 1);
        for (_, to_server) in &mut self.tx_matched.1 {
            *to_server = !*to_server;
        }
        self.reversed = true;
    }
}

/// App-layer fields of an alert, for EVE: `app_proto`, `app_proto_orig` and the objects of the
/// protocols (`http`, `tls`, `quic`, `dns`), each built in its protocol's folder
/// (`app/<proto>/eve.rs`) and written as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppFields {
    /// EVE `app_proto`.
    pub app_proto: &'static str,
    /// EVE `app_proto_orig`: the flow's protocol before it changed protocol
    /// ([`AppState::proto_orig`]).
    pub app_proto_orig: Option<&'static str>,
    /// EVE `http`.
    pub http: Option<HttpEve>,
    /// EVE `tls`.
    pub tls: Option<TlsEve>,
    /// EVE `quic` (the web address scan's; the rule engine parses no QUIC flow).
    pub quic: Option<QuicEve>,
    /// EVE `dns`.
    pub dns: Option<DnsEve>,
}

impl AppFields {
    /// The fields of a transaction: its protocol and its protocol's object.
    fn of(b: &AppBuffers<'_>) -> AppFields {
        let mut f = AppFields {
            app_proto: b.proto().name(),
            ..AppFields::default()
        };
        match b {
            AppBuffers::Http(h) => f.http = HttpEve::of(h),
            AppBuffers::Tls(t) => f.tls = TlsEve::of(t),
            AppBuffers::Dns(d) => f.dns = DnsEve::of(d),
        }
        f
    }
}

/// The buffers one packet offers to the rules.
#[derive(Debug, Default)]
pub struct ScanBuffers<'a> {
    /// New in-order stream data of the packet's direction.
    pub stream: Option<&'a [u8]>,
    /// The transaction the packet completed or progressed (its protocol's buffers, borrowing
    /// the transaction).
    pub app: Option<AppBuffers<'a>>,
    /// The packet's payload went into the reassembled stream, which inspects it (IDS mode).
    pub payload_in_stream: bool,
    /// The flow's payload is no longer inspected (encrypted TLS).
    pub no_payload: bool,
    /// The packet goes towards the server: request buffers are offered, not response ones
    /// ([`BufferKind::to_client`]).
    pub to_server: bool,
}

impl Buffers for ScanBuffers<'_> {
    fn payload_in_stream(&self) -> bool {
        self.payload_in_stream
    }

    fn no_payload(&self) -> bool {
        self.no_payload
    }

    fn kinds(&self) -> KindSet {
        const TO_SERVER: KindSet = BufferKind::side_mask(true);
        const TO_CLIENT: KindSet = BufferKind::side_mask(false);
        match (&self.app, self.to_server) {
            (None, _) => BufferKind::PACKET,
            (Some(_), true) => TO_SERVER,
            (Some(_), false) => TO_CLIENT,
        }
    }

    fn get(&self, kind: BufferKind) -> Option<&[u8]> {
        self.get_nth(kind, 0)
    }

    fn get_nth(&self, kind: BufferKind, n: usize) -> Option<&[u8]> {
        self.side_nth(kind, n, self.to_server)
    }

    fn get_request(&self, kind: BufferKind, n: usize) -> Option<&[u8]> {
        // The request's side of the same transaction, whatever the packet's direction.
        self.side_nth(kind, n, true)
    }
}

impl ScanBuffers<'_> {
    /// Instance `n` of buffer `kind` of the side of a packet going towards the server
    /// (`to_server`) or the client.
    fn side_nth(&self, kind: BufferKind, n: usize, to_server: bool) -> Option<&[u8]> {
        if kind == BufferKind::Stream {
            return self.stream.filter(|_| n == 0);
        }
        let a = self.app?;
        let side = kind.side();
        if (side == Side::ToClient && to_server) || (side == Side::ToServer && !to_server) {
            return None;
        }
        a.get_nth(kind, n, to_server)
    }
}

/// Whether svm fills this buffer for some packet: the rule parser refuses a rule that reads a
/// buffer that is never filled (it would load and never fire). Derived from
/// [`ScanBuffers::get`] on buffers where every field is present, so a buffer becomes loadable
/// exactly when `get` starts returning it; `Payload` and `Packet` come from the packet itself.
pub fn buffer_filled(kind: BufferKind) -> bool {
    matches!(kind, BufferKind::Payload | BufferKind::Packet)
        || kind.is_header()
        || every_app().into_iter().any(|app| {
            [true, false]
                .into_iter()
                .any(|s| every_buffer(app, s).get(kind).is_some())
        })
}

/// A transaction of each protocol where every buffer is present (empty), for
/// [`buffer_filled`].
fn every_app() -> [AppBuffers<'static>; 3] {
    [
        AppBuffers::Http(crate::app::http::buffers::HttpBuffers::every()),
        AppBuffers::Tls(crate::app::tls::buffers::TlsBuffers::every()),
        AppBuffers::Dns(crate::app::dns::buffers::DnsBuffers::every()),
    ]
}

/// The buffers of a packet of the transaction `app` with stream data, for [`buffer_filled`].
fn every_buffer(app: AppBuffers<'_>, to_server: bool) -> ScanBuffers<'_> {
    ScanBuffers {
        stream: Some(b""),
        app: Some(app),
        payload_in_stream: false,
        no_payload: false,
        to_server,
    }
}

/// The sequence space (client, server) the flow's TCP session used, for `stream_size`.
fn stream_size(scan: &FlowScan) -> Option<(u64, u64)> {
    let st = scan.stream.as_ref()?;
    Some((
        st.direction(true).seq_used(),
        st.direction(false).seq_used(),
    ))
}

/// The packet's IP header (with options or extension headers) and transport header, for the
/// header buffers (`ipv4.hdr`, `tcp.hdr`, ...) and `ipopts`; empty where the packet has none.
/// The flow's counts for `flow.pkts` and `flow.bytes`.
fn flow_counts(flow: FlowFacts) -> FlowCounts {
    let [ps, pc] = flow.pkts;
    FlowCounts {
        pkts: [u64::from(ps), u64::from(pc)],
        bytes: flow.bytes,
    }
}

fn headers<'a>(ip: &Ip<'a>) -> (&'a [u8], &'a [u8]) {
    let hl = ip.header_len;
    let ip_header = ip.packet.get(..hl).unwrap_or(&[]);
    let l4 = ip.packet.get(hl..).unwrap_or(&[]);
    let l4_len = match &ip.l4 {
        L4::Tcp(t) => t.header_len,
        L4::Udp(_) => 8,
        L4::Icmp(_) => crate::rules::packet::icmpv4_header_len(l4),
        L4::Icmpv6(_) => 8,
        L4::Fragment | L4::Other(_) => 0,
    };
    (ip_header, l4.get(..l4_len).unwrap_or(&[]))
}

fn rule_app(p: App) -> Option<AppProto> {
    match p {
        // A rule's `http` is any HTTP version, as Suricata's (`http1` is HTTP/1 only there).
        App::Http | App::Http2 => Some(AppProto::Http),
        App::Tls => Some(AppProto::Tls),
        App::Dns => Some(AppProto::Dns),
        App::Unknown => None,
    }
}

/// A flow's facts after the app layer reversed it: its counts and hosts the other way round.
#[cold]
fn reversed_facts(f: FlowFacts) -> FlowFacts {
    let ([ps, pc], [bs, bc], [oc, os]) = (f.pkts, f.bytes, f.os);
    FlowFacts {
        pkts: [pc, ps],
        bytes: [bc, bs],
        os: [os, oc],
        ..f
    }
}

/// Whether the flow's payload is no longer inspected: it carries encrypted TLS and the
/// configuration follows Suricata's default `encryption-handling`.
fn payload_off(cfg: &ScannerConfig, app: &AppState) -> bool {
    !cfg.tls_inspect_encrypted && app.is_encrypted()
}

/// Whether the flow counts as established for `flow:established` (Suricata's rules: TCP after the
/// handshake, or picked up midstream with `stream.midstream`; other protocols once both
/// directions were seen).
pub fn established(f: FlowFacts, midstream: bool) -> bool {
    match f.tcp {
        Some(TcpState::Established | TcpState::Closing | TcpState::Closed) => {
            !f.midstream || midstream
        }
        Some(_) => false,
        None => f.answered,
    }
}

/// Keep only the first match of each transaction rule (a rule inspecting an app-layer buffer)
/// on transaction `id` in each direction, as Suricata's per-transaction detection state does
/// (one inspection state per direction: a rule that reads either side, such as `ssl_version`,
/// can fire once towards the server and once towards the client).
fn once_per_tx(
    rules: &RuleSet,
    seen: &mut (u64, Vec<(u32, bool)>),
    id: u64,
    to_server: bool,
    out: &mut Vec<RuleMatch>,
    from: usize,
) {
    if seen.0 != id {
        *seen = (id, Vec::new());
    }
    let mut i = from;
    while let Some(m) = out.get(i) {
        let tx_rule = rules
            .rules()
            .get(m.rule_index as usize)
            .is_some_and(|r| r.chains.iter().any(|c| c.buffer.app_proto().is_some()));
        if tx_rule {
            let key = (m.rule_index, to_server);
            if seen.1.contains(&key) {
                out.remove(i);
                continue;
            }
            seen.1.push(key);
        }
        i += 1;
    }
}

/// The transport fields of a packet view: ports, TCP flags, ICMP fields, payload.
#[derive(Clone, Copy)]
struct L4Fields<'a> {
    ports: (u16, u16),
    tcp_flags: Option<u16>,
    icmp: Option<(u8, u8, u16, u16)>,
    payload: &'a [u8],
}

/// The transport fields of `ip` (ports 0 for protocols without them).
#[inline(always)]
fn l4_fields<'a>(ip: &Ip<'a>) -> L4Fields<'a> {
    let (ports, tcp_flags, icmp, payload): (_, _, _, &[u8]) = match &ip.l4 {
        L4::Tcp(t) => ((t.src_port, t.dst_port), Some(t.flags.0), None, t.payload),
        L4::Udp(u) => ((u.src_port, u.dst_port), None, None, u.payload),
        L4::Icmp(i) | L4::Icmpv6(i) => (
            (0, 0),
            None,
            Some((i.icmp_type, i.code, i.ident, i.seq)),
            i.payload,
        ),
        // A fragment's payload is inspected as the packet's payload (Suricata's `dsize` and
        // content on a fragment read the bytes after the IP header).
        L4::Fragment => (
            (0, 0),
            None,
            None,
            ip.fragment.map_or(&[][..], |f| f.payload),
        ),
        L4::Other(p) => ((0, 0), None, None, p),
    };
    L4Fields {
        ports,
        tcp_flags,
        icmp,
        payload,
    }
}

/// What a packet view holds besides its IP packet's fields: what its flow says (or its
/// absence), its stream events, decoder events and VLAN ids.
struct ViewPath<'a> {
    stream_size: Option<(u64, u64)>,
    flow_counts: Option<FlowCounts>,
    stream_events: u16,
    flow: FlowView,
    app_proto: Option<AppProto>,
    events: u64,
    vlan: &'a [u16],
    flow_age: Option<u64>,
}

/// The one builder of the packet view the rules read, for a tracked flow's packet
/// ([`inspect`]), a packet without a flow ([`inspect_packet`]) and a flushed flow's pseudo
/// packet ([`flush`]): the header fields, payload and header bytes from `ip` (`l4` its
/// [`l4_fields`]), the rest from `path`.
#[inline(always)]
fn packet_view<'a>(ip: &Ip<'a>, l4: L4Fields<'a>, path: ViewPath<'a>) -> PacketView<'a> {
    let fragbits = match (ip.v6, ip.packet.get(6)) {
        (false, Some(b)) => (b & 0x80 != 0, b & 0x40 != 0, b & 0x20 != 0),
        (true, _) => (false, false, ip.fragment.is_some_and(|f| f.more)),
        _ => (false, false, false),
    };
    let (ip_header, l4_header) = headers(ip);
    PacketView {
        proto: ip.proto,
        src: ip.src(),
        dst: ip.dst(),
        src_port: l4.ports.0,
        dst_port: l4.ports.1,
        ttl: ip.ttl,
        tcp_flags: l4.tcp_flags,
        icmp: l4.icmp,
        fragbits,
        ip_v6: ip.v6,
        payload: l4.payload,
        ip_header,
        l4_header,
        stream_size: path.stream_size,
        stream_events: path.stream_events,
        flow: path.flow,
        flow_counts: path.flow_counts,
        app_proto: path.app_proto,
        events: path.events,
        vlan: path.vlan,
        flow_age: path.flow_age,
    }
}

/// A flushed flow's pseudo packet, as [`packet_view`] reads it: a TCP segment from `src` to
/// `dst` with no flags for `flags` to match, TTL 0, no payload and no header bytes.
fn pseudo_packet(src: (core::net::IpAddr, u16), dst: (core::net::IpAddr, u16)) -> Ip<'static> {
    let (src_bits, v6) = crate::decode::addr_bits(src.0);
    let (dst_bits, _) = crate::decode::addr_bits(dst.0);
    Ip {
        src_bits,
        dst_bits,
        v6,
        ttl: 0,
        proto: crate::decode::IpProto::Tcp,
        total_len: 0,
        header_len: 0,
        packet: &[],
        fragment: None,
        l4: L4::Tcp(crate::decode::Tcp {
            src_port: src.1,
            dst_port: dst.1,
            seq: 0,
            ack: 0,
            flags: TcpFlags(0),
            window: 0,
            urgent: 0,
            header_len: 0,
            payload: &[],
        }),
    }
}

/// Inspect one packet of a tracked flow (`flow` its connection, `scan` the scanner's state of
/// it; `events` its decoder events, [`crate::decode::DecodeEvent::bit`]s; `vlan` its frame's
/// VLAN ids, outer first); matches go to `out`,
/// the alert's app fields are returned when the packet produced matches.
#[allow(clippy::too_many_arguments)]
pub fn inspect(
    rules: &RuleSet,
    cfg: &ScannerConfig,
    memcap: &StreamMemcap,
    thresholds: &mut ThresholdState,
    ip: &Ip<'_>,
    flow: FlowFacts,
    scan: &mut FlowScan,
    mut to_server: bool,
    now: Timestamp,
    events: u64,
    vlan: &[u16],
    out: &mut Vec<RuleMatch>,
) -> Option<AppFields> {
    let async_ack = cfg.async_oneside
        && to_server
        && flow.tcp == Some(TcpState::SynSent)
        && matches!(&ip.l4, L4::Tcp(t) if t.flags.has(TcpFlags::ACK) && !t.flags.has(TcpFlags::SYN));
    let mut est = established(flow, cfg.stream.midstream);
    scan.async_established |= async_ack;
    est |= scan.async_established && flow.tcp == Some(TcpState::SynSent);
    let l4 = l4_fields(ip);
    let ports = l4.ports;
    // Decided before this packet's data is parsed: the packet that reveals encryption is still
    // inspected, as Suricata marks packets from the flow's flag before its app layer runs.
    let no_payload = payload_off(cfg, &scan.app);
    let mut tx: Option<u64> = None;
    let mut stream_new: Option<(u64, u64)> = None;
    let mut payload_in_stream = false;
    let mut stream_events = if flow.rst_inject {
        stream_event::SUSPECTED_RST_INJECT
    } else {
        0
    };
    if flow.invalid_timestamp {
        stream_events |= stream_event::PKT_INVALID_TIMESTAMP;
    }
    match &ip.l4 {
        // A segment whose timestamp the receiver rejects is not part of the stream (PAWS).
        L4::Tcp(_) if flow.invalid_timestamp => {}
        L4::Tcp(t) if cfg.mode == InspectionMode::Ids => {
            if scan.stream.is_none() {
                scan.stream = Some(ids_stream(cfg, memcap, flow.os));
            }
            scan.app
                .set_reversible(flow.midstream && cfg.stream.midstream);
            let closed = matches!(flow.tcp, Some(TcpState::Closed | TcpState::Reset));
            let one_sided = scan.async_established;
            let r = ids_tcp(
                scan,
                cfg,
                memcap,
                t,
                &mut to_server,
                ports,
                closed,
                one_sided,
            );
            let events;
            (tx, stream_new, payload_in_stream, events) = r;
            stream_events |= rule_stream_events(events);
        }
        L4::Tcp(t) => {
            let st = scan
                .stream
                .get_or_insert_with(|| TcpStream::new(cfg.stream, memcap));
            let up = st.insert(to_server, Segment::from(t));
            let mine = if to_server {
                up.to_server
            } else {
                up.to_client
            };
            stream_events |= rule_stream_events(mine.events);
            // Every byte was inspected on arrival: nothing before a hole is waiting.
            st.client.release_before_gap();
            st.server.release_before_gap();
            let dir = st.direction(to_server);
            scan.app
                .set_reversible(flow.midstream && cfg.stream.midstream);
            let up =
                scan.app
                    .on_stream_until(to_server, dir, ports, u64::MAX, &cfg.detection_ports);
            if up.reversed {
                scan.reverse();
                to_server = !to_server;
            }
            if up.new_txs > 0 {
                tx = up.tx_ids().last();
            }
            let idx = usize::from(!to_server);
            let st = scan
                .stream
                .get_or_insert_with(|| TcpStream::new(cfg.stream, memcap));
            let dir = st.direction(to_server);
            let since = scan.inspected.get(idx).copied().unwrap_or(0);
            let end = dir.end_offset();
            if end > since {
                stream_new = Some((since, end));
            }
            if let Some(c) = scan.inspected.get_mut(idx) {
                *c = end;
            }
        }
        L4::Udp(u) => {
            let up = scan
                .app
                .on_udp(to_server, u.payload, ports, &cfg.detection_ports);
            if up.new_txs > 0 {
                tx = up.tx_ids().last();
            }
        }
        _ => {}
    }
    let flow = if scan.reversed {
        reversed_facts(flow)
    } else {
        flow
    };
    let path = ViewPath {
        stream_size: stream_size(scan),
        flow_counts: Some(flow_counts(flow)),
        stream_events,
        flow: FlowView {
            has_flow: true,
            established: est,
            to_server,
        },
        app_proto: rule_app(scan.app.proto()),
        events,
        vlan,
        flow_age: Some(
            (now.micros() / Timestamp::SECOND)
                .saturating_sub(flow.first_seen.micros() / Timestamp::SECOND),
        ),
    };
    let view = packet_view(ip, l4, path);
    let seen = Seen {
        tx,
        stream_new,
        raw_since: stream_new
            .filter(|_| cfg.mode == InspectionMode::Ids)
            .map(|(since, _)| since),
        payload_in_stream,
        no_payload,
        to_server,
        latest_tx_fields: true,
    };
    inspect_view(rules, thresholds, scan, &view, &seen, now, out)
}

/// What a tracked packet or a flushed flow brings to [`inspect_view`].
struct Seen {
    /// The transaction it completed or progressed.
    tx: Option<u64>,
    /// The new in-order stream data of its direction (stream offsets, from and to).
    stream_new: Option<(u64, u64)>,
    /// IDS: where the new stream data starts, for the bytes before a gap ([`before_gap`]).
    raw_since: Option<u64>,
    /// Its payload went into the reassembled stream ([`ScanBuffers::payload_in_stream`]).
    payload_in_stream: bool,
    /// The flow's payload is no longer inspected ([`payload_off`]).
    no_payload: bool,
    /// Its direction.
    to_server: bool,
    /// Without a transaction of its own, the alert's app fields are the latest transaction's
    /// (a packet); otherwise the protocol's name only (a flushed flow).
    latest_tx_fields: bool,
}

/// The inspection a tracked packet ([`inspect`]) and a flushed flow ([`flush`]) share once
/// their view is built: the stream and transaction buffers, the bytes before a gap, the rules,
/// one match per rule and transaction, and the alert's app fields when matches went to `out`.
#[inline]
fn inspect_view(
    rules: &RuleSet,
    thresholds: &mut ThresholdState,
    scan: &mut FlowScan,
    view: &PacketView<'_>,
    seen: &Seen,
    now: Timestamp,
    out: &mut Vec<RuleMatch>,
) -> Option<AppFields> {
    let to_server = seen.to_server;
    let stream = match (&scan.stream, seen.stream_new) {
        (Some(st), Some((since, until))) if !seen.no_payload => {
            Some(st.direction(to_server).data_between(since, until).1)
        }
        _ => None,
    };
    let app = seen.tx.and_then(|id| scan.app.tx(id));
    let bufs = ScanBuffers {
        stream,
        app,
        payload_in_stream: seen.payload_in_stream,
        no_payload: seen.no_payload,
        to_server,
    };
    let before = out.len();
    if let Some(since) = seen.raw_since {
        let st = scan.stream.as_ref();
        before_gap(
            rules,
            thresholds,
            st,
            &mut scan.rules,
            view,
            seen.no_payload,
            since,
            now,
            out,
        );
    }
    rules.inspect(view, &bufs, &mut scan.rules, thresholds, now, out);
    if seen.raw_since.is_some() {
        release_before_gap(&mut scan.stream, to_server);
    }
    if let Some(id) = seen.tx {
        once_per_tx(rules, &mut scan.tx_matched, id, to_server, out, before);
    }
    if out.len() == before {
        return None;
    }
    let latest = || scan.app.buffers().filter(|_| seen.latest_tx_fields);
    let fields = app.as_ref().map(AppFields::of).or_else(|| match latest() {
        Some(b) => Some(AppFields::of(&b)),
        None => rule_app(scan.app.proto()).map(|_| AppFields {
            app_proto: scan.app.proto().name(),
            ..AppFields::default()
        }),
    });
    flow_proto(fields, &scan.app)
}

/// An alert's app fields name the flow's protocol, and the one before when it changed protocol
/// (EVE `app_proto`, `app_proto_orig`, as Suricata's `EveAddAppProto`).
fn flow_proto(fields: Option<AppFields>, app: &AppState) -> Option<AppFields> {
    let Some(orig) = app.proto_orig() else {
        return fields;
    };
    let mut f = fields.unwrap_or_default();
    f.app_proto = app.proto().name();
    f.app_proto_orig = Some(orig.name());
    Some(f)
}

/// Inspect one packet that has no flow, as Suricata inspects an IP fragment or a packet whose
/// transport header does not decode: no stream, no app layer, no flow (`flow` options never
/// match, IP-only rules match every such packet); `events` are its decoder events
/// ([`crate::decode::DecodeEvent::bit`]s). Matches go to `out`.
#[cold]
pub fn inspect_packet(
    rules: &RuleSet,
    thresholds: &mut ThresholdState,
    ip: &Ip<'_>,
    now: Timestamp,
    events: u64,
    vlan: &[u16],
    out: &mut Vec<RuleMatch>,
) {
    let path = ViewPath {
        stream_size: None,
        stream_events: 0,
        flow: FlowView {
            has_flow: false,
            established: false,
            to_server: true,
        },
        flow_counts: None,
        app_proto: None,
        events,
        vlan,
        flow_age: None,
    };
    let view = packet_view(ip, l4_fields(ip), path);
    let mut state = FlowRuleState::new();
    rules.inspect(&view, &NoBuffers, &mut state, thresholds, now, out);
}

/// End of a TCP flow in [`InspectionMode::Ids`] (end of the capture, or of the engine): the
/// data the peer never acknowledged is parsed and inspected now, as Suricata does with the
/// pseudo packets it makes when a flow ends. Call once per direction (`to_server` first);
/// `flow` is the connection, `scan` the scanner's state of it, `client`/`server` its
/// endpoints. Returns the alert's app fields when matches
/// were appended to `out`. Does nothing in inline mode, where every byte was inspected on
/// arrival.
#[cold]
#[allow(clippy::too_many_arguments)]
pub fn flush(
    rules: &RuleSet,
    cfg: &ScannerConfig,
    thresholds: &mut ThresholdState,
    flow: FlowFacts,
    scan: &mut FlowScan,
    client: (core::net::IpAddr, u16),
    server: (core::net::IpAddr, u16),
    to_server: bool,
    now: Timestamp,
    out: &mut Vec<RuleMatch>,
) -> Option<AppFields> {
    if cfg.mode != InspectionMode::Ids {
        return None;
    }
    let est = established(flow, cfg.stream.midstream);
    let (mut client, mut server) = (client, server);
    scan.app
        .set_reversible(flow.midstream && cfg.stream.midstream);
    // Everything received is parsed now, acknowledged or not.
    for first in [true, false] {
        let dir_to_server = if first { to_server } else { !to_server };
        let d = scan.stream.as_ref()?.direction(dir_to_server);
        let ports = if dir_to_server {
            (client.1, server.1)
        } else {
            (server.1, client.1)
        };
        let up = scan.app.on_stream_until(
            dir_to_server,
            d,
            ports,
            d.end_offset(),
            &cfg.detection_ports,
        );
        // Detection reversed the flow: the data was the other direction's, the client is the
        // other endpoint.
        let dir_to_server = dir_to_server != up.reversed;
        if up.reversed {
            scan.reverse();
            core::mem::swap(&mut client, &mut server);
        }
        if up.new_txs > 0
            && let Some(slot) = scan.pending_tx.get_mut(usize::from(!dir_to_server))
        {
            *slot = up.tx_ids().last();
        }
    }
    let flow = if scan.reversed {
        reversed_facts(flow)
    } else {
        flow
    };
    let st = scan.stream.as_ref()?;
    let (src, dst) = if to_server {
        (client, server)
    } else {
        (server, client)
    };
    // A response body without an end ends with the flow.
    let up = scan.app.on_close();
    if up.new_txs > 0
        && let Some(slot) = scan.pending_tx.get_mut(1)
    {
        *slot = up.tx_ids().last();
    }
    let idx = usize::from(!to_server);
    let tx = scan.pending_tx.get_mut(idx).and_then(Option::take);
    let dir = st.direction(to_server);
    let since = scan.inspected.get(idx).copied().unwrap_or(0);
    let end = dir.end_offset();
    let no_payload = payload_off(cfg, &scan.app);
    let has_before_gap = dir.before_gap_between(since).is_some();
    if let Some(c) = scan.inspected.get_mut(idx) {
        *c = end.max(since);
    }
    let stream_new = (end > since).then_some((since, end));
    if (stream_new.is_none() || no_payload) && tx.is_none() && !has_before_gap {
        return None;
    }
    let pseudo = pseudo_packet(src, dst);
    let path = ViewPath {
        stream_size: stream_size(scan),
        flow_counts: Some(flow_counts(flow)),
        stream_events: 0,
        flow: FlowView {
            has_flow: true,
            established: est,
            to_server,
        },
        app_proto: rule_app(scan.app.proto()),
        events: 0,
        vlan: &[],
        flow_age: None,
    };
    let view = packet_view(&pseudo, l4_fields(&pseudo), path);
    let seen = Seen {
        tx,
        stream_new,
        raw_since: Some(since),
        // No payload of its own: stream rules read the stream only.
        payload_in_stream: true,
        no_payload,
        to_server,
        latest_tx_fields: false,
    };
    inspect_view(rules, thresholds, scan, &view, &seen, now, out)
}

/// A flow's stream for IDS-mode inspection: each direction with its receiver's overlap policy
/// (`host-os-policy`, `os`: `[client host, server host]`; the client's bytes are received by
/// the server).
#[cold]
fn ids_stream(
    cfg: &ScannerConfig,
    memcap: &StreamMemcap,
    os: [crate::stream::OsPolicy; 2],
) -> TcpStream {
    let mut st = TcpStream::new(cfg.stream, memcap);
    let [client, server] = os;
    st.client.set_os_policy(server);
    st.server.set_os_policy(client);
    st
}

/// The TCP part of [`inspect`] in [`InspectionMode::Ids`]: reassemble the segment, let the app
/// layer parse what the peer acknowledged in either direction, and decide whether this packet
/// inspects its direction's raw stream. Returns the transaction to inspect with this packet,
/// the raw stream range to inspect, whether the payload went into the stream, and the
/// segment's stream events.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn ids_tcp(
    scan: &mut FlowScan,
    cfg: &ScannerConfig,
    memcap: &StreamMemcap,
    t: &crate::decode::Tcp<'_>,
    to_server_io: &mut bool,
    ports: (u16, u16),
    closed: bool,
    one_sided: bool,
) -> (Option<u64>, Option<(u64, u64)>, bool, StreamEvents) {
    let mut to_server = *to_server_io;
    let st = scan
        .stream
        .get_or_insert_with(|| TcpStream::new(cfg.stream, memcap));
    let depth_before = st.direction(to_server).is_depth_reached();
    let up = st.insert(to_server, Segment::from(t));
    let mine = if to_server {
        up.to_server
    } else {
        up.to_client
    };
    let payload_in_stream = !t.payload.is_empty()
        && !t.flags.has(TcpFlags::RST)
        && !mine.events.has(StreamEvents::NOT_REASSEMBLED)
        && !depth_before;
    if one_sided {
        // Suricata's async mode: the peer's ACKs are never seen, own data counts as ACKed.
        if to_server {
            st.client.ack_all();
        } else {
            st.server.ack_all();
        }
    }
    // A packet's ACK lets the app layer read the other direction up to it (Suricata's default
    // IDS update of the opposing stream; its own-direction updates on RST/FIN read up to the
    // ACK too, so add nothing). One-sided flows read their own data at once. The SYN/ACK's ACK
    // (of TCP Fast Open data) is recorded but read with the server's next packet, as Suricata
    // reassembles nothing while handling the handshake.
    if !t.flags.has(TcpFlags::SYN) {
        // `true`: the packet's own direction.
        let dirs: &[bool] = if one_sided { &[true, false] } else { &[false] };
        for &own in dirs {
            let dir_to_server = if own { to_server } else { !to_server };
            let st = scan
                .stream
                .get_or_insert_with(|| TcpStream::new(cfg.stream, memcap));
            let d = st.direction(dir_to_server);
            let p = if dir_to_server == to_server {
                ports
            } else {
                (ports.1, ports.0)
            };
            let up = scan.app.on_stream_until(
                dir_to_server,
                d,
                p,
                d.acked_offset(),
                &cfg.detection_ports,
            );
            // Detection reversed the flow: the data was the other direction's, and so is this
            // packet.
            let dir_to_server = dir_to_server != up.reversed;
            if up.reversed {
                scan.reverse();
                to_server = !to_server;
                *to_server_io = to_server;
            }
            if up.new_txs > 0 {
                let i = usize::from(!dir_to_server);
                if let Some(slot) = scan.pending_tx.get_mut(i) {
                    *slot = up.tx_ids().last();
                }
                if let Some(trig) = scan.raw_trigger.get_mut(i) {
                    *trig = true;
                }
            }
        }
    }
    let idx = usize::from(!to_server);
    let tx = scan.pending_tx.get_mut(idx).and_then(Option::take);
    let st = scan
        .stream
        .get_or_insert_with(|| TcpStream::new(cfg.stream, memcap));
    let dir = st.direction(to_server);
    let since = scan.inspected.get(idx).copied().unwrap_or(0);
    let until = dir.acked_offset();
    // As Suricata: without a transaction step to trigger it (directions nothing parses, e.g.
    // unknown protocols, TLS after the handshake), the raw stream waits for a chunk's worth of
    // data, the connection's close or the end of the flow.
    let trigger = scan.raw_trigger.get(idx).copied().unwrap_or(false);
    let ready = until > since
        && (trigger || closed || dir.is_depth_reached() || until - since >= RAW_CHUNK);
    let mut range = None;
    if ready {
        range = Some((since, until));
        if let Some(c) = scan.inspected.get_mut(idx) {
            *c = until;
        }
        if let Some(trig) = scan.raw_trigger.get_mut(idx) {
            *trig = false;
        }
    }
    (tx, range, payload_in_stream, mine.events)
}

/// IDS mode, before a raw stream inspection of the packet's direction from offset `since`: the
/// bytes kept before the direction's latest hole that had not been inspected when an ACK
/// skipped it are inspected first, as a stream-only pseudo packet (no payload, no flags);
/// [`release_before_gap`] lets them go after the inspection. Suricata inspects each block of
/// the raw stream on its own, so a pattern never spans the hole, and the bytes before a gap
/// are still inspected.
#[cold]
#[allow(clippy::too_many_arguments)]
fn before_gap(
    rules: &RuleSet,
    thresholds: &mut ThresholdState,
    stream: Option<&TcpStream>,
    rule_state: &mut FlowRuleState,
    view: &PacketView<'_>,
    no_payload: bool,
    since: u64,
    now: Timestamp,
    out: &mut Vec<RuleMatch>,
) {
    let to_server = view.flow.to_server;
    let Some(st) = stream else {
        return;
    };
    if let Some((_, block)) = st.direction(to_server).before_gap_between(since)
        && !no_payload
    {
        let pseudo = PacketView {
            ttl: 0,
            tcp_flags: Some(0),
            payload: &[],
            ip_header: &[],
            l4_header: &[],
            stream_events: 0,
            ..*view
        };
        let bufs = ScanBuffers {
            stream: Some(block),
            app: None,
            payload_in_stream: true,
            no_payload,
            to_server,
        };
        rules.inspect(&pseudo, &bufs, rule_state, thresholds, now, out);
    }
}

/// The raw stream of a direction was inspected: what was kept before its latest hole is done
/// with.
fn release_before_gap(stream: &mut Option<TcpStream>, to_server: bool) {
    if let Some(st) = stream.as_mut() {
        if to_server {
            st.client.release_before_gap();
        } else {
            st.server.release_before_gap();
        }
    }
}

/// The stream events of a segment's insertion that `stream-event` rules can name.
fn rule_stream_events(e: StreamEvents) -> u16 {
    if e.has(StreamEvents::OVERLAP_DIFFERENT_DATA) {
        stream_event::REASSEMBLY_OVERLAP_DIFFERENT_DATA
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{RuleAction, RuleSetBuilder};

    fn matched(rules: &RuleSet, sid: u32) -> RuleMatch {
        let i = rules.rules().iter().position(|r| r.sid == sid).unwrap();
        RuleMatch {
            gid: 1,
            sid,
            rev: 1,
            msg: "m".into(),
            classtype: None,
            category: None,
            priority: 3,
            action: RuleAction::Alert,
            alert: true,
            noalert: false,
            ip_only: false,
            rule_index: u32::try_from(i).unwrap(),
        }
    }

    use crate::decode::{IpProto, Tcp};
    use crate::flow::{FlowConfig, FlowKey, FlowTable};
    use core::net::{IpAddr, Ipv4Addr};
    use vlan::VlanScope;

    const CLIENT: (IpAddr, u16) = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000);
    const SERVER: (IpAddr, u16) = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
    const S: u16 = TcpFlags::SYN;
    const A: u16 = TcpFlags::ACK;
    const PA: u16 = TcpFlags::PSH | TcpFlags::ACK;

    /// The scanner's state beside each flow of a test's table.
    #[derive(Debug, Default)]
    struct Scanned(FlowScan);

    impl crate::flow::FlowExt for Scanned {
        type Peek = ();

        fn peek(&self, _a_to_b: bool) {}

        fn keep_on_leave(_flow: &crate::flow::Flow<Self>) -> bool {
            false
        }
    }

    /// One TCP connection fed packet by packet through [`inspect`] (client ISN 100, server ISN
    /// 500), recording the sids each packet raised.
    struct Conn {
        rules: RuleSet,
        cfg: ScannerConfig,
        memcap: StreamMemcap,
        thresholds: ThresholdState,
        flows: FlowTable<Scanned>,
        now: u64,
        /// The app fields of the last alert [`inspect`] or [`flush`] returned.
        fields: Option<AppFields>,
    }

    impl Conn {
        fn new(rules: &str, mode: InspectionMode) -> Conn {
            let mut b = RuleSetBuilder::default();
            b.add_text("t", rules);
            Conn {
                rules: b.build(),
                cfg: ScannerConfig {
                    mode,
                    ..ScannerConfig::default()
                },
                memcap: StreamMemcap::default(),
                thresholds: ThresholdState::default(),
                flows: FlowTable::new(FlowConfig::default(), 0),
                now: 1,
                fields: None,
            }
        }

        /// Send one segment; the sids it raised, in order.
        fn pkt(
            &mut self,
            to_server: bool,
            flags: u16,
            seq: u32,
            ack: u32,
            data: &[u8],
        ) -> Vec<u32> {
            let (tracked, sids) = self.raw(to_server, flags, seq, ack, data);
            assert_eq!(tracked, to_server);
            sids
        }

        /// Send one segment from [`CLIENT`] (`from_client`) or [`SERVER`], whichever the flow
        /// table takes for the client; the packet's direction as inspected (after a reversal
        /// of the flow, which this owner of the flow follows) and the sids it raised.
        fn raw(
            &mut self,
            from_client: bool,
            flags: u16,
            seq: u32,
            ack: u32,
            data: &[u8],
        ) -> (bool, Vec<u32>) {
            let (src, dst) = if from_client {
                (CLIENT, SERVER)
            } else {
                (SERVER, CLIENT)
            };
            self.now += 1;
            let now = Timestamp(self.now * Timestamp::SECOND);
            let (key, a_to_b) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, src, dst);
            let upd = self
                .flows
                .update(now, &key, a_to_b, Some(TcpFlags(flags)), 60 + data.len());
            let ip = Ip {
                src_bits: crate::decode::addr_bits(src.0).0,
                dst_bits: crate::decode::addr_bits(dst.0).0,
                v6: src.0.is_ipv6(),
                ttl: 64,
                proto: IpProto::Tcp,
                total_len: 40 + data.len(),
                header_len: 20,
                packet: &[],
                fragment: None,
                l4: L4::Tcp(Tcp {
                    src_port: src.1,
                    dst_port: dst.1,
                    seq,
                    ack,
                    flags: TcpFlags(flags),
                    window: 512,
                    urgent: 0,
                    header_len: 20,
                    payload: data,
                }),
            };
            let sids = self.inspect(&key, &ip, upd.to_server, now);
            let flow = self.flows.get_mut(&key).unwrap();
            if flow.ext.0.take_reversed() {
                flow.reverse();
                return (!upd.to_server, sids);
            }
            (upd.to_server, sids)
        }

        /// [`inspect`] one packet of the flow `key`; the sids it raised.
        fn inspect(
            &mut self,
            key: &FlowKey,
            ip: &Ip<'_>,
            to_server: bool,
            now: Timestamp,
        ) -> Vec<u32> {
            let flow = self.flows.get_mut(key).unwrap();
            let mut out = Vec::new();
            let fields = inspect(
                &self.rules,
                &self.cfg,
                &self.memcap,
                &mut self.thresholds,
                ip,
                flow.facts(),
                &mut flow.ext.0,
                to_server,
                now,
                0,
                &[],
                &mut out,
            );
            if fields.is_some() {
                self.fields = fields;
            }
            out.iter().filter(|m| m.alert).map(|m| m.sid).collect()
        }

        /// The end of the traffic: [`flush`] both directions.
        fn end(&mut self) -> Vec<u32> {
            let (key, _) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, CLIENT, SERVER);
            let flow = self.flows.get_mut(&key).unwrap();
            let mut out = Vec::new();
            for to_server in [true, false] {
                let fields = flush(
                    &self.rules,
                    &self.cfg,
                    &mut self.thresholds,
                    flow.facts(),
                    &mut flow.ext.0,
                    CLIENT,
                    SERVER,
                    to_server,
                    Timestamp(0),
                    &mut out,
                );
                if fields.is_some() {
                    self.fields = fields;
                }
            }
            out.iter().filter(|m| m.alert).map(|m| m.sid).collect()
        }

        fn handshake(&mut self) {
            assert!(self.pkt(true, S, 100, 0, b"").is_empty());
            assert!(self.pkt(false, S | A, 500, 101, b"").is_empty());
            assert!(self.pkt(true, A, 101, 501, b"").is_empty());
        }
    }

    // `stream_size` sees the session's sequence space after the packet: the SYN and the bytes
    // of each side in order (client 1 + 4 after "abcd", server 1 + 2 after "xy").
    #[test]
    fn stream_size_counts_the_session() {
        let rules = "alert tcp any any -> any any (stream_size:client,=,5; stream_size:server,=,1; sid:1;)\n\
            alert tcp any any -> any any (stream_size:server,=,3; sid:2;)\n";
        let mut c = Conn::new(rules, InspectionMode::Inline);
        c.handshake();
        assert_eq!(c.pkt(true, PA, 101, 501, b"abcd"), vec![1]);
        assert_eq!(c.pkt(false, PA, 501, 105, b"xy"), vec![2]);
    }

    const REQ: &[u8] = b"GET /blah HTTP/1.0\r\nHost: x\r\n\r\n";
    const HTTP_RULES: &str = "alert tcp any any -> any any (http.uri; content:\"/blah\"; sid:1;)\n\
        alert tcp any any -> any any (content:\"GET\"; sid:2;)\n\
        alert tcp any any -> any any (flags:PA; content:\"GET\"; sid:3;)\n";

    // The kinds a packet offers name every buffer `get` returns on its side (the prefilter asks
    // for no other), and none of the other side's.
    #[test]
    fn kinds_cover_every_buffer_of_the_side() {
        let apps = every_app();
        for to_server in [true, false] {
            let full = |kind| {
                apps.into_iter()
                    .any(|app| every_buffer(app, to_server).get(kind).is_some())
            };
            let no_app = ScanBuffers {
                app: None,
                ..every_buffer(apps[0], to_server)
            };
            for kind in BufferKind::ALL {
                assert_eq!(
                    full(kind),
                    every_buffer(apps[0], to_server).kinds().contains(kind)
                        && !matches!(kind, BufferKind::Payload | BufferKind::Packet),
                    "{kind:?} to_server {to_server}"
                );
                if no_app.get(kind).is_some() {
                    assert!(no_app.kinds().contains(kind), "{kind:?}");
                }
            }
        }
    }

    // IDS: the request is parsed when the server ACKs it and its transaction and stream are
    // inspected with the client's next packet; the payload rule with a packet keyword matches
    // the request packet itself; the stream rule fires once (the stream, not the packet too).
    #[test]
    fn ids_inspects_acknowledged_data_with_the_next_packet() {
        let mut c = Conn::new(HTTP_RULES, InspectionMode::Ids);
        c.handshake();
        let len = u32::try_from(REQ.len()).unwrap();
        assert_eq!(c.pkt(true, PA, 101, 501, REQ), vec![3]);
        assert!(c.pkt(false, A, 501, 101 + len, b"").is_empty());
        let mut got = c.pkt(true, A, 101 + len, 501, b"");
        got.sort_unstable();
        assert_eq!(got, vec![1, 2]);
        assert!(c.pkt(true, A, 101 + len, 501, b"").is_empty());
        assert!(c.end().is_empty());
    }

    // Inline: everything on the request packet itself, once.
    #[test]
    fn inline_inspects_on_arrival() {
        let mut c = Conn::new(HTTP_RULES, InspectionMode::Inline);
        c.handshake();
        let len = u32::try_from(REQ.len()).unwrap();
        let mut got = c.pkt(true, PA, 101, 501, REQ);
        got.sort_unstable();
        assert_eq!(got, vec![1, 2, 3]);
        assert!(c.pkt(false, A, 501, 101 + len, b"").is_empty());
        assert!(c.pkt(true, A, 101 + len, 501, b"").is_empty());
    }

    // A pattern straddling two segments: IDS inspects the raw stream when the request is
    // complete and acknowledged, both segments together; inline inspects each segment's new
    // data once and misses it.
    #[test]
    fn ids_finds_a_pattern_straddling_segments() {
        let rules = "alert tcp-stream any any -> any any (content:\"d2d3\"; sid:7;)\n";
        let (a, b) = (&b"GET /d1d2"[..], &b"d3d4 HTTP/1.0\r\n\r\n"[..]);
        let (la, lb) = (
            u32::try_from(a.len()).unwrap(),
            u32::try_from(b.len()).unwrap(),
        );
        for (mode, want) in [
            (InspectionMode::Ids, vec![7]),
            (InspectionMode::Inline, vec![]),
        ] {
            let mut c = Conn::new(rules, mode);
            c.handshake();
            let mut got = c.pkt(true, PA, 101, 501, a);
            got.extend(c.pkt(false, A, 501, 101 + la, b""));
            got.extend(c.pkt(true, PA, 101 + la, 501, b));
            got.extend(c.pkt(false, A, 501, 101 + la + lb, b""));
            got.extend(c.pkt(true, A, 101 + la + lb, 501, b""));
            got.extend(c.end());
            assert_eq!(got, want, "{mode:?}");
        }
    }

    // Data never acknowledged (the capture ends first) is inspected by the end-of-flow flush,
    // once; inline mode has nothing left to flush.
    #[test]
    fn ids_flushes_unacknowledged_data_at_the_end() {
        let mut c = Conn::new(HTTP_RULES, InspectionMode::Ids);
        c.handshake();
        assert_eq!(c.pkt(true, PA, 101, 501, REQ), vec![3]);
        let mut got = c.end();
        got.sort_unstable();
        assert_eq!(got, vec![1, 2]);
        assert!(c.end().is_empty());

        let mut c = Conn::new(HTTP_RULES, InspectionMode::Inline);
        c.handshake();
        assert_eq!(c.pkt(true, PA, 101, 501, REQ).len(), 3);
        assert!(c.end().is_empty());
    }

    // An alert without a transaction of its own on an HTTP flow: a packet's (inline) carries
    // the latest transaction's fields, a flushed flow's (IDS, at the end) the protocol's name
    // only, as before the two shared `inspect_view`.
    #[test]
    fn app_fields_of_an_alert_without_a_transaction() {
        let rules = "alert tcp-stream any any -> any any (content:\"XYZQ\"; sid:9;)\n";
        let len = u32::try_from(REQ.len()).unwrap();
        let tail = b"XYZQ";
        let mut c = Conn::new(rules, InspectionMode::Inline);
        c.handshake();
        assert!(c.pkt(true, PA, 101, 501, REQ).is_empty());
        assert_eq!(c.pkt(true, PA, 101 + len, 501, tail), vec![9]);
        let f = c.fields.take().unwrap();
        assert_eq!(
            (f.app_proto, f.http.and_then(|h| h.url).as_deref()),
            ("http", Some("/blah"))
        );

        let mut c = Conn::new(rules, InspectionMode::Ids);
        c.handshake();
        assert!(c.pkt(true, PA, 101, 501, REQ).is_empty());
        assert!(c.pkt(false, A, 501, 101 + len, b"").is_empty());
        assert!(c.pkt(true, PA, 101 + len, 501, tail).is_empty());
        assert_eq!(c.end(), vec![9]);
        let f = c.fields.take().unwrap();
        assert_eq!((f.app_proto, f.http), ("http", None));
    }

    // A stream nothing parses (no app-layer protocol) is inspected when a chunk's worth is
    // acknowledged, when the connection closes, or at the end: not at every ACK, so one
    // inspection sees both segments; the packet rule still matches its own packet.
    #[test]
    fn ids_unparsed_stream_waits_for_a_reason() {
        let rules = "alert tcp-stream any any -> any any (content:\"ab|0d|cd\"; sid:5;)\n\
                     alert tcp any any -> any any (dsize:4; content:\"xyza\"; sid:6;)\n";
        let mut c = Conn::new(rules, InspectionMode::Ids);
        c.handshake();
        assert_eq!(c.pkt(true, PA, 101, 501, b"xyza"), vec![6]);
        assert!(c.pkt(false, A, 501, 105, b"").is_empty());
        assert!(c.pkt(true, PA, 105, 501, b"b\rcd").is_empty());
        assert!(c.pkt(false, A, 501, 109, b"").is_empty());
        assert!(c.pkt(true, A, 109, 501, b"").is_empty());
        assert_eq!(c.end(), vec![5]);
        // Closed: the next packet inspects what was acknowledged.
        let mut c = Conn::new(rules, InspectionMode::Ids);
        c.handshake();
        assert_eq!(c.pkt(true, PA, 101, 501, b"xyza"), vec![6]);
        assert!(c.pkt(true, PA, 105, 501, b"b\rcd").is_empty());
        assert!(c.pkt(true, TcpFlags::FIN | A, 109, 501, b"").is_empty());
        assert!(c.pkt(false, TcpFlags::FIN | A, 501, 110, b"").is_empty());
        assert_eq!(c.pkt(true, A, 110, 502, b""), vec![5]);
        assert!(c.end().is_empty());
    }

    // A payload content anchored by `depth`, `offset` or `startswith` makes Suricata inspect
    // the segment's own payload as a packet as well as through the stream
    // (`SIG_FLAG_REQUIRE_PACKET`): such a rule alerts on the packet and again on the stream;
    // an unanchored one only on the stream.
    #[test]
    fn ids_anchored_content_matches_packet_and_stream() {
        let rules = "alert tcp any any -> any any (content:\"xy\"; depth:2; sid:1;)\n\
                     alert tcp any any -> any any (content:\"xy\"; startswith; sid:2;)\n\
                     alert tcp any any -> any any (content:\"za\"; offset:2; sid:3;)\n\
                     alert tcp any any -> any any (content:\"xy\"; sid:4;)\n";
        let mut c = Conn::new(rules, InspectionMode::Ids);
        c.handshake();
        assert_eq!(c.pkt(true, PA, 101, 501, b"xyza"), vec![1, 2, 3]);
        assert_eq!(c.end(), vec![1, 2, 3, 4]);
    }

    // A RST's data is not reassembled: it is its packet's payload only, so a stream rule never
    // sees it and a stream-or-packet rule matches it on the RST itself (Suricata's bug 6244).
    #[test]
    fn ids_rst_data_is_the_packet_only() {
        let rules = "alert tcp any any -> any any (flow:only_stream; content:\"Denied\"; sid:2;)\n\
                     alert tcp any any -> any any (content:\"Denied\"; sid:3;)\n";
        let mut c = Conn::new(rules, InspectionMode::Ids);
        c.handshake();
        let rst = TcpFlags::RST | A;
        assert_eq!(c.pkt(true, rst, 101, 501, b"Access Denied"), vec![3]);
        assert!(c.end().is_empty());
    }

    // The sender of a RST sending again: the RST was injected, the packet raises
    // `suspected_rst_inject` and the flow is established again.
    #[test]
    fn rst_injection_event() {
        let rules = "alert tcp any any -> any any (stream-event:suspected_rst_inject; sid:7;)\n\
                     alert tcp any any -> any any (flow:established; content:\"GET\"; sid:8;)\n";
        let mut c = Conn::new(rules, InspectionMode::Inline);
        c.handshake();
        assert!(c.pkt(true, TcpFlags::RST | A, 101, 501, b"").is_empty());
        assert_eq!(c.pkt(true, PA, 101, 501, b"GET / HTTP/1.0\r\n"), vec![7, 8]);
        assert!(c.pkt(true, PA, 117, 501, b"x").is_empty());
    }

    // An ACK past a hole restarts the data after it; the bytes before the hole were not
    // inspected yet (no reason to inspect the raw stream): they still are, on their own, with
    // the next inspection of the direction (here the end of the flow), and nothing matches
    // across the hole.
    #[test]
    fn ids_bytes_before_a_gap_are_inspected() {
        let rules = "alert tcp-stream any any -> any any (content:\"VERY\"; sid:1;)\n\
                     alert tcp-stream any any -> any any (content:\"DATA\"; sid:3;)\n\
                     alert tcp-stream any any -> any any (content:\"VERYGOODDATA\"; sid:7;)\n";
        let mut c = Conn::new(rules, InspectionMode::Ids);
        c.handshake();
        assert!(c.pkt(true, A, 101, 501, b"VERY").is_empty());
        assert!(c.pkt(true, A, 109, 501, b"DATA").is_empty());
        assert!(c.pkt(false, A, 501, 113, b"").is_empty());
        assert_eq!(c.end(), vec![1, 3]);
        // Inspected by a packet of the direction (a chunk's worth waiting) as well.
        let mut c = Conn::new(rules, InspectionMode::Ids);
        c.handshake();
        assert!(c.pkt(true, A, 101, 501, b"VERY").is_empty());
        let big = vec![b'x'; usize::try_from(RAW_CHUNK).unwrap()];
        let len = u32::try_from(big.len()).unwrap();
        assert!(c.pkt(true, A, 109, 501, &big).is_empty());
        assert!(c.pkt(false, A, 501, 109 + len, b"").is_empty());
        assert_eq!(c.pkt(true, A, 109 + len, 501, b""), vec![1]);
        assert!(c.end().is_empty());
    }

    // The SYN/ACK acknowledging TCP Fast Open data does not get it parsed: the server's next
    // packet does (Suricata reassembles nothing during the handshake), so `alert http` starts
    // matching client packets after that one.
    // An alert's app fields are the transaction's; after a protocol change they name the
    // flow's protocol and the original one.
    #[test]
    fn alert_app_fields_name_a_changed_protocol() {
        let fields = AppFields {
            app_proto: "dns",
            dns: Some(DnsEve::query("q.test".into(), false)),
            ..AppFields::default()
        };
        let app = AppState::new();
        assert_eq!(flow_proto(Some(fields.clone()), &app), Some(fields));
        assert_eq!(flow_proto(None, &app), None);
    }

    // A flow picked up midstream whose first payload is a server's response (detect-pcre-05):
    // the app layer reverses it, the packet that made it do so goes the other way, the
    // response's header buffer is offered towards the client, and later packets of the server
    // are to-client packets. Inline on the response itself; in IDS mode once the client
    // acknowledged it, with the server's next packet.
    #[test]
    fn midstream_response_first_reverses_the_flow() {
        let rules = "alert http any any -> any any (flow:to_client; content:\"Server: \"; http_header; sid:3;)\n\
                     alert http any any -> any any (flow:to_server; sid:4;)\n";
        let resp = b"HTTP/1.1 200 OK\r\nServer: Apache\r\n\r\n";
        let end = 500 + u32::try_from(resp.len()).unwrap();
        for mode in [InspectionMode::Inline, InspectionMode::Ids] {
            let mut c = Conn::new(rules, mode);
            c.cfg.stream.midstream = true;
            let (dir, sids) = c.raw(false, PA, 500, 100, resp);
            if mode == InspectionMode::Inline {
                assert_eq!((dir, sids), (false, vec![3]));
            } else {
                assert_eq!((dir, sids), (true, vec![]));
                // The client's ACK: the response is parsed, the flow reversed, the client's
                // packet goes to the server.
                assert_eq!(c.raw(true, A, 100, end, b""), (true, vec![4]));
                assert_eq!(c.raw(false, A, end, 100, b""), (false, vec![3]));
            }
            assert!(c.raw(true, A, 100, end, b"").0);
        }
        // Without `stream.midstream` the flow keeps its direction and nothing is HTTP.
        let mut c = Conn::new(rules, InspectionMode::Inline);
        assert_eq!(c.raw(false, PA, 500, 100, resp), (true, vec![]));
    }

    #[test]
    fn ids_tfo_data_is_parsed_after_the_handshake() {
        let rules = "alert http any any -> any any (flow:to_server; sid:4;)\n";
        let mut c = Conn::new(rules, InspectionMode::Ids);
        let len = u32::try_from(REQ.len()).unwrap();
        assert!(c.pkt(true, S, 100, 0, REQ).is_empty());
        assert!(c.pkt(false, S | A, 500, 101 + len, b"").is_empty());
        assert!(c.pkt(true, A, 101 + len, 501, b"").is_empty());
        assert!(
            c.pkt(false, PA, 501, 101 + len, b"HTTP/1.0 200 OK\r\n")
                .is_empty()
        );
        assert_eq!(c.pkt(true, A, 101 + len, 518, b""), vec![4]);
    }

    // A rule on a transaction's buffer fires once per transaction however often the transaction
    // is offered again; a payload rule is not affected; a new transaction starts afresh.
    #[test]
    fn tx_rule_once_per_tx() {
        let mut b = RuleSetBuilder::default();
        b.add_text(
            "t",
            "alert http any any -> any any (http.uri; content:\"/a\"; sid:1;)\n\
             alert tcp any any -> any any (content:\"x\"; sid:2;)\n",
        );
        let rules = b.build();
        let mut seen = (0, Vec::new());
        let sids = |out: &[RuleMatch]| out.iter().map(|m| m.sid).collect::<Vec<_>>();
        // The first match stands for an earlier packet's output: never touched.
        for (tx, want) in [(0, vec![2, 1, 2]), (0, vec![2, 2]), (1, vec![2, 1, 2])] {
            let mut out = vec![matched(&rules, 2), matched(&rules, 1), matched(&rules, 2)];
            once_per_tx(&rules, &mut seen, tx, true, &mut out, 1);
            assert_eq!(sids(&out), want, "tx {tx}");
        }
        // The other direction of the same transaction has its own state: once more there.
        for want in [vec![2, 1, 2], vec![2, 2]] {
            let mut out = vec![matched(&rules, 2), matched(&rules, 1), matched(&rules, 2)];
            once_per_tx(&rules, &mut seen, 1, false, &mut out, 1);
            assert_eq!(sids(&out), want, "to the client");
        }
    }

    // Once the TLS session carries application data, payload and stream rules stop (Suricata's
    // default encryption-handling) while app-layer and packet-only rules go on; with
    // `tls_inspect_encrypted` (encryption-handling: full) the payload is still inspected.
    #[test]
    fn encrypted_tls_payload_is_not_inspected() {
        use crate::app::tls::parser::tests::{client_hello_msg, records};
        let rules = "alert tls any any -> any any (tls.sni; content:\"evil.example\"; sid:10;)\n\
            alert tcp any any -> any any (content:\"SECRET\"; sid:11;)\n\
            alert tcp any any -> any any (flags:PA; dsize:11; sid:12;)\n";
        let hello = records(&client_hello_msg(b"evil.example"), 1000);
        let server_hello = [22, 3, 3, 0, 4, 2, 0, 0, 0];
        let app_data = [&[23, 3, 3, 0, 6][..], b"SECRET"].concat();
        // Inline, the first application data packet itself is still inspected (it is the one
        // that reveals encryption); IDS parses it on the server's ACK, before its stream is
        // inspected. The second application data packet is inspected with `full` only.
        for (mode, full, want) in [
            (InspectionMode::Inline, false, vec![11, 12, 12]),
            (InspectionMode::Inline, true, vec![11, 11, 12, 12]),
            (InspectionMode::Ids, false, vec![12, 12]),
            (InspectionMode::Ids, true, vec![11, 12, 12]),
        ] {
            let mut c = Conn::new(rules, mode);
            c.cfg.tls_inspect_encrypted = full;
            c.handshake();
            let lh = u32::try_from(hello.len()).unwrap();
            let ls = u32::try_from(server_hello.len()).unwrap();
            let la = u32::try_from(app_data.len()).unwrap();
            let mut sni = c.pkt(true, PA, 101, 501, &hello);
            sni.extend(c.pkt(false, PA, 501, 101 + lh, &server_hello));
            sni.extend(c.pkt(true, A, 101 + lh, 501 + ls, b""));
            assert_eq!(sni, vec![10], "{mode:?} full={full}");
            let mut got = c.pkt(true, PA, 101 + lh, 501 + ls, &app_data);
            got.extend(c.pkt(false, A, 501 + ls, 101 + lh + la, b""));
            got.extend(c.pkt(true, PA, 101 + lh + la, 501 + ls, &app_data));
            got.extend(c.pkt(false, A, 501 + ls, 101 + lh + 2 * la, b""));
            got.extend(c.pkt(true, A, 101 + lh + 2 * la, 501 + ls, b""));
            got.extend(c.end());
            got.sort_unstable();
            assert_eq!(got, want, "{mode:?} full={full}");
        }
    }

    impl Conn {
        /// One UDP datagram from the client to `dport`; the sids it raised.
        fn udp(&mut self, dport: u16, data: &[u8]) -> Vec<u32> {
            self.datagram(CLIENT, (SERVER.0, dport), true, data)
        }

        /// A UDP datagram from the server's port `sport` back to the client.
        fn udp_reply(&mut self, sport: u16, data: &[u8]) -> Vec<u32> {
            self.datagram((SERVER.0, sport), CLIENT, false, data)
        }

        /// A UDP datagram from `src` to `dst` (`to_server`: client to server); the sids it
        /// raised.
        fn datagram(
            &mut self,
            src: (IpAddr, u16),
            dst: (IpAddr, u16),
            to_server: bool,
            data: &[u8],
        ) -> Vec<u32> {
            self.now += 1;
            let now = Timestamp(self.now * Timestamp::SECOND);
            let (key, a_to_b) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Udp, src, dst);
            self.flows.update(now, &key, a_to_b, None, 42 + data.len());
            let ip = Ip {
                src_bits: crate::decode::addr_bits(src.0).0,
                dst_bits: crate::decode::addr_bits(dst.0).0,
                v6: false,
                ttl: 64,
                proto: IpProto::Udp,
                total_len: 28 + data.len(),
                header_len: 20,
                packet: &[],
                fragment: None,
                l4: L4::Udp(crate::decode::Udp {
                    src_port: src.1,
                    dst_port: dst.1,
                    payload: data,
                }),
            };
            self.inspect(&key, &ip, to_server, now)
        }
    }

    const PROBE_REQ: &[u8] = b"POST /upload HTTP/1.1\r\nHost: probe.example\r\n\
        User-Agent: probe-agent\r\nCookie: probecookie=1\r\nConnection: probe-close\r\n\
        Referer: probe-referer\r\nAccept: probe/accept\r\nAccept-Encoding: probe-enc\r\n\
        Accept-Language: probe-lang\r\nContent-Type: probe/type\r\n\
        Content-Length: 9\r\n\r\nprobebody";

    /// The traffic that fills a buffer.
    #[derive(Clone, Copy)]
    enum Probe {
        Http,
        Tls,
        /// The server's ServerHello and Certificate, after the client's hello.
        TlsServer,
        /// A ClientHello offering the ALPN names `h2` and `probe-alpn`.
        TlsAlpn,
        /// The server's flight with a certificate that has subject alternative names.
        TlsSan,
        /// The server's response (gzip, chunked) to the probe request.
        HttpResponse,
        Dns,
        /// A DNS query, then the response of `dns::parser::tests::RESPONSE` (question a.io).
        DnsResponse,
    }

    /// The pattern a crafted flow puts in a buffer, and that flow: every kind has an arm (a new
    /// kind fails to compile here until its flow is written).
    fn probe(kind: BufferKind) -> (&'static str, Probe) {
        use BufferKind::*;
        match kind {
            Payload | Packet | Stream | HttpRequestBody => ("probebody", Probe::Http),
            HttpMethod => ("POST", Probe::Http),
            HttpUri | HttpUriRaw => ("/upload", Probe::Http),
            HttpHost | HttpHostRaw => ("probe.example", Probe::Http),
            HttpUserAgent => ("probe-agent", Probe::Http),
            HttpHeader | HttpHeaderRaw => ("User-Agent: probe-agent", Probe::Http),
            HttpCookie => ("probecookie=1", Probe::Http),
            HttpConnection => ("probe-close", Probe::Http),
            HttpProtocol => ("HTTP/1.1", Probe::Http),
            TlsSni => ("probe.example", Probe::Tls),
            HttpRequestLine => ("POST /upload HTTP/1.1", Probe::Http),
            HttpHeaderNames => ("|0d 0a|Host|0d 0a|User-Agent|0d 0a|", Probe::Http),
            HttpStart => ("POST /upload HTTP/1.1|0d 0a|Host: probe", Probe::Http),
            HttpContentType => ("probe/type", Probe::Http),
            HttpContentLen => ("9", Probe::Http),
            HttpReferer => ("probe-referer", Probe::Http),
            HttpAccept => ("probe/accept", Probe::Http),
            HttpAcceptEnc => ("probe-enc", Probe::Http),
            HttpAcceptLang => ("probe-lang", Probe::Http),
            HttpResponseLine => ("HTTP/1.1 302 Probe Found", Probe::HttpResponse),
            HttpStatCode => ("302", Probe::HttpResponse),
            HttpStatMsg => ("Probe Found", Probe::HttpResponse),
            HttpServer => ("probe-server", Probe::HttpResponse),
            HttpLocation => ("/probe-location", Probe::HttpResponse),
            FileData => ("MZprobe-file", Probe::HttpResponse),
            Ja3String => ("771,4865,0,,", Probe::Tls),
            Ja3Hash => ("1e7c622032b0cb79401b0f7be3793a1a", Probe::Tls),
            Ja4Hash => ("t12d010100_", Probe::Tls),
            Ja3sString => ("771,49199,65281", Probe::TlsServer),
            Ja3sHash => ("fbe78c619e7ea20046131294ad087f05", Probe::TlsServer),
            TlsCertSubject => ("O=probe GmbH, CN=probe.example", Probe::TlsServer),
            TlsCertIssuer => ("C=DE, O=probe GmbH", Probe::TlsServer),
            TlsCertSerial => ("0A:1B:2C:3D", Probe::TlsServer),
            TlsCertFingerprint => ("42:a7:5a:ea:78:f5", Probe::TlsServer),
            TlsCerts => ("probe GmbH", Probe::TlsServer),
            DnsQuery => ("probe.example", Probe::Dns),
            TlsRandom => (
                "|11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11|",
                Probe::Tls,
            ),
            TlsRandomTime => ("|11 11 11 11|", Probe::Tls),
            TlsRandomBytes => ("|11 11 11 11 11 11 11 11|", Probe::Tls),
            TlsAlpn => ("probe-alpn", Probe::TlsAlpn),
            TlsSubjectAltName => ("*.san.example", Probe::TlsSan),
            HttpRequestHeader => ("Connection: probe-close", Probe::Http),
            Http1RequestFrame => ("POST /upload HTTP/1.1|0d 0a|Host: probe", Probe::Http),
            HttpResponseHeader => ("Server: probe-server", Probe::HttpResponse),
            DnsQueriesRrname => ("probe.example", Probe::Dns),
            DnsAnswersRrname => ("a.io", Probe::DnsResponse),
            DnsAuthoritiesRrname => ("io", Probe::DnsResponse),
            DnsAdditionalsRrname | DnsResponseRrname => ("x.io", Probe::DnsResponse),
            // Integer keywords, not named as sticky buffers: `dns_integer_keywords`.
            DnsOpcode | DnsRcode | DnsRrtype => ("", Probe::DnsResponse),
            // Named by `app-layer-event` only: `dns_app_layer_events` (RESPONSE sets Z).
            AppLayerEvent => ("dns.z_flag_set", Probe::DnsResponse),
            // Named by `ssl_version` only: `ssl_version_of_each_side`.
            SslVersion => ("tls1.2", Probe::Tls),
            // Read inside `base64_decode`, never offered: `rules::tests::base64_decode_and_data`.
            Base64Data => ("", Probe::Http),
            // Read from the packet's own headers: probed with a crafted view instead.
            Ipv4Hdr | Ipv6Hdr | TcpHdr | UdpHdr | Icmpv4Hdr | Icmpv6Hdr => ("", Probe::Http),
        }
    }

    /// A header buffer rule against a packet view carrying that header: the sids it raised.
    fn run_header_probe(kind: BufferKind, opts: &str) -> Vec<u32> {
        use crate::rules::NoBuffers;
        let (proto, v6, rule_proto) = match kind {
            BufferKind::Ipv4Hdr | BufferKind::TcpHdr => (IpProto::Tcp, false, "tcp"),
            BufferKind::Ipv6Hdr | BufferKind::UdpHdr => (IpProto::Udp, true, "udp"),
            BufferKind::Icmpv4Hdr => (IpProto::Icmp, false, "icmp"),
            _ => (IpProto::Icmpv6, true, "icmpv6"),
        };
        let rule = format!("alert {rule_proto} any any -> any any ({opts} sid:1;)");
        let mut b = RuleSetBuilder::default();
        let rep = b.add_text("t", &rule);
        assert_eq!(rep.loaded, 1, "{rule}: {:?}", rep.skipped);
        let rules = b.build();
        let (src, dst) = if v6 {
            (
                "2001:db8::1".parse().unwrap(),
                "2001:db8::2".parse().unwrap(),
            )
        } else {
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
        };
        let view = PacketView {
            proto,
            src,
            dst,
            src_port: 1,
            dst_port: 2,
            ttl: 64,
            tcp_flags: (proto == IpProto::Tcp).then_some(0x18),
            icmp: None,
            fragbits: (false, false, false),
            ip_v6: v6,
            payload: b"",
            ip_header: b"HDRprobeIP",
            l4_header: b"HDRprobeL4",
            stream_size: None,
            flow_counts: None,
            stream_events: 0,
            flow: FlowView::default(),
            app_proto: None,
            events: 0,
            vlan: &[],
            flow_age: None,
        };
        let mut out = Vec::new();
        rules.inspect(
            &view,
            &NoBuffers,
            &mut FlowRuleState::new(),
            &mut ThresholdState::new(),
            Timestamp(0),
            &mut out,
        );
        out.iter().filter(|m| m.alert).map(|m| m.sid).collect()
    }

    /// The sids `rules` raise on the probe's flow (inline mode).
    fn run_probe(p: Probe, rules: &str) -> Vec<u32> {
        let mut c = Conn::new(rules, InspectionMode::Inline);
        match p {
            Probe::Http => {
                c.handshake();
                c.pkt(true, PA, 101, 501, PROBE_REQ)
            }
            Probe::Tls => {
                use crate::app::tls::parser::tests::{client_hello_msg, records};
                c.handshake();
                let hello = records(&client_hello_msg(b"probe.example"), 1000);
                c.pkt(true, PA, 101, 501, &hello)
            }
            Probe::HttpResponse => {
                use crate::app::http::response::tests::probe_response;
                c.handshake();
                let l = u32::try_from(PROBE_REQ.len()).unwrap();
                let mut got = c.pkt(true, PA, 101, 501, PROBE_REQ);
                let resp = probe_response(b"MZprobe-file");
                got.extend(c.pkt(false, PA, 501, 101 + l, &resp));
                got
            }
            Probe::TlsAlpn => {
                use crate::app::tls::parser::tests::{client_hello_alpn_msg, records};
                c.handshake();
                let hello = client_hello_alpn_msg(b"probe.example", &[b"h2", b"probe-alpn"]);
                c.pkt(true, PA, 101, 501, &records(&hello, 1000))
            }
            Probe::TlsSan => {
                use crate::app::tls::cert::tests::SAN_CERT;
                use crate::app::tls::parser::tests::{client_hello_msg, records, server_flight};
                c.handshake();
                let hello = records(&client_hello_msg(b"probe.example"), 1000);
                let lh = u32::try_from(hello.len()).unwrap();
                let mut got = c.pkt(true, PA, 101, 501, &hello);
                let flight = records(&server_flight(&[SAN_CERT]), 1000);
                got.extend(c.pkt(false, PA, 501, 101 + lh, &flight));
                got
            }
            Probe::TlsServer => {
                use crate::app::tls::cert::tests::PROBE_CERT;
                use crate::app::tls::parser::tests::{client_hello_msg, records, server_flight};
                c.handshake();
                let hello = records(&client_hello_msg(b"probe.example"), 1000);
                let lh = u32::try_from(hello.len()).unwrap();
                let mut got = c.pkt(true, PA, 101, 501, &hello);
                let flight = records(&server_flight(&[PROBE_CERT]), 1000);
                got.extend(c.pkt(false, PA, 501, 101 + lh, &flight));
                got
            }
            Probe::DnsResponse => {
                use crate::app::dns::parser::tests::RESPONSE;
                let mut got = c.udp(53, &RESPONSE[..12]);
                got.extend(c.udp_reply(53, RESPONSE));
                got
            }
            Probe::Dns => {
                let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
                for label in [&b"probe"[..], b"example"] {
                    q.push(u8::try_from(label.len()).unwrap());
                    q.extend_from_slice(label);
                }
                q.extend_from_slice(&[0, 0, 1, 0, 1]);
                c.udp(53, &q)
            }
        }
    }

    // The TLS handshake and HTTP response buffers: each fires on the flow that fills it, never
    // with a value one byte off, and the server's buffers never on a flow whose server sent
    // nothing; a server buffer is not offered on the client's packets (`flow:to_server` cannot
    // see it).
    #[test]
    fn server_and_handshake_buffers_fire_only_on_their_value_and_side() {
        use BufferKind::*;
        let kinds = [
            HttpResponseLine,
            HttpStatCode,
            HttpStatMsg,
            HttpServer,
            HttpLocation,
            FileData,
            Ja3String,
            Ja3Hash,
            Ja4Hash,
            Ja3sString,
            Ja3sHash,
            TlsCertSubject,
            TlsCertIssuer,
            TlsCertSerial,
            TlsCertFingerprint,
            TlsCerts,
        ];
        for kind in kinds {
            let (pattern, flow) = probe(kind);
            let name = kind.name();
            let rule =
                format!("alert tcp any any -> any any ({name}; content:\"{pattern}\"; sid:1;)");
            assert_eq!(run_probe(flow, &rule), vec![1], "{rule}");
            let mut off = pattern.to_string();
            let last = off.pop().unwrap();
            off.push(if last == '0' { '1' } else { '0' });
            let rule = format!("alert tcp any any -> any any ({name}; content:\"{off}\"; sid:1;)");
            assert!(run_probe(flow, &rule).is_empty(), "{rule}");
            if kind.side() == Side::ToClient {
                let rule =
                    format!("alert tcp any any -> any any ({name}; content:\"{pattern}\"; sid:1;)");
                assert!(run_probe(Probe::Tls, &rule).is_empty(), "{rule}");
                let rule = format!(
                    "alert tcp any any -> any any (flow:to_server; {name}; content:\"{pattern}\"; sid:1;)"
                );
                assert!(run_probe(flow, &rule).is_empty(), "{rule}");
            }
        }
    }

    // `tls.certs` is a multi-buffer: a chain's second certificate matches alone, and a pattern
    // across two certificates does not.
    #[test]
    fn tls_certs_each_certificate_alone() {
        use crate::app::tls::cert::tests::PROBE_CERT;
        use crate::app::tls::parser::tests::{client_hello_msg, records, server_flight};
        let second: &[u8] = b"SECONDCERT";
        let run = |pattern: &str| {
            let rule =
                format!("alert tcp any any -> any any (tls.certs; content:\"{pattern}\"; sid:1;)");
            let mut c = Conn::new(&rule, InspectionMode::Inline);
            c.handshake();
            let hello = records(&client_hello_msg(b"probe.example"), 1000);
            let lh = u32::try_from(hello.len()).unwrap();
            let mut got = c.pkt(true, PA, 101, 501, &hello);
            let flight = records(&server_flight(&[PROBE_CERT, second]), 1000);
            got.extend(c.pkt(false, PA, 501, 101 + lh, &flight));
            got
        };
        assert_eq!(run("SECONDCERT"), vec![1]);
        assert_eq!(run("probe GmbH"), vec![1]);
        // The leaf's last bytes followed by the second certificate's first.
        let tail = PROBE_CERT.last().unwrap();
        assert!(run(&format!("|{tail:02x}|SECOND")).is_empty());
    }

    // `tls.random*` and `tls.alpn` read the hello of the packet's direction: the client's
    // (random 0x11.., ALPN h2 and probe-alpn) towards the server, the server's (random 0x22..,
    // no ALPN) towards the client. `tls.alpn` and `tls.subjectaltname` are multi-buffers.
    #[test]
    fn tls_random_alpn_and_san_read_their_side() {
        use crate::app::tls::cert::tests::SAN_CERT;
        use crate::app::tls::parser::tests::{client_hello_alpn_msg, records, server_flight};
        let run = |opts: &str| {
            let rule = format!("alert tcp any any -> any any ({opts} sid:1;)");
            let mut c = Conn::new(&rule, InspectionMode::Inline);
            c.handshake();
            let hello = records(&client_hello_alpn_msg(b"p.example", &[b"h2", b"x"]), 1000);
            let lh = u32::try_from(hello.len()).unwrap();
            let client = c.pkt(true, PA, 101, 501, &hello);
            let flight = records(&server_flight(&[SAN_CERT]), 1000);
            let server = c.pkt(false, PA, 501, 101 + lh, &flight);
            (client, server)
        };
        let (one, none) = (vec![1], Vec::<u32>::new());
        assert_eq!(
            run("tls.random; content:\"|11|\"; bsize:32;"),
            (one.clone(), none.clone())
        );
        assert_eq!(
            run("tls.random; content:\"|22|\"; bsize:32;"),
            (none.clone(), one.clone())
        );
        assert_eq!(
            run("tls.random_time; bsize:4; content:\"|22 22 22 22|\";"),
            (none.clone(), one.clone())
        );
        assert_eq!(
            run("tls.random_bytes; bsize:28; content:\"|11|\";"),
            (one.clone(), none.clone())
        );
        assert_eq!(
            run("tls.alpn; content:\"x\"; startswith; endswith;"),
            (one.clone(), none.clone())
        );
        assert_eq!(
            run("tls.alpn; content:\"h2x\";"),
            (none.clone(), none.clone())
        );
        assert_eq!(
            run("tls.subjectaltname; content:\"192.0.2.7\"; startswith;"),
            (none.clone(), one.clone())
        );
        assert_eq!(
            run("tls.subjectaltname; content:\"san.example*\";"),
            (none.clone(), none)
        );
    }

    // `http.request_header` and `http.response_header` hold one header each; `http.header.raw`
    // is the head as sent, Cookie and Set-Cookie included (unlike `http.header`).
    #[test]
    fn http_header_multi_and_raw() {
        use crate::app::http::response::tests::probe_response;
        let run = |opts: &str| {
            let rule = format!("alert tcp any any -> any any ({opts} sid:1;)");
            let mut c = Conn::new(&rule, InspectionMode::Inline);
            c.handshake();
            let l = u32::try_from(PROBE_REQ.len()).unwrap();
            let req = c.pkt(true, PA, 101, 501, PROBE_REQ);
            let resp = c.pkt(false, PA, 501, 101 + l, &probe_response(b"x"));
            (req, resp)
        };
        let (one, none) = (vec![1], Vec::<u32>::new());
        let hdr = "http.request_header; content:\"Cookie: probecookie=1\"; startswith; endswith;";
        assert_eq!(run(hdr), (one.clone(), none.clone()));
        let across = "http.request_header; content:\"probe-agent|0d 0a|Cookie\";";
        assert_eq!(run(across), (none.clone(), none.clone()));
        let resp = "http.response_header; content:\"Set-Cookie: probe=set\"; endswith;";
        assert_eq!(run(resp), (none.clone(), one.clone()));
        let raw = "http.header.raw; content:\"Cookie: probecookie=1|0d 0a|\";";
        assert_eq!(run(raw), (one.clone(), none.clone()));
        assert_eq!(
            run("http.header; content:\"Cookie\";"),
            (none.clone(), none.clone())
        );
        assert_eq!(
            run("content:\"Set-Cookie: probe\"; http_raw_header;"),
            (none, one)
        );
    }

    // DNS responses are transactions of their own: `dns.rcode`, `dns.opcode` read the message
    // of the packet's direction, `dns.rrtype` the question types of a query and the answer
    // types of a response; the section names are multi-buffers; `dns.response.rrname` only
    // reads responses.
    #[test]
    fn dns_integer_keywords_and_sections() {
        use crate::app::dns::parser::tests::RESPONSE;
        // RESPONSE's question as a query: header (id 0x1234, RD, one question) and "a.io" A.
        let mut query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
        query.extend_from_slice(b"\x01a\x02io\x00\x00\x1c\x00\x01");
        let run = |opts: &str| {
            let rule = format!("alert dns any any -> any any ({opts} sid:1;)");
            let mut c = Conn::new(&rule, InspectionMode::Inline);
            (c.udp(53, &query), c.udp_reply(53, RESPONSE))
        };
        let (one, none) = (vec![1], Vec::<u32>::new());
        let both = (one.clone(), one.clone());
        assert_eq!(run("dns.rcode:3;"), (none.clone(), one.clone()));
        assert_eq!(run("dns.rcode:!3;"), (one.clone(), none.clone()));
        assert_eq!(run("dns.opcode:0;"), both.clone());
        assert_eq!(run("dns.opcode:!0;"), (none.clone(), none.clone()));
        // The query asks AAAA (28), the response answers A (1).
        assert_eq!(run("dns.rrtype:28;"), (one.clone(), none.clone()));
        assert_eq!(run("dns.rrtype:1;"), (none.clone(), one.clone()));
        assert_eq!(run("dns.rrtype:>1;"), (one.clone(), none.clone()));
        assert_eq!(run("dns.queries.rrname; content:\"a.io\"; bsize:4;"), both);
        assert_eq!(
            run("dns.query; content:\"a.io\";"),
            (one.clone(), none.clone())
        );
        let add = "dns.additionals.rrname; content:\"x.io\"; startswith; endswith;";
        assert_eq!(run(add), (none.clone(), one.clone()));
        assert_eq!(
            run("dns.authorities.rrname; content:\"io\"; startswith; endswith;"),
            (none.clone(), one.clone())
        );
        assert_eq!(
            run("dns.answers.rrname; content:\"x.io\";"),
            (none.clone(), none.clone())
        );
        assert_eq!(
            run("dns.response.rrname; content:\"x.io\";"),
            (none.clone(), one.clone())
        );
        assert_eq!(
            run("dns.response.rrname; content:\"a.io\"; startswith;"),
            (none.clone(), one)
        );
        // The names of two records are not one buffer.
        assert_eq!(
            run("dns.response.rrname; content:\"a.ioio\";"),
            (none.clone(), none)
        );
    }

    // `ssl_version` reads the client's hello version on its packets and the server's on its
    // own; `!` matches a known version outside the list; an unknown version matches neither.
    // Client authentication: the `tls.cert_*` and `tls.certs` buffers towards the server read
    // the client's certificate, on the client's packet that carries it; towards the client,
    // the server's (here the SAN certificate, `O=probe GmbH, CN=san.example`).
    #[test]
    fn client_certificate_buffers() {
        use crate::app::tls::cert::tests::SAN_CERT;
        use crate::app::tls::parser::tests::{
            client_certificate_msg, client_hello_msg, records, server_flight,
        };
        let rules = "alert tls any any -> any any (tls.cert_subject; content:\"CN=probe.example\"; sid:1;)\n\
            alert tls any any -> any any (tls.cert_issuer; content:\"CN=probe.example\"; \
              tls.cert_serial; content:\"0A:1B:2C:3D\"; sid:2;)\n\
            alert tls any any -> any any (flow:to_server; tls.certs; content:\"probe GmbH\"; sid:3;)\n\
            alert tls any any -> any any (tls.cert_fingerprint; content:\":\"; sid:4;)\n\
            alert tls any any -> any any (flow:to_client; tls.cert_subject; content:\"CN=san.example\"; sid:5;)";
        let mut c = Conn::new(rules, InspectionMode::Inline);
        c.handshake();
        let hello = records(&client_hello_msg(b"auth.example"), 1000);
        let lh = u32::try_from(hello.len()).unwrap();
        assert!(c.pkt(true, PA, 101, 501, &hello).is_empty());
        let flight = records(&server_flight(&[SAN_CERT]), 1000);
        let lf = u32::try_from(flight.len()).unwrap();
        // The server's certificate (`CN=san.example`).
        assert_eq!(c.pkt(false, PA, 501, 101 + lh, &flight), [4, 5]);
        let cert = records(&client_certificate_msg(), 1000);
        assert_eq!(c.pkt(true, PA, 101 + lh, 501 + lf, &cert), [1, 2, 3, 4]);
    }

    // An SSL 2.0-format ClientHello gives the client's side its version (`ssl_version`), and no
    // JA3.
    #[test]
    fn sslv2_hello_version() {
        use crate::app::tls::parser::tests::SSLV2_HELLO;
        let rules = "alert tcp any any -> any any (ssl_version:tls1.0; sid:1;)\n\
            alert tcp any any -> any any (ssl_version:!sslv3; sid:2;)\n\
            alert tls any any -> any any (ja3.hash; bsize:0; sid:3;)\n\
            alert tcp any any -> any any (ssl_version:sslv2; sid:4;)";
        let mut c = Conn::new(rules, InspectionMode::Inline);
        c.handshake();
        assert_eq!(c.pkt(true, PA, 101, 501, SSLV2_HELLO), [1, 2]);
    }

    #[test]
    fn ssl_version_of_each_side() {
        use crate::app::tls::parser::tests::{client_hello_msg, records, server_flight};
        let run = |client: [u8; 2], opts: &str| {
            let rule = format!("alert tcp any any -> any any ({opts} sid:1;)");
            let mut c = Conn::new(&rule, InspectionMode::Inline);
            c.handshake();
            let mut msg = client_hello_msg(b"probe.example");
            msg[4..6].copy_from_slice(&client);
            let hello = records(&msg, 1000);
            let lh = u32::try_from(hello.len()).unwrap();
            let up = c.pkt(true, PA, 101, 501, &hello);
            let flight = records(&server_flight(&[]), 1000);
            (up, c.pkt(false, PA, 501, 101 + lh, &flight))
        };
        let (one, none) = (vec![1], Vec::<u32>::new());
        let (tls10, tls12, odd) = ([3, 1], [3, 3], [9, 9]);
        assert_eq!(
            run(tls12, "ssl_version:tls1.2;"),
            (one.clone(), one.clone())
        );
        assert_eq!(
            run(tls10, "ssl_version:tls1.2;"),
            (none.clone(), one.clone())
        );
        assert_eq!(
            run(tls10, "ssl_version:tls1.0,TLS1.1;"),
            (one.clone(), none.clone())
        );
        assert_eq!(
            run(tls10, "ssl_version:!tls1.0;"),
            (none.clone(), one.clone())
        );
        assert_eq!(
            run(tls10, "ssl_version:!sslv3, tls1.2;"),
            (one.clone(), none.clone())
        );
        assert_eq!(run(odd, "ssl_version:!sslv3;"), (none.clone(), one.clone()));
        assert_eq!(run(odd, "ssl_version:tls1.2;"), (none.clone(), one));
        for bad in [
            "ssl_version:tls9;",
            "ssl_version:tls1.0,tls1.0;",
            "ssl_version:!;",
        ] {
            let mut b = RuleSetBuilder::default();
            let rep = b.add_text(
                "t.rules",
                &format!("alert tcp any any -> any any ({bad} sid:1;)"),
            );
            assert_eq!(rep.loaded, 0, "{bad}");
        }
    }

    // `app-layer-event:dns.*` matches the events of the packet's own message: the Z flag
    // (RESPONSE sets it, the query not), a response sent to the server, a query sent to the
    // client; the name is matched whole, and an event svm never raises does not load.
    #[test]
    fn dns_app_layer_events() {
        use crate::app::dns::parser::tests::RESPONSE;
        let mut query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
        query.extend_from_slice(b"\x01a\x02io\x00\x00\x1c\x00\x01");
        let run = |event: &str, up: &[u8], down: &[u8]| {
            let rule = format!("alert dns any any -> any any (app-layer-event:{event}; sid:1;)");
            let mut c = Conn::new(&rule, InspectionMode::Inline);
            (c.udp(53, up), c.udp_reply(53, down))
        };
        let (one, none) = (vec![1], Vec::<u32>::new());
        let z = "dns.z_flag_set";
        assert_eq!(run(z, &query, RESPONSE), (none.clone(), one.clone()));
        let mut zq = query.clone();
        zq[3] |= 0x40;
        assert_eq!(run(z, &zq, &query), (one.clone(), none.clone()));
        let (nreq, nresp) = ("dns.not_a_request", "dns.not_a_response");
        assert_eq!(run(nreq, &query, RESPONSE), (none.clone(), none.clone()));
        assert_eq!(run(nreq, RESPONSE, RESPONSE), (one.clone(), none.clone()));
        assert_eq!(run(nresp, &query, &query), (none.clone(), one));
        assert_eq!(run("dns.z_flag", &zq, RESPONSE), (none.clone(), none));
        let mut b = RuleSetBuilder::default();
        let rep = b.add_text(
            "t.rules",
            "alert http any any -> any any (app-layer-event:http.invalid_transfer_encoding_value_in_request; sid:2;)\n",
        );
        assert_eq!(rep.skipped.len(), 1, "{:?}", rep.skipped);
    }

    // Every buffer a rule can name (sticky keyword, legacy content modifier, pcre flag) is
    // either filled, and a rule on it fires on a flow that fills it, or refused at load with
    // "buffer NAME not implemented": no rule loads that can never fire. A buffer the parser
    // learns to name is covered here without a change to this test.
    #[test]
    fn every_buffer_a_rule_names_is_filled_or_refused() {
        let esc = |p: &str| p.replace('/', "\\/").replace('.', "\\.");
        // What names the buffer, the buffer, and the rule options reading a pattern from it.
        type Render = Box<dyn Fn(&str) -> String>;
        let mut selectors: Vec<(String, BufferKind, Render)> = Vec::new();
        for &(name, kind) in crate::rules::parser::STICKY_BUFFERS {
            selectors.push((
                name.into(),
                kind,
                Box::new(move |p| format!("{name}; content:\"{p}\";")),
            ));
        }
        for &(name, kind) in crate::rules::parser::LEGACY_BUFFERS {
            selectors.push((
                name.into(),
                kind,
                Box::new(move |p| format!("content:\"{p}\"; {name};")),
            ));
        }
        for flag in ('A'..='Z').chain('a'..='z') {
            let probe = format!("\"/x/{flag}\"");
            if let Ok(t) = crate::rules::pcre::translate(&probe)
                && let Some(kind) = t.buffer
            {
                selectors.push((
                    format!("pcre /{flag}"),
                    kind,
                    Box::new(move |p| format!("pcre:\"/{}/{flag}\";", esc(p))),
                ));
            }
        }
        assert!(selectors.len() > 60, "{} selectors", selectors.len());
        let (mut fired, mut refused) = (0, 0);
        for (what, kind, opts) in &selectors {
            let filled = buffer_filled(*kind);
            if kind.is_header() {
                assert!(filled, "{what}");
                let pat = if matches!(kind, BufferKind::Ipv4Hdr | BufferKind::Ipv6Hdr) {
                    "probeIP"
                } else {
                    "probeL4"
                };
                assert_eq!(run_header_probe(*kind, &opts(pat)), vec![1], "{what}");
                fired += 1;
                continue;
            }
            let (pattern, flow) = if filled {
                probe(*kind)
            } else {
                ("probe", Probe::Http)
            };
            let proto = if matches!(flow, Probe::Dns | Probe::DnsResponse) {
                "udp"
            } else {
                "tcp"
            };
            let rule = format!(
                "alert {proto} any any -> any any ({} sid:1;)",
                opts(pattern)
            );
            let mut b = RuleSetBuilder::default();
            let rep = b.add_text("t", &rule);
            if filled {
                assert_eq!(rep.loaded, 1, "{what}: {rule}: {:?}", rep.skipped);
                let got = run_probe(flow, &rule);
                assert_eq!(got, vec![1], "{what} ({kind:?}) did not fire: {rule}");
                fired += 1;
            } else {
                assert_eq!(rep.loaded, 0, "{what} loads but is never filled: {rule}");
                let e = &rep.skipped[0];
                assert_eq!(e.keyword, kind.name(), "{what}");
                assert_eq!(
                    e.kind,
                    crate::rules::RuleErrorKind::Unsupported(format!(
                        "buffer {} not implemented",
                        kind.name()
                    )),
                    "{what}"
                );
                refused += 1;
            }
        }
        assert!(fired > 60, "{fired} fired, {refused} refused");
    }

    // The buffers `buffer_filled` says svm fills: every kind but `base64_data` (what a rule's
    // `base64_decode` decoded: read inside that step, no packet offers it). Pins the set against a change
    // to the app buffers' layout: a buffer that stops being filled fails here by name.
    #[test]
    fn buffer_filled_is_every_kind_but_base64_data() {
        let unfilled: Vec<&str> = BufferKind::ALL
            .into_iter()
            .filter(|k| !buffer_filled(*k))
            .map(BufferKind::name)
            .collect();
        assert_eq!(unfilled, ["base64_data"]);
        assert!(buffer_filled(BufferKind::TlsSni));
    }
}
