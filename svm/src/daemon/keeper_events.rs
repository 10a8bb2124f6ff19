//! The keepers' events on their way to the control plane: the queues between the block and
//! isolation keepers and the event pump ([`super::plane::pump`], which hands them to
//! [`ControlState::ingest`]).
//!
//! **Block events** go through a bounded queue ([`BLOCK_EVENT_QUEUE`]) that the block keeper
//! never waits on: the pump may be waiting for the control plane (a store commit, the decision
//! stream's lock), and the control plane may be waiting for the keeper (an API block or listing
//! asks it), so a keeper that waited for the pump could close that circle. Traffic feeds the
//! queue (a flood from random sources makes a block of each source), so when it is full the
//! event is dropped and counted ([`KeeperEventStats::overload`]), and the control plane
//! resyncs: the keeper's table is the one block authority and publishes snapshots, so nothing
//! of the state is lost with the events. The queue carries with each event the generation of
//! the keeper's last publication before it; the change an event reports is in every snapshot
//! of a later generation. A drop marks the first generation that holds the lost change, and
//! once the keeper has published that generation, the pump hands the snapshot to
//! [`ControlState::resync_blocks`] (store and decision stream made equal to the table) and
//! reports the loss with an `engine_overload` event (queue `keeper_events`, at most one per
//! [`crate::events::OVERLOAD_INTERVAL_SECS`], as the event hub does). The events queued from
//! before that snapshot are in it: they are written and counted as any, but change neither
//! the store nor the decision stream again ([`ControlState::ingest_reflected`]), so the pump
//! resyncs without draining the queue first, and a pump that fell behind a flood (a store
//! commit a block) catches up at once.
//!
//! **Isolation events** have a queue of their own ([`ISOLATION_EVENT_QUEUE`]) and are never
//! dropped: the isolation keeper waits for room. Few come (a start and an end per isolation,
//! at most one isolation per protected VM), and the wait cannot close a circle: the pump,
//! the only reader, never waits for the isolation keeper. What the pump waits on is the store
//! (its database lock and write transactions), the control state's own locks (the decision
//! stream, the running policy, blocks the store refused), the event hub and the NSX tagger
//! (`try_send` into bounded queues, never a wait) and the workers' queue (with a timeout).
//! None of them is held by anyone while waiting for the isolation keeper: the API asks the
//! keeper (`enable`, `disable`) before it opens a store transaction, and inside one it only
//! reads the keeper's published snapshot and fresh list, whose locks the keeper takes only to
//! store or copy a pointer and never holds while it reports an event (`dataplane::keeper`);
//! the isolation keeper stores the isolations on its own thread, never while it sends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};

use dataplane::event::Event;
use dataplane::shared_blocks::BlockControl;

use crate::control::{ControlState, Metric};
use crate::events::Overload;

/// Depth of the block keeper's event queue to the pump: a burst of this many block changes
/// (one per blocked source of a flood) waits for the control plane; beyond it events are
/// dropped and the control plane resyncs from the keeper's table. A slot is 208 bytes,
/// allocated at start (3.3 MiB), plus a detection's reason when it is not a constant.
pub const BLOCK_EVENT_QUEUE: usize = 16_384;

/// Depth of the isolation keeper's event queue to the pump; the keeper waits when it is full.
pub const ISOLATION_EVENT_QUEUE: usize = 1_024;

/// `queue` label of the block keeper's queue in `svm_queue_dropped_total` and in its
/// `engine_overload` events.
pub const QUEUE_NAME: &str = "keeper_events";

/// Counters of the block keeper's event queue, shared by the keeper, the pump and `/metrics`.
#[derive(Debug, Default)]
pub struct KeeperEventStats {
    /// Events the full queue dropped, and their `engine_overload` reports.
    pub overload: Overload,
    /// Events the queue took.
    pub queued: AtomicU64,
    /// Resyncs of the store and decision stream from the keeper's table.
    pub resyncs: AtomicU64,
    /// Blocks resyncs stored and streamed as new.
    pub resync_added: AtomicU64,
    /// Blocks resyncs removed from the store and streamed as deleted.
    pub resync_removed: AtomicU64,
    // 0: in step. Else the generation of the keeper's table the next resync needs (the first
    // one holding every change whose event was dropped).
    resync_from: AtomicU64,
}

