//! Resident memory of a compiled set of N synthetic domains (default 1,000,000): the process's
//! resident set size (/proc/self/statm) before the list text exists and after the set is built
//! and everything else is dropped, and the set's own array bytes; also the compile time.
//!
//! `cargo run --release -p webaddr --example resident [N]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Instant;

use webaddr::{AddressSetBuilder, Category, Format, ListInfo, parse_list, synth};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// CPU seconds (user + system) this process used so far, from /proc/self/stat (clock ticks of
/// 1/100 s): on a shared machine the wall clock says more about the neighbours.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = stat.rsplit(')').next().unwrap();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().expect("N"));
    let before = rss_bytes();
    // The list is generated and read in parts of 10,000 entries (one list each), so the
    // parser's per-entry strings of one part are freed and reused by the next instead of a
    // million small allocations staying in the heap (glibc keeps freed small chunks resident)
    // and being counted as the set's.
    const PART: usize = 10_000;
    let mut rng = synth::Rng::new(1);
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let mut b = AddressSetBuilder::new();
    let mut done = 0;
    let mut part = 0;
    while done < n {
        let m = PART.min(n - done);
        let mut text = String::with_capacity(m * 20);
        for _ in 0..m {
            text.push_str(&rng.entry());
            text.push('\n');
        }
        let parsed = parse_list(text.as_bytes(), Format::Auto);
        let info = ListInfo {
            id: format!("synthetic-{part}"),
            category: Category::Phishing,
            version: "1".into(),
        };
        b.add_list(info, &parsed).unwrap();
        done += m;
        part += 1;
    }
    let (c1, t1) = (cpu_seconds(), Instant::now());
    let set = b.build();
    let (c2, t2) = (cpu_seconds(), Instant::now());
    println!(
        "{n} domains: generated and read {:.3} s, compiled {:.3} s wall; {:.2} s CPU ({:.2} generate+read+add, {:.2} sort+index)",
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        c2 - c0,
        c1 - c0,
        c2 - c1
    );
    let after = rss_bytes();
    let per = |b: u64| b as f64 / n as f64;
    println!(
        "set arrays: {} bytes, {:.2} bytes an entry ({} records)",
        set.heap_bytes(),
        per(set.heap_bytes() as u64),
        set.records()
    );
    println!(
        "resident: {} bytes before, {} after (inputs dropped): {:.2} bytes an entry",
        before,
        after,
        per(after.saturating_sub(before))
    );
    // Lookups, timed in CPU seconds (the wall clock of a shared machine says more about the
    // neighbours): misses walk from a four- or five-label name down to the registrable domain;
    // hits are two labels below a listed entry.
    let mut rng = synth::Rng::new(99);
    let misses: Vec<String> = (0..100_000)
        .map(|_| format!("{}.{}.{}", rng.label(), rng.label(), rng.domain()))
        .collect();
    let mut rng = synth::Rng::new(1);
    let hits: Vec<String> = (0..100_000)
        .map(|_| format!("a.b.{}", rng.entry()))
        .collect();
    for (what, names) in [
        ("miss (parent walk)", &misses),
        ("hit two labels below an entry", &hits),
    ] {
        let rounds = 10;
        let c0 = cpu_seconds();
        let mut listed = 0usize;
        for _ in 0..rounds {
            for name in names {
                listed += usize::from(set.lookup_host(name.as_bytes()).is_listed());
            }
        }
        let per = (cpu_seconds() - c0) / (rounds * names.len()) as f64;
        println!(
            "lookup_host {what}: {:.0} ns CPU each ({listed} of {} listed)",
            per * 1e9,
            rounds * names.len()
        );
    }
    // The set holds the list: its first entry is found.
    let first = synth::Rng::new(1).entry();
    assert!(set.lookup_host(first.as_bytes()).is_listed(), "{first}");
}
