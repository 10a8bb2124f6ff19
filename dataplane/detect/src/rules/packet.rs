//! The packet's own headers as rule buffers (`ipv4.hdr`, `tcp.hdr`, ...) and the IPv4 options
//! `ipopts` tests: pure functions over the header bytes [`PacketView`] carries, following
//! Suricata's decoders (`decode-ipv4.c`, `decode-icmpv4.c`).
//!
//! Every read is bounds-checked (`get`); malformed options end the walk with the flags found so
//! far, as Suricata stops at an option whose length is invalid.

use super::ast::{BufferKind, ipopt};
use super::engine::PacketView;
use crate::decode::IpProto;

/// A header buffer of the packet, `None` when the packet has no such header (or is a pseudo
/// packet, whose headers are empty).
pub fn header_buffer<'a>(kind: BufferKind, p: &PacketView<'a>) -> Option<&'a [u8]> {
    let b = match kind {
        BufferKind::Ipv4Hdr if !p.ip_v6 => p.ip_header,
        BufferKind::Ipv6Hdr if p.ip_v6 => p.ip_header,
        BufferKind::TcpHdr if p.proto == IpProto::Tcp => p.l4_header,
        BufferKind::UdpHdr if p.proto == IpProto::Udp => p.l4_header,
        BufferKind::Icmpv4Hdr if p.proto == IpProto::Icmp && !p.ip_v6 => p.l4_header,
        BufferKind::Icmpv6Hdr if p.proto == IpProto::Icmpv6 => p.l4_header,
        _ => return None,
    };
    (!b.is_empty()).then_some(b)
}

/// Length of the ICMPv4 header of `msg` (the ICMP message): 8 bytes, plus the 12 bytes of
/// timestamps of a timestamp request or reply (types 13, 14) and the address entries of a
/// router advertisement (type 9), when the message holds them (Suricata's `icmpv4vars.hlen`).
pub fn icmpv4_header_len(msg: &[u8]) -> usize {
    const BASE: usize = 8;
    let extra = match msg.first() {
        Some(13 | 14) => 12,
        Some(9) => {
            let naddr = usize::from(msg.get(4).copied().unwrap_or(0));
            let size = usize::from(msg.get(5).copied().unwrap_or(0));
            naddr * size * 4
        }
        _ => 0,
    };
    if msg.len() >= BASE + extra {
        BASE + extra
    } else {
        BASE
    }
}

/// The IPv4 option flags ([`ipopt`]) set by `opts` (the header bytes after the first 20), as
/// Suricata's `DecodeIPV4Options`: EOL ends the list; a known option counts only when its
/// length (and pointer, for routes and timestamps) is valid and it is its first occurrence; an
/// invalid length stops the walk; unknown options are skipped.
pub fn ipv4_option_flags(opts: &[u8]) -> u16 {
    let mut flags = 0u16;
    let mut rest = opts;
    while let Some((&ty, tail)) = rest.split_first() {
        match ty {
            0 => {
                flags |= ipopt::EOL;
                break;
            }
            1 => {
                flags |= ipopt::NOP;
                rest = tail;
                continue;
            }
            _ => {}
        }
        let Some(&len) = tail.first() else {
            break;
        };
        let len = usize::from(len);
        if len < 2 || len > rest.len() {
            break;
        }
        let Some(opt) = rest.get(..len) else {
            break;
        };
        let data = opt.get(2..).unwrap_or(&[]);
        let (flag, valid) = match ty {
            7 => (ipopt::RR, route_ok(len, data)),
            0x44 => (ipopt::TS, timestamp_ok(len, data)),
            0x19 => (ipopt::QS, len >= 8),
            0x82 => (ipopt::SEC, len == 11),
            0x83 => (ipopt::LSRR, route_ok(len, data)),
            0x85 => (ipopt::ESEC, len >= 3),
            0x86 => (ipopt::CIPSO, len >= 10),
            0x88 => (ipopt::SID, len == 4),
            0x89 => (ipopt::SSRR, route_ok(len, data)),
            0x94 => (ipopt::RTRALT, len == 4),
            _ => (0, true),
        };
        if !valid {
            // Suricata marks the packet invalid and stops decoding the options.
            break;
        }
        flags |= flag;
        rest = rest.get(len..).unwrap_or(&[]);
    }
    flags
}

/// Record route, loose or strict source route: a pointer (1-based) at or after byte 4, on a
/// 4-byte boundary, not past the option.
fn route_ok(len: usize, data: &[u8]) -> bool {
    let Some(&ptr) = data.first() else {
        return false;
    };
    let ptr = usize::from(ptr);
    len >= 3 && ptr >= 4 && ptr % 4 == 0 && ptr <= len + 1
}

/// Timestamp: a pointer at or after byte 5, advancing by the record size (8 with addresses,
/// flags 1 and 3; else 4), not past the option.
fn timestamp_ok(len: usize, data: &[u8]) -> bool {
    let (Some(&ptr), Some(&flag)) = (data.first(), data.get(1)) else {
        return false;
    };
    let ptr = usize::from(ptr);
    if len < 5 || ptr < 5 {
        return false;
    }
    let rec = if matches!(flag & 0x0f, 1 | 3) { 8 } else { 4 };
    (ptr - 5) % rec == 0 && ptr <= len + 1
}

