//! A bundle's attack blocker definitions: the count and window of the detections that have a
//! threshold, published by the database's vendor as the defaults the admin's policy builds on.
//!
//! The merge rule (docs/databases.md, "Attack blocker definitions"): for each of the six
//! threshold detections, a `count` or `window_secs` the bundle defines replaces svm's built-in
//! default; a value the admin's policy sets to anything other than the built-in default wins
//! over the bundle's. Everything else of the attack blocker (on/off, action, block duration,
//! the switch of each detection, the single-packet detections) is the admin's alone, so a
//! definitions file naming it is refused.
//!
//! The control plane keeps a policy in its canonical form, every field written out, so "set by
//! the admin" is read as "not the built-in default": a policy that sets a value to exactly the
//! built-in default takes the bundle's.

use std::collections::BTreeMap;

use policy::{Detectors, Policy, Threshold};
use serde::{Deserialize, Serialize};

/// The detections a bundle may define: those with a threshold.
pub const DETECTIONS: [&str; 6] = [
    "tcp_port_scan",
    "udp_port_scan",
    "host_sweep",
    "syn_flood",
    "udp_flood",
    "icmp_flood",
];

/// What a bundle defines for one detection (absent: the built-in default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// How many within the window raise the detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// The window in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<u32>,
}

/// A bundle's definitions by detection name (one of [`DETECTIONS`]).
pub type Definitions = BTreeMap<String, Definition>;

fn threshold<'a>(d: &'a Detectors, name: &str) -> Option<&'a Threshold> {
    Some(match name {
        "tcp_port_scan" => &d.tcp_port_scan,
        "udp_port_scan" => &d.udp_port_scan,
        "host_sweep" => &d.host_sweep,
        "syn_flood" => &d.syn_flood,
        "udp_flood" => &d.udp_flood,
        "icmp_flood" => &d.icmp_flood,
        _ => return None,
    })
}

fn threshold_mut<'a>(d: &'a mut Detectors, name: &str) -> Option<&'a mut Threshold> {
    Some(match name {
        "tcp_port_scan" => &mut d.tcp_port_scan,
        "udp_port_scan" => &mut d.udp_port_scan,
        "host_sweep" => &mut d.host_sweep,
        "syn_flood" => &mut d.syn_flood,
        "udp_flood" => &mut d.udp_flood,
        "icmp_flood" => &mut d.icmp_flood,
        _ => return None,
    })
}

/// The keys of mapping `v` (`what` names it in the error), each one of `allowed`.
fn keys<'a>(
    v: &'a serde_norway::Value,
    what: &str,
    allowed: &[&str],
) -> Result<Vec<(&'a str, &'a serde_norway::Value)>, String> {
    let map = v
        .as_mapping()
        .ok_or_else(|| format!("{what} must be a mapping"))?;
    map.iter()
        .map(|(k, v)| match k.as_str() {
            Some(k) if allowed.contains(&k) => Ok((k, v)),
            _ => Err(format!(
                "{what} may hold only {}; got {}",
                allowed.join(", "),
                serde_norway::to_string(k).map_or_else(|_| "?".into(), |s| s.trim().to_owned())
            )),
        })
        .collect()
}

/// Read a definitions file: a policy document holding only `attack_blocker.detectors`, whose
/// detections are threshold detections holding only `count` and `window_secs`, in the policy's
/// ranges. The error names the first problem (with the policy's path for a range).
pub fn parse(text: &str) -> Result<Definitions, String> {
    let doc: serde_norway::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    let mut named: Vec<(String, bool, bool)> = Vec::new();
    for (_, ab) in keys(&doc, "the document", &["attack_blocker"])? {
        for (_, dets) in keys(ab, "attack_blocker", &["detectors"])? {
            for (name, d) in keys(dets, "attack_blocker.detectors", &DETECTIONS)? {
                let fields = keys(
                    d,
                    &format!("attack_blocker.detectors.{name}"),
                    &["count", "window_secs"],
                )?;
                let has = |f: &str| fields.iter().any(|(k, _)| *k == f);
                named.push((name.to_owned(), has("count"), has("window_secs")));
            }
        }
    }
    // The ranges are the policy's own (its errors carry the path).
    let policy = Policy::from_yaml(text).map_err(|e| e.to_string().replace('\n', "; "))?;
    let d = &policy.attack_blocker.detectors;
    Ok(named
        .into_iter()
        .filter_map(|(name, count, window)| {
            let t = threshold(d, &name)?;
            Some((
                name,
                Definition {
                    count: count.then_some(t.count),
                    window_secs: window.then_some(t.window_secs),
                },
            ))
        })
        .collect())
}

