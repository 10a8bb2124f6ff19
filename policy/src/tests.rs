use super::*;
use proptest::prelude::*;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use vlan::{VlanId, VlanScope};

fn errs(r: Result<Policy, PolicyErrors>) -> PolicyErrors {
    r.expect_err("document should be rejected")
}

fn json_errs(v: serde_json::Value) -> PolicyErrors {
    errs(Policy::from_json(&v.to_string()))
}

fn paths(e: &PolicyErrors) -> Vec<&str> {
    e.iter().map(|e| e.path.as_str()).collect()
}

fn vid(n: u16) -> VlanId {
    VlanId::new(n).unwrap()
}

fn scope(s: &str) -> VlanScope {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn excl(address: &str, vlan: VlanMatch, rule: ExclusionRule) -> Exclusion {
    let address = address.parse().unwrap_or_else(|_| IpNet::from(ip(address)));
    Exclusion {
        name: None,
        address,
        vlan,
        rule,
    }
}

// ---- defaults ---------------------------------------------------------------------------------

#[test]
fn defaults_match_the_reference() {
    let p = Policy::default();
    assert_eq!(p.version, None);
    assert_eq!(p.mode, Mode::Standard);
    assert!(p.exclusions.is_empty());
    let ab = p.attack_blocker;
    assert!(ab.enabled);
    assert_eq!(ab.action, Action::TerminateAndBlock);
    assert_eq!(ab.block_minutes.get(), 60);
    assert_eq!(ab.block_minutes.as_secs(), 3600);
    let d = ab.detectors;
    let on = |count, window_secs| Threshold {
        enabled: true,
        count,
        window_secs,
    };
    assert_eq!(d.tcp_port_scan, on(20, 10));
    assert_eq!(d.udp_port_scan, on(20, 10));
    assert_eq!(d.host_sweep, on(20, 10));
    assert_eq!(d.syn_flood, on(200, 5));
    assert_eq!(d.udp_flood, on(10_000, 1));
    assert_eq!(d.icmp_flood, on(1000, 1));
    for t in [
        d.land,
        d.ping_of_death,
        d.teardrop,
        d.invalid_tcp_flags,
        d.mac_spoofing,
    ] {
        assert!(t.enabled);
    }
}

#[test]
fn empty_documents_are_the_default() {
    assert_eq!(Policy::from_json("{}").unwrap(), Policy::default());
    assert_eq!(Policy::from_json("null").unwrap(), Policy::default());
    assert_eq!(Policy::from_yaml("").unwrap(), Policy::default());
    assert_eq!(
        Policy::from_yaml("# only a comment\n").unwrap(),
        Policy::default()
    );
    assert_eq!(Policy::from_yaml("{}").unwrap(), Policy::default());
    assert_eq!(
        Policy::from_yaml("attack_blocker:\n").unwrap(),
        Policy::default()
    );
}

#[test]
fn block_minutes_range() {
    assert!(BlockMinutes::new(0).is_err());
    assert_eq!(BlockMinutes::new(1).unwrap().get(), 1);
    assert_eq!(BlockMinutes::new(32768).unwrap().as_secs(), 32768 * 60);
    assert!(BlockMinutes::new(32769).is_err());
    assert!(BlockMinutes::try_from(70_000u64).is_err());
    assert_eq!(BlockMinutes::default().get(), 60);
    assert!(serde_json::from_str::<BlockMinutes>("0").is_err());
    assert_eq!(serde_json::from_str::<BlockMinutes>("5").unwrap().get(), 5);
}

#[test]
fn enums_serialise_as_documented() {
    assert_eq!(
        serde_json::to_value(Mode::Monitoring).unwrap(),
        json!("monitoring")
    );
    assert_eq!(
        serde_json::to_value(Action::TerminateAndBlock).unwrap(),
        json!("terminate_and_block")
    );
    assert_eq!(
        serde_json::to_value(ExclusionRule::DoNotScan).unwrap(),
        json!("do_not_scan")
    );
    assert_eq!(
        serde_json::from_value::<Action>(json!("inform")).unwrap(),
        Action::Inform
    );
}

// ---- every field ------------------------------------------------------------------------------

#[test]
fn every_field_is_read() {
    let doc = json!({
        "version": "42",
        "mode": "monitoring",
        "attack_blocker": {
            "enabled": false,
            "action": "terminate",
            "block_minutes": 32768,
            "detectors": {
                "tcp_port_scan": {"enabled": false, "count": 1, "window_secs": 1},
                "udp_port_scan": {"enabled": false, "count": 2, "window_secs": 2},
                "host_sweep": {"enabled": false, "count": 3, "window_secs": 3},
                "syn_flood": {"enabled": false, "count": 4, "window_secs": 4},
                "udp_flood": {"enabled": false, "count": 5, "window_secs": 5},
                "icmp_flood": {"enabled": false, "count": 4294967295u64, "window_secs": 3600},
                "land": {"enabled": false},
                "ping_of_death": {"enabled": false},
                "teardrop": {"enabled": false},
                "invalid_tcp_flags": {"enabled": false},
                "mac_spoofing": {"enabled": false}
            },
            "block_unverified_sources": true
        },
        "exclusions": [
            {"name": "dc", "address": "10.0.0.1", "vlan": 100, "rule": "do_not_block"}
        ],
        "never_block": ["10.0.0.1", "2001:db8::/64"]
    });
    let p = Policy::from_json(&doc.to_string()).unwrap();
    assert_eq!(p.version.as_deref(), Some("42"));
    assert_eq!(p.mode, Mode::Monitoring);
    let ab = p.attack_blocker;
    assert!(!ab.enabled);
    assert_eq!(ab.action, Action::Terminate);
    assert_eq!(ab.block_minutes.get(), 32768);
    assert!(ab.block_unverified_sources);
    assert_eq!(
        p.never_block,
        vec![
            "10.0.0.1/32".parse::<IpNet>().unwrap(),
            "2001:db8::/64".parse().unwrap()
        ]
    );
    let d = ab.detectors;
    let off = |count, window_secs| Threshold {
        enabled: false,
        count,
        window_secs,
    };
    assert_eq!(d.tcp_port_scan, off(1, 1));
    assert_eq!(d.udp_port_scan, off(2, 2));
    assert_eq!(d.host_sweep, off(3, 3));
    assert_eq!(d.syn_flood, off(4, 4));
    assert_eq!(d.udp_flood, off(5, 5));
    assert_eq!(d.icmp_flood, off(u32::MAX, 3600));
    for t in [
        d.land,
        d.ping_of_death,
        d.teardrop,
        d.invalid_tcp_flags,
        d.mac_spoofing,
    ] {
        assert!(!t.enabled);
    }
    assert_eq!(
        p.exclusions,
        vec![Exclusion {
            name: Some("dc".into()),
            address: "10.0.0.1/32".parse().unwrap(),
            vlan: VlanMatch::Id(vid(100)),
            rule: ExclusionRule::DoNotBlock,
        }]
    );
    // And the canonical form is exactly what we read.
    assert_eq!(Policy::from_json(&p.to_json().to_string()).unwrap(), p);
}

#[test]
fn partial_threshold_keeps_that_detectors_defaults() {
    let p = Policy::from_yaml("attack_blocker:\n  detectors:\n    syn_flood:\n      count: 500\n")
        .unwrap();
    assert_eq!(
        p.attack_blocker.detectors.syn_flood,
        Threshold {
            enabled: true,
            count: 500,
            window_secs: 5
        }
    );
    assert_eq!(
        p.attack_blocker.detectors.udp_flood,
        Detectors::default().udp_flood
    );
}

// ---- errors -----------------------------------------------------------------------------------

#[test]
fn four_problems_reported_at_once() {
    let doc = json!({
        "colour": "blue",
        "attack_blocker": {
            "block_minutes": 0,
            "detectors": {"syn_flood": {"count": 0}}
        },
        "exclusions": [
            {"address": "10.0.0.1", "rule": "default"},
            {"address": "10.0.0.300", "rule": "do_not_scan"}
        ]
    });
    let e = json_errs(doc);
    assert_eq!(
        paths(&e),
        vec![
            "colour",
            "attack_blocker.block_minutes",
            "attack_blocker.detectors.syn_flood.count",
            "exclusions[1].address",
        ],
        "{e}"
    );
    assert_eq!(
        e.at("attack_blocker.block_minutes").unwrap().message,
        "expected an integer 1..=32768, got 0"
    );
    assert!(e.at("colour").unwrap().message.starts_with("unknown field"));
    assert!(
        e.at("exclusions[1].address")
            .unwrap()
            .message
            .contains("\"10.0.0.300\"")
    );
    // Display: one line per problem, "path: message".
    let text = e.to_string();
    assert_eq!(text.lines().count(), 4);
    assert!(
        text.lines()
            .any(|l| l == "attack_blocker.block_minutes: expected an integer 1..=32768, got 0")
    );
}

#[test]
fn type_errors_name_the_expected_type() {
    let e = json_errs(json!({"attack_blocker": {"block_minutes": "abc"}}));
    assert_eq!(
        e.to_string(),
        "attack_blocker.block_minutes: expected an integer 1..=32768, got \"abc\""
    );
    let e = json_errs(json!({"attack_blocker": {"enabled": "yes"}}));
    assert_eq!(
        e.to_string(),
        "attack_blocker.enabled: expected true or false, got \"yes\""
    );
    let e = json_errs(json!({"mode": "strict"}));
    assert_eq!(
        e.to_string(),
        "mode: expected one of \"standard\", \"monitoring\", got \"strict\""
    );
    let e = json_errs(json!({"attack_blocker": {"action": 3}}));
    assert_eq!(paths(&e), ["attack_blocker.action"]);
    let e = json_errs(json!({"attack_blocker": []}));
    assert!(
        e.to_string()
            .starts_with("attack_blocker: expected a mapping with fields enabled")
    );
    let e = json_errs(json!({"exclusions": {}}));
    assert_eq!(e.to_string(), "exclusions: expected a list, got a mapping");
    let e = json_errs(json!({"version": 3}));
    assert_eq!(e.to_string(), "version: expected a string, got 3");
    let e = json_errs(json!({"version": "v".repeat(15 << 20)}));
    assert_eq!(
        e.to_string(),
        "version: 15728640 bytes; at most 256 are allowed"
    );
    let e = json_errs(json!({"exclusions": [
        {"name": "n".repeat(257), "address": "10.0.0.1", "vlan": 100, "rule": "do_not_scan"}
    ]}));
    assert_eq!(paths(&e), ["exclusions[0].name"]);
    assert!(
        Policy::from_json(&json!({"version": "v".repeat(256)}).to_string()).is_ok(),
        "256 bytes are allowed"
    );
    let e = json_errs(json!([1]));
    assert_eq!(paths(&e), [""]);
    assert!(e.to_string().starts_with("(document): expected a mapping"));
}

#[test]
fn number_forms_are_checked() {
    for bad in [
        json!(-1),
        json!(60.5),
        json!(32769),
        json!(1e10),
        json!(true),
    ] {
        let e = json_errs(json!({"attack_blocker": {"block_minutes": bad}}));
        assert_eq!(paths(&e), ["attack_blocker.block_minutes"], "{bad}");
    }
    let e =
        json_errs(json!({"attack_blocker": {"detectors": {"host_sweep": {"window_secs": 3601}}}}));
    assert_eq!(
        e.to_string(),
        "attack_blocker.detectors.host_sweep.window_secs: expected an integer 1..=3600, got 3601"
    );
    let e = json_errs(
        json!({"attack_blocker": {"detectors": {"udp_flood": {"count": 4294967296u64}}}}),
    );
    assert_eq!(paths(&e), ["attack_blocker.detectors.udp_flood.count"]);
}

#[test]
fn unknown_fields_everywhere_have_paths() {
    let e = json_errs(json!({
        "attack_blocker": {
            "extra": 1,
            "detectors": {"smurf": {}, "land": {"enabled": true, "count": 3}, "syn_flood": {"rate": 1}}
        },
        "exclusions": [{"address": "::1", "rule": "default", "port": 22}]
    }));
    assert_eq!(
        paths(&e),
        [
            "attack_blocker.extra",
            "attack_blocker.detectors.smurf",
            "attack_blocker.detectors.syn_flood.rate",
            "attack_blocker.detectors.land.count",
            "exclusions[0].port",
        ]
    );
}

#[test]
fn exclusion_errors() {
    let e = json_errs(json!({"exclusions": [
        {"rule": "default"},
        {"address": "10.0.0.1"},
        {"address": "10.0.0.5/24", "rule": "default"},
        {"address": "10.0.0.0/33", "rule": "default"},
        {"address": "10.0.0.1", "rule": "ignore"},
        {"address": "10.0.0.1", "rule": "default", "vlan": 4096},
        {"address": "10.0.0.1", "rule": "default", "vlan": "1.2.3"},
        "10.0.0.1",
        {"address": 167772161, "rule": "default"},
        {"address": "::ffff:10.0.0.1", "rule": "default"},
        {"address": "10.0.0.1", "rule": "default", "name": 7}
    ]}));
    assert_eq!(
        paths(&e),
        [
            "exclusions[0].address",
            "exclusions[1].rule",
            "exclusions[2].address",
            "exclusions[3].address",
            "exclusions[4].rule",
            "exclusions[5].vlan",
            "exclusions[6].vlan",
            "exclusions[7]",
            "exclusions[8].address",
            "exclusions[9].address",
            "exclusions[10].name",
        ],
        "{e}"
    );
    assert!(
        e.at("exclusions[0].address")
            .unwrap()
            .message
            .starts_with("missing required field")
    );
    assert_eq!(
        e.at("exclusions[2].address").unwrap().message,
        "host bits are set in prefix 10.0.0.5/24; did you mean 10.0.0.0/24?"
    );
    assert!(
        e.at("exclusions[9].address")
            .unwrap()
            .message
            .contains("write 10.0.0.1/32")
    );
}

#[test]
fn syntax_errors_and_duplicate_keys() {
    let e = errs(Policy::from_json("{\"mode\": "));
    assert_eq!(paths(&e), [""]);
    assert!(e.to_string().starts_with("(document): invalid JSON"));
    let e = errs(Policy::from_yaml("mode: [\n"));
    assert!(e.to_string().starts_with("(document): invalid YAML"), "{e}");
    let e = errs(Policy::from_json(
        r#"{"mode": "monitoring", "mode": "standard"}"#,
    ));
    assert!(e.to_string().contains("duplicate key \"mode\""), "{e}");
    let e = errs(Policy::from_yaml("mode: monitoring\nmode: standard\n"));
    assert!(e.to_string().contains("duplicate key \"mode\""), "{e}");
}

#[test]
fn long_values_are_shortened_in_messages() {
    let long = "x".repeat(10_000);
    let e = json_errs(json!({ "mode": long }));
    assert!(e.to_string().len() < 200);
}

/// `never_block`: every bad entry is reported with its index, the list's shape and size are
/// checked, and the compiled lookup finds addresses inside its prefixes only.
#[test]
fn never_block_entries() {
    let e = json_errs(json!({
        "never_block": ["10.0.0.1", "10.0.0.5/24", "gateway", 7, "::ffff:10.0.0.1"],
        "attack_blocker": {"block_unverified_sources": "yes"}
    }));
    assert_eq!(
        paths(&e),
        [
            "attack_blocker.block_unverified_sources",
            "never_block[1]",
            "never_block[2]",
            "never_block[3]",
            "never_block[4]",
        ]
    );
    assert!(e.to_string().contains("did you mean 10.0.0.0/24"), "{e}");
    let e = json_errs(json!({"never_block": "10.0.0.1"}));
    assert_eq!(paths(&e), ["never_block"]);
    let many: Vec<String> = (0..=MAX_NEVER_BLOCK)
        .map(|i| format!("10.{}.{}.1", i / 256, i % 256))
        .collect();
    let e = json_errs(json!({ "never_block": many }));
    assert_eq!(paths(&e), ["never_block"]);
    assert!(e.to_string().contains("at most 4096"), "{e}");

    let p =
        Policy::from_yaml("never_block: [192.0.2.1, 198.51.100.0/24, \"2001:db8::53\"]\n").unwrap();
    let c = CompiledPolicy::compile(p);
    assert!(c.never_blocks(ip("192.0.2.1")));
    assert!(!c.never_blocks(ip("192.0.2.2")));
    assert!(c.never_blocks(ip("198.51.100.77")));
    assert!(c.never_blocks(ip("2001:db8::53")));
    assert!(!c.never_blocks(ip("2001:db8::54")));
    assert!(!CompiledPolicy::compile(Policy::default()).never_blocks(ip("192.0.2.1")));
}

#[test]
fn too_many_exclusions() {
    let one = json!({"address": "10.0.0.1", "rule": "default"});
    let doc = json!({ "exclusions": vec![one; MAX_EXCLUSIONS + 1] });
    assert_eq!(paths(&json_errs(doc)), ["exclusions"]);
}

// ---- YAML / JSON parity -----------------------------------------------------------------------

const DEMO_YAML: &str = include_str!("../examples/demo.yaml");
const DEFAULT_YAML: &str = include_str!("../examples/default.yaml");

#[test]
fn yaml_and_json_agree() {
    let from_yaml = Policy::from_yaml(DEMO_YAML).unwrap();
    let as_json: serde_json::Value = serde_norway::from_str(DEMO_YAML).unwrap();
    assert_eq!(Policy::from_json(&as_json.to_string()).unwrap(), from_yaml);
    // YAML is a superset: JSON text reads as YAML too.
    assert_eq!(Policy::from_yaml(&as_json.to_string()).unwrap(), from_yaml);

    let bad_yaml = "colour: blue\nattack_blocker:\n  block_minutes: 0\n  detectors:\n    syn_flood:\n      count: 0\nexclusions:\n  - {address: 10.0.0.1, rule: default}\n  - {address: 10.0.0.300, rule: do_not_scan}\n";
    let bad_json = json!({
        "colour": "blue",
        "attack_blocker": {"block_minutes": 0, "detectors": {"syn_flood": {"count": 0}}},
        "exclusions": [
            {"address": "10.0.0.1", "rule": "default"},
            {"address": "10.0.0.300", "rule": "do_not_scan"}
        ]
    });
    assert_eq!(errs(Policy::from_yaml(bad_yaml)), json_errs(bad_json));
}

#[test]
fn example_files_parse() {
    assert_eq!(Policy::from_yaml(DEFAULT_YAML).unwrap(), Policy::default());
    let demo = Policy::from_yaml(DEMO_YAML).unwrap();
    assert_eq!(demo.mode, Mode::Standard);
    assert!(!demo.exclusions.is_empty());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    assert_eq!(
        Policy::load(&dir.join("default.yaml")).unwrap(),
        Policy::default()
    );
    assert_eq!(Policy::load(&dir.join("demo.yaml")).unwrap(), demo);
}

#[test]
fn load_reports_path_and_kind() {
    let dir = std::env::temp_dir().join(format!("policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json_file = dir.join("p.json");
    std::fs::write(&json_file, r#"{"mode": "monitoring"}"#).unwrap();
    assert_eq!(Policy::load(&json_file).unwrap().mode, Mode::Monitoring);
    // A .json file is read strictly as JSON, not as YAML.
    std::fs::write(&json_file, "mode: monitoring\n").unwrap();
    assert!(matches!(
        Policy::load(&json_file),
        Err(LoadError::Invalid { .. })
    ));
    let other = dir.join("policy.conf");
    std::fs::write(&other, "mode: monitoring\n").unwrap();
    assert_eq!(Policy::load(&other).unwrap().mode, Mode::Monitoring);
    let missing = dir.join("missing.yaml");
    let e = Policy::load(&missing).unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }));
    assert!(e.to_string().contains("missing.yaml"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serde_impls_use_the_canonical_form() {
    let p = Policy::from_yaml(DEMO_YAML).unwrap();
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v, p.to_json());
    assert_eq!(serde_json::from_value::<Policy>(v).unwrap(), p);
    let e = serde_json::from_value::<Policy>(json!({"mode": 1})).unwrap_err();
    assert!(e.to_string().contains("mode: expected one of"));
}

// ---- VLAN forms -------------------------------------------------------------------------------

fn vlan_of(v: serde_json::Value) -> Result<VlanMatch, PolicyErrors> {
    let doc = json!({"exclusions": [{"address": "10.0.0.1", "rule": "default", "vlan": v}]});
    Policy::from_json(&doc.to_string()).map(|p| p.exclusions[0].vlan)
}

#[test]
fn vlan_forms() {
    assert_eq!(vlan_of(json!(null)).unwrap(), VlanMatch::Any);
    assert_eq!(vlan_of(json!("any")).unwrap(), VlanMatch::Any);
    assert_eq!(vlan_of(json!(4095)).unwrap(), VlanMatch::Any);
    assert_eq!(vlan_of(json!("4095")).unwrap(), VlanMatch::Any);
    assert_eq!(vlan_of(json!("untagged")).unwrap(), VlanMatch::Untagged);
    assert_eq!(vlan_of(json!("novlan")).unwrap(), VlanMatch::Untagged);
    assert_eq!(vlan_of(json!(0)).unwrap(), VlanMatch::Id(vid(0)));
    assert_eq!(vlan_of(json!(100)).unwrap(), VlanMatch::Id(vid(100)));
    assert_eq!(vlan_of(json!("100")).unwrap(), VlanMatch::Id(vid(100)));
    assert_eq!(
        vlan_of(json!("100.200")).unwrap(),
        VlanMatch::Stack(scope("100.200"))
    );
    assert_eq!(
        vlan_of(json!("exact:100")).unwrap(),
        VlanMatch::Stack(scope("100"))
    );
    assert_eq!(
        vlan_of(json!("exact:100.200")).unwrap(),
        VlanMatch::Stack(scope("100.200"))
    );
    for bad in [
        json!(4096),
        json!(-1),
        json!("100."),
        json!("4095.1"),
        json!(""),
        json!("vlan 5"),
        json!([1]),
    ] {
        assert!(vlan_of(bad.clone()).is_err(), "{bad}");
    }
    let p = Policy::from_yaml("exclusions:\n  - {address: 10.0.0.1, rule: default, vlan: 100}\n  - {address: 10.0.0.1, rule: default, vlan: \"100.200\"}\n").unwrap();
    assert_eq!(p.exclusions[0].vlan, VlanMatch::Id(vid(100)));
    assert_eq!(p.exclusions[1].vlan, VlanMatch::Stack(scope("100.200")));
}

#[test]
fn vlan_match_semantics() {
    let untagged = VlanScope::UNTAGGED;
    let s100 = scope("100");
    let s100_200 = scope("100.200");
    let s200 = scope("200");
    assert!(
        [untagged, s100, s100_200]
            .iter()
            .all(|s| VlanMatch::Any.matches(*s))
    );
    assert!(VlanMatch::Untagged.matches(untagged) && !VlanMatch::Untagged.matches(s100));
    let id = VlanMatch::Id(vid(100));
    assert!(id.matches(s100) && id.matches(s100_200) && !id.matches(s200) && !id.matches(untagged));
    let exact = VlanMatch::Stack(s100_200);
    assert!(exact.matches(s100_200) && !exact.matches(s100));
    let exact1 = VlanMatch::Stack(s100);
    assert!(exact1.matches(s100) && !exact1.matches(s100_200));
}

// ---- compiled lookup --------------------------------------------------------------------------

fn compiled(exclusions: Vec<Exclusion>) -> CompiledPolicy {
    CompiledPolicy::compile(Policy {
        exclusions,
        ..Policy::default()
    })
}

#[test]
fn no_exclusions_is_default() {
    let c = compiled(vec![]);
    assert!(!c.has_exclusions());
    assert_eq!(
        c.exclusion(VlanScope::UNTAGGED, ip("10.0.0.1")),
        ExclusionRule::Default
    );
}

#[test]
fn first_match_wins_with_carve_out() {
    let c = compiled(vec![
        excl("10.0.0.5", VlanMatch::Any, ExclusionRule::Default),
        excl("10.0.0.0/24", VlanMatch::Any, ExclusionRule::DoNotScan),
        excl("10.0.0.0/8", VlanMatch::Any, ExclusionRule::DoNotBlock),
    ]);
    assert!(c.has_exclusions());
    let u = VlanScope::UNTAGGED;
    assert_eq!(c.exclusion(u, ip("10.0.0.5")), ExclusionRule::Default);
    assert_eq!(c.exclusion(u, ip("10.0.0.6")), ExclusionRule::DoNotScan);
    assert_eq!(c.exclusion(u, ip("10.9.0.6")), ExclusionRule::DoNotBlock);
    assert_eq!(c.exclusion(u, ip("11.0.0.1")), ExclusionRule::Default);

    // Order matters: the broad rule first shadows the narrower ones.
    let c = compiled(vec![
        excl("10.0.0.0/8", VlanMatch::Any, ExclusionRule::DoNotBlock),
        excl("10.0.0.0/24", VlanMatch::Any, ExclusionRule::DoNotScan),
    ]);
    assert_eq!(c.exclusion(u, ip("10.0.0.6")), ExclusionRule::DoNotBlock);
}

#[test]
fn lookup_respects_vlan_and_source_only() {
    let c = compiled(vec![
        excl("10.0.0.1", VlanMatch::Untagged, ExclusionRule::DoNotScan),
        excl(
            "10.0.0.1",
            VlanMatch::Id(vid(100)),
            ExclusionRule::DoNotBlock,
        ),
        excl(
            "10.0.0.1",
            VlanMatch::Stack(scope("200.300")),
            ExclusionRule::DoNotScan,
        ),
    ]);
    assert_eq!(
        c.exclusion(VlanScope::UNTAGGED, ip("10.0.0.1")),
        ExclusionRule::DoNotScan
    );
    assert_eq!(
        c.exclusion(scope("100"), ip("10.0.0.1")),
        ExclusionRule::DoNotBlock
    );
    assert_eq!(
        c.exclusion(scope("100.7"), ip("10.0.0.1")),
        ExclusionRule::DoNotBlock
    );
    assert_eq!(
        c.exclusion(scope("200.300"), ip("10.0.0.1")),
        ExclusionRule::DoNotScan
    );
    assert_eq!(
        c.exclusion(scope("200"), ip("10.0.0.1")),
        ExclusionRule::Default
    );
    assert_eq!(
        c.exclusion(scope("101"), ip("10.0.0.1")),
        ExclusionRule::Default
    );
    assert_eq!(
        c.exclusion(scope("100"), ip("10.0.0.2")),
        ExclusionRule::Default
    );
}

#[test]
fn ipv6_prefixes() {
    let p = Policy::from_yaml(
        "exclusions:\n  - {address: \"2001:db8::1\", rule: default}\n  - {address: \"2001:db8::/32\", rule: do_not_scan}\n  - {address: \"::/0\", vlan: 4095, rule: do_not_block}\n",
    )
    .unwrap();
    assert_eq!(p.exclusions[0].address.prefix_len(), 128);
    let c = CompiledPolicy::compile(p);
    let u = VlanScope::UNTAGGED;
    assert_eq!(c.exclusion(u, ip("2001:db8::1")), ExclusionRule::Default);
    assert_eq!(
        c.exclusion(scope("5"), ip("2001:db8:ffff::1")),
        ExclusionRule::DoNotScan
    );
    assert_eq!(
        c.exclusion(scope("5.6"), ip("fe80::1")),
        ExclusionRule::DoNotBlock
    );
    // An IPv6 /0 does not cover IPv4 sources.
    assert_eq!(c.exclusion(u, ip("10.0.0.1")), ExclusionRule::Default);
}

#[test]
fn vlan_4095_means_any() {
    let p = Policy::from_yaml(
        "exclusions:\n  - {address: 0.0.0.0/0, vlan: 4095, rule: do_not_block}\n",
    )
    .unwrap();
    assert_eq!(p.exclusions[0].vlan, VlanMatch::Any);
    let c = CompiledPolicy::compile(p);
    for s in [VlanScope::UNTAGGED, scope("1"), scope("4094.4094")] {
        assert_eq!(c.exclusion(s, ip("192.0.2.1")), ExclusionRule::DoNotBlock);
    }
}

#[test]
fn compile_ten_thousand_exclusions() {
    let exclusions: Vec<Exclusion> = (0u32..10_000)
        .map(|i| Exclusion {
            name: None,
            address: IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i << 8))), 24)
                .unwrap()
                .trunc(),
            vlan: if i % 2 == 0 {
                VlanMatch::Any
            } else {
                VlanMatch::Id(vid((i % 4000) as u16))
            },
            rule: ExclusionRule::DoNotScan,
        })
        .collect();
    // How long this takes is measured by `cargo bench -p policy --bench exclusion`, not asserted
    // here: a timing in a test fails on a loaded machine and proves nothing about the code.
    let c = compiled(exclusions);
    assert_eq!(
        c.exclusion(VlanScope::UNTAGGED, ip("10.0.2.9")),
        ExclusionRule::DoNotScan
    );
    assert_eq!(
        c.exclusion(VlanScope::UNTAGGED, ip("10.0.1.9")),
        ExclusionRule::Default
    );
    assert_eq!(
        c.exclusion(scope("1"), ip("10.0.1.9")),
        ExclusionRule::DoNotScan
    );
}

