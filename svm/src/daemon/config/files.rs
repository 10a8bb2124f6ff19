//! The files a configuration names, checked in the same run as its keys.
//!
//! The walk records every path with the use the daemon makes of it ([`Need`]); [`check`] then
//! tries each the way the daemon will (read the PEM material, open the EVE file for appending),
//! so a missing certificate, an unwritable EVE path and a wrong key are all reported at once,
//! before any port opens. [`super::Config::from_yaml`] does not look at files (tests hand in
//! text that names files that do not exist); [`super::Config::from_yaml_checked`] does.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use super::ConfigIssue;

/// What the daemon does with a named file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The policy file: read and validated with the policy's own messages by
    /// [`crate::daemon::load`], so not checked here.
    Policy,
    /// PEM certificates (a chain or a CA bundle): at least one must be read.
    Certs,
    /// A PEM private key.
    Key,
    /// A secret (`nsx.password_file`): readable, neither group nor others may read it.
    Secret,
    /// PEM certificate revocation lists (`api.crl`): at least one must be read.
    Crl,
    /// A file events are appended to (created when missing): `eve`, `outputs.eve.path`.
    /// Standard output (`-`) needs nothing.
    Append,
    /// A directory the daemon creates when missing (`state_dir`).
    Dir,
}

/// A file named at `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    /// The dotted key.
    pub key: String,
    /// The path as written.
    pub path: PathBuf,
    /// Its use.
    pub need: Need,
}

/// Every problem with the named files, in the order they were named.
pub fn check(files: &[FileRef]) -> Vec<ConfigIssue> {
    files
        .iter()
        .filter_map(|f| {
            problem(&f.path, f.need).map(|message| ConfigIssue {
                key: f.key.clone(),
                message,
            })
        })
        .collect()
}

fn problem(path: &Path, need: Need) -> Option<String> {
    let shown = path.display();
    match need {
        Need::Policy => None,
        Need::Certs => crate::tls::load_certs(path).err().map(|e| e.to_string()),
        Need::Secret => crate::secret::read_file(path).err().map(|e| e.to_string()),
        Need::Crl => crate::tls::load_crls(path).err().map(|e| e.to_string()),
        Need::Key => PrivateKeyDer::from_pem_file(path)
            .err()
            .map(|e| format!("{shown}: no usable private key ({e})")),
        Need::Append if path == Path::new("-") => None,
        Need::Append => appendable(path),
        Need::Dir => match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => None,
            Ok(_) => Some(format!("{shown}: exists and is not a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => creatable(path),
            Err(e) => Some(format!("{shown}: {e}")),
        },
    }
}

/// A missing directory is created at start with its parents: the nearest existing ancestor
/// must be a directory.
fn creatable(dir: &Path) -> Option<String> {
    let mut up = dir.parent();
    while let Some(p) = up {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => return None,
            Ok(_) => {
                return Some(format!(
                    "{}: cannot be created, {} is not a directory",
                    dir.display(),
                    p.display()
                ));
            }
            Err(_) => up = p.parent(),
        }
    }
    None
}

/// Whether `path` can be opened for appending. A missing file is created and removed again,
/// so a configuration that is refused leaves nothing behind; a missing directory is created at
/// start (the writers create the file's parents).
fn appendable(path: &Path) -> Option<String> {
    let shown = path.display();
    let cannot =
        |e: &dyn std::fmt::Display| Some(format!("{shown}: events cannot be written here: {e}"));
    if path.is_dir() {
        return cannot(&"it is a directory");
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if path.exists() || parent.is_none_or(Path::is_dir) {
        return match OpenOptions::new().append(true).open(path) {
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match OpenOptions::new().append(true).create_new(true).open(path) {
                    Ok(_) => std::fs::remove_file(path).err().and_then(|e| cannot(&e)),
                    Err(e) => cannot(&e),
                }
            }
            Err(e) => cannot(&e),
        };
    }
    match parent {
        Some(p) if p.exists() => cannot(&format!("{} is not a directory", p.display())),
        Some(p) => creatable(p).and_then(|m| cannot(&m)),
        None => None,
    }
}
