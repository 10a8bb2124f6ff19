//! TCP stream reassembly, per flow and per direction.
//!
//! # What it offers
//! A [`TcpStream`] (owned by the flow) holds two [`StreamDirection`]s. Each TCP segment of the
//! flow goes to [`TcpStream::insert`] with its direction; the segment's ACK is applied to the
//! *other* direction (an ACK beyond a hole proves the hole will never be filled: a gap).
//!
//! Each direction keeps the contiguous, in-order bytes of the stream from its start up to the
//! reassembly depth ([`StreamDirection::data`]), together with the absolute stream offset of the
//! first kept byte ([`StreamDirection::data_offset`]; 0 unless a gap or a memcap drop forced a
//! restart). Rules anchored to the stream start (`depth`/`offset`) therefore see the whole stream;
//! incremental inspection uses [`StreamDirection::new_data_since`] with the offset the caller
//! inspected last (optionally minus an overlap window, for patterns that straddle two chunks).
//!
//! Data is handed out as soon as it is in order (inline semantics); it is not held back until the
//! receiver ACKs it.
//!
//! # Semantics
//! - Start: a SYN sets the direction's initial sequence number (stream offset 0 is ISN + 1). Data
//!   on a direction without a SYN is reassembled only with [`StreamConfig::midstream`], starting
//!   at the first data segment seen; otherwise it is counted (`not_reassembled`) and ignored.
//! - Sequence numbers are compared with wrapping arithmetic relative to the next expected byte,
//!   so streams crossing 2^32 reassemble; absolute offsets are `u64`.
//! - Overlaps: by default the first data wins: bytes already received (in order or held out of
//!   order) are kept; a segment that overlaps them with *different* bytes is an anomaly
//!   ([`StreamEvents::OVERLAP_DIFFERENT_DATA`], counted). With a receiver's target-based policy
//!   ([`StreamDirection::set_os_policy`], Suricata's `host-os-policy`, used by IDS-mode
//!   inspection) a segment overlapping *unacknowledged* in-order bytes replaces them where that
//!   operating system takes the new bytes ([`OsPolicy::new_data_wins`], per earlier segment:
//!   the direction remembers the boundaries of its last [`MAX_TRACKED_SEGMENTS`] unacknowledged
//!   segments). Acknowledged bytes and out-of-order pieces always keep their first version.
//! - Retransmissions (segments entirely before the next expected byte) are counted and compared
//!   with the kept data.
//! - Gaps: when the peer ACKs past a hole, the hole is skipped, counted, and
//!   [`StreamDirection::data`] restarts after it ([`StreamEvents::GAP`]); app-layer parsers must
//!   resynchronise. One hole is skipped per ACK, so the bytes between two holes are readable
//!   after the packet that skipped the first one.
//! - A RST's payload is not reassembled (as Suricata): it is inspected as its packet's only.
//! - Depth: bytes at stream offsets at or beyond [`StreamConfig::depth`] are not collected
//!   ([`StreamEvents::DEPTH_REACHED`], once).
//!
//! # Caps
//! - Per direction: at most [`StreamConfig::depth`] in-order bytes and
//!   [`StreamConfig::max_buffered_per_direction`] out-of-order bytes. An out-of-order segment that
//!   does not fit is dropped and counted (`buffer_drops`); if the peer ACKs past it, it becomes a
//!   gap.
//! - Global: the memory a direction holds is reserved from a shared [`StreamMemcap`]: the
//!   allocation of its in-order data (which grows by doubling, as a `Vec` does, but never past
//!   what the depth leaves to collect) and every out-of-order byte. When the cap is exhausted the
//!   segment is dropped and counted (`memcap_drops`). Reservations are released when a direction
//!   restarts after a gap and when the [`TcpStream`] is dropped.

mod direction;
/// The receiving hosts' TCP behaviour lives beside the flow table (`svm_packet::host_os`).
pub use svm_packet::host_os::{os_policy, timestamps};

use core::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub use direction::{MAX_TRACKED_SEGMENTS, StreamDirection};
pub use os_policy::{HostOsPolicy, OsPolicy};
pub use timestamps::{Paws, TsSegment};

use crate::decode::{Tcp, TcpFlags};

/// Suricata's default `stream.reassembly.depth`: 1 MiB per direction.
pub const DEFAULT_DEPTH: u64 = 1 << 20;

