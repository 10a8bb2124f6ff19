//! The daemon's side of the signed application databases (docs/databases.md): it keeps the
//! installed set's rules in force, checks a mirror over HTTPS, installs newer bundles and rolls
//! back by itself.
//!
//! - **Start**: the set `current` names in the database state directory ([`crate::db::store`])
//!   has its rules built into the running rule set before any port opens. If the engine refuses
//!   them, the previous set is switched back in (`db_rolled_back`).
//! - **Checks**: the `svm-db` thread checks the mirror every `interval_secs` plus a random
//!   `jitter_secs`; after a failure to reach it, after `retry_min_secs`, doubling up to the
//!   interval. A check reads `BASE/timestamp.json` (capped at the timestamp's 16 KiB) and
//!   verifies its signatures against the trusted root; only when it names a version newer than
//!   the newest ever installed, and newer than the last refused one, is `BASE/bundle.tar`
//!   downloaded (capped at `max_bundle_bytes`, within `timeout_secs`) into the state directory.
//! - **Install**: the download goes through exactly what `svm db update` does
//!   ([`crate::db::store::Store::update`]: every TUF check, staging, rules, lists, self-test, the
//!   A/B switch). Then its rules are swapped into the workers the way SIGHUP does
//!   ([`super::rules::RulesSwapper`]): built beside the running set, taken by each worker between
//!   two bursts, no frame lost. If the engine refuses them, the store is rolled back, the old
//!   rules never left the workers, and the version is remembered as refused.
//! - **Reporting**: `db_updated`, `db_update_failed` (once per distinct reason, so a mirror
//!   that stays down is one event), `db_rolled_back` and `db_stale` (once a set) events; `svm_db_*` metrics;
//!   `GET /api/v1/db`.
//!
//! A refused version is kept in memory: after a restart it is downloaded and refused once more.
//! Every operation holds one lock, and the state directory's own lock while it changes it, so
//! the thread, the API and `svm db` commands never interleave.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::config::DbSettings;
use super::plane::WorkerStatuses;
use super::rules::{DbRules, RulesBefore, RulesSwapper};
use super::weblists::{WebBefore, WebDb};
use crate::api::db::{DbControl, DbOpError, DbProbationView, DbSetView, DbView};
use crate::control::Metric;
use crate::db::DbError;
use crate::db::meta::{self, Envelope, MetaRole, Role, TargetKind, Targets};
use crate::db::store::{ProbationFile, Refused, SetInfo, Status, Store, UpdateOptions};
use crate::events::Severity;
use crate::https::HttpsClient;
use crate::rules_load::Loaded;
use crate::weblists::ListSpec;
pub use defs::AttackDefs;
use health::{Bounds, Failure, History, Probation, Sample, Verdict};

mod defs;
mod health;

/// Hands an event (type, severity, fields) to the event hub.
pub type Emit = Box<dyn Fn(&str, Severity, Map<String, Value>) + Send + Sync>;

/// The mirror: its base URL and a client that trusts its CA.
struct Mirror {
    base: String,
    client: HttpsClient,
}

/// What the updater knows besides the state directory.
#[derive(Debug, Default)]
struct SyncState {
    /// The set whose rules are in force.
    in_force: Option<String>,
    /// The state directory as last read.
    status: Option<Status>,
    last_check: Option<OffsetDateTime>,
    last_result: Option<&'static str>,
    last_error: Option<String>,
    /// The reason last reported in a `db_update_failed` event (not repeated).
    last_reported: Option<String>,
    next_check: Option<OffsetDateTime>,
    refused: Option<u64>,
    /// Failures to reach the mirror in a row (the backoff).
    failures: u32,
    checks_ok: u64,
    checks_failed: u64,
    installed: u64,
    refusals: u64,
    rollbacks: u64,
    /// The set whose staleness was reported (`db_stale`, once a set).
    stale_reported: Option<String>,
    /// The set swapped in last, while it is watched.
    probation: Option<InProbation>,
    probations_passed: u64,
    /// The sample at the last swap, until its lost frames are counted.
    loss_pending: Option<Sample>,
    /// Frames lost across the last swap, and across every swap.
    last_swap_lost: Option<u64>,
    swap_lost_total: u64,
}

/// What a swap replaced, to put back as it was.
#[derive(Debug)]
struct Before {
    /// The set that was in force.
    set: Option<String>,
    rules: RulesBefore,
    web: Option<WebBefore>,
    /// The attack blocker definitions in force (`None`: not taken by this daemon).
    defs: Option<Option<Arc<crate::db::attack::Definitions>>>,
}

/// A set in probation.
#[derive(Debug)]
struct InProbation {
    set: SetInfo,
    watch: Probation,
    /// What its swap replaced (`None`: swapped in at start, nothing to put back as it was).
    before: Option<Before>,
}

/// The database updater.
pub struct DbSync {
    settings: DbSettings,
    mirror: Option<Mirror>,
    rules: RulesSwapper,
    /// The running web address lists, if they take the database's.
    web: Option<Arc<WebDb>>,
    /// The workers' policy, if it takes the database's attack blocker definitions.
    defs: Option<Arc<AttackDefs>>,
    /// The workers' published counters, for the health checks after a swap.
    workers: Option<WorkerStatuses>,
    /// The workers' counters, a sample a second.
    history: Mutex<History>,
    emit: Emit,
    /// Held through every operation.
    op: Mutex<()>,
    state: Mutex<SyncState>,
}

