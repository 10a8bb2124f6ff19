//! The driver: the one piece of glue between a [`Worker`] and its I/O, used by every backend
//! (AF_PACKET, DPDK), by `svm replay` (over [`crate::io::pcap::PcapIo`]), by the DPDK benchmark
//! harness and by tests (over [`crate::io::queue::QueueIo`]).
//!
//! - [`Driver`] is the frame handler: it numbers frames, hands them (one at a time or a burst at
//!   a time) to its worker, keeps the injections for the backend with the port of the frame that
//!   caused them, sends events where [`Events`] says, and follows the policy and the rule set
//!   published in [`Published`] cells.
//! - [`run_worker`] is the one poll loop: take newly published settings, poll, let an idle device
//!   wait, publish the worker's [`WorkerStatus`] about once a second, stop on request or at the
//!   end of a capture, and inspect what the flows still hold when it ends.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use policy::CompiledPolicy;

use crate::attack::AttackStats;
use crate::event::Event;
use crate::flow::FlowStats;
use crate::io::{FrameHandler, Injection, PacketIo, PortId, PortStats, RxMeta};
use crate::output::{Output, Toward, Verdict};
use crate::rules::RuleSet;
use crate::time::Timestamp;
use crate::worker::{Counters, PacketMeta, Worker};

/// A value the control side replaces while the workers run: the writer stores a new value (a
/// store under a mutex nobody holds for longer) and bumps the generation; each worker loads the
/// generation once per burst (one atomic load) and takes the mutex only when it changed, then
/// swaps between two packets. Used for the running policy ([`PolicyCell`]) and the rule set
/// ([`RulesCell`]).
#[derive(Debug)]
pub struct Published<T> {
    generation: AtomicU64,
    current: Mutex<T>,
}

impl<T: Clone> Published<T> {
    /// Starting with `v`.
    pub fn new(v: T) -> Self {
        Published {
            generation: AtomicU64::new(0),
            current: Mutex::new(v),
        }
    }

