//! Network isolation of a protected VM: the policy's `isolation` section, the exclusions that
//! stay open while a VM is isolated, and how a frame is matched against them.
//!
//! # Document
//! ```yaml
//! isolation:
//!   dns_resolvers: [10.0.0.53]        # the dns-client profile's servers; empty = any
//!   automatic:
//!     enabled: true
//!     duration_minutes: 480           # 1..=43200, default 480 (8 hours, as KICS for Nodes)
//!     triggers:                       # absent: any attack blocker detection from the VM
//!       attack_blocker: true
//!       sids: [2100498]
//!       classtypes: [trojan-activity]
//!       min_severity: 1               # rule alerts of priority 1 (the most severe) only
//!       web_categories: [malware]     # web address scan hits of these list categories
//!     exclusions:                     # absent: the four DNS/DHCP profiles
//!       - profile: dns-client
//!       - {remote: 10.1.0.0/16, protocol: tcp, ports: [443, "8000-8080"], direction: outbound}
//! ```
//!
//! # Matching
//! An exclusion is matched statelessly against one frame of the isolated VM, described by
//! [`IsolatedPacket`]: which way it travels (from the VM = outbound), the remote address, the
//! protocol, the VM's and the remote's ports, whether it is a bare TCP SYN, and the VLAN scope.
//! A custom exclusion's `ports` are the **server's** ports: for `outbound` the remote's (the VM
//! connects out), for `inbound` the VM's (something connects to it), for `both` either. A TCP
//! SYN without ACK must travel in the exclusion's direction, so an `outbound` exclusion does not
//! let anyone open a connection to the VM.

use core::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use vlan::VlanScope;

use crate::model::VlanMatch;

/// Most exclusions one isolation may carry (policy or manual request).
pub const MAX_ISOLATION_EXCLUSIONS: usize = 256;

/// Most port ranges one custom exclusion may hold.
pub const MAX_EXCLUSION_PORTS: usize = 64;

/// Most DNS resolvers the `dns-client` profile may name.
pub const MAX_DNS_RESOLVERS: usize = 64;

/// Most entries in each trigger list (`sids`, `classtypes`, `web_categories`).
pub const MAX_TRIGGERS: usize = 10_000;

/// The policy's `isolation` section.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Isolation {
    /// The resolvers the `dns-client` profile lets the VM reach; empty means any server.
    pub dns_resolvers: Vec<IpAddr>,
    /// Automatic isolation on detections.
    pub automatic: AutomaticIsolation,
}

/// How long an isolation lasts, in minutes: 1..=43200 (30 days), default 480 (8 hours).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct IsolationMinutes(u32);

impl IsolationMinutes {
    /// Shortest.
    pub const MIN: u32 = 1;
    /// Longest: 30 days.
    pub const MAX: u32 = 43_200;
    /// KICS for Nodes' default, 8 hours.
    pub const DEFAULT: u32 = 480;

    /// A duration, if it is in range.
    pub const fn new(minutes: u32) -> Option<Self> {
        if minutes >= Self::MIN && minutes <= Self::MAX {
            Some(IsolationMinutes(minutes))
        } else {
            None
        }
    }

    /// Minutes.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Seconds.
    pub const fn as_secs(self) -> u64 {
        self.0 as u64 * 60
    }
}

impl Default for IsolationMinutes {
    fn default() -> Self {
        IsolationMinutes(Self::DEFAULT)
    }
}

/// `isolation.automatic`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct AutomaticIsolation {
    /// Off by default.
    pub enabled: bool,
    /// How long an automatic isolation lasts.
    pub duration: IsolationMinutes,
    /// What isolates a VM; `None`: any attack blocker detection whose source is the VM,
    /// whatever the attack blocker's action (`inform` included).
    pub triggers: Option<Triggers>,
    /// What stays open while a VM is isolated automatically (manual isolations carry their own).
    pub exclusions: Vec<IsolationExclusion>,
}

impl Default for AutomaticIsolation {
    fn default() -> Self {
        AutomaticIsolation {
            enabled: false,
            duration: IsolationMinutes::default(),
            triggers: None,
            exclusions: default_exclusions(),
        }
    }
}

/// The default exclusions: the DNS and DHCP client and server profiles, as the seeds have it.
pub fn default_exclusions() -> Vec<IsolationExclusion> {
    Profile::ALL
        .iter()
        .map(|p| IsolationExclusion::Profile(*p))
        .collect()
}

/// `isolation.automatic.triggers`: detections whose source is a protected VM that isolate it.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Triggers {
    /// Any attack blocker detection.
    pub attack_blocker: bool,
    /// Signature rule alerts by signature id.
    pub sids: Vec<u32>,
    /// Signature rule alerts by classtype name (`trojan-activity`).
    pub classtypes: Vec<String>,
    /// Signature rule alerts whose priority (1 is the most severe) is at most this.
    pub min_severity: Option<u8>,
    /// Web address scan hits of these list categories (`malware`, `phishing`); names are
    /// checked as `web_address_scan.categories`' are.
    pub web_categories: Vec<String>,
}

