//! The client's checks of a bundle's metadata, in TUF's order (specification 5.3-5.6 with the
//! files taken from the bundle instead of a repository):
//!
//! 1. root: the bundle's root must be the trusted root (rotation is not built yet); not expired;
//! 2. timestamp: signed by the root's timestamp keys; version not below the trusted one;
//! 3. snapshot: the version the timestamp names (else mix and match), then its length and
//!    SHA-256, then the snapshot keys' signatures; version not below the trusted one;
//! 4. targets: the same against what the snapshot names; version not below the trusted one;
//! 5. expiry of every role against the clock (`--allow-expired` lets an expired set through);
//! 6. for an update, the targets version above the installed one.
//!
//! The targets themselves are checked as they stream out of the bundle ([`super::bundle`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::meta::{Envelope, MetaFile, MetaRole, Role, Root, Targets, parse_time};
use super::{DbError, sha256_hex};

/// Versions of the roles a client trusts (0: none yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Versions {
    /// Timestamp.
    pub timestamp: u64,
    /// Snapshot.
    pub snapshot: u64,
    /// Targets.
    pub targets: u64,
}

/// What the client trusts.
#[derive(Clone, Debug)]
pub struct Trust {
    /// The trusted root.
    pub root: Root,
    /// Its canonical `signed` bytes.
    pub root_canonical: Vec<u8>,
    /// The highest versions seen.
    pub versions: Versions,
    /// The installed database version, for an update (which must be newer).
    pub installed: Option<u64>,
}

/// How to check.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The time expiry is checked against.
    pub now: OffsetDateTime,
    /// Accept expired metadata (an offline bundle past its timestamp's expiry).
    pub allow_expired: bool,
}

/// Metadata that passed every check.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The targets role.
    pub targets: Targets,
    /// The versions of timestamp, snapshot and targets.
    pub versions: Versions,
    /// The timestamp's expiry: when the database becomes stale.
    pub timestamp_expires: OffsetDateTime,
    /// The roles that had expired (non-empty only with `allow_expired`).
    pub expired: Vec<Role>,
    /// The metadata files' bytes, as found in the bundle.
    pub files: BTreeMap<Role, Vec<u8>>,
    /// The bundle's root when it rotated the trusted one (to be trusted from now on).
    pub new_root: Option<Vec<u8>>,
}

/// Longest target name, and deepest directory nesting: generous for rule and list files, small
/// enough that a name can never reach a path limit of the state directory.
pub const MAX_TARGET_NAME: usize = 200;
const MAX_TARGET_DEPTH: usize = 4;

