//! TCP resets the SVM sends to terminate a connection: one to each end, carrying the flow's VLAN
//! tag stack (QinQ included) and sequence numbers the receiving stack accepts.
//!
//! For a triggering segment from A to B with sequence `s`, acknowledgement `a` (if ACK is set)
//! and `len` sequence-space bytes (payload, +1 for SYN, +1 for FIN):
//! - to B (as if from A): `RST|ACK`, seq `s + len`, ack `a` — B expects `s + len` next from A.
//! - to A (as if from B): if the segment carried an ACK, `RST`, seq `a` — A expects `a` next
//!   from B; otherwise (a bare SYN) `RST|ACK`, seq 0, ack `s + len`, the form RFC 9293 §3.10.7.1
//!   prescribes for a reset to a SYN.

use core::net::IpAddr;

use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
    Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
    UdpPacket, UdpRepr,
};
use vlan::VlanStack;

use crate::decode::{Tcp, TcpFlags};

/// The endpoints of the segment a reset answers.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// VLAN tags of the frame.
    pub vlan: &'a VlanStack,
    /// Source MAC of the segment.
    pub eth_src: [u8; 6],
    /// Destination MAC of the segment.
    pub eth_dst: [u8; 6],
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The TCP header.
    pub tcp: &'a Tcp<'a>,
}

/// TTL / hop limit of injected resets.
const RESET_TTL: u8 = 64;

/// The sequence space a segment takes: its payload, plus one for SYN and one for FIN.
pub(crate) fn seq_len(tcp: &Tcp<'_>) -> u32 {
    let mut n = u32::try_from(tcp.payload.len()).unwrap_or(u32::MAX);
    if tcp.flags.has(TcpFlags::SYN) {
        n = n.wrapping_add(1);
    }
    if tcp.flags.has(TcpFlags::FIN) {
        n = n.wrapping_add(1);
    }
    n
}

#[allow(clippy::too_many_arguments)]
fn build(
    vlan: &VlanStack,
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: Option<u32>,
) -> Option<Vec<u8>> {
    let ends = Ends {
        vlan,
        eth_src,
        eth_dst,
        src,
        dst,
        sport,
        dport,
    };
    build_segment(&ends, seq, ack, TcpControl::Rst, &[])
}

/// Who a built segment goes between.
struct Ends<'a> {
    vlan: &'a VlanStack,
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
}

/// A TCP segment with `control` and `payload` (a window of 0 for a reset, else 65535).
fn build_segment(
    e: &Ends<'_>,
    seq: u32,
    ack: Option<u32>,
    control: TcpControl,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let Ends {
        vlan,
        eth_src,
        eth_dst,
        src,
        dst,
        sport,
        dport,
    } = *e;
    let tcp = TcpRepr {
        src_port: sport,
        dst_port: dport,
        control,
        seq_number: TcpSeqNumber(i32::from_ne_bytes(seq.to_ne_bytes())),
        ack_number: ack.map(|a| TcpSeqNumber(i32::from_ne_bytes(a.to_ne_bytes()))),
        window_len: if control == TcpControl::Rst { 0 } else { 65535 },
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None, None, None],
        timestamp: None,
        payload,
    };
    let tcp_len = tcp.header_len().checked_add(payload.len())?;
    let caps = smoltcp::phy::ChecksumCapabilities::default();
    ip_frame(
        vlan,
        (eth_src, eth_dst),
        (src, dst),
        IpProtocol::Tcp,
        tcp_len,
        |l4, s, d| tcp.emit(&mut TcpPacket::new_unchecked(l4), s, d, &caps),
    )
}

