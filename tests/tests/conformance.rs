//! Regression guard for the Suricata conformance figure (`make conformance`, docs/conformance.md):
//! the number of passing cases may only go up. Runs the real `svm` binary on every case (~1 s).

use svm_e2e::conformance::{default_root, run_all};
use svm_e2e::{TempDir, svm_bin};

/// The figure reached; raise it when more cases pass.
const MIN_PASSED: usize = 187;

#[test]
fn conformance_cases_do_not_regress() {
    let root = default_root();
    if !root.join("INDEX.tsv").exists() {
        eprintln!("skipped: no conformance cases at {}", root.display());
        return;
    }
    let work = TempDir::new("conformance");
    let outcomes = run_all(&svm_bin(), &root, &work.0);
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.problems.is_empty())
        .map(|o| format!("{}: {}", o.name, o.problems.join("; ")))
        .collect();
    let passed = outcomes.len() - failed.len();
    assert!(
        passed >= MIN_PASSED,
        "{passed} passed (at least {MIN_PASSED} expected), failing:\n{}",
        failed.join("\n")
    );
}
