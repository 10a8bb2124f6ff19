//! The flow table: connections keyed by VLAN scope, protocol and both endpoints, direction-normalised,
//! with TCP state, per-protocol timeouts and a hard cap with eviction.
//!
//! # Caps and floods
//! The table never holds more than [`FlowConfig::max_flows`] entries, and a new flow at the cap
//! costs O(1) whatever filled the table: a random-source SYN flood must not make each of its
//! packets scan the table (it did: 11 ms a packet at 2^20 flows, and forwarding stopped).
//!
//! - Every flow is queued at its start in creation order (`fresh`). At the cap the table takes
//!   the oldest queued flow: a flow nobody answered (a TCP handshake not completed, a flow with
//!   packets in one direction only) or one that has ended (FIN from both sides, RST) is evicted;
//!   an answered flow moves to a second queue (`settled`) and the next is taken. So a flood of
//!   unanswered flows evicts its own oldest packets and leaves the answered flows alone.
//! - Only when no unanswered or ended flow is left, the table takes up to
//!   [`EVICTION_SAMPLE`] flows from the front of `settled`: the first that has ended or is idle
//!   beyond its emergency timeout goes, else the least recently seen of them (a CLOCK-style
//!   second chance: the others go to the back).
//! - Filling the table enters *emergency mode*, as Suricata's flow engine does: the shorter
//!   emergency timeouts (Suricata's defaults: TCP new 5 s, established 100 s, closed 10 s; UDP
//!   and other 100 s) apply until the periodic sweep finds the table below
//!   `100 - emergency_recovery` percent of the cap (Suricata's `flow.emergency-recovery`, 30).
//!
//! The queues hold a flow's slot and id (16 bytes), not its key; an entry whose flow has left
//! the table otherwise (timed out, replaced) is skipped when met and dropped by the sweep, and
//! the queues are compacted when stale entries reach a quarter of the cap, so their length stays
//! within 1.25 times the cap. Each entry is pushed once and popped at most once per queue, so
//! the work per new flow is O(1) amortised.
//!
//! # Layout
//! Flows live in a slab of slots (`slots`), found through an index of 8-byte cells (the slot
//! and the key's 32-bit hash; `index.rs`: open addressing with linear probing, so a probe, the
//! insert after it and a removal each read one cache line). A new flow takes the slot freed last, so under a flood
//! the flow evicted at the cap and the one that replaces it share one place in memory; the
//! index grows by rehashing 8-byte entries from their stored hashes, never by moving flows; the
//! slab holds at most `max_flows` flows without the hash table's spare buckets; and a sweep
//! walks the slab in order. The flows were the hash table's entries before: a flood's new flow
//! then missed the cache at its lookup, at the evicted flow and at its own insert, and each
//! growth moved every flow (issue 15: the flow table's share of a random-source SYN flood).
//!
//! What a flood misses in the cache is fetched early: the worker, seeing a run of new flows
//! ([`FlowTable::flooded`]), prefetches the index cell of the packet's key before the packet's
//! other lookups ([`FlowTable::prefetch`]); each new flow prefetches, for writing, the slot the
//! next one will take; and each eviction prefetches the slot and index cell of the flow
//! [`EVICTION_LOOKAHEAD`] evictions later. (`crate::io::prefetch`; measured in
//! docs/benchmarks.md, "Prefetching a flood's misses".)
//!
//! The table hashes with a seed drawn per process ([`hash_seed`]): a fixed public seed lets an
//! attacker choose keys that share probe sequences.
//!
//! # Engines' per-flow state
//! The table knows flows, not the engines that inspect them (STYLE 24): each flow carries one
//! extension value of a type its owner supplies ([`FlowExt`]; the worker's holds the activity
//! scanner's, web address scan's and attack blocker's per-flow state), created with the flow,
//! dropped or retired with it. This module imports no engine.

use core::hash::BuildHasher;
use core::net::IpAddr;
use std::collections::VecDeque;

use vlan::VlanScope;

use crate::decode::{IpProto, TcpFlags};
use crate::host_os::{HostOsPolicy, OsPolicy, Paws, TsSegment};
use crate::io::prefetch;

mod index;
use crate::time::Timestamp;
use index::FlowIndex;

/// Flow table settings.
#[derive(Clone, Copy, Debug)]
pub struct FlowConfig {
    /// Hard cap on tracked flows.
    pub max_flows: usize,
    /// Timeouts in normal operation.
    pub timeouts: Timeouts,
    /// Timeouts while the table is in emergency mode (it filled up).
    pub emergency_timeouts: Timeouts,
    /// Emergency mode ends when this percentage of the cap is free again (Suricata's
    /// `flow.emergency-recovery`), 1..=100.
    pub emergency_recovery_percent: u8,
    /// Suricata's `host-os-policy`: the operating system of receiving hosts, read once per TCP
    /// flow for its timestamp validation and its reassembly's overlap policy.
    pub host_os: HostOsPolicy,
}

/// Idle time after which a flow expires, per protocol and TCP state, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP flow that has not completed its handshake.
    pub tcp_new_us: u64,
    /// Established TCP flow.
    pub tcp_established_us: u64,
    /// TCP flow after FIN from both sides or RST.
    pub tcp_closed_us: u64,
    /// UDP flow.
    pub udp_us: u64,
    /// ICMP and other protocols.
    pub other_us: u64,
}

impl Default for FlowConfig {
    /// Timeouts follow Suricata's defaults (new 60 s / established 600 s / closed 60 s for TCP,
    /// 300 s for established UDP and ICMP; in emergency TCP new 5 s, established 100 s, closed
    /// 10 s, UDP and ICMP established 100 s; recovery at 30% free), which admins already tune
    /// against.
    fn default() -> Self {
        const S: u64 = Timestamp::SECOND;
        FlowConfig {
            max_flows: 1 << 20,
            timeouts: Timeouts {
                tcp_new_us: 60 * S,
                tcp_established_us: 600 * S,
                tcp_closed_us: 60 * S,
                udp_us: 300 * S,
                other_us: 300 * S,
            },
            emergency_timeouts: Timeouts {
                tcp_new_us: 5 * S,
                tcp_established_us: 100 * S,
                tcp_closed_us: 10 * S,
                udp_us: 100 * S,
                other_us: 100 * S,
            },
            emergency_recovery_percent: 30,
            host_os: HostOsPolicy::default(),
        }
    }
}

/// The hash seed of this process's flow tables: drawn once from the operating system's
/// randomness (through std's `RandomState`, which is seeded from it), so keys that collide
/// cannot be computed from the source code.
pub fn hash_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x5356_4d00u64))
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

/// The per-flow state a flow table's owner keeps beside each flow ([`Flow::ext`]): created
/// ([`Default`]) when the flow starts, gone when it leaves the table (or handed over with it,
/// [`FlowTable::set_retire`]).
pub trait FlowExt: Default {
    /// What the owner reads of the extension with every packet: [`FlowTable::update_noting`]
    /// returns it beside the [`FlowUpdate`], so the packet needs no second lookup.
    type Peek: Copy;

    /// The extension's [`FlowExt::Peek`] for a packet travelling from the key's `a` endpoint
    /// to `b` (`a_to_b`) or back.
    fn peek(&self, a_to_b: bool) -> Self::Peek;

    /// Whether a flow leaving the table is handed to [`FlowTable::take_retired`] (while
    /// retiring is on) rather than dropped: it has work left for its end.
    fn keep_on_leave(flow: &Flow<Self>) -> bool;
}

/// No extension: a table of bare flows (tests, benchmarks, tools).
impl FlowExt for () {
    type Peek = ();

    #[inline]
    fn peek(&self, _a_to_b: bool) {}

    fn keep_on_leave(_flow: &Flow<Self>) -> bool {
        false
    }
}

