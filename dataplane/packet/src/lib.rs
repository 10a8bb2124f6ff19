//! svm's packet types, shared by the dataplane and the rule engine ([`svm-detect`]): frame decode
//! ([`decode`]), packet time ([`time`]), the flow table ([`flow`], which knows flows, not the
//! engines that inspect them) and the receiving hosts' TCP behaviour it and reassembly follow
//! ([`host_os`]: overlap policies and timestamp validation by `host-os-policy`).
//!
//! The modules keep the paths they had inside `dataplane` (`crate::decode`, `crate::time`,
//! `crate::flow`), and `dataplane` re-exports them, so `dataplane::decode::...` still names them.
//!
//! [`svm-detect`]: ../svm_detect/index.html

// `unsafe` is denied here and allowed only in the prefetch hint's two wrappers (`io::prefetch`,
// each block with a `SAFETY:` note): the flow table prefetches a flood's cache misses.
#![deny(unsafe_code)]

pub mod decode;
pub mod flow;
pub mod host_os;
/// Hints to the memory system (the only `unsafe` of this crate).
pub mod io {
    pub mod prefetch;
}
pub mod time;
