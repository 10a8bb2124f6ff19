//! Decoder throughput: synthetic frames, and every frame of the shared nDPI capture when present.
//!
//! `cargo bench -p dataplane --bench decode`. Throughput is compared between commits on the same
//! machine, never asserted (STYLE 18).

// Fixtures are built from constants; a panic here is a broken bench, not a packet off the wire.
#![allow(clippy::indexing_slicing, clippy::expect_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dataplane::decode::{DecodeOptions, decode_frame};
use pcap_file::pcap::PcapReader;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol, Ipv4Packet,
    Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket,
    UdpRepr,
};
use vlan::{VlanId, VlanStack};

const PCAP: &str = "/work/shared/bench/pcaps/ndpi-tests-merged.pcap";

const SRC4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const DST4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// Ethernet header and optional VLAN tags around `l3`, padded to `min_len`.
fn frame(vlan: VlanStack, ethertype: EthernetProtocol, l3: &[u8], min_len: usize) -> Vec<u8> {
    let hdr = 14 + vlan.wire_len();
    let mut f = vec![0u8; (hdr + l3.len()).max(min_len)];
    EthernetRepr {
        src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
        ethertype: EthernetProtocol::from(vlan.outer_tpid(u16::from(ethertype))),
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    vlan.emit(&mut f[14..hdr], u16::from(ethertype))
        .expect("sized for the tags");
    f[hdr..hdr + l3.len()].copy_from_slice(l3);
    f
}

fn tcp_v4(control: TcpControl, payload: &[u8]) -> Vec<u8> {
    let caps = ChecksumCapabilities::default();
    let tcp = TcpRepr {
        src_port: 40000,
        dst_port: 80,
        control,
        seq_number: TcpSeqNumber(100),
        ack_number: None,
        window_len: 65535,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    let ip = Ipv4Repr {
        src_addr: SRC4,
        dst_addr: DST4,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; ip.buffer_len() + tcp.buffer_len()];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &caps);
    tcp.emit(
        &mut TcpPacket::new_unchecked(&mut buf[20..]),
        &IpAddr::V4(SRC4).into(),
        &IpAddr::V4(DST4).into(),
        &caps,
    );
    buf
}

fn udp_v6(payload: &[u8]) -> Vec<u8> {
    let caps = ChecksumCapabilities::default();
    let ip = Ipv6Repr {
        src_addr: SRC6,
        dst_addr: DST6,
        next_header: IpProtocol::Udp,
        payload_len: 8 + payload.len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; ip.buffer_len() + 8 + payload.len()];
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
    UdpRepr {
        src_port: 5353,
        dst_port: 53,
    }
    .emit(
        &mut UdpPacket::new_unchecked(&mut buf[40..]),
        &IpAddr::V6(SRC6).into(),
        &IpAddr::V6(DST6).into(),
        payload.len(),
        |b| b.copy_from_slice(payload),
        &caps,
    );
    buf
}

fn synthetic(c: &mut Criterion) {
    let plain = DecodeOptions::default();
    let verify = DecodeOptions {
        verify_checksums: true,
    };
    let syn = frame(
        VlanStack::UNTAGGED,
        EthernetProtocol::Ipv4,
        &tcp_v4(TcpControl::Syn, &[]),
        64,
    );
    let vlan = VlanStack::single(VlanId::new(100).expect("valid id"));
    let big = frame(
        vlan,
        EthernetProtocol::Ipv4,
        &tcp_v4(TcpControl::Psh, &[0xab; 1460]),
        0,
    );
    let v6 = frame(
        VlanStack::UNTAGGED,
        EthernetProtocol::Ipv6,
        &udp_v6(&[0x5a; 100]),
        0,
    );
    assert_eq!((syn.len(), big.len()), (64, 1518));
    for f in [&syn, &big, &v6] {
        let d = decode_frame(f, verify).expect("fixture decodes");
        assert!(d.anomalies.is_empty());
    }

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tcp_syn_64", |b| {
        b.iter(|| decode_frame(black_box(&syn), plain).is_ok())
    });
    g.bench_function("vlan_tcp_1518", |b| {
        b.iter(|| decode_frame(black_box(&big), plain).is_ok())
    });
    g.bench_function("vlan_tcp_1518_verify_checksums", |b| {
        b.iter(|| decode_frame(black_box(&big), verify).is_ok())
    });
    g.bench_function("ipv6_udp", |b| {
        b.iter(|| decode_frame(black_box(&v6), plain).is_ok())
    });
    g.finish();
}

/// Every frame of the capture, in memory.
fn load(path: &Path) -> Option<Vec<Vec<u8>>> {
    let file = std::fs::File::open(path).ok()?;
    let mut reader = PcapReader::new(std::io::BufReader::new(file)).ok()?;
    let mut frames = Vec::new();
    while let Some(pkt) = reader.next_packet() {
        frames.push(pkt.ok()?.data.into_owned());
    }
    Some(frames)
}

fn capture(c: &mut Criterion) {
    let Some(frames) = load(Path::new(PCAP)) else {
        eprintln!("skipping decode/ndpi-tests-merged: {PCAP} not readable");
        return;
    };
    let opts = DecodeOptions::default();
    let mut errors = std::collections::BTreeMap::<&str, usize>::new();
    let mut anomalies = std::collections::BTreeMap::<&str, usize>::new();
    let verify = DecodeOptions {
        verify_checksums: true,
    };
    for f in &frames {
        match decode_frame(f, verify) {
            Ok(d) => d
                .anomalies
                .iter()
                .for_each(|a| *anomalies.entry(a.name()).or_default() += 1),
            Err(e) => *errors.entry(e.name()).or_default() += 1,
        }
    }
    eprintln!(
        "{PCAP}: {} frames; errors {errors:?}; anomalies {anomalies:?}",
        frames.len()
    );

    let mut g = c.benchmark_group("decode_pcap");
    g.throughput(Throughput::Elements(
        u64::try_from(frames.len()).unwrap_or(u64::MAX),
    ));
    g.sample_size(20);
    g.bench_function("ndpi-tests-merged", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for f in &frames {
                ok += usize::from(decode_frame(black_box(f), opts).is_ok());
            }
            ok
        })
    });
    g.bench_function("ndpi-tests-merged_verify_checksums", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for f in &frames {
                ok += usize::from(decode_frame(black_box(f), verify).is_ok());
            }
            ok
        })
    });
    g.finish();
}

criterion_group!(benches, synthetic, capture);
criterion_main!(benches);
