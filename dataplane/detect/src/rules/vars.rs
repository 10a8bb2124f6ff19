//! Address and port variables (`$HOME_NET`, `$HTTP_PORTS`, ...) and the address/port
//! expressions of a rule header, compiled into sorted interval sets.
//!
//! An expression is resolved once at load: variables are substituted (recursively, at most
//! [`MAX_VAR_DEPTH`] deep), lists become unions, `!` becomes a complement. A list with negated
//! members is `(union of positives, or everything if there are none) minus (union of negatives)`,
//! which is how Suricata reads `[10.0.0.0/8,!10.1.0.0/16]` and `[!1.2.3.4,!5.6.7.8]`.
//! Matching is then a binary search, whatever the size of the list.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

/// How deep variables may refer to other variables (`$EXTERNAL_NET` -> `$HOME_NET` -> ...).
/// Guards against `A: $B`, `B: $A` loops.
pub const MAX_VAR_DEPTH: usize = 16;

/// Nesting depth of `[...]` lists; rule text is untrusted and recursion must stay bounded.
pub const MAX_LIST_DEPTH: usize = 32;

/// Why an address or port expression could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarError {
    /// `$NAME` is not defined.
    #[error("undefined variable ${0}")]
    Undefined(String),
    /// A variable refers to itself, directly or not, or nests too deep.
    #[error("variable ${0} nests deeper than {MAX_VAR_DEPTH} (loop?)")]
    TooDeep(String),
    /// The text is not an address, prefix, port, range or list.
    #[error("invalid {what} `{text}`")]
    Invalid {
        /// "address" or "port".
        what: &'static str,
        /// The offending text.
        text: String,
    },
    /// The expression matches nothing (e.g. `!any`), which Suricata rejects.
    #[error("{0} expression matches nothing")]
    Empty(&'static str),
}

/// A set of closed intervals, sorted and disjoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct IntervalSet<T> {
    ranges: Vec<(T, T)>,
}

/// Integer types an [`IntervalSet`] can hold.
pub trait Bound: Copy + Ord + std::fmt::Debug {
    /// Smallest value.
    const MIN: Self;
    /// Largest value.
    const MAX: Self;
    /// `self + 1`, or `None` at `MAX`.
    fn succ(self) -> Option<Self>;
    /// `self - 1`, or `None` at `MIN`.
    fn pred(self) -> Option<Self>;
}

macro_rules! bound {
    ($t:ty) => {
        impl Bound for $t {
            const MIN: Self = <$t>::MIN;
            const MAX: Self = <$t>::MAX;
            fn succ(self) -> Option<Self> {
                self.checked_add(1)
            }
            fn pred(self) -> Option<Self> {
                self.checked_sub(1)
            }
        }
    };
}
bound!(u16);
bound!(u32);
bound!(u128);

impl<T: Bound> IntervalSet<T> {
    /// The empty set.
    pub fn empty() -> Self {
        IntervalSet { ranges: Vec::new() }
    }

    /// Every value.
    pub fn full() -> Self {
        IntervalSet {
            ranges: vec![(T::MIN, T::MAX)],
        }
    }

    /// One interval (bounds in any order).
    pub fn range(a: T, b: T) -> Self {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        IntervalSet {
            ranges: vec![(lo, hi)],
        }
    }

    /// True if no value is in the set.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// True if every value is in the set.
    pub fn is_full(&self) -> bool {
        self.ranges.as_slice() == [(T::MIN, T::MAX)]
    }

    /// The intervals, sorted and disjoint.
    pub fn ranges(&self) -> &[(T, T)] {
        &self.ranges
    }

    /// Membership by binary search.
    pub fn contains(&self, v: T) -> bool {
        let i = self.ranges.partition_point(|&(lo, _)| lo <= v);
        i > 0 && self.ranges.get(i - 1).is_some_and(|&(_, hi)| v <= hi)
    }

    /// Union.
    pub fn union(&self, other: &Self) -> Self {
        let mut all: Vec<(T, T)> = self.ranges.iter().chain(&other.ranges).copied().collect();
        all.sort_unstable();
        let mut out: Vec<(T, T)> = Vec::with_capacity(all.len());
        for (lo, hi) in all {
            if let Some(last) = out.last_mut() {
                let adjacent = last.1.succ().is_none_or(|n| lo <= n);
                if adjacent {
                    if hi > last.1 {
                        last.1 = hi;
                    }
                    continue;
                }
            }
            out.push((lo, hi));
        }
        IntervalSet { ranges: out }
    }

