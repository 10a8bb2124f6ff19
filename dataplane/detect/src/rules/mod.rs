//! Network Activity Scanner: the Suricata/Snort rule language and its matching engine.
//!
//! # Loading
//! [`RuleSetBuilder`] takes variables ([`Vars`], Suricata's `suricata.yaml` defaults),
//! classes ([`Classifications`], built-in list or a `classification.config`) and an optional
//! [`ThresholdConfig`]; then rule files or texts. Every rule either loads or is skipped with a
//! [`RuleError`] naming its line, sid and keyword ([`FileReport`]); one bad rule never stops a
//! file. A second rule with the same `gid:sid` is skipped unless its `rev` is higher, in which
//! case it replaces the first (Suricata's duplicate handling). [`RuleSetBuilder::build`]
//! compiles an immutable [`RuleSet`] (`Send + Sync`; share it as `Arc<RuleSet>`).
//!
//! # Matching
//! ```text
//! RuleSet::inspect(&PacketView, &dyn Buffers, &mut FlowRuleState, &mut ThresholdState,
//!                  Timestamp, &mut Vec<RuleMatch>)
//! ```
//! - [`PacketView`]: header facts, L4 payload, [`FlowView`] (has_flow, established, to_server),
//!   app-layer protocol. [`Buffers`]: the stream buffer and app-layer fields (`http.uri`, ...).
//! - Signature groups ([`group`]): each flow direction is classified once (protocol, flow facts,
//!   address classes such as `$HOME_NET`/`$EXTERNAL_NET`, port classes) and gets the rules whose
//!   header and `flow` options can accept it, compiled on first use into per-buffer prefilters
//!   and cached; [`FlowRuleState`] keeps the handle per direction.
//! - Candidates: in the group, one multi-pattern matcher ([`mpm`]) per buffer kind over each
//!   rule's fast pattern (`fast_pattern` if given, else the longest non-negated content;
//!   case-insensitive, verified exactly later). Rules with no usable content are evaluated for
//!   every packet of their group; IP-only rules (addresses and protocol only) are evaluated once
//!   per flow direction (every packet when `has_flow` is false), as Suricata does.
//! - Verification: header (protocol, addresses, ports, `<>`; only the protocol when the group
//!   already proves the rest), `flow`, packet keywords, flowbit conditions, then each buffer
//!   chain ([`detect`]).
//! - Order: `pass` > `drop` > `reject` > `alert` (Suricata's default action order), flowbit
//!   setters before checkers, then priority. A matching `pass` rule ends inspection of the
//!   packet; an IP-only `pass` also ends it for the rest of the flow.
//! - Flowbits change only when the whole rule matched, so later rules in the same packet see them.
//!   Hostbits ([`hostbits`]) likewise, kept per address in the worker's [`ThresholdState`].
//! - Output: every match is returned; [`RuleMatch::alert`] is false for `pass`, `noalert`,
//!   suppressed and thresholded matches, whose action (drop) the caller still applies.
//! - Payload without a sticky buffer: the stream buffer for TCP when the caller supplies one
//!   (`tcp-stream` rules: only then), else the packet payload (`tcp-pkt` rules: always).
//! - App-layer header protocols (`http`, `tls`, `dns`) need `PacketView::app_proto` to agree.

pub mod ast;
pub mod classification;
pub mod detect;
pub mod engine;
pub mod group;
pub mod hostbits;
pub mod iponly;
pub mod mpm;
pub mod packet;
pub mod parser;
pub mod pcre;
pub mod runtime;
pub mod threshold;
pub mod trie;
pub mod vars;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub use ast::{AppProto, BufferKind, KindSet, Rule, RuleAction, RuleProto, Side};
pub use classification::Classifications;
pub use engine::{
    ActionOrder, Buffers, FlowCounts, FlowRuleState, FlowView, NoBuffers, PacketView, PartStats,
    RuleMatch, RuleSet,
};
pub use parser::{RuleError, RuleErrorKind};
pub use threshold::{ThresholdConfig, ThresholdState};
pub use vars::Vars;

/// A rule file could not be used at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// What happened to one file's rules.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    /// The file (or label) the rules came from.
    pub source: String,
    /// Rules loaded.
    pub loaded: usize,
    /// Rules skipped, with reasons.
    pub skipped: Vec<RuleError>,
}

