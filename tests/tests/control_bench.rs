//! Control-plane figures (printed, not asserted; see docs/benchmarks.md, "Control plane"):
//! `cargo test --release -p svm-e2e --test control_bench -- --ignored --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;
use svm::control::{Control, ManualClock};
use svm::events::{EventHub, HubConfig, Record, Severity};
use svm::store::Store;
use svm_e2e::control::{Harness, T0, open_control};

fn policy_with(n: u32) -> serde_json::Value {
    let exclusions: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let rule = ["default", "do_not_scan", "do_not_block"][(i % 3) as usize];
            serde_json::json!({
                "address": format!("10.{}.{}.0/24", i / 256 % 256, i % 256),
                "vlan": 1 + i % 4000,
                "rule": rule,
            })
        })
        .collect();
    serde_json::json!({"mode": "standard", "exclusions": exclusions})
}

#[test]
#[ignore = "benchmark"]
fn bench_policy_push_10k_exclusions() {
    let dir = tempfile::tempdir().unwrap();
    let c = open_control(&dir.path().join("s.redb"), Arc::new(ManualClock::new(T0)));
    let doc = policy_with(10_000);
    let mut times = Vec::new();
    for _ in 0..10 {
        let d = doc.clone();
        let t = Instant::now();
        c.apply_policy(d, None).unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "policy push, 10k exclusions, ControlState::apply_policy (validate+compile+commit+swap): median {:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_policy_push_10k_over_api() {
    let h = Harness::start().await;
    let body = policy_with(10_000).to_string();
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let r = h
            .call(&h.admin, Method::PUT, "/api/v1/policy", &[], &body)
            .await
            .unwrap();
        assert!(r.status.is_success());
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "policy push, 10k exclusions ({} KiB), PUT over mTLS until applied: median {:?}, max {:?}",
        body.len() / 1024,
        times[times.len() / 2],
        times[times.len() - 1]
    );
    h.stop();
}

#[test]
#[ignore = "benchmark"]
fn bench_events_through_spool() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.redb")).unwrap());
    let hub = EventHub::start(store.clone(), HubConfig::default(), Vec::new()).unwrap();
    let n = 100_000u64;
    let t = Instant::now();
    for i in 0..n {
        let mut f = serde_json::Map::new();
        f.insert("n".into(), i.into());
        f.insert("src_ip".into(), "10.0.0.1".into());
        hub.emit(Record::new(T0, "alert", Severity::Error, f));
    }
    hub.flush();
    let el = t.elapsed();
    #[allow(clippy::cast_precision_loss)]
    let rate = n as f64 / el.as_secs_f64();
    println!(
        "events into the durable spool: {n} in {el:?} = {rate:.0} events/s ({} bytes spooled)",
        store.spool_bytes().unwrap()
    );
    let t = Instant::now();
    let mut drained = 0;
    loop {
        let b = store.spool_peek(500).unwrap();
        if b.is_empty() {
            break;
        }
        drained += b.len();
        store
            .spool_ack(&b.iter().map(|s| s.seq).collect::<Vec<_>>())
            .unwrap();
    }
    let el = t.elapsed();
    #[allow(clippy::cast_precision_loss)]
    let rate = drained as f64 / el.as_secs_f64();
    println!("spool drain (peek 500 + ack): {drained} in {el:?} = {rate:.0} events/s");
    let _ = Duration::ZERO;
}

/// Detection blocks through `ControlState::ingest` as the event pump hands them in: each is
/// stored (with its decision id) and streamed, and its event spooled by the hub.
#[test]
#[ignore = "benchmark"]
fn bench_detection_blocks_ingested() {
    use dataplane::blocks::BlockKey;
    use dataplane::event::{BlockChange, Engine, Event, EventKind};
    let dir = tempfile::tempdir().unwrap();
    let c = open_control(&dir.path().join("s.redb"), Arc::new(ManualClock::new(T0)));
    let n = 2_000u32;
    let t = Instant::now();
    for i in 0..n {
        let [_, a, b, d] = i.to_be_bytes();
        c.ingest(&Event {
            ts: T0,
            pcap_cnt: None,
            kind: EventKind::Block {
                key: BlockKey {
                    scope: "100".parse().unwrap(),
                    addr: std::net::IpAddr::from([10, a, b, d]),
                },
                change: BlockChange::Added {
                    engine: Engine::AttackBlocker,
                    reason: "DoS.Generic.SYNFlood".into(),
                    sid: None,
                    expires: T0.plus_secs(3600),
                    duration_secs: 3600,
                    flow_id: None,
                },
            },
        });
    }
    let el = t.elapsed();
    c.hub().flush();
    let stored = c.store().blocks().unwrap().len();
    assert_eq!(stored, n as usize);
    #[allow(clippy::cast_precision_loss)]
    let rate = f64::from(n) / el.as_secs_f64();
    println!("detection blocks through ControlState::ingest: {n} in {el:?} = {rate:.0} blocks/s");
}

/// What `ingest` stores a detection block with, measured in one run with the rounds
/// interleaved (the disk is shared and noisy): the decision id and the block in two
/// transactions (`next_decision_id` + `put_block`, as before) against one (`put_new_block`).
#[test]
#[ignore = "benchmark"]
fn bench_block_store_one_commit_against_two() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let block = |i: u32| {
        let [_, a, b, d] = i.to_be_bytes();
        svm::store::StoredBlock {
            id: 0,
            scope: "100".into(),
            addr: std::net::IpAddr::from([10, a, b, d]),
            created_us: T0.micros(),
            expires_us: T0.plus_secs(3600).micros(),
            reason: "DoS.Generic.SYNFlood".into(),
            engine: "attack_blocker".into(),
            origin: "detection".into(),
        }
    };
    let (rounds, per) = (20u32, 50u32);
    let (mut two, mut one) = (Duration::ZERO, Duration::ZERO);
    let mut i = 0u32;
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..per {
            let mut b = block(i);
            b.id = store.next_decision_id().unwrap();
            store.put_block(&b).unwrap();
            i += 1;
        }
        two += t.elapsed();
        let t = Instant::now();
        for _ in 0..per {
            store.put_new_block(&block(i)).unwrap();
            i += 1;
        }
        one += t.elapsed();
    }
    assert_eq!(store.blocks().unwrap().len(), i as usize);
    let n = f64::from(rounds * per);
    println!(
        "detection block stored, {} each, interleaved: two commits {:.0} blocks/s, one commit {:.0} blocks/s",
        rounds * per,
        n / two.as_secs_f64(),
        n / one.as_secs_f64()
    );
}
