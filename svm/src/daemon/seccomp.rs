//! The daemon's system call filter (issue 15 item 7): once its ports and files are open and its
//! privileges dropped, `svm run` confines every thread to the system calls it makes from then
//! on, with Firecracker's `seccompiler`.
//!
//! **Every thread, by TSYNC.** The control plane's runtime, the keeper, the event pump, the rule
//! and web list builders already run when the AF_PACKET sockets are open, so the filter is
//! installed with `SECCOMP_FILTER_FLAG_TSYNC` (the kernel applies it to every thread of the
//! process at once, and refuses if one cannot take it); the workers and every thread started
//! later inherit it. Installing it before the first thread would mean opening the packet
//! sockets and the API before any thread runs, and the store (which the API needs) is opened
//! by the control plane.
//!
//! **The list** is what the daemon's threads were seen to call after the drop, under
//! `strace -f` of the live tests and of a run that exercises every outbound path: the API, the
//! store and EVE, policy pushes, SIGHUP reloads, the central event server, the NSX Manager,
//! syslog over UDP and TCP, the database mirror over HTTPS, and name resolution through the C
//! library (docs/deployment.md, "System call filter", has the method). It is grouped by purpose
//! below, one comment per group.
//!
//! **What a call off the list gets** (`security.seccomp: enforce`, the default):
//! - the calls that only an attacker makes (debugging other processes, mounts, namespaces,
//!   modules, kexec, BPF, keyrings, running programs) kill the process ([`FATAL`]); the kernel
//!   logs it (audit type 1326) and the service manager restarts the daemon;
//! - any other call fails with `EPERM`, so a path the traces missed is an error the daemon
//!   reports (with its usual message and counter), not a silent death.
//!
//! `security.seccomp: log` allows everything but has the kernel log every call off the list
//! (`dmesg`: `audit: type=1326 ... syscall=N`), to check a new deployment or a new version;
//! `off` installs nothing.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// `security.seccomp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Calls off the list fail with `EPERM`, the [`FATAL`] ones kill the process.
    #[default]
    Enforce,
    /// Calls off the list are allowed and logged by the kernel.
    Log,
    /// No filter.
    Off,
}

impl Mode {
    /// The configuration's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Log => "log",
            Mode::Off => "off",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enforce" => Ok(Mode::Enforce),
            "log" => Ok(Mode::Log),
            "off" => Ok(Mode::Off),
            other => Err(format!("unknown value {other:?} (enforce, log or off)")),
        }
    }
}

