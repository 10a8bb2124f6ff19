//! `svm db ...`: the publisher's commands (`keygen`, `build`), the check of a bundle (`verify`)
//! and the administrator's commands on a state directory (`update`, `status`, `rollback`).
//!
//! Exit codes: 0 success; 1 a mandatory argument is missing; 2 the bundle or state was refused
//! (one line on standard error names the reason); 4 unusable arguments or keys; 9 wrong
//! operation (not newer than the installed version, nothing to roll back to, directory locked).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::DbError;
use super::bundle;
use super::check::{self, Expected};
use super::meta::{
    self, Hashes, MetaFile, MetaRole, PublicKey, Role, RoleKeys, Root, SPEC_VERSION, TargetCustom,
    TargetInfo, TargetKind, Targets,
};
use super::store::{Status, Store, UpdateOptions};
use super::verify::{self, Options, Trust, Versions, safe_target_name};
use crate::cli::Exit;

/// `svm db ...`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Make the publisher's keys (one per role, or N with --threshold N) and the root metadata.
    Keygen(KeygenArgs),
    /// Build a signed bundle from rule files, address lists and a self-test capture.
    Build(BuildArgs),
    /// Verify a bundle's signatures, versions, expiry, lengths and hashes against a root.
    Verify(VerifyArgs),
    /// Verify, stage, check and switch to a bundle in a state directory.
    Update(UpdateArgs),
    /// Show the installed and previous sets of a state directory.
    Status(StatusArgs),
    /// Switch back to the previous set of a state directory.
    Rollback(StateArgs),
}

/// `svm db keygen`
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Directory for root.json and keys/ (created; an existing root.json is never overwritten).
    pub dir: PathBuf,
    /// Keys per role, all needed to sign (the threshold).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub threshold: u32,
    /// Expiry of the root (RFC 3339); default one year from now.
    #[arg(long)]
    pub expires: Option<String>,
    /// Rotate: the new root is the next version of OLD_DIR's, signed by its root keys too.
    #[arg(long, value_name = "OLD_DIR")]
    pub rotate_from: Option<PathBuf>,
}

/// `svm db build`
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The keygen directory (root.json and keys/).
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,
    /// The database version; every role of the bundle gets it, and it must grow.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub version: u64,
    /// Expiry of the targets and snapshot metadata (RFC 3339); default 14 days from now.
    #[arg(long)]
    pub expires: Option<String>,
    /// Expiry of the timestamp (RFC 3339); default 7 days from now, at most --expires.
    #[arg(long)]
    pub timestamp_expires: Option<String>,
    /// Rule files (repeatable; several may follow one --rules).
    #[arg(long, value_name = "FILE", num_args = 1.., action = clap::ArgAction::Append)]
    pub rules: Vec<PathBuf>,
    /// Address lists with their category, `CATEGORY=FILE` (repeatable).
    #[arg(long, value_name = "CATEGORY=FILE", num_args = 1.., action = clap::ArgAction::Append)]
    pub url_list: Vec<String>,
    /// A self-test capture; its alerts with the bundle's rules become the expected counts.
    #[arg(long, value_name = "PCAP")]
    pub self_test: Option<PathBuf>,
    /// A classification.config replacing the built-in classes.
    #[arg(long, value_name = "FILE")]
    pub classification: Option<PathBuf>,
    /// A reference.config.
    #[arg(long, value_name = "FILE")]
    pub reference: Option<PathBuf>,
    /// Attack blocker definitions: `attack_blocker.detectors` with the count and window_secs of
    /// threshold detections (docs/databases.md).
    #[arg(long, value_name = "FILE")]
    pub attack_blocker: Option<PathBuf>,
    /// The bundle to write.
    #[arg(short = 'o', long = "output", value_name = "BUNDLE")]
    pub output: PathBuf,
}

/// `svm db verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The trusted root metadata.
    #[arg(long, value_name = "ROOT.json")]
    pub root: PathBuf,
    /// Accept expired metadata.
    #[arg(long)]
    pub allow_expired: bool,
    /// The bundle.
    pub bundle: PathBuf,
}

