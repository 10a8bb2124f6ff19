//! Tunnelled captures: every frame of a capture wrapped in an encapsulation, as a hypervisor's
//! remote mirror (ERSPAN, GRE) or an overlay (VXLAN, Geneve) carries it between two tunnel
//! endpoints on an untagged transport network.

use std::net::{IpAddr, Ipv4Addr};

use crate::capture::Capture;
use crate::link::ip_packet;
use crate::payload::udp_datagram;

/// An encapsulation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Encap {
    /// VXLAN (UDP 4789), VNI 100: the whole frame.
    Vxlan,
    /// Geneve (UDP 6081), VNI 100, Ethernet: the whole frame.
    Geneve,
    /// GRE with transparent Ethernet bridging (0x6558): the whole frame.
    GreEthernet,
    /// GRE carrying the frame's IP packet (its Ethernet header and tags dropped).
    GreIp,
    /// ERSPAN type II over GRE, naming the mirrored port's VLAN: the whole frame.
    ErspanII {
        /// The original VLAN (12 bits).
        vlan: u16,
    },
    /// ERSPAN type III over GRE, naming the mirrored port's VLAN: the whole frame.
    ErspanIII {
        /// The original VLAN (12 bits).
        vlan: u16,
    },
}

/// The tunnel endpoints' MAC addresses and IPv4 addresses.
const OUTER_SRC_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x7e, 0x01];
const OUTER_DST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x7e, 0x02];
/// The mirror source (the hypervisor) and the collector (the SVM).
pub const OUTER_SRC: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 1);
/// See [`OUTER_SRC`].
pub const OUTER_DST: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 2);

const GRE: u8 = 47;
const UDP: u8 = 17;

/// The IP packet of an Ethernet frame (after its tags), or the empty slice.
fn ip_of(frame: &[u8]) -> &[u8] {
    let mut off = 12;
    while let Some(et) = frame.get(off..off + 2) {
        if matches!(et, [0x81, 0x00] | [0x88, 0xa8] | [0x91, 0x00]) {
            off += 4;
        } else {
            return frame.get(off + 2..).unwrap_or_default();
        }
    }
    &[]
}

/// One frame wrapped: outer Ethernet, IPv4, then the encapsulation. `seq` numbers the GRE
/// packets (ERSPAN needs the sequence number).
pub fn wrap(frame: &[u8], encap: Encap, seq: u32) -> Vec<u8> {
    let (src, dst) = (IpAddr::V4(OUTER_SRC), IpAddr::V4(OUTER_DST));
    let gre = |flags: u16, proto: u16, extra: &[u8], inner: &[u8]| {
        let mut b = flags.to_be_bytes().to_vec();
        b.extend_from_slice(&proto.to_be_bytes());
        if flags & 0x1000 != 0 {
            b.extend_from_slice(&seq.to_be_bytes());
        }
        b.extend_from_slice(extra);
        b.extend_from_slice(inner);
        ip_packet(src, dst, GRE, &b)
    };
    let vni = [0, 0, 100, 0];
    let ip = match encap {
        Encap::Vxlan => {
            let mut b = vec![0x08, 0, 0, 0];
            b.extend_from_slice(&vni);
            b.extend_from_slice(frame);
            ip_packet(src, dst, UDP, &udp_datagram(src, dst, 49152, 4789, &b))
        }
        Encap::Geneve => {
            let mut b = vec![0x00, 0x00, 0x65, 0x58];
            b.extend_from_slice(&vni);
            b.extend_from_slice(frame);
            ip_packet(src, dst, UDP, &udp_datagram(src, dst, 49152, 6081, &b))
        }
        Encap::GreEthernet => gre(0, 0x6558, &[], frame),
        Encap::GreIp => {
            let inner = ip_of(frame);
            let proto = if inner.first().is_some_and(|v| v >> 4 == 6) {
                0x86dd
            } else {
                0x0800
            };
            gre(0, proto, &[], inner)
        }
        Encap::ErspanII { vlan } => {
            // Version 1, VLAN; COS 0, session 100; index 0.
            let mut h = (0x1000 | (vlan & 0x0fff)).to_be_bytes().to_vec();
            h.extend_from_slice(&[0x00, 0x64, 0, 0, 0, 0]);
            gre(0x1000, 0x88be, &h, frame)
        }
        Encap::ErspanIII { vlan } => {
            // Version 2, VLAN; session 100; timestamp; SGT, frame type 0 (Ethernet), no
            // platform subheader.
            let mut h = (0x2000 | (vlan & 0x0fff)).to_be_bytes().to_vec();
            h.extend_from_slice(&[0x00, 0x64]);
            h.extend_from_slice(&seq.to_be_bytes());
            h.extend_from_slice(&[0, 0, 0, 0]);
            gre(0x1000, 0x22eb, &h, frame)
        }
    };
    let mut out = Vec::with_capacity(14 + ip.len());
    out.extend_from_slice(&OUTER_DST_MAC);
    out.extend_from_slice(&OUTER_SRC_MAC);
    out.extend_from_slice(&[0x08, 0x00]);
    out.extend_from_slice(&ip);
    out
}

/// Every frame of `cap` wrapped in `encap`, at the same times.
pub fn encapsulate(cap: &Capture, encap: Encap) -> Capture {
    let mut out = Capture::new();
    for (seq, f) in (1u32..).zip(&cap.frames) {
        out.push(f.ts_us, wrap(&f.data, encap, seq));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const FRAME: &[u8] = &[
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00, 0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0,
        0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];

    // The inner frame (or its IP packet) sits at the end of every wrapped frame, behind the
    // encapsulation's header; outer IPv4 to the collector.
    #[test]
    fn wrapped_frames_end_with_what_they_carry() {
        for (encap, header, inner) in [
            (Encap::Vxlan, 14 + 20 + 8 + 8, FRAME),
            (Encap::Geneve, 14 + 20 + 8 + 8, FRAME),
            (Encap::GreEthernet, 14 + 20 + 4, FRAME),
            (Encap::GreIp, 14 + 20 + 4, &FRAME[14..]),
            (Encap::ErspanII { vlan: 23 }, 14 + 20 + 8 + 8, FRAME),
            (Encap::ErspanIII { vlan: 23 }, 14 + 20 + 8 + 12, FRAME),
        ] {
            let w = wrap(FRAME, encap, 7);
            assert_eq!(&w[header..], inner, "{encap:?}");
            assert_eq!(&w[12..14], &[0x08, 0x00]);
            assert_eq!(&w[30..34], &OUTER_DST.octets());
        }
        let w = wrap(FRAME, Encap::ErspanII { vlan: 23 }, 7);
        assert_eq!(&w[34 + 4..34 + 8], &7u32.to_be_bytes());
        assert_eq!(&w[34 + 8..34 + 10], &[0x10, 23]);
    }
}
