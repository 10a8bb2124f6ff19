//! Events in: every dataplane event through [`ControlState::ingest`] (block changes persisted
//! and streamed, protected VMs annotated and tagged, everything spooled), and the resync of the
//! store and the decision stream from the keeper's snapshot after keeper events were lost.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;

use dataplane::blocks::{BlockEntry, BlockKey, BlockOrigin};
use dataplane::event::{BlockChange, Engine, Event, EventKind, UnblockReason};
use dataplane::shared_blocks::BlockSnapshot;
use serde_json::Value;

use crate::events::Record;
use crate::nsx::TagRequest;
use crate::store::StoredBlock;

use super::decisions::{Change, Known};
use super::{ControlState, lock};

/// What [`ControlState::resync_blocks`] changed in the store and the decision stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resync {
    /// Blocks of the keeper's table the control plane had not taken in: stored and streamed
    /// as new decisions.
    pub added: u64,
    /// Blocks the control plane knew that are no longer in the keeper's table: removed from
    /// the store and streamed as deleted decisions.
    pub removed: u64,
}

impl ControlState {
    /// Take one dataplane event: persist block changes the engines made, annotate and tag
    /// protected VMs involved in alerts, and spool it. Duplicates from several workers (the
    /// same block added or expired in each) are reported once.
    pub fn ingest(&self, ev: &Event) {
        self.take_event(ev, true);
    }

    /// [`Self::ingest`] for a keeper event whose change a resync ([`Self::resync_blocks`])
    /// already took from the keeper's table: counted and spooled as any, the store and the
    /// decision stream left as the resync made them.
    pub fn ingest_reflected(&self, ev: &Event) {
        self.take_event(ev, false);
    }

