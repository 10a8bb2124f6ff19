//! What a block is: sources blocked in one VLAN scope until an expiry computed when the block is
//! made (changing the policy's duration later does not move existing expiries). The one table
//! that holds them, and the only one, is [`crate::shared_blocks`]: its lookups compare the
//! expiry with the packet's time, so a block ends on time even before its keeper reports the
//! expiry.

use core::net::IpAddr;

use vlan::VlanScope;

use crate::time::Timestamp;

/// Key of a block: the VLAN scope and the blocked address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct BlockKey {
    /// VLAN scope the block applies to.
    pub scope: VlanScope,
    /// Blocked source address.
    pub addr: IpAddr,
}

/// Who made a block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BlockOrigin {
    /// A detection engine (the reason names the detection).
    Detection,
    /// An administrator (API or CLI).
    Manual,
}

/// One blocked source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    /// When the block was made.
    pub created: Timestamp,
    /// When it ends; fixed at creation.
    pub expires: Timestamp,
    /// Why: the detection name (e.g. `Scan.Generic.TCP`) or the admin's note.
    pub reason: String,
    /// The engine that made it (`attack_blocker`, `activity_scanner`, `manual`).
    pub engine: &'static str,
    /// Detection or manual.
    pub origin: BlockOrigin,
    /// First packet dropped because of the block (none yet: equals `created`).
    pub first_hit: Option<Timestamp>,
    /// Last packet dropped because of the block.
    pub last_hit: Option<Timestamp>,
    /// Packets dropped because of the block.
    pub hits: u64,
}

/// Outcome of a block request ([`crate::shared_blocks::BlockClient::block`], a manual block).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BlockResult {
    /// A new block was made.
    Added,
    /// The address was already blocked in that scope; nothing changed.
    AlreadyBlocked,
    /// The table is full of blocks that may not be evicted (or, for a worker, the keeper is
    /// too far behind); the block was not made.
    Full,
}

/// Default cap on blocked sources: enough for a flood of scanners, bounded in memory (about
/// 150 bytes an entry).
pub const DEFAULT_BLOCK_CAPACITY: usize = 1 << 20;
