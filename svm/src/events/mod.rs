//! Events: ids, the durable spool, the central-server sender, and the local outputs (rotating
//! EVE file, RFC 5424 syslog over UDP/TCP, CEF).
//!
//! Every event becomes a [`Record`] with a unique id and goes through [`EventHub::emit`], which
//! never blocks the caller: a writer thread drains the queue in batches, commits each batch to
//! the spool in one transaction (dropping the oldest events when the spool is over its byte
//! bound, counting them and spooling a `spool_overflow` event), writes the local outputs, and
//! wakes the [`central`] sender, which POSTs spooled events as JSON arrays until the server
//! acknowledges them. Delivery is at least once; the central server deduplicates on `id`.
//!
//! Queues that traffic feeds are bounded ([`HubConfig::queue`], and the NSX tagger's): what a full
//! queue refuses is dropped and counted, and an [`ENGINE_OVERLOAD`] event says which queue lost
//! how many, at most once per [`OVERLOAD_INTERVAL_SECS`] per queue ([`Overload`]).

pub mod cef;
pub mod central;
pub mod eve_file;
pub mod live;
pub mod record;
pub mod syslog;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

pub use record::{Record, Severity};

use dataplane::time::Timestamp;

use crate::store::Store;

/// Default spool bound: 256 MiB of event JSON.
pub const DEFAULT_SPOOL_BYTES: u64 = 256 << 20;

/// Events handed to the writer in one transaction at most.
const WRITE_BATCH: usize = 4096;

/// Default depth of the hub's queue. The writer drains it in batches of [`WRITE_BATCH`]; the
/// queue absorbs bursts of a few seconds of a slow spool disk or output, and bounds the memory
/// a flood of events can take (a record is about 1 KiB: 64 MiB at most).
pub const DEFAULT_EVENT_QUEUE: usize = 65_536;

/// `event_type` of the event that says a bounded queue dropped entries.
pub const ENGINE_OVERLOAD: &str = "engine_overload";

/// Least time between two [`ENGINE_OVERLOAD`] events of one queue, seconds (of event time).
pub const OVERLOAD_INTERVAL_SECS: u64 = 10;

/// Rate limit and bookkeeping of [`ENGINE_OVERLOAD`] events for one bounded queue: the drops
/// are counted on every refusal; the event reports those since the last one.
#[derive(Debug, Default)]
pub struct Overload {
    /// Entries the queue refused, in total.
    pub dropped: AtomicU64,
    reported: AtomicU64,
    last: AtomicU64,
    ever: AtomicBool,
}