    /// Publish a new value.
    pub fn store(&self, v: T) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = v;
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The generation (bumped by each store).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current value.
    pub fn load(&self) -> T {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The current value if the generation moved past `*seen` (which is updated).
    pub fn changed(&self, seen: &mut u64) -> Option<T> {
        let g = self.generation();
        if g == *seen {
            return None;
        }
        *seen = g;
        Some(self.load())
    }
}

/// The running policy as the workers see it (stored by the control plane).
pub type PolicyCell = Published<Arc<CompiledPolicy>>;

/// The activity scanner's rule set as the workers see it (stored at a SIGHUP reload); every
/// worker shares the one compiled, read-only set.
pub type RulesCell = Published<Option<Arc<RuleSet>>>;

/// The web address lists as the workers see them (stored at a SIGHUP reload or when a pushed
/// policy changes them); `None`: the web address scan is off.
pub type WebCell = Published<Option<Arc<webaddr::AddressSet>>>;

/// What a worker reports for status: published about once a second and at exit.
#[derive(Clone, Debug, Default)]
pub struct WorkerStatus {
    /// Engine counters.
    pub counters: Counters,
    /// Port counters.
    pub ports: Vec<PortStats>,
    /// Events dropped because the writer was behind.
    pub events_dropped: u64,
    /// Injected frames with no port to leave by.
    pub unroutable: u64,
    /// Live flows.
    pub flows: usize,
    /// The flow table's counters (created, evicted at the cap, emergencies).
    pub flow_stats: FlowStats,
    /// The attack blocker's state counters (entries, evictions at the caps, first sightings
    /// replaced).
    pub attack: AttackStats,
    /// Statuses published: the poll loop publishes about once a second, idle or not, so a
    /// worker whose count stops growing is hung (the daemon's `worker_stalled`).
    pub heartbeats: u64,
    /// Set by the last publication, when the poll loop has ended (its heartbeat stops too).
    pub ended: bool,
}

/// Where a driver's events go.
#[derive(Debug)]
pub enum Events {
    /// To a writer thread, never waiting: a full queue drops the event and counts it.
    Channel(SyncSender<Event>),
    /// Kept in order until taken ([`Driver::take_events`]): replay and tests.
    Keep(Vec<Event>),
    /// Counted only (benchmarks).
    Count,
}

/// A driver's [`Output`]: events per [`Events`], injections kept for the backend.
#[derive(Debug)]
pub struct DriverOutput {
    events: Events,
    emitted: u64,
    dropped: u64,
    injected: Vec<(Vec<u8>, Toward)>,
    // The interface name of each port (EVE `in_iface`), and the port of the frame in hand
    // (`None` between frames: the end-of-flow inspection belongs to no received frame).
    port_names: [Option<Arc<str>>; 2],
    port: Option<PortId>,
}

impl Output for DriverOutput {
    fn event(&mut self, mut event: Event) {
        self.emitted += 1;
        if let crate::event::EventKind::Alert(a) = &mut event.kind
            && a.in_iface.is_none()
        {
            a.in_iface = self
                .port
                .and_then(|p| self.port_names.get(usize::from(p)))
                .cloned()
                .flatten();
        }
        match &mut self.events {
            Events::Channel(tx) => {
                if tx.try_send(event).is_err() {
                    self.dropped += 1;
                }
            }
            Events::Keep(v) => v.push(event),
            Events::Count => {}
        }
    }
    fn inject(&mut self, frame: Vec<u8>, toward: Toward) {
        self.injected.push((frame, toward));
    }
}

/// The earliest time a frame read now may carry (the daemon's live clock minus the lag it
/// allows), read once per poll.
pub type Floor = Box<dyn FnMut() -> Timestamp + Send>;

/// The frame handler of one worker (see the module documentation).
pub struct Driver {
    worker: Worker,
    out: DriverOutput,
    received: u64,
    last_port: PortId,
    // Time of the latest frame (the I/O's clock, advanced to `floor`).
    last_ts: Timestamp,
    // The daemon's live clock, read once per poll (`Driven::refresh`) into `floor`: no frame's
    // time lags it by more than the clock allows, so a backlog cannot freeze the tables. None
    // in replay, which runs on capture time only.
    clock: Option<Floor>,
    floor: Timestamp,
    // Published values this worker follows, with the generation it last took.
    policy: Option<(Arc<PolicyCell>, u64)>,
    rules: Option<(Arc<RulesCell>, u64)>,
    web: Option<(Arc<WebCell>, u64)>,
}

impl Driver {
    /// A driver of `worker`, its events going where `events` says.
    pub fn new(worker: Worker, events: Events) -> Driver {
        Driver {
            worker,
            out: DriverOutput {
                events,
                emitted: 0,
                dropped: 0,
                injected: Vec::new(),
                port_names: [None, None],
                port: None,
            },
            received: 0,
            last_port: 0,
            last_ts: Timestamp(0),
            clock: None,
            floor: Timestamp(0),
            policy: None,
            rules: None,
            web: None,
        }
    }

    /// Never let a frame's time lag `floor` (read once per poll): frames keep their receive time
    /// unless it is earlier than that.
    #[must_use]
    pub fn with_floor(mut self, floor: Floor) -> Driver {
        self.clock = Some(floor);
        self
    }

    /// Name the ports (port 0, port 1): each alert then says which one its frame came in on
    /// (EVE `in_iface`).
    #[must_use]
    pub fn with_port_names(mut self, names: [Option<Arc<str>>; 2]) -> Driver {
        self.out.port_names = names;
        self
    }

    /// Follow the policy published in `cell` (see [`Driven::refresh`]).
    #[must_use]
    pub fn with_policy(mut self, cell: Arc<PolicyCell>) -> Driver {
        let g = cell.generation();
        self.worker.set_policy(cell.load());
        self.policy = Some((cell, g));
        self
    }

    /// Run the web address lists published in `cell`, and follow their reloads.
    #[must_use]
    pub fn with_web(mut self, cell: Arc<WebCell>) -> Driver {
        let g = cell.generation();
        self.worker.set_web_addresses(cell.load());
        self.web = Some((cell, g));
        self
    }

    /// Run the rule set published in `cell`, and follow its reloads.
    #[must_use]
    pub fn with_rules(mut self, cell: Arc<RulesCell>) -> Driver {
        let g = cell.generation();
        self.worker.set_rules(cell.load());
        self.rules = Some((cell, g));
        self
    }

    /// The engine.
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Frames handed to the worker so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Number the frames from `n + 1` on: replay numbers frames by their place in the capture,
    /// whichever worker gets them.
    pub fn set_received(&mut self, n: u64) {
        self.received = n;
    }

    /// Events the worker produced (sent, kept or counted).
    pub fn events_emitted(&self) -> u64 {
        self.out.emitted
    }

