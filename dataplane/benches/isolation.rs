//! Isolation: the time to reset every TCP flow of a VM when it is isolated (the worker's walk of
//! its flow table, building two resets per flow), with the VM's flows alone in the table and
//! among many other flows.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing
)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use dataplane::decode::{IpProto, TcpFlags};
use dataplane::event::Engine;
use dataplane::flow::{FlowConfig, FlowKey, FlowTable, SegmentNote};
use dataplane::isolation::hook::{Acts, reset_flows};
use dataplane::isolation::{IsolationOrigin, Protected, ProtectedVm, SharedIsolation, VmNic};
use dataplane::time::Timestamp;
use dataplane::worker::{Counters, VecOutput};
use vlan::{VlanId, VlanScope, VlanStack};

const VM_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x66];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x20];

fn scope() -> VlanScope {
    VlanScope::single(VlanId::new(100).unwrap())
}

/// `vm` established TCP flows of the VM (VM:port -> peer:443, handshake seen and recorded),
/// plus `others` established flows between other hosts.
fn table(vm: u32, others: u32) -> FlowTable {
    let mut flows = FlowTable::new(FlowConfig::default(), 0);
    let stack = VlanStack::single(VlanId::new(100).unwrap());
    let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 20));
    let mut add = |src: (IpAddr, u16), macs: ([u8; 6], [u8; 6]), note: bool| {
        let dst = (peer, 443);
        for (i, (s, d, m, flags)) in [
            (src, dst, macs, TcpFlags::SYN),
            (dst, src, (macs.1, macs.0), TcpFlags::SYN | TcpFlags::ACK),
            (src, dst, macs, TcpFlags::ACK),
        ]
        .into_iter()
        .enumerate()
        {
            let (key, a_to_b) = FlowKey::new(scope(), IpProto::Tcp, s, d);
            let n = SegmentNote {
                vlan: &stack,
                eth: m,
                next: 1000 + i as u32,
                ack: (i > 0).then_some(2000),
            };
            flows.update_noting(
                Timestamp(1),
                &key,
                a_to_b,
                Some(TcpFlags(flags)),
                None,
                60,
                note.then_some(&n),
            );
        }
    };
    let vm_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 66));
    // One peer port each: at most 64,511 flows of the VM.
    for i in 0..vm.min(64_511) {
        add((vm_ip, 1024 + i as u16), (VM_MAC, PEER_MAC), true);
    }
    for i in 0..others {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 | i));
        add((ip, 40_000), ([9; 6], PEER_MAC), false);
    }
    flows
}

fn reset(c: &mut Criterion) {
    let protected = Arc::new(
        Protected::new(vec![ProtectedVm {
            id: "vm-66".into(),
            nics: vec![VmNic {
                scope: scope(),
                mac: Some(VM_MAC),
                addrs: vec![],
            }],
            learned: Arc::default(),
        }])
        .unwrap(),
    );
    let policy = policy::Policy::default();
    let mut g = c.benchmark_group("isolation_reset");
    g.sample_size(20);
    for (name, vm, others) in [
        ("10k_vm_flows", 10_000, 0),
        ("10k_vm_flows_among_200k", 10_000, 200_000),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let SharedIsolation { mut clients, .. } =
                        SharedIsolation::new(Arc::clone(&protected), 1);
                    let origin = IsolationOrigin::Automatic {
                        engine: Engine::AttackBlocker,
                        signature: "Scan.Generic.TCP".into(),
                        sid: 1,
                        flow_id: None,
                    };
                    let e = clients[0]
                        .isolate(0, Timestamp(2), 60, Vec::new().into(), origin)
                        .unwrap();
                    (table(vm, others), e, VecOutput::default())
                },
                |(mut flows, e, mut out)| {
                    let mut counters = Counters::default();
                    let mut acts = Acts {
                        policy: &policy,
                        flows: &mut flows,
                        counters: &mut counters,
                        out: &mut out,
                    };
                    let n = reset_flows(&e, true, &mut acts);
                    assert_eq!(n, u64::from(vm));
                    (flows, out)
                },
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, reset);
criterion_main!(benches);
