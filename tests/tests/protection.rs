//! End-to-end: the policy's per-VM `protection` and `decode.too_deep` in `svm replay`.
//!
//! Two protected VMs of the inventory, vm-a (the plan's attacker host, 10.0.0.66) and vm-b (the
//! plan's victim, 10.0.0.10), each fetch a page from the plan's server (10.0.0.20, no inventory
//! VM), and the server fetches a page from vm-a; one rule alerts on every HTTP request. Which
//! requests alert shows which connections the activity scanner inspected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::Value;
use svm_e2e::{Replay, TempDir, replay};
use testgen::{Capture, http_get, plan};

const INVENTORY: &str = "inventory:\n  - id: vm-a\n    name: a\n    nsx_external_id: 5012-a\n    interfaces:\n      - {mac: \"02:00:00:00:00:66\", vlan: \"100\", addresses: [10.0.0.66]}\n  - id: vm-b\n    name: b\n    nsx_external_id: 5012-b\n    interfaces:\n      - {mac: \"02:00:00:00:00:10\", vlan: \"100\", addresses: [10.0.0.10]}\n";

const RULES: &str = "alert tcp any any -> any 80 (msg:\"svm test request\"; flow:to_server,established; content:\"GET /\"; sid:1000001; rev:1;)\n";

/// Client source ports: vm-a's request out, vm-b's request out, the server's request to vm-a.
const A_OUT: u16 = 41_001;
const B_OUT: u16 = 41_002;
const TO_A: u16 = 41_003;

const S: u64 = 1_000_000;

fn capture() -> Capture {
    let link = plan::vlan100();
    let (a, b, server) = (plan::attacker(), plan::victim(), plan::server());
    let mut cap = Capture::new();
    cap.extend(http_get(&link, &a, &server, A_OUT, plan::BASE_US, 1_000));
    cap.extend(http_get(
        &link,
        &b,
        &server,
        B_OUT,
        plan::BASE_US + S,
        1_000,
    ));
    cap.extend(http_get(
        &link,
        &server,
        &a,
        TO_A,
        plan::BASE_US + 2 * S,
        1_000,
    ));
    cap
}

/// Replay the capture with the inventory and the rule, inline, under `policy`.
fn run(name: &str, policy: &str, extra: &[&str]) -> Replay {
    let dir = TempDir::new(&format!("{name}-in"));
    let inv = dir.path("inventory.yaml");
    std::fs::write(&inv, INVENTORY).unwrap();
    let rules = dir.path("test.rules");
    std::fs::write(&rules, RULES).unwrap();
    let (inv, rules) = (inv.to_str().unwrap(), rules.to_str().unwrap());
    let mut args = vec!["--inventory", inv, "--rules", rules, "--inline"];
    args.extend_from_slice(extra);
    replay(name, &capture(), Some(policy), &args)
}

/// The client source ports of the requests the rule alerted on, sorted.
fn alerted(r: &Replay) -> Vec<u16> {
    let mut ports: Vec<u16> = r
        .alerts("svm test request")
        .iter()
        .map(|a| u16::try_from(a["src_port"].as_u64().unwrap()).unwrap())
        .collect();
    ports.sort_unstable();
    ports
}