impl KeeperEventStats {
    /// Metric families of the queue for `/metrics`.
    pub fn metrics(&self) -> Vec<Metric> {
        let ld = |a: &AtomicU64| {
            #[allow(clippy::cast_precision_loss)]
            let v = a.load(Ordering::Relaxed) as f64;
            v
        };
        vec![
            Metric {
                name: "svm_keeper_events_queued_total",
                help: "Block events the block keeper queued for the control plane.",
                kind: "counter",
                samples: vec![(Vec::new(), ld(&self.queued))],
            },
            Metric {
                name: "svm_keeper_resyncs_total",
                help: "Times the control plane brought its store and decision stream in line with the block keeper's table after block events were dropped.",
                kind: "counter",
                samples: vec![(Vec::new(), ld(&self.resyncs))],
            },
            Metric {
                name: "svm_keeper_resync_blocks_total",
                help: "Blocks a resync stored and streamed as new (added) or removed and streamed as deleted (removed).",
                kind: "counter",
                samples: vec![
                    (vec![("change", "added".into())], ld(&self.resync_added)),
                    (vec![("change", "removed".into())], ld(&self.resync_removed)),
                ],
            },
        ]
    }
}

/// The block keeper's side: never waits.
#[derive(Debug)]
pub struct BlockEvents {
    tx: SyncSender<(u64, Event)>,
    table: BlockControl,
    stats: Arc<KeeperEventStats>,
}

