//! Frame decoding: Ethernet, VLAN stack, ARP, IPv4, IPv6 (extension-header chain), TCP, UDP, ICMP,
//! ICMPv6; tunnels ([`tunnel`]: GRE, ERSPAN, VXLAN, Geneve, Teredo, NSH, MPLS, PPPoE) are opened
//! by the worker, one level deep, after the outer packet.
//!
//! # Contract
//! [`decode_frame`] reads a frame off the wire through checked views only (`smoltcp::wire` and the
//! `vlan` crate). It never panics on any input. A frame that cannot be decoded returns the
//! [`DecodeEvent`] naming the layer and check that failed; the caller counts it (one counter per
//! variant, [`DecodeEvent::name`]) and applies the fail-open policy (the frame is forwarded
//! uninspected). Anomalies that still leave a usable packet (a bad checksum when checksums are
//! validated, a fourth VLAN tag) are reported in [`Decoded::anomalies`] and decoding goes on.
//!
//! IP fragments are decoded to the network layer: [`Ip::fragment`] is set and [`Ip::l4`] is
//! [`L4::Fragment`]; the defragmenter (`dataplane::defrag`) reassembles the datagram and
//! [`decode_ip`] decodes the reassembled IP packet, transport layer included.

use core::net::IpAddr;
use vlan::VlanStack;

mod frame;
pub mod tunnel;
pub use frame::ipv6_ext_header_len;
pub use frame::{
    DecodeOptions, MAX_IPV6_EXT_HEADERS, MAX_VLAN_TAGS_WALKED, decode_frame, decode_frame_fast,
    decode_frame_lenient, decode_ip, too_deep_view,
};

/// Packet builders (smoltcp emit) shared by the decoder's and the defragmenter's tests (and,
/// through the feature `fixtures`, by the dataplane's tests).
#[cfg(any(test, feature = "fixtures"))]
pub use frame::fixtures;

/// EtherType values we decode. Open enum (STYLE 6).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EtherType {
    /// 0x0800
    Ipv4,
    /// 0x0806
    Arp,
    /// 0x86dd
    Ipv6,
    /// Anything else: forwarded, not inspected.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(raw: u16) -> Self {
        match raw {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(e: EtherType) -> u16 {
        match e {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Unknown(raw) => raw,
        }
    }
}

/// IANA protocol numbers we decode. Open enum.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum IpProto {
    /// 1
    Icmp,
    /// 6
    Tcp,
    /// 17
    Udp,
    /// 58
    Icmpv6,
    /// Anything else.
    Other(u8),
}

impl From<u8> for IpProto {
    fn from(raw: u8) -> Self {
        match raw {
            1 => IpProto::Icmp,
            6 => IpProto::Tcp,
            17 => IpProto::Udp,
            58 => IpProto::Icmpv6,
            other => IpProto::Other(other),
        }
    }
}

impl From<IpProto> for u8 {
    fn from(p: IpProto) -> u8 {
        match p {
            IpProto::Icmp => 1,
            IpProto::Tcp => 6,
            IpProto::Udp => 17,
            IpProto::Icmpv6 => 58,
            IpProto::Other(raw) => raw,
        }
    }
}

impl IpProto {
    /// The name EVE uses in `proto` ("TCP", "UDP", "ICMP", "IPv6-ICMP", "IP-in-IP", or the
    /// number).
    pub fn eve_name(self) -> std::borrow::Cow<'static, str> {
        match self {
            IpProto::Icmp => "ICMP".into(),
            IpProto::Tcp => "TCP".into(),
            IpProto::Udp => "UDP".into(),
            IpProto::Icmpv6 => "IPv6-ICMP".into(),
            IpProto::Other(4) => "IP-in-IP".into(),
            IpProto::Other(n) => n.to_string().into(),
        }
    }
}

