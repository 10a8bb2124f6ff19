//! One dataplane worker: run to completion, per packet,
//! decode -> VLAN scope -> block check -> exclusion -> defragmentation -> flow -> attack blocker ->
//! verdict -> events.
//!
//! The worker owns its flow table, defragmenter and detector state. The compiled policy is an
//! `Arc` snapshot swapped between packets ([`Worker::set_policy`]). Blocks live in the one table
//! of [`crate::shared_blocks`]: the worker checks every frame against it and adds the sources it
//! detects; its keeper (a thread in the daemon, driven between frames in replay) expires them
//! and reports every change.

use std::sync::Arc;

use policy::{CompiledPolicy, ExclusionRule, Mode, Policy};
use vlan::VlanScope;

use crate::attack::{Attack, AttackBlocker, Detection, PacketFacts};
use crate::blocks::{BlockKey, BlockResult};
use crate::decode::{self, DecodeEvent, Decoded, Ip, L3, L4, tunnel};
use crate::defrag::{DefragAnomaly, Defragmenter};
use std::borrow::Cow;

use crate::event::{
    Alert, BlockSkip, Engine, Event, EventKind, PacketRef, Response, RuleVerdict, Signature,
};
use crate::flow::{Flow, FlowExt, FlowKey, FlowTable, FlowUpdate};
// The verdict, directions and output moved below the worker and the backends; re-exported so
// `worker::Verdict` and the like keep working.
pub use crate::output::{DropReason, Output, Toward, VecOutput, Verdict};
use crate::reset::{self, Segment};
use crate::rules::{RuleAction, RuleMatch, RuleSet, ThresholdState};
use crate::scanner::{self, ScannerConfig};
// The settings moved beside their builder; re-exported likewise.
pub use crate::settings::{Attach, WorkerConfig};
use crate::shared_blocks::{BlockClient, BlockRequest};
use crate::stream::StreamMemcap;
use crate::time::Timestamp;

use crate::isolation::{IsolationClient, hook as iso_hook};
use crate::protection::{Engines, TooDeepReports, VmProtections};
// The engines' per-flow state, beside each flow of the table.
mod flow_ext;
// Web address scan: the hook's body, actions and events (issue 17).
mod web;

pub use flow_ext::{EnginePeek, FlowEngines};

/// IP protocol numbers of the tunnels whose inner packet is inspected: IPv4 (IP-in-IP) and
/// IPv6 encapsulation.
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;

/// Signature ids of the decoder's reports of frames nested too deep (gid 1, beside the attack
/// blocker's 9100001..).
pub const TOO_DEEP_VLAN_SID: u32 = 9_100_101;
/// See [`TOO_DEEP_VLAN_SID`]: more than 8 IPv6 extension headers.
pub const TOO_DEEP_IPV6_SID: u32 = 9_100_102;

/// The frame's VLAN scope. Untagged and single-tagged frames build it from the tag id directly;
/// [`vlan::VlanStack::scope`] fills an array on the stack and reloads it whole, a
/// store-forwarding stall on every packet. Same value either way.
#[inline]
fn scope_of(vlan: &vlan::VlanStack) -> VlanScope {
    match vlan.tags() {
        [] => VlanScope::UNTAGGED,
        [tag] => vlan::VlanId::new(tag.vid()).map_or_else(|_| vlan.scope(), VlanScope::single),
        _ => vlan.scope(),
    }
}

/// Per-packet metadata from the I/O backend.
#[derive(Clone, Copy, Debug)]
pub struct PacketMeta {
    /// Receive time (capture time in replay).
    pub ts: Timestamp,
    /// 1-based packet number (replay) or receive counter (live).
    pub pcap_cnt: u64,
}

/// Worker counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames received.
    pub packets: u64,
    /// Bytes received (frame lengths).
    pub bytes: u64,
    /// Frames forwarded (inline) / passed (mirror).
    pub forwarded: u64,
    /// Frames dropped because the source is blocked.
    pub dropped_blocked: u64,
    /// Frames dropped because their flow was terminated.
    pub dropped_terminated: u64,
    /// Frames dropped as attack packets.
    pub dropped_attack: u64,
    /// Frames dropped by `drop`/`reject` signature rules.
    pub dropped_rule: u64,
    /// Activity scanner alerts raised.
    pub rule_alerts: u64,
    /// Frames that could not be decoded (forwarded uninspected; those nested too deep as
    /// `decode.too_deep` says, also counted in `too_deep`).
    pub invalid: u64,
    /// Per decoder event ([`DecodeEvent::ALL`] order): failures and anomalies.
    pub decoder: DecoderCounters,
    /// Frames skipped because of a bad checksum (with checksum validation on).
    pub bad_checksum: u64,
    /// Packets not inspected because of a `do_not_scan` exclusion.
    pub excluded: u64,
    /// IP fragments seen.
    pub fragments: u64,
    /// Datagrams reassembled.
    pub reassembled: u64,
    /// Alerts raised, per attack ([`Attack::ALL`] order).
    pub detections: [u64; Attack::ALL.len()],
    /// Blocks made.
    pub blocks_added: u64,
    /// Blocks that could not be made because the keeper was too far behind (its own refusals
    /// and evictions are the keeper's counts).
    pub blocks_refused: u64,
    /// Frames injected (resets).
    pub injected: u64,
    /// Non-IP, non-ARP frames (forwarded uninspected).
    pub other_l3: u64,
    /// Tunnelled packets opened (GRE, ERSPAN, VXLAN, Geneve, Teredo, NSH, MPLS, PPPoE; IP-in-IP
    /// is not counted here).
    pub decapsulated: u64,
    /// Frames of isolated VMs dropped (inline) or answered with resets (mirror).
    pub dropped_isolated: u64,
    /// TCP flows of isolated VMs reset.
    pub isolation_resets: u64,
    /// Automatic isolations this worker started.
    pub isolations: u64,
    /// Monitoring mode: detections that would have isolated a VM.
    pub would_isolate: u64,
    /// Web address scan (see [`WebCounters`]).
    pub web: WebCounters,
    /// Frames no engine inspects because of the policy's `protection` (a VM with every engine
    /// off, or no listed VM under `only_listed_vms`), forwarded uninspected.
    pub unprotected: u64,
    /// Frames nested too deep to inspect (9 or more VLAN tags, more than 8 IPv6 extension
    /// headers), whatever `decode.too_deep` did with them.
    pub too_deep: u64,
    /// Of those, frames dropped (`decode.too_deep: drop`, inline).
    pub dropped_too_deep: u64,
}

/// One counter per decoder event, in [`DecodeEvent::ALL`] order (an array, read through
/// `Deref`; a type of its own because arrays longer than 32 have no `Default`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecoderCounters(pub [u64; DecodeEvent::ALL.len()]);

impl Default for DecoderCounters {
    fn default() -> Self {
        DecoderCounters([0; DecodeEvent::ALL.len()])
    }
}