    /// Events dropped because the writer was behind.
    pub fn events_dropped(&self) -> u64 {
        self.out.dropped
    }

    /// The kept events, in order (with [`Events::Keep`]; none otherwise).
    pub fn take_events(&mut self) -> impl Iterator<Item = Event> + '_ {
        let kept = match &mut self.out.events {
            Events::Keep(v) => Some(v.drain(..)),
            Events::Channel(_) | Events::Count => None,
        };
        kept.into_iter().flatten()
    }

    /// Whether events are kept and waiting.
    pub fn has_events(&self) -> bool {
        matches!(&self.out.events, Events::Keep(v) if !v.is_empty())
    }

    /// Add an event of another author (the block keeper's, in replay) to the kept events, in
    /// order with the worker's.
    pub fn push_event(&mut self, event: Event) {
        if let Events::Keep(v) = &mut self.out.events {
            v.push(event);
        }
    }

    /// The worker stops at `now`: with IDS timing, the data its flows hold that the peers never
    /// acknowledged is inspected now (the end-of-flow inspection), so a stop loses no alert.
    pub fn finish_at(&mut self, now: Timestamp) {
        self.out.port = None;
        self.worker.flush_streams(now, &mut self.out);
    }
}

impl FrameHandler for Driver {
    fn on_frame(&mut self, frame: &[u8], meta: RxMeta) -> Verdict {
        self.received += 1;
        self.last_port = meta.port;
        self.out.port = Some(meta.port);
        let ts = meta.ts.max(self.floor);
        self.last_ts = ts;
        self.worker.process(
            frame,
            PacketMeta {
                ts,
                pcap_cnt: self.received,
            },
            &mut self.out,
        )
    }

    fn on_burst(&mut self, frames: &[&[u8]], meta: RxMeta, verdicts: &mut Vec<Verdict>) -> usize {
        self.last_port = meta.port;
        self.out.port = Some(meta.port);
        let ts = meta.ts.max(self.floor);
        self.last_ts = ts;
        let done = self.worker.process_burst(
            frames,
            PacketMeta {
                ts,
                pcap_cnt: self.received + 1,
            },
            &mut self.out,
            verdicts,
        );
        self.received += done as u64;
        done
    }

    fn lookahead(&self) -> usize {
        self.worker.lookahead()
    }

    fn prefetch(&mut self, frame: &[u8]) {
        self.worker.prefetch_frame(frame);
    }

    fn take_injections(&mut self, out: &mut Vec<Injection>) {
        // Most frames cause none: skip the drain's setup (asked after every frame).
        if self.out.injected.is_empty() {
            return;
        }
        let rx_port = self.last_port;
        out.extend(
            self.out
                .injected
                .drain(..)
                .map(|(frame, toward)| Injection {
                    frame,
                    toward,
                    rx_port,
                }),
        );
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("received", &self.received)
            .field("last_ts", &self.last_ts)
            .field("floor", &self.floor)
            .finish_non_exhaustive()
    }
}

/// What [`run_worker`] needs of a frame handler besides frames: a [`Driver`], or in replay the
/// drivers of several workers over one block keeper.
pub trait Driven: FrameHandler {
    /// Between two polls: take a newly published policy or rule set (one atomic load each when
    /// nothing changed).
    fn refresh(&mut self);
    /// The loop ends: inspect what the flows still hold (see [`Driver::finish_at`]).
    fn finish(&mut self);
    /// The status to publish; `ports` and `unroutable` are the device's, filled in by the caller.
    fn status(&self) -> WorkerStatus;
}

impl Driven for Driver {
    fn refresh(&mut self) {
        if let Some(clock) = self.clock.as_mut() {
            self.floor = clock();
        }
        if let Some((cell, seen)) = self.policy.as_mut()
            && let Some(p) = cell.changed(seen)
        {
            self.worker.set_policy(p);
        }
        if let Some((cell, seen)) = self.rules.as_mut()
            && let Some(r) = cell.changed(seen)
        {
            self.worker.set_rules(r);
        }
        if let Some((cell, seen)) = self.web.as_mut()
            && let Some(w) = cell.changed(seen)
        {
            self.worker.set_web_addresses(w);
        }
    }

    fn finish(&mut self) {
        self.finish_at(self.last_ts);
    }

