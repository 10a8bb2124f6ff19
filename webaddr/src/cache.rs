//! A small cache of recent verdicts, one per worker: the names traffic asks for repeat (a DNS
//! name, then the TLS server name of the same host; the same popular sites over and over), and
//! a verdict the set gave once is the verdict it gives again.
//!
//! - Two-way set-associative, [`LookupCache::new`]'s slot count (a power of two) in pairs: a
//!   key may sit in either slot of its pair, the one used last first, and a new key evicts the
//!   pair's other one, so an insert evicts in constant time and the memory is bounded: the
//!   slots, and their keys' bytes, at most [`KEY_BYTES_PER_SLOT`] a slot on average (a key
//!   that would take more is looked up and not cached, as is one longer than [`MAX_KEY`]). Direct-mapped, two keys of one slot evicted each other on every visit: in a
//!   looped capture of about 1,500 names in 4,096 slots, one lookup in five went to the set.
//! - A slot keeps the whole key (what kind of lookup and the observed bytes) and answers only
//!   for exactly those bytes: no hash collision can give another address's verdict. The slot is
//!   chosen by foldhash with a seed drawn per process, so which addresses evict each other
//!   cannot be worked out from outside.
//! - Tied to one set: every lookup names its set, and a set of another
//!   [`AddressSet::generation`] (a reload, a policy push) empties the cache first.

use std::hash::{BuildHasher, Hasher};

use crate::set::{AddressSet, Found, Verdict};

/// Slots a worker's cache has by default: 4,096 (a slot is 64 bytes plus its key, so 256 KiB
/// and at most 512 KiB of keys, allocated at the first lookup).
pub const DEFAULT_SLOTS: usize = 4096;

/// The keys' bytes a cache may hold, a slot's share: 128 (a host name is a few dozen bytes, a
/// request's host and target a hundred or so). Without it every slot could keep a key of
/// [`MAX_KEY`] bytes, about 4 MiB a worker, which a client sending long names could fill.
/// Once the budget is spent, a key longer than the buffer of the slot it would replace is
/// looked up and not cached (the answer is the same, only slower).
pub const KEY_BYTES_PER_SLOT: usize = 128;

/// Longest key cached, in bytes (the kind, and a name or a request's host and target): a DNS
/// question name as the reader gives it (cut at 1,025 bytes) fits with its kind. At 512, the
/// longest names of a looped capture missed on every pass (each about 2,600 instructions in
/// the set instead of a few hundred here); all keys together stay within
/// [`KEY_BYTES_PER_SLOT`] a slot.
pub const MAX_KEY: usize = 1040;

#[derive(Debug, Default)]
struct Slot {
    /// The key's hash (0 with `found` empty: a free slot).
    hash: u64,
    key: Vec<u8>,
    found: Option<Found>,
}

/// Recent verdicts of one set, for one thread (see the module doc).
#[derive(Debug)]
pub struct LookupCache {
    /// Empty until the first lookup (a worker without lists pays nothing).
    slots: Box<[Slot]>,
    /// How many slots to make.
    size: usize,
    generation: u64,
    hasher: foldhash::fast::RandomState,
    /// The slots' key buffers' bytes (their capacity), at most `key_budget`.
    key_bytes: usize,
    key_budget: usize,
    hits: u64,
    misses: u64,
}

impl Default for LookupCache {
    fn default() -> Self {
        Self::new(DEFAULT_SLOTS)
    }
}

/// Slots a key may sit in.
pub const WAYS: usize = 2;

/// Kinds of lookup, the first byte of a key.
const HOST: u8 = 1;
const HTTP: u8 = 2;

impl LookupCache {
    /// A cache of `slots` slots (rounded up to a power of two, at least [`WAYS`]), whose keys
    /// take at most [`KEY_BYTES_PER_SLOT`] bytes a slot.
    pub fn new(slots: usize) -> Self {
        let size = slots.max(WAYS).next_power_of_two();
        LookupCache {
            slots: Box::default(),
            size,
            generation: 0,
            hasher: foldhash::fast::RandomState::default(),
            key_bytes: 0,
            key_budget: size.saturating_mul(KEY_BYTES_PER_SLOT),
            hits: 0,
            misses: 0,
        }
    }

