use core::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::decode::fixtures::{V4_DST, V4_SRC, eth, icmpv4_echo, ipv4, udp};
use crate::rules::RuleSetBuilder;

const INNER_SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 94);
const INNER_DST: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 237);

fn worker() -> Worker {
    worker_with(WorkerConfig::default())
}

fn worker_with(cfg: WorkerConfig) -> Worker {
    let mut w = worker_without_blocker(cfg);
    let mut b = RuleSetBuilder::default();
    b.add_text(
        "t",
        "alert icmp any any -> any any (itype:8; sid:1;)\n\
         alert ip any any -> any any (ip_proto:4; sid:2;)\n",
    );
    w.set_rules(Some(Arc::new(b.build())));
    w
}

/// (sid, source address) of every alert one frame raised.
fn alerts(w: &mut Worker, frame: &[u8]) -> Vec<(u32, IpAddr)> {
    let scoped = alerts_scoped(w, frame);
    scoped.into_iter().map(|(sid, src, _)| (sid, src)).collect()
}

/// (sid, source address, VLAN scope) of every alert one frame raised.
fn alerts_scoped(w: &mut Worker, frame: &[u8]) -> Vec<(u32, IpAddr, VlanScope)> {
    let mut out = VecOutput::default();
    let meta = PacketMeta {
        ts: Timestamp(Timestamp::SECOND),
        pcap_cnt: 1,
    };
    assert_eq!(w.process(frame, meta, &mut out), Verdict::Forward);
    out.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Alert(a) => Some((a.sid, a.packet.src_ip, a.packet.scope)),
            _ => None,
        })
        .collect()
}

// The outer packet, then the tunnelled one as a packet of its own.
#[test]
fn ip_in_ip_inner_packet_is_inspected() {
    let mut w = worker();
    let inner = ipv4(INNER_SRC, INNER_DST, 1, &icmpv4_echo(26, 1, b"ping"));
    let frame = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 4, &inner));
    assert_eq!(
        alerts(&mut w, &frame),
        vec![(2, IpAddr::V4(V4_SRC)), (1, IpAddr::V4(INNER_SRC))]
    );
    assert_eq!(w.flows().len(), 2);
    assert_eq!(decode::IpProto::Other(4).eve_name(), "IP-in-IP");
}

// A tunnel inside the tunnel is not opened: one level, no recursion on packet data.
#[test]
fn nested_tunnel_is_not_opened() {
    let mut w = worker();
    let innermost = ipv4(INNER_SRC, INNER_DST, 1, &icmpv4_echo(26, 1, b"ping"));
    let middle = ipv4(INNER_DST, INNER_SRC, 4, &innermost);
    let frame = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 4, &middle));
    assert_eq!(
        alerts(&mut w, &frame),
        vec![(2, IpAddr::V4(V4_SRC)), (2, IpAddr::V4(INNER_DST))]
    );
}

// A malformed inner packet is counted under its decoder event, forwarded, never inspected.
#[test]
fn malformed_inner_packet_is_counted() {
    for (inner, event) in [
        (&[0x45u8, 0, 0][..], DecodeEvent::Ipv4Truncated),
        (&[0x60u8; 8][..], DecodeEvent::Ipv6Truncated),
    ] {
        let mut w = worker();
        let before = w.counters().decoder[event.index()];
        let frame = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 4, inner));
        assert_eq!(alerts(&mut w, &frame), vec![(2, IpAddr::V4(V4_SRC))]);
        assert_eq!(w.counters().decoder[event.index()], before + 1, "{event:?}");
    }
}

/// An Ethernet frame with an ICMP echo request from `INNER_SRC`, tagged with `tags`.
fn inner_frame(tags: &[vlan::Tag]) -> Vec<u8> {
    let ping = ipv4(INNER_SRC, INNER_DST, 1, &icmpv4_echo(7, 1, b"ping"));
    eth(tags, 0x0800, &ping)
}

fn vxlan_frame(dport: u16, header: [u8; 8]) -> Vec<u8> {
    let payload = [&header[..], &inner_frame(&[])].concat();
    let seg = udp(V4_SRC.into(), V4_DST.into(), 40000, dport, &payload);
    eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 17, &seg))
}

const VXLAN: [u8; 8] = [0x08, 0, 0, 0, 0, 0, 100, 0];
const SCOPE0: VlanScope = VlanScope::UNTAGGED;

