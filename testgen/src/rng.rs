//! A tiny seeded PRNG for "random-looking" fields (ports, sequence numbers). SplitMix64: fixed
//! output for a fixed seed on every platform, no dependency.

/// SplitMix64 (Steele, Lea, Flood 2014).
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator from a seed.
    pub const fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next 32 random bits (the high half).
    pub fn next_u32(&mut self) -> u32 {
        let [a, b, c, d, ..] = self.next_u64().to_be_bytes();
        u32::from_be_bytes([a, b, c, d])
    }

    /// The next 16 random bits (the high quarter).
    pub fn next_u16(&mut self) -> u16 {
        let [a, b, ..] = self.next_u64().to_be_bytes();
        u16::from_be_bytes([a, b])
    }

    /// A value in `lo..=hi` (slightly biased, which does not matter here). `lo > hi` yields `lo`.
    pub fn range_u16(&mut self, lo: u16, hi: u16) -> u16 {
        let span = u32::from(hi.saturating_sub(lo)) + 1;
        let off = u32::from(self.next_u16()) % span;
        // off < span <= 65536 - lo, so lo + off fits; the fallback is unreachable.
        u16::try_from(u32::from(lo) + off).unwrap_or(lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_value() {
        // First output of SplitMix64 seeded with 0 (reference implementation).
        assert_eq!(SplitMix64::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn range_stays_in_bounds() {
        let mut r = SplitMix64::new(7);
        for _ in 0..10_000 {
            let v = r.range_u16(1024, u16::MAX);
            assert!(v >= 1024);
        }
        assert_eq!(r.range_u16(9, 3), 9);
    }
}
