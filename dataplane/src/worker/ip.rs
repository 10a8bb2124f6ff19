//! An IP packet's path: the block check, the exclusion and protection checks, defragmentation,
//! the flow table and the attack blocker, then the activity scanner (`scan.rs`), the web address
//! scan (`web.rs`) and the packet a tunnel carries (`tunnel.rs`).

use std::sync::Arc;

use policy::{ExclusionRule, Mode};
use vlan::VlanScope;

use super::{
    Attach, DropReason, EnginePeek, Frame, IPPROTO_IPIP, IPPROTO_IPV6, Output, PacketMeta, Pkt,
    Tracked, Verdict, Worker, iso_hook, web,
};
use crate::attack::{Attack, PacketFacts};
use crate::decode::{self, DecodeEvent, Decoded, Fragment, Ip, L4, tunnel};
use crate::defrag::DefragAnomaly;
use crate::event::PacketRef;
use crate::flow::{FlowKey, FlowUpdate};

impl Worker {
    /// Inlined into both decoding paths: called from two places it was left out of line, and
    /// the call (the decoded frame re-read through memory) cost more than the copy.
    #[inline(always)]
    pub(super) fn process_ip(
        &mut self,
        decoded: &Decoded<'_>,
        ip: &Ip<'_>,
        scope: VlanScope,
        meta: PacketMeta,
        out: &mut impl Output,
    ) -> Verdict {
        if self.flows.flooded() && !core::mem::take(&mut self.hinted) {
            self.prefetch_flood(ip, scope);
        }
        // Monitoring drops nothing: a source blocked before the switch, or by hand, is inspected
        // and reported as any other.
        if self.policy.policy().mode != Mode::Monitoring
            && self.blocks.check_and_hit(scope, ip.src(), meta.ts)
        {
            // Mirror mode cannot drop: answer every TCP segment of the blocked source.
            if self.cfg.attach == Attach::Mirror
                && let L4::Tcp(t) = &ip.l4
                && !t.flags.has(decode::TcpFlags::RST)
            {
                self.inject_resets(decoded, ip, t, out);
            }
            return Verdict::Drop(DropReason::Blocked);
        }
        let rule = self.exclusion(scope, ip.src());
        if rule == ExclusionRule::DoNotScan {
            self.counters.excluded += 1;
            return Verdict::Forward;
        }
        // Per-VM protection (protection.rs): which engines inspect this frame.
        if self.vm_protection.is_some() && !self.protect(decoded, scope, ip.src(), ip.dst()) {
            return Verdict::Forward;
        }
        let pkt = Frame {
            decoded,
            scope,
            meta,
            rule,
        }
        .with(ip);
        if let Some(frag) = &ip.fragment {
            return self.process_fragment(&pkt, frag, out);
        }
        let events = if decoded.anomalies.is_empty() {
            0
        } else {
            decoded.anomalies.bits()
        };
        self.inspect_ip(&pkt, events, out)
    }

