//! The DPDK backend end to end over `net_pcap` virtual devices, with exact frame counts.
//!
//! DPDK initialises its EAL once per process, so this binary has its own `main`
//! (`harness = false`): it runs each scenario in a child process of itself
//! (`dpdk_pcap --dpdk-child NAME`) and fails if any child fails.
//!
//! Every scenario reads a generated capture on port 0 (`rx_pcap`), writes what each port
//! transmits to a file (`tx_pcap`), polls until the capture is consumed (net_pcap rx stops at
//! EOF), closes the ports (which flushes the files), then checks the files frame by frame.

// Test code with its own harness: clippy's in-test allowances do not reach it, so say it here.
#![allow(clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use dataplane::io::dpdk::{DpdkConfig, DpdkError, DpdkIo, Eal};
use dataplane::io::pcap::Capture;
use dataplane::io::{FrameHandler, Injection, PacketIo, PortStats, RxMeta};
use dataplane::worker::{DropReason, Toward, Verdict};

type Scenario = fn(&Path) -> Result<()>;

const SCENARIOS: &[(&str, Scenario)] = &[
    ("inline", inline),
    ("inline_burst", inline_burst),
    ("mirror_inject", mirror_inject),
    ("mirror_no_inject", mirror_no_inject),
];

/// Copies of the benign testgen capture (54 frames each) in the input.
const COPIES: u64 = 6;
const DROP_EVERY: u64 = 10;
const SOURCE_EVERY: u64 = 25;
const DESTINATION_EVERY: u64 = 40;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in SCENARIOS {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    if let Some(i) = args.iter().position(|a| a == "--dpdk-child") {
        let name = args.get(i + 1).map(String::as_str).unwrap_or_default();
        return match child(name) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dpdk_pcap {name}: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // Positional arguments filter scenarios by substring, like the libtest harness.
    let filters: Vec<&String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = 0;
    let mut ran = 0;
    for (name, _) in SCENARIOS {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let status = std::env::current_exe()
            .and_then(|exe| Command::new(exe).args(["--dpdk-child", name]).status());
        match status {
            Ok(s) if s.success() => println!("test dpdk_pcap::{name} ... ok"),
            other => {
                println!("test dpdk_pcap::{name} ... FAILED ({other:?})");
                failed += 1;
            }
        }
    }
    println!("dpdk_pcap: {ran} scenarios, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn child(name: &str) -> Result<()> {
    let (_, run) = SCENARIOS
        .iter()
        .find(|(n, _)| *n == name)
        .with_context(|| format!("no scenario {name:?}"))?;
    let dir = std::env::temp_dir().join(format!("svm-dpdk-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&dir);
    if result.is_ok() {
        std::fs::remove_dir_all(&dir)?;
    } else {
        eprintln!("files kept in {}", dir.display());
    }
    result
}

/// The input: `COPIES` benign captures, 10 s apart.
fn input() -> testgen::Capture {
    let mut cap = testgen::Capture::new();
    for i in 0..COPIES {
        cap.extend(testgen::scenarios::benign(
            &testgen::plan::vlan100(),
            testgen::plan::BASE_US + i * 10_000_000,
        ));
    }
    cap
}

struct Files {
    input: PathBuf,
    empty: PathBuf,
    out0: PathBuf,
    out1: PathBuf,
}

fn files(dir: &Path) -> Result<(Files, Vec<Vec<u8>>)> {
    let f = Files {
        input: dir.join("in.pcap"),
        empty: dir.join("empty.pcap"),
        out0: dir.join("out0.pcap"),
        out1: dir.join("out1.pcap"),
    };
    let cap = input();
    cap.write_pcap(&f.input)?;
    testgen::Capture::new().write_pcap(&f.empty)?;
    let frames = cap.frames.into_iter().map(|fr| fr.data).collect();
    Ok((f, frames))
}

/// The EAL arguments: no hugepages, no PCI, no shared config, two pcap ports. Port 0 reads the
/// input; port 1 reads an empty capture (net_pcap wants a receive side).
fn eal_args(f: &Files) -> Vec<String> {
    [
        "--no-huge",
        "-m",
        "128",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "-l",
        "0",
        "--log-level=*:warning",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        format!(
            "--vdev=net_pcap0,rx_pcap={},tx_pcap={}",
            f.input.display(),
            f.out0.display()
        ),
        format!(
            "--vdev=net_pcap1,rx_pcap={},tx_pcap={}",
            f.empty.display(),
            f.out1.display()
        ),
    ])
    .collect()
}

/// A marker frame for the `n`-th received frame's injection (local experimental EtherType).
fn marker(n: u64, toward: Toward) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14..22].copy_from_slice(&n.to_be_bytes());
    f[22] = u8::from(toward == Toward::Source);
    f
}

/// Drops every `DROP_EVERY`-th frame, injects a marker toward the source every `SOURCE_EVERY`-th
/// and toward the destination every `DESTINATION_EVERY`-th. With `burst`, it takes whole bursts
/// ([`FrameHandler::on_burst`]), stopping after a frame that injected, as the worker does;
/// otherwise one frame per call (the default `on_burst`).
#[derive(Default)]
struct Script {
    burst: bool,
    /// Calls of `on_burst` that handled more than one frame.
    multi: u64,
    seen: u64,
    pending: Vec<Injection>,
    /// Frames seen, with their port.
    frames: Vec<(u16, Vec<u8>)>,
}

impl FrameHandler for Script {
    fn on_frame(&mut self, frame: &[u8], meta: RxMeta) -> Verdict {
        self.seen += 1;
        let n = self.seen;
        self.frames.push((meta.port, frame.to_vec()));
        for (every, toward) in [
            (SOURCE_EVERY, Toward::Source),
            (DESTINATION_EVERY, Toward::Destination),
        ] {
            if n.is_multiple_of(every) {
                self.pending.push(Injection {
                    frame: marker(n, toward),
                    toward,
                    rx_port: meta.port,
                });
            }
        }
        if n.is_multiple_of(DROP_EVERY) {
            Verdict::Drop(DropReason::Attack)
        } else {
            Verdict::Forward
        }
    }

    fn on_burst(&mut self, frames: &[&[u8]], meta: RxMeta, verdicts: &mut Vec<Verdict>) -> usize {
        let mut done = 0;
        for frame in frames {
            verdicts.push(self.on_frame(frame, meta));
            done += 1;
            if !self.burst || !self.pending.is_empty() {
                break;
            }
        }
        if done > 1 {
            self.multi += 1;
        }
        done
    }

    fn take_injections(&mut self, out: &mut Vec<Injection>) {
        out.append(&mut self.pending);
    }
}

/// Poll until `expected` frames have arrived and 100 more polls bring nothing.
fn drain(io: &mut DpdkIo, handler: &mut Script, expected: u64) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut received = 0u64;
    let mut idle = 0;
    while idle < 100 {
        ensure!(
            Instant::now() < deadline,
            "timed out: {received} of {expected} frames received"
        );
        let n = io.poll(handler, 32)? as u64;
        received += n;
        if n == 0 && received >= expected {
            idle += 1;
        } else {
            idle = 0;
        }
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(received)
}

fn read(path: &Path) -> Result<Vec<Vec<u8>>> {
    let cap = Capture::load(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(cap.iter().map(|(_, f)| f.to_vec()).collect())
}

/// What the script makes of `frames` arriving on one port: (forwarded frames followed by
/// destination markers, in transmit order; source markers).
fn expected(frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut onward = Vec::new();
    let mut back = Vec::new();
    for (n, f) in (1u64..).zip(frames) {
        if !n.is_multiple_of(DROP_EVERY) {
            onward.push(f.clone());
        }
        if n.is_multiple_of(SOURCE_EVERY) {
            back.push(marker(n, Toward::Source));
        }
        if n.is_multiple_of(DESTINATION_EVERY) {
            onward.push(marker(n, Toward::Destination));
        }
    }
    (onward, back)
}

fn inline(dir: &Path) -> Result<()> {
    inline_with(dir, false)
}

/// `inline` with a handler that takes whole bursts: same frames out, in the same order.
fn inline_burst(dir: &Path) -> Result<()> {
    inline_with(dir, true)
}

fn inline_with(dir: &Path, burst: bool) -> Result<()> {
    let (f, frames) = files(dir)?;
    let n = frames.len() as u64;
    ensure!(n == COPIES * 54, "unexpected input size {n}");
    let eal = Eal::init(&eal_args(&f))?;
    // One EAL per process: a second init must fail cleanly.
    match Eal::init(&[]) {
        Err(DpdkError::AlreadyInitialized) => {}
        other => bail!("second Eal::init: expected AlreadyInitialized, got {other:?}"),
    }
    ensure!(eal.port_count() == 2, "ports: {}", eal.port_count());
    let ports = [
        eal.port_by_name("net_pcap0")?,
        eal.port_by_name("net_pcap1")?,
    ];
    let mut io = DpdkIo::inline(&eal, ports, &DpdkConfig::default())?;
    ensure!(io.ports().iter().all(|p| p.link_up()), "links not up");
    let mut script = Script {
        burst,
        ..Script::default()
    };
    let received = drain(&mut io, &mut script, n)?;
    ensure!(received == n, "received {received}, want {n}");
    ensure!(
        script.frames.iter().all(|(p, _)| *p == 0),
        "a frame arrived on port 1"
    );
    ensure!(
        (script.multi > 0) == burst,
        "{} calls handled several frames (burst: {burst})",
        script.multi
    );
    let seen: Vec<Vec<u8>> = script.frames.iter().map(|(_, f)| f.clone()).collect();
    ensure!(
        seen == frames,
        "frames seen by the handler differ from the input"
    );

    let (onward, back) = expected(&frames);
    let dropped = n / DROP_EVERY;
    let (to_source, to_destination) = (n / SOURCE_EVERY, n / DESTINATION_EVERY);
    ensure!(onward.len() as u64 == n - dropped + to_destination);
    ensure!(back.len() as u64 == to_source);
    let stats = io.stats();
    let want = vec![
        PortStats {
            rx_packets: n,
            rx_bytes: frames.iter().map(|f| f.len() as u64).sum(),
            tx_packets: to_source,
            rx_dropped: 0,
            tx_failed: 0,
        },
        PortStats {
            rx_packets: 0,
            rx_bytes: 0,
            tx_packets: n - dropped + to_destination,
            rx_dropped: 0,
            tx_failed: 0,
        },
    ];
    ensure!(stats == want, "stats {stats:?}, want {want:?}");
    drop(io); // stops and closes the ports: flushes the tx_pcap files

    let out0 = read(&f.out0)?;
    let out1 = read(&f.out1)?;
    println!(
        "inline: {n} in, {dropped} dropped, {} out of port 1 ({} forwarded + {to_destination} \
         injected toward the destination), {} out of port 0 (injected toward the source)",
        out1.len(),
        n - dropped,
        out0.len()
    );
    ensure!(
        out1.len() == onward.len(),
        "port 1 wrote {} frames, want {}",
        out1.len(),
        onward.len()
    );
    ensure!(
        out1 == onward,
        "port 1 frames differ from the expected sequence"
    );
    ensure!(
        out0.len() == back.len(),
        "port 0 wrote {} frames, want {}",
        out0.len(),
        back.len()
    );
    ensure!(
        out0 == back,
        "port 0 frames differ from the expected markers"
    );
    Ok(())
}

fn mirror_inject(dir: &Path) -> Result<()> {
    let (f, frames) = files(dir)?;
    let n = frames.len() as u64;
    let eal = Eal::init(&eal_args(&f))?;
    let rx = eal.port_by_name("net_pcap0")?;
    let inject = eal.port_by_name("net_pcap1")?;
    let mut io = DpdkIo::mirror(&eal, rx, Some(inject), &DpdkConfig::default())?;
    let mut script = Script::default();
    let received = drain(&mut io, &mut script, n)?;
    ensure!(received == n, "received {received}, want {n}");
    let stats = io.stats();
    drop(io);
    // A mirror forwards nothing; both directions of injection leave through the inject port,
    // in the order they were made.
    let mut want1 = Vec::new();
    for m in 1..=n {
        if m.is_multiple_of(SOURCE_EVERY) {
            want1.push(marker(m, Toward::Source));
        }
        if m.is_multiple_of(DESTINATION_EVERY) {
            want1.push(marker(m, Toward::Destination));
        }
    }
    let out0 = read(&f.out0)?;
    let out1 = read(&f.out1)?;
    println!(
        "mirror_inject: {n} in, {} out of port 0, {} out of the inject port",
        out0.len(),
        out1.len()
    );
    ensure!(
        out0.is_empty(),
        "the mirror port transmitted {} frames",
        out0.len()
    );
    ensure!(
        out1 == want1,
        "inject port wrote {} frames, want {}",
        out1.len(),
        want1.len()
    );
    ensure!(stats.len() == 2);
    ensure!(
        stats[0].rx_packets == n && stats[0].tx_packets == 0,
        "{stats:?}"
    );
    ensure!(
        stats[1].tx_packets == want1.len() as u64 && stats[1].tx_failed == 0,
        "{stats:?}"
    );
    Ok(())
}

fn mirror_no_inject(dir: &Path) -> Result<()> {
    let (f, frames) = files(dir)?;
    let n = frames.len() as u64;
    let eal = Eal::init(&eal_args(&f))?;
    let rx = eal.port_by_name("net_pcap0")?;
    let mut io = DpdkIo::mirror(&eal, rx, None, &DpdkConfig::default())?;
    let mut script = Script::default();
    let received = drain(&mut io, &mut script, n)?;
    ensure!(received == n, "received {received}, want {n}");
    let unsent = n / SOURCE_EVERY + n / DESTINATION_EVERY;
    let stats = io.stats();
    ensure!(
        io.unsent_injections() == unsent,
        "unsent {}, want {unsent}",
        io.unsent_injections()
    );
    ensure!(stats.len() == 1, "{stats:?}");
    ensure!(
        stats[0].rx_packets == n && stats[0].tx_packets == 0,
        "{stats:?}"
    );
    ensure!(stats[0].tx_failed == unsent, "{stats:?}");
    drop(io);
    let out0 = read(&f.out0)?;
    ensure!(
        out0.is_empty(),
        "the mirror port transmitted {} frames",
        out0.len()
    );
    println!("mirror_no_inject: {n} in, {unsent} injections counted as not sent, 0 out");
    Ok(())
}