impl Triggers {
    /// Whether a signature rule alert isolates its source.
    pub fn rule_alert(&self, sid: u32, classtype: Option<&str>, priority: u8) -> bool {
        self.sids.contains(&sid)
            || classtype.is_some_and(|c| self.classtypes.iter().any(|t| t == c))
            || self.min_severity.is_some_and(|m| priority <= m)
    }

    /// Whether a web address scan hit of a list of `category` isolates its client.
    pub fn web_hit(&self, category: &str) -> bool {
        self.web_categories.iter().any(|c| c == category)
    }
}

/// A built-in, read-only network profile.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Profile {
    /// The VM asks for an address: UDP VM:68 <-> server:67, DHCPv6 VM:546 <-> server:547.
    DhcpClient,
    /// The VM serves addresses: UDP VM:67 <-> client:68, DHCPv6 VM:547 <-> client:546.
    DhcpServer,
    /// The VM resolves names: UDP and TCP to port 53 of the policy's resolvers (any server when
    /// the policy names none), and their answers.
    DnsClient,
    /// The VM answers names: UDP and TCP to its port 53, and its answers.
    DnsServer,
}

impl Profile {
    /// Every profile, in document order.
    pub const ALL: [Profile; 4] = [
        Profile::DhcpClient,
        Profile::DhcpServer,
        Profile::DnsClient,
        Profile::DnsServer,
    ];

    /// The document name.
    pub const fn name(self) -> &'static str {
        match self {
            Profile::DhcpClient => "dhcp-client",
            Profile::DhcpServer => "dhcp-server",
            Profile::DnsClient => "dns-client",
            Profile::DnsServer => "dns-server",
        }
    }

    /// The profile of a document name.
    pub fn from_name(s: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// Which way a custom exclusion opens.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Direction {
    /// Connections the VM opens (the remote is the server).
    Outbound,
    /// Connections to the VM (the VM is the server).
    Inbound,
    /// Either.
    #[default]
    Both,
}

impl Direction {
    /// The document name.
    pub const fn name(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
            Direction::Both => "both",
        }
    }
}

/// The protocols a custom exclusion names.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Protocol {
    /// Any IP protocol.
    #[default]
    Any,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP and ICMPv6.
    Icmp,
}

impl Protocol {
    /// The document name.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Any => "any",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }
}

/// IP protocol numbers the matching uses.
pub mod ipproto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// A custom exclusion: traffic between the isolated VM and `remote` that stays open.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct CustomExclusion {
    /// Free text for the operator.
    pub name: Option<String>,
    /// The remote side's address or prefix; `None` = any.
    pub remote: Option<IpNet>,
    /// The protocol.
    pub protocol: Protocol,
    /// The server's ports, as inclusive ranges (TCP and UDP only); empty = any port.
    pub ports: Vec<(u16, u16)>,
    /// Which side is the server.
    pub direction: Direction,
    /// VLAN stacks it applies to.
    pub vlan: VlanMatch,
}

/// One exclusion of an isolation.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum IsolationExclusion {
    /// A built-in profile.
    Profile(Profile),
    /// A custom rule.
    Custom(CustomExclusion),
}

/// One frame of an isolated VM, as exclusions see it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IsolatedPacket {
    /// The frame's VLAN scope.
    pub scope: VlanScope,
    /// The VM sent it (else it is addressed to the VM).
    pub outbound: bool,
    /// The other side's address.
    pub remote: IpAddr,
    /// IP protocol number (of the first fragment's header; see [`ipproto`]).
    pub proto: u8,
    /// The VM's port (0 without ports).
    pub vm_port: u16,
    /// The remote's port (0 without ports).
    pub remote_port: u16,
    /// A TCP segment with SYN and without ACK (opens a connection).
    pub syn_only: bool,
}

impl IsolatedPacket {
    fn udp_or_tcp(&self) -> bool {
        self.proto == ipproto::UDP || self.proto == ipproto::TCP
    }
}

impl IsolationExclusion {
    /// Whether `p` passes this exclusion; `resolvers` are the policy's DNS resolvers.
    pub fn matches(&self, p: &IsolatedPacket, resolvers: &[IpAddr]) -> bool {
        match self {
            IsolationExclusion::Profile(profile) => profile.matches(p, resolvers),
            IsolationExclusion::Custom(c) => c.matches(p),
        }
    }

    /// A short text for events and listings: the profile's name, or the custom rule's fields.
    pub fn describe(&self) -> String {
        match self {
            IsolationExclusion::Profile(p) => p.name().to_owned(),
            IsolationExclusion::Custom(c) => c.to_string(),
        }
    }
}

