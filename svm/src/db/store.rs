//! The state directory of installed databases:
//!
//! ```text
//! DIR/root.json            the trusted root (copied from --root at the first update)
//! DIR/trusted.json         highest trusted versions and the latest known time
//! DIR/sets/vN-HASH/        one installed set: metadata/*.json, targets/..., report.json
//! DIR/current -> sets/...  the set in use
//! DIR/previous -> sets/... the last good set before it (A/B)
//! DIR/lock                 held (flock) by the one svm db command that may change DIR
//! DIR/refused.json         the newest version the daemon refused or rolled back
//! DIR/probation.json       the set the daemon is watching after its swap, while it does
//! ```
//!
//! An update verifies and stages into `sets/.staging-PID`, checks the staged set
//! ([`super::check`]), renames it to its final name and switches `current` (and `previous`) by
//! renaming a new symbolic link over the old one, so a reader sees the old set or the new one,
//! never a mixture; a kill at any point leaves `current` naming a complete, checked set. Only
//! then are the trusted versions and the latest known time written (also by rename). A refused
//! update removes its staging directory and changes nothing else.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::bundle::{self, ToDir};
use super::check::{self, Report};
use super::meta::{self, Envelope, MetaRole, Role, Targets};
use super::verify::{self, Options, Trust, Versions};
use super::{DbError, sha256_hex};

/// Cap on `trusted.json` and `report.json`: both are a few lines.
const MAX_STATE_FILE: u64 = 1024 * 1024;

/// What `trusted.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedFile {
    /// The highest versions installed.
    pub versions: Versions,
    /// The latest time an update or rollback saw (RFC 3339); a clock before it is refused.
    pub latest_known_time: Option<String>,
}

/// A version the daemon refused (verification, checks, the engine) or rolled back after its
/// swap (`DIR/refused.json`): a mirror offering it, or an older one, is not downloaded again,
/// also after a restart, until it offers a newer one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refused {
    /// The database version.
    pub version: u64,
    /// Why (the check that failed).
    pub reason: String,
    /// When (RFC 3339).
    pub at: String,
}

/// A set the daemon swapped in and is watching (`DIR/probation.json`), written at the swap and
/// removed when its probation ends either way. Found at start with `stopped` false, it means
/// the daemon died in the set's probation (a crash, an abort, a kill), and the set is rolled
/// back; with `stopped` true (a clean stop), its probation starts again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbationFile {
    /// The set's directory name under `sets/`.
    pub set: String,
    /// Its version.
    pub version: u64,
    /// When its probation ends (RFC 3339).
    pub until: String,
    /// Whether the daemon stopped cleanly during the probation.
    pub stopped: bool,
}

/// What an update takes.
#[derive(Clone, Debug)]
pub struct UpdateOptions {
    /// The bundle file.
    pub from: PathBuf,
    /// The root to trust when the state directory has none yet.
    pub root: Option<PathBuf>,
    /// Install an expired bundle (only over an older version).
    pub allow_expired: bool,
    /// The clock.
    pub now: OffsetDateTime,
}

/// One installed set.
#[derive(Clone, Debug, Serialize)]
pub struct SetInfo {
    /// Its directory name under `sets/`.
    pub name: String,
    /// The database (targets) version.
    pub version: u64,
    /// The targets metadata's expiry.
    pub expires: String,
    /// The timestamp's expiry: past it the database is stale.
    pub timestamp_expires: String,
    /// Whether the timestamp has expired.
    pub stale: bool,
    /// Targets in the set.
    pub targets: usize,
    /// What its checks found.
    pub report: Report,
}

/// The state of a state directory.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The set in use.
    pub current: Option<SetInfo>,
    /// The set kept for rollback.
    pub previous: Option<SetInfo>,
    /// Trusted versions and time.
    pub trusted: TrustedFile,
}

/// The outcome of an update.
#[derive(Clone, Debug)]
pub struct Installed {
    /// The set now in use.
    pub set: SetInfo,
    /// Roles that had expired (installed with `--allow-expired`).
    pub expired: Vec<Role>,
}

fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, DbError> {
    use std::io::Read;
    let f = File::open(path).map_err(DbError::io(path.display()))?;
    let mut buf = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(DbError::io(path.display()))?;
    if buf.len() as u64 > cap {
        return Err(DbError::State(format!(
            "{}: larger than {cap} bytes",
            path.display()
        )));
    }
    Ok(buf)
}

/// Write `bytes` to `path` atomically: a temporary file synced, then renamed over it.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DbError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let r: std::io::Result<()> = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    r.map_err(DbError::io(path.display()))
}

/// Point the link `dir/name` at `target` atomically (a new link renamed over the old one).
fn relink(dir: &Path, name: &str, target: &Path) -> Result<(), DbError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(DbError::io(tmp.display()))?;
    std::fs::rename(&tmp, dir.join(name)).map_err(DbError::io(dir.join(name).display()))
}

