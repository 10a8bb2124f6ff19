//! IP defragmentation (RFC 791, RFC 8200 section 4.5).
//!
//! The decoder stops at the network layer for a fragment ([`crate::decode::L4::Fragment`]); the
//! worker hands each fragment to [`Defragmenter::insert`], which buffers it and returns the whole
//! IP packet once every byte is present. The caller decodes that packet with
//! [`crate::decode::decode_ip`].
//!
//! # Policy
//! - Datagrams are keyed by VLAN scope, addresses, protocol (IPv4 only: RFC 8200 lets the next
//!   header differ between IPv6 fragments) and identification.
//! - Overlapping fragments (Teardrop and target-based evasion), a second "last" fragment that
//!   disagrees on the length, or data beyond the last fragment: [`DefragAnomaly::Overlap`],
//!   reported once; the datagram is discarded and a tombstone drops its other fragments silently
//!   until the timeout. An exact retransmission (same offset, length and bytes) is ignored.
//! - A datagram that would exceed 65535 bytes (Ping of Death): [`DefragAnomaly::Oversize`], same
//!   handling.
//! - More than [`DefragConfig::max_fragments_per_datagram`] fragments:
//!   [`DefragAnomaly::TooManyFragments`], same handling.
//! - Memory: every buffered byte is charged, plus a fixed overhead per datagram and per fragment
//!   so that floods of tiny fragments are paid for. Caps are checked before anything is
//!   allocated. A fragment that would exceed [`DefragConfig::max_bytes`] is refused
//!   ([`DefragAnomaly::MemoryCap`]; an existing datagram it belongs to is discarded, since it can
//!   no longer complete). A new datagram when [`DefragConfig::max_datagrams`] are held evicts
//!   the oldest one ([`DefragAnomaly::MemoryCap`]).
//! - A datagram (or tombstone) lives at most [`DefragConfig::timeout_us`] from its first
//!   fragment (RFC 791's reassembly timer is not restarted by later fragments).
//! - Atomic fragments (offset 0, no more fragments; RFC 6946) are returned at once and never
//!   buffered.

use core::net::IpAddr;
use std::collections::VecDeque;

use foldhash::fast::RandomState;
use hashbrown::HashMap;
use smoltcp::wire::Ipv4Packet;
use vlan::VlanScope;

use crate::decode::{DecodeEvent, Fragment, Ip, ipv6_ext_header_len};
use crate::time::Timestamp;

/// Largest IP datagram: the IPv4 total length and the IPv6 payload length are 16-bit fields.
pub const MAX_DATAGRAM_LEN: usize = 65_535;

/// Bytes charged per buffered fragment on top of its payload: the `Vec` header, the allocator's
/// rounding and bookkeeping. Without it, 8-byte fragments would cost several times what they are
/// charged.
const FRAGMENT_OVERHEAD: usize = 64;

/// Bytes charged per datagram (and tombstone): the map entry, key and order-queue slot.
const DATAGRAM_OVERHEAD: usize = 128;

const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;

/// Limits of the defragmenter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefragConfig {
    /// Total bytes buffered across all datagrams, overheads included. Default 32 MiB.
    pub max_bytes: usize,
    /// Datagrams (and tombstones) held at once. Default 8192.
    pub max_datagrams: usize,
    /// Fragments per datagram. A 65535-byte datagram in 1280-byte IPv6 fragments needs 52;
    /// 256 leaves room for small-MTU paths. Default 256.
    pub max_fragments_per_datagram: usize,
    /// Lifetime of a datagram from its first fragment, in microseconds. Default 30 s (Linux's
    /// `ipfrag_time`).
    pub timeout_us: u64,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            max_bytes: 32 << 20,
            max_datagrams: 8192,
            max_fragments_per_datagram: 256,
            timeout_us: 30 * Timestamp::SECOND,
        }
    }
}

/// What was wrong with a datagram's fragments; each is reported once per datagram.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum DefragAnomaly {
    /// Fragments overlap with different or same-range data (Teardrop), or disagree on where the
    /// datagram ends.
    Overlap,
    /// The reassembled datagram would exceed 65535 bytes (Ping of Death).
    Oversize,
    /// More fragments than [`DefragConfig::max_fragments_per_datagram`].
    TooManyFragments,
    /// A datagram was refused or evicted because of [`DefragConfig::max_bytes`] or
    /// [`DefragConfig::max_datagrams`].
    MemoryCap,
}

impl DefragAnomaly {
    /// Stable snake_case name used for the counter and in events.
    pub const fn name(self) -> &'static str {
        match self {
            DefragAnomaly::Overlap => "overlap",
            DefragAnomaly::Oversize => "oversize",
            DefragAnomaly::TooManyFragments => "too_many_fragments",
            DefragAnomaly::MemoryCap => "memory_cap",
        }
    }
}

/// Result of inserting one fragment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DefragOutput {
    /// The complete IP packet: the first fragment's header with the fragment fields cleared
    /// (IPv4: MF and offset 0, total length and checksum recomputed; IPv6: fragment header
    /// removed, the preceding next header and the payload length fixed), then the payload.
    pub datagram: Option<Vec<u8>>,
    /// An anomaly to report.
    pub anomaly: Option<DefragAnomaly>,
    /// Suricata's decoder event of this fragment (the packet it arrived in): its data overlaps
    /// data held (`ipv4.frag_overlap`/`ipv6.frag_overlap`, an exact retransmission included),
    /// or it ends past 65535 bytes (`ipv4.frag_pkt_too_large`: header, offset and data;
    /// `ipv6.frag_pkt_too_large`: offset and data). Independent of [`Self::anomaly`]: what the
    /// defragmenter does with the datagram is its own policy.
    pub event: Option<DecodeEvent>,
}

