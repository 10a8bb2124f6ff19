//! `svm run --config FILE`: the live daemon.
//!
//! Threads: N workers (each its own [`dataplane::worker::Worker`] and AF_PACKET sockets, joined
//! to one fanout group per interface when N > 1), one block keeper (the single writer of the
//! shared block table, see [`dataplane::shared_blocks`]), one EVE writer, and the main thread,
//! which waits for signals: SIGTERM/SIGINT stop everything cleanly (workers first, then the
//! keeper, then the writer, which flushes), SIGUSR1 prints the counters to standard error, as
//! does the periodic `stats_interval_secs` and the exit. SIGHUP reloads the activity scanner's
//! rules ([`rules`]: built on the `svm-rules` thread, then swapped in between bursts).
//!
//! Order of start-up: read and validate the whole configuration and the policy, load the rules
//! (every problem of every rule file reported with its key), start the control plane when
//! `state_dir` is set ([`plane`]: store, tokio runtime, API), create the EVE file, and only
//! then open sockets. With the control plane, the EVE writer thread is replaced
//! by the event pump, which feeds every event to the control state (and through it to the EVE
//! output, the spool and syslog).

pub mod clock;
pub mod config;
pub mod dbsync;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod keeper_events;
pub mod notify;
pub mod plane;
pub mod privileges;
pub mod revocation;
pub mod rules;
pub mod seccomp;
pub mod services;
pub mod stall;
pub mod status;
pub mod weblists;
pub mod workers;

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use dataplane::event::Event;
use dataplane::io::afpacket::{
    AfPacketAttach, AfPacketConfig, AfPacketError, AfPacketIo, Fanout, RingConfig,
};
use dataplane::stream::StreamConfig;
use dataplane::time::Timestamp;
use dataplane::worker::{Attach, Worker, WorkerConfig};
use policy::Policy;

use crate::cli::Exit;
use crate::eve::EveWriter;
use crate::rules_load::Loaded;
use config::{AttachConfig, Backend, Config, ConfigErrors};
use workers::{WorkerStatus, WorkerTask};

/// Errors of `svm run`.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration is invalid (every problem listed).
    #[error("{path}: invalid configuration:\n{errors}")]
    Config {
        /// The file.
        path: String,
        /// The problems.
        errors: ConfigErrors,
    },
    /// Opening the packet sockets failed.
    #[error("af-packet: {0}")]
    Open(#[from] AfPacketError),
    /// The state store is damaged, empty or in use (the message says the way out).
    #[error("{0}")]
    Store(crate::store::StoreError),
    /// Output or thread failure.
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl DaemonError {
    /// The process exit code.
    pub fn exit_code(&self) -> Exit {
        match self {
            DaemonError::Config { .. } => Exit::Syntax,
            _ => Exit::General,
        }
    }
}

fn io_err(what: &str) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
    move |source| DaemonError::Io {
        what: what.to_owned(),
        source,
    }
}

/// Wall-clock time as the dataplane sees it.
pub fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_secs_micros(d.as_secs(), d.subsec_micros())
}

