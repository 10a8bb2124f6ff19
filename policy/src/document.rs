//! Documents to domain types and back.
//!
//! serde stops at the first problem, but an operator fixing a policy wants every problem at once
//! (STYLE 11). So a document is first read into a JSON tree ([`serde_json::Value`]; YAML through
//! serde_norway into the same tree), which only fails on syntax, duplicate keys or excessive
//! nesting. A hand-written walk then converts the tree to domain types, recording each problem
//! with its path and substituting the default so the walk can go on. Each struct is built with a
//! struct literal and written out by an exhaustive destructure, so a new field does not compile
//! until both directions handle it (STYLE 10).
//!
//! A `null` value (in YAML, a key with nothing after it) is treated as absent: the default applies.

use crate::error::PolicyErrors;
use crate::model::{
    Action, ActivityScanner, AttackBlocker, BlockMinutes, Detectors, Exclusion, ExclusionRule,
    Mode, Policy, RuleId, Tagging, Threshold, Toggle, VlanMatch,
};
use crate::tree::echo_str;
pub(crate) use crate::tree::{TreeReader as Walk, child, describe, field, json_tree, yaml_tree};
use crate::web::{
    DnsAnswer, MAX_BLOCK_PAGE, MAX_WEB_ITEMS, QuicMode, UrlListRef, WebAction, WebAddressScan,
    is_category,
};
use ipnet::IpNet;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::net::IpAddr;
use vlan::{VlanId, VlanScope};

/// Most exclusions one policy may hold. The compiled lookup stays fast well past this; the cap
/// bounds the memory a single pushed document can make the appliance commit.
pub const MAX_EXCLUSIONS: usize = 100_000;

/// Most entries in `never_block`: a list of gateways and resolvers, not a second exclusion
/// list (it is searched in order when a block is about to be made).
pub const MAX_NEVER_BLOCK: usize = 4096;

/// Most entries in `activity_scanner.rule_files`, `address_groups` and `port_groups` each.
pub const MAX_RULE_INPUTS: usize = 1000;

/// Longest rule file path or variable value, in bytes.
pub const MAX_RULE_INPUT_LEN: usize = 4096;

/// Longest string echoed back in an error message, in characters.
pub(crate) const ECHO_MAX: usize = 64;

/// Longest label (the policy's `version`, an exclusion's `name`) in bytes: labels are copied
/// into events, and a 15 MB `version` was once accepted and copied into every one.
pub const MAX_LABEL_LEN: usize = 256;

impl Walk {
    fn policy(&mut self, root: &Value) -> Policy {
        let map = self.mapping(
            Some(root),
            "",
            &[
                "version",
                "mode",
                "attack_blocker",
                "activity_scanner",
                "exclusions",
                "tagging",
                "never_block",
                "isolation",
                "web_address_scan",
                "protection",
                "decode",
            ],
        );
        let d = Policy::default();
        Policy {
            version: self.opt_string(field(map, "version"), "version".to_owned()),
            mode: self.keyword(
                field(map, "mode"),
                "mode".to_owned(),
                &[
                    ("standard", Mode::Standard),
                    ("monitoring", Mode::Monitoring),
                ],
                d.mode,
            ),
            attack_blocker: self.attack_blocker(field(map, "attack_blocker"), "attack_blocker"),
            activity_scanner: self
                .activity_scanner(field(map, "activity_scanner"), "activity_scanner"),
            exclusions: self.exclusions(field(map, "exclusions"), "exclusions"),
            tagging: self.tagging(field(map, "tagging"), "tagging"),
            never_block: self.never_block(field(map, "never_block"), "never_block"),
            isolation: self.isolation(field(map, "isolation"), "isolation"),
            web_address_scan: self
                .web_address_scan(field(map, "web_address_scan"), "web_address_scan"),
            protection: self.protection(field(map, "protection"), "protection"),
            decode: self.decode(field(map, "decode"), "decode"),
        }
    }

