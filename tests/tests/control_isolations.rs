//! `/api/v1/isolations` over the real mTLS API: a `ControlState` whose isolation table is the
//! dataplane's (`SharedIsolation`, its keeper on a thread of its own on the wall clock, as
//! `svm run` runs it), with a two-VM inventory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dataplane::isolation::SharedIsolation;
use hyper::{Method, StatusCode};
use svm::control::{Control, Hooks, ManualClock};
use svm_e2e::control::{Harness, T0, open_control_with};

const INVENTORY: &str = r#"[
    {"id": "vm-1", "name": "a", "nsx_external_id": "e1",
     "interfaces": [{"vlan": "100", "mac": "02:00:00:00:00:01"}]},
    {"id": "vm-2", "name": "b", "nsx_external_id": "e2",
     "interfaces": [{"vlan": "100", "mac": "02:00:00:00:00:02"}]}
]"#;

async fn harness(stop: &Arc<AtomicBool>) -> Harness {
    let vms: Vec<svm::inventory::ProtectedVm> = serde_json::from_str(INVENTORY).unwrap();
    let protected = Arc::new(svm::isolation::protected(&vms).unwrap());
    let SharedIsolation {
        keeper, control, ..
    } = SharedIsolation::new(protected, 1);
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let core = open_control_with(
        &dir.path().join("state.redb"),
        clock.clone(),
        Hooks {
            isolation: Some(control),
            ..Hooks::default()
        },
    );
    let weak = Arc::downgrade(&core);
    let stop = Arc::clone(stop);
    std::thread::spawn(move || {
        keeper.run(&stop, svm::daemon::now, Duration::from_millis(20), |ev| {
            if let Some(c) = weak.upgrade() {
                c.ingest(&ev);
            }
        })
    });
    Harness::serve(dir, core, clock).await
}

async fn call(
    h: &Harness,
    who: &svm::https::HttpsClient,
    m: Method,
    path: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let r = h.call(who, m, path, &[], body).await.unwrap();
    let v = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    (r.status, v)
}

