//! Tunnel decapsulation: GRE (with PPP, and ERSPAN types I, II and III), VXLAN, Geneve, Teredo,
//! NSH, MPLS and PPPoE sessions. Each function reads one encapsulation header of a packet the
//! frame decoder already decoded and returns what it carries ([`Inner`]): an IP packet or an
//! Ethernet frame, which the worker decodes and inspects as a packet of its own, one level deep.
//!
//! # Contract
//! Pure functions over byte slices: every field is read through `slice::get`, so no input can
//! make them panic, and nothing allocates (the result borrows from the input). `Ok(None)` means
//! the bytes are not this encapsulation, or one that is switched off ([`TunnelConfig`]): the
//! packet is inspected as it is. `Err` names the [`DecodeEvent`] of a header that announces the
//! encapsulation but is malformed; the caller counts it and inspects the outer packet only.

use super::DecodeEvent;

/// GRE's IP protocol number.
pub const IPPROTO_GRE: u8 = 47;

/// EtherTypes of encapsulations that start at the link layer.
pub mod ethertype {
    /// Network Service Header (RFC 8300).
    pub const NSH: u16 = 0x894f;
    /// MPLS unicast.
    pub const MPLS_UNICAST: u16 = 0x8847;
    /// MPLS multicast.
    pub const MPLS_MULTICAST: u16 = 0x8848;
    /// PPPoE session stage (RFC 2516).
    pub const PPPOE_SESSION: u16 = 0x8864;
    /// Transparent Ethernet bridging (GRE's protocol for an Ethernet frame).
    pub const TEB: u16 = 0x6558;
    /// ERSPAN types I and II (GRE's protocol).
    pub const ERSPAN_II: u16 = 0x88be;
    /// ERSPAN type III (GRE's protocol).
    pub const ERSPAN_III: u16 = 0x22eb;
    /// PPP (GRE's protocol, PPTP's enhanced GRE).
    pub const PPP: u16 = 0x880b;
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
}

/// The encapsulation a packet was found in (EVE and counters name it with [`Self::name`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TunnelKind {
    /// GRE carrying IP, PPP or an Ethernet frame.
    Gre,
    /// ERSPAN type I (GRE 0x88be without a sequence number: no ERSPAN header).
    ErspanI,
    /// ERSPAN type II.
    ErspanII,
    /// ERSPAN type III.
    ErspanIII,
    /// VXLAN.
    Vxlan,
    /// Geneve.
    Geneve,
    /// Teredo (IPv6 over UDP).
    Teredo,
    /// NSH.
    Nsh,
    /// MPLS.
    Mpls,
    /// PPPoE session.
    Pppoe,
}

impl TunnelKind {
    /// Stable lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            TunnelKind::Gre => "gre",
            TunnelKind::ErspanI => "erspan_type1",
            TunnelKind::ErspanII => "erspan_type2",
            TunnelKind::ErspanIII => "erspan_type3",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Teredo => "teredo",
            TunnelKind::Nsh => "nsh",
            TunnelKind::Mpls => "mpls",
            TunnelKind::Pppoe => "pppoe",
        }
    }
}

/// What an encapsulation carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Inner<'a> {
    /// An IPv4 or IPv6 packet.
    Ip(&'a [u8]),
    /// An Ethernet frame (its own MACs and VLAN tags).
    Ethernet(&'a [u8]),
}

/// One decapsulated packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Decap<'a> {
    /// The encapsulation.
    pub kind: TunnelKind,
    /// What it carries.
    pub inner: Inner<'a>,
    /// The original frame's VLAN id when the encapsulation carries it (ERSPAN II and III), not
    /// zero.
    pub vlan: Option<u16>,
}

/// Up to [`Ports::CAP`] UDP ports (a tunnel's `ports` setting).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ports {
    list: [u16; Ports::CAP],
    len: u8,
}

impl Ports {
    /// Ports a setting may list (Suricata's defaults name one each; VXLAN is commonly also on
    /// 8472, Linux's old default).
    pub const CAP: usize = 8;

    /// One port.
    pub const fn one(port: u16) -> Self {
        Ports {
            list: [port; Ports::CAP],
            len: 1,
        }
    }

    /// Whether `port` is listed.
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        self.as_slice().contains(&port)
    }

    /// The ports.
    pub fn as_slice(&self) -> &[u16] {
        self.list.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// `4789`, `[4789, 8472]` or `4789,8472` (Suricata's port list syntax, without ranges).
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let t = t
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(t);
        let mut out = Ports {
            list: [0; Ports::CAP],
            len: 0,
        };
        for p in t.split(',') {
            let port: u16 = p.trim().parse().ok().filter(|&p| p != 0)?;
            let slot = out.list.get_mut(usize::from(out.len))?;
            *slot = port;
            out.len += 1;
        }
        (out.len > 0).then_some(out)
    }
}

