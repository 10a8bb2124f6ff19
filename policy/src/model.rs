//! The validated policy: domain types that code past this crate relies on without re-checking.
//!
//! Every value of these types is valid by construction: numbers that have a range are newtypes or
//! are checked by the parser, and the parser is the only way a document becomes a [`Policy`].

use core::fmt;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use vlan::{VlanId, VlanScope};

/// How the appliance treats traffic.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Detect and act: reset connections and block sources as each engine's action says.
    #[default]
    Standard,
    /// Detect and report only: every engine runs and reports what it would have done
    /// (`would_block`); no frame is dropped, no reset is sent, no block is made.
    Monitoring,
}

impl Mode {
    /// The document spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Standard => "standard",
            Mode::Monitoring => "monitoring",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an engine does when it detects an attack.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Report the event only (Kaspersky "Ignore": no preventive action, the event is still sent).
    Inform,
    /// Report and reset the offending connection.
    Terminate,
    /// Report, reset the connection and block the source address in the VLAN scope where the
    /// attack was seen, for [`AttackBlocker::block_minutes`]. Kaspersky's default.
    #[default]
    TerminateAndBlock,
}

impl Action {
    /// The document spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Inform => "inform",
            Action::Terminate => "terminate",
            Action::TerminateAndBlock => "terminate_and_block",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long a source stays blocked, in minutes: 1..=32768, default 60 (the KESL/KSV range).
///
/// The expiry is computed when the block is made; changing the policy does not move the expiry
/// of blocks already in the table.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(transparent)]
pub struct BlockMinutes(u16);

/// Error for a block duration outside 1..=32768 minutes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("block duration {0} minutes is out of range 1..=32768")]
pub struct InvalidBlockMinutes(pub u64);

impl BlockMinutes {
    /// Shortest block.
    pub const MIN: u16 = 1;
    /// Longest block (about 22.7 days).
    pub const MAX: u16 = 32768;
    /// Default block.
    pub const DEFAULT: BlockMinutes = BlockMinutes(60);

    /// A duration if `minutes` is in 1..=32768.
    pub const fn new(minutes: u16) -> Result<Self, InvalidBlockMinutes> {
        if minutes >= Self::MIN && minutes <= Self::MAX {
            Ok(BlockMinutes(minutes))
        } else {
            // Lossless widening; `u64::from` is not const.
            Err(InvalidBlockMinutes(minutes as u64))
        }
    }

    /// Minutes.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// Seconds.
    pub const fn as_secs(self) -> u64 {
        // Lossless widening; `u64::from` is not const.
        self.0 as u64 * 60
    }
}

impl Default for BlockMinutes {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<u64> for BlockMinutes {
    type Error = InvalidBlockMinutes;
    fn try_from(raw: u64) -> Result<Self, Self::Error> {
        let minutes = u16::try_from(raw).map_err(|_| InvalidBlockMinutes(raw))?;
        Self::new(minutes)
    }
}

impl<'de> Deserialize<'de> for BlockMinutes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::try_from(u64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for BlockMinutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} min", self.0)
    }
}

/// A rate detector: fires when `count` distinct things (ports, hosts, half-open connections or
/// packets, see [`Detectors`]) are seen within `window_secs`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Threshold {
    /// Whether the detector runs.
    pub enabled: bool,
    /// How many within the window raise the detection; at least 1.
    pub count: u32,
    /// Window length in seconds, 1..=3600.
    pub window_secs: u32,
}

impl Threshold {
    /// Largest accepted window: state older than an hour is not a rate.
    pub const MAX_WINDOW_SECS: u32 = 3600;

    const fn on(count: u32, window_secs: u32) -> Self {
        Threshold {
            enabled: true,
            count,
            window_secs,
        }
    }
}

/// A detector with no parameters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Toggle {
    /// Whether the detector runs.
    pub enabled: bool,
}

