//! End-to-end: the web address scan in `svm replay` over the testgen scenario
//! (`testgen::web`): HTTP, TLS and DNS visits to listed and benign names; each action (block
//! inline, block on a mirror, inform), monitoring mode, trusted addresses, categories, lists named
//! by the policy; later requests on a kept-alive connection, DNS over TCP answered, QUIC
//! Initials dropped under `quic: block` reported once a flow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;
use svm_e2e::{Frame, Replay, TempDir, facts, replay};
use testgen::web::{MALWARE_LIST, PHISHING_LIST, VISITS, Visit, web_addresses};
use testgen::{Capture, plan};

const FIRST_PORT: u16 = 47_000;

fn capture() -> Capture {
    web_addresses(&plan::vlan100(), plan::BASE_US)
}

/// The two lists written to `dir`, as `--url-list` arguments.
fn lists(dir: &TempDir) -> Vec<String> {
    let mal = dir.path("malware.txt");
    let ph = dir.path("phishing.txt");
    std::fs::write(&mal, MALWARE_LIST).unwrap();
    std::fs::write(&ph, PHISHING_LIST).unwrap();
    vec![
        "--url-list".into(),
        format!("malware={}", mal.display()),
        format!("phishing={}", ph.display()),
    ]
}

fn run(name: &str, policy: Option<&str>, extra: &[&str]) -> Replay {
    let dir = TempDir::new(&format!("web-lists-{name}"));
    let mut args = lists(&dir);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    replay(name, &capture(), policy, &args)
}

/// `svm replay` of the scenario with this policy, which must be refused as invalid (exit 4):
/// its standard error.
fn refused(name: &str, policy: &str) -> String {
    let dir = TempDir::new(name);
    let p = dir.path("bad.yaml");
    std::fs::write(&p, policy).unwrap();
    let pcap = dir.path("in.pcap");
    capture().write_pcap(&pcap).unwrap();
    let out = std::process::Command::new(svm_e2e::svm_bin())
        .arg("replay")
        .arg(&pcap)
        .arg("--policy")
        .arg(&p)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(4), "{err}");
    err
}

fn web_alerts(r: &Replay) -> Vec<&Value> {
    r.events
        .iter()
        .filter(|e| e["event_type"] == "alert" && e["alert"]["engine"] == "web_address_scan")
        .collect()
}

/// The visit an alert is about (by the client's source port).
fn visit_of(alert: &Value) -> usize {
    let port = alert["src_port"].as_u64().unwrap();
    usize::try_from(port - u64::from(FIRST_PORT)).unwrap()
}

fn listed() -> BTreeMap<usize, &'static str> {
    VISITS
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.listed.map(|c| (i, c)))
        .collect()
}

/// The visit a TCP frame belongs to.
fn tcp_visit(f: &Frame) -> Option<usize> {
    let (a, b) = facts(&f.data).tcp_ports?;
    let client = if a >= FIRST_PORT { a } else { b };
    Some(usize::from(client - FIRST_PORT))
}

fn dropped(r: &Replay) -> Vec<&Frame> {
    let fwd: HashSet<&[u8]> = r.forwarded.iter().map(|f| &f.data[..]).collect();
    r.input
        .iter()
        .filter(|f| !fwd.contains(&f.data[..]))
        .collect()
}

