//! The bundle file: a plain (uncompressed) tar holding `metadata/root.json`,
//! `metadata/timestamp.json`, `metadata/snapshot.json` and `metadata/targets.json`, then
//! `targets/NAME` for every target, each stored as exactly the bytes its signed length and
//! SHA-256 cover. Metadata comes first so a reader verifies it before it reads a target byte.
//!
//! Reading never trusts a size: a metadata entry larger than its role's cap is refused from its
//! tar header before it is read; a target entry longer or shorter than its signed length is
//! refused before its content is read, and at most the signed length is ever copied out.
//! Only plain files and directories are accepted (no links, devices or absolute names).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;

use sha2::Digest;

use super::DbError;
use super::meta::{Role, cap};
use super::verify::Verified;

/// Where verified targets go while they are read.
pub trait TargetSink {
    /// A writer for target `name` (a safe relative path, see [`super::verify::safe_target_name`]).
    fn open(&mut self, name: &str) -> Result<Box<dyn Write + '_>, DbError>;
}

/// Checks targets and keeps nothing (`svm db verify`).
#[derive(Debug, Default)]
pub struct Discard;

impl TargetSink for Discard {
    fn open(&mut self, _name: &str) -> Result<Box<dyn Write + '_>, DbError> {
        Ok(Box::new(std::io::sink()))
    }
}

/// Writes targets under a directory (staging).
#[derive(Debug)]
pub struct ToDir<'a>(pub &'a Path);

impl TargetSink for ToDir<'_> {
    fn open(&mut self, name: &str) -> Result<Box<dyn Write + '_>, DbError> {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(DbError::io(parent.display()))?;
        }
        let f = std::fs::File::create_new(&path).map_err(DbError::io(path.display()))?;
        Ok(Box::new(std::io::BufWriter::with_capacity(1 << 16, f)))
    }
}

fn bad_tar(e: impl std::fmt::Display) -> DbError {
    DbError::BadBundle(e.to_string())
}

/// Write a bundle: the metadata files, then the targets, in the order given.
pub fn write(
    out: &Path,
    metadata: &[(Role, Vec<u8>)],
    targets: &[(String, Vec<u8>)],
) -> Result<(), DbError> {
    let io = DbError::io(out.display());
    // Written beside the output and renamed over it: a failed build leaves no partial bundle.
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = std::path::PathBuf::from(tmp);
    let f = std::fs::File::create(&tmp).map_err(DbError::io(tmp.display()))?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    fn add(b: &mut tar::Builder<impl Write>, name: String, data: &[u8]) -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        b.append_data(&mut h, name, data)
    }
    let r: std::io::Result<()> = (|| {
        for (role, bytes) in metadata {
            add(&mut b, format!("metadata/{}", role.file()), bytes)?;
        }
        for (name, bytes) in targets {
            add(&mut b, format!("targets/{name}"), bytes)?;
        }
        let w = b.into_inner()?;
        w.into_inner()
            .map_err(std::io::IntoInnerError::into_error)?
            .sync_all()?;
        std::fs::rename(&tmp, out)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.map_err(io)
}

/// Read `path`: collect its metadata, have `check` verify it (once, before the first target),
/// then stream every target through its length and hash checks into `sink`.
pub fn read(
    path: &Path,
    check: impl FnOnce(&BTreeMap<Role, Vec<u8>>) -> Result<Verified, DbError>,
    sink: &mut dyn TargetSink,
) -> Result<Verified, DbError> {
    let f = std::fs::File::open(path).map_err(DbError::io(path.display()))?;
    read_from(std::io::BufReader::with_capacity(1 << 16, f), check, sink)
}

/// [`read`] from any reader.
pub fn read_from(
    r: impl Read,
    check: impl FnOnce(&BTreeMap<Role, Vec<u8>>) -> Result<Verified, DbError>,
    sink: &mut dyn TargetSink,
) -> Result<Verified, DbError> {
    let mut archive = tar::Archive::new(r);
    let mut meta: BTreeMap<Role, Vec<u8>> = BTreeMap::new();
    let mut check = Some(check);
    let mut verified: Option<Verified> = None;
    let mut seen = BTreeSet::new();
    for entry in archive.entries().map_err(bad_tar)? {
        let mut e = entry.map_err(bad_tar)?;
        let name = e
            .path()
            .map_err(bad_tar)?
            .to_str()
            .ok_or_else(|| bad_tar("an entry's name is not UTF-8"))?
            .to_owned();
        let kind = e.header().entry_type();
        if kind.is_dir() && matches!(name.as_str(), "metadata/" | "targets/") {
            continue;
        }
        if !kind.is_file() {
            return Err(bad_tar(format!("{name}: not a plain file")));
        }
        let size = e.size();
        if let Some(file) = name.strip_prefix("metadata/") {
            if verified.is_some() {
                return Err(bad_tar(format!("{name}: metadata after the first target")));
            }
            let role =
                Role::of_file(file).ok_or_else(|| bad_tar(format!("{name}: unknown metadata")))?;
            if size > cap(role) {
                return Err(DbError::MetadataTooLarge {
                    name: role.file().into(),
                    size,
                    cap: cap(role),
                });
            }
            let mut buf = Vec::new();
            (&mut e)
                .take(cap(role))
                .read_to_end(&mut buf)
                .map_err(bad_tar)?;
            if meta.insert(role, buf).is_some() {
                return Err(bad_tar(format!("{name} appears twice")));
            }
        } else if let Some(target) = name.strip_prefix("targets/") {
            if verified.is_none()
                && let Some(c) = check.take()
            {
                verified = Some(c(&meta)?);
            }
            let Some(v) = verified.as_ref() else {
                return Err(bad_tar("metadata not verified"));
            };
            let info = v
                .targets
                .targets
                .get(target)
                .ok_or_else(|| DbError::UnlistedTarget(target.into()))?;
            if !seen.insert(target.to_owned()) {
                return Err(bad_tar(format!("{name} appears twice")));
            }
            if size > info.length {
                return Err(DbError::TargetTooLong {
                    name: target.into(),
                    declared: info.length,
                    got: size,
                });
            }
            if size < info.length {
                return Err(DbError::TargetTooShort {
                    name: target.into(),
                    declared: info.length,
                    got: size,
                });
            }
            let mut w = sink.open(target)?;
            let (copied, hash) = copy_hashing(&mut (&mut e).take(info.length), &mut w)
                .map_err(DbError::io(format!("target {target}")))?;
            w.flush().map_err(DbError::io(format!("target {target}")))?;
            if copied != info.length {
                return Err(DbError::TargetTooShort {
                    name: target.into(),
                    declared: info.length,
                    got: copied,
                });
            }
            if hash != info.hashes.sha256 {
                return Err(DbError::TargetHash(target.into()));
            }
        } else {
            return Err(bad_tar(format!(
                "{name}: neither under metadata/ nor targets/"
            )));
        }
    }
    let v = match (verified, check) {
        (Some(v), _) => v,
        (None, Some(c)) => c(&meta)?,
        (None, None) => return Err(bad_tar("metadata not verified")),
    };
    if let Some(missing) = v.targets.targets.keys().find(|n| !seen.contains(*n)) {
        return Err(DbError::MissingTarget(missing.clone()));
    }
    Ok(v)
}

fn copy_hashing(r: &mut impl Read, w: &mut impl Write) -> std::io::Result<(u64, String)> {
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf)?;
        let Some(chunk) = buf.get(..k) else { break };
        if chunk.is_empty() {
            break;
        }
        h.update(chunk);
        w.write_all(chunk)?;
        n += k as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}
