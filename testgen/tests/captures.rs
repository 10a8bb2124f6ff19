//! Every capture parses with smoltcp's checked views, carries valid checksums and the tags it was
//! asked for, is deterministic, survives a pcap round trip, and holds the counts the detectors'
//! default thresholds need.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetFrame, Icmpv4Packet, Icmpv6Packet, IpAddress,
    Ipv4Packet, Ipv6ExtHeader, Ipv6FragmentHeader, Ipv6Packet, TcpPacket, UdpPacket,
};
use testgen::scenarios::{self, Scenario};
use testgen::{Capture, Link, plan, tcp_flags};
use vlan::{TagPacket, Tpid};

// ---------------------------------------------------------------------------------------------
// A small decoder on smoltcp's checked views.

#[derive(Clone, Debug, PartialEq)]
enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        flags: u16,
        seq: u32,
        ack: u32,
        len: usize,
    },
    Udp {
        sport: u16,
        dport: u16,
        payload: Vec<u8>,
    },
    Icmp {
        ty: u8,
        code: u8,
        data: Vec<u8>,
    },
    Icmpv6 {
        ty: u8,
        code: u8,
    },
    /// A fragment: checksummed after reassembly.
    Fragment,
}

#[derive(Clone, Debug)]
struct Ip {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    /// (id, offset in bytes, more fragments, data) when fragmented.
    frag: Option<(u32, usize, bool, Vec<u8>)>,
    /// Extension headers seen (IPv6 next-header numbers).
    ext: Vec<u8>,
    l4: L4,
}

#[derive(Clone, Debug)]
enum L3 {
    Arp {
        op: ArpOperation,
        sha: [u8; 6],
        spa: Ipv4Addr,
    },
    Ip(Ip),
}

#[derive(Clone, Debug)]
struct Decoded {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    /// (TPID, VID), outer first.
    tags: Vec<(u16, u16)>,
    l3: L3,
}

fn tcp_flags_of(p: &TcpPacket<&[u8]>) -> u16 {
    let mut f = 0;
    for (set, bit) in [
        (p.fin(), tcp_flags::FIN),
        (p.syn(), tcp_flags::SYN),
        (p.rst(), tcp_flags::RST),
        (p.psh(), tcp_flags::PSH),
        (p.ack(), tcp_flags::ACK),
        (p.urg(), tcp_flags::URG),
        (p.ece(), tcp_flags::ECE),
        (p.cwr(), tcp_flags::CWR),
    ] {
        if set {
            f |= bit;
        }
    }
    f
}

fn seq_u32(s: smoltcp::wire::TcpSeqNumber) -> u32 {
    u32::from_be_bytes(s.0.to_be_bytes())
}

/// Parse and checksum an upper-layer payload.
fn upper(src: IpAddr, dst: IpAddr, proto: u8, data: &[u8]) -> Result<L4, String> {
    let (s, d) = (IpAddress::from(src), IpAddress::from(dst));
    match proto {
        6 => {
            let p = TcpPacket::new_checked(data).map_err(|e| format!("tcp: {e}"))?;
            if !p.verify_checksum(&s, &d) {
                return Err("bad TCP checksum".into());
            }
            Ok(L4::Tcp {
                sport: p.src_port(),
                dport: p.dst_port(),
                flags: tcp_flags_of(&p),
                seq: seq_u32(p.seq_number()),
                ack: seq_u32(p.ack_number()),
                len: p.payload().len(),
            })
        }
        17 => {
            let p = UdpPacket::new_checked(data).map_err(|e| format!("udp: {e}"))?;
            if p.checksum() == 0 || !p.verify_checksum(&s, &d) {
                return Err("bad UDP checksum".into());
            }
            Ok(L4::Udp {
                sport: p.src_port(),
                dport: p.dst_port(),
                payload: p.payload().to_vec(),
            })
        }
        1 => {
            let p = Icmpv4Packet::new_checked(data).map_err(|e| format!("icmp: {e}"))?;
            if !p.verify_checksum() {
                return Err("bad ICMP checksum".into());
            }
            Ok(L4::Icmp {
                ty: u8::from(p.msg_type()),
                code: p.msg_code(),
                data: data[4..].to_vec(),
            })
        }
        58 => {
            let p = Icmpv6Packet::new_checked(data).map_err(|e| format!("icmpv6: {e}"))?;
            let (IpAddr::V6(s6), IpAddr::V6(d6)) = (src, dst) else {
                return Err("ICMPv6 over IPv4".into());
            };
            if !p.verify_checksum(&s6, &d6) {
                return Err("bad ICMPv6 checksum".into());
            }
            Ok(L4::Icmpv6 {
                ty: u8::from(p.msg_type()),
                code: p.msg_code(),
            })
        }
        other => Err(format!("unexpected protocol {other}")),
    }
}

