//! Frame builders for one VLAN stack: Ethernet + tags + IPv4/IPv6 (+ extension headers and
//! fragments) + TCP/UDP/ICMP/ICMPv6, and ARP.

use std::net::{IpAddr, Ipv4Addr};

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, IpProtocol, Ipv4Packet, Ipv6Packet,
};
use vlan::{VlanId, VlanStack};

use crate::payload::{
    Pair, icmp_echo_message, icmp_echo_reply_message, icmp_unreachable_message,
    icmpv6_echo_message, icmpv6_echo_reply_message, icmpv6_unreachable_message, len16, tcp_segment,
    udp_datagram,
};

/// TCP flag bits as used by [`Link::tcp`] and [`crate::tcp_segment`] (the low byte of the TCP
/// flags field, plus NS is not emitted).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u16 = 0x01;
    /// SYN.
    pub const SYN: u16 = 0x02;
    /// RST.
    pub const RST: u16 = 0x04;
    /// PSH.
    pub const PSH: u16 = 0x08;
    /// ACK.
    pub const ACK: u16 = 0x10;
    /// URG.
    pub const URG: u16 = 0x20;
    /// ECE.
    pub const ECE: u16 = 0x40;
    /// CWR.
    pub const CWR: u16 = 0x80;
}

/// EtherTypes we emit.
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// IP protocol / IPv6 next-header numbers we emit.
const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;
const NH_HOP_BY_HOP: u8 = 0;
const NH_FRAGMENT: u8 = 44;
const NH_DEST_OPTS: u8 = 60;

/// TTL / hop limit of every packet we build.
const TTL: u8 = 64;

/// The ICMPv6 error quote limit: the invoking packet is quoted up to the minimum MTU (RFC 4443
/// 2.4(c)): 1280 - 40 (IPv6) - 8 (ICMPv6 header).
const ICMPV6_QUOTE_MAX: usize = 1232;

/// A host: its MAC and one IP address (the family decides IPv4 or IPv6 framing).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Host {
    /// Ethernet address.
    pub mac: [u8; 6],
    /// IP address.
    pub ip: IpAddr,
}

impl Host {
    /// A host from parts.
    pub const fn new(mac: [u8; 6], ip: IpAddr) -> Self {
        Host { mac, ip }
    }

    /// The same host with another address (e.g. its IPv6 one).
    pub const fn with_ip(self, ip: IpAddr) -> Self {
        Host { mac: self.mac, ip }
    }
}

/// A frame builder for one VLAN stack.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Link {
    /// Tags put on every frame, outer first; [`VlanStack::UNTAGGED`] for none.
    pub vlan: VlanStack,
}

/// FNV-1a over `bytes`, folded to 16 bits: the IPv4 identification of unfragmented packets, so
/// ids vary between packets yet depend only on content.
fn ident_of(proto: u8, bytes: &[u8]) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in core::iter::once(&proto).chain(bytes) {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let [a, b, c, d] = h.to_be_bytes();
    u16::from_be_bytes([a ^ c, b ^ d])
}

/// A 20-byte IPv4 header with a correct checksum. `offset` is in bytes (a multiple of 8).
#[allow(clippy::too_many_arguments)] // one argument per header field we vary
fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ident: u16,
    dont_frag: bool,
    more: bool,
    offset: u16,
    payload_len: usize,
) -> Vec<u8> {
    let mut h = vec![0u8; 20];
    let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
    p.set_version(4);
    p.set_header_len(20);
    p.set_dscp(0);
    p.set_ecn(0);
    p.set_total_len(len16(payload_len.saturating_add(20)));
    p.set_ident(ident);
    p.set_dont_frag(dont_frag);
    p.set_more_frags(more);
    p.set_frag_offset(offset);
    p.set_hop_limit(TTL);
    p.set_next_header(IpProtocol::from(proto));
    p.set_src_addr(src);
    p.set_dst_addr(dst);
    p.fill_checksum();
    h
}

