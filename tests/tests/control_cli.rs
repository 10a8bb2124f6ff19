//! The admin CLI (`svm blocked|status|policy push`) against the real API, with its exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::process::Command;

use svm_e2e::control::Harness;
use svm_e2e::svm_bin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_talks_to_the_daemon() {
    let h = Harness::start().await;
    let (dir, run) = h.cli();
    std::fs::write(dir.path().join("bad.json"), r#"{"mode":"loud"}"#).unwrap();
    std::fs::write(dir.path().join("good.yaml"), "mode: monitoring\n").unwrap();
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
            run("ro", &["status", "--json"]),
        ]
    })
    .await
    .unwrap();
    let codes: Vec<i32> = results.iter().map(|r| r.0).collect();
    assert_eq!(codes, vec![0, 9, 0, 0, 9, 0, 9, 4, 0, 0], "{results:?}");
    let list: serde_json::Value = serde_json::from_str(&results[2].1).unwrap();
    assert_eq!(list[0]["address"], "10.0.0.9");
    // A manual block no frame has hit yet: 0 hits, and when it was made.
    assert_eq!(list[0]["hits"], 0);
    assert!(
        list[0]["created"].as_str().unwrap().ends_with('Z'),
        "{list}"
    );
    assert!(results[3].1.contains("10.0.0.9"));
    let header: Vec<&str> = results[3]
        .1
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "VLAN",
            "ADDRESS",
            "REMAINING",
            "HITS",
            "ORIGIN",
            "CREATED",
            "REASON"
        ],
        "{}",
        results[3].1
    );
    let row: Vec<&str> = results[3]
        .1
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row[3], "0", "{}", results[3].1);
    assert_eq!(row[5], list[0]["created"], "{}", results[3].1);
    assert!(results[8].1.contains("applied policy version 1"));
    let status: serde_json::Value = serde_json::from_str(&results[9].1).unwrap();
    assert_eq!(status["policy_version"], 1);
    assert_eq!(status["mode"], "monitoring");
    h.stop();
}

