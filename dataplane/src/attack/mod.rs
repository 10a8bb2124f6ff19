//! Network Attack Blocker: built-in detectors with thresholds from the policy.
//!
//! Each detector has a stable name (used in events, exclusions and docs), a stable signature id,
//! and bounded state. A detector reports once per attack episode: it fires when its condition is
//! first met and stays quiet while the activity goes on; after a quiet period (the detector's
//! window, or [`SINGLE_PACKET_QUIET_US`] for single-packet attacks) it may fire again.

mod detect;
pub mod state;

pub use detect::{AttackBlocker, AttackStats, Detection, PacketFacts, StateCaps};

/// The attacks the blocker detects.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Attack {
    /// Distinct TCP destination ports per source (SYN probes).
    TcpPortScan,
    /// Distinct UDP destination ports per source (new flows).
    UdpPortScan,
    /// Distinct destination hosts per source (ICMP echo/timestamp requests, TCP SYNs).
    HostSweep,
    /// Half-open TCP connections per destination.
    SynFlood,
    /// Unsolicited UDP packets per destination.
    UdpFlood,
    /// Unsolicited ICMP packets per destination.
    IcmpFlood,
    /// Source address equals destination address.
    Land,
    /// A reassembled IP datagram over 65535 bytes.
    PingOfDeath,
    /// Overlapping IP fragments.
    Teardrop,
    /// TCP segment with no flags.
    TcpNull,
    /// TCP segment with FIN, PSH and URG (nmap's Xmas scan).
    TcpXmas,
    /// TCP segment with SYN and FIN.
    TcpSynFin,
    /// A known IP address appears from a new MAC address in the same VLAN.
    MacSpoofing,
}

/// Generator id of attack-blocker alerts (Suricata's gid 1 space, with sids in a reserved range).
pub const GID: u32 = 1;

/// Quiet period for single-packet attacks before the same source is reported again.
pub const SINGLE_PACKET_QUIET_US: u64 = 60 * crate::time::Timestamp::SECOND;

impl Attack {
    /// Every attack, in catalogue order.
    pub const ALL: [Attack; 13] = [
        Attack::TcpPortScan,
        Attack::UdpPortScan,
        Attack::HostSweep,
        Attack::SynFlood,
        Attack::UdpFlood,
        Attack::IcmpFlood,
        Attack::Land,
        Attack::PingOfDeath,
        Attack::Teardrop,
        Attack::TcpNull,
        Attack::TcpXmas,
        Attack::TcpSynFin,
        Attack::MacSpoofing,
    ];

