//! The error-collecting tree reader that the policy document and the daemon's configuration
//! share: text to a JSON tree ([`yaml_tree`], [`json_tree`]: syntax, duplicate keys and depth are
//! the only hard failures), then a walk that records every problem with its dotted path
//! (`attack_blocker.port_scan.threshold`, `dataplane.workers`) and goes on ([`TreeReader`]).
//! Messages name what was expected and echo what was found (shortened), in one style for both
//! documents.

use crate::document::{ECHO_MAX, MAX_LABEL_LEN};
use crate::error::{PolicyError, PolicyErrors};
use core::fmt;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

// ---------------------------------------------------------------------------------------------
// Reading text into a tree

/// A JSON tree read with duplicate keys rejected (serde_json's own `Value` keeps the last one,
/// which would let `mode: standard` hide an earlier `mode: monitoring`).
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-compatible value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Strict::deserialize(d).map(|s| s.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key {}",
                    echo_str(&key)
                )));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

fn syntax_error(kind: &str, e: impl fmt::Display) -> PolicyErrors {
    PolicyErrors(vec![PolicyError {
        path: String::new(),
        message: format!("invalid {kind}: {e}"),
    }])
}

/// Read JSON text into a tree.
pub fn json_tree(text: &str) -> Result<Value, PolicyErrors> {
    serde_json::from_str::<Strict>(text)
        .map(|s| s.0)
        .map_err(|e| syntax_error("JSON", e))
}

/// Read YAML text into a tree. An empty document (or one holding only comments) is `null`.
pub fn yaml_tree(text: &str) -> Result<Value, PolicyErrors> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_norway::from_str::<Strict>(text)
        .map(|s| s.0)
        .map_err(|e| syntax_error("YAML", e))
}

// ---------------------------------------------------------------------------------------------
// Tree to domain types

/// Collects problems during one walk of a tree: every reader records a problem with its path
/// and goes on (returning `None`, or the caller's default), so all of them are reported at once.
#[derive(Debug, Default)]
pub struct TreeReader {
    /// The problems found so far, in the order found.
    pub errors: Vec<PolicyError>,
}

pub fn child(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// A string quoted as JSON would, shortened to [`ECHO_MAX`] characters.
pub(crate) fn echo_str(s: &str) -> String {
    let mut short: String = s.chars().take(ECHO_MAX).collect();
    if short.len() < s.len() {
        short.push('…');
    }
    serde_json::to_string(&short).unwrap_or_default()
}

/// How a value is named in "got ..." messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => echo_str(s),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

/// A field of a mapping, `None` when absent or null.
pub fn field<'v>(map: Option<&'v Map<String, Value>>, name: &str) -> Option<&'v Value> {
    map.and_then(|m| m.get(name)).filter(|v| !v.is_null())
}

impl TreeReader {
    pub fn err(&mut self, path: String, message: impl Into<String>) {
        self.errors.push(PolicyError {
            path,
            message: message.into(),
        });
    }

    /// A mapping with only `known` fields. Unknown fields are reported, with their own path.
    /// Absent or null gives `None` (all defaults); a non-mapping is reported and gives `None`.
    pub fn mapping<'v>(
        &mut self,
        v: Option<&'v Value>,
        path: &str,
        known: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => {
                for key in m.keys() {
                    if !known.contains(&key.as_str()) {
                        self.err(
                            child(path, key),
                            format!("unknown field, expected one of: {}", known.join(", ")),
                        );
                    }
                }
                Some(m)
            }
            Some(other) => {
                self.err(
                    path.to_owned(),
                    format!(
                        "expected a mapping with fields {}, got {}",
                        known.join(", "),
                        describe(other)
                    ),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, v: Option<&Value>, path: String, default: bool) -> bool {
        match v {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.err(
                    path,
                    format!("expected true or false, got {}", describe(other)),
                );
                default
            }
        }
    }

    pub fn integer(
        &mut self,
        v: Option<&Value>,
        path: String,
        lo: u64,
        hi: u64,
        default: u64,
    ) -> u64 {
        match v {
            None => default,
            Some(other) => match other.as_u64() {
                Some(n) if (lo..=hi).contains(&n) => n,
                _ => {
                    self.err(
                        path,
                        format!("expected an integer {lo}..={hi}, got {}", describe(other)),
                    );
                    default
                }
            },
        }
    }

    pub(crate) fn u32_in(
        &mut self,
        v: Option<&Value>,
        path: String,
        lo: u32,
        hi: u32,
        default: u32,
    ) -> u32 {
        let n = self.integer(v, path, u64::from(lo), u64::from(hi), u64::from(default));
        u32::try_from(n).unwrap_or(default)
    }

    pub fn keyword<T: Copy>(
        &mut self,
        v: Option<&Value>,
        path: String,
        choices: &[(&str, T)],
        default: T,
    ) -> T {
        let Some(v) = v else { return default };
        if let Some(s) = v.as_str()
            && let Some((_, t)) = choices.iter().find(|(name, _)| *name == s)
        {
            return *t;
        }
        let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        self.err(
            path,
            format!("expected one of {}, got {}", names.join(", "), describe(v)),
        );
        default
    }