/// A state directory.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// The state directory.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
}

/// `svm db status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The state directory.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `svm db update`
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The state directory.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// The bundle file (required: the daemon follows a mirror, `db.mirror`).
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// The root to trust, for the state directory's first update.
    #[arg(long, value_name = "ROOT.json")]
    pub root: Option<PathBuf>,
    /// Install a bundle whose metadata expired (only over an older version).
    #[arg(long)]
    pub allow_expired: bool,
}

/// A key file under `keys/`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    role: String,
    keyid: String,
    /// The Ed25519 secret seed, hex.
    ed25519_seed: String,
}

fn exit_code(e: &DbError) -> Exit {
    match e {
        DbError::Usage(_) => Exit::Syntax,
        DbError::NotNewer { .. } | DbError::State(_) | DbError::Locked(_) => Exit::WrongOperation,
        _ => Exit::General,
    }
}

fn report(what: &str, r: Result<(), DbError>) -> Exit {
    match r {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("svm db {what}: {e}");
            exit_code(&e)
        }
    }
}

/// Run `svm db ...`; the exit code.
pub fn run(cmd: DbCommand) -> Exit {
    let now = OffsetDateTime::now_utc();
    match cmd {
        DbCommand::Keygen(a) => report("keygen", keygen(&a, now)),
        DbCommand::Build(a) => report("build", build(&a, now)),
        DbCommand::Verify(a) => report("verify", verify_cmd(&a, now)),
        DbCommand::Update(a) => {
            if a.from.is_none() {
                eprintln!(
                    "svm db update: give --from BUNDLE (the daemon follows a mirror: db.mirror in its configuration, POST /api/v1/db/update)"
                );
                return Exit::MissingArgument;
            }
            report("update", update(&a, now))
        }
        DbCommand::Status(a) => report("status", status(&a, now)),
        DbCommand::Rollback(a) => report("rollback", rollback(&a, now)),
    }
}

fn time_arg(what: &str, v: Option<&String>, default: OffsetDateTime) -> Result<String, DbError> {
    match v {
        None => Ok(meta::format_time(default)),
        Some(t) => OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map(meta::format_time)
            .map_err(|e| DbError::Usage(format!("{what} {t:?}: not an RFC 3339 time ({e})"))),
    }
}

fn seed() -> Result<[u8; 32], DbError> {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).map_err(|e| DbError::Usage(format!("random source: {e}")))?;
    Ok(s)
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), DbError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(DbError::io(path.display()))?;
    f.write_all(bytes).map_err(DbError::io(path.display()))
}

/// `svm db keygen DIR`: `DIR/root.json` (version 1, self-signed) and `DIR/keys/ROLE-N.key`.
pub fn keygen(a: &KeygenArgs, now: OffsetDateTime) -> Result<(), DbError> {
    let root_path = a.dir.join("root.json");
    if root_path.exists() {
        return Err(DbError::Usage(format!(
            "{} exists: keys are never overwritten",
            root_path.display()
        )));
    }
    let expires = time_arg(
        "--expires",
        a.expires.as_ref(),
        now + time::Duration::days(365),
    )?;
    // A rotation: the old root's version and its root keys, which sign the new root too.
    let (version, old_signers) = match &a.rotate_from {
        None => (1, Vec::new()),
        Some(old) => {
            let (bytes, keys) = load_keys(old)?;
            let (old_root, _) = meta::trusted_root(&bytes)?;
            (
                old_root.version + 1,
                keys.get(&Role::Root).cloned().unwrap_or_default(),
            )
        }
    };
    let keys_dir = a.dir.join("keys");
    std::fs::create_dir_all(&keys_dir).map_err(DbError::io(keys_dir.display()))?;
    let mut keys = BTreeMap::new();
    let mut roles = BTreeMap::new();
    let mut root_keys = Vec::new();
    for role in Role::ALL {
        let mut ids = Vec::new();
        for i in 1..=a.threshold {
            let sk = SigningKey::from_bytes(&seed()?);
            let pk = PublicKey::of(&sk);
            let id = pk.id();
            let file = KeyFile {
                role: role.name().into(),
                keyid: id.clone(),
                ed25519_seed: hex::encode(sk.to_bytes()),
            };
            let text =
                serde_json::to_vec_pretty(&file).map_err(|e| DbError::Usage(e.to_string()))?;
            write_secret(&keys_dir.join(format!("{}-{i}.key", role.name())), &text)?;
            keys.insert(id.clone(), pk);
            ids.push(id);
            if role == Role::Root {
                root_keys.push(sk);
            }
        }
        roles.insert(
            role.name().to_owned(),
            RoleKeys {
                keyids: ids,
                threshold: a.threshold,
            },
        );
    }
    let root = Root {
        kind: "root".into(),
        spec_version: SPEC_VERSION.into(),
        consistent_snapshot: false,
        version,
        expires,
        keys,
        roles,
    };
    let signers: Vec<&SigningKey> = root_keys.iter().chain(&old_signers).collect();
    let bytes = meta::sign(&root, &signers)?;
    std::fs::write(&root_path, &bytes).map_err(DbError::io(root_path.display()))?;
    println!(
        "{}: root version {version}{}, {} key(s) per role (threshold {}), expires {}; secret keys in {} (mode 0600)",
        root_path.display(),
        if old_signers.is_empty() {
            ""
        } else {
            " (a rotation, signed by the old root keys too)"
        },
        a.threshold,
        a.threshold,
        root.expires,
        keys_dir.display()
    );
    Ok(())
}

