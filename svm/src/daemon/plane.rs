//! The control plane inside `svm run` (when `state_dir` is set).
//!
//! - **Policy**: [`ControlState`] owns the running policy; its `on_policy` hook stores each newly
//!   applied compiled policy in a [`PolicyCell`], which every worker checks once per receive
//!   burst (one atomic load) and swaps in between two packets. The control plane never holds a
//!   lock on the per-packet path. Before the first push the policy file of the configuration
//!   runs as version 0; once a policy was pushed, the stored one wins at every start.
//! - **Blocks**: the [`dataplane::shared_blocks`] keeper is the one block table. `ControlState`
//!   keeps none: manual blocks and unblocks made through the API are commands to the keeper,
//!   listings read its snapshot, and every change it makes (worker blocks, manual ones,
//!   expiries, evictions) comes back as a keeper event through [`ControlState::ingest`], which
//!   stores it and feeds the decision stream. Blocks in the store go back to the keeper before
//!   it runs with their original creation, expiry and origin, so they keep their remaining time.
//! - **Events**: worker events (bounded queue, dropped and counted when full) and keeper events
//!   ([`super::keeper_events`]) go to one pump thread that calls `ingest`; the event hub then
//!   spools them for the central server and writes the local outputs (EVE file, syslog). The
//!   legacy EVE writer is not started in this mode, so nothing is written twice. The block
//!   keeper's queue is bounded and the keeper never waits on it: what a full queue drops is
//!   counted (`svm_queue_dropped_total{queue="keeper_events"}`, an `engine_overload` event), and
//!   the pump, once the keeper has published the lost changes, brings the store and the
//!   decision stream in line with its table ([`ControlState::resync_blocks`]), so no block is
//!   lost with its event. Isolation events have a small queue of their own and are never dropped
//!   (the isolation keeper waits; the module doc there says why that cannot deadlock).
//! - **Runtime**: one tokio runtime on its own threads (`svm-ctl`), built before the packet
//!   backend is opened, serves the mTLS API and runs the central sender and the NSX tagger.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dataplane::event::Event;
use dataplane::shared_blocks::BlockControl;
use policy::{CompiledPolicy, Policy};

use super::DaemonError;
use super::config::{Config, NsxAuthKind};
use super::dbsync::{AttackDefs, DbSync, DbThread};
use super::keeper_events::{KeeperEventStats, KeeperEvents};
use super::rules::{RulesFollower, RulesStatus, RulesSwapper};
use super::stall::{Change, StallWatch};
use super::workers::{PolicyCell, WorkerStatus};
use crate::api::{ApiConfig, RoleMap};
use crate::control::{Control, ControlConfig, ControlState, Hooks, Metric};
use crate::events::{EventHub, HubConfig, LocalOutput, Record};
use crate::https::HttpsClient;
use crate::inventory::Inventory;
use crate::store::Store;