impl core::ops::Deref for DecoderCounters {
    type Target = [u64; DecodeEvent::ALL.len()];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl core::ops::DerefMut for DecoderCounters {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Web address scan counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebCounters {
    /// Addresses looked up (HTTP requests, TLS server names, DNS query names).
    pub lookups: u64,
    /// Listed addresses, by the list's category.
    pub hits: std::collections::BTreeMap<String, u64>,
    /// Lookups a trusted address answered.
    pub trusted: u64,
    /// Frames dropped by the web address scan (requests, ClientHellos, queries, QUIC Initials).
    pub dropped: u64,
    /// QUIC v1 Initials dropped under `quic: block`.
    pub quic_blocked: u64,
    /// Flows whose first bytes could not be read (malformed, a gap, over the collection cap).
    pub unread: u64,
    /// `use-application-dns.net` queries answered NXDOMAIN.
    pub doh_canary: u64,
}

impl Counters {
    /// Alerts raised in total.
    pub fn alerts(&self) -> u64 {
        self.detections.iter().sum()
    }

    /// Frames dropped in total.
    pub fn dropped(&self) -> u64 {
        self.dropped_blocked
            + self.dropped_terminated
            + self.dropped_attack
            + self.dropped_rule
            + self.dropped_isolated
            + self.web.dropped
            + self.dropped_too_deep
    }
}

/// One dataplane worker.
#[derive(Debug)]
pub struct Worker {
    cfg: WorkerConfig,
    policy: Arc<CompiledPolicy>,
    flows: FlowTable<FlowEngines>,
    defrag: Defragmenter,
    attacks: AttackBlocker,
    blocks: BlockClient,
    counters: Counters,
    detections: Vec<Detection>,
    // Activity scanner: the rule set, per-worker thresholds and stream memory.
    rules: Option<Arc<RuleSet>>,
    thresholds: ThresholdState,
    memcap: StreamMemcap,
    matches: Vec<RuleMatch>,
    // Isolation of protected VMs (`None` without an inventory: one branch per frame).
    iso: Option<Box<IsolationClient>>,
    // Web address scan: the loaded lists (none: the scan is off).
    web: Option<Arc<webaddr::AddressSet>>,
    // Per-VM protection (protection.rs): the policy's settings over the inventory (`None` while
    // the section is the default), the engines of the frame in hand, and the too-deep reports.
    vm_protection: Option<Box<VmProtections>>,
    engines: Engines,
    too_deep: TooDeepReports,
    // Recent web address verdicts of that set (worker/web.rs).
    web_cache: webaddr::LookupCache,
}

impl Worker {
    /// A worker with empty state, checking and adding blocks through `blocks` (one client of the
    /// table every worker of the dataplane shares).
    pub fn new(cfg: WorkerConfig, policy: Arc<CompiledPolicy>, blocks: BlockClient) -> Self {
        Worker {
            cfg,
            policy,
            flows: FlowTable::new(cfg.flows, cfg.index),
            defrag: Defragmenter::new(cfg.defrag),
            attacks: AttackBlocker::new(cfg.attack_caps),
            blocks,
            counters: Counters::default(),
            detections: Vec::with_capacity(4),
            rules: None,
            thresholds: ThresholdState::new(),
            memcap: StreamMemcap::new(cfg.scanner.memcap.0),
            matches: Vec::new(),
            iso: None,
            web: None,
            vm_protection: None,
            engines: Engines::ALL,
            too_deep: TooDeepReports::default(),
            web_cache: webaddr::LookupCache::default(),
        }
    }

    /// Take part in isolating protected VMs through `client` (one client of the isolation table
    /// every worker shares, [`crate::isolation::SharedIsolation`]).
    pub fn set_isolation(&mut self, client: IsolationClient) {
        self.iso = Some(Box::new(client));
        self.resolve_protection();
    }

    /// This worker's client of the isolation table, if it has one.
    pub fn isolation(&self) -> Option<&IsolationClient> {
        self.iso.as_deref()
    }

    /// This worker's client of the block table.
    pub fn blocks(&self) -> &BlockClient {
        &self.blocks
    }

    /// Switch to a new compiled policy; takes effect with the next packet.
    pub fn set_policy(&mut self, policy: Arc<CompiledPolicy>) {
        self.policy = policy;
        self.resolve_protection();
    }

    /// The policy's per-VM settings over the inventory (the isolation client's protected VMs;
    /// none without an inventory), built again on every policy or inventory change.
    #[cold]
    fn resolve_protection(&mut self) {
        let protected = self.iso.as_deref().map(IsolationClient::protected);
        self.vm_protection = VmProtections::new(protected, self.policy.policy()).map(Box::new);
        self.engines = Engines::ALL;
    }

    /// Load (or unload) the activity scanner's rule set; takes effect with the next packet.
    /// Flows keep their inspection state.
    pub fn set_rules(&mut self, rules: Option<Arc<RuleSet>>) {
        self.rules = rules;
        // IDS timing leaves data uninspected until the peer acknowledges it: flows leaving the
        // table are kept for their end-of-flow inspection.
        self.flows.set_retire(
            self.rules.is_some() && self.cfg.scanner.mode == scanner::InspectionMode::Ids,
        );
    }

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

    /// The loaded rule set.
    pub fn rules(&self) -> Option<&Arc<RuleSet>> {
        self.rules.as_ref()
    }

    /// The running policy.
    pub fn policy(&self) -> &CompiledPolicy {
        &self.policy
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Flow table (for status).
    pub fn flows(&self) -> &FlowTable<FlowEngines> {
        &self.flows
    }

    /// Defragmenter (for status).
    pub fn defrag(&self) -> &Defragmenter {
        &self.defrag
    }

    /// Attack blocker (for status).
    pub fn attack_blocker(&self) -> &AttackBlocker {
        &self.attacks
    }

    /// Process one frame.
    pub fn process(&mut self, frame: &[u8], meta: PacketMeta, out: &mut impl Output) -> Verdict {
        self.counters.packets += 1;
        self.counters.bytes += frame.len() as u64;
        let verdict = self.process_inner(frame, meta, out);
        if self.flows.has_retired() {
            self.flush_retired(meta.ts, out);
        }
        match verdict {
            Verdict::Forward => self.counters.forwarded += 1,
            Verdict::Drop(DropReason::Blocked) => self.counters.dropped_blocked += 1,
            Verdict::Drop(DropReason::Terminated) => self.counters.dropped_terminated += 1,
            Verdict::Drop(DropReason::Attack) => self.counters.dropped_attack += 1,
            Verdict::Drop(DropReason::Rule) => self.counters.dropped_rule += 1,
            Verdict::Drop(DropReason::Isolated) => self.counters.dropped_isolated += 1,
            Verdict::Drop(DropReason::WebAddress) => self.counters.web.dropped += 1,
            Verdict::Drop(DropReason::TooDeep) => self.counters.dropped_too_deep += 1,
        }
        verdict
    }

    /// Process the first frames of a receive burst, in order, each as [`Worker::process`] would;
    /// the first gets `meta.pcap_cnt`, the next ones the numbers after it. Pushes one verdict per
    /// frame processed onto `verdicts` and returns how many were processed: all of them, or fewer
    /// when a frame caused an injection, which the caller transmits before the frames after it
    /// (see [`crate::io::FrameHandler::on_burst`]).
    pub fn process_burst(
        &mut self,
        frames: &[&[u8]],
        meta: PacketMeta,
        out: &mut impl Output,
        verdicts: &mut Vec<Verdict>,
    ) -> usize {
        let injected = self.counters.injected;
        for (done, (pcap_cnt, frame)) in (meta.pcap_cnt..).zip(frames).enumerate() {
            let m = PacketMeta {
                ts: meta.ts,
                pcap_cnt,
            };
            verdicts.push(self.process(frame, m, out));
            if self.counters.injected != injected {
                return done + 1;
            }
        }
        frames.len()
    }

    #[inline]
    fn process_inner(&mut self, frame: &[u8], meta: PacketMeta, out: &mut impl Output) -> Verdict {
        // The common frame (IPv4/TCP, at most one 802.1Q tag) on its own path; anything else,
        // out of line, through the general decoder. Same decoded frame either way.
        match decode::decode_frame_fast(frame, self.cfg.decode) {
            Some(decoded) => self.process_decoded(frame, &decoded, meta, out),
            None => self.process_general(frame, meta, out),
        }
    }

    /// [`Worker::process_inner`] through the general decoder.
    #[inline(never)]
    fn process_general(
        &mut self,
        frame: &[u8],
        meta: PacketMeta,
        out: &mut impl Output,
    ) -> Verdict {
        let decoded = match decode::decode_frame(frame, self.cfg.decode) {
            Ok(d) => d,
            Err(e) => {
                self.counters.invalid += 1;
                self.count_decoder(e);
                if matches!(
                    e,
                    DecodeEvent::VlanTooDeep | DecodeEvent::Ipv6ExtChainTooLong
                ) {
                    return self.too_deep_frame(frame, e, meta, out);
                }
                return self.invalid_frame(frame, meta, out);
            }
        };
        self.process_decoded(frame, &decoded, meta, out)
    }

    /// A decoded frame: anomalies, VLAN scope, then the network layer.
    #[inline(always)]
    fn process_decoded(
        &mut self,
        frame: &[u8],
        decoded: &Decoded<'_>,
        meta: PacketMeta,
        out: &mut impl Output,
    ) -> Verdict {
        if !decoded.anomalies.is_empty() && self.count_anomalies(&decoded.anomalies) {
            // A bad checksum: the receiving stack discards it too, nothing to detect.
            self.counters.bad_checksum += 1;
            return Verdict::Forward;
        }
        let scope = scope_of(&decoded.vlan);
        // Isolation: a frame of an isolated VM goes no further unless an exclusion lets it.
        if let Some(iso) = self.iso.as_deref_mut()
            && iso_hook::check_frame(
                iso,
                decoded,
                scope,
                meta,
                self.policy.policy(),
                self.cfg.attach,
                &mut self.flows,
                &mut self.counters,
                out,
            ) == iso_hook::Check::Drop
        {
            return Verdict::Drop(DropReason::Isolated);
        }
        match &decoded.l3 {
            L3::Other => self.process_l2_tunnel(frame, decoded, meta, out),
            L3::Arp(arp) => self.process_arp(decoded, arp, scope, meta, out),
            L3::Ip(ip) => self.process_ip(decoded, ip, scope, meta, out),
        }
    }

    /// A frame that does not decode past its IP header (a truncated extension header chain, a
    /// transport header too short or malformed): counted by the caller and forwarded, and its
    /// IP packet inspected by the rules without a flow, with the failure as its decoder event,
    /// as Suricata inspects invalid packets (`decode-event` rules). A `drop` rule drops it
    /// inline; nothing is blocked (its source proved nothing).
    #[cold]
    #[inline(never)]
    fn invalid_frame(&mut self, frame: &[u8], meta: PacketMeta, out: &mut impl Output) -> Verdict {
        if self.rules.is_none() || !self.policy.policy().activity_scanner.enabled {
            return Verdict::Forward;
        }
        let Ok(decoded) = decode::decode_frame_lenient(frame, self.cfg.decode) else {
            return Verdict::Forward;
        };
        let L3::Ip(ip) = &decoded.l3 else {
            return Verdict::Forward;
        };
        let scope = scope_of(&decoded.vlan);
        if self.exclusion(scope, ip.src()) == ExclusionRule::DoNotScan
            || (self.vm_protection.is_some() && !self.protect(&decoded, scope, ip.src(), ip.dst()))
        {
            return Verdict::Forward;
        }
        let events = decoded.anomalies.bits();
        self.scan_flowless(ip, scope, meta, events, out)
    }

    /// The rules on a packet without a flow (an IP fragment, an invalid packet): alerts, and a
    /// `drop`/`reject` match drops the packet inline or under `--simulate-ips`; no flow to
    /// terminate, no reset, no block.
    #[cold]
    #[inline(never)]
    fn scan_flowless(
        &mut self,
        ip: &Ip<'_>,
        scope: VlanScope,
        meta: PacketMeta,
        events: u64,
        out: &mut impl Output,
    ) -> Verdict {
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
        let p = self.policy.policy();
        let Some((monitoring, wants_drop)) = keep_matches(p, &mut self.matches) else {
            return Verdict::Forward;
        };
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

    /// Count a frame's decoder anomalies; true if one of them is a bad checksum.
    #[cold]
    fn count_anomalies(&mut self, anomalies: &decode::Anomalies) -> bool {
        let mut bad_checksum = false;
        for a in anomalies.iter() {
            self.count_decoder(a);
            bad_checksum |= matches!(
                a,
                DecodeEvent::Ipv4BadChecksum
                    | DecodeEvent::TcpBadChecksum
                    | DecodeEvent::UdpBadChecksum
                    | DecodeEvent::IcmpBadChecksum
            );
        }
        bad_checksum
    }

    /// A frame nested too deep to inspect (`e`: 9 or more VLAN tags, or more than 8 IPv6
    /// extension headers): dropped inline under `decode.too_deep: drop` (monitoring mode drops
    /// nothing, a mirror cannot), forwarded otherwise; counted, and reported as a decoder alert
    /// at most once per source MAC per [`crate::protection::TOO_DEEP_REPORT_SECS`].
    #[cold]
    #[inline(never)]
    fn too_deep_frame(
        &mut self,
        frame: &[u8],
        e: DecodeEvent,
        meta: PacketMeta,
        out: &mut impl Output,
    ) -> Verdict {
        self.counters.too_deep += 1;
        let p = self.policy.policy();
        let monitoring = p.mode == Mode::Monitoring;
        let wants_drop =
            p.decode.too_deep == policy::TooDeep::Drop && self.cfg.attach == Attach::Inline;
        let drop = wants_drop && !monitoring;
        let eth_src: [u8; 6] = frame
            .get(6..12)
            .and_then(|m| m.try_into().ok())
            .unwrap_or_default();
        if self.too_deep.due(eth_src, meta.ts) {
            let (vlan, addrs) = decode::too_deep_view(frame);
            let unspecified = core::net::IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED);
            let (src_ip, dst_ip) = addrs.unwrap_or((unspecified, unspecified));
            let (signature, sid) = match e {
                DecodeEvent::VlanTooDeep => ("Decode.VlanTooDeep", TOO_DEEP_VLAN_SID),
                _ => ("Decode.Ipv6ExtChainTooLong", TOO_DEEP_IPV6_SID),
            };
            let packet = PacketRef {
                flow_id: None,
                scope: scope_of(&vlan),
                src_ip,
                dst_ip,
                ports: None,
                proto: None,
                to_server: None,
            };
            let sig = Signature {
                name: Cow::Borrowed(signature),
                gid: crate::attack::GID,
                sid,
                rev: 1,
                category: Cow::Borrowed("Generic Protocol Command Decode"),
                severity: 3,
            };
            out.event(Event {
                ts: meta.ts,
                pcap_cnt: Some(meta.pcap_cnt),
                kind: EventKind::Alert(Alert {
                    response: if wants_drop {
                        Response::Terminate
                    } else {
                        Response::Inform
                    },
                    enforced: drop,
                    monitoring,
                    ..Alert::new(packet, Engine::Decoder, sig)
                }),
            });
        }
        if drop {
            Verdict::Drop(DropReason::TooDeep)
        } else {
            Verdict::Forward
        }
    }

    /// Per-VM protection of one frame: set the engines its two ends call for; false (and
    /// counted) when none does. Out of line: inlined into the packet path it made the compiler
    /// call `FlowKey::from_bits` instead of inlining it (callgrind: 48.7 instructions a frame
    /// more than main without any per-VM setting).
    #[cold]
    #[inline(never)]
    fn protect(
        &mut self,
        decoded: &Decoded<'_>,
        scope: VlanScope,
        src: core::net::IpAddr,
        dst: core::net::IpAddr,
    ) -> bool {
        if let Some(p) = self.vm_protection.as_deref() {
            self.engines = p.resolve(
                self.iso.as_deref().map(IsolationClient::protected),
                scope,
                decoded.eth_src,
                decoded.eth_dst,
                Some(src),
                Some(dst),
            );
        }
        if self.engines.is_none() {
            self.counters.unprotected += 1;
            return false;
        }
        true
    }

    fn count_decoder(&mut self, e: DecodeEvent) {
        if let Some(c) = self.counters.decoder.get_mut(e.index()) {
            *c += 1;
        }
    }

    /// The exclusion rule of a source (inlined: with no exclusion in the policy, the address is
    /// never built).
    #[inline]
    fn exclusion(&self, scope: VlanScope, src: core::net::IpAddr) -> ExclusionRule {
        if self.policy.has_exclusions() {
            self.policy.exclusion(scope, src)
        } else {
            ExclusionRule::Default
        }
    }

    fn process_arp(
        &mut self,
        decoded: &Decoded<'_>,
        arp: &decode::Arp,
        scope: VlanScope,
        meta: PacketMeta,
        out: &mut impl Output,
    ) -> Verdict {
        let sender = core::net::IpAddr::V4(arp.sender_ip);
        let rule = self.exclusion(scope, sender);
        if rule == ExclusionRule::DoNotScan {
            self.counters.excluded += 1;
            return Verdict::Forward;
        }
        if self.vm_protection.is_some()
            && !self.protect(decoded, scope, sender, core::net::IpAddr::V4(arp.target_ip))
        {
            return Verdict::Forward;
        }
        let policy = Arc::clone(&self.policy);
        let ab = &policy.policy().attack_blocker;
        if !ab.enabled || !self.engines.attack_blocker() {
            return Verdict::Forward;
        }
        self.detections.clear();
        let found = &mut self.detections;
        self.attacks
            .inspect_arp(&ab.detectors, meta.ts, scope, arp, &mut |d| found.push(d));
        // ARP detections name the claimed addresses, not the frame's (it has none).
        let packet_of = |d: &Detection| PacketRef {
            flow_id: None,
            scope,
            src_ip: d.src,
            dst_ip: d.dst,
            ports: None,
            proto: None,
            to_server: None,
        };
        let excluded_block = rule == ExclusionRule::DoNotBlock;
        self.act_on_detections(packet_of, meta, excluded_block, None, decoded, out)
    }

    /// Inlined into both decoding paths: called from two places it was left out of line, and
    /// the call (the decoded frame re-read through memory) cost more than the copy.
    #[inline(always)]
    fn process_ip(
        &mut self,
        decoded: &Decoded<'_>,
        ip: &Ip<'_>,
        scope: VlanScope,
        meta: PacketMeta,
        out: &mut impl Output,
    ) -> Verdict {
        let now = meta.ts;
        if self.flows.flooded() {
            self.prefetch_flood(ip, scope);
        }
        // Monitoring drops nothing: a source blocked before the switch, or by hand, is inspected
        // and reported as any other.
        if self.policy.policy().mode != Mode::Monitoring
            && self.blocks.check_and_hit(scope, ip.src(), now)
        {
            // Mirror mode cannot drop: answer every TCP segment of the blocked source.
            if self.cfg.attach == Attach::Mirror
                && let L4::Tcp(t) = &ip.l4
                && !t.flags.has(decode::TcpFlags::RST)
            {
                self.inject_resets(decoded, ip, t, out);
            }
            return Verdict::Drop(DropReason::Blocked);
        }
        let rule = self.exclusion(scope, ip.src());
        if rule == ExclusionRule::DoNotScan {
            self.counters.excluded += 1;
            return Verdict::Forward;
        }
        // Per-VM protection (protection.rs): which engines inspect this frame.
        if self.vm_protection.is_some() && !self.protect(decoded, scope, ip.src(), ip.dst()) {
            return Verdict::Forward;
        }
        if let Some(frag) = &ip.fragment {
            // Fragments are rare: the policy is held by a reference count for the detections.
            let policy = Arc::clone(&self.policy);
            let ab = &policy.policy().attack_blocker;
            self.counters.fragments += 1;
            let res = self.defrag.insert(now, scope, ip, frag);
            let mut verdict = Verdict::Forward;
            if let Some(anomaly) = res.anomaly {
                let attack = match anomaly {
                    DefragAnomaly::Overlap => Some(Attack::Teardrop),
                    DefragAnomaly::Oversize => Some(Attack::PingOfDeath),
                    _ => None,
                };
                if let (Some(attack), true) = (attack, ab.enabled && self.engines.attack_blocker())
                {
                    self.detections.clear();
                    let found = &mut self.detections;
                    self.attacks.inspect_reassembly(
                        &ab.detectors,
                        now,
                        scope,
                        ip.src(),
                        ip.dst(),
                        attack,
                        &mut |d| found.push(d),
                    );
                    let packet = PacketRef {
                        flow_id: None,
                        scope,
                        src_ip: ip.src(),
                        dst_ip: ip.dst(),
                        ports: None,
                        proto: Some(ip.proto),
                        to_server: None,
                    };
                    let excluded_block = rule == ExclusionRule::DoNotBlock;
                    let v = self.act_on_detections(
                        |_| packet,
                        meta,
                        excluded_block,
                        None,
                        decoded,
                        out,
                    );
                    if v != Verdict::Forward {
                        verdict = v;
                    }
                }
            }
            if let Some(e) = res.event {
                self.count_decoder(e);
            }
            // The fragment is a packet of its own for the rules (Suricata inspects it before
            // the datagram it completes), with its decoder events.
            if self.rules.is_some() && rule != ExclusionRule::DoNotScan {
                let events = decoded.anomalies.bits() | res.event.map_or(0, DecodeEvent::bit);
                let v = self.scan_flowless(ip, scope, meta, events, out);
                if v != Verdict::Forward {
                    verdict = v;
                }
            }
            if let Some(datagram) = res.datagram {
                self.counters.reassembled += 1;
                match decode::decode_ip(&datagram, self.cfg.decode) {
                    Ok((whole, anomalies)) => {
                        for a in anomalies.iter() {
                            self.count_decoder(a);
                        }
                        let events = anomalies.bits();
                        let v = self.inspect_ip(decoded, &whole, scope, meta, rule, events, out);
                        if v != Verdict::Forward {
                            verdict = v;
                        }
                    }
                    Err(e) => {
                        self.counters.invalid += 1;
                        self.count_decoder(e);
                    }
                }
            }
            return verdict;
        }
        let events = if decoded.anomalies.is_empty() {
            0
        } else {
            decoded.anomalies.bits()
        };
        self.inspect_ip(decoded, ip, scope, meta, rule, events, out)
    }

    /// Flow tracking and detection of a whole (unfragmented or reassembled) IP packet, then of
    /// the packet it tunnels, if any.
    /// `events`: the packet's decoder events ([`DecodeEvent::bit`]s); a GRE header that does
    /// not decode adds its own, as Suricata's GRE decoder marks the outer packet.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn inspect_ip(
        &mut self,
        decoded: &Decoded<'_>,
        ip: &Ip<'_>,
        scope: VlanScope,
        meta: PacketMeta,
        rule: ExclusionRule,
        events: u64,
        out: &mut impl Output,
    ) -> Verdict {
        let gre = match (ip.proto, &ip.l4) {
            (decode::IpProto::Other(tunnel::IPPROTO_GRE), L4::Other(gre)) => {
                Some(tunnel::decap_gre(&self.cfg.tunnels, gre))
            }
            _ => None,
        };
        let events = match gre {
            Some(Err(e)) => events | e.bit(),
            _ => events,
        };
        let verdict = self.inspect_ip_one(decoded, ip, scope, meta, rule, events, out);
        if let Some(d) = gre {
            return self.inspect_decap(decoded, d, scope, meta, rule, verdict, out);
        }
        match (ip.proto, &ip.l4) {
            (decode::IpProto::Other(IPPROTO_IPIP | IPPROTO_IPV6), L4::Other(inner)) => {
                self.inspect_tunnelled(decoded, inner, scope, meta, rule, verdict, out)
            }
            (_, L4::Udp(u)) if self.cfg.tunnels.udp_may_tunnel(u.src_port, u.dst_port) => {
                let d = tunnel::decap_udp(&self.cfg.tunnels, u.src_port, u.dst_port, u.payload);
                self.inspect_decap(decoded, d, scope, meta, rule, verdict, out)
            }
            _ => verdict,
        }
    }

    /// A frame whose EtherType is an encapsulation (NSH, MPLS, PPPoE session): the packet it
    /// carries, inspected as [`Worker::inspect_decap`] does.
    #[cold]
    #[inline(never)]
    fn process_l2_tunnel(
        &mut self,
        frame: &[u8],
        decoded: &Decoded<'_>,
        meta: PacketMeta,
        out: &mut impl Output,
    ) -> Verdict {
        let body = frame.get(decoded.l3_offset..).unwrap_or_default();
        let d = tunnel::decap_ethertype(u16::from(decoded.ethertype), body);
        if !matches!(d, Ok(Some(_))) {
            self.counters.other_l3 += 1;
        }
        let scope = scope_of(&decoded.vlan);
        self.inspect_decap(
            decoded,
            d,
            scope,
            meta,
            ExclusionRule::Default,
            Verdict::Forward,
            out,
        )
    }

    /// The packet a tunnel carries (GRE, ERSPAN, VXLAN, Geneve, Teredo, NSH, MPLS, PPPoE), after
    /// the outer packet: an inner IP packet as [`Worker::inspect_tunnelled`] inspects it; an
    /// inner Ethernet frame decoded first, its flows scoped by its own VLAN tags, else the VLAN
    /// the encapsulation names (ERSPAN's original VLAN), else the outer frame's. One level: a
    /// tunnel inside is not opened. A malformed encapsulation or inner frame is counted under its
    /// decoder event; only the outer packet was inspected.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn inspect_decap(
        &mut self,
        decoded: &Decoded<'_>,
        decap: Result<Option<tunnel::Decap<'_>>, DecodeEvent>,
        scope: VlanScope,
        meta: PacketMeta,
        rule: ExclusionRule,
        outer: Verdict,
        out: &mut impl Output,
    ) -> Verdict {
        let decap = match decap {
            Ok(Some(d)) => d,
            Ok(None) => return outer,
            Err(e) => {
                self.count_decoder(e);
                return outer;
            }
        };
        self.counters.decapsulated += 1;
        let frame = match decap.inner {
            tunnel::Inner::Ip(inner) => {
                return self.inspect_tunnelled(decoded, inner, scope, meta, rule, outer, out);
            }
            tunnel::Inner::Ethernet(frame) => frame,
        };
        let inner = match decode::decode_frame(frame, self.cfg.decode) {
            Ok(d) => d,
            Err(e) => {
                self.count_decoder(e);
                return outer;
            }
        };
        for a in inner.anomalies.iter() {
            self.count_decoder(a);
        }
        let L3::Ip(ip) = &inner.l3 else {
            return outer;
        };
        let scope = if !inner.vlan.tags().is_empty() {
            scope_of(&inner.vlan)
        } else if let Some(vid) = decap.vlan.and_then(|v| vlan::VlanId::new(v).ok()) {
            VlanScope::single(vid)
        } else {
            scope
        };
        self.inspect_inner_ip(&inner, ip, scope, meta, rule, outer, out)
    }

    /// IP-in-IP (IPv4 protocol 4) and IPv6-in-IP (41): the inner packet is inspected by the
    /// activity scanner as a packet of its own (its own flow), after the outer one, as Suricata
    /// does; dropping either drops the frame. The attack blocker sees the outer packet only: the
    /// frame's MAC is the tunnel endpoint's, not the inner source's, so its MAC binding checks
    /// would misfire. One level only: a tunnel inside the inner packet is not opened (no
    /// recursion on packet data). An inner packet that does not decode is counted under its
    /// decoder event and not inspected; an inner fragment is not reassembled.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn inspect_tunnelled(
        &mut self,
        decoded: &Decoded<'_>,
        inner: &[u8],
        scope: VlanScope,
        meta: PacketMeta,
        rule: ExclusionRule,
        outer: Verdict,
        out: &mut impl Output,
    ) -> Verdict {
        let (ip, anomalies) = match decode::decode_ip(inner, self.cfg.decode) {
            Ok(x) => x,
            Err(e) => {
                self.count_decoder(e);
                return outer;
            }
        };
        for a in anomalies.iter() {
            self.count_decoder(a);
        }
        self.inspect_inner_ip(decoded, &ip, scope, meta, rule, outer, out)
    }

