//! Bounded per-source and per-destination state for the attack blocker.
//!
//! Every structure here has a written cap, because traffic can grow it: a flood of random sources
//! must not grow memory without bound.
//! - [`DistinctWindow`] holds at most `count` items (the detector fires at `count`).
//! - [`BoundedMap`] holds at most its capacity; at the cap it evicts the least recently seen of a
//!   small sample, counting each eviction.
//! - [`FirstSeen`] is a fixed table of addresses seen once, allocated whole: an address gets a
//!   [`BoundedMap`]/[`SlotMap`] entry only with its second packet, so a flood of one packet a
//!   source fills no map; a new address takes its slot from the one there (counted).

use core::hash::Hash;
use core::net::IpAddr;
use hashbrown::HashMap;
use vlan::VlanScope;

use crate::time::Timestamp;

/// Distinct items seen within a sliding window, each with the time it was last seen.
/// Holds at most `cap` items: the detector only needs to know when `cap` is reached.
#[derive(Clone, Debug)]
pub struct DistinctWindow<T> {
    items: Vec<(T, Timestamp)>,
}

impl<T> Default for DistinctWindow<T> {
    fn default() -> Self {
        DistinctWindow { items: Vec::new() }
    }
}

impl<T: PartialEq + Copy> DistinctWindow<T> {
    /// Record `item` at `now`, forget items older than `window_us`, and return the number of
    /// distinct items in the window (at most `cap`).
    pub fn insert(&mut self, item: T, now: Timestamp, window_us: u64, cap: usize) -> usize {
        self.items.retain(|(_, t)| now.since(*t) <= window_us);
        if let Some(slot) = self.items.iter_mut().find(|(i, _)| *i == item) {
            slot.1 = now;
        } else if self.items.len() < cap {
            self.items.push((item, now));
        }
        self.items.len()
    }

    /// Number of items currently held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Events per sliding window, estimated from two fixed windows: the count of the previous window
/// weighted by how much of it still overlaps the sliding window, plus the current count. O(1) in
/// time and memory, exact for steady rates, and never more than one window's count off.
#[derive(Clone, Copy, Debug, Default)]
pub struct RateWindow {
    start: Timestamp,
    prev: u64,
    cur: u64,
}

impl RateWindow {
    fn roll(&mut self, now: Timestamp, window_us: u64) {
        let window_us = window_us.max(1);
        let elapsed = now.since(self.start);
        if elapsed >= 2 * window_us {
            self.prev = 0;
            self.cur = 0;
            self.start = Timestamp(now.micros() - now.micros() % window_us);
        } else if elapsed >= window_us {
            self.prev = self.cur;
            self.cur = 0;
            self.start = self.start.plus_micros(window_us);
        }
    }

    /// Add `n` events at `now`.
    pub fn add(&mut self, now: Timestamp, window_us: u64, n: u64) {
        self.roll(now, window_us);
        self.cur = self.cur.saturating_add(n);
    }

    /// Estimated events within the last `window_us` at `now`.
    pub fn estimate(&mut self, now: Timestamp, window_us: u64) -> u64 {
        self.roll(now, window_us);
        let window_us = window_us.max(1);
        let into = now.since(self.start).min(window_us);
        let weight = window_us - into;
        // prev * weight / window without overflow: prev is a packet count, weight < 2^32 in
        // practice (windows up to an hour in microseconds); u128 keeps it exact regardless.
        let carried = u128::from(self.prev) * u128::from(weight) / u128::from(window_us);
        u64::try_from(carried)
            .unwrap_or(u64::MAX)
            .saturating_add(self.cur)
    }
}

/// One attack episode: a detection fires once, then stays quiet while the activity goes on, and
/// may fire again only after `quiet_us` without activity.
#[derive(Clone, Copy, Debug, Default)]
pub struct Episode {
    last: Option<Timestamp>,
}

impl Episode {
    /// Record activity at `now`; true when this starts a new episode (report it).
    pub fn hit(&mut self, now: Timestamp, quiet_us: u64) -> bool {
        let new = self.last.is_none_or(|t| now.since(t) > quiet_us);
        self.last = Some(now);
        new
    }

