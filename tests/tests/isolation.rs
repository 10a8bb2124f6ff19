//! End-to-end: isolation of a protected VM in `svm replay` (issue 18): automatic on an outbound
//! scan, manual with custom exclusions, monitoring mode, mirror mode, a web address hit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::Value;
use svm_e2e::{Frame, Replay, TempDir, facts, replay};
use testgen::isolation::{self, AFTER_AT_S, HTTP_AFTER_SPORT, HTTP_ISOLATED_SPORT, SCAN_AT_S};
use testgen::{Capture, plan};

const S: u64 = 1_000_000;

const INVENTORY: &str = "inventory:\n  - id: vm-66\n    name: scanner\n    nsx_external_id: 5012-66\n    interfaces:\n      - {mac: \"02:00:00:00:00:66\", vlan: \"100\", addresses: [10.0.0.66]}\n";

fn capture() -> Capture {
    isolation::outbound_scan(&plan::vlan100(), plan::BASE_US)
}

/// Replay with the scenario's inventory written next to the capture.
fn run(name: &str, policy: &str, extra: &[&str]) -> Replay {
    run_with(INVENTORY, name, policy, extra)
}

/// [`run`] with another inventory.
fn run_with(inventory: &str, name: &str, policy: &str, extra: &[&str]) -> Replay {
    let dir = TempDir::new(&format!("{name}-inv"));
    let inv = dir.path("inventory.yaml");
    std::fs::write(&inv, inventory).unwrap();
    let inv = inv.to_str().unwrap().to_owned();
    let mut args = vec!["--inventory", inv.as_str()];
    args.extend_from_slice(extra);
    replay(name, &capture(), Some(policy), &args)
}

fn isolation_events<'a>(r: &'a Replay, kind: &str) -> Vec<&'a Value> {
    r.events
        .iter()
        .filter(|e| e["event_type"] == kind)
        .collect()
}

/// Input frames (by time) of one UDP or TCP port of the VM's side.
fn frames_with_port(frames: &[Frame], port: u16) -> Vec<&Frame> {
    frames
        .iter()
        .filter(|f| {
            let d = &f.data;
            let l3 = 18; // one 802.1Q tag
            let Some(&proto) = d.get(l3 + 9) else {
                return false;
            };
            let ihl = usize::from(d.get(l3).copied().unwrap_or(0) & 0x0f) * 4;
            let ports = |o: usize| {
                d.get(l3 + ihl + o..l3 + ihl + o + 2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]))
            };
            (proto == 6 || proto == 17) && (ports(0) == Some(port) || ports(2) == Some(port))
        })
        .collect()
}

fn forwarded_between(r: &Replay, port: u16, from_s: u64, to_s: u64) -> (usize, usize) {
    let within =
        |f: &&Frame| f.ts_us >= plan::BASE_US + from_s * S && f.ts_us < plan::BASE_US + to_s * S;
    let sent = frames_with_port(&r.input, port)
        .into_iter()
        .filter(within)
        .count();
    let fwd = frames_with_port(&r.forwarded, port)
        .into_iter()
        .filter(within)
        .count();
    (sent, fwd)
}