    /// Complement.
    pub fn complement(&self) -> Self {
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        let mut next = Some(T::MIN);
        for &(lo, hi) in &self.ranges {
            if let Some(n) = next
                && n < lo
                && let Some(p) = lo.pred()
            {
                out.push((n, p));
            }
            next = hi.succ();
        }
        if let Some(n) = next {
            out.push((n, T::MAX));
        }
        IntervalSet { ranges: out }
    }

    /// `self` minus `other`.
    pub fn minus(&self, other: &Self) -> Self {
        self.complement().union(other).complement()
    }
}

/// A compiled address expression: IPv4 and IPv6 interval sets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AddrSet {
    v4: IntervalSet<u32>,
    v6: IntervalSet<u128>,
}

impl AddrSet {
    /// `any`.
    pub fn any() -> Self {
        AddrSet {
            v4: IntervalSet::full(),
            v6: IntervalSet::full(),
        }
    }

    fn empty() -> Self {
        AddrSet {
            v4: IntervalSet::empty(),
            v6: IntervalSet::empty(),
        }
    }

    /// True for `any` (used to skip the check and to find IP-only rules cheaply).
    pub fn is_any(&self) -> bool {
        self.v4.is_full() && self.v6.is_full()
    }

    /// True if nothing matches.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// The IPv4 intervals, whatever the IPv6 part holds.
    pub fn v4_ranges(&self) -> &[(u32, u32)] {
        self.v4.ranges()
    }

    /// Whether some IPv6 address is in the set.
    pub fn has_v6(&self) -> bool {
        !self.v6.is_empty()
    }

    /// The IPv4 part.
    pub fn v4(&self) -> &IntervalSet<u32> {
        &self.v4
    }

    /// The IPv6 part.
    pub fn v6(&self) -> &IntervalSet<u128> {
        &self.v6
    }

    /// Membership.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.v4.contains(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(m) if !self.v6.contains(u128::from(a)) => self.v4.contains(u32::from(m)),
                _ => self.v6.contains(u128::from(a)),
            },
        }
    }

    fn union(&self, o: &Self) -> Self {
        AddrSet {
            v4: self.v4.union(&o.v4),
            v6: self.v6.union(&o.v6),
        }
    }

    fn complement(&self) -> Self {
        AddrSet {
            v4: self.v4.complement(),
            v6: self.v6.complement(),
        }
    }

    fn minus(&self, o: &Self) -> Self {
        AddrSet {
            v4: self.v4.minus(&o.v4),
            v6: self.v6.minus(&o.v6),
        }
    }
}

/// A compiled port expression.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PortSet(IntervalSet<u16>);

impl PortSet {
    /// `any`.
    pub fn any() -> Self {
        PortSet(IntervalSet::full())
    }

    /// True for `any`.
    pub fn is_any(&self) -> bool {
        self.0.is_full()
    }

    /// Membership.
    pub fn contains(&self, p: u16) -> bool {
        self.0.contains(p)
    }

    /// The intervals.
    pub fn ranges(&self) -> &[(u16, u16)] {
        self.0.ranges()
    }
}

/// Address and port variables. Defaults are those of Suricata's shipped `suricata.yaml`.
#[derive(Clone, Debug)]
pub struct Vars {
    addr: HashMap<String, String>,
    port: HashMap<String, String>,
}