    /// Whether an episode is going on at `now`.
    pub fn active(&self, now: Timestamp, quiet_us: u64) -> bool {
        self.last.is_some_and(|t| now.since(t) <= quiet_us)
    }
}

/// [`ScopedAddr::rest`]'s address family bit (set for IPv6), above the VLAN scope's bits.
const V6_BIT: u64 = 1 << VlanScope::BITS;

/// An address in a VLAN scope, packed for hashing: the key of the per-source, per-destination
/// and MAC-binding tables. Two words, so a lookup hashes two integers instead of walking the
/// `(VlanScope, IpAddr)` enum byte by byte.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ScopedAddr {
    addr: u128,
    /// VLAN scope bits (0-55), and the address family in [`V6_BIT`].
    rest: u64,
}

impl ScopedAddr {
    /// The key of `addr` in `scope`.
    #[inline]
    pub fn new(scope: VlanScope, addr: IpAddr) -> Self {
        let (bits, v6) = crate::decode::addr_bits(addr);
        Self::from_bits(scope, bits, v6)
    }

    /// The key of the address `bits` of family `v6` (as [`crate::flow::addr_bits`] gives them).
    #[inline]
    pub fn from_bits(scope: VlanScope, bits: u128, v6: bool) -> Self {
        ScopedAddr {
            addr: bits,
            rest: scope.bits() | if v6 { V6_BIT } else { 0 },
        }
    }
}

impl Hash for ScopedAddr {
    #[inline]
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.addr);
        state.write_u64(self.rest);
    }
}

/// Values of a [`BoundedMap`] know when they were last touched.
pub trait LastSeen {
    /// Last time this entry was updated.
    fn last_seen(&self) -> Timestamp;
}

/// Sample size when evicting at the cap.
const EVICTION_SAMPLE: usize = 16;

/// A hash map with a hard cap; at the cap, inserting evicts the least recently seen entry of a
/// sample of [`EVICTION_SAMPLE`] consecutive slots from a rotating position ([`SlotMap`] without
/// the hints). The sample was the map's first entries in hash order, and under a random-source
/// flood the front of the table emptied as it was evicted: each new source then walked ever more
/// empty buckets to find a sample (two thirds of the flood's time).
#[derive(Debug)]
pub struct BoundedMap<K, V> {
    inner: SlotMap<K, V>,
    /// Where a value goes if the slot bookkeeping were inconsistent (never).
    spare: V,
}

impl<K: Hash + Eq + Copy, V: LastSeen + Default> BoundedMap<K, V> {
    /// An empty map holding at most `cap` entries.
    pub fn new(cap: usize) -> Self {
        BoundedMap {
            inner: SlotMap::new(cap),
            spare: V::default(),
        }
    }

    /// The value in slot `i`, or a fresh spare if `i` is out of range (never, by construction).
    #[inline]
    fn value_at(&mut self, i: u32) -> &mut V {
        match self
            .inner
            .slots
            .get_mut(usize::try_from(i).unwrap_or(usize::MAX))
        {
            Some(s) => &mut s.value,
            None => {
                self.spare = V::default();
                &mut self.spare
            }
        }
    }

    /// The entry for `key`, created (evicting if at the cap) if absent.
    #[inline]
    pub fn entry(&mut self, key: K) -> &mut V {
        let i = match self.inner.index.get(&key) {
            Some(&i) => i,
            None => self.inner.locate(key),
        };
        self.value_at(i)
    }

    /// The entry for `key` if present; otherwise, if `admit` gives something, a new entry
    /// (evicting if at the cap) with what `admit` gave; otherwise `None`. One hash lookup
    /// either way.
    #[inline]
    pub fn get_or_admit<A>(
        &mut self,
        key: K,
        admit: impl FnOnce() -> Option<A>,
    ) -> Option<(&mut V, Option<A>)> {
        let (i, admitted) = match self.inner.index.get(&key) {
            Some(&i) => (i, None),
            None => {
                let a = admit()?;
                (self.inner.locate(key), Some(a))
            }
        };
        let v = self.value_at(i);
        Some((v, admitted))
    }

    /// The entry for `key` if present.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = *self.inner.index.get(key)?;
        self.inner
            .slots
            .get_mut(usize::try_from(i).ok()?)
            .map(|s| &mut s.value)
    }

    /// Drop entries idle for more than `idle_us`.
    pub fn prune(&mut self, now: Timestamp, idle_us: u64) {
        self.inner.prune(now, idle_us);
    }

    /// Slots allocated (what a prune walks).
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Entries evicted at the cap so far.
    pub fn evicted(&self) -> u64 {
        self.inner.evicted()
    }
}

