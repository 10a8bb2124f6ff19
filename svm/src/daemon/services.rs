//! What runs beside the workers, whichever packet backend carries them: the control plane (when
//! `state_dir` is set), the event writer or pump, and the block keeper.
//!
//! Both backends start these before they open a port (DPDK: before `rte_eal_init` pins the
//! main thread, so no other thread inherits the main lcore's affinity) and stop them after the
//! workers in the same order: the workers' event senders go first, then the keeper, then the
//! writer (which flushes once every sender is gone), then the control plane.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use dataplane::event::Event;
use dataplane::isolation::{IsolationClient, IsolationControl, IsolationEnd, SharedIsolation};
use dataplane::shared_blocks::{BlockClient, BlockControl, Command, KeeperStats, SharedBlocks};
use policy::{CompiledPolicy, Policy};

use super::clock::LiveClock;
use super::config::Config;
use super::keeper_events::{self, IsolationEvents};
use super::plane::Plane;
use super::rules::LiveRules;
use super::workers::{PolicyCell, WorkerStatus};
use super::{DaemonError, EVENT_QUEUE, eve_thread, io_err, open_eve};
use crate::control::Control;

/// The running services; [`Services::finish`] stops them.
pub struct Services {
    /// The control plane, when `state_dir` is set.
    pub plane: Option<Plane>,
    /// The policy the workers start with (the stored one wins over the file once pushed).
    pub compiled: Arc<CompiledPolicy>,
    /// The keeper's control side (status, counts).
    pub control: BlockControl,
    /// One block-table client per worker, in worker order; the backend takes them.
    pub clients: Vec<BlockClient>,
    /// The isolation table's control side, when the configuration has an `inventory`.
    pub isolation: Option<IsolationControl>,
    /// The daemon's one clock: the workers' floor, the keepers and the control plane read it.
    pub clock: LiveClock,
    // One isolation client per worker, taken by [`Services::isolation_client`].
    iso_clients: Vec<IsolationClient>,
    iso_keeper: Option<JoinHandle<dataplane::isolation::KeeperStats>>,
    events: SyncSender<Event>,
    writer: JoinHandle<std::io::Result<u64>>,
    keeper_stop: Arc<AtomicBool>,
    keeper: JoinHandle<KeeperStats>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("plane", &self.plane)
            .field("workers", &self.clients.len())
            .finish_non_exhaustive()
    }
}

/// What the services did, for the final summary.
#[derive(Debug)]
pub struct Summary {
    /// Events written: by the EVE writer, or with the control plane the events its hub
    /// emitted (to the spool and every output).
    pub written: u64,
    /// The block keeper's counts.
    pub keeper: KeeperStats,
    /// The isolation keeper's counts, when it ran.
    pub isolation: Option<dataplane::isolation::KeeperStats>,
}

impl Summary {
    /// The last line of the daemon's output.
    pub fn print(&self) {
        let k = &self.keeper;
        tracing::info!(
            "svm run: stopped; {} events, blocks: {} added, {} expired, {} unblocked, {} evicted, {} refused, {} duplicate requests",
            self.written,
            k.added,
            k.expired,
            k.unblocked,
            k.evicted,
            k.refused,
            k.duplicates
        );
        if let Some(i) = &self.isolation {
            tracing::info!(
                "svm run: isolations: {} started, {} expired, {} released",
                i.started,
                i.expired,
                i.released
            );
        }
    }
}

