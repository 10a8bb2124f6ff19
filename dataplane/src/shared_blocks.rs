//! The block table: the one authority on which sources are blocked, for every worker, for
//! replay and for the control plane.
//!
//! A block made by one worker must drop the attacker's next frame on every worker, and an
//! administrator must be able to list, add and remove blocks, without the per-packet path ever
//! waiting for a lock that the control side holds.
//!
//! The table is an instance of the one keeper ([`crate::keeper`]): one writer, published
//! snapshots, one shared list of fresh blocks, a bounded command channel.
//! - The [`BlockKeeper`] owns the table. It is the only author of block events ("added",
//!   "removed": expired, manual or evicted): the daemon runs it on its own thread
//!   ([`Keeper::run`], the daemon's clock), replay drives it between frames with the packet time
//!   ([`Keeper::drain`], [`Keeper::expire`], [`Keeper::publish`]).
//! - A worker that detects an attacker appends the block to the shared fresh list
//!   ([`BlockClient::block`]) before it returns its verdict, and bumps the shared version. Every
//!   worker loads that version (one atomic load) before it checks a frame and, when it moved,
//!   copies the new fresh blocks into a local index and takes the newest snapshot. So no worker
//!   forwards a frame of the source once the detecting worker's verdict is out: there is no
//!   window of one keeper tick.
//! - An entry is one `Arc` from the moment a worker makes it: the fresh list, the table and every
//!   snapshot share it, so hits counted by any worker at any time (atomics) are the entry's
//!   hits, and a manual unblock or an expiry reports them all.
//! - When the table is full, a detection block evicts the detection block closest to expiry
//!   (reported as removed, reason `evicted`); a manual block is never evicted, and a manual
//!   block is refused ([`BlockResult::Full`]: the API answers 503), as is a manual block that
//!   finds the command channel full. Refusals and evictions are counted ([`KeeperStats`],
//!   [`BlockControl::refused`]).
//! - Every table hashes with a per-process random seed (foldhash's `RandomState`), so an
//!   attacker cannot precompute colliding addresses.
//!
//! Cost: a publication clones the key -> `Arc` map, O(blocks); the keeper publishes once per
//! batch, so a flood of new blocks costs one clone per batch.

use core::cmp::Reverse;
use core::net::IpAddr;
use std::borrow::Cow;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;

use hashbrown::HashMap;
use vlan::VlanScope;

use crate::blocks::{BlockEntry, BlockKey, BlockOrigin, BlockResult, DEFAULT_BLOCK_CAPACITY};
use crate::event::{BlockChange, Engine, Event, EventKind, UnblockReason};
pub use crate::keeper::{BATCH, COMMAND_QUEUE, Refused};
use crate::keeper::{Book, Control, Fresh, Keeper, Reader, Table};
use crate::time::Timestamp;

/// Hasher of every block map: seeded at random per process (and per map).
pub type Hasher = foldhash::fast::RandomState;

/// One block: fixed when made, plus hit counters shared by all workers.
#[derive(Debug)]
pub struct SharedEntry {
    created: Timestamp,
    expires: Timestamp,
    reason: String,
    engine: &'static str,
    origin: BlockOrigin,
    hits: AtomicU64,
    // Microseconds since the epoch; 0 = no hit yet.
    first_hit: AtomicU64,
    last_hit: AtomicU64,
}

impl SharedEntry {
    fn new(
        created: Timestamp,
        expires: Timestamp,
        reason: String,
        engine: &'static str,
        origin: BlockOrigin,
    ) -> SharedEntry {
        SharedEntry {
            created,
            expires,
            reason,
            engine,
            origin,
            hits: AtomicU64::new(0),
            first_hit: AtomicU64::new(0),
            last_hit: AtomicU64::new(0),
        }
    }

    /// When the block ends.
    pub fn expires(&self) -> Timestamp {
        self.expires
    }

    /// Packets dropped because of it so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Count `n` hits at `now`. One read-modify-write per hit (a flood of a blocked source is
    /// all hits): the times are plain loads and stores, at worst a race between two workers
    /// keeps the earlier of two near-equal times.
    fn hit(&self, now: Timestamp, n: u64) {
        self.hits.fetch_add(n, Ordering::Relaxed);
        let t = now.micros();
        if self.first_hit.load(Ordering::Relaxed) == 0 {
            let _ = self
                .first_hit
                .compare_exchange(0, t, Ordering::Relaxed, Ordering::Relaxed);
        }
        if self.last_hit.load(Ordering::Relaxed) < t {
            self.last_hit.store(t, Ordering::Relaxed);
        }
    }

    /// A copy as a plain [`BlockEntry`] (hit counters read now).
    pub fn to_entry(&self) -> BlockEntry {
        let ts = |v: u64| (v != 0).then_some(Timestamp(v));
        BlockEntry {
            created: self.created,
            expires: self.expires,
            reason: self.reason.clone(),
            engine: self.engine,
            origin: self.origin,
            first_hit: ts(self.first_hit.load(Ordering::Relaxed)),
            last_hit: ts(self.last_hit.load(Ordering::Relaxed)),
            hits: self.hits.load(Ordering::Relaxed),
        }
    }
}