/// "No slot yet": the hint a caller starts with.
pub const NO_SLOT: u32 = u32::MAX;

#[derive(Debug)]
struct Slot<K, V> {
    /// `None` while the slot is free.
    key: Option<K>,
    value: V,
}

/// A [`BoundedMap`] whose entries live in numbered slots, so a caller that comes back to the same
/// key (a flow's source, packet after packet) can reach its entry through the slot number it was
/// given last time, without hashing. The slot is checked against the key, so a stale number
/// (the entry was pruned or evicted, the slot reused) costs one ordinary lookup, never a wrong
/// entry. Same cap and eviction policy as [`BoundedMap`]; slots are reused, so at most `cap`
/// of them exist.
#[derive(Debug)]
pub struct SlotMap<K, V> {
    index: HashMap<K, u32, foldhash::fast::FixedState>,
    slots: Vec<Slot<K, V>>,
    free: Vec<u32>,
    cap: usize,
    evicted: u64,
    /// Where the next eviction's sample starts (it moves on by the sample each time).
    hand: usize,
}

impl<K: Hash + Eq + Copy, V: LastSeen + Default> SlotMap<K, V> {
    /// An empty map holding at most `cap` entries.
    pub fn new(cap: usize) -> Self {
        SlotMap {
            index: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(
                crate::flow::hash_seed(),
            )),
            slots: Vec::new(),
            free: Vec::new(),
            cap: cap.max(1),
            evicted: 0,
            hand: 0,
        }
    }

    /// The entry for `key`, created (evicting if at the cap) if absent. Slot `*hint` is tried
    /// first; on return `*hint` names the entry's slot. `None` only if the slot bookkeeping were
    /// inconsistent, which the code below never leaves it.
    #[inline]
    pub fn entry(&mut self, key: K, hint: &mut u32) -> Option<&mut V> {
        let at = |h: u32| usize::try_from(h).unwrap_or(usize::MAX);
        if !self
            .slots
            .get(at(*hint))
            .is_some_and(|s| s.key.as_ref() == Some(&key))
        {
            *hint = self.locate(key);
        }
        self.slots.get_mut(at(*hint)).map(|s| &mut s.value)
    }

    /// Whether `key` has an entry; if so, `*hint` names its slot on return (tried first, as in
    /// [`SlotMap::entry`]). Makes nothing.
    #[inline]
    pub fn find(&mut self, key: K, hint: &mut u32) -> bool {
        let at = |h: u32| usize::try_from(h).unwrap_or(usize::MAX);
        if self
            .slots
            .get(at(*hint))
            .is_some_and(|s| s.key.as_ref() == Some(&key))
        {
            return true;
        }
        match self.index.get(&key) {
            Some(&i) => {
                *hint = i;
                true
            }
            None => false,
        }
    }

    /// The slot of `key`, made if absent.
    #[inline(never)]
    fn locate(&mut self, key: K) -> u32 {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        if self.index.len() >= self.cap {
            // At the cap every slot is taken (free ones are reused first), so the sample is the
            // next slots from the hand: O(1), and every slot comes round in turn.
            let n = self.slots.len().max(1);
            let victim = (0..EVICTION_SAMPLE.min(n))
                .filter_map(|j| {
                    let s = self.slots.get((self.hand + j) % n)?;
                    Some((s.key?, s.value.last_seen()))
                })
                .min_by_key(|(_, seen)| *seen)
                .map(|(k, _)| k);
            self.hand = (self.hand + EVICTION_SAMPLE) % n;
            if let Some(k) = victim {
                self.remove(&k);
                self.evicted += 1;
            }
        }
        let slot = Slot {
            key: Some(key),
            value: V::default(),
        };
        let reuse = self
            .free
            .pop()
            .and_then(|i| self.slots.get_mut(usize::try_from(i).ok()?).map(|s| (i, s)));
        let i = match reuse {
            Some((i, s)) => {
                *s = slot;
                i
            }
            None => {
                // At most `cap` slots (free ones are reused first), and caps fit in u32.
                let i = u32::try_from(self.slots.len()).unwrap_or(NO_SLOT);
                self.slots.push(slot);
                i
            }
        };
        self.index.insert(key, i);
        i
    }

    fn remove(&mut self, key: &K) {
        if let Some(i) = self.index.remove(key) {
            if let Some(s) = self.slots.get_mut(usize::try_from(i).unwrap_or(usize::MAX)) {
                s.key = None;
            }
            self.free.push(i);
        }
    }

    /// Drop entries idle for more than `idle_us`.
    pub fn prune(&mut self, now: Timestamp, idle_us: u64) {
        let slots = &mut self.slots;
        let free = &mut self.free;
        self.index.retain(
            |_, i| match slots.get_mut(usize::try_from(*i).unwrap_or(usize::MAX)) {
                Some(s) if now.since(s.value.last_seen()) > idle_us => {
                    s.key = None;
                    free.push(*i);
                    false
                }
                Some(_) => true,
                None => false,
            },
        );
    }

    /// Slots allocated in the index (what a prune walks).
    pub fn capacity(&self) -> usize {
        self.index.capacity()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Entries evicted at the cap so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

/// The first probe of a source not yet given per-source state: what it fed to which window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// When it was seen.
    pub at: Timestamp,
    /// The destination port, for the TCP port scan window.
    pub tcp_port: Option<u16>,
    /// The destination port, for the UDP port scan window.
    pub udp_port: Option<u16>,
    /// The destination address, for the host sweep window (same family as the source).
    pub host: Option<IpAddr>,
}

