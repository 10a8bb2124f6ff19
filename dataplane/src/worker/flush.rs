//! The end-of-flow inspection: with IDS timing, what the peers never acknowledged is parsed and
//! inspected when the flow leaves the table or the traffic ends, as Suricata's end-of-flow pseudo
//! packets are.

use policy::{Mode, Policy};

use super::report::RuleReport;
use super::scan::rule_excluded;
use super::{Counters, FlowEngines, Output, Worker};
use crate::decode;
use crate::event::{PacketRef, Response, RuleVerdict};
use crate::flow::{Flow, FlowExt, FlowKey, FlowTable};
use crate::rules::{RuleAction, RuleMatch, RuleSet, ThresholdState};
use crate::scanner::{self, ScannerConfig};
use crate::time::Timestamp;

impl Worker {
    /// End of the traffic (end of a capture, or the daemon stopping): in IDS mode, parse and
    /// inspect what the peers never acknowledged, once per direction of every TCP flow, as
    /// Suricata's end-of-flow pseudo packets do; their alerts carry no `pcap_cnt`. Nothing
    /// happens in inline mode. Flows that leave the table earlier (timed out, evicted) get the
    /// same inspection when they leave ([`Worker::flush_retired`]).
    #[cold]
    #[inline(never)]
    pub fn flush_streams(&mut self, now: Timestamp, out: &mut impl Output) {
        self.flush_retired(now, out);
        let Some((mut flusher, table)) = self.flusher() else {
            return;
        };
        // Flow id order: the output does not depend on the table's layout.
        let mut flows: Vec<(&FlowKey, &mut Flow<FlowEngines>)> = table
            .iter_mut()
            .filter(|(_, f)| FlowEngines::keep_on_leave(f))
            .collect();
        flows.sort_unstable_by_key(|(_, f)| f.id);
        for (key, flow) in flows {
            flusher.flush(key, flow, now, out);
        }
    }

    /// The end-of-flow inspection of the TCP flows that left the flow table (timed out,
    /// evicted, replaced) since the last call: with IDS timing their unacknowledged data
    /// would otherwise never be inspected.
    #[cold]
    #[inline(never)]
    pub fn flush_retired(&mut self, now: Timestamp, out: &mut impl Output) {
        let retired = self.flows.take_retired();
        let Some((mut flusher, _)) = self.flusher() else {
            return;
        };
        for (key, mut flow) in retired {
            flusher.flush(&key, &mut flow, now, out);
        }
    }

    /// What an end-of-flow inspection needs, borrowed apart from the flow table, if one applies
    /// (IDS timing, rules loaded, the activity scanner on).
    fn flusher(&mut self) -> Option<(Flusher<'_>, &mut FlowTable<FlowEngines>)> {
        let rules = self.rules.as_deref()?;
        let p = self.policy.policy();
        (self.cfg.scanner.mode == scanner::InspectionMode::Ids && p.activity_scanner.enabled).then(
            || {
                let flusher = Flusher {
                    rules,
                    cfg: &self.cfg.scanner,
                    p,
                    thresholds: &mut self.thresholds,
                    matches: &mut self.matches,
                    counters: &mut self.counters,
                };
                (flusher, &mut self.flows)
            },
        )
    }
}

/// The worker's parts an end-of-flow inspection uses ([`Worker::flush_streams`],
/// [`Worker::flush_retired`]), borrowed apart from its flow table.
struct Flusher<'a> {
    rules: &'a RuleSet,
    cfg: &'a ScannerConfig,
    p: &'a Policy,
    thresholds: &'a mut ThresholdState,
    matches: &'a mut Vec<RuleMatch>,
    counters: &'a mut Counters,
}

impl Flusher<'_> {
    /// Flush both directions of one flow through the rules and report the alerts.
    fn flush(
        &mut self,
        key: &FlowKey,
        flow: &mut Flow<FlowEngines>,
        now: Timestamp,
        out: &mut impl Output,
    ) {
        let Flusher {
            rules,
            cfg,
            p,
            thresholds,
            matches,
            counters,
        } = self;
        let (rules, cfg, p) = (*rules, *cfg, *p);
        let excl = &p.activity_scanner.rule_exclusions;
        let monitoring = p.mode == Mode::Monitoring;
        let (a, b) = key.endpoints();
        for to_server in [true, false] {
            let facts = flow.facts();
            let (client, server) = if flow.client_is_a { (a, b) } else { (b, a) };
            let Some(scan) = flow.ext.scan.as_deref_mut() else {
                return;
            };
            matches.clear();
            let app = scanner::flush(
                rules, cfg, thresholds, facts, scan, client, server, to_server, now, matches,
            );
            // The app layer found the flow running the other way round (a midstream flow whose
            // first bytes were a response): the flow follows, and so do the endpoints.
            let (client, server) = if scan.take_reversed() {
                flow.reverse();
                (server, client)
            } else {
                (client, server)
            };
            let passed = matches.iter().any(|m| m.action == RuleAction::Pass);
            matches.retain(|m| m.alert && !rule_excluded(excl, m));
            let (src, dst) = if to_server {
                (client, server)
            } else {
                (server, client)
            };
            // The traffic is gone: nothing is left to act on.
            let report = RuleReport {
                packet: PacketRef {
                    flow_id: Some(flow.id),
                    scope: key.scope(),
                    src_ip: src.0,
                    dst_ip: dst.0,
                    ports: Some((src.1, dst.1)),
                    proto: Some(decode::IpProto::Tcp),
                    to_server: Some(to_server),
                },
                ts: now,
                pcap_cnt: None,
                drop_response: Response::from(p.activity_scanner.action),
                enforced: false,
                monitoring,
                excluded: false,
                block_minutes: None,
                block_skipped: None,
                app: app.as_ref(),
                verdict: if passed {
                    RuleVerdict::Pass
                } else {
                    RuleVerdict::Alert
                },
            };
            for m in matches.iter() {
                report.alert(m, counters, out);
            }
        }
    }
}