/// Whether `name` is a safe relative target path: components of ASCII letters, digits, `.`, `_`
/// and `-`, none of them `.` or `..`, separated by single `/`.
pub fn safe_target_name(name: &str) -> bool {
    name.len() <= MAX_TARGET_NAME
        && name.split('/').count() <= MAX_TARGET_DEPTH
        && name.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

fn file(files: &BTreeMap<Role, Vec<u8>>, role: Role) -> Result<&[u8], DbError> {
    files
        .get(&role)
        .map(Vec::as_slice)
        .ok_or_else(|| DbError::MissingMetadata(role.file().into()))
}

/// Parse a metadata file that `by` names as `expected`: version first (mix and match), then
/// length and hash, then signatures.
fn named(
    files: &BTreeMap<Role, Vec<u8>>,
    role: Role,
    by: Role,
    expected: Option<&MetaFile>,
    root: &Root,
) -> Result<Envelope, DbError> {
    let bytes = file(files, role)?;
    let expected = expected.ok_or_else(|| DbError::BadMetadata {
        name: by.file().into(),
        message: format!("does not name {}", role.file()),
    })?;
    let env = Envelope::parse(role, bytes)?;
    let got = env
        .signed
        .get("version")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if got != expected.version {
        return Err(DbError::MixAndMatch {
            name: role.file(),
            by: by.name(),
            expected: expected.version,
            got,
        });
    }
    let mismatch = |what| DbError::MetadataMismatch {
        name: role.file(),
        by: by.name(),
        what,
    };
    if bytes.len() as u64 != expected.length {
        return Err(mismatch("length"));
    }
    if sha256_hex(bytes) != expected.hashes.sha256 {
        return Err(mismatch("sha256"));
    }
    env.verify(root)?;
    Ok(env)
}

fn not_older(role: Role, trusted: u64, got: u64) -> Result<(), DbError> {
    if got < trusted {
        return Err(DbError::Rollback {
            role: role.name(),
            trusted,
            got,
        });
    }
    Ok(())
}

/// TUF's root rotation: a root other than the trusted one is accepted only as the trusted
/// root's next version, valid, and signed both by a threshold of the trusted root's root keys
/// and by a threshold of its own. One version at a time: a bundle carries one root.
pub fn rotated_root(trusted: &Root, env: &Envelope) -> Result<Root, DbError> {
    let new: Root = env.decode()?;
    new.validate()?;
    if new.version != trusted.version.saturating_add(1) {
        return Err(DbError::RootMismatch {
            trusted: trusted.version,
            got: new.version,
        });
    }
    env.verify(trusted)?;
    env.verify(&new)?;
    Ok(new)
}

/// Check a bundle's metadata files against `trust`.
pub fn verify_metadata(
    trust: &Trust,
    files: &BTreeMap<Role, Vec<u8>>,
    opts: &Options,
) -> Result<Verified, DbError> {
    let root_env = Envelope::parse(Role::Root, file(files, Role::Root)?)?;
    let (rotated, new_root) = if root_env.canonical == trust.root_canonical {
        (None, None)
    } else {
        let r = rotated_root(&trust.root, &root_env)?;
        (Some(r), Some(file(files, Role::Root)?.to_vec()))
    };
    let root = rotated.as_ref().unwrap_or(&trust.root);

    let ts_env = Envelope::parse(Role::Timestamp, file(files, Role::Timestamp)?)?;
    ts_env.verify(root)?;
    let ts: MetaRole = ts_env.decode()?;
    not_older(Role::Timestamp, trust.versions.timestamp, ts.version)?;

    let snap_env = named(
        files,
        Role::Snapshot,
        Role::Timestamp,
        ts.meta.get(Role::Snapshot.file()),
        root,
    )?;
    let snap: MetaRole = snap_env.decode()?;
    not_older(Role::Snapshot, trust.versions.snapshot, snap.version)?;

    let targets_env = named(
        files,
        Role::Targets,
        Role::Snapshot,
        snap.meta.get(Role::Targets.file()),
        root,
    )?;
    let targets: Targets = targets_env.decode()?;
    not_older(Role::Targets, trust.versions.targets, targets.version)?;
    if let Some(name) = targets.targets.keys().find(|n| !safe_target_name(n)) {
        return Err(DbError::BadMetadata {
            name: Role::Targets.file().into(),
            message: format!("target name {name:?} is not a safe relative path"),
        });
    }

    let timestamp_expires = parse_time(Role::Timestamp, &ts.expires)?;
    let expiries = [
        (Role::Root, parse_time(Role::Root, &root.expires)?),
        (Role::Timestamp, timestamp_expires),
        (Role::Snapshot, parse_time(Role::Snapshot, &snap.expires)?),
        (Role::Targets, parse_time(Role::Targets, &targets.expires)?),
    ];
    let mut expired = Vec::new();
    for (role, at) in expiries {
        if at <= opts.now {
            if !opts.allow_expired {
                return Err(DbError::Expired {
                    role: role.name(),
                    expires: super::meta::format_time(at),
                });
            }
            expired.push(role);
        }
    }
    if let Some(installed) = trust.installed
        && targets.version <= installed
    {
        return Err(DbError::NotNewer {
            installed,
            got: targets.version,
        });
    }
    Ok(Verified {
        versions: Versions {
            timestamp: ts.version,
            snapshot: snap.version,
            targets: targets.version,
        },
        targets,
        timestamp_expires,
        expired,
        files: files.clone(),
        new_root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names() {
        for ok in ["rules/et.rules", "lists/malware.list", "a-b_c.d"] {
            assert!(safe_target_name(ok), "{ok}");
        }
        for bad in [
            "",
            "/abs",
            "a//b",
            "../x",
            "a/../b",
            "a/./b",
            "sp ace",
            "a\\b",
            "a/b/c/d/e",
            "é",
        ] {
            assert!(!safe_target_name(bad), "{bad}");
        }
    }
}
