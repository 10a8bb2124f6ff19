//! The svm dataplane: decode, defragmentation, flows, detection engines, actions and verdicts.
//!
//! Nothing here knows HTTP, TLS, tokio or clap; time is handed in with each packet
//! ([`time::Timestamp`]), so replay is deterministic and live capture uses the wall clock.

// `unsafe` is denied here and allowed only inside the live I/O backends (AF_PACKET, DPDK) and
// the prefetch hint's two wrappers (`svm_packet::io::prefetch`, re-exported as `io::prefetch`), each block with a `SAFETY:` note
// (workspace lint `undocumented_unsafe_blocks`).
#![deny(unsafe_code)]

// The packet types and the rule engine are crates of their own (`svm-packet`, `svm-detect`);
// their modules keep their `dataplane::` paths here.
pub use svm_detect::{app, rules, scanner, stream};
pub use svm_packet::{decode, flow, time};

pub mod attack;
pub mod blockpage;
pub mod blocks;
pub mod defrag;
pub mod driver;
pub mod event;
pub mod io;
pub mod isolation;
pub mod keeper;
pub mod output;
pub mod protection;
pub mod reset;
pub mod settings;
pub mod shared_blocks;
pub mod webscan;
pub mod worker;
