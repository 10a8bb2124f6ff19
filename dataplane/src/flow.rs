//! The flow table: connections keyed by VLAN scope, protocol and both endpoints, direction-normalised,
//! with TCP state, per-protocol timeouts and a hard cap with eviction.
//!
//! # Caps
//! The table never holds more than [`FlowConfig::max_flows`] entries. When a new flow arrives at
//! the cap, the table first drops flows idle for longer than [`FlowConfig::emergency_idle_us`];
//! if none qualify it evicts the least recently seen of a small sample of entries (hash order is
//! effectively random, so sampling is fair and O(1)). Every eviction is counted.

use core::net::IpAddr;
use hashbrown::HashMap;
use vlan::VlanScope;

use crate::decode::{IpProto, TcpFlags};
use crate::time::Timestamp;

/// Flow table settings.
#[derive(Clone, Copy, Debug)]
pub struct FlowConfig {
    /// Hard cap on tracked flows.
    pub max_flows: usize,
    /// TCP flow that has not completed its handshake.
    pub tcp_new_timeout_us: u64,
    /// Established TCP flow.
    pub tcp_established_timeout_us: u64,
    /// TCP flow after FIN from both sides or RST.
    pub tcp_closed_timeout_us: u64,
    /// UDP flow.
    pub udp_timeout_us: u64,
    /// ICMP and other protocols.
    pub other_timeout_us: u64,
    /// Idle time after which a flow may be dropped early when the table is full.
    pub emergency_idle_us: u64,
}

impl Default for FlowConfig {
    /// Timeouts follow Suricata's defaults (new 60 s / established 600 s / closed 60 s for TCP,
    /// 300 s for established UDP and ICMP), which admins already tune against.
    fn default() -> Self {
        FlowConfig {
            max_flows: 1 << 20,
            tcp_new_timeout_us: 60 * Timestamp::SECOND,
            tcp_established_timeout_us: 600 * Timestamp::SECOND,
            tcp_closed_timeout_us: 60 * Timestamp::SECOND,
            udp_timeout_us: 300 * Timestamp::SECOND,
            other_timeout_us: 300 * Timestamp::SECOND,
            emergency_idle_us: 10 * Timestamp::SECOND,
        }
    }
}

/// Direction-normalised flow key: `a` is the lower endpoint, so both directions hash alike.
///
/// Packed into three aligned words (addresses as 128-bit integers, IPv4 zero-extended, the
/// family, protocol, VLAN scope and both ports in the third): equality is three compares and
/// the hash three word writes, where the `(IpAddr, u16)` tuples it replaces cost a dozen
/// hasher calls and unaligned byte copies per packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FlowKey {
    /// Lower endpoint's address.
    a: u128,
    /// Higher endpoint's address.
    b: u128,
    /// Bits 0..16 port of `a`, 16..32 port of `b`, 32..40 protocol, 40 IPv6, 48..64 reserved;
    /// the VLAN scope in the high word ([`VlanScope::bits`]).
    rest: u128,
}

impl core::hash::Hash for FlowKey {
    /// The three words folded into one 128-bit write, so the table's hasher (foldhash) mixes
    /// once instead of three times in a chain: the hash was a fifth of the flow lookup. For IPv4
    /// the fold keeps every bit apart (`a` in the low 32 bits of the first half, `b` in its high
    /// 32, ports, protocol and family in the second half), except the second VLAN id of a QinQ
    /// scope, which overlaps the port of `a`; IPv6 halves are rotated in. Keys that fold alike
    /// only share a probe sequence: equality still compares the whole key.
    #[inline]
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.folded());
    }
}

pub(crate) use crate::decode::addr_bits;

impl FlowKey {
    /// The key folded into 128 bits for hashing (see the `Hash` impl).
    #[inline]
    fn folded(&self) -> u128 {
        // Truncation intended: the low and high halves of each word.
        #[allow(clippy::cast_possible_truncation)]
        let half = |x: u128| (x as u64, (x >> 64) as u64);
        let (a0, a1) = half(self.a);
        let (b0, b1) = half(self.b);
        let (r0, r1) = half(self.rest);
        let lo = a0 ^ b0.rotate_left(32) ^ a1.rotate_left(16) ^ b1.rotate_left(48);
        let hi = r0 ^ r1.rotate_left(41);
        u128::from(lo) | u128::from(hi) << 64
    }

