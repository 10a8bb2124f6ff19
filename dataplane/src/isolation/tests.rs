#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use core::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use policy::isolation::{CustomExclusion, Direction, IsolationExclusion, default_exclusions};
use vlan::{VlanId, VlanScope, VlanStack};

use super::*;
use crate::decode::{IpProto, TcpFlags};
use crate::event::{Engine, Event, EventKind};
use crate::flow::{FlowConfig, FlowKey, FlowTable, SegmentNote};
use crate::time::Timestamp;
use crate::worker::{Counters, VecOutput};

const VM_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x66];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x20];

fn v100() -> VlanScope {
    VlanScope::single(VlanId::new(100).unwrap())
}

fn protected() -> Arc<Protected> {
    Arc::new(
        Protected::new(vec![ProtectedVm {
            id: "vm-66".into(),
            nics: vec![VmNic {
                scope: v100(),
                mac: Some(VM_MAC),
                addrs: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 66))],
            }],
            learned: Arc::default(),
        }])
        .unwrap(),
    )
}

fn ids(src: [u8; 6], dst: [u8; 6]) -> table::FrameIds {
    table::FrameIds {
        scope: v100(),
        eth_src: src,
        eth_dst: dst,
        ips: None,
    }
}

fn auto() -> IsolationOrigin {
    IsolationOrigin::Automatic {
        engine: Engine::AttackBlocker,
        signature: "Scan.Generic.TCP".into(),
        sid: 1,
        flow_id: None,
    }
}

#[test]
fn a_workers_isolation_is_seen_by_every_worker_before_the_keeper_runs() {
    let SharedIsolation {
        mut keeper,
        control,
        mut clients,
    } = SharedIsolation::new(protected(), 2);
    let now = Timestamp(1_000_000);
    let e = clients[0]
        .isolate(0, now, 60, default_exclusions().into(), auto())
        .unwrap();
    assert_eq!(e.expires, Timestamp(61_000_000));
    // A second detection of the same VM isolates nothing new.
    assert!(
        clients[1]
            .isolate(0, now, 60, Vec::new().into(), auto())
            .is_none()
    );
    clients[1].refresh();
    let (found, vm_sent) = clients[1].find(&ids(PEER_MAC, VM_MAC), now).unwrap();
    assert!(!vm_sent);
    assert_eq!(found.serial, e.serial);
    // Not in another scope, and not once over (compared with the frame's time).
    let mut other = ids(VM_MAC, PEER_MAC);
    other.scope = VlanScope::UNTAGGED;
    assert!(clients[1].find(&other, now).is_none());
    assert!(
        clients[1]
            .find(&ids(VM_MAC, PEER_MAC), Timestamp(61_000_000))
            .is_none()
    );
    assert_eq!(control.list(now).len(), 1, "listed while still fresh");
    // The keeper reports it once, then it is in the snapshot.
    let mut events = Vec::new();
    keeper.drain(&mut |ev| events.push(ev));
    keeper.publish();
    assert_eq!(events.len(), 1);
    assert!(matches!(
        &events[0].kind,
        EventKind::Isolation {
            change: IsolationChange::Started {
                duration_secs: 60,
                ..
            },
            ..
        }
    ));
    clients[0].refresh();
    assert!(clients[0].find(&ids(VM_MAC, PEER_MAC), now).is_some());
    // It ends at its own time, to the microsecond, whenever the keeper looks.
    keeper.expire(Timestamp(60_999_999), &mut |ev| events.push(ev));
    assert_eq!(events.len(), 1);
    keeper.expire(Timestamp(90_000_000), &mut |ev| events.push(ev));
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].ts, Timestamp(61_000_000));
    assert!(matches!(
        &events[1].kind,
        EventKind::Isolation {
            change: IsolationChange::Ended {
                reason: IsolationEnd::Expired,
                ..
            },
            ..
        }
    ));
    keeper.publish();
    clients[1].refresh();
    assert!(!clients[1].any());
}