    fn never_block(&mut self, v: Option<&Value>, path: &str) -> Vec<IpNet> {
        let Some(items) = self.capped_list(
            v,
            path,
            "a list of addresses or prefixes",
            "entries",
            MAX_NEVER_BLOCK,
        ) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.address(Some(item), format!("{path}[{i}]")))
            .collect()
    }

    fn tagging(&mut self, v: Option<&Value>, path: &str) -> Tagging {
        let map = self.mapping(v, path, &["in_monitoring_mode"]);
        let d = Tagging::default();
        Tagging {
            in_monitoring_mode: self.boolean(
                field(map, "in_monitoring_mode"),
                child(path, "in_monitoring_mode"),
                d.in_monitoring_mode,
            ),
        }
    }

    /// An engine's `action`: inform, terminate or terminate_and_block.
    fn action(&mut self, map: Option<&Map<String, Value>>, path: &str, default: Action) -> Action {
        self.keyword(
            field(map, "action"),
            child(path, "action"),
            &[
                ("inform", Action::Inform),
                ("terminate", Action::Terminate),
                ("terminate_and_block", Action::TerminateAndBlock),
            ],
            default,
        )
    }

    fn attack_blocker(&mut self, v: Option<&Value>, path: &str) -> AttackBlocker {
        let map = self.mapping(
            v,
            path,
            &[
                "enabled",
                "action",
                "block_minutes",
                "detectors",
                "block_unverified_sources",
            ],
        );
        let d = AttackBlocker::default();
        let minutes = self.integer(
            field(map, "block_minutes"),
            child(path, "block_minutes"),
            u64::from(BlockMinutes::MIN),
            u64::from(BlockMinutes::MAX),
            u64::from(d.block_minutes.get()),
        );
        AttackBlocker {
            enabled: self.boolean(field(map, "enabled"), child(path, "enabled"), d.enabled),
            action: self.action(map, path, d.action),
            block_minutes: BlockMinutes::try_from(minutes).unwrap_or(d.block_minutes),
            detectors: self.detectors(field(map, "detectors"), &child(path, "detectors")),
            block_unverified_sources: self.boolean(
                field(map, "block_unverified_sources"),
                child(path, "block_unverified_sources"),
                d.block_unverified_sources,
            ),
        }
    }

    fn activity_scanner(&mut self, v: Option<&Value>, path: &str) -> ActivityScanner {
        let map = self.mapping(
            v,
            path,
            &[
                "enabled",
                "action",
                "rule_exclusions",
                "rule_files",
                "address_groups",
                "port_groups",
            ],
        );
        let d = ActivityScanner::default();
        ActivityScanner {
            enabled: self.boolean(field(map, "enabled"), child(path, "enabled"), d.enabled),
            action: self.action(map, path, d.action),
            rule_exclusions: self.rule_ids(
                field(map, "rule_exclusions"),
                &child(path, "rule_exclusions"),
            ),
            rule_files: self.rule_files(field(map, "rule_files"), &child(path, "rule_files")),
            address_groups: self.groups(
                field(map, "address_groups"),
                &child(path, "address_groups"),
                false,
            ),
            port_groups: self.groups(field(map, "port_groups"), &child(path, "port_groups"), true),
        }
    }

    /// A non-empty string of at most [`MAX_RULE_INPUT_LEN`] bytes without NUL.
    fn rule_text(&mut self, v: &Value, path: String, numbers: bool) -> Option<String> {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) if numbers && n.is_u64() => n.to_string(),
            other => {
                self.err(
                    path,
                    format!(
                        "expected {}, got {}",
                        if numbers {
                            "a string or a port number"
                        } else {
                            "a string"
                        },
                        describe(other)
                    ),
                );
                return None;
            }
        };
        if text.trim().is_empty() || text.len() > MAX_RULE_INPUT_LEN || text.contains('\0') {
            self.err(
                path,
                format!("expected 1..={MAX_RULE_INPUT_LEN} bytes of text without NUL"),
            );
            return None;
        }
        Some(text)
    }

    fn rule_files(&mut self, v: Option<&Value>, path: &str) -> Vec<String> {
        let Some(items) =
            self.capped_list(v, path, "a list of paths", "rule files", MAX_RULE_INPUTS)
        else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.rule_text(item, format!("{path}[{i}]"), false))
            .collect()
    }

    /// Rule variables: names as Suricata's (`HOME_NET`: a letter or `_`, then letters, digits,
    /// `_`), values as text (ports may be numbers). The values' syntax is the rule engine's
    /// business: the daemon checks them before it accepts a pushed policy.
    fn groups(&mut self, v: Option<&Value>, path: &str, numbers: bool) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let map = match v {
            None | Some(Value::Null) => return out,
            Some(Value::Object(m)) => m,
            Some(other) => {
                self.err(
                    path.to_owned(),
                    format!(
                        "expected a mapping of variable names to values, got {}",
                        describe(other)
                    ),
                );
                return out;
            }
        };
        if map.len() > MAX_RULE_INPUTS {
            self.err(
                path.to_owned(),
                format!(
                    "{} variables, at most {MAX_RULE_INPUTS} are allowed",
                    map.len()
                ),
            );
            return out;
        }
        for (name, value) in map {
            let p = child(path, name);
            let mut chars = name.chars();
            let well_formed = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !well_formed {
                self.err(
                    p,
                    "a variable name is a letter or _, then letters, digits or _ (no $)",
                );
                continue;
            }
            if let Some(text) = self.rule_text(value, p, numbers) {
                out.insert(name.clone(), text);
            }
        }
        out
    }

    fn rule_ids(&mut self, v: Option<&Value>, path: &str) -> Vec<RuleId> {
        let Some(items) = self.capped_list(v, path, "a list", "rule exclusions", MAX_EXCLUSIONS)
        else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item.as_str().map(str::parse::<RuleId>) {
                Some(Ok(id)) => out.push(id),
                _ => self.err(
                    format!("{path}[{i}]"),
                    format!(
                        "expected \"gid:sid:rev\" (three numbers), got {}",
                        describe(item)
                    ),
                ),
            }
        }
        out
    }

    fn detectors(&mut self, v: Option<&Value>, path: &str) -> Detectors {
        const NAMES: &[&str] = &[
            "tcp_port_scan",
            "udp_port_scan",
            "host_sweep",
            "syn_flood",
            "udp_flood",
            "icmp_flood",
            "land",
            "ping_of_death",
            "teardrop",
            "invalid_tcp_flags",
            "mac_spoofing",
        ];
        let map = self.mapping(v, path, NAMES);
        let d = Detectors::default();
        let th = |w: &mut Self, name: &str, default: Threshold| {
            w.threshold(field(map, name), &child(path, name), default)
        };
        let tcp_port_scan = th(self, "tcp_port_scan", d.tcp_port_scan);
        let udp_port_scan = th(self, "udp_port_scan", d.udp_port_scan);
        let host_sweep = th(self, "host_sweep", d.host_sweep);
        let syn_flood = th(self, "syn_flood", d.syn_flood);
        let udp_flood = th(self, "udp_flood", d.udp_flood);
        let icmp_flood = th(self, "icmp_flood", d.icmp_flood);
        let tg = |w: &mut Self, name: &str, default: Toggle| {
            w.toggle(field(map, name), &child(path, name), default)
        };
        Detectors {
            tcp_port_scan,
            udp_port_scan,
            host_sweep,
            syn_flood,
            udp_flood,
            icmp_flood,
            land: tg(self, "land", d.land),
            ping_of_death: tg(self, "ping_of_death", d.ping_of_death),
            teardrop: tg(self, "teardrop", d.teardrop),
            invalid_tcp_flags: tg(self, "invalid_tcp_flags", d.invalid_tcp_flags),
            mac_spoofing: tg(self, "mac_spoofing", d.mac_spoofing),
        }
    }

    fn threshold(&mut self, v: Option<&Value>, path: &str, d: Threshold) -> Threshold {
        let map = self.mapping(v, path, &["enabled", "count", "window_secs"]);
        Threshold {
            enabled: self.boolean(field(map, "enabled"), child(path, "enabled"), d.enabled),
            count: self.u32_in(
                field(map, "count"),
                child(path, "count"),
                1,
                u32::MAX,
                d.count,
            ),
            window_secs: self.u32_in(
                field(map, "window_secs"),
                child(path, "window_secs"),
                1,
                Threshold::MAX_WINDOW_SECS,
                d.window_secs,
            ),
        }
    }

    fn toggle(&mut self, v: Option<&Value>, path: &str, d: Toggle) -> Toggle {
        let map = self.mapping(v, path, &["enabled"]);
        Toggle {
            enabled: self.boolean(field(map, "enabled"), child(path, "enabled"), d.enabled),
        }
    }

    fn exclusions(&mut self, v: Option<&Value>, path: &str) -> Vec<Exclusion> {
        let Some(items) = self.capped_list(v, path, "a list", "exclusions", MAX_EXCLUSIONS) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.exclusion(item, &format!("{path}[{i}]")))
            .collect()
    }

    fn exclusion(&mut self, v: &Value, path: &str) -> Option<Exclusion> {
        const FIELDS: &[&str] = &["name", "address", "vlan", "rule"];
        let before = self.errors.len();
        let map = match v {
            Value::Object(_) => self.mapping(Some(v), path, FIELDS),
            other => {
                self.err(
                    path.to_owned(),
                    format!(
                        "expected a mapping with fields {}, got {}",
                        FIELDS.join(", "),
                        describe(other)
                    ),
                );
                return None;
            }
        };
        let name = self.opt_string(field(map, "name"), child(path, "name"));
        let address = self.address(field(map, "address"), child(path, "address"));
        let vlan = self.vlan(field(map, "vlan"), child(path, "vlan"));
        let rule = match field(map, "rule") {
            None => {
                self.err(
                    child(path, "rule"),
                    "missing required field: expected one of \"default\", \"do_not_scan\", \"do_not_block\"",
                );
                ExclusionRule::Default
            }
            v => self.keyword(
                v,
                child(path, "rule"),
                &[
                    ("default", ExclusionRule::Default),
                    ("do_not_scan", ExclusionRule::DoNotScan),
                    ("do_not_block", ExclusionRule::DoNotBlock),
                ],
                ExclusionRule::Default,
            ),
        };
        let address = address?;
        (self.errors.len() == before).then_some(Exclusion {
            name,
            address,
            vlan,
            rule,
        })
    }

    pub(crate) fn address(&mut self, v: Option<&Value>, path: String) -> Option<IpNet> {
        const EXPECTED: &str =
            "expected an IP address or prefix such as 10.0.0.1, 10.0.0.0/8 or 2001:db8::/32";
        let Some(v) = v else {
            self.err(path, format!("missing required field: {EXPECTED}"));
            return None;
        };
        let Some(text) = v.as_str() else {
            self.err(path, format!("{EXPECTED}, got {}", describe(v)));
            return None;
        };
        let net = if text.contains('/') {
            text.parse::<IpNet>().ok()
        } else {
            text.parse::<IpAddr>().ok().map(IpNet::from)
        };
        let Some(net) = net else {
            self.err(path, format!("{EXPECTED}, got {}", describe(v)));
            return None;
        };
        if net.trunc() != net {
            self.err(
                path,
                format!(
                    "host bits are set in prefix {net}; did you mean {}?",
                    net.trunc()
                ),
            );
            return None;
        }
        if let IpNet::V6(v6) = net
            && v6.prefix_len() >= 96
            && let Some(v4) = v6.addr().to_ipv4_mapped()
        {
            self.err(
                path,
                format!(
                    "IPv4-mapped address {net} never matches: IPv4 packets are matched by IPv4 \
                     exclusions; write {v4}/{}",
                    v6.prefix_len() - 96
                ),
            );
            return None;
        }
        Some(net)
    }

    pub(crate) fn vlan(&mut self, v: Option<&Value>, path: String) -> VlanMatch {
        let Some(v) = v else { return VlanMatch::Any };
        let parsed = match v {
            Value::Number(n) => n.as_u64().and_then(vlan_from_number),
            Value::String(s) => vlan_from_text(s),
            _ => None,
        };
        parsed.unwrap_or_else(|| {
            self.err(
                path,
                format!(
                    "expected a VLAN: \"any\", \"untagged\", an outer id 0..=4094 (4095 means any), \
                     \"outer.inner\" or \"exact:id\", got {}",
                    describe(v)
                ),
            );
            VlanMatch::Any
        })
    }
}

