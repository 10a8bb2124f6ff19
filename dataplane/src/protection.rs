//! Per-VM protection: which engines inspect a frame, from the policy's `protection` section and
//! the protected VMs (the inventory), and the reports of frames nested too deep to inspect.
//!
//! # Resolution
//! [`VmProtections`] is built once per policy (and inventory): one byte of engine bits per
//! inventory VM, in inventory order, plus the bits of frames no inventory VM is part of. A frame
//! is resolved by its two ends: the VM that sent it (its source MAC in the frame's VLAN scope,
//! or its source address for an interface the inventory gives no MAC) and the VM it is for (the
//! same by destination). An engine inspects the frame when it is on for either end (protection of
//! either VM calls for it). The activity scanner's direction is a property of the connection, by
//! who opened it (the flow's client): a frame from the client to the server is scanned when the
//! client VM scans outbound connections or the server VM inbound ones, and the frames back the
//! same way, so a connection is always inspected whole. A frame of no inventory VM gets every
//! engine, unless the policy protects only the VMs it lists.
//!
//! The lookup is skipped entirely while the section is the default (one branch a frame); with
//! settings it is the inventory's MAC prefilter (one or two loads) and, for frames that may be a
//! VM's, one hash probe per end (docs/benchmarks.md, "Per-VM protection").

use core::net::IpAddr;
use hashbrown::HashMap;
use policy::{Policy, VmProtection};
use vlan::VlanScope;

use crate::isolation::Protected;
use crate::shared_blocks::Hasher;
use crate::time::Timestamp;

/// The engines that inspect one frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Engines(u8);

const AB: u8 = 1;
const SCAN_TO_SERVER: u8 = 2;
const SCAN_TO_CLIENT: u8 = 4;
const WEB: u8 = 8;

// A VM's own bits: the scanner's two directions, seen from the VM.
const VM_SCAN_OUT: u8 = 2;
const VM_SCAN_IN: u8 = 4;

impl Engines {
    /// Every engine (no per-VM settings, or a frame of no VM when every frame is protected).
    pub const ALL: Engines = Engines(AB | SCAN_TO_SERVER | SCAN_TO_CLIENT | WEB);
    /// No engine: the frame is forwarded uninspected.
    pub const NONE: Engines = Engines(0);

    /// Whether no engine inspects the frame.
    #[inline]
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }

    /// The attack blocker.
    #[inline]
    pub const fn attack_blocker(self) -> bool {
        self.0 & AB != 0
    }

    /// The activity scanner, for a frame that travels from the flow's client to its server
    /// (`to_server`) or back.
    #[inline]
    pub const fn activity_scanner(self, to_server: bool) -> bool {
        self.0
            & if to_server {
                SCAN_TO_SERVER
            } else {
                SCAN_TO_CLIENT
            }
            != 0
    }

    /// The web address scan.
    #[inline]
    pub const fn web_address_scan(self) -> bool {
        self.0 & WEB != 0
    }
}

fn vm_bits(p: VmProtection) -> u8 {
    let mut bits = 0;
    if p.attack_blocker {
        bits |= AB;
    }
    if p.web_address_scan {
        bits |= WEB;
    }
    if p.activity_scanner {
        if p.direction.covers(true) {
            bits |= VM_SCAN_OUT;
        }
        if p.direction.covers(false) {
            bits |= VM_SCAN_IN;
        }
    }
    bits
}

/// The policy's per-VM settings over the inventory (immutable; a new policy is a new one).
#[derive(Debug)]
pub struct VmProtections {
    /// Engine bits per inventory VM, in inventory order.
    by_vm: Vec<u8>,
    /// The engines of a frame of no inventory VM.
    other: Engines,
}

impl VmProtections {
    /// The settings of `policy` over `protected` (`None`: no inventory); `None` when the
    /// policy's `protection` section is the default (every frame gets every engine, and the
    /// worker skips the lookup). [`VmProtections::resolve`] must be given the same inventory.
    pub fn new(protected: Option<&Protected>, policy: &Policy) -> Option<VmProtections> {
        let section = &policy.protection;
        if section.is_default() {
            return None;
        }
        let by_vm = protected
            .map(|p| p.vms())
            .unwrap_or_default()
            .iter()
            .map(|vm| vm_bits(section.of(&vm.id)))
            .collect();
        Some(VmProtections {
            by_vm,
            other: if section.only_listed_vms {
                Engines::NONE
            } else {
                Engines::ALL
            },
        })
    }

