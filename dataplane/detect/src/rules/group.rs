//! Signature groups (Suricata's "signature group heads"): the rules that can apply to one flow
//! direction, with their own prefilter automata.
//!
//! A flow direction is classified once: protocol class, flow facts (`has_flow`, `established`,
//! `to_server`), each address against the address sets rules use most (`$HOME_NET`,
//! `$EXTERNAL_NET`, ... at most [`MAX_CLASSIFIED_SETS`]), each port to its port class (ports
//! every rule's port set treats alike). That [`GroupKey`] selects the rules whose header and
//! `flow` options can accept such packets; a rule is left out only when it can never match them,
//! so the group is exact (its rules are still fully verified per packet).
//!
//! A group has two parts, each with its own automata: the rules with `any` ports (most of ET
//! Open; the part depends on the key without ports, so few are compiled) and the rules naming
//! ports (the part for this port pair). Parts are compiled on first use, shared between keys with
//! the same rules, and kept in a bounded cache; the caller keeps the group handle in its
//! [`FlowRuleState`](super::FlowRuleState), so per packet there is no lookup and no automaton of
//! rules that cannot apply.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::ast::{BufferKind, Direction, KindSet, Rule, RuleProto};
use super::engine::{CLASSES, PortGroups, Prefilter, PrefilterTable, classes_of};
use super::mpm::PairUnion;
use super::vars::{AddrSet, Bound, IntervalSet, PortSet};

/// Address sets an address is classified against (the most used ones; others are checked per
/// packet as before).
pub const MAX_CLASSIFIED_SETS: usize = 64;

/// Automata memory the cache may hold; past it the cache starts again (flows keep the handles
/// they have, so a part lives as long as a flow uses it).
pub const MAX_CACHE_BYTES: usize = 256 << 20;

/// Keys remembered; past it the cache starts again.
pub const MAX_KEYS: usize = 16_384;

/// What a rule's address field is, for grouping.
#[derive(Clone, Copy, Debug)]
enum AddrClass {
    /// `any`.
    Any,
    /// One of the classified sets (bit index).
    Bit(u8),
    /// Something else: kept in every group, checked per packet.
    Other,
}

impl AddrClass {
    fn may(self, sig: u64) -> bool {
        match self {
            AddrClass::Any | AddrClass::Other => true,
            AddrClass::Bit(b) => sig >> b & 1 == 1,
        }
    }
}

/// The facts of one flow direction that select its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupKey {
    class: u8,
    has_flow: bool,
    established: bool,
    to_server: bool,
    src: u64,
    dst: u64,
    sport: u32,
    dport: u32,
}

impl GroupKey {
    /// The (source, destination) address classes.
    pub fn addr_sigs(&self) -> (u64, u64) {
        (self.src, self.dst)
    }
}

/// Where the intervals that every one of `sets` treats alike begin: the type's minimum, each
/// interval's start and the value after its end; sorted, without repeats.
fn interval_starts<'a, T: Bound + 'a>(sets: impl Iterator<Item = &'a [(T, T)]>) -> Vec<T> {
    let mut starts = vec![T::MIN];
    for ranges in sets {
        for &(lo, hi) in ranges {
            starts.push(lo);
            starts.extend(hi.succ());
        }
    }
    starts.sort_unstable();
    starts.dedup();
    starts
}

/// The value of the interval holding `v`: `values[i]` belongs to the interval that begins at
/// `starts[i]` (sorted, the first the type's minimum) and ends before the next start.
fn interval_value<T: Copy + Ord, V: Copy + Default>(starts: &[T], values: &[V], v: T) -> V {
    let i = starts.partition_point(|&s| s <= v);
    i.checked_sub(1)
        .and_then(|i| values.get(i))
        .copied()
        .unwrap_or_default()
}

/// The classified address sets cut the address space into intervals, each inside or outside
/// every set: bit `i` of an interval's signature is set if it lies in set `i`. An address's
/// signature is then one binary search, where testing each set was one search per set (up to
/// [`MAX_CLASSIFIED_SETS`]) for every new flow direction.
#[derive(Debug, Default)]
struct AddrSigs {
    /// Start of each IPv4 interval, sorted, the first is 0.
    v4_starts: Vec<u32>,
    v4_sigs: Vec<u64>,
    /// The same for IPv6.
    v6_starts: Vec<u128>,
    v6_sigs: Vec<u64>,
}

