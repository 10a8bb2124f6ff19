//! The fixed addressing plan every scenario and test uses. Changing a value here changes every
//! capture: tests across the workspace depend on these numbers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vlan::VlanId;

use crate::{Host, Link};

/// A VLAN id known at compile time (a bad literal fails the build, not a run).
const fn vid(raw: u16) -> VlanId {
    match VlanId::new(raw) {
        Ok(id) => id,
        Err(_) => panic!("VLAN id literal out of range"),
    }
}

/// First single-tagged VLAN.
pub const VLAN_100: VlanId = vid(100);
/// Second single-tagged VLAN.
pub const VLAN_200: VlanId = vid(200);
/// QinQ outer (802.1ad service) tag.
pub const QINQ_OUTER: VlanId = vid(300);
/// QinQ inner (802.1Q customer) tag.
pub const QINQ_INNER: VlanId = vid(100);

/// Frames with one 802.1Q tag, VLAN 100.
pub fn vlan100() -> Link {
    Link::dot1q(VLAN_100)
}

/// Frames with one 802.1Q tag, VLAN 200.
pub fn vlan200() -> Link {
    Link::dot1q(VLAN_200)
}

/// Frames with an 802.1ad tag 300 (0x88a8) around an 802.1Q tag 100 (0x8100).
pub fn qinq() -> Link {
    Link::qinq(QINQ_OUTER, QINQ_INNER)
}

/// Untagged frames.
pub fn untagged() -> Link {
    Link::untagged()
}

/// 2026-01-01T00:00:00Z in seconds since the Unix epoch.
pub const BASE_S: u64 = 1_767_225_600;
/// 2026-01-01T00:00:00Z in microseconds since the Unix epoch: the start of every default capture.
pub const BASE_US: u64 = BASE_S * 1_000_000;

/// Attacker MAC 02:00:00:00:00:66.
pub const ATTACKER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x66];
/// Attacker IPv4 10.0.0.66.
pub const ATTACKER_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 66);
/// Attacker IPv6 fd00::66.
pub const ATTACKER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x66);

/// Victim MAC 02:00:00:00:00:10.
pub const VICTIM_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
/// Victim IPv4 10.0.0.10.
pub const VICTIM_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
/// Victim IPv6 fd00::10.
pub const VICTIM_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10);

/// Server MAC 02:00:00:00:00:20.
pub const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x20];
/// Server IPv4 10.0.0.20.
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 20);
/// Server IPv6 fd00::20.
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x20);

/// Spoofer MAC 02:00:00:00:00:99; it claims [`VICTIM_V4`].
pub const SPOOFER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x99];

/// Demo SYN flooder on VLAN 200: MAC 02:00:00:00:00:77, 10.0.0.77.
pub const FLOODER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x77];
/// Demo SYN flooder IPv4.
pub const FLOODER_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 77);
/// Demo Xmas prober on VLAN 100: MAC 02:00:00:00:00:88, 10.0.0.88.
pub const PROBER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x88];
/// Demo Xmas prober IPv4.
pub const PROBER_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 88);

/// Number of host-sweep targets.
pub const SWEEP_COUNT: u8 = 50;
/// Last octet of the first IPv4 host-sweep target (10.0.0.100 .. 10.0.0.149).
pub const SWEEP_FIRST_OCTET: u8 = 100;

/// Spoofed SYN-flood sources live in 10.200.0.0/16.
pub const SPOOF_NET_V4: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 0);
/// Spoofed IPv6 SYN-flood sources live in fd00:200::/64.
pub const SPOOF_NET_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, 0);

/// The attacker with its IPv4 address.
pub const fn attacker() -> Host {
    Host::new(ATTACKER_MAC, IpAddr::V4(ATTACKER_V4))
}
/// The attacker with its IPv6 address.
pub const fn attacker_v6() -> Host {
    Host::new(ATTACKER_MAC, IpAddr::V6(ATTACKER_V6))
}
/// The victim with its IPv4 address.
pub const fn victim() -> Host {
    Host::new(VICTIM_MAC, IpAddr::V4(VICTIM_V4))
}
/// The victim with its IPv6 address.
pub const fn victim_v6() -> Host {
    Host::new(VICTIM_MAC, IpAddr::V6(VICTIM_V6))
}
/// The server with its IPv4 address.
pub const fn server() -> Host {
    Host::new(SERVER_MAC, IpAddr::V4(SERVER_V4))
}
/// The server with its IPv6 address.
pub const fn server_v6() -> Host {
    Host::new(SERVER_MAC, IpAddr::V6(SERVER_V6))
}
/// The spoofer: its own MAC, claiming the victim's IPv4 address.
pub const fn spoofer() -> Host {
    Host::new(SPOOFER_MAC, IpAddr::V4(VICTIM_V4))
}
/// The demo's SYN flooder (10.0.0.77).
pub const fn flooder() -> Host {
    Host::new(FLOODER_MAC, IpAddr::V4(FLOODER_V4))
}
/// The demo's Xmas prober (10.0.0.88).
pub const fn prober() -> Host {
    Host::new(PROBER_MAC, IpAddr::V4(PROBER_V4))
}

/// Host-sweep target `i` (0..50): 10.0.0.(100+i), MAC 02:00:00:00:01:(100+i) (hex 0x64..0x95).
/// Indices past the plan wrap around.
pub fn sweep_target(i: u8) -> Host {
    let octet = SWEEP_FIRST_OCTET + i % SWEEP_COUNT;
    Host::new(
        [2, 0, 0, 0, 1, octet],
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, octet)),
    )
}

/// IPv6 host-sweep target `i` (0..50): fd00::100 + i (fd00::100 .. fd00::131), same MAC as
/// [`sweep_target`].
pub fn sweep_target_v6(i: u8) -> Host {
    let i = i % SWEEP_COUNT;
    let v4 = sweep_target(i);
    Host::new(
        v4.mac,
        IpAddr::V6(Ipv6Addr::new(
            0xfd00,
            0,
            0,
            0,
            0,
            0,
            0,
            0x100 + u16::from(i),
        )),
    )
}
