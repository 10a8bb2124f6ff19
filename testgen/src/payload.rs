//! Upper-layer messages with correct checksums: what goes inside an IP packet (or is cut into IP
//! fragments). Also the address-family pairing rule shared with [`crate::Link`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::wire::{
    Icmpv4Message, Icmpv4Packet, Icmpv6Message, Icmpv6Packet, IpAddress, TcpPacket, TcpSeqNumber,
    UdpPacket,
};

use crate::link::tcp_flags;

/// Source and destination of one packet, in one address family.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pair {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

impl Pair {
    /// Pair two addresses. When the families differ the IPv4 one is written as an IPv4-mapped
    /// IPv6 address (`::ffff:a.b.c.d`) so a builder never fails; scenarios never mix families.
    pub(crate) fn new(src: IpAddr, dst: IpAddr) -> Self {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Pair::V4(s, d),
            (s, d) => Pair::V6(to_v6(s), to_v6(d)),
        }
    }

    pub(crate) fn src(self) -> IpAddress {
        match self {
            Pair::V4(s, _) => IpAddress::Ipv4(s),
            Pair::V6(s, _) => IpAddress::Ipv6(s),
        }
    }

    pub(crate) fn dst(self) -> IpAddress {
        match self {
            Pair::V4(_, d) => IpAddress::Ipv4(d),
            Pair::V6(_, d) => IpAddress::Ipv6(d),
        }
    }
}

fn to_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// A length as a 16-bit wire field. Oversize values saturate: the caller asked for a frame the
/// wire cannot carry and gets a malformed one (see the crate contract).
pub(crate) fn len16(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

/// A u32 sequence number as smoltcp's signed wrapper, bit for bit.
fn seq(v: u32) -> TcpSeqNumber {
    TcpSeqNumber(i32::from_be_bytes(v.to_be_bytes()))
}

/// TCP MSS option (kind 2, length 4, 1460) carried on segments with SYN set, like real stacks.
const MSS_OPTION: [u8; 4] = [2, 4, 0x05, 0xb4];

/// A TCP segment (header + payload) with a correct checksum for `src` -> `dst`. Segments with SYN
/// set carry an MSS option (header 24 bytes), others a bare 20-byte header. Window 64240; the
/// urgent pointer is 0 even when URG is set (scan probes do the same).
#[allow(clippy::too_many_arguments)] // mirrors the TCP header fields one to one
pub fn tcp_segment(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    flags: u16,
    seq_no: u32,
    ack_no: u32,
    payload: &[u8],
) -> Vec<u8> {
    let pair = Pair::new(src, dst);
    let syn = flags & tcp_flags::SYN != 0;
    let mut buf = vec![0u8; 20];
    if syn {
        buf.extend_from_slice(&MSS_OPTION);
    }
    let header_len: u8 = if syn { 24 } else { 20 };
    buf.extend_from_slice(payload);
    let mut p = TcpPacket::new_unchecked(&mut buf[..]);
    p.set_src_port(sport);
    p.set_dst_port(dport);
    p.set_seq_number(seq(seq_no));
    p.set_ack_number(seq(ack_no));
    p.set_header_len(header_len);
    p.set_fin(flags & tcp_flags::FIN != 0);
    p.set_syn(syn);
    p.set_rst(flags & tcp_flags::RST != 0);
    p.set_psh(flags & tcp_flags::PSH != 0);
    p.set_ack(flags & tcp_flags::ACK != 0);
    p.set_urg(flags & tcp_flags::URG != 0);
    p.set_ece(flags & tcp_flags::ECE != 0);
    p.set_cwr(flags & tcp_flags::CWR != 0);
    p.set_window_len(64_240);
    p.set_urgent_at(0);
    p.fill_checksum(&pair.src(), &pair.dst());
    buf
}

/// A UDP datagram (header + data) with a correct checksum for `src` -> `dst`.
pub fn udp_datagram(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let pair = Pair::new(src, dst);
    let mut buf = vec![0u8; 8];
    buf.extend_from_slice(data);
    let len = len16(buf.len());
    let mut p = UdpPacket::new_unchecked(&mut buf[..]);
    p.set_src_port(sport);
    p.set_dst_port(dport);
    p.set_len(len);
    p.fill_checksum(&pair.src(), &pair.dst());
    buf
}

fn icmpv4_echo(msg: Icmpv4Message, ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 8];
    buf.extend_from_slice(data);
    let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
    p.set_msg_type(msg);
    p.set_msg_code(0);
    p.set_echo_ident(ident);
    p.set_echo_seq_no(seq_no);
    p.fill_checksum();
    buf
}

