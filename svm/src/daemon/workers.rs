//! Worker threads: each owns a [`Worker`] (flows, defragmenter, detectors) and its own packet
//! sockets, runs to completion per burst, and sends events to the EVE writer without waiting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dataplane::event::Event;
use dataplane::io::afpacket::AfPacketIo;
use dataplane::io::{FrameHandler, Injection, PacketIo, PortId, PortStats, RxMeta};
use dataplane::rules::RuleSet;
use dataplane::time::Timestamp;
use dataplane::worker::{Counters, Output, PacketMeta, Toward, Verdict, Worker};
use policy::CompiledPolicy;

/// A value the control side replaces while the workers run: the writer stores a new value (a
/// store under a mutex nobody holds for longer) and bumps the generation; each worker loads the
/// generation once per burst (one atomic load) and takes the mutex only when it changed, then
/// swaps between two packets. Used for the running policy ([`PolicyCell`]) and the rule set
/// ([`RulesCell`]).
#[derive(Debug)]
pub struct Published<T> {
    generation: std::sync::atomic::AtomicU64,
    current: Mutex<T>,
}

impl<T: Clone> Published<T> {
    /// Starting with `v`.
    pub fn new(v: T) -> Self {
        Published {
            generation: std::sync::atomic::AtomicU64::new(0),
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
}

/// Output of a live worker: events to the writer thread (never waiting: a full queue drops the
/// event and counts it), injections kept for the backend.
pub(super) struct ChannelOutput {
    events: SyncSender<Event>,
    pub(super) dropped: u64,
    injected: Vec<(Vec<u8>, Toward)>,
}

impl Output for ChannelOutput {
    fn event(&mut self, event: Event) {
        if self.events.try_send(event).is_err() {
            self.dropped += 1;
        }
    }
    fn inject(&mut self, frame: Vec<u8>, toward: Toward) {
        self.injected.push((frame, toward));
    }
}

pub(super) struct Handler {
    pub(super) worker: Worker,
    pub(super) out: ChannelOutput,
    received: u64,
    last_port: PortId,
    /// Time of the latest frame (the I/O's clock, advanced to `floor`).
    last_ts: Timestamp,
    /// The live clock, read once per poll ([`Handler::refresh`]) into `floor`: no frame's
    /// time lags it by more than [`super::clock::MAX_LAG_US`], so a backlog cannot freeze the
    /// tables.
    clock: super::clock::LiveClock,
    floor: Timestamp,
    // Published values this worker follows, with the generation it last took.
    policy: Option<(Arc<PolicyCell>, u64)>,
    rules: Option<(Arc<RulesCell>, u64)>,
}

impl Handler {
    /// A worker's frame handler, sending its events to `events`.
    pub(super) fn new(worker: Worker, events: SyncSender<Event>) -> Handler {
        Handler {
            worker,
            out: ChannelOutput {
                events,
                dropped: 0,
                injected: Vec::new(),
            },
            received: 0,
            last_port: 0,
            last_ts: Timestamp(0),
            clock: super::clock::LiveClock::start(),
            floor: Timestamp(0),
            policy: None,
            rules: None,
        }
    }

    /// Read time from `clock` (tests start it in the past).
    #[cfg(test)]
    pub(super) fn with_clock(mut self, clock: super::clock::LiveClock) -> Handler {
        self.clock = clock;
        self
    }

    /// Follow the policy published in `cell` (see [`Handler::refresh`]).
    pub(super) fn with_policy(mut self, cell: Arc<PolicyCell>) -> Handler {
        let g = cell.generation();
        self.worker.set_policy(cell.load());
        self.policy = Some((cell, g));
        self
    }

    /// Run the rule set published in `cell`, and follow its reloads.
    pub(super) fn with_rules(mut self, cell: Arc<RulesCell>) -> Handler {
        let g = cell.generation();
        self.worker.set_rules(cell.load());
        self.rules = Some((cell, g));
        self
    }

    /// The worker stops: with IDS timing, the data its flows hold that the peers never
    /// acknowledged is inspected now (the end-of-flow inspection), so a stop loses no alert.
    pub(super) fn finish(&mut self) {
        self.worker.flush_streams(self.last_ts, &mut self.out);
    }

    /// Between two bursts: read the clock, and take a newly published policy or rule set (one
    /// atomic load each when nothing changed).
    pub(super) fn refresh(&mut self) {
        self.floor = self.clock.floor();
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
    }
}

impl FrameHandler for Handler {
    fn on_frame(&mut self, frame: &[u8], meta: RxMeta) -> Verdict {
        self.received += 1;
        self.last_port = meta.port;
        let ts = super::clock::frame_time(meta.ts, self.floor);
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
        let ts = super::clock::frame_time(meta.ts, self.floor);
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

    fn take_injections(&mut self, out: &mut Vec<Injection>) {
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

/// Everything one worker thread needs.
pub struct WorkerTask {
    /// The engine.
    pub worker: Worker,
    /// Its sockets.
    pub io: AfPacketIo,
    /// Where events go.
    pub events: SyncSender<Event>,
    /// Frames per burst.
    pub burst: usize,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// Where status is published.
    pub status: Arc<Mutex<WorkerStatus>>,
    /// Policy updates from the control plane, if it runs.
    pub policy: Option<Arc<PolicyCell>>,
    /// Rule set updates (SIGHUP reloads).
    pub rules: Arc<RulesCell>,
}

impl std::fmt::Debug for WorkerTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerTask")
            .field("interfaces", &self.io.interfaces())
            .finish_non_exhaustive()
    }
}

const PUBLISH_EVERY: Duration = Duration::from_secs(1);
const IDLE_WAIT_MS: i32 = 100;

fn publish(status: &Mutex<WorkerStatus>, h: &Handler, io: &AfPacketIo) {
    let s = WorkerStatus {
        counters: h.worker.counters().clone(),
        ports: io.stats(),
        events_dropped: h.out.dropped,
        unroutable: io.unroutable(),
        flows: h.worker.flows().len(),
    };
    *status.lock().unwrap_or_else(PoisonError::into_inner) = s;
}

/// Run one worker until `stop`; returns the I/O error that ended it, if any.
pub fn run(task: WorkerTask) -> std::io::Result<()> {
    let WorkerTask {
        worker,
        mut io,
        events,
        burst,
        stop,
        status,
        policy,
        rules,
    } = task;
    let mut h = Handler::new(worker, events).with_rules(rules);
    if let Some(p) = policy {
        h = h.with_policy(p);
    }
    let mut last_publish = Instant::now();
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        h.refresh();
        match io.poll(&mut h, burst) {
            Ok(0) => {
                if let Err(e) = io.wait(IDLE_WAIT_MS) {
                    break Err(e);
                }
            }
            Ok(_) => {}
            Err(e) => break Err(e),
        }
        if last_publish.elapsed() >= PUBLISH_EVERY {
            publish(&status, &h, &io);
            last_publish = Instant::now();
        }
    };
    h.finish();
    publish(&status, &h, &io);
    result
}