use ipnet::IpNet;

// ---- property tests ---------------------------------------------------------------------------

fn arb_threshold() -> impl Strategy<Value = Threshold> {
    (any::<bool>(), 1u32.., 1u32..=3600).prop_map(|(enabled, count, window_secs)| Threshold {
        enabled,
        count,
        window_secs,
    })
}

fn arb_toggle() -> impl Strategy<Value = Toggle> {
    any::<bool>().prop_map(|enabled| Toggle { enabled })
}

fn arb_detectors() -> impl Strategy<Value = Detectors> {
    (
        [
            arb_threshold(),
            arb_threshold(),
            arb_threshold(),
            arb_threshold(),
            arb_threshold(),
            arb_threshold(),
        ],
        [
            arb_toggle(),
            arb_toggle(),
            arb_toggle(),
            arb_toggle(),
            arb_toggle(),
        ],
    )
        .prop_map(|([a, b, c, d, e, f], [g, h, i, j, k])| Detectors {
            tcp_port_scan: a,
            udp_port_scan: b,
            host_sweep: c,
            syn_flood: d,
            udp_flood: e,
            icmp_flood: f,
            land: g,
            ping_of_death: h,
            teardrop: i,
            invalid_tcp_flags: j,
            mac_spoofing: k,
        })
}

