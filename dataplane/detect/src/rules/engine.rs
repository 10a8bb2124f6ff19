//! The compiled rule set: prefilter, candidate verification, flowbits, thresholds, actions.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::decode::IpProto;
use crate::time::Timestamp;

use super::ast::*;
use super::classification::Classifications;
use super::detect;
use super::group::{FastPat, Group, GroupKey, Groups};
use super::iponly::IpOnlyIndex;
use super::mpm::{Mpm, PairUnion, find_all, find_both};
use super::threshold::{
    Decision, ThresholdConfig, ThresholdSpec, ThresholdState, Track, TrackKey, Window,
};

/// Flow facts the caller knows about the packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowView {
    /// The packet belongs to a tracked flow (false: stateless packet, e.g. no flow table entry).
    pub has_flow: bool,
    /// TCP: the handshake completed (or midstream pickup); UDP: packets seen both ways.
    pub established: bool,
    /// The packet goes from the client (flow initiator) to the server.
    pub to_server: bool,
}

/// A flow's packet and byte counts, each `[to_server, to_client]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounts {
    /// Packets.
    pub pkts: [u64; 2],
    /// Bytes (frame lengths).
    pub bytes: [u64; 2],
}

/// What a rule set inspects: one packet, as plain data.
#[derive(Clone, Copy, Debug)]
pub struct PacketView<'a> {
    /// IP protocol.
    pub proto: IpProto,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (0 without ports).
    pub src_port: u16,
    /// Destination port (0 without ports).
    pub dst_port: u16,
    /// TTL / hop limit.
    pub ttl: u8,
    /// TCP flags, for TCP.
    pub tcp_flags: Option<u16>,
    /// ICMP (type, code, id, seq), for ICMP and ICMPv6.
    pub icmp: Option<(u8, u8, u16, u16)>,
    /// IPv4 (reserved, DF, MF); IPv6: MF from the fragment header.
    pub fragbits: (bool, bool, bool),
    /// IPv6 packet.
    pub ip_v6: bool,
    /// The L4 payload of this packet (what `dsize` measures).
    pub payload: &'a [u8],
    /// The IP header with IPv4 options or IPv6 extension headers (`ipv4.hdr`, `ipv6.hdr`,
    /// `ipopts`); empty for pseudo packets.
    pub ip_header: &'a [u8],
    /// The transport header (`tcp.hdr` with options, `udp.hdr`, `icmpv4.hdr`, `icmpv6.hdr`);
    /// empty for fragments, other protocols and pseudo packets.
    pub l4_header: &'a [u8],
    /// TCP: the sequence space (client, server) used so far, as Suricata's `next_seq - isn` (1
    /// for the SYN, the in-order bytes, 1 for the FIN), after this packet; `stream_size`
    /// compares it. `None` without a TCP session.
    pub stream_size: Option<(u64, u64)>,
    /// The TCP stream events this packet raised ([`super::ast::stream_event`] bits), for
    /// `stream-event`.
    pub stream_events: u16,
    /// Flow facts.
    pub flow: FlowView,
    /// The flow's packet and byte counts so far, this packet included (`flow.pkts`,
    /// `flow.bytes`); `None` without a flow.
    pub flow_counts: Option<FlowCounts>,
    /// App-layer protocol of the flow, when detected.
    pub app_proto: Option<AppProto>,
    /// The decoder events of this packet ([`crate::decode::DecodeEvent::bit`]s), for
    /// `decode-event`.
    pub events: u64,
    /// The VLAN ids of the frame's tags, outer first (`vlan.id`, `vlan.layers`).
    pub vlan: &'a [u16],
    /// The flow's age in whole seconds, as Suricata's `flow.age` counts it (this packet's
    /// second minus the first packet's); `None` without a flow.
    pub flow_age: Option<u64>,
}

/// Buffers beyond the packet payload: the stream and app-layer fields, as the caller has them.
pub trait Buffers {
    /// The buffer of this kind for the current packet, if any. [`BufferKind::Payload`] and
    /// [`BufferKind::Packet`] are never asked for (they come from [`PacketView::payload`]).
    fn get(&self, kind: BufferKind) -> Option<&[u8]>;

    /// Instance `n` of a multi-buffer ([`BufferKind::is_multi`]: each certificate of
    /// `tls.certs`, each name of `dns.query`); instance 0 is [`Self::get`]. Callers stop at the
    /// first `None`.
    fn get_nth(&self, kind: BufferKind, n: usize) -> Option<&[u8]> {
        if n == 0 { self.get(kind) } else { None }
    }

    /// Instance `n` of a request buffer ([`Side::ToServer`]) of the packet's transaction, for
    /// transactional rules ([`Direction::Tx`]), which read both sides of a transaction and match
    /// on a packet towards the client: there [`Self::get_nth`] offers the response's buffers
    /// only. The default, for buffers that know no sides: [`Self::get_nth`].
    fn get_request(&self, kind: BufferKind, n: usize) -> Option<&[u8]> {
        self.get_nth(kind, n)
    }

    /// The packet's payload went into the reassembled stream, which is inspected on its own
    /// timing (IDS mode): a rule that may match either the stream or the packet then matches
    /// the stream only, unless it has packet keywords (`flags`, `dsize`, ...) or a payload
    /// content anchored by `offset`/`depth`/`startswith` ([`super::Rule::packet_too`]), as
    /// Suricata's `PKT_STREAM_ADD` / `SIG_FLAG_REQUIRE_PACKET`.
    fn payload_in_stream(&self) -> bool {
        false
    }

    /// The kinds [`Self::get`] may return a buffer of on this packet; the prefilter does not
    /// ask for the others. A superset is always right (the default: every kind).
    fn kinds(&self) -> KindSet {
        KindSet::FULL
    }

    /// The flow's payload is not inspected (encrypted TLS application data, as Suricata's
    /// `FLOW_NOPAYLOAD_INSPECTION`): rules reading the payload, the packet or the raw stream do
    /// not match; app-layer buffers and rules without payload keywords still do.
    fn no_payload(&self) -> bool {
        false
    }
}

/// No buffers at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBuffers;

impl Buffers for NoBuffers {
    fn get(&self, _: BufferKind) -> Option<&[u8]> {
        None
    }
}

impl Buffers for HashMap<BufferKind, Vec<u8>> {
    fn get(&self, kind: BufferKind) -> Option<&[u8]> {
        HashMap::get(self, &kind).map(Vec::as_slice)
    }
}

