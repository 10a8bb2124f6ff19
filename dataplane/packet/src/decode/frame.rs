//! The frame decoder: Ethernet, VLAN tags, ARP, IPv4, IPv6 (extension chain), TCP, UDP, ICMP,
//! ICMPv6.
//!
//! Every header is read through a checked view (`smoltcp::wire::*::new_checked`,
//! [`vlan::TagPacket::new_checked`]) or through `slice::get`; nothing here indexes unchecked, so
//! no input can make it panic. Length fields are validated against the bytes actually present
//! before a view is built: the view's own `check_len` then cannot fail, and its accessors cannot
//! panic. Nothing allocates: the result borrows from the input.

use core::net::IpAddr;

use smoltcp::wire::{
    ArpHardware, ArpPacket, ETHERNET_HEADER_LEN, EthernetFrame, EthernetProtocol, IPV4_HEADER_LEN,
    IPV6_HEADER_LEN, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket, checksum,
};
use vlan::{TAG_LEN, Tag, TagPacket, Tpid, VlanStack};

use super::{
    Anomalies, Arp, DecodeEvent, Decoded, EtherType, Fragment, Icmp, Ip, IpProto, L3, L4, Tcp,
    TcpFlags, Udp,
};

/// Cap on IPv6 extension headers walked before the transport header. RFC 8200 recommends an
/// order in which each header appears at most once (destination options twice): 8 covers every
/// legitimate chain, and a longer one is an evasion attempt or garbage, so the frame is rejected
/// ([`DecodeEvent::Ipv6ExtChainTooLong`]) rather than walked without bound.
pub const MAX_IPV6_EXT_HEADERS: usize = 8;

/// Cap on VLAN tags skipped before giving up on a frame. Two are stored in the [`VlanStack`];
/// tags four to eight are skipped with one [`DecodeEvent::VlanTooDeep`] anomaly; a ninth tag makes
/// the frame undecodable (`VlanTooDeep` as the error). Bounds the loop on frames of nothing but
/// tags.
pub const MAX_VLAN_TAGS_WALKED: usize = 8;

/// Decoder settings.
#[derive(Clone, Copy, Debug, Default)]
pub struct DecodeOptions {
    /// Validate IPv4/TCP/UDP/ICMP checksums (`-k all`); a bad one is an anomaly, not an error.
    pub verify_checksums: bool,
}

/// IPv6 next-header values that are extension headers we walk.
mod ext {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const AUTH: u8 = 51;
    pub const DST_OPTS: u8 = 60;
}

/// IPv6 "no next header" (RFC 8200): nothing follows the chain.
const NO_NEXT_HEADER: u8 = 59;

/// Length of a TCP header without options.
const TCP_HEADER_LEN: usize = 20;

/// Length of the IPv6 fragment header.
const IPV6_FRAG_HEADER_LEN: usize = 8;

/// Length of the part of an ICMP header that carries type, code and checksum.
const ICMP_MIN_LEN: usize = 4;
/// Length of an ICMP header with the rest-of-header word (echo ident/seq).
const ICMP_HEADER_LEN: usize = 8;

/// What a frame [`decode_frame`] refused as too deep (`VlanTooDeep`, `Ipv6ExtChainTooLong`) can
/// still say about itself, for its report: its first three VLAN tags and, when the network header
/// behind all its tags is a complete IPv4 or IPv6 header, its addresses. Reads checked views only;
/// the tag walk ends at the frame's end (each step consumes four bytes).
pub fn too_deep_view(frame: &[u8]) -> (VlanStack, Option<(IpAddr, IpAddr)>) {
    let mut vlan = VlanStack::UNTAGGED;
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return (vlan, None);
    };
    let mut ethertype = u16::from(eth.ethertype());
    let mut offset = ETHERNET_HEADER_LEN;
    loop {
        let tpid = Tpid::from(ethertype);
        if !tpid.is_tag() {
            break;
        }
        let Some(tag) = frame
            .get(offset..)
            .and_then(|rest| TagPacket::new_checked(rest).ok())
        else {
            return (vlan, None);
        };
        // Tags past the third are not kept (the stack's key holds three).
        let _ = vlan.push(Tag {
            tpid,
            tci: tag.tci(),
        });
        ethertype = tag.inner_ethertype();
        offset += TAG_LEN;
    }
    let l3 = frame.get(offset..).unwrap_or_default();
    let addrs = match EthernetProtocol::from(ethertype) {
        EthernetProtocol::Ipv4 => Ipv4Packet::new_checked(l3)
            .ok()
            .map(|p| (IpAddr::V4(p.src_addr()), IpAddr::V4(p.dst_addr()))),
        EthernetProtocol::Ipv6 => Ipv6Packet::new_checked(l3)
            .ok()
            .map(|p| (IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr()))),
        _ => None,
    };
    (vlan, addrs)
}

/// Decode one Ethernet frame.
///
/// Returns the [`DecodeEvent`] of the first unrecoverable failure; recoverable anomalies are in
/// [`Decoded::anomalies`].
#[inline]
pub fn decode_frame(frame: &[u8], opts: DecodeOptions) -> Result<Decoded<'_>, DecodeEvent> {
    decode_frame_with::<false>(frame, opts)
}

/// Decode a frame that [`decode_frame`] refused, for the rules that inspect invalid packets
/// (Suricata's decoder events, `decode-event`): a failure past the IP header (a truncated
/// extension header chain, a transport header too short or malformed) is recorded in
/// [`Decoded::anomalies`] instead, and the transport layer is [`L4::Other`] with no bytes;
/// [`Ip::proto`] still names the protocol. Failures up to the IP header are still errors. Cold:
/// only frames that failed to decode come here.
#[cold]
pub fn decode_frame_lenient(frame: &[u8], opts: DecodeOptions) -> Result<Decoded<'_>, DecodeEvent> {
    decode_frame_with::<true>(frame, opts)
}

#[inline(always)]
fn decode_frame_with<const LENIENT: bool>(
    frame: &[u8],
    opts: DecodeOptions,
) -> Result<Decoded<'_>, DecodeEvent> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DecodeEvent::EthTruncated)?;
    let eth_dst = eth.dst_addr().0;
    let eth_src = eth.src_addr().0;
    let mut ethertype = u16::from(eth.ethertype());
    let mut offset = ETHERNET_HEADER_LEN;
    let mut vlan = VlanStack::UNTAGGED;
    let mut anomalies = Anomalies::default();

    let mut walked = 0usize;
    loop {
        let tpid = Tpid::from(ethertype);
        if !tpid.is_tag() {
            break;
        }
        if walked == MAX_VLAN_TAGS_WALKED {
            return Err(DecodeEvent::VlanTooDeep);
        }
        let rest = frame.get(offset..).ok_or(DecodeEvent::VlanTruncated)?;
        let tag = TagPacket::new_checked(rest).map_err(|_| DecodeEvent::VlanTruncated)?;
        if vlan
            .push(Tag {
                tpid,
                tci: tag.tci(),
            })
            .is_err()
            && walked == vlan::MAX_TAGS
        {
            // Reported once per frame, at the first tag that does not fit.
            anomalies.push(DecodeEvent::VlanTooDeep);
        }
        ethertype = tag.inner_ethertype();
        offset += TAG_LEN;
        walked += 1;
    }

    let body = frame.get(offset..).unwrap_or(&[]);
    let ethertype = EtherType::from(ethertype);
    let l3 = match ethertype {
        EtherType::Arp => L3::Arp(decode_arp(body)?),
        EtherType::Ipv4 => L3::Ip(decode_ipv4::<LENIENT>(body, opts, &mut anomalies)?),
        EtherType::Ipv6 => L3::Ip(decode_ipv6::<LENIENT>(body, opts, &mut anomalies)?),
        EtherType::Unknown(_) => L3::Other,
    };

    Ok(Decoded {
        eth_dst,
        eth_src,
        vlan,
        ethertype,
        l3_offset: offset,
        l3,
        anomalies,
    })
}

/// The common frame decoded on a path of its own: untagged or one 802.1Q tag, IPv4 without
/// options, not a fragment, TCP, checksums not validated. `None` for any other frame (the caller
/// then runs [`decode_frame`]); for such a frame the result is exactly [`decode_frame`]'s.
///
/// Built in one straight line, the decoded frame is stored field by field from registers: the
/// general decoder's paths (ARP, IPv6, fragments, tag walks) all meet before its `Ok`, and
/// merging them cost a reload and a narrow store per field on every packet.
#[inline(always)]
pub fn decode_frame_fast(frame: &[u8], opts: DecodeOptions) -> Option<Decoded<'_>> {
    const DOT1Q: u16 = 0x8100;
    const IPV4: u16 = 0x0800;
    const TCP: u8 = 6;
    if opts.verify_checksums {
        return None;
    }
    let eth = frame.first_chunk::<ETHERNET_HEADER_LEN>()?;
    let eth_dst = [eth[0], eth[1], eth[2], eth[3], eth[4], eth[5]];
    let eth_src = [eth[6], eth[7], eth[8], eth[9], eth[10], eth[11]];
    let mut ethertype = u16::from_be_bytes([eth[12], eth[13]]);
    let mut offset = ETHERNET_HEADER_LEN;
    let mut vlan = VlanStack::UNTAGGED;
    if ethertype == DOT1Q {
        let tag = frame.get(offset..)?.first_chunk::<TAG_LEN>()?;
        vlan.push(Tag {
            tpid: Tpid::Dot1Q,
            tci: u16::from_be_bytes([tag[0], tag[1]]),
        })
        .ok()?;
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        offset += TAG_LEN;
    }
    if ethertype != IPV4 {
        return None;
    }
    let buf = frame.get(offset..)?;
    let h = buf.first_chunk::<IPV4_HEADER_LEN>()?;
    // Version 4, a 20-byte header (no options), TCP, neither MF nor a fragment offset.
    if h[0] != 0x45 || h[9] != TCP || u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
        return None;
    }
    let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if total_len < IPV4_HEADER_LEN {
        return None;
    }
    let packet = buf.get(..total_len)?;
    let seg = packet.get(IPV4_HEADER_LEN..)?;
    let t = seg.first_chunk::<TCP_HEADER_LEN>()?;
    let tcp_header_len = usize::from(t[12] >> 4) * 4;
    if tcp_header_len < TCP_HEADER_LEN {
        return None;
    }
    let payload = seg.get(tcp_header_len..)?;
    let tcp = Tcp {
        src_port: u16::from_be_bytes([t[0], t[1]]),
        dst_port: u16::from_be_bytes([t[2], t[3]]),
        seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
        flags: TcpFlags((u16::from(t[12] & 1) << 8) | u16::from(t[13])),
        window: u16::from_be_bytes([t[14], t[15]]),
        urgent: u16::from_be_bytes([t[18], t[19]]),
        header_len: tcp_header_len,
        payload,
    };
    Some(Decoded {
        eth_dst,
        eth_src,
        vlan,
        ethertype: EtherType::Ipv4,
        l3_offset: offset,
        l3: L3::Ip(Ip {
            src_bits: u128::from(u32::from_be_bytes([h[12], h[13], h[14], h[15]])),
            dst_bits: u128::from(u32::from_be_bytes([h[16], h[17], h[18], h[19]])),
            v6: false,
            ttl: h[8],
            proto: IpProto::Tcp,
            total_len,
            header_len: IPV4_HEADER_LEN,
            packet,
            fragment: None,
            l4: L4::Tcp(tcp),
        }),
        anomalies: Anomalies::default(),
    })
}