fn fail(what: &str, e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Io {
        what: what.to_owned(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// EVE lines on standard output (`eve: "-"`).
struct StdoutOutput;

impl LocalOutput for StdoutOutput {
    fn write(&mut self, rec: &Record) -> std::io::Result<()> {
        use std::io::Write;
        let mut line = serde_json::to_vec(&rec.value).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut out = std::io::stdout().lock();
        out.write_all(&line)?;
        out.flush()
    }
}

/// Worker status cells, filled in once the workers exist (for `/metrics`).
pub type WorkerStatuses = Arc<std::sync::OnceLock<Vec<Arc<Mutex<WorkerStatus>>>>>;

/// The running control plane.
pub struct Plane {
    /// Set once the workers are started.
    pub workers: WorkerStatuses,
    /// The core.
    pub control: Arc<ControlState>,
    /// What the workers run.
    pub policy: Arc<PolicyCell>,
    /// Where the API listens, if it does.
    pub api_addr: Option<SocketAddr>,
    /// The database's address lists, swapped by the database updater.
    pub web_db: Arc<super::weblists::WebDb>,
    /// Counters of the block keeper's event queue (made by [`super::services`]).
    pub keeper_events: Arc<KeeperEventStats>,
    runtime: tokio::runtime::Runtime,
    shutdown: tokio::sync::watch::Sender<bool>,
    db: Option<DbThread>,
}

impl std::fmt::Debug for Plane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plane")
            .field("api_addr", &self.api_addr)
            .finish_non_exhaustive()
    }
}

fn client(ca: &Path, cert: Option<(&Path, &Path)>) -> Result<HttpsClient, DaemonError> {
    let roots = crate::tls::load_certs(ca).map_err(|e| fail("tls", e))?;
    let id = match cert {
        Some((c, k)) => Some(crate::tls::load_identity(c, k).map_err(|e| fail("tls", e))?),
        None => None,
    };
    let cfg = crate::tls::client_config(&roots, id).map_err(|e| fail("tls", e))?;
    Ok(HttpsClient::new(cfg, Duration::from_secs(10)))
}

impl Plane {
    /// Open the store, start the runtime, the API, the central sender and the tagger, all on
    /// the daemon's one `clock`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        cfg: &Config,
        file_policy: Policy,
        blocks: BlockControl,
        rules: Arc<Mutex<RulesStatus>>,
        follower: Option<RulesFollower>,
        swapper: RulesSwapper,
        isolation: Option<dataplane::isolation::IsolationControl>,
        clock: Arc<dyn crate::control::Clock>,
    ) -> Result<Plane, DaemonError> {
        let Some(dir) = &cfg.state_dir else {
            return Err(fail("control plane", "no state_dir"));
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(&dir.display().to_string(), e))?;
        let store =
            Arc::new(Store::open(&dir.join("state.redb")).map_err(|e| fail("state store", e))?);

        let mut outputs: Vec<Box<dyn LocalOutput>> = Vec::new();
        if let Some(e) = &cfg.outputs.eve {
            outputs.push(Box::new(
                crate::events::eve_file::RotatingFile::new(e.path.clone(), e.max_bytes, e.keep)
                    .reopen_on_sighup()
                    .map_err(|e| fail("signal handler", e))?,
            ));
        }
        match cfg.eve.as_deref() {
            None => {}
            Some("-") => outputs.push(Box::new(StdoutOutput)),
            Some(p) => outputs.push(Box::new(
                crate::events::eve_file::RotatingFile::new(p.into(), u64::MAX, 0)
                    .reopen_on_sighup()
                    .map_err(|e| fail("signal handler", e))?,
            )),
        }
        if let Some(s) = &cfg.outputs.syslog {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "svm".into());
            outputs.push(Box::new(crate::events::syslog::SyslogSender::new(
                s.target,
                s.transport,
                &host,
                s.cef,
            )));
        }
        let hub = EventHub::start(store.clone(), HubConfig::default(), outputs)
            .map_err(|e| fail("event hub", e))?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("svm-ctl")
            .enable_all()
            .build()
            .map_err(|e| fail("tokio runtime", e))?;
        let _enter = runtime.enter();
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);

        let tagger = match &cfg.nsx {
            Some(n) => {
                let http = client(&n.ca, None)?;
                let password = n.password.read().map_err(|e| fail("nsx password", e))?;
                let auth = match n.auth {
                    NsxAuthKind::Basic => crate::nsx::NsxAuth::Basic {
                        user: n.user.clone(),
                        password,
                    },
                    NsxAuthKind::Session => crate::nsx::NsxAuth::Session {
                        user: n.user.clone(),
                        password,
                    },
                };
                let mut ncfg = crate::nsx::NsxConfig::new(n.url.clone(), auth);
                ncfg.scope.clone_from(&n.scope);
                ncfg.tag.clone_from(&n.tag);
                ncfg.isolation_scope.clone_from(&n.isolation_scope);
                ncfg.isolation_tag.clone_from(&n.isolation_tag);
                Some(crate::nsx::Tagger::spawn(
                    Arc::new(crate::nsx::NsxClient::new(ncfg, http)),
                    store.clone(),
                    hub.clone(),
                    clock.clone(),
                ))
            }
            None => None,
        };
        if let Some(c) = &cfg.central {
            let http = client(&c.ca, Some((&c.cert, &c.key)))?;
            let mut ccfg = crate::events::central::CentralConfig::new(c.url.clone());
            ccfg.batch_max = c.batch;
            ccfg.backoff_max = Duration::from_secs(c.retry_max_secs);
            runtime.spawn(crate::events::central::run(
                hub.clone(),
                http,
                ccfg,
                shutdown_rx.clone(),
            ));
        }

        let inventory = Inventory::new(cfg.inventory.clone()).map_err(|errs| {
            fail(
                "inventory",
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        // Per-VM protection names inventory ids: an id the inventory lacks is refused, at start
        // as on a push (docs/policy.md, `protection`).
        let vm_ids: Arc<std::collections::HashSet<String>> =
            Arc::new(cfg.inventory.iter().map(|v| v.id.clone()).collect());
        let unknown: Vec<String> = file_policy
            .protection
            .unknown_vms(|id| vm_ids.contains(id))
            .map(|e| e.to_string())
            .collect();
        if !unknown.is_empty() {
            return Err(fail("policy", unknown.join("; ")));
        }
        let cell = Arc::new(PolicyCell::new(Arc::new(CompiledPolicy::compile(
            file_policy.clone(),
        ))));
        let workers: WorkerStatuses = Arc::default();
        let keeper_events = Arc::new(KeeperEventStats::default());
        let web_db = Arc::new(super::weblists::WebDb::default());
        // The admin's policy with the database's attack blocker definitions laid under it.
        let defs = Arc::new(AttackDefs::new(Arc::clone(&cell)));
        let stalls = Arc::new(StallWatch::new(super::stall::STALL_AFTER));
        let stall_clock = Arc::clone(&clock);
        let stall_stop = shutdown_rx.clone();
        // The databases' rules go in before any port opens (docs/databases.md).
        let db = match &cfg.db {
            Some(d) => {
                let hub = hub.clone();
                let clock = Arc::clone(&clock);
                let emit: super::dbsync::Emit = Box::new(move |kind, severity, fields| {
                    hub.emit(Record::new(clock.now(), kind, severity, fields));
                });
                let sync = DbSync::new(d.clone(), swapper, emit)
                    .map_err(|e| fail("db", e))?
                    .with_web(Arc::clone(&web_db))
                    .with_attack_defs(Arc::clone(&defs))
                    .with_workers(Arc::clone(&workers));
                let sync = Arc::new(sync);
                sync.start();
                Some(sync)
            }
            None => None,
        };
        let hooks = {
            let dbm = db.clone();
            let defs = Arc::clone(&defs);
            let (stalled, stalled_m) = (Arc::clone(&stalls), Arc::clone(&stalls));
            let (w, b) = (workers.clone(), blocks.clone());
            let r = Arc::clone(&rules);
            let config = cfg.rules.clone();
            let queues = (
                Arc::clone(hub.stats()),
                tagger.as_ref().map(|t| {
                    (
                        Arc::clone(t.overload()),
                        Arc::clone(t.quarantine_overload()),
                    )
                }),
                Arc::clone(&keeper_events),
            );
            Hooks {
                on_policy: Some(Box::new(move |p| {
                    if let Some(f) = &follower {
                        f.follow(&p.policy().activity_scanner);
                    }
                    defs.policy(p);
                })),
                validate: Some(Box::new(move |p| {
                    let mut problems =
                        super::rules::check_policy(config.as_ref(), &p.activity_scanner);
                    problems.extend(super::weblists::check_policy(&p.web_address_scan));
                    problems.extend(p.protection.unknown_vms(|id| vm_ids.contains(id)));
                    problems
                })),
                metrics: Some(Box::new(move || {
                    let mut m = dataplane_metrics(&w, &b, &rules);
                    m.push(queue_metric(
                        &queues.0,
                        queues.1.as_ref().map(|(t, q)| (&**t, &**q)),
                        &queues.2,
                    ));
                    m.extend(queues.2.metrics());
                    if let Some(d) = &dbm {
                        m.extend(d.metrics());
                    }
                    #[allow(clippy::cast_precision_loss)]
                    m.push(Metric {
                        name: "svm_workers_stalled",
                        help: "Workers alive but publishing no status for 10 s or more (hung).",
                        kind: "gauge",
                        samples: vec![(Vec::new(), stalled_m.stalled().len() as f64)],
                    });
                    let e = dataplane::rules::runtime::runtime_errors();
                    #[allow(clippy::cast_precision_loss)]
                    m.push(Metric {
                        name: "svm_rule_runtime_errors_total",
                        help: "Rule engine run-time errors: buffer inspections that used up their steps, expressions over the size limits at first use.",
                        kind: "counter",
                        samples: vec![
                            (vec![("kind", "inspect_limit".into())], e.inspect_limit as f64),
                            (
                                vec![("kind", "regex_size_limit".into())],
                                e.regex_size_limit as f64,
                            ),
                        ],
                    });
                    m
                })),
                degraded: Some(Box::new(move || {
                    let s = stalled.stalled();
                    (!s.is_empty()).then(|| {
                        let ids: Vec<String> = s.iter().map(ToString::to_string).collect();
                        format!("worker {} stalled (no status for 10 s)", ids.join(", "))
                    })
                })),
                rules: Some(Box::new(move || {
                    r.lock().unwrap_or_else(PoisonError::into_inner).summary()
                })),
                db: db.clone().map(|d| d as Arc<dyn crate::api::db::DbControl>),
                isolation,
            }
        };
        let control = Arc::new(
            ControlState::open(
                ControlConfig::default(),
                store,
                hub,
                clock,
                Arc::new(inventory),
                tagger,
                hooks,
                blocks,
            )
            .map_err(|e| fail("control state", e))?,
        );
        if !control.seed_policy(file_policy) {
            defs.policy(control.compiled());
        }
        let mut api_addr = None;
        if let Some(a) = &cfg.api {
            let id = crate::tls::load_identity(&a.cert, &a.key).map_err(|e| fail("api", e))?;
            let ca = crate::tls::load_certs(&a.client_ca).map_err(|e| fail("api", e))?;
            // Clients without a certificate only when bouncers need them (and then they reach
            // only the decisions stream).
            let client_auth = if a.bouncer_keys.is_empty() {
                crate::tls::ClientAuth::Required
            } else {
                crate::tls::ClientAuth::OptionalForBouncers
            };
            let revocation = super::revocation::Revocation {
                ca,
                auth: client_auth,
                files: a.crl.clone(),
            };
            let (first, _) = revocation.build().map_err(|e| fail("api.crl", e))?;
            let verifier = crate::tls::SwappableVerifier::new(first);
            let tls = crate::tls::server_config_with(id, verifier.clone())
                .map_err(|e| fail(&format!("api.cert {}", a.cert.display()), e))?;
            if !revocation.files.is_empty() {
                super::revocation::watch(&runtime, revocation, verifier)
                    .map_err(|e| fail("signal handler", e))?;
            }
            let std_listener = std::net::TcpListener::bind(a.listen)
                .map_err(|e| fail(&format!("api listen {}", a.listen), e))?;
            std_listener
                .set_nonblocking(true)
                .map_err(|e| fail("api", e))?;
            api_addr = std_listener.local_addr().ok();
            let listener =
                tokio::net::TcpListener::from_std(std_listener).map_err(|e| fail("api", e))?;
            let acfg = ApiConfig {
                tls,
                roles: RoleMap {
                    admin: a.admin.clone(),
                    read_only: a.read_only.clone(),
                },
                bouncer_keys: a.bouncer_keys.clone(),
                handshake_timeout: Duration::from_secs(10),
            };
            let c: Arc<dyn Control> = control.clone();
            runtime.spawn(crate::api::serve(listener, acfg, c, shutdown_rx));
        }
        drop(_enter);
        runtime.spawn(watch_stalls(
            Arc::clone(&workers),
            stalls,
            control.hub().clone(),
            stall_clock,
            db.clone(),
            stall_stop,
        ));
        let db = match db {
            Some(d) => Some(DbThread::spawn(d).map_err(|e| fail("spawn db updater", e))?),
            None => None,
        };
        Ok(Plane {
            workers,
            control,
            policy: cell,
            api_addr,
            web_db,
            keeper_events,
            runtime,
            shutdown,
            db,
        })
    }

    /// A worker ended by itself: a database set in probation is rolled back.
    pub fn worker_ended(&self) {
        if let Some(d) = &self.db {
            d.worker_ended();
        }
    }

    /// Flush the events, stop the API and the senders.
    pub fn stop(mut self) {
        if let Some(d) = self.db.take() {
            d.stop();
        }
        self.control.hub().flush();
        let _ = self.shutdown.send(true);
        self.runtime.shutdown_timeout(Duration::from_secs(2));
    }
}

/// Dataplane counters for `/metrics` (summed over workers, as last published, about once a
/// second), and the keeper's published block count.
/// What the bounded queues of the control plane dropped (the workers' queue is
/// `svm_worker_events_dropped_total`).
fn queue_metric(
    hub: &crate::events::EventStats,
    nsx: Option<(&crate::events::Overload, &crate::events::Overload)>,
    keeper: &KeeperEventStats,
) -> Metric {
    #[allow(clippy::cast_precision_loss)]
    let f =
        |o: &crate::events::Overload| o.dropped.load(std::sync::atomic::Ordering::Relaxed) as f64;
    let mut samples = vec![
        (vec![("queue", "events".to_owned())], f(&hub.queue)),
        (
            vec![("queue", super::keeper_events::QUEUE_NAME.to_owned())],
            f(&keeper.overload),
        ),
    ];
    if let Some((tags, quarantine)) = nsx {
        samples.push((vec![("queue", "nsx_tags".to_owned())], f(tags)));
        samples.push((
            vec![("queue", crate::nsx::QUARANTINE_QUEUE_NAME.to_owned())],
            f(quarantine),
        ));
    }
    Metric {
        name: "svm_queue_dropped_total",
        help: "Entries a full bounded queue dropped (each raised an engine_overload event, rate-limited).",
        kind: "counter",
        samples,
    }
}

/// Once a second until shutdown: the workers' heartbeats ([`super::stall`]); a stall is
/// reported (`worker_stalled`) and fails a database set's probation.
async fn watch_stalls(
    workers: WorkerStatuses,
    watch: Arc<StallWatch>,
    hub: EventHub,
    clock: Arc<dyn crate::control::Clock>,
    db: Option<Arc<DbSync>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let Some(ws) = workers.get() else { continue };
        let beats: Vec<Option<u64>> = ws
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(PoisonError::into_inner);
                (!s.ended).then_some(s.heartbeats)
            })
            .collect();
        for c in watch.check(&beats, std::time::Instant::now()) {
            let mut f = serde_json::Map::new();
            match c {
                Change::Stalled { worker, secs } => {
                    tracing::error!(
                        "svm run: worker {worker} is stalled: alive, no status for {secs} s"
                    );
                    f.insert("worker".into(), worker.into());
                    f.insert("secs".into(), secs.into());
                    hub.emit(Record::new(
                        clock.now(),
                        "worker_stalled",
                        crate::events::Severity::Error,
                        f,
                    ));
                    if let Some(d) = &db {
                        let d = Arc::clone(d);
                        tokio::task::spawn_blocking(move || d.worker_stalled(worker, secs));
                    }
                }
                Change::Resumed { worker } => {
                    tracing::warn!("svm run: worker {worker} publishes its status again");
                    f.insert("worker".into(), worker.into());
                    hub.emit(Record::new(
                        clock.now(),
                        "worker_resumed",
                        crate::events::Severity::Info,
                        f,
                    ));
                }
            }
        }
    }
}

