use core::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::decode::fixtures::{V4_DST, V4_SRC, eth, ipv4, tcp_simple, udp};
use crate::rules::RuleSetBuilder;

fn worker(mode: scanner::InspectionMode) -> Worker {
    let mut cfg = WorkerConfig::default();
    cfg.scanner.mode = mode;
    cfg.scanner.stream.midstream = true;
    // A small table: sweeps come after a few packets (capacity / 2).
    cfg.flows.max_flows = 16;
    let mut w = worker_without_blocker(cfg);
    let mut b = RuleSetBuilder::default();
    b.add_text(
        "t",
        "alert tcp any any -> any any (content:\"secret\"; sid:1;)\n",
    );
    w.set_rules(Some(Arc::new(b.build())));
    w
}

/// (sid, pcap_cnt) of every alert.
fn send(w: &mut Worker, frame: &[u8], secs: u64, n: u64) -> Vec<(u32, Option<u64>)> {
    let mut out = VecOutput::default();
    let meta = PacketMeta {
        ts: Timestamp(secs * Timestamp::SECOND),
        pcap_cnt: n,
    };
    w.process(frame, meta, &mut out);
    alerts(&out)
}

fn alerts(out: &VecOutput) -> Vec<(u32, Option<u64>)> {
    out.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Alert(a) => Some((a.sid, e.pcap_cnt)),
            _ => None,
        })
        .collect()
}

// IDS timing: data the server never acknowledged is inspected when its flow times out
// (the sweep a later packet triggers), as at the end of a capture, and only once.
#[test]
fn unacknowledged_data_is_inspected_when_the_flow_times_out() {
    let (c, s) = (IpAddr::V4(V4_SRC), IpAddr::V4(V4_DST));
    let data = eth(
        &[],
        0x0800,
        &ipv4(
            V4_SRC,
            V4_DST,
            6,
            &tcp_simple(c, s, 40000, 80, b"the secret"),
        ),
    );
    let other = eth(
        &[],
        0x0800,
        &ipv4(
            Ipv4Addr::new(10, 9, 9, 9),
            V4_DST,
            17,
            &udp(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)), s, 5000, 53, b"x"),
        ),
    );
    let mut w = worker(scanner::InspectionMode::Ids);
    assert!(send(&mut w, &data, 1, 1).is_empty(), "not acknowledged yet");
    // A day later: the TCP flow has timed out; the sweep retires it and it is flushed.
    let got: Vec<_> = (2..200)
        .flat_map(|n| send(&mut w, &other, 86_400, n))
        .collect();
    assert_eq!(got, vec![(1, None)]);
    let mut out = VecOutput::default();
    w.flush_streams(Timestamp(86_401 * Timestamp::SECOND), &mut out);
    assert!(alerts(&out).is_empty(), "flushed once");
    assert_eq!(w.counters().rule_alerts, 1);

    // Inline timing inspected it on arrival; nothing is retired.
    let mut w = worker(scanner::InspectionMode::Inline);
    assert_eq!(send(&mut w, &data, 1, 1), vec![(1, Some(1))]);
    assert!((2..200).all(|n| send(&mut w, &other, 86_400, n).is_empty()));
    assert!(!w.flows.has_retired());
    assert!(w.flows().stats().timed_out >= 1);
}
