//! The admin CLI (`svm blocked|status|policy push`) against the real API, with its exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::process::Command;

use svm_e2e::control::Harness;
use svm_e2e::svm_bin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_talks_to_the_daemon() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = h.ca.client("svm-admin", None);
    let reader = h.ca.client("ro", Some("svm-readers"));
    for (name, text) in [
        ("admin.crt", &admin.cert_pem),
        ("admin.key", &admin.key_pem),
        ("ro.crt", &reader.cert_pem),
        ("ro.key", &reader.key_pem),
        ("ca.crt", &h.ca.cert_pem()),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    std::fs::write(dir.path().join("bad.json"), r#"{"mode":"loud"}"#).unwrap();
    std::fs::write(dir.path().join("good.yaml"), "mode: monitoring\n").unwrap();
    let d = dir.path().to_owned();
    let base = h.base.clone();
    let run = move |who: &str, args: &[&str]| {
        let mut c = Command::new(svm_bin());
        c.args(args).args([
            "--api",
            &base,
            "--ca",
            d.join("ca.crt").to_str().unwrap(),
            "--cert",
            d.join(format!("{who}.crt")).to_str().unwrap(),
            "--key",
            d.join(format!("{who}.key")).to_str().unwrap(),
        ]);
        let out = c.output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let bad = dir.path().join("bad.json").to_str().unwrap().to_owned();
    let good = dir.path().join("good.yaml").to_str().unwrap().to_owned();
    let results = tokio::task::spawn_blocking(move || {
        vec![
            run(
                "admin",
                &[
                    "blocked",
                    "add",
                    "10.0.0.9",
                    "--vlan",
                    "100",
                    "--minutes",
                    "5",
                ],
            ),
            run(
                "admin",
                &[
                    "blocked",
                    "add",
                    "10.0.0.9",
                    "--vlan",
                    "100",
                    "--minutes",
                    "5",
                ],
            ),
            run("ro", &["blocked", "list", "--json"]),
            run("admin", &["blocked", "list", "--vlan", "100"]),
            run("ro", &["blocked", "allow", "10.0.0.9"]),
            run(
                "admin",
                &["blocked", "allow", "10.0.0.0/24", "--vlan", "100"],
            ),
            run("admin", &["blocked", "allow", "10.0.0.9"]),
            run("admin", &["policy", "push", &bad]),
            run("admin", &["policy", "push", &good]),
            run("ro", &["status"]),
        ]
    })
    .await
    .unwrap();
    let codes: Vec<i32> = results.iter().map(|r| r.0).collect();
    assert_eq!(codes, vec![0, 9, 0, 0, 9, 0, 9, 4, 0, 0], "{results:?}");
    let list: serde_json::Value = serde_json::from_str(&results[2].1).unwrap();
    assert_eq!(list[0]["address"], "10.0.0.9");
    assert!(results[3].1.contains("10.0.0.9"));
    assert!(results[8].1.contains("applied policy version 1"));
    let status: serde_json::Value = serde_json::from_str(&results[9].1).unwrap();
    assert_eq!(status["policy_version"], 1);
    assert_eq!(status["mode"], "monitoring");
    h.stop();
}