impl std::fmt::Debug for DbSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSync")
            .field("dir", &self.settings.dir)
            .field("mirror", &self.settings.mirror)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn set_view(s: &SetInfo) -> DbSetView {
    DbSetView {
        name: s.name.clone(),
        version: s.version,
        expires: s.expires.clone(),
        timestamp_expires: s.timestamp_expires.clone(),
        stale: s.stale,
        targets: s.targets,
        rules_loaded: s.report.rules_loaded,
        rules_skipped: s.report.rules_skipped,
        lists: s.report.lists.clone(),
        attack_blocker: s.report.attack_blocker.clone(),
    }
}

/// A uniformly random number of seconds in `0..=max`.
fn jitter(max: u64) -> u64 {
    let mut b = [0u8; 8];
    if max == 0 || getrandom::fill(&mut b).is_err() {
        return 0;
    }
    u64::from_le_bytes(b) % (max + 1)
}

/// The engine inputs of the set in `dir` (`sets/NAME`), read from its (already verified)
/// targets metadata: its rule targets in name order with its classification, and its address
/// lists with their categories.
fn inputs_of(dir: &Path) -> Result<(DbRules, Vec<ListSpec>), DbError> {
    let path = dir.join("metadata").join(Role::Targets.file());
    let bytes = std::fs::read(&path).map_err(DbError::io(path.display()))?;
    let targets: Targets = Envelope::parse(Role::Targets, &bytes)?.decode()?;
    let at = |n: &String| dir.join("targets").join(n);
    let rules = DbRules {
        files: targets
            .targets
            .iter()
            .filter(|(_, t)| t.custom.kind == TargetKind::Rules)
            .map(|(n, _)| at(n))
            .collect(),
        classification: targets
            .targets
            .iter()
            .find(|(_, t)| t.custom.kind == TargetKind::Classification)
            .map(|(n, _)| at(n)),
    };
    let lists = targets
        .targets
        .iter()
        .filter(|(_, t)| t.custom.kind == TargetKind::UrlList)
        .map(|(n, t)| ListSpec {
            category: t.custom.category.clone().unwrap_or_default(),
            path: at(n),
            key: format!("database target {n}"),
        })
        .collect();
    Ok((rules, lists))
}

/// How much worker history the baseline of a probation covers.
const HISTORY: Duration = Duration::from_secs(120);

/// The bytes of `metadata/timestamp.json` in the bundle at `path` (metadata comes first; at
/// most the timestamp's cap is read), if it has one.
fn bundle_timestamp(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut ar = tar::Archive::new(f);
    for e in ar.entries().ok()? {
        let e = e.ok()?;
        if e.path().ok()?.as_os_str() == "metadata/timestamp.json" {
            let mut b = Vec::new();
            e.take(meta::cap(Role::Timestamp) + 1)
                .read_to_end(&mut b)
                .ok()?;
            return Some(b);
        }
        if e.path().ok()?.starts_with("targets") {
            return None;
        }
    }
    None
}

/// How a check ended.
enum Checked {
    UpToDate,
    RefusedBefore,
    Installed,
}

impl DbSync {
    /// An updater for `settings` that swaps rules through `rules` and reports through `emit`.
    /// A mirror's CA that cannot be read is an error.
    pub fn new(settings: DbSettings, rules: RulesSwapper, emit: Emit) -> Result<DbSync, String> {
        let mirror = match (&settings.mirror, &settings.ca) {
            (Some(base), Some(ca)) => {
                let roots = crate::tls::load_certs(ca).map_err(|e| format!("db.ca: {e}"))?;
                let cfg =
                    crate::tls::client_config(&roots, None).map_err(|e| format!("db.ca: {e}"))?;
                Some(Mirror {
                    base: base.clone(),
                    client: HttpsClient::new(cfg, Duration::from_secs(settings.timeout_secs)),
                })
            }
            _ => None,
        };
        Ok(DbSync {
            settings,
            mirror,
            rules,
            web: None,
            defs: None,
            workers: None,
            history: Mutex::new(History::new(HISTORY)),
            emit,
            op: Mutex::new(()),
            state: Mutex::new(SyncState::default()),
        })
    }

    /// Swap the database's address lists into `web` with its rules.
    #[must_use]
    pub fn with_web(mut self, web: Arc<WebDb>) -> DbSync {
        self.web = Some(web);
        self
    }

    /// Lay the database's attack blocker definitions under the admin's policy in `defs`.
    #[must_use]
    pub fn with_attack_defs(mut self, defs: Arc<AttackDefs>) -> DbSync {
        self.defs = Some(defs);
        self
    }

    /// Watch a set after its swap through the workers' counters (set once they run).
    #[must_use]
    pub fn with_workers(mut self, workers: WorkerStatuses) -> DbSync {
        self.workers = Some(workers);
        self
    }

    fn event(&self, kind: &str, severity: Severity, fields: Value) {
        let mut m = Map::new();
        m.insert("db".into(), fields);
        (self.emit)(kind, severity, m);
    }

    fn store(&self) -> Result<Store, DbOpError> {
        Store::open(&self.settings.dir).map_err(|e| match e {
            DbError::Locked(_) => DbOpError::Conflict(e.to_string()),
            e => DbOpError::Refused(e.to_string()),
        })
    }

    /// Read the state directory into the view (after every operation).
    fn refresh(&self, store: &Store, now: OffsetDateTime) {
        let status = store.status(now);
        let mut st = lock(&self.state);
        match status {
            Ok(s) => st.status = Some(s),
            Err(e) => st.last_error = Some(format!("state directory: {e}")),
        }
    }

    fn set_dir(&self, name: &str) -> PathBuf {
        self.settings.dir.join("sets").join(name)
    }

    /// Build `set`'s rules and address lists into the running ones, both or neither; the
    /// engine's refusal as text. What they replaced is returned, to put back as it was.
    fn swap(&self, set: Option<&SetInfo>) -> Result<Before, String> {
        self.swap_built(set, None)
    }