/// TCP flag bits as on the wire (byte 13 of the header, plus NS from byte 12 as bit 8).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    /// FIN
    pub const FIN: u16 = 0x01;
    /// SYN
    pub const SYN: u16 = 0x02;
    /// RST
    pub const RST: u16 = 0x04;
    /// PSH
    pub const PSH: u16 = 0x08;
    /// ACK
    pub const ACK: u16 = 0x10;
    /// URG
    pub const URG: u16 = 0x20;
    /// ECE
    pub const ECE: u16 = 0x40;
    /// CWR
    pub const CWR: u16 = 0x80;
    /// NS (ECN nonce)
    pub const NS: u16 = 0x100;

    /// Whether every bit of `mask` is set.
    pub const fn has(self, mask: u16) -> bool {
        self.0 & mask == mask
    }

    /// The flags without ECN bits (ECE, CWR, NS), for classification.
    pub const fn core(self) -> u16 {
        self.0 & 0x3f
    }
}

/// A decoded frame. Borrowed slices point into the frame (or the reassembled datagram).
#[derive(Clone, Debug)]
pub struct Decoded<'a> {
    /// Destination MAC.
    pub eth_dst: [u8; 6],
    /// Source MAC.
    pub eth_src: [u8; 6],
    /// VLAN tags, outer first.
    pub vlan: VlanStack,
    /// EtherType after the tags.
    pub ethertype: EtherType,
    /// Offset of the network-layer header in the frame (Ethernet + tags).
    pub l3_offset: usize,
    /// Network layer.
    pub l3: L3<'a>,
    /// Recoverable anomalies found while decoding (at most a few; see [`Anomalies`]).
    pub anomalies: Anomalies,
}

/// Network layer of a decoded frame.
#[derive(Clone, Debug)]
pub enum L3<'a> {
    /// ARP over Ethernet/IPv4.
    Arp(Arp),
    /// IPv4 or IPv6.
    Ip(Ip<'a>),
    /// An EtherType we do not decode; forwarded uninspected.
    Other,
}

/// ARP (Ethernet + IPv4 only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply, other values kept as-is.
    pub operation: u16,
    /// Sender hardware address.
    pub sender_mac: [u8; 6],
    /// Sender protocol address.
    pub sender_ip: core::net::Ipv4Addr,
    /// Target hardware address.
    pub target_mac: [u8; 6],
    /// Target protocol address.
    pub target_ip: core::net::Ipv4Addr,
}

/// IPv4 or IPv6 packet.
///
/// The addresses are kept as aligned 128-bit integers (IPv4 zero-extended) with the family in
/// [`Ip::v6`], and read as [`IpAddr`] through [`Ip::src`] and [`Ip::dst`]: two 17-byte `IpAddr`
/// fields (alignment 1) landed at odd offsets, and building the decoded frame cost dozens of
/// narrow stores per packet; the flow and per-address keys take the bits as they are.
#[derive(Clone, Debug)]
pub struct Ip<'a> {
    /// Source address bits ([`Ip::src`]).
    pub src_bits: u128,
    /// Destination address bits ([`Ip::dst`]).
    pub dst_bits: u128,
    /// IPv6 (the addresses are IPv6 addresses), else IPv4.
    pub v6: bool,
    /// TTL / hop limit.
    pub ttl: u8,
    /// Transport protocol (after the IPv6 extension chain).
    pub proto: IpProto,
    /// Total length of the IP packet as carried on the wire (header + payload, without
    /// Ethernet padding).
    pub total_len: usize,
    /// Length of the IP header including IPv4 options or the IPv6 extension chain
    /// (up to and including a fragment header).
    pub header_len: usize,
    /// The IP packet bytes (header + payload, padding trimmed).
    pub packet: &'a [u8],
    /// Set when this packet is a fragment (IPv4 MF or offset != 0, or an IPv6 fragment header).
    pub fragment: Option<Fragment<'a>>,
    /// Transport layer. For a fragment: [`L4::Fragment`].
    pub l4: L4<'a>,
}