// VXLAN on its port: the inner frame's packet is inspected as one of its own.
#[test]
fn vxlan_inner_frame_is_inspected() {
    let mut w = worker_with(WorkerConfig::default());
    let frame = vxlan_frame(4789, VXLAN);
    assert_eq!(
        alerts_scoped(&mut w, &frame),
        vec![(1, IpAddr::V4(INNER_SRC), SCOPE0)]
    );
    assert_eq!(w.counters().decapsulated, 1);
    assert_eq!(w.flows().len(), 2);
    // Another port: ordinary UDP, nothing inside is looked at.
    let mut w = worker_with(WorkerConfig::default());
    assert_eq!(alerts_scoped(&mut w, &vxlan_frame(4790, VXLAN)), vec![]);
    assert_eq!(w.counters().decapsulated, 0);
}

// The settings switch a tunnel off, or move it to other ports.
#[test]
fn tunnel_settings_apply() {
    let mut b = WorkerConfig::builder();
    b.set("decoder.vxlan.enabled", "false").unwrap();
    let mut w = worker_with(b.build());
    assert_eq!(alerts_scoped(&mut w, &vxlan_frame(4789, VXLAN)), vec![]);
    let mut b = WorkerConfig::builder();
    b.set("decoder.vxlan.ports", "[8472, 4790]").unwrap();
    let mut w = worker_with(b.build());
    assert_eq!(alerts_scoped(&mut w, &vxlan_frame(4789, VXLAN)), vec![]);
    assert_eq!(alerts_scoped(&mut w, &vxlan_frame(8472, VXLAN)).len(), 1);
    assert!(b.set("decoder.vxlan.ports", "0").is_err());
    assert!(b.set("decoder.gre.enabled", "yes").is_err());
}

// A malformed VXLAN header is counted; the outer packet alone was inspected.
#[test]
fn malformed_vxlan_is_counted() {
    let mut w = worker_with(WorkerConfig::default());
    let mut bad = VXLAN;
    bad[0] = 0;
    assert_eq!(alerts_scoped(&mut w, &vxlan_frame(4789, bad)), vec![]);
    let event = DecodeEvent::VxlanMalformed;
    assert_eq!(w.counters().decoder[event.index()], 1);
    assert_eq!(w.counters().decapsulated, 0);
}

// ERSPAN II over GRE: the mirrored frame is untagged, its flow is scoped by the VLAN the
// ERSPAN header names; a tagged inner frame is scoped by its own tag.
#[test]
fn erspan_vlan_scopes_the_inner_flow() {
    let gre_erspan = |inner: &[u8]| {
        let mut gre = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1];
        gre.extend_from_slice(&[0x10, 0x17, 0x08, 0x64, 0, 0, 0, 0]);
        gre.extend_from_slice(inner);
        eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 47, &gre))
    };
    let mut w = worker_with(WorkerConfig::default());
    let vid = |v| VlanScope::single(vlan::VlanId::new(v).unwrap());
    assert_eq!(
        alerts_scoped(&mut w, &gre_erspan(&inner_frame(&[]))),
        vec![(1, IpAddr::V4(INNER_SRC), vid(23))]
    );
    let tag = vlan::Tag {
        tpid: vlan::Tpid::Dot1Q,
        tci: 42,
    };
    assert_eq!(
        alerts_scoped(&mut w, &gre_erspan(&inner_frame(&[tag]))),
        vec![(1, IpAddr::V4(INNER_SRC), vid(42))]
    );
}

// NSH at the link layer: the IP packet behind it is inspected; an unknown EtherType is
// counted as before.
#[test]
fn nsh_frame_is_opened() {
    let mut w = worker_with(WorkerConfig::default());
    let ping = ipv4(INNER_SRC, INNER_DST, 1, &icmpv4_echo(7, 1, b"ping"));
    let nsh = [&[0x00, 0x06, 0x01, 0x01][..], &[0; 20], &ping].concat();
    assert_eq!(
        alerts_scoped(&mut w, &eth(&[], 0x894f, &nsh)),
        vec![(1, IpAddr::V4(INNER_SRC), SCOPE0)]
    );
    assert_eq!(w.counters().other_l3, 0);
    assert_eq!(alerts_scoped(&mut w, &eth(&[], 0x88b5, &nsh)), vec![]);
    assert_eq!(w.counters().other_l3, 1);
}