/// Read and validate a configuration file, the files it names, the policy and the rules of its
/// `rules:` section; every problem of all of them in one report.
pub fn load(path: &Path) -> Result<(Config, Policy, Option<Loaded>), DaemonError> {
    let text = std::fs::read_to_string(path).map_err(|source| DaemonError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let invalid = |errors| DaemonError::Config {
        path: path.display().to_string(),
        errors,
    };
    let reading = Config::read_checked(&text).map_err(invalid)?;
    let mut issues = reading.issues;
    let policy = match &reading.policy {
        Some(p) => Policy::load(p).unwrap_or_else(|e| {
            let at = |message| config::ConfigIssue {
                key: "policy".into(),
                message,
            };
            match e {
                policy::LoadError::Io { source, .. } => {
                    issues.push(at(format!("{}: {source}", p.display())));
                }
                policy::LoadError::Invalid { source, .. } => {
                    issues.extend(source.iter().map(|e| at(format!("{}: {e}", p.display()))));
                }
            }
            Policy::default()
        }),
        None => Policy::default(),
    };
    // The policy file's rule files and variables apply over the `rules` section.
    let running =
        config::RulesSettings::with_policy(reading.rules.as_ref(), &policy.activity_scanner);
    let rules = match &running {
        Some(s) => rules::load(s).map_err(|i| issues.extend(i)).ok(),
        None => None,
    };
    match reading.config {
        Some(cfg) if issues.is_empty() => Ok((cfg, policy, rules)),
        _ => Err(invalid(ConfigErrors(issues))),
    }
}

fn open_eve(target: Option<&str>) -> Result<Option<Box<dyn Write + Send>>, DaemonError> {
    Ok(match target {
        None => None,
        Some("-") => Some(Box::new(std::io::stdout())),
        Some(path) => {
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(io_err(path))?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(io_err(path))?;
            Some(Box::new(f))
        }
    })
}

/// The EVE file's path and the flag SIGHUP raises: the writer then opens the path again, so
/// after logrotate renamed the file the daemon writes a new one.
pub(crate) struct Reopen {
    path: String,
    hup: Arc<AtomicBool>,
}

impl Reopen {
    /// Reopen `target` (a file, not standard output) on every SIGHUP.
    pub(crate) fn on_sighup(target: Option<&str>) -> Result<Option<Reopen>, DaemonError> {
        let Some(path) = target.filter(|t| *t != "-") else {
            return Ok(None);
        };
        Ok(Some(Reopen {
            path: path.to_owned(),
            hup: signal_flag(&[signal_hook::consts::SIGHUP])?,
        }))
    }
}

/// The flags the daemon's signals raise: SIGTERM and SIGINT `stop`, SIGUSR1 `usr1` (log the
/// counters), SIGHUP `hup` (reload the rules). One set for every backend.
pub(crate) struct Signals {
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) usr1: Arc<AtomicBool>,
    pub(crate) hup: Arc<AtomicBool>,
}

impl Signals {
    /// Register the daemon's signal handlers.
    pub(crate) fn register() -> Result<Signals, DaemonError> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
        Ok(Signals {
            stop: signal_flag(&[SIGTERM, SIGINT])?,
            usr1: signal_flag(&[SIGUSR1])?,
            hup: signal_flag(&[SIGHUP])?,
        })
    }
}

/// A flag that each of `signals` raises.
fn signal_flag(signals: &[std::ffi::c_int]) -> Result<Arc<AtomicBool>, DaemonError> {
    let flag = Arc::new(AtomicBool::new(false));
    for &sig in signals {
        signal_hook::flag::register(sig, Arc::clone(&flag)).map_err(io_err("signal handler"))?;
    }
    Ok(flag)
}

