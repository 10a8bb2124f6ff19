//! Network-namespace helpers of the live end-to-end tests (`live_afpacket`, `live_dpdk`): the
//! topology, the real `svm run` in the middle, HTTP, raw tagged frames and EVE readers.
//!
//! ```text
//! netns A (attacker)         netns S (svm run, inline)           netns V (victim, "VMs")
//!   a<t><pid> 10.77.0.1 ---- n<t><pid>  [svm]  m<t><pid> ---- v<t><pid> 10.77.0.2
//! ```
//! Offloads (checksum, TSO/GSO/GRO) are off on every veth: the SVM forwards frames as received,
//! and partial checksums or 64 KiB GSO frames would not survive the second hop.
// Each test binary uses part of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use svm_e2e::{TempDir, svm_bin};

/// A tokio runtime whose threads live in network namespace `ns` (the calling thread joins it
/// with setns(2) before building the runtime; its worker threads inherit it).
pub fn runtime_in(ns: &str) -> tokio::runtime::Runtime {
    runtime_in_with(ns, 1)
}

/// [`runtime_in`] with `threads` worker threads.
#[allow(unsafe_code)]
pub fn runtime_in_with(ns: &str, threads: usize) -> tokio::runtime::Runtime {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(&path).unwrap();
        // SAFETY: setns on a valid namespace file descriptor; affects only this thread.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .unwrap()
    })
    .join()
    .unwrap()
}

pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why this machine cannot run the live tests, if it cannot.
pub fn skip_reason() -> Option<String> {
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

/// The packet I/O backend `svm run` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// AF_PACKET sockets on the svm namespace's veths.
    AfPacket,
    /// DPDK `net_af_packet` vdevs on those veths (the svm binary needs the `dpdk` feature).
    Dpdk,
}

pub fn run(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap()
}

