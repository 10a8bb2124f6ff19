//! Durable state in one embedded transactional store (redb): the running policy document and its
//! version, the block list with absolute expiries, the event spool, and the VMs already tagged in
//! NSX. Every change is one write transaction, committed durably before the caller is answered,
//! so after `kill -9` the daemon restarts into the last acknowledged state.
//!
//! Blocks store their absolute expiry (microseconds since the epoch), never a remaining duration:
//! after a restart the remaining time is `expires - now`, and entries that ran out while the
//! daemon was down are reported as expired by the block keeper once they are restored into it.
//!
//! # A damaged store
//! A state file that exists but cannot be read is never replaced silently: [`Store::open`]
//! refuses an empty file (redb would start a new store in it, and the policy and blocks would be
//! gone without a word), and [`prepare`] reads the whole store in a child process first
//! (`svm state probe`), because redb aborts the process on some truncated files (an assertion
//! on the file length). `svm state check` runs the same probe for an admin; `svm run
//! --reset-state` keeps a damaged file aside and starts a new store.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BLOCKS: TableDefinition<&str, &[u8]> = TableDefinition::new("blocks");
const SPOOL: TableDefinition<u64, &[u8]> = TableDefinition::new("spool");
const TAGGED: TableDefinition<&str, u64> = TableDefinition::new("tagged_vms");
const ISOLATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("isolations");

const K_POLICY_DOC: &str = "policy.document";
const K_POLICY_VERSION: &str = "policy.version";
const K_SPOOL_NEXT: &str = "spool.next_seq";
const K_SPOOL_BYTES: &str = "spool.bytes";
const K_SPOOL_DROPPED: &str = "spool.dropped_total";
const K_NEXT_DECISION: &str = "blocks.next_id";

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (I/O, corruption, lock held by another process).
    #[error("state store: {0}")]
    Db(Box<redb::Error>),
    /// The state file exists but is empty: it was truncated or never written.
    #[error(
        "state store {}: the file is empty (0 bytes), so the policy, blocks and spooled events it held are lost; restore a copy of it, or start with `svm run --reset-state` to keep it aside and begin a new store",
        path.display()
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The state file cannot be read (truncated, overwritten, not a store).
    #[error(
        "state store {}: cannot be read ({detail}); `svm state check {}` shows the problem; restore a copy of it, or start with `svm run --reset-state` to keep it aside and begin a new store",
        path.display(),
        path.display()
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        detail: String,
    },
    /// No state file at the path given to `svm state check`.
    #[error("state store {}: no such file", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// The database could not be opened again after a failure (the disk is still full, or
    /// the file went away); the next operation tries again.
    #[error("state store {}: not open (reopening after a failure did not succeed yet)", path.display())]
    Unavailable {
        /// The file.
        path: PathBuf,
    },
    /// Another process (a running daemon) holds the store.
    #[error("state store {}: in use by another process (is svm already running?)", path.display())]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// A stored record could not be decoded.
    #[error("state store: corrupt record {key}: {source}")]
    Corrupt {
        /// Which record.
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(Box::new(e.into()))
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A block as stored: the absolute expiry, not a duration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBlock {
    /// Decision id (stable for the life of the block; the CrowdSec stream's `id`).
    pub id: u64,
    /// VLAN scope as text (`untagged`, `100`, `100.200`).
    pub scope: String,
    /// Blocked address.
    pub addr: std::net::IpAddr,
    /// Creation time, microseconds since the epoch.
    pub created_us: u64,
    /// Expiry, microseconds since the epoch.
    pub expires_us: u64,
    /// Reason (detection name or admin note).
    pub reason: String,
    /// Engine (`attack_blocker`, `manual`).
    pub engine: String,
    /// `detection` or `manual`.
    pub origin: String,
}

impl StoredBlock {
    /// The record key: scope and address.
    pub fn key(&self) -> String {
        block_key(&self.scope, self.addr)
    }

    /// The record key of the block of `addr` in `scope`.
    pub fn key_of(scope: vlan::VlanScope, addr: std::net::IpAddr) -> String {
        block_key(&scope.to_string(), addr)
    }
}

fn block_key(scope: &str, addr: std::net::IpAddr) -> String {
    format!("{scope}/{addr}")
}

/// One spooled event: its sequence number (spool order) and its serialized record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spooled {
    /// Position in the spool; increases with every event ever spooled.
    pub seq: u64,
    /// The record (JSON).
    pub data: Vec<u8>,
}