#[test]
fn outbound_scan_isolates_the_vm_automatically() {
    let r = run(
        "iso-auto",
        "attack_blocker: {action: inform}\nisolation: {automatic: {enabled: true, duration_minutes: 1}}\n",
        &["--inline"],
    );
    // The scan is reported as the attack blocker's action says (inform) ...
    let alerts = r.alerts("Scan.Generic.TCP");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["alert"]["action"], "allowed");
    assert!(r.blocks("add").is_empty(), "inform blocks nothing");
    // ... and isolates the VM, whatever that action.
    let started = isolation_events(&r, "isolation_started");
    assert_eq!(started.len(), 1, "{:#?}", r.events);
    let s = &started[0]["isolation"];
    assert_eq!(s["vm"]["id"], "vm-66");
    assert_eq!(s["reason"], "automatic");
    assert_eq!(s["signature"], "Scan.Generic.TCP");
    assert_eq!(s["duration"], 60);
    assert_eq!(
        s["exclusions"],
        serde_json::json!(["dhcp-client", "dhcp-server", "dns-client", "dns-server"])
    );
    assert!(s["flows_reset"].as_u64().unwrap() >= 1);
    assert_eq!(started[0]["timestamp"], alerts[0]["timestamp"]);
    // The long session was reset at once, both ends, with its VLAN tag.
    let session_resets: Vec<_> = r
        .injected
        .iter()
        .map(|f| facts(&f.data))
        .filter(|x| x.tcp_ports == Some((40_000, 22)) || x.tcp_ports == Some((22, 40_000)))
        .collect();
    assert_eq!(session_resets.len(), 2, "{session_resets:?}");
    for x in &session_resets {
        assert_eq!(x.vlan, vec![100]);
        assert_ne!(x.tcp_flags.unwrap() & 0x04, 0, "RST");
    }
    let to_server = session_resets
        .iter()
        .find(|x| x.tcp_ports == Some((40_000, 22)))
        .unwrap();
    // The server expects the VM's next byte: after "SSH-2.0-client\r\n" (16 bytes).
    assert_eq!(to_server.tcp_seq_ack.unwrap().0, 0x1000_0001 + 16);
    // The rest of the scan goes nowhere.
    let (sent, fwd) = forwarded_between(&r, 54_321, SCAN_AT_S, SCAN_AT_S + 1);
    assert!(
        sent > 150 && fwd < 45,
        "scan frames {sent} sent, {fwd} forwarded"
    );
    // The session's next segment is dropped; DNS and DHCP still work; HTTP is dropped.
    assert_eq!(forwarded_between(&r, 22, 3, 4), (1, 0));
    assert_eq!(forwarded_between(&r, 53, 4, 5), (2, 2));
    assert_eq!(forwarded_between(&r, 67, 4, 5), (2, 2));
    assert_eq!(forwarded_between(&r, HTTP_ISOLATED_SPORT, 5, 6), (10, 0));
    // ARP passes with the profiles.
    assert!(
        r.forwarded
            .iter()
            .any(|f| f.data.get(16..18) == Some(&[0x08, 0x06]))
    );
    // One minute after it started, to the microsecond, it is over; traffic flows again.
    let ended = isolation_events(&r, "isolation_ended");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["isolation"]["reason"], "expired");
    let start_ts = started[0]["timestamp"].as_str().unwrap();
    let end_ts = ended[0]["timestamp"].as_str().unwrap();
    assert_eq!(&start_ts[17..], &end_ts[17..], "same second fraction");
    assert_eq!(
        end_ts[14..16].parse::<u32>().unwrap(),
        start_ts[14..16].parse::<u32>().unwrap() + 1,
        "{start_ts} -> {end_ts}"
    );
    assert!(ended[0]["isolation"]["dropped"].as_u64().unwrap() > 90);
    assert_eq!(
        forwarded_between(&r, HTTP_AFTER_SPORT, AFTER_AT_S, AFTER_AT_S + 1),
        (10, 10)
    );
    let sum = &r.summary["isolation"];
    assert_eq!(sum["started"], 1);
    assert_eq!(sum["expired"], 1);
    assert!(sum["active"].as_array().unwrap().is_empty());
}