fn arb_scope() -> impl Strategy<Value = VlanScope> {
    // A small id range so random rules and random packets actually meet.
    prop::collection::vec(0u16..4, 0..=2).prop_map(|ids| {
        let ids: Vec<VlanId> = ids.into_iter().map(vid).collect();
        VlanScope::from_ids(&ids).unwrap()
    })
}

fn arb_vlan_match() -> impl Strategy<Value = VlanMatch> {
    prop_oneof![
        Just(VlanMatch::Any),
        Just(VlanMatch::Untagged),
        (0u16..4).prop_map(|i| VlanMatch::Id(vid(i))),
        arb_scope()
            .prop_filter("exact stacks are tagged", |s| !s.is_untagged())
            .prop_map(VlanMatch::Stack),
    ]
}

/// Addresses from a few small neighbourhoods, so prefixes overlap often.
fn arb_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u32..4, any::<u8>()).prop_map(|(hi, lo)| IpAddr::V4(Ipv4Addr::from(
            0x0a00_0000 | (hi << 16) | u32::from(lo)
        ))),
        (0u128..4, any::<u16>()).prop_map(|(hi, lo)| IpAddr::V6(Ipv6Addr::from(
            (0x2001_0db8u128 << 96) | (hi << 64) | u128::from(lo)
        ))),
    ]
}