/// Per-flow rule state: flowbits, `by_flow` thresholds, IP-only and pass bookkeeping, and the
/// signature group of each direction (chosen on its first packet).
#[derive(Debug, Clone, Default)]
pub struct FlowRuleState {
    bits: Vec<u32>,
    ip_only_done: [bool; 2],
    /// The flow's action, set by the first flow-scoped `pass` or `drop`/`reject` match
    /// (Suricata's `FLOW_ACTION_PASS`/`FLOW_ACTION_DROP`: the first to be set wins).
    action: Option<FlowAction>,
    /// `by_flow` threshold windows by rule index, of the rule set `windows_set`.
    windows: Vec<(u32, Window)>,
    windows_set: u64,
    groups: [Option<(GroupTag, GroupKey, Arc<Group>)>; 2],
}

/// Size of one part of a signature group (see [`RuleSet::group_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartStats {
    /// Rules in the part.
    pub rules: usize,
    /// Fast patterns, all buffers.
    pub patterns: usize,
    /// Fast patterns of the payload automaton.
    pub payload_patterns: usize,
    /// Fast patterns of at most 2 bytes.
    pub short_patterns: usize,
    /// Rules without a fast pattern.
    pub always: usize,
    /// Memory of the automata.
    pub automata_bytes: usize,
}

/// What a cached group was chosen for: the rule set and the packet facts of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GroupTag {
    set: u64,
    proto: IpProto,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    flow: FlowView,
}

impl FlowRuleState {
    /// A fresh state (new flow).
    pub fn new() -> Self {
        Self::default()
    }

    /// Is this flowbit id set?
    pub fn is_set(&self, bit: u32) -> bool {
        self.bits.binary_search(&bit).is_ok()
    }

    fn set(&mut self, bit: u32) {
        if let Err(i) = self.bits.binary_search(&bit) {
            self.bits.insert(i, bit);
        }
    }

    fn unset(&mut self, bit: u32) {
        if let Ok(i) = self.bits.binary_search(&bit) {
            self.bits.remove(i);
        }
    }

    /// A pass rule that applies to the whole flow ([`Rule::flow_scoped`], or a stream match)
    /// has matched: the flow's later packets are not inspected.
    pub fn passed(&self) -> bool {
        self.action == Some(FlowAction::Pass)
    }

    /// A `drop` or `reject` rule that applies to the whole flow has matched: an inline engine
    /// drops the flow's later packets without inspecting them; in any mode the rule set
    /// inspects them no more ([`RuleSet::inspect`]).
    pub fn dropped(&self) -> bool {
        self.action == Some(FlowAction::Drop)
    }

    fn set_action(&mut self, a: FlowAction) {
        self.action.get_or_insert(a);
    }
}

/// What a flow-scoped match decided for the rest of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowAction {
    Pass,
    Drop,
}

/// One rule that matched a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    /// Generator id.
    pub gid: u32,
    /// Signature id.
    pub sid: u32,
    /// Revision.
    pub rev: u32,
    /// `msg`.
    pub msg: Arc<str>,
    /// `classtype` short name.
    pub classtype: Option<Arc<str>>,
    /// The class description (EVE `alert.category`).
    pub category: Option<Arc<str>>,
    /// Priority (EVE `alert.severity`).
    pub priority: u8,
    /// Action: the rule's, or a `rate_filter`'s `new_action` while its rate is exceeded.
    pub action: RuleAction,
    /// Should be reported: false for `pass` (without the `alert` keyword), `noalert`,
    /// suppressed or thresholded matches (whose action, e.g. `drop`, still applies).
    pub alert: bool,
    /// `flowbits:noalert`.
    pub noalert: bool,
    /// IP-only rule (evaluated once per flow direction).
    pub ip_only: bool,
    /// Index of the rule in [`RuleSet::rules`].
    pub rule_index: u32,
}

pub(super) struct Prefilter {
    pub(super) ac: Mpm,
    /// Pattern id -> rules using it.
    rules: Vec<Vec<u32>>,
    /// The same, grouped by port (see [`PortGroups`]).
    groups: Vec<PortGroups>,
    /// Patterns of at most 2 bytes.
    short: usize,
}

impl Prefilter {
    /// Memory of the automaton.
    pub(super) fn memory(&self) -> usize {
        self.ac.memory_usage()
    }
}

impl std::fmt::Debug for Prefilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefilter")
            .field("patterns", &self.rules.len())
            .finish()
    }
}