impl Default for Toggle {
    fn default() -> Self {
        Toggle { enabled: true }
    }
}

/// The network attack blocker's detectors. Each field's doc gives the stable detection name used
/// in events and what the detector counts.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Detectors {
    /// `Scan.Generic.TCP`: distinct destination TCP ports probed by one source. Default on, 20 in 10 s.
    pub tcp_port_scan: Threshold,
    /// `Scan.Generic.UDP`: distinct destination UDP ports probed by one source. Default on, 20 in 10 s.
    pub udp_port_scan: Threshold,
    /// `Scan.Generic.HostSweep`: distinct destination hosts probed by one source. Default on, 20 in 10 s.
    pub host_sweep: Threshold,
    /// `DoS.Generic.SYNFlood`: half-open TCP connections to one destination. Default on, 200 in 5 s.
    pub syn_flood: Threshold,
    /// `DoS.Generic.UDPFlood`: UDP packets to one destination. Default on, 10000 in 1 s.
    pub udp_flood: Threshold,
    /// `DoS.Generic.ICMPFlood`: ICMP packets to one destination. Default on, 1000 in 1 s.
    pub icmp_flood: Threshold,
    /// `DoS.Generic.Land`: source address and port equal destination address and port. Default on.
    pub land: Toggle,
    /// `DoS.Generic.PingOfDeath`: a reassembled ICMP datagram larger than 65535 bytes. Default on.
    pub ping_of_death: Toggle,
    /// `DoS.Generic.Teardrop`: overlapping IP fragments. Default on.
    pub teardrop: Toggle,
    /// `Scan.Generic.TCPFlags`: invalid TCP flag combinations (null, xmas, SYN+FIN). Default on.
    pub invalid_tcp_flags: Toggle,
    /// `Spoof.Generic.MAC`: a known address seen from a MAC other than the one learnt for it. Default on.
    pub mac_spoofing: Toggle,
}

impl Default for Detectors {
    fn default() -> Self {
        Detectors {
            tcp_port_scan: Threshold::on(20, 10),
            udp_port_scan: Threshold::on(20, 10),
            host_sweep: Threshold::on(20, 10),
            syn_flood: Threshold::on(200, 5),
            udp_flood: Threshold::on(10_000, 1),
            icmp_flood: Threshold::on(1000, 1),
            land: Toggle::default(),
            ping_of_death: Toggle::default(),
            teardrop: Toggle::default(),
            invalid_tcp_flags: Toggle::default(),
            mac_spoofing: Toggle::default(),
        }
    }
}

/// The network attack blocker: the generic scan, flood and malformed-packet detectors.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct AttackBlocker {
    /// Whether any detector runs. Default on.
    pub enabled: bool,
    /// What to do on a detection. Default [`Action::TerminateAndBlock`].
    pub action: Action,
    /// How long [`Action::TerminateAndBlock`] blocks the source. Default 60 minutes.
    pub block_minutes: BlockMinutes,
    /// Per-detector settings.
    pub detectors: Detectors,
    /// Whether a detection that one forged packet or fragment can cause (invalid TCP flags,
    /// Land, Ping of Death, Teardrop) blocks a source that has not proven its address. Default
    /// off: such a detection terminates and reports (`block_skipped: unverified_source`), and a
    /// source is proven by a TCP handshake it completed from the same MAC address (its final ACK
    /// acknowledging the server's SYN/ACK, which a forger never sees) within the last
    /// [`AttackBlocker::PROOF_SECS`].
    pub block_unverified_sources: bool,
}

impl AttackBlocker {
    /// How long a completed handshake proves its client's address.
    pub const PROOF_SECS: u64 = 3600;
}

impl Default for AttackBlocker {
    fn default() -> Self {
        AttackBlocker {
            enabled: true,
            action: Action::default(),
            block_minutes: BlockMinutes::default(),
            detectors: Detectors::default(),
            block_unverified_sources: false,
        }
    }
}

