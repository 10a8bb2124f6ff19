//! Blocking that forged packets cannot steer (issue 15 item 2): a single-packet detection blocks
//! only a source that completed a handshake from its MAC address, a spoofed address is never
//! blocked, and the `never_block` list holds against every detection.

use core::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::decode::fixtures::{eth, ipv4, tcp_simple};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 66);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const PSH: u8 = 0x08;
const URG: u8 = 0x20;
const SERVER_ISN: u32 = 0x5000_0000;

/// A TCP segment with these flags, numbers and source MAC (last byte `mac`).
#[allow(clippy::too_many_arguments)]
fn seg(
    src: Ipv4Addr,
    mac: u8,
    dst: Ipv4Addr,
    ports: (u16, u16),
    flags: u8,
    seq: u32,
    ack: u32,
) -> Vec<u8> {
    let mut l4 = tcp_simple(IpAddr::V4(src), IpAddr::V4(dst), ports.0, ports.1, b"");
    l4[4..8].copy_from_slice(&seq.to_be_bytes());
    l4[8..12].copy_from_slice(&ack.to_be_bytes());
    l4[13] = flags;
    let mut f = eth(&[], 0x0800, &ipv4(src, dst, 6, &l4));
    f[11] = mac;
    f
}

fn worker(policy: &str) -> Worker {
    test_worker(
        WorkerConfig::default(),
        Arc::new(CompiledPolicy::compile(Policy::from_yaml(policy).unwrap())),
    )
}

/// Feed frames 10 ms apart from second `t0`; the attack blocker alerts they raised.
fn feed(w: &mut Worker, t0: u64, frames: &[Vec<u8>]) -> Vec<Alert> {
    let mut out = VecOutput::default();
    for (i, f) in (0u64..).zip(frames) {
        let meta = PacketMeta {
            ts: Timestamp(t0 * Timestamp::SECOND + i * 10_000),
            pcap_cnt: t0 * 1000 + i,
        };
        w.process(f, meta, &mut out);
    }
    out.events
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Alert(a) if a.engine == Engine::AttackBlocker => Some(a),
            _ => None,
        })
        .collect()
}

/// The client's handshake with the server from MAC `mac`, its ACK acknowledging `ack`.
fn handshake(mac: u8, sport: u16, ack: u32) -> Vec<Vec<u8>> {
    vec![
        seg(CLIENT, mac, SERVER, (sport, 80), SYN, 1000, 0),
        seg(
            SERVER,
            0x10,
            CLIENT,
            (80, sport),
            SYN | ACK,
            SERVER_ISN,
            1001,
        ),
        seg(CLIENT, mac, SERVER, (sport, 80), ACK, 1001, ack),
    ]
}

fn null_probe(mac: u8) -> Vec<u8> {
    seg(CLIENT, mac, SERVER, (54321, 21), 0, 7, 0)
}

fn only(alerts: &[Alert], sig: &str) -> Alert {
    let found: Vec<&Alert> = alerts.iter().filter(|a| a.signature == sig).collect();
    assert_eq!(found.len(), 1, "{alerts:?}");
    found[0].clone()
}

#[test]
fn a_forged_null_packet_terminates_without_blocking() {
    let mut w = worker("");
    let a = only(
        &feed(&mut w, 1, &[null_probe(0x66)]),
        "Scan.Generic.TCPFlags.Null",
    );
    assert_eq!(a.response, Response::Terminate);
    assert_eq!(a.block_skipped, Some(BlockSkip::UnverifiedSource));
    assert_eq!(a.block_minutes, None);
    assert!(a.enforced, "still terminated");
    assert_eq!(w.counters().blocks_added, 0);
    assert_eq!(w.counters().dropped_attack, 1);
}

#[test]
fn a_source_that_completed_a_handshake_is_blocked() {
    let mut w = worker("");
    let mut frames = handshake(0x66, 40000, SERVER_ISN + 1);
    frames.push(null_probe(0x66));
    let a = only(&feed(&mut w, 1, &frames), "Scan.Generic.TCPFlags.Null");
    assert_eq!(a.response, Response::TerminateAndBlock);
    assert_eq!(a.block_skipped, None);
    assert_eq!(a.block_minutes, Some(60));
    assert_eq!(w.counters().blocks_added, 1);
}

/// A blind forger completes the handshake on the wire with a guessed acknowledgement
/// number: the flow table calls it established, but it proves nothing.
#[test]
fn a_blind_handshake_proves_nothing() {
    let mut w = worker("");
    let mut frames = handshake(0x66, 40000, SERVER_ISN + 2);
    frames.push(null_probe(0x66));
    let a = only(&feed(&mut w, 1, &frames), "Scan.Generic.TCPFlags.Null");
    assert_eq!(a.block_skipped, Some(BlockSkip::UnverifiedSource));
    assert_eq!(w.counters().blocks_added, 0);
}