/// `svm` with these environment variables (and no other `SVM_*`).
fn svm_env(env: &[(&str, String)], args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(svm_bin());
    for v in ["SVM_API", "SVM_CA", "SVM_CERT", "SVM_KEY", "SVM_CLI_CONFIG"] {
        c.env_remove(v);
    }
    c.envs(env.iter().map(|(k, v)| (k, v))).args(args);
    let out = c.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_reads_its_config_file_and_environment_and_prints_json_or_words() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = h.ca.client("svm-admin", None);
    let reader = h.ca.client("ro", Some("svm-readers"));
    let d = dir.path().to_owned();
    for (name, text) in [
        ("certs/admin.crt", &admin.cert_pem),
        ("certs/admin.key", &admin.key_pem),
        ("certs/ro.crt", &reader.cert_pem),
        ("certs/ro.key", &reader.key_pem),
        ("certs/ca.crt", &h.ca.cert_pem()),
    ] {
        std::fs::create_dir_all(d.join("certs")).unwrap();
        std::fs::write(d.join(name), text).unwrap();
    }
    // Paths relative to the file's directory.
    let cfg = d.join("cli.yaml");
    std::fs::write(
        &cfg,
        format!(
            "api: {}\nca: certs/ca.crt\ncert: certs/admin.crt\nkey: certs/admin.key\n",
            h.base
        ),
    )
    .unwrap();
    std::fs::write(d.join("good.yaml"), "mode: monitoring\n").unwrap();
    let p = |name: &str| d.join(name).to_str().unwrap().to_owned();
    let (cfg_s, good, shown, template) = (
        p("cli.yaml"),
        p("good.yaml"),
        p("shown.yaml"),
        p("default.yaml"),
    );
    let (ro_crt, ro_key, admin_crt, admin_key) = (
        p("certs/ro.crt"),
        p("certs/ro.key"),
        p("certs/admin.crt"),
        p("certs/admin.key"),
    );
    let r = tokio::task::spawn_blocking(move || {
        let file = [("SVM_CLI_CONFIG", cfg_s.clone())];
        let reader_env = [
            ("SVM_CLI_CONFIG", cfg_s.clone()),
            ("SVM_CERT", ro_crt),
            ("SVM_KEY", ro_key),
        ];
        let mut r = vec![
            // 0: the file named by --config.
            svm_env(&[], &["status", "--config", &cfg_s]),
            // 1: the environment's reader certificate wins over the file's admin one: 403.
            svm_env(&reader_env, &["policy", "push", &good]),
            // 2: flags win over the environment.
            svm_env(
                &reader_env,
                &[
                    "policy", "push", &good, "--cert", &admin_crt, "--key", &admin_key,
                ],
            ),
            // 3
            svm_env(&file, &["status", "--json"]),
            // 4
            svm_env(&file, &["policy", "show"]),
            // 5
            svm_env(&file, &["policy", "show", "--json"]),
            // 6
            svm_env(
                &file,
                &[
                    "blocked",
                    "add",
                    "10.0.0.7",
                    "--vlan",
                    "100",
                    "--minutes",
                    "5",
                ],
            ),
            // 7
            svm_env(
                &file,
                &[
                    "blocked",
                    "add",
                    "10.0.0.8",
                    "--vlan",
                    "100",
                    "--minutes",
                    "5",
                    "--json",
                ],
            ),
            // 8: an error's body on standard output with --json.
            svm_env(
                &file,
                &[
                    "blocked",
                    "add",
                    "10.0.0.8",
                    "--vlan",
                    "100",
                    "--minutes",
                    "5",
                    "--json",
                ],
            ),
            // 9: a configuration file that is not there.
            svm_env(&[], &["status", "--config", "/nonexistent/cli.yaml"]),
            // 10
            svm_env(&[], &["policy", "default"]),
        ];
        std::fs::write(&shown, &r[4].1).unwrap();
        std::fs::write(&template, &r[10].1).unwrap();
        r.push(svm_env(&[], &["policy", "check", &shown]));
        r.push(svm_env(&[], &["policy", "check", &template]));
        r
    })
    .await
    .unwrap();
    let codes: Vec<i32> = r.iter().map(|x| x.0).collect();
    assert_eq!(codes, [0, 9, 0, 0, 0, 0, 0, 0, 9, 2, 0, 0, 0], "{r:#?}");
    // The status table: one line per item, values in one column.
    let table = &r[0].1;
    let line = |k: &str| {
        table
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line("MODE").ends_with("standard"), "{table}");
    assert!(line("POLICY VERSION").ends_with(" 0"), "{table}");
    let col = line("MODE").rfind(' ').unwrap();
    assert_eq!(
        line("SPOOL").find(char::is_numeric),
        Some(col + 1),
        "{table}"
    );
    assert!(r[1].2.contains("403"), "{:?}", r[1]);
    assert!(r[2].1.contains("applied policy version 1"), "{:?}", r[2]);
    let status: serde_json::Value = serde_json::from_str(&r[3].1).unwrap();
    assert_eq!(status["mode"], "monitoring");
    assert!(
        r[4].1.starts_with("# running policy version 1"),
        "{}",
        r[4].1
    );
    assert!(r[4].1.contains("mode: monitoring"), "{}", r[4].1);
    let shown: serde_json::Value = serde_json::from_str(&r[5].1).unwrap();
    assert_eq!(shown["version"], 1);
    assert_eq!(shown["document"]["mode"], "monitoring");
    assert!(
        r[6].1.starts_with("blocked 10.0.0.7 in VLAN 100 for 5m"),
        "{:?}",
        r[6]
    );
    let added: serde_json::Value = serde_json::from_str(&r[7].1).unwrap();
    assert_eq!(added["address"], "10.0.0.8");
    let refused: serde_json::Value = serde_json::from_str(&r[8].1).unwrap();
    assert!(refused["message"].is_string(), "{:?}", r[8]);
    assert!(r[9].2.contains("/nonexistent/cli.yaml"), "{:?}", r[9]);
    assert!(r[11].1.contains("valid"), "{:?}", r[11]);
    assert!(r[12].1.contains("valid (mode standard"), "{:?}", r[12]);
    h.stop();
}