impl AddrSigs {
    fn new(sets: &[AddrSet]) -> AddrSigs {
        let v4: Vec<&IntervalSet<u32>> = sets.iter().map(AddrSet::v4).collect();
        let v6: Vec<&IntervalSet<u128>> = sets.iter().map(AddrSet::v6).collect();
        let (v4_starts, v4_sigs) = Self::cut(&v4);
        let (v6_starts, v6_sigs) = Self::cut(&v6);
        AddrSigs {
            v4_starts,
            v4_sigs,
            v6_starts,
            v6_sigs,
        }
    }

    /// The intervals every set treats alike: their starts and signatures.
    fn cut<T: Bound>(sets: &[&IntervalSet<T>]) -> (Vec<T>, Vec<u64>) {
        let starts = interval_starts(sets.iter().map(|s| s.ranges()));
        let sigs = starts
            .iter()
            .map(|&v| {
                sets.iter()
                    .enumerate()
                    .filter(|(_, set)| set.contains(v))
                    .fold(0u64, |sig, (i, _)| {
                        sig | u32::try_from(i)
                            .ok()
                            .and_then(|i| 1u64.checked_shl(i))
                            .unwrap_or(0)
                    })
            })
            .collect();
        (starts, sigs)
    }

    /// Bit `i` set if `a` is in set `i`, as [`AddrSet::contains`] has it (an IPv4-mapped IPv6
    /// address is in a set holding it as IPv6 or its IPv4 address as IPv4).
    fn sig(&self, a: IpAddr) -> u64 {
        match a {
            IpAddr::V4(v4) => interval_value(&self.v4_starts, &self.v4_sigs, u32::from(v4)),
            IpAddr::V6(v6) => {
                let own = interval_value(&self.v6_starts, &self.v6_sigs, u128::from(v6));
                match v6.to_ipv4_mapped() {
                    Some(m) => own | interval_value(&self.v4_starts, &self.v4_sigs, u32::from(m)),
                    None => own,
                }
            }
        }
    }
}

/// The rules of a flow direction: the port-less part and the part for its ports.
#[derive(Debug)]
pub struct Group {
    /// `[any ports, named ports]`.
    pub(super) parts: [Arc<Part>; 2],
    /// Per buffer kind where both parts have a prefilter: the union of their pair bitmaps.
    pub(super) unions: Vec<Option<PairUnion>>,
    /// The same for the parts' `packet_payload` prefilters.
    pub(super) packet_union: Option<PairUnion>,
    /// The kinds a part has a prefilter for.
    pub(super) kinds: KindSet,
}

impl Group {
    fn new(parts: [Arc<Part>; 2]) -> Group {
        let [a, b] = &parts;
        let union = |x: Option<&Prefilter>, y: Option<&Prefilter>| match (x, y) {
            (Some(x), Some(y)) => Some(PairUnion::new(&x.ac, &y.ac)),
            _ => None,
        };
        let unions = a
            .prefilters
            .iter()
            .zip(&b.prefilters)
            .map(|(x, y)| union(x.as_ref(), y.as_ref()))
            .collect();
        let packet_union = union(a.packet_payload.as_ref(), b.packet_payload.as_ref());
        let has =
            |p: &Part, k: BufferKind| p.prefilters.get(k.index()).is_some_and(Option::is_some);
        let kinds = BufferKind::ALL
            .into_iter()
            .filter(|&k| has(a, k) || has(b, k))
            .collect();
        Group {
            parts,
            unions,
            packet_union,
            kinds,
        }
    }

    /// Memory of the union bitmaps.
    fn bytes(&self) -> usize {
        self.unions
            .iter()
            .chain([&self.packet_union])
            .flatten()
            .map(PairUnion::memory_usage)
            .sum()
    }
}