/// Signing keys by role.
pub type RoleKeyring = BTreeMap<Role, Vec<SigningKey>>;

/// The root of a keygen directory and its signing keys by role.
pub fn load_keys(dir: &Path) -> Result<(Vec<u8>, RoleKeyring), DbError> {
    let root_path = dir.join("root.json");
    let root_bytes = std::fs::read(&root_path).map_err(DbError::io(root_path.display()))?;
    let (root, _) = meta::trusted_root(&root_bytes)?;
    let keys_dir = dir.join("keys");
    let mut by_role: BTreeMap<Role, Vec<SigningKey>> = BTreeMap::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&keys_dir)
        .map_err(DbError::io(keys_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "key"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read(&path).map_err(DbError::io(path.display()))?;
        let kf: KeyFile = serde_json::from_slice(&text)
            .map_err(|e| DbError::Usage(format!("{}: {e}", path.display())))?;
        let seed: [u8; 32] = hex::decode(&kf.ed25519_seed)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| DbError::Usage(format!("{}: not a 32-byte seed", path.display())))?;
        let sk = SigningKey::from_bytes(&seed);
        let id = PublicKey::of(&sk).id();
        let Some(role) = Role::ALL.into_iter().find(|r| r.name() == kf.role) else {
            return Err(DbError::Usage(format!("{}: unknown role", path.display())));
        };
        if root
            .roles
            .get(role.name())
            .is_some_and(|rk| rk.keyids.contains(&id))
        {
            by_role.entry(role).or_default().push(sk);
        }
    }
    for role in Role::ALL {
        let have = by_role.get(&role).map_or(0, Vec::len);
        let need = root.roles.get(role.name()).map_or(1, |r| r.threshold) as usize;
        if have < need {
            return Err(DbError::Usage(format!(
                "{}: {have} key(s) of role {} that the root names, the threshold is {need}",
                keys_dir.display(),
                role.name()
            )));
        }
    }
    Ok((root_bytes, by_role))
}

fn file_name(p: &Path) -> Result<String, DbError> {
    let n = p
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_owned();
    if !safe_target_name(&n) {
        return Err(DbError::Usage(format!(
            "{}: a bundle file name is ASCII letters, digits, '.', '_' and '-'",
            p.display()
        )));
    }
    Ok(n)
}

fn target(kind: TargetKind, category: Option<String>, bytes: &[u8]) -> TargetInfo {
    TargetInfo {
        length: bytes.len() as u64,
        hashes: Hashes {
            sha256: super::sha256_hex(bytes),
        },
        custom: TargetCustom { kind, category },
    }
}

