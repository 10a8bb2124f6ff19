//! Network isolation of a protected VM, live (issue 18): the real `svm run` inline between the
//! network namespace A and the VM namespace V (topology of `common/live.rs`), with its state
//! store, its mTLS API (driven with the `svm` admin CLI from the SVM's namespace) and an
//! inventory naming V's interface by its MAC.
//!
//! - an isolation the API answered survives a kill -9 right after the answer, and one that ended
//!   while the daemon was stopped gets its `isolation_ended` (reason `expired`) at the start;
//! - the VM behind the SVM scans the network side with nmap; the attack blocker (inform) isolates
//!   it; its DHCP lease from a real dnsmasq on the network side is renewed and names resolve
//!   through that dnsmasq while its HTTP is dropped; the events name the address the SVM learned
//!   from the VM's own ARP.
//!
//! Needs root, iproute2, ethtool, nmap, curl, python3, dnsmasq and udhcpc; without them each
//! test prints why it is skipped and passes. Namespaces, veths, processes and the namespace's
//! resolv.conf are removed on drop, also when an assertion fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/live.rs"]
mod live;

use std::time::{Duration, Instant};

use live::{Backend, Net, have, skip_reason};
use serde_json::Value;
use svm_e2e::fakes::pki::TestCa;
use svm_e2e::svm_bin;

const API: &str = "https://127.0.0.1:8443";
const NET_SIDE: &str = "10.77.0.1";
const VM_ADDR: &str = "10.77.0.2";

fn skip() -> Option<String> {
    skip_reason().or_else(|| {
        ["dnsmasq", "udhcpc"]
            .into_iter()
            .find(|t| !have(t))
            .map(|t| format!("{t} not installed"))
    })
}

