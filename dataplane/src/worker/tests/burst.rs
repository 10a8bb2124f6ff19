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

/// A SYN from a source of its own (the `i`th of a random-source flood) to 10.0.0.12:80.
fn flood_syn(i: u32) -> Vec<u8> {
    let src = Ipv4Addr::from(0x6400_0000 | i.wrapping_mul(2_654_435_761) >> 8);
    let dst = Ipv4Addr::new(10, 0, 0, 12);
    let mut l4 = tcp_simple(IpAddr::V4(src), IpAddr::V4(dst), 1024, 80, b"");
    l4[13] = 0x02;
    eth(&[], 0x0800, &ipv4(src, dst, 6, &l4))
}

/// A TCP segment with `flags` from ATTACKER to V4_DST:`port`.
fn attacker(port: u16, flags: u8) -> Vec<u8> {
    let mut l4 = tcp_simple(IpAddr::V4(ATTACKER), IpAddr::V4(V4_DST), 54321, port, b"");
    l4[13] = flags;
    eth(&[], 0x0800, &ipv4(ATTACKER, V4_DST, 6, &l4))
}

const ATTACKER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 77);

/// Frames as a backend with lookahead hands them over: before frame i, frame i + LOOKAHEAD is
/// named to [`Worker::prefetch`] (`hint`) or not. Verdicts, output, counters, and for each
/// frame whether the flow table was flooded when the frame was named.
fn with_lookahead(
    w: &mut Worker,
    frames: &[Vec<u8>],
    hint: bool,
) -> (Vec<Verdict>, VecOutput, Vec<bool>) {
    let mut out = VecOutput::default();
    let mut hinted_flooded = vec![false; frames.len()];
    let mut verdicts = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        if hint && let Some(ahead) = frames.get(i + crate::io::LOOKAHEAD) {
            hinted_flooded[i + crate::io::LOOKAHEAD] = w.flows().flooded();
            w.prefetch(ahead);
        }
        let meta = PacketMeta {
            ts: Timestamp(TS.0 + i as u64 * 10),
            pcap_cnt: i as u64 + 1,
        };
        verdicts.push(w.process(f, meta, &mut out));
    }
    (verdicts, out, hinted_flooded)
}

/// Zero leak with the lookahead: in a random-source SYN flood (the worker prefetching frames
/// ahead), a NULL probe blocks its source while its next frames have already been named ahead;
/// each of them is dropped all the same, and every verdict, event and counter is what the
/// frames give without lookahead.
#[test]
fn a_frame_named_ahead_of_its_sources_block_is_still_dropped() {
    let policy = "attack_blocker:\n  block_unverified_sources: true\n";
    let mk = || {
        test_worker(
            WorkerConfig::default(),
            Arc::new(CompiledPolicy::compile(Policy::from_yaml(policy).unwrap())),
        )
    };
    let mut frames: Vec<Vec<u8>> = (0..40).map(flood_syn).collect();
    let probe = frames.len();
    frames.push(attacker(21, 0));
    for i in 0..8u16 {
        frames.push(attacker(22 + i, 0x02));
        frames.push(flood_syn(100 + u32::from(i)));
    }
    let mut plain = mk();
    let (v1, o1, _) = with_lookahead(&mut plain, &frames, false);
    let mut ahead = mk();
    let (v2, o2, flooded) = with_lookahead(&mut ahead, &frames, true);
    assert_eq!(v1, v2);
    assert_eq!(o1.events, o2.events);
    assert_eq!(o1.injected, o2.injected);
    assert_eq!(plain.counters(), ahead.counters());
    assert_eq!(ahead.counters().blocks_added, 1);
    // The frames after the probe were named while the flood ran, before the block.
    assert!(flooded[probe + 1] && flooded[probe + 2], "{flooded:?}");
    for (i, (f, v)) in frames.iter().zip(&v2).enumerate().skip(probe + 1) {
        // The attacker's frames (its address at the IPv4 source's offset).
        if f.get(26..30) == Some(&ATTACKER.octets()[..]) {
            assert_eq!(*v, Verdict::Drop(DropReason::Blocked), "frame {i}");
        }
    }
    assert_eq!(ahead.counters().dropped_blocked, 8);
}
