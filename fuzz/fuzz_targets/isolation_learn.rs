//! Addresses learned for a protected VM: any bytes as a DHCP payload (`dhcp_ack`) and as an
//! Ethernet frame decoded and shown to the learner (ARP, Neighbor Discovery, DHCP ACK). Nothing
//! panics; an ACK read is read again the same; a frame teaches at most one address, only to the
//! VM whose MAC it names, and never a multicast or unspecified one.
#![no_main]

use dataplane::decode::{DecodeOptions, decode_frame};
use dataplane::isolation::learn::{dhcp_ack, learn_from_frame};
use dataplane::isolation::{Protected, ProtectedVm, VmNic};
use libfuzzer_sys::fuzz_target;
use vlan::VlanScope;

fuzz_target!(|data: &[u8]| {
    if let Some((chaddr, yiaddr)) = dhcp_ack(data) {
        assert_eq!(dhcp_ack(data), Some((chaddr, yiaddr)));
    }
    // The VM's MAC is the frame's own source MAC when it has one, so ARP and ND get learned.
    let mac: [u8; 6] = data
        .get(6..12)
        .and_then(|m| m.try_into().ok())
        .unwrap_or([2, 0, 0, 0, 0, 1]);
    let Ok(p) = Protected::new(vec![ProtectedVm::new(
        "vm".into(),
        vec![VmNic {
            scope: VlanScope::UNTAGGED,
            mac: Some(mac),
            addrs: vec![],
        }],
    )]) else {
        return;
    };
    if let Ok(d) = decode_frame(data, DecodeOptions::default()) {
        if let Some((vm, addr)) = learn_from_frame(&p, &d, VlanScope::UNTAGGED) {
            assert_eq!(vm, 0);
            assert!(!addr.is_unspecified() && !addr.is_multicast());
            // Learned once.
            assert_eq!(learn_from_frame(&p, &d, VlanScope::UNTAGGED), None);
        }
    }
});