    /// Normalised key of a packet, and whether the packet travels from `a` to `b`.
    #[inline]
    pub fn new(
        scope: VlanScope,
        proto: IpProto,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
    ) -> (Self, bool) {
        let (s, v6) = addr_bits(src.0);
        let (d, _) = addr_bits(dst.0);
        Self::from_bits(scope, proto, v6, (s, src.1), (d, dst.1))
    }

    /// [`FlowKey::new`] from the addresses as [`addr_bits`] gives them (both of family `v6`):
    /// what a decoded packet holds ([`crate::decode::Ip::src_bits`]).
    #[inline]
    pub fn from_bits(
        scope: VlanScope,
        proto: IpProto,
        v6: bool,
        (s, src_port): (u128, u16),
        (d, dst_port): (u128, u16),
    ) -> (Self, bool) {
        let high = u128::from(scope.bits()) << 64
            | u128::from(u8::from(proto)) << 32
            | u128::from(v6) << 40;
        // Same ordering as `(IpAddr, u16)` within one family, which is all a packet carries.
        let a_to_b = (s, src_port) <= (d, dst_port);
        let (a, b, pa, pb) = if a_to_b {
            (s, d, src_port, dst_port)
        } else {
            (d, s, dst_port, src_port)
        };
        let rest = high | u128::from(pa) | u128::from(pb) << 16;
        (FlowKey { a, b, rest }, a_to_b)
    }

    /// IP protocol number.
    #[inline]
    pub fn proto(&self) -> u8 {
        u8::try_from((self.rest >> 32) & 0xff).unwrap_or(0)
    }

    /// The key's endpoints `(a, b)` as (address, port): for reporting on a flow without one of
    /// its packets at hand (end-of-flow inspection).
    #[cold]
    pub fn endpoints(&self) -> ((IpAddr, u16), (IpAddr, u16)) {
        let v6 = (self.rest >> 40) & 1 == 1;
        let addr = |x: u128| {
            if v6 {
                IpAddr::V6(core::net::Ipv6Addr::from_bits(x))
            } else {
                IpAddr::V4(core::net::Ipv4Addr::from_bits(
                    u32::try_from(x).unwrap_or_default(),
                ))
            }
        };
        let port = |shift: u32| u16::try_from((self.rest >> shift) & 0xffff).unwrap_or(0);
        ((addr(self.a), port(0)), (addr(self.b), port(16)))
    }

    /// The key's VLAN scope (the inverse of [`VlanScope::bits`]).
    #[cold]
    pub fn scope(&self) -> VlanScope {
        let bits = self.rest >> 64;
        let len = usize::try_from(bits & 0xff).unwrap_or(0);
        let ids: Vec<vlan::VlanId> = [(bits >> 8) & 0xffff, (bits >> 24) & 0xffff]
            .iter()
            .take(len)
            .filter_map(|id| vlan::VlanId::new(u16::try_from(*id).unwrap_or(0)).ok())
            .collect();
        VlanScope::from_ids(&ids).unwrap_or(VlanScope::UNTAGGED)
    }
}

/// TCP connection state as seen by a middlebox.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TcpState {
    /// SYN seen from the client.
    SynSent,
    /// SYN/ACK seen from the server.
    SynReceived,
    /// Handshake completed, or picked up midstream.
    Established,
    /// FIN seen from one side.
    Closing,
    /// FIN seen from both sides.
    Closed,
    /// RST seen.
    Reset,
}

/// Per-flow state.
#[derive(Debug)]
pub struct Flow {
    /// Stable id reported in events (EVE `flow_id`).
    pub id: u64,
    /// Whether the client (the endpoint that sent the first packet) is the key's `a` endpoint.
    pub client_is_a: bool,
    /// First packet time.
    pub first_seen: Timestamp,
    /// Last packet time.
    pub last_seen: Timestamp,
    /// Packets client -> server.
    pub pkts_to_server: u64,
    /// Packets server -> client.
    pub pkts_to_client: u64,
    /// Bytes (frame lengths) in both directions.
    pub bytes: u64,
    /// TCP state; `None` for other protocols.
    pub tcp: Option<TcpState>,
    /// FIN seen from the client / from the server.
    fin_client: bool,
    fin_server: bool,
    /// The SVM terminated this flow: later packets are dropped inline.
    pub terminated: bool,
    /// The flow was picked up without its handshake.
    pub midstream: bool,
    /// Where the attack blocker found the MAC binding of the `a` / `b` endpoint's address last
    /// time ([`crate::attack::state::NO_SLOT`] at first): a hint it checks, so an established
    /// flow's packets reach their binding without a hash lookup.
    mac_slot_a: u32,
    mac_slot_b: u32,
    /// Activity scanner state (stream, app layer, rule state); created on the first packet
    /// inspected with a rule set loaded, `None` otherwise.
    pub scan: Option<Box<crate::scanner::FlowScan>>,
}