/// Kaspersky and VMware use VLAN 4095 for "all VLANs" (a trunk port group).
const VLAN_ANY_ID: u64 = 4095;

fn vlan_from_number(n: u64) -> Option<VlanMatch> {
    if n == VLAN_ANY_ID {
        return Some(VlanMatch::Any);
    }
    let id = VlanId::new(u16::try_from(n).ok()?).ok()?;
    Some(VlanMatch::Id(id))
}

fn vlan_from_text(s: &str) -> Option<VlanMatch> {
    if s.eq_ignore_ascii_case("any") {
        return Some(VlanMatch::Any);
    }
    if s.eq_ignore_ascii_case("untagged") || s.eq_ignore_ascii_case("novlan") {
        return Some(VlanMatch::Untagged);
    }
    if let Some(exact) = s.strip_prefix("exact:") {
        let scope: VlanScope = exact.parse().ok()?;
        return Some(if scope.is_untagged() {
            VlanMatch::Untagged
        } else {
            VlanMatch::Stack(scope)
        });
    }
    if s.contains('.') {
        let scope: VlanScope = s.parse().ok()?;
        // "a.b" always has two ids; a single id is an outer match, spelt without the dot.
        return (scope.ids().len() == 2).then_some(VlanMatch::Stack(scope));
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return vlan_from_number(s.parse().ok()?);
    }
    None
}

