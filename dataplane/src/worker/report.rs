//! Rule alerts: the one builder of the activity scanner's alert events, for a packet's matches
//! and for a flushed flow's.

use std::borrow::Cow;

use super::{Counters, Output};
use crate::event::{
    Alert, BlockSkip, Engine, Event, EventKind, PacketRef, Response, RuleVerdict, Signature,
};
use crate::rules::{RuleAction, RuleMatch};
use crate::scanner;
use crate::time::Timestamp;

/// are reported.
pub(super) struct RuleReport<'a> {
    /// The packet the alerts name (for a flushed flow, its pseudo packet).
    pub(super) packet: PacketRef,
    /// Event time.
    pub(super) ts: Timestamp,
    /// The packet's number; `None` for a flushed flow.
    pub(super) pcap_cnt: Option<u64>,
    /// The response of `drop`/`reject` rules; the others inform.
    pub(super) drop_response: Response,
    /// Whether the response was carried out.
    pub(super) enforced: bool,
    /// Monitoring mode.
    pub(super) monitoring: bool,
    /// A `do_not_block` exclusion changed the response.
    pub(super) excluded: bool,
    /// The block a `terminate_and_block` response made, in minutes.
    pub(super) block_minutes: Option<u16>,
    /// Why a `drop`/`reject` rule did not block its source, if it did not.
    pub(super) block_skipped: Option<BlockSkip>,
    /// The flow's app-layer fields.
    pub(super) app: Option<&'a scanner::AppFields>,
    /// The packet's verdict after all its matches.
    pub(super) verdict: RuleVerdict,
}

impl RuleReport<'_> {
    /// Count and report one match: the one builder of rule alerts, for a packet's matches
    /// (`scan.rs`) and a flushed flow's (`flush.rs`).
    pub(super) fn alert(&self, m: &RuleMatch, counters: &mut Counters, out: &mut impl Output) {
        let acts = matches!(m.action, RuleAction::Drop | RuleAction::Reject);
        let response = if acts {
            self.drop_response
        } else {
            Response::Inform
        };
        let sig = Signature {
            name: Cow::Owned(m.msg.to_string()),
            gid: m.gid,
            sid: m.sid,
            rev: m.rev,
            category: Cow::Owned(m.category.as_deref().unwrap_or("").to_owned()),
            severity: m.priority,
        };
        counters.rule_alerts += 1;
        out.event(Event {
            ts: self.ts,
            pcap_cnt: self.pcap_cnt,
            kind: EventKind::Alert(Alert {
                response,
                enforced: self.enforced,
                monitoring: self.monitoring,
                excluded: self.excluded,
                block_minutes: self
                    .block_minutes
                    .filter(|_| response == Response::TerminateAndBlock),
                block_skipped: self.block_skipped.filter(|_| acts),
                app: self.app.cloned().map(Box::new),
                verdict: Some(self.verdict),
                ..Alert::new(self.packet, Engine::ActivityScanner, sig)
            }),
        });
    }
}
