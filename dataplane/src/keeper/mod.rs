//! One keeper for every table workers read and one writer changes: the block table
//! ([`crate::shared_blocks`]) and the isolation table ([`crate::isolation`]) are instances of
//! [`Keeper`] over their [`Table`].
//!
//! The machinery is the same for both, so it is written once here:
//! - One writer, the [`Keeper`], owns the table. It is the only author of the table's events.
//!   The daemon runs it on its own thread ([`Keeper::run`], on the daemon's clock); replay drives
//!   it between frames on packet time ([`Keeper::drain`], [`Keeper::expire`],
//!   [`Keeper::publish`]). After each batch of changes it publishes an immutable snapshot
//!   ([`Table::Snapshot`]).
//! - A worker that makes an entry (a detection's block, an automatic isolation) appends it to
//!   the shared fresh list and bumps the shared version before its verdict is out; every worker
//!   loads that version (one atomic load) before it looks at a frame, and on a change reads the
//!   fresh list and the newest snapshot ([`Reader`]). So no worker forwards another frame once
//!   the detecting worker's verdict is out. The keeper takes fresh entries into its table
//!   ([`Table::take`]) and trims the list once a snapshot holds them.
//! - Publication is an `Arc` swap under a mutex held only for that pointer store or an `Arc`
//!   clone; nobody does work under it.
//!
//! Bounds: the fresh list holds at most [`Table::FRESH_CAP`] entries (a worker's further entries
//! are refused and counted by the table's client); the command channel holds
//! [`COMMAND_QUEUE`] commands. Nobody waits on it: a worker only sends wake-ups, and a lost
//! wake-up loses nothing (the keeper reads the fresh list on its tick); a control-plane command
//! that finds the channel full is refused ([`Refused::Full`]), counted
//! ([`Control::refused_commands`]) and answered as a full table is (the API's 503).

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::event::Event;
use crate::time::Timestamp;

/// Depth of a keeper's command channel.
pub const COMMAND_QUEUE: usize = 4096;

/// Commands a keeper applies in one batch before it publishes and looks at the clock again, so
/// a flood of commands cannot hold off expiry or a stop request.
pub const BATCH: usize = 4096;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned mutex only means a panic elsewhere while a pointer was stored or cloned, or a
    // vector appended to; what is inside is whole.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a keeper keeps: the table's own state and rules; the keeper brings the rest.
pub trait Table: Sized {
    /// What a worker appends to the fresh list.
    type Item: Clone + Debug + Send + Sync;
    /// What workers read: an immutable view at one generation.
    type Snapshot: Debug + Default + Send + Sync;
    /// The control plane's commands.
    type Command: Debug + Send;
    /// State both sides share beside the table (counters, serial numbers).
    type Extra: Debug + Default + Send + Sync;
    /// The keeper's counters.
    type Stats;
    /// Fresh entries the list holds at most: the keeper takes them within one tick, so this is
    /// only reached when it is stalled.
    const FRESH_CAP: usize;

    /// Take one entry a worker appended; report it.
    fn take(&mut self, item: &Self::Item, book: &mut Book<Self>, on_event: &mut impl FnMut(Event));
    /// Apply one command of the control plane.
    fn apply(
        &mut self,
        cmd: Self::Command,
        book: &mut Book<Self>,
        on_event: &mut impl FnMut(Event),
    );
    /// Remove and report what is over by `now`.
    fn expire(&mut self, now: Timestamp, book: &mut Book<Self>, on_event: &mut impl FnMut(Event));
    /// When the next entry ends.
    fn next_expiry(&self) -> Option<Timestamp>;
    /// The snapshot of the table as it is, numbered `generation`.
    fn snapshot(&self, generation: u64) -> Self::Snapshot;
    /// The counters.
    fn stats(&self) -> Self::Stats;
    /// Entries in the table (ended ones not yet removed included).
    fn len(&self) -> usize;
    /// Whether the table is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Entries workers made that the keeper has not yet published. Append-only for workers; the
/// keeper removes a prefix once a snapshot holds it. `list[i]` has the absolute index `base + i`.
#[derive(Debug)]
pub struct Fresh<I> {
    base: u64,
    list: Vec<I>,
}

impl<I> Fresh<I> {
    /// Absolute index of the first entry.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Absolute index the next entry gets.
    pub fn end(&self) -> u64 {
        self.base + self.list.len() as u64
    }