/// A 40-byte IPv6 header.
fn ipv6_header(
    src: std::net::Ipv6Addr,
    dst: std::net::Ipv6Addr,
    next: u8,
    payload_len: usize,
) -> Vec<u8> {
    let mut h = vec![0u8; 40];
    let mut p = Ipv6Packet::new_unchecked(&mut h[..]);
    p.set_version(6);
    p.set_traffic_class(0);
    p.set_flow_label(0);
    p.set_payload_len(len16(payload_len));
    p.set_next_header(IpProtocol::from(next));
    p.set_hop_limit(TTL);
    p.set_src_addr(src);
    p.set_dst_addr(dst);
    h
}

/// An 8-byte hop-by-hop or destination-options header holding one PadN option (type 1, 4 zero
/// bytes): the smallest valid options header.
fn options_header(next: u8) -> [u8; 8] {
    [next, 0, 1, 4, 0, 0, 0, 0]
}

/// An IPv6 fragment header: `offset` in bytes (a multiple of 8, so it already sits in the upper
/// 13 bits of the 16-bit field), M flag in bit 0.
fn fragment_header(next: u8, offset: u16, more: bool, id: u32) -> [u8; 8] {
    let [o1, o2] = ((offset & !7) | u16::from(more)).to_be_bytes();
    let [i1, i2, i3, i4] = id.to_be_bytes();
    [next, 0, o1, o2, i1, i2, i3, i4]
}

/// A fragment size rounded down to a multiple of 8, at least 8.
fn frag_unit(frag_size: usize) -> usize {
    (frag_size & !7).max(8)
}

/// An IP packet (IPv4 with DF and a content-derived id, or IPv6 when either address is IPv6)
/// around an upper-layer payload whose checksum the caller computed.
pub fn ip_packet(src: IpAddr, dst: IpAddr, proto: u8, upper: &[u8]) -> Vec<u8> {
    let mut out = match Pair::new(src, dst) {
        Pair::V4(s, d) => ipv4_header(
            s,
            d,
            proto,
            ident_of(proto, upper),
            true,
            false,
            0,
            upper.len(),
        ),
        Pair::V6(s, d) => ipv6_header(s, d, proto, upper.len()),
    };
    out.extend_from_slice(upper);
    out
}

impl Link {
    /// A builder for `vlan`.
    pub const fn new(vlan: VlanStack) -> Self {
        Link { vlan }
    }

    /// Untagged frames.
    pub const fn untagged() -> Self {
        Link {
            vlan: VlanStack::UNTAGGED,
        }
    }

    /// One 802.1Q tag.
    pub fn dot1q(id: VlanId) -> Self {
        Link {
            vlan: VlanStack::single(id),
        }
    }

    /// An 802.1ad outer tag around an 802.1Q inner tag.
    pub fn qinq(outer: VlanId, inner: VlanId) -> Self {
        Link {
            vlan: VlanStack::qinq(outer, inner),
        }
    }

    /// Offset of the L3 header in frames this link builds.
    pub fn l3_offset(&self) -> usize {
        14 + self.vlan.wire_len()
    }

    /// An Ethernet frame: addresses, the tag stack, then `ethertype` and `payload`.
    pub fn ethernet(
        &self,
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        ethertype: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = Vec::with_capacity(self.l3_offset() + payload.len());
        f.extend_from_slice(&dst_mac);
        f.extend_from_slice(&src_mac);
        f.extend_from_slice(&self.vlan.outer_tpid(ethertype).to_be_bytes());
        let mut tags = vec![0u8; self.vlan.wire_len()];
        // The buffer was sized with wire_len, the only failure emit reports.
        if self.vlan.emit(&mut tags, ethertype).is_ok() {
            f.extend_from_slice(&tags);
        }
        f.extend_from_slice(payload);
        f
    }

    fn ip_frame(&self, src: &Host, dst: &Host, ip: &[u8]) -> Vec<u8> {
        let ethertype = if ip.first().is_some_and(|b| b >> 4 == 6) {
            ETHERTYPE_IPV6
        } else {
            ETHERTYPE_IPV4
        };
        self.ethernet(src.mac, dst.mac, ethertype, ip)
    }

