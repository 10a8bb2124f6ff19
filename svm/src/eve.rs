//! EVE JSON output, Suricata-compatible: one JSON object per line, the common header keys in
//! Suricata's order (`timestamp`, `flow_id`, `pcap_cnt`, `event_type`, `vlan`, `src_ip`,
//! `src_port`, `dest_ip`, `dest_port`, `proto`), alerts keep EVE's `alert` object, and our
//! additions live inside it (`engine`, `response`, `would_block`, ...). Block-table changes are
//! `event_type: "block"` records.
//!
//! Every alert has a `flow_id`: a packet outside the flow table (a fragment, an ARP message, a
//! packet that opened no flow) gets one derived from its VLAN scope, addresses, protocol and
//! ports ([`packet_flow_id`]), so the alerts of one episode correlate as a flow's do. An alert on
//! an ARP message has `proto: "ARP"`.

use std::io::Write;

use dataplane::app::dns::eve::DnsEve;
use dataplane::app::http::eve::HttpEve;
use dataplane::app::quic::eve::QuicEve;
use dataplane::app::tls::eve::TlsEve;
use dataplane::event::{Alert, BlockChange, Event, EventKind, PacketRef};
use dataplane::time::Timestamp;
use serde::Serialize;

/// Format a timestamp as EVE does: `2026-01-01T00:00:00.000000+0000` (UTC, microseconds).
pub fn format_ts(ts: Timestamp) -> String {
    let secs = i64::try_from(ts.micros() / Timestamp::SECOND).unwrap_or(i64::MAX);
    let micros = ts.micros() % Timestamp::SECOND;
    let (y, m, d, hh, mm, ss) = civil(secs);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{micros:06}+0000")
}

/// UTC calendar fields of a Unix time (Howard Hinnant's days-from-civil inverse).
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let small = |v: i64| u32::try_from(v).unwrap_or(0);
    (
        y,
        small(m),
        small(d),
        small(rem / 3600),
        small(rem % 3600 / 60),
        small(rem % 60),
    )
}

#[derive(Serialize)]
struct Header<'a> {
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_id: Option<u64>,
    /// The interface (or DPDK port) the packet came in on; Suricata writes it after `flow_id`
    /// for live capture only.
    #[serde(skip_serializing_if = "Option::is_none")]
    in_iface: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pcap_cnt: Option<u64>,
    event_type: &'static str,
    #[serde(skip_serializing_if = "<[u16]>::is_empty")]
    vlan: &'a [u16],
    src_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proto: Option<String>,
}

#[derive(Serialize)]
struct AlertBody<'a> {
    action: &'static str,
    gid: u32,
    signature_id: u32,
    rev: u32,
    signature: &'a str,
    category: &'a str,
    severity: u8,
    engine: &'static str,
    response: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    would_block: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    excluded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    block_minutes: Option<u16>,
    /// Why the policy's block was not made (`unverified_source`, `spoofed_source`,
    /// `never_block`).
    #[serde(skip_serializing_if = "Option::is_none")]
    block_skipped: Option<&'static str>,
}

#[derive(Serialize)]
struct AlertRecord<'a> {
    #[serde(flatten)]
    header: Header<'a>,
    alert: AlertBody<'a>,
    // Suricata writes the app-layer objects, then `app_proto`, then `direction`.
    // Each protocol's object is built in its folder of the rule engine (`app/<proto>/eve.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<&'a HttpEve>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<&'a TlsEve>,
    /// A QUIC Initial's server name (EVE `quic.sni`).
    #[serde(skip_serializing_if = "Option::is_none")]
    quic: Option<&'a QuicEve>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<&'a DnsEve>,
    /// The list entry of a web address scan alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    web_address: Option<WebAddressBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'static str>,
    /// The flow's protocol before it changed protocol (`http` for an upgrade to HTTP/2).
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto_orig: Option<&'static str>,
    /// `to_server` or `to_client`, for a packet of a tracked flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<&'static str>,
    /// Signature rule alerts: the packet's final action (Suricata's `verdict`).
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<VerdictBody>,
}

/// EVE `verdict` of a rule alert.
#[derive(Serialize)]
struct VerdictBody {
    action: &'static str,
}

/// EVE `web_address`: which list and entry matched, and what the policy said to do.
#[derive(Serialize)]
struct WebAddressBody<'a> {
    address: &'a str,
    list: &'a str,
    category: &'a str,
    entry: &'a str,
    kind: &'a str,
    list_version: &'a str,
    action: &'a str,
}

#[derive(Serialize)]
struct BlockBody<'a> {
    action: &'static str,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<&'static str>,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hits: Option<u64>,
}