/// An ICMP echo request message (type 8) with a correct checksum.
pub fn icmp_echo_message(ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    icmpv4_echo(Icmpv4Message::EchoRequest, ident, seq_no, data)
}

/// An ICMP echo reply message (type 0) with a correct checksum.
pub fn icmp_echo_reply_message(ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    icmpv4_echo(Icmpv4Message::EchoReply, ident, seq_no, data)
}

/// An ICMP destination unreachable message (type 3) quoting `original` (the invoking IP header
/// plus the first 8 bytes of its payload, per RFC 792).
pub(crate) fn icmp_unreachable_message(code: u8, original: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 8];
    buf.extend_from_slice(original);
    let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
    p.set_msg_type(Icmpv4Message::DstUnreachable);
    p.set_msg_code(code);
    p.fill_checksum();
    buf
}

fn icmpv6_echo(
    msg: Icmpv6Message,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ident: u16,
    seq_no: u16,
    data: &[u8],
) -> Vec<u8> {
    let mut buf = vec![0u8; 8];
    buf.extend_from_slice(data);
    let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
    p.set_msg_type(msg);
    p.set_msg_code(0);
    p.set_echo_ident(ident);
    p.set_echo_seq_no(seq_no);
    p.fill_checksum(&src, &dst);
    buf
}

/// An ICMPv6 echo request message (type 128) with a correct checksum for `src` -> `dst`.
pub fn icmpv6_echo_message(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ident: u16,
    seq_no: u16,
    data: &[u8],
) -> Vec<u8> {
    icmpv6_echo(Icmpv6Message::EchoRequest, src, dst, ident, seq_no, data)
}

/// An ICMPv6 echo reply message (type 129) with a correct checksum for `src` -> `dst`.
pub fn icmpv6_echo_reply_message(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ident: u16,
    seq_no: u16,
    data: &[u8],
) -> Vec<u8> {
    icmpv6_echo(Icmpv6Message::EchoReply, src, dst, ident, seq_no, data)
}

/// An ICMPv6 destination unreachable message (type 1) quoting the invoking packet.
pub(crate) fn icmpv6_unreachable_message(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    code: u8,
    original: &[u8],
) -> Vec<u8> {
    let mut buf = vec![0u8; 8];
    buf.extend_from_slice(original);
    let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
    p.set_msg_type(Icmpv6Message::DstUnreachable);
    p.set_msg_code(code);
    p.fill_checksum(&src, &dst);
    buf
}

/// Encode a dotted name as DNS labels (no compression). Labels longer than 63 bytes are cut.
fn dns_name(name: &str, out: &mut Vec<u8>) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let bytes = label.as_bytes();
        let bytes = bytes.get(..63).unwrap_or(bytes);
        out.push(u8::try_from(bytes.len()).unwrap_or(63));
        out.extend_from_slice(bytes);
    }
    out.push(0);
}

/// A DNS query (RFC 1035 wire format, recursion desired) for the A record of `name`.
pub fn dns_a_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(32);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00]); // RD
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QD=1 AN=0 NS=0 AR=0
    dns_name(name, &mut m);
    m.extend_from_slice(&[0, 1, 0, 1]); // QTYPE A, QCLASS IN
    m
}

/// The answer to [`dns_a_query`]: the question echoed and one A record (TTL 300) pointing back at
/// the question name with a compression pointer.
pub fn dns_a_response(id: u16, name: &str, addr: Ipv4Addr) -> Vec<u8> {
    let mut m = Vec::with_capacity(48);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x81, 0x80]); // QR RD RA, NOERROR
    m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0]); // QD=1 AN=1
    dns_name(name, &mut m);
    m.extend_from_slice(&[0, 1, 0, 1]);
    m.extend_from_slice(&[0xc0, 0x0c]); // name: pointer to offset 12
    m.extend_from_slice(&[0, 1, 0, 1]); // A, IN
    m.extend_from_slice(&300u32.to_be_bytes());
    m.extend_from_slice(&[0, 4]);
    m.extend_from_slice(&addr.octets());
    m
}
