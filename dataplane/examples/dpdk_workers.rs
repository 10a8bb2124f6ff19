//! Throughput of several DPDK workers on the same two `net_null` ports: RSS or the software
//! distributor, each worker running a real [`Worker`] with the default policy.
//!
//! ```text
//! cargo run --release -p dataplane --features dpdk --example dpdk_workers -- \
//!     [--workers 2] [--distribution software|rss|auto] [--hash addresses|flows] \
//!     [--source pcap|null] [--seconds 5] [--burst 32] [--flows 1024] [--ring 1024]
//! ```
//!
//! The traffic: `--flows` templates, 64-byte TCP ACKs in VLAN 100 from 10.0.x.y to
//! 10.1.0.1:443 (so the address hash spreads them).
//! - `--source pcap` (the default): two `net_pcap` ports with `infinite_rx=1` on a capture of
//!   the templates: the PMD replays it forever, copying each frame into a fresh mbuf, and drops
//!   what it is given to transmit (no `tx_pcap`). Works with the software distributor; net_pcap
//!   has no RSS.
//! - `--source null`: two `net_null` ports, as in `dpdk_fwd`: net_null "receives" whatever its
//!   mbufs hold, so every mbuf of the pool is filled with a template first. Has RSS (net_null
//!   accepts the configuration; each queue receives on its own). Useless for the software
//!   distributor: mbufs the other workers free go to their lcores' caches, and the main lcore
//!   keeps recycling its own, whose templates all hash to worker 0.
//!
//! Every worker runs behind the daemon's driver ([`dataplane::driver`]: the same frame handler
//! and poll loop as `svm run`). The EAL gets lcores 0..workers; worker 0 runs
//! on the main lcore (with software distribution it also receives for everyone), the others on
//! worker lcores. The figure is frames handled per second by all workers together, after a
//! 300 ms warm-up; frames the distributor could not hand over (a worker's ring full) are counted
//! separately, as drops.

#[path = "common/glue.rs"]
mod glue;
#[path = "common/templates.rs"]
mod templates;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use dataplane::driver::{Driver, Events, RunConfig, run_worker};
use dataplane::io::dpdk::{
    Distribution, DpdkConfig, DpdkIo, DpdkWorkers, Eal, FlowHash, WorkersConfig,
};
use dataplane::shared_blocks::{BlockClient, SharedBlocks};
use dataplane::worker::{Attach, Worker, WorkerConfig};
use glue::{Flags, Run, eal_args, spawn_keeper};
use policy::{CompiledPolicy, Policy};
use templates::{fill_pool, template};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Pcap,
    Null,
}

struct Args {
    source: Source,
    workers: u16,
    distribution: Distribution,
    hash: FlowHash,
    run: Run,
    ring: u32,
}

fn args() -> Result<Args> {
    let mut a = Args {
        source: Source::Pcap,
        workers: 2,
        distribution: Distribution::Software,
        hash: FlowHash::Addresses,
        run: Run::default(),
        ring: 1024,
    };
    let mut flags = Flags::from_env();
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--workers" => a.workers = flags.parse(&flag)?,
            "--distribution" => {
                a.distribution = flags.choice(
                    &flag,
                    &[
                        ("software", Distribution::Software),
                        ("rss", Distribution::Rss),
                        ("auto", Distribution::Auto),
                    ],
                )?;
            }
            "--hash" => {
                a.hash = flags.choice(
                    &flag,
                    &[
                        ("addresses", FlowHash::Addresses),
                        ("flows", FlowHash::Flows),
                    ],
                )?;
            }
            "--source" => {
                a.source =
                    flags.choice(&flag, &[("pcap", Source::Pcap), ("null", Source::Null)])?;
            }
            "--ring" => a.ring = flags.parse(&flag)?,
            other => {
                if !flags.run_flag(other, &mut a.run)? {
                    bail!("unknown argument {other}");
                }
            }
        }
    }
    if a.workers == 0 {
        bail!("--workers must be at least 1");
    }
    Ok(a)
}

/// The driver loop until `stop`, publishing frames handled to `handled` after every 64 polls.
fn poll(io: &mut DpdkIo, d: &mut Driver, burst: usize, stop: &AtomicBool, handled: &AtomicU64) {
    let run = RunConfig {
        burst,
        stop,
        status: None,
    };
    let mut polls = 0u32;
    // DpdkIo::poll does not fail.
    let _ = run_worker(io, d, &run, |d, _, _| {
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(64) {
            handled.store(d.received(), Ordering::Relaxed);
        }
        Ok::<_, std::io::Error>(())
    });
    handled.store(d.received(), Ordering::Relaxed);
}

