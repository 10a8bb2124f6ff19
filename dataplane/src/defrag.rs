//! Interim defragmenter API (replaced by the real one on merge).
#![allow(missing_docs, clippy::all)]
use crate::decode::{Fragment, Ip};
use crate::time::Timestamp;
#[derive(Clone, Copy, Debug, Default)]
pub struct DefragConfig { pub max_bytes: usize, pub max_datagrams: usize, pub max_fragments_per_datagram: usize, pub timeout_us: u64 }
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefragAnomaly { Overlap, Oversize, TooManyFragments, MemoryCap }
#[derive(Debug, Default)]
pub struct DefragOutput { pub datagram: Option<Vec<u8>>, pub anomaly: Option<DefragAnomaly> }
#[derive(Debug, Default)]
pub struct Defragmenter;
impl Defragmenter {
    pub fn new(_cfg: DefragConfig) -> Self { Defragmenter }
    pub fn insert(&mut self, _now: Timestamp, _scope: vlan::VlanScope, _ip: &Ip<'_>, _frag: &Fragment<'_>) -> DefragOutput { DefragOutput::default() }
}