impl BlockEvents {
    /// Queue one event of the keeper; called on the keeper's thread, between a change and the
    /// publication holding it. A full queue drops it, counts it and asks for a resync.
    pub fn send(&self, ev: Event) {
        // The keeper's own last publication: the change `ev` reports is not in it, and is in
        // every later one.
        let generation = self.table.snapshot().generation();
        match self.tx.try_send((generation, ev)) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                self.stats.overload.drop_one();
                self.stats
                    .resync_from
                    .fetch_max(generation.saturating_add(1), Ordering::AcqRel);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The isolation keeper's side: waits for room (see the module doc for why that is safe).
#[derive(Clone, Debug)]
pub struct IsolationEvents {
    tx: SyncSender<Event>,
}

impl IsolationEvents {
    /// Queue one event, waiting while the queue is full; nothing once the pump is gone.
    pub fn send(&self, ev: Event) {
        let _ = self.tx.send(ev);
    }
}

/// The pump's side of both queues.
#[derive(Debug)]
pub struct KeeperEvents {
    blocks: Receiver<(u64, Event)>,
    isolations: Receiver<Event>,
    table: BlockControl,
    stats: Arc<KeeperEventStats>,
    // Generation of the snapshot of the last resync: events from before it are in it.
    synced: u64,
    blocks_open: bool,
    isolations_open: bool,
}

/// The two queues of the keepers: `blocks` bounds the block keeper's (which reads its
/// generation from `table`), [`ISOLATION_EVENT_QUEUE`] the isolation keeper's.
pub fn queues(
    blocks: usize,
    table: BlockControl,
    stats: Arc<KeeperEventStats>,
) -> (BlockEvents, IsolationEvents, KeeperEvents) {
    let (btx, brx) = std::sync::mpsc::sync_channel(blocks.max(1));
    let (itx, irx) = std::sync::mpsc::sync_channel(ISOLATION_EVENT_QUEUE);
    (
        BlockEvents {
            tx: btx,
            table: table.clone(),
            stats: Arc::clone(&stats),
        },
        IsolationEvents { tx: itx },
        KeeperEvents {
            blocks: brx,
            isolations: irx,
            table,
            stats,
            synced: 0,
            blocks_open: true,
            isolations_open: true,
        },
    )
}

impl KeeperEvents {
    /// Hand every waiting event of both keepers to `control`, resyncing first (and after, for
    /// drops meanwhile) if block events were dropped and the keeper has published their
    /// changes, and report drops. Returns false once both keepers are gone and their queues
    /// are empty (after a last resync if one was due: the keeper's last publication precedes
    /// its going).
    ///
    /// The resync does not wait for the queue to drain: the events still queued from before its
    /// snapshot are in it and cost no store work, so a pump that fell behind a flood (a store
    /// commit a block) catches up at once.
    pub fn drain(&mut self, control: &ControlState) -> bool {
        while self.isolations_open {
            match self.isolations.try_recv() {
                Ok(ev) => control.ingest(&ev),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.isolations_open = false,
            }
        }
        self.resync(control);
        while self.blocks_open {
            match self.blocks.try_recv() {
                Ok((generation, ev)) => {
                    if generation < self.synced {
                        control.ingest_reflected(&ev);
                    } else {
                        control.ingest(&ev);
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.blocks_open = false,
            }
        }
        self.resync(control);
        if let Some(rec) = self
            .stats
            .overload
            .report(QUEUE_NAME, control.clock().now())
        {
            control.hub().emit(rec);
        }
        self.blocks_open || self.isolations_open
    }

    fn resync(&mut self, control: &ControlState) {
        let from = self.stats.resync_from.load(Ordering::Acquire);
        if from == 0 {
            return;
        }
        let snap = self.table.snapshot();
        // Not yet published: the next round (the keeper publishes after every batch). A keeper
        // that is gone published its last.
        if snap.generation() < from && self.blocks_open {
            return;
        }
        let r = control.resync_blocks(&snap);
        self.synced = snap.generation();
        let s = &self.stats;
        s.resyncs.fetch_add(1, Ordering::Relaxed);
        s.resync_added.fetch_add(r.added, Ordering::Relaxed);
        s.resync_removed.fetch_add(r.removed, Ordering::Relaxed);
        // A drop since the load asked for a later generation: it stays due.
        let _ = s
            .resync_from
            .compare_exchange(from, 0, Ordering::AcqRel, Ordering::Acquire);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::collections::BTreeSet;
    use std::net::IpAddr;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    use dataplane::blocks::BlockKey;
    use dataplane::event::Engine;
    use dataplane::shared_blocks::{BlockRequest, SharedBlocks};
    use dataplane::time::Timestamp;

    use super::*;
    use crate::control::{Clock, Control, ControlConfig, Hooks, ManualClock};
    use crate::events::{ENGINE_OVERLOAD, EventHub, HubConfig};
    use crate::inventory::Inventory;
    use crate::store::Store;

    const T0: Timestamp = Timestamp::from_secs_micros(1_767_225_600, 0);

    fn key(addr: IpAddr) -> BlockKey {
        BlockKey {
            scope: "100".parse().unwrap(),
            addr,
        }
    }

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "waited for {what}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A flood of new blocks while the pump is held up, with blocks the control plane knew
    /// lifted and expired in the same burst: the queue takes what fits and drops the rest,
    /// and once the pump runs the store and the decision stream hold exactly the keeper's
    /// table, every id once, and an `engine_overload` event reports the loss.
    #[test]
    fn a_full_queue_loses_events_but_no_block() {
        const CAP: usize = 64;
        const OLD: u8 = 10;
        const FLOOD: u16 = 1000;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("state.redb")).unwrap());
        let hub = EventHub::start(Arc::clone(&store), HubConfig::default(), Vec::new()).unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let SharedBlocks {
            keeper,
            control: table,
            mut clients,
        } = SharedBlocks::new(1, 1 << 16);
        let control = ControlState::open(
            ControlConfig::default(),
            Arc::clone(&store),
            hub.clone(),
            clock.clone(),
            Arc::new(Inventory::default()),
            None,
            Hooks::default(),
            table.clone(),
        )
        .unwrap();
        let stats = Arc::new(KeeperEventStats::default());
        let (blocks, isolations, mut events) = queues(CAP, table.clone(), Arc::clone(&stats));
        drop(isolations);
        let stop = Arc::new(AtomicBool::new(false));
        let keeper = {
            let (stop, clock) = (Arc::clone(&stop), clock.clone());
            std::thread::spawn(move || {
                keeper.run(
                    &stop,
                    move || clock.now(),
                    Duration::from_millis(5),
                    move |ev| blocks.send(ev),
                )
            })
        };
        let mut worker = clients.pop().unwrap();
        let mut block = |addr: IpAddr, secs: u64| {
            worker.block(BlockRequest {
                key: key(addr),
                now: clock.now(),
                duration_secs: secs,
                reason: "Scan.Test".into(),
                engine: Engine::AttackBlocker,
                sid: None,
                flow_id: None,
                pcap_cnt: None,
            })
        };
        let seen = || {
            stats.queued.load(Ordering::Relaxed) + stats.overload.dropped.load(Ordering::Relaxed)
        };

        // Ten blocks the control plane takes in as usual, and a bouncer that saw them.
        let old: Vec<IpAddr> = (0..OLD).map(|i| IpAddr::from([10, 0, 0, i])).collect();
        for a in &old {
            block(*a, 60);
        }
        wait_until("the first blocks", || seen() == u64::from(OLD));
        assert!(events.drain(&control));
        let start = control.decisions("bouncer", true);
        assert_eq!(start.new.len(), usize::from(OLD));
        let old_ids: BTreeSet<u64> = start.new.iter().map(|d| d.id).collect();

        // The pump is held up: a flood of new blocks, half the old ones lifted, the other half
        // expired.
        clock.advance_secs(30);
        let flood: Vec<IpAddr> = (0..FLOOD)
            .map(|i| {
                let [hi, lo] = i.to_be_bytes();
                IpAddr::from([10, 1, hi, lo])
            })
            .collect();
        for a in &flood {
            block(*a, 600);
        }
        for a in &old[..usize::from(OLD / 2)] {
            assert!(table.unblock(key(*a), clock.now()).unwrap().is_some());
        }
        clock.advance_secs(31);
        assert!(table.expire(clock.now()));
        let total = u64::from(OLD) * 2 + u64::from(FLOOD);
        wait_until("every keeper event", || seen() == total);
        assert_eq!(
            stats.queued.load(Ordering::Relaxed),
            u64::from(OLD) + CAP as u64,
            "the queue held {CAP} while the pump was held up"
        );
        let dropped = total - u64::from(OLD) - CAP as u64;
        assert_eq!(stats.overload.dropped.load(Ordering::Relaxed), dropped);

        // The pump runs until the keeper stops.
        let pump = {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Event>(1);
            drop(tx);
            std::thread::spawn(move || {
                crate::daemon::plane::pump(&control, &rx, &mut events);
                control
            })
        };
        wait_until("the resync", || stats.resyncs.load(Ordering::Relaxed) > 0);
        stop.store(true, Ordering::Relaxed);
        keeper.join().unwrap();
        let control = pump.join().unwrap();

        let want: BTreeSet<IpAddr> = flood.iter().copied().collect();
        let stored = store.blocks().unwrap();
        let stored_addrs: BTreeSet<IpAddr> = stored.iter().map(|b| b.addr).collect();
        assert_eq!(stored_addrs, want, "the store holds the keeper's table");
        let ids: BTreeSet<u64> = stored.iter().map(|b| b.id).collect();
        assert_eq!(ids.len(), stored.len(), "one id each");

        let changes = control.decisions("bouncer", false);
        let new: BTreeSet<IpAddr> = changes
            .new
            .iter()
            .map(|d| d.value.parse().unwrap())
            .collect();
        assert_eq!(new, want, "every block of the flood streamed as new");
        assert_eq!(changes.new.len(), usize::from(FLOOD), "each once");
        let new_ids: BTreeSet<u64> = changes.new.iter().map(|d| d.id).collect();
        assert_eq!(new_ids, ids, "the stream's ids are the stored ones");
        let deleted: BTreeSet<u64> = changes.deleted.iter().map(|d| d.id).collect();
        assert_eq!(deleted, old_ids, "every lifted and expired block deleted");
        assert_eq!(changes.deleted.len(), usize::from(OLD), "each once");
        assert_eq!(
            control.decisions("late bouncer", true).new.len(),
            usize::from(FLOOD)
        );

        let r = (
            stats.resync_added.load(Ordering::Relaxed),
            stats.resync_removed.load(Ordering::Relaxed),
        );
        assert_eq!(
            r,
            (u64::from(FLOOD), u64::from(OLD)),
            "the resync came first: the queued events were in its snapshot"
        );
        control.hub().flush();
        let overloads: Vec<serde_json::Value> = store
            .spool_peek(10_000)
            .unwrap()
            .iter()
            .filter_map(|s| serde_json::from_slice::<serde_json::Value>(&s.data).ok())
            .filter(|v| v["event_type"] == ENGINE_OVERLOAD)
            .collect();
        assert_eq!(overloads.len(), 1, "{overloads:?}");
        assert_eq!(overloads[0]["queue"], QUEUE_NAME);
        assert_eq!(overloads[0]["dropped"], dropped);
    }

    /// Events that were queued before the snapshot a resync took (the pump read it while the
    /// keeper went on) are in that snapshot: they are written but change neither the store
    /// nor the decision stream again, so a late "added" and "removed" of an earlier block of a
    /// key do not undo the later block the resync took in.
    #[test]
    fn events_older_than_the_resync_do_not_undo_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("state.redb")).unwrap());
        let hub = EventHub::start(Arc::clone(&store), HubConfig::default(), Vec::new()).unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let SharedBlocks {
            mut keeper,
            control: table,
            mut clients,
        } = SharedBlocks::new(1, 1 << 16);
        let control = ControlState::open(
            ControlConfig::default(),
            Arc::clone(&store),
            hub,
            clock.clone(),
            Arc::new(Inventory::default()),
            None,
            Hooks::default(),
            table.clone(),
        )
        .unwrap();
        let stats = Arc::new(KeeperEventStats::default());
        let (blocks, isolations, mut events) = queues(2, table.clone(), Arc::clone(&stats));
        drop(isolations);
        let mut worker = clients.pop().unwrap();
        let addr = IpAddr::from([10, 0, 0, 1]);
        let mut block = |now: Timestamp| {
            worker.block(BlockRequest {
                key: key(addr),
                now,
                duration_secs: 60,
                reason: "Scan.Test".into(),
                engine: Engine::AttackBlocker,
                sid: None,
                flow_id: None,
                pcap_cnt: None,
            });
        };
        // Block, lift and block the source again; the second block's event finds the queue full.
        block(T0);
        keeper.take_fresh(&mut |ev| blocks.send(ev));
        keeper.publish();
        keeper.apply(
            dataplane::shared_blocks::Command::Unblock {
                key: key(addr),
                now: T0,
                reply: None,
            },
            &mut |ev| blocks.send(ev),
        );
        keeper.publish();
        clock.advance_secs(1);
        block(clock.now());
        keeper.take_fresh(&mut |ev| blocks.send(ev));
        keeper.publish();
        assert_eq!(stats.overload.dropped.load(Ordering::Relaxed), 1);
        // The pump resyncs before it takes the two queued events.
        assert!(events.drain(&control));
        assert_eq!(stats.resyncs.load(Ordering::Relaxed), 1);
        drop((blocks, keeper));
        let stored = store.blocks().unwrap();
        assert_eq!(stored.len(), 1, "{stored:?}");
        assert_eq!(
            stored[0].created_us,
            clock.now().micros(),
            "the second block"
        );
        let d = control.decisions("bouncer", true);
        assert_eq!(d.new.len(), 1);
        assert_eq!(d.new[0].id, stored[0].id);
    }

