//! Target-based TCP handling (Suricata's `host-os-policy`): which operating system a receiving
//! host runs decides which bytes of overlapping segments it keeps and how it validates TCP
//! timestamps. An IDS that reassembles differently from the receiver can be shown bytes the
//! receiver never sees (Novak and Sturges, "Target-Based TCP Stream Reassembly", 2007).
//!
//! [`HostOsPolicy`] maps address prefixes to an [`OsPolicy`]; the most specific prefix wins and
//! an address no prefix covers gets Suricata's default, [`OsPolicy::Bsd`]. The table is a fixed
//! array ([`MAX_HOST_OS_PREFIXES`]) so that the worker's settings stay `Copy`.

use core::net::IpAddr;

/// An operating system's TCP behaviour (Suricata's `OS_POLICY_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OsPolicy {
    /// BSD, Suricata's default (`OS_POLICY_DEFAULT`).
    #[default]
    Bsd,
    /// `bsd-right`.
    BsdRight,
    /// `old-linux` (Linux 2.2 and older).
    OldLinux,
    /// `linux`.
    Linux,
    /// `old-solaris`.
    OldSolaris,
    /// `solaris`.
    Solaris,
    /// `hpux10`.
    Hpux10,
    /// `hpux11`.
    Hpux11,
    /// `irix`.
    Irix,
    /// `macos`.
    Macos,
    /// `windows`.
    Windows,
    /// `vista`.
    Vista,
    /// `windows2k3`.
    Windows2k3,
    /// `first`: the first bytes received win every overlap.
    First,
    /// `last`: the last bytes received win every overlap.
    Last,
}

impl OsPolicy {
    /// Every policy with its `host-os-policy` name.
    pub const NAMES: [(&'static str, OsPolicy); 15] = [
        ("bsd", OsPolicy::Bsd),
        ("bsd-right", OsPolicy::BsdRight),
        ("old-linux", OsPolicy::OldLinux),
        ("linux", OsPolicy::Linux),
        ("old-solaris", OsPolicy::OldSolaris),
        ("solaris", OsPolicy::Solaris),
        ("hpux10", OsPolicy::Hpux10),
        ("hpux11", OsPolicy::Hpux11),
        ("irix", OsPolicy::Irix),
        ("macos", OsPolicy::Macos),
        ("windows", OsPolicy::Windows),
        ("vista", OsPolicy::Vista),
        ("windows2k3", OsPolicy::Windows2k3),
        ("first", OsPolicy::First),
        ("last", OsPolicy::Last),
    ];

    /// The policy a `host-os-policy` key names.
    pub fn by_name(name: &str) -> Option<OsPolicy> {
        let name = name.trim();
        Self::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, p)| *p)
    }

    /// Whether a receiver with this policy takes a new segment's bytes over the bytes of an
    /// earlier segment it overlaps (Suricata's `DoHandleDataOverlap`, IDS mode). `seg` and
    /// `old` are `[start, end)` absolute stream offsets of the new and the earlier segment.
    pub fn new_data_wins(self, seg: (u64, u64), old: (u64, u64)) -> bool {
        use OsPolicy::*;
        let ((s, e), (os, oe)) = (seg, old);
        match self {
            Last => true,
            First => false,
            p if s == os => {
                // Starts with the earlier segment: ending before it keeps the old bytes.
                e >= oe && (matches!(p, OldLinux | Solaris | Hpux11) || (e > oe && p == Linux))
            }
            p if s < os => {
                matches!(
                    p,
                    Bsd | Hpux10 | Irix | Windows | Windows2k3 | OldLinux | Linux | Macos
                ) || (e >= oe && matches!(p, Solaris | Hpux11))
            }
            p => e > oe && matches!(p, Solaris | Hpux11),
        }
    }
}

/// How many prefixes `host-os-policy` may list in all: a site lists its server ranges, not
/// hosts one by one; the cap keeps the table a fixed array.
pub const MAX_HOST_OS_PREFIXES: usize = 32;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Prefix {
    bits: u128,
    len: u8,
    v6: bool,
    policy: OsPolicy,
}

/// Address prefixes and their receiving host's [`OsPolicy`] (Suricata's `host-os-policy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostOsPolicy {
    prefixes: [Prefix; MAX_HOST_OS_PREFIXES],
    len: usize,
}

/// Why a `host-os-policy` entry was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostOsError {
    /// Not an OS name svm knows.
    #[error("unknown operating system {0:?}")]
    UnknownOs(String),
    /// Not an address or prefix.
    #[error("{0:?} is not an address or prefix")]
    BadPrefix(String),
    /// More prefixes than [`MAX_HOST_OS_PREFIXES`].
    #[error("more than {MAX_HOST_OS_PREFIXES} prefixes")]
    TooMany,
}

fn mask(len: u8, width: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let m = u128::MAX << (128 - u32::from(len));
        if width == 32 { m >> 96 } else { m }
    }
}