/// What the table tells the caller about one packet's flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowUpdate {
    /// Flow id.
    pub id: u64,
    /// This packet created the flow.
    pub new_flow: bool,
    /// This packet travels client -> server.
    pub to_server: bool,
    /// This packet completed the TCP three-way handshake.
    pub handshake_completed: bool,
    /// The flow had been terminated by the SVM before this packet.
    pub terminated: bool,
    /// A TCP flow that has not completed its handshake (after this packet).
    pub half_open: bool,
    /// This packet travels from the key's `a` endpoint to `b` (as [`FlowKey::new`] said).
    pub a_to_b: bool,
    /// The attack blocker's MAC-binding slot hint for this packet's source
    /// ([`FlowTable::set_mac_slot`]).
    pub mac_slot: u32,
}

/// 51 bits, like Suricata's flow ids, so JSON consumers keep them exact.
const fn flow_id(counter: u64, salt: u64) -> u64 {
    mix64(counter | salt) & ((1 << 51) - 1)
}

impl Flow {
    /// A flow started by a packet travelling `a_to_b` with these TCP flags (`None` for other
    /// protocols).
    fn start(id: u64, now: Timestamp, a_to_b: bool, tcp_flags: Option<TcpFlags>) -> Flow {
        let (tcp, midstream) = match tcp_flags {
            Some(f) if f.has(TcpFlags::SYN) && !f.has(TcpFlags::ACK) => {
                (Some(TcpState::SynSent), false)
            }
            Some(f) if f.has(TcpFlags::RST) => (Some(TcpState::Reset), true),
            Some(_) => (Some(TcpState::Established), true),
            None => (None, false),
        };
        // A SYN/ACK seen first means the server spoke first on the wire we see; the client is the
        // other end.
        let client_is_a = match tcp_flags {
            Some(f) if f.has(TcpFlags::SYN | TcpFlags::ACK) => !a_to_b,
            _ => a_to_b,
        };
        Flow {
            id,
            client_is_a,
            first_seen: now,
            last_seen: now,
            pkts_to_server: 0,
            pkts_to_client: 0,
            bytes: 0,
            tcp,
            fin_client: false,
            fin_server: false,
            terminated: false,
            midstream,
            mac_slot_a: crate::attack::state::NO_SLOT,
            mac_slot_b: crate::attack::state::NO_SLOT,
            scan: None,
        }
    }
}

/// Counters of the flow table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Flows created.
    pub created: u64,
    /// Flows removed by timeout.
    pub timed_out: u64,
    /// Flows evicted because the table was full.
    pub evicted: u64,
    /// Flows currently tracked.
    pub active: u64,
}

/// Idle time after which a flow expires.
fn timeout(cfg: &FlowConfig, key: &FlowKey, f: &Flow) -> u64 {
    match f.tcp {
        Some(TcpState::SynSent | TcpState::SynReceived) => cfg.tcp_new_timeout_us,
        Some(TcpState::Established | TcpState::Closing) => cfg.tcp_established_timeout_us,
        Some(TcpState::Closed | TcpState::Reset) => cfg.tcp_closed_timeout_us,
        None if key.proto() == 17 => cfg.udp_timeout_us,
        None => cfg.other_timeout_us,
    }
}

/// Sample size for eviction at the cap.
const EVICTION_SAMPLE: usize = 32;

/// How often (packet time) the table sweeps for timed-out flows, at most.
const SWEEP_INTERVAL_US: u64 = 5 * Timestamp::SECOND;