fn decode(frame: &[u8]) -> Result<Decoded, String> {
    let eth = EthernetFrame::new_checked(frame).map_err(|e| format!("ethernet: {e}"))?;
    let mut ethertype = u16::from(eth.ethertype());
    let mut rest = eth.payload();
    let mut tags = Vec::new();
    while Tpid::from(ethertype).is_tag() {
        let tag = TagPacket::new_checked(rest).map_err(|e| format!("tag: {e}"))?;
        tags.push((ethertype, tag.vid()));
        ethertype = tag.inner_ethertype();
        rest = &rest[4..];
    }
    let l3 = match ethertype {
        0x0806 => {
            let p = ArpPacket::new_checked(rest).map_err(|e| format!("arp: {e}"))?;
            let ArpRepr::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                ..
            } = ArpRepr::parse(&p).map_err(|e| format!("arp: {e}"))?
            else {
                return Err("non-Ethernet/IPv4 ARP".into());
            };
            L3::Arp {
                op: operation,
                sha: source_hardware_addr.0,
                spa: source_protocol_addr,
            }
        }
        0x0800 => {
            let p = Ipv4Packet::new_checked(rest).map_err(|e| format!("ipv4: {e}"))?;
            if !p.verify_checksum() {
                return Err("bad IPv4 header checksum".into());
            }
            if usize::from(p.total_len()) != rest.len() {
                return Err("IPv4 total length differs from frame".into());
            }
            let (src, dst) = (IpAddr::V4(p.src_addr()), IpAddr::V4(p.dst_addr()));
            let proto = u8::from(p.next_header());
            let offset = usize::from(p.frag_offset());
            if p.more_frags() || offset != 0 {
                let frag = Some((
                    u32::from(p.ident()),
                    offset,
                    p.more_frags(),
                    p.payload().to_vec(),
                ));
                L3::Ip(Ip {
                    src,
                    dst,
                    proto,
                    frag,
                    ext: vec![],
                    l4: L4::Fragment,
                })
            } else {
                let l4 = upper(src, dst, proto, p.payload())?;
                L3::Ip(Ip {
                    src,
                    dst,
                    proto,
                    frag: None,
                    ext: vec![],
                    l4,
                })
            }
        }
        0x86dd => {
            let p = Ipv6Packet::new_checked(rest).map_err(|e| format!("ipv6: {e}"))?;
            if p.total_len() != rest.len() {
                return Err("IPv6 length differs from frame".into());
            }
            let (src, dst) = (IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr()));
            let mut nh = u8::from(p.next_header());
            let mut body = p.payload();
            let mut ext = Vec::new();
            while matches!(nh, 0 | 43 | 44 | 60) {
                let h = Ipv6ExtHeader::new_checked(body).map_err(|e| format!("ipv6 ext: {e}"))?;
                let len = (usize::from(h.header_len()) + 1) * 8;
                ext.push(nh);
                if nh == 44 {
                    let f = Ipv6FragmentHeader::new_checked(h.payload())
                        .map_err(|e| format!("frag: {e}"))?;
                    let next = u8::from(h.next_header());
                    let frag = Some((
                        f.ident(),
                        usize::from(f.frag_offset()) * 8,
                        f.more_frags(),
                        body[len..].to_vec(),
                    ));
                    // The fragmentable part is reassembled later; record its next header.
                    return Ok(Decoded {
                        src_mac: eth.src_addr().0,
                        dst_mac: eth.dst_addr().0,
                        tags,
                        l3: L3::Ip(Ip {
                            src,
                            dst,
                            proto: next,
                            frag,
                            ext,
                            l4: L4::Fragment,
                        }),
                    });
                }
                nh = u8::from(h.next_header());
                body = &body[len..];
            }
            let l4 = upper(src, dst, nh, body)?;
            L3::Ip(Ip {
                src,
                dst,
                proto: nh,
                frag: None,
                ext,
                l4,
            })
        }
        other => return Err(format!("unexpected EtherType {other:#06x}")),
    };
    Ok(Decoded {
        src_mac: eth.src_addr().0,
        dst_mac: eth.dst_addr().0,
        tags,
        l3,
    })
}

/// The IPv6 fragmentable part may begin with a destination-options header: skip it.
fn skip_dest_opts(proto: u8, data: &[u8]) -> (u8, &[u8]) {
    if proto == 60 {
        let h = Ipv6ExtHeader::new_checked(data).unwrap();
        let len = (usize::from(h.header_len()) + 1) * 8;
        (u8::from(h.next_header()), &data[len..])
    } else {
        (proto, data)
    }
}

/// How a fragment set reassembled.
#[derive(Debug, PartialEq)]
enum Reassembly {
    Ok(L4),
    Overlap,
    Oversize,
    Incomplete,
}

