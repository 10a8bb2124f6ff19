//! Signed application databases: rule files, address lists, attack blocker definitions,
//! classification and reference configuration and a self-test capture, published as one
//! versioned bundle whose metadata follows The Update Framework (TUF).
//!
//! `tough` (the TUF client Bottlerocket uses) builds here (about 4 minutes on one job) but
//! brings aws-lc-rs, a second crypto library in C next to ring, is async, and reads repositories
//! from directories or URLs, so an offline tar would be unpacked to disk before any check; this
//! is instead a documented TUF subset on `ed25519-dalek` and canonical JSON (`olpc-cjson`) that
//! checks the tar as it reads it (docs/databases.md):
//!
//! - [`meta`]: the four roles (root, targets, snapshot, timestamp), their signed envelopes,
//!   thresholds of Ed25519 signatures by keys the root names, expiry dates and versions;
//! - [`cjson`]: the canonical JSON that signatures and key ids cover;
//! - [`bundle`]: the bundle (a plain tar of `metadata/` then `targets/`), written by the
//!   publisher and read with every size capped before anything is parsed or stored;
//! - [`verify`]: the client's checks, in TUF's order, against what the client trusts;
//! - [`store`]: the state directory (trusted versions and time, A/B sets switched by rename);
//! - [`check`]: what a staged set must pass before it is switched in (rules compile, lists and
//!   configuration parse, the self-test capture gives its expected alerts);
//! - [`cmd`]: `svm db ...`.
//!
//! The daemon's side (mirror polling, hot swap of the rules, rollback, `/api/v1/db`) is
//! [`crate::daemon::dbsync`]. A bundle may carry the trusted root's next version, signed by
//! both the old and the new root keys (TUF's root rotation, [`verify::rotated_root`]).

pub mod attack;
pub mod bundle;
pub mod check;
pub mod cjson;
pub mod cmd;
pub mod meta;
pub mod store;
#[cfg(test)]
mod tests;
pub mod verify;

/// Why a bundle, a state directory or a database command was refused. Each check of the
/// verification has its own variant, so a refusal names its reason in one line.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Reading or writing a file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The bundle is not a readable tar, or holds an entry that is not a plain file with a safe name.
    #[error("bundle: {0}")]
    BadBundle(String),
    /// A metadata file is larger than its cap (checked before it is read).
    #[error("metadata {name}: {size} bytes, more than the cap of {cap}")]
    MetadataTooLarge {
        /// The file.
        name: String,
        /// Its size in the tar header.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// A metadata file the bundle must hold is missing.
    #[error("metadata {0} is missing")]
    MissingMetadata(String),
    /// A metadata file is not the JSON of its role.
    #[error("metadata {name}: {message}")]
    BadMetadata {
        /// The file.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// No signature on a role is by a key the root names for it.
    #[error("role {role}: no signature by a key the root names for it")]
    UnknownKeys {
        /// The role.
        role: &'static str,
    },
    /// A signature by a key the root names does not verify (the signed content changed).
    #[error("role {role}: a signature by key {keyid} does not verify")]
    BadSignature {
        /// The role.
        role: &'static str,
        /// The key's id.
        keyid: String,
    },
    /// Fewer valid signatures than the root's threshold for the role.
    #[error("role {role}: {valid} valid signature(s), the threshold is {threshold}")]
    BelowThreshold {
        /// The role.
        role: &'static str,
        /// Valid signatures by distinct keys of the role.
        valid: usize,
        /// The root's threshold.
        threshold: u32,
    },
    /// A role's metadata expired (a frozen or replayed update), and `--allow-expired` was not given.
    #[error("role {role} expired at {expires} (use --allow-expired to install it anyway)")]
    Expired {
        /// The role.
        role: &'static str,
        /// Its expiry.
        expires: String,
    },
    /// A role's version is older than the one already trusted (a rollback attack).
    #[error("role {role}: version {got} is older than the trusted version {trusted}")]
    Rollback {
        /// The role.
        role: &'static str,
        /// The trusted version.
        trusted: u64,
        /// The bundle's.
        got: u64,
    },
    /// The bundle is not newer than the newest set ever installed (in use, kept for rollback,
    /// or taken out of use by the daemon).
    #[error(
        "version {got} is not newer than the installed version {installed} (versions only go \
         up: an older or retired set comes back only by `svm db rollback`)"
    )]
    NotNewer {
        /// The installed targets version.
        installed: u64,
        /// The bundle's.
        got: u64,
    },
    /// A metadata file's version is not the one the role above it names (mix and match).
    #[error("metadata {name}: version {got}, but {by} names version {expected}")]
    MixAndMatch {
        /// The file.
        name: &'static str,
        /// The role that names it.
        by: &'static str,
        /// The version named.
        expected: u64,
        /// The version found.
        got: u64,
    },
    /// A metadata file's length or hash is not the one the role above it names.
    #[error("metadata {name}: {what} differs from what {by} names")]
    MetadataMismatch {
        /// The file.
        name: &'static str,
        /// The role that names it.
        by: &'static str,
        /// `length` or `sha256`.
        what: &'static str,
    },
    /// The bundle's root is not the trusted root.
    #[error(
        "the bundle's root (version {got}) is not the trusted root (version {trusted}) nor its next version signed by it (a root rotates one version at a time)"
    )]
    RootMismatch {
        /// The trusted root's version.
        trusted: u64,
        /// The bundle's.
        got: u64,
    },
    /// A target is longer than its signed length.
    #[error("target {name}: {got} bytes, longer than the signed length {declared}")]
    TargetTooLong {
        /// The target.
        name: String,
        /// The signed length.
        declared: u64,
        /// The tar entry's length.
        got: u64,
    },
    /// A target is shorter than its signed length.
    #[error("target {name}: {got} bytes, shorter than the signed length {declared}")]
    TargetTooShort {
        /// The target.
        name: String,
        /// The signed length.
        declared: u64,
        /// The tar entry's length.
        got: u64,
    },
    /// A target's SHA-256 is not its signed hash.
    #[error("target {0}: SHA-256 differs from the signed hash")]
    TargetHash(String),
    /// The bundle holds a file the targets metadata does not list.
    #[error("target {0} is not listed in the signed targets")]
    UnlistedTarget(String),
    /// A target the metadata lists is not in the bundle.
    #[error("target {0} is listed but missing from the bundle")]
    MissingTarget(String),
    /// The clock is before the latest time this state directory has seen.
    #[error(
        "the clock ({now}) is before the latest known time {latest}: refusing a clock stepped back"
    )]
    ClockBack {
        /// The clock.
        now: String,
        /// The latest known time.
        latest: String,
    },
    /// The staged rules do not compile.
    #[error("rules: {0}")]
    Rules(String),
    /// A staged address list or configuration file is invalid.
    #[error("{name}: {message}")]
    BadContent {
        /// The target.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The self-test capture did not give its expected alerts.
    #[error("self-test: {0}")]
    SelfTest(String),
    /// The state directory holds no database, or no previous set to roll back to.
    #[error("{0}")]
    State(String),
    /// Another `svm db` command holds the state directory's lock.
    #[error("{0}: another svm db command is using this state directory")]
    Locked(String),
    /// Keys or arguments of a publisher command are unusable.
    #[error("{0}")]
    Usage(String),
}

