//! The isolation table: one writer (the [`IsolationKeeper`]), immutable snapshots every worker
//! reads, and a shared list of fresh isolations that workers append to, as the block table does
//! ([`crate::shared_blocks`]).
//!
//! - A worker that isolates a VM automatically appends the isolation to the fresh list and bumps
//!   the shared version before its verdict is out; every worker loads the version (one atomic
//!   load) before it looks at a frame, and on a change copies the fresh list and the newest
//!   snapshot. So no worker forwards a frame of the VM once the detecting frame's verdict is out.
//! - The keeper takes fresh isolations into its table and reports them (`isolation_started`),
//!   applies administrators' commands ([`IsolationControl`]: enable, disable, list), expires
//!   isolations (`isolation_ended`, reason `expired`, at their own expiry time), and publishes a
//!   snapshot after each change. It is the only author of isolation events.
//! - An isolation is one `Arc` from the start: the frames dropped and the flows reset by every
//!   worker are counted in it, and the `isolation_ended` event reports them all.
//! - Expiry is compared with each frame's time by the workers, so an isolation ends on time to
//!   the microsecond even between two keeper steps (packet time in replay, the wall clock live).

use core::net::IpAddr;
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

use hashbrown::HashMap;
use policy::isolation::IsolationExclusion;
use vlan::VlanScope;

use super::vm::{MacFilter, Protected, ProtectedVm};
use crate::event::{Engine, Event, EventKind};
use crate::keeper::{Book, Control, Keeper, Reader, Refused, Table};
use crate::shared_blocks::Hasher;
use crate::time::Timestamp;

/// Who isolated a VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IsolationOrigin {
    /// An administrator (API, CLI, `svm replay --isolate`).
    Manual {
        /// The administrator's note.
        note: String,
    },
    /// A detection whose source is the VM (`isolation.automatic`).
    Automatic {
        /// The detecting engine.
        engine: Engine,
        /// The detection's name (attack or rule message).
        signature: Cow<'static, str>,
        /// Its signature id.
        sid: u32,
        /// The flow of the detecting packet.
        flow_id: Option<u64>,
    },
}

impl IsolationOrigin {
    /// `manual` or `automatic`.
    pub const fn name(&self) -> &'static str {
        match self {
            IsolationOrigin::Manual { .. } => "manual",
            IsolationOrigin::Automatic { .. } => "automatic",
        }
    }
}

/// Why an isolation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsolationEnd {
    /// An administrator released it.
    Manual,
    /// Its time was up.
    Expired,
}

impl IsolationEnd {
    /// `manual` or `expired`.
    pub const fn name(self) -> &'static str {
        match self {
            IsolationEnd::Manual => "manual",
            IsolationEnd::Expired => "expired",
        }
    }
}

/// What happened to an isolation (the payload of [`EventKind::Isolation`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IsolationChange {
    /// The VM is isolated.
    Started {
        /// Who isolated it.
        origin: IsolationOrigin,
        /// When it ends.
        expires: Timestamp,
        /// Its duration.
        duration_secs: u64,
        /// The exclusions in force (their short descriptions).
        exclusions: Vec<String>,
        /// TCP flows reset so far (the detecting worker's, for an automatic isolation; the
        /// other workers reset theirs before their next frame of the VM, and
        /// `isolation_ended` reports the total).
        flows_reset: u64,
    },
    /// The VM is released.
    Ended {
        /// Why.
        reason: IsolationEnd,
        /// Who had isolated it.
        origin: IsolationOrigin,
        /// When it started.
        started: Timestamp,
        /// Frames of the VM dropped while it lasted.
        dropped: u64,
        /// TCP flows reset when it started (every worker's).
        flows_reset: u64,
    },
    /// Monitoring mode: the policy would have isolated the VM.
    WouldIsolate {
        /// The detection.
        origin: IsolationOrigin,
        /// The duration it would have had.
        duration_secs: u64,
    },
}

