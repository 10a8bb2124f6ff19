//! The web address scan's borrowing readers against the full parsers, on real traffic: every
//! ClientHello of the shared captures (`../shared/bench/pcaps`, the Suricata verification cases'
//! captures) and of every testgen scenario gives the same server name through
//! `webscan::hello::server_name` as through the TLS engine's `client_hello`, and every HTTP
//! request head the same method, target, host and framing through `webscan::head::read_head`
//! as through `parse_request`; every DNS datagram to port 53 the same question names (or the
//! same error) through `webscan::question::questions` as through `parse_message`.
//!
//! A client's bytes are gathered per TCP flow in sequence order from its first payload segment
//! (at most 16 KiB), as the scan gathers them; a flow is compared once what it gathered holds a
//! complete hello or head.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use dataplane::app::dns::parser as dns;
use dataplane::app::http::parser as http;
use dataplane::app::tls::parser as tls;
use dataplane::decode::{DecodeOptions, L3, L4, decode_frame};
use dataplane::webscan::{head, hello, question};

type FlowId = (IpAddr, u16, IpAddr, u16);

#[derive(Default)]
struct Counts {
    hellos: usize,
    named: usize,
    heads: usize,
    queries: usize,
}

/// One client flow's bytes: what was gathered and the next sequence number.
struct Gathered {
    next: u32,
    bytes: Vec<u8>,
    done: bool,
}

/// The first handshake message of `data` if complete (records joined).
fn hello_message(data: &[u8]) -> Option<Vec<u8>> {
    let mut hs = Vec::new();
    let mut rest = data;
    loop {
        let tls::Record::Complete {
            content_type,
            payload,
            len,
        } = tls::record(rest).ok()?
        else {
            return None;
        };
        if !tls::is_handshake(content_type) {
            return None;
        }
        hs.extend_from_slice(payload);
        rest = &rest[len..];
        if let Some((_, n)) = tls::handshake_len(&hs)
            && hs.len() >= n
        {
            hs.truncate(n);
            return Some(hs);
        }
    }
}

/// Compare the readers on what a flow gathered; true once the flow is done.
fn compare(bytes: &[u8], what: &str, counts: &mut Counts) -> bool {
    if bytes.first() == Some(&0x16) {
        let Some(msg) = hello_message(bytes) else {
            return false;
        };
        if msg.first() != Some(&tls::CLIENT_HELLO) {
            return true;
        }
        let full = tls::client_hello(&msg).map(|c| c.sni);
        let mine = hello::server_name(&msg).map(|n| n.map(<[u8]>::to_vec));
        assert_eq!(mine, full, "{what}: the server names differ");
        counts.hellos += 1;
        counts.named += usize::from(matches!(full, Ok(Some(_))));
        return true;
    }
    if bytes.first().is_some_and(u8::is_ascii_uppercase) {
        let full = http::parse_request(bytes);
        let mine = head::read_head(bytes);
        match (&full, &mine) {
            (Ok(None), Ok(None)) => return false,
            (Err(a), Err(b)) => assert_eq!(a, b, "{what}"),
            (Ok(Some(p)), Ok(Some(h))) => {
                let r = &p.request;
                assert_eq!(
                    (p.len, &r.method[..], &r.uri_raw[..], r.host_raw.as_deref()),
                    (h.len, h.method, h.target, h.host),
                    "{what}"
                );
                assert_eq!(
                    (p.body, p.bad_content_length),
                    (h.body, h.bad_content_length)
                );
                counts.heads += 1;
            }
            _ => panic!("{what}: {full:?} against {mine:?}"),
        }
    }
    true
}

/// The question names of a DNS datagram through both readers.
fn compare_dns(msg: &[u8], what: &str, counts: &mut Counts) {
    let full = dns::parse_message(msg)
        .map(|m| (!m.response && !m.queries.is_empty()).then_some(m.queries));
    let mine = question::questions(msg).map(|q| {
        q.map(|q| {
            let mut names = q.names();
            let mut all = Vec::new();
            while let Some(n) = names.next_name() {
                all.push(n.to_vec());
            }
            all
        })
    });
    assert_eq!(mine, full, "{what}: the DNS question readers differ");
    counts.queries += usize::from(matches!(full, Ok(Some(_))));
}

