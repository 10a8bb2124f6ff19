//! The svm dataplane: decode, defragmentation, flows, detection engines, actions and verdicts.
//!
//! Nothing here knows HTTP, TLS, tokio or clap; time is handed in with each packet
//! ([`time::Timestamp`]), so replay is deterministic and live capture uses the wall clock.

pub mod decode;
pub mod defrag;
pub mod time;
pub mod attack;
pub mod blocks;
pub mod flow;
pub mod event;
pub mod reset;
pub mod worker;
pub mod io;
