//! Events: the durable spool and the central-server sender (at least once, every id arrives),
//! the spool bound, and NSX tagging once per VM with both authentication modes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use dataplane::event::{Alert, Engine, Event, EventKind, PacketRef, Signature};
use dataplane::time::Timestamp;
use svm::control::{Control, ControlConfig, ControlState, Hooks, ManualClock};
use svm::events::central::{self, CentralConfig};
use svm::events::{EventHub, HubConfig, Record, Severity};
use svm::https::HttpsClient;
use svm::inventory::{Inventory, ProtectedVm, VmInterface};
use svm::nsx::{NsxAuth, NsxClient, NsxConfig, Tagger};
use svm::store::Store;
use svm_e2e::control::T0;
use svm_e2e::fakes::central::FakeCentral;
use svm_e2e::fakes::nsx::FakeNsx;
use svm_e2e::fakes::pki::TestCa;
use svm_e2e::fakes::server_tls;

async fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn event(i: u64) -> Record {
    let mut f = serde_json::Map::new();
    f.insert("n".into(), i.into());
    Record::new(Timestamp(i), "test", Severity::Info, f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_holds_events_while_central_is_down_and_delivers_each_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.redb")).unwrap());
    let hub = EventHub::start(store.clone(), HubConfig::default(), Vec::new()).unwrap();

    // PKI: the central server's CA checks our client certificate; we check its certificate.
    let central_ca = TestCa::new("central CA");
    let svm_ca = TestCa::new("svm CA");
    let server = central_ca.server("central");
    let tls = server_tls(&server, Some(&svm_ca));
    let client = HttpsClient::new(
        svm::tls::client_config(
            &central_ca.roots(),
            Some(svm_ca.client("svm-1", None).identity()),
        )
        .unwrap(),
        Duration::from_secs(5),
    );

    // Reserve a port, then close it: the sender gets "connection refused" until the fake is up.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = CentralConfig::new(format!("https://127.0.0.1:{port}/api/v1/events"));
    cfg.batch_max = 64;
    cfg.backoff_min = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(200);
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(central::run(hub.clone(), client, cfg, stop_rx));

    let mut ids = HashSet::new();
    for i in 0..500 {
        let r = event(i);
        ids.insert(r.id().to_owned());
        hub.emit(r);
    }
    let h = hub.clone();
    tokio::task::spawn_blocking(move || h.flush())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.spool_len().unwrap(), 500, "events wait on disk");
    assert!(
        hub.stats()
            .send_failures
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );

    let fake = FakeCentral::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let task = fake.start(listener, tls);
    // More events while it is up.
    for i in 500..600 {
        let r = event(i);
        ids.insert(r.id().to_owned());
        hub.emit(r);
    }
    wait_for("all events", 30, || fake.distinct() >= 600).await;
    wait_for("empty spool", 10, || store.spool_len().unwrap() == 0).await;
    let seen = fake.seen.lock().unwrap();
    let got: HashSet<String> = seen.ids.keys().cloned().collect();
    assert_eq!(got, ids, "no id missing, none invented");
    assert!(seen.ids.values().all(|n| *n == 1), "each id exactly once");
    assert!(
        seen.events
            .iter()
            .all(|e| (1..=4).contains(&e["severity"].as_u64().unwrap()))
    );
    drop(seen);
    let _ = stop.send(true);
    task.abort();
}

#[test]
fn spool_bound_drops_oldest_counts_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.redb")).unwrap());
    let one = event(0).to_bytes().len() as u64;
    let hub = EventHub::start(
        store.clone(),
        HubConfig {
            spool_max_bytes: one * 20,
            ..HubConfig::default()
        },
        Vec::new(),
    )
    .unwrap();
    for i in 0..100 {
        hub.emit(event(i));
        if i % 10 == 9 {
            hub.flush();
        }
    }
    hub.flush();
    let dropped = hub
        .stats()
        .spool_dropped
        .load(std::sync::atomic::Ordering::Relaxed);
    // 100 events plus one overflow event per overflowing batch, into room for about 20.
    assert!(dropped >= 70, "dropped {dropped}");
    assert_eq!(store.spool_dropped_total().unwrap(), dropped);
    let left = store.spool_peek(1000).unwrap();
    let values: Vec<serde_json::Value> = left
        .iter()
        .map(|s| serde_json::from_slice(&s.data).unwrap())
        .collect();
    // The newest test event is still there; the oldest are gone; an overflow event says so.
    assert!(values.iter().any(|v| v["n"] == 99));
    assert!(!values.iter().any(|v| v["n"] == 0));
    assert!(
        values
            .iter()
            .any(|v| v["event_type"] == "spool_overflow" && v["severity"] == 3)
    );
    assert!(store.spool_bytes().unwrap() <= one * 20 + 200);
}

