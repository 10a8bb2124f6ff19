//! Activity scanner rules in the live daemon.
//!
//! - **Start**: [`load`] reads the `rules:` section's files with the loader replay uses
//!   ([`crate::rules_load`], strict: every problem of every file is reported with its
//!   configuration key) before any socket is opened; bad rules are skipped, counted and logged.
//! - **Sharing**: the compiled [`dataplane::rules::RuleSet`] is one `Arc`, read-only, published
//!   in a [`RulesCell`] that every worker checks once per receive burst.
//! - **Reload**: SIGHUP asks the `svm-rules` thread to load the same `rules:` section again
//!   (glob patterns expanded anew, every file read again). The new set is built completely
//!   while the workers keep running on the old one, then swapped in: each worker takes it
//!   between two bursts, so no packet waits for the build and none is dropped for it. A reload
//!   that fails (a file gone, a variable that no longer compiles) changes nothing: the running
//!   rules stay, the problems are logged, and the status counts the failure. Flows keep their
//!   inspection state across a reload.
//! - **Databases**: the rule files of the installed signed database set ([`DbRules`], see
//!   [`super::dbsync`]) are loaded after the configuration's (or the policy's) files, in every
//!   build: at start, on SIGHUP, when a policy changes the files, and when the database set
//!   changes ([`RulesSwapper::swap_db`], which reports a refused set so the database can roll
//!   back).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use dataplane::rules::{RuleSet, reasons_table};

use super::config::{ConfigIssue, RulesSettings};
use super::workers::RulesCell;
use super::{DaemonError, io_err};
use crate::rules_load::{self, Input, Loaded, RulesSpec, Strictness};

/// Skipped rules printed one by one per load; the rest are counted (`svm rules check` lists
/// them all).
const LOG_SKIPPED: usize = 20;

/// The rules part of the status report and of `/metrics`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RulesStatus {
    /// Whether a `rules:` section is configured.
    pub configured: bool,
    /// Rule files of the running set.
    pub files: usize,
    /// Rules in the running set.
    pub loaded: usize,
    /// Rules skipped when the running set was loaded.
    pub skipped: usize,
    /// Seconds the running set took to load and compile.
    pub seconds: f64,
    /// Successful reloads since start.
    pub reloads: u64,
    /// Failed reloads since start (the running set stayed).
    pub reload_failures: u64,
    /// The problems of the last failed reload, if the last reload failed.
    pub last_error: Option<String>,
}

impl RulesStatus {
    fn took(&mut self, l: &Loaded) {
        self.files = l.reports.len();
        self.loaded = l.loaded;
        self.skipped = l.skipped;
        self.seconds = l.seconds;
    }

    /// For the API's status; `None` without a `rules` section.
    pub fn summary(&self) -> Option<crate::control::RulesSummary> {
        self.configured.then(|| crate::control::RulesSummary {
            files: self.files,
            loaded: self.loaded,
            skipped: self.skipped,
            load_secs: self.seconds,
            reloads: self.reloads,
            reload_failures: self.reload_failures,
            last_reload_error: self.last_error.clone(),
        })
    }

    /// One line for the status report.
    pub fn line(&self) -> String {
        if !self.configured {
            return "rules: none configured (attack blocker only)".into();
        }
        let mut s = format!(
            "rules: {} loaded, {} skipped from {} files ({:.3} s); reloads {} ok, {} failed",
            self.loaded, self.skipped, self.files, self.seconds, self.reloads, self.reload_failures
        );
        if let Some(e) = &self.last_error {
            let _ = write!(s, "; last reload failed: {e}");
        }
        s
    }
}

/// The configuration key of a loader problem.
fn key_of(input: &Input, origin: &[usize], files_key: &str) -> String {
    match input {
        Input::File(i) => format!("{files_key}[{}]", origin.get(*i).copied().unwrap_or(*i)),
        Input::VarsFile => "rules.vars_file".into(),
        Input::AddressGroup(n) => format!("rules.address_groups.{n}"),
        Input::PortGroup(n) => format!("rules.port_groups.{n}"),
        Input::ThresholdFile => "rules.threshold_file".into(),
        Input::ClassificationFile => "rules.classification_file".into(),
    }
}