    /// Stable name, as in events (`alert.signature`), the docs and the summary.
    pub const fn name(self) -> &'static str {
        match self {
            Attack::TcpPortScan => "Scan.Generic.TCP",
            Attack::UdpPortScan => "Scan.Generic.UDP",
            Attack::HostSweep => "Scan.Generic.HostSweep",
            Attack::SynFlood => "DoS.Generic.SYNFlood",
            Attack::UdpFlood => "DoS.Generic.UDPFlood",
            Attack::IcmpFlood => "DoS.Generic.ICMPFlood",
            Attack::Land => "DoS.Generic.Land",
            Attack::PingOfDeath => "DoS.Generic.PingOfDeath",
            Attack::Teardrop => "DoS.Generic.Teardrop",
            Attack::TcpNull => "Scan.Generic.TCPFlags.Null",
            Attack::TcpXmas => "Scan.Generic.TCPFlags.Xmas",
            Attack::TcpSynFin => "Scan.Generic.TCPFlags.SynFin",
            Attack::MacSpoofing => "Spoof.Generic.MAC",
        }
    }

    /// Stable signature id (`alert.signature_id`), gid [`GID`], rev 1.
    pub const fn sid(self) -> u32 {
        9_100_001
            + match self {
                Attack::TcpPortScan => 0,
                Attack::UdpPortScan => 1,
                Attack::HostSweep => 2,
                Attack::SynFlood => 3,
                Attack::UdpFlood => 4,
                Attack::IcmpFlood => 5,
                Attack::Land => 6,
                Attack::PingOfDeath => 7,
                Attack::Teardrop => 8,
                Attack::TcpNull => 9,
                Attack::TcpXmas => 10,
                Attack::TcpSynFin => 11,
                Attack::MacSpoofing => 12,
            }
    }

    /// The policy's detector key (`attack_blocker.detectors.<key>`).
    pub const fn detector(self) -> &'static str {
        match self {
            Attack::TcpPortScan => "tcp_port_scan",
            Attack::UdpPortScan => "udp_port_scan",
            Attack::HostSweep => "host_sweep",
            Attack::SynFlood => "syn_flood",
            Attack::UdpFlood => "udp_flood",
            Attack::IcmpFlood => "icmp_flood",
            Attack::Land => "land",
            Attack::PingOfDeath => "ping_of_death",
            Attack::Teardrop => "teardrop",
            Attack::TcpNull | Attack::TcpXmas | Attack::TcpSynFin => "invalid_tcp_flags",
            Attack::MacSpoofing => "mac_spoofing",
        }
    }

    /// EVE `alert.category`.
    pub const fn category(self) -> &'static str {
        match self {
            Attack::TcpPortScan
            | Attack::UdpPortScan
            | Attack::HostSweep
            | Attack::TcpNull
            | Attack::TcpXmas
            | Attack::TcpSynFin => "Detection of a Network Scan",
            Attack::SynFlood
            | Attack::UdpFlood
            | Attack::IcmpFlood
            | Attack::Land
            | Attack::PingOfDeath
            | Attack::Teardrop => "Detection of a Denial of Service Attack",
            Attack::MacSpoofing => "Attempted Information Leak",
        }
    }

    /// EVE `alert.severity` (rule priority: 1 highest, 3 lowest).
    pub const fn severity(self) -> u8 {
        match self {
            Attack::PingOfDeath
            | Attack::Teardrop
            | Attack::Land
            | Attack::SynFlood
            | Attack::MacSpoofing => 1,
            Attack::UdpFlood | Attack::IcmpFlood | Attack::TcpPortScan | Attack::UdpPortScan => 2,
            Attack::HostSweep | Attack::TcpNull | Attack::TcpXmas | Attack::TcpSynFin => 2,
        }
    }

    /// Whether blocking the packet's source address makes sense. Land and MAC spoofing carry a
    /// forged source (the victim's own address): blocking it would finish the attacker's job, so
    /// those are terminated but never blocked.
    pub const fn blocks_source(self) -> bool {
        !matches!(self, Attack::Land | Attack::MacSpoofing)
    }

    /// Whether one forged packet or fragment is enough to cause this detection, so that its
    /// source address proves nothing: invalid TCP flags, Land, Ping of Death, Teardrop. Such a
    /// detection blocks only a source that proved its address (see
    /// [`AttackBlocker::is_proven`]), unless the policy's
    /// `attack_blocker.block_unverified_sources` says otherwise. The rate detectors need many
    /// packets in a window, and a scanner never completes a handshake, so they block as before.
    pub const fn single_packet(self) -> bool {
        matches!(
            self,
            Attack::Land
                | Attack::PingOfDeath
                | Attack::Teardrop
                | Attack::TcpNull
                | Attack::TcpXmas
                | Attack::TcpSynFin
        )
    }

    /// Look an attack up by its stable name.
    pub fn from_name(name: &str) -> Option<Attack> {
        Attack::ALL.into_iter().find(|a| a.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sids_are_unique() {
        let mut names = std::collections::HashSet::new();
        let mut sids = std::collections::HashSet::new();
        for a in Attack::ALL {
            assert!(names.insert(a.name()));
            assert!(sids.insert(a.sid()));
            assert_eq!(Attack::from_name(a.name()), Some(a));
        }
    }
}
