//! The core the API talks to: the [`Control`] trait (typed commands and queries), and
//! [`ControlState`], the in-process implementation backed by the durable [`Store`], the
//! dataplane's block keeper and the running [`CompiledPolicy`] snapshot.
//!
//! Blocks have one authority, the keeper ([`dataplane::shared_blocks`]): manual blocks and
//! unblocks are commands to it, listings read its published snapshot, and expiry is its job.
//! The control plane keeps no table and no sweep of its own: it subscribes. The keeper's events
//! (and the workers') come in through [`ControlState::ingest`], which persists block changes,
//! feeds the decision stream, tags involved protected VMs and spools every event; when keeper
//! events were lost (a full queue), [`ControlState::resync_blocks`] brings the store and the
//! stream in line with the keeper's snapshot. The daemon wires `ControlState` to its workers
//! through [`Hooks`]: `on_policy` receives every newly applied compiled policy (hand it to each
//! worker's `set_policy` between packets).
//!
//! Everything here is synchronous and short; the API calls it from `spawn_blocking` because
//! store commits wait for the disk.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use dataplane::blocks::{BlockEntry, BlockKey, BlockOrigin, BlockResult};
use dataplane::event::{BlockChange, Engine, Event, EventKind, UnblockReason};
use dataplane::shared_blocks::{BlockControl, BlockSnapshot};
use dataplane::time::Timestamp;
use ipnet::IpNet;
use policy::{CompiledPolicy, Policy, PolicyErrors};
use serde::Serialize;
use serde_json::{Map, Value};
use vlan::VlanScope;

use crate::events::{EventHub, Record, Severity};
use crate::inventory::Inventory;
use crate::nsx::{TagRequest, Tagger};
use crate::store::{Store, StoreError, StoredBlock};

/// Time source, injectable so tests can expire blocks: the dataplane's one clock trait (the
/// daemon hands the control plane its one clock, `daemon::clock::LiveClock`).
pub use dataplane::time::Clock;
/// The system's wall clock.
pub use dataplane::time::WallClock as SystemClock;

/// A clock tests move by hand.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// Starting at `ts`.
    pub fn new(ts: Timestamp) -> Self {
        ManualClock(AtomicU64::new(ts.micros()))
    }

    /// Move forward.
    pub fn advance_secs(&self, secs: u64) {
        self.0
            .fetch_add(secs.saturating_mul(Timestamp::SECOND), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// The running policy as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PolicyState {
    /// Version: 0 is the built-in default, each applied policy adds one.
    pub version: u64,
    /// Entity tag of this version (`"<version>"`), for `If-Match`.
    pub etag: String,
    /// The canonical document.
    #[schema(value_type = Object)]
    pub document: Value,
}

impl PolicyState {
    fn new(version: u64, document: Value) -> Self {
        PolicyState {
            version,
            etag: etag(version),
            document,
        }
    }
}

/// The entity tag of a policy version.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// Failures of control commands.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The policy document is invalid; nothing changed.
    #[error("invalid policy:\n{0}")]
    InvalidPolicy(PolicyErrors),
    /// `If-Match` named another version than the running one; nothing changed.
    #[error("policy version is {current}, not the one in If-Match")]
    VersionMismatch {
        /// The running version.
        current: u64,
    },
    /// A request field is invalid.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Nothing matched (e.g. unblocking an address that is not blocked).
    #[error("not found: {0}")]
    NotFound(String),
    /// The address is already blocked in that scope.
    #[error("{0} is already blocked")]
    AlreadyBlocked(String),
    /// The block table is full.
    #[error("block table full")]
    TableFull,
    /// The block keeper has stopped (the daemon is shutting down).
    #[error("the block table is stopping")]
    Stopping,
    /// The store failed; the change was not made.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Filter of [`Control::blocks`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockFilter {
    /// Only this VLAN scope.
    pub scope: Option<VlanScope>,
    /// Only addresses inside this prefix (a host address is a /32 or /128).
    pub net: Option<IpNet>,
    /// Only blocks whose reason contains this text (case-insensitive).
    pub reason: Option<String>,
}

/// A block as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BlockView {
    /// Decision id.
    pub id: u64,
    /// VLAN scope (`untagged`, `100`, `100.200`).
    pub vlan: String,
    /// Blocked address.
    pub address: String,
    /// Detection name or admin note.
    pub reason: String,
    /// `attack_blocker` or `manual`.
    pub engine: String,
    /// `detection` or `manual`.
    pub origin: String,
    /// When it was made (RFC 3339).
    pub created: String,
    /// When it ends (RFC 3339).
    pub expires: String,
    /// Seconds left.
    pub remaining_secs: u64,
    /// Packets dropped because of the block so far (every worker's).
    pub hits: u64,
}

/// A manual block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRequest {
    /// VLAN scope.
    pub scope: VlanScope,
    /// Address.
    pub addr: IpAddr,
    /// Duration in seconds (1 minute .. 32768 minutes as the policy allows).
    pub duration_secs: u64,
    /// Admin note.
    pub reason: String,
}

/// Longest manual block, as the policy's `block_minutes` range: 32768 minutes.
pub const MAX_BLOCK_SECS: u64 = 32_768 * 60;

/// How long a block or unblock through the API waits for the keeper's report of it (the event
/// pump is normally a few milliseconds behind; a stuck pump must not hang the API).
const REPORT_WAIT: Duration = Duration::from_secs(2);

/// Daemon status.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// Software version.
    pub version: String,
    /// Running policy version.
    pub policy_version: u64,
    /// `standard` or `monitoring`.
    pub mode: String,
    /// Blocked hosts now.
    pub blocked_hosts: u64,
    /// Events waiting in the spool.
    pub spool_events: u64,
    /// Bytes of events in the spool.
    pub spool_bytes: u64,
    /// Events dropped from the spool since it was created.
    pub spool_dropped_total: u64,
    /// Events the central server acknowledged (this run).
    pub events_sent_total: u64,
    /// Operations of the state store that failed (this run).
    pub store_errors_total: u64,
    /// The state store's last failure, with the file's path, while it is failing (a full
    /// disk); absent when it works. `/healthz` then says `degraded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_failing: Option<String>,
    /// Events kept in memory because the store refused them; spooled when it works again.
    pub events_pending: u64,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// The activity scanner's rule set; absent when no `rules` section is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<RulesSummary>,
    /// The signed database set `current` names (version, expiry, stale); absent without a `db`
    /// section or an installed set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<crate::api::db::DbSetView>,
}