/// The EVE writer thread: writes every event, flushes whenever the queue runs dry (so a reader
/// sees events within a fraction of a second), reopens the file after a SIGHUP, returns when
/// every sender is gone.
fn eve_thread(
    rx: Receiver<Event>,
    out: Option<Box<dyn Write + Send>>,
    reopen: Option<Reopen>,
) -> std::io::Result<u64> {
    let writer = |o| EveWriter::new(Box::new(BufWriter::with_capacity(1 << 16, o)));
    let mut w = out.map(writer);
    let mut n = 0u64;
    loop {
        if let Some(r) = reopen.as_ref()
            && r.hup.swap(false, Ordering::Relaxed)
        {
            if let Some(w) = w.as_mut() {
                w.flush()?;
            }
            // A failed open keeps the old file; the next SIGHUP tries again.
            match open_eve(Some(&r.path)) {
                Ok(Some(f)) => w = Some(writer(f)),
                Ok(None) => {}
                Err(e) => tracing::warn!("svm run: EVE file not reopened: {e}"),
            }
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(ev) => {
                n += 1;
                if let Some(w) = w.as_mut() {
                    w.write(&ev)?;
                }
                while let Ok(ev) = rx.try_recv() {
                    n += 1;
                    if let Some(w) = w.as_mut() {
                        w.write(&ev)?;
                    }
                }
                if let Some(w) = w.as_mut() {
                    w.flush()?;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Some(w) = w.as_mut() {
        w.flush()?;
    }
    Ok(n)
}

/// Depth of the event queue between workers and the writer.
const EVENT_QUEUE: usize = 1 << 16;

/// Run the daemon until SIGTERM or SIGINT. `reset_state`: a damaged state store is kept aside
/// and a new one started ([`crate::store::prepare`]); without it a damaged store is refused.
pub fn run(config_path: &Path, reset_state: bool) -> Result<(), DaemonError> {
    let (cfg, policy, loaded) = load(config_path)?;
    if let Some(dir) = &cfg.state_dir {
        let file = dir.join("state.redb");
        let exe = std::env::current_exe().map_err(io_err("the svm executable"))?;
        match crate::store::prepare(&exe, &file, reset_state) {
            Ok(None) => {}
            Ok(Some(aside)) => tracing::warn!(
                "svm run: the damaged state store was kept as {}; starting a new store",
                aside.display()
            ),
            Err(e) => return Err(DaemonError::Store(e)),
        }
    }
    if let Some(l) = &loaded {
        tracing::info!("{}", rules::describe(l, "loaded"));
    }
    match cfg.backend {
        Backend::AfPacket => {}
        #[cfg(feature = "dpdk")]
        Backend::Dpdk => return dpdk::run(&cfg, policy, loaded),
        // Validation refuses dpdk in a build without the feature.
        #[cfg(not(feature = "dpdk"))]
        Backend::Dpdk => {
            return Err(DaemonError::Io {
                what: "backend dpdk".into(),
                source: std::io::Error::other("the DPDK backend is not part of this build"),
            });
        }
    }
    let Signals { stop, usr1, hup } = Signals::register()?;
    let workers = usize::from(cfg.workers);
    // Sockets are opened one worker after the other, so every fanout group has its members in
    // the same order and a symmetric hash picks the same worker on both interfaces.
    let attach = match &cfg.attach {
        AttachConfig::Inline {
            vm_interface,
            network_interface,
        } => AfPacketAttach::Inline {
            vm: vm_interface.clone(),
            network: network_interface.clone(),
        },
        AttachConfig::Mirror {
            interface,
            inject_interface,
        } => AfPacketAttach::Mirror {
            interface: interface.clone(),
            inject: inject_interface.clone(),
        },
    };
    let group = u16::try_from(std::process::id() & 0xfffe).unwrap_or(0x5356);
    let afp = AfPacketConfig {
        attach,
        ring: RingConfig {
            block_size: cfg.af_packet.block_size,
            block_count: cfg.af_packet.block_count,
            retire_ms: cfg.af_packet.retire_ms,
            ..RingConfig::default()
        },
        fanout: (workers > 1).then_some(Fanout {
            group,
            hash: cfg.af_packet.fanout_hash,
        }),
        promiscuous: cfg.af_packet.promiscuous,
    };
    let mut ios = Vec::with_capacity(workers);
    for _ in 0..workers {
        ios.push(AfPacketIo::open(&afp)?);
    }
    // The packet sockets were the only reason for capabilities: a daemon started as another
    // user than root with some (systemd's ambient ones) gives them all up now, while it has
    // one thread, since capabilities belong to each thread ([`privileges::drop_capabilities`]).
    // Frames that arrive while the services start wait in the rings; the workers read them
    // after the isolations are restored.
    if !nix::unistd::geteuid().is_root() {
        privileges::drop_capabilities().map_err(|e| DaemonError::Io {
            what: "privileges".into(),
            source: std::io::Error::other(e),
        })?;
        tracing::info!("svm run: packet sockets open, no capabilities kept");
    }

    let live_rules = rules::LiveRules::start(
        cfg.rules.as_ref(),
        config::RulesSettings::with_policy(cfg.rules.as_ref(), &policy.activity_scanner),
        loaded,
        Some(hup),
    )?;

    let mut services = services::Services::start(&cfg, policy, workers, &live_rules)?;
    // Web address lists: loaded before any socket opens, reloaded on SIGHUP and policy pushes.
    let live_web = match start_web_lists(&cfg, &services) {
        Ok(w) => w,
        Err(e) => {
            let _ = services.finish();
            live_rules.stop();
            return Err(e);
        }
    };

    // Everything privileged is open: become `run_as` ([`privileges`]).
    if let Some(user) = &cfg.run_as {
        let dirs: Vec<std::path::PathBuf> = cfg.state_dir.iter().cloned().collect();
        let mut files: Vec<std::path::PathBuf> = cfg
            .eve
            .iter()
            .filter(|e| *e != "-")
            .map(Into::into)
            .collect();
        files.extend(cfg.outputs.eve.iter().map(|e| e.path.clone()));
        if let Err(e) = privileges::drop_to(user, &dirs, &files) {
            drop(ios);
            let _ = services.finish();
            live_rules.stop();
            return Err(DaemonError::Io {
                what: "privileges".into(),
                source: std::io::Error::other(e),
            });
        }
        tracing::info!("svm run: running as {user} (no capabilities kept)");
    }
    // Privileges are gone: confine every thread, those running and those to come
    // ([`seccomp`]).
    if cfg.seccomp != seccomp::Mode::Off {
        if let Err(e) = seccomp::install(cfg.seccomp) {
            let _ = services.finish();
            live_rules.stop();
            live_web.stop();
            return Err(DaemonError::Io {
                what: "security.seccomp".into(),
                source: std::io::Error::other(e),
            });
        }
        tracing::info!(
            "svm run: system call filter installed on every thread ({})",
            cfg.seccomp.as_str()
        );
    }

    let mut statuses = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    let mut failed = None;
    let clients = std::mem::take(&mut services.clients);
    for (index, (io, blocks)) in ios.into_iter().zip(clients).enumerate() {
        let wcfg = worker_config(&cfg, u16::try_from(index).unwrap_or(u16::MAX));
        let status = Arc::new(Mutex::new(WorkerStatus::default()));
        statuses.push(Arc::clone(&status));
        let mut worker = Worker::new(wcfg, Arc::clone(&services.compiled), blocks);
        if let Some(c) = services.isolation_client() {
            worker.set_isolation(c);
        }
        let task = WorkerTask {
            worker,
            io,
            events: services.events(),
            burst: cfg.burst,
            stop: Arc::clone(&stop),
            status,
            policy: services.policy_cell(),
            rules: Arc::clone(&live_rules.cell),
            web: Arc::clone(&live_web.cell),
            clock: services.clock,
        };
        match std::thread::Builder::new()
            .name(format!("svm-worker-{index}"))
            .spawn(move || workers::run(task))
        {
            Ok(h) => handles.push(h),
            Err(e) => {
                // Stop the workers already running, then shut down as on a signal.
                failed = Some(e);
                stop.store(true, Ordering::Relaxed);
                break;
            }
        }
    }
    services.workers_started(&statuses);
    tracing::info!(
        "svm run: {} worker{} on {} ({}), policy {}, mode {}",
        workers,
        if workers == 1 { "" } else { "s" },
        describe(&cfg.attach),
        if cfg.af_packet.fanout_hash == dataplane::io::afpacket::FanoutHash::Kernel {
            "kernel flow hash"
        } else {
            "address hash"
        },
        services.policy_source(cfg.policy.as_deref()),
        services.compiled.policy().mode,
    );

    let mut notifier = notify::Notifier::from_env();
    if failed.is_none() {
        notifier.ready(&format!(
            "{workers} worker(s) forwarding on {}",
            describe(&cfg.attach)
        ));
    }
    let interval =
        (cfg.stats_interval_secs > 0).then(|| Duration::from_secs(cfg.stats_interval_secs));
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if usr1.swap(false, Ordering::Relaxed) || interval.is_some_and(|i| last.elapsed() >= i) {
            last = Instant::now();
            tracing::info!(
                "{}\n  {}\n  {}",
                status::render(&status::collect(&statuses), &services.control),
                live_rules.status().line(),
                live_web.status().line()
            );
        }
        // Read before looking at the workers: once a stop is asked for they end as told, and a
        // set in probation must not be rolled back for that.
        let stopping = stop.load(Ordering::Relaxed);
        if !stopping && handles.iter().any(JoinHandle::is_finished) {
            // A worker ended by itself: an I/O error. Stop the others and report it.
            services.worker_ended();
            stop.store(true, Ordering::Relaxed);
        } else {
            notifier.watchdog_tick();
        }
    }
    notifier.stopping("stopping: workers, then the keeper, the writer and the control plane");
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = Some(e),
            Err(_) => failed = Some(std::io::Error::other("worker panicked")),
        }
    }
    let control = services.control.clone();
    let summary = services.finish()?;
    let rules_line = live_rules.status().line();
    live_rules.stop();
    let web_line = live_web.status().line();
    live_web.stop();
    let total = status::collect(&statuses);
    tracing::info!(
        "{}\n  {rules_line}\n  {web_line}",
        status::render(&total, &control)
    );
    summary.print();
    match failed {
        Some(e) => Err(DaemonError::Io {
            what: "worker".into(),
            source: e,
        }),
        None => Ok(()),
    }
}

/// Load the web address lists of the configuration and the policy in force, and follow SIGHUP
/// (a flag of their own) and policy pushes.
fn start_web_lists(
    cfg: &Config,
    services: &services::Services,
) -> Result<weblists::LiveWebLists, DaemonError> {
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
        .map_err(io_err("signal handler"))?;
    weblists::LiveWebLists::start(
        cfg.web_lists.clone(),
        services.compiled.policy(),
        hup,
        services.policy_cell(),
        services.web_db(),
    )
}

/// The settings of worker `index`, the same for every backend, through the one builder replay
/// uses too. A mirror port sees traffic it cannot hold back: Suricata's IDS timing, unless
/// `rules.stream.inline` asks for inspection on arrival.
fn worker_config(cfg: &Config, index: u16) -> WorkerConfig {
    let rules = cfg.rules.as_ref();
    let stream = StreamConfig::default();
    WorkerConfig::builder()
        .attach(match cfg.attach {
            AttachConfig::Inline { .. } => Attach::Inline,
            AttachConfig::Mirror { .. } => Attach::Mirror,
        })
        .inline_inspection(rules.is_some_and(|r| r.inline))
        .verify_checksums(cfg.verify_checksums)
        .max_flows(cfg.max_flows)
        .defrag_caps(cfg.defrag_max_datagrams, cfg.defrag_max_bytes)
        .stream(
            rules.map_or(stream.midstream, |r| r.midstream),
            rules.map_or(stream.depth, |r| r.stream_depth),
        )
        .stream_memcap(rules.map_or(dataplane::stream::DEFAULT_MEMCAP, |r| r.stream_memcap))
        .async_oneside(rules.is_some_and(|r| r.async_oneside))
        .urgent(
            rules.map_or(stream.urgent, |r| r.urgent_policy),
            rules.map_or(stream.urgent_oob_limit, |r| r.urgent_oob_limit_policy),
        )
        .tls_inspect_encrypted(rules.is_some_and(|r| r.tls_inspect_encrypted))
        .detection_ports(rules.map(|r| r.detection_ports).unwrap_or_default())
        .host_os(rules.map(|r| r.host_os).unwrap_or_default())
        .index(index)
        .build()
}

fn describe(a: &AttachConfig) -> String {
    match a {
        AttachConfig::Inline {
            vm_interface,
            network_interface,
        } => format!("inline {vm_interface} <-> {network_interface}"),
        AttachConfig::Mirror {
            interface,
            inject_interface,
        } => match inject_interface {
            Some(i) => format!("mirror {interface}, inject on {i}"),
            None => format!("mirror {interface}"),
        },
    }
}