/// Default cap on out-of-order bytes held per direction. A legitimate sender has at most one
/// receive window in flight; 256 KiB covers common windows without letting one flow hoard memory.
pub const DEFAULT_MAX_BUFFERED_PER_DIRECTION: usize = 256 << 10;

/// Default memcap of a worker's streams (Suricata's `stream.reassembly.memcap` default is
/// 256 MiB).
pub const DEFAULT_MEMCAP: usize = 256 << 20;

/// The range of the memcap setting (`stream.reassembly.memcap`, the daemon's
/// `rules.stream.memcap`), bytes per worker: at least 1 MiB (a few receive windows of
/// out-of-order data), at most 64 GiB.
pub const MEMCAP_RANGE: core::ops::RangeInclusive<u64> = (1 << 20)..=(1 << 36);

/// A worker's stream memcap in bytes: every byte its streams hold (in-order data kept for
/// inspection and out-of-order pieces) is reserved from it; a segment that does not fit is
/// dropped from reassembly and counted (`memcap_drops`), as Suricata's
/// `stream.reassembly.memcap` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemcapBytes(pub usize);

impl Default for MemcapBytes {
    fn default() -> Self {
        MemcapBytes(DEFAULT_MEMCAP)
    }
}

/// What reassembly does with the urgent data of a segment with URG set (Suricata's
/// `stream.reassembly.urgent.policy`; `oob-limit-policy` takes [`UrgentPolicy::Inline`],
/// [`UrgentPolicy::Gap`] or [`UrgentPolicy::Drop`]). The urgent byte is the one before the
/// urgent pointer (RFC 6093, what Linux and every common stack do); a pointer past the
/// segment's payload leaves the segment as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UrgentPolicy {
    /// The urgent byte stays in the stream, where the segment puts it (Suricata's default).
    #[default]
    Inline,
    /// The urgent byte is out of band: taken out of the stream, the bytes after it close up
    /// (the receiving application reads the stream without it, as with `SO_OOBINLINE` off).
    /// At most [`MAX_URGENT_OOB`] bytes per direction; then `oob-limit-policy` applies.
    Oob,
    /// The urgent byte is taken out and leaves a one-byte hole: a gap once the peer ACKs past
    /// it.
    Gap,
    /// Inline inspection (`--inline`, `--simulate-ips`) drops the packet with URG set before
    /// it reaches the stream (the worker's `stream_urgent` drop); on a mirror, as `Inline`.
    Drop,
}

impl UrgentPolicy {
    /// The policy by its Suricata name (`inline`, `oob`, `gap`, `drop`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "inline" => Some(UrgentPolicy::Inline),
            "oob" => Some(UrgentPolicy::Oob),
            "gap" => Some(UrgentPolicy::Gap),
            "drop" => Some(UrgentPolicy::Drop),
            _ => None,
        }
    }

    /// Its Suricata name.
    pub const fn name(self) -> &'static str {
        match self {
            UrgentPolicy::Inline => "inline",
            UrgentPolicy::Oob => "oob",
            UrgentPolicy::Gap => "gap",
            UrgentPolicy::Drop => "drop",
        }
    }
}

/// Urgent bytes a direction takes out of band ([`UrgentPolicy::Oob`]), as Suricata's 16-bit
/// count: past it the `oob-limit-policy` applies. Each one shifts the direction's sequence
/// mapping by one byte; the cap bounds how far a sender can push it.
pub const MAX_URGENT_OOB: u32 = u16::MAX as u32;

/// Reassembly settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// Bytes per direction collected from the stream start; beyond it data is not collected.
    pub depth: u64,
    /// Out-of-order bytes held per direction.
    pub max_buffered_per_direction: usize,
    /// Reassemble flows picked up without their handshake (from the first data segment seen).
    pub midstream: bool,
    /// Urgent data (`stream.reassembly.urgent.policy`).
    pub urgent: UrgentPolicy,
    /// Urgent data once [`MAX_URGENT_OOB`] bytes went out of band
    /// (`stream.reassembly.urgent.oob-limit-policy`; never [`UrgentPolicy::Oob`]).
    pub urgent_oob_limit: UrgentPolicy,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            depth: DEFAULT_DEPTH,
            max_buffered_per_direction: DEFAULT_MAX_BUFFERED_PER_DIRECTION,
            // Suricata's `stream.midstream` defaults to false as well.
            midstream: false,
            urgent: UrgentPolicy::Inline,
            urgent_oob_limit: UrgentPolicy::Inline,
        }
    }
}