fn spec_of(s: &RulesSettings, files: Vec<std::path::PathBuf>) -> RulesSpec {
    RulesSpec {
        files,
        vars_file: s.vars_file.clone(),
        address_groups: s.address_groups.clone(),
        port_groups: s.port_groups.clone(),
        threshold_file: s.threshold_file.clone(),
        classification_file: s.classification_file.clone(),
        // From the vars file's `action-order`, if it has one.
        action_order: Vec::new(),
    }
}

/// The problems a policy's `activity_scanner` would cause with this configuration's `rules`
/// section, with their policy paths: rule-file patterns that match nothing or files that do not
/// exist, and variables that do not compile. The control plane refuses such a policy (422) so
/// the running one stays; rules that fail to parse are skipped and counted as always.
pub fn check_policy(
    config: Option<&RulesSettings>,
    a: &policy::ActivityScanner,
) -> Vec<policy::PolicyError> {
    let Some(s) = RulesSettings::with_policy(config, a) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut files = Vec::new();
    if !a.rule_files.is_empty() {
        let (found, origin, patterns) = rules_load::expand(&a.rule_files);
        for (i, message) in patterns {
            out.push(policy::PolicyError {
                path: format!("activity_scanner.rule_files[{i}]"),
                message,
            });
        }
        for (f, i) in found.iter().zip(origin) {
            if !f.is_file() {
                out.push(policy::PolicyError {
                    path: format!("activity_scanner.rule_files[{i}]"),
                    message: format!("{}: no such file on the appliance", f.display()),
                });
            }
        }
        files = found;
    }
    for p in rules_load::check_vars(&spec_of(&s, files)) {
        let path = match &p.input {
            Input::AddressGroup(n) if a.address_groups.contains_key(n) => {
                format!("activity_scanner.address_groups.{n}")
            }
            Input::PortGroup(n) if a.port_groups.contains_key(n) => {
                format!("activity_scanner.port_groups.{n}")
            }
            // The configuration's own variables were checked at start; one that a policy
            // variable breaks is reported under the policy.
            Input::AddressGroup(n) => format!("activity_scanner.address_groups (via {n})"),
            Input::PortGroup(n) => format!("activity_scanner.port_groups (via {n})"),
            _ => "activity_scanner".into(),
        };
        out.push(policy::PolicyError {
            path,
            message: p.message,
        });
    }
    out
}

/// Read, check and compile the rules of `s` (strictly); every problem with its key.
pub fn load(s: &RulesSettings) -> Result<Loaded, Vec<ConfigIssue>> {
    load_after(s, None)
}

/// [`load`] replacing `previous`: flowbit ids carry over (flows keep their flowbits).
pub fn load_after(
    s: &RulesSettings,
    previous: Option<&RuleSet>,
) -> Result<Loaded, Vec<ConfigIssue>> {
    let (files, origin, patterns) = rules_load::expand(&s.files);
    let mut issues: Vec<ConfigIssue> = patterns
        .into_iter()
        .map(|(i, message)| ConfigIssue {
            key: format!("{}[{i}]", s.files_key),
            message,
        })
        .collect();
    let spec = spec_of(s, files);
    match rules_load::load_after(&spec, Strictness::Strict, previous) {
        Ok(l) if issues.is_empty() => Ok(l),
        Ok(_) => Err(issues),
        Err(problems) => {
            issues.extend(problems.into_iter().map(|p| ConfigIssue {
                key: key_of(&p.input, &origin, s.files_key),
                message: p.message,
            }));
            Err(issues)
        }
    }
}