impl HostOsPolicy {
    /// Map the addresses of `list` (`[10.0.0.0/8, 2001:db8::1]`, `10.0.0.0/8, 1.2.3.4` or one
    /// prefix) to the OS `name`; refused entries change nothing.
    pub fn add(&mut self, name: &str, list: &str) -> Result<(), HostOsError> {
        let policy = OsPolicy::by_name(name).ok_or_else(|| HostOsError::UnknownOs(name.into()))?;
        let body = list.trim().trim_start_matches('[').trim_end_matches(']');
        let mut new = Vec::new();
        for item in body.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let item = item.trim_matches(|c| c == '"' || c == '\'');
            let (addr, len) = match item.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (item, None),
            };
            let bad = || HostOsError::BadPrefix(item.to_owned());
            let ip: IpAddr = addr.trim().parse().map_err(|_| bad())?;
            let (bits, v6, width) = match ip {
                IpAddr::V4(a) => (u128::from(a.to_bits()), false, 32u8),
                IpAddr::V6(a) => (a.to_bits(), true, 128u8),
            };
            let len = match len {
                Some(l) => l
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= width)
                    .ok_or_else(bad)?,
                None => width,
            };
            new.push(Prefix {
                bits: bits & mask(len, width),
                len,
                v6,
                policy,
            });
        }
        if self.len + new.len() > MAX_HOST_OS_PREFIXES {
            return Err(HostOsError::TooMany);
        }
        for p in new {
            if let Some(slot) = self.prefixes.get_mut(self.len) {
                *slot = p;
                self.len += 1;
            }
        }
        Ok(())
    }

    /// The policy of the host at `addr` ([`Self::lookup`]).
    pub fn lookup_addr(&self, addr: IpAddr) -> OsPolicy {
        if self.len == 0 {
            return OsPolicy::Bsd;
        }
        match addr {
            IpAddr::V4(a) => self.lookup(u128::from(a.to_bits()), false),
            IpAddr::V6(a) => self.lookup(a.to_bits(), true),
        }
    }

    /// Whether no prefix is listed (every host gets the default).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The policy of the host with these address bits: the longest listed prefix that covers
    /// it, else [`OsPolicy::Bsd`].
    pub fn lookup(&self, bits: u128, v6: bool) -> OsPolicy {
        let width = if v6 { 128 } else { 32 };
        self.prefixes
            .get(..self.len)
            .unwrap_or_default()
            .iter()
            .filter(|p| p.v6 == v6 && bits & mask(p.len, width) == p.bits)
            .max_by_key(|p| p.len)
            .map_or(OsPolicy::Bsd, |p| p.policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u128 {
        u128::from(s.parse::<core::net::Ipv4Addr>().unwrap().to_bits())
    }

    // The most specific prefix wins; an address nobody lists is BSD; bad entries are refused
    // and leave the table as it was.
    #[test]
    fn longest_prefix_wins() {
        let mut h = HostOsPolicy::default();
        h.add("windows", "[0.0.0.0/0]").unwrap();
        h.add("old-linux", "[2.2.2.2]").unwrap();
        h.add("linux", "10.0.0.0/8, 2001:db8::/32").unwrap();
        assert_eq!(h.lookup(v4("2.2.2.2"), false), OsPolicy::OldLinux);
        assert_eq!(h.lookup(v4("2.2.2.3"), false), OsPolicy::Windows);
        assert_eq!(h.lookup(v4("10.9.8.7"), false), OsPolicy::Linux);
        let v6 = "2001:db8::5"
            .parse::<core::net::Ipv6Addr>()
            .unwrap()
            .to_bits();
        assert_eq!(h.lookup(v6, true), OsPolicy::Linux);
        assert_eq!(h.lookup(1, true), OsPolicy::Bsd);
        assert!(HostOsPolicy::default().lookup(v4("1.1.1.1"), false) == OsPolicy::Bsd);
        let before = h;
        assert!(matches!(
            h.add("plan9", "[1.2.3.4]"),
            Err(HostOsError::UnknownOs(_))
        ));
        assert!(matches!(
            h.add("linux", "[1.2.3.4/33]"),
            Err(HostOsError::BadPrefix(_))
        ));
        assert!(matches!(
            h.add("linux", "[1.2.3.4, x]"),
            Err(HostOsError::BadPrefix(_))
        ));
        assert_eq!(h, before);
        let many: Vec<String> = (0..40).map(|i| format!("10.0.{i}.0/24")).collect();
        assert_eq!(h.add("irix", &many.join(",")), Err(HostOsError::TooMany));
        assert_eq!(h, before);
        assert!(h.add("bsd", "[]").is_ok());
        assert_eq!(h, before);
    }

    // Suricata's overlap table, one case per branch.
    #[test]
    fn overlap_decisions_follow_suricata() {
        use OsPolicy::*;
        let same = ((0, 4), (0, 4));
        assert!(OldLinux.new_data_wins(same.0, same.1));
        assert!(Solaris.new_data_wins(same.0, same.1));
        assert!(!Linux.new_data_wins(same.0, same.1));
        assert!(!Bsd.new_data_wins(same.0, same.1));
        assert!(!Windows.new_data_wins(same.0, same.1));
        assert!(Linux.new_data_wins((0, 6), (0, 4)));
        assert!(!OldLinux.new_data_wins((0, 3), (0, 4)));
        // Starting before the earlier segment.
        for p in [
            Bsd, Hpux10, Irix, Windows, Windows2k3, OldLinux, Linux, Macos,
        ] {
            assert!(p.new_data_wins((0, 3), (2, 6)), "{p:?}");
        }
        assert!(!Solaris.new_data_wins((0, 3), (2, 6)));
        assert!(Solaris.new_data_wins((0, 6), (2, 6)));
        assert!(!Vista.new_data_wins((0, 6), (2, 6)));
        // Starting after it.
        assert!(Hpux11.new_data_wins((3, 9), (2, 6)));
        assert!(!Bsd.new_data_wins((3, 9), (2, 6)));
        assert!(!Solaris.new_data_wins((3, 5), (2, 6)));
        assert!(Last.new_data_wins((3, 5), (2, 6)));
        assert!(!First.new_data_wins((0, 9), (2, 6)));
    }
}