impl Default for Vars {
    fn default() -> Self {
        let mut v = Vars::empty();
        for (k, val) in [
            ("HOME_NET", "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"),
            ("EXTERNAL_NET", "!$HOME_NET"),
            ("HTTP_SERVERS", "$HOME_NET"),
            ("SMTP_SERVERS", "$HOME_NET"),
            ("SQL_SERVERS", "$HOME_NET"),
            ("DNS_SERVERS", "$HOME_NET"),
            ("TELNET_SERVERS", "$HOME_NET"),
            ("AIM_SERVERS", "$EXTERNAL_NET"),
            ("DC_SERVERS", "$HOME_NET"),
            ("DNP3_SERVER", "$HOME_NET"),
            ("DNP3_CLIENT", "$HOME_NET"),
            ("MODBUS_CLIENT", "$HOME_NET"),
            ("MODBUS_SERVER", "$HOME_NET"),
            ("ENIP_CLIENT", "$HOME_NET"),
            ("ENIP_SERVER", "$HOME_NET"),
        ] {
            v.set_address(k, val);
        }
        for (k, val) in [
            ("HTTP_PORTS", "80"),
            ("SHELLCODE_PORTS", "!80"),
            ("ORACLE_PORTS", "1521"),
            ("SSH_PORTS", "22"),
            ("DNP3_PORTS", "20000"),
            ("MODBUS_PORTS", "502"),
            ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
            ("FTP_PORTS", "21"),
            ("GENEVE_PORTS", "6081"),
            ("VXLAN_PORTS", "4789"),
            ("TEREDO_PORTS", "3544"),
            ("SIP_PORTS", "[5060,5061]"),
        ] {
            v.set_port(k, val);
        }
        v
    }
}

impl Vars {
    /// No variables at all.
    pub fn empty() -> Self {
        Vars {
            addr: HashMap::new(),
            port: HashMap::new(),
        }
    }

    /// Define or replace an address variable (name without `$`), e.g. `HOME_NET` = `[10.0.0.0/8]`.
    pub fn set_address(&mut self, name: &str, value: &str) {
        self.addr
            .insert(name.trim_start_matches('$').to_owned(), value.to_owned());
    }

    /// Define or replace a port variable (name without `$`), e.g. `HTTP_PORTS` = `[80,8080]`.
    pub fn set_port(&mut self, name: &str, value: &str) {
        self.port
            .insert(name.trim_start_matches('$').to_owned(), value.to_owned());
    }

    /// Compile an address expression.
    pub fn address(&self, text: &str) -> Result<AddrSet, VarError> {
        let set = set_expr(text.trim(), "address", &self.addr, 0, 0, &parse_cidr)?;
        if set.is_empty() {
            return Err(VarError::Empty("address"));
        }
        Ok(set)
    }

    /// Compile a port expression.
    pub fn ports(&self, text: &str) -> Result<PortSet, VarError> {
        let set = set_expr(text.trim(), "port", &self.port, 0, 0, &parse_port)?;
        if set.is_empty() {
            return Err(VarError::Empty("port"));
        }
        Ok(PortSet(set))
    }
}

/// The set operations the expression grammar needs, for addresses and ports alike.
trait SetAlgebra: Sized {
    fn none() -> Self;
    fn all() -> Self;
    fn union(&self, o: &Self) -> Self;
    fn minus(&self, o: &Self) -> Self;
    fn complement(&self) -> Self;
}

impl SetAlgebra for AddrSet {
    fn none() -> Self {
        AddrSet::empty()
    }
    fn all() -> Self {
        AddrSet::any()
    }
    fn union(&self, o: &Self) -> Self {
        AddrSet::union(self, o)
    }
    fn minus(&self, o: &Self) -> Self {
        AddrSet::minus(self, o)
    }
    fn complement(&self) -> Self {
        AddrSet::complement(self)
    }
}

impl<T: Bound> SetAlgebra for IntervalSet<T> {
    fn none() -> Self {
        IntervalSet::empty()
    }
    fn all() -> Self {
        IntervalSet::full()
    }
    fn union(&self, o: &Self) -> Self {
        IntervalSet::union(self, o)
    }
    fn minus(&self, o: &Self) -> Self {
        IntervalSet::minus(self, o)
    }
    fn complement(&self) -> Self {
        IntervalSet::complement(self)
    }
}

