//! Frames other than a plain IP packet (ARP, a frame that does not decode, one nested too
//! deep), and the checks every frame passes: the source's exclusion and per-VM protection.

use std::borrow::Cow;
use std::sync::Arc;

use policy::{ExclusionRule, Mode};
use vlan::VlanScope;

use super::{
    Attach, DropReason, Frame, IsolationClient, Output, PacketMeta, TOO_DEEP_IPV6_SID,
    TOO_DEEP_VLAN_SID, Verdict, Worker, scope_of,
};
use crate::attack::Detection;
use crate::decode::{self, DecodeEvent, Decoded, L3};
use crate::event::{Alert, Engine, Event, EventKind, PacketRef, Response, Signature};

impl Worker {
    /// A frame that does not decode past its IP header (a truncated extension header chain, a
    /// transport header too short or malformed): counted by the caller and forwarded, and its
    /// IP packet inspected by the rules without a flow, with the failure as its decoder event,
    /// as Suricata inspects invalid packets (`decode-event` rules). A `drop` rule drops it
    /// inline; nothing is blocked (its source proved nothing).
    #[cold]
    #[inline(never)]
    pub(super) fn invalid_frame(
        &mut self,
        frame: &[u8],
        meta: PacketMeta,
        out: &mut impl Output,
    ) -> Verdict {
        if self.rules.is_none() || !self.policy.policy().activity_scanner.enabled {
            return Verdict::Forward;
        }
        let Ok(decoded) = decode::decode_frame_lenient(frame, self.cfg.decode) else {
            return Verdict::Forward;
        };
        let L3::Ip(ip) = &decoded.l3 else {
            return Verdict::Forward;
        };
        let scope = scope_of(&decoded.vlan);
        let rule = self.exclusion(scope, ip.src());
        if rule == ExclusionRule::DoNotScan
            || (self.vm_protection.is_some() && !self.protect(&decoded, scope, ip.src(), ip.dst()))
        {
            return Verdict::Forward;
        }
        let events = decoded.anomalies.bits();
        let f = Frame {
            decoded: &decoded,
            scope,
            meta,
            rule,
        };
        self.scan_flowless(&f.with(ip), events, out)
    }

    /// A frame nested too deep to inspect (`e`: 9 or more VLAN tags, or more than 8 IPv6
    /// extension headers): dropped inline under `decode.too_deep: drop` (monitoring mode drops
    /// nothing, a mirror cannot), forwarded otherwise; counted, and reported as a decoder alert
    /// at most once per source MAC per [`crate::protection::TOO_DEEP_REPORT_SECS`].
    #[cold]
    #[inline(never)]
    pub(super) fn too_deep_frame(
        &mut self,
        frame: &[u8],
        e: DecodeEvent,
        meta: PacketMeta,
        out: &mut impl Output,
    ) -> Verdict {
        self.counters.too_deep += 1;
        let p = self.policy.policy();
        let monitoring = p.mode == Mode::Monitoring;
        let wants_drop =
            p.decode.too_deep == policy::TooDeep::Drop && self.cfg.attach == Attach::Inline;
        let drop = wants_drop && !monitoring;
        let eth_src: [u8; 6] = frame
            .get(6..12)
            .and_then(|m| m.try_into().ok())
            .unwrap_or_default();
        if self.too_deep.due(eth_src, meta.ts) {
            let (vlan, addrs) = decode::too_deep_view(frame);
            let unspecified = core::net::IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED);
            let (src_ip, dst_ip) = addrs.unwrap_or((unspecified, unspecified));
            let (signature, sid) = match e {
                DecodeEvent::VlanTooDeep => ("Decode.VlanTooDeep", TOO_DEEP_VLAN_SID),
                _ => ("Decode.Ipv6ExtChainTooLong", TOO_DEEP_IPV6_SID),
            };
            let packet = PacketRef {
                flow_id: None,
                scope: scope_of(&vlan),
                src_ip,
                dst_ip,
                ports: None,
                proto: None,
                to_server: None,
            };
            let sig = Signature {
                name: Cow::Borrowed(signature),
                gid: crate::attack::GID,
                sid,
                rev: 1,
                category: Cow::Borrowed("Generic Protocol Command Decode"),
                severity: 3,
            };
            out.event(Event {
                ts: meta.ts,
                pcap_cnt: Some(meta.pcap_cnt),
                kind: EventKind::Alert(Alert {
                    response: if wants_drop {
                        Response::Terminate
                    } else {
                        Response::Inform
                    },
                    enforced: drop,
                    monitoring,
                    ..Alert::new(packet, Engine::Decoder, sig)
                }),
            });
        }
        if drop {
            Verdict::Drop(DropReason::TooDeep)
        } else {
            Verdict::Forward
        }
    }

    /// Per-VM protection of one frame: set the engines its two ends call for; false (and
    /// counted) when none does. Out of line: inlined into the packet path it made the compiler
    /// call `FlowKey::from_bits` instead of inlining it (callgrind: 48.7 instructions a frame
    /// more than main without any per-VM setting).
    #[cold]
    #[inline(never)]
    pub(super) fn protect(
        &mut self,
        decoded: &Decoded<'_>,
        scope: VlanScope,
        src: core::net::IpAddr,
        dst: core::net::IpAddr,
    ) -> bool {
        if let Some(p) = self.vm_protection.as_deref() {
            self.engines = p.resolve(
                self.iso.as_deref().map(IsolationClient::protected),
                scope,
                decoded.eth_src,
                decoded.eth_dst,
                Some(src),
                Some(dst),
            );
        }
        if self.engines.is_none() {
            self.counters.unprotected += 1;
            return false;
        }
        true
    }

    /// The exclusion rule of a source (inlined: with no exclusion in the policy, the address is
    /// never built).
    #[inline]
    pub(super) fn exclusion(&self, scope: VlanScope, src: core::net::IpAddr) -> ExclusionRule {
        if self.policy.has_exclusions() {
            self.policy.exclusion(scope, src)
        } else {
            ExclusionRule::Default
        }
    }

    /// An ARP frame: the attack blocker's ARP detectors (MAC spoofing).
    pub(super) fn process_arp(
        &mut self,
        decoded: &Decoded<'_>,
        arp: &decode::Arp,
        scope: VlanScope,
        meta: PacketMeta,
        out: &mut impl Output,
    ) -> Verdict {
        let sender = core::net::IpAddr::V4(arp.sender_ip);
        let rule = self.exclusion(scope, sender);
        if rule == ExclusionRule::DoNotScan {
            self.counters.excluded += 1;
            return Verdict::Forward;
        }
        if self.vm_protection.is_some()
            && !self.protect(decoded, scope, sender, core::net::IpAddr::V4(arp.target_ip))
        {
            return Verdict::Forward;
        }
        let policy = Arc::clone(&self.policy);
        let ab = &policy.policy().attack_blocker;
        if !ab.enabled || !self.engines.attack_blocker() {
            return Verdict::Forward;
        }
        self.detections.clear();
        let found = &mut self.detections;
        self.attacks
            .inspect_arp(&ab.detectors, meta.ts, scope, arp, &mut |d| found.push(d));
        // ARP detections name the claimed addresses, not the frame's (it has none).
        let packet_of = |d: &Detection| PacketRef {
            flow_id: None,
            scope,
            src_ip: d.src,
            dst_ip: d.dst,
            ports: None,
            proto: None,
            to_server: None,
        };
        let f = Frame {
            decoded,
            scope,
            meta,
            rule,
        };
        self.act_on_detections(&f, packet_of, None, out)
    }
}
