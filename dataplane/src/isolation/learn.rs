//! Addresses a protected VM uses, learned from its own traffic, so that the isolation events and
//! listings name them when the inventory gives only the VM's MAC.
//!
//! The rule (spoofing): an address is learned for a VM only from a frame that proves it is the
//! VM's to use, in the VLAN scope of the VM's interface:
//! - ARP whose Ethernet source is the VM's MAC and whose sender hardware address is that MAC too:
//!   its sender protocol address (not 0.0.0.0, an ARP probe);
//! - ICMPv6 Neighbor Discovery from the VM's MAC: a neighbour solicitation's source address (not
//!   `::`, duplicate address detection), a neighbour advertisement's target address;
//! - a DHCPv4 ACK (UDP 67 to 68) whose client hardware address is the VM's MAC: its `yiaddr`.
//!
//! Multicast, broadcast and unspecified addresses are never learned. A frame from another MAC
//! teaches nothing, whatever addresses it claims. Matching a frame to an isolated VM stays by
//! MAC for an interface with one: on the VM's link every frame the VM sends or can receive
//! carries its MAC, and an address alone is what a forged frame can claim; learned addresses
//! only name the VM (a DHCP server in the scope is trusted to name it, as the VM trusts it).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{PoisonError, RwLock};

use vlan::VlanScope;

use super::vm::Protected;
use crate::decode::{Decoded, L3, L4};

/// Addresses kept per VM; beyond it the oldest is forgotten (a VM renumbered by DHCP many
/// times keeps its latest ones). Each worker's lookups stay a short scan.
pub const MAX_LEARNED: usize = 16;

/// A VM's learned addresses, in the order they were first seen (shared by every worker).
#[derive(Debug, Default)]
pub struct Learned(RwLock<Vec<(VlanScope, IpAddr)>>);

// Learned addresses are what the VM was seen using, not part of what the VM is: two copies of a
// VM compare and hash by their inventory entry alone.
impl PartialEq for Learned {
    fn eq(&self, _: &Learned) -> bool {
        true
    }
}

impl Eq for Learned {}

impl core::hash::Hash for Learned {
    fn hash<H: core::hash::Hasher>(&self, _: &mut H) {}
}

impl Learned {
    /// Record `addr` in `scope`; true when it was new.
    pub fn learn(&self, scope: VlanScope, addr: IpAddr) -> bool {
        let known = |v: &Vec<(VlanScope, IpAddr)>| v.contains(&(scope, addr));
        if known(&self.0.read().unwrap_or_else(PoisonError::into_inner)) {
            return false;
        }
        let mut v = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if known(&v) {
            return false;
        }
        if v.len() >= MAX_LEARNED {
            v.remove(0);
        }
        v.push((scope, addr));
        true
    }

    /// The addresses learned in `scope`.
    pub fn in_scope(&self, scope: VlanScope) -> Vec<IpAddr> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(s, _)| *s == scope)
            .map(|(_, a)| *a)
            .collect()
    }
}

/// ICMPv6 neighbour solicitation and advertisement (RFC 4861).
const ND_NS: u8 = 135;
const ND_NA: u8 = 136;

/// Learn from one decoded frame (see the module's rule): the VM's inventory index and the
/// address when it was new. Cheap for frames that are neither ARP, ND nor DHCP server traffic.
#[inline]
pub fn learn_from_frame(
    protected: &Protected,
    decoded: &Decoded<'_>,
    scope: VlanScope,
) -> Option<(usize, IpAddr)> {
    let (mac, addr) = match &decoded.l3 {
        L3::Arp(a) if a.sender_mac == decoded.eth_src => (decoded.eth_src, IpAddr::V4(a.sender_ip)),
        L3::Ip(ip) => match &ip.l4 {
            L4::Icmpv6(m) if m.icmp_type == ND_NS => (decoded.eth_src, ip.src()),
            L4::Icmpv6(m) if m.icmp_type == ND_NA => {
                let target: [u8; 16] = m.payload.get(..16)?.try_into().ok()?;
                (decoded.eth_src, IpAddr::V6(Ipv6Addr::from(target)))
            }
            L4::Udp(u) if u.src_port == 67 && u.dst_port == 68 => {
                let (chaddr, yiaddr) = dhcp_ack(u.payload)?;
                (chaddr, IpAddr::V4(yiaddr))
            }
            _ => return None,
        },
        _ => return None,
    };
    if !learnable(addr) {
        return None;
    }
    let i = protected.sender(scope, mac, None)?;
    let vm = protected.vm(i)?;
    vm.learned.learn(scope, addr).then_some((i, addr))
}

/// Whether an address can be a VM's own.
fn learnable(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => !(v.is_unspecified() || v.is_broadcast() || v.is_multicast()),
        IpAddr::V6(v) => !(v.is_unspecified() || v.is_multicast()),
    }
}

/// The DHCP magic cookie (RFC 2131, 3).
const COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Option 53, DHCP message type; 5 is DHCPACK (RFC 2132, 9.6).
const OPT_MESSAGE_TYPE: u8 = 53;
const DHCPACK: u8 = 5;