thread_local! {
    /// Per-thread scratch of [`RuleSet::inspect`]: candidate rules, patterns seen by a scan.
    static SCRATCH: RefCell<(Vec<u32>, Vec<u64>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Longest prefix of a fast pattern given to the prefilter automaton.
pub const MAX_FAST_PATTERN_LEN: usize = 24;

/// Widest IPv4 range put in an address index (bounds the backward scan of a lookup).
const MAX_INDEXED_RANGE: u32 = 1 << 16;

/// The source ranges of a rule, when it can go to the source-address index.
/// Also whether the source holds IPv6 addresses (ET's Tor lists mix both, or hold IPv6 only):
/// such a rule is indexed by its IPv4 ranges, if any, and is a candidate for every IPv6 source.
fn indexable_src(r: &Rule) -> Option<(&[(u32, u32)], bool)> {
    if r.src.is_any() {
        return None;
    }
    let ranges = r.src.v4_ranges();
    let v6 = r.src.has_v6();
    ((!ranges.is_empty() || v6) && ranges.iter().all(|&(lo, hi)| hi - lo < MAX_INDEXED_RANGE))
        .then_some((ranges, v6))
}

/// A rule listed under at most this many ports goes to per-port lists.
const MAX_GROUPED_PORTS: u32 = 64;

/// Always-evaluate rules grouped by port: a rule whose destination ports are few is listed
/// under each of them (checked only for packets to one of them), else one whose source ports are
/// few under those, else it is evaluated for every packet. Exact: the header check would reject
/// the other packets anyway. Bidirectional rules are never grouped.
#[derive(Debug, Default)]
pub(super) struct PortGroups {
    any: Vec<u32>,
    /// Rules whose source is a list of IPv4 ranges (each at most [`MAX_INDEXED_RANGE`] wide),
    /// as (low, high, rule) sorted by low: looked up by the packet's source address.
    by_src_addr: Vec<(u32, u32, u32)>,
    /// Rules of `by_src_addr` whose source also holds IPv6 addresses: candidates for every
    /// IPv6 source.
    v6_src: Vec<u32>,
    by_dst: HashMap<u16, Vec<u32>>,
    by_src: HashMap<u16, Vec<u32>>,
}

fn port_count(p: &super::vars::PortSet) -> u32 {
    p.ranges()
        .iter()
        .map(|&(lo, hi)| u32::from(hi) - u32::from(lo) + 1)
        .sum()
}

impl PortGroups {
    /// Rules listed.
    pub(super) fn len(&self) -> usize {
        self.any.len()
            + self.by_src_addr.len()
            + self.by_dst.values().map(Vec::len).sum::<usize>()
            + self.by_src.values().map(Vec::len).sum::<usize>()
    }

    pub(super) fn build(list: &[u32], rules: &[Rule]) -> PortGroups {
        let mut g = PortGroups::default();
        for &idx in list {
            let Some(r) = rules.get(idx as usize) else {
                continue;
            };
            let (target, ports) = if r.direction != Direction::To {
                (None, &r.dport)
            } else if port_count(&r.dport) <= MAX_GROUPED_PORTS {
                (Some(&mut g.by_dst), &r.dport)
            } else if port_count(&r.sport) <= MAX_GROUPED_PORTS {
                (Some(&mut g.by_src), &r.sport)
            } else {
                (None, &r.dport)
            };
            if target.is_none()
                && r.direction == Direction::To
                && let Some((ranges, v6)) = indexable_src(r)
            {
                g.by_src_addr
                    .extend(ranges.iter().map(|&(lo, hi)| (lo, hi, idx)));
                if v6 {
                    g.v6_src.push(idx);
                }
                continue;
            }
            match target {
                Some(map) => {
                    for &(lo, hi) in ports.ranges() {
                        for port in lo..=hi {
                            map.entry(port).or_default().push(idx);
                        }
                    }
                }
                None => g.any.push(idx),
            }
        }
        g.by_src_addr.sort_unstable();
        g
    }

    fn candidates(&self, pkt: &PacketView<'_>, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.any);
        if pkt.src.is_ipv6() {
            out.extend_from_slice(&self.v6_src);
        }
        if !self.by_src_addr.is_empty() {
            let v4 = match pkt.src {
                IpAddr::V4(a) => Some(u32::from(a)),
                IpAddr::V6(a) => a.to_ipv4_mapped().map(u32::from),
            };
            if let Some(a) = v4 {
                let end = self.by_src_addr.partition_point(|&(lo, _, _)| lo <= a);
                let floor = a.saturating_sub(MAX_INDEXED_RANGE);
                for &(lo, hi, idx) in self.by_src_addr.get(..end).unwrap_or_default().iter().rev() {
                    if lo < floor {
                        break;
                    }
                    if a <= hi {
                        out.push(idx);
                    }
                }
            }
        }
        if let Some(v) = self.by_dst.get(&pkt.dst_port) {
            out.extend_from_slice(v);
        }
        if let Some(v) = self.by_src.get(&pkt.src_port) {
            out.extend_from_slice(v);
        }
    }
}

/// Protocol classes for the always-evaluate lists.
pub(super) const CLASSES: usize = 5;

fn class_of(p: IpProto) -> usize {
    match p {
        IpProto::Tcp => 0,
        IpProto::Udp => 1,
        IpProto::Icmp => 2,
        IpProto::Icmpv6 => 3,
        IpProto::Other(_) => 4,
    }
}

pub(super) fn classes_of(p: RuleProto) -> &'static [usize] {
    match p {
        RuleProto::Ip | RuleProto::Ipv4 | RuleProto::Ipv6 => &[0, 1, 2, 3, 4],
        RuleProto::Tcp
        | RuleProto::TcpPkt
        | RuleProto::TcpStream
        | RuleProto::Http
        | RuleProto::Tls => &[0],
        RuleProto::Udp => &[1],
        RuleProto::Dns => &[0, 1],
        RuleProto::Icmp => &[2],
        RuleProto::Icmpv6 => &[3],
    }
}

/// A compiled, immutable rule set; share it between workers as `Arc<RuleSet>`.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    category: Vec<Option<Arc<str>>>,
    threshold: Vec<Option<ThresholdSpec>>,
    ip_only: Vec<bool>,
    /// [`Rule::flow_scoped`] per rule.
    flow_scoped: Vec<bool>,
    /// Fast pattern per rule (`None`: evaluated whenever its group is).
    fast: Vec<FastPat>,
    always: [Vec<u32>; CLASSES],
    /// Signature groups of the rules that are not IP-only.
    pub(super) groups: Groups,
    ip_only_rules: Vec<u32>,
    /// The IP-only rules by address.
    ip_index: IpOnlyIndex,
    /// Identity of this set (cached groups of an older set are not reused).
    id: u64,
    thresholds: ThresholdConfig,
    flowbit_names: HashMap<String, u32>,
}

/// The order in which rules of each action are evaluated (Suricata's `action-order`): a
/// matching `pass` rule stops the rules after it. Default: pass, drop, reject, alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionOrder([RuleAction; 4]);

impl Default for ActionOrder {
    fn default() -> Self {
        ActionOrder([
            RuleAction::Pass,
            RuleAction::Drop,
            RuleAction::Reject,
            RuleAction::Alert,
        ])
    }
}

impl ActionOrder {
    /// From action names, each of `pass`, `drop`, `reject` and `alert` exactly once (as in
    /// `suricata.yaml`; case ignored).
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<ActionOrder, String> {
        let mut order = Vec::with_capacity(4);
        for n in names {
            let a = match n.as_ref().trim().to_ascii_lowercase().as_str() {
                "pass" => RuleAction::Pass,
                "drop" => RuleAction::Drop,
                "reject" => RuleAction::Reject,
                "alert" => RuleAction::Alert,
                other => return Err(format!("action-order: unknown action `{other}`")),
            };
            if order.contains(&a) {
                return Err(format!("action-order: `{}` given twice", a.name()));
            }
            order.push(a);
        }
        <[RuleAction; 4]>::try_from(order)
            .map(ActionOrder)
            .map_err(|_| {
                "action-order: needs each of pass, drop, reject and alert exactly once".to_owned()
            })
    }

    /// Position of `a` in the order.
    fn rank(&self, a: RuleAction) -> u8 {
        let pos = self.0.iter().position(|x| *x == a).unwrap_or(self.0.len());
        u8::try_from(pos).unwrap_or(u8::MAX)
    }
}

/// Evaluation order: the action order, flowbit and hostbit setters before checkers, then
/// priority.
fn order_key(r: &Rule, order: &ActionOrder) -> (u8, u8, u8) {
    let host_checks = |h: &HostbitCmd| matches!(h.op, HostbitOp::IsSet | HostbitOp::IsNotSet);
    let sets = r.flowbits.iter().any(|f| {
        matches!(
            f,
            FlowbitCmd::Set(_) | FlowbitCmd::Unset(_) | FlowbitCmd::Toggle(_)
        )
    }) || r.hostbits.iter().any(|h| !host_checks(h));
    let checks = r.flowbits.iter().any(|f| {
        matches!(
            f,
            FlowbitCmd::IsSetAll(_) | FlowbitCmd::IsSetAny(_) | FlowbitCmd::IsNotSet(_)
        )
    }) || r.hostbits.iter().any(host_checks);
    let fb = match (sets, checks) {
        (true, false) => 0,
        (true, true) => 1,
        (false, true) => 2,
        (false, false) => 3,
    };
    (order.rank(r.action), fb, r.priority)
}