/// Which encapsulations are opened, and on which UDP ports (Suricata's `decoder.*` settings and
/// defaults: VXLAN on 4789, Geneve on 6081, Teredo on 3544 on, ERSPAN type I off, as its header
/// is indistinguishable from a misconfigured type II).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TunnelConfig {
    /// Open GRE (IP protocol 47) and what it carries.
    pub gre: bool,
    /// Open ERSPAN type I (GRE 0x88be without sequence number).
    pub erspan_type1: bool,
    /// VXLAN's destination ports; `None`: off.
    pub vxlan: Option<Ports>,
    /// Geneve's destination ports; `None`: off.
    pub geneve: Option<Ports>,
    /// Teredo's ports (source or destination); `None`: off.
    pub teredo: Option<Ports>,
}

impl Default for TunnelConfig {
    fn default() -> Self {
        TunnelConfig {
            gre: true,
            erspan_type1: false,
            vxlan: Some(Ports::one(4789)),
            geneve: Some(Ports::one(6081)),
            teredo: Some(Ports::one(3544)),
        }
    }
}

impl TunnelConfig {
    /// Whether a UDP datagram between these ports may carry a tunnel this configuration opens
    /// (a few compares: called on every UDP packet).
    #[inline]
    pub fn udp_may_tunnel(&self, src_port: u16, dst_port: u16) -> bool {
        self.vxlan.is_some_and(|p| p.contains(dst_port))
            || self.geneve.is_some_and(|p| p.contains(dst_port))
            || self
                .teredo
                .is_some_and(|p| p.contains(dst_port) || p.contains(src_port))
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let a: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_be_bytes(a))
}

fn inner_of(proto: u16, payload: &[u8]) -> Option<Inner<'_>> {
    match proto {
        ethertype::IPV4 | ethertype::IPV6 => Some(Inner::Ip(payload)),
        ethertype::TEB => Some(Inner::Ethernet(payload)),
        _ => None,
    }
}

/// VXLAN header length (RFC 7348).
const VXLAN_LEN: usize = 8;
/// Geneve's fixed header length (RFC 8926).
const GENEVE_LEN: usize = 8;
/// ERSPAN type II header length.
const ERSPAN_II_LEN: usize = 8;
/// ERSPAN type III header length, and its optional platform-specific subheader.
const ERSPAN_III_LEN: usize = 12;
const ERSPAN_III_SUBHEADER_LEN: usize = 8;
/// IPv6 header length (Teredo's payload).
const IPV6_LEN: usize = 40;
/// Cap on MPLS labels walked before the payload: a stack of more is garbage or an attempt to
/// make the decoder loop (real stacks hold two to four).
pub const MAX_MPLS_LABELS: usize = 16;

/// A UDP datagram's payload between these ports, when it is a tunnel `cfg` opens.
pub fn decap_udp<'a>(
    cfg: &TunnelConfig,
    src_port: u16,
    dst_port: u16,
    payload: &'a [u8],
) -> Result<Option<Decap<'a>>, DecodeEvent> {
    if cfg.vxlan.is_some_and(|p| p.contains(dst_port)) {
        return vxlan(payload).map(Some);
    }
    if cfg.geneve.is_some_and(|p| p.contains(dst_port)) {
        return geneve(payload).map(Some);
    }
    if cfg
        .teredo
        .is_some_and(|p| p.contains(dst_port) || p.contains(src_port))
    {
        return Ok(teredo(payload));
    }
    Ok(None)
}

/// VXLAN (RFC 7348): the I flag set, an Ethernet frame behind.
fn vxlan(b: &[u8]) -> Result<Decap<'_>, DecodeEvent> {
    let flags = *b.first().ok_or(DecodeEvent::VxlanMalformed)?;
    // The I flag says the VNI is valid; a frame without it is not VXLAN's.
    if flags & 0x08 == 0 {
        return Err(DecodeEvent::VxlanMalformed);
    }
    let frame = b.get(VXLAN_LEN..).ok_or(DecodeEvent::VxlanMalformed)?;
    Ok(Decap {
        kind: TunnelKind::Vxlan,
        inner: Inner::Ethernet(frame),
        vlan: None,
    })
}

/// Geneve (RFC 8926): version 0, options skipped, Ethernet (0x6558), IPv4 or IPv6 behind.
fn geneve(b: &[u8]) -> Result<Decap<'_>, DecodeEvent> {
    let first = *b.first().ok_or(DecodeEvent::GeneveMalformed)?;
    if first >> 6 != 0 {
        return Err(DecodeEvent::GeneveMalformed);
    }
    let opts = usize::from(first & 0x3f) * 4;
    let proto = u16_at(b, 2).ok_or(DecodeEvent::GeneveMalformed)?;
    let payload = b
        .get(GENEVE_LEN + opts..)
        .ok_or(DecodeEvent::GeneveMalformed)?;
    let inner = inner_of(proto, payload).ok_or(DecodeEvent::GeneveMalformed)?;
    Ok(Decap {
        kind: TunnelKind::Geneve,
        inner,
        vlan: None,
    })
}

