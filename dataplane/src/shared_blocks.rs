//! The block table shared by every worker of a live dataplane.
//!
//! A block made by one worker must drop the attacker's later packets on every worker, and an
//! administrator must be able to list, add and remove blocks, without the per-packet path ever
//! waiting for a lock that the control side holds.
//!
//! Design: one writer, published snapshots, a worker-local overlay.
//! - The [`BlockKeeper`] (its own thread in the daemon) owns the authoritative table. Workers and
//!   the control plane send it [`Command`]s over one bounded channel; it applies them in order,
//!   expires entries on the wall clock, emits the block events, and publishes an immutable
//!   [`BlockSnapshot`] after each batch of changes.
//! - Publication is an `Arc` swap under a mutex that is held only for that pointer store (by the
//!   keeper) or an `Arc` clone (by a worker), plus a generation counter. A worker loads the
//!   generation atomically on each packet and touches the mutex only when it has changed, so the
//!   per-packet path is one atomic load and a hash lookup; no one can hold the mutex for long
//!   because nobody does work under it.
//! - Hit counters live in the snapshot entries as atomics shared across snapshot generations
//!   (the keeper keeps the same `Arc` per entry), so workers count hits without writing to the
//!   table.
//! - A worker that makes a block also puts it in its own overlay at once, so the very next packet
//!   of the attacker is dropped by that worker before the keeper has published. The overlay entry
//!   leaves when a snapshot acknowledges the worker's request (the snapshot carries, per worker,
//!   the last request sequence number applied), or when it expires.
//!
//! Cost: a publication clones the key -> `Arc` map, O(blocks). Changes are batched (the keeper
//! drains every pending command before it publishes), so a flood of new blocks costs one clone
//! per batch; with the default cap of 2^20 entries a clone is tens of milliseconds, during which
//! workers keep using the previous snapshot plus their overlays. A persistent map would make this
//! O(log n) per change if it ever matters.
//!
//! Race: two workers that detect the same source within one publication interval both send a
//! block; the keeper makes the first and counts the second as a duplicate, so exactly one
//! "block added" event is emitted.

use core::cmp::Reverse;
use core::net::IpAddr;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hashbrown::HashMap;
use vlan::VlanScope;

use crate::blocks::{BlockEntry, BlockKey, BlockOrigin, BlockResult, DEFAULT_BLOCK_CAPACITY};
use crate::event::{BlockChange, Engine, Event, EventKind, UnblockReason};
use crate::time::Timestamp;

type Hasher = foldhash::fast::FixedState;

fn hasher() -> Hasher {
    foldhash::fast::FixedState::with_seed(0x7368_626c)
}

