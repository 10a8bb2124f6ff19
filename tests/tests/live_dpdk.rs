//! End-to-end on live interfaces with the DPDK backend: the same cases as `live_afpacket`, with
//! `svm run` using `backend: dpdk` over two `net_af_packet` vdevs on the svm namespace's veths
//! (`--no-huge --no-pci --no-shconf`, one EAL per svm process). Needs the `dpdk` feature
//! (`make test-dpdk` builds the svm binary with it first), root, iproute2, ethtool, nmap, curl,
//! python3 (and tcpdump for the VLAN case); without root or the tools every test prints why it
//! is skipped and passes.
//!
//! One worker (the EAL main lcore), and the same cases again with two workers (software
//! distribution: net_af_packet without `qpairs` has one queue and no RSS). The tests run one at a
//! time: several busy DPDK processes on a 2-vCPU machine would compete with the traffic they
//! inspect. net_af_packet over veth loses frames under load there, so benign fetches are retried
//! (TCP recovers, the bytes must still be identical); what is asserted about detection and
//! blocking is exactly what `live_afpacket` asserts.
//!
//! The `pcap_workers` tests need neither root nor tools: `svm run` with two workers over
//! `net_pcap` vdevs (generated captures in, a `tx_pcap` per transmit queue out) with exact
//! counts, and over `net_null` for RSS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/live.rs"]
mod live;

#[path = "common/cases.rs"]
mod cases;

use std::sync::{Mutex, MutexGuard, PoisonError};

use cases::Setup;
use live::{Backend, skip_reason};

/// One worker on the EAL main lcore; benign fetches retried (frame loss on net_af_packet).
const SETUP: Setup = Setup {
    backend: Backend::Dpdk,
    workers: 1,
    fetch_attempts: 3,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

macro_rules! skip_unless_able {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("SKIPPED live DPDK test: {why}");
            return;
        }
    };
}

#[test]
fn dpdk_benign_http_passes_unchanged() {
    skip_unless_able!();
    let _g = serial();
    let log = cases::benign_http_passes_unchanged(&SETUP);
    assert!(log.contains("dpdk inline"), "{log}");
}

#[test]
fn dpdk_nmap_scan_blocks_the_attacker() {
    skip_unless_able!();
    let _g = serial();
    cases::nmap_scan_blocks_the_attacker(&SETUP);
}

#[test]
fn dpdk_tagged_scan_blocks_the_source_in_its_vlan_only() {
    skip_unless_able!();
    let _g = serial();
    if cases::tagged_scan_blocks_the_source_in_its_vlan_only(&SETUP).is_none() {
        eprintln!("SKIPPED live DPDK test: tcpdump not installed");
    }
}

#[test]
fn dpdk_terminate_resets_real_connections_without_blocking() {
    skip_unless_able!();
    let _g = serial();
    cases::terminate_resets_real_connections_without_blocking(&SETUP);
}

#[test]
fn dpdk_monitoring_mode_passes_everything_and_reports() {
    skip_unless_able!();
    let _g = serial();
    cases::monitoring_mode_passes_everything_and_reports(&SETUP);
}

/// Two workers on the EAL's two lcores; the software distributor (one queue per port).
const TWO: Setup = Setup {
    backend: Backend::Dpdk,
    workers: 2,
    fetch_attempts: 3,
};

#[test]
fn dpdk_two_workers_benign_http_passes_unchanged() {
    skip_unless_able!();
    let _g = serial();
    let log = cases::benign_http_passes_unchanged(&TWO);
    assert!(log.contains("2 workers on dpdk inline"), "{log}");
    assert!(log.contains("software distribution"), "{log}");
}

#[test]
fn dpdk_two_workers_nmap_scan_blocks_the_attacker() {
    skip_unless_able!();
    let _g = serial();
    cases::nmap_scan_blocks_the_attacker(&TWO);
}

#[test]
fn dpdk_two_workers_block_reaches_every_worker() {
    skip_unless_able!();
    let _g = serial();
    cases::block_reaches_every_worker(&TWO);
}

#[test]
fn dpdk_two_workers_terminate_resets_real_connections_without_blocking() {
    skip_unless_able!();
    let _g = serial();
    cases::terminate_resets_real_connections_without_blocking(&TWO);
}