impl Profile {
    fn matches(self, p: &IsolatedPacket, resolvers: &[IpAddr]) -> bool {
        let vm_serves = match self {
            Profile::DhcpClient => return dhcp(p, false),
            Profile::DhcpServer => return dhcp(p, true),
            Profile::DnsClient => false,
            Profile::DnsServer => true,
        };
        if !p.udp_or_tcp() {
            return false;
        }
        let port_ok = if vm_serves {
            p.vm_port == 53
        } else {
            p.remote_port == 53
        };
        // A TCP connection is opened toward the server only.
        let opens_wrong_way = p.syn_only && p.outbound == vm_serves;
        let resolver_ok = vm_serves || resolvers.is_empty() || resolvers.contains(&p.remote);
        port_ok && !opens_wrong_way && resolver_ok
    }
}

/// DHCP (v4: client 68, server 67; v6: client 546, server 547), UDP only.
fn dhcp(p: &IsolatedPacket, vm_serves: bool) -> bool {
    if p.proto != ipproto::UDP {
        return false;
    }
    let (vm, remote) = (p.vm_port, p.remote_port);
    if vm_serves {
        (vm == 67 && remote == 68) || (vm == 547 && remote == 546)
    } else {
        (vm == 68 && remote == 67) || (vm == 546 && remote == 547)
    }
}

impl CustomExclusion {
    /// Whether `p` passes this exclusion.
    pub fn matches(&self, p: &IsolatedPacket) -> bool {
        if !self.vlan.matches(p.scope) || self.remote.is_some_and(|n| !n.contains(&p.remote)) {
            return false;
        }
        let proto_ok = match self.protocol {
            Protocol::Any => true,
            Protocol::Tcp => p.proto == ipproto::TCP,
            Protocol::Udp => p.proto == ipproto::UDP,
            Protocol::Icmp => p.proto == ipproto::ICMP || p.proto == ipproto::ICMPV6,
        };
        if !proto_ok {
            return false;
        }
        // A connection may only be opened the way the exclusion says.
        if p.syn_only {
            match self.direction {
                Direction::Outbound if !p.outbound => return false,
                Direction::Inbound if p.outbound => return false,
                _ => {}
            }
        }
        if self.ports.is_empty() {
            return true;
        }
        // Ports name TCP and UDP servers: other protocols never match a port list.
        if !p.udp_or_tcp() {
            return false;
        }
        let has = |port: u16| {
            self.ports
                .iter()
                .any(|(lo, hi)| (*lo..=*hi).contains(&port))
        };
        match self.direction {
            Direction::Outbound => has(p.remote_port),
            Direction::Inbound => has(p.vm_port),
            Direction::Both => has(p.remote_port) || has(p.vm_port),
        }
    }
}

impl fmt::Display for CustomExclusion {
    /// `remote 10.0.0.0/8 tcp ports 443,8000-8080 outbound vlan any`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = &self.name {
            write!(f, "{n}: ")?;
        }
        match &self.remote {
            Some(r) => write!(f, "remote {r}")?,
            None => f.write_str("remote any")?,
        }
        write!(f, " {}", self.protocol.name())?;
        if !self.ports.is_empty() {
            f.write_str(" ports ")?;
            for (i, (lo, hi)) in self.ports.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                if lo == hi {
                    write!(f, "{lo}")?;
                } else {
                    write!(f, "{lo}-{hi}")?;
                }
            }
        }
        write!(f, " {} vlan {}", self.direction.name(), self.vlan)
    }
}

// ---------------------------------------------------------------------------------------------
// Documents

use crate::document::{Walk, child, describe, field, vlan_tree};
use crate::error::PolicyErrors;
use serde_json::{Map, Value, json};

impl Walk {
    pub(crate) fn isolation(&mut self, v: Option<&Value>, path: &str) -> Isolation {
        let map = self.mapping(v, path, &["dns_resolvers", "automatic"]);
        Isolation {
            dns_resolvers: self
                .resolvers(field(map, "dns_resolvers"), &child(path, "dns_resolvers")),
            automatic: self.automatic(field(map, "automatic"), &child(path, "automatic")),
        }
    }