    /// An inner packet of a tunnel: its own flow, the activity scanner; dropping either the
    /// outer or the inner packet drops the frame.
    #[allow(clippy::too_many_arguments)]
    fn inspect_inner_ip(
        &mut self,
        decoded: &Decoded<'_>,
        ip: &Ip<'_>,
        scope: VlanScope,
        meta: PacketMeta,
        rule: ExclusionRule,
        outer: Verdict,
        out: &mut impl Output,
    ) -> Verdict {
        if ip.fragment.is_some() || self.rules.is_none() {
            return outer;
        }
        let (key, a_to_b, tcp_flags) = flow_key(scope, ip);
        let upd = self
            .flows
            .update(meta.ts, &key, a_to_b, tcp_flags, ip.total_len);
        let v = if upd.terminated {
            Verdict::Drop(DropReason::Terminated)
        } else if self.policy.policy().activity_scanner.enabled
            && self.engines.activity_scanner(upd.to_server)
        {
            self.scan_ip(decoded, ip, scope, meta, rule, &key, upd, 0, out)
        } else {
            Verdict::Forward
        };
        if outer == Verdict::Forward { v } else { outer }
    }

    /// A packet while new flows flood in ([`FlowTable::flooded`]): start fetching the cache
    /// lines its flow lookup and the attack blocker's first-seen tables will read, before the
    /// block check and the exclusions, so their misses (each a random line of a large table
    /// under a random-source flood) overlap instead of following one another. Out of line: the
    /// common packet pays only the test.
    #[cold]
    #[inline(never)]
    fn prefetch_flood(&self, ip: &Ip<'_>, scope: VlanScope) {
        let (key, _, _) = flow_key(scope, ip);
        self.flows.prefetch(&key);
        if self.policy.policy().attack_blocker.enabled {
            self.attacks
                .prefetch(scope, ip.src_bits, ip.dst_bits, ip.v6);
        }
    }