    /// A frame carrying [`ip_packet`]: `upper` (checksummed by the caller) behind an IP header.
    pub fn ip(&self, src: &Host, dst: &Host, proto: u8, upper: &[u8]) -> Vec<u8> {
        self.ip_frame(src, dst, &ip_packet(src.ip, dst.ip, proto, upper))
    }

    /// A TCP segment. `flags` as in [`tcp_flags`]; SYN segments carry an MSS option.
    #[allow(clippy::too_many_arguments)] // the public API mirrors the TCP header fields
    pub fn tcp(
        &self,
        src: &Host,
        dst: &Host,
        sport: u16,
        dport: u16,
        flags: u16,
        seq: u32,
        ack: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let seg = tcp_segment(src.ip, dst.ip, sport, dport, flags, seq, ack, payload);
        self.ip(src, dst, PROTO_TCP, &seg)
    }

    /// A UDP datagram.
    pub fn udp(&self, src: &Host, dst: &Host, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let dgram = udp_datagram(src.ip, dst.ip, sport, dport, payload);
        self.ip(src, dst, PROTO_UDP, &dgram)
    }

    /// An echo request: ICMP when both hosts are IPv4, ICMPv6 otherwise.
    pub fn icmp_echo(
        &self,
        src: &Host,
        dst: &Host,
        ident: u16,
        seq: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        match Pair::new(src.ip, dst.ip) {
            Pair::V4(..) => self.ip(
                src,
                dst,
                PROTO_ICMP,
                &icmp_echo_message(ident, seq, payload),
            ),
            Pair::V6(s, d) => self.ip(
                src,
                dst,
                PROTO_ICMPV6,
                &icmpv6_echo_message(s, d, ident, seq, payload),
            ),
        }
    }

    /// An echo reply: ICMP when both hosts are IPv4, ICMPv6 otherwise.
    pub fn icmp_echo_reply(
        &self,
        src: &Host,
        dst: &Host,
        ident: u16,
        seq: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        match Pair::new(src.ip, dst.ip) {
            Pair::V4(..) => self.ip(
                src,
                dst,
                PROTO_ICMP,
                &icmp_echo_reply_message(ident, seq, payload),
            ),
            Pair::V6(s, d) => self.ip(
                src,
                dst,
                PROTO_ICMPV6,
                &icmpv6_echo_reply_message(s, d, ident, seq, payload),
            ),
        }
    }

    /// A port-unreachable error from `src` to `dst` about `invoking`, the offending IP packet
    /// (as returned by [`ip_packet`] or cut from a frame at [`Link::l3_offset`]). IPv4: type 3
    /// code 3 quoting the IP header plus 8 bytes. IPv6: type 1 code 4 quoting up to 1232 bytes.
    pub fn icmp_port_unreachable(&self, src: &Host, dst: &Host, invoking: &[u8]) -> Vec<u8> {
        match Pair::new(src.ip, dst.ip) {
            Pair::V4(..) => {
                let ihl = invoking.first().map_or(20, |b| usize::from(b & 0x0f) * 4);
                let quote = invoking.get(..ihl + 8).unwrap_or(invoking);
                self.ip(src, dst, PROTO_ICMP, &icmp_unreachable_message(3, quote))
            }
            Pair::V6(s, d) => {
                let quote = invoking.get(..ICMPV6_QUOTE_MAX).unwrap_or(invoking);
                self.ip(
                    src,
                    dst,
                    PROTO_ICMPV6,
                    &icmpv6_unreachable_message(s, d, 4, quote),
                )
            }
        }
    }

