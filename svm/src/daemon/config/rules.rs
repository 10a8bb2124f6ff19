//! The `rules:` section of the activity scanner.

use std::path::PathBuf;

use super::reader::{Mapping, Value};

use super::RulesSettings;
use super::reader::Reader;
use policy::tree::describe;

/// The `rules:` section. Files are only named here; they are read (and every problem in them
/// reported with these keys) by [`crate::daemon::rules::load`] before any socket is opened.
pub(super) fn read(r: &mut Reader, mut s: Mapping) -> Option<RulesSettings> {
    let p = "rules";
    let files = r.strings(&mut s, "files", "rules.files");
    if files.is_empty() {
        r.issue(
            "rules.files",
            "name at least one rule file or pattern (e.g. /etc/svm/rules/*.rules)",
        );
    }
    let vars_file = r
        .string(&mut s, "vars_file", "rules.vars_file")
        .map(PathBuf::from);
    let address_groups = groups(r, &mut s, "address_groups");
    let port_groups = groups(r, &mut s, "port_groups");
    let threshold_file = r
        .string(&mut s, "threshold_file", "rules.threshold_file")
        .map(PathBuf::from);
    let classification_file = r
        .string(&mut s, "classification_file", "rules.classification_file")
        .map(PathBuf::from);
    let d = dataplane::stream::StreamConfig::default();
    let mut stream = r.section(&mut s, "stream");
    let midstream = r
        .boolean(&mut stream, "midstream", "rules.stream.midstream")
        .unwrap_or(d.midstream);
    let stream_depth = r
        .uint(&mut stream, "depth", "rules.stream.depth", 1, 1 << 32)
        .unwrap_or(d.depth);
    let (lo, hi) = dataplane::stream::MEMCAP_RANGE.into_inner();
    let stream_memcap = r
        .uint(&mut stream, "memcap", "rules.stream.memcap", lo, hi)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(dataplane::stream::DEFAULT_MEMCAP);
    let async_oneside = r
        .boolean(&mut stream, "async_oneside", "rules.stream.async_oneside")
        .unwrap_or(false);
    let inline = r
        .boolean(&mut stream, "inline", "rules.stream.inline")
        .unwrap_or(false);
    let mut urgent = |key: &str, oob: bool, default| {
        let full = format!("rules.stream.{key}");
        match r.string(&mut stream, key, &full) {
            None => default,
            Some(v) => match dataplane::stream::UrgentPolicy::parse(&v)
                .filter(|p| oob || *p != dataplane::stream::UrgentPolicy::Oob)
            {
                Some(p) => p,
                None => {
                    let known = if oob {
                        "inline, oob, gap or drop"
                    } else {
                        "inline, gap or drop"
                    };
                    r.issue(&full, format!("unknown value {v:?} ({known})"));
                    default
                }
            },
        }
    };
    let urgent_policy = urgent("urgent_policy", true, d.urgent);
    let urgent_oob_limit_policy = urgent("urgent_oob_limit_policy", false, d.urgent_oob_limit);
    r.unknown(&stream, "rules.stream");
    let mut tls = r.section(&mut s, "tls");
    let tls_inspect_encrypted = match r
        .string(
            &mut tls,
            "encryption_handling",
            "rules.tls.encryption_handling",
        )
        .as_deref()
    {
        None | Some("default") => false,
        Some("full") => true,
        Some(other) => {
            r.issue(
                "rules.tls.encryption_handling",
                format!("unknown value {other:?} (default or full)"),
            );
            false
        }
    };
    r.unknown(&tls, "rules.tls");
    let mut dns = r.section(&mut s, "dns");
    let mut detection_ports = dataplane::app::DetectionPorts::default();
    for (key, slot) in [
        ("tcp_detection_ports", &mut detection_ports.dns_tcp),
        ("udp_detection_ports", &mut detection_ports.dns_udp),
    ] {
        let full = format!("rules.dns.{key}");
        let text = match dns.remove(key) {
            None => continue,
            Some(Value::String(t)) => t,
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                r.issue(&full, format!("expected ports, got {}", describe(&other)));
                continue;
            }
        };
        match dataplane::app::PortRanges::parse(&text) {
            Some(ports) => *slot = ports,
            None => r.issue(
                &full,
                format!("{text:?}: expected up to 8 ports or ranges (53, \"[53, 1053]\", \"1024:65535\", any)"),
            ),
        }
    }
    r.unknown(&dns, "rules.dns");
    let host_os = host_os_policy(r, &mut s);
    r.unknown(&s, p);
    (!files.is_empty()).then_some(RulesSettings {
        files,
        vars_file,
        address_groups,
        port_groups,
        threshold_file,
        classification_file,
        midstream,
        stream_depth,
        stream_memcap,
        async_oneside,
        files_key: "rules.files",
        inline,
        urgent_policy,
        urgent_oob_limit_policy,
        tls_inspect_encrypted,
        detection_ports,
        host_os,
    })
}

/// `rules.host_os_policy`: OS names (Suricata's `host-os-policy` keys) to lists of addresses
/// or prefixes; every entry is checked, each problem named with its key.
fn host_os_policy(r: &mut Reader, s: &mut Mapping) -> dataplane::stream::HostOsPolicy {
    let full = "rules.host_os_policy";
    let mut h = dataplane::stream::HostOsPolicy::default();
    let m = match s.remove("host_os_policy") {
        None | Some(Value::Null) => return h,
        Some(Value::Object(m)) => m,
        Some(other) => {
            r.issue(
                full,
                format!("expected a mapping, got {}", describe(&other)),
            );
            return h;
        }
    };
    for (os, v) in m {
        let at = format!("{full}.{os}");
        let list: Vec<String> = match v {
            Value::Array(items) => items
                .into_iter()
                .filter_map(|i| match i {
                    Value::String(t) => Some(t),
                    other => {
                        r.issue(
                            &at,
                            format!("expected an address, got {}", describe(&other)),
                        );
                        None
                    }
                })
                .collect(),
            Value::Null => Vec::new(),
            other => {
                r.issue(
                    &at,
                    format!("expected a list of addresses, got {}", describe(&other)),
                );
                continue;
            }
        };
        if let Err(e) = h.add(&os, &list.join(",")) {
            r.issue(&at, e.to_string());
        }
    }
    h
}

/// `rules.address_groups` / `rules.port_groups`: variable names to values (strings, or numbers
/// for ports).
fn groups(r: &mut Reader, s: &mut Mapping, key: &str) -> Vec<(String, String)> {
    let full = format!("rules.{key}");
    let m = match s.remove(key) {
        None | Some(Value::Null) => return vec![],
        Some(Value::Object(m)) => m,
        Some(other) => {
            r.issue(
                &full,
                format!("expected a mapping, got {}", describe(&other)),
            );
            return vec![];
        }
    };
    let mut out = Vec::with_capacity(m.len());
    for (k, v) in m {
        let name = k;
        let at = format!("{full}.{name}");
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            r.issue(&at, "not a variable name (letters, digits and _)");
            continue;
        }
        match v {
            Value::String(t) if !t.trim().is_empty() => out.push((name, t)),
            Value::Number(n) => out.push((name, n.to_string())),
            other => r.issue(
                &at,
                format!(
                    "expected a non-empty string or a number, got {}",
                    describe(&other)
                ),
            ),
        }
    }
    out
}