fn sync_dir(dir: &Path) -> Result<(), DbError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(DbError::io(dir.display()))
}

/// A state directory, locked for the life of the value.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    _lock: File,
}

impl Store {
    /// Open (creating it if needed) and lock `dir`; `Locked` when another command holds it.
    pub fn open(dir: &Path) -> Result<Store, DbError> {
        std::fs::create_dir_all(dir.join("sets")).map_err(DbError::io(dir.display()))?;
        let path = dir.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(DbError::io(path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(DbError::Locked(dir.display().to_string()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(DbError::io(path.display())(e)),
        }
        Ok(Store {
            dir: dir.to_owned(),
            _lock: lock,
        })
    }

    /// The trusted versions and time.
    pub fn trusted(&self) -> Result<TrustedFile, DbError> {
        let path = self.dir.join("trusted.json");
        if !path.exists() {
            return Ok(TrustedFile::default());
        }
        serde_json::from_slice(&read_capped(&path, MAX_STATE_FILE)?)
            .map_err(|e| DbError::State(format!("{}: {e}", path.display())))
    }

    /// A small JSON state file of the directory, if it exists.
    fn read_state<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>, DbError> {
        let path = self.dir.join(name);
        if !path.exists() {
            return Ok(None);
        }
        serde_json::from_slice(&read_capped(&path, MAX_STATE_FILE)?)
            .map(Some)
            .map_err(|e| DbError::State(format!("{}: {e}", path.display())))
    }

    /// Write (by rename) or, with `None`, remove a small JSON state file.
    fn write_state<T: Serialize>(&self, name: &str, value: Option<&T>) -> Result<(), DbError> {
        let path = self.dir.join(name);
        match value {
            Some(v) => {
                let text =
                    serde_json::to_vec_pretty(v).map_err(|e| DbError::State(e.to_string()))?;
                write_atomic(&path, &text)
            }
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(DbError::io(path.display())(e))
                }
                _ => Ok(()),
            },
        }
    }

    /// The version the daemon refused last (`refused.json`).
    pub fn refused(&self) -> Result<Option<Refused>, DbError> {
        self.read_state("refused.json")
    }

    /// Remember a refused version.
    pub fn set_refused(&self, r: &Refused) -> Result<(), DbError> {
        self.write_state("refused.json", Some(r))
    }

    /// The set in probation (`probation.json`).
    pub fn probation(&self) -> Result<Option<ProbationFile>, DbError> {
        self.read_state("probation.json")
    }

    /// Record (or, with `None`, clear) the set in probation.
    pub fn set_probation(&self, p: Option<&ProbationFile>) -> Result<(), DbError> {
        self.write_state("probation.json", p)
    }

    /// Refuse a clock before the latest known time.
    fn check_clock(&self, trusted: &TrustedFile, now: OffsetDateTime) -> Result<(), DbError> {
        if let Some(latest) = &trusted.latest_known_time {
            let at = meta::parse_time(Role::Timestamp, latest)
                .map_err(|e| DbError::State(format!("trusted.json: {e}")))?;
            if now < at {
                return Err(DbError::ClockBack {
                    now: meta::format_time(now),
                    latest: latest.clone(),
                });
            }
        }
        Ok(())
    }

    fn link(&self, name: &str) -> Option<PathBuf> {
        std::fs::read_link(self.dir.join(name)).ok()
    }

    /// The set a link (`current`, `previous`) names.
    pub fn set_info(&self, link: &str, now: OffsetDateTime) -> Result<Option<SetInfo>, DbError> {
        let Some(rel) = self.link(link) else {
            return Ok(None);
        };
        let dir = self.dir.join(&rel);
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parse = |role: Role| -> Result<Envelope, DbError> {
            let path = dir.join("metadata").join(role.file());
            Envelope::parse(role, &read_capped(&path, meta::cap(role))?)
        };
        let targets: Targets = parse(Role::Targets)?.decode()?;
        let ts: MetaRole = parse(Role::Timestamp)?.decode()?;
        let ts_expires = meta::parse_time(Role::Timestamp, &ts.expires)?;
        let report_path = dir.join("report.json");
        let report = serde_json::from_slice(&read_capped(&report_path, MAX_STATE_FILE)?)
            .map_err(|e| DbError::State(format!("{}: {e}", report_path.display())))?;
        Ok(Some(SetInfo {
            name,
            version: targets.version,
            expires: targets.expires,
            timestamp_expires: ts.expires,
            stale: ts_expires <= now,
            targets: targets.targets.len(),
            report,
        }))
    }

    /// What is installed.
    pub fn status(&self, now: OffsetDateTime) -> Result<Status, DbError> {
        Ok(Status {
            current: self.set_info("current", now)?,
            previous: self.set_info("previous", now)?,
            trusted: self.trusted()?,
        })
    }

    /// The trusted root: the state directory's, else `given` (which must match it when both
    /// exist, unless the directory's is a later version: `given` was rotated away).
    pub(crate) fn root(&self, given: Option<&Path>) -> Result<(Vec<u8>, bool), DbError> {
        let own = self.dir.join("root.json");
        let given = given
            .map(|p| read_capped(p, meta::cap(Role::Root)))
            .transpose()?;
        if own.exists() {
            let bytes = read_capped(&own, meta::cap(Role::Root))?;
            let version = |b: &[u8]| meta::trusted_root(b).map(|(r, _)| r.version).ok();
            if given
                .as_ref()
                .is_some_and(|g| *g != bytes && version(g) >= version(&bytes))
            {
                return Err(DbError::Usage(format!(
                    "--root differs from the trusted root {}",
                    own.display()
                )));
            }
            return Ok((bytes, false));
        }
        given.map(|g| (g, true)).ok_or_else(|| {
            DbError::Usage(format!(
                "{} holds no trusted root yet: give --root ROOT.json",
                self.dir.display()
            ))
        })
    }

    /// Verify, stage, check and switch to the bundle `opts.from`.
    pub fn update(&self, opts: &UpdateOptions) -> Result<Installed, DbError> {
        self.update_keeping(opts, None)
            .map(|(installed, _)| installed)
    }

    /// [`Store::update`] that also returns the rules its check compiled, built as the
    /// replacement of `previous` (the daemon's running set, whose flowbit ids it keeps), so
    /// the daemon can swap in that build instead of compiling the rules a second time.
    pub fn update_keeping(
        &self,
        opts: &UpdateOptions,
        previous: Option<&dataplane::rules::RuleSet>,
    ) -> Result<(Installed, Option<crate::rules_load::Loaded>), DbError> {
        let (root_bytes, new_root) = self.root(opts.root.as_deref())?;
        let (root, root_env) = meta::trusted_root(&root_bytes)?;
        let trusted = self.trusted()?;
        self.check_clock(&trusted, opts.now)?;
        // Any set ever installed, the retired first set too: versions only go up.
        let installed = (self.link("current").is_some() || self.link("previous").is_some())
            .then_some(trusted.versions.targets);
        let trust = Trust {
            root,
            root_canonical: root_env.canonical,
            versions: trusted.versions,
            installed,
        };
        let sets = self.dir.join("sets");
        // We hold the lock: any staging directory left is from a killed update.
        for e in std::fs::read_dir(&sets).map_err(DbError::io(sets.display()))? {
            let e = e.map_err(DbError::io(sets.display()))?;
            if e.file_name().to_string_lossy().starts_with(".staging") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let staging = sets.join(format!(".staging-{}", std::process::id()));
        std::fs::create_dir(&staging).map_err(DbError::io(staging.display()))?;
        let staged = self.stage(&staging, &trust, opts, previous);
        let (verified, report, loaded) = match staged {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        let targets_meta = verified
            .files
            .get(&Role::Targets)
            .map(|b| sha256_hex(b))
            .unwrap_or_default();
        // A rotated root is trusted from here on (written before the switch: a kill after this
        // leaves the same bundle installable under it).
        if let Some(r) = &verified.new_root {
            write_atomic(&self.dir.join("root.json"), r)?;
        }
        let name = format!(
            "v{}-{}",
            verified.versions.targets,
            targets_meta.get(..12).unwrap_or("")
        );
        let rel = Path::new("sets").join(&name);
        let final_dir = self.dir.join(&rel);
        if self.link("current").as_deref() == Some(rel.as_path()) {
            // An update killed after its switch, before trusted.json: this very set (same
            // targets metadata) is in use already; only the trusted state is left to write.
            let _ = std::fs::remove_dir_all(&staging);
        } else {
            if final_dir.exists() {
                // Left by an update killed after its rename, before its switch.
                std::fs::remove_dir_all(&final_dir).map_err(DbError::io(final_dir.display()))?;
            }
            std::fs::rename(&staging, &final_dir).map_err(DbError::io(final_dir.display()))?;
            sync_dir(&sets)?;
            if new_root {
                write_atomic(&self.dir.join("root.json"), &root_bytes)?;
            }
            if let Some(old) = self.link("current") {
                relink(&self.dir, "previous", &old)?;
            }
            relink(&self.dir, "current", &rel)?;
            sync_dir(&self.dir)?;
        }
        let latest = match &trusted.latest_known_time {
            Some(t) => meta::parse_time(Role::Timestamp, t).map_or(opts.now, |t| t.max(opts.now)),
            None => opts.now,
        };
        let new_trusted = TrustedFile {
            versions: verified.versions,
            latest_known_time: Some(meta::format_time(latest)),
        };
        self.write_trusted(&new_trusted)?;
        self.prune()?;
        let set = SetInfo {
            name,
            version: verified.versions.targets,
            expires: verified.targets.expires.clone(),
            timestamp_expires: meta::format_time(verified.timestamp_expires),
            stale: verified.timestamp_expires <= opts.now,
            targets: verified.targets.targets.len(),
            report,
        };
        Ok((
            Installed {
                set,
                expired: verified.expired,
            },
            loaded,
        ))
    }

    fn stage(
        &self,
        staging: &Path,
        trust: &Trust,
        opts: &UpdateOptions,
        previous: Option<&dataplane::rules::RuleSet>,
    ) -> Result<(verify::Verified, Report, Option<crate::rules_load::Loaded>), DbError> {
        let vopts = Options {
            now: opts.now,
            allow_expired: opts.allow_expired,
        };
        let targets_dir = staging.join("targets");
        let verified = bundle::read(
            &opts.from,
            |files| verify::verify_metadata(trust, files, &vopts),
            &mut ToDir(&targets_dir),
        )?;
        let meta_dir = staging.join("metadata");
        std::fs::create_dir_all(&meta_dir).map_err(DbError::io(meta_dir.display()))?;
        for (role, bytes) in &verified.files {
            write_atomic(&meta_dir.join(role.file()), bytes)?;
        }
        let (report, loaded) =
            check::check_set_keeping(&targets_dir, &verified.targets, false, previous)?;
        let text = serde_json::to_vec_pretty(&report).map_err(|e| DbError::State(e.to_string()))?;
        write_atomic(&staging.join("report.json"), &text)?;
        Ok((verified, report, loaded))
    }

    fn write_trusted(&self, t: &TrustedFile) -> Result<(), DbError> {
        let text = serde_json::to_vec_pretty(t).map_err(|e| DbError::State(e.to_string()))?;
        write_atomic(&self.dir.join("trusted.json"), &text)
    }

    /// Remove sets neither `current` nor `previous` names.
    fn prune(&self) -> Result<(), DbError> {
        let keep: Vec<PathBuf> = ["current", "previous"]
            .iter()
            .filter_map(|l| self.link(l))
            .filter_map(|p| p.file_name().map(PathBuf::from))
            .collect();
        let sets = self.dir.join("sets");
        for e in std::fs::read_dir(&sets).map_err(DbError::io(sets.display()))? {
            let e = e.map_err(DbError::io(sets.display()))?;
            if !keep.iter().any(|k| k.as_os_str() == e.file_name()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Ok(())
    }

    /// An error unless the set `prev` (the `previous` link's target) is complete.
    fn complete(&self, prev: &Path) -> Result<(), DbError> {
        if self.dir.join(prev).join("report.json").exists() {
            return Ok(());
        }
        Err(DbError::State(format!(
            "{}: the previous set {} is incomplete",
            self.dir.display(),
            prev.display()
        )))
    }

    /// Take the current set out of use when there is no previous set to switch back to (the
    /// daemon refused the first set it installed): `previous` names it, and no set is current.
    /// Trusted versions do not go down.
    pub fn retire(&self, now: OffsetDateTime) -> Result<Status, DbError> {
        let Some(cur) = self.link("current") else {
            return Err(DbError::State(format!(
                "{}: no set installed",
                self.dir.display()
            )));
        };
        relink(&self.dir, "previous", &cur)?;
        let path = self.dir.join("current");
        std::fs::remove_file(&path).map_err(DbError::io(path.display()))?;
        sync_dir(&self.dir)?;
        self.status(now)
    }

    /// Switch `current` and `previous`; with no set current (the first set retired), bring
    /// `previous` back into use. Trusted versions do not go down: a later update must still be
    /// newer than the newest set ever installed.
    pub fn rollback(&self, now: OffsetDateTime) -> Result<Status, DbError> {
        let trusted = self.trusted()?;
        self.check_clock(&trusted, now)?;
        if let (None, Some(prev)) = (self.link("current"), self.link("previous")) {
            self.complete(&prev)?;
            relink(&self.dir, "current", &prev)?;
            let path = self.dir.join("previous");
            std::fs::remove_file(&path).map_err(DbError::io(path.display()))?;
            sync_dir(&self.dir)?;
            return self.status(now);
        }
        let (Some(cur), Some(prev)) = (self.link("current"), self.link("previous")) else {
            return Err(DbError::State(format!(
                "{}: no previous set to roll back to",
                self.dir.display()
            )));
        };
        self.complete(&prev)?;
        relink(&self.dir, "current", &prev)?;
        relink(&self.dir, "previous", &cur)?;
        sync_dir(&self.dir)?;
        self.status(now)
    }
}