    fn arp(
        &self,
        op: ArpOperation,
        sender: &Host,
        dst_mac: [u8; 6],
        target_mac: [u8; 6],
        target_ip: Ipv4Addr,
    ) -> Vec<u8> {
        let sender_ip = match sender.ip {
            IpAddr::V4(a) => a,
            // ARP only speaks IPv4; an IPv6 sender is a caller error that yields 0.0.0.0.
            IpAddr::V6(a) => a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
        };
        let repr = ArpRepr::EthernetIpv4 {
            operation: op,
            source_hardware_addr: EthernetAddress(sender.mac),
            source_protocol_addr: sender_ip,
            target_hardware_addr: EthernetAddress(target_mac),
            target_protocol_addr: target_ip,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        self.ethernet(sender.mac, dst_mac, ETHERTYPE_ARP, &buf)
    }

    /// An ARP reply from `sender` ("my IPv4 is at my MAC") unicast to `target`.
    pub fn arp_reply(&self, sender: &Host, target: &Host) -> Vec<u8> {
        let target_ip = match target.ip {
            IpAddr::V4(a) => a,
            IpAddr::V6(a) => a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
        };
        self.arp(
            ArpOperation::Reply,
            sender,
            target.mac,
            target.mac,
            target_ip,
        )
    }

    /// A broadcast ARP request from `sender` for `target_ip`.
    pub fn arp_request(&self, sender: &Host, target_ip: Ipv4Addr) -> Vec<u8> {
        self.arp(ArpOperation::Request, sender, [0xff; 6], [0; 6], target_ip)
    }

    /// IPv4 fragments of an arbitrary IP payload (`proto` given), each carrying `frag_size` bytes
    /// (rounded down to a multiple of 8, at least 8) except the last; identification `id`.
    /// Both hosts should be IPv4 (an IPv6 address is mapped to 0.0.0.0).
    pub fn ipv4_fragments(
        &self,
        src: &Host,
        dst: &Host,
        proto: u8,
        id: u16,
        payload: &[u8],
        frag_size: usize,
    ) -> Vec<Vec<u8>> {
        let unit = frag_unit(frag_size);
        let count = payload.len().div_ceil(unit);
        payload
            .chunks(unit)
            .enumerate()
            .map(|(i, chunk)| {
                let more = i + 1 < count;
                self.ipv4_fragment(src, dst, proto, id, len16(i * unit), more, chunk)
            })
            .collect()
    }

    /// One IPv4 fragment with an explicit byte `offset` (a multiple of 8; the low 3 bits are
    /// dropped, and offsets above 65528 cannot be expressed) and MF flag: for overlap and
    /// oversize attacks.
    #[allow(clippy::too_many_arguments)] // the public API names every field a test varies
    pub fn ipv4_fragment(
        &self,
        src: &Host,
        dst: &Host,
        proto: u8,
        id: u16,
        offset: u16,
        more: bool,
        data: &[u8],
    ) -> Vec<u8> {
        let (s, d) = (v4_of(src.ip), v4_of(dst.ip));
        let mut ip = ipv4_header(s, d, proto, id, false, more, offset, data.len());
        ip.extend_from_slice(data);
        self.ethernet(src.mac, dst.mac, ETHERTYPE_IPV4, &ip)
    }

    /// IPv6 fragments (RFC 8200 layout) of an upper-layer payload with next header
    /// `next_header`. With `with_ext` the unfragmentable part is a hop-by-hop header and the
    /// fragmentable part starts with a destination-options header before the payload; every
    /// fragment carries the hop-by-hop header. Fragment data is `frag_size` bytes (rounded down
    /// to a multiple of 8, at least 8) except the last. Both hosts should be IPv6 (IPv4
    /// addresses are mapped).
    #[allow(clippy::too_many_arguments)] // the public API names every field a test varies
    pub fn ipv6_fragments(
        &self,
        src: &Host,
        dst: &Host,
        next_header: u8,
        id: u32,
        payload: &[u8],
        frag_size: usize,
        with_ext: bool,
    ) -> Vec<Vec<u8>> {
        let (s, d) = v6_pair(src.ip, dst.ip);
        let mut fragmentable = Vec::with_capacity(payload.len() + 8);
        let frag_next = if with_ext {
            fragmentable.extend_from_slice(&options_header(next_header));
            NH_DEST_OPTS
        } else {
            next_header
        };
        fragmentable.extend_from_slice(payload);
        let unfragmentable: &[u8] = if with_ext {
            &options_header(NH_FRAGMENT)
        } else {
            &[]
        };
        let first_next = if with_ext { NH_HOP_BY_HOP } else { NH_FRAGMENT };
        let unit = frag_unit(frag_size);
        let count = fragmentable.len().div_ceil(unit);
        fragmentable
            .chunks(unit)
            .enumerate()
            .map(|(i, chunk)| {
                let more = i + 1 < count;
                let body_len = unfragmentable.len() + 8 + chunk.len();
                let mut ip = ipv6_header(s, d, first_next, body_len);
                ip.extend_from_slice(unfragmentable);
                ip.extend_from_slice(&fragment_header(frag_next, len16(i * unit), more, id));
                ip.extend_from_slice(chunk);
                self.ethernet(src.mac, dst.mac, ETHERTYPE_IPV6, &ip)
            })
            .collect()
    }

    /// An IPv6 UDP datagram behind a hop-by-hop and a destination-options header.
    pub fn ipv6_udp_with_ext(
        &self,
        src: &Host,
        dst: &Host,
        sport: u16,
        dport: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let (s, d) = v6_pair(src.ip, dst.ip);
        let dgram = udp_datagram(IpAddr::V6(s), IpAddr::V6(d), sport, dport, payload);
        let mut ip = ipv6_header(s, d, NH_HOP_BY_HOP, 16 + dgram.len());
        ip.extend_from_slice(&options_header(NH_DEST_OPTS));
        ip.extend_from_slice(&options_header(PROTO_UDP));
        ip.extend_from_slice(&dgram);
        self.ethernet(src.mac, dst.mac, ETHERTYPE_IPV6, &ip)
    }
}

fn v4_of(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
    }
}