impl Services {
    /// Start the control plane (if configured), the event writer or pump and the block keeper
    /// for `workers` workers.
    pub fn start(
        cfg: &Config,
        policy: Policy,
        workers: usize,
        rules: &LiveRules,
    ) -> Result<Services, DaemonError> {
        let clock = LiveClock::start();
        let SharedBlocks {
            mut keeper,
            control,
            clients,
        } = SharedBlocks::new(workers, cfg.max_blocks);
        // The isolation table exists before the control plane, whose API changes it.
        let table = new_isolation(cfg, workers)?;
        // The control plane (and its tokio runtime) starts before any packet backend is opened.
        let plane = match cfg.state_dir {
            Some(_) => Some(Plane::start(
                cfg,
                policy.clone(),
                control.clone(),
                Arc::clone(&rules.status),
                rules.follower(),
                rules.swapper(),
                table.as_ref().map(|(_, t)| t.control.clone()),
                Arc::new(clock),
            )?),
            None => None,
        };
        // The stored blocks go back to the keeper before it runs (and before any port opens).
        if let Some(p) = &plane {
            let stored = p
                .control
                .stored_blocks()
                .map_err(|e| io_err("state store")(std::io::Error::other(e.to_string())))?;
            for (key, entry) in stored {
                keeper.apply(Command::Restore { key, entry }, &mut |_| {});
            }
            keeper.publish();
        }
        let compiled = match &plane {
            Some(p) => p.policy.load(),
            None => Arc::new(CompiledPolicy::compile(policy)),
        };
        // A stored (pushed) policy may name other rule files or variables than the policy
        // file the rules were loaded with: rebuild before any port opens.
        rules.follow_now(&compiled.policy().activity_scanner);
        let (ev_tx, ev_rx) = std::sync::mpsc::sync_channel::<Event>(EVENT_QUEUE);
        // With the control plane the keepers' events go to the pump through queues of their
        // own: the block keeper's is bounded and never waited on, the isolation keeper's is
        // never lost (`keeper_events` says why neither can deadlock).
        let (kev_tx, iso_tx, mut kev_rx) = keeper_events::queues(
            keeper_events::BLOCK_EVENT_QUEUE,
            control.clone(),
            plane
                .as_ref()
                .map_or_else(Arc::default, |p| Arc::clone(&p.keeper_events)),
        );
        let writer = match &plane {
            Some(p) => {
                let c = Arc::clone(&p.control);
                std::thread::Builder::new()
                    .name("svm-pump".into())
                    .spawn(move || {
                        super::plane::pump(&c, &ev_rx, &mut kev_rx);
                        Ok(0)
                    })
                    .map_err(io_err("spawn event pump"))?
            }
            None => {
                let out = open_eve(cfg.eve.as_deref())?;
                let reopen = super::Reopen::on_sighup(cfg.eve.as_deref())?;
                std::thread::Builder::new()
                    .name("svm-eve".into())
                    .spawn(move || eve_thread(ev_rx, out, reopen))
                    .map_err(io_err("spawn EVE writer"))?
            }
        };
        let keeper_stop = Arc::new(AtomicBool::new(false));
        let store = plane.as_ref().map(|p| Arc::clone(p.control.store()));
        let (isolation, iso_clients, iso_keeper) =
            start_isolation(table, &keeper_stop, &iso_tx, store, clock)?;
        drop(iso_tx);
        let keeper = {
            let tx = ev_tx.clone();
            let to_plane = plane.is_some();
            let ks = Arc::clone(&keeper_stop);
            std::thread::Builder::new()
                .name("svm-blocks".into())
                .spawn(move || {
                    keeper.run(
                        &ks,
                        || clock.now(),
                        Duration::from_millis(100),
                        |ev| {
                            if to_plane {
                                kev_tx.send(ev);
                            } else {
                                let _ = tx.send(ev);
                            }
                        },
                    )
                })
                .map_err(io_err("spawn block keeper"))?
        };
        Ok(Services {
            plane,
            compiled,
            control,
            clients,
            isolation,
            clock,
            iso_clients,
            iso_keeper,
            events: ev_tx,
            writer,
            keeper_stop,
            keeper,
        })
    }