/// `ipopts` option names and their flags (`any`: every flag).
pub fn ipopts_flag(name: &str) -> Option<u16> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "rr" => ipopt::RR,
        "eol" => ipopt::EOL,
        "nop" => ipopt::NOP,
        "ts" => ipopt::TS,
        "sec" => ipopt::SEC,
        "esec" => ipopt::ESEC,
        "lsrr" => ipopt::LSRR,
        "ssrr" => ipopt::SSRR,
        "satid" => ipopt::SID,
        "any" => u16::MAX,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn options_of_the_suricata_case() {
        // detect-ipopts: RR (len 3, ptr 4) + EOL; LSRR with two routers; EOL alone; NOP + EOL;
        // timestamp (len 8, ptr 5, flag 0); security (11 bytes); SSRR; stream id (4 bytes).
        assert_eq!(ipv4_option_flags(&[7, 3, 4, 0]), ipopt::RR | ipopt::EOL);
        let lsrr = [0x83, 11, 4, 1, 2, 3, 4, 5, 6, 7, 8, 0];
        assert_eq!(ipv4_option_flags(&lsrr), ipopt::LSRR | ipopt::EOL);
        assert_eq!(ipv4_option_flags(&[0, 0, 0, 0]), ipopt::EOL);
        assert_eq!(ipv4_option_flags(&[1, 0, 0, 0]), ipopt::NOP | ipopt::EOL);
        assert_eq!(ipv4_option_flags(&[0x44, 8, 5, 0, 0, 0, 0, 0]), ipopt::TS);
        let sec = [0x82, 11, 0, 0, 0, 0, 0, 0, b'X', b'Y', b'Z', 0];
        assert_eq!(ipv4_option_flags(&sec), ipopt::SEC | ipopt::EOL);
        assert_eq!(ipv4_option_flags(&[0x88, 4, 0, 0]), ipopt::SID);
    }

    #[test]
    fn malformed_options_stop_the_walk() {
        // Length past the end, length 0/1, a bad route pointer: nothing after counts.
        assert_eq!(ipv4_option_flags(&[7, 9, 4, 0]), 0);
        assert_eq!(ipv4_option_flags(&[1, 7, 1]), ipopt::NOP);
        assert_eq!(ipv4_option_flags(&[7, 3, 5, 1]), 0);
        assert_eq!(ipv4_option_flags(&[0x82, 4, 0, 0, 1]), 0);
        // Unknown options are skipped by their length.
        assert_eq!(ipv4_option_flags(&[0x99, 3, 0, 1]), ipopt::NOP);
        assert_eq!(ipv4_option_flags(&[]), 0);
    }

    #[test]
    fn icmpv4_header_lengths() {
        assert_eq!(icmpv4_header_len(&[8, 0, 0, 0, 0, 1, 0, 1, b'x']), 8);
        assert_eq!(icmpv4_header_len(&[13; 20]), 20);
        assert_eq!(icmpv4_header_len(&[13; 19]), 8);
        // Router advertisement: 1 address of 2 words.
        let ra = [9, 0, 0, 0, 1, 2, 0, 30, 10, 14, 80, 84, 66, 0, 0, 0];
        assert_eq!(icmpv4_header_len(&ra), 16);
        assert_eq!(icmpv4_header_len(ra.get(..15).unwrap()), 8);
    }

    #[test]
    fn ipopts_names() {
        assert_eq!(ipopts_flag("LSRR"), Some(ipopt::LSRR));
        assert_eq!(ipopts_flag("satid"), Some(ipopt::SID));
        assert_eq!(ipopts_flag("any"), Some(u16::MAX));
        assert_eq!(ipopts_flag("bogus"), None);
    }

    /// A well-formed option of a kind, `n` data words long where the kind allows.
    fn option(kind: u8, n: u8) -> (Vec<u8>, u16) {
        match kind % 6 {
            0 => (vec![1], ipopt::NOP),
            1 => {
                let mut o = vec![7, 3 + 4 * n, 4];
                o.extend(std::iter::repeat_n(0, 4 * usize::from(n)));
                (o, ipopt::RR)
            }
            2 => {
                let mut o = vec![0x44, 4 + 4 * (n + 1), 5, 0];
                o.extend(std::iter::repeat_n(0, 4 * (usize::from(n) + 1)));
                (o, ipopt::TS)
            }
            3 => (vec![0x82, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0], ipopt::SEC),
            4 => (vec![0x88, 4, 0, 1], ipopt::SID),
            _ => (vec![0x94, 4, 0, 0], ipopt::RTRALT),
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_known_bits_only(opts in prop::collection::vec(any::<u8>(), 0..60)) {
            let f = ipv4_option_flags(&opts);
            prop_assert_eq!(f & !((1u16 << 12) - 1), 0);
            let _ = icmpv4_header_len(&opts);
        }

        // Emit well-formed options, then read them back: every emitted kind is found.
        #[test]
        fn emitted_options_are_found(kinds in prop::collection::vec((any::<u8>(), 0u8..3), 0..5), eol in any::<bool>()) {
            let (mut bytes, mut want) = (Vec::new(), 0u16);
            let mut seen = 0u16;
            for (k, n) in kinds {
                let (o, f) = option(k, n);
                // Suricata counts a repeated option once; an emitted repeat is still valid.
                bytes.extend(o);
                if seen & f == 0 { want |= f; seen |= f; }
            }
            if eol { bytes.push(0); want |= ipopt::EOL; }
            prop_assert_eq!(ipv4_option_flags(&bytes), want);
        }
    }
}
