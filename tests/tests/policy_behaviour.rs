//! End-to-end: monitoring mode, actions, exclusions, thresholds, block expiry, benign traffic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::process::Command;

use svm_e2e::{TempDir, merge, replay, svm_bin};
use testgen::{Capture, plan, scenarios};

const S: u64 = 1_000_000;

fn scan_then_follow_up(gaps_s: &[u64]) -> Capture {
    let scan = scenarios::tcp_port_scan(&plan::vlan100(), plan::BASE_US);
    let end = scan.last_ts().unwrap();
    let mut parts = vec![scan];
    for g in gaps_s {
        parts.push(scenarios::follow_up(&plan::vlan100(), end + g * S));
    }
    merge(parts)
}

#[test]
fn monitoring_mode_reports_and_never_acts() {
    let cap = scan_then_follow_up(&[1]);
    let r = replay(
        "monitoring",
        &cap,
        Some("mode: monitoring\n"),
        &["--inline"],
    );
    let a = r.alerts("Scan.Generic.TCP");
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["alert"]["action"], "allowed");
    assert_eq!(a[0]["alert"]["would_block"], true);
    assert_eq!(a[0]["alert"]["response"], "terminate_and_block");
    assert_eq!(r.forwarded.len(), r.input.len(), "nothing dropped");
    assert!(r.injected.is_empty(), "no resets");
    assert!(r.blocks("add").is_empty(), "no block made");
}

#[test]
fn inform_reports_only() {
    let cap = scan_then_follow_up(&[1]);
    let r = replay(
        "inform",
        &cap,
        Some("attack_blocker:\n  action: inform\n"),
        &["--inline"],
    );
    assert_eq!(
        r.alerts("Scan.Generic.TCP")[0]["alert"]["action"],
        "allowed"
    );
    assert_eq!(r.forwarded.len(), r.input.len());
    assert!(r.injected.is_empty() && r.blocks("add").is_empty());
}

#[test]
fn terminate_resets_without_blocking() {
    let cap = scan_then_follow_up(&[30]);
    let r = replay(
        "terminate",
        &cap,
        Some("attack_blocker:\n  action: terminate\n"),
        &["--inline"],
    );
    assert_eq!(
        r.alerts("Scan.Generic.TCP")[0]["alert"]["response"],
        "terminate"
    );
    assert_eq!(r.injected.len(), 2);
    assert!(r.blocks("add").is_empty());
    // The follow-up 30 s later (outside the scan window) is a new, benign episode: it passes.
    let last = r.input.last().unwrap();
    assert!(r.forwarded.contains(last));
}

/// `do_not_block` (docs/policy.md): the attack is still terminated, its source never blocked.
#[test]
fn do_not_block_exclusion_terminates_without_blocking() {
    let policy = "exclusions:\n  - address: 10.0.0.66\n    vlan: 100\n    rule: do_not_block\n";
    let cap = scan_then_follow_up(&[30]);
    let r = replay("dnb", &cap, Some(policy), &["--inline"]);
    let a = r.alerts("Scan.Generic.TCP");
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["alert"]["excluded"], true);
    assert_eq!(a[0]["alert"]["action"], "blocked");
    assert_eq!(a[0]["alert"]["response"], "terminate");
    assert!(a[0]["alert"].get("block_minutes").is_none());
    assert_eq!(r.injected.len(), 2, "a reset to each end");
    assert!(r.blocks("add").is_empty());
    // The source is not blocked: its follow-up 30 s later (outside the scan window) passes.
    let last = r.input.last().unwrap();
    assert!(r.forwarded.contains(last));
    assert_eq!(r.summary["dropped_blocked"], 0);
}

/// A rule match on traffic whose source proved nothing (here UDP) is terminated, never turned
/// into a block, and the alert says so.
#[test]
fn a_rule_on_an_unproven_flow_terminates_without_blocking() {
    let dir = TempDir::new("udp-rule-file");
    let rules = dir.path("udp.rules");
    std::fs::write(
        &rules,
        "drop dns any any -> any any (msg:\"c2 lookup\"; dns.query; content:\"c2.svm-demo.test\"; sid:7; rev:1;)\n",
    )
    .unwrap();
    let cap = scenarios::demo(plan::BASE_US);
    let r = replay(
        "udp-rule",
        &cap,
        None,
        &["--inline", "--rules", rules.to_str().unwrap()],
    );
    let a: Vec<_> = r
        .all_alerts()
        .into_iter()
        .filter(|a| a["alert"]["signature_id"] == 7)
        .collect();
    assert!(!a.is_empty());
    for a in &a {
        assert_eq!(a["alert"]["action"], "blocked");
        assert_eq!(a["alert"]["response"], "terminate");
        assert!(a["alert"].get("block_minutes").is_none());
    }
    assert!(
        r.blocks("add")
            .iter()
            .all(|b| b["block"]["engine"] != "activity_scanner"),
        "{:#?}",
        r.blocks("add")
    );
}