/// A DHCPv4 ACK's client hardware address and `yiaddr` (the address given), from a UDP
/// payload: a BOOTREPLY over Ethernet (htype 1, hlen 6) with the magic cookie and option 53 =
/// 5. Anything else (another message type, a truncated or malformed message) is `None`; no input
/// panics.
pub fn dhcp_ack(p: &[u8]) -> Option<([u8; 6], Ipv4Addr)> {
    if p.get(..3)? != [2, 1, 6] || p.get(236..240)? != COOKIE {
        return None;
    }
    let yiaddr: [u8; 4] = p.get(16..20)?.try_into().ok()?;
    let chaddr: [u8; 6] = p.get(28..34)?.try_into().ok()?;
    let mut opts = p.get(240..)?;
    let mut kind = None;
    // Each step consumes at least one byte: the loop ends.
    while let Some((&code, rest)) = opts.split_first() {
        match code {
            0 => opts = rest,
            255 => break,
            _ => {
                let (&len, rest) = rest.split_first()?;
                let value = rest.get(..usize::from(len))?;
                if code == OPT_MESSAGE_TYPE {
                    kind = value.first().copied();
                }
                opts = rest.get(usize::from(len)..)?;
            }
        }
    }
    (kind == Some(DHCPACK)).then_some((chaddr, Ipv4Addr::from(yiaddr)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use std::sync::Arc;

    use super::*;
    use crate::isolation::{ProtectedVm, VmNic};

    const VM: [u8; 6] = [2, 0, 0, 0, 0, 0x66];
    const OTHER: [u8; 6] = [2, 0, 0, 0, 0, 0x20];

    /// A DHCP reply of `kind` giving `yiaddr` to `chaddr` (RFC 2131 layout).
    pub(crate) fn dhcp_reply(kind: u8, chaddr: [u8; 6], yiaddr: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0u8; 240];
        p[..4].copy_from_slice(&[2, 1, 6, 0]);
        p[16..20].copy_from_slice(&yiaddr);
        p[28..34].copy_from_slice(&chaddr);
        p[236..240].copy_from_slice(&COOKIE);
        // Pad, message type, lease time, end.
        p.extend_from_slice(&[0, 53, 1, kind, 51, 4, 0, 0, 0x0e, 0x10, 255]);
        p
    }

    #[test]
    fn dhcp_ack_gives_the_client_and_its_address() {
        let ack = dhcp_reply(5, VM, [10, 0, 0, 66]);
        assert_eq!(dhcp_ack(&ack), Some((VM, Ipv4Addr::new(10, 0, 0, 66))));
        // An OFFER, a request (op 1), a truncated option, no cookie: nothing.
        assert_eq!(dhcp_ack(&dhcp_reply(2, VM, [10, 0, 0, 66])), None);
        let mut req = ack.clone();
        req[0] = 1;
        assert_eq!(dhcp_ack(&req), None);
        assert_eq!(dhcp_ack(&ack[..243]), None);
        let mut no_cookie = ack.clone();
        no_cookie[236] = 0;
        assert_eq!(dhcp_ack(&no_cookie), None);
        assert_eq!(dhcp_ack(&[]), None);
    }

    fn protected() -> Protected {
        Protected::new(vec![ProtectedVm::new(
            "vm-66".into(),
            vec![VmNic {
                scope: VlanScope::UNTAGGED,
                mac: Some(VM),
                addrs: vec![],
            }],
        )])
        .unwrap()
    }

    fn learned(p: &Protected) -> Vec<IpAddr> {
        p.vm(0).unwrap().learned.in_scope(VlanScope::UNTAGGED)
    }

    fn arp(eth_src: [u8; 6], sender_mac: [u8; 6], sender_ip: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&eth_src);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&sender_mac);
        f.extend_from_slice(&sender_ip);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&[10, 0, 0, 1]);
        f
    }

    fn learn(p: &Protected, frame: &[u8]) -> Option<(usize, IpAddr)> {
        let d =
            crate::decode::decode_frame(frame, crate::decode::DecodeOptions::default()).unwrap();
        learn_from_frame(p, &d, VlanScope::UNTAGGED)
    }

    #[test]
    fn arp_teaches_only_from_the_vms_own_mac() {
        let p = protected();
        // Another MAC claiming an address, or the VM's MAC with another sender MAC: nothing.
        assert_eq!(learn(&p, &arp(OTHER, OTHER, [10, 0, 0, 9])), None);
        assert_eq!(learn(&p, &arp(VM, OTHER, [10, 0, 0, 9])), None);
        // An ARP probe (0.0.0.0): nothing.
        assert_eq!(learn(&p, &arp(VM, VM, [0, 0, 0, 0])), None);
        let a: IpAddr = "10.0.0.66".parse().unwrap();
        assert_eq!(learn(&p, &arp(VM, VM, [10, 0, 0, 66])), Some((0, a)));
        // Known already: not new.
        assert_eq!(learn(&p, &arp(VM, VM, [10, 0, 0, 66])), None);
        assert_eq!(learned(&p), [a]);
        let vm = p.vm(0).unwrap();
        assert_eq!(vm.addresses(&vm.nics[0]), [a]);
    }

    #[test]
    fn at_most_max_learned_the_oldest_forgotten() {
        let l = Learned::default();
        for i in 0..=MAX_LEARNED {
            let a = IpAddr::V4(Ipv4Addr::new(10, 0, 1, u8::try_from(i).unwrap()));
            assert!(l.learn(VlanScope::UNTAGGED, a));
        }
        let v = l.in_scope(VlanScope::UNTAGGED);
        assert_eq!(v.len(), MAX_LEARNED);
        assert_eq!(v[0], IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)));
        // Equal copies whatever they learned.
        assert_eq!(Arc::new(Learned::default()), Arc::new(l));
    }

    proptest::proptest! {
        #[test]
        fn dhcp_ack_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = dhcp_ack(&data);
        }

        #[test]
        fn dhcp_ack_reads_any_ack_it_is_given(chaddr in proptest::prelude::any::<[u8; 6]>(), yiaddr in proptest::prelude::any::<[u8; 4]>()) {
            proptest::prop_assert_eq!(dhcp_ack(&dhcp_reply(5, chaddr, yiaddr)), Some((chaddr, Ipv4Addr::from(yiaddr))));
        }
    }
}