    /// Flow tracking and detection of one whole IP packet. Inlined, with [`Worker::inspect_ip`],
    /// into the packet path: the flow key and update then stay in registers.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn inspect_ip_one(
        &mut self,
        decoded: &Decoded<'_>,
        ip: &Ip<'_>,
        scope: VlanScope,
        meta: PacketMeta,
        rule: ExclusionRule,
        events: u64,
        out: &mut impl Output,
    ) -> Verdict {
        let now = meta.ts;
        let (key, a_to_b, tcp_flags) = flow_key(scope, ip);
        // Isolation: TCP flows of protected VMs keep what resetting them needs.
        let note = self
            .iso
            .as_deref()
            .and_then(|iso| iso_hook::note_of(iso, decoded, ip, scope));
        let (upd, peek) = self.flows.update_noting(
            now,
            &key,
            a_to_b,
            tcp_flags,
            decoded.l3_offset + ip.total_len,
            note.as_ref(),
        );
        if upd.terminated {
            return Verdict::Drop(DropReason::Terminated);
        }
        let verdict =
            self.attack_blocker_ip(decoded, ip, scope, meta, rule, &key, (upd, peek), out);
        // Inline, a packet the attack blocker dropped goes no further; on a mirror it was seen
        // anyway, so the rules still inspect it.
        if verdict != Verdict::Forward && self.cfg.attach == Attach::Inline {
            return verdict;
        }
        let mut verdict = verdict;
        if self.rules.is_some()
            && self.policy.policy().activity_scanner.enabled
            && self.engines.activity_scanner(upd.to_server)
        {
            let v = self.scan_ip(decoded, ip, scope, meta, rule, &key, upd, events, out);
            if verdict == Verdict::Forward {
                verdict = v;
            }
        }
        // Web address scan (worker/web.rs): a client's request, server name or query, read once
        // per flow, looked up in the loaded lists.
        if self.web.is_some()
            && verdict == Verdict::Forward
            && self.engines.web_address_scan()
            && web::wants(ip, upd, peek)
        {
            verdict = self.web_scan(decoded, ip, scope, meta, &key, upd, out);
        }
        verdict
    }

    /// The attack blocker's part of [`Worker::inspect_ip`]. Left out of line: inlined as well,
    /// the register pressure cost more than the call (569 against 546 instructions a frame).
    #[allow(clippy::too_many_arguments)]
    fn attack_blocker_ip(
        &mut self,
        decoded: &Decoded<'_>,
        ip: &Ip<'_>,
        scope: VlanScope,
        meta: PacketMeta,
        rule: ExclusionRule,
        key: &FlowKey,
        (upd, peek): (FlowUpdate, EnginePeek),
        out: &mut impl Output,
    ) -> Verdict {
        let now = meta.ts;
        // Borrowed field by field (no reference-count traffic per packet): the policy is only
        // read while the detectors fill `self.detections`.
        if let L4::Tcp(t) = &ip.l4
            && (upd.handshake_completed || (upd.half_open && !upd.to_server))
            && self.policy.policy().attack_blocker.enabled
        {
            self.handshake_step(decoded, ip, t, scope, key, upd, now);
        }
        let ab = &self.policy.policy().attack_blocker;
        if !ab.enabled || !self.engines.attack_blocker() {
            return Verdict::Forward;
        }
        self.detections.clear();
        let facts = PacketFacts {
            now,
            scope,
            eth_src: decoded.eth_src,
            ip,
            flow: Some(upd),
        };
        let found = &mut self.detections;
        let mut mac_slot = peek.mac_slot;
        self.attacks
            .inspect(&ab.detectors, &facts, &mut mac_slot, &mut |d| found.push(d));
        if mac_slot != peek.mac_slot
            && let Some(f) = self.flows.get_mut(key)
        {
            // First packet of this direction, or the binding moved: one more probe, rarely.
            f.ext.set_mac_slot(upd.a_to_b, mac_slot);
        }
        if self.detections.is_empty() {
            return Verdict::Forward;
        }
        let packet = flow_packet(scope, ip, upd);
        let excluded_block = rule == ExclusionRule::DoNotBlock;
        let verdict =
            self.act_on_detections(|_| packet, meta, excluded_block, Some(ip), decoded, out);
        if verdict != Verdict::Forward {
            self.flows.terminate(key);
        }
        verdict
    }

    /// A segment of an open TCP handshake: note the server's SYN/ACK, and when the client's ACK
    /// acknowledges it, record that the client proved its address from its MAC address
    /// ([`AttackBlocker::prove`]). Out of line: once per connection.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn handshake_step(
        &mut self,
        decoded: &Decoded<'_>,
        ip: &Ip<'_>,
        t: &decode::Tcp<'_>,
        scope: VlanScope,
        key: &FlowKey,
        upd: FlowUpdate,
        now: Timestamp,
    ) {
        if upd.handshake_completed {
            if self.flows.acks_syn_ack(key, t.ack) {
                self.attacks.prove(scope, ip.src(), decoded.eth_src, now);
            }
        } else if !upd.to_server && t.flags.has(decode::TcpFlags::SYN | decode::TcpFlags::ACK) {
            self.flows.note_syn_ack(key, t.seq);
        }
    }

    /// The activity scanner's part of [`Worker::inspect_ip`]: feed the flow's stream and app
    /// layer, run the rules, report alerts and apply `drop`/`reject`.
    #[allow(clippy::too_many_arguments)]
    fn scan_ip(
        &mut self,
        decoded: &Decoded<'_>,
        ip: &Ip<'_>,
        scope: VlanScope,
        meta: PacketMeta,
        rule: ExclusionRule,
        key: &FlowKey,
        upd: FlowUpdate,
        events: u64,
        out: &mut impl Output,
    ) -> Verdict {
        // The rule set and the policy are borrowed field by field, not held by a reference count:
        // two atomic increments and decrements per packet were 3% of a replay.
        let Some(rules) = self.rules.as_deref() else {
            return Verdict::Forward;
        };
        let Some(flow) = self.flows.get_mut(key) else {
            return Verdict::Forward;
        };
        // --simulate-ips: a flow whose drop applied to the whole flow (an IP-only or app-layer
        // rule, a stream match: `FlowRuleState::dropped`) has its later packets dropped without
        // inspection, as Suricata's FLOW_ACTION_DROP.
        if self.cfg.scanner.simulate_ips
            && self.policy.policy().mode != Mode::Monitoring
            && flow.ext.scan.as_ref().is_some_and(|s| s.rules.dropped())
        {
            return Verdict::Drop(DropReason::Rule);
        }
        self.matches.clear();
        // A TCP flow whose handshake this appliance saw complete: its source proved its address
        // (a forged one never sees the SYN/ACK), so a rule match can block it.
        let proven = flow.handshake_seen();
        let facts = flow.facts();
        let app = scanner::inspect(
            rules,
            &self.cfg.scanner,
            &self.memcap,
            &mut self.thresholds,
            ip,
            facts,
            flow.ext.scan.get_or_insert_with(Box::default),
            upd.to_server,
            meta.ts,
            events,
            scope.ids(),
            &mut self.matches,
        );
        let p = self.policy.policy();
        let Some((monitoring, wants_drop)) = keep_matches(p, &mut self.matches) else {
            return Verdict::Forward;
        };
        // --simulate-ips: Suricata's IPS semantics, the packet is dropped and nothing else.
        // Otherwise drop/reject rules take the policy's activity scanner action.
        // terminate_and_block blocks the source of a proven flow only; any other match (UDP,
        // ICMP, a TCP flow picked up midstream or not yet established) is terminated, and its
        // alert says so. do_not_block: terminated, never blocked.
        let configured = Response::from(p.activity_scanner.action);
        let skip = match configured {
            _ if self.cfg.scanner.simulate_ips || rule == ExclusionRule::DoNotBlock => None,
            Response::TerminateAndBlock if self.policy.never_blocks(ip.src()) => {
                Some(BlockSkip::NeverBlock)
            }
            Response::TerminateAndBlock if !proven => Some(BlockSkip::UnverifiedSource),
            _ => None,
        };
        let response = match configured {
            _ if self.cfg.scanner.simulate_ips => Response::Terminate,
            Response::TerminateAndBlock if skip.is_some() || rule == ExclusionRule::DoNotBlock => {
                Response::Terminate
            }
            r => r,
        };
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
            excluded: rule == ExclusionRule::DoNotBlock,
            block_minutes: block_minutes.map(|m| m.get()),
            block_skipped: skip,
            app: app.as_ref(),
            verdict: rule_verdict(drop, &self.matches),
        };
        let matches = std::mem::take(&mut self.matches);
        for m in matches.iter().filter(|m| m.alert) {
            report.alert(m, &mut self.counters, out);
            // Isolation: a rule alert on a flow whose source proved its address.
            if proven && let Some(iso) = self.iso.as_deref_mut() {
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
                iso_hook::on_detection(
                    iso,
                    trigger,
                    decoded,
                    scope,
                    meta,
                    self.policy.policy(),
                    &mut self.flows,
                    &mut self.counters,
                    out,
                );
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
            self.inject_resets(decoded, ip, t, out);
        }
        if drop {
            if !self.cfg.scanner.simulate_ips {
                self.flows.terminate(key);
            }
            return Verdict::Drop(DropReason::Rule);
        }
        Verdict::Forward
    }

    fn inject_resets(
        &mut self,
        decoded: &Decoded<'_>,
        ip: &Ip<'_>,
        tcp: &decode::Tcp<'_>,
        out: &mut impl Output,
    ) {
        let [to_destination, to_source] = reset::resets(&segment(decoded, ip, tcp));
        for (f, toward) in [
            (to_destination, Toward::Destination),
            (to_source, Toward::Source),
        ] {
            if let Some(f) = f {
                self.counters.injected += 1;
                out.inject(f, toward);
            }
        }
    }

    /// Apply the policy to every detection the attack blocker left in `self.detections` for this
    /// packet; [`Verdict::Drop`] if any of them drops it. `packet_of` names the packet each
    /// event reports; `reset_of` is the packet to answer with resets (TCP only).
    fn act_on_detections(
        &mut self,
        packet_of: impl Fn(&Detection) -> PacketRef,
        meta: PacketMeta,
        excluded_block: bool,
        reset_of: Option<&Ip<'_>>,
        decoded: &Decoded<'_>,
        out: &mut impl Output,
    ) -> Verdict {
        let detections = std::mem::take(&mut self.detections);
        let mut verdict = Verdict::Forward;
        // The packet's address is bound to another MAC: whatever else it triggers, blocking
        // the address would block its owner.
        let spoofed = detections.iter().any(|d| d.attack == Attack::MacSpoofing);
        for d in &detections {
            if self.act(
                d,
                &packet_of(d),
                meta,
                Acting {
                    excluded_block,
                    spoofed,
                },
                reset_of,
                decoded,
                out,
            ) {
                verdict = Verdict::Drop(DropReason::Attack);
            }
        }
        self.detections = detections;
        verdict
    }

    /// Why a detection the policy says to block may not block its source, if it may not:
    /// the `never_block` list, a spoofed address, or (for a detection one forged packet can
    /// cause) a source that has not proven its address.
    fn block_skip(
        &mut self,
        d: &Detection,
        scope: VlanScope,
        mac: [u8; 6],
        spoofed: bool,
        now: Timestamp,
    ) -> Option<BlockSkip> {
        if self.policy.never_blocks(d.src) {
            Some(BlockSkip::NeverBlock)
        } else if spoofed && d.attack != Attack::MacSpoofing {
            Some(BlockSkip::SpoofedSource)
        } else if d.attack.single_packet()
            && !self.policy.policy().attack_blocker.block_unverified_sources
            && !self.attacks.is_proven(scope, d.src, mac, now)
        {
            Some(BlockSkip::UnverifiedSource)
        } else {
            None
        }
    }

    /// Apply the policy to one detection; true when the packet must be dropped.
    #[allow(clippy::too_many_arguments)]
    fn act(
        &mut self,
        d: &Detection,
        packet: &PacketRef,
        meta: PacketMeta,
        acting: Acting,
        reset_of: Option<&Ip<'_>>,
        decoded: &Decoded<'_>,
        out: &mut impl Output,
    ) -> bool {
        let Acting {
            excluded_block,
            spoofed,
        } = acting;
        let policy = Arc::clone(&self.policy);
        let p = policy.policy();
        let ab = &p.attack_blocker;
        let monitoring = p.mode == Mode::Monitoring;
        let configured = Response::from(ab.action);
        let skip = match configured {
            Response::TerminateAndBlock if !excluded_block && d.attack.blocks_source() => {
                self.block_skip(d, packet.scope, decoded.eth_src, spoofed, meta.ts)
            }
            _ => None,
        };
        let response = match configured {
            // do_not_block: the attack is still stopped, its source never blocked.
            Response::TerminateAndBlock if excluded_block => Response::Terminate,
            // A forged source (Land, MAC spoofing) is the victim's own address: terminate only.
            Response::TerminateAndBlock if !d.attack.blocks_source() => Response::Terminate,
            // Never blocked, possibly forged, or unproven: terminate, and the alert says why.
            Response::TerminateAndBlock if skip.is_some() => Response::Terminate,
            r => r,
        };
        let blocks = response == Response::TerminateAndBlock;
        let enforce = !monitoring && response != Response::Inform;
        if d.report {
            if let Some(c) = Attack::ALL
                .iter()
                .position(|a| *a == d.attack)
                .and_then(|i| self.counters.detections.get_mut(i))
            {
                *c += 1;
            }
            out.event(Event {
                ts: meta.ts,
                pcap_cnt: Some(meta.pcap_cnt),
                kind: EventKind::Alert(Alert {
                    response,
                    enforced: enforce,
                    monitoring,
                    excluded: excluded_block,
                    block_minutes: blocks.then(|| ab.block_minutes.get()),
                    block_skipped: skip,
                    ..Alert::new(*packet, Engine::AttackBlocker, attack_signature(d.attack))
                }),
            });
            // Isolation: a detection from a protected VM may isolate it (forged sources never).
            if let Some(iso) = self.iso.as_deref_mut()
                && d.attack.blocks_source()
            {
                let trigger = iso_hook::Trigger {
                    engine: Engine::AttackBlocker,
                    signature: Cow::Borrowed(d.attack.name()),
                    sid: d.attack.sid(),
                    classtype: None,
                    category: None,
                    priority: d.attack.severity(),
                    flow_id: packet.flow_id,
                    src: d.src,
                };
                iso_hook::on_detection(
                    iso,
                    trigger,
                    decoded,
                    packet.scope,
                    meta,
                    p,
                    &mut self.flows,
                    &mut self.counters,
                    out,
                );
            }
        }
        if !enforce {
            return false;
        }
        if d.report {
            if let Some(ip) = reset_of
                && let L4::Tcp(t) = &ip.l4
                && !t.flags.has(decode::TcpFlags::RST)
            {
                self.inject_resets(decoded, ip, t, out);
            }
            if blocks {
                let key = BlockKey {
                    scope: packet.scope,
                    addr: d.src,
                };
                // Every worker drops the source from now on; the keeper reports the block.
                self.block(BlockRequest {
                    key,
                    now: meta.ts,
                    duration_secs: ab.block_minutes.as_secs(),
                    reason: Cow::Borrowed(d.attack.name()),
                    engine: Engine::AttackBlocker,
                    sid: Some(d.attack.sid()),
                    flow_id: packet.flow_id,
                    pcap_cnt: Some(meta.pcap_cnt),
                });
            }
        }
        true
    }
}