    fn status(&self) -> WorkerStatus {
        WorkerStatus {
            counters: self.worker.counters().clone(),
            ports: Vec::new(),
            events_dropped: self.out.dropped,
            unroutable: 0,
            flows: self.worker.flows().len(),
            flow_stats: self.worker.flows().stats(),
            attack: self.worker.attack_blocker().stats(),
            heartbeats: 0,
            ended: false,
        }
    }
}

/// How often a running worker publishes its status.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// Publish the status of the worker `h` on `io` into `status`.
pub fn publish<P: PacketIo + ?Sized, H: Driven + ?Sized>(
    status: &Mutex<WorkerStatus>,
    h: &H,
    io: &P,
) {
    let s = WorkerStatus {
        ports: io.stats(),
        unroutable: io.unsent(),
        ..h.status()
    };
    let mut g = status.lock().unwrap_or_else(PoisonError::into_inner);
    let heartbeats = g.heartbeats.wrapping_add(1);
    *g = WorkerStatus { heartbeats, ..s };
}

/// The settings of one [`run_worker`] loop.
#[derive(Clone, Copy, Debug)]
pub struct RunConfig<'a> {
    /// Frames per poll and receive port.
    pub burst: usize,
    /// Set to stop the loop (checked before every poll).
    pub stop: &'a AtomicBool,
    /// Where to publish the status about once a second and at the end, if anywhere.
    pub status: Option<&'a Mutex<WorkerStatus>>,
}