/// The first packet to a destination not yet given per-destination state that a flood window
/// counts: which windows it fed, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// When it was seen.
    pub at: Timestamp,
    /// A new TCP flow's SYN (the SYN flood window).
    pub syn: bool,
    /// A completed handshake (the SYN flood's answered count).
    pub handshake: bool,
    /// An unsolicited UDP datagram (the UDP flood window).
    pub udp: bool,
    /// An unsolicited ICMP message (the ICMP flood window).
    pub icmp: bool,
}

/// What the first packets of an address left in the [`FirstSeen`] table: one cache line, the key
/// and two independent parts (the MAC the address was first seen from, the first probe), each
/// taken when the address earns the state it stands for.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Sighting {
    /// The key's address bits ([`ScopedAddr::addr`]).
    addr: u128,
    /// The probe's destination address bits (the key's family).
    dst: u128,
    /// The key's scope and family ([`ScopedAddr::rest`], bits 0-56) and the flags below.
    rest: u64,
    mac_at: Timestamp,
    probe_at: Timestamp,
    mac: [u8; 6],
    port: u16,
}

/// The most slots a [`FirstSeen`] table has (64 MiB).
pub const MAX_FIRST_SEEN: usize = 1 << 20;

/// [`Sighting::rest`] flags, above the bits a [`ScopedAddr`] uses (the scope's 56 and
/// [`V6_BIT`]).
const S_USED: u64 = V6_BIT << 1;
const S_MAC: u64 = V6_BIT << 2;
const S_PROBE: u64 = V6_BIT << 3;
const S_TCP: u64 = V6_BIT << 4;
const S_UDP: u64 = V6_BIT << 5;
const S_HOST: u64 = V6_BIT << 6;
const S_FLAGS: u64 = !((V6_BIT << 1) - 1);
/// An [`Arrival`]'s windows. A table holds sources' sightings or destinations' arrivals, never
/// both (the attack blocker keeps one of each), so an arrival reuses the probe's flag bits, with
/// `S_PROBE` marking it pending.
const S_SYN: u64 = S_TCP;
const S_ARR_UDP: u64 = S_UDP;
const S_ICMP: u64 = S_HOST;
const S_HANDSHAKE: u64 = V6_BIT << 7;
// Seven flags above the family bit fit in the word.
const _: () = assert!(S_HANDSHAKE != 0 && S_HANDSHAKE == 1 << 63);

impl Sighting {
    #[inline]
    fn holds(&self, key: ScopedAddr) -> bool {
        self.rest & S_USED != 0 && self.addr == key.addr && self.rest & !S_FLAGS == key.rest
    }

    #[inline]
    fn has(&self, flag: u64) -> bool {
        self.rest & flag != 0
    }

    /// Make this slot `key`'s, dropping what another key left; true if that was pending.
    #[inline]
    fn claim(&mut self, key: ScopedAddr) -> bool {
        if self.holds(key) {
            return false;
        }
        let lost = self.rest & (S_USED | S_MAC) == S_USED | S_MAC
            || self.rest & (S_USED | S_PROBE) == S_USED | S_PROBE;
        *self = Sighting {
            addr: key.addr,
            rest: key.rest | S_USED,
            ..Sighting::default()
        };
        lost
    }
}

