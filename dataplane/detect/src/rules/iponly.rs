//! Address index of the IP-only rules (ET's `botcc`, `compromised`, `ciarmy`, `dshield`, ...:
//! long address lists and nothing else), evaluated on the first packet of each flow direction.
//!
//! Checking all of them costs one address-list search per rule and flow direction. Instead each
//! `->` rule is indexed under the narrower of its two address sets (IPv4 part; the other side is
//! still checked by the header check): an IPv4 packet gets only the rules whose indexed side
//! contains its source (or destination) address, found by one binary search over elementary
//! intervals. Rules with `<>`, IPv6 addresses on the indexed side, or two very wide sides are
//! always candidates; IPv6 packets get every rule. Exact: a rule can only match a packet whose
//! address is in its indexed set.

use std::net::IpAddr;

use super::ast::{Direction, Rule};
use super::vars::AddrSet;

/// An indexed side wider than this (addresses) is not worth indexing.
const MAX_INDEXED_ADDRS: u64 = 1 << 26;

/// Entries (rule listed under an elementary interval) the index may hold; past it, the rules
/// left go to the always list.
const MAX_ENTRIES: usize = 1 << 22;

/// Rules by the address one of their sides needs.
#[derive(Debug, Default)]
struct Side {
    /// Start of each elementary interval, sorted.
    starts: Vec<u32>,
    /// Rules whose indexed set covers the interval.
    rules: Vec<Vec<u32>>,
}

impl Side {
    fn build(ranges: &[(u32, u32, u32)], entries: &mut usize) -> (Side, Vec<u32>) {
        let mut starts: Vec<u32> = Vec::with_capacity(ranges.len() * 2 + 1);
        starts.push(0);
        for &(lo, hi, _) in ranges {
            starts.push(lo);
            if let Some(n) = hi.checked_add(1) {
                starts.push(n);
            }
        }
        starts.sort_unstable();
        starts.dedup();
        let mut rules: Vec<Vec<u32>> = vec![Vec::new(); starts.len()];
        let mut overflow = Vec::new();
        for &(lo, hi, idx) in ranges {
            let from = starts.partition_point(|&s| s < lo);
            let to = starts.partition_point(|&s| s <= hi);
            if *entries + (to - from) > MAX_ENTRIES {
                overflow.push(idx);
                continue;
            }
            *entries += to - from;
            for l in rules.get_mut(from..to).into_iter().flatten() {
                l.push(idx);
            }
        }
        (Side { starts, rules }, overflow)
    }

    fn lookup(&self, a: u32, out: &mut Vec<u32>) {
        let i = self.starts.partition_point(|&s| s <= a);
        if let Some(l) = i.checked_sub(1).and_then(|i| self.rules.get(i)) {
            out.extend_from_slice(l);
        }
    }
}

/// Addresses of the IPv4 part of `a`: all an IPv4 packet can match (IPv6 packets take every
/// IP-only rule), so a list mixing IPv4 and IPv6 addresses (ET's Tor rules) is indexed too.
fn v4_size(a: &AddrSet) -> Option<u64> {
    let r = a.v4_ranges();
    Some(
        r.iter()
            .map(|&(lo, hi)| u64::from(hi) - u64::from(lo) + 1)
            .sum(),
    )
}

/// The IP-only rules, indexed.
#[derive(Debug, Default)]
pub struct IpOnlyIndex {
    all: Vec<u32>,
    always: Vec<u32>,
    by_src: Side,
    by_dst: Side,
}

impl IpOnlyIndex {
    /// Index rules `list` (indices into `rules`).
    pub fn build(list: &[u32], rules: &[Rule]) -> IpOnlyIndex {
        let mut always = Vec::new();
        let (mut src, mut dst) = (Vec::new(), Vec::new());
        for &idx in list {
            let Some(r) = rules.get(idx as usize) else {
                continue;
            };
            let sizes = (v4_size(&r.src), v4_size(&r.dst));
            let side = match sizes {
                _ if r.direction == Direction::Both => None,
                (Some(s), Some(d)) if s <= d => Some((&r.src, &mut src, s)),
                (Some(s), None) => Some((&r.src, &mut src, s)),
                (_, Some(d)) => Some((&r.dst, &mut dst, d)),
                (None, None) => None,
            };
            match side {
                Some((set, v, n)) if n <= MAX_INDEXED_ADDRS => {
                    v.extend(set.v4_ranges().iter().map(|&(lo, hi)| (lo, hi, idx)));
                }
                _ => always.push(idx),
            }
        }
        let mut entries = 0;
        let (by_src, o1) = Side::build(&src, &mut entries);
        let (by_dst, o2) = Side::build(&dst, &mut entries);
        always.extend(o1);
        always.extend(o2);
        always.sort_unstable();
        always.dedup();
        IpOnlyIndex {
            all: list.to_vec(),
            always,
            by_src,
            by_dst,
        }
    }

