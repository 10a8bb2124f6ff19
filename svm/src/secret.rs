//! Secrets of the configuration (the NSX Manager password): a type that `Debug` never prints,
//! read from a file only the daemon's user can read, or from a systemd credential
//! (`LoadCredential=` / `SetCredentialEncrypted=`: `$CREDENTIALS_DIRECTORY/<name>`).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A secret string: `Debug` shows `Secret(<redacted>)`, there is no `Display`; the value is
/// reached only through [`Secret::expose`], where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

/// Why a secret file was refused (the message names the file and the fix, never the value).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// It cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Group or others may read it.
    #[error(
        "{}: mode {mode:04o} lets group or others read the secret; `chmod 0600` it (or 0400), \
         owned by the daemon's user",
        path.display()
    )]
    Readable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a regular file, or empty.
    #[error("{}: {reason}", path.display())]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// A credential was named but the service manager gave none.
    #[error(
        "$CREDENTIALS_DIRECTORY is not set: a credential is handed over by systemd \
         (LoadCredential={name}:/path in the unit); use password_file outside systemd"
    )]
    NoCredentials {
        /// The credential's name.
        name: String,
    },
    /// A credential name that is not a plain file name.
    #[error("{name:?} is not a credential name (a file name without /)")]
    BadName {
        /// The name.
        name: String,
    },
}

/// Read a secret from `path`: a regular file that neither group nor others may read, not empty;
/// one trailing newline (as `echo` writes) is not part of the secret.
pub fn read_file(path: &Path) -> Result<Secret, SecretError> {
    let meta = std::fs::metadata(path).map_err(|source| SecretError::Read {
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_file() {
        return Err(SecretError::Unusable {
            path: path.to_owned(),
            reason: "not a regular file",
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o044 != 0 {
        return Err(SecretError::Readable {
            path: path.to_owned(),
            mode,
        });
    }
    let mut text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
        path: path.to_owned(),
        source,
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(SecretError::Unusable {
            path: path.to_owned(),
            reason: "empty",
        });
    }
    Ok(Secret(text))
}

/// The file of credential `name` in the service manager's credentials directory (the value of
/// `$CREDENTIALS_DIRECTORY`, passed in so tests need not change the environment).
pub fn credential_path(dir: Option<&OsStr>, name: &str) -> Result<PathBuf, SecretError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(SecretError::BadName {
            name: name.to_owned(),
        });
    }
    match dir.filter(|d| !d.is_empty()) {
        Some(d) => Ok(Path::new(d).join(name)),
        None => Err(SecretError::NoCredentials {
            name: name.to_owned(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::from("hunter2-very-secret");
        let shown = format!("{s:?} {:?}", Some(&s));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn a_private_file_is_read_and_a_readable_one_refused() {
        let d = tempfile::tempdir().unwrap();
        let ok = write(d.path(), "ok", "p&ss word\n", 0o600);
        assert_eq!(read_file(&ok).unwrap().expose(), "p&ss word");
        let ro = write(d.path(), "ro", "crlf\r\n", 0o400);
        assert_eq!(read_file(&ro).unwrap().expose(), "crlf");
        for (name, mode) in [("group", 0o640), ("world", 0o604), ("both", 0o644)] {
            let p = write(d.path(), name, "secret-value", mode);
            let e = read_file(&p).unwrap_err();
            assert!(matches!(e, SecretError::Readable { .. }), "{name}: {e}");
            let text = e.to_string();
            assert!(
                text.contains("chmod 0600") && !text.contains("secret-value"),
                "{text}"
            );
        }
        let empty = write(d.path(), "empty", "\n", 0o600);
        assert!(read_file(&empty).unwrap_err().to_string().contains("empty"));
        assert!(matches!(
            read_file(d.path()).unwrap_err(),
            SecretError::Unusable { .. }
        ));
        assert!(matches!(
            read_file(&d.path().join("missing")).unwrap_err(),
            SecretError::Read { .. }
        ));
    }

    #[test]
    fn credentials_come_from_the_managers_directory() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().as_os_str();
        write(d.path(), "nsx-password", "from-systemd", 0o400);
        let p = credential_path(Some(dir), "nsx-password").unwrap();
        assert_eq!(read_file(&p).unwrap().expose(), "from-systemd");
        let e = credential_path(None, "nsx-password").unwrap_err();
        assert!(
            e.to_string().contains("LoadCredential=nsx-password:"),
            "{e}"
        );
        for bad in ["", "../etc/shadow", ".."] {
            assert!(matches!(
                credential_path(Some(dir), bad).unwrap_err(),
                SecretError::BadName { .. }
            ));
        }
    }
}