#[derive(Serialize)]
struct BlockRecord<'a> {
    #[serde(flatten)]
    header: Header<'a>,
    block: BlockBody<'a>,
}

fn header<'a>(
    ev: &Event,
    event_type: &'static str,
    vlan: &'a [u16],
    p: Option<&PacketRef>,
) -> Header<'a> {
    Header {
        timestamp: format_ts(ev.ts),
        flow_id: p.map(|p| p.flow_id.unwrap_or_else(|| packet_flow_id(p))),
        in_iface: None,
        pcap_cnt: ev.pcap_cnt,
        event_type,
        vlan,
        src_ip: p.map(|p| p.src_ip.to_string()).unwrap_or_default(),
        src_port: p.and_then(|p| p.ports).map(|(s, _)| s),
        dest_ip: p.map(|p| p.dst_ip.to_string()),
        dest_port: p.and_then(|p| p.ports).map(|(_, d)| d),
        proto: p.map(|p| {
            p.proto
                .map_or_else(|| "ARP".to_owned(), |x| x.eve_name().into_owned())
        }),
    }
}

/// The `flow_id` of a packet the flow table did not track: FNV-1a over its VLAN scope,
/// addresses, protocol and ports, cut to 51 bits as flow ids are (JSON consumers keep them
/// exact). The same packet facts give the same id on every run.
pub fn packet_flow_id(p: &PacketRef) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for id in p.scope.ids() {
        eat(&id.to_be_bytes());
    }
    for a in [p.src_ip, p.dst_ip] {
        match a {
            std::net::IpAddr::V4(v4) => eat(&v4.octets()),
            std::net::IpAddr::V6(v6) => eat(&v6.octets()),
        }
    }
    eat(p
        .proto
        .map(|x| x.eve_name())
        .as_deref()
        .unwrap_or("ARP")
        .as_bytes());
    if let Some((s, d)) = p.ports {
        eat(&s.to_be_bytes());
        eat(&d.to_be_bytes());
    }
    h & ((1 << 51) - 1)
}

/// EVE `alert.action`: `blocked` when the SVM stopped the traffic, `allowed` otherwise.
fn alert_action(a: &Alert) -> &'static str {
    if a.enforced { "blocked" } else { "allowed" }
}

/// Serialise one event as an EVE JSON object (no trailing newline).
pub fn to_json(ev: &Event) -> serde_json::Result<String> {
    match &ev.kind {
        EventKind::Alert(a) => {
            let vlan = a.packet.scope;
            let mut header = header(ev, "alert", vlan.ids(), Some(&a.packet));
            header.in_iface = a.in_iface.as_deref();
            let rec = AlertRecord {
                header,
                alert: AlertBody {
                    action: alert_action(a),
                    gid: a.gid,
                    signature_id: a.sid,
                    rev: a.rev,
                    signature: &a.signature,
                    category: &a.category,
                    severity: a.severity,
                    engine: a.engine.name(),
                    response: a.response.name(),
                    would_block: a.monitoring
                        && (a.block_minutes.is_some()
                            || a.web_address.as_ref().is_some_and(|w| w.action == "block")),
                    excluded: a.excluded,
                    block_minutes: a.block_minutes,
                    block_skipped: a.block_skipped.map(|b| b.name()),
                },
                app_proto: a.app.as_ref().map(|x| x.app_proto),
                app_proto_orig: a.app.as_ref().and_then(|x| x.app_proto_orig),
                direction: a
                    .packet
                    .to_server
                    .map(|t| if t { "to_server" } else { "to_client" }),
                http: a.app.as_ref().and_then(|x| x.http.as_ref()),
                tls: a.app.as_ref().and_then(|x| x.tls.as_ref()),
                quic: a.app.as_ref().and_then(|x| x.quic.as_ref()),
                dns: a.app.as_ref().and_then(|x| x.dns.as_ref()),
                verdict: a.verdict.map(|v| VerdictBody { action: v.name() }),
                web_address: a.web_address.as_deref().map(|w| WebAddressBody {
                    address: &w.address,
                    list: &w.list,
                    category: &w.category,
                    entry: &w.entry,
                    kind: w.kind,
                    list_version: &w.version,
                    action: w.action,
                }),
            };
            serde_json::to_string(&rec)
        }
        EventKind::Block { key, change } => {
            let mut h = header(ev, "block", key.scope.ids(), None);
            h.src_ip = key.addr.to_string();
            let body = match change {
                BlockChange::Added {
                    engine,
                    reason,
                    sid,
                    expires,
                    duration_secs,
                    flow_id,
                } => {
                    h.flow_id = *flow_id;
                    BlockBody {
                        action: "add",
                        scope: key.scope.to_string(),
                        engine: Some(engine.name()),
                        reason,
                        signature_id: *sid,
                        duration: Some(*duration_secs),
                        expires: Some(format_ts(*expires)),
                        created: None,
                        hits: None,
                    }
                }
                BlockChange::Refused {
                    engine,
                    reason,
                    sid,
                    duration_secs,
                } => BlockBody {
                    action: "refused",
                    scope: key.scope.to_string(),
                    engine: Some(engine.name()),
                    reason,
                    signature_id: *sid,
                    duration: Some(*duration_secs),
                    expires: None,
                    created: None,
                    hits: None,
                },
                BlockChange::Removed {
                    reason,
                    hits,
                    created,
                } => BlockBody {
                    action: "remove",
                    scope: key.scope.to_string(),
                    engine: None,
                    reason: reason.name(),
                    signature_id: None,
                    duration: None,
                    expires: None,
                    created: Some(format_ts(*created)),
                    hits: Some(*hits),
                },
            };
            serde_json::to_string(&BlockRecord {
                header: h,
                block: body,
            })
        }
        EventKind::Isolation { vm, change } => crate::isolation_eve::to_json(ev, vm, change),
    }
}