#[test]
fn manual_isolation_keeps_only_its_own_exclusions() {
    let r = run(
        "iso-manual",
        // The policy's exclusions are for automatic isolation only.
        "isolation: {automatic: {exclusions: [{profile: dns-client}]}}\n",
        &[
            "--inline",
            "--isolate",
            "vm-66:1",
            "--isolate-exclude",
            "{remote: 10.0.0.20, protocol: tcp, ports: [80], direction: outbound}",
        ],
    );
    let started = isolation_events(&r, "isolation_started");
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["isolation"]["reason"], "manual");
    assert_eq!(
        started[0]["isolation"]["exclusions"],
        serde_json::json!(["remote 10.0.0.20/32 tcp ports 80 outbound vlan any"])
    );
    // Isolated from the first frame: the session never opens (7 frames, and the scan's 3 to
    // port 22), DNS and DHCP are not excluded (4 frames each, and the scan's 2 to the port).
    assert_eq!(forwarded_between(&r, 22, 0, 4), (10, 0));
    assert_eq!(forwarded_between(&r, 53, 0, 5), (6, 0));
    assert_eq!(forwarded_between(&r, 67, 0, 5), (6, 0));
    // The scan is dropped before any engine sees it.
    assert!(r.alerts("Scan.Generic.TCP").is_empty());
    // HTTP to the server is the exclusion: it passes.
    assert_eq!(forwarded_between(&r, HTTP_ISOLATED_SPORT, 5, 6), (10, 10));
    let ended = isolation_events(&r, "isolation_ended");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["isolation"]["reason"], "expired");
    assert_eq!(ended[0]["isolation"]["origin"], "manual");
}

#[test]
fn monitoring_mode_reports_would_isolate_and_changes_nothing() {
    let r = run(
        "iso-monitoring",
        "mode: monitoring\nisolation: {automatic: {enabled: true}}\n",
        &["--inline"],
    );
    let would = isolation_events(&r, "would_isolate");
    assert_eq!(would.len(), 1);
    assert_eq!(would[0]["isolation"]["vm"]["id"], "vm-66");
    assert_eq!(would[0]["isolation"]["duration"], 480 * 60);
    assert!(isolation_events(&r, "isolation_started").is_empty());
    assert_eq!(r.forwarded.len(), r.input.len());
    assert!(r.injected.is_empty());
}

#[test]
fn mirror_mode_stops_tcp_only() {
    let r = run(
        "iso-mirror",
        "attack_blocker: {action: inform}\nisolation: {automatic: {enabled: true, duration_minutes: 1, exclusions: []}}\n",
        &[],
    );
    assert_eq!(isolation_events(&r, "isolation_started").len(), 1);
    // Every TCP segment of the VM while isolated is answered with resets (the session's at
    // isolation, then the next data segment, then the HTTP GET's); UDP cannot be stopped.
    let resets_to = |port: u16| {
        r.injected
            .iter()
            .map(|f| facts(&f.data))
            .filter(|x| x.tcp_ports.is_some_and(|(s, d)| s == port || d == port))
            .count()
    };
    assert!(
        resets_to(22) >= 4,
        "session reset at isolation and at its next segment"
    );
    assert!(resets_to(HTTP_ISOLATED_SPORT) >= 2);
    assert_eq!(resets_to(HTTP_AFTER_SPORT), 0, "after expiry");
    assert!(r.summary["isolation"]["dropped"].as_u64().unwrap() > 0);
}