/// Every listed visit reported once, with its category, app fields and list entry; no benign
/// visit reported.
fn check_reports(r: &Replay, action: &str) {
    let alerts = web_alerts(r);
    let got: BTreeMap<usize, &str> = alerts
        .iter()
        .map(|a| (visit_of(a), a["web_address"]["category"].as_str().unwrap()))
        .collect();
    assert_eq!(got, listed(), "{alerts:#?}");
    assert_eq!(alerts.len(), got.len(), "one report per visit");
    for a in &alerts {
        let i = visit_of(a);
        let w = &a["web_address"];
        assert_eq!(w["action"], action);
        assert_eq!(w["list_version"].as_str().unwrap().len(), 16);
        assert!(w["list"].as_str().unwrap().ends_with(".txt"));
        assert!(!w["entry"].as_str().unwrap().is_empty());
        assert_eq!(a["vlan"], serde_json::json!([100]));
        assert!(a["alert"]["severity"].as_u64().unwrap() >= 1);
        match VISITS[i].visit {
            Visit::Http { host, target } => {
                assert_eq!(a["app_proto"], "http");
                assert_eq!(a["http"]["hostname"], host);
                assert_eq!(a["http"]["url"], target);
            }
            Visit::Tls(name) => {
                assert_eq!(a["app_proto"], "tls");
                assert_eq!(a["tls"]["sni"], name);
            }
            Visit::Dns(name) => {
                assert_eq!(a["app_proto"], "dns");
                assert_eq!(a["dns"]["query"][0]["rrname"], name);
            }
        }
    }
    // The popular host's listed URL names its path; the host alone is never the entry.
    let gh = alerts.iter().find(|a| visit_of(a) == 2).unwrap();
    assert_eq!(
        gh["web_address"]["entry"],
        "github.com/00094/string-remover/raw/refs/heads/main/rah.exe"
    );
    let idn = alerts.iter().find(|a| visit_of(a) == 8).unwrap();
    assert_eq!(idn["web_address"]["entry"], "xn--bse-sna.svm-demo.test");
    let ip = alerts.iter().find(|a| visit_of(a) == 6).unwrap();
    assert_eq!(ip["web_address"]["entry"], "198.51.100.7/payload.bin");
    let esc = alerts.iter().find(|a| visit_of(a) == 4).unwrap();
    assert_eq!(
        esc["web_address"]["entry"],
        "cdn.svm-demo.test/download/Evil.exe"
    );
}

#[test]
fn inline_block_answers_http_with_the_page_and_resets_tls() {
    let r = run("inline", None, &["--inline"]);
    check_reports(&r, "block");
    for a in web_alerts(&r) {
        assert_eq!(a["alert"]["action"], "blocked");
        assert_eq!(a["alert"]["response"], "terminate");
    }
    let dropped = dropped(&r);
    let listed = listed();
    for (i, v) in VISITS.iter().enumerate() {
        let lost: Vec<&&Frame> = dropped.iter().filter(|f| tcp_visit(f) == Some(i)).collect();
        if matches!(v.visit, Visit::Dns(_)) {
            continue;
        }
        if listed.contains_key(&i) {
            // The request or ClientHello and everything after it (the flow is terminated).
            let first = facts(&lost[0].data);
            assert_eq!(first.src, Some(plan::VICTIM_V4.into()), "visit {i}");
            assert_eq!(lost.len(), 7, "visit {i}: {} frames dropped", lost.len());
        } else {
            assert!(lost.is_empty(), "benign visit {i} lost frames: {}", v.why);
        }
    }
    // DNS: the listed query is dropped and answered by the appliance (the server's answer in
    // the capture still passes: the scan reads queries), the benign one passes.
    let udp_dropped: Vec<&&Frame> = dropped
        .iter()
        .filter(|f| facts(&f.data).tcp_ports.is_none())
        .collect();
    assert_eq!(udp_dropped.len(), 1);
    assert_eq!(r.summary["web"]["dropped"], 8, "{:#}", r.summary["web"]);

    // Injected: HTTP gets RST to the server, the page with FIN, RST past it; TLS two resets.
    let mut per_visit: BTreeMap<usize, Vec<svm_e2e::Facts>> = BTreeMap::new();
    let mut dns_answers = 0;
    for f in &r.injected {
        if facts(&f.data).tcp_ports.is_none() {
            // The DNS block answer (UDP, from the server to the client).
            assert_eq!(facts(&f.data).src, Some(plan::SERVER_V4.into()));
            dns_answers += 1;
            continue;
        }
        per_visit
            .entry(tcp_visit(f).unwrap())
            .or_default()
            .push(facts(&f.data));
        assert_eq!(facts(&f.data).vlan, vec![100], "the flow's VLAN tag");
    }
    for (i, frames) in &per_visit {
        match VISITS[*i].visit {
            Visit::Http { .. } => {
                assert_eq!(frames.len(), 3, "visit {i}");
                assert_eq!(frames[0].dst, Some(plan::SERVER_V4.into()));
                assert_eq!(
                    frames[0].tcp_flags.unwrap() & 0x04,
                    0x04,
                    "RST to the server"
                );
                assert_eq!(frames[1].dst, Some(plan::VICTIM_V4.into()));
                assert_eq!(frames[1].tcp_flags.unwrap() & 0x11, 0x11, "FIN|ACK");
                assert_eq!(
                    frames[2].tcp_flags.unwrap() & 0x04,
                    0x04,
                    "RST to the client"
                );
            }
            Visit::Tls(_) => assert_eq!(frames.len(), 2, "visit {i}"),
            Visit::Dns(_) => panic!("nothing injected for DNS over UDP"),
        }
    }
    assert_eq!(per_visit.len(), 7, "every listed TCP visit answered");
    assert_eq!(dns_answers, 1, "the listed query answered");
    // The page itself: a 403 naming the address, the category and the list.
    let page = r
        .injected
        .iter()
        .map(|f| String::from_utf8_lossy(&f.data).into_owned())
        .find(|s| s.contains("HTTP/1.1 403 Forbidden"))
        .unwrap();
    for want in [
        "Connection: close",
        "Cache-Control: no-store",
        "malware.txt",
        "malware",
    ] {
        assert!(page.contains(want), "{want} missing from {page}");
    }
    let hits = &r.summary["web"]["hits"];
    assert_eq!(hits["malware"], 6);
    assert_eq!(hits["phishing"], 2);
}

