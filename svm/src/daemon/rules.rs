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

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use dataplane::rules::reasons_table;

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
fn key_of(input: &Input, origin: &[usize]) -> String {
    match input {
        Input::File(i) => format!("rules.files[{}]", origin.get(*i).copied().unwrap_or(*i)),
        Input::VarsFile => "rules.vars_file".into(),
        Input::AddressGroup(n) => format!("rules.address_groups.{n}"),
        Input::PortGroup(n) => format!("rules.port_groups.{n}"),
        Input::ThresholdFile => "rules.threshold_file".into(),
        Input::ClassificationFile => "rules.classification_file".into(),
    }
}

/// Read, check and compile the rules of `s` (strictly); every problem with its key.
pub fn load(s: &RulesSettings) -> Result<Loaded, Vec<ConfigIssue>> {
    let (files, origin, patterns) = rules_load::expand(&s.files);
    let mut issues: Vec<ConfigIssue> = patterns
        .into_iter()
        .map(|(i, message)| ConfigIssue {
            key: format!("rules.files[{i}]"),
            message,
        })
        .collect();
    let spec = RulesSpec {
        files,
        vars_file: s.vars_file.clone(),
        address_groups: s.address_groups.clone(),
        port_groups: s.port_groups.clone(),
        threshold_file: s.threshold_file.clone(),
        classification_file: s.classification_file.clone(),
        // From the vars file's `action-order`, if it has one.
        action_order: Vec::new(),
    };
    match rules_load::load(&spec, Strictness::Strict) {
        Ok(l) if issues.is_empty() => Ok(l),
        Ok(_) => Err(issues),
        Err(problems) => {
            issues.extend(problems.into_iter().map(|p| ConfigIssue {
                key: key_of(&p.input, &origin),
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
    requests: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// How often the reload thread looks at the SIGHUP flag.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

impl LiveRules {
    /// Publish the rules loaded at start (if any) and start the `svm-rules` thread, which
    /// reloads on [`LiveRules::request_reload`] and whenever `sighup` is set (the daemon
    /// registers it for SIGHUP; it is handled, and logged, also without a `rules:` section).
    pub fn start(
        settings: Option<&RulesSettings>,
        initial: Option<Loaded>,
        sighup: Option<Arc<AtomicBool>>,
    ) -> Result<LiveRules, DaemonError> {
        let mut st = RulesStatus {
            configured: settings.is_some(),
            ..RulesStatus::default()
        };
        if let Some(l) = &initial {
            st.took(l);
        }
        let cell = Arc::new(RulesCell::new(initial.map(|l| l.set)));
        let status = Arc::new(Mutex::new(st));
        let (tx, rx) = std::sync::mpsc::channel();
        let (s, c, st) = (settings.cloned(), Arc::clone(&cell), Arc::clone(&status));
        let thread = std::thread::Builder::new()
            .name("svm-rules".into())
            .spawn(move || reload_thread(s.as_ref(), &rx, sighup.as_deref(), &c, &st))
            .map_err(io_err("spawn rules reloader"))?;
        Ok(LiveRules {
            cell,
            status,
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    /// Ask for a reload; returns at once. Requests that arrive while one runs are served by
    /// one more reload after it.
    pub fn request_reload(&self) {
        if let Some(tx) = &self.requests {
            let _ = tx.send(());
        }
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
    s: Option<&RulesSettings>,
    rx: &Receiver<()>,
    sighup: Option<&AtomicBool>,
    cell: &RulesCell,
    status: &Mutex<RulesStatus>,
) {
    loop {
        let asked = match rx.recv_timeout(SIGNAL_POLL) {
            Ok(()) => true,
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let signalled = sighup.is_some_and(|f| f.swap(false, Ordering::Relaxed));
        if !(asked || signalled) {
            continue;
        }
        // Several requests while idle make one reload.
        while rx.try_recv().is_ok() {}
        match s {
            Some(s) => {
                eprintln!(
                    "svm run: {}: reloading the rules",
                    if signalled { "SIGHUP" } else { "request" }
                );
                reload(s, cell, status);
            }
            None => eprintln!("svm run: SIGHUP: no rules configured, nothing to reload"),
        }
    }
}

/// Build a new set from `s` and publish it, or keep the running one and record why not.
pub fn reload(s: &RulesSettings, cell: &RulesCell, status: &Mutex<RulesStatus>) -> bool {
    match load(s) {
        Ok(l) => {
            eprintln!("{}", describe(&l, "reloaded"));
            let mut st = status.lock().unwrap_or_else(PoisonError::into_inner);
            st.took(&l);
            st.reloads += 1;
            st.last_error = None;
            drop(st);
            cell.store(Some(l.set));
            true
        }
        Err(issues) => {
            let text: Vec<String> = issues
                .iter()
                .map(|i| format!("{}: {}", i.key, i.message))
                .collect();
            eprintln!(
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
            async_oneside: false,
            inline: false,
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
        let rules = LiveRules::start(Some(&s), Some(load(&s).unwrap()), None).unwrap();
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
        rules.stop();
    }

    #[test]
    fn the_thread_reloads_on_the_signal_flag_and_on_request() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("local.rules");
        std::fs::write(&f, "").unwrap();
        let s = settings(vec![f.display().to_string()]);
        let hup = Arc::new(AtomicBool::new(false));
        let rules =
            LiveRules::start(Some(&s), Some(load(&s).unwrap()), Some(Arc::clone(&hup))).unwrap();
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
}
