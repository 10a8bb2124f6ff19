//! One direction of a TCP stream: sequence tracking, out-of-order buffer, overlap checks, gaps,
//! depth and memory accounting. See the module doc of [`crate::stream`] for the semantics.

use std::collections::BTreeMap;

use super::{
    InsertResult, MAX_URGENT_OOB, OsPolicy, Segment, StreamConfig, StreamEvents, StreamMemcap,
    StreamStats, UrgentPolicy,
};
use crate::decode::TcpFlags;

/// The low 32 bits of an absolute stream offset (sequence space is modulo 2^32).
fn low32(x: u64) -> u32 {
    u32::try_from(x & 0xffff_ffff).unwrap_or_default()
}

/// One direction of a TCP stream.
#[derive(Debug)]
pub struct StreamDirection {
    cfg: StreamConfig,
    mem: StreamMemcap,
    /// Sequence number of stream offset 0, once known (SYN + 1, or the midstream pick-up point).
    base: Option<u32>,
    /// Absolute offset of the next expected byte.
    next: u64,
    /// In-order bytes `[data_start, next)`, up to the depth.
    data: Vec<u8>,
    data_start: u64,
    /// The in-order bytes kept before the latest hole an ACK skipped, from this absolute
    /// offset: raw inspection may not have read them yet ([`Self::before_gap_between`]). Their
    /// allocation stays reserved until [`Self::release_before_gap`], the next hole or the drop.
    before_gap: Option<(u64, Vec<u8>)>,
    /// Out-of-order pieces by absolute offset; never overlapping each other, all beyond `next`.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    /// Absolute offset of the FIN (it consumes one sequence number that carries no data).
    fin: Option<u64>,
    /// Highest absolute offset the peer acknowledged (0 before any ACK): IDS-mode inspection
    /// reads only bytes below it.
    acked: u64,
    depth_reached: bool,
    /// Bytes reserved from the memcap: the data's allocation (its capacity, not its length) plus
    /// the pending bytes.
    reserved: usize,
    midstream: bool,
    stats: StreamStats,
    /// Which bytes win when a segment overlaps unacknowledged ones ([`Self::set_os_policy`]).
    policy: OsPolicy,
    /// `[start, end)` of the latest segments not yet fully acknowledged, oldest first (at most
    /// [`MAX_TRACKED_SEGMENTS`]); only kept when the policy is not [`OsPolicy::First`].
    segs: Vec<(u64, u64)>,
    /// Urgent bytes taken out of band ([`UrgentPolicy::Oob`]): `base` moved on by as many
    /// sequence numbers, so the bytes after each close up in the stream.
    urgent_oob: u32,
}

/// Segments whose boundaries a direction remembers for its overlap policy: a sender has a few
/// dozen segments in flight; when more are unacknowledged the oldest boundary is forgotten and
/// bytes under it keep their first version.
pub const MAX_TRACKED_SEGMENTS: usize = 32;

impl Drop for StreamDirection {
    fn drop(&mut self) {
        self.mem.release(self.reserved);
    }
}

impl StreamDirection {
    /// A direction with nothing seen yet.
    pub fn new(cfg: StreamConfig, mem: StreamMemcap) -> Self {
        StreamDirection {
            cfg,
            mem,
            base: None,
            next: 0,
            data: Vec::new(),
            data_start: 0,
            before_gap: None,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            fin: None,
            acked: 0,
            depth_reached: false,
            reserved: 0,
            midstream: false,
            stats: StreamStats::default(),
            policy: OsPolicy::First,
            segs: Vec::new(),
            urgent_oob: 0,
        }
    }

    /// Whether this direction took [`MAX_URGENT_OOB`] urgent bytes out of band: later urgent
    /// data follows the `oob-limit-policy`.
    pub fn urgent_oob_exhausted(&self) -> bool {
        self.urgent_oob >= MAX_URGENT_OOB
    }

    /// The receiving host's overlap policy (from `host-os-policy`). Only IDS-mode inspection
    /// sets it: the bytes a retransmission may replace are the unacknowledged ones, which IDS
    /// inspection has not read yet. Inline inspection reads bytes on arrival, so the first
    /// version wins (the default), as Suricata's inline mode keeps the accepted data.
    pub fn set_os_policy(&mut self, policy: OsPolicy) {
        self.policy = policy;
        if policy == OsPolicy::First {
            self.segs = Vec::new();
        }
    }

    /// The overlap policy in use.
    pub fn os_policy(&self) -> OsPolicy {
        self.policy
    }

    /// The in-order bytes kept: from stream offset [`Self::data_offset`] to [`Self::end_offset`].
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The heap bytes this direction holds for stream data: the in-order data's allocation and
    /// the out-of-order pieces. What it has reserved from the memcap.
    pub fn heap_bytes(&self) -> usize {
        let before = self.before_gap.as_ref().map_or(0, |(_, b)| b.capacity());
        self.data
            .capacity()
            .saturating_add(self.pending_bytes)
            .saturating_add(before)
    }

    /// Absolute stream offset of `data()[0]` (0 unless a gap or memcap drop restarted the data).
    pub fn data_offset(&self) -> u64 {
        self.data_start
    }

    /// Absolute stream offset just past the last in-order byte (the next expected byte).
    pub fn end_offset(&self) -> u64 {
        self.next
    }

    /// Sequence numbers this side used so far in order: the SYN, the in-order bytes and the
    /// FIN once reached (Suricata's `next_seq - isn`, what `stream_size` compares).
    pub fn seq_used(&self) -> u64 {
        1 + self.next + u64::from(self.fin == Some(self.next)) + u64::from(self.urgent_oob)
    }

    /// Absolute stream offset up to which the in-order bytes are acknowledged by the peer: the
    /// highest ACK seen, clamped to [`Self::end_offset`] (an ACK can run ahead of the bytes this
    /// side saw, e.g. past a hole). What IDS-mode inspection may read.
    pub fn acked_offset(&self) -> u64 {
        self.acked.min(self.next)
    }

    /// Count every in-order byte as acknowledged (a one-sided flow whose peer never ACKs, as
    /// Suricata's async mode does).
    pub fn ack_all(&mut self) {
        self.acked = self.acked.max(self.next);
    }

    /// In-order bytes from absolute offset `since` (clamped to what is kept) to the end, with the
    /// absolute offset of the first returned byte. Pass the end offset of the previous call to
    /// get only new data; pass less to re-inspect an overlap window.
    pub fn new_data_since(&self, since: u64) -> (u64, &[u8]) {
        let from = since.clamp(self.data_start, self.next);
        let skip = usize::try_from(from - self.data_start).unwrap_or(usize::MAX);
        (from, self.data.get(skip..).unwrap_or_default())
    }