impl Overload {
    /// Count one refused entry.
    pub fn drop_one(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// The [`ENGINE_OVERLOAD`] event for `queue` when entries were dropped since the last one
    /// and the last one is at least [`OVERLOAD_INTERVAL_SECS`] older than `now`.
    pub fn report(&self, queue: &str, now: Timestamp) -> Option<Record> {
        let total = self.dropped.load(Ordering::Relaxed);
        let reported = self.reported.load(Ordering::Relaxed);
        if total <= reported {
            return None;
        }
        let last = Timestamp(self.last.load(Ordering::Relaxed));
        if self.ever.load(Ordering::Relaxed)
            && now.since(last) < OVERLOAD_INTERVAL_SECS * Timestamp::SECOND
        {
            return None;
        }
        // One reporter wins a race; the other sees `reported` moved on next time.
        if self
            .reported
            .compare_exchange(reported, total, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        self.last.store(now.micros(), Ordering::Relaxed);
        self.ever.store(true, Ordering::Relaxed);
        let dropped = total - reported;
        let mut f = serde_json::Map::new();
        f.insert("queue".into(), queue.into());
        f.insert("dropped".into(), dropped.into());
        f.insert("dropped_total".into(), total.into());
        f.insert(
            "message".into(),
            format!("the {queue} queue was full: {dropped} dropped since the last report").into(),
        );
        Some(Record::new(now, ENGINE_OVERLOAD, Severity::Error, f))
    }
}

/// A local output.
pub trait LocalOutput: Send {
    /// Write one event.
    fn write(&mut self, rec: &Record) -> std::io::Result<()>;
}

impl LocalOutput for eve_file::RotatingFile {
    fn write(&mut self, rec: &Record) -> std::io::Result<()> {
        eve_file::RotatingFile::write(self, rec)
    }
}

impl LocalOutput for syslog::SyslogSender {
    fn write(&mut self, rec: &Record) -> std::io::Result<()> {
        self.send(rec)
    }
}

/// Counters of the event path.
#[derive(Debug, Default)]
pub struct EventStats {
    /// Events queued, per severity (index = level - 1); a dropped event is counted in `queue`.
    pub emitted: [AtomicU64; 4],
    /// Events dropped from the spool (oldest first) because it was over its bound.
    pub spool_dropped: AtomicU64,
    /// Events the spool writer failed to store (store errors).
    pub spool_errors: AtomicU64,
    /// Local output write failures.
    pub output_errors: AtomicU64,
    /// Events acknowledged by the central server.
    pub sent: AtomicU64,
    /// Failed POST attempts to the central server.
    pub send_failures: AtomicU64,
    /// The hub's queue: events dropped because it was full (the writer fell behind).
    pub queue: Overload,
    /// Events kept in memory because the store could not take them (a full disk); written
    /// when it works again.
    pub pending: AtomicU64,
}

enum Msg {
    Event(Box<Record>),
    Flush(mpsc::Sender<()>),
}

/// The event hub: cheap to clone, safe to call from any thread (dataplane glue included).
#[derive(Clone, Debug)]
pub struct EventHub {
    tx: mpsc::SyncSender<Msg>,
    stats: Arc<EventStats>,
    wake: Arc<tokio::sync::Notify>,
    store: Arc<Store>,
    live: Arc<live::Live>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

/// Settings of the hub.
#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// Spool bound in bytes of event JSON.
    pub spool_max_bytes: u64,
    /// Depth of the queue between [`EventHub::emit`] and the writer.
    pub queue: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            spool_max_bytes: DEFAULT_SPOOL_BYTES,
            queue: DEFAULT_EVENT_QUEUE,
        }
    }
}

impl EventHub {
    /// Start the writer thread.
    pub fn start(
        store: Arc<Store>,
        cfg: HubConfig,
        outputs: Vec<Box<dyn LocalOutput>>,
    ) -> std::io::Result<EventHub> {
        let (tx, rx) = mpsc::sync_channel(cfg.queue.max(1));
        let stats = Arc::new(EventStats::default());
        let wake = Arc::new(tokio::sync::Notify::new());
        let live = Arc::new(live::Live::default());
        let writer = Writer {
            store: store.clone(),
            cfg,
            outputs: Mutex::new(outputs),
            stats: stats.clone(),
            wake: wake.clone(),
            pending: Mutex::default(),
            live: live.clone(),
        };
        std::thread::Builder::new()
            .name("svm-events".into())
            .spawn(move || writer.run(&rx))?;
        Ok(EventHub {
            tx,
            stats,
            wake,
            store,
            live,
        })
    }