/// Writes events as EVE JSON lines.
pub struct EveWriter {
    out: Box<dyn Write>,
    // `,"pcap_filename":"..."}`: what closes every record of a replay. Suricata reading a
    // capture has no interface (no `in_iface`) and names the capture in this last key.
    tail: Option<String>,
    /// Records written.
    pub written: u64,
}

impl std::fmt::Debug for EveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EveWriter")
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl EveWriter {
    /// Write to any sink (buffer it yourself if it is unbuffered).
    pub fn new(out: Box<dyn Write>) -> Self {
        EveWriter {
            out,
            tail: None,
            written: 0,
        }
    }

    /// End every record with `pcap_filename`, the capture's name, as Suricata does when it
    /// reads a capture (its eve-log `pcap-file: true`).
    #[must_use]
    pub fn with_pcap_filename(mut self, name: &str) -> Self {
        let quoted = serde_json::to_string(name).unwrap_or_else(|_| "\"\"".into());
        self.tail = Some(format!(",\"pcap_filename\":{quoted}}}"));
        self
    }

    /// Append one event.
    pub fn write(&mut self, ev: &Event) -> std::io::Result<()> {
        let line = to_json(ev).map_err(std::io::Error::other)?;
        match (&self.tail, line.strip_suffix('}')) {
            (Some(tail), Some(body)) => {
                self.out.write_all(body.as_bytes())?;
                self.out.write_all(tail.as_bytes())?;
            }
            _ => self.out.write_all(line.as_bytes())?,
        }
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    /// Flush the sink.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A rule alert carries the packet's verdict; an alert without one (another engine's) has
    // no `verdict` object.
    #[test]
    fn rule_alerts_carry_the_verdict() {
        let packet = PacketRef {
            flow_id: Some(1),
            scope: vlan::VlanScope::UNTAGGED,
            src_ip: "10.0.0.1".parse().unwrap(),
            dst_ip: "10.0.0.2".parse().unwrap(),
            ports: Some((1000, 80)),
            proto: Some(dataplane::decode::IpProto::Tcp),
            to_server: Some(true),
        };
        let sig = dataplane::event::Signature {
            name: "x".into(),
            gid: 1,
            sid: 7,
            rev: 1,
            category: "".into(),
            severity: 3,
        };
        let alert = Alert::new(packet, dataplane::event::Engine::ActivityScanner, sig);
        let json = |a: Alert| {
            let ev = Event {
                ts: Timestamp(0),
                pcap_cnt: Some(1),
                kind: EventKind::Alert(a),
            };
            serde_json::from_str::<serde_json::Value>(&to_json(&ev).unwrap()).unwrap()
        };
        let passed = json(Alert {
            verdict: Some(dataplane::event::RuleVerdict::Pass),
            ..alert.clone()
        });
        assert_eq!(passed.pointer("/verdict/action"), Some(&"pass".into()));
        assert!(json(alert).get("verdict").is_none());
    }

    #[test]
    fn timestamps_match_eve_form() {
        assert_eq!(format_ts(Timestamp(0)), "1970-01-01T00:00:00.000000+0000");
        assert_eq!(
            format_ts(Timestamp(1_767_225_600 * 1_000_000 + 42)),
            "2026-01-01T00:00:00.000042+0000"
        );
        // 2024-02-29T23:59:59.5 (leap day)
        assert_eq!(
            format_ts(Timestamp(1_709_251_199_500_000)),
            "2024-02-29T23:59:59.500000+0000"
        );
    }
}