    /// The entries.
    pub fn items(&self) -> &[I] {
        &self.list
    }

    /// The entries from absolute index `from` on, with their indexes.
    pub fn since(&self, from: u64) -> impl Iterator<Item = (u64, &I)> {
        let skip = usize::try_from(from.saturating_sub(self.base)).unwrap_or(usize::MAX);
        let base = self.base;
        self.list
            .iter()
            .enumerate()
            .skip(skip)
            .map(move |(i, e)| (base + i as u64, e))
    }
}

/// What the keeper, its control handles and the workers share.
#[derive(Debug)]
pub struct Shared<T: Table> {
    // Moves on every publication and every fresh entry: a worker that saw this value has seen
    // both the snapshot and the fresh list as they were then.
    version: AtomicU64,
    current: Mutex<Arc<T::Snapshot>>,
    fresh: Mutex<Fresh<T::Item>>,
    // Commands put in the channel, so the keeper can tell it is empty without taking from it.
    sent: AtomicU64,
    // Control-plane commands refused because the channel was full.
    refused: AtomicU64,
    extra: T::Extra,
}

impl<T: Table> Shared<T> {
    fn load(&self) -> Arc<T::Snapshot> {
        Arc::clone(&lock(&self.current))
    }

    fn bump(&self) {
        self.version.fetch_add(1, Ordering::Release);
    }

    /// The table's own shared state.
    pub fn extra(&self) -> &T::Extra {
        &self.extra
    }
}

/// A message to a keeper: the keeper's own, or a command of its table.
#[derive(Debug)]
pub enum Msg<C> {
    /// A worker appended to the fresh list: take it now rather than at the next tick.
    Wake,
    /// Report what is over by `now` and publish, then answer (a listing that must not show an
    /// ended entry asks first).
    Expire {
        /// The clock's time.
        now: Timestamp,
        /// Answered once done.
        reply: Sender<()>,
    },
    /// A command of the table.
    Table(C),
}

/// The keeper's own state, which a [`Table`] reaches through its methods: mark a change, publish
/// before answering, read the shared state.
#[derive(Debug)]
pub struct Book<T: Table> {
    shared: Arc<Shared<T>>,
    generation: u64,
    dirty: bool,
    // Absolute index of the first fresh entry not yet taken into the table.
    fresh_taken: u64,
    // The shared version when the fresh list was last read: unchanged, nothing was appended
    // (replay asks after every frame; this keeps that to one atomic load).
    fresh_version: u64,
    // Commands taken from the channel (see `Shared::sent`).
    received: u64,
    published: u64,
}

impl<T: Table> Book<T> {
    /// The table changed: publish at the end of the batch.
    pub fn changed(&mut self) {
        self.dirty = true;
    }

    /// The state shared with the workers and the control plane.
    pub fn shared(&self) -> &Shared<T> {
        &self.shared
    }

    /// The generation of the last snapshot published.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Publish a new snapshot of `table` if anything changed since the last one, then drop the
    /// fresh entries it now holds (in that order: a worker reads the fresh list before the
    /// snapshot, so it never sees neither).
    pub fn publish(&mut self, table: &T) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        self.generation += 1;
        self.published += 1;
        *lock(&self.shared.current) = Arc::new(table.snapshot(self.generation));
        {
            let mut f = lock(&self.shared.fresh);
            let n = usize::try_from(self.fresh_taken.saturating_sub(f.base))
                .unwrap_or(usize::MAX)
                .min(f.list.len());
            f.list.drain(..n);
            f.base += n as u64;
        }
        self.shared.bump();
    }

