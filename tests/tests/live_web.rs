//! The web address scan in `svm run` (issue 17), live: AF_PACKET, inline between a client
//! namespace and a server namespace (topology of `common/live.rs`), the lists in the daemon's
//! configuration. curl to a listed HTTP host gets the 403 block page and the connection closes;
//! curl over TLS to a listed name fails at once; a DNS query (as `dig` sends it, from python)
//! for a listed name gets the block answer and `use-application-dns.net` NXDOMAIN; benign names
//! are untouched; SIGHUP reloads the lists with the daemon running.
//!
//! Needs root, iproute2, ethtool, nmap, curl, python3 and openssl; without them it prints why it
//! is skipped and passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/live.rs"]
mod live;

use std::time::{Duration, Instant};

use live::{Backend, Net, events, have, skip_reason};
use serde_json::Value;

const SERVER: &str = "10.77.0.2";

fn web_alerts(ev: &[Value]) -> Vec<&Value> {
    ev.iter()
        .filter(|e| e["event_type"] == "alert" && e["alert"]["engine"] == "web_address_scan")
        .collect()
}

/// curl `url` from the client namespace with `name` resolved to the server; exit code, body
/// and seconds taken.
fn curl(net: &Net, name: &str, port: u16, url: &str) -> (i32, Vec<u8>, f64) {
    let t0 = Instant::now();
    let out = net.exec(
        'A',
        &[
            "curl",
            "-sk",
            "--max-time",
            "5",
            "--resolve",
            &format!("{name}:{port}:{SERVER}"),
            url,
        ],
    );
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        t0.elapsed().as_secs_f64(),
    )
}

/// Ask `SERVER`:53 for `name` (A, with an EDNS OPT record, as `dig` does) from the client
/// namespace: the answer's bytes, or `None` after 2 s without one.
fn dns(net: &Net, name: &str) -> Option<Vec<u8>> {
    let script = format!(
        "import socket, struct, sys\n\
         q = struct.pack('>HHHHHH', 0x5353, 0x0100, 1, 0, 0, 1)\n\
         q += b''.join(bytes([len(l)]) + l.encode() for l in '{name}'.split('.')) + b'\\0'\n\
         q += struct.pack('>HH', 1, 1) + b'\\0' + struct.pack('>HHIH', 41, 4096, 0, 0)\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.settimeout(2)\n\
         s.sendto(q, ('{SERVER}', 53))\n\
         try:\n    sys.stdout.write(s.recv(4096).hex())\n\
         except socket.timeout:\n    pass\n"
    );
    let out = net.exec('A', &["python3", "-c", &script]);
    let hex = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!hex.is_empty()).then(|| {
        (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    })
}

/// A TLS server on `SERVER:8443` in V (python's ssl over a throwaway self-signed key).
fn tls_server(net: &mut Net) {
    let key = net.dir.path("key.pem");
    let cert = net.dir.path("cert.pem");
    let o = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=svm-test"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let script = format!(
        "import http.server, ssl\n\
         s = http.server.HTTPServer(('{SERVER}', 8443), http.server.SimpleHTTPRequestHandler)\n\
         c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         c.load_cert_chain('{}', '{}')\n\
         s.socket = c.wrap_socket(s.socket, server_side=True)\n\
         s.serve_forever()\n",
        cert.display(),
        key.display()
    );
    let www = net.dir.path("www");
    std::fs::create_dir_all(&www).unwrap();
    let path = net.dir.path("tls.py");
    std::fs::write(&path, script).unwrap();
    let (p, w) = (
        path.to_str().unwrap().to_owned(),
        www.to_str().unwrap().to_owned(),
    );
    net.spawn(
        'V',
        &["sh", "-c", &format!("cd {w} && exec python3 {p}")],
        "tls.log",
    );
}

