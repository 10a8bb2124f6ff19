//! [`DpdkIo`]: one worker's [`PacketIo`](crate::io::PacketIo) over its ports and queues.

use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::{SystemTime, UNIX_EPOCH};

use super::distributor::{DpdkWorkers, FlowHash, WorkersConfig, flow_hash};
use super::eal::Eal;
use super::mbuf::{Mbuf, Mempool, free_bulk, mbuf_views};
use super::port::{EthStats, Port, PortConfig};
use super::ring::{RingConsumer, RingProducer};
use super::{DpdkError, MAX_BURST, TX_ATTEMPTS, TX_DEFER_MAX, VIEW_CHUNK};

use crate::io::{FrameHandler, Injection, PacketIo, PortId, PortStats, RxMeta};
use crate::output::{Toward, Verdict};
use crate::time::Timestamp;

/// Settings of a [`DpdkIo`].
#[derive(Clone, Debug)]
pub struct DpdkConfig {
    /// Name of the mbuf pool (unique per process).
    pub pool_name: String,
    /// Mbufs in the pool, at least. Raised to what the queues, rings, per-lcore caches and
    /// bursts in flight can hold (see [`DpdkWorkers`]); 8191 fits in `-m 128`.
    pub mbufs: u32,
    /// Per-lcore mbuf cache.
    pub cache: u32,
    /// Port settings, for every port.
    pub port: PortConfig,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            pool_name: "svm_mbufs".to_owned(),
            mbufs: 8191,
            cache: 256,
            port: PortConfig::default(),
        }
    }
}

/// How [`DpdkIo`] uses its ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DpdkAttach {
    /// Ports 0 and 1 receive, and forward to each other.
    Inline,
    /// Port 0 receives copies; port 1, if present, transmits injected frames only.
    Mirror,
}

/// The ports, their pool and the locks of shared transmit queues; shared by a worker set and
/// closed with its last [`DpdkIo`].
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) ports: Vec<Port>,
    pub(super) pool: Mempool,
    /// Per port, per transmit queue: held around a burst when workers share the queue.
    pub(super) tx_locks: Vec<Vec<Mutex<()>>>,
}

/// Where a worker's frames come from.
#[derive(Debug)]
pub(super) enum RxSide {
    /// Its own receive queue on every receive port (one worker, or RSS).
    Queue(u16),
    /// Worker 0 of the software distribution: receives queue 0 of every receive port, keeps
    /// its share and hands the rest to the other workers.
    Distribute {
        hash: FlowHash,
        /// Per other worker (index - 1), per receive port.
        rings: Vec<Vec<RingProducer>>,
        /// Per other worker: frames of the burst going to it.
        staged: Vec<Vec<Mbuf>>,
        /// Frames of the burst it keeps.
        own: Vec<Mbuf>,
    },
    /// Another worker of the software distribution: its ring from worker 0, per receive port.
    Rings(Vec<RingConsumer>),
}

/// What a worker has to transmit, and what it could not.
#[derive(Debug)]
pub(super) struct Out {
    pub(super) attach: DpdkAttach,
    /// Frames to transmit, per port.
    pub(super) tx: Vec<Vec<Mbuf>>,
    pub(super) injections: Vec<Injection>,
    /// Verdicts of the frames of the burst being handled, in order.
    pub(super) verdicts: Vec<Verdict>,
    /// Per batch of injections of the burst: (frames handled before they were made, end of the
    /// batch in `injections`).
    pub(super) marks: Vec<(usize, usize)>,
    /// Frames of the burst to free (dropped, or a mirror's copies), freed in one call.
    pub(super) free: Vec<Mbuf>,
    /// Copy of a multi-segment frame for the handler.
    pub(super) linear: Vec<u8>,
    /// Frames we could not transmit, per port: refused by a full ring, or injections without an
    /// mbuf or too long for one.
    pub(super) tx_failed: Vec<u64>,
    /// Injections dropped because a mirror has no inject port (counted on port 0's tx_failed).
    pub(super) unsent_injections: u64,
}

/// One worker's [`PacketIo`] on DPDK ports: inline between two ports, or mirror with an optional
/// inject port. [`DpdkIo::inline`] and [`DpdkIo::mirror`] open one worker on queue 0 of each
/// port; [`DpdkWorkers`] opens several, each to be polled by its own thread.
#[derive(Debug)]
pub struct DpdkIo {
    pub(super) attach: DpdkAttach,
    pub(super) shared: Arc<Shared>,
    pub(super) worker: usize,
    pub(super) rx: RxSide,
    /// This worker's transmit queue on each port, and whether other workers share it.
    pub(super) txq: Vec<(u16, bool)>,
    pub(super) rx_buf: Vec<Mbuf>,
    pub(super) out: Out,
    /// Frames dropped because a worker's ring was full, per receive port (distributor only).
    pub(super) ring_full: Vec<u64>,
    /// Frames handed to each worker (distributor only; index 0 counts none).
    pub(super) handed: Vec<u64>,
    pub(super) clock: fn() -> Timestamp,
}