/// The running rule set, as the daemon last loaded it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RulesSummary {
    /// Rule files of the running set.
    pub files: usize,
    /// Rules loaded.
    pub loaded: usize,
    /// Rules skipped (unsupported or invalid; `svm rules check` lists them with reasons).
    pub skipped: usize,
    /// Seconds the running set took to read and compile.
    pub load_secs: f64,
    /// Successful reloads (SIGHUP) since start.
    pub reloads: u64,
    /// Failed reloads since start (the running set stayed).
    pub reload_failures: u64,
    /// The problems of the last reload, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reload_error: Option<String>,
}

/// One decision in CrowdSec's LAPI shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    /// Decision id.
    pub id: u64,
    /// `crowdsec` for detections, `cscli` for manual blocks (CrowdSec's origin names).
    pub origin: String,
    /// Always `ban`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `Ip`.
    pub scope: String,
    /// The address.
    pub value: String,
    /// Remaining time as a Go duration (`3h59m12s`); `0s` for deleted decisions.
    pub duration: String,
    /// Expiry (RFC 3339).
    pub until: String,
    /// Reason, prefixed with the VLAN scope (`vlan 100: Scan.Generic.TCP`).
    pub scenario: String,
    /// Always false.
    pub simulated: bool,
}

/// The decisions stream answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DecisionStream {
    /// Decisions to enforce.
    pub new: Vec<Decision>,
    /// Decisions to lift (unblocked or expired).
    pub deleted: Vec<Decision>,
}

/// One metric family for `/metrics`.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// Name (`svm_...`).
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// `counter` or `gauge`.
    pub kind: &'static str,
    /// Samples: labels and value. Labels never carry addresses.
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Metric {
    fn one(name: &'static str, help: &'static str, kind: &'static str, v: u64) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let v = v as f64;
        Metric {
            name,
            help,
            kind,
            samples: vec![(Vec::new(), v)],
        }
    }
}

/// What the API needs from the core.
pub trait Control: Send + Sync + 'static {
    /// Why the appliance works in a degraded way, if it does (the state store failing, with
    /// its path): `/healthz` says so. Cheap (no store access).
    fn degraded(&self) -> Option<String> {
        None
    }
    /// The running policy.
    fn policy(&self) -> PolicyState;
    /// Validate and apply a whole policy document. `if_match` is the version the caller expects
    /// to replace (`None`: any).
    fn apply_policy(&self, doc: Value, if_match: Option<u64>) -> Result<PolicyState, ControlError>;
    /// A pushed document that could not even be read (a JSON or YAML syntax error, at the
    /// parser's line and column): counted and reported like an invalid one; nothing changes.
    fn reject_policy(&self, errors: &PolicyErrors);
    /// Blocks matching a filter, sorted by scope and address.
    fn blocks(&self, filter: &BlockFilter) -> Vec<BlockView>;
    /// Block an address manually.
    fn block(&self, req: BlockRequest) -> Result<BlockView, ControlError>;
    /// Lift every block inside `net` (in `scope`, or any scope); returns how many.
    fn unblock(&self, scope: Option<VlanScope>, net: IpNet) -> Result<usize, ControlError>;
    /// Status.
    fn status(&self) -> Status;
    /// Metric families.
    fn metrics(&self) -> Vec<Metric>;
    /// The CrowdSec-style decision stream for one bouncer (identified by its key).
    fn decisions(&self, bouncer: &str, startup: bool) -> DecisionStream;
    /// The database updater, when a `db` section is configured.
    fn db(&self) -> Option<Arc<dyn crate::api::db::DbControl>> {
        None
    }
    /// Events for watchers (`/api/v1/events`), when the core has an event hub.
    fn live_events(&self) -> Option<Arc<crate::events::live::Live>> {
        None
    }
    /// The isolation table, when the configuration has an inventory.
    fn isolation(&self) -> Option<dataplane::isolation::IsolationControl> {
        None
    }
    /// The state store, where the API stores an isolation before it answers.
    fn state_store(&self) -> Option<Arc<Store>> {
        None
    }
}

/// Called with each newly applied compiled policy.
pub type PolicyHook = Box<dyn Fn(Arc<CompiledPolicy>) + Send + Sync>;
/// Returns extra metric families.
pub type MetricsHook = Box<dyn Fn() -> Vec<Metric> + Send + Sync>;
/// Returns why the dataplane is degraded, if it is.
pub type DegradedHook = Box<dyn Fn() -> Option<String> + Send + Sync>;
/// Returns the running rule set's summary, if rules are configured.
pub type RulesHook = Box<dyn Fn() -> Option<RulesSummary> + Send + Sync>;
/// Checks a valid policy against the appliance (its rule files and variables); the problems
/// with their paths, none if it can run.
pub type ValidateHook = Box<dyn Fn(&Policy) -> Vec<policy::PolicyError> + Send + Sync>;

/// Callbacks into the daemon.
#[derive(Default)]
pub struct Hooks {
    /// A new compiled policy was applied.
    pub on_policy: Option<PolicyHook>,
    /// Extra metric families (dataplane counters).
    pub metrics: Option<MetricsHook>,
    /// The rule set for the status.
    pub rules: Option<RulesHook>,
    /// More checks of a pushed policy before it is applied.
    pub validate: Option<ValidateHook>,
    /// The database updater (`/api/v1/db`).
    pub db: Option<Arc<dyn crate::api::db::DbControl>>,
    /// The isolation table (`/api/v1/isolations`), when the configuration has an inventory.
    pub isolation: Option<dataplane::isolation::IsolationControl>,
    /// Why the dataplane works in a degraded way (hung workers), if it does.
    pub degraded: Option<DegradedHook>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("on_policy", &self.on_policy.is_some())
            .field("metrics", &self.metrics.is_some())
            .field("rules", &self.rules.is_some())
            .field("validate", &self.validate.is_some())
            .field("db", &self.db.is_some())
            .field("isolation", &self.isolation.is_some())
            .field("degraded", &self.degraded.is_some())
            .finish()
    }
}

