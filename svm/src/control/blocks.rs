//! Blocks as the API sees them: listings of the keeper's snapshot, manual blocks and unblocks
//! (commands to the keeper, waited for until it reported them), and the stored form of a block.

use std::net::IpAddr;

use dataplane::blocks::{BlockEntry, BlockKey, BlockOrigin, BlockResult};
use dataplane::event::Engine;
use dataplane::time::Timestamp;
use ipnet::IpNet;
use serde::Serialize;
use vlan::VlanScope;

use crate::store::{StoreError, StoredBlock};

use super::decisions::{Change, Known};
use super::{ControlError, ControlState, lock, rfc3339};

/// Filter of [`Control::blocks`](super::Control::blocks).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockFilter {
    /// Only this VLAN scope.
    pub scope: Option<VlanScope>,
    /// Only addresses inside this prefix (a host address is a /32 or /128).
    pub net: Option<IpNet>,
    /// Only blocks whose reason contains this text (case-insensitive).
    pub reason: Option<String>,
}

/// A block as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BlockView {
    /// Decision id.
    pub id: u64,
    /// VLAN scope (`untagged`, `100`, `100.200`).
    pub vlan: String,
    /// Blocked address.
    pub address: String,
    /// Detection name or admin note.
    pub reason: String,
    /// `attack_blocker` or `manual`.
    pub engine: String,
    /// `detection` or `manual`.
    pub origin: String,
    /// When it was made (RFC 3339).
    pub created: String,
    /// When it ends (RFC 3339).
    pub expires: String,
    /// Seconds left.
    pub remaining_secs: u64,
    /// Packets dropped because of the block so far (every worker's).
    pub hits: u64,
}

/// A manual block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRequest {
    /// VLAN scope.
    pub scope: VlanScope,
    /// Address.
    pub addr: IpAddr,
    /// Duration in seconds (1 minute .. 32768 minutes as the policy allows).
    pub duration_secs: u64,
    /// Admin note.
    pub reason: String,
}

/// Longest manual block, as the policy's `block_minutes` range: 32768 minutes.
pub const MAX_BLOCK_SECS: u64 = 32_768 * 60;

fn engine_name(name: &str) -> &'static str {
    if name == Engine::AttackBlocker.name() {
        Engine::AttackBlocker.name()
    } else {
        Engine::Manual.name()
    }
}

fn origin_name(o: BlockOrigin) -> &'static str {
    match o {
        BlockOrigin::Detection => "detection",
        BlockOrigin::Manual => "manual",
    }
}

impl ControlState {
    /// The blocks kept in the store, for the keeper to restore before it runs
    /// ([`dataplane::shared_blocks::Command::Restore`]): creation, expiry and origin as made.
    pub fn stored_blocks(&self) -> Result<Vec<(BlockKey, BlockEntry)>, StoreError> {
        Ok(self
            .store
            .blocks()?
            .iter()
            .filter_map(Self::unstored)
            .collect())
    }

    pub(super) fn unstored(b: &StoredBlock) -> Option<(BlockKey, BlockEntry)> {
        let scope = b.scope.parse::<VlanScope>().ok()?;
        let origin = if b.origin == "detection" {
            BlockOrigin::Detection
        } else {
            BlockOrigin::Manual
        };
        Some((
            BlockKey {
                scope,
                addr: b.addr,
            },
            BlockEntry {
                created: Timestamp(b.created_us),
                expires: Timestamp(b.expires_us),
                reason: b.reason.clone(),
                engine: engine_name(&b.engine),
                origin,
                first_hit: None,
                last_hit: None,
                hits: 0,
            },
        ))
    }

    fn view(key: &BlockKey, e: &BlockEntry, id: u64, now: Timestamp) -> BlockView {
        BlockView {
            id,
            vlan: key.scope.to_string(),
            address: key.addr.to_string(),
            reason: e.reason.clone(),
            engine: e.engine.to_owned(),
            origin: origin_name(e.origin).into(),
            created: rfc3339(e.created),
            expires: rfc3339(e.expires),
            remaining_secs: e.expires.since(now) / Timestamp::SECOND,
            hits: e.hits,
        }
    }

    pub(super) fn stored(key: &BlockKey, e: &BlockEntry, id: u64) -> StoredBlock {
        StoredBlock {
            id,
            scope: key.scope.to_string(),
            addr: key.addr,
            created_us: e.created.micros(),
            expires_us: e.expires.micros(),
            reason: e.reason.clone(),
            engine: e.engine.to_owned(),
            origin: origin_name(e.origin).into(),
        }
    }

