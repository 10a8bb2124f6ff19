//! `svm run` with `backend: dpdk` (cargo feature `dpdk`): one worker per configured core.
//!
//! Order of start-up: signal handlers, the rules, the [`Services`] (control plane when `state_dir`
//! is set, event writer or pump, block keeper) first, then
//! `rte_eal_init` on the main thread (it pins the calling thread to the main lcore, and threads
//! spawned afterwards would inherit that affinity), then a check that the EAL runs an lcore per
//! worker, then the ports, found by their device names (`net_af_packet0`, `0000:00:04.0`, ...).
//!
//! Workers: worker 0 is the main thread (main lcore); workers 1.. run on the EAL's worker
//! lcores, launched with `rte_eal_remote_launch` ([`Eal::launch`]): EAL threads pinned to the
//! CPUs of `-l`, each with its lcore's mempool cache. (`rte_thread_register` on our own threads
//! works in DPDK 22.11 too, but those threads would inherit the main lcore's affinity and need
//! pinning by hand; the EAL's worker threads already are.) How frames reach the workers, RSS or
//! the software distributor, is [`DpdkWorkers`]' business; `dpdk.distribution` and `dpdk.hash`
//! choose. Every worker has its own engine ([`Worker`]: flows, defragmenter, detectors) and
//! shares the compiled policy (an `Arc`) and the block table (the keeper's published snapshot
//! plus the fresh blocks every worker reads per packet), so a block made by one worker drops the
//! attacker's next frame on all of them.
//!
//! Each worker runs the one driver loop ([`run_worker`]): it polls in bursts, stamps each burst
//! with the wall clock, and publishes its counters once a second; the main thread also handles
//! SIGUSR1, the stats interval and SIGTERM/SIGINT, and sums the workers' counters for status and
//! the final summary. An idle poll (no frame) sleeps [`dataplane::io::IDLE_SLEEP`]: on a small
//! machine, or over `net_af_packet`, busy polling starves whatever feeds the ports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dataplane::driver::{Driver, RunConfig, publish, run_worker};
use dataplane::io::dpdk::{
    DpdkConfig, DpdkIo, DpdkWorkers, Eal, FlowHash, Launched, Spread, WorkersConfig,
};
use dataplane::shared_blocks::BlockControl;
use dataplane::worker::Worker;
use policy::Policy;

use crate::rules_load::Loaded;

use super::config::{AttachConfig, Config, DpdkDistribution, DpdkHash, RulesSettings};
use super::rules::LiveRules;
use super::services::Services;
use super::workers::{WorkerStatus, driver};
use super::{DaemonError, Signals, io_err, status, worker_config};

