//! `hostbits`: named bits kept per host address across flows (Suricata's host table bits).
//!
//! A bit is set on the packet's source or destination address (`src` by default, as Suricata)
//! and expires [`HOSTBIT_EXPIRE_SECS`] after it was last set, Suricata's default. The table is
//! per worker, as threshold counters are: a host's flows that hash to another worker do not see
//! its bits (Suricata's host table is shared by all threads).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::time::Timestamp;

/// Seconds a set bit lives (Suricata's default hostbit expiry).
pub const HOSTBIT_EXPIRE_SECS: u64 = 30;

/// Most (host, bit) entries kept, 48 bytes each in the table (about 12 MiB). Traffic can make a
/// rule set a bit on any number of addresses: when full, the expired entries are pruned; if it
/// is still full the `set` is not kept (fail-open: a later `isset` does not match, an
/// `isnotset` does) and [`HostBits::overflows`] counts it.
pub const MAX_HOSTBITS: usize = 1 << 18;

/// The hostbits of one worker.
#[derive(Debug, Default)]
pub struct HostBits {
    /// (host, bit id) -> when the bit expires.
    map: HashMap<(IpAddr, u32), Timestamp>,
    overflows: u64,
}

impl HostBits {
    /// Is `bit` set on `host` at `now`?
    pub fn is_set(&self, host: IpAddr, bit: u32, now: Timestamp) -> bool {
        self.map.get(&(host, bit)).is_some_and(|&exp| exp > now)
    }

    /// Set `bit` on `host` (again: its expiry starts over).
    pub fn set(&mut self, host: IpAddr, bit: u32, now: Timestamp) {
        if self.map.len() >= MAX_HOSTBITS && !self.map.contains_key(&(host, bit)) {
            self.map.retain(|_, exp| *exp > now);
            if self.map.len() >= MAX_HOSTBITS {
                self.overflows = self.overflows.saturating_add(1);
                return;
            }
        }
        self.map
            .insert((host, bit), now.plus_secs(HOSTBIT_EXPIRE_SECS));
    }

    /// Clear `bit` on `host`.
    pub fn unset(&mut self, host: IpAddr, bit: u32) {
        self.map.remove(&(host, bit));
    }

    /// Flip `bit` on `host`.
    pub fn toggle(&mut self, host: IpAddr, bit: u32, now: Timestamp) {
        if self.is_set(host, bit, now) {
            self.unset(host, bit);
        } else {
            self.set(host, bit, now);
        }
    }

    /// Sets not kept because the table was full.
    pub fn overflows(&self) -> u64 {
        self.overflows
    }

    /// Entries held (expired ones included until pruned).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if no entry is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_expires_and_toggles() {
        let h: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Timestamp::from_secs_micros(100, 0);
        let mut b = HostBits::default();
        assert!(!b.is_set(h, 1, t0));
        b.set(h, 1, t0);
        assert!(b.is_set(h, 1, t0.plus_secs(29)));
        assert!(!b.is_set(h, 2, t0) && !b.is_set(other, 1, t0));
        assert!(!b.is_set(h, 1, t0.plus_secs(HOSTBIT_EXPIRE_SECS)));
        b.toggle(h, 1, t0);
        assert!(!b.is_set(h, 1, t0));
        b.toggle(h, 1, t0);
        assert!(b.is_set(h, 1, t0));
        b.unset(h, 1);
        assert!(!b.is_set(h, 1, t0));
    }

    // Full: expired entries make room; when none has expired, the set is not kept and counted.
    #[test]
    fn full_table_prunes_then_refuses() {
        let t0 = Timestamp::from_secs_micros(0, 0);
        let mut b = HostBits::default();
        for i in 0..u32::try_from(MAX_HOSTBITS).unwrap() {
            b.set(IpAddr::from(i.to_be_bytes()), 0, t0);
        }
        let late: IpAddr = "192.0.2.1".parse().unwrap();
        b.set(late, 0, t0.plus_secs(1));
        assert!(!b.is_set(late, 0, t0.plus_secs(1)));
        assert_eq!(b.overflows(), 1);
        let later = t0.plus_secs(HOSTBIT_EXPIRE_SECS + 1);
        b.set(late, 0, later);
        assert!(b.is_set(late, 0, later));
        assert_eq!(b.len(), 1);
    }
}
