use super::*;

#[test]
fn the_lists_are_disjoint_and_every_mode_compiles() {
    let allowed = allowed_rules().unwrap();
    for c in FATAL {
        assert!(
            !allowed.contains_key(c),
            "system call {c} is both allowed and fatal"
        );
    }
    assert!(programs(Mode::Off).unwrap().is_empty());
    assert_eq!(programs(Mode::Log).unwrap().len(), 1);
    assert_eq!(programs(Mode::Enforce).unwrap().len(), 2);
}

#[test]
fn modes_read_from_their_words() {
    for m in [Mode::Enforce, Mode::Log, Mode::Off] {
        assert_eq!(m.as_str().parse::<Mode>(), Ok(m));
    }
    assert!(
        "permissive"
            .parse::<Mode>()
            .unwrap_err()
            .contains("enforce, log or off")
    );
}

/// What the probe does under the filter, chosen by the parent through the environment.
const PROBE: &str = "SVM_SECCOMP_PROBE";

/// Run [`probe`] in a child process (this test binary again) with the filter of `mode`, doing
/// `what`: its exit status and output.
fn in_child(mode: &str, what: &str) -> (std::process::ExitStatus, String) {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "daemon::seccomp::tests::probe",
            "--include-ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(PROBE, format!("{mode}:{what}"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

/// The child's side: install the filter, then make the call and print what it returned.
#[test]
#[ignore = "run by the filter tests in a child process of their own"]
fn probe() {
    let Ok(how) = std::env::var(PROBE) else {
        return;
    };
    let (mode, what) = how.split_once(':').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    install(mode.parse().unwrap()).unwrap();
    // Threads started after the filter have it too.
    let thread_status = std::thread::spawn(|| std::fs::read_to_string("/proc/thread-self/status"))
        .join()
        .unwrap()
        .unwrap();
    let seccomp = thread_status
        .lines()
        .find(|l| l.starts_with("Seccomp:"))
        .unwrap_or("Seccomp: ?");
    println!("probe thread {seccomp}");
    let result = match what {
        // Off the list and fatal: the process dies here in enforce mode.
        "chroot" => std::os::unix::fs::chroot("/").map(|()| "done".to_owned()),
        // Off the list, not fatal: EPERM in enforce mode.
        "chown" => {
            let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
            std::os::unix::fs::chown(&file, Some(uid.as_raw()), Some(gid.as_raw()))
                .map(|()| "done".to_owned())
        }
        // On the list: works in every mode.
        "read" => std::fs::read_to_string(&file),
        other => panic!("unknown probe {other}"),
    };
    match result {
        Ok(v) => println!("probe result ok {v}"),
        Err(e) => println!("probe result error {:?}", e.raw_os_error()),
    }
}

#[test]
fn a_fatal_call_kills_the_process_under_enforce() {
    use std::os::unix::process::ExitStatusExt;
    let (status, out) = in_child("enforce", "chroot");
    assert_eq!(status.signal(), Some(libc::SIGSYS), "{status:?}\n{out}");
    assert!(out.contains("probe thread Seccomp:\t2"), "{out}");
    assert!(!out.contains("probe result"), "{out}");
}

#[test]
fn a_call_off_the_list_fails_with_eperm_under_enforce() {
    let (status, out) = in_child("enforce", "chown");
    assert!(status.success(), "{status:?}\n{out}");
    assert!(
        out.contains(&format!("probe result error Some({})", libc::EPERM)),
        "{out}"
    );
    let (status, out) = in_child("enforce", "read");
    assert!(status.success(), "{status:?}\n{out}");
    assert!(out.contains("probe result ok x"), "{out}");
}

#[test]
fn log_mode_lets_every_call_through() {
    for what in ["chroot", "chown"] {
        let (status, out) = in_child("log", what);
        assert!(status.success(), "{what}: {status:?}\n{out}");
        assert!(out.contains("probe thread Seccomp:\t2"), "{out}");
        // chroot needs CAP_SYS_CHROOT: as another user it is refused by the kernel itself.
        let root = nix::unistd::geteuid().is_root();
        if what == "chown" || root {
            assert!(out.contains("probe result ok done"), "{what}: {out}");
        }
    }
}