/// Some rules and their prefilters.
#[derive(Debug)]
pub struct Part {
    /// Prefilter per buffer kind (Packet and Stream fold into Payload).
    pub(super) prefilters: Vec<Option<Prefilter>>,
    /// The payload patterns of the rules that can still match a TCP packet's own payload once
    /// it went into the reassembled stream ([`reads_packet`]): IDS timing scans such a payload
    /// with this, and the stream with the whole payload prefilter, instead of both with it.
    pub(super) packet_payload: Option<Prefilter>,
    /// Rules without a fast pattern, grouped by port.
    pub(super) always: PortGroups,
    /// Rules in the part.
    pub(super) rules: usize,
    /// Memory of its automata.
    pub(super) bytes: usize,
}

impl Cache {
    /// Start again (flows keep the groups and parts they hold).
    fn clear(&mut self) {
        self.by_rules.clear();
        self.by_portless.clear();
        self.by_key.clear();
        self.by_parts.clear();
        self.bytes = 0;
    }
}

#[derive(Debug, Default)]
struct Cache {
    /// Looked up for every inspected packet: hashed with foldhash rather than SipHash (the keys
    /// are classes computed from the packet, not chosen by it).
    by_key: HashMap<GroupKey, Arc<Group>, foldhash::fast::FixedState>,
    /// Port-less part by key without ports.
    by_portless: HashMap<GroupKey, Arc<Part>, foldhash::fast::FixedState>,
    by_rules: HashMap<Vec<u32>, Arc<Part>>,
    /// Group by its parts (their addresses: the group holds them, so no other part can have
    /// one while the entry exists): keys with the same parts share the group and its unions.
    by_parts: HashMap<(usize, usize), Arc<Group>, foldhash::fast::FixedState>,
    /// Automata memory of the parts in `by_rules`, and union bitmaps of the groups in `by_parts`.
    bytes: usize,
}

/// Classification tables and the group cache of a rule set.
#[derive(Debug)]
pub struct Groups {
    /// Start of each port interval, sorted, the first is 0.
    port_starts: Vec<u16>,
    /// Port interval -> port class.
    port_class: Vec<u32>,
    /// Port class -> one port of it.
    class_port: Vec<u16>,
    /// Classified address sets: an address's bit set in one search.
    addrs: AddrSigs,
    /// Per rule: (source, destination) address classes.
    heads: Vec<(AddrClass, AddrClass)>,
    /// Per rule: being in the group of a packet proves its ports, addresses and `flow` options.
    known: Vec<bool>,
    /// Per protocol class: the rules that are not IP-only, in evaluation order, `[any ports,
    /// named ports]`.
    by_class: [[Vec<u32>; 2]; CLASSES],
    cache: Mutex<Cache>,
}