fn prefilter_kind(k: BufferKind) -> BufferKind {
    match k {
        BufferKind::Packet | BufferKind::Stream => BufferKind::Payload,
        other => other,
    }
}

/// The fast pattern of a rule: (buffer, bytes), or `None` if it has no usable content.
fn fast_pattern(r: &Rule) -> Option<(BufferKind, Vec<u8>)> {
    let mut best: Option<(BufferKind, &Content, bool)> = None;
    for ch in &r.chains {
        // A transactional rule matches on packets towards the client, which offer the
        // response's buffers to the prefilter, not the request's.
        if r.direction == Direction::Tx && ch.buffer.side() == Side::ToServer {
            continue;
        }
        for s in &ch.steps {
            let Step::Content(c) = s else { continue };
            // A transformed buffer's contents need not be in the buffer the prefilter scans.
            if c.negated || ch.url_decode {
                continue;
            }
            if c.fast_pattern != FastPattern::No {
                best = Some((ch.buffer, c, ch.dotprefix));
                break;
            }
            if best.is_none_or(|(_, b, _)| {
                b.fast_pattern == FastPattern::No && c.pattern.len() > b.pattern.len()
            }) {
                best = Some((ch.buffer, c, ch.dotprefix));
            }
        }
        if best.is_some_and(|(_, b, _)| b.fast_pattern != FastPattern::No) {
            break;
        }
    }
    let (kind, c, dotprefix) = best?;
    let mut pat: &[u8] = match c.fast_pattern {
        FastPattern::Slice(o, l) => c
            .pattern
            .get(usize::from(o)..usize::from(o) + usize::from(l))?,
        _ => &c.pattern,
    };
    if dotprefix {
        // The buffer is inspected as "." + buffer; the raw buffer lacks the leading dot.
        pat = pat.strip_prefix(b".").unwrap_or(pat);
    }
    // Any slice of a required content is an exact superset filter; a prefix caps automaton size
    // (ET Open has long hex and URL contents) at little cost in selectivity.
    let pat = pat
        .get(..pat.len().min(MAX_FAST_PATTERN_LEN))
        .unwrap_or(pat);
    if pat.is_empty() {
        return None;
    }
    Some((prefilter_kind(kind), pat.to_ascii_lowercase()))
}