fn scan_frames(frames: impl Iterator<Item = Vec<u8>>, what: &str, counts: &mut Counts) {
    let mut flows: HashMap<FlowId, Gathered> = HashMap::new();
    for (n, frame) in frames.enumerate() {
        let Ok(d) = decode_frame(&frame, DecodeOptions::default()) else {
            continue;
        };
        let L3::Ip(ip) = &d.l3 else { continue };
        if let L4::Udp(u) = &ip.l4
            && u.dst_port == 53
        {
            compare_dns(u.payload, &format!("{what} frame {}", n + 1), counts);
            continue;
        }
        let L4::Tcp(t) = &ip.l4 else { continue };
        if t.payload.is_empty() {
            continue;
        }
        let id = (ip.src(), t.src_port, ip.dst(), t.dst_port);
        let len = u32::try_from(t.payload.len()).unwrap();
        let g = flows.entry(id).or_insert_with(|| Gathered {
            next: t.seq,
            bytes: Vec::new(),
            done: false,
        });
        if g.done || t.seq != g.next || g.bytes.len() > 16 << 10 {
            continue;
        }
        g.next = t.seq.wrapping_add(len);
        g.bytes.extend_from_slice(t.payload);
        g.done = compare(&g.bytes, &format!("{what} frame {}", n + 1), counts);
    }
}

fn pcap_frames(path: &Path) -> impl Iterator<Item = Vec<u8>> {
    let file = std::fs::File::open(path).unwrap();
    let mut r = pcap_file::pcap::PcapReader::new(std::io::BufReader::new(file)).unwrap();
    std::iter::from_fn(move || {
        loop {
            match r.next_packet()? {
                Ok(p) => return Some(p.data.into_owned()),
                Err(_) => continue,
            }
        }
    })
}

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            captures(&p, out);
        } else if p.extension().is_some_and(|x| x == "pcap") {
            out.push(p);
        }
    }
}

#[test]
fn readers_agree_on_the_shared_captures() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    let mut paths = Vec::new();
    captures(&shared.join("bench/pcaps"), &mut paths);
    captures(&shared.join("conformance"), &mut paths);
    assert!(
        paths.len() > 100,
        "the shared captures are missing: {paths:?}"
    );
    let mut counts = Counts::default();
    for p in &paths {
        // A pcapng or other link type is not read here.
        let ok = std::fs::File::open(p)
            .ok()
            .and_then(|f| pcap_file::pcap::PcapReader::new(std::io::BufReader::new(f)).ok())
            .is_some_and(|r| r.header().datalink == pcap_file::DataLink::ETHERNET);
        if ok {
            scan_frames(pcap_frames(p), &p.display().to_string(), &mut counts);
        }
    }
    eprintln!(
        "{} ClientHellos ({} with a server name), {} HTTP heads, {} DNS queries",
        counts.hellos, counts.named, counts.heads, counts.queries
    );
    assert!(counts.named >= 500, "too few server names compared");
    assert!(counts.queries >= 500, "too few DNS queries compared");
    assert!(counts.heads >= 500, "too few HTTP heads compared");
}

#[test]
fn readers_agree_on_every_testgen_scenario() {
    let link = testgen::plan::vlan100();
    let mut counts = Counts::default();
    for (name, scenario) in testgen::scenarios::all() {
        let cap = scenario(&link, testgen::plan::BASE_US);
        scan_frames(cap.frames.into_iter().map(|f| f.data), name, &mut counts);
    }
    eprintln!(
        "{} ClientHellos ({} with a server name), {} HTTP heads",
        counts.hellos, counts.named, counts.heads
    );
    assert!(
        counts.named >= 3,
        "the web scenario's TLS visits were not compared"
    );
    assert!(counts.heads >= 3);
}
