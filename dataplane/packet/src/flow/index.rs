//! The flow table's index: the slot of each flow by its key's 32-bit hash, in one open-addressed
//! array of 8-byte cells with linear probing (at most half full) and backward-shift deletion.
//!
//! Why not `hashbrown::HashTable<(slot, hash)>` as before: hashbrown keeps its control bytes and
//! its entries in two arrays, so under a random-source flood a new flow missed the cache twice
//! in the index (its probe's control group, then the entry it writes), and a flood's evicted flow
//! twice more; and it gives no address to prefetch. Here a probe, the insert that follows it and
//! a removal each touch one cache line (eight cells) in almost every case, and [`FlowIndex::bucket`]
//! names that line before the probe, so a worker that sees a flood coming can fetch it early
//! ([`crate::io::prefetch`]).
//!
//! A cell is 0 when empty, else `hash << 32 | (slot + 1)`. Lookups compare the stored hash before
//! calling the caller's key comparison, so a probe reads no flow whose hash differs.

/// Cells per cache line.
const LINE: usize = 8;

/// See the module doc.
#[derive(Debug, Default)]
pub(super) struct FlowIndex {
    cells: Vec<u64>,
    /// `cells.len() - 1` (a power of two minus one), 0 while empty.
    mask: usize,
    len: usize,
}

#[inline]
const fn cell(hash: u32, slot: u32) -> u64 {
    (hash as u64) << 32 | (slot as u64 + 1)
}

#[inline]
fn home(hash: u32, mask: usize) -> usize {
    usize::try_from(hash).unwrap_or(usize::MAX) & mask
}

#[inline]
const fn hash_of(c: u64) -> u32 {
    // Truncation intended: the high half.
    #[allow(clippy::cast_possible_truncation)]
    let h = (c >> 32) as u32;
    h
}

#[inline]
const fn slot_of(c: u64) -> u32 {
    // Truncation intended: the low half, less the one that tells a used cell from an empty one.
    #[allow(clippy::cast_possible_truncation)]
    let s = (c as u32).wrapping_sub(1);
    s
}

impl FlowIndex {
    /// An index that holds `n` entries before it grows.
    pub(super) fn with_capacity(n: usize) -> Self {
        let cells = n.saturating_mul(2).max(LINE).next_power_of_two();
        FlowIndex {
            cells: vec![0; cells],
            mask: cells - 1,
            len: 0,
        }
    }

    /// Entries held.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is held.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries it holds before it grows (half its cells).
    #[inline]
    pub(super) fn capacity(&self) -> usize {
        self.cells.len() / 2
    }

    /// The address of the cell a probe for `hash` starts at (for [`crate::io::prefetch`]).
    #[inline]
    pub(super) fn bucket(&self, hash: u32) -> *const u64 {
        self.cells.as_ptr().wrapping_add(home(hash, self.mask))
    }