/// Convert a tree to a policy, reporting every problem.
pub(crate) fn from_tree(root: &Value) -> Result<Policy, PolicyErrors> {
    let mut walk = Walk { errors: Vec::new() };
    let policy = match root {
        // An empty YAML file, or `null`, is the default policy.
        Value::Null => Policy::default(),
        _ => walk.policy(root),
    };
    if walk.errors.is_empty() {
        Ok(policy)
    } else {
        Err(PolicyErrors(walk.errors))
    }
}

// ---------------------------------------------------------------------------------------------
// Domain types to a tree

/// The canonical document: every field written out, exclusion addresses as prefixes.
pub(crate) fn to_tree(policy: &Policy) -> Value {
    let Policy {
        version,
        mode,
        attack_blocker,
        activity_scanner,
        exclusions,
        tagging,
        never_block,
        isolation,
        web_address_scan,
        protection,
        decode,
    } = policy;
    let mut root = Map::new();
    if let Some(version) = version {
        root.insert("version".to_owned(), Value::String(version.clone()));
    }
    root.insert("mode".to_owned(), json!(mode.as_str()));
    root.insert(
        "attack_blocker".to_owned(),
        attack_blocker_tree(attack_blocker),
    );
    let ActivityScanner {
        enabled,
        action,
        rule_exclusions,
        rule_files,
        address_groups,
        port_groups,
    } = activity_scanner;
    root.insert(
        "activity_scanner".to_owned(),
        json!({
            "enabled": enabled,
            "action": action.as_str(),
            "rule_exclusions": rule_exclusions.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "rule_files": rule_files,
            "address_groups": address_groups,
            "port_groups": port_groups,
        }),
    );
    root.insert(
        "exclusions".to_owned(),
        Value::Array(exclusions.iter().map(exclusion_tree).collect()),
    );
    let Tagging { in_monitoring_mode } = tagging;
    root.insert(
        "tagging".to_owned(),
        json!({ "in_monitoring_mode": in_monitoring_mode }),
    );
    root.insert(
        "never_block".to_owned(),
        Value::Array(
            never_block
                .iter()
                .map(|n| Value::String(n.to_string()))
                .collect(),
        ),
    );
    root.insert(
        "isolation".to_owned(),
        crate::isolation::isolation_tree(isolation),
    );
    root.insert(
        "web_address_scan".to_owned(),
        web_address_scan_tree(web_address_scan),
    );
    root.insert(
        "protection".to_owned(),
        crate::protection::protection_tree(protection),
    );
    root.insert("decode".to_owned(), crate::protection::decode_tree(decode));
    Value::Object(root)
}

