//! AF_PACKET worker threads: each owns a [`Worker`] (flows, defragmenter, detectors) and its own
//! packet sockets, and runs the one driver loop ([`run_worker`]): run to completion per burst,
//! events to the EVE writer without waiting, status published about once a second.

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};

use dataplane::driver::{Driver, Events, RunConfig, run_worker};
use dataplane::event::Event;
use dataplane::io::afpacket::AfPacketIo;
use dataplane::worker::Worker;

// The cells and the status live with the driver in the dataplane; the daemon's modules name
// them from here.
pub use dataplane::driver::{PolicyCell, RulesCell, WorkerStatus};

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
    /// Web address list updates (SIGHUP, policy pushes).
    pub web: Arc<super::weblists::WebCell>,
    /// The daemon's one clock.
    pub clock: super::clock::LiveClock,
}

impl std::fmt::Debug for WorkerTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerTask")
            .field("interfaces", &self.io.interfaces())
            .finish_non_exhaustive()
    }
}

/// A worker's driver: its events to `events`, frame times held within
/// [`super::clock::MAX_LAG_US`] of the live clock, following the reloaded rules and, with the
/// control plane, the pushed policy. The same for every backend.
pub(super) fn driver(
    worker: Worker,
    events: SyncSender<Event>,
    rules: Arc<RulesCell>,
    policy: Option<Arc<PolicyCell>>,
    clock: super::clock::LiveClock,
) -> Driver {
    let d = Driver::new(worker, Events::Channel(events))
        .with_floor(Box::new(move || clock.floor()))
        .with_rules(rules);
    match policy {
        Some(p) => d.with_policy(p),
        None => d,
    }
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
        web,
        clock,
    } = task;
    let names = io.interfaces();
    let name = |i: usize| names.get(i).map(|n| Arc::<str>::from(*n));
    let mut d = driver(worker, events, rules, policy, clock)
        .with_web(web)
        .with_port_names([name(0), name(1)]);
    let run = RunConfig {
        burst,
        stop: &stop,
        status: Some(&status),
    };
    // Debug builds only: the hung worker of the stall tests (stall.rs).
    let stall = super::stall::debug_stall_after().map(|after| std::time::Instant::now() + after);
    run_worker(&mut io, &mut d, &run, |_, _, _| {
        if stall.is_some_and(|at| std::time::Instant::now() >= at) {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        Ok::<_, std::io::Error>(())
    })
}
