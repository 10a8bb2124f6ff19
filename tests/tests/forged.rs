//! End-to-end: blocking that forged packets cannot steer (issue 15 item 2), through the real
//! `svm replay --inline` on crafted captures. A detection one forged packet can cause blocks only
//! a source that completed a TCP handshake from its MAC address; an address carried from another
//! MAC than its own is never blocked; the policy's `never_block` list holds against every
//! detection. Each case also checks what the source's later traffic meets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashSet;

use svm_e2e::{Frame, Replay, facts, merge, replay};
use testgen::{Capture, Host, http_get, plan, scenarios};

const S: u64 = 1_000_000;
const MS: u64 = 1_000;

/// `attack` on VLAN 100 after `before`, then the attacker's follow-up traffic (SYNs to :443 and
/// an HTTP GET to the server) 30 s after the attack (past the scan detectors' window, so it is
/// not part of the attack's episode), which starts at the time returned.
fn with_follow_up(before: Vec<Capture>, attack: Capture) -> (Capture, u64) {
    let after = attack.last_ts().unwrap() + 30 * S;
    let mut parts = before;
    parts.push(attack);
    parts.push(scenarios::follow_up(&plan::vlan100(), after));
    (merge(parts), after)
}

fn forwarded(r: &Replay) -> HashSet<&Frame> {
    r.forwarded.iter().collect()
}

/// Frames from `from_us` on whose source is `src`, and how many of them were forwarded.
fn later_frames_of(r: &Replay, from_us: u64, src: Host) -> (usize, usize) {
    let fwd = forwarded(r);
    let later: Vec<&Frame> = r
        .input
        .iter()
        .filter(|f| f.ts_us >= from_us && facts(&f.data).src == Some(src.ip))
        .collect();
    let passed = later.iter().filter(|f| fwd.contains(**f)).count();
    (later.len(), passed)
}

/// Null, Xmas and SYN+FIN probes from an attacker that never completed a handshake: each
/// detection is reported and its probe dropped, the source is not blocked and the alert says
/// why; its later traffic passes.
#[test]
fn forged_flags_from_an_unverified_source_do_not_block() {
    for (scenario, signature) in [
        ("tcp_null", "Scan.Generic.TCPFlags.Null"),
        ("tcp_xmas", "Scan.Generic.TCPFlags.Xmas"),
        ("tcp_synfin", "Scan.Generic.TCPFlags.SynFin"),
    ] {
        let build = scenarios::by_name(scenario, false).unwrap();
        let (cap, after) = with_follow_up(vec![], build(&plan::vlan100(), plan::BASE_US));
        let r = replay(scenario, &cap, None, &["--inline"]);
        let a = r.alerts(signature);
        assert_eq!(a.len(), 1, "{scenario}: {:#?}", r.all_alerts());
        let alert = &a[0]["alert"];
        assert_eq!(alert["response"], "terminate", "{scenario}");
        assert_eq!(alert["block_skipped"], "unverified_source", "{scenario}");
        assert_eq!(
            alert["action"], "blocked",
            "{scenario}: the probe is dropped"
        );
        assert!(alert.get("block_minutes").is_none(), "{scenario}");
        assert!(
            r.blocks("add").is_empty(),
            "{scenario}: {:#?}",
            r.blocks("add")
        );
        assert_eq!(r.summary["dropped_blocked"], 0, "{scenario}");
        let (later, passed) = later_frames_of(&r, after, plan::attacker());
        assert!(later >= 10, "{scenario}: follow-up traffic present");
        assert_eq!(
            passed, later,
            "{scenario}: the unblocked source's traffic passes"
        );
    }
}

/// An HTTP GET from the attacker to the server on VLAN 100 (a complete handshake), Xmas probes
/// from it a second later, and its follow-up.
fn proven_then_xmas() -> (Capture, u64) {
    let link = plan::vlan100();
    let session = http_get(
        &link,
        &plan::attacker(),
        &plan::server(),
        41_000,
        plan::BASE_US,
        MS,
    );
    with_follow_up(vec![session], scenarios::tcp_xmas(&link, plan::BASE_US + S))
}

/// The same Xmas probes after the attacker completed a real handshake with the server (its ACK
/// acknowledged the SYN/ACK, from its own MAC): the source proved its address and is blocked,
/// its follow-up dropped.
#[test]
fn a_source_that_proved_its_address_is_blocked() {
    let (cap, after) = proven_then_xmas();
    let r = replay("proven", &cap, None, &["--inline"]);
    let a = r.alerts("Scan.Generic.TCPFlags.Xmas");
    assert_eq!(a.len(), 1, "{:#?}", r.all_alerts());
    assert_eq!(a[0]["alert"]["response"], "terminate_and_block");
    assert!(a[0]["alert"].get("block_skipped").is_none());
    let adds = r.blocks("add");
    assert_eq!(adds.len(), 1, "{adds:#?}");
    assert_eq!(adds[0]["src_ip"], plan::ATTACKER_V4.to_string());
    let (later, passed) = later_frames_of(&r, after, plan::attacker());
    assert!(later >= 10);
    assert_eq!(passed, 0, "the blocked source's later frames are dropped");
}