/// Sign `targets` into the four metadata files of a bundle, every role at `version`.
pub fn sign_metadata(
    root_bytes: &[u8],
    keys: &RoleKeyring,
    targets: &Targets,
    timestamp_expires: &str,
) -> Result<Vec<(Role, Vec<u8>)>, DbError> {
    let signers = |r: Role| -> Vec<&SigningKey> {
        keys.get(&r).map(|v| v.iter().collect()).unwrap_or_default()
    };
    let targets_bytes = meta::sign(targets, &signers(Role::Targets))?;
    let snapshot = MetaRole {
        kind: "snapshot".into(),
        spec_version: SPEC_VERSION.into(),
        version: targets.version,
        expires: targets.expires.clone(),
        meta: BTreeMap::from([(
            Role::Targets.file().to_owned(),
            MetaFile::of(targets.version, &targets_bytes),
        )]),
    };
    let snapshot_bytes = meta::sign(&snapshot, &signers(Role::Snapshot))?;
    let timestamp = MetaRole {
        kind: "timestamp".into(),
        spec_version: SPEC_VERSION.into(),
        version: targets.version,
        expires: timestamp_expires.to_owned(),
        meta: BTreeMap::from([(
            Role::Snapshot.file().to_owned(),
            MetaFile::of(targets.version, &snapshot_bytes),
        )]),
    };
    let timestamp_bytes = meta::sign(&timestamp, &signers(Role::Timestamp))?;
    Ok(vec![
        (Role::Root, root_bytes.to_vec()),
        (Role::Timestamp, timestamp_bytes),
        (Role::Snapshot, snapshot_bytes),
        (Role::Targets, targets_bytes),
    ])
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `svm db build`.
pub fn build(a: &BuildArgs, now: OffsetDateTime) -> Result<(), DbError> {
    let (root_bytes, keys) = load_keys(&a.keys)?;
    let expires = time_arg(
        "--expires",
        a.expires.as_ref(),
        now + time::Duration::days(14),
    )?;
    let expires_at = meta::parse_time(Role::Targets, &expires)?;
    let ts_default = (now + time::Duration::days(7)).min(expires_at);
    let ts_expires = time_arg(
        "--timestamp-expires",
        a.timestamp_expires.as_ref(),
        ts_default,
    )?;
    let read = |p: &Path| std::fs::read(p).map_err(DbError::io(p.display()));
    let mut files: Vec<(String, Vec<u8>, TargetKind, Option<String>)> = Vec::new();
    for p in &a.rules {
        files.push((
            format!("rules/{}", file_name(p)?),
            read(p)?,
            TargetKind::Rules,
            None,
        ));
    }
    for spec in &a.url_list {
        let (cat, path) = spec
            .split_once('=')
            .ok_or_else(|| DbError::Usage(format!("--url-list {spec}: not CATEGORY=FILE")))?;
        if !check::valid_category(cat) {
            return Err(DbError::Usage(format!(
                "--url-list {spec}: a category is 1 to 64 of a-z, 0-9, '_' and '-'"
            )));
        }
        let p = Path::new(path);
        files.push((
            format!("lists/{cat}/{}", file_name(p)?),
            read(p)?,
            TargetKind::UrlList,
            Some(cat.to_owned()),
        ));
    }
    let singles = [
        (
            &a.classification,
            "config/classification.config",
            TargetKind::Classification,
        ),
        (
            &a.reference,
            "config/reference.config",
            TargetKind::Reference,
        ),
        (
            &a.attack_blocker,
            "config/attack-blocker.yaml",
            TargetKind::AttackBlocker,
        ),
        (
            &a.self_test,
            "selftest/capture.pcap",
            TargetKind::SelfTestCapture,
        ),
    ];
    for (path, name, kind) in singles {
        if let Some(p) = path {
            files.push((name.to_owned(), read(p)?, kind, None));
        }
    }
    let mut targets = Targets {
        kind: "targets".into(),
        spec_version: SPEC_VERSION.into(),
        version: a.version,
        expires,
        targets: BTreeMap::new(),
    };
    // The publisher runs the client's checks on its own set, and measures the self-test.
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "svm-db-build-{}-{}",
        std::process::id(),
        now.unix_timestamp_nanos()
    )));
    for (name, bytes, kind, category) in &files {
        if targets
            .targets
            .insert(name.clone(), target(*kind, category.clone(), bytes))
            .is_some()
        {
            return Err(DbError::Usage(format!("{name}: given twice")));
        }
        let path = scratch.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(DbError::io(parent.display()))?;
        }
        std::fs::write(&path, bytes).map_err(DbError::io(path.display()))?;
    }
    let rep = check::check_set(&scratch.0, &targets, true)?;
    drop(scratch);
    if a.self_test.is_some() {
        if rep.self_test.is_empty() {
            return Err(DbError::Usage(
                "the self-test capture raises no alert with this bundle: it would test nothing"
                    .into(),
            ));
        }
        let expected = serde_json::to_vec_pretty(&Expected {
            alerts: rep.self_test.clone(),
        })
        .map_err(|e| DbError::Usage(e.to_string()))?;
        let name = "selftest/expected.json".to_owned();
        targets.targets.insert(
            name.clone(),
            target(TargetKind::SelfTestExpected, None, &expected),
        );
        files.push((name, expected, TargetKind::SelfTestExpected, None));
    }
    let metadata = sign_metadata(&root_bytes, &keys, &targets, &ts_expires)?;
    let payload: Vec<(String, Vec<u8>)> = files.into_iter().map(|(n, b, _, _)| (n, b)).collect();
    bundle::write(&a.output, &metadata, &payload)?;
    if expires_at <= now {
        eprintln!(
            "svm db build: warning: the bundle expired at {}",
            targets.expires
        );
    }
    println!(
        "{}: version {}, {} target(s), {} rule(s) loaded ({} skipped), lists {}, self-test {} alert(s); expires {}, timestamp expires {}",
        a.output.display(),
        a.version,
        targets.targets.len(),
        rep.rules_loaded,
        rep.rules_skipped,
        lists_text(&rep.lists),
        rep.self_test.values().sum::<u64>(),
        targets.expires,
        ts_expires
    );
    Ok(())
}