    /// The slot of the entry with `hash` for which `is` says yes.
    #[inline]
    pub(super) fn find(&self, hash: u32, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut i = home(hash, self.mask);
        // At most half the cells are used, so the probe meets an empty one; the bound only
        // keeps an impossible full table from looping.
        for _ in 0..self.cells.len() {
            let c = *self.cells.get(i)?;
            if c == 0 {
                return None;
            }
            if hash_of(c) == hash && is(slot_of(c)) {
                return Some(slot_of(c));
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Add an entry (the caller knows no entry has this slot).
    #[inline]
    pub(super) fn insert(&mut self, hash: u32, slot: u32) {
        if (self.len + 1) * 2 > self.cells.len() {
            self.grow();
        }
        self.place(cell(hash, slot));
        self.len += 1;
    }

    /// Put a cell in the first empty cell of its probe sequence.
    #[inline]
    fn place(&mut self, c: u64) {
        let mut i = home(hash_of(c), self.mask);
        for _ in 0..self.cells.len() {
            match self.cells.get_mut(i) {
                Some(x) if *x == 0 => {
                    *x = c;
                    return;
                }
                Some(_) => i = (i + 1) & self.mask,
                None => return,
            }
        }
    }

    /// Double the cells, placing every entry again from its stored hash (no flow is read).
    #[cold]
    fn grow(&mut self) {
        let n = (self.cells.len() * 2).max(LINE);
        let old = core::mem::replace(&mut self.cells, vec![0; n]);
        self.mask = n - 1;
        for c in old.into_iter().filter(|&c| c != 0) {
            self.place(c);
        }
    }

    /// Remove the entry of `slot` with `hash`, if there is one.
    pub(super) fn remove(&mut self, hash: u32, slot: u32) {
        let want = cell(hash, slot);
        let mut i = home(hash, self.mask);
        let mut found = None;
        for _ in 0..self.cells.len() {
            match self.cells.get(i) {
                Some(&c) if c == want => {
                    found = Some(i);
                    break;
                }
                Some(&c) if c != 0 => i = (i + 1) & self.mask,
                _ => break,
            }
        }
        let Some(mut hole) = found else {
            return;
        };
        self.len -= 1;
        // Backward-shift deletion: move up every later cell of the run whose home is not
        // cyclically within (hole, j], so no probe meets an empty cell before its entry.
        let mut j = hole;
        loop {
            if let Some(x) = self.cells.get_mut(hole) {
                *x = 0;
            }
            loop {
                j = (j + 1) & self.mask;
                let c = self.cells.get(j).copied().unwrap_or(0);
                if c == 0 {
                    return;
                }
                let k = home(hash_of(c), self.mask);
                let stays = if hole <= j {
                    hole < k && k <= j
                } else {
                    hole < k || k <= j
                };
                if !stays {
                    if let Some(x) = self.cells.get_mut(hole) {
                        *x = c;
                    }
                    hole = j;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    proptest::proptest! {
        /// The index agrees with a map from slot to hash under any sequence of inserts and
        /// removals, with hashes drawn from a few values (long runs, wrap-around, collisions).
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((0u32..64, 0u32..40, proptest::prelude::any::<bool>()), 0..400)) {
            let mut ix = FlowIndex::with_capacity(4);
            let mut model: HashMap<u32, u32> = HashMap::new();
            for (slot, h, add) in ops {
                // Hashes whose low bits collide (home cells near the end wrap around).
                let hash = h.wrapping_mul(0x9e37_79b9) | 0x7;
                if add {
                    if let std::collections::hash_map::Entry::Vacant(e) = model.entry(slot) {
                        e.insert(hash);
                        ix.insert(hash, slot);
                    }
                } else if let Some(hash) = model.remove(&slot) {
                    ix.remove(hash, slot);
                }
                proptest::prop_assert_eq!(ix.len(), model.len());
                for (&s, &h) in &model {
                    proptest::prop_assert_eq!(ix.find(h, |x| x == s), Some(s));
                }
                proptest::prop_assert_eq!(ix.find(hash, |x| !model.contains_key(&x)), None);
            }
        }
    }

    #[test]
    fn grows_and_keeps_entries() {
        let mut ix = FlowIndex::with_capacity(0);
        for s in 0..10_000u32 {
            ix.insert(s.wrapping_mul(2_654_435_761), s);
        }
        assert!(ix.capacity() >= 10_000);
        for s in 0..10_000u32 {
            assert_eq!(ix.find(s.wrapping_mul(2_654_435_761), |x| x == s), Some(s));
        }
        for s in (0..10_000u32).step_by(2) {
            ix.remove(s.wrapping_mul(2_654_435_761), s);
        }
        for s in 0..10_000u32 {
            let found = ix.find(s.wrapping_mul(2_654_435_761), |x| x == s);
            assert_eq!(found, (s % 2 == 1).then_some(s));
        }
        assert_eq!(ix.len(), 5_000);
    }
}
