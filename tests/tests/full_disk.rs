//! A full disk under the state store (issue 15 item 5), on a real filesystem: a small tmpfs,
//! filled with a file, then freed. The store, the event spool and the control plane fail
//! loudly (the path in the health, the metrics and a `store_error` event), lose nothing they
//! acknowledged, keep what they could not write in memory, and work again without a restart
//! once space returns. Needs root (mount), as the live tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dataplane::blocks::BlockKey;
use dataplane::event::{BlockChange, Engine, Event, EventKind};
use dataplane::time::Timestamp;
use svm::control::{Control, ControlError, ManualClock};
use svm::events::{EventHub, HubConfig, LocalOutput, Record, Severity};
use svm::store::{Store, StoreHealth};
use svm_e2e::SmallDisk;
use svm_e2e::control::{T0, open_control};

/// Longer than the store's least time between two reopen attempts (1 s).
const REOPEN_WAIT: Duration = Duration::from_millis(1200);

fn record(i: u64, pad: usize) -> Record {
    let mut f = serde_json::Map::new();
    f.insert("i".into(), i.into());
    if pad > 0 {
        f.insert("pad".into(), "x".repeat(pad).into());
    }
    Record::new(Timestamp(i), "alert", Severity::Warning, f)
}

fn text(r: &Record) -> String {
    String::from_utf8_lossy(&r.to_bytes()).into_owned()
}

#[test]
fn the_store_fails_loudly_and_works_again_when_space_returns() {
    let disk = SmallDisk::mount("store-full", "8m");
    let path = disk.dir.join("state.redb");
    let s = Store::open(&path).unwrap();
    let doc = serde_json::json!({"mode": "monitoring"});
    s.put_policy(3, &doc).unwrap();
    s.spool_push(&[vec![1u8; 100]], u64::MAX).unwrap();
    assert_eq!(s.health(), StoreHealth::default());

    let filler = disk.fill();
    let big = vec![vec![7u8; 512 * 1024]; 4];
    assert!(s.spool_push(&big, u64::MAX).is_err());
    let h = s.health();
    assert!(h.errors_total >= 1, "{h:?}");
    let failing = h.failing.unwrap();
    assert!(failing.contains(path.to_str().unwrap()), "{failing}");
    assert!(failing.contains("No space left"), "{failing}");
    assert!(s.spool_push(&big, u64::MAX).is_err(), "still full");

    std::fs::remove_file(filler).unwrap();
    std::thread::sleep(REOPEN_WAIT);
    // Without reopening, redb refuses every write after a failed one (PreviousIo).
    assert_eq!(s.spool_push(&big, u64::MAX).unwrap().added, 4);
    let h = s.health();
    assert_eq!(h.failing, None);
    assert!(h.reopens_total >= 1, "{h:?}");
    // What was written before the disk filled is all there.
    assert_eq!(s.policy().unwrap(), Some((3, doc)));
    let spooled = s.spool_peek(10).unwrap();
    assert_eq!(spooled.len(), 5);
    assert_eq!(spooled[0].data, vec![1u8; 100]);
}

/// Keeps what it was given.
struct Seen(Arc<Mutex<Vec<Record>>>);

impl LocalOutput for Seen {
    fn write(&mut self, rec: &Record) -> std::io::Result<()> {
        self.0.lock().unwrap().push(rec.clone());
        Ok(())
    }
}

