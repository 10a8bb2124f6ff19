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
/// HTTP status, 0 when the handshake was refused.
fn api_status(net: &Net, who: &str, path: &str) -> u16 {
    let p = |n: &str| net.dir.path(n).to_str().unwrap().to_owned();
    let out = net.exec(
        'S',
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            "10",
            "-w",
            "%{http_code}",
            "--cacert",
            &p("ca.crt"),
            "--cert",
            &p(&format!("{who}.crt")),
            "--key",
            &p(&format!("{who}.key")),
            &format!("https://127.0.0.1:8443{path}"),
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn revoked_client_certificates_are_refused_and_crls_reload_on_sighup() {
    skip_unless_able!();
    let mut net = Net::new('r', Backend::AfPacket);
    let ca = svm_e2e::fakes::pki::TestCa::new("svm management CA");
    let dir = net.dir.path("");
    let w = |n: &str, s: &str| std::fs::write(dir.join(n), s).unwrap();
    w("ca.crt", &ca.cert_pem());
    let server = ca.server("svm-api");
    w("api.crt", &server.cert_pem);
    w("api.key", &server.key_pem);
    for (name, serial) in [("admin", 1001), ("revoked", 1002), ("later", 1003)] {
        let c = ca.client_serial("svm-admin", serial);
        w(&format!("{name}.crt"), &c.cert_pem);
        w(&format!("{name}.key"), &c.key_pem);
    }
    w("ca.crl", &ca.crl(1, &[1002]));
    let d = dir.clone();
    let (m, n) = (net.dev('m'), net.dev('n'));
    net.launch_svm(
        "mode: standard\n",
        &format!(
            "backend: af-packet\nmode: inline\nvm_interface: {m}\nnetwork_interface: {n}\n\
             workers: 1\naf_packet: {{block_count: 8}}\nstate_dir: {state}\n\
             api:\n  listen: 127.0.0.1:8443\n  cert: {d}/api.crt\n  key: {d}/api.key\n  \
             client_ca: {d}/ca.crt\n  admin: [CN=svm-admin]\n  crl: [{d}/ca.crl]\n",
            state = net.dir.path("state").display(),
            d = d.display(),
        ),
    );
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
