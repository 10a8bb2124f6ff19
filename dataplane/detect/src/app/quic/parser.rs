//! QUIC v1 long headers (RFC 9000 section 17.2) and the frames an Initial may carry (section
//! 17.2.2): PADDING, PING, ACK, CRYPTO, CONNECTION_CLOSE. Pure functions over byte slices: no
//! state, no logging, no panics on any input. Packet protection is `super::crypto`'s.

use super::QuicError;

/// QUIC version 1 (RFC 9000).
pub const VERSION_1: u32 = 1;

/// A connection id's longest form in version 1 (RFC 9000 section 17.2: 20 bytes).
pub const MAX_CID_LEN: usize = 20;

/// Read a variable-length integer (RFC 9000 section 16) at the start of `buf`: its value and
/// the bytes it took.
pub fn varint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let len = 1usize << (first >> 6);
    let bytes = buf.get(..len)?;
    let mut v = u64::from(first & 0x3f);
    for b in bytes.iter().skip(1) {
        v = (v << 8) | u64::from(*b);
    }
    Some((v, len))
}

/// A cursor over untrusted bytes; every read is checked.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos = self.pos.saturating_add(1);
        Some(b)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos = self.pos.saturating_add(n);
        Some(b)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_be_bytes(b.try_into().ok()?))
    }

    pub(crate) fn varint(&mut self) -> Option<u64> {
        let (v, n) = varint(self.buf.get(self.pos..)?)?;
        self.pos = self.pos.saturating_add(n);
        Some(v)
    }

    /// A varint used as a length within this buffer.
    pub(crate) fn len(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }
}

/// Long header packet types of version 1 (RFC 9000 section 17.2, Table 5): an open enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongType {
    /// 0x00.
    Initial,
    /// 0x01.
    ZeroRtt,
    /// 0x02.
    Handshake,
    /// 0x03: no Length field, it runs to the end of the datagram.
    Retry,
}

impl From<u8> for LongType {
    /// From the first byte of a long header (bits 0x30).
    fn from(first: u8) -> Self {
        match (first >> 4) & 0x03 {
            0 => LongType::Initial,
            1 => LongType::ZeroRtt,
            2 => LongType::Handshake,
            _ => LongType::Retry,
        }
    }
}

/// One long-header packet of a datagram, header protection still on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongPacket<'a> {
    /// Packet type.
    pub ty: LongType,
    /// Destination connection id.
    pub dcid: &'a [u8],
    /// Source connection id.
    pub scid: &'a [u8],
    /// The whole packet: from its first byte to the end its Length field gives (a Retry: to
    /// the end of the datagram).
    pub packet: &'a [u8],
    /// Offset of the (protected) packet number in `packet`; 0 for a Retry.
    pub pn_offset: usize,
}

/// Read the long-header packet at the start of `buf` (a datagram, or what follows the packets
/// before it). Returns the packet and the bytes it took.
///
/// Errors: [`QuicError::NotLongHeader`] (a short header, or a datagram's zero padding),
/// [`QuicError::VersionNegotiation`], [`QuicError::UnsupportedVersion`] (anything but version 1:
/// its header after the connection ids is version-specific), [`QuicError::Truncated`],
/// [`QuicError::BadConnectionId`], [`QuicError::FixedBitClear`].
pub fn long_packet(buf: &[u8]) -> Result<(LongPacket<'_>, usize), QuicError> {
    let mut r = Reader::new(buf);
    let first = r.u8().ok_or(QuicError::Truncated)?;
    if first & 0x80 == 0 {
        return Err(QuicError::NotLongHeader);
    }
    let version = r.u32().ok_or(QuicError::Truncated)?;
    if version == 0 {
        return Err(QuicError::VersionNegotiation);
    }
    if version != VERSION_1 {
        return Err(QuicError::UnsupportedVersion(version));
    }
    // The fixed bit is 1 in version 1 unless the peer negotiated greasing it, which the first
    // flight cannot have done (RFC 9287).
    if first & 0x40 == 0 {
        return Err(QuicError::FixedBitClear);
    }
    let dcid_len = usize::from(r.u8().ok_or(QuicError::Truncated)?);
    if dcid_len > MAX_CID_LEN {
        return Err(QuicError::BadConnectionId);
    }
    let dcid = r.bytes(dcid_len).ok_or(QuicError::Truncated)?;
    let scid_len = usize::from(r.u8().ok_or(QuicError::Truncated)?);
    if scid_len > MAX_CID_LEN {
        return Err(QuicError::BadConnectionId);
    }
    let scid = r.bytes(scid_len).ok_or(QuicError::Truncated)?;
    let ty = LongType::from(first);
    if ty == LongType::Retry {
        let p = LongPacket {
            ty,
            dcid,
            scid,
            packet: buf,
            pn_offset: 0,
        };
        return Ok((p, buf.len()));
    }
    if ty == LongType::Initial {
        let token_len = r.len().ok_or(QuicError::Truncated)?;
        r.bytes(token_len).ok_or(QuicError::Truncated)?;
    }
    let length = r.len().ok_or(QuicError::Truncated)?;
    let pn_offset = r.pos();
    let end = pn_offset.checked_add(length).ok_or(QuicError::Truncated)?;
    let packet = buf.get(..end).ok_or(QuicError::Truncated)?;
    let p = LongPacket {
        ty,
        dcid,
        scid,
        packet,
        pn_offset,
    };
    Ok((p, end))
}

