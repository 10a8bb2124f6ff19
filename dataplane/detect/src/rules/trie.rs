//! The anchored walks of the prefilter ([`super::mpm`]): a byte trie of the fast patterns,
//! ASCII case-insensitive.
//!
//! Written here rather than taken from `aho-corasick`, which the matcher used before: its
//! automata always compute failure transitions (and copy matches along them), more than half of
//! their build time, and an anchored walk never follows one. The matcher finds every start
//! position itself, so a plain trie walked from each is enough. Groups build their automata on
//! first use, on the packet path: build time is latency there. A trie is built from the sorted
//! patterns in one pass.

/// One node: its edges and the patterns ending at it, as ranges of the trie's arrays.
#[derive(Clone, Copy, Debug)]
struct Node {
    edges: u32,
    matches: u32,
    match_count: u32,
    edge_count: u16,
    /// The label of the first edge, whose child is the next node (nodes are numbered in
    /// depth-first order, children in byte order), or [`NO_FIRST`]: most nodes of a walk have
    /// one edge, and this way they read neither edge array.
    first: u16,
}

/// [`Node::first`] of a node without edges (or whose first child is not the next node, which
/// the numbering excludes).
const NO_FIRST: u16 = 0x100;

impl Default for Node {
    fn default() -> Node {
        Node {
            edges: 0,
            matches: 0,
            match_count: 0,
            edge_count: 0,
            first: NO_FIRST,
        }
    }
}

/// A trie of patterns (lowercase), walked from its root along a buffer's bytes.
#[derive(Clone, Debug)]
pub struct Trie {
    /// The root's children by byte, both cases of a letter (0: none, the root has no parent).
    root: Box<[u32; 256]>,
    /// Node 0 is the root.
    nodes: Vec<Node>,
    /// Edge labels (lowercase), sorted within a node, and where each edge leads.
    edge_bytes: Vec<u8>,
    edge_to: Vec<u32>,
    /// Pattern ids, by node.
    matches: Vec<u32>,
    patterns: usize,
}

impl Trie {
    /// The trie of `patterns` (lowercase; an empty one is left out), pattern `i` reported as `i`.
    /// `None` past `u32::MAX` nodes.
    pub fn new(patterns: &[Vec<u8>]) -> Option<Trie> {
        let mut order: Vec<u32> = (0..u32::try_from(patterns.len()).ok()?).collect();
        let pat = |i: u32| patterns.get(i as usize).map_or(&[][..], Vec::as_slice);
        order.sort_unstable_by(|&a, &b| pat(a).cmp(pat(b)).then(a.cmp(&b)));
        // In sorted order a node's children are created in byte order, and a pattern shares
        // with the previous one exactly their common prefix: `path` holds the previous
        // pattern's nodes (the root first).
        let mut edges: Vec<(u32, u8, u32)> = Vec::new();
        let mut ends: Vec<(u32, u32)> = Vec::new();
        let mut path: Vec<u32> = vec![0];
        let mut prev: &[u8] = &[];
        let mut count = 1u32;
        for &id in &order {
            let p = pat(id);
            if p.is_empty() {
                continue;
            }
            let common = p.iter().zip(prev).take_while(|(a, b)| a == b).count();
            path.truncate(common + 1);
            for &b in p.get(common..).unwrap_or_default() {
                let parent = *path.last()?;
                let child = count;
                count = count.checked_add(1)?;
                edges.push((parent, b, child));
                path.push(child);
            }
            ends.push((*path.last()?, id));
            prev = p;
        }
        // Edges by parent (stable: byte order kept within a parent), matches by node.
        edges.sort_by_key(|e| e.0);
        ends.sort_by_key(|e| e.0);
        let mut nodes = vec![Node::default(); count as usize];
        let mut root = Box::new([0u32; 256]);
        let mut edge_bytes = Vec::with_capacity(edges.len());
        let mut edge_to = Vec::with_capacity(edges.len());
        for &(parent, b, child) in &edges {
            if parent == 0 {
                for c in [b.to_ascii_lowercase(), b.to_ascii_uppercase()] {
                    if let Some(r) = root.get_mut(usize::from(c)) {
                        *r = child;
                    }
                }
                continue;
            }
            let node = nodes.get_mut(parent as usize)?;
            if node.edge_count == 0 {
                node.edges = u32::try_from(edge_bytes.len()).ok()?;
                if parent.checked_add(1) == Some(child) {
                    node.first = u16::from(b);
                }
            }
            node.edge_count += 1;
            edge_bytes.push(b);
            edge_to.push(child);
        }
        let mut matches = Vec::with_capacity(ends.len());
        for &(node, id) in &ends {
            let n = nodes.get_mut(node as usize)?;
            if n.match_count == 0 {
                n.matches = u32::try_from(matches.len()).ok()?;
            }
            n.match_count += 1;
            matches.push(id);
        }
        Some(Trie {
            root,
            nodes,
            edge_bytes,
            edge_to,
            matches,
            patterns: patterns.len(),
        })
    }

