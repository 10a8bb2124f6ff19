//! What a worker does for isolation, per frame: drop the frames of an isolated VM that no
//! exclusion lets through, reset the VM's TCP flows once per isolation, record the TCP flows of
//! protected VMs so they can be reset, and isolate a VM whose detection the policy names.
//! [`crate::worker::Worker`] calls these from one separated hook.

use core::net::IpAddr;
use std::borrow::Cow;
use std::sync::Arc;

use policy::isolation::{IsolatedPacket, IsolationExclusion, ipproto};
use policy::{Mode, Policy};
use vlan::VlanScope;

use super::table::{FrameIds, IsolationChange, IsolationClient, IsolationEntry, IsolationOrigin};
use crate::decode::{Decoded, Ip, L3, L4, TcpFlags};
use crate::event::{Engine, Event, EventKind};
use crate::flow::{FlowExt, FlowTable, SegmentNote};
use crate::reset;
use crate::worker::{Attach, Counters, Frame, Output, Toward, inject_resets};

/// ICMPv6 Neighbor Discovery: router solicitation/advertisement, neighbour
/// solicitation/advertisement, redirect (RFC 4861).
const ND_TYPES: core::ops::RangeInclusive<u8> = 133..=137;

/// The frame's addresses, if it is IP.
fn ips(decoded: &Decoded<'_>) -> Option<(IpAddr, IpAddr)> {
    match &decoded.l3 {
        L3::Ip(ip) => Some((ip.src(), ip.dst())),
        _ => None,
    }
}

/// What the worker should do with a frame after the isolation check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Not an isolated VM's, or excluded: go on.
    Pass,
    /// Drop it (inline) / it was answered with resets where it could be (mirror).
    Drop,
}

/// What the hook reads and acts on besides the isolation client: the running policy and the
/// worker's flow table, counters and output (the resets it injects are counted and leave
/// through `out`).
#[derive(Debug)]
pub struct Acts<'a, X, O> {
    /// The running policy.
    pub policy: &'a Policy,
    /// The worker's flow table (the flows an isolation resets).
    pub flows: &'a mut FlowTable<X>,
    /// The worker's counters.
    pub counters: &'a mut Counters,
    /// The worker's output.
    pub out: &'a mut O,
}

/// The isolation check of one decoded frame (before any engine).
#[inline]
pub(crate) fn check_frame<X: FlowExt, O: Output>(
    client: &mut IsolationClient,
    f: &Frame<'_>,
    attach: Attach,
    acts: &mut Acts<'_, X, O>,
) -> Check {
    let decoded = f.decoded;
    // The VM's addresses, from its own ARP/ND and its DHCP acknowledgements (isolated or not).
    super::learn::learn_from_frame(client.protected(), decoded, f.scope);
    client.refresh();
    if !client.any() || acts.policy.mode == Mode::Monitoring {
        // Monitoring mode drops and resets nothing (an isolation made before the switch is
        // kept, and its flows are reset once the mode is standard again).
        return Check::Pass;
    }
    // Most frames are no isolated VM's: one or two loads tell, unless resets are due on a
    // mirror (any frame will do for those).
    let resets_due = attach == Attach::Mirror && client.has_pending();
    if !resets_due && !client.may_match(decoded.eth_src, decoded.eth_dst) {
        return Check::Pass;
    }
    check_isolated(client, f, attach, acts)
}

#[cold]
#[inline(never)]
fn check_isolated<X: FlowExt, O: Output>(
    client: &mut IsolationClient,
    f: &Frame<'_>,
    attach: Attach,
    acts: &mut Acts<'_, X, O>,
) -> Check {
    let Frame {
        decoded,
        scope,
        meta,
        ..
    } = *f;
    let ids = frame_ids(f);
    if attach == Attach::Mirror && client.has_pending() {
        // On a mirror every reset leaves through the inject port: no need to know the VM's side.
        let now = meta.ts;
        for e in client.take_pending(|e| e.expires > now) {
            reset_flows(&e, true, acts);
        }
    }
    let Some((entry, vm_sent)) = client.find(&ids, meta.ts) else {
        return Check::Pass;
    };
    // Inline, the first frame of the VM tells which port faces it: the resets leave by it.
    if client.has_pending() {
        let serial = entry.serial;
        for e in client.take_pending(|e| e.serial == serial) {
            reset_flows(&e, vm_sent, acts);
        }
    }
    if excluded(
        &entry,
        decoded,
        vm_sent,
        scope,
        &acts.policy.isolation.dns_resolvers,
    ) {
        return Check::Pass;
    }
    entry.count_drop();
    if attach == Attach::Mirror
        && let L3::Ip(ip) = &decoded.l3
        && let L4::Tcp(t) = &ip.l4
        && !t.flags.has(TcpFlags::RST)
    {
        inject_resets(decoded, ip, t, acts.counters, acts.out);
    }
    Check::Drop
}