/// One isolation: fixed when made, plus counters every worker adds to.
#[derive(Debug)]
pub struct IsolationEntry {
    /// The VM.
    pub vm: Arc<ProtectedVm>,
    /// Process-unique number: tells a new isolation of a VM from an earlier one.
    pub serial: u64,
    /// When it started.
    pub started: Timestamp,
    /// When it ends.
    pub expires: Timestamp,
    /// What stays open.
    pub exclusions: Arc<[IsolationExclusion]>,
    /// Who isolated the VM.
    pub origin: IsolationOrigin,
    dropped: AtomicU64,
    flows_reset: AtomicU64,
}

impl IsolationEntry {
    /// Frames of the VM dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// TCP flows reset so far.
    pub fn flows_reset(&self) -> u64 {
        self.flows_reset.load(Ordering::Relaxed)
    }

    pub(super) fn count_drop(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_resets(&self, n: u64) {
        self.flows_reset.fetch_add(n, Ordering::Relaxed);
    }

    /// A plain copy for listings.
    pub fn info(&self) -> IsolationInfo {
        IsolationInfo {
            vm: Arc::clone(&self.vm),
            started: self.started,
            expires: self.expires,
            exclusions: self.exclusions.to_vec(),
            origin: self.origin.clone(),
            dropped: self.dropped(),
            flows_reset: self.flows_reset(),
        }
    }

    fn started_event(&self) -> Event {
        Event {
            ts: self.started,
            pcap_cnt: None,
            kind: EventKind::Isolation {
                vm: Arc::clone(&self.vm),
                change: IsolationChange::Started {
                    origin: self.origin.clone(),
                    expires: self.expires,
                    duration_secs: self.expires.since(self.started) / Timestamp::SECOND,
                    exclusions: self.exclusions.iter().map(|e| e.describe()).collect(),
                    flows_reset: self.flows_reset(),
                },
            },
        }
    }

    fn ended_event(&self, ts: Timestamp, reason: IsolationEnd) -> Event {
        self.info().ended_event(ts, reason)
    }
}

impl IsolationInfo {
    /// `isolation_ended` at `ts`: the keeper's, and the daemon's at start for an isolation that
    /// ended while it was stopped.
    pub fn ended_event(&self, ts: Timestamp, reason: IsolationEnd) -> Event {
        Event {
            ts,
            pcap_cnt: None,
            kind: EventKind::Isolation {
                vm: Arc::clone(&self.vm),
                change: IsolationChange::Ended {
                    reason,
                    origin: self.origin.clone(),
                    started: self.started,
                    dropped: self.dropped,
                    flows_reset: self.flows_reset,
                },
            },
        }
    }
}

/// An isolation as listings show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsolationInfo {
    /// The VM.
    pub vm: Arc<ProtectedVm>,
    /// When it started.
    pub started: Timestamp,
    /// When it ends.
    pub expires: Timestamp,
    /// What stays open.
    pub exclusions: Vec<IsolationExclusion>,
    /// Who isolated the VM.
    pub origin: IsolationOrigin,
    /// Frames dropped so far.
    pub dropped: u64,
    /// TCP flows reset so far.
    pub flows_reset: u64,
}

/// Why an administrator's request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IsolationError {
    /// No protected VM has that id.
    #[error("no protected VM {0:?} in the inventory")]
    UnknownVm(String),
    /// The VM is isolated already (disable it first to change the isolation).
    #[error("VM {0:?} is isolated already")]
    AlreadyIsolated(String),
    /// The VM is not isolated.
    #[error("VM {0:?} is not isolated")]
    NotIsolated(String),
    /// The duration is outside 1..=43200 minutes.
    #[error("duration {0} s: an isolation lasts 1 to 43200 minutes")]
    Duration(u64),
    /// The keeper is gone (the dataplane is stopping).
    #[error("the isolation keeper is not running")]
    Gone,
    /// The keeper's command channel is full: refused, counted, not applied (try again).
    #[error("the isolation keeper is busy: too many requests waiting")]
    Busy,
}

