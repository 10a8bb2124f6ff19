//! Load ET Open (../shared/rules/et-open/*.rules, read in place) and print what loaded, what was
//! skipped and why, and how long load + compile took.
//!
//! `cargo run --release -p dataplane --example et_load [DIR]`

use std::path::PathBuf;
use std::time::Instant;

use dataplane::rules::{RuleSetBuilder, reasons_table};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/rules/et-open"
            ))
        });
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rules"))
            .collect(),
        Err(e) => {
            eprintln!("{}: {e}", dir.display());
            std::process::exit(2);
        }
    };
    files.sort();
    let t0 = Instant::now();
    let mut b = RuleSetBuilder::default();
    let mut reports = Vec::new();
    let paths: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
    for r in b.add_files(&paths) {
        match r {
            Ok(r) => reports.push(r),
            Err(e) => eprintln!("{e}"),
        }
    }
    let parsed = t0.elapsed();
    let set = b.build();
    let total = t0.elapsed();
    let loaded: usize = reports.iter().map(|r| r.loaded).sum();
    let skipped: usize = reports.iter().map(|r| r.skipped.len()).sum();
    let all = loaded + skipped;
    println!("files: {}", files.len());
    println!(
        "rules: {all}, loaded {loaded} ({:.2}%), skipped {skipped}",
        100.0 * loaded as f64 / all.max(1) as f64
    );
    let (pf, always, ip) = set.layout();
    println!(
        "compiled: {} rules ({pf} prefiltered, {always} always evaluated at most per protocol, {ip} IP-only)",
        set.len()
    );
    println!(
        "time: parse {:.3} s, parse + compile {:.3} s",
        parsed.as_secs_f64(),
        total.as_secs_f64()
    );
    if std::env::var_os("ET_LOAD_VERBOSE").is_some() {
        for r in &reports {
            for e in &r.skipped {
                println!("{}: {e}", r.source);
            }
        }
    }
    println!("skip reasons:");
    for (k, n) in reasons_table(reports.iter().flat_map(|r| r.skipped.iter())) {
        println!("{n:>7}  {k}");
    }
}