fn lists_text(lists: &BTreeMap<String, usize>) -> String {
    if lists.is_empty() {
        return "none".into();
    }
    lists
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Verify `bundle` against the root file `root` (metadata, then every target's length and hash).
pub fn verify_bundle(
    root: &Path,
    bundle_path: &Path,
    opts: &Options,
) -> Result<verify::Verified, DbError> {
    let bytes = std::fs::read(root).map_err(DbError::io(root.display()))?;
    let (root, env) = meta::trusted_root(&bytes)?;
    let trust = Trust {
        root,
        root_canonical: env.canonical,
        versions: Versions::default(),
        installed: None,
    };
    // The attack blocker definitions are kept (their signed length bounds them) to be parsed.
    let defs_name = std::cell::RefCell::new(None::<String>);
    let mut keep = KeepOne {
        name: &defs_name,
        bytes: Vec::new(),
    };
    let v = bundle::read(
        bundle_path,
        |files| {
            let v = verify::verify_metadata(&trust, files, opts)?;
            *defs_name.borrow_mut() = v
                .targets
                .targets
                .iter()
                .find(|(_, t)| t.custom.kind == TargetKind::AttackBlocker)
                .map(|(n, _)| n.clone());
            Ok(v)
        },
        &mut keep,
    )?;
    if let Some(name) = defs_name.borrow().as_deref() {
        let text = String::from_utf8(keep.bytes).map_err(|_| DbError::BadContent {
            name: name.to_owned(),
            message: "not UTF-8".into(),
        })?;
        check::attack_definitions(name, &text)?;
    }
    Ok(v)
}

/// Discards every target but the one `name` names once the metadata is verified, which it
/// keeps.
struct KeepOne<'a> {
    name: &'a std::cell::RefCell<Option<String>>,
    bytes: Vec<u8>,
}

impl bundle::TargetSink for KeepOne<'_> {
    fn open(&mut self, name: &str) -> Result<Box<dyn std::io::Write + '_>, DbError> {
        if self.name.borrow().as_deref() == Some(name) {
            Ok(Box::new(&mut self.bytes))
        } else {
            Ok(Box::new(std::io::sink()))
        }
    }
}

