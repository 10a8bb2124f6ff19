//! The packet a tunnel carries (GRE, ERSPAN, VXLAN, Geneve, Teredo, NSH, MPLS, PPPoE, IP-in-IP):
//! decapsulated one level and inspected by the activity scanner in a flow of its own.

use vlan::VlanScope;

use super::ip::flow_key;
use super::{DropReason, Frame, Output, Tracked, Verdict, Worker, scope_of};
use crate::decode::{self, DecodeEvent, Ip, L3, tunnel};

impl Worker {
    /// A frame (`frame` its bytes) whose EtherType is an encapsulation (NSH, MPLS, PPPoE
    /// session): the packet it carries, inspected as [`Worker::inspect_decap`] does.
    #[cold]
    #[inline(never)]
    pub(super) fn process_l2_tunnel(
        &mut self,
        frame: &[u8],
        f: &Frame<'_>,
        out: &mut impl Output,
    ) -> Verdict {
        let body = frame.get(f.decoded.l3_offset..).unwrap_or_default();
        let d = tunnel::decap_ethertype(u16::from(f.decoded.ethertype), body);
        if !matches!(d, Ok(Some(_))) {
            self.counters.other_l3 += 1;
        }
        self.inspect_decap(f, d, Verdict::Forward, out)
    }

    /// The packet a tunnel carries (GRE, ERSPAN, VXLAN, Geneve, Teredo, NSH, MPLS, PPPoE), after
    /// the outer packet of `f`: an inner IP packet as [`Worker::inspect_tunnelled`] inspects it;
    /// an inner Ethernet frame decoded first, its flows scoped by its own VLAN tags, else the
    /// VLAN the encapsulation names (ERSPAN's original VLAN), else the outer frame's. One level:
    /// a tunnel inside is not opened. A malformed encapsulation or inner frame is counted under
    /// its decoder event; only the outer packet was inspected (its verdict `outer`).
    #[cold]
    #[inline(never)]
    pub(super) fn inspect_decap(
        &mut self,
        f: &Frame<'_>,
        decap: Result<Option<tunnel::Decap<'_>>, DecodeEvent>,
        outer: Verdict,
        out: &mut impl Output,
    ) -> Verdict {
        let decap = match decap {
            Ok(Some(d)) => d,
            Ok(None) => return outer,
            Err(e) => {
                self.count_decoder(e);
                return outer;
            }
        };
        self.counters.decapsulated += 1;
        let frame = match decap.inner {
            tunnel::Inner::Ip(inner) => {
                return self.inspect_tunnelled(f, inner, outer, out);
            }
            tunnel::Inner::Ethernet(frame) => frame,
        };
        let inner = match decode::decode_frame(frame, self.cfg.decode) {
            Ok(d) => d,
            Err(e) => {
                self.count_decoder(e);
                return outer;
            }
        };
        for a in inner.anomalies.iter() {
            self.count_decoder(a);
        }
        let L3::Ip(ip) = &inner.l3 else {
            return outer;
        };
        let scope = if !inner.vlan.tags().is_empty() {
            scope_of(&inner.vlan)
        } else if let Some(vid) = decap.vlan.and_then(|v| vlan::VlanId::new(v).ok()) {
            VlanScope::single(vid)
        } else {
            f.scope
        };
        let f = Frame {
            decoded: &inner,
            scope,
            meta: f.meta,
            rule: f.rule,
        };
        self.inspect_inner_ip(&f, ip, outer, out)
    }

    /// IP-in-IP (IPv4 protocol 4) and IPv6-in-IP (41): the inner packet is inspected by the
    /// activity scanner as a packet of its own (its own flow), after the outer one, as Suricata
    /// does; dropping either drops the frame. The attack blocker sees the outer packet only: the
    /// frame's MAC is the tunnel endpoint's, not the inner source's, so its MAC binding checks
    /// would misfire. One level only: a tunnel inside the inner packet is not opened (no
    /// recursion on packet data). An inner packet that does not decode is counted under its
    /// decoder event and not inspected; an inner fragment is not reassembled.
    #[cold]
    #[inline(never)]
    pub(super) fn inspect_tunnelled(
        &mut self,
        f: &Frame<'_>,
        inner: &[u8],
        outer: Verdict,
        out: &mut impl Output,
    ) -> Verdict {
        let (ip, anomalies) = match decode::decode_ip(inner, self.cfg.decode) {
            Ok(x) => x,
            Err(e) => {
                self.count_decoder(e);
                return outer;
            }
        };
        for a in anomalies.iter() {
            self.count_decoder(a);
        }
        self.inspect_inner_ip(f, &ip, outer, out)
    }

    /// An inner packet of a tunnel: its own flow, the activity scanner; dropping either the
    /// outer or the inner packet drops the frame.
    fn inspect_inner_ip(
        &mut self,
        f: &Frame<'_>,
        ip: &Ip<'_>,
        outer: Verdict,
        out: &mut impl Output,
    ) -> Verdict {
        if ip.fragment.is_some() || self.rules.is_none() {
            return outer;
        }
        let (key, a_to_b, tcp_flags) = flow_key(f.scope, ip);
        let upd = self
            .flows
            .update(f.meta.ts, &key, a_to_b, tcp_flags, ip.total_len);
        let v = if upd.terminated {
            Verdict::Drop(DropReason::Terminated)
        } else if self.policy.policy().activity_scanner.enabled
            && self.engines.activity_scanner(upd.to_server)
        {
            let mut flow = Tracked { key: &key, upd };
            self.scan_ip(&f.with(ip), &mut flow, 0, out)
        } else {
            Verdict::Forward
        };
        if outer == Verdict::Forward { v } else { outer }
    }
}