    /// [`DbSync::swap`] with the rules the set's check compiled, swapped in as they are when
    /// the database is the only source of rules ([`RulesSwapper::swap_db_built`]).
    fn swap_built(&self, set: Option<&SetInfo>, built: Option<Loaded>) -> Result<Before, String> {
        let (rules, lists) = match set {
            Some(s) => {
                let (r, l) = inputs_of(&self.set_dir(&s.name)).map_err(|e| e.to_string())?;
                (Some(r), l)
            }
            None => (None, Vec::new()),
        };
        let was = lock(&self.state).in_force.clone();
        let rules = self.rules.swap_db_built(rules, built)?;
        let web = match &self.web {
            Some(w) => match w.swap(lists) {
                Ok(b) => Some(b),
                Err(e) => {
                    // The rules go back: the set is in force whole or not at all.
                    if let Err(r) = self.rules.restore(rules) {
                        tracing::warn!("svm run: database: putting the rules back failed: {r}");
                    }
                    return Err(format!("web address lists: {e}"));
                }
            },
            None => None,
        };
        // Last, as nothing can refuse them: the attack blocker definitions.
        let defs = self.defs.as_ref().map(|d| {
            d.swap(
                set.filter(|s| !s.report.attack_blocker.is_empty())
                    .map(|s| Arc::new(s.report.attack_blocker.clone())),
            )
        });
        lock(&self.state).in_force = set.map(|s| s.name.clone());
        Ok(Before {
            set: was,
            rules,
            web,
            defs,
        })
    }

    /// Put back what a swap replaced (no build, unless something rebuilt the engine since).
    fn restore(&self, before: Before, to: Option<&SetInfo>) -> Result<(), String> {
        if let (Some(w), Some(b)) = (&self.web, before.web) {
            w.restore(b)
                .map_err(|e| format!("web address lists: {e}"))?;
        }
        self.rules.restore(before.rules)?;
        if let (Some(d), Some(b)) = (&self.defs, before.defs) {
            d.swap(b);
        }
        lock(&self.state).in_force = to.map(|s| s.name.clone());
        Ok(())
    }

    /// Remember `version` as refused, on disk too (a restarted daemon does not try it again).
    fn remember_refused(&self, store: &Store, version: u64, reason: &str) {
        let mut st = lock(&self.state);
        if st.refused.is_some_and(|r| r >= version) {
            return;
        }
        st.refused = Some(version);
        drop(st);
        let r = Refused {
            version,
            reason: reason.to_owned(),
            at: meta::format_time(OffsetDateTime::now_utc()),
        };
        if let Err(e) = store.set_refused(&r) {
            tracing::warn!("svm run: database: recording refused version {version}: {e}");
        }
    }

    /// Watch `set`, just swapped in, for `db.probation_secs` (and record it on disk, so a daemon
    /// that dies in the probation rolls it back at its next start).
    fn begin_probation(&self, store: &Store, set: &SetInfo, before: Option<Before>) {
        let started = std::time::Instant::now();
        let at_swap = self.workers.as_ref().and_then(|w| w.get()).map(|w| {
            let s = Sample::of(w, started);
            lock(&self.history).push(s.clone());
            s
        });
        let watch = Probation::new(&lock(&self.history), started, self.settings.probation_secs);
        let mut st = lock(&self.state);
        st.loss_pending = at_swap.filter(|_| before.is_some());
        if self.settings.probation_secs == 0 {
            st.probation = None;
            return;
        }
        let secs = i64::try_from(self.settings.probation_secs).unwrap_or(i64::MAX / 2);
        let file = ProbationFile {
            set: set.name.clone(),
            version: set.version,
            until: meta::format_time(OffsetDateTime::now_utc() + time::Duration::seconds(secs)),
            stopped: false,
        };
        st.probation = Some(InProbation {
            set: set.clone(),
            watch,
            before,
        });
        drop(st);
        if let Err(e) = store.set_probation(Some(&file)) {
            tracing::warn!("svm run: database: recording the probation: {e}");
        }
    }

    /// End the probation (passed, rolled back, or replaced by a rollback on command).
    fn end_probation(&self, store: &Store) -> Option<InProbation> {
        let p = lock(&self.state).probation.take();
        if let Err(e) = store.set_probation(None) {
            tracing::warn!("svm run: database: clearing the probation: {e}");
        }
        p
    }

    /// Once a second (the updater's thread): sample the workers, judge a set in probation,
    /// count the frames lost across the last swap.
    pub fn tick(&self) {
        let Some(statuses) = self.workers.as_ref().and_then(|w| w.get()) else {
            return;
        };
        let _op = lock(&self.op);
        let sample = Sample::of(statuses, std::time::Instant::now());
        let mut history = lock(&self.history);
        history.push(sample);
        let mut st = lock(&self.state);
        if let Some(lost) = st
            .loss_pending
            .as_ref()
            .and_then(|s| health::lost_across(s, &history))
        {
            st.loss_pending = None;
            st.last_swap_lost = Some(lost);
            st.swap_lost_total += lost;
        }
        let bounds = Bounds {
            factor: self.settings.alert_rate_factor,
            floor: self.settings.alert_rate_floor,
        };
        let verdict = st
            .probation
            .as_ref()
            .map(|p| p.watch.judge(&history, bounds));
        drop(st);
        drop(history);
        match verdict {
            None | Some(Verdict::Watching) => {}
            Some(Verdict::Passed) => {
                let Ok(store) = self.store() else { return };
                if let Some(p) = self.end_probation(&store) {
                    lock(&self.state).probations_passed += 1;
                    tracing::info!(
                        "svm run: database version {} passed its probation ({} s)",
                        p.set.version,
                        self.settings.probation_secs
                    );
                }
            }
            Some(Verdict::Failed(f)) => self.probation_failed(&f),
        }
    }