/// An immutable view of the block table at one generation.
#[derive(Debug, Default)]
pub struct BlockSnapshot {
    generation: u64,
    entries: HashMap<BlockKey, Arc<SharedEntry>, Hasher>,
}

impl BlockSnapshot {
    /// Generation (0 = the empty table before the first publication).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Number of entries (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for a key if it is blocked at `now`.
    pub fn get(&self, key: &BlockKey, now: Timestamp) -> Option<&SharedEntry> {
        self.entries
            .get(key)
            .map(|e| &**e)
            .filter(|e| e.expires > now)
    }

    /// Every entry, copied, sorted by key.
    pub fn list(&self) -> Vec<(BlockKey, BlockEntry)> {
        let mut v: Vec<_> = self
            .entries
            .iter()
            .map(|(k, e)| (*k, e.to_entry()))
            .collect();
        v.sort_by_key(|e| e.0);
        v
    }
}

/// A block a worker made; the keeper emits the "block added" event from it.
#[derive(Clone, Debug)]
pub struct BlockRequest {
    /// What to block.
    pub key: BlockKey,
    /// When (the packet's time).
    pub now: Timestamp,
    /// For how long.
    pub duration_secs: u64,
    /// The detection name (the attack, or the rule's `msg`).
    pub reason: Cow<'static, str>,
    /// The engine.
    pub engine: Engine,
    /// The detection's signature id.
    pub sid: Option<u32>,
    /// The flow of the detecting packet.
    pub flow_id: Option<u64>,
    /// The detecting packet's receive counter.
    pub pcap_cnt: Option<u64>,
}

/// A block in the fresh list: the request and the entry every worker counts its hits in.
#[derive(Clone, Debug)]
pub struct FreshBlock {
    req: BlockRequest,
    entry: Arc<SharedEntry>,
}

/// What the block table shares beside the keeper's own state.
#[derive(Debug, Default)]
pub struct BlockShared {
    // Blocks refused because the table was full (for /metrics, read while the keeper runs).
    refused: AtomicU64,
}

/// Messages to the keeper, besides its own wake-ups and expiry requests.
#[derive(Debug)]
pub enum Command {
    /// An administrator's block.
    Manual {
        /// What to block.
        key: BlockKey,
        /// From when.
        now: Timestamp,
        /// For how long.
        duration_secs: u64,
        /// The admin's note.
        reason: String,
        /// Where to send the outcome.
        reply: Option<Sender<BlockResult>>,
    },
    /// A block kept in the store, back at start with its own creation, expiry and origin; no
    /// event (it was reported when it was made).
    Restore {
        /// What is blocked.
        key: BlockKey,
        /// The stored entry.
        entry: BlockEntry,
    },
    /// An administrator's unblock.
    Unblock {
        /// What to unblock.
        key: BlockKey,
        /// When.
        now: Timestamp,
        /// Where to send the removed entry (with every worker's hits).
        reply: Option<Sender<Option<BlockEntry>>>,
    },
}

/// Counters of the keeper.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeeperStats {
    /// Blocks made (workers and admins).
    pub added: u64,
    /// Worker blocks for a source already blocked (two workers in the same instant).
    pub duplicates: u64,
    /// Blocks refused because the table was full of blocks that may not be evicted.
    pub refused: u64,
    /// Detection blocks evicted (closest to expiry first) to make room.
    pub evicted: u64,
    /// Blocks expired.
    pub expired: u64,
    /// Blocks lifted by an administrator.
    pub unblocked: u64,
}

/// The block table the keeper owns.
#[derive(Debug)]
pub struct BlockTable {
    entries: HashMap<BlockKey, Arc<SharedEntry>, Hasher>,
    // Min-heaps of (expiry, key): every entry, and detection entries only (the eviction
    // order). Expiries are fixed, but a key can be lifted and blocked again, so a popped item
    // is checked against the live entry.
    expiries: BinaryHeap<Reverse<(Timestamp, BlockKey)>>,
    detections: BinaryHeap<Reverse<(Timestamp, BlockKey)>>,
    capacity: usize,
    stats: KeeperStats,
}

/// The single writer of the block table.
pub type BlockKeeper = Keeper<BlockTable>;

/// The control plane's handle: list from the published snapshot, send changes to the keeper.
pub type BlockControl = Control<BlockTable>;

/// Cap on fresh blocks waiting for the keeper: it takes them within one tick, so this is only
/// reached when it is stalled; further detections are then refused (counted).
pub const FRESH_CAP: usize = 1 << 16;

/// The handles of a new block table.
#[derive(Debug)]
pub struct SharedBlocks {
    /// The writer: [`Keeper::run`] on its own thread, or driven by replay.
    pub keeper: BlockKeeper,
    /// For the control plane (clone freely).
    pub control: BlockControl,
    /// One per worker, in worker-index order.
    pub clients: Vec<BlockClient>,
}