/// Teredo (RFC 4380): optional authentication and origin indication headers, then an IPv6
/// packet whose payload length accounts for exactly the rest, as Suricata's decoder checks
/// (anything else on the port is not Teredo, and is inspected as the UDP it is).
fn teredo(b: &[u8]) -> Option<Decap<'_>> {
    let mut start = 0usize;
    // Authentication indicator: 00 01, client id and auth value lengths, nonce (8), confirmation.
    if b.get(..2) == Some(&[0x00, 0x01]) {
        let id_len = usize::from(*b.get(2)?);
        let auth_len = usize::from(*b.get(3)?);
        start = 4 + id_len + auth_len + 8 + 1;
    }
    // Origin indication: 00 00, port and address (8 bytes).
    if b.get(start..start + 2) == Some(&[0x00, 0x00]) {
        start += 8;
    }
    let ip6 = b.get(start..)?;
    let header = ip6.get(..IPV6_LEN)?;
    if header.first()? >> 4 != 6 {
        return None;
    }
    let plen = usize::from(u16_at(header, 4)?);
    (ip6.len() == IPV6_LEN + plen).then_some(Decap {
        kind: TunnelKind::Teredo,
        inner: Inner::Ip(ip6),
        vlan: None,
    })
}

/// A GRE packet (IP protocol 47): version 0 (RFC 2784/2890) carrying IP, an Ethernet frame,
/// ERSPAN or MPLS, or version 1 (PPTP, RFC 2637) carrying PPP.
pub fn decap_gre<'a>(cfg: &TunnelConfig, b: &'a [u8]) -> Result<Option<Decap<'a>>, DecodeEvent> {
    if !cfg.gre {
        return Ok(None);
    }
    const CSUM: u16 = 0x8000;
    const ROUTING: u16 = 0x4000;
    const KEY: u16 = 0x2000;
    const SEQ: u16 = 0x1000;
    const STRICT_ROUTE: u16 = 0x0800;
    const RECUR: u16 = 0x0700;
    const ACK: u16 = 0x0080;
    let flags = u16_at(b, 0).ok_or(DecodeEvent::GreTooSmall)?;
    let proto = u16_at(b, 2).ok_or(DecodeEvent::GreTooSmall)?;
    let mut len = 4usize;
    match flags & 0x7 {
        0 => {
            // Source routing (deprecated by RFC 2784) and recursion are refused, as Suricata does.
            if flags & (ROUTING | STRICT_ROUTE | RECUR) != 0 || flags & 0x00f8 != 0 {
                return Err(DecodeEvent::GreMalformed);
            }
            if flags & CSUM != 0 {
                len += 4;
            }
        }
        1 => {
            // Enhanced GRE: key (payload length and call id) required, no checksum or routing.
            if flags & (CSUM | ROUTING | STRICT_ROUTE | RECUR) != 0
                || flags & KEY == 0
                || proto != ethertype::PPP
            {
                return Err(DecodeEvent::GreMalformed);
            }
            if flags & ACK != 0 {
                len += 4;
            }
        }
        _ => return Err(DecodeEvent::GreMalformed),
    }
    if flags & KEY != 0 {
        len += 4;
    }
    let has_seq = flags & SEQ != 0;
    if has_seq {
        len += 4;
    }
    let payload = b.get(len..).ok_or(DecodeEvent::GreMalformed)?;
    let gre = |inner| {
        Ok(Some(Decap {
            kind: TunnelKind::Gre,
            inner,
            vlan: None,
        }))
    };
    match proto {
        ethertype::ERSPAN_II if has_seq => erspan_ii(payload).map(Some),
        ethertype::ERSPAN_II if cfg.erspan_type1 => Ok(Some(Decap {
            kind: TunnelKind::ErspanI,
            inner: Inner::Ethernet(payload),
            vlan: None,
        })),
        ethertype::ERSPAN_III => erspan_iii(payload).map(Some),
        // PPP's control protocols (LCP, IPCP, ...) carry no packet to inspect.
        ethertype::PPP => match ppp(payload) {
            Some(inner) => gre(inner),
            None => Ok(None),
        },
        ethertype::MPLS_UNICAST | ethertype::MPLS_MULTICAST => mpls(payload).map(|d| {
            Some(Decap {
                kind: TunnelKind::Gre,
                ..d
            })
        }),
        p => match inner_of(p, payload) {
            Some(inner) => gre(inner),
            None => Ok(None),
        },
    }
}

