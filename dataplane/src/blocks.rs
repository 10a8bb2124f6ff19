//! The block table: sources blocked in one VLAN scope until an expiry computed when the block is
//! made (changing the policy's duration later does not move existing expiries).
//!
//! Lookups are exact: [`BlockTable::is_blocked`] compares the expiry with the packet's time, so a
//! block ends on time even before the sweep that reports its expiry has run. Expired entries leave
//! through [`BlockTable::expire`], which returns them so the caller can report each one.

use core::cmp::Reverse;
use core::net::IpAddr;
use std::collections::BinaryHeap;

use hashbrown::HashMap;
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

/// Outcome of [`BlockTable::block`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BlockResult {
    /// A new block was made.
    Added,
    /// The address was already blocked in that scope; nothing changed.
    AlreadyBlocked,
    /// The table is full ([`BlockTable::capacity`]); the block was not made.
    Full,
}

/// The block table. Entries are owned here; iteration order is unspecified.
#[derive(Debug)]
pub struct BlockTable {
    entries: HashMap<BlockKey, BlockEntry, foldhash::fast::FixedState>,
    // Min-heap of (expiry, key). Entries are never updated in place (expiry is fixed), but a key
    // can be unblocked and blocked again, so a popped item is checked against the live entry.
    expiries: BinaryHeap<Reverse<(Timestamp, BlockKey)>>,
    capacity: usize,
}

/// Default cap on blocked sources: enough for a flood of scanners, bounded in memory (about
/// 150 bytes an entry).
pub const DEFAULT_BLOCK_CAPACITY: usize = 1 << 20;

impl Default for BlockTable {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_BLOCK_CAPACITY)
    }
}

