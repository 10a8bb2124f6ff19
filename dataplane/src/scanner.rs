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

use crate::app::{AppBuffers, AppProto as App, AppState};
use crate::decode::{Ip, L4, TcpFlags};
use crate::flow::{Flow, TcpState};
use crate::rules::{
    AppProto, BufferKind, Buffers, FlowRuleState, FlowView, PacketView, RuleMatch, RuleSet,
    ThresholdState,
};
use crate::stream::{Segment, StreamConfig, StreamMemcap, TcpStream};
use crate::time::Timestamp;

/// Activity scanner settings of a worker.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScannerConfig {
    /// TCP reassembly (`stream.midstream`, `stream.reassembly.depth`).
    pub stream: StreamConfig,
    /// Suricata's `--simulate-ips`: `drop`/`reject` rules drop the packet (and only it), whatever
    /// the policy's action; used by replay for conformance.
    pub simulate_ips: bool,
    /// Suricata's `stream.async-oneside`: a capture may hold one direction only. A client ACK
    /// after its SYN with no SYN/ACK seen completes the handshake for `flow:established`, as
    /// Suricata's async mode does.
    pub async_oneside: bool,
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
    tx_matched: (u64, Vec<u32>),
    /// Established by a one-sided handshake ([`ScannerConfig::async_oneside`]).
    async_established: bool,
}

/// App-layer fields of an alert, for EVE (`app_proto`, `http`, `tls`, `dns`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppFields {
    /// EVE `app_proto`.
    pub app_proto: &'static str,
    /// `http.hostname`.
    pub http_hostname: Option<String>,
    /// `http.url`.
    pub http_url: Option<String>,
    /// `http.http_user_agent`.
    pub http_user_agent: Option<String>,
    /// `http.http_method`.
    pub http_method: Option<String>,
    /// `tls.sni`.
    pub tls_sni: Option<String>,
    /// `dns.query` (first name).
    pub dns_query: Option<String>,
}

impl AppFields {
    fn of(b: &AppBuffers<'_>) -> Option<AppFields> {
        if b.proto == App::Unknown {
            return None;
        }
        let s = |v: Option<&[u8]>| v.map(|x| String::from_utf8_lossy(x).into_owned());
        Some(AppFields {
            app_proto: b.proto.name(),
            http_hostname: s(b.http_host),
            http_url: s(b.http_uri_raw),
            http_user_agent: s(b.http_user_agent),
            http_method: s(b.http_method),
            tls_sni: s(b.tls_sni),
            dns_query: s(b.dns_query()),
        })
    }
}

/// The buffers one packet offers to the rules.
#[derive(Debug, Default)]
pub struct ScanBuffers<'a> {
    /// New in-order stream data of the packet's direction.
    pub stream: Option<&'a [u8]>,
    /// The transaction the packet completed.
    pub app: Option<AppBuffers<'a>>,
}

impl Buffers for ScanBuffers<'_> {
    fn get(&self, kind: BufferKind) -> Option<&[u8]> {
        if kind == BufferKind::Stream {
            return self.stream;
        }
        let a = self.app.as_ref()?;
        match kind {
            BufferKind::HttpUri => a.http_uri,
            BufferKind::HttpUriRaw => a.http_uri_raw,
            BufferKind::HttpMethod => a.http_method,
            BufferKind::HttpHost => a.http_host,
            BufferKind::HttpHostRaw => a.http_host_raw,
            BufferKind::HttpUserAgent => a.http_user_agent,
            BufferKind::HttpHeader | BufferKind::HttpHeaderRaw => a.http_header,
            BufferKind::HttpCookie => a.http_cookie,
            BufferKind::HttpConnection => a.http_connection,
            BufferKind::HttpRequestBody => a.http_request_body,
            BufferKind::HttpProtocol => a.http_protocol,
            BufferKind::TlsSni => a.tls_sni,
            BufferKind::DnsQuery => a.dns_query(),
            _ => None,
        }
    }
}

fn rule_app(p: App) -> Option<AppProto> {
    match p {
        App::Http => Some(AppProto::Http),
        App::Tls => Some(AppProto::Tls),
        App::Dns => Some(AppProto::Dns),
        App::Unknown => None,
    }
}

/// Whether the flow counts as established for `flow:established` (Suricata's rules: TCP after the
/// handshake, or picked up midstream with `stream.midstream`; other protocols once both
/// directions were seen).
pub fn established(f: &Flow, midstream: bool) -> bool {
    match f.tcp {
        Some(TcpState::Established | TcpState::Closing | TcpState::Closed) => {
            !f.midstream || midstream
        }
        Some(_) => false,
        None => f.pkts_to_server > 0 && f.pkts_to_client > 0,
    }
}