/// One CRYPTO frame: where its bytes sit in the crypto stream, and the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CryptoFrame<'a> {
    /// Offset in the Initial crypto stream.
    pub offset: u64,
    /// The data.
    pub data: &'a [u8],
}

/// Walk the frames of a decrypted Initial payload and hand each CRYPTO frame to `each`.
///
/// Only the frames RFC 9000 section 17.2.2 allows in an Initial are read; any other frame type
/// (or one that runs past the payload) is [`QuicError::BadFrame`], as an endpoint would close
/// the connection on it.
pub fn crypto_frames<'a>(
    payload: &'a [u8],
    mut each: impl FnMut(CryptoFrame<'a>) -> Result<(), QuicError>,
) -> Result<(), QuicError> {
    let mut r = Reader::new(payload);
    let bad = QuicError::BadFrame;
    while !r.is_empty() {
        // Frame types use their shortest encoding (RFC 9000 section 12.4): every type allowed
        // here is one byte.
        match r.u8().ok_or(bad)? {
            0x00 | 0x01 => {} // PADDING, PING
            ty @ (0x02 | 0x03) => {
                // ACK: largest, delay, range count, first range, then the ranges.
                r.varint().ok_or(bad)?;
                r.varint().ok_or(bad)?;
                let ranges = r.varint().ok_or(bad)?;
                r.varint().ok_or(bad)?;
                // Each range is two varints (two bytes at least): a count beyond what is left
                // cannot be honest, and the loop stays bounded by the payload.
                let left = u64::try_from(payload.len().saturating_sub(r.pos())).unwrap_or(0);
                if ranges > left / 2 {
                    return Err(bad);
                }
                for _ in 0..ranges {
                    r.varint().ok_or(bad)?;
                    r.varint().ok_or(bad)?;
                }
                if ty == 0x03 {
                    for _ in 0..3 {
                        r.varint().ok_or(bad)?; // ECN counts
                    }
                }
            }
            0x06 => {
                let offset = r.varint().ok_or(bad)?;
                let len = r.len().ok_or(bad)?;
                let data = r.bytes(len).ok_or(bad)?;
                each(CryptoFrame { offset, data })?;
            }
            0x1c => {
                // CONNECTION_CLOSE (transport): error code, frame type, reason.
                r.varint().ok_or(bad)?;
                r.varint().ok_or(bad)?;
                let len = r.len().ok_or(bad)?;
                r.bytes(len).ok_or(bad)?;
            }
            _ => return Err(bad),
        }
    }
    Ok(())
}