#[test]
fn administrators_enable_list_and_disable() {
    let SharedIsolation { mut keeper, .. } = SharedIsolation::new(protected(), 1);
    let mut events: Vec<Event> = Vec::new();
    let mut on = |ev| events.push(ev);
    let t = Timestamp(5_000_000);
    assert_eq!(
        keeper.enable("nope", t, 60, vec![], String::new(), &mut on),
        Err(IsolationError::UnknownVm("nope".into()))
    );
    assert_eq!(
        keeper.enable("vm-66", t, 0, vec![], String::new(), &mut on),
        Err(IsolationError::Duration(0))
    );
    assert_eq!(
        keeper.disable("vm-66", t, &mut on),
        Err(IsolationError::NotIsolated("vm-66".into()))
    );
    let info = keeper
        .enable("vm-66", t, 3600, vec![], "ticket 7".into(), &mut on)
        .unwrap();
    assert_eq!(info.expires, t.plus_secs(3600));
    assert_eq!(
        keeper.enable("vm-66", t, 60, vec![], String::new(), &mut on),
        Err(IsolationError::AlreadyIsolated("vm-66".into()))
    );
    let ended = keeper.disable("vm-66", t.plus_secs(10), &mut on).unwrap();
    assert_eq!(
        ended.origin,
        IsolationOrigin::Manual {
            note: "ticket 7".into()
        }
    );
    assert_eq!(keeper.stats().started, 1);
    assert_eq!(keeper.stats().released, 1);
    assert_eq!(events.len(), 2);
}

#[test]
fn control_commands_reach_a_running_keeper() {
    let SharedIsolation {
        keeper,
        control,
        mut clients,
    } = SharedIsolation::new(protected(), 1);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            keeper.run(
                &stop,
                || Timestamp(1),
                std::time::Duration::from_millis(5),
                move |ev| {
                    let _ = tx.send(ev);
                },
            )
        });
        let info = control
            .enable("vm-66", Timestamp(1), 600, vec![], String::new())
            .unwrap();
        assert_eq!(info.vm.id.as_ref(), "vm-66");
        // Once enable returns, every worker drops the VM's next frame.
        clients[0].refresh();
        assert!(
            clients[0]
                .find(&ids(VM_MAC, PEER_MAC), Timestamp(2))
                .is_some()
        );
        assert_eq!(
            control.get("vm-66", Timestamp(2)).unwrap().expires,
            Timestamp(1).plus_secs(600)
        );
        assert!(control.disable("vm-66", Timestamp(3)).is_ok());
        assert_eq!(
            control.disable("vm-66", Timestamp(3)),
            Err(IsolationError::NotIsolated("vm-66".into()))
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let st = h.join().unwrap();
        assert_eq!((st.started, st.released), (1, 1));
    });
    assert_eq!(rx.try_iter().count(), 2);
}

#[test]
fn a_saving_keeper_reports_the_table_after_each_change() {
    let SharedIsolation {
        keeper, control, ..
    } = SharedIsolation::new(protected(), 1);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            keeper.run_saving(
                &stop,
                || Timestamp(1),
                std::time::Duration::from_millis(5),
                |_| {},
                move |all: Vec<IsolationInfo>| {
                    let _ = tx.send(all);
                },
            )
        });
        control
            .enable("vm-66", Timestamp(1), 600, vec![], "note".into())
            .unwrap();
        let saved = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].vm.id.as_ref(), "vm-66");
        assert_eq!(saved[0].expires, Timestamp(1).plus_secs(600));
        control.disable("vm-66", Timestamp(2)).unwrap();
        let saved = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert!(saved.is_empty());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        h.join().unwrap();
    });
    // Nothing changed after the release: no further report.
    assert!(rx.try_recv().is_err());
}