impl FileReport {
    /// Skips counted by reason key (see [`reason_key`]), most frequent first.
    pub fn reasons(&self) -> Vec<(String, usize)> {
        reasons_table(self.skipped.iter())
    }
}

/// The table key of a skip: the keyword, plus the kind for non-"unsupported" skips.
pub fn reason_key(e: &RuleError) -> String {
    match &e.kind {
        RuleErrorKind::Unsupported(d) if e.keyword == "pcre" => format!("pcre ({d})"),
        RuleErrorKind::Unsupported(d) if e.keyword == "protocol" || e.keyword == "action" => {
            d.replace('`', "")
        }
        RuleErrorKind::Unsupported(_) => e.keyword.clone(),
        RuleErrorKind::Syntax(_) => format!("{} (syntax)", e.keyword),
        RuleErrorKind::Invalid(_) => format!("{} (invalid)", e.keyword),
        RuleErrorKind::Duplicate => "duplicate sid".to_owned(),
    }
}

/// Count skips by [`reason_key`], most frequent first.
pub fn reasons_table<'a>(errs: impl Iterator<Item = &'a RuleError>) -> Vec<(String, usize)> {
    let mut m: BTreeMap<String, usize> = BTreeMap::new();
    for e in errs {
        *m.entry(reason_key(e)).or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Collects rules from files, then compiles a [`RuleSet`].
#[derive(Debug)]
pub struct RuleSetBuilder {
    vars: Vars,
    classes: Classifications,
    thresholds: ThresholdConfig,
    rules: Vec<Rule>,
    by_id: HashMap<(u32, u32), usize>,
    flowbits: HashMap<String, u32>,
    /// The id the next new flowbit name gets.
    next_flowbit: u32,
    action_order: ActionOrder,
}

impl Default for RuleSetBuilder {
    fn default() -> Self {
        Self::new(Vars::default(), Classifications::default())
    }
}

impl RuleSetBuilder {
    /// A builder with these variables and classes.
    pub fn new(vars: Vars, classes: Classifications) -> Self {
        RuleSetBuilder {
            vars,
            classes,
            thresholds: ThresholdConfig::default(),
            rules: Vec::new(),
            by_id: HashMap::new(),
            flowbits: HashMap::new(),
            next_flowbit: 0,
            action_order: ActionOrder::default(),
        }
    }

    /// The order in which rules of each action are evaluated (default: pass, drop, reject,
    /// alert).
    pub fn set_action_order(&mut self, order: ActionOrder) {
        self.action_order = order;
    }

    /// Give each flowbit name the id it has in `previous`, the set this one replaces (a
    /// reload): flows inspected by the old set hold their bits by id, and a name keeps its
    /// meaning in the new set, as Suricata's flowbits survive a rule reload. Call before
    /// adding rules. New names get ids after the old ones.
    pub fn keep_flowbits_of(&mut self, previous: &RuleSet) {
        let mut old: Vec<(&String, &u32)> = previous.flowbit_names().iter().collect();
        old.sort_unstable_by_key(|(_, id)| **id);
        for (name, id) in old {
            if !self.flowbits.contains_key(name) && !self.flowbits.values().any(|v| v == id) {
                self.flowbits.insert(name.clone(), *id);
                self.next_flowbit = self.next_flowbit.max(id.saturating_add(1));
            }
        }
    }

    /// Variables, to change before adding rules.
    pub fn vars_mut(&mut self) -> &mut Vars {
        &mut self.vars
    }

    /// Classes, to extend before adding rules.
    pub fn classes_mut(&mut self) -> &mut Classifications {
        &mut self.classes
    }

    /// Use this threshold.config (suppress, threshold/event_filter overrides).
    pub fn set_threshold_config(&mut self, cfg: ThresholdConfig) {
        self.thresholds = cfg;
    }

    /// Rules collected so far.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True if no rule has been collected.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Parse rules from text; `source` names it in the report.
    pub fn add_text(&mut self, source: &str, text: &str) -> FileReport {
        let parsed = parse_text(text, &self.vars, &self.classes);
        self.merge(source, parsed)
    }

    /// Read and parse a rule file.
    pub fn add_file(&mut self, path: &Path) -> Result<FileReport, LoadError> {
        let text = read(path)?;
        Ok(self.add_text(&path.display().to_string(), &text))
    }

    /// Read and parse several files on two threads; reports come back in `paths` order and
    /// rules are merged in that order (so duplicate handling is as if loaded one by one).
    pub fn add_files(&mut self, paths: &[&Path]) -> Vec<Result<FileReport, LoadError>> {
        let (vars, classes) = (&self.vars, &self.classes);
        let work = |p: &Path| read(p).map(|t| parse_text(&t, vars, classes));
        // Interleave files between the threads: sizes vary a lot, neighbours less so.
        let odd: Vec<&Path> = paths.iter().skip(1).step_by(2).copied().collect();
        let parsed: Vec<Result<Parsed, LoadError>> = std::thread::scope(|s| {
            let h = s.spawn(|| odd.iter().map(|p| work(p)).collect::<Vec<_>>());
            let even: Vec<_> = paths.iter().step_by(2).map(|p| work(p)).collect();
            let odd_done = h
                .join()
                .unwrap_or_else(|_| odd.iter().map(|p| work(p)).collect());
            let mut v = Vec::with_capacity(paths.len());
            let mut ev = even.into_iter();
            let mut od = odd_done.into_iter();
            for i in 0..paths.len() {
                let next = if i % 2 == 0 { ev.next() } else { od.next() };
                if let Some(x) = next {
                    v.push(x);
                }
            }
            v
        });
        paths
            .iter()
            .zip(parsed)
            .map(|(p, r)| r.map(|parsed| self.merge(&p.display().to_string(), parsed)))
            .collect()
    }

    fn merge(&mut self, source: &str, parsed: Parsed) -> FileReport {
        let mut rep = FileReport {
            source: source.to_owned(),
            ..FileReport::default()
        };
        // Flowbit ids are local to a parse; map them into this builder's table.
        let mut local: Vec<(u32, String)> =
            parsed.flowbits.into_iter().map(|(n, i)| (i, n)).collect();
        local.sort_unstable();
        let remap: Vec<u32> = local
            .into_iter()
            .map(|(_, name)| {
                if let Some(&id) = self.flowbits.get(&name) {
                    return id;
                }
                let id = self.next_flowbit;
                self.next_flowbit = self.next_flowbit.saturating_add(1);
                self.flowbits.insert(name, id);
                id
            })
            .collect();
        for r in parsed.rules {
            let mut rule = match r {
                Ok(rule) => rule,
                Err(e) => {
                    rep.skipped.push(e);
                    continue;
                }
            };
            rule.remap_flowbits(&remap);
            let key = (rule.gid, rule.sid);
            match self.by_id.get(&key).copied() {
                Some(i) => {
                    let dup = RuleError {
                        line: rule.line,
                        sid: Some(rule.sid),
                        keyword: "sid".into(),
                        kind: RuleErrorKind::Duplicate,
                    };
                    if let Some(old) = self.rules.get_mut(i)
                        && rule.rev > old.rev
                    {
                        *old = rule;
                        rep.loaded += 1;
                    }
                    rep.skipped.push(dup);
                }
                None => {
                    self.by_id.insert(key, self.rules.len());
                    self.rules.push(rule);
                    rep.loaded += 1;
                }
            }
        }
        rep
    }

    /// Compile.
    pub fn build(self) -> RuleSet {
        RuleSet::compile(
            self.rules,
            &self.classes,
            self.thresholds,
            self.flowbits,
            &self.action_order,
        )
    }
}

struct Parsed {
    rules: Vec<Result<Rule, RuleError>>,
    flowbits: HashMap<String, u32>,
}

fn read(path: &Path) -> Result<String, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

fn parse_text(text: &str, vars: &Vars, classes: &Classifications) -> Parsed {
    let mut flowbits = HashMap::new();
    let rules = parser::split_rules(text)
        .into_iter()
        .map(|(line, rule_text)| {
            let mut ctx = parser::ParseCtx {
                vars,
                classes,
                flowbits: &mut flowbits,
            };
            parser::parse_rule(&rule_text, line, &mut ctx)
        })
        .collect();
    Parsed { rules, flowbits }
}

#[cfg(test)]
mod tests;