/// Which VLAN tag stacks an exclusion applies to.
///
/// Document forms: `any` (also `4095`, the VMware "all VLANs" trunk id Kaspersky uses),
/// `untagged` (also `novlan`), a number `100` (or `"100"`: the outer tag is 100, whatever is
/// inside it), `"100.200"` (exactly outer 100, inner 200) and `"exact:100"` (exactly one tag, 100).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum VlanMatch {
    /// Every frame, tagged or not.
    #[default]
    Any,
    /// Frames with no VLAN tag.
    Untagged,
    /// Frames whose outer tag has this id (any inner tag, or none).
    Id(VlanId),
    /// Frames with exactly this tag stack. `Stack(VlanScope::UNTAGGED)` is the same as `Untagged`.
    Stack(VlanScope),
}

impl VlanMatch {
    /// Whether a frame in `scope` matches.
    pub fn matches(&self, scope: VlanScope) -> bool {
        match *self {
            VlanMatch::Any => true,
            VlanMatch::Untagged => scope.is_untagged(),
            VlanMatch::Id(id) => scope.outer() == Some(id.get()),
            VlanMatch::Stack(exact) => scope == exact,
        }
    }
}

impl fmt::Display for VlanMatch {
    /// The canonical document spelling (numbers without quotes in documents).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VlanMatch::Any => f.write_str("any"),
            VlanMatch::Untagged => f.write_str("untagged"),
            VlanMatch::Id(id) => write!(f, "{id}"),
            VlanMatch::Stack(s) if s.is_untagged() => f.write_str("untagged"),
            VlanMatch::Stack(s) if s.ids().len() == 1 => write!(f, "exact:{s}"),
            VlanMatch::Stack(s) => write!(f, "{s}"),
        }
    }
}

/// What an exclusion does to matching traffic.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExclusionRule {
    /// Normal processing. Placed before a broader rule, it carves addresses out of it.
    #[default]
    Default,
    /// Bypass every engine: no attack detection, no activity scan, no URL scan.
    DoNotScan,
    /// Detect and report, but never block the source (the connection may still be terminated
    /// if the action says so).
    DoNotBlock,
}

impl ExclusionRule {
    /// The document spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExclusionRule::Default => "default",
            ExclusionRule::DoNotScan => "do_not_scan",
            ExclusionRule::DoNotBlock => "do_not_block",
        }
    }
}

impl fmt::Display for ExclusionRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the ordered exclusion list (Kaspersky's "Exclusions from protection": scope
/// `<source> vlan <ID>` and a rule).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Exclusion {
    /// Free text for the operator; not used for matching.
    pub name: Option<String>,
    /// Source address or prefix. A bare address is a /32 or /128. Host bits are never set
    /// (the parser rejects `10.0.0.5/24`).
    pub address: IpNet,
    /// VLAN stacks the exclusion applies to.
    pub vlan: VlanMatch,
    /// What happens to matching traffic.
    pub rule: ExclusionRule,
}

impl Exclusion {
    /// Whether a packet from `src` in `scope` matches this exclusion.
    pub fn matches(&self, scope: VlanScope, src: IpAddr) -> bool {
        self.address.contains(&src) && self.vlan.matches(scope)
    }
}

/// A signature rule named by generator id, signature id and revision (`"gid:sid:rev"` in the
/// document).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct RuleId {
    /// Generator id (1 for ordinary rules).
    pub gid: u32,
    /// Signature id.
    pub sid: u32,
    /// Revision.
    pub rev: u32,
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.gid, self.sid, self.rev)
    }
}

impl core::str::FromStr for RuleId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let mut it = s
            .split(':')
            .map(|p| p.trim().parse::<u32>().map_err(|_| ()));
        match (it.next(), it.next(), it.next(), it.next()) {
            (Some(gid), Some(sid), Some(rev), None) => Ok(RuleId {
                gid: gid?,
                sid: sid?,
                rev: rev?,
            }),
            _ => Err(()),
        }
    }
}

