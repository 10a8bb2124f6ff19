//! Multi-pattern matcher of the prefilter: which fast patterns occur in a buffer.
//!
//! The engine needs the *set* of patterns present, not every occurrence. An unanchored Aho-Corasick
//! search touches the automaton on every byte, and with hundreds of patterns its tables miss the
//! cache on most of them. Here a pass over the buffer first tests each byte pair against a bitmap
//! of the patterns' first two bytes (8 KiB, every case variant set) and a table of one-byte
//! patterns (when no pattern has exactly two bytes, only even positions are tested, against a
//! bitmap that also holds each pattern's second pair). Where a pair hits, a second, stricter test
//! follows: the position's first four bytes (case folded) hashed into a bitmap of the four-byte
//! prefixes of the patterns of four bytes or more, or its pair in a bitmap of the patterns of two
//! or three bytes. Only where that passes does an anchored walk of the (case-insensitive) trie of
//! the patterns run ([`super::trie`]). Exact: every occurrence of a pattern of two bytes or more
//! starts at a position the pass reports and the second test lets through, and every pattern the
//! walk reports occurs at that position.
//!
//! The two matchers of a signature group's parts scan the same buffers in one pass; with their
//! [`PairUnion`] (built with the group) the pass tests one bitmap per position, and a matcher's
//! own only where the union hits.

use super::trie::Trie;