#[test]
fn do_not_scan_exclusion_bypasses_and_default_carves_out() {
    let cap = scan_then_follow_up(&[1]);
    let skip = "exclusions:\n  - address: 10.0.0.0/24\n    rule: do_not_scan\n";
    let r = replay("dns", &cap, Some(skip), &["--inline"]);
    assert!(r.all_alerts().is_empty());
    assert!(r.summary["excluded"].as_u64().unwrap() > 0);
    let carve = "exclusions:\n  - address: 10.0.0.66\n    rule: default\n  - address: 10.0.0.0/24\n    rule: do_not_scan\n";
    let r = replay("carve", &cap, Some(carve), &["--inline"]);
    assert_eq!(
        r.alerts("Scan.Generic.TCP").len(),
        1,
        "first match wins: 10.0.0.66 is scanned"
    );
}

#[test]
fn exclusion_in_another_vlan_does_not_apply() {
    let policy = "exclusions:\n  - address: 10.0.0.66\n    vlan: 200\n    rule: do_not_scan\n";
    let r = replay(
        "other-vlan",
        &scan_then_follow_up(&[1]),
        Some(policy),
        &["--inline"],
    );
    assert_eq!(r.alerts("Scan.Generic.TCP").len(), 1);
    assert_eq!(r.blocks("add").len(), 1);
}

#[test]
fn thresholds_come_from_the_policy() {
    let cap = scan_then_follow_up(&[1]);
    let high = "attack_blocker:\n  detectors:\n    tcp_port_scan:\n      count: 150\n";
    assert!(
        replay("high", &cap, Some(high), &["--inline"])
            .all_alerts()
            .is_empty()
    );
    let off = "attack_blocker:\n  detectors:\n    tcp_port_scan:\n      enabled: false\n";
    assert!(
        replay("off", &cap, Some(off), &["--inline"])
            .all_alerts()
            .is_empty()
    );
    let low = "attack_blocker:\n  detectors:\n    tcp_port_scan:\n      count: 5\n";
    let r = replay("low", &cap, Some(low), &["--inline"]);
    // The fifth distinct port is the fifth SYN: packet 9 of the scan (SYN, RST/ACK pairs).
    assert_eq!(r.alerts("Scan.Generic.TCP")[0]["pcap_cnt"], 9);
}

#[test]
fn expiry_releases_the_block() {
    // Blocked for one minute: the follow-up 30 s later is dropped, the one 120 s later passes.
    let cap = scan_then_follow_up(&[30, 120]);
    let r = replay(
        "expiry",
        &cap,
        Some("attack_blocker:\n  block_minutes: 1\n"),
        &["--inline"],
    );
    let add = r.blocks("add");
    let remove = r.blocks("remove");
    assert_eq!((add.len(), remove.len()), (1, 1));
    assert_eq!(remove[0]["block"]["reason"], "expired");
    assert_eq!(remove[0]["src_ip"], "10.0.0.66");
    assert_eq!(
        add[0]["block"]["expires"], remove[0]["timestamp"],
        "expiry is reported at its exact time"
    );
    assert!(
        remove[0]["block"]["hits"].as_u64().unwrap() >= 15,
        "the 30 s follow-up was dropped"
    );
    let last = r.input.last().unwrap();
    assert!(r.forwarded.contains(last), "traffic after expiry passes");
}

#[test]
fn benign_traffic_passes_untouched() {
    let mut parts = vec![];
    for link in [
        plan::vlan100(),
        plan::vlan200(),
        plan::qinq(),
        plan::untagged(),
    ] {
        parts.push(scenarios::benign(&link, plan::BASE_US));
        parts.push(scenarios::benign_v6(&link, plan::BASE_US + 5 * S));
        parts.push(scenarios::ipv6_ext_fragments(&link, plan::BASE_US + 10 * S));
    }
    let cap = merge(parts);
    let r = replay("benign", &cap, None, &["--inline", "-k", "all"]);
    assert!(r.all_alerts().is_empty(), "{:#?}", r.all_alerts());
    assert_eq!(r.forwarded.len(), r.input.len());
    assert!(
        r.summary["reassembled"].as_u64().unwrap() >= 4,
        "IPv6 fragments were reassembled"
    );
    assert_eq!(r.summary["bad_checksum"], 0);
    assert_eq!(r.summary["invalid"], 0);
}