    fn bits_of(
        &self,
        protected: &Protected,
        scope: VlanScope,
        mac: [u8; 6],
        ip: Option<IpAddr>,
    ) -> Option<u8> {
        protected
            .sender(scope, mac, ip)
            .and_then(|i| self.by_vm.get(i).copied())
    }

    /// The engines of a frame from `eth_src` (`src`) to `eth_dst` (`dst`) in `scope`, among
    /// the protected VMs this was built over.
    #[inline]
    pub fn resolve(
        &self,
        protected: Option<&Protected>,
        scope: VlanScope,
        eth_src: [u8; 6],
        eth_dst: [u8; 6],
        src: Option<IpAddr>,
        dst: Option<IpAddr>,
    ) -> Engines {
        let Some(protected) = protected.filter(|p| p.may_involve(eth_src, eth_dst)) else {
            return self.other;
        };
        let s = self.bits_of(protected, scope, eth_src, src);
        let r = self.bits_of(protected, scope, eth_dst, dst);
        if s.is_none() && r.is_none() {
            return self.other;
        }
        let (s, r) = (s.unwrap_or(0), r.unwrap_or(0));
        let mut e = (s | r) & (AB | WEB);
        // Client to server: the sender opened the connection (its outbound), to the receiver
        // (its inbound); the frames back, the other way round.
        if s & VM_SCAN_OUT != 0 || r & VM_SCAN_IN != 0 {
            e |= SCAN_TO_SERVER;
        }
        if r & VM_SCAN_OUT != 0 || s & VM_SCAN_IN != 0 {
            e |= SCAN_TO_CLIENT;
        }
        Engines(e)
    }
}

/// How often one source's too-deep frames are reported: at most once per this many seconds
/// (packet time); the frames between are counted only.
pub const TOO_DEEP_REPORT_SECS: u64 = 60;

/// Most sources whose last report is remembered; past it the memory is cleared (constant work,
/// and at worst one more report per source per interval).
pub const TOO_DEEP_SOURCES: usize = 1024;

/// When each source (by MAC) last had a too-deep frame reported.
#[derive(Debug, Default)]
pub struct TooDeepReports {
    last: HashMap<[u8; 6], Timestamp, Hasher>,
}

