//! The compiled policy: lookups the dataplane runs per packet.
//!
//! # Exclusion lookup
//! Rules are grouped per address family and prefix length ("levels"). Each level holds one hash
//! map from (VLAN key, masked source address) to the lowest rule index with that key. A packet's
//! VLAN scope can only be matched by up to three keys: `Any`, and either `Untagged` or its outer
//! id plus its exact stack. A lookup visits levels in order of their lowest rule index, masks the
//! source once per level, probes only the key kinds the level holds, and stops as soon as no
//! remaining level can beat the best index found. Nothing is allocated; with no exclusions the
//! lookup is one branch.

use crate::model::{Exclusion, ExclusionRule, Policy, VlanMatch};
use core::hash::Hash;
use foldhash::fast::RandomState;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use vlan::VlanScope;

/// The VLAN part of an exclusion key. `VlanMatch::Stack(UNTAGGED)` compiles to `Untagged`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum VlanKey {
    Any,
    Untagged,
    Outer(u16),
    Stack(VlanScope),
}

const KIND_ANY: u8 = 1;
const KIND_UNTAGGED: u8 = 2;
const KIND_OUTER: u8 = 4;
const KIND_STACK: u8 = 8;

impl VlanKey {
    fn of(m: VlanMatch) -> Self {
        match m {
            VlanMatch::Any => VlanKey::Any,
            VlanMatch::Untagged => VlanKey::Untagged,
            VlanMatch::Id(id) => VlanKey::Outer(id.get()),
            VlanMatch::Stack(s) if s.is_untagged() => VlanKey::Untagged,
            VlanMatch::Stack(s) => VlanKey::Stack(s),
        }
    }

    const fn kind(self) -> u8 {
        match self {
            VlanKey::Any => KIND_ANY,
            VlanKey::Untagged => KIND_UNTAGGED,
            VlanKey::Outer(_) => KIND_OUTER,
            VlanKey::Stack(_) => KIND_STACK,
        }
    }
}

/// One prefix length of one address family.
#[derive(Debug)]
struct Level<A> {
    mask: A,
    /// Lowest rule index in this level: a level cannot beat a match with a lower index.
    min_index: u32,
    /// Which `VlanKey` kinds occur, so lookups skip probes that cannot hit.
    kinds: u8,
    map: HashMap<(VlanKey, A), u32, RandomState>,
}

/// Addresses as integers, so one level type serves both families.
trait Addr: Copy + Eq + Hash + core::ops::BitAnd<Output = Self> {
    fn mask(prefix_len: u8) -> Self;
}

impl Addr for u32 {
    fn mask(prefix_len: u8) -> Self {
        u32::MAX
            .checked_shl(32 - u32::from(prefix_len.min(32)))
            .unwrap_or(0)
    }
}

impl Addr for u128 {
    fn mask(prefix_len: u8) -> Self {
        u128::MAX
            .checked_shl(128 - u32::from(prefix_len.min(128)))
            .unwrap_or(0)
    }
}

#[derive(Debug)]
struct Table<A> {
    /// Sorted by `min_index`.
    levels: Vec<Level<A>>,
}

impl<A: Addr> Table<A> {
    fn new() -> Self {
        Table { levels: Vec::new() }
    }

    fn insert(&mut self, prefix_len: u8, addr: A, vlan: VlanKey, index: u32) {
        let mask = A::mask(prefix_len);
        let pos = match self.levels.iter().position(|l| l.mask == mask) {
            Some(pos) => pos,
            None => {
                self.levels.push(Level {
                    mask,
                    min_index: index,
                    kinds: 0,
                    map: HashMap::with_hasher(RandomState::default()),
                });
                self.levels.len() - 1
            }
        };
        if let Some(level) = self.levels.get_mut(pos) {
            level.kinds |= vlan.kind();
            level.min_index = level.min_index.min(index);
            // Insertion is in rule order, so the first index stored for a key is the lowest.
            level.map.entry((vlan, addr & mask)).or_insert(index);
        }
    }

    fn finish(&mut self) {
        self.levels.sort_by_key(|l| l.min_index);
    }

    /// Lowest matching rule index, or `u32::MAX`.
    #[inline]
    fn lookup(&self, addr: A, scope: VlanScope) -> u32 {
        let mut best = u32::MAX;
        let (first, second) = match scope.outer() {
            None => (VlanKey::Untagged, None),
            Some(outer) => (VlanKey::Outer(outer), Some(VlanKey::Stack(scope))),
        };
        for level in &self.levels {
            if level.min_index >= best {
                break;
            }
            let a = addr & level.mask;
            let mut probe = |key: VlanKey| {
                if level.kinds & key.kind() != 0
                    && let Some(&i) = level.map.get(&(key, a))
                {
                    best = best.min(i);
                }
            };
            probe(VlanKey::Any);
            probe(first);
            if let Some(second) = second {
                probe(second);
            }
        }
        best
    }
}

/// A validated policy prepared for per-packet use. Build it once per policy push and share it
/// read-only between workers.
#[derive(Debug)]
pub struct CompiledPolicy {
    policy: Policy,
    v4: Table<u32>,
    v6: Table<u128>,
}

impl CompiledPolicy {
    /// Prepare `policy`'s lookups. Linear in the number of exclusions.
    pub fn compile(policy: Policy) -> CompiledPolicy {
        let mut v4 = Table::new();
        let mut v6 = Table::new();
        for (index, e) in policy.exclusions.iter().enumerate() {
            // The parser caps exclusions far below u32::MAX; a hand-built policy beyond it
            // simply cannot reach the later rules.
            let Ok(index) = u32::try_from(index) else {
                break;
            };
            let Exclusion {
                name: _,
                address,
                vlan,
                rule: _,
            } = e;
            let key = VlanKey::of(*vlan);
            match address {
                IpNet::V4(n) => v4.insert(n.prefix_len(), u32::from(n.network()), key, index),
                IpNet::V6(n) => v6.insert(n.prefix_len(), u128::from(n.network()), key, index),
            }
        }
        v4.finish();
        v6.finish();
        CompiledPolicy { policy, v4, v6 }
    }

    /// The policy this was compiled from.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Whether the policy has any exclusion (lets callers skip the lookup altogether).
    pub fn has_exclusions(&self) -> bool {
        !self.policy.exclusions.is_empty()
    }

    /// Whether `addr` is in the policy's `never_block` list. A linear walk: it runs only when a
    /// block is about to be made, and the list is capped at [`crate::MAX_NEVER_BLOCK`].
    pub fn never_blocks(&self, addr: IpAddr) -> bool {
        self.policy.never_block.iter().any(|n| n.contains(&addr))
    }

    /// The rule for a packet whose **source** address is `src`, seen in VLAN stack `scope`: the
    /// rule of the first exclusion in list order that matches (see [`Exclusion::matches`]), or
    /// [`ExclusionRule::Default`] when none does. Does not allocate.
    pub fn exclusion(&self, scope: VlanScope, src: IpAddr) -> ExclusionRule {
        if self.policy.exclusions.is_empty() {
            return ExclusionRule::Default;
        }
        let index = match src {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a), scope),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a), scope),
        };
        usize::try_from(index)
            .ok()
            .and_then(|i| self.policy.exclusions.get(i))
            .map_or(ExclusionRule::Default, |e| e.rule)
    }
}