/// `admin` with `defs` laid under it: each defined count or window replaces the built-in
/// default where the admin's policy has the built-in default.
pub fn merge(admin: &Policy, defs: &Definitions) -> Policy {
    let builtin = Detectors::default();
    let mut p = admin.clone();
    for (name, def) in defs {
        let (Some(t), Some(b)) = (
            threshold_mut(&mut p.attack_blocker.detectors, name),
            threshold(&builtin, name),
        ) else {
            continue;
        };
        if let Some(c) = def.count
            && t.count == b.count
        {
            t.count = c;
        }
        if let Some(w) = def.window_secs
            && t.window_secs == b.window_secs
        {
            t.window_secs = w;
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_hold_only_threshold_counts_and_windows() {
        let d = parse(
            "attack_blocker:\n  detectors:\n    tcp_port_scan: { count: 5 }\n    \
             syn_flood: { count: 500, window_secs: 2 }\n",
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            d["tcp_port_scan"],
            Definition {
                count: Some(5),
                window_secs: None
            }
        );
        assert_eq!(d["syn_flood"].window_secs, Some(2));
        assert!(parse("").unwrap_err().contains("must be a mapping"));
        for (text, needle) in [
            (
                "mode: monitoring\n",
                "the document may hold only attack_blocker",
            ),
            (
                "attack_blocker:\n  block_minutes: 120\n",
                "attack_blocker may hold only detectors",
            ),
            (
                "attack_blocker:\n  detectors:\n    land: { enabled: false }\n",
                "attack_blocker.detectors may hold only",
            ),
            (
                "attack_blocker:\n  detectors:\n    host_sweep: { enabled: false }\n",
                "attack_blocker.detectors.host_sweep may hold only count, window_secs",
            ),
            (
                "attack_blocker:\n  detectors:\n    host_sweep: { count: 0 }\n",
                "attack_blocker.detectors.host_sweep.count",
            ),
            (
                "attack_blocker:\n  detectors:\n    host_sweep: { window_secs: 3601 }\n",
                "window_secs",
            ),
            ("attack_blocker: [1]\n", "attack_blocker must be a mapping"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_admins_values_win_over_the_bundles_and_the_bundles_over_the_defaults() {
        let defs = parse(
            "attack_blocker:\n  detectors:\n    tcp_port_scan: { count: 5, window_secs: 60 }\n    \
             udp_port_scan: { count: 7 }\n",
        )
        .unwrap();
        let admin = Policy::from_yaml(
            "attack_blocker:\n  detectors:\n    tcp_port_scan: { count: 50 }\n    \
             udp_port_scan: { enabled: false }\n",
        )
        .unwrap();
        let m = merge(&admin, &defs);
        let d = &m.attack_blocker.detectors;
        // The admin's count wins; the bundle's window fills the default one.
        assert_eq!(
            (d.tcp_port_scan.count, d.tcp_port_scan.window_secs),
            (50, 60)
        );
        // The switch is the admin's; the bundle's count is laid under it.
        assert!(!d.udp_port_scan.enabled);
        assert_eq!(d.udp_port_scan.count, 7);
        // Undefined: as the admin's policy says.
        assert_eq!(d.host_sweep, admin.attack_blocker.detectors.host_sweep);
        // Nothing else changes.
        let mut back = m.clone();
        back.attack_blocker.detectors = admin.attack_blocker.detectors;
        assert_eq!(back, admin);
        assert_eq!(merge(&admin, &Definitions::new()), admin);
    }
}
