//! Durable state in one embedded transactional store (redb): the running policy document and its
//! version, the block list with absolute expiries, the event spool, and the VMs already tagged in
//! NSX. Every change is one write transaction, committed durably before the caller is answered,
//! so after `kill -9` the daemon restarts into the last acknowledged state.
//!
//! Blocks store their absolute expiry (microseconds since the epoch), never a remaining duration:
//! after a restart the remaining time is `expires - now`, and entries that ran out while the
//! daemon was down are reported as expired by the first sweep.

use std::path::Path;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BLOCKS: TableDefinition<&str, &[u8]> = TableDefinition::new("blocks");
const SPOOL: TableDefinition<u64, &[u8]> = TableDefinition::new("spool");
const TAGGED: TableDefinition<&str, u64> = TableDefinition::new("tagged_vms");

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
#[derive(Debug)]
pub struct Store {
    db: Database,
}

fn u64_of(bytes: Option<&[u8]>) -> u64 {
    bytes
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes)
}

impl Store {
    /// Open (or create) the store at `path`. Fails if another process holds it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        {
            tx.open_table(META)?;
            tx.open_table(BLOCKS)?;
            tx.open_table(SPOOL)?;
            tx.open_table(TAGGED)?;
        }
        tx.commit()?;
        Ok(Store { db })
    }

    fn meta_u64(&self, key: &str) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(META)?;
        let v = t.get(key)?;
        Ok(u64_of(v.as_ref().map(|g| g.value())))
    }

    /// The running policy: version and document, if one was ever applied.
    pub fn policy(&self) -> Result<Option<(u64, serde_json::Value)>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(META)?;
        let Some(doc) = t.get(K_POLICY_DOC)? else {
            return Ok(None);
        };
        let value = serde_json::from_slice(doc.value()).map_err(|source| StoreError::Corrupt {
            key: K_POLICY_DOC.into(),
            source,
        })?;
        let version = u64_of(t.get(K_POLICY_VERSION)?.as_ref().map(|g| g.value()));
        Ok(Some((version, value)))
    }

    /// Replace the running policy.
    pub fn put_policy(&self, version: u64, doc: &serde_json::Value) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(doc).map_err(|source| StoreError::Corrupt {
            key: K_POLICY_DOC.into(),
            source,
        })?;
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(META)?;
            t.insert(K_POLICY_DOC, bytes.as_slice())?;
            t.insert(K_POLICY_VERSION, version.to_le_bytes().as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A fresh decision id (persisted, so ids are never reused across restarts).
    pub fn next_decision_id(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_write()?;
        let id;
        {
            let mut t = tx.open_table(META)?;
            id = u64_of(t.get(K_NEXT_DECISION)?.as_ref().map(|g| g.value())).saturating_add(1);
            t.insert(K_NEXT_DECISION, id.to_le_bytes().as_slice())?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Insert or replace a block.
    pub fn put_block(&self, block: &StoredBlock) -> Result<(), StoreError> {
        self.put_blocks(std::slice::from_ref(block))
    }

    /// Insert or replace several blocks in one transaction.
    pub fn put_blocks(&self, blocks: &[StoredBlock]) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
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
    }

    /// Remove blocks by (scope, address); returns how many existed.
    pub fn remove_blocks(&self, keys: &[(String, std::net::IpAddr)]) -> Result<usize, StoreError> {
        let tx = self.db.begin_write()?;
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
    }

    /// Every stored block.
    pub fn blocks(&self) -> Result<Vec<StoredBlock>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(BLOCKS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            let b = serde_json::from_slice(v.value()).map_err(|source| StoreError::Corrupt {
                key: k.value().to_owned(),
                source,
            })?;
            out.push(b);
        }
        Ok(out)
    }

    /// Append events to the spool, then drop the oldest until the spool holds at most
    /// `max_bytes` of records (a single record larger than the bound is still kept alone, so the
    /// newest event is never the one lost).
    pub fn spool_push(
        &self,
        records: &[Vec<u8>],
        max_bytes: u64,
    ) -> Result<PushOutcome, StoreError> {
        let tx = self.db.begin_write()?;
        let mut out = PushOutcome::default();
        {
            let mut meta = tx.open_table(META)?;
            let mut spool = tx.open_table(SPOOL)?;
            let mut next = u64_of(meta.get(K_SPOOL_NEXT)?.as_ref().map(|g| g.value()));
            let mut bytes = u64_of(meta.get(K_SPOOL_BYTES)?.as_ref().map(|g| g.value()));
            let mut dropped_total = u64_of(meta.get(K_SPOOL_DROPPED)?.as_ref().map(|g| g.value()));
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
    }

    /// The oldest `max` spooled events, oldest first.
    pub fn spool_peek(&self, max: usize) -> Result<Vec<Spooled>, StoreError> {
        let tx = self.db.begin_read()?;
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
    }

    /// Remove delivered events (those still present; some may have been dropped meanwhile).
    pub fn spool_ack(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
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
    }

    /// Events in the spool.
    pub fn spool_len(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(SPOOL)?;
        Ok(t.len()?)
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
        let tx = self.db.begin_read()?;
        let t = tx.open_table(TAGGED)?;
        Ok(t.get(external_id)?.is_some())
    }

    /// Record that a VM was tagged at `at_us`.
    pub fn mark_tagged(&self, external_id: &str, at_us: u64) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(TAGGED)?;
            t.insert(external_id, at_us)?;
        }
        tx.commit()?;
        Ok(())
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