/// Memory shared by every stream of a worker (or of all workers): a byte budget with atomic
/// accounting, so flows can be dropped anywhere and still give their bytes back.
#[derive(Clone, Debug)]
pub struct StreamMemcap {
    inner: Arc<MemcapInner>,
}

#[derive(Debug)]
struct MemcapInner {
    cap: usize,
    used: AtomicUsize,
}

impl StreamMemcap {
    /// A budget of `cap` bytes.
    pub fn new(cap: usize) -> Self {
        StreamMemcap {
            inner: Arc::new(MemcapInner {
                cap,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// Bytes currently reserved.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// The budget.
    pub fn cap(&self) -> usize {
        self.inner.cap
    }

    /// Reserve `n` bytes; false (and nothing reserved) if that would exceed the cap.
    fn try_reserve(&self, n: usize) -> bool {
        let cap = self.inner.cap;
        self.inner
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(n).filter(|total| *total <= cap)
            })
            .is_ok()
    }

    /// Count `n` bytes that are already held, whatever the cap: only for memory that exists
    /// before it could be refused (see `StreamDirection::drain`).
    fn charge(&self, n: usize) {
        let _ = self
            .inner
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_add(n))
            });
    }

    /// Give back `n` bytes reserved earlier.
    fn release(&self, n: usize) {
        // Saturating: a release never exceeds what was reserved, but never underflow regardless.
        let _ = self
            .inner
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(n))
            });
    }
}

impl Default for StreamMemcap {
    fn default() -> Self {
        StreamMemcap::new(DEFAULT_MEMCAP)
    }
}

/// What happened to one segment (a small bit set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamEvents(pub u16);

impl StreamEvents {
    /// The segment (or part of it) arrived ahead of the next expected byte and was held.
    pub const OUT_OF_ORDER: u16 = 0x001;
    /// The segment lay entirely before the next expected byte.
    pub const RETRANSMISSION: u16 = 0x002;
    /// The segment overlapped bytes already received.
    pub const OVERLAP: u16 = 0x004;
    /// ... and the overlapping bytes differed (anomaly; the first data was kept).
    pub const OVERLAP_DIFFERENT_DATA: u16 = 0x008;
    /// A hole was skipped (the peer acknowledged past it); the data restarts after it.
    pub const GAP: u16 = 0x010;
    /// The reassembly depth was reached on this segment; later data is not collected.
    pub const DEPTH_REACHED: u16 = 0x020;
    /// Bytes were dropped because the direction's out-of-order buffer was full.
    pub const BUFFER_DROP: u16 = 0x040;
    /// Bytes were dropped because the global memcap was exhausted.
    pub const MEMCAP_DROP: u16 = 0x080;
    /// Data on a direction without a handshake while midstream pick-up is off: ignored.
    pub const NOT_REASSEMBLED: u16 = 0x100;
    /// The segment's urgent byte was taken out of the stream ([`UrgentPolicy::Oob`],
    /// [`UrgentPolicy::Gap`]).
    pub const URGENT: u16 = 0x200;

    /// Whether any bit of `mask` is set.
    pub const fn has(self, mask: u16) -> bool {
        self.0 & mask != 0
    }

    fn set(&mut self, mask: u16) {
        self.0 |= mask;
    }
}

/// Result of inserting one segment into one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsertResult {
    /// In-order bytes appended to the direction's data by this call.
    pub appended: usize,
    /// What happened.
    pub events: StreamEvents,
}

/// Result of [`TcpStream::insert`]: the segment's own direction, and the other direction (whose
/// data may have moved on because this segment's ACK closed a gap there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamUpdate {
    /// Client-to-server direction.
    pub to_server: InsertResult,
    /// Server-to-client direction.
    pub to_client: InsertResult,
}

/// The parts of a TCP segment reassembly needs.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (meaningful with ACK set).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// The urgent pointer (meaningful with URG set).
    pub urgent: u16,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> From<&Tcp<'a>> for Segment<'a> {
    fn from(t: &Tcp<'a>) -> Self {
        Segment {
            seq: t.seq,
            ack: t.ack,
            flags: t.flags,
            urgent: t.urgent,
            payload: t.payload,
        }
    }
}

