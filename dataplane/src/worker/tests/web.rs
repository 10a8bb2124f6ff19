use core::net::IpAddr;

use webaddr::{AddressSet, Category, Format, ListInfo, parse_list};

use super::*;
use crate::decode::fixtures::{V4_DST, V4_SRC, eth, ipv4, udp};
use crate::flow::FlowKey;

/// A worker with the web address scan on, `listed.example` on a malware list.
fn worker() -> Worker {
    let mut w = worker_without_blocker(WorkerConfig::default());
    let parsed = parse_list(b"listed.example\n", Format::Auto);
    let info = ListInfo {
        id: "t".into(),
        category: Category::Malware,
        version: "1".into(),
    };
    w.set_web_addresses(Some(AddressSet::from_lists([(info, &parsed)]).unwrap()));
    w
}

/// A DNS query of one question.
fn query(name: &str) -> Vec<u8> {
    let mut m = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
    for label in name.split('.') {
        m.push(u8::try_from(label.len()).unwrap());
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(b"\x00\x00\x01\x00\x01");
    m
}

fn udp_frame(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let (s, d) = (IpAddr::V4(V4_SRC), IpAddr::V4(V4_DST));
    eth(
        &[],
        0x0800,
        &ipv4(V4_SRC, V4_DST, 17, &udp(s, d, sport, dport, payload)),
    )
}

/// The web address hits of one frame.
fn hits(w: &mut Worker, frame: &[u8], sec: u64) -> usize {
    let mut out = VecOutput::default();
    let meta = PacketMeta {
        ts: Timestamp(sec * Timestamp::SECOND),
        pcap_cnt: 1,
    };
    w.process(frame, meta, &mut out);
    out.events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Alert(a) if a.engine == Engine::WebAddressScan))
        .count()
}

fn web_done(w: &Worker, sport: u16, dport: u16) -> bool {
    let (k, _) = FlowKey::new(
        VlanScope::UNTAGGED,
        decode::IpProto::Udp,
        (IpAddr::V4(V4_SRC), sport),
        (IpAddr::V4(V4_DST), dport),
    );
    w.flows().get(&k).is_some_and(|f| f.ext.web.done())
}

// A UDP flow with neither DNS's nor QUIC's port is marked read by its first packet, so its
// later packets stop at the flow's peek; flows with one of the ports are not, whichever side
// sent the packet (a client's datagram to port 443 that is no QUIC Initial ends the reading,
// as before).
#[test]
fn a_flow_that_can_carry_no_address_is_marked_read_by_its_first_packet() {
    let mut w = worker();
    assert_eq!(hits(&mut w, &udp_frame(5000, 6000, b"x"), 1), 0);
    assert!(web_done(&w, 5000, 6000));
    hits(&mut w, &udp_frame(5003, 443, b"x"), 1);
    assert!(web_done(&w, 5003, 443));
    for (sport, dport) in [(5001, 53), (53, 5002), (443, 5004)] {
        hits(&mut w, &udp_frame(sport, dport, b"x"), 1);
        assert!(!web_done(&w, sport, dport), "{sport} -> {dport}");
    }
    // The DNS flow reads every query.
    assert_eq!(
        hits(&mut w, &udp_frame(5001, 53, &query("listed.example")), 2),
        1
    );
}

// Queries one after another, a long name before a short one: the question reader's buffer,
// kept between queries, gives each query its own name.
#[test]
fn each_query_is_read_with_its_own_name() {
    let mut w = worker();
    let long = format!("{}.listed.example", vec!["a".repeat(60); 8].join("."));
    for (i, (name, listed)) in [
        (long.as_str(), 1),
        ("example", 0),
        ("listed.example", 1),
        ("sted.example", 0),
        ("x.listed.example", 1),
    ]
    .into_iter()
    .enumerate()
    {
        let port = 5000 + u16::try_from(i).unwrap();
        assert_eq!(
            hits(&mut w, &udp_frame(port, 53, &query(name)), 1),
            listed,
            "{name}"
        );
    }
}

// A flow between DNS's port and QUIC's: a datagram from port 53 to port 443 is not read as a
// QUIC Initial, so it cannot end the reading of the flow, and the queries the other side sends
// to port 53 are still read.
#[test]
fn a_flow_between_the_dns_and_quic_ports_keeps_reading_its_queries() {
    let mut w = worker();
    let (s, d) = (IpAddr::V4(V4_SRC), IpAddr::V4(V4_DST));
    let to_quic = eth(
        &[],
        0x0800,
        &ipv4(V4_SRC, V4_DST, 17, &udp(s, d, 53, 443, b"\xc0junk")),
    );
    assert_eq!(hits(&mut w, &to_quic, 1), 0);
    assert!(!web_done(&w, 53, 443));
    let back = eth(
        &[],
        0x0800,
        &ipv4(
            V4_DST,
            V4_SRC,
            17,
            &udp(d, s, 443, 53, &query("listed.example")),
        ),
    );
    assert_eq!(hits(&mut w, &back, 2), 1);
}
