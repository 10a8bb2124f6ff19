//! `svm rules check FILE...`: load rule files as the engine would and report, per file, what
//! loaded and what was skipped (line, sid, reason), then a table of skip reasons by keyword.
//!
//! Exit codes: 0 when every file was read (skipped rules are reported, not fatal); 2 when a
//! file could not be read; 4 when a `--classification-file` or `--threshold-file` has a
//! syntax error.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use dataplane::rules::{Classifications, RuleSetBuilder, ThresholdConfig, Vars, reasons_table};

use crate::cli::{EXIT_GENERAL, EXIT_OK, EXIT_SYNTAX};

/// `svm rules check` arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Rule files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// A `classification.config` to use instead of the built-in classes.
    #[arg(long, value_name = "FILE")]
    pub classification_file: Option<PathBuf>,
    /// A `threshold.config` to check along.
    #[arg(long, value_name = "FILE")]
    pub threshold_file: Option<PathBuf>,
    /// Set an address or port variable, e.g. `HOME_NET=[10.0.0.0/8]` or `HTTP_PORTS=[80,8080]`
    /// (names ending in `_PORTS` are port variables).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Print only the summary, not every skipped rule.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Run `svm rules check`; returns the exit code.
pub fn check(args: &CheckArgs) -> u8 {
    let mut vars = Vars::default();
    for v in &args.vars {
        let Some((name, value)) = v.split_once('=') else {
            eprintln!("svm rules check: --var {v}: expected NAME=VALUE");
            return EXIT_SYNTAX;
        };
        if name.ends_with("_PORTS") {
            vars.set_port(name, value);
        } else {
            vars.set_address(name, value);
        }
    }
    let mut classes = Classifications::default();
    let mut code = EXIT_OK;
    if let Some(f) = &args.classification_file {
        match std::fs::read_to_string(f) {
            Ok(t) => {
                classes = Classifications::empty();
                for e in classes.merge(&t) {
                    eprintln!("{}: {e}", f.display());
                    code = EXIT_SYNTAX;
                }
            }
            Err(e) => {
                eprintln!("{}: {e}", f.display());
                return EXIT_GENERAL;
            }
        }
    }
    let mut b = RuleSetBuilder::new(vars, classes);
    if let Some(f) = &args.threshold_file {
        match std::fs::read_to_string(f) {
            Ok(t) => {
                let (cfg, errs) = ThresholdConfig::parse(&t, &Vars::default());
                for e in &errs {
                    eprintln!("{}: {e}", f.display());
                    code = EXIT_SYNTAX;
                }
                println!(
                    "{}: {} suppress, {} threshold lines",
                    f.display(),
                    cfg.suppress.len(),
                    cfg.thresholds.len()
                );
                b.set_threshold_config(cfg);
            }
            Err(e) => {
                eprintln!("{}: {e}", f.display());
                return EXIT_GENERAL;
            }
        }
    }
    let t0 = Instant::now();
    let paths: Vec<&std::path::Path> = args.files.iter().map(PathBuf::as_path).collect();
    let mut reports = Vec::new();
    for r in b.add_files(&paths) {
        match r {
            Ok(rep) => reports.push(rep),
            Err(e) => {
                eprintln!("svm rules check: {e}");
                code = EXIT_GENERAL;
            }
        }
    }
    let set = b.build();
    let elapsed = t0.elapsed();
    for rep in &reports {
        println!(
            "{}: {} loaded, {} skipped",
            rep.source,
            rep.loaded,
            rep.skipped.len()
        );
        if !args.quiet {
            for e in &rep.skipped {
                println!("  {e}");
            }
        }
    }
    let loaded: usize = reports.iter().map(|r| r.loaded).sum();
    let skipped: usize = reports.iter().map(|r| r.skipped.len()).sum();
    println!(
        "total: {loaded} loaded, {skipped} skipped, {} rules compiled in {:.3} s",
        set.len(),
        elapsed.as_secs_f64()
    );
    let table = reasons_table(reports.iter().flat_map(|r| r.skipped.iter()));
    if !table.is_empty() {
        println!("skip reasons:");
        for (k, n) in table {
            println!("{n:>7}  {k}");
        }
    }
    code
}