/// The poll loop of one worker: until `run.stop` is set or the device is at its end, take newly
/// published settings, poll a burst, let the device wait when it had nothing, call `tick` after
/// every poll with the number of frames received (it may report, write the events out, or stop
/// the loop by failing), and publish the status about once a second. At the end the handler
/// finishes ([`Driven::finish`]) and the status is published once more. Returns the first error
/// of the device or of `tick`.
pub fn run_worker<P, H, E>(
    io: &mut P,
    h: &mut H,
    run: &RunConfig<'_>,
    mut tick: impl FnMut(&mut H, &mut P, usize) -> Result<(), E>,
) -> Result<(), E>
where
    P: PacketIo + ?Sized,
    H: Driven,
    E: From<std::io::Error>,
{
    let mut last_publish = Instant::now();
    let result = loop {
        if run.stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        h.refresh();
        let n = match io.poll(h, run.burst) {
            Ok(n) => n,
            Err(e) => break Err(E::from(e)),
        };
        if n == 0 {
            if io.at_end() {
                break Ok(());
            }
            if let Err(e) = io.idle() {
                break Err(E::from(e));
            }
        }
        if let Err(e) = tick(h, io, n) {
            break Err(e);
        }
        if let Some(status) = run.status
            && last_publish.elapsed() >= PUBLISH_EVERY
        {
            publish(status, h, io);
            last_publish = Instant::now();
        }
    };
    h.finish();
    if let Some(status) = run.status {
        publish(status, h, io);
        status.lock().unwrap_or_else(PoisonError::into_inner).ended = true;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::queue::{QueueAttach, QueueIo};
    use crate::shared_blocks::SharedBlocks;
    use crate::worker::{Attach, WorkerConfig};
    use policy::Policy;

    /// A 64-byte TCP segment from `src` to 10.1.0.1:`port` with `flags`.
    fn tcp(src: [u8; 4], sport: u16, port: u16, flags: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&[10, 1, 0, 1]);
        let t = &mut f[34..54];
        t[0..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&port.to_be_bytes());
        t[4..8].copy_from_slice(&1u32.to_be_bytes());
        t[12] = 0x50;
        t[13] = flags;
        t[14..16].copy_from_slice(&1024u16.to_be_bytes());
        f
    }

    fn driver(policy: Policy, attach: Attach) -> Driver {
        let SharedBlocks { mut clients, .. } = SharedBlocks::with_workers(1);
        let worker = Worker::new(
            WorkerConfig {
                attach,
                ..WorkerConfig::default()
            },
            Arc::new(CompiledPolicy::compile(policy)),
            clients.remove(0),
        );
        Driver::new(worker, Events::Keep(Vec::new()))
    }

    #[test]
    fn run_worker_drives_a_queue_to_its_end_and_publishes() {
        let mut io = QueueIo::new(QueueAttach::Inline);
        for i in 0..10u16 {
            io.push(
                i % 2,
                Timestamp(u64::from(i) * 1000),
                tcp([10, 0, 0, 2], 40000 + i, 80, 0x02),
            );
        }
        io.close();
        let mut d = driver(Policy::default(), Attach::Inline);
        let stop = AtomicBool::new(false);
        let status = Mutex::new(WorkerStatus::default());
        let mut polls = Vec::new();
        let r: std::io::Result<()> = run_worker(
            &mut io,
            &mut d,
            &RunConfig {
                burst: 4,
                stop: &stop,
                status: Some(&status),
            },
            |_, _, n| {
                polls.push(n);
                Ok(())
            },
        );
        assert!(r.is_ok());
        // 10 frames in bursts of 4; the loop ends at the queue's end without an idle tick.
        assert_eq!(polls, vec![4, 4, 2]);
        assert_eq!(d.received(), 10);
        let s = status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert_eq!(s.counters.packets, 10);
        assert_eq!(s.counters.forwarded, 10);
        assert_eq!(s.ports.iter().map(|p| p.tx_packets).sum::<u64>(), 10);
        // Inline: every frame left by the other port.
        assert_eq!(io.take_sent(0).len(), 5);
        assert_eq!(io.take_sent(1).len(), 5);
    }

    #[test]
    fn run_worker_stops_on_request_and_on_a_tick_error() {
        let mut io = QueueIo::new(QueueAttach::Inline);
        for i in 0..8u16 {
            io.push(
                0,
                Timestamp(u64::from(i)),
                tcp([10, 0, 0, 2], 40000 + i, 80, 0x02),
            );
        }
        let mut d = driver(Policy::default(), Attach::Inline);
        let stop = AtomicBool::new(false);
        let run = RunConfig {
            burst: 2,
            stop: &stop,
            status: None,
        };
        let r: std::io::Result<()> = run_worker(&mut io, &mut d, &run, |_, _, _| {
            stop.store(true, Ordering::Relaxed);
            Ok(())
        });
        assert!(r.is_ok());
        assert_eq!(d.received(), 2);
        stop.store(false, Ordering::Relaxed);
        let r = run_worker(&mut io, &mut d, &run, |_, _, _| {
            Err(std::io::Error::other("enough"))
        });
        assert_eq!(r.map_err(|e| e.to_string()), Err("enough".to_owned()));
        assert_eq!(d.received(), 4);
        assert_eq!(io.waiting(), 4);
    }

    #[test]
    fn a_blocking_detection_drops_inline_and_resets_go_by_direction() {
        // A port scan under terminate_and_block: the scanner's source is blocked, its later
        // frames dropped; nothing of it reaches the peer port after the detecting frame.
        let policy = Policy::default();
        assert_eq!(
            policy.attack_blocker.action,
            policy::Action::TerminateAndBlock
        );
        let mut io = QueueIo::new(QueueAttach::Inline);
        for p in 1..200u16 {
            io.push(
                0,
                Timestamp(u64::from(p) * 100),
                tcp([10, 0, 0, 9], 5555, p, 0x02),
            );
        }
        io.close();
        let mut d = driver(policy, Attach::Inline);
        let stop = AtomicBool::new(false);
        let run = RunConfig {
            burst: 32,
            stop: &stop,
            status: None,
        };
        let mut events = Vec::new();
        let r: std::io::Result<()> = run_worker(&mut io, &mut d, &run, |h, _, _| {
            events.extend(h.take_events());
            Ok(())
        });
        assert!(r.is_ok());
        let c = d.worker().counters();
        assert!(c.detections.iter().sum::<u64>() > 0, "{events:?}");
        assert!(c.dropped_blocked > 0);
        assert_eq!(c.forwarded + c.dropped(), 199);
        let (to_vm, to_net) = (io.take_sent(0), io.take_sent(1));
        assert_eq!(
            to_net.iter().filter(|s| !s.injected).count() as u64,
            c.forwarded
        );
        assert!(to_vm.iter().all(|s| s.injected));
        // The detecting segment is reset toward both ends: its sender (back out of port 0) and
        // its receiver (out of port 1).
        let injected = |v: &[crate::io::queue::Sent]| v.iter().filter(|s| s.injected).count();
        assert!(injected(&to_vm) > 0 && injected(&to_net) > 0);
        assert_eq!((injected(&to_vm) + injected(&to_net)) as u64, c.injected);
        assert!(
            events
                .iter()
                .any(|e| matches!(e.kind, crate::event::EventKind::Alert(_)))
        );
    }
    #[test]
    fn alerts_name_the_interface_their_frame_came_in_on() {
        // The same scan arriving on the network side (port 1): its alerts say so; a driver
        // without names (replay) says nothing.
        for named in [true, false] {
            let mut io = QueueIo::new(QueueAttach::Inline);
            for p in 1..200u16 {
                io.push(
                    1,
                    Timestamp(u64::from(p) * 100),
                    tcp([10, 0, 0, 9], 5555, p, 0x02),
                );
            }
            io.close();
            let mut d = driver(Policy::default(), Attach::Inline);
            if named {
                d = d.with_port_names([Some("vm0".into()), Some("net0".into())]);
            }
            let stop = AtomicBool::new(false);
            let run = RunConfig {
                burst: 32,
                stop: &stop,
                status: None,
            };
            let mut ifaces = Vec::new();
            let r: std::io::Result<()> = run_worker(&mut io, &mut d, &run, |h, _, _| {
                for e in h.take_events() {
                    if let crate::event::EventKind::Alert(a) = e.kind {
                        ifaces.push(a.in_iface);
                    }
                }
                Ok(())
            });
            assert!(r.is_ok());
            assert!(!ifaces.is_empty());
            let want: Option<Arc<str>> = named.then(|| "net0".into());
            assert!(ifaces.iter().all(|i| *i == want), "{ifaces:?}");
        }
    }

    /// Hands frames to a driver, hints only when `hints` (else it never asks for them), and
    /// records each verdict and the hints given.
    struct Spy {
        inner: Driver,
        hints_on: bool,
        hints: usize,
        verdicts: Vec<Verdict>,
    }

    impl FrameHandler for Spy {
        fn on_frame(&mut self, frame: &[u8], meta: RxMeta) -> Verdict {
            let v = self.inner.on_frame(frame, meta);
            self.verdicts.push(v);
            v
        }
        fn take_injections(&mut self, out: &mut Vec<Injection>) {
            self.inner.take_injections(out);
        }
        fn lookahead(&self) -> usize {
            if self.hints_on {
                self.inner.lookahead()
            } else {
                0
            }
        }
        fn prefetch(&mut self, frame: &[u8]) {
            self.hints += 1;
            self.inner.prefetch(frame);
        }
    }

    /// A port scan replayed from a file (every SYN a new flow, so the worker asks for frames
    /// ahead): its source is blocked while its next frames are already named ahead, and not
    /// one of them leaks: the verdicts, counters and events are those of the same replay
    /// without hints.
    #[test]
    fn frames_named_ahead_of_a_block_are_dropped_as_without_hints() {
        use crate::io::pcap::{Frames, PcapIo, PcapOutputs, PcapSink};
        let dir = std::env::temp_dir().join(format!("svm-driver-ahead-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let file = dir.join("scan.pcap");
        let mut sink = PcapSink::create(&file).unwrap_or_else(|e| panic!("{e}"));
        for p in 1..400u16 {
            let f = tcp([10, 0, 0, 9], 5555, p, 0x02);
            sink.write(Timestamp(u64::from(p) * 100), &f)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        sink.finish().unwrap_or_else(|e| panic!("{e}"));
        let run = |hints_on: bool| {
            let frames = Frames::open(&file, false).unwrap_or_else(|e| panic!("{e}"));
            let outputs = PcapOutputs {
                forwarded: None,
                injected: None,
                toward_source: None,
                toward_destination: None,
            };
            let mut io = PcapIo::new(frames, 1, outputs);
            let mut spy = Spy {
                inner: driver(Policy::default(), Attach::Inline),
                hints_on,
                hints: 0,
                verdicts: Vec::new(),
            };
            let mut injected = Vec::new();
            while !io.at_end() {
                io.poll(&mut spy, 32).unwrap_or_else(|e| panic!("{e}"));
            }
            spy.inner.take_injections(&mut injected);
            let events: Vec<String> = spy
                .inner
                .take_events()
                .map(|e| format!("{:?}", e.kind))
                .collect();
            let c = spy.inner.worker().counters().clone();
            (spy.verdicts, spy.hints, events, c)
        };
        let (with, hints, events, c) = run(true);
        let (without, none, events_without, c_without) = run(false);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(none, 0);
        // Nearly every frame was named ahead (all but the first few of the run of new flows and
        // the last ones).
        assert!(hints > 350, "{hints}");
        assert!(c.dropped_blocked > 300, "{c:?}");
        assert_eq!(with, without);
        assert_eq!(events, events_without);
        assert_eq!(c, c_without);
    }
}
