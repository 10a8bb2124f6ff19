use core::net::IpAddr;

use super::*;
use crate::decode::fixtures::{V4_DST, V4_SRC, eth, ipv4, udp};
use crate::rules::RuleSetBuilder;
use crate::scanner::ScannerConfig;

fn worker(rules: &str) -> Worker {
    let mut p = Policy::default();
    p.attack_blocker.enabled = false;
    let cfg = WorkerConfig {
        scanner: ScannerConfig {
            simulate_ips: true,
            ..ScannerConfig::default()
        },
        ..WorkerConfig::default()
    };
    let mut w = test_worker(cfg, Arc::new(CompiledPolicy::compile(p)));
    let mut b = RuleSetBuilder::default();
    b.add_text("t", rules);
    w.set_rules(Some(Arc::new(b.build())));
    w
}

/// Alerted sids, each with its EVE verdict.
type Alerted = Vec<(u32, Option<RuleVerdict>)>;

/// The verdict and alerts of each of three datagrams of one flow.
fn three(w: &mut Worker) -> Vec<(Verdict, Alerted)> {
    let l4 = udp(IpAddr::V4(V4_SRC), IpAddr::V4(V4_DST), 40000, 53, b"xyz");
    let frame = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 17, &l4));
    (1..=3u64)
        .map(|n| {
            let mut out = VecOutput::default();
            let meta = PacketMeta {
                ts: Timestamp(n * Timestamp::SECOND),
                pcap_cnt: n,
            };
            let v = w.process(&frame, meta, &mut out);
            let sids = out
                .events
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::Alert(a) => Some((a.sid, a.verdict)),
                    _ => None,
                })
                .collect();
            (v, sids)
        })
        .collect()
}

// A drop whose action applies to the flow (a header-only rule) drops the flow's later
// packets uninspected; a payload match drops its packet only, and the next is inspected.
#[test]
fn a_flow_scoped_drop_drops_the_rest_of_the_flow() {
    let drop = Verdict::Drop(DropReason::Rule);
    let dropped = |sid| vec![(sid, Some(RuleVerdict::Drop))];
    let mut w = worker("drop udp any any -> any any (sid:1;)");
    assert_eq!(
        three(&mut w),
        [(drop, dropped(1)), (drop, vec![]), (drop, vec![])]
    );
    let mut w = worker("drop udp any any -> any any (content:\"xyz\"; sid:2;)");
    assert_eq!(
        three(&mut w),
        [(drop, dropped(2)), (drop, dropped(2)), (drop, dropped(2))]
    );
    // A pass (with `alert`) of the flow: its alert says pass, later packets are let
    // through uninspected.
    let mut w = worker("pass udp any any -> any 53 (alert; sid:3;)");
    let pass = vec![(3, Some(RuleVerdict::Pass))];
    let fwd = Verdict::Forward;
    assert_eq!(three(&mut w), [(fwd, pass), (fwd, vec![]), (fwd, vec![])]);
}