/// Addresses seen once and not yet given per-source state or a MAC binding: a fixed table of
/// one-cache-line slots, direct-mapped by a per-process seeded hash, allocated once and never
/// grown. An address earns a [`SlotMap`]/[`BoundedMap`] entry only with its second packet (for
/// the MAC binding) or its second probe (for the scan windows) within the state's idle time, and
/// that entry starts from what the first one left here, so every count and binding is what it
/// would have been had the entry been made at once. A random-source flood, one packet a source,
/// then costs one slot write a packet (no hash insert, no eviction, no allocation), and its
/// sources never displace the state of the hosts that send more than once.
///
/// The price of the fixed size: a new address whose slot is taken by another before its second
/// packet loses its first sighting (counted), and starts again from its next packet. Under a
/// flood of `n` new sources a second, a sighting lives about `slots / n` seconds (65,536 slots at
/// 1 Mpps: 65 ms), far longer than a scanner's gap between probes.
#[derive(Debug)]
pub struct FirstSeen {
    slots: Vec<Sighting>,
    mask: u64,
    hasher: foldhash::fast::FixedState,
    replaced: u64,
}

impl FirstSeen {
    /// A table of `slots` slots (rounded up to a power of two, at most [`MAX_FIRST_SEEN`]),
    /// 64 bytes a slot, allocated and written whole here: resident from the start (4 MiB at
    /// the default 65,536), never more. Zero slots turn the stage off: every address is
    /// admitted with its first packet.
    pub fn new(slots: usize) -> Self {
        let n = match slots {
            0 => 0,
            n => n.checked_next_power_of_two().unwrap_or(MAX_FIRST_SEEN),
        }
        .min(MAX_FIRST_SEEN);
        FirstSeen {
            slots: vec![Sighting::default(); n],
            mask: u64::try_from(n.saturating_sub(1)).unwrap_or(0),
            hasher: foldhash::fast::FixedState::with_seed(crate::flow::hash_seed()),
            replaced: 0,
        }
    }

    #[inline]
    fn index(&self, key: ScopedAddr) -> usize {
        use core::hash::BuildHasher;
        usize::try_from(self.hasher.hash_one(key) & self.mask).unwrap_or(usize::MAX)
    }

    #[inline]
    fn slot(&mut self, key: ScopedAddr) -> Option<&mut Sighting> {
        let i = self.index(key);
        self.slots.get_mut(i)
    }

    /// Start fetching `key`'s slot, so that a sighting of it later in the packet finds the
    /// slot in cache (under a random-source flood every source's slot is a miss).
    #[inline]
    pub fn prefetch(&self, key: ScopedAddr) {
        if !self.slots.is_empty() {
            crate::io::prefetch::write(self.slots.as_ptr().wrapping_add(self.index(key)));
        }
    }

    /// A packet from `key` sent from `mac` at `now`, `key` having no MAC binding. If the address
    /// was seen before, within `max_age_us`, returns when and from which MAC (the caller makes
    /// the binding from it and then checks this packet); otherwise remembers this sighting and
    /// returns `None`.
    #[inline]
    pub fn mac_sighting(
        &mut self,
        key: ScopedAddr,
        mac: [u8; 6],
        now: Timestamp,
        max_age_us: u64,
    ) -> Option<(Timestamp, [u8; 6])> {
        if self.slots.is_empty() {
            return Some((now, mac));
        }
        let (seen, lost) = {
            let s = self.slot(key)?;
            if s.holds(key) && s.has(S_MAC) && now.since(s.mac_at) <= max_age_us {
                s.rest &= !S_MAC;
                (Some((s.mac_at, s.mac)), false)
            } else {
                let lost = s.claim(key);
                s.rest |= S_MAC;
                s.mac_at = now;
                s.mac = mac;
                (None, lost)
            }
        };
        self.replaced += u64::from(lost);
        seen
    }