fn arb_exclusion() -> impl Strategy<Value = Exclusion> {
    (
        prop::option::of("[a-z ]{0,8}"),
        arb_addr(),
        0u8..=128,
        arb_vlan_match(),
        prop_oneof![
            Just(ExclusionRule::Default),
            Just(ExclusionRule::DoNotScan),
            Just(ExclusionRule::DoNotBlock)
        ],
    )
        .prop_map(|(name, addr, len, vlan, rule)| {
            let max = if addr.is_ipv4() { 32 } else { 128 };
            // Favour long prefixes, which are the common case, but cover short ones too.
            let len = max - (len % (max + 1)) / 4;
            Exclusion {
                name,
                address: IpNet::new(addr, len).unwrap().trunc(),
                vlan,
                rule,
            }
        })
}

fn arb_vm_protection() -> impl Strategy<Value = VmProtection> {
    (
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just(Direction::Inbound),
            Just(Direction::Outbound),
            Just(Direction::Both)
        ],
        any::<bool>(),
    )
        .prop_map(
            |(attack_blocker, activity_scanner, direction, web_address_scan)| VmProtection {
                attack_blocker,
                activity_scanner,
                direction,
                web_address_scan,
            },
        )
}

fn arb_protection() -> impl Strategy<Value = (Protection, Decode)> {
    (
        any::<bool>(),
        prop::collection::btree_map("[a-zA-Z0-9._ -]{1,20}", arb_vm_protection(), 0..5),
        prop_oneof![Just(TooDeep::Drop), Just(TooDeep::Forward)],
    )
        .prop_map(|(only_listed_vms, vms, too_deep)| {
            (
                Protection {
                    only_listed_vms,
                    vms,
                },
                Decode { too_deep },
            )
        })
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    (
        (prop::option::of(".{0,12}"), arb_protection()),
        prop_oneof![Just(Mode::Standard), Just(Mode::Monitoring)],
        any::<bool>(),
        prop_oneof![
            Just(Action::Inform),
            Just(Action::Terminate),
            Just(Action::TerminateAndBlock)
        ],
        1u16..=32768,
        arb_detectors(),
        (
            prop::collection::vec(arb_exclusion(), 0..12),
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(arb_exclusion().prop_map(|e| e.address), 0..4),
        ),
    )
        .prop_map(
            |(
                (version, (protection, decode)),
                mode,
                enabled,
                action,
                minutes,
                detectors,
                (exclusions, tag_monitoring, block_unverified_sources, never_block),
            )| {
                Policy {
                    version,
                    mode,
                    attack_blocker: AttackBlocker {
                        enabled,
                        action,
                        block_minutes: BlockMinutes::new(minutes).unwrap(),
                        detectors,
                        block_unverified_sources,
                    },
                    activity_scanner: ActivityScanner::default(),
                    exclusions,
                    tagging: Tagging {
                        in_monitoring_mode: tag_monitoring,
                    },
                    never_block,
                    isolation: Default::default(),
                    web_address_scan: if tag_monitoring {
                        WebAddressScan::default()
                    } else {
                        WebAddressScan {
                            enabled,
                            action: WebAction::Inform,
                            categories: vec!["malware".into()],
                            url_lists: vec![UrlListRef {
                                category: "custom".into(),
                                path: "/l.txt".into(),
                            }],
                            trusted: vec!["example.org".into()],
                            block_page: Some("<b>{{list}}</b>".into()),
                            dns_answer: DnsAnswer::Nxdomain,
                            doh_canary_nxdomain: false,
                            quic: QuicMode::Block,
                        }
                    },
                    protection,
                    decode,
                }
            },
        )
}

