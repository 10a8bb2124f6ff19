//! The Suricata conformance harness: every row of `suricata-verify/INDEX.tsv` is run as one
//! `svm replay <pcap> --rules <each .rules> [args] --eve OUT` and the per-sid alert counts are
//! compared with `expected_alerts` (see `/work/shared/conformance/README.md` and
//! `docs/conformance.md`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// One expectation: `sidN=K`, `any-alert=K`, optionally with a bracketed filter.
#[derive(Debug, Clone)]
pub struct Expect {
    /// `None` for `any-alert`.
    pub sid: Option<u64>,
    /// Expected count.
    pub count: u64,
    /// Filters we check (`pcap_cnt`, `src_ip`, `dest_ip`, `src_port`, `dest_port`, `proto`,
    /// `verdict.action`).
    pub filter: Vec<(String, String)>,
    /// The entry as written.
    pub text: String,
}

/// One case of the index.
#[derive(Debug, Clone)]
pub struct Case {
    /// Folder name.
    pub name: String,
    /// Capture file name.
    pub pcap: String,
    /// Expectations.
    pub expect: Vec<Expect>,
    /// Suricata engine arguments.
    pub args: Vec<String>,
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Case name.
    pub name: String,
    /// Empty when it passed; else one text per failed expectation (or the run error).
    pub problems: Vec<String>,
}

const CHECKED_KEYS: &[&str] = &[
    "pcap_cnt",
    "src_ip",
    "dest_ip",
    "src_port",
    "dest_port",
    "proto",
    "verdict.action",
];

fn unquote_tsv(s: &str) -> String {
    let t = s.trim();
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        t[1..t.len() - 1].replace("\"\"", "\"")
    } else {
        t.to_owned()
    }
}

