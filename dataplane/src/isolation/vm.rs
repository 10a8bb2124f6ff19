//! The protected VMs as the dataplane knows them: an id and, per network interface, the VLAN
//! scope, the MAC and the addresses (the daemon's `inventory`). A frame belongs to a VM when it
//! carries one of the VM's MACs (as source or destination) in that interface's scope; a VM
//! interface without a MAC is recognised by its addresses instead.

use core::net::IpAddr;
use std::sync::Arc;

use hashbrown::HashMap;
use vlan::VlanScope;

use crate::shared_blocks::Hasher;

/// One network interface of a protected VM.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VmNic {
    /// The VLAN scope the interface is in.
    pub scope: VlanScope,
    /// Its MAC, when the inventory names it.
    pub mac: Option<[u8; 6]>,
    /// Its addresses in that scope.
    pub addrs: Vec<IpAddr>,
}

/// A protected VM.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProtectedVm {
    /// The management server's VM id (what isolations are keyed by).
    pub id: Arc<str>,
    /// Its interfaces.
    pub nics: Vec<VmNic>,
    /// The addresses learned from its own ARP, Neighbor Discovery and DHCP acknowledgements
    /// ([`super::learn`]), shared by every worker and every copy of the VM.
    pub learned: Arc<super::learn::Learned>,
}

/// A prefilter over a set of MACs: one bit per value of a MAC's last byte. A frame neither of
/// whose MACs has its bit set is no frame of the set (one or two loads instead of two hash
/// probes); a set bit only means "look it up".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacFilter([u64; 4]);

impl MacFilter {
    /// Add a MAC.
    pub fn insert(&mut self, mac: [u8; 6]) {
        let b = mac[5];
        if let Some(w) = self.0.get_mut(usize::from(b >> 6)) {
            *w |= 1 << (b & 63);
        }
    }

    /// Whether `mac` may be in the set.
    #[inline]
    pub fn may_contain(&self, mac: [u8; 6]) -> bool {
        let b = mac[5];
        self.0
            .get(usize::from(b >> 6))
            .is_some_and(|w| w & (1 << (b & 63)) != 0)
    }

    /// Both sets.
    pub fn union(self, other: MacFilter) -> MacFilter {
        let [a, b, c, d] = self.0;
        let [e, f, g, h] = other.0;
        MacFilter([a | e, b | f, c | g, d | h])
    }
}

/// Most protected VMs one SVM keeps (one hypervisor host's worth, with room to spare); an
/// inventory over it is refused by [`Protected::new`].
pub const MAX_VMS: usize = 65_536;

/// The protected VMs with their lookups (immutable; a new inventory is a new `Protected`).
#[derive(Debug, Default)]
pub struct Protected {
    vms: Vec<Arc<ProtectedVm>>,
    by_id: HashMap<Arc<str>, usize, Hasher>,
    by_mac: HashMap<(VlanScope, [u8; 6]), usize, Hasher>,
    // Addresses of interfaces without a MAC only: a frame of an interface with a MAC is known
    // by it, and an address alone is what a forged frame can claim.
    by_ip: HashMap<(VlanScope, IpAddr), usize, Hasher>,
    macs: MacFilter,
}

/// Why an inventory was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtectedError {
    /// Two VMs with one id.
    #[error("VM id {0:?} appears twice")]
    DuplicateId(String),
    /// Two VMs claim one MAC in one scope.
    #[error("MAC {mac} in VLAN scope {scope} belongs to both {first:?} and {second:?}")]
    DuplicateMac {
        /// The scope.
        scope: VlanScope,
        /// The MAC, as text.
        mac: String,
        /// The first VM.
        first: String,
        /// The second.
        second: String,
    },
    /// More than [`MAX_VMS`].
    #[error("{0} VMs, at most {MAX_VMS} are kept")]
    TooMany(usize),
}

