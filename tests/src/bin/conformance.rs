//! `make conformance`: run every Suricata conformance case with the real `svm` binary, print one
//! line per failing case and end with `N passed, M failed`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use svm_e2e::conformance::{default_root, run_all};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let root = args.next().map(PathBuf::from).unwrap_or_else(default_root);
    let svm = std::env::var_os("SVM_BIN").map_or_else(
        || {
            let exe = std::env::current_exe().unwrap_or_default();
            exe.with_file_name("svm")
        },
        PathBuf::from,
    );
    let work = std::env::temp_dir().join(format!("svm-conformance-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&work) {
        eprintln!("{}: {e}", work.display());
        return ExitCode::FAILURE;
    }
    let outcomes = run_all(&svm, &root, &work);
    let _ = std::fs::remove_dir_all(&work);
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.problems.is_empty()).collect();
    for o in &failed {
        println!("FAIL {}: {}", o.name, o.problems.join("; "));
    }
    println!(
        "{} passed, {} failed",
        outcomes.len() - failed.len(),
        failed.len()
    );
    if outcomes.is_empty() {
        eprintln!("no cases found under {}", root.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