/// Split on `sep` outside brackets and quotes.
fn split_top(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut cur) = (0i32, false, String::new());
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            '[' | '{' if !quoted => depth += 1,
            ']' | '}' if !quoted => depth -= 1,
            _ => {}
        }
        if c == sep && depth == 0 && !quoted {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The Suricata version the index's expectations are checked against (its README: every case
/// passes on Suricata 8.0.6).
pub const SURICATA_VERSION: (u32, u32, u32) = (8, 0, 6);

/// `8`, `8.0`, `8.0.5` as a version triple (missing parts are 0).
fn version(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.trim().trim_matches('"').split('.');
    let mut part = || it.next().map_or(Some(0), |p| p.trim().parse().ok());
    Some((part()?, part()?, part()?))
}

/// Whether an entry's `{requires:{"min-version":N}}` / `{requires:{"lt-version":N}}` suffix
/// (suricata-verify's per-check version gate) admits [`SURICATA_VERSION`]; an entry without one
/// is always checked.
fn admits(requires: &str) -> bool {
    let gate = |key: &str| {
        let at = requires.find(key)?;
        let rest = requires.get(at + key.len()..)?;
        let rest = rest.trim_start_matches(['"', ':', ' ']);
        let end = rest.find(['}', ',']).unwrap_or(rest.len());
        version(rest.get(..end)?)
    };
    gate("min-version").is_none_or(|v| SURICATA_VERSION >= v)
        && gate("lt-version").is_none_or(|v| SURICATA_VERSION < v)
}

/// Parse `expected_alerts`; entries whose version gate excludes [`SURICATA_VERSION`] are left
/// out.
pub fn parse_expect(field: &str) -> Vec<Expect> {
    let field = unquote_tsv(field);
    split_top(&field, ';')
        .into_iter()
        .filter(|e| !e.trim().is_empty() && e.trim() != "-")
        .filter_map(|e| {
            let mut text = e.trim().to_owned();
            // A trailing `{requires:{...}}`, outside the bracket.
            if text.ends_with('}')
                && let Some(i) = text.find("{requires")
            {
                if !admits(&text[i..]) {
                    return None;
                }
                text.truncate(i);
            }
            let (head, bracket) = match text.find('[') {
                Some(i) => (&text[..i], Some(&text[i + 1..text.len().saturating_sub(1)])),
                None => (text.as_str(), None),
            };
            let (name, count) = head.split_once('=')?;
            let count = count.trim().parse().ok()?;
            let sid = if name == "any-alert" {
                None
            } else {
                Some(name.strip_prefix("sid")?.parse().ok()?)
            };
            let filter = bracket
                .map(|b| {
                    split_top(b, ',')
                        .into_iter()
                        .filter_map(|kv| {
                            let (k, v) = kv.split_once('=')?;
                            let k = k.trim();
                            CHECKED_KEYS
                                .contains(&k)
                                .then(|| (k.to_owned(), v.trim().trim_matches('"').to_owned()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(Expect {
                sid,
                count,
                filter,
                text,
            })
        })
        .collect()
}

/// Read `INDEX.tsv`.
pub fn read_index(dir: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(dir.join("INDEX.tsv")).unwrap_or_default();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    let col = |n: &str| header.iter().position(|h| *h == n);
    let (Some(ct), Some(cp), Some(ce), Some(ca)) = (
        col("test"),
        col("pcap"),
        col("expected_alerts"),
        col("engine_args"),
    ) else {
        return Vec::new();
    };
    let cmin = col("min_version");
    lines
        .filter(|l| !l.trim().is_empty())
        // A case for a later Suricata than the one the index was checked with is left out.
        .filter(|l| {
            let min = cmin.and_then(|i| l.split('\t').nth(i)).unwrap_or("-");
            min == "-" || version(min).is_none_or(|v| SURICATA_VERSION >= v)
        })
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("");
            let args = unquote_tsv(get(ca));
            Case {
                name: get(ct).to_owned(),
                pcap: get(cp).to_owned(),
                expect: parse_expect(get(ce)),
                args: if args == "-" {
                    Vec::new()
                } else {
                    args.split_whitespace().map(str::to_owned).collect()
                },
            }
        })
        .collect()
}

/// Suricata settings the cases pass that svm has no counterpart for, each with why the case runs
/// without it. `svm replay --set` refuses a key it does not know (as the daemon does), so the
/// harness leaves these out by name; any other unknown key still reaches svm and fails its case.
pub const SURICATA_ONLY_SETTINGS: &[(&str, &str)] = &[
    ("stats.decoder-events", "statistics counters only"),
    (
        "spm-algo",
        "Suricata's single-pattern matcher choice; svm has one matcher",
    ),
    (
        "mpm-algo",
        "Suricata's multi-pattern matcher choice; svm has one matcher",
    ),
    ("packet-alert-max", "svm keeps every alert of a packet"),
    (
        "stream.midstream-policy",
        "exception policies are not settings in svm",
    ),
    (
        "exception-policy",
        "exception policies are not settings in svm",
    ),
    (
        "detect.guess-applayer-tx",
        "svm has no transaction guessing",
    ),
];

/// Translate Suricata's engine arguments to `svm replay`'s: drop what is irrelevant
/// (`--runmode=single`, the settings in [`SURICATA_ONLY_SETTINGS`]), expand `${TEST_DIR}`.
pub fn replay_args(case_dir: &Path, args: &[String]) -> Vec<String> {
    let dir = case_dir.display().to_string();
    let mut out = Vec::new();
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        if a.starts_with("--runmode") {
            if a == "--runmode" {
                it.next();
            }
            continue;
        }
        if a == "--set" {
            let suricata_only = it.peek().is_some_and(|kv| {
                let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
                SURICATA_ONLY_SETTINGS.iter().any(|(k, _)| *k == key)
            });
            if suricata_only {
                it.next();
                continue;
            }
        }
        out.push(a.replace("${TEST_DIR}", &dir));
    }
    out
}

fn field_matches(alert: &Value, key: &str, want: &str) -> bool {
    // A dotted key names a nested field (`verdict.action`).
    let value = if key.contains('.') {
        alert.pointer(&format!("/{}", key.replace('.', "/")))
    } else {
        alert.get(key)
    };
    match value {
        // Suricata writes IPv6 addresses in full (`2001:0db8:0000:...`), svm in RFC 5952's
        // short form: addresses compare as addresses.
        Some(Value::String(s)) if key.ends_with("_ip") => {
            match (
                s.parse::<std::net::IpAddr>(),
                want.parse::<std::net::IpAddr>(),
            ) {
                (Ok(a), Ok(b)) => a == b,
                _ => s.eq_ignore_ascii_case(want),
            }
        }
        Some(Value::String(s)) => s.eq_ignore_ascii_case(want),
        Some(Value::Number(n)) => n.to_string() == want,
        _ => false,
    }
}

/// Run one case with the `svm` binary; `work` is a scratch folder.
pub fn run_case(svm: &Path, root: &Path, case: &Case, work: &Path) -> Outcome {
    let dir = root.join(&case.name);
    let mut problems = Vec::new();
    let mut rules: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "rules"))
                .collect()
        })
        .unwrap_or_default();
    rules.sort();
    let eve = work.join(format!("{}.json", case.name));
    // The cases measure the activity scanner: the attack blocker's alerts would add to
    // `any-alert` counts, so it is switched off. Suricata never blocks a host, so `drop` rules
    // terminate (as Suricata's IPS mode drops) instead of blocking their source, which would
    // leave that source's later packets uninspected.
    let policy = work.join("conformance-policy.yaml");
    let text = "attack_blocker:\n  enabled: false\nactivity_scanner:\n  action: terminate\n";
    if let Err(e) = std::fs::write(&policy, text) {
        problems.push(format!("{}: {e}", policy.display()));
    }
    let mut cmd = Command::new(svm);
    cmd.arg("replay")
        .arg(dir.join(&case.pcap))
        .arg("--policy")
        .arg(&policy);
    for r in &rules {
        cmd.arg("--rules").arg(r);
    }
    let yaml = dir.join("suricata.yaml");
    if yaml.exists() {
        cmd.arg("--vars").arg(&yaml);
    }
    cmd.args(replay_args(&dir, &case.args));
    cmd.arg("--eve").arg(&eve);
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            problems.push(format!("cannot run {}: {e}", svm.display()));
            return Outcome {
                name: case.name.clone(),
                problems,
            };
        }
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        problems.push(format!(
            "svm replay failed ({}): {}",
            out.status,
            err.lines().last().unwrap_or("")
        ));
        return Outcome {
            name: case.name.clone(),
            problems,
        };
    }
    let text = std::fs::read_to_string(&eve).unwrap_or_default();
    let alerts: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("event_type").and_then(Value::as_str) == Some("alert"))
        .collect();
    let mut per_sid: BTreeMap<u64, u64> = BTreeMap::new();
    for a in &alerts {
        if let Some(s) = a.pointer("/alert/signature_id").and_then(Value::as_u64) {
            *per_sid.entry(s).or_default() += 1;
        }
    }
    for e in &case.expect {
        let got = alerts
            .iter()
            .filter(|a| {
                e.sid.is_none_or(|sid| {
                    a.pointer("/alert/signature_id").and_then(Value::as_u64) == Some(sid)
                })
            })
            .filter(|a| e.filter.iter().all(|(k, v)| field_matches(a, k, v)))
            .count() as u64;
        if got != e.count {
            let shown: String = e.text.chars().take(60).collect();
            problems.push(format!("{shown}: got {got}"));
        }
    }
    let _ = std::fs::remove_file(&eve);
    Outcome {
        name: case.name.clone(),
        problems,
    }
}