    /// A check failed in probation: the previous set back in force, the version refused.
    /// With the state directory locked by an `svm db` command, tried again at the next tick.
    fn probation_failed(&self, f: &Failure) {
        let Ok(store) = self.store() else { return };
        let now = OffsetDateTime::now_utc();
        let Some(p) = self.end_probation(&store) else {
            return;
        };
        tracing::warn!(
            "svm run: database version {} failed its probation ({}): {}",
            p.set.version,
            f.check,
            f.reason
        );
        self.auto_rollback(&store, &p.set, &f.reason, f.check, p.before, now);
    }

    /// A worker ended by itself (an I/O error, a panic): a set in probation is rolled back
    /// before the daemon stops, so the next start runs the set before it.
    pub fn worker_ended(&self) {
        let _op = lock(&self.op);
        if lock(&self.state).probation.is_none() {
            return;
        }
        self.probation_failed(&Failure {
            check: "worker",
            reason: "a worker ended during the probation".into(),
        });
    }

    /// A worker hung (alive, publishing nothing for `secs` s, [`crate::daemon::stall`]): a set
    /// in probation is rolled back.
    pub fn worker_stalled(&self, worker: usize, secs: u64) {
        let _op = lock(&self.op);
        if lock(&self.state).probation.is_none() {
            return;
        }
        self.probation_failed(&Failure {
            check: "worker_stalled",
            reason: format!("worker {worker} published nothing for {secs} s during the probation"),
        });
    }

    /// The daemon stops cleanly: a probation in progress is marked so, and starts again at
    /// the next start instead of counting as a crash.
    pub fn stopping(&self) {
        let _op = lock(&self.op);
        let Some(set) = lock(&self.state).probation.as_ref().map(|p| p.set.clone()) else {
            return;
        };
        let Ok(store) = self.store() else { return };
        if let Ok(Some(mut file)) = store.probation()
            && file.set == set.name
        {
            file.stopped = true;
            let _ = store.set_probation(Some(&file));
        }
    }

    /// Report a failure: recorded, and an event unless it is the one last reported.
    fn failed(&self, stage: &str, version: Option<u64>, reason: &str) {
        let mut st = lock(&self.state);
        st.last_error = Some(format!("{stage}: {reason}"));
        let key = format!("{stage}: {version:?}: {reason}");
        if st.last_reported.as_deref() == Some(key.as_str()) {
            return;
        }
        st.last_reported = Some(key);
        drop(st);
        tracing::warn!("svm run: database update failed ({stage}): {reason}");
        self.event(
            "db_update_failed",
            Severity::Warning,
            json!({"stage": stage, "version": version, "reason": reason,
                   "mirror": self.settings.mirror}),
        );
    }