fn attack_blocker_tree(ab: &AttackBlocker) -> Value {
    let AttackBlocker {
        enabled,
        action,
        block_minutes,
        detectors,
        block_unverified_sources,
    } = ab;
    let Detectors {
        tcp_port_scan,
        udp_port_scan,
        host_sweep,
        syn_flood,
        udp_flood,
        icmp_flood,
        land,
        ping_of_death,
        teardrop,
        invalid_tcp_flags,
        mac_spoofing,
    } = detectors;
    json!({
        "enabled": enabled,
        "action": action.as_str(),
        "block_minutes": block_minutes.get(),
        "detectors": {
            "tcp_port_scan": threshold_tree(tcp_port_scan),
            "udp_port_scan": threshold_tree(udp_port_scan),
            "host_sweep": threshold_tree(host_sweep),
            "syn_flood": threshold_tree(syn_flood),
            "udp_flood": threshold_tree(udp_flood),
            "icmp_flood": threshold_tree(icmp_flood),
            "land": toggle_tree(land),
            "ping_of_death": toggle_tree(ping_of_death),
            "teardrop": toggle_tree(teardrop),
            "invalid_tcp_flags": toggle_tree(invalid_tcp_flags),
            "mac_spoofing": toggle_tree(mac_spoofing),
        },
        "block_unverified_sources": block_unverified_sources,
    })
}