/// Run every case of `root/INDEX.tsv`.
pub fn run_all(svm: &Path, root: &Path, work: &Path) -> Vec<Outcome> {
    read_index(root)
        .iter()
        .map(|c| run_case(svm, root, c, work))
        .collect()
}

/// The conformance folder: `$SVM_SHARED/conformance/suricata-verify`, else `../shared/...`
/// relative to the workspace.
pub fn default_root() -> PathBuf {
    let shared = std::env::var_os("SVM_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    shared.join("conformance/suricata-verify")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn suricata_only_settings_are_left_out_and_others_reach_svm() {
        let dir = Path::new("/cases/x");
        let got = replay_args(
            dir,
            &args(
                "--runmode single -k none --set stats.decoder-events=true --set stream.midstream=true \
                 --set threshold-file=${TEST_DIR}/t.config --set no.such.key=1",
            ),
        );
        assert_eq!(
            got,
            args(
                "-k none --set stream.midstream=true --set threshold-file=/cases/x/t.config \
                 --set no.such.key=1"
            )
        );
    }

    // Addresses compare as addresses (Suricata's full IPv6 form against svm's short one);
    // other fields and a different address do not match.
    #[test]
    fn addresses_compare_as_addresses() {
        let alert: Value = serde_json::json!({
            "src_ip": "2001:db8:85a3::8a2e:370:7334",
            "dest_ip": "10.1.0.2",
            "proto": "TCP",
        });
        assert!(field_matches(
            &alert,
            "src_ip",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334"
        ));
        assert!(!field_matches(
            &alert,
            "src_ip",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7335"
        ));
        assert!(field_matches(&alert, "dest_ip", "10.1.0.2"));
        assert!(!field_matches(&alert, "dest_ip", "10.1.0.20"));
        assert!(field_matches(&alert, "proto", "tcp"));
        assert!(!field_matches(&alert, "proto", "UDP"));
    }

    // suricata-verify's per-check version gates: an entry for Suricata 7 only (`lt-version:
    // 8`) is left out, one for 8 and later is checked, its filter read without the gate.
    #[test]
    fn version_gated_entries() {
        let field = "\"sid1=1[pcap_cnt=9,dns.queries[0].rrname_truncated=true]{requires:{\"\"min-version\"\":8}};\
                     sid1=1[pcap_cnt=9,dns.query[0].rrname_truncated=true]{requires:{\"\"lt-version\"\":8}};\
                     sid2=3{requires:{\"\"min-version\"\":\"\"8.0.7\"\"}};sid3=0\"";
        let parsed = parse_expect(field);
        let texts: Vec<&str> = parsed.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "sid1=1[pcap_cnt=9,dns.queries[0].rrname_truncated=true]",
                "sid3=0"
            ]
        );
        assert_eq!(
            parsed[0].filter,
            vec![("pcap_cnt".to_owned(), "9".to_owned())]
        );
        assert!(admits("{requires:{\"lt-version\":\"8.0.7\"}}"));
        assert!(!admits("{requires:{\"lt-version\":\"8.0.6\"}}"));
        assert!(admits("{requires:{\"min-version\":\"7\"}}"));
    }

    // A dotted filter key reads a nested field; a missing one never matches.
    #[test]
    fn dotted_keys_read_nested_fields() {
        let alert: Value = serde_json::json!({"verdict": {"action": "pass"}});
        assert!(field_matches(&alert, "verdict.action", "pass"));
        assert!(!field_matches(&alert, "verdict.action", "alert"));
        assert!(!field_matches(
            &serde_json::json!({}),
            "verdict.action",
            "pass"
        ));
        let parsed = parse_expect("\"sid1=1[verdict.action=\"\"pass\"\"]\"");
        assert_eq!(
            parsed.first().map(|e| e.filter.clone()),
            Some(vec![("verdict.action".to_owned(), "pass".to_owned())])
        );
    }
}