/// Settings of [`ControlState`].
#[derive(Clone, Debug)]
pub struct ControlConfig {
    /// Decision changes kept for bouncers that poll with `startup=false`.
    pub decision_log: usize,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            decision_log: 100_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    New,
    Deleted,
}

/// What the decision stream remembers of a block the keeper reported: its decision id and what
/// a "deleted" decision repeats. Not a block table: the keeper decides what is blocked.
///
/// One block of a key is told from a later one of the same key by its creation and expiry, so
/// a late event of a block a resync ([`ControlState::resync_blocks`]) already took in or
/// removed changes nothing.
#[derive(Clone, Debug)]
struct Known {
    id: u64,
    origin: BlockOrigin,
    reason: String,
    created: Timestamp,
    expires: Timestamp,
    /// Its "new" decision is in the stream. False only for a manual block `block` stored
    /// before the keeper made it.
    streamed: bool,
}

impl Known {
    fn is(&self, created: Timestamp, expires: Timestamp) -> bool {
        self.created == created && self.expires == expires
    }
}

/// What [`ControlState::resync_blocks`] changed in the store and the decision stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resync {
    /// Blocks of the keeper's table the control plane had not taken in: stored and streamed
    /// as new decisions.
    pub added: u64,
    /// Blocks the control plane knew that are no longer in the keeper's table: removed from
    /// the store and streamed as deleted decisions.
    pub removed: u64,
}

/// The decision stream's state.
#[derive(Debug)]
struct Decisions {
    known: HashMap<BlockKey, Known>,
    /// (sequence, change, decision); sequence increases by one per entry.
    log: VecDeque<(u64, Change, Decision)>,
    next_seq: u64,
    cursors: HashMap<String, u64>,
}

#[derive(Debug)]
struct Running {
    state: PolicyState,
    compiled: Arc<CompiledPolicy>,
}

/// Counters kept by the control plane.
#[derive(Debug, Default)]
struct Counters {
    policy_applied: AtomicU64,
    policy_rejected: AtomicU64,
    blocks_added_detection: AtomicU64,
    blocks_added_manual: AtomicU64,
    unblocked_manual: AtomicU64,
    unblocked_expired: AtomicU64,
    unblocked_evicted: AtomicU64,
    tag_requests: AtomicU64,
}

/// The in-process core.
#[derive(Debug)]
pub struct ControlState {
    cfg: ControlConfig,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    hub: EventHub,
    inventory: Arc<Inventory>,
    tagger: Option<Tagger>,
    hooks: Hooks,
    running: RwLock<Running>,
    apply_lock: Mutex<()>,
    table: BlockControl,
    decisions: Mutex<Decisions>,
    /// Signalled whenever `ingest` logs a change of the decision stream.
    decided: Condvar,
    counters: Counters,
    started: Timestamp,
    /// Detection blocks the store refused (a full disk), by record key: written with the next
    /// event the control plane takes, so a block made while the disk was full survives a
    /// restart once the space is back.
    unsaved: Mutex<HashMap<String, StoredBlock>>,
}

/// Errors opening [`ControlState`].
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored policy no longer validates (e.g. after a downgrade).
    #[error("stored policy is invalid:\n{0}")]
    StoredPolicy(PolicyErrors),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn engine_name(name: &str) -> &'static str {
    if name == Engine::AttackBlocker.name() {
        Engine::AttackBlocker.name()
    } else {
        Engine::Manual.name()
    }
}

fn origin_name(o: BlockOrigin) -> &'static str {
    match o {
        BlockOrigin::Detection => "detection",
        BlockOrigin::Manual => "manual",
    }
}

/// A Go duration string (`1h2m3s`) of whole seconds.
pub fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

fn rfc3339(ts: Timestamp) -> String {
    crate::events::syslog::rfc3339(ts)
}

