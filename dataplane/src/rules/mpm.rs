//! Multi-pattern matcher of the prefilter: which fast patterns occur in a buffer.
//!
//! The engine needs the *set* of patterns present, not every occurrence. An unanchored
//! Aho-Corasick search touches the automaton on every byte, and with hundreds of patterns its
//! tables miss the cache on most of them. Here a pass over the buffer first tests each byte
//! pair against a bitmap of the patterns' first two bytes (8 KiB, every case variant set) and a table of
//! one-byte patterns; only where a pattern can start does an anchored walk of the
//! (case-insensitive) Aho-Corasick NFA run, usually for a byte or two. Exact: every occurrence
//! of a pattern of two bytes or more starts at a position whose pair is in the bitmap, and every
//! pattern the walk reports does occur (at that position or, for a suffix reached through the
//! walk, a later one).

use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, MatchKind};

/// Fast patterns of one buffer kind, compiled.
pub struct Mpm {
    nfa: NFA,
    /// Bit `a << 8 | b` is set if a pattern of two bytes or more starts with `a b` in some
    /// case (every case variant is set, so the scan needs no case folding).
    pairs: Box<[u64; 1024]>,
    /// One-byte patterns: (lowercase byte, pattern id).
    single: Vec<(u8, u32)>,
}

impl std::fmt::Debug for Mpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpm")
            .field("patterns", &self.nfa.patterns_len())
            .finish()
    }
}

impl Mpm {
    /// Compile lowercase, non-empty patterns; `None` if there are none or the automaton cannot
    /// be built.
    pub fn new(patterns: &[Vec<u8>]) -> Option<Mpm> {
        if patterns.is_empty() {
            return None;
        }
        let nfa = NFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(patterns)
            .ok()?;
        let mut pairs = Box::new([0u64; 1024]);
        let mut single = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            match p.as_slice() {
                [] => {}
                [a] => single.push((a.to_ascii_lowercase(), u32::try_from(i).unwrap_or(u32::MAX))),
                [a, b, ..] => {
                    // Every case of the two bytes, so the scan indexes with raw bytes.
                    for x in [a.to_ascii_lowercase(), a.to_ascii_uppercase()] {
                        for y in [b.to_ascii_lowercase(), b.to_ascii_uppercase()] {
                            let k = pair(x, y);
                            if let Some(w) = pairs.get_mut(k / 64) {
                                *w |= 1 << (k % 64);
                            }
                        }
                    }
                }
            }
        }
        Some(Mpm { nfa, pairs, single })
    }

    /// Number of patterns.
    pub fn patterns_len(&self) -> usize {
        self.nfa.patterns_len()
    }

    /// Memory of the tables.
    pub fn memory_usage(&self) -> usize {
        self.nfa.memory_usage() + size_of::<[u64; 1024]>() + self.single.capacity() * 8
    }

    /// Call `f` with the id of each pattern occurring in `hay` (possibly more than once).
    pub fn find(&self, hay: &[u8], mut f: impl FnMut(usize)) {
        let Ok(start) = self.nfa.start_state(Anchored::Yes) else {
            return;
        };
        // One-byte patterns (rare): a vectorised search each, stopping at the first hit.
        for &(b, p) in &self.single {
            if memchr::memchr2(b, b.to_ascii_uppercase(), hay).is_some() {
                f(p as usize);
            }
        }
        let mut from = 0;
        while let Some(i) = next_start(&self.pairs, hay, from) {
            self.walk(start, hay.get(i..).unwrap_or_default(), &mut f);
            from = i + 1;
        }
    }

    /// Anchored walk from the start of `hay`, reporting the patterns of each state passed.
    fn walk(&self, start: aho_corasick::automaton::StateID, hay: &[u8], f: &mut impl FnMut(usize)) {
        let mut sid = start;
        for &b in hay {
            sid = self.nfa.next_state(Anchored::Yes, sid, b);
            if self.nfa.is_special(sid) {
                if self.nfa.is_dead(sid) {
                    return;
                }
                for k in 0..self.nfa.match_len(sid) {
                    f(self.nfa.match_pattern(sid, k).as_usize());
                }
            }
        }
    }
}

/// The first position at or after `from` where a pattern can start (its byte pair is in the
/// bitmap). A loop of its own, apart from the walks and the caller's callback, so that it keeps
/// its state in registers: it runs on every byte.
#[inline(never)]
fn next_start(pairs: &[u64; 1024], hay: &[u8], from: usize) -> Option<usize> {
    let rest = hay.get(from..)?;
    rest.windows(2)
        .position(|w| match *w {
            [a, b] => {
                let k = pair(a, b);
                // `k >> 6` < 1024 for any two bytes: the lookup never misses.
                pairs.get(k >> 6).is_some_and(|w| w >> (k & 63) & 1 == 1)
            }
            _ => false,
        })
        .map(|p| p + from)
}

fn pair(a: u8, b: u8) -> usize {
    usize::from(a) << 8 | usize::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn found(pats: &[&[u8]], hay: &[u8]) -> Vec<usize> {
        let list: Vec<Vec<u8>> = pats.iter().map(|p| p.to_ascii_lowercase()).collect();
        let Some(m) = Mpm::new(&list) else {
            return Vec::new();
        };
        let mut v = Vec::new();
        m.find(hay, |p| v.push(p));
        v.sort_unstable();
        v.dedup();
        v
    }

    fn naive(pats: &[&[u8]], hay: &[u8]) -> Vec<usize> {
        let hay = hay.to_ascii_lowercase();
        pats.iter()
            .enumerate()
            .filter(|(_, p)| {
                let p = p.to_ascii_lowercase();
                !p.is_empty() && hay.windows(p.len()).any(|w| w == p.as_slice())
            })
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn overlaps_suffixes_case_and_single_bytes() {
        let pats: [&[u8]; 6] = [b"abc", b"bc", b"BCD", b"x", b"\x00\x00", b"cab"];
        assert_eq!(found(&pats, b"zzABCDx"), vec![0, 1, 2, 3]);
        assert_eq!(found(&pats, b"cabc"), vec![0, 1, 5]);
        assert_eq!(found(&pats, b"\x00\x00"), vec![4]);
        assert_eq!(found(&pats, b"\x00"), Vec::<usize>::new());
        assert_eq!(found(&pats, b"X"), vec![3]);
        assert_eq!(found(&pats, b""), Vec::<usize>::new());
    }

    proptest! {
        /// The set of patterns found is the naive one, over a small alphabet so that overlaps
        /// and suffixes are common.
        #[test]
        fn same_as_naive(
            pats in proptest::collection::vec(proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'B'), Just(b'b'), Just(0u8), Just(b'c')], 1..5), 1..12),
            hay in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'A'), Just(b'b'), Just(0u8), Just(b'c'), Just(b'd')], 0..40),
        ) {
            let refs: Vec<&[u8]> = pats.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(found(&refs, &hay), naive(&refs, &hay));
        }
    }
}