/// Counters of the defragmenter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefragStats {
    /// Datagrams completed and returned.
    pub datagrams_reassembled: u64,
    /// Fragments inserted.
    pub fragments: u64,
    /// Exact retransmissions ignored.
    pub duplicates: u64,
    /// Incomplete datagrams dropped at their timeout.
    pub timeouts: u64,
    /// Datagrams discarded for overlapping fragments.
    pub overlaps: u64,
    /// Datagrams discarded for exceeding 65535 bytes.
    pub oversize: u64,
    /// Datagrams discarded for too many fragments.
    pub too_many_fragments: u64,
    /// Datagrams refused, evicted or discarded because of a memory cap.
    pub memory_drops: u64,
    /// Datagrams being reassembled now (tombstones not counted).
    pub in_progress: usize,
    /// Bytes charged now, overheads included.
    pub bytes_buffered: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Key {
    scope: VlanScope,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u32,
}

#[derive(Debug)]
struct Piece {
    offset: usize,
    data: Vec<u8>,
}

impl Piece {
    fn end(&self) -> usize {
        self.offset + self.data.len()
    }
}

#[derive(Debug, Default)]
struct Assembly {
    /// Non-overlapping, sorted by offset; zero-length fragments are not stored.
    pieces: Vec<Piece>,
    /// The unfragmentable part of the offset-0 fragment, and its (fragment header's) protocol.
    header: Option<(Vec<u8>, u8)>,
    /// Payload length, known once the last fragment arrived.
    total: Option<usize>,
    /// Payload bytes held: with no overlaps, `received == total` means complete.
    received: usize,
}

#[derive(Debug)]
enum State {
    Assembling(Assembly),
    /// Discarded after an anomaly: the rest of its fragments are dropped silently.
    Dead,
}

#[derive(Debug)]
struct Datagram {
    /// Position in the order queue; a queue slot with another `seq` is stale.
    seq: u64,
    started: Timestamp,
    /// Bytes charged to this datagram.
    charged: usize,
    state: State,
}

/// Reassembles IPv4 and IPv6 fragments within the limits of a [`DefragConfig`].
#[derive(Debug)]
pub struct Defragmenter {
    cfg: DefragConfig,
    map: HashMap<Key, Datagram, RandomState>,
    /// Keys in creation order, for eviction of the oldest and for expiry. Entries of datagrams
    /// that completed stay until they reach the front or the queue is compacted.
    order: VecDeque<(u64, Key)>,
    next_seq: u64,
    bytes: usize,
    stats: DefragStats,
}

impl Defragmenter {
    /// An empty defragmenter.
    pub fn new(cfg: DefragConfig) -> Self {
        Defragmenter {
            cfg,
            map: HashMap::with_hasher(RandomState::default()),
            order: VecDeque::new(),
            next_seq: 0,
            bytes: 0,
            stats: DefragStats::default(),
        }
    }

