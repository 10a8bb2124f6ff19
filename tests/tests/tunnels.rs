//! End-to-end: an HTTP request mirrored through each tunnel (testgen's `tunnel::encapsulate`)
//! replayed through the real `svm replay`: the rule on the inner request fires once, naming the
//! inner client; ERSPAN's VLAN scopes the inner flow; a tunnel switched off is not opened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::Value;
use svm_e2e::{TempDir, replay};
use testgen::tunnel::{Encap, encapsulate};
use testgen::{Capture, http_get, plan};

const POLICY: &str = "attack_blocker:\n  enabled: false\n";

fn request(link: &testgen::Link) -> Capture {
    http_get(
        link,
        &plan::victim(),
        &plan::server(),
        40_000,
        plan::BASE_US,
        1_000,
    )
}

/// The alerts of sid 1 a replay of `cap` raised, with `extra` arguments.
fn alerts(name: &str, cap: &Capture, extra: &[&str]) -> Vec<Value> {
    // replay() empties its own folder of that name: the rules live beside it.
    let dir = TempDir::new(&format!("{name}-rules"));
    let rules = dir.path("t.rules");
    std::fs::write(
        &rules,
        "alert http any any -> any any (msg:\"GET\"; http.method; content:\"GET\"; sid:1;)\n",
    )
    .unwrap();
    let rules = rules.display().to_string();
    let mut args = vec!["--rules", rules.as_str()];
    args.extend_from_slice(extra);
    replay(name, cap, Some(POLICY), &args)
        .events
        .into_iter()
        .filter(|e| e["event_type"] == "alert" && e["alert"]["signature_id"] == 1)
        .collect()
}

#[test]
fn each_tunnel_carries_the_request_to_the_rules() {
    let plain = request(&plan::untagged());
    let client = plan::VICTIM_V4.to_string();
    assert_eq!(alerts("tun-plain", &plain, &[]).len(), 1);
    for (name, encap, vlan) in [
        ("tun-vxlan", Encap::Vxlan, None),
        ("tun-geneve", Encap::Geneve, None),
        ("tun-gre-eth", Encap::GreEthernet, None),
        ("tun-gre-ip", Encap::GreIp, None),
        ("tun-erspan2", Encap::ErspanII { vlan: 23 }, Some(23)),
        ("tun-erspan3", Encap::ErspanIII { vlan: 23 }, Some(23)),
    ] {
        let got = alerts(name, &encapsulate(&plain, encap), &[]);
        assert_eq!(got.len(), 1, "{encap:?}: {got:?}");
        assert_eq!(got[0]["src_ip"], client.as_str(), "{encap:?}");
        let want_vlan = vlan.map(|v| serde_json::json!([v]));
        assert_eq!(got[0].get("vlan").cloned(), want_vlan, "{encap:?}");
    }
    // The inner frame's own tag wins over ERSPAN's VLAN.
    let tagged = request(&plan::vlan100());
    let got = alerts(
        "tun-erspan-tagged",
        &encapsulate(&tagged, Encap::ErspanII { vlan: 23 }),
        &[],
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["vlan"], serde_json::json!([100]));
}

#[test]
fn a_tunnel_switched_off_or_on_another_port_is_not_opened() {
    let vxlan = encapsulate(&request(&plan::untagged()), Encap::Vxlan);
    let off = ["--set", "decoder.vxlan.enabled=false"];
    assert_eq!(alerts("tun-vxlan-off", &vxlan, &off), Vec::<Value>::new());
    let moved = ["--set", "decoder.vxlan.ports=8472"];
    assert_eq!(
        alerts("tun-vxlan-moved", &vxlan, &moved),
        Vec::<Value>::new()
    );
}