macro_rules! skip_unless_able {
    () => {
        if let Some(why) = skip() {
            eprintln!("SKIPPED live isolation test: {why}");
            return;
        }
    };
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One test's rig: the namespaces, the API's PKI and the daemon's configuration.
struct Rig {
    net: Net,
    /// V's MAC.
    mac: String,
    /// `/etc/netns/<V>`, removed on drop.
    netns_etc: Option<std::path::PathBuf>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(d) = &self.netns_etc {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Rig {
    fn new(t: char) -> Rig {
        let net = Net::new(t, Backend::AfPacket);
        let ca = TestCa::new("svm management CA");
        let w = |n: &str, s: &str| std::fs::write(net.dir.path(n), s).unwrap();
        w("ca.crt", &ca.cert_pem());
        let server = ca.server("svm-api");
        w("api.crt", &server.cert_pem);
        w("api.key", &server.key_pem);
        let admin = ca.client("svm-admin", None);
        w("admin.crt", &admin.cert_pem);
        w("admin.key", &admin.key_pem);
        let mac = net
            .exec(
                'V',
                &["cat", &format!("/sys/class/net/{}/address", net.dev('v'))],
            )
            .stdout;
        let mac = String::from_utf8(mac).unwrap().trim().to_owned();
        Rig {
            net,
            mac,
            netns_etc: None,
        }
    }

    fn p(&self, name: &str) -> String {
        self.net.dir.path(name).to_str().unwrap().to_owned()
    }

    /// Start the daemon (state store, API, inventory: V's interface by its MAC, no address) and
    /// wait until its API answers.
    fn start(&mut self, policy: &str) {
        let d = self.net.dir.path("").display().to_string();
        let extra = format!(
            "state_dir: {d}/state\n\
             api:\n  listen: 127.0.0.1:8443\n  cert: {d}/api.crt\n  key: {d}/api.key\n  \
             client_ca: {d}/ca.crt\n  admin: [CN=svm-admin]\n\
             inventory:\n  - id: vm-v\n    name: v\n    nsx_external_id: ext-v\n    \
             interfaces: [{{vlan: untagged, mac: \"{mac}\"}}]\n",
            mac = self.mac
        );
        self.net.start_svm_inline_with(policy, 2, &extra);
        wait_until("the API", 20, || {
            self.cli(&["isolation", "show"]).status.code() == Some(0)
        });
    }

    /// The admin CLI from the SVM's namespace.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        let bin = svm_bin();
        let (cert, key, ca) = (self.p("admin.crt"), self.p("admin.key"), self.p("ca.crt"));
        let mut full = vec![bin.to_str().unwrap()];
        full.extend_from_slice(args);
        full.extend(["--api", API, "--cert", &cert, "--key", &key, "--ca", &ca]);
        self.net.exec('S', &full)
    }

    fn events(&self) -> Vec<Value> {
        live::events(&self.net.dir.path("eve.json"))
    }

    fn isolation_events(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event_type"] == kind)
            .collect()
    }

    /// HTTP from the VM to the network side; true when it worked.
    fn vm_http(&self) -> bool {
        self.net.curl('V', NET_SIDE, 2).is_some()
    }
}

/// The API answers 201 only once the isolation is in the state store: the API client kills the
/// daemon with -9 as soon as the answer's head arrives, and the restarted daemon restores the
/// isolation. (Here the keeper's own write, just after the answer, also wins the race: 3 runs of
/// 3 without the API's write passed. `control_isolations.rs`,
/// `the_answer_comes_once_the_change_is_stored`, tells the two apart.) Then the daemon is stopped past the isolation's
/// end (the stored times are moved back, as if it had been down for eleven minutes): at the start
/// it writes `isolation_ended` with reason `expired` and the VM's traffic passes.
#[test]
fn api_isolation_is_durable_at_the_answer_and_ends_while_down() {
    skip_unless_able!();
    let mut rig = Rig::new('k');
    rig.net.http_server('A', NET_SIDE);
    rig.start("mode: standard\n");
    rig.net.wait_http('V', NET_SIDE);
    let pid = rig.net.svm_pid().to_string();
    let out = rig
        .net
        .exec('S', &["python3", "-c", API_POST, &rig.p(""), &pid]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("201 "),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    rig.net.kill9_svm();
    rig.start("mode: standard\n");
    assert!(
        rig.net
            .svm_log()
            .contains("1 isolation(s) restored from the state store, 0 dropped"),
        "{}",
        rig.net.svm_log()
    );
    assert!(!rig.vm_http(), "the isolated VM's HTTP passed");

    // Down past the end: move the stored isolation eleven minutes back.
    rig.net.kill9_svm();
    {
        let store = svm::store::Store::open(&rig.net.dir.path("state/state.redb")).unwrap();
        let mut rows = store.isolations().unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        for r in &mut rows {
            r.started_us -= 660_000_000;
            r.expires_us -= 660_000_000;
        }
        store.put_isolations(&rows).unwrap();
    }
    rig.start("mode: standard\n");
    assert!(
        rig.net
            .svm_log()
            .contains("0 isolation(s) restored from the state store, 1 dropped"),
        "{}",
        rig.net.svm_log()
    );
    wait_until("isolation_ended", 10, || {
        !rig.isolation_events("isolation_ended").is_empty()
    });
    let ended = rig.isolation_events("isolation_ended");
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0]["isolation"]["vm"]["id"], "vm-v", "{}", ended[0]);
    assert_eq!(ended[0]["isolation"]["reason"], "expired", "{}", ended[0]);
    wait_until("the VM's HTTP after the end", 10, || rig.vm_http());
    let out = rig.cli(&["isolation", "show", "vm-v"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not isolated"), "{text}");
    rig.net.stop_svm();
}

/// The dnsmasq of the network side: DHCP for V's MAC (10.77.0.2, two-minute leases, the
/// shortest it gives) and DNS for `portal.test`.
fn dnsmasq(rig: &mut Rig) {
    let (dev, log, leases) = (rig.net.dev('a'), rig.p("dnsmasq.log"), rig.p("leases"));
    let host = format!("--dhcp-host={},{VM_ADDR}", rig.mac);
    let args = [
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--user=root",
        "--bind-interfaces",
        &format!("--interface={dev}"),
        &format!("--listen-address={NET_SIDE}"),
        "--dhcp-range=10.77.0.50,10.77.0.60,255.255.255.0,2m",
        &host,
        "--host-record=portal.test,10.77.0.77",
        &format!("--dhcp-leasefile={leases}"),
        "--log-dhcp",
        "--log-queries",
        &format!("--log-facility={log}"),
    ];
    rig.net.spawn('A', &args, "dnsmasq.out");
    // V resolves through it (`ip netns exec` mounts /etc/netns/<ns>/resolv.conf).
    let etc = std::path::PathBuf::from("/etc/netns").join(rig.net.ns('V'));
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("resolv.conf"), format!("nameserver {NET_SIDE}\n")).unwrap();
    rig.netns_etc = Some(etc);
}

/// udhcpc's script: log the event and the address, configure the interface.
const UDHCPC_SCRIPT: &str = "#!/bin/sh\n\
echo \"$1 $ip\" >> \"$LEASE_LOG\"\n\
case \"$1\" in bound|renew) ip addr replace \"$ip/24\" dev \"$interface\" ;; esac\n";

/// The VM behind the SVM runs nmap toward the network side: the attack blocker (inform)
/// isolates it; its HTTP is dropped while its DHCP lease from dnsmasq is renewed and names
/// resolve through dnsmasq; the events name the address learned from the VM's ARP (the inventory
/// gives only its MAC); after the release its HTTP passes again.
#[test]
fn vm_scanning_outward_is_isolated_and_keeps_dhcp_and_dns() {
    skip_unless_able!();
    let mut rig = Rig::new('d');
    let v = rig.net.dev('v');
    // The VM's address comes from DHCP.
    assert!(
        rig.net
            .exec('V', &["ip", "addr", "flush", "dev", &v])
            .status
            .success()
    );
    rig.net.http_server('A', NET_SIDE);
    dnsmasq(&mut rig);
    rig.start(
        "mode: standard\nattack_blocker: {action: inform}\n\
         isolation: {automatic: {enabled: true, duration_minutes: 10}}\n",
    );
    let script = rig.p("udhcpc.sh");
    std::fs::write(&script, UDHCPC_SCRIPT).unwrap();
    live::must(&["chmod", "+x", &script]);
    let lease_log = rig.p("lease.log");
    let pidfile = rig.p("udhcpc.pid");
    rig.net.spawn_env(
        'V',
        &[("LEASE_LOG", &lease_log)],
        &[
            "udhcpc", "-f", "-i", &v, "-s", &script, "-p", &pidfile, "-t", "10", "-T", "1",
        ],
        "udhcpc.out",
    );
    let leases = || std::fs::read_to_string(&lease_log).unwrap_or_default();
    wait_until("the DHCP lease", 20, || {
        leases().contains(&format!("bound {VM_ADDR}"))
    });
    rig.net.wait_http('V', NET_SIDE);

    let scan = rig.net.exec(
        'V',
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
            NET_SIDE,
        ],
    );
    assert!(
        scan.status.success(),
        "{}",
        String::from_utf8_lossy(&scan.stderr)
    );
    wait_until("isolation_started", 10, || {
        !rig.isolation_events("isolation_started").is_empty()
    });
    let started = rig.isolation_events("isolation_started");
    let iso = &started[0]["isolation"];
    assert_eq!(iso["vm"]["id"], "vm-v", "{iso}");
    assert_eq!(iso["reason"], "automatic", "{iso}");
    assert_eq!(iso["engine"], "attack_blocker", "{iso}");
    // Learned from the VM's own ARP (the inventory has its MAC only).
    let addrs = iso["vm"]["interfaces"][0]["addresses"].to_string();
    assert!(addrs.contains(VM_ADDR), "{iso}");

    assert!(!rig.vm_http(), "the isolated VM's HTTP passed");
    let dns = rig.net.exec('V', &["getent", "hosts", "portal.test"]);
    assert!(
        String::from_utf8_lossy(&dns.stdout).contains("10.77.0.77"),
        "no answer from dnsmasq: {}",
        String::from_utf8_lossy(&dns.stderr)
    );
    // Renew the lease now (SIGUSR1): a unicast DHCPREQUEST and its ACK cross the SVM.
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    live::must(&["kill", "-USR1", pid.trim()]);
    wait_until("the renewed lease", 10, || {
        leases().contains(&format!("renew {VM_ADDR}"))
    });
    let dlog = std::fs::read_to_string(rig.p("dnsmasq.log")).unwrap_or_default();
    assert!(dlog.matches("DHCPACK").count() >= 2, "{dlog}");
    assert!(dlog.contains("query[A] portal.test"), "{dlog}");

    let out = rig.cli(&["isolation", "disable", "vm-v"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the VM's HTTP after the release", 10, || rig.vm_http());
    let ended = rig.isolation_events("isolation_ended");
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert!(
        ended[0]["isolation"]["dropped"].as_u64().unwrap() > 0,
        "{}",
        ended[0]
    );
    rig.net.stop_svm();
}

/// `python3 -c UDP_STEADY DST MS`: a UDP datagram to DST:9000 every MS milliseconds, forever.
const UDP_STEADY: &str = "import socket,sys,time\n\
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nd=(sys.argv[1],9000)\n\
gap=float(sys.argv[2])/1000\ni=0\n\
while True:\n  s.sendto(b'%d' % i,d)\n  i+=1\n  time.sleep(gap)\n";

/// `python3 -c UDP_LOG`: one line `ARRIVAL_SECONDS` per datagram received on port 9000.
const UDP_LOG: &str = "import socket,sys,time\n\
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',9000))\n\
while True:\n  s.recvfrom(64)\n  sys.stdout.write('%.6f\\n' % time.time())\n  sys.stdout.flush()\n";

/// `python3 -c API_POST DIR [PID]`: connect to the API with the admin's certificate, then note
/// the wall clock, POST an isolation of vm-v, note the wall clock as the answer's head arrives
/// (and at once kill -9 PID when given); prints `STATUS SENT ANSWERED`.
const API_POST: &str = "import ssl,http.client,json,os,sys,time\n\
d=sys.argv[1]\nctx=ssl.create_default_context(cafile=d+'/ca.crt')\nctx.check_hostname=False\n\
ctx.load_cert_chain(d+'/admin.crt',d+'/admin.key')\n\
c=http.client.HTTPSConnection('127.0.0.1',8443,context=ctx)\nc.connect()\n\
b=json.dumps({'vm':'vm-v','minutes':10})\nh={'Content-Type':'application/json'}\n\
t0=time.time()\nc.request('POST','/api/v1/isolations',b,h)\nr=c.getresponse()\nt1=time.time()\n\
if len(sys.argv)>2: os.kill(int(sys.argv[2]),9)\n\
print('%d %.6f %.6f' % (r.status,t0,t1))\n";

/// Issue 18's live figure: from the API's answer to `POST /api/v1/isolations` to the last frame
/// of the VM forwarded, with the VM sending a UDP datagram every millisecond to the network side,
/// whose receiver notes each arrival on the wall clock (one clock: every namespace shares it).
/// The API client (Python, its TLS session opened beforehand) notes the wall clock as it sends
/// the request and as the answer arrives: the figure is the last arrival minus the answer's.
/// `ROUNDS` rounds (default 5), each isolating and releasing the VM; prints one line a round. A
/// measurement, not a check: `scripts/bench-isolation-live.sh` runs it.
#[test]
#[ignore = "a measurement (scripts/bench-isolation-live.sh)"]
fn bench_api_answer_to_last_forwarded_frame() {
    skip_unless_able!();
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let mut rig = Rig::new('b');
    rig.start("mode: standard\n");
    rig.net
        .spawn('A', &["python3", "-c", UDP_LOG], "arrivals.log");
    rig.net.spawn(
        'V',
        &["python3", "-c", UDP_STEADY, NET_SIDE, "1"],
        "sender.log",
    );
    let arrivals = |rig: &Rig| -> Vec<f64> {
        std::fs::read_to_string(rig.net.dir.path("arrivals.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    };
    for round in 1..=rounds {
        let before = arrivals(&rig).len();
        wait_until("the VM's datagrams", 10, || {
            arrivals(&rig).len() > before + 200
        });
        let d = rig.p("");
        let out = rig.net.exec('S', &["python3", "-c", API_POST, &d]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let f: Vec<f64> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        assert!(
            f.len() == 3 && f[0] == 201.0,
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (sent, answered) = (f[1], f[2]);
        std::thread::sleep(Duration::from_millis(1000));
        let all = arrivals(&rig);
        let last = all.iter().copied().fold(f64::MIN, f64::max);
        let after = all.iter().filter(|t| **t > answered).count();
        // The sender's cadence just before: datagrams in the 100 ms before the request.
        let cadence = all
            .iter()
            .filter(|t| **t > sent - 0.1 && **t <= sent)
            .count();
        println!(
            "round {round}: request to answer {:.1} ms; last frame of the VM forwarded {:+.1} ms \
             after the answer ({:+.1} ms after the request); {after} datagram(s) after the \
             answer; {cadence} in the 100 ms before the request",
            (answered - sent) * 1e3,
            (last - answered) * 1e3,
            (last - sent) * 1e3,
        );
        let out = rig.cli(&["isolation", "disable", "vm-v"]);
        assert_eq!(out.status.code(), Some(0));
    }
    rig.net.stop_svm();
}
