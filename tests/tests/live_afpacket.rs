//! End-to-end on live interfaces: the real `svm run` (AF_PACKET, inline) bridging two veths in
//! its own network namespace, between an attacker and a victim namespace, with real traffic
//! (curl, python's http.server, nmap). Needs root, iproute2, ethtool, nmap, curl and python3;
//! without them every test prints why it is skipped and passes.
//!
//! Topology per test (names carry the process id and a per-test letter):
//!
//! ```text
//! netns A (attacker)         netns S (svm run, inline)           netns V (victim, "VMs")
//!   a<t><pid> 10.77.0.1 ---- n<t><pid>  [svm]  m<t><pid> ---- v<t><pid> 10.77.0.2
//! ```
//! Tagged traffic: VLAN sub-interfaces (`ip link add ... type vlan`) need the kernel's 8021q
//! support, which the CI kernel lacks, so the VLAN case sends tagged frames from a raw packet
//! socket (python) and checks what reaches the victim with tcpdump. The veth still carries the
//! tag as offload metadata or in the data, so the SVM's tag restore is exercised.
//! Offloads (checksum, TSO/GSO/GRO) are off on every veth: an AF_PACKET bridge forwards frames as
//! received, and partial checksums or 64 KiB GSO frames would not survive the second hop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use svm_e2e::{TempDir, svm_bin};

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why this machine cannot run the live tests, if it cannot.
fn skip_reason() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_default();
    if uid != "0" {
        return Some("not root (network namespaces need root)".into());
    }
    for tool in ["ip", "ethtool", "nmap", "curl", "python3"] {
        if !have(tool) {
            return Some(format!("{tool} not installed"));
        }
    }
    None
}

macro_rules! skip_unless_able {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("SKIPPED live AF_PACKET test: {why}");
            return;
        }
    };
}

fn run(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap()
}

