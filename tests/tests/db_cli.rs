//! `svm db` through the real binary: keygen -> build -> verify -> update -> status -> update to
//! v2 -> rollback, with the exit codes and one-line reasons other tools rely on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::ffi::OsStr;
use std::fmt::Debug;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use svm_e2e::svm_bin;
use testgen::{plan, scenarios};

fn svm<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(svm_bin()).args(args).output().unwrap()
}

fn ok<S: AsRef<OsStr> + Debug>(args: &[S]) -> String {
    let o = svm(args);
    assert!(
        o.status.success(),
        "svm {args:?}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The command fails with `code` and one line of standard error containing `needle`.
fn fails<S: AsRef<OsStr> + Debug>(args: &[S], code: i32, needle: &str) {
    let o = svm(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "svm {args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
}

fn status(state: &Path) -> Value {
    serde_json::from_str(&ok(&[
        "db",
        "status",
        "--state-dir",
        state.to_str().unwrap(),
        "--json",
    ]))
    .unwrap()
}

#[test]
fn keygen_build_verify_update_status_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    scenarios::demo(plan::BASE_US)
        .write_pcap(Path::new(&p("demo.pcap")))
        .unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let demo_rules = repo.join("deploy/demo.rules");
    let demo_rules = demo_rules.to_str().unwrap();
    std::fs::write(p("bad.list"), "evil.example\nphish.example/login\n").unwrap();
    // A rule new in v2 that the demo capture's web traffic fires.
    std::fs::write(
        p("v2.rules"),
        "alert http any any -> any any (msg:\"v2 GET\"; http.method; content:\"GET\"; sid:9100001; rev:1;)\n",
    )
    .unwrap();
    ok(&["db", "keygen", &p("keys")]);
    fails(&["db", "keygen", &p("keys")], 4, "never overwritten");
    let root = p("keys/root.json");
    let url_list = format!("malware={}", p("bad.list"));
    let keys = p("keys");
    let pcap = p("demo.pcap");
    let build_args = |v: &str, rules: &[&str], more: &[&str], out: &str| {
        let mut args: Vec<String> = ["db", "build", "--keys", &keys, "--version", v, "--rules"]
            .map(str::to_owned)
            .to_vec();
        args.extend(rules.iter().map(|r| (*r).to_owned()));
        args.extend(more.iter().map(|r| (*r).to_owned()));
        args.extend(
            ["--url-list", &url_list, "--self-test", &pcap, "-o", &p(out)].map(str::to_owned),
        );
        args
    };
    let build =
        |v: &str, rules: &[&str], more: &[&str], out: &str| ok(&build_args(v, rules, more, out));
    build("1", &[demo_rules], &[], "v1.tar");
    let v2_rules = p("v2.rules");
    // v2 defines the TCP port scan's count; definitions beyond counts and windows are refused.
    std::fs::write(
        p("ab.yaml"),
        "attack_blocker:\n  detectors:\n    tcp_port_scan: { count: 5, window_secs: 30 }\n",
    )
    .unwrap();
    std::fs::write(p("ab-bad.yaml"), "attack_blocker:\n  action: inform\n").unwrap();
    fails(
        &build_args(
            "2",
            &[demo_rules],
            &["--attack-blocker", &p("ab-bad.yaml")],
            "bad.tar",
        ),
        2,
        "attack_blocker may hold only detectors",
    );
    build(
        "2",
        &[demo_rules, &v2_rules],
        &["--attack-blocker", &p("ab.yaml")],
        "v2.tar",
    );
    let out = ok(&["db", "verify", "--root", &root, &p("v1.tar")]);
    assert!(out.contains("valid, version 1"), "{out}");

    // A tampered byte in a target: non-zero, one line naming the reason.
    let mut bytes = std::fs::read(p("v1.tar")).unwrap();
    let at = bytes
        .windows(b"CVE".len())
        .position(|w| w == b"CVE")
        .unwrap();
    bytes[at] = b'X';
    std::fs::write(p("tampered.tar"), &bytes).unwrap();
    fails(
        &["db", "verify", "--root", &root, &p("tampered.tar")],
        2,
        "SHA-256 differs",
    );
    // Another publisher's root.
    ok(&["db", "keygen", &p("other")]);
    fails(
        &[
            "db",
            "verify",
            "--root",
            &p("other/root.json"),
            &p("v1.tar"),
        ],
        2,
        "not the trusted root",
    );

    let state = p("state");
    let update = |from: &str| -> Vec<String> {
        ["db", "update", "--state-dir", &state, "--from", from]
            .map(str::to_owned)
            .to_vec()
    };
    fails(&["db", "update", "--state-dir", &state], 1, "--from");
    fails(&update(&p("v1.tar")), 4, "--root");
    ok(&[
        "db",
        "update",
        "--state-dir",
        &state,
        "--root",
        &root,
        "--from",
        &p("v1.tar"),
    ]);
    let s = status(Path::new(&state));
    assert_eq!(s["current"]["version"], 1);
    assert_eq!(s["current"]["stale"], false);
    assert_eq!(s["current"]["report"]["lists"]["malware"], 2);
    assert!(s["previous"].is_null());

    let out = ok(&update(&p("v2.tar")));
    assert!(out.contains("installed version 2"), "{out}");
    let s = status(Path::new(&state));
    assert_eq!(s["current"]["version"], 2);
    assert_eq!(s["previous"]["version"], 1);
    assert_eq!(
        s["current"]["report"]["attack_blocker"],
        serde_json::json!({"tcp_port_scan": {"count": 5, "window_secs": 30}})
    );
    let out = ok(&["db", "status", "--state-dir", &state]);
    assert!(
        out.contains("attack blocker definitions: tcp_port_scan count 5 window 30 s"),
        "{out}"
    );
    assert!(
        s["current"]["report"]["self_test"]["1:9100001"]
            .as_u64()
            .unwrap()
            >= 1,
        "the rule new in v2 fires in its self-test: {s}"
    );
    fails(&update(&p("v2.tar")), 9, "not newer");
    fails(&update(&p("v1.tar")), 2, "older than the trusted version");

    let out = ok(&["db", "rollback", "--state-dir", &state]);
    assert!(out.contains("current: version 1"), "{out}");
    let s = status(Path::new(&state));
    assert_eq!(s["current"]["version"], 1);
    assert_eq!(s["previous"]["version"], 2);
    assert_eq!(s["trusted"]["versions"]["targets"], 2);
}
