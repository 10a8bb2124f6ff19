use core::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::blocks::BlockKey;
use crate::decode::fixtures::{V4_DST, V4_SRC, eth, ipv4, tcp_simple};
use crate::shared_blocks::{Command, SharedBlocks};

const BLOCKED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);

/// TCP segments from several sources; the fifth and the eighth come from a blocked one.
fn frames() -> Vec<Vec<u8>> {
    (0..12u16)
        .map(|i| {
            let src = if i == 4 || i == 7 { BLOCKED } else { V4_SRC };
            let l4 = tcp_simple(
                IpAddr::V4(src),
                IpAddr::V4(V4_DST),
                40_000 + i % 5,
                443,
                b"x",
            );
            eth(&[], 0x0800, &ipv4(src, V4_DST, 6, &l4))
        })
        .collect()
}

fn worker(attach: Attach) -> Worker {
    let cfg = WorkerConfig {
        attach,
        ..WorkerConfig::default()
    };
    let SharedBlocks {
        mut keeper,
        control,
        mut clients,
    } = SharedBlocks::new(1, 16);
    let w = Worker::new(
        cfg,
        Arc::new(CompiledPolicy::compile(Policy::default())),
        clients.remove(0),
    );
    let key = BlockKey {
        scope: VlanScope::UNTAGGED,
        addr: IpAddr::V4(BLOCKED),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    control
        .send(Command::Manual {
            key,
            now: Timestamp(0),
            duration_secs: 3600,
            reason: "test".into(),
            reply: Some(tx),
        })
        .unwrap();
    keeper.drain(&mut |_| {});
    keeper.publish();
    assert_eq!(rx.recv().ok(), Some(BlockResult::Added));
    w
}

const TS: Timestamp = Timestamp(Timestamp::SECOND);

/// Frame by frame, as `process` sees them: verdicts, output, counters.
fn one_by_one(attach: Attach, frames: &[Vec<u8>]) -> (Vec<Verdict>, VecOutput, Counters) {
    let mut w = worker(attach);
    let mut out = VecOutput::default();
    let verdicts = (1u64..)
        .zip(frames)
        .map(|(n, f)| {
            let meta = PacketMeta {
                ts: TS,
                pcap_cnt: n,
            };
            w.process(f, meta, &mut out)
        })
        .collect();
    (verdicts, out, w.counters().clone())
}

/// The same frames as one burst, handed over again after each early return, which is
/// recorded (frames handled by each call).
fn in_bursts(
    attach: Attach,
    frames: &[Vec<u8>],
) -> (Vec<Verdict>, VecOutput, Counters, Vec<usize>) {
    let mut w = worker(attach);
    let mut out = VecOutput::default();
    let views: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let mut verdicts = Vec::new();
    let mut calls = Vec::new();
    let mut rest = &views[..];
    while !rest.is_empty() {
        let meta = PacketMeta {
            ts: TS,
            pcap_cnt: verdicts.len() as u64 + 1,
        };
        let done = w.process_burst(rest, meta, &mut out, &mut verdicts);
        assert!(done >= 1 && done <= rest.len());
        assert_eq!(verdicts.len(), views.len() - rest.len() + done);
        calls.push(done);
        rest = &rest[done..];
    }
    (verdicts, out, w.counters().clone(), calls)
}

#[test]
fn a_burst_is_processed_as_its_frames_one_by_one() {
    let frames = frames();
    for attach in [Attach::Inline, Attach::Mirror] {
        let (v1, o1, c1) = one_by_one(attach, &frames);
        let (v2, o2, c2, _) = in_bursts(attach, &frames);
        assert_eq!(v1, v2, "{attach:?}");
        assert_eq!(o1.events, o2.events, "{attach:?}");
        assert_eq!(o1.injected, o2.injected, "{attach:?}");
        assert_eq!(c1, c2, "{attach:?}");
        assert_eq!(v2.get(4), Some(&Verdict::Drop(DropReason::Blocked)));
    }
}

/// Monitoring mode drops no frame (docs/policy.md), not even of a source blocked before the
/// switch or by hand: the source is inspected and reported as any other.
#[test]
fn monitoring_mode_drops_no_frame_of_a_blocked_source() {
    for attach in [Attach::Inline, Attach::Mirror] {
        let mut w = worker(attach);
        let p = Policy {
            mode: Mode::Monitoring,
            ..Policy::default()
        };
        w.set_policy(Arc::new(CompiledPolicy::compile(p)));
        let mut out = VecOutput::default();
        for (n, f) in (1u64..).zip(&frames()) {
            let meta = PacketMeta {
                ts: TS,
                pcap_cnt: n,
            };
            assert_eq!(w.process(f, meta, &mut out), Verdict::Forward, "{attach:?}");
        }
        assert_eq!(w.counters().dropped_blocked, 0);
        assert!(out.injected.is_empty(), "{attach:?}: no reset");
        // Back to standard mode, the block applies again.
        w.set_policy(Arc::new(CompiledPolicy::compile(Policy::default())));
        let meta = PacketMeta {
            ts: TS,
            pcap_cnt: 99,
        };
        assert_eq!(
            w.process(&frames()[4], meta, &mut out),
            Verdict::Drop(DropReason::Blocked)
        );
    }
}

#[test]
fn a_burst_stops_after_a_frame_that_injected() {
    let frames = frames();
    // Inline, the blocked source's frames are dropped without injection: one call.
    let (_, out, _, calls) = in_bursts(Attach::Inline, &frames);
    assert!(out.injected.is_empty());
    assert_eq!(calls, [12]);
    // On a mirror each of them is answered with resets: the burst is handed back after each.
    let (_, out, c, calls) = in_bursts(Attach::Mirror, &frames);
    assert!(!out.injected.is_empty());
    assert_eq!(c.injected, out.injected.len() as u64);
    assert_eq!(calls, [5, 3, 4]);
}