impl SharedBlocks {
    /// A table for `workers` workers holding at most `capacity` entries.
    pub fn new(workers: usize, capacity: usize) -> SharedBlocks {
        let table = BlockTable {
            entries: HashMap::with_hasher(Hasher::default()),
            expiries: BinaryHeap::new(),
            detections: BinaryHeap::new(),
            capacity,
            stats: KeeperStats::default(),
        };
        let (keeper, control, clients) = crate::keeper::new(table, workers, BlockClient::new);
        SharedBlocks {
            keeper,
            control,
            clients,
        }
    }

    /// With the default capacity.
    pub fn with_workers(workers: usize) -> SharedBlocks {
        Self::new(workers, DEFAULT_BLOCK_CAPACITY)
    }
}

impl Table for BlockTable {
    type Item = FreshBlock;
    type Snapshot = BlockSnapshot;
    type Command = Command;
    type Extra = BlockShared;
    type Stats = KeeperStats;
    const FRESH_CAP: usize = FRESH_CAP;

    /// A worker's block becomes a table entry (the same `Arc`, hits included) and a "block
    /// added" event.
    fn take(&mut self, b: &FreshBlock, book: &mut Book<Self>, on_event: &mut impl FnMut(Event)) {
        let FreshBlock { req, entry } = b;
        let expires = entry.expires;
        match self.insert(req.key, Arc::clone(entry), req.now, book, on_event) {
            BlockResult::Added => on_event(Event {
                ts: req.now,
                pcap_cnt: req.pcap_cnt,
                kind: EventKind::Block {
                    key: req.key,
                    change: BlockChange::Added {
                        engine: req.engine,
                        reason: req.reason.clone(),
                        sid: req.sid,
                        expires,
                        duration_secs: req.duration_secs,
                        flow_id: req.flow_id,
                    },
                },
            }),
            BlockResult::AlreadyBlocked => {
                self.stats.duplicates += 1;
                // Two workers blocked the source in the same instant: keep the hits of both.
                let hits = entry.hits();
                if hits > 0
                    && let Some(e) = self.entries.get(&req.key)
                {
                    e.hit(Timestamp(entry.last_hit.load(Ordering::Relaxed)), hits);
                }
            }
            BlockResult::Full => on_event(Event {
                ts: req.now,
                pcap_cnt: req.pcap_cnt,
                kind: EventKind::Block {
                    key: req.key,
                    change: BlockChange::Refused {
                        engine: req.engine,
                        reason: req.reason.clone(),
                        sid: req.sid,
                        duration_secs: req.duration_secs,
                    },
                },
            }),
        }
    }

    fn apply(&mut self, cmd: Command, book: &mut Book<Self>, on_event: &mut impl FnMut(Event)) {
        match cmd {
            Command::Manual {
                key,
                now,
                duration_secs,
                reason,
                reply,
            } => {
                let expires = now.plus_secs(duration_secs);
                let entry = Arc::new(SharedEntry::new(
                    now,
                    expires,
                    reason.clone(),
                    Engine::Manual.name(),
                    BlockOrigin::Manual,
                ));
                let res = self.insert(key, entry, now, book, on_event);
                let change = match res {
                    BlockResult::Added => Some(BlockChange::Added {
                        engine: Engine::Manual,
                        reason: reason.into(),
                        sid: None,
                        expires,
                        duration_secs,
                        flow_id: None,
                    }),
                    BlockResult::Full => Some(BlockChange::Refused {
                        engine: Engine::Manual,
                        reason: reason.into(),
                        sid: None,
                        duration_secs,
                    }),
                    BlockResult::AlreadyBlocked => None,
                };
                if let Some(change) = change {
                    on_event(Event {
                        ts: now,
                        pcap_cnt: None,
                        kind: EventKind::Block { key, change },
                    });
                }
                if let Some(r) = reply {
                    // Whoever asked lists the table next: publish first.
                    book.publish(self);
                    let _ = r.send(res);
                }
            }
            Command::Restore { key, entry } => {
                let shared = Arc::new(SharedEntry {
                    created: entry.created,
                    expires: entry.expires,
                    reason: entry.reason,
                    engine: entry.engine,
                    origin: entry.origin,
                    hits: AtomicU64::new(entry.hits),
                    first_hit: AtomicU64::new(entry.first_hit.map_or(0, Timestamp::micros)),
                    last_hit: AtomicU64::new(entry.last_hit.map_or(0, Timestamp::micros)),
                });
                // Not a new block: undo the count insert makes.
                if self.insert(key, shared, entry.created, book, on_event) == BlockResult::Added {
                    self.stats.added -= 1;
                }
            }
            Command::Unblock { key, now, reply } => {
                let removed_entry = self.entries.remove(&key);
                if let Some(e) = &removed_entry {
                    book.changed();
                    self.stats.unblocked += 1;
                    on_event(removed(key, e, now, UnblockReason::Manual));
                }
                if let Some(r) = reply {
                    book.publish(self);
                    let _ = r.send(removed_entry.map(|e| e.to_entry()));
                }
            }
        }
    }