/// The wall clock as a [`Timestamp`].
pub fn wall_clock() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl DpdkIo {
    /// Inline between DPDK ports `ports[0]` (our port 0, the protected side) and `ports[1]`;
    /// one worker.
    pub fn inline(eal: &Eal, ports: [u16; 2], cfg: &DpdkConfig) -> Result<DpdkIo, DpdkError> {
        DpdkWorkers::inline(eal, ports, cfg, &WorkersConfig::default())?.single()
    }

    /// Mirror: receive on DPDK port `rx`; transmit injected frames on `inject`, if any; one
    /// worker.
    pub fn mirror(
        eal: &Eal,
        rx: u16,
        inject: Option<u16>,
        cfg: &DpdkConfig,
    ) -> Result<DpdkIo, DpdkError> {
        DpdkWorkers::mirror(eal, rx, inject, cfg, &WorkersConfig::default())?.single()
    }

    /// Replace the receive clock (tests); the default is [`wall_clock`], read once per burst.
    pub fn set_clock(&mut self, clock: fn() -> Timestamp) {
        self.clock = clock;
    }

    /// The attach mode.
    pub fn attach(&self) -> DpdkAttach {
        self.attach
    }

    /// This worker's index in its set (0 for a single worker).
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// The mbuf pool the ports receive into.
    pub fn pool(&self) -> &Mempool {
        &self.shared.pool
    }

    /// The ports, by our [`PortId`].
    pub fn ports(&self) -> &[Port] {
        &self.shared.ports
    }

    /// Injections dropped because the mirror has no inject port.
    pub fn unsent_injections(&self) -> u64 {
        self.out.unsent_injections
    }

    /// Frames the software distributor handed to each worker (all zero elsewhere).
    pub fn handed(&self) -> &[u64] {
        &self.handed
    }

    /// Frames the software distributor dropped because a worker's ring was full, per receive
    /// port (all zero elsewhere); also counted in [`PortStats::rx_dropped`].
    pub fn ring_full(&self) -> &[u64] {
        &self.ring_full
    }

    /// Device counters per port.
    pub fn eth_stats(&self) -> Result<Vec<EthStats>, DpdkError> {
        self.shared.ports.iter().map(Port::eth_stats).collect()
    }

    pub(super) fn rx_ports(&self) -> usize {
        match self.attach {
            DpdkAttach::Inline => self.shared.ports.len(),
            DpdkAttach::Mirror => 1,
        }
    }
}

/// Queue one injection on the transmit queue its direction calls for (inline: the receive port
/// toward the source, its peer toward the destination; mirror: the inject port), in a fresh
/// mbuf; count it as failed if there is no such port or no mbuf.
pub(super) fn place_injection(
    attach: DpdkAttach,
    pool: &Mempool,
    tx: &mut [Vec<Mbuf>],
    tx_failed: &mut [u64],
    unsent_injections: &mut u64,
    inj: &Injection,
) {
    let ports = tx.len();
    let target = match (attach, inj.toward) {
        (DpdkAttach::Inline, Toward::Source) => Some(usize::from(inj.rx_port)),
        (DpdkAttach::Inline, Toward::Destination) => Some(usize::from(inj.rx_port) ^ 1),
        (DpdkAttach::Mirror, _) => (ports > 1).then_some(1),
    };
    let Some(target) = target.filter(|&t| t < ports) else {
        *unsent_injections += 1;
        if let Some(f) = tx_failed.first_mut() {
            *f += 1;
        }
        return;
    };
    match (pool.alloc_frame(&inj.frame), tx.get_mut(target)) {
        (Some(m), Some(q)) => q.push(m),
        _ => {
            if let Some(f) = tx_failed.get_mut(target) {
                *f += 1;
            }
        }
    }
}