/// Per-flow state.
#[derive(Debug)]
pub struct Flow<X = ()> {
    /// Stable id reported in events (EVE `flow_id`).
    pub id: u64,
    /// Whether the client (the endpoint that sent the first packet) is the key's `a` endpoint.
    pub client_is_a: bool,
    /// First packet time.
    pub first_seen: Timestamp,
    /// Last packet time.
    pub last_seen: Timestamp,
    /// Packets client -> server (saturating; `u32`, as Suricata's, so the two byte counts
    /// below cost no more than the one total they replaced).
    pub pkts_to_server: u32,
    /// Packets server -> client (saturating).
    pub pkts_to_client: u32,
    /// Bytes (frame lengths) client -> server.
    pub bytes_to_server: u64,
    /// Bytes (frame lengths) server -> client.
    pub bytes_to_client: u64,
    /// TCP state; `None` for other protocols.
    pub tcp: Option<TcpState>,
    /// FIN seen from the client / from the server.
    fin_client: bool,
    fin_server: bool,
    /// The SVM terminated this flow: later packets are dropped inline.
    pub terminated: bool,
    /// The flow was picked up without its handshake.
    pub midstream: bool,
    /// After a RST: who sent it (`true`: the client) and the state before it. The RST's
    /// sender sending again proves the RST was injected: the state goes back (Suricata's
    /// `StreamTcpPacketCheckPostRst`).
    rst: Option<(bool, TcpState)>,
    /// This packet revived a flow its own sender had reset ([`FlowFacts::rst_inject`]).
    rst_inject: bool,
    /// This packet's TCP timestamp was rejected ([`FlowFacts::invalid_timestamp`]).
    invalid_ts: bool,
    /// The receiving hosts' policies, `[client host, server host]` (TCP; `host-os-policy`).
    pub os: [OsPolicy; 2],
    /// TCP timestamp validation, from a SYN or a first segment carrying timestamps; boxed, so
    /// other flows pay 8 bytes.
    paws: Option<Box<Paws>>,
    /// Sequence number of the server's SYN/ACK while the handshake is open
    /// ([`FlowTable::note_syn_ack`]): the client's final ACK must acknowledge it to prove the
    /// client's address.
    syn_ack_seq: Option<u32>,
    /// What a reset of both ends needs (MACs, tag stack, sequence numbers), for TCP flows of
    /// protected VMs only ([`FlowTable::update_noting`]); boxed, so other flows pay 8 bytes.
    pub ends: Option<Box<TcpEnds>>,
    /// The owner's per-flow state ([`FlowExt`]).
    pub ext: X,
}

/// What an engine reads of a flow's connection while it changes its own state in
/// [`Flow::ext`] (a copy, so both can be borrowed at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowFacts {
    /// TCP state; `None` for other protocols.
    pub tcp: Option<TcpState>,
    /// The flow was picked up without its handshake.
    pub midstream: bool,
    /// Packets were seen in both directions.
    pub answered: bool,
    /// When the flow's first packet was seen (`flow.age`).
    pub first_seen: Timestamp,

    /// Packets `[to_server, to_client]`, this one included (`flow.pkts`).
    pub pkts: [u32; 2],
    /// Bytes (frame lengths) `[to_server, to_client]`, this packet's included (`flow.bytes`).
    pub bytes: [u64; 2],
    /// The last packet came from the sender of an earlier RST, which was therefore injected
    /// (Suricata's stream event `suspected_rst_inject`); the flow went back to its state before
    /// the RST.
    pub rst_inject: bool,
    /// The packet's TCP timestamp failed validation (PAWS, [`crate::host_os::timestamps`]): it
    /// changed no TCP state and is not reassembled (Suricata's stream event
    /// `pkt_invalid_timestamp`).
    pub invalid_timestamp: bool,
    /// The receiving hosts' policies, `[client host, server host]`.
    pub os: [OsPolicy; 2],
}

/// What the flow table reads of a TCP segment beyond its flags, for timestamp validation.
#[derive(Clone, Copy, Debug)]
pub struct TcpSeq {
    /// Sequence number.
    pub seq: u32,
    /// Sequence space taken: payload length, plus one for a SYN and one for a FIN.
    pub seq_len: u32,
    /// The timestamp option, `(TSval, TSecr)` ([`crate::decode::tcp_timestamps`]).
    pub ts: Option<(u32, u32)>,
}

/// The last TCP segment of each direction of a flow, as much as a reset of both ends needs.
/// Index 0 is the key's `a` endpoint, 1 its `b`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpEnds {
    /// The tag stack of the flow's last segment.
    pub vlan: vlan::VlanStack,
    /// Each endpoint's MAC as the SVM sees it (the sender's in frames it sends).
    pub macs: [[u8; 6]; 2],
    /// The sequence number after each endpoint's last segment.
    pub next: [u32; 2],
    /// The acknowledgement in each endpoint's last segment (what it expects from the other).
    pub ack: [u32; 2],
    /// Bits: 1 << i when endpoint i sent a segment, 4 << i when that segment carried an ACK.
    pub seen: u8,
}

/// One TCP segment as [`TcpEnds`] records it.
#[derive(Clone, Copy, Debug)]
pub struct SegmentNote<'a> {
    /// Its tag stack.
    pub vlan: &'a vlan::VlanStack,
    /// Source and destination MACs.
    pub eth: ([u8; 6], [u8; 6]),
    /// Sequence number plus sequence-space length.
    pub next: u32,
    /// Acknowledgement number, if ACK is set.
    pub ack: Option<u32>,
}

impl TcpEnds {
    /// Record a segment from `a` to `b` (`a_to_b`) or back.
    #[inline]
    pub fn note(&mut self, a_to_b: bool, n: &SegmentNote<'_>) {
        let (from, to) = if a_to_b { (0, 1) } else { (1, 0) };
        self.vlan = *n.vlan;
        if let Some(m) = self.macs.get_mut(from) {
            *m = n.eth.0;
        }
        if self.seen & (1 << to) == 0
            && let Some(m) = self.macs.get_mut(to)
        {
            *m = n.eth.1;
        }
        if let Some(x) = self.next.get_mut(from) {
            *x = n.next;
        }
        self.seen |= 1 << from;
        match (n.ack, self.ack.get_mut(from)) {
            (Some(a), Some(x)) => {
                *x = a;
                self.seen |= 4 << from;
            }
            _ => self.seen &= !(4 << from),
        }
    }

    /// The sequence number endpoint `i` (0 = `a`) accepts next from its peer: its own last
    /// acknowledgement, else the peer's next sequence number; `None` if neither was seen.
    pub fn expects(&self, i: usize) -> Option<u32> {
        let peer = i ^ 1;
        if self.seen & (4 << i) != 0 {
            return self.ack.get(i).copied();
        }
        (self.seen & (1 << peer) != 0)
            .then(|| self.next.get(peer).copied())
            .flatten()
    }
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
}

/// 51 bits, like Suricata's flow ids, so JSON consumers keep them exact.
const fn flow_id(counter: u64, salt: u64) -> u64 {
    mix64(counter | salt) & ((1 << 51) - 1)
}

impl<X: FlowExt> Flow<X> {
    /// A TCP flow whose handshake this appliance saw complete: its client proved its address (a
    /// forged one never sees the SYN/ACK).
    pub fn handshake_seen(&self) -> bool {
        !self.midstream
            && matches!(
                self.tcp,
                Some(TcpState::Established | TcpState::Closing | TcpState::Closed)
            )
    }

    /// The flow runs the other way round: its client is the other endpoint (app-layer
    /// detection found a server's response where the client's request was expected, on a flow
    /// picked up midstream; Suricata's `FlowSwap`). Every per-direction count and flag follows.
    #[cold]
    pub fn reverse(&mut self) {
        self.client_is_a = !self.client_is_a;
        core::mem::swap(&mut self.pkts_to_server, &mut self.pkts_to_client);
        core::mem::swap(&mut self.bytes_to_server, &mut self.bytes_to_client);
        core::mem::swap(&mut self.fin_client, &mut self.fin_server);
        self.os.swap(0, 1);
        if let Some((by_client, before)) = self.rst {
            self.rst = Some((!by_client, before));
        }
        if let Some(p) = self.paws.as_deref_mut() {
            p.reverse();
        }
    }

