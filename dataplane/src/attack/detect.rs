//! The detectors of the attack blocker.

use core::net::IpAddr;

use policy::{Detectors, Threshold};
use vlan::VlanScope;

use super::state::{
    Arrival, BoundedMap, DistinctWindow, Episode, FirstSeen, LastSeen, NO_SLOT, Probe, RateWindow,
    ScopedAddr, SlotMap,
};
use super::{Attack, SINGLE_PACKET_QUIET_US};
use crate::decode::{Arp, Ip, L4, TcpFlags};
use crate::flow::FlowUpdate;
use crate::time::Timestamp;

/// What the attack blocker needs to know about one IP packet.
#[derive(Clone, Copy, Debug)]
pub struct PacketFacts<'a> {
    /// Packet time.
    pub now: Timestamp,
    /// VLAN scope.
    pub scope: VlanScope,
    /// Source MAC.
    pub eth_src: [u8; 6],
    /// The IP packet (addresses, transport layer), borrowed: copying its addresses into this
    /// struct cost a store-forwarding stall per read on the hot path.
    pub ip: &'a Ip<'a>,
    /// Flow accounting of this packet (`None` if the packet is not tracked).
    pub flow: Option<FlowUpdate>,
}

/// One detection. The attack blocker returns one for every packet that is part of an attack:
/// `report` is true for the packet that starts an episode (raise an event, block the source), and
/// false while the episode goes on (the packet is still an attack packet: drop it when acting).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Detection {
    /// What was detected.
    pub attack: Attack,
    /// The attacking address (the packet's source).
    pub src: IpAddr,
    /// The attacked address.
    pub dst: IpAddr,
    /// Whether this packet starts an episode.
    pub report: bool,
}

/// Caps on the tracked state (entries per table).
#[derive(Clone, Copy, Debug)]
pub struct StateCaps {
    /// Sources tracked for scans and single-packet attacks.
    pub sources: usize,
    /// Destinations tracked for floods.
    pub destinations: usize,
    /// IP-to-MAC bindings tracked for MAC spoofing.
    pub mac_bindings: usize,
    /// Sources that proved their address by completing a TCP handshake.
    pub proven: usize,
    /// Slots of each of the two tables of addresses seen once ([`FirstSeen`]), 64 bytes each: a
    /// source gets an entry in `sources` or `mac_bindings` only with its second probe or
    /// packet, a destination one in `destinations` only with its second counted packet.
    pub first_seen: usize,
}

impl Default for StateCaps {
    /// 64 Ki entries a table: a few MB at most, and enough that eviction only starts under a
    /// flood of random sources, where losing the oldest state is the right trade.
    fn default() -> Self {
        StateCaps {
            sources: 1 << 16,
            destinations: 1 << 16,
            mac_bindings: 1 << 16,
            proven: 1 << 16,
            first_seen: 1 << 16,
        }
    }
}

/// Counters of the attack blocker's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttackStats {
    /// Sources tracked now.
    pub sources: u64,
    /// Destinations tracked now.
    pub destinations: u64,
    /// MAC bindings tracked now.
    pub mac_bindings: u64,
    /// Proven sources tracked now.
    pub proven: u64,
    /// Entries evicted at the caps.
    pub evicted: u64,
    /// First sightings (of sources and of destinations) lost to another address taking their
    /// slot before their second packet.
    pub first_seen_replaced: u64,
}

/// Per-source episode slots.
#[derive(Clone, Copy)]
enum SrcEp {
    TcpScan,
    UdpScan,
    Sweep,
    Land,
    PingOfDeath,
    Teardrop,
    Null,
    Xmas,
    SynFin,
}
#[derive(Debug, Default)]
struct SrcEpisodes {
    tcp_scan: Episode,
    udp_scan: Episode,
    sweep: Episode,
    land: Episode,
    ping_of_death: Episode,
    teardrop: Episode,
    null: Episode,
    xmas: Episode,
    syn_fin: Episode,
}

#[derive(Debug, Default)]
struct SrcState {
    last: Timestamp,
    tcp_ports: DistinctWindow<u16>,
    udp_ports: DistinctWindow<u16>,
    hosts: DistinctWindow<IpAddr>,
    episodes: SrcEpisodes,
}

impl LastSeen for SrcState {
    fn last_seen(&self) -> Timestamp {
        self.last
    }
}

impl SrcState {
    /// Feed a new state the probe its source sent before it had one, at the probe's time.
    fn feed_first(&mut self, d: &Detectors, f: &Probe) {
        if let Some(port) = f.tcp_port {
            let th = &d.tcp_port_scan;
            self.tcp_ports.insert(port, f.at, window_us(th), cap(th));
        }
        if let Some(port) = f.udp_port {
            let th = &d.udp_port_scan;
            self.udp_ports.insert(port, f.at, window_us(th), cap(th));
        }
        if let Some(host) = f.host {
            let th = &d.host_sweep;
            self.hosts.insert(host, f.at, window_us(th), cap(th));
        }
    }

    fn episode(&mut self, slot: SrcEp) -> &mut Episode {
        let e = &mut self.episodes;
        match slot {
            SrcEp::TcpScan => &mut e.tcp_scan,
            SrcEp::UdpScan => &mut e.udp_scan,
            SrcEp::Sweep => &mut e.sweep,
            SrcEp::Land => &mut e.land,
            SrcEp::PingOfDeath => &mut e.ping_of_death,
            SrcEp::Teardrop => &mut e.teardrop,
            SrcEp::Null => &mut e.null,
            SrcEp::Xmas => &mut e.xmas,
            SrcEp::SynFin => &mut e.syn_fin,
        }
    }
}