    /// An IP fragment: the defragmenter (its overlap and oversize anomalies are attacks), the
    /// rules on the fragment as a packet of its own, then the datagram it completes, if any.
    /// Out of line: fragments are rare.
    #[cold]
    #[inline(never)]
    fn process_fragment(
        &mut self,
        pkt: &Pkt<'_>,
        frag: &Fragment<'_>,
        out: &mut impl Output,
    ) -> Verdict {
        let (decoded, ip, scope, rule) = (pkt.decoded, pkt.ip, pkt.scope, pkt.rule);
        let now = pkt.meta.ts;
        // The policy is held by a reference count for the detections.
        let policy = Arc::clone(&self.policy);
        let ab = &policy.policy().attack_blocker;
        self.counters.fragments += 1;
        let res = self.defrag.insert(now, scope, ip, frag);
        let mut verdict = Verdict::Forward;
        if let Some(anomaly) = res.anomaly {
            let attack = match anomaly {
                DefragAnomaly::Overlap => Some(Attack::Teardrop),
                DefragAnomaly::Oversize => Some(Attack::PingOfDeath),
                _ => None,
            };
            if let (Some(attack), true) = (attack, ab.enabled && self.engines.attack_blocker()) {
                self.detections.clear();
                let found = &mut self.detections;
                self.attacks.inspect_reassembly(
                    &ab.detectors,
                    now,
                    scope,
                    ip.src(),
                    ip.dst(),
                    attack,
                    &mut |d| found.push(d),
                );
                let packet = PacketRef {
                    flow_id: None,
                    scope,
                    src_ip: ip.src(),
                    dst_ip: ip.dst(),
                    ports: None,
                    proto: Some(ip.proto),
                    to_server: None,
                };
                let v = self.act_on_detections(&pkt.frame(), |_| packet, None, out);
                if v != Verdict::Forward {
                    verdict = v;
                }
            }
        }
        if let Some(e) = res.event {
            self.count_decoder(e);
        }
        // The fragment is a packet of its own for the rules (Suricata inspects it before
        // the datagram it completes), with its decoder events.
        if self.rules.is_some() && rule != ExclusionRule::DoNotScan {
            let events = decoded.anomalies.bits() | res.event.map_or(0, DecodeEvent::bit);
            let v = self.scan_flowless(pkt, events, out);
            if v != Verdict::Forward {
                verdict = v;
            }
        }
        if let Some(datagram) = res.datagram {
            self.counters.reassembled += 1;
            match decode::decode_ip(&datagram, self.cfg.decode) {
                Ok((whole, anomalies)) => {
                    for a in anomalies.iter() {
                        self.count_decoder(a);
                    }
                    let events = anomalies.bits();
                    let v = self.inspect_ip(&pkt.frame().with(&whole), events, out);
                    if v != Verdict::Forward {
                        verdict = v;
                    }
                }
                Err(e) => {
                    self.counters.invalid += 1;
                    self.count_decoder(e);
                }
            }
        }
        verdict
    }

    /// Flow tracking and detection of a whole (unfragmented or reassembled) IP packet, then of
    /// the packet it tunnels, if any.
    /// `events`: the packet's decoder events ([`DecodeEvent::bit`]s); a GRE header that does
    /// not decode adds its own, as Suricata's GRE decoder marks the outer packet.
    #[inline(always)]
    pub(super) fn inspect_ip(
        &mut self,
        pkt: &Pkt<'_>,
        events: u64,
        out: &mut impl Output,
    ) -> Verdict {
        let ip = pkt.ip;
        let gre = match (ip.proto, &ip.l4) {
            (decode::IpProto::Other(tunnel::IPPROTO_GRE), L4::Other(gre)) => {
                Some(tunnel::decap_gre(&self.cfg.tunnels, gre))
            }
            _ => None,
        };
        let events = match gre {
            Some(Err(e)) => events | e.bit(),
            _ => events,
        };
        let verdict = self.inspect_ip_one(pkt, events, out);
        if let Some(d) = gre {
            return self.inspect_decap(&pkt.frame(), d, verdict, out);
        }
        match (ip.proto, &ip.l4) {
            (decode::IpProto::Other(IPPROTO_IPIP | IPPROTO_IPV6), L4::Other(inner)) => {
                self.inspect_tunnelled(&pkt.frame(), inner, verdict, out)
            }
            (_, L4::Udp(u)) if self.cfg.tunnels.udp_may_tunnel(u.src_port, u.dst_port) => {
                let d = tunnel::decap_udp(&self.cfg.tunnels, u.src_port, u.dst_port, u.payload);
                self.inspect_decap(&pkt.frame(), d, verdict, out)
            }
            _ => verdict,
        }
    }