fn dpdk_err(what: &str) -> impl FnOnce(dataplane::io::dpdk::DpdkError) -> DaemonError + '_ {
    move |e| DaemonError::Io {
        what: format!("dpdk: {what}"),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Run the daemon on DPDK ports until SIGTERM or SIGINT (SIGHUP reloads `rules`).
pub fn run(cfg: &Config, policy: Policy, rules: Option<Loaded>) -> Result<(), DaemonError> {
    let Signals { stop, usr1, hup } = Signals::register()?;
    let live_rules = LiveRules::start(
        cfg.rules.as_ref(),
        RulesSettings::with_policy(cfg.rules.as_ref(), &policy.activity_scanner),
        rules,
        Some(hup),
    )?;

    let workers = usize::from(cfg.workers.max(1));
    // Every other thread exists before the EAL pins this one.
    let mut services = Services::start(cfg, policy, workers, &live_rules)?;
    let live_web = match super::start_web_lists(cfg, &services) {
        Ok(w) => w,
        Err(e) => {
            let _ = services.finish();
            live_rules.stop();
            return Err(e);
        }
    };
    let statuses: Vec<Arc<Mutex<WorkerStatus>>> = (0..workers)
        .map(|_| Arc::new(Mutex::new(WorkerStatus::default())))
        .collect();
    // One engine per worker, each with its block-table client and event sender, following the
    // pushed policy (with the control plane) and the reloaded rules.
    let mut handlers: Vec<Driver> = std::mem::take(&mut services.clients)
        .into_iter()
        .zip(0u16..)
        .map(|(blocks, i)| {
            let mut worker = Worker::new(
                worker_config(cfg, i),
                Arc::clone(&services.compiled),
                blocks,
            );
            if let Some(c) = services.isolation_client() {
                worker.set_isolation(c);
            }
            driver(
                worker,
                services.events(),
                Arc::clone(&live_rules.cell),
                services.policy_cell(),
                services.clock,
            )
            .with_web(Arc::clone(&live_web.cell))
            .with_port_names(cfg.attach.port_names())
        })
        .collect();
    let result = open(cfg).and_then(|(eal, set)| {
        services.workers_started(&statuses);
        tracing::info!(
            "svm run: {workers} worker{} on dpdk {} ({}), policy {}, mode {}",
            if workers == 1 { "" } else { "s" },
            super::describe(&cfg.attach),
            describe_set(&set),
            services.policy_source(cfg.policy.as_deref()),
            services.compiled.policy().mode,
        );
        run_workers(
            cfg,
            &eal,
            set,
            &mut handlers,
            &stop,
            &Report {
                usr1: &usr1,
                statuses: &statuses,
                control: &services.control,
                rules: &live_rules,
                ended: &Arc::new(AtomicBool::new(false)),
                worker_ended: &|| services.worker_ended(),
            },
        )
    });
    // The workers' senders go with their handlers: the writer ends once the keeper has too.
    drop(handlers);
    let control = services.control.clone();
    let summary = services.finish();
    let rules_line = live_rules.status().line();
    live_rules.stop();
    live_web.stop();
    result?;
    let summary = summary?;
    tracing::info!(
        "{}\n  {rules_line}",
        status::render(&status::collect(&statuses), &control)
    );
    summary.print();
    Ok(())
}

fn describe_set(set: &DpdkWorkers) -> String {
    let hash = match set.hash() {
        FlowHash::Addresses => "addresses",
        FlowHash::Flows => "addresses and ports",
    };
    let spread = match set.spread() {
        Spread::Single => "main lcore, one queue per port".to_owned(),
        Spread::Rss => format!("RSS over a receive queue per worker, symmetric key on {hash}"),
        Spread::Software => format!("software distribution by a symmetric hash of {hash}"),
    };
    let txq = set.tx_queues();
    let shared = set
        .ios()
        .len()
        .checked_sub(1)
        .is_some_and(|_| txq.iter().any(|&q| usize::from(q) < set.ios().len()));
    format!(
        "{spread}; transmit queues per port {txq:?}{}",
        if shared { " (shared under a lock)" } else { "" }
    )
}

/// Initialise the EAL (on this thread), check it runs an lcore per worker, and open the
/// configured ports for the workers.
fn open(cfg: &Config) -> Result<(Eal, DpdkWorkers), DaemonError> {
    let eal = Eal::init(&cfg.eal_args).map_err(dpdk_err("EAL init"))?;
    let lcores = eal.lcore_count();
    if u32::from(cfg.workers) > lcores {
        return Err(dpdk_err("workers")(
            dataplane::io::dpdk::DpdkError::Lcores {
                workers: cfg.workers,
                lcores,
            },
        ));
    }
    let port = |name: &str| eal.port_by_name(name).map_err(dpdk_err("port"));
    let dcfg = DpdkConfig::default();
    let wcfg = WorkersConfig {
        workers: cfg.workers.max(1),
        distribution: match cfg.dpdk.distribution {
            DpdkDistribution::Auto => dataplane::io::dpdk::Distribution::Auto,
            DpdkDistribution::Rss => dataplane::io::dpdk::Distribution::Rss,
            DpdkDistribution::Software => dataplane::io::dpdk::Distribution::Software,
        },
        hash: match cfg.dpdk.hash {
            DpdkHash::Addresses => FlowHash::Addresses,
            DpdkHash::Flows => FlowHash::Flows,
        },
        ring_size: cfg.dpdk.ring_size,
    };
    let set = match &cfg.attach {
        AttachConfig::Inline {
            vm_interface,
            network_interface,
        } => {
            let ports = [port(vm_interface)?, port(network_interface)?];
            DpdkWorkers::inline(&eal, ports, &dcfg, &wcfg).map_err(dpdk_err("inline ports"))?
        }
        AttachConfig::Mirror {
            interface,
            inject_interface,
        } => {
            let rx = port(interface)?;
            let inject = inject_interface.as_deref().map(port).transpose()?;
            DpdkWorkers::mirror(&eal, rx, inject, &dcfg, &wcfg).map_err(dpdk_err("mirror ports"))?
        }
    };
    Ok((eal, set))
}

/// What worker 0 reports on SIGUSR1 and every `stats_interval_secs`.
struct Report<'a> {
    usr1: &'a AtomicBool,
    statuses: &'a [Arc<Mutex<WorkerStatus>>],
    control: &'a BlockControl,
    rules: &'a LiveRules,
    /// Set by a worker on a worker lcore that ended by itself (not asked to stop).
    ended: &'a Arc<AtomicBool>,
    /// Told when a worker ended by itself (a database set in probation is rolled back).
    worker_ended: &'a dyn Fn(),
}

