//! Web address scan traffic: HTTP, TLS and DNS visits by the victim (a protected VM) to listed
//! and benign names, with the lists that name them ([`MALWARE_LIST`], [`PHISHING_LIST`]).
//!
//! Every visit is its own conversation from [`crate::plan::victim`] to [`crate::plan::server`]
//! (the server's address stands in for every name: the scan reads names, not addresses), 100 ms
//! apart, in this order ([`VISITS`]): each HTTP visit is a [`crate::tcp_session`] of 10 frames
//! to port 80, each TLS visit one of 10 frames to port 443 (a ClientHello, a stand-in server
//! flight), each DNS visit a query and its answer on UDP port 53.

use std::net::Ipv4Addr;

use crate::payload::{dns_a_query, dns_a_response};
use crate::{Capture, Link, plan, tcp_session};

/// The malware list the scenario is written against (one entry a line, list file syntax).
pub const MALWARE_LIST: &str = "\
# svm testgen: malware list
malware.svm-demo.test
github.com/00094/string-remover/raw/refs/heads/main/rah.exe
cdn.svm-demo.test/download/Evil.exe
http://198.51.100.7/payload.bin
böse.svm-demo.test
";

/// The phishing list the scenario is written against.
pub const PHISHING_LIST: &str = "\
# svm testgen: phishing list
phish.svm-demo.test
||login-bank.svm-demo.test^
";

/// What one visit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    /// `GET TARGET` with `Host: HOST` to port 80.
    Http {
        /// Host header.
        host: &'static str,
        /// Request target.
        target: &'static str,
    },
    /// A TLS ClientHello with this server name to port 443.
    Tls(&'static str),
    /// A DNS A query for this name to port 53.
    Dns(&'static str),
}

/// A visit, whether the lists name it, and the category that does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    /// The visit.
    pub visit: Visit,
    /// The category of the list that names it (`None`: benign).
    pub listed: Option<&'static str>,
    /// What it shows.
    pub why: &'static str,
}

const fn http(
    host: &'static str,
    target: &'static str,
    listed: Option<&'static str>,
    why: &'static str,
) -> Expect {
    Expect {
        visit: Visit::Http { host, target },
        listed,
        why,
    }
}

/// The visits, in capture order.
pub const VISITS: [Expect; 14] = [
    http(
        "malware.svm-demo.test",
        "/index.html",
        Some("malware"),
        "a listed domain",
    ),
    http(
        "WWW.Malware.SVM-Demo.test.",
        "/",
        Some("malware"),
        "upper case and a final dot, a name below a listed domain",
    ),
    http(
        "github.com",
        "/00094/string-remover/raw/refs/heads/main/rah.exe",
        Some("malware"),
        "a listed URL on a popular host",
    ),
    http(
        "github.com",
        "/rust-lang/rust",
        None,
        "the popular host itself is not listed",
    ),
    http(
        "cdn.svm-demo.test",
        "/%64ownload/%45vil.exe?x=1",
        Some("malware"),
        "a percent-escaped path",
    ),
    http(
        "cdn.svm-demo.test",
        "/download/evil.exe",
        None,
        "paths keep their case",
    ),
    http(
        "3325256711",
        "/payload.bin",
        Some("malware"),
        "an IP-literal URL in decimal form",
    ),
    http("www.example.org", "/", None, "a benign name"),
    Expect {
        visit: Visit::Tls("xn--bse-sna.svm-demo.test"),
        listed: Some("malware"),
        why: "an IDN listed in Unicode, sent in punycode",
    },
    Expect {
        visit: Visit::Tls("phish.svm-demo.test"),
        listed: Some("phishing"),
        why: "a listed TLS server name",
    },
    Expect {
        visit: Visit::Tls("www.example.org"),
        listed: None,
        why: "a benign TLS server name",
    },
    Expect {
        visit: Visit::Tls("github.com"),
        listed: None,
        why: "a host with listed URLs is not listed by name",
    },
    Expect {
        visit: Visit::Dns("secure.login-bank.svm-demo.test"),
        listed: Some("phishing"),
        why: "a DNS query below an adblock-style entry",
    },
    Expect {
        visit: Visit::Dns("www.example.org"),
        listed: None,
        why: "a benign DNS query",
    },
];

/// Gap between visits.
pub const VISIT_GAP_US: u64 = 100_000;

/// A ClientHello handshake record (TLS 1.2 record version, TLS 1.3 style hello) with one
/// server name.
pub fn client_hello(server_name: &str) -> Vec<u8> {
    let name = server_name.as_bytes();
    let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    let mut sni = vec![0x00, 0x00];
    sni.extend_from_slice(&name_len.saturating_add(5).to_be_bytes());
    sni.extend_from_slice(&name_len.saturating_add(3).to_be_bytes());
    sni.push(0);
    sni.extend_from_slice(&name_len.to_be_bytes());
    sni.extend_from_slice(name);
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x5a; 32]);
    body.push(0);
    body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01, 0x01, 0x00]);
    body.extend_from_slice(&u16::try_from(sni.len()).unwrap_or(u16::MAX).to_be_bytes());
    body.extend_from_slice(&sni);
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes();
    let mut hs = vec![0x01, len[1], len[2], len[3]];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&u16::try_from(hs.len()).unwrap_or(u16::MAX).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// Every visit of [`VISITS`], 100 ms apart from `start_us`.
pub fn web_addresses(link: &Link, start_us: u64) -> Capture {
    let (c, s) = (plan::victim(), plan::server());
    let mut cap = Capture::new();
    for ((i, e), sport) in (0u64..).zip(VISITS.iter()).zip(47_000u16..) {
        let t = start_us + i * VISIT_GAP_US;
        let part = match e.visit {
            Visit::Http { host, target } => {
                let req = format!(
                    "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: svm-testgen/1\r\nAccept: */*\r\n\r\n"
                );
                let resp = crate::http_response();
                tcp_session(
                    link,
                    &c,
                    &s,
                    sport,
                    80,
                    req.as_bytes(),
                    resp.as_bytes(),
                    t,
                    1_000,
                )
            }
            Visit::Tls(name) => {
                // A stand-in for the server's flight: a handshake record header and bytes.
                let mut flight = vec![0x16, 0x03, 0x03, 0x00, 0x20];
                flight.extend_from_slice(&[0x02; 32]);
                tcp_session(
                    link,
                    &c,
                    &s,
                    sport,
                    443,
                    &client_hello(name),
                    &flight,
                    t,
                    1_000,
                )
            }
            Visit::Dns(name) => {
                let id = 0x5700 | u16::try_from(i).unwrap_or(0);
                let mut part = Capture::new();
                part.push(t, link.udp(&c, &s, sport, 53, &dns_a_query(id, name)));
                part.push(
                    t + 2_000,
                    link.udp(
                        &s,
                        &c,
                        53,
                        sport,
                        &dns_a_response(id, name, Ipv4Addr::new(192, 0, 2, 80)),
                    ),
                );
                part
            }
        };
        cap.extend(part);
    }
    cap
}