impl DbError {
    /// `Io` with a context.
    pub(crate) fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> DbError {
        let what = what.to_string();
        move |source| DbError::Io { what, source }
    }
}

/// SHA-256 of `data`, lower-case hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// The fuzz target's body (`fuzz/fuzz_targets/db_metadata.rs`): `data` as each role's metadata
/// file (parse, signature check against a fixed root, typed decode, root validation), then as a
/// bundle tar checked against that root. Nothing may panic; a bundle that passes must have been
/// signed by the fixed keys, which the fuzzer does not have, so none may pass.
pub fn fuzz_metadata(data: &[u8]) {
    use std::sync::OnceLock;
    static TRUST: OnceLock<Option<verify::Trust>> = OnceLock::new();
    let Some(trust) = TRUST.get_or_init(fuzz_trust) else {
        return;
    };
    for role in meta::Role::ALL {
        let Ok(env) = meta::Envelope::parse(role, data) else {
            continue;
        };
        let _ = env.verify(&trust.root);
        match role {
            meta::Role::Root => {
                if let Ok(r) = env.decode::<meta::Root>() {
                    let _ = r.validate();
                }
                let _ = meta::trusted_root(data);
            }
            meta::Role::Targets => {
                let _ = env.decode::<meta::Targets>();
            }
            meta::Role::Snapshot | meta::Role::Timestamp => {
                let _ = env.decode::<meta::MetaRole>();
            }
        }
    }
    let opts = verify::Options {
        now: time::OffsetDateTime::UNIX_EPOCH,
        allow_expired: true,
    };
    let r = bundle::read_from(
        data,
        |files| verify::verify_metadata(trust, files, &opts),
        &mut bundle::Discard,
    );
    assert!(r.is_err(), "a bundle not signed by the fixed keys passed");
}

/// A root whose keys are fixed seeds (the fuzzer never sees a signature by them).
fn fuzz_trust() -> Option<verify::Trust> {
    use std::collections::BTreeMap;
    let sk = ed25519_dalek::SigningKey::from_bytes(&[0x5a; 32]);
    let pk = meta::PublicKey::of(&sk);
    let id = pk.id();
    let roles = meta::Role::ALL
        .iter()
        .map(|r| {
            (
                r.name().to_owned(),
                meta::RoleKeys {
                    keyids: vec![id.clone()],
                    threshold: 1,
                },
            )
        })
        .collect();
    let root = meta::Root {
        kind: "root".into(),
        spec_version: meta::SPEC_VERSION.into(),
        consistent_snapshot: false,
        version: 1,
        expires: "2100-01-01T00:00:00Z".into(),
        keys: BTreeMap::from([(id, pk)]),
        roles,
    };
    let bytes = meta::sign(&root, &[&sk]).ok()?;
    let (root, env) = meta::trusted_root(&bytes).ok()?;
    Some(verify::Trust {
        root,
        root_canonical: env.canonical,
        versions: verify::Versions::default(),
        installed: None,
    })
}