impl BlockTable {
    /// An empty table holding at most `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        BlockTable {
            entries: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x0062_6c6b)),
            expiries: BinaryHeap::new(),
            capacity,
        }
    }

    /// Maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of entries (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Block `key` from `now` for `duration_secs`.
    pub fn block(
        &mut self,
        key: BlockKey,
        now: Timestamp,
        duration_secs: u64,
        reason: &str,
        engine: &'static str,
        origin: BlockOrigin,
    ) -> BlockResult {
        if let Some(e) = self.entries.get(&key) {
            if e.expires > now {
                return BlockResult::AlreadyBlocked;
            }
        } else if self.entries.len() >= self.capacity {
            return BlockResult::Full;
        }
        let expires = now.plus_secs(duration_secs);
        self.entries.insert(
            key,
            BlockEntry {
                created: now,
                expires,
                reason: reason.to_owned(),
                engine,
                origin,
                first_hit: None,
                last_hit: None,
                hits: 0,
            },
        );
        self.expiries.push(Reverse((expires, key)));
        BlockResult::Added
    }

    /// Whether `addr` is blocked in `scope` at `now`; counts a hit when it is.
    #[inline]
    pub fn check_and_hit(&mut self, scope: VlanScope, addr: IpAddr, now: Timestamp) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        match self.entries.get_mut(&BlockKey { scope, addr }) {
            Some(e) if e.expires > now => {
                e.hits += 1;
                e.first_hit.get_or_insert(now);
                e.last_hit = Some(now);
                true
            }
            _ => false,
        }
    }

    /// Whether `addr` is blocked in `scope` at `now`, without counting.
    pub fn is_blocked(&self, scope: VlanScope, addr: IpAddr, now: Timestamp) -> bool {
        self.entries
            .get(&BlockKey { scope, addr })
            .is_some_and(|e| e.expires > now)
    }

    /// The entry for a key, if present (it may have expired but not been swept yet).
    pub fn get(&self, key: &BlockKey) -> Option<&BlockEntry> {
        self.entries.get(key)
    }

    /// Remove a block (manual unblock). Returns the entry if there was one.
    pub fn unblock(&mut self, key: &BlockKey) -> Option<BlockEntry> {
        self.entries.remove(key)
    }

    /// When the next entry expires, if any.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.expiries.peek().map(|Reverse((t, _))| *t)
    }

    /// Remove every entry whose expiry is at or before `now`, in expiry order, handing each to
    /// `on_expired` (for the "unblocked: expired" event).
    pub fn expire(&mut self, now: Timestamp, mut on_expired: impl FnMut(BlockKey, BlockEntry)) {
        while let Some(Reverse((t, key))) = self.expiries.peek().copied() {
            if t > now {
                break;
            }
            self.expiries.pop();
            // The heap item is stale if the key was unblocked (and maybe blocked again later).
            if self.entries.get(&key).is_some_and(|e| e.expires == t)
                && let Some(e) = self.entries.remove(&key)
            {
                on_expired(key, e);
            }
        }
    }

    /// All entries, for listing.
    pub fn iter(&self) -> impl Iterator<Item = (&BlockKey, &BlockEntry)> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn key(scope: VlanScope, last: u8) -> BlockKey {
        BlockKey {
            scope,
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
        }
    }

    fn v(id: u16) -> VlanScope {
        VlanScope::single(vlan::VlanId::new(id).unwrap())
    }

    const S: u64 = Timestamp::SECOND;

    #[test]
    fn block_is_scoped_to_its_vlan() {
        let mut t = BlockTable::default();
        let k = key(v(100), 66);
        assert_eq!(
            t.block(
                k,
                Timestamp(0),
                60,
                "Scan.Generic.TCP",
                "attack_blocker",
                BlockOrigin::Detection
            ),
            BlockResult::Added
        );
        assert!(t.check_and_hit(v(100), k.addr, Timestamp(1)));
        assert!(!t.check_and_hit(v(200), k.addr, Timestamp(1)));
        assert!(!t.check_and_hit(VlanScope::UNTAGGED, k.addr, Timestamp(1)));
        assert_eq!(t.get(&k).unwrap().hits, 1);
    }

    #[test]
    fn expiry_is_exact_and_reported_once() {
        let mut t = BlockTable::default();
        let k = key(v(1), 1);
        t.block(k, Timestamp(10 * S), 60, "r", "manual", BlockOrigin::Manual);
        assert!(t.is_blocked(k.scope, k.addr, Timestamp(70 * S - 1)));
        assert!(!t.is_blocked(k.scope, k.addr, Timestamp(70 * S)));
        let mut out = vec![];
        t.expire(Timestamp(69 * S), |k, _| out.push(k));
        assert!(out.is_empty());
        t.expire(Timestamp(70 * S), |k, _| out.push(k));
        assert_eq!(out, vec![k]);
        t.expire(Timestamp(100 * S), |k, _| out.push(k));
        assert_eq!(out.len(), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn reblock_after_unblock_uses_new_expiry() {
        let mut t = BlockTable::default();
        let k = key(v(1), 1);
        t.block(k, Timestamp(0), 60, "a", "manual", BlockOrigin::Manual);
        assert!(t.unblock(&k).is_some());
        t.block(k, Timestamp(30 * S), 60, "b", "manual", BlockOrigin::Manual);
        let mut out = vec![];
        t.expire(Timestamp(60 * S), |k, _| out.push(k));
        assert!(
            out.is_empty(),
            "stale heap item must not expire the new block"
        );
        t.expire(Timestamp(90 * S), |k, _| out.push(k));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn existing_block_is_not_extended() {
        let mut t = BlockTable::default();
        let k = key(v(1), 1);
        t.block(k, Timestamp(0), 60, "a", "manual", BlockOrigin::Manual);
        assert_eq!(
            t.block(
                k,
                Timestamp(30 * S),
                600,
                "b",
                "manual",
                BlockOrigin::Manual
            ),
            BlockResult::AlreadyBlocked
        );
        assert_eq!(t.get(&k).unwrap().expires, Timestamp(60 * S));
    }

    #[test]
    fn capacity_is_enforced() {
        let mut t = BlockTable::with_capacity(2);
        assert_eq!(
            t.block(
                key(v(1), 1),
                Timestamp(0),
                60,
                "",
                "manual",
                BlockOrigin::Manual
            ),
            BlockResult::Added
        );
        assert_eq!(
            t.block(
                key(v(1), 2),
                Timestamp(0),
                60,
                "",
                "manual",
                BlockOrigin::Manual
            ),
            BlockResult::Added
        );
        assert_eq!(
            t.block(
                key(v(1), 3),
                Timestamp(0),
                60,
                "",
                "manual",
                BlockOrigin::Manual
            ),
            BlockResult::Full
        );
    }
}
