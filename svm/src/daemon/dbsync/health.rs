//! The health checks of a database set after its swap (its probation): what the workers'
//! published counters say, judged against what they said before the swap.
//!
//! The updater's thread takes a [`Sample`] of every worker's counters once a second (workers
//! publish them about once a second, [`dataplane::driver::PUBLISH_EVERY`]) into a [`History`]
//! of the last minutes. A swap starts a [`Probation`]: its baseline is the alert rate over the
//! history before the swap. Until the probation ends, each sample is judged over the last
//! [`WINDOW`]:
//!
//! - **alert rate**: alerts (rules, attack blocker, web address hits) per second above
//!   `alert_rate_factor` times the baseline and above `alert_rate_floor`;
//! - **forwarding**: a worker that forwarded frames before the swap received at least
//!   [`MIN_FRAMES`] in the window and forwarded none;
//! - **rule errors**: the rule engine's run-time errors ([`dataplane::rules::runtime`]) per
//!   second above `alert_rate_factor` times the rate before the swap and above
//!   [`RULE_ERRORS_FLOOR`].
//!
//! A worker thread that ends (an I/O error, a panic) and a daemon that dies during the
//! probation are reported by the daemon itself ([`super::DbSync::worker_ended`], the probation
//! file at start).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dataplane::driver::WorkerStatus;

/// The span a probation's rates are judged over.
pub const WINDOW: Duration = Duration::from_secs(5);
/// The shortest span judged: two publications of every worker.
const MIN_SPAN: Duration = Duration::from_secs(2);
/// Frames a worker must receive in the window before forwarding none of them counts.
pub const MIN_FRAMES: u64 = 100;
/// Rule engine run-time errors a second below which the rule errors check never fails.
pub const RULE_ERRORS_FLOOR: f64 = 10.0;
/// How long after a swap its lost frames are counted: two publications of every worker.
pub const LOSS_SPAN: Duration = Duration::from_secs(2);

/// One worker's counters at a sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerSample {
    /// Frames received.
    pub packets: u64,
    /// Frames forwarded (inline) or passed (mirror).
    pub forwarded: u64,
    /// Alerts: rules, attack blocker detections, web address hits.
    pub alerts: u64,
    /// Frames the kernel or device dropped before the worker saw them, and frames it could
    /// not transmit.
    pub lost: u64,
}

/// Every worker's counters at one time.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// Per worker, in worker order.
    pub workers: Vec<WorkerSample>,
    /// The rule engine's run-time errors (process-wide).
    pub rule_errors: u64,
}

impl Sample {
    /// The counters the workers published last.
    pub fn of(statuses: &[Arc<Mutex<WorkerStatus>>], at: Instant) -> Sample {
        let workers = statuses
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(PoisonError::into_inner);
                let c = &s.counters;
                WorkerSample {
                    packets: c.packets,
                    forwarded: c.forwarded,
                    alerts: c.rule_alerts + c.alerts() + c.web.hits.values().sum::<u64>(),
                    lost: s.ports.iter().map(|p| p.rx_dropped + p.tx_failed).sum(),
                }
            })
            .collect();
        Sample {
            at,
            workers,
            rule_errors: dataplane::rules::runtime::runtime_errors().total(),
        }
    }

    /// Alerts of every worker.
    pub fn alerts(&self) -> u64 {
        self.workers.iter().map(|w| w.alerts).sum()
    }

    /// Frames lost by every worker.
    pub fn lost(&self) -> u64 {
        self.workers.iter().map(|w| w.lost).sum()
    }
}

/// Alerts a second from `a` to `b` (0 over no time).
fn rate(a: &Sample, b: &Sample) -> f64 {
    per_sec(a, b, b.alerts().saturating_sub(a.alerts()))
}

/// Rule engine run-time errors a second from `a` to `b`.
fn error_rate(a: &Sample, b: &Sample) -> f64 {
    per_sec(a, b, b.rule_errors.saturating_sub(a.rule_errors))
}

fn per_sec(a: &Sample, b: &Sample, n: u64) -> f64 {
    let secs = b.at.saturating_duration_since(a.at).as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss)]
    let n = n as f64;
    n / secs
}

/// The samples of the last `keep`.
#[derive(Debug)]
pub struct History {
    samples: VecDeque<Sample>,
    keep: Duration,
}

impl History {
    /// Keeping `keep` of samples.
    pub fn new(keep: Duration) -> History {
        History {
            samples: VecDeque::new(),
            keep,
        }
    }