#[test]
fn dpdk_two_workers_tagged_scan_blocks_the_source_in_its_vlan_only() {
    skip_unless_able!();
    let _g = serial();
    if cases::tagged_scan_blocks_the_source_in_its_vlan_only(&TWO).is_none() {
        eprintln!("SKIPPED live DPDK test: tcpdump not installed");
    }
}

#[test]
fn dpdk_two_workers_monitoring_mode_passes_everything_and_reports() {
    skip_unless_able!();
    let _g = serial();
    cases::monitoring_mode_passes_everything_and_reports(&TWO);
}

// ---------------------------------------------------------------------------------------------
// Two workers over net_pcap: no root, exact counts.

mod pcap_workers {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{IpAddr, Ipv4Addr};
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use dataplane::io::dpdk::{FlowHash, flow_hash};
    use svm_e2e::{TempDir, read_pcap, svm_bin};
    use testgen::scenarios::{self, Roles};
    use testgen::{Capture, Host, plan};

    use super::live::{block_adds, events};

    const WORKERS: usize = 2;

    /// The worker the software distributor gives a frame to.
    fn worker_of(frame: &[u8]) -> usize {
        flow_hash(frame, FlowHash::Addresses) as usize % WORKERS
    }

    fn src_mac(frame: &[u8]) -> [u8; 6] {
        frame[6..12].try_into().unwrap()
    }

    fn dst_mac(frame: &[u8]) -> [u8; 6] {
        frame[..6].try_into().unwrap()
    }

    /// `svm run` on two net_pcap ports: port 0 (VM side) reads `in0`, port 1 `in1`; port `p`
    /// writes what its transmit queue `q` sends to `out{p}{q}.pcap`. With a transmit queue per
    /// worker, queue `q` is worker `q`'s; with fewer, the workers share them under a lock.
    /// Rings larger than the input: the distributor never drops, whatever the timing.
    struct Svm {
        child: Child,
        log: Arc<Mutex<String>>,
        reader: Option<std::thread::JoinHandle<()>>,
        eve: PathBuf,
    }

    impl Svm {
        fn start(dir: &Path, in0: &Path, in1: &Path, tx_queues: usize) -> Svm {
            Self::start_mode(
                dir,
                in0,
                in1,
                tx_queues,
                "mode: inline\nvm_port: net_pcap0\nnetwork_port: net_pcap1",
            )
        }

        /// [`Svm::start`] with another attach mode (`mode` and the port keys).
        fn start_mode(dir: &Path, in0: &Path, in1: &Path, tx_queues: usize, attach: &str) -> Svm {
            let vdev = |p: usize, input: &Path| {
                let outs: Vec<String> = (0..tx_queues)
                    .map(|w| format!(",tx_pcap={}", dir.join(format!("out{p}{w}.pcap")).display()))
                    .collect();
                format!(
                    "\"--vdev=net_pcap{p},rx_pcap={}{}\"",
                    input.display(),
                    outs.concat()
                )
            };
            Self::spawn(
                dir,
                &format!(
                    "{attach}\ndpdk: {{distribution: software, ring_size: 4096}}\n\
                     eal_args: [--no-huge, -m, \"256\", --no-pci, --no-shconf, --no-telemetry, \
                     -l, \"0-1\", \"--log-level=*:warning\", {}, {}]",
                    vdev(0, in0),
                    vdev(1, in1)
                ),
            )
        }

        /// `svm run` with two workers, `settings` (mode, ports, `dpdk`, `eal_args`), a status
        /// report every second and EVE output in `dir`.
        fn spawn(dir: &Path, settings: &str) -> Svm {
            let eve = dir.join("eve.json");
            let config = dir.join("svm.yaml");
            std::fs::write(
                &config,
                format!(
                    "backend: dpdk\nworkers: {WORKERS}\nstats_interval_secs: 1\neve: {}\n\
                     {settings}\n",
                    eve.display(),
                ),
            )
            .unwrap();
            let mut child = Command::new(svm_bin())
                .args(["run", "--config"])
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let log = Arc::new(Mutex::new(String::new()));
            let stderr = child.stderr.take().unwrap();
            let sink = Arc::clone(&log);
            let reader = std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut l = sink.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
            Svm {
                child,
                log,
                reader: Some(reader),
                eve,
            }
        }

        fn log(&self) -> String {
            self.log.lock().unwrap().clone()
        }

        fn exited(&mut self) -> bool {
            self.child.try_wait().unwrap().is_some()
        }