/// Fast patterns of one buffer kind, compiled.
pub struct Mpm {
    trie: Trie,
    /// Bit [`pair`]`(a, b)` is set if a pattern of two bytes or more starts with `a b` in some
    /// case (every case variant is set, so the scan needs no case folding).
    pairs: Box<[u64; 1024]>,
    /// When no pattern has two bytes exactly: `pairs` and the pairs at byte 1 of each pattern,
    /// so that a pass testing only even positions still sees every occurrence (one starting at
    /// an odd position has its second pair at an even one).
    halves: Option<Box<[u64; 1024]>>,
    /// One-byte patterns: (lowercase byte, pattern id).
    single: Vec<(u8, u32)>,
    /// Two-byte patterns searched on their own (see [`MAX_TWO_NEEDLES`]): a finder for each
    /// case variant, and the pattern id. Empty when they are in the pair tables instead.
    two: Vec<(Vec<memchr::memmem::Finder<'static>>, u32)>,
    /// Bit [`quad`] of the first four bytes of each pattern of four bytes or more.
    quads: Box<[u64; QUAD_WORDS]>,
    /// Bit [`short_pair`] of the first two bytes of each pattern of two or three bytes.
    short: [u64; 16],
    /// Whether `short` has a bit set (most matchers have no pattern of two or three bytes).
    has_short: bool,
}

/// At most this many two-byte needles (a pattern's case variants counted) are searched on their
/// own, each with a vectorised `memmem` that stops at the first occurrence; the other patterns
/// then need no pair test at odd positions, which halves the pass over the bytes. A two-byte
/// pattern is often a binary token (`|00 00|`) that occurs many times in a payload: found
/// once, it is not looked for again, where the pass walked the trie at each occurrence. Past
/// this many needles their searches would cost more than the odd positions.
const MAX_TWO_NEEDLES: usize = 8;

/// An empty pair bitmap (stands in where a matcher has no `halves`, never reached).
static NO_PAIRS: [u64; 1024] = [0; 1024];

/// Bits of the four-byte prefix hash: 2^14 bits, 2 KiB (a larger table misses the L1 cache
/// more than its fewer false hits save).
const QUAD_BITS: u32 = 14;
/// The words of the four-byte prefix bitmap.
const QUAD_WORDS: usize = (1 << QUAD_BITS) / 64;

impl std::fmt::Debug for Mpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpm")
            .field("patterns", &self.trie.patterns_len())
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
        let trie = Trie::new(patterns)?;
        let two_needles: usize = patterns
            .iter()
            .filter_map(|p| match p.as_slice() {
                &[a, b] => Some(case_variants(a, b).len()),
                _ => None,
            })
            .sum();
        let separate = two_needles <= MAX_TWO_NEEDLES;
        let mut two = Vec::new();
        let mut pairs = Box::new([0u64; 1024]);
        let mut short = [0u64; 16];
        let mut quads = Box::new([0u64; QUAD_WORDS]);
        let mut single = Vec::new();
        let mut halves = Box::new([0u64; 1024]);
        let mut has_two = false;
        for (i, p) in patterns.iter().enumerate() {
            match p.as_slice() {
                [] => {}
                [a] => single.push((a.to_ascii_lowercase(), u32::try_from(i).unwrap_or(u32::MAX))),
                &[a, b] if separate => {
                    let finders = case_variants(a, b)
                        .iter()
                        .map(|v| memchr::memmem::Finder::new(v).into_owned())
                        .collect();
                    two.push((finders, u32::try_from(i).unwrap_or(u32::MAX)));
                }
                [a, b, rest @ ..] => {
                    // Every case of the two bytes, so the scan indexes with raw bytes.
                    for (x, y) in case_pairs(*a, *b) {
                        set_bit(&mut pairs[..], pair(x, y));
                        if rest.len() < 2 {
                            set_bit(
                                &mut short,
                                short_pair(u32::from(u16::from_le_bytes([x, y]))),
                            );
                        }
                    }
                    if let Some(&[c, d]) = rest.first_chunk() {
                        set_bit(&mut quads[..], quad(u32::from_le_bytes([*a, *b, c, d])));
                    }
                    match rest.first() {
                        None => has_two = true,
                        Some(c) => {
                            for (x, y) in case_pairs(*a, *b).into_iter().chain(case_pairs(*b, *c)) {
                                set_bit(&mut halves[..], pair(x, y));
                            }
                        }
                    }
                }
            }
        }
        Some(Mpm {
            trie,
            pairs,
            halves: (!has_two).then_some(halves),
            single,
            two,
            quads,
            has_short: short != [0; 16],
            short,
        })
    }

    /// Number of patterns.
    pub fn patterns_len(&self) -> usize {
        self.trie.patterns_len()
    }

    /// Memory of the tables.
    pub fn memory_usage(&self) -> usize {
        self.trie.memory_usage()
            + (1 + usize::from(self.halves.is_some())) * size_of::<[u64; 1024]>()
            + self.quads.len() * 8
            + self.single.capacity() * 8
            + self.two.iter().map(|(f, _)| f.len() * 32).sum::<usize>()
    }

    /// Call `f` with the id of each pattern occurring in `hay` (possibly more than once).
    pub fn find(&self, hay: &[u8], mut f: impl FnMut(usize)) {
        find_all([self], hay, |_, p| f(p));
    }

    /// The stricter test of a position `i` of `hay` whose pair is in `pairs`: can a pattern
    /// start there? A pattern of four bytes or more only if the hash of the (case folded) first
    /// four bytes is set, one of two or three bytes only if the hash of its pair is in `short`.
    /// Inlined into the pass: most positions stop here, and a call per position cost more than
    /// the test itself.
    #[inline(always)]
    fn may_start(&self, hay: &[u8], i: usize) -> bool {
        let rest = hay.get(i..).unwrap_or_default();
        if let Some(q) = rest.first_chunk::<4>() {
            self.may_start_word(u64::from(u32::from_le_bytes(*q)))
        } else if let Some(p) = rest.first_chunk::<2>() {
            test_bit(&self.short, short_pair(u32::from(u16::from_le_bytes(*p))))
        } else {
            false
        }
    }

    /// [`Mpm::may_start`] at a position with at least four bytes from it, `x` holding them (and
    /// any after them: ignored), the first one low.
    #[inline(always)]
    fn may_start_word(&self, x: u64) -> bool {
        let q = u32::try_from(x & 0xFFFF_FFFF).unwrap_or_default();
        test_bit(&self.quads[..], quad(q))
            || (self.has_short && test_bit(&self.short, short_pair(q)))
    }
}

/// The union of two matchers' pair bitmaps (and of their `halves`, when both have them): a pass
/// for both tests one bitmap per position instead of two, and tests each matcher's own only
/// where the union hits. Built per signature group, whose two parts scan the same buffers.
pub struct PairUnion {
    pairs: Box<[u64; 1024]>,
    halves: Option<Box<[u64; 1024]>>,
}

impl std::fmt::Debug for PairUnion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairUnion")
            .field("halves", &self.halves.is_some())
            .finish()
    }
}