    fn list<'v>(&mut self, v: Option<&'v Value>, path: &str, cap: usize) -> &'v [Value] {
        match v {
            None => &[],
            Some(Value::Array(items)) if items.len() > cap => {
                self.err(
                    path.to_owned(),
                    format!("{} entries, at most {cap} are allowed", items.len()),
                );
                &[]
            }
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.err(
                    path.to_owned(),
                    format!("expected a list, got {}", describe(other)),
                );
                &[]
            }
        }
    }

    fn resolvers(&mut self, v: Option<&Value>, path: &str) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for (i, item) in self.list(v, path, MAX_DNS_RESOLVERS).iter().enumerate() {
            match item.as_str().and_then(|s| s.parse::<IpAddr>().ok()) {
                Some(a) => out.push(a),
                None => self.err(
                    format!("{path}[{i}]"),
                    format!("expected an IP address, got {}", describe(item)),
                ),
            }
        }
        out
    }

    fn automatic(&mut self, v: Option<&Value>, path: &str) -> AutomaticIsolation {
        let map = self.mapping(
            v,
            path,
            &["enabled", "duration_minutes", "triggers", "exclusions"],
        );
        let d = AutomaticIsolation::default();
        let minutes = self.integer(
            field(map, "duration_minutes"),
            child(path, "duration_minutes"),
            u64::from(IsolationMinutes::MIN),
            u64::from(IsolationMinutes::MAX),
            u64::from(IsolationMinutes::DEFAULT),
        );
        let triggers =
            field(map, "triggers").map(|t| self.triggers(Some(t), &child(path, "triggers")));
        let exclusions = match field(map, "exclusions") {
            None => d.exclusions,
            v => self.isolation_exclusions(v, &child(path, "exclusions")),
        };
        AutomaticIsolation {
            enabled: self.boolean(field(map, "enabled"), child(path, "enabled"), d.enabled),
            duration: u32::try_from(minutes)
                .ok()
                .and_then(IsolationMinutes::new)
                .unwrap_or_default(),
            triggers,
            exclusions,
        }
    }

    fn triggers(&mut self, v: Option<&Value>, path: &str) -> Triggers {
        let map = self.mapping(
            v,
            path,
            &[
                "attack_blocker",
                "sids",
                "classtypes",
                "min_severity",
                "web_categories",
            ],
        );
        let mut sids = Vec::new();
        let sids_path = child(path, "sids");
        for (i, item) in self
            .list(field(map, "sids"), &sids_path, MAX_TRIGGERS)
            .iter()
            .enumerate()
        {
            match item.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n > 0 => sids.push(n),
                _ => self.err(
                    format!("{sids_path}[{i}]"),
                    format!(
                        "expected a signature id 1..={}, got {}",
                        u32::MAX,
                        describe(item)
                    ),
                ),
            }
        }
        let classtypes = self.names(
            field(map, "classtypes"),
            &child(path, "classtypes"),
            |s| {
                !s.is_empty()
                    && s.len() <= 64
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            },
            "a classtype name (letters, digits, '-', '_', at most 64)",
        );
        let web_categories = self.names(
            field(map, "web_categories"),
            &child(path, "web_categories"),
            crate::web::is_category,
            "a web address category (1..=64 lowercase letters, digits, '-' or '_', as in \
             web_address_scan.categories)",
        );
        let min_severity = field(map, "min_severity").map(|v| {
            let n = self.integer(Some(v), child(path, "min_severity"), 1, 255, 1);
            u8::try_from(n).unwrap_or(1)
        });
        Triggers {
            attack_blocker: self.boolean(
                field(map, "attack_blocker"),
                child(path, "attack_blocker"),
                false,
            ),
            sids,
            classtypes,
            min_severity,
            web_categories,
        }
    }

    /// A trigger list of names (at most [`MAX_TRIGGERS`]), each refused with its path unless `ok`.
    fn names(
        &mut self,
        v: Option<&Value>,
        path: &str,
        ok: fn(&str) -> bool,
        what: &str,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (i, item) in self.list(v, path, MAX_TRIGGERS).iter().enumerate() {
            match item.as_str() {
                Some(s) if ok(s) => out.push(s.to_owned()),
                _ => self.err(
                    format!("{path}[{i}]"),
                    format!("expected {what}, got {}", describe(item)),
                ),
            }
        }
        out
    }

    pub(crate) fn isolation_exclusions(
        &mut self,
        v: Option<&Value>,
        path: &str,
    ) -> Vec<IsolationExclusion> {
        let items = self.list(v, path, MAX_ISOLATION_EXCLUSIONS);
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.isolation_exclusion(item, &format!("{path}[{i}]")))
            .collect()
    }

    fn isolation_exclusion(&mut self, v: &Value, path: &str) -> Option<IsolationExclusion> {
        const CUSTOM: &[&str] = &["name", "remote", "protocol", "ports", "direction", "vlan"];
        let before = self.errors.len();
        if let Some(m) = v.as_object()
            && m.contains_key("profile")
        {
            let map = self.mapping(Some(v), path, &["profile"]);
            let p = field(map, "profile");
            let names: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
            return match p.and_then(Value::as_str).and_then(Profile::from_name) {
                Some(profile) if self.errors.len() == before => {
                    Some(IsolationExclusion::Profile(profile))
                }
                Some(_) => None,
                None => {
                    self.err(
                        child(path, "profile"),
                        format!(
                            "expected one of {}, got {}",
                            names.join(", "),
                            p.map_or_else(|| "null".to_owned(), describe)
                        ),
                    );
                    None
                }
            };
        }
        // Not a mapping: reported by `mapping`.
        let map = Some(self.mapping(Some(v), path, CUSTOM)?);
        let name = self.opt_string(field(map, "name"), child(path, "name"));
        let remote =
            field(map, "remote").and_then(|r| self.address(Some(r), child(path, "remote")));
        let protocol = self.keyword(
            field(map, "protocol"),
            child(path, "protocol"),
            &[
                ("any", Protocol::Any),
                ("tcp", Protocol::Tcp),
                ("udp", Protocol::Udp),
                ("icmp", Protocol::Icmp),
            ],
            Protocol::Any,
        );
        let ports = self.ports(field(map, "ports"), &child(path, "ports"));
        if protocol == Protocol::Icmp && !ports.is_empty() {
            self.err(
                child(path, "ports"),
                "ports apply to tcp and udp; an icmp exclusion has none",
            );
        }
        let direction = self.keyword(
            field(map, "direction"),
            child(path, "direction"),
            &[
                ("outbound", Direction::Outbound),
                ("inbound", Direction::Inbound),
                ("both", Direction::Both),
            ],
            Direction::Both,
        );
        let vlan = self.vlan(field(map, "vlan"), child(path, "vlan"));
        (self.errors.len() == before).then_some(IsolationExclusion::Custom(CustomExclusion {
            name,
            remote,
            protocol,
            ports,
            direction,
            vlan,
        }))
    }

    fn ports(&mut self, v: Option<&Value>, path: &str) -> Vec<(u16, u16)> {
        let mut out = Vec::new();
        for (i, item) in self.list(v, path, MAX_EXCLUSION_PORTS).iter().enumerate() {
            let range = match item {
                Value::Number(n) => n
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .map(|p| (p, p)),
                Value::String(s) => parse_port_range(s),
                _ => None,
            };
            match range {
                Some(r) => out.push(r),
                None => self.err(
                    format!("{path}[{i}]"),
                    format!(
                        "expected a port 0..=65535 or a range \"lo-hi\" with lo <= hi, got {}",
                        describe(item)
                    ),
                ),
            }
        }
        out
    }
}