        /// Wait until `ready` holds for the log (a status report comes every second), or fail
        /// after a minute, which only a hung daemon needs.
        fn wait_log(&mut self, what: &str, ready: impl Fn(&str) -> bool) {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let log = self.log();
                if ready(&log) {
                    return;
                }
                assert!(
                    !self.exited(),
                    "svm exited while waiting for {what}:\n{log}"
                );
                assert!(
                    Instant::now() < deadline,
                    "no {what} within a minute:\n{log}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        /// SIGTERM, wait, and return the whole log (the final summary last).
        fn stop(mut self) -> String {
            let kill = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .unwrap();
            assert!(kill.success());
            let status = self.child.wait().unwrap();
            if let Some(r) = self.reader.take() {
                r.join().unwrap();
            }
            let log = self.log();
            assert!(status.success(), "svm failed: {status}\n{log}");
            log
        }
    }

    /// The counters of the last status report in `log`.
    #[derive(Debug, Default)]
    struct Summary {
        packets: u64,
        forwarded: u64,
        dropped: u64,
        blocked: u64,
        injected: u64,
        per_worker: Vec<u64>,
        /// (rx, tx, receive drops, tx failed) per port.
        ports: Vec<(u64, u64, u64, u64)>,
    }

    fn number_after(line: &str, key: &str) -> u64 {
        let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len()..];
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn last_status(log: &str) -> Option<Summary> {
        let start = log.rfind("svm status: packets ")?;
        let mut s = Summary::default();
        for line in log[start..].lines() {
            // The first line is cut at the record's text; later records carry the log's
            // timestamp and level before it.
            if line.contains("svm status:") {
                if s.per_worker.len() + s.ports.len() > 0 {
                    break;
                }
                s.packets = number_after(line, "packets");
                s.forwarded = number_after(line, "forwarded");
                s.dropped = number_after(line, "dropped");
                s.blocked = number_after(line, "blocked");
                s.injected = number_after(line, "injected");
            } else if let Some(list) = line.trim().strip_prefix("per worker packets ") {
                s.per_worker = list
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .map(|n| n.trim().parse().unwrap())
                    .collect();
            } else if line.trim_start().starts_with("port ") {
                s.ports.push((
                    number_after(line, "rx"),
                    number_after(line, "tx"),
                    number_after(line, "kernel drops"),
                    number_after(line, "tx failed"),
                ));
            }
        }
        Some(s)
    }

    fn packets_seen(log: &str) -> u64 {
        last_status(log).map_or(0, |s| s.packets)
    }

    /// The frames worker `w` transmitted on port `p`.
    fn out(dir: &Path, p: usize, w: usize) -> Vec<Vec<u8>> {
        read_pcap(&dir.join(format!("out{p}{w}.pcap")))
            .into_iter()
            .map(|f| f.data)
            .collect()
    }

    /// The demo capture (every attack family, benign traffic, VLANs, QinQ, IPv6, fragments)
    /// split by side: frames from the victim enter on port 0 (VM side), all others on port 1.
    /// Every frame in is forwarded or dropped; each is handled by the worker its flow hash
    /// names, both directions of a flow on the same worker; each worker transmits on its own
    /// queue; per-worker counts add up to the total.
    /// With one transmit queue per port, shared by the workers, the same counts hold; the
    /// files then mix the workers' frames.
    fn spread_and_account(tx_queues: usize) {
        let _g = super::serial();
        let dir = TempDir::new(&format!("dpdk-workers-spread-{tx_queues}"));
        let demo = scenarios::demo(plan::BASE_US);
        let (mut side0, mut side1) = (Capture::new(), Capture::new());
        for f in demo.frames {
            if src_mac(&f.data) == plan::VICTIM_MAC {
                side0.push(f.ts_us, f.data);
            } else {
                side1.push(f.ts_us, f.data);
            }
        }
        let (n0, n1) = (side0.frames.len() as u64, side1.frames.len() as u64);
        assert!(n0 > 100 && n1 > 100, "{n0} {n1}");
        let mut want = [0u64; WORKERS];
        for f in side0.frames.iter().chain(&side1.frames) {
            want[worker_of(&f.data)] += 1;
        }
        assert!(
            want.iter().all(|&n| n > 100),
            "the demo should spread: {want:?}"
        );
        let (in0, in1) = (dir.path("in0.pcap"), dir.path("in1.pcap"));
        side0.write_pcap(&in0).unwrap();
        side1.write_pcap(&in1).unwrap();

        let mut svm = Svm::start(&dir.0, &in0, &in1, tx_queues);
        let total = n0 + n1;
        svm.wait_log("every frame handled", |l| packets_seen(l) == total);
        let log = svm.stop();
        assert!(log.contains("2 workers on dpdk inline"), "{log}");
        assert!(log.contains("software distribution"), "{log}");
        let s = last_status(&log).unwrap();

        assert_eq!(s.packets, total, "{log}");
        assert_eq!(s.per_worker, want.to_vec(), "per-worker packets\n{log}");
        assert_eq!(s.forwarded + s.dropped, s.packets, "{log}");
        assert!(s.dropped > 0 && s.injected > 0, "the demo's attacks: {log}");
        assert_eq!(s.ports.len(), 2, "{log}");
        assert_eq!((s.ports[0].0, s.ports[1].0), (n0, n1), "received\n{log}");
        assert!(
            s.ports.iter().all(|p| p.2 == 0 && p.3 == 0),
            "drops or transmit failures\n{log}"
        );
        assert_eq!(
            s.ports[0].1 + s.ports[1].1,
            s.forwarded + s.injected,
            "transmitted = forwarded + injected\n{log}"
        );

        if tx_queues < WORKERS {
            assert!(log.contains("(shared under a lock)"), "{log}");
            let written: u64 = (0..2)
                .flat_map(|p| (0..tx_queues).map(move |q| (p, q)))
                .map(|(p, q)| out(&dir.0, p, q).len() as u64)
                .sum();
            assert_eq!(
                written,
                s.ports[0].1 + s.ports[1].1,
                "frames in the tx files"
            );
            return;
        }
        // What each worker transmitted, from its own queue's file.
        let mut keys: Vec<std::collections::HashSet<u32>> = vec![Default::default(); WORKERS];
        let mut written = 0u64;
        for (w, worker_keys) in keys.iter_mut().enumerate() {
            let mut per_port = Vec::new();
            for p in 0..2 {
                let frames = out(&dir.0, p, w);
                written += frames.len() as u64;
                for f in &frames {
                    assert_eq!(
                        worker_of(f),
                        w,
                        "worker {w} sent a frame of another worker's flow"
                    );
                }
                per_port.push(
                    frames
                        .iter()
                        .map(|f| flow_hash(f, FlowHash::Addresses))
                        .filter(|&h| h != 0)
                        .collect::<std::collections::HashSet<u32>>(),
                );
            }
            // Both directions of flows went through this worker: in on one port, out the other.
            let both = per_port[0].intersection(&per_port[1]).count();
            assert!(both > 0, "worker {w}: no flow seen in both directions");
            *worker_keys = per_port.into_iter().flatten().collect();
        }
        assert_eq!(
            written,
            s.ports[0].1 + s.ports[1].1,
            "frames in the tx files"
        );
        assert!(
            keys[0].is_disjoint(&keys[1]),
            "a flow was handled by both workers"
        );
    }

    #[test]
    fn dpdk_pcap_two_workers_spread_flows_and_account_for_every_frame() {
        spread_and_account(WORKERS);
    }

    #[test]
    fn dpdk_pcap_two_workers_sharing_a_transmit_queue_account_for_every_frame() {
        spread_and_account(1);
    }

    /// Mirror with an inject port and two workers: worker 0 receives the copies on port 0 and
    /// hands half of them over; nothing is forwarded; the resets the demo's terminate actions
    /// make leave through the inject port, each from the queue of the worker that made it.
    #[test]
    fn dpdk_pcap_two_workers_mirror_with_inject_port() {
        let _g = super::serial();
        let dir = TempDir::new("dpdk-workers-mirror");
        let demo = scenarios::demo(plan::BASE_US);
        let n = demo.frames.len() as u64;
        let mut want = [0u64; WORKERS];
        for f in &demo.frames {
            want[worker_of(&f.data)] += 1;
        }
        let (input, empty) = (dir.path("in0.pcap"), dir.path("empty.pcap"));
        demo.write_pcap(&input).unwrap();
        Capture::new().write_pcap(&empty).unwrap();
        let mut svm = Svm::start_mode(
            &dir.0,
            &input,
            &empty,
            WORKERS,
            "mode: mirror\nport: net_pcap0\ninject_port: net_pcap1",
        );
        svm.wait_log("every frame handled", |l| packets_seen(l) == n);
        let log = svm.stop();
        assert!(log.contains("2 workers on dpdk mirror"), "{log}");
        let s = last_status(&log).unwrap();
        assert_eq!(s.packets, n, "{log}");
        assert_eq!(s.per_worker, want.to_vec(), "{log}");
        assert_eq!(s.ports[0].0, n, "{log}");
        assert_eq!(s.ports[0].1, 0, "a mirror forwards nothing\n{log}");
        assert!(s.injected > 0, "the demo's resets: {log}");
        assert_eq!(s.ports[1].1, s.injected, "{log}");
        for w in 0..WORKERS {
            assert!(out(&dir.0, 0, w).is_empty());
            for f in out(&dir.0, 1, w) {
                assert_eq!(worker_of(&f), w, "a reset left by another worker's queue");
            }
        }
    }

    /// RSS on devices that have it (net_null accepts a receive queue per worker with RSS): each
    /// worker polls its own queue of both ports. net_null's frames are empty, so this checks the
    /// configuration and that every worker receives, not the hash.
    #[test]
    fn dpdk_null_two_workers_rss_gives_each_worker_its_queue() {
        let _g = super::serial();
        let dir = TempDir::new("dpdk-workers-rss");
        let mut svm = Svm::spawn(
            &dir.0,
            "mode: inline\nvm_port: net_null0\nnetwork_port: net_null1\n\
             dpdk: {distribution: rss}\n\
             eal_args: [--no-huge, -m, \"256\", --no-pci, --no-shconf, --no-telemetry, -l, \"0-1\", \
             \"--log-level=*:warning\", --vdev=net_null0, --vdev=net_null1]",
        );
        svm.wait_log("both workers busy", |l| {
            last_status(l).is_some_and(|s| {
                s.per_worker.len() == WORKERS && s.per_worker.iter().all(|&n| n > 0)
            })
        });
        let log = svm.stop();
        assert!(log.contains("RSS over a receive queue per worker"), "{log}");
        assert!(log.contains("transmit queues per port [2, 2]"), "{log}");
        assert!(!log.contains("shared under a lock"), "{log}");
        let s = last_status(&log).unwrap();
        assert_eq!(s.forwarded + s.dropped, s.packets, "{log}");
        // Both ports received on both queues: the device counters cover them all.
        assert!(s.ports.iter().all(|p| p.0 > 0), "{log}");
    }

    /// `distribution: rss` on devices without RSS (net_pcap) refuses to start, before any frame.
    #[test]
    fn dpdk_pcap_rss_is_refused_without_device_support() {
        let _g = super::serial();
        let dir = TempDir::new("dpdk-workers-no-rss");
        let empty = dir.path("empty.pcap");
        Capture::new().write_pcap(&empty).unwrap();
        let mut svm = Svm::spawn(
            &dir.0,
            &format!(
                "mode: inline\nvm_port: net_pcap0\nnetwork_port: net_pcap1\n\
                 dpdk: {{distribution: rss}}\n\
                 eal_args: [--no-huge, -m, \"256\", --no-pci, --no-shconf, --no-telemetry, -l, \"0-1\", \
                 \"--log-level=*:warning\", \"--vdev=net_pcap0,rx_pcap={e}\", \"--vdev=net_pcap1,rx_pcap={e}\"]",
                e = empty.display()
            ),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while !svm.exited() {
            assert!(
                Instant::now() < deadline,
                "svm did not refuse:\n{}",
                svm.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = svm.child.wait().unwrap();
        if let Some(r) = svm.reader.take() {
            r.join().unwrap();
        }
        let log = svm.log();
        assert!(!status.success(), "{log}");
        assert!(
            log.contains("RSS over 2 receive queues is not available"),
            "{log}"
        );
    }

    /// A TCP scan handled by one worker blocks the scanner; its later traffic to another host,
    /// which the distributor gives to the other worker, is dropped there. Port 1 reads a FIFO:
    /// the follow-up is written only once the block event is out, so the order does not depend
    /// on timing (the keeper publishes the block right after it emits the event).
    #[test]
    fn dpdk_pcap_block_by_one_worker_drops_the_attacker_on_the_other() {
        let _g = super::serial();
        let dir = TempDir::new("dpdk-workers-block");
        let link = plan::vlan100();
        let roles = |server_ip: Ipv4Addr| Roles {
            attacker: plan::attacker(),
            victim: plan::victim(),
            server: Host::new(plan::SERVER_MAC, IpAddr::V4(server_ip)),
        };
        // The scan's SYNs (attacker -> victim) and the attacker's HTTP session to a server that
        // hashes to the other worker.
        let scan: Vec<Vec<u8>> =
            scenarios::tcp_port_scan_with(&link, &roles(plan::SERVER_V4), plan::BASE_US)
                .frames
                .into_iter()
                .map(|f| f.data)
                .filter(|f| src_mac(f) == plan::ATTACKER_MAC)
                .collect();
        let scan_worker = worker_of(&scan[0]);
        let (server, follow) = (20u8..60)
            .map(|last| {
                let r = roles(Ipv4Addr::new(10, 0, 0, last));
                let frames: Vec<Vec<u8>> =
                    scenarios::follow_up_with(&link, &r, plan::BASE_US + 2_000_000)
                        .frames
                        .into_iter()
                        .map(|f| f.data)
                        .filter(|f| {
                            src_mac(f) == plan::ATTACKER_MAC && dst_mac(f) == plan::SERVER_MAC
                        })
                        .collect();
                (last, frames)
            })
            .find(|(_, frames)| worker_of(&frames[0]) != scan_worker)
            .expect("a server address on the other worker");
        let other = 1 - scan_worker;
        assert!(follow.iter().all(|f| worker_of(f) == other));
        assert!(scan.iter().all(|f| worker_of(f) == scan_worker));
        eprintln!(
            "scan on worker {scan_worker}, follow-up to 10.0.0.{server} on worker {other} \
             ({} + {} frames)",
            scan.len(),
            follow.len()
        );

        let pcap = |frames: &[Vec<u8>]| {
            let mut c = Capture::new();
            for (i, f) in (0u64..).zip(frames) {
                c.push(plan::BASE_US + i, f.clone());
            }
            c.to_pcap_bytes()
        };
        let empty = dir.path("empty.pcap");
        Capture::new().write_pcap(&empty).unwrap();
        let fifo = dir.path("in1.fifo");
        let mkfifo = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(mkfifo.success(), "mkfifo");

        let mut svm = Svm::start(&dir.0, &empty, &fifo, WORKERS);
        // net_pcap opens its rx_pcap during EAL init: wait for it as a reader (non-blocking
        // opens for writing fail with ENXIO until then), then open for blocking writes.
        let deadline = Instant::now() + Duration::from_secs(60);
        let probe = loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
            {
                Ok(f) => break f,
                Err(_) => {
                    assert!(!svm.exited(), "svm exited:\n{}", svm.log());
                    assert!(Instant::now() < deadline, "svm never opened the FIFO");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        drop(probe);
        w.write_all(&pcap(&scan)).unwrap();
        w.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while block_adds(&events(&svm.eve)).is_empty() {
            assert!(!svm.exited(), "svm exited:\n{}", svm.log());
            assert!(Instant::now() < deadline, "no block:\n{}", svm.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        // The follow-up's records, without the pcap header.
        w.write_all(&pcap(&follow)[24..]).unwrap();
        drop(w);
        let total = (scan.len() + follow.len()) as u64;
        svm.wait_log("every frame handled", |l| packets_seen(l) == total);
        let eve = svm.eve.clone();
        let log = svm.stop();
        let s = last_status(&log).unwrap();
        let mut want = vec![0u64; WORKERS];
        want[scan_worker] = scan.len() as u64;
        want[other] = follow.len() as u64;
        assert_eq!(s.per_worker, want, "{log}");
        let ev = events(&eve);
        let adds = block_adds(&ev);
        assert_eq!(adds.len(), 1, "{adds:?}");
        assert_eq!(adds[0]["src_ip"], "10.0.0.66");
        // Every follow-up frame dropped as blocked, by the worker that did not see the scan;
        // nothing of it left port 0.
        assert!(s.blocked >= follow.len() as u64, "{log}");
        let leaked: Vec<_> = out(&dir.0, 0, other)
            .into_iter()
            .filter(|f| src_mac(f) == plan::ATTACKER_MAC)
            .collect();
        assert!(
            leaked.is_empty(),
            "{} follow-up frames forwarded\n{log}",
            leaked.len()
        );
        assert_eq!(s.forwarded + s.dropped, total, "{log}");
    }
}
