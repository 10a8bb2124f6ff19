//! Signed databases in the live daemon (issue 19): the real `svm run` inline between an attacker
//! and a victim namespace (topology of `common/live.rs`), with the control plane, the mTLS API
//! and a `db` section whose mirror is a real HTTPS server on the SVM namespace's 127.0.0.1 (a
//! tokio runtime whose threads joined that namespace), serving bundles made by `svm db keygen`
//! and `svm db build`. Certificates come from the test PKI.
//!
//! Needs root, iproute2, ethtool, nmap, curl, python3 and tar; without them it prints why it is
//! skipped and passes. Namespaces, veths and processes are removed on drop, also on failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/live.rs"]
mod live;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use live::{Backend, Net, events, runtime_in, skip_reason};
use serde_json::Value;
use svm_e2e::fakes::mirror::FakeMirror;
use svm_e2e::fakes::pki::TestCa;
use svm_e2e::svm_bin;

const API: &str = "https://127.0.0.1:8443";
const MIRROR_PORT: u16 = 8444;
const POLICY: &str = "mode: standard\nactivity_scanner:\n  action: terminate\n";

fn svm(args: &[&str]) -> std::process::Output {
    Command::new(svm_bin()).args(args).output().unwrap()
}

/// A rule that alerts on a request carrying `marker-v<sid>`.
fn rule(sid: u32) -> String {
    format!(
        "alert tcp any any -> any 8000 (msg:\"db rule {sid}\"; flow:established,to_server; \
         content:\"marker-v{sid}\"; sid:{};rev:1;)\n",
        9_100_000 + sid
    )
}

struct Db {
    dir: PathBuf,
    mirror: FakeMirror,
}

