//! Durable state: policy and blocks survive a restart (drop + reopen, as after kill -9: every
//! change was committed before it was acknowledged), with remaining time from the absolute
//! expiry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use svm::control::{BlockFilter, BlockRequest, Control, ManualClock};
use svm_e2e::control::{T0, open_control};

#[test]
fn policy_and_blocks_survive_restart_with_remaining_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let clock = Arc::new(ManualClock::new(T0));
    {
        let c = open_control(&path, clock.clone());
        let doc = serde_json::json!({"mode": "monitoring", "exclusions": [
            {"address": "10.1.0.0/16", "vlan": "any", "rule": "do_not_block"}]});
        assert_eq!(c.apply_policy(doc, None).unwrap().version, 1);
        for (addr, mins) in [("10.0.0.1", 10), ("10.0.0.2", 1)] {
            c.block(BlockRequest {
                scope: "100".parse().unwrap(),
                addr: addr.parse().unwrap(),
                duration_secs: mins * 60,
                reason: "test".into(),
            })
            .unwrap();
        }
        // dropped here without any shutdown step
    }
    clock.advance_secs(100);
    let c = open_control(&path, clock.clone());
    let p = c.policy();
    assert_eq!(p.version, 1);
    assert_eq!(p.document["mode"], "monitoring");
    assert_eq!(c.compiled().policy().exclusions.len(), 1);
    let blocks = c.blocks(&BlockFilter::default());
    // 10.0.0.2 (1 minute) expired while the daemon was down; 10.0.0.1 has 500 s left.
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    assert_eq!(blocks[0].address, "10.0.0.1");
    assert_eq!(blocks[0].remaining_secs, 500);
    assert_eq!(c.status().blocked_hosts, 1);
    drop(c);
    // The expiry was persisted too.
    let c = open_control(&path, clock);
    assert_eq!(c.stored_blocks().unwrap().len(), 1);
}