    /// What engines read of the connection ([`FlowFacts`]).
    #[inline]
    pub fn facts(&self) -> FlowFacts {
        FlowFacts {
            tcp: self.tcp,
            midstream: self.midstream,
            answered: self.pkts_to_server > 0 && self.pkts_to_client > 0,
            first_seen: self.first_seen,
            pkts: [self.pkts_to_server, self.pkts_to_client],
            bytes: [self.bytes_to_server, self.bytes_to_client],
            rst_inject: self.rst_inject,
            invalid_timestamp: self.invalid_ts,
            os: self.os,
        }
    }

    /// A flow started by a packet travelling `a_to_b` with these TCP flags (`None` for other
    /// protocols).
    fn start(id: u64, now: Timestamp, a_to_b: bool, tcp_flags: Option<TcpFlags>) -> Self {
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
            bytes_to_server: 0,
            bytes_to_client: 0,
            tcp,
            fin_client: false,
            fin_server: false,
            terminated: false,
            midstream,
            rst: None,
            rst_inject: false,
            invalid_ts: false,
            os: [OsPolicy::Bsd; 2],
            paws: None,
            syn_ack_seq: None,
            ends: None,
            ext: X::default(),
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
    /// Times the table entered emergency mode (it filled up).
    pub emergencies: u64,
    /// The table is in emergency mode now.
    pub emergency: bool,
    /// TCP segments whose timestamp failed validation (ignored by the state machine).
    pub invalid_timestamps: u64,
}

/// Idle time after which a flow expires.
#[inline]
fn timeout<X>(t: &Timeouts, key: &FlowKey, f: &Flow<X>) -> u64 {
    match f.tcp {
        Some(TcpState::SynSent | TcpState::SynReceived) => t.tcp_new_us,
        Some(TcpState::Established | TcpState::Closing) => t.tcp_established_us,
        Some(TcpState::Closed | TcpState::Reset) => t.tcp_closed_us,
        None if key.proto() == 17 => t.udp_us,
        None => t.other_us,
    }
}

/// Whether a flow has been answered and is still open: both directions seen and, for TCP, the
/// connection established and not closed. Flows that are not are the first to go at the cap:
/// one spoofed packet creates an unanswered flow, and an ended flow has nothing left to inspect.
fn settled<X>(f: &Flow<X>) -> bool {
    let answered = f.pkts_to_server > 0 && f.pkts_to_client > 0;
    match f.tcp {
        Some(TcpState::Established | TcpState::Closing) | None => answered,
        Some(_) => false,
    }
}

/// Answered flows looked at, at most, for one eviction when no unanswered flow is left.
pub const EVICTION_SAMPLE: usize = 32;

/// How often (packet time) the table sweeps for timed-out flows, at most.
const SWEEP_INTERVAL_US: u64 = 5 * Timestamp::SECOND;

/// A sweep also waits until one packet per this many table slots has been seen since the last
/// one, so its cost (a walk over every slot of the table) stays amortised at a few slots a packet. Timeouts do
/// not depend on it: [`FlowTable::update`] treats a timed-out flow it finds as gone.
const SWEEP_PACKETS_PER_FLOW: usize = 2;

/// A flow's place in an eviction queue: its slot, its key's hash (to prefetch its index cell
/// before it is evicted) and its id (to tell it from a later flow in the same slot).
#[derive(Clone, Copy, Debug)]
struct Queued {
    slot: u32,
    hash: u32,
    id: u64,
}

/// How many evictions ahead [`FlowTable::make_room`] prefetches the slot and index cell of the
/// flow it will evict: under a flood every new flow evicts one, so this is about as many
/// packets' time for the misses to complete.
const EVICTION_LOOKAHEAD: usize = 8;

/// Packets in a row that started a flow after which [`FlowTable::flooded`] says yes.
const FLOOD_RUN: u32 = 4;

/// The flow table of one worker, each flow with its owner's extension `X` ([`FlowExt`]).
#[derive(Debug)]
pub struct FlowTable<X = ()> {
    cfg: FlowConfig,
    /// The timeouts in force: `cfg.timeouts`, or `cfg.emergency_timeouts` in emergency mode.
    timeouts: Timeouts,
    emergency: bool,
    hasher: foldhash::fast::FixedState,
    /// Slot of each flow by its key's hash (see the module doc, "Layout").
    index: FlowIndex,
    /// The flows; `None` marks a free slot (listed in `free`).
    slots: Vec<Option<(FlowKey, Flow<X>)>>,
    /// Free slots, the last freed first: a flood's new flow takes the slot of the flow it
    /// evicted, one place in memory for both.
    free: Vec<u32>,
    /// Flows in the order they started, not yet found answered (see the module doc).
    fresh: VecDeque<Queued>,
    /// Answered flows, oldest (or least recently given a second chance) first.
    settled: VecDeque<Queued>,
    stats: FlowStats,
    next_sweep: Timestamp,
    packets_since_sweep: usize,
    id_counter: u64,
    id_salt: u64,
    /// Packets in a row that started a flow ([`FlowTable::flooded`]).
    new_run: u32,
    /// Keep the flows that leave the table with work left ([`FlowTable::set_retire`]).
    retire: bool,
    retired: Vec<(FlowKey, Flow<X>)>,
    /// The slot of the flow the last update accounted a packet to ([`FlowTable::get_mut_at`]).
    last_slot: u32,
}

/// Retired flows held at most: the worker takes them after every packet, so only one sweep's
/// worth waits; beyond this a sweep's flows go without their end-of-flow inspection.
pub const MAX_RETIRED: usize = 1 << 16;

/// A slot number as an index.
#[inline]
fn slot_at(slot: u32) -> usize {
    usize::try_from(slot).unwrap_or(usize::MAX)
}

/// SplitMix64 finaliser: turns a counter into a well-spread id (deterministic across runs).
const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<X: FlowExt> FlowTable<X> {
    /// An empty table. `worker` salts flow ids so workers never hand out the same id.
    pub fn new(cfg: FlowConfig, worker: u16) -> Self {
        Self::with_seed(cfg, worker, hash_seed())
    }

    /// [`FlowTable::new`] with a chosen hash seed (benchmarks and tests that need one layout).
    pub fn with_seed(cfg: FlowConfig, worker: u16, seed: u64) -> Self {
        // Slots are numbered in u32: a larger cap would only leave slots unused.
        let cfg = FlowConfig {
            max_flows: cfg.max_flows.min(slot_at(u32::MAX)),
            ..cfg
        };
        FlowTable {
            cfg,
            timeouts: cfg.timeouts,
            emergency: false,
            hasher: foldhash::fast::FixedState::with_seed(seed),
            index: FlowIndex::with_capacity(cfg.max_flows.min(1 << 16)),
            slots: Vec::with_capacity(cfg.max_flows.min(1 << 16)),
            free: Vec::new(),
            fresh: VecDeque::new(),
            settled: VecDeque::new(),
            stats: FlowStats::default(),
            next_sweep: Timestamp(0),
            packets_since_sweep: 0,
            id_counter: 0,
            id_salt: u64::from(worker) << 48,
            new_run: 0,
            retire: false,
            retired: Vec::new(),
            last_slot: u32::MAX,
        }
    }

    /// Counters.
    pub fn stats(&self) -> FlowStats {
        FlowStats {
            active: self.index.len() as u64,
            emergency: self.emergency,
            ..self.stats
        }
    }

    /// Number of tracked flows.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Whether the table is in emergency mode (it filled up and has not yet recovered).
    pub fn in_emergency(&self) -> bool {
        self.emergency
    }

    /// The key's hash as the index keeps it (the low 32 bits of the seeded hash).
    #[inline]
    fn hash32(&self, key: &FlowKey) -> u32 {
        // Truncation intended: the index keeps 32 bits.
        #[allow(clippy::cast_possible_truncation)]
        let h = self.hasher.hash_one(key) as u32;
        h
    }

    /// Whether the last few packets each started a flow (a flood of new flows, or the start of
    /// a capture): the worker then prefetches what the next packet's lookups will miss
    /// ([`FlowTable::prefetch`]). Costs the common packet one store (the run's reset).
    #[inline]
    pub fn flooded(&self) -> bool {
        self.new_run >= FLOOD_RUN
    }

    /// Start fetching the index cell a lookup of `key` reads first, so its miss overlaps the
    /// packet's other work (for a flood's new flow, the lookup and the insert after it).
    #[inline]
    pub fn prefetch(&self, key: &FlowKey) {
        prefetch::read(self.index.bucket(self.hash32(key)));
    }

    /// Start fetching, for writing, the slot the next new flow will take (the slot freed last,
    /// else the next one of the slab), so the flow's record is written to cache, not memory.
    #[inline]
    fn prefetch_next_slot(&self) {
        let next = self.free.last().map_or(self.slots.len(), |&s| slot_at(s));
        if next < self.slots.capacity() {
            prefetch::write_all(self.slots.as_ptr().wrapping_add(next));
        }
    }

    /// The slot of `key`'s flow (live or timed out but not swept yet), if it has one.
    #[inline]
    fn find_slot(&self, hash: u32, key: &FlowKey) -> Option<u32> {
        let slots = &self.slots;
        self.index.find(hash, |slot| {
            slots
                .get(slot_at(slot))
                .is_some_and(|e| e.as_ref().is_some_and(|(k, _)| k == key))
        })
    }

    /// The flow in slot `slot`, with its key.
    #[inline]
    fn entry(&self, slot: u32) -> Option<&(FlowKey, Flow<X>)> {
        self.slots.get(slot_at(slot)).and_then(Option::as_ref)
    }

    /// The flow in slot `slot`, with its key, for changing.
    #[inline]
    fn entry_mut(&mut self, slot: u32) -> Option<&mut (FlowKey, Flow<X>)> {
        self.slots.get_mut(slot_at(slot)).and_then(Option::as_mut)
    }

    /// Look a flow up without changing it.
    pub fn get(&self, key: &FlowKey) -> Option<&Flow<X>> {
        let slot = self.find_slot(self.hash32(key), key)?;
        self.entry(slot).map(|(_, f)| f)
    }

    /// Every flow, for changing (end-of-capture inspection); in no particular order.
    #[cold]
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&FlowKey, &mut Flow<X>)> {
        self.slots.iter_mut().flatten().map(|(k, f)| (&*k, f))
    }