    /// [`Self::ingest`]; with `track` false a block change leaves the store and the decision
    /// stream alone.
    fn take_event(&self, ev: &Event, track: bool) {
        self.save_unsaved();
        match &ev.kind {
            EventKind::Alert(a) => {
                let mut rec = Record::from_dataplane(ev);
                let mut involved = Vec::new();
                // Monitoring mode changes nothing unless the policy asks for tags there too.
                // A decoder report (a frame nested too deep) is one frame anyone can forge: it
                // tags no VM.
                let tag = (!a.monitoring || self.compiled().policy().tagging.in_monitoring_mode)
                    && a.engine != Engine::Decoder;
                for (role, addr) in [
                    ("source", a.packet.src_ip),
                    ("destination", a.packet.dst_ip),
                ] {
                    if let Some(vm) = self.inventory.by_ip(a.packet.scope, addr) {
                        involved.push(serde_json::json!({
                            "role": role, "id": vm.id, "name": vm.name,
                            "nsx_external_id": vm.nsx_external_id,
                        }));
                        if let (Some(t), true) = (&self.tagger, tag) {
                            self.counters.tag_requests.fetch_add(1, Ordering::Relaxed);
                            t.request(TagRequest {
                                vm: vm.clone(),
                                cause: rec.id().to_owned(),
                            });
                        }
                    }
                }
                if !involved.is_empty() {
                    rec.value
                        .insert("protected_vms".into(), Value::Array(involved));
                }
                self.hub.emit(rec);
            }
            EventKind::Block {
                key,
                change:
                    BlockChange::Added {
                        engine,
                        reason,
                        expires,
                        ..
                    },
            } => {
                let origin = if *engine == Engine::Manual {
                    BlockOrigin::Manual
                } else {
                    BlockOrigin::Detection
                };
                if track {
                    let mut b = lock(&self.decisions);
                    // A manual block was stored (and given its id) by `block` before the keeper
                    // made it; a detection block is stored here. A resync may have taken this
                    // very block in already (its event was late, not lost).
                    let known = match b.known.get(key) {
                        Some(k) if k.is(ev.ts, *expires) && k.streamed => None,
                        Some(k) if k.is(ev.ts, *expires) => Some(Known {
                            streamed: true,
                            ..k.clone()
                        }),
                        stale => {
                            // An earlier block of the key whose removal was lost with a full
                            // queue (the resync that follows would say so later).
                            if let Some(old) = stale.filter(|k| k.streamed).cloned() {
                                let d = self.decision(key, &old, ev.ts);
                                self.log_change(&mut b, Change::Deleted, d);
                            }
                            let entry = BlockEntry {
                                created: ev.ts,
                                expires: *expires,
                                reason: reason.to_string(),
                                engine: engine.name(),
                                origin,
                                first_hit: None,
                                last_hit: None,
                                hits: 0,
                            };
                            // The decision id and the block in one store commit; a store that
                            // refuses it keeps the block for later (`unsaved`).
                            let mut stored = Self::stored(key, &entry, 0);
                            let id = match self.store.put_new_block(&stored) {
                                Ok(id) => id,
                                Err(_) => {
                                    stored.id = self.store.next_decision_id().unwrap_or_default();
                                    let id = stored.id;
                                    lock(&self.unsaved).insert(stored.key(), stored);
                                    id
                                }
                            };
                            Some(Known {
                                id,
                                origin,
                                reason: entry.reason,
                                created: ev.ts,
                                expires: *expires,
                                streamed: true,
                            })
                        }
                    };
                    if let Some(known) = known {
                        b.known.insert(*key, known.clone());
                        let d = self.decision(key, &known, ev.ts);
                        self.log_change(&mut b, Change::New, d);
                    }
                }
                match origin {
                    BlockOrigin::Manual => &self.counters.blocks_added_manual,
                    BlockOrigin::Detection => &self.counters.blocks_added_detection,
                }
                .fetch_add(1, Ordering::Relaxed);
                self.hub.emit(Record::from_dataplane(ev));
            }
            // Counted by the keeper (`svm_blocks_refused_total`); reported here.
            EventKind::Block {
                change: BlockChange::Refused { .. },
                ..
            } => self.hub.emit(Record::from_dataplane(ev)),
            EventKind::Block {
                key,
                change:
                    BlockChange::Removed {
                        reason, created, ..
                    },
            } => {
                // Another block of the key (one `block` stored before the keeper reported the end
                // of this one, or one a resync took in) stays.
                let ours = track && {
                    let mut b = lock(&self.decisions);
                    match b.known.get(key) {
                        Some(k) if k.created != *created => false,
                        Some(_) => {
                            if let Some(k) = b.known.remove(key).filter(|k| k.streamed) {
                                let d = self.decision(key, &k, ev.ts);
                                self.log_change(&mut b, Change::Deleted, d);
                            }
                            true
                        }
                        None => true,
                    }
                };
                // A failed removal is retried implicitly: the stored block is expired or lifted,
                // and the next start restores and reports it again.
                if ours {
                    lock(&self.unsaved).remove(&StoredBlock::key_of(key.scope, key.addr));
                    let _ = self
                        .store
                        .remove_blocks(&[(key.scope.to_string(), key.addr)]);
                }
                match reason {
                    UnblockReason::Expired => &self.counters.unblocked_expired,
                    UnblockReason::Manual => &self.counters.unblocked_manual,
                    UnblockReason::Evicted => &self.counters.unblocked_evicted,
                }
                .fetch_add(1, Ordering::Relaxed);
                self.hub.emit(Record::from_dataplane(ev));
            }
            // Isolation events go where events go; their state is the isolation keeper's. While
            // a VM is isolated NSX gives it the quarantine tag.
            EventKind::Isolation { vm, change } => {
                let add = match change {
                    dataplane::isolation::IsolationChange::Started { .. } => Some(true),
                    dataplane::isolation::IsolationChange::Ended { .. } => Some(false),
                    dataplane::isolation::IsolationChange::WouldIsolate { .. } => None,
                };
                if let (Some(t), Some(add)) = (&self.tagger, add)
                    && let Some(pvm) = self.inventory.vms().iter().find(|v| *v.id == *vm.id)
                {
                    t.quarantine(pvm, add);
                }
                self.hub.emit(Record::from_dataplane(ev));
            }
        }
    }