    /// Bytes the cached keys take (their buffers), at most [`KEY_BYTES_PER_SLOT`] a slot.
    pub fn key_bytes(&self) -> usize {
        self.key_bytes
    }

    /// Lookups answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Lookups that went to the set.
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// [`AddressSet::lookup_host`] through the cache.
    pub fn lookup_host<'s>(&mut self, set: &'s AddressSet, host: &[u8]) -> Verdict<'s> {
        self.cached(set, &[&[HOST], host], |set| set.find_host(host))
    }

    /// [`AddressSet::lookup_http_request`] through the cache.
    pub fn lookup_http_request<'s>(
        &mut self,
        set: &'s AddressSet,
        method: &[u8],
        target: &[u8],
        host_header: Option<&[u8]>,
    ) -> Verdict<'s> {
        // Only CONNECT changes how a target is read; the host header's length keeps the two
        // fields apart.
        let connect = method.eq_ignore_ascii_case(b"CONNECT");
        let host = host_header.unwrap_or_default();
        let kind = [
            HTTP,
            u8::from(connect) << 1 | u8::from(host_header.is_some()),
        ];
        let host_len = u32::try_from(host.len()).unwrap_or(u32::MAX).to_le_bytes();
        self.cached(set, &[&kind, &host_len, host, target], |set| {
            set.find_http_request(method, target, host_header)
        })
    }

    /// The verdict for the key made of `parts` one after another: hashed and compared where the
    /// parts lie, copied only into a slot it replaces.
    fn cached<'s>(
        &mut self,
        set: &'s AddressSet,
        parts: &[&[u8]],
        look: impl FnOnce(&'s AddressSet) -> Found,
    ) -> Verdict<'s> {
        if set.generation() != self.generation {
            self.clear();
            self.generation = set.generation();
        }
        if self.slots.is_empty() {
            self.slots = (0..self.size).map(|_| Slot::default()).collect();
        }
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        if len > MAX_KEY {
            self.misses += 1;
            return set.verdict(look(set));
        }
        let mut h = self.hasher.build_hasher();
        for p in parts {
            h.write(p);
        }
        h.write_usize(len);
        let hash = h.finish();
        // The pair of slots the key may sit in: the one used last first.
        let mask = self.slots.len() / WAYS - 1;
        let at = (usize::try_from(hash).unwrap_or(usize::MAX) & mask) * WAYS;
        let Some([last, other]) = self
            .slots
            .get_mut(at..at.saturating_add(WAYS))
            .and_then(|p| <&mut [Slot; WAYS]>::try_from(p).ok())
        else {
            return set.verdict(look(set));
        };
        let holds = |s: &Slot| s.hash == hash && s.found.is_some() && same_key(&s.key, parts);
        if holds(other) {
            std::mem::swap(last, other);
        }
        if holds(last)
            && let Some(found) = &last.found
        {
            self.hits += 1;
            return set.verdict(found.clone());
        }
        // A miss: the slot used last becomes the other, and the other's key is replaced, when
        // it fits the other's buffer or the budget has room for a longer one (the old buffer
        // freed first); else the pair stays as it was and the key is not cached.
        self.misses += 1;
        let found = look(set);
        let cap = other.key.capacity();
        if len > cap {
            let without = self.key_bytes.saturating_sub(cap);
            if without.saturating_add(len) > self.key_budget {
                return set.verdict(found);
            }
            other.key = Vec::with_capacity(len);
            self.key_bytes = without.saturating_add(other.key.capacity());
        }
        std::mem::swap(last, other);
        last.hash = hash;
        last.key.clear();
        for p in parts {
            last.key.extend_from_slice(p);
        }
        last.found = Some(found.clone());
        set.verdict(found)
    }

    /// Forget every verdict.
    pub fn clear(&mut self) {
        for s in self.slots.iter_mut() {
            s.hash = 0;
            s.found = None;
        }
    }
}