/// A flow table holding `n` established TCP flows of the VM (VM:port -> peer:443), plus one
/// flow between two other hosts.
pub(crate) fn vm_flows(n: u16) -> FlowTable {
    let mut flows = FlowTable::new(FlowConfig::default(), 0);
    let vm = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 66));
    let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 20));
    let stack = VlanStack::single(VlanId::new(100).unwrap());
    let now = Timestamp(1);
    let mut one = |src: (IpAddr, u16), dst: (IpAddr, u16), macs: ([u8; 6], [u8; 6])| {
        for (i, (s, d, m, flags)) in [
            (src, dst, macs, TcpFlags::SYN),
            (dst, src, (macs.1, macs.0), TcpFlags::SYN | TcpFlags::ACK),
            (src, dst, macs, TcpFlags::ACK),
        ]
        .into_iter()
        .enumerate()
        {
            let (key, a_to_b) = FlowKey::new(v100(), IpProto::Tcp, s, d);
            let note = SegmentNote {
                vlan: &stack,
                eth: m,
                next: 1000 + u32::try_from(i).unwrap(),
                ack: (i > 0).then_some(2000),
            };
            flows.update_noting(
                now,
                &key,
                a_to_b,
                Some(TcpFlags(flags)),
                None,
                60,
                Some(&note),
            );
        }
    };
    for p in 0..n {
        one((vm, 10_000 + p), (peer, 443), (VM_MAC, PEER_MAC));
    }
    one(
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 1),
        (peer, 443),
        ([9; 6], PEER_MAC),
    );
    flows
}

/// What the hook acts on, from a test's parts.
fn acts<'a, X>(
    policy: &'a policy::Policy,
    flows: &'a mut FlowTable<X>,
    counters: &'a mut Counters,
    out: &'a mut VecOutput,
) -> hook::Acts<'a, X, VecOutput> {
    hook::Acts {
        policy,
        flows,
        counters,
        out,
    }
}

#[test]
fn isolation_resets_every_flow_of_the_vm_not_excluded() {
    let SharedIsolation { mut clients, .. } = SharedIsolation::new(protected(), 1);
    let mut flows = vm_flows(10_000);
    let e = clients[0]
        .isolate(0, Timestamp(2), 60, Vec::new().into(), auto())
        .unwrap();
    let policy = policy::Policy::default();
    let mut counters = Counters::default();
    let mut out = VecOutput::default();
    let n = hook::reset_flows(
        &e,
        true,
        &mut acts(&policy, &mut flows, &mut counters, &mut out),
    );
    assert_eq!(n, 10_000);
    assert_eq!(e.flows_reset(), 10_000);
    assert_eq!(out.injected.len(), 20_000);
    assert_eq!(
        flows.iter_mut().filter(|(_, f)| f.terminated).count(),
        10_000
    );
    // Toward the VM: back the way the VM's frame came.
    let to_vm = out
        .injected
        .iter()
        .filter(|(f, t)| f.get(0..6) == Some(&VM_MAC[..]) && *t == crate::worker::Toward::Source)
        .count();
    assert_eq!(to_vm, 10_000);
    // Once is enough: terminated flows are not reset again.
    assert_eq!(
        hook::reset_flows(
            &e,
            true,
            &mut acts(&policy, &mut flows, &mut counters, &mut out)
        ),
        0
    );
    // An exclusion's flows are left alone.
    let mut flows = vm_flows(10);
    let keep_https = IsolationExclusion::Custom(CustomExclusion {
        ports: vec![(443, 443)],
        direction: Direction::Outbound,
        ..CustomExclusion::default()
    });
    let mut c2 = SharedIsolation::new(protected(), 1).clients;
    let e = c2[0]
        .isolate(0, Timestamp(2), 60, vec![keep_https].into(), auto())
        .unwrap();
    assert_eq!(
        hook::reset_flows(
            &e,
            false,
            &mut acts(&policy, &mut flows, &mut counters, &mut out)
        ),
        0
    );
}

