//! Placeholder signatures; the real decoder replaces this file.
use super::{DecodeEvent, Decoded, Ip};

/// Cap on IPv6 extension headers walked before the transport header.
pub const MAX_IPV6_EXT_HEADERS: usize = 8;

/// Decoder settings.
#[derive(Clone, Copy, Debug, Default)]
pub struct DecodeOptions {
    /// Validate IPv4/TCP/UDP/ICMP checksums (`-k all`); a bad one is an anomaly, not an error.
    pub verify_checksums: bool,
}

/// Decode one Ethernet frame.
pub fn decode_frame(_frame: &[u8], _opts: DecodeOptions) -> Result<Decoded<'_>, DecodeEvent> {
    Err(DecodeEvent::EthTruncated)
}

/// Decode a whole IP packet (v4 or v6 by its version nibble), e.g. a reassembled datagram.
pub fn decode_ip(_packet: &[u8], _opts: DecodeOptions) -> Result<(Ip<'_>, super::Anomalies), DecodeEvent> {
    Err(DecodeEvent::Ipv4Truncated)
}