/// Launch workers 1.. on the worker lcores, run worker 0 here until stopped, then stop and wait
/// for the others.
fn run_workers(
    cfg: &Config,
    eal: &Eal,
    set: DpdkWorkers,
    handlers: &mut Vec<Driver>,
    stop: &Arc<AtomicBool>,
    report: &Report<'_>,
) -> Result<(), DaemonError> {
    let statuses = report.statuses;
    let mut ios = set.into_ios().into_iter();
    let (Some(mut io0), Some(status0)) = (ios.next(), statuses.first()) else {
        return Err(dpdk_err("workers")(dataplane::io::dpdk::DpdkError::Config(
            "no worker",
        )));
    };
    let mut others = handlers.drain(1..);
    let mut launched: Vec<Launched> = Vec::new();
    let mut failure = None;
    for ((io, lcore), status) in ios.zip(eal.worker_lcores()).zip(statuses.iter().skip(1)) {
        let Some(h) = others.next() else { break };
        let (stop, status, burst) = (Arc::clone(stop), Arc::clone(status), cfg.burst);
        let ended = Arc::clone(report.ended);
        match eal.launch(lcore, move || {
            worker_loop(io, h, &stop, &status, burst, &ended)
        }) {
            Ok(l) => launched.push(l),
            Err(e) => {
                failure = Some(dpdk_err("launch")(e));
                break;
            }
        }
    }
    drop(others);
    let result = match failure {
        Some(e) => Err(e),
        None => {
            let h0 = handlers
                .first_mut()
                .ok_or_else(|| io_err("dpdk worker")(std::io::Error::other("no handler")))?;
            main_loop(cfg, &mut io0, h0, stop, status0, report)
        }
    };
    // Read before the others are told to stop: a worker that ended by itself (worker 0 here,
    // or one on a worker lcore, which ends worker 0's loop) is reported as the AF_PACKET
    // workers' are; one that ended because a stop was asked for is not.
    if !stop.load(Ordering::Relaxed) {
        (report.worker_ended)();
    }
    // However worker 0 ended, the others end too; their I/O and handlers are dropped on their
    // lcores, and the ports close with the last I/O.
    stop.store(true, Ordering::Relaxed);
    for l in launched {
        let lcore = l.lcore();
        if l.wait() != 0 {
            tracing::error!("svm run: the worker on lcore {lcore} failed");
        }
    }
    result
}

/// A worker on a worker lcore: poll until `stop`, publishing its counters; 0 when it ends.
fn worker_loop(
    mut io: DpdkIo,
    mut d: Driver,
    stop: &AtomicBool,
    status: &Mutex<WorkerStatus>,
    burst: usize,
    ended: &AtomicBool,
) -> i32 {
    let run = RunConfig {
        burst,
        stop,
        status: Some(status),
    };
    let r = run_worker(&mut io, &mut d, &run, |_, _, _| Ok::<_, std::io::Error>(()));
    if !stop.load(Ordering::Relaxed) {
        ended.store(true, Ordering::Relaxed);
    }
    match r {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("svm run: dpdk worker {}: {e}", io.worker());
            -1
        }
    }
}

/// Worker 0, on the main lcore: polls like the others, and reports for all of them on SIGUSR1
/// and every `stats_interval_secs` (publishing its own status first).
fn main_loop(
    cfg: &Config,
    io: &mut DpdkIo,
    d: &mut Driver,
    stop: &AtomicBool,
    own: &Mutex<WorkerStatus>,
    r: &Report<'_>,
) -> Result<(), DaemonError> {
    let interval =
        (cfg.stats_interval_secs > 0).then(|| Duration::from_secs(cfg.stats_interval_secs));
    let mut last_report = Instant::now();
    let run = RunConfig {
        burst: cfg.burst,
        stop,
        status: Some(own),
    };
    run_worker(io, d, &run, |d, io, _| {
        if r.ended.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("a worker on another lcore ended"));
        }
        let report = r.usr1.swap(false, Ordering::Relaxed)
            || interval.is_some_and(|i| last_report.elapsed() >= i);
        if report {
            publish(own, d, io);
            last_report = Instant::now();
            tracing::info!(
                "{}\n  {}",
                status::render(&status::collect(r.statuses), r.control),
                r.rules.status().line()
            );
        }
        Ok::<_, std::io::Error>(())
    })
    .map_err(io_err("dpdk worker"))
}