pub fn must(args: &[&str]) {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Network namespaces, veths and processes of one test; all removed on drop, also on failure.
pub struct Net {
    backend: Backend,
    t: char,
    pid: u32,
    children: Vec<Child>,
    pub dir: TempDir,
}

impl Net {
    pub fn ns(&self, role: char) -> String {
        format!("svm{role}{}{}", self.t, self.pid)
    }

    pub fn dev(&self, role: char) -> String {
        format!("{role}{}{}", self.t, self.pid)
    }

    /// Run a command inside a namespace.
    pub fn exec(&self, role: char, args: &[&str]) -> Output {
        let ns = self.ns(role);
        let mut full = vec!["ip", "netns", "exec", &ns];
        full.extend_from_slice(args);
        run(&full)
    }

    pub fn spawn(&mut self, role: char, args: &[&str], log: &str) {
        self.spawn_env(role, &[], args, log);
    }

    /// [`Net::spawn`] with extra environment variables.
    pub fn spawn_env(&mut self, role: char, env: &[(&str, &str)], args: &[&str], log: &str) {
        let f = std::fs::File::create(self.dir.path(log)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args)
            .envs(env.iter().copied())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    pub fn new(t: char, backend: Backend) -> Net {
        let mut net = Net {
            backend,
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

    /// Start the daemon inline with this policy and settings on the net's backend; wait until
    /// its workers run; returns the EVE path.
    pub fn start_svm(&mut self, policy_yaml: &str, workers: u16) -> PathBuf {
        let (m, n) = (self.dev('m'), self.dev('n'));
        let attach = match self.backend {
            Backend::AfPacket => format!(
                "backend: af-packet\nvm_interface: {m}\nnetwork_interface: {n}\n\
                 workers: {workers}\naf_packet: {{block_count: 8}}\n"
            ),
            // One EAL per svm process; no hugepages, no PCI, the two veths as net_af_packet;
            // an lcore per worker (CPUs 0..workers).
            Backend::Dpdk => format!(
                "backend: dpdk\nvm_port: net_af_packet0\nnetwork_port: net_af_packet1\n\
                 workers: {workers}\neal_args: [--no-huge, -m, \"256\", --no-pci, --no-shconf, \
                 --no-telemetry, -l, \"0-{}\", \"--vdev=net_af_packet0,iface={m}\", \
                 \"--vdev=net_af_packet1,iface={n}\"]\n",
                workers.saturating_sub(1)
            ),
        };
        self.launch_svm(policy_yaml, &format!("{attach}mode: inline\n"))
    }

    /// SIGTERM the daemon (the first child), wait for a clean exit, return its log.
    pub fn stop_svm(&mut self) -> String {
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

    pub fn http_server(&mut self, role: char, bind: &str) {
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
    pub fn curl(&self, role: char, host: &str, timeout_s: u32) -> Option<Vec<u8>> {
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

    pub fn wait_http(&self, role: char, host: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.curl(role, host, 2).is_none() {
            assert!(
                Instant::now() < deadline,
                "no HTTP from {host} seen from {role}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn blob(&self) -> Vec<u8> {
        std::fs::read(self.dir.path("www").join("blob.bin")).unwrap()
    }
}

/// The mirror topology ([`Net::new_mirror`]): the attacker and the victim meet on a Linux
/// bridge in namespace W; tc copies what enters the bridge from either of them to the SVM.
///
/// ```text
/// netns A                     netns W (bridge b<t><pid>)                      netns V
///   a 10.77.0.1 ------------- p ─┐                  ┌─ q --------------- v 10.77.0.2
///                                ├── bridge ─────────┤
///                                └─ i (learning off) ┘
///                                       |
/// netns S (svm run, mirror)             |
///   j (inject_interface) ---------------┘
///   r (interface) ----------- c   <- tc: ingress of p and q, `action mirred egress mirror dev c`
/// ```
/// The SVM is not in the path: A and V talk through the bridge whether it runs or not. Its
/// resets enter the bridge through `i`, which does not learn MAC addresses (else a reset
/// "from" the victim would move the victim's MAC to the SVM's port) and gets no flooded frames.
impl Net {
    /// Build the mirror topology (AF_PACKET backend).
    pub fn new_mirror(t: char) -> Net {
        let mut net = Net {
            backend: Backend::AfPacket,
            t,
            pid: std::process::id(),
            children: vec![],
            dir: TempDir::new(&format!("live-{t}")),
        };
        net.build_mirror();
        net
    }

    fn build_mirror(&mut self) {
        for r in ['A', 'S', 'V', 'W'] {
            let _ = run(&["ip", "netns", "del", &self.ns(r)]);
            must(&["ip", "netns", "add", &self.ns(r)]);
            let _ = self.exec(r, &["ip", "link", "set", "lo", "up"]);
        }
        let w = self.ns('W');
        for (end, role, port) in [
            ('a', 'A', 'p'),
            ('v', 'V', 'q'),
            ('j', 'S', 'i'),
            ('r', 'S', 'c'),
        ] {
            must(&[
                "ip",
                "link",
                "add",
                &self.dev(end),
                "netns",
                &self.ns(role),
                "type",
                "veth",
                "peer",
                "name",
                &self.dev(port),
                "netns",
                &w,
            ]);
        }
        let bridge = self.dev('b');
        assert!(
            self.exec('W', &["ip", "link", "add", &bridge, "type", "bridge"])
                .status
                .success()
        );
        for port in ['p', 'q', 'i'] {
            assert!(
                self.exec(
                    'W',
                    &["ip", "link", "set", &self.dev(port), "master", &bridge]
                )
                .status
                .success()
            );
        }
        let i = self.dev('i');
        let o = self.exec(
            'W',
            &[
                "bridge", "link", "set", "dev", &i, "learning", "off", "flood", "off",
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        for (r, d) in [
            ('A', 'a'),
            ('V', 'v'),
            ('W', 'p'),
            ('W', 'q'),
            ('W', 'i'),
            ('W', 'c'),
            ('S', 'j'),
            ('S', 'r'),
        ] {
            let d = self.dev(d);
            let _ = self.exec(
                r,
                &[
                    "ethtool", "-K", &d, "tx", "off", "rx", "off", "tso", "off", "gso", "off",
                    "gro", "off",
                ],
            );
            assert!(
                self.exec(r, &["ip", "link", "set", &d, "up"])
                    .status
                    .success()
            );
        }
        assert!(
            self.exec('W', &["ip", "link", "set", &bridge, "up"])
                .status
                .success()
        );
        // Both directions: what A sends enters the bridge at p, what V sends at q.
        let c = self.dev('c');
        for port in ['p', 'q'] {
            let d = self.dev(port);
            for args in [
                vec!["tc", "qdisc", "add", "dev", &d, "clsact"],
                vec![
                    "tc", "filter", "add", "dev", &d, "ingress", "protocol", "all", "u32", "match",
                    "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", &c,
                ],
            ] {
                let o = self.exec('W', &args);
                assert!(
                    o.status.success(),
                    "{args:?}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
        for (r, d, addr) in [('A', 'a', "10.77.0.1/24"), ('V', 'v', "10.77.0.2/24")] {
            assert!(
                self.exec(r, &["ip", "addr", "add", addr, "dev", &self.dev(d)])
                    .status
                    .success()
            );
        }
    }

    /// Start `svm run` on the mirror topology: copies arrive on `r`, resets leave by `j`.
    pub fn start_svm_mirror(&mut self, policy_yaml: &str, workers: u16, extra: &str) -> PathBuf {
        let (r, j) = (self.dev('r'), self.dev('j'));
        self.launch_svm(
            policy_yaml,
            &format!(
                "backend: af-packet\nmode: mirror\ninterface: {r}\ninject_interface: {j}\n\
                 workers: {workers}\naf_packet: {{block_count: 8}}\n{extra}"
            ),
        )
    }

    /// Start `svm run` inline (AF_PACKET) with `extra` configuration lines (a `rules:`
    /// section, `state_dir`, ...).
    pub fn start_svm_inline_with(
        &mut self,
        policy_yaml: &str,
        workers: u16,
        extra: &str,
    ) -> PathBuf {
        let (m, n) = (self.dev('m'), self.dev('n'));
        self.launch_svm(
            policy_yaml,
            &format!(
                "backend: af-packet\nmode: inline\nvm_interface: {m}\nnetwork_interface: {n}\n\
                 workers: {workers}\naf_packet: {{block_count: 8}}\n{extra}"
            ),
        )
    }

    /// Write the policy and `svm.yaml` (`body` plus `policy` and `eve`), start the daemon in S
    /// and wait until its workers run; returns the EVE path.
    pub fn launch_svm(&mut self, policy_yaml: &str, body: &str) -> PathBuf {
        self.launch_svm_env(policy_yaml, body, &[])
    }

    /// [`Net::launch_svm`] with extra environment variables for the daemon.
    pub fn launch_svm_env(
        &mut self,
        policy_yaml: &str,
        body: &str,
        env: &[(&str, &str)],
    ) -> PathBuf {
        let policy = self.dir.path("policy.yaml");
        std::fs::write(&policy, policy_yaml).unwrap();
        let eve = self.dir.path("eve.json");
        let cfg = self.dir.path("svm.yaml");
        std::fs::write(
            &cfg,
            format!(
                "{body}policy: {}\neve: {}\n",
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
        self.spawn_env('S', env, &[&b, "run", "--config", &c], "svm.log");
        // The daemon is the first child, also when it starts again after others.
        if let Some(svm) = self.children.pop() {
            self.children.insert(0, svm);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.svm_log();
            if log
                .lines()
                .any(|l| l.contains("svm run: ") && l.contains(" worker"))
            {
                break;
            }
            assert!(Instant::now() < deadline, "svm did not start:\n{log}");
            if let Some(status) = self.children.first_mut().unwrap().try_wait().unwrap() {
                panic!("svm exited with {status}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eve
    }

    /// The daemon's log so far.
    pub fn svm_log(&self) -> String {
        std::fs::read_to_string(self.dir.path("svm.log")).unwrap_or_default()
    }

    /// kill -9 the daemon (the first child), if it still runs, and reap it.
    pub fn kill9_svm(&mut self) {
        let mut svm = self.children.remove(0);
        let _ = svm.kill();
        let _ = svm.wait();
    }

    /// The daemon's process id (the first child: `ip netns exec` execs it).
    pub fn svm_pid(&self) -> u32 {
        self.children.first().unwrap().id()
    }

    /// Send `signal` (`-HUP`, `-USR1`, ...) to the daemon (the first child).
    pub fn signal_svm(&self, signal: &str) {
        let pid = self.children.first().unwrap().id().to_string();
        must(&["kill", signal, &pid]);
    }

    /// Wait until the daemon's log contains `needle` `times` times.
    pub fn wait_log(&self, needle: &str, times: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.svm_log();
            if log.matches(needle).count() >= times {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} x{times} not in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `curl -s` a URL from `role`: the exit code (0 success, 56 reset by peer, 28 timeout, ...)
    /// and the body.
    pub fn curl_url(&self, role: char, url: &str, timeout_s: u32) -> (i32, Vec<u8>) {
        let out = self.exec(
            role,
            &["curl", "-s", "--max-time", &timeout_s.to_string(), url],
        );
        (out.status.code().unwrap_or(-1), out.stdout)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // W exists in the mirror topology only; deleting a missing namespace is harmless.
        for r in ['A', 'S', 'V', 'W'] {
            let _ = run(&["ip", "netns", "del", &self.ns(r)]);
        }
    }
}

pub fn events(path: &PathBuf) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn alerts<'a>(ev: &'a [Value], sig: &str) -> Vec<&'a Value> {
    ev.iter()
        .filter(|e| e["event_type"] == "alert" && e["alert"]["signature"] == sig)
        .collect()
}

pub fn block_adds(ev: &[Value]) -> Vec<&Value> {
    ev.iter()
        .filter(|e| e["event_type"] == "block" && e["block"]["action"] == "add")
        .collect()
}

pub const STANDARD: &str = "mode: standard\n";

/// A SYN scan of the victim's ports 1-200 from the attacker's namespace.
pub const NMAP: &[&str] = &[
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
];

/// Raw tagged frames from the attacker namespace: `python3 -c SENDER dev vid src dst first last`
/// sends one TCP SYN per destination port in `first..=last`, tagged with `vid`.
pub const SENDER: &str = "import socket,struct,sys\n\
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

pub fn send_tagged(net: &Net, vid: u16, first: u16, last: u16) {
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