/// The network activity scanner: signature rules (Suricata rule language).
///
/// `alert` rules only report. `drop` and `reject` rules take [`ActivityScanner::action`]:
/// `inform` reports only, `terminate` drops the packet and terminates the flow (inline; a reset on
/// a mirror), `terminate_and_block` does the same (the source is not blocked by a rule match:
/// rules name traffic, not hosts). Monitoring mode never acts.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ActivityScanner {
    /// Whether rules are evaluated (when a rule set is loaded). Default on.
    pub enabled: bool,
    /// What `drop`/`reject` rule matches do. Default [`Action::TerminateAndBlock`].
    pub action: Action,
    /// Rules never evaluated, by `gid:sid:rev`.
    pub rule_exclusions: Vec<RuleId>,
    /// Rule files (paths or glob patterns on the appliance) that replace the daemon
    /// configuration's `rules.files` when not empty.
    pub rule_files: Vec<String>,
    /// Rule address variables (`HOME_NET` -> `[10.0.0.0/8]`), applied over the daemon's.
    pub address_groups: BTreeMap<String, String>,
    /// Rule port variables (`HTTP_PORTS` -> `[80,8080]`), applied over the daemon's.
    pub port_groups: BTreeMap<String, String>,
}

impl ActivityScanner {
    /// Whether the rule set itself (its files or variables) differs, so a loaded set must be
    /// built again; `enabled`, `action` and exclusions apply without a reload.
    pub fn same_rule_inputs(&self, other: &ActivityScanner) -> bool {
        self.rule_files == other.rule_files
            && self.address_groups == other.address_groups
            && self.port_groups == other.port_groups
    }
}

impl Default for ActivityScanner {
    fn default() -> Self {
        ActivityScanner {
            enabled: true,
            action: Action::default(),
            rule_exclusions: Vec::new(),
            rule_files: Vec::new(),
            address_groups: BTreeMap::new(),
            port_groups: BTreeMap::new(),
        }
    }
}

/// A whole policy document, validated.
///
/// Exclusions are an ordered list: for a packet, the first exclusion (lowest index) whose address
/// contains the packet's **source** address and whose VLAN match accepts the packet's tag stack
/// decides the rule. See [`crate::CompiledPolicy::exclusion`].
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Policy {
    /// Opaque version label set by the management server, echoed in events.
    pub version: Option<String>,
    /// Standard or monitoring.
    pub mode: Mode,
    /// Network attack blocker settings.
    pub attack_blocker: AttackBlocker,
    /// Network activity scanner settings.
    pub activity_scanner: ActivityScanner,
    /// Ordered exclusions, first match wins.
    pub exclusions: Vec<Exclusion>,
    /// Addresses no detection may block, in any VLAN (gateways, resolvers, the management
    /// server): a detection of such a source is terminated and reported with
    /// `block_skipped: never_block`, whatever the exclusions say. Manual blocks are not limited.
    pub never_block: Vec<IpNet>,
    /// NSX tagging of the protected VMs a detection involves.
    pub tagging: Tagging,
    /// Network isolation of protected VMs.
    pub isolation: crate::isolation::Isolation,
    /// Web address scan settings.
    pub web_address_scan: crate::web::WebAddressScan,
    /// Per-VM protection: each engine on or off per VM, and whether unlisted VMs are protected.
    pub protection: crate::protection::Protection,
    /// What happens to frames nested too deep to inspect.
    pub decode: crate::protection::Decode,
}

/// NSX tagging settings. In standard mode a detection that involves a protected VM always tags it
/// (`IDS_IPS` / `threat=high` by default, set in the daemon's `nsx` configuration).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Tagging {
    /// Tag in monitoring mode too. Default off: monitoring mode reports and changes nothing,
    /// and a tag can put a VM into an NSX quarantine group.
    pub in_monitoring_mode: bool,
}