/// `"443"` or `"8000-8080"`.
fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let p = s.trim().parse().ok()?;
            (p, p)
        }
    };
    (lo <= hi).then_some((lo, hi))
}

/// Read the exclusions of a manual isolation (an API body's `exclusions`, the same form as
/// `isolation.automatic.exclusions`), reporting every problem with its path under `path`.
pub fn exclusions_from_value(
    v: &Value,
    path: &str,
) -> Result<Vec<IsolationExclusion>, PolicyErrors> {
    let mut walk = Walk { errors: Vec::new() };
    let out = walk.isolation_exclusions(Some(v), path);
    if walk.errors.is_empty() {
        Ok(out)
    } else {
        Err(PolicyErrors(walk.errors))
    }
}

/// One exclusion in its document form.
pub fn exclusion_to_value(e: &IsolationExclusion) -> Value {
    match e {
        IsolationExclusion::Profile(p) => json!({ "profile": p.name() }),
        IsolationExclusion::Custom(c) => {
            let CustomExclusion {
                name,
                remote,
                protocol,
                ports,
                direction,
                vlan,
            } = c;
            let mut m = Map::new();
            if let Some(n) = name {
                m.insert("name".into(), Value::String(n.clone()));
            }
            if let Some(r) = remote {
                m.insert("remote".into(), Value::String(r.to_string()));
            }
            m.insert("protocol".into(), json!(protocol.name()));
            let ports: Vec<Value> = ports
                .iter()
                .map(|(lo, hi)| {
                    if lo == hi {
                        json!(lo)
                    } else {
                        json!(format!("{lo}-{hi}"))
                    }
                })
                .collect();
            m.insert("ports".into(), Value::Array(ports));
            m.insert("direction".into(), json!(direction.name()));
            m.insert("vlan".into(), vlan_tree(vlan));
            Value::Object(m)
        }
    }
}