fn erspan_vlan(vlan: u16) -> Option<u16> {
    (vlan != 0).then_some(vlan)
}

/// ERSPAN type II: version 1, the original VLAN, an Ethernet frame behind.
fn erspan_ii(b: &[u8]) -> Result<Decap<'_>, DecodeEvent> {
    let word = u16_at(b, 0).ok_or(DecodeEvent::ErspanMalformed)?;
    if word >> 12 != 1 {
        return Err(DecodeEvent::ErspanMalformed);
    }
    let frame = b.get(ERSPAN_II_LEN..).ok_or(DecodeEvent::ErspanMalformed)?;
    Ok(Decap {
        kind: TunnelKind::ErspanII,
        inner: Inner::Ethernet(frame),
        vlan: erspan_vlan(word & 0x0fff),
    })
}

/// ERSPAN type III: version 2, the original VLAN, an optional platform subheader (O flag), an
/// Ethernet frame behind (frame type 0; other frame types are not opened).
fn erspan_iii(b: &[u8]) -> Result<Decap<'_>, DecodeEvent> {
    let word = u16_at(b, 0).ok_or(DecodeEvent::ErspanMalformed)?;
    if word >> 12 != 2 {
        return Err(DecodeEvent::ErspanMalformed);
    }
    let tail = u16_at(b, 10).ok_or(DecodeEvent::ErspanMalformed)?;
    // Bits of the last 16-bit word: P(15) FT(14..10) HW ID(9..4) D(3) Gra(2..1) O(0).
    if (tail >> 10) & 0x1f != 0 {
        return Err(DecodeEvent::ErspanMalformed);
    }
    let len = ERSPAN_III_LEN
        + if tail & 1 != 0 {
            ERSPAN_III_SUBHEADER_LEN
        } else {
            0
        };
    let frame = b.get(len..).ok_or(DecodeEvent::ErspanMalformed)?;
    Ok(Decap {
        kind: TunnelKind::ErspanIII,
        inner: Inner::Ethernet(frame),
        vlan: erspan_vlan(word & 0x0fff),
    })
}

/// A PPP frame (RFC 1661): optional address/control bytes `ff 03`, then the protocol in two
/// bytes or, compressed, one (a first byte with its low bit set is the whole field).
fn ppp(b: &[u8]) -> Option<Inner<'_>> {
    let b = if b.get(..2) == Some(&[0xff, 0x03]) {
        b.get(2..)?
    } else {
        b
    };
    match b {
        [0x00, 0x21, rest @ ..] | [0x21, rest @ ..] => Some(Inner::Ip(rest)),
        [0x00, 0x57, rest @ ..] | [0x57, rest @ ..] => Some(Inner::Ip(rest)),
        _ => None,
    }
}

/// An MPLS label stack (RFC 3032), walked to its bottom (at most [`MAX_MPLS_LABELS`]); the
/// payload is IPv4 or IPv6 (reserved labels 0 and 2, or the first nibble), else an Ethernet
/// frame (a pseudowire without control word), as Suricata guesses.
fn mpls(b: &[u8]) -> Result<Decap<'_>, DecodeEvent> {
    let mut rest = b;
    for _ in 0..MAX_MPLS_LABELS {
        let entry: [u8; 4] = rest
            .get(..4)
            .and_then(|e| e.try_into().ok())
            .ok_or(DecodeEvent::MplsMalformed)?;
        rest = rest.get(4..).ok_or(DecodeEvent::MplsMalformed)?;
        if entry[2] & 0x01 == 0 {
            continue;
        }
        let label = u32::from_be_bytes(entry) >> 12;
        let inner = match (label, rest.first().map(|v| v >> 4)) {
            (0 | 2, _) | (_, Some(4 | 6)) => Inner::Ip(rest),
            _ => Inner::Ethernet(rest),
        };
        return Ok(Decap {
            kind: TunnelKind::Mpls,
            inner,
            vlan: None,
        });
    }
    Err(DecodeEvent::MplsMalformed)
}

/// The network-layer body of a frame whose EtherType is an encapsulation (NSH, MPLS, PPPoE
/// session): what it carries. `Ok(None)` for any other EtherType.
pub fn decap_ethertype(ethertype: u16, body: &[u8]) -> Result<Option<Decap<'_>>, DecodeEvent> {
    match ethertype {
        ethertype::NSH => nsh(body).map(Some),
        ethertype::MPLS_UNICAST | ethertype::MPLS_MULTICAST => mpls(body).map(Some),
        ethertype::PPPOE_SESSION => pppoe(body),
        _ => Ok(None),
    }
}