    /// Where the running policy came from, for the start line: the version pushed to the
    /// control plane (stored, it wins over the file), else the policy file, else the default.
    pub fn policy_source(&self, file: Option<&std::path::Path>) -> String {
        if let Some(p) = &self.plane {
            let version = p.control.status().policy_version;
            if version > 0 {
                return format!("version {version} (pushed)");
            }
        }
        file.map_or_else(
            || "built-in default".to_owned(),
            |f| f.display().to_string(),
        )
    }

    /// The isolation client of the next worker (none without an inventory).
    pub fn isolation_client(&mut self) -> Option<IsolationClient> {
        self.iso_clients.pop()
    }

    /// A sender for one worker's events.
    pub fn events(&self) -> SyncSender<Event> {
        self.events.clone()
    }

    /// The cell the control plane publishes pushed policies in, for the workers to follow.
    pub fn policy_cell(&self) -> Option<Arc<PolicyCell>> {
        self.plane.as_ref().map(|p| Arc::clone(&p.policy))
    }

    /// The database's address lists for the running lists to build in (shared with the
    /// database updater; an empty one without the control plane).
    pub fn web_db(&self) -> Arc<super::weblists::WebDb> {
        self.plane
            .as_ref()
            .map_or_else(Arc::default, |p| Arc::clone(&p.web_db))
    }

    /// A worker ended by itself (an I/O error, a panic): a database set in probation is rolled
    /// back before the daemon stops.
    pub fn worker_ended(&self) {
        if let Some(p) = &self.plane {
            p.worker_ended();
        }
    }

    /// The workers exist: hand their status cells to `/metrics`, and print the control plane's
    /// state.
    pub fn workers_started(&self, statuses: &[Arc<Mutex<WorkerStatus>>]) {
        let Some(p) = &self.plane else { return };
        let _ = p.workers.set(statuses.to_vec());
        let st = p.control.status();
        tracing::info!(
            "svm run: control plane: policy version {} ({}), {} blocked hosts, api {}",
            st.policy_version,
            st.mode,
            st.blocked_hosts,
            p.api_addr
                .map_or_else(|| "off".to_owned(), |a| format!("on https://{a}"))
        );
    }

    /// Stop the keeper, wait for the writer (every worker's sender must be gone by now, or this
    /// waits for them), then stop the control plane.
    pub fn finish(self) -> Result<Summary, DaemonError> {
        let Services {
            plane,
            events,
            writer,
            keeper_stop,
            keeper,
            iso_keeper,
            isolation,
            ..
        } = self;
        drop(events);
        // The control side goes first, so the isolation keeper sees every sender gone too.
        drop(isolation);
        keeper_stop.store(true, Ordering::Relaxed);
        let keeper = keeper.join().unwrap_or_default();
        let isolation = iso_keeper.map(|h| h.join().unwrap_or_default());
        let written = match writer.join() {
            Ok(r) => r.map_err(io_err("EVE output")),
            Err(_) => Err(io_err("EVE output")(std::io::Error::other(
                "writer panicked",
            ))),
        };
        let mut written = written?;
        if let Some(p) = plane {
            // The pump handed every event to the control plane, whose hub counts what it
            // emitted (alerts, blocks and its own policy and tagging events).
            written = emitted(p.control.hub().stats());
            p.stop();
        }
        Ok(Summary {
            written,
            keeper,
            isolation,
        })
    }
}

/// The isolation keeper's handles: its control side, one client per worker and its thread.
type IsolationParts = (
    Option<IsolationControl>,
    Vec<IsolationClient>,
    Option<JoinHandle<dataplane::isolation::KeeperStats>>,
);

/// The isolation table over the configuration's `inventory` (none without one).
fn new_isolation(
    cfg: &Config,
    workers: usize,
) -> Result<Option<(Arc<dataplane::isolation::Protected>, SharedIsolation)>, DaemonError> {
    if cfg.inventory.is_empty() {
        return Ok(None);
    }
    let protected = Arc::new(
        crate::isolation::protected(&cfg.inventory)
            .map_err(|e| io_err("inventory")(std::io::Error::other(e)))?,
    );
    let table = SharedIsolation::new(Arc::clone(&protected), workers);
    Ok(Some((protected, table)))
}