impl Out {
    /// Run the handler on the frames received on port `index` in one burst, then queue each for
    /// transmission if forwarded or free it (dropped, or a mirror's copy), with the injections
    /// each frame caused right after it, as if the frames had been handled one at a time.
    ///
    /// The handler sees the burst first (views of up to [`VIEW_CHUNK`] frames at a time, one
    /// [`FrameHandler::on_burst`] call per run of single-segment frames, a copy of each chained
    /// one); the mbufs move only afterwards, so the views stay borrowed from `bufs` throughout.
    pub(super) fn burst(
        &mut self,
        pool: &Mempool,
        index: usize,
        bufs: &mut Vec<Mbuf>,
        ts: Timestamp,
        handler: &mut dyn FrameHandler,
    ) {
        let meta = RxMeta {
            port: PortId::try_from(index).unwrap_or(PortId::MAX),
            ts,
        };
        self.verdicts.clear();
        self.marks.clear();
        let mut views: [&[u8]; VIEW_CHUNK] = [&[]; VIEW_CHUNK];
        for chunk in bufs.chunks(VIEW_CHUNK) {
            let chained = mbuf_views(chunk, &mut views);
            let n = chunk.len();
            let mut i = 0;
            while i < n {
                if (chained >> i) & 1 == 1 {
                    let verdict = match chunk.get(i) {
                        Some(m) if m.copy_to(&mut self.linear) => {
                            handler.on_frame(&self.linear, meta)
                        }
                        // Too long, or a chain shorter than its length: not a frame we can show;
                        // it is forwarded uninspected (fail-open, see MAX_LINEAR).
                        _ => Verdict::Forward,
                    };
                    self.verdicts.push(verdict);
                    i += 1;
                } else {
                    // The run of single-segment frames starting at i.
                    let run = usize::try_from((chained >> i).trailing_zeros()).unwrap_or(n);
                    let frames = views.get(i..n.min(i + run)).unwrap_or(&[]);
                    let before = self.verdicts.len();
                    handler.on_burst(frames, meta, &mut self.verdicts);
                    // Exactly one verdict per frame handled, whatever the handler pushed.
                    let pushed = self.verdicts.len() - before;
                    let handled = pushed.clamp(1, frames.len().max(1));
                    if pushed != handled {
                        self.verdicts.resize(before + handled, Verdict::Forward);
                    }
                    i += handled;
                }
                let queued = self.marks.last().map_or(0, |&(_, end)| end);
                handler.take_injections(&mut self.injections);
                if self.injections.len() > queued {
                    self.marks
                        .push((self.verdicts.len(), self.injections.len()));
                }
            }
        }
        let Out {
            attach,
            tx,
            injections,
            verdicts,
            marks,
            free,
            tx_failed,
            unsent_injections,
            ..
        } = self;
        let onward = match attach {
            DpdkAttach::Inline => index ^ 1,
            // A mirror forwards nothing: every frame is freed.
            DpdkAttach::Mirror => usize::MAX,
        };
        if marks.is_empty() {
            // No injection in this burst (the common case): only forward or free; inline with
            // every frame allowed (the most common), the whole burst moves in one copy.
            if let Some(q) = tx.get_mut(onward)
                && verdicts.len() == bufs.len()
                && verdicts.iter().all(|v| *v == Verdict::Forward)
            {
                q.append(bufs);
                return;
            }
            for (mbuf, verdict) in bufs.drain(..).zip(verdicts.iter()) {
                match (verdict, tx.get_mut(onward)) {
                    (Verdict::Forward, Some(q)) => q.push(mbuf),
                    _ => free.push(mbuf),
                }
            }
            free_bulk(free);
            return;
        }
        let mut marks = marks.iter().peekable();
        let mut done = 0;
        for (handled, (mbuf, verdict)) in bufs.drain(..).zip(verdicts.iter()).enumerate() {
            match (verdict, tx.get_mut(onward)) {
                (Verdict::Forward, Some(q)) => q.push(mbuf),
                _ => free.push(mbuf),
            }
            while let Some(&&(after, end)) = marks.peek()
                && after == handled + 1
            {
                for inj in injections.get(done..end).unwrap_or(&[]) {
                    place_injection(*attach, pool, tx, tx_failed, unsent_injections, inj);
                }
                done = end;
                marks.next();
            }
        }
        injections.clear();
        free_bulk(free);
    }

    /// Transmit what is queued on this worker's transmit queues; what a full ring still refuses
    /// after [`TX_ATTEMPTS`] bursts is freed and counted.
    ///
    /// A shared queue whose lock another worker holds is not waited for (unless `wait`, or more
    /// than [`TX_DEFER_MAX`] frames are queued): its frames stay queued for the next poll. Waiting
    /// on a lock whose holder has been preempted puts this worker to sleep too, which on a busy
    /// machine costs far more than the lock itself.
    pub(super) fn flush(&mut self, shared: &Shared, txq: &[(u16, bool)], wait: bool) {
        for (p, ((port, q), failed)) in shared
            .ports
            .iter()
            .zip(self.tx.iter_mut())
            .zip(self.tx_failed.iter_mut())
            .enumerate()
        {
            if q.is_empty() {
                continue;
            }
            let Some(&(queue, locked)) = txq.get(p) else {
                continue;
            };
            let lock = shared
                .tx_locks
                .get(p)
                .and_then(|l| l.get(usize::from(queue)));
            let guard = match (locked, lock) {
                (false, _) => None,
                (true, Some(l)) => match l.try_lock() {
                    Ok(g) => Some(g),
                    Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
                    Err(TryLockError::WouldBlock) if !wait && q.len() < TX_DEFER_MAX => continue,
                    Err(TryLockError::WouldBlock) => {
                        Some(l.lock().unwrap_or_else(PoisonError::into_inner))
                    }
                },
                (true, None) => {
                    // Not reachable: every shared queue has its lock. Drop rather than race.
                    *failed += u64::try_from(q.len()).unwrap_or(u64::MAX);
                    q.clear();
                    continue;
                }
            };
            for _ in 0..TX_ATTEMPTS {
                // SAFETY: the queue is this worker's alone (DpdkWorkers::open hands each queue to
                // one worker unless it marks it shared), or shared and its lock is held.
                if q.is_empty() || unsafe { port.tx_queue(queue, q) } == 0 {
                    break;
                }
            }
            drop(guard);
            *failed += u64::try_from(q.len()).unwrap_or(u64::MAX);
            q.clear();
        }
    }
}

