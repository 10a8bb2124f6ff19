//! Dropping root (issue 15 item 7): `run_as: USER` makes a daemon started as root give up root
//! once everything privileged is done: the API socket bound, the store and EVE files open, the
//! AF_PACKET sockets of every worker open and bound (promiscuous mode and fanout set). Nothing
//! opens a packet socket or changes an interface later, so no capability is kept: from root,
//! `setuid` to a user other than root clears the permitted, effective and ambient sets (no
//! `SECBIT_KEEP_CAPS`), and `/proc/PID/status` then shows `CapEff: 0`.
//!
//! What the daemon writes later must belong to that user, so before the switch it hands over the
//! state directory (store, spool, databases: the whole tree) and the EVE files it appends to; a
//! rotated EVE file is created in the EVE file's directory, which must be writable by the user
//! (systemd's `LogsDirectory=` is). Files it only reads again (rules on SIGHUP, CRLs, the
//! policy) must be readable by the user. glibc's `setuid` changes every thread of the process.
//!
//! Started as another user with capabilities (the packaged unit gives `CAP_NET_RAW`,
//! `CAP_NET_ADMIN` and `CAP_IPC_LOCK` as ambient ones), the daemon gives every capability up once
//! its packet sockets are open ([`drop_capabilities`]). Started as root without `run_as`, it
//! stays root (docs/deployment.md).

use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, User};

/// Why the daemon could not become its user.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// No such user.
    #[error("run_as: no user {0:?} on this system")]
    NoUser(String),
    /// The user database could not be read.
    #[error("run_as: looking up {name:?}: {source}")]
    Lookup {
        /// The user.
        name: String,
        /// The cause.
        source: nix::Error,
    },
    /// `run_as` is given but the daemon does not run as root.
    #[error("run_as: {name:?} needs the daemon started as root (it runs as uid {uid})")]
    NotRoot {
        /// The user.
        name: String,
        /// Our uid.
        uid: u32,
    },
    /// Handing a file over failed.
    #[error("run_as: giving {} to {name}: {source}", path.display())]
    Chown {
        /// The file.
        path: PathBuf,
        /// The user.
        name: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A system call of the switch failed.
    #[error("run_as: {call}: {source}")]
    Switch {
        /// The call.
        call: &'static str,
        /// The cause.
        source: nix::Error,
    },
    /// Root could be regained after the switch.
    #[error("run_as: root could be regained after switching to {0}; refusing to run")]
    Regained(String),
    /// Giving up capabilities failed, or a thread kept some.
    #[error("capabilities: {0}")]
    Capabilities(String),
}

/// A user to run as: `root` is refused at validation, a number is a uid.
pub fn lookup(name: &str) -> Result<User, PrivilegeError> {
    let found = match name.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(name),
    };
    match found {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(PrivilegeError::NoUser(name.to_owned())),
        Err(source) => Err(PrivilegeError::Lookup {
            name: name.to_owned(),
            source,
        }),
    }
}

/// Give `paths` (directories with everything under them) to `user`.
fn hand_over(paths: &[PathBuf], user: &User) -> Result<(), PrivilegeError> {
    fn walk(p: &Path, user: &User) -> Result<(), PrivilegeError> {
        let err = |source| PrivilegeError::Chown {
            path: p.to_owned(),
            name: user.name.clone(),
            source,
        };
        std::os::unix::fs::lchown(p, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
            .map_err(err)?;
        let meta = std::fs::symlink_metadata(p).map_err(err)?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(p).map_err(err)? {
                walk(&entry.map_err(err)?.path(), user)?;
            }
        }
        Ok(())
    }
    for p in paths.iter().filter(|p| p.exists()) {
        walk(p, user)?;
    }
    Ok(())
}

/// Create the files the daemon appends to (an EVE output opens its file at its first event,
/// too late for root to create it), so they can be handed over.
fn create(files: &[PathBuf], user: &User) -> Result<(), PrivilegeError> {
    for f in files {
        if let Some(dir) = f.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .and_then(|()| {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(f)
                        .map(drop)
                })
                .map_err(|source| PrivilegeError::Chown {
                    path: f.clone(),
                    name: user.name.clone(),
                    source,
                })?;
        }
    }
    Ok(())
}

/// Become `name` for good: hand `dirs` (with everything under them) and `files` (created when
/// missing) over, then supplementary groups, group and user; check that root cannot be
/// regained.
pub fn drop_to(name: &str, dirs: &[PathBuf], files: &[PathBuf]) -> Result<(), PrivilegeError> {
    let me = Uid::current();
    if !me.is_root() {
        return Err(PrivilegeError::NotRoot {
            name: name.to_owned(),
            uid: me.as_raw(),
        });
    }
    let user = lookup(name)?;
    create(files, &user)?;
    hand_over(dirs, &user)?;
    hand_over(files, &user)?;
    let switch = |call| move |source| PrivilegeError::Switch { call, source };
    nix::unistd::setgroups(&[user.gid]).map_err(switch("setgroups"))?;
    nix::unistd::setgid(user.gid).map_err(switch("setgid"))?;
    nix::unistd::setuid(user.uid).map_err(switch("setuid"))?;
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() || Gid::current() != user.gid {
        return Err(PrivilegeError::Regained(user.name));
    }
    Ok(())
}

/// A daemon started as a user other than root with capabilities (systemd's
/// `AmbientCapabilities=`, `setpriv --ambient-caps`, `capsh --addamb`) needs them only to open
/// its packet sockets: once they are open it gives up every capability, ambient, inheritable,
/// permitted and effective, and the bounding set too when it holds `CAP_SETPCAP` (the packaged
/// unit's bounding set is already the three it grants). Capabilities belong to each thread, so
/// this runs before the daemon starts its first thread, and [`check_no_capabilities`] makes
/// sure of it.
pub fn drop_capabilities() -> Result<(), PrivilegeError> {
    use caps::{CapSet, Capability};
    let fail = |call: &'static str| {
        move |e: caps::errors::CapsError| PrivilegeError::Capabilities(format!("{call}: {e}"))
    };
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).map_err(fail("read"))? {
        caps::clear(None, CapSet::Bounding).map_err(fail("bounding set"))?;
    }
    caps::clear(None, CapSet::Ambient).map_err(fail("ambient set"))?;
    caps::clear(None, CapSet::Inheritable).map_err(fail("inheritable set"))?;
    caps::clear(None, CapSet::Effective).map_err(fail("effective set"))?;
    caps::clear(None, CapSet::Permitted).map_err(fail("permitted set"))?;
    check_no_capabilities()
}

/// Every thread of the process has empty effective, permitted and ambient sets (read from
/// `/proc/self/task/*/status`, as an administrator would).
pub fn check_no_capabilities() -> Result<(), PrivilegeError> {
    let err = |e: std::io::Error| PrivilegeError::Capabilities(format!("/proc/self/task: {e}"));
    let mut kept = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").map_err(err)? {
        let path = task.map_err(err)?.path();
        let Ok(status) = std::fs::read_to_string(path.join("status")) else {
            continue; // the thread ended
        };
        for field in ["CapEff:", "CapPrm:", "CapAmb:"] {
            let value = status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .map(str::trim);
            if value.is_some_and(|v| !v.trim_start_matches('0').is_empty()) {
                kept.push(format!(
                    "{} {field} {}",
                    path.file_name().unwrap_or_default().to_string_lossy(),
                    value.unwrap_or_default()
                ));
            }
        }
    }
    if kept.is_empty() {
        Ok(())
    } else {
        Err(PrivilegeError::Capabilities(format!(
            "threads kept capabilities: {}",
            kept.join(", ")
        )))
    }
}
