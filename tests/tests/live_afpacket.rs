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

#[path = "common/live.rs"]
mod live;

use std::time::Duration;

use live::{Backend, Net, STANDARD, alerts, block_adds, events, have, send_tagged, skip_reason};

macro_rules! skip_unless_able {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("SKIPPED live AF_PACKET test: {why}");
            return;
        }
    };
}

#[test]
fn benign_http_passes_unchanged() {
    skip_unless_able!();
    let mut net = Net::new('h', Backend::AfPacket);
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

#[test]
fn nmap_scan_blocks_the_attacker() {
    skip_unless_able!();
    let mut net = Net::new('s', Backend::AfPacket);
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
    let mut net = Net::new('v', Backend::AfPacket);
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
    let mut net = Net::new('t', Backend::AfPacket);
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
    let mut net = Net::new('m', Backend::AfPacket);
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