    /// At start, before any port opens: the rules of the set `current` names go into the
    /// running set; if the engine refuses them, the previous set is switched back in.
    pub fn start(&self) {
        let _op = lock(&self.op);
        let now = OffsetDateTime::now_utc();
        let store = match Store::open(&self.settings.dir) {
            Ok(s) => s,
            Err(e) => return self.failed("start", None, &e.to_string()),
        };
        self.refresh(&store, now);
        match store.refused() {
            Ok(r) => lock(&self.state).refused = r.map(|r| r.version),
            Err(e) => tracing::warn!("svm run: database: {e}"),
        }
        // Downloads and uploads a killed daemon left behind (never installed from there).
        if let Ok(entries) = std::fs::read_dir(&self.settings.dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name == "download.tar" || (name.starts_with("upload-") && name.ends_with(".tar"))
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let status = lock(&self.state).status.clone();
        let Some(cur) = status.as_ref().and_then(|s| s.current.clone()) else {
            tracing::info!(
                "svm run: database: no set installed in {}",
                self.settings.dir.display()
            );
            return;
        };
        let probation = store.probation().ok().flatten();
        if let Some(p) = probation
            .as_ref()
            .filter(|p| p.set == cur.name && !p.stopped)
        {
            // The daemon died in this set's probation (a crash, an abort, a kill): its rules
            // never go in again.
            let reason = format!(
                "the daemon ended without stopping during the probation of version {}",
                p.version
            );
            let _ = store.set_probation(None);
            self.failed("probation", Some(cur.version), &reason);
            self.auto_rollback(&store, &cur, &reason, "daemon", None, now);
            return;
        }
        match self.swap(Some(&cur)) {
            Ok(_) => {
                tracing::info!(
                    "svm run: database version {} in force ({}{})",
                    cur.version,
                    cur.name,
                    if cur.stale { ", STALE" } else { "" }
                );
                match probation {
                    // Stopped cleanly in its probation: watched again from now.
                    Some(p) if p.set == cur.name => self.begin_probation(&store, &cur, None),
                    Some(_) => {
                        let _ = store.set_probation(None);
                    }
                    None => {}
                }
            }
            Err(reason) => {
                self.failed("engine", Some(cur.version), &reason);
                self.auto_rollback(&store, &cur, &reason, "engine", None, now);
            }
        }
    }

    /// `bad` (switched in by the store) was refused by the engine (`check` `engine`: nothing
    /// of it was published) or failed a health check after its swap (`before`: what its swap
    /// replaced): switch the store back, put the previous set back in force and remember the
    /// version as refused, on disk.
    fn auto_rollback(
        &self,
        store: &Store,
        bad: &SetInfo,
        reason: &str,
        check: &str,
        before: Option<Before>,
        now: OffsetDateTime,
    ) {
        lock(&self.state).refusals += 1;
        self.remember_refused(store, bad.version, &format!("{check}: {reason}"));
        let started = std::time::Instant::now();
        // The first set installed has no set before it: it is taken out of use, and the engine
        // runs as it did before it (without database rules and lists).
        let switched = match store.rollback(now) {
            Err(DbError::State(_)) => store.retire(now),
            r => r,
        };
        match switched {
            Ok(status) => {
                let to = status.current.clone();
                let restored = before.map(|b| self.restore(b, to.as_ref()));
                if let Some(Err(e)) = &restored {
                    tracing::error!("svm run: database: putting the previous set back: {e}");
                }
                // The set now current is the one in force unless it was never loaded (start)
                // or could not be put back as it was.
                let in_force = lock(&self.state).in_force.clone();
                if to.as_ref().map(|s| &s.name) != in_force.as_ref()
                    && let Err(e) = self.swap(to.as_ref())
                {
                    self.failed("engine", to.as_ref().map(|s| s.version), &e);
                }
                lock(&self.state).rollbacks += 1;
                tracing::warn!(
                    "svm run: database version {} rolled back ({check}); version {} is back in \
                     force in {:.3} s",
                    bad.version,
                    to.as_ref().map_or(0, |s| s.version),
                    started.elapsed().as_secs_f64()
                );
                self.event(
                    "db_rolled_back",
                    Severity::Warning,
                    json!({"from_version": bad.version,
                           "to_version": to.as_ref().map(|s| s.version),
                           "automatic": true, "check": check, "reason": reason}),
                );
            }
            Err(e) => self.failed("rollback", Some(bad.version), &e.to_string()),
        }
        self.refresh(store, now);
    }

    /// When the thread checks next: the interval after a good check, a doubling retry after a
    /// failure to reach the mirror, plus jitter.
    fn schedule(&self, now: OffsetDateTime) {
        let s = &self.settings;
        let mut st = lock(&self.state);
        let base = if st.failures == 0 {
            s.interval_secs
        } else {
            let doubled = s
                .retry_min_secs
                .saturating_mul(1u64 << (st.failures - 1).min(30));
            doubled.min(s.interval_secs)
        };
        let wait = base.saturating_add(jitter(s.jitter_secs));
        st.next_check =
            Some(now + time::Duration::seconds(i64::try_from(wait).unwrap_or(i64::MAX / 2)));
    }

    /// The first check's time: at once plus jitter.
    pub fn schedule_first(&self) {
        if self.mirror.is_none() {
            return;
        }
        let now = OffsetDateTime::now_utc();
        let wait = jitter(self.settings.jitter_secs);
        lock(&self.state).next_check =
            Some(now + time::Duration::seconds(i64::try_from(wait).unwrap_or(0)));
    }

    /// Check the mirror and install a newer bundle.
    pub fn check(&self) -> Result<DbView, DbOpError> {
        let Some(mirror) = &self.mirror else {
            return Err(DbOpError::NoMirror);
        };
        let _op = lock(&self.op);
        let now = OffsetDateTime::now_utc();
        let r = self.check_locked(mirror, now);
        {
            let mut st = lock(&self.state);
            st.last_check = Some(now);
            match &r {
                Ok(c) => {
                    st.checks_ok += 1;
                    st.failures = 0;
                    st.last_error = None;
                    st.last_reported = None;
                    st.last_result = Some(match c {
                        Checked::UpToDate => "up_to_date",
                        Checked::RefusedBefore => "refused_before",
                        Checked::Installed => "installed",
                    });
                }
                Err(DbOpError::Mirror(_)) => {
                    st.checks_failed += 1;
                    st.failures = st.failures.saturating_add(1);
                    st.last_result = Some("failed");
                }
                Err(_) => {
                    st.checks_failed += 1;
                    st.failures = 0;
                    st.last_result = Some("refused");
                }
            }
        }
        self.schedule(now);
        r.map(|_| self.view())
    }

    fn check_locked(&self, mirror: &Mirror, now: OffsetDateTime) -> Result<Checked, DbOpError> {
        let started = std::time::Instant::now();
        let store = self.store()?;
        self.refresh(&store, now);
        // A set switched in by `svm db update` or `rollback` meanwhile is taken on.
        self.adopt(&store, now);
        let fail_mirror = |e: String| {
            self.failed("mirror", None, &e);
            DbOpError::Mirror(e)
        };
        let ts_url = format!("{}/{}", mirror.base, Role::Timestamp.file());
        let mut ts_bytes = Vec::new();
        self.fetch(mirror, &ts_url, meta::cap(Role::Timestamp), &mut ts_bytes)
            .map_err(fail_mirror)?;
        let refuse = |stage: &str, version: Option<u64>, e: String| {
            self.failed(stage, version, &e);
            DbOpError::Refused(e)
        };
        let (root_bytes, _) = store
            .root(self.settings.root.as_deref())
            .map_err(|e| refuse("verify", None, e.to_string()))?;
        let (root, _) =
            meta::trusted_root(&root_bytes).map_err(|e| refuse("verify", None, e.to_string()))?;
        let ts_env = Envelope::parse(Role::Timestamp, &ts_bytes)
            .map_err(|e| refuse("verify", None, format!("{ts_url}: {e}")))?;
        // Signed by keys of a rotated root: the mirror's root.json (the bundle's) must be the
        // trusted root's next version, signed by both (the store checks the bundle's again).
        if let Err(e) = ts_env.verify(&root) {
            self.next_root(mirror, &root)
                .filter(|next| ts_env.verify(next).is_ok())
                .ok_or_else(|| refuse("verify", None, format!("{ts_url}: {e}")))?;
        }
        let ts: MetaRole = ts_env
            .decode()
            .map_err(|e| refuse("verify", None, format!("{ts_url}: {e}")))?;
        let trusted = store
            .trusted()
            .map_err(|e| refuse("verify", None, e.to_string()))?;
        let installed = lock(&self.state)
            .status
            .as_ref()
            .and_then(|s| s.current.as_ref())
            .map(|_| trusted.versions.targets);
        if ts.version < trusted.versions.timestamp {
            // An older timestamp than one trusted: a rollback attack, or a mirror gone back.
            let e = DbError::Rollback {
                role: Role::Timestamp.name(),
                trusted: trusted.versions.timestamp,
                got: ts.version,
            };
            return Err(refuse("verify", Some(ts.version), e.to_string()));
        }
        if installed.is_some_and(|v| ts.version <= v) {
            return Ok(Checked::UpToDate);
        }
        if lock(&self.state).refused.is_some_and(|r| ts.version <= r) {
            return Ok(Checked::RefusedBefore);
        }
        let download = self.settings.dir.join("download.tar");
        let got = std::fs::File::create(&download)
            .map_err(|e| e.to_string())
            .and_then(|mut f| {
                let url = format!("{}/bundle.tar", mirror.base);
                self.fetch_to(mirror, &url, self.settings.max_bundle_bytes, &mut f)?;
                f.sync_all().map_err(|e| e.to_string())
            });
        // A mirror caught between its two uploads serves a timestamp of another bundle: tried
        // again at the next check, not refused.
        let got = got.and_then(|()| match bundle_timestamp(&download) {
            Some(b) if b == ts_bytes => Ok(()),
            _ => Err(format!(
                "{ts_url} is not the timestamp of {}/bundle.tar (the mirror is being updated?)",
                mirror.base
            )),
        });
        if let Err(e) = got {
            let _ = std::fs::remove_file(&download);
            return Err(fail_mirror(e));
        }
        let r = self.install(&store, &download, Some(ts.version), "mirror", now, started);
        let _ = std::fs::remove_file(&download);
        r
    }

    /// Install the bundle at `path` through the store (every check of `svm db update`), swap
    /// its rules in, or roll back if the engine refuses them. `offered`: the version the mirror
    /// named (remembered when the bundle is refused); `source`: `mirror` or `upload`.
    fn install(
        &self,
        store: &Store,
        path: &Path,
        offered: Option<u64>,
        source: &str,
        now: OffsetDateTime,
        started: std::time::Instant,
    ) -> Result<Checked, DbOpError> {
        let refuse = |stage: &str, version: Option<u64>, e: String| {
            self.failed(stage, version, &e);
            DbOpError::Refused(e)
        };
        let previous = lock(&self.state)
            .status
            .as_ref()
            .and_then(|s| s.current.clone());
        // The check compiles the set's rules as the replacement of the running set: swapped in
        // as they are when the database is the only source of rules (compiled once).
        let running = self.rules.running();
        let opts = UpdateOptions {
            from: path.to_owned(),
            root: self.settings.root.clone(),
            allow_expired: false,
            now,
        };
        let r = store.update_keeping(&opts, running.as_deref());
        drop(running);
        let (installed, built) = match r {
            Ok(i) => i,
            Err(e) => {
                self.refresh(store, now);
                if matches!(e, DbError::Io { .. } | DbError::Locked(_)) {
                    // Not the bundle's fault: tried again at the next check.
                    return Err(refuse("install", offered, e.to_string()));
                }
                if let Some(v) = offered {
                    self.remember_refused(store, v, &format!("verify: {e}"));
                }
                lock(&self.state).refusals += 1;
                return Err(refuse("verify", offered, e.to_string()));
            }
        };
        let set = installed.set;
        let checked = started.elapsed();
        let before = match self.swap_built(Some(&set), built) {
            Ok(b) => b,
            Err(reason) => {
                self.failed("engine", Some(set.version), &reason);
                self.auto_rollback(store, &set, &reason, "engine", None, now);
                return Err(DbOpError::Refused(format!(
                    "version {}: the engine refused its rules: {reason}",
                    set.version
                )));
            }
        };
        self.begin_probation(store, &set, Some(before));
        lock(&self.state).installed += 1;
        self.refresh(store, now);
        let rules = self.rules.status();
        tracing::info!(
            "svm run: database version {} in force ({}; {} rules loaded; {source}: fetched, \
             verified and checked in {:.3} s, swapped in {:.3} s)",
            set.version,
            set.name,
            rules.loaded,
            checked.as_secs_f64(),
            (started.elapsed() - checked).as_secs_f64()
        );
        self.event(
            "db_updated",
            Severity::Info,
            json!({"version": set.version,
                   "previous_version": previous.as_ref().map(|p| p.version),
                   "set": set.name, "expires": set.expires,
                   "timestamp_expires": set.timestamp_expires, "stale": set.stale,
                   "rules_loaded": rules.loaded, "rules_skipped": rules.skipped,
                   "lists": set.report.lists, "source": source,
                   "mirror": self.settings.mirror}),
        );
        Ok(Checked::Installed)
    }

    /// Install a bundle handed in through the API (`POST /api/v1/db`): the same path as a
    /// mirror's download. A refused upload is not remembered as a refused mirror version.
    pub fn install_file(&self, bundle: &Path) -> Result<DbView, DbOpError> {
        let _op = lock(&self.op);
        let started = std::time::Instant::now();
        let now = OffsetDateTime::now_utc();
        let store = self.store()?;
        self.refresh(&store, now);
        self.adopt(&store, now);
        self.install(&store, bundle, None, "upload", now, started)?;
        lock(&self.state).last_error = None;
        Ok(self.view())
    }

    /// The mirror's `root.json`, if it is a valid rotation of `trusted`.
    fn next_root(&self, mirror: &Mirror, trusted: &meta::Root) -> Option<meta::Root> {
        let mut bytes = Vec::new();
        let url = format!("{}/{}", mirror.base, Role::Root.file());
        self.fetch(mirror, &url, meta::cap(Role::Root), &mut bytes)
            .ok()?;
        let env = Envelope::parse(Role::Root, &bytes).ok()?;
        crate::db::verify::rotated_root(trusted, &env).ok()
    }

    /// If `current` is not the set in force (changed by an `svm db` command), swap it in.
    fn adopt(&self, store: &Store, now: OffsetDateTime) {
        let (cur, in_force) = {
            let st = lock(&self.state);
            (
                st.status.as_ref().and_then(|s| s.current.clone()),
                st.in_force.clone(),
            )
        };
        if cur.as_ref().map(|c| &c.name) == in_force.as_ref() {
            return;
        }
        match self.swap(cur.as_ref()) {
            Ok(before) => {
                if let Some(c) = &cur {
                    self.begin_probation(store, c, Some(before));
                }
            }
            Err(reason) => {
                self.failed("engine", cur.as_ref().map(|c| c.version), &reason);
                if let Some(bad) = &cur {
                    self.auto_rollback(store, bad, &reason, "engine", None, now);
                }
            }
        }
    }

    fn fetch(&self, mirror: &Mirror, url: &str, cap: u64, out: &mut Vec<u8>) -> Result<(), String> {
        self.fetch_to(mirror, url, cap, out)
    }

    /// `GET url` into `out` (at most `cap` bytes) on a runtime of this call's own.
    fn fetch_to(
        &self,
        mirror: &Mirror,
        url: &str,
        cap: u64,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        let status = rt
            .block_on(mirror.client.download(url, cap, out))
            .map_err(|e| e.to_string())?;
        if status != hyper::StatusCode::OK {
            return Err(format!("{url}: HTTP {status}"));
        }
        Ok(())
    }

    /// Switch back to the previous set and swap its rules in; if the engine refuses them, the
    /// switch is undone.
    pub fn rollback_now(&self) -> Result<DbView, DbOpError> {
        let _op = lock(&self.op);
        let started = std::time::Instant::now();
        let now = OffsetDateTime::now_utc();
        let store = self.store()?;
        self.refresh(&store, now);
        let from = lock(&self.state)
            .status
            .as_ref()
            .and_then(|s| s.current.clone());
        let status = store.rollback(now).map_err(|e| match e {
            DbError::State(m) => DbOpError::Conflict(m),
            e => DbOpError::Refused(e.to_string()),
        })?;
        let to = status.current.clone();
        // A rollback on command ends a probation: the admin chose the set. Back to the set the
        // probation's swap replaced, that set's rules and lists are put back as they were (no
        // build); otherwise they are built.
        let replaced = self
            .end_probation(&store)
            .and_then(|p| p.before)
            .filter(|b| b.set.as_ref() == to.as_ref().map(|t| &t.name));
        let put_back = replaced.map(|b| self.restore(b, to.as_ref()));
        let swapped = match put_back {
            Some(Ok(())) => Ok(()),
            _ => self.swap(to.as_ref()).map(|_| ()),
        };
        if let Err(reason) = swapped {
            // Undo: the set in force stays current (a retired set brought back is retired
            // again).
            if store.rollback(now).is_err() {
                let _ = store.retire(now);
            }
            self.refresh(&store, now);
            self.failed("engine", to.as_ref().map(|s| s.version), &reason);
            return Err(DbOpError::Refused(format!(
                "the previous set's rules were refused by the engine: {reason}"
            )));
        }
        {
            let mut st = lock(&self.state);
            st.rollbacks += 1;
            st.last_error = None;
        }
        self.refresh(&store, now);
        tracing::info!(
            "svm run: database rolled back from version {} to version {} in {:.3} s",
            from.as_ref().map_or(0, |s| s.version),
            to.as_ref().map_or(0, |s| s.version),
            started.elapsed().as_secs_f64()
        );
        self.event(
            "db_rolled_back",
            Severity::Warning,
            json!({"from_version": from.as_ref().map(|s| s.version),
                   "to_version": to.as_ref().map(|s| s.version),
                   "automatic": false, "reason": "requested"}),
        );
        Ok(self.view())
    }

    /// The state for the API.
    pub fn view(&self) -> DbView {
        let st = lock(&self.state);
        let status = st.status.as_ref();
        DbView {
            dir: self.settings.dir.display().to_string(),
            mirror: self.settings.mirror.clone(),
            current: status.and_then(|s| s.current.as_ref()).map(set_view),
            previous: status.and_then(|s| s.previous.as_ref()).map(set_view),
            in_force: st.in_force.clone(),
            trusted_version: status.map_or(0, |s| s.trusted.versions.targets),
            last_check: st.last_check.map(meta::format_time),
            last_result: st.last_result.map(str::to_owned),
            last_error: st.last_error.clone(),
            next_check: st.next_check.map(meta::format_time),
            refused_version: st.refused,
            probation: st.probation.as_ref().map(|p| {
                let left = p
                    .watch
                    .until
                    .saturating_duration_since(std::time::Instant::now());
                DbProbationView {
                    version: p.set.version,
                    until: meta::format_time(
                        OffsetDateTime::now_utc()
                            + time::Duration::try_from(left).unwrap_or(time::Duration::ZERO),
                    ),
                    alerts_per_sec_before: p.watch.baseline,
                }
            }),
            last_swap_frames_lost: st.last_swap_lost,
        }
    }

    /// `svm_db_*` for `/metrics`.
    pub fn metrics(&self) -> Vec<Metric> {
        #[allow(clippy::cast_precision_loss)]
        let f = |v: u64| v as f64;
        let st = lock(&self.state);
        let cur = st.status.as_ref().and_then(|s| s.current.as_ref());
        // Staleness is of now, not of the last read.
        let stale = cur.is_some_and(|c| {
            meta::parse_time(Role::Timestamp, &c.timestamp_expires)
                .is_ok_and(|t| t <= OffsetDateTime::now_utc())
        });
        let one = |name, help, kind, v: f64| Metric {
            name,
            help,
            kind,
            samples: vec![(Vec::new(), v)],
        };
        vec![
            one(
                "svm_db_version",
                "Version of the database set in force (0: none).",
                "gauge",
                f(cur.map_or(0, |c| c.version)),
            ),
            one(
                "svm_db_stale",
                "1 when the database set's timestamp has expired (it stays in force).",
                "gauge",
                f(u64::from(stale)),
            ),
            one(
                "svm_db_last_check_timestamp_seconds",
                "When the mirror was last checked (Unix time; 0: never).",
                "gauge",
                st.last_check.map_or(0.0, |t| t.unix_timestamp() as f64),
            ),
            Metric {
                name: "svm_db_checks_total",
                help: "Checks of the mirror, by result.",
                kind: "counter",
                samples: vec![
                    (vec![("result", "ok".into())], f(st.checks_ok)),
                    (vec![("result", "failed".into())], f(st.checks_failed)),
                ],
            },
            Metric {
                name: "svm_db_updates_total",
                help: "Database sets installed, refused (verification, checks, self-test or engine) and rolled back.",
                kind: "counter",
                samples: vec![
                    (vec![("result", "installed".into())], f(st.installed)),
                    (vec![("result", "refused".into())], f(st.refusals)),
                    (vec![("result", "rolled_back".into())], f(st.rollbacks)),
                ],
            },
            one(
                "svm_db_probation",
                "1 while the set swapped in last is watched (its probation).",
                "gauge",
                f(u64::from(st.probation.is_some())),
            ),
            one(
                "svm_db_probations_passed_total",
                "Sets that passed their probation after a swap.",
                "counter",
                f(st.probations_passed),
            ),
            one(
                "svm_db_swap_frames_lost_total",
                "Frames the kernel or devices dropped, or could not transmit, across database swaps (from the last worker status before each swap to 2 s after it).",
                "counter",
                f(st.swap_lost_total),
            ),
        ]
    }

    /// Report once that the set in force went stale (its timestamp expired): it stays in force,
    /// nothing is uninstalled for being old, but the publisher has stopped vouching for it.
    pub fn note_stale(&self, now: OffsetDateTime) {
        let mut st = lock(&self.state);
        let Some(cur) = st.status.as_ref().and_then(|s| s.current.clone()) else {
            return;
        };
        let stale =
            meta::parse_time(Role::Timestamp, &cur.timestamp_expires).is_ok_and(|t| t <= now);
        if !stale || st.stale_reported.as_ref() == Some(&cur.name) {
            return;
        }
        st.stale_reported = Some(cur.name.clone());
        drop(st);
        tracing::warn!(
            "svm run: database version {} is STALE: its timestamp expired at {}; it stays in force",
            cur.version,
            cur.timestamp_expires
        );
        self.event(
            "db_stale",
            Severity::Warning,
            json!({"version": cur.version, "set": cur.name,
                   "timestamp_expires": cur.timestamp_expires, "mirror": self.settings.mirror}),
        );
    }

    /// How long until the next check, if the mirror is checked at all.
    fn due_in(&self) -> Option<Duration> {
        let next = lock(&self.state).next_check?;
        let left = next - OffsetDateTime::now_utc();
        Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
    }
}

impl DbControl for DbSync {
    fn view(&self) -> DbView {
        DbSync::view(self)
    }