    /// Flow tracking and detection of one whole IP packet. Inlined, with [`Worker::inspect_ip`],
    /// into the packet path: the flow key and update then stay in registers.
    #[inline(always)]
    fn inspect_ip_one(&mut self, pkt: &Pkt<'_>, events: u64, out: &mut impl Output) -> Verdict {
        let (decoded, ip, scope) = (pkt.decoded, pkt.ip, pkt.scope);
        let (key, a_to_b, tcp_flags) = flow_key(scope, ip);
        // Isolation: TCP flows of protected VMs keep what resetting them needs.
        let note = self
            .iso
            .as_deref()
            .and_then(|iso| iso_hook::note_of(iso, decoded, ip, scope));
        let tcp_seq = match &ip.l4 {
            L4::Tcp(t) => Some(tcp_seq(ip, t)),
            _ => None,
        };
        let (upd, peek) = self.flows.update_noting(
            pkt.meta.ts,
            &key,
            a_to_b,
            tcp_flags,
            tcp_seq,
            decoded.l3_offset + ip.total_len,
            note.as_ref(),
        );
        if upd.terminated {
            return Verdict::Drop(DropReason::Terminated);
        }
        let mut flow = Tracked { key: &key, upd };
        let verdict = self.attack_blocker_ip(pkt, flow, peek, out);
        // Inline, a packet the attack blocker dropped goes no further; on a mirror it was seen
        // anyway, so the rules still inspect it.
        if verdict != Verdict::Forward && self.cfg.attach == Attach::Inline {
            return verdict;
        }
        let mut verdict = verdict;
        if self.rules.is_some()
            && self.policy.policy().activity_scanner.enabled
            && self.engines.activity_scanner(upd.to_server)
        {
            let v = self.scan_ip(pkt, &mut flow, events, out);
            if verdict == Verdict::Forward {
                verdict = v;
            }
        }
        // Web address scan (worker/web.rs): a client's request, server name or query, read once
        // per flow, looked up in the loaded lists. A flow read to its end stops at its peek,
        // the first test after the lists' (most packets of a scanned run).
        if self.web.is_some()
            && !peek.web_done
            && verdict == Verdict::Forward
            && self.engines.web_address_scan()
        {
            match web::wants(ip, flow.upd) {
                web::Wants::Scan => verdict = self.web_scan(pkt, flow, out),
                web::Wants::Skip => {}
                web::Wants::Never => self.web_never(flow),
            }
        }
        verdict
    }

    /// A packet while new flows flood in ([`FlowTable::flooded`]): start fetching the cache
    /// lines its flow lookup and the attack blocker's first-seen tables will read, before the
    /// block check and the exclusions, so their misses (each a random line of a large table
    /// under a random-source flood) overlap instead of following one another. Out of line: the
    /// common packet pays only the test.
    #[cold]
    #[inline(never)]
    fn prefetch_flood(&self, ip: &Ip<'_>, scope: VlanScope) {
        let (key, _, _) = flow_key(scope, ip);
        self.flows.prefetch(&key);
        if self.policy.policy().attack_blocker.enabled {
            self.attacks
                .prefetch(scope, ip.src_bits, ip.dst_bits, ip.v6);
        }
    }

    /// How many frames ahead of the one in hand the backend should name to
    /// [`Worker::prefetch_frame`]: [`LOOKAHEAD`] while new flows flood in, else none. Asked once
    /// per burst, so the common frame pays nothing.
    #[inline]
    pub fn lookahead(&self) -> usize {
        if self.flows.flooded() { LOOKAHEAD } else { 0 }
    }

    /// `frame` comes a few frames after the one in hand ([`Worker::lookahead`]): start fetching
    /// what its flow lookup and the attack blocker's first-seen tables will read, so the misses
    /// have arrived when it is processed (a packet's own prefetch, [`Worker::prefetch_flood`],
    /// is issued too late to hide them: about one packet's work before the lookup). Reads the
    /// frame with the fast decoder only (IPv4/TCP, at most one tag: a flood's SYNs); other
    /// frames get their own prefetch when processed. Changes nothing a verdict reads.
    #[cold]
    #[inline(never)]
    pub fn prefetch_frame(&mut self, frame: &[u8]) {
        if let Some(d) = decode::decode_frame_fast(frame, self.cfg.decode)
            && let decode::L3::Ip(ip) = &d.l3
        {
            self.prefetch_flood(ip, super::scope_of(&d.vlan));
            self.hinted = true;
        }
    }

