//! The pieces the web-address hook calls per flow: the QUIC v1 Initial's server name
//! (`initial_server_name`: key derivation, header protection, AES-128-GCM over a 1,200-byte
//! datagram, CRYPTO reassembly, ClientHello parse), the blocking DNS answer and the block page.
//!
//! `cargo bench -p dataplane --bench web_actions`. Figures go to docs/benchmarks.md with the
//! machine; they are compared, never asserted (STYLE 18).

// Fixtures are built from constants; a panic here is a broken bench, not a packet off the wire.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dataplane::app::dns::answer::{BlockMode, Transport, block_answer};
use dataplane::app::quic::crypto::{InitialKeys, client_initial};
use dataplane::app::quic::initial_server_name;
use dataplane::blockpage::{PageValues, Template};

/// RFC 9001 appendix A.2's CRYPTO frame: a 241-byte ClientHello for example.com (the unit
/// tests' fixture).
const A2_CRYPTO: &str = include_str!("../detect/src/app/quic/testdata/rfc9001_a2_crypto.hex");

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).expect("even"), 16).expect("hex"))
        .collect()
}

fn quic(c: &mut Criterion) {
    let dcid = hex("8394c8f03e515708");
    // The A.2 datagram: one Initial padded to 1,200 bytes, as every client sends it.
    let dgram = client_initial(&dcid, 2, &hex(A2_CRYPTO), 1162).expect("sealed");
    assert_eq!(
        initial_server_name(&dgram),
        Ok(Some("example.com".to_string()))
    );
    let mut g = c.benchmark_group("quic");
    g.throughput(Throughput::Bytes(dgram.len() as u64));
    g.bench_function("initial_server_name_1200B", |b| {
        b.iter(|| initial_server_name(black_box(&dgram)))
    });
    g.bench_function("initial_keys_derive", |b| {
        b.iter(|| InitialKeys::client(black_box(&dcid)))
    });
    // A datagram that is not QUIC v1 (draft-29): refused from the header.
    let mut other = dgram.clone();
    if let Some(v) = other.get_mut(1..5) {
        v.copy_from_slice(&[0xff, 0, 0, 0x1d]);
    }
    g.bench_function("not_v1_rejected", |b| {
        b.iter(|| initial_server_name(black_box(&other)))
    });
    g.finish();
}

fn answers(c: &mut Criterion) {
    // A query for evil.example.com A with an OPT record (as stub resolvers send it).
    let query = hex(
        "abcd01000001000000000001046576696c076578616d706c6503636f6d0000010001\
         0000291000000000000000",
    );
    block_answer(&query, Transport::Udp, BlockMode::Null, "x").expect("answerable");
    let mut g = c.benchmark_group("web_actions");
    g.bench_function("dns_block_answer_null", |b| {
        b.iter(|| {
            block_answer(
                black_box(&query),
                Transport::Udp,
                BlockMode::Null,
                "phishing-domains.txt (phishing)",
            )
        })
    });
    let page = Template::default();
    let values = PageValues {
        address: "http://evil.example.com/login.php?user=a&next=/",
        category: "phishing",
        list: "phishing-domains.txt",
        entry: "evil.example.com",
    };
    g.bench_function("block_page_response", |b| {
        b.iter(|| page.response(black_box(&values)))
    });
    g.finish();
}

criterion_group!(benches, quic, answers);
criterion_main!(benches);
