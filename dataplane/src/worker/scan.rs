//! The activity scanner's part of a packet's path: the rules on a tracked flow's packet (its
//! stream and app layer fed first) or on a packet without a flow, the alerts, and the response
//! of `drop`/`reject` matches.

use std::borrow::Cow;

use policy::{ExclusionRule, Mode, Policy};

use super::ip::flow_packet;
use super::report::RuleReport;
use super::{Attach, DropReason, Output, Pkt, Tracked, Verdict, Worker, iso_hook};
use crate::blocks::BlockKey;
use crate::decode::{self, L4};
use crate::event::{BlockSkip, Engine, PacketRef, Response, RuleVerdict};
use crate::rules::{RuleAction, RuleMatch};
use crate::scanner;
use crate::shared_blocks::BlockRequest;
use crate::stream::UrgentPolicy;

impl Worker {
    /// The rules on a packet without a flow (an IP fragment, an invalid packet): alerts, and a
    /// `drop`/`reject` match drops the packet inline or under `--simulate-ips`; no flow to
    /// terminate, no reset, no block.
    #[cold]
    #[inline(never)]
    pub(super) fn scan_flowless(
        &mut self,
        pkt: &Pkt<'_>,
        events: u64,
        out: &mut impl Output,
    ) -> Verdict {
        let (ip, scope, meta) = (pkt.ip, pkt.scope, pkt.meta);
        let Some(rules) = self.rules.as_deref() else {
            return Verdict::Forward;
        };
        if !self.policy.policy().activity_scanner.enabled || !self.engines.activity_scanner(true) {
            return Verdict::Forward;
        }
        self.matches.clear();
        scanner::inspect_packet(
            rules,
            &mut self.thresholds,
            ip,
            meta.ts,
            events,
            scope.ids(),
            &mut self.matches,
        );
        let Some((monitoring, wants_drop)) = keep_matches(self.policy.policy(), &mut self.matches)
        else {
            return Verdict::Forward;
        };
        let p = self.policy.policy();
        let response = match Response::from(p.activity_scanner.action) {
            _ if self.cfg.scanner.simulate_ips => Response::Terminate,
            Response::TerminateAndBlock => Response::Terminate,
            r => r,
        };
        let enforce = wants_drop && !monitoring && response != Response::Inform;
        let drop = enforce && (self.cfg.scanner.simulate_ips || self.cfg.attach == Attach::Inline);
        let report = RuleReport {
            packet: PacketRef {
                flow_id: None,
                scope,
                src_ip: ip.src(),
                dst_ip: ip.dst(),
                ports: ip.l4.ports(),
                proto: Some(ip.proto),
                to_server: None,
            },
            ts: meta.ts,
            pcap_cnt: Some(meta.pcap_cnt),
            drop_response: response,
            enforced: enforce,
            monitoring,
            excluded: false,
            block_minutes: None,
            block_skipped: (wants_drop
                && Response::from(p.activity_scanner.action) == Response::TerminateAndBlock
                && !self.cfg.scanner.simulate_ips)
                .then_some(BlockSkip::UnverifiedSource),
            app: None,
            verdict: rule_verdict(drop, &self.matches),
        };
        let matches = std::mem::take(&mut self.matches);
        for m in matches.iter().filter(|m| m.alert) {
            report.alert(m, &mut self.counters, out);
        }
        self.matches = matches;
        if drop {
            Verdict::Drop(DropReason::Rule)
        } else {
            Verdict::Forward
        }
    }