/// A sweep also waits until one packet per this many table slots has been seen since the last
/// one, so its cost (a walk over every slot of the table) stays amortised at a few slots a packet. Timeouts do
/// not depend on it: [`FlowTable::update`] treats a timed-out flow it finds as gone.
const SWEEP_PACKETS_PER_FLOW: usize = 2;

/// The flow table of one worker.
#[derive(Debug)]
pub struct FlowTable {
    cfg: FlowConfig,
    flows: HashMap<FlowKey, Flow, foldhash::fast::FixedState>,
    stats: FlowStats,
    next_sweep: Timestamp,
    packets_since_sweep: usize,
    id_counter: u64,
    id_salt: u64,
    /// Keep the TCP flows with scanner state that leave the table ([`FlowTable::set_retire`]).
    retire: bool,
    retired: Vec<(FlowKey, Flow)>,
}

/// Retired flows held at most: the worker takes them after every packet, so only one sweep's
/// worth waits; beyond this a sweep's flows go without their end-of-flow inspection.
pub const MAX_RETIRED: usize = 1 << 16;

/// SplitMix64 finaliser: turns a counter into a well-spread id (deterministic across runs).
const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl FlowTable {
    /// An empty table. `worker` salts flow ids so workers never hand out the same id.
    pub fn new(cfg: FlowConfig, worker: u16) -> Self {
        FlowTable {
            cfg,
            flows: HashMap::with_capacity_and_hasher(
                cfg.max_flows.min(1 << 16),
                foldhash::fast::FixedState::with_seed(0x5356_4d00),
            ),
            stats: FlowStats::default(),
            next_sweep: Timestamp(0),
            packets_since_sweep: 0,
            id_counter: 0,
            id_salt: u64::from(worker) << 48,
            retire: false,
            retired: Vec::new(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> FlowStats {
        FlowStats {
            active: self.flows.len() as u64,
            ..self.stats
        }
    }

    /// Number of tracked flows.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Look a flow up without changing it.
    pub fn get(&self, key: &FlowKey) -> Option<&Flow> {
        self.flows.get(key)
    }

    /// Every flow, for changing (end-of-capture inspection); in no particular order.
    #[cold]
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&FlowKey, &mut Flow)> {
        self.flows.iter_mut()
    }

    /// Look a flow up for changing it (the worker's per-flow inspection state).
    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Flow> {
        self.flows.get_mut(key)
    }

    /// Remember where the attack blocker found the MAC binding of the source of the flow's
    /// `a_to_b` direction.
    pub fn set_mac_slot(&mut self, key: &FlowKey, a_to_b: bool, slot: u32) {
        if let Some(f) = self.flows.get_mut(key) {
            if a_to_b {
                f.mac_slot_a = slot;
            } else {
                f.mac_slot_b = slot;
            }
        }
    }

    /// Mark a flow terminated (later packets are dropped inline until it times out).
    pub fn terminate(&mut self, key: &FlowKey) {
        if let Some(f) = self.flows.get_mut(key) {
            f.terminated = true;
        }
    }

    /// Remove flows whose timeout has passed (memory reclamation; lookups already ignore them).
    /// Runs by itself from [`FlowTable::update`]; returns how many were removed.
    pub fn sweep(&mut self, now: Timestamp) -> usize {
        let before = self.flows.len();
        let cfg = self.cfg;
        self.remove_flows(|k, f| now.since(f.last_seen) > timeout(&cfg, k, f));
        let removed = before - self.flows.len();
        self.stats.timed_out += removed as u64;
        self.next_sweep = now.plus_micros(SWEEP_INTERVAL_US);
        self.packets_since_sweep = 0;
        removed
    }

    /// Hand the TCP flows with scanner state that leave the table (timed out, evicted, or
    /// replaced by a new flow on the same key) to [`FlowTable::take_retired`] instead of
    /// dropping them, for the end-of-flow inspection of IDS timing.
    pub fn set_retire(&mut self, on: bool) {
        self.retire = on;
        if !on {
            self.retired = Vec::new();
        }
    }

    /// Whether retired flows wait.
    pub fn has_retired(&self) -> bool {
        !self.retired.is_empty()
    }

    /// The flows retired since the last call, in the order they left.
    pub fn take_retired(&mut self) -> Vec<(FlowKey, Flow)> {
        core::mem::take(&mut self.retired)
    }

    /// A flow left the table: kept in `retired` for [`FlowTable::take_retired`] when retiring
    /// is on and it is a TCP flow with scanner state (up to [`MAX_RETIRED`]), else dropped.
    /// Takes the fields, not `self`, so callers can hold a borrow of the table.
    fn retire_flow(retire: bool, retired: &mut Vec<(FlowKey, Flow)>, k: FlowKey, f: Flow) {
        if retire && f.scan.is_some() && f.tcp.is_some() && retired.len() < MAX_RETIRED {
            retired.push((k, f));
        }
    }

    /// Remove the flows `gone` selects, each through [`FlowTable::retire_flow`].
    fn remove_flows(&mut self, mut gone: impl FnMut(&FlowKey, &Flow) -> bool) {
        let (retire, retired) = (self.retire, &mut self.retired);
        for (k, f) in self.flows.extract_if(|k, f| gone(k, f)) {
            Self::retire_flow(retire, retired, k, f);
        }
    }

    fn make_room(&mut self, now: Timestamp) {
        let idle = self.cfg.emergency_idle_us;
        let before = self.flows.len();
        self.remove_flows(|_, f| now.since(f.last_seen) > idle);
        let freed = before - self.flows.len();
        if freed > 0 {
            self.stats.evicted += freed as u64;
            return;
        }
        let victim = self
            .flows
            .iter()
            .take(EVICTION_SAMPLE)
            .min_by_key(|(_, f)| f.last_seen)
            .map(|(k, _)| *k);
        if let Some(k) = victim {
            if let Some(f) = self.flows.remove(&k) {
                Self::retire_flow(self.retire, &mut self.retired, k, f);
            }
            self.stats.evicted += 1;
        }
    }

    /// Start a flow for `key` at `now`: in place of a timed-out entry, or as a new entry (making
    /// room at the cap first).
    #[cold]
    #[inline(never)]
    fn start_flow(
        &mut self,
        now: Timestamp,
        key: &FlowKey,
        a_to_b: bool,
        tcp_flags: Option<TcpFlags>,
    ) -> &mut Flow {
        if self.flows.len() >= self.cfg.max_flows && !self.flows.contains_key(key) {
            self.make_room(now);
        }
        self.stats.created += 1;
        self.id_counter += 1;
        let flow = Flow::start(
            flow_id(self.id_counter, self.id_salt),
            now,
            a_to_b,
            tcp_flags,
        );
        match self.flows.entry(*key) {
            hashbrown::hash_map::Entry::Occupied(o) => {
                // Timed out but not swept yet: the packet starts a new flow in its place.
                self.stats.timed_out += 1;
                let f = o.into_mut();
                let old = core::mem::replace(f, flow);
                Self::retire_flow(self.retire, &mut self.retired, *key, old);
                f
            }
            hashbrown::hash_map::Entry::Vacant(v) => v.insert(flow),
        }
    }

    /// Account one packet to its flow, creating it if needed, and advance TCP state.
    /// `tcp_flags` is `Some` for TCP packets. `a_to_b` comes from [`FlowKey::new`].
    ///
    /// Inlined into the worker: the established flow's packet is one probe and a few stores, and
    /// the result then stays in registers. Sweeps, eviction and new flows are out of line.
    /// `always`: with a second caller (tunnelled packets) the compiler had stopped inlining it,
    /// and the call with its key in memory cost 57 of the worker's 935 instructions a frame.
    #[inline(always)]
    pub fn update(
        &mut self,
        now: Timestamp,
        key: &FlowKey,
        a_to_b: bool,
        tcp_flags: Option<TcpFlags>,
        frame_len: usize,
    ) -> FlowUpdate {
        self.packets_since_sweep += 1;
        if now >= self.next_sweep
            && self.packets_since_sweep >= self.flows.capacity() / SWEEP_PACKETS_PER_FLOW
        {
            self.sweep(now);
        }
        let cfg = self.cfg;
        // One probe on the common path: the entry is either a live flow, a flow that timed out
        // but was not swept yet (its packet starts a new flow in its place), or absent.
        let live = match self.flows.get_mut(key) {
            Some(f) if now.since(f.last_seen) <= timeout(&cfg, key, f) => Some(f),
            _ => None,
        };
        let (f, new_flow) = match live {
            Some(f) => (f, false),
            None => (self.start_flow(now, key, a_to_b, tcp_flags), true),
        };
        let to_server = a_to_b == f.client_is_a;
        f.last_seen = now;
        f.bytes += frame_len as u64;
        if to_server {
            f.pkts_to_server += 1;
        } else {
            f.pkts_to_client += 1;
        }
        let mut handshake_completed = false;
        if let (Some(state), Some(flags)) = (f.tcp, tcp_flags) {
            let next = if flags.has(TcpFlags::RST) {
                TcpState::Reset
            } else {
                match state {
                    TcpState::SynSent if !to_server && flags.has(TcpFlags::SYN | TcpFlags::ACK) => {
                        TcpState::SynReceived
                    }
                    TcpState::SynReceived
                        if to_server && flags.has(TcpFlags::ACK) && !flags.has(TcpFlags::SYN) =>
                    {
                        handshake_completed = true;
                        TcpState::Established
                    }
                    s => s,
                }
            };
            let next = if flags.has(TcpFlags::FIN) && next != TcpState::Reset {
                if to_server {
                    f.fin_client = true;
                } else {
                    f.fin_server = true;
                }
                if f.fin_client && f.fin_server {
                    TcpState::Closed
                } else {
                    TcpState::Closing
                }
            } else {
                next
            };
            f.tcp = Some(next);
        }
        let half_open = matches!(f.tcp, Some(TcpState::SynSent | TcpState::SynReceived));
        FlowUpdate {
            id: f.id,
            new_flow,
            to_server,
            handshake_completed,
            terminated: f.terminated,
            half_open,
            a_to_b,
            mac_slot: if a_to_b { f.mac_slot_a } else { f.mac_slot_b },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn ep(last: u8, port: u16) -> (IpAddr, u16) {
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), port)
    }

    const SYN: Option<TcpFlags> = Some(TcpFlags(TcpFlags::SYN));
    const SYNACK: Option<TcpFlags> = Some(TcpFlags(TcpFlags::SYN | TcpFlags::ACK));
    const ACK: Option<TcpFlags> = Some(TcpFlags(TcpFlags::ACK));

    #[test]
    fn both_directions_share_one_flow() {
        let (k1, d1) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, ep(1, 1000), ep(2, 80));
        let (k2, d2) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, ep(2, 80), ep(1, 1000));
        assert_eq!(k1, k2);
        assert_ne!(d1, d2);
    }

    proptest::proptest! {
        /// The hash fold keeps IPv4 keys of untagged and single-tag scopes apart: two keys that
        /// differ in one field (an address, a port, the protocol, the VLAN) fold differently,
        /// so such flows never share a probe sequence through the fold.
        #[test]
        fn fold_separates_ipv4_keys(
            addrs in proptest::prelude::any::<[u32; 2]>(),
            ports in proptest::prelude::any::<[u16; 2]>(),
            tcp in proptest::prelude::any::<bool>(),
            vid in 0u16..4095,
            field in 0usize..6,
            other in proptest::prelude::any::<u32>(),
            other_port in proptest::prelude::any::<u16>(),
        ) {
            let key = |addrs: [u32; 2], ports: [u16; 2], tcp: bool, vid: u16| {
                let scope = match vlan::VlanId::new(vid) {
                    Ok(id) if vid > 0 => VlanScope::single(id),
                    _ => VlanScope::UNTAGGED,
                };
                let proto = if tcp { IpProto::Tcp } else { IpProto::Udp };
                let ep = |i: usize| (IpAddr::V4(Ipv4Addr::from(addrs[i])), ports[i]);
                FlowKey::new(scope, proto, ep(0), ep(1)).0
            };
            let (mut a2, mut p2, mut t2, mut v2) = (addrs, ports, tcp, vid);
            match field {
                0 => a2[0] = other,
                1 => a2[1] = other,
                2 => p2[0] = other_port,
                3 => p2[1] = other_port,
                4 => t2 = !tcp,
                _ => v2 = u16::try_from(other % 4095).unwrap_or(0),
            }
            let (a, b) = (key(addrs, ports, tcp, vid), key(a2, p2, t2, v2));
            proptest::prop_assert_eq!(a == b, a.folded() == b.folded());
        }
    }

    #[test]
    fn vlan_separates_flows() {
        let v100 = VlanScope::single(vlan::VlanId::new(100).unwrap());
        let (k1, _) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Udp, ep(1, 1), ep(2, 2));
        let (k2, _) = FlowKey::new(v100, IpProto::Udp, ep(1, 1), ep(2, 2));
        assert_ne!(k1, k2);
    }

    #[test]
    fn handshake_tracks_state() {
        let mut t = FlowTable::new(FlowConfig::default(), 0);
        let now = Timestamp(1_000_000);
        let (k, c2s) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, ep(9, 40000), ep(2, 80));
        let u = t.update(now, &k, c2s, SYN, 60);
        assert!(u.new_flow && u.to_server && u.half_open);
        let u = t.update(now, &k, !c2s, SYNACK, 60);
        assert!(!u.to_server && u.half_open && !u.handshake_completed);
        let u = t.update(now, &k, c2s, ACK, 60);
        assert!(u.handshake_completed && !u.half_open);
        assert_eq!(t.get(&k).unwrap().tcp, Some(TcpState::Established));
        t.update(
            now,
            &k,
            c2s,
            Some(TcpFlags(TcpFlags::FIN | TcpFlags::ACK)),
            60,
        );
        assert_eq!(t.get(&k).unwrap().tcp, Some(TcpState::Closing));
        t.update(
            now,
            &k,
            !c2s,
            Some(TcpFlags(TcpFlags::FIN | TcpFlags::ACK)),
            60,
        );
        assert_eq!(t.get(&k).unwrap().tcp, Some(TcpState::Closed));
        let f = t.get(&k).unwrap();
        assert_eq!((f.pkts_to_server, f.pkts_to_client), (3, 2));
    }

    #[test]
    fn synack_first_makes_other_side_client() {
        let mut t = FlowTable::new(FlowConfig::default(), 0);
        let (k, s2c) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, ep(2, 80), ep(9, 40000));
        let u = t.update(Timestamp(1), &k, s2c, SYNACK, 60);
        assert!(!u.to_server);
    }

    #[test]
    fn timeouts_remove_flows() {
        let mut t = FlowTable::new(FlowConfig::default(), 0);
        let (k, d) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, ep(1, 1), ep(2, 2));
        t.update(Timestamp(0), &k, d, SYN, 60);
        assert_eq!(t.sweep(Timestamp(59 * Timestamp::SECOND)), 0);
        assert_eq!(t.sweep(Timestamp(61 * Timestamp::SECOND)), 1);
        assert!(t.is_empty());
        assert_eq!(t.stats().timed_out, 1);
    }

    #[test]
    fn timed_out_flow_is_new_even_before_a_sweep() {
        let mut t = FlowTable::new(FlowConfig::default(), 0);
        let (k, d) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Udp, ep(1, 1), ep(2, 2));
        let first = t.update(Timestamp(0), &k, d, None, 60);
        // Same second, many flows would be needed to trigger a sweep; the lookup alone decides.
        let again = t.update(Timestamp(301 * Timestamp::SECOND), &k, !d, None, 60);
        assert!(again.new_flow);
        assert_ne!(first.id, again.id);
        assert!(
            again.to_server,
            "the sender of the first packet of the new flow is its client"
        );
        assert_eq!(t.stats().timed_out, 1);
    }

    #[test]
    fn cap_evicts_and_counts() {
        let cfg = FlowConfig {
            max_flows: 100,
            ..FlowConfig::default()
        };
        let mut t = FlowTable::new(cfg, 0);
        for i in 0..1000u16 {
            let (k, d) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Udp, ep(1, i), ep(2, 53));
            t.update(Timestamp(u64::from(i)), &k, d, None, 60);
            assert!(t.len() <= 100);
        }
        assert_eq!(t.stats().created, 1000);
        assert!(t.stats().evicted >= 900);
    }

    #[test]
    fn ids_are_distinct_and_deterministic() {
        let mut a = FlowTable::new(FlowConfig::default(), 0);
        let mut b = FlowTable::new(FlowConfig::default(), 0);
        let mut seen = std::collections::HashSet::new();
        for i in 0..100u16 {
            let (k, d) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Udp, ep(1, i), ep(2, 53));
            let ia = a.update(Timestamp(1), &k, d, None, 60).id;
            let ib = b.update(Timestamp(1), &k, d, None, 60).id;
            assert_eq!(ia, ib);
            assert!(seen.insert(ia));
            assert!(ia < (1 << 51));
        }
    }
}