    /// Insert one fragment. `scope` separates VLANs (key = scope, src, dst, proto, id).
    ///
    /// `ip` and `frag` come from [`crate::decode::decode_frame`]; a fragment whose
    /// unfragmentable part is shorter than the fixed IP header is ignored.
    pub fn insert(
        &mut self,
        now: Timestamp,
        scope: VlanScope,
        ip: &Ip<'_>,
        frag: &Fragment<'_>,
    ) -> DefragOutput {
        self.stats.fragments += 1;
        let v6 = ip.v6;
        let fixed = if v6 { IPV6_HEADER_LEN } else { IPV4_HEADER_LEN };
        if frag.unfragmentable.len() < fixed {
            return DefragOutput::default();
        }
        let proto = u8::from(ip.proto);
        let Ok(offset) = usize::try_from(frag.offset) else {
            return DefragOutput::default();
        };
        let end = offset.saturating_add(frag.payload.len());
        // IPv4 counts its header in the 16-bit total length; IPv6's payload length counts the
        // extension headers after the fixed header.
        let reassembled =
            (frag.unfragmentable.len() - if v6 { IPV6_HEADER_LEN } else { 0 }).saturating_add(end);
        let oversize = reassembled > MAX_DATAGRAM_LEN;
        let too_large = end.saturating_add(if v6 { 0 } else { IPV4_HEADER_LEN }) > MAX_DATAGRAM_LEN;
        let with_event = |mut out: DefragOutput, overlap: bool| {
            out.event = match (too_large, overlap, v6) {
                (true, _, false) => Some(DecodeEvent::Ipv4FragPktTooLarge),
                (true, _, true) => Some(DecodeEvent::Ipv6FragPktTooLarge),
                (false, true, false) => Some(DecodeEvent::Ipv4FragOverlap),
                (false, true, true) => Some(DecodeEvent::Ipv6FragOverlap),
                (false, false, _) => None,
            };
            out
        };

        if offset == 0 && !frag.more && !oversize {
            // Atomic fragment: nothing to wait for.
            let mut out = DefragOutput::default();
            if let Some(d) = build(v6, frag.unfragmentable, proto, &[frag.payload], end) {
                self.stats.datagrams_reassembled += 1;
                out.datagram = Some(d);
            }
            return out;
        }

        let key = Key {
            scope,
            src: ip.src(),
            dst: ip.dst(),
            proto: if v6 { 0 } else { proto },
            id: frag.id,
        };
        let timed_out = self
            .map
            .get(&key)
            .is_some_and(|d| now.since(d.started) >= self.cfg.timeout_us);
        if timed_out {
            self.remove(&key, Removal::Timeout);
        }

        let mut evicted = false;
        if !self.map.contains_key(&key) {
            // A new datagram. Check the caps before allocating anything.
            let need = DATAGRAM_OVERHEAD + if oversize { 0 } else { fragment_cost(frag) };
            if self.bytes.saturating_add(need) > self.cfg.max_bytes {
                self.stats.memory_drops += 1;
                return with_event(anomaly(DefragAnomaly::MemoryCap), false);
            }
            match self.make_room() {
                Some(e) => evicted = e,
                None => {
                    self.stats.memory_drops += 1;
                    return with_event(anomaly(DefragAnomaly::MemoryCap), false);
                }
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.order.push_back((seq, key));
            self.compact_order();
            self.map.insert(
                key,
                Datagram {
                    seq,
                    started: now,
                    charged: DATAGRAM_OVERHEAD,
                    state: State::Assembling(Assembly::default()),
                },
            );
            self.bytes += DATAGRAM_OVERHEAD;
        }

        let mut overlap = false;
        let step = match self.map.get_mut(&key) {
            Some(d) => add_fragment(
                d,
                &self.cfg,
                &mut self.bytes,
                &mut self.stats,
                frag,
                offset,
                proto,
                oversize,
                &mut overlap,
            ),
            None => Step::Ignored,
        };

        let mut out = DefragOutput::default();
        if evicted {
            out.anomaly = Some(DefragAnomaly::MemoryCap);
        }
        match step {
            Step::Ignored => {}
            Step::Complete => {
                if let Some(Datagram {
                    state: State::Assembling(asm),
                    charged,
                    ..
                }) = self.map.remove(&key)
                {
                    self.bytes = self.bytes.saturating_sub(charged);
                    if let (Some((header, first_proto)), Some(total)) = (&asm.header, asm.total) {
                        let parts: Vec<&[u8]> =
                            asm.pieces.iter().map(|p| p.data.as_slice()).collect();
                        out.datagram = build(v6, header, *first_proto, &parts, total);
                    }
                    if out.datagram.is_some() {
                        self.stats.datagrams_reassembled += 1;
                    }
                }
            }
            Step::Kill(a) => {
                match a {
                    DefragAnomaly::Overlap => self.stats.overlaps += 1,
                    DefragAnomaly::Oversize => self.stats.oversize += 1,
                    DefragAnomaly::TooManyFragments => self.stats.too_many_fragments += 1,
                    DefragAnomaly::MemoryCap => self.stats.memory_drops += 1,
                }
                if let Some(d) = self.map.get_mut(&key) {
                    d.state = State::Dead;
                    self.bytes = self.bytes.saturating_sub(d.charged) + DATAGRAM_OVERHEAD;
                    d.charged = DATAGRAM_OVERHEAD;
                }
                out.anomaly = Some(a);
            }
        }
        with_event(out, overlap)
    }

    /// Drop datagrams (and tombstones) older than the timeout; returns how many incomplete
    /// datagrams were dropped (tombstones are not counted).
    pub fn expire(&mut self, now: Timestamp) -> usize {
        let mut dropped = 0;
        while let Some(&(seq, key)) = self.order.front() {
            if let Some(d) = self.map.get(&key)
                && d.seq == seq
            {
                if now.since(d.started) < self.cfg.timeout_us {
                    break;
                }
                if self.remove(&key, Removal::Timeout) {
                    dropped += 1;
                }
            }
            self.order.pop_front();
        }
        dropped
    }

    /// Current counters.
    pub fn stats(&self) -> DefragStats {
        DefragStats {
            in_progress: self
                .map
                .values()
                .filter(|d| matches!(d.state, State::Assembling(_)))
                .count(),
            bytes_buffered: self.bytes,
            ..self.stats
        }
    }

    /// Make room for one more datagram: evict the oldest while at `max_datagrams`. Returns
    /// whether one was evicted, or `None` when no room can be made (`max_datagrams == 0`).
    fn make_room(&mut self) -> Option<bool> {
        let mut evicted = false;
        while self.map.len() >= self.cfg.max_datagrams {
            let (seq, key) = self.order.pop_front()?;
            if self.map.get(&key).is_some_and(|d| d.seq == seq) {
                self.remove(&key, Removal::Evicted);
                evicted = true;
            }
        }
        Some(evicted)
    }

    /// Remove a datagram, release its bytes and count why. Returns whether it was still being
    /// assembled (not a tombstone).
    fn remove(&mut self, key: &Key, why: Removal) -> bool {
        let Some(d) = self.map.remove(key) else {
            return false;
        };
        self.bytes = self.bytes.saturating_sub(d.charged);
        let live = matches!(d.state, State::Assembling(_));
        match why {
            Removal::Timeout if live => self.stats.timeouts += 1,
            Removal::Evicted => self.stats.memory_drops += 1,
            Removal::Timeout => {}
        }
        live
    }

    /// Drop stale queue slots once they outnumber live datagrams, so that the queue stays
    /// bounded by `max_datagrams` even when an old datagram pins its front.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order
                .retain(|(seq, key)| map.get(key).is_some_and(|d| d.seq == *seq));
        }
    }
}

#[derive(Clone, Copy)]
enum Removal {
    Timeout,
    Evicted,
}

enum Step {
    /// Nothing changed that the caller must act on.
    Ignored,
    /// Every byte is present.
    Complete,
    /// Discard the datagram, keep a tombstone, report the anomaly.
    Kill(DefragAnomaly),
}

fn anomaly(a: DefragAnomaly) -> DefragOutput {
    DefragOutput {
        datagram: None,
        anomaly: Some(a),
        event: None,
    }
}

/// Bytes charged for buffering `frag` (its header too, for the offset-0 fragment).
fn fragment_cost(frag: &Fragment<'_>) -> usize {
    let header = if frag.offset == 0 {
        frag.unfragmentable.len()
    } else {
        0
    };
    FRAGMENT_OVERHEAD + frag.payload.len() + header
}