    /// A probe from `key`, which has no per-source state. If the address sent a probe before,
    /// within `max_age_us`, returns that first probe (the caller makes the state, feeds it the
    /// first probe and then this one); otherwise, if `record`, remembers this probe, and
    /// returns `None`. A caller that makes the state whatever the answer (a detection that fires
    /// on one packet) passes `record` false, to take a waiting probe along.
    #[inline]
    pub fn probe_sighting(
        &mut self,
        key: ScopedAddr,
        probe: Probe,
        max_age_us: u64,
        record: bool,
    ) -> Option<Probe> {
        if self.slots.is_empty() {
            // Off: admitted at once, with nothing waiting.
            return Some(Probe {
                at: probe.at,
                tcp_port: None,
                udp_port: None,
                host: None,
            });
        }
        let (first, lost) = {
            let s = self.slot(key)?;
            if s.holds(key) && s.has(S_PROBE) && probe.at.since(s.probe_at) <= max_age_us {
                let v6 = key.rest & V6_BIT != 0;
                let first = Probe {
                    at: s.probe_at,
                    tcp_port: s.has(S_TCP).then_some(s.port),
                    udp_port: s.has(S_UDP).then_some(s.port),
                    host: s
                        .has(S_HOST)
                        .then(|| crate::decode::addr_from_bits(s.dst, v6)),
                };
                s.rest &= !(S_PROBE | S_TCP | S_UDP | S_HOST);
                (Some(first), false)
            } else if !record {
                (None, false)
            } else {
                let lost = s.claim(key);
                s.rest &= !(S_TCP | S_UDP | S_HOST);
                s.rest |= S_PROBE;
                s.probe_at = probe.at;
                if let Some(p) = probe.tcp_port {
                    s.rest |= S_TCP;
                    s.port = p;
                } else if let Some(p) = probe.udp_port {
                    s.rest |= S_UDP;
                    s.port = p;
                }
                if let Some(h) = probe.host {
                    s.rest |= S_HOST;
                    s.dst = crate::decode::addr_bits(h).0;
                }
                (None, lost)
            }
        };
        self.replaced += u64::from(lost);
        first
    }

    /// A counted packet to the destination `key`, which has no per-destination state: as
    /// [`FirstSeen::probe_sighting`] for a source's probe, returns the destination's first
    /// arrival within `max_age_us` if one waits (the caller makes the state and feeds it that
    /// arrival, then this one), else remembers this one if `record`.
    #[inline]
    pub fn arrival_sighting(
        &mut self,
        key: ScopedAddr,
        arrival: Arrival,
        max_age_us: u64,
        record: bool,
    ) -> Option<Arrival> {
        if self.slots.is_empty() {
            return Some(Arrival {
                at: arrival.at,
                syn: false,
                handshake: false,
                udp: false,
                icmp: false,
            });
        }
        let (first, lost) = {
            let s = self.slot(key)?;
            if s.holds(key) && s.has(S_PROBE) && arrival.at.since(s.probe_at) <= max_age_us {
                let first = Arrival {
                    at: s.probe_at,
                    syn: s.has(S_SYN),
                    handshake: s.has(S_HANDSHAKE),
                    udp: s.has(S_ARR_UDP),
                    icmp: s.has(S_ICMP),
                };
                s.rest &= !(S_PROBE | S_SYN | S_HANDSHAKE | S_ARR_UDP | S_ICMP);
                (Some(first), false)
            } else if !record {
                (None, false)
            } else {
                let lost = s.claim(key);
                s.rest &= !(S_SYN | S_HANDSHAKE | S_ARR_UDP | S_ICMP);
                s.rest |= S_PROBE;
                s.probe_at = arrival.at;
                for (on, flag) in [
                    (arrival.syn, S_SYN),
                    (arrival.handshake, S_HANDSHAKE),
                    (arrival.udp, S_ARR_UDP),
                    (arrival.icmp, S_ICMP),
                ] {
                    if on {
                        s.rest |= flag;
                    }
                }
                (None, lost)
            }
        };
        self.replaced += u64::from(lost);
        first
    }