/// An immutable view of the isolations at one generation.
#[derive(Debug, Default)]
pub struct IsolationSnapshot {
    generation: u64,
    entries: Vec<Arc<IsolationEntry>>,
    by_mac: HashMap<(VlanScope, [u8; 6]), usize, Hasher>,
    // Entries of VMs with an interface the inventory gives no MAC: matched by address.
    by_addr: Vec<usize>,
    macs: MacFilter,
}

impl IsolationSnapshot {
    fn new(generation: u64, entries: Vec<Arc<IsolationEntry>>) -> Self {
        let mut by_mac = HashMap::with_hasher(Hasher::default());
        let mut by_addr = Vec::new();
        let mut macs = MacFilter::default();
        for (i, e) in entries.iter().enumerate() {
            for nic in &e.vm.nics {
                match nic.mac {
                    Some(mac) => {
                        macs.insert(mac);
                        by_mac.insert((nic.scope, mac), i);
                    }
                    None if !by_addr.contains(&i) => by_addr.push(i),
                    None => {}
                }
            }
        }
        IsolationSnapshot {
            generation,
            entries,
            by_mac,
            by_addr,
            macs,
        }
    }

    /// Generation (0 = none published yet).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The isolations (expired ones not yet removed included).
    pub fn entries(&self) -> &[Arc<IsolationEntry>] {
        &self.entries
    }

    /// The isolation in force at `now` for a frame, and whether the VM sent the frame.
    #[inline]
    fn find(&self, f: &FrameIds, now: Timestamp) -> Option<(&Arc<IsolationEntry>, bool)> {
        let live = |i: &usize| self.entries.get(*i).filter(|e| e.expires > now);
        if let Some(e) = self.by_mac.get(&(f.scope, f.eth_src)).and_then(live) {
            return Some((e, true));
        }
        if let Some(e) = self.by_mac.get(&(f.scope, f.eth_dst)).and_then(live) {
            return Some((e, false));
        }
        self.by_addr.iter().filter_map(live).find_map(|e| {
            e.vm.side(f.scope, f.eth_src, f.eth_dst, f.ips)
                .map(|side| (e, side))
        })
    }
}

/// What identifies a frame's VM.
#[derive(Clone, Copy, Debug)]
pub struct FrameIds {
    /// VLAN scope.
    pub scope: VlanScope,
    /// Source MAC.
    pub eth_src: [u8; 6],
    /// Destination MAC.
    pub eth_dst: [u8; 6],
    /// Source and destination addresses, for IP frames.
    pub ips: Option<(IpAddr, IpAddr)>,
}

/// What the isolation table shares beside the keeper's own state.
#[derive(Debug, Default)]
pub struct IsolationShared {
    // The last serial number given (the first isolation gets 1).
    last_serial: AtomicU64,
}