    /// In-order bytes from absolute offset `since` up to (not including) `until`, both clamped to
    /// what is kept, with the absolute offset of the first returned byte. IDS-mode inspection
    /// passes [`Self::acked_offset`] as `until`.
    pub fn data_between(&self, since: u64, until: u64) -> (u64, &[u8]) {
        let from = since.clamp(self.data_start, self.next);
        let to = until.clamp(from, self.next);
        let lo = usize::try_from(from - self.data_start).unwrap_or(usize::MAX);
        let hi = usize::try_from(to - self.data_start).unwrap_or(usize::MAX);
        (from, self.data.get(lo..hi).unwrap_or_default())
    }

    /// The bytes kept before the latest hole an ACK skipped, from absolute offset `since`
    /// (clamped) to the hole, with the offset of the first: what raw inspection had not read
    /// when the data restarted after the hole. `None` when nothing is left from `since`.
    pub fn before_gap_between(&self, since: u64) -> Option<(u64, &[u8])> {
        let (start, bytes) = self.before_gap.as_ref()?;
        let from = since.max(*start);
        let skip = usize::try_from(from - start).ok()?;
        let rest = bytes.get(skip..).filter(|r| !r.is_empty())?;
        Some((from, rest))
    }

    /// Let the bytes before the latest hole go (their reader is done with them).
    pub fn release_before_gap(&mut self) {
        if let Some((_, old)) = self.before_gap.take() {
            self.give_back(old.capacity());
        }
    }

    /// Whether the stream has a known start (SYN seen, or midstream pick-up).
    pub fn is_started(&self) -> bool {
        self.base.is_some()
    }

    /// Whether this direction was picked up midstream.
    pub fn is_midstream(&self) -> bool {
        self.midstream
    }

    /// Whether the depth was reached.
    pub fn is_depth_reached(&self) -> bool {
        self.depth_reached
    }

    /// Out-of-order bytes currently held.
    pub fn buffered(&self) -> usize {
        self.pending_bytes
    }

    /// Counters.
    pub fn stats(&self) -> &StreamStats {
        &self.stats
    }

    /// Signed distance (in bytes) of `seq` from the next expected byte, as an absolute offset.
    fn offset_of(&self, base: u32, seq: u32) -> i128 {
        let next_seq = base.wrapping_add(low32(self.next));
        let d = i32::from_ne_bytes(seq.wrapping_sub(next_seq).to_ne_bytes());
        i128::from(self.next) + i128::from(d)
    }

    /// Insert one segment of this direction.
    pub fn insert(&mut self, seg: Segment<'_>) -> InsertResult {
        if seg.flags.has(TcpFlags::URG)
            && seg.urgent > 0
            && matches!(self.cfg.urgent, UrgentPolicy::Oob | UrgentPolicy::Gap)
        {
            return self.insert_urgent(seg);
        }
        self.insert_segment(seg)
    }

    /// A segment with urgent data under [`UrgentPolicy::Oob`] or [`UrgentPolicy::Gap`]: the
    /// urgent byte (the one before the urgent pointer) is left out; the bytes before it and
    /// after it go in as two segments. Out of band, the bytes after it close up (the sequence
    /// mapping moves on by one); as a gap, they leave a one-byte hole. A retransmission of
    /// urgent data already passed is inserted without moving the mapping again.
    #[cold]
    #[inline(never)]
    fn insert_urgent(&mut self, seg: Segment<'_>) -> InsertResult {
        let at = usize::from(seg.urgent - 1);
        let syn = seg.flags.has(TcpFlags::SYN);
        let policy = match self.cfg.urgent {
            UrgentPolicy::Oob if self.urgent_oob_exhausted() => self.cfg.urgent_oob_limit,
            p => p,
        };
        let (Some(before), Some(after)) = (seg.payload.get(..at), seg.payload.get(at + 1..)) else {
            // The pointer lies past this segment: its urgent byte comes later (Suricata handles
            // a pointer within the segment only).
            return self.insert_segment(seg);
        };
        if syn || !matches!(policy, UrgentPolicy::Oob | UrgentPolicy::Gap) {
            // On a SYN, or past the out-of-band limit with `inline` (or `drop`, which the
            // worker applies before the stream): the byte stays.
            return self.insert_segment(seg);
        }
        let no_fin = TcpFlags(seg.flags.0 & !TcpFlags::FIN);
        let mut res = self.insert_segment(Segment {
            flags: no_fin,
            payload: before,
            ..seg
        });
        let urgent_seq = seg.seq.wrapping_add(u32::from(seg.urgent - 1));
        let after_seq = urgent_seq.wrapping_add(1);
        if let Some(base) = self.base {
            let is_new = self.offset_of(base, urgent_seq) >= i128::from(self.next);
            self.stats.urgent += 1;
            res.events.set(StreamEvents::URGENT);
            if policy == UrgentPolicy::Oob && is_new {
                self.base = Some(base.wrapping_add(1));
                self.urgent_oob = self.urgent_oob.saturating_add(1);
            }
        }
        let rest = self.insert_segment(Segment {
            seq: after_seq,
            payload: after,
            ..seg
        });
        // One segment, whatever it was cut into.
        self.stats.segments = self.stats.segments.saturating_sub(1);
        res.appended = res.appended.saturating_add(rest.appended);
        res.events.0 |= rest.events.0;
        res
    }