#[test]
fn an_isolation_released_before_a_worker_meets_the_vm_resets_nothing() {
    let SharedIsolation {
        mut keeper,
        mut clients,
        ..
    } = SharedIsolation::new(protected(), 1);
    let t = Timestamp(1);
    keeper
        .enable("vm-66", t, 60, vec![], String::new(), &mut |_| {})
        .unwrap();
    keeper.publish();
    clients[0].refresh();
    assert!(clients[0].has_pending());
    keeper.disable("vm-66", t, &mut |_| {}).unwrap();
    keeper.publish();
    clients[0].refresh();
    assert!(!clients[0].has_pending() && !clients[0].any());
}

#[test]
fn flow_resets_carry_the_whole_tag_stack_and_the_expected_numbers() {
    use crate::decode::{DecodeOptions, L3, L4, decode_frame};
    let stack = VlanStack::qinq(VlanId::new(300).unwrap(), VlanId::new(100).unwrap());
    let mut ends = crate::flow::TcpEnds::default();
    // a -> b: seq 1000 + 10 bytes, ack 5000; then b -> a: seq 5000, ack 1010.
    ends.note(
        true,
        &SegmentNote {
            vlan: &stack,
            eth: (VM_MAC, PEER_MAC),
            next: 1010,
            ack: Some(5000),
        },
    );
    assert_eq!(ends.expects(1), Some(1010), "b expects a's next byte");
    assert_eq!(
        ends.expects(0),
        Some(5000),
        "a expects what it acknowledged"
    );
    let a = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 66)), 40_000);
    let b = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 20)), 22);
    let [to_a, to_b] = crate::reset::flow_resets(a, b, &ends);
    let strict = DecodeOptions {
        verify_checksums: true,
    };
    for (frame, dst_mac, (src, dst), seq) in [
        (to_a.unwrap(), VM_MAC, (b, a), 5000),
        (to_b.unwrap(), PEER_MAC, (a, b), 1010),
    ] {
        let d = decode_frame(&frame, strict).unwrap();
        assert!(d.anomalies.is_empty());
        assert_eq!(d.eth_dst, dst_mac);
        assert_eq!(d.vlan.ids().collect::<Vec<_>>(), vec![300, 100]);
        assert_eq!(
            d.vlan
                .tags()
                .iter()
                .map(|t| u16::from(t.tpid))
                .collect::<Vec<_>>(),
            vec![0x88a8, 0x8100]
        );
        let L3::Ip(ip) = &d.l3 else { panic!("IP") };
        let L4::Tcp(t) = &ip.l4 else { panic!("TCP") };
        assert_eq!((ip.src(), t.src_port), src);
        assert_eq!((ip.dst(), t.dst_port), dst);
        assert_eq!(t.seq, seq);
        assert!(t.flags.has(TcpFlags::RST));
    }
    // An end never heard from and never acknowledged gets no reset.
    let mut half = crate::flow::TcpEnds::default();
    half.note(
        true,
        &SegmentNote {
            vlan: &stack,
            eth: (VM_MAC, PEER_MAC),
            next: 1001,
            ack: None,
        },
    );
    let [to_a, to_b] = crate::reset::flow_resets(a, b, &half);
    assert!(to_a.is_none() && to_b.is_some());
}

proptest::proptest! {
    /// The MAC prefilter never says "not in the set" for a member.
    #[test]
    fn mac_filter_has_no_false_negatives(
        set in proptest::collection::vec(proptest::prelude::any::<[u8; 6]>(), 0..20),
        probe in proptest::prelude::any::<[u8; 6]>(),
    ) {
        let mut f = vm::MacFilter::default();
        for m in &set {
            f.insert(*m);
        }
        for m in &set {
            proptest::prop_assert!(f.may_contain(*m));
        }
        if !f.may_contain(probe) {
            proptest::prop_assert!(!set.contains(&probe));
        }
        let g = vm::MacFilter::default().union(f);
        proptest::prop_assert_eq!(g, f);
    }
}
