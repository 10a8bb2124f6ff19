//! Acting on what the engines found: the policy's response to the attack blocker's
//! detections (alert, resets, block, isolation), the injected resets and the blocks.

use std::borrow::Cow;
use std::sync::Arc;

use policy::{ExclusionRule, Mode};
use vlan::VlanScope;

use super::{Counters, DropReason, Frame, Output, Toward, Verdict, Worker, iso_hook};
use crate::attack::{Attack, Detection};
use crate::blocks::{BlockKey, BlockResult};
use crate::decode::{self, Decoded, Ip, L4};
use crate::event::{Alert, BlockSkip, Engine, Event, EventKind, PacketRef, Response, Signature};
use crate::reset::{self, Segment};
use crate::shared_blocks::BlockRequest;
use crate::time::Timestamp;

/// Answer a TCP segment of `decoded` with resets to both ends, each as if from the other, and
/// count them: the worker's terminate response and an isolated VM's segment on a mirror.
pub(crate) fn inject_resets(
    decoded: &Decoded<'_>,
    ip: &Ip<'_>,
    tcp: &decode::Tcp<'_>,
    counters: &mut Counters,
    out: &mut impl Output,
) {
    let [to_destination, to_source] = reset::resets(&segment(decoded, ip, tcp));
    for (f, toward) in [
        (to_destination, Toward::Destination),
        (to_source, Toward::Source),
    ] {
        if let Some(f) = f {
            counters.injected += 1;
            out.inject(f, toward);
        }
    }
}

impl Worker {
    /// [`inject_resets`] with this worker's counters.
    pub(super) fn inject_resets(
        &mut self,
        decoded: &Decoded<'_>,
        ip: &Ip<'_>,
        tcp: &decode::Tcp<'_>,
        out: &mut impl Output,
    ) {
        inject_resets(decoded, ip, tcp, &mut self.counters, out);
    }

    /// Apply the policy to every detection the attack blocker left in `self.detections` for this
    /// packet; [`Verdict::Drop`] if any of them drops it. `packet_of` names the packet each
    /// event reports; `reset_of` is the packet to answer with resets (TCP only).
    pub(super) fn act_on_detections(
        &mut self,
        f: &Frame<'_>,
        packet_of: impl Fn(&Detection) -> PacketRef,
        reset_of: Option<&Ip<'_>>,
        out: &mut impl Output,
    ) -> Verdict {
        let detections = std::mem::take(&mut self.detections);
        let mut verdict = Verdict::Forward;
        // The packet's address is bound to another MAC: whatever else it triggers, blocking
        // the address would block its owner.
        let spoofed = detections.iter().any(|d| d.attack == Attack::MacSpoofing);
        for d in &detections {
            if self.act(f, d, &packet_of(d), spoofed, reset_of, out) {
                verdict = Verdict::Drop(DropReason::Attack);
            }
        }
        self.detections = detections;
        verdict
    }

    /// Why a detection the policy says to block may not block its source, if it may not:
    /// the `never_block` list, a spoofed address, or (for a detection one forged packet can
    /// cause) a source that has not proven its address.
    fn block_skip(
        &mut self,
        d: &Detection,
        scope: VlanScope,
        mac: [u8; 6],
        spoofed: bool,
        now: Timestamp,
    ) -> Option<BlockSkip> {
        if self.policy.never_blocks(d.src) {
            Some(BlockSkip::NeverBlock)
        } else if spoofed && d.attack != Attack::MacSpoofing {
            Some(BlockSkip::SpoofedSource)
        } else if d.attack.single_packet()
            && !self.policy.policy().attack_blocker.block_unverified_sources
            && !self.attacks.is_proven(scope, d.src, mac, now)
        {
            Some(BlockSkip::UnverifiedSource)
        } else {
            None
        }
    }

