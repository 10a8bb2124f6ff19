//! End-to-end control plane on live interfaces: the real `svm run` with `state_dir` and the mTLS
//! API, inline between an attacker and a victim namespace (topology as in `live_afpacket.rs`),
//! driven with curl and the `svm` admin CLI from inside the SVM's namespace (the API listens on
//! its 127.0.0.1). The central-server and NSX fakes run on a tokio runtime whose threads joined
//! the SVM's namespace, so the daemon reaches them on 127.0.0.1 too.
//!
//! Needs root, iproute2, ethtool, nmap, curl and python3; without them every test prints
//! why it is skipped and passes. Namespaces, veths and processes are removed on drop, also when
//! an assertion fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/live.rs"]
mod live;

use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use live::{must, run, skip_reason};
use serde_json::Value;
use svm_e2e::fakes::central::FakeCentral;
use svm_e2e::fakes::nsx::FakeNsx;
use svm_e2e::fakes::pki::TestCa;
use svm_e2e::{TempDir, svm_bin};

macro_rules! skip_unless_able {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("SKIPPED live control-plane test: {why}");
            return;
        }
    };
}

const API: &str = "https://127.0.0.1:8443";
const BOUNCER_KEY: &str = "bouncer-key-0123456789abcdef";
const ATTACKER: &str = "10.77.0.1";
const BENIGN: &str = "10.77.0.3";
const VICTIM: &str = "10.77.0.2";

/// Namespaces, veths, PKI files and processes of one test.
struct Net {
    t: char,
    pid: u32,
    svm: Option<Child>,
    children: Vec<Child>,
    dir: TempDir,
    /// Extra configuration (central, nsx, inventory) appended to the daemon's.
    extra: String,
    /// The management CA (also issues the fakes' certificates).
    ca: TestCa,
    /// `backend:` and its interface keys in the daemon's configuration (AF_PACKET by default).
    backend: String,
}

impl Net {
    fn ns(&self, role: char) -> String {
        format!("svm{role}{}{}", self.t, self.pid)
    }

    fn dev(&self, role: char) -> String {
        format!("{role}{}{}", self.t, self.pid)
    }

    fn p(&self, name: &str) -> String {
        self.dir.path(name).to_str().unwrap().to_owned()
    }

    fn exec(&self, role: char, args: &[&str]) -> Output {
        let ns = self.ns(role);
        let mut full = vec!["ip", "netns", "exec", &ns];
        full.extend_from_slice(args);
        run(&full)
    }