impl Drop for DpdkIo {
    fn drop(&mut self) {
        // Frames still queued for a shared transmit queue (see Out::flush) go out now; whatever
        // the device refuses is freed with the queue.
        self.out.flush(&self.shared, &self.txq, true);
    }
}

impl PacketIo for DpdkIo {
    fn poll(&mut self, handler: &mut dyn FrameHandler, burst: usize) -> std::io::Result<usize> {
        let max = u16::try_from(burst.clamp(1, MAX_BURST)).unwrap_or(1);
        let ts = (self.clock)();
        let rx_ports = self.rx_ports();
        let DpdkIo {
            shared,
            rx,
            rx_buf,
            out,
            ring_full,
            handed,
            txq,
            ..
        } = self;
        let mut received = 0;
        for (index, port) in shared.ports.iter().enumerate().take(rx_ports) {
            rx_buf.clear();
            match rx {
                RxSide::Queue(queue) => {
                    // SAFETY: receive queue `queue` of every port belongs to this worker alone
                    // (DpdkWorkers::open gives each worker its own), and poll takes &mut self.
                    received += unsafe { port.rx_queue(*queue, rx_buf, max) };
                }
                RxSide::Distribute {
                    hash,
                    rings,
                    staged,
                    own,
                } => {
                    // SAFETY: with software distribution only worker 0 (this one) polls, and
                    // only queue 0, the one receive queue of the port.
                    received += unsafe { port.rx_queue(0, rx_buf, max) };
                    let workers = rings.len() + 1;
                    for m in rx_buf.drain(..) {
                        let w = usize::try_from(flow_hash(m.data(), *hash)).unwrap_or(0) % workers;
                        match w.checked_sub(1).and_then(|i| staged.get_mut(i)) {
                            Some(s) => s.push(m),
                            None => own.push(m),
                        }
                    }
                    for (i, s) in staged.iter_mut().enumerate() {
                        if s.is_empty() {
                            continue;
                        }
                        let took = rings
                            .get_mut(i)
                            .and_then(|r| r.get_mut(index))
                            .map_or(0, |r| r.enqueue(s));
                        if let Some(h) = handed.get_mut(i + 1) {
                            *h += u64::try_from(took).unwrap_or(u64::MAX);
                        }
                        if let Some(f) = ring_full.get_mut(index) {
                            *f += u64::try_from(s.len()).unwrap_or(u64::MAX);
                        }
                        // The worker's ring is full: these are dropped (freed) here.
                        s.clear();
                    }
                    rx_buf.append(own);
                }
                RxSide::Rings(consumers) => {
                    if let Some(c) = consumers.get_mut(index) {
                        received += c.dequeue(rx_buf, usize::from(max));
                    }
                }
            }
            out.burst(&shared.pool, index, rx_buf, ts, handler);
        }
        out.flush(shared, txq, false);
        Ok(received)
    }

    /// Worker 0 reports the device counters (shared by the workers: summing them would count
    /// each frame once per worker) and the frames its rings refused (as receive drops); every
    /// worker reports the frames it could not transmit.
    fn unsent(&self) -> u64 {
        self.out.unsent_injections
    }

    fn stats(&self) -> Vec<PortStats> {
        self.shared
            .ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let failed = self.out.tx_failed.get(i).copied().unwrap_or(0);
                if self.worker != 0 {
                    return PortStats {
                        tx_failed: failed,
                        ..PortStats::default()
                    };
                }
                let s = port.eth_stats().unwrap_or_default();
                let ring_full = self.ring_full.get(i).copied().unwrap_or(0);
                PortStats {
                    rx_packets: s.ipackets,
                    rx_bytes: s.ibytes,
                    tx_packets: s.opackets,
                    rx_dropped: s
                        .imissed
                        .saturating_add(s.rx_nombuf)
                        .saturating_add(ring_full),
                    tx_failed: failed.saturating_add(s.oerrors),
                }
            })
            .collect()
    }
}
