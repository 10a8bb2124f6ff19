//! svm's rule engine: the Suricata rule language ([`rules`]), the activity scanner that runs it
//! over packets and flows ([`scanner`]), TCP stream reassembly ([`stream`]) and the app-layer
//! parsers whose buffers rules match ([`app`]: HTTP, TLS, DNS, QUIC; [`webscan::hello`], the
//! TLS ClientHello reader QUIC shares with the web address scan).
//!
//! It needs from the rest of the dataplane only the packet types of `svm-packet` (decode, time,
//! the flow facts), re-exported here under the paths the modules had inside `dataplane`
//! (`crate::decode`, `crate::time`, `crate::flow`); `dataplane` re-exports these modules in turn,
//! so `dataplane::rules::...` still names them.

#![forbid(unsafe_code)]

pub use svm_packet::{decode, flow, time};

pub mod app;
pub mod rules;
pub mod scanner;
pub mod stream;

/// The web address scan's readers that the rule engine shares (the rest of the web address
/// scan stays in `dataplane::webscan`).
pub mod webscan {
    pub mod hello;
}
