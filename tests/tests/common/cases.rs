//! The live end-to-end cases, written once and run by each backend's suite (`live_afpacket`,
//! `live_dpdk`). A suite checks `skip_reason()` first and hands in its [`Setup`]; each case returns
//! the daemon's log for checks only that backend makes.

use std::time::Duration;

use crate::live::{Backend, NMAP, Net, STANDARD, alerts, block_adds, events, have, send_tagged};

/// How a suite runs the cases.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// The backend under test.
    pub backend: Backend,
    /// Workers for the cases that can use several.
    pub workers: u16,
    /// Attempts per benign fetch: net_af_packet under DPDK loses frames on this 2-vCPU machine,
    /// so its suite retries (TCP recovers; the bytes must still be identical).
    pub fetch_attempts: u32,
}

/// Fetch the blob from the attacker, up to `s.fetch_attempts` times.
fn fetch(s: &Setup, net: &Net) -> Option<Vec<u8>> {
    (0..s.fetch_attempts.max(1)).find_map(|_| net.curl('A', "10.77.0.2", 10))
}

/// Benign HTTP through the SVM arrives byte for byte, without alerts.
pub fn benign_http_passes_unchanged(s: &Setup) -> String {
    let mut net = Net::new('h', s.backend);
    let eve = net.start_svm(STANDARD, s.workers);
    net.http_server('V', "0.0.0.0");
    net.wait_http('A', "10.77.0.2");
    let blob = net.blob();
    for _ in 0..3 {
        assert_eq!(fetch(s, &net).as_deref(), Some(&blob[..]));
    }
    let log = net.stop_svm();
    let ev = events(&eve);
    assert!(
        ev.iter().all(|e| e["event_type"] != "alert"),
        "benign traffic raised alerts: {ev:?}"
    );
    assert!(log.contains("forwarded"), "{log}");
    log
}

/// An nmap SYN scan is detected, the attacker blocked once (whatever the worker count), and its
/// next connection fails.
pub fn nmap_scan_blocks_the_attacker(s: &Setup) -> String {
    let mut net = Net::new('s', s.backend);
    let eve = net.start_svm(STANDARD, s.workers);
    net.http_server('V', "0.0.0.0");
    net.wait_http('A', "10.77.0.2");
    let scan = net.exec('A', NMAP);
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
    // The scan came in on the network side: its interface (DPDK: its device) is named, and
    // the header keeps Suricata's order with `in_iface` after `flow_id`.
    let network_side = match s.backend {
        Backend::AfPacket => net.dev('n'),
        Backend::Dpdk => "net_af_packet1".to_owned(),
    };
    assert_eq!(scans[0]["in_iface"], network_side.as_str());
    let text = std::fs::read_to_string(&eve).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("Scan.Generic.TCP"))
        .unwrap();
    let at: Vec<Option<usize>> = [
        "timestamp",
        "flow_id",
        "in_iface",
        "pcap_cnt",
        "event_type",
        "src_ip",
        "dest_ip",
        "proto",
        "alert",
        "direction",
    ]
    .iter()
    .map(|k| line.find(&format!("\"{k}\":")))
    .collect();
    assert!(at.iter().all(Option::is_some), "{at:?} {line}");
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?} {line}");
    assert!(!line.contains("pcap_filename"), "{line}");
    let adds = block_adds(&ev);
    assert_eq!(
        adds.len(),
        1,
        "exactly one block ({} workers): {adds:?}",
        s.workers
    );
    assert_eq!(adds[0]["src_ip"], "10.77.0.1");
    assert!(log.contains("blocks active 1"), "{log}");
    log
}

/// The worker AF_PACKET's fanout (and replay) hands the frames between two IPv4 addresses to.
fn worker_of(src: [u8; 4], dst: [u8; 4], workers: u16) -> usize {
    let mut frame = vec![0u8; 12];
    frame.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0]);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&dst);
    dataplane::io::hash::worker_of(&frame, usize::from(workers))
}

/// A block made by one worker holds on every worker: after a scan of 10.77.0.2, the attacker's
/// connections to other addresses of the victim, whose frames the fanout hands to another worker
/// than the scan's, fail too (before the scan they succeed).
pub fn block_reaches_every_worker(s: &Setup) -> String {
    let mut net = Net::new('w', s.backend);
    let eve = net.start_svm(STANDARD, s.workers);
    // Addresses of the victim whose pair with the attacker lands on another worker than .2's.
    let scanned = worker_of([10, 77, 0, 1], [10, 77, 0, 2], s.workers);
    let others: Vec<String> = (3u8..60)
        .filter(|i| worker_of([10, 77, 0, 1], [10, 77, 0, *i], s.workers) != scanned)
        .take(3)
        .map(|i| format!("10.77.0.{i}"))
        .collect();
    assert_eq!(others.len(), 3, "addresses on another worker");
    let (ns, dev) = (net.ns('V'), net.dev('v'));
    for a in &others {
        crate::live::must(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{a}/24"),
            "dev",
            &dev,
        ]);
    }
    net.http_server('V', "0.0.0.0");
    net.wait_http('A', "10.77.0.2");
    for a in &others {
        assert!(
            net.curl('A', a, 5).is_some(),
            "{a} reachable before the scan"
        );
    }
    let scan = net.exec('A', NMAP);
    assert!(
        scan.status.success(),
        "{}",
        String::from_utf8_lossy(&scan.stderr)
    );
    for a in &others {
        assert!(
            net.curl('A', a, 2).is_none(),
            "{a}: the block made by the scan's worker must hold on the others"
        );
    }
    let log = net.stop_svm();
    let ev = events(&eve);
    let adds = block_adds(&ev);
    assert_eq!(adds.len(), 1, "one block: {adds:?}\n{log}");
    assert_eq!(adds[0]["src_ip"], "10.77.0.1");
    log
}

/// A scan in VLAN 100 blocks its source there only: tagged frames from a raw socket (the CI
/// kernel has no 8021q), checked with tcpdump on the victim's side. `None` when tcpdump is
/// missing (the suite prints the skip).
pub fn tagged_scan_blocks_the_source_in_its_vlan_only(s: &Setup) -> Option<String> {
    if !have("tcpdump") {
        return None;
    }
    let mut net = Net::new('v', s.backend);
    let eve = net.start_svm(STANDARD, s.workers);
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
    Some(log)
}

/// With action `terminate` and a port-scan threshold of 3, the victim's third connection to a
/// port the attacker listens on is reset by the SVM, and nothing is blocked.
pub fn terminate_resets_real_connections_without_blocking(s: &Setup) -> String {
    let mut net = Net::new('t', s.backend);
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
    log
}

/// Monitoring mode reports the scan with `would_block` and drops nothing.
pub fn monitoring_mode_passes_everything_and_reports(s: &Setup) -> String {
    let mut net = Net::new('m', s.backend);
    let eve = net.start_svm("mode: monitoring\n", 1);
    net.http_server('V', "0.0.0.0");
    net.wait_http('A', "10.77.0.2");
    let scan = net.exec('A', NMAP);
    assert!(scan.status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        fetch(s, &net).as_deref(),
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
    log
}