fn must(args: &[&str]) {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Network namespaces, veths and processes of one test; all removed on drop, also on failure.
struct Net {
    t: char,
    pid: u32,
    children: Vec<Child>,
    dir: TempDir,
}

impl Net {
    fn ns(&self, role: char) -> String {
        format!("svm{role}{}{}", self.t, self.pid)
    }

    fn dev(&self, role: char) -> String {
        format!("{role}{}{}", self.t, self.pid)
    }

    /// Run a command inside a namespace.
    fn exec(&self, role: char, args: &[&str]) -> Output {
        let ns = self.ns(role);
        let mut full = vec!["ip", "netns", "exec", &ns];
        full.extend_from_slice(args);
        run(&full)
    }

    fn spawn(&mut self, role: char, args: &[&str], log: &str) {
        let f = std::fs::File::create(self.dir.path(log)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args)
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    fn new(t: char) -> Net {
        let mut net = Net {
            t,
            pid: std::process::id(),
            children: vec![],
            dir: TempDir::new(&format!("live-{t}")),
        };
        net.build();
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
        for (r, d, addr) in [('A', &a, "10.77.0.1/24"), ('V', &v, "10.77.0.2/24")] {
            assert!(
                self.exec(r, &["ip", "addr", "add", addr, "dev", d])
                    .status
                    .success()
            );
        }
    }

    /// Start the daemon with this policy and settings; wait until its sockets are open.
    fn start_svm(&mut self, policy_yaml: &str, workers: u16) -> PathBuf {
        let policy = self.dir.path("policy.yaml");
        std::fs::write(&policy, policy_yaml).unwrap();
        let eve = self.dir.path("eve.json");
        let cfg = self.dir.path("svm.yaml");
        std::fs::write(
            &cfg,
            format!(
                "backend: af-packet\nmode: inline\nvm_interface: {}\nnetwork_interface: {}\n\
                 workers: {workers}\npolicy: {}\neve: {}\naf_packet: {{block_count: 8}}\n",
                self.dev('m'),
                self.dev('n'),
                policy.display(),
                eve.display()
            ),
        )
        .unwrap();
        let bin = svm_bin();
        let (b, c) = (
            bin.to_str().unwrap().to_owned(),
            cfg.to_str().unwrap().to_owned(),
        );
        self.spawn('S', &[&b, "run", "--config", &c], "svm.log");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let log = std::fs::read_to_string(self.dir.path("svm.log")).unwrap_or_default();
            if log.contains("svm run: ") && log.contains("worker") {
                break;
            }
            assert!(Instant::now() < deadline, "svm did not start:\n{log}");
            if let Some(status) = self.children.last_mut().unwrap().try_wait().unwrap() {
                panic!("svm exited with {status}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eve
    }

    /// SIGTERM the daemon (the first child), wait for a clean exit, return its log.
    fn stop_svm(&mut self) -> String {
        let mut svm = self.children.remove(0);
        // `ip netns exec` execs the program: the child's pid is svm's.
        must(&["kill", "-TERM", &svm.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = svm.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "svm did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = std::fs::read_to_string(self.dir.path("svm.log")).unwrap_or_default();
        assert!(status.success(), "svm exited with {status}:\n{log}");
        log
    }

    fn http_server(&mut self, role: char, bind: &str) {
        let root = self.dir.path("www");
        std::fs::create_dir_all(&root).unwrap();
        // 200 KB of varied bytes: big enough to need many segments.
        let body: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        std::fs::write(root.join("blob.bin"), body).unwrap();
        let r = root.to_str().unwrap().to_owned();
        self.spawn(
            role,
            &[
                "python3",
                "-m",
                "http.server",
                "8000",
                "--bind",
                bind,
                "--directory",
                &r,
            ],
            &format!("http-{role}.log"),
        );
    }

    /// Fetch the blob; Some(bytes) on success.
    fn curl(&self, role: char, host: &str, timeout_s: u32) -> Option<Vec<u8>> {
        let out = self.exec(
            role,
            &[
                "curl",
                "-s",
                "--max-time",
                &timeout_s.to_string(),
                &format!("http://{host}:8000/blob.bin"),
            ],
        );
        out.status.success().then_some(out.stdout)
    }

    fn wait_http(&self, role: char, host: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.curl(role, host, 2).is_none() {
            assert!(
                Instant::now() < deadline,
                "no HTTP from {host} seen from {role}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn blob(&self) -> Vec<u8> {
        std::fs::read(self.dir.path("www").join("blob.bin")).unwrap()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for r in ['A', 'S', 'V'] {
            let _ = run(&["ip", "netns", "del", &self.ns(r)]);
        }
    }
}

fn events(path: &PathBuf) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn alerts<'a>(ev: &'a [Value], sig: &str) -> Vec<&'a Value> {
    ev.iter()
        .filter(|e| e["event_type"] == "alert" && e["alert"]["signature"] == sig)
        .collect()
}

fn block_adds(ev: &[Value]) -> Vec<&Value> {
    ev.iter()
        .filter(|e| e["event_type"] == "block" && e["block"]["action"] == "add")
        .collect()
}

const STANDARD: &str = "mode: standard\n";

#[test]
fn benign_http_passes_unchanged() {
    skip_unless_able!();
    let mut net = Net::new('h');
    let eve = net.start_svm(STANDARD, 2);
    net.http_server('V', "0.0.0.0");
    net.wait_http('A', "10.77.0.2");
    let blob = net.blob();
    for _ in 0..3 {
        assert_eq!(net.curl('A', "10.77.0.2", 10).as_deref(), Some(&blob[..]));
    }
    let log = net.stop_svm();
    let ev = events(&eve);
    assert!(
        ev.iter().all(|e| e["event_type"] != "alert"),
        "benign traffic raised alerts: {ev:?}"
    );
    assert!(log.contains("forwarded"), "{log}");
}

/// Raw tagged frames from the attacker namespace: `python3 -c SENDER dev vid src dst first last`
/// sends one TCP SYN per destination port in `first..=last`, tagged with `vid`.
const SENDER: &str = "import socket,struct,sys\n\
def cs(b):\n  b=b+b'\\0'*(len(b)%2)\n  s=sum(struct.unpack('!%dH'%(len(b)//2),b))\n  \
s=(s>>16)+(s&0xffff)\n  s+=s>>16\n  return ~s&0xffff\n\
dev,vid,src,dst,a,b=sys.argv[1],int(sys.argv[2]),sys.argv[3],sys.argv[4],int(sys.argv[5]),int(sys.argv[6])\n\
k=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\nk.bind((dev,0))\n\
S,D=socket.inet_aton(src),socket.inet_aton(dst)\n\
for p in range(a,b+1):\n  \
ip=struct.pack('!BBHHHBBH4s4s',0x45,0,40,p,0,64,6,0,S,D)\n  ip=ip[:10]+struct.pack('!H',cs(ip))+ip[12:]\n  \
t=struct.pack('!HHIIBBHHH',40000+p,p,1000,0,0x50,2,65535,0,0)\n  \
t=t[:16]+struct.pack('!H',cs(S+D+struct.pack('!BBH',0,6,20)+t))+t[18:]\n  \
e=b'\\xff'*6+b'\\x02\\0\\0\\0\\0\\x01'+struct.pack('!HH',0x8100,vid)+b'\\x08\\0'\n  \
k.send(e+ip+t)\n";

fn send_tagged(net: &Net, vid: u16, first: u16, last: u16) {
    let dev = net.dev('a');
    let o = net.exec(
        'A',
        &[
            "python3",
            "-c",
            SENDER,
            &dev,
            &vid.to_string(),
            "10.77.1.1",
            "10.77.1.2",
            &first.to_string(),
            &last.to_string(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn nmap_scan_blocks_the_attacker() {
    skip_unless_able!();
    let mut net = Net::new('s');
    let eve = net.start_svm(STANDARD, 2);
    net.http_server('V', "0.0.0.0");
    net.wait_http('A', "10.77.0.2");
    let scan = net.exec(
        'A',
        &[
            "nmap",
            "-sS",
            "-Pn",
            "-n",
            "-p",
            "1-200",
            "--max-retries",
            "0",
            "-T4",
            "10.77.0.2",
        ],
    );
    assert!(
        scan.status.success(),
        "{}",
        String::from_utf8_lossy(&scan.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        net.curl('A', "10.77.0.2", 3).is_none(),
        "attacker not blocked"
    );
    let log = net.stop_svm();
    let ev = events(&eve);
    let scans = alerts(&ev, "Scan.Generic.TCP");
    assert!(!scans.is_empty(), "no scan alert: {ev:?}\n{log}");
    assert_eq!(scans[0]["src_ip"], "10.77.0.1");
    let adds = block_adds(&ev);
    assert_eq!(adds.len(), 1, "exactly one block (two workers): {adds:?}");
    assert_eq!(adds[0]["src_ip"], "10.77.0.1");
    assert!(log.contains("blocks active 1"), "{log}");
}

#[test]
fn tagged_scan_blocks_the_source_in_its_vlan_only() {
    skip_unless_able!();
    if !have("tcpdump") {
        eprintln!("SKIPPED live AF_PACKET test: tcpdump not installed");
        return;
    }
    let mut net = Net::new('v');
    let eve = net.start_svm(STANDARD, 2);
    let v = net.dev('v');
    net.spawn(
        'V',
        &["tcpdump", "-Z", "root", "-i", &v, "-nn", "-e", "-l", "-p"],
        "tcpdump.log",
    );
    std::thread::sleep(Duration::from_millis(1500));
    // A scan of 60 ports from 10.77.1.1 in VLAN 100 (threshold 20), then 5 more SYNs in VLAN 100
    // (blocked) and 5 from the same address in VLAN 200 (must pass).
    send_tagged(&net, 100, 1, 60);
    std::thread::sleep(Duration::from_millis(500));
    send_tagged(&net, 100, 8001, 8005);
    send_tagged(&net, 200, 8001, 8005);
    std::thread::sleep(Duration::from_millis(1000));
    let log = net.stop_svm();
    let dump = std::fs::read_to_string(net.dir.path("tcpdump.log")).unwrap();
    let seen = |vid: &str, port: u16| {
        dump.lines()
            .filter(|l| {
                l.contains(&format!("vlan {vid},")) && l.contains(&format!("10.77.1.2.{port}:"))
            })
            .count()
    };
    assert_eq!(
        seen("100", 1),
        1,
        "first scan SYN forwarded with its tag:\n{dump}"
    );
    assert_eq!(
        (8001..=8005).map(|p| seen("100", p)).sum::<usize>(),
        0,
        "blocked in VLAN 100:\n{dump}"
    );
    assert_eq!(
        (8001..=8005).map(|p| seen("200", p)).sum::<usize>(),
        5,
        "VLAN 200 passes:\n{dump}"
    );
    let ev = events(&eve);
    let scans = alerts(&ev, "Scan.Generic.TCP");
    assert!(!scans.is_empty(), "{ev:?}\n{log}");
    assert_eq!(scans[0]["vlan"], serde_json::json!([100]));
    let adds = block_adds(&ev);
    assert_eq!(adds.len(), 1, "{adds:?}");
    assert_eq!(adds[0]["vlan"], serde_json::json!([100]));
    assert_eq!(adds[0]["src_ip"], "10.77.1.1");
}

#[test]
fn terminate_resets_real_connections_without_blocking() {
    skip_unless_able!();
    let mut net = Net::new('t');
    let eve = net.start_svm(
        "mode: standard\nattack_blocker:\n  action: terminate\n  detectors:\n    \
         tcp_port_scan: { count: 3, window_secs: 60 }\n",
        1,
    );
    // The attacker listens on six ports; the victim (a protected VM) connects to each in turn.
    let listener = "import socket,select\nss=[]\nfor p in range(9001,9007):\n  s=socket.socket()\n  \
        s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n  s.bind(('10.77.0.1',p))\n  \
        s.listen(8)\n  ss.append(s)\nwhile True:\n  r,_,_=select.select(ss,[],[])\n  \
        for s in r:\n    c,_=s.accept()\n    c.sendall(b'hello\\n')\n";
    net.spawn('A', &["python3", "-c", listener], "listener.log");
    std::thread::sleep(Duration::from_millis(500));
    let client = "import socket\nfor p in range(9001,9007):\n  s=socket.socket()\n  \
        s.settimeout(3)\n  try:\n    s.connect(('10.77.0.1',p))\n    d=s.recv(16)\n    \
        print(p,'ok' if d==b'hello\\n' else 'closed')\n  except ConnectionRefusedError:\n    \
        print(p,'refused')\n  except ConnectionResetError:\n    print(p,'reset')\n  \
        except OSError as e:\n    print(p,'error',e)\n  s.close()\n";
    let out = net.exec('V', &["python3", "-c", client]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = net.stop_svm();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(lines[0].ends_with("ok"), "{text}");
    assert!(lines[1].ends_with("ok"), "{text}");
    // The third distinct port reaches the threshold: its connection is reset by the SVM, although
    // the attacker listens there.
    assert!(
        lines[2].ends_with("refused") || lines[2].ends_with("reset"),
        "{text}\n{log}"
    );
    let ev = events(&eve);
    let scans = alerts(&ev, "Scan.Generic.TCP");
    assert!(!scans.is_empty(), "{ev:?}");
    assert_eq!(scans[0]["alert"]["response"], "terminate");
    assert_eq!(scans[0]["src_ip"], "10.77.0.2");
    assert!(block_adds(&ev).is_empty(), "terminate must not block");
    assert!(log.contains("injected"), "{log}");
}

#[test]
fn monitoring_mode_passes_everything_and_reports() {
    skip_unless_able!();
    let mut net = Net::new('m');
    let eve = net.start_svm("mode: monitoring\n", 1);
    net.http_server('V', "0.0.0.0");
    net.wait_http('A', "10.77.0.2");
    let scan = net.exec(
        'A',
        &[
            "nmap",
            "-sS",
            "-Pn",
            "-n",
            "-p",
            "1-200",
            "--max-retries",
            "0",
            "-T4",
            "10.77.0.2",
        ],
    );
    assert!(scan.status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        net.curl('A', "10.77.0.2", 10).as_deref(),
        Some(&net.blob()[..]),
        "monitoring mode must not block"
    );
    let log = net.stop_svm();
    let ev = events(&eve);
    let scans = alerts(&ev, "Scan.Generic.TCP");
    assert!(!scans.is_empty(), "{ev:?}\n{log}");
    assert_eq!(scans[0]["alert"]["would_block"], true);
    assert!(block_adds(&ev).is_empty());
    assert!(log.contains("dropped 0 "), "{log}");
}