/// What the packet says about blocking its source, besides the detection itself.
#[derive(Clone, Copy, Debug)]
struct Acting {
    /// A `do_not_block` exclusion matched the source.
    excluded_block: bool,
    /// The packet's source address is bound to another MAC (MAC spoofing on this packet).
    spoofed: bool,
}

impl Worker {
    /// Block a source in the shared table and count the outcome.
    fn block(&mut self, req: BlockRequest) {
        match self.blocks.block(req) {
            BlockResult::Added => self.counters.blocks_added += 1,
            BlockResult::AlreadyBlocked => {}
            BlockResult::Full => self.counters.blocks_refused += 1,
        }
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
        let facts = flow.facts();
        let Some(scan) = flow.ext.scan.as_deref_mut() else {
            return;
        };
        let (a, b) = key.endpoints();
        let (client, server) = if flow.client_is_a { (a, b) } else { (b, a) };
        for to_server in [true, false] {
            matches.clear();
            let app = scanner::flush(
                rules, cfg, thresholds, facts, scan, client, server, to_server, now, matches,
            );
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

/// The packet of a tracked flow, as events name it.
fn flow_packet(scope: VlanScope, ip: &Ip<'_>, upd: FlowUpdate) -> PacketRef {
    PacketRef {
        flow_id: Some(upd.id),
        scope,
        src_ip: ip.src(),
        dst_ip: ip.dst(),
        ports: ip.l4.ports(),
        proto: Some(ip.proto),
        to_server: Some(upd.to_server),
    }
}

/// The TCP segment of a decoded frame, as the reset builders take it.
fn segment<'a>(decoded: &'a Decoded<'_>, ip: &Ip<'_>, tcp: &'a decode::Tcp<'a>) -> Segment<'a> {
    Segment {
        vlan: &decoded.vlan,
        eth_src: decoded.eth_src,
        eth_dst: decoded.eth_dst,
        src: ip.src(),
        dst: ip.dst(),
        tcp,
    }
}

/// The flow key of an IP packet, whether it travels from the key's `a` to its `b`, and its TCP
/// flags (ports 0 for protocols without them).
#[inline(always)]
fn flow_key(scope: VlanScope, ip: &Ip<'_>) -> (FlowKey, bool, Option<decode::TcpFlags>) {
    let (ports, tcp_flags) = match &ip.l4 {
        L4::Tcp(t) => ((t.src_port, t.dst_port), Some(t.flags)),
        L4::Udp(u) => ((u.src_port, u.dst_port), None),
        _ => ((0, 0), None),
    };
    let (key, a_to_b) = FlowKey::from_bits(
        scope,
        ip.proto,
        ip.v6,
        (ip.src_bits, ports.0),
        (ip.dst_bits, ports.1),
    );
    (key, a_to_b, tcp_flags)
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
fn rule_excluded(excl: &[policy::RuleId], m: &RuleMatch) -> bool {
    excl.iter()
        .any(|e| e.gid == m.gid && e.sid == m.sid && e.rev == m.rev)
}

/// What an attack blocker alert says was detected.
fn attack_signature(a: Attack) -> Signature {
    Signature {
        name: a.name().into(),
        gid: crate::attack::GID,
        sid: a.sid(),
        rev: 1,
        category: a.category().into(),
        severity: a.severity(),
    }
}

/// How the activity scanner's matches of one packet, or of one direction of a flushed flow,
/// are reported.
struct RuleReport<'a> {
    /// The packet the alerts name (for a flushed flow, its pseudo packet).
    packet: PacketRef,
    /// Event time.
    ts: Timestamp,
    /// The packet's number; `None` for a flushed flow.
    pcap_cnt: Option<u64>,
    /// The response of `drop`/`reject` rules; the others inform.
    drop_response: Response,
    /// Whether the response was carried out.
    enforced: bool,
    /// Monitoring mode.
    monitoring: bool,
    /// A `do_not_block` exclusion changed the response.
    excluded: bool,
    /// The block a `terminate_and_block` response made, in minutes.
    block_minutes: Option<u16>,
    /// Why a `drop`/`reject` rule did not block its source, if it did not.
    block_skipped: Option<BlockSkip>,
    /// The flow's app-layer fields.
    app: Option<&'a scanner::AppFields>,
    /// The packet's verdict after all its matches.
    verdict: RuleVerdict,
}

impl RuleReport<'_> {
    /// Count and report one match: the one builder of rule alerts, for a packet's matches
    /// ([`Worker::scan_ip`]) and a flushed flow's ([`Flusher::flush`]).
    fn alert(&self, m: &RuleMatch, counters: &mut Counters, out: &mut impl Output) {
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

/// A worker for tests that make no block: its table has no keeper, so blocks it made would
/// never be reported or expire.
#[cfg(test)]
fn test_worker(cfg: WorkerConfig, policy: Arc<CompiledPolicy>) -> Worker {
    let blocks = crate::shared_blocks::SharedBlocks::new(1, 16)
        .clients
        .remove(0);
    Worker::new(cfg, policy, blocks)
}

#[cfg(test)]
mod tunnel_tests {
    use core::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::decode::fixtures::{V4_DST, V4_SRC, eth, icmpv4_echo, ipv4, udp};
    use crate::rules::RuleSetBuilder;

    const INNER_SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 94);
    const INNER_DST: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 237);