/// `00:50:56:aa:bb:cc`.
pub fn mac_text(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

impl Protected {
    /// Index the VMs; every conflict is reported.
    pub fn new(vms: Vec<ProtectedVm>) -> Result<Protected, Vec<ProtectedError>> {
        if vms.len() > MAX_VMS {
            return Err(vec![ProtectedError::TooMany(vms.len())]);
        }
        let mut p = Protected::default();
        let mut errors = Vec::new();
        for (i, vm) in vms.into_iter().enumerate() {
            let vm = Arc::new(vm);
            if p.by_id.insert(Arc::clone(&vm.id), i).is_some() {
                errors.push(ProtectedError::DuplicateId(vm.id.to_string()));
            }
            for nic in &vm.nics {
                match nic.mac {
                    Some(mac) => {
                        p.macs.insert(mac);
                        if let Some(j) = p.by_mac.insert((nic.scope, mac), i)
                            && j != i
                        {
                            errors.push(ProtectedError::DuplicateMac {
                                scope: nic.scope,
                                mac: mac_text(mac),
                                first: p.vms.get(j).map_or_else(String::new, |v| v.id.to_string()),
                                second: vm.id.to_string(),
                            });
                        }
                    }
                    None => {
                        for a in &nic.addrs {
                            p.by_ip.insert((nic.scope, *a), i);
                        }
                    }
                }
            }
            p.vms.push(vm);
        }
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(errors)
        }
    }

    /// Whether a frame between these MACs may be a protected VM's (false: it is not).
    #[inline]
    pub fn may_involve(&self, eth_src: [u8; 6], eth_dst: [u8; 6]) -> bool {
        !self.by_ip.is_empty() || self.macs.may_contain(eth_src) || self.macs.may_contain(eth_dst)
    }

    /// Whether there are no VMs (the per-frame work is then one branch).
    pub fn is_empty(&self) -> bool {
        self.vms.is_empty()
    }

    /// Number of VMs.
    pub fn len(&self) -> usize {
        self.vms.len()
    }

    /// Every VM, in inventory order.
    pub fn vms(&self) -> &[Arc<ProtectedVm>] {
        &self.vms
    }

    /// The VM with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<ProtectedVm>> {
        self.by_id.get(id).and_then(|i| self.vms.get(*i))
    }

    /// The VM that sent a frame: by its source MAC in `scope`, or, for an interface the
    /// inventory gives no MAC, by its source address.
    #[inline]
    pub fn sender(&self, scope: VlanScope, mac: [u8; 6], ip: Option<IpAddr>) -> Option<usize> {
        if let Some(i) = self.by_mac.get(&(scope, mac)) {
            return Some(*i);
        }
        if self.by_ip.is_empty() {
            return None;
        }
        ip.and_then(|a| self.by_ip.get(&(scope, a)).copied())
    }

    /// The VM at `index`.
    pub fn vm(&self, index: usize) -> Option<&Arc<ProtectedVm>> {
        self.vms.get(index)
    }
}

impl ProtectedVm {
    /// A VM with no address learned yet.
    pub fn new(id: Arc<str>, nics: Vec<VmNic>) -> ProtectedVm {
        ProtectedVm {
            id,
            nics,
            learned: Arc::default(),
        }
    }

    /// The interface's addresses: the inventory's, then those learned in its scope (each once).
    pub fn addresses(&self, nic: &VmNic) -> Vec<IpAddr> {
        let mut out = nic.addrs.clone();
        for a in self.learned.in_scope(nic.scope) {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }

    /// Whether a frame in `scope` from `src` to `dst` (MACs, addresses) is the VM's; `Some(true)`
    /// when the VM sent it, `Some(false)` when it is addressed to it.
    #[inline]
    pub fn side(
        &self,
        scope: VlanScope,
        eth_src: [u8; 6],
        eth_dst: [u8; 6],
        ips: Option<(IpAddr, IpAddr)>,
    ) -> Option<bool> {
        for nic in &self.nics {
            if nic.scope != scope {
                continue;
            }
            match nic.mac {
                Some(mac) if mac == eth_src => return Some(true),
                Some(mac) if mac == eth_dst => return Some(false),
                Some(_) => {}
                None => {
                    if let Some((s, d)) = ips {
                        if nic.addrs.contains(&s) {
                            return Some(true);
                        }
                        if nic.addrs.contains(&d) {
                            return Some(false);
                        }
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn vm(id: &str, scope: VlanScope, mac: Option<[u8; 6]>, addr: &str) -> ProtectedVm {
        ProtectedVm::new(
            id.into(),
            vec![VmNic {
                scope,
                mac,
                addrs: vec![addr.parse().unwrap()],
            }],
        )
    }

    #[test]
    fn frames_are_known_by_mac_in_scope_or_by_address_without_one() {
        let v100 = VlanScope::single(vlan::VlanId::new(100).unwrap());
        let p = Protected::new(vec![
            vm("a", v100, Some([2, 0, 0, 0, 0, 1]), "10.0.0.1"),
            vm("b", VlanScope::UNTAGGED, None, "10.0.0.2"),
        ])
        .unwrap();
        assert_eq!(p.sender(v100, [2, 0, 0, 0, 0, 1], None), Some(0));
        assert_eq!(
            p.sender(VlanScope::UNTAGGED, [2, 0, 0, 0, 0, 1], None),
            None
        );
        // An interface with a MAC is not claimed by its address alone.
        assert_eq!(p.sender(v100, [9; 6], "10.0.0.1".parse().ok()), None);
        assert_eq!(
            p.sender(VlanScope::UNTAGGED, [9; 6], "10.0.0.2".parse().ok()),
            Some(1)
        );
        let a = p.get("a").unwrap();
        assert_eq!(a.side(v100, [2, 0, 0, 0, 0, 1], [3; 6], None), Some(true));
        assert_eq!(a.side(v100, [3; 6], [2, 0, 0, 0, 0, 1], None), Some(false));
        assert_eq!(
            a.side(VlanScope::UNTAGGED, [3; 6], [2, 0, 0, 0, 0, 1], None),
            None
        );
        let dup = Protected::new(vec![
            vm("a", v100, Some([1; 6]), "10.0.0.1"),
            vm("a", v100, Some([1; 6]), "10.0.0.3"),
        ])
        .unwrap_err();
        assert_eq!(dup.len(), 2);
    }
}