#[test]
fn replay_is_deterministic() {
    let cap = scenarios::demo(plan::BASE_US);
    let a = replay("det-a", &cap, None, &["--inline"]);
    let b = replay("det-b", &cap, None, &["--inline"]);
    // Each record names its capture (`pcap_filename`), here two files of the same bytes.
    let events = |r: &svm_e2e::Replay| {
        r.events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                if let Some(o) = e.as_object_mut() {
                    o.remove("pcap_filename");
                }
                e
            })
            .collect::<Vec<_>>()
    };
    assert!(a.events.iter().all(|e| e.get("pcap_filename").is_some()));
    assert_eq!(events(&a), events(&b));
    assert_eq!(a.forwarded, b.forwarded);
    assert_eq!(a.injected, b.injected);
}

/// The demo's own rules (`make run`): the web exploit and the C2 lookup that no attack blocker
/// detector sees are caught by `deploy/demo.rules`, each with the action its rule and the
/// default policy give; without the rules both pass unseen.
#[test]
fn demo_rules_catch_what_the_attack_blocker_cannot() {
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/demo.rules");
    let cap = scenarios::demo(plan::BASE_US);
    let prober = plan::PROBER_V4.to_string();
    let is_exploit = |f: &svm_e2e::Frame| {
        let x = svm_e2e::facts(&f.data);
        x.vlan == [200] && x.tcp_ports.is_some_and(|(a, b)| a == 41_773 || b == 41_773)
    };
    let is_c2 = |f: &svm_e2e::Frame| f.data.windows(7).any(|w| w == b"\x02c2\x08svm");

    let plain = replay("demo-no-rules", &cap, None, &["--inline"]);
    assert!(
        plain
            .all_alerts()
            .iter()
            .all(|a| a["alert"]["engine"] != "activity_scanner")
    );
    assert_eq!(plain.input.iter().filter(|f| is_exploit(f)).count(), 10);
    assert_eq!(plain.forwarded.iter().filter(|f| is_exploit(f)).count(), 10);
    assert_eq!(plain.forwarded.iter().filter(|f| is_c2(f)).count(), 2);

    let r = replay("demo-rules", &cap, None, &["--inline", "--rules", rules]);
    let rule_alerts: Vec<_> = r
        .all_alerts()
        .into_iter()
        .filter(|a| a["alert"]["engine"] == "activity_scanner")
        .collect();
    let sids: Vec<_> = rule_alerts
        .iter()
        .map(|a| a["alert"]["signature_id"].as_u64())
        .collect();
    assert_eq!(sids, [Some(9_000_001), Some(9_000_002)], "{rule_alerts:#?}");
    let (exploit, c2) = (rule_alerts[0], rule_alerts[1]);
    assert_eq!(exploit["src_ip"], prober.as_str());
    assert_eq!(exploit["vlan"], serde_json::json!([200]));
    assert_eq!(exploit["alert"]["action"], "blocked");
    // A TCP flow whose handshake was seen: its source proved its address and is blocked.
    assert_eq!(exploit["alert"]["response"], "terminate_and_block");
    assert_eq!(exploit["alert"]["block_minutes"], 60);
    assert_eq!(exploit["http"]["url"], scenarios::WEB_EXPLOIT_URI);
    assert_eq!(c2["alert"]["action"], "allowed");
    assert_eq!(c2["dns"]["query"][0]["rrname"], scenarios::C2_NAME);
    // The exploit's connection: the handshake passed, the request and everything after it were
    // dropped, and both ends got a reset on VLAN 200.
    assert_eq!(r.forwarded.iter().filter(|f| is_exploit(f)).count(), 3);
    let resets: Vec<_> = r
        .injected
        .iter()
        .filter(|f| is_exploit(f))
        .map(|f| svm_e2e::facts(&f.data))
        .collect();
    assert_eq!(resets.len(), 2, "{resets:?}");
    assert!(
        resets
            .iter()
            .all(|x| x.tcp_flags.is_some_and(|fl| fl & 0x04 != 0))
    );
    // The exploit's source is blocked in VLAN 200, for the policy's time, by the rule.
    let by_rule: Vec<_> = r
        .blocks("add")
        .into_iter()
        .filter(|b| b["block"]["engine"] == "activity_scanner")
        .collect();
    assert_eq!(by_rule.len(), 1, "{:#?}", r.blocks("add"));
    assert_eq!(by_rule[0]["src_ip"], prober.as_str());
    assert_eq!(by_rule[0]["vlan"], serde_json::json!([200]));
    assert_eq!(by_rule[0]["block"]["signature_id"], 9_000_001);
    assert_eq!(by_rule[0]["block"]["duration"], 3600);
    assert!(
        r.blocks("add")
            .iter()
            .any(|b| b["src_ip"] == prober.as_str())
    );
    // The lookup is only reported: query and answer pass.
    assert_eq!(r.forwarded.iter().filter(|f| is_c2(f)).count(), 2);
    // Everything else fares as without rules.
    assert_eq!(
        r.forwarded.len() + 7,
        plain.forwarded.len(),
        "only the exploit's 7 frames after its handshake are dropped"
    );
}