impl PairUnion {
    /// The union of `a`'s and `b`'s bitmaps.
    pub fn new(a: &Mpm, b: &Mpm) -> PairUnion {
        let or = |x: &[u64; 1024], y: &[u64; 1024]| {
            let mut u = Box::new(*x);
            for (w, v) in u.iter_mut().zip(y) {
                *w |= v;
            }
            u
        };
        PairUnion {
            pairs: or(&a.pairs, &b.pairs),
            halves: match (&a.halves, &b.halves) {
                (Some(x), Some(y)) => Some(or(x, y)),
                _ => None,
            },
        }
    }

    /// Memory of the bitmaps.
    pub fn memory_usage(&self) -> usize {
        (1 + usize::from(self.halves.is_some())) * size_of::<[u64; 1024]>()
    }
}

/// Call `f(n, id)` with each pattern `id` of `mpms[n]` occurring in `hay` (possibly more than
/// once), in one pass over the bytes for all of them (`N` <= 8): the matchers of a signature
/// group's two parts scan the same buffers.
pub fn find_all<const N: usize>(mpms: [&Mpm; N], hay: &[u8], f: impl FnMut(usize, usize)) {
    find_with(None, mpms, hay, f);
}

/// [`find_all`] for two matchers whose [`PairUnion`] is at hand (built from these two).
pub fn find_both(union: &PairUnion, mpms: [&Mpm; 2], hay: &[u8], f: impl FnMut(usize, usize)) {
    find_with(Some(union), mpms, hay, f);
}

fn find_with<const N: usize>(
    union: Option<&PairUnion>,
    mpms: [&Mpm; N],
    hay: &[u8],
    mut f: impl FnMut(usize, usize),
) {
    const { assert!(N <= 8, "a mask holds eight matchers") };
    // One-byte patterns (rare): a vectorised search each, stopping at the first hit.
    for (n, m) in mpms.iter().enumerate() {
        for &(b, p) in &m.single {
            if memchr::memchr2(b, b.to_ascii_uppercase(), hay).is_some() {
                f(n, p as usize);
            }
        }
    }
    // Two-byte patterns searched alone: vectorised, stopping at the first occurrence.
    for (n, m) in mpms.iter().enumerate() {
        for (finders, p) in &m.two {
            if finders.iter().any(|x| x.find(hay).is_some()) {
                f(n, *p as usize);
            }
        }
    }
    let pairs = mpms.map(|m| &*m.pairs);
    // Even positions when every matcher has its `halves` (no allocation on this path: it runs
    // for every buffer scanned).
    let base = if mpms.iter().all(|m| m.halves.is_some()) {
        let halves = mpms.map(|m| m.halves.as_deref().unwrap_or(&NO_PAIRS));
        // Even positions only, four per eight-byte load: a hit at `e` lets a pattern start at
        // `e` or `e - 1`. The blocks up to `base` cover the starts before `base - 1`. Both
        // starts are tested from one load of the eight bytes from `e - 1` where they are there
        // (all but the first position and the last few).
        let mut visit = |n: usize, e: usize| {
            let Some(m) = mpms.get(n) else {
                return;
            };
            let odd = e.checked_sub(1);
            match odd
                .and_then(|o| hay.get(o..))
                .and_then(<[u8]>::first_chunk::<8>)
            {
                Some(w) => {
                    let x = u64::from_le_bytes(*w);
                    if let Some(o) = odd
                        && m.may_start_word(x)
                    {
                        walk_from(m, hay, n, o, &mut f);
                    }
                    if m.may_start_word(x >> 8) {
                        walk_from(m, hay, n, e, &mut f);
                    }
                }
                None => {
                    if let Some(o) = odd {
                        try_walk(&mpms, hay, n, o, &mut f);
                    }
                    try_walk(&mpms, hay, n, e, &mut f);
                }
            }
        };
        match union.and_then(|u| u.halves.as_deref()) {
            Some(u) => union_pass::<N, 2>(u, &halves, hay, &mut visit),
            None => plain_pass::<N, 2>(&halves, hay, &mut visit),
        }
        .saturating_sub(1)
    } else {
        let mut walk_at = |n: usize, i: usize| try_walk(&mpms, hay, n, i, &mut f);
        // Seven positions per eight-byte load.
        match union {
            Some(u) => union_pass::<N, 1>(&u.pairs, &pairs, hay, &mut walk_at),
            None => plain_pass::<N, 1>(&pairs, hay, &mut walk_at),
        }
    };
    // The last positions, one at a time.
    for (i, w) in hay.windows(2).enumerate().skip(base) {
        if let [a, b] = *w {
            for (n, p) in pairs.iter().enumerate() {
                if test_bit(&p[..], pair(a, b)) {
                    try_walk(&mpms, hay, n, i, &mut f);
                }
            }
        }
    }
}