    /// The activity scanner's part of [`Worker::inspect_ip`]: feed the flow's stream and app
    /// layer, run the rules, report alerts and apply `drop`/`reject`.
    /// A midstream flow the app layer found running the other way round is reversed here, in
    /// the flow table too, and `flow` follows (the packet's direction is the other one).
    pub(super) fn scan_ip(
        &mut self,
        pkt: &Pkt<'_>,
        flow: &mut Tracked<'_>,
        events: u64,
        out: &mut impl Output,
    ) -> Verdict {
        let (ip, scope, meta) = (pkt.ip, pkt.scope, pkt.meta);
        let key = flow.key;
        // The rule set and the policy are borrowed field by field, not held by a reference count:
        // two atomic increments and decrements per packet were 3% of a replay.
        let Some(rules) = self.rules.as_deref() else {
            return Verdict::Forward;
        };
        let Some(f) = self.flows.get_mut(key) else {
            return Verdict::Forward;
        };
        // --simulate-ips: a flow whose drop applied to the whole flow (an IP-only or app-layer
        // rule, a stream match: `FlowRuleState::dropped`) has its later packets dropped without
        // inspection, as Suricata's FLOW_ACTION_DROP.
        if self.cfg.scanner.simulate_ips
            && self.policy.policy().mode != Mode::Monitoring
            && f.ext.scan.as_ref().is_some_and(|s| s.rules.dropped())
        {
            return Verdict::Drop(DropReason::Rule);
        }
        if urgent_drop(&self.cfg, ip, f.ext.scan.as_deref(), flow.upd.to_server) {
            return Verdict::Drop(DropReason::StreamUrgent);
        }
        self.matches.clear();
        // A TCP flow whose handshake this appliance saw complete: its source proved its address
        // (a forged one never sees the SYN/ACK), so a rule match can block it.
        let proven = f.handshake_seen();
        let facts = f.facts();
        let scan = f.ext.scan.get_or_insert_with(Box::default);
        let app = scanner::inspect(
            rules,
            &self.cfg.scanner,
            &self.memcap,
            &mut self.thresholds,
            ip,
            facts,
            scan,
            flow.upd.to_server,
            meta.ts,
            events,
            scope.ids(),
            &mut self.matches,
        );
        if scan.take_reversed() {
            f.reverse();
            flow.upd.to_server = !flow.upd.to_server;
        }
        let upd = flow.upd;
        let Some((monitoring, wants_drop)) = keep_matches(self.policy.policy(), &mut self.matches)
        else {
            return Verdict::Forward;
        };
        let p = self.policy.policy();
        let (response, skip) = self.rule_response(pkt, proven);
        let block_minutes =
            (response == Response::TerminateAndBlock).then_some(p.attack_blocker.block_minutes);
        let enforce = wants_drop && !monitoring && response != Response::Inform;
        let drop = enforce && (self.cfg.scanner.simulate_ips || self.cfg.attach == Attach::Inline);
        let report = RuleReport {
            packet: flow_packet(scope, ip, upd),
            ts: meta.ts,
            pcap_cnt: Some(meta.pcap_cnt),
            drop_response: response,
            enforced: enforce,
            monitoring,
            excluded: pkt.rule == ExclusionRule::DoNotBlock,
            block_minutes: block_minutes.map(|m| m.get()),
            block_skipped: skip,
            app: app.as_ref(),
            verdict: rule_verdict(drop, &self.matches),
        };
        let matches = std::mem::take(&mut self.matches);
        for m in matches.iter().filter(|m| m.alert) {
            report.alert(m, &mut self.counters, out);
            // Isolation: a rule alert on a flow whose source proved its address.
            if proven && self.iso.is_some() {
                let trigger = iso_hook::Trigger {
                    engine: Engine::ActivityScanner,
                    signature: Cow::Owned(m.msg.to_string()),
                    sid: m.sid,
                    classtype: m.classtype.clone(),
                    category: None,
                    priority: m.priority,
                    flow_id: Some(upd.id),
                    src: ip.src(),
                };
                self.isolate_on(&pkt.frame(), trigger, out);
            }
        }
        // The block names the first drop/reject match; the keeper reports it.
        let blocking = matches
            .iter()
            .find(|m| matches!(m.action, RuleAction::Drop | RuleAction::Reject));
        if let (true, Some(minutes), Some(m)) = (enforce, block_minutes, blocking) {
            let req = BlockRequest {
                key: BlockKey {
                    scope,
                    addr: ip.src(),
                },
                now: meta.ts,
                duration_secs: minutes.as_secs(),
                reason: Cow::Owned(m.msg.to_string()),
                engine: Engine::ActivityScanner,
                sid: Some(m.sid),
                flow_id: Some(upd.id),
                pcap_cnt: Some(meta.pcap_cnt),
            };
            self.block(req);
        }
        self.matches = matches;
        // Terminate resets both ends of a TCP connection, inline and on a mirror, as the attack
        // blocker does (not under --simulate-ips: Suricata's IPS mode drops the packet only).
        if enforce
            && !self.cfg.scanner.simulate_ips
            && let L4::Tcp(t) = &ip.l4
            && !t.flags.has(decode::TcpFlags::RST)
        {
            self.inject_resets(pkt.decoded, ip, t, out);
        }
        if drop {
            if !self.cfg.scanner.simulate_ips {
                self.flows.terminate(key);
            }
            return Verdict::Drop(DropReason::Rule);
        }
        Verdict::Forward
    }