/// One expression, address or port: `!expr`, `$VAR` (looked up in `vars`, at most
/// [`MAX_VAR_DEPTH`] deep), `[a, !b, ...]` (at most [`MAX_LIST_DEPTH`] deep: the union of the
/// positive items, or everything when there is none, minus the negated ones), `any`, or a leaf.
fn set_expr<S: SetAlgebra>(
    t: &str,
    what: &'static str,
    vars: &HashMap<String, String>,
    vdepth: usize,
    ldepth: usize,
    leaf: &dyn Fn(&str) -> Option<S>,
) -> Result<S, VarError> {
    // Leading negations are counted here, not recursed on: a rule is up to 64 KiB long, and one
    // call per `!` of a `!!!!…` address overflowed the stack and aborted the process.
    let mut t = t;
    let mut negated = false;
    while let Some(rest) = t.strip_prefix('!') {
        negated = !negated;
        t = rest.trim();
    }
    if negated {
        return Ok(set_expr(t, what, vars, vdepth, ldepth, leaf)?.complement());
    }
    let inv = || VarError::Invalid {
        what,
        text: t.to_owned(),
    };
    if let Some(name) = t.strip_prefix('$') {
        if vdepth >= MAX_VAR_DEPTH {
            return Err(VarError::TooDeep(name.to_owned()));
        }
        let v = vars
            .get(name)
            .ok_or_else(|| VarError::Undefined(name.to_owned()))?;
        return set_expr(v.trim(), what, vars, vdepth + 1, ldepth, leaf);
    }
    if t.starts_with('[') {
        if ldepth >= MAX_LIST_DEPTH {
            return Err(inv());
        }
        let inner = t
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .ok_or_else(inv)?;
        let mut pos = S::none();
        let mut neg = S::none();
        let mut any_pos = false;
        for item in split_list(inner).ok_or_else(inv)? {
            let item = item.trim();
            if item.is_empty() {
                return Err(inv());
            }
            if let Some(rest) = item.strip_prefix('!') {
                neg = neg.union(&set_expr(
                    rest.trim(),
                    what,
                    vars,
                    vdepth,
                    ldepth + 1,
                    leaf,
                )?);
            } else {
                any_pos = true;
                pos = pos.union(&set_expr(item, what, vars, vdepth, ldepth + 1, leaf)?);
            }
        }
        let base = if any_pos { pos } else { S::all() };
        return Ok(base.minus(&neg));
    }
    if t.eq_ignore_ascii_case("any") {
        return Ok(S::all());
    }
    leaf(t).ok_or_else(inv)
}

/// A port leaf: `80`, `1024:65535`, `:1023`, `1024:`.
fn parse_port(t: &str) -> Option<IntervalSet<u16>> {
    let num = |s: &str| s.trim().parse::<u16>().ok();
    if let Some((a, b)) = t.split_once(':') {
        let lo = if a.trim().is_empty() { Some(0) } else { num(a) };
        let hi = if b.trim().is_empty() {
            Some(u16::MAX)
        } else {
            num(b)
        };
        return match (lo, hi) {
            (Some(lo), Some(hi)) if lo <= hi => Some(IntervalSet::range(lo, hi)),
            _ => None,
        };
    }
    let p = num(t)?;
    Some(IntervalSet::range(p, p))
}