#[test]
fn monitoring_mode_reports_would_block_and_changes_nothing() {
    let r = run("monitoring", Some("mode: monitoring\n"), &["--inline"]);
    check_reports(&r, "block");
    for a in web_alerts(&r) {
        assert_eq!(a["alert"]["action"], "allowed");
        assert_eq!(a["alert"]["would_block"], true);
    }
    assert_eq!(r.forwarded.len(), r.input.len(), "nothing dropped");
    assert!(r.injected.is_empty(), "no page, no reset");
}

#[test]
fn inform_reports_only() {
    let r = run(
        "inform",
        Some("web_address_scan:\n  action: inform\n"),
        &["--inline"],
    );
    check_reports(&r, "inform");
    for a in web_alerts(&r) {
        assert_eq!(a["alert"]["action"], "allowed");
        assert!(a["alert"].get("would_block").is_none());
    }
    assert_eq!(r.forwarded.len(), r.input.len());
    assert!(r.injected.is_empty());
}

#[test]
fn mirror_resets_tcp_and_reports_dns() {
    let r = run("mirror", None, &[]);
    check_reports(&r, "block");
    let mut resets: BTreeMap<usize, usize> = BTreeMap::new();
    for f in &r.injected {
        let x = facts(&f.data);
        assert_eq!(x.tcp_flags.unwrap() & 0x04, 0x04, "only resets on a mirror");
        *resets.entry(tcp_visit(f).unwrap()).or_default() += 1;
    }
    let tcp_listed: Vec<usize> = listed()
        .keys()
        .copied()
        .filter(|i| !matches!(VISITS[*i].visit, Visit::Dns(_)))
        .collect();
    assert_eq!(resets.keys().copied().collect::<Vec<_>>(), tcp_listed);
    assert!(resets.values().all(|n| *n == 2));
    let dns = web_alerts(&r)
        .into_iter()
        .find(|a| a["app_proto"] == "dns")
        .unwrap();
    assert_eq!(
        dns["alert"]["action"], "allowed",
        "a mirror cannot stop a datagram"
    );
}

