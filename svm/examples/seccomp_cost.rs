//! What the daemon's system call filter (`security.seccomp`) costs a system call: children of
//! this program make the same system call in a loop with no filter and with the daemon's
//! filters (`enforce`: two programs, `log`: one), rounds alternated, and report the CPU time a
//! call took (from `/proc/thread-self/schedstat`, nanoseconds of CPU time, so the machine's
//! other load counts less than on the wall clock). docs/benchmarks.md has the figures.
//!
//! `cargo run --example seccomp_cost [CALLS] [ROUNDS]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::process::Command;

use svm::daemon::seccomp::{Mode, install};

/// CPU time of this thread so far, nanoseconds.
fn cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    s.split_whitespace().next().unwrap().parse().unwrap()
}

/// The child: install `mode` (none for "none"), then `calls` getppid(2) (on the list; it sits in
/// the middle of the allow-list's order, which seccompiler searches in turn).
fn child(mode: &str, calls: u64) {
    if mode != "none" {
        install(mode.parse::<Mode>().unwrap()).unwrap();
    }
    let start = cpu_ns();
    let mut sum = 0u64;
    for _ in 0..calls {
        sum = sum.wrapping_add(u64::from(std::os::unix::process::parent_id()));
    }
    let took = cpu_ns() - start;
    println!("{} {sum}", took as f64 / calls as f64);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, mode, calls] = args.as_slice()
        && flag == "--child"
    {
        child(mode, calls.parse().unwrap());
        return;
    }
    let calls: u64 = args.get(1).map_or(2_000_000, |c| c.parse().unwrap());
    let rounds: u32 = args.get(2).map_or(5, |r| r.parse().unwrap());
    let exe = std::env::current_exe().unwrap();
    let modes = ["none", "enforce", "log"];
    let mut per = vec![Vec::new(); modes.len()];
    for _ in 0..rounds {
        for (i, mode) in modes.iter().enumerate() {
            let out = Command::new(&exe)
                .args(["--child", mode, &calls.to_string()])
                .output()
                .unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let ns: f64 = text.split_whitespace().next().unwrap().parse().unwrap();
            per[i].push(ns);
        }
    }
    println!("getppid(2), {calls} calls a run, {rounds} rounds alternated; CPU ns a call:");
    for (mode, v) in modes.iter().zip(&per) {
        let mut s = v.clone();
        s.sort_by(f64::total_cmp);
        let list: Vec<String> = v.iter().map(|x| format!("{x:.0}")).collect();
        println!(
            "  {mode:8} median {:.0}  (rounds: {})",
            s[s.len() / 2],
            list.join(", ")
        );
    }
}