/// Why the filter could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// This architecture has no filter here.
    #[error("seccomp: no filter for architecture {0}")]
    Arch(&'static str),
    /// seccompiler refused the rules.
    #[error("seccomp: building the filter: {0}")]
    Build(#[from] seccompiler::BackendError),
    /// The kernel refused the filter.
    #[error("seccomp: installing the filter: {0}")]
    Install(#[from] seccompiler::Error),
}

/// One group of system calls and why the daemon makes them.
struct Group {
    /// Why (shown in the tests' failure messages and in docs/deployment.md).
    #[allow(dead_code)]
    purpose: &'static str,
    calls: &'static [libc::c_long],
}

/// What the daemon's threads call after the drop, by purpose.
const ALLOWED: &[Group] = &[
    // Memory: the allocator, thread stacks and their guard pages, redb's file cache. No
    // executable mapping is made after start, but the C library's name service modules may be
    // loaded at the first name lookup, so PROT_EXEC is not filtered here (the unit's
    // MemoryDenyWriteExecute keeps W^X).
    Group {
        purpose: "memory",
        calls: &[
            libc::SYS_brk,
            libc::SYS_mmap,
            libc::SYS_munmap,
            libc::SYS_mprotect,
            libc::SYS_mremap,
            libc::SYS_madvise,
        ],
    },
    // Threads: creating (tokio's blocking pool, the workers, the database and isolation
    // threads), naming (prctl is narrowed to PR_SET_NAME/PR_GET_NAME below), parking (futex),
    // the C library's per-thread setup (robust list, rseq) and exit.
    Group {
        purpose: "threads",
        calls: &[
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_exit,
            libc::SYS_exit_group,
            libc::SYS_futex,
            libc::SYS_set_robust_list,
            libc::SYS_rseq,
            libc::SYS_sched_getaffinity,
            libc::SYS_sched_yield,
            libc::SYS_gettid,
            libc::SYS_getpid,
            libc::SYS_getppid,
            // abort() and the C library's signals to its own threads.
            libc::SYS_tgkill,
        ],
    },
    // Signals: signal-hook's handlers (SIGTERM, SIGINT, SIGHUP, SIGUSR1), masks of new
    // threads, their alternate stacks (Rust's stack overflow guard), and the kernel's restart
    // of a sleep a stop signal or a tracer interrupted (refused, the main loop's sleep failed
    // with EPERM under strace and std aborted the daemon).
    Group {
        purpose: "signals",
        calls: &[
            libc::SYS_rt_sigaction,
            libc::SYS_rt_sigprocmask,
            libc::SYS_rt_sigreturn,
            libc::SYS_sigaltstack,
            libc::SYS_restart_syscall,
        ],
    },
    // Time: sleeps and timers (the main loop, tokio, back-offs); clock reads when the vDSO
    // falls back to the system call.
    Group {
        purpose: "time",
        calls: &[
            libc::SYS_clock_gettime,
            libc::SYS_clock_getres,
            libc::SYS_clock_nanosleep,
            libc::SYS_nanosleep,
            libc::SYS_gettimeofday,
        ],
    },
    // Files: the store (redb: pread/pwrite, fdatasync, flock, ftruncate), the spool, EVE and
    // its rotation (rename), rule and CRL files read again on SIGHUP, the database directory
    // (staging, swap, rollback: mkdir, rename, unlink, getdents, and the `current` and
    // `previous` links made with symlink), /proc/self for the status.
    Group {
        purpose: "files",
        calls: &[
            libc::SYS_openat,
            libc::SYS_close,
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_readv,
            libc::SYS_writev,
            libc::SYS_pread64,
            libc::SYS_pwrite64,
            libc::SYS_lseek,
            libc::SYS_fstat,
            libc::SYS_newfstatat,
            libc::SYS_statx,
            libc::SYS_fsync,
            libc::SYS_fdatasync,
            libc::SYS_ftruncate,
            libc::SYS_fallocate,
            libc::SYS_flock,
            libc::SYS_fcntl,
            libc::SYS_getdents64,
            libc::SYS_mkdirat,
            libc::SYS_unlinkat,
            libc::SYS_renameat,
            libc::SYS_renameat2,
            libc::SYS_readlinkat,
            libc::SYS_symlinkat,
            libc::SYS_faccessat,
            libc::SYS_faccessat2,
            libc::SYS_getcwd,
            libc::SYS_fchmod,
            libc::SYS_statfs,
            libc::SYS_fstatfs,
        ],
    },
    // Sockets: the API (accept), the central server, NSX, the database mirror and syslog over
    // TCP (connect), syslog over UDP and name lookups (sendto/recvfrom), the AF_PACKET rings
    // the workers already hold (poll, sendto, sendmmsg, getsockopt for the drop counters).
    // New sockets only of the families below (socket is narrowed): no packet socket is opened
    // after start.
    Group {
        purpose: "sockets",
        calls: &[
            libc::SYS_connect,
            libc::SYS_accept,
            libc::SYS_accept4,
            libc::SYS_bind,
            libc::SYS_listen,
            libc::SYS_getsockname,
            libc::SYS_getpeername,
            libc::SYS_setsockopt,
            libc::SYS_getsockopt,
            libc::SYS_sendto,
            libc::SYS_recvfrom,
            libc::SYS_sendmsg,
            libc::SYS_recvmsg,
            libc::SYS_sendmmsg,
            libc::SYS_recvmmsg,
            libc::SYS_shutdown,
        ],
    },
    // Waiting: the workers' poll on their rings, tokio's epoll and its wake-up eventfd, pipes
    // of the notify and signal plumbing.
    Group {
        purpose: "waiting",
        calls: &[
            libc::SYS_ppoll,
            libc::SYS_epoll_create1,
            libc::SYS_epoll_ctl,
            libc::SYS_epoll_pwait,
            libc::SYS_epoll_pwait2,
            libc::SYS_eventfd2,
            libc::SYS_pipe2,
        ],
    },
    // Process facts read by the runtime and the C library: random seeds (hash maps, TLS),
    // identity (no call that changes it), limits (read with prlimit64's NULL new value; a
    // raise needs a capability the daemon no longer has), the host name for syslog.
    Group {
        purpose: "process facts",
        calls: &[
            libc::SYS_getrandom,
            libc::SYS_getuid,
            libc::SYS_geteuid,
            libc::SYS_getgid,
            libc::SYS_getegid,
            libc::SYS_getresuid,
            libc::SYS_getresgid,
            libc::SYS_prlimit64,
            libc::SYS_uname,
            libc::SYS_sysinfo,
        ],
    },
];

/// The x86-64 system calls that later architectures dropped for their `*at` forms; the C
/// library and the Rust runtime still use some of them there.
#[cfg(target_arch = "x86_64")]
const LEGACY: Group = Group {
    purpose: "x86-64 forms of the calls above",
    calls: &[
        libc::SYS_open,
        libc::SYS_stat,
        libc::SYS_lstat,
        libc::SYS_access,
        libc::SYS_readlink,
        libc::SYS_mkdir,
        libc::SYS_unlink,
        libc::SYS_rename,
        libc::SYS_symlink,
        libc::SYS_poll,
        libc::SYS_epoll_wait,
        libc::SYS_epoll_create,
        libc::SYS_pipe,
        libc::SYS_arch_prctl,
        libc::SYS_time,
    ],
};
#[cfg(not(target_arch = "x86_64"))]
const LEGACY: Group = Group {
    purpose: "none on this architecture",
    calls: &[],
};

/// Calls only an attacker in the daemon would make: they kill the process in `enforce` mode.
/// None was seen after the drop in any trace.
pub const FATAL: &[libc::c_long] = &[
    // Running other programs.
    libc::SYS_execve,
    libc::SYS_execveat,
    // Reading or changing other processes.
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    // Mounts and namespaces.
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_setns,
    libc::SYS_unshare,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    // The kernel itself.
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_userfaultfd,
    // Keyrings.
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    // Identities and capabilities (the drop is done; nothing may change them again).
    libc::SYS_setuid,
    libc::SYS_setgid,
    libc::SYS_setreuid,
    libc::SYS_setregid,
    libc::SYS_setresuid,
    libc::SYS_setresgid,
    libc::SYS_setgroups,
    libc::SYS_capset,
    // Clocks of the whole system.
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
];

/// Socket families the daemon opens after start: UNIX (the C library's name service
/// and the notify socket), IPv4 and IPv6 (API, outbound HTTPS, syslog, DNS), NETLINK (the C
/// library's address lookup for `getaddrinfo`'s AI_ADDRCONFIG).
const SOCKET_FAMILIES: &[libc::c_int] = &[
    libc::AF_UNIX,
    libc::AF_INET,
    libc::AF_INET6,
    libc::AF_NETLINK,
];

/// `prctl` options the threads use: naming themselves (std's thread builder, tokio), and
/// reading the bounding set, which libcap does when the C library loads the `mymachines` name
/// service module (Debian's `hosts: files mymachines dns`) at the first name lookup.
const PRCTL_OPTIONS: &[libc::c_int] =
    &[libc::PR_SET_NAME, libc::PR_GET_NAME, libc::PR_CAPBSET_READ];

/// `ioctl` requests the daemon makes after start: `FIONBIO` (non-blocking sockets of the
/// runtime), `FIOCLEX` (close-on-exec), `TCGETS` (the C library asking whether stderr is a
/// terminal), `FIONREAD` (the C library's resolver sizing a DNS answer: seen refused in the
/// trace of a lookup over DNS, which the traces without a name server had never reached).
const IOCTL_REQUESTS: &[u64] = &[libc::FIONBIO, libc::FIOCLEX, libc::TCGETS, libc::FIONREAD];

/// Rules matching a call whose argument `arg` (0-based) is one of `values`.
fn arg_one_of(
    arg: u8,
    values: impl IntoIterator<Item = u64>,
) -> Result<Vec<SeccompRule>, SeccompError> {
    values
        .into_iter()
        .map(|v| {
            let c = SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, v)?;
            Ok(SeccompRule::new(vec![c])?)
        })
        .collect()
}

/// The allowed calls with their argument rules (an empty rule list: any arguments).
fn allowed_rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, SeccompError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = ALLOWED
        .iter()
        .chain(std::iter::once(&LEGACY))
        .flat_map(|g| g.calls.iter())
        .map(|&c| (c, Vec::new()))
        .collect();
    let non_negative = |v: libc::c_int| u64::try_from(v).unwrap_or(u64::MAX);
    rules.insert(
        libc::SYS_socket,
        arg_one_of(0, SOCKET_FAMILIES.iter().map(|&f| non_negative(f)))?,
    );
    // socketpair: only UNIX pairs (the runtime's wake-up pipes on some versions).
    rules.insert(
        libc::SYS_socketpair,
        arg_one_of(0, [non_negative(libc::AF_UNIX)])?,
    );
    rules.insert(
        libc::SYS_prctl,
        arg_one_of(0, PRCTL_OPTIONS.iter().map(|&o| non_negative(o)))?,
    );
    rules.insert(
        libc::SYS_ioctl,
        arg_one_of(1, IOCTL_REQUESTS.iter().copied())?,
    );
    Ok(rules)
}