/// One block in a snapshot: fixed when made, plus hit counters shared by all workers.
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
    /// When the block ends.
    pub fn expires(&self) -> Timestamp {
        self.expires
    }

    fn hit(&self, now: Timestamp, n: u64) {
        self.hits.fetch_add(n, Ordering::Relaxed);
        let _ =
            self.first_hit
                .compare_exchange(0, now.micros(), Ordering::Relaxed, Ordering::Relaxed);
        self.last_hit.fetch_max(now.micros(), Ordering::Relaxed);
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
    // Per worker: the sequence number of the last block request the keeper has applied.
    acked: Vec<u64>,
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

#[derive(Debug)]
struct Published {
    generation: AtomicU64,
    current: Mutex<Arc<BlockSnapshot>>,
}

impl Published {
    fn load(&self) -> Arc<BlockSnapshot> {
        // A poisoned mutex only means a panic elsewhere while the pointer was stored or cloned;
        // the Arc inside is always whole.
        Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn store(&self, snap: Arc<BlockSnapshot>) {
        let generation = snap.generation;
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = snap;
        self.generation.store(generation, Ordering::Release);
    }
}

/// A block a worker asks for; the keeper emits the "block added" event from it.
#[derive(Clone, Debug)]
pub struct BlockRequest {
    /// What to block.
    pub key: BlockKey,
    /// When (the packet's time).
    pub now: Timestamp,
    /// For how long.
    pub duration_secs: u64,
    /// The detection name.
    pub reason: &'static str,
    /// The engine.
    pub engine: Engine,
    /// The detection's signature id.
    pub sid: Option<u32>,
    /// The flow of the detecting packet.
    pub flow_id: Option<u64>,
    /// The detecting packet's receive counter.
    pub pcap_cnt: Option<u64>,
}

/// Messages to the keeper.
#[derive(Debug)]
pub enum Command {
    /// A worker's block (already in its overlay).
    Worker {
        /// Worker index.
        worker: usize,
        /// The worker's request sequence number (1, 2, ...).
        seq: u64,
        /// The block.
        req: BlockRequest,
    },
    /// Hits a worker counted in its overlay before the block was published.
    Hits {
        /// The block.
        key: BlockKey,
        /// Packets dropped.
        hits: u64,
        /// Time of the last one.
        last: Timestamp,
    },
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
    /// An administrator's unblock.
    Unblock {
        /// What to unblock.
        key: BlockKey,
        /// When.
        now: Timestamp,
        /// Where to send the removed entry.
        reply: Option<Sender<Option<BlockEntry>>>,
    },
}

/// Counters of the keeper.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeeperStats {
    /// Blocks made (workers and admins).
    pub added: u64,
    /// Worker requests for a source already blocked (two workers, one publication interval).
    pub duplicates: u64,
    /// Blocks refused because the table was full.
    pub refused: u64,
    /// Blocks expired.
    pub expired: u64,
    /// Blocks lifted by an administrator.
    pub unblocked: u64,
    /// Snapshots published.
    pub published: u64,
}

/// The single writer of the shared block table.
#[derive(Debug)]
pub struct BlockKeeper {
    entries: HashMap<BlockKey, Arc<SharedEntry>, Hasher>,
    expiries: BinaryHeap<Reverse<(Timestamp, BlockKey)>>,
    capacity: usize,
    acked: Vec<u64>,
    rx: Receiver<Command>,
    published: Arc<Published>,
    generation: u64,
    dirty: bool,
    stats: KeeperStats,
}

/// Depth of the command channel: workers never wait on it (a full channel refuses the request,
/// and the block stays in that worker's overlay until it expires).
pub const COMMAND_QUEUE: usize = 4096;

/// The handles of a new shared block table.
#[derive(Debug)]
pub struct SharedBlocks {
    /// The writer; run it on its own thread ([`BlockKeeper::run`]).
    pub keeper: BlockKeeper,
    /// For the control plane (clone freely).
    pub control: BlockControl,
    /// One per worker, in worker-index order.
    pub clients: Vec<BlockClient>,
}

impl SharedBlocks {
    /// A shared table for `workers` workers holding at most `capacity` entries.
    pub fn new(workers: usize, capacity: usize) -> SharedBlocks {
        let (tx, rx) = std::sync::mpsc::sync_channel(COMMAND_QUEUE);
        let first = Arc::new(BlockSnapshot {
            generation: 0,
            entries: HashMap::with_hasher(hasher()),
            acked: vec![0; workers],
        });
        let published = Arc::new(Published {
            generation: AtomicU64::new(0),
            current: Mutex::new(Arc::clone(&first)),
        });
        let clients = (0..workers)
            .map(|worker| BlockClient {
                worker,
                published: Arc::clone(&published),
                snap: Arc::clone(&first),
                seen: 0,
                tx: tx.clone(),
                seq: 0,
                overlay: HashMap::with_hasher(hasher()),
                refused: 0,
            })
            .collect();
        SharedBlocks {
            keeper: BlockKeeper {
                entries: HashMap::with_hasher(hasher()),
                expiries: BinaryHeap::new(),
                capacity,
                acked: vec![0; workers],
                rx,
                published: Arc::clone(&published),
                generation: 0,
                dirty: false,
                stats: KeeperStats::default(),
            },
            control: BlockControl { tx, published },
            clients,
        }
    }

    /// With the default capacity.
    pub fn with_workers(workers: usize) -> SharedBlocks {
        Self::new(workers, DEFAULT_BLOCK_CAPACITY)
    }
}

impl BlockKeeper {
    /// Counters.
    pub fn stats(&self) -> KeeperStats {
        self.stats
    }

    /// When the next entry expires.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.expiries.peek().map(|Reverse((t, _))| *t)
    }

    fn insert(
        &mut self,
        key: BlockKey,
        now: Timestamp,
        secs: u64,
        reason: String,
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
        let expires = now.plus_secs(secs);
        self.entries.insert(
            key,
            Arc::new(SharedEntry {
                created: now,
                expires,
                reason,
                engine,
                origin,
                hits: AtomicU64::new(0),
                first_hit: AtomicU64::new(0),
                last_hit: AtomicU64::new(0),
            }),
        );
        self.expiries.push(Reverse((expires, key)));
        self.dirty = true;
        BlockResult::Added
    }

    /// Apply one command.
    pub fn apply(&mut self, cmd: Command, on_event: &mut impl FnMut(Event)) {
        match cmd {
            Command::Worker { worker, seq, req } => {
                if let Some(a) = self.acked.get_mut(worker) {
                    *a = (*a).max(seq);
                    self.dirty = true;
                }
                let res = self.insert(
                    req.key,
                    req.now,
                    req.duration_secs,
                    req.reason.to_owned(),
                    req.engine.name(),
                    BlockOrigin::Detection,
                );
                match res {
                    BlockResult::Added => {
                        self.stats.added += 1;
                        on_event(Event {
                            ts: req.now,
                            pcap_cnt: req.pcap_cnt,
                            kind: EventKind::Block {
                                key: req.key,
                                change: BlockChange::Added {
                                    engine: req.engine,
                                    reason: req.reason.into(),
                                    sid: req.sid,
                                    expires: req.now.plus_secs(req.duration_secs),
                                    duration_secs: req.duration_secs,
                                    flow_id: req.flow_id,
                                },
                            },
                        });
                    }
                    BlockResult::AlreadyBlocked => self.stats.duplicates += 1,
                    BlockResult::Full => self.stats.refused += 1,
                }
            }
            Command::Hits { key, hits, last } => {
                if let Some(e) = self.entries.get(&key) {
                    e.hit(last, hits);
                }
            }
            Command::Manual {
                key,
                now,
                duration_secs,
                reason,
                reply,
            } => {
                let res = self.insert(
                    key,
                    now,
                    duration_secs,
                    reason.clone(),
                    Engine::Manual.name(),
                    BlockOrigin::Manual,
                );
                match res {
                    BlockResult::Added => {
                        self.stats.added += 1;
                        on_event(Event {
                            ts: now,
                            pcap_cnt: None,
                            kind: EventKind::Block {
                                key,
                                change: BlockChange::Added {
                                    engine: Engine::Manual,
                                    reason: reason.into(),
                                    sid: None,
                                    expires: now.plus_secs(duration_secs),
                                    duration_secs,
                                    flow_id: None,
                                },
                            },
                        });
                    }
                    BlockResult::AlreadyBlocked => {}
                    BlockResult::Full => self.stats.refused += 1,
                }
                if let Some(r) = reply {
                    let _ = r.send(res);
                }
            }
            Command::Unblock { key, now, reply } => {
                let removed = self.entries.remove(&key).map(|e| e.to_entry());
                if let Some(e) = &removed {
                    self.dirty = true;
                    self.stats.unblocked += 1;
                    on_event(Event {
                        ts: now,
                        pcap_cnt: None,
                        kind: EventKind::Block {
                            key,
                            change: BlockChange::Removed {
                                reason: UnblockReason::Manual,
                                hits: e.hits,
                                created: e.created,
                            },
                        },
                    });
                }
                if let Some(r) = reply {
                    let _ = r.send(removed);
                }
            }
        }
    }

    /// Apply every command waiting in the channel. Returns false once every sender is gone.
    pub fn drain(&mut self, on_event: &mut impl FnMut(Event)) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(cmd) => self.apply(cmd, on_event),
                Err(std::sync::mpsc::TryRecvError::Empty) => return true,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// Remove and report every entry expired by `now`.
    pub fn expire(&mut self, now: Timestamp, on_event: &mut impl FnMut(Event)) {
        while let Some(Reverse((t, key))) = self.expiries.peek().copied() {
            if t > now {
                break;
            }
            self.expiries.pop();
            if self.entries.get(&key).is_some_and(|e| e.expires == t)
                && let Some(e) = self.entries.remove(&key)
            {
                {
                    self.dirty = true;
                    self.stats.expired += 1;
                    on_event(Event {
                        ts: t,
                        pcap_cnt: None,
                        kind: EventKind::Block {
                            key,
                            change: BlockChange::Removed {
                                reason: UnblockReason::Expired,
                                hits: e.hits.load(Ordering::Relaxed),
                                created: e.created,
                            },
                        },
                    });
                }
            }
        }
    }

    /// Publish a new snapshot if anything changed since the last one.
    pub fn publish(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        self.generation += 1;
        self.stats.published += 1;
        self.published.store(Arc::new(BlockSnapshot {
            generation: self.generation,
            entries: self.entries.clone(),
            acked: self.acked.clone(),
        }));
    }

    /// The keeper's loop: apply commands as they come, expire on the clock, publish after each
    /// batch; returns when `stop` says so or every sender is gone. `tick` bounds how long an
    /// expiry waits to be reported.
    pub fn run(
        mut self,
        stop: &std::sync::atomic::AtomicBool,
        clock: impl Fn() -> Timestamp,
        tick: Duration,
        mut on_event: impl FnMut(Event),
    ) -> KeeperStats {
        let mut alive = true;
        while alive && !stop.load(Ordering::Relaxed) {
            match self.rx.recv_timeout(tick) {
                Ok(cmd) => {
                    self.apply(cmd, &mut on_event);
                    alive = self.drain(&mut on_event);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => alive = false,
            }
            self.expire(clock(), &mut on_event);
            self.publish();
        }
        // Requests sent just before the stop still produce their events.
        self.drain(&mut on_event);
        self.publish();
        self.stats
    }
}

/// The control plane's handle: list from the published snapshot, send changes to the keeper.
#[derive(Clone, Debug)]
pub struct BlockControl {
    tx: SyncSender<Command>,
    published: Arc<Published>,
}

impl BlockControl {
    /// The current snapshot (hold it as long as you like: it is immutable).
    pub fn snapshot(&self) -> Arc<BlockSnapshot> {
        self.published.load()
    }

    /// Every block, sorted by key.
    pub fn list(&self) -> Vec<(BlockKey, BlockEntry)> {
        self.snapshot().list()
    }

    /// Send a command to the keeper (waits if the channel is full). False if the keeper is gone.
    pub fn send(&self, cmd: Command) -> bool {
        self.tx.send(cmd).is_ok()
    }
}

#[derive(Debug)]
struct Pending {
    expires: Timestamp,
    seq: u64,
    hits: u64,
    last: Timestamp,
}

/// A worker's view of the shared table: the latest snapshot it has seen plus its own overlay.
#[derive(Debug)]
pub struct BlockClient {
    worker: usize,
    published: Arc<Published>,
    snap: Arc<BlockSnapshot>,
    seen: u64,
    tx: SyncSender<Command>,
    seq: u64,
    overlay: HashMap<BlockKey, Pending, Hasher>,
    refused: u64,
}

impl BlockClient {
    /// Take a newer snapshot if one was published; one atomic load when nothing changed.
    #[inline]
    pub fn refresh(&mut self) {
        if self.published.generation.load(Ordering::Acquire) == self.seen {
            return;
        }
        self.snap = self.published.load();
        self.seen = self.snap.generation;
        if self.overlay.is_empty() {
            return;
        }
        let acked = self.snap.acked.get(self.worker).copied().unwrap_or(0);
        let snap = Arc::clone(&self.snap);
        let tx = &self.tx;
        self.overlay.retain(|key, p| {
            if p.seq > acked {
                return true;
            }
            if p.hits > 0 {
                if let Some(e) = snap.entries.get(key) {
                    e.hit(p.last, p.hits);
                } else {
                    let _ = tx.try_send(Command::Hits {
                        key: *key,
                        hits: p.hits,
                        last: p.last,
                    });
                }
            }
            false
        });
    }

    /// Whether `addr` is blocked in `scope` at `now`; counts a hit when it is.
    #[inline]
    pub fn check_and_hit(&mut self, scope: VlanScope, addr: IpAddr, now: Timestamp) -> bool {
        self.refresh();
        if self.overlay.is_empty() && self.snap.entries.is_empty() {
            return false;
        }
        let key = BlockKey { scope, addr };
        if let Some(p) = self.overlay.get_mut(&key)
            && p.expires > now
        {
            p.hits += 1;
            p.last = now;
            return true;
        }
        if let Some(e) = self.snap.get(&key, now) {
            e.hit(now, 1);
            return true;
        }
        false
    }

    /// Block a source: at once in this worker's overlay, and on every worker once the keeper
    /// has published. `Full` means the request could not be queued (the keeper is behind); the
    /// overlay still drops the source on this worker until it expires.
    pub fn block(&mut self, req: BlockRequest) -> BlockResult {
        self.refresh();
        let key = req.key;
        if self.snap.get(&key, req.now).is_some()
            || self.overlay.get(&key).is_some_and(|p| p.expires > req.now)
        {
            return BlockResult::AlreadyBlocked;
        }
        // Expired overlay entries whose publication was refused leave here.
        if self.overlay.len() >= OVERLAY_CAP {
            let now = req.now;
            self.overlay.retain(|_, p| p.expires > now);
            if self.overlay.len() >= OVERLAY_CAP {
                self.refused += 1;
                return BlockResult::Full;
            }
        }
        self.seq += 1;
        let seq = self.seq;
        let expires = req.now.plus_secs(req.duration_secs);
        let sent = self.tx.try_send(Command::Worker {
            worker: self.worker,
            seq,
            req,
        });
        self.overlay.insert(
            key,
            Pending {
                expires,
                seq,
                hits: 0,
                last: Timestamp(0),
            },
        );
        match sent {
            Ok(()) => BlockResult::Added,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.refused += 1;
                BlockResult::Full
            }
        }
    }

    /// Blocks of this worker not yet acknowledged by a snapshot.
    pub fn pending(&self) -> usize {
        self.overlay.len()
    }

    /// Requests that could not be queued to the keeper.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The snapshot this worker uses.
    pub fn snapshot(&self) -> &BlockSnapshot {
        &self.snap
    }
}