/// Events the store refuses wait in memory (counted); a `store_error` event with the file's
/// path reaches the local outputs at once; when space returns every event is spooled, in
/// order, within about a second and with no new event to trigger it.
#[test]
fn refused_events_are_spooled_when_space_returns() {
    let disk = SmallDisk::mount("spool-full", "8m");
    let store = Arc::new(Store::open(&disk.dir.join("s.redb")).unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hub = EventHub::start(
        Arc::clone(&store),
        HubConfig::default(),
        vec![Box::new(Seen(Arc::clone(&seen)))],
    )
    .unwrap();
    hub.emit(record(0, 0));
    hub.flush();
    let filler = disk.fill();
    // Records large enough that the store must grow its file.
    for i in 1..=4 {
        hub.emit(record(i, 600 * 1024));
        hub.flush();
    }
    assert!(hub.stats().pending.load(Ordering::Relaxed) >= 4);
    assert!(hub.stats().spool_errors.load(Ordering::Relaxed) >= 4);
    let errors: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(text)
        .filter(|t| t.contains("store_error"))
        .collect();
    assert_eq!(errors.len(), 1, "reported once: {errors:?}");
    assert!(
        errors[0].contains(disk.dir.to_str().unwrap()),
        "{}",
        errors[0]
    );
    assert!(store.health().failing.is_some());

    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.stats().pending.load(Ordering::Relaxed) > 0 {
        assert!(Instant::now() < deadline, "pending events never written");
        std::thread::sleep(Duration::from_millis(100));
    }
    let spooled: Vec<String> = store
        .spool_peek(100)
        .unwrap()
        .iter()
        .map(|s| String::from_utf8_lossy(&s.data).into_owned())
        .collect();
    assert_eq!(
        spooled.len(),
        6,
        "events 0 and 1, the store error, events 2..=4"
    );
    assert!(spooled[2].contains("store_error"));
    for (n, i) in [(0usize, 0u64), (1, 1), (3, 2), (4, 3), (5, 4)] {
        assert!(spooled[n].contains(&format!("\"i\":{i}")), "{n}");
    }
    assert_eq!(store.health().failing, None);
}

fn detection_block(addr: &str, expires: Timestamp) -> Event {
    Event {
        ts: T0,
        pcap_cnt: None,
        kind: EventKind::Block {
            key: BlockKey {
                scope: "100".parse().unwrap(),
                addr: addr.parse().unwrap(),
            },
            change: BlockChange::Added {
                engine: Engine::AttackBlocker,
                reason: Cow::Borrowed("Scan.Generic.TCP"),
                sid: Some(9_100_001),
                expires,
                duration_secs: 3600,
                flow_id: None,
            },
        },
    }
}

/// The control plane on a full disk: `degraded` (what `/healthz` says) and the status name
/// the store's path; a policy push is refused and not applied; a detection block made while
/// the disk is full is kept in memory and written once space is back, so it survives a
/// restart (it was lost before).
#[test]
fn a_detection_block_made_on_a_full_disk_survives_a_restart() {
    let disk = SmallDisk::mount("control-full", "8m");
    let path = disk.dir.join("state.redb");
    let clock = Arc::new(ManualClock::new(T0));
    let expires = T0.plus_secs(3600);
    {
        let c = open_control(&path, clock.clone());
        assert_eq!(c.degraded(), None);
        let filler = disk.fill();
        // A policy large enough that the store must grow its file (20,000 exclusions).
        let exclusions: Vec<serde_json::Value> = (0..20_000u32)
            .map(|i| {
                serde_json::json!({
                    "address": format!("10.{}.{}.0/24", i / 256 % 256, i % 256),
                    "vlan": i % 4000, "rule": "do_not_block"
                })
            })
            .collect();
        let big = serde_json::json!({"mode": "monitoring", "exclusions": exclusions});
        let refused = matches!(c.apply_policy(big, None), Err(ControlError::Store(_)));
        assert!(refused, "a policy push on a full disk is refused");
        assert_ne!(c.policy().document["mode"], "monitoring", "and not applied");
        let why = c.degraded().expect("degraded while the store fails");
        assert!(why.contains(path.to_str().unwrap()), "{why}");
        let st = c.status();
        assert!(st.store_errors_total >= 1);
        assert!(st.store_failing.is_some());
        // Within the reopen interval the store is still refusing: this block is not stored.
        c.ingest(&detection_block("10.0.0.66", expires));

        std::fs::remove_file(filler).unwrap();
        std::thread::sleep(REOPEN_WAIT);
        // The next event the control plane takes writes the waiting block first.
        c.ingest(&detection_block("10.0.0.67", expires));
        assert_eq!(c.degraded(), None);
    }
    let c = open_control(&path, clock);
    let mut stored: Vec<String> = c
        .stored_blocks()
        .unwrap()
        .into_iter()
        .map(|(k, _)| k.addr.to_string())
        .collect();
    stored.sort();
    assert_eq!(stored, ["10.0.0.66", "10.0.0.67"]);
}