    /// Look a flow up for changing it (the owner's per-flow state, [`Flow::ext`]).
    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Flow<X>> {
        let slot = self.find_slot(self.hash32(key), key)?;
        self.entry_mut(slot).map(|(_, f)| f)
    }

    /// The flow a packet's [`FlowUpdate`] named (its key and id), for changing; `None` once
    /// that flow left the table, even when another flow took its slot or its key. The flow of
    /// the last update is reached through the slot that update used, without hashing its key
    /// again (the packet's engines, after [`FlowTable::update_noting`]); any other is looked up.
    #[inline]
    pub fn get_mut_at(&mut self, key: &FlowKey, upd: &FlowUpdate) -> Option<&mut Flow<X>> {
        // A key is in one slot at most: the last slot holding it is the slot a lookup finds.
        let last = self.last_slot;
        let slot = match self.entry(last) {
            Some((k, _)) if k == key => last,
            _ => self.find_slot(self.hash32(key), key)?,
        };
        self.entry_mut(slot)
            .filter(|(_, f)| f.id == upd.id)
            .map(|(_, f)| f)
    }

    /// Take the flow out of slot `slot` and free the slot.
    fn take_slot(&mut self, slot: u32) -> Option<(FlowKey, Flow<X>)> {
        let (k, f) = self.slots.get_mut(slot_at(slot))?.take()?;
        let hash = self.hash32(&k);
        self.index.remove(hash, slot);
        self.free.push(slot);
        Some((k, f))
    }