/// Decode a whole IP packet (v4 or v6 by its version nibble), e.g. a reassembled datagram.
///
/// An empty buffer is [`DecodeEvent::Ipv4Truncated`]; a version nibble other than 4 or 6 is
/// [`DecodeEvent::Ipv4BadVersion`].
pub fn decode_ip(packet: &[u8], opts: DecodeOptions) -> Result<(Ip<'_>, Anomalies), DecodeEvent> {
    let first = packet.first().ok_or(DecodeEvent::Ipv4Truncated)?;
    let mut anomalies = Anomalies::default();
    let ip = match first >> 4 {
        4 => decode_ipv4::<false>(packet, opts, &mut anomalies)?,
        6 => decode_ipv6::<false>(packet, opts, &mut anomalies)?,
        _ => return Err(DecodeEvent::Ipv4BadVersion),
    };
    Ok((ip, anomalies))
}

fn decode_arp(body: &[u8]) -> Result<Arp, DecodeEvent> {
    let arp = ArpPacket::new_checked(body).map_err(|_| DecodeEvent::ArpMalformed)?;
    if arp.hardware_type() != ArpHardware::Ethernet
        || arp.protocol_type() != EthernetProtocol::Ipv4
        || arp.hardware_len() != 6
        || arp.protocol_len() != 4
    {
        return Err(DecodeEvent::ArpMalformed);
    }
    let mac = |b: &[u8]| <[u8; 6]>::try_from(b).map_err(|_| DecodeEvent::ArpMalformed);
    let ipv4 = |b: &[u8]| {
        <[u8; 4]>::try_from(b)
            .map(core::net::Ipv4Addr::from)
            .map_err(|_| DecodeEvent::ArpMalformed)
    };
    Ok(Arp {
        operation: u16::from(arp.operation()),
        sender_mac: mac(arp.source_hardware_addr())?,
        sender_ip: ipv4(arp.source_protocol_addr())?,
        target_mac: mac(arp.target_hardware_addr())?,
        target_ip: ipv4(arp.target_protocol_addr())?,
    })
}

/// IPv4: the checks are done here in order so each failure has its own event. The fixed header
/// is then read from a 20-byte array (`first_chunk`, so every field read is bounds-checked at
/// compile time); smoltcp's view is only built to verify the checksum.
#[inline(always)]
fn decode_ipv4<'a, const LENIENT: bool>(
    buf: &'a [u8],
    opts: DecodeOptions,
    anomalies: &mut Anomalies,
) -> Result<Ip<'a>, DecodeEvent> {
    let h = buf
        .first_chunk::<IPV4_HEADER_LEN>()
        .ok_or(DecodeEvent::Ipv4Truncated)?;
    let ver_ihl = h[0];
    if ver_ihl >> 4 != 4 {
        return Err(DecodeEvent::Ipv4BadVersion);
    }
    let header_len = usize::from(ver_ihl & 0x0f) * 4;
    if header_len < IPV4_HEADER_LEN || header_len > buf.len() {
        return Err(DecodeEvent::Ipv4BadHeaderLen);
    }
    let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if total_len < header_len {
        return Err(DecodeEvent::Ipv4BadTotalLen);
    }
    // Trims Ethernet padding; fails when the total length is beyond the frame.
    let packet = buf.get(..total_len).ok_or(DecodeEvent::Ipv4BadTotalLen)?;

    if header_len > IPV4_HEADER_LEN
        && !ipv4_options_well_formed(packet.get(IPV4_HEADER_LEN..header_len).unwrap_or(&[]))
    {
        anomalies.push(DecodeEvent::Ipv4BadOptions);
    }
    if opts.verify_checksums
        && !Ipv4Packet::new_checked(packet).is_ok_and(|ipv4| ipv4.verify_checksum())
    {
        anomalies.push(DecodeEvent::Ipv4BadChecksum);
    }

    let src_bits = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    let dst_bits = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
    let src = IpAddr::V4(core::net::Ipv4Addr::from_bits(src_bits));
    let dst = IpAddr::V4(core::net::Ipv4Addr::from_bits(dst_bits));
    let proto = IpProto::from(h[9]);
    let payload = packet.get(header_len..).unwrap_or(&[]);
    let header = packet.get(..header_len).unwrap_or(&[]);
    // Flags and fragment offset: MF is 0x2000, the offset counts 8-byte units.
    let frag_field = u16::from_be_bytes([h[6], h[7]]);
    let more_frags = frag_field & 0x2000 != 0;
    let frag_offset = u32::from(frag_field & 0x1fff) * 8;

    let (fragment, l4) = if more_frags || frag_offset != 0 {
        let frag = Fragment {
            id: u32::from(u16::from_be_bytes([h[4], h[5]])),
            offset: frag_offset,
            more: more_frags,
            payload,
            unfragmentable: header,
        };
        (Some(frag), L4::Fragment)
    } else {
        (
            None,
            decode_l4::<LENIENT>(proto, payload, src, dst, opts, anomalies)?,
        )
    };

    Ok(Ip {
        src_bits: u128::from(src_bits),
        dst_bits: u128::from(dst_bits),
        v6: false,
        ttl: h[8],
        proto,
        total_len,
        header_len,
        packet,
        fragment,
        l4,
    })
}

/// Validate the TLV structure of IPv4 options (RFC 791): EOL ends the list, NOP is one byte,
/// every other option has a length byte of at least 2 that stays inside the header.
#[inline(always)]
fn ipv4_options_well_formed(mut options: &[u8]) -> bool {
    const EOL: u8 = 0;
    const NOP: u8 = 1;
    while let Some((&kind, rest)) = options.split_first() {
        match kind {
            EOL => return true,
            NOP => options = rest,
            _ => {
                let Some(&len) = rest.first() else {
                    return false;
                };
                let len = usize::from(len);
                if len < 2 {
                    return false;
                }
                match options.get(len..) {
                    Some(next) => options = next,
                    None => return false,
                }
            }
        }
    }
    true
}

/// Where an IPv6 fragment header sits in the packet.
#[derive(Clone, Copy)]
struct V6Frag {
    /// Offset of the fragment header in the packet.
    start: usize,
    /// The fragment header's next header: the protocol of the reassembled payload.
    next: u8,
    id: u32,
    offset: u32,
    more: bool,
}

fn decode_ipv6<'a, const LENIENT: bool>(
    buf: &'a [u8],
    opts: DecodeOptions,
    anomalies: &mut Anomalies,
) -> Result<Ip<'a>, DecodeEvent> {
    if buf.len() < IPV6_HEADER_LEN {
        return Err(DecodeEvent::Ipv6Truncated);
    }
    if buf.first().map(|b| b >> 4) != Some(6) {
        return Err(DecodeEvent::Ipv6BadVersion);
    }
    let total_len = IPV6_HEADER_LEN + usize::from(read_u16(buf, 4));
    // Trims Ethernet padding; fails when the payload length is beyond the frame.
    let packet = buf.get(..total_len).ok_or(DecodeEvent::Ipv6Truncated)?;
    let ipv6 = Ipv6Packet::new_checked(packet).map_err(|_| DecodeEvent::Ipv6Truncated)?;
    let (src_bits, dst_bits) = (ipv6.src_addr().to_bits(), ipv6.dst_addr().to_bits());
    let src = IpAddr::V6(ipv6.src_addr());
    let dst = IpAddr::V6(ipv6.dst_addr());

    let mut next = u8::from(ipv6.next_header());
    let mut offset = IPV6_HEADER_LEN;
    let mut walked = 0usize;
    let mut frag: Option<V6Frag> = None;
    // A fragment header was seen (a useless one included): a second is skipped.
    let mut fh_seen = false;
    // Lenient decoding only: the chain ended in a truncated header (recorded as an anomaly).
    let mut truncated = false;
    while matches!(
        next,
        ext::HOP_BY_HOP | ext::ROUTING | ext::FRAGMENT | ext::AUTH | ext::DST_OPTS
    ) {
        if frag.is_some_and(|f| f.offset != 0) {
            // A non-first fragment carries payload, not headers, after the fragment header.
            break;
        }
        walked += 1;
        if walked > MAX_IPV6_EXT_HEADERS {
            return Err(DecodeEvent::Ipv6ExtChainTooLong);
        }
        let hdr = packet.get(offset..offset + 2);
        let len = hdr.map_or(0, |h| {
            ipv6_ext_header_len(next, usize::from(h.get(1).copied().unwrap_or(0)))
        });
        let (Some(&[nh, _]), Some(body)) = (hdr, packet.get(offset..offset + len)) else {
            // Inside the first fragment the chain may continue in the next fragment.
            if frag.is_some() {
                break;
            }
            if LENIENT {
                anomalies.push_failure(DecodeEvent::Ipv6ExtTruncated);
                truncated = true;
                break;
            }
            return Err(DecodeEvent::Ipv6ExtTruncated);
        };
        if next == ext::FRAGMENT {
            let off_m = read_u16(body, 2);
            let (frag_offset, more) = (u32::from(off_m & 0xfff8), off_m & 1 != 0);
            if fh_seen {
                // Suricata skips a second fragment header and decodes on.
                anomalies.push(DecodeEvent::Ipv6DuplicateFragHeader);
            } else if frag_offset == 0 && !more {
                // An atomic fragment (RFC 6946) is the whole packet: decoded through its
                // fragment header, as Suricata does, never held by the defragmenter.
                anomalies.push(DecodeEvent::Ipv6UselessFragHeader);
            } else {
                // RFC 8200 4.5: every fragment but the last carries a multiple of 8 bytes.
                let data = packet.len().saturating_sub(offset + IPV6_FRAG_HEADER_LEN);
                if more && data % 8 != 0 {
                    anomalies.push(DecodeEvent::Ipv6FragInvalidLength);
                }
                frag = Some(V6Frag {
                    start: offset,
                    next: nh,
                    id: read_u32(body, 4),
                    offset: frag_offset,
                    more,
                });
            }
            fh_seen = true;
        }
        next = nh;
        offset += len;
    }
    // Suricata: an extension header chain that leaves less than two bytes for the next header
    // (other than "no next header") is truncated.
    if !truncated
        && frag.is_none()
        && walked > 0
        && next != NO_NEXT_HEADER
        && packet.len() < offset + 2
    {
        if !LENIENT {
            return Err(DecodeEvent::Ipv6ExtTruncated);
        }
        anomalies.push_failure(DecodeEvent::Ipv6ExtTruncated);
        truncated = true;
    }

    let ttl = ipv6.hop_limit();
    if let Some(f) = frag {
        let header_len = f.start + IPV6_FRAG_HEADER_LEN;
        let fragment = Fragment {
            id: f.id,
            offset: f.offset,
            more: f.more,
            payload: packet.get(header_len..).unwrap_or(&[]),
            unfragmentable: packet.get(..f.start).unwrap_or(&[]),
        };
        return Ok(Ip {
            src_bits,
            dst_bits,
            v6: true,
            ttl,
            proto: IpProto::from(f.next),
            total_len,
            header_len,
            packet,
            fragment: Some(fragment),
            l4: L4::Fragment,
        });
    }

    let proto = IpProto::from(next);
    let payload = packet.get(offset..).unwrap_or(&[]);
    let l4 = if truncated {
        L4::Other(&[])
    } else {
        decode_l4::<LENIENT>(proto, payload, src, dst, opts, anomalies)?
    };
    Ok(Ip {
        src_bits,
        dst_bits,
        v6: true,
        ttl,
        proto,
        total_len,
        header_len: offset,
        packet,
        fragment: None,
        l4,
    })
}

