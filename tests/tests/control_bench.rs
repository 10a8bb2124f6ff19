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
