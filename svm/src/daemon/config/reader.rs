//! The tree reader every section shares: the policy crate's [`TreeReader`] (one reader, one
//! message style and one unknown-key rule for the policy document and this configuration), plus
//! the files the configuration names, checked after the walk.

use std::net::SocketAddr;

use policy::tree::TreeReader;
pub(super) use serde_json::Value;

use super::files::{FileRef, Need};

/// A mapping of the configuration tree (YAML read into a JSON tree, duplicate keys rejected).
pub(super) type Mapping = serde_json::Map<String, Value>;

/// Walks the configuration tree: each reader takes its key out of a mapping (so what is left
/// is unknown), records a problem with the key's dotted path and returns `None`, so the walk
/// goes on and every problem is reported at once.
#[derive(Default)]
pub(super) struct Reader {
    pub(super) tree: TreeReader,
    /// Files named by the configuration, checked by [`super::files`] after the walk.
    pub(super) files: Vec<FileRef>,
}

impl Reader {
    pub(super) fn issue(&mut self, key: &str, message: impl Into<String>) {
        self.tree.err(key.to_owned(), message);
    }

    /// Whether `key` holds a value (not absent, not null).
    fn present(map: &Mapping, key: &str) -> bool {
        map.get(key).is_some_and(|v| !v.is_null())
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
        let full = self.required_key(map, key, prefix)?;
        self.file(map, key, &full, need)
    }

    /// The full name of `key` under `prefix` when the key is there; otherwise it is reported
    /// as required (and removed, should it be there with a null value).
    fn required_key(&mut self, map: &mut Mapping, key: &str, prefix: &str) -> Option<String> {
        let full = format!("{prefix}.{key}");
        if !Self::present(map, key) {
            map.remove(key);
            self.issue(&full, "required");
            return None;
        }
        Some(full)
    }

    pub(super) fn string(&mut self, map: &mut Mapping, key: &str, full: &str) -> Option<String> {
        self.tree.get_text(TreeReader::take(map, key), full)
    }

    pub(super) fn uint(
        &mut self,
        map: &mut Mapping,
        key: &str,
        full: &str,
        lo: u64,
        hi: u64,
    ) -> Option<u64> {
        self.tree
            .get_integer(TreeReader::take(map, key).as_ref(), full, lo, hi)
    }

    pub(super) fn boolean(&mut self, map: &mut Mapping, key: &str, full: &str) -> Option<bool> {
        self.tree
            .get_bool(TreeReader::take(map, key).as_ref(), full)
    }

    pub(super) fn strings(&mut self, map: &mut Mapping, key: &str, full: &str) -> Vec<String> {
        self.tree.get_texts(TreeReader::take(map, key), full)
    }

    pub(super) fn required(
        &mut self,
        map: &mut Mapping,
        key: &str,
        prefix: &str,
    ) -> Option<String> {
        let full = self.required_key(map, key, prefix)?;
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
        if Self::present(map, key) {
            Some(self.section(map, key))
        } else {
            map.remove(key);
            None
        }
    }

    pub(super) fn section(&mut self, map: &mut Mapping, key: &str) -> Mapping {
        self.tree.get_section(TreeReader::take(map, key), key)
    }

    pub(super) fn unknown(&mut self, map: &Mapping, prefix: &str) {
        self.tree.unknown_keys(map, prefix);
    }
}
