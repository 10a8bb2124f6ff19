//! The CrowdSec-style decision stream: what it remembers of each block the keeper reported,
//! the log of changes bouncers poll, and the wait of an API call for its change.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use dataplane::blocks::{BlockKey, BlockOrigin};
use dataplane::time::Timestamp;
use serde::Serialize;

use super::{ControlState, lock, rfc3339};

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

/// How long a block or unblock through the API waits for the keeper's report of it (the event
/// pump is normally a few milliseconds behind; a stuck pump must not hang the API).
const REPORT_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
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
pub(super) struct Known {
    pub(super) id: u64,
    pub(super) origin: BlockOrigin,
    pub(super) reason: String,
    pub(super) created: Timestamp,
    pub(super) expires: Timestamp,
    /// Its "new" decision is in the stream. False only for a manual block `block` stored
    /// before the keeper made it.
    pub(super) streamed: bool,
}

impl Known {
    pub(super) fn is(&self, created: Timestamp, expires: Timestamp) -> bool {
        self.created == created && self.expires == expires
    }
}

/// The decision stream's state.
#[derive(Debug)]
pub(super) struct Decisions {
    pub(super) known: HashMap<BlockKey, Known>,
    /// (sequence, change, decision); sequence increases by one per entry.
    pub(super) log: VecDeque<(u64, Change, Decision)>,
    pub(super) next_seq: u64,
    pub(super) cursors: HashMap<String, u64>,
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

impl ControlState {
    pub(super) fn decision(&self, key: &BlockKey, e: &Known, now: Timestamp) -> Decision {
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

    pub(super) fn log_change(&self, b: &mut Decisions, change: Change, d: Decision) {
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
    pub(super) fn wait_reported(&self, done: impl Fn(&Decisions) -> bool) {
        let b = lock(&self.decisions);
        let _ = self
            .decided
            .wait_timeout_while(b, REPORT_WAIT, |b| !done(b))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }

    /// [`Control::decisions`](super::Control::decisions).
    pub(super) fn decision_stream(&self, bouncer: &str, startup: bool) -> DecisionStream {
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
}
