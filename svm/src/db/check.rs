//! What a staged set must pass before it is switched in, and what the publisher runs on its own
//! set before signing it (so a bundle `svm db build` writes passes its own checks):
//!
//! - rule files compile with the daemon's strict loading ([`crate::rules_load`]), the bundle's
//!   `classification.config` replacing the built-in classes; a rule with a syntax error refuses
//!   the set (an unsupported keyword or a duplicate only skips the rule, as everywhere in svm);
//! - address lists: every line read by the web address scan's own parser (`webaddr::parse_list`:
//!   an entry, a comment or blank), and no entry a public suffix;
//! - attack blocker definitions: a policy document holding only the threshold detections'
//!   `count` and `window_secs` under `attack_blocker.detectors`, in the policy's ranges
//!   ([`super::attack`]);
//! - `reference.config`: `config reference: NAME URL` lines;
//! - the self-test capture, replayed through one worker with the set's rules and attack blocker
//!   definitions, gives exactly the expected alert counts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dataplane::event::{Engine, EventKind};
use dataplane::io::pcap::Capture;
use dataplane::rules::{RuleErrorKind, RuleSet};
use dataplane::time::Timestamp;
use dataplane::worker::{PacketMeta, VecOutput, Worker, WorkerConfig};
use policy::{CompiledPolicy, Policy};
use serde::{Deserialize, Serialize};

use super::DbError;
use super::meta::{TargetKind, Targets};
use crate::rules_load::{self, RulesSpec, Strictness};

/// The self-test's expected alerts: count by alert key ([`alert_key`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// Alerts by key.
    pub alerts: BTreeMap<String, u64>,
}

/// What a checked set holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Rules loaded.
    pub rules_loaded: usize,
    /// Rules skipped (unsupported keywords, duplicates).
    pub rules_skipped: usize,
    /// Address list entries by category.
    pub lists: BTreeMap<String, usize>,
    /// Alerts the self-test gave (empty without one).
    pub self_test: BTreeMap<String, u64>,
    /// The attack blocker definitions (empty without any); a set installed before they were
    /// recorded here has none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attack_blocker: super::attack::Definitions,
}

/// The key an alert is counted under: `gid:sid` for a rule, `attack_blocker:NAME` for the
/// attack blocker.
pub fn alert_key(a: &dataplane::event::Alert) -> String {
    match a.engine {
        Engine::ActivityScanner => format!("{}:{}", a.gid, a.sid),
        e => format!("{}:{}", e.name(), a.signature),
    }
}

fn content(name: &str, message: impl std::fmt::Display) -> DbError {
    DbError::BadContent {
        name: name.to_owned(),
        message: message.to_string(),
    }
}

fn read_text(dir: &Path, name: &str) -> Result<String, DbError> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(DbError::io(path.display()))?;
    String::from_utf8(bytes).map_err(|_| content(name, "not UTF-8"))
}

