//! `svm run` with `backend: dpdk`: one worker on the EAL main lcore (cargo feature `dpdk`).
//!
//! Order of start-up: signal handlers, the EVE writer and the block keeper first, then
//! `rte_eal_init` on the main thread (it pins the calling thread to the main lcore, and threads
//! spawned afterwards would inherit that affinity), then the ports, found by their device names
//! (`net_af_packet0`, `0000:00:04.0`, ...). The main thread then is the worker: it polls in
//! bursts, stamps each burst with the wall clock, publishes its counters once a second, and
//! handles SIGUSR1, the stats interval and SIGTERM/SIGINT itself.
//!
//! One worker and one queue per port for now; several workers need RSS with a symmetric key
//! over several queues (later). An idle poll (no frame on any port) sleeps [`IDLE_SLEEP`]: on a
//! small machine, or over `net_af_packet`, busy polling starves whatever feeds the ports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dataplane::event::Event;
use dataplane::io::PacketIo;
use dataplane::io::dpdk::{DpdkConfig, DpdkIo, Eal};
use dataplane::shared_blocks::{KeeperStats, SharedBlocks};
use dataplane::worker::Worker;
use policy::{CompiledPolicy, Policy};

use crate::rules_load::Loaded;

use super::config::{AttachConfig, Config};
use super::rules::LiveRules;
use super::workers::{Handler, WorkerStatus};
use super::{DaemonError, EVENT_QUEUE, eve_thread, io_err, now, open_eve, status, worker_config};

/// Sleep after a poll that found no frame on any port. Adds at most about this much latency to
/// the first frame after a pause; leaves the CPU to the rest of the machine meanwhile.
pub const IDLE_SLEEP: Duration = Duration::from_micros(50);

const PUBLISH_EVERY: Duration = Duration::from_secs(1);

fn dpdk_err(what: &str) -> impl FnOnce(dataplane::io::dpdk::DpdkError) -> DaemonError + '_ {
    move |e| DaemonError::Io {
        what: format!("dpdk: {what}"),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Run the daemon on DPDK ports until SIGTERM or SIGINT (SIGHUP reloads `rules`).
pub fn run(cfg: &Config, policy: Policy, rules: Option<Loaded>) -> Result<(), DaemonError> {
    let stop = Arc::new(AtomicBool::new(false));
    let usr1 = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(io_err("signal handler"))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&usr1))
        .map_err(io_err("signal handler"))?;
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
        .map_err(io_err("signal handler"))?;
    let live_rules = LiveRules::start(cfg.rules.as_ref(), rules, Some(hup))?;

    let eve_out = open_eve(cfg.eve.as_deref())?;
    let compiled = Arc::new(CompiledPolicy::compile(policy));
    let SharedBlocks {
        keeper,
        control,
        clients,
    } = SharedBlocks::new(1, cfg.max_blocks);
    let blocks = clients
        .into_iter()
        .next()
        .ok_or_else(|| io_err("block table")(std::io::Error::other("no block client")))?;

    // Every other thread exists before the EAL pins this one.
    let (ev_tx, ev_rx) = std::sync::mpsc::sync_channel::<Event>(EVENT_QUEUE);
    let writer = std::thread::Builder::new()
        .name("svm-eve".into())
        .spawn(move || eve_thread(ev_rx, eve_out))
        .map_err(io_err("spawn EVE writer"))?;
    let keeper_stop = Arc::new(AtomicBool::new(false));
    let keeper_thread: JoinHandle<KeeperStats> = {
        let tx = ev_tx.clone();
        let ks = Arc::clone(&keeper_stop);
        std::thread::Builder::new()
            .name("svm-blocks".into())
            .spawn(move || {
                keeper.run(&ks, now, Duration::from_millis(100), |ev| {
                    let _ = tx.send(ev);
                })
            })
            .map_err(io_err("spawn block keeper"))?
    };

    let status = Arc::new(Mutex::new(WorkerStatus::default()));
    let statuses = [Arc::clone(&status)];
    let wcfg = worker_config(cfg, 0);
    let mut handler = Handler::new(
        Worker::with_shared_blocks(wcfg, Arc::clone(&compiled), blocks),
        ev_tx,
    )
    .with_rules(Arc::clone(&live_rules.cell));
    let result = open(cfg).and_then(|mut io| {
        eprintln!(
            "svm run: 1 worker on dpdk {} (EAL main lcore), policy {}, mode {:?}",
            super::describe(&cfg.attach),
            cfg.policy.as_ref().map_or_else(
                || "built-in default".to_owned(),
                |p| p.display().to_string()
            ),
            compiled.policy().mode,
        );
        let r = poll_loop(cfg, &mut io, &mut handler, &stop, &usr1, &status, &control);
        publish(&status, &handler, &io);
        r
    });
    // The worker's sender goes with the handler: the writer ends once the keeper has too.
    drop(handler);
    keeper_stop.store(true, Ordering::Relaxed);
    let kstats = keeper_thread.join().unwrap_or_default();
    let written = match writer.join() {
        Ok(r) => r.map_err(io_err("EVE output"))?,
        Err(_) => {
            return Err(io_err("EVE output")(std::io::Error::other(
                "writer panicked",
            )));
        }
    };
    let rules_line = live_rules.status().line();
    live_rules.stop();
    result?;
    eprintln!(
        "{}\n  {rules_line}",
        status::render(&status::collect(&statuses), &control)
    );
    eprintln!(
        "svm run: stopped; {written} events, blocks: {} added, {} expired, {} unblocked, {} duplicate requests",
        kstats.added, kstats.expired, kstats.unblocked, kstats.duplicates
    );
    Ok(())
}