/// NSH (RFC 8300): version 0, its length in 4-byte words (at least the 8-byte base and service
/// path headers), next protocol IPv4 (1), IPv6 (2) or Ethernet (3); NSH in NSH and MPLS are not
/// opened.
fn nsh(b: &[u8]) -> Result<Decap<'_>, DecodeEvent> {
    let word = u16_at(b, 0).ok_or(DecodeEvent::NshMalformed)?;
    if word >> 14 != 0 {
        return Err(DecodeEvent::NshMalformed);
    }
    let len = usize::from(word & 0x3f) * 4;
    let next = *b.get(3).ok_or(DecodeEvent::NshMalformed)?;
    let md_type = b.get(2).map_or(0, |t| t & 0x0f);
    // MD type 1 has a fixed 24-byte header; type 2 at least the 8 bytes of the base and service
    // path headers.
    let ok_len = match md_type {
        1 => len == 24,
        2 => len >= 8,
        _ => false,
    };
    if !ok_len {
        return Err(DecodeEvent::NshMalformed);
    }
    let payload = b.get(len..).ok_or(DecodeEvent::NshMalformed)?;
    let inner = match next {
        1 | 2 => Inner::Ip(payload),
        3 => Inner::Ethernet(payload),
        _ => return Err(DecodeEvent::NshMalformed),
    };
    Ok(Decap {
        kind: TunnelKind::Nsh,
        inner,
        vlan: None,
    })
}