impl IsolationShared {
    fn serial(&self) -> u64 {
        self.last_serial.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Messages to the keeper, besides its own wake-ups and expiry requests.
#[derive(Debug)]
pub enum Command {
    /// An administrator's isolation.
    Enable {
        /// The VM's id.
        vm: String,
        /// From when.
        now: Timestamp,
        /// For how long.
        duration_secs: u64,
        /// What stays open.
        exclusions: Vec<IsolationExclusion>,
        /// The administrator's note.
        note: String,
        /// Where to send the outcome.
        reply: Option<Sender<Result<IsolationInfo, IsolationError>>>,
    },
    /// An administrator's release.
    Disable {
        /// The VM's id.
        vm: String,
        /// When.
        now: Timestamp,
        /// Where to send the outcome (the isolation as it ended).
        reply: Option<Sender<Result<IsolationInfo, IsolationError>>>,
    },
    /// An isolation kept in the store, back at start with its own times and origin; no event
    /// (it was reported when it was made).
    Restore {
        /// The isolation.
        info: IsolationInfo,
    },
}

/// Cap on fresh isolations waiting for the keeper (a VM is isolated once, and the inventory
/// holds at most 65,536 VMs, so this is only reached when the keeper is stalled).
pub const FRESH_CAP: usize = 1 << 16;

/// The handles of a new isolation table.
#[derive(Debug)]
pub struct SharedIsolation {
    /// The writer: [`Keeper::run`] on its own thread, or driven by replay.
    pub keeper: IsolationKeeper,
    /// For the control plane (clone freely).
    pub control: IsolationControl,
    /// One per worker.
    pub clients: Vec<IsolationClient>,
}

impl SharedIsolation {
    /// A table over the protected VMs `protected`, for `workers` workers.
    pub fn new(protected: Arc<Protected>, workers: usize) -> SharedIsolation {
        let table = IsolationTable {
            entries: HashMap::with_hasher(Hasher::default()),
            protected: Arc::clone(&protected),
            stats: KeeperStats::default(),
            soonest: None,
        };
        let (keeper, control, clients) = crate::keeper::new(table, workers, |reader| {
            IsolationClient::new(reader, Arc::clone(&protected))
        });
        SharedIsolation {
            keeper,
            control: IsolationControl {
                inner: control,
                protected,
            },
            clients,
        }
    }
}

/// Counters of the keeper.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeeperStats {
    /// Isolations started (automatic and manual).
    pub started: u64,
    /// Isolations that ended on time.
    pub expired: u64,
    /// Isolations released by an administrator.
    pub released: u64,
}

/// The isolation table the keeper owns.
#[derive(Debug)]
pub struct IsolationTable {
    entries: HashMap<Arc<str>, Arc<IsolationEntry>, Hasher>,
    protected: Arc<Protected>,
    stats: KeeperStats,
    // The earliest expiry in the table: replay asks to expire before every frame.
    soonest: Option<Timestamp>,
}

/// The single writer of the isolation table.
pub type IsolationKeeper = Keeper<IsolationTable>;

fn check_duration(secs: u64) -> Result<(), IsolationError> {
    let ok = (u64::from(policy::isolation::IsolationMinutes::MIN) * 60
        ..=u64::from(policy::isolation::IsolationMinutes::MAX) * 60)
        .contains(&secs);
    if ok {
        Ok(())
    } else {
        Err(IsolationError::Duration(secs))
    }
}

impl Table for IsolationTable {
    type Item = Arc<IsolationEntry>;
    type Snapshot = IsolationSnapshot;
    type Command = Command;
    type Extra = IsolationShared;
    type Stats = KeeperStats;
    const FRESH_CAP: usize = FRESH_CAP;

    /// A worker's isolation joins the table and is reported.
    fn take(
        &mut self,
        e: &Arc<IsolationEntry>,
        book: &mut Book<Self>,
        on_event: &mut impl FnMut(Event),
    ) {
        if self
            .entries
            .get(&e.vm.id)
            .is_some_and(|old| old.expires > e.started)
        {
            // Two workers isolated the VM in the same instant: the first one stands.
            return;
        }
        self.stats.started += 1;
        on_event(e.started_event());
        self.entries.insert(Arc::clone(&e.vm.id), Arc::clone(e));
        self.changed(book);
    }

    fn apply(&mut self, cmd: Command, book: &mut Book<Self>, on_event: &mut impl FnMut(Event)) {
        match cmd {
            Command::Enable {
                vm,
                now,
                duration_secs,
                exclusions,
                note,
                reply,
            } => {
                let r = check_duration(duration_secs).and_then(|()| {
                    self.settle(now, book, on_event);
                    let e = Arc::new(IsolationEntry {
                        vm: self.vacant(&vm)?,
                        serial: book.shared().extra().serial(),
                        started: now,
                        expires: now.plus_secs(duration_secs),
                        exclusions: exclusions.into(),
                        origin: IsolationOrigin::Manual { note },
                        dropped: AtomicU64::new(0),
                        flows_reset: AtomicU64::new(0),
                    });
                    self.stats.started += 1;
                    on_event(e.started_event());
                    let info = e.info();
                    self.entries.insert(Arc::clone(&e.vm.id), e);
                    self.changed(book);
                    Ok(info)
                });
                book.publish(self);
                if let Some(tx) = reply {
                    let _ = tx.send(r);
                }
            }
            Command::Disable { vm, now, reply } => {
                self.settle(now, book, on_event);
                let r = self.release(&vm, book).map(|e| {
                    on_event(e.ended_event(now, IsolationEnd::Manual));
                    e.info()
                });
                book.publish(self);
                if let Some(tx) = reply {
                    let _ = tx.send(r);
                }
            }
            Command::Restore { info } => {
                let now = info.started;
                let _ = self.restore(info, now, book);
            }
        }
    }