fn verify_cmd(a: &VerifyArgs, now: OffsetDateTime) -> Result<(), DbError> {
    let opts = Options {
        now,
        allow_expired: a.allow_expired,
    };
    let v = verify_bundle(&a.root, &a.bundle, &opts)
        .map_err(|e| DbError::BadBundle(format!("{}: {e}", a.bundle.display())))?;
    println!(
        "{}: valid, version {}, {} target(s), expires {}{}",
        a.bundle.display(),
        v.versions.targets,
        v.targets.targets.len(),
        meta::format_time(v.timestamp_expires),
        if v.expired.is_empty() {
            ""
        } else {
            " (expired)"
        }
    );
    Ok(())
}

fn update(a: &UpdateArgs, now: OffsetDateTime) -> Result<(), DbError> {
    let store = Store::open(&a.state_dir)?;
    let previous = store.set_info("current", now).ok().flatten();
    let from = a.from.clone().unwrap_or_default();
    let done = store.update(&UpdateOptions {
        from,
        root: a.root.clone(),
        allow_expired: a.allow_expired,
        now,
    })?;
    let s = &done.set;
    println!(
        "installed version {} ({}): {} rule(s) ({} skipped), lists {}, self-test {} alert(s) as expected; previous: {}",
        s.version,
        s.name,
        s.report.rules_loaded,
        s.report.rules_skipped,
        lists_text(&s.report.lists),
        s.report.self_test.values().sum::<u64>(),
        previous.map_or("none".to_owned(), |p| format!("version {}", p.version))
    );
    if !done.expired.is_empty() {
        let roles: Vec<&str> = done.expired.iter().map(|r| r.name()).collect();
        println!(
            "warning: installed with expired metadata ({}): the database is stale",
            roles.join(", ")
        );
    }
    Ok(())
}

fn print_status(s: &Status) {
    match &s.current {
        None => println!("no database installed"),
        Some(c) => println!(
            "current: version {} ({}), {} target(s), expires {}, timestamp expires {}{}",
            c.version,
            c.name,
            c.targets,
            c.expires,
            c.timestamp_expires,
            if c.stale { ", STALE" } else { "" }
        ),
    }
    if let Some(c) = s
        .current
        .as_ref()
        .filter(|c| !c.report.attack_blocker.is_empty())
    {
        let defs: Vec<String> = c
            .report
            .attack_blocker
            .iter()
            .map(|(name, d)| {
                let count = d.count.map(|n| format!(" count {n}"));
                let window = d.window_secs.map(|n| format!(" window {n} s"));
                format!(
                    "{name}{}{}",
                    count.unwrap_or_default(),
                    window.unwrap_or_default()
                )
            })
            .collect();
        println!("attack blocker definitions: {}", defs.join(", "));
    }
    if let Some(p) = &s.previous {
        println!("previous: version {} ({})", p.version, p.name);
    }
    let v = s.trusted.versions;
    println!(
        "trusted: timestamp {}, snapshot {}, targets {}; latest known time {}",
        v.timestamp,
        v.snapshot,
        v.targets,
        s.trusted.latest_known_time.as_deref().unwrap_or("none")
    );
}

/// An existing state directory, locked (status and rollback never create one).
fn existing(dir: &Path) -> Result<Store, DbError> {
    if !dir.is_dir() {
        return Err(DbError::State(format!(
            "{}: no such state directory",
            dir.display()
        )));
    }
    Store::open(dir)
}

fn status(a: &StatusArgs, now: OffsetDateTime) -> Result<(), DbError> {
    let s = existing(&a.state_dir)?.status(now)?;
    if a.json {
        let text = serde_json::to_string_pretty(&s).map_err(|e| DbError::State(e.to_string()))?;
        println!("{text}");
    } else {
        print_status(&s);
    }
    Ok(())
}

fn rollback(a: &StateArgs, now: OffsetDateTime) -> Result<(), DbError> {
    let s = existing(&a.state_dir)?.rollback(now)?;
    print!("rolled back; ");
    print_status(&s);
    Ok(())
}
