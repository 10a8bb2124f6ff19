//! The worker's tests, one file a concern, each driving [`Worker::process`] with frames.

use std::sync::Arc;

use policy::{CompiledPolicy, Mode, Policy};
use vlan::VlanScope;

use super::*;
use crate::blocks::BlockResult;
use crate::decode::{self, DecodeEvent};
use crate::event::{Alert, BlockSkip, Engine, EventKind, Response, RuleVerdict};

mod burst;
mod decode_event;
mod forged;
mod retired_flow;
mod simulate_ips;
mod tunnel;
mod urgent;
mod web;

/// A worker for tests that make no block: its table has no keeper, so blocks it made would
/// never be reported or expire.
fn test_worker(cfg: WorkerConfig, policy: Arc<CompiledPolicy>) -> Worker {
    let blocks = crate::shared_blocks::SharedBlocks::new(1, 16)
        .clients
        .remove(0);
    Worker::new(cfg, policy, blocks)
}

/// A worker under the default policy with the attack blocker off (the tests of one engine).
fn worker_without_blocker(cfg: WorkerConfig) -> Worker {
    let mut p = Policy::default();
    p.attack_blocker.enabled = false;
    test_worker(cfg, Arc::new(CompiledPolicy::compile(p)))
}