/// The full packet number from its truncated form (RFC 9000 appendix A.3), given the largest
/// packet number decrypted before in this packet number space (`None`: none yet).
pub fn decode_packet_number(largest: Option<u64>, truncated: u64, pn_bits: u32) -> u64 {
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let win = 1u64 << pn_bits;
    let hwin = win / 2;
    let mask = win - 1;
    let candidate = (expected & !mask) | truncated;
    if candidate.saturating_add(hwin) <= expected && candidate < (1u64 << 62).saturating_sub(win) {
        candidate.saturating_add(win)
    } else if candidate > expected.saturating_add(hwin) && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // RFC 9000 appendix A.1's examples.
    #[test]
    fn varints() {
        assert_eq!(
            varint(&[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c]),
            Some((151_288_809_941_952_652, 8))
        );
        assert_eq!(varint(&[0x9d, 0x7f, 0x3e, 0x7d]), Some((494_878_333, 4)));
        assert_eq!(varint(&[0x7b, 0xbd]), Some((15_293, 2)));
        assert_eq!(varint(&[0x25]), Some((37, 1)));
        assert_eq!(varint(&[0x40, 0x25]), Some((37, 2)));
        assert_eq!(varint(&[0x40]), None);
        assert_eq!(varint(&[]), None);
    }

    // RFC 9000 appendix A.3's example.
    #[test]
    fn packet_numbers() {
        assert_eq!(
            decode_packet_number(Some(0xa82f30ea), 0x9b32, 16),
            0xa82f9b32
        );
        assert_eq!(decode_packet_number(None, 2, 8), 2);
        assert_eq!(decode_packet_number(Some(255), 1, 8), 257);
    }

    #[test]
    fn headers() {
        // Version negotiation, another version, a short header, zero padding.
        assert_eq!(
            long_packet(b"\x80\x00\x00\x00\x00\x00\x00"),
            Err(QuicError::VersionNegotiation)
        );
        assert_eq!(
            long_packet(b"\xc0\xff\x00\x00\x1d\x00\x00"),
            Err(QuicError::UnsupportedVersion(0xff00_001d))
        );
        assert_eq!(long_packet(b"\x40\x01"), Err(QuicError::NotLongHeader));
        assert_eq!(long_packet(b"\x00\x00"), Err(QuicError::NotLongHeader));
        assert_eq!(long_packet(b""), Err(QuicError::Truncated));
        // Connection id of 21 bytes.
        assert_eq!(
            long_packet(b"\xc0\x00\x00\x00\x01\x15"),
            Err(QuicError::BadConnectionId)
        );
        // Fixed bit clear.
        assert_eq!(
            long_packet(b"\x80\x00\x00\x00\x01\x00\x00\x00\x01\x00"),
            Err(QuicError::FixedBitClear)
        );
        // Length past the end.
        assert_eq!(
            long_packet(b"\xc0\x00\x00\x00\x01\x00\x00\x00\x05\x00"),
            Err(QuicError::Truncated)
        );
        // A Handshake packet of 2 bytes then something else.
        let (p, used) = long_packet(b"\xe0\x00\x00\x00\x01\x01\xaa\x00\x02\x01\x02\xff").unwrap();
        assert_eq!(p.ty, LongType::Handshake);
        assert_eq!(p.dcid, b"\xaa");
        assert_eq!(p.pn_offset, 9);
        assert_eq!(used, 11);
    }

    #[test]
    fn frames() {
        // PADDING, PING, ACK (one extra range), CRYPTO, ACK_ECN, CONNECTION_CLOSE, CRYPTO.
        let payload =
            b"\x00\x01\x02\x05\x00\x01\x00\x01\x01\x06\x00\x02hi\x03\x05\x00\x00\x00\x01\x02\x03\
\x1c\x0a\x00\x01x\x06\x02\x01!";
        let mut got = Vec::new();
        crypto_frames(payload, |f| {
            got.push((f.offset, f.data.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(got, vec![(0, b"hi".to_vec()), (2, b"!".to_vec())]);
        // STREAM frames are not allowed in an Initial; a CRYPTO frame past the end; an ACK
        // announcing more ranges than bytes.
        let none = |_| Ok(());
        assert_eq!(crypto_frames(b"\x08\x00", none), Err(QuicError::BadFrame));
        assert_eq!(
            crypto_frames(b"\x06\x00\x05ab", none),
            Err(QuicError::BadFrame)
        );
        assert_eq!(
            crypto_frames(b"\x02\x00\x00\x3f\x00\x00", none),
            Err(QuicError::BadFrame)
        );
    }

    proptest! {
        #[test]
        fn varint_round_trip(v in 0u64..(1 << 62)) {
            let wire = match v {
                0..=63 => vec![u8::try_from(v).unwrap()],
                64..=16_383 => (u16::try_from(v).unwrap() | 0x4000).to_be_bytes().to_vec(),
                16_384..=1_073_741_823 => {
                    (u32::try_from(v).unwrap() | 0x8000_0000).to_be_bytes().to_vec()
                }
                _ => (v | 0xc000_0000_0000_0000).to_be_bytes().to_vec(),
            };
            prop_assert_eq!(varint(&wire), Some((v, wire.len())));
        }

        #[test]
        fn packet_number_recovered(largest in 0u64..(1 << 40), ahead in 1u64..100, bits in prop_oneof![Just(8u32), Just(16), Just(24), Just(32)]) {
            let pn = largest + ahead;
            let truncated = pn & ((1u64 << bits) - 1);
            prop_assert_eq!(decode_packet_number(Some(largest), truncated, bits), pn);
        }

        #[test]
        fn parsers_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = long_packet(&buf);
            let _ = crypto_frames(&buf, |_| Ok(()));
        }
    }
}
