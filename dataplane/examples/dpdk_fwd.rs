//! Inline forwarding throughput of the DPDK backend on one core, between two `net_null` vdevs.
//!
//! ```text
//! cargo run --release -p dataplane --features dpdk --example dpdk_fwd -- \
//!     [--seconds 5] [--handler worker|forward|worker-only] [--burst 32] [--flows 1024] [--lcore 0]
//! ```
//!
//! `net_null` receives whatever the mbuf already holds (it only sets the length, 64 bytes by
//! default), so before the run every mbuf of the pool is filled with one of `--flows` templates:
//! 64-byte TCP ACK segments in VLAN 100 from 10.0.x.y:port to 10.1.0.1:443. With
//! `--handler worker` each frame goes through a real [`Worker`] (decode, VLAN scope, blocks,
//! exclusions, flow table, attack blocker) with the default policy; `forward` forwards blindly
//! (the backend's own cost); `worker-only` runs the worker over 64 templates in memory without
//! DPDK (the worker's ceiling on this machine). Both ports receive and forward to each other; the
//! figure is frames received per second, both ports together.
//!
//! The worker runs behind the daemon's driver ([`dataplane::driver`]: the same frame handler and
//! poll loop as `svm run`), so the figure is the daemon's per-worker path.
//!
//! net_null allocates from the lcore's mbuf cache, which is LIFO: the same 64 mbufs (two bursts of
//! 32) circulate, so the worker sees 64 flows whatever `--flows` says.

#[path = "common/glue.rs"]
mod glue;
#[path = "common/templates.rs"]
mod templates;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use dataplane::driver::{Driven, Driver, Events, RunConfig, WorkerStatus, run_worker};
use dataplane::io::dpdk::{DpdkConfig, DpdkIo, Eal};
use dataplane::io::{FrameHandler, Injection, PacketIo, RxMeta};
use dataplane::shared_blocks::SharedBlocks;
use dataplane::worker::{Attach, Verdict, Worker, WorkerConfig};
use glue::{Flags, Run, eal_args, spawn_keeper};
use policy::{CompiledPolicy, Policy};
use templates::{fill_pool, template};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Handler {
    /// The worker behind the DPDK backend.
    Worker,
    /// Blind forwarding behind the DPDK backend.
    Forward,
    /// The worker alone, over the templates in memory (no DPDK): the worker's ceiling.
    WorkerOnly,
}

struct Args {
    run: Run,
    handler: Handler,
    lcore: u32,
}

fn args() -> Result<Args> {
    let mut a = Args {
        run: Run::default(),
        handler: Handler::Worker,
        lcore: 0,
    };
    let mut flags = Flags::from_env();
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--handler" => {
                a.handler = flags.choice(
                    &flag,
                    &[
                        ("worker", Handler::Worker),
                        ("forward", Handler::Forward),
                        ("worker-only", Handler::WorkerOnly),
                    ],
                )?;
            }
            "--lcore" => a.lcore = flags.parse(&flag)?,
            other => {
                if !flags.run_flag(other, &mut a.run)? {
                    bail!("unknown argument {other}");
                }
            }
        }
    }
    Ok(a)
}

struct ForwardAll;

impl FrameHandler for ForwardAll {
    fn on_frame(&mut self, _frame: &[u8], _meta: RxMeta) -> Verdict {
        Verdict::Forward
    }
    fn on_burst(&mut self, frames: &[&[u8]], _meta: RxMeta, verdicts: &mut Vec<Verdict>) -> usize {
        verdicts.extend(frames.iter().map(|_| Verdict::Forward));
        frames.len()
    }
    fn take_injections(&mut self, _out: &mut Vec<Injection>) {}
}

impl Driven for ForwardAll {
    fn refresh(&mut self) {}
    fn finish(&mut self) {}
    fn status(&self) -> WorkerStatus {
        WorkerStatus::default()
    }
}