fn v6_pair(src: IpAddr, dst: IpAddr) -> (std::net::Ipv6Addr, std::net::Ipv6Addr) {
    let f = |a: IpAddr| match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    (f(src), f(dst))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan;

    #[test]
    fn arp_request_matches_fixture() {
        let f = plan::vlan100().arp_request(&plan::victim(), plan::SERVER_V4);
        #[rustfmt::skip]
        let want: [u8; 46] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,     // broadcast
            0x02, 0x00, 0x00, 0x00, 0x00, 0x10,     // victim MAC
            0x81, 0x00, 0x00, 0x64, 0x08, 0x06,     // 802.1Q VLAN 100, ARP
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04,     // Ethernet/IPv4, hlen 6, plen 4
            0x00, 0x01,                             // request
            0x02, 0x00, 0x00, 0x00, 0x00, 0x10, 10, 0, 0, 10, // sender
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 20, // target
        ];
        assert_eq!(f, want);
    }

    #[test]
    fn ipv4_header_fixture() {
        // 10.0.0.66 -> 10.0.0.10, UDP, 8 bytes of payload, DF, id 0x1234; checksum by hand:
        // !(0x4500 + 0x001c + 0x1234 + 0x4000 + 0x4011 + 0x0a00 + 0x0042 + 0x0a00 + 0x000a) = 0x1452.
        let h = ipv4_header(
            plan::ATTACKER_V4,
            plan::VICTIM_V4,
            17,
            0x1234,
            true,
            false,
            0,
            8,
        );
        #[rustfmt::skip]
        let want = [
            0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00,
            0x40, 0x11, 0x14, 0x52, 10, 0, 0, 66, 10, 0, 0, 10,
        ];
        assert_eq!(h, want);
    }

    #[test]
    fn fragment_header_layout() {
        assert_eq!(
            fragment_header(58, 1232, true, 0x6001),
            [58, 0, 0x04, 0xd1, 0, 0, 0x60, 0x01]
        );
        assert_eq!(frag_unit(1481), 1480);
        assert_eq!(frag_unit(3), 8);
    }

    #[test]
    fn untagged_and_qinq_ethertypes() {
        let u = Link::untagged().ethernet([1; 6], [2; 6], 0x0800, &[9]);
        assert_eq!(u, [2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 0x08, 0x00, 9]);
        let q = plan::qinq().ethernet([1; 6], [2; 6], 0x86dd, &[]);
        assert_eq!(
            q.get(12..),
            Some(&[0x88, 0xa8, 0x01, 0x2c, 0x81, 0x00, 0x00, 0x64, 0x86, 0xdd][..])
        );
    }
}
