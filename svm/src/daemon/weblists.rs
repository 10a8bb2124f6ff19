//! Web address lists in the live daemon.
//!
//! - **Start**: [`LiveWebLists::start`] reads the configuration's `web_address_scan.url_lists`
//!   and the running policy's (`url_lists`, `categories`, `trusted`) with the loader replay uses
//!   ([`crate::weblists`]) before any socket is opened; a list that cannot be read or is refused
//!   stops the start with its key.
//! - **Sharing**: the compiled [`webaddr::AddressSet`] is one `Arc`, published in a [`WebCell`]
//!   that every worker checks once per receive burst (as the rule set).
//! - **Checks**: the policy's block page template is read as the block page builder reads it;
//!   a bad one stops the start, and a pushed policy with one is refused (422), as is one naming
//!   a list file that is not on the appliance.
//! - **Reload**: SIGHUP, and a pushed policy whose lists, categories or trusted addresses
//!   differ, make the `svm-urls` thread read every list again and build a new set while the
//!   workers keep running on the old one, then swap it in between two bursts: no frame waits
//!   for the build and none is lost. A reload that fails keeps the running set, logs every
//!   problem and counts the failure.
//! - **Databases**: the address lists of the installed signed database set ([`WebDb`], swapped
//!   by [`super::dbsync`]) are built in after the configuration's and the policy's, in every
//!   build, through the same load and publication as a reload.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use dataplane::driver::PolicyCell;
pub use dataplane::driver::WebCell;

use super::{DaemonError, io_err};
use crate::weblists::{ListSpec, Loaded, load, policy_specs};

/// What `/metrics` and the status line say about the lists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebStatus {
    /// Lists in the running set.
    pub lists: usize,
    /// Entries in the running set.
    pub entries: usize,
    /// Successful reloads since start.
    pub reloads: u64,
    /// Failed reloads (the running set stayed).
    pub reload_failures: u64,
    /// The problems of the last failed reload.
    pub last_error: Option<String>,
}

impl WebStatus {
    /// One line for the status report.
    pub fn line(&self) -> String {
        let mut s = format!(
            "web address lists: {} lists, {} entries; reloads {} ok, {} failed",
            self.lists, self.entries, self.reloads, self.reload_failures
        );
        if let Some(e) = &self.last_error {
            s.push_str(&format!("; last reload failed: {e}"));
        }
        s
    }
}