impl Db {
    /// `svm db build --version v` with the rules of `sids` (and `extra` arguments).
    fn build(&self, v: u64, sids: &[u32], extra: &[&str]) -> PathBuf {
        let out = self.dir.join(format!("v{v}.tar"));
        let keys = self.dir.join("keys");
        let v = v.to_string();
        let mut args = vec![
            "db",
            "build",
            "--keys",
            keys.to_str().unwrap(),
            "--version",
            &v,
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let files: Vec<String> = sids
            .iter()
            .map(|s| {
                let f = self.dir.join(format!("r{s}.rules"));
                std::fs::write(&f, rule(*s)).unwrap();
                f.display().to_string()
            })
            .collect();
        args.push("--rules");
        args.extend(files.iter().map(String::as_str));
        let o = svm(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    }

    /// Publish `bundle` (maybe altered) with its `metadata/timestamp.json` beside it, as a
    /// publisher's mirror directory holds them.
    fn publish(&self, bundle: &Path, alter: Option<&[u8]>) {
        let o = Command::new("tar")
            .args(["-xOf", bundle.to_str().unwrap(), "metadata/timestamp.json"])
            .output()
            .unwrap();
        assert!(o.status.success());
        let mut bytes = std::fs::read(bundle).unwrap();
        if let Some(needle) = alter {
            let at = bytes
                .windows(needle.len())
                .position(|w| w == needle)
                .unwrap();
            bytes[at] ^= 0x01;
        }
        self.mirror.put("timestamp.json", o.stdout);
        self.mirror.put("bundle.tar", bytes);
    }
}

/// One API call with curl from the SVM's namespace as `who`; (status, body).
fn api(net: &Net, who: &str, method: &str, path: &str) -> (u16, String) {
    api_with(net, who, method, path, None)
}

/// [`api`] with a file as the request body.
fn api_with(
    net: &Net,
    who: &str,
    method: &str,
    path: &str,
    upload: Option<&Path>,
) -> (u16, String) {
    let d = net.dir.path("");
    let p = |n: &str| d.join(n).display().to_string();
    let data = upload.map(|f| format!("@{}", f.display()));
    let mut extra: Vec<&str> = Vec::new();
    if let Some(data) = &data {
        extra = vec![
            "-H",
            "Content-Type: application/x-tar",
            "--data-binary",
            data,
        ];
    }
    let out = net.exec(
        'S',
        &[
            &[
                "curl",
                "-s",
                "--max-time",
                "60",
                "-w",
                "\n%{http_code}",
                "--cacert",
                &p("ca.crt"),
                "--cert",
                &p(&format!("{who}.crt")),
                "--key",
                &p(&format!("{who}.key")),
                "-X",
                method,
                &format!("{API}{path}"),
            ][..],
            &extra[..],
        ]
        .concat(),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn db_state(net: &Net) -> Value {
    let (code, body) = api(net, "admin", "GET", "/api/v1/db");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn version(v: &Value) -> u64 {
    v["current"]["version"].as_u64().unwrap_or(0)
}

/// A request carrying `marker-v<sid>` from the attacker (the victim answers 404).
fn probe(net: &Net, sid: u32) {
    let (code, _) = net.curl_url('A', &format!("http://10.77.0.2:8000/marker-v{sid}"), 10);
    assert_eq!(code, 0, "probe {sid}");
}

fn rule_alerts(ev: &[Value], sid: u32) -> usize {
    ev.iter()
        .filter(|e| {
            e["event_type"] == "alert" && e["alert"]["signature_id"] == 9_100_000 + u64::from(sid)
        })
        .count()
}

fn wait_eve(eve: &PathBuf, what: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ev = events(eve);
        if ok(&ev) {
            return ev;
        }
        assert!(Instant::now() < deadline, "{what} not in EVE: {ev:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The test PKI's CA, server and client certificates in the net's directory, and a publisher
/// with keys from `svm db keygen`.
fn setup(net: &Net) -> (TestCa, Db) {
    let d = net.dir.path("");
    let w = |n: &str, s: &str| std::fs::write(d.join(n), s).unwrap();
    let ca = TestCa::new("svm test CA");
    w("ca.crt", &ca.cert_pem());
    for (name, issued) in [
        ("api", ca.server("svm-api")),
        ("admin", ca.client("svm-admin", None)),
        ("reader", ca.client("alice", Some("svm-readers"))),
    ] {
        w(&format!("{name}.crt"), &issued.cert_pem);
        w(&format!("{name}.key"), &issued.key_pem);
    }
    let db = Db {
        dir: net.dir.path("publisher"),
        mirror: FakeMirror::default(),
    };
    std::fs::create_dir_all(&db.dir).unwrap();
    let o = svm(&["db", "keygen", db.dir.join("keys").to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (ca, db)
}

/// The daemon's configuration lines: the state directory, the API, and a `db` section trusting
/// the publisher's root, with `db_keys` (indented lines) added.
fn config(net: &Net, db: &Db, db_keys: &str) -> String {
    format!(
        "state_dir: {state}\n\
         api:\n  listen: 127.0.0.1:8443\n  cert: {d}/api.crt\n  key: {d}/api.key\n  \
         client_ca: {d}/ca.crt\n  admin: [CN=svm-admin]\n  read_only: [OU=svm-readers]\n\
         db:\n  root: {keys}/root.json\n{db_keys}",
        state = net.dir.path("state").display(),
        d = net.dir.path("").display(),
        keys = db.dir.join("keys").display(),
    )
}

#[test]
fn the_daemon_follows_its_mirror_refuses_bad_bundles_and_rolls_back_on_command() {
    if let Some(why) = skip_reason().or_else(|| (!live::have("tar")).then(|| "no tar".into())) {
        eprintln!("SKIPPED live db test: {why}");
        return;
    }
    let mut net = Net::new('b', Backend::AfPacket);
    let (ca, db) = setup(&net);
    let rt = runtime_in(&net.ns('S'));
    // Bound on a runtime thread, so in the SVM's namespace.
    let (mirror, tls) = (
        db.mirror.clone(),
        svm_e2e::fakes::server_tls(&ca.server("svm-db-mirror"), None),
    );
    rt.block_on(rt.spawn(async move {
        let l = tokio::net::TcpListener::bind(("127.0.0.1", MIRROR_PORT))
            .await
            .unwrap();
        mirror.start(l, tls);
    }))
    .unwrap();
    let v1 = db.build(1, &[1], &[]);
    db.publish(&v1, None);

    let extra = config(
        &net,
        &db,
        &format!(
            "  mirror: https://127.0.0.1:{MIRROR_PORT}/db\n  ca: {}/ca.crt\n  \
             interval_secs: 3\n  jitter_secs: 0\n  retry_min_secs: 1\n",
            net.dir.path("").display()
        ),
    );
    let eve = net.start_svm_inline_with(POLICY, 1, &extra);
    // The first check runs at start: v1 is fetched, verified, installed and in force.
    net.wait_log(
        "svm run: database version 1 in force",
        1,
        Duration::from_secs(30),
    );
    let st = db_state(&net);
    assert_eq!(version(&st), 1, "{st}");
    assert_eq!(st["in_force"], st["current"]["name"], "{st}");
    net.http_server('V', "0.0.0.0");
    net.wait_http('A', "10.77.0.2");
    let blob = net.blob();
    probe(&net, 1);
    wait_eve(&eve, "rule 1", |ev| rule_alerts(ev, 1) == 1);

    // v2 adds rule 2: picked up by the poller while benign downloads keep passing whole.
    db.publish(&db.build(2, &[1, 2], &[]), None);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut during = 0;
    while !net.svm_log().contains("database version 2 in force") {
        assert!(
            Instant::now() < deadline,
            "v2 not installed:\n{}",
            net.svm_log()
        );
        assert_eq!(
            net.curl('A', "10.77.0.2", 10).as_deref(),
            Some(&blob[..]),
            "a benign download across the swap"
        );
        during += 1;
    }
    assert!(during > 0);
    assert_eq!(net.curl('A', "10.77.0.2", 10).as_deref(), Some(&blob[..]));
    probe(&net, 2);
    probe(&net, 1);
    wait_eve(&eve, "rules 1 and 2 after v2", |ev| {
        rule_alerts(ev, 2) == 1 && rule_alerts(ev, 1) == 2
    });

    // v3 with a byte of its new rule changed: refused; v2 stays in force.
    let v3 = db.build(3, &[1, 2, 3], &[]);
    db.publish(&v3, Some(b"marker-v3"));
    net.wait_log(
        "database update failed (verify)",
        1,
        Duration::from_secs(30),
    );
    let st = db_state(&net);
    assert_eq!(version(&st), 2, "{st}");
    assert_eq!(st["refused_version"], 3, "{st}");
    assert!(
        st["last_error"].as_str().unwrap().contains("SHA-256"),
        "{st}"
    );
    probe(&net, 3);
    probe(&net, 2);
    let ev = wait_eve(&eve, "rule 2 after the refused v3", |ev| {
        rule_alerts(ev, 2) == 2
    });
    assert_eq!(rule_alerts(&ev, 3), 0, "a rule of the refused bundle fired");

    // The mirror rolled back to v1: refused as older than the trusted version.
    db.publish(&v1, None);
    net.wait_log(
        "older than the trusted version 2",
        1,
        Duration::from_secs(30),
    );
    // An expired bundle (its timestamp expired): refused.
    let v4 = db.build(
        4,
        &[1, 2, 4],
        &["--timestamp-expires", "2020-01-01T00:00:00Z"],
    );
    db.publish(&v4, None);
    net.wait_log("role timestamp expired", 1, Duration::from_secs(30));
    assert_eq!(version(&db_state(&net)), 2);

    // A forced update through the API: v5 is published right after a scheduled check read the
    // timestamp (the next is 3 s later), so the API's check is the one that installs it. The
    // read-only role may not ask.
    let (code, _) = api(&net, "reader", "POST", "/api/v1/db/update");
    assert_eq!(code, 403);
    let before = db.mirror.hits("timestamp.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.mirror.hits("timestamp.json") == before {
        assert!(Instant::now() < deadline, "no scheduled check");
        std::thread::sleep(Duration::from_millis(10));
    }
    db.publish(&db.build(5, &[1, 5], &[]), None);
    let (code, body) = api(&net, "admin", "POST", "/api/v1/db/update");
    assert_eq!(code, 200, "{body}");
    let st: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(version(&st), 5, "{st}");
    assert_eq!(st["last_result"], "installed", "{st}");
    probe(&net, 5);
    wait_eve(&eve, "rule 5", |ev| rule_alerts(ev, 5) == 1);

    // Rollback on command: v2 back in force, rule 5 gone; the poller does not bring v5 back.
    let (code, body) = api(&net, "admin", "POST", "/api/v1/db/rollback");
    assert_eq!(code, 200, "{body}");
    let st: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(version(&st), 2, "{st}");
    assert_eq!(st["previous"]["version"], 5, "{st}");
    std::thread::sleep(Duration::from_secs(4));
    let st = db_state(&net);
    assert_eq!(version(&st), 2, "{st}");
    assert_eq!(st["last_result"], "up_to_date", "{st}");
    probe(&net, 5);
    probe(&net, 2);
    let (code, body) = api(&net, "reader", "GET", "/api/v1/status");
    assert_eq!(code, 200);
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["db"]["version"], 2, "{status}");
    assert_eq!(status["db"]["stale"], false, "{status}");
    let (code, metrics) = api(&net, "reader", "GET", "/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("svm_db_version 2"), "{metrics}");
    assert!(
        metrics.contains("svm_db_updates_total{result=\"rolled_back\"} 1"),
        "{metrics}"
    );
    // A bundle handed in through the API: the reader may not, a tampered one is refused, a good
    // one is installed.
    let v6 = db.build(6, &[1, 2, 6], &[]);
    let (code, _) = api_with(&net, "reader", "POST", "/api/v1/db", Some(&v6));
    assert_eq!(code, 403);
    let bad = db.dir.join("v6-bad.tar");
    let mut bytes = std::fs::read(&v6).unwrap();
    let at = bytes.windows(9).position(|w| w == b"marker-v6").unwrap();
    bytes[at] ^= 1;
    std::fs::write(&bad, bytes).unwrap();
    let (code, body) = api_with(&net, "admin", "POST", "/api/v1/db", Some(&bad));
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("SHA-256"), "{body}");
    let (code, body) = api_with(&net, "admin", "POST", "/api/v1/db", Some(&v6));
    assert_eq!(code, 200, "{body}");
    let st: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(version(&st), 6, "{st}");
    probe(&net, 6);
    let log = net.stop_svm();
    let ev = events(&eve);
    assert_eq!(rule_alerts(&ev, 2), 3, "{log}");
    assert_eq!(
        rule_alerts(&ev, 5),
        1,
        "rule 5 fired after the rollback:\n{log}"
    );
    let kinds = |k: &str| ev.iter().filter(|e| e["event_type"] == k).count();
    assert_eq!(kinds("db_updated"), 4, "v1, v2, v5, v6: {log}");
    assert_eq!(rule_alerts(&ev, 6), 1, "{log}");
    assert!(kinds("db_update_failed") >= 3, "v3, v1 again, v4: {log}");
    assert_eq!(kinds("db_rolled_back"), 1, "{log}");
    let failed: Vec<&Value> = ev
        .iter()
        .filter(|e| e["event_type"] == "db_update_failed")
        .collect();
    assert!(
        failed
            .iter()
            .any(|e| e["db"]["version"] == 3 && e["db"]["stage"] == "verify"),
        "{failed:?}"
    );
}

/// curl from the attacker to the victim's HTTP server by the name `host`: the body.
fn curl_host(net: &Net, host: &str) -> Vec<u8> {
    let o = net.exec(
        'A',
        &[
            "curl",
            "-s",
            "--max-time",
            "5",
            "--resolve",
            &format!("{host}:8000:10.77.0.2"),
            &format!("http://{host}:8000/blob.bin"),
        ],
    );
    o.stdout
}

#[test]
fn a_set_that_floods_alerts_is_rolled_back_by_itself_with_its_lists() {
    if let Some(why) = skip_reason().or_else(|| (!live::have("hping3")).then(|| "no hping3".into()))
    {
        eprintln!("SKIPPED live db health test: {why}");
        return;
    }
    let mut net = Net::new('g', Backend::AfPacket);
    let (_ca, db) = setup(&net);
    // Bundles are uploaded (no mirror). Rules only inform, so every matching packet alerts.
    let extra = config(
        &net,
        &db,
        "  probation_secs: 5\n  alert_rate_factor: 10\n  alert_rate_floor: 20\n",
    );
    let eve = net.start_svm_inline_with(
        "mode: standard\nactivity_scanner:\n  action: inform\n",
        1,
        &extra,
    );
    net.http_server('V', "0.0.0.0");
    net.wait_http('A', "10.77.0.2");
    let blob = net.blob();
    let upload = |bundle: &Path| {
        let (code, body) = api_with(&net, "admin", "POST", "/api/v1/db", Some(bundle));
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };

    // v1, healthy: in force, on probation, and still in force after it while traffic flows.
    let st = upload(&db.build(1, &[1], &[]));
    assert_eq!(version(&st), 1, "{st}");
    assert_eq!(st["probation"]["version"], 1, "{st}");
    // The database is the only source of rules: its check's build went in (compiled once).
    assert!(
        net.svm_log()
            .contains("rules swapped in as the database check built them: 1 loaded"),
        "{}",
        net.svm_log()
    );
    probe(&net, 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !net
        .svm_log()
        .contains("database version 1 passed its probation")
    {
        assert!(Instant::now() < deadline, "no verdict:\n{}", net.svm_log());
        assert_eq!(net.curl('A', "10.77.0.2", 10).as_deref(), Some(&blob[..]));
    }
    wait_eve(&eve, "rule 1", |ev| rule_alerts(ev, 1) == 1);
    let st = db_state(&net);
    assert_eq!(version(&st), 1, "{st}");
    assert_eq!(st["probation"], Value::Null, "{st}");
    assert!(st["last_swap_frames_lost"].is_u64(), "{st}");
    assert_eq!(
        net.curl_url('A', "http://10.77.0.2:8000/blob.bin", 10).1,
        blob
    );

    // v2 lists a host name and has a rule that fires on every ping: the name is blocked as soon
    // as v2 is in force.
    let list = db.dir.join("malware.txt");
    std::fs::write(&list, "listed.svm-demo.test\n").unwrap();
    let every = db.dir.join("every.rules");
    std::fs::write(
        &every,
        "alert icmp any any -> any any (msg:\"every ping\"; itype:8; sid:9100999; rev:1;)\n",
    )
    .unwrap();
    let url_list = format!("malware={}", list.display());
    let v2 = db.build(
        2,
        &[1],
        &["--url-list", &url_list, "--rules", every.to_str().unwrap()],
    );
    let st = upload(&v2);
    assert_eq!(version(&st), 2, "{st}");
    let page = String::from_utf8_lossy(&curl_host(&net, "listed.svm-demo.test")).into_owned();
    assert!(page.contains("This web address is blocked"), "{page}");
    assert_eq!(curl_host(&net, "other.svm-demo.test"), blob);

    // 100 pings a second for 4 s (hping3), 100 alerts a second against almost none before:
    // rolled back by itself within seconds, v1's set (no list) back in force, v2 refused.
    let o = net.exec(
        'A',
        &[
            "hping3",
            "--icmp",
            "-q",
            "-c",
            "400",
            "-i",
            "u10000",
            "10.77.0.2",
        ],
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("400 packets transmitted"),
        "{o:?}"
    );
    let log = net.wait_log(
        "database version 2 rolled back (alert_rate); version 1 is back in force",
        1,
        Duration::from_secs(5),
    );
    let st = db_state(&net);
    assert_eq!(version(&st), 1, "{st}\n{log}");
    assert_eq!(st["refused_version"], 2, "{st}");
    assert_eq!(st["previous"]["version"], 2, "{st}");
    assert_eq!(
        curl_host(&net, "listed.svm-demo.test"),
        blob,
        "the list stayed"
    );
    let ev = wait_eve(&eve, "db_rolled_back", |ev| {
        ev.iter().any(|e| e["event_type"] == "db_rolled_back")
    });
    let rb: Vec<&Value> = ev
        .iter()
        .filter(|e| e["event_type"] == "db_rolled_back")
        .collect();
    assert_eq!(rb.len(), 1, "{rb:?}");
    assert_eq!(rb[0]["db"]["check"], "alert_rate", "{rb:?}");
    assert_eq!(rb[0]["db"]["automatic"], true);
    assert_eq!(
        (
            rb[0]["db"]["from_version"].as_u64(),
            rb[0]["db"]["to_version"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let pings = ev
        .iter()
        .filter(|e| e["event_type"] == "alert" && e["alert"]["signature_id"] == 9_100_999)
        .count();
    assert!(
        (40..400).contains(&pings),
        "{pings} ping alerts: not stopped by the rollback"
    );
    let (_, metrics) = api(&net, "reader", "GET", "/metrics");
    assert!(
        metrics.contains("svm_db_probations_passed_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("svm_db_swap_frames_lost_total"),
        "{metrics}"
    );

    // A restarted daemon remembers the refused version and runs v1.
    net.stop_svm();
    net.start_svm_inline_with(
        "mode: standard\nactivity_scanner:\n  action: inform\n",
        1,
        &extra,
    );
    let st = db_state(&net);
    assert_eq!(version(&st), 1, "{st}");
    assert_eq!(st["refused_version"], 2, "{st}");
    assert_eq!(curl_host(&net, "listed.svm-demo.test"), blob);
}