fn dataplane_metrics(
    workers: &WorkerStatuses,
    blocks: &BlockControl,
    rules: &Mutex<RulesStatus>,
) -> Vec<Metric> {
    #[allow(clippy::cast_precision_loss)]
    let f = |v: u64| v as f64;
    let t = workers
        .get()
        .map(|w| super::status::collect(w))
        .unwrap_or_default();
    let c = &t.counters;
    let r = rules.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let one = |name, help, kind, v: u64| Metric {
        name,
        help,
        kind,
        samples: vec![(Vec::new(), f(v))],
    };
    vec![
        one(
            "svm_workers",
            "Worker threads of the dataplane.",
            "gauge",
            t.per_worker.len() as u64,
        ),
        one(
            "svm_packets_total",
            "Packets received by the workers.",
            "counter",
            c.packets,
        ),
        one(
            "svm_bytes_total",
            "Bytes received by the workers.",
            "counter",
            c.bytes,
        ),
        one(
            "svm_packets_forwarded_total",
            "Packets forwarded (inline).",
            "counter",
            c.forwarded,
        ),
        Metric {
            name: "svm_packets_dropped_total",
            help: "Packets dropped, by reason.",
            kind: "counter",
            samples: vec![
                (vec![("reason", "blocked".into())], f(c.dropped_blocked)),
                (
                    vec![("reason", "terminated".into())],
                    f(c.dropped_terminated),
                ),
                (vec![("reason", "attack".into())], f(c.dropped_attack)),
                (vec![("reason", "rule".into())], f(c.dropped_rule)),
                (
                    vec![("reason", "stream_urgent".into())],
                    f(c.dropped_stream_urgent),
                ),
                (vec![("reason", "web_address".into())], f(c.web.dropped)),
                (vec![("reason", "too_deep".into())], f(c.dropped_too_deep)),
            ],
        },
        one(
            "svm_unprotected_frames_total",
            "Frames no engine inspected because of the policy's per-VM protection.",
            "counter",
            c.unprotected,
        ),
        one(
            "svm_too_deep_frames_total",
            "Frames whose VLAN tags or IPv6 extension headers nest too deep to inspect.",
            "counter",
            c.too_deep,
        ),
        one(
            "svm_rule_alerts_total",
            "Alerts of the activity scanner's rules.",
            "counter",
            c.rule_alerts,
        ),
        Metric {
            name: "svm_web_address_hits_total",
            help: "Listed web addresses seen (HTTP requests, TLS server names, DNS queries), by the list's category.",
            kind: "counter",
            samples: c
                .web
                .hits
                .iter()
                .map(|(k, n)| (vec![("category", k.clone())], f(*n)))
                .collect(),
        },
        one(
            "svm_web_address_lookups_total",
            "Web addresses looked up in the lists.",
            "counter",
            c.web.lookups,
        ),
        one(
            "svm_web_address_dropped_total",
            "Frames the web address scan dropped (requests, ClientHellos, DNS queries, QUIC Initials).",
            "counter",
            c.web.dropped,
        ),
        one(
            "svm_rules_loaded",
            "Rules in the running rule set.",
            "gauge",
            r.loaded as u64,
        ),
        one(
            "svm_rules_skipped",
            "Rules skipped (unsupported, invalid, duplicate) when the running set was loaded.",
            "gauge",
            r.skipped as u64,
        ),
        Metric {
            name: "svm_rules_reloads_total",
            help: "Rule reloads (SIGHUP), by result.",
            kind: "counter",
            samples: vec![
                (vec![("result", "ok".into())], f(r.reloads)),
                (vec![("result", "failed".into())], f(r.reload_failures)),
            ],
        },
        one(
            "svm_flows",
            "Live flows over all workers.",
            "gauge",
            t.flows as u64,
        ),
        one(
            "svm_flows_evicted_total",
            "Flows evicted because a worker's flow table was full.",
            "counter",
            t.flows_evicted,
        ),
        one(
            "svm_flow_emergencies_total",
            "Times a worker's flow table filled up and entered emergency mode (shorter timeouts).",
            "counter",
            t.flow_emergencies,
        ),
        Metric {
            name: "svm_attack_state",
            help: "Entries of the attack blocker's per-address state, by table.",
            kind: "gauge",
            samples: vec![
                (vec![("table", "sources".into())], f(t.attack.sources)),
                (
                    vec![("table", "destinations".into())],
                    f(t.attack.destinations),
                ),
                (
                    vec![("table", "mac_bindings".into())],
                    f(t.attack.mac_bindings),
                ),
                (vec![("table", "proven".into())], f(t.attack.proven)),
            ],
        },
        one(
            "svm_attack_state_evicted_total",
            "Entries of the attack blocker's per-address state evicted at their caps.",
            "counter",
            t.attack.evicted,
        ),
        one(
            "svm_attack_first_seen_replaced_total",
            "First sightings of addresses lost to another address taking their slot before their second packet.",
            "counter",
            t.attack.first_seen_replaced,
        ),
        one(
            "svm_worker_events_dropped_total",
            "Events dropped because the event queue was full.",
            "counter",
            t.events_dropped,
        ),
        one(
            "svm_dataplane_blocks",
            "Blocks in the dataplane's shared block table (as last published).",
            "gauge",
            blocks.snapshot().len() as u64,
        ),
    ]
}

