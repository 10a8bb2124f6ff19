//! End-to-end: a random-source SYN flood past the flow table's cap (`--set flows.max=1024`),
//! through the real `svm replay --inline` with a rule file. The flood evicts its own unanswered
//! flows: a connection established before it keeps its state (its data after the flood is
//! reassembled and inspected, which a flow picked up midstream is not), and a connection opened
//! after it is forwarded and inspected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::{IpAddr, Ipv4Addr};

use svm_e2e::{TempDir, merge, replay};
use testgen::tcp_flags::SYN;
use testgen::{Capture, plan, tcp_session};

const MS: u64 = 1_000;
/// Spoofed SYNs, twenty times the table's cap.
const FLOOD: u32 = 20_480;

const RULES: &str = "\
alert tcp any any -> any 80 (msg:\"data after the flood, old connection\"; flow:established,to_server; content:\"after-flood-old\"; sid:9100001; rev:1;)
alert tcp any any -> any 80 (msg:\"data after the flood, new connection\"; flow:established,to_server; content:\"after-flood-new\"; sid:9100002; rev:1;)
";

#[test]
fn a_random_source_syn_flood_past_the_cap_leaves_benign_connections_forwarded_and_inspected() {
    let link = plan::untagged();
    let start = plan::BASE_US;
    let server = plan::server();
    let old_client = plan::sweep_target(1);
    let new_client = plan::sweep_target(2);
    // The old connection: handshake at 0, 100, 200 ms; its request at 300 ms, after the flood.
    let old = tcp_session(
        &link,
        &old_client,
        &server,
        41_000,
        80,
        b"GET /after-flood-old HTTP/1.1\r\nHost: s\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        start,
        100 * MS,
    );
    // The flood: 220..282 ms, one SYN every 3 us each from its own 10.200.0.0/16 source,
    // to the victim.
    let mut flood = Capture::new();
    for i in 0..FLOOD {
        let ip = Ipv4Addr::from(0x0ac8_0000 | i);
        let src = plan::attacker().with_ip(IpAddr::V4(ip));
        let sport = 1024 + u16::try_from(i % 60_000).unwrap();
        flood.push(
            start + 220 * MS + u64::from(i) * 3,
            link.tcp(
                &src,
                &plan::victim(),
                sport,
                80,
                SYN,
                i.wrapping_mul(2_654_435_761),
                0,
                &[],
            ),
        );
    }
    // The new connection, opened after the flood.
    let new = tcp_session(
        &link,
        &new_client,
        &server,
        42_000,
        80,
        b"GET /after-flood-new HTTP/1.1\r\nHost: s\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        start + 2_000 * MS,
        MS,
    );
    let benign: Vec<Vec<u8>> = old
        .frames
        .iter()
        .chain(new.frames.iter())
        .map(|f| f.data.clone())
        .collect();
    let cap = merge(vec![old, flood, new]);

    let dir = TempDir::new("flow-flood-rules");
    let rules = dir.path("flood.rules");
    std::fs::write(&rules, RULES).unwrap();
    let rules = rules.to_str().unwrap();
    let r = replay(
        "flow-flood",
        &cap,
        None,
        &["--inline", "--rules", rules, "--set", "flows.max=1024"],
    );

    assert_eq!(r.summary["flow_emergencies"], 1, "{}", r.summary);
    let evicted = r.summary["flows_evicted"].as_u64().unwrap();
    assert!(evicted >= u64::from(FLOOD) - 1024, "{}", r.summary);
    // One SYN a source: no source earned per-source state, so the attack blocker evicted
    // nothing; its first-seen counter is reported (how many sightings collided depends on the
    // per-process hash seed).
    assert_eq!(r.summary["attack_state_evicted"], 0, "{}", r.summary);
    assert!(
        r.summary["attack_first_seen_replaced"].is_u64(),
        "{}",
        r.summary
    );
    for frame in &benign {
        assert!(
            r.forwarded.iter().any(|f| &f.data == frame),
            "a benign frame was not forwarded: {:?}",
            svm_e2e::facts(frame)
        );
    }
    let sids: Vec<u64> = r
        .all_alerts()
        .iter()
        .filter_map(|a| a["alert"]["signature_id"].as_u64())
        .collect();
    assert!(
        sids.contains(&9_100_001),
        "the connection established before the flood was inspected after it: {sids:?}"
    );
    assert!(
        sids.contains(&9_100_002),
        "the connection opened after the flood was inspected: {sids:?}"
    );
}