/// A PPPoE session packet (RFC 2516): version and type 1, code 0, the payload length within
/// the frame, PPP (protocol field uncompressed) carrying IPv4 or IPv6 (`None` for PPP's control
/// protocols).
fn pppoe(b: &[u8]) -> Result<Option<Decap<'_>>, DecodeEvent> {
    const HEADER: usize = 6;
    let vt = *b.first().ok_or(DecodeEvent::PppoeMalformed)?;
    let code = *b.get(1).ok_or(DecodeEvent::PppoeMalformed)?;
    let len = usize::from(u16_at(b, 4).ok_or(DecodeEvent::PppoeMalformed)?);
    if vt != 0x11 || code != 0 {
        return Err(DecodeEvent::PppoeMalformed);
    }
    let body = b
        .get(HEADER..HEADER + len)
        .ok_or(DecodeEvent::PppoeMalformed)?;
    Ok(match body {
        [0x00, 0x21, rest @ ..] | [0x00, 0x57, rest @ ..] => Some(Decap {
            kind: TunnelKind::Pppoe,
            inner: Inner::Ip(rest),
            vlan: None,
        }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ETH: &[u8] = &[0xaa; 14];
    const IP4: &[u8] = &[0x45, 0, 0, 20];

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// A GRE header: flags/version, protocol, then the optional words.
    fn gre(flags: u16, proto: u16, words: usize, payload: &[u8]) -> Vec<u8> {
        let mut b = flags.to_be_bytes().to_vec();
        b.extend_from_slice(&proto.to_be_bytes());
        b.extend(std::iter::repeat_n(0u8, words * 4));
        b.extend_from_slice(payload);
        b
    }

    fn all_on() -> TunnelConfig {
        TunnelConfig {
            erspan_type1: true,
            ..TunnelConfig::default()
        }
    }

    #[test]
    fn vxlan_carries_an_ethernet_frame() {
        let pkt = cat(&[&[0x08, 0, 0, 0, 0, 0, 100, 0], ETH]);
        let d = decap_udp(&TunnelConfig::default(), 40000, 4789, &pkt).unwrap();
        assert_eq!(
            d,
            Some(Decap {
                kind: TunnelKind::Vxlan,
                inner: Inner::Ethernet(ETH),
                vlan: None
            })
        );
        // Without the I flag, or cut inside the header: malformed.
        let mut bad = pkt.clone();
        bad[0] = 0;
        assert_eq!(
            decap_udp(&TunnelConfig::default(), 1, 4789, &bad),
            Err(DecodeEvent::VxlanMalformed)
        );
        assert_eq!(
            decap_udp(&TunnelConfig::default(), 1, 4789, &[0x08, 0, 0]),
            Err(DecodeEvent::VxlanMalformed)
        );
        // Another port, or VXLAN switched off: not a tunnel.
        assert_eq!(
            decap_udp(&TunnelConfig::default(), 4789, 53, &pkt),
            Ok(None)
        );
        let off = TunnelConfig {
            vxlan: None,
            ..TunnelConfig::default()
        };
        assert_eq!(decap_udp(&off, 1, 4789, &pkt), Ok(None));
        assert!(!off.udp_may_tunnel(1, 4789));
        assert!(TunnelConfig::default().udp_may_tunnel(1, 4789));
    }

    #[test]
    fn geneve_skips_its_options() {
        // Two option words, Ethernet.
        let pkt = cat(&[&[0x02, 0, 0x65, 0x58, 0, 0, 1, 0], &[0; 8], ETH]);
        let d = decap_udp(&TunnelConfig::default(), 1, 6081, &pkt)
            .unwrap()
            .unwrap();
        assert_eq!(
            (d.kind, d.inner),
            (TunnelKind::Geneve, Inner::Ethernet(ETH))
        );
        let ip = cat(&[&[0x00, 0, 0x08, 0x00, 0, 0, 1, 0], IP4]);
        let d = decap_udp(&TunnelConfig::default(), 1, 6081, &ip)
            .unwrap()
            .unwrap();
        assert_eq!(d.inner, Inner::Ip(IP4));
        // Version 1, an unknown protocol, options beyond the packet.
        for bad in [
            cat(&[&[0x40, 0, 0x65, 0x58, 0, 0, 1, 0], ETH]),
            cat(&[&[0x00, 0, 0x12, 0x34, 0, 0, 1, 0], ETH]),
            vec![0x3f, 0, 0x65, 0x58, 0, 0, 1, 0],
        ] {
            assert_eq!(
                decap_udp(&TunnelConfig::default(), 1, 6081, &bad),
                Err(DecodeEvent::GeneveMalformed)
            );
        }
    }

    fn ipv6_packet(plen: u16) -> Vec<u8> {
        let mut b = vec![0x60, 0, 0, 0];
        b.extend_from_slice(&plen.to_be_bytes());
        b.extend_from_slice(&[59, 64]);
        b.extend_from_slice(&[0; 32]);
        b.extend(std::iter::repeat_n(0u8, usize::from(plen)));
        b
    }

    #[test]
    fn teredo_needs_a_whole_ipv6_packet() {
        let ip6 = ipv6_packet(4);
        let d = decap_udp(&TunnelConfig::default(), 3544, 1920, &ip6)
            .unwrap()
            .unwrap();
        assert_eq!((d.kind, d.inner), (TunnelKind::Teredo, Inner::Ip(&ip6[..])));
        // Origin indication in front.
        let with_origin = cat(&[&[0, 0, 1, 2, 3, 4, 5, 6], &ip6]);
        let d = decap_udp(&TunnelConfig::default(), 1, 3544, &with_origin)
            .unwrap()
            .unwrap();
        assert_eq!(d.inner, Inner::Ip(&ip6[..]));
        // Authentication (id 1 byte, auth 2 bytes), then origin indication.
        let with_auth = cat(&[
            &[0, 1, 1, 2, 9, 9, 9],
            &[0; 9],
            &[0, 0, 1, 2, 3, 4, 5, 6],
            &ip6,
        ]);
        let d = decap_udp(&TunnelConfig::default(), 1, 3544, &with_auth)
            .unwrap()
            .unwrap();
        assert_eq!(d.inner, Inner::Ip(&ip6[..]));
        // A length that does not match, or not IPv6: ordinary UDP.
        let mut longer = ip6.clone();
        longer.push(0);
        assert_eq!(
            decap_udp(&TunnelConfig::default(), 1, 3544, &longer),
            Ok(None)
        );
        let mut v4 = ip6.clone();
        v4[0] = 0x45;
        assert_eq!(decap_udp(&TunnelConfig::default(), 1, 3544, &v4), Ok(None));
    }

    #[test]
    fn gre_carries_ip_and_ethernet() {
        let cfg = TunnelConfig::default();
        let g = gre(0, 0x0800, 0, IP4);
        let d = decap_gre(&cfg, &g).unwrap().unwrap();
        assert_eq!((d.kind, d.inner), (TunnelKind::Gre, Inner::Ip(IP4)));
        // Checksum, key and sequence words.
        let g = gre(0xb000, 0x6558, 3, ETH);
        let d = decap_gre(&cfg, &g).unwrap().unwrap();
        assert_eq!(d.inner, Inner::Ethernet(ETH));
        // An unknown protocol is not opened; GRE off opens nothing.
        assert_eq!(decap_gre(&cfg, &gre(0, 0x1234, 0, IP4)), Ok(None));
        let off = TunnelConfig { gre: false, ..cfg };
        assert_eq!(decap_gre(&off, &gre(0, 0x0800, 0, IP4)), Ok(None));
        // Routing, recursion, version 2, a truncated header, optional words beyond the packet.
        for bad in [
            gre(0x4000, 0x0800, 1, IP4),
            gre(0x0100, 0x0800, 0, IP4),
            gre(0x0002, 0x0800, 0, IP4),
            gre(0xb000, 0x0800, 0, &[]),
        ] {
            assert_eq!(
                decap_gre(&cfg, &bad),
                Err(DecodeEvent::GreMalformed),
                "{bad:02x?}"
            );
        }
        // Shorter than the 4-byte base header: Suricata's `gre.pkt_too_small`.
        for short in [&[][..], &[0, 0], &[0, 0, 8]] {
            assert_eq!(decap_gre(&cfg, short), Err(DecodeEvent::GreTooSmall));
        }
    }

    #[test]
    fn gre_version_1_carries_ppp() {
        let cfg = TunnelConfig::default();
        // Key and sequence, PPP with address/control, IPv4.
        let ppp = cat(&[&[0xff, 0x03, 0x00, 0x21], IP4]);
        let g = gre(0x3001, 0x880b, 2, &ppp);
        let d = decap_gre(&cfg, &g).unwrap().unwrap();
        assert_eq!(d.inner, Inner::Ip(IP4));
        // Compressed protocol field, acknowledgement word.
        let ppp = cat(&[&[0x21], IP4]);
        let g = gre(0x2081, 0x880b, 2, &ppp);
        let d = decap_gre(&cfg, &g).unwrap().unwrap();
        assert_eq!(d.inner, Inner::Ip(IP4));
        // LCP carries no packet; version 1 without key or not PPP is malformed.
        assert_eq!(
            decap_gre(&cfg, &gre(0x2001, 0x880b, 1, &[0xc0, 0x21])),
            Ok(None)
        );
        assert_eq!(
            decap_gre(&cfg, &gre(0x0001, 0x880b, 0, &ppp)),
            Err(DecodeEvent::GreMalformed)
        );
        assert_eq!(
            decap_gre(&cfg, &gre(0x2001, 0x0800, 1, IP4)),
            Err(DecodeEvent::GreMalformed)
        );
    }

    #[test]
    fn erspan_types() {
        let cfg = TunnelConfig::default();
        // Type II: sequence word, version 1, VLAN 23.
        let ii = cat(&[&[0x10, 0x17, 0x08, 0x64, 0, 0, 0, 0], ETH]);
        let g = gre(0x1000, 0x88be, 1, &ii);
        let d = decap_gre(&cfg, &g).unwrap().unwrap();
        assert_eq!(
            d,
            Decap {
                kind: TunnelKind::ErspanII,
                inner: Inner::Ethernet(ETH),
                vlan: Some(23)
            }
        );
        let mut v2 = ii.clone();
        v2[0] = 0x20;
        assert_eq!(
            decap_gre(&cfg, &gre(0x1000, 0x88be, 1, &v2)),
            Err(DecodeEvent::ErspanMalformed)
        );
        // Type I (no sequence): only when switched on.
        assert_eq!(decap_gre(&cfg, &gre(0, 0x88be, 0, ETH)), Ok(None));
        let g = gre(0, 0x88be, 0, ETH);
        let d = decap_gre(&all_on(), &g).unwrap().unwrap();
        assert_eq!(
            (d.kind, d.inner),
            (TunnelKind::ErspanI, Inner::Ethernet(ETH))
        );
        // Type III: version 2, VLAN 0 (none), with and without the platform subheader.
        let iii = cat(&[&[0x20, 0, 0, 1], &[0; 6], &[0, 0], ETH]);
        let g = gre(0x1000, 0x22eb, 1, &iii);
        let d = decap_gre(&cfg, &g).unwrap().unwrap();
        assert_eq!(
            (d.kind, d.inner, d.vlan),
            (TunnelKind::ErspanIII, Inner::Ethernet(ETH), None)
        );
        let iii_o = cat(&[&[0x20, 5, 0, 1], &[0; 6], &[0, 1], &[0; 8], ETH]);
        let g = gre(0x1000, 0x22eb, 1, &iii_o);
        let d = decap_gre(&cfg, &g).unwrap().unwrap();
        assert_eq!((d.inner, d.vlan), (Inner::Ethernet(ETH), Some(5)));
        // A frame type other than Ethernet, and a subheader beyond the packet.
        for bad in [
            cat(&[&[0x20, 0, 0, 1], &[0; 6], &[0x04, 0], ETH]),
            cat(&[&[0x20, 0, 0, 1], &[0; 6], &[0, 1], &[0; 4]]),
        ] {
            assert_eq!(
                decap_gre(&cfg, &gre(0x1000, 0x22eb, 1, &bad)),
                Err(DecodeEvent::ErspanMalformed)
            );
        }
    }

    #[test]
    fn nsh_mpls_and_pppoe_at_the_link_layer() {
        // NSH MD type 1 (24 bytes), IPv4.
        let nsh = cat(&[&[0x00, 0x06, 0x01, 0x01], &[0; 20], IP4]);
        let d = decap_ethertype(ethertype::NSH, &nsh).unwrap().unwrap();
        assert_eq!((d.kind, d.inner), (TunnelKind::Nsh, Inner::Ip(IP4)));
        let mut bad_len = nsh.clone();
        bad_len[1] = 0x05;
        let mut nsh_in_nsh = nsh.clone();
        nsh_in_nsh[3] = 4;
        for bad in [bad_len, nsh_in_nsh, vec![0x00, 0x06]] {
            assert_eq!(
                decap_ethertype(ethertype::NSH, &bad),
                Err(DecodeEvent::NshMalformed)
            );
        }
        // Two MPLS labels, IPv4 behind the bottom one; an Ethernet pseudowire.
        let mpls = cat(&[&[0, 0x01, 0x00, 64], &[0, 0x02, 0x01, 64], IP4]);
        let d = decap_ethertype(ethertype::MPLS_UNICAST, &mpls)
            .unwrap()
            .unwrap();
        assert_eq!(d.inner, Inner::Ip(IP4));
        let pw = cat(&[&[0, 0x10, 0x01, 64], ETH]);
        let d = decap_ethertype(ethertype::MPLS_UNICAST, &pw)
            .unwrap()
            .unwrap();
        assert_eq!(d.inner, Inner::Ethernet(ETH));
        // No bottom of stack within the cap, or cut short.
        let deep: Vec<u8> = [0u8, 0x10, 0x00, 64].repeat(MAX_MPLS_LABELS + 1);
        assert_eq!(
            decap_ethertype(ethertype::MPLS_UNICAST, &deep),
            Err(DecodeEvent::MplsMalformed)
        );
        assert_eq!(
            decap_ethertype(ethertype::MPLS_UNICAST, &[0, 0x10]),
            Err(DecodeEvent::MplsMalformed)
        );
        // PPPoE session with IPv4; LCP is no packet; a length beyond the frame is malformed.
        let pppoe = cat(&[&[0x11, 0, 0, 1, 0, 6, 0x00, 0x21], IP4]);
        let d = decap_ethertype(ethertype::PPPOE_SESSION, &pppoe)
            .unwrap()
            .unwrap();
        assert_eq!((d.kind, d.inner), (TunnelKind::Pppoe, Inner::Ip(IP4)));
        let lcp = [0x11, 0, 0, 1, 0, 2, 0xc0, 0x21];
        assert_eq!(decap_ethertype(ethertype::PPPOE_SESSION, &lcp), Ok(None));
        let long = [0x11, 0, 0, 1, 0, 9, 0x00, 0x21];
        assert_eq!(
            decap_ethertype(ethertype::PPPOE_SESSION, &long),
            Err(DecodeEvent::PppoeMalformed)
        );
        assert_eq!(decap_ethertype(0x0800, IP4), Ok(None));
    }

    #[test]
    fn ports_parse() {
        assert_eq!(
            Ports::parse("4789").map(|p| p.as_slice().to_vec()),
            Some(vec![4789])
        );
        assert_eq!(
            Ports::parse("[4789, 8472]").map(|p| p.as_slice().to_vec()),
            Some(vec![4789, 8472])
        );
        for bad in ["", "0", "x", "[1,2,3,4,5,6,7,8,9]", "70000", "1-2"] {
            assert_eq!(Ports::parse(bad), None, "{bad}");
        }
    }

    proptest! {
        // Whatever the bytes, no decapsulation panics, and what it returns lies inside them.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..120),
            sport in any::<u16>(),
            dport in prop_oneof![Just(4789u16), Just(6081), Just(3544), any::<u16>()],
            et in prop_oneof![Just(0x894fu16), Just(0x8847), Just(0x8864), any::<u16>()],
        ) {
            let within = |d: Decap<'_>| {
                let inner = match d.inner { Inner::Ip(b) | Inner::Ethernet(b) => b };
                inner.len() <= bytes.len()
            };
            let cfg = all_on();
            for r in [
                decap_udp(&cfg, sport, dport, &bytes),
                decap_gre(&cfg, &bytes),
                decap_ethertype(et, &bytes),
            ] {
                if let Ok(Some(d)) = r {
                    prop_assert!(within(d));
                }
            }
        }

        // A VXLAN or GRE header built around any payload gives the payload back.
        #[test]
        fn emitted_headers_give_their_payload_back(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            vni in 0u32..(1 << 24),
            key in any::<bool>(),
            seq in any::<bool>(),
            csum in any::<bool>(),
        ) {
            let mut vx = vec![0x08, 0, 0, 0];
            vx.extend_from_slice(&(vni << 8).to_be_bytes());
            vx.extend_from_slice(&payload);
            let d = decap_udp(&TunnelConfig::default(), 1, 4789, &vx).unwrap().unwrap();
            prop_assert_eq!(d.inner, Inner::Ethernet(&payload[..]));
            let flags = u16::from(csum) << 15 | u16::from(key) << 13 | u16::from(seq) << 12;
            let words = usize::from(csum) + usize::from(key) + usize::from(seq);
            let g = gre(flags, 0x6558, words, &payload);
            let d = decap_gre(&TunnelConfig::default(), &g).unwrap().unwrap();
            prop_assert_eq!(d.inner, Inner::Ethernet(&payload[..]));
        }
    }
}