/// Cap on a worker's overlay: blocks waiting for publication. The keeper normally acknowledges
/// within one tick, so this is only reached when it is stalled.
pub const OVERLAY_CAP: usize = 1 << 16;

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
            reason: "Scan.Generic.TCP",
            engine: Engine::AttackBlocker,
            sid: Some(1),
            flow_id: None,
            pcap_cnt: Some(7),
        }
    }

    #[test]
    fn block_by_one_worker_reaches_the_others_after_publication() {
        let SharedBlocks {
            mut keeper,
            control,
            mut clients,
        } = SharedBlocks::new(2, 16);
        let k = key(100, 66);
        let (a, b) = clients.split_at_mut(1);
        let (a, b) = (&mut a[0], &mut b[0]);
        assert_eq!(a.block(req(k, 0)), BlockResult::Added);
        // The detecting worker drops the next packet at once; the other does not know yet.
        assert!(a.check_and_hit(k.scope, k.addr, Timestamp(1)));
        assert!(!b.check_and_hit(k.scope, k.addr, Timestamp(1)));
        let mut events = vec![];
        keeper.drain(&mut |e| events.push(e));
        keeper.publish();
        assert_eq!(events.len(), 1, "one block-added event");
        assert!(b.check_and_hit(k.scope, k.addr, Timestamp(2)));
        // Another VLAN is not blocked.
        assert!(!b.check_and_hit(key(200, 66).scope, k.addr, Timestamp(2)));
        // The overlay is acknowledged and folds its hit into the shared entry.
        assert!(a.check_and_hit(k.scope, k.addr, Timestamp(3)));
        assert_eq!(a.pending(), 0);
        let list = control.list();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].1.hits, 3);
        // Second detection of the same source by the other worker is a duplicate.
        assert_eq!(b.block(req(k, 4)), BlockResult::AlreadyBlocked);
    }

    #[test]
    fn duplicate_requests_make_one_event_and_expiry_is_reported() {
        let SharedBlocks {
            mut keeper,
            control,
            mut clients,
        } = SharedBlocks::new(2, 16);
        let k = key(1, 1);
        for c in &mut clients {
            assert_eq!(c.block(req(k, 0)), BlockResult::Added);
        }
        let mut events = vec![];
        keeper.drain(&mut |e| events.push(e));
        keeper.publish();
        assert_eq!(events.len(), 1);
        assert_eq!(keeper.stats().duplicates, 1);
        keeper.expire(Timestamp(60 * S), &mut |e| events.push(e));
        keeper.publish();
        assert_eq!(events.len(), 2);
        assert!(control.list().is_empty());
        for c in &mut clients {
            assert!(!c.check_and_hit(k.scope, k.addr, Timestamp(60 * S)));
        }
    }

    #[test]
    fn manual_block_and_unblock() {
        let SharedBlocks {
            mut keeper,
            control,
            mut clients,
        } = SharedBlocks::new(1, 16);
        let k = key(5, 9);
        let (tx, rx) = std::sync::mpsc::channel();
        assert!(control.send(Command::Manual {
            key: k,
            now: Timestamp(0),
            duration_secs: 60,
            reason: "admin".into(),
            reply: Some(tx),
        }));
        let mut events = vec![];
        keeper.drain(&mut |e| events.push(e));
        keeper.publish();
        assert_eq!(rx.recv().unwrap(), BlockResult::Added);
        assert!(clients[0].check_and_hit(k.scope, k.addr, Timestamp(S)));
        assert!(control.send(Command::Unblock {
            key: k,
            now: Timestamp(2 * S),
            reply: None,
        }));
        keeper.drain(&mut |e| events.push(e));
        keeper.publish();
        assert!(!clients[0].check_and_hit(k.scope, k.addr, Timestamp(3 * S)));
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn unacknowledged_overlay_entry_ends_on_time() {
        let SharedBlocks { mut clients, .. } = SharedBlocks::new(1, 16);
        let k = key(1, 2);
        clients[0].block(req(k, 0));
        assert!(clients[0].check_and_hit(k.scope, k.addr, Timestamp(59 * S)));
        assert!(!clients[0].check_and_hit(k.scope, k.addr, Timestamp(60 * S)));
    }
}