    /// The isolation keeper's events are never dropped: past the queue's depth the sender
    /// waits until the pump takes them.
    #[test]
    fn isolation_events_wait_for_room_and_all_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("state.redb")).unwrap());
        let hub = EventHub::start(Arc::clone(&store), HubConfig::default(), Vec::new()).unwrap();
        let SharedBlocks { control: table, .. } = SharedBlocks::new(0, 16);
        let control = ControlState::open(
            ControlConfig::default(),
            Arc::clone(&store),
            hub.clone(),
            Arc::new(ManualClock::new(T0)),
            Arc::new(Inventory::default()),
            None,
            Hooks::default(),
            table.clone(),
        )
        .unwrap();
        let (blocks, isolations, mut events) =
            queues(1, table, Arc::new(KeeperEventStats::default()));
        drop(blocks);
        let n = ISOLATION_EVENT_QUEUE + 50;
        let sender = std::thread::spawn(move || {
            for i in 0..n {
                isolations.send(Event {
                    ts: T0,
                    pcap_cnt: Some(i as u64),
                    kind: dataplane::event::EventKind::Block {
                        key: key(IpAddr::from([10, 0, 0, 1])),
                        change: dataplane::event::BlockChange::Refused {
                            engine: Engine::Manual,
                            reason: "full".into(),
                            sid: None,
                            duration_secs: 60,
                        },
                    },
                });
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(!sender.is_finished(), "the sender waits for room");
        while events.drain(&control) {
            std::thread::sleep(Duration::from_millis(1));
        }
        sender.join().unwrap();
        let emitted: u64 = hub
            .stats()
            .emitted
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        assert_eq!(emitted, n as u64, "every event reached the hub");
    }
}
