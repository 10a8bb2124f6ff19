//! End-to-end: what an administrator meets at the command line. Captures as pcap and pcapng
//! (every timestamp resolution) replay alike; a corrupt capture fails with what is wrong; a frame
//! over 65,535 bytes is written forward; bad arguments are refused with their exit codes; EVE
//! lines start with `timestamp` as Suricata's do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::process::{Command, Output};

use svm_e2e::{TempDir, read_pcap, svm_bin};
use testgen::{Capture, plan, scenarios};

fn svm(args: &[&str]) -> Output {
    Command::new(svm_bin()).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A pcapng block of `kind` with `body` padded to 4 bytes (little-endian).
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    body.resize(body.len().next_multiple_of(4), 0);
    let total = u32::try_from(body.len() + 12).unwrap();
    let mut out = kind.to_le_bytes().to_vec();
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&total.to_le_bytes());
    out
}

/// `cap` as pcapng, timestamps in units of 10^-`resol` s (`None`: no `if_tsresol`, microseconds).
fn pcapng(cap: &Capture, resol: Option<u8>) -> Vec<u8> {
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    let mut out = block(0x0a0d_0d0a, &shb);
    let mut idb = vec![1, 0, 0, 0];
    idb.extend_from_slice(&0u32.to_le_bytes());
    if let Some(r) = resol {
        idb.extend_from_slice(&[9, 0, 1, 0, r, 0, 0, 0, 0, 0, 0, 0]);
    }
    out.extend(block(1, &idb));
    for f in &cap.frames {
        let ticks = match resol {
            None | Some(6) => f.ts_us,
            Some(r) if r > 6 => f.ts_us * 10u64.pow(u32::from(r) - 6),
            Some(r) => f.ts_us / 10u64.pow(6 - u32::from(r)),
        };
        let len = u32::try_from(f.data.len()).unwrap();
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&u32::try_from(ticks >> 32).unwrap().to_le_bytes());
        epb.extend_from_slice(&u32::try_from(ticks & 0xffff_ffff).unwrap().to_le_bytes());
        epb.extend_from_slice(&len.to_le_bytes());
        epb.extend_from_slice(&len.to_le_bytes());
        epb.extend_from_slice(&f.data);
        out.extend(block(6, &epb));
    }
    out
}

fn eve_of(dir: &TempDir, input: &std::path::Path, name: &str) -> String {
    let eve = dir.path(&format!("{name}.json"));
    let o = Command::new(svm_bin())
        .arg("replay")
        .arg(input)
        .arg("--inline")
        .arg("--eve")
        .arg(&eve)
        .output()
        .unwrap();
    assert!(o.status.success(), "{name}: {}", stderr(&o));
    // Every record ends with the capture's name (Suricata's `pcap_filename`): checked here, then
    // left out so that a pcap and its pcapng twin compare equal.
    let tail = format!(",\"pcap_filename\":\"{}\"}}", input.display());
    let text = std::fs::read_to_string(eve).unwrap();
    assert!(text.lines().all(|l| l.ends_with(&tail)), "{text}");
    text.replace(&tail, "}")
}

