//! Web address lists: malicious and phishing domains, hosts, URL prefixes and IP hosts, read
//! from list files ([`list`]), canonicalised as Google Safe Browsing does ([`canon`]), compiled
//! into one immutable set shared by every worker ([`AddressSet`]), and looked up for what traffic
//! shows: an HTTP request's host and target, a TLS or QUIC server name, a DNS query name.
//!
//! No dependency on the dataplane or the daemon: the dataplane's workers take an
//! `Arc<AddressSet>`; `svm urls` is the command-line face. See docs/web-addresses.md.

#![forbid(unsafe_code)]

pub mod cache;
pub mod canon;
pub mod list;
pub mod set;
pub mod suffix;
pub mod synth;

pub use cache::LookupCache;
pub use canon::{CanonUrl, canonical_host, canonicalize};
pub use list::{
    Entry, EntryKind, Format, LineError, LineErrorKind, LoadedList, ParsedList, load_file,
    parse_list,
};
pub use set::{
    AddressSet, AddressSetBuilder, Category, CompileError, ListInfo, Match, Verdict, key_of,
    name_key,
};
