//! Status and `/metrics`: the control plane's counters and the families it serves (the
//! daemon adds the dataplane's through [`super::Hooks::metrics`]).

use std::sync::atomic::{AtomicU64, Ordering};

use dataplane::time::Timestamp;
use serde::Serialize;

use crate::events::Severity;

use super::{Control, ControlState};

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

/// Counters kept by the control plane.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) policy_applied: AtomicU64,
    pub(super) policy_rejected: AtomicU64,
    pub(super) blocks_added_detection: AtomicU64,
    pub(super) blocks_added_manual: AtomicU64,
    pub(super) unblocked_manual: AtomicU64,
    pub(super) unblocked_expired: AtomicU64,
    pub(super) unblocked_evicted: AtomicU64,
    pub(super) tag_requests: AtomicU64,
}

impl ControlState {
    /// [`Control::status`].
    pub(super) fn status_now(&self) -> Status {
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

    /// [`Control::metrics`].
    pub(super) fn metric_families(&self) -> Vec<Metric> {
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
}