/// The isolation table's keeper on the `svm-isolation` thread on the wall clock (expiry checked
/// every 100 ms), its events to the control plane's queue beside the block keeper's (an
/// inventory needs `state_dir`). The isolations kept in `store` are restored before the keeper
/// runs (so before any port opens), and the store follows every change of the table.
fn start_isolation(
    table: Option<(Arc<dataplane::isolation::Protected>, SharedIsolation)>,
    stop: &Arc<AtomicBool>,
    events: &IsolationEvents,
    store: Option<Arc<crate::store::Store>>,
    clock: LiveClock,
) -> Result<IsolationParts, DaemonError> {
    let Some((protected, table)) = table else {
        return Ok((None, Vec::new(), None));
    };
    let SharedIsolation {
        mut keeper,
        control,
        clients,
    } = table;
    let tx = events.clone();
    if let Some(store) = &store {
        restore_isolations(&mut keeper, store, &protected, clock.now(), &mut |ev| {
            tx.send(ev);
        })?;
    }
    let stop = Arc::clone(stop);
    let handle = std::thread::Builder::new()
        .name("svm-isolation".into())
        .spawn(move || {
            keeper.run_saving(
                &stop,
                || clock.now(),
                Duration::from_millis(100),
                |ev| tx.send(ev),
                |all| {
                    let Some(store) = &store else { return };
                    let rows: Vec<_> = all.iter().map(crate::isolation::stored).collect();
                    if let Err(e) = store.put_isolations(&rows) {
                        tracing::warn!("svm run: isolations not stored: {e}");
                    }
                },
            )
        })
        .map_err(io_err("spawn isolation keeper"))?;
    Ok((Some(control), clients, Some(handle)))
}

/// Events a hub emitted, all severities.
fn emitted(stats: &crate::events::EventStats) -> u64 {
    stats
        .emitted
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
}

/// Put the stored isolations back into the keeper and publish them: in force before the first
/// frame. One that ended while the daemon was down gets its `isolation_ended` (reason
/// `expired`, at its own end) on `on_event`; it and one whose VM left the inventory are dropped
/// with a line on standard error.
fn restore_isolations(
    keeper: &mut dataplane::isolation::IsolationKeeper,
    store: &crate::store::Store,
    protected: &dataplane::isolation::Protected,
    now: dataplane::time::Timestamp,
    on_event: &mut impl FnMut(Event),
) -> Result<(), DaemonError> {
    let stored = store
        .isolations()
        .map_err(|e| io_err("state store")(std::io::Error::other(e.to_string())))?;
    let mut restored = 0usize;
    for s in &stored {
        let done = crate::isolation::unstored(s, protected).and_then(|info| {
            if info.expires <= now {
                on_event(info.ended_event(info.expires, IsolationEnd::Expired));
                Err("it ended while svm was stopped (isolation_ended written)".to_owned())
            } else {
                keeper.restore(info, now).map_err(|e| e.to_string())
            }
        });
        match done {
            Ok(()) => restored += 1,
            Err(e) => tracing::warn!("svm run: stored isolation of {} not restored: {e}", s.vm),
        }
    }
    keeper.publish();
    if !stored.is_empty() {
        tracing::info!(
            "svm run: {restored} isolation(s) restored from the state store, {} dropped",
            stored.len() - restored
        );
        if restored < stored.len() {
            let rows: Vec<_> = stored
                .iter()
                .filter(|s| crate::isolation::unstored(s, protected).is_ok_and(|i| i.expires > now))
                .cloned()
                .collect();
            store
                .put_isolations(&rows)
                .map_err(|e| io_err("state store")(std::io::Error::other(e.to_string())))?;
        }
    }
    Ok(())
}
