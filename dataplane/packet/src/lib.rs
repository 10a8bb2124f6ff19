//! svm's packet types, shared by the dataplane and the rule engine ([`svm-detect`]): frame decode
//! ([`decode`]), packet time ([`time`]) and the flow table ([`flow`], which knows flows, not the
//! engines that inspect them).
//!
//! The modules keep the paths they had inside `dataplane` (`crate::decode`, `crate::time`,
//! `crate::flow`), and `dataplane` re-exports them, so `dataplane::decode::...` still names them.
//!
//! [`svm-detect`]: ../svm_detect/index.html

#![forbid(unsafe_code)]

pub mod decode;
pub mod flow;
pub mod time;
