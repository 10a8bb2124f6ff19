//! Loading an activity scanner rule set, the same way for `svm replay --rules` and for the
//! daemon (`rules:` in `svm run`'s configuration, at start and again on SIGHUP).
//!
//! Order: variables (Suricata's defaults, then a `suricata.yaml`'s `vars.address-groups` and
//! `vars.port-groups`, then single definitions; a later definition wins), classes (the built-in
//! list, or a `classification.config` instead of it, as Suricata does), the `threshold.config`
//! (read with those variables), then the rule files in order, compiled into one immutable
//! [`RuleSet`] shared by every worker as an `Arc`.
//!
//! A bad rule never stops a load: it is skipped, with its line, sid and reason in the file's
//! [`FileReport`], and counted. What does stop it is a file that cannot be read. Bad lines of the
//! threshold or classification file, a `suricata.yaml` that is not YAML, and a variable whose
//! value does not compile are warnings for replay ([`Strictness::Lenient`], Suricata's habit:
//! report and go on) and problems for the daemon ([`Strictness::Strict`]: a live appliance must
//! not start with a suppress line silently ignored).
//!
//! [`expand`] turns the daemon's file patterns (paths or globs) into paths; replay takes its
//! paths as the shell expanded them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use dataplane::rules::{
    ActionOrder, Classifications, FileReport, RuleSet, RuleSetBuilder, ThresholdConfig, Vars,
};

/// What to load.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RulesSpec {
    /// Rule files, in load order (a later duplicate `gid:sid` with a higher `rev` wins).
    pub files: Vec<PathBuf>,
    /// A `suricata.yaml` to read `vars.address-groups` / `vars.port-groups` from.
    pub vars_file: Option<PathBuf>,
    /// Address variables (`HOME_NET` = `[10.0.0.0/8]`), applied after the vars file.
    pub address_groups: Vec<(String, String)>,
    /// Port variables (`HTTP_PORTS` = `[80,8080]`), applied after the vars file.
    pub port_groups: Vec<(String, String)>,
    /// A `threshold.config`.
    pub threshold_file: Option<PathBuf>,
    /// A `classification.config`, replacing the built-in classes.
    pub classification_file: Option<PathBuf>,
    /// Suricata's `action-order` (action names); empty: the vars file's `action-order` if it
    /// has one, else the default (pass, drop, reject, alert).
    pub action_order: Vec<String>,
}

/// How strict a load is about files that are readable but partly wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strictness {
    /// Replay: bad threshold/classification lines, an unparsable vars file and bad variable
    /// values are warnings.
    Lenient,
    /// Daemon: they are problems, and nothing is loaded.
    Strict,
}

/// Which input a problem is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// `files[i]` of the spec.
    File(usize),
    /// The vars file.
    VarsFile,
    /// An address variable, by name.
    AddressGroup(String),
    /// A port variable, by name.
    PortGroup(String),
    /// The threshold file.
    ThresholdFile,
    /// The classification file.
    ClassificationFile,
}

/// One problem (or warning) of a load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// What it is about.
    pub input: Input,
    /// What is wrong (file problems name the file).
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A compiled rule set and how it was made.
#[derive(Debug)]
pub struct Loaded {
    /// The rules, for every worker.
    pub set: Arc<RuleSet>,
    /// Rules loaded (after duplicate handling).
    pub loaded: usize,
    /// Rules skipped (unsupported, invalid, duplicate).
    pub skipped: usize,
    /// Seconds spent reading, parsing and compiling.
    pub seconds: f64,
    /// Per file: what loaded, what was skipped and why.
    pub reports: Vec<FileReport>,
    /// Problems that did not stop a lenient load.
    pub warnings: Vec<Problem>,
}