    /// Remove and report every isolation over by `now` (each at its own expiry time).
    fn expire(&mut self, now: Timestamp, book: &mut Book<Self>, on_event: &mut impl FnMut(Event)) {
        if self.soonest.is_none_or(|t| t > now) {
            return;
        }
        let mut over: Vec<Arc<IsolationEntry>> = self
            .entries
            .values()
            .filter(|e| e.expires <= now)
            .cloned()
            .collect();
        over.sort_by(|a, b| (a.expires, &a.vm.id).cmp(&(b.expires, &b.vm.id)));
        for e in over {
            self.entries.remove(&e.vm.id);
            self.stats.expired += 1;
            on_event(e.ended_event(e.expires, IsolationEnd::Expired));
        }
        self.changed(book);
    }

    fn next_expiry(&self) -> Option<Timestamp> {
        self.soonest
    }

    fn snapshot(&self, generation: u64) -> IsolationSnapshot {
        let mut entries: Vec<Arc<IsolationEntry>> = self.entries.values().cloned().collect();
        entries.sort_by(|a, b| a.vm.id.cmp(&b.vm.id));
        IsolationSnapshot::new(generation, entries)
    }

    fn stats(&self) -> KeeperStats {
        self.stats
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

impl IsolationTable {
    /// The table changed: a new snapshot is due, and the earliest expiry may have moved.
    fn changed(&mut self, book: &mut Book<Self>) {
        book.changed();
        self.soonest = self.entries.values().map(|e| e.expires).min();
    }

    /// The isolations in force, sorted by VM id.
    pub fn infos(&self) -> Vec<IsolationInfo> {
        let mut all: Vec<IsolationInfo> = self.entries.values().map(|e| e.info()).collect();
        all.sort_by(|a, b| a.vm.id.cmp(&b.vm.id));
        all
    }

    /// Before an administrator's change at `now`: take the workers' isolations and report the
    /// ones over.
    fn settle(&mut self, now: Timestamp, book: &mut Book<Self>, on_event: &mut impl FnMut(Event)) {
        book.take_fresh(self, on_event);
        Table::expire(self, now, book, on_event);
    }

    /// The protected VM `vm`, if it is not isolated.
    fn vacant(&self, vm: &str) -> Result<Arc<ProtectedVm>, IsolationError> {
        let Some(pvm) = self.protected.get(vm) else {
            return Err(IsolationError::UnknownVm(vm.to_owned()));
        };
        if self.entries.contains_key(vm) {
            return Err(IsolationError::AlreadyIsolated(vm.to_owned()));
        }
        Ok(Arc::clone(pvm))
    }

    /// The isolation of `vm` leaves the table.
    fn release(
        &mut self,
        vm: &str,
        book: &mut Book<Self>,
    ) -> Result<Arc<IsolationEntry>, IsolationError> {
        let Some(e) = self.entries.remove(vm) else {
            return Err(if self.protected.get(vm).is_some() {
                IsolationError::NotIsolated(vm.to_owned())
            } else {
                IsolationError::UnknownVm(vm.to_owned())
            });
        };
        self.changed(book);
        self.stats.released += 1;
        Ok(e)
    }

    fn restore(
        &mut self,
        info: IsolationInfo,
        now: Timestamp,
        book: &mut Book<Self>,
    ) -> Result<(), IsolationError> {
        let Some(pvm) = self.protected.get(&info.vm.id) else {
            return Err(IsolationError::UnknownVm(info.vm.id.to_string()));
        };
        if info.expires <= now {
            return Err(IsolationError::NotIsolated(info.vm.id.to_string()));
        }
        let e = Arc::new(IsolationEntry {
            vm: Arc::clone(pvm),
            serial: book.shared().extra().serial(),
            started: info.started,
            expires: info.expires,
            exclusions: info.exclusions.into(),
            origin: info.origin,
            dropped: AtomicU64::new(info.dropped),
            flows_reset: AtomicU64::new(info.flows_reset),
        });
        self.entries.insert(Arc::clone(&e.vm.id), e);
        self.changed(book);
        Ok(())
    }
}

/// Where the keeper sends an administrator's outcome.
type Reply = Sender<Result<IsolationInfo, IsolationError>>;

/// The command isolating `vm` from `now` for `duration_secs`, answered on the channel given.
fn enable_cmd(
    vm: &str,
    now: Timestamp,
    duration_secs: u64,
    exclusions: Vec<IsolationExclusion>,
    note: String,
) -> impl FnOnce(Reply) -> Command {
    let vm = vm.to_owned();
    move |reply| Command::Enable {
        vm,
        now,
        duration_secs,
        exclusions,
        note,
        reply: Some(reply),
    }
}

/// The command releasing `vm` at `now`, answered on the channel given.
fn disable_cmd(vm: &str, now: Timestamp) -> impl FnOnce(Reply) -> Command {
    let vm = vm.to_owned();
    move |reply| Command::Disable {
        vm,
        now,
        reply: Some(reply),
    }
}

impl Keeper<IsolationTable> {
    /// Apply the command `make` builds and return its answer.
    fn answer(
        &mut self,
        make: impl FnOnce(Reply) -> Command,
        on_event: &mut impl FnMut(Event),
    ) -> Result<IsolationInfo, IsolationError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.apply(make(tx), on_event);
        rx.try_recv().unwrap_or(Err(IsolationError::Gone))
    }

    /// Isolate `vm` as an administrator, and publish.
    pub fn enable(
        &mut self,
        vm: &str,
        now: Timestamp,
        duration_secs: u64,
        exclusions: Vec<IsolationExclusion>,
        note: String,
        on_event: &mut impl FnMut(Event),
    ) -> Result<IsolationInfo, IsolationError> {
        let cmd = enable_cmd(vm, now, duration_secs, exclusions, note);
        self.answer(cmd, on_event)
    }

    /// Release `vm` as an administrator, and publish.
    pub fn disable(
        &mut self,
        vm: &str,
        now: Timestamp,
        on_event: &mut impl FnMut(Event),
    ) -> Result<IsolationInfo, IsolationError> {
        self.answer(disable_cmd(vm, now), on_event)
    }

    /// Put back an isolation kept in the store (no event). Refused for a VM that is no longer in
    /// the inventory or whose isolation is over by `now`.
    pub fn restore(&mut self, info: IsolationInfo, now: Timestamp) -> Result<(), IsolationError> {
        let (table, book) = self.parts();
        table.restore(info, now, book)
    }

    /// [`Keeper::run`], and after each publication that changed the table `on_change` gets the
    /// isolations in force (the daemon stores them, so a restart restores them).
    pub fn run_saving(
        self,
        stop: &std::sync::atomic::AtomicBool,
        clock: impl Fn() -> Timestamp,
        tick: Duration,
        on_event: impl FnMut(Event),
        mut on_change: impl FnMut(Vec<IsolationInfo>),
    ) -> KeeperStats {
        self.run_with(stop, clock, tick, on_event, |t| on_change(t.infos()))
    }
}

/// The control plane's handle: enable, disable, list.
#[derive(Clone, Debug)]
pub struct IsolationControl {
    inner: Control<IsolationTable>,
    protected: Arc<Protected>,
}

impl IsolationControl {
    /// The protected VMs the table knows.
    pub fn protected(&self) -> &Arc<Protected> {
        &self.protected
    }