/// Keep only the first match of each transaction rule (a rule inspecting an app-layer buffer)
/// on transaction `id`, as Suricata's per-transaction detection state does.
fn once_per_tx(
    rules: &RuleSet,
    seen: &mut (u64, Vec<u32>),
    id: u64,
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
            if seen.1.contains(&m.rule_index) {
                out.remove(i);
                continue;
            }
            seen.1.push(m.rule_index);
        }
        i += 1;
    }
}

/// Inspect one packet of a tracked flow; matches go to `out`, the alert's app fields are
/// returned when the packet produced matches.
#[allow(clippy::too_many_arguments)]
pub fn inspect(
    rules: &RuleSet,
    cfg: &ScannerConfig,
    memcap: &StreamMemcap,
    thresholds: &mut ThresholdState,
    ip: &Ip<'_>,
    flow: &mut Flow,
    to_server: bool,
    now: Timestamp,
    out: &mut Vec<RuleMatch>,
) -> Option<AppFields> {
    let async_ack = cfg.async_oneside
        && to_server
        && flow.tcp == Some(TcpState::SynSent)
        && matches!(&ip.l4, L4::Tcp(t) if t.flags.has(TcpFlags::ACK) && !t.flags.has(TcpFlags::SYN));
    let mut est = established(flow, cfg.stream.midstream);
    let scan = flow.scan.get_or_insert_with(Box::default);
    scan.async_established |= async_ack;
    est |= scan.async_established && flow.tcp == Some(TcpState::SynSent);
    let (ports, tcp_flags, icmp, payload): (_, _, _, &[u8]) = match &ip.l4 {
        L4::Tcp(t) => ((t.src_port, t.dst_port), Some(t.flags.0), None, t.payload),
        L4::Udp(u) => ((u.src_port, u.dst_port), None, None, u.payload),
        L4::Icmp(i) | L4::Icmpv6(i) => (
            (0, 0),
            None,
            Some((i.icmp_type, i.code, i.ident, i.seq)),
            i.payload,
        ),
        L4::Fragment => ((0, 0), None, None, &[]),
        L4::Other(p) => ((0, 0), None, None, p),
    };
    let mut tx: Option<u64> = None;
    let mut stream_new: Option<(u64, u64)> = None;
    let idx = usize::from(!to_server);
    match &ip.l4 {
        L4::Tcp(t) => {
            let st = scan
                .stream
                .get_or_insert_with(|| TcpStream::new(cfg.stream, memcap));
            st.insert(to_server, Segment::from(t));
            let dir = st.direction(to_server);
            let up = scan.app.on_stream(to_server, dir, ports);
            if up.new_txs > 0 {
                tx = up.tx_ids().last();
            }
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
            let up = scan.app.on_udp(to_server, u.payload, ports);
            if up.new_txs > 0 {
                tx = up.tx_ids().last();
            }
        }
        _ => {}
    }
    let stream = match (&scan.stream, stream_new) {
        (Some(st), Some((since, _))) => Some(st.direction(to_server).new_data_since(since).1),
        _ => None,
    };
    let app = tx.and_then(|id| scan.app.tx(id));
    let v6 = matches!(ip.src, core::net::IpAddr::V6(_));
    let fragbits = match (v6, ip.packet.get(6)) {
        (false, Some(b)) => (b & 0x80 != 0, b & 0x40 != 0, b & 0x20 != 0),
        _ => (false, false, false),
    };
    let view = PacketView {
        proto: ip.proto,
        src: ip.src,
        dst: ip.dst,
        src_port: ports.0,
        dst_port: ports.1,
        ttl: ip.ttl,
        tcp_flags,
        icmp,
        fragbits,
        ip_v6: v6,
        payload,
        flow: FlowView {
            has_flow: true,
            established: est,
            to_server,
        },
        app_proto: rule_app(scan.app.proto()),
    };
    let bufs = ScanBuffers { stream, app };
    let before = out.len();
    rules.inspect(&view, &bufs, &mut scan.rules, thresholds, now, out);
    if let Some(id) = tx {
        once_per_tx(rules, &mut scan.tx_matched, id, out, before);
    }
    if out.len() == before {
        return None;
    }
    app.and_then(|a| AppFields::of(&a)).or_else(|| {
        let b = scan.app.buffers();
        if b.proto == App::Unknown {
            rule_app(scan.app.proto()).map(|_| AppFields {
                app_proto: scan.app.proto().name(),
                ..AppFields::default()
            })
        } else {
            AppFields::of(&b)
        }
    })
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
            once_per_tx(&rules, &mut seen, tx, &mut out, 1);
            assert_eq!(sids(&out), want, "tx {tx}");
        }
    }
}