    fn worker() -> Worker {
        worker_with(WorkerConfig::default())
    }

    fn worker_with(cfg: WorkerConfig) -> Worker {
        let mut p = Policy::default();
        p.attack_blocker.enabled = false;
        let mut w = test_worker(cfg, Arc::new(CompiledPolicy::compile(p)));
        let mut b = RuleSetBuilder::default();
        b.add_text(
            "t",
            "alert icmp any any -> any any (itype:8; sid:1;)\n\
             alert ip any any -> any any (ip_proto:4; sid:2;)\n",
        );
        w.set_rules(Some(Arc::new(b.build())));
        w
    }

    /// (sid, source address) of every alert one frame raised.
    fn alerts(w: &mut Worker, frame: &[u8]) -> Vec<(u32, IpAddr)> {
        let scoped = alerts_scoped(w, frame);
        scoped.into_iter().map(|(sid, src, _)| (sid, src)).collect()
    }

    /// (sid, source address, VLAN scope) of every alert one frame raised.
    fn alerts_scoped(w: &mut Worker, frame: &[u8]) -> Vec<(u32, IpAddr, VlanScope)> {
        let mut out = VecOutput::default();
        let meta = PacketMeta {
            ts: Timestamp(Timestamp::SECOND),
            pcap_cnt: 1,
        };
        assert_eq!(w.process(frame, meta, &mut out), Verdict::Forward);
        out.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Alert(a) => Some((a.sid, a.packet.src_ip, a.packet.scope)),
                _ => None,
            })
            .collect()
    }

    // The outer packet, then the tunnelled one as a packet of its own.
    #[test]
    fn ip_in_ip_inner_packet_is_inspected() {
        let mut w = worker();
        let inner = ipv4(INNER_SRC, INNER_DST, 1, &icmpv4_echo(26, 1, b"ping"));
        let frame = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 4, &inner));
        assert_eq!(
            alerts(&mut w, &frame),
            vec![(2, IpAddr::V4(V4_SRC)), (1, IpAddr::V4(INNER_SRC))]
        );
        assert_eq!(w.flows().len(), 2);
        assert_eq!(decode::IpProto::Other(4).eve_name(), "IP-in-IP");
    }

    // A tunnel inside the tunnel is not opened: one level, no recursion on packet data.
    #[test]
    fn nested_tunnel_is_not_opened() {
        let mut w = worker();
        let innermost = ipv4(INNER_SRC, INNER_DST, 1, &icmpv4_echo(26, 1, b"ping"));
        let middle = ipv4(INNER_DST, INNER_SRC, 4, &innermost);
        let frame = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 4, &middle));
        assert_eq!(
            alerts(&mut w, &frame),
            vec![(2, IpAddr::V4(V4_SRC)), (2, IpAddr::V4(INNER_DST))]
        );
    }

    // A malformed inner packet is counted under its decoder event, forwarded, never inspected.
    #[test]
    fn malformed_inner_packet_is_counted() {
        for (inner, event) in [
            (&[0x45u8, 0, 0][..], DecodeEvent::Ipv4Truncated),
            (&[0x60u8; 8][..], DecodeEvent::Ipv6Truncated),
        ] {
            let mut w = worker();
            let before = w.counters().decoder[event.index()];
            let frame = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 4, inner));
            assert_eq!(alerts(&mut w, &frame), vec![(2, IpAddr::V4(V4_SRC))]);
            assert_eq!(w.counters().decoder[event.index()], before + 1, "{event:?}");
        }
    }

    /// An Ethernet frame with an ICMP echo request from `INNER_SRC`, tagged with `tags`.
    fn inner_frame(tags: &[vlan::Tag]) -> Vec<u8> {
        let ping = ipv4(INNER_SRC, INNER_DST, 1, &icmpv4_echo(7, 1, b"ping"));
        eth(tags, 0x0800, &ping)
    }

    fn vxlan_frame(dport: u16, header: [u8; 8]) -> Vec<u8> {
        let payload = [&header[..], &inner_frame(&[])].concat();
        let seg = udp(V4_SRC.into(), V4_DST.into(), 40000, dport, &payload);
        eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 17, &seg))
    }

    const VXLAN: [u8; 8] = [0x08, 0, 0, 0, 0, 0, 100, 0];
    const SCOPE0: VlanScope = VlanScope::UNTAGGED;

    // VXLAN on its port: the inner frame's packet is inspected as one of its own.
    #[test]
    fn vxlan_inner_frame_is_inspected() {
        let mut w = worker_with(WorkerConfig::default());
        let frame = vxlan_frame(4789, VXLAN);
        assert_eq!(
            alerts_scoped(&mut w, &frame),
            vec![(1, IpAddr::V4(INNER_SRC), SCOPE0)]
        );
        assert_eq!(w.counters().decapsulated, 1);
        assert_eq!(w.flows().len(), 2);
        // Another port: ordinary UDP, nothing inside is looked at.
        let mut w = worker_with(WorkerConfig::default());
        assert_eq!(alerts_scoped(&mut w, &vxlan_frame(4790, VXLAN)), vec![]);
        assert_eq!(w.counters().decapsulated, 0);
    }

    // The settings switch a tunnel off, or move it to other ports.
    #[test]
    fn tunnel_settings_apply() {
        let mut b = WorkerConfig::builder();
        b.set("decoder.vxlan.enabled", "false").unwrap();
        let mut w = worker_with(b.build());
        assert_eq!(alerts_scoped(&mut w, &vxlan_frame(4789, VXLAN)), vec![]);
        let mut b = WorkerConfig::builder();
        b.set("decoder.vxlan.ports", "[8472, 4790]").unwrap();
        let mut w = worker_with(b.build());
        assert_eq!(alerts_scoped(&mut w, &vxlan_frame(4789, VXLAN)), vec![]);
        assert_eq!(alerts_scoped(&mut w, &vxlan_frame(8472, VXLAN)).len(), 1);
        assert!(b.set("decoder.vxlan.ports", "0").is_err());
        assert!(b.set("decoder.gre.enabled", "yes").is_err());
    }

    // A malformed VXLAN header is counted; the outer packet alone was inspected.
    #[test]
    fn malformed_vxlan_is_counted() {
        let mut w = worker_with(WorkerConfig::default());
        let mut bad = VXLAN;
        bad[0] = 0;
        assert_eq!(alerts_scoped(&mut w, &vxlan_frame(4789, bad)), vec![]);
        let event = DecodeEvent::VxlanMalformed;
        assert_eq!(w.counters().decoder[event.index()], 1);
        assert_eq!(w.counters().decapsulated, 0);
    }

    // ERSPAN II over GRE: the mirrored frame is untagged, its flow is scoped by the VLAN the
    // ERSPAN header names; a tagged inner frame is scoped by its own tag.
    #[test]
    fn erspan_vlan_scopes_the_inner_flow() {
        let gre_erspan = |inner: &[u8]| {
            let mut gre = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1];
            gre.extend_from_slice(&[0x10, 0x17, 0x08, 0x64, 0, 0, 0, 0]);
            gre.extend_from_slice(inner);
            eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 47, &gre))
        };
        let mut w = worker_with(WorkerConfig::default());
        let vid = |v| VlanScope::single(vlan::VlanId::new(v).unwrap());
        assert_eq!(
            alerts_scoped(&mut w, &gre_erspan(&inner_frame(&[]))),
            vec![(1, IpAddr::V4(INNER_SRC), vid(23))]
        );
        let tag = vlan::Tag {
            tpid: vlan::Tpid::Dot1Q,
            tci: 42,
        };
        assert_eq!(
            alerts_scoped(&mut w, &gre_erspan(&inner_frame(&[tag]))),
            vec![(1, IpAddr::V4(INNER_SRC), vid(42))]
        );
    }

    // NSH at the link layer: the IP packet behind it is inspected; an unknown EtherType is
    // counted as before.
    #[test]
    fn nsh_frame_is_opened() {
        let mut w = worker_with(WorkerConfig::default());
        let ping = ipv4(INNER_SRC, INNER_DST, 1, &icmpv4_echo(7, 1, b"ping"));
        let nsh = [&[0x00, 0x06, 0x01, 0x01][..], &[0; 20], &ping].concat();
        assert_eq!(
            alerts_scoped(&mut w, &eth(&[], 0x894f, &nsh)),
            vec![(1, IpAddr::V4(INNER_SRC), SCOPE0)]
        );
        assert_eq!(w.counters().other_l3, 0);
        assert_eq!(alerts_scoped(&mut w, &eth(&[], 0x88b5, &nsh)), vec![]);
        assert_eq!(w.counters().other_l3, 1);
    }
}

#[cfg(test)]
mod decode_event_tests {
    use super::*;
    use crate::decode::fixtures::{V4_DST, V4_SRC, eth, fragment_ipv4, icmpv4_echo, ipv4};
    use crate::rules::RuleSetBuilder;

    fn worker() -> Worker {
        let mut p = Policy::default();
        p.attack_blocker.enabled = false;
        let mut w = test_worker(
            WorkerConfig::default(),
            Arc::new(CompiledPolicy::compile(p)),
        );
        let mut b = RuleSetBuilder::default();
        let rep = b.add_text(
            "t",
            "alert icmp any any -> any any (itype:8; sid:1;)\n\
             alert pkthdr any any -> any any (decode-event:ipv4.frag_overlap; sid:10;)\n\
             alert ip any any -> any any (fragbits:M; sid:11;)\n\
             alert tcp any any -> any any (decode-event:tcp.pkt_too_small; sid:12;)\n\
             alert ip any any -> any any (decode-event:gre.pkt_too_small; sid:13;)\n",
        );
        assert!(rep.skipped.is_empty(), "{:?}", rep.skipped);
        w.set_rules(Some(Arc::new(b.build())));
        w
    }

    fn sids(w: &mut Worker, frame: &[u8], n: u64) -> Vec<u32> {
        let mut out = VecOutput::default();
        let meta = PacketMeta {
            ts: Timestamp(Timestamp::SECOND),
            pcap_cnt: n,
        };
        assert_eq!(w.process(frame, meta, &mut out), Verdict::Forward);
        out.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Alert(a) => Some(a.sid),
                _ => None,
            })
            .collect()
    }

    // Each fragment is a packet for the rules (`fragbits`), a retransmitted one raises the
    // overlap event, and the datagram is inspected after the fragment that completes it.
    #[test]
    fn fragments_are_packets_with_their_events() {
        let mut w = worker();
        let echo = ipv4(V4_SRC, V4_DST, 1, &icmpv4_echo(7, 1, &[0x42; 40]));
        let frags = fragment_ipv4(&echo, 99, 24);
        assert_eq!(frags.len(), 2);
        let frame = |f: &[u8]| eth(&[], 0x0800, f);
        assert_eq!(sids(&mut w, &frame(&frags[0]), 1), [11]);
        assert_eq!(sids(&mut w, &frame(&frags[0]), 2), [10, 11]);
        assert_eq!(sids(&mut w, &frame(&frags[1]), 3), [1]);
        let overlap = DecodeEvent::Ipv4FragOverlap.index();
        assert_eq!(w.counters().decoder.get(overlap), Some(&1));
    }

    // A frame whose transport or GRE header is too short: its decoder event reaches the rules
    // (an invalid TCP packet has no flow); the frame is still counted invalid and forwarded.
    #[test]
    fn invalid_and_short_headers_raise_their_events() {
        let mut w = worker();
        let short_tcp = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 6, &[0; 4]));
        assert_eq!(sids(&mut w, &short_tcp, 1), [12]);
        assert_eq!(w.counters().invalid, 1);
        assert_eq!(w.flows().len(), 0);
        let short_gre = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 47, &[0; 2]));
        assert_eq!(sids(&mut w, &short_gre, 2), [13]);
        let gre_small = DecodeEvent::GreTooSmall.index();
        assert_eq!(w.counters().decoder.get(gre_small), Some(&1));
        // A whole, valid packet raises none of them.
        let ok = eth(
            &[],
            0x0800,
            &ipv4(V4_SRC, V4_DST, 1, &icmpv4_echo(1, 1, b"x")),
        );
        assert_eq!(sids(&mut w, &ok, 3), [1]);
    }
}

