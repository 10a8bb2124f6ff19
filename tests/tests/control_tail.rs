//! `svm events tail` against the real API over mTLS: recent events in words or JSON, filters,
//! the roles, and `--follow` printing events that happen after it started (the control
//! plane's own: each policy push is a `policy_applied` event, each manual block a
//! `block`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyper::Method;
use svm_e2e::control::Harness;
use svm_e2e::svm_bin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tail_prints_recent_and_follows_new_events_with_filters() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    for (name, issued) in [
        ("ro", h.ca.client("dashboard", Some("svm-readers"))),
        ("nobody", h.ca.client("stranger", Some("elsewhere"))),
    ] {
        std::fs::write(d.join(format!("{name}.crt")), &issued.cert_pem).unwrap();
        std::fs::write(d.join(format!("{name}.key")), &issued.key_pem).unwrap();
    }
    std::fs::write(d.join("ca.crt"), h.ca.cert_pem()).unwrap();
    let conn = |who: &str| -> Vec<String> {
        vec![
            "--api".into(),
            h.base.clone(),
            "--ca".into(),
            d.join("ca.crt").to_str().unwrap().into(),
            "--cert".into(),
            d.join(format!("{who}.crt")).to_str().unwrap().into(),
            "--key".into(),
            d.join(format!("{who}.key")).to_str().unwrap().into(),
        ]
    };
    let hr = &h;
    let push = |mode: &'static str| {
        let body = format!("{{\"mode\":\"{mode}\"}}");
        async move {
            let r = hr
                .call(&hr.admin, Method::PUT, "/api/v1/policy", &[], &body)
                .await
                .unwrap();
            assert_eq!(r.status, 200);
        }
    };
    let block = |addr: String| {
        let body = format!("{{\"address\":\"{addr}\",\"vlan\":\"100\",\"minutes\":5}}");
        async move {
            let r = hr
                .call(&hr.admin, Method::POST, "/api/v1/blocked-hosts", &[], &body)
                .await
                .unwrap();
            assert_eq!(r.status, 201, "{:?}", r.body);
        }
    };
    push("monitoring").await;
    block("10.0.0.1".into()).await;
    h.control.hub().flush();

    // Follow policy_applied only, as JSON lines, from now on.
    let mut child = Command::new(svm_bin())
        .args([
            "events",
            "tail",
            "--follow",
            "-n",
            "0",
            "--type",
            "policy_applied",
            "--json",
        ])
        .args(conn("ro"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Until the stream is open, events are not seen: push until one comes through (the first
    // printed one must be newer than the follower's start, since -n 0 sends no backlog).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut modes = ["standard", "monitoring"].iter().cycle();
    let mut n = 0;
    let first = loop {
        n += 1;
        block(format!("10.0.1.{n}")).await;
        push(modes.next().unwrap()).await;
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            break line;
        }
        assert!(Instant::now() < deadline, "--follow printed nothing");
    };
    h.control.hub().flush();
    std::thread::sleep(Duration::from_millis(300));
    let mut lines = vec![first];
    lines.extend(rx.try_iter());
    let _ = child.kill();
    let _ = child.wait();
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["event_type"], "policy_applied", "{l}");
        assert_ne!(v["policy_version"], 1, "the backlog was not asked for: {l}");
    }

    let args = conn("ro");
    let nobody = conn("nobody");
    let out = tokio::task::spawn_blocking(move || {
        let run = |extra: &[&str], conn: &[String]| {
            let o = Command::new(svm_bin())
                .args(["events", "tail"])
                .args(extra)
                .args(conn)
                .output()
                .unwrap();
            (
                o.status.code().unwrap(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        };
        vec![
            run(&["-n", "3"], &args),
            run(
                &["--json", "--type", "block", "--vlan", "100", "-n", "1000"],
                &args,
            ),
            run(&["--json", "--severity", "critical"], &args),
            run(&["--vlan", "4095"], &args),
            run(&[], &nobody),
            run(&["--follow"], &nobody),
        ]
    })
    .await
    .unwrap();
    let codes: Vec<i32> = out.iter().map(|o| o.0).collect();
    assert_eq!(codes, [0, 0, 0, 4, 9, 9], "{out:#?}");
    assert_eq!(out[0].1.lines().count(), 3, "{}", out[0].1);
    let blocks: Vec<serde_json::Value> = serde_json::from_str(&out[1].1).unwrap();
    assert!(!blocks.is_empty(), "{}", out[1].1);
    assert!(
        blocks
            .iter()
            .all(|b| b["event_type"] == "block" && b["vlan"] == serde_json::json!([100])),
        "{}",
        out[1].1
    );
    assert_eq!(out[2].1.trim(), "[]");
    assert!(out[3].2.contains("vlan"), "{}", out[3].2);
    assert!(
        out[4].2.contains("403") && out[5].2.contains("403"),
        "{out:#?}"
    );
    h.stop();
}