/// How often the reload thread looks at SIGHUP, the policy cell and the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// The lists of the running daemon and their reload thread.
#[derive(Debug)]
pub struct LiveWebLists {
    /// The set the workers follow.
    pub cell: Arc<WebCell>,
    /// Counts for status and metrics.
    pub status: Arc<Mutex<WebStatus>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The specs of one load: the configuration's lists, then the policy's, then the database's.
fn specs(config: &[ListSpec], w: &policy::WebAddressScan, db: &[ListSpec]) -> Vec<ListSpec> {
    let mut s = config.to_vec();
    s.extend(policy_specs(w));
    s.extend_from_slice(db);
    s
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The address lists of the installed database set, shared by the database updater (which
/// swaps them, [`WebDb::swap`]) and the running lists (which build them in after the
/// configuration's and the policy's). It exists before either starts: the updater puts the
/// installed set's lists here before the lists are first loaded.
#[derive(Debug, Default)]
pub struct WebDb {
    lists: Mutex<Vec<ListSpec>>,
    live: OnceLock<Live>,
}

/// The running lists' inputs and outputs, once they run.
#[derive(Debug)]
struct Live {
    config: Vec<ListSpec>,
    /// The policy's web address scan in force; locked through every build, so builds never
    /// overlap.
    running: Mutex<policy::WebAddressScan>,
    cell: Arc<WebCell>,
    status: Arc<Mutex<WebStatus>>,
}

/// What a database swap replaced, to put back without building it again ([`WebDb::restore`]).
#[derive(Debug)]
pub struct WebBefore {
    lists: Vec<ListSpec>,
    set: Option<Arc<webaddr::AddressSet>>,
    status: WebStatus,
    /// The cell's generation right after the swap (`None`: the lists did not run yet).
    after: Option<u64>,
}

impl WebDb {
    /// Build the running lists with `lists` as the database's and publish them (workers take
    /// them between two bursts), or keep the running set and return why the build failed.
    /// Before the lists run, `lists` is only recorded: the first load builds it in.
    pub fn swap(&self, lists: Vec<ListSpec>) -> Result<WebBefore, String> {
        let Some(live) = self.live.get() else {
            let old = std::mem::replace(&mut *lock(&self.lists), lists);
            return Ok(WebBefore {
                lists: old,
                set: None,
                status: WebStatus::default(),
                after: None,
            });
        };
        let running = lock(&live.running);
        let mut before = WebBefore {
            lists: lock(&self.lists).clone(),
            set: live.cell.load(),
            status: lock(&live.status).clone(),
            after: None,
        };
        if before.lists == lists {
            before.after = Some(live.cell.generation());
            return Ok(before);
        }
        let all = specs(&live.config, &running, &lists);
        if !reload(&all, &running, &live.cell, &live.status) {
            return Err(lock(&live.status)
                .last_error
                .clone()
                .unwrap_or_else(|| "the web address lists did not load".into()));
        }
        *lock(&self.lists) = lists;
        before.after = Some(live.cell.generation());
        Ok(before)
    }

    /// Put back what a swap replaced: the compiled set it replaced is published again (no
    /// build). If the lists were rebuilt since (SIGHUP, a policy), the old database lists are
    /// built in instead.
    pub fn restore(&self, before: WebBefore) -> Result<(), String> {
        if let Some(live) = self.live.get() {
            let _running = lock(&live.running);
            if before.after == Some(live.cell.generation()) {
                live.cell.store(before.set);
                let mut st = lock(&live.status);
                let (reloads, failures) = (st.reloads, st.reload_failures);
                *st = before.status;
                st.reloads = reloads;
                st.reload_failures = failures;
                drop(st);
                *lock(&self.lists) = before.lists;
                return Ok(());
            }
        }
        self.swap(before.lists).map(|_| ())
    }
}

fn publish(l: &Loaded, cell: &WebCell, st: &mut WebStatus) {
    st.lists = l.lists;
    st.entries = l.entries;
    cell.store((l.lists > 0).then(|| Arc::clone(&l.set)));
}

impl LiveWebLists {
    /// Load the lists for `running` (the policy in force) and start the reload thread, which
    /// follows SIGHUP (`sighup`, a flag of its own) and the policies published in `policy`.
    ///
    /// `db` holds the installed database set's lists, built in after the others (and swapped
    /// by the database updater from then on).
    pub fn start(
        config: Vec<ListSpec>,
        running: &policy::Policy,
        sighup: Arc<AtomicBool>,
        policy: Option<Arc<PolicyCell>>,
        db: Arc<WebDb>,
    ) -> Result<LiveWebLists, DaemonError> {
        let w = running.web_address_scan.clone();
        if let Some(e) = crate::weblists::check_block_page(&w) {
            return Err(DaemonError::Io {
                what: "policy".into(),
                source: std::io::Error::other(e.to_string()),
            });
        }
        // The database's lists cannot change until `live` is set below: a swap before then
        // only records them, and this start runs before the updater's thread.
        let all = specs(&config, &w, &lock(&db.lists));
        let cell = Arc::new(WebCell::new(None));
        let mut st = WebStatus::default();
        if !all.is_empty() {
            let l = load(&all, &w).map_err(|p| DaemonError::Io {
                what: "web address lists".into(),
                source: std::io::Error::other(p.join("\n  ")),
            })?;
            for warning in &l.warnings {
                tracing::warn!("svm run: {warning}");
            }
            tracing::info!("svm run: {}", l.describe());
            publish(&l, &cell, &mut st);
        }
        let status = Arc::new(Mutex::new(st));
        let stop = Arc::new(AtomicBool::new(false));
        let live = Live {
            config,
            running: Mutex::new(w),
            cell: Arc::clone(&cell),
            status: Arc::clone(&status),
        };
        if db.live.set(live).is_err() {
            return Err(DaemonError::Io {
                what: "web address lists".into(),
                source: std::io::Error::other("started twice"),
            });
        }
        let halt = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("svm-urls".into())
            .spawn(move || reload_thread(&db, &sighup, policy.as_deref(), &halt))
            .map_err(io_err("spawn web address list reloader"))?;
        Ok(LiveWebLists {
            cell,
            status,
            stop,
            thread: Some(thread),
        })
    }

    /// Counts for status.
    pub fn status(&self) -> WebStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stop the reload thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

fn reload_thread(db: &WebDb, sighup: &AtomicBool, policy: Option<&PolicyCell>, stop: &AtomicBool) {
    let Some(live) = db.live.get() else { return };
    let mut seen = policy.map_or(0, PolicyCell::generation);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(POLL);
        let mut why = None;
        let mut running = lock(&live.running);
        if let Some(p) = policy.and_then(|c| c.changed(&mut seen)) {
            let next = p.policy().web_address_scan.clone();
            if !next.same_list_inputs(&running) {
                why = Some("the policy changed the web address lists");
            }
            *running = next;
        }
        if sighup.swap(false, Ordering::Relaxed) {
            why = Some("SIGHUP");
        }
        let Some(why) = why else { continue };
        tracing::info!("svm run: {why}: reloading the web address lists");
        let all = specs(&live.config, &running, &lock(&db.lists));
        reload(&all, &running, &live.cell, &live.status);
    }
}

/// Build the set again and publish it; a failure keeps the running set.
pub fn reload(
    specs: &[ListSpec],
    w: &policy::WebAddressScan,
    cell: &WebCell,
    status: &Mutex<WebStatus>,
) -> bool {
    match load(specs, w) {
        Ok(l) => {
            for warning in &l.warnings {
                tracing::warn!("svm run: {warning}");
            }
            tracing::info!("svm run: reloaded {}", l.describe());
            let mut st = status.lock().unwrap_or_else(PoisonError::into_inner);
            publish(&l, cell, &mut st);
            st.reloads += 1;
            st.last_error = None;
            true
        }
        Err(problems) => {
            tracing::warn!(
                "svm run: web address list reload failed, the running lists stay:\n  {}",
                problems.join("\n  ")
            );
            let mut st = status.lock().unwrap_or_else(PoisonError::into_inner);
            st.reload_failures += 1;
            st.last_error = Some(problems.join("; "));
            false
        }
    }
}

/// The problems a pushed policy's `web_address_scan` would cause: list files not on the
/// appliance, with their policy paths (the control plane refuses such a policy, 422).
pub fn check_policy(w: &policy::WebAddressScan) -> Vec<policy::PolicyError> {
    policy_specs(w)
        .into_iter()
        .filter(|s| !s.path.is_file())
        .map(|s| policy::PolicyError {
            path: s.key,
            message: format!("{}: no such file on the appliance", s.path.display()),
        })
        .chain(crate::weblists::check_block_page(w))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_swaps_the_set_and_a_failed_one_keeps_it() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("m.txt");
        std::fs::write(&f, "one.example\n").unwrap();
        let config =
            vec![ListSpec::parse(&format!("malware={}", f.display()), "k".into()).unwrap()];
        let p = policy::Policy::default();
        let hup = Arc::new(AtomicBool::new(false));
        let live = LiveWebLists::start(config.clone(), &p, Arc::clone(&hup), None, Arc::default())
            .unwrap();
        let listed = |name: &[u8]| {
            live.cell
                .load()
                .is_some_and(|s| s.lookup_host(name).is_listed())
        };
        assert!(listed(b"one.example"));
        let mut seen = live.cell.generation();

        std::fs::write(&f, "two.example\n").unwrap();
        hup.store(true, Ordering::Relaxed);
        for _ in 0..100 {
            if live.cell.changed(&mut seen).is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(listed(b"two.example") && !listed(b"one.example"));
        assert_eq!(live.status().reloads, 1);

        std::fs::remove_file(&f).unwrap();
        let w = policy::WebAddressScan::default();
        assert!(!reload(&config, &w, &live.cell, &live.status));
        assert!(
            listed(b"two.example"),
            "a failed reload keeps the running set"
        );
        assert_eq!(live.status().reload_failures, 1);
        live.stop();

        let mut w = policy::WebAddressScan::default();
        w.url_lists.push(policy::UrlListRef {
            category: "custom".into(),
            path: d.path().join("gone.txt").display().to_string(),
        });
        let e = check_policy(&w);
        assert_eq!(e[0].path, "web_address_scan.url_lists[0]");
    }
}