/// The pass of [`find_with`] without a union: each block of eight bytes (advancing by 7 when
/// `STEP` is 1, by 8 when it is 2) tests the pairs at its positions `j` (multiples of `STEP`)
/// against every matcher's table, the bits gathered into one mask first (bit `8 n + j`: position
/// `j` for matcher `n`) so the pass has no branch per byte, and visits `(n, position)` for each
/// hit. Returns where the blocks ended: the caller tests the positions from there one at a time.
#[inline(always)]
fn plain_pass<const N: usize, const STEP: usize>(
    tables: &[&[u64; 1024]; N],
    hay: &[u8],
    visit: &mut impl FnMut(usize, usize),
) -> usize {
    let advance = if STEP == 1 { 7 } else { 8 };
    let mut base = 0;
    while let Some(x) = hay.get(base..).and_then(|r| r.first_chunk::<8>()) {
        let mut m = block_hits::<N, STEP>(tables, u64::from_le_bytes(*x));
        while m != 0 {
            let t = m.trailing_zeros() as usize;
            m &= m - 1;
            visit(t / 8, base + t % 8);
        }
        base += advance;
    }
    base
}

/// [`plain_pass`] over the union bitmap `u` of the matchers' `tables`: where a position hits
/// `u`, the matchers whose own table has its pair are visited.
#[inline(always)]
fn union_pass<const N: usize, const STEP: usize>(
    u: &[u64; 1024],
    tables: &[&[u64; 1024]; N],
    hay: &[u8],
    visit: &mut impl FnMut(usize, usize),
) -> usize {
    let advance = if STEP == 1 { 7 } else { 8 };
    let mut base = 0;
    while let Some(x) = hay.get(base..).and_then(|r| r.first_chunk::<8>()) {
        let x = u64::from_le_bytes(*x);
        let mut m = block_hits::<1, STEP>(&[u], x);
        while m != 0 {
            let j = m.trailing_zeros() as usize;
            m &= m - 1;
            let k = u16::try_from(x >> (8 * j) & 0xFFFF).map_or(0, usize::from);
            for (n, t) in tables.iter().enumerate() {
                if test_bit(&t[..], k) {
                    visit(n, base + j);
                }
            }
        }
        base += advance;
    }
    base
}

/// The stricter test at position `i` for matcher `n`, and the walk where it passes. Inlined into
/// the pass (most positions stop at the test); the walk is a call.
#[inline(always)]
fn try_walk<const N: usize>(
    mpms: &[&Mpm; N],
    hay: &[u8],
    n: usize,
    i: usize,
    f: &mut impl FnMut(usize, usize),
) {
    if let Some(m) = mpms.get(n)
        && m.may_start(hay, i)
    {
        walk_from(m, hay, n, i, f);
    }
}

/// The walk of `m`'s trie from position `i`, reporting as matcher `n`.
#[inline(never)]
fn walk_from(m: &Mpm, hay: &[u8], n: usize, i: usize, f: &mut impl FnMut(usize, usize)) {
    m.trie
        .walk(hay.get(i..).unwrap_or_default(), &mut |p| f(n, p));
}

/// Bit `8 n + i` set if the pair at byte `i` of `x` (little endian), `i` < 7 a multiple of
/// `STEP`, is in `pairs[n]`.
#[inline]
fn block_hits<const N: usize, const STEP: usize>(pairs: &[&[u64; 1024]; N], x: u64) -> u64 {
    let mut m = 0;
    for j in (0..7).step_by(STEP) {
        // The two bytes at `j`, the first one low: the index `pair` gives.
        let k = u16::try_from(x >> (8 * j) & 0xFFFF).map_or(0, usize::from);
        for (n, p) in pairs.iter().enumerate() {
            m |= (p.get(k >> 6).map_or(0, |w| w >> (k & 63)) & 1) << (8 * n + j);
        }
    }
    m
}

