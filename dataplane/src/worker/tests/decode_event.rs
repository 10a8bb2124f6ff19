use super::*;
use crate::decode::fixtures::{V4_DST, V4_SRC, eth, fragment_ipv4, icmpv4_echo, ipv4};
use crate::rules::RuleSetBuilder;

fn worker() -> Worker {
    let mut w = worker_without_blocker(WorkerConfig::default());
    let mut b = RuleSetBuilder::default();
    let rep = b.add_text(
        "t",
        "alert icmp any any -> any any (itype:8; sid:1;)\n\
         alert pkthdr any any -> any any (decode-event:ipv4.frag_overlap; sid:10;)\n\
         alert ip any any -> any any (fragbits:M; sid:11;)\n\
         alert tcp any any -> any any (decode-event:tcp.pkt_too_small; sid:12;)\n\
         alert ip any any -> any any (decode-event:gre.pkt_too_small; sid:13;)\n",
    );
    assert!(rep.skipped.is_empty(), "{:?}", rep.skipped);
    w.set_rules(Some(Arc::new(b.build())));
    w
}

fn sids(w: &mut Worker, frame: &[u8], n: u64) -> Vec<u32> {
    let mut out = VecOutput::default();
    let meta = PacketMeta {
        ts: Timestamp(Timestamp::SECOND),
        pcap_cnt: n,
    };
    assert_eq!(w.process(frame, meta, &mut out), Verdict::Forward);
    out.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Alert(a) => Some(a.sid),
            _ => None,
        })
        .collect()
}

// Each fragment is a packet for the rules (`fragbits`), a retransmitted one raises the
// overlap event, and the datagram is inspected after the fragment that completes it.
#[test]
fn fragments_are_packets_with_their_events() {
    let mut w = worker();
    let echo = ipv4(V4_SRC, V4_DST, 1, &icmpv4_echo(7, 1, &[0x42; 40]));
    let frags = fragment_ipv4(&echo, 99, 24);
    assert_eq!(frags.len(), 2);
    let frame = |f: &[u8]| eth(&[], 0x0800, f);
    assert_eq!(sids(&mut w, &frame(&frags[0]), 1), [11]);
    assert_eq!(sids(&mut w, &frame(&frags[0]), 2), [10, 11]);
    assert_eq!(sids(&mut w, &frame(&frags[1]), 3), [1]);
    let overlap = DecodeEvent::Ipv4FragOverlap.index();
    assert_eq!(w.counters().decoder.get(overlap), Some(&1));
}

// A frame whose transport or GRE header is too short: its decoder event reaches the rules
// (an invalid TCP packet has no flow); the frame is still counted invalid and forwarded.
#[test]
fn invalid_and_short_headers_raise_their_events() {
    let mut w = worker();
    let short_tcp = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 6, &[0; 4]));
    assert_eq!(sids(&mut w, &short_tcp, 1), [12]);
    assert_eq!(w.counters().invalid, 1);
    assert_eq!(w.flows().len(), 0);
    let short_gre = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 47, &[0; 2]));
    assert_eq!(sids(&mut w, &short_gre, 2), [13]);
    let gre_small = DecodeEvent::GreTooSmall.index();
    assert_eq!(w.counters().decoder.get(gre_small), Some(&1));
    // A whole, valid packet raises none of them.
    let ok = eth(
        &[],
        0x0800,
        &ipv4(V4_SRC, V4_DST, 1, &icmpv4_echo(1, 1, b"x")),
    );
    assert_eq!(sids(&mut w, &ok, 3), [1]);
}