fn summary(r: &Replay, key: &str) -> u64 {
    r.summary[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {}", r.summary))
}

#[test]
fn every_vm_is_inspected_without_per_vm_settings() {
    let r = run("prot-none", "{}", &[]);
    assert_eq!(alerted(&r), [A_OUT, B_OUT, TO_A]);
    assert_eq!(summary(&r, "unprotected"), 0);
}

#[test]
fn a_vm_with_the_scanner_off_gets_no_rule_alert_while_another_does() {
    let r = run(
        "prot-off",
        "protection:\n  vms:\n    vm-a: {activity_scanner: false}\n",
        &[],
    );
    assert_eq!(alerted(&r), [B_OUT], "{:#?}", r.all_alerts());
    // The attack blocker still saw vm-a's frames: none is unprotected.
    assert_eq!(summary(&r, "unprotected"), 0);
}

#[test]
fn inbound_only_ignores_the_vms_outbound_connections() {
    let r = run(
        "prot-inbound",
        "protection:\n  vms:\n    vm-a: {direction: inbound}\n",
        &[],
    );
    // vm-a's own request (outbound) is not inspected; the server's request to vm-a is.
    assert_eq!(alerted(&r), [B_OUT, TO_A], "{:#?}", r.all_alerts());
    let r = run(
        "prot-outbound",
        "protection:\n  vms:\n    vm-a: {direction: outbound}\n",
        &[],
    );
    assert_eq!(alerted(&r), [A_OUT, B_OUT], "{:#?}", r.all_alerts());
}

#[test]
fn only_listed_vms_leaves_an_unnamed_vms_traffic_uninspected() {
    let r = run(
        "prot-only",
        "protection:\n  only_listed_vms: true\n  vms:\n    vm-b: {}\n",
        &[],
    );
    assert_eq!(alerted(&r), [B_OUT], "{:#?}", r.all_alerts());
    // vm-a's two exchanges (10 frames each) went through uninspected and counted.
    assert_eq!(summary(&r, "unprotected"), 20);
    let fwd_ports = |port: u16| {
        r.forwarded
            .iter()
            .filter(|f| {
                let x = svm_e2e::facts(&f.data);
                x.tcp_ports.is_some_and(|(s, d)| s == port || d == port)
            })
            .count()
    };
    assert_eq!(fwd_ports(A_OUT), 10);
    assert_eq!(fwd_ports(TO_A), 10);
}

#[test]
fn monitoring_mode_still_reports_what_the_vm_settings_leave_on() {
    let r = run(
        "prot-monitoring",
        "mode: monitoring\nprotection:\n  vms:\n    vm-a: {activity_scanner: false}\n",
        &[],
    );
    let alerts = r.alerts("svm test request");
    assert_eq!(alerted(&r), [B_OUT]);
    assert_eq!(alerts[0]["alert"]["action"], "allowed");
    assert_eq!(r.summary["monitoring"], true);
}

#[test]
fn vm_ids_the_inventory_lacks_are_refused_with_their_path() {
    let dir = TempDir::new("prot-unknown");
    let inv = dir.path("inventory.yaml");
    std::fs::write(&inv, INVENTORY).unwrap();
    let policy = dir.path("p.yaml");
    std::fs::write(
        &policy,
        "protection:\n  vms:\n    vm-a: {}\n    vm-zz: {direction: inbound}\n",
    )
    .unwrap();
    let pcap = dir.path("in.pcap");
    capture().write_pcap(&pcap).unwrap();
    let go = |with_inventory: bool| {
        let mut cmd = std::process::Command::new(svm_e2e::svm_bin());
        cmd.arg("replay").arg(&pcap).arg("--policy").arg(&policy);
        if with_inventory {
            cmd.arg("--inventory").arg(&inv);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = go(true);
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains("protection.vms.vm-zz: no VM \"vm-zz\" in the inventory"),
        "{err}"
    );
    assert!(!err.contains("vm-a:"), "{err}");
    // Without an inventory no id is known.
    let (code, err) = go(false);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("protection.vms.vm-a"), "{err}");
}

// ---- decode.too_deep ----------------------------------------------------------------------------

/// A UDP frame of vm-b's with nine 802.1Q tags (the decoder walks at most eight).
fn nine_tags(sport: u16) -> Vec<u8> {
    let f = plan::vlan100().udp(&plan::victim(), &plan::server(), sport, 53, b"x");
    let tag = f[12..16].to_vec();
    let mut out = f[..12].to_vec();
    for _ in 0..9 {
        out.extend_from_slice(&tag);
    }
    out.extend_from_slice(&f[16..]);
    out
}

/// An untagged IPv6 frame of vm-b's whose chain has nine extension headers (hop-by-hop, then
/// eight destination options; the decoder walks at most eight).
fn nine_ext_headers() -> Vec<u8> {
    let mut ip = vec![0x60, 0, 0, 0];
    let payload = 9 * 8 + 8;
    ip.extend_from_slice(&u16::try_from(payload).unwrap().to_be_bytes());
    ip.extend_from_slice(&[0, 64]); // next header hop-by-hop, hop limit
    ip.extend_from_slice(&"fd00::10".parse::<std::net::Ipv6Addr>().unwrap().octets());
    ip.extend_from_slice(&"fd00::20".parse::<std::net::Ipv6Addr>().unwrap().octets());
    for i in 0..9 {
        let next = if i == 8 { 17 } else { 60 };
        ip.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]); // PadN over the rest
    }
    ip.extend_from_slice(&[0, 53, 0, 53, 0, 8, 0, 0]);
    plan::untagged().ethernet(plan::VICTIM_MAC, plan::SERVER_MAC, 0x86dd, &ip)
}

