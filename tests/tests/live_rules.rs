//! Activity scanner rules in `svm run` (issue 3): the `rules:` section of the daemon's
//! configuration, checked before any socket opens; rules matched on live traffic (AF_PACKET,
//! inline between an attacker and a victim namespace, topology of `common/live.rs`) with the
//! policy's `activity_scanner` action; alerts through the control plane's event pipeline into
//! EVE; SIGHUP reloads. The first test checks the same worker path offline (`svm replay`): a
//! `terminate` answer to a rule resets both ends, inline and on a mirror.
//!
//! The live tests need root, iproute2, ethtool, nmap, curl and python3; without them they print
//! why they are skipped and pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/live.rs"]
mod live;

use std::process::Command;
use std::time::Duration;

use live::{Backend, Net, events, skip_reason};
use serde_json::Value;
use svm_e2e::{TempDir, facts, replay, svm_bin};
use testgen::{http_get, plan};

macro_rules! skip_unless_able {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("SKIPPED live rules test: {why}");
            return;
        }
    };
}

/// `drop` on a URI, `alert` on another, a `drop` the policy excludes, and one rule the engine
/// refuses.
const RULES: &str = "\
drop http any any -> $HOME_NET any (msg:\"SVM test evil URI\"; flow:established,to_server; \
http.uri; content:\"/evil\"; classtype:web-application-attack; sid:9000001; rev:1;)
alert http any any -> $HOME_NET any (msg:\"SVM test watched URI\"; flow:established,to_server; \
http.uri; content:\"/watched\"; sid:9000002; rev:1;)
alert tcp any any -> any any (msg:\"SVM test bad rule\"; nosuchkeyword; sid:9000003; rev:1;)
drop http any any -> $HOME_NET any (msg:\"SVM test excluded URI\"; flow:established,to_server; \
http.uri; content:\"/excluded\"; sid:9000004; rev:1;)
";

fn rule_alerts(ev: &[Value], sid: u64) -> Vec<&Value> {
    ev.iter()
        .filter(|e| e["event_type"] == "alert" && e["alert"]["signature_id"] == sid)
        .collect()
}

#[test]
fn rule_terminate_resets_both_ends_offline() {
    let d = TempDir::new("rules-offline");
    let rules = d.path("t.rules");
    std::fs::write(
        &rules,
        "drop http any any -> any any (msg:\"GET\"; flow:to_server; http.method; content:\"GET\"; \
         sid:9000010; rev:1;)\n",
    )
    .unwrap();
    let r = rules.to_str().unwrap();
    let cap = http_get(
        &plan::untagged(),
        &plan::victim(),
        &plan::server(),
        40001,
        plan::BASE_US,
        1000,
    );
    let policy = |action: &str| {
        format!("attack_blocker:\n  enabled: false\nactivity_scanner:\n  action: {action}\n")
    };
    for (mode, extra) in [("inline", vec!["--inline"]), ("mirror", vec![])] {
        let mut args = vec!["--rules", r];
        args.extend(extra.iter().copied());
        let out = replay(
            &format!("rules-{mode}"),
            &cap,
            Some(&policy("terminate")),
            &args,
        );
        let a = rule_alerts(&out.events, 9_000_010);
        assert_eq!(a.len(), 1, "{mode}: {:?}", out.events);
        assert_eq!(a[0]["alert"]["action"], "blocked", "{mode}");
        assert_eq!(a[0]["alert"]["response"], "terminate", "{mode}");
        assert_eq!(a[0]["alert"]["engine"], "activity_scanner", "{mode}");
        assert_eq!(out.injected.len(), 2, "{mode}: one reset to each end");
        let to_server = facts(&out.injected[0].data);
        let to_client = facts(&out.injected[1].data);
        assert_eq!(to_server.dst, Some(plan::server().ip), "{mode}");
        assert_eq!(to_client.dst, Some(plan::victim().ip), "{mode}");
        for f in [&to_server, &to_client] {
            assert_ne!(f.tcp_flags.unwrap() & 0x04, 0, "{mode}: RST set");
        }
        if mode == "inline" {
            assert!(
                out.forwarded.len() < out.input.len(),
                "inline: the request and the rest of the flow are dropped"
            );
        } else {
            assert_eq!(out.forwarded.len(), out.input.len(), "mirror drops nothing");
        }
        // inform, monitoring and Suricata's --simulate-ips never reset.
        for (policy_yaml, more) in [
            (policy("inform"), vec![]),
            (format!("mode: monitoring\n{}", policy("terminate")), vec![]),
            (policy("terminate"), vec!["--simulate-ips"]),
        ] {
            let mut a2 = args.clone();
            a2.extend(more.iter().copied());
            let out = replay(
                &format!("rules-{mode}-quiet"),
                &cap,
                Some(&policy_yaml),
                &a2,
            );
            assert_eq!(rule_alerts(&out.events, 9_000_010).len(), 1, "{mode}");
            assert!(out.injected.is_empty(), "{mode} {policy_yaml} {more:?}");
        }
    }
}

#[test]
fn bad_rule_settings_are_refused_before_any_port_opens() {
    let d = TempDir::new("rules-config");
    let good = d.path("good.rules");
    std::fs::write(&good, RULES).unwrap();
    let cfg = d.path("svm.yaml");
    std::fs::write(
        &cfg,
        format!(
            "mode: inline\nvm_interface: nosuchif0\nnetwork_interface: nosuchif1\n\
             rules:\n  files: [{}, {}/*.missing, {}/gone.rules]\n  \
             threshold_file: {}/threshold.config\n  \
             address_groups: {{HOME_NET: \"[10.0.0.0/8\"}}\n",
            good.display(),
            d.0.display(),
            d.0.display(),
            d.0.display()
        ),
    )
    .unwrap();
    let out = Command::new(svm_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    for key in [
        "rules.files[1]:",
        "rules.files[2]:",
        "rules.threshold_file:",
        "rules.address_groups.HOME_NET:",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    assert!(err.contains("matches no file"), "{err}");
    assert!(
        !err.contains("rules.files[0]"),
        "the good file is fine:\n{err}"
    );
    assert!(!err.contains("af-packet"), "no socket was opened:\n{err}");

    // The section's shape is checked with the rest of the file.
    std::fs::write(
        &cfg,
        "mode: inline\nvm_interface: a\nnetwork_interface: b\nworkers: 0\n\
         rules: {files: [], colour: red}\n",
    )
    .unwrap();
    let out = Command::new(svm_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    for key in ["workers:", "rules.files:", "rules.colour:"] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
}

/// A curl request whose URI matches a `drop` rule is reset (policy `terminate`), its alert
/// carries the rule's sid; an `alert` rule only reports; a rule the policy excludes
/// (`rule_exclusions`) neither acts nor reports; benign traffic passes byte for byte.
/// With `state_dir`, the alerts travel the control plane's event pipeline to EVE.
#[test]
fn rule_match_resets_the_connection_and_is_reported() {
    skip_unless_able!();
    let mut net = Net::new('r', Backend::AfPacket);
    let dir = net.dir.path("rules");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("test.rules"), RULES).unwrap();
    let extra = format!(
        "rules:\n  files: [{}/*.rules]\n  address_groups: {{HOME_NET: \"[10.77.0.0/24]\"}}\n\
         state_dir: {}\n",
        dir.display(),
        net.dir.path("state").display()
    );
    let eve = net.start_svm_inline_with(
        "mode: standard\nactivity_scanner:\n  action: terminate\n  \
         rule_exclusions: [\"1:9000004:1\"]\n",
        2,
        &extra,
    );
    net.http_server('V', "0.0.0.0");
    net.wait_http('A', "10.77.0.2");
    let blob = net.blob();
    let (code, _) = net.curl_url('A', "http://10.77.0.2:8000/excluded", 10);
    assert_eq!(code, 0, "an excluded rule does not act");
    let (code, _) = net.curl_url('A', "http://10.77.0.2:8000/evil", 10);
    assert_eq!(code, 56, "curl of /evil: reset by peer expected");
    let (code, body) = net.curl_url('A', "http://10.77.0.2:8000/watched.html", 10);
    assert_eq!(code, 0, "an alert rule does not act");
    assert!(
        String::from_utf8_lossy(&body).contains("404"),
        "the server answered"
    );
    assert_eq!(net.curl('A', "10.77.0.2", 10).as_deref(), Some(&blob[..]));
    let log = net.stop_svm();

    assert!(
        log.contains("svm run: rules loaded: 3 loaded, 1 skipped from 1 files"),
        "{log}"
    );
    assert!(
        log.contains("nosuchkeyword"),
        "the skip reason is logged:\n{log}"
    );
    assert!(log.contains("rules: 3 loaded, 1 skipped"), "status:\n{log}");
    let ev = events(&eve);
    let evil = rule_alerts(&ev, 9_000_001);
    assert_eq!(evil.len(), 1, "{ev:?}\n{log}");
    let a = evil[0];
    assert_eq!(a["alert"]["action"], "blocked");
    assert_eq!(a["alert"]["response"], "terminate");
    assert_eq!(a["alert"]["engine"], "activity_scanner");
    assert_eq!(a["alert"]["signature"], "SVM test evil URI");
    assert_eq!(a["alert"]["category"], "Web Application Attack");
    assert_eq!(a["src_ip"], "10.77.0.1");
    assert_eq!(a["dest_port"], 8000);
    assert_eq!(a["http"]["url"], "/evil");
    assert!(
        a["id"].is_string(),
        "written by the control plane's pipeline: {a}"
    );
    let watched = rule_alerts(&ev, 9_000_002);
    assert_eq!(watched.len(), 1, "{ev:?}");
    assert_eq!(watched[0]["alert"]["action"], "allowed");
    assert!(rule_alerts(&ev, 9_000_003).is_empty());
    assert!(rule_alerts(&ev, 9_000_004).is_empty(), "excluded: {ev:?}");
    assert!(
        ev.iter()
            .all(|e| e["event_type"] != "alert" || e["alert"]["engine"] == "activity_scanner"),
        "benign traffic raised attack blocker alerts: {ev:?}"
    );
}

/// SIGHUP builds the new rule set beside the running one and swaps it in: a UDP stream that
/// runs across the reload arrives whole; afterwards the new rules act and the old do not; a
/// reload that fails keeps the running rules.
#[test]
fn sighup_reloads_the_rules_without_dropping_packets() {
    skip_unless_able!();
    let mut net = Net::new('u', Backend::AfPacket);
    let dir = net.dir.path("rules");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("local.rules");
    let uri_rule = |uri: &str, sid: u32| {
        format!(
            "drop http any any -> any any (msg:\"{uri}\"; flow:established,to_server; \
             http.uri; content:\"{uri}\"; sid:{sid}; rev:1;)\n"
        )
    };
    std::fs::write(&file, uri_rule("/evil", 9_000_001)).unwrap();
    let extra = format!("rules:\n  files: [{}/*.rules]\n", dir.display());
    let eve = net.start_svm_inline_with(
        "mode: standard\nactivity_scanner:\n  action: terminate\n",
        1,
        &extra,
    );
    net.http_server('V', "0.0.0.0");
    net.wait_http('A', "10.77.0.2");
    let url = |p: &str| format!("http://10.77.0.2:8000/{p}");
    assert_eq!(net.curl_url('A', &url("evil"), 10).0, 56);
    assert_eq!(net.curl_url('A', &url("other"), 10).0, 0);

    // The new set: 3000 more rules, so the build takes a while, and /other instead of /evil.
    let mut text = uri_rule("/other", 9_000_002);
    for i in 0..3000 {
        text.push_str(&format!(
            "alert tcp any any -> any any (msg:\"filler {i}\"; content:\"svm-filler-{i}-x\"; \
             sid:{}; rev:1;)\n",
            8_000_000 + i
        ));
    }
    std::fs::write(&file, text).unwrap();

    // A numbered UDP stream from A to V that runs until the reload is over.
    let stop = net.dir.path("udp.stop");
    // 33 is SO_RCVBUFFORCE (root may pass rmem_max): 16 MiB, so a receiver the loaded machine
    // starves for a while does not overflow its socket buffer.
    let receiver = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
        s.setsockopt(socket.SOL_SOCKET,33,1<<24)\ns.bind(('10.77.0.2',9999))\n\
        print('ready',flush=True)\ns.settimeout(20)\nseen=set()\nwhile True:\n  d=s.recv(64)\n  \
        if d==b'end':\n    break\n  seen.add(int(d))\n\
        miss=[i for i in range(max(seen,default=0)) if i not in seen]\n\
        print('missing',miss[:20],flush=True)\nprint('received',len(seen),flush=True)\n";
    net.spawn('V', &["python3", "-c", receiver], "udp-rx.log");
    // Datagrams sent before the receiver is bound would be refused, not lost by the SVM.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(net.dir.path("udp-rx.log"))
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "UDP receiver not ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sender = format!(
        "import socket,os,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nn=0\n\
         while not os.path.exists('{}') or n<500:\n  s.sendto(str(n).encode(),('10.77.0.2',9999))\n  \
         n+=1\n  time.sleep(0.002)\ntime.sleep(0.5)\nfor _ in range(5):\n  \
         s.sendto(b'end',('10.77.0.2',9999))\n  time.sleep(0.1)\nprint('sent',n,flush=True)\n",
        stop.display()
    );
    net.spawn('A', &["python3", "-c", &sender], "udp-tx.log");
    std::thread::sleep(Duration::from_millis(300));
    net.signal_svm("-HUP");
    net.wait_log("svm run: rules reloaded:", 1, Duration::from_secs(120));
    std::fs::write(&stop, "").unwrap();
    let read_count = |log: &str, word: &str| -> Option<u64> {
        let t = std::fs::read_to_string(net.dir.path(log)).unwrap_or_default();
        t.lines()
            .find_map(|l| l.strip_prefix(word).map(|n| n.trim().parse().unwrap()))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (sent, received) = loop {
        if let (Some(s), Some(r)) = (
            read_count("udp-tx.log", "sent"),
            read_count("udp-rx.log", "received"),
        ) {
            break (s, r);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the UDP stream did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(sent >= 500);
    if received != sent {
        net.signal_svm("-USR1");
        std::thread::sleep(Duration::from_millis(500));
        let snmp = net.exec('V', &["cat", "/proc/net/snmp"]);
        panic!(
            "{} of {sent} datagrams lost across the reload: {}\nvictim's UDP counters:\n{}\n{}",
            sent - received,
            std::fs::read_to_string(net.dir.path("udp-rx.log")).unwrap_or_default(),
            String::from_utf8_lossy(&snmp.stdout),
            net.svm_log()
        );
    }

    assert_eq!(
        net.curl_url('A', &url("evil"), 10).0,
        0,
        "the old rule is gone"
    );
    assert_eq!(
        net.curl_url('A', &url("other"), 10).0,
        56,
        "the new rule acts"
    );

    // A reload that fails (the pattern matches no file any more) keeps the running rules.
    std::fs::remove_file(&file).unwrap();
    net.signal_svm("-HUP");
    let log = net.wait_log("rules reload failed", 1, Duration::from_secs(60));
    assert!(log.contains("rules.files[0]"), "{log}");
    assert_eq!(
        net.curl_url('A', &url("other"), 10).0,
        56,
        "still the reloaded rules"
    );
    let log = net.stop_svm();
    assert!(log.contains("3001 loaded, 0 skipped"), "{log}");
    assert!(log.contains("reloads 1 ok, 1 failed"), "{log}");
    let ev = events(&eve);
    assert_eq!(rule_alerts(&ev, 9_000_001).len(), 1, "{ev:?}");
    assert_eq!(rule_alerts(&ev, 9_000_002).len(), 2, "{ev:?}");
}
