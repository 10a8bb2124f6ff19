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

mod blocks;
mod decisions;
mod ingest;
mod metrics;
mod policy_state;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

use dataplane::shared_blocks::BlockControl;
use dataplane::time::Timestamp;
use ipnet::IpNet;
use policy::{CompiledPolicy, Policy, PolicyErrors};
use serde_json::Value;
use vlan::VlanScope;

use crate::events::EventHub;
use crate::inventory::Inventory;
use crate::nsx::Tagger;
use crate::store::{Store, StoreError, StoredBlock};

pub use blocks::{BlockFilter, BlockRequest, BlockView, MAX_BLOCK_SECS};
pub use decisions::{Decision, DecisionStream, go_duration};
pub use ingest::Resync;
pub use metrics::{Metric, RulesSummary, Status};
pub use policy_state::{PolicyState, etag};

use decisions::{Decisions, Known};
use metrics::Counters;
use policy_state::Running;

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
        if let (Some(t), Some(iso)) = (&tagger, &hooks.isolation) {
            // After a dropped quarantine tag change the NSX sender gives every protected VM
            // the tag state of the isolation table.
            let (iso, inventory, clock) = (iso.clone(), Arc::clone(&inventory), clock.clone());
            t.follow_isolations(Arc::new(move || {
                let isolated = iso.list(clock.now());
                inventory
                    .vms()
                    .iter()
                    .map(|vm| {
                        let on = isolated.iter().any(|i| *i.vm.id == *vm.id);
                        (vm.nsx_external_id.clone(), on)
                    })
                    .collect()
            }));
        }
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

    /// The event hub.
    pub fn hub(&self) -> &EventHub {
        &self.hub
    }

    /// The clock the control plane runs on.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
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
        self.apply(doc, if_match)
    }

    fn reject_policy(&self, errors: &PolicyErrors) {
        self.reject(errors);
    }

    fn blocks(&self, filter: &BlockFilter) -> Vec<BlockView> {
        self.list_blocks(filter)
    }

    fn block(&self, req: BlockRequest) -> Result<BlockView, ControlError> {
        self.add_block(req)
    }

    fn unblock(&self, scope: Option<VlanScope>, net: IpNet) -> Result<usize, ControlError> {
        self.lift_blocks(scope, net)
    }

    fn status(&self) -> Status {
        self.status_now()
    }

    fn metrics(&self) -> Vec<Metric> {
        self.metric_families()
    }

    fn decisions(&self, bouncer: &str, startup: bool) -> DecisionStream {
        self.decision_stream(bouncer, startup)
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