    /// Take the entries workers appended since the last call into `table`.
    pub fn take_fresh(&mut self, table: &mut T, on_event: &mut impl FnMut(Event)) {
        let version = self.shared.version.load(Ordering::Acquire);
        if version == self.fresh_version {
            return;
        }
        self.fresh_version = version;
        // Copied out: workers append under this lock, so no work is done under it.
        let items: Vec<T::Item> = {
            let f = lock(&self.shared.fresh);
            let from = self.fresh_taken;
            self.fresh_taken = f.end();
            f.since(from).map(|(_, item)| item.clone()).collect()
        };
        if items.is_empty() {
            return;
        }
        // The list is trimmed at the next publication.
        self.dirty = true;
        for item in &items {
            table.take(item, self, on_event);
        }
    }
}

/// The single writer of a table.
#[derive(Debug)]
pub struct Keeper<T: Table> {
    table: T,
    book: Book<T>,
    rx: Receiver<Msg<T::Command>>,
}

/// A new table's handles: its keeper, a control handle, and one client per worker, which
/// `client` makes around the worker's [`Reader`].
pub fn new<T: Table, C>(
    table: T,
    workers: usize,
    client: impl FnMut(Reader<T>) -> C,
) -> (Keeper<T>, Control<T>, Vec<C>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(COMMAND_QUEUE);
    let shared = Arc::new(Shared::<T> {
        version: AtomicU64::new(0),
        current: Mutex::new(Arc::new(T::Snapshot::default())),
        fresh: Mutex::new(Fresh {
            base: 0,
            list: Vec::new(),
        }),
        sent: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        extra: T::Extra::default(),
    });
    let clients = (0..workers)
        .map(|_| Reader {
            shared: Arc::clone(&shared),
            seen: 0,
            wake: tx.clone(),
        })
        .map(client)
        .collect();
    let keeper = Keeper {
        table,
        book: Book {
            shared: Arc::clone(&shared),
            generation: 0,
            dirty: false,
            fresh_taken: 0,
            fresh_version: 0,
            received: 0,
            published: 0,
        },
        rx,
    };
    (keeper, Control { tx, shared }, clients)
}

impl<T: Table> Keeper<T> {
    /// The table.
    pub fn table(&self) -> &T {
        &self.table
    }

    /// The counters.
    pub fn stats(&self) -> T::Stats {
        self.table.stats()
    }

    /// Snapshots published.
    pub fn published(&self) -> u64 {
        self.book.published
    }