impl ControlState {
    /// Open the core: load the running policy from the store; `table` is the keeper's control
    /// handle. The stored blocks go back to the keeper through [`ControlState::stored_blocks`]
    /// before it runs; those that expired while the daemon was down are then reported by the
    /// keeper as any expiry.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        cfg: ControlConfig,
        store: Arc<Store>,
        hub: EventHub,
        clock: Arc<dyn Clock>,
        inventory: Arc<Inventory>,
        tagger: Option<Tagger>,
        hooks: Hooks,
        table: BlockControl,
    ) -> Result<ControlState, OpenError> {
        let running = match store.policy()? {
            Some((version, doc)) => {
                let policy = Policy::from_value(&doc).map_err(OpenError::StoredPolicy)?;
                Running {
                    state: PolicyState::new(version, policy.to_json()),
                    compiled: Arc::new(CompiledPolicy::compile(policy)),
                }
            }
            None => Running {
                state: PolicyState::new(0, Policy::default().to_json()),
                compiled: Arc::new(CompiledPolicy::compile(Policy::default())),
            },
        };
        let mut decisions = Decisions {
            known: HashMap::new(),
            log: VecDeque::new(),
            next_seq: 1,
            cursors: HashMap::new(),
        };
        for b in store.blocks()? {
            if let Some((key, e)) = Self::unstored(&b) {
                decisions.known.insert(
                    key,
                    Known {
                        id: b.id,
                        origin: e.origin,
                        reason: e.reason,
                        created: e.created,
                        expires: e.expires,
                        streamed: true,
                    },
                );
            }
        }
        let now = clock.now();
        Ok(ControlState {
            cfg,
            store,
            clock,
            hub,
            inventory,
            tagger,
            hooks,
            running: RwLock::new(running),
            apply_lock: Mutex::new(()),
            table,
            decisions: Mutex::new(decisions),
            decided: Condvar::new(),
            counters: Counters::default(),
            started: now,
            unsaved: Mutex::default(),
        })
    }

    /// The state store (the isolation keeper keeps its isolations there).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The blocks kept in the store, for the keeper to restore before it runs
    /// ([`dataplane::shared_blocks::Command::Restore`]): creation, expiry and origin as made.
    pub fn stored_blocks(&self) -> Result<Vec<(BlockKey, BlockEntry)>, StoreError> {
        Ok(self
            .store
            .blocks()?
            .iter()
            .filter_map(Self::unstored)
            .collect())
    }

    fn unstored(b: &StoredBlock) -> Option<(BlockKey, BlockEntry)> {
        let scope = b.scope.parse::<VlanScope>().ok()?;
        let origin = if b.origin == "detection" {
            BlockOrigin::Detection
        } else {
            BlockOrigin::Manual
        };
        Some((
            BlockKey {
                scope,
                addr: b.addr,
            },
            BlockEntry {
                created: Timestamp(b.created_us),
                expires: Timestamp(b.expires_us),
                reason: b.reason.clone(),
                engine: engine_name(&b.engine),
                origin,
                first_hit: None,
                last_hit: None,
                hits: 0,
            },
        ))
    }

    /// The running compiled policy (hand it to workers at start).
    pub fn compiled(&self) -> Arc<CompiledPolicy> {
        self.running
            .read()
            .map_or_else(|e| e.into_inner().compiled.clone(), |r| r.compiled.clone())
    }

    /// Before the first push (running version 0), show and run `policy` (the daemon's policy
    /// file) as version 0 instead of the built-in default. Not stored: the file is read again at
    /// each start until a policy is pushed. Returns false (and changes nothing) once a pushed
    /// policy is running.
    pub fn seed_policy(&self, policy: Policy) -> bool {
        let mut r = self
            .running
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if r.state.version != 0 {
            return false;
        }
        *r = Running {
            state: PolicyState::new(0, policy.to_json()),
            compiled: Arc::new(CompiledPolicy::compile(policy)),
        };
        true
    }

    /// The event hub.
    pub fn hub(&self) -> &EventHub {
        &self.hub
    }

    fn running_state(&self) -> PolicyState {
        self.running
            .read()
            .map_or_else(|e| e.into_inner().state.clone(), |r| r.state.clone())
    }

    fn decision(&self, key: &BlockKey, e: &Known, now: Timestamp) -> Decision {
        let remaining = e.expires.since(now) / Timestamp::SECOND;
        Decision {
            id: e.id,
            origin: match e.origin {
                BlockOrigin::Detection => "crowdsec".into(),
                BlockOrigin::Manual => "cscli".into(),
            },
            kind: "ban".into(),
            scope: "Ip".into(),
            value: key.addr.to_string(),
            duration: go_duration(remaining),
            until: rfc3339(e.expires),
            scenario: format!("vlan {}: {}", key.scope, e.reason),
            simulated: false,
        }
    }

    fn view(key: &BlockKey, e: &BlockEntry, id: u64, now: Timestamp) -> BlockView {
        BlockView {
            id,
            vlan: key.scope.to_string(),
            address: key.addr.to_string(),
            reason: e.reason.clone(),
            engine: e.engine.to_owned(),
            origin: origin_name(e.origin).into(),
            created: rfc3339(e.created),
            expires: rfc3339(e.expires),
            remaining_secs: e.expires.since(now) / Timestamp::SECOND,
            hits: e.hits,
        }
    }

    fn log_change(&self, b: &mut Decisions, change: Change, d: Decision) {
        let seq = b.next_seq;
        b.next_seq += 1;
        b.log.push_back((seq, change, d));
        while b.log.len() > self.cfg.decision_log {
            b.log.pop_front();
        }
        self.decided.notify_all();
    }

    /// Wait (at most [`REPORT_WAIT`]) until `done` holds of the decision stream: the keeper
    /// reports a change through `ingest` on the event pump's thread, so an API call that made
    /// the change waits for it, and a bouncer polling after the answer sees it.
    fn wait_reported(&self, done: impl Fn(&Decisions) -> bool) {
        let b = lock(&self.decisions);
        let _ = self
            .decided
            .wait_timeout_while(b, REPORT_WAIT, |b| !done(b))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }

    fn stored(key: &BlockKey, e: &BlockEntry, id: u64) -> StoredBlock {
        StoredBlock {
            id,
            scope: key.scope.to_string(),
            addr: key.addr,
            created_us: e.created.micros(),
            expires_us: e.expires.micros(),
            reason: e.reason.clone(),
            engine: e.engine.to_owned(),
            origin: origin_name(e.origin).into(),
        }
    }

    /// Have the keeper report what expired by now before a listing (it also does on its tick).
    fn expire_now(&self) {
        self.table.expire(self.clock.now());
    }

    /// Take one dataplane event: persist block changes the engines made, annotate and tag
    /// protected VMs involved in alerts, and spool it. Duplicates from several workers (the
    /// same block added or expired in each) are reported once.
    pub fn ingest(&self, ev: &Event) {
        self.take_event(ev, true);
    }

    /// [`Self::ingest`] for a keeper event whose change a resync ([`Self::resync_blocks`])
    /// already took from the keeper's table: counted and spooled as any, the store and the
    /// decision stream left as the resync made them.
    pub fn ingest_reflected(&self, ev: &Event) {
        self.take_event(ev, false);
    }

    /// The clock the control plane runs on.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// [`Self::ingest`]; with `track` false a block change leaves the store and the decision
    /// stream alone.
    fn take_event(&self, ev: &Event, track: bool) {
        self.save_unsaved();
        match &ev.kind {
            EventKind::Alert(a) => {
                let mut rec = Record::from_dataplane(ev);
                let mut involved = Vec::new();
                // Monitoring mode changes nothing unless the policy asks for tags there too.
                // A decoder report (a frame nested too deep) is one frame anyone can forge: it
                // tags no VM.
                let tag = (!a.monitoring || self.compiled().policy().tagging.in_monitoring_mode)
                    && a.engine != Engine::Decoder;
                for (role, addr) in [
                    ("source", a.packet.src_ip),
                    ("destination", a.packet.dst_ip),
                ] {
                    if let Some(vm) = self.inventory.by_ip(a.packet.scope, addr) {
                        involved.push(serde_json::json!({
                            "role": role, "id": vm.id, "name": vm.name,
                            "nsx_external_id": vm.nsx_external_id,
                        }));
                        if let (Some(t), true) = (&self.tagger, tag) {
                            self.counters.tag_requests.fetch_add(1, Ordering::Relaxed);
                            t.request(TagRequest {
                                vm: vm.clone(),
                                cause: rec.id().to_owned(),
                            });
                        }
                    }
                }
                if !involved.is_empty() {
                    rec.value
                        .insert("protected_vms".into(), Value::Array(involved));
                }
                self.hub.emit(rec);
            }
            EventKind::Block {
                key,
                change:
                    BlockChange::Added {
                        engine,
                        reason,
                        expires,
                        ..
                    },
            } => {
                let origin = if *engine == Engine::Manual {
                    BlockOrigin::Manual
                } else {
                    BlockOrigin::Detection
                };
                if track {
                    let mut b = lock(&self.decisions);
                    // A manual block was stored (and given its id) by `block` before the keeper
                    // made it; a detection block is stored here. A resync may have taken this
                    // very block in already (its event was late, not lost).
                    let known = match b.known.get(key) {
                        Some(k) if k.is(ev.ts, *expires) && k.streamed => None,
                        Some(k) if k.is(ev.ts, *expires) => Some(Known {
                            streamed: true,
                            ..k.clone()
                        }),
                        stale => {
                            // An earlier block of the key whose removal was lost with a full
                            // queue (the resync that follows would say so later).
                            if let Some(old) = stale.filter(|k| k.streamed).cloned() {
                                let d = self.decision(key, &old, ev.ts);
                                self.log_change(&mut b, Change::Deleted, d);
                            }
                            let k = Known {
                                id: self.store.next_decision_id().unwrap_or_default(),
                                origin,
                                reason: reason.to_string(),
                                created: ev.ts,
                                expires: *expires,
                                streamed: true,
                            };
                            let entry = BlockEntry {
                                created: ev.ts,
                                expires: *expires,
                                reason: k.reason.clone(),
                                engine: engine.name(),
                                origin,
                                first_hit: None,
                                last_hit: None,
                                hits: 0,
                            };
                            let stored = Self::stored(key, &entry, k.id);
                            if self.store.put_block(&stored).is_err() {
                                lock(&self.unsaved).insert(stored.key(), stored);
                            }
                            Some(k)
                        }
                    };
                    if let Some(known) = known {
                        b.known.insert(*key, known.clone());
                        let d = self.decision(key, &known, ev.ts);
                        self.log_change(&mut b, Change::New, d);
                    }
                }
                match origin {
                    BlockOrigin::Manual => &self.counters.blocks_added_manual,
                    BlockOrigin::Detection => &self.counters.blocks_added_detection,
                }
                .fetch_add(1, Ordering::Relaxed);
                self.hub.emit(Record::from_dataplane(ev));
            }
            // Counted by the keeper (`svm_blocks_refused_total`); reported here.
            EventKind::Block {
                change: BlockChange::Refused { .. },
                ..
            } => self.hub.emit(Record::from_dataplane(ev)),
            EventKind::Block {
                key,
                change:
                    BlockChange::Removed {
                        reason, created, ..
                    },
            } => {
                // Another block of the key (one `block` stored before the keeper reported the end
                // of this one, or one a resync took in) stays.
                let ours = track && {
                    let mut b = lock(&self.decisions);
                    match b.known.get(key) {
                        Some(k) if k.created != *created => false,
                        Some(_) => {
                            if let Some(k) = b.known.remove(key).filter(|k| k.streamed) {
                                let d = self.decision(key, &k, ev.ts);
                                self.log_change(&mut b, Change::Deleted, d);
                            }
                            true
                        }
                        None => true,
                    }
                };
                // A failed removal is retried implicitly: the stored block is expired or lifted,
                // and the next start restores and reports it again.
                if ours {
                    lock(&self.unsaved).remove(&StoredBlock::key_of(key.scope, key.addr));
                    let _ = self
                        .store
                        .remove_blocks(&[(key.scope.to_string(), key.addr)]);
                }
                match reason {
                    UnblockReason::Expired => &self.counters.unblocked_expired,
                    UnblockReason::Manual => &self.counters.unblocked_manual,
                    UnblockReason::Evicted => &self.counters.unblocked_evicted,
                }
                .fetch_add(1, Ordering::Relaxed);
                self.hub.emit(Record::from_dataplane(ev));
            }
            // Isolation events go where events go; their state is the isolation keeper's. While
            // a VM is isolated NSX gives it the quarantine tag.
            EventKind::Isolation { vm, change } => {
                let add = match change {
                    dataplane::isolation::IsolationChange::Started { .. } => Some(true),
                    dataplane::isolation::IsolationChange::Ended { .. } => Some(false),
                    dataplane::isolation::IsolationChange::WouldIsolate { .. } => None,
                };
                if let (Some(t), Some(add)) = (&self.tagger, add)
                    && let Some(pvm) = self.inventory.vms().iter().find(|v| *v.id == *vm.id)
                {
                    t.quarantine(pvm, add);
                }
                self.hub.emit(Record::from_dataplane(ev));
            }
        }
    }

    /// Bring the store and the decision stream in line with the keeper's published table
    /// `snap`, after keeper events were lost (their queue to the event pump was full): a block
    /// of the table the control plane does not know is stored and streamed as new; a block it
    /// knows that the table no longer holds (or holds as another block of the key) is removed
    /// from the store and streamed as deleted. Blocks over by now count as gone. A manual block
    /// `block` stored before the keeper made it is left alone until it is over. The events
    /// that were lost are not written again: the caller reports the loss (`engine_overload`).
    /// Late events of blocks the resync took in or removed change nothing ([`Known`]).
    pub fn resync_blocks(&self, snap: &BlockSnapshot) -> Resync {
        self.save_unsaved();
        let now = self.clock.now();
        let present: HashMap<BlockKey, BlockEntry> = snap
            .list()
            .into_iter()
            .filter(|(_, e)| e.expires > now)
            .collect();
        let mut out = Resync::default();
        let mut b = lock(&self.decisions);
        let gone: Vec<BlockKey> = b
            .known
            .iter()
            .filter(|(k, kn)| {
                let held = present.get(k).is_some_and(|e| kn.is(e.created, e.expires));
                !held && (kn.streamed || kn.expires <= now)
            })
            .map(|(k, _)| *k)
            .collect();
        for k in &gone {
            if let Some(kn) = b.known.remove(k).filter(|kn| kn.streamed) {
                let d = self.decision(k, &kn, now);
                self.log_change(&mut b, Change::Deleted, d);
            }
        }
        if !gone.is_empty() {
            let mut unsaved = lock(&self.unsaved);
            for k in &gone {
                unsaved.remove(&StoredBlock::key_of(k.scope, k.addr));
            }
            drop(unsaved);
            let keys: Vec<(String, IpAddr)> =
                gone.iter().map(|k| (k.scope.to_string(), k.addr)).collect();
            let _ = self.store.remove_blocks(&keys);
            out.removed = gone.len() as u64;
        }
        let mut missed: Vec<(&BlockKey, &BlockEntry)> = Vec::new();
        for (k, e) in &present {
            match b.known.get_mut(k) {
                Some(kn) if kn.is(e.created, e.expires) => {
                    if !kn.streamed {
                        kn.streamed = true;
                        let kn = kn.clone();
                        let d = self.decision(k, &kn, now);
                        self.log_change(&mut b, Change::New, d);
                        out.added += 1;
                    }
                }
                _ => missed.push((k, e)),
            }
        }
        // In the order the keeper made them, so decision ids grow with creation.
        missed.sort_by_key(|(k, e)| (e.created, **k));
        let first = self
            .store
            .next_decision_ids(missed.len() as u64)
            .unwrap_or_default();
        let mut stored = Vec::with_capacity(missed.len());
        for (id, (k, e)) in (first..).zip(missed) {
            let kn = Known {
                id,
                origin: e.origin,
                reason: e.reason.clone(),
                created: e.created,
                expires: e.expires,
                streamed: true,
            };
            stored.push(Self::stored(k, e, id));
            let d = self.decision(k, &kn, now);
            b.known.insert(*k, kn);
            self.log_change(&mut b, Change::New, d);
            out.added += 1;
        }
        if !stored.is_empty() && self.store.put_blocks(&stored).is_err() {
            let mut unsaved = lock(&self.unsaved);
            for s in stored {
                unsaved.insert(s.key(), s);
            }
        }
        out
    }

    /// Write the detection blocks the store refused earlier, if any.
    fn save_unsaved(&self) {
        let mut unsaved = lock(&self.unsaved);
        if unsaved.is_empty() {
            return;
        }
        let blocks: Vec<StoredBlock> = unsaved.values().cloned().collect();
        if self.store.put_blocks(&blocks).is_ok() {
            unsaved.clear();
        }
    }

    /// The one report of a refused policy push: counted, and a `policy_rejected` event with
    /// the running version and every problem.
    fn rejected(&self, current: u64, errors: &PolicyErrors) {
        self.counters
            .policy_rejected
            .fetch_add(1, Ordering::Relaxed);
        let mut f = Map::new();
        f.insert("policy_version".into(), current.into());
        f.insert(
            "problems".into(),
            serde_json::to_value(errors).unwrap_or_default(),
        );
        self.policy_event("policy_rejected", Severity::Warning, f);
    }

    fn policy_event(&self, event_type: &str, severity: Severity, fields: Map<String, Value>) {
        self.hub
            .emit(Record::new(self.clock.now(), event_type, severity, fields));
    }
}