/// An address from its bits and family (the inverse of [`addr_bits`]).
#[inline]
pub fn addr_from_bits(bits: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(core::net::Ipv6Addr::from_bits(bits))
    } else {
        // Truncation intended: an IPv4 address is zero-extended into the low 32 bits.
        #[allow(clippy::cast_possible_truncation)]
        IpAddr::V4(core::net::Ipv4Addr::from_bits(bits as u32))
    }
}

/// An address as a 128-bit integer and its family (IPv4 zero-extended; the family keeps
/// `::a.b.c.d` and `a.b.c.d` apart).
#[inline]
pub fn addr_bits(addr: IpAddr) -> (u128, bool) {
    match addr {
        IpAddr::V4(v4) => (u128::from(v4.to_bits()), false),
        IpAddr::V6(v6) => (v6.to_bits(), true),
    }
}

impl Ip<'_> {
    /// Source address.
    #[inline]
    pub fn src(&self) -> IpAddr {
        addr_from_bits(self.src_bits, self.v6)
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> IpAddr {
        addr_from_bits(self.dst_bits, self.v6)
    }
}

/// One IP fragment.
#[derive(Clone, Copy, Debug)]
pub struct Fragment<'a> {
    /// IPv4 identification (zero-extended) or IPv6 fragment identification.
    pub id: u32,
    /// Offset of this fragment's payload in the datagram, in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    /// The fragment's payload (what follows the IPv4 header / the IPv6 fragment header).
    pub payload: &'a [u8],
    /// The IPv6 unfragmentable part (header + extension headers before the fragment header);
    /// for IPv4, the IPv4 header. Used to rebuild the datagram.
    pub unfragmentable: &'a [u8],
}

/// Transport layer.
#[derive(Clone, Copy, Debug)]
pub enum L4<'a> {
    /// TCP segment.
    Tcp(Tcp<'a>),
    /// UDP datagram.
    Udp(Udp<'a>),
    /// ICMP (v4) message.
    Icmp(Icmp<'a>),
    /// ICMPv6 message.
    Icmpv6(Icmp<'a>),
    /// A fragment: L4 comes after reassembly.
    Fragment,
    /// Another protocol; payload is what follows the IP header(s).
    Other(&'a [u8]),
}

/// TCP header fields we use, and the payload.
#[derive(Clone, Copy, Debug)]
pub struct Tcp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window.
    pub window: u16,
    /// Urgent pointer (meaningful with URG set): the offset from `seq` of the byte after the
    /// urgent data (RFC 6093: the urgent byte is the one before it).
    pub urgent: u16,
    /// Header length in bytes (with options).
    pub header_len: usize,
    /// Segment payload.
    pub payload: &'a [u8],
}

/// The TCP timestamp option (RFC 7323, kind 8, length 10) of a TCP header (`header`: the
/// header bytes, options included): `(TSval, TSecr)`. `None` when there is none, or when the
/// option list is malformed before it (a length below 2 or past the header), as Suricata's
/// decoder stops there too. Reads at most the header's 40 option bytes.
pub fn tcp_timestamps(header: &[u8]) -> Option<(u32, u32)> {
    let mut opts = header.get(20..)?;
    loop {
        match *opts {
            [] | [0, ..] => return None,
            [1, ref rest @ ..] => opts = rest,
            [kind, len, ..] => {
                let len = usize::from(len);
                let opt = opts.get(..len).filter(|_| len >= 2)?;
                if kind == 8 {
                    let [_, 10, a0, a1, a2, a3, e0, e1, e2, e3] = *opt else {
                        return None;
                    };
                    return Some((
                        u32::from_be_bytes([a0, a1, a2, a3]),
                        u32::from_be_bytes([e0, e1, e2, e3]),
                    ));
                }
                opts = opts.get(len..)?;
            }
            [_] => return None,
        }
    }
}

/// UDP header fields and payload.
#[derive(Clone, Copy, Debug)]
pub struct Udp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload (bounded by the UDP length field).
    pub payload: &'a [u8],
}

/// ICMP or ICMPv6 message.
#[derive(Clone, Copy, Debug)]
pub struct Icmp<'a> {
    /// Type.
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// Echo identifier (bytes 4..6 of the header; meaningful for echo messages).
    pub ident: u16,
    /// Echo sequence (bytes 6..8).
    pub seq: u16,
    /// Everything after the 8-byte header.
    pub payload: &'a [u8],
}

impl Icmp<'_> {
    /// ICMP echo request (type 8) or ICMPv6 echo request (type 128), depending on `v6`.
    pub fn is_echo_request(&self, v6: bool) -> bool {
        if v6 {
            self.icmp_type == 128
        } else {
            self.icmp_type == 8
        }
    }
}

