//! Reassembly throughput (in order and out of order) and HTTP request parsing.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use dataplane::app::AppState;
use dataplane::decode::TcpFlags;
use dataplane::stream::{Segment, StreamConfig, StreamMemcap, TcpStream};

const MSS: usize = 1448;

fn segments(total: usize) -> Vec<u8> {
    (0..total)
        .map(|i| u8::try_from(i % 251).unwrap_or(0))
        .collect()
}

fn seq_of(segment: usize) -> u32 {
    1u32.wrapping_add(u32::try_from(segment * MSS).unwrap_or(0))
}

fn run(payload: &[u8], order: &[usize]) -> usize {
    let cfg = StreamConfig {
        depth: u64::MAX,
        ..StreamConfig::default()
    };
    let mem = StreamMemcap::new(usize::MAX);
    let mut s = TcpStream::new(cfg, &mem);
    s.insert(
        true,
        Segment {
            seq: 0,
            ack: 0,
            flags: TcpFlags(TcpFlags::SYN),
            payload: &[],
            urgent: 0,
        },
    );
    for &i in order {
        let Some(chunk) = payload.chunks(MSS).nth(i) else {
            continue;
        };
        s.insert(
            true,
            Segment {
                seq: seq_of(i),
                ack: 0,
                flags: TcpFlags(TcpFlags::ACK),
                payload: chunk,
                urgent: 0,
            },
        );
    }
    s.client.data().len()
}

fn bench(c: &mut Criterion) {
    let total = 1 << 20;
    let payload = segments(total);
    let n = total.div_ceil(MSS);
    let in_order: Vec<usize> = (0..n).collect();
    // Pairs swapped: every other segment arrives early and is held.
    let mut swapped = in_order.clone();
    for pair in swapped.chunks_mut(2) {
        pair.reverse();
    }
    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("reassemble_1MiB_in_order", |b| {
        b.iter(|| run(black_box(&payload), &in_order))
    });
    g.bench_function("reassemble_1MiB_pairs_swapped", |b| {
        b.iter(|| run(black_box(&payload), &swapped))
    });
    g.finish();

    let req = b"GET /index.php?id=1&q=%41%42 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\nCookie: session=abcdef0123456789\r\nConnection: keep-alive\r\n\r\n";
    let mut g = c.benchmark_group("http");
    g.throughput(Throughput::Bytes(req.len() as u64));
    g.bench_function("parse_request", |b| {
        b.iter(|| dataplane::app::http::parser::parse_request(black_box(req)))
    });
    let mut pipelined = Vec::new();
    for _ in 0..64 {
        pipelined.extend_from_slice(req);
    }
    g.throughput(Throughput::Bytes(pipelined.len() as u64));
    g.bench_function("app_state_64_pipelined", |b| {
        b.iter(|| {
            let cfg = StreamConfig::default();
            let mut s = TcpStream::new(cfg, &StreamMemcap::default());
            s.insert(
                true,
                Segment {
                    seq: 0,
                    ack: 0,
                    flags: TcpFlags(TcpFlags::SYN),
                    payload: &[],
                    urgent: 0,
                },
            );
            let mut app = AppState::new();
            let mut txs = 0;
            for (i, chunk) in pipelined.chunks(MSS).enumerate() {
                s.insert(
                    true,
                    Segment {
                        seq: seq_of(i),
                        ack: 0,
                        flags: TcpFlags(TcpFlags::ACK),
                        payload: chunk,
                        urgent: 0,
                    },
                );
                txs += app.on_stream(true, &s.client, (40000, 80)).new_txs;
            }
            txs
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