/// Length in bytes of an IPv6 extension header from its type and its length byte (shared with
/// the defragmenter, which walks the unfragmentable part again).
pub fn ipv6_ext_header_len(kind: u8, len_field: usize) -> usize {
    match kind {
        ext::FRAGMENT => IPV6_FRAG_HEADER_LEN,
        // RFC 4302: the AH length is in 4-octet units, minus 2.
        ext::AUTH => (len_field + 2) * 4,
        // RFC 8200: 8-octet units, not counting the first 8 octets.
        _ => (len_field + 1) * 8,
    }
}

/// The transport layer; with `LENIENT`, a transport header that does not decode is recorded as
/// an anomaly and the layer is [`L4::Other`] with no bytes (see [`decode_frame_lenient`]).
#[inline(always)]
fn decode_l4<'a, const LENIENT: bool>(
    proto: IpProto,
    seg: &'a [u8],
    src: IpAddr,
    dst: IpAddr,
    opts: DecodeOptions,
    anomalies: &mut Anomalies,
) -> Result<L4<'a>, DecodeEvent> {
    let l4 = decode_l4_strict(proto, seg, src, dst, opts, anomalies);
    match l4 {
        Err(e) if LENIENT => {
            anomalies.push_failure(e);
            Ok(L4::Other(&[]))
        }
        r => r,
    }
}

#[inline(always)]
fn decode_l4_strict<'a>(
    proto: IpProto,
    seg: &'a [u8],
    src: IpAddr,
    dst: IpAddr,
    opts: DecodeOptions,
    anomalies: &mut Anomalies,
) -> Result<L4<'a>, DecodeEvent> {
    Ok(match proto {
        IpProto::Tcp => L4::Tcp(decode_tcp(seg, src, dst, opts, anomalies)?),
        IpProto::Udp => L4::Udp(decode_udp(seg, src, dst, opts, anomalies)?),
        IpProto::Icmp => {
            let icmp = decode_icmp(seg)?;
            if opts.verify_checksums && checksum::data(seg) != !0 {
                anomalies.push(DecodeEvent::IcmpBadChecksum);
            }
            L4::Icmp(icmp)
        }
        IpProto::Icmpv6 => {
            let icmp = decode_icmp(seg)?;
            if opts.verify_checksums && !pseudo_checksum_ok(src, dst, IpProtocol::Icmpv6, seg) {
                anomalies.push(DecodeEvent::IcmpBadChecksum);
            }
            L4::Icmpv6(icmp)
        }
        IpProto::Other(_) => L4::Other(seg),
    })
}

#[inline(always)]
fn decode_tcp<'a>(
    seg: &'a [u8],
    src: IpAddr,
    dst: IpAddr,
    opts: DecodeOptions,
    anomalies: &mut Anomalies,
) -> Result<Tcp<'a>, DecodeEvent> {
    // The fixed header from a 20-byte array; the data offset must cover it and stay inside the
    // segment (what smoltcp's `check_len` checks).
    let h = seg
        .first_chunk::<TCP_HEADER_LEN>()
        .ok_or(DecodeEvent::TcpTooSmall)?;
    let header_len = usize::from(h[12] >> 4) * 4;
    if header_len < TCP_HEADER_LEN || header_len > seg.len() {
        return Err(DecodeEvent::TcpMalformed);
    }
    if opts.verify_checksums
        && !TcpPacket::new_checked(seg)
            .is_ok_and(|tcp| tcp.verify_checksum(&IpAddress::from(src), &IpAddress::from(dst)))
    {
        anomalies.push(DecodeEvent::TcpBadChecksum);
    }
    // Byte 12: data offset and NS; byte 13: the eight classic flags.
    let flags = (u16::from(h[12] & 1) << 8) | u16::from(h[13]);
    Ok(Tcp {
        src_port: u16::from_be_bytes([h[0], h[1]]),
        dst_port: u16::from_be_bytes([h[2], h[3]]),
        seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        flags: TcpFlags(flags),
        window: u16::from_be_bytes([h[14], h[15]]),
        urgent: u16::from_be_bytes([h[18], h[19]]),
        header_len,
        payload: seg.get(header_len..).unwrap_or(&[]),
    })
}

#[inline(always)]
fn decode_udp<'a>(
    seg: &'a [u8],
    src: IpAddr,
    dst: IpAddr,
    opts: DecodeOptions,
    anomalies: &mut Anomalies,
) -> Result<Udp<'a>, DecodeEvent> {
    if seg.len() < smoltcp::wire::UDP_HEADER_LEN {
        return Err(DecodeEvent::UdpTooSmall);
    }
    // check_len: 8 <= length field <= bytes present.
    let udp = UdpPacket::new_checked(seg).map_err(|_| DecodeEvent::UdpMalformed)?;
    let len = usize::from(udp.len());
    if opts.verify_checksums {
        // A zero checksum means "none" over IPv4 only; RFC 8200 makes it mandatory over IPv6.
        let ok = if udp.checksum() == 0 {
            src.is_ipv4()
        } else {
            udp.verify_checksum(&IpAddress::from(src), &IpAddress::from(dst))
        };
        if !ok {
            anomalies.push(DecodeEvent::UdpBadChecksum);
        }
    }
    Ok(Udp {
        src_port: udp.src_port(),
        dst_port: udp.dst_port(),
        payload: seg.get(smoltcp::wire::UDP_HEADER_LEN..len).unwrap_or(&[]),
    })
}

/// ICMP and ICMPv6 share the first 8 bytes: type, code, checksum, then a word that echo messages
/// use for ident and sequence. A message of 4 to 7 bytes is kept with ident/seq 0.
#[inline(always)]
fn decode_icmp(seg: &[u8]) -> Result<Icmp<'_>, DecodeEvent> {
    let (icmp_type, code) = match seg.get(..ICMP_MIN_LEN) {
        Some(&[t, c, _, _]) => (t, c),
        _ => return Err(DecodeEvent::IcmpMalformed),
    };
    let (ident, seq) = if seg.len() >= ICMP_HEADER_LEN {
        (read_u16(seg, 4), read_u16(seg, 6))
    } else {
        (0, 0)
    };
    Ok(Icmp {
        icmp_type,
        code,
        ident,
        seq,
        payload: seg.get(ICMP_HEADER_LEN..).unwrap_or(&[]),
    })
}

/// Verify a checksum that covers a pseudo header (ICMPv6 here; TCP and UDP go through smoltcp).
fn pseudo_checksum_ok(src: IpAddr, dst: IpAddr, proto: IpProtocol, data: &[u8]) -> bool {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let pseudo = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => checksum::pseudo_header_v4(&s, &d, proto, len),
        (IpAddr::V6(s), IpAddr::V6(d)) => checksum::pseudo_header_v6(&s, &d, proto, len),
        _ => return false,
    };
    checksum::combine(&[pseudo, checksum::data(data)]) == !0
}