impl L4<'_> {
    /// Source and destination ports for TCP/UDP; `(0, 0)` otherwise (EVE omits them then).
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self {
            L4::Tcp(t) => Some((t.src_port, t.dst_port)),
            L4::Udp(u) => Some((u.src_port, u.dst_port)),
            _ => None,
        }
    }
}

/// Why a frame could not be decoded (unrecoverable for this frame), or a recoverable anomaly.
/// Each variant is a named counter (`decoder.<name>` in status and metrics).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, thiserror::Error)]
pub enum DecodeEvent {
    /// Frame shorter than an Ethernet header.
    #[error("ethernet: frame shorter than 14 bytes")]
    EthTruncated,
    /// A VLAN tag was announced but the frame ends inside it.
    #[error("vlan: truncated tag")]
    VlanTruncated,
    /// More than three VLAN tags (anomaly: decoding continues with the first three in the stack
    /// key, as Suricata decodes three layers).
    /// Beyond [`MAX_VLAN_TAGS_WALKED`] tags it is the error that stops decoding.
    #[error("vlan: more than three tags")]
    VlanTooDeep,
    /// ARP body shorter than announced, or not Ethernet/IPv4.
    #[error("arp: malformed")]
    ArpMalformed,
    /// IPv4 header truncated.
    #[error("ipv4: truncated header")]
    Ipv4Truncated,
    /// IPv4 version field not 4.
    #[error("ipv4: bad version")]
    Ipv4BadVersion,
    /// IPv4 IHL below 5 or beyond the packet.
    #[error("ipv4: bad header length")]
    Ipv4BadHeaderLen,
    /// IPv4 total length smaller than the header or larger than the frame.
    #[error("ipv4: bad total length")]
    Ipv4BadTotalLen,
    /// IPv4 header checksum wrong (only when checksums are validated; anomaly).
    #[error("ipv4: bad header checksum")]
    Ipv4BadChecksum,
    /// IPv4 options malformed (anomaly).
    #[error("ipv4: malformed options")]
    Ipv4BadOptions,
    /// IPv6 header truncated or payload length beyond the frame.
    #[error("ipv6: truncated")]
    Ipv6Truncated,
    /// IPv6 version field not 6.
    #[error("ipv6: bad version")]
    Ipv6BadVersion,
    /// An IPv6 extension header is truncated.
    #[error("ipv6: truncated extension header")]
    Ipv6ExtTruncated,
    /// More IPv6 extension headers than the cap ([`MAX_IPV6_EXT_HEADERS`]).
    #[error("ipv6: extension header chain too long")]
    Ipv6ExtChainTooLong,
    /// IPv6 fragment header seen twice in one chain (anomaly: the second is skipped, as
    /// Suricata's `ipv6.exthdr_dupl_fh`).
    #[error("ipv6: duplicate fragment header")]
    Ipv6DuplicateFragHeader,
    /// TCP segment shorter than the 20-byte header (Suricata's `tcp.pkt_too_small`).
    #[error("tcp: shorter than its header")]
    TcpTooSmall,
    /// TCP header truncated or data offset bad.
    #[error("tcp: truncated or bad header length")]
    TcpMalformed,
    /// TCP checksum wrong (only when validated; anomaly).
    #[error("tcp: bad checksum")]
    TcpBadChecksum,
    /// UDP datagram shorter than the 8-byte header (Suricata's `udp.hlen_too_small`).
    #[error("udp: shorter than its header")]
    UdpTooSmall,
    /// UDP length field inconsistent with the bytes present.
    #[error("udp: truncated or bad length")]
    UdpMalformed,
    /// UDP checksum wrong (only when validated; anomaly).
    #[error("udp: bad checksum")]
    UdpBadChecksum,
    /// ICMP/ICMPv6 header truncated.
    #[error("icmp: truncated")]
    IcmpMalformed,
    /// ICMP checksum wrong (only when validated; anomaly).
    #[error("icmp: bad checksum")]
    IcmpBadChecksum,
    /// GRE packet shorter than the 4-byte base header (Suricata's `gre.pkt_too_small`).
    #[error("gre: shorter than its header")]
    GreTooSmall,
    /// GRE header truncated, or flags, version or routing we refuse (the tunnel is not opened).
    #[error("gre: truncated or bad header")]
    GreMalformed,
    /// ERSPAN header truncated or of another version.
    #[error("erspan: truncated or bad header")]
    ErspanMalformed,
    /// VXLAN header truncated or without its I flag.
    #[error("vxlan: truncated or bad header")]
    VxlanMalformed,
    /// Geneve header truncated, of another version, or carrying an unknown protocol.
    #[error("geneve: truncated or bad header")]
    GeneveMalformed,
    /// NSH header truncated, of a bad length or carrying an unknown protocol.
    #[error("nsh: truncated or bad header")]
    NshMalformed,
    /// MPLS label stack truncated or deeper than the cap.
    #[error("mpls: truncated or too many labels")]
    MplsMalformed,
    /// PPPoE session header truncated or bad.
    #[error("pppoe: truncated or bad header")]
    PppoeMalformed,
    /// An IPv6 fragment header with offset 0 and no more fragments (an atomic fragment, RFC
    /// 6946; anomaly: the packet is decoded through it, as Suricata's
    /// `ipv6.exthdr_useless_fh`).
    #[error("ipv6: useless fragment header")]
    Ipv6UselessFragHeader,
    /// An IPv6 fragment with more to follow whose data is not a multiple of 8 bytes (anomaly,
    /// RFC 8200 4.5; Suricata's `ipv6.frag_invalid_length`).
    #[error("ipv6: fragment of invalid length")]
    Ipv6FragInvalidLength,
    /// An IPv4 fragment overlapping one already held (the defragmenter's event; Suricata's
    /// `ipv4.frag_overlap`).
    #[error("ipv4: overlapping fragment")]
    Ipv4FragOverlap,
    /// An IPv6 fragment overlapping one already held (`ipv6.frag_overlap`).
    #[error("ipv6: overlapping fragment")]
    Ipv6FragOverlap,
    /// An IPv4 fragment ending past 65535 bytes (`ipv4.frag_pkt_too_large`).
    #[error("ipv4: fragment ends past 65535 bytes")]
    Ipv4FragPktTooLarge,
    /// An IPv6 fragment ending past 65535 bytes (`ipv6.frag_pkt_too_large`).
    #[error("ipv6: fragment ends past 65535 bytes")]
    Ipv6FragPktTooLarge,
}