#[test]
fn trusted_addresses_beat_the_lists_and_categories_choose_lists() {
    let r = run(
        "trusted",
        Some(
            "web_address_scan:\n  trusted:\n    - malware.svm-demo.test\n    - \
             github.com/00094/\n",
        ),
        &["--inline"],
    );
    let got: Vec<usize> = web_alerts(&r).iter().map(|a| visit_of(a)).collect();
    assert!(
        !got.contains(&0) && !got.contains(&1) && !got.contains(&2),
        "{got:?}"
    );
    assert!(got.contains(&4) && got.contains(&9));
    assert_eq!(r.summary["web"]["trusted"], 3);

    let r = run(
        "categories",
        Some("web_address_scan:\n  categories: [phishing]\n"),
        &["--inline"],
    );
    let cats: HashSet<String> = web_alerts(&r)
        .iter()
        .map(|a| a["web_address"]["category"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(cats, HashSet::from(["phishing".to_owned()]));
    assert_eq!(r.summary["web"]["lists"], 1);
}

#[test]
fn lists_named_by_the_policy_load_and_bad_values_are_refused() {
    let dir = TempDir::new("web-policy-lists");
    let mal = dir.path("m.txt");
    std::fs::write(&mal, MALWARE_LIST).unwrap();
    let policy = format!(
        "web_address_scan:\n  url_lists: [\"malware={}\"]\n",
        mal.display()
    );
    let r = replay("web-policy", &capture(), Some(&policy), &["--inline"]);
    assert_eq!(web_alerts(&r).len(), 6);

    // A bad policy value names its place; a list that cannot be read names its key.
    let err = refused(
        "web-policy-bad",
        "web_address_scan:\n  action: drop\n  trusted: [com]\n  url_lists: [nofile]\n",
    );
    for key in [
        "web_address_scan.action",
        "web_address_scan.trusted[0]",
        "web_address_scan.url_lists[0]",
    ] {
        assert!(err.contains(key), "{key} missing: {err}");
    }
    let pcap = dir.path("in.pcap");
    capture().write_pcap(&pcap).unwrap();
    let out = std::process::Command::new(svm_e2e::svm_bin())
        .args([
            "replay",
            pcap.to_str().unwrap(),
            "--url-list",
            &format!("malware={}", dir.path("gone.txt").display()),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("gone.txt"), "{err}");
}

/// A DNS A query for `name` with an EDNS OPT record (the form stub resolvers send).
fn edns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = testgen::dns_a_query(id, name);
    q[11] = 1; // ARCOUNT
    q.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]); // OPT, 4096 bytes, no options
    q
}

/// The UDP payload of an injected frame (after its Ethernet, tags and IPv4 header; no options).
fn udp_payload(frame: &[u8]) -> &[u8] {
    let l3 = 14 + 4 * facts(frame).vlan.len();
    &frame[l3 + 20 + 8..]
}

fn dns_capture(names: &[&str]) -> Capture {
    let link = plan::vlan100();
    let mut cap = Capture::new();
    for (i, name) in names.iter().enumerate() {
        let n = u16::try_from(i).unwrap();
        cap.push(
            plan::BASE_US + u64::from(n) * 1000,
            link.udp(
                &plan::victim(),
                &plan::server(),
                47_100 + n,
                53,
                &edns_query(0x6100 + n, name),
            ),
        );
    }
    cap
}