#[cfg(test)]
mod burst_tests {
    use core::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::blocks::BlockKey;
    use crate::decode::fixtures::{V4_DST, V4_SRC, eth, ipv4, tcp_simple};
    use crate::shared_blocks::{Command, SharedBlocks};

    const BLOCKED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);

    /// TCP segments from several sources; the fifth and the eighth come from a blocked one.
    fn frames() -> Vec<Vec<u8>> {
        (0..12u16)
            .map(|i| {
                let src = if i == 4 || i == 7 { BLOCKED } else { V4_SRC };
                let l4 = tcp_simple(
                    IpAddr::V4(src),
                    IpAddr::V4(V4_DST),
                    40_000 + i % 5,
                    443,
                    b"x",
                );
                eth(&[], 0x0800, &ipv4(src, V4_DST, 6, &l4))
            })
            .collect()
    }

    fn worker(attach: Attach) -> Worker {
        let cfg = WorkerConfig {
            attach,
            ..WorkerConfig::default()
        };
        let SharedBlocks {
            mut keeper,
            control,
            mut clients,
        } = SharedBlocks::new(1, 16);
        let w = Worker::new(
            cfg,
            Arc::new(CompiledPolicy::compile(Policy::default())),
            clients.remove(0),
        );
        let key = BlockKey {
            scope: VlanScope::UNTAGGED,
            addr: IpAddr::V4(BLOCKED),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        control
            .send(Command::Manual {
                key,
                now: Timestamp(0),
                duration_secs: 3600,
                reason: "test".into(),
                reply: Some(tx),
            })
            .unwrap();
        keeper.drain(&mut |_| {});
        keeper.publish();
        assert_eq!(rx.recv().ok(), Some(BlockResult::Added));
        w
    }

    const TS: Timestamp = Timestamp(Timestamp::SECOND);

    /// Frame by frame, as `process` sees them: verdicts, output, counters.
    fn one_by_one(attach: Attach, frames: &[Vec<u8>]) -> (Vec<Verdict>, VecOutput, Counters) {
        let mut w = worker(attach);
        let mut out = VecOutput::default();
        let verdicts = (1u64..)
            .zip(frames)
            .map(|(n, f)| {
                let meta = PacketMeta {
                    ts: TS,
                    pcap_cnt: n,
                };
                w.process(f, meta, &mut out)
            })
            .collect();
        (verdicts, out, w.counters().clone())
    }

    /// The same frames as one burst, handed over again after each early return, which is
    /// recorded (frames handled by each call).
    fn in_bursts(
        attach: Attach,
        frames: &[Vec<u8>],
    ) -> (Vec<Verdict>, VecOutput, Counters, Vec<usize>) {
        let mut w = worker(attach);
        let mut out = VecOutput::default();
        let views: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let mut verdicts = Vec::new();
        let mut calls = Vec::new();
        let mut rest = &views[..];
        while !rest.is_empty() {
            let meta = PacketMeta {
                ts: TS,
                pcap_cnt: verdicts.len() as u64 + 1,
            };
            let done = w.process_burst(rest, meta, &mut out, &mut verdicts);
            assert!(done >= 1 && done <= rest.len());
            assert_eq!(verdicts.len(), views.len() - rest.len() + done);
            calls.push(done);
            rest = &rest[done..];
        }
        (verdicts, out, w.counters().clone(), calls)
    }

    #[test]
    fn a_burst_is_processed_as_its_frames_one_by_one() {
        let frames = frames();
        for attach in [Attach::Inline, Attach::Mirror] {
            let (v1, o1, c1) = one_by_one(attach, &frames);
            let (v2, o2, c2, _) = in_bursts(attach, &frames);
            assert_eq!(v1, v2, "{attach:?}");
            assert_eq!(o1.events, o2.events, "{attach:?}");
            assert_eq!(o1.injected, o2.injected, "{attach:?}");
            assert_eq!(c1, c2, "{attach:?}");
            assert_eq!(v2.get(4), Some(&Verdict::Drop(DropReason::Blocked)));
        }
    }

    /// Monitoring mode drops no frame (docs/policy.md), not even of a source blocked before the
    /// switch or by hand: the source is inspected and reported as any other.
    #[test]
    fn monitoring_mode_drops_no_frame_of_a_blocked_source() {
        for attach in [Attach::Inline, Attach::Mirror] {
            let mut w = worker(attach);
            let p = Policy {
                mode: Mode::Monitoring,
                ..Policy::default()
            };
            w.set_policy(Arc::new(CompiledPolicy::compile(p)));
            let mut out = VecOutput::default();
            for (n, f) in (1u64..).zip(&frames()) {
                let meta = PacketMeta {
                    ts: TS,
                    pcap_cnt: n,
                };
                assert_eq!(w.process(f, meta, &mut out), Verdict::Forward, "{attach:?}");
            }
            assert_eq!(w.counters().dropped_blocked, 0);
            assert!(out.injected.is_empty(), "{attach:?}: no reset");
            // Back to standard mode, the block applies again.
            w.set_policy(Arc::new(CompiledPolicy::compile(Policy::default())));
            let meta = PacketMeta {
                ts: TS,
                pcap_cnt: 99,
            };
            assert_eq!(
                w.process(&frames()[4], meta, &mut out),
                Verdict::Drop(DropReason::Blocked)
            );
        }
    }

    #[test]
    fn a_burst_stops_after_a_frame_that_injected() {
        let frames = frames();
        // Inline, the blocked source's frames are dropped without injection: one call.
        let (_, out, _, calls) = in_bursts(Attach::Inline, &frames);
        assert!(out.injected.is_empty());
        assert_eq!(calls, [12]);
        // On a mirror each of them is answered with resets: the burst is handed back after each.
        let (_, out, c, calls) = in_bursts(Attach::Mirror, &frames);
        assert!(!out.injected.is_empty());
        assert_eq!(c.injected, out.injected.len() as u64);
        assert_eq!(calls, [5, 3, 4]);
    }
}

#[cfg(test)]
mod retired_flow_tests {
    use core::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::decode::fixtures::{V4_DST, V4_SRC, eth, ipv4, tcp_simple, udp};
    use crate::rules::RuleSetBuilder;

    fn worker(mode: scanner::InspectionMode) -> Worker {
        let mut p = Policy::default();
        p.attack_blocker.enabled = false;
        let mut cfg = WorkerConfig::default();
        cfg.scanner.mode = mode;
        cfg.scanner.stream.midstream = true;
        // A small table: sweeps come after a few packets (capacity / 2).
        cfg.flows.max_flows = 16;
        let mut w = test_worker(cfg, Arc::new(CompiledPolicy::compile(p)));
        let mut b = RuleSetBuilder::default();
        b.add_text(
            "t",
            "alert tcp any any -> any any (content:\"secret\"; sid:1;)\n",
        );
        w.set_rules(Some(Arc::new(b.build())));
        w
    }

    /// (sid, pcap_cnt) of every alert.
    fn send(w: &mut Worker, frame: &[u8], secs: u64, n: u64) -> Vec<(u32, Option<u64>)> {
        let mut out = VecOutput::default();
        let meta = PacketMeta {
            ts: Timestamp(secs * Timestamp::SECOND),
            pcap_cnt: n,
        };
        w.process(frame, meta, &mut out);
        alerts(&out)
    }

    fn alerts(out: &VecOutput) -> Vec<(u32, Option<u64>)> {
        out.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Alert(a) => Some((a.sid, e.pcap_cnt)),
                _ => None,
            })
            .collect()
    }

    // IDS timing: data the server never acknowledged is inspected when its flow times out
    // (the sweep a later packet triggers), as at the end of a capture, and only once.
    #[test]
    fn unacknowledged_data_is_inspected_when_the_flow_times_out() {
        let (c, s) = (IpAddr::V4(V4_SRC), IpAddr::V4(V4_DST));
        let data = eth(
            &[],
            0x0800,
            &ipv4(
                V4_SRC,
                V4_DST,
                6,
                &tcp_simple(c, s, 40000, 80, b"the secret"),
            ),
        );
        let other = eth(
            &[],
            0x0800,
            &ipv4(
                Ipv4Addr::new(10, 9, 9, 9),
                V4_DST,
                17,
                &udp(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)), s, 5000, 53, b"x"),
            ),
        );
        let mut w = worker(scanner::InspectionMode::Ids);
        assert!(send(&mut w, &data, 1, 1).is_empty(), "not acknowledged yet");
        // A day later: the TCP flow has timed out; the sweep retires it and it is flushed.
        let got: Vec<_> = (2..200)
            .flat_map(|n| send(&mut w, &other, 86_400, n))
            .collect();
        assert_eq!(got, vec![(1, None)]);
        let mut out = VecOutput::default();
        w.flush_streams(Timestamp(86_401 * Timestamp::SECOND), &mut out);
        assert!(alerts(&out).is_empty(), "flushed once");
        assert_eq!(w.counters().rule_alerts, 1);

        // Inline timing inspected it on arrival; nothing is retired.
        let mut w = worker(scanner::InspectionMode::Inline);
        assert_eq!(send(&mut w, &data, 1, 1), vec![(1, Some(1))]);
        assert!((2..200).all(|n| send(&mut w, &other, 86_400, n).is_empty()));
        assert!(!w.flows.has_retired());
        assert!(w.flows().stats().timed_out >= 1);
    }
}