proptest! {
    #[test]
    fn canonical_json_round_trips(p in arb_policy()) {
        let text = p.to_json().to_string();
        prop_assert_eq!(Policy::from_json(&text).unwrap(), p.clone());
        let yaml = serde_norway::to_string(&p.to_json()).unwrap();
        prop_assert_eq!(Policy::from_yaml(&yaml).unwrap(), p);
    }

    #[test]
    fn compiled_lookup_equals_linear_scan(
        exclusions in prop::collection::vec(arb_exclusion(), 0..40),
        probes in prop::collection::vec((arb_scope(), arb_addr()), 1..40),
    ) {
        let c = compiled(exclusions.clone());
        for (s, a) in probes.iter().copied().chain(exclusions.iter().map(|e| (VlanScope::UNTAGGED, e.address.network()))) {
            let naive = exclusions.iter().find(|e| e.matches(s, a)).map_or(ExclusionRule::Default, |e| e.rule);
            prop_assert_eq!(c.exclusion(s, a), naive, "scope {} addr {}", s, a);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        fuzz_parse(text.as_bytes());
    }

    #[test]
    fn json_shaped_garbage_never_panics(text in r#"[{}\[\]:,"a-z0-9 \n.-]{0,120}"#) {
        fuzz_parse(text.as_bytes());
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}{}", "[".repeat(2_000), "]".repeat(2_000));
    assert!(Policy::from_json(&deep).is_err());
    assert!(Policy::from_yaml(&deep).is_err());
    let deep_map = format!("{}1{}", "{a: ".repeat(2_000), "}".repeat(2_000));
    assert!(Policy::from_yaml(&deep_map).is_err());
}

/// The examples in docs/policy.md are checked, so the reference cannot drift from the code.
#[test]
fn reference_examples_are_accurate() {
    let doc = include_str!("../../docs/policy.md");
    let block = |lang: &str, nth: usize| -> String {
        let fence = format!("```{lang}\n");
        let start = doc.match_indices(&fence).nth(nth).unwrap().0 + fence.len();
        let len = doc[start..].find("```").unwrap();
        doc[start..start + len].to_owned()
    };
    let yaml = Policy::from_yaml(&block("yaml", 0)).unwrap();
    assert_eq!(yaml.exclusions.len(), 5);
    let json = Policy::from_json(&block("json", 0)).unwrap();
    assert_eq!(json.mode, Mode::Monitoring);
    assert_eq!(json.exclusions[2].vlan, VlanMatch::Stack(scope("100.200")));
    let e = errs(Policy::from_yaml(&block("yaml", 1)));
    assert_eq!(format!("{e}\n"), block("text", 0));
}

#[test]
fn activity_scanner_section() {
    let p = Policy::from_yaml(
        "activity_scanner:\n  action: inform\n  rule_exclusions: [\"1:2000001:3\"]\n",
    )
    .unwrap();
    assert!(p.activity_scanner.enabled);
    assert_eq!(p.activity_scanner.action, Action::Inform);
    assert_eq!(
        p.activity_scanner.rule_exclusions,
        vec![RuleId {
            gid: 1,
            sid: 2_000_001,
            rev: 3
        }]
    );
    let e = errs(Policy::from_yaml(
        "activity_scanner:\n  enabled: 1\n  rule_exclusions: [\"1:2\", 7]\n",
    ));
    let text = e.to_string();
    assert!(text.contains("activity_scanner.enabled"), "{text}");
    assert!(
        text.contains("activity_scanner.rule_exclusions[0]"),
        "{text}"
    );
    assert!(
        text.contains("activity_scanner.rule_exclusions[1]"),
        "{text}"
    );
    assert_eq!(
        Policy::default().activity_scanner,
        ActivityScanner::default()
    );
}

#[test]
fn activity_scanner_rule_inputs() {
    let p = Policy::from_yaml(
        "activity_scanner:\n  rule_files: [/etc/svm/rules/*.rules, local.rules]\n  \
         address_groups: {HOME_NET: \"[10.0.0.0/8]\", EXTERNAL_NET: \"!$HOME_NET\"}\n  \
         port_groups: {HTTP_PORTS: \"[80,8080]\", SSH_PORTS: 22}\n",
    )
    .unwrap();
    let a = &p.activity_scanner;
    assert_eq!(a.rule_files, ["/etc/svm/rules/*.rules", "local.rules"]);
    assert_eq!(a.address_groups["HOME_NET"], "[10.0.0.0/8]");
    assert_eq!(a.address_groups["EXTERNAL_NET"], "!$HOME_NET");
    assert_eq!(a.port_groups["SSH_PORTS"], "22");
    // The canonical document carries them and reads back the same.
    let again = Policy::from_value(&p.to_json()).unwrap();
    assert_eq!(again, p);
    assert!(a.same_rule_inputs(&again.activity_scanner));
    assert!(!a.same_rule_inputs(&ActivityScanner::default()));
    let mut other = a.clone();
    other.action = Action::Inform;
    other.rule_exclusions.push("1:2:3".parse().unwrap());
    assert!(
        a.same_rule_inputs(&other),
        "action and exclusions need no reload"
    );

    let e = errs(Policy::from_yaml(
        "activity_scanner:\n  rule_files: [\"\", 7]\n  \
         address_groups: {$HOME_NET: \"[10.0.0.0/8]\", 9LIVES: x, OK: 5}\n  \
         port_groups: [80]\n",
    ));
    for path in [
        "activity_scanner.rule_files[0]",
        "activity_scanner.rule_files[1]",
        "activity_scanner.address_groups.$HOME_NET",
        "activity_scanner.address_groups.9LIVES",
        "activity_scanner.address_groups.OK",
        "activity_scanner.port_groups",
    ] {
        assert!(e.at(path).is_some(), "{path} missing from {e}");
    }
    assert_eq!(e.len(), 6, "{e}");
    let many = format!(
        "activity_scanner:\n  rule_files: [{}]\n",
        vec!["a.rules"; 1001].join(", ")
    );
    assert!(
        errs(Policy::from_yaml(&many))
            .at("activity_scanner.rule_files")
            .is_some()
    );
}

#[test]
fn web_address_scan_section() {
    let d = Policy::default().web_address_scan;
    assert!(d.enabled && d.doh_canary_nxdomain);
    assert_eq!(
        (d.action, d.dns_answer, d.quic),
        (WebAction::Block, DnsAnswer::Null, QuicMode::Inspect)
    );
    let p = Policy::from_yaml(
        "web_address_scan:\n  action: inform\n  categories: [malware, my-list]\n  \
         url_lists: [\"phishing=/var/lib/svm/ph.txt\"]\n  \
         trusted: [intranet.example, \"https://example.org/ok/\", 10.1.2.3]\n  \
         block_page: \"<p>{{address}}</p>\"\n  dns_answer: nxdomain\n  \
         doh_canary_nxdomain: false\n  quic: block\n",
    )
    .unwrap();
    let w = &p.web_address_scan;
    assert_eq!(w.action, WebAction::Inform);
    assert_eq!(w.categories, ["malware", "my-list"]);
    assert_eq!(w.url_lists[0].category, "phishing");
    assert_eq!(w.url_lists[0].path, "/var/lib/svm/ph.txt");
    assert_eq!(w.trusted.len(), 3);
    assert_eq!(w.block_page.as_deref(), Some("<p>{{address}}</p>"));
    assert_eq!(
        (w.dns_answer, w.quic),
        (DnsAnswer::Nxdomain, QuicMode::Block)
    );
    assert!(!w.doh_canary_nxdomain);
    assert!(w.applies_to("malware") && !w.applies_to("phishing"));
    // The canonical document reads back to the same policy.
    assert_eq!(Policy::from_json(&p.to_json().to_string()).unwrap(), p);

    let e = errs(Policy::from_yaml(
        "web_address_scan:\n  action: drop\n  categories: [\"Bad Name\"]\n  \
         url_lists: [\"nofile\", \"x=\"]\n  trusted: [com, \"co.uk\", \"a b c\", 7]\n  \
         dns_answer: refused\n  quic: maybe\n  block_page: 3\n  colour: red\n",
    ));
    for path in [
        "web_address_scan.action",
        "web_address_scan.categories[0]",
        "web_address_scan.url_lists[0]",
        "web_address_scan.url_lists[1]",
        "web_address_scan.trusted[0]",
        "web_address_scan.trusted[1]",
        "web_address_scan.trusted[2]",
        "web_address_scan.trusted[3]",
        "web_address_scan.dns_answer",
        "web_address_scan.quic",
        "web_address_scan.block_page",
        "web_address_scan.colour",
    ] {
        assert!(e.at(path).is_some(), "{path} missing from {e}");
    }
    assert!(
        e.at("web_address_scan.trusted[0]")
            .unwrap()
            .message
            .contains("public suffix")
    );
    let page = format!(
        "web_address_scan:\n  block_page: \"{}\"\n",
        "x".repeat(MAX_BLOCK_PAGE + 1)
    );
    assert!(
        errs(Policy::from_yaml(&page))
            .at("web_address_scan.block_page")
            .is_some()
    );
}

// ---- protection and decode ---------------------------------------------------------------------

#[test]
fn protection_section_reads_per_vm_settings() {
    let p = Policy::from_yaml(
        "protection:\n  only_listed_vms: true\n  vms:\n    web-01: {activity_scanner: false}\n    \
         db-02: {direction: inbound, web_address_scan: false}\n    \"vm 3\":\n",
    )
    .unwrap();
    let pr = &p.protection;
    assert!(pr.only_listed_vms);
    assert_eq!(pr.vms.len(), 3);
    assert_eq!(
        pr.vms["web-01"],
        VmProtection {
            activity_scanner: false,
            ..VmProtection::default()
        }
    );
    assert_eq!(pr.vms["db-02"].direction, Direction::Inbound);
    assert!(!pr.vms["db-02"].web_address_scan);
    assert!(pr.vms["db-02"].attack_blocker);
    // A VM named with nothing set gets every engine, both directions.
    assert_eq!(pr.vms["vm 3"], VmProtection::default());
    // Unlisted VMs: nothing under only_listed_vms, everything otherwise.
    assert_eq!(pr.of("other"), VmProtection::OFF);
    assert_eq!(Protection::default().of("other"), VmProtection::default());
    assert!(Protection::default().is_default());
    assert!(!pr.is_default());
    let unknown: Vec<_> = pr.unknown_vms(|id| id == "web-01").collect();
    assert_eq!(
        unknown.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
        ["protection.vms.db-02", "protection.vms.vm 3"]
    );
    assert!(
        unknown[0]
            .message
            .contains("no VM \"db-02\" in the inventory")
    );
}

#[test]
fn protection_and_decode_refuse_bad_values_with_their_paths() {
    let e = errs(Policy::from_yaml(
        "protection:\n  only_listed_vms: yes please\n  colour: red\n  vms:\n    \
         web-01: {direction: sideways, attack_blocker: 1, engines: all}\n    \
         db-02: off\n    \"\": {}\n    \"a\\tb\": {}\ndecode: {too_deep: ignore, depth: 3}\n",
    ));
    for path in [
        "protection.colour",
        "protection.only_listed_vms",
        "protection.vms.web-01.engines",
        "protection.vms.web-01.attack_blocker",
        "protection.vms.web-01.direction",
        "protection.vms.db-02",
        "protection.vms.",
        "protection.vms.a\tb",
        "decode.depth",
        "decode.too_deep",
    ] {
        assert!(e.at(path).is_some(), "{path} missing from {e}");
    }
    assert!(
        e.at("protection.vms.web-01.direction")
            .unwrap()
            .message
            .contains("\"inbound\", \"outbound\", \"both\"")
    );
    assert!(
        e.at("decode.too_deep")
            .unwrap()
            .message
            .contains("\"drop\", \"forward\"")
    );
    let e = errs(Policy::from_yaml("protection: {vms: [web-01]}\n"));
    assert!(e.at("protection.vms").is_some(), "{e}");
}

#[test]
fn decode_section_defaults_to_drop() {
    assert_eq!(Policy::default().decode.too_deep, TooDeep::Drop);
    let p = Policy::from_yaml("decode: {too_deep: forward}\n").unwrap();
    assert_eq!(p.decode.too_deep, TooDeep::Forward);
    let canonical = p.to_json();
    assert_eq!(canonical["decode"], json!({"too_deep": "forward"}));
    assert_eq!(
        canonical["protection"],
        json!({"only_listed_vms": false, "vms": {}})
    );
}