// Event sets are `u64` bit masks ([`DecodeEvent::bit`]).
const _: () = assert!(DecodeEvent::ALL.len() <= 64);

impl DecodeEvent {
    /// Every variant, for counters and docs.
    pub const ALL: [DecodeEvent; 37] = [
        DecodeEvent::EthTruncated,
        DecodeEvent::VlanTruncated,
        DecodeEvent::VlanTooDeep,
        DecodeEvent::ArpMalformed,
        DecodeEvent::Ipv4Truncated,
        DecodeEvent::Ipv4BadVersion,
        DecodeEvent::Ipv4BadHeaderLen,
        DecodeEvent::Ipv4BadTotalLen,
        DecodeEvent::Ipv4BadChecksum,
        DecodeEvent::Ipv4BadOptions,
        DecodeEvent::Ipv6Truncated,
        DecodeEvent::Ipv6BadVersion,
        DecodeEvent::Ipv6ExtTruncated,
        DecodeEvent::Ipv6ExtChainTooLong,
        DecodeEvent::Ipv6DuplicateFragHeader,
        DecodeEvent::TcpTooSmall,
        DecodeEvent::TcpMalformed,
        DecodeEvent::TcpBadChecksum,
        DecodeEvent::UdpTooSmall,
        DecodeEvent::UdpMalformed,
        DecodeEvent::UdpBadChecksum,
        DecodeEvent::IcmpMalformed,
        DecodeEvent::IcmpBadChecksum,
        DecodeEvent::GreTooSmall,
        DecodeEvent::GreMalformed,
        DecodeEvent::ErspanMalformed,
        DecodeEvent::VxlanMalformed,
        DecodeEvent::GeneveMalformed,
        DecodeEvent::NshMalformed,
        DecodeEvent::MplsMalformed,
        DecodeEvent::PppoeMalformed,
        DecodeEvent::Ipv6UselessFragHeader,
        DecodeEvent::Ipv6FragInvalidLength,
        DecodeEvent::Ipv4FragOverlap,
        DecodeEvent::Ipv6FragOverlap,
        DecodeEvent::Ipv4FragPktTooLarge,
        DecodeEvent::Ipv6FragPktTooLarge,
    ];