impl Control for ControlState {
    fn degraded(&self) -> Option<String> {
        self.store
            .health()
            .failing
            .or_else(|| self.hooks.degraded.as_ref().and_then(|d| d()))
    }

    fn policy(&self) -> PolicyState {
        self.running_state()
    }

    fn apply_policy(&self, doc: Value, if_match: Option<u64>) -> Result<PolicyState, ControlError> {
        let _serial = lock(&self.apply_lock);
        let current = self.running_state().version;
        if let Some(expected) = if_match
            && expected != current
        {
            return Err(ControlError::VersionMismatch { current });
        }
        let checked = Policy::from_value(&doc).and_then(|p| {
            let problems = self
                .hooks
                .validate
                .as_ref()
                .map(|v| v(&p))
                .unwrap_or_default();
            if problems.is_empty() {
                Ok(p)
            } else {
                Err(PolicyErrors(problems))
            }
        });
        let policy = match checked {
            Ok(p) => p,
            Err(errors) => {
                self.rejected(current, &errors);
                return Err(ControlError::InvalidPolicy(errors));
            }
        };
        let canonical = policy.to_json();
        let label = policy.version.clone();
        let exclusions = policy.exclusions.len();
        let compiled = Arc::new(CompiledPolicy::compile(policy));
        let version = current.saturating_add(1);
        self.store.put_policy(version, &canonical)?;
        let state = PolicyState::new(version, canonical);
        {
            let mut r = self
                .running
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *r = Running {
                state: state.clone(),
                compiled: compiled.clone(),
            };
        }
        if let Some(h) = &self.hooks.on_policy {
            h(compiled);
        }
        self.counters.policy_applied.fetch_add(1, Ordering::Relaxed);
        let mut f = Map::new();
        f.insert("policy_version".into(), version.into());
        f.insert(
            "policy_label".into(),
            label.map_or(Value::Null, Value::from),
        );
        f.insert("exclusions".into(), exclusions.into());
        self.policy_event("policy_applied", Severity::Info, f);
        Ok(state)
    }

