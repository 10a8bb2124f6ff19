//! Helpers for the end-to-end tests: run the real `svm` binary (built by `cargo build --bins`,
//! which `make test` does first) on generated captures and read back what it wrote.
#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::missing_panics_doc
)]

pub mod conformance;
pub mod control;
pub mod fakes;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use dataplane::decode::{DecodeOptions, L3, L4, decode_frame};
use serde_json::Value;

/// The `svm` binary next to the test executable (`target/<profile>/svm`), or `$SVM_BIN`.
pub fn svm_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SVM_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>/svm
    let bin = exe.parent().unwrap().parent().unwrap().join("svm");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --bins` first (make test does)",
        bin.display()
    );
    bin
}

/// A directory removed when dropped.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory named after the test and the process.
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("svm-e2e-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// A path inside.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One frame of a capture.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Microseconds since the epoch.
    pub ts_us: u64,
    /// Bytes.
    pub data: Vec<u8>,
}

/// What a replay produced.
#[derive(Debug)]
pub struct Replay {
    /// EVE records.
    pub events: Vec<Value>,
    /// The summary (`--summary-json`).
    pub summary: Value,
    /// Forwarded frames (inline runs).
    pub forwarded: Vec<Frame>,
    /// Injected frames.
    pub injected: Vec<Frame>,
    /// The input frames.
    pub input: Vec<Frame>,
}

impl Replay {
    /// Alerts with this signature.
    pub fn alerts(&self, signature: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["event_type"] == "alert" && e["alert"]["signature"] == signature)
            .collect()
    }

    /// All alerts.
    pub fn all_alerts(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["event_type"] == "alert")
            .collect()
    }

    /// Block records with this action (`add` or `remove`).
    pub fn blocks(&self, action: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["event_type"] == "block" && e["block"]["action"] == action)
            .collect()
    }
}

/// Read a pcap file's frames.
pub fn read_pcap(path: &Path) -> Vec<Frame> {
    let bytes = std::fs::read(path).unwrap();
    let mut r = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
    let mut out = vec![];
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        out.push(Frame {
            ts_us: u64::try_from(p.timestamp.as_micros()).unwrap(),
            data: p.data.into_owned(),
        });
    }
    out
}

/// Replay `cap` inline (unless `extra` says otherwise) with an optional policy (YAML text).
pub fn replay(
    name: &str,
    cap: &testgen::Capture,
    policy_yaml: Option<&str>,
    extra: &[&str],
) -> Replay {
    let dir = TempDir::new(name);
    let pcap = dir.path("in.pcap");
    cap.write_pcap(&pcap).unwrap();
    let eve = dir.path("eve.json");
    let fwd = dir.path("fwd.pcap");
    let inj = dir.path("inj.pcap");
    let sum = dir.path("summary.json");
    let mut cmd = Command::new(svm_bin());
    cmd.arg("replay")
        .arg(&pcap)
        .arg("--eve")
        .arg(&eve)
        .arg("--write-forwarded")
        .arg(&fwd);
    cmd.arg("--write-injected")
        .arg(&inj)
        .arg("--summary-json")
        .arg(&sum);
    if let Some(text) = policy_yaml {
        let p = dir.path("policy.yaml");
        std::fs::write(&p, text).unwrap();
        cmd.arg("--policy").arg(p);
    }
    cmd.args(extra);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "svm replay failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let events = std::fs::read_to_string(&eve)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad EVE line {l}: {e}")))
        .collect();
    let summary = serde_json::from_str(&std::fs::read_to_string(&sum).unwrap()).unwrap();
    let input = cap
        .frames
        .iter()
        .map(|f| Frame {
            ts_us: f.ts_us,
            data: f.data.clone(),
        })
        .collect();
    Replay {
        events,
        summary,
        forwarded: read_pcap(&fwd),
        injected: read_pcap(&inj),
        input,
    }
}

/// Facts about a frame, from the product's decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// VLAN ids, outer first.
    pub vlan: Vec<u16>,
    /// TPIDs, outer first.
    pub tpids: Vec<u16>,
    /// Source address (ARP sender for ARP).
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// TCP flags, if TCP.
    pub tcp_flags: Option<u16>,
    /// TCP ports, if TCP.
    pub tcp_ports: Option<(u16, u16)>,
    /// TCP seq/ack, if TCP.
    pub tcp_seq_ack: Option<(u32, u32)>,
}

/// Decode a frame's addresses and tags.
pub fn facts(frame: &[u8]) -> Facts {
    let d = decode_frame(
        frame,
        DecodeOptions {
            verify_checksums: true,
        },
    )
    .unwrap();
    let tpids = d.vlan.tags().iter().map(|t| u16::from(t.tpid)).collect();
    let vlan = d.vlan.ids().collect();
    let (src, dst, tcp) = match &d.l3 {
        L3::Ip(ip) => (
            Some(ip.src()),
            Some(ip.dst()),
            if let L4::Tcp(t) = ip.l4 {
                Some(t)
            } else {
                None
            },
        ),
        L3::Arp(a) => (
            Some(IpAddr::V4(a.sender_ip)),
            Some(IpAddr::V4(a.target_ip)),
            None,
        ),
        L3::Other => (None, None, None),
    };
    assert!(
        d.anomalies.is_empty(),
        "frame has anomalies: {:?}",
        d.anomalies
    );
    Facts {
        vlan,
        tpids,
        src,
        dst,
        tcp_flags: tcp.map(|t| t.flags.0),
        tcp_ports: tcp.map(|t| (t.src_port, t.dst_port)),
        tcp_seq_ack: tcp.map(|t| (t.seq, t.ack)),
    }
}

/// Concatenate captures in order (each already time-ordered), then sort by time.
pub fn merge(parts: Vec<testgen::Capture>) -> testgen::Capture {
    let mut all = testgen::Capture::new();
    for p in parts {
        all.extend(p);
    }
    all.sort_by_time();
    all
}

/// A small tmpfs mounted for one test (needs root, as the live tests do), unmounted and removed
/// when dropped, also when the test fails: a real filesystem that fills up.
#[derive(Debug)]
pub struct SmallDisk {
    /// The mount point.
    pub dir: PathBuf,
}

impl SmallDisk {
    /// Mount a tmpfs of `size` (`8m`) at a directory named after `name` and the process.
    pub fn mount(name: &str, size: &str) -> SmallDisk {
        let dir = std::env::temp_dir().join(format!("svm-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        let disk = SmallDisk { dir };
        assert!(
            ok,
            "mount a tmpfs at {} (the test runs as root)",
            disk.dir.display()
        );
        disk
    }

    /// Fill the disk with a file until a write fails; returns the file.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}