/// An Ethernet frame with `vlan`'s tags and an IP header from `src` to `dst` carrying `l4_len`
/// bytes of `proto`, which `fill` writes (given the addresses for its checksum). `None` for
/// mixed address families or more than 65,000 bytes of payload.
fn ip_frame(
    vlan: &VlanStack,
    (eth_src, eth_dst): ([u8; 6], [u8; 6]),
    (src, dst): (IpAddr, IpAddr),
    proto: IpProtocol,
    l4_len: usize,
    fill: impl FnOnce(&mut [u8], &IpAddress, &IpAddress),
) -> Option<Vec<u8>> {
    if l4_len > 65_000 {
        return None;
    }
    let (ethertype, ip_len) = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (EthernetProtocol::Ipv4, 20 + l4_len),
        (IpAddr::V6(_), IpAddr::V6(_)) => (EthernetProtocol::Ipv6, 40 + l4_len),
        _ => return None,
    };
    let l2 = 14 + vlan.wire_len();
    let mut buf = vec![0u8; l2 + ip_len];
    let inner_type = u16::from(ethertype);
    {
        let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
        EthernetRepr {
            src_addr: EthernetAddress(eth_src),
            dst_addr: EthernetAddress(eth_dst),
            ethertype: EthernetProtocol::from(vlan.outer_tpid(inner_type)),
        }
        .emit(&mut frame);
    }
    vlan.emit(buf.get_mut(14..l2)?, inner_type).ok()?;
    let ip_buf = buf.get_mut(l2..)?;
    let caps = smoltcp::phy::ChecksumCapabilities::default();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let repr = Ipv4Repr {
                src_addr: s,
                dst_addr: d,
                next_header: proto,
                payload_len: l4_len,
                hop_limit: RESET_TTL,
            };
            let mut ip = Ipv4Packet::new_unchecked(&mut ip_buf[..]);
            repr.emit(&mut ip, &caps);
            fill(ip.payload_mut(), &IpAddress::Ipv4(s), &IpAddress::Ipv4(d));
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let repr = Ipv6Repr {
                src_addr: s,
                dst_addr: d,
                next_header: proto,
                payload_len: l4_len,
                hop_limit: RESET_TTL,
            };
            let mut ip = Ipv6Packet::new_unchecked(&mut ip_buf[..]);
            repr.emit(&mut ip);
            fill(ip.payload_mut(), &IpAddress::Ipv6(s), &IpAddress::Ipv6(d));
        }
        _ => return None,
    }
    Some(buf)
}

/// The two resets that terminate the connection of `seg`: `[to the segment's destination, back
/// to its source]`. `None` only for mixed address families (impossible for a decoded packet).
pub fn resets(seg: &Segment<'_>) -> [Option<Vec<u8>>; 2] {
    let t = seg.tcp;
    let next = t.seq.wrapping_add(seq_len(t));
    let acked = t.flags.has(TcpFlags::ACK).then_some(t.ack);
    // To the destination, as if from the source.
    let forward = build(
        seg.vlan,
        seg.eth_src,
        seg.eth_dst,
        seg.src,
        seg.dst,
        t.src_port,
        t.dst_port,
        next,
        acked,
    );
    // Back to the source, as if from the destination.
    let back = match acked {
        Some(a) => build(
            seg.vlan,
            seg.eth_dst,
            seg.eth_src,
            seg.dst,
            seg.src,
            t.dst_port,
            t.src_port,
            a,
            None,
        ),
        None => build(
            seg.vlan,
            seg.eth_dst,
            seg.eth_src,
            seg.dst,
            seg.src,
            t.dst_port,
            t.src_port,
            0,
            Some(next),
        ),
    };
    [forward, back]
}
/// The resets that end a tracked TCP flow without a segment to answer (an isolation resets
/// every flow of the VM at once): `[to a, to b]` for the flow's endpoints `a` and `b` (as the
/// flow key orders them), each as if from the other end, with the tag stack and MACs of the
/// flow's last segments. An end whose expected sequence number was never seen gets none.
pub fn flow_resets(
    a: (IpAddr, u16),
    b: (IpAddr, u16),
    ends: &crate::flow::TcpEnds,
) -> [Option<Vec<u8>>; 2] {
    let [mac_a, mac_b] = ends.macs;
    let to =
        |(dst, dport): (IpAddr, u16), (src, sport): (IpAddr, u16), i: usize, mac_dst, mac_src| {
            let seq = ends.expects(i)?;
            build(
                &ends.vlan,
                mac_src,
                mac_dst,
                src,
                dst,
                sport,
                dport,
                seq,
                ends.expects(i ^ 1),
            )
        };
    [to(a, b, 0, mac_a, mac_b), to(b, a, 1, mac_b, mac_a)]
}

/// What stops a client's request that was dropped inline before the server saw it
/// (the web address scan's block): `[to the server, back to the client]`.
///
/// - To the server, as if from the client: `RST|ACK` at the request's own sequence number `s`
///   (the server never received it, so `s` is exactly what it expects next).
/// - To the client, as if from the server: `page` (if any) with `FIN|ACK` at `a` (what the
///   client expects next), acknowledging the request, then `RST` just past the page and its
///   FIN; without a page, `RST` at `a`.
///
/// A segment without ACK (no server sequence to answer at) gets only the reset to the server
/// and the bare-SYN form toward the client, as [`resets`] does.
pub fn block_request(seg: &Segment<'_>, page: Option<&[u8]>) -> Vec<(Vec<u8>, bool)> {
    let t = seg.tcp;
    let mut out = Vec::with_capacity(3);
    let to_server = Ends {
        vlan: seg.vlan,
        eth_src: seg.eth_src,
        eth_dst: seg.eth_dst,
        src: seg.src,
        dst: seg.dst,
        sport: t.src_port,
        dport: t.dst_port,
    };
    let to_client = Ends {
        vlan: seg.vlan,
        eth_src: seg.eth_dst,
        eth_dst: seg.eth_src,
        src: seg.dst,
        dst: seg.src,
        sport: t.dst_port,
        dport: t.src_port,
    };
    let acked = t.flags.has(TcpFlags::ACK).then_some(t.ack);
    if let Some(f) = build_segment(&to_server, t.seq, acked, TcpControl::Rst, &[]) {
        out.push((f, true));
    }
    let next = t.seq.wrapping_add(seq_len(t));
    match (acked, page) {
        (Some(a), Some(page)) => {
            if let Some(f) = build_segment(&to_client, a, Some(next), TcpControl::Fin, page) {
                out.push((f, false));
            }
            let past = a
                .wrapping_add(u32::try_from(page.len()).unwrap_or(u32::MAX))
                .wrapping_add(1);
            if let Some(f) = build_segment(&to_client, past, None, TcpControl::Rst, &[]) {
                out.push((f, false));
            }
        }
        (Some(a), None) => {
            if let Some(f) = build_segment(&to_client, a, None, TcpControl::Rst, &[]) {
                out.push((f, false));
            }
        }
        (None, _) => {
            if let Some(f) = build_segment(&to_client, 0, Some(next), TcpControl::Rst, &[]) {
                out.push((f, false));
            }
        }
    }
    out
}

