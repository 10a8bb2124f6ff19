//! Events: ids, the durable spool, the central-server sender, and the local outputs (rotating
//! EVE file, RFC 5424 syslog over UDP/TCP, CEF).
//!
//! Every event becomes a [`Record`] with a unique id and goes through [`EventHub::emit`], which
//! never blocks the caller: a writer thread drains the queue in batches, commits each batch to
//! the spool in one transaction (dropping the oldest events when the spool is over its byte
//! bound, counting them and spooling a `spool_overflow` event), writes the local outputs, and
//! wakes the [`central`] sender, which POSTs spooled events as JSON arrays until the server
//! acknowledges them. Delivery is at least once; the central server deduplicates on `id`.

pub mod cef;
pub mod central;
pub mod eve_file;
pub mod record;
pub mod syslog;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

pub use record::{Record, Severity};

use crate::store::Store;

/// Default spool bound: 256 MiB of event JSON.
pub const DEFAULT_SPOOL_BYTES: u64 = 256 << 20;

/// Events handed to the writer in one transaction at most.
const WRITE_BATCH: usize = 4096;

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
    /// Events emitted, per severity (index = level - 1).
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
}

enum Msg {
    Event(Box<Record>),
    Flush(mpsc::Sender<()>),
}

/// The event hub: cheap to clone, safe to call from any thread (dataplane glue included).
#[derive(Clone, Debug)]
pub struct EventHub {
    tx: mpsc::Sender<Msg>,
    stats: Arc<EventStats>,
    wake: Arc<tokio::sync::Notify>,
    store: Arc<Store>,
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
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            spool_max_bytes: DEFAULT_SPOOL_BYTES,
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
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(EventStats::default());
        let wake = Arc::new(tokio::sync::Notify::new());
        let writer = Writer {
            store: store.clone(),
            cfg,
            outputs: Mutex::new(outputs),
            stats: stats.clone(),
            wake: wake.clone(),
        };
        std::thread::Builder::new()
            .name("svm-events".into())
            .spawn(move || writer.run(&rx))?;
        Ok(EventHub {
            tx,
            stats,
            wake,
            store,
        })
    }

    /// Queue an event (never blocks).
    pub fn emit(&self, rec: Record) {
        let level = usize::from(rec.severity().level().saturating_sub(1));
        if let Some(c) = self.stats.emitted.get(level) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self.tx.send(Msg::Event(Box::new(rec)));
    }

    /// Wait until every event emitted before this call is in the spool and the local outputs.
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
}

struct Writer {
    store: Arc<Store>,
    cfg: HubConfig,
    outputs: Mutex<Vec<Box<dyn LocalOutput>>>,
    stats: Arc<EventStats>,
    wake: Arc<tokio::sync::Notify>,
}

impl Writer {
    fn run(&self, rx: &mpsc::Receiver<Msg>) {
        while let Ok(first) = rx.recv() {
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
            self.write(&batch);
            for f in flushes {
                let _ = f.send(());
            }
        }
    }

    fn write(&self, batch: &[Record]) {
        if batch.is_empty() {
            return;
        }
        let bytes: Vec<Vec<u8>> = batch.iter().map(Record::to_bytes).collect();
        match self.store.spool_push(&bytes, self.cfg.spool_max_bytes) {
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
                let ts = batch.last().map(|r| r.ts).unwrap_or_default();
                let rec = Record::new(ts, "spool_overflow", Severity::Error, f);
                match self
                    .store
                    .spool_push(&[rec.to_bytes()], self.cfg.spool_max_bytes)
                {
                    Ok(o) => {
                        self.stats
                            .spool_dropped
                            .fetch_add(o.dropped, Ordering::Relaxed);
                    }
                    Err(_) => {
                        self.stats.spool_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                self.stats.emitted[2].fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(_) => {
                self.stats
                    .spool_errors
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
        }
        self.wake.notify_one();
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
}