    /// Bring the store and the decision stream in line with the keeper's published table
    /// `snap`, after keeper events were lost (their queue to the event pump was full): a block
    /// of the table the control plane does not know is stored and streamed as new; a block it
    /// knows that the table no longer holds (or holds as another block of the key) is removed
    /// from the store and streamed as deleted. Blocks over by now count as gone. A manual block
    /// `block` stored before the keeper made it is left alone until it is over. The events
    /// that were lost are not written again: the caller reports the loss (`engine_overload`).
    /// Late events of blocks the resync took in or removed change nothing (a block is told by
    /// its creation and expiry).
    pub fn resync_blocks(&self, snap: &BlockSnapshot) -> Resync {
        self.save_unsaved();
        let now = self.clock.now();
        let present: HashMap<BlockKey, BlockEntry> = snap
            .list()
            .into_iter()
            .filter(|(_, e)| e.expires > now)
            .collect();
        let mut out = Resync::default();
        let mut b = lock(&self.decisions);
        let gone: Vec<BlockKey> = b
            .known
            .iter()
            .filter(|(k, kn)| {
                let held = present.get(k).is_some_and(|e| kn.is(e.created, e.expires));
                !held && (kn.streamed || kn.expires <= now)
            })
            .map(|(k, _)| *k)
            .collect();
        for k in &gone {
            if let Some(kn) = b.known.remove(k).filter(|kn| kn.streamed) {
                let d = self.decision(k, &kn, now);
                self.log_change(&mut b, Change::Deleted, d);
            }
        }
        if !gone.is_empty() {
            let mut unsaved = lock(&self.unsaved);
            for k in &gone {
                unsaved.remove(&StoredBlock::key_of(k.scope, k.addr));
            }
            drop(unsaved);
            let keys: Vec<(String, IpAddr)> =
                gone.iter().map(|k| (k.scope.to_string(), k.addr)).collect();
            let _ = self.store.remove_blocks(&keys);
            out.removed = gone.len() as u64;
        }
        let mut missed: Vec<(&BlockKey, &BlockEntry)> = Vec::new();
        for (k, e) in &present {
            match b.known.get_mut(k) {
                Some(kn) if kn.is(e.created, e.expires) => {
                    if !kn.streamed {
                        kn.streamed = true;
                        let kn = kn.clone();
                        let d = self.decision(k, &kn, now);
                        self.log_change(&mut b, Change::New, d);
                        out.added += 1;
                    }
                }
                _ => missed.push((k, e)),
            }
        }
        // In the order the keeper made them, so decision ids grow with creation.
        missed.sort_by_key(|(k, e)| (e.created, **k));
        let first = self
            .store
            .next_decision_ids(missed.len() as u64)
            .unwrap_or_default();
        let mut stored = Vec::with_capacity(missed.len());
        for (id, (k, e)) in (first..).zip(missed) {
            let kn = Known {
                id,
                origin: e.origin,
                reason: e.reason.clone(),
                created: e.created,
                expires: e.expires,
                streamed: true,
            };
            stored.push(Self::stored(k, e, id));
            let d = self.decision(k, &kn, now);
            b.known.insert(*k, kn);
            self.log_change(&mut b, Change::New, d);
            out.added += 1;
        }
        if !stored.is_empty() && self.store.put_blocks(&stored).is_err() {
            let mut unsaved = lock(&self.unsaved);
            for s in stored {
                unsaved.insert(s.key(), s);
            }
        }
        out
    }

    /// Write the detection blocks the store refused earlier, if any.
    fn save_unsaved(&self) {
        let mut unsaved = lock(&self.unsaved);
        if unsaved.is_empty() {
            return;
        }
        let blocks: Vec<StoredBlock> = unsaved.values().cloned().collect();
        if self.store.put_blocks(&blocks).is_ok() {
            unsaved.clear();
        }
    }
}
