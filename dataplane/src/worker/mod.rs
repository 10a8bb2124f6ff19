//! One dataplane worker: run to completion, per packet,
//! decode -> VLAN scope -> block check -> exclusion -> defragmentation -> flow -> attack blocker ->
//! verdict -> events.
//!
//! The worker owns its flow table, defragmenter and detector state. The compiled policy is an
//! `Arc` snapshot swapped between packets ([`Worker::set_policy`]). Blocks live in the one table
//! of [`crate::shared_blocks`]: the worker checks every frame against it and adds the sources it
//! detects; its keeper (a thread in the daemon, driven between frames in replay) expires them
//! and reports every change.
//!
//! The stages of a frame's path, one file each: this file takes the frame in (decode, anomalies,
//! isolation, the network layer); `frame.rs` the frames that are not a plain IP packet (ARP,
//! invalid, nested too deep) and the exclusion and protection checks; `ip.rs` an IP packet
//! (blocks, fragments, flow, attack blocker); `tunnel.rs` the packet a tunnel carries; `scan.rs`
//! the activity scanner; `web.rs` the web address scan; `acting.rs` the verdicts of detections,
//! blocks and injected resets; `report.rs` the rule alerts; `flush.rs` the end-of-flow
//! inspection; `counters.rs` what the worker counts. The stages take one [`Frame`] or [`Pkt`]
//! (the packet in hand and what the stages before it found) instead of a list of arguments.

use std::sync::Arc;

use policy::{CompiledPolicy, ExclusionRule};
use vlan::VlanScope;

use crate::attack::{AttackBlocker, Detection};
use crate::decode::{self, DecodeEvent, Decoded, Ip, L3};
use crate::defrag::Defragmenter;
use crate::flow::{FlowKey, FlowTable, FlowUpdate};
// The verdict, directions and output moved below the worker and the backends; re-exported so
// `worker::Verdict` and the like keep working.
pub use crate::output::{DropReason, Output, Toward, VecOutput, Verdict};
use crate::rules::{RuleMatch, RuleSet, ThresholdState};
use crate::scanner;
// The settings moved beside their builder; re-exported likewise.
pub use crate::settings::{Attach, WorkerConfig};
use crate::shared_blocks::BlockClient;
use crate::stream::StreamMemcap;
use crate::time::Timestamp;

use crate::isolation::{IsolationClient, hook as iso_hook};
use crate::protection::{Engines, TooDeepReports, VmProtections};

mod acting;
mod counters;
// The engines' per-flow state, beside each flow of the table.
mod flow_ext;
mod flush;
mod frame;
mod ip;
mod report;
mod scan;
mod tunnel;
// Web address scan: the hook's body, actions and events (issue 17).
mod web;

#[cfg(test)]
mod tests;

pub(crate) use acting::inject_resets;
use acting::segment;
pub use counters::{Counters, DecoderCounters, WebCounters};
pub use flow_ext::{EnginePeek, FlowEngines};
use ip::flow_packet;

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

/// A frame on its way through the stages: the decoded frame (the outer one, or a tunnel's inner
/// Ethernet frame), its VLAN scope, its metadata and the exclusion rule of its source. The
/// isolation hook ([`crate::isolation::hook`]) takes it too.
#[derive(Clone, Copy)]
pub(crate) struct Frame<'a> {
    pub(crate) decoded: &'a Decoded<'a>,
    pub(crate) scope: VlanScope,
    pub(crate) meta: PacketMeta,
    pub(crate) rule: ExclusionRule,
}

impl<'a> Frame<'a> {
    /// A frame before the network layer looked its source's exclusion rule up (the isolation
    /// check and an L2 tunnel read none): the default rule. Built where it is used: one built
    /// ahead of the isolation check for every frame cost 5 instructions a frame (callgrind,
    /// `dpdk_fwd --handler worker`).
    #[inline(always)]
    fn new(decoded: &'a Decoded<'a>, scope: VlanScope, meta: PacketMeta) -> Self {
        Frame {
            decoded,
            scope,
            meta,
            rule: ExclusionRule::Default,
        }
    }

    /// The frame with `ip` in hand: its own IP packet, a reassembled datagram or the packet a
    /// tunnel carries.
    #[inline(always)]
    fn with<'b>(self, ip: &'b Ip<'b>) -> Pkt<'b>
    where
        'a: 'b,
    {
        Pkt {
            decoded: self.decoded,
            ip,
            scope: self.scope,
            meta: self.meta,
            rule: self.rule,
        }
    }
}

/// One IP packet on its way through the stages: a [`Frame`] and the IP packet in hand.
#[derive(Clone, Copy)]
struct Pkt<'a> {
    decoded: &'a Decoded<'a>,
    ip: &'a Ip<'a>,
    scope: VlanScope,
    meta: PacketMeta,
    /// The exclusion rule of the frame's source.
    rule: ExclusionRule,
}

impl<'a> Pkt<'a> {
    /// The frame the packet came in.
    #[inline(always)]
    fn frame(&self) -> Frame<'a> {
        Frame {
            decoded: self.decoded,
            scope: self.scope,
            meta: self.meta,
            rule: self.rule,
        }
    }
}

/// The flow of a tracked packet: its key and what the packet's update of it said.
#[derive(Clone, Copy)]
struct Tracked<'a> {
    key: &'a FlowKey,
    upd: FlowUpdate,
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
    // The web address scan's scratch space (worker/web.rs).
    web_scratch: web::Scratch,
    // A frame ahead was named and prefetched ([`Worker::prefetch_frame`]) since the last
    // flooded packet: that packet's own prefetch is skipped (ip.rs).
    hinted: bool,
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
            web_scratch: web::Scratch::default(),
            hinted: false,
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
            Verdict::Drop(DropReason::StreamUrgent) => self.counters.dropped_stream_urgent += 1,
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
        if let Some(iso) = self.iso.as_deref_mut() {
            let f = Frame::new(decoded, scope, meta);
            let mut acts = iso_hook::Acts {
                policy: self.policy.policy(),
                flows: &mut self.flows,
                counters: &mut self.counters,
                out: &mut *out,
            };
            if iso_hook::check_frame(iso, &f, self.cfg.attach, &mut acts) == iso_hook::Check::Drop {
                return Verdict::Drop(DropReason::Isolated);
            }
        }
        match &decoded.l3 {
            L3::Other => self.process_l2_tunnel(frame, &Frame::new(decoded, scope, meta), out),
            L3::Arp(arp) => self.process_arp(decoded, arp, scope, meta, out),
            L3::Ip(ip) => self.process_ip(decoded, ip, scope, meta, out),
        }
    }
}
