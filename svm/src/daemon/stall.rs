//! Hung workers: a worker thread that is alive but no longer runs its poll loop (stuck in a
//! system call, a lock, an endless loop) forwards nothing and ends nothing, so neither the
//! forwarding check nor the worker-ended hook sees it. Its poll loop publishes its status about
//! once a second, idle or not ([`dataplane::driver::WorkerStatus::heartbeats`]); a worker whose
//! count has not grown for [`STALL_AFTER`] is **stalled**: the control plane emits
//! `worker_stalled` (once per stall), `/healthz` says `degraded`, `svm_workers_stalled` counts
//! it, and a database set in probation is rolled back (check `worker_stalled`). A worker that
//! publishes again is reported `worker_resumed`.
//!
//! Fault injection, for tests: in debug builds only, `SVM_DEBUG_STALL_WORKERS_AFTER=SECS` in
//! the daemon's environment makes every AF_PACKET worker stop running its poll loop SECS
//! seconds after it started (it sleeps until the daemon stops). Release builds ignore it.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a worker may publish nothing before it counts as stalled: 10 publications missed.
pub const STALL_AFTER: Duration = Duration::from_secs(10);

/// The environment variable of the debug-only fault injection.
pub const DEBUG_STALL_ENV: &str = "SVM_DEBUG_STALL_WORKERS_AFTER";

/// A change the watch found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Worker `worker` has published nothing for `secs` seconds.
    Stalled { worker: usize, secs: u64 },
    /// Worker `worker`, stalled, published again.
    Resumed { worker: usize },
}

#[derive(Clone, Copy, Debug)]
struct Seen {
    beats: u64,
    since: Instant,
    stalled: bool,
}

/// The workers' heartbeat counts as last seen, and which are stalled.
#[derive(Debug)]
pub struct StallWatch {
    after: Duration,
    seen: Mutex<Vec<Seen>>,
}

impl StallWatch {
    /// A watch that calls a worker stalled after `after` without a heartbeat.
    pub fn new(after: Duration) -> StallWatch {
        StallWatch {
            after,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Look at the workers' heartbeat counts at `now` (call it about once a second); `None`:
    /// the worker's loop ended (stopped, or ended by itself, which the daemon reports), not
    /// watched.
    pub fn check(&self, beats: &[Option<u64>], now: Instant) -> Vec<Change> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() != beats.len() {
            *seen = beats
                .iter()
                .map(|&b| Seen {
                    beats: b.unwrap_or(0),
                    since: now,
                    stalled: false,
                })
                .collect();
            return Vec::new();
        }
        let mut changes = Vec::new();
        for (worker, (s, &b)) in seen.iter_mut().zip(beats).enumerate() {
            let Some(b) = b else {
                *s = Seen {
                    beats: s.beats,
                    since: now,
                    stalled: false,
                };
                continue;
            };
            if b != s.beats {
                if s.stalled {
                    changes.push(Change::Resumed { worker });
                }
                *s = Seen {
                    beats: b,
                    since: now,
                    stalled: false,
                };
            } else if !s.stalled && now.saturating_duration_since(s.since) >= self.after {
                s.stalled = true;
                changes.push(Change::Stalled {
                    worker,
                    secs: now.saturating_duration_since(s.since).as_secs(),
                });
            }
        }
        changes
    }

    /// The workers stalled now.
    pub fn stalled(&self) -> Vec<usize> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .enumerate()
            .filter(|(_, s)| s.stalled)
            .map(|(i, _)| i)
            .collect()
    }
}

/// The debug-only fault injection's delay ([`DEBUG_STALL_ENV`]); `None` in release builds.
pub fn debug_stall_after() -> Option<Duration> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let secs: u64 = std::env::var(DEBUG_STALL_ENV).ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_whose_heartbeat_stops_is_stalled_once_until_it_resumes() {
        let w = StallWatch::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(w.check(&[Some(0), Some(0)], at(0)), []);
        // Worker 0 beats every second; worker 1 never again after its first.
        for s in 1..10 {
            assert_eq!(w.check(&[Some(s), Some(1)], at(s)), [], "second {s}");
        }
        assert_eq!(
            w.check(&[Some(10), Some(1)], at(11)),
            [Change::Stalled {
                worker: 1,
                secs: 10
            }]
        );
        assert_eq!(w.stalled(), [1]);
        assert_eq!(w.check(&[Some(11), Some(1)], at(30)), [], "reported once");
        assert_eq!(
            w.check(&[Some(12), Some(2)], at(31)),
            [Change::Resumed { worker: 1 }]
        );
        assert!(w.stalled().is_empty());
        // An idle worker that keeps publishing is never stalled.
        let w = StallWatch::new(Duration::from_secs(10));
        for s in 0..100 {
            assert_eq!(w.check(&[Some(s)], at(s)), []);
        }
        // Just under the bound: not yet.
        let w = StallWatch::new(Duration::from_secs(10));
        w.check(&[Some(5)], at(0));
        assert_eq!(w.check(&[Some(5)], at(9)), []);
        assert_eq!(
            w.check(&[Some(5)], at(10)),
            [Change::Stalled {
                worker: 0,
                secs: 10
            }]
        );
        // A worker whose loop ended (a stop) is not stalled, however long it stays so.
        let w = StallWatch::new(Duration::from_secs(10));
        w.check(&[Some(5)], at(0));
        for s in 1..60 {
            assert_eq!(w.check(&[None], at(s)), []);
        }
        assert!(w.stalled().is_empty());
    }
}