    /// Number of patterns it was built from.
    pub fn patterns_len(&self) -> usize {
        self.patterns
    }

    /// Memory of its tables.
    pub fn memory_usage(&self) -> usize {
        size_of::<[u32; 256]>()
            + self.nodes.len() * size_of::<Node>()
            + self.edge_bytes.len() * (1 + size_of::<u32>())
            + self.matches.len() * size_of::<u32>()
    }

    /// Call `f` with each pattern that `hay` starts with (ASCII case-insensitively).
    #[inline]
    pub fn walk(&self, hay: &[u8], f: &mut impl FnMut(usize)) {
        let mut bytes = hay.iter();
        let Some(&first) = bytes.next() else {
            return;
        };
        let mut node = self.root.get(usize::from(first)).copied().unwrap_or(0);
        while node != 0 {
            let Some(n) = self.nodes.get(node as usize) else {
                return;
            };
            if n.match_count != 0 {
                self.report(n, f);
            }
            let Some(&b) = bytes.next() else {
                return;
            };
            let b = b.to_ascii_lowercase();
            if u16::from(b) == n.first {
                node += 1;
                continue;
            }
            if n.edge_count <= 1 && n.first != NO_FIRST {
                return;
            }
            let at = n.edges as usize;
            let labels = self
                .edge_bytes
                .get(at..at + n.edge_count as usize)
                .unwrap_or_default();
            // Most nodes have one or two edges; a few near the root have dozens.
            let found = if labels.len() <= 8 {
                labels.iter().position(|&l| l == b)
            } else {
                labels.binary_search(&b).ok()
            };
            node = match found {
                Some(i) => self.edge_to.get(at + i).copied().unwrap_or(0),
                None => 0,
            };
        }
    }
}

impl Trie {
    /// Call `f` with the patterns ending at `n`. Out of the walk's loop: the caller's callback
    /// inlined there took the registers of the loop's values.
    #[inline(never)]
    fn report(&self, n: &Node, f: &mut impl FnMut(usize)) {
        let at = n.matches as usize;
        for &id in self
            .matches
            .get(at..at + n.match_count as usize)
            .unwrap_or_default()
        {
            f(id as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn starts_with(pats: &[Vec<u8>], hay: &[u8]) -> Vec<usize> {
        let Some(t) = Trie::new(pats) else {
            return vec![usize::MAX];
        };
        let mut v = Vec::new();
        t.walk(hay, &mut |p| v.push(p));
        v.sort_unstable();
        v
    }

    #[test]
    fn prefixes_duplicates_and_case() {
        let pats: Vec<Vec<u8>> = [&b"ab"[..], b"abc", b"abd", b"b", b"ab", b"", b"\xff"]
            .iter()
            .map(|p| p.to_vec())
            .collect();
        assert_eq!(starts_with(&pats, b"ABCx"), vec![0, 1, 4]);
        assert_eq!(starts_with(&pats, b"abd"), vec![0, 2, 4]);
        assert_eq!(starts_with(&pats, b"a"), Vec::<usize>::new());
        assert_eq!(starts_with(&pats, b"Bab"), vec![3]);
        assert_eq!(starts_with(&pats, b"\xff"), vec![6]);
        assert_eq!(starts_with(&pats, b""), Vec::<usize>::new());
        assert_eq!(starts_with(&[], b"abc"), Vec::<usize>::new());
    }

    proptest! {
        /// The patterns reported are exactly those the buffer starts with, case folded.
        #[test]
        fn same_as_naive_prefixes(
            pats in proptest::collection::vec(proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'b'), Just(b'@'), Just(0u8), Just(0xC1u8)], 0..6), 0..40),
            // Many patterns under one or two first bytes: nodes with more than eight edges.
            wide in proptest::collection::vec(
                (prop_oneof![Just(b'a'), Just(b'X')], any::<u8>(), proptest::option::of(any::<u8>())),
                0..60),
            // The buffer: a pattern's bytes (in upper case) followed by others, or bytes alone.
            from in proptest::option::of(any::<proptest::sample::Index>()),
            tail in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'A'), Just(b'b'), Just(b'@'), Just(b'`'), Just(0u8),
                    Just(0xC1u8), Just(0xE1u8), any::<u8>()], 0..10),
        ) {
            let pats: Vec<Vec<u8>> = pats
                .into_iter()
                .chain(wide.into_iter().map(|(a, b, c)| [a, b].into_iter().chain(c).collect()))
                .map(|p| p.to_ascii_lowercase())
                .collect();
            let mut hay = from
                .filter(|_| !pats.is_empty())
                .and_then(|i| pats.get(i.index(pats.len())))
                .map(|p| p.to_ascii_uppercase())
                .unwrap_or_default();
            hay.extend(tail);
            let lower = hay.to_ascii_lowercase();
            let want: Vec<usize> = pats
                .iter()
                .enumerate()
                .filter(|(_, p)| !p.is_empty() && lower.starts_with(p))
                .map(|(i, _)| i)
                .collect();
            prop_assert_eq!(starts_with(&pats, &hay), want);
        }
    }
}
