//! The header readers of the rule engine and the flow table: any bytes as IPv4 options
//! (`ipopts`), as an ICMPv4 message (`icmpv4.hdr`'s length) and as a TCP header whose
//! timestamp option PAWS reads. Flags stay within the known options; the ICMPv4 header is
//! 8 bytes, or longer only when the message holds the longer header; a timestamp found is a
//! well-formed option of the header.
#![no_main]

use dataplane::decode::tcp_timestamps;
use dataplane::rules::packet::{icmpv4_header_len, ipv4_option_flags};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let flags = ipv4_option_flags(data);
    assert_eq!(flags >> 12, 0, "unknown flag bits {flags:#x}");
    let hl = icmpv4_header_len(data);
    assert!(hl == 8 || hl <= data.len(), "header {hl} of {} bytes", data.len());
    if let Some((val, ecr)) = tcp_timestamps(data) {
        let mut want = [8u8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
        want[2..6].copy_from_slice(&val.to_be_bytes());
        want[6..].copy_from_slice(&ecr.to_be_bytes());
        let opts = data.get(20..).unwrap_or_default();
        assert!(opts.windows(10).any(|w| w == want), "timestamp not in the header");
    }
});