    /// The response of a tracked packet's `drop`/`reject` matches, and why it does not block the
    /// source, if it does not. `--simulate-ips`: Suricata's IPS semantics, the packet is dropped
    /// and nothing else. Otherwise drop/reject rules take the policy's activity scanner action:
    /// terminate_and_block blocks the source of a `proven` flow only; any other match (UDP,
    /// ICMP, a TCP flow picked up midstream or not yet established) is terminated, and its
    /// alert says so. do_not_block: terminated, never blocked.
    fn rule_response(&self, pkt: &Pkt<'_>, proven: bool) -> (Response, Option<BlockSkip>) {
        let simulate_ips = self.cfg.scanner.simulate_ips;
        let do_not_block = pkt.rule == ExclusionRule::DoNotBlock;
        let configured = Response::from(self.policy.policy().activity_scanner.action);
        let skip = match configured {
            _ if simulate_ips || do_not_block => None,
            Response::TerminateAndBlock if self.policy.never_blocks(pkt.ip.src()) => {
                Some(BlockSkip::NeverBlock)
            }
            Response::TerminateAndBlock if !proven => Some(BlockSkip::UnverifiedSource),
            _ => None,
        };
        let response = match configured {
            _ if simulate_ips => Response::Terminate,
            Response::TerminateAndBlock if skip.is_some() || do_not_block => Response::Terminate,
            r => r,
        };
        (response, skip)
    }
}

/// Whether a tracked TCP packet is dropped for its urgent data before its stream sees it
/// (Suricata's `stream_urgent` drop): URG set, under `stream.reassembly.urgent.policy:
/// drop`, or `oob` once the direction took its out-of-band limit and the
/// `oob-limit-policy` is `drop`; only where a drop is real (inline, `--simulate-ips`). The
/// bytes never reach the stream: a hole the peer's ACK turns into a gap.
fn urgent_drop(
    wc: &crate::settings::WorkerConfig,
    ip: &decode::Ip<'_>,
    scan: Option<&scanner::FlowScan>,
    to_server: bool,
) -> bool {
    let cfg = &wc.scanner.stream;
    if cfg.urgent == UrgentPolicy::Inline {
        return false;
    }
    let L4::Tcp(t) = &ip.l4 else {
        return false;
    };
    if !t.flags.has(decode::TcpFlags::URG)
        || !(wc.scanner.simulate_ips || wc.attach == Attach::Inline)
    {
        return false;
    }
    match cfg.urgent {
        UrgentPolicy::Drop => true,
        UrgentPolicy::Oob => {
            cfg.urgent_oob_limit == UrgentPolicy::Drop
                && scan
                    .and_then(|s| s.stream.as_ref())
                    .is_some_and(|st| st.direction(to_server).urgent_oob_exhausted())
        }
        UrgentPolicy::Inline | UrgentPolicy::Gap => false,
    }
}

/// The policy's rule exclusions applied to a packet's `matches`: `None` when none is left, else
/// whether the policy is in monitoring mode and whether a match left asks for a drop.
fn keep_matches(p: &Policy, matches: &mut Vec<RuleMatch>) -> Option<(bool, bool)> {
    let excl = &p.activity_scanner.rule_exclusions;
    if !excl.is_empty() {
        matches.retain(|m| !rule_excluded(excl, m));
    }
    if matches.is_empty() {
        return None;
    }
    let wants_drop = matches
        .iter()
        .any(|m| matches!(m.action, RuleAction::Drop | RuleAction::Reject));
    Some((p.mode == Mode::Monitoring, wants_drop))
}

/// A packet's final action after all its rule matches, for EVE's `verdict`.
fn rule_verdict(drop: bool, matches: &[RuleMatch]) -> RuleVerdict {
    if drop {
        RuleVerdict::Drop
    } else if matches.iter().any(|m| m.action == RuleAction::Pass) {
        RuleVerdict::Pass
    } else {
        RuleVerdict::Alert
    }
}

/// Whether the policy's `rule_exclusions` (`gid:sid:rev`) name this match's rule.
pub(super) fn rule_excluded(excl: &[policy::RuleId], m: &RuleMatch) -> bool {
    excl.iter()
        .any(|e| e.gid == m.gid && e.sid == m.sid && e.rev == m.rev)
}