    /// Have the keeper report what expired by now before a listing (it also does on its tick).
    pub(super) fn expire_now(&self) {
        self.table.expire(self.clock.now());
    }

    /// [`Control::blocks`](super::Control::blocks).
    pub(super) fn list_blocks(&self, filter: &BlockFilter) -> Vec<BlockView> {
        self.expire_now();
        let now = self.clock.now();
        let needle = filter.reason.as_ref().map(|r| r.to_lowercase());
        let list = self.table.list();
        let b = lock(&self.decisions);
        list.iter()
            .filter(|(k, e)| {
                e.expires > now
                    && filter.scope.is_none_or(|s| s == k.scope)
                    && filter.net.is_none_or(|n| n.contains(&k.addr))
                    && needle
                        .as_ref()
                        .is_none_or(|r| e.reason.to_lowercase().contains(r))
            })
            .map(|(k, e)| Self::view(k, e, b.known.get(k).map_or(0, |k| k.id), now))
            .collect()
    }

    /// [`Control::block`](super::Control::block).
    pub(super) fn add_block(&self, req: BlockRequest) -> Result<BlockView, ControlError> {
        if req.duration_secs == 0 || req.duration_secs > MAX_BLOCK_SECS {
            return Err(ControlError::InvalidRequest(format!(
                "duration must be 1..={MAX_BLOCK_SECS} seconds"
            )));
        }
        self.expire_now();
        let now = self.clock.now();
        let key = BlockKey {
            scope: req.scope,
            addr: req.addr,
        };
        let already =
            || ControlError::AlreadyBlocked(format!("{} in vlan {}", req.addr, req.scope));
        if self.table.snapshot().get(&key, now).is_some() {
            return Err(already());
        }
        // Stored before the keeper makes it, so that an acknowledged block survives a restart.
        let entry = BlockEntry {
            created: now,
            expires: now.plus_secs(req.duration_secs),
            reason: req.reason.clone(),
            engine: Engine::Manual.name(),
            origin: BlockOrigin::Manual,
            first_hit: None,
            last_hit: None,
            hits: 0,
        };
        let id = self.store.next_decision_id()?;
        self.store.put_block(&Self::stored(&key, &entry, id))?;
        lock(&self.decisions).known.insert(
            key,
            Known {
                id,
                origin: BlockOrigin::Manual,
                reason: req.reason.clone(),
                created: entry.created,
                expires: entry.expires,
                streamed: false,
            },
        );
        let undo = |e: ControlError| {
            lock(&self.decisions).known.remove(&key);
            let _ = self
                .store
                .remove_blocks(&[(key.scope.to_string(), key.addr)]);
            Err(e)
        };
        // The keeper reports the block (event, decision stream) through `ingest`.
        match self.table.block(key, now, req.duration_secs, req.reason) {
            Some(BlockResult::Added) => {
                self.wait_reported(|b| {
                    b.log
                        .iter()
                        .rev()
                        .any(|(_, c, d)| *c == Change::New && d.id == id)
                });
                Ok(Self::view(&key, &entry, id, now))
            }
            Some(BlockResult::AlreadyBlocked) => undo(already()),
            Some(BlockResult::Full) => undo(ControlError::TableFull),
            None => undo(ControlError::Stopping),
        }
    }

    /// [`Control::unblock`](super::Control::unblock).
    pub(super) fn lift_blocks(
        &self,
        scope: Option<VlanScope>,
        net: IpNet,
    ) -> Result<usize, ControlError> {
        self.expire_now();
        let now = self.clock.now();
        let keys: Vec<BlockKey> = self
            .table
            .list()
            .into_iter()
            .filter(|(k, e)| {
                e.expires > now && scope.is_none_or(|s| s == k.scope) && net.contains(&k.addr)
            })
            .map(|(k, _)| k)
            .collect();
        if keys.is_empty() {
            return Err(ControlError::NotFound(format!("no block matches {net}")));
        }
        // The keeper reports each removal, with every worker's hits, through `ingest`, which
        // updates the store and the decision stream.
        let mut removed = Vec::new();
        for k in keys {
            match self.table.unblock(k, now) {
                Some(Some(_)) => removed.push(k),
                Some(None) => {}
                None => return Err(ControlError::Stopping),
            }
        }
        self.wait_reported(|b| removed.iter().all(|k| !b.known.contains_key(k)));
        Ok(removed.len())
    }
}