fn threshold_tree(t: &Threshold) -> Value {
    let Threshold {
        enabled,
        count,
        window_secs,
    } = t;
    json!({ "enabled": enabled, "count": count, "window_secs": window_secs })
}

fn toggle_tree(t: &Toggle) -> Value {
    let Toggle { enabled } = t;
    json!({ "enabled": enabled })
}

pub(crate) fn vlan_tree(vlan: &VlanMatch) -> Value {
    match vlan {
        VlanMatch::Id(id) => json!(id.get()),
        other => Value::String(other.to_string()),
    }
}

fn exclusion_tree(e: &Exclusion) -> Value {
    let Exclusion {
        name,
        address,
        vlan,
        rule,
    } = e;
    let mut m = Map::new();
    if let Some(name) = name {
        m.insert("name".to_owned(), Value::String(name.clone()));
    }
    m.insert("address".to_owned(), Value::String(address.to_string()));
    let vlan = match vlan {
        VlanMatch::Id(id) => json!(id.get()),
        other => Value::String(other.to_string()),
    };
    m.insert("vlan".to_owned(), vlan);
    m.insert("rule".to_owned(), json!(rule.as_str()));
    Value::Object(m)
}

// ---------------------------------------------------------------------------------------------
// web_address_scan

impl Walk {
    fn web_address_scan(&mut self, v: Option<&Value>, path: &str) -> WebAddressScan {
        let map = self.mapping(
            v,
            path,
            &[
                "enabled",
                "action",
                "categories",
                "url_lists",
                "trusted",
                "block_page",
                "dns_answer",
                "doh_canary_nxdomain",
                "quic",
            ],
        );
        let d = WebAddressScan::default();
        let categories = self
            .web_strings(field(map, "categories"), &child(path, "categories"))
            .into_iter()
            .filter_map(|(p, s)| {
                if is_category(&s) {
                    Some(s)
                } else {
                    self.err(
                        p,
                        format!(
                            "{}: a category is 1..=64 lowercase letters, digits, '-' or '_'",
                            echo_str(&s)
                        ),
                    );
                    None
                }
            })
            .collect();
        let url_lists = self
            .web_strings(field(map, "url_lists"), &child(path, "url_lists"))
            .into_iter()
            .filter_map(|(p, s)| match s.split_once('=') {
                Some((c, f)) if is_category(c) && !f.trim().is_empty() && !f.contains('\0') => {
                    Some(UrlListRef {
                        category: c.to_owned(),
                        path: f.to_owned(),
                    })
                }
                _ => {
                    self.err(
                        p,
                        format!(
                            "{}: expected \"CATEGORY=PATH\" (a category of lowercase letters, \
                             digits, '-' or '_', and a file on the appliance)",
                            echo_str(&s)
                        ),
                    );
                    None
                }
            })
            .collect();
        let trusted = self
            .web_strings(field(map, "trusted"), &child(path, "trusted"))
            .into_iter()
            .filter_map(|(p, s)| match trusted_problem(&s) {
                None => Some(s),
                Some(m) => {
                    self.err(p, format!("{}: {m}", echo_str(&s)));
                    None
                }
            })
            .collect();
        let block_page = match field(map, "block_page") {
            None => None,
            Some(Value::String(s)) if s.len() > MAX_BLOCK_PAGE || s.contains('\0') => {
                self.err(
                    child(path, "block_page"),
                    format!(
                        "{} bytes; a template is at most {MAX_BLOCK_PAGE} bytes of text without NUL",
                        s.len()
                    ),
                );
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.err(
                    child(path, "block_page"),
                    format!("expected an HTML template, got {}", describe(other)),
                );
                None
            }
        };
        WebAddressScan {
            enabled: self.boolean(field(map, "enabled"), child(path, "enabled"), d.enabled),
            action: self.keyword(
                field(map, "action"),
                child(path, "action"),
                &[("inform", WebAction::Inform), ("block", WebAction::Block)],
                d.action,
            ),
            categories,
            url_lists,
            trusted,
            block_page,
            dns_answer: self.keyword(
                field(map, "dns_answer"),
                child(path, "dns_answer"),
                &[("null", DnsAnswer::Null), ("nxdomain", DnsAnswer::Nxdomain)],
                d.dns_answer,
            ),
            doh_canary_nxdomain: self.boolean(
                field(map, "doh_canary_nxdomain"),
                child(path, "doh_canary_nxdomain"),
                d.doh_canary_nxdomain,
            ),
            quic: self.keyword(
                field(map, "quic"),
                child(path, "quic"),
                &[("inspect", QuicMode::Inspect), ("block", QuicMode::Block)],
                d.quic,
            ),
        }
    }