/// Big-endian u16 at `at`, zero when out of range (callers check lengths first).
#[inline(always)]
fn read_u16(buf: &[u8], at: usize) -> u16 {
    match buf.get(at..at + 2) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

/// Big-endian u32 at `at`, zero when out of range (callers check lengths first).
#[inline(always)]
fn read_u32(buf: &[u8], at: usize) -> u32 {
    match buf.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// Frame and packet builders for tests, shared with the defragmenter's tests. They emit through
/// smoltcp's `Repr::emit` (valid checksums) so tests are emit-then-parse.
#[cfg(any(test, feature = "fixtures"))]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // test builders, as in `cfg(test)` code
pub mod fixtures {
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, Icmpv4Repr,
        Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr,
        TcpPacket, TcpRepr, UdpPacket, UdpRepr,
    };
    use vlan::{Tag, TagPacket, TagRepr};

    pub const MAC_SRC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
    pub const MAC_DST: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
    pub const V4_SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    pub const V4_DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    pub const V6_SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    pub const V6_DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// Ethernet header, any number of tags (outer first), then `l3`.
    pub fn eth(tags: &[Tag], ethertype: u16, l3: &[u8]) -> Vec<u8> {
        let tags_len = tags.len() * vlan::TAG_LEN;
        let mut f = vec![0u8; 14 + tags_len + l3.len()];
        let outer = tags.first().map_or(ethertype, |t| u16::from(t.tpid));
        EthernetRepr {
            src_addr: EthernetAddress(MAC_SRC),
            dst_addr: EthernetAddress(MAC_DST),
            ethertype: EthernetProtocol::from(outer),
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
        for (i, tag) in tags.iter().enumerate() {
            let inner = tags.get(i + 1).map_or(ethertype, |n| u16::from(n.tpid));
            let at = 14 + i * vlan::TAG_LEN;
            TagRepr {
                tci: tag.tci,
                inner_ethertype: inner,
            }
            .emit(&mut TagPacket::new_unchecked(
                &mut f[at..at + vlan::TAG_LEN],
            ));
        }
        f[14 + tags_len..].copy_from_slice(l3);
        f
    }

    /// IPv4 header (no options, DF set by smoltcp) with a valid checksum, then `l4`.
    pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
        let repr = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::from(proto),
            payload_len: l4.len(),
            hop_limit: 64,
        };
        let mut buf = vec![0u8; repr.buffer_len() + l4.len()];
        repr.emit(
            &mut Ipv4Packet::new_unchecked(&mut buf[..]),
            &ChecksumCapabilities::default(),
        );
        buf[20..].copy_from_slice(l4);
        buf
    }

    /// One IPv4 fragment of a datagram whose original header is `header` (20 bytes, no
    /// options): same addresses, protocol and TTL, with `id`, `offset` (bytes), MF = `more`.
    pub fn ipv4_fragment(header: &[u8], id: u16, offset: u16, more: bool, data: &[u8]) -> Vec<u8> {
        let mut buf = header[..20].to_vec();
        buf.extend_from_slice(data);
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_total_len(u16::try_from(20 + data.len()).unwrap());
        p.set_ident(id);
        p.clear_flags();
        p.set_more_frags(more);
        p.set_frag_offset(offset);
        p.fill_checksum();
        buf
    }

    /// Fragment an IPv4 packet (20-byte header) into pieces of `chunk` payload bytes.
    pub fn fragment_ipv4(packet: &[u8], id: u16, chunk: usize) -> Vec<Vec<u8>> {
        let payload = &packet[20..];
        let mut out = Vec::new();
        let mut off = 0;
        while off < payload.len() {
            let end = (off + chunk).min(payload.len());
            let more = end < payload.len();
            out.push(ipv4_fragment(
                packet,
                id,
                u16::try_from(off).unwrap(),
                more,
                &payload[off..end],
            ));
            off = end;
        }
        out
    }

    /// IPv6 header then `payload` (extension headers included), `next` the first next header.
    pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
        let repr = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::from(next),
            payload_len: payload.len(),
            hop_limit: 64,
        };
        let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
        repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
        buf[40..].copy_from_slice(payload);
        buf
    }

    /// An IPv6 fragment: fixed header, a fragment header (next header `proto`), then `data`.
    pub fn ipv6_fragment(id: u32, offset: u16, more: bool, proto: u8, data: &[u8]) -> Vec<u8> {
        let mut ext = vec![proto, 0];
        ext.extend_from_slice(&(offset | u16::from(more)).to_be_bytes());
        ext.extend_from_slice(&id.to_be_bytes());
        ext.extend_from_slice(data);
        ipv6(V6_SRC, V6_DST, 44, &ext)
    }

    /// A TCP segment emitted from `repr` with a valid checksum.
    pub fn tcp(src: IpAddr, dst: IpAddr, repr: &TcpRepr<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut buf[..]),
            &src.into(),
            &dst.into(),
            &ChecksumCapabilities::default(),
        );
        buf
    }

    /// A PSH segment (seq 1000, ack 2000) with no options.
    pub fn tcp_simple(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let ports = (sport, dport);
        tcp_segment(
            src,
            dst,
            ports,
            smoltcp::wire::TcpControl::Psh,
            1000,
            Some(2000),
            payload,
        )
    }

    /// A TCP segment with no options: `ports` (source, destination), the control, the sequence
    /// and acknowledgement numbers as on the wire.
    pub fn tcp_segment(
        src: IpAddr,
        dst: IpAddr,
        ports: (u16, u16),
        control: smoltcp::wire::TcpControl,
        seq: u32,
        ack: Option<u32>,
        payload: &[u8],
    ) -> Vec<u8> {
        // smoltcp keeps sequence numbers as i32; the wire's u32 maps bit for bit.
        let wire = |n: u32| smoltcp::wire::TcpSeqNumber(i32::from_ne_bytes(n.to_ne_bytes()));
        let repr = TcpRepr {
            src_port: ports.0,
            dst_port: ports.1,
            control,
            seq_number: wire(seq),
            ack_number: ack.map(wire),
            window_len: 512,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        tcp(src, dst, &repr)
    }

    /// A UDP datagram with a valid checksum.
    pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 8 + payload.len()];
        UdpRepr {
            src_port: sport,
            dst_port: dport,
        }
        .emit(
            &mut UdpPacket::new_unchecked(&mut buf[..]),
            &src.into(),
            &dst.into(),
            payload.len(),
            |b| b.copy_from_slice(payload),
            &ChecksumCapabilities::default(),
        );
        buf
    }

    /// An ICMP echo request with a valid checksum.
    pub fn icmpv4_echo(ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
        let repr = Icmpv4Repr::EchoRequest {
            ident,
            seq_no,
            data,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(
            &mut Icmpv4Packet::new_unchecked(&mut buf[..]),
            &ChecksumCapabilities::default(),
        );
        buf
    }

    /// An ICMPv6 echo request with a valid checksum.
    pub fn icmpv6_echo(
        src: Ipv6Addr,
        dst: Ipv6Addr,
        ident: u16,
        seq_no: u16,
        data: &[u8],
    ) -> Vec<u8> {
        let repr = Icmpv6Repr::EchoRequest {
            ident,
            seq_no,
            data,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(
            &src,
            &dst,
            &mut Icmpv6Packet::new_unchecked(&mut buf[..]),
            &ChecksumCapabilities::default(),
        );
        buf
    }
}

#[cfg(test)]
mod tests {
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;
    use smoltcp::wire::{TcpControl, TcpRepr, TcpSeqNumber, TcpTimestampRepr};
    use vlan::{Tag, Tpid};

    use super::fixtures::*;
    use super::*;

    const VERIFY: DecodeOptions = DecodeOptions {
        verify_checksums: true,
    };
    const NO_VERIFY: DecodeOptions = DecodeOptions {
        verify_checksums: false,
    };

    fn v4(a: Ipv4Addr) -> IpAddr {
        IpAddr::V4(a)
    }
    fn v6(a: Ipv6Addr) -> IpAddr {
        IpAddr::V6(a)
    }

    fn ip_of<'a>(d: &'a Decoded<'_>) -> &'a Ip<'a> {
        match &d.l3 {
            L3::Ip(ip) => ip,
            other => panic!("expected IP, got {other:?}"),
        }
    }

    fn anomalies(a: &Anomalies) -> Vec<DecodeEvent> {
        a.iter().collect()
    }

    fn udp_frame() -> Vec<u8> {
        let seg = udp(v4(V4_SRC), v4(V4_DST), 5353, 53, b"query");
        eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 17, &seg))
    }

    // --- Literal fixtures -------------------------------------------------------------------

    /// ARP request who-has 192.0.2.2 tell 192.0.2.1, on VLAN 100 (802.1Q, PCP 3).
    const ARP_DOT1Q: &[u8] = &[
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst MAC: broadcast
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src MAC
        0x81, 0x00, // TPID 802.1Q
        0x60, 0x64, // TCI: PCP 3, DEI 0, VID 100
        0x08, 0x06, // EtherType ARP
        0x00, 0x01, // HTYPE Ethernet
        0x08, 0x00, // PTYPE IPv4
        0x06, 0x04, // HLEN 6, PLEN 4
        0x00, 0x01, // OPER request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // SHA
        0xc0, 0x00, 0x02, 0x01, // SPA 192.0.2.1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // THA
        0xc0, 0x00, 0x02, 0x02, // TPA 192.0.2.2
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, // padding to 64 bytes (no FCS)
    ];

    /// 60-byte TCP SYN 10.0.0.1:40000 -> 10.0.0.2:80, 6 bytes of Ethernet padding.
    const TCP_SYN_PADDED: &[u8] = &[
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // dst MAC
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src MAC
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x28, // v4, IHL 5, TOS 0, total length 40
        0x00, 0x01, 0x40, 0x00, // id 1, DF, offset 0
        0x40, 0x06, 0x26, 0xcd, // TTL 64, TCP, header checksum
        0x0a, 0x00, 0x00, 0x01, // src 10.0.0.1
        0x0a, 0x00, 0x00, 0x02, // dst 10.0.0.2
        0x9c, 0x40, 0x00, 0x50, // sport 40000, dport 80
        0x00, 0x00, 0x00, 0x64, // seq 100
        0x00, 0x00, 0x00, 0x00, // ack 0
        0x50, 0x02, 0xff, 0xff, // data offset 5, SYN, window 65535
        0xfe, 0xeb, 0x00, 0x00, // checksum, urgent pointer
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // Ethernet padding
    ];

    // --- Ethernet and VLAN ------------------------------------------------------------------

    #[test]
    fn literal_tcp_syn_with_padding() {
        let d = decode_frame(TCP_SYN_PADDED, VERIFY).unwrap();
        assert_eq!(d.eth_dst, MAC_DST);
        assert_eq!(d.eth_src, MAC_SRC);
        assert!(d.vlan.is_empty());
        assert_eq!(d.ethertype, EtherType::Ipv4);
        assert_eq!(d.l3_offset, 14);
        assert!(d.anomalies.is_empty(), "{:?}", d.anomalies);
        let ip = ip_of(&d);
        assert_eq!(ip.src(), v4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(ip.dst(), v4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(ip.total_len, 40);
        assert_eq!(ip.packet.len(), 40, "padding trimmed");
        assert_eq!(ip.ttl, 64);
        assert_eq!(ip.proto, IpProto::Tcp);
        let L4::Tcp(t) = ip.l4 else {
            panic!("{:?}", ip.l4)
        };
        assert_eq!((t.src_port, t.dst_port, t.seq, t.ack), (40000, 80, 100, 0));
        assert_eq!(t.flags, TcpFlags(TcpFlags::SYN));
        assert_eq!(t.window, 65535);
        assert_eq!(t.header_len, 20);
        assert!(t.payload.is_empty());
    }

    #[test]
    fn truncated_ethernet() {
        assert_eq!(
            decode_frame(&TCP_SYN_PADDED[..13], VERIFY).unwrap_err(),
            DecodeEvent::EthTruncated
        );
        assert_eq!(
            decode_frame(&[], VERIFY).unwrap_err(),
            DecodeEvent::EthTruncated
        );
    }

    #[test]
    fn unknown_ethertype_is_other() {
        let f = eth(&[], 0x88cc, b"lldp");
        let d = decode_frame(&f, VERIFY).unwrap();
        assert_eq!(d.ethertype, EtherType::Unknown(0x88cc));
        assert!(matches!(d.l3, L3::Other));
    }

    #[test]
    fn dot1q_arp_literal() {
        let d = decode_frame(ARP_DOT1Q, VERIFY).unwrap();
        assert_eq!(d.vlan.ids().collect::<Vec<_>>(), [100]);
        assert_eq!(d.vlan.tags()[0].tpid, Tpid::Dot1Q);
        assert_eq!(d.ethertype, EtherType::Arp);
        assert_eq!(d.l3_offset, 18);
        let L3::Arp(arp) = d.l3 else { panic!() };
        assert_eq!(arp.operation, 1);
        assert_eq!(arp.sender_mac, MAC_SRC);
        assert_eq!(arp.sender_ip, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(arp.target_mac, [0; 6]);
        assert_eq!(arp.target_ip, Ipv4Addr::new(192, 0, 2, 2));
    }

    #[test]
    fn arp_malformed() {
        // Truncated inside the target protocol address.
        assert_eq!(
            decode_frame(&ARP_DOT1Q[..44], VERIFY).unwrap_err(),
            DecodeEvent::ArpMalformed
        );
        // Not Ethernet/IPv4: HLEN 8.
        let mut f = ARP_DOT1Q.to_vec();
        f[22] = 8;
        assert_eq!(
            decode_frame(&f, VERIFY).unwrap_err(),
            DecodeEvent::ArpMalformed
        );
    }

    #[test]
    fn qinq_88a8_8100() {
        let tags = [
            Tag {
                tpid: Tpid::Dot1Ad,
                tci: 0x2000 | 100,
            },
            Tag {
                tpid: Tpid::Dot1Q,
                tci: 200,
            },
        ];
        let f = eth(
            &tags,
            0x0800,
            &ipv4(V4_SRC, V4_DST, 17, &udp(v4(V4_SRC), v4(V4_DST), 1, 2, b"x")),
        );
        let d = decode_frame(&f, VERIFY).unwrap();
        assert_eq!(d.vlan.tags(), &tags);
        assert_eq!(d.vlan.scope().ids(), &[100, 200]);
        assert_eq!(d.l3_offset, 22);
        assert!(d.anomalies.is_empty());
        assert!(matches!(ip_of(&d).l4, L4::Udp(_)));
    }

    #[test]
    fn tpid_9100() {
        let tags = [Tag {
            tpid: Tpid::QinQ9100,
            tci: 7,
        }];
        let f = eth(
            &tags,
            0x0800,
            &ipv4(V4_SRC, V4_DST, 17, &udp(v4(V4_SRC), v4(V4_DST), 1, 2, b"")),
        );
        let d = decode_frame(&f, VERIFY).unwrap();
        assert_eq!(d.vlan.tags(), &tags);
        assert_eq!(d.l3_offset, 18);
    }

    #[test]
    fn fourth_tag_is_anomaly_and_decoding_continues() {
        let tags = [
            Tag {
                tpid: Tpid::Dot1Ad,
                tci: 10,
            },
            Tag {
                tpid: Tpid::Dot1Q,
                tci: 20,
            },
            Tag {
                tpid: Tpid::Dot1Q,
                tci: 30,
            },
            Tag {
                tpid: Tpid::Dot1Q,
                tci: 40,
            },
        ];
        let l3 = ipv4(V4_SRC, V4_DST, 17, &udp(v4(V4_SRC), v4(V4_DST), 1, 2, b""));
        // Three tags, as Suricata decodes: all kept, no anomaly.
        let f = eth(&tags[..3], 0x0800, &l3);
        let d = decode_frame(&f, VERIFY).unwrap();
        assert_eq!(d.vlan.ids().collect::<Vec<_>>(), [10, 20, 30]);
        assert!(d.anomalies.is_empty());
        assert_eq!(d.l3_offset, 26);
        // A fourth: skipped, an anomaly.
        let f = eth(&tags, 0x0800, &l3);
        let d = decode_frame(&f, VERIFY).unwrap();
        assert_eq!(d.vlan.ids().collect::<Vec<_>>(), [10, 20, 30]);
        assert_eq!(anomalies(&d.anomalies), [DecodeEvent::VlanTooDeep]);
        assert_eq!(d.l3_offset, 30);
        assert!(matches!(ip_of(&d).l4, L4::Udp(_)));
    }

    #[test]
    fn eight_tags_decode_nine_do_not() {
        let l3 = ipv4(V4_SRC, V4_DST, 17, &udp(v4(V4_SRC), v4(V4_DST), 1, 2, b""));
        let tags: Vec<Tag> = (0..8)
            .map(|i| Tag {
                tpid: Tpid::Dot1Q,
                tci: i,
            })
            .collect();
        let f = eth(&tags, 0x0800, &l3);
        let d = decode_frame(&f, VERIFY).unwrap();
        assert_eq!(
            anomalies(&d.anomalies),
            [DecodeEvent::VlanTooDeep],
            "reported once"
        );
        let tags: Vec<Tag> = (0..9)
            .map(|i| Tag {
                tpid: Tpid::Dot1Q,
                tci: i,
            })
            .collect();
        assert_eq!(
            decode_frame(&eth(&tags, 0x0800, &l3), VERIFY).unwrap_err(),
            DecodeEvent::VlanTooDeep
        );
    }

    #[test]
    fn truncated_tag() {
        // 0x8100 announced, then only 2 of 4 tag bytes.
        let f = [MAC_DST.as_slice(), &MAC_SRC, &[0x81, 0x00, 0x00, 0x64]].concat();
        assert_eq!(
            decode_frame(&f, VERIFY).unwrap_err(),
            DecodeEvent::VlanTruncated
        );
        let f = [MAC_DST.as_slice(), &MAC_SRC, &[0x81, 0x00]].concat();
        assert_eq!(
            decode_frame(&f, VERIFY).unwrap_err(),
            DecodeEvent::VlanTruncated
        );
    }

    // --- IPv4 -------------------------------------------------------------------------------

    /// IPv4 with 12 bytes of options: NOP, NOP, Record Route (len 7, pointer 4, one slot), EOL,
    /// EOL, EOL.
    fn ipv4_with_options(options: &[u8; 12]) -> Vec<u8> {
        let seg = udp(v4(V4_SRC), v4(V4_DST), 1000, 2000, b"opts");
        let plain = ipv4(V4_SRC, V4_DST, 17, &seg);
        let mut p = plain[..20].to_vec();
        p.extend_from_slice(options);
        p.extend_from_slice(&seg);
        let mut view = Ipv4Packet::new_unchecked(&mut p[..]);
        view.set_header_len(32);
        view.set_total_len(u16::try_from(32 + seg.len()).unwrap());
        view.fill_checksum();
        p
    }

    const GOOD_OPTIONS: [u8; 12] = [1, 1, 7, 7, 4, 0, 0, 0, 0, 0, 0, 0];

    #[test]
    fn ipv4_options_are_skipped() {
        let f = eth(&[], 0x0800, &ipv4_with_options(&GOOD_OPTIONS));
        let d = decode_frame(&f, VERIFY).unwrap();
        assert!(d.anomalies.is_empty(), "{:?}", d.anomalies);
        let ip = ip_of(&d);
        assert_eq!(ip.header_len, 32);
        let L4::Udp(u) = ip.l4 else { panic!() };
        assert_eq!(
            (u.src_port, u.dst_port, u.payload),
            (1000, 2000, &b"opts"[..])
        );
    }

    #[test]
    fn ipv4_bad_options_are_an_anomaly() {
        // Option length 1 (< 2), then an option running past the header.
        for opts in [
            [1, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 68, 4],
        ] {
            let f = eth(&[], 0x0800, &ipv4_with_options(&opts));
            let d = decode_frame(&f, VERIFY).unwrap();
            assert_eq!(anomalies(&d.anomalies), [DecodeEvent::Ipv4BadOptions]);
            assert!(matches!(ip_of(&d).l4, L4::Udp(_)));
        }
    }

    #[test]
    fn ipv4_malformed_headers() {
        let good = ipv4(
            V4_SRC,
            V4_DST,
            17,
            &udp(v4(V4_SRC), v4(V4_DST), 1, 2, b"abc"),
        );
        let decode = |p: &[u8]| decode_frame(&eth(&[], 0x0800, p), NO_VERIFY).map(|_| ());
        // Truncated below 20 bytes.
        assert_eq!(decode(&good[..19]), Err(DecodeEvent::Ipv4Truncated));
        assert_eq!(decode(&[]), Err(DecodeEvent::Ipv4Truncated));
        // Version 6 under EtherType IPv4.
        let mut p = good.clone();
        p[0] = 0x65;
        assert_eq!(decode(&p), Err(DecodeEvent::Ipv4BadVersion));
        // IHL 4 (16 bytes).
        p[0] = 0x44;
        assert_eq!(decode(&p), Err(DecodeEvent::Ipv4BadHeaderLen));
        // IHL 15 (60 bytes) beyond a 31-byte packet.
        p[0] = 0x4f;
        assert_eq!(decode(&p), Err(DecodeEvent::Ipv4BadHeaderLen));
        // Total length beyond the frame.
        let mut p = good.clone();
        p[2..4].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(decode(&p), Err(DecodeEvent::Ipv4BadTotalLen));
        // Total length below the header length.
        p[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(decode(&p), Err(DecodeEvent::Ipv4BadTotalLen));
    }

    #[test]
    fn ipv4_fragments_stop_at_l3() {
        let seg = udp(v4(V4_SRC), v4(V4_DST), 1, 2, &[0xab; 40]);
        let packet = ipv4(V4_SRC, V4_DST, 17, &seg);
        let frags = fragment_ipv4(&packet, 0x1234, 24);
        assert_eq!(frags.len(), 2);

        let f = eth(&[], 0x0800, &frags[0]);
        let d = decode_frame(&f, VERIFY).unwrap();
        assert!(d.anomalies.is_empty());
        let ip = ip_of(&d);
        assert!(
            matches!(ip.l4, L4::Fragment),
            "offset 0 still waits for reassembly"
        );
        assert_eq!(ip.proto, IpProto::Udp);
        let f = ip.fragment.unwrap();
        assert_eq!((f.id, f.offset, f.more), (0x1234, 0, true));
        assert_eq!(f.payload, &seg[..24]);
        assert_eq!(f.unfragmentable.len(), 20);

        let f = eth(&[], 0x0800, &frags[1]);
        let d = decode_frame(&f, VERIFY).unwrap();
        let f = ip_of(&d).fragment.unwrap();
        assert_eq!((f.id, f.offset, f.more), (0x1234, 24, false));
        assert_eq!(f.payload, &seg[24..]);
    }

    // --- IPv6 -------------------------------------------------------------------------------

    /// Hop-by-hop (PadN), destination options (PadN), fragment header (offset 0, M=1, id
    /// 0xdeadbeef), then the first bytes of an ICMPv6 echo request.
    fn ipv6_ext_chain_fragment() -> (Vec<u8>, Vec<u8>) {
        let echo = icmpv6_echo(V6_SRC, V6_DST, 7, 9, &[0x55; 16]);
        let mut ext = vec![
            60, 0, 1, 4, 0, 0, 0, 0, // hop-by-hop: next dst-opts, len 0 (8 bytes), PadN(4)
            44, 0, 1, 4, 0, 0, 0, 0, // dst-opts: next fragment, len 0, PadN(4)
            58, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef, // fragment: next ICMPv6, off 0, M, id
        ];
        ext.extend_from_slice(&echo[..16]);
        (ipv6(V6_SRC, V6_DST, 0, &ext), echo)
    }

    #[test]
    fn ipv6_hbh_dstopts_fragment() {
        let (p, echo) = ipv6_ext_chain_fragment();
        let f = eth(&[], 0x86dd, &p);
        let d = decode_frame(&f, VERIFY).unwrap();
        assert_eq!(d.ethertype, EtherType::Ipv6);
        let ip = ip_of(&d);
        assert_eq!(ip.src(), v6(V6_SRC));
        assert_eq!(ip.dst(), v6(V6_DST));
        assert_eq!(ip.proto, IpProto::Icmpv6);
        assert_eq!(ip.header_len, 40 + 24);
        assert_eq!(ip.total_len, p.len());
        assert!(matches!(ip.l4, L4::Fragment));
        let f = ip.fragment.unwrap();
        assert_eq!((f.id, f.offset, f.more), (0xdead_beef, 0, true));
        assert_eq!(f.unfragmentable, &p[..56]);
        assert_eq!(f.payload, &echo[..16]);
    }

    #[test]
    fn ipv6_ext_chain_without_fragment_reaches_l4() {
        let seg = udp(v6(V6_SRC), v6(V6_DST), 547, 546, b"dhcp6");
        let mut ext = vec![
            43, 0, 1, 4, 0, 0, 0, 0, // hop-by-hop: next routing
            60, 0, 0, 0, 0, 0, 0, 0, // routing: type 0, segments left 0
            51, 0, 1, 4, 0, 0, 0, 0, // dst-opts: next AH
            17, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, // AH: next UDP, len 1 => 12 bytes
        ];
        ext.extend_from_slice(&seg);
        let p = ipv6(V6_SRC, V6_DST, 0, &ext);
        let f = eth(&[], 0x86dd, &p);
        let d = decode_frame(&f, VERIFY).unwrap();
        assert!(d.anomalies.is_empty(), "{:?}", d.anomalies);
        let ip = ip_of(&d);
        assert_eq!(ip.header_len, 40 + 36);
        let L4::Udp(u) = ip.l4 else {
            panic!("{:?}", ip.l4)
        };
        assert_eq!(
            (u.src_port, u.dst_port, u.payload),
            (547, 546, &b"dhcp6"[..])
        );
    }

    #[test]
    fn ipv6_no_next_header() {
        let p = ipv6(V6_SRC, V6_DST, 59, &[]);
        let f = eth(&[], 0x86dd, &p);
        let d = decode_frame(&f, VERIFY).unwrap();
        let ip = ip_of(&d);
        assert_eq!(ip.proto, IpProto::Other(59));
        assert!(matches!(ip.l4, L4::Other(&[])));
    }

    #[test]
    fn ipv6_ext_chain_too_long() {
        let mut ext = Vec::new();
        for _ in 0..MAX_IPV6_EXT_HEADERS {
            ext.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        ext.extend_from_slice(&[59, 0, 1, 4, 0, 0, 0, 0]);
        // MAX headers then no-next is fine...
        let ok = ipv6(V6_SRC, V6_DST, 60, &ext[8..]);
        assert!(decode_frame(&eth(&[], 0x86dd, &ok), VERIFY).is_ok());
        // ...one more is not.
        let bad = ipv6(V6_SRC, V6_DST, 60, &ext);
        assert_eq!(
            decode_frame(&eth(&[], 0x86dd, &bad), VERIFY).unwrap_err(),
            DecodeEvent::Ipv6ExtChainTooLong
        );
    }

    #[test]
    fn ipv6_malformed() {
        let good = ipv6(V6_SRC, V6_DST, 59, &[0; 8]);
        let decode = |p: &[u8]| decode_frame(&eth(&[], 0x86dd, p), NO_VERIFY).map(|_| ());
        assert_eq!(decode(&good[..39]), Err(DecodeEvent::Ipv6Truncated));
        // Payload length beyond the frame.
        assert_eq!(decode(&good[..47]), Err(DecodeEvent::Ipv6Truncated));
        let mut p = good.clone();
        p[0] = 0x45;
        assert_eq!(decode(&p), Err(DecodeEvent::Ipv6BadVersion));
        // Destination options announcing 16 bytes in an 8-byte payload.
        let p = ipv6(V6_SRC, V6_DST, 60, &[59, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode(&p), Err(DecodeEvent::Ipv6ExtTruncated));
        // A lone next-header byte.
        let p = ipv6(V6_SRC, V6_DST, 60, &[59]);
        assert_eq!(decode(&p), Err(DecodeEvent::Ipv6ExtTruncated));
    }

    /// Suricata's fragment header events (`decode-ipv6.c`): an atomic fragment header is
    /// useless and decoded through; a second fragment header is skipped; a non-last fragment
    /// whose data is not a multiple of 8 bytes has an invalid length; a chain that leaves
    /// less than two bytes is truncated.
    #[test]
    fn ipv6_fragment_header_events() {
        let frame = |p: &[u8]| eth(&[], 0x86dd, p);
        let echo = icmpv6_echo(V6_SRC, V6_DST, 7, 9, b"pingpong");
        // Atomic: offset 0, M=0, next ICMPv6.
        let mut body = vec![58, 0, 0, 0, 0, 0, 0, 1];
        body.extend_from_slice(&echo);
        let f = frame(&ipv6(V6_SRC, V6_DST, 44, &body));
        let d = decode_frame(&f, VERIFY).unwrap();
        assert_eq!(
            anomalies(&d.anomalies),
            [DecodeEvent::Ipv6UselessFragHeader]
        );
        let ip = ip_of(&d);
        assert!(ip.fragment.is_none());
        assert_eq!(ip.header_len, 48);
        assert!(matches!(ip.l4, L4::Icmpv6(i) if i.icmp_type == 128));
        // Two fragment headers, the first atomic: the second is skipped.
        let mut two = vec![44, 0, 0, 0, 0, 0, 0, 1, 58, 0, 0, 0, 0, 0, 0, 2];
        two.extend_from_slice(&echo);
        let f = frame(&ipv6(V6_SRC, V6_DST, 44, &two));
        let d = decode_frame(&f, VERIFY).unwrap();
        assert_eq!(
            anomalies(&d.anomalies),
            [
                DecodeEvent::Ipv6UselessFragHeader,
                DecodeEvent::Ipv6DuplicateFragHeader
            ]
        );
        assert!(matches!(ip_of(&d).l4, L4::Icmpv6(_)));
        // A first fragment (M=1) of 12 data bytes: invalid length; of 16: fine.
        for (n, bad) in [(12usize, true), (16, false)] {
            let p = ipv6_fragment(3, 0, true, 58, &echo[..n]);
            let f = frame(&p);
            let d = decode_frame(&f, VERIFY).unwrap();
            assert!(ip_of(&d).fragment.is_some());
            let want: &[DecodeEvent] = if bad {
                &[DecodeEvent::Ipv6FragInvalidLength]
            } else {
                &[]
            };
            assert_eq!(anomalies(&d.anomalies), want);
        }
        // A last fragment may have any length.
        let f = frame(&ipv6_fragment(3, 16, false, 58, &echo[..5]));
        assert!(decode_frame(&f, VERIFY).unwrap().anomalies.is_empty());
        // An atomic fragment header with nothing after it: the chain is truncated; the lenient
        // decoder keeps the packet with both events.
        let f = frame(&ipv6(V6_SRC, V6_DST, 44, &[58, 0, 0, 0, 0, 0, 0, 1]));
        assert_eq!(
            decode_frame(&f, VERIFY).unwrap_err(),
            DecodeEvent::Ipv6ExtTruncated
        );
        let d = decode_frame_lenient(&f, VERIFY).unwrap();
        assert_eq!(
            anomalies(&d.anomalies),
            [
                DecodeEvent::Ipv6UselessFragHeader,
                DecodeEvent::Ipv6ExtTruncated
            ]
        );
        let ip = ip_of(&d);
        assert_eq!(ip.proto, IpProto::Icmpv6);
        assert!(matches!(ip.l4, L4::Other(&[])));
        // ...but "no next header" after it is complete.
        let f = frame(&ipv6(V6_SRC, V6_DST, 44, &[59, 0, 0, 0, 0, 0, 0, 1]));
        assert!(decode_frame(&f, VERIFY).is_ok());
    }

    /// The lenient decoder keeps a packet whose transport header fails, with the failure as an
    /// anomaly; it agrees with the strict decoder on every frame the latter decodes.
    #[test]
    fn lenient_decoding_keeps_the_ip_layer() {
        let tcp4 = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 6, &[0; 4]));
        assert_eq!(
            decode_frame(&tcp4, NO_VERIFY).unwrap_err(),
            DecodeEvent::TcpTooSmall
        );
        let d = decode_frame_lenient(&tcp4, NO_VERIFY).unwrap();
        assert_eq!(anomalies(&d.anomalies), [DecodeEvent::TcpTooSmall]);
        assert_eq!(ip_of(&d).proto, IpProto::Tcp);
        assert_eq!(ip_of(&d).src(), v4(V4_SRC));
        let udp6 = eth(&[], 0x86dd, &ipv6(V6_SRC, V6_DST, 17, &[]));
        let d = decode_frame_lenient(&udp6, NO_VERIFY).unwrap();
        assert_eq!(anomalies(&d.anomalies), [DecodeEvent::UdpTooSmall]);
        // Failures before the transport layer stay errors.
        let short = eth(&[], 0x0800, &[0x45, 0, 0]);
        assert_eq!(
            decode_frame_lenient(&short, NO_VERIFY).unwrap_err(),
            DecodeEvent::Ipv4Truncated
        );
    }

    /// The frame the fuzz smoke found: an atomic fragment header and three more fragment
    /// headers (four anomalies) before a truncated extension chain. The lenient decoder's
    /// failure is recorded all the same (it replaces the last anomaly).
    #[test]
    fn lenient_failure_is_kept_after_four_anomalies() {
        const FRAME: &[u8] = &[
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x0c, 0x0d, 0x86, 0xdd,
            0x60, 0x00, 0x00, 0x00, 0x00, 0x30, 0x2c, 0x40, 0x20, 0x24, 0x01, 0x0d, 0x02, 0x00,
            0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x02, 0x3c, 0x00, 0x01, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
            0x2c, 0x40, 0x20, 0x24, 0x01, 0x0d, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
            0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x55, 0x00,
            0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x01,
        ];
        for opts in [NO_VERIFY, VERIFY] {
            assert_eq!(
                decode_frame(FRAME, opts).unwrap_err(),
                DecodeEvent::Ipv6ExtTruncated
            );
            let d = decode_frame_lenient(FRAME, opts).unwrap();
            assert!(
                d.anomalies
                    .iter()
                    .any(|a| a == DecodeEvent::Ipv6ExtTruncated),
                "{:?}",
                d.anomalies
            );
            assert_eq!(d.anomalies.iter().count(), 4);
        }
    }

    #[test]
    fn ipv6_non_first_fragment_payload_is_not_walked() {
        // Offset 8: what follows looks like a fragment header but is payload.
        let p = ipv6_fragment(5, 8, false, 17, &[44, 0, 0, 1, 0, 0, 0, 1]);
        let f = eth(&[], 0x86dd, &p);
        let d = decode_frame(&f, VERIFY).unwrap();
        let f = ip_of(&d).fragment.unwrap();
        assert_eq!((f.id, f.offset, f.more, f.payload.len()), (5, 8, false, 8));
    }

    // --- Transport --------------------------------------------------------------------------

    #[test]
    fn tcp_with_options_and_ns() {
        let repr = TcpRepr {
            src_port: 443,
            dst_port: 51000,
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber(0x0102_0304),
            ack_number: Some(TcpSeqNumber(0x0a0b_0c0d)),
            window_len: 29200,
            window_scale: Some(7),
            max_seg_size: Some(1460),
            sack_permitted: true,
            sack_ranges: [None; 3],
            timestamp: Some(TcpTimestampRepr::new(1, 2)),
            payload: b"",
        };
        let mut seg = tcp(v4(V4_SRC), v4(V4_DST), &repr);
        let mut view = TcpPacket::new_unchecked(&mut seg[..]);
        view.set_ns(true);
        view.set_ece(true);
        view.fill_checksum(&v4(V4_SRC).into(), &v4(V4_DST).into());
        let f = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 6, &seg));
        let d = decode_frame(&f, VERIFY).unwrap();
        assert!(d.anomalies.is_empty(), "{:?}", d.anomalies);
        let L4::Tcp(t) = ip_of(&d).l4 else { panic!() };
        assert_eq!(t.header_len, 40);
        assert_eq!((t.seq, t.ack, t.window), (0x0102_0304, 0x0a0b_0c0d, 29200));
        assert_eq!(
            t.flags.0,
            TcpFlags::SYN | TcpFlags::ACK | TcpFlags::ECE | TcpFlags::NS
        );
        assert_eq!(t.flags.core(), TcpFlags::SYN | TcpFlags::ACK);
        assert!(t.payload.is_empty());
    }

    #[test]
    fn tcp_malformed() {
        let seg = tcp_simple(v4(V4_SRC), v4(V4_DST), 1, 2, b"data");
        let frame = |s: &[u8]| eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 6, s));
        // Data offset 15 (60 bytes) beyond a 24-byte segment.
        let mut s = seg.clone();
        s[12] = 0xf0;
        assert_eq!(
            decode_frame(&frame(&s), NO_VERIFY).unwrap_err(),
            DecodeEvent::TcpMalformed
        );
        // Data offset 4 (below 20).
        s[12] = 0x40;
        assert_eq!(
            decode_frame(&frame(&s), NO_VERIFY).unwrap_err(),
            DecodeEvent::TcpMalformed
        );
        // Shorter than the fixed header: Suricata's `tcp.pkt_too_small`.
        for n in [0, 19] {
            assert_eq!(
                decode_frame(&frame(&seg[..n]), NO_VERIFY).unwrap_err(),
                DecodeEvent::TcpTooSmall
            );
        }
    }

    #[test]
    fn udp_fields_and_length_bound() {
        let f = udp_frame();
        let d = decode_frame(&f, VERIFY).unwrap();
        assert!(d.anomalies.is_empty());
        let L4::Udp(u) = ip_of(&d).l4 else { panic!() };
        assert_eq!(
            (u.src_port, u.dst_port, u.payload),
            (5353, 53, &b"query"[..])
        );
        assert_eq!(ip_of(&d).l4.ports(), Some((5353, 53)));

        // A UDP length shorter than the IP payload bounds the payload (trailing bytes ignored).
        let mut seg = udp(v4(V4_SRC), v4(V4_DST), 1, 2, b"abcdef");
        seg[4..6].copy_from_slice(&10u16.to_be_bytes());
        let f = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 17, &seg));
        let d = decode_frame(&f, NO_VERIFY).unwrap();
        let L4::Udp(u) = ip_of(&d).l4 else { panic!() };
        assert_eq!(u.payload, b"ab");
    }

    #[test]
    fn udp_length_mismatch() {
        let seg = udp(v4(V4_SRC), v4(V4_DST), 1, 2, b"abcdef");
        let frame = |s: &[u8]| eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 17, s));
        for bad_len in [7u16, 15, 0xffff] {
            let mut s = seg.clone();
            s[4..6].copy_from_slice(&bad_len.to_be_bytes());
            assert_eq!(
                decode_frame(&frame(&s), NO_VERIFY).unwrap_err(),
                DecodeEvent::UdpMalformed,
                "{bad_len}"
            );
        }
        // Shorter than the header: Suricata's `udp.hlen_too_small`.
        for n in [0, 4, 7] {
            assert_eq!(
                decode_frame(&frame(&seg[..n]), NO_VERIFY).unwrap_err(),
                DecodeEvent::UdpTooSmall
            );
        }
    }

    #[test]
    fn icmp_echo_request() {
        let f = eth(
            &[],
            0x0800,
            &ipv4(V4_SRC, V4_DST, 1, &icmpv4_echo(0x1234, 7, b"ping")),
        );
        let d = decode_frame(&f, VERIFY).unwrap();
        assert!(d.anomalies.is_empty());
        let L4::Icmp(i) = ip_of(&d).l4 else { panic!() };
        assert_eq!(
            (i.icmp_type, i.code, i.ident, i.seq, i.payload),
            (8, 0, 0x1234, 7, &b"ping"[..])
        );
        assert!(i.is_echo_request(false));
        assert_eq!(ip_of(&d).l4.ports(), None);
    }

    #[test]
    fn icmpv6_echo_request() {
        let p = ipv6(
            V6_SRC,
            V6_DST,
            58,
            &icmpv6_echo(V6_SRC, V6_DST, 42, 1, b"ping6"),
        );
        let f = eth(&[], 0x86dd, &p);
        let d = decode_frame(&f, VERIFY).unwrap();
        assert!(d.anomalies.is_empty(), "{:?}", d.anomalies);
        let L4::Icmpv6(i) = ip_of(&d).l4 else {
            panic!()
        };
        assert_eq!(
            (i.icmp_type, i.code, i.ident, i.seq, i.payload),
            (128, 0, 42, 1, &b"ping6"[..])
        );
        assert!(i.is_echo_request(true));
    }

    #[test]
    fn short_icmp() {
        let frame = |s: &[u8]| eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 1, s));
        // Destination unreachable cut after the checksum: kept, ident/seq 0.
        let f = frame(&[3, 1, 0xfc, 0xfe]);
        let d = decode_frame(&f, VERIFY).unwrap();
        let L4::Icmp(i) = ip_of(&d).l4 else { panic!() };
        assert_eq!(
            (i.icmp_type, i.code, i.ident, i.seq, i.payload),
            (3, 1, 0, 0, &[][..])
        );
        assert!(d.anomalies.is_empty(), "checksum of the 4 bytes is valid");
        assert_eq!(
            decode_frame(&frame(&[8, 0, 0]), NO_VERIFY).unwrap_err(),
            DecodeEvent::IcmpMalformed
        );
        let p = ipv6(V6_SRC, V6_DST, 58, &[128]);
        assert_eq!(
            decode_frame(&eth(&[], 0x86dd, &p), NO_VERIFY).unwrap_err(),
            DecodeEvent::IcmpMalformed
        );
    }

    #[test]
    fn other_protocol_payload() {
        let f = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 47, b"gre!"));
        let d = decode_frame(&f, VERIFY).unwrap();
        assert_eq!(ip_of(&d).proto, IpProto::Other(47));
        assert!(matches!(ip_of(&d).l4, L4::Other(b"gre!")));
    }

    // --- Checksums --------------------------------------------------------------------------

    /// Flip one byte at `at` (offset in the frame) and decode with and without verification.
    fn corrupt(frame: &[u8], at: usize) -> (Vec<DecodeEvent>, Vec<DecodeEvent>) {
        let mut f = frame.to_vec();
        f[at] ^= 0x5a;
        let on = anomalies(&decode_frame(&f, VERIFY).unwrap().anomalies);
        let off = anomalies(&decode_frame(&f, NO_VERIFY).unwrap().anomalies);
        (on, off)
    }

    #[test]
    fn checksums_verified_only_when_asked() {
        // IPv4 header checksum: corrupt the TTL.
        let (on, off) = corrupt(TCP_SYN_PADDED, 14 + 8);
        assert_eq!(on, [DecodeEvent::Ipv4BadChecksum]);
        assert!(off.is_empty());
        // TCP: corrupt the window.
        let (on, off) = corrupt(TCP_SYN_PADDED, 14 + 20 + 14);
        assert_eq!(on, [DecodeEvent::TcpBadChecksum]);
        assert!(off.is_empty());
        // UDP payload.
        let f = udp_frame();
        let (on, off) = corrupt(&f, f.len() - 1);
        assert_eq!(on, [DecodeEvent::UdpBadChecksum]);
        assert!(off.is_empty());
        // ICMP payload.
        let f = eth(
            &[],
            0x0800,
            &ipv4(V4_SRC, V4_DST, 1, &icmpv4_echo(1, 1, b"ping")),
        );
        let (on, off) = corrupt(&f, f.len() - 1);
        assert_eq!(on, [DecodeEvent::IcmpBadChecksum]);
        assert!(off.is_empty());
        // ICMPv6 payload (pseudo-header checksum).
        let p = ipv6(
            V6_SRC,
            V6_DST,
            58,
            &icmpv6_echo(V6_SRC, V6_DST, 1, 1, b"ping"),
        );
        let f = eth(&[], 0x86dd, &p);
        let (on, off) = corrupt(&f, f.len() - 1);
        assert_eq!(on, [DecodeEvent::IcmpBadChecksum]);
        assert!(off.is_empty());
        // IPv6 UDP and TCP go through the pseudo header with v6 addresses.
        let p = ipv6(
            V6_SRC,
            V6_DST,
            17,
            &udp(v6(V6_SRC), v6(V6_DST), 1, 2, b"v6"),
        );
        assert!(
            decode_frame(&eth(&[], 0x86dd, &p), VERIFY)
                .unwrap()
                .anomalies
                .is_empty()
        );
        let p = ipv6(
            V6_SRC,
            V6_DST,
            6,
            &tcp_simple(v6(V6_SRC), v6(V6_DST), 1, 2, b"v6"),
        );
        let f = eth(&[], 0x86dd, &p);
        assert!(decode_frame(&f, VERIFY).unwrap().anomalies.is_empty());
        let (on, _) = corrupt(&f, f.len() - 1);
        assert_eq!(on, [DecodeEvent::TcpBadChecksum]);
    }

    #[test]
    fn udp_zero_checksum() {
        let mut seg = udp(v4(V4_SRC), v4(V4_DST), 1, 2, b"nocsum");
        seg[6..8].copy_from_slice(&[0, 0]);
        let f = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 17, &seg));
        assert!(
            decode_frame(&f, VERIFY).unwrap().anomalies.is_empty(),
            "valid over IPv4"
        );
        let mut seg = udp(v6(V6_SRC), v6(V6_DST), 1, 2, b"nocsum");
        seg[6..8].copy_from_slice(&[0, 0]);
        let f = eth(&[], 0x86dd, &ipv6(V6_SRC, V6_DST, 17, &seg));
        assert_eq!(
            anomalies(&decode_frame(&f, VERIFY).unwrap().anomalies),
            [DecodeEvent::UdpBadChecksum]
        );
    }

    #[test]
    fn several_anomalies_are_all_kept() {
        // Bad IPv4 options, bad header checksum and bad UDP checksum in one frame.
        let mut p = ipv4_with_options(&[1, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let last = p.len() - 1;
        p[last] ^= 1;
        p[8] ^= 1;
        let f = eth(&[], 0x0800, &p);
        let d = decode_frame(&f, VERIFY).unwrap();
        assert_eq!(
            anomalies(&d.anomalies),
            [
                DecodeEvent::Ipv4BadOptions,
                DecodeEvent::Ipv4BadChecksum,
                DecodeEvent::UdpBadChecksum
            ]
        );
    }

    // --- decode_ip --------------------------------------------------------------------------

    #[test]
    fn decode_ip_dispatches_on_version() {
        let p4 = ipv4(V4_SRC, V4_DST, 17, &udp(v4(V4_SRC), v4(V4_DST), 1, 2, b"4"));
        let (ip, a) = decode_ip(&p4, VERIFY).unwrap();
        assert!(a.is_empty());
        assert_eq!(ip.src(), v4(V4_SRC));
        assert!(matches!(ip.l4, L4::Udp(u) if u.payload == b"4"));
        let p6 = ipv6(V6_SRC, V6_DST, 17, &udp(v6(V6_SRC), v6(V6_DST), 1, 2, b"6"));
        let (ip, _) = decode_ip(&p6, VERIFY).unwrap();
        assert_eq!(ip.dst(), v6(V6_DST));
        assert!(matches!(ip.l4, L4::Udp(u) if u.payload == b"6"));
        assert_eq!(
            decode_ip(&[], VERIFY).unwrap_err(),
            DecodeEvent::Ipv4Truncated
        );
        assert_eq!(
            decode_ip(&[0x50; 40], VERIFY).unwrap_err(),
            DecodeEvent::Ipv4BadVersion
        );
    }

    // --- Property tests ---------------------------------------------------------------------

    fn arb_tags() -> impl Strategy<Value = Vec<Tag>> {
        let tpid = prop_oneof![Just(Tpid::Dot1Q), Just(Tpid::Dot1Ad), Just(Tpid::QinQ9100)];
        proptest::collection::vec((tpid, 0u16..=4094, 0u16..8), 0..=2).prop_map(|v| {
            v.into_iter()
                .map(|(tpid, vid, pcp)| Tag {
                    tpid,
                    tci: (pcp << 13) | vid,
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn tcp_round_trip(
            tags in arb_tags(),
            v6_addrs in any::<bool>(),
            a4 in any::<[u8; 4]>(), b4 in any::<[u8; 4]>(),
            a6 in any::<[u8; 16]>(), b6 in any::<[u8; 16]>(),
            sport in any::<u16>(), dport in any::<u16>(),
            seq in any::<i32>(), ack in proptest::option::of(any::<i32>()),
            control in prop_oneof![Just(TcpControl::None), Just(TcpControl::Psh), Just(TcpControl::Syn),
                                   Just(TcpControl::Fin), Just(TcpControl::Rst)],
            window in any::<u16>(), mss in proptest::option::of(any::<u16>()),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let (src, dst) = if v6_addrs {
                (v6(Ipv6Addr::from(a6)), v6(Ipv6Addr::from(b6)))
            } else {
                (v4(Ipv4Addr::from(a4)), v4(Ipv4Addr::from(b4)))
            };
            let repr = TcpRepr {
                src_port: sport, dst_port: dport, control,
                seq_number: TcpSeqNumber(seq), ack_number: ack.map(TcpSeqNumber),
                window_len: window, window_scale: None, max_seg_size: mss,
                sack_permitted: false, sack_ranges: [None; 3], timestamp: None, payload: &payload,
            };
            let seg = tcp(src, dst, &repr);
            let frame = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => eth(&tags, 0x0800, &ipv4(s, d, 6, &seg)),
                (IpAddr::V6(s), IpAddr::V6(d)) => eth(&tags, 0x86dd, &ipv6(s, d, 6, &seg)),
                _ => unreachable!(),
            };
            let d = decode_frame(&frame, VERIFY).unwrap();
            prop_assert!(d.anomalies.is_empty());
            prop_assert_eq!(d.vlan.tags(), &tags[..]);
            prop_assert_eq!(d.l3_offset, 14 + 4 * tags.len());
            let ip = ip_of(&d);
            prop_assert_eq!((ip.src(), ip.dst(), ip.proto), (src, dst, IpProto::Tcp));
            let L4::Tcp(t) = ip.l4 else { panic!("{:?}", ip.l4) };
            prop_assert_eq!((t.src_port, t.dst_port), (sport, dport));
            prop_assert_eq!(t.seq, u32::from_ne_bytes(seq.to_ne_bytes()));
            prop_assert_eq!(t.ack, ack.map_or(0, |a| u32::from_ne_bytes(a.to_ne_bytes())));
            prop_assert_eq!(t.flags.has(TcpFlags::ACK), ack.is_some());
            prop_assert_eq!(t.flags.has(TcpFlags::SYN), control == TcpControl::Syn);
            prop_assert_eq!(t.flags.has(TcpFlags::FIN), control == TcpControl::Fin);
            prop_assert_eq!(t.flags.has(TcpFlags::RST), control == TcpControl::Rst);
            prop_assert_eq!(t.window, window);
            prop_assert_eq!(t.header_len, repr.header_len());
            prop_assert_eq!(t.payload, &payload[..]);
        }

        /// The fast path either declines a frame or decodes it exactly as the general decoder:
        /// valid IPv4/TCP frames with random damage (flipped bytes, a cut), 0 to 2 tags.
        #[test]
        fn fast_path_decodes_as_the_general_decoder(
            tags in arb_tags(),
            a4 in any::<[u8; 4]>(), b4 in any::<[u8; 4]>(),
            sport in any::<u16>(), dport in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            padding in 0usize..20,
            flips in proptest::collection::vec((0usize..80, any::<u8>()), 0..3),
            cut in 0usize..100,
        ) {
            let (src, dst) = (Ipv4Addr::from(a4), Ipv4Addr::from(b4));
            let seg = tcp_simple(v4(src), v4(dst), sport, dport, &payload);
            let mut frame = eth(&tags, 0x0800, &ipv4(src, dst, 6, &seg));
            frame.resize(frame.len() + padding, 0);
            let intact = frame.clone();
            for (at, x) in flips {
                if let Some(b) = frame.get_mut(at) {
                    *b ^= x;
                }
            }
            frame.truncate(frame.len().saturating_sub(cut));
            for f in [&intact, &frame] {
                let general = decode_frame(f, NO_VERIFY);
                if let Some(fast) = decode_frame_fast(f, NO_VERIFY) {
                    prop_assert_eq!(format!("{fast:?}"), format!("{:?}", general.unwrap()));
                }
                prop_assert!(decode_frame_fast(f, VERIFY).is_none());
            }
            let common = match tags.as_slice() {
                [] => true,
                [t] => t.tpid == Tpid::Dot1Q,
                _ => false,
            };
            prop_assert_eq!(decode_frame_fast(&intact, NO_VERIFY).is_some(), common);
        }

        #[test]
        fn udp_round_trip(
            tags in arb_tags(),
            v6_addrs in any::<bool>(),
            a4 in any::<[u8; 4]>(), b4 in any::<[u8; 4]>(),
            a6 in any::<[u8; 16]>(), b6 in any::<[u8; 16]>(),
            sport in any::<u16>(), dport in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            padding in 0usize..40,
        ) {
            let (src, dst) = if v6_addrs {
                (v6(Ipv6Addr::from(a6)), v6(Ipv6Addr::from(b6)))
            } else {
                (v4(Ipv4Addr::from(a4)), v4(Ipv4Addr::from(b4)))
            };
            let seg = udp(src, dst, sport, dport, &payload);
            let mut frame = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => eth(&tags, 0x0800, &ipv4(s, d, 17, &seg)),
                (IpAddr::V6(s), IpAddr::V6(d)) => eth(&tags, 0x86dd, &ipv6(s, d, 17, &seg)),
                _ => unreachable!(),
            };
            frame.resize(frame.len() + padding, 0);
            let d = decode_frame(&frame, VERIFY).unwrap();
            prop_assert!(d.anomalies.is_empty());
            prop_assert_eq!(d.vlan.tags(), &tags[..]);
            let ip = ip_of(&d);
            prop_assert_eq!((ip.src(), ip.dst(), ip.proto), (src, dst, IpProto::Udp));
            prop_assert_eq!(ip.packet.len(), frame.len() - padding - d.l3_offset);
            let L4::Udp(u) = ip.l4 else { panic!("{:?}", ip.l4) };
            prop_assert_eq!((u.src_port, u.dst_port), (sport, dport));
            prop_assert_eq!(u.payload, &payload[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_frame(&bytes, VERIFY);
            let _ = decode_frame(&bytes, NO_VERIFY);
            let _ = decode_frame_lenient(&bytes, VERIFY);
            let _ = decode_ip(&bytes, VERIFY);
        }

        /// Arbitrary bytes behind a plausible Ethernet header (and maybe tags) reach the deeper
        /// decoders far more often than fully random frames.
        #[test]
        fn arbitrary_l3_never_panics(
            tags in arb_tags(),
            ethertype in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x0806), Just(0x8100), any::<u16>()],
            version_nibble in prop_oneof![Just(0x40u8), Just(0x60)],
            mut body in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            if let Some(b) = body.first_mut() {
                *b = version_nibble | (*b & 0x0f);
            }
            let frame = eth(&tags, ethertype, &body);
            let _ = decode_frame(&frame, VERIFY);
            let strict = decode_frame(&frame, NO_VERIFY);
            let lenient = decode_frame_lenient(&frame, NO_VERIFY);
            // Lenient decoding changes nothing on a frame that decodes, and accepts every
            // frame that fails past the IP header, keeping the failure as an anomaly.
            match (&strict, &lenient) {
                (Ok(s), Ok(l)) => {
                    prop_assert_eq!(s.anomalies, l.anomalies);
                    prop_assert_eq!(format!("{:?}", s.l3), format!("{:?}", l.l3));
                }
                (Err(e), Ok(l)) => prop_assert!(l.anomalies.iter().any(|a| a == *e)),
                (Err(e), Err(f)) => prop_assert_eq!(e, f),
                (Ok(_), Err(_)) => prop_assert!(false, "lenient refused what strict decodes"),
            }
            let _ = decode_ip(&body, VERIFY);
        }
    }

    proptest! {
        /// Whatever the depth of its tag stack, a frame tells [`too_deep_view`] its first three
        /// tags and, behind the last tag, its IPv4 addresses; where the decoder refuses the frame
        /// as too deep, the view still reads it.
        #[test]
        fn too_deep_view_reads_any_depth(
            depth in 0usize..24, vid in 1u16..=4094,
            a in any::<[u8; 4]>(), b in any::<[u8; 4]>(),
            cut in proptest::option::of(0usize..80),
        ) {
            let tags: Vec<Tag> = (0..depth)
                .map(|i| Tag { tpid: Tpid::Dot1Q, tci: vid.wrapping_add(u16::try_from(i).unwrap_or(0)) % 4095 })
                .collect();
            let (src, dst) = (Ipv4Addr::from(a), Ipv4Addr::from(b));
            let l3 = ipv4(src, dst, 17, &[0u8; 8]);
            let mut frame = eth(&tags, 0x0800, &l3);
            if let Some(c) = cut {
                frame.truncate(c);
            }
            let (vlan, addrs) = too_deep_view(&frame);
            if cut.is_none() {
                prop_assert_eq!(addrs, Some((IpAddr::V4(src), IpAddr::V4(dst))));
                let ids: Vec<u16> = vlan.tags().iter().map(|t| t.vid()).collect();
                let want: Vec<u16> = tags.iter().take(vlan::MAX_TAGS).map(|t| t.tci & 0x0fff).collect();
                prop_assert_eq!(ids, want);
                if depth > MAX_VLAN_TAGS_WALKED {
                    prop_assert_eq!(decode_frame(&frame, NO_VERIFY).err(), Some(DecodeEvent::VlanTooDeep));
                }
            }
        }
    }
}