    /// When the next entry ends.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.table.next_expiry()
    }

    /// Entries in the table (ended ones not yet removed included).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Whether [`Self::expire`] at `now` followed by [`Self::publish`] would do anything: an
    /// entry ends by then, or a change is not yet published. Lets a caller that steps the keeper
    /// around every frame (replay) skip the step when it would be idle.
    pub fn expiry_due(&self, now: Timestamp) -> bool {
        self.book.dirty || self.next_expiry().is_some_and(|t| t <= now)
    }

    /// Whether [`Self::drain`] followed by [`Self::publish`] would do anything: the fresh list
    /// moved since the keeper last read it, a command waits in the channel, or a change is not
    /// yet published. Two atomic loads.
    pub fn has_news(&self) -> bool {
        let s = &self.book.shared;
        self.book.dirty
            || s.version.load(Ordering::Acquire) != self.book.fresh_version
            || s.sent.load(Ordering::Acquire) != self.book.received
    }

    /// Take the entries workers appended since the last call: each becomes a table entry and an
    /// event.
    pub fn take_fresh(&mut self, on_event: &mut impl FnMut(Event)) {
        self.book.take_fresh(&mut self.table, on_event);
    }

    /// Apply one command of the table.
    pub fn apply(&mut self, cmd: T::Command, on_event: &mut impl FnMut(Event)) {
        self.table.apply(cmd, &mut self.book, on_event);
    }

    fn apply_msg(&mut self, msg: Msg<T::Command>, on_event: &mut impl FnMut(Event)) {
        match msg {
            Msg::Wake => self.take_fresh(on_event),
            Msg::Expire { now, reply } => {
                self.take_fresh(on_event);
                self.expire(now, on_event);
                self.publish();
                let _ = reply.send(());
            }
            Msg::Table(cmd) => self.apply(cmd, on_event),
        }
    }

    /// Remove and report every entry over by `now`.
    pub fn expire(&mut self, now: Timestamp, on_event: &mut impl FnMut(Event)) {
        self.table.expire(now, &mut self.book, on_event);
    }

    /// Publish a snapshot if anything changed since the last one.
    pub fn publish(&mut self) {
        self.book.publish(&self.table);
    }

    /// Take the fresh entries and apply every command waiting in the channel. Returns false once
    /// every sender is gone.
    pub fn drain(&mut self, on_event: &mut impl FnMut(Event)) -> bool {
        self.take_fresh(on_event);
        self.apply_waiting(usize::MAX, on_event)
    }

    /// Apply at most `limit` commands waiting in the channel. Returns false once every sender is
    /// gone.
    fn apply_waiting(&mut self, limit: usize, on_event: &mut impl FnMut(Event)) -> bool {
        for _ in 0..limit {
            match self.rx.try_recv() {
                Ok(msg) => {
                    self.book.received += 1;
                    self.apply_msg(msg, on_event);
                }
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
        true
    }

    /// The keeper's loop: apply commands as they come (at most [`BATCH`] before it looks at the
    /// clock and `stop` again), expire on `clock`, publish after each batch; returns when `stop`
    /// says so or every sender is gone. `tick` bounds how long an expiry or a fresh entry waits
    /// to be reported.
    pub fn run(
        self,
        stop: &AtomicBool,
        clock: impl Fn() -> Timestamp,
        tick: Duration,
        on_event: impl FnMut(Event),
    ) -> T::Stats {
        self.run_with(stop, clock, tick, on_event, |_| {})
    }

    /// [`Self::run`], and after each publication `on_publish` gets the table (the daemon stores
    /// the isolations in force, so a restart restores them).
    pub fn run_with(
        mut self,
        stop: &AtomicBool,
        clock: impl Fn() -> Timestamp,
        tick: Duration,
        mut on_event: impl FnMut(Event),
        mut on_publish: impl FnMut(&T),
    ) -> T::Stats {
        let mut seen = self.book.generation;
        let mut alive = true;
        while alive && !stop.load(Ordering::Relaxed) {
            match self.rx.recv_timeout(tick) {
                Ok(msg) => {
                    self.book.received += 1;
                    self.take_fresh(&mut on_event);
                    self.apply_msg(msg, &mut on_event);
                    alive = self.apply_waiting(BATCH, &mut on_event);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => alive = false,
            }
            self.take_fresh(&mut on_event);
            self.expire(clock(), &mut on_event);
            self.publish();
            self.published_to(&mut seen, &mut on_publish);
        }
        // Entries made just before the stop still produce their events; one batch at most, so
        // a flood cannot hold the stop off.
        self.take_fresh(&mut on_event);
        self.apply_waiting(BATCH, &mut on_event);
        self.publish();
        self.published_to(&mut seen, &mut on_publish);
        self.stats()
    }

    fn published_to(&self, seen: &mut u64, on_publish: &mut impl FnMut(&T)) {
        if *seen != self.book.generation {
            *seen = self.book.generation;
            on_publish(&self.table);
        }
    }

    /// The table and the keeper's book, for a table's own operations.
    pub(crate) fn parts(&mut self) -> (&mut T, &mut Book<T>) {
        (&mut self.table, &mut self.book)
    }
}

/// Why a command did not reach the keeper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The command channel is full ([`COMMAND_QUEUE`]): refused, counted, not applied.
    Full,
    /// The keeper is gone (the dataplane is stopping).
    Gone,
}

/// The control plane's handle: read the published snapshot, send commands to the keeper.
#[derive(Debug)]
pub struct Control<T: Table> {
    tx: SyncSender<Msg<T::Command>>,
    shared: Arc<Shared<T>>,
}

impl<T: Table> Clone for Control<T> {
    fn clone(&self) -> Self {
        Control {
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T: Table> Control<T> {
    /// The current snapshot (hold it as long as you like: it is immutable).
    pub fn snapshot(&self) -> Arc<T::Snapshot> {
        self.shared.load()
    }

    /// The fresh list (entries workers made that no snapshot holds yet).
    pub fn fresh(&self) -> MutexGuard<'_, Fresh<T::Item>> {
        lock(&self.shared.fresh)
    }

    /// The state shared with the keeper and the workers.
    pub fn shared(&self) -> &Shared<T> {
        &self.shared
    }

    fn send_msg(&self, msg: Msg<T::Command>) -> Result<(), Refused> {
        // Counted before it is sent, so the keeper never sees more received than sent.
        self.shared.sent.fetch_add(1, Ordering::Release);
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.shared.sent.fetch_sub(1, Ordering::Release);
                match e {
                    TrySendError::Full(_) => {
                        self.shared.refused.fetch_add(1, Ordering::Relaxed);
                        Err(Refused::Full)
                    }
                    TrySendError::Disconnected(_) => Err(Refused::Gone),
                }
            }
        }
    }

    /// Send a command to the keeper without waiting; a full channel refuses it (counted).
    pub fn send(&self, cmd: T::Command) -> Result<(), Refused> {
        self.send_msg(Msg::Table(cmd))
    }

    /// Send the command `make` builds around a reply channel, and wait for the keeper's answer.
    pub fn ask<R>(&self, make: impl FnOnce(Sender<R>) -> T::Command) -> Result<R, Refused> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.send(make(tx))?;
        rx.recv().map_err(|_| Refused::Gone)
    }

    /// Have the keeper report what is over by `now` and publish; false if it is gone or busy.
    pub fn expire(&self, now: Timestamp) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        self.send_msg(Msg::Expire { now, reply: tx }).is_ok() && rx.recv().is_ok()
    }

    /// Commands refused so far because the channel was full.
    pub fn refused_commands(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }
}