fn yaml_scalar(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Variable definitions, (name, value).
type Groups = Vec<(String, String)>;

/// Address and port groups and the `action-order` list of a `suricata.yaml`;
/// `Err(message)` when it is not YAML.
fn vars_of_yaml(text: &str) -> Result<(Groups, Groups, Vec<String>), String> {
    // Suricata's files start with `%YAML 1.1` and `---`; the YAML parser wants neither.
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('%'))
        .collect::<Vec<_>>()
        .join("\n");
    let doc: serde_norway::Value = serde_norway::from_str(&body).map_err(|e| e.to_string())?;
    let groups = |name: &str| -> Groups {
        doc.get("vars")
            .and_then(|v| v.get(name))
            .and_then(serde_norway::Value::as_mapping)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((yaml_scalar(k)?, yaml_scalar(v)?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let action_order = doc
        .get("action-order")
        .and_then(serde_norway::Value::as_sequence)
        .map(|l| l.iter().filter_map(yaml_scalar).collect())
        .unwrap_or_default();
    Ok((
        groups("address-groups"),
        groups("port-groups"),
        action_order,
    ))
}

/// The `host-os-policy` section of a `suricata.yaml`: (OS name, `[prefix, ...]`) for every OS
/// that lists at least one address; nothing when the text is not YAML or has no such section.
pub fn host_os_of_yaml(text: &str) -> Vec<(String, String)> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('%'))
        .collect::<Vec<_>>()
        .join("\n");
    let Ok(doc) = serde_norway::from_str::<serde_norway::Value>(&body) else {
        return Vec::new();
    };
    doc.get("host-os-policy")
        .and_then(serde_norway::Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let list: Vec<String> =
                        v.as_sequence()?.iter().filter_map(yaml_scalar).collect();
                    let os = yaml_scalar(k)?;
                    (!list.is_empty()).then(|| (os, format!("[{}]", list.join(", "))))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Collects problems; in lenient mode the soft ones become warnings.
struct Issues {
    strict: bool,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Issues {
    /// A file could not be used at all: always a problem.
    fn hard(&mut self, input: Input, message: String) {
        self.problems.push(Problem { input, message });
    }

    /// Readable but partly wrong: a problem only when strict.
    fn soft(&mut self, input: Input, message: String) {
        let p = Problem { input, message };
        if self.strict {
            self.problems.push(p);
        } else {
            self.warnings.push(p);
        }
    }
}

fn read(path: &Path, input: Input, issues: &mut Issues) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) => {
            issues.hard(input, format!("{}: {e}", path.display()));
            None
        }
    }
}

/// The rule variables of `spec`: Suricata's defaults, the vars file's, then `spec`'s own, each
/// of which must compile (a variable that does not would only show as skipped rules; it is
/// named instead); and the action order (`spec`'s, else the vars file's `action-order`).
fn build_vars(spec: &RulesSpec, issues: &mut Issues) -> (Vars, Vec<String>) {
    let mut vars = Vars::default();
    let mut action_order = spec.action_order.clone();
    if let Some(f) = &spec.vars_file
        && let Some(text) = read(f, Input::VarsFile, issues)
    {
        match vars_of_yaml(&text) {
            Ok((addresses, ports, order)) => {
                if action_order.is_empty() {
                    action_order = order;
                }
                for (k, v) in &addresses {
                    vars.set_address(k, v);
                }
                for (k, v) in &ports {
                    vars.set_port(k, v);
                }
            }
            Err(e) => issues.soft(
                Input::VarsFile,
                format!("{}: {e}; variables not read from it", f.display()),
            ),
        }
    }
    for (k, v) in &spec.address_groups {
        vars.set_address(k, v);
    }
    for (k, v) in &spec.port_groups {
        vars.set_port(k, v);
    }
    // A variable that does not compile would only show as skipped rules; name it instead.
    for (k, _) in &spec.address_groups {
        if let Err(e) = vars.address(&format!("${}", k.trim_start_matches('$'))) {
            issues.soft(Input::AddressGroup(k.clone()), e.to_string());
        }
    }
    for (k, _) in &spec.port_groups {
        if let Err(e) = vars.ports(&format!("${}", k.trim_start_matches('$'))) {
            issues.soft(Input::PortGroup(k.clone()), e.to_string());
        }
    }
    (vars, action_order)
}

/// Check only the variables of `spec` (its vars file read, no rule file): every problem.
pub fn check_vars(spec: &RulesSpec) -> Vec<Problem> {
    let mut issues = Issues {
        strict: true,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let _ = build_vars(spec, &mut issues);
    issues.problems
}

/// Load and compile the rules of `spec`. `Err` lists every problem; skipped rules are in the
/// reports, never problems.
pub fn load(spec: &RulesSpec, strictness: Strictness) -> Result<Loaded, Vec<Problem>> {
    load_after(spec, strictness, None)
}

/// [`load`] for a reload: the new set keeps the flowbit ids of `previous`, the set it replaces
/// ([`RuleSetBuilder::keep_flowbits_of`]), so flows inspected by both keep their flowbits.
pub fn load_after(
    spec: &RulesSpec,
    strictness: Strictness,
    previous: Option<&RuleSet>,
) -> Result<Loaded, Vec<Problem>> {
    let t0 = Instant::now();
    let mut issues = Issues {
        strict: strictness == Strictness::Strict,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let (vars, action_order) = build_vars(spec, &mut issues);
    let mut classes = Classifications::default();
    if let Some(f) = &spec.classification_file
        && let Some(text) = read(f, Input::ClassificationFile, &mut issues)
    {
        classes = Classifications::empty();
        for e in classes.merge(&text) {
            issues.soft(Input::ClassificationFile, format!("{}: {e}", f.display()));
        }
    }
    let mut threshold = None;
    if let Some(f) = &spec.threshold_file
        && let Some(text) = read(f, Input::ThresholdFile, &mut issues)
    {
        let (cfg, errs) = ThresholdConfig::parse(&text, &vars);
        for e in &errs {
            issues.soft(Input::ThresholdFile, format!("{}: {e}", f.display()));
        }
        threshold = Some(cfg);
    }
    let mut b = RuleSetBuilder::new(vars, classes);
    if let Some(p) = previous {
        b.keep_flowbits_of(p);
    }
    if let Some(cfg) = threshold {
        b.set_threshold_config(cfg);
    }
    if !action_order.is_empty() {
        match ActionOrder::parse(&action_order) {
            Ok(o) => b.set_action_order(o),
            Err(e) => issues.soft(Input::VarsFile, format!("{e}; default order used")),
        }
    }
    let paths: Vec<&Path> = spec.files.iter().map(PathBuf::as_path).collect();
    let mut reports = Vec::with_capacity(paths.len());
    for (i, r) in b.add_files(&paths).into_iter().enumerate() {
        match r {
            Ok(rep) => reports.push(rep),
            Err(e) => issues.hard(Input::File(i), e.to_string()),
        }
    }
    if !issues.problems.is_empty() {
        return Err(issues.problems);
    }
    let set = b.build();
    Ok(Loaded {
        set: Arc::new(set),
        loaded: reports.iter().map(|r| r.loaded).sum(),
        skipped: reports.iter().map(|r| r.skipped.len()).sum(),
        seconds: t0.elapsed().as_secs_f64(),
        reports,
        warnings: issues.warnings,
    })
}

/// Paths of rule-file patterns: a pattern with `*`, `?` or `[` is a glob (its matches in name
/// order, files only), anything else a path taken as is (a missing one shows when it is read).
/// Returns the paths, for each the index of the pattern it came from, and the patterns that
/// are invalid or match no file, as (index, message).
pub fn expand(patterns: &[String]) -> (Vec<PathBuf>, Vec<usize>, Vec<(usize, String)>) {
    let mut paths = Vec::new();
    let mut origin = Vec::new();
    let mut problems = Vec::new();
    for (i, p) in patterns.iter().enumerate() {
        if !p.contains(['*', '?', '[']) {
            paths.push(PathBuf::from(p));
            origin.push(i);
            continue;
        }
        match glob::glob(p) {
            Err(e) => problems.push((i, format!("{p}: bad pattern: {e}"))),
            Ok(entries) => {
                let mut found: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .filter(|f| f.is_file())
                    .collect();
                found.sort();
                if found.is_empty() {
                    problems.push((i, format!("{p}: matches no file")));
                }
                origin.extend(std::iter::repeat_n(i, found.len()));
                paths.extend(found);
            }
        }
    }
    (paths, origin, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const GOOD: &str = "alert tcp any any -> any 80 (msg:\"a\"; content:\"evil\"; sid:1; rev:1;)\n\
                        alert tcp any any -> any any (msg:\"b\"; nosuchkeyword; sid:2; rev:1;)\n";

    #[test]
    fn rules_load_and_bad_ones_are_skipped_with_reason() {
        let d = tempfile::tempdir().unwrap();
        let f = write(d.path(), "a.rules", GOOD);
        let l = load(
            &RulesSpec {
                files: vec![f],
                ..RulesSpec::default()
            },
            Strictness::Strict,
        )
        .unwrap();
        assert_eq!((l.loaded, l.skipped, l.set.len()), (1, 1, 1));
        let skip = &l.reports[0].skipped[0];
        assert_eq!((skip.line, skip.sid), (2, Some(2)));
        assert!(skip.to_string().contains("nosuchkeyword"), "{skip}");
    }

    #[test]
    fn every_problem_is_reported_and_strictness_decides_soft_ones() {
        let d = tempfile::tempdir().unwrap();
        let good = write(d.path(), "a.rules", GOOD);
        let threshold = write(d.path(), "threshold.config", "suppress gen_id 1\nfoo bar\n");
        let classes = write(
            d.path(),
            "classification.config",
            "config classification: x\n",
        );
        let vars = write(d.path(), "suricata.yaml", "vars: [unclosed\n");
        let spec = RulesSpec {
            files: vec![good, d.path().join("missing.rules")],
            vars_file: Some(vars),
            address_groups: vec![("HOME_NET".into(), "[10.0.0.0/8".into())],
            port_groups: vec![("WEB_PORTS".into(), "$NOPE".into())],
            threshold_file: Some(threshold),
            classification_file: Some(classes),
            ..RulesSpec::default()
        };
        let e = load(&spec, Strictness::Strict).unwrap_err();
        let inputs: Vec<&Input> = e.iter().map(|p| &p.input).collect();
        for want in [
            Input::File(1),
            Input::VarsFile,
            Input::AddressGroup("HOME_NET".into()),
            Input::PortGroup("WEB_PORTS".into()),
            Input::ThresholdFile,
            Input::ClassificationFile,
        ] {
            assert!(inputs.contains(&&want), "{want:?} missing from {e:?}");
        }
        assert!(
            e.iter()
                .any(|p| p.message.contains("missing.rules") && p.input == Input::File(1)),
            "{e:?}"
        );
        // Lenient (replay): only the unreadable file stops the load.
        let e = load(&spec, Strictness::Lenient).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        let mut spec = spec;
        spec.files.truncate(1);
        let l = load(&spec, Strictness::Lenient).unwrap();
        assert_eq!(l.loaded, 1);
        assert!(l.warnings.len() >= 5, "{:?}", l.warnings);
    }

    #[test]
    fn vars_from_file_then_inline_later_wins() {
        let d = tempfile::tempdir().unwrap();
        let rules = write(
            d.path(),
            "a.rules",
            "alert tcp $HOME_NET any -> any $WEB_PORTS (msg:\"x\"; sid:5; rev:1;)\n",
        );
        let vars = write(
            d.path(),
            "suricata.yaml",
            "%YAML 1.1\n---\nvars:\n  address-groups:\n    HOME_NET: \"[192.168.0.0/16]\"\n  \
             port-groups:\n    WEB_PORTS: \"$NOT_DEFINED\"\n",
        );
        let mut spec = RulesSpec {
            files: vec![rules],
            vars_file: Some(vars),
            ..RulesSpec::default()
        };
        // The file's WEB_PORTS does not compile: the rule is skipped.
        let l = load(&spec, Strictness::Strict).unwrap();
        assert_eq!((l.loaded, l.skipped), (0, 1));
        spec.port_groups = vec![("WEB_PORTS".into(), "[80,8080]".into())];
        let l = load(&spec, Strictness::Strict).unwrap();
        assert_eq!((l.loaded, l.skipped), (1, 0));
    }

    // `action-order` comes from the vars file unless the spec gives one; a bad one is a soft
    // problem.
    #[test]
    fn action_order_from_file_or_spec() {
        let d = tempfile::tempdir().unwrap();
        let rules = write(
            d.path(),
            "a.rules",
            "pass tcp any any -> any any (sid:1;)\nalert tcp any any -> any any (sid:2;)\n",
        );
        let yaml = |order: &str| {
            write(
                d.path(),
                "suricata.yaml",
                &format!("%YAML 1.1\n---\naction-order:\n{order}"),
            )
        };
        let first_action = |spec: &RulesSpec| {
            let l = load(spec, Strictness::Lenient).unwrap();
            l.set.rules().first().map(|r| r.action.name())
        };
        let mut spec = RulesSpec {
            files: vec![rules],
            vars_file: Some(yaml("  - drop\n  - alert\n  - reject\n  - pass\n")),
            ..RulesSpec::default()
        };
        assert_eq!(first_action(&spec), Some("alert"));
        spec.action_order = ["pass", "drop", "reject", "alert"]
            .map(String::from)
            .to_vec();
        assert_eq!(first_action(&spec), Some("pass"));
        spec.action_order = Vec::new();
        spec.vars_file = Some(yaml("  - drop\n  - alert\n"));
        assert_eq!(first_action(&spec), Some("pass"));
        assert!(load(&spec, Strictness::Strict).is_err());
    }

    #[test]
    fn globs_expand_in_name_order_and_empty_ones_are_problems() {
        let d = tempfile::tempdir().unwrap();
        let b = write(d.path(), "b.rules", "");
        let a = write(d.path(), "a.rules", "");
        write(d.path(), "notes.txt", "");
        let dir = d.path().display();
        let (paths, origin, problems) = expand(&[
            format!("{dir}/*.rules"),
            format!("{dir}/literal.rules"),
            format!("{dir}/*.none"),
            format!("{dir}/[.rules"),
        ]);
        assert_eq!(paths, vec![a, b, d.path().join("literal.rules")]);
        assert_eq!(origin, vec![0, 0, 1]);
        let idx: Vec<usize> = problems.iter().map(|p| p.0).collect();
        assert_eq!(idx, vec![2, 3], "{problems:?}");
        assert!(problems[0].1.contains("matches no file"));
    }
}