    fn reject_policy(&self, errors: &PolicyErrors) {
        let _serial = lock(&self.apply_lock);
        self.rejected(self.running_state().version, errors);
    }

    fn blocks(&self, filter: &BlockFilter) -> Vec<BlockView> {
        self.expire_now();
        let now = self.clock.now();
        let needle = filter.reason.as_ref().map(|r| r.to_lowercase());
        let list = self.table.list();
        let b = lock(&self.decisions);
        list.iter()
            .filter(|(k, e)| {
                e.expires > now
                    && filter.scope.is_none_or(|s| s == k.scope)
                    && filter.net.is_none_or(|n| n.contains(&k.addr))
                    && needle
                        .as_ref()
                        .is_none_or(|r| e.reason.to_lowercase().contains(r))
            })
            .map(|(k, e)| Self::view(k, e, b.known.get(k).map_or(0, |k| k.id), now))
            .collect()
    }

    fn block(&self, req: BlockRequest) -> Result<BlockView, ControlError> {
        if req.duration_secs == 0 || req.duration_secs > MAX_BLOCK_SECS {
            return Err(ControlError::InvalidRequest(format!(
                "duration must be 1..={MAX_BLOCK_SECS} seconds"
            )));
        }
        self.expire_now();
        let now = self.clock.now();
        let key = BlockKey {
            scope: req.scope,
            addr: req.addr,
        };
        let already =
            || ControlError::AlreadyBlocked(format!("{} in vlan {}", req.addr, req.scope));
        if self.table.snapshot().get(&key, now).is_some() {
            return Err(already());
        }
        // Stored before the keeper makes it, so that an acknowledged block survives a restart.
        let entry = BlockEntry {
            created: now,
            expires: now.plus_secs(req.duration_secs),
            reason: req.reason.clone(),
            engine: Engine::Manual.name(),
            origin: BlockOrigin::Manual,
            first_hit: None,
            last_hit: None,
            hits: 0,
        };
        let id = self.store.next_decision_id()?;
        self.store.put_block(&Self::stored(&key, &entry, id))?;
        lock(&self.decisions).known.insert(
            key,
            Known {
                id,
                origin: BlockOrigin::Manual,
                reason: req.reason.clone(),
                created: entry.created,
                expires: entry.expires,
                streamed: false,
            },
        );
        let undo = |e: ControlError| {
            lock(&self.decisions).known.remove(&key);
            let _ = self
                .store
                .remove_blocks(&[(key.scope.to_string(), key.addr)]);
            Err(e)
        };
        // The keeper reports the block (event, decision stream) through `ingest`.
        match self.table.block(key, now, req.duration_secs, req.reason) {
            Some(BlockResult::Added) => {
                self.wait_reported(|b| {
                    b.log
                        .iter()
                        .rev()
                        .any(|(_, c, d)| *c == Change::New && d.id == id)
                });
                Ok(Self::view(&key, &entry, id, now))
            }
            Some(BlockResult::AlreadyBlocked) => undo(already()),
            Some(BlockResult::Full) => undo(ControlError::TableFull),
            None => undo(ControlError::Stopping),
        }
    }