    fn check_now(&self) -> Result<DbView, DbOpError> {
        self.check()
    }

    fn rollback(&self) -> Result<DbView, DbOpError> {
        self.rollback_now()
    }

    fn upload_limits(&self) -> (PathBuf, u64, Duration) {
        (
            self.settings.dir.clone(),
            self.settings.max_bundle_bytes,
            Duration::from_secs(self.settings.timeout_secs),
        )
    }

    fn install(&self, path: &Path) -> Result<DbView, DbOpError> {
        self.install_file(path)
    }
}

/// The `svm-db` thread; [`DbThread::stop`] ends it.
#[derive(Debug)]
pub struct DbThread {
    sync: Arc<DbSync>,
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

/// The longest the thread sleeps before it looks at the schedule again (a check made through
/// the API moves it).
const TICK: Duration = Duration::from_secs(1);

impl DbThread {
    /// Check the mirror on schedule, and the set in force for staleness, until stopped.
    pub fn spawn(sync: Arc<DbSync>) -> std::io::Result<DbThread> {
        let (tx, rx) = std::sync::mpsc::channel();
        sync.schedule_first();
        let s = Arc::clone(&sync);
        let handle = std::thread::Builder::new()
            .name("svm-db".into())
            .spawn(move || run(&s, &rx))?;
        Ok(DbThread {
            sync,
            stop: Some(tx),
            handle: Some(handle),
        })
    }

    /// A worker ended by itself: a set in probation is rolled back.
    pub fn worker_ended(&self) {
        self.sync.worker_ended();
    }

    /// Stop (after a check in progress); a probation in progress is marked as cleanly
    /// stopped.
    pub fn stop(mut self) {
        self.stop = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.sync.stopping();
    }
}

fn run(sync: &DbSync, stop: &Receiver<()>) {
    loop {
        let wait = sync.due_in();
        match stop.recv_timeout(wait.map_or(TICK, |w| w.min(TICK))) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        if sync.due_in().is_some_and(|w| w.is_zero()) {
            let _ = sync.check();
        }
        sync.tick();
        sync.note_stale(OffsetDateTime::now_utc());
    }
}

#[cfg(test)]
mod tests;