impl Groups {
    /// Classification tables for these rules (`grouped[i]`: rule `i` goes through groups).
    pub fn new(rules: &[Rule], grouped: &[bool]) -> Groups {
        let members = || {
            rules
                .iter()
                .zip(grouped)
                .filter(|(_, g)| **g)
                .map(|(r, _)| r)
        };
        // Ports: every boundary of every port set cuts an interval; intervals that every set
        // treats alike share a class.
        let mut sets: Vec<&PortSet> = members().flat_map(|r| [&r.sport, &r.dport]).collect();
        sets.sort_unstable_by(|a, b| a.ranges().cmp(b.ranges()));
        sets.dedup();
        let starts = interval_starts(sets.iter().map(|s| s.ranges()));
        let words = sets.len().div_ceil(64);
        let mut sig_class: HashMap<Vec<u64>, u32> = HashMap::new();
        let mut port_class = Vec::with_capacity(starts.len());
        let mut class_port = Vec::new();
        for &p in &starts {
            let mut sig = vec![0u64; words];
            for (j, s) in sets.iter().enumerate() {
                if s.contains(p)
                    && let Some(w) = sig.get_mut(j / 64)
                {
                    *w |= 1 << (j % 64);
                }
            }
            let next = u32::try_from(sig_class.len()).unwrap_or(u32::MAX);
            let c = *sig_class.entry(sig).or_insert_with(|| {
                class_port.push(p);
                next
            });
            port_class.push(c);
        }
        // Addresses: the most used sets other than `any`.
        let mut seen: HashMap<&AddrSet, usize> = HashMap::new();
        let mut top: Vec<(&AddrSet, usize)> = Vec::new();
        for r in members() {
            for a in [&r.src, &r.dst] {
                if a.is_any() {
                    continue;
                }
                let i = *seen.entry(a).or_insert_with(|| {
                    top.push((a, 0));
                    top.len() - 1
                });
                if let Some(t) = top.get_mut(i) {
                    t.1 += 1;
                }
            }
        }
        // Most used first, ties in order of first use (deterministic).
        top.sort_by_key(|t| std::cmp::Reverse(t.1));
        top.truncate(MAX_CLASSIFIED_SETS);
        let addrs: Vec<AddrSet> = top.iter().map(|(a, _)| (*a).clone()).collect();
        let class = |a: &AddrSet| {
            if a.is_any() {
                return AddrClass::Any;
            }
            match addrs.iter().position(|x| x == a) {
                Some(i) => u8::try_from(i).map_or(AddrClass::Other, AddrClass::Bit),
                None => AddrClass::Other,
            }
        };
        let heads: Vec<(AddrClass, AddrClass)> = rules
            .iter()
            .map(|r| (class(&r.src), class(&r.dst)))
            .collect();
        // Port classes are exact for every rule, address classes for the classified sets; `<>`
        // rules may apply either way round, so the per-packet check must pick the way.
        let known = rules
            .iter()
            .zip(&heads)
            .zip(grouped)
            .map(|((r, (s, d)), g)| {
                *g && r.direction == Direction::To
                    && !matches!(s, AddrClass::Other)
                    && !matches!(d, AddrClass::Other)
            })
            .collect();
        let mut by_class: [[Vec<u32>; 2]; CLASSES] = Default::default();
        for (i, (r, g)) in rules.iter().zip(grouped).enumerate() {
            if !*g {
                continue;
            }
            let idx = u32::try_from(i).unwrap_or(u32::MAX);
            let named = usize::from(!(r.sport.is_any() && r.dport.is_any()));
            for &c in classes_of(r.proto) {
                if let Some(l) = by_class.get_mut(c).and_then(|l| l.get_mut(named)) {
                    l.push(idx);
                }
            }
        }
        Groups {
            port_starts: starts,
            port_class,
            class_port,
            addrs: AddrSigs::new(&addrs),
            heads,
            known,
            by_class,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Rule `idx` is in a group only for packets whose ports, addresses and flow facts it
    /// accepts: the caller need not check them again.
    pub fn head_known(&self, idx: usize) -> bool {
        self.known.get(idx).copied().unwrap_or(false)
    }

    fn port_class(&self, p: u16) -> u32 {
        interval_value(&self.port_starts, &self.port_class, p)
    }

    fn addr_sig(&self, a: IpAddr) -> u64 {
        self.addrs.sig(a)
    }

    /// The key of a packet's flow direction.
    #[allow(clippy::too_many_arguments)]
    /// `sigs`: the (source, destination) address classes when already known for these addresses.
    pub fn key(
        &self,
        sigs: Option<(u64, u64)>,
        class: usize,
        has_flow: bool,
        established: bool,
        to_server: bool,
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
    ) -> GroupKey {
        GroupKey {
            class: u8::try_from(class).unwrap_or(u8::MAX),
            has_flow,
            established,
            to_server,
            src: sigs.map_or_else(|| self.addr_sig(src), |s| s.0),
            dst: sigs.map_or_else(|| self.addr_sig(dst), |s| s.1),
            sport: self.port_class(sport),
            dport: self.port_class(dport),
        }
    }

    /// Could rule `idx` match a packet with this key? False only if it never can.
    fn may_apply(&self, r: &Rule, idx: usize, k: &GroupKey) -> bool {
        let f = &r.flow;
        if f.established.is_some() || f.to_server.is_some() {
            if !k.has_flow && !f.stateless {
                return false;
            }
            if f.established.is_some_and(|e| e != k.established)
                || f.to_server.is_some_and(|t| t != k.to_server)
            {
                return false;
            }
        }
        let Some(&(src, dst)) = self.heads.get(idx) else {
            return true;
        };
        let sp = self.class_port.get(k.sport as usize).copied().unwrap_or(0);
        let dp = self.class_port.get(k.dport as usize).copied().unwrap_or(0);
        let fwd =
            || r.sport.contains(sp) && r.dport.contains(dp) && src.may(k.src) && dst.may(k.dst);
        let rev =
            || r.sport.contains(dp) && r.dport.contains(sp) && src.may(k.dst) && dst.may(k.src);
        match r.direction {
            Direction::To => fwd(),
            Direction::Both => fwd() || rev(),
            // A transactional rule matches on packets towards the client only (it needs the
            // response's buffers), its header the other way round.
            Direction::Tx => !k.to_server && rev(),
        }
    }

    /// The rules of list `named` (0: any ports, 1: named ports) that may apply with this key.
    fn members(&self, k: &GroupKey, named: usize, rules: &[Rule]) -> Vec<u32> {
        let Some(list) = self
            .by_class
            .get(usize::from(k.class))
            .and_then(|l| l.get(named))
        else {
            return Vec::new();
        };
        list.iter()
            .copied()
            .filter(|&i| {
                rules
                    .get(i as usize)
                    .is_some_and(|r| self.may_apply(r, i as usize, k))
            })
            .collect()
    }

    /// The part for these rules: cached, or compiled now (outside the lock).
    fn part(&self, members: Vec<u32>, rules: &[Rule], fast: &[FastPat]) -> Arc<Part> {
        if let Some(p) = self.lock().by_rules.get(&members) {
            return Arc::clone(p);
        }
        let p = Arc::new(Part::build(&members, rules, fast));
        let mut c = self.lock();
        if let Some(known) = c.by_rules.get(&members) {
            return Arc::clone(known);
        }
        if c.bytes + p.bytes > MAX_CACHE_BYTES {
            c.clear();
        }
        c.bytes += p.bytes;
        c.by_rules.insert(members, Arc::clone(&p));
        p
    }

    /// The group of a key: cached, or assembled (and its parts compiled) now.
    pub fn get(&self, k: &GroupKey, rules: &[Rule], fast: &[FastPat]) -> Arc<Group> {
        let portless = GroupKey {
            sport: 0,
            dport: 0,
            ..*k
        };
        // The port-less part is looked up only for a key not cached yet: a packet of a known
        // key pays one lookup.
        let any_ports = {
            let c = self.lock();
            if let Some(g) = c.by_key.get(k) {
                return Arc::clone(g);
            }
            c.by_portless.get(&portless).cloned()
        };
        let any_ports = match any_ports {
            Some(p) => p,
            None => {
                let p = self.part(self.members(k, 0, rules), rules, fast);
                self.lock().by_portless.insert(portless, Arc::clone(&p));
                p
            }
        };
        let named = self.part(self.members(k, 1, rules), rules, fast);
        let by = (Arc::as_ptr(&any_ports).addr(), Arc::as_ptr(&named).addr());
        let known = self.lock().by_parts.get(&by).cloned();
        let g = match known {
            Some(g) => g,
            None => {
                let g = Arc::new(Group::new([any_ports, named]));
                let mut c = self.lock();
                if c.bytes + g.bytes() > MAX_CACHE_BYTES || c.by_parts.len() >= MAX_KEYS {
                    c.clear();
                }
                c.bytes += g.bytes();
                Arc::clone(c.by_parts.entry(by).or_insert(g))
            }
        };
        let mut c = self.lock();
        if c.by_key.len() >= MAX_KEYS {
            c.by_key.clear();
        }
        Arc::clone(c.by_key.entry(*k).or_insert(g))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        match self.cache.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// (keys, compiled parts) in the cache now.
    pub fn cached(&self) -> (usize, usize) {
        let c = self.lock();
        (c.by_key.len(), c.by_rules.len())
    }
}

/// Whether a rule's payload content can match a TCP packet's own payload when that payload
/// went into the reassembled stream (IDS timing): it reads the packet buffer (`pkt_data`), is a
/// `tcp-pkt` or `flow:no_stream` rule, or has packet keywords (`flags`, `dsize`, ...) or an
/// anchored payload content ([`Rule::packet_too`]) and is not stream-only (the engine's `rest_ok` tries the packet after the stream for those). Every
/// other payload rule reads the stream only, whose bytes the whole prefilter scans.
pub(super) fn reads_packet(r: &Rule) -> bool {
    let stream_only = r.proto == RuleProto::TcpStream || r.flow.stream == Some(true);
    r.chains.iter().any(|c| c.buffer == BufferKind::Packet)
        || r.proto == RuleProto::TcpPkt
        || r.flow.stream == Some(false)
        || (!stream_only && r.packet_too)
}

/// A rule's fast pattern: (prefilter buffer, lowercased bytes).
pub type FastPat = Option<(BufferKind, Vec<u8>)>;

impl Part {
    /// Compile the prefilters of these rules.
    fn build(members: &[u32], rules: &[Rule], fast: &[FastPat]) -> Part {
        let mut pats: Vec<PrefilterTable> =
            (0..BufferKind::COUNT).map(|_| Default::default()).collect();
        let mut packet = PrefilterTable::default();
        let mut always = Vec::new();
        for &idx in members {
            match fast.get(idx as usize).and_then(Option::as_ref) {
                Some((kind, pat)) => {
                    if let Some(t) = pats.get_mut(kind.index()) {
                        t.add(pat, idx);
                    }
                    if *kind == BufferKind::Payload
                        && rules.get(idx as usize).is_some_and(reads_packet)
                    {
                        packet.add(pat, idx);
                    }
                }
                None => always.push(idx),
            }
        }
        let prefilters: Vec<Option<Prefilter>> = pats.into_iter().map(|t| t.build(rules)).collect();
        let packet_payload = packet.build(rules);
        Part {
            bytes: prefilters
                .iter()
                .chain(core::iter::once(&packet_payload))
                .flatten()
                .map(Prefilter::memory)
                .sum(),
            prefilters,
            packet_payload,
            always: PortGroups::build(&always, rules),
            rules: members.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use proptest::prelude::*;

    use super::super::engine::verify;
    use super::super::vars::Vars;
    use super::super::*;
    use super::{AddrSet, AddrSigs, MAX_CLASSIFIED_SETS};
    use crate::decode::IpProto;
    use crate::time::Timestamp;

    /// Headers and flow options that groups split on, each rule with a content in the payload
    /// or none at all.
    const RULES: &str = r#"
alert tcp $HOME_NET any -> $EXTERNAL_NET 80 (msg:"a"; flow:established,to_server; content:"abc"; sid:1;)
alert tcp $EXTERNAL_NET 80 -> $HOME_NET any (msg:"b"; flow:established,to_client; content:"abc"; sid:2;)
alert tcp any any <> any [80,443] (msg:"c"; content:"bcd"; sid:3;)
alert tcp $HOME_NET any -> $EXTERNAL_NET ![80,443] (msg:"d"; content:"abc"; sid:4;)
alert udp any any -> any 53 (msg:"e"; content:"abc"; sid:5;)
alert tcp [10.0.0.0/8,!10.1.0.0/16] any -> any any (msg:"f"; flow:to_server; content:"xyz"; sid:6;)
alert tcp $EXTERNAL_NET any -> $HOME_NET 1024: (msg:"g"; flow:not_established; sid:7;)
alert ip $HOME_NET any -> any any (msg:"h"; content:"abc"; sid:8;)
alert tcp any 1000:2000 <> $HOME_NET 443 (msg:"i"; flow:stateless; sid:9;)
alert tcp 192.168.1.0/24 any -> any any (msg:"j"; flags:S; sid:10;)
alert udp $EXTERNAL_NET any -> $HOME_NET any (msg:"k"; dsize:>2; sid:11;)
alert tcp any any -> any 80 (msg:"l"; flow:to_server; content:"xyz"; sid:12;)
"#;

    fn rule_set() -> RuleSet {
        let mut b = RuleSetBuilder::default();
        let rep = b.add_text("g.rules", RULES);
        assert!(rep.skipped.is_empty(), "{:?}", rep.skipped);
        b.build()
    }

    fn inspect(rs: &RuleSet, p: &PacketView<'_>, fs: &mut FlowRuleState) -> Vec<u32> {
        let mut out = Vec::new();
        rs.inspect(
            p,
            &NoBuffers,
            fs,
            &mut ThresholdState::new(),
            Timestamp(0),
            &mut out,
        );
        let mut v: Vec<u32> = out.iter().map(|m| m.sid).collect();
        v.sort_unstable();
        v
    }

    /// Every rule verified on its own: what grouping must reproduce.
    fn reference(rs: &RuleSet, p: &PacketView<'_>) -> Vec<u32> {
        let fs = FlowRuleState::new();
        let mut v: Vec<u32> = rs
            .rules()
            .iter()
            .filter(|r| verify(r, p, &NoBuffers, &fs, false))
            .map(|r| r.sid)
            .collect();
        v.sort_unstable();
        v
    }

    const ADDRS: [&str; 6] = [
        "10.0.0.1",
        "10.1.2.3",
        "192.168.1.7",
        "8.8.8.8",
        "172.16.5.5",
        "2001:db8::1",
    ];
    const PORTS: [u16; 8] = [80, 443, 53, 1500, 40000, 1024, 1023, 0];
    const PAYLOADS: [&[u8]; 4] = [b"", b"xxabcdxx", b"..xyz..", b"ab"];

    fn view(
        (s, d, sp, dp, pl): (usize, usize, usize, usize, usize),
        (udp, has_flow, est, ts, syn): (bool, bool, bool, bool, bool),
    ) -> PacketView<'static> {
        let addr = |i: usize| -> IpAddr {
            ADDRS
                .get(i)
                .and_then(|a| a.parse().ok())
                .unwrap_or(IpAddr::from([0, 0, 0, 0]))
        };
        PacketView {
            proto: if udp { IpProto::Udp } else { IpProto::Tcp },
            src: addr(s),
            dst: addr(d),
            src_port: PORTS.get(sp).copied().unwrap_or(0),
            dst_port: PORTS.get(dp).copied().unwrap_or(0),
            ttl: 64,
            tcp_flags: (!udp).then_some(if syn { 0x02 } else { 0x18 }),
            icmp: None,
            fragbits: (false, false, false),
            ip_v6: false,
            payload: PAYLOADS.get(pl).copied().unwrap_or(b""),
            ip_header: &[],
            l4_header: &[],
            stream_size: None,
            flow_counts: None,
            stream_events: 0,
            flow: FlowView {
                has_flow,
                established: est,
                to_server: ts,
            },
            app_proto: None,
            events: 0,
            vlan: &[],
            flow_age: None,
        }
    }

    proptest! {
        /// Grouping only leaves out rules that cannot match: the matches are those of checking
        /// every rule, whether the flow state is fresh or carries groups of other packets.
        #[test]
        fn groups_are_exact(
            pkts in proptest::collection::vec(
                ((0..6usize, 0..6usize, 0..8usize, 0..8usize, 0..4usize),
                 any::<(bool, bool, bool, bool, bool)>()),
                1..12,
            )
        ) {
            let rs = rule_set();
            let mut shared = FlowRuleState::new();
            for (a, b) in pkts {
                let p = view(a, b);
                let want = reference(&rs, &p);
                prop_assert_eq!(&inspect(&rs, &p, &mut FlowRuleState::new()), &want);
                prop_assert_eq!(&inspect(&rs, &p, &mut shared), &want);
            }
        }
    }

    /// An address in sets of CIDRs near it: inside, outside, on the edges.
    fn near(v4: bool, base: u32, off: i64) -> IpAddr {
        let v = u32::try_from((i64::from(base) + off).clamp(0, i64::from(u32::MAX))).unwrap_or(0);
        if v4 {
            IpAddr::from(v.to_be_bytes())
        } else {
            // Half of the IPv6 cases IPv4-mapped, half in 2001:db8::/32.
            let x = if v % 2 == 0 {
                std::net::Ipv4Addr::from(v).to_ipv6_mapped().to_bits()
            } else {
                0x2001_0db8_u128 << 96 | u128::from(v)
            };
            IpAddr::from(x.to_be_bytes())
        }
    }

    proptest! {
        /// One search over the cut intervals gives the bits that testing each set gives.
        #[test]
        fn addr_sigs_match_each_set(
            sets in proptest::collection::vec(proptest::collection::vec(
                (any::<bool>(), any::<bool>(), 0u32..4, 8u8..33, any::<bool>()), 1..4), 1..70),
            addrs in proptest::collection::vec((any::<bool>(), 0u32..4, -300i64..300), 1..40),
        ) {
            // Bases close together so that the sets overlap and nest.
            let base = |b: u32| 0x0a00_0000 + b * 0x100;
            let vars = Vars::default();
            let sets: Vec<AddrSet> = sets
                .iter()
                .filter_map(|cidrs| {
                    let items: Vec<String> = cidrs
                        .iter()
                        .map(|&(v4, neg, b, len, mapped)| {
                            let a = base(b);
                            let text = if v4 {
                                format!("{}/{len}", std::net::Ipv4Addr::from(a))
                            } else if mapped {
                                format!("::ffff:{}/{}", std::net::Ipv4Addr::from(a), u32::from(len) + 96)
                            } else {
                                format!("2001:db8::{:x}:{:x}/{}", a >> 16, a & 0xffff, u32::from(len) + 96)
                            };
                            if neg { format!("!{text}") } else { text }
                        })
                        .collect();
                    vars.address(&format!("[{}]", items.join(","))).ok()
                })
                .collect();
            let sets: Vec<AddrSet> = sets.into_iter().take(MAX_CLASSIFIED_SETS).collect();
            let sigs = AddrSigs::new(&sets);
            for (v4, b, off) in addrs {
                let a = near(v4, base(b), off);
                let want = sets
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.contains(a))
                    .fold(0u64, |sig, (i, _)| sig | 1 << i);
                prop_assert_eq!(sigs.sig(a), want, "{}", a);
            }
        }
    }

    #[test]
    fn ports_no_rule_names_share_one_group() {
        let rs = rule_set();
        // Two ephemeral client ports no rule names: same key, one group.
        let a = view((2, 3, 4, 0, 1), (false, true, true, true, false));
        let mut b = a;
        b.src_port = 40001;
        assert_eq!(inspect(&rs, &a, &mut FlowRuleState::new()), vec![1, 3, 8]);
        assert_eq!(inspect(&rs, &b, &mut FlowRuleState::new()), vec![1, 3, 8]);
        // One key; its two parts (rules with any ports, rules naming ports).
        assert_eq!(rs.group_cache(), (1, 2));
        // The server's answer has other rules, so another key and other parts.
        let r = view((3, 2, 0, 4, 1), (false, true, true, false, false));
        assert_eq!(inspect(&rs, &r, &mut FlowRuleState::new()), vec![2, 3]);
        assert_eq!(rs.group_cache(), (2, 4));
    }

    #[test]
    fn a_flow_state_is_not_fooled_by_a_new_rule_set() {
        let a = rule_set();
        let mut b = RuleSetBuilder::default();
        b.add_text(
            "o.rules",
            "alert tcp any any -> any any (msg:\"o\"; content:\"abc\"; sid:99;)",
        );
        let b = b.build();
        let p = view((2, 3, 4, 0, 1), (false, true, true, true, false));
        let mut fs = FlowRuleState::new();
        assert_eq!(inspect(&a, &p, &mut fs), vec![1, 3, 8]);
        assert_eq!(inspect(&b, &p, &mut fs), vec![99]);
    }

    #[test]
    fn port_classes_merge_ports_rules_treat_alike() {
        let rs = rule_set();
        let g = &rs.groups;
        assert_eq!(g.port_class(40000), g.port_class(50000));
        assert_eq!(g.port_class(1500), g.port_class(1999));
        assert_ne!(g.port_class(1500), g.port_class(40000));
        assert_ne!(g.port_class(80), g.port_class(443));
        assert_ne!(g.port_class(1023), g.port_class(1024));
    }
}