#[test]
fn listed_names_are_stopped_and_benign_ones_pass() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED live web address test: {why}");
        return;
    }
    if !have("openssl") {
        eprintln!("SKIPPED live web address test: openssl not installed");
        return;
    }
    let mut net = Net::new('w', Backend::AfPacket);
    let list = net.dir.path("malware.txt");
    std::fs::write(&list, "malware.svm-demo.test\nphish.svm-demo.test\n").unwrap();
    // The daemon first: it is the first child, the one signals and the stop go to.
    let eve = net.start_svm_inline_with(
        "mode: standard\n",
        1,
        &format!(
            "web_address_scan:\n  url_lists: [\"malware={}\"]\n",
            list.display()
        ),
    );
    net.http_server('V', SERVER);
    tls_server(&mut net);
    net.wait_http('A', SERVER);
    let blob = net.blob();

    // Benign names, HTTP and TLS: untouched.
    let (code, body, _) = curl(
        &net,
        "www.example.org",
        8000,
        "http://www.example.org:8000/blob.bin",
    );
    assert_eq!((code, body.len()), (0, blob.len()), "benign HTTP");
    assert_eq!(body, blob);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body, _) = curl(
            &net,
            "www.example.org",
            8443,
            "https://www.example.org:8443/blob.bin",
        );
        if code == 0 {
            assert_eq!(body, blob, "benign TLS");
            break;
        }
        assert!(Instant::now() < deadline, "the TLS server never answered");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A listed HTTP host: the block page, and the connection closes.
    let (code, body, secs) = curl(
        &net,
        "www.malware.svm-demo.test",
        8000,
        "http://www.malware.svm-demo.test:8000/blob.bin",
    );
    let page = String::from_utf8_lossy(&body);
    assert!(
        page.contains("This web address is blocked"),
        "exit {code}: {page}"
    );
    assert!(page.contains("malware.txt") && page.contains("malware"));
    assert!(secs < 3.0, "the connection closed at once ({secs:.1} s)");
    let o = net.exec(
        'A',
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
            "--resolve",
            &format!("malware.svm-demo.test:8000:{SERVER}"),
            "http://malware.svm-demo.test:8000/blob.bin",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "403");

    // A listed TLS name: fails at once (reset), long before the timeout.
    let (code, body, secs) = curl(
        &net,
        "phish.svm-demo.test",
        8443,
        "https://phish.svm-demo.test:8443/blob.bin",
    );
    assert_ne!(code, 0, "the listed TLS name must fail");
    assert_ne!(code, 28, "a reset, not a timeout");
    assert!(body.is_empty());
    assert!(secs < 3.0, "TLS failed at once ({secs:.1} s)");

    // DNS: the listed name gets the configured answer (null: 0.0.0.0, the list named in an
    // Extended DNS Error), the canary NXDOMAIN; a benign name is not answered by the appliance
    // (no server runs: the query times out).
    let a = dns(&net, "www.malware.svm-demo.test").expect("a block answer");
    assert_eq!(
        (a[3] & 0x0f, u16::from_be_bytes([a[6], a[7]])),
        (0, 1),
        "NOERROR, one answer"
    );
    assert!(a.windows(4).any(|w| w == [0, 1, 0, 1]), "an A record");
    assert!(
        String::from_utf8_lossy(&a).contains("malware.txt"),
        "the list in the EDE"
    );
    let c = dns(&net, "use-application-dns.net").expect("the canary's answer");
    assert_eq!(c[3] & 0x0f, 3, "NXDOMAIN");
    assert!(dns(&net, "www.example.org").is_none(), "benign: untouched");

    // SIGHUP reloads the lists: the benign name listed now is stopped.
    std::fs::write(&list, "www.example.org\n").unwrap();
    net.signal_svm("-HUP");
    net.wait_log("reloaded web address lists", 1, Duration::from_secs(10));
    let (_, body, _) = curl(
        &net,
        "www.example.org",
        8000,
        "http://www.example.org:8000/blob.bin",
    );
    assert!(String::from_utf8_lossy(&body).contains("This web address is blocked"));

    let log = net.stop_svm();
    let ev = events(&eve);
    let web = web_alerts(&ev);
    let hosts: Vec<String> = web
        .iter()
        .map(|a| a["web_address"]["address"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(web.len(), 5, "{hosts:?}\n{log}");
    assert!(
        web.iter()
            .any(|a| a["dns"]["query"][0]["rrname"] == "www.malware.svm-demo.test")
    );
    assert!(web.iter().all(|a| a["alert"]["action"] == "blocked"));
    assert!(web.iter().any(|a| a["tls"]["sni"] == "phish.svm-demo.test"));
    assert!(
        web.iter()
            .any(|a| a["http"]["hostname"] == "www.malware.svm-demo.test:8000")
    );
    assert!(
        log.contains("web address lists: 1 lists, 1 entries"),
        "{log}"
    );
}