/// Reassembly counters (per direction; [`StreamStats::add`] sums them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Segments inserted.
    pub segments: u64,
    /// Segments that carried in-order data (appended at once).
    pub in_order: u64,
    /// Segments held (at least partly) out of order.
    pub out_of_order: u64,
    /// Segments entirely before the next expected byte.
    pub retransmissions: u64,
    /// Segments overlapping bytes already received.
    pub overlaps: u64,
    /// ... with different bytes (anomaly).
    pub overlap_different_data: u64,
    /// Holes skipped.
    pub gaps: u64,
    /// Bytes lost in skipped holes.
    pub gap_bytes: u64,
    /// Directions that reached the depth.
    pub depth_reached: u64,
    /// Segments (or parts) dropped because the out-of-order buffer was full.
    pub buffer_drops: u64,
    /// Segments (or parts) dropped because the global memcap was exhausted.
    pub memcap_drops: u64,
    /// Data segments ignored because the direction had no handshake and midstream is off.
    pub not_reassembled: u64,
    /// Urgent bytes taken out of the stream (out of band or as a gap).
    pub urgent: u64,
}

impl StreamStats {
    /// Add `o` to these counters.
    pub fn add(&mut self, o: &StreamStats) {
        self.segments += o.segments;
        self.in_order += o.in_order;
        self.out_of_order += o.out_of_order;
        self.retransmissions += o.retransmissions;
        self.overlaps += o.overlaps;
        self.overlap_different_data += o.overlap_different_data;
        self.gaps += o.gaps;
        self.gap_bytes += o.gap_bytes;
        self.depth_reached += o.depth_reached;
        self.buffer_drops += o.buffer_drops;
        self.memcap_drops += o.memcap_drops;
        self.not_reassembled += o.not_reassembled;
        self.urgent += o.urgent;
    }
}

/// Both directions of one TCP flow. The flow table owns one per TCP flow.
#[derive(Debug)]
pub struct TcpStream {
    /// Client-to-server bytes.
    pub client: StreamDirection,
    /// Server-to-client bytes.
    pub server: StreamDirection,
}

impl TcpStream {
    /// A stream with nothing seen yet.
    pub fn new(cfg: StreamConfig, memcap: &StreamMemcap) -> Self {
        TcpStream {
            client: StreamDirection::new(cfg, memcap.clone()),
            server: StreamDirection::new(cfg, memcap.clone()),
        }
    }

    /// Insert a segment travelling client-to-server (`to_server`) or back, then apply its ACK to
    /// the other direction.
    pub fn insert(&mut self, to_server: bool, seg: Segment<'_>) -> StreamUpdate {
        let (this, other) = if to_server {
            (&mut self.client, &mut self.server)
        } else {
            (&mut self.server, &mut self.client)
        };
        // A RST's data is not part of the stream (Suricata, bug 6244): the segment is
        // inspected as a packet only. Its sequence number still counts for the state.
        let seg = if seg.flags.has(TcpFlags::RST) {
            Segment {
                payload: &[],
                ..seg
            }
        } else {
            seg
        };
        let mine = this.insert(seg);
        let peer = if seg.flags.has(TcpFlags::ACK) && !seg.flags.has(TcpFlags::RST) {
            other.on_peer_ack(seg.ack)
        } else {
            InsertResult::default()
        };
        if to_server {
            StreamUpdate {
                to_server: mine,
                to_client: peer,
            }
        } else {
            StreamUpdate {
                to_server: peer,
                to_client: mine,
            }
        }
    }

    /// The direction a packet travels in.
    pub fn direction(&self, to_server: bool) -> &StreamDirection {
        if to_server {
            &self.client
        } else {
            &self.server
        }
    }

    /// The flow turned out to run the other way (app-layer detection on a flow picked up
    /// midstream): the client's bytes are the server's and back. Each direction keeps its
    /// bytes, offsets and receiver's policy; only their names change.
    pub fn reverse(&mut self) {
        core::mem::swap(&mut self.client, &mut self.server);
    }

    /// Counters of both directions summed.
    pub fn stats(&self) -> StreamStats {
        let mut s = *self.client.stats();
        s.add(self.server.stats());
        s
    }
}
