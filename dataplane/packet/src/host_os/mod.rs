//! The receiving hosts' TCP behaviour (Suricata's `host-os-policy`): which operating system a
//! destination runs ([`os_policy`]) and how it validates TCP timestamps ([`timestamps`]). Here
//! beside the flow table, which validates timestamps before its state machine; the rule engine's
//! reassembly applies the overlap policies and re-exports both as `svm_detect::stream::*`.

pub mod os_policy;
pub mod timestamps;

pub use os_policy::{HostOsPolicy, OsPolicy};
pub use timestamps::{Paws, TsSegment};
