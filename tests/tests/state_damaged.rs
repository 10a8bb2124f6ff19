//! A damaged state store, through the real binary: `svm state check` and `svm run` report an
//! empty or truncated `state.redb` with the way out instead of starting afresh (empty) or
//! aborting (truncated: redb asserts on the file length and aborted `svm run` with exit 134);
//! `svm run --reset-state` keeps the damaged file aside.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::{Command, Output};

use svm::store::{Store, StoredBlock};
use svm_e2e::{TempDir, svm_bin};

/// A store with a pushed policy and one block, as a daemon leaves it.
fn written_store(path: &Path) {
    let s = Store::open(path).unwrap();
    s.put_policy(4, &serde_json::json!({"mode": "monitoring"}))
        .unwrap();
    s.put_blocks(&[StoredBlock {
        id: 1,
        scope: "100".into(),
        addr: [10, 0, 0, 66].into(),
        created_us: 1,
        expires_us: u64::MAX,
        reason: "manual".into(),
        engine: "manual".into(),
        origin: "manual".into(),
    }])
    .unwrap();
}

fn svm(args: &[&str]) -> Output {
    Command::new(svm_bin()).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A configuration whose interfaces do not exist: `svm run` stops at the store check before it
/// opens any socket, or at the sockets once the store is fine.
fn config(dir: &TempDir) -> String {
    let cfg = dir.path("svm.yaml");
    std::fs::write(
        &cfg,
        format!(
            "mode: inline\nvm_interface: svmnone0\nnetwork_interface: svmnone1\nstate_dir: {}\n",
            dir.path("state").display()
        ),
    )
    .unwrap();
    cfg.to_str().unwrap().to_owned()
}

#[test]
fn a_readable_store_checks_with_what_it_holds() {
    let dir = TempDir::new("state-good");
    let file = dir.path("state.redb");
    written_store(&file);
    let o = svm(&["state", "check", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("readable: policy version 4, 1 block(s), 0 spooled event(s)"),
        "{out}"
    );
}

#[test]
fn a_truncated_store_is_reported_with_the_way_out_not_an_abort() {
    let dir = TempDir::new("state-truncated");
    std::fs::create_dir_all(dir.path("state")).unwrap();
    let file = dir.path("state/state.redb");
    written_store(&file);
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let o = svm(&["state", "check", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("cannot be read") && e.contains("--reset-state"),
        "{e}"
    );

    let cfg = config(&dir);
    let o = svm(&["run", "--config", &cfg]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("state.redb: cannot be read") && e.contains("svm state check"),
        "{e}"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        len / 2,
        "untouched"
    );

    // --reset-state keeps the damaged file aside and goes on (to the missing interfaces).
    let o = svm(&["run", "--config", &cfg, "--reset-state"]);
    let e = stderr(&o);
    assert!(e.contains("the damaged state store was kept as"), "{e}");
    let kept: Vec<_> = std::fs::read_dir(dir.path("state"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|d| {
            d.file_name()
                .to_string_lossy()
                .starts_with("state.redb.damaged-")
        })
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].metadata().unwrap().len(), len / 2);
}

#[test]
fn an_empty_store_is_refused_instead_of_starting_afresh() {
    let dir = TempDir::new("state-empty");
    std::fs::create_dir_all(dir.path("state")).unwrap();
    let file = dir.path("state/state.redb");
    std::fs::write(&file, b"").unwrap();
    let o = svm(&["state", "check", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("the file is empty (0 bytes)"),
        "{}",
        stderr(&o)
    );
    let o = svm(&["run", "--config", &config(&dir)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the file is empty (0 bytes)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        0,
        "not made a new store"
    );
}