    /// Slots in the table.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Sightings lost so far because another address took their slot before their second packet.
    pub fn replaced(&self) -> u64 {
        self.replaced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = Timestamp::SECOND;

    #[test]
    fn distinct_window_slides() {
        let mut w = DistinctWindow::default();
        assert_eq!(w.insert(1u16, Timestamp(0), 10 * S, 5), 1);
        assert_eq!(w.insert(1u16, Timestamp(S), 10 * S, 5), 1);
        assert_eq!(w.insert(2u16, Timestamp(2 * S), 10 * S, 5), 2);
        // At 11.5 s the first sighting of 1 (refreshed at 1 s) is still inside; at 12.5 s 2 leaves.
        assert_eq!(w.insert(3u16, Timestamp(11 * S + S / 2), 10 * S, 5), 2);
        assert_eq!(w.insert(4u16, Timestamp(12 * S + S / 2), 10 * S, 5), 2);
    }

    #[test]
    fn distinct_window_is_capped() {
        let mut w = DistinctWindow::default();
        for p in 0..1000u16 {
            w.insert(p, Timestamp(0), S, 20);
        }
        assert_eq!(w.len(), 20);
    }

    #[test]
    fn rate_window_estimates_steady_rate() {
        let mut r = RateWindow::default();
        // 100 events per second for 5 seconds, window 1 s.
        for i in 0..500u64 {
            r.add(Timestamp(10 * S + i * S / 100), S, 1);
        }
        let e = r.estimate(Timestamp(15 * S - 1), S);
        assert!((95..=105).contains(&e), "estimate {e}");
        // Two idle windows later, nothing remains.
        assert_eq!(r.estimate(Timestamp(18 * S), S), 0);
    }

    #[test]
    fn episode_quiets_then_rearms() {
        let mut e = Episode::default();
        assert!(e.hit(Timestamp(0), 10 * S));
        assert!(!e.hit(Timestamp(5 * S), 10 * S));
        assert!(!e.hit(Timestamp(14 * S), 10 * S));
        assert!(e.active(Timestamp(20 * S), 10 * S));
        assert!(e.hit(Timestamp(25 * S), 10 * S));
    }

    #[derive(Default, Debug)]
    struct V(Timestamp);
    impl LastSeen for V {
        fn last_seen(&self) -> Timestamp {
            self.0
        }
    }

    #[test]
    fn slot_map_caps_and_hints_never_alias() {
        let mut m: SlotMap<u32, V> = SlotMap::new(100);
        let mut hints = vec![NO_SLOT; 1000];
        for k in 0..1000u32 {
            let hint = &mut hints[k as usize];
            m.entry(k, hint).unwrap().0 = Timestamp(u64::from(k));
            assert!(m.len() <= 100);
        }
        assert_eq!(m.len(), 100);
        assert_eq!(m.evicted(), 900);
        // Every old hint now points at a reused slot: it must not reach another key's entry.
        for k in 0..1000u32 {
            let mut hint = hints[k as usize];
            let v = m.entry(k, &mut hint).unwrap();
            if v.0 != Timestamp(0) || k == 0 {
                assert_eq!(
                    v.0,
                    Timestamp(u64::from(k)),
                    "key {k} reached another entry"
                );
            }
            v.0 = Timestamp(u64::from(k));
        }
        // A hint that is still right goes straight to the entry.
        let mut hint = NO_SLOT;
        m.entry(7, &mut hint).unwrap().0 = Timestamp(77);
        let before = hint;
        assert_eq!(m.entry(7, &mut hint).unwrap().0, Timestamp(77));
        assert_eq!(hint, before);
    }

    #[test]
    fn slot_map_prune_frees_and_reuses_slots() {
        let mut m: SlotMap<u32, V> = SlotMap::new(10);
        let mut h1 = NO_SLOT;
        m.entry(1, &mut h1).unwrap().0 = Timestamp(0);
        let mut h2 = NO_SLOT;
        m.entry(2, &mut h2).unwrap().0 = Timestamp(10 * S);
        m.prune(Timestamp(10 * S), 5 * S);
        assert_eq!(m.len(), 1);
        // Key 3 takes key 1's slot; key 1's stale hint must not reach it.
        let mut h3 = NO_SLOT;
        m.entry(3, &mut h3).unwrap().0 = Timestamp(33);
        assert_eq!(h3, h1);
        let v = m.entry(1, &mut h1).unwrap();
        assert_eq!(v.0, Timestamp(0), "a fresh entry for key 1");
        assert_ne!(h1, h3);
        assert_eq!(m.entry(3, &mut h3).unwrap().0, Timestamp(33));
        assert_eq!(m.len(), 3);
    }

    fn key(last: u8) -> ScopedAddr {
        ScopedAddr::new(VlanScope::UNTAGGED, IpAddr::from([10, 0, 0, last]))
    }

    fn syn(at: u64, port: u16, host: u8) -> Probe {
        Probe {
            at: Timestamp(at),
            tcp_port: Some(port),
            udp_port: None,
            host: Some(IpAddr::from([10, 9, 9, host])),
        }
    }

    #[test]
    fn first_seen_hands_over_the_first_sighting_once() {
        let mut f = FirstSeen::new(1 << 10);
        let (a, mac1, mac2) = (key(1), [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        assert_eq!(
            f.mac_sighting(a, mac1, Timestamp(5), 100),
            None,
            "first packet"
        );
        assert_eq!(
            f.mac_sighting(a, mac2, Timestamp(7), 100),
            Some((Timestamp(5), mac1)),
            "the second gets the first's time and MAC"
        );
        // Taken: the next packet is a first sighting again (the caller has bound it by then).
        assert_eq!(f.mac_sighting(a, mac2, Timestamp(8), 100), None);
        // The probe part is independent of the MAC part of the same slot.
        assert_eq!(f.probe_sighting(a, syn(9, 22, 1), 100, true), None);
        assert_eq!(
            f.probe_sighting(a, syn(10, 23, 2), 100, true),
            Some(syn(9, 22, 1))
        );
        assert_eq!(
            f.mac_sighting(a, mac1, Timestamp(11), 100),
            Some((Timestamp(8), mac2))
        );
        // A UDP probe keeps its port in the UDP part, a probe without a host keeps none.
        let udp = Probe {
            at: Timestamp(12),
            tcp_port: None,
            udp_port: Some(53),
            host: None,
        };
        assert_eq!(f.probe_sighting(a, udp, 100, true), None);
        assert_eq!(f.probe_sighting(a, syn(13, 1, 1), 100, true), Some(udp));
        assert_eq!(f.replaced(), 0);
    }

    #[test]
    fn first_seen_ages_and_replaces() {
        let mut f = FirstSeen::new(1);
        let (a, b, mac) = (key(1), key(2), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.mac_sighting(a, mac, Timestamp(0), 10), None);
        // Too old: a first sighting again, not a second.
        assert_eq!(f.mac_sighting(a, mac, Timestamp(11), 10), None);
        assert_eq!(
            f.mac_sighting(a, mac, Timestamp(12), 10),
            Some((Timestamp(11), mac))
        );
        // One slot: b's first packet takes a's pending probe's slot (counted), and a's next
        // probe is a first one.
        assert_eq!(f.probe_sighting(a, syn(13, 1, 1), 10, true), None);
        assert_eq!(f.probe_sighting(b, syn(14, 1, 1), 10, true), None);
        assert_eq!(f.replaced(), 1);
        assert_eq!(f.probe_sighting(a, syn(15, 2, 1), 10, true), None);
        assert_eq!(f.replaced(), 2);
        // Not recording: a waiting probe is taken, none is left behind.
        assert_eq!(
            f.probe_sighting(a, syn(16, 3, 1), 10, false),
            Some(syn(15, 2, 1))
        );
        assert_eq!(f.probe_sighting(a, syn(17, 4, 1), 10, false), None);
        assert_eq!(f.probe_sighting(a, syn(18, 5, 1), 10, true), None);
    }

    #[test]
    fn first_seen_off_admits_at_once_and_keys_keep_their_family_and_scope() {
        let mut f = FirstSeen::new(0);
        let mac = [2, 0, 0, 0, 0, 1];
        assert_eq!(
            f.mac_sighting(key(1), mac, Timestamp(3), 10),
            Some((Timestamp(3), mac))
        );
        assert_eq!(f.slots(), 0);
        // An IPv6 address with the bits of an IPv4 one, or the same address in a VLAN, is
        // another key.
        let mut f = FirstSeen::new(1);
        let v4 = key(1);
        let v6 = ScopedAddr::from_bits(VlanScope::UNTAGGED, v4.addr, true);
        let tagged = ScopedAddr::new(
            VlanScope::single(vlan::VlanId::new(100).unwrap()),
            IpAddr::from([10, 0, 0, 1]),
        );
        assert_eq!(f.mac_sighting(v4, mac, Timestamp(1), 10), None);
        assert_eq!(f.mac_sighting(v6, mac, Timestamp(2), 10), None);
        assert_eq!(f.mac_sighting(tagged, mac, Timestamp(3), 10), None);
        assert_eq!(f.replaced(), 2);
        let v6_host = Probe {
            host: Some(IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 9])),
            ..syn(4, 1, 1)
        };
        assert_eq!(f.probe_sighting(v6, v6_host, 10, true), None);
        assert_eq!(f.probe_sighting(v6, syn(5, 1, 1), 10, true), Some(v6_host));
    }

    #[test]
    fn bounded_map_caps_under_random_keys() {
        let mut m: BoundedMap<u32, V> = BoundedMap::new(1000);
        for k in 0..100_000u32 {
            m.entry(k).0 = Timestamp(u64::from(k));
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.evicted(), 99_000);
    }
}