#[derive(Debug, Default)]
struct DstState {
    last: Timestamp,
    syn: RateWindow,
    handshakes: RateWindow,
    udp: RateWindow,
    icmp: RateWindow,
    syn_ep: Episode,
    udp_ep: Episode,
    icmp_ep: Episode,
}

impl LastSeen for DstState {
    fn last_seen(&self) -> Timestamp {
        self.last
    }
}

impl DstState {
    /// Feed a new state the packet its destination received before it had one, at that
    /// packet's time (none of the windows could fire on it alone: see `inspect_destination`).
    fn feed_first(&mut self, d: &Detectors, a: &Arrival) {
        if a.handshake {
            self.handshakes.add(a.at, window_us(&d.syn_flood), 1);
        }
        if a.syn {
            self.syn.add(a.at, window_us(&d.syn_flood), 1);
        }
        if a.udp {
            self.udp.add(a.at, window_us(&d.udp_flood), 1);
        }
        if a.icmp {
            self.icmp.add(a.at, window_us(&d.icmp_flood), 1);
        }
    }
}

/// An IP address's MAC as first seen in a VLAN.
#[derive(Debug, Default)]
struct MacBinding {
    mac: [u8; 6],
    /// Last time the bound MAC itself used the address.
    owner_seen: Timestamp,
    last: Timestamp,
    episode: Episode,
}

impl LastSeen for MacBinding {
    fn last_seen(&self) -> Timestamp {
        self.last
    }
}

/// A source address that completed a TCP handshake, and the MAC address it did it from.
#[derive(Debug, Default)]
struct Proof {
    mac: [u8; 6],
    last: Timestamp,
}

impl LastSeen for Proof {
    fn last_seen(&self) -> Timestamp {
        self.last
    }
}

/// How long a completed handshake proves its client's address ([`AttackBlocker::is_proven`]).
const PROOF_US: u64 = policy::AttackBlocker::PROOF_SECS * Timestamp::SECOND;

/// A binding whose owner has been silent this long may move to a new MAC without an alert (a VM
/// migrated, a NIC was replaced, DHCP handed the address to another VM).
const MAC_BINDING_AGING_US: u64 = 300 * Timestamp::SECOND;

/// How often (packet time) idle state is pruned.
const PRUNE_INTERVAL_US: u64 = 10 * Timestamp::SECOND;

/// The attack blocker of one worker.
#[derive(Debug)]
pub struct AttackBlocker {
    sources: BoundedMap<ScopedAddr, SrcState>,
    destinations: BoundedMap<ScopedAddr, DstState>,
    macs: SlotMap<ScopedAddr, MacBinding>,
    /// Sources that proved their address. Capped like the others: under a flood of handshakes
    /// from many sources the least recently proven of a sample is forgotten, and a forgotten
    /// source is only not blocked by a single-packet detection, never blocked wrongly.
    proven: BoundedMap<ScopedAddr, Proof>,
    /// Addresses seen once: where a source waits for its second packet before it gets an entry
    /// in `sources` or `macs`, so that a flood of one packet a source costs no entry.
    first: FirstSeen,
    /// Destinations sent one counted packet: where a destination waits for its second before
    /// it gets an entry in `destinations` (a flood of one packet a destination costs none).
    first_dst: FirstSeen,
    next_prune: Timestamp,
    packets_since_prune: usize,
}

/// Pruning waits until one packet per this many table slots has been seen since the last prune,
/// keeping its cost amortised (see the flow table's sweep).
const PRUNE_PACKETS_PER_ENTRY: usize = 2;

fn window_us(t: &Threshold) -> u64 {
    u64::from(t.window_secs).saturating_mul(Timestamp::SECOND)
}

/// How long per-source and per-destination state is kept idle: while it can still matter, two
/// windows (rate estimates look back one), and at least the single-packet quiet period.
fn state_idle_us(d: &Detectors) -> u64 {
    let longest = [
        d.tcp_port_scan,
        d.udp_port_scan,
        d.host_sweep,
        d.syn_flood,
        d.udp_flood,
        d.icmp_flood,
    ]
    .iter()
    .map(window_us)
    .max()
    .unwrap_or(0);
    longest.saturating_mul(2).max(SINGLE_PACKET_QUIET_US)
}

/// How long a MAC binding is kept idle ([`MAC_BINDING_AGING_US`], or the state's idle time if
/// longer).
fn mac_idle_us(d: &Detectors) -> u64 {
    MAC_BINDING_AGING_US.max(state_idle_us(d))
}

fn cap(t: &Threshold) -> usize {
    usize::try_from(t.count).unwrap_or(usize::MAX)
}