    /// Remove and report every entry expired by `now`.
    fn expire(&mut self, now: Timestamp, book: &mut Book<Self>, on_event: &mut impl FnMut(Event)) {
        while let Some(Reverse((t, key))) = self.expiries.peek().copied() {
            if t > now {
                break;
            }
            self.expiries.pop();
            // The heap item is stale if the key was lifted (and maybe blocked again later).
            if self.entries.get(&key).is_some_and(|e| e.expires == t)
                && let Some(e) = self.entries.remove(&key)
            {
                book.changed();
                self.stats.expired += 1;
                on_event(removed(key, &e, t, UnblockReason::Expired));
            }
        }
        // Stale eviction-order items of expired blocks go with them.
        while self
            .detections
            .peek()
            .is_some_and(|Reverse((t, _))| *t <= now)
        {
            self.detections.pop();
        }
    }

    fn next_expiry(&self) -> Option<Timestamp> {
        self.expiries.peek().map(|Reverse((t, _))| *t)
    }

    fn snapshot(&self, generation: u64) -> BlockSnapshot {
        BlockSnapshot {
            generation,
            entries: self.entries.clone(),
        }
    }

    fn stats(&self) -> KeeperStats {
        self.stats
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

impl BlockTable {
    /// Put `entry` in the table unless `key` is blocked at `now`; when the table is full, a
    /// detection block takes the place of the detection block closest to expiry.
    fn insert(
        &mut self,
        key: BlockKey,
        entry: Arc<SharedEntry>,
        now: Timestamp,
        book: &mut Book<Self>,
        on_event: &mut impl FnMut(Event),
    ) -> BlockResult {
        if let Some(e) = self.entries.get(&key) {
            if e.expires > now {
                return BlockResult::AlreadyBlocked;
            }
            // Expired but not yet swept (the daemon sweeps on its tick): report it first.
            Table::expire(self, now, book, on_event);
        }
        if self.entries.len() >= self.capacity
            && (entry.origin == BlockOrigin::Manual || !self.evict_one(now, book, on_event))
        {
            self.stats.refused += 1;
            book.shared()
                .extra()
                .refused
                .fetch_add(1, Ordering::Relaxed);
            return BlockResult::Full;
        }
        self.expiries.push(Reverse((entry.expires, key)));
        if entry.origin == BlockOrigin::Detection {
            self.detections.push(Reverse((entry.expires, key)));
        }
        self.entries.insert(key, entry);
        book.changed();
        self.stats.added += 1;
        BlockResult::Added
    }

    /// Remove the detection block closest to expiry, reporting it; false if there is none.
    fn evict_one(
        &mut self,
        now: Timestamp,
        book: &mut Book<Self>,
        on_event: &mut impl FnMut(Event),
    ) -> bool {
        while let Some(Reverse((t, key))) = self.detections.pop() {
            if self
                .entries
                .get(&key)
                .is_some_and(|e| e.expires == t && e.origin == BlockOrigin::Detection)
                && let Some(e) = self.entries.remove(&key)
            {
                book.changed();
                self.stats.evicted += 1;
                on_event(removed(key, &e, now, UnblockReason::Evicted));
                return true;
            }
        }
        false
    }
}

/// The "block removed" event of an entry.
fn removed(key: BlockKey, e: &SharedEntry, ts: Timestamp, reason: UnblockReason) -> Event {
    Event {
        ts,
        pcap_cnt: None,
        kind: EventKind::Block {
            key,
            change: BlockChange::Removed {
                reason,
                hits: e.hits(),
                created: e.created,
            },
        },
    }
}

impl Control<BlockTable> {
    /// Every block, sorted by key.
    pub fn list(&self) -> Vec<(BlockKey, BlockEntry)> {
        self.snapshot().list()
    }

    /// Block `key` from `now` for `duration_secs` as an administrator and wait for the keeper's
    /// answer; `None` if the keeper is gone. A command channel full of commands refuses the
    /// block as a full table does ([`BlockResult::Full`], counted in [`Self::refused`]).
    pub fn block(
        &self,
        key: BlockKey,
        now: Timestamp,
        duration_secs: u64,
        reason: String,
    ) -> Option<BlockResult> {
        let r = self.ask(|reply| Command::Manual {
            key,
            now,
            duration_secs,
            reason,
            reply: Some(reply),
        });
        match r {
            Ok(r) => Some(r),
            Err(Refused::Full) => Some(BlockResult::Full),
            Err(Refused::Gone) => None,
        }
    }

    /// Blocks refused so far: the table was full of blocks that may not be evicted, or the
    /// command channel was full.
    pub fn refused(&self) -> u64 {
        self.shared().extra().refused.load(Ordering::Relaxed) + self.refused_commands()
    }

    /// Lift the block of `key` and wait for the keeper: the entry removed (with every worker's
    /// hits), `Some(None)` if there was none, `None` if the keeper is gone or its command
    /// channel full.
    pub fn unblock(&self, key: BlockKey, now: Timestamp) -> Option<Option<BlockEntry>> {
        self.ask(|reply| Command::Unblock {
            key,
            now,
            reply: Some(reply),
        })
        .ok()
    }
}

/// A worker's view of the table: the latest snapshot it has seen plus an index of the fresh
/// blocks (every worker's) not yet in it.
#[derive(Debug)]
pub struct BlockClient {
    reader: Reader<BlockTable>,
    snap: Arc<BlockSnapshot>,
    // The fresh list's base when last read, and the absolute index of the next block to read.
    fresh_base: u64,
    fresh_next: u64,
    local: HashMap<BlockKey, (u64, Arc<SharedEntry>), Hasher>,
    // Whether the snapshot or the fresh index holds anything: the per-packet fast path.
    any: bool,
    // The last source found blocked and its entry: a flood of one blocked source (every frame
    // a hit) costs a key comparison instead of a hash lookup. Forgotten when the table moves.
    last: Option<(BlockKey, Arc<SharedEntry>)>,
    refused: u64,
}

impl BlockClient {
    fn new(reader: Reader<BlockTable>) -> Self {
        BlockClient {
            snap: reader.snapshot(),
            reader,
            fresh_base: 0,
            fresh_next: 0,
            local: HashMap::with_hasher(Hasher::default()),
            any: false,
            last: None,
            refused: 0,
        }
    }

    /// Take what changed since the last look: one atomic load when nothing did.
    #[inline]
    pub fn refresh(&mut self) {
        if self.reader.moved() {
            self.reload();
        }
    }

    #[cold]
    #[inline(never)]
    fn reload(&mut self) {
        // Fresh list first, then the snapshot: the keeper publishes before it trims.
        let shared = Arc::clone(self.reader.shared());
        self.read_fresh(&shared.fresh());
        self.snap = shared.snapshot();
        self.any = !self.local.is_empty() || !self.snap.entries.is_empty();
        self.last = None;
    }

    fn read_fresh(&mut self, f: &Fresh<FreshBlock>) {
        if f.base() != self.fresh_base {
            // Blocks before the base are in a published snapshot (or were refused).
            self.fresh_base = f.base();
            let base = f.base();
            self.local.retain(|_, (i, _)| *i >= base);
        }
        for (i, b) in f.since(self.fresh_next) {
            self.local.insert(b.req.key, (i, Arc::clone(&b.entry)));
        }
        self.fresh_next = f.end();
    }

    #[inline]
    fn find(&self, key: &BlockKey, now: Timestamp) -> Option<&Arc<SharedEntry>> {
        // Fresh blocks are rare and short-lived: an empty index costs no hash.
        if !self.local.is_empty()
            && let Some((_, e)) = self.local.get(key)
            && e.expires > now
        {
            return Some(e);
        }
        self.snap.entries.get(key).filter(|e| e.expires > now)
    }

    /// Whether `addr` is blocked in `scope` at `now`; counts a hit when it is.
    #[inline]
    pub fn check_and_hit(&mut self, scope: VlanScope, addr: IpAddr, now: Timestamp) -> bool {
        self.refresh();
        if !self.any {
            return false;
        }
        let key = BlockKey { scope, addr };
        if let Some((k, e)) = &self.last
            && *k == key
            && e.expires > now
        {
            e.hit(now, 1);
            return true;
        }
        self.check_slow(key, now)
    }

    #[inline(never)]
    fn check_slow(&mut self, key: BlockKey, now: Timestamp) -> bool {
        match self.find(&key, now) {
            Some(e) => {
                e.hit(now, 1);
                self.last = Some((key, Arc::clone(e)));
                true
            }
            None => false,
        }
    }

    /// Block a source at once on every worker: the block joins the shared fresh list before
    /// this returns, and the keeper makes it a table entry and reports it. `Full` means the
    /// keeper is so far behind that the fresh list is at its cap.
    pub fn block(&mut self, req: BlockRequest) -> BlockResult {
        self.refresh();
        let key = req.key;
        if self.find(&key, req.now).is_some() {
            return BlockResult::AlreadyBlocked;
        }
        let shared = Arc::clone(self.reader.shared());
        let mut f = shared.fresh();
        // Another worker may have blocked it since this one last looked.
        self.read_fresh(&f);
        if self.find(&key, req.now).is_some() {
            return BlockResult::AlreadyBlocked;
        }
        let entry = Arc::new(SharedEntry::new(
            req.now,
            req.now.plus_secs(req.duration_secs),
            req.reason.to_string(),
            req.engine.name(),
            BlockOrigin::Detection,
        ));
        let item = FreshBlock {
            req,
            entry: Arc::clone(&entry),
        };
        let Some(idx) = shared.append(&mut f, item) else {
            self.refused += 1;
            return BlockResult::Full;
        };
        self.local.insert(key, (idx, entry));
        self.any = true;
        self.fresh_next = idx + 1;
        drop(f);
        // Only a hint: the keeper takes the list on its tick anyway.
        self.reader.wake();
        BlockResult::Added
    }

    /// Fresh blocks this worker knows of that are not yet in its snapshot.
    pub fn pending(&self) -> usize {
        self.local.len()
    }

    /// Blocks refused because the fresh list was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The snapshot this worker uses.
    pub fn snapshot(&self) -> &BlockSnapshot {
        &self.snap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    const S: u64 = Timestamp::SECOND;

    fn key(vid: u16, last: u8) -> BlockKey {
        BlockKey {
            scope: VlanScope::single(vlan::VlanId::new(vid).unwrap()),
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
        }
    }

    fn req(k: BlockKey, now: u64) -> BlockRequest {
        BlockRequest {
            key: k,
            now: Timestamp(now),
            duration_secs: 60,
            reason: Cow::Borrowed("Scan.Generic.TCP"),
            engine: Engine::AttackBlocker,
            sid: Some(1),
            flow_id: None,
            pcap_cnt: Some(7),
        }
    }

    /// An administrator's block of `k` from `now` for `secs`, not waited for.
    fn admin_block(control: &BlockControl, k: BlockKey, now: u64, secs: u64) {
        control
            .send(Command::Manual {
                key: k,
                now: Timestamp(now),
                duration_secs: secs,
                reason: "admin".into(),
                reply: None,
            })
            .unwrap();
    }

    fn step(keeper: &mut BlockKeeper, events: &mut Vec<Event>) {
        keeper.drain(&mut |e| events.push(e));
        keeper.publish();
    }

    #[test]
    fn a_block_reaches_every_worker_before_the_keeper_runs() {
        let SharedBlocks {
            mut keeper,
            control,
            mut clients,
        } = SharedBlocks::new(3, 16);
        let k = key(100, 66);
        assert_eq!(clients[0].block(req(k, 0)), BlockResult::Added);
        // No keeper step yet: every worker drops the source's next frame.
        for c in &mut clients {
            assert!(c.check_and_hit(k.scope, k.addr, Timestamp(1)));
            // Another VLAN is not blocked.
            assert!(!c.check_and_hit(key(200, 66).scope, k.addr, Timestamp(1)));
        }
        // The same source detected by another worker is already blocked: one block, one event.
        assert_eq!(clients[2].block(req(k, 2)), BlockResult::AlreadyBlocked);
        let mut events = vec![];
        step(&mut keeper, &mut events);
        assert_eq!(events.len(), 1, "one block-added event");
        assert!(matches!(
            &events[0].kind,
            EventKind::Block {
                change: BlockChange::Added { .. },
                ..
            }
        ));
        assert_eq!(events[0].pcap_cnt, Some(7));
        // The fresh list is trimmed once the snapshot holds the block; still blocked everywhere.
        for c in &mut clients {
            assert!(c.check_and_hit(k.scope, k.addr, Timestamp(3)));
            assert_eq!(c.pending(), 0);
        }
        // Hits counted before and after publication are one count.
        let list = control.list();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].1.hits, 6);
        assert_eq!(keeper.stats().added, 1);
        assert_eq!(keeper.stats().duplicates, 0);
    }

    // Replay skips the keeper's step around a frame when these say it would be idle: each of a
    // fresh block, a command, an unpublished change and a due expiry must make it work.
    #[test]
    fn the_keeper_says_when_a_step_would_do_nothing() {
        let SharedBlocks {
            mut keeper,
            control,
            mut clients,
        } = SharedBlocks::new(2, 16);
        let mut events = vec![];
        // A new table: the first step publishes nothing, but the version is read once.
        step(&mut keeper, &mut events);
        assert!(!keeper.has_news());
        assert!(!keeper.expiry_due(Timestamp(1000 * S)));
        // A worker's block: news (the fresh list moved, and its wake-up is in the channel).
        let k = key(1, 1);
        clients[0].block(req(k, 0));
        assert!(keeper.has_news());
        keeper.drain(&mut |e| events.push(e));
        // Taken but not published: still work to do (publication bumps the version once more).
        assert!(keeper.has_news());
        keeper.publish();
        keeper.drain(&mut |e| events.push(e));
        assert!(!keeper.has_news());
        assert_eq!(events.len(), 1);
        // Its expiry is due at 60 s, not before.
        assert!(!keeper.expiry_due(Timestamp(60 * S - 1)));
        assert!(keeper.expiry_due(Timestamp(60 * S)));
        // A command from the control plane, without a fresh block.
        control
            .send(Command::Manual {
                key: key(2, 2),
                now: Timestamp(S),
                duration_secs: 60,
                reason: "admin".into(),
                reply: None,
            })
            .unwrap();
        assert!(keeper.has_news());
        step(&mut keeper, &mut events);
        keeper.drain(&mut |e| events.push(e));
        assert!(!keeper.has_news());
        assert_eq!(events.len(), 2);
        assert_eq!(control.list().len(), 2);
    }

    #[test]
    fn threads_see_a_block_made_before_they_were_told() {
        let SharedBlocks { mut clients, .. } = SharedBlocks::new(2, 16);
        let mut other = clients.pop().unwrap();
        let mut detecting = clients.pop().unwrap();
        let k = key(1, 9);
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            // Waits for the detecting worker's verdict, as a frame handed on after it would.
            rx.recv().unwrap();
            other.check_and_hit(k.scope, k.addr, Timestamp(1))
        });
        assert_eq!(detecting.block(req(k, 0)), BlockResult::Added);
        tx.send(()).unwrap();
        assert!(t.join().unwrap());
    }

    #[test]
    fn expiry_is_reported_once_with_every_hit() {
        let SharedBlocks {
            mut keeper,
            control,
            mut clients,
        } = SharedBlocks::new(2, 16);
        let k = key(1, 1);
        clients[0].block(req(k, 0));
        assert!(clients[1].check_and_hit(k.scope, k.addr, Timestamp(S)));
        let mut events = vec![];
        step(&mut keeper, &mut events);
        assert!(clients[0].check_and_hit(k.scope, k.addr, Timestamp(2 * S)));
        // Exact: blocked until the expiry, not at it, even before the keeper sweeps.
        assert!(clients[1].check_and_hit(k.scope, k.addr, Timestamp(60 * S - 1)));
        assert!(!clients[1].check_and_hit(k.scope, k.addr, Timestamp(60 * S)));
        keeper.expire(Timestamp(60 * S), &mut |e| events.push(e));
        keeper.publish();
        keeper.expire(Timestamp(100 * S), &mut |e| events.push(e));
        assert_eq!(events.len(), 2);
        match &events[1].kind {
            EventKind::Block {
                change: BlockChange::Removed { reason, hits, .. },
                ..
            } => {
                assert_eq!(*reason, UnblockReason::Expired);
                assert_eq!(*hits, 3);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(events[1].ts, Timestamp(60 * S));
        assert!(control.list().is_empty());
        assert_eq!(keeper.stats().expired, 1);
    }

    #[test]
    fn manual_unblock_reports_the_hits_of_every_worker() {
        let SharedBlocks {
            mut keeper,
            control,
            mut clients,
        } = SharedBlocks::new(2, 16);
        let k = key(5, 9);
        let mut events = vec![];
        admin_block(&control, k, 0, 60);
        step(&mut keeper, &mut events);
        for c in &mut clients {
            assert!(c.check_and_hit(k.scope, k.addr, Timestamp(S)));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        control
            .send(Command::Unblock {
                key: k,
                now: Timestamp(2 * S),
                reply: Some(tx),
            })
            .unwrap();
        step(&mut keeper, &mut events);
        assert_eq!(rx.recv().unwrap().map(|e| e.hits), Some(2));
        match &events[1].kind {
            EventKind::Block {
                change: BlockChange::Removed { reason, hits, .. },
                ..
            } => assert_eq!((*reason, *hits), (UnblockReason::Manual, 2)),
            other => panic!("{other:?}"),
        }
        for c in &mut clients {
            assert!(!c.check_and_hit(k.scope, k.addr, Timestamp(3 * S)));
        }
    }

    #[test]
    fn a_full_table_evicts_the_detection_block_closest_to_expiry_never_a_manual_one() {
        let SharedBlocks {
            mut keeper,
            control,
            mut clients,
        } = SharedBlocks::new(1, 3);
        let mut events = vec![];
        let manual = key(1, 1);
        admin_block(&control, manual, 0, 10);
        step(&mut keeper, &mut events);
        clients[0].block(req(key(1, 2), 0));
        clients[0].block(req(key(1, 3), S));
        step(&mut keeper, &mut events);
        assert_eq!(keeper.len(), 3);
        // A new detection evicts 10.0.0.2 (expires first of the detections), not the manual
        // block that expires sooner still.
        clients[0].block(req(key(1, 4), 2 * S));
        step(&mut keeper, &mut events);
        let keys: Vec<BlockKey> = control.list().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![manual, key(1, 3), key(1, 4)]);
        assert_eq!(keeper.stats().evicted, 1);
        assert!(events.iter().any(|e| matches!(
            &e.kind,
            EventKind::Block {
                key: k,
                change: BlockChange::Removed {
                    reason: UnblockReason::Evicted,
                    ..
                },
            } if *k == key(1, 2)
        )));
        // A manual block is refused when full, and counted.
        let (tx, rx) = std::sync::mpsc::channel();
        control
            .send(Command::Manual {
                key: key(1, 5),
                now: Timestamp(3 * S),
                duration_secs: 60,
                reason: "admin".into(),
                reply: Some(tx),
            })
            .unwrap();
        step(&mut keeper, &mut events);
        assert_eq!(rx.recv().unwrap(), BlockResult::Full);
        assert_eq!(keeper.stats().refused, 1);
        assert!(matches!(
            &events.last().unwrap().kind,
            EventKind::Block {
                change: BlockChange::Refused {
                    engine: Engine::Manual,
                    ..
                },
                ..
            }
        ));
        assert_eq!(control.refused(), 1);
        // A table of manual blocks only refuses detections too.
        let SharedBlocks {
            mut keeper,
            control,
            mut clients,
        } = SharedBlocks::new(1, 1);
        admin_block(&control, manual, 0, 60);
        step(&mut keeper, &mut events);
        clients[0].block(req(key(1, 2), 0));
        let before = events.len();
        step(&mut keeper, &mut events);
        assert_eq!(keeper.stats().refused, 1);
        assert_eq!(events.len(), before + 1, "the refusal is reported");
        assert_eq!(control.list().len(), 1);
        // The refused block leaves the fresh list with the publication.
        assert!(!clients[0].check_and_hit(key(1, 2).scope, key(1, 2).addr, Timestamp(S)));
    }

    #[test]
    fn restored_blocks_keep_origin_and_expiry_and_make_no_event() {
        let SharedBlocks {
            mut keeper,
            control,
            mut clients,
        } = SharedBlocks::new(1, 16);
        let k = key(7, 7);
        control
            .send(Command::Restore {
                key: k,
                entry: BlockEntry {
                    created: Timestamp(0),
                    expires: Timestamp(100 * S),
                    reason: "Scan.Generic.TCP".into(),
                    engine: Engine::AttackBlocker.name(),
                    origin: BlockOrigin::Detection,
                    first_hit: None,
                    last_hit: None,
                    hits: 4,
                },
            })
            .unwrap();
        let mut events = vec![];
        step(&mut keeper, &mut events);
        assert!(events.is_empty());
        assert!(clients[0].check_and_hit(k.scope, k.addr, Timestamp(50 * S)));
        let list = control.list();
        assert_eq!(list[0].1.origin, BlockOrigin::Detection);
        assert_eq!(list[0].1.expires, Timestamp(100 * S));
        assert_eq!(list[0].1.hits, 5);
        assert_eq!(keeper.stats().added, 0);
    }

    // The command channel is bounded and nobody waits on it: a worker's block with the channel
    // full still reaches every worker (its wake-up is lost, the keeper reads the fresh list on
    // its tick), and an administrator's command is refused and counted.
    #[test]
    fn a_full_command_channel_refuses_commands_and_never_holds_a_worker() {
        let SharedBlocks {
            mut keeper,
            control,
            mut clients,
        } = SharedBlocks::new(2, 16);
        for i in 0..COMMAND_QUEUE {
            let k = key(1, u8::try_from(i % 200).unwrap());
            control
                .send(Command::Unblock {
                    key: k,
                    now: Timestamp(0),
                    reply: None,
                })
                .unwrap();
        }
        let k = key(2, 2);
        assert_eq!(
            control.send(Command::Unblock {
                key: k,
                now: Timestamp(0),
                reply: None
            }),
            Err(Refused::Full)
        );
        assert_eq!(
            control.block(k, Timestamp(0), 60, "admin".into()),
            Some(BlockResult::Full)
        );
        assert_eq!(control.unblock(k, Timestamp(0)), None);
        assert_eq!(control.refused_commands(), 3);
        assert_eq!(control.refused(), 3);
        // The worker's block is in force on every worker at once.
        assert_eq!(clients[0].block(req(k, 0)), BlockResult::Added);
        assert!(clients[1].check_and_hit(k.scope, k.addr, Timestamp(1)));
        // The keeper takes it with the queued commands, and the channel has room again.
        let mut events = vec![];
        step(&mut keeper, &mut events);
        assert_eq!(events.len(), 1);
        assert_eq!(keeper.stats().added, 1);
        assert_eq!(
            control.send(Command::Unblock {
                key: key(3, 3),
                now: Timestamp(0),
                reply: None
            }),
            Ok(())
        );
    }

    // A worker remembers the last source it found blocked (a flood of one source skips the
    // lookup): the memory must hold only that key, only until the table moves or it expires.
    #[test]
    fn the_last_hit_is_remembered_only_for_its_own_key_and_table() {
        let SharedBlocks {
            mut keeper,
            control,
            mut clients,
        } = SharedBlocks::new(1, 16);
        let (a, b) = (key(1, 1), key(1, 2));
        let mut events = vec![];
        for k in [a, b] {
            admin_block(&control, k, 0, 60);
        }
        step(&mut keeper, &mut events);
        let c = &mut clients[0];
        assert!(c.check_and_hit(a.scope, a.addr, Timestamp(S)));
        // The same address in another VLAN, another address: not the remembered key.
        assert!(!c.check_and_hit(key(2, 1).scope, a.addr, Timestamp(S)));
        assert!(!c.check_and_hit(a.scope, key(1, 3).addr, Timestamp(S)));
        assert!(c.check_and_hit(b.scope, b.addr, Timestamp(S)));
        assert!(c.check_and_hit(b.scope, b.addr, Timestamp(2 * S)));
        // Unblocked: the next look sees the new table, not the remembered entry.
        control
            .send(Command::Unblock {
                key: b,
                now: Timestamp(3 * S),
                reply: None,
            })
            .unwrap();
        step(&mut keeper, &mut events);
        assert!(!clients[0].check_and_hit(b.scope, b.addr, Timestamp(4 * S)));
        assert!(clients[0].check_and_hit(a.scope, a.addr, Timestamp(60 * S - 1)));
        assert!(!clients[0].check_and_hit(a.scope, a.addr, Timestamp(60 * S)));
        let hits: Vec<u64> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Block {
                    change: BlockChange::Removed { hits, .. },
                    ..
                } => Some(*hits),
                _ => None,
            })
            .collect();
        assert_eq!(hits, [2], "b's two hits, each counted once");
    }
}