/// The victim VM (10.0.0.10, its own MAC) talks to the server; then a spoofer on the wire
/// carries the victim's address from its own MAC: Xmas probes and a SYN port scan. Every
/// spoofed frame is dropped and reported as MAC spoofing; the Xmas detection says
/// `block_skipped: spoofed_source`; the SYNs are not counted as the victim's scan; the victim
/// is never blocked, and its own traffic right after passes.
#[test]
fn a_spoofed_vm_address_is_never_blocked() {
    let link = plan::vlan100();
    let victim = plan::victim();
    let spoofer = plan::spoofer();
    let own = http_get(&link, &victim, &plan::server(), 42_000, plan::BASE_US, MS);
    let t = plan::BASE_US + S;
    let mut spoof = Capture::new();
    for (i, port) in (0u64..).zip([21u16, 22, 80]) {
        // FIN|PSH|URG
        spoof.push(
            t + i * 10 * MS,
            link.tcp(&spoofer, &plan::server(), 54_321, port, 0x29, 7, 0, &[]),
        );
    }
    for port in 1..=25u16 {
        spoof.push(
            t + 100 * MS + u64::from(port) * MS,
            link.tcp(&spoofer, &plan::server(), 54_322, port, 0x02, 9, 0, &[]),
        );
    }
    let after = http_get(&link, &victim, &plan::server(), 42_001, t + 2 * S, MS);
    let cap = merge(vec![own, spoof, after]);
    let r = replay("spoofed-vm", &cap, None, &["--inline"]);
    let alerts = r.all_alerts();
    assert!(!r.alerts("Spoof.Generic.MAC").is_empty());
    assert_eq!(
        r.alerts("Scan.Generic.TCPFlags.Xmas").len(),
        1,
        "{alerts:#?}"
    );
    assert!(
        r.alerts("Scan.Generic.TCP").is_empty(),
        "not the victim's scan"
    );
    for a in &alerts {
        assert_eq!(a["src_ip"], plan::VICTIM_V4.to_string());
        assert_eq!(a["alert"]["response"], "terminate");
        if a["alert"]["signature"] != "Spoof.Generic.MAC" {
            assert_eq!(a["alert"]["block_skipped"], "spoofed_source", "{a:#}");
        }
    }
    assert!(r.blocks("add").is_empty(), "{:#?}", r.blocks("add"));
    let fwd = forwarded(&r);
    let spoofed: Vec<&Frame> = r
        .input
        .iter()
        .filter(|f| f.data[6..12] == spoofer.mac)
        .collect();
    assert_eq!(spoofed.len(), 28);
    for f in spoofed {
        assert!(!fwd.contains(f), "a spoofed frame is dropped");
    }
    let victim_frames: Vec<&Frame> = r
        .input
        .iter()
        .filter(|f| facts(&f.data).src == Some(victim.ip) && f.data[6..12] == victim.mac)
        .collect();
    assert!(
        victim_frames.len() >= 8,
        "the victim's own frames: {}",
        victim_frames.len()
    );
    for f in victim_frames {
        assert!(fwd.contains(f), "the victim's own traffic passes");
    }
}

/// `never_block` names the attacker: its port scan (a rate detection that blocks any source)
/// and its proven Xmas probes are reported and terminated, never blocked.
#[test]
fn never_block_list_is_never_blocked() {
    let link = plan::vlan100();
    let policy = "never_block: [10.0.0.64/30, \"2001:db8::53\"]\n";
    let scan = scenarios::tcp_port_scan(&link, plan::BASE_US);
    let (cap, after) = with_follow_up(vec![], scan);
    let r = replay("never-block-scan", &cap, Some(policy), &["--inline"]);
    let a = r.alerts("Scan.Generic.TCP");
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["alert"]["block_skipped"], "never_block");
    assert_eq!(a[0]["alert"]["response"], "terminate");
    assert!(r.blocks("add").is_empty());
    let (later, passed) = later_frames_of(&r, after, plan::attacker());
    assert!(later >= 10);
    assert_eq!(passed, later, "the source is not blocked");

    let (cap, _) = proven_then_xmas();
    let r = replay("never-block-proven", &cap, Some(policy), &["--inline"]);
    let a = r.alerts("Scan.Generic.TCPFlags.Xmas");
    assert_eq!(a[0]["alert"]["block_skipped"], "never_block");
    assert!(r.blocks("add").is_empty());

    // Without the list the same scan blocks.
    let (cap, _) = with_follow_up(vec![], scenarios::tcp_port_scan(&link, plan::BASE_US));
    let r = replay("never-block-none", &cap, None, &["--inline"]);
    assert_eq!(r.blocks("add").len(), 1);
}

/// A bad `never_block` entry is refused with its place, and nothing is replayed.
#[test]
fn a_bad_never_block_entry_is_refused_with_its_place() {
    let cap = scenarios::tcp_null(&plan::vlan100(), plan::BASE_US);
    let dir = svm_e2e::TempDir::new("never-block-bad");
    let pcap = dir.path("in.pcap");
    cap.write_pcap(&pcap).unwrap();
    let pol = dir.path("policy.yaml");
    std::fs::write(&pol, "never_block: [10.0.0.1, 10.0.0.300]\n").unwrap();
    let out = std::process::Command::new(svm_e2e::svm_bin())
        .arg("replay")
        .arg(&pcap)
        .arg("--policy")
        .arg(&pol)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("never_block[1]"), "{err}");
}