/// The proven host's address from another MAC: a spoof of it. The spoofed packets are
/// dropped as MAC spoofing and never block the owner: not the single-packet detection they
/// cause, not a flood they make (a per-destination detection naming the owner's address);
/// they feed none of the owner's scan counts.
#[test]
fn a_spoofed_proven_address_is_never_blocked() {
    let mut w = worker("attack_blocker:\n  detectors:\n    syn_flood: {count: 5}\n");
    let mut frames = handshake(0x66, 40000, SERVER_ISN + 1);
    frames.push(seg(
        CLIENT,
        0x99,
        SERVER,
        (54321, 21),
        FIN | PSH | URG,
        7,
        0,
    ));
    let alerts = feed(&mut w, 1, &frames);
    assert_eq!(
        only(&alerts, "Spoof.Generic.MAC").response,
        Response::Terminate
    );
    let a = only(&alerts, "Scan.Generic.TCPFlags.Xmas");
    assert_eq!(a.block_skipped, Some(BlockSkip::SpoofedSource));
    assert_eq!(a.response, Response::Terminate);
    assert_eq!(w.counters().dropped_attack, 1);
    // A SYN flood carrying the address from the other MAC.
    let flood: Vec<Vec<u8>> = (1..=20u16)
        .map(|p| seg(CLIENT, 0x99, SERVER, (50000 + p, 80), SYN, 9, 0))
        .collect();
    let alerts = feed(&mut w, 10, &flood);
    let a = only(&alerts, "DoS.Generic.SYNFlood");
    assert_eq!(a.block_skipped, Some(BlockSkip::SpoofedSource));
    assert_eq!(a.response, Response::Terminate);
    assert_eq!(w.counters().blocks_added, 0);
    // A SYN scan from the other MAC is not the owner's scan: no scan detection, and the
    // owner's next connection is not part of any episode.
    let other = Ipv4Addr::new(10, 0, 0, 11);
    let scan: Vec<Vec<u8>> = (1..=25u16)
        .map(|p| seg(CLIENT, 0x99, other, (54321, p), SYN, 9, 0))
        .collect();
    let alerts = feed(&mut w, 20, &scan);
    assert!(
        alerts.iter().all(|a| a.signature != "Scan.Generic.TCP"),
        "{alerts:?}"
    );
    let mut out = VecOutput::default();
    let meta = PacketMeta {
        ts: Timestamp(21 * Timestamp::SECOND),
        pcap_cnt: 21_000,
    };
    // (To a third host: the SYNs to the scanned one are a flood there, whoever sends them.)
    let own_syn = seg(
        CLIENT,
        0x66,
        Ipv4Addr::new(10, 0, 0, 12),
        (40001, 443),
        SYN,
        5000,
        0,
    );
    assert_eq!(w.process(&own_syn, meta, &mut out), Verdict::Forward);
    // The owner's own packets still pass.
    let mut out = VecOutput::default();
    let meta = PacketMeta {
        ts: Timestamp(40 * Timestamp::SECOND),
        pcap_cnt: 40,
    };
    let own = seg(CLIENT, 0x66, SERVER, (40000, 80), ACK, 1001, SERVER_ISN + 1);
    assert_eq!(w.process(&own, meta, &mut out), Verdict::Forward);
}

#[test]
fn never_block_holds_for_every_detection() {
    let mut w = worker("never_block: [10.0.0.64/29]\n");
    let mut frames = handshake(0x66, 40000, SERVER_ISN + 1);
    frames.push(null_probe(0x66));
    let a = only(&feed(&mut w, 1, &frames), "Scan.Generic.TCPFlags.Null");
    assert_eq!(a.block_skipped, Some(BlockSkip::NeverBlock));
    let scan: Vec<Vec<u8>> = (1..=20u16)
        .map(|p| seg(CLIENT, 0x66, SERVER, (54321, p), SYN, 9, 0))
        .collect();
    let a = only(&feed(&mut w, 10, &scan), "Scan.Generic.TCP");
    assert_eq!(a.block_skipped, Some(BlockSkip::NeverBlock));
    assert_eq!(a.response, Response::Terminate);
    assert_eq!(w.counters().blocks_added, 0);
}

#[test]
fn the_policy_may_block_unverified_sources() {
    let mut w = worker("attack_blocker:\n  block_unverified_sources: true\n");
    let a = only(
        &feed(&mut w, 1, &[null_probe(0x66)]),
        "Scan.Generic.TCPFlags.Null",
    );
    assert_eq!(a.block_skipped, None);
    assert_eq!(a.response, Response::TerminateAndBlock);
    assert_eq!(w.counters().blocks_added, 1);
}

/// A proof lasts an hour of packet time.
#[test]
fn a_proof_expires() {
    let mut w = worker("");
    feed(&mut w, 1, &handshake(0x66, 40000, SERVER_ISN + 1));
    let a = only(
        &feed(&mut w, 3_700, &[null_probe(0x66)]),
        "Scan.Generic.TCPFlags.Null",
    );
    assert_eq!(a.block_skipped, Some(BlockSkip::UnverifiedSource));
}