#[test]
fn bad_inventory_and_isolate_arguments_are_refused() {
    let dir = TempDir::new("iso-bad");
    let pcap = dir.path("in.pcap");
    capture().write_pcap(&pcap).unwrap();
    let inv = dir.path("inv.yaml");
    std::fs::write(&inv, INVENTORY).unwrap();
    let bad_inv = dir.path("bad.yaml");
    std::fs::write(
        &bad_inv,
        "- {id: a, name: a, nsx_external_id: a, interfaces: [{mac: zz, vlan: \"100\"}]}\n",
    )
    .unwrap();
    let svm = svm_e2e::svm_bin();
    let try_run = |args: &[&str]| {
        let out = std::process::Command::new(&svm)
            .arg("replay")
            .arg(&pcap)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let inv = inv.to_str().unwrap();
    let (code, err) = try_run(&["--inventory", inv, "--isolate", "vm-404"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("vm-404"), "{err}");
    let (code, err) = try_run(&["--isolate", "vm-66"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("--inventory"), "{err}");
    let (code, err) = try_run(&["--inventory", bad_inv.to_str().unwrap()]);
    assert_ne!(code, Some(0));
    assert!(err.contains("mac"), "{err}");
    let (code, err) = try_run(&["--inventory", inv, "--isolate", "vm-66:0"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("minutes"), "{err}");
}

/// An inventory that gives the VM's MAC only: the VM is isolated by its MAC, and the address it
/// announces in its own ARP request (after the scan, while isolated) is learned, so
/// `isolation_ended` names it.
#[test]
fn addresses_are_learned_from_the_vms_own_arp() {
    let mac_only = INVENTORY.replace(", addresses: [10.0.0.66]", "");
    assert_ne!(mac_only, INVENTORY);
    let r = run_with(
        &mac_only,
        "iso-learn",
        "attack_blocker: {action: inform}\nisolation: {automatic: {enabled: true, duration_minutes: 1}}\n",
        &["--inline"],
    );
    assert_eq!(isolation_events(&r, "isolation_started").len(), 1);
    let ended = isolation_events(&r, "isolation_ended");
    assert_eq!(ended.len(), 1, "{:#?}", r.events);
    let nic = &ended[0]["isolation"]["vm"]["interfaces"][0];
    assert_eq!(nic["mac"], "02:00:00:00:00:66", "{nic}");
    assert_eq!(nic["addresses"], serde_json::json!(["10.0.0.66"]), "{nic}");
    assert!(ended[0]["isolation"]["dropped"].as_u64().unwrap() > 0);
}

/// The web address scenario (`testgen::web`: the victim 10.0.0.10 visits listed and benign
/// names) replayed inline with both lists, `inventory` and `policy`.
fn run_web(name: &str, inventory: &str, policy: &str) -> Replay {
    use testgen::web::{MALWARE_LIST, PHISHING_LIST, web_addresses};
    let dir = TempDir::new(&format!("{name}-inv"));
    let inv = dir.path("inventory.yaml");
    let mal = dir.path("malware.txt");
    let ph = dir.path("phishing.txt");
    std::fs::write(&inv, inventory).unwrap();
    std::fs::write(&mal, MALWARE_LIST).unwrap();
    std::fs::write(&ph, PHISHING_LIST).unwrap();
    let args = [
        "--inline".to_owned(),
        "--inventory".to_owned(),
        inv.display().to_string(),
        "--url-list".to_owned(),
        format!("malware={}", mal.display()),
        format!("phishing={}", ph.display()),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cap = web_addresses(&plan::vlan100(), plan::BASE_US);
    replay(name, &cap, Some(policy), &args)
}

const VICTIM_INVENTORY: &str = "inventory:\n  - id: vm-10\n    name: victim\n    nsx_external_id: 5012-10\n    interfaces:\n      - {mac: \"02:00:00:00:00:10\", vlan: \"100\", addresses: [10.0.0.10]}\n";

fn web_alerts(r: &Replay) -> Vec<&Value> {
    r.events
        .iter()
        .filter(|e| e["event_type"] == "alert" && e["alert"]["engine"] == "web_address_scan")
        .collect()
}

#[test]
fn a_malware_web_address_hit_isolates_the_vm_when_the_policy_names_it() {
    let policy = "web_address_scan: {action: inform}\nisolation: {automatic: {enabled: true, triggers: {web_categories: [malware]}}}\n";
    let r = run_web("iso-web", VICTIM_INVENTORY, policy);
    // The first visit (HTTP to a malware host) is reported as the scan's action says (inform,
    // forwarded) and isolates the VM asking for it.
    let started = isolation_events(&r, "isolation_started");
    assert_eq!(started.len(), 1, "{:#?}", r.events);
    let s = &started[0]["isolation"];
    assert_eq!(s["vm"]["id"], "vm-10");
    assert_eq!(s["reason"], "automatic");
    assert_eq!(s["engine"], "web_address_scan");
    assert_eq!(s["signature"], "Listed web address (malware): HTTP request");
    assert_eq!(s["signature_id"], 9_200_001);
    let alerts = web_alerts(&r);
    assert_eq!(started[0]["timestamp"], alerts[0]["timestamp"]);
    assert_eq!(alerts[0]["web_address"]["category"], "malware");
    // Its visit's connection is reset; from then on its HTTP and TLS go nowhere (no more hits
    // from them), while DNS passes with the default profiles and is still looked up: the
    // phishing query is the only other hit.
    assert!(s["flows_reset"].as_u64().unwrap() >= 1);
    let cats: Vec<&str> = alerts
        .iter()
        .map(|a| a["app_proto"].as_str().unwrap())
        .collect();
    assert_eq!(cats, ["http", "dns"], "{alerts:#?}");
    assert_eq!(forwarded_between(&r, 53, 0, 60), (4, 4));
    // Visit 0 (client port 47000) up to its request, then nothing of the other HTTP and TLS
    // visits (ports 47001..=47011).
    let (sent, fwd) = forwarded_between(&r, 47_000, 0, 60);
    assert!(fwd >= 4 && fwd < sent, "visit 0: {fwd} of {sent} forwarded");
    for port in 47_001..=47_011 {
        assert_eq!(forwarded_between(&r, port, 0, 60).1, 0, "port {port}");
    }
}

#[test]
fn web_address_hits_isolate_only_when_named_and_from_a_protected_vm() {
    const INFORM: &str = "{action: inform}";
    for (name, inventory, scan, triggers, hits) in [
        // Not named: another category, or no triggers at all (attack blocker only).
        (
            "iso-web-other",
            VICTIM_INVENTORY,
            INFORM,
            "triggers: {attack_blocker: true, web_categories: [gambling]}",
            8,
        ),
        (
            "iso-web-default",
            VICTIM_INVENTORY,
            INFORM,
            "duration_minutes: 480",
            8,
        ),
        // Named, but the client is no protected VM.
        (
            "iso-web-unprotected",
            INVENTORY,
            INFORM,
            "triggers: {web_categories: [malware, phishing]}",
            8,
        ),
        // Named, but its only hit left (the TLS one trusted) is a DNS query over UDP, which
        // anyone can send in the VM's name.
        (
            "iso-web-udp",
            VICTIM_INVENTORY,
            "{action: inform, trusted: [phish.svm-demo.test]}",
            "triggers: {web_categories: [phishing]}",
            7,
        ),
    ] {
        let policy = format!(
            "web_address_scan: {scan}\nisolation: {{automatic: {{enabled: true, {triggers}}}}}\n"
        );
        let r = run_web(name, inventory, &policy);
        assert_eq!(
            web_alerts(&r).len(),
            hits,
            "{name}: every listed visit reported"
        );
        assert!(
            r.events
                .iter()
                .all(|e| !e["event_type"].as_str().unwrap().contains("isolat")),
            "{name}: {:#?}",
            r.events
        );
        assert_eq!(r.forwarded.len(), r.input.len(), "{name}");
    }
}

#[test]
fn a_web_address_hit_in_monitoring_mode_reports_would_isolate() {
    let policy = "mode: monitoring\nweb_address_scan: {action: block}\nisolation: {automatic: {enabled: true, triggers: {web_categories: [malware]}}}\n";
    let r = run_web("iso-web-monitoring", VICTIM_INVENTORY, policy);
    // Each malware hit over TCP (five HTTP visits, one TLS) would isolate; nothing changes.
    let would = isolation_events(&r, "would_isolate");
    assert_eq!(would.len(), 6, "{would:#?}");
    assert!(
        would.iter().all(|w| w["isolation"]["vm"]["id"] == "vm-10"
            && w["isolation"]["engine"] == "web_address_scan")
    );
    assert!(isolation_events(&r, "isolation_started").is_empty());
    assert_eq!(r.forwarded.len(), r.input.len());
    assert!(r.injected.is_empty());
}