    /// Add a sample; older ones than `keep` before it leave (a sample whose worker count
    /// differs starts the history again).
    pub fn push(&mut self, s: Sample) {
        if self
            .samples
            .back()
            .is_some_and(|b| b.workers.len() != s.workers.len())
        {
            self.samples.clear();
        }
        while self
            .samples
            .front()
            .is_some_and(|f| s.at.saturating_duration_since(f.at) > self.keep)
        {
            self.samples.pop_front();
        }
        self.samples.push_back(s);
    }

    /// The newest sample.
    pub fn last(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// The alert rate over the whole history (0 with less than a second of it).
    pub fn rate(&self) -> f64 {
        self.over_all(rate)
    }

    /// The rule errors rate over the whole history.
    pub fn error_rate(&self) -> f64 {
        self.over_all(error_rate)
    }

    fn over_all(&self, f: fn(&Sample, &Sample) -> f64) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(a), Some(b))
                if b.at.saturating_duration_since(a.at) >= Duration::from_secs(1) =>
            {
                f(a, b)
            }
            _ => 0.0,
        }
    }

    /// The newest sample at least `span` before `at` and not before `since`.
    fn before(&self, at: Instant, span: Duration, since: Instant) -> Option<&Sample> {
        self.samples
            .iter()
            .rev()
            .find(|s| s.at >= since && at.saturating_duration_since(s.at) >= span)
    }
}

/// The bounds a probation judges by (`db.alert_rate_factor`, `db.alert_rate_floor`).
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Times the rate before the swap.
    pub factor: u64,
    /// Alerts a second.
    pub floor: u64,
}

/// Why a set failed its probation.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// The check: `alert_rate`, `forwarding`, `rule_errors`, `worker`, `worker_stalled`,
    /// `daemon`.
    pub check: &'static str,
    /// What it found, in a sentence.
    pub reason: String,
}

/// What a sample says of a set in probation.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Still watched.
    Watching,
    /// The probation ended without a failure.
    Passed,
    /// A check failed.
    Failed(Failure),
}

/// A set under watch after its swap.
#[derive(Debug)]
pub struct Probation {
    /// When it was swapped in.
    pub started: Instant,
    /// When its probation ends.
    pub until: Instant,
    /// Alerts a second before the swap.
    pub baseline: f64,
    /// Rule engine run-time errors a second before the swap.
    pub errors_baseline: f64,
    /// The sample at the swap (`None` before the workers ran).
    pub at_swap: Option<Sample>,
}

impl Probation {
    /// A probation from `started` for `secs`, judged against `history` before it.
    pub fn new(history: &History, started: Instant, secs: u64) -> Probation {
        Probation {
            started,
            until: started + Duration::from_secs(secs),
            baseline: history.rate(),
            errors_baseline: history.error_rate(),
            at_swap: history.last().cloned(),
        }
    }

    /// Judge the newest sample of `history`.
    pub fn judge(&self, history: &History, bounds: Bounds) -> Verdict {
        let Some(now) = history.last() else {
            return Verdict::Watching;
        };
        // The window: from the newest sample WINDOW back, or from the swap.
        let since = self
            .at_swap
            .as_ref()
            .map_or(self.started, |s| s.at.min(self.started));
        let then = history
            .before(now.at, WINDOW, since)
            .or(self.at_swap.as_ref())
            .filter(|t| {
                t.workers.len() == now.workers.len()
                    && now.at.saturating_duration_since(t.at) >= MIN_SPAN
            });
        if let Some(then) = then {
            let r = rate(then, now);
            #[allow(clippy::cast_precision_loss)]
            let bound = (bounds.factor as f64 * self.baseline).max(bounds.floor as f64);
            let span = now.at.saturating_duration_since(then.at).as_secs_f64();
            if r > bound {
                return Verdict::Failed(Failure {
                    check: "alert_rate",
                    reason: format!(
                        "{r:.1} alerts/s over {span:.0} s after the swap, above the bound of \
                         {bound:.1}/s ({}x the {:.1}/s before it, at least {}/s)",
                        bounds.factor, self.baseline, bounds.floor
                    ),
                });
            }
            let errors = error_rate(then, now);
            #[allow(clippy::cast_precision_loss)]
            let ebound = (bounds.factor as f64 * self.errors_baseline).max(RULE_ERRORS_FLOOR);
            if errors > ebound {
                return Verdict::Failed(Failure {
                    check: "rule_errors",
                    reason: format!(
                        "{errors:.1} rule engine run-time errors/s over {span:.0} s after the \
                         swap, above the bound of {ebound:.1}/s ({}x the {:.1}/s before it, at \
                         least {RULE_ERRORS_FLOOR}/s)",
                        bounds.factor, self.errors_baseline
                    ),
                });
            }
            let forwarded_before = |i: usize| {
                self.at_swap
                    .as_ref()
                    .and_then(|s| s.workers.get(i))
                    .is_some_and(|w| w.forwarded > 0)
            };
            for (i, (a, b)) in then.workers.iter().zip(&now.workers).enumerate() {
                let received = b.packets.saturating_sub(a.packets);
                if received >= MIN_FRAMES && b.forwarded == a.forwarded && forwarded_before(i) {
                    return Verdict::Failed(Failure {
                        check: "forwarding",
                        reason: format!(
                            "worker {i} forwarded none of the {received} frames it received \
                             over {span:.0} s after the swap"
                        ),
                    });
                }
            }
        }
        if now.at >= self.until {
            Verdict::Passed
        } else {
            Verdict::Watching
        }
    }
}

