//! The tree reader every section shares.

use std::net::SocketAddr;

use serde_norway::{Mapping, Value};

use super::ConfigIssue;
use super::files::{FileRef, Need};

/// Walks the configuration tree: each reader takes its key out of a mapping (so what is left
/// is unknown), records a problem with the key's dotted path and returns `None`, so the walk
/// goes on and every problem is reported at once.
#[derive(Default)]
pub(super) struct Reader {
    pub(super) issues: Vec<ConfigIssue>,
    /// Files named by the configuration, checked by [`super::files`] after the walk.
    pub(super) files: Vec<FileRef>,
}

impl Reader {
    pub(super) fn issue(&mut self, key: &str, message: impl Into<String>) {
        self.issues.push(ConfigIssue {
            key: key.to_owned(),
            message: message.into(),
        });
    }

    /// A string naming a file the daemon will use as `need` says; recorded for the file checks.
    pub(super) fn file(
        &mut self,
        map: &mut Mapping,
        key: &str,
        full: &str,
        need: Need,
    ) -> Option<String> {
        let s = self.string(map, key, full)?;
        self.files.push(FileRef {
            key: full.to_owned(),
            path: s.clone().into(),
            need,
        });
        Some(s)
    }

    /// [`Reader::required`] for a file.
    pub(super) fn required_file(
        &mut self,
        map: &mut Mapping,
        key: &str,
        prefix: &str,
        need: Need,
    ) -> Option<String> {
        let full = format!("{prefix}.{key}");
        if !map.contains_key(key) {
            self.issue(&full, "required");
            return None;
        }
        self.file(map, key, &full, need)
    }

    pub(super) fn string(&mut self, map: &mut Mapping, key: &str, full: &str) -> Option<String> {
        match map.remove(key)? {
            Value::String(s) if !s.is_empty() => Some(s),
            Value::String(_) => {
                self.issue(full, "must not be empty");
                None
            }
            other => {
                self.issue(full, format!("expected a string, found {}", kind(&other)));
                None
            }
        }
    }

    pub(super) fn uint(
        &mut self,
        map: &mut Mapping,
        key: &str,
        full: &str,
        lo: u64,
        hi: u64,
    ) -> Option<u64> {
        match map.remove(key)? {
            Value::Number(n) => match n.as_u64() {
                Some(v) if (lo..=hi).contains(&v) => Some(v),
                _ => {
                    self.issue(full, format!("{n} is out of range {lo}..={hi}"));
                    None
                }
            },
            other => {
                self.issue(full, format!("expected an integer, found {}", kind(&other)));
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, map: &mut Mapping, key: &str, full: &str) -> Option<bool> {
        match map.remove(key)? {
            Value::Bool(b) => Some(b),
            other => {
                self.issue(
                    full,
                    format!("expected true or false, found {}", kind(&other)),
                );
                None
            }
        }
    }

    pub(super) fn strings(&mut self, map: &mut Mapping, key: &str, full: &str) -> Vec<String> {
        match map.remove(key) {
            None | Some(Value::Null) => vec![],
            Some(Value::Sequence(items)) => items
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::String(s) if !s.is_empty() => Some(s),
                    other => {
                        self.issue(
                            &format!("{full}[{i}]"),
                            format!("expected a non-empty string, found {}", kind(&other)),
                        );
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.issue(
                    full,
                    format!("expected a list of strings, found {}", kind(&other)),
                );
                vec![]
            }
        }
    }

    pub(super) fn required(
        &mut self,
        map: &mut Mapping,
        key: &str,
        prefix: &str,
    ) -> Option<String> {
        let full = format!("{prefix}.{key}");
        if !map.contains_key(key) {
            self.issue(&full, "required");
            return None;
        }
        self.string(map, key, &full)
    }

    pub(super) fn addr(
        &mut self,
        map: &mut Mapping,
        key: &str,
        prefix: &str,
    ) -> Option<SocketAddr> {
        let full = format!("{prefix}.{key}");
        let s = self.required(map, key, prefix)?;
        match s.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.issue(&full, format!("{s:?} is not an address:port"));
                None
            }
        }
    }

    /// An optional section: None when absent.
    pub(super) fn opt_section(&mut self, map: &mut Mapping, key: &str) -> Option<Mapping> {
        match map.get(key) {
            None | Some(Value::Null) => {
                map.remove(key);
                None
            }
            Some(_) => Some(self.section(map, key)),
        }
    }

    pub(super) fn section(&mut self, map: &mut Mapping, key: &str) -> Mapping {
        match map.remove(key) {
            None | Some(Value::Null) => Mapping::new(),
            Some(Value::Mapping(m)) => m,
            Some(other) => {
                self.issue(key, format!("expected a mapping, found {}", kind(&other)));
                Mapping::new()
            }
        }
    }

    pub(super) fn unknown(&mut self, map: &Mapping, prefix: &str) {
        for k in map.keys() {
            let name = match k {
                Value::String(s) => s.clone(),
                other => format!("{other:?}"),
            };
            let full = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}.{name}")
            };
            self.issue(&full, "unknown key");
        }
    }
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}
