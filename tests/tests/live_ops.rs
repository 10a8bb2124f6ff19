//! The daemon under a service manager (issue 20): `svm run` inline between an attacker and a
//! victim namespace (topology of `common/live.rs`) with `$NOTIFY_SOCKET` naming a real unix
//! datagram socket the test reads, as systemd does: `READY=1` only once frames are forwarded,
//! `WATCHDOG=1` at half of `$WATCHDOG_USEC` while it runs, `STOPPING=1` on SIGTERM.
//!
//! Needs root, iproute2, ethtool, nmap, curl and python3; without them the tests print why they
//! are skipped and pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/live.rs"]
mod live;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use live::{Backend, Net, skip_reason};

macro_rules! skip_unless_able {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("SKIPPED live ops test: {why}");
            return;
        }
    };
}

/// Every datagram that arrives within `wait`.
fn datagrams(sock: &UnixDatagram, wait: Duration) -> Vec<String> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    got
}

#[test]
fn notify_ready_watchdog_and_stopping() {
    skip_unless_able!();
    let mut net = Net::new('o', Backend::AfPacket);
    let path = net.dir.path("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let socket = path.to_str().unwrap().to_owned();
    let (m, n) = (net.dev('m'), net.dev('n'));
    // 400 ms watchdog: a ping every 200 ms.
    net.launch_svm_env(
        "mode: standard\n",
        &format!(
            "backend: af-packet\nmode: inline\nvm_interface: {m}\nnetwork_interface: {n}\n\
             workers: 2\naf_packet: {{block_count: 8}}\n"
        ),
        &[("NOTIFY_SOCKET", &socket), ("WATCHDOG_USEC", "400000")],
    );
    let first = datagrams(&sock, Duration::from_secs(1));
    let ready = first
        .iter()
        .find(|d| d.starts_with("READY=1\n"))
        .unwrap_or_else(|| panic!("no READY=1 in {first:?}:\n{}", net.svm_log()));
    assert!(
        ready.contains("STATUS=2 worker(s) forwarding on inline"),
        "{ready:?}"
    );
    // Ready means forwarding: the victim's server answers the attacker through the SVM.
    net.http_server('V', "10.77.0.2");
    net.wait_http('A', "10.77.0.2");
    assert_eq!(net.curl('A', "10.77.0.2", 10), Some(net.blob()));
    // What queued while the HTTP checks ran, then the pings of the next 2 s.
    datagrams(&sock, Duration::from_millis(1));
    let pings = datagrams(&sock, Duration::from_secs(2));
    let n = pings.iter().filter(|d| *d == "WATCHDOG=1").count();
    // 2 s at one ping every 200 ms: about 10; a loaded machine may delay some.
    assert!((4..=12).contains(&n), "{n} pings in 2 s: {pings:?}");
    let log = net.stop_svm();
    let last = datagrams(&sock, Duration::from_millis(500));
    assert!(
        last.iter()
            .any(|d| d.starts_with("STOPPING=1\nSTATUS=stopping")),
        "{last:?}\n{log}"
    );
}

/// One API call with curl from the SVM's namespace as `who` (`<who>.crt`, `<who>.key`): the
/// HTTP status, 0 when the handshake was refused, and the body.
fn api_call(net: &Net, who: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let p = |n: &str| net.dir.path(n).to_str().unwrap().to_owned();
    let url = format!("https://127.0.0.1:8443{path}");
    let (cert, key) = (p(&format!("{who}.crt")), p(&format!("{who}.key")));
    let mut args = vec![
        "curl",
        "-s",
        "--max-time",
        "10",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ];
    let ca = p("ca.crt");
    args.extend(["--cacert", &ca, "--cert", &cert, "--key", &key]);
    if let Some(b) = body {
        args.extend(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    args.push(&url);
    let out = net.exec('S', &args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn api_status(net: &Net, who: &str, path: &str) -> u16 {
    api_call(net, who, "GET", path, None).0
}

/// The management CA, the API's certificate and client certificates `(name, serial)`, written
/// into `dir`.
fn write_pki(dir: &std::path::Path, clients: &[(&str, u64)]) -> svm_e2e::fakes::pki::TestCa {
    let ca = svm_e2e::fakes::pki::TestCa::new("svm management CA");
    let w = |n: &str, s: &str| std::fs::write(dir.join(n), s).unwrap();
    w("ca.crt", &ca.cert_pem());
    let server = ca.server("svm-api");
    w("api.crt", &server.cert_pem);
    w("api.key", &server.key_pem);
    for &(name, serial) in clients {
        let c = ca.client_serial("svm-admin", serial);
        w(&format!("{name}.crt"), &c.cert_pem);
        w(&format!("{name}.key"), &c.key_pem);
    }
    ca
}

/// The daemon's configuration with the control plane and the API (`extra` appended).
fn control_config(net: &Net, extra: &str) -> String {
    let d = net.dir.path("");
    format!(
        "backend: af-packet\nmode: inline\nvm_interface: {m}\nnetwork_interface: {n}\n\
         workers: 1\naf_packet: {{block_count: 8}}\nstate_dir: {state}\n\
         api:\n  listen: 127.0.0.1:8443\n  cert: {d}/api.crt\n  key: {d}/api.key\n  \
         client_ca: {d}/ca.crt\n  admin: [CN=svm-admin]\n{extra}",
        m = net.dev('m'),
        n = net.dev('n'),
        state = net.dir.path("state").display(),
        d = d.display(),
    )
}

#[test]
fn revoked_client_certificates_are_refused_and_crls_reload_on_sighup() {
    skip_unless_able!();
    let mut net = Net::new('r', Backend::AfPacket);
    let dir = net.dir.path("");
    let ca = write_pki(&dir, &[("admin", 1001), ("revoked", 1002), ("later", 1003)]);
    let w = |n: &str, s: &str| std::fs::write(dir.join(n), s).unwrap();
    w("ca.crl", &ca.crl(1, &[1002]));
    let cfg = control_config(
        &net,
        &format!("  crl: [{}]\n", dir.join("ca.crl").display()),
    );
    net.launch_svm("mode: standard\n", &cfg);
    let status = "/api/v1/status";
    assert_eq!(api_status(&net, "admin", status), 200, "{}", net.svm_log());
    assert_eq!(
        api_status(&net, "revoked", status),
        0,
        "revoked admin let in"
    );
    assert_eq!(api_status(&net, "later", status), 200);

    // A new list revokes `later` too: in force after SIGHUP, for new connections.
    w("ca.crl", &ca.crl(2, &[1002, 1003]));
    net.signal_svm("-HUP");
    net.wait_log(
        "1 certificate revocation list(s) reloaded",
        1,
        Duration::from_secs(10),
    );
    assert_eq!(api_status(&net, "later", status), 0, "later not refused");
    assert_eq!(api_status(&net, "revoked", status), 0);
    assert_eq!(api_status(&net, "admin", status), 200);

    // A list that cannot be read keeps the one in force.
    w("ca.crl", "not a CRL\n");
    net.signal_svm("-HUP");
    net.wait_log(
        "not reloaded, the previous ones stay in force",
        1,
        Duration::from_secs(10),
    );
    assert_eq!(api_status(&net, "later", status), 0);
    assert_eq!(api_status(&net, "admin", status), 200);
    net.stop_svm();
}

/// `nsx.password_credential` names a file of `$CREDENTIALS_DIRECTORY` (systemd's
/// `LoadCredential=`): refused without the variable and when group or others may read the file;
/// accepted otherwise (the daemon then goes on to open its interfaces, which do not exist here).
/// Needs neither root nor namespaces.
#[test]
fn nsx_password_credential_from_the_service_manager() {
    use std::os::unix::fs::PermissionsExt;
    let dir = svm_e2e::TempDir::new("ops-cred");
    let ca = svm_e2e::fakes::pki::TestCa::new("nsx CA");
    std::fs::write(dir.path("nsx-ca.crt"), ca.cert_pem()).unwrap();
    let creds = dir.path("credentials");
    std::fs::create_dir_all(&creds).unwrap();
    let secret = creds.join("nsx-password");
    std::fs::write(&secret, "from-systemd\n").unwrap();
    let cfg = dir.path("svm.yaml");
    std::fs::write(
        &cfg,
        format!(
            "mode: inline\nvm_interface: nosuchif0\nnetwork_interface: nosuchif1\n\
             state_dir: {}\nnsx: {{url: \"https://nsx.example\", user: u, ca: {}, \
             password_credential: nsx-password}}\n",
            dir.path("state").display(),
            dir.path("nsx-ca.crt").display()
        ),
    )
    .unwrap();
    let run = |env: Option<&std::path::Path>| {
        let mut c = std::process::Command::new(svm_e2e::svm_bin());
        c.args(["run", "--config", cfg.to_str().unwrap()])
            .env_remove("CREDENTIALS_DIRECTORY");
        if let Some(d) = env {
            c.env("CREDENTIALS_DIRECTORY", d);
        }
        let o = c.output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = run(None);
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains("nsx.password_credential: $CREDENTIALS_DIRECTORY is not set"),
        "{err}"
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = run(Some(&creds));
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains("nsx.password_credential: ") && err.contains("chmod 0600"),
        "{err}"
    );
    assert!(!err.contains("from-systemd"), "{err}");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o400)).unwrap();
    let (code, err) = run(Some(&creds));
    assert!(!err.contains("nsx.password"), "{err}");
    assert!(err.contains("nosuchif"), "{err}");
    assert_ne!(code, Some(0));
}

fn proc_status(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap()
}

fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_default()
        .trim()
}

/// `run_as`: started as root, the daemon opens its ports and files and becomes `nobody` with no
/// capability left, and still forwards, blocks, answers the API, writes its store and EVE and
/// reloads on SIGHUP.
#[test]
fn runs_as_an_unprivileged_user_after_start() {
    skip_unless_able!();
    let Ok(Some(nobody)) = nix_user("nobody") else {
        eprintln!("SKIPPED: no user nobody");
        return;
    };
    let mut net = Net::new('u', Backend::AfPacket);
    let dir = net.dir.path("");
    let ca = write_pki(&dir, &[("admin", 2001), ("revoked", 2002)]);
    std::fs::write(dir.join("ca.crl"), ca.crl(1, &[])).unwrap();
    let cfg = control_config(
        &net,
        &format!(
            "  crl: [{}]\nrun_as: nobody\n",
            dir.join("ca.crl").display()
        ),
    );
    let eve = net.launch_svm("mode: standard\n", &cfg);
    let log = net.wait_log("running as nobody", 1, Duration::from_secs(10));
    let pid = net.svm_pid();
    let st = proc_status(pid);
    let uid = format!("{nobody}\t{nobody}\t{nobody}\t{nobody}");
    assert_eq!(field(&st, "Uid:"), uid, "{st}\n{log}");
    assert_eq!(field(&st, "CapEff:"), "0000000000000000", "{st}");
    assert_eq!(field(&st, "CapPrm:"), "0000000000000000", "{st}");
    // Every thread (workers, keeper, API runtime) switched.
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let t = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        assert_eq!(field(&t, "Uid:"), uid, "{t}");
    }

    // Forwards.
    net.http_server('V', "10.77.0.2");
    net.wait_http('A', "10.77.0.2");
    assert_eq!(net.curl('A', "10.77.0.2", 10), Some(net.blob()));
    // Answers the API, writes the store (a manual block) and blocks.
    assert_eq!(api_status(&net, "admin", "/api/v1/status"), 200);
    let (code, body) = api_call(
        &net,
        "admin",
        "POST",
        "/api/v1/blocked-hosts",
        Some(r#"{"vlan": "untagged", "address": "10.77.0.1", "minutes": 1, "reason": "test"}"#),
    );
    assert_eq!(code, 201, "{body}\n{}", net.svm_log());
    let deadline = Instant::now() + Duration::from_secs(5);
    while net.curl('A', "10.77.0.2", 1).is_some() {
        assert!(Instant::now() < deadline, "the block is not enforced");
    }
    // The block is in EVE.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&eve)
        .unwrap_or_default()
        .contains("10.77.0.1")
    {
        assert!(Instant::now() < deadline, "no block in EVE");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Reloads on SIGHUP (the CRLs now revoke `revoked`).
    assert_eq!(api_status(&net, "revoked", "/api/v1/status"), 200);
    std::fs::write(dir.join("ca.crl"), ca.crl(2, &[2002])).unwrap();
    net.signal_svm("-HUP");
    net.wait_log(
        "1 certificate revocation list(s) reloaded",
        1,
        Duration::from_secs(10),
    );
    assert_eq!(api_status(&net, "revoked", "/api/v1/status"), 0);
    let log = net.stop_svm();
    assert!(!log.contains("store error"), "{log}");
    // The store was written as nobody: the block is there at the next start.
    let state = std::fs::metadata(dir.join("state").join("state.redb")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&state), nobody);
}

/// The uid of a user, from /etc/passwd.
fn nix_user(name: &str) -> std::io::Result<Option<u32>> {
    Ok(std::fs::read_to_string("/etc/passwd")?
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(2).and_then(|u| u.parse().ok())))
}

/// logrotate's way (rename, then SIGHUP): the daemon opens its EVE path again, and the events
/// after the signal go to the new file, none to the renamed one.
#[test]
fn eve_file_reopened_after_rename_and_sighup() {
    skip_unless_able!();
    let mut net = Net::new('e', Backend::AfPacket);
    let eve = net.start_svm(live::STANDARD, 1);
    net.http_server('V', "0.0.0.0");
    net.wait_http('A', "10.77.0.2");
    let rotated = eve.with_extension("json.1");
    std::fs::rename(&eve, &rotated).unwrap();
    net.signal_svm("-HUP");
    // The daemon takes the signal between two events: the first scan alert reopens the file.
    std::thread::sleep(Duration::from_millis(500));
    let scan = net.exec('A', live::NMAP);
    assert!(scan.status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&eve)
        .unwrap_or_default()
        .contains("Scan.Generic.TCP")
    {
        assert!(
            Instant::now() < deadline,
            "no alert in a new {}: {}",
            eve.display(),
            net.svm_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = net.stop_svm();
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(!old.contains("Scan.Generic.TCP"), "{old}\n{log}");
}

/// A hung worker: alive, its poll loop stopped (the debug builds' fault injection
/// `SVM_DEBUG_STALL_WORKERS_AFTER`, svm/src/daemon/stall.rs), so it forwards nothing and ends
/// nothing. Reported once its status is 10 s old: `worker_stalled` in the log and the EVE,
/// `/healthz` degraded, `svm_workers_stalled` 1.
#[test]
fn a_hung_worker_is_reported_stalled() {
    skip_unless_able!();
    if !cfg!(debug_assertions) {
        eprintln!("SKIPPED hung worker test: the stall injection exists in debug builds only");
        return;
    }
    let mut net = Net::new('h', Backend::AfPacket);
    write_pki(&net.dir.path(""), &[("admin", 1001)]);
    let cfg = control_config(&net, "");
    let eve = net.launch_svm_env(
        "mode: standard\n",
        &cfg,
        &[("SVM_DEBUG_STALL_WORKERS_AFTER", "1")],
    );
    let (code, body) = api_call(&net, "admin", "GET", "/healthz", None);
    assert_eq!((code, body.trim()), (200, "ok"), "{}", net.svm_log());
    net.wait_log("worker 0 is stalled", 1, Duration::from_secs(30));
    let (code, body) = api_call(&net, "admin", "GET", "/healthz", None);
    assert_eq!(code, 200);
    assert!(
        body.starts_with("degraded: worker 0 stalled"),
        "{body}\n{}",
        net.svm_log()
    );
    let (_, metrics) = api_call(&net, "admin", "GET", "/metrics", None);
    assert!(
        metrics.lines().any(|l| l == "svm_workers_stalled 1"),
        "{metrics}"
    );
    // The rule engine's run-time errors are exported beside it (none here: no rules).
    assert!(
        metrics.contains("svm_rule_runtime_errors_total{kind=\"inspect_limit\"} 0"),
        "{metrics}"
    );
    let log = net.stop_svm();
    let ev = live::events(&eve);
    let stalled: Vec<_> = ev
        .iter()
        .filter(|e| e["event_type"] == "worker_stalled")
        .collect();
    assert_eq!(stalled.len(), 1, "{log}");
}