/// The isolation table's view of a frame.
fn frame_ids(f: &Frame<'_>) -> FrameIds {
    let decoded = f.decoded;
    FrameIds {
        scope: f.scope,
        eth_src: decoded.eth_src,
        eth_dst: decoded.eth_dst,
        ips: ips(decoded),
    }
}

/// Whether a frame of the isolated VM passes the isolation's exclusions. ARP and Neighbor
/// Discovery pass whenever there is any exclusion (every exchange an exclusion allows needs
/// them); frames that are neither ARP nor IP never pass.
pub fn excluded(
    entry: &IsolationEntry,
    decoded: &Decoded<'_>,
    vm_sent: bool,
    scope: VlanScope,
    resolvers: &[IpAddr],
) -> bool {
    if entry.exclusions.is_empty() {
        return false;
    }
    let ip = match &decoded.l3 {
        L3::Arp(_) => return true,
        L3::Other => return false,
        L3::Ip(ip) => ip,
    };
    if let L4::Icmpv6(m) = &ip.l4
        && ND_TYPES.contains(&m.icmp_type)
    {
        return true;
    }
    let p = isolated_packet(ip, vm_sent, scope);
    entry.exclusions.iter().any(|e| e.matches(&p, resolvers))
}

fn isolated_packet(ip: &Ip<'_>, vm_sent: bool, scope: VlanScope) -> IsolatedPacket {
    let (sport, dport) = ip.l4.ports().unwrap_or((0, 0));
    let syn_only =
        matches!(&ip.l4, L4::Tcp(t) if t.flags.has(TcpFlags::SYN) && !t.flags.has(TcpFlags::ACK));
    IsolatedPacket {
        scope,
        outbound: vm_sent,
        remote: if vm_sent { ip.dst() } else { ip.src() },
        proto: u8::from(ip.proto),
        vm_port: if vm_sent { sport } else { dport },
        remote_port: if vm_sent { dport } else { sport },
        syn_only,
    }
}

/// Reset every tracked TCP flow of the isolated VM that its exclusions do not let through (RST
/// to both ends, each as if from the other, with the flow's tag stack), and mark the flows
/// terminated. `vm_sent`: the frame being processed came from the VM, so a reset toward the VM
/// leaves toward that frame's source. Returns the flows reset.
pub fn reset_flows<X: FlowExt, O: Output>(
    entry: &IsolationEntry,
    vm_sent: bool,
    acts: &mut Acts<'_, X, O>,
) -> u64 {
    let (toward_vm, toward_remote) = if vm_sent {
        (Toward::Source, Toward::Destination)
    } else {
        (Toward::Destination, Toward::Source)
    };
    let resolvers = &acts.policy.isolation.dns_resolvers;
    let mut n = 0;
    for (key, flow) in acts.flows.iter_mut() {
        if flow.terminated
            || matches!(
                flow.tcp,
                None | Some(crate::flow::TcpState::Reset | crate::flow::TcpState::Closed)
            )
        {
            continue;
        }
        let Some(ends) = flow.ends.as_deref() else {
            continue;
        };
        let scope = key.scope();
        let (a, b) = key.endpoints();
        // Which end is the VM: by MAC, or by address for an interface without one.
        let vm_end = entry
            .vm
            .nics
            .iter()
            .filter(|n| n.scope == scope)
            .find_map(|nic| match nic.mac {
                Some(mac) => ends.macs.iter().position(|m| *m == mac),
                None => [a.0, b.0].iter().position(|x| nic.addrs.contains(x)),
            });
        let Some(vm_end) = vm_end else { continue };
        let (vm_ep, remote_ep) = if vm_end == 0 { (a, b) } else { (b, a) };
        let probe = IsolatedPacket {
            scope,
            outbound: true,
            remote: remote_ep.0,
            proto: ipproto::TCP,
            vm_port: vm_ep.1,
            remote_port: remote_ep.1,
            syn_only: false,
        };
        if entry
            .exclusions
            .iter()
            .any(|e| e.matches(&probe, resolvers))
        {
            continue;
        }
        let frames = reset::flow_resets(a, b, ends);
        for (i, f) in frames.into_iter().enumerate() {
            if let Some(f) = f {
                acts.counters.injected += 1;
                acts.out.inject(
                    f,
                    if i == vm_end {
                        toward_vm
                    } else {
                        toward_remote
                    },
                );
            }
        }
        flow.terminated = true;
        n += 1;
    }
    acts.counters.isolation_resets += n;
    entry.count_resets(n);
    n
}