#[test]
fn mirror_mode_resets_blocked_sources_and_drops_nothing() {
    let cap = scan_then_follow_up(&[1]);
    let r = replay("mirror", &cap, None, &[]);
    assert_eq!(r.alerts("Scan.Generic.TCP").len(), 1);
    assert_eq!(r.blocks("add").len(), 1);
    // 2 resets for the detecting SYN, then 2 for each TCP segment of the blocked source after it.
    assert!(
        r.injected.len() > 2 + 2 * 5,
        "injected {}",
        r.injected.len()
    );
}

#[test]
fn policy_check_reports_every_problem() {
    let dir = TempDir::new("policy-check");
    let bad = dir.path("bad.yaml");
    std::fs::write(
        &bad,
        "mode: loud\nattack_blocker:\n  block_minutes: 0\n  detectors:\n    syn_flood:\n      count: 0\nexclusions:\n  - address: 10.0.0.300\n",
    )
    .unwrap();
    let out = Command::new(svm_bin())
        .args(["policy", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    for path in [
        "mode",
        "attack_blocker.block_minutes",
        "attack_blocker.detectors.syn_flood.count",
        "exclusions[0].address",
    ] {
        assert!(err.contains(path), "missing {path} in:\n{err}");
    }
    let good = dir.path("good.yaml");
    std::fs::write(&good, "mode: monitoring\n").unwrap();
    let out = Command::new(svm_bin())
        .args(["policy", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // A replay with a bad policy refuses to run.
    let out = Command::new(svm_bin())
        .arg("replay")
        .arg("/nonexistent.pcap")
        .arg("--policy")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let out = Command::new(svm_bin()).arg("replay").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "missing argument");
}

// `svm replay --policy` without `--rules` loads the policy's `activity_scanner.rule_files`
// (patterns) with its `address_groups`: the rule naming the policy's variable loads and fires
// on the scan; a pattern that matches nothing is refused with its path.
#[test]
fn replay_loads_the_policys_rule_files_and_variables() {
    let dir = TempDir::new("policy-rule-files");
    std::fs::write(
        dir.path("scan.rules"),
        "alert tcp $POLICY_NET any -> any any (msg:\"policy rule\"; flags:S; \
         threshold: type limit, track by_rule, count 1, seconds 3600; sid:1000001; rev:1;)\n",
    )
    .unwrap();
    let pattern = dir.path("*.rules").display().to_string();
    let cap = scan_then_follow_up(&[1]);
    let with_var = format!(
        "activity_scanner:\n  rule_files: [\"{pattern}\"]\n  \
         address_groups: {{POLICY_NET: \"[0.0.0.0/0]\"}}\n"
    );
    let r = replay("policy-rules", &cap, Some(&with_var), &[]);
    assert_eq!(r.alerts("policy rule").len(), 1, "{:?}", r.summary);
    assert_eq!(r.summary["rules_loaded"], 1);
    // Without the variable the rule cannot load (skipped, not fatal).
    let without = format!("activity_scanner:\n  rule_files: [\"{pattern}\"]\n");
    let r = replay("policy-rules-novar", &cap, Some(&without), &[]);
    assert!(r.alerts("policy rule").is_empty());
    assert_eq!(r.summary["rules_skipped"], 1);
    // A pattern that matches no file.
    let pol = dir.path("missing.yaml");
    std::fs::write(
        &pol,
        format!(
            "activity_scanner:\n  rule_files: [\"{}\"]\n",
            dir.path("none-*.rules").display()
        ),
    )
    .unwrap();
    let pcap = dir.path("in.pcap");
    cap.write_pcap(&pcap).unwrap();
    let out = Command::new(svm_bin())
        .arg("replay")
        .arg(&pcap)
        .arg("--policy")
        .arg(&pol)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("activity_scanner.rule_files[0]") && err.contains("matches no file"),
        "{err}"
    );
}