    /// A list of at most `cap` items (`what`: "a list of paths"; `items`: "rule files", for the
    /// messages); `None` (reported unless absent) for anything else.
    pub(crate) fn capped_list<'v>(
        &mut self,
        v: Option<&'v Value>,
        path: &str,
        what: &str,
        items: &str,
        cap: usize,
    ) -> Option<&'v Vec<Value>> {
        match v {
            None => None,
            Some(Value::Array(list)) if list.len() > cap => {
                self.err(
                    path.to_owned(),
                    format!("{} {items}, at most {cap} are allowed", list.len()),
                );
                None
            }
            Some(Value::Array(list)) => Some(list),
            Some(other) => {
                self.err(
                    path.to_owned(),
                    format!("expected {what}, got {}", describe(other)),
                );
                None
            }
        }
    }

    pub fn opt_string(&mut self, v: Option<&Value>, path: String) -> Option<String> {
        match v {
            None => None,
            Some(Value::String(s)) if s.len() > MAX_LABEL_LEN => {
                self.err(
                    path,
                    format!("{} bytes; at most {MAX_LABEL_LEN} are allowed", s.len()),
                );
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.err(path, format!("expected a string, got {}", describe(other)));
                None
            }
        }
    }
}

impl TreeReader {
    /// The value of `key`, taken out of `map` (so what a reader leaves is unknown, see
    /// [`TreeReader::unknown_keys`]); `None` when absent or null.
    pub fn take(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
        map.remove(key).filter(|v| !v.is_null())
    }

    /// A boolean, `None` (reported) for anything else or absent (not reported).
    pub fn get_bool(&mut self, v: Option<&Value>, path: &str) -> Option<bool> {
        match v? {
            Value::Bool(b) => Some(*b),
            other => {
                self.err(
                    path.to_owned(),
                    format!("expected true or false, got {}", describe(other)),
                );
                None
            }
        }
    }

    /// An integer in `lo..=hi`, `None` (reported) for anything else or absent (not reported).
    pub fn get_integer(&mut self, v: Option<&Value>, path: &str, lo: u64, hi: u64) -> Option<u64> {
        let v = v?;
        match v.as_u64() {
            Some(n) if (lo..=hi).contains(&n) => Some(n),
            _ => {
                self.err(
                    path.to_owned(),
                    format!("expected an integer {lo}..={hi}, got {}", describe(v)),
                );
                None
            }
        }
    }

    /// A non-empty string, `None` (reported) for anything else or absent (not reported).
    pub fn get_text(&mut self, v: Option<Value>, path: &str) -> Option<String> {
        match v? {
            Value::String(s) if !s.is_empty() => Some(s),
            Value::String(_) => {
                self.err(path.to_owned(), "must not be empty");
                None
            }
            other => {
                self.err(
                    path.to_owned(),
                    format!("expected a string, got {}", describe(&other)),
                );
                None
            }
        }
    }

    /// A list of non-empty strings (absent: empty); each bad item reported with its index.
    pub fn get_texts(&mut self, v: Option<Value>, path: &str) -> Vec<String> {
        match v {
            None => vec![],
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::String(s) if !s.is_empty() => Some(s),
                    other => {
                        self.err(
                            format!("{path}[{i}]"),
                            format!("expected a non-empty string, got {}", describe(&other)),
                        );
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.err(
                    path.to_owned(),
                    format!("expected a list of strings, got {}", describe(&other)),
                );
                vec![]
            }
        }
    }

    /// A mapping to walk by taking keys out of it (absent: empty); anything else reported.
    pub fn get_section(&mut self, v: Option<Value>, path: &str) -> Map<String, Value> {
        match v {
            None => Map::new(),
            Some(Value::Object(m)) => m,
            Some(other) => {
                self.err(
                    path.to_owned(),
                    format!("expected a mapping, got {}", describe(&other)),
                );
                Map::new()
            }
        }
    }

    /// Every key a walk left in `map` (the readers took the known ones) is unknown: reported
    /// with its own path.
    pub fn unknown_keys(&mut self, map: &Map<String, Value>, path: &str) {
        for k in map.keys() {
            self.err(child(path, k), "unknown key");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    /// The take-out walk the daemon's configuration uses: each problem has its path, null is
    /// absent, and what no reader took is an unknown key with its own path.
    #[test]
    fn a_take_out_walk_reports_every_problem_with_its_path() {
        let tree = yaml_tree("a: {n: 70000, on: yes, list: [x, \"\", 3], s: ~}\nb: 1\n").unwrap();
        let Value::Object(mut root) = tree else {
            panic!("a mapping")
        };
        let mut r = TreeReader::default();
        let mut a = r.get_section(TreeReader::take(&mut root, "a"), "a");
        assert_eq!(
            r.get_integer(TreeReader::take(&mut a, "n").as_ref(), "a.n", 1, 65535),
            None
        );
        assert_eq!(
            r.get_bool(TreeReader::take(&mut a, "on").as_ref(), "a.on"),
            None
        );
        assert_eq!(
            r.get_texts(TreeReader::take(&mut a, "list"), "a.list"),
            ["x"]
        );
        assert_eq!(r.get_text(TreeReader::take(&mut a, "s"), "a.s"), None);
        r.unknown_keys(&root, "");
        let got: Vec<(&str, &str)> = r
            .errors
            .iter()
            .map(|e| (e.path.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("a.n", "expected an integer 1..=65535, got 70000"),
                ("a.on", "expected true or false, got \"yes\""),
                ("a.list[1]", "expected a non-empty string, got \"\""),
                ("a.list[2]", "expected a non-empty string, got 3"),
                ("b", "unknown key"),
            ]
        );
    }
}