/// A UDP datagram answering one: from its destination back to its source (addresses, ports and
/// MACs swapped), carrying `payload` and the datagram's VLAN tag stack; the DNS block answer
/// travels in it. `None` for mixed address families or a payload over 65,000 bytes.
#[allow(clippy::too_many_arguments)]
pub fn udp_reply(
    vlan: &VlanStack,
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let udp = UdpRepr {
        src_port: dport,
        dst_port: sport,
    };
    let caps = smoltcp::phy::ChecksumCapabilities::default();
    ip_frame(
        vlan,
        (eth_dst, eth_src),
        (dst, src),
        IpProtocol::Udp,
        8usize.checked_add(payload.len())?,
        |l4, s, d| {
            udp.emit(
                &mut UdpPacket::new_unchecked(l4),
                s,
                d,
                payload.len(),
                |b| b.copy_from_slice(payload),
                &caps,
            );
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{DecodeOptions, L3, L4, decode_frame};

    #[test]
    fn udp_reply_swaps_the_ends_and_keeps_the_tags() {
        let mut vlan = VlanStack::default();
        for tag in [
            vlan::Tag::dot1ad(vlan::VlanId::new(300).unwrap()),
            vlan::Tag::dot1q(vlan::VlanId::new(100).unwrap()),
        ] {
            vlan.push(tag).unwrap();
        }
        let (c, s): (IpAddr, IpAddr) = ("10.0.0.10".parse().unwrap(), "10.0.0.53".parse().unwrap());
        let f = udp_reply(&vlan, [2; 6], [4; 6], c, s, 40000, 53, b"answer").unwrap();
        let d = decode_frame(
            &f,
            DecodeOptions {
                verify_checksums: true,
            },
        )
        .unwrap();
        assert!(d.anomalies.is_empty(), "{:?}", d.anomalies);
        assert_eq!(d.vlan.ids().collect::<Vec<_>>(), [300, 100]);
        assert_eq!((d.eth_src, d.eth_dst), ([4; 6], [2; 6]));
        let L3::Ip(ip) = &d.l3 else { panic!("not IP") };
        assert_eq!((ip.src(), ip.dst()), (s, c));
        let L4::Udp(u) = &ip.l4 else {
            panic!("not UDP")
        };
        assert_eq!(
            (u.src_port, u.dst_port, u.payload),
            (53, 40000, &b"answer"[..])
        );
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert!(udp_reply(&vlan, [2; 6], [4; 6], c, v6, 1, 53, b"").is_none());
    }

    // A frame of three tags (the deepest the decoder keeps) is answered with all three, in
    // order, with their kinds.
    #[test]
    fn injected_frames_carry_three_tags() {
        let id = |n| vlan::VlanId::new(n).unwrap();
        let tags = [
            vlan::Tag::dot1ad(id(200)),
            vlan::Tag::dot1q(id(300)),
            vlan::Tag::dot1q(id(400)),
        ];
        let vlan = VlanStack::from_tags(&tags).unwrap();
        let (c, s): (IpAddr, IpAddr) = ("10.0.0.10".parse().unwrap(), "10.0.0.53".parse().unwrap());
        let f = udp_reply(&vlan, [2; 6], [4; 6], c, s, 40000, 53, b"x").unwrap();
        assert_eq!(&f[12..14], &[0x88, 0xa8]);
        let d = decode_frame(&f, DecodeOptions::default()).unwrap();
        assert!(d.anomalies.is_empty(), "{:?}", d.anomalies);
        assert_eq!(d.vlan.tags(), &tags);
        assert_eq!(d.l3_offset, 14 + 12);
    }
}