    fn ask(&self, make: impl FnOnce(Reply) -> Command) -> Result<IsolationInfo, IsolationError> {
        self.inner.ask(make).map_err(|e| match e {
            Refused::Full => IsolationError::Busy,
            Refused::Gone => IsolationError::Gone,
        })?
    }

    /// Isolate `vm` from `now` for `duration_secs` with `exclusions`, and wait for the keeper.
    /// Once this returns, every worker drops the VM's frames before it forwards another.
    pub fn enable(
        &self,
        vm: &str,
        now: Timestamp,
        duration_secs: u64,
        exclusions: Vec<IsolationExclusion>,
        note: String,
    ) -> Result<IsolationInfo, IsolationError> {
        self.ask(enable_cmd(vm, now, duration_secs, exclusions, note))
    }

    /// Release `vm` and wait for the keeper: the isolation as it ended.
    pub fn disable(&self, vm: &str, now: Timestamp) -> Result<IsolationInfo, IsolationError> {
        self.ask(disable_cmd(vm, now))
    }

    /// Have the keeper report what expired by `now` and publish; false if it is gone or busy.
    pub fn expire(&self, now: Timestamp) -> bool {
        self.inner.expire(now)
    }

    /// Send a command without waiting; a full channel refuses it (counted).
    pub fn send(&self, cmd: Command) -> Result<(), Refused> {
        self.inner.send(cmd)
    }

