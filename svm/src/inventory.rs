//! Protected VMs: the VMs on this host whose traffic the SVM inspects, as the management server
//! describes them (VM id, name, NSX external id, MACs and addresses per VLAN). A detection
//! involves a protected VM when its source or destination address, in the packet's VLAN scope,
//! belongs to one.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use vlan::VlanScope;

/// One network interface of a protected VM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VmInterface {
    /// MAC address (`00:50:56:aa:bb:cc`), if known.
    #[serde(default)]
    pub mac: Option<String>,
    /// VLAN scope (`untagged`, `100`, `100.200`).
    pub vlan: String,
    /// Addresses of the interface in that scope.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub addresses: Vec<IpAddr>,
}

/// A protected VM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtectedVm {
    /// Management server's VM id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// NSX external id (the VM's vSphere instance UUID), used for tagging.
    pub nsx_external_id: String,
    /// Interfaces.
    #[serde(default)]
    pub interfaces: Vec<VmInterface>,
}

/// Errors building an inventory.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InventoryError {
    /// A VLAN scope did not parse.
    #[error("vms[{vm}].interfaces[{iface}].vlan: invalid VLAN scope {value:?}")]
    Vlan {
        /// VM index.
        vm: usize,
        /// Interface index.
        iface: usize,
        /// The text.
        value: String,
    },
    /// A MAC did not parse.
    #[error("vms[{vm}].interfaces[{iface}].mac: invalid MAC {value:?}")]
    Mac {
        /// VM index.
        vm: usize,
        /// Interface index.
        iface: usize,
        /// The text.
        value: String,
    },
}

/// The inventory with its lookups.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    vms: Vec<ProtectedVm>,
    by_ip: HashMap<(VlanScope, IpAddr), usize>,
    by_mac: HashMap<[u8; 6], usize>,
}

/// Parse `aa:bb:cc:dd:ee:ff` or `aa-bb-...` (any case).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

impl Inventory {
    /// Build the lookups; every problem is reported.
    pub fn new(vms: Vec<ProtectedVm>) -> Result<Inventory, Vec<InventoryError>> {
        let mut inv = Inventory::default();
        let mut errors = Vec::new();
        for (i, vm) in vms.iter().enumerate() {
            for (j, iface) in vm.interfaces.iter().enumerate() {
                match iface.vlan.parse::<VlanScope>() {
                    Ok(scope) => {
                        for a in &iface.addresses {
                            inv.by_ip.insert((scope, *a), i);
                        }
                    }
                    Err(_) => errors.push(InventoryError::Vlan {
                        vm: i,
                        iface: j,
                        value: iface.vlan.clone(),
                    }),
                }
                if let Some(mac) = &iface.mac {
                    match parse_mac(mac) {
                        Some(m) => {
                            inv.by_mac.insert(m, i);
                        }
                        None => errors.push(InventoryError::Mac {
                            vm: i,
                            iface: j,
                            value: mac.clone(),
                        }),
                    }
                }
            }
        }
        inv.vms = vms;
        if errors.is_empty() {
            Ok(inv)
        } else {
            Err(errors)
        }
    }

    /// The VM owning `addr` in `scope`.
    pub fn by_ip(&self, scope: VlanScope, addr: IpAddr) -> Option<&ProtectedVm> {
        self.by_ip
            .get(&(scope, addr))
            .and_then(|i| self.vms.get(*i))
    }

    /// The VM owning a MAC address.
    pub fn by_mac(&self, mac: [u8; 6]) -> Option<&ProtectedVm> {
        self.by_mac.get(&mac).and_then(|i| self.vms.get(*i))
    }

    /// All VMs.
    pub fn vms(&self) -> &[ProtectedVm] {
        &self.vms
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lookups_are_vlan_scoped() {
        let inv = Inventory::new(vec![ProtectedVm {
            id: "vm-1".into(),
            name: "web".into(),
            nsx_external_id: "5012-ab".into(),
            interfaces: vec![VmInterface {
                mac: Some("00:50:56:AA:bb:01".into()),
                vlan: "100".into(),
                addresses: vec!["10.0.0.5".parse().unwrap()],
            }],
        }])
        .unwrap();
        let v100: VlanScope = "100".parse().unwrap();
        assert_eq!(
            inv.by_ip(v100, "10.0.0.5".parse().unwrap()).unwrap().id,
            "vm-1"
        );
        assert!(
            inv.by_ip(VlanScope::UNTAGGED, "10.0.0.5".parse().unwrap())
                .is_none()
        );
        assert_eq!(
            inv.by_mac(parse_mac("00-50-56-aa-BB-01").unwrap())
                .unwrap()
                .name,
            "web"
        );
        assert!(parse_mac("00:50:56:aa:bb").is_none());
        let bad = Inventory::new(vec![ProtectedVm {
            id: "x".into(),
            name: "x".into(),
            nsx_external_id: "x".into(),
            interfaces: vec![VmInterface {
                mac: Some("zz".into()),
                vlan: "5000".into(),
                addresses: vec![],
            }],
        }])
        .unwrap_err();
        assert_eq!(bad.len(), 2);
    }
}