impl RuleSet {
    /// Compile rules (already deduplicated by the loader) into a rule set.
    pub fn compile(
        mut rules: Vec<Rule>,
        classes: &Classifications,
        thresholds: ThresholdConfig,
        flowbit_names: HashMap<String, u32>,
        action_order: &ActionOrder,
    ) -> RuleSet {
        rules.sort_by_key(|r| order_key(r, action_order));
        let category = rules
            .iter()
            .map(|r| {
                r.classtype
                    .as_deref()
                    .and_then(|c| classes.get(c))
                    .map(|c| c.description.clone())
            })
            .collect();
        let threshold = rules
            .iter()
            .map(|r| thresholds.override_for(r.gid, r.sid).or(r.threshold))
            .collect();
        let ip_only: Vec<bool> = rules.iter().map(Rule::is_ip_only).collect();
        let flow_scoped = rules.iter().map(Rule::flow_scoped).collect();
        let mut always: [Vec<u32>; CLASSES] = Default::default();
        let mut ip_only_rules = Vec::new();
        let mut fast = Vec::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            let idx = u32::try_from(i).unwrap_or(u32::MAX);
            if ip_only.get(i).copied().unwrap_or(false) {
                ip_only_rules.push(idx);
                fast.push(None);
                continue;
            }
            let fp = fast_pattern(r);
            if fp.is_none() {
                for &c in classes_of(r.proto) {
                    if let Some(l) = always.get_mut(c) {
                        l.push(idx);
                    }
                }
            }
            fast.push(fp);
        }
        let grouped: Vec<bool> = ip_only.iter().map(|b| !b).collect();
        let groups = Groups::new(&rules, &grouped);
        let ip_index = IpOnlyIndex::build(&ip_only_rules, &rules);
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        RuleSet {
            groups,
            rules,
            category,
            threshold,
            ip_only,
            flow_scoped,
            fast,
            always,
            ip_only_rules,
            ip_index,
            thresholds,
            flowbit_names,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// (flow-direction keys, compiled signature group parts) in the group cache now.
    pub fn group_cache(&self) -> (usize, usize) {
        self.groups.cached()
    }

    /// The signature group this packet's flow direction gets (compiled now if new), one entry
    /// per part: for tools and benchmarks.
    pub fn group_stats(&self, pkt: &PacketView<'_>) -> Vec<PartStats> {
        let g = self.group(pkt, &mut FlowRuleState::new());
        g.parts
            .iter()
            .map(|p| {
                let pfs = p.prefilters.iter().flatten();
                PartStats {
                    rules: p.rules,
                    patterns: pfs.clone().map(|f| f.ac.patterns_len()).sum(),
                    payload_patterns: p
                        .prefilters
                        .get(BufferKind::Payload.index())
                        .and_then(Option::as_ref)
                        .map_or(0, |f| f.ac.patterns_len()),
                    short_patterns: pfs.clone().map(|f| f.short).sum(),
                    always: p.always.len(),
                    automata_bytes: pfs.map(|f| f.ac.memory_usage()).sum(),
                }
            })
            .collect()
    }

    /// The signature group of this packet's flow direction: the one cached in the flow state
    /// when it was chosen for the same facts, else looked up (and compiled on first use).
    fn group(&self, pkt: &PacketView<'_>, fs: &mut FlowRuleState) -> Arc<Group> {
        let tag = GroupTag {
            set: self.id,
            proto: pkt.proto,
            src: pkt.src,
            dst: pkt.dst,
            sport: pkt.src_port,
            dport: pkt.dst_port,
            flow: pkt.flow,
        };
        // The common case first: this direction's cached group, chosen for the same facts.
        if let Some(Some((t, _, g))) = fs.groups.get(usize::from(!pkt.flow.to_server))
            && *t == tag
        {
            return Arc::clone(g);
        }
        // Address classes already computed for this flow (either direction) are reused: only
        // the flow facts changed (e.g. the handshake completed).
        let mut sigs = None;
        for (t, k, _) in fs.groups.iter().flatten() {
            if t.set != self.id {
                continue;
            }
            let (s, d) = k.addr_sigs();
            if (t.src, t.dst) == (pkt.src, pkt.dst) {
                sigs = Some((s, d));
            } else if (t.src, t.dst) == (pkt.dst, pkt.src) {
                sigs = Some((d, s));
            }
        }
        let slot = fs.groups.get_mut(usize::from(!pkt.flow.to_server));
        let key: GroupKey = self.groups.key(
            sigs,
            class_of(pkt.proto),
            pkt.flow.has_flow,
            pkt.flow.established,
            pkt.flow.to_server,
            pkt.src,
            pkt.dst,
            pkt.src_port,
            pkt.dst_port,
        );
        let g = self.groups.get(&key, &self.rules, &self.fast);
        if let Some(s) = slot {
            *s = Some((tag, key, Arc::clone(&g)));
        }
        g
    }

    /// The rules, in evaluation order (`RuleMatch::rule_index` indexes this).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True if there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of flowbit names.
    pub fn flowbit_count(&self) -> usize {
        self.flowbit_names.len()
    }

    /// Flowbit names and their ids (see [`super::RuleSetBuilder::keep_flowbits_of`]).
    pub fn flowbit_names(&self) -> &HashMap<String, u32> {
        &self.flowbit_names
    }

    /// (rules in prefilters, rules always evaluated, IP-only rules).
    pub fn layout(&self) -> (usize, usize, usize) {
        let always: usize = self.always.iter().map(Vec::len).max().unwrap_or(0);
        let ip = self.ip_only_rules.len();
        (
            self.rules.len() - ip - always.min(self.rules.len() - ip),
            always,
            ip,
        )
    }

    /// Inspect one packet; matches are appended to `out` in evaluation order.
    ///
    /// `flow_state` belongs to the packet's flow (a fresh one for flow-less packets);
    /// `thresholds` to the worker. `now` drives thresholds.
    pub fn inspect(
        &self,
        pkt: &PacketView<'_>,
        bufs: &dyn Buffers,
        flow_state: &mut FlowRuleState,
        thresholds: &mut ThresholdState,
        now: Timestamp,
        out: &mut Vec<RuleMatch>,
    ) {
        // A flow-scoped pass or drop decided the flow: its later packets are not inspected
        // (Suricata's DetectFlow skips a flow with FLOW_ACTION_PASS or FLOW_ACTION_DROP, in
        // IDS mode too, where nothing is dropped).
        if flow_state.action.is_some() {
            return;
        }
        if flow_state.windows_set != self.id {
            // Rule indexes are those of another set (a reload): its windows mean nothing here.
            // Flowbits are kept: a reload keeps their ids by name (`keep_flowbits_of`).
            flow_state.windows.clear();
            flow_state.windows_set = self.id;
        }
        let group = self.group(pkt, flow_state);
        // Candidate and seen-pattern vectors of this thread, reused from packet to packet (taken
        // out, so a nested call could only cost an allocation, never a conflict).
        let (mut cand, mut seen) = SCRATCH.try_with(RefCell::take).unwrap_or_default();
        cand.clear();
        let no_payload = bufs.no_payload();
        let stream = bufs.get(BufferKind::Stream).filter(|_| !no_payload);
        // Buffer by buffer, the prefilters of both parts in one pass over its bytes.
        // Only the kinds with a prefilter (a bit each): testing every kind's slot touched a
        // cache line per kind and part on every packet.
        let mut kinds = group.kinds.and(bufs.kinds().or(BufferKind::HEADERS));
        while let Some(kind) = kinds.pop_first() {
            let k = kind.index();
            let pfs = group
                .parts
                .each_ref()
                .map(|p| p.prefilters.get(k).and_then(Option::as_ref));
            let union = group.unions.get(k).and_then(Option::as_ref);
            if k == BufferKind::Payload.index() {
                if no_payload {
                    continue;
                }
                if bufs.payload_in_stream() {
                    // IDS timing: the stream holds this payload; the payload itself only
                    // matters to the rules that read the packet.
                    if let Some(s) = stream {
                        scan(pfs, union, s, pkt, &mut cand, &mut seen);
                    }
                    if stream != Some(pkt.payload) {
                        let ppfs = group.parts.each_ref().map(|p| p.packet_payload.as_ref());
                        let pu = group.packet_union.as_ref();
                        scan(ppfs, pu, pkt.payload, pkt, &mut cand, &mut seen);
                    }
                    continue;
                }
                scan(pfs, union, pkt.payload, pkt, &mut cand, &mut seen);
                // The stream's new data is often the packet's payload itself: scan it once.
                if let Some(s) = stream
                    && s != pkt.payload
                {
                    scan(pfs, union, s, pkt, &mut cand, &mut seen);
                }
            } else if kind.is_header() {
                if let Some(b) = super::packet::header_buffer(kind, pkt) {
                    scan(pfs, union, b, pkt, &mut cand, &mut seen);
                }
            } else if let Some(b) = bufs.get(kind) {
                scan(pfs, union, b, pkt, &mut cand, &mut seen);
                if kind.is_multi() {
                    let mut n = 1;
                    while let Some(b) = bufs.get_nth(kind, n) {
                        scan(pfs, union, b, pkt, &mut cand, &mut seen);
                        n += 1;
                    }
                }
            }
        }
        for part in &group.parts {
            part.always.candidates(pkt, &mut cand);
        }
        let dir = usize::from(!pkt.flow.to_server);
        let do_ip_only =
            !pkt.flow.has_flow || !flow_state.ip_only_done.get(dir).copied().unwrap_or(true);
        if do_ip_only {
            self.ip_index.candidates(pkt.src, pkt.dst, &mut cand);
            if pkt.flow.has_flow
                && let Some(d) = flow_state.ip_only_done.get_mut(dir)
            {
                *d = true;
            }
        }
        // Most packets leave no candidate (with ET Open, 12,489 of the 85,428 a pass of
        // docs/benchmarks.md has one): the verification loop, whose setup reads the packet's
        // fields once for all candidates (about 150 instructions), is then not entered.
        if !cand.is_empty() {
            cand.sort_unstable();
            cand.dedup();
            self.evaluate(&cand, pkt, bufs, flow_state, thresholds, now, out);
        }
        let _ = SCRATCH.try_with(|c| c.replace((cand, seen)));
    }

    /// Verify the candidates (sorted, unique) and record the matches, in rule order. Out of
    /// line: called only for a packet with candidates.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn evaluate(
        &self,
        cand: &[u32],
        pkt: &PacketView<'_>,
        bufs: &dyn Buffers,
        flow_state: &mut FlowRuleState,
        thresholds: &mut ThresholdState,
        now: Timestamp,
        out: &mut Vec<RuleMatch>,
    ) {
        // A drop or reject applied to this packet: a later pass does not pass the flow.
        let mut dropped = false;
        for &idx in cand {
            let Some(rule) = self.rules.get(idx as usize) else {
                continue;
            };
            let head_known = self.groups.head_known(idx as usize);
            let mut in_stream = false;
            if !verify_in(rule, pkt, bufs, flow_state, head_known, &mut in_stream)
                || !hostbits_ok(rule, pkt, &thresholds.hosts, now)
            {
                continue;
            }
            for h in &rule.hostbits {
                let host = match h.side {
                    HostSide::Src => pkt.src,
                    HostSide::Dst => pkt.dst,
                };
                match h.op {
                    HostbitOp::Set => thresholds.hosts.set(host, h.bit, now),
                    HostbitOp::Unset => thresholds.hosts.unset(host, h.bit),
                    HostbitOp::Toggle => thresholds.hosts.toggle(host, h.bit, now),
                    HostbitOp::IsSet | HostbitOp::IsNotSet => {}
                }
            }
            for fb in &rule.flowbits {
                match fb {
                    FlowbitCmd::Set(b) => flow_state.set(*b),
                    FlowbitCmd::Unset(b) => flow_state.unset(*b),
                    FlowbitCmd::Toggle(b) => {
                        if flow_state.is_set(*b) {
                            flow_state.unset(*b)
                        } else {
                            flow_state.set(*b)
                        }
                    }
                    _ => {}
                }
            }
            let ip_only = self.ip_only.get(idx as usize).copied().unwrap_or(false);
            let mut action = rule.action;
            let mut alert = (rule.action != RuleAction::Pass || rule.alert) && !rule.noalert;
            if alert
                && self
                    .thresholds
                    .suppressed(rule.gid, rule.sid, pkt.src, pkt.dst)
            {
                alert = false;
            }
            if alert && let Some(Some(spec)) = self.threshold.get(idx as usize) {
                let decision = match spec.track {
                    Track::ByFlow => {
                        let w = match flow_state.windows.iter_mut().find(|(i, _)| *i == idx) {
                            Some((_, w)) => w,
                            None => {
                                flow_state.windows.push((idx, Window::default()));
                                match flow_state.windows.last_mut() {
                                    Some((_, w)) => w,
                                    None => continue,
                                }
                            }
                        };
                        w.hit(spec, now)
                    }
                    Track::BySrc => thresholds.hit(idx, TrackKey::Addr(pkt.src), spec, now),
                    Track::ByDst => thresholds.hit(idx, TrackKey::Addr(pkt.dst), spec, now),
                    Track::ByBoth => {
                        thresholds.hit(idx, TrackKey::Pair(pkt.src, pkt.dst), spec, now)
                    }
                    Track::ByRule => thresholds.hit(idx, TrackKey::Rule, spec, now),
                };
                match decision {
                    Decision::Alert => {}
                    Decision::Silent => alert = false,
                    Decision::Action(a) => {
                        action = a;
                        // A pass alerts only when its rule says `alert`.
                        alert = a != RuleAction::Pass || rule.alert;
                    }
                }
            }
            // Suricata's FlowApplySignatureActions: the action of an IP-only, like-IP-only,
            // protocol-detection-only or app-layer rule, or of a match in the stream, applies
            // to the flow; a pass after a drop of this packet is not applied at all. Suricata
            // reassembles only after the handshake: before, a payload match is a packet's.
            let flow_scoped = (in_stream && pkt.flow.established)
                || self
                    .flow_scoped
                    .get(idx as usize)
                    .copied()
                    .unwrap_or(ip_only);
            match action {
                RuleAction::Pass if flow_scoped && !dropped => {
                    flow_state.set_action(FlowAction::Pass)
                }
                RuleAction::Drop | RuleAction::Reject => {
                    dropped = true;
                    if flow_scoped {
                        flow_state.set_action(FlowAction::Drop);
                    }
                }
                _ => {}
            }
            out.push(RuleMatch {
                gid: rule.gid,
                sid: rule.sid,
                rev: rule.rev,
                msg: rule.msg.clone(),
                classtype: rule.classtype.clone(),
                category: self.category.get(idx as usize).cloned().flatten(),
                priority: rule.priority,
                action,
                alert,
                noalert: rule.noalert,
                ip_only,
                rule_index: idx,
            });
            if action == RuleAction::Pass {
                break;
            }
        }
    }
}

