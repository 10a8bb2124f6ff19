//! `stream.reassembly.urgent.policy` in the worker: `drop` drops the segment with URG before
//! its stream sees it, where a drop is real (`--simulate-ips`, inline); the capture of the
//! conformance cases `tcp-urgp-*` in miniature.

use core::net::IpAddr;

use smoltcp::wire::TcpControl;

use super::*;
use crate::decode::fixtures::{V4_DST, V4_SRC, eth, ipv4, tcp_segment};
use crate::rules::RuleSetBuilder;
use crate::stream::UrgentPolicy;

const RULES: &str = r#"
drop tcp any any -> any 9090 (content:"malicious"; sid:1;)
drop tcp any any -> any 9090 (http.uri; content:"malicious"; sid:2;)
drop tcp any any -> any 9090 (frame:http1.request; content:"malicious"; sid:3;)
"#;

fn worker(urgent: UrgentPolicy, simulate_ips: bool) -> Worker {
    let mut p = Policy::default();
    p.attack_blocker.enabled = false;
    // Report only: on a mirror a drop rule's match neither blocks nor terminates.
    p.activity_scanner.action = policy::Action::Inform;
    // The mirror's IDS timing, or --simulate-ips, as `svm replay` builds them.
    let cfg = WorkerConfig::builder()
        .simulate_ips(simulate_ips)
        .urgent(urgent, UrgentPolicy::Inline)
        .build();
    let mut w = test_worker(cfg, Arc::new(CompiledPolicy::compile(p)));
    let mut b = RuleSetBuilder::default();
    b.add_text("t", RULES);
    w.set_rules(Some(Arc::new(b.build())));
    w
}

/// One segment: client to server (`to_server`) or back; `urg` sets URG with that pointer.
fn segment(
    to_server: bool,
    control: TcpControl,
    seq: u32,
    ack: Option<u32>,
    data: &[u8],
    urg: u16,
) -> Vec<u8> {
    let (src, dst, sport, dport) = if to_server {
        (V4_SRC, V4_DST, 43950, 9090)
    } else {
        (V4_DST, V4_SRC, 9090, 43950)
    };
    let mut l4 = tcp_segment(
        IpAddr::V4(src),
        IpAddr::V4(dst),
        (sport, dport),
        control,
        seq,
        ack,
        data,
    );
    if urg > 0 {
        // Flags byte 13 (URG 0x20), urgent pointer bytes 18-19; checksums are not verified.
        l4[13] |= 0x20;
        l4[18..20].copy_from_slice(&urg.to_be_bytes());
    }
    eth(&[], 0x0800, &ipv4(src, dst, 6, &l4))
}

/// The flow of `tcp-urgent1.pcap`: `GET /malic`, `X` with URG (pointer 1), the server's ACKs,
/// `ious HTTP/1.1...`, the ACKs. Each packet's verdict and alerted sids.
fn run(w: &mut Worker) -> Vec<(Verdict, Vec<u32>)> {
    let (c, s) = (100u32, 500u32);
    let rest = b"ious HTTP/1.1\r\nHost: h\r\n\r\n";
    let rest_len = u32::try_from(rest.len()).unwrap();
    let frames = [
        segment(true, TcpControl::Syn, c, None, b"", 0),
        segment(false, TcpControl::Syn, s, Some(c + 1), b"", 0),
        segment(true, TcpControl::None, c + 1, Some(s + 1), b"", 0),
        segment(true, TcpControl::Psh, c + 1, Some(s + 1), b"GET /malic", 0),
        segment(true, TcpControl::Psh, c + 11, Some(s + 1), b"X", 1),
        segment(false, TcpControl::None, s + 1, Some(c + 11), b"", 0),
        segment(false, TcpControl::None, s + 1, Some(c + 12), b"", 0),
        segment(true, TcpControl::Psh, c + 12, Some(s + 1), rest, 0),
        segment(
            false,
            TcpControl::None,
            s + 1,
            Some(c + 12 + rest_len),
            b"",
            0,
        ),
        // IDS timing: the client's next packet inspects its acknowledged raw stream.
        segment(
            true,
            TcpControl::None,
            c + 12 + rest_len,
            Some(s + 1),
            b"",
            0,
        ),
    ];
    frames
        .iter()
        .zip(1u64..)
        .map(|(f, n)| {
            let mut out = VecOutput::default();
            let meta = PacketMeta {
                ts: Timestamp(n * Timestamp::SECOND),
                pcap_cnt: n,
            };
            let v = w.process(f, meta, &mut out);
            let sids = out
                .events
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::Alert(a) => Some(a.sid),
                    _ => None,
                })
                .collect();
            (v, sids)
        })
        .collect()
}

fn alerted(r: &[(Verdict, Vec<u32>)]) -> Vec<u32> {
    r.iter().flat_map(|(_, s)| s.iter().copied()).collect()
}

// `drop` under --simulate-ips: the URG segment is dropped (`stream_urgent`), its byte leaves a
// one-byte gap: `http.uri` reads the request line joined across it, the raw stream and the
// request frame do not match across it.
#[test]
fn urgent_drop_drops_the_segment_and_leaves_a_gap() {
    let mut w = worker(UrgentPolicy::Drop, true);
    let r = run(&mut w);
    assert_eq!(r[4].0, Verdict::Drop(DropReason::StreamUrgent));
    assert_eq!(w.counters().dropped_stream_urgent, 1);
    assert_eq!(alerted(&r), [2]);
    assert_eq!(r[7].0, Verdict::Drop(DropReason::Rule));
}

// The same flow on a mirror: `drop` is `inline`, the urgent byte stays (`/malicXious`).
#[test]
fn urgent_drop_on_a_mirror_keeps_the_byte() {
    let mut w = worker(UrgentPolicy::Drop, false);
    let r = run(&mut w);
    assert!(r.iter().all(|(v, _)| *v == Verdict::Forward));
    assert!(alerted(&r).is_empty());
    assert_eq!(w.counters().dropped_stream_urgent, 0);
}

// `oob`: the byte is out of band, the stream reads `GET /malicious`: all three rules.
#[test]
fn urgent_oob_reads_the_stream_without_the_byte() {
    let mut w = worker(UrgentPolicy::Oob, false);
    let mut sids = alerted(&run(&mut w));
    sids.sort_unstable();
    assert_eq!(sids, [1, 2, 3]);
}
