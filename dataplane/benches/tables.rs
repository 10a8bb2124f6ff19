//! Flow lookup and block lookup, the per-packet table operations.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dataplane::blocks::BlockKey;
use dataplane::decode::{IpProto, TcpFlags};
use dataplane::event::Engine;
use dataplane::flow::{FlowConfig, FlowKey, FlowTable};
use dataplane::shared_blocks::{BlockRequest, Command, SharedBlocks};
use dataplane::time::Timestamp;
use vlan::{VlanId, VlanScope};

fn addr(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i))
}

/// The worker's per-packet block check ([`BlockClient::check_and_hit`]): one atomic load of the
/// table's version, then a probe of the published snapshot (and of the fresh blocks not yet in
/// it).
fn blocks(c: &mut Criterion) {
    const N: u32 = 1_000_000;
    let SharedBlocks {
        mut keeper,
        mut clients,
        ..
    } = SharedBlocks::new(2, N as usize + 1);
    let scope = VlanScope::single(VlanId::new(100).unwrap());
    for i in 0..N {
        keeper.apply(
            Command::Manual {
                key: BlockKey {
                    scope,
                    addr: addr(i),
                },
                now: Timestamp(0),
                duration_secs: 3600,
                reason: "bench".into(),
                reply: None,
            },
            &mut |_| {},
        );
    }
    keeper.publish();
    let mut t = clients.remove(0);
    let mut g = c.benchmark_group("block_lookup_1M");
    g.throughput(Throughput::Elements(1));
    let now = Timestamp(Timestamp::SECOND);
    let mut i = 0u32;
    g.bench_function("hit", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(t.check_and_hit(scope, addr(i), now))
        })
    });
    let other = VlanScope::single(VlanId::new(200).unwrap());
    g.bench_function("miss_other_vlan", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(t.check_and_hit(other, addr(i), now))
        })
    });
    // A block another worker just made, not yet published: found in the fresh index.
    let mut w2 = clients.remove(0);
    let fresh = BlockKey {
        scope: other,
        addr: addr(1),
    };
    w2.block(BlockRequest {
        key: fresh,
        now,
        duration_secs: 60,
        reason: "bench".into(),
        engine: Engine::AttackBlocker,
        sid: None,
        flow_id: None,
        pcap_cnt: None,
    });
    g.bench_function("hit_fresh_unpublished", |b| {
        b.iter(|| black_box(t.check_and_hit(other, addr(1), now)))
    });
    g.bench_function("empty_table", |b| {
        let SharedBlocks { mut clients, .. } = SharedBlocks::new(1, 16);
        let mut empty = clients.remove(0);
        b.iter(|| black_box(empty.check_and_hit(scope, addr(1), now)))
    });
    g.finish();
}

fn flows(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_lookup");
    g.throughput(Throughput::Elements(1));
    for n in [1_000u32, 100_000, 1_000_000] {
        let mut t: FlowTable = FlowTable::new(
            FlowConfig {
                max_flows: 2_000_000,
                ..FlowConfig::default()
            },
            0,
        );
        let keys: Vec<(FlowKey, bool)> = (0..n)
            .map(|i| {
                FlowKey::new(
                    VlanScope::UNTAGGED,
                    IpProto::Tcp,
                    (addr(i), 40_000 + (i % 20_000) as u16),
                    (addr(0xff_ffff - i % 1000), 443),
                )
            })
            .collect();
        for (k, d) in &keys {
            t.update(Timestamp(1), k, *d, Some(TcpFlags(TcpFlags::SYN)), 60);
        }
        let mut i = 0usize;
        g.bench_function(format!("existing_{n}"), |b| {
            b.iter(|| {
                i = (i + 7919) % keys.len();
                let (k, d) = &keys[i];
                black_box(t.update(Timestamp(2), k, !*d, Some(TcpFlags(TcpFlags::ACK)), 60))
            })
        });
    }
    g.bench_function("new_flow_into_1000", |b| {
        b.iter_batched(
            || FlowTable::<()>::new(FlowConfig::default(), 0),
            |mut t| {
                for i in 0..1000 {
                    let (k, d) = FlowKey::new(
                        VlanScope::UNTAGGED,
                        IpProto::Udp,
                        (addr(i), 5000),
                        (addr(1), 53),
                    );
                    black_box(t.update(Timestamp(1), &k, d, None, 60));
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    // A random-source SYN flood into a full table: every packet is a new flow and evicts one
    // (the oldest unanswered). Elements per second are new flows per second at the cap.
    let mut g = c.benchmark_group("flow_flood");
    g.throughput(Throughput::Elements(1));
    for cap in [1024usize, 1 << 20] {
        let mut t: FlowTable = FlowTable::new(
            FlowConfig {
                max_flows: cap,
                ..FlowConfig::default()
            },
            0,
        );
        let syn = |t: &mut FlowTable, i: u32| {
            let (k, d) = FlowKey::new(
                VlanScope::UNTAGGED,
                IpProto::Tcp,
                (addr(i), 40_000 + (i % 20_000) as u16),
                (addr(0xff_fffe), 80),
            );
            t.update(Timestamp(1), &k, d, Some(TcpFlags(TcpFlags::SYN)), 60)
        };
        let mut i = 0u32;
        while t.len() < cap {
            syn(&mut t, i);
            i += 1;
        }
        g.bench_function(format!("new_flow_into_full_{cap}"), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                black_box(syn(&mut t, i))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, blocks, flows);
criterion_main!(benches);