/// The driver loop (as in the daemon) for a 300 ms warm-up, then for `--seconds`: frames
/// received in the timed part and its length. The clock is read every 256 polls only.
fn run<H: Driven>(io: &mut DpdkIo, handler: &mut H, a: &Args) -> Result<(u64, Duration)> {
    let stop = AtomicBool::new(false);
    let run = RunConfig {
        burst: a.run.burst,
        stop: &stop,
        status: None,
    };
    let mut polls = 0u32;
    let mut timed: Option<(Instant, u64)> = None;
    let mut frames = 0u64;
    let mut elapsed = Duration::ZERO;
    let warm = Instant::now();
    let limit = Duration::from_secs_f64(a.run.seconds);
    run_worker(io, handler, &run, |_, _, n| {
        frames += n as u64;
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(256) {
            match timed {
                None if warm.elapsed() >= Duration::from_millis(300) => {
                    timed = Some((Instant::now(), frames));
                }
                Some((start, _)) if start.elapsed() >= limit => {
                    elapsed = start.elapsed();
                    stop.store(true, Ordering::Relaxed);
                }
                _ => {}
            }
        }
        Ok::<_, std::io::Error>(())
    })?;
    Ok((frames - timed.map_or(frames, |(_, f)| f), elapsed))
}

/// The worker over 64 templates in memory, handed over 32 at a time like the backend's bursts,
/// timestamps from the wall clock once per burst.
fn worker_only(h: &mut Driver, a: &Args) -> (u64, Duration) {
    let frames: Vec<Vec<u8>> = (0..64u32)
        .map(|i| template(i.wrapping_mul(0x9e37_79b9) % a.run.flows.max(1)))
        .collect();
    let views: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let mut verdicts = Vec::with_capacity(32);
    let limit = Duration::from_secs_f64(a.run.seconds);
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        for burst in views.chunks(32) {
            let meta = RxMeta {
                port: 0,
                ts: dataplane::io::dpdk::wall_clock(),
            };
            let mut rest = burst;
            while !rest.is_empty() {
                verdicts.clear();
                let done = h.on_burst(rest, meta, &mut verdicts).max(1);
                std::hint::black_box(&verdicts);
                n += done as u64;
                rest = rest.get(done..).unwrap_or(&[]);
            }
        }
        let elapsed = start.elapsed();
        if elapsed >= limit {
            return (n, elapsed);
        }
    }
}

fn main() -> Result<()> {
    let a = args()?;
    let vdevs = vec!["--vdev=net_null0".to_owned(), "--vdev=net_null1".to_owned()];
    let eal = Eal::init(&eal_args(256, vdevs, a.lcore.to_string()))?;
    let ports = [
        eal.port_by_name("net_null0")?,
        eal.port_by_name("net_null1")?,
    ];
    let mut io = DpdkIo::inline(&eal, ports, &DpdkConfig::default())?;
    let filled = fill_pool(&io, a.run.flows);

    let policy = Arc::new(CompiledPolicy::compile(Policy::default()));
    let cfg = WorkerConfig {
        attach: Attach::Inline,
        ..WorkerConfig::default()
    };
    // The worker's block table; its keeper ends with the worker.
    let SharedBlocks {
        keeper,
        mut clients,
        ..
    } = SharedBlocks::with_workers(1);
    spawn_keeper(keeper);
    let mut worker = Driver::new(Worker::new(cfg, policy, clients.remove(0)), Events::Count);
    let (frames, elapsed) = match a.handler {
        Handler::Worker => run(&mut io, &mut worker, &a)?,
        Handler::Forward => run(&mut io, &mut ForwardAll, &a)?,
        Handler::WorkerOnly => worker_only(&mut worker, &a),
    };
    let pps = frames as f64 / elapsed.as_secs_f64();
    println!(
        "dpdk_fwd: handler={} burst={} flows={} mbufs filled={filled}",
        match a.handler {
            Handler::Worker => "worker",
            Handler::Forward => "forward",
            Handler::WorkerOnly => "worker-only (no DPDK)",
        },
        a.run.burst,
        a.run.flows
    );
    println!(
        "dpdk_fwd: {frames} frames in {:.2} s: {:.2} Mpps received and handled (both ports)",
        elapsed.as_secs_f64(),
        pps / 1e6
    );
    for (i, s) in io.stats().iter().enumerate() {
        println!("dpdk_fwd: port {i}: {s:?}");
    }
    if a.handler != Handler::Forward {
        let c = worker.worker().counters();
        println!(
            "dpdk_fwd: worker: packets={} forwarded={} dropped={} invalid={} alerts={} \
             events={} flows={}",
            c.packets,
            c.forwarded,
            c.dropped(),
            c.invalid,
            c.alerts(),
            worker.events_emitted(),
            worker.worker().flows().len()
        );
    }
    Ok(())
}