/// Split a list body on top-level commas; `None` if brackets do not balance.
fn split_list(s: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.checked_sub(1)?,
            ',' if depth == 0 => {
                out.push(s.get(start..i)?);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    out.push(s.get(start..)?);
    Some(out)
}

/// `a.b.c.d`, `a.b.c.d/n`, `a.b.c.d/m.m.m.m`, IPv6 and IPv6/n.
fn parse_cidr(t: &str) -> Option<AddrSet> {
    let (addr, len) = match t.split_once('/') {
        Some((a, l)) => (a.trim(), Some(l.trim())),
        None => (t, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let mut set = AddrSet::empty();
    match ip {
        IpAddr::V4(a) => {
            let bits: u32 = match len {
                None => 32,
                Some(l) => match l.parse::<u32>() {
                    Ok(n) if n <= 32 => n,
                    Ok(_) => return None,
                    Err(_) => {
                        let m: Ipv4Addr = l.parse().ok()?;
                        let m = u32::from(m);
                        if m.leading_ones() + m.trailing_zeros() != 32 {
                            return None;
                        }
                        m.leading_ones()
                    }
                },
            };
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            let lo = u32::from(a) & mask;
            set.v4 = IntervalSet::range(lo, lo | !mask);
        }
        IpAddr::V6(a) => {
            let bits: u32 = match len {
                None => 128,
                Some(l) => l.parse::<u32>().ok().filter(|&n| n <= 128)?,
            };
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            let lo = u128::from(a) & mask;
            set.v6 = IntervalSet::range(lo, lo | !mask);
        }
    }
    Some(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn home_and_external_net() {
        let v = Vars::default();
        let home = v.address("$HOME_NET").unwrap();
        let ext = v.address("$EXTERNAL_NET").unwrap();
        for a in ["10.1.2.3", "192.168.1.1", "172.16.0.1", "172.31.255.255"] {
            assert!(home.contains(ip(a)) && !ext.contains(ip(a)), "{a}");
        }
        for a in ["8.8.8.8", "172.32.0.1", "2001:db8::1"] {
            assert!(!home.contains(ip(a)) && ext.contains(ip(a)), "{a}");
        }
    }

    #[test]
    fn lists_nested_and_negated() {
        let v = Vars::default();
        let s = v
            .address("[10.0.0.0/8,![10.1.0.0/16,!10.1.2.0/24],192.0.2.1]")
            .unwrap();
        assert!(s.contains(ip("10.2.0.1")));
        assert!(!s.contains(ip("10.1.0.1")));
        assert!(s.contains(ip("10.1.2.9")));
        assert!(s.contains(ip("192.0.2.1")));
        assert!(!s.contains(ip("192.0.2.2")));
        let only_neg = v.address("[!1.2.3.4,!5.6.7.8]").unwrap();
        assert!(only_neg.contains(ip("1.2.3.5")) && !only_neg.contains(ip("5.6.7.8")));
        let v6 = v.address("[2001:db8::/32, !2001:db8::1]").unwrap();
        assert!(v6.contains(ip("2001:db8::2")) && !v6.contains(ip("2001:db8::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(
            v.address("1.2.3.4/255.255.0.0")
                .unwrap()
                .contains(ip("1.2.9.9"))
        );
    }

    #[test]
    fn bad_addresses() {
        let v = Vars::default();
        assert_eq!(v.address("$NOPE"), Err(VarError::Undefined("NOPE".into())));
        assert!(matches!(
            v.address("1.2.3.4/33"),
            Err(VarError::Invalid { .. })
        ));
        assert!(matches!(
            v.address("[1.2.3.4"),
            Err(VarError::Invalid { .. })
        ));
        assert_eq!(v.address("!any"), Err(VarError::Empty("address")));
        let mut l = Vars::empty();
        l.set_address("A", "$B");
        l.set_address("B", "$A");
        assert!(matches!(l.address("$A"), Err(VarError::TooDeep(_))));
    }

    #[test]
    fn ports() {
        let v = Vars::default();
        let p = v.ports("[80,1024:,!8080,:21]").unwrap();
        for (port, want) in [
            (80, true),
            (21, true),
            (0, true),
            (22, false),
            (1024, true),
            (8080, false),
            (65535, true),
        ] {
            assert_eq!(p.contains(port), want, "{port}");
        }
        assert!(v.ports("$HTTP_PORTS").unwrap().contains(80));
        assert!(!v.ports("$SHELLCODE_PORTS").unwrap().contains(80));
        assert!(v.ports("$FILE_DATA_PORTS").unwrap().contains(143));
        assert!(v.ports("[5060, 5061]").unwrap().contains(5061));
        assert!(v.ports("70000").is_err());
        assert!(v.ports("90:80").is_err());
        let mut custom = Vars::default();
        custom.set_port("HTTP_PORTS", "[80,8080]");
        assert!(custom.ports("$HTTP_PORTS").unwrap().contains(8080));
    }

    #[test]
    fn many_negations_count_without_recursion() {
        // Enough `!` to overflow a test thread's 2 MiB stack when each one was a call.
        let v = Vars::default();
        let odd = format!("{}1.2.3.4", "!".repeat(60_001));
        let s = v.address(&odd).unwrap();
        assert!(!s.contains(ip("1.2.3.4")) && s.contains(ip("1.2.3.5")));
        let even = format!("{}1.2.3.4", "! ".repeat(60_000));
        let s = v.address(&even).unwrap();
        assert!(s.contains(ip("1.2.3.4")) && !s.contains(ip("1.2.3.5")));
        let list = format!("[{}80, 1:10]", "!".repeat(60_001));
        let p = v.ports(&list).unwrap();
        assert!(!p.contains(80) && p.contains(5) && !p.contains(11));
        assert!(v.address(&"!".repeat(60_000)).is_err());
    }

    #[test]
    fn interval_edges() {
        let s = IntervalSet::<u16>::range(0, 10).union(&IntervalSet::range(11, u16::MAX));
        assert!(s.is_full());
        assert!(s.complement().is_empty());
        assert_eq!(
            IntervalSet::<u16>::empty().complement(),
            IntervalSet::full()
        );
    }
}