#[tokio::test]
async fn isolate_list_get_and_release_with_roles() {
    let stop = Arc::new(AtomicBool::new(false));
    let h = harness(&stop).await;
    let post = |who, body: &'static str| {
        let h = &h;
        async move { call(h, who, Method::POST, "/api/v1/isolations", body).await }
    };
    // Changing needs the admin role.
    let (s, _) = post(&h.reader, r#"{"vm":"vm-1"}"#).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = post(&h.admin, r#"{"vm":"vm-9"}"#).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = post(&h.admin, r#"{"vm":"vm-1","minutes":0}"#).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = post(&h.admin, r#"{"vm":"vm-1","exclusions":[{"ports":["x"]}]}"#).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("exclusions[0].ports[0]"), "{v}");
    let (s, v) = post(&h.admin, r#"{"vm":"vm-1","unknown":1}"#).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    let (s, v) = post(
        &h.admin,
        r#"{"vm":"vm-1","minutes":5,"note":"ticket 7","exclusions":[{"remote":"10.0.0.0/8","protocol":"tcp","ports":[443]}]}"#,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["vm"], "vm-1");
    assert_eq!(v["origin"], "manual");
    assert_eq!(v["note"], "ticket 7");
    let left = v["seconds_left"].as_u64().unwrap();
    assert!((295..=300).contains(&left), "{v}");
    assert_eq!(v["exclusions"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["exclusions"][0]["remote"], "10.0.0.0/8", "{v}");
    let (s, _) = post(&h.admin, r#"{"vm":"vm-1"}"#).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Without exclusions: the DNS and DHCP profiles.
    let (s, v) = post(&h.admin, r#"{"vm":"vm-2"}"#).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["exclusions"].as_array().unwrap().len(), 4, "{v}");
    assert!(v["seconds_left"].as_u64().unwrap() > 479 * 60, "{v}");

    // Reading needs the read-only role.
    let (s, list) = call(&h, &h.reader, Method::GET, "/api/v1/isolations", "").await;
    assert_eq!(s, StatusCode::OK);
    let vms: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["vm"].as_str().unwrap())
        .collect();
    assert_eq!(vms, ["vm-1", "vm-2"]);
    let (s, _) = call(&h, &h.nobody, Method::GET, "/api/v1/isolations", "").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, one) = call(&h, &h.reader, Method::GET, "/api/v1/isolations/vm-1", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["note"], "ticket 7");

    // Release.
    let (s, _) = call(&h, &h.reader, Method::DELETE, "/api/v1/isolations/vm-1", "").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(&h, &h.admin, Method::DELETE, "/api/v1/isolations/vm-1", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["vm"], "vm-1");
    let (s, _) = call(&h, &h.admin, Method::DELETE, "/api/v1/isolations/vm-1", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&h, &h.reader, Method::GET, "/api/v1/isolations/vm-1", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, list) = call(&h, &h.reader, Method::GET, "/api/v1/isolations", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // The keeper's events reached the core's event hub.
    let mut types = Vec::new();
    for _ in 0..50 {
        let (_, ev) = call(
            &h,
            &h.reader,
            Method::GET,
            "/api/v1/events?type=isolation_started,isolation_ended",
            "",
        )
        .await;
        types = ev
            .as_array()
            .map(|a| a.iter().map(|e| e["event_type"].to_string()).collect())
            .unwrap_or_default();
        if types.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        types,
        [
            "\"isolation_started\"",
            "\"isolation_started\"",
            "\"isolation_ended\""
        ]
    );
    stop.store(true, Ordering::Relaxed);
    assert!(h.control.isolation().is_some());
}

#[tokio::test]
async fn without_an_inventory_the_routes_say_so() {
    let h = Harness::start().await;
    let (s, v) = call(&h, &h.reader, Method::GET, "/api/v1/isolations", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("no inventory"),
        "{v}"
    );
    let (s, _) = call(
        &h,
        &h.admin,
        Method::POST,
        "/api/v1/isolations",
        r#"{"vm":"vm-1"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// `svm isolation enable|show|disable` with KAVSHELL's return codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_cli_with_kavshell_codes() {
    let stop = Arc::new(AtomicBool::new(false));
    let h = harness(&stop).await;
    let (_dir, run) = h.cli();
    let r = run.clone();
    let results = tokio::task::spawn_blocking(move || {
        vec![
            // 0: done.
            r(
                "admin",
                &[
                    "isolation",
                    "enable",
                    "vm-1",
                    "--for",
                    "1h30m",
                    "--exclude",
                    "{remote: 10.0.0.5, protocol: tcp, ports: [443]}",
                    "--exclude",
                    "{profile: dns-client}",
                ],
            ),
            // 9: isolated already; no such VM.
            r("admin", &["isolation", "enable", "vm-1"]),
            r("admin", &["isolation", "enable", "vm-9"]),
            // 4: syntax (a bad duration, a bad exclusion the daemon refuses, bad YAML).
            r("admin", &["isolation", "enable", "vm-2", "--for", "90s"]),
            r(
                "admin",
                &["isolation", "enable", "vm-2", "--exclude", "{ports: [x]}"],
            ),
            r(
                "admin",
                &["isolation", "enable", "vm-2", "--exclude", "{a: ["],
            ),
            // 1: a required argument missing.
            r("admin", &["isolation", "enable"]),
            r("admin", &["isolation", "disable"]),
            // The reader reads; changing is a wrong operation for it.
            r("ro", &["isolation", "show"]),
            r("ro", &["isolation", "show", "vm-1", "--json"]),
            r("ro", &["isolation", "show", "vm-2"]),
            r("ro", &["isolation", "disable", "vm-1"]),
            r("admin", &["isolation", "disable", "vm-1"]),
            // 9: disabling an isolation that is not on.
            r("admin", &["isolation", "disable", "vm-1"]),
        ]
    })
    .await
    .unwrap();
    let codes: Vec<i32> = results.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        codes,
        [0, 9, 9, 4, 4, 4, 1, 1, 0, 0, 0, 9, 0, 9],
        "{results:#?}"
    );
    assert!(
        results[0].1.contains("isolated vm-1 for 1h29m")
            || results[0].1.contains("isolated vm-1 for 1h30m"),
        "{}",
        results[0].1
    );
    let show = &results[8].1;
    assert!(show.contains("vm-1") && show.contains("isolated"), "{show}");
    assert!(
        show.contains("remote=10.0.0.5/32 protocol=tcp ports=[443] direction=both")
            && show.contains("dns-client"),
        "{show}"
    );
    assert!(show.contains("only TCP can be stopped"), "{show}");
    let one: serde_json::Value = serde_json::from_str(&results[9].1).unwrap();
    assert_eq!(one["vm"], "vm-1");
    assert_eq!(one["exclusions"].as_array().unwrap().len(), 2, "{one}");
    assert!(
        results[10].1.contains("vm-2: not isolated"),
        "{}",
        results[10].1
    );
    assert!(results[12].1.contains("released vm-1"), "{}", results[12].1);
    stop.store(true, Ordering::Relaxed);
}

/// 255: not supported here, against a daemon without an inventory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_cli_without_an_inventory_is_not_supported() {
    let h = Harness::start().await;
    let (_dir, run) = h.cli();
    let results = tokio::task::spawn_blocking(move || {
        vec![
            run("admin", &["isolation", "enable", "vm-1"]),
            run("ro", &["isolation", "show"]),
        ]
    })
    .await
    .unwrap();
    let codes: Vec<i32> = results.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, [255, 255], "{results:#?}");
}

/// The API's answer comes once the change is in the state store: this harness's keeper stores
/// nothing itself (`run`, not `run_saving`), so what the store holds right after each answer is
/// the API's own writing (a kill -9 right after an answer loses nothing).
#[tokio::test]
async fn the_answer_comes_once_the_change_is_stored() {
    let stop = Arc::new(AtomicBool::new(false));
    let h = harness(&stop).await;
    let stored = |h: &Harness| -> Vec<String> {
        let rows = h.control.store().isolations().unwrap();
        rows.into_iter().map(|r| r.vm).collect()
    };
    assert!(stored(&h).is_empty());
    let (s, v) = call(
        &h,
        &h.admin,
        Method::POST,
        "/api/v1/isolations",
        r#"{"vm":"vm-2","minutes":5,"note":"n"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(stored(&h), ["vm-2"]);
    let row = h.control.store().isolations().unwrap().remove(0);
    assert_eq!(row.note, "n");
    assert_eq!(row.expires_us - row.started_us, 300_000_000);
    let (s, v) = call(&h, &h.admin, Method::DELETE, "/api/v1/isolations/vm-2", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(stored(&h).is_empty());
    stop.store(true, Ordering::Relaxed);
}