impl TooDeepReports {
    /// Whether a too-deep frame from `mac` at `now` is to be reported (and if so, remember it).
    pub fn due(&mut self, mac: [u8; 6], now: Timestamp) -> bool {
        let interval = TOO_DEEP_REPORT_SECS * Timestamp::SECOND;
        if let Some(t) = self.last.get_mut(&mac) {
            if now.since(*t) < interval {
                return false;
            }
            *t = now;
            return true;
        }
        if self.last.len() >= TOO_DEEP_SOURCES {
            self.last.clear();
        }
        self.last.insert(mac, now);
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::isolation::{ProtectedVm, VmNic};
    use policy::{Direction, Protection};

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
    const X: [u8; 6] = [2, 0, 0, 0, 0, 0x99];

    fn inventory() -> Protected {
        let vm = |id: &str, mac| ProtectedVm {
            id: id.into(),
            nics: vec![VmNic {
                scope: VlanScope::UNTAGGED,
                mac: Some(mac),
                addrs: vec![],
            }],
            learned: Default::default(),
        };
        Protected::new(vec![vm("a", A), vm("b", B)]).unwrap()
    }

    fn with(only: bool, vms: &[(&str, VmProtection)]) -> Option<VmProtections> {
        let policy = Policy {
            protection: Protection {
                only_listed_vms: only,
                vms: vms.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            },
            ..Policy::default()
        };
        VmProtections::new(Some(&inventory()), &policy)
    }

    fn res(p: &VmProtections, src: [u8; 6], dst: [u8; 6]) -> Engines {
        p.resolve(
            Some(&inventory()),
            VlanScope::UNTAGGED,
            src,
            dst,
            None,
            None,
        )
    }

    #[test]
    fn the_default_section_needs_no_lookup() {
        assert!(with(false, &[]).is_none());
    }

    #[test]
    fn an_engine_off_for_one_vm_still_runs_for_the_other() {
        let off = VmProtection {
            activity_scanner: false,
            ..VmProtection::default()
        };
        let p = with(false, &[("a", off)]).unwrap();
        let a_out = res(&p, A, X);
        assert!(a_out.attack_blocker() && !a_out.activity_scanner(true));
        assert!(!a_out.activity_scanner(false));
        assert_eq!(res(&p, B, X), Engines::ALL);
        assert_eq!(res(&p, X, X), Engines::ALL);
        // Between a and b, b's settings call for the scanner.
        assert!(res(&p, A, B).activity_scanner(true));
    }

    #[test]
    fn directions_follow_who_opened_the_connection() {
        let inbound = VmProtection {
            direction: Direction::Inbound,
            ..VmProtection::default()
        };
        let p = with(false, &[("a", inbound)]).unwrap();
        // a opened it (a's frames to_server, the answers to_client): outbound, not scanned.
        assert!(!res(&p, A, X).activity_scanner(true));
        assert!(!res(&p, X, A).activity_scanner(false));
        // x opened it to a: inbound, scanned both ways.
        assert!(res(&p, X, A).activity_scanner(true));
        assert!(res(&p, A, X).activity_scanner(false));
    }

    #[test]
    fn only_listed_vms_leaves_the_others_uninspected() {
        let p = with(true, &[("a", VmProtection::default())]).unwrap();
        assert_eq!(res(&p, A, X), Engines::ALL);
        assert_eq!(res(&p, B, X), Engines::NONE);
        assert_eq!(res(&p, X, X), Engines::NONE);
        assert_eq!(res(&p, B, A), Engines::ALL);
    }

    #[test]
    fn too_deep_is_reported_once_per_source_per_interval() {
        let mut r = TooDeepReports::default();
        let t = |s: u64| Timestamp::from_secs_micros(s, 0);
        assert!(r.due(A, t(0)));
        assert!(!r.due(A, t(59)));
        assert!(r.due(B, t(59)));
        assert!(r.due(A, t(60)));
        for i in 0..=TOO_DEEP_SOURCES {
            let [_, _, hi, lo] = u32::try_from(i).unwrap().to_be_bytes();
            r.due([4, 0, 0, 0, hi, lo], t(61));
        }
        assert!(r.last.len() <= TOO_DEEP_SOURCES);
    }

    proptest::proptest! {
        /// Whatever the settings, the frames of one connection agree: a frame to the server and
        /// its answer get the same scanner decision, and an engine off for both ends is off.
        #[test]
        fn both_halves_of_a_connection_get_one_decision(
            a_bits in 0u8..16, b_bits in 0u8..16, only in proptest::bool::ANY,
            ends in proptest::sample::select(vec![(A, B), (A, X), (X, B), (X, X)]),
        ) {
            let vm = |bits: u8| VmProtection {
                attack_blocker: bits & 1 != 0,
                activity_scanner: bits & 2 != 0,
                direction: [Direction::Inbound, Direction::Outbound, Direction::Both][usize::from(bits >> 2) % 3],
                web_address_scan: bits & 8 != 0,
            };
            let p = with(only, &[("a", vm(a_bits)), ("b", vm(b_bits))]).unwrap();
            let (c, s) = ends;
            let there = res(&p, c, s);
            let back = res(&p, s, c);
            proptest::prop_assert_eq!(there.activity_scanner(true), back.activity_scanner(false));
            proptest::prop_assert_eq!(there.attack_blocker(), back.attack_blocker());
            proptest::prop_assert_eq!(there.web_address_scan(), back.web_address_scan());
            if c == X && s == X {
                proptest::prop_assert_eq!(there, if only { Engines::NONE } else { Engines::ALL });
            }
        }
    }
}
