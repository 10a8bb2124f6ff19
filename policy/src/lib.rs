//! The svm policy: the document the management server pushes, validated into domain types, and
//! compiled into the lookups the dataplane runs per packet.
//!
//! # Documents
//! A policy is a JSON or YAML document (YAML is read into the same tree as JSON, so both accept
//! exactly the same documents). Unknown fields are rejected; missing fields take their defaults,
//! so `{}` and an empty YAML file are [`Policy::default`]. `null` counts as missing. The reference
//! is `docs/policy.md`.
//!
//! # Errors
//! Parsing never stops at the first problem: [`PolicyErrors`] lists every problem with its path
//! (`attack_blocker.detectors.syn_flood.count`, `exclusions[2].address`), and no partial policy
//! is returned. Only a syntax error (or a duplicate key, or nesting deeper than the parser's
//! recursion limit) ends the read early, because the rest of the text has no reliable structure.
//!
//! # Exclusions
//! An ordered list; the first match (lowest index) wins. An exclusion matches a packet whose
//! **source** address is inside its prefix and whose VLAN tag stack its [`VlanMatch`] accepts
//! (Kaspersky's `<source> vlan <ID>` scope). [`ExclusionRule::Default`] placed before a broader
//! rule carves addresses out of it; [`ExclusionRule::DoNotScan`] bypasses every engine;
//! [`ExclusionRule::DoNotBlock`] detects and reports but never blocks.

#![forbid(unsafe_code)]

mod compile;
mod document;
mod error;
pub mod isolation;
mod model;
pub mod protection;
pub mod tree;
mod web;

pub use compile::CompiledPolicy;
pub use document::{MAX_EXCLUSIONS, MAX_NEVER_BLOCK};
pub use error::{LoadError, PolicyError, PolicyErrors};
pub use model::{
    Action, ActivityScanner, AttackBlocker, BlockMinutes, Detectors, Exclusion, ExclusionRule,
    InvalidBlockMinutes, Mode, Policy, RuleId, Tagging, Threshold, Toggle, VlanMatch,
};
pub use protection::{Decode, Direction, Protection, TooDeep, VmProtection};
pub use web::{
    DnsAnswer, MAX_BLOCK_PAGE, MAX_WEB_ITEMS, QuicMode, UrlListRef, WebAction, WebAddressScan,
    is_category,
};

use std::path::Path;

impl Policy {
    /// Parse and validate a JSON document, reporting every problem.
    pub fn from_json(text: &str) -> Result<Policy, PolicyErrors> {
        document::from_tree(&document::json_tree(text)?)
    }

    /// Parse and validate a YAML document, reporting every problem. An empty document is the
    /// default policy.
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyErrors> {
        document::from_tree(&document::yaml_tree(text)?)
    }

    /// Validate a document already read into a JSON tree (e.g. an API request body).
    pub fn from_value(value: &serde_json::Value) -> Result<Policy, PolicyErrors> {
        document::from_tree(value)
    }

    /// Read and validate a policy file: `.json` as JSON, `.yaml`/`.yml` as YAML, anything else as
    /// YAML (which also reads JSON documents).
    pub fn load(path: &Path) -> Result<Policy, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let parsed = if is_json {
            Policy::from_json(&text)
        } else {
            Policy::from_yaml(&text)
        };
        parsed.map_err(|source| LoadError::Invalid {
            path: path.to_owned(),
            source,
        })
    }

    /// The canonical document: every field written out. `Policy::from_json` reads it back to an
    /// equal policy.
    pub fn to_json(&self) -> serde_json::Value {
        document::to_tree(self)
    }
}

impl serde::Serialize for Policy {
    /// Serialises the canonical document ([`Policy::to_json`]).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Policy {
    /// Validates like [`Policy::from_value`]; every problem is joined into one error message.
    /// Prefer [`Policy::from_json`] where the structured [`PolicyErrors`] are wanted.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Policy::from_value(&value).map_err(serde::de::Error::custom)
    }
}

/// Entry point for fuzzing: parse arbitrary bytes as JSON and as YAML; never panics on its own.
///
/// # Panics
/// When a document parses but its canonical form does not read back to the same policy, which
/// would be a bug the fuzzer should report.
pub fn fuzz_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for policy in [Policy::from_json(text), Policy::from_yaml(text)]
        .into_iter()
        .flatten()
    {
        let again = Policy::from_json(&policy.to_json().to_string());
        assert_eq!(
            again.as_ref(),
            Ok(&policy),
            "canonical form did not round-trip"
        );
        let compiled = CompiledPolicy::compile(policy);
        let _ = compiled.exclusion(
            vlan::VlanScope::UNTAGGED,
            std::net::Ipv4Addr::LOCALHOST.into(),
        );
    }
}

#[cfg(test)]
mod tests;