/// What a load did, for the log: totals, each skipped rule (up to [`LOG_SKIPPED`]) with its
/// file, line, sid and reason, and the skip reasons counted.
pub fn describe(l: &Loaded, what: &str) -> String {
    let mut s = format!(
        "svm run: rules {what}: {} loaded, {} skipped from {} files in {:.3} s",
        l.loaded,
        l.skipped,
        l.reports.len(),
        l.seconds
    );
    let mut shown = 0;
    for rep in &l.reports {
        for e in &rep.skipped {
            if shown < LOG_SKIPPED {
                let _ = write!(s, "\n  skipped {}: {e}", rep.source);
            }
            shown += 1;
        }
    }
    if shown > LOG_SKIPPED {
        let _ = write!(
            s,
            "\n  ... and {} more skipped (svm rules check FILE... lists them all)",
            shown - LOG_SKIPPED
        );
    }
    let table = reasons_table(l.reports.iter().flat_map(|r| r.skipped.iter()));
    if !table.is_empty() {
        let parts: Vec<String> = table.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = write!(s, "\n  skip reasons: {}", parts.join(", "));
    }
    s
}

/// The running rule set, its status, and the reload thread.
#[derive(Debug)]
pub struct LiveRules {
    /// What the workers run.
    pub cell: Arc<RulesCell>,
    /// For the status report and `/metrics`.
    pub status: Arc<Mutex<RulesStatus>>,
    inputs: Arc<Inputs>,
    requests: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

/// What the rule set is built from: the configuration's `rules` section, and the settings of
/// the running set (that section with the running policy's rule files and variables). The
/// lock is held through a reload, so reloads never overlap.
#[derive(Debug)]
struct Inputs {
    config: Option<RulesSettings>,
    running: Mutex<Option<RulesSettings>>,
    /// The installed database set's rules; changed only under the `running` lock.
    db: Mutex<Option<DbRules>>,
}

/// The rule inputs of the installed database set (docs/databases.md), built into the running
/// set after the configuration's (or the policy's) rule files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DbRules {
    /// The set's rule files (inside its directory under `sets/`, which never changes).
    pub files: Vec<std::path::PathBuf>,
    /// The set's `classification.config`, used when the configuration names none.
    pub classification: Option<std::path::PathBuf>,
}

/// The settings a build uses: the running settings with the database's rules after their
/// files; `None` when neither has rules.
fn with_db(running: Option<&RulesSettings>, db: Option<&DbRules>) -> Option<RulesSettings> {
    let Some(d) = db else {
        return running.cloned();
    };
    let mut s = running.cloned().unwrap_or_else(RulesSettings::bare);
    s.files
        .extend(d.files.iter().map(|f| f.display().to_string()));
    if s.classification_file.is_none() {
        s.classification_file.clone_from(&d.classification);
    }
    Some(s)
}

