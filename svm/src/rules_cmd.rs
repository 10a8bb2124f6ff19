//! `svm rules check FILE...`: load rule files as the engine would and report, per file, what
//! loaded and what was skipped (line, sid, reason), then a table of skip reasons by keyword.
//!
//! Exit codes: 0 when every file was read (skipped rules are reported, not fatal; with
//! `--strict`, 3 when any rule was skipped); 2 when a file could not be read; 4 when a `--var`
//! does not compile or a `--classification-file` or `--threshold-file` has a syntax error.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use dataplane::rules::{Classifications, RuleSetBuilder, ThresholdConfig, Vars, reasons_table};

use crate::cli::Exit;

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
    /// Exit with code 3 when any rule is skipped (for CI pipelines: a rule set must load
    /// whole).
    #[arg(long)]
    pub strict: bool,
}

/// Run `svm rules check`; returns the exit code.
pub fn check(args: &CheckArgs) -> Exit {
    let vars = match vars_of(&args.vars) {
        Ok(v) => v,
        Err(problems) => {
            for p in problems {
                eprintln!("svm rules check: {p}");
            }
            return Exit::Syntax;
        }
    };
    let mut classes = Classifications::default();
    let mut code = Exit::Ok;
    if let Some(f) = &args.classification_file {
        match std::fs::read_to_string(f) {
            Ok(t) => {
                classes = Classifications::empty();
                for e in classes.merge(&t) {
                    eprintln!("{}: {e}", f.display());
                    code = Exit::Syntax;
                }
            }
            Err(e) => {
                eprintln!("{}: {e}", f.display());
                return Exit::General;
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
                    code = Exit::Syntax;
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
                return Exit::General;
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
                code = Exit::General;
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
    if args.strict && skipped > 0 && code == Exit::Ok {
        eprintln!(
            "svm rules check: --strict: {skipped} rule{} skipped",
            if skipped == 1 { "" } else { "s" }
        );
        code = Exit::RulesSkipped;
    }
    code
}

/// The variables of `--var NAME=VALUE` over the defaults, each one compiled: every problem is
/// returned (a variable that does not compile would skip every rule that uses it).
fn vars_of(defs: &[String]) -> Result<Vars, Vec<String>> {
    let mut vars = Vars::default();
    let mut problems = Vec::new();
    let mut names = Vec::new();
    for v in defs {
        let Some((name, value)) = v.split_once('=') else {
            problems.push(format!("--var {v}: expected NAME=VALUE"));
            continue;
        };
        let name = name.trim().trim_start_matches('$');
        if name.ends_with("_PORTS") {
            vars.set_port(name, value);
        } else {
            vars.set_address(name, value);
        }
        names.push((name.to_owned(), v));
    }
    for (name, v) in names {
        let res = if name.ends_with("_PORTS") {
            vars.ports(&format!("${name}")).map(|_| ())
        } else {
            vars.address(&format!("${name}")).map(|_| ())
        };
        if let Err(e) = res {
            problems.push(format!("--var {v}: {e}"));
        }
    }
    if problems.is_empty() {
        Ok(vars)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(files: Vec<PathBuf>, vars: &[&str], strict: bool) -> CheckArgs {
        CheckArgs {
            files,
            classification_file: None,
            threshold_file: None,
            vars: vars.iter().map(|v| (*v).to_owned()).collect(),
            quiet: true,
            strict,
        }
    }

    #[test]
    fn a_variable_that_does_not_compile_is_refused() {
        let e = vars_of(&[
            "HOME_NET=foo".into(),
            "HTTP_PORTS=[80,x]".into(),
            "EXTERNAL_NET=!$HOME_NET".into(),
        ])
        .unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("--var HOME_NET=foo: "), "{e:?}");
        assert!(e[1].starts_with("--var HTTP_PORTS=[80,x]: "), "{e:?}");
        assert!(
            vars_of(&[
                "HOME_NET=[10.0.0.0/8]".into(),
                "HTTP_PORTS=[80,8080]".into()
            ])
            .is_ok()
        );
        assert_eq!(check(&args(vec![], &["HOME_NET=foo"], false)), Exit::Syntax);
    }

    #[test]
    fn strict_fails_on_a_skipped_rule() {
        let dir = std::env::temp_dir().join(format!("svm-rules-strict-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.rules");
        let bad = dir.join("bad.rules");
        std::fs::write(
            &good,
            "alert tcp any any -> any 80 (msg:\"x\"; content:\"GET\"; sid:1;)\n",
        )
        .unwrap();
        std::fs::write(
            &bad,
            "alert tcp any any -> any 80 (msg:\"y\"; no_such_keyword; sid:2;)\n",
        )
        .unwrap();
        let codes = [
            check(&args(vec![good.clone()], &[], true)),
            check(&args(vec![good.clone(), bad.clone()], &[], false)),
            check(&args(vec![good, bad], &[], true)),
        ];
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(codes, [Exit::Ok, Exit::Ok, Exit::RulesSkipped]);
    }
}
