//! Interim policy types (replaced by the full policy crate on merge).
#![allow(missing_docs)]
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode { #[default] Standard, Monitoring }
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Action { Inform, Terminate, #[default] TerminateAndBlock }
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockMinutes(u16);
impl BlockMinutes { pub fn get(self) -> u16 { self.0 } pub fn as_secs(self) -> u64 { u64::from(self.0) * 60 } pub fn new(v: u16) -> Option<Self> { (1..=32768).contains(&v).then_some(Self(v)) } }
impl Default for BlockMinutes { fn default() -> Self { Self(60) } }
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold { pub enabled: bool, pub count: u32, pub window_secs: u32 }
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Toggle { pub enabled: bool }
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detectors {
    pub tcp_port_scan: Threshold, pub udp_port_scan: Threshold, pub host_sweep: Threshold,
    pub syn_flood: Threshold, pub udp_flood: Threshold, pub icmp_flood: Threshold,
    pub land: Toggle, pub ping_of_death: Toggle, pub teardrop: Toggle, pub invalid_tcp_flags: Toggle, pub mac_spoofing: Toggle,
}
const fn th(count: u32, window_secs: u32) -> Threshold { Threshold { enabled: true, count, window_secs } }
const ON: Toggle = Toggle { enabled: true };
impl Default for Detectors {
    fn default() -> Self {
        Detectors { tcp_port_scan: th(20, 10), udp_port_scan: th(20, 10), host_sweep: th(20, 10), syn_flood: th(200, 5),
            udp_flood: th(10000, 1), icmp_flood: th(1000, 1), land: ON, ping_of_death: ON, teardrop: ON, invalid_tcp_flags: ON, mac_spoofing: ON }
    }
}
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttackBlocker { pub enabled: bool, pub action: Action, pub block_minutes: BlockMinutes, pub detectors: Detectors }
impl Default for AttackBlocker { fn default() -> Self { Self { enabled: true, action: Action::default(), block_minutes: BlockMinutes::default(), detectors: Detectors::default() } } }
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VlanMatch { Any, Untagged, Id(vlan::VlanId), Stack(vlan::VlanScope) }
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ExclusionRule { #[default] Default, DoNotScan, DoNotBlock }
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exclusion { pub name: Option<String>, pub address: ipnet::IpNet, pub vlan: VlanMatch, pub rule: ExclusionRule }
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Policy { pub version: Option<String>, pub mode: Mode, pub attack_blocker: AttackBlocker, pub exclusions: Vec<Exclusion> }
#[derive(Debug)]
pub struct PolicyErrors(pub Vec<String>);
impl std::fmt::Display for PolicyErrors { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(&self.0.join("\n")) } }
impl std::error::Error for PolicyErrors {}
impl Policy {
    pub fn load(_p: &std::path::Path) -> Result<Policy, PolicyErrors> { Ok(Policy::default()) }
    pub fn to_json(&self) -> serde_json::Value { serde_json::Value::Null }
}
#[derive(Clone, Debug)]
pub struct CompiledPolicy { policy: Policy }
impl CompiledPolicy {
    pub fn compile(policy: Policy) -> Self { Self { policy } }
    pub fn policy(&self) -> &Policy { &self.policy }
    pub fn has_exclusions(&self) -> bool { !self.policy.exclusions.is_empty() }
    pub fn exclusion(&self, scope: vlan::VlanScope, src: IpAddr) -> ExclusionRule {
        for e in &self.policy.exclusions {
            let vm = match e.vlan { VlanMatch::Any => true, VlanMatch::Untagged => scope.is_untagged(), VlanMatch::Id(id) => scope.outer() == Some(id.get()), VlanMatch::Stack(s) => s == scope };
            if vm && e.address.contains(&src) { return e.rule; }
        }
        ExclusionRule::Default
    }
}