#[test]
fn pcapng_replays_as_its_pcap_at_every_resolution() {
    let dir = TempDir::new("admin-pcapng");
    let cap = scenarios::tcp_port_scan(&plan::vlan100(), plan::BASE_US + 123_456);
    let pcap = dir.path("scan.pcap");
    cap.write_pcap(&pcap).unwrap();
    let want = eve_of(&dir, &pcap, "pcap");
    assert!(want.contains("\"event_type\":\"block\""), "{want}");
    for resol in [None, Some(6), Some(9), Some(3)] {
        let ng = dir.path("scan.pcapng");
        std::fs::write(&ng, pcapng(&cap, resol)).unwrap();
        let got = eve_of(&dir, &ng, "pcapng");
        if resol == Some(3) {
            // Milliseconds lose the microseconds, nothing else: the same alerts and blocks.
            let kinds = |t: &str| {
                t.lines()
                    .map(|l| {
                        let v: serde_json::Value = serde_json::from_str(l).unwrap();
                        let sid = v["alert"]["signature_id"].clone();
                        (v["event_type"].clone(), v["src_ip"].clone(), sid)
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(kinds(&got), kinds(&want), "if_tsresol {resol:?}");
        } else {
            assert_eq!(got, want, "if_tsresol {resol:?}");
        }
    }
}

#[test]
fn eve_lines_start_with_the_timestamp() {
    let dir = TempDir::new("admin-eve-order");
    let cap = scenarios::tcp_port_scan(&plan::vlan100(), plan::BASE_US);
    let pcap = dir.path("scan.pcap");
    cap.write_pcap(&pcap).unwrap();
    let eve = eve_of(&dir, &pcap, "eve");
    assert!(eve.lines().count() >= 2);
    for line in eve.lines() {
        assert!(line.starts_with("{\"timestamp\":"), "{line}");
        // Alerts: flow_id, then event_type before the addresses, as Suricata writes them.
        if line.contains("\"event_type\":\"alert\"") {
            let at = |k: &str| line.find(&format!("\"{k}\":")).unwrap_or(usize::MAX);
            assert!(at("flow_id") < at("event_type"), "{line}");
            assert!(at("event_type") < at("src_ip"), "{line}");
            assert!(
                at("src_ip") < at("dest_ip") && at("dest_ip") < at("proto"),
                "{line}"
            );
            assert!(at("proto") < at("alert"), "{line}");
        }
    }
}

#[test]
fn a_corrupt_capture_fails_with_what_is_wrong() {
    let dir = TempDir::new("admin-corrupt");
    let mut cap = Capture::new();
    cap.push(plan::BASE_US, vec![0; 60]);
    let mut bytes = cap.to_pcap_bytes();
    // A record header claiming 100 MB.
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&(100u32 << 20).to_le_bytes());
    bytes.extend_from_slice(&(100u32 << 20).to_le_bytes());
    bytes.extend_from_slice(&[0; 64]);
    let p = dir.path("corrupt.pcap");
    std::fs::write(&p, &bytes).unwrap();
    let o = svm(&["replay", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("corrupt capture at byte 100") && err.contains("104857600 bytes"),
        "{err}"
    );
    assert!(!err.contains("ends inside a record"), "{err}");
    // A capture cut short still replays what it holds, and says so.
    let mut cut = cap.to_pcap_bytes();
    cut.extend_from_slice(&[0; 10]);
    std::fs::write(&p, &cut).unwrap();
    let o = svm(&["replay", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("capture ends inside a record; replayed the 1 frame before it"),
        "{}",
        stderr(&o)
    );
}

/// Section header, then interface blocks of `linktypes` (snaplen 0).
fn pcapng_of(linktypes: &[u16]) -> Vec<u8> {
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut f = block(0x0a0d_0d0a, &shb);
    for &lt in linktypes {
        let mut idb = lt.to_le_bytes().to_vec();
        idb.extend_from_slice(&[0; 6]);
        f.extend(block(1, &idb));
    }
    f
}

/// An enhanced packet block of interface `iface` holding `data`.
fn epb(iface: u32, data: &[u8]) -> Vec<u8> {
    let len = u32::try_from(data.len()).unwrap();
    let mut body = Vec::new();
    for v in [
        iface,
        0,
        u32::try_from(plan::BASE_US).unwrap_or(0),
        len,
        len,
    ] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    body.extend_from_slice(data);
    block(6, &body)
}

/// Issue 15 item 8: what a capture holds besides readable frames is said, never silent: frames
/// of a link type replay cannot read are counted by type, and a record over the snaplen or a
/// section with 100,000 interfaces fails with where and what (it read as a capture cut short).
#[test]
fn capture_oddities_are_reported() {
    let dir = TempDir::new("admin-oddities");
    let p = dir.path("odd.pcapng");
    // Ethernet and link type 147 (a private one): one readable frame, two skipped.
    let mut f = pcapng_of(&[1, 147]);
    f.extend(epb(0, &[0; 60]));
    f.extend(epb(1, &[0; 60]));
    f.extend(epb(1, &[0; 60]));
    std::fs::write(&p, &f).unwrap();
    let o = svm(&["replay", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 frames of unsupported link type 147 skipped"),
        "{}",
        stderr(&o)
    );
    // A record longer than its interface's snaplen.
    let mut f = pcapng_of(&[]);
    let mut idb = 1u16.to_le_bytes().to_vec();
    idb.extend_from_slice(&[0, 0]);
    idb.extend_from_slice(&10u32.to_le_bytes());
    f.extend(block(1, &idb));
    f.extend(epb(0, &[0; 60]));
    std::fs::write(&p, &f).unwrap();
    let o = svm(&["replay", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("snaplen of 10"), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("ends inside a record"),
        "{}",
        stderr(&o)
    );
    // 100,000 interface description blocks.
    let f = pcapng_of(&[1; 100_000]);
    std::fs::write(&p, &f).unwrap();
    let o = svm(&["replay", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("more than 65536 interface description blocks"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn frames_over_64k_are_written_forward() {
    let dir = TempDir::new("admin-jumbo");
    // A pcap whose snaplen allows a 70,000-byte frame.
    let frame: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    bytes.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&262_144u32.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&u32::try_from(plan::BASE_S).unwrap().to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&70_000u32.to_le_bytes());
    bytes.extend_from_slice(&70_000u32.to_le_bytes());
    bytes.extend_from_slice(&frame);
    let input = dir.path("jumbo.pcap");
    std::fs::write(&input, &bytes).unwrap();
    let fwd = dir.path("fwd.pcap");
    let o = svm(&[
        "replay",
        input.to_str().unwrap(),
        "--inline",
        "--write-forwarded",
        fwd.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = read_pcap(&fwd);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data, frame);
}

#[test]
fn bad_arguments_are_refused_with_their_codes() {
    let dir = TempDir::new("admin-args");
    let cap = scenarios::tcp_port_scan(&plan::vlan100(), plan::BASE_US);
    let pcap = dir.path("scan.pcap");
    cap.write_pcap(&pcap).unwrap();
    let pcap = pcap.to_str().unwrap();
    // --vars without any rule to apply them to.
    let o = svm(&["replay", pcap, "--vars", "/nonexistent/suricata.yaml"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--vars /nonexistent/suricata.yaml applies to signature rules"),
        "{}",
        stderr(&o)
    );
    // A --set value that is not a boolean, and one without '='.
    let o = svm(&[
        "replay",
        pcap,
        "--set",
        "stream.midstream=maybe",
        "--set",
        "stream.inline",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("--set stream.midstream=maybe: expected true or false"),
        "{err}"
    );
    assert!(
        err.contains("--set stream.inline: expected KEY=VALUE"),
        "{err}"
    );
    assert!(
        svm(&["replay", pcap, "--set", "stream.midstream=true"])
            .status
            .success()
    );
    let o = svm(&["replay", pcap, "--set", "flows.max=10"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--set flows.max=10: expected a number of flows in 1024..="),
        "{}",
        stderr(&o)
    );
    // An unknown key is refused as the daemon refuses one, naming the keys there are.
    let o = svm(&["replay", pcap, "--set", "stream.bypass=yes"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--set stream.bypass=yes: unknown setting (known: stream.midstream"),
        "{}",
        stderr(&o)
    );
    // A missing policy file is an I/O error (2), as for replay and rules check.
    let o = svm(&["policy", "check", "/nonexistent/policy.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = svm(&["replay", pcap, "--policy", "/nonexistent/policy.yaml"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    // The documented mode names.
    let good = dir.path("p.yaml");
    std::fs::write(&good, "mode: monitoring\n").unwrap();
    let o = svm(&["policy", "check", good.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("(mode monitoring,"),
        "{o:?}"
    );
    // Minutes, in the flag's unit, before any connection is tried.
    let o = svm(&[
        "blocked",
        "add",
        "10.0.0.1",
        "--vlan",
        "100",
        "--minutes",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("1..=32768"), "{}", stderr(&o));
    // rules check: a variable that does not compile; --strict with a skipped rule.
    let rules = dir.path("r.rules");
    std::fs::write(
        &rules,
        "alert tcp $HOME_NET any -> any 80 (msg:\"a\"; sid:1;)\nalert tcp any any -> any 80 (msg:\"b\"; no_such_keyword; sid:2;)\n",
    )
    .unwrap();
    let r = rules.to_str().unwrap();
    let o = svm(&["rules", "check", r, "--var", "HOME_NET=foo"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("--var HOME_NET=foo"), "{}", stderr(&o));
    assert_eq!(svm(&["rules", "check", r]).status.code(), Some(0));
    let o = svm(&["rules", "check", "--strict", r]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--strict: 1 rule skipped"),
        "{}",
        stderr(&o)
    );
}

/// `svm replay` on a terminal shows its progress once a long capture has run for a second;
/// piped, or with `--progress never`, not one byte of it. The terminal is a real pseudo-terminal
/// (`script` from util-linux).
#[test]
fn replay_progress_shows_on_a_terminal_only() {
    let shared = std::env::var_os("SVM_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let pcap = shared.join("bench/pcaps/ndpi-tests-merged.pcap");
    assert!(pcap.exists(), "{} is missing", pcap.display());
    let replay = |extra: &str| {
        format!(
            "{} replay {} -k none --loop 10 {extra}",
            svm_bin().display(),
            pcap.display()
        )
    };
    let on_terminal = |extra: &str| {
        let o = Command::new("script")
            .args(["-qfec", &replay(extra), "/dev/null"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let shown = on_terminal("");
    assert!(shown.contains("replay ["), "no progress on a terminal");
    assert!(shown.contains("% eta "), "no progress on a terminal");
    assert!(!on_terminal("--progress never").contains("% eta "));
    let piped = Command::new(svm_bin())
        .args([
            "replay",
            pcap.to_str().unwrap(),
            "-k",
            "none",
            "--loop",
            "10",
        ])
        .output()
        .unwrap();
    assert!(piped.status.success());
    assert!(!stderr(&piped).contains("eta"));
    assert!(!String::from_utf8_lossy(&piped.stdout).contains("% eta "));
}