    /// The attack blocker's part of [`Worker::inspect_ip`]. Left out of line: inlined as well,
    /// the register pressure cost more than the call (569 against 546 instructions a frame).
    fn attack_blocker_ip(
        &mut self,
        pkt: &Pkt<'_>,
        flow: Tracked<'_>,
        peek: EnginePeek,
        out: &mut impl Output,
    ) -> Verdict {
        let (decoded, ip, scope) = (pkt.decoded, pkt.ip, pkt.scope);
        let Tracked { key, upd } = flow;
        // Borrowed field by field (no reference-count traffic per packet): the policy is only
        // read while the detectors fill `self.detections`.
        if let L4::Tcp(t) = &ip.l4
            && (upd.handshake_completed || (upd.half_open && !upd.to_server))
            && self.policy.policy().attack_blocker.enabled
        {
            self.handshake_step(pkt, t, flow);
        }
        let ab = &self.policy.policy().attack_blocker;
        if !ab.enabled || !self.engines.attack_blocker() {
            return Verdict::Forward;
        }
        self.detections.clear();
        let facts = PacketFacts {
            now: pkt.meta.ts,
            scope,
            eth_src: decoded.eth_src,
            ip,
            flow: Some(upd),
        };
        let found = &mut self.detections;
        let mut mac_slot = peek.mac_slot;
        self.attacks
            .inspect(&ab.detectors, &facts, &mut mac_slot, &mut |d| found.push(d));
        if mac_slot != peek.mac_slot
            && let Some(f) = self.flows.get_mut(key)
        {
            // First packet of this direction, or the binding moved: one more probe, rarely.
            f.ext.set_mac_slot(upd.a_to_b, mac_slot);
        }
        if self.detections.is_empty() {
            return Verdict::Forward;
        }
        let packet = flow_packet(scope, ip, upd);
        let verdict = self.act_on_detections(&pkt.frame(), |_| packet, Some(ip), out);
        if verdict != Verdict::Forward {
            self.flows.terminate(key);
        }
        verdict
    }

    /// A segment of an open TCP handshake: note the server's SYN/ACK, and when the client's ACK
    /// acknowledges it, record that the client proved its address from its MAC address
    /// ([`crate::attack::AttackBlocker::prove`]). Out of line: once per connection.
    #[cold]
    #[inline(never)]
    fn handshake_step(&mut self, pkt: &Pkt<'_>, t: &decode::Tcp<'_>, flow: Tracked<'_>) {
        let Tracked { key, upd } = flow;
        if upd.handshake_completed {
            if self.flows.acks_syn_ack(key, t.ack) {
                let src = pkt.ip.src();
                self.attacks
                    .prove(pkt.scope, src, pkt.decoded.eth_src, pkt.meta.ts);
            }
        } else if !upd.to_server && t.flags.has(decode::TcpFlags::SYN | decode::TcpFlags::ACK) {
            self.flows.note_syn_ack(key, t.seq);
        }
    }
}

/// The packet of a tracked flow, as events name it.
pub(super) fn flow_packet(scope: VlanScope, ip: &Ip<'_>, upd: FlowUpdate) -> PacketRef {
    PacketRef {
        flow_id: Some(upd.id),
        scope,
        src_ip: ip.src(),
        dst_ip: ip.dst(),
        ports: ip.l4.ports(),
        proto: Some(ip.proto),
        to_server: Some(upd.to_server),
    }
}

/// What the flow table's timestamp validation reads of a TCP segment: its sequence space and
/// its timestamp option (read only when the header has options).
#[inline]
fn tcp_seq(ip: &Ip<'_>, t: &decode::Tcp<'_>) -> crate::flow::TcpSeq {
    let ts = if t.header_len > 20 {
        let end = ip.header_len.saturating_add(t.header_len);
        ip.packet
            .get(ip.header_len..end)
            .and_then(decode::tcp_timestamps)
    } else {
        None
    };
    let flags = u32::from(t.flags.has(decode::TcpFlags::SYN))
        + u32::from(t.flags.has(decode::TcpFlags::FIN));
    crate::flow::TcpSeq {
        seq: t.seq,
        seq_len: u32::try_from(t.payload.len())
            .unwrap_or(u32::MAX)
            .saturating_add(flags),
        ts,
    }
}

/// Frames ahead of the one in hand whose flow lookups a flooded worker prefetches
/// ([`Worker::lookahead`]): about the misses' latency in packets of a flood.
pub(super) const LOOKAHEAD: usize = 3;

/// The flow key of an IP packet, whether it travels from the key's `a` to its `b`, and its TCP
/// flags (ports 0 for protocols without them).
#[inline(always)]
pub(super) fn flow_key(scope: VlanScope, ip: &Ip<'_>) -> (FlowKey, bool, Option<decode::TcpFlags>) {
    let (ports, tcp_flags) = match &ip.l4 {
        L4::Tcp(t) => ((t.src_port, t.dst_port), Some(t.flags)),
        L4::Udp(u) => ((u.src_port, u.dst_port), None),
        _ => ((0, 0), None),
    };
    let (key, a_to_b) = FlowKey::from_bits(
        scope,
        ip.proto,
        ip.v6,
        (ip.src_bits, ports.0),
        (ip.dst_bits, ports.1),
    );
    (key, a_to_b, tcp_flags)
}