/// Whether an address can identify one host (not unspecified, multicast or broadcast).
fn is_host_addr(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

impl AttackBlocker {
    /// A blocker with empty state.
    pub fn new(caps: StateCaps) -> Self {
        AttackBlocker {
            sources: BoundedMap::new(caps.sources),
            destinations: BoundedMap::new(caps.destinations),
            macs: SlotMap::new(caps.mac_bindings),
            proven: BoundedMap::new(caps.proven),
            first: FirstSeen::new(caps.first_seen),
            first_dst: FirstSeen::new(caps.first_seen),
            next_prune: Timestamp(0),
            packets_since_prune: 0,
        }
    }

    /// State counters.
    pub fn stats(&self) -> AttackStats {
        AttackStats {
            sources: self.sources.len() as u64,
            destinations: self.destinations.len() as u64,
            mac_bindings: self.macs.len() as u64,
            proven: self.proven.len() as u64,
            evicted: self.sources.evicted()
                + self.destinations.evicted()
                + self.macs.evicted()
                + self.proven.evicted(),
            first_seen_replaced: self.first.replaced() + self.first_dst.replaced(),
        }
    }

    /// Count the packet and prune when due. The test of the time is all a packet pays: the
    /// rest is out of line.
    #[inline]
    fn prune(&mut self, d: &Detectors, now: Timestamp) {
        self.packets_since_prune += 1;
        if now >= self.next_prune {
            self.prune_due(d, now);
        }
    }

    #[cold]
    #[inline(never)]
    fn prune_due(&mut self, d: &Detectors, now: Timestamp) {
        let tracked = self.sources.capacity()
            + self.destinations.capacity()
            + self.macs.capacity()
            + self.proven.capacity();
        if self.packets_since_prune < tracked / PRUNE_PACKETS_PER_ENTRY {
            return;
        }
        self.next_prune = now.plus_micros(PRUNE_INTERVAL_US);
        self.packets_since_prune = 0;
        let idle = state_idle_us(d);
        self.sources.prune(now, idle);
        self.destinations.prune(now, idle);
        self.macs.prune(now, MAC_BINDING_AGING_US.max(idle));
        self.proven.prune(now, PROOF_US);
    }

    /// Start fetching the first-seen slots of a packet's source and destination (addresses
    /// `src`/`dst` of family `v6` in `scope`), which its inspection reads when the addresses
    /// have no state yet: the worker calls this early for a packet of a flood of new flows
    /// ([`crate::flow::FlowTable::flooded`]), so these misses overlap the flow table's.
    #[inline]
    pub fn prefetch(&self, scope: VlanScope, src: u128, dst: u128, v6: bool) {
        self.first.prefetch(ScopedAddr::from_bits(scope, src, v6));
        self.first_dst
            .prefetch(ScopedAddr::from_bits(scope, dst, v6));
    }

    /// `src` completed a TCP handshake from `mac` at `now`: the final ACK acknowledged the
    /// server's SYN/ACK, which only the owner of the address receives. The caller checks the
    /// acknowledgement number ([`crate::flow::FlowTable::acks_syn_ack`]); a flow picked up
    /// midstream proves nothing.
    pub fn prove(&mut self, scope: VlanScope, src: IpAddr, mac: [u8; 6], now: Timestamp) {
        if !is_host_addr(src) {
            return;
        }
        let p = self.proven.entry(ScopedAddr::new(scope, src));
        p.mac = mac;
        p.last = now;
    }

    /// Whether `src` in `scope` proved its address from `mac` within the last
    /// [`policy::AttackBlocker::PROOF_SECS`] before `now`. A packet carrying the address from
    /// another MAC (a spoof of a proven host) is not proven. Proofs are per worker: a source
    /// proven on another worker's flows is unverified here, so the check errs toward not
    /// blocking.
    pub fn is_proven(
        &mut self,
        scope: VlanScope,
        src: IpAddr,
        mac: [u8; 6],
        now: Timestamp,
    ) -> bool {
        self.proven
            .get_mut(&ScopedAddr::new(scope, src))
            .is_some_and(|p| p.mac == mac && now.since(p.last) <= PROOF_US)
    }

    /// Inspect one IP packet (after reassembly). Calls `found` for each detection.
    ///
    /// `mac_slot` is where the source's MAC binding was found last time (the flow keeps one per
    /// direction, [`NO_SLOT`] at first); it is checked against the address and updated, so the
    /// packets of an established flow reach their binding without a hash lookup.
    ///
    /// Inlined into its one caller, the worker: the facts then stay in registers (read back
    /// through memory, the VLAN scope's narrow stores stalled the wide loads).
    #[inline]
    pub fn inspect(
        &mut self,
        d: &Detectors,
        p: &PacketFacts<'_>,
        mac_slot: &mut u32,
        found: &mut impl FnMut(Detection),
    ) {
        self.prune(d, p.now);
        let now = p.now;
        let mut emit = |attack: Attack, report: bool| {
            found(Detection {
                attack,
                src: p.ip.src(),
                dst: p.ip.dst(),
                report,
            })
        };

        // MAC spoofing: the address's bound MAC changed within the binding's life.
        let mut spoofed = false;
        if d.mac_spoofing.enabled
            && is_host_addr(p.ip.src())
            && let Some(report) = self.check_mac(d, now, p.scope, p.ip.src(), p.eth_src, mac_slot)
        {
            spoofed = true;
            emit(Attack::MacSpoofing, report);
        }

        // The common packet, a segment of an established TCP flow (ACK without SYN, not
        // FIN+PSH+URG, distinct addresses, not completing a handshake), feeds no per-source or
        // per-destination detector below, whatever the policy enables: not a SYN, no invalid
        // flag combination, not a land attack, not a probe, not counted toward a flood.
        if let L4::Tcp(t) = &p.ip.l4
            && t.flags.0 & (TcpFlags::ACK | TcpFlags::SYN) == TcpFlags::ACK
            && !t.flags.has(TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG)
            && p.ip.src_bits != p.ip.dst_bits
            && !p.flow.is_some_and(|f| f.handshake_completed)
        {
            return;
        }

        let tcp_syn = match &p.ip.l4 {
            L4::Tcp(t) => t.flags.has(TcpFlags::SYN) && !t.flags.has(TcpFlags::ACK),
            _ => false,
        };
        let new_initiator = p.flow.is_some_and(|f| f.new_flow && f.to_server);
        let to_server = p.flow.is_none_or(|f| f.to_server);

        // Per-source detectors.
        // One family per packet: equal bits are equal addresses.
        // Land: the source address is the destination address, whatever the protocol and the
        // ports. No host sends itself a packet over the wire, so the ports add nothing: the 1997
        // attack's equal ports are one case, variants with other ports (La Tierra) and
        // protocols are the same forgery. Snort's `sameip` rule (sid 527, "BAD-TRAFFIC same
        // SRC/DST") and the products this one models ("a request to connect to itself") compare
        // addresses only.
        let land = d.land.enabled && p.ip.src_bits == p.ip.dst_bits && is_host_addr(p.ip.src());
        let flags_attack = match &p.ip.l4 {
            L4::Tcp(t) if d.invalid_tcp_flags.enabled => {
                let core = t.flags.core();
                if core == 0 {
                    Some((Attack::TcpNull, SrcEp::Null))
                } else if t.flags.has(TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG) {
                    Some((Attack::TcpXmas, SrcEp::Xmas))
                } else if t.flags.has(TcpFlags::SYN | TcpFlags::FIN) {
                    Some((Attack::TcpSynFin, SrcEp::SynFin))
                } else {
                    None
                }
            }
            _ => None,
        };
        let sweep_probe = match &p.ip.l4 {
            L4::Icmp(i) => i.icmp_type == 8 || i.icmp_type == 13,
            L4::Icmpv6(i) => i.icmp_type == 128,
            _ => tcp_syn,
        };
        let udp_probe = matches!(&p.ip.l4, L4::Udp(_)) && new_initiator;
        // A packet carrying another host's address (MAC spoofing above, which drops it) does
        // not feed that host's scan and sweep counts: the owner's own SYNs would otherwise
        // count toward the spoofer's episode and be dropped with it. Single-packet detections
        // still report it (they match nothing the owner sends), and never block it.
        let (tcp_syn_src, udp_probe_src, sweep_probe_src) = if spoofed {
            (false, false, false)
        } else {
            (tcp_syn, udp_probe, sweep_probe)
        };
        let wants_src = land
            || flags_attack.is_some()
            || (d.tcp_port_scan.enabled && tcp_syn_src)
            || (d.udp_port_scan.enabled && udp_probe_src)
            || (d.host_sweep.enabled && sweep_probe_src);
        if wants_src && is_host_addr(p.ip.src()) {
            let key = ScopedAddr::from_bits(p.scope, p.ip.src_bits, p.ip.v6);
            // A source without state gets it with its second probe: the first waits in the
            // first-seen table and is fed to the new state before this one, so the counts are
            // those of state made at once. A detection this packet alone can cause needs the
            // state now (and takes a waiting probe along).
            let at_once = land
                || flags_attack.is_some()
                || (d.tcp_port_scan.enabled && tcp_syn_src && d.tcp_port_scan.count <= 1)
                || (d.udp_port_scan.enabled && udp_probe_src && d.udp_port_scan.count <= 1)
                || (d.host_sweep.enabled && sweep_probe_src && d.host_sweep.count <= 1);
            let first = &mut self.first;
            let admit = || {
                let probe = Probe {
                    at: now,
                    tcp_port: match &p.ip.l4 {
                        L4::Tcp(t) if d.tcp_port_scan.enabled && tcp_syn_src => Some(t.dst_port),
                        _ => None,
                    },
                    udp_port: match &p.ip.l4 {
                        L4::Udp(u) if d.udp_port_scan.enabled && udp_probe_src => Some(u.dst_port),
                        _ => None,
                    },
                    host: (d.host_sweep.enabled && sweep_probe_src).then(|| p.ip.dst()),
                };
                let waiting = first.probe_sighting(key, probe, state_idle_us(d), !at_once);
                if at_once {
                    Some(waiting)
                } else {
                    waiting.map(Some)
                }
            };
            let Some((s, admitted)) = self.sources.get_or_admit(key, admit) else {
                // The source's first probe: remembered, and nothing it could have caused alone.
                self.inspect_destination(d, p, tcp_syn, to_server, &mut emit);
                return;
            };
            if let Some(f) = admitted.flatten() {
                s.feed_first(d, &f);
            }
            s.last = now;
            if land {
                let report = s.episode(SrcEp::Land).hit(now, SINGLE_PACKET_QUIET_US);
                emit(Attack::Land, report);
            }
            if let Some((attack, slot)) = flags_attack {
                let report = s.episode(slot).hit(now, SINGLE_PACKET_QUIET_US);
                emit(attack, report);
            }
            if let (true, L4::Tcp(t)) = (d.tcp_port_scan.enabled && tcp_syn_src, &p.ip.l4) {
                let th = &d.tcp_port_scan;
                if s.tcp_ports.insert(t.dst_port, now, window_us(th), cap(th)) >= cap(th) {
                    let report = s.episode(SrcEp::TcpScan).hit(now, window_us(th));
                    emit(Attack::TcpPortScan, report);
                }
            }
            if let (true, L4::Udp(u)) = (d.udp_port_scan.enabled && udp_probe_src, &p.ip.l4) {
                let th = &d.udp_port_scan;
                if s.udp_ports.insert(u.dst_port, now, window_us(th), cap(th)) >= cap(th) {
                    let report = s.episode(SrcEp::UdpScan).hit(now, window_us(th));
                    emit(Attack::UdpPortScan, report);
                }
            }
            if d.host_sweep.enabled && sweep_probe_src {
                let th = &d.host_sweep;
                if s.hosts.insert(p.ip.dst(), now, window_us(th), cap(th)) >= cap(th) {
                    let report = s.episode(SrcEp::Sweep).hit(now, window_us(th));
                    emit(Attack::HostSweep, report);
                }
            }
        }

        self.inspect_destination(d, p, tcp_syn, to_server, &mut emit);
    }

    /// The per-destination flood detectors of [`AttackBlocker::inspect`]. Only unsolicited
    /// traffic counts: packets sent by the endpoint that opened the flow, so a large download to
    /// a VM is never a flood.
    #[inline]
    fn inspect_destination(
        &mut self,
        d: &Detectors,
        p: &PacketFacts<'_>,
        tcp_syn: bool,
        to_server: bool,
        emit: &mut impl FnMut(Attack, bool),
    ) {
        let now = p.now;
        let handshake_done = p.flow.is_some_and(|f| f.handshake_completed);
        let syn_new = tcp_syn && p.flow.is_none_or(|f| f.new_flow);
        let udp_in = matches!(&p.ip.l4, L4::Udp(_)) && to_server;
        let icmp_in = matches!(&p.ip.l4, L4::Icmp(_) | L4::Icmpv6(_)) && to_server;
        let wants_dst = (d.syn_flood.enabled && (syn_new || handshake_done))
            || (d.udp_flood.enabled && udp_in)
            || (d.icmp_flood.enabled && icmp_in);
        if wants_dst {
            let key = ScopedAddr::from_bits(p.scope, p.ip.dst_bits, p.ip.v6);
            let arrival = Arrival {
                at: now,
                syn: d.syn_flood.enabled && syn_new,
                handshake: d.syn_flood.enabled && handshake_done,
                udp: d.udp_flood.enabled && udp_in,
                icmp: d.icmp_flood.enabled && icmp_in,
            };
            // A destination without state gets it with its second counted packet, fed the
            // first (waiting in `first_dst`) before it, so the windows count as if the state
            // had been made at once. A window whose threshold one packet reaches needs the
            // state now.
            let at_once = (arrival.syn && d.syn_flood.count <= 1)
                || (arrival.udp && d.udp_flood.count <= 1)
                || (arrival.icmp && d.icmp_flood.count <= 1);
            let first = &mut self.first_dst;
            let admit = || {
                let waiting = first.arrival_sighting(key, arrival, state_idle_us(d), !at_once);
                if at_once {
                    Some(waiting)
                } else {
                    waiting.map(Some)
                }
            };
            let Some((t, admitted)) = self.destinations.get_or_admit(key, admit) else {
                return;
            };
            if let Some(a) = admitted.flatten() {
                t.feed_first(d, &a);
            }
            t.last = now;
            if d.syn_flood.enabled && handshake_done {
                t.handshakes.add(now, window_us(&d.syn_flood), 1);
            }
            if d.syn_flood.enabled && syn_new {
                let w = window_us(&d.syn_flood);
                t.syn.add(now, w, 1);
                let half_open = t
                    .syn
                    .estimate(now, w)
                    .saturating_sub(t.handshakes.estimate(now, w));
                if half_open >= u64::from(d.syn_flood.count) {
                    let report = t.syn_ep.hit(now, w);
                    emit(Attack::SynFlood, report);
                }
            }
            if d.udp_flood.enabled && udp_in {
                let w = window_us(&d.udp_flood);
                t.udp.add(now, w, 1);
                if t.udp.estimate(now, w) >= u64::from(d.udp_flood.count) {
                    let report = t.udp_ep.hit(now, w);
                    emit(Attack::UdpFlood, report);
                }
            }
            if d.icmp_flood.enabled && icmp_in {
                let w = window_us(&d.icmp_flood);
                t.icmp.add(now, w, 1);
                if t.icmp.estimate(now, w) >= u64::from(d.icmp_flood.count) {
                    let report = t.icmp_ep.hit(now, w);
                    emit(Attack::IcmpFlood, report);
                }
            }
        }
    }

    /// Check an IP-to-MAC binding; `Some(report)` when `mac` is not the address's bound MAC.
    #[inline]
    fn check_mac(
        &mut self,
        d: &Detectors,
        now: Timestamp,
        scope: VlanScope,
        ip: IpAddr,
        mac: [u8; 6],
        slot: &mut u32,
    ) -> Option<bool> {
        let key = ScopedAddr::new(scope, ip);
        if !self.macs.find(key, slot) {
            // An unbound address is bound with its second packet, to the MAC of its first (which
            // waits in the first-seen table), and that packet is checked against it: the
            // binding of one made at once. A flood of one packet a source binds nothing.
            let (first_at, first_mac) = self.first.mac_sighting(key, mac, now, mac_idle_us(d))?;
            let b = self.macs.entry(key, slot)?;
            *b = MacBinding {
                mac: first_mac,
                owner_seen: first_at,
                last: first_at,
                episode: Episode::default(),
            };
        }
        let b = self.macs.entry(key, slot)?;
        b.last = now;
        if b.mac == mac {
            b.owner_seen = now;
            return None;
        }
        if now.since(b.owner_seen) > MAC_BINDING_AGING_US {
            // The owner went quiet long ago: the address moved.
            b.mac = mac;
            b.owner_seen = now;
            return None;
        }
        Some(b.episode.hit(now, SINGLE_PACKET_QUIET_US))
    }

    /// Inspect an ARP message (MAC spoofing through ARP replies or gratuitous ARP).
    pub fn inspect_arp(
        &mut self,
        d: &Detectors,
        now: Timestamp,
        scope: VlanScope,
        arp: &Arp,
        found: &mut impl FnMut(Detection),
    ) {
        let ip = IpAddr::V4(arp.sender_ip);
        if !d.mac_spoofing.enabled || !is_host_addr(ip) {
            return;
        }
        let mut slot = NO_SLOT;
        if let Some(report) = self.check_mac(d, now, scope, ip, arp.sender_mac, &mut slot) {
            found(Detection {
                attack: Attack::MacSpoofing,
                src: ip,
                dst: IpAddr::V4(arp.target_ip),
                report,
            });
        }
    }

    /// Report an attack found by IP reassembly ([`Attack::PingOfDeath`] or [`Attack::Teardrop`]).
    #[allow(clippy::too_many_arguments)] // one argument per fact of the datagram; a struct would only rename them
    pub fn inspect_reassembly(
        &mut self,
        d: &Detectors,
        now: Timestamp,
        scope: VlanScope,
        src: IpAddr,
        dst: IpAddr,
        attack: Attack,
        found: &mut impl FnMut(Detection),
    ) {
        let (enabled, slot) = match attack {
            Attack::PingOfDeath => (d.ping_of_death.enabled, SrcEp::PingOfDeath),
            Attack::Teardrop => (d.teardrop.enabled, SrcEp::Teardrop),
            _ => return,
        };
        if !enabled {
            return;
        }
        // A detection of one datagram: the source's state is made now, with its waiting probe.
        let key = ScopedAddr::new(scope, src);
        let first = &mut self.first;
        let none = Probe {
            at: now,
            tcp_port: None,
            udp_port: None,
            host: None,
        };
        let admit = || Some(first.probe_sighting(key, none, state_idle_us(d), false));
        let Some((s, admitted)) = self.sources.get_or_admit(key, admit) else {
            return;
        };
        if let Some(f) = admitted.flatten() {
            s.feed_first(d, &f);
        }
        s.last = now;
        let report = s.episode(slot).hit(now, SINGLE_PACKET_QUIET_US);
        found(Detection {
            attack,
            src,
            dst,
            report,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    fn ip_packet(src: [u8; 4]) -> Ip<'static> {
        Ip {
            src_bits: u128::from(Ipv4Addr::from(src).to_bits()),
            dst_bits: u128::from(Ipv4Addr::new(10, 9, 9, 9).to_bits()),
            v6: false,
            ttl: 64,
            proto: crate::decode::IpProto::Other(253),
            total_len: 20,
            header_len: 20,
            packet: &[],
            fragment: None,
            l4: L4::Other(&[]),
        }
    }

    /// Run one packet from `src` with source MAC `mac`, through the flow direction's `slot`.
    fn spoofed(ab: &mut AttackBlocker, src: [u8; 4], mac: u8, slot: &mut u32, now: u64) -> bool {
        let ip = ip_packet(src);
        let facts = PacketFacts {
            now: Timestamp(now),
            scope: VlanScope::UNTAGGED,
            eth_src: [2, 0, 0, 0, 0, mac],
            ip: &ip,
            flow: None,
        };
        let mut found = Vec::new();
        ab.inspect(&Detectors::default(), &facts, slot, &mut |d| found.push(d));
        found.iter().any(|d| d.attack == Attack::MacSpoofing)
    }

    /// Land for one packet from 10.0.0.5 to `dst` carrying `l4`.
    fn land(dst: [u8; 4], l4: L4<'static>) -> bool {
        let mut ip = ip_packet([10, 0, 0, 5]);
        ip.dst_bits = u128::from(Ipv4Addr::from(dst).to_bits());
        ip.l4 = l4;
        let facts = PacketFacts {
            now: Timestamp(1),
            scope: VlanScope::UNTAGGED,
            eth_src: [2, 0, 0, 0, 0, 1],
            ip: &ip,
            flow: None,
        };
        let mut ab = AttackBlocker::new(StateCaps::default());
        let mut found = Vec::new();
        let mut slot = NO_SLOT;
        ab.inspect(&Detectors::default(), &facts, &mut slot, &mut |d| {
            found.push(d);
        });
        found.iter().any(|d| d.attack == Attack::Land)
    }

    #[test]
    fn land_is_the_same_address_whatever_the_ports() {
        let udp = |sp, dp| {
            L4::Udp(crate::decode::Udp {
                src_port: sp,
                dst_port: dp,
                payload: &[],
            })
        };
        let me = [10, 0, 0, 5];
        assert!(land(me, udp(139, 139)), "same address and port");
        assert!(land(me, udp(1024, 139)), "same address, other ports");
        assert!(land(me, L4::Other(&[])), "same address, no ports");
        assert!(
            !land([10, 0, 0, 6], udp(139, 139)),
            "same ports, other address"
        );
    }

    #[test]
    fn mac_binding_slot_is_checked_against_the_address() {
        // One binding at a time: every new address evicts the previous one and reuses its slot.
        let mut ab = AttackBlocker::new(StateCaps {
            mac_bindings: 1,
            ..StateCaps::default()
        });
        let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let (mut slot_a, mut slot_b) = (NO_SLOT, NO_SLOT);
        // An address is bound with its second packet.
        assert!(!spoofed(&mut ab, a, 1, &mut slot_a, 1));
        assert_eq!(slot_a, NO_SLOT, "one packet binds nothing");
        assert!(!spoofed(&mut ab, a, 1, &mut slot_a, 2));
        assert_ne!(slot_a, NO_SLOT);
        assert!(!spoofed(&mut ab, b, 2, &mut slot_b, 3));
        assert!(!spoofed(&mut ab, b, 2, &mut slot_b, 4));
        assert_eq!(slot_a, slot_b, "b took a's freed slot");
        // a's stale slot now holds b's binding (MAC 2): a new MAC for a is not a spoof of b, and
        // b's binding is not touched.
        assert!(!spoofed(&mut ab, a, 3, &mut slot_a, 5));
        assert!(!spoofed(&mut ab, b, 2, &mut slot_b, 6));
        assert_eq!(ab.stats().evicted, 1);
        // Through a current slot, a changed MAC within the binding's life is reported.
        assert!(spoofed(&mut ab, b, 7, &mut slot_b, 7));
    }

    #[test]
    fn a_spoofers_first_packet_is_checked_against_the_owners_first() {
        // The owner's one packet waits in the first-seen table; the spoofer's, from another MAC,
        // binds the address to the owner's MAC and is reported, as with a binding made at once.
        let mut ab = AttackBlocker::new(StateCaps::default());
        let owner = [10, 0, 0, 1];
        let (mut slot_owner, mut slot_spoof) = (NO_SLOT, NO_SLOT);
        assert!(!spoofed(&mut ab, owner, 1, &mut slot_owner, 1));
        assert!(spoofed(&mut ab, owner, 2, &mut slot_spoof, 2));
        assert!(!spoofed(&mut ab, owner, 1, &mut slot_owner, 3));
    }

    #[derive(Clone, Copy, Debug)]
    enum Kind {
        Syn,
        Ack,
        Udp,
        Echo,
        Null,
    }

    /// Run one packet of `kind` from 10.0.1.`src` (MAC `mac`) to 10.0.2.`dst` port `port`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        ab: &mut AttackBlocker,
        d: &Detectors,
        slots: &mut [u32; 256],
        (src, mac, kind, dst, port): (u8, u8, Kind, u8, u16),
        now: u64,
    ) -> Vec<Detection> {
        let tcp = |flags| {
            L4::Tcp(crate::decode::Tcp {
                src_port: 40_000,
                dst_port: port,
                seq: 1,
                ack: 0,
                flags: TcpFlags(flags),
                window: 1024,
                urgent: 0,
                header_len: 20,
                payload: &[],
            })
        };
        let mut ip = ip_packet([10, 0, 1, src]);
        ip.dst_bits = u128::from(Ipv4Addr::new(10, 0, 2, dst).to_bits());
        ip.l4 = match kind {
            Kind::Syn => tcp(TcpFlags::SYN),
            Kind::Ack => tcp(TcpFlags::ACK),
            Kind::Null => tcp(0),
            Kind::Udp => L4::Udp(crate::decode::Udp {
                src_port: 40_000,
                dst_port: port,
                payload: &[],
            }),
            Kind::Echo => L4::Icmp(crate::decode::Icmp {
                icmp_type: 8,
                code: 0,
                ident: 1,
                seq: port,
                payload: &[],
            }),
        };
        let facts = PacketFacts {
            now: Timestamp(now),
            scope: VlanScope::UNTAGGED,
            eth_src: [2, 0, 0, 0, 1, mac],
            ip: &ip,
            flow: Some(FlowUpdate {
                id: 1,
                new_flow: !matches!(kind, Kind::Ack),
                to_server: true,
                handshake_completed: false,
                terminated: false,
                half_open: true,
                a_to_b: true,
            }),
        };
        let mut found = Vec::new();
        let slot = &mut slots[usize::from(src)];
        ab.inspect(d, &facts, slot, &mut |x| found.push(x));
        found
    }

    #[test]
    fn a_flood_of_one_packet_a_source_makes_no_per_source_state() {
        // 100,000 SYNs, each from its own source: every one a first sighting. Before the
        // first-seen stage each made a source entry and a MAC binding (65,536 each, at the cap).
        let mut ab = AttackBlocker::new(StateCaps::default());
        let d = Detectors::default();
        let mut found = 0;
        for i in 0..100_000u32 {
            let mut ip = ip_packet(Ipv4Addr::from(0x6400_0000 | i).octets());
            ip.l4 = L4::Tcp(crate::decode::Tcp {
                src_port: 40_000,
                dst_port: 80,
                seq: i,
                ack: 0,
                flags: TcpFlags(TcpFlags::SYN),
                window: 1024,
                urgent: 0,
                header_len: 20,
                payload: &[],
            });
            let facts = PacketFacts {
                now: Timestamp(1_000_000 + u64::from(i)),
                scope: VlanScope::UNTAGGED,
                eth_src: [2, 0, 0, 0, 0, 1],
                ip: &ip,
                flow: None,
            };
            let mut slot = NO_SLOT;
            ab.inspect(&d, &facts, &mut slot, &mut |x| {
                found += usize::from(x.report);
            });
        }
        let st = ab.stats();
        assert_eq!((st.sources, st.mac_bindings), (0, 0), "{st:?}");
        assert_eq!(st.destinations, 1);
        assert_eq!(found, 1, "the SYN flood on the victim, reported once");
    }

    #[test]
    fn a_scan_fires_on_its_threshold_packet_as_before() {
        // 20 ports in 10 s (the default): the 20th SYN of one source reports, the 19th does not,
        // though the first SYN made no source state.
        let d = Detectors::default();
        let mut ab = AttackBlocker::new(StateCaps::default());
        let mut slots = [NO_SLOT; 256];
        for port in 1..=20u16 {
            let found = run(
                &mut ab,
                &d,
                &mut slots,
                (7, 1, Kind::Syn, 1, port),
                u64::from(port),
            );
            let scan = found
                .iter()
                .any(|x| x.attack == Attack::TcpPortScan && x.report);
            assert_eq!(scan, port == 20, "port {port}: {found:?}");
            if port == 1 {
                assert_eq!(ab.stats().sources, 0, "one probe makes no source state");
            }
        }
        assert_eq!(ab.stats().sources, 1);
    }

    fn threshold(count: u32) -> Threshold {
        Threshold {
            enabled: true,
            count,
            window_secs: 10,
        }
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            4 => Just(Kind::Syn),
            2 => Just(Kind::Ack),
            2 => Just(Kind::Udp),
            2 => Just(Kind::Echo),
            1 => Just(Kind::Null),
        ]
    }

    proptest! {
        /// The first-seen stage changes no detection: the same packets through a blocker that
        /// makes every source's state at once (`first_seen: 0`) and through one that waits for
        /// the second packet give the same detections, packet by packet, as long as no first
        /// sighting lost its slot to another address (counted; 6 sources in 65,536 slots).
        #[test]
        fn first_seen_stage_gives_the_same_detections(
            counts in (1u32..5, 1u32..5, 1u32..5),
            packets in proptest::collection::vec(
                ((0u8..6, 0u8..3, kind(), 0u8..6, 1u16..8), 0u64..3_000_000),
                1..120,
            ),
        ) {
            let d = Detectors {
                tcp_port_scan: threshold(counts.0),
                udp_port_scan: threshold(counts.1),
                host_sweep: threshold(counts.2),
                ..Detectors::default()
            };
            let mut at_once = AttackBlocker::new(StateCaps { first_seen: 0, ..StateCaps::default() });
            let mut staged = AttackBlocker::new(StateCaps::default());
            let (mut slots_a, mut slots_b) = ([NO_SLOT; 256], [NO_SLOT; 256]);
            let mut now = Timestamp::SECOND;
            let mut expected = Vec::new();
            let mut got = Vec::new();
            for (pkt, dt) in packets {
                now += dt;
                expected.push(run(&mut at_once, &d, &mut slots_a, pkt, now));
                got.push(run(&mut staged, &d, &mut slots_b, pkt, now));
            }
            prop_assume!(staged.stats().first_seen_replaced == 0);
            prop_assert_eq!(got, expected);
        }

        /// Likewise for destinations: the flood windows of a destination whose state waits for
        /// its second counted packet count what they would have counted from the first.
        #[test]
        fn first_seen_stage_gives_the_same_flood_detections(
            counts in (1u32..5, 1u32..5, 1u32..5),
            packets in proptest::collection::vec(
                ((0u8..6, 0u8..3, kind(), 0u8..6, 1u16..8), 0u64..3_000_000),
                1..120,
            ),
        ) {
            let d = Detectors {
                syn_flood: threshold(counts.0),
                udp_flood: threshold(counts.1),
                icmp_flood: threshold(counts.2),
                ..Detectors::default()
            };
            let mut at_once = AttackBlocker::new(StateCaps { first_seen: 0, ..StateCaps::default() });
            let mut staged = AttackBlocker::new(StateCaps::default());
            let (mut slots_a, mut slots_b) = ([NO_SLOT; 256], [NO_SLOT; 256]);
            let mut now = Timestamp::SECOND;
            let mut expected = Vec::new();
            let mut got = Vec::new();
            for (pkt, dt) in packets {
                now += dt;
                expected.push(run(&mut at_once, &d, &mut slots_a, pkt, now));
                got.push(run(&mut staged, &d, &mut slots_b, pkt, now));
            }
            prop_assume!(staged.stats().first_seen_replaced == 0);
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn a_flood_of_one_packet_a_destination_makes_no_per_destination_state() {
        // 100,000 SYNs from one source, each to its own destination: before, each made a
        // destination entry (65,536, at the cap, then an eviction a packet).
        let mut ab = AttackBlocker::new(StateCaps::default());
        let d = Detectors::default();
        for i in 0..100_000u32 {
            let mut ip = ip_packet([10, 0, 0, 7]);
            ip.dst_bits = u128::from(0x6400_0000 | i);
            ip.l4 = L4::Tcp(crate::decode::Tcp {
                src_port: 40_000,
                dst_port: 80,
                seq: i,
                ack: 0,
                flags: TcpFlags(TcpFlags::SYN),
                window: 1024,
                urgent: 0,
                header_len: 20,
                payload: &[],
            });
            let facts = PacketFacts {
                now: Timestamp(1_000_000 + u64::from(i)),
                scope: VlanScope::UNTAGGED,
                eth_src: [2, 0, 0, 0, 0, 1],
                ip: &ip,
                flow: None,
            };
            let mut slot = NO_SLOT;
            ab.inspect(&d, &facts, &mut slot, &mut |_| {});
        }
        let st = ab.stats();
        assert_eq!(st.destinations, 0, "{st:?}");
        assert_eq!(st.evicted, 0, "{st:?}");
    }
}