/// Outcome of [`Store::spool_push`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Events added.
    pub added: u64,
    /// Oldest events dropped to stay within the bound.
    pub dropped: u64,
}

/// The store. Cheap to share behind an `Arc`; redb serialises writers itself.
///
/// # A failing disk
/// A write that fails (the disk is full, an I/O error) leaves redb refusing every later
/// operation (`PreviousIo`) until the database is opened again. So every operation that fails
/// in the database is counted and remembered with the file's path ([`Store::health`]), the
/// database is reopened (at most once a second) and the operation tried once more: when the
/// space is back, the store works again without a restart. Callers keep what they could not
/// write and write it later (the event hub's pending events, the control plane's unsaved
/// blocks); nothing they acknowledged is lost.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    /// `None` while a reopen failed; the next operation tries again.
    db: std::sync::RwLock<Option<Database>>,
    health: std::sync::Mutex<HealthState>,
}

/// The store's health: failures so far, and whether the last operation failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreHealth {
    /// Operations that failed in the database since start.
    pub errors_total: u64,
    /// Times the database was opened again after a failure.
    pub reopens_total: u64,
    /// The last failure (with the file's path), while the store is failing; `None` once an
    /// operation succeeds again.
    pub failing: Option<String>,
}

#[derive(Debug, Default)]
struct HealthState {
    health: StoreHealth,
    last_reopen: Option<std::time::Instant>,
}

/// Least time between two reopen attempts of a failing store.
const REOPEN_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

fn open_db(path: &Path) -> Result<Database, StoreError> {
    let db = Database::create(path)?;
    let tx = db.begin_write()?;
    {
        tx.open_table(META)?;
        tx.open_table(BLOCKS)?;
        tx.open_table(SPOOL)?;
        tx.open_table(TAGGED)?;
        tx.open_table(ISOLATIONS)?;
    }
    tx.commit()?;
    Ok(db)
}

fn u64_of(bytes: Option<&[u8]>) -> u64 {
    bytes
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes)
}