    /// Stable snake_case name used for the counter.
    pub const fn name(self) -> &'static str {
        match self {
            DecodeEvent::EthTruncated => "eth_truncated",
            DecodeEvent::VlanTruncated => "vlan_truncated",
            DecodeEvent::VlanTooDeep => "vlan_too_deep",
            DecodeEvent::ArpMalformed => "arp_malformed",
            DecodeEvent::Ipv4Truncated => "ipv4_truncated",
            DecodeEvent::Ipv4BadVersion => "ipv4_bad_version",
            DecodeEvent::Ipv4BadHeaderLen => "ipv4_bad_header_len",
            DecodeEvent::Ipv4BadTotalLen => "ipv4_bad_total_len",
            DecodeEvent::Ipv4BadChecksum => "ipv4_bad_checksum",
            DecodeEvent::Ipv4BadOptions => "ipv4_bad_options",
            DecodeEvent::Ipv6Truncated => "ipv6_truncated",
            DecodeEvent::Ipv6BadVersion => "ipv6_bad_version",
            DecodeEvent::Ipv6ExtTruncated => "ipv6_ext_truncated",
            DecodeEvent::Ipv6ExtChainTooLong => "ipv6_ext_chain_too_long",
            DecodeEvent::Ipv6DuplicateFragHeader => "ipv6_duplicate_frag_header",
            DecodeEvent::TcpMalformed => "tcp_malformed",
            DecodeEvent::TcpBadChecksum => "tcp_bad_checksum",
            DecodeEvent::UdpMalformed => "udp_malformed",
            DecodeEvent::UdpBadChecksum => "udp_bad_checksum",
            DecodeEvent::IcmpMalformed => "icmp_malformed",
            DecodeEvent::IcmpBadChecksum => "icmp_bad_checksum",
            DecodeEvent::GreMalformed => "gre_malformed",
            DecodeEvent::ErspanMalformed => "erspan_malformed",
            DecodeEvent::VxlanMalformed => "vxlan_malformed",
            DecodeEvent::GeneveMalformed => "geneve_malformed",
            DecodeEvent::NshMalformed => "nsh_malformed",
            DecodeEvent::MplsMalformed => "mpls_malformed",
            DecodeEvent::PppoeMalformed => "pppoe_malformed",
            DecodeEvent::TcpTooSmall => "tcp_too_small",
            DecodeEvent::UdpTooSmall => "udp_too_small",
            DecodeEvent::GreTooSmall => "gre_too_small",
            DecodeEvent::Ipv6UselessFragHeader => "ipv6_useless_frag_header",
            DecodeEvent::Ipv6FragInvalidLength => "ipv6_frag_invalid_length",
            DecodeEvent::Ipv4FragOverlap => "ipv4_frag_overlap",
            DecodeEvent::Ipv6FragOverlap => "ipv6_frag_overlap",
            DecodeEvent::Ipv4FragPktTooLarge => "ipv4_frag_pkt_too_large",
            DecodeEvent::Ipv6FragPktTooLarge => "ipv6_frag_pkt_too_large",
        }
    }

    /// The name of Suricata's decoder event (`decode-event:<name>`) this event is, when svm
    /// raises it under the same condition; `None` for svm's own events, which have no exact
    /// Suricata counterpart.
    pub const fn suricata_name(self) -> Option<&'static str> {
        Some(match self {
            DecodeEvent::Ipv6ExtTruncated => "ipv6.trunc_exthdr",
            DecodeEvent::Ipv6DuplicateFragHeader => "ipv6.exthdr_dupl_fh",
            DecodeEvent::Ipv6UselessFragHeader => "ipv6.exthdr_useless_fh",
            DecodeEvent::Ipv6FragInvalidLength => "ipv6.frag_invalid_length",
            DecodeEvent::Ipv4FragOverlap => "ipv4.frag_overlap",
            DecodeEvent::Ipv6FragOverlap => "ipv6.frag_overlap",
            DecodeEvent::Ipv4FragPktTooLarge => "ipv4.frag_pkt_too_large",
            DecodeEvent::Ipv6FragPktTooLarge => "ipv6.frag_pkt_too_large",
            DecodeEvent::TcpTooSmall => "tcp.pkt_too_small",
            DecodeEvent::UdpTooSmall => "udp.hlen_too_small",
            DecodeEvent::GreTooSmall => "gre.pkt_too_small",
            _ => return None,
        })
    }

    /// The event Suricata names `name` (with or without a `decoder.` prefix), if svm raises it.
    pub fn from_suricata_name(name: &str) -> Option<DecodeEvent> {
        let name = name.strip_prefix("decoder.").unwrap_or(name);
        DecodeEvent::ALL.into_iter().find(|e| {
            e.suricata_name()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }

    /// This event's bit in an event set ([`Anomalies::bits`], `PacketView::events`).
    pub const fn bit(self) -> u64 {
        1 << self.index()
    }

    /// Index into a counter array of length `ALL.len()`.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Up to four recoverable anomalies of one frame (more are dropped: the first ones explain it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Anomalies {
    items: [Option<DecodeEvent>; 4],
}

impl Anomalies {
    /// Record an anomaly; silently keeps only the first four.
    pub fn push(&mut self, e: DecodeEvent) {
        if let Some(slot) = self.items.iter_mut().find(|s| s.is_none()) {
            *slot = Some(e);
        }
    }

    /// Record the failure [`decode_frame_lenient`](super::decode_frame_lenient) keeps instead
    /// of refusing the frame: always recorded, replacing the last anomaly when four are there
    /// already (it is the event a `decode-event` rule on the invalid packet looks for).
    pub fn push_failure(&mut self, e: DecodeEvent) {
        match self.items.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some(e),
            None => {
                if let Some(last) = self.items.last_mut() {
                    *last = Some(e);
                }
            }
        }
    }

    /// The recorded anomalies.
    pub fn iter(&self) -> impl Iterator<Item = DecodeEvent> + '_ {
        self.items.iter().flatten().copied()
    }

    /// The recorded anomalies as a set of [`DecodeEvent::bit`]s.
    pub fn bits(&self) -> u64 {
        self.iter().fold(0, |m, e| m | e.bit())
    }

    /// Whether none were recorded (one 4-byte compare: the common case on the packet path).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.items == [None; 4]
    }
}

