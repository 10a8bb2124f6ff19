//! Deterministic test traffic for the SVM: frame builders ([`Link`]), upper-layer payload helpers,
//! benign TCP conversations ([`tcp_session`], [`http_get`]), the fixed addressing [`plan`] and one
//! capture per detector ([`scenarios`]), plus the `make run` demo ([`scenarios::demo`]).
//!
//! # Contract
//! * Same inputs, same bytes: nothing here reads a clock, the environment or an OS random source.
//!   "Random-looking" values come from a seeded [`rng::SplitMix64`].
//! * Every frame carries correct IPv4 header, TCP, UDP, ICMP and ICMPv6 checksums unless a
//!   scenario documents otherwise (fragments of `ping_of_death` and `teardrop` carry a correct IP
//!   header checksum but their upper-layer checksum cannot be verified: they never reassemble).
//! * Frames are not padded to the 60-byte Ethernet minimum: they look like a capture taken on the
//!   sending host. Parsers must use the IP total length, not the frame length.
//! * Builders never panic. Where a caller asks for something the wire cannot carry (a payload
//!   longer than a 16-bit length field), the length field saturates and the frame is malformed;
//!   that is the caller's choice in test tooling and is documented on each builder.

#![forbid(unsafe_code)]

mod capture;
pub mod isolation;
mod link;
mod payload;
pub mod plan;
pub mod rng;
pub mod scenarios;
mod session;
pub mod tunnel;
pub mod web;

pub use capture::{Capture, Frame};
pub use link::{Host, Link, ip_packet, tcp_flags};
pub use payload::{
    dns_a_query, dns_a_response, icmp_echo_message, icmp_echo_reply_message, icmpv6_echo_message,
    icmpv6_echo_reply_message, tcp_segment, udp_datagram,
};
pub use session::{HTTP_BODY, host_header, http_get, http_request, http_response, tcp_session};
