//! Where the admin CLI finds the daemon and its credentials, as cscli does: a flag wins over an
//! environment variable (`SVM_API`, `SVM_CA`, `SVM_CERT`, `SVM_KEY`), which wins over the CLI
//! configuration file (`--config`, else `$SVM_CLI_CONFIG`, else `/etc/svm/cli.yaml` when it
//! exists), which wins over the built-in defaults. Relative paths in the file are relative to
//! the file's directory.
//!
//! ```yaml
//! api: https://127.0.0.1:8443
//! ca: /etc/svm/api-ca.crt
//! cert: /etc/svm/admin.crt
//! key: /etc/svm/admin.key
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file read when neither `--config` nor `SVM_CLI_CONFIG` names one (ignored if missing).
pub const DEFAULT_FILE: &str = "/etc/svm/cli.yaml";
/// Built-in defaults.
pub const DEFAULT_API: &str = "https://127.0.0.1:8443";
/// Built-in default of `ca`.
pub const DEFAULT_CA: &str = "/etc/svm/api-ca.crt";
/// Built-in default of `cert`.
pub const DEFAULT_CERT: &str = "/etc/svm/admin.crt";
/// Built-in default of `key`.
pub const DEFAULT_KEY: &str = "/etc/svm/admin.key";

/// The CLI configuration file.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// API base URL.
    pub api: Option<String>,
    /// CA of the server's certificate.
    pub ca: Option<PathBuf>,
    /// Client certificate.
    pub cert: Option<PathBuf>,
    /// Client key.
    pub key: Option<PathBuf>,
}

/// What the flags said (each `None` when not given).
#[derive(Debug, Default, Clone)]
pub struct Flags {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--api`.
    pub api: Option<String>,
    /// `--ca`.
    pub ca: Option<PathBuf>,
    /// `--cert`.
    pub cert: Option<PathBuf>,
    /// `--key`.
    pub key: Option<PathBuf>,
}

/// Where and how to connect, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// API base URL.
    pub api: String,
    /// CA of the server's certificate.
    pub ca: PathBuf,
    /// Client certificate.
    pub cert: PathBuf,
    /// Client key.
    pub key: PathBuf,
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("CLI configuration {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid configuration.
    #[error("CLI configuration {}: {reason} (keys: api, ca, cert, key)", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
}

/// Read a configuration file; relative paths become relative to its directory.
pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut cfg: FileConfig = if text.trim().is_empty() {
        FileConfig::default()
    } else {
        serde_norway::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            reason: e.to_string(),
        })?
    };
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    for p in [&mut cfg.ca, &mut cfg.cert, &mut cfg.key]
        .into_iter()
        .flatten()
    {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    Ok(cfg)
}

/// Resolve the endpoint from the flags, the environment (`env` looks a variable up) and the
/// file.
pub fn resolve(
    flags: &Flags,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Endpoint, ConfigError> {
    let file = match (&flags.config, env("SVM_CLI_CONFIG")) {
        (Some(p), _) => read_file(p)?,
        (None, Some(p)) if !p.is_empty() => read_file(Path::new(&p))?,
        _ if Path::new(DEFAULT_FILE).exists() => read_file(Path::new(DEFAULT_FILE))?,
        _ => FileConfig::default(),
    };
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    let path = |flag: &Option<PathBuf>, name: &str, file: Option<PathBuf>, default: &str| {
        flag.clone()
            .or_else(|| var(name).map(PathBuf::from))
            .or(file)
            .unwrap_or_else(|| PathBuf::from(default))
    };
    Ok(Endpoint {
        api: flags
            .api
            .clone()
            .or_else(|| var("SVM_API"))
            .or(file.api)
            .unwrap_or_else(|| DEFAULT_API.to_owned()),
        ca: path(&flags.ca, "SVM_CA", file.ca, DEFAULT_CA),
        cert: path(&flags.cert, "SVM_CERT", file.cert, DEFAULT_CERT),
        key: path(&flags.key, "SVM_KEY", file.key, DEFAULT_KEY),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn flags_win_over_environment_over_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cli.yaml");
        std::fs::write(
            &file,
            "api: https://file:1\nca: certs/ca.crt\ncert: /abs/file.crt\nkey: file.key\n",
        )
        .unwrap();
        let flags = Flags {
            config: Some(file.clone()),
            ..Flags::default()
        };
        let e = resolve(&flags, &env(&[])).unwrap();
        assert_eq!(e.api, "https://file:1");
        assert_eq!(e.ca, dir.path().join("certs/ca.crt"));
        assert_eq!(e.cert, PathBuf::from("/abs/file.crt"));
        assert_eq!(e.key, dir.path().join("file.key"));
        let e = resolve(
            &flags,
            &env(&[("SVM_API", "https://env:2"), ("SVM_KEY", "/env.key")]),
        )
        .unwrap();
        assert_eq!(e.api, "https://env:2");
        assert_eq!(e.key, PathBuf::from("/env.key"));
        assert_eq!(e.cert, PathBuf::from("/abs/file.crt"));
        let flags = Flags {
            api: Some("https://flag:3".into()),
            ..flags
        };
        let e = resolve(&flags, &env(&[("SVM_API", "https://env:2")])).unwrap();
        assert_eq!(e.api, "https://flag:3");
        // The file through SVM_CLI_CONFIG.
        let e = resolve(
            &Flags::default(),
            &env(&[("SVM_CLI_CONFIG", file.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(e.api, "https://file:1");
    }

    #[test]
    fn a_named_file_must_exist_and_be_valid() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Flags {
            config: Some(dir.path().join("none.yaml")),
            ..Flags::default()
        };
        let e = resolve(&missing, &env(&[])).unwrap_err();
        assert!(matches!(e, ConfigError::Io { .. }), "{e}");
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "api: https://x\nserver: oops\n").unwrap();
        let e = read_file(&bad).unwrap_err();
        assert!(e.to_string().contains("server"), "{e}");
    }
}