    /// The rules that may match this packet (unsorted, possibly repeated).
    pub fn candidates(&self, src: IpAddr, dst: IpAddr, out: &mut Vec<u32>) {
        let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
            out.extend_from_slice(&self.all);
            return;
        };
        out.extend_from_slice(&self.always);
        self.by_src.lookup(u32::from(s), out);
        self.by_dst.lookup(u32::from(d), out);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use proptest::prelude::*;

    use super::*;
    use crate::rules::RuleSetBuilder;

    const RULES: &str = r#"
alert ip [1.2.3.0/24,5.6.7.8] any -> $HOME_NET any (msg:"a"; sid:1;)
alert ip $HOME_NET any -> [1.2.3.128/25,9.9.9.9] any (msg:"b"; sid:2;)
alert ip 5.6.7.0/24 any <> any any (msg:"c"; sid:3;)
alert ip any any -> any any (msg:"d"; sid:4;)
alert ip [10.0.0.0/8,!10.1.0.0/16] any -> [5.6.7.8,1.2.3.4] any (msg:"e"; sid:5;)
alert ip ![1.2.3.0/24] any -> 9.9.9.0/30 any (msg:"f"; sid:6;)
alert ip [9.9.9.2,2001:db8::1] any -> any any (msg:"g"; sid:7;)
alert ip [2001:db8::/32] any -> any any (msg:"h"; sid:8;)
"#;

    fn rules() -> Vec<Rule> {
        let mut b = RuleSetBuilder::default();
        let rep = b.add_text("ip.rules", RULES);
        assert!(rep.skipped.is_empty(), "{:?}", rep.skipped);
        b.build().rules().to_vec()
    }

    const ADDRS: [[u8; 4]; 9] = [
        [1, 2, 3, 4],
        [1, 2, 3, 200],
        [5, 6, 7, 8],
        [5, 6, 7, 9],
        [9, 9, 9, 9],
        [9, 9, 9, 2],
        [10, 0, 0, 1],
        [10, 1, 0, 1],
        [192, 168, 1, 1],
    ];

    proptest! {
        /// Every rule whose header accepts the addresses is a candidate.
        #[test]
        fn candidates_cover_every_match(s in 0..9usize, d in 0..9usize) {
            let rules = rules();
            let list: Vec<u32> = (0..u32::try_from(rules.len()).unwrap_or(0)).collect();
            let idx = IpOnlyIndex::build(&list, &rules);
            let addr = |i: usize| IpAddr::from(Ipv4Addr::from(ADDRS.get(i).copied().unwrap_or_default()));
            let (src, dst) = (addr(s), addr(d));
            let mut cand = Vec::new();
            idx.candidates(src, dst, &mut cand);
            for (i, r) in rules.iter().enumerate() {
                let m = (r.src.contains(src) && r.dst.contains(dst))
                    || (r.direction == Direction::Both && r.src.contains(dst) && r.dst.contains(src));
                if m {
                    prop_assert!(cand.iter().any(|&c| c as usize == i), "sid {} missing", r.sid);
                }
            }
        }
    }

    #[test]
    fn narrow_side_indexed_wide_and_bidirectional_always() {
        let rules = rules();
        let list: Vec<u32> = (0..u32::try_from(rules.len()).unwrap_or(0)).collect();
        let idx = IpOnlyIndex::build(&list, &rules);
        let sid = |v: &[u32]| {
            let mut s: Vec<u32> = v
                .iter()
                .filter_map(|&i| rules.get(i as usize).map(|r| r.sid))
                .collect();
            s.sort_unstable();
            s.dedup();
            s
        };
        // `any -> any` and `<>` are always candidates; nothing else for unrelated addresses.
        let mut c = Vec::new();
        idx.candidates([8, 8, 8, 8].into(), [8, 8, 4, 4].into(), &mut c);
        assert_eq!(sid(&c), vec![3, 4]);
        // IPv6 gets everything.
        let mut c = Vec::new();
        idx.candidates("2001:db8::1".parse().unwrap(), [8, 8, 4, 4].into(), &mut c);
        assert_eq!(c.len(), rules.len());
    }
}