/// Add one fragment to a datagram: the overlap and cap checks, then the copy.
#[allow(clippy::too_many_arguments)]
fn add_fragment(
    d: &mut Datagram,
    cfg: &DefragConfig,
    bytes: &mut usize,
    stats: &mut DefragStats,
    frag: &Fragment<'_>,
    offset: usize,
    proto: u8,
    oversize: bool,
    overlap: &mut bool,
) -> Step {
    let State::Assembling(asm) = &mut d.state else {
        return Step::Ignored;
    };
    if oversize {
        return Step::Kill(DefragAnomaly::Oversize);
    }
    let len = frag.payload.len();
    let end = offset + len;
    // Suricata's overlap event: any byte of this fragment already held.
    *overlap = asm
        .pieces
        .iter()
        .any(|p| offset < p.end() && p.offset < end);

    let idx = asm.pieces.partition_point(|p| p.offset < offset);
    if let Some(p) = asm.pieces.get(idx)
        && p.offset == offset
        && p.data.len() == len
    {
        if p.data == frag.payload {
            stats.duplicates += 1;
            return Step::Ignored;
        }
        return Step::Kill(DefragAnomaly::Overlap);
    }
    let overlaps_prev = idx
        .checked_sub(1)
        .and_then(|i| asm.pieces.get(i))
        .is_some_and(|p| p.end() > offset);
    let overlaps_next = len > 0 && asm.pieces.get(idx).is_some_and(|n| n.offset < end);
    if overlaps_prev || overlaps_next {
        return Step::Kill(DefragAnomaly::Overlap);
    }
    let max_end = asm.pieces.last().map_or(0, Piece::end);
    let inconsistent_end = match (frag.more, asm.total) {
        (false, Some(t)) => t != end,
        (false, None) => max_end > end,
        (true, Some(t)) => end > t,
        (true, None) => false,
    };
    if inconsistent_end {
        return Step::Kill(DefragAnomaly::Overlap);
    }
    let first_header = offset == 0 && asm.header.is_none();
    if len == 0 && frag.more && !first_header {
        // An empty middle fragment carries nothing.
        return Step::Ignored;
    }
    if len > 0 && asm.pieces.len() >= cfg.max_fragments_per_datagram {
        return Step::Kill(DefragAnomaly::TooManyFragments);
    }
    let need = if first_header {
        frag.unfragmentable.len()
    } else {
        0
    } + if len > 0 { FRAGMENT_OVERHEAD + len } else { 0 };
    if bytes.saturating_add(need) > cfg.max_bytes {
        return Step::Kill(DefragAnomaly::MemoryCap);
    }

    if first_header {
        asm.header = Some((frag.unfragmentable.to_vec(), proto));
    }
    if !frag.more {
        asm.total = Some(end);
    }
    if len > 0 {
        asm.pieces.insert(
            idx,
            Piece {
                offset,
                data: frag.payload.to_vec(),
            },
        );
        asm.received += len;
    }
    d.charged += need;
    *bytes += need;

    match (asm.header.is_some(), asm.total) {
        (true, Some(t)) if asm.received == t => Step::Complete,
        _ => Step::Ignored,
    }
}

/// Rebuild the IP packet from the first fragment's unfragmentable part and the payload pieces
/// (in order, contiguous, `total` bytes). `None` if the header cannot be fixed up, which a header
/// from the decoder never causes.
fn build(v6: bool, header: &[u8], proto: u8, pieces: &[&[u8]], total: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(header.len() + total);
    out.extend_from_slice(header);
    for p in pieces {
        out.extend_from_slice(p);
    }
    if v6 {
        let payload_len = u16::try_from(out.len().checked_sub(IPV6_HEADER_LEN)?).ok()?;
        put_u16(&mut out, 4, payload_len)?;
        // The next-header field that named the fragment header now names its payload: the
        // fixed header's, or that of the last extension header before the fragment header.
        let mut nh_at = 6;
        let mut at = IPV6_HEADER_LEN;
        while at < header.len() {
            let kind = *out.get(nh_at)?;
            let len_field = *out.get(at + 1)?;
            nh_at = at;
            at += ipv6_ext_header_len(kind, usize::from(len_field));
        }
        if at != header.len() {
            return None;
        }
        *out.get_mut(nh_at)? = proto;
    } else {
        let total_len = u16::try_from(out.len()).ok()?;
        put_u16(&mut out, 2, total_len)?;
        let mut ipv4 = Ipv4Packet::new_checked(out.as_mut_slice()).ok()?;
        ipv4.set_more_frags(false);
        ipv4.set_frag_offset(0);
        ipv4.fill_checksum();
    }
    Some(out)
}