pub(crate) fn isolation_tree(i: &Isolation) -> Value {
    let Isolation {
        dns_resolvers,
        automatic,
    } = i;
    let AutomaticIsolation {
        enabled,
        duration,
        triggers,
        exclusions,
    } = automatic;
    let mut auto = Map::new();
    auto.insert("enabled".into(), json!(enabled));
    auto.insert("duration_minutes".into(), json!(duration.get()));
    if let Some(t) = triggers {
        let Triggers {
            attack_blocker,
            sids,
            classtypes,
            min_severity,
            web_categories,
        } = t;
        let mut tm = Map::new();
        tm.insert("attack_blocker".into(), json!(attack_blocker));
        tm.insert("sids".into(), json!(sids));
        tm.insert("classtypes".into(), json!(classtypes));
        if let Some(m) = min_severity {
            tm.insert("min_severity".into(), json!(m));
        }
        tm.insert("web_categories".into(), json!(web_categories));
        auto.insert("triggers".into(), Value::Object(tm));
    }
    auto.insert(
        "exclusions".into(),
        Value::Array(exclusions.iter().map(exclusion_to_value).collect()),
    );
    json!({
        "dns_resolvers": dns_resolvers.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "automatic": Value::Object(auto),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn pkt(outbound: bool, proto: u8, vm_port: u16, remote_port: u16) -> IsolatedPacket {
        IsolatedPacket {
            scope: VlanScope::UNTAGGED,
            outbound,
            remote: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 53)),
            proto,
            vm_port,
            remote_port,
            syn_only: false,
        }
    }

    #[test]
    fn profiles() {
        use ipproto::{TCP, UDP};
        let any: &[IpAddr] = &[];
        let dns = IsolationExclusion::Profile(Profile::DnsClient);
        assert!(dns.matches(&pkt(true, UDP, 40000, 53), any));
        assert!(dns.matches(&pkt(false, UDP, 40000, 53), any));
        assert!(dns.matches(&pkt(true, TCP, 40000, 53), any));
        assert!(!dns.matches(&pkt(true, UDP, 40000, 80), any));
        // Only the policy's resolvers when it names some.
        let other: &[IpAddr] = &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))];
        assert!(!dns.matches(&pkt(true, UDP, 40000, 53), other));
        // A client profile does not let anyone connect to the VM's port 53.
        let mut syn = pkt(false, TCP, 53, 40000);
        syn.syn_only = true;
        assert!(!dns.matches(&syn, any));
        let server = IsolationExclusion::Profile(Profile::DnsServer);
        assert!(server.matches(&syn, any));
        let dhcp = IsolationExclusion::Profile(Profile::DhcpClient);
        assert!(dhcp.matches(&pkt(true, UDP, 68, 67), any));
        assert!(dhcp.matches(&pkt(false, UDP, 68, 67), any));
        assert!(dhcp.matches(&pkt(true, UDP, 546, 547), any));
        assert!(!dhcp.matches(&pkt(true, TCP, 68, 67), any));
        assert!(!dhcp.matches(&pkt(true, UDP, 67, 68), any));
        let dhcps = IsolationExclusion::Profile(Profile::DhcpServer);
        assert!(dhcps.matches(&pkt(true, UDP, 67, 68), any));
        assert!(!dhcps.matches(&pkt(true, UDP, 68, 67), any));
    }

    #[test]
    fn custom_ports_follow_the_server_side() {
        use ipproto::{ICMP, TCP, UDP};
        let out443 = CustomExclusion {
            remote: Some("10.0.0.0/8".parse().unwrap()),
            protocol: Protocol::Tcp,
            ports: vec![(443, 443), (8000, 8080)],
            direction: Direction::Outbound,
            ..CustomExclusion::default()
        };
        assert!(out443.matches(&pkt(true, TCP, 50000, 443)));
        assert!(out443.matches(&pkt(false, TCP, 50000, 8080)));
        assert!(!out443.matches(&pkt(true, TCP, 443, 50000)));
        assert!(!out443.matches(&pkt(true, UDP, 50000, 443)));
        let mut inbound_syn = pkt(false, TCP, 50000, 443);
        inbound_syn.syn_only = true;
        assert!(!out443.matches(&inbound_syn));
        let mut far = pkt(true, TCP, 50000, 443);
        far.remote = IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1));
        assert!(!out443.matches(&far));
        let ssh_in = CustomExclusion {
            ports: vec![(22, 22)],
            direction: Direction::Inbound,
            ..CustomExclusion::default()
        };
        assert!(ssh_in.matches(&pkt(false, TCP, 22, 50000)));
        assert!(ssh_in.matches(&pkt(true, TCP, 22, 50000)));
        assert!(!ssh_in.matches(&pkt(true, TCP, 50000, 22)));
        assert!(!ssh_in.matches(&pkt(true, ICMP, 0, 0)));
        let icmp = CustomExclusion {
            protocol: Protocol::Icmp,
            vlan: VlanMatch::Id(vlan::VlanId::new(100).unwrap()),
            ..CustomExclusion::default()
        };
        assert!(!icmp.matches(&pkt(true, ICMP, 0, 0)));
        let mut tagged = pkt(true, ICMP, 0, 0);
        tagged.scope = VlanScope::single(vlan::VlanId::new(100).unwrap());
        assert!(icmp.matches(&tagged));
        assert_eq!(
            out443.to_string(),
            "remote 10.0.0.0/8 tcp ports 443,8000-8080 outbound vlan any"
        );
    }

    #[test]
    fn document_reads_and_writes_back() {
        let p = crate::Policy::from_yaml(
            "isolation:\n  dns_resolvers: [10.0.0.53]\n  automatic:\n    enabled: true\n    duration_minutes: 30\n    triggers: {sids: [2100498], classtypes: [trojan-activity], min_severity: 1, web_categories: [malware, my-list]}\n    exclusions:\n      - profile: dns-client\n      - {remote: 10.1.0.0/16, protocol: tcp, ports: [443, \"8000-8080\"], direction: outbound, vlan: 100}\n",
        )
        .unwrap();
        let a = &p.isolation.automatic;
        assert!(a.enabled);
        assert_eq!(a.duration.as_secs(), 1800);
        let t = a.triggers.as_ref().unwrap();
        assert!(!t.attack_blocker);
        assert!(t.rule_alert(2100498, None, 3));
        assert!(t.rule_alert(1, Some("trojan-activity"), 3));
        assert!(t.rule_alert(1, None, 1));
        assert!(!t.rule_alert(1, Some("misc"), 2));
        assert!(t.web_hit("malware") && t.web_hit("my-list"));
        assert!(!t.web_hit("phishing"));
        assert_eq!(a.exclusions.len(), 2);
        assert_eq!(p.isolation.dns_resolvers.len(), 1);
        let again = crate::Policy::from_json(&p.to_json().to_string()).unwrap();
        assert_eq!(again, p);
        // Defaults: off, 8 hours, the four profiles, any attack blocker detection.
        let d = crate::Policy::from_yaml("isolation: {automatic: {enabled: true}}").unwrap();
        assert_eq!(d.isolation.automatic.duration.get(), 480);
        assert_eq!(d.isolation.automatic.exclusions, default_exclusions());
        assert!(d.isolation.automatic.triggers.is_none());
        // An explicit empty list isolates completely.
        let none = crate::Policy::from_yaml("isolation: {automatic: {exclusions: []}}").unwrap();
        assert!(none.isolation.automatic.exclusions.is_empty());
    }

    /// The example of docs/policy.md's `isolation` section (the only `yml` block there) is valid.
    #[test]
    fn reference_example_is_valid() {
        let doc = include_str!("../../docs/policy.md");
        let start = doc.find("```yml\n").unwrap() + 7;
        let len = doc[start..].find("```").unwrap();
        let p = crate::Policy::from_yaml(&doc[start..start + len]).unwrap();
        assert!(p.isolation.automatic.enabled);
        assert_eq!(p.isolation.automatic.exclusions.len(), 3);
        assert_eq!(p.isolation.dns_resolvers.len(), 1);
    }

    #[test]
    fn bad_values_are_reported_with_their_place() {
        let e = crate::Policy::from_yaml(
            "isolation:\n  dns_resolvers: [nope]\n  automatic:\n    duration_minutes: 0\n    triggers: {sids: [0], min_severity: 300, colour: red, web_categories: [malware, \"Bad Name\", 7]}\n    exclusions:\n      - profile: ftp-client\n      - {protocol: icmp, ports: [1]}\n      - {remote: 10.0.0.1/8, ports: [\"9-3\"], direction: sideways}\n",
        )
        .unwrap_err();
        let paths: Vec<&str> = e.0.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "isolation.dns_resolvers[0]",
            "isolation.automatic.duration_minutes",
            "isolation.automatic.triggers.sids[0]",
            "isolation.automatic.triggers.min_severity",
            "isolation.automatic.triggers.colour",
            "isolation.automatic.triggers.web_categories[1]",
            "isolation.automatic.triggers.web_categories[2]",
            "isolation.automatic.exclusions[0].profile",
            "isolation.automatic.exclusions[1].ports",
            "isolation.automatic.exclusions[2].remote",
            "isolation.automatic.exclusions[2].ports[0]",
            "isolation.automatic.exclusions[2].direction",
        ] {
            assert!(paths.contains(&want), "{want} missing from {paths:?}");
        }
        assert!(!paths.contains(&"isolation.automatic.triggers.web_categories[0]"));
        let manual = exclusions_from_value(
            &serde_json::json!([{"profile": "dns-client"}, {"ports": [22], "direction": "inbound"}]),
            "exclusions",
        )
        .unwrap();
        assert_eq!(manual.len(), 2);
        assert_eq!(
            exclusions_from_value(&serde_json::json!([{"ports": ["x"]}]), "exclusions")
                .unwrap_err()
                .0[0]
                .path,
            "exclusions[0].ports[0]"
        );
    }

    fn arb_exclusion() -> impl Strategy<Value = IsolationExclusion> {
        prop_oneof![
            (0usize..4).prop_map(|i| IsolationExclusion::Profile(Profile::ALL[i])),
            (
                prop::option::of((any::<u32>(), 0u8..=32)),
                0usize..3,
                prop::collection::vec((any::<u16>(), 0u16..100), 0..4),
                0usize..3,
                prop::option::of(1u16..4095),
                prop::option::of("[a-z]{1,8}"),
            )
                .prop_map(|(remote, proto, ports, dir, vid, name)| {
                    IsolationExclusion::Custom(CustomExclusion {
                        name,
                        remote: remote.map(|(a, l)| {
                            IpNet::new(IpAddr::V4(Ipv4Addr::from(a)), l)
                                .unwrap()
                                .trunc()
                        }),
                        protocol: [Protocol::Any, Protocol::Tcp, Protocol::Udp][proto],
                        ports: ports
                            .into_iter()
                            .map(|(lo, n)| (lo, lo.saturating_add(n)))
                            .collect(),
                        direction: [Direction::Outbound, Direction::Inbound, Direction::Both][dir],
                        vlan: vid.map_or(VlanMatch::Any, |v| {
                            VlanMatch::Id(vlan::VlanId::new(v).unwrap())
                        }),
                    })
                }),
        ]
    }

    proptest! {
        /// Every isolation section written out reads back equal.
        #[test]
        fn isolation_round_trips(
            enabled in any::<bool>(),
            minutes in 1u32..=43_200,
            exclusions in prop::collection::vec(arb_exclusion(), 0..6),
            triggers in prop::option::of((any::<bool>(), prop::collection::vec(1u32..1_000_000, 0..4), prop::option::of(1u8..5))),
            resolvers in prop::collection::vec(any::<u32>(), 0..3),
        ) {
            let p = crate::Policy { isolation: Isolation {
                dns_resolvers: resolvers.into_iter().map(|a| IpAddr::V4(Ipv4Addr::from(a))).collect(),
                automatic: AutomaticIsolation {
                    enabled,
                    duration: IsolationMinutes::new(minutes).unwrap(),
                    triggers: triggers.map(|(attack_blocker, sids, min_severity)| Triggers {
                        attack_blocker,
                        sids,
                        classtypes: vec!["trojan-activity".into()],
                        min_severity,
                        web_categories: vec!["malware".into()],
                    }),
                    exclusions,
                },
            }, ..crate::Policy::default() };
            let text = p.to_json().to_string();
            prop_assert_eq!(crate::Policy::from_json(&text).unwrap(), p);
        }
    }

    fn arb_packet() -> impl Strategy<Value = IsolatedPacket> {
        (
            any::<bool>(),
            any::<u32>(),
            prop_oneof![Just(1u8), Just(6), Just(17), Just(58), any::<u8>()],
            prop_oneof![Just(53u16), Just(67), Just(68), Just(443), any::<u16>()],
            prop_oneof![Just(53u16), Just(67), Just(68), Just(443), any::<u16>()],
            any::<bool>(),
        )
            .prop_map(
                |(outbound, a, proto, vm_port, remote_port, syn)| IsolatedPacket {
                    scope: VlanScope::UNTAGGED,
                    outbound,
                    remote: IpAddr::V4(Ipv4Addr::from(a)),
                    proto,
                    vm_port,
                    remote_port,
                    syn_only: syn && proto == ipproto::TCP,
                },
            )
    }

    proptest! {
        /// A custom exclusion of direction `both` is exactly the union of the `inbound` and
        /// `outbound` ones for frames that open nothing; the answer of a frame and of its reply
        /// (sides swapped) agree, so an exchange is never half open.
        #[test]
        fn custom_directions_compose(
            p in arb_packet(),
            lo in any::<u16>(),
            span in 0u16..2000,
            prefix in 0u8..=32,
            proto in prop_oneof![Just(Protocol::Any), Just(Protocol::Tcp), Just(Protocol::Udp), Just(Protocol::Icmp)],
        ) {
            let net = IpNet::new(p.remote, prefix).unwrap().trunc();
            let mk = |direction| CustomExclusion {
                remote: Some(net),
                protocol: proto,
                ports: vec![(lo, lo.saturating_add(span))],
                direction,
                ..CustomExclusion::default()
            };
            let p = IsolatedPacket { syn_only: false, ..p };
            let both = mk(Direction::Both).matches(&p);
            let union = mk(Direction::Inbound).matches(&p) || mk(Direction::Outbound).matches(&p);
            prop_assert_eq!(both, union);
            let reply = IsolatedPacket { outbound: !p.outbound, ..p };
            for d in [Direction::Both, Direction::Inbound, Direction::Outbound] {
                prop_assert_eq!(mk(d).matches(&p), mk(d).matches(&reply));
            }
            for profile in Profile::ALL {
                let e = IsolationExclusion::Profile(profile);
                prop_assert_eq!(e.matches(&p, &[]), e.matches(&reply, &[]));
            }
        }

        /// A bare SYN passes only in the direction an exclusion opens; with no ports and any
        /// protocol, everything else with the remote inside the prefix passes.
        #[test]
        fn syn_follows_direction(p in arb_packet()) {
            let p = IsolatedPacket { proto: ipproto::TCP, syn_only: true, ..p };
            let out = CustomExclusion { direction: Direction::Outbound, ..CustomExclusion::default() };
            let inb = CustomExclusion { direction: Direction::Inbound, ..CustomExclusion::default() };
            prop_assert_eq!(out.matches(&p), p.outbound);
            prop_assert_eq!(inb.matches(&p), !p.outbound);
            let open = IsolatedPacket { syn_only: false, ..p };
            prop_assert!(out.matches(&open) && inb.matches(&open));
        }
    }
}