    /// Apply the policy to one detection of a packet of `f`, which names `packet`; true when
    /// the packet must be dropped. `spoofed`: the packet's source address is bound to another
    /// MAC (MAC spoofing on this packet).
    fn act(
        &mut self,
        f: &Frame<'_>,
        d: &Detection,
        packet: &PacketRef,
        spoofed: bool,
        reset_of: Option<&Ip<'_>>,
        out: &mut impl Output,
    ) -> bool {
        let Frame { decoded, meta, .. } = *f;
        // A `do_not_block` exclusion matched the source.
        let excluded_block = f.rule == ExclusionRule::DoNotBlock;
        let policy = Arc::clone(&self.policy);
        let p = policy.policy();
        let ab = &p.attack_blocker;
        let monitoring = p.mode == Mode::Monitoring;
        let configured = Response::from(ab.action);
        let skip = match configured {
            Response::TerminateAndBlock if !excluded_block && d.attack.blocks_source() => {
                self.block_skip(d, packet.scope, decoded.eth_src, spoofed, meta.ts)
            }
            _ => None,
        };
        let response = match configured {
            // do_not_block: the attack is still stopped, its source never blocked.
            Response::TerminateAndBlock if excluded_block => Response::Terminate,
            // A forged source (Land, MAC spoofing) is the victim's own address: terminate only.
            Response::TerminateAndBlock if !d.attack.blocks_source() => Response::Terminate,
            // Never blocked, possibly forged, or unproven: terminate, and the alert says why.
            Response::TerminateAndBlock if skip.is_some() => Response::Terminate,
            r => r,
        };
        let blocks = response == Response::TerminateAndBlock;
        let enforce = !monitoring && response != Response::Inform;
        if d.report {
            if let Some(c) = Attack::ALL
                .iter()
                .position(|a| *a == d.attack)
                .and_then(|i| self.counters.detections.get_mut(i))
            {
                *c += 1;
            }
            out.event(Event {
                ts: meta.ts,
                pcap_cnt: Some(meta.pcap_cnt),
                kind: EventKind::Alert(Alert {
                    response,
                    enforced: enforce,
                    monitoring,
                    excluded: excluded_block,
                    block_minutes: blocks.then(|| ab.block_minutes.get()),
                    block_skipped: skip,
                    ..Alert::new(*packet, Engine::AttackBlocker, attack_signature(d.attack))
                }),
            });
            // Isolation: a detection from a protected VM may isolate it (forged sources never).
            if self.iso.is_some() && d.attack.blocks_source() {
                let trigger = iso_hook::Trigger {
                    engine: Engine::AttackBlocker,
                    signature: Cow::Borrowed(d.attack.name()),
                    sid: d.attack.sid(),
                    classtype: None,
                    category: None,
                    priority: d.attack.severity(),
                    flow_id: packet.flow_id,
                    src: d.src,
                };
                let f = Frame {
                    scope: packet.scope,
                    ..*f
                };
                self.isolate_on(&f, trigger, out);
            }
        }
        if !enforce {
            return false;
        }
        if d.report {
            if let Some(ip) = reset_of
                && let L4::Tcp(t) = &ip.l4
                && !t.flags.has(decode::TcpFlags::RST)
            {
                self.inject_resets(decoded, ip, t, out);
            }
            if blocks {
                let key = BlockKey {
                    scope: packet.scope,
                    addr: d.src,
                };
                // Every worker drops the source from now on; the keeper reports the block.
                self.block(BlockRequest {
                    key,
                    now: meta.ts,
                    duration_secs: ab.block_minutes.as_secs(),
                    reason: Cow::Borrowed(d.attack.name()),
                    engine: Engine::AttackBlocker,
                    sid: Some(d.attack.sid()),
                    flow_id: packet.flow_id,
                    pcap_cnt: Some(meta.pcap_cnt),
                });
            }
        }
        true
    }
}

impl Worker {
    /// Isolation: a detection on a packet of `f` may isolate the protected VM it came from,
    /// as the policy's automatic isolation says.
    #[cold]
    pub(super) fn isolate_on(
        &mut self,
        f: &Frame<'_>,
        trigger: iso_hook::Trigger,
        out: &mut impl Output,
    ) {
        if let Some(iso) = self.iso.as_deref_mut() {
            let mut acts = iso_hook::Acts {
                policy: self.policy.policy(),
                flows: &mut self.flows,
                counters: &mut self.counters,
                out,
            };
            iso_hook::on_detection(iso, trigger, f, &mut acts);
        }
    }

    /// Block a source in the shared table and count the outcome.
    pub(super) fn block(&mut self, req: BlockRequest) {
        match self.blocks.block(req) {
            BlockResult::Added => self.counters.blocks_added += 1,
            BlockResult::AlreadyBlocked => {}
            BlockResult::Full => self.counters.blocks_refused += 1,
        }
    }
}

/// The TCP segment of a decoded frame, as the reset builders take it.
pub(super) fn segment<'a>(
    decoded: &'a Decoded<'_>,
    ip: &Ip<'_>,
    tcp: &'a decode::Tcp<'a>,
) -> Segment<'a> {
    Segment {
        vlan: &decoded.vlan,
        eth_src: decoded.eth_src,
        eth_dst: decoded.eth_dst,
        src: ip.src(),
        dst: ip.dst(),
        tcp,
    }
}

/// What an attack blocker alert says was detected.
fn attack_signature(a: Attack) -> Signature {
    Signature {
        name: a.name().into(),
        gid: crate::attack::GID,
        sid: a.sid(),
        rev: 1,
        category: a.category().into(),
        severity: a.severity(),
    }
}