/// Ten frames of each kind from vm-b within one second, then one more of each 61 s later.
fn deep_capture() -> Capture {
    let mut cap = Capture::new();
    for i in 0..10u16 {
        cap.push(plan::BASE_US + u64::from(i) * 1_000, nine_tags(50_000 + i));
        cap.push(
            plan::BASE_US + u64::from(i) * 1_000 + 500,
            nine_ext_headers(),
        );
    }
    cap.push(plan::BASE_US + 61 * S, nine_tags(50_100));
    cap.push(plan::BASE_US + 61 * S + 500, nine_ext_headers());
    cap
}

fn decoder_alerts(r: &Replay) -> Vec<&Value> {
    r.events
        .iter()
        .filter(|e| e["event_type"] == "alert" && e["alert"]["engine"] == "decoder")
        .collect()
}

#[test]
fn too_deep_frames_are_dropped_inline_by_default_and_reported_once_per_source_per_minute() {
    let r = replay("deep-drop", &deep_capture(), None, &["--inline"]);
    assert_eq!(summary(&r, "too_deep"), 22);
    assert_eq!(summary(&r, "dropped_too_deep"), 22);
    assert!(r.forwarded.is_empty(), "{} forwarded", r.forwarded.len());
    // One report per source MAC per minute: the first frame, and the first after 60 s.
    let alerts = decoder_alerts(&r);
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    assert_eq!(alerts[0]["alert"]["signature"], "Decode.VlanTooDeep");
    assert_eq!(alerts[0]["alert"]["signature_id"], 9_100_101);
    assert_eq!(alerts[0]["alert"]["action"], "blocked");
    assert_eq!(alerts[0]["src_ip"], "10.0.0.10");
    // The report names the first three tags, the deepest stack the decoder keeps.
    assert_eq!(alerts[0]["vlan"], serde_json::json!([100, 100, 100]));
    assert_eq!(alerts[1]["alert"]["signature"], "Decode.VlanTooDeep");
}

#[test]
fn too_deep_frames_pass_under_forward_and_on_a_mirror() {
    let r = replay(
        "deep-forward",
        &deep_capture(),
        Some("decode: {too_deep: forward}\n"),
        &["--inline"],
    );
    assert_eq!(summary(&r, "too_deep"), 22);
    assert_eq!(summary(&r, "dropped_too_deep"), 0);
    assert_eq!(r.forwarded.len(), 22);
    let alerts = decoder_alerts(&r);
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0]["alert"]["action"], "allowed");
    // A mirror cannot drop: the default choice reports only.
    let r = replay("deep-mirror", &deep_capture(), None, &[]);
    assert_eq!(summary(&r, "too_deep"), 22);
    assert_eq!(summary(&r, "dropped_too_deep"), 0);
    assert_eq!(decoder_alerts(&r).len(), 2);
    // Monitoring mode drops nothing either.
    let r = replay(
        "deep-monitoring",
        &deep_capture(),
        Some("mode: monitoring\n"),
        &["--inline"],
    );
    assert_eq!(summary(&r, "dropped_too_deep"), 0);
    assert_eq!(r.forwarded.len(), 22);
}

#[test]
fn an_ipv6_chain_too_long_is_reported_with_its_addresses() {
    let mut cap = Capture::new();
    cap.push(plan::BASE_US, nine_ext_headers());
    let r = replay("deep-v6", &cap, None, &["--inline"]);
    assert_eq!(summary(&r, "dropped_too_deep"), 1);
    let alerts = decoder_alerts(&r);
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0]["alert"]["signature"],
        "Decode.Ipv6ExtChainTooLong"
    );
    assert_eq!(alerts[0]["alert"]["signature_id"], 9_100_102);
    assert_eq!(alerts[0]["src_ip"], "fd00::10");
    assert_eq!(alerts[0]["dest_ip"], "fd00::20");
}