#[cfg(test)]
mod tcp_option_tests {
    use super::tcp_timestamps;
    use proptest::prelude::*;

    fn header(opts: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 20];
        h.extend_from_slice(opts);
        h
    }

    // A SYN's options as Linux sends them: MSS, SACK permitted, timestamps, NOP, window scale.
    #[test]
    fn reads_the_timestamp_option() {
        let opts = [
            2, 4, 0x05, 0xb4, // MSS 1460
            4, 2, // SACK permitted
            8, 10, 0x6c, 0x8c, 0xc8, 0x3d, 0, 0, 0, 0, // TSval 1821165629, TSecr 0
            1, 3, 3, 7, // NOP, window scale 7
        ];
        assert_eq!(tcp_timestamps(&header(&opts)), Some((1_821_165_629, 0)));
        // NOP, NOP, TS (the common data segment) and TS followed by EOL.
        let opts = [1, 1, 8, 10, 0, 0, 0, 100, 0, 0, 0, 100];
        assert_eq!(tcp_timestamps(&header(&opts)), Some((100, 100)));
        assert_eq!(
            tcp_timestamps(&header(&[8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0])),
            Some((1, 2))
        );
        // None: no options, EOL first, a malformed length, a short or cut timestamp.
        assert_eq!(tcp_timestamps(&header(&[])), None);
        assert_eq!(tcp_timestamps(&[0u8; 12]), None);
        assert_eq!(
            tcp_timestamps(&header(&[0, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0])),
            None
        );
        assert_eq!(
            tcp_timestamps(&header(&[2, 0, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2])),
            None
        );
        assert_eq!(tcp_timestamps(&header(&[2, 40, 8, 10])), None);
        assert_eq!(tcp_timestamps(&header(&[8, 8, 0, 0, 0, 1, 0, 0])), None);
        assert_eq!(tcp_timestamps(&header(&[1, 8, 10, 0, 0, 0, 1, 0, 0])), None);
        assert_eq!(tcp_timestamps(&header(&[1])), None);
    }

    proptest! {
        // Any bytes: no panic; a found option is a well-formed timestamp option in the header.
        #[test]
        fn any_header_is_read_safely(opts in proptest::collection::vec(any::<u8>(), 0..60)) {
            let h = header(&opts);
            if let Some((val, ecr)) = tcp_timestamps(&h) {
                let mut want = vec![8u8, 10];
                want.extend_from_slice(&val.to_be_bytes());
                want.extend_from_slice(&ecr.to_be_bytes());
                prop_assert!(h[20..].windows(10).any(|w| w == want.as_slice()));
            }
        }

        // A timestamp option after any run of NOPs and well-formed other options is found.
        #[test]
        fn emitted_option_is_found(
            val in any::<u32>(),
            ecr in any::<u32>(),
            before in proptest::collection::vec((2u8..=254, 0usize..4), 0..3),
            nops in 0usize..4,
        ) {
            let mut opts = Vec::new();
            for (kind, extra) in before {
                let kind = if kind == 8 { 9 } else { kind };
                opts.push(kind);
                opts.push(u8::try_from(2 + extra).unwrap());
                opts.extend(std::iter::repeat_n(0xaa, extra));
            }
            opts.extend(std::iter::repeat_n(1, nops));
            opts.extend_from_slice(&[8, 10]);
            opts.extend_from_slice(&val.to_be_bytes());
            opts.extend_from_slice(&ecr.to_be_bytes());
            prop_assert_eq!(tcp_timestamps(&header(&opts)), Some((val, ecr)));
        }
    }
}