/// The event pump: every worker and keeper event into `control.ingest` (the keepers' first,
/// with a resync after lost block events, [`KeeperEvents::drain`]); returns once every queue
/// is closed (workers and keepers stopped).
pub fn pump(control: &ControlState, workers: &Receiver<Event>, keeper: &mut KeeperEvents) {
    let mut workers_open = true;
    let mut keeper_open = true;
    while workers_open || keeper_open {
        keeper_open = keeper.drain(control);
        if workers_open {
            match workers.recv_timeout(Duration::from_millis(20)) {
                Ok(ev) => {
                    control.ingest(&ev);
                    while let Ok(ev) = workers.try_recv() {
                        control.ingest(&ev);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => workers_open = false,
            }
        } else if keeper_open {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use dataplane::attack::AttackStats;
    use dataplane::flow::FlowStats;

    /// `/metrics` says what the block keeper's queue dropped, beside the hub's and the
    /// tagger's two queues.
    #[test]
    fn queue_drops_include_the_keeper_events_queue() {
        let hub = crate::events::EventStats::default();
        let keeper = KeeperEventStats::default();
        for _ in 0..3 {
            keeper.overload.drop_one();
        }
        let (tags, quarantine) = (
            crate::events::Overload::default(),
            crate::events::Overload::default(),
        );
        quarantine.drop_one();
        let m = queue_metric(&hub, Some((&tags, &quarantine)), &keeper);
        assert_eq!(m.name, "svm_queue_dropped_total");
        let nsx_quarantine = m
            .samples
            .iter()
            .find(|(labels, _)| labels == &[("queue", "nsx_quarantine".to_owned())])
            .unwrap();
        assert!((nsx_quarantine.1 - 1.0).abs() < f64::EPSILON);
        let keeper_queue = m
            .samples
            .iter()
            .find(|(labels, _)| labels == &[("queue", "keeper_events".to_owned())])
            .unwrap();
        assert!((keeper_queue.1 - 3.0).abs() < f64::EPSILON);
        let names: Vec<&str> = keeper.metrics().iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            [
                "svm_keeper_events_queued_total",
                "svm_keeper_resyncs_total",
                "svm_keeper_resync_blocks_total"
            ]
        );
    }

    /// The flow table's and the attack blocker's state counters reach `/metrics`, summed over
    /// the workers.
    #[test]
    fn state_counters_of_every_worker_are_summed_into_the_metrics() {
        let status = |evicted: u64, first: u64| {
            Arc::new(Mutex::new(WorkerStatus {
                flows: 3,
                flow_stats: FlowStats {
                    evicted,
                    emergencies: 1,
                    ..FlowStats::default()
                },
                attack: AttackStats {
                    sources: 2,
                    destinations: 1,
                    evicted: evicted / 10,
                    first_seen_replaced: first,
                    ..AttackStats::default()
                },
                ..WorkerStatus::default()
            }))
        };
        let workers: WorkerStatuses = Arc::default();
        workers.set(vec![status(100, 7), status(50, 5)]).unwrap();
        let blocks = dataplane::shared_blocks::SharedBlocks::new(2, 16).control;
        let metrics = dataplane_metrics(&workers, &blocks, &Mutex::default());
        let value = |name: &str, label: Option<&str>| {
            let m = metrics.iter().find(|m| m.name == name).unwrap();
            m.samples
                .iter()
                .find(|(l, _)| label.is_none_or(|v| l.iter().any(|(_, x)| x == v)))
                .map(|(_, v)| *v)
                .unwrap()
        };
        assert_eq!(value("svm_flows", None), 6.0);
        assert_eq!(value("svm_flows_evicted_total", None), 150.0);
        assert_eq!(value("svm_flow_emergencies_total", None), 2.0);
        assert_eq!(value("svm_attack_state", Some("sources")), 4.0);
        assert_eq!(value("svm_attack_state", Some("destinations")), 2.0);
        assert_eq!(value("svm_attack_state", Some("mac_bindings")), 0.0);
        assert_eq!(value("svm_attack_state_evicted_total", None), 15.0);
        assert_eq!(value("svm_attack_first_seen_replaced_total", None), 12.0);
    }
}