    /// Put a new flow into a free slot (or a new one) and index it; returns the slot. `None`
    /// only if the slot bookkeeping were inconsistent, which the code here never leaves it (at
    /// most `max_flows` slots exist, free ones are taken first, and the cap fits in u32).
    fn insert(&mut self, hash: u32, key: FlowKey, flow: Flow<X>) -> Option<u32> {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                u32::try_from(self.slots.len() - 1).ok()?
            }
        };
        let cell = self.slots.get_mut(slot_at(slot))?;
        self.index.insert(hash, slot);
        *cell = Some((key, flow));
        Some(slot)
    }

    /// Note the sequence number of the server's SYN/ACK of a flow whose handshake is open. A
    /// forger who uses another host's address never receives this segment, so it cannot
    /// acknowledge it ([`FlowTable::acks_syn_ack`]).
    pub fn note_syn_ack(&mut self, key: &FlowKey, seq: u32) {
        if let Some(f) = self.get_mut(key) {
            f.syn_ack_seq = Some(seq);
        }
    }

    /// Whether `ack`, the acknowledgement number of the segment that completed the flow's
    /// handshake, acknowledges the SYN/ACK noted for it (its sequence number plus one).
    pub fn acks_syn_ack(&mut self, key: &FlowKey, ack: u32) -> bool {
        self.get_mut(key)
            .is_some_and(|f| f.syn_ack_seq.take() == Some(ack.wrapping_sub(1)))
    }

    /// Mark a flow terminated (later packets are dropped inline until it times out).
    pub fn terminate(&mut self, key: &FlowKey) {
        if let Some(f) = self.get_mut(key) {
            f.terminated = true;
        }
    }

    /// Remove flows whose timeout has passed (memory reclamation; lookups already ignore them),
    /// drop the queue entries of flows no longer in the table, and leave emergency mode once
    /// enough of the cap is free. Runs by itself from [`FlowTable::update`]; returns how many
    /// flows were removed.
    pub fn sweep(&mut self, now: Timestamp) -> usize {
        let before = self.index.len();
        let t = self.timeouts;
        let first_retired = self.retired.len();
        self.remove_flows(|k, f| now.since(f.last_seen) > timeout(&t, k, f));
        // The walk's order is the hash's, which differs per process: the end-of-flow
        // inspection (and its events) follows flow ids instead.
        if let Some(tail) = self.retired.get_mut(first_retired..) {
            tail.sort_unstable_by_key(|(_, f)| f.id);
        }
        let removed = before - self.index.len();
        self.stats.timed_out += removed as u64;
        self.compact();
        if self.emergency {
            let free = self.cfg.max_flows.saturating_sub(self.index.len());
            let needed = self
                .cfg
                .max_flows
                .saturating_mul(usize::from(self.cfg.emergency_recovery_percent))
                / 100;
            if free >= needed {
                self.emergency = false;
                self.timeouts = self.cfg.timeouts;
            }
        }
        self.next_sweep = now.plus_micros(SWEEP_INTERVAL_US);
        self.packets_since_sweep = 0;
        removed
    }

    /// Drop the queue entries whose flow left the table some other way (timed out, replaced).
    fn compact(&mut self) {
        let slots = &self.slots;
        let live = |q: &Queued| {
            slots
                .get(slot_at(q.slot))
                .is_some_and(|e| e.as_ref().is_some_and(|(_, f)| f.id == q.id))
        };
        self.fresh.retain(live);
        self.settled.retain(live);
    }

    /// Hand the flows that leave the table (timed out, evicted, or replaced by a new flow on
    /// the same key) with work left ([`FlowExt::keep_on_leave`]: for the worker, TCP flows with
    /// scanner state, for the end-of-flow inspection of IDS timing) to
    /// [`FlowTable::take_retired`] instead of dropping them.
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
    pub fn take_retired(&mut self) -> Vec<(FlowKey, Flow<X>)> {
        core::mem::take(&mut self.retired)
    }

    /// A flow left the table: kept in `retired` for [`FlowTable::take_retired`] when retiring
    /// is on and its extension asks ([`FlowExt::keep_on_leave`]; up to [`MAX_RETIRED`]), else
    /// dropped. Takes the fields, not `self`, so callers can hold a borrow of the table.
    fn retire_flow(retire: bool, retired: &mut Vec<(FlowKey, Flow<X>)>, k: FlowKey, f: Flow<X>) {
        if retire && retired.len() < MAX_RETIRED && X::keep_on_leave(&f) {
            retired.push((k, f));
        }
    }

    /// Remove the flows `gone` selects, each through [`FlowTable::retire_flow`]: a walk over
    /// the slots in order.
    fn remove_flows(&mut self, mut gone: impl FnMut(&FlowKey, &Flow<X>) -> bool) {
        for slot in 0..self.slots.len() {
            let Ok(slot) = u32::try_from(slot) else {
                break;
            };
            if self.entry(slot).is_some_and(|(k, f)| gone(k, f))
                && let Some((k, f)) = self.take_slot(slot)
            {
                Self::retire_flow(self.retire, &mut self.retired, k, f);
            }
        }
    }

    /// Remove the queued flow `q` (it is in the table) as evicted.
    fn evict(&mut self, q: Queued) {
        if let Some((k, f)) = self.take_slot(q.slot) {
            Self::retire_flow(self.retire, &mut self.retired, k, f);
            self.stats.evicted += 1;
        }
    }

    /// The flow `q` names, if it is still in the table.
    #[inline]
    fn queued(&self, q: Queued) -> Option<&(FlowKey, Flow<X>)> {
        self.entry(q.slot).filter(|(_, f)| f.id == q.id)
    }

    /// Evict one flow to make room for a new one, in O(1) amortised (see the module doc).
    fn make_room(&mut self, now: Timestamp) {
        // The oldest flow nobody answered, or that has ended; answered ones move on. The one
        // some evictions later: its slot and index cell start on their way from memory.
        if let Some(ahead) = self.fresh.get(EVICTION_LOOKAHEAD) {
            prefetch::read(self.slots.as_ptr().wrapping_add(slot_at(ahead.slot)));
            prefetch::read(self.index.bucket(ahead.hash));
        }
        while let Some(q) = self.fresh.pop_front() {
            let Some((_, f)) = self.queued(q) else {
                continue;
            };
            if settled(f) {
                self.settled.push_back(q);
            } else {
                self.evict(q);
                return;
            }
        }
        // Every flow is answered: one that ended or idles past its emergency timeout, else the
        // least recently seen of a sample from the front.
        let t = self.cfg.emergency_timeouts;
        let mut oldest: Option<(Queued, Timestamp)> = None;
        let mut looked = 0;
        while looked < EVICTION_SAMPLE {
            let Some(q) = self.settled.pop_front() else {
                break;
            };
            let Some((k, f)) = self.queued(q) else {
                continue;
            };
            looked += 1;
            if !settled(f) || now.since(f.last_seen) > timeout(&t, k, f) {
                self.evict(q);
                return;
            }
            if oldest.is_none_or(|(_, seen)| f.last_seen < seen) {
                oldest = Some((q, f.last_seen));
            }
            self.settled.push_back(q);
        }
        if let Some((q, _)) = oldest {
            // Its queue entry, now at the back, is dropped as stale when met.
            self.evict(q);
        }
    }

    /// Start a flow for `key` (hashing to `hash`) at `now`: in place of a timed-out flow in
    /// slot `timed_out`, or in a slot of its own (making room at the cap first, which enters
    /// emergency mode). `None` only if the slot bookkeeping were inconsistent (never).
    #[cold]
    #[inline(never)]
    fn start_flow(
        &mut self,
        now: Timestamp,
        (hash, timed_out): (u32, Option<u32>),
        key: &FlowKey,
        a_to_b: bool,
        tcp_flags: Option<TcpFlags>,
    ) -> Option<(u32, &mut Flow<X>)> {
        if timed_out.is_none() && self.index.len() >= self.cfg.max_flows {
            if !self.emergency {
                self.emergency = true;
                self.timeouts = self.cfg.emergency_timeouts;
                self.stats.emergencies += 1;
            }
            self.make_room(now);
        }
        self.stats.created += 1;
        self.id_counter += 1;
        let id = flow_id(self.id_counter, self.id_salt);
        let mut flow = Flow::start(id, now, a_to_b, tcp_flags);
        if tcp_flags.is_some() && !self.cfg.host_os.is_empty() {
            let ((a, _), (b, _)) = key.endpoints();
            let (client, server) = if flow.client_is_a { (a, b) } else { (b, a) };
            flow.os = [
                self.cfg.host_os.lookup_addr(client),
                self.cfg.host_os.lookup_addr(server),
            ];
        }
        // Stale entries (flows replaced or timed out) beyond a quarter of the cap: drop them, so
        // the queues stay within 1.25 times the cap (amortised: a compaction follows at least a
        // quarter of the cap's pushes).
        if self.fresh.len() + self.settled.len() > self.cfg.max_flows + self.cfg.max_flows / 4 {
            self.compact();
        }
        let slot = match timed_out {
            Some(slot) => {
                // Timed out but not swept yet: the packet starts a new flow in its place (same
                // key, same slot, same index entry).
                self.stats.timed_out += 1;
                let (_, f) = self.entry_mut(slot)?;
                let old = core::mem::replace(f, flow);
                Self::retire_flow(self.retire, &mut self.retired, *key, old);
                slot
            }
            None => self.insert(hash, *key, flow)?,
        };
        self.prefetch_next_slot();
        self.fresh.push_back(Queued { slot, hash, id });
        self.entry_mut(slot).map(|(_, f)| (slot, f))
    }

    /// What a packet whose flow could not be stored is told: a new flow, from its client, with
    /// a fresh extension's peek. Never happens (see [`FlowTable::insert`]); kept panic-free.
    #[cold]
    fn untracked(a_to_b: bool) -> (FlowUpdate, X::Peek) {
        let upd = FlowUpdate {
            id: 0,
            new_flow: true,
            to_server: true,
            handshake_completed: false,
            terminated: false,
            half_open: false,
            a_to_b,
        };
        (upd, X::default().peek(a_to_b))
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
        self.update_noting(now, key, a_to_b, tcp_flags, None, frame_len, None)
            .0
    }

    /// [`FlowTable::update`], also recording a TCP segment in the flow's [`TcpEnds`] (the
    /// worker does for flows of protected VMs, so isolating one can reset them all), and
    /// returning what the owner reads of the flow's extension with each packet
    /// ([`FlowExt::peek`]).
    // One argument per thing a packet tells the table; a struct for them would be built and
    // taken apart again on every packet.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn update_noting(
        &mut self,
        now: Timestamp,
        key: &FlowKey,
        a_to_b: bool,
        tcp_flags: Option<TcpFlags>,
        tcp_seq: Option<TcpSeq>,
        frame_len: usize,
        note: Option<&SegmentNote<'_>>,
    ) -> (FlowUpdate, X::Peek) {
        self.packets_since_sweep += 1;
        if now >= self.next_sweep
            && self.packets_since_sweep >= self.index.capacity() / SWEEP_PACKETS_PER_FLOW
        {
            self.sweep(now);
        }
        let t = self.timeouts;
        let run = core::mem::take(&mut self.new_run);
        let hash = self.hash32(key);
        // One probe on the common path: the slot holds either a live flow, a flow that timed
        // out but was not swept yet (its packet starts a new flow in its place), or nothing.
        let found = self.find_slot(hash, key);
        let live = match found.and_then(|slot| Some((slot, self.entry_mut(slot)?))) {
            Some((slot, (_, f))) if now.since(f.last_seen) <= timeout(&t, key, f) => {
                Some((slot, f))
            }
            _ => None,
        };
        let (slot, f, new_flow) = match live {
            Some((slot, f)) => (slot, f, false),
            None => {
                self.new_run = run.saturating_add(1);
                match self.start_flow(now, (hash, found), key, a_to_b, tcp_flags) {
                    Some((slot, f)) => (slot, f, true),
                    None => return Self::untracked(a_to_b),
                }
            }
        };
        let to_server = a_to_b == f.client_is_a;
        f.last_seen = now;
        if let Some(n) = note {
            f.ends.get_or_insert_with(Box::default).note(a_to_b, n);
        }
        if to_server {
            f.pkts_to_server = f.pkts_to_server.saturating_add(1);
            f.bytes_to_server = f.bytes_to_server.saturating_add(frame_len as u64);
        } else {
            f.pkts_to_client = f.pkts_to_client.saturating_add(1);
            f.bytes_to_client = f.bytes_to_client.saturating_add(frame_len as u64);
        }
        let mut handshake_completed = false;
        f.rst_inject = false;
        f.invalid_ts = false;
        if let (Some(flags), Some(t)) = (tcp_flags, tcp_seq) {
            // A SYN, or a first segment with timestamps, starts the validation.
            if new_flow
                && f.paws.is_none()
                && ((flags.has(TcpFlags::SYN) && !flags.has(TcpFlags::ACK)) || t.ts.is_some())
            {
                f.paws = Some(Box::new(Paws::new(f.os[0], f.os[1])));
            }
            if let Some(p) = f.paws.as_deref_mut() {
                let seg = TsSegment {
                    to_server,
                    flags,
                    seq: t.seq,
                    seq_len: t.seq_len,
                    ts: t.ts,
                    now_secs: u32::try_from(now.micros() / Timestamp::SECOND).unwrap_or(u32::MAX),
                };
                f.invalid_ts = !p.check(&seg);
            }
        }
        if let (Some(mut state), Some(flags), false) = (f.tcp, tcp_flags, f.invalid_ts) {
            if state == TcpState::Reset
                && !flags.has(TcpFlags::RST)
                && let Some((by_client, before)) = f.rst
                && by_client == to_server
            {
                state = before;
                f.rst = None;
                f.rst_inject = true;
            }
            let next = if flags.has(TcpFlags::RST) {
                if state != TcpState::Reset {
                    f.rst = Some((to_server, state));
                }
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
        let upd = FlowUpdate {
            id: f.id,
            new_flow,
            to_server,
            handshake_completed,
            terminated: f.terminated,
            half_open,
            a_to_b,
        };
        let invalid_ts = f.invalid_ts;
        let peek = f.ext.peek(a_to_b);
        self.last_slot = slot;
        if invalid_ts {
            self.stats.invalid_timestamps += 1;
        }
        (upd, peek)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A flow the app layer found running the other way round: the other endpoint is the client
    // from then on, and the per-direction counts follow.
    #[test]
    fn reverse_swaps_the_client() {
        let mut t: FlowTable = FlowTable::new(FlowConfig::default(), 0);
        let (k, a_to_b) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, ep(1, 6666), ep(2, 65));
        let psh_ack = Some(TcpFlags(TcpFlags::PSH | TcpFlags::ACK));
        let u = t.update(Timestamp(1), &k, a_to_b, psh_ack, 100);
        assert!(u.to_server && u.new_flow);
        let f = t.get_mut(&k).unwrap();
        f.reverse();
        assert_eq!((f.pkts_to_server, f.pkts_to_client), (0, 1));
        assert_eq!((f.bytes_to_server, f.bytes_to_client), (0, 100));
        let u = t.update(Timestamp(2), &k, a_to_b, psh_ack, 60);
        assert!(!u.to_server);
        let u = t.update(Timestamp(3), &k, !a_to_b, psh_ack, 60);
        assert!(u.to_server);
        let f = t.get(&k).unwrap();
        assert_eq!((f.pkts_to_server, f.pkts_to_client), (1, 2));
    }
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

    // A run of packets that each start a flow is a flood (the worker then prefetches), until a
    // packet finds its flow.
    #[test]
    fn a_run_of_new_flows_is_a_flood_until_a_packet_finds_its_flow() {
        let mut t: FlowTable = FlowTable::new(FlowConfig::default(), 0);
        let now = Timestamp(1);
        let mut last = None;
        for i in 0..FLOOD_RUN {
            assert!(!t.flooded());
            let src = ep(u8::try_from(i).unwrap() + 10, 1000);
            let (k, d) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, src, ep(2, 80));
            assert!(t.update(now, &k, d, SYN, 60).new_flow);
            last = Some((k, d));
        }
        assert!(t.flooded());
        let (k, d) = last.unwrap();
        assert!(!t.update(now, &k, d, SYN, 60).new_flow);
        assert!(!t.flooded());
    }

    #[test]
    fn handshake_tracks_state() {
        let mut t: FlowTable = FlowTable::new(FlowConfig::default(), 0);
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

    // Suricata bug 3286: before the SYN/ACK, a "server" RST echoing a timestamp the client never
    // sent is rejected: the flow is not reset, the packet says so and is counted; the real
    // SYN/ACK then opens the connection without any `rst_inject`.
    #[test]
    fn forged_rst_before_the_syn_ack_changes_nothing() {
        let mut t: FlowTable = FlowTable::new(FlowConfig::default(), 0);
        let (k, c2s) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, ep(1, 40000), ep(2, 80));
        let now = Timestamp(1);
        let seq = |seq, seq_len, ts| Some(TcpSeq { seq, seq_len, ts });
        let rst = Some(TcpFlags(TcpFlags::RST | TcpFlags::ACK));
        t.update_noting(now, &k, c2s, SYN, seq(100, 1, Some((7000, 0))), 60, None);
        t.update_noting(now, &k, !c2s, rst, seq(0, 0, Some((100, 100))), 60, None);
        let f = t.get(&k).unwrap();
        assert_eq!(f.tcp, Some(TcpState::SynSent));
        assert!(f.facts().invalid_timestamp);
        assert_eq!(t.stats().invalid_timestamps, 1);
        t.update_noting(
            now,
            &k,
            !c2s,
            SYNACK,
            seq(900, 1, Some((50, 7000))),
            60,
            None,
        );
        let f = t.get(&k).unwrap();
        assert_eq!(f.tcp, Some(TcpState::SynReceived));
        assert!(!f.facts().invalid_timestamp && !f.facts().rst_inject);
        // Without timestamps on the packet nothing is rejected.
        t.update_noting(now, &k, !c2s, rst, seq(901, 0, None), 60, None);
        assert_eq!(t.get(&k).unwrap().tcp, Some(TcpState::Reset));
    }

    // `host-os-policy` is read once per TCP flow: the client host's and the server host's.
    #[test]
    fn receiving_hosts_get_their_policy() {
        let mut cfg = FlowConfig::default();
        cfg.host_os.add("old-linux", "[10.0.0.2]").unwrap();
        let mut t: FlowTable = FlowTable::new(cfg, 0);
        let (k, c2s) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, ep(1, 40000), ep(2, 80));
        t.update(Timestamp(1), &k, c2s, SYN, 60);
        assert_eq!(
            t.get(&k).unwrap().facts().os,
            [OsPolicy::Bsd, OsPolicy::OldLinux]
        );
    }

    // A RST whose sender goes on sending was injected: the flow returns to its state before
    // the RST and the packet says so; the peer's packets after a RST leave it reset.
    #[test]
    fn rst_then_same_sender_is_an_injection() {
        let mut t: FlowTable = FlowTable::new(FlowConfig::default(), 0);
        let (k, c2s) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, ep(1, 40000), ep(2, 80));
        let now = Timestamp(1);
        let rst = Some(TcpFlags(TcpFlags::RST | TcpFlags::ACK));
        t.update(now, &k, c2s, SYN, 60);
        t.update(now, &k, !c2s, SYNACK, 60);
        t.update(now, &k, c2s, ACK, 60);
        t.update(now, &k, c2s, rst, 60);
        assert_eq!(t.get(&k).unwrap().tcp, Some(TcpState::Reset));
        assert!(!t.get(&k).unwrap().facts().rst_inject);
        t.update(now, &k, c2s, ACK, 60);
        let f = t.get(&k).unwrap().facts();
        assert_eq!(f.tcp, Some(TcpState::Established));
        assert!(f.rst_inject);
        t.update(now, &k, !c2s, ACK, 60);
        assert!(!t.get(&k).unwrap().facts().rst_inject);
        // A RST answered by the peer only: the flow stays reset.
        t.update(now, &k, !c2s, rst, 60);
        t.update(now, &k, c2s, ACK, 60);
        let f = t.get(&k).unwrap().facts();
        assert_eq!(f.tcp, Some(TcpState::Reset));
        assert!(!f.rst_inject);
    }

    #[test]
    fn synack_first_makes_other_side_client() {
        let mut t: FlowTable = FlowTable::new(FlowConfig::default(), 0);
        let (k, s2c) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, ep(2, 80), ep(9, 40000));
        let u = t.update(Timestamp(1), &k, s2c, SYNACK, 60);
        assert!(!u.to_server);
    }

    #[test]
    fn timeouts_remove_flows() {
        let mut t: FlowTable = FlowTable::new(FlowConfig::default(), 0);
        let (k, d) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, ep(1, 1), ep(2, 2));
        t.update(Timestamp(0), &k, d, SYN, 60);
        assert_eq!(t.sweep(Timestamp(59 * Timestamp::SECOND)), 0);
        assert_eq!(t.sweep(Timestamp(61 * Timestamp::SECOND)), 1);
        assert!(t.is_empty());
        assert_eq!(t.stats().timed_out, 1);
    }

    #[test]
    fn timed_out_flow_is_new_even_before_a_sweep() {
        let mut t: FlowTable = FlowTable::new(FlowConfig::default(), 0);
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
        let mut t: FlowTable = FlowTable::new(cfg, 0);
        for i in 0..1000u16 {
            let (k, d) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Udp, ep(1, i), ep(2, 53));
            t.update(Timestamp(u64::from(i)), &k, d, None, 60);
            assert!(t.len() <= 100);
        }
        assert_eq!(t.stats().created, 1000);
        assert!(t.stats().evicted >= 900);
    }

    fn small(max_flows: usize) -> FlowTable {
        FlowTable::new(
            FlowConfig {
                max_flows,
                ..FlowConfig::default()
            },
            0,
        )
    }

    /// A spoofed SYN from source `i` (10.x.y.z) to the protected server.
    fn spoofed_syn(t: &mut FlowTable, i: u32, now: Timestamp) -> FlowUpdate {
        let src = (
            IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i & 0x00ff_ffff))),
            40_000,
        );
        let (k, d) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, src, ep(200, 80));
        t.update(now, &k, d, SYN, 60)
    }

    /// A completed handshake from 192.168.0.`last`; returns its key.
    fn handshake(t: &mut FlowTable, last: u8, now: Timestamp) -> FlowKey {
        let c = (IpAddr::V4(Ipv4Addr::new(192, 168, 0, last)), 50_000);
        let (k, d) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, c, ep(200, 80));
        t.update(now, &k, d, SYN, 60);
        t.update(now, &k, !d, SYNACK, 60);
        assert!(t.update(now, &k, d, ACK, 60).handshake_completed);
        k
    }

    #[test]
    fn a_syn_flood_evicts_its_own_oldest_flows_not_answered_ones() {
        let mut t = small(1024);
        let now = Timestamp(1_000_000);
        let kept: Vec<FlowKey> = (1..=100).map(|i| handshake(&mut t, i, now)).collect();
        let first = spoofed_syn(&mut t, 0, now).id;
        for i in 1..50_000 {
            spoofed_syn(&mut t, i, now);
            assert!(t.len() <= 1024);
        }
        for k in &kept {
            let f = t.get(k).expect("an answered flow survives the flood");
            assert_eq!(f.tcp, Some(TcpState::Established));
        }
        // The oldest spoofed flows went first: the first one is gone, the last ones are there.
        assert!(t.slots.iter().flatten().all(|(_, f)| f.id != first));
        let last = spoofed_syn(&mut t, 49_999, now);
        assert!(!last.new_flow, "the newest spoofed flow is still tracked");
        let s = t.stats();
        assert_eq!(s.emergencies, 1);
        assert!(s.emergency);
        assert_eq!(s.evicted, 100 + 50_000 - 1024);
        assert_eq!(s.created, 100 + 50_000);
        // The queues never hold much more than the table.
        assert!(t.fresh.len() + t.settled.len() <= 1024 + 1024 / 4 + 1);
    }

    /// The slab and its index agree: every flow in a slot is found at that slot through the
    /// index, every index entry names a flow, and every other slot is listed free once.
    fn assert_consistent<X: FlowExt>(t: &FlowTable<X>) {
        let mut live = 0;
        for (i, e) in t.slots.iter().enumerate() {
            let slot = u32::try_from(i).unwrap();
            match e {
                Some((k, _)) => {
                    live += 1;
                    assert_eq!(t.find_slot(t.hash32(k), k), Some(slot));
                }
                None => assert_eq!(t.free.iter().filter(|f| **f == slot).count(), 1),
            }
        }
        assert_eq!(t.index.len(), live);
        assert_eq!(t.free.len() + live, t.slots.len());
        assert!(t.slots.len() <= t.cfg.max_flows);
    }

    proptest::proptest! {
        /// Random traffic over a few hundred keys through a small table (new flows, answers,
        /// handshakes, time jumps past timeouts, sweeps): the slab and the index stay
        /// consistent, the table within its cap, and a flow just updated is found.
        #[test]
        fn slab_and_index_stay_consistent(
            ops in proptest::collection::vec((0u16..300, 0u8..4, 0u64..20_000_000), 1..600),
        ) {
            let mut t = small(64);
            let mut now = Timestamp(1_000_000);
            for (port, kind, dt) in ops {
                now = now.plus_micros(dt);
                let (k, d) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, ep(1, port), ep(2, 80));
                match kind {
                    0 => {
                        t.update(now, &k, d, SYN, 60);
                    }
                    1 => {
                        t.update(now, &k, !d, SYNACK, 60);
                    }
                    2 => {
                        t.update(now, &k, d, ACK, 60);
                    }
                    _ => {
                        t.sweep(now);
                    }
                }
                if kind < 3 {
                    proptest::prop_assert!(t.get(&k).is_some());
                }
                proptest::prop_assert!(t.len() <= 64);
                assert_consistent(&t);
            }
        }
    }

    #[test]
    fn an_update_reaches_its_flow_again_until_the_flow_leaves() {
        let mut t = small(1);
        let now = Timestamp(1_000_000);
        let (k1, d1) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Udp, ep(1, 1000), ep(2, 53));
        let (k2, d2) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Udp, ep(3, 1000), ep(2, 53));
        let u1 = t.update(now, &k1, d1, None, 60);
        t.get_mut_at(&k1, &u1).unwrap().pkts_to_server = 7;
        assert_eq!(t.get(&k1).unwrap().pkts_to_server, 7);
        // Another key's update does not reach this flow.
        assert!(t.get_mut_at(&k2, &u1).is_none());
        // At the cap of one, the second flow evicts the first and takes its slot: the first's
        // update reaches nothing, not the flow now in its slot.
        let u2 = t.update(now, &k2, d2, None, 60);
        assert_eq!(t.stats().evicted, 1);
        assert!(t.get_mut_at(&k1, &u1).is_none());
        assert!(t.get_mut_at(&k2, &u1).is_none());
        assert_eq!(t.get_mut_at(&k2, &u2).map(|f| f.id), Some(u2.id));
        // The same key started again after a timeout, in the same slot: the old update
        // reaches nothing either.
        let later = Timestamp(now.0 + 301 * Timestamp::SECOND);
        let u3 = t.update(later, &k2, d2, None, 60);
        assert!(u3.new_flow);
        assert!(t.get_mut_at(&k2, &u2).is_none());
        assert_eq!(t.get_mut_at(&k2, &u3).map(|f| f.id), Some(u3.id));
        // A flow updated before the last one is looked up by its key.
        let mut t = small(2);
        let u1 = t.update(now, &k1, d1, None, 60);
        let u2 = t.update(now, &k2, d2, None, 60);
        assert_eq!(t.get_mut_at(&k1, &u1).map(|f| f.id), Some(u1.id));
        assert_eq!(t.get_mut_at(&k2, &u2).map(|f| f.id), Some(u2.id));
        assert!(t.get_mut_at(&k1, &u2).is_none());
    }

    #[test]
    fn a_floods_new_flow_takes_the_slot_of_the_flow_it_evicted() {
        let mut t = small(1024);
        let now = Timestamp(1_000_000);
        for i in 0..50_000 {
            spoofed_syn(&mut t, i, now);
        }
        // The slab never grew past the cap: each flow past it went into the freed slot.
        assert_eq!(t.slots.len(), 1024);
        assert!(t.free.is_empty());
        assert_consistent(&t);
    }

    #[test]
    fn answered_flows_are_evicted_least_recently_seen_first_when_nothing_else_is_left() {
        let mut t = small(1024);
        let keys: Vec<FlowKey> = (0..1024u32)
            .map(|i| {
                let c = (IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 | i)), 50_000);
                let (k, d) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Udp, c, ep(200, 53));
                let now = Timestamp(1_000_000 + u64::from(i));
                t.update(now, &k, d, None, 60);
                t.update(now, &k, !d, None, 60);
                k
            })
            .collect();
        // Flow 0 is the oldest but was seen again just now: the sample keeps it.
        let now = Timestamp(2_000_000);
        t.update(now, &keys[0], true, None, 60);
        let u = spoofed_syn(&mut t, 1, now);
        assert!(u.new_flow);
        assert_eq!(t.len(), 1024);
        assert!(t.get(&keys[0]).is_some(), "recently seen");
        assert!(
            t.get(&keys[1]).is_none(),
            "least recently seen of the sample"
        );
    }

    #[test]
    fn emergency_mode_shortens_timeouts_until_the_table_recovers() {
        let mut t = small(1024);
        let start = Timestamp(1_000_000);
        let kept = handshake(&mut t, 1, start);
        for i in 0..2000 {
            spoofed_syn(&mut t, i, start);
        }
        assert!(t.in_emergency());
        // Six seconds later the spoofed flows are past the emergency timeout for new TCP flows
        // (5 s, not the normal 60 s): a sweep removes them and the table recovers.
        let later = Timestamp(7_000_000);
        assert_eq!(t.sweep(later), 1023);
        assert!(!t.update(later, &kept, true, ACK, 60).new_flow);
        assert!(!t.in_emergency());
        assert_eq!(t.len(), 1);
        assert!(t.fresh.len() + t.settled.len() <= 1);
        // Normal timeouts again: a new flow idle for 6 s is still there.
        spoofed_syn(&mut t, 5000, later);
        assert_eq!(t.sweep(Timestamp(13_000_000)), 0);
    }

    #[test]
    fn the_table_stays_in_emergency_until_enough_of_the_cap_is_free() {
        let mut t = small(1000);
        let start = Timestamp(1_000_000);
        for i in 0..1001 {
            spoofed_syn(&mut t, i, start);
        }
        assert!(t.in_emergency());
        // 720 flows still fresh at the sweep: 28% free, below the 30% recovery.
        for i in 2000..2720 {
            spoofed_syn(&mut t, i, Timestamp(5_000_000));
        }
        t.sweep(Timestamp(7_000_000));
        assert_eq!(t.len(), 720);
        assert!(t.in_emergency());
        for i in 2000..2020 {
            let src = (IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)), 40_000);
            let (k, _) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Tcp, src, ep(200, 80));
            let f = t.get_mut(&k).unwrap();
            f.last_seen = Timestamp(0);
        }
        t.sweep(Timestamp(7_000_001));
        assert_eq!(t.len(), 700);
        assert!(!t.in_emergency(), "70% full is 30% free");
    }

    #[test]
    fn replaced_and_timed_out_flows_leave_no_queue_entries_behind() {
        let mut t = small(1024);
        let (k, d) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Udp, ep(1, 1), ep(2, 2));
        // The same key timing out and starting again, 10,000 times: each start queues an entry.
        for i in 0..10_000u64 {
            let u = t.update(Timestamp(i * 301 * Timestamp::SECOND), &k, d, None, 60);
            assert!(u.new_flow);
            assert!(t.fresh.len() + t.settled.len() <= 1024 + 1024 / 4 + 1);
        }
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn counts_per_direction_for_flow_pkts_and_bytes() {
        let mut t: FlowTable = FlowTable::new(FlowConfig::default(), 0);
        let (k, to_b) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Udp, ep(1, 5000), ep(2, 53));
        let (_, to_a) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Udp, ep(2, 53), ep(1, 5000));
        t.update(Timestamp(1), &k, to_b, None, 60);
        t.update(Timestamp(2), &k, to_a, None, 1500);
        t.update(Timestamp(3), &k, to_b, None, 100);
        let facts = t.get_mut(&k).map(|f| f.facts());
        assert_eq!(
            facts.map(|f| (f.pkts, f.bytes)),
            Some(([2, 1], [160, 1500]))
        );
        // Client and server follow the flow's first packet, not the key's order.
        let mut t: FlowTable = FlowTable::new(FlowConfig::default(), 0);
        t.update(Timestamp(1), &k, to_a, None, 70);
        let facts = t.get_mut(&k).map(|f| f.facts());
        assert_eq!(facts.map(|f| (f.pkts, f.bytes)), Some(([1, 0], [70, 0])));
    }

    #[test]
    fn ids_are_distinct_and_deterministic() {
        let mut a: FlowTable = FlowTable::new(FlowConfig::default(), 0);
        let mut b: FlowTable = FlowTable::new(FlowConfig::default(), 0);
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

    /// An owner's extension: a per-direction value the packets read, and flows marked `keep`
    /// asking to be retired.
    #[derive(Debug, Default)]
    struct Ext {
        dir: [u32; 2],
        keep: bool,
    }

    impl FlowExt for Ext {
        type Peek = u32;

        fn peek(&self, a_to_b: bool) -> u32 {
            self.dir[usize::from(!a_to_b)]
        }

        fn keep_on_leave(flow: &Flow<Self>) -> bool {
            flow.ext.keep
        }
    }

    #[test]
    fn the_extension_starts_with_the_flow_and_leaves_as_it_asks() {
        let mut t: FlowTable<Ext> = FlowTable::new(FlowConfig::default(), 0);
        t.set_retire(true);
        let (k1, d1) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Udp, ep(1, 1), ep(2, 53));
        let (k2, d2) = FlowKey::new(VlanScope::UNTAGGED, IpProto::Udp, ep(1, 2), ep(2, 53));
        let now = Timestamp(Timestamp::SECOND);
        let (u, peek) = t.update_noting(now, &k1, d1, None, None, 60, None);
        assert!(u.new_flow);
        assert_eq!(peek, 0);
        if let Some(f) = t.get_mut(&k1) {
            f.ext.dir = [7, 9];
            f.ext.keep = true;
        }
        assert_eq!(
            t.update_noting(now, &k1, d1, None, None, 60, None).1,
            if d1 { 7 } else { 9 }
        );
        assert_eq!(
            t.update_noting(now, &k1, !d1, None, None, 60, None).1,
            if d1 { 9 } else { 7 }
        );
        t.update(now, &k2, d2, None, 60);
        // Both time out; only the flow whose extension asks is handed over, with its state.
        t.sweep(now.plus_micros(FlowConfig::default().timeouts.udp_us + 1));
        assert!(t.is_empty());
        let retired = t.take_retired();
        assert_eq!(retired.len(), 1);
        assert_eq!(
            retired.first().map(|(k, f)| (*k, f.ext.dir)),
            Some((k1, [7, 9]))
        );
        // A new flow on the key starts with a fresh extension.
        let (u, peek) = t.update_noting(now, &k1, d1, None, None, 60, None);
        assert!(u.new_flow);
        assert_eq!(peek, 0);
    }
}