fn main() -> Result<()> {
    let a = args()?;
    let last = a.workers - 1;
    let capture =
        std::env::temp_dir().join(format!("svm-dpdk-workers-{}.pcap", std::process::id()));
    let vdevs: Vec<String> = match a.source {
        Source::Null => vec!["--vdev=net_null0".into(), "--vdev=net_null1".into()],
        Source::Pcap => {
            let mut cap = testgen::Capture::new();
            for i in 0..a.run.flows.max(1) {
                cap.push(u64::from(i), template(i));
            }
            cap.write_pcap(&capture)?;
            (0..2)
                .map(|p| {
                    format!(
                        "--vdev=net_pcap{p},rx_pcap={},infinite_rx=1",
                        capture.display()
                    )
                })
                .collect()
        }
    };
    let eal = Eal::init(&eal_args(512, vdevs, format!("0-{last}")))?;
    let name = match a.source {
        Source::Null => "net_null",
        Source::Pcap => "net_pcap",
    };
    let ports = [
        eal.port_by_name(&format!("{name}0"))?,
        eal.port_by_name(&format!("{name}1"))?,
    ];
    let wcfg = WorkersConfig {
        workers: a.workers,
        distribution: a.distribution,
        hash: a.hash,
        ring_size: a.ring,
    };
    let set = DpdkWorkers::inline(&eal, ports, &DpdkConfig::default(), &wcfg)?;
    let (spread, txq) = (set.spread(), set.tx_queues().to_vec());
    let mut ios = set.into_ios();
    let filled = match a.source {
        Source::Null => ios.first().map_or(0, |io| fill_pool(io, a.run.flows)),
        Source::Pcap => 0,
    };

    let policy = Arc::new(CompiledPolicy::compile(Policy::default()));
    // The workers share one block table.
    let SharedBlocks {
        keeper, clients, ..
    } = SharedBlocks::with_workers(usize::from(a.workers));
    spawn_keeper(keeper);
    let mut clients: Vec<Option<BlockClient>> = clients.into_iter().map(Some).collect();
    let mut handler = |index: u16| -> Result<Driver> {
        let blocks = clients
            .get_mut(usize::from(index))
            .and_then(Option::take)
            .context("block client")?;
        let worker = Worker::new(
            WorkerConfig {
                attach: Attach::Inline,
                index,
                ..WorkerConfig::default()
            },
            Arc::clone(&policy),
            blocks,
        );
        Ok(Driver::new(worker, Events::Count))
    };
    let stop = Arc::new(AtomicBool::new(false));
    let handled: Vec<Arc<AtomicU64>> = (0..a.workers).map(|_| Arc::default()).collect();
    let mut rest = ios.split_off(1);
    let mut io0 = ios.pop().context("no worker")?;
    let mut launched = Vec::new();
    for ((io, lcore), (count, index)) in rest
        .drain(..)
        .zip(eal.worker_lcores())
        .zip(handled.iter().skip(1).zip(1u16..))
    {
        let (stop, count, burst) = (Arc::clone(&stop), Arc::clone(count), a.run.burst);
        let mut h = handler(index)?;
        let mut io = io;
        launched.push(eal.launch(lcore, move || {
            poll(&mut io, &mut h, burst, &stop, &count);
            0
        })?);
    }
    let mut h0 = handler(0)?;
    let sum = |v: &[Arc<AtomicU64>]| v.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>();
    let controller = {
        let (stop, handled) = (Arc::clone(&stop), handled.clone());
        let secs = a.run.seconds;
        // A plain thread: it only sleeps and reads counters. Spawned after rte_eal_init, it
        // shares the main lcore's CPU, where it sleeps.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let (t0, n0) = (Instant::now(), sum(&handled));
            let per0: Vec<u64> = handled.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            std::thread::sleep(Duration::from_secs_f64(secs));
            let (t1, n1) = (Instant::now(), sum(&handled));
            let per1: Vec<u64> = handled.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            stop.store(true, Ordering::Relaxed);
            let per: Vec<u64> = per1
                .iter()
                .zip(&per0)
                .map(|(b, a)| b.saturating_sub(*a))
                .collect();
            (n1.saturating_sub(n0), t1 - t0, per)
        })
    };
    let count0 = handled.first().context("no worker")?;
    poll(&mut io0, &mut h0, a.run.burst, &stop, count0);
    for l in launched {
        l.wait();
    }
    let _ = std::fs::remove_file(&capture);
    let (frames, elapsed, per) = controller
        .join()
        .map_err(|_| anyhow::anyhow!("controller"))?;
    println!(
        "dpdk_workers: workers={} spread={spread:?} hash={:?} tx queues per port {txq:?} burst={} \
         flows={} ring={} mbufs filled={filled}",
        a.workers, a.hash, a.run.burst, a.run.flows, a.ring
    );
    println!(
        "dpdk_workers: {frames} frames in {:.2} s: {:.2} Mpps handled by all workers \
         (per worker {per:?})",
        elapsed.as_secs_f64(),
        frames as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!(
        "dpdk_workers: distributor ring-full drops per port {:?}, handed per worker {:?}",
        io0.ring_full(),
        io0.handed()
    );
    Ok(())
}