/// The fast patterns of one buffer kind, each with the rules using it.
#[derive(Debug, Default)]
pub(super) struct PrefilterTable {
    list: Vec<Vec<u8>>,
    ids: HashMap<Vec<u8>, usize>,
    owners: Vec<Vec<u32>>,
}

impl PrefilterTable {
    /// Rule `idx` has this fast pattern.
    pub(super) fn add(&mut self, pat: &[u8], idx: u32) {
        let pid = match self.ids.get(pat) {
            Some(&p) => p,
            None => {
                self.list.push(pat.to_vec());
                self.owners.push(Vec::new());
                self.ids.insert(pat.to_vec(), self.list.len() - 1);
                self.list.len() - 1
            }
        };
        if let Some(o) = self.owners.get_mut(pid) {
            o.push(idx);
        }
    }

    /// The automaton and per-pattern port groups, `None` without patterns.
    pub(super) fn build(self, rules: &[Rule]) -> Option<Prefilter> {
        if self.list.is_empty() {
            return None;
        }
        let ac = Mpm::new(&self.list)?;
        let groups = self
            .owners
            .iter()
            .map(|o| PortGroups::build(o, rules))
            .collect();
        Some(Prefilter {
            ac,
            short: self.list.iter().filter(|p| p.len() <= 2).count(),
            rules: self.owners,
            groups,
        })
    }
}

/// Scan `hay` with the prefilters of a group's parts (one pass for both when both have one) and
/// add the candidates of the patterns found.
fn scan(
    pfs: [Option<&Prefilter>; 2],
    union: Option<&PairUnion>,
    hay: &[u8],
    pkt: &PacketView<'_>,
    cand: &mut Vec<u32>,
    seen: &mut Vec<u64>,
) {
    // One candidate lookup per pattern, however often it occurs: `seen` holds the first
    // prefilter's patterns, then the second's.
    let words = pfs.map(|p| p.map_or(0, |p| p.rules.len().div_ceil(64)));
    let mut fresh = true;
    let mut hit = |n: usize, pf: &Prefilter, pid: usize| {
        if fresh {
            seen.clear();
            seen.resize(words.iter().sum(), 0);
            fresh = false;
        }
        let [first, _] = words;
        let off = if n == 0 { 0 } else { first };
        let Some(w) = seen.get_mut(off + pid / 64) else {
            return;
        };
        let bit = 1u64 << (pid % 64);
        if *w & bit != 0 {
            return;
        }
        *w |= bit;
        if let Some(g) = pf.groups.get(pid) {
            g.candidates(pkt, cand);
        }
    };
    match pfs {
        [Some(a), Some(b)] => {
            let f = |n, pid| hit(n, if n == 0 { a } else { b }, pid);
            match union {
                Some(u) => find_both(u, [&a.ac, &b.ac], hay, f),
                None => find_all([&a.ac, &b.ac], hay, f),
            }
        }
        [Some(a), None] => a.ac.find(hay, |pid| hit(0, a, pid)),
        [None, Some(b)] => b.ac.find(hay, |pid| hit(1, b, pid)),
        [None, None] => {}
    }
}