fn alert_from(src: [u8; 4]) -> Event {
    Event {
        ts: T0,
        pcap_cnt: None,
        kind: EventKind::Alert(Alert::new(
            PacketRef {
                flow_id: Some(1),
                scope: "100".parse().unwrap(),
                src_ip: src.into(),
                dst_ip: [192, 0, 2, 1].into(),
                ports: Some((40000, 22)),
                proto: Some(dataplane::decode::IpProto::Tcp),
                to_server: Some(true),
            },
            Engine::AttackBlocker,
            Signature {
                name: "Scan.Generic.TCP".into(),
                gid: 1,
                sid: 1,
                rev: 1,
                category: "Attempted Information Leak".into(),
                severity: 2,
            },
        )),
    }
}

/// The rig's protected VM: 10.0.0.5 in VLAN 100.
fn vm_17() -> ProtectedVm {
    ProtectedVm {
        id: "vm-17".into(),
        name: "web-01".into(),
        nsx_external_id: "50123456-aaaa-bbbb-cccc-0123456789ab".into(),
        interfaces: vec![VmInterface {
            mac: Some("00:50:56:01:02:03".into()),
            vlan: "100".into(),
            addresses: vec!["10.0.0.5".parse().unwrap()],
        }],
    }
}

/// A control state wired to an NSX fake (over TLS) and an inventory with one protected VM,
/// 10.0.0.5 in VLAN 100.
struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    hub: EventHub,
    fake: FakeNsx,
    task: tokio::task::JoinHandle<()>,
    control: ControlState,
}

async fn rig(session: bool, fail_first: u32) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.redb")).unwrap());
    let hub = EventHub::start(store.clone(), HubConfig::default(), Vec::new()).unwrap();
    let nsx_ca = TestCa::new("nsx CA");
    let fake = FakeNsx::new("svc-svm@corp", "p&ss=word");
    fake.rec.lock().unwrap().fail_next = fail_first;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let task = fake.start(listener, server_tls(&nsx_ca.server("nsx"), None));
    let (user, password) = ("svc-svm@corp".to_owned(), "p&ss=word".into());
    let auth = if session {
        NsxAuth::Session { user, password }
    } else {
        NsxAuth::Basic { user, password }
    };
    let mut cfg = NsxConfig::new(base, auth);
    cfg.backoff_min = Duration::from_millis(20);
    let http = HttpsClient::new(
        svm::tls::client_config(&nsx_ca.roots(), None).unwrap(),
        Duration::from_secs(5),
    );
    let clock = Arc::new(ManualClock::new(T0));
    let tagger = Tagger::spawn(
        Arc::new(NsxClient::new(cfg, http)),
        store.clone(),
        hub.clone(),
        clock.clone(),
    );
    let inventory = Inventory::new(vec![vm_17()]).unwrap();
    let control = ControlState::open(
        ControlConfig::default(),
        store.clone(),
        hub.clone(),
        clock,
        Arc::new(inventory),
        Some(tagger),
        Hooks::default(),
        // Alerts only: no keeper runs behind the table.
        dataplane::shared_blocks::SharedBlocks::new(0, 16).control,
    )
    .unwrap();
    Rig {
        _dir: dir,
        store,
        hub,
        fake,
        task,
        control,
    }
}