/// One fragment: offset, more fragments, data, next header, IPv6.
type FragPiece = (usize, bool, Vec<u8>, u8, bool);

/// Decode every frame; reassemble fragment sets. Panics with the frame index on any error.
fn decode_all(cap: &Capture) -> (Vec<Decoded>, Vec<Reassembly>) {
    let mut out = Vec::new();
    let mut groups: BTreeMap<(String, String, u32), Vec<FragPiece>> = BTreeMap::new();
    for (i, f) in cap.frames.iter().enumerate() {
        let d = decode(&f.data).unwrap_or_else(|e| panic!("frame {i}: {e}"));
        if let L3::Ip(ip) = &d.l3
            && let Some((id, off, more, data)) = &ip.frag
        {
            groups
                .entry((ip.src.to_string(), ip.dst.to_string(), *id))
                .or_default()
                .push((*off, *more, data.clone(), ip.proto, ip.src.is_ipv6()));
        }
        out.push(d);
    }
    let mut results = Vec::new();
    for ((src, dst, _), mut frags) in groups {
        frags.sort_by_key(|f| f.0);
        let mut buf = Vec::new();
        let mut overlap = false;
        for (off, _, data, _, _) in &frags {
            if *off < buf.len() {
                overlap = true;
            } else if *off > buf.len() {
                break;
            }
            buf.truncate(*off);
            buf.extend_from_slice(data);
        }
        let last_ok = frags.last().is_some_and(|f| !f.1);
        let (_, _, _, proto, v6) = frags[0];
        let ip_hdr = if v6 { 40 } else { 20 };
        let r = if overlap {
            Reassembly::Overlap
        } else if buf.len() + ip_hdr > 65_535 && !v6 {
            Reassembly::Oversize
        } else if !last_ok {
            Reassembly::Incomplete
        } else {
            let (proto, body) = skip_dest_opts(proto, &buf);
            Reassembly::Ok(upper(src.parse().unwrap(), dst.parse().unwrap(), proto, body).unwrap())
        };
        results.push(r);
    }
    (out, results)
}

fn links() -> Vec<(&'static str, Link)> {
    vec![
        ("untagged", plan::untagged()),
        ("vlan100", plan::vlan100()),
        ("vlan200", plan::vlan200()),
        ("qinq", plan::qinq()),
    ]
}

fn ip(d: &Decoded) -> &Ip {
    match &d.l3 {
        L3::Ip(ip) => ip,
        L3::Arp { .. } => panic!("expected IP, got ARP"),
    }
}

fn tcp(d: &Decoded) -> Option<(u16, u16, u16)> {
    match &d.l3 {
        L3::Ip(Ip {
            l4:
                L4::Tcp {
                    sport,
                    dport,
                    flags,
                    ..
                },
            ..
        }) => Some((*sport, *dport, *flags)),
        _ => None,
    }
}

const SYN_ONLY: u16 = tcp_flags::SYN;