/// The segment a TCP flow of a protected VM records ([`FlowTable::update_noting`]); `None` for
/// other frames, so other flows carry no [`crate::flow::TcpEnds`].
#[inline]
pub fn note_of<'a>(
    client: &IsolationClient,
    decoded: &'a Decoded<'_>,
    ip: &Ip<'_>,
    scope: VlanScope,
) -> Option<SegmentNote<'a>> {
    let L4::Tcp(t) = &ip.l4 else {
        return None;
    };
    let p = client.protected();
    if p.is_empty() || !p.may_involve(decoded.eth_src, decoded.eth_dst) {
        return None;
    }
    p.sender(scope, decoded.eth_src, Some(ip.src()))
        .or_else(|| p.sender(scope, decoded.eth_dst, Some(ip.dst())))?;
    Some(SegmentNote {
        vlan: &decoded.vlan,
        eth: (decoded.eth_src, decoded.eth_dst),
        next: t.seq.wrapping_add(reset::seq_len(t)),
        ack: t.flags.has(TcpFlags::ACK).then_some(t.ack),
    })
}

/// A detection, as automatic isolation weighs it.
#[derive(Clone, Debug)]
pub struct Trigger {
    /// The engine.
    pub engine: Engine,
    /// Its name (attack or rule message).
    pub signature: Cow<'static, str>,
    /// Signature id.
    pub sid: u32,
    /// Rule classtype (rules only).
    pub classtype: Option<Arc<str>>,
    /// The list's category (web address scan hits only).
    pub category: Option<Arc<str>>,
    /// Priority (1 = most severe).
    pub priority: u8,
    /// The detecting packet's flow.
    pub flow_id: Option<u64>,
    /// The detection's source address.
    pub src: IpAddr,
}

/// Apply `isolation.automatic` to a detection whose packet is `decoded`: when the policy names
/// it and its sender is a protected VM, isolate the VM on every worker and reset this worker's
/// flows of it at once (the frame came from the VM); in monitoring mode report `would_isolate`.
/// Returns whether the VM was isolated now.
pub(crate) fn on_detection<X: FlowExt, O: Output>(
    client: &mut IsolationClient,
    trigger: Trigger,
    f: &Frame<'_>,
    acts: &mut Acts<'_, X, O>,
) -> bool {
    let Frame {
        decoded,
        scope,
        meta,
        ..
    } = *f;
    let policy = acts.policy;
    let auto = &policy.isolation.automatic;
    if !auto.enabled {
        return false;
    }
    let named = match (&auto.triggers, trigger.engine) {
        (None, Engine::AttackBlocker) => true,
        (None, _) => false,
        (Some(t), Engine::AttackBlocker) => t.attack_blocker,
        (Some(t), Engine::WebAddressScan) => {
            trigger.category.as_deref().is_some_and(|c| t.web_hit(c))
        }
        (Some(t), _) => t.rule_alert(trigger.sid, trigger.classtype.as_deref(), trigger.priority),
    };
    if !named {
        return false;
    }
    let Some(vm) = client
        .protected()
        .sender(scope, decoded.eth_src, Some(trigger.src))
    else {
        return false;
    };
    let origin = IsolationOrigin::Automatic {
        engine: trigger.engine,
        signature: trigger.signature,
        sid: trigger.sid,
        flow_id: trigger.flow_id,
    };
    if policy.mode == Mode::Monitoring {
        client.refresh();
        let ids = frame_ids(f);
        // Once per detection while the VM is not isolated already.
        if client.find(&ids, meta.ts).is_none()
            && let Some(pvm) = client.protected().vm(vm)
        {
            acts.counters.would_isolate += 1;
            acts.out.event(Event {
                ts: meta.ts,
                pcap_cnt: Some(meta.pcap_cnt),
                kind: EventKind::Isolation {
                    vm: Arc::clone(pvm),
                    change: IsolationChange::WouldIsolate {
                        origin,
                        duration_secs: auto.duration.as_secs(),
                    },
                },
            });
        }
        return false;
    }
    let exclusions: Arc<[IsolationExclusion]> = auto.exclusions.clone().into();
    let Some(entry) = client.isolate(vm, meta.ts, auto.duration.as_secs(), exclusions, origin)
    else {
        return false;
    };
    acts.counters.isolations += 1;
    let serial = entry.serial;
    for e in client.take_pending(|e| e.serial == serial) {
        reset_flows(&e, true, acts);
    }
    true
}
