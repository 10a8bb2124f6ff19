//! What an administrator does with the real daemon (issue 21, "What admins expect"): `svm pki
//! init` makes the certificates `svm run` starts with; the admin certificate pushes a policy
//! while the read-only one gets 403, through the `svm` CLI over mTLS on the daemon's loopback;
//! `svm status` shows the dataplane's counters; `svm events tail --follow` prints the alert of a
//! real scan through the daemon as it happens
//! (inline topology of `common/live.rs`; needs root, iproute2, ethtool, nmap, curl, python3, or
//! the test says why it is skipped and passes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/live.rs"]
mod live;

use std::process::Output;
use std::time::{Duration, Instant};

use live::{Backend, NMAP, Net, skip_reason};
use svm_e2e::svm_bin;

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `svm ARGS` inside the daemon's namespace.
fn svm_in(net: &Net, args: &[&str]) -> Output {
    let bin = svm_bin();
    let mut full = vec![bin.to_str().unwrap()];
    full.extend_from_slice(args);
    net.exec('S', &full)
}

/// Start the daemon with the API on 127.0.0.1:8443 and the certificates of `svm pki init` in
/// `pki`; wait until the API answers `svm status`.
fn start(net: &mut Net, pki: &str) {
    let state = net.dir.path("state");
    net.start_svm_inline_with(
        "mode: standard\n",
        1,
        &format!(
            "state_dir: {}\napi:\n  listen: 127.0.0.1:8443\n  cert: {pki}/api.crt\n  \
             key: {pki}/api.key\n  client_ca: {pki}/api-ca.crt\n  admin: [\"CN=svm-admin\"]\n  \
             read_only: [\"OU=svm-readers\"]\n",
            state.display()
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = svm_in(
            net,
            &[
                "status",
                "--ca",
                &format!("{pki}/api-ca.crt"),
                "--cert",
                &format!("{pki}/reader.crt"),
                "--key",
                &format!("{pki}/reader.key"),
            ],
        );
        if o.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the API did not answer: {}\n{}",
            text(&o),
            net.svm_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn pki_init_certificates_run_the_daemon_and_carry_the_roles() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED live admin test: {why}");
        return;
    }
    let mut net = Net::new('p', Backend::AfPacket);
    let pki = net.dir.path("pki").to_str().unwrap().to_owned();
    let init = |sans: &[&str]| {
        let mut c = std::process::Command::new(svm_bin());
        c.args(["pki", "init", &pki]);
        for s in sans {
            c.args(["--san", s]);
        }
        c.output().unwrap()
    };
    let o = init(&["127.0.0.1", "localhost"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("client_ca:"),
        "{}",
        text(&o)
    );
    // A second run refuses and leaves the first run's files.
    let key = std::fs::read(format!("{pki}/admin.key")).unwrap();
    let o = init(&["127.0.0.1"]);
    assert_eq!(o.status.code(), Some(9), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already exist"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read(format!("{pki}/admin.key")).unwrap(), key);

    start(&mut net, &pki);
    let policy = net.dir.path("monitoring.yaml");
    std::fs::write(&policy, "mode: monitoring\n").unwrap();
    let policy = policy.to_str().unwrap().to_owned();
    let push = |who: &str| {
        svm_in(
            &net,
            &[
                "policy",
                "push",
                &policy,
                "--api",
                "https://127.0.0.1:8443",
                "--ca",
                &format!("{pki}/api-ca.crt"),
                "--cert",
                &format!("{pki}/{who}.crt"),
                "--key",
                &format!("{pki}/{who}.key"),
            ],
        )
    };
    let o = push("reader");
    assert_eq!(o.status.code(), Some(9), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("403"),
        "{}",
        text(&o)
    );
    // The daemon logs the refusal: the route, the peer and its certificate's names, and no
    // secret (no key, no body).
    let log = net.svm_log();
    assert!(
        log.contains("svm api: 403 for PUT /api/v1/policy from 127.0.0.1:")
            && log.contains("OU=svm-readers"),
        "{log}"
    );
    // A client without a certificate is refused at the handshake, and that is logged too.
    let o = net.exec(
        'S',
        &[
            "curl",
            "-s",
            "--cacert",
            &format!("{pki}/api-ca.crt"),
            "https://127.0.0.1:8443/api/v1/status",
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !net.svm_log().contains("svm api: TLS handshake") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = net.svm_log();
    assert!(
        log.contains("svm api: TLS handshake from 127.0.0.1:") && log.contains("refused"),
        "{log}"
    );
    assert!(!log.contains("PRIVATE KEY"), "{log}");
    // Each line carries its level: after a timestamp, or (under systemd) as a syslog priority.
    let levelled = |level: &str, prio: &str, text: &str| {
        log.lines().any(|l| {
            (l.starts_with("20") && l.contains(&format!("+0000 {level} {text}")))
                || l.starts_with(&format!("<{prio}>{level} {text}"))
        })
    };
    assert!(levelled(" INFO", "6", "svm run: "), "{log}");
    assert!(levelled(" WARN", "4", "svm api: 403 for "), "{log}");
    let o = push("admin");
    assert!(o.status.success(), "{}", text(&o));
    // The status table carries the dataplane's counters (one worker).
    let st = svm_in(
        &net,
        &[
            "status",
            "--ca",
            &format!("{pki}/api-ca.crt"),
            "--cert",
            &format!("{pki}/reader.crt"),
            "--key",
            &format!("{pki}/reader.key"),
        ],
    );
    let table = String::from_utf8_lossy(&st.stdout).into_owned();
    let line = |k: &str| {
        table
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line("WORKERS").ends_with(" 1"), "{table}");
    assert!(line("MODE").ends_with(" monitoring"), "{table}");
    assert!(
        line("PACKETS")
            .split_whitespace()
            .last()
            .unwrap()
            .parse::<u64>()
            .is_ok(),
        "{table}"
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("applied policy version 1"),
        "{}",
        text(&o)
    );

    // A follower started before a real scan prints its alert.
    struct Follower(std::process::Child);
    impl Drop for Follower {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let bin = svm_bin();
    let mut follower = Follower(
        std::process::Command::new("ip")
            .args(["netns", "exec", &net.ns('S')])
            .arg(&bin)
            .args([
                "events", "tail", "--follow", "-n", "0", "--type", "alert", "--json",
            ])
            .args(["--ca", &format!("{pki}/api-ca.crt")])
            .args(["--cert", &format!("{pki}/reader.crt")])
            .args(["--key", &format!("{pki}/reader.key")])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = follower.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The follower connects within milliseconds; give it a second before the traffic.
    std::thread::sleep(Duration::from_secs(1));
    let scan = net.exec('A', NMAP);
    assert!(scan.status.success(), "{}", text(&scan));
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no alert followed:\n{}", net.svm_log()));
    let alert: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(alert["event_type"], "alert", "{line}");
    assert_eq!(alert["src_ip"], "10.77.0.1", "{line}");
    drop(follower);
    net.stop_svm();
}