/// A worker's handle: the version it last saw, the snapshot and the fresh list, and a lossy
/// wake-up for the keeper.
#[derive(Debug)]
pub struct Reader<T: Table> {
    shared: Arc<Shared<T>>,
    seen: u64,
    wake: SyncSender<Msg<T::Command>>,
}

impl<T: Table> Reader<T> {
    /// Whether the table moved since the last call that said so: one atomic load.
    #[inline]
    pub fn moved(&mut self) -> bool {
        let v = self.shared.version.load(Ordering::Acquire);
        if v == self.seen {
            return false;
        }
        self.seen = v;
        true
    }

    /// The newest snapshot.
    pub fn snapshot(&self) -> Arc<T::Snapshot> {
        self.shared.load()
    }

    /// The shared state (its fresh list: [`Shared::fresh`]).
    pub fn shared(&self) -> &Arc<Shared<T>> {
        &self.shared
    }

    /// Wake the keeper up; lost when the channel is full (the keeper reads the fresh list on
    /// its tick anyway).
    pub fn wake(&self) {
        self.shared.sent.fetch_add(1, Ordering::Release);
        if self.wake.try_send(Msg::Wake).is_err() {
            // Not sent (the channel is full or the keeper gone): no longer counted.
            self.shared.sent.fetch_sub(1, Ordering::Release);
        }
    }
}

impl<T: Table> Shared<T> {
    /// The fresh list, locked.
    pub fn fresh(&self) -> MutexGuard<'_, Fresh<T::Item>> {
        lock(&self.fresh)
    }

    /// Append `item` to the locked fresh list `f` and bump the version (before the caller's
    /// verdict is out, every worker sees it); its absolute index, or `None` when the list is at
    /// [`Table::FRESH_CAP`] and nothing was appended.
    pub fn append(&self, f: &mut Fresh<T::Item>, item: T::Item) -> Option<u64> {
        if f.list.len() >= T::FRESH_CAP {
            return None;
        }
        let idx = f.end();
        f.list.push(item);
        self.bump();
        Some(idx)
    }

    /// The newest snapshot.
    pub fn snapshot(&self) -> Arc<T::Snapshot> {
        self.load()
    }
}