    /// Commands refused so far because the keeper's channel was full.
    pub fn refused_commands(&self) -> u64 {
        self.inner.refused_commands()
    }

    /// The isolations in force at `now` (ask [`IsolationControl::expire`] first for events to
    /// be written for the ones over), sorted by VM id. Fresh ones the keeper has not yet taken
    /// are included.
    pub fn list(&self, now: Timestamp) -> Vec<IsolationInfo> {
        let fresh = self.inner.fresh().items().to_vec();
        let snap = self.inner.snapshot();
        let mut out: Vec<IsolationInfo> = Vec::new();
        for e in snap.entries.iter().chain(fresh.iter()) {
            if e.expires > now && !out.iter().any(|i| i.vm.id == e.vm.id) {
                out.push(e.info());
            }
        }
        out.sort_by(|a, b| a.vm.id.cmp(&b.vm.id));
        out
    }

    /// The isolation of one VM in force at `now`.
    pub fn get(&self, vm: &str, now: Timestamp) -> Option<IsolationInfo> {
        self.list(now).into_iter().find(|i| &*i.vm.id == vm)
    }
}

/// A worker's view of the table.
#[derive(Debug)]
pub struct IsolationClient {
    reader: Reader<IsolationTable>,
    protected: Arc<Protected>,
    snap: Arc<IsolationSnapshot>,
    fresh: Vec<Arc<IsolationEntry>>,
    // Whether any isolation is known: the per-frame fast path.
    any: bool,
    // The MACs of every known isolation, and whether one is known by address only.
    macs: MacFilter,
    by_addr: bool,
    // Serials of the isolations whose flows this worker has reset (only those still known).
    walked: Vec<u64>,
    // Isolations whose flows this worker has yet to reset.
    pending: Vec<Arc<IsolationEntry>>,
}

impl IsolationClient {
    fn new(reader: Reader<IsolationTable>, protected: Arc<Protected>) -> Self {
        IsolationClient {
            snap: reader.snapshot(),
            reader,
            protected,
            fresh: Vec::new(),
            any: false,
            macs: MacFilter::default(),
            by_addr: false,
            walked: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// The protected VMs.
    pub fn protected(&self) -> &Protected {
        &self.protected
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
        self.fresh = self.reader.shared().fresh().items().to_vec();
        self.snap = self.reader.snapshot();
        self.any = !self.fresh.is_empty() || !self.snap.entries.is_empty();
        self.macs = self.snap.macs;
        self.by_addr = !self.snap.by_addr.is_empty();
        for e in &self.fresh {
            for nic in &e.vm.nics {
                match nic.mac {
                    Some(mac) => self.macs.insert(mac),
                    None => self.by_addr = true,
                }
            }
        }
        let known: Vec<&Arc<IsolationEntry>> =
            self.snap.entries.iter().chain(self.fresh.iter()).collect();
        // Isolations that ended (or were released) before this worker met their VM are dropped.
        self.walked.retain(|s| known.iter().any(|e| e.serial == *s));
        self.pending
            .retain(|p| known.iter().any(|e| e.serial == p.serial));
        for e in known {
            if !self.walked.contains(&e.serial)
                && !self.pending.iter().any(|p| p.serial == e.serial)
            {
                self.pending.push(Arc::clone(e));
            }
        }
    }

    /// Whether any VM is isolated (expired ones not yet removed included).
    #[inline]
    pub fn any(&self) -> bool {
        self.any
    }

    /// Whether a frame between these MACs may be an isolated VM's (false: it is not).
    #[inline]
    pub fn may_match(&self, eth_src: [u8; 6], eth_dst: [u8; 6]) -> bool {
        self.by_addr || self.macs.may_contain(eth_src) || self.macs.may_contain(eth_dst)
    }

    /// The isolation in force for this frame at `now`, and whether the VM sent it.
    pub fn find(&self, f: &FrameIds, now: Timestamp) -> Option<(Arc<IsolationEntry>, bool)> {
        if let Some((e, side)) = self.snap.find(f, now) {
            return Some((Arc::clone(e), side));
        }
        self.fresh.iter().filter(|e| e.expires > now).find_map(|e| {
            e.vm.side(f.scope, f.eth_src, f.eth_dst, f.ips)
                .map(|side| (Arc::clone(e), side))
        })
    }

    /// Take the isolations whose flows this worker has not reset yet and that `ready` accepts;
    /// they count as done.
    pub fn take_pending(
        &mut self,
        mut ready: impl FnMut(&IsolationEntry) -> bool,
    ) -> Vec<Arc<IsolationEntry>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.pending.len() {
            let take = self.pending.get(i).is_some_and(|e| ready(e));
            if take {
                let e = self.pending.swap_remove(i);
                self.walked.push(e.serial);
                out.push(e);
            } else {
                i += 1;
            }
        }
        out
    }

    /// Whether this worker has isolations whose flows it has not reset yet.
    #[inline]
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Isolate the VM at inventory index `vm` at once on every worker (automatic isolation):
    /// the isolation joins the fresh list before this returns; the keeper reports it. `None`
    /// when the VM is isolated already.
    pub fn isolate(
        &mut self,
        vm: usize,
        now: Timestamp,
        duration_secs: u64,
        exclusions: Arc<[IsolationExclusion]>,
        origin: IsolationOrigin,
    ) -> Option<Arc<IsolationEntry>> {
        self.refresh();
        let pvm = Arc::clone(self.protected.vm(vm)?);
        let shared = Arc::clone(self.reader.shared());
        let entry = {
            let mut f = shared.fresh();
            let snap = shared.snapshot();
            let isolated = snap
                .entries
                .iter()
                .chain(f.items())
                .any(|e| e.vm.id == pvm.id && e.expires > now);
            if isolated {
                return None;
            }
            let e = Arc::new(IsolationEntry {
                vm: pvm,
                serial: shared.extra().serial(),
                started: now,
                expires: now.plus_secs(duration_secs),
                exclusions,
                origin,
                dropped: AtomicU64::new(0),
                flows_reset: AtomicU64::new(0),
            });
            // At the cap only when the keeper is stalled: not isolated now (the next detection
            // tries again).
            shared.append(&mut f, Arc::clone(&e))?;
            e
        };
        // Lost when the channel is full: the keeper takes the fresh list on its next tick.
        self.reader.wake();
        self.refresh();
        Some(entry)
    }
}