    /// Insert one segment of this direction, its payload as it is.
    fn insert_segment(&mut self, seg: Segment<'_>) -> InsertResult {
        let mut res = InsertResult::default();
        self.stats.segments += 1;
        let syn = seg.flags.has(TcpFlags::SYN);
        let data_seq = if syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        let base = match self.base {
            Some(b) => b,
            None if syn => {
                self.base = Some(data_seq);
                data_seq
            }
            None if seg.payload.is_empty() => return res,
            None if self.cfg.midstream => {
                self.base = Some(data_seq);
                self.midstream = true;
                data_seq
            }
            None => {
                self.stats.not_reassembled += 1;
                res.events.set(StreamEvents::NOT_REASSEMBLED);
                return res;
            }
        };
        let start = self.offset_of(base, data_seq);
        let end = start + seg.payload.len() as i128;
        if seg.flags.has(TcpFlags::FIN) && self.fin.is_none() {
            self.fin = u64::try_from(end).ok();
        }
        if seg.payload.is_empty() {
            return res;
        }
        // Bytes before the stream start (before ISN + 1) do not belong to the stream.
        let (start, payload) = if start < 0 {
            let cut = usize::try_from(-start).unwrap_or(usize::MAX);
            (0u64, seg.payload.get(cut..).unwrap_or_default())
        } else {
            (u64::try_from(start).unwrap_or(u64::MAX), seg.payload)
        };
        if payload.is_empty() {
            return res;
        }
        let end = start.saturating_add(payload.len() as u64);
        let next = self.next;

        // Part (or all) of the segment lies before the next expected byte.
        let payload = if start < next {
            let old_end = end.min(next);
            if end <= next {
                self.stats.retransmissions += 1;
                res.events.set(StreamEvents::RETRANSMISSION);
            } else {
                self.stats.overlaps += 1;
                res.events.set(StreamEvents::OVERLAP);
            }
            let old = payload
                .get(..usize::try_from(old_end - start).unwrap_or(usize::MAX))
                .unwrap_or_default();
            if self.differs_from_data(start, old) {
                self.stats.overlap_different_data += 1;
                res.events.set(StreamEvents::OVERLAP_DIFFERENT_DATA);
                if self.policy != OsPolicy::First {
                    self.apply_overlap_policy(start, end, old);
                }
            }
            if self.policy != OsPolicy::First {
                self.track(start, end);
            }
            if end <= next {
                return res;
            }
            payload
                .get(usize::try_from(next - start).unwrap_or(usize::MAX)..)
                .unwrap_or_default()
        } else {
            payload
        };
        // A segment from the next expected byte on (one reaching back was tracked above).
        if self.policy != OsPolicy::First && start >= next {
            self.track(start, end);
        }
        let start = start.max(next);
        if start > next {
            self.stats.out_of_order += 1;
            res.events.set(StreamEvents::OUT_OF_ORDER);
        } else {
            self.stats.in_order += 1;
        }

        // Depth: nothing at or beyond it is collected.
        let depth = self.cfg.depth;
        let payload = if start.saturating_add(payload.len() as u64) > depth {
            self.mark_depth(&mut res);
            let keep = depth.saturating_sub(start);
            payload
                .get(..usize::try_from(keep).unwrap_or(usize::MAX))
                .unwrap_or(payload)
        } else {
            payload
        };
        if payload.is_empty() {
            return res;
        }
        if start == next && self.pending.is_empty() {
            // In order with nothing held, the common case: onto the data at once. The same
            // accounting as holding the piece and draining it (`insert_pending`, `drain`), without
            // the piece's copy, its map entry and their allocations on every segment.
            let len = payload.len();
            if self.grow_data(len) {
                self.data.extend_from_slice(payload);
                self.next = start.saturating_add(len as u64);
                res.appended = len;
            } else {
                self.stats.memcap_drops += 1;
                res.events.set(StreamEvents::MEMCAP_DROP);
            }
            return res;
        }
        self.insert_pending(start, payload, &mut res);
        res.appended = self.drain();
        res
    }

    /// Remember a segment's boundaries for the overlap policy (the oldest is forgotten when
    /// [`MAX_TRACKED_SEGMENTS`] are held).
    fn track(&mut self, start: u64, end: u64) {
        if end <= self.acked || self.segs.contains(&(start, end)) {
            return;
        }
        if self.segs.len() >= MAX_TRACKED_SEGMENTS {
            self.segs.remove(0);
        }
        self.segs.push((start, end));
    }

    /// A segment `[start, end)` overlapped kept in-order bytes with different ones (`old`, its
    /// bytes up to the next expected byte): where the policy says the receiver takes the new
    /// bytes over an earlier segment's, and those bytes are not acknowledged yet (nothing read
    /// them), the kept bytes are replaced (Suricata's `DoHandleDataOverlap`).
    fn apply_overlap_policy(&mut self, start: u64, end: u64, old: &[u8]) {
        let floor = self.acked.max(self.data_start);
        let limit = start.saturating_add(old.len() as u64).min(self.next);
        let earlier: Vec<(u64, u64)> = self
            .segs
            .iter()
            .copied()
            .filter(|&(s, e)| s < end && e > start)
            .collect();
        for (s, e) in earlier {
            if !self.policy.new_data_wins((start, end), (s, e)) {
                continue;
            }
            let lo = start.max(s).max(floor);
            let hi = limit.min(e);
            if lo >= hi {
                continue;
            }
            let (Ok(d), Ok(o), Ok(n)) = (
                usize::try_from(lo - self.data_start),
                usize::try_from(lo - start),
                usize::try_from(hi - lo),
            ) else {
                continue;
            };
            if let (Some(dst), Some(src)) = (
                self.data.get_mut(d..d.saturating_add(n)),
                old.get(o..o.saturating_add(n)),
            ) {
                dst.copy_from_slice(src);
            }
        }
    }

    fn mark_depth(&mut self, res: &mut InsertResult) {
        if !self.depth_reached {
            self.depth_reached = true;
            self.stats.depth_reached += 1;
            res.events.set(StreamEvents::DEPTH_REACHED);
        }
    }

    /// Whether `bytes` at absolute offset `start` differ from the kept in-order data they overlap.
    fn differs_from_data(&self, start: u64, bytes: &[u8]) -> bool {
        let lo = start.max(self.data_start);
        let hi = start.saturating_add(bytes.len() as u64).min(self.next);
        if lo >= hi {
            return false;
        }
        let (Ok(a), Ok(b), Ok(len)) = (
            usize::try_from(lo - self.data_start),
            usize::try_from(lo - start),
            usize::try_from(hi - lo),
        ) else {
            return false;
        };
        match (
            self.data.get(a..a.saturating_add(len)),
            bytes.get(b..b.saturating_add(len)),
        ) {
            (Some(x), Some(y)) => x != y,
            _ => false,
        }
    }

    /// Hold `bytes` at absolute offset `start` (>= next), keeping bytes already held where they
    /// overlap ("first data wins") and flagging differences.
    fn insert_pending(&mut self, start: u64, bytes: &[u8], res: &mut InsertResult) {
        let end = start.saturating_add(bytes.len() as u64);
        // Held pieces overlapping [start, end), in order. Pieces never overlap each other, so
        // walking back from the last piece starting before `end` stops at the first that ends
        // before `start`.
        let mut overlapping: Vec<(u64, u64)> = Vec::new();
        for (&k, v) in self.pending.range(..end).rev() {
            let k_end = k.saturating_add(v.len() as u64);
            if k_end <= start {
                break;
            }
            overlapping.push((k, k_end));
        }
        overlapping.reverse();
        if !overlapping.is_empty() {
            self.stats.overlaps += 1;
            res.events.set(StreamEvents::OVERLAP);
        }
        let mut different = false;
        let mut cursor = start;
        let mut fresh: Vec<(u64, u64)> = Vec::new();
        for &(k, k_end) in &overlapping {
            if k > cursor {
                fresh.push((cursor, k));
            }
            let lo = k.max(start);
            let hi = k_end.min(end);
            if let (Some(held), Some(new)) = (
                self.pending.get(&k).and_then(|v| slice(v, lo - k, hi - k)),
                slice(bytes, lo - start, hi - start),
            ) && held != new
            {
                different = true;
            }
            cursor = cursor.max(k_end);
        }
        if cursor < end {
            fresh.push((cursor, end));
        }
        if different {
            self.stats.overlap_different_data += 1;
            res.events.set(StreamEvents::OVERLAP_DIFFERENT_DATA);
        }
        for (lo, hi) in fresh {
            let Some(piece) = slice(bytes, lo - start, hi - start) else {
                continue;
            };
            let len = piece.len();
            if lo > self.next
                && self.pending_bytes.saturating_add(len) > self.cfg.max_buffered_per_direction
            {
                self.stats.buffer_drops += 1;
                res.events.set(StreamEvents::BUFFER_DROP);
                continue;
            }
            if !self.mem.try_reserve(len) {
                self.stats.memcap_drops += 1;
                res.events.set(StreamEvents::MEMCAP_DROP);
                continue;
            }
            self.reserved = self.reserved.saturating_add(len);
            self.pending_bytes = self.pending_bytes.saturating_add(len);
            self.pending.insert(lo, piece.to_vec());
        }
    }