/// Frames lost across a swap: from the sample at the swap to the first one [`LOSS_SPAN`]
/// after it, once that exists.
pub fn lost_across(at_swap: &Sample, history: &History) -> Option<u64> {
    let now = history.last()?;
    if now.at.saturating_duration_since(at_swap.at) < LOSS_SPAN
        || now.workers.len() != at_swap.workers.len()
    {
        return None;
    }
    Some(now.lost().saturating_sub(at_swap.lost()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t0: Instant, secs: u64, w: &[(u64, u64, u64)]) -> Sample {
        Sample {
            at: t0 + Duration::from_secs(secs),
            workers: w
                .iter()
                .map(|&(packets, forwarded, alerts)| WorkerSample {
                    packets,
                    forwarded,
                    alerts,
                    lost: 0,
                })
                .collect(),
            rule_errors: 0,
        }
    }

    const BOUNDS: Bounds = Bounds {
        factor: 10,
        floor: 5,
    };

    #[test]
    fn an_alert_flood_fails_and_a_steady_rate_passes() {
        let t0 = Instant::now();
        let mut h = History::new(Duration::from_secs(60));
        // 2 alerts a second before the swap.
        for s in 0..=10 {
            h.push(sample(t0, s, &[(s * 100, s * 100, s * 2)]));
        }
        assert!((h.rate() - 2.0).abs() < 1e-9);
        let p = Probation::new(&h, t0 + Duration::from_secs(10), 6);
        assert!((p.baseline - 2.0).abs() < 1e-9);
        // The same rate after the swap: watched, then passed at the end.
        for s in 11..=15 {
            h.push(sample(t0, s, &[(s * 100, s * 100, s * 2)]));
            assert_eq!(p.judge(&h, BOUNDS), Verdict::Watching, "{s}");
        }
        h.push(sample(t0, 16, &[(1600, 1600, 32)]));
        assert_eq!(p.judge(&h, BOUNDS), Verdict::Passed);

        // 19 a second is under 10x of 2; 25 a second is over it.
        let p = Probation::new(&h, t0 + Duration::from_secs(16), 60);
        let mut alerts = 32;
        for s in 17..=22 {
            alerts += 19;
            h.push(sample(t0, s, &[(s * 100, s * 100, alerts)]));
            assert_eq!(p.judge(&h, BOUNDS), Verdict::Watching, "{s}");
        }
        for s in 23..=30 {
            alerts += 40;
            h.push(sample(t0, s, &[(s * 100, s * 100, alerts)]));
            if let Verdict::Failed(f) = p.judge(&h, BOUNDS) {
                assert_eq!(f.check, "alert_rate");
                assert!(f.reason.contains("bound of 20.0/s"), "{}", f.reason);
                return;
            }
        }
        panic!("the flood was not caught");
    }

    #[test]
    fn a_rise_of_rule_engine_errors_fails_and_a_steady_rate_passes() {
        let t0 = Instant::now();
        let at = |s: u64, errors: u64| Sample {
            rule_errors: errors,
            ..sample(t0, s, &[(s * 100, s * 100, 0)])
        };
        let mut h = History::new(Duration::from_secs(60));
        // 3 errors a second before the swap (under the floor of 10 either way).
        for s in 0..=10 {
            h.push(at(s, s * 3));
        }
        let p = Probation::new(&h, t0 + Duration::from_secs(10), 60);
        assert!((p.errors_baseline - 3.0).abs() < 1e-9);
        // 25 a second is under 10x of 3; 40 a second is over it.
        let mut errors = 30;
        for s in 11..=16 {
            errors += 25;
            h.push(at(s, errors));
            assert_eq!(p.judge(&h, BOUNDS), Verdict::Watching, "{s}");
        }
        for s in 17..=24 {
            errors += 60;
            h.push(at(s, errors));
            if let Verdict::Failed(f) = p.judge(&h, BOUNDS) {
                assert_eq!(f.check, "rule_errors");
                assert!(f.reason.contains("bound of 30.0/s"), "{}", f.reason);
                return;
            }
        }
        panic!("the rise was not caught");
    }

    #[test]
    fn the_floor_covers_a_quiet_network_and_one_sample_is_not_judged() {
        let t0 = Instant::now();
        let mut h = History::new(Duration::from_secs(60));
        h.push(sample(t0, 0, &[(0, 0, 0)]));
        let p = Probation::new(&h, t0, 30);
        assert_eq!(p.baseline, 0.0);
        // 1 s after the swap is too short to judge, even with 50 alerts.
        h.push(sample(t0, 1, &[(10, 10, 50)]));
        assert_eq!(p.judge(&h, BOUNDS), Verdict::Watching);
        // 4 alerts a second on a network that had none: under the floor of 5.
        h.push(sample(t0, 2, &[(20, 20, 8)]));
        assert_eq!(p.judge(&h, BOUNDS), Verdict::Watching);
        h.push(sample(t0, 3, &[(30, 30, 30)]));
        assert!(matches!(p.judge(&h, BOUNDS), Verdict::Failed(f) if f.check == "alert_rate"));
    }

    #[test]
    fn a_worker_that_stops_forwarding_fails_one_that_idles_does_not() {
        let t0 = Instant::now();
        let mut h = History::new(Duration::from_secs(60));
        h.push(sample(t0, 0, &[(1000, 1000, 0), (0, 0, 0)]));
        let p = Probation::new(&h, t0, 30);
        // Worker 0 idle, worker 1 drops all it gets but never forwarded before: no failure.
        h.push(sample(t0, 3, &[(1000, 1000, 0), (500, 0, 0)]));
        assert_eq!(p.judge(&h, BOUNDS), Verdict::Watching);
        // Worker 0 receives 99 and forwards none: under MIN_FRAMES.
        h.push(sample(t0, 4, &[(1099, 1000, 0), (600, 0, 0)]));
        assert_eq!(p.judge(&h, BOUNDS), Verdict::Watching);
        h.push(sample(t0, 5, &[(1200, 1000, 0), (700, 0, 0)]));
        match p.judge(&h, BOUNDS) {
            Verdict::Failed(f) => {
                assert_eq!(f.check, "forwarding");
                assert!(f.reason.starts_with("worker 0 forwarded none of the 200"));
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn lost_frames_are_counted_once_the_span_after_the_swap_is_seen() {
        let t0 = Instant::now();
        let mut h = History::new(Duration::from_secs(60));
        let mut s = sample(t0, 0, &[(0, 0, 0)]);
        s.workers[0].lost = 7;
        h.push(s.clone());
        assert_eq!(lost_across(&s, &h), None);
        let mut s1 = sample(t0, 1, &[(0, 0, 0)]);
        s1.workers[0].lost = 9;
        h.push(s1);
        assert_eq!(lost_across(&s, &h), None);
        let mut s2 = sample(t0, 2, &[(0, 0, 0)]);
        s2.workers[0].lost = 10;
        h.push(s2);
        assert_eq!(lost_across(&s, &h), Some(3));
    }

    #[test]
    fn the_history_keeps_its_span() {
        let t0 = Instant::now();
        let mut h = History::new(Duration::from_secs(10));
        for s in 0..30 {
            h.push(sample(t0, s, &[(0, 0, s)]));
        }
        assert_eq!(h.samples.len(), 11);
        assert!((h.rate() - 1.0).abs() < 1e-9);
        // Another worker count starts it again.
        h.push(sample(t0, 30, &[(0, 0, 0), (0, 0, 0)]));
        assert_eq!(h.samples.len(), 1);
    }
}