/// Hash of a pair, ASCII case folded as in [`quad`], into the 1024 bits of `short` (a handful of
/// patterns: a small table stays in the L1 cache).
/// `x` holds the pair in its low 16 bits (first byte low); the high bits are ignored.
#[inline(always)]
fn short_pair(x: u32) -> usize {
    let x = x & 0xDFDF;
    (x.wrapping_mul(0x9E37_79B1) >> 22) as usize
}

/// The distinct case variants of a pair (one to four), as needles.
fn case_variants(a: u8, b: u8) -> Vec<[u8; 2]> {
    let mut v: Vec<[u8; 2]> = case_pairs(a, b).iter().map(|&(x, y)| [x, y]).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The four case variants of a pair.
fn case_pairs(a: u8, b: u8) -> [(u8, u8); 4] {
    let (al, au) = (a.to_ascii_lowercase(), a.to_ascii_uppercase());
    let (bl, bu) = (b.to_ascii_lowercase(), b.to_ascii_uppercase());
    [(al, bl), (al, bu), (au, bl), (au, bu)]
}

/// Index of a byte pair in the bitmaps: the first byte low, as a little-endian load has it.
fn pair(a: u8, b: u8) -> usize {
    usize::from(b) << 8 | usize::from(a)
}

/// Hash of four bytes, ASCII case folded (bit 5 of each byte cleared: a letter and its other
/// case agree; other bytes may collide with a neighbour, which only costs a walk).
/// `x` holds the four bytes, the first one low (a little-endian load).
#[inline(always)]
fn quad(x: u32) -> usize {
    let x = x & 0xDFDF_DFDF;
    (x.wrapping_mul(0x9E37_79B1) >> (32 - QUAD_BITS)) as usize
}

fn set_bit(bits: &mut [u64], k: usize) {
    if let Some(w) = bits.get_mut(k / 64) {
        *w |= 1 << (k % 64);
    }
}

#[inline(always)]
fn test_bit(bits: &[u64], k: usize) -> bool {
    bits.get(k / 64).is_some_and(|w| w >> (k % 64) & 1 == 1)
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

    /// A pattern is found at every offset of buffers of every length: the seven-position blocks,
    /// their boundaries and the tail.
    #[test]
    fn every_offset_and_length() {
        // With two-byte patterns in the pair tables (more needles than are searched alone:
        // every position tested), with one searched alone (even positions) and without.
        let with_two: &[&[u8]] = &[b"abcd", b"xy", b"Q3z", b"kl", b"mn"];
        let one_two: &[&[u8]] = &[b"abcd", b"xy", b"Q3z"];
        let without: &[&[u8]] = &[b"abcd", b"xyz", b"Q3z!"];
        let owned = |p: &[&[u8]]| p.iter().map(|p| p.to_ascii_lowercase()).collect::<Vec<_>>();
        assert!(Mpm::new(&owned(with_two)).is_some_and(|m| m.halves.is_none() && m.two.is_empty()));
        assert!(Mpm::new(&owned(one_two)).is_some_and(|m| m.halves.is_some() && m.two.len() == 1));
        assert!(Mpm::new(&[b"abc".to_vec(), b"d".to_vec()]).is_some_and(|m| m.halves.is_some()));
        for pats in [with_two, one_two, without] {
            for len in 0..40usize {
                for (id, p) in pats.iter().enumerate() {
                    for at in 0..(len + 1).saturating_sub(p.len()) {
                        let mut hay = vec![b'.'; len];
                        if let Some(w) = hay.get_mut(at..at + p.len()) {
                            w.copy_from_slice(&p.to_ascii_uppercase());
                        }
                        assert_eq!(found(pats, &hay), vec![id], "{len} {at}");
                    }
                }
            }
        }
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

        /// The same with longer patterns and buffers, and bytes that the four-byte hash folds
        /// together with a letter's case (`@` and `` ` ``, space and NUL).
        #[test]
        fn same_as_naive_long(
            pats in proptest::collection::vec(proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'b'), Just(b'@'), Just(b' '), Just(0u8)], 1..8), 1..40),
            hay in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'A'), Just(b'b'), Just(b'B'), Just(b'@'),
                    Just(b'`'), Just(b' '), Just(0u8)], 0..120),
        ) {
            let refs: Vec<&[u8]> = pats.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(found(&refs, &hay), naive(&refs, &hay));
        }

        /// The same without two-byte patterns: the pass tests even positions only.
        #[test]
        fn same_as_naive_even_positions(
            pats in proptest::collection::vec(proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'b'), Just(b'@'), Just(0u8)], 3..8), 1..30),
            one in proptest::option::of(prop_oneof![Just(b'a'), Just(b'@')]),
            hay in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'A'), Just(b'b'), Just(b'B'), Just(b'@'),
                    Just(b'`'), Just(0u8)], 0..120),
        ) {
            let mut refs: Vec<&[u8]> = pats.iter().map(Vec::as_slice).collect();
            let single = one.map(|b| [b]);
            if let Some(b) = &single {
                refs.push(b);
            }
            prop_assert_eq!(found(&refs, &hay), naive(&refs, &hay));
        }

        /// The same with a few two-byte patterns (searched alone) among longer ones: the pass
        /// tests even positions only.
        #[test]
        fn same_as_naive_few_two_byte(
            pats in proptest::collection::vec(proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'b'), Just(b'@'), Just(0u8)], 3..8), 0..30),
            two in proptest::collection::vec(
                (prop_oneof![Just(b'a'), Just(b'@'), Just(0u8)], prop_oneof![Just(b'b'), Just(0u8)]),
                1..3),
            hay in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'A'), Just(b'b'), Just(b'B'), Just(b'@'),
                    Just(b'`'), Just(0u8)], 0..120),
        ) {
            let two: Vec<[u8; 2]> = two.into_iter().map(|(a, b)| [a, b]).collect();
            let mut refs: Vec<&[u8]> = pats.iter().map(Vec::as_slice).collect();
            refs.extend(two.iter().map(|p| &p[..]));
            let list: Vec<Vec<u8>> = refs.iter().map(|p| p.to_ascii_lowercase()).collect();
            prop_assert!(Mpm::new(&list).is_some_and(|m| m.halves.is_some()));
            prop_assert_eq!(found(&refs, &hay), naive(&refs, &hay));
        }

        /// Two matchers in one pass find what each finds alone, with the union of their pair
        /// bitmaps as without.
        #[test]
        fn one_pass_for_two(
            a in proptest::collection::vec(proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'b'), Just(b'@'), Just(0u8)], 1..7), 1..20),
            // Three bytes or more: `b` tests even positions only, and so do both when `a` has
            // no two-byte pattern.
            b in proptest::collection::vec(proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'b'), Just(b'c'), Just(0u8)], 3..7), 1..20),
            a_long in any::<bool>(),
            hay in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'A'), Just(b'b'), Just(b'C'), Just(b'@'),
                    Just(b'`'), Just(0u8)], 0..100),
        ) {
            let a: Vec<Vec<u8>> = if a_long {
                a.into_iter().filter(|p| p.len() != 2).collect()
            } else {
                a
            };
            prop_assume!(!a.is_empty());
            let (Some(ma), Some(mb)) = (Mpm::new(&a), Mpm::new(&b)) else {
                return Err(TestCaseError::fail("no matcher"));
            };
            let mut got = [Vec::new(), Vec::new()];
            find_all([&ma, &mb], &hay, |n, p| {
                if let Some(v) = got.get_mut(n) {
                    v.push(p);
                }
            });
            for v in &mut got {
                v.sort_unstable();
                v.dedup();
            }
            let ra: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
            let rb: Vec<&[u8]> = b.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(&got[0], &naive(&ra, &hay));
            prop_assert_eq!(&got[1], &naive(&rb, &hay));
            // The same through the union of their bitmaps.
            let mut both = [Vec::new(), Vec::new()];
            find_both(&PairUnion::new(&ma, &mb), [&ma, &mb], &hay, |n, p| {
                if let Some(v) = both.get_mut(n) {
                    v.push(p);
                }
            });
            for v in &mut both {
                v.sort_unstable();
                v.dedup();
            }
            prop_assert_eq!(&both, &got);
        }
    }
}