fn proto_ok(r: &Rule, p: &PacketView<'_>) -> bool {
    match r.proto {
        RuleProto::Ip => true,
        RuleProto::Ipv4 => !p.ip_v6,
        RuleProto::Ipv6 => p.ip_v6,
        RuleProto::Tcp | RuleProto::TcpPkt | RuleProto::TcpStream => p.proto == IpProto::Tcp,
        RuleProto::Udp => p.proto == IpProto::Udp,
        RuleProto::Icmp => p.proto == IpProto::Icmp,
        RuleProto::Icmpv6 => p.proto == IpProto::Icmpv6,
        RuleProto::Http => p.proto == IpProto::Tcp && p.app_proto == Some(AppProto::Http),
        RuleProto::Tls => p.proto == IpProto::Tcp && p.app_proto == Some(AppProto::Tls),
        RuleProto::Dns => {
            matches!(p.proto, IpProto::Tcp | IpProto::Udp) && p.app_proto == Some(AppProto::Dns)
        }
    }
}

fn header_ok(r: &Rule, p: &PacketView<'_>) -> bool {
    if !proto_ok(r, p) {
        return false;
    }
    // Ports first: cheaper than addresses and they reject more.
    let fwd = || {
        r.sport.contains(p.src_port)
            && r.dport.contains(p.dst_port)
            && r.src.contains(p.src)
            && r.dst.contains(p.dst)
    };
    let rev = || {
        r.sport.contains(p.dst_port)
            && r.dport.contains(p.src_port)
            && r.src.contains(p.dst)
            && r.dst.contains(p.src)
    };
    match r.direction {
        Direction::To => fwd(),
        Direction::Both => fwd() || rev(),
        // The source is the client: the packet's destination when it goes to the client.
        Direction::Tx if p.flow.to_server => fwd(),
        Direction::Tx => rev(),
    }
}

fn bits_ok(mode: BitsMode, have: u16, want: u16) -> bool {
    match mode {
        BitsMode::Exact => have == want,
        BitsMode::All => have & want == want,
        BitsMode::Any => want == 0 || have & want != 0,
        BitsMode::Not => have & want == 0,
    }
}

fn packet_ok(c: &PacketCheck, p: &PacketView<'_>) -> bool {
    match c {
        PacketCheck::Flags { mode, bits, ignore } => match p.tcp_flags {
            Some(f) => bits_ok(*mode, f & 0xff & !ignore, *bits & !ignore),
            None => false,
        },
        PacketCheck::Fragbits { mode, bits } => {
            let (r, d, m) = p.fragbits;
            let have = u16::from(r) | u16::from(d) << 1 | u16::from(m) << 2;
            bits_ok(*mode, have, u16::from(*bits))
        }
        PacketCheck::Dsize(n) => n.test(p.payload.len() as u64),
        PacketCheck::StreamEvent(e) => p.stream_events & e != 0,
        PacketCheck::Ttl(n) => n.test(u64::from(p.ttl)),
        PacketCheck::Itype(n) => p.icmp.is_some_and(|i| n.test(u64::from(i.0))),
        PacketCheck::Icode(n) => p.icmp.is_some_and(|i| n.test(u64::from(i.1))),
        PacketCheck::IcmpId(v) => p.icmp.is_some_and(|i| is_echo(p, i.0) && i.2 == *v),
        PacketCheck::IcmpSeq(v) => p.icmp.is_some_and(|i| is_echo(p, i.0) && i.3 == *v),
        PacketCheck::IpProto(n) => n.test(u64::from(u8::from(p.proto))),
        PacketCheck::StreamSize(side, cmp) => match p.stream_size {
            Some((c, s)) if p.proto == IpProto::Tcp => match side {
                StreamSizeSide::Client => cmp.test(c),
                StreamSizeSide::Server => cmp.test(s),
                StreamSizeSide::Both => cmp.test(c) && cmp.test(s),
                StreamSizeSide::Either => cmp.test(c) || cmp.test(s),
            },
            _ => false,
        },
        PacketCheck::DecodeEvent(e) => p.events & e.bit() != 0,
        PacketCheck::VlanLayers(n) => n.test(p.vlan.len() as u64),
        PacketCheck::FlowAge(n) => p.flow_age.is_some_and(|a| n.test(a)),
        PacketCheck::VlanId(n, layer) => {
            let ok = |id: &u16| n.test(u64::from(*id));
            match layer {
                VlanLayer::Any => p.vlan.iter().any(ok),
                VlanLayer::All => !p.vlan.is_empty() && p.vlan.iter().all(ok),
                VlanLayer::Index(i) => {
                    let at = if *i < 0 {
                        p.vlan.len().checked_sub(usize::from(i.unsigned_abs()))
                    } else {
                        Some(usize::from(i.unsigned_abs()))
                    };
                    at.and_then(|at| p.vlan.get(at)).is_some_and(ok)
                }
            }
        }
        PacketCheck::Icmpv6Mtu(n) => match p.icmp {
            // The MTU is the word after type, code and checksum: the "ident" and "seq" halves.
            Some((2, 0, hi, lo)) if p.proto == IpProto::Icmpv6 => {
                n.test(u64::from(hi) << 16 | u64::from(lo))
            }
            _ => false,
        },

        PacketCheck::FlowPkts(dir, n) => p
            .flow_counts
            .is_some_and(|c| flow_count_ok(*dir, c.pkts, n)),
        PacketCheck::FlowBytes(dir, n) => p
            .flow_counts
            .is_some_and(|c| flow_count_ok(*dir, c.bytes, n)),
        PacketCheck::TcpSeq(n) => tcp_u32(p, 4).is_some_and(|v| n.test(u64::from(v))),
        PacketCheck::TcpAck(n) => tcp_u32(p, 8).is_some_and(|v| n.test(u64::from(v))),
        PacketCheck::IpOpts(want) => {
            !p.ip_v6
                && super::packet::ipv4_option_flags(p.ip_header.get(20..).unwrap_or(&[])) & want
                    != 0
        }
    }
}