fn put_u16(buf: &mut [u8], at: usize, v: u16) -> Option<()> {
    buf.get_mut(at..at + 2)?.copy_from_slice(&v.to_be_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use core::net::IpAddr;

    use proptest::prelude::*;
    use vlan::{VlanId, VlanScope};

    use super::*;
    use crate::decode::fixtures::*;
    use crate::decode::{DecodeOptions, L4, decode_frame, decode_ip};

    const VERIFY: DecodeOptions = DecodeOptions {
        verify_checksums: true,
    };
    const T0: Timestamp = Timestamp(1_700_000_000 * Timestamp::SECOND);
    const UNTAGGED: VlanScope = VlanScope::UNTAGGED;

    /// Decode `packet` (an IP fragment) and insert it.
    fn feed(d: &mut Defragmenter, now: Timestamp, scope: VlanScope, packet: &[u8]) -> DefragOutput {
        let (ip, anomalies) = decode_ip(packet, VERIFY).unwrap();
        assert!(anomalies.is_empty(), "{anomalies:?}");
        let frag = ip.fragment.expect("a fragment");
        d.insert(now, scope, &ip, &frag)
    }

    fn udp_v4(payload: &[u8]) -> Vec<u8> {
        let seg = udp(IpAddr::V4(V4_SRC), IpAddr::V4(V4_DST), 4000, 53, payload);
        ipv4(V4_SRC, V4_DST, 17, &seg)
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect()
    }

    /// The reassembled packet decodes to the original UDP payload with valid checksums.
    fn assert_udp(datagram: &[u8], payload: &[u8]) {
        let (ip, anomalies) = decode_ip(datagram, VERIFY).unwrap();
        assert!(anomalies.is_empty(), "{anomalies:?}");
        assert!(ip.fragment.is_none());
        let L4::Udp(u) = ip.l4 else {
            panic!("{:?}", ip.l4)
        };
        assert_eq!((u.src_port, u.dst_port), (4000, 53));
        assert_eq!(u.payload, payload);
    }

    #[test]
    fn in_order() {
        let payload = pattern(100);
        let frags = fragment_ipv4(&udp_v4(&payload), 77, 40);
        assert_eq!(frags.len(), 3);
        let mut d = Defragmenter::new(DefragConfig::default());
        assert_eq!(
            feed(&mut d, T0, UNTAGGED, &frags[0]),
            DefragOutput::default()
        );
        assert_eq!(
            feed(&mut d, T0, UNTAGGED, &frags[1]),
            DefragOutput::default()
        );
        assert_eq!(d.stats().in_progress, 1);
        let out = feed(&mut d, T0, UNTAGGED, &frags[2]);
        assert_eq!(out.anomaly, None);
        let datagram = out.datagram.unwrap();
        assert_udp(&datagram, &payload);
        // Header: the first fragment's, with MF/offset cleared and the total length fixed.
        let (ip, _) = decode_ip(&datagram, VERIFY).unwrap();
        assert_eq!(ip.total_len, 20 + 8 + 100);
        assert_eq!(&datagram[4..6], &77u16.to_be_bytes());
        assert_eq!(&datagram[6..8], &[0, 0]);
        let s = d.stats();
        assert_eq!(
            (
                s.datagrams_reassembled,
                s.fragments,
                s.in_progress,
                s.bytes_buffered
            ),
            (1, 3, 0, 0)
        );
    }

    #[test]
    fn out_of_order() {
        let payload = pattern(300);
        let mut frags = fragment_ipv4(&udp_v4(&payload), 1, 64);
        frags.reverse();
        frags.swap(1, 3);
        let mut d = Defragmenter::new(DefragConfig::default());
        let (last, rest) = frags.split_last().unwrap();
        for f in rest {
            assert_eq!(feed(&mut d, T0, UNTAGGED, f), DefragOutput::default());
        }
        assert_udp(
            &feed(&mut d, T0, UNTAGGED, last).datagram.unwrap(),
            &payload,
        );
    }

    #[test]
    fn duplicates_are_not_overlaps() {
        let payload = pattern(100);
        let frags = fragment_ipv4(&udp_v4(&payload), 2, 40);
        let mut d = Defragmenter::new(DefragConfig::default());
        for (i, f) in [&frags[0], &frags[1], &frags[0], &frags[1]]
            .into_iter()
            .enumerate()
        {
            // A retransmission is no anomaly of the datagram, but still Suricata's overlap event.
            let event = (i >= 2).then_some(DecodeEvent::Ipv4FragOverlap);
            let want = DefragOutput {
                event,
                ..DefragOutput::default()
            };
            assert_eq!(feed(&mut d, T0, UNTAGGED, f), want);
        }
        assert_udp(
            &feed(&mut d, T0, UNTAGGED, &frags[2]).datagram.unwrap(),
            &payload,
        );
        assert_eq!(d.stats().duplicates, 2);
        assert_eq!(d.stats().overlaps, 0);
    }

    #[test]
    fn teardrop_overlap_is_reported_once() {
        let payload = pattern(100);
        let header = udp_v4(&payload);
        let data = &header[20..];
        let mut d = Defragmenter::new(DefragConfig::default());
        // Classic Teardrop: the second fragment starts inside the first.
        let a = ipv4_fragment(&header, 9, 0, true, &data[..48]);
        let b = ipv4_fragment(&header, 9, 24, true, &data[24..64]);
        let c = ipv4_fragment(&header, 9, 64, false, &data[64..]);
        assert_eq!(feed(&mut d, T0, UNTAGGED, &a), DefragOutput::default());
        let out = feed(&mut d, T0, UNTAGGED, &b);
        assert_eq!(out.anomaly, Some(DefragAnomaly::Overlap));
        assert_eq!(out.event, Some(DecodeEvent::Ipv4FragOverlap));
        // The rest of that datagram is dropped silently, even a fragment that would complete it.
        assert_eq!(feed(&mut d, T0, UNTAGGED, &c), DefragOutput::default());
        let rest = ipv4_fragment(&header, 9, 48, true, &data[48..64]);
        assert_eq!(feed(&mut d, T0, UNTAGGED, &rest), DefragOutput::default());
        let s = d.stats();
        assert_eq!(
            (s.overlaps, s.in_progress, s.datagrams_reassembled),
            (1, 0, 0)
        );
        assert_eq!(
            s.bytes_buffered, DATAGRAM_OVERHEAD,
            "only the tombstone is charged"
        );
    }

    #[test]
    fn same_range_different_bytes_is_overlap() {
        let header = udp_v4(&pattern(64));
        let mut d = Defragmenter::new(DefragConfig::default());
        let a = ipv4_fragment(&header, 3, 8, true, &[1; 16]);
        let b = ipv4_fragment(&header, 3, 8, true, &[2; 16]);
        feed(&mut d, T0, UNTAGGED, &a);
        assert_eq!(
            feed(&mut d, T0, UNTAGGED, &b).anomaly,
            Some(DefragAnomaly::Overlap)
        );
    }

    #[test]
    fn disagreeing_last_fragments_are_overlap() {
        let header = udp_v4(&pattern(64));
        let mut d = Defragmenter::new(DefragConfig::default());
        feed(
            &mut d,
            T0,
            UNTAGGED,
            &ipv4_fragment(&header, 4, 16, false, &[1; 16]),
        );
        let out = feed(
            &mut d,
            T0,
            UNTAGGED,
            &ipv4_fragment(&header, 4, 40, false, &[1; 8]),
        );
        assert_eq!(out.anomaly, Some(DefragAnomaly::Overlap));
        // Data beyond a known end.
        feed(
            &mut d,
            T0,
            UNTAGGED,
            &ipv4_fragment(&header, 5, 16, false, &[1; 16]),
        );
        let out = feed(
            &mut d,
            T0,
            UNTAGGED,
            &ipv4_fragment(&header, 5, 32, true, &[1; 8]),
        );
        assert_eq!(out.anomaly, Some(DefragAnomaly::Overlap));
    }

    #[test]
    fn ping_of_death_is_oversize() {
        let echo = icmpv4_echo(1, 1, &[0xaa; 1472]);
        let header = ipv4(V4_SRC, V4_DST, 1, &echo);
        let mut d = Defragmenter::new(DefragConfig::default());
        assert_eq!(
            feed(
                &mut d,
                T0,
                UNTAGGED,
                &ipv4_fragment(&header, 6, 0, true, &echo)
            ),
            DefragOutput::default()
        );
        // Offset 65520 + 100 bytes + a 20-byte header > 65535.
        let out = feed(
            &mut d,
            T0,
            UNTAGGED,
            &ipv4_fragment(&header, 6, 65520, false, &[0xaa; 100]),
        );
        assert_eq!(out.anomaly, Some(DefragAnomaly::Oversize));
        let out = feed(
            &mut d,
            T0,
            UNTAGGED,
            &ipv4_fragment(&header, 6, 1480, true, &[0xaa; 1480]),
        );
        assert_eq!(out, DefragOutput::default(), "reported once");
        // The largest legal datagram still reassembles: 20 + 65512 + 3 = 65535.
        let out = feed(
            &mut d,
            T0,
            UNTAGGED,
            &ipv4_fragment(&header, 7, 65512, false, &[0; 3]),
        );
        assert_eq!(out.anomaly, None);
        let s = d.stats();
        assert_eq!((s.oversize, s.in_progress), (1, 1));
    }

    #[test]
    fn timeout_expiry() {
        let payload = pattern(100);
        let frags = fragment_ipv4(&udp_v4(&payload), 8, 40);
        let mut d = Defragmenter::new(DefragConfig::default());
        feed(&mut d, T0, UNTAGGED, &frags[0]);
        feed(&mut d, T0.plus_secs(10), UNTAGGED, &frags[1]);
        assert_eq!(d.expire(T0.plus_secs(29)), 0);
        assert_eq!(d.stats().in_progress, 1);
        assert_eq!(
            d.expire(T0.plus_secs(30)),
            1,
            "the timer runs from the first fragment"
        );
        let s = d.stats();
        assert_eq!((s.timeouts, s.in_progress, s.bytes_buffered), (1, 0, 0));
        // The late last fragment starts a new datagram that cannot complete.
        assert_eq!(
            feed(&mut d, T0.plus_secs(31), UNTAGGED, &frags[2]),
            DefragOutput::default()
        );
        assert_eq!(d.stats().in_progress, 1);
    }

    #[test]
    fn stale_datagram_is_replaced_on_insert() {
        let payload = pattern(100);
        let frags = fragment_ipv4(&udp_v4(&payload), 8, 40);
        let mut d = Defragmenter::new(DefragConfig::default());
        feed(&mut d, T0, UNTAGGED, &frags[0]);
        let later = T0.plus_secs(60);
        for f in &frags[..2] {
            assert_eq!(feed(&mut d, later, UNTAGGED, f), DefragOutput::default());
        }
        assert_udp(
            &feed(&mut d, later, UNTAGGED, &frags[2]).datagram.unwrap(),
            &payload,
        );
        assert_eq!(d.stats().timeouts, 1);
    }

    #[test]
    fn tombstones_expire_silently() {
        let header = udp_v4(&pattern(64));
        let mut d = Defragmenter::new(DefragConfig::default());
        feed(
            &mut d,
            T0,
            UNTAGGED,
            &ipv4_fragment(&header, 3, 8, true, &[1; 16]),
        );
        feed(
            &mut d,
            T0,
            UNTAGGED,
            &ipv4_fragment(&header, 3, 8, true, &[2; 16]),
        );
        assert_eq!(d.expire(T0.plus_secs(31)), 0);
        assert_eq!(d.stats().bytes_buffered, 0);
        assert_eq!(d.stats().timeouts, 0);
    }

    #[test]
    fn memory_cap_refuses_before_allocating() {
        let header = udp_v4(&pattern(64));
        let cfg = DefragConfig {
            max_bytes: 1000,
            ..DefragConfig::default()
        };
        let mut d = Defragmenter::new(cfg);
        // 128 + 64 + 600 + 20 = 812 bytes.
        assert_eq!(
            feed(
                &mut d,
                T0,
                UNTAGGED,
                &ipv4_fragment(&header, 1, 0, true, &[0; 600])
            )
            .anomaly,
            None
        );
        assert_eq!(d.stats().bytes_buffered, 812);
        // A second datagram of the same size does not fit: refused.
        let out = feed(
            &mut d,
            T0,
            UNTAGGED,
            &ipv4_fragment(&header, 2, 0, true, &[0; 600]),
        );
        assert_eq!(out.anomaly, Some(DefragAnomaly::MemoryCap));
        assert_eq!(d.stats().bytes_buffered, 812);
        // More data for the first one does not fit either: it can no longer complete.
        let out = feed(
            &mut d,
            T0,
            UNTAGGED,
            &ipv4_fragment(&header, 1, 600, false, &[0; 600]),
        );
        assert_eq!(out.anomaly, Some(DefragAnomaly::MemoryCap));
        let s = d.stats();
        assert_eq!(
            (s.memory_drops, s.in_progress, s.bytes_buffered),
            (2, 0, DATAGRAM_OVERHEAD)
        );
    }

    #[test]
    fn max_datagrams_evicts_the_oldest() {
        let payload = pattern(100);
        let cfg = DefragConfig {
            max_datagrams: 2,
            ..DefragConfig::default()
        };
        let mut d = Defragmenter::new(cfg);
        let a = fragment_ipv4(&udp_v4(&payload), 1, 40);
        let b = fragment_ipv4(&udp_v4(&payload), 2, 40);
        let c = fragment_ipv4(&udp_v4(&payload), 3, 40);
        feed(&mut d, T0, UNTAGGED, &a[0]);
        feed(&mut d, T0, UNTAGGED, &b[0]);
        assert_eq!(
            feed(&mut d, T0, UNTAGGED, &c[0]).anomaly,
            Some(DefragAnomaly::MemoryCap)
        );
        assert_eq!(d.stats().memory_drops, 1);
        assert_eq!(d.stats().in_progress, 2);
        // `a` was evicted; `b` completes.
        for f in &b[1..] {
            feed(&mut d, T0, UNTAGGED, f);
        }
        assert_eq!(d.stats().datagrams_reassembled, 1);
        // `a` starts over without its first fragment (b's completion made room: no eviction).
        feed(&mut d, T0, UNTAGGED, &a[1]);
        assert_eq!(d.stats().memory_drops, 1);
        assert!(
            feed(&mut d, T0, UNTAGGED, &a[2]).datagram.is_none(),
            "a lost its first fragment"
        );
    }

    #[test]
    fn too_many_fragments() {
        let header = udp_v4(&pattern(64));
        let cfg = DefragConfig {
            max_fragments_per_datagram: 4,
            ..DefragConfig::default()
        };
        let mut d = Defragmenter::new(cfg);
        for i in 0..4u16 {
            assert_eq!(
                feed(
                    &mut d,
                    T0,
                    UNTAGGED,
                    &ipv4_fragment(&header, 1, i * 8, true, &[0; 8])
                )
                .anomaly,
                None
            );
        }
        let out = feed(
            &mut d,
            T0,
            UNTAGGED,
            &ipv4_fragment(&header, 1, 32, true, &[0; 8]),
        );
        assert_eq!(out.anomaly, Some(DefragAnomaly::TooManyFragments));
        assert_eq!(d.stats().too_many_fragments, 1);
    }

    #[test]
    fn vlans_are_separate() {
        let payload = pattern(100);
        let frags = fragment_ipv4(&udp_v4(&payload), 5, 40);
        let v100 = VlanScope::single(VlanId::new(100).unwrap());
        let v200 = VlanScope::single(VlanId::new(200).unwrap());
        let mut d = Defragmenter::new(DefragConfig::default());
        feed(&mut d, T0, v100, &frags[0]);
        feed(&mut d, T0, v200, &frags[1]);
        feed(&mut d, T0, v200, &frags[2]);
        assert_eq!(d.stats().in_progress, 2);
        assert!(feed(&mut d, T0, UNTAGGED, &frags[1]).datagram.is_none());
        feed(&mut d, T0, v100, &frags[1]);
        assert_udp(
            &feed(&mut d, T0, v100, &frags[2]).datagram.unwrap(),
            &payload,
        );
    }

    #[test]
    fn ipv6_icmpv6_reassembles() {
        let data = pattern(200);
        let echo = icmpv6_echo(V6_SRC, V6_DST, 33, 4, &data);
        let mut d = Defragmenter::new(DefragConfig::default());
        let f1 = ipv6_fragment(0xabcd, 0, true, 58, &echo[..104]);
        let f2 = ipv6_fragment(0xabcd, 104, false, 58, &echo[104..]);
        assert_eq!(feed(&mut d, T0, UNTAGGED, &f2), DefragOutput::default());
        let datagram = feed(&mut d, T0, UNTAGGED, &f1).datagram.unwrap();
        assert_eq!(
            datagram,
            ipv6(V6_SRC, V6_DST, 58, &echo),
            "fragment header removed"
        );
        let (ip, anomalies) = decode_ip(&datagram, VERIFY).unwrap();
        assert!(anomalies.is_empty());
        let L4::Icmpv6(i) = ip.l4 else {
            panic!("{:?}", ip.l4)
        };
        assert_eq!((i.icmp_type, i.ident, i.seq), (128, 33, 4));
        assert_eq!(i.payload, &data[..]);
    }

    #[test]
    fn ipv6_with_hop_by_hop_before_the_fragment_header() {
        let payload = pattern(150);
        let seg = udp(IpAddr::V6(V6_SRC), IpAddr::V6(V6_DST), 4000, 53, &payload);
        let hbh = [44u8, 0, 1, 4, 0, 0, 0, 0]; // next: fragment, PadN
        let frag = |off: u16, more: bool, data: &[u8]| {
            let mut ext = hbh.to_vec();
            ext.extend_from_slice(&[17, 0]);
            ext.extend_from_slice(&(off | u16::from(more)).to_be_bytes());
            ext.extend_from_slice(&0x55u32.to_be_bytes());
            ext.extend_from_slice(data);
            ipv6(V6_SRC, V6_DST, 0, &ext)
        };
        let mut d = Defragmenter::new(DefragConfig::default());
        feed(&mut d, T0, UNTAGGED, &frag(0, true, &seg[..80]));
        let datagram = feed(&mut d, T0, UNTAGGED, &frag(80, false, &seg[80..]))
            .datagram
            .unwrap();
        let mut expect = [17u8, 0, 1, 4, 0, 0, 0, 0].to_vec();
        expect.extend_from_slice(&seg);
        assert_eq!(datagram, ipv6(V6_SRC, V6_DST, 0, &expect));
        assert_udp(&datagram, &payload);
    }

    #[test]
    fn ipv6_atomic_fragment_is_returned_at_once() {
        let seg = udp(IpAddr::V6(V6_SRC), IpAddr::V6(V6_DST), 4000, 53, b"atomic");
        let packet = ipv6_fragment(1, 0, false, 17, &seg);
        // The decoder reads through an atomic fragment header (Suricata's "useless" one)...
        let (ip, anomalies) = decode_ip(&packet, VERIFY).unwrap();
        assert!(ip.fragment.is_none());
        assert_eq!(
            anomalies.iter().collect::<Vec<_>>(),
            [DecodeEvent::Ipv6UselessFragHeader]
        );
        // ...and a caller that hands one to the defragmenter gets it back at once.
        let frag = Fragment {
            id: 1,
            offset: 0,
            more: false,
            payload: packet.get(48..).unwrap(),
            unfragmentable: packet.get(..40).unwrap(),
        };
        let mut d = Defragmenter::new(DefragConfig::default());
        let out = d.insert(T0, UNTAGGED, &ip, &frag);
        assert_udp(&out.datagram.unwrap(), b"atomic");
        assert_eq!(d.stats().bytes_buffered, 0);
    }

    /// Suricata's `frag_pkt_too_large`: IPv4 counts its 20-byte header, IPv6 the fragment's
    /// offset and data only.
    #[test]
    fn fragments_ending_past_65535_bytes_raise_the_event() {
        let header = udp_v4(&pattern(64));
        let mut d = Defragmenter::new(DefragConfig::default());
        let fits = ipv4_fragment(&header, 4, 65_504, true, &[0; 8]);
        assert_eq!(feed(&mut d, T0, UNTAGGED, &fits).event, None);
        let over = ipv4_fragment(&header, 5, 65_512, true, &[0; 8]);
        let out = feed(&mut d, T0, UNTAGGED, &over);
        assert_eq!(out.event, Some(DecodeEvent::Ipv4FragPktTooLarge));
        assert_eq!(out.anomaly, Some(DefragAnomaly::Oversize));
        let v6 = |id: u32, off: u16| ipv6_fragment(id, off, true, 17, &[0; 16]);
        assert_eq!(feed(&mut d, T0, UNTAGGED, &v6(6, 65_512)).event, None);
        assert_eq!(
            feed(&mut d, T0, UNTAGGED, &v6(7, 65_520)).event,
            Some(DecodeEvent::Ipv6FragPktTooLarge)
        );
    }

    #[test]
    fn reassembled_frame_decodes_to_the_original_l4() {
        // Through the whole path: frames with a VLAN tag, decode_frame, defrag, decode_ip.
        let payload = pattern(1000);
        let original = udp_v4(&payload);
        let tag = vlan::Tag::dot1q(VlanId::new(42).unwrap());
        let mut d = Defragmenter::new(DefragConfig::default());
        let mut done = None;
        for f in fragment_ipv4(&original, 99, 296) {
            let frame = eth(&[tag], 0x0800, &f);
            let dec = decode_frame(&frame, VERIFY).unwrap();
            let crate::decode::L3::Ip(ip) = &dec.l3 else {
                panic!()
            };
            let out = d.insert(T0, dec.vlan.scope(), ip, &ip.fragment.unwrap());
            assert_eq!(out.anomaly, None);
            done = out.datagram.or(done);
        }
        let datagram = done.unwrap();
        assert_udp(&datagram, &payload);
        assert_eq!(datagram[20..], original[20..]);
    }

    #[test]
    fn order_queue_stays_bounded() {
        let payload = pattern(16);
        let mut d = Defragmenter::new(DefragConfig::default());
        let pinned = fragment_ipv4(&udp_v4(&payload), 0, 8);
        feed(&mut d, T0, UNTAGGED, &pinned[0]);
        for id in 1..5000u16 {
            for f in fragment_ipv4(&udp_v4(&payload), id, 8) {
                feed(&mut d, T0, UNTAGGED, &f);
            }
        }
        assert_eq!(d.stats().datagrams_reassembled, 4999);
        assert!(d.order.len() <= 2 * d.map.len() + 1025, "{}", d.order.len());
    }

    proptest! {
        /// Any fragmentation, delivered in any order with retransmissions, reassembles to the
        /// original payload, and nothing stays buffered.
        #[test]
        fn any_order_reassembles(
            len in 1usize..3000,
            chunk_units in 2usize..64, // at most 188 fragments: under the default cap of 256
            order in proptest::collection::vec(any::<proptest::sample::Index>(), 0..8),
            v6 in any::<bool>(),
        ) {
            let payload = pattern(len);
            let chunk = chunk_units * 8;
            let frags: Vec<Vec<u8>> = if v6 {
                let seg = udp(IpAddr::V6(V6_SRC), IpAddr::V6(V6_DST), 4000, 53, &payload);
                if seg.len() <= chunk {
                    // One piece: sent whole (an atomic fragment is decoded, not reassembled).
                    vec![ipv6(V6_SRC, V6_DST, 17, &seg)]
                } else {
                seg.chunks(chunk).enumerate().map(|(i, c)| {
                    let off = u16::try_from(i * chunk).unwrap();
                    ipv6_fragment(7, off, (i + 1) * chunk < seg.len(), 17, c)
                }).collect()
                }
            } else {
                fragment_ipv4(&udp_v4(&payload), 7, chunk)
            };
            let mut seq: Vec<&Vec<u8>> = frags.iter().collect();
            // Shuffle by swapping, then add retransmissions.
            for (i, ix) in order.iter().enumerate() {
                let j = ix.index(seq.len());
                let i = i % seq.len();
                seq.swap(i, j);
            }
            for ix in &order {
                seq.insert(ix.index(seq.len()), frags[ix.index(frags.len())].as_ref());
            }
            let mut d = Defragmenter::new(DefragConfig::default());
            let mut got = Vec::new();
            for f in seq {
                let (ip, _) = decode_ip(f, VERIFY).unwrap();
                let Some(frag) = ip.fragment else {
                    // A single piece is not a fragment.
                    got.push(f.clone());
                    continue;
                };
                let out = d.insert(T0, UNTAGGED, &ip, &frag);
                prop_assert_eq!(out.anomaly, None);
                // A retransmission is Suricata's overlap event, nothing else is raised here.
                let overlap = if v6 { DecodeEvent::Ipv6FragOverlap } else { DecodeEvent::Ipv4FragOverlap };
                prop_assert!(out.event.is_none() || out.event == Some(overlap), "{:?}", out.event);
                if order.is_empty() {
                    prop_assert_eq!(out.event, None);
                }
                got.extend(out.datagram);
            }
            // Retransmissions after completion start a new, incomplete datagram; the first
            // completion is the original.
            prop_assert!(!got.is_empty());
            assert_udp(&got[0], &payload);
        }
    }
}