fn db_of(inputs: &Inputs) -> Option<DbRules> {
    inputs
        .db
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Swaps the database's rules into the running set (for [`super::dbsync`]).
#[derive(Clone, Debug)]
pub struct RulesSwapper {
    inputs: Arc<Inputs>,
    cell: Arc<RulesCell>,
    status: Arc<Mutex<RulesStatus>>,
}

/// What a database swap replaced: enough to put it back without building it again
/// ([`RulesSwapper::restore`]), as long as nothing rebuilt the rules since.
#[derive(Debug)]
pub struct RulesBefore {
    db: Option<DbRules>,
    set: Option<Arc<RuleSet>>,
    status: RulesStatus,
    /// The cell's generation right after the swap.
    after: u64,
}

impl RulesSwapper {
    /// Build the running set with `db` as the database's rules and publish it (workers take it
    /// between two bursts), or keep the running set and return why the engine refused it. The
    /// set it replaced is returned for [`RulesSwapper::restore`].
    pub fn swap_db(&self, db: Option<DbRules>) -> Result<RulesBefore, String> {
        self.swap_db_built(db, None)
    }

    /// [`RulesSwapper::swap_db`] with the rules the database's check compiled (`built`, as the
    /// replacement of the running set): when the database is the only source of rules (no
    /// `rules` files or variables of the configuration or the policy), that build is the
    /// running set's and is published as it is; otherwise the set is built here.
    pub fn swap_db_built(
        &self,
        db: Option<DbRules>,
        built: Option<Loaded>,
    ) -> Result<RulesBefore, String> {
        let running = self
            .inputs
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut before = RulesBefore {
            db: db_of(&self.inputs),
            set: self.cell.load(),
            status: self.status(),
            after: 0,
        };
        match with_db(running.as_ref(), db.as_ref()) {
            None => {
                tracing::info!("svm run: no database rules and no rule files: rules unloaded");
                self.cell.store(None);
                *self.status.lock().unwrap_or_else(PoisonError::into_inner) =
                    RulesStatus::default();
            }
            Some(_) if running.is_none() && db.is_some() && built.is_some() => {
                if let Some(l) = built {
                    publish(
                        l,
                        "swapped in as the database check built them",
                        &self.cell,
                        &self.status,
                    );
                }
            }
            Some(s) => {
                if !reload(&s, &self.cell, &self.status) {
                    let st = self.status.lock().unwrap_or_else(PoisonError::into_inner);
                    return Err(st
                        .last_error
                        .clone()
                        .unwrap_or_else(|| "the rules did not load".into()));
                }
                self.status
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .configured = true;
            }
        }
        *self
            .inputs
            .db
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = db;
        before.after = self.cell.generation();
        Ok(before)
    }

    /// Put back what a swap replaced: its compiled set is published again as it was (no build,
    /// so a rollback takes no compile time). If the rules were rebuilt since (SIGHUP, a policy),
    /// the old database rules are built into the running inputs instead.
    pub fn restore(&self, before: RulesBefore) -> Result<(), String> {
        {
            let _running = self
                .inputs
                .running
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if self.cell.generation() == before.after {
                self.cell.store(before.set);
                let mut st = self.status.lock().unwrap_or_else(PoisonError::into_inner);
                let (reloads, failures) = (st.reloads, st.reload_failures);
                *st = before.status;
                st.reloads = reloads;
                st.reload_failures = failures;
                drop(st);
                *self
                    .inputs
                    .db
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = before.db;
                return Ok(());
            }
        }
        self.swap_db(before.db).map(|_| ())
    }

    /// The running rule set (a database check builds its replacement from it).
    pub fn running(&self) -> Option<Arc<RuleSet>> {
        self.cell.load()
    }

    /// The running rule set's counts.
    pub fn status(&self) -> RulesStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A job for the `svm-rules` thread.
#[derive(Debug)]
enum Request {
    /// Build the running settings' set again (SIGHUP).
    Reload,
    /// A policy was applied: rebuild if its rule files or variables changed.
    Policy(Box<policy::ActivityScanner>),
}

/// Hands applied policies to the `svm-rules` thread (for the control plane's policy hook).
#[derive(Clone, Debug)]
pub struct RulesFollower(Sender<Request>);

impl RulesFollower {
    /// Rebuild the rules in the background if `a`'s rule files or variables differ from the
    /// running set's; returns at once.
    pub fn follow(&self, a: &policy::ActivityScanner) {
        let _ = self.0.send(Request::Policy(Box::new(a.clone())));
    }
}

/// How often the reload thread looks at the SIGHUP flag.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

impl LiveRules {
    /// Publish the rules loaded at start (if any) and start the `svm-rules` thread, which
    /// reloads on [`LiveRules::request_reload`] and whenever `sighup` is set (the daemon
    /// registers it for SIGHUP; it is handled, and logged, also without a `rules:` section).
    ///
    /// `initial` was loaded from `running`: the configuration's section with the starting
    /// policy's rule inputs ([`RulesSettings::with_policy`]).
    pub fn start(
        config: Option<&RulesSettings>,
        running: Option<RulesSettings>,
        initial: Option<Loaded>,
        sighup: Option<Arc<AtomicBool>>,
    ) -> Result<LiveRules, DaemonError> {
        let mut st = RulesStatus {
            configured: running.is_some(),
            ..RulesStatus::default()
        };
        if let Some(l) = &initial {
            st.took(l);
        }
        let cell = Arc::new(RulesCell::new(initial.map(|l| l.set)));
        let status = Arc::new(Mutex::new(st));
        let inputs = Arc::new(Inputs {
            config: config.cloned(),
            running: Mutex::new(running),
            db: Mutex::new(None),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let (i, c, st) = (Arc::clone(&inputs), Arc::clone(&cell), Arc::clone(&status));
        let thread = std::thread::Builder::new()
            .name("svm-rules".into())
            .spawn(move || reload_thread(&i, &rx, sighup.as_deref(), &c, &st))
            .map_err(io_err("spawn rules reloader"))?;
        Ok(LiveRules {
            cell,
            status,
            inputs,
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    /// Ask for a reload; returns at once. Requests that arrive while one runs are served by
    /// one more reload after it.
    pub fn request_reload(&self) {
        if let Some(tx) = &self.requests {
            let _ = tx.send(Request::Reload);
        }
    }

    /// For the database updater: swaps the database's rules in.
    pub fn swapper(&self) -> RulesSwapper {
        RulesSwapper {
            inputs: Arc::clone(&self.inputs),
            cell: Arc::clone(&self.cell),
            status: Arc::clone(&self.status),
        }
    }

    /// For the control plane: applied policies go to the reload thread.
    pub fn follower(&self) -> Option<RulesFollower> {
        self.requests.clone().map(RulesFollower)
    }

    /// Rebuild the rules now, on this thread, if `a`'s rule files or variables differ from the
    /// running set's (at start, when the control plane's stored policy is not the policy file).
    pub fn follow_now(&self, a: &policy::ActivityScanner) {
        follow(&self.inputs, a, &self.cell, &self.status);
    }

    /// A copy of the status.
    pub fn status(&self) -> RulesStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stop the reload thread (after a reload in progress).
    pub fn stop(mut self) {
        self.requests = None;
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

fn reload_thread(
    inputs: &Inputs,
    rx: &Receiver<Request>,
    sighup: Option<&AtomicBool>,
    cell: &RulesCell,
    status: &Mutex<RulesStatus>,
) {
    loop {
        let mut asked = false;
        let mut policy = None;
        match rx.recv_timeout(SIGNAL_POLL) {
            Ok(Request::Reload) => asked = true,
            Ok(Request::Policy(a)) => policy = Some(a),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Several requests while idle make one reload; of several policies the last counts.
        while let Ok(r) = rx.try_recv() {
            match r {
                Request::Reload => asked = true,
                Request::Policy(a) => policy = Some(a),
            }
        }
        if let Some(a) = policy {
            follow(inputs, &a, cell, status);
        }
        let signalled = sighup.is_some_and(|f| f.swap(false, Ordering::Relaxed));
        if !(asked || signalled) {
            continue;
        }
        let running = inputs
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match with_db(running.as_ref(), db_of(inputs).as_ref()) {
            Some(s) => {
                tracing::info!(
                    "svm run: {}: reloading the rules",
                    if signalled { "SIGHUP" } else { "request" }
                );
                reload(&s, cell, status);
            }
            None => tracing::info!("svm run: SIGHUP: no rules configured, nothing to reload"),
        }
    }
}

/// Make the running set follow the policy's rule inputs: rebuild when they changed, unload the
/// rules when neither the configuration nor the policy names a rule file any more. A rebuild
/// that fails keeps the running set (and its settings).
fn follow(
    inputs: &Inputs,
    a: &policy::ActivityScanner,
    cell: &RulesCell,
    status: &Mutex<RulesStatus>,
) {
    let next = RulesSettings::with_policy(inputs.config.as_ref(), a);
    let mut running = inputs
        .running
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if *running == next {
        return;
    }
    let db = db_of(inputs);
    match with_db(next.as_ref(), db.as_ref()) {
        None => {
            tracing::info!("svm run: the policy names no rule files any more: rules unloaded");
            cell.store(None);
            *status.lock().unwrap_or_else(PoisonError::into_inner) = RulesStatus::default();
            *running = None;
        }
        Some(s) => {
            tracing::info!(
                "svm run: the policy changed the rule files or variables: reloading the rules"
            );
            if reload(&s, cell, status) {
                status
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .configured = true;
                *running = next;
            }
        }
    }
}

/// Publish a new set (a reload's, or the database check's).
fn publish(l: Loaded, what: &str, cell: &RulesCell, status: &Mutex<RulesStatus>) {
    tracing::info!("{}", describe(&l, what));
    let mut st = status.lock().unwrap_or_else(PoisonError::into_inner);
    st.took(&l);
    st.reloads += 1;
    st.last_error = None;
    st.configured = true;
    drop(st);
    cell.store(Some(l.set));
}

/// Build a new set from `s` and publish it, or keep the running one and record why not.
pub fn reload(s: &RulesSettings, cell: &RulesCell, status: &Mutex<RulesStatus>) -> bool {
    let running = cell.load();
    match load_after(s, running.as_deref()) {
        Ok(l) => {
            publish(l, "reloaded", cell, status);
            true
        }
        Err(issues) => {
            let text: Vec<String> = issues
                .iter()
                .map(|i| format!("{}: {}", i.key, i.message))
                .collect();
            tracing::warn!(
                "svm run: rules reload failed, the running rules stay:\n  {}",
                text.join("\n  ")
            );
            let mut st = status.lock().unwrap_or_else(PoisonError::into_inner);
            st.reload_failures += 1;
            st.last_error = Some(text.join("; "));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(files: Vec<String>) -> RulesSettings {
        RulesSettings {
            files,
            vars_file: None,
            address_groups: vec![],
            port_groups: vec![],
            threshold_file: None,
            classification_file: None,
            midstream: false,
            stream_depth: 1 << 20,
            stream_memcap: dataplane::stream::DEFAULT_MEMCAP,
            async_oneside: false,
            files_key: "rules.files",
            inline: false,
            urgent_policy: dataplane::stream::UrgentPolicy::Inline,
            urgent_oob_limit_policy: dataplane::stream::UrgentPolicy::Inline,
            tls_inspect_encrypted: false,
            detection_ports: dataplane::app::DetectionPorts::default(),
            host_os: dataplane::stream::HostOsPolicy::default(),
        }
    }

    fn sids(cell: &RulesCell) -> Vec<u32> {
        cell.load()
            .map(|s| s.rules().iter().map(|r| r.sid).collect())
            .unwrap_or_default()
    }

    #[test]
    fn problems_carry_their_configuration_keys() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.rules"), "").unwrap();
        let dir = d.path().display();
        let mut s = settings(vec![
            format!("{dir}/*.rules"),
            format!("{dir}/*.missing"),
            format!("{dir}/gone.rules"),
        ]);
        s.threshold_file = Some(d.path().join("threshold.config"));
        s.address_groups = vec![("HOME_NET".into(), "10.0.0.0/33".into())];
        let e = load(&s).unwrap_err();
        let keys: Vec<&str> = e.iter().map(|i| i.key.as_str()).collect();
        for k in [
            "rules.files[1]",
            "rules.files[2]",
            "rules.threshold_file",
            "rules.address_groups.HOME_NET",
        ] {
            assert!(keys.contains(&k), "{k} missing from {e:?}");
        }
        assert!(!keys.contains(&"rules.files[0]"), "{e:?}");
    }

    #[test]
    fn reload_swaps_the_set_and_a_failed_one_keeps_it() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("local.rules");
        std::fs::write(
            &f,
            "alert tcp any any -> any any (msg:\"one\"; content:\"one\"; sid:1; rev:1;)\n",
        )
        .unwrap();
        let s = settings(vec![f.display().to_string()]);
        let rules =
            LiveRules::start(Some(&s), Some(s.clone()), Some(load(&s).unwrap()), None).unwrap();
        assert_eq!(sids(&rules.cell), [1]);
        let mut seen = rules.cell.generation();

        std::fs::write(
            &f,
            "alert tcp any any -> any any (msg:\"two\"; content:\"two\"; sid:2; rev:1;)\n\
             alert tcp any any -> any any (msg:\"bad\"; nosuchkeyword; sid:3; rev:1;)\n",
        )
        .unwrap();
        assert!(reload(&s, &rules.cell, &rules.status));
        assert!(rules.cell.changed(&mut seen).is_some());
        assert_eq!(sids(&rules.cell), [2]);
        let st = rules.status();
        assert_eq!((st.loaded, st.skipped, st.reloads), (1, 1, 1));

        std::fs::remove_file(&f).unwrap();
        assert!(!reload(&s, &rules.cell, &rules.status));
        assert!(
            rules.cell.changed(&mut seen).is_none(),
            "a failed reload publishes nothing"
        );
        assert_eq!(sids(&rules.cell), [2]);
        let st = rules.status();
        assert_eq!((st.reloads, st.reload_failures), (1, 1));
        assert!(st.last_error.as_deref().unwrap().contains("rules.files[0]"));
        assert!(st.line().contains("1 failed"));
        let api = st.summary().unwrap();
        assert_eq!((api.loaded, api.skipped, api.files), (1, 1, 1));
        assert_eq!((api.reloads, api.reload_failures), (1, 1));
        assert!(api.last_reload_error.unwrap().contains("rules.files[0]"));
        assert_eq!(RulesStatus::default().summary(), None, "no rules section");
        rules.stop();
    }

    #[test]
    fn the_thread_reloads_on_the_signal_flag_and_on_request() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("local.rules");
        std::fs::write(&f, "").unwrap();
        let s = settings(vec![f.display().to_string()]);
        let hup = Arc::new(AtomicBool::new(false));
        let rules = LiveRules::start(
            Some(&s),
            Some(s.clone()),
            Some(load(&s).unwrap()),
            Some(Arc::clone(&hup)),
        )
        .unwrap();
        let wait_for = |n: u64| {
            let t0 = std::time::Instant::now();
            while rules.status().reloads < n {
                assert!(t0.elapsed().as_secs() < 30, "no reload {n}");
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        let rule = |sid: u32| {
            format!("alert tcp any any -> any any (msg:\"x\"; content:\"x\"; sid:{sid}; rev:1;)\n")
        };
        std::fs::write(&f, rule(7)).unwrap();
        hup.store(true, Ordering::Relaxed);
        wait_for(1);
        assert_eq!(sids(&rules.cell), [7]);
        std::fs::write(&f, rule(8)).unwrap();
        rules.request_reload();
        wait_for(2);
        assert_eq!(sids(&rules.cell), [8]);
        rules.stop();
    }

    #[test]
    fn the_policy_rule_inputs_rebuild_the_set_only_when_they_change() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.rules"), d.path().join("b.rules"));
        std::fs::write(
            &a,
            "alert tcp $HOME_NET any -> any any (msg:\"a\"; content:\"a\"; sid:1; rev:1;)\n",
        )
        .unwrap();
        std::fs::write(
            &b,
            "alert tcp any any -> any any (msg:\"b\"; content:\"b\"; sid:2; rev:1;)\n\
             alert tcp any any -> any any (msg:\"c\"; content:\"c\"; sid:3; rev:1;)\n",
        )
        .unwrap();
        let config = settings(vec![a.display().to_string()]);
        let file_policy = policy::ActivityScanner::default();
        let running = RulesSettings::with_policy(Some(&config), &file_policy);
        assert_eq!(
            running.as_ref(),
            Some(&config),
            "no policy inputs: the section as is"
        );
        let rules =
            LiveRules::start(Some(&config), running, Some(load(&config).unwrap()), None).unwrap();

        // Action or exclusions only: the same set, no rebuild.
        let mut p = file_policy.clone();
        p.action = policy::Action::Inform;
        rules.follow_now(&p);
        assert_eq!(rules.status().reloads, 0);

        // The policy's files replace the section's.
        p.rule_files = vec![b.display().to_string()];
        rules.follow_now(&p);
        assert_eq!(sids(&rules.cell), [2, 3]);
        assert_eq!(rules.status().reloads, 1);
        rules.follow_now(&p);
        assert_eq!(rules.status().reloads, 1, "unchanged inputs, no rebuild");

        // Back to the section's files, with a policy variable: rebuilt again.
        p.rule_files.clear();
        p.address_groups
            .insert("HOME_NET".into(), "[192.0.2.0/24]".into());
        rules.follow_now(&p);
        assert_eq!(sids(&rules.cell), [1]);
        assert_eq!(rules.status().reloads, 2);

        // A rebuild that fails keeps the running set, and the next policy tries again.
        let mut gone = p.clone();
        gone.rule_files = vec![d.path().join("gone.rules").display().to_string()];
        rules.follow_now(&gone);
        assert_eq!(sids(&rules.cell), [1]);
        let st = rules.status();
        assert_eq!((st.reloads, st.reload_failures), (2, 1));
        assert!(
            st.last_error
                .as_deref()
                .unwrap()
                .contains("activity_scanner.rule_files[0]"),
            "{st:?}"
        );
        rules.stop();

        // Without a section, the policy's files alone make a set; without them, none.
        let rules = LiveRules::start(None, None, None, None).unwrap();
        assert_eq!(rules.status().summary(), None);
        let only = policy::ActivityScanner {
            rule_files: vec![b.display().to_string()],
            ..policy::ActivityScanner::default()
        };
        rules.follow_now(&only);
        assert_eq!(sids(&rules.cell), [2, 3]);
        assert_eq!(rules.status().summary().unwrap().loaded, 2);
        rules.follow_now(&policy::ActivityScanner::default());
        assert!(rules.cell.load().is_none(), "rules unloaded");
        assert_eq!(rules.status().summary(), None);
        rules.stop();
    }

    #[test]
    fn a_database_build_is_published_as_it_is_only_when_the_database_is_the_only_source() {
        let d = tempfile::tempdir().unwrap();
        let rule = |name: &str, sid: u32| {
            let f = d.path().join(name);
            std::fs::write(
                &f,
                format!(
                    "alert tcp any any -> any any (msg:\"x\"; content:\"x\"; sid:{sid}; rev:1;)\n"
                ),
            )
            .unwrap();
            f
        };
        let db = DbRules {
            files: vec![rule("db.rules", 1)],
            classification: None,
        };
        // A build that differs from the files, to tell which one was published.
        let built = || {
            let mut s = settings(vec![rule("built.rules", 2).display().to_string()]);
            s.files_key = "built";
            load(&s).unwrap()
        };
        // No rules of the configuration or the policy: the build goes in as it is.
        let rules = LiveRules::start(None, None, None, None).unwrap();
        let sw = rules.swapper();
        let before = sw.swap_db_built(Some(db.clone()), Some(built())).unwrap();
        assert_eq!(sids(&rules.cell), [2]);
        assert_eq!(rules.status().loaded, 1);
        // Put back as it was: no rules.
        sw.restore(before).unwrap();
        assert!(rules.cell.load().is_none());
        // Without a build, the files are compiled.
        sw.swap_db(Some(db.clone())).unwrap();
        assert_eq!(sids(&rules.cell), [1]);
        rules.stop();

        // With the configuration's own rules the build is not the running set's: compiled.
        let s = settings(vec![rule("local.rules", 3).display().to_string()]);
        let rules =
            LiveRules::start(Some(&s), Some(s.clone()), Some(load(&s).unwrap()), None).unwrap();
        rules
            .swapper()
            .swap_db_built(Some(db), Some(built()))
            .unwrap();
        let mut got = sids(&rules.cell);
        got.sort_unstable();
        assert_eq!(got, [1, 3]);
        rules.stop();
    }

    #[test]
    fn a_policy_the_appliance_cannot_run_is_refused_with_paths() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a.rules");
        std::fs::write(&a, "").unwrap();
        let config = settings(vec![a.display().to_string()]);
        let mut p = policy::ActivityScanner::default();
        assert!(check_policy(Some(&config), &p).is_empty());
        assert!(check_policy(None, &p).is_empty(), "nothing to check");
        p.rule_files = vec![
            a.display().to_string(),
            d.path().join("missing.rules").display().to_string(),
            d.path().join("*.nomatch").display().to_string(),
        ];
        p.address_groups
            .insert("HOME_NET".into(), "[10.0.0.0/8".into());
        p.port_groups
            .insert("WEB_PORTS".into(), "[80,99999]".into());
        let problems = check_policy(Some(&config), &p);
        let paths: Vec<&str> = problems.iter().map(|e| e.path.as_str()).collect();
        for want in [
            "activity_scanner.rule_files[1]",
            "activity_scanner.rule_files[2]",
            "activity_scanner.address_groups.HOME_NET",
            "activity_scanner.port_groups.WEB_PORTS",
        ] {
            assert!(paths.contains(&want), "{want} missing: {problems:?}");
        }
        assert!(
            !paths.contains(&"activity_scanner.rule_files[0]"),
            "{problems:?}"
        );
    }
}
