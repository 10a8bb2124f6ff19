//! What the DPDK benchmark examples (`dpdk_fwd`, `dpdk_workers`) share besides their traffic:
//! the reading of their `--flag value` arguments, the EAL arguments of a run without hugepages
//! or PCI, and the block keeper's thread. A module of the examples rather than library code: no
//! binary of the workspace parses arguments this way (the daemon and the CLI use clap).

use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use dataplane::shared_blocks::BlockKeeper;

/// The settings of a run both examples take: `--seconds`, `--burst`, `--flows`.
pub struct Run {
    /// How long the timed part runs.
    pub seconds: f64,
    /// Frames a receive burst.
    pub burst: usize,
    /// Flow templates of the traffic.
    pub flows: u32,
}

impl Default for Run {
    fn default() -> Run {
        Run {
            seconds: 5.0,
            burst: 32,
            flows: 1024,
        }
    }
}

/// The command line's `--flag value` pairs, read in turn.
pub struct Flags(std::iter::Skip<std::env::Args>);

impl Flags {
    /// The arguments of this process.
    pub fn from_env() -> Flags {
        Flags(std::env::args().skip(1))
    }

    /// The next flag, if any.
    pub fn next_flag(&mut self) -> Option<String> {
        self.0.next()
    }

    /// The value after `flag`.
    pub fn value(&mut self, flag: &str) -> Result<String> {
        self.0
            .next()
            .with_context(|| format!("{flag} needs a value"))
    }

    /// The value after `flag`, parsed.
    pub fn parse<T>(&mut self, flag: &str) -> Result<T>
    where
        T: FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        Ok(self.value(flag)?.parse()?)
    }

    /// Read `flag` into `run` if it is one of [`Run`]'s; false if it is not.
    pub fn run_flag(&mut self, flag: &str, run: &mut Run) -> Result<bool> {
        match flag {
            "--seconds" => run.seconds = self.parse(flag)?,
            "--burst" => run.burst = self.parse(flag)?,
            "--flows" => run.flows = self.parse(flag)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The value after `flag`, one of `choices` by name.
    pub fn choice<T: Copy>(&mut self, flag: &str, choices: &[(&str, T)]) -> Result<T> {
        let v = self.value(flag)?;
        match choices.iter().find(|(name, _)| *name == v) {
            Some((_, c)) => Ok(*c),
            None => {
                let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
                bail!("{flag} {}, not {v}", names.join("|"))
            }
        }
    }
}

/// The EAL arguments of a benchmark run: no hugepages (`memory_mb` of ordinary memory), no PCI,
/// no shared configuration or telemetry, warnings only, then `vdevs` and the lcore list `-l`.
/// Printed as they are passed.
pub fn eal_args(memory_mb: u32, vdevs: Vec<String>, lcores: String) -> Vec<String> {
    let memory = memory_mb.to_string();
    let args: Vec<String> = [
        "--no-huge",
        "-m",
        memory.as_str(),
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "--log-level=*:warning",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain(vdevs)
    .chain(["-l".to_owned(), lcores])
    .collect();
    println!("EAL: {}", args.join(" "));
    args
}

/// The block keeper on a thread of its own beside the workers, as in the daemon (its events are
/// not measured); it ends once every worker's client is gone.
pub fn spawn_keeper(keeper: BlockKeeper) {
    std::thread::spawn(move || {
        let stop = AtomicBool::new(false);
        keeper.run(
            &stop,
            dataplane::io::dpdk::wall_clock,
            Duration::from_millis(100),
            |_| {},
        )
    });
}