    fn unblock(&self, scope: Option<VlanScope>, net: IpNet) -> Result<usize, ControlError> {
        self.expire_now();
        let now = self.clock.now();
        let keys: Vec<BlockKey> = self
            .table
            .list()
            .into_iter()
            .filter(|(k, e)| {
                e.expires > now && scope.is_none_or(|s| s == k.scope) && net.contains(&k.addr)
            })
            .map(|(k, _)| k)
            .collect();
        if keys.is_empty() {
            return Err(ControlError::NotFound(format!("no block matches {net}")));
        }
        // The keeper reports each removal, with every worker's hits, through `ingest`, which
        // updates the store and the decision stream.
        let mut removed = Vec::new();
        for k in keys {
            match self.table.unblock(k, now) {
                Some(Some(_)) => removed.push(k),
                Some(None) => {}
                None => return Err(ControlError::Stopping),
            }
        }
        self.wait_reported(|b| removed.iter().all(|k| !b.known.contains_key(k)));
        Ok(removed.len())
    }

    fn status(&self) -> Status {
        self.expire_now();
        let (policy_version, mode) = {
            let r = self
                .running
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (
                r.state.version,
                match r.compiled.policy().mode {
                    policy::Mode::Standard => "standard",
                    policy::Mode::Monitoring => "monitoring",
                }
                .to_owned(),
            )
        };
        Status {
            version: env!("CARGO_PKG_VERSION").into(),
            policy_version,
            mode,
            blocked_hosts: self.table.snapshot().len() as u64,
            spool_events: self.store.spool_len().unwrap_or_default(),
            spool_bytes: self.store.spool_bytes().unwrap_or_default(),
            spool_dropped_total: self.store.spool_dropped_total().unwrap_or_default(),
            events_sent_total: self.hub.stats().sent.load(Ordering::Relaxed),
            store_errors_total: self.store.health().errors_total,
            store_failing: self.store.health().failing,
            events_pending: self.hub.stats().pending.load(Ordering::Relaxed),
            uptime_secs: self.clock.now().since(self.started) / Timestamp::SECOND,
            rules: self.hooks.rules.as_ref().and_then(|f| f()),
            db: self.hooks.db.as_ref().and_then(|d| d.view().current),
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        let s = self.status();
        let c = &self.counters;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        #[allow(clippy::cast_precision_loss)]
        let f = |v: u64| v as f64;
        let stats = self.hub.stats();
        let mut out = vec![
            Metric::one(
                "svm_policy_version",
                "Version of the running policy (0: built-in default).",
                "gauge",
                s.policy_version,
            ),
            Metric {
                name: "svm_policy_pushes_total",
                help: "Policy documents received, by result.",
                kind: "counter",
                samples: vec![
                    (vec![("result", "applied".into())], f(ld(&c.policy_applied))),
                    (
                        vec![("result", "rejected".into())],
                        f(ld(&c.policy_rejected)),
                    ),
                ],
            },
            Metric::one(
                "svm_blocked_hosts",
                "Sources blocked now.",
                "gauge",
                s.blocked_hosts,
            ),
            Metric {
                name: "svm_blocks_added_total",
                help: "Blocks made, by origin.",
                kind: "counter",
                samples: vec![
                    (
                        vec![("origin", "detection".into())],
                        f(ld(&c.blocks_added_detection)),
                    ),
                    (
                        vec![("origin", "manual".into())],
                        f(ld(&c.blocks_added_manual)),
                    ),
                ],
            },
            Metric {
                name: "svm_blocks_removed_total",
                help: "Blocks lifted, by reason.",
                kind: "counter",
                samples: vec![
                    (
                        vec![("reason", "expired".into())],
                        f(ld(&c.unblocked_expired)),
                    ),
                    (
                        vec![("reason", "manual".into())],
                        f(ld(&c.unblocked_manual)),
                    ),
                    (
                        vec![("reason", "evicted".into())],
                        f(ld(&c.unblocked_evicted)),
                    ),
                ],
            },
            Metric::one(
                "svm_blocks_refused_total",
                "Blocks refused because the table was full of blocks that may not be evicted \
                 (manual blocks; a detection block evicts the detection block closest to expiry), \
                 or because the keeper's command queue was full.",
                "counter",
                self.table.refused(),
            ),
            Metric {
                name: "svm_events_total",
                help: "Events emitted, by severity.",
                kind: "counter",
                samples: [
                    Severity::Info,
                    Severity::Warning,
                    Severity::Error,
                    Severity::Critical,
                ]
                .iter()
                .zip(stats.emitted.iter())
                .map(|(sev, n)| (vec![("severity", sev.name().into())], f(ld(n))))
                .collect(),
            },
            Metric::one(
                "svm_spool_events",
                "Events waiting in the spool.",
                "gauge",
                s.spool_events,
            ),
            Metric::one(
                "svm_spool_bytes",
                "Bytes of events waiting in the spool.",
                "gauge",
                s.spool_bytes,
            ),
            Metric::one(
                "svm_spool_dropped_events_total",
                "Events dropped from the spool (oldest first) because it was full.",
                "counter",
                s.spool_dropped_total,
            ),
            Metric::one(
                "svm_store_errors_total",
                "Operations of the state store that failed (a full disk, an I/O error).",
                "counter",
                s.store_errors_total,
            ),
            Metric::one(
                "svm_store_failing",
                "1 while the state store's last operation failed.",
                "gauge",
                u64::from(s.store_failing.is_some()),
            ),
            Metric::one(
                "svm_events_pending",
                "Events kept in memory because the state store refused them.",
                "gauge",
                s.events_pending,
            ),
            Metric::one(
                "svm_events_sent_total",
                "Events acknowledged by the central server.",
                "counter",
                ld(&stats.sent),
            ),
            Metric::one(
                "svm_event_send_failures_total",
                "Failed batch POSTs to the central server.",
                "counter",
                ld(&stats.send_failures),
            ),
            Metric::one(
                "svm_event_output_errors_total",
                "Failed writes to local event outputs (EVE file, syslog).",
                "counter",
                ld(&stats.output_errors),
            ),
            Metric::one(
                "svm_nsx_tag_requests_total",
                "Requests to tag a protected VM (each VM is tagged once).",
                "counter",
                ld(&c.tag_requests),
            ),
            Metric::one(
                "svm_uptime_seconds",
                "Seconds since the control plane started.",
                "gauge",
                s.uptime_secs,
            ),
        ];
        if let Some(h) = &self.hooks.metrics {
            out.extend(h());
        }
        out
    }

    fn decisions(&self, bouncer: &str, startup: bool) -> DecisionStream {
        self.expire_now();
        let now = self.clock.now();
        let list = self.table.list();
        let mut b = lock(&self.decisions);
        let head = b.next_seq;
        let first = b.log.front().map_or(head, |(s, _, _)| *s);
        let cursor = b.cursors.get(bouncer).copied();
        let mut out = DecisionStream::default();
        match cursor {
            // A bouncer seen before whose cursor is still in the log gets the changes since.
            Some(c) if !startup && c >= first => {
                for (seq, change, d) in &b.log {
                    if *seq < c {
                        continue;
                    }
                    match change {
                        Change::New => out.new.push(d.clone()),
                        Change::Deleted => out.deleted.push(d.clone()),
                    }
                }
                // A decision both added and deleted since the last poll only needs deleting.
                out.new
                    .retain(|n| !out.deleted.iter().any(|d| d.id == n.id));
            }
            _ => {
                out.new = list
                    .iter()
                    .filter(|(_, e)| e.expires > now)
                    .map(|(k, e)| {
                        let known = Known {
                            id: b.known.get(k).map_or(0, |k| k.id),
                            origin: e.origin,
                            reason: e.reason.clone(),
                            created: e.created,
                            expires: e.expires,
                            streamed: true,
                        };
                        self.decision(k, &known, now)
                    })
                    .collect();
                out.new.sort_by_key(|d| d.id);
            }
        }
        b.cursors.insert(bouncer.to_owned(), head);
        out
    }

    fn db(&self) -> Option<Arc<dyn crate::api::db::DbControl>> {
        self.hooks.db.clone()
    }

    fn live_events(&self) -> Option<Arc<crate::events::live::Live>> {
        Some(self.hub.live().clone())
    }

    fn isolation(&self) -> Option<dataplane::isolation::IsolationControl> {
        self.hooks.isolation.clone()
    }

    fn state_store(&self) -> Option<Arc<Store>> {
        Some(Arc::clone(&self.store))
    }
}
