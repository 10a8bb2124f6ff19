//! The header readers of the rule engine: any bytes as IPv4 options (`ipopts`) and as an ICMPv4
//! message (`icmpv4.hdr`'s length). Flags stay within the known options; the ICMPv4 header is
//! 8 bytes, or longer only when the message holds the longer header.
#![no_main]

use dataplane::rules::packet::{icmpv4_header_len, ipv4_option_flags};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let flags = ipv4_option_flags(data);
    assert_eq!(flags >> 12, 0, "unknown flag bits {flags:#x}");
    let hl = icmpv4_header_len(data);
    assert!(hl == 8 || hl <= data.len(), "header {hl} of {} bytes", data.len());
});