    /// Queue an event (never blocks): when the queue is full the event is dropped and counted
    /// ([`EventStats::queue`]), and the writer reports the drops with an [`ENGINE_OVERLOAD`] event.
    pub fn emit(&self, rec: Record) {
        let level = usize::from(rec.severity().level().saturating_sub(1));
        match self.tx.try_send(Msg::Event(Box::new(rec))) {
            Ok(()) => {
                if let Some(c) = self.stats.emitted.get(level) {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(mpsc::TrySendError::Full(_)) => self.stats.queue.drop_one(),
            Err(mpsc::TrySendError::Disconnected(_)) => {}
        }
    }

    /// Wait until every event emitted before this call is in the spool and the local outputs
    /// (waits for room in the queue).
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// Counters.
    pub fn stats(&self) -> &Arc<EventStats> {
        &self.stats
    }

    /// Notified whenever events were spooled (the central sender waits on it).
    pub fn wake(&self) -> &Arc<tokio::sync::Notify> {
        &self.wake
    }

    /// The store holding the spool.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Events for watchers (`svm events tail`).
    pub fn live(&self) -> &Arc<live::Live> {
        &self.live
    }
}

struct Writer {
    store: Arc<Store>,
    cfg: HubConfig,
    outputs: Mutex<Vec<Box<dyn LocalOutput>>>,
    stats: Arc<EventStats>,
    wake: Arc<tokio::sync::Notify>,
    /// Records the store refused, oldest first, and their bytes; bounded like the spool.
    pending: Mutex<Pending>,
    live: Arc<live::Live>,
}

#[derive(Default)]
struct Pending {
    records: std::collections::VecDeque<Vec<u8>>,
    bytes: u64,
    /// The store was failing at the last write (a `store_error` event was reported).
    failing: bool,
}

/// How often the writer retries pending records while no event comes.
const PENDING_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl Writer {
    fn run(&self, rx: &mpsc::Receiver<Msg>) {
        loop {
            let has_pending = !self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .records
                .is_empty();
            let first = if has_pending {
                match rx.recv_timeout(PENDING_RETRY) {
                    Ok(m) => m,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if self.spool(Vec::new(), crate::daemon::now()).is_ok() {
                            self.wake.notify_one();
                        }
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            };
            let mut batch = Vec::new();
            let mut flushes = Vec::new();
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Event(r) => batch.push(*r),
                    Msg::Flush(done) => flushes.push(done),
                }
                if batch.len() < WRITE_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if let Some(last) = batch.last()
                && let Some(rec) = self.stats.queue.report("events", last.ts)
            {
                self.stats.emitted[2].fetch_add(1, Ordering::Relaxed);
                batch.push(rec);
            }
            self.write(&batch);
            self.live.publish(&batch);
            for f in flushes {
                let _ = f.send(());
            }
        }
    }

    /// Spool `records` after the pending ones. If the store refuses them, they join the
    /// pending records (the oldest dropped beyond the spool's bound, counted as spool drops),
    /// and the first refusal is reported with a `store_error` event (to the local outputs and,
    /// pending, the spool). Returns how the store took them.
    fn spool(&self, records: Vec<Vec<u8>>, ts: Timestamp) -> Result<crate::store::PushOutcome, ()> {
        let mut p = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if records.is_empty() && p.records.is_empty() {
            return Ok(crate::store::PushOutcome::default());
        }
        let mut all: Vec<Vec<u8>> = p.records.drain(..).collect();
        let new = records.len() as u64;
        all.extend(records);
        match self.store.spool_push(&all, self.cfg.spool_max_bytes) {
            Ok(out) => {
                p.bytes = 0;
                p.failing = false;
                self.stats.pending.store(0, Ordering::Relaxed);
                Ok(out)
            }
            Err(e) => {
                self.stats.spool_errors.fetch_add(new, Ordering::Relaxed);
                p.bytes = all.iter().map(|r| r.len() as u64).sum();
                p.records = all.into();
                if !p.failing {
                    p.failing = true;
                    let mut f = serde_json::Map::new();
                    f.insert(
                        "path".into(),
                        self.store.path().display().to_string().into(),
                    );
                    f.insert(
                        "message".into(),
                        format!("{e}; events are kept in memory and spooled when it works again")
                            .into(),
                    );
                    let rec = Record::new(ts, "store_error", Severity::Error, f);
                    self.stats.emitted[2].fetch_add(1, Ordering::Relaxed);
                    self.to_outputs(std::slice::from_ref(&rec));
                    let b = rec.to_bytes();
                    p.bytes += b.len() as u64;
                    p.records.push_back(b);
                }
                let mut dropped = 0;
                while p.bytes > self.cfg.spool_max_bytes && p.records.len() > 1 {
                    if let Some(r) = p.records.pop_front() {
                        p.bytes = p.bytes.saturating_sub(r.len() as u64);
                        dropped += 1;
                    }
                }
                self.stats
                    .spool_dropped
                    .fetch_add(dropped, Ordering::Relaxed);
                self.stats
                    .pending
                    .store(p.records.len() as u64, Ordering::Relaxed);
                Err(())
            }
        }
    }

    fn to_outputs(&self, batch: &[Record]) {
        if let Ok(mut outputs) = self.outputs.lock() {
            for out in outputs.iter_mut() {
                for rec in batch {
                    if out.write(rec).is_err() {
                        self.stats.output_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    fn write(&self, batch: &[Record]) {
        if batch.is_empty() {
            return;
        }
        let bytes: Vec<Vec<u8>> = batch.iter().map(Record::to_bytes).collect();
        let ts = batch.last().map(|r| r.ts).unwrap_or_default();
        match self.spool(bytes, ts) {
            Ok(out) if out.dropped > 0 => {
                self.stats
                    .spool_dropped
                    .fetch_add(out.dropped, Ordering::Relaxed);
                let mut f = serde_json::Map::new();
                f.insert("dropped".into(), out.dropped.into());
                f.insert(
                    "message".into(),
                    format!(
                        "event spool over {} bytes: dropped the {} oldest events",
                        self.cfg.spool_max_bytes, out.dropped
                    )
                    .into(),
                );
                let rec = Record::new(ts, "spool_overflow", Severity::Error, f);
                if let Ok(o) = self.spool(vec![rec.to_bytes()], ts) {
                    self.stats
                        .spool_dropped
                        .fetch_add(o.dropped, Ordering::Relaxed);
                }
                self.stats.emitted[2].fetch_add(1, Ordering::Relaxed);
            }
            // Refused records are pending (counted in `spool`), written when the store works.
            Ok(_) | Err(()) => {}
        }
        self.wake.notify_one();
        self.to_outputs(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{Receiver, SyncSender};

    fn event(i: u64) -> Record {
        let mut f = serde_json::Map::new();
        f.insert("i".into(), i.into());
        Record::new(Timestamp(i), "alert", Severity::Warning, f)
    }

    /// An output that holds the writer inside its first write until released, and keeps what
    /// it was given.
    struct Gate {
        entered: SyncSender<()>,
        release: Receiver<()>,
        held: bool,
        seen: Arc<Mutex<Vec<Record>>>,
    }

    impl LocalOutput for Gate {
        fn write(&mut self, rec: &Record) -> std::io::Result<()> {
            if !self.held {
                self.held = true;
                let _ = self.entered.send(());
                let _ = self.release.recv();
            }
            if let Ok(mut s) = self.seen.lock() {
                s.push(rec.clone());
            }
            Ok(())
        }
    }

    #[test]
    fn a_full_queue_drops_counts_and_raises_engine_overload() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("s.redb")).unwrap());
        let (entered_tx, entered) = mpsc::sync_channel(1);
        let (release, release_rx) = mpsc::sync_channel(1);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let gate = Gate {
            entered: entered_tx,
            release: release_rx,
            held: false,
            seen: Arc::clone(&seen),
        };
        let depth = 8;
        let hub = EventHub::start(
            store,
            HubConfig {
                queue: depth,
                ..HubConfig::default()
            },
            vec![Box::new(gate)],
        )
        .unwrap();
        hub.emit(event(0));
        entered.recv().unwrap(); // the writer is held inside the output
        for i in 1..=depth as u64 + 5 {
            hub.emit(event(i));
        }
        let dropped = hub.stats().queue.dropped.load(Ordering::Relaxed);
        assert_eq!(dropped, 5, "the queue holds {depth}, the rest is dropped");
        let queued: u64 = hub
            .stats()
            .emitted
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        assert_eq!(queued, 1 + depth as u64);
        release.send(()).unwrap();
        hub.flush();
        let seen = seen.lock().unwrap();
        let overloads: Vec<&Record> = seen
            .iter()
            .filter(|r| r.value["event_type"] == ENGINE_OVERLOAD)
            .collect();
        assert_eq!(overloads.len(), 1, "{seen:?}");
        assert_eq!(overloads[0].value["queue"], "events");
        assert_eq!(overloads[0].value["dropped"], 5);
        assert_eq!(
            seen.len(),
            1 + depth + 1,
            "every queued event and the report"
        );
    }

    #[test]
    fn overload_reports_are_rate_limited_and_count_since_the_last() {
        let o = Overload::default();
        let t0 = Timestamp::from_secs_micros(1000, 0);
        assert!(o.report("q", t0).is_none(), "nothing dropped");
        o.drop_one();
        o.drop_one();
        let r = o.report("q", t0).unwrap();
        assert_eq!(r.value["dropped"], 2);
        assert_eq!(r.value["event_type"], ENGINE_OVERLOAD);
        o.drop_one();
        assert!(
            o.report("q", t0.plus_secs(OVERLOAD_INTERVAL_SECS - 1))
                .is_none()
        );
        o.drop_one();
        let r = o.report("q", t0.plus_secs(OVERLOAD_INTERVAL_SECS)).unwrap();
        assert_eq!(r.value["dropped"], 2, "the drops since the last report");
        assert_eq!(r.value["dropped_total"], 4);
        assert!(o.report("q", t0.plus_secs(100)).is_none(), "nothing new");
    }
}