#[test]
fn dns_block_answers_the_query_with_the_list_and_the_canary_gets_nxdomain() {
    let dir = TempDir::new("web-dns");
    let args = lists(&dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let names = [
        "malware.svm-demo.test",
        "use-application-dns.net",
        "www.example.org",
    ];
    let cap = dns_capture(&names);
    for (mode, rcode, ede) in [("null", 0u8, 4u8), ("nxdomain", 3, 15)] {
        let policy = format!("web_address_scan:\n  dns_answer: {mode}\n");
        let mut a = args.clone();
        a.push("--inline");
        let r = replay(&format!("web-dns-{mode}"), &cap, Some(&policy), &a);
        assert_eq!(
            r.forwarded.len(),
            1,
            "only the benign query passes ({mode})"
        );
        assert_eq!(r.injected.len(), 2, "the block answer and the canary's");
        assert_eq!(r.summary["web"]["doh_canary"], 1);
        let block = udp_payload(&r.injected[0].data);
        assert_eq!(block[..2], 0x6100u16.to_be_bytes(), "the query's id");
        assert_eq!(block[3] & 0x0f, rcode, "{mode}: rcode");
        // RFC 8914 option 15 (the message's last bytes: code, length, info code, extra text)
        // and the list in its text.
        let ede_at = (0..block.len() - 6)
            .find(|&i| {
                block[i..i + 2] == [0, 15]
                    && usize::from(u16::from_be_bytes([block[i + 2], block[i + 3]]))
                        == block.len() - i - 4
            })
            .expect("an Extended DNS Error");
        assert_eq!(block[ede_at + 5], ede, "{mode}: info code");
        let text = String::from_utf8_lossy(block);
        assert!(text.contains("malware.txt"), "{text}");
        let f = facts(&r.injected[0].data);
        assert_eq!(f.src, Some(plan::SERVER_V4.into()));
        assert_eq!(f.vlan, vec![100]);
        let canary = udp_payload(&r.injected[1].data);
        assert_eq!(canary[..2], 0x6101u16.to_be_bytes());
        assert_eq!(canary[3] & 0x0f, 3, "the canary gets NXDOMAIN");
        let alerts = web_alerts(&r);
        assert_eq!(alerts.len(), 1, "the canary is not a listed address");
        assert_eq!(alerts[0]["dns"]["query"][0]["rrname"], names[0]);
    }
    // Canary answers off, and on a mirror: nothing injected for DNS.
    let mut a = args.clone();
    a.push("--inline");
    let r = replay(
        "web-dns-nocanary",
        &cap,
        Some("web_address_scan:\n  doh_canary_nxdomain: false\n"),
        &a,
    );
    assert_eq!(r.forwarded.len(), 2);
    assert_eq!(r.injected.len(), 1);
    let r = replay("web-dns-mirror", &cap, None, &args);
    assert!(r.injected.is_empty());
    assert_eq!(web_alerts(&r)[0]["alert"]["action"], "allowed");
}

/// A QUIC v1 client Initial carrying a ClientHello with `name`, padded to 1,200 bytes.
fn quic_initial(name: &str, dcid: &[u8]) -> Vec<u8> {
    let hello = testgen::web::client_hello(name);
    let hs = &hello[5..];
    let mut frames = vec![0x06, 0x00];
    frames.extend_from_slice(&(0x4000 | u16::try_from(hs.len()).unwrap()).to_be_bytes());
    frames.extend_from_slice(hs);
    dataplane::app::quic::crypto::client_initial(dcid, 0, &frames, 1162).unwrap()
}

#[test]
fn quic_inspect_reads_the_initial_and_quic_block_drops_every_initial() {
    let link = plan::vlan100();
    let mut cap = Capture::new();
    let (c, s) = (plan::victim(), plan::server());
    let listed = quic_initial("phish.svm-demo.test", &[1, 2, 3, 4, 5, 6, 7, 8]);
    let benign = quic_initial("www.example.org", &[9, 9, 9, 9, 9, 9, 9, 9]);
    cap.push(plan::BASE_US, link.udp(&c, &s, 47_200, 443, &listed));
    cap.push(plan::BASE_US + 1000, link.udp(&c, &s, 47_200, 443, &listed));
    cap.push(plan::BASE_US + 2000, link.udp(&c, &s, 47_201, 443, &benign));
    let dir = TempDir::new("web-quic");
    let args = lists(&dir);
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    a.push("--inline");

    let r = replay("web-quic-inspect", &cap, None, &a);
    let alerts = web_alerts(&r);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["app_proto"], "quic");
    assert_eq!(alerts[0]["quic"]["sni"], "phish.svm-demo.test");
    assert_eq!(alerts[0]["alert"]["signature_id"], 9_200_004);
    assert_eq!(alerts[0]["web_address"]["category"], "phishing");
    assert_eq!(
        r.forwarded.len(),
        1,
        "the listed flow is dropped, the benign one passes"
    );
    assert_eq!(
        facts(&r.forwarded[0].data).dst,
        Some(plan::SERVER_V4.into())
    );

    let r = replay(
        "web-quic-block",
        &cap,
        Some("web_address_scan:\n  quic: block\n"),
        &a,
    );
    assert!(r.forwarded.is_empty(), "every Initial dropped");
    // Reported once a flow (the listed flow's retry is counted only), with no name: the
    // Initial is not decrypted under `quic: block`.
    let alerts = web_alerts(&r);
    let ports: Vec<u64> = alerts
        .iter()
        .map(|a| a["src_port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [47_200, 47_201], "{alerts:?}");
    for a in &alerts {
        assert_eq!(a["alert"]["signature_id"], 9_200_005);
        assert_eq!(a["alert"]["action"], "blocked");
        assert_eq!(a["app_proto"], "quic");
        assert!(a.get("web_address").is_none(), "{a}");
    }
    assert_eq!(r.summary["web"]["quic_blocked"], 3);

    let r = replay("web-quic-monitoring", &cap, Some("mode: monitoring\n"), &a);
    assert_eq!(r.forwarded.len(), 3);
    assert_eq!(web_alerts(&r)[0]["alert"]["would_block"], true);
}

#[test]
fn the_policys_block_page_template_is_used_and_a_bad_one_refused() {
    let r = run(
        "template",
        Some("web_address_scan:\n  block_page: \"<p>{{list}} {{address}} <{{category}}></p>\"\n"),
        &["--inline"],
    );
    let pages: Vec<String> = r
        .injected
        .iter()
        .map(|f| String::from_utf8_lossy(&f.data).into_owned())
        .filter(|s| s.contains("403 Forbidden"))
        .collect();
    assert_eq!(pages.len(), 5, "one page per listed HTTP visit");
    assert!(
        pages
            .iter()
            .any(|p| p.ends_with("/malware.txt malware.svm-demo.test/index.html <malware></p>")),
        "{pages:?}"
    );

    let err = refused(
        "web-template-bad",
        "web_address_scan:\n  block_page: \"<p>{{adress}}</p>\"\n",
    );
    assert!(
        err.contains("web_address_scan.block_page") && err.contains("adress"),
        "{err}"
    );
}

/// A TCP conversation from the victim to the server on `port`: handshake, then each
/// `(from_client, bytes)` as one segment with consistent sequence numbers, one frame a
/// millisecond from `start_us`.
fn conversation(sport: u16, dport: u16, talk: &[(bool, &[u8])], start_us: u64) -> Capture {
    use testgen::tcp_flags::{ACK, PSH, SYN};
    let link = plan::vlan100();
    let (c, s) = (plan::victim(), plan::server());
    let (mut cs, mut ss) = (1_000u32, 900_000u32);
    let mut cap = Capture::new();
    let mut t = start_us;
    let mut push = |cap: &mut Capture, f: Vec<u8>| {
        cap.push(t, f);
        t += 1000;
    };
    push(&mut cap, link.tcp(&c, &s, sport, dport, SYN, cs, 0, &[]));
    cs += 1;
    push(
        &mut cap,
        link.tcp(&s, &c, dport, sport, SYN | ACK, ss, cs, &[]),
    );
    ss += 1;
    push(&mut cap, link.tcp(&c, &s, sport, dport, ACK, cs, ss, &[]));
    for (from_client, data) in talk {
        let n = u32::try_from(data.len()).unwrap();
        if *from_client {
            push(
                &mut cap,
                link.tcp(&c, &s, sport, dport, ACK | PSH, cs, ss, data),
            );
            cs += n;
        } else {
            push(
                &mut cap,
                link.tcp(&s, &c, dport, sport, ACK | PSH, ss, cs, data),
            );
            ss += n;
        }
    }
    cap
}

/// The TCP payload of a frame (after its Ethernet, tags and IPv4 header; no IP options).
fn tcp_payload(frame: &[u8]) -> &[u8] {
    let l4 = 14 + 4 * facts(frame).vlan.len() + 20;
    let data_off = usize::from(frame[l4 + 12] >> 4) * 4;
    &frame[l4 + data_off..]
}

#[test]
fn later_requests_on_a_kept_alive_connection_are_checked() {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    // A benign request, a POST whose body reads like a request for a listed host (a body is
    // not read), then a request for a listed host on the same connection.
    let post = b"POST /form HTTP/1.1\r\nHost: www.example.org\r\nContent-Length: 47\r\n\r\n";
    let body = b"GET / HTTP/1.1\r\nHost: malware.svm-demo.test\r\n\r\n";
    assert_eq!(body.len(), 47);
    let talk: [(bool, &[u8]); 7] = [
        (true, b"GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n"),
        (false, ok),
        (true, post),
        (true, body),
        (false, ok),
        (
            true,
            b"GET /x HTTP/1.1\r\nHost: malware.svm-demo.test\r\n\r\n",
        ),
        (false, ok),
    ];
    let cap = conversation(47_300, 80, &talk, plan::BASE_US);
    let dir = TempDir::new("web-keepalive-lists");
    let args = lists(&dir);
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    a.push("--inline");
    let r = replay("web-keepalive", &cap, None, &a);
    let alerts = web_alerts(&r);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["http"]["hostname"], "malware.svm-demo.test");
    assert_eq!(alerts[0]["http"]["url"], "/x");
    assert_eq!(
        r.summary["web"]["lookups"], 3,
        "three requests, the body is none"
    );
    // The listed request is dropped and so is the rest of its flow (the server's answer, the
    // capture's last frame); the block page goes to the client.
    let gone: Vec<&[u8]> = dropped(&r).iter().map(|f| &f.data[..]).collect();
    let rest: Vec<&[u8]> = cap.frames[8..].iter().map(|f| &f.data[..]).collect();
    assert_eq!(gone, rest);
    let page = r
        .injected
        .iter()
        .map(|f| tcp_payload(&f.data))
        .find(|p| !p.is_empty())
        .expect("the block page");
    assert!(page.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
}

#[test]
fn a_listed_dns_query_over_tcp_gets_the_block_answer_then_fin() {
    let q = edns_query(0x6200, "malware.svm-demo.test");
    let mut framed = u16::try_from(q.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    let benign = edns_query(0x6201, "www.example.org");
    let mut first = u16::try_from(benign.len()).unwrap().to_be_bytes().to_vec();
    first.extend_from_slice(&benign);
    // A benign query first: the listed one is the connection's second message.
    let cap = conversation(
        47_310,
        53,
        &[(true, &first), (true, &framed)],
        plan::BASE_US,
    );
    let dir = TempDir::new("web-dns-tcp-lists");
    let args = lists(&dir);
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    a.push("--inline");
    let r = replay(
        "web-dns-tcp",
        &cap,
        Some("web_address_scan:\n  dns_answer: nxdomain\n"),
        &a,
    );
    assert_eq!(web_alerts(&r).len(), 1);
    assert_eq!(dropped(&r).len(), 1, "the listed query");
    let to_client: Vec<&Frame> = r
        .injected
        .iter()
        .filter(|f| facts(&f.data).dst == Some(plan::VICTIM_V4.into()))
        .collect();
    assert_eq!(
        to_client.len(),
        2,
        "the answer with FIN, then a reset past it"
    );
    let answer = tcp_payload(&to_client[0].data);
    let len = usize::from(u16::from_be_bytes([answer[0], answer[1]]));
    assert_eq!(len, answer.len() - 2, "one framed message");
    assert_eq!(answer[2..4], 0x6200u16.to_be_bytes(), "the query's id");
    assert_eq!(answer[5] & 0x0f, 3, "NXDOMAIN");
    assert!(String::from_utf8_lossy(answer).contains("malware.txt"));
    let flags = facts(&to_client[0].data).tcp_flags.unwrap();
    assert_eq!(flags & 0x01, 0x01, "FIN");
    assert_eq!(
        facts(&to_client[1].data).tcp_flags.unwrap() & 0x04,
        0x04,
        "RST"
    );
    // On a mirror: resets only.
    let mirror: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = replay("web-dns-tcp-mirror", &cap, None, &mirror);
    assert!(!r.injected.is_empty(), "resets");
    assert!(r.injected.iter().all(|f| tcp_payload(&f.data).is_empty()));
}