    /// A list of strings (each at most [`MAX_RULE_INPUT_LEN`] bytes), with the path of each.
    fn web_strings(&mut self, v: Option<&Value>, path: &str) -> Vec<(String, String)> {
        let items = match v {
            None => return Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.err(
                    path.to_owned(),
                    format!("expected a list of strings, got {}", describe(other)),
                );
                return Vec::new();
            }
        };
        if items.len() > MAX_WEB_ITEMS {
            self.err(
                path.to_owned(),
                format!(
                    "{} entries, at most {MAX_WEB_ITEMS} are allowed",
                    items.len()
                ),
            );
            return Vec::new();
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            match item {
                Value::String(s) if !s.trim().is_empty() && s.len() <= MAX_RULE_INPUT_LEN => {
                    out.push((p, s.clone()));
                }
                Value::String(_) => self.err(
                    p,
                    format!("expected 1..={MAX_RULE_INPUT_LEN} bytes of text"),
                ),
                other => self.err(p, format!("expected a string, got {}", describe(other))),
            }
        }
        out
    }
}

/// Why a trusted address cannot be used, if it cannot: it must read as one list entry (a domain,
/// host, URL prefix or IP address) that is not a public suffix.
fn trusted_problem(s: &str) -> Option<String> {
    let parsed = webaddr::parse_list(s.as_bytes(), webaddr::Format::Auto);
    if let Some(e) = parsed.errors.first() {
        return Some(e.kind.to_string());
    }
    let Some(entry) = parsed.entries.first() else {
        return Some("not an address (a comment or a blank line)".to_owned());
    };
    if parsed.entries.len() > 1 {
        return Some("one address per entry".to_owned());
    }
    if entry.kind != webaddr::EntryKind::Ip && webaddr::suffix::is_public_suffix(entry.host()) {
        return Some(format!(
            "{:?} is a public suffix: trusting it would exempt a whole top-level space",
            entry.text
        ));
    }
    None
}

fn web_address_scan_tree(w: &WebAddressScan) -> Value {
    let WebAddressScan {
        enabled,
        action,
        categories,
        url_lists,
        trusted,
        block_page,
        dns_answer,
        doh_canary_nxdomain,
        quic,
    } = w;
    let mut m = Map::new();
    m.insert("enabled".to_owned(), json!(enabled));
    m.insert("action".to_owned(), json!(action.as_str()));
    m.insert("categories".to_owned(), json!(categories));
    m.insert(
        "url_lists".to_owned(),
        json!(
            url_lists
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        ),
    );
    m.insert("trusted".to_owned(), json!(trusted));
    if let Some(page) = block_page {
        m.insert("block_page".to_owned(), Value::String(page.clone()));
    }
    m.insert("dns_answer".to_owned(), json!(dns_answer.as_str()));
    m.insert("doh_canary_nxdomain".to_owned(), json!(doh_canary_nxdomain));
    m.insert("quic".to_owned(), json!(quic.as_str()));
    Value::Object(m)
}