    /// Move held pieces that are now in order onto the data. Returns the bytes appended.
    fn drain(&mut self) -> usize {
        let mut appended = 0usize;
        while let Some(entry) = self.pending.first_entry() {
            let k = *entry.key();
            if k > self.next {
                break;
            }
            let piece = entry.remove();
            self.pending_bytes = self.pending_bytes.saturating_sub(piece.len());
            let k_end = k.saturating_add(piece.len() as u64);
            if k_end <= self.next {
                self.give_back(piece.len());
                continue;
            }
            let skip = usize::try_from(self.next - k).unwrap_or(usize::MAX);
            let fresh = piece.get(skip..).unwrap_or_default();
            // The piece's bytes go back and the data's allocation grows to take them. Growing
            // by exactly what is missing needs no more than the piece gave back, so it fails
            // only when another worker took those bytes in between; the bytes are then charged
            // anyway (the cap is passed by at most this piece) rather than dropping data that is
            // already in order.
            self.give_back(piece.len());
            if !self.grow_data(fresh.len()) {
                let before = self.data.capacity();
                self.data.reserve_exact(fresh.len());
                let grown = self.data.capacity().saturating_sub(before);
                self.mem.charge(grown);
                self.reserved = self.reserved.saturating_add(grown);
            }
            self.data.extend_from_slice(fresh);
            appended = appended.saturating_add(fresh.len());
            self.next = k_end;
        }
        appended
    }

    /// Room in the data's allocation for `extra` more bytes, reserving from the memcap what the
    /// allocation grows by. It doubles, as a `Vec` does, but not past what the depth leaves to
    /// collect; when the doubled size does not fit the memcap, exactly what is missing is tried.
    /// False (nothing changed) when neither fits.
    fn grow_data(&mut self, extra: usize) -> bool {
        let len = self.data.len();
        let cap = self.data.capacity();
        let need = len.saturating_add(extra);
        if need <= cap {
            return true;
        }
        let room =
            usize::try_from(self.cfg.depth.saturating_sub(self.data_start)).unwrap_or(usize::MAX);
        let doubled = cap.saturating_mul(2).min(room).max(need);
        let Some(target) = [doubled, need]
            .into_iter()
            .find(|t| self.mem.try_reserve(t - cap))
        else {
            return false;
        };
        self.data.reserve_exact(target - len);
        // The allocator may hand out more than was asked for: that is held too.
        let got = self.data.capacity();
        if got > target {
            self.mem.charge(got - target);
        }
        self.reserved = self.reserved.saturating_add(got - cap);
        true
    }

    fn give_back(&mut self, n: usize) {
        self.mem.release(n);
        self.reserved = self.reserved.saturating_sub(n);
    }

    /// The peer acknowledged up to `ack`: a hole before it will never be filled. Skip the first
    /// such hole, count the gap, and append what becomes in order. Further holes below the ACK
    /// are skipped by later ACKs (one per call), so no in-order data is lost to inspection.
    pub fn on_peer_ack(&mut self, ack: u32) -> InsertResult {
        let mut res = InsertResult::default();
        let Some(base) = self.base else {
            return res;
        };
        let Ok(mut acked) = u64::try_from(self.offset_of(base, ack)) else {
            return res;
        };
        // The FIN takes one sequence number but no byte.
        if let Some(fin) = self.fin {
            acked = acked.min(fin);
        }
        acked = acked.min(self.cfg.depth);
        self.acked = self.acked.max(acked);
        if !self.segs.is_empty() {
            let a = self.acked;
            self.segs.retain(|&(_, e)| e > a);
        }
        // One hole per ACK: the data between two holes stays readable (by the app layer and the
        // rules) until the next ACK skips the next hole and restarts the data again.
        if acked > self.next {
            let hole_end = self
                .pending
                .first_key_value()
                .map_or(acked, |(&k, _)| k.min(acked));
            self.stats.gaps += 1;
            self.stats.gap_bytes += hole_end - self.next;
            res.events.set(StreamEvents::GAP);
            self.next = hole_end;
            // The data restarts after the hole; what was kept before it stays readable as the
            // block before the gap (an older block is released).
            self.release_before_gap();
            let old = core::mem::take(&mut self.data);
            if old.is_empty() {
                self.give_back(old.capacity());
            } else {
                self.before_gap = Some((self.data_start, old));
            }
            self.data_start = self.next;
            self.segs.clear();
            res.appended = res.appended.saturating_add(self.drain());
        }
        res
    }
}

/// `bytes[lo..hi]` with offsets given as `u64`.
fn slice(bytes: &[u8], lo: u64, hi: u64) -> Option<&[u8]> {
    let lo = usize::try_from(lo).ok()?;
    let hi = usize::try_from(hi).ok()?;
    bytes.get(lo..hi)
}

#[cfg(test)]
mod tests {
    use super::super::TcpStream;
    use super::*;
    use proptest::prelude::*;

    const ACK: u16 = TcpFlags::ACK;