    fn spawn_in(&self, role: char, args: &[&str], log: &str) -> Child {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path(log))
            .unwrap();
        Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args)
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap()
    }

    fn new(t: char) -> Net {
        let mut net = Net {
            t,
            pid: std::process::id(),
            svm: None,
            children: vec![],
            dir: TempDir::new(&format!("live-ctl-{t}")),
            extra: String::new(),
            ca: TestCa::new("svm management CA"),
            backend: String::new(),
        };
        net.backend = format!(
            "backend: af-packet\nvm_interface: {}\nnetwork_interface: {}\nworkers: 2\n\
             af_packet: {{block_count: 8}}\n",
            net.dev('m'),
            net.dev('n')
        );
        net.build();
        net.pki();
        net
    }

    fn build(&mut self) {
        for r in ['A', 'S', 'V'] {
            let _ = run(&["ip", "netns", "del", &self.ns(r)]);
            must(&["ip", "netns", "add", &self.ns(r)]);
            let _ = self.exec(r, &["ip", "link", "set", "lo", "up"]);
        }
        let (a, n, m, v) = (self.dev('a'), self.dev('n'), self.dev('m'), self.dev('v'));
        let (nsa, nss, nsv) = (self.ns('A'), self.ns('S'), self.ns('V'));
        must(&[
            "ip", "link", "add", &a, "netns", &nsa, "type", "veth", "peer", "name", &n, "netns",
            &nss,
        ]);
        must(&[
            "ip", "link", "add", &v, "netns", &nsv, "type", "veth", "peer", "name", &m, "netns",
            &nss,
        ]);
        for (r, d) in [('A', &a), ('S', &n), ('S', &m), ('V', &v)] {
            let _ = self.exec(
                r,
                &[
                    "ethtool", "-K", d, "tx", "off", "rx", "off", "tso", "off", "gso", "off",
                    "gro", "off",
                ],
            );
            assert!(
                self.exec(r, &["ip", "link", "set", d, "up"])
                    .status
                    .success()
            );
        }
        for (r, d, addr) in [
            ('A', &a, "10.77.0.1/24"),
            ('A', &a, "10.77.0.3/24"),
            ('V', &v, "10.77.0.2/24"),
        ] {
            assert!(
                self.exec(r, &["ip", "addr", "add", addr, "dev", d])
                    .status
                    .success()
            );
        }
    }

    /// Management CA, the API's server certificate, admin / reader clients, and a client from
    /// a foreign CA (with the admin's name).
    fn pki(&self) {
        let ca = &self.ca;
        let other = TestCa::new("someone else's CA");
        let w = |n: &str, s: &str| std::fs::write(self.dir.path(n), s).unwrap();
        w("ca.crt", &ca.cert_pem());
        let server = ca.server("svm-api");
        w("api.crt", &server.cert_pem);
        w("api.key", &server.key_pem);
        for (name, issued) in [
            ("admin", ca.client("svm-admin", None)),
            ("reader", ca.client("alice", Some("svm-readers"))),
            ("foreign", other.client("svm-admin", None)),
        ] {
            w(&format!("{name}.crt"), &issued.cert_pem);
            w(&format!("{name}.key"), &issued.key_pem);
        }
    }

    fn write_config(&self, policy_yaml: &str) -> String {
        let policy = self.dir.path("policy.yaml");
        std::fs::write(&policy, policy_yaml).unwrap();
        let cfg = self.dir.path("svm.yaml");
        std::fs::write(
            &cfg,
            format!(
                "{backend}mode: inline\npolicy: {policy}\nstate_dir: {state}\n\
                 outputs: {{eve: {{path: {eve}}}}}\n\
                 api:\n  listen: 127.0.0.1:8443\n  cert: {d}/api.crt\n  key: {d}/api.key\n  \
                 client_ca: {d}/ca.crt\n  admin: [CN=svm-admin]\n  read_only: [OU=svm-readers]\n  \
                 bouncer_keys: [{BOUNCER_KEY}]\n{extra}",
                backend = self.backend,
                policy = policy.display(),
                state = self.p("state"),
                eve = self.p("eve.json"),
                d = self.dir.path("").display(),
                extra = self.extra,
            ),
        )
        .unwrap();
        cfg.to_str().unwrap().to_owned()
    }

    /// Start the daemon; wait until the API answers.
    fn start_svm(&mut self, policy_yaml: &str) {
        let cfg = self.write_config(policy_yaml);
        let bin = svm_bin();
        let child = self.spawn_in(
            'S',
            &[bin.to_str().unwrap(), "run", "--config", &cfg],
            "svm.log",
        );
        self.svm = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if log.contains("control plane: policy version")
                && self.api("admin", "GET", "/healthz", None).0 == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "svm did not start:\n{log}");
            if let Some(status) = self.svm.as_mut().unwrap().try_wait().unwrap() {
                panic!("svm exited with {status}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("svm.log")).unwrap_or_default()
    }

    fn kill9(&mut self) {
        let mut svm = self.svm.take().unwrap();
        must(&["kill", "-KILL", &svm.id().to_string()]);
        let _ = svm.wait();
    }

    fn stop_svm(&mut self) -> String {
        let mut svm = self.svm.take().unwrap();
        must(&["kill", "-TERM", &svm.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = svm.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "svm did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = self.log();
        assert!(status.success(), "svm exited with {status}:\n{log}");
        log
    }

    /// One API call with curl from the SVM's namespace as `who` (a certificate name, or "" for
    /// no certificate); (status, body). Status 0: no HTTP answer (TLS refused).
    fn api_with(
        &self,
        who: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[&str],
    ) -> (u16, String) {
        let ca = self.p("ca.crt");
        let url = format!("{API}{path}");
        let mut args: Vec<String> = vec![
            "curl".into(),
            "-s".into(),
            "--max-time".into(),
            "10".into(),
            "-w".into(),
            "\n%{http_code}".into(),
            "--cacert".into(),
            ca,
            "-X".into(),
            method.into(),
        ];
        if !who.is_empty() {
            args.extend([
                "--cert".into(),
                self.p(&format!("{who}.crt")),
                "--key".into(),
                self.p(&format!("{who}.key")),
            ]);
        }
        for h in headers {
            args.extend(["-H".into(), (*h).into()]);
        }
        if let Some(b) = body {
            let f = self.p("body.json");
            std::fs::write(&f, b).unwrap();
            args.extend([
                "-H".into(),
                "Content-Type: application/json".into(),
                "--data-binary".into(),
                format!("@{f}"),
            ]);
        }
        args.push(url);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.exec('S', &refs);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    fn api(&self, who: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        self.api_with(who, method, path, body, &[])
    }

    fn json(&self, who: &str, path: &str) -> Value {
        let (code, body) = self.api(who, "GET", path, None);
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The admin CLI from the SVM's namespace.
    fn cli(&self, args: &[&str]) -> Output {
        let bin = svm_bin();
        let (cert, key, ca) = (self.p("admin.crt"), self.p("admin.key"), self.p("ca.crt"));
        let mut full = vec![bin.to_str().unwrap()];
        full.extend_from_slice(args);
        full.extend(["--api", API, "--cert", &cert, "--key", &key, "--ca", &ca]);
        self.exec('S', &full)
    }

    fn http_server(&mut self) {
        let root = self.dir.path("www");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("index.html"), b"hello from the victim\n").unwrap();
        let r = root.to_str().unwrap().to_owned();
        let c = self.spawn_in(
            'V',
            &[
                "python3",
                "-m",
                "http.server",
                "8000",
                "--bind",
                "0.0.0.0",
                "--directory",
                &r,
            ],
            "http.log",
        );
        self.children.push(c);
    }

    /// curl from the attacker namespace with a source address; true on success.
    fn curl_from(&self, src: &str, timeout_s: u32) -> bool {
        self.exec(
            'A',
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "--interface",
                src,
                "--max-time",
                &timeout_s.to_string(),
                &format!("http://{VICTIM}:8000/index.html"),
            ],
        )
        .status
        .success()
    }

    fn wait_http(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.curl_from(ATTACKER, 2) {
            assert!(Instant::now() < deadline, "no HTTP through the SVM");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn nmap(&self, ports: &str) {
        let scan = self.exec(
            'A',
            &[
                "nmap",
                "-sS",
                "-Pn",
                "-n",
                "-S",
                ATTACKER,
                "-e",
                &self.dev('a'),
                "-p",
                ports,
                "--max-retries",
                "0",
                "-T4",
                VICTIM,
            ],
        );
        assert!(
            scan.status.success(),
            "{}",
            String::from_utf8_lossy(&scan.stderr)
        );
    }

    fn eve(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path("eve.json"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(mut s) = self.svm.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for r in ['A', 'S', 'V'] {
            let _ = run(&["ip", "netns", "del", &self.ns(r)]);
        }
    }
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// UDP echo on port 9000.
const ECHO_SERVER: &str = "import socket\n\
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',9000))\n\
while True:\n  d,a=s.recvfrom(2048)\n  s.sendto(d,a)\n";

/// `python3 -c ECHO_CLIENT SRC DST N`: N probes 20 ms apart, each waiting up to 1 s for its echo;
/// prints `sent N received M packet loss`.
const ECHO_CLIENT: &str = "import socket,sys,time\n\
src,dst,n=sys.argv[1],sys.argv[2],int(sys.argv[3])\n\
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind((src,0))\ns.settimeout(1.0)\nok=0\n\
for i in range(n):\n  m=b'probe %d' % i\n  s.sendto(m,(dst,9000))\n  \
t=time.time()+1.0\n  \
while time.time()<t:\n    \
try:\n      d,_=s.recvfrom(2048)\n    \
except socket.timeout:\n      break\n    \
if d==m:\n      ok+=1\n      break\n  \
time.sleep(0.02)\n\
print('sent %d received %d packet loss' % (n,ok), flush=True)\n";

/// A CrowdSec-style bouncer's poll (API key, no client certificate).
fn bouncer(net: &Net, startup: bool) -> Value {
    let (code, body) = net.api_with(
        "",
        "GET",
        &format!("/v1/decisions/stream?startup={startup}"),
        None,
        &[&format!("X-Api-Key: {BOUNCER_KEY}")],
    );
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn blocked_addresses(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| b["address"].as_str().unwrap().to_owned())
        .collect()
}

/// Push standard mode over mTLS, with a 2 s port-scan window (a detection episode ends after one
/// window without activity; the next scan starts a new one); the applied policy.
fn push_standard(net: &Net) -> Value {
    let (code, body) = net.api(
        "admin",
        "PUT",
        "/api/v1/policy",
        Some(
            r#"{"mode": "standard", "attack_blocker": {"block_minutes": 30, "detectors":
                {"tcp_port_scan": {"enabled": true, "count": 20, "window_secs": 2}}}}"#,
        ),
    );
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Monitoring: a scan is reported, nothing is blocked.
fn scan_is_only_reported(net: &Net) {
    net.nmap("1-200");
    std::thread::sleep(Duration::from_millis(300));
    assert!(net.curl_from(ATTACKER, 5), "monitoring mode must not block");
    assert!(
        net.json("admin", "/api/v1/blocked-hosts")
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// After the previous scan's window, a new scan blocks the attacker in the dataplane and the API.
fn scan_until_blocked(net: &Net) {
    std::thread::sleep(Duration::from_secs(3));
    net.nmap("201-400");
    wait_until("the attacker's block", 5, || !net.curl_from(ATTACKER, 1));
    wait_until("the block in the API", 5, || {
        blocked_addresses(&net.json("admin", "/api/v1/blocked-hosts"))
            .contains(&ATTACKER.to_owned())
    });
}

/// (a) policy push changes live behaviour without losing a benign packet; (b) a bad policy is
/// refused with every path; (c) foreign CA refused, read-only role limited; (d) an nmap block is
/// listed by the CLI and the API and lifted by `svm blocked allow`; (g) kill -9 + restart keeps
/// the policy version and the block with its remaining time; (h) a bouncer sees the block and
/// its removal on the decisions stream.
#[test]
fn policy_push_blocks_and_restart() {
    skip_unless_able!();
    let mut net = Net::new('c');
    net.start_svm("mode: monitoring\n");
    net.http_server();
    net.wait_http();

    let p = net.json("admin", "/api/v1/policy");
    assert_eq!(p["version"], 0, "{p}");
    assert_eq!(
        p["document"]["mode"], "monitoring",
        "the policy file runs as version 0"
    );

    // A benign client (another address of the attacker's host) pings through the SVM all along
    // (UDP echo: every probe must come back).
    let echo = net.spawn_in('V', &["python3", "-c", ECHO_SERVER], "echo.log");
    net.children.push(echo);
    std::thread::sleep(Duration::from_millis(300));
    let ping = net.spawn_in(
        'A',
        &["python3", "-c", ECHO_CLIENT, BENIGN, VICTIM, "600"],
        "ping.log",
    );
    net.children.push(ping);

    // (a) Monitoring: a scan is reported, nothing is blocked.
    scan_is_only_reported(&net);

    assert_eq!(push_standard(&net)["version"], 1);

    // (h) A bouncer's first poll (startup) sees no decision yet.
    let first = bouncer(&net, true);
    assert!(first["new"].as_array().is_none_or(Vec::is_empty), "{first}");

    // The same kind of scan now blocks the attacker.
    scan_until_blocked(&net);

    // The benign ping lost nothing across the push and the block.
    let deadline = Instant::now() + Duration::from_secs(30);
    let ping_log = loop {
        let l = std::fs::read_to_string(net.dir.path("ping.log")).unwrap_or_default();
        if l.contains("packet loss") {
            break l;
        }
        assert!(Instant::now() < deadline, "ping did not finish: {l}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        ping_log.contains("sent 600 received 600 packet loss"),
        "benign traffic lost packets:\n{ping_log}"
    );

    // Dataplane counters on /metrics.
    let (code, metrics) = net.api("reader", "GET", "/metrics", None);
    assert_eq!(code, 200);
    assert!(metrics.contains("svm_dataplane_blocks 1"), "{metrics}");
    assert!(metrics.contains("svm_policy_version 1"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("svm_packets_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );

    // (d) The CLI lists the block.
    let list = net.cli(&["blocked", "list"]);
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        list.status.success(),
        "{listed}{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(listed.contains(ATTACKER), "{listed}");
    // The scan's frames after the detection were dropped by the block: its hits column counts
    // them, as the API's list does.
    let row: Vec<&str> = listed
        .lines()
        .find(|l| l.contains(ATTACKER))
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(listed.starts_with("VLAN") && listed.lines().next().unwrap().contains("HITS"));
    let (code, body) = net.api("reader", "GET", "/api/v1/blocked-hosts", None);
    assert_eq!(code, 200);
    let api: Value = serde_json::from_str(&body).unwrap();
    let hits = api[0]["hits"].as_u64().unwrap();
    assert!(hits > 0, "{body}");
    assert!(row[3].parse::<u64>().unwrap() > 0, "{listed}");

    // (h) The bouncer's next poll carries the new decision.
    let next = bouncer(&net, false);
    let new: Vec<&str> = next["new"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["value"].as_str().unwrap())
        .collect();
    assert_eq!(new, [ATTACKER], "{next}");

    // (b) A bad policy: 422 with every path, the running policy stays.
    let (code, body) = net.api(
        "admin",
        "PUT",
        "/api/v1/policy",
        Some(
            r#"{"mode": "monitor", "colour": "blue", "attack_blocker": {"block_minutes": 0},
                "exclusions": [{"address": "10.0.0.300", "rule": "do_not_scan"}]}"#,
        ),
    );
    assert_eq!(code, 422, "{body}");
    for path in [
        "\"mode\"",
        "\"colour\"",
        "\"attack_blocker.block_minutes\"",
        "\"exclusions[0].address\"",
    ] {
        assert!(body.contains(path), "{path} missing from {body}");
    }
    let p = net.json("admin", "/api/v1/policy");
    assert_eq!(p["version"], 1);
    assert_eq!(p["document"]["mode"], "standard");
    assert!(!net.curl_from(ATTACKER, 1), "the old policy's block holds");
    assert!(net.curl_from(BENIGN, 5), "benign traffic still passes");

    // (c) A certificate from another CA is refused; the read-only role can read only.
    assert_eq!(net.api("foreign", "GET", "/api/v1/policy", None).0, 0);
    assert_eq!(net.api("reader", "GET", "/api/v1/policy", None).0, 200);
    assert_eq!(
        net.api(
            "reader",
            "PUT",
            "/api/v1/policy",
            Some(r#"{"mode": "monitoring"}"#)
        )
        .0,
        403
    );
    assert_eq!(
        net.api(
            "reader",
            "DELETE",
            &format!("/api/v1/blocked-hosts/any/{ATTACKER}"),
            None
        )
        .0,
        403
    );
    assert!(
        !net.curl_from(ATTACKER, 1),
        "the reader's unblock must not lift the block"
    );

    // (g) kill -9 and restart: same policy version, same block with its remaining time.
    let before = net.json("admin", "/api/v1/blocked-hosts");
    let remaining = before[0]["remaining_secs"].as_u64().unwrap();
    let expires = before[0]["expires"].as_str().unwrap().to_owned();
    net.kill9();
    net.start_svm("mode: monitoring\n");
    let p = net.json("admin", "/api/v1/policy");
    assert_eq!(
        p["version"], 1,
        "pushed policy survives, the file does not win: {p}"
    );
    assert_eq!(p["document"]["mode"], "standard");
    let after = net.json("admin", "/api/v1/blocked-hosts");
    assert_eq!(blocked_addresses(&after), [ATTACKER], "{after}");
    assert_eq!(after[0]["expires"], expires.as_str(), "same expiry");
    let left = after[0]["remaining_secs"].as_u64().unwrap();
    assert!(
        left <= remaining && left + 60 > remaining,
        "{left} vs {remaining}"
    );
    wait_until("http after restart", 10, || net.curl_from(BENIGN, 2));
    assert!(
        !net.curl_from(ATTACKER, 2),
        "the restored block holds in the dataplane"
    );

    // (d) `svm blocked allow` lifts it at once.
    let allow = net.cli(&["blocked", "allow", ATTACKER]);
    assert!(
        allow.status.success(),
        "{}{}",
        String::from_utf8_lossy(&allow.stdout),
        String::from_utf8_lossy(&allow.stderr)
    );
    wait_until("the attacker's curl after allow", 3, || {
        net.curl_from(ATTACKER, 1)
    });
    assert!(
        net.json("admin", "/api/v1/blocked-hosts")
            .as_array()
            .unwrap()
            .is_empty()
    );

    // (h) A bouncer polling since the restart sees the deletion.
    let _ = bouncer(&net, true);
    let (code, _) = net.api(
        "admin",
        "POST",
        "/api/v1/blocked-hosts",
        Some(&format!(
            r#"{{"vlan": "untagged", "address": "{ATTACKER}", "minutes": 1, "reason": "test"}}"#
        )),
    );
    assert_eq!(code, 201);
    wait_until("the manual block in the dataplane", 3, || {
        !net.curl_from(ATTACKER, 1)
    });
    let s = bouncer(&net, false);
    assert_eq!(s["new"][0]["value"], ATTACKER, "{s}");
    assert!(net.cli(&["blocked", "allow", ATTACKER]).status.success());
    let s = bouncer(&net, false);
    assert_eq!(s["deleted"][0]["value"], ATTACKER, "{s}");

    let log = net.stop_svm();
    let ev = net.eve();
    let adds = ev
        .iter()
        .filter(|e| e["event_type"] == "block" && e["block"]["action"] == "add")
        .count();
    assert_eq!(
        adds, 2,
        "the detection block once, the manual one once: {log}"
    );
    assert!(
        ev.iter().any(|e| e["event_type"] == "policy_applied"),
        "{log}"
    );
    // The stop line counts the events this run's control plane emitted (the EVE file also holds
    // the run before the kill -9).
    let stopped = log
        .lines()
        .find_map(|l| l.split_once("svm run: stopped; ").map(|(_, rest)| rest))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok());
    assert!(
        stopped.is_some_and(|n| n >= 2 && n <= ev.len()),
        "{stopped:?} of {} events: {log}",
        ev.len()
    );
    // The start line after the restart names the pushed policy, not the file, and the mode as
    // the policy spells it.
    let starts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" svm run: ") && l.contains(" worker"))
        .collect();
    assert_eq!(starts.len(), 2, "{log}");
    assert!(starts[0].ends_with("mode monitoring"), "{log}");
    assert!(starts[1].contains(", policy version "), "{log}");
    assert!(starts[1].contains(" (pushed), mode "), "{log}");
}

/// A free TCP port on 127.0.0.1 inside the runtime's namespace.
fn free_port(rt: &tokio::runtime::Runtime) -> u16 {
    rt.block_on(rt.spawn(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    }))
    .unwrap()
}

/// (e) the central server gets every event exactly once per id after being down for a while;
/// (f) NSX gets exactly one add_tags for the attacked VM (the inventory maps the victim's
/// address to it).
#[test]
fn events_reach_central_once_and_nsx_tags_the_victim() {
    skip_unless_able!();
    let mut net = Net::new('e');
    let rt = live::runtime_in_with(&net.ns('S'), 2);
    let central_port = free_port(&rt);

    // NSX is up from the start.
    let nsx = FakeNsx::new("svm-tagger", "tag-secret");
    let nsx_server = net.ca.server("nsx-manager");
    let nsx_tls = svm_e2e::fakes::server_tls(&nsx_server, None);
    let nsx_port = {
        let nsx = nsx.clone();
        rt.block_on(rt.spawn(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            nsx.start(l, nsx_tls);
            port
        }))
        .unwrap()
    };
    let central_server = net.ca.server("central");
    let svm_client = net.ca.client("svm-01", None);
    for (n, pem) in [
        ("svm-client.crt", &svm_client.cert_pem),
        ("svm-client.key", &svm_client.key_pem),
    ] {
        std::fs::write(net.dir.path(n), pem).unwrap();
    }
    let d = net.dir.path("").display().to_string();
    net.extra = format!(
        "central:\n  url: https://127.0.0.1:{central_port}/api/v1/events\n  ca: {d}/ca.crt\n  \
         cert: {d}/svm-client.crt\n  key: {d}/svm-client.key\n  batch: 50\n  retry_max_secs: 1\n\
         nsx:\n  url: https://127.0.0.1:{nsx_port}\n  auth: basic\n  user: svm-tagger\n  \
         password: tag-secret\n  ca: {d}/ca.crt\n\
         inventory:\n  - id: vm-victim\n    name: victim\n    nsx_external_id: ext-victim-0001\n    \
         interfaces: [{{vlan: untagged, addresses: [{VICTIM}]}}]\n"
    );
    net.start_svm("mode: standard\n");
    net.http_server();
    net.wait_http();

    // Events while the central server is down: alerts, a block, a manual block and unblock.
    net.nmap("1-200");
    wait_until("the block", 5, || !net.curl_from(ATTACKER, 1));
    assert!(net.cli(&["blocked", "allow", ATTACKER]).status.success());
    std::thread::sleep(Duration::from_secs(3));
    let st = net.json("admin", "/api/v1/status");
    assert!(st["spool_events"].as_u64().unwrap() > 0, "{st}");
    assert!(st.get("rules").is_none(), "no rules section: {st}");

    // The central server comes up.
    let central = FakeCentral::default();
    {
        let central = central.clone();
        let tls = svm_e2e::fakes::server_tls(&central_server, Some(&net.ca));
        rt.block_on(rt.spawn(async move {
            let l = tokio::net::TcpListener::bind(("127.0.0.1", central_port))
                .await
                .unwrap();
            central.start(l, tls);
        }))
        .unwrap();
    }
    wait_until("the spool to drain", 20, || {
        net.json("admin", "/api/v1/status")["spool_events"] == 0
    });
    let log = net.stop_svm();

    // Every event of the EVE output reached the central server exactly once.
    let eve_ids: std::collections::BTreeSet<String> = net
        .eve()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let seen = central.seen.lock().unwrap();
    let dup: Vec<_> = seen.ids.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dup.is_empty(), "duplicates: {dup:?}");
    let central_ids: std::collections::BTreeSet<String> = seen.ids.keys().cloned().collect();
    assert!(
        eve_ids.is_subset(&central_ids),
        "missing at the central server: {:?}\n{log}",
        eve_ids.difference(&central_ids).collect::<Vec<_>>()
    );
    let types: Vec<&str> = seen
        .events
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    for t in ["alert", "block", "vm_tagged"] {
        assert!(
            types.contains(&t),
            "no {t} event at the central server: {types:?}"
        );
    }

    // Exactly one add_tags, for the victim's VM.
    let tags = nsx.successes();
    assert_eq!(tags.len(), 1, "{tags:?}");
    assert!(tags[0].to_string().contains("ext-victim-0001"), "{tags:?}");
    drop(seen);
    rt.shutdown_background();
}

/// (h) expiry: a 1-minute manual block (the shortest) is enforced, reaches a bouncer as a new
/// decision, and when it runs out the dataplane lets the source through again, the bouncer gets
/// the deletion and exactly one `expired` removal is reported. Takes a little over a minute.
#[test]
fn one_minute_block_expires_everywhere() {
    skip_unless_able!();
    let mut net = Net::new('x');
    net.start_svm("mode: standard\n");
    net.http_server();
    net.wait_http();
    let first = bouncer(&net, true);
    assert!(first["new"].as_array().is_none_or(Vec::is_empty), "{first}");
    let (code, body) = net.api(
        "admin",
        "POST",
        "/api/v1/blocked-hosts",
        Some(&format!(
            r#"{{"vlan": "untagged", "address": "{ATTACKER}", "minutes": 1}}"#
        )),
    );
    assert_eq!(code, 201, "{body}");
    let made = Instant::now();
    wait_until("the manual block in the dataplane", 3, || {
        !net.curl_from(ATTACKER, 1)
    });
    let s = bouncer(&net, false);
    assert_eq!(s["new"][0]["value"], ATTACKER, "{s}");
    std::thread::sleep(Duration::from_secs(55).saturating_sub(made.elapsed()));
    assert!(
        !net.curl_from(ATTACKER, 1),
        "still blocked before the minute is up"
    );
    wait_until("the block to expire in the dataplane", 20, || {
        net.curl_from(ATTACKER, 1)
    });
    assert!(
        made.elapsed() >= Duration::from_secs(59),
        "{:?}",
        made.elapsed()
    );
    wait_until("the expiry on the decisions stream", 5, || {
        let s = bouncer(&net, false);
        s["deleted"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x["value"] == ATTACKER))
    });
    assert!(
        net.json("admin", "/api/v1/blocked-hosts")
            .as_array()
            .unwrap()
            .is_empty()
    );
    let log = net.stop_svm();
    let expired = net
        .eve()
        .iter()
        .filter(|e| {
            e["event_type"] == "block"
                && e["block"]["action"] == "remove"
                && e["block"]["reason"] == "expired"
        })
        .count();
    assert_eq!(expired, 1, "{log}");
}

/// The control plane with the DPDK backend (two workers on `net_af_packet` vdevs over the same
/// veths): the policy file runs as version 0 (monitoring: a scan is only reported), a policy
/// pushed over mTLS reaches every DPDK worker, the next scan blocks the attacker in the dataplane
/// and in the API, and the control plane's EVE output gets the events. A pushed policy's rule
/// files and variables rebuild the rules; one naming a missing file or a broken variable is
/// refused with its paths.
#[cfg(feature = "dpdk")]
#[test]
fn dpdk_backend_follows_pushed_policy() {
    skip_unless_able!();
    let mut net = Net::new('d');
    net.backend = format!(
        "backend: dpdk\nvm_port: net_af_packet0\nnetwork_port: net_af_packet1\nworkers: 2\n\
         eal_args: [--no-huge, -m, \"256\", --no-pci, --no-shconf, --no-telemetry, -l, \"0-1\", \
         \"--vdev=net_af_packet0,iface={}\", \"--vdev=net_af_packet1,iface={}\"]\n",
        net.dev('m'),
        net.dev('n')
    );
    // A rule set too, for the status; its one rule never matches this traffic.
    std::fs::write(
        net.dir.path("local.rules"),
        "alert tcp any any -> any any (msg:\"never\"; content:\"no-such-bytes-here\"; sid:1; rev:1;)\n",
    )
    .unwrap();
    net.extra = format!("rules:\n  files: [{}]\n", net.p("local.rules"));
    net.start_svm("mode: monitoring\n");
    net.http_server();
    net.wait_http();
    assert_eq!(net.json("admin", "/api/v1/policy")["version"], 0);
    let status = net.json("reader", "/api/v1/status");
    assert_eq!(status["rules"]["loaded"], 1, "{status}");
    assert_eq!(status["rules"]["files"], 1, "{status}");

    scan_is_only_reported(&net);

    assert_eq!(push_standard(&net)["version"], 1);
    scan_until_blocked(&net);
    assert!(net.curl_from(BENIGN, 5), "another address still passes");
    let (code, metrics) = net.api("reader", "GET", "/metrics", None);
    assert_eq!(code, 200);
    assert!(metrics.contains("svm_policy_version 1"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("svm_packets_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );

    // A policy with its own rule files and a variable: the daemon's rules follow it.
    std::fs::write(
        net.dir.path("more.rules"),
        "alert tcp $HOME_NET any -> any any (msg:\"two\"; content:\"no-such-bytes-2\"; sid:2; rev:1;)\n\
         alert tcp any any -> $HOME_NET any (msg:\"three\"; content:\"no-such-bytes-3\"; sid:3; rev:1;)\n",
    )
    .unwrap();
    let (code, body) = net.api(
        "admin",
        "PUT",
        "/api/v1/policy",
        Some(&format!(
            r#"{{"mode": "standard", "activity_scanner": {{"rule_files": ["{}"],
                "address_groups": {{"HOME_NET": "[10.77.0.0/24]"}}}}}}"#,
            net.p("more.rules")
        )),
    );
    assert_eq!(code, 200, "{body}");
    wait_until("the policy's rules", 10, || {
        net.json("reader", "/api/v1/status")["rules"]["loaded"] == 2
    });
    // One the appliance cannot run: refused with every path, the running policy stays.
    let (code, body) = net.api(
        "admin",
        "PUT",
        "/api/v1/policy",
        Some(
            r#"{"activity_scanner": {"rule_files": ["/nonexistent/x.rules"],
                "address_groups": {"HOME_NET": "[10.0.0.0/8"}}}"#,
        ),
    );
    assert_eq!(code, 422, "{body}");
    for path in [
        "activity_scanner.rule_files[0]",
        "activity_scanner.address_groups.HOME_NET",
    ] {
        assert!(body.contains(path), "{path} missing from {body}");
    }
    assert_eq!(net.json("admin", "/api/v1/policy")["version"], 2);
    assert_eq!(net.json("reader", "/api/v1/status")["rules"]["loaded"], 2);

    let log = net.stop_svm();
    assert!(log.contains("2 workers on dpdk"), "{log}");
    assert!(
        log.contains("the policy changed the rule files or variables"),
        "{log}"
    );
    let ev = net.eve();
    let alerts = ev.iter().filter(|e| e["event_type"] == "alert").count();
    let adds = ev
        .iter()
        .filter(|e| e["event_type"] == "block" && e["block"]["action"] == "add")
        .count();
    assert!(alerts >= 2, "a report per scan expected: {log}");
    assert_eq!(adds, 1, "one block, after the push: {log}");
}

/// Issue 18, the daemon's automatic isolation: the attacker's address is a protected VM of the
/// inventory; its nmap scan (the attack blocker only informs) isolates it: `isolation_started`
/// in EVE, its HTTP no longer crosses the SVM while another address of the same namespace still
/// does; after kill -9 and a restart it is still isolated (restored from the store); and after
/// the minute the isolation ends (`isolation_ended`, reason `expired`) and its traffic flows
/// again. Takes a little over a minute.
#[test]
fn scanning_vm_is_isolated_automatically_across_kill9_until_expiry() {
    skip_unless_able!();
    let mut net = Net::new('i');
    net.extra = format!(
        "inventory:\n  - id: vm-scanner\n    name: scanner\n    nsx_external_id: ext-scanner\n    \
         interfaces: [{{vlan: untagged, addresses: [{ATTACKER}]}}]\n"
    );
    net.start_svm(
        "mode: standard\nattack_blocker: {action: inform}\n\
         isolation: {automatic: {enabled: true, duration_minutes: 1}}\n",
    );
    net.http_server();
    net.wait_http();
    assert!(
        net.curl_from(BENIGN, 2),
        "the other address before the scan"
    );
    net.nmap("1-200");
    wait_until("isolation_started in EVE", 10, || {
        net.eve()
            .iter()
            .any(|e| e["event_type"] == "isolation_started")
    });
    let started = Instant::now();
    let ev = net.eve();
    let iso = ev
        .iter()
        .find(|e| e["event_type"] == "isolation_started")
        .unwrap();
    assert_eq!(iso["isolation"]["vm"]["id"], "vm-scanner", "{iso}");
    assert_eq!(iso["isolation"]["reason"], "automatic", "{iso}");
    assert_eq!(iso["isolation"]["duration"], 60, "{iso}");
    // The attack blocker only informs: no block, so what stops the VM is its isolation.
    assert!(
        !ev.iter().any(|e| e["event_type"] == "block"),
        "a block event: {ev:?}"
    );
    assert!(!net.curl_from(ATTACKER, 2), "the isolated VM's HTTP passed");
    assert!(net.curl_from(BENIGN, 2), "another address of the namespace");
    // kill -9 while isolated: the restarted daemon restores the isolation from the store before
    // its first frame, with its own end.
    net.kill9();
    net.start_svm(
        "mode: standard\nattack_blocker: {action: inform}\n\
         isolation: {automatic: {enabled: true, duration_minutes: 1}}\n",
    );
    assert!(
        net.log()
            .contains("1 isolation(s) restored from the state store, 0 dropped"),
        "{}",
        net.log()
    );
    assert!(
        !net.curl_from(ATTACKER, 2),
        "the VM's HTTP passed after the restart"
    );
    assert!(
        net.curl_from(BENIGN, 2),
        "another address after the restart"
    );
    wait_until("isolation_ended in EVE", 75, || {
        net.eve()
            .iter()
            .any(|e| e["event_type"] == "isolation_ended")
    });
    assert!(started.elapsed() >= Duration::from_secs(50));
    let ev = net.eve();
    let end = ev
        .iter()
        .find(|e| e["event_type"] == "isolation_ended")
        .unwrap();
    assert_eq!(end["isolation"]["reason"], "expired", "{end}");
    assert!(end["isolation"]["dropped"].as_u64().unwrap() > 0, "{end}");
    wait_until("the VM's HTTP after expiry", 10, || {
        net.curl_from(ATTACKER, 2)
    });
    let log = net.stop_svm();
    assert!(
        log.contains("isolations: 0 started, 1 expired, 0 released"),
        "{log}"
    );
}

/// A TCP echo server on port 7000, a thread per connection.
const TCP_ECHO_SERVER: &str = "import socket,threading\n\
s=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
s.bind(('0.0.0.0',7000))\ns.listen(16)\n\
def h(c):\n  try:\n    while True:\n      d=c.recv(2048)\n      if not d: break\n      c.sendall(d)\n  \
except Exception: pass\n  c.close()\n\
while True:\n  c,_=s.accept()\n  threading.Thread(target=h,args=(c,),daemon=True).start()\n";

/// `python3 -c TCP_SESSION DST`: one long TCP session to DST:7000, a byte every 100 ms, each
/// waiting up to 5 s for its echo; prints `connected`, then `ended: EXCEPTION` when it breaks.
const TCP_SESSION: &str = "import socket,sys,time\n\
s=socket.create_connection((sys.argv[1],7000),timeout=5)\nprint('connected',flush=True)\n\
try:\n  while True:\n    s.sendall(b'x')\n    d=s.recv(16)\n    \
if not d: raise EOFError('closed')\n    time.sleep(0.1)\n\
except Exception as e:\n  print('ended: %s' % type(e).__name__,flush=True)\n";

/// `python3 -c TCP_CONNECT DST`: one new connection to DST:7000 within 2 s: prints `connected`
/// or `failed: EXCEPTION`.
const TCP_CONNECT: &str = "import socket,sys\n\
try:\n  socket.create_connection((sys.argv[1],7000),timeout=2)\n  print('connected')\n\
except Exception as e:\n  print('failed: %s' % type(e).__name__)\n";

/// `python3 -c DNS_QUERY DST`: one UDP datagram to DST:53, waiting 2 s for the answer: prints
/// `answered` or `no answer`.
const DNS_QUERY: &str = "import socket,sys\n\
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(2)\n\
s.sendto(b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x07example\\x03com\\x00\\x00\\x01\\x00\\x01',(sys.argv[1],53))\n\
try:\n  s.recvfrom(2048)\n  print('answered')\nexcept Exception:\n  print('no answer')\n";

/// Issue 18, manual isolation live: the victim VM holds a long TCP session with the attacker's
/// namespace; `svm isolation enable` resets it at once, new connections and HTTP fail while its
/// DNS (UDP to port 53, the default `dns-client` profile) still works; `svm isolation show`
/// lists it; `disable` lets traffic flow again, and a second `disable` is a wrong operation (9).
#[test]
fn manual_isolation_resets_the_session_keeps_dns_and_is_released() {
    skip_unless_able!();
    let mut net = Net::new('m');
    net.extra = format!(
        "inventory:\n  - id: vm-victim\n    name: victim\n    nsx_external_id: ext-victim\n    \
         interfaces: [{{vlan: untagged, addresses: [{VICTIM}]}}]\n"
    );
    net.start_svm("mode: standard\n");
    net.http_server();
    net.wait_http();
    let c = net.spawn_in('A', &["python3", "-c", TCP_ECHO_SERVER], "tcp-server.log");
    net.children.push(c);
    let c = net.spawn_in(
        'A',
        &["python3", "-c", &ECHO_SERVER.replace("9000", "53")],
        "dns-server.log",
    );
    net.children.push(c);
    let connect = |net: &Net| {
        String::from_utf8_lossy(
            &net.exec('V', &["python3", "-c", TCP_CONNECT, ATTACKER])
                .stdout,
        )
        .into_owned()
    };
    wait_until("the TCP echo server", 10, || {
        connect(&net).contains("connected")
    });
    let c = net.spawn_in(
        'V',
        &["python3", "-c", TCP_SESSION, ATTACKER],
        "session.log",
    );
    net.children.push(c);
    let session =
        |net: &Net| std::fs::read_to_string(net.dir.path("session.log")).unwrap_or_default();
    wait_until("the long session", 10, || {
        session(&net).contains("connected")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!session(&net).contains("ended"), "{}", session(&net));

    let out = net.cli(&["isolation", "enable", "vm-victim", "--for", "10m"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the session's reset", 5, || session(&net).contains("ended"));
    assert!(
        session(&net).contains("ended: ConnectionResetError"),
        "{}",
        session(&net)
    );
    assert!(connect(&net).contains("failed"), "a new connection passed");
    assert!(
        !net.curl_from(ATTACKER, 2),
        "HTTP to the isolated VM passed"
    );
    let dns = net.exec('V', &["python3", "-c", DNS_QUERY, ATTACKER]);
    assert!(
        String::from_utf8_lossy(&dns.stdout).contains("answered"),
        "DNS of the isolated VM: {}",
        String::from_utf8_lossy(&dns.stdout)
    );
    let show = net.cli(&["isolation", "show"]);
    let text = String::from_utf8_lossy(&show.stdout);
    assert_eq!(show.status.code(), Some(0));
    assert!(
        text.contains("vm-victim") && text.contains("isolated"),
        "{text}"
    );

    let out = net.cli(&["isolation", "disable", "vm-victim"]);
    assert_eq!(out.status.code(), Some(0));
    let out = net.cli(&["isolation", "disable", "vm-victim"]);
    assert_eq!(out.status.code(), Some(9));
    wait_until("HTTP after the release", 5, || net.curl_from(ATTACKER, 2));
    assert!(
        connect(&net).contains("connected"),
        "no connection after the release"
    );
    let ev = net.eve();
    let kinds: Vec<String> = ev
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .filter(|t| t.starts_with("isolation"))
        .map(str::to_owned)
        .collect();
    assert_eq!(kinds, ["isolation_started", "isolation_ended"], "{ev:?}");
    let ended = ev
        .iter()
        .find(|e| e["event_type"] == "isolation_ended")
        .unwrap();
    assert_eq!(ended["isolation"]["reason"], "manual", "{ended}");
    assert!(
        ended["isolation"]["flows_reset"].as_u64().unwrap() >= 1,
        "{ended}"
    );
    net.stop_svm();
}

/// Per-VM protection picked up on a push: the attacker namespace's two addresses are two VMs of
/// the inventory (known by address); one rule alerts on every HTTP request. Before the push both
/// alert; after a push that switches the activity scanner off for vm-a only vm-b's requests do;
/// a push naming a VM the inventory lacks is refused (422, with its path) and the running policy
/// stays; `only_listed_vms` without vm-a leaves its frames uninspected, counted on /metrics.
#[test]
fn per_vm_protection_follows_a_policy_push() {
    skip_unless_able!();
    let mut net = Net::new('p');
    let rules = net.dir.path("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("test.rules"),
        "alert http any any -> any any (msg:\"SVM test request\"; flow:established,to_server; \
         http.uri; content:\"/index.html\"; sid:9000101; rev:1;)\n",
    )
    .unwrap();
    net.extra = format!(
        "rules:\n  files: [{}/*.rules]\n\
         inventory:\n  - id: vm-a\n    name: a\n    nsx_external_id: ext-a\n    \
         interfaces: [{{vlan: untagged, addresses: [{ATTACKER}]}}]\n  \
         - id: vm-b\n    name: b\n    nsx_external_id: ext-b\n    \
         interfaces: [{{vlan: untagged, addresses: [{BENIGN}]}}]\n",
        rules.display()
    );
    net.start_svm("mode: standard\n");
    net.http_server();
    net.wait_http();
    let alerts_from = |net: &Net, src: &str| {
        net.eve()
            .iter()
            .filter(|e| {
                e["event_type"] == "alert"
                    && e["alert"]["signature_id"] == 9_000_101
                    && e["src_ip"] == src
            })
            .count()
    };
    assert!(net.curl_from(BENIGN, 5));
    wait_until("alerts for both VMs", 10, || {
        alerts_from(&net, ATTACKER) >= 1 && alerts_from(&net, BENIGN) >= 1
    });

    let (code, body) = net.api(
        "admin",
        "PUT",
        "/api/v1/policy",
        Some(r#"{"protection": {"vms": {"vm-a": {"activity_scanner": false}}}}"#),
    );
    assert_eq!(code, 200, "{body}");
    // Alerts of the requests before the push reach EVE through the event pipeline: let them.
    std::thread::sleep(Duration::from_millis(500));
    let (a0, b0) = (alerts_from(&net, ATTACKER), alerts_from(&net, BENIGN));
    for _ in 0..3 {
        assert!(net.curl_from(ATTACKER, 5));
        assert!(net.curl_from(BENIGN, 5));
    }
    wait_until("vm-b's new alerts", 10, || {
        alerts_from(&net, BENIGN) >= b0 + 3
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(alerts_from(&net, ATTACKER), a0, "vm-a's scanner is off");

    // A VM the inventory lacks: refused with its path; the running policy stays.
    let (code, body) = net.api(
        "admin",
        "PUT",
        "/api/v1/policy",
        Some(r#"{"protection": {"vms": {"vm-zz": {"direction": "inbound"}}}}"#),
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("protection.vms.vm-zz"), "{body}");
    assert!(
        body.contains("no VM \\\"vm-zz\\\" in the inventory"),
        "{body}"
    );
    let running = net.json("admin", "/api/v1/policy");
    assert_eq!(
        running["document"]["protection"]["vms"]["vm-a"]["activity_scanner"], false,
        "{running}"
    );

    // Only vm-b is protected: vm-a's frames go through uninspected and are counted.
    let (code, body) = net.api(
        "admin",
        "PUT",
        "/api/v1/policy",
        Some(r#"{"protection": {"only_listed_vms": true, "vms": {"vm-b": {}}}}"#),
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        net.curl_from(ATTACKER, 5),
        "an unprotected VM's traffic passes"
    );
    wait_until("unprotected frames on /metrics", 10, || {
        let (_, m) = net.api("reader", "GET", "/metrics", None);
        m.lines()
            .find_map(|l| l.strip_prefix("svm_unprotected_frames_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .is_some_and(|v| v >= 10.0)
    });
    net.stop_svm();
}