/// Initialise the EAL (on this thread) and open the configured ports.
fn open(cfg: &Config) -> Result<DpdkIo, DaemonError> {
    let eal = Eal::init(&cfg.eal_args).map_err(dpdk_err("EAL init"))?;
    let port = |name: &str| eal.port_by_name(name).map_err(dpdk_err("port"));
    let dcfg = DpdkConfig::default();
    match &cfg.attach {
        AttachConfig::Inline {
            vm_interface,
            network_interface,
        } => {
            let ports = [port(vm_interface)?, port(network_interface)?];
            DpdkIo::inline(&eal, ports, &dcfg).map_err(dpdk_err("inline ports"))
        }
        AttachConfig::Mirror {
            interface,
            inject_interface,
        } => {
            let rx = port(interface)?;
            let inject = inject_interface.as_deref().map(port).transpose()?;
            DpdkIo::mirror(&eal, rx, inject, &dcfg).map_err(dpdk_err("mirror ports"))
        }
    }
}

fn poll_loop(
    cfg: &Config,
    io: &mut DpdkIo,
    h: &mut Handler,
    stop: &AtomicBool,
    usr1: &AtomicBool,
    status: &Arc<Mutex<WorkerStatus>>,
    control: &dataplane::shared_blocks::BlockControl,
) -> Result<(), DaemonError> {
    let interval =
        (cfg.stats_interval_secs > 0).then(|| Duration::from_secs(cfg.stats_interval_secs));
    let mut last_publish = Instant::now();
    let mut last_report = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        h.refresh();
        match io.poll(h, cfg.burst) {
            Ok(0) => std::thread::sleep(IDLE_SLEEP),
            Ok(_) => {}
            Err(e) => return Err(io_err("dpdk worker")(e)),
        }
        if last_publish.elapsed() >= PUBLISH_EVERY {
            publish(status, h, io);
            last_publish = Instant::now();
        }
        if usr1.swap(false, Ordering::Relaxed)
            || interval.is_some_and(|i| last_report.elapsed() >= i)
        {
            last_report = Instant::now();
            publish(status, h, io);
            eprintln!(
                "{}",
                status::render(&status::collect(std::slice::from_ref(status)), control)
            );
        }
    }
    Ok(())
}

fn publish(status: &Mutex<WorkerStatus>, h: &Handler, io: &DpdkIo) {
    let s = WorkerStatus {
        counters: h.worker.counters().clone(),
        ports: io.stats(),
        events_dropped: h.out.dropped,
        unroutable: io.unsent_injections(),
        flows: h.worker.flows().len(),
    };
    *status.lock().unwrap_or_else(PoisonError::into_inner) = s;
}