    fn seg(seq: u32, payload: &[u8]) -> Segment<'_> {
        Segment {
            seq,
            ack: 0,
            flags: TcpFlags(ACK | TcpFlags::PSH),
            payload,
            urgent: 0,
        }
    }

    fn syn(seq: u32) -> Segment<'static> {
        Segment {
            seq,
            ack: 0,
            flags: TcpFlags(TcpFlags::SYN),
            payload: &[],
            urgent: 0,
        }
    }

    fn dir(cfg: StreamConfig) -> (StreamDirection, StreamMemcap) {
        let mem = StreamMemcap::new(1 << 24);
        (StreamDirection::new(cfg, mem.clone()), mem)
    }

    fn started(isn: u32) -> StreamDirection {
        let (mut d, _) = dir(StreamConfig::default());
        d.insert(syn(isn));
        d
    }

    /// A segment with URG set, its urgent pointer `urgent`.
    fn urg(seq: u32, payload: &[u8], urgent: u16) -> Segment<'_> {
        Segment {
            flags: TcpFlags(ACK | TcpFlags::PSH | TcpFlags::URG),
            urgent,
            ..seg(seq, payload)
        }
    }

    fn urgent_dir(policy: UrgentPolicy, limit: UrgentPolicy) -> StreamDirection {
        let cfg = StreamConfig {
            urgent: policy,
            urgent_oob_limit: limit,
            ..StreamConfig::default()
        };
        let (mut d, _) = dir(cfg);
        d.insert(syn(0));
        d
    }

    // The capture of the conformance cases tcp-urgp-*: `GET /malic`, then `X` alone with URG
    // and pointer 1, then `ious ...`; and a segment whose urgent byte sits in its middle.
    #[test]
    fn urgent_oob_takes_the_byte_out_and_closes_up() {
        let mut d = urgent_dir(UrgentPolicy::Oob, UrgentPolicy::Inline);
        d.insert(seg(1, b"GET /malic"));
        let r = d.insert(urg(11, b"X", 1));
        assert!(r.events.has(StreamEvents::URGENT));
        assert_eq!(r.appended, 0);
        assert_eq!(d.insert(seg(12, b"ious HTTP/1.1")).appended, 13);
        assert_eq!(d.data(), b"GET /malicious HTTP/1.1");
        assert_eq!(d.stats().urgent, 1);
        assert_eq!(d.stats().segments, 4);
        // Mid-segment: `ab!cd` with pointer 3, `!` is urgent.
        let r = d.insert(urg(25, b"ab!cd", 3));
        assert_eq!(r.appended, 4);
        assert!(d.data().ends_with(b"1.1abcd"));
        // The peer's ACK of everything (seq 30) is the end of the data: no gap.
        let r = d.on_peer_ack(30);
        assert!(!r.events.has(StreamEvents::GAP));
        assert_eq!(d.acked_offset(), d.end_offset());
        // A retransmission of the urgent segment moves nothing again.
        d.insert(urg(25, b"ab!cd", 3));
        assert_eq!(d.insert(seg(30, b"Z")).appended, 1);
        assert!(d.data().ends_with(b"abcdZ"));
        assert_eq!(d.seq_used(), 31);
    }

    #[test]
    fn urgent_inline_keeps_the_byte() {
        for policy in [UrgentPolicy::Inline, UrgentPolicy::Drop] {
            let mut d = urgent_dir(policy, UrgentPolicy::Inline);
            d.insert(seg(1, b"GET /malic"));
            let r = d.insert(urg(11, b"X", 1));
            assert!(!r.events.has(StreamEvents::URGENT));
            d.insert(seg(12, b"ious"));
            assert_eq!(d.data(), b"GET /malicXious", "{policy:?}");
        }
    }

    #[test]
    fn urgent_gap_leaves_a_hole() {
        let mut d = urgent_dir(UrgentPolicy::Gap, UrgentPolicy::Inline);
        d.insert(seg(1, b"GET /malic"));
        let r = d.insert(urg(11, b"X", 1));
        assert!(r.events.has(StreamEvents::URGENT));
        assert_eq!(d.insert(seg(12, b"ious")).appended, 0);
        assert_eq!(d.data(), b"GET /malic");
        // The peer ACKs past the urgent byte: a one-byte gap, the data restarts after it.
        let r = d.on_peer_ack(16);
        assert!(r.events.has(StreamEvents::GAP));
        assert_eq!(d.stats().gap_bytes, 1);
        assert_eq!(d.data(), b"ious");
        assert_eq!(d.data_offset(), 11);
    }

    // Past the out-of-band limit, the oob-limit policy decides.
    #[test]
    fn urgent_oob_limit_policy() {
        for (limit, want) in [
            (UrgentPolicy::Inline, &b"abXcd"[..]),
            (UrgentPolicy::Gap, &b"ab"[..]),
        ] {
            let mut d = urgent_dir(UrgentPolicy::Oob, limit);
            d.urgent_oob = MAX_URGENT_OOB;
            assert!(d.urgent_oob_exhausted());
            d.insert(urg(1, b"abXcd", 3));
            assert_eq!(d.data(), want, "{limit:?}");
        }
    }

    // A pointer past the segment's payload, or 0: the segment goes in whole.
    #[test]
    fn urgent_pointer_outside_the_segment() {
        let mut d = urgent_dir(UrgentPolicy::Oob, UrgentPolicy::Inline);
        d.insert(urg(1, b"abc", 4));
        d.insert(urg(4, b"def", 0));
        assert_eq!(d.data(), b"abcdef");
        assert_eq!(d.stats().urgent, 0);
    }

    // ISN 1000: stream offset 0 is seq 1001. Three segments in order.
    #[test]
    fn in_order() {
        let mut d = started(1000);
        assert_eq!(d.insert(seg(1001, b"GET ")).appended, 4);
        assert_eq!(d.insert(seg(1005, b"/ HTTP")).appended, 6);
        assert_eq!(d.insert(seg(1011, b"/1.1")).appended, 4);
        assert_eq!(d.data(), b"GET / HTTP/1.1");
        assert_eq!(d.stats().in_order, 3);
        assert_eq!(d.new_data_since(4), (4, &b"/ HTTP/1.1"[..]));
        assert_eq!(d.new_data_since(99), (14, &b""[..]));
    }

    // "bc" arrives before "a": held, then drained when "a" fills the hole.
    #[test]
    fn out_of_order() {
        let mut d = started(0);
        let r = d.insert(seg(2, b"bc"));
        assert!(r.events.has(StreamEvents::OUT_OF_ORDER));
        assert_eq!(r.appended, 0);
        assert_eq!(d.buffered(), 2);
        let r = d.insert(seg(1, b"a"));
        assert_eq!(r.appended, 3);
        assert_eq!(d.data(), b"abc");
        assert_eq!(d.buffered(), 0);
    }

    // The same segment twice: the copy is a retransmission, nothing appended.
    #[test]
    fn retransmission_same_data() {
        let mut d = started(0);
        d.insert(seg(1, b"hello"));
        let r = d.insert(seg(1, b"hello"));
        assert!(r.events.has(StreamEvents::RETRANSMISSION));
        assert!(!r.events.has(StreamEvents::OVERLAP_DIFFERENT_DATA));
        assert_eq!(d.data(), b"hello");
        assert_eq!(d.stats().retransmissions, 1);
    }

    // A retransmission that rewrites bytes: first data wins, anomaly counted.
    #[test]
    fn retransmission_different_data() {
        let mut d = started(0);
        d.insert(seg(1, b"hello"));
        let r = d.insert(seg(1, b"HELLO"));
        assert!(r.events.has(StreamEvents::OVERLAP_DIFFERENT_DATA));
        assert_eq!(d.data(), b"hello");
        assert_eq!(d.stats().overlap_different_data, 1);
    }

    // Partial overlap with the in-order data: old part checked, new part appended.
    #[test]
    fn overlap_extends() {
        let mut d = started(0);
        d.insert(seg(1, b"abcd"));
        let r = d.insert(seg(3, b"cdef"));
        assert!(r.events.has(StreamEvents::OVERLAP));
        assert!(!r.events.has(StreamEvents::OVERLAP_DIFFERENT_DATA));
        assert_eq!(r.appended, 2);
        assert_eq!(d.data(), b"abcdef");
        let r = d.insert(seg(5, b"XXgh"));
        assert!(r.events.has(StreamEvents::OVERLAP_DIFFERENT_DATA));
        assert_eq!(d.data(), b"abcdefgh");
    }

    // Overlap between two held out-of-order segments: the first held bytes win.
    #[test]
    fn overlap_out_of_order_first_wins() {
        let mut d = started(0);
        d.insert(seg(5, b"EFGH"));
        let r = d.insert(seg(3, b"cdXXgh"));
        assert!(r.events.has(StreamEvents::OVERLAP_DIFFERENT_DATA));
        d.insert(seg(1, b"ab"));
        assert_eq!(d.data(), b"abcdEFGH");
        let r = d.insert(seg(3, b"cdEF"));
        assert!(!r.events.has(StreamEvents::OVERLAP_DIFFERENT_DATA));
    }

    // ISN 0xffff_fff0: the stream crosses 2^32 after 15 bytes.
    #[test]
    fn wraparound() {
        let isn = 0xffff_fff0u32;
        let mut d = started(isn);
        let first = isn.wrapping_add(1);
        let a = [b'a'; 10];
        let b = [b'b'; 10];
        let c = [b'c'; 10];
        // Out of order across the wrap: the last segment first.
        d.insert(seg(first.wrapping_add(20), &c));
        d.insert(seg(first.wrapping_add(10), &b));
        assert_eq!(d.data().len(), 0);
        d.insert(seg(first, &a));
        assert_eq!(d.data().len(), 30);
        assert_eq!(&d.data()[10..20], &b);
        assert_eq!(d.end_offset(), 30);
        // A retransmission of the pre-wrap segment is recognised as old.
        assert!(
            d.insert(seg(first, &a))
                .events
                .has(StreamEvents::RETRANSMISSION)
        );
    }

    // A hole the peer acknowledges past: gap, data restarts after the hole.
    #[test]
    fn gap_on_ack() {
        let mut s = TcpStream::new(StreamConfig::default(), &StreamMemcap::new(1 << 20));
        s.insert(true, syn(100));
        s.insert(true, seg(101, b"abc"));
        // Bytes 104..107 ("def") are never seen; "ghi" is held.
        s.insert(true, seg(107, b"ghi"));
        assert_eq!(s.client.data(), b"abc");
        // The server ACKs everything up to 110.
        let ack = Segment {
            seq: 5000,
            ack: 110,
            flags: TcpFlags(ACK),
            payload: &[],
            urgent: 0,
        };
        let u = s.insert(false, ack);
        assert!(u.to_server.events.has(StreamEvents::GAP));
        assert_eq!(u.to_server.appended, 3);
        assert_eq!(s.client.data(), b"ghi");
        assert_eq!(s.client.data_offset(), 6);
        assert_eq!(s.client.stats().gaps, 1);
        assert_eq!(s.client.stats().gap_bytes, 3);
    }

    // A RST's payload stays out of the stream (as Suricata's): only the packet carries it.
    #[test]
    fn rst_data_is_not_reassembled() {
        let mut s = TcpStream::new(StreamConfig::default(), &StreamMemcap::new(1 << 20));
        s.insert(true, syn(100));
        s.insert(true, seg(101, b"abc"));
        let rst = Segment {
            seq: 104,
            ack: 0,
            flags: TcpFlags(TcpFlags::RST | ACK),
            payload: b"Access Denied",
            urgent: 0,
        };
        let u = s.insert(true, rst);
        assert_eq!(u.to_server.appended, 0);
        assert_eq!(s.client.data(), b"abc");
    }

    // The bytes before the hole stay readable as a block of their own until released; the
    // memory they hold is given back then.
    #[test]
    fn bytes_before_a_gap_until_released() {
        let mem = StreamMemcap::new(1 << 20);
        let mut s = TcpStream::new(StreamConfig::default(), &mem);
        s.insert(true, syn(100));
        s.insert(true, seg(101, b"abc"));
        s.insert(true, seg(107, b"ghi"));
        let ack = Segment {
            seq: 5000,
            ack: 110,
            flags: TcpFlags(ACK),
            payload: &[],
            urgent: 0,
        };
        s.insert(false, ack);
        assert_eq!(s.client.data(), b"ghi");
        assert_eq!(s.client.before_gap_between(0), Some((0, &b"abc"[..])));
        assert_eq!(s.client.before_gap_between(1), Some((1, &b"bc"[..])));
        assert_eq!(s.client.before_gap_between(3), None);
        let used = mem.used();
        s.client.release_before_gap();
        assert_eq!(s.client.before_gap_between(0), None);
        assert!(mem.used() < used);
    }

    // The peer's ACKs bound what IDS inspection reads: the highest ACK, clamped to the bytes
    // received; an older ACK does not move it back.
    #[test]
    fn acked_offset_follows_the_peer() {
        let mut s = TcpStream::new(StreamConfig::default(), &StreamMemcap::new(1 << 20));
        s.insert(true, syn(100));
        s.insert(true, seg(101, b"abcdef"));
        assert_eq!(s.client.acked_offset(), 0);
        let ack = |n: u32| Segment {
            seq: 5000,
            ack: n,
            flags: TcpFlags(ACK),
            payload: &[],
            urgent: 0,
        };
        s.insert(false, ack(104));
        assert_eq!(s.client.acked_offset(), 3);
        assert_eq!(
            s.client.data_between(0, s.client.acked_offset()),
            (0, &b"abc"[..])
        );
        assert_eq!(s.client.data_between(1, 2), (1, &b"b"[..]));
        assert_eq!(s.client.data_between(5, 2), (5, &b""[..]));
        s.insert(false, ack(102));
        assert_eq!(s.client.acked_offset(), 3);
        s.insert(true, seg(107, b"gh"));
        assert_eq!(s.client.acked_offset(), 3);
        s.insert(false, ack(109));
        assert_eq!(s.client.acked_offset(), 8);
        // One-sided flows: everything received counts as acknowledged.
        s.insert(true, seg(109, b"ij"));
        s.client.ack_all();
        assert_eq!(s.client.acked_offset(), 10);
        s.server.ack_all();
        assert_eq!(s.server.acked_offset(), 0);
    }

    // The FIN's sequence number is acknowledged but is no gap.
    #[test]
    fn fin_ack_no_gap() {
        let mut d = started(0);
        let fin = Segment {
            seq: 1,
            ack: 0,
            flags: TcpFlags(ACK | TcpFlags::FIN),
            payload: b"bye",
            urgent: 0,
        };
        d.insert(fin);
        let r = d.on_peer_ack(5);
        assert!(!r.events.has(StreamEvents::GAP));
        assert_eq!(d.data(), b"bye");
    }

    // Depth 8: the ninth byte onwards is not collected.
    #[test]
    fn depth_limit() {
        let cfg = StreamConfig {
            depth: 8,
            ..StreamConfig::default()
        };
        let (mut d, mem) = dir(cfg);
        d.insert(syn(0));
        d.insert(seg(1, b"12345"));
        let r = d.insert(seg(6, b"6789ab"));
        assert!(r.events.has(StreamEvents::DEPTH_REACHED));
        assert_eq!(r.appended, 3);
        assert_eq!(d.data(), b"12345678");
        let r = d.insert(seg(12, b"more"));
        assert_eq!(r.appended, 0);
        assert!(d.is_depth_reached());
        assert_eq!(mem.used(), 8);
        drop(d);
        assert_eq!(mem.used(), 0);
    }

    // No SYN: ignored unless midstream pick-up is on.
    #[test]
    fn midstream_off_and_on() {
        let (mut d, _) = dir(StreamConfig::default());
        let r = d.insert(seg(777, b"data"));
        assert!(r.events.has(StreamEvents::NOT_REASSEMBLED));
        assert!(d.data().is_empty());
        let cfg = StreamConfig {
            midstream: true,
            ..StreamConfig::default()
        };
        let (mut d, _) = dir(cfg);
        assert_eq!(d.insert(seg(777, b"data")).appended, 4);
        assert_eq!(d.insert(seg(781, b"more")).appended, 4);
        assert!(d.is_midstream());
        assert_eq!(d.data(), b"datamore");
    }

    // The out-of-order buffer cap and the global memcap drop what does not fit.
    #[test]
    fn buffer_cap_and_memcap() {
        let cfg = StreamConfig {
            max_buffered_per_direction: 4,
            ..StreamConfig::default()
        };
        let (mut d, _) = dir(cfg);
        d.insert(syn(0));
        assert!(
            d.insert(seg(10, b"toolong"))
                .events
                .has(StreamEvents::BUFFER_DROP)
        );
        assert_eq!(d.buffered(), 0);
        // In-order data is not limited by the out-of-order cap.
        assert_eq!(d.insert(seg(1, b"in order data")).appended, 13);

        let mem = StreamMemcap::new(4);
        let mut d = StreamDirection::new(StreamConfig::default(), mem.clone());
        d.insert(syn(0));
        d.insert(seg(1, b"abcd"));
        let r = d.insert(seg(5, b"e"));
        assert!(r.events.has(StreamEvents::MEMCAP_DROP));
        assert_eq!(mem.used(), 4);
    }

    // The memcap counts the data's allocation: it doubles while the memcap allows, then grows by
    // exactly what is missing, then drops. Held pieces move into the data without a drop.
    #[test]
    fn memcap_counts_the_allocation() {
        let mem = StreamMemcap::new(10);
        let mut d = StreamDirection::new(StreamConfig::default(), mem.clone());
        d.insert(syn(0));
        d.insert(seg(1, b"abcd"));
        assert_eq!((mem.used(), d.heap_bytes()), (4, 4));
        d.insert(seg(5, b"efgh"));
        assert_eq!(mem.used(), 8, "doubled");
        assert_eq!(d.insert(seg(9, b"ij")).appended, 2);
        assert_eq!(mem.used(), 10, "16 does not fit: exactly 10");
        let r = d.insert(seg(11, b"k"));
        assert!(r.events.has(StreamEvents::MEMCAP_DROP));
        assert_eq!((mem.used(), d.data()), (10, &b"abcdefghij"[..]));
        drop(d);
        assert_eq!(mem.used(), 0);

        // Out of order first: the piece is held (3 bytes), then the gap before it fills and both
        // become data (2 + 3 in an allocation of 5, the piece given back).
        let mem = StreamMemcap::new(6);
        let mut d = StreamDirection::new(StreamConfig::default(), mem.clone());
        d.insert(syn(0));
        d.insert(seg(3, b"cde"));
        assert_eq!((mem.used(), d.buffered()), (3, 3));
        assert_eq!(d.insert(seg(1, b"ab")).appended, 5);
        assert_eq!(d.data(), b"abcde");
        assert_eq!((mem.used(), d.buffered(), d.heap_bytes()), (5, 0, 5));
    }

    fn acked(d: &mut StreamDirection, ack: u32) {
        d.on_peer_ack(ack);
    }

    // old-linux takes a retransmission's bytes over unacknowledged ones of the same segment;
    // bsd keeps them (its rule replaces only an earlier segment the new one starts before);
    // acknowledged bytes are never replaced.
    #[test]
    fn old_linux_takes_the_retransmission_of_unacknowledged_bytes() {
        let mut d = started(0);
        d.set_os_policy(OsPolicy::OldLinux);
        d.insert(seg(1, b"GOOD"));
        let r = d.insert(seg(1, b"EVIL"));
        assert!(r.events.has(StreamEvents::OVERLAP_DIFFERENT_DATA));
        assert_eq!(d.data(), b"EVIL");
        // Once acknowledged, the bytes stay.
        acked(&mut d, 5);
        d.insert(seg(1, b"BAD!"));
        assert_eq!(d.data(), b"EVIL");

        let mut d = started(0);
        d.set_os_policy(OsPolicy::Bsd);
        d.insert(seg(1, b"GOOD"));
        d.insert(seg(1, b"EVIL"));
        assert_eq!(d.data(), b"GOOD");
        // Starting before an earlier segment, its bytes are taken (bsd, windows, linux...);
        // the byte it shares with the segment it starts after is not.
        d.insert(seg(5, b"more"));
        d.insert(seg(4, b"XYZW"));
        assert_eq!(d.data(), b"GOODYZWe");

        // First (the default, and inline inspection): nothing is replaced.
        let mut d = started(0);
        d.insert(seg(1, b"GOOD"));
        d.insert(seg(5, b"more"));
        d.insert(seg(4, b"XYZW"));
        assert_eq!(d.data(), b"GOODmore");
    }

    // The boundaries of at most MAX_TRACKED_SEGMENTS unacknowledged segments are kept: bytes
    // of a forgotten segment keep their first version.
    #[test]
    fn forgotten_boundaries_keep_the_first_bytes() {
        let mut d = started(0);
        d.set_os_policy(OsPolicy::OldLinux);
        let n = u32::try_from(MAX_TRACKED_SEGMENTS).unwrap() + 1;
        for i in 0..n {
            d.insert(seg(1 + i, b"a"));
        }
        d.insert(seg(1, b"Z"));
        d.insert(seg(n, b"Z"));
        assert_eq!(d.data().first(), Some(&b'a'));
        assert_eq!(d.data().last(), Some(&b'Z'));
        assert!(d.segs.len() <= MAX_TRACKED_SEGMENTS);
    }

    fn any_policy() -> impl Strategy<Value = OsPolicy> {
        proptest::sample::select(OsPolicy::NAMES.iter().map(|(_, p)| *p).collect::<Vec<_>>())
    }

    proptest! {
        // Under any policy, segments (some with other bytes) and ACKs in any order: the data
        // has the length first-wins reassembly gives it, bytes acknowledged never change, the
        // accounting holds, and a policy never reaches past what it tracks.
        #[test]
        fn policies_replace_only_unacknowledged_bytes(
            policy in any_policy(),
            steps in proptest::collection::vec(
                (0u32..300, 1usize..40, any::<bool>(), proptest::option::of(0u32..300)), 1..60),
        ) {
            let payload: Vec<u8> = (0..400u32).map(|i| u8::try_from(i % 251).unwrap()).collect();
            let evil = vec![b'!'; 400];
            let mem = StreamMemcap::new(1 << 20);
            let mut d = StreamDirection::new(StreamConfig::default(), mem.clone());
            let mut first = StreamDirection::new(StreamConfig::default(), mem.clone());
            d.set_os_policy(policy);
            d.insert(syn(0));
            first.insert(syn(0));
            let mut frozen: Vec<u8> = Vec::new();
            for (start, len, bad, ack) in steps {
                let s = usize::try_from(start).unwrap();
                let e = (s + len).min(400);
                let bytes = if bad { &evil[s..e] } else { &payload[s..e] };
                d.insert(seg(1 + start, bytes));
                first.insert(seg(1 + start, bytes));
                if let Some(a) = ack {
                    d.on_peer_ack(1 + a);
                    first.on_peer_ack(1 + a);
                }
                prop_assert_eq!(d.end_offset(), first.end_offset());
                prop_assert_eq!(d.data().len(), first.data().len());
                prop_assert!(d.segs.len() <= MAX_TRACKED_SEGMENTS);
                if d.data_offset() == 0 {
                    let acked = usize::try_from(d.acked_offset()).unwrap();
                    let keep = frozen.len().min(acked);
                    prop_assert_eq!(&d.data()[..keep], &frozen[..keep]);
                    frozen = d.data()[..acked].to_vec();
                }
            }
            prop_assert_eq!(mem.used(), d.heap_bytes() + first.heap_bytes());
        }

        // A payload cut into random segments, delivered in random order with duplicates (some
        // of them re-cut on other boundaries), reassembles to the original bytes.
        #[test]
        fn random_order_reassembles(
            payload in proptest::collection::vec(any::<u8>(), 1..2000),
            cuts in proptest::collection::vec(any::<u16>(), 0..40),
            dup_cuts in proptest::collection::vec((any::<u16>(), 1u16..300), 0..20),
            order in proptest::collection::vec(any::<u32>(), 0..80),
            isn in any::<u32>(),
        ) {
            let len = payload.len();
            let mut bounds: Vec<usize> = cuts.iter().map(|c| usize::from(*c) % len).collect();
            bounds.push(0);
            bounds.push(len);
            bounds.sort_unstable();
            bounds.dedup();
            let mut segs: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
            for (s, l) in dup_cuts {
                let s = usize::from(s) % len;
                segs.push((s, (s + usize::from(l)).min(len)));
            }
            // Shuffle deterministically from `order`.
            for (i, r) in order.iter().enumerate() {
                let n = segs.len();
                segs.swap(i % n, usize::try_from(*r).unwrap() % n);
            }
            let (mut d, mem) = dir(StreamConfig::default());
            d.insert(syn(isn));
            for (s, e) in segs {
                let seq = isn.wrapping_add(1).wrapping_add(u32::try_from(s).unwrap());
                d.insert(seg(seq, &payload[s..e]));
            }
            prop_assert_eq!(d.data(), &payload[..]);
            prop_assert_eq!(d.stats().overlap_different_data, 0);
            prop_assert_eq!(d.buffered(), 0);
            // The memcap holds what the data's allocation is, which doubling keeps under twice
            // the data.
            prop_assert_eq!(mem.used(), d.heap_bytes());
            prop_assert!(d.heap_bytes() >= len && d.heap_bytes() < 2 * len, "{} for {}", d.heap_bytes(), len);
        }

        // Arbitrary segments never panic and keep the accounting consistent.
        #[test]
        fn arbitrary_segments(
            segs in proptest::collection::vec(
                (any::<u32>(), any::<u32>(), any::<u16>(), proptest::collection::vec(any::<u8>(), 0..64)),
                0..60),
            midstream in any::<bool>(),
        ) {
            let cfg = StreamConfig { depth: 4096, max_buffered_per_direction: 512, midstream, ..StreamConfig::default() };
            let mem = StreamMemcap::new(2048);
            {
                let mut s = TcpStream::new(cfg, &mem);
                for (i, (seq, ack, flags, payload)) in segs.iter().enumerate() {
                    s.insert(i % 3 != 0, Segment { seq: *seq, ack: *ack, flags: TcpFlags(*flags), urgent: 0, payload });
                    prop_assert!(s.client.data().len() as u64 <= cfg.depth);
                    prop_assert!(s.client.buffered() <= cfg.max_buffered_per_direction);
                    prop_assert!(mem.used() <= mem.cap());
                    // What is reserved is what is held, and no allocation outgrows the depth.
                    prop_assert_eq!(mem.used(), s.client.heap_bytes() + s.server.heap_bytes());
                    for d in [&s.client, &s.server] {
                        prop_assert!((d.heap_bytes() - d.buffered()) as u64 <= cfg.depth);
                    }
                }
            }
            prop_assert_eq!(mem.used(), 0);
        }
    }
}