/// Entries of an address list as the web address scan reads it (`webaddr::parse_list`, the
/// scan's one parser), or the first line it cannot read; a list that would block a public suffix
/// is refused, as the scan refuses it.
pub fn list_entries(text: &str) -> Result<usize, String> {
    let parsed = webaddr::parse_list(text.as_bytes(), webaddr::Format::Auto);
    if let Some(e) = parsed.errors.first() {
        return Err(e.to_string());
    }
    let info = webaddr::ListInfo {
        id: String::new(),
        category: webaddr::Category::Custom,
        version: String::new(),
    };
    match webaddr::AddressSetBuilder::new().add_list(info, &parsed) {
        Ok(()) => Ok(parsed.entries.len()),
        Err(webaddr::CompileError::PublicSuffix { line, entry, .. }) => Err(format!(
            "line {line}: {entry:?} is a public suffix, which no list may block"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// An address list's category: 1 to 64 of `a-z`, `0-9`, `_`, `-`.
pub fn valid_category(c: &str) -> bool {
    (1..=64).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
}

/// The attack blocker definitions of the target `name` ([`super::attack::parse`]).
pub fn attack_definitions(name: &str, text: &str) -> Result<super::attack::Definitions, DbError> {
    super::attack::parse(text).map_err(|e| content(name, e))
}

fn check_reference(name: &str, text: &str) -> Result<(), DbError> {
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let ok = l
            .strip_prefix("config reference:")
            .map(|rest| rest.split_whitespace().count() == 2)
            .unwrap_or(false);
        if !ok {
            return Err(content(
                name,
                format!("line {}: not `config reference: NAME URL`", i + 1),
            ));
        }
    }
    Ok(())
}

/// Replay `capture` through one worker (mirror attachment, the engine's defaults) with `rules`
/// and `policy`; alerts by key.
pub fn self_test(
    capture: &Path,
    rules: Option<Arc<RuleSet>>,
    policy: Policy,
) -> Result<BTreeMap<String, u64>, DbError> {
    let cap = Capture::load(capture).map_err(|e| DbError::SelfTest(e.to_string()))?;
    if cap.stats.truncated {
        return Err(DbError::SelfTest(
            "the capture ends inside a record".to_owned(),
        ));
    }
    // The one block table, its keeper driven between frames on packet time as replay does.
    let dataplane::shared_blocks::SharedBlocks {
        mut keeper,
        mut clients,
        ..
    } = dataplane::shared_blocks::SharedBlocks::with_workers(1);
    let mut worker = Worker::new(
        WorkerConfig::default(),
        Arc::new(CompiledPolicy::compile(policy)),
        clients.remove(0),
    );
    worker.set_rules(rules);
    let mut out = VecOutput::default();
    let mut counts = BTreeMap::new();
    let mut last = Timestamp(0);
    let mut count = |out: &mut VecOutput| {
        for ev in out.events.drain(..) {
            if let EventKind::Alert(a) = &ev.kind {
                *counts.entry(alert_key(a)).or_insert(0u64) += 1;
            }
        }
        out.injected.clear();
    };
    for (n, (ts, frame)) in cap.iter().enumerate() {
        last = ts;
        keeper.expire(ts, &mut |_| {});
        keeper.publish();
        worker.process(
            frame,
            PacketMeta {
                ts,
                pcap_cnt: n as u64 + 1,
            },
            &mut out,
        );
        keeper.drain(&mut |_| {});
        keeper.publish();
        count(&mut out);
    }
    worker.flush_streams(last, &mut out);
    count(&mut out);
    Ok(counts)
}

fn of_kind(targets: &Targets, kind: TargetKind) -> Vec<&String> {
    targets
        .targets
        .iter()
        .filter(|(_, t)| t.custom.kind == kind)
        .map(|(n, _)| n)
        .collect()
}

fn at_most_one(targets: &Targets, kind: TargetKind) -> Result<Option<&String>, DbError> {
    match of_kind(targets, kind).as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        [first, ..] => Err(content(first, format!("more than one {kind:?} target"))),
    }
}

/// Check the set staged under `dir` (targets at `dir/NAME`). A self-test capture needs its
/// expected counts unless `publishing` (the publisher's own run, which measures them).
pub fn check_set(dir: &Path, targets: &Targets, publishing: bool) -> Result<Report, DbError> {
    check_set_keeping(dir, targets, publishing, None).map(|(report, _)| report)
}

/// [`check_set`] that also returns the compiled rules, built as the replacement of `previous`
/// (its flowbit ids kept): a daemon whose rules are the set's alone swaps in this very build.
pub fn check_set_keeping(
    dir: &Path,
    targets: &Targets,
    publishing: bool,
    previous: Option<&RuleSet>,
) -> Result<(Report, Option<rules_load::Loaded>), DbError> {
    let mut report = Report::default();
    for (name, t) in &targets.targets {
        if t.custom.kind == TargetKind::UrlList {
            let category = t.custom.category.as_deref().unwrap_or("");
            if !valid_category(category) {
                return Err(content(name, format!("bad category {category:?}")));
            }
            let n = list_entries(&read_text(dir, name)?).map_err(|e| content(name, e))?;
            *report.lists.entry(category.to_owned()).or_insert(0) += n;
        } else if t.custom.category.is_some() {
            return Err(content(name, "only an address list has a category"));
        }
    }
    if let Some(name) = at_most_one(targets, TargetKind::Reference)? {
        check_reference(name, &read_text(dir, name)?)?;
    }
    if let Some(name) = at_most_one(targets, TargetKind::AttackBlocker)? {
        report.attack_blocker = attack_definitions(name, &read_text(dir, name)?)?;
    }
    // The self-test runs the definitions over the built-in defaults.
    let policy = super::attack::merge(&Policy::default(), &report.attack_blocker);
    let rule_files: Vec<PathBuf> = of_kind(targets, TargetKind::Rules)
        .into_iter()
        .map(|n| dir.join(n))
        .collect();
    let classification = at_most_one(targets, TargetKind::Classification)?.map(|n| dir.join(n));
    let loaded = if rule_files.is_empty() {
        None
    } else {
        let spec = RulesSpec {
            files: rule_files,
            classification_file: classification,
            ..RulesSpec::default()
        };
        let built = rules_load::load_after(&spec, Strictness::Strict, previous);
        let loaded = built.map_err(|problems| {
            DbError::Rules(
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        for rep in &loaded.reports {
            if let Some(e) = rep
                .skipped
                .iter()
                .find(|e| matches!(e.kind, RuleErrorKind::Syntax(_)))
            {
                let source = Path::new(&rep.source)
                    .strip_prefix(dir)
                    .map_or(rep.source.clone(), |p| p.display().to_string());
                return Err(DbError::Rules(format!("{source}: {e}")));
            }
        }
        report.rules_loaded = loaded.loaded;
        report.rules_skipped = loaded.skipped;
        Some(loaded)
    };
    let rules = loaded.as_ref().map(|l| Arc::clone(&l.set));
    let capture = at_most_one(targets, TargetKind::SelfTestCapture)?;
    let expected_file = at_most_one(targets, TargetKind::SelfTestExpected)?;
    match (capture, expected_file) {
        (None, None) => {}
        (Some(c), None) if publishing => {
            report.self_test = self_test(&dir.join(c), rules.clone(), policy)?;
        }
        (Some(c), Some(e)) => {
            let want: Expected =
                serde_json::from_str(&read_text(dir, e)?).map_err(|err| content(e, err))?;
            let got = self_test(&dir.join(c), rules.clone(), policy)?;
            if let Some((k, n)) = want
                .alerts
                .iter()
                .find(|(k, n)| got.get(*k).copied().unwrap_or(0) != **n)
            {
                return Err(DbError::SelfTest(format!(
                    "expected {n} alert(s) {k}, got {}",
                    got.get(k).copied().unwrap_or(0)
                )));
            }
            if let Some((k, n)) = got.iter().find(|(k, _)| !want.alerts.contains_key(*k)) {
                return Err(DbError::SelfTest(format!("{n} unexpected alert(s) {k}")));
            }
            report.self_test = got;
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(DbError::SelfTest(
                "the capture and its expected alerts come together".to_owned(),
            ));
        }
    }
    Ok((report, loaded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines_are_read_by_the_scans_parser() {
        let ok = "# comment\n\nevil.example\nhttps://x.example/ca\u{f1}on?q=\u{e9}\n10.0.0.1\n\
                  0.0.0.0 a.example b.example\n||ads.example^\nb\u{fc}cher.example/x\n";
        assert_eq!(list_entries(ok), Ok(7));
        let bad = list_entries("a.example\nb c.example\n").unwrap_err();
        assert!(bad.starts_with("line 2:"), "{bad}");
        let bad = list_entries("a.example\n\n@@||b.example^\n").unwrap_err();
        assert!(bad.starts_with("line 3:"), "{bad}");
        let bad = list_entries("a.example\nco.uk\n").unwrap_err();
        assert!(
            bad.starts_with("line 2:") && bad.contains("public suffix"),
            "{bad}"
        );
        assert!(list_entries(&"a".repeat(webaddr::list::MAX_LINE + 1)).is_err());
        assert!(valid_category("malware") && !valid_category("Malware") && !valid_category(""));
    }
}