/// Whether `key` is the concatenation of `parts`.
fn same_key(key: &[u8], parts: &[&[u8]]) -> bool {
    let mut rest = key;
    for p in parts {
        match rest.split_at_checked(p.len()) {
            Some((head, tail)) if head == *p => rest = tail,
            _ => return false,
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::{Format, parse_list};
    use crate::set::{AddressSetBuilder, Category, ListInfo};
    use proptest::prelude::*;

    fn set(text: &str, trusted: &str) -> AddressSet {
        let mut b = AddressSetBuilder::new();
        let p = parse_list(text.as_bytes(), Format::Auto);
        let info = ListInfo {
            id: "l".into(),
            category: Category::Malware,
            version: "1".into(),
        };
        b.add_list(info, &p).unwrap_or_else(|e| panic!("{e}"));
        b.add_trusted("t", &parse_list(trusted.as_bytes(), Format::Auto))
            .unwrap_or_else(|e| panic!("{e}"));
        b.build()
    }

    #[test]
    fn answers_as_the_set_does_and_counts() {
        let s = set("evil.example\ngithub.com/bad/x\n", "ok.evil.example\n");
        let mut c = LookupCache::new(DEFAULT_SLOTS);
        for _ in 0..3 {
            for name in ["a.evil.example", "x.ok.evil.example", "benign.example", ""] {
                assert_eq!(
                    c.lookup_host(&s, name.as_bytes()),
                    s.lookup_host(name.as_bytes())
                );
            }
            for (m, t, h) in [
                ("GET", "/bad/x", Some("github.com")),
                ("GET", "/bad/x", None),
                ("CONNECT", "/bad/x", Some("github.com")),
                ("GET", "http://github.com/bad/x", Some("other.example")),
            ] {
                let h = h.map(str::as_bytes);
                assert_eq!(
                    c.lookup_http_request(&s, m.as_bytes(), t.as_bytes(), h),
                    s.lookup_http_request(m.as_bytes(), t.as_bytes(), h)
                );
            }
        }
        // Eight keys, three rounds: each key misses once, then hits, unless three keys share a
        // pair of slots (the pair follows a per-process seed), which costs them hits.
        assert_eq!(c.hits() + c.misses(), 24);
        assert!(c.misses() >= 8 && c.hits() >= 8, "{c:?}");
    }

    #[test]
    fn a_new_set_empties_the_cache() {
        let a = set("evil.example\n", "");
        let b = set("other.example\n", "");
        assert_ne!(a.generation(), b.generation());
        let mut c = LookupCache::new(64);
        assert!(c.lookup_host(&a, b"evil.example").is_listed());
        assert!(!c.lookup_host(&b, b"evil.example").is_listed());
        assert!(c.lookup_host(&b, b"other.example").is_listed());
        assert!(c.lookup_host(&a, b"evil.example").is_listed());
        assert_eq!(c.hits(), 0);
        // A clone is the same lists: same generation, the cache stays.
        let a2 = a.clone();
        assert!(c.lookup_host(&a2, b"evil.example").is_listed());
        assert_eq!(c.hits(), 1);
    }

    #[test]
    fn keys_are_compared_whole_and_part_by_part() {
        assert!(same_key(b"abc", &[b"a", b"bc"]));
        assert!(same_key(b"", &[]));
        assert!(!same_key(b"abc", &[b"a", b"b"]));
        assert!(!same_key(b"ab", &[b"a", b"bc"]));
        assert!(!same_key(b"abd", &[b"a", b"bc"]));
        // The same bytes split between host and target otherwise: two keys, two verdicts, in
        // a cache of one slot.
        let s = set("github.com/bad/x\n", "");
        let mut c = LookupCache::new(1);
        for _ in 0..2 {
            assert!(
                c.lookup_http_request(&s, b"GET", b"/bad/x", Some(b"github.com"))
                    .is_listed()
            );
            assert!(
                !c.lookup_http_request(&s, b"GET", b"m/bad/x", Some(b"github.co"))
                    .is_listed()
            );
            assert!(!c.lookup_host(&s, b"github.com/bad/x").is_listed());
        }
    }

    #[test]
    fn two_keys_of_one_pair_both_stay() {
        // The smallest cache is one pair: two names taking turns each miss once, then hit
        // (direct-mapped, they would evict each other on every turn).
        let s = set("evil.example\n", "");
        let mut c = LookupCache::new(1);
        for _ in 0..10 {
            assert!(c.lookup_host(&s, b"a.evil.example").is_listed());
            assert!(!c.lookup_host(&s, b"b.example").is_listed());
        }
        assert_eq!((c.hits(), c.misses()), (18, 2));
        // A third name evicts the one used longest ago.
        assert!(!c.lookup_host(&s, b"c.example").is_listed());
        assert!(!c.lookup_host(&s, b"b.example").is_listed());
        assert!(c.lookup_host(&s, b"a.evil.example").is_listed());
        assert_eq!((c.hits(), c.misses()), (19, 4));
    }

    #[test]
    fn the_keys_stay_within_their_budget() {
        // Two slots, 256 bytes of keys: one 200-byte key is kept, a second is looked up each
        // time; short keys fit the buffers already there.
        let s = set("evil.example\n", "");
        let mut c = LookupCache::new(2);
        let long = |c: char| format!("{}.evil.example", c.to_string().repeat(186));
        for _ in 0..3 {
            assert!(c.lookup_host(&s, long('a').as_bytes()).is_listed());
            assert!(c.lookup_host(&s, long('b').as_bytes()).is_listed());
        }
        assert_eq!((c.hits(), c.misses()), (2, 4));
        assert_eq!(c.key_bytes(), 200);
        for _ in 0..3 {
            assert!(c.lookup_host(&s, b"x.evil.example").is_listed());
            assert!(!c.lookup_host(&s, b"x.example").is_listed());
        }
        assert_eq!((c.hits(), c.misses()), (6, 6));
        assert!(c.key_bytes() <= 2 * KEY_BYTES_PER_SLOT);
    }

    #[test]
    fn long_keys_are_looked_up_not_cached() {
        let s = set("evil.example\n", "");
        let mut c = LookupCache::new(4);
        let long = format!("{}.evil.example", "a".repeat(MAX_KEY));
        assert!(c.lookup_host(&s, long.as_bytes()).is_listed());
        assert!(c.lookup_host(&s, long.as_bytes()).is_listed());
        assert_eq!((c.hits(), c.misses()), (0, 2));
    }

    proptest! {
        /// Whatever the names and however small the cache (slots evicting each other), a cached
        /// verdict equals the set's.
        #[test]
        fn cached_verdicts_equal_the_sets(
            names in proptest::collection::vec(
                prop_oneof![
                    Just("evil.example".to_string()),
                    "[a-c]{1,2}\\.evil\\.example",
                    "[a-c]{1,3}\\.example",
                    "[a-c]\\.ok\\.evil\\.example",
                    "[A-C%.]{0,6}",
                ],
                1..64,
            ),
            slots in 1usize..8,
        ) {
            let s = set("evil.example\nb.example\n", "ok.evil.example\n");
            let mut c = LookupCache::new(slots);
            for n in &names {
                prop_assert_eq!(c.lookup_host(&s, n.as_bytes()), s.lookup_host(n.as_bytes()));
            }
        }

        /// Keys of any length up to past the longest cached: the verdicts are the set's and the
        /// keys never take more than their budget.
        #[test]
        fn long_keys_keep_to_the_budget(
            names in proptest::collection::vec((0usize..1100, 0u8..4), 1..64),
            slots in 1usize..16,
        ) {
            let s = set("evil.example\n", "");
            let mut c = LookupCache::new(slots);
            for (len, which) in names {
                let n = format!("{}{which}.evil.example", "a".repeat(len));
                prop_assert_eq!(c.lookup_host(&s, n.as_bytes()), s.lookup_host(n.as_bytes()));
                prop_assert!(c.key_bytes() <= c.size * KEY_BYTES_PER_SLOT);
            }
        }
    }
}