async fn tag_once(session: bool) {
    let Rig {
        _dir,
        store,
        hub,
        fake,
        task,
        control,
    } = rig(session, 2).await;
    for _ in 0..5 {
        control.ingest(&alert_from([10, 0, 0, 5]));
    }
    // Not a protected VM (wrong address): no tag.
    control.ingest(&alert_from([10, 0, 0, 6]));
    wait_for("tag", 20, || !fake.successes().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ok = fake.successes();
    assert_eq!(ok.len(), 1, "exactly one add_tags: {ok:?}");
    assert_eq!(
        ok[0],
        serde_json::json!({"external_id": "50123456-aaaa-bbbb-cccc-0123456789ab",
            "tags": [{"scope": "IDS_IPS", "tag": "threat=high"}]})
    );
    assert_eq!(
        fake.rec.lock().unwrap().calls.len(),
        3,
        "two 503s retried, then success"
    );
    if session {
        assert_eq!(fake.rec.lock().unwrap().sessions, 1);
    }
    assert!(
        store
            .is_tagged("50123456-aaaa-bbbb-cccc-0123456789ab")
            .unwrap()
    );
    // The alerts name the VM and a vm_tagged event records the tag.
    let h = hub.clone();
    tokio::task::spawn_blocking(move || h.flush())
        .await
        .unwrap();
    let spooled: Vec<serde_json::Value> = store
        .spool_peek(100)
        .unwrap()
        .iter()
        .map(|s| serde_json::from_slice(&s.data).unwrap())
        .collect();
    let tagged: Vec<_> = spooled
        .iter()
        .filter(|v| v["event_type"] == "vm_tagged")
        .collect();
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0]["vm"]["id"], "vm-17");
    assert_eq!(tagged[0]["attempts"], 3);
    let alerts: Vec<_> = spooled
        .iter()
        .filter(|v| v["event_type"] == "alert")
        .collect();
    assert_eq!(alerts.len(), 6);
    assert_eq!(alerts[0]["protected_vms"][0]["role"], "source");
    assert!(
        alerts
            .iter()
            .all(|a| a["id"].is_string() && a["severity"] == 3)
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsx_tag_added_once_per_vm_basic_auth() {
    tag_once(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsx_tag_added_once_per_vm_session_auth() {
    tag_once(true).await;
}

/// Monitoring mode changes nothing: no tag unless the policy's `tagging.in_monitoring_mode` asks.
async fn monitoring_tags(policy_tags: bool) -> usize {
    let Rig {
        _dir,
        fake,
        task,
        control,
        ..
    } = rig(false, 0).await;
    let doc =
        serde_json::json!({"mode": "monitoring", "tagging": {"in_monitoring_mode": policy_tags}});
    control.apply_policy(doc, None).unwrap();
    let mut alert = alert_from([10, 0, 0, 5]);
    if let EventKind::Alert(a) = &mut alert.kind {
        a.monitoring = true;
    }
    control.ingest(&alert);
    if policy_tags {
        wait_for("tag", 20, || !fake.successes().is_empty()).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    task.abort();
    fake.successes().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_mode_tags_only_when_the_policy_says_so() {
    assert_eq!(
        monitoring_tags(false).await,
        0,
        "no tag in monitoring mode by default"
    );
    assert_eq!(
        monitoring_tags(true).await,
        1,
        "tag when tagging.in_monitoring_mode is set"
    );
}

/// Issue 18: while a protected VM is isolated NSX gives it the quarantine tag (default scope
/// `IDS_IPS`, tag `isolated`): added at `isolation_started` (a 503 retried), removed at
/// `isolation_ended`, in that order; the threat tag is not touched.
#[tokio::test]
async fn an_isolated_vm_carries_the_quarantine_tag_until_released() {
    use dataplane::isolation::{IsolationChange, IsolationEnd, IsolationOrigin};
    let Rig {
        _dir,
        fake,
        task,
        control,
        ..
    } = rig(false, 1).await;
    let vms = vec![vm_17()];
    let protected = svm::isolation::protected(&vms).unwrap();
    let vm = Arc::clone(protected.get("vm-17").unwrap());
    let origin = IsolationOrigin::Manual {
        note: "test".into(),
    };
    let ev = |change| Event {
        ts: T0,
        pcap_cnt: None,
        kind: EventKind::Isolation {
            vm: Arc::clone(&vm),
            change,
        },
    };
    control.ingest(&ev(IsolationChange::Started {
        origin: origin.clone(),
        expires: T0.plus_secs(600),
        duration_secs: 600,
        exclusions: vec![],
        flows_reset: 0,
    }));
    control.ingest(&ev(IsolationChange::Ended {
        reason: IsolationEnd::Manual,
        origin,
        started: T0,
        dropped: 0,
        flows_reset: 0,
    }));
    wait_for("the removal", 20, || fake.all_successes().len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let tag = serde_json::json!({"external_id": "50123456-aaaa-bbbb-cccc-0123456789ab",
        "tags": [{"scope": "IDS_IPS", "tag": "isolated"}]});
    assert_eq!(
        fake.all_successes(),
        [
            ("add_tags".to_owned(), tag.clone()),
            ("remove_tags".to_owned(), tag)
        ]
    );
    // The first add_tags was refused (503) and retried.
    assert_eq!(fake.rec.lock().unwrap().calls.len(), 3);
    task.abort();
}

/// The quarantine tag queue is bounded: with NSX held away, more isolation changes than the
/// queue holds drop some (counted, `engine_overload` with queue `nsx_quarantine`), and once
/// NSX answers again the sender resyncs from the isolation table, so every VM's quarantine tag
/// ends equal to its isolation state, not to the changes that happened to be queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_quarantine_queue_resyncs_every_vm_from_the_isolation_table() {
    use dataplane::isolation::SharedIsolation;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.redb")).unwrap());
    let hub = EventHub::start(store.clone(), HubConfig::default(), Vec::new()).unwrap();
    let nsx_ca = TestCa::new("nsx CA");
    let fake = FakeNsx::new("svc-svm@corp", "pw");
    // NSX is away: every call fails until released.
    fake.rec.lock().unwrap().fail_next = u32::MAX;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let task = fake.start(listener, server_tls(&nsx_ca.server("nsx"), None));
    let mut cfg = NsxConfig::new(
        base,
        NsxAuth::Basic {
            user: "svc-svm@corp".into(),
            password: "pw".into(),
        },
    );
    cfg.backoff_min = Duration::from_millis(10);
    cfg.backoff_max = Duration::from_millis(50);
    let http = HttpsClient::new(
        svm::tls::client_config(&nsx_ca.roots(), None).unwrap(),
        Duration::from_secs(5),
    );
    let clock = Arc::new(ManualClock::new(T0));
    let depth = 4;
    let tagger = Tagger::spawn_with_queues(
        Arc::new(NsxClient::new(cfg, http)),
        store.clone(),
        hub.clone(),
        clock.clone(),
        svm::nsx::TagQueues {
            tags: 16,
            quarantine: depth,
        },
    );
    let quarantine_drops = Arc::clone(tagger.quarantine_overload());
    let vms: Vec<ProtectedVm> = (1..=4)
        .map(|i| ProtectedVm {
            id: format!("vm-{i}"),
            name: format!("web-{i}"),
            nsx_external_id: format!("ext-{i}"),
            interfaces: vec![VmInterface {
                mac: Some(format!("00:50:56:00:00:0{i}")),
                vlan: "100".into(),
                addresses: vec![format!("10.0.0.{i}").parse().unwrap()],
            }],
        })
        .collect();
    let protected = Arc::new(svm::isolation::protected(&vms).unwrap());
    let SharedIsolation {
        keeper, control, ..
    } = SharedIsolation::new(protected, 1);
    let core = Arc::new(
        ControlState::open(
            ControlConfig::default(),
            store.clone(),
            hub.clone(),
            clock,
            Arc::new(Inventory::new(vms.clone()).unwrap()),
            Some(tagger),
            Hooks {
                isolation: Some(control.clone()),
                ..Hooks::default()
            },
            dataplane::shared_blocks::SharedBlocks::new(0, 16).control,
        )
        .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let keeper_thread = {
        let (stop, weak) = (Arc::clone(&stop), Arc::downgrade(&core));
        std::thread::spawn(move || {
            keeper.run(&stop, svm::daemon::now, Duration::from_millis(20), |ev| {
                if let Some(c) = weak.upgrade() {
                    c.ingest(&ev);
                }
            })
        })
    };
    // Three isolations of every VM started and ended, then vm-1 and vm-3 isolated again: 26
    // changes for a queue of 4 (and one in the sender's hands).
    let iso = control.clone();
    tokio::task::spawn_blocking(move || {
        for _ in 0..3 {
            for vm in ["vm-1", "vm-2", "vm-3", "vm-4"] {
                iso.enable(vm, svm::daemon::now(), 600, vec![], "t".into())
                    .unwrap();
            }
            for vm in ["vm-1", "vm-2", "vm-3", "vm-4"] {
                iso.disable(vm, svm::daemon::now()).unwrap();
            }
        }
        for vm in ["vm-1", "vm-3"] {
            iso.enable(vm, svm::daemon::now(), 600, vec![], "t".into())
                .unwrap();
        }
    })
    .await
    .unwrap();
    wait_for("drops", 10, || {
        quarantine_drops.dropped.load(Ordering::Relaxed) > 0
    })
    .await;
    // Let the keeper's last events reach the tagger, then let NSX answer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.rec.lock().unwrap().fail_next = 0;
    let isolated = |i: usize| i == 1 || i == 3;
    let in_step =
        || (1..=4).all(|i| fake.holds(&format!("ext-{i}"), "IDS_IPS/isolated") == isolated(i));
    wait_for("tags equal to the isolation table", 20, in_step).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(in_step(), "{:?}", fake.rec.lock().unwrap().tags);
    let listed: Vec<String> = control
        .list(svm::daemon::now())
        .iter()
        .map(|i| i.vm.id.to_string())
        .collect();
    assert_eq!(listed, ["vm-1", "vm-3"]);

    let dropped = quarantine_drops.dropped.load(Ordering::Relaxed);
    assert!(dropped > 0 && dropped < 26, "{dropped}");
    let h = hub.clone();
    tokio::task::spawn_blocking(move || h.flush())
        .await
        .unwrap();
    let overloads: Vec<serde_json::Value> = store
        .spool_peek(1000)
        .unwrap()
        .iter()
        .filter_map(|s| serde_json::from_slice::<serde_json::Value>(&s.data).ok())
        .filter(|v| v["event_type"] == "engine_overload")
        .collect();
    assert_eq!(overloads.len(), 1, "{overloads:?}");
    assert_eq!(overloads[0]["queue"], "nsx_quarantine");
    stop.store(true, Ordering::Relaxed);
    drop(core);
    keeper_thread.join().unwrap();
    task.abort();
}