/// Most frames matching `pred` inside any window of `window_us`.
fn max_in_window(cap: &Capture, window_us: u64, pred: impl Fn(&[u8]) -> bool) -> usize {
    let ts: Vec<u64> = cap
        .frames
        .iter()
        .filter(|f| pred(&f.data))
        .map(|f| f.ts_us)
        .collect();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..ts.len() {
        while ts[hi] - ts[lo] >= window_us {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

fn every_scenario() -> Vec<(String, Scenario)> {
    let mut v: Vec<(String, Scenario)> = scenarios::all()
        .into_iter()
        .map(|(n, f)| (n.to_owned(), f))
        .collect();
    v.extend(
        scenarios::all_v6()
            .into_iter()
            .map(|(n, f)| (format!("{n} (v6)"), f)),
    );
    v
}

// ---------------------------------------------------------------------------------------------
// Properties of every capture

#[test]
fn every_frame_parses_with_valid_checksums_on_every_link() {
    for (lname, link) in links() {
        for (name, f) in every_scenario() {
            let cap = f(&link, plan::BASE_US);
            assert!(!cap.is_empty(), "{name} on {lname} is empty");
            let (_, reassembled) = decode_all(&cap);
            for r in reassembled {
                match (name.as_str(), &r) {
                    ("ping_of_death", Reassembly::Oversize) | ("teardrop", Reassembly::Overlap) => {
                    }
                    (_, Reassembly::Ok(_)) => {}
                    _ => panic!("{name} on {lname}: fragments reassemble as {r:?}"),
                }
            }
        }
    }
}

#[test]
fn tags_are_as_requested() {
    for (lname, link) in links() {
        for (name, f) in every_scenario() {
            if name.starts_with("udp_flood") || name.starts_with("icmp_flood") {
                continue; // large and built by the same code path as every other frame
            }
            for frame in f(&link, plan::BASE_US).frames {
                let d = &frame.data;
                let want: &[(u16, u16)] = match lname {
                    "untagged" => &[],
                    "vlan100" => &[(0x8100, 100)],
                    "vlan200" => &[(0x8100, 200)],
                    _ => &[(0x88a8, 300), (0x8100, 100)],
                };
                assert_eq!(decode(d).unwrap().tags, want, "{name} on {lname}");
                if lname == "qinq" {
                    assert_eq!(
                        &d[12..20],
                        &[0x88, 0xa8, 0x01, 0x2c, 0x81, 0x00, 0x00, 0x64]
                    );
                    assert!(matches!(
                        u16::from_be_bytes([d[20], d[21]]),
                        0x0800 | 0x86dd | 0x0806
                    ));
                }
                if lname == "vlan100" {
                    assert_eq!(&d[12..16], &[0x81, 0x00, 0x00, 0x64]);
                }
            }
        }
    }
}

#[test]
fn output_is_deterministic() {
    let link = plan::qinq();
    for (name, f) in every_scenario() {
        assert_eq!(f(&link, plan::BASE_US), f(&link, plan::BASE_US), "{name}");
    }
    assert_eq!(
        scenarios::demo(plan::BASE_US).to_pcap_bytes(),
        scenarios::demo(plan::BASE_US).to_pcap_bytes()
    );
}

#[test]
fn scenarios_start_at_start_and_are_time_ordered() {
    let link = plan::vlan100();
    for (name, f) in every_scenario() {
        let mut cap = f(&link, plan::BASE_US);
        assert_eq!(cap.first_ts(), Some(plan::BASE_US), "{name}");
        let before = cap.clone();
        cap.sort_by_time();
        assert_eq!(cap, before, "{name} is not in time order");
    }
}

#[test]
fn pcap_round_trips() {
    let cap = scenarios::tcp_port_scan(&plan::qinq(), plan::BASE_US);
    let path = std::env::temp_dir().join(format!("testgen-roundtrip-{}.pcap", std::process::id()));
    cap.write_pcap(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(bytes, cap.to_pcap_bytes());
    let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
    let header = reader.header();
    assert_eq!(header.datalink, pcap_file::DataLink::ETHERNET);
    assert_eq!(header.ts_resolution, pcap_file::TsResolution::MicroSecond);
    let mut back = Capture::new();
    while let Some(p) = reader.next_packet() {
        let p = p.unwrap();
        assert_eq!(p.orig_len as usize, p.data.len());
        back.push(
            u64::try_from(p.timestamp.as_micros()).unwrap(),
            p.data.into_owned(),
        );
    }
    assert_eq!(back, cap);
}

#[test]
fn capture_helpers() {
    let mut a = Capture::new();
    a.push(5, vec![1]);
    a.push(1, vec![2]);
    let mut b = Capture::new();
    b.push(1, vec![3]);
    a.extend(b);
    assert_eq!(a.len(), 3);
    assert_eq!(a.last_ts(), Some(1));
    a.sort_by_time();
    let order: Vec<u8> = a.frames.iter().map(|f| f.data[0]).collect();
    assert_eq!(order, [2, 3, 1], "sort is stable");
    assert_eq!(a.last_ts(), Some(5));
    assert_eq!(Capture::new().last_ts(), None);
}

// ---------------------------------------------------------------------------------------------
// Per-scenario counts

#[test]
fn tcp_port_scan_counts() {
    for (v6, f) in [
        (false, scenarios::tcp_port_scan as Scenario),
        (true, scenarios::tcp_port_scan_v6),
    ] {
        let cap = f(&plan::vlan100(), plan::BASE_US);
        let (d, _) = decode_all(&cap);
        let attacker = if v6 {
            IpAddr::V6(plan::ATTACKER_V6)
        } else {
            IpAddr::V4(plan::ATTACKER_V4)
        };
        let syns: Vec<u16> = d
            .iter()
            .filter(|d| ip(d).src == attacker)
            .filter_map(tcp)
            .filter(|t| t.2 == SYN_ONLY)
            .map(|t| t.1)
            .collect();
        assert_eq!(syns.len(), 100);
        assert_eq!(syns.iter().collect::<BTreeSet<_>>().len(), 100);
        let synacks: BTreeSet<u16> = d
            .iter()
            .filter_map(tcp)
            .filter(|t| t.2 == tcp_flags::SYN | tcp_flags::ACK)
            .map(|t| t.0)
            .collect();
        assert_eq!(synacks, BTreeSet::from([22, 80]));
        let rstacks = d
            .iter()
            .filter_map(tcp)
            .filter(|t| t.2 == tcp_flags::RST | tcp_flags::ACK)
            .count();
        assert_eq!(rstacks, 98);
        assert_eq!(cap.len(), 202);
        assert!(max_in_window(&cap, 10_000_000, |_| true) >= 100);
    }
}

#[test]
fn udp_port_scan_counts() {
    let cap = scenarios::udp_port_scan(&plan::vlan100(), plan::BASE_US);
    let (d, _) = decode_all(&cap);
    let ports: BTreeSet<u16> = d
        .iter()
        .filter_map(|d| match &ip(d).l4 {
            L4::Udp { dport, .. } => Some(*dport),
            _ => None,
        })
        .collect();
    assert_eq!(ports.len(), 60);
    let mut unreach = 0;
    for x in &d {
        if let L4::Icmp {
            ty: 3,
            code: 3,
            data,
        } = &ip(x).l4
        {
            // 4 unused bytes, then the quoted IPv4 header (20) + 8 bytes of UDP.
            assert_eq!(data.len(), 4 + 28);
            let quoted = Ipv4Packet::new_unchecked(&data[4..]);
            assert_eq!(quoted.src_addr(), plan::ATTACKER_V4);
            assert_eq!(u8::from(quoted.next_header()), 17);
            unreach += 1;
        }
    }
    assert_eq!(unreach, 58);
    let v6 = scenarios::udp_port_scan_v6(&plan::vlan100(), plan::BASE_US);
    let (d6, _) = decode_all(&v6);
    assert_eq!(
        d6.iter()
            .filter(|d| ip(d).l4 == L4::Icmpv6 { ty: 1, code: 4 })
            .count(),
        58
    );
}

#[test]
fn host_sweep_counts() {
    for f in [scenarios::host_sweep as Scenario, scenarios::host_sweep_v6] {
        let (d, _) = decode_all(&f(&plan::vlan100(), plan::BASE_US));
        let targets: BTreeSet<IpAddr> = d
            .iter()
            .filter(|d| {
                matches!(
                    ip(d).l4,
                    L4::Icmp { ty: 8, .. } | L4::Icmpv6 { ty: 128, .. }
                )
            })
            .map(|d| ip(d).dst)
            .collect();
        assert_eq!(targets.len(), 50);
        let replies = d
            .iter()
            .filter(|d| {
                matches!(
                    ip(d).l4,
                    L4::Icmp { ty: 0, .. } | L4::Icmpv6 { ty: 129, .. }
                )
            })
            .count();
        assert_eq!(replies, 10);
    }
    let (d, _) = decode_all(&scenarios::host_sweep(&plan::untagged(), 0));
    let first = ip(&d[0]).dst;
    assert_eq!(first, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)));
    assert!(
        d.iter()
            .any(|d| ip(d).dst == IpAddr::V4(Ipv4Addr::new(10, 0, 0, 149)))
    );
}

#[test]
fn syn_flood_counts() {
    let cap = scenarios::syn_flood(&plan::vlan100(), plan::BASE_US);
    let (d, _) = decode_all(&cap);
    let syns = d
        .iter()
        .filter(|x| tcp(x).is_some_and(|t| t.1 == 80 && t.2 == SYN_ONLY))
        .count();
    assert_eq!(syns, 600);
    assert_eq!(
        d.iter()
            .filter(|x| tcp(x).is_some_and(|t| t.2 == tcp_flags::SYN | tcp_flags::ACK))
            .count(),
        150
    );
    let is_syn = |f: &[u8]| {
        decode(f)
            .ok()
            .and_then(|d| tcp(&d))
            .is_some_and(|t| t.2 == SYN_ONLY)
    };
    assert!(max_in_window(&cap, 5_000_000, is_syn) > 200 * 2);
    let sports: BTreeSet<u16> = d
        .iter()
        .filter_map(tcp)
        .filter(|t| t.2 == SYN_ONLY)
        .map(|t| t.0)
        .collect();
    assert!(
        sports.len() > 550,
        "source ports look random: {}",
        sports.len()
    );
}

#[test]
fn syn_flood_random_sources_counts() {
    for f in [
        scenarios::syn_flood_random_sources as Scenario,
        scenarios::syn_flood_random_sources_v6,
    ] {
        let (d, _) = decode_all(&f(&plan::vlan100(), plan::BASE_US));
        let srcs: BTreeSet<IpAddr> = d.iter().map(|d| ip(d).src).collect();
        assert_eq!(srcs.len(), 600);
        assert!(
            d.iter()
                .all(|x| tcp(x).is_some_and(|t| t.1 == 80 && t.2 == SYN_ONLY))
        );
        for s in srcs {
            if let IpAddr::V4(a) = s {
                let o = a.octets();
                assert_eq!(&o[..2], &[10, 200]);
                assert!(o[2..] != [0, 0] && o[2..] != [255, 255], "{a}");
            }
        }
    }
}

#[test]
fn floods_exceed_thresholds() {
    let udp = scenarios::udp_flood(&plan::vlan100(), plan::BASE_US);
    assert_eq!(udp.len(), 25_000);
    assert!(udp.last_ts().unwrap() - plan::BASE_US < 1_000_000);
    let (d, _) = decode_all(&udp);
    assert!(
        d.iter().all(
            |x| matches!(&ip(x).l4, L4::Udp { dport: 9999, payload, .. } if payload.len() == 64)
        )
    );
    assert!(d.iter().all(|x| ip(x).dst == IpAddr::V4(plan::VICTIM_V4)));

    let icmp = scenarios::icmp_flood(&plan::vlan100(), plan::BASE_US);
    assert_eq!(icmp.len(), 3000);
    assert!(icmp.last_ts().unwrap() - plan::BASE_US < 1_000_000);
    let (d, _) = decode_all(&icmp);
    assert!(d.iter().all(|x| matches!(ip(x).l4, L4::Icmp { ty: 8, .. })));
}

#[test]
fn land_is_src_eq_dst() {
    for f in [scenarios::land as Scenario, scenarios::land_v6] {
        let (d, _) = decode_all(&f(&plan::vlan100(), plan::BASE_US));
        assert_eq!(d.len(), 1);
        assert_eq!(ip(&d[0]).src, ip(&d[0]).dst);
        assert_eq!(tcp(&d[0]), Some((139, 139, SYN_ONLY)));
        assert_eq!(d[0].src_mac, plan::ATTACKER_MAC);
        assert_eq!(d[0].dst_mac, plan::VICTIM_MAC);
    }
}

#[test]
fn ping_of_death_overflows() {
    let (d, r) = decode_all(&scenarios::ping_of_death(&plan::vlan100(), plan::BASE_US));
    assert_eq!(d.len(), 45);
    assert_eq!(r, vec![Reassembly::Oversize]);
    let ends: Vec<usize> = d
        .iter()
        .map(|x| {
            ip(x)
                .frag
                .as_ref()
                .map(|(_, off, _, data)| off + data.len())
                .unwrap()
        })
        .collect();
    assert!(ends.iter().all(|e| *e <= 66_600));
    assert!(*ends.last().unwrap() + 20 > 65_535);
    assert!(
        d.iter()
            .all(|x| ip(x).frag.as_ref().unwrap().3.len() == 1480)
    );
}

#[test]
fn teardrop_overlaps() {
    let (d, r) = decode_all(&scenarios::teardrop(&plan::vlan100(), plan::BASE_US));
    assert_eq!(r, vec![Reassembly::Overlap]);
    let f: Vec<_> = d.iter().map(|x| ip(x).frag.clone().unwrap()).collect();
    assert_eq!((f[0].1, f[0].2, f[0].3.len()), (0, true, 36));
    assert_eq!((f[1].1, f[1].2, f[1].3.len()), (24, false, 4));
    assert_ne!(&f[0].3[24..28], &f[1].3[..]);
}

#[test]
fn flag_probes() {
    for (f, flags) in [
        (scenarios::tcp_null as Scenario, 0),
        (
            scenarios::tcp_xmas,
            tcp_flags::FIN | tcp_flags::PSH | tcp_flags::URG,
        ),
        (scenarios::tcp_synfin, tcp_flags::SYN | tcp_flags::FIN),
    ] {
        let (d, _) = decode_all(&f(&plan::vlan100(), plan::BASE_US));
        assert_eq!(d.len(), 3);
        let ports: BTreeSet<u16> = d
            .iter()
            .map(|x| tcp(x).unwrap())
            .inspect(|t| assert_eq!(t.2, flags))
            .map(|t| t.1)
            .collect();
        assert_eq!(ports.len(), 3);
    }
}

#[test]
fn mac_spoofing_claims_victim_ip_from_two_macs() {
    let (d, _) = decode_all(&scenarios::mac_spoofing(&plan::vlan100(), plan::BASE_US));
    let mut arp_macs = BTreeSet::new();
    let mut ip_macs = BTreeSet::new();
    for x in &d {
        match &x.l3 {
            L3::Arp { op, sha, spa } => {
                assert_eq!(*op, ArpOperation::Reply);
                assert_eq!(*spa, plan::VICTIM_V4);
                assert_eq!(*sha, x.src_mac);
                arp_macs.insert(*sha);
            }
            L3::Ip(ip) => {
                assert_eq!(ip.src, IpAddr::V4(plan::VICTIM_V4));
                ip_macs.insert(x.src_mac);
            }
        }
    }
    let both = BTreeSet::from([plan::VICTIM_MAC, plan::SPOOFER_MAC]);
    assert_eq!(arp_macs, both);
    assert_eq!(ip_macs, both);
}

/// Per-source TCP/UDP destination ports, hosts and per-destination packet counts stay below
/// the default thresholds.
fn assert_below_thresholds(cap: &Capture, what: &str) {
    let (d, _) = decode_all(cap);
    let mut ports: HashMap<(IpAddr, u8), BTreeSet<u16>> = HashMap::new();
    let mut hosts: HashMap<IpAddr, BTreeSet<IpAddr>> = HashMap::new();
    for x in &d {
        let L3::Ip(ip) = &x.l3 else { continue };
        match &ip.l4 {
            L4::Tcp { dport, flags, .. }
                if *flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN =>
            {
                ports.entry((ip.src, 6)).or_default().insert(*dport);
                hosts.entry(ip.src).or_default().insert(ip.dst);
            }
            L4::Udp { dport, .. } => {
                ports.entry((ip.src, 17)).or_default().insert(*dport);
            }
            L4::Icmp { ty: 8, .. } | L4::Icmpv6 { ty: 128, .. } => {
                hosts.entry(ip.src).or_default().insert(ip.dst);
            }
            _ => {}
        }
    }
    assert!(ports.values().all(|p| p.len() < 10), "{what}: {ports:?}");
    assert!(hosts.values().all(|h| h.len() < 10), "{what}: {hosts:?}");
    assert!(max_in_window(cap, 1_000_000, |_| true) < 200, "{what}");
}

#[test]
fn benign_is_benign_and_well_formed() {
    for f in [
        scenarios::benign as Scenario,
        scenarios::benign_v6,
        scenarios::ipv6_ext_fragments,
    ] {
        let cap = f(&plan::vlan100(), plan::BASE_US);
        assert_below_thresholds(&cap, "benign");
    }
    let cap = scenarios::benign(&plan::vlan100(), plan::BASE_US);
    assert_eq!(cap.len(), 54);
    let (d, _) = decode_all(&cap);
    let dns: Vec<&Vec<u8>> = d
        .iter()
        .filter_map(|x| match &ip(x).l4 {
            L4::Udp {
                dport: 53, payload, ..
            } => Some(payload),
            _ => None,
        })
        .collect();
    assert_eq!(dns.len(), 3);
    // id, flags RD, 1 question, "example.com" A IN.
    assert_eq!(&dns[0][2..4], &[0x01, 0x00]);
    assert_eq!(&dns[0][12..], b"\x07example\x03com\x00\x00\x01\x00\x01");
    assert!(d.iter().any(|x| ip(x).src.is_ipv6() && tcp(x).is_some()));
}

#[test]
fn tcp_sessions_have_consistent_sequence_numbers() {
    let link = plan::vlan100();
    let (c, s) = (plan::victim(), plan::server());
    let cap = testgen::tcp_session(&link, &c, &s, 40_000, 8080, &[7u8; 4000], b"pong", 0, 10);
    let (d, _) = decode_all(&cap);
    // Next expected sequence number per direction, learned from the SYNs.
    let mut next: HashMap<bool, u32> = HashMap::new();
    for x in &d {
        let L3::Ip(Ip {
            src,
            l4:
                L4::Tcp {
                    flags,
                    seq,
                    ack,
                    len,
                    ..
                },
            ..
        }) = &x.l3
        else {
            panic!()
        };
        let from_client = *src == c.ip;
        if let Some(n) = next.get(&from_client) {
            assert_eq!(seq, n, "sequence continues");
        }
        if *flags & tcp_flags::ACK != 0 {
            assert_eq!(
                Some(ack),
                next.get(&!from_client),
                "ack covers the peer's bytes"
            );
        }
        let used = u32::try_from(*len).unwrap()
            + u32::from(*flags & (tcp_flags::SYN | tcp_flags::FIN) != 0);
        next.insert(from_client, seq.wrapping_add(used));
    }
    // 4000 bytes: 3 segments; 3 handshake + 3 + ack + 1 + ack + 3 close.
    assert_eq!(cap.len(), 12);
    assert_eq!(testgen::http_get(&link, &c, &s, 40_001, 0, 1).len(), 10);
}

#[test]
fn ipv6_ext_fragments_reassemble() {
    let (d, r) = decode_all(&scenarios::ipv6_ext_fragments(
        &plan::vlan100(),
        plan::BASE_US,
    ));
    assert_eq!(d.len(), 8);
    assert_eq!(d[0].l3.clone_ip().ext, vec![0, 60]);
    assert!(matches!(d[0].l3.clone_ip().l4, L4::Udp { dport: 9000, .. }));
    assert_eq!(d[2].l3.clone_ip().ext, vec![0, 44]);
    assert_eq!(d[5].l3.clone_ip().ext, vec![44]);
    assert_eq!(
        r,
        vec![
            Reassembly::Ok(L4::Icmpv6 { ty: 128, code: 0 }),
            Reassembly::Ok(L4::Icmpv6 { ty: 129, code: 0 })
        ]
    );
}

impl L3 {
    fn clone_ip(&self) -> Ip {
        match self {
            L3::Ip(ip) => ip.clone(),
            L3::Arp { .. } => panic!("ARP"),
        }
    }
}

#[test]
fn follow_up_counts() {
    let (d, _) = decode_all(&scenarios::follow_up(&plan::vlan100(), plan::BASE_US));
    assert_eq!(d.len(), 15);
    assert_eq!(
        d.iter()
            .filter(|x| tcp(x).is_some_and(|t| t.1 == 443 && t.2 == SYN_ONLY))
            .count(),
        5
    );
    assert!(d.iter().all(|x| ip(x).src == IpAddr::V4(plan::ATTACKER_V4)
        || ip(x).dst == IpAddr::V4(plan::ATTACKER_V4)));
}

#[test]
fn scenario_frame_counts() {
    let link = plan::vlan100();
    let want: BTreeMap<&str, usize> = BTreeMap::from([
        ("tcp_port_scan", 202),
        ("udp_port_scan", 118),
        ("host_sweep", 60),
        ("host_sweep_v6", 60),
        ("syn_flood", 750),
        ("syn_flood_random_sources", 600),
        ("udp_flood", 25_000),
        ("icmp_flood", 3000),
        ("land", 1),
        ("ping_of_death", 45),
        ("teardrop", 2),
        ("tcp_null", 3),
        ("tcp_xmas", 3),
        ("tcp_synfin", 3),
        ("mac_spoofing", 10),
        ("benign", 54),
        ("ipv6_ext_fragments", 8),
        ("follow_up", 15),
        ("isolation_outbound_scan", 238),
        ("web_addresses", 124),
    ]);
    let got: BTreeMap<&str, usize> = scenarios::all()
        .into_iter()
        .map(|(n, f)| (n, f(&link, 0).len()))
        .collect();
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------------------------
// Demo

#[test]
fn demo_composition() {
    let demo = scenarios::demo(plan::BASE_US);
    let parts = scenarios::demo_parts();
    let total: usize = parts.iter().map(|p| (p.build)(&p.link, 0).len()).sum();
    assert_eq!(demo.len(), total);
    let span = demo.last_ts().unwrap() - demo.first_ts().unwrap();
    assert!((100_000_000..=130_000_000).contains(&span), "span {span}");
    assert!(demo.frames.windows(2).all(|w| w[0].ts_us <= w[1].ts_us));
    let (d, r) = decode_all(&demo);
    assert!(r.contains(&Reassembly::Oversize) && r.contains(&Reassembly::Overlap));
    let scopes: BTreeSet<Vec<u16>> = d
        .iter()
        .map(|x| x.tags.iter().map(|t| t.1).collect())
        .collect();
    assert_eq!(
        scopes,
        BTreeSet::from([vec![], vec![100], vec![200], vec![300, 100]])
    );
    // The port scan from 10.0.0.66 is on VLAN 100 at +10 s; its HTTP session on VLAN 200 at +22 s.
    let attacker = IpAddr::V4(plan::ATTACKER_V4);
    let first_syn = demo
        .frames
        .iter()
        .zip(&d)
        .find(|(_, x)| {
            matches!(&x.l3, L3::Ip(ip) if ip.src == attacker)
                && tcp(x).is_some_and(|t| t.2 == SYN_ONLY)
        })
        .unwrap();
    assert_eq!(first_syn.0.ts_us, plan::BASE_US + 10_000_000);
    assert_eq!(first_syn.1.tags, vec![(0x8100, 100)]);
    assert!(
        demo.frames
            .iter()
            .zip(&d)
            .any(|(f, x)| f.ts_us == plan::BASE_US + 22_000_000
                && x.tags == vec![(0x8100, 200)]
                && matches!(&x.l3, L3::Ip(ip) if ip.src == attacker))
    );
    // The flooder and the prober appear with their own addresses.
    assert!(
        d.iter()
            .any(|x| matches!(&x.l3, L3::Ip(ip) if ip.src == IpAddr::V4(plan::FLOODER_V4)))
    );
    assert!(
        d.iter()
            .any(|x| matches!(&x.l3, L3::Ip(ip) if ip.src == IpAddr::V4(plan::PROBER_V4)))
    );
    assert!(
        d.iter()
            .any(|x| matches!(&x.l3, L3::Ip(ip) if ip.src == IpAddr::V6(plan::ATTACKER_V6)))
    );
}