impl Store {
    /// Open (or create) the store at `path`. Fails if another process holds it, or if the file
    /// is empty (see the module doc).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0) {
            return Err(StoreError::Empty {
                path: path.to_owned(),
            });
        }
        let db = open_db(path)?;
        Ok(Store {
            path: path.to_owned(),
            db: std::sync::RwLock::new(Some(db)),
            health: std::sync::Mutex::default(),
        })
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Failures so far and whether the store is failing now.
    pub fn health(&self) -> StoreHealth {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .health
            .clone()
    }

    /// Run `f` on the database; after a database failure, reopen it (see the type's doc) and
    /// run `f` once more. A failure is printed once, when the store starts failing, and its
    /// recovery once.
    fn run<T>(&self, f: impl Fn(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let r = self.attempt(&f);
        self.note(r, true)
    }

    /// [`Store::run`] for a read: reads may still work while writes fail, so a read that works
    /// does not end the failing state.
    fn run_read<T>(&self, f: impl Fn(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let r = self.attempt(&f);
        self.note(r, false)
    }

    fn attempt<T>(&self, f: &impl Fn(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        match self.on_open(f) {
            Err(StoreError::Db(_) | StoreError::Unavailable { .. }) if self.reopen() => {
                self.on_open(f)
            }
            other => other,
        }
    }

    /// Run `f` on the open database, if it is open.
    fn on_open<T>(&self, f: &impl Fn(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let db = self
            .db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match db.as_ref() {
            Some(db) => f(db),
            None => Err(StoreError::Unavailable {
                path: self.path.clone(),
            }),
        }
    }

    /// Record the outcome of an operation (`write`: one that changes the file).
    fn note<T>(&self, r: Result<T, StoreError>, write: bool) -> Result<T, StoreError> {
        let mut h = self
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &r {
            Ok(_) if !write => {}
            Ok(_) => {
                if h.health.failing.take().is_some() {
                    tracing::info!("svm: state store {}: works again", self.path.display());
                }
            }
            Err(e @ (StoreError::Db(_) | StoreError::Unavailable { .. })) => {
                h.health.errors_total += 1;
                let text = match e {
                    StoreError::Db(inner) => {
                        format!("state store {}: {inner}", self.path.display())
                    }
                    other => other.to_string(),
                };
                if h.health.failing.is_none() {
                    tracing::error!("svm: {text}; what could not be written is kept in memory");
                }
                h.health.failing = Some(text);
            }
            Err(_) => {}
        }
        r
    }

    /// Open the database again (dropping the failed handle first, as redb holds a lock on the
    /// file), at most once per [`REOPEN_EVERY`]; true if it is open now.
    fn reopen(&self) -> bool {
        {
            let mut h = self
                .health
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if h.last_reopen.is_some_and(|t| t.elapsed() < REOPEN_EVERY) {
                return false;
            }
            h.last_reopen = Some(std::time::Instant::now());
            h.health.reopens_total += 1;
        }
        let mut db = self
            .db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *db = None;
        *db = open_db(&self.path).ok();
        db.is_some()
    }

    fn meta_u64(&self, key: &str) -> Result<u64, StoreError> {
        self.run_read(|db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(META)?;
            let v = t.get(key)?;
            Ok(u64_of(v.as_ref().map(|g| g.value())))
        })
    }

    /// The running policy: version and document, if one was ever applied.
    pub fn policy(&self) -> Result<Option<(u64, serde_json::Value)>, StoreError> {
        self.run_read(|db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(META)?;
            let Some(doc) = t.get(K_POLICY_DOC)? else {
                return Ok(None);
            };
            let value =
                serde_json::from_slice(doc.value()).map_err(|source| StoreError::Corrupt {
                    key: K_POLICY_DOC.into(),
                    source,
                })?;
            let version = u64_of(t.get(K_POLICY_VERSION)?.as_ref().map(|g| g.value()));
            Ok(Some((version, value)))
        })
    }

    /// Replace the running policy.
    pub fn put_policy(&self, version: u64, doc: &serde_json::Value) -> Result<(), StoreError> {
        self.run(|db| {
            let bytes = serde_json::to_vec(doc).map_err(|source| StoreError::Corrupt {
                key: K_POLICY_DOC.into(),
                source,
            })?;
            let tx = db.begin_write()?;
            {
                let mut t = tx.open_table(META)?;
                t.insert(K_POLICY_DOC, bytes.as_slice())?;
                t.insert(K_POLICY_VERSION, version.to_le_bytes().as_slice())?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// A fresh decision id (persisted, so ids are never reused across restarts).
    pub fn next_decision_id(&self) -> Result<u64, StoreError> {
        self.run(|db| {
            let tx = db.begin_write()?;
            let id;
            {
                let mut t = tx.open_table(META)?;
                id = u64_of(t.get(K_NEXT_DECISION)?.as_ref().map(|g| g.value())).saturating_add(1);
                t.insert(K_NEXT_DECISION, id.to_le_bytes().as_slice())?;
            }
            tx.commit()?;
            Ok(id)
        })
    }

    /// Reserve `n` decision ids in one transaction: the first of them (the next `n - 1`
    /// follow it); the first id [`Store::next_decision_id`] would give when `n` is 0.
    pub fn next_decision_ids(&self, n: u64) -> Result<u64, StoreError> {
        self.run(|db| {
            let tx = db.begin_write()?;
            let first;
            {
                let mut t = tx.open_table(META)?;
                let last = u64_of(t.get(K_NEXT_DECISION)?.as_ref().map(|g| g.value()));
                first = last.saturating_add(1);
                let end = last.saturating_add(n);
                t.insert(K_NEXT_DECISION, end.to_le_bytes().as_slice())?;
            }
            tx.commit()?;
            Ok(first)
        })
    }

    /// Insert or replace `block` under the next decision id, reserving the id and writing the
    /// block in one transaction (one commit, so one sync to disk, a detection block instead of
    /// two); the id is returned, `block.id` is replaced.
    pub fn put_new_block(&self, block: &StoredBlock) -> Result<u64, StoreError> {
        self.run(|db| {
            let tx = db.begin_write()?;
            let id;
            {
                let mut t = tx.open_table(META)?;
                id = u64_of(t.get(K_NEXT_DECISION)?.as_ref().map(|g| g.value())).saturating_add(1);
                t.insert(K_NEXT_DECISION, id.to_le_bytes().as_slice())?;
            }
            {
                let b = StoredBlock {
                    id,
                    ..block.clone()
                };
                let bytes = serde_json::to_vec(&b).map_err(|source| StoreError::Corrupt {
                    key: b.key(),
                    source,
                })?;
                tx.open_table(BLOCKS)?
                    .insert(b.key().as_str(), bytes.as_slice())?;
            }
            tx.commit()?;
            Ok(id)
        })
    }

    /// Insert or replace a block.
    pub fn put_block(&self, block: &StoredBlock) -> Result<(), StoreError> {
        self.put_blocks(std::slice::from_ref(block))
    }

    /// Insert or replace several blocks in one transaction.
    pub fn put_blocks(&self, blocks: &[StoredBlock]) -> Result<(), StoreError> {
        self.run(|db| {
            let tx = db.begin_write()?;
            {
                let mut t = tx.open_table(BLOCKS)?;
                for b in blocks {
                    let bytes = serde_json::to_vec(b).map_err(|source| StoreError::Corrupt {
                        key: b.key(),
                        source,
                    })?;
                    t.insert(b.key().as_str(), bytes.as_slice())?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Remove blocks by (scope, address); returns how many existed.
    pub fn remove_blocks(&self, keys: &[(String, std::net::IpAddr)]) -> Result<usize, StoreError> {
        self.run(|db| {
            let tx = db.begin_write()?;
            let mut n = 0;
            {
                let mut t = tx.open_table(BLOCKS)?;
                for (scope, addr) in keys {
                    if t.remove(block_key(scope, *addr).as_str())?.is_some() {
                        n += 1;
                    }
                }
            }
            tx.commit()?;
            Ok(n)
        })
    }

    /// Every stored block.
    pub fn blocks(&self) -> Result<Vec<StoredBlock>, StoreError> {
        self.all(BLOCKS)
    }

    /// Every record of a table of JSON records, in key order.
    fn all<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<T>, StoreError> {
        self.run_read(|db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(table)?;
            let mut out = Vec::new();
            for item in t.iter()? {
                let (k, v) = item?;
                let record =
                    serde_json::from_slice(v.value()).map_err(|source| StoreError::Corrupt {
                        key: k.value().to_owned(),
                        source,
                    })?;
                out.push(record);
            }
            Ok(out)
        })
    }

    /// Append events to the spool, then drop the oldest until the spool holds at most
    /// `max_bytes` of records (a single record larger than the bound is still kept alone, so the
    /// newest event is never the one lost).
    pub fn spool_push(
        &self,
        records: &[Vec<u8>],
        max_bytes: u64,
    ) -> Result<PushOutcome, StoreError> {
        self.run(|db| {
            let tx = db.begin_write()?;
            let mut out = PushOutcome::default();
            {
                let mut meta = tx.open_table(META)?;
                let mut spool = tx.open_table(SPOOL)?;
                let mut next = u64_of(meta.get(K_SPOOL_NEXT)?.as_ref().map(|g| g.value()));
                let mut bytes = u64_of(meta.get(K_SPOOL_BYTES)?.as_ref().map(|g| g.value()));
                let mut dropped_total =
                    u64_of(meta.get(K_SPOOL_DROPPED)?.as_ref().map(|g| g.value()));
                for r in records {
                    spool.insert(next, r.as_slice())?;
                    next = next.saturating_add(1);
                    bytes = bytes.saturating_add(r.len() as u64);
                    out.added += 1;
                }
                while bytes > max_bytes && spool.len()? > 1 {
                    let Some((_, v)) = spool.pop_first()? else {
                        break;
                    };
                    bytes = bytes.saturating_sub(v.value().len() as u64);
                    out.dropped += 1;
                }
                dropped_total = dropped_total.saturating_add(out.dropped);
                meta.insert(K_SPOOL_NEXT, next.to_le_bytes().as_slice())?;
                meta.insert(K_SPOOL_BYTES, bytes.to_le_bytes().as_slice())?;
                meta.insert(K_SPOOL_DROPPED, dropped_total.to_le_bytes().as_slice())?;
            }
            tx.commit()?;
            Ok(out)
        })
    }

    /// The oldest `max` spooled events, oldest first.
    pub fn spool_peek(&self, max: usize) -> Result<Vec<Spooled>, StoreError> {
        self.run_read(|db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(SPOOL)?;
            let mut out = Vec::new();
            for item in t.iter()?.take(max) {
                let (k, v) = item?;
                out.push(Spooled {
                    seq: k.value(),
                    data: v.value().to_vec(),
                });
            }
            Ok(out)
        })
    }

    /// Remove delivered events (those still present; some may have been dropped meanwhile).
    pub fn spool_ack(&self, seqs: &[u64]) -> Result<(), StoreError> {
        self.run(|db| {
            let tx = db.begin_write()?;
            {
                let mut meta = tx.open_table(META)?;
                let mut spool = tx.open_table(SPOOL)?;
                let mut bytes = u64_of(meta.get(K_SPOOL_BYTES)?.as_ref().map(|g| g.value()));
                for s in seqs {
                    if let Some(v) = spool.remove(*s)? {
                        bytes = bytes.saturating_sub(v.value().len() as u64);
                    }
                }
                meta.insert(K_SPOOL_BYTES, bytes.to_le_bytes().as_slice())?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Events in the spool.
    pub fn spool_len(&self) -> Result<u64, StoreError> {
        self.run_read(|db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(SPOOL)?;
            Ok(t.len()?)
        })
    }

    /// Bytes of records in the spool.
    pub fn spool_bytes(&self) -> Result<u64, StoreError> {
        self.meta_u64(K_SPOOL_BYTES)
    }

    /// Events dropped from the spool since it was created.
    pub fn spool_dropped_total(&self) -> Result<u64, StoreError> {
        self.meta_u64(K_SPOOL_DROPPED)
    }

    /// Whether a VM (by NSX external id) was tagged already.
    pub fn is_tagged(&self, external_id: &str) -> Result<bool, StoreError> {
        self.run_read(|db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(TAGGED)?;
            Ok(t.get(external_id)?.is_some())
        })
    }

    /// Record that a VM was tagged at `at_us`.
    pub fn mark_tagged(&self, external_id: &str, at_us: u64) -> Result<(), StoreError> {
        self.run(|db| {
            let tx = db.begin_write()?;
            {
                let mut t = tx.open_table(TAGGED)?;
                t.insert(external_id, at_us)?;
            }
            tx.commit()?;
            Ok(())
        })
    }
}

/// An isolation as stored: the absolute start and end, what stays open and who made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIsolation {
    /// The protected VM's inventory id.
    pub vm: String,
    /// Start, microseconds since the epoch.
    pub started_us: u64,
    /// End, microseconds since the epoch.
    pub expires_us: u64,
    /// The exclusions in their policy document form (`isolation.automatic.exclusions`).
    pub exclusions: Vec<serde_json::Value>,
    /// `manual` or `automatic`.
    pub origin: String,
    /// The administrator's note (manual).
    #[serde(default)]
    pub note: String,
    /// The detecting engine (automatic).
    #[serde(default)]
    pub engine: String,
    /// The detection's name (automatic).
    #[serde(default)]
    pub signature: String,
    /// Its signature id (automatic).
    #[serde(default)]
    pub sid: u32,
    /// The detecting flow (automatic).
    #[serde(default)]
    pub flow_id: Option<u64>,
    /// Frames dropped so far.
    #[serde(default)]
    pub dropped: u64,
    /// TCP flows reset so far.
    #[serde(default)]
    pub flows_reset: u64,
}

impl Store {
    /// Replace the stored isolations with `all` (the isolations in force), in one transaction.
    pub fn put_isolations(&self, all: &[StoredIsolation]) -> Result<(), StoreError> {
        self.put_isolations_with(|| all.to_vec())
    }

    /// [`Store::put_isolations`] of what `now_in_force` returns, called with the write
    /// transaction open. Write transactions take turns, so two writers that each read the
    /// isolations in force inside theirs (the API after its change, the keeper after its step)
    /// leave the newer reading in the file, whichever commits last.
    pub fn put_isolations_with(
        &self,
        now_in_force: impl Fn() -> Vec<StoredIsolation>,
    ) -> Result<(), StoreError> {
        self.run(|db| {
            let tx = db.begin_write()?;
            {
                let mut t = tx.open_table(ISOLATIONS)?;
                t.retain(|_, _| false)?;
                for i in &now_in_force() {
                    let bytes = serde_json::to_vec(i).map_err(|source| StoreError::Corrupt {
                        key: i.vm.clone(),
                        source,
                    })?;
                    t.insert(i.vm.as_str(), bytes.as_slice())?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Every stored isolation, by VM id.
    pub fn isolations(&self) -> Result<Vec<StoredIsolation>, StoreError> {
        self.all(ISOLATIONS)
    }
}

/// What a readable store holds (`svm state check`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Version of the stored policy, if one was pushed.
    pub policy_version: Option<u64>,
    /// Blocks stored.
    pub blocks: usize,
    /// Events waiting in the spool.
    pub spooled: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.policy_version {
            Some(v) => write!(f, "policy version {v}")?,
            None => write!(f, "no pushed policy")?,
        }
        write!(
            f,
            ", {} block(s), {} spooled event(s)",
            self.blocks, self.spooled
        )
    }
}

/// Open the store at `path` and read every record, in this process: what the child process of
/// [`check`] runs. redb may abort the process on a damaged file.
pub fn probe(path: &Path) -> Result<Summary, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Missing {
            path: path.to_owned(),
        });
    }
    let s = Store::open(path)?;
    Ok(Summary {
        policy_version: s.policy()?.map(|(v, _)| v),
        blocks: s.blocks()?.len(),
        spooled: s.spool_len()?,
    })
}

/// Read the store at `path` in a child process (`<svm> state probe <path>`), so a store that
/// makes redb abort is reported instead of taking this process down.
pub fn check(svm: &Path, path: &Path) -> Result<Summary, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Missing {
            path: path.to_owned(),
        });
    }
    if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0) {
        return Err(StoreError::Empty {
            path: path.to_owned(),
        });
    }
    let damaged = |detail: String| StoreError::Damaged {
        path: path.to_owned(),
        detail,
    };
    let out = std::process::Command::new(svm)
        .args(["state", "probe"])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| damaged(format!("cannot run {} to read it: {e}", svm.display())))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        return parse_summary(&stdout)
            .ok_or_else(|| damaged(format!("unexpected probe output {stdout:?}")));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(PROBE_IN_USE) => Err(StoreError::InUse {
            path: path.to_owned(),
        }),
        // An error the store reported: its message (the last line the child wrote).
        Some(c) if c != PANIC_EXIT => Err(damaged(
            stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map_or_else(|| format!("exit {c}"), |l| l.trim().to_owned()),
        )),
        // A panic (an abort in release builds): redb's own checks of the file's layout.
        _ => Err(damaged(
            "the file is truncated or damaged: the store library stopped on its layout".into(),
        )),
    }
}

/// Exit code of a panicking Rust program built to unwind (debug builds; release aborts).
const PANIC_EXIT: i32 = 101;

/// Exit code of `svm state probe` when another process holds the store.
pub const PROBE_IN_USE: i32 = 3;

/// Whether `e` says another process holds the store.
pub fn in_use(e: &StoreError) -> bool {
    matches!(e, StoreError::InUse { .. })
        || matches!(e, StoreError::Db(b) if matches!(**b, redb::Error::DatabaseAlreadyOpen))
}

/// The probe's output: `policy_version=<n|none> blocks=<n> spooled=<n>`.
fn parse_summary(text: &str) -> Option<Summary> {
    let mut policy_version = None;
    let (mut blocks, mut spooled) = (None, None);
    for part in text.split_whitespace() {
        match part.split_once('=')? {
            ("policy_version", "none") => {}
            ("policy_version", v) => policy_version = Some(v.parse().ok()?),
            ("blocks", v) => blocks = Some(v.parse().ok()?),
            ("spooled", v) => spooled = Some(v.parse().ok()?),
            _ => return None,
        }
    }
    Some(Summary {
        policy_version,
        blocks: blocks?,
        spooled: spooled?,
    })
}

/// The probe's output line for `s` (read back by [`check`]).
pub fn summary_line(s: &Summary) -> String {
    let v = s
        .policy_version
        .map_or_else(|| "none".to_owned(), |v| v.to_string());
    format!(
        "policy_version={v} blocks={} spooled={}",
        s.blocks, s.spooled
    )
}

/// Before the daemon opens its store: a missing file is fine (a new store); a damaged one is
/// refused, unless `reset`, which renames it to `<file>.damaged-<unix seconds>` (returned) so a
/// new store starts and the old one stays for recovery. A readable store is kept as it is,
/// `reset` or not.
pub fn prepare(svm: &Path, path: &Path, reset: bool) -> Result<Option<PathBuf>, StoreError> {
    if !path.exists() {
        return Ok(None);
    }
    match check(svm, path) {
        Ok(_) => Ok(None),
        Err(e @ (StoreError::Empty { .. } | StoreError::Damaged { .. })) if reset => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut aside = path.as_os_str().to_owned();
            aside.push(format!(".damaged-{secs}"));
            let aside = PathBuf::from(aside);
            std::fs::rename(path, &aside).map_err(|io| StoreError::Damaged {
                path: path.to_owned(),
                detail: format!("{e}; and it could not be moved aside: {io}"),
            })?;
            Ok(Some(aside))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn block(id: u64, last: u8) -> StoredBlock {
        StoredBlock {
            id,
            scope: "100".into(),
            addr: std::net::IpAddr::from([10, 0, 0, last]),
            created_us: 1,
            expires_us: 2,
            reason: "r".into(),
            engine: "manual".into(),
            origin: "manual".into(),
        }
    }

    #[test]
    fn isolations_are_replaced_as_a_whole_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let iso = |vm: &str| StoredIsolation {
            vm: vm.into(),
            started_us: 1,
            expires_us: 2,
            exclusions: vec![serde_json::json!({"profile": "dns-client"})],
            origin: "manual".into(),
            note: "n".into(),
            engine: String::new(),
            signature: String::new(),
            sid: 0,
            flow_id: None,
            dropped: 3,
            flows_reset: 4,
        };
        {
            let s = Store::open(&path).unwrap();
            assert!(s.isolations().unwrap().is_empty());
            s.put_isolations(&[iso("vm-1"), iso("vm-2")]).unwrap();
            s.put_isolations(&[iso("vm-2"), iso("vm-3")]).unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.isolations().unwrap(), vec![iso("vm-2"), iso("vm-3")]);
        s.put_isolations(&[]).unwrap();
        assert!(s.isolations().unwrap().is_empty());
    }

    #[test]
    fn decision_ids_reserved_in_a_range_follow_single_ones() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("state.redb")).unwrap();
        assert_eq!(s.next_decision_id().unwrap(), 1);
        assert_eq!(s.next_decision_ids(3).unwrap(), 2, "2, 3 and 4 are taken");
        assert_eq!(s.next_decision_id().unwrap(), 5);
        assert_eq!(s.next_decision_ids(0).unwrap(), 6, "nothing reserved");
        assert_eq!(s.next_decision_id().unwrap(), 6);
    }

    /// A new block takes the next decision id in the same transaction that stores it: the ids
    /// follow those reserved otherwise, and the stored block carries its id across a reopen.
    #[test]
    fn a_new_block_is_stored_with_the_next_decision_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let b = |addr: [u8; 4]| StoredBlock {
            id: 0,
            scope: "100".into(),
            addr: std::net::IpAddr::from(addr),
            created_us: 1,
            expires_us: 2,
            reason: "DoS.Generic.SYNFlood".into(),
            engine: "attack_blocker".into(),
            origin: "detection".into(),
        };
        {
            let s = Store::open(&path).unwrap();
            assert_eq!(s.next_decision_id().unwrap(), 1);
            assert_eq!(s.put_new_block(&b([10, 0, 0, 1])).unwrap(), 2);
            assert_eq!(s.put_new_block(&b([10, 0, 0, 2])).unwrap(), 3);
            assert_eq!(s.next_decision_id().unwrap(), 4);
        }
        let s = Store::open(&path).unwrap();
        let mut got: Vec<(u64, std::net::IpAddr)> =
            s.blocks().unwrap().iter().map(|b| (b.id, b.addr)).collect();
        got.sort();
        assert_eq!(got, [(2, [10, 0, 0, 1].into()), (3, [10, 0, 0, 2].into())]);
    }

    #[test]
    fn policy_blocks_and_spool_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let s = Store::open(&path).unwrap();
            assert_eq!(s.policy().unwrap(), None);
            s.put_policy(3, &serde_json::json!({"mode": "monitoring"}))
                .unwrap();
            s.put_blocks(&[block(1, 1), block(2, 2)]).unwrap();
            assert_eq!(
                s.remove_blocks(&[("100".into(), [10, 0, 0, 2].into())])
                    .unwrap(),
                1
            );
            s.spool_push(&[b"a".to_vec(), b"bb".to_vec()], 1 << 20)
                .unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(
            s.policy().unwrap(),
            Some((3, serde_json::json!({"mode": "monitoring"})))
        );
        assert_eq!(s.blocks().unwrap(), vec![block(1, 1)]);
        let sp = s.spool_peek(10).unwrap();
        assert_eq!(sp.len(), 2);
        assert_eq!(s.spool_bytes().unwrap(), 3);
        s.spool_ack(&[sp[0].seq]).unwrap();
        assert_eq!(s.spool_len().unwrap(), 1);
        assert_eq!(s.spool_bytes().unwrap(), 2);
    }

    #[test]
    fn an_empty_state_file_is_refused_not_started_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        std::fs::write(&path, b"").unwrap();
        let e = Store::open(&path).unwrap_err();
        assert!(matches!(e, StoreError::Empty { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("empty (0 bytes)") && text.contains("--reset-state"),
            "{text}"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as it was");
        // `check` says the same without running anything.
        let e = check(Path::new("/nonexistent/svm"), &path).unwrap_err();
        assert!(matches!(e, StoreError::Empty { .. }));
    }

    #[test]
    fn a_damaged_store_is_moved_aside_only_on_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        std::fs::write(&path, b"").unwrap();
        let svm = Path::new("/nonexistent/svm");
        assert!(prepare(svm, &path, false).is_err());
        assert!(path.exists());
        let aside = prepare(svm, &path, true).unwrap().unwrap();
        assert!(!path.exists());
        assert!(
            aside.to_string_lossy().contains("state.redb.damaged-"),
            "{aside:?}"
        );
        assert_eq!(
            prepare(svm, &path, false).unwrap(),
            None,
            "no file: a new store"
        );
    }

    #[test]
    fn probe_output_reads_back() {
        for s in [
            Summary {
                policy_version: Some(7),
                blocks: 3,
                spooled: 12,
            },
            Summary {
                policy_version: None,
                blocks: 0,
                spooled: 0,
            },
        ] {
            assert_eq!(parse_summary(&summary_line(&s)), Some(s.clone()));
        }
        assert_eq!(parse_summary("blocks=1"), None);
        assert_eq!(parse_summary("policy_version=x blocks=1 spooled=0"), None);
    }

    #[test]
    fn spool_bound_drops_oldest_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.redb")).unwrap();
        let recs: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 10]).collect();
        let out = s.spool_push(&recs, 55).unwrap();
        assert_eq!(out.added, 10);
        assert_eq!(out.dropped, 5);
        assert_eq!(s.spool_dropped_total().unwrap(), 5);
        let left = s.spool_peek(100).unwrap();
        assert_eq!(left.first().unwrap().data, vec![5u8; 10]);
        assert_eq!(left.len(), 5);
    }
}