/// The BPF programs of `mode`, in the order to install them (none for [`Mode::Off`]).
pub fn programs(mode: Mode) -> Result<Vec<BpfProgram>, SeccompError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| SeccompError::Arch(std::env::consts::ARCH))?;
    let eperm = SeccompAction::Errno(u32::try_from(libc::EPERM).unwrap_or(1));
    let mut out = Vec::new();
    match mode {
        Mode::Off => {}
        Mode::Log => {
            let f = SeccompFilter::new(
                allowed_rules()?,
                SeccompAction::Log,
                SeccompAction::Allow,
                arch,
            )?;
            out.push(BpfProgram::try_from(f)?);
        }
        Mode::Enforce => {
            // Two filters: the kernel runs both and takes the stricter action, so the fatal
            // calls kill while the rest of what is off the list fails with EPERM. The fatal
            // one goes first: installing a filter takes prctl(PR_SET_NO_NEW_PRIVS) and
            // seccomp(2), which the allow-list refuses once it is in force.
            let fatal = FATAL.iter().map(|&c| (c, Vec::new())).collect();
            let f = SeccompFilter::new(
                fatal,
                SeccompAction::Allow,
                SeccompAction::KillProcess,
                arch,
            )?;
            out.push(BpfProgram::try_from(f)?);
            let f = SeccompFilter::new(allowed_rules()?, eperm, SeccompAction::Allow, arch)?;
            out.push(BpfProgram::try_from(f)?);
        }
    }
    Ok(out)
}

/// Install the filter of `mode` on every thread of the process (TSYNC). Sets no_new_privs.
pub fn install(mode: Mode) -> Result<(), SeccompError> {
    for p in programs(mode)? {
        seccompiler::apply_filter_all_threads(&p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