fn flow_count_ok(dir: FlowDir, counts: [u64; 2], n: &NumCmp) -> bool {
    let [to_server, to_client] = counts;
    match dir {
        FlowDir::ToServer => n.test(to_server),
        FlowDir::ToClient => n.test(to_client),
        FlowDir::Either => n.test(to_server) || n.test(to_client),
    }
}

/// The 32-bit field at `off` of the packet's TCP header (`None` without one: other protocols,
/// fragments, pseudo packets).
fn tcp_u32(p: &PacketView<'_>, off: usize) -> Option<u32> {
    if p.proto != IpProto::Tcp {
        return None;
    }
    let b: [u8; 4] = p.l4_header.get(off..off + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

fn is_echo(p: &PacketView<'_>, t: u8) -> bool {
    if p.ip_v6 {
        matches!(t, 128 | 129)
    } else {
        matches!(t, 0 | 8)
    }
}

/// Does rule `r` match? `head_known`: its group already proved the ports, addresses and `flow`
/// options right for this packet (see [`Groups::head_known`]).
#[cfg(test)]
pub(super) fn verify(
    r: &Rule,
    p: &PacketView<'_>,
    bufs: &dyn Buffers,
    fs: &FlowRuleState,
    head_known: bool,
) -> bool {
    verify_in(r, p, bufs, fs, head_known, &mut false)
}

/// [`verify`], also telling whether a payload chain matched the reassembled stream (Suricata's
/// stream match, whose `pass`/`drop` applies to the flow).
fn verify_in(
    r: &Rule,
    p: &PacketView<'_>,
    bufs: &dyn Buffers,
    fs: &FlowRuleState,
    head_known: bool,
    in_stream: &mut bool,
) -> bool {
    if head_known {
        if !proto_ok(r, p) {
            return false;
        }
    } else if !header_ok(r, p) || !flow_ok(r, p) {
        return false;
    }
    rest_ok(r, p, bufs, fs, in_stream)
}

/// The rule's `hostbits:isset`/`isnotset` conditions hold at `now`.
fn hostbits_ok(
    r: &Rule,
    p: &PacketView<'_>,
    hosts: &super::hostbits::HostBits,
    now: Timestamp,
) -> bool {
    r.hostbits.iter().all(|h| {
        let host = match h.side {
            HostSide::Src => p.src,
            HostSide::Dst => p.dst,
        };
        match h.op {
            HostbitOp::IsSet => hosts.is_set(host, h.bit, now),
            HostbitOp::IsNotSet => !hosts.is_set(host, h.bit, now),
            HostbitOp::Set | HostbitOp::Unset | HostbitOp::Toggle => true,
        }
    })
}

fn flow_ok(r: &Rule, p: &PacketView<'_>) -> bool {
    let f = &r.flow;
    if f.established.is_some() || f.to_server.is_some() {
        if !p.flow.has_flow && !f.stateless {
            return false;
        }
        if f.established.is_some_and(|e| e != p.flow.established)
            || f.to_server.is_some_and(|t| t != p.flow.to_server)
        {
            return false;
        }
    }
    true
}

fn rest_ok(
    r: &Rule,
    p: &PacketView<'_>,
    bufs: &dyn Buffers,
    fs: &FlowRuleState,
    in_stream: &mut bool,
) -> bool {
    if !r.packet.iter().all(|c| packet_ok(c, p)) {
        return false;
    }
    for fb in &r.flowbits {
        let ok = match fb {
            FlowbitCmd::IsSetAll(ids) => ids.iter().all(|b| fs.is_set(*b)),
            FlowbitCmd::IsSetAny(ids) => ids.iter().any(|b| fs.is_set(*b)),
            FlowbitCmd::IsNotSet(ids) => ids.iter().all(|b| !fs.is_set(*b)),
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    // `byte_extract` values, shared by the rule's chains in order.
    let mut vars = [0u64; MAX_BYTE_VARS];
    // A transactional rule reads the request's buffers of the transaction too.
    let tx_both = r.direction == Direction::Tx;
    let nth = |kind: BufferKind, n: usize| {
        if tx_both && kind.side() == Side::ToServer {
            bufs.get_request(kind, n)
        } else {
            bufs.get_nth(kind, n)
        }
    };
    for ch in &r.chains {
        if bufs.no_payload()
            && matches!(
                ch.buffer,
                BufferKind::Payload | BufferKind::Packet | BufferKind::Stream
            )
        {
            return false;
        }
        // A second buffer is tried when the first does not match (the packet after the stream).
        // Whether `buf` is the reassembled stream.
        let mut stream_buf = false;
        let (buf, alt) = match ch.buffer {
            BufferKind::Payload => {
                let stream_only = r.proto == RuleProto::TcpStream || r.flow.stream == Some(true);
                let packet_only = r.proto == RuleProto::TcpPkt
                    || r.flow.stream == Some(false)
                    || p.proto != IpProto::Tcp;
                let stream = bufs.get(BufferKind::Stream);
                stream_buf = !packet_only && stream.is_some();
                if packet_only {
                    (Some(p.payload), None)
                } else if stream_only {
                    (stream, None)
                } else if bufs.payload_in_stream() {
                    let alt = r.packet_too.then_some(p.payload);
                    (stream, alt)
                } else {
                    (stream.or(Some(p.payload)), None)
                }
            }
            BufferKind::Packet => (Some(p.payload), None),
            other if other.is_header() => (super::packet::header_buffer(other, p), None),
            other if other.is_multi() => {
                // Each instance alone: the whole chain must match within one.
                let mut n = 0;
                let mut hit = false;
                while let Some(b) = nth(other, n) {
                    if chain_ok(ch, b, &mut vars) {
                        hit = true;
                        break;
                    }
                    n += 1;
                }
                if !hit {
                    return false;
                }
                continue;
            }
            other => (nth(other, 0), None),
        };
        if buf.is_some_and(|b| chain_ok(ch, b, &mut vars)) {
            *in_stream |= stream_buf || ch.buffer == BufferKind::Stream;
        } else if !alt.is_some_and(|b| chain_ok(ch, b, &mut vars)) {
            return false;
        }
    }
    true
}

fn chain_ok(ch: &Chain, buf: &[u8], vars: &mut detect::ByteVars) -> bool {
    if ch.url_decode {
        let mut v = Vec::with_capacity(buf.len() + 1);
        if ch.dotprefix {
            v.push(b'.');
        }
        detect::url_decode(buf, &mut v);
        return detect::match_chain_vars(&ch.steps, &v, vars);
    }
    if ch.dotprefix {
        let mut v = Vec::with_capacity(buf.len() + 1);
        v.push(b'.');
        v.extend_from_slice(buf);
        detect::match_chain_vars(&ch.steps, &v, vars)
    } else {
        detect::match_chain_vars(&ch.steps, buf, vars)
    }
}