/// Blocking that forged packets cannot steer (issue 15 item 2): a single-packet detection blocks
/// only a source that completed a handshake from its MAC address, a spoofed address is never
/// blocked, and the `never_block` list holds against every detection.
#[cfg(test)]
mod forged_tests {
    use core::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::decode::fixtures::{eth, ipv4, tcp_simple};

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 66);
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const FIN: u8 = 0x01;
    const PSH: u8 = 0x08;
    const URG: u8 = 0x20;
    const SERVER_ISN: u32 = 0x5000_0000;

    /// A TCP segment with these flags, numbers and source MAC (last byte `mac`).
    #[allow(clippy::too_many_arguments)]
    fn seg(
        src: Ipv4Addr,
        mac: u8,
        dst: Ipv4Addr,
        ports: (u16, u16),
        flags: u8,
        seq: u32,
        ack: u32,
    ) -> Vec<u8> {
        let mut l4 = tcp_simple(IpAddr::V4(src), IpAddr::V4(dst), ports.0, ports.1, b"");
        l4[4..8].copy_from_slice(&seq.to_be_bytes());
        l4[8..12].copy_from_slice(&ack.to_be_bytes());
        l4[13] = flags;
        let mut f = eth(&[], 0x0800, &ipv4(src, dst, 6, &l4));
        f[11] = mac;
        f
    }

    fn worker(policy: &str) -> Worker {
        test_worker(
            WorkerConfig::default(),
            Arc::new(CompiledPolicy::compile(Policy::from_yaml(policy).unwrap())),
        )
    }

    /// Feed frames 10 ms apart from second `t0`; the attack blocker alerts they raised.
    fn feed(w: &mut Worker, t0: u64, frames: &[Vec<u8>]) -> Vec<Alert> {
        let mut out = VecOutput::default();
        for (i, f) in (0u64..).zip(frames) {
            let meta = PacketMeta {
                ts: Timestamp(t0 * Timestamp::SECOND + i * 10_000),
                pcap_cnt: t0 * 1000 + i,
            };
            w.process(f, meta, &mut out);
        }
        out.events
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::Alert(a) if a.engine == Engine::AttackBlocker => Some(a),
                _ => None,
            })
            .collect()
    }

    /// The client's handshake with the server from MAC `mac`, its ACK acknowledging `ack`.
    fn handshake(mac: u8, sport: u16, ack: u32) -> Vec<Vec<u8>> {
        vec![
            seg(CLIENT, mac, SERVER, (sport, 80), SYN, 1000, 0),
            seg(
                SERVER,
                0x10,
                CLIENT,
                (80, sport),
                SYN | ACK,
                SERVER_ISN,
                1001,
            ),
            seg(CLIENT, mac, SERVER, (sport, 80), ACK, 1001, ack),
        ]
    }

    fn null_probe(mac: u8) -> Vec<u8> {
        seg(CLIENT, mac, SERVER, (54321, 21), 0, 7, 0)
    }

    fn only(alerts: &[Alert], sig: &str) -> Alert {
        let found: Vec<&Alert> = alerts.iter().filter(|a| a.signature == sig).collect();
        assert_eq!(found.len(), 1, "{alerts:?}");
        found[0].clone()
    }

    #[test]
    fn a_forged_null_packet_terminates_without_blocking() {
        let mut w = worker("");
        let a = only(
            &feed(&mut w, 1, &[null_probe(0x66)]),
            "Scan.Generic.TCPFlags.Null",
        );
        assert_eq!(a.response, Response::Terminate);
        assert_eq!(a.block_skipped, Some(BlockSkip::UnverifiedSource));
        assert_eq!(a.block_minutes, None);
        assert!(a.enforced, "still terminated");
        assert_eq!(w.counters().blocks_added, 0);
        assert_eq!(w.counters().dropped_attack, 1);
    }

    #[test]
    fn a_source_that_completed_a_handshake_is_blocked() {
        let mut w = worker("");
        let mut frames = handshake(0x66, 40000, SERVER_ISN + 1);
        frames.push(null_probe(0x66));
        let a = only(&feed(&mut w, 1, &frames), "Scan.Generic.TCPFlags.Null");
        assert_eq!(a.response, Response::TerminateAndBlock);
        assert_eq!(a.block_skipped, None);
        assert_eq!(a.block_minutes, Some(60));
        assert_eq!(w.counters().blocks_added, 1);
    }

    /// A blind forger completes the handshake on the wire with a guessed acknowledgement
    /// number: the flow table calls it established, but it proves nothing.
    #[test]
    fn a_blind_handshake_proves_nothing() {
        let mut w = worker("");
        let mut frames = handshake(0x66, 40000, SERVER_ISN + 2);
        frames.push(null_probe(0x66));
        let a = only(&feed(&mut w, 1, &frames), "Scan.Generic.TCPFlags.Null");
        assert_eq!(a.block_skipped, Some(BlockSkip::UnverifiedSource));
        assert_eq!(w.counters().blocks_added, 0);
    }

    /// The proven host's address from another MAC: a spoof of it. The spoofed packets are
    /// dropped as MAC spoofing and never block the owner: not the single-packet detection they
    /// cause, not a flood they make (a per-destination detection naming the owner's address);
    /// they feed none of the owner's scan counts.
    #[test]
    fn a_spoofed_proven_address_is_never_blocked() {
        let mut w = worker("attack_blocker:\n  detectors:\n    syn_flood: {count: 5}\n");
        let mut frames = handshake(0x66, 40000, SERVER_ISN + 1);
        frames.push(seg(
            CLIENT,
            0x99,
            SERVER,
            (54321, 21),
            FIN | PSH | URG,
            7,
            0,
        ));
        let alerts = feed(&mut w, 1, &frames);
        assert_eq!(
            only(&alerts, "Spoof.Generic.MAC").response,
            Response::Terminate
        );
        let a = only(&alerts, "Scan.Generic.TCPFlags.Xmas");
        assert_eq!(a.block_skipped, Some(BlockSkip::SpoofedSource));
        assert_eq!(a.response, Response::Terminate);
        assert_eq!(w.counters().dropped_attack, 1);
        // A SYN flood carrying the address from the other MAC.
        let flood: Vec<Vec<u8>> = (1..=20u16)
            .map(|p| seg(CLIENT, 0x99, SERVER, (50000 + p, 80), SYN, 9, 0))
            .collect();
        let alerts = feed(&mut w, 10, &flood);
        let a = only(&alerts, "DoS.Generic.SYNFlood");
        assert_eq!(a.block_skipped, Some(BlockSkip::SpoofedSource));
        assert_eq!(a.response, Response::Terminate);
        assert_eq!(w.counters().blocks_added, 0);
        // A SYN scan from the other MAC is not the owner's scan: no scan detection, and the
        // owner's next connection is not part of any episode.
        let other = Ipv4Addr::new(10, 0, 0, 11);
        let scan: Vec<Vec<u8>> = (1..=25u16)
            .map(|p| seg(CLIENT, 0x99, other, (54321, p), SYN, 9, 0))
            .collect();
        let alerts = feed(&mut w, 20, &scan);
        assert!(
            alerts.iter().all(|a| a.signature != "Scan.Generic.TCP"),
            "{alerts:?}"
        );
        let mut out = VecOutput::default();
        let meta = PacketMeta {
            ts: Timestamp(21 * Timestamp::SECOND),
            pcap_cnt: 21_000,
        };
        // (To a third host: the SYNs to the scanned one are a flood there, whoever sends them.)
        let own_syn = seg(
            CLIENT,
            0x66,
            Ipv4Addr::new(10, 0, 0, 12),
            (40001, 443),
            SYN,
            5000,
            0,
        );
        assert_eq!(w.process(&own_syn, meta, &mut out), Verdict::Forward);
        // The owner's own packets still pass.
        let mut out = VecOutput::default();
        let meta = PacketMeta {
            ts: Timestamp(40 * Timestamp::SECOND),
            pcap_cnt: 40,
        };
        let own = seg(CLIENT, 0x66, SERVER, (40000, 80), ACK, 1001, SERVER_ISN + 1);
        assert_eq!(w.process(&own, meta, &mut out), Verdict::Forward);
    }

    #[test]
    fn never_block_holds_for_every_detection() {
        let mut w = worker("never_block: [10.0.0.64/29]\n");
        let mut frames = handshake(0x66, 40000, SERVER_ISN + 1);
        frames.push(null_probe(0x66));
        let a = only(&feed(&mut w, 1, &frames), "Scan.Generic.TCPFlags.Null");
        assert_eq!(a.block_skipped, Some(BlockSkip::NeverBlock));
        let scan: Vec<Vec<u8>> = (1..=20u16)
            .map(|p| seg(CLIENT, 0x66, SERVER, (54321, p), SYN, 9, 0))
            .collect();
        let a = only(&feed(&mut w, 10, &scan), "Scan.Generic.TCP");
        assert_eq!(a.block_skipped, Some(BlockSkip::NeverBlock));
        assert_eq!(a.response, Response::Terminate);
        assert_eq!(w.counters().blocks_added, 0);
    }

    #[test]
    fn the_policy_may_block_unverified_sources() {
        let mut w = worker("attack_blocker:\n  block_unverified_sources: true\n");
        let a = only(
            &feed(&mut w, 1, &[null_probe(0x66)]),
            "Scan.Generic.TCPFlags.Null",
        );
        assert_eq!(a.block_skipped, None);
        assert_eq!(a.response, Response::TerminateAndBlock);
        assert_eq!(w.counters().blocks_added, 1);
    }

    /// A proof lasts an hour of packet time.
    #[test]
    fn a_proof_expires() {
        let mut w = worker("");
        feed(&mut w, 1, &handshake(0x66, 40000, SERVER_ISN + 1));
        let a = only(
            &feed(&mut w, 3_700, &[null_probe(0x66)]),
            "Scan.Generic.TCPFlags.Null",
        );
        assert_eq!(a.block_skipped, Some(BlockSkip::UnverifiedSource));
    }
}

#[cfg(test)]
mod simulate_ips_tests {
    use core::net::IpAddr;

    use super::*;
    use crate::decode::fixtures::{V4_DST, V4_SRC, eth, ipv4, udp};
    use crate::rules::RuleSetBuilder;
    use crate::scanner::ScannerConfig;

    fn worker(rules: &str) -> Worker {
        let mut p = Policy::default();
        p.attack_blocker.enabled = false;
        let cfg = WorkerConfig {
            scanner: ScannerConfig {
                simulate_ips: true,
                ..ScannerConfig::default()
            },
            ..WorkerConfig::default()
        };
        let mut w = test_worker(cfg, Arc::new(CompiledPolicy::compile(p)));
        let mut b = RuleSetBuilder::default();
        b.add_text("t", rules);
        w.set_rules(Some(Arc::new(b.build())));
        w
    }

    /// Alerted sids, each with its EVE verdict.
    type Alerted = Vec<(u32, Option<RuleVerdict>)>;

    /// The verdict and alerts of each of three datagrams of one flow.
    fn three(w: &mut Worker) -> Vec<(Verdict, Alerted)> {
        let l4 = udp(IpAddr::V4(V4_SRC), IpAddr::V4(V4_DST), 40000, 53, b"xyz");
        let frame = eth(&[], 0x0800, &ipv4(V4_SRC, V4_DST, 17, &l4));
        (1..=3u64)
            .map(|n| {
                let mut out = VecOutput::default();
                let meta = PacketMeta {
                    ts: Timestamp(n * Timestamp::SECOND),
                    pcap_cnt: n,
                };
                let v = w.process(&frame, meta, &mut out);
                let sids = out
                    .events
                    .iter()
                    .filter_map(|e| match &e.kind {
                        EventKind::Alert(a) => Some((a.sid, a.verdict)),
                        _ => None,
                    })
                    .collect();
                (v, sids)
            })
            .collect()
    }

    // A drop whose action applies to the flow (a header-only rule) drops the flow's later
    // packets uninspected; a payload match drops its packet only, and the next is inspected.
    #[test]
    fn a_flow_scoped_drop_drops_the_rest_of_the_flow() {
        let drop = Verdict::Drop(DropReason::Rule);
        let dropped = |sid| vec![(sid, Some(RuleVerdict::Drop))];
        let mut w = worker("drop udp any any -> any any (sid:1;)");
        assert_eq!(
            three(&mut w),
            [(drop, dropped(1)), (drop, vec![]), (drop, vec![])]
        );
        let mut w = worker("drop udp any any -> any any (content:\"xyz\"; sid:2;)");
        assert_eq!(
            three(&mut w),
            [(drop, dropped(2)), (drop, dropped(2)), (drop, dropped(2))]
        );
        // A pass (with `alert`) of the flow: its alert says pass, later packets are let
        // through uninspected.
        let mut w = worker("pass udp any any -> any 53 (alert; sid:3;)");
        let pass = vec![(3, Some(RuleVerdict::Pass))];
        let fwd = Verdict::Forward;
        assert_eq!(three(&mut w), [(fwd, pass), (fwd, vec![]), (fwd, vec![])]);
    }
}
